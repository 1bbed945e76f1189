/* Unit tests for SASLprep: the examples of RFC 4013 section 3 (as PostgreSQL
 * reads them: ASCII passes through unchanged), mapping, NFKC, the prohibited
 * and unassigned tables, the bidi rules, and the raw-bytes fallback. */
#include <stdlib.h>
#include <string.h>

#include "pg/saslprep.h"
#include "pg/scram.h"
#include "unit.h"

/* The prepared form, or NULL; *rc gets the result. */
static char *prep(const char *in, enum saslprep_result *rc)
{
	char *out = NULL;
	size_t len = 0;
	*rc = saslprep(in, strlen(in), &out, &len);
	if (out && len != strlen(out)) {
		free(out);
		return NULL;
	}
	return out;
}

static void expect(const char *in, const char *want)
{
	enum saslprep_result rc;
	char *out = prep(in, &rc);
	CHECK(rc == SASLPREP_OK);
	CHECK_STR(out, want);
	free(out);
}

static void expect_fail(const char *in, enum saslprep_result want)
{
	enum saslprep_result rc;
	char *out = prep(in, &rc);
	CHECK(rc == want);
	CHECK(out == NULL);
	free(out);
}

static void test_rfc4013_examples(void)
{
	expect("I\xC2\xADX", "IX");   /* 1: SOFT HYPHEN mapped to nothing */
	expect("user", "user");       /* 2: no transformation */
	expect("USER", "USER");       /* 3: case preserved */
	expect("\xC2\xAA", "a");      /* 4: U+00AA, NFKC to "a" */
	expect("\xE2\x85\xA8", "IX"); /* 5: U+2168 ROMAN NUMERAL NINE */
	/* 6: U+0007 is prohibited by the RFC, but PostgreSQL's ASCII fast path
	 * passes every ASCII string unchanged, control characters included. */
	expect("\x07", "\x07");
	/* 7: U+0627 U+0031: RandALCat first but not last. */
	expect_fail("\xD8\xA7"
		    "1",
		    SASLPREP_PROHIBITED);
}

static void test_mapping_and_nfkc(void)
{
	expect("a\xC2\xA0"
	       "b",
	       "a b"); /* C.1.2 NO-BREAK SPACE -> space */
	expect("a\xE3\x80\x80"
	       "b",
	       "a b"); /* C.1.2 IDEOGRAPHIC SPACE */
	expect("a\xE2\x80\x8B"
	       "b",
	       "a b");                                /* U+200B is C.1.2 first: space */
	expect("x\xEF\xBB\xBFy\xE2\x81\xA0z", "xyz"); /* B.1: BOM and WORD JOINER vanish */
	/* Composed and decomposed e-acute prepare to the same bytes (U+00E9). */
	expect("caf\xC3\xA9", "caf\xC3\xA9");
	expect("cafe\xCC\x81", "caf\xC3\xA9");
	expect("\xEF\xAC\x81", "fi"); /* U+FB01 LATIN SMALL LIGATURE FI */
	expect("\xEF\xBC\xA1", "A");  /* U+FF21 FULLWIDTH A */
}

static void test_prohibited(void)
{
	expect_fail("\xC2\xAD", SASLPREP_PROHIBITED);          /* empty after mapping */
	expect_fail("a\xC2\x85", SASLPREP_PROHIBITED);         /* C.2.2 NEXT LINE */
	expect_fail("a\xEE\x80\x80", SASLPREP_PROHIBITED);     /* C.3 private use U+E000 */
	expect_fail("a\xEF\xB7\x90", SASLPREP_PROHIBITED);     /* C.4 U+FDD0 */
	expect_fail("a\xE2\x80\x8E", SASLPREP_PROHIBITED);     /* C.8 LEFT-TO-RIGHT MARK */
	expect_fail("a\xF3\xA0\x80\x81", SASLPREP_PROHIBITED); /* C.9 LANGUAGE TAG */
	expect_fail("a\xC8\xA1", SASLPREP_PROHIBITED);         /* A.1: U+0221 came in 4.0 */
	expect_fail("a\xF0\x9F\x98\x80", SASLPREP_PROHIBITED); /* A.1: an emoji, Unicode 6.1 */
}

static void test_bidi(void)
{
	expect("\xD8\xA7"
	       "1"
	       "\xD8\xA8",
	       "\xD8\xA7"
	       "1"
	       "\xD8\xA8");                            /* RandAL at both ends */
	expect_fail("a\xD8\xA7", SASLPREP_PROHIBITED); /* LCat with RandALCat */
	expect_fail("\xD7\x90"
		    "a"
		    "\xD7\x90",
		    SASLPREP_PROHIBITED);
}

static void test_invalid_and_fallback(void)
{
	expect_fail("a\xC3", SASLPREP_INVALID_UTF8);            /* cut sequence */
	expect_fail("\xC0\xAF", SASLPREP_INVALID_UTF8);         /* overlong "/" */
	expect_fail("\xED\xA0\x80", SASLPREP_INVALID_UTF8);     /* a surrogate in UTF-8 */
	expect_fail("\xF4\x90\x80\x80", SASLPREP_INVALID_UTF8); /* past U+10FFFF */
	size_t n;
	char *raw = saslprep_or_raw("p\xE9ss", 4, &n); /* Latin-1, not UTF-8 */
	CHECK(n == 4 && memcmp(raw, "p\xE9ss", 4) == 0);
	free(raw);
	char *p = saslprep_or_raw("I\xC2\xADX", 4, &n);
	CHECK(n == 2 && memcmp(p, "IX", 2) == 0);
	free(p);
	/* Longer than PostgreSQL's limit: not prepared (libpq refuses it). */
	char big[SASLPREP_MAX_INPUT + 8];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "\xC2\xAA", 2);
	expect_fail(big, SASLPREP_TOO_LONG);
}

/* SCRAM hashes the prepared form on both sides. */
static void test_scram_uses_it(void)
{
	unsigned char salt[16] = "0123456789abcdef";
	struct scram_secret a, b, c;
	CHECK(scram_secret_from_password("I\xC2\xADX", salt, 16, 64, &a));
	CHECK(scram_secret_from_password("IX", salt, 16, 64, &b));
	CHECK(scram_secret_from_password("I-X", salt, 16, 64, &c));
	CHECK(memcmp(a.stored_key, b.stored_key, sizeof(a.stored_key)) == 0);
	CHECK(memcmp(a.stored_key, c.stored_key, sizeof(a.stored_key)) != 0);
	CHECK(scram_secret_from_password("cafe\xCC\x81", salt, 16, 64, &a));
	CHECK(scram_secret_from_password("caf\xC3\xA9", salt, 16, 64, &b));
	CHECK(memcmp(a.stored_key, b.stored_key, sizeof(a.stored_key)) == 0);
}

int main(void)
{
	test_rfc4013_examples();
	test_mapping_and_nfkc();
	test_prohibited();
	test_bidi();
	test_invalid_and_fallback();
	test_scram_uses_it();
	return unit_finish("test_saslprep");
}
