#include "token/http.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "core/dynbuf.h"
#include "core/log.h"
#include "core/util.h"
#include "token/curl_api.h"

#define DEFAULT_TIMEOUT_MS 10000L
#define DEFAULT_MAX_RESPONSE (1u << 20)

struct http_call {
	CURL *easy;
	struct curl_slist *headers;
	char *body; /* request body copy: may hold a secret */
	size_t body_len;
	struct dynbuf resp; /* capped at the request's max_response; usually a token */
	double retry_after;
	bool metadata_flavor;
	char *ca_file; /* a copy: a reload may free the config meanwhile */
	http_done_cb cb;
	void *arg;
	char errbuf[CURL_ERROR_SIZE];
};

/* Per socket curl tells us about: one libevent event. */
struct http_sock {
	struct event *ev;
	curl_socket_t fd;
};

static struct event_base *http_base;
static CURLM *multi;
static struct event *timer_ev;
static int in_flight;

int http_in_flight(void)
{
	return in_flight;
}

/* Header lines may carry secrets (IMDS session token, container
 * authorization, X-Amz-Security-Token). */
static void headers_free(struct curl_slist *h)
{
	for (struct curl_slist *it = h; it; it = it->next)
		if (it->data)
			secret_wipe(it->data, strlen(it->data));
	curl_api.slist_free_all(h);
}

static void call_free(struct http_call *c)
{
	if (c->easy) {
		curl_api.multi_remove_handle(multi, c->easy);
		curl_api.easy_cleanup(c->easy);
	}
	headers_free(c->headers);
	free(c->ca_file);
	if (c->body) {
		secret_wipe(c->body, c->body_len);
		free(c->body);
	}
	dynbuf_free(&c->resp);
	free(c);
	in_flight--;
}

static void check_done(void)
{
	CURLMsg *msg;
	int left;
	while ((msg = curl_api.multi_info_read(multi, &left))) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		struct http_call *c = NULL;
		curl_api.easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&c);
		struct http_response r = { .retry_after = c->retry_after,
					   .metadata_flavor = c->metadata_flavor };
		char why[CURL_ERROR_SIZE + 64];
		if (msg->data.result == CURLE_OK) {
			curl_api.easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &r.status);
		} else if (c->resp.failed) {
			snprintf(why, sizeof(why), "response larger than %zu bytes", c->resp.max);
			r.error = why;
		} else {
			snprintf(why, sizeof(why), "%s",
				 c->errbuf[0] ? c->errbuf : curl_api.easy_strerror(msg->data.result));
			r.error = why;
		}
		r.body = dynbuf_str(&c->resp);
		r.body_len = c->resp.len;
		http_done_cb cb = c->cb;
		void *arg = c->arg;
		/* Detach first: the callback may start new requests. */
		curl_api.multi_remove_handle(multi, c->easy);
		cb(arg, &r);
		call_free(c);
	}
}

static void on_socket_event(evutil_socket_t fd, short what, void *arg)
{
	int flags = 0, running = 0;
	if (what & EV_READ)
		flags |= CURL_CSELECT_IN;
	if (what & EV_WRITE)
		flags |= CURL_CSELECT_OUT;
	curl_api.multi_socket_action(multi, fd, flags, &running);
	check_done();
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	int running = 0;
	curl_api.multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done();
}

static int socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct http_sock *hs = socketp;
	if (what == CURL_POLL_REMOVE) {
		if (hs) {
			event_free(hs->ev);
			free(hs);
			curl_api.multi_assign(multi, s, NULL);
		}
		return 0;
	}
	short kind = EV_PERSIST;
	if (what & CURL_POLL_IN)
		kind |= EV_READ;
	if (what & CURL_POLL_OUT)
		kind |= EV_WRITE;
	if (!hs) {
		hs = xcalloc(1, sizeof(*hs));
		hs->fd = s;
		curl_api.multi_assign(multi, s, hs);
	} else {
		event_free(hs->ev);
	}
	hs->ev = event_new(http_base, s, kind, on_socket_event, NULL);
	event_add(hs->ev, NULL);
	return 0;
}

static int timer_cb(CURLM *m, long timeout_ms, void *userp)
{
	if (timeout_ms < 0) {
		evtimer_del(timer_ev);
		return 0;
	}
	/* Zero means "act now", but never from inside curl's own call stack. */
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	evtimer_add(timer_ev, &tv);
	return 0;
}

bool http_init(struct event_base *base, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	http_base = base;
	return true;
}

