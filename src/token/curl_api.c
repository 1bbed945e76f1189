#include "token/curl_api.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

struct curl_api curl_api;

/* Debian's libcurl4 (OpenSSL); libcurl3-gnutls names its file differently. */
#define CURL_SONAME "libcurl.so.4"

struct symbol {
	const char *name;
	void **slot;
};

bool curl_api_load(char *err, size_t errlen)
{
	static void *handle;
	if (handle)
		return true;
	void *h = dlopen(CURL_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(err, errlen, "cannot load %s: %s", CURL_SONAME, dlerror());
		return false;
	}
	struct curl_api api;
	const struct symbol syms[] = {
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
	for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
		*syms[i].slot = dlsym(h, syms[i].name);
		if (!*syms[i].slot) {
			snprintf(err, errlen, "%s has no %s", CURL_SONAME, syms[i].name);
			dlclose(h);
			return false;
		}
	}
	curl_api = api;
	handle = h;
	return true;
}
