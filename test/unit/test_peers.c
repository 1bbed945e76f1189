/* Unit tests for [peers] parsing and the peer cancel-key layout: which keys
 * are kept, which are routed to a peer, and the hop budget. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "pool/peer.h"
#include "pool/runtime.h"
#include "unit.h"

#define BASE "[tokenbouncer]\nauth_type = trust\npeer_id = 2\nso_reuseport = 1\n"

static char err[1024];

static struct tb_config *parse(const char *text)
{
	err[0] = '\0';
	return config_parse_string(text, "t.ini", err, sizeof(err));
}

static void test_parse(void)
{
	struct tb_config *cfg = parse(BASE "[peers]\n1 = host=/run/tb-1\n2 = host=/run/tb-2 port=7000\n"
					   "3 = host=10.0.0.3 pool_size=5\n");
	CHECK(cfg != NULL);
	if (!cfg)
		return;
	CHECK(cfg->peer_id == 2 && cfg->so_reuseport);
	CHECK(cfg->npeers == 3);
	CHECK(cfg->peers[0].id == 1 && strcmp(cfg->peers[0].host, "/run/tb-1") == 0 &&
	      cfg->peers[0].port == 6432);
	CHECK(cfg->peers[1].port == 7000 && cfg->peers[1].pool_size == -1);
	CHECK(cfg->peers[2].pool_size == 5);
	config_free(cfg);
}

static void test_parse_errors(void)
{
	struct tb_config *cfg = parse(BASE "[peers]\n0 = host=/x\n");
	CHECK(cfg == NULL);
	CHECK_STR(err, "t.ini:6: [peers] key \"0\": a peer_id from 1 to 16383");
	cfg = parse(BASE "[peers]\nabc = host=/x\n");
	CHECK(cfg == NULL);
	cfg = parse(BASE "[peers]\n4 = port=6432\n");
	CHECK(cfg == NULL);
	CHECK_STR(err, "t.ini:6: [peers] entry 4: host= is required");
	cfg = parse(BASE "[peers]\n4 = host=/x colour=red\n");
	CHECK(cfg == NULL);
	cfg = parse("[tokenbouncer]\nauth_type = trust\npeer_id = 16384\n");
	CHECK(cfg == NULL);
	/* the same id twice: the last one wins, with a warning */
	cfg = parse(BASE "[peers]\n4 = host=/a\n4 = host=/b\n");
	CHECK(cfg != NULL && cfg->npeers == 1 && strcmp(cfg->peers[0].host, "/b") == 0 && cfg->nwarnings >= 1);
	config_free(cfg);
}

static void test_keys(void)
{
	struct tb_config *cfg = parse(BASE "[peers]\n1 = host=/run/tb-1\n");
	CHECK(cfg != NULL);
	if (!cfg)
		return;
	struct worker wk = { 0 };
	struct worker *w = &wk;
	w->cfg = cfg;
	uint32_t pid = 0x0000beefu;
	peer_stamp_key(w, &pid);
	CHECK(pid == (0xc0000000u | (2u << 16) | 0xbeefu));
	/* ours, whatever hop budget is left: kept, and matched with the budget restored */
	CHECK(!peer_route_cancel(w, pid, 1));
	uint32_t hopped = (pid & 0x3fffffffu) | (1u << 30);
	CHECK(!peer_route_cancel(w, hopped, 1));
	CHECK(peer_local_pid(w, hopped) == pid);
	/* a peer that is not in [peers], or a budget spent: taken (dropped), never kept */
	CHECK(peer_route_cancel(w, (3u << 30) | (9u << 16) | 1u, 1));
	CHECK(peer_route_cancel(w, (1u << 16) | 1u, 1)); /* hop bits (30, 31) zero */
	/* without peering, keys are entirely random and always kept */
	struct tb_config *plain = parse("[tokenbouncer]\nauth_type = trust\n");
	w->cfg = plain;
	uint32_t p2 = 0x12345678u;
	peer_stamp_key(w, &p2);
	CHECK(p2 == 0x12345678u);
	CHECK(!peer_route_cancel(w, (3u << 30) | (1u << 16), 1));
	CHECK(peer_local_pid(w, 0x12345678u) == 0x12345678u);
	w->cfg = NULL;
	config_free(plain);
	config_free(cfg);
}

int main(void)
{
	test_parse();
	test_parse_errors();
	test_keys();
	return unit_finish("test_peers");
}
