/* struct client_rare (pool/pool-t.h): the fields a client needs only while
 * it logs in or in rare cases, allocated when first set and freed as soon as
 * none is in use. Readers see NULL when there is no such struct. */
#ifndef TB_POOL_CLIENT_RARE_H
#define TB_POOL_CLIENT_RARE_H
#include <stddef.h>

#include "pool/pool-t.h"

/* The client's struct, allocated (zeroed) if it has none. */
struct client_rare *client_rare_get(struct client *c);
/* Frees the struct when none of its fields is in use. */
void client_rare_trim(struct client *c);

static inline struct client_auth *client_auth_of(const struct client *c)
{
	return c->rare ? c->rare->auth : NULL;
}

static inline struct ps_client *client_ps(const struct client *c)
{
	return c->rare ? c->rare->ps : NULL;
}

static inline struct client *client_cancel_parked(const struct client *c)
{
	return c->rare ? c->rare->cancel_parked : NULL;
}

static inline struct client *client_cancel_target(const struct client *c)
{
	return c->rare ? c->rare->cancel_target : NULL;
}
#endif
