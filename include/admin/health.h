/* Liveness and readiness, as served on metrics_listen at /healthz and /readyz
 * (for Kubernetes probes and load balancers). */
#ifndef TB_ADMIN_HEALTH_H
#define TB_ADMIN_HEALTH_H
#include <stdbool.h>
#include <stddef.h>

struct worker;

/* The event loop is alive: the janitor ran within the last few seconds (the
 * answer itself comes from the loop). False with why set otherwise. */
bool health_live(struct worker *w, char *why, size_t whylen);
/* Ready for clients: the configuration is loaded, the listeners are open, no
 * shutdown is under way, and every token alias with a fixed upstream user
 * holds a token a login can use now. False with why naming the first cause. */
bool health_ready(struct worker *w, char *why, size_t whylen);
#endif
