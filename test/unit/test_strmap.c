/* Unit tests for the string hash index: SipHash-2-4 against the reference
 * vector, and put/get/delete across growth and probe chains. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/strmap.h"
#include "unit.h"

static void test_siphash_vector(void)
{
	/* The SipHash paper's example: key 00..0f, message 00..0e. */
	unsigned char key[16], msg[15];
	for (int i = 0; i < 16; i++)
		key[i] = (unsigned char)i;
	for (int i = 0; i < 15; i++)
		msg[i] = (unsigned char)i;
	CHECK(strmap_siphash(key, msg, sizeof(msg)) == 0xa129ca6149be45e5ULL);
	/* Empty input, vector 0 of the reference test table. */
	CHECK(strmap_siphash(key, msg, 0) == 0x726fdb47dd0e0e31ULL);
}

#define N 2000

static void test_put_get_del(void)
{
	static char keys[N][16];
	struct strmap m = { 0 };
	CHECK(strmap_get(&m, "absent") == NULL);
	CHECK(!strmap_del(&m, "absent"));
	for (int i = 0; i < N; i++) {
		snprintf(keys[i], sizeof(keys[i]), "user%d", i);
		strmap_put(&m, keys[i], keys[i]);
	}
	CHECK(m.count == N);
	int found = 0;
	for (int i = 0; i < N; i++)
		found += strmap_get(&m, keys[i]) == keys[i];
	CHECK(found == N);
	/* Delete every other key: the rest must stay reachable across the holes. */
	int deleted = 0;
	for (int i = 0; i < N; i += 2)
		deleted += strmap_del(&m, keys[i]);
	CHECK(deleted == N / 2);
	CHECK(m.count == N / 2);
	int ok = 0;
	for (int i = 0; i < N; i++)
		ok += (i % 2 == 0) ? strmap_get(&m, keys[i]) == NULL : strmap_get(&m, keys[i]) == keys[i];
	CHECK(ok == N);
	/* Replace keeps one entry; del_value only removes the matching value. */
	static int a, b;
	strmap_put(&m, keys[1], &a);
	CHECK(m.count == N / 2);
	CHECK(strmap_get(&m, keys[1]) == &a);
	CHECK(!strmap_del_value(&m, keys[1], &b));
	CHECK(strmap_del_value(&m, keys[1], &a));
	CHECK(strmap_get(&m, keys[1]) == NULL);
	/* Lookups compare contents, not pointers. */
	char probe[16];
	snprintf(probe, sizeof(probe), "user%d", 3);
	CHECK(strmap_get(&m, probe) == keys[3]);
	strmap_clear(&m);
	CHECK(m.count == 0 && m.cap == 0 && strmap_get(&m, probe) == NULL);
}

int main(void)
{
	test_siphash_vector();
	test_put_get_del();
	return unit_finish("test_strmap");
}
