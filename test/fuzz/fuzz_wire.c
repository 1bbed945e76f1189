/* libFuzzer: the PostgreSQL framing the pooler applies to untrusted bytes
 * (startup packets, message headers, error bodies) and the session
 * parameter SQL built from client-chosen values. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pg/proto.h"
#include "pool/varcache.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One loop's interning table, as a worker holds it. */
static struct varcache_state vs;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	struct startup_pkt pkt;
	if (proto_parse_startup(data, size, &pkt, err, sizeof(err)) == PROTO_OK) {
		for (size_t i = 0; i < pkt.nparams; i++) {
			int idx = varcache_index(&vs, pkt.params[i].name);
			struct varcache a = { { 0 }, NULL }, b = { { 0 }, NULL };
			if (idx >= 0 && varcache_set(&vs, &a, idx, pkt.params[i].value)) {
				char *sql = varcache_sync_sql(&vs, &a, &b);
				free(sql);
			}
			varcache_clear(&vs, &a);
		}
	}
	struct pg_hdr h;
	size_t off = 0;
	while (off < size &&
	       proto_peek_header(data + off, size - off, 1u << 20, &h, err, sizeof(err)) == PROTO_OK) {
		size_t total = (size_t)h.len + 1;
		if (total > size - off)
			break;
		struct pg_error e;
		if (h.type == 'E' || h.type == 'N')
			proto_parse_error(data + off + 5, h.len - 4, &e);
		off += total;
	}
	return 0;
}
