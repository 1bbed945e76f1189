/* Unit tests for core/dynbuf (growth, the size cap, sticky failure, hand-over)
 * and core/encode (base64 both alphabets, percent-encoding). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/dynbuf.h"
#include "core/encode.h"
#include "core/util.h"
#include "unit.h"

static void test_growth_and_terminator(void)
{
	struct dynbuf b;
	dynbuf_init(&b, 1 << 20, true);
	CHECK_STR(dynbuf_str(&b), "");
	CHECK(b.data == NULL);
	struct unit_loop each = UNIT_LOOP;
	for (int i = 0; i < 1000; i++)
		CHECK_EACH(each, dynbuf_addc(&b, (char)('a' + i % 26)));
	CHECK_LOOP_END(each);
	CHECK(b.len == 1000);
	CHECK(b.cap >= 1001);
	CHECK(b.data[1000] == '\0');
	CHECK(b.data[0] == 'a' && b.data[26] == 'a' && b.data[999] == (unsigned char)('a' + 999 % 26));
	CHECK(dynbuf_addf(&b, "-%d-%s", 42, "x"));
	CHECK(strcmp(dynbuf_str(&b) + 1000, "-42-x") == 0);
	dynbuf_truncate(&b, 3);
	CHECK_STR(dynbuf_str(&b), "abc");
	dynbuf_reset(&b);
	CHECK(b.len == 0 && b.data != NULL);
	CHECK_STR(dynbuf_str(&b), "");
	dynbuf_free(&b);
	CHECK(b.data == NULL && b.len == 0 && b.cap == 0);
}

/* A long formatted add goes past the small stack buffer. */
static void test_addf_long(void)
{
	char big[3000];
	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	struct dynbuf b;
	dynbuf_init(&b, 10000, false);
	CHECK(dynbuf_addstr(&b, "<"));
	CHECK(dynbuf_addf(&b, "%s>", big));
	CHECK(b.len == 1 + 2999 + 1);
	CHECK(b.data[0] == '<' && b.data[3000] == '>' && b.data[3001] == '\0');
	dynbuf_free(&b);
}

/* curl's toobig: exactly max bytes fit, one more fails, and the failure sticks. */
static void test_cap(void)
{
	struct dynbuf b;
	dynbuf_init(&b, 10, true);
	CHECK(dynbuf_add(&b, "0123456789", 10));
	CHECK(b.len == 10 && b.cap == 11);
	CHECK(!dynbuf_addc(&b, 'x'));
	CHECK(b.failed);
	CHECK(b.len == 10);
	CHECK(!dynbuf_add(&b, "", 0));
	CHECK(dynbuf_push(&b, 1) == NULL);
	dynbuf_reset(&b);
	CHECK(!b.failed);
	CHECK(dynbuf_addstr(&b, "ok"));
	CHECK(!dynbuf_addf(&b, "%s", "0123456789"));
	CHECK(b.failed);
	dynbuf_free(&b);
	/* A cap near SIZE_MAX neither overflows nor refuses small adds. */
	dynbuf_init(&b, SIZE_MAX, false);
	CHECK(dynbuf_addstr(&b, "fine"));
	CHECK(!dynbuf_reserve(&b, SIZE_MAX - 2));
	dynbuf_free(&b);
}

struct pair {
	int a;
	double d;
};

static void test_push_and_take(void)
{
	struct dynbuf b;
	dynbuf_init(&b, 1000 * sizeof(struct pair), false);
	struct unit_loop each = UNIT_LOOP;
	for (int i = 0; i < 1000; i++) {
		struct pair *p = dynbuf_push(&b, sizeof(*p));
		CHECK_EACH(each, p != NULL);
		if (p) {
			CHECK_EACH(each, p->a == 0 && p->d == 0);
			p->a = i;
			p->d = i / 2.0;
		}
	}
	CHECK_LOOP_END(each);
	CHECK(dynbuf_push(&b, sizeof(struct pair)) == NULL);
	size_t len = 0;
	struct pair *all = dynbuf_take(&b, &len);
	CHECK(len == 1000 * sizeof(struct pair));
	CHECK(all && all[999].a == 999 && all[999].d == 499.5);
	CHECK(b.data == NULL && b.len == 0);
	free(all);
	CHECK(dynbuf_take(&b, &len) == NULL && len == 0);
}

static void test_base64(void)
{
	/* RFC 4648 §10. */
	static const char *const vec[][2] = {
		{ "", "" },
		{ "f", "Zg==" },
		{ "fo", "Zm8=" },
		{ "foo", "Zm9v" },
		{ "foob", "Zm9vYg==" },
		{ "fooba", "Zm9vYmE=" },
		{ "foobar", "Zm9vYmFy" },
	};
	for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
		char *e = base64_encode((const unsigned char *)vec[i][0], strlen(vec[i][0]), false);
		CHECK_STR(e, vec[i][1]);
		free(e);
		unsigned char out[8];
		size_t n = 99;
		CHECK(base64_decode_strict(vec[i][1], strlen(vec[i][1]), out, sizeof(out), &n));
		CHECK(n == strlen(vec[i][0]) && memcmp(out, vec[i][0], n) == 0);
	}
	unsigned char out[8];
	size_t n;
	CHECK(!base64_decode_strict("Zm9", 3, out, sizeof(out), &n));  /* not padded */
	CHECK(!base64_decode_strict("Zm-v", 4, out, sizeof(out), &n)); /* URL alphabet */
	CHECK(!base64_decode_strict("Zm9vYmFy", 8, out, 5, &n));       /* too long for dst */
	CHECK(!base64_decode_strict("Z=9v", 4, out, sizeof(out), &n)); /* pad inside */
	/* URL alphabet, unpadded: 0xfb 0xff -> "-_8". */
	const unsigned char raw[] = { 0xfb, 0xff };
	char *u = base64_encode(raw, 2, true);
	CHECK_STR(u, "-_8");
	free(u);
	char *s = base64_encode(raw, 2, false);
	CHECK_STR(s, "+/8=");
	free(s);
	unsigned char *d = base64_decode_lenient("-_8", 3, &n);
	CHECK(d && n == 2 && memcmp(d, raw, 2) == 0);
	free(d);
	d = base64_decode_lenient("+/8=", 4, &n);
	CHECK(d && n == 2 && memcmp(d, raw, 2) == 0);
	free(d);
	CHECK(base64_decode_lenient("a", 1, &n) == NULL);
	CHECK(base64_decode_lenient("a*bc", 4, &n) == NULL);
}

static void test_url_encode(void)
{
	char *e = url_encode("a b+c=d/e@f:g~h_i.j-k\xe1\x88\xb4%", false);
	CHECK_STR(e, "a%20b%2Bc%3Dd%2Fe%40f%3Ag~h_i.j-k%E1%88%B4%25");
	free(e);
	e = url_encode("/a b/", true);
	CHECK_STR(e, "/a%20b/");
	free(e);
	e = url_encode(NULL, false);
	CHECK_STR(e, "");
	free(e);
	struct dynbuf b;
	dynbuf_init(&b, 5, false);
	CHECK(url_encode_into(&b, "ab", false));
	CHECK(url_encode_into(&b, " ", false)); /* "ab%20": exactly the cap */
	CHECK_STR(dynbuf_str(&b), "ab%20");
	CHECK(!url_encode_into(&b, "c", false));
	dynbuf_free(&b);
}

int main(void)
{
	test_growth_and_terminator();
	test_addf_long();
	test_cap();
	test_push_and_take();
	test_base64();
	test_url_encode();
	return unit_finish("test_dynbuf");
}
