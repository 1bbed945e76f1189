/* HTTP for the token engine: one libcurl multi handle driven by the libevent
 * loop, so a slow identity endpoint never blocks the pooler. Redirects are
 * off, responses are size-capped, TLS verification is on. */
#ifndef TB_TOKEN_HTTP_H
#define TB_TOKEN_HTTP_H
#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>

struct http_request {
	const char *method; /* "GET", "POST", "PUT" */
	const char *url;
	const char *const *headers; /* NULL-terminated "Name: value" lines, may be NULL */
	const char *body;           /* may hold a secret: the caller wipes it */
	size_t body_len;
	long timeout_ms;     /* whole request; 0 = 10 s */
	size_t max_response; /* body cap; 0 = 1 MiB */
	const char *ca_file; /* extra trust anchors (tests, private endpoints), or NULL */
};

struct http_response {
	long status;      /* 0 when the transport failed */
	const char *body; /* NUL-terminated copy, valid during the callback */
	size_t body_len;
	const char *error;    /* transport error text, or NULL */
	double retry_after;   /* seconds from a Retry-After header, or -1 */
	bool metadata_flavor; /* "Metadata-Flavor: Google" came back (GCE metadata) */
};

typedef void (*http_done_cb)(void *arg, const struct http_response *resp);

struct http_call;

bool http_init(struct event_base *base, char *err, size_t errlen);
void http_shutdown(void);
/* Starts the request; cb runs later from the loop, never before this returns.
 * Returns NULL (and cb is not called) only when the request could not start. */
struct http_call *http_start(const struct http_request *req, http_done_cb cb, void *arg);
/* cb will not be called after this. */
void http_cancel(struct http_call *call);
/* Requests under way, for SHOW and tests. */
int http_in_flight(void);
/* "%XX" form encoding of one component (RFC 3986 unreserved set kept). Caller frees. */
char *http_urlencode(const char *s);
/* The length of url without its query, for messages ("%.*s"): a query may
 * carry a secret or be long. */
int http_url_path_len(const char *url);
#endif
