#include "pool/client_rare.h"

#include <stdlib.h>

#include "core/util.h"

struct client_rare *client_rare_get(struct client *c)
{
	if (!c->rare)
		c->rare = xcalloc(1, sizeof(*c->rare));
	return c->rare;
}

void client_rare_trim(struct client *c)
{
	struct client_rare *r = c->rare;
	if (r && !r->auth && !r->cancel_parked && !r->cancel_target && !r->ps_out && !r->ps) {
		free(r);
		c->rare = NULL;
	}
}