/* libcurl is loaded and initialised by the first request (curl_api.h says why). */
static bool http_ready(void)
{
	if (multi)
		return true;
	if (!http_base)
		return false;
	char err[256];
	if (!curl_api_load(err, sizeof(err))) {
		log_error("HTTP requests for tokens are unavailable: %s", err);
		return false;
	}
	if (curl_api.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_error("HTTP requests for tokens are unavailable: libcurl initialisation failed");
		return false;
	}
	multi = curl_api.multi_init();
	if (!multi) {
		curl_api.global_cleanup();
		return false;
	}
	timer_ev = evtimer_new(http_base, on_timer, NULL);
	curl_api.multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
	curl_api.multi_setopt(multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	return true;
}

void http_shutdown(void)
{
	http_base = NULL;
	if (!multi)
		return;
	curl_api.multi_cleanup(multi);
	multi = NULL;
	event_free(timer_ev);
	timer_ev = NULL;
	curl_api.global_cleanup();
}

/* A short count makes curl fail the transfer; resp.failed says why. */
static size_t on_body(char *data, size_t size, size_t n, void *userp)
{
	struct http_call *c = userp;
	size_t len = size * n;
	return dynbuf_add(&c->resp, data, len) ? len : 0;
}

static size_t on_header(char *data, size_t size, size_t n, void *userp)
{
	struct http_call *c = userp;
	size_t len = size * n;
	static const char name[] = "retry-after:", flavor[] = "metadata-flavor:";
	if (len > sizeof(flavor) && strncasecmp(data, flavor, sizeof(flavor) - 1) == 0) {
		const char *v = data + sizeof(flavor) - 1, *end = data + len;
		while (v < end && *v == ' ')
			v++;
		c->metadata_flavor = end - v >= 6 && strncmp(v, "Google", 6) == 0;
	}
	if (len > sizeof(name) && strncasecmp(data, name, sizeof(name) - 1) == 0) {
		char tmp[32];
		size_t vl = len - (sizeof(name) - 1);
		if (vl >= sizeof(tmp))
			vl = sizeof(tmp) - 1;
		memcpy(tmp, data + sizeof(name) - 1, vl);
		tmp[vl] = '\0';
		char *end;
		double v = strtod(tmp, &end);
		/* Only the delta-seconds form; an HTTP date is rare from these services. */
		if (end != tmp && v >= 0)
			c->retry_after = v;
	}
	return len;
}

static CURLcode add_ca_file(CURL *easy, void *sslctx, void *userp)
{
	struct http_call *c = userp;
	X509_STORE *store = SSL_CTX_get_cert_store((SSL_CTX *)sslctx);
	if (!store || X509_STORE_load_file(store, c->ca_file) != 1) {
		ERR_clear_error();
		snprintf(c->errbuf, sizeof(c->errbuf), "cannot load token_ca_file %s", c->ca_file);
		return CURLE_SSL_CACERT_BADFILE;
	}
	return CURLE_OK;
}

static void set_options(struct http_call *c, const struct http_request *req)
{
	CURL *e = c->easy;
	curl_api.easy_setopt(e, CURLOPT_URL, req->url);
	curl_api.easy_setopt(e, CURLOPT_PRIVATE, c);
	curl_api.easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_api.easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_api.easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_api.easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_api.easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	if (req->ca_file && *req->ca_file) {
		/* Add to the system trust store rather than replace it, so public
		 * endpoints keep verifying when a private CA is configured. */
		c->ca_file = xstrdup(req->ca_file);
		curl_api.easy_setopt(e, CURLOPT_SSL_CTX_FUNCTION, add_ca_file);
		curl_api.easy_setopt(e, CURLOPT_SSL_CTX_DATA, c);
	}
	long timeout = req->timeout_ms > 0 ? req->timeout_ms : DEFAULT_TIMEOUT_MS;
	curl_api.easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout);
	curl_api.easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, timeout);
	curl_api.easy_setopt(e, CURLOPT_USERAGENT, "tokenbouncer/" PACKAGE_VERSION);
	curl_api.easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_api.easy_setopt(e, CURLOPT_WRITEDATA, c);
	curl_api.easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_api.easy_setopt(e, CURLOPT_HEADERDATA, c);
	curl_api.easy_setopt(e, CURLOPT_ERRORBUFFER, c->errbuf);
	/* Metadata services live on link-local or loopback addresses and must
	 * never be reached through a proxy. */
	curl_api.easy_setopt(e, CURLOPT_NOPROXY,
			     "169.254.169.254,169.254.170.2,169.254.170.23,fd00:ec2::254,"
			     "fd00:ec2::23,localhost,127.0.0.1,::1");
	const char *method = req->method ? req->method : "GET";
	if (strcmp(method, "GET") != 0) {
		curl_api.easy_setopt(e, CURLOPT_POSTFIELDS, c->body ? c->body : "");
		curl_api.easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)c->body_len);
		if (strcmp(method, "POST") != 0)
			curl_api.easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	}
	for (const char *const *h = req->headers; h && *h; h++)
		c->headers = curl_api.slist_append(c->headers, *h);
	/* curl adds "Expect: 100-continue" to large bodies; identity endpoints do not need it. */
	c->headers = curl_api.slist_append(c->headers, "Expect:");
	curl_api.easy_setopt(e, CURLOPT_HTTPHEADER, c->headers);
}

struct http_call *http_start(const struct http_request *req, http_done_cb cb, void *arg)
{
	if (!http_ready())
		return NULL;
	struct http_call *c = xcalloc(1, sizeof(*c));
	in_flight++;
	c->cb = cb;
	c->arg = arg;
	c->retry_after = -1;
	dynbuf_init(&c->resp, req->max_response ? req->max_response : DEFAULT_MAX_RESPONSE, true);
	if (req->body && req->body_len) {
		c->body = xmalloc(req->body_len + 1);
		memcpy(c->body, req->body, req->body_len);
		c->body[req->body_len] = '\0';
		c->body_len = req->body_len;
	}
	c->easy = curl_api.easy_init();
	if (!c->easy) {
		call_free(c);
		return NULL;
	}
	set_options(c, req);
	if (curl_api.multi_add_handle(multi, c->easy) != CURLM_OK) {
		call_free(c);
		return NULL;
	}
	return c;
}

void http_cancel(struct http_call *c)
{
	if (c)
		call_free(c);
}

char *http_urlencode(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(s);
	char *out = xmalloc(3 * n + 1), *o = out;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		    *p == '-' || *p == '_' || *p == '.' || *p == '~') {
			*o++ = (char)*p;
		} else {
			*o++ = '%';
			*o++ = hex[*p >> 4];
			*o++ = hex[*p & 15];
		}
	}
	*o = '\0';
	return out;
}

int http_url_path_len(const char *url)
{
	return (int)strcspn(url, "?");
}
