/* The Prometheus endpoint: GET /metrics in the text exposition format,
 * served by libevent's evhttp on the main loop (never blocks it). */
#ifndef TB_ADMIN_METRICS_H
#define TB_ADMIN_METRICS_H
#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>

struct worker;

/* Listen on "host:port", "[v6addr]:port" or "*:port". False with err set
 * when the address cannot be parsed or bound. */
bool metrics_start(struct worker *w, const char *listen, char *err, size_t errlen);
/* Close the listener and free the server; safe when never started. */
void metrics_stop(void);
/* The page /metrics returns, NUL-terminated; the caller frees it. NULL when
 * it would pass the page cap. For tests. */
char *metrics_render(struct worker *w);
#endif
