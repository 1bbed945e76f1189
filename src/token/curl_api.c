#include "token/curl_api.h"

#include "core/dl_table.h"

struct curl_api curl_api;

/* Debian's libcurl4 (OpenSSL); libcurl3-gnutls names its file differently. */
#define CURL_SONAME "libcurl.so.4"

bool curl_api_load(char *err, size_t errlen)
{
	static void *handle;
	if (handle)
		return true;
	struct curl_api api;
	const struct dl_symbol syms[] = {
		{ "curl_global_init", (void **)&api.global_init },
		{ "curl_global_cleanup", (void **)&api.global_cleanup },
		{ "curl_multi_init", (void **)&api.multi_init },
		{ "curl_multi_cleanup", (void **)&api.multi_cleanup },
		{ "curl_multi_setopt", (void **)&api.multi_setopt },
		{ "curl_multi_add_handle", (void **)&api.multi_add_handle },
		{ "curl_multi_remove_handle", (void **)&api.multi_remove_handle },
		{ "curl_multi_socket_action", (void **)&api.multi_socket_action },
		{ "curl_multi_assign", (void **)&api.multi_assign },
		{ "curl_multi_info_read", (void **)&api.multi_info_read },
		{ "curl_easy_init", (void **)&api.easy_init },
		{ "curl_easy_cleanup", (void **)&api.easy_cleanup },
		{ "curl_easy_setopt", (void **)&api.easy_setopt },
		{ "curl_easy_getinfo", (void **)&api.easy_getinfo },
		{ "curl_easy_strerror", (void **)&api.easy_strerror },
		{ "curl_slist_append", (void **)&api.slist_append },
		{ "curl_slist_free_all", (void **)&api.slist_free_all },
	};
	void *h;
	if (!dl_table_load(CURL_SONAME, syms, sizeof(syms) / sizeof(syms[0]), &h, err, errlen))
		return false;
	curl_api = api;
	handle = h;
	return true;
}
