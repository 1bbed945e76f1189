/* libcurl, loaded on first use. Linking it costs every process ~4 MB of
 * resident memory before main() runs (libcurl pulls in GnuTLS via LDAP,
 * Kerberos, libssh2, nghttp2 and more, whose constructors touch their
 * pages), and a pooler whose aliases log in with passwords never makes an
 * HTTP request. So http.c reaches libcurl through this table, filled by
 * dlopen() when the first request needs it. */
#ifndef TB_TOKEN_CURL_API_H
#define TB_TOKEN_CURL_API_H
#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>

struct curl_api {
	CURLcode (*global_init)(long flags);
	void (*global_cleanup)(void);
	CURLM *(*multi_init)(void);
	CURLMcode (*multi_cleanup)(CURLM *m);
	CURLMcode (*multi_setopt)(CURLM *m, CURLMoption opt, ...);
	CURLMcode (*multi_add_handle)(CURLM *m, CURL *e);
	CURLMcode (*multi_remove_handle)(CURLM *m, CURL *e);
	CURLMcode (*multi_socket_action)(CURLM *m, curl_socket_t s, int ev_bitmask, int *running);
	CURLMcode (*multi_assign)(CURLM *m, curl_socket_t s, void *sockp);
	CURLMsg *(*multi_info_read)(CURLM *m, int *msgs_in_queue);
	CURL *(*easy_init)(void);
	void (*easy_cleanup)(CURL *e);
	CURLcode (*easy_setopt)(CURL *e, CURLoption opt, ...);
	CURLcode (*easy_getinfo)(CURL *e, CURLINFO info, ...);
	const char *(*easy_strerror)(CURLcode code);
	struct curl_slist *(*slist_append)(struct curl_slist *list, const char *s);
	void (*slist_free_all)(struct curl_slist *list);
};

/* Filled by curl_api_load; all NULL before. */
extern struct curl_api curl_api;

/* dlopen libcurl (the OpenSSL build: http.c hands OpenSSL objects to it)
 * and resolve the table. Idempotent; false with err set if it cannot. */
bool curl_api_load(char *err, size_t errlen);
#endif
