/* SASLprep in PostgreSQL's order (src/common/saslprep.c behaviour):
 *   ASCII fast path; strict UTF-8 decode; map (C.1.2 to space, B.1 to
 *   nothing); empty -> prohibited; NFKC; prohibited output (C.1.2-C.9) and
 *   unassigned (A.1) checks; bidi checks (RFC 3454 section 6).
 * As PostgreSQL does, the prohibition and bidi checks look at the mapped
 * input, not at the normalised output.
 *
 * Unicode data comes from ICU: NFKC through unorm2, and the two big tables
 * of RFC 3454 from character properties: A.1 (unassigned in Unicode 3.2) is
 * "first assigned after 3.2, or never" by u_charAge, and D.1 / D.2 (RandALCat,
 * LCat) are today's bidi classes R/AL and L of those characters that existed
 * in 3.2 (the only ones left once A.1 has been checked). The short tables
 * (B.1, C.x) are written out below from RFC 3454. ICU is loaded on the first
 * non-ASCII input (pg/icu_api.h); if it cannot be, the input is not prepared
 * (SASLPREP_FAILED), as when the normaliser fails. */
#include "pg/saslprep.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/util.h"
#include "pg/icu_api.h"

struct cp_range {
	uint32_t lo, hi;
};

#define IN_TABLE(cp, t) in_ranges((cp), (t), sizeof(t) / sizeof((t)[0]))

/* C.1.2 Non-ASCII space characters: mapped to U+0020 (RFC 4013 2.1). */
static const struct cp_range non_ascii_space[] = {
	{ 0x00A0, 0x00A0 }, { 0x1680, 0x1680 }, { 0x2000, 0x200B },
	{ 0x202F, 0x202F }, { 0x205F, 0x205F }, { 0x3000, 0x3000 },
};

/* B.1 Commonly mapped to nothing. */
static const struct cp_range mapped_to_nothing[] = {
	{ 0x00AD, 0x00AD }, { 0x034F, 0x034F }, { 0x1806, 0x1806 }, { 0x180B, 0x180D },
	{ 0x200B, 0x200D }, { 0x2060, 0x2060 }, { 0xFE00, 0xFE0F }, { 0xFEFF, 0xFEFF },
};

/* C.1.2, C.2.1, C.2.2, C.3, C.4, C.5, C.6, C.7, C.8, C.9 (RFC 4013 2.3). */
static const struct cp_range prohibited[] = {
	/* C.1.2 non-ASCII space */
	{ 0x00A0, 0x00A0 },
	{ 0x1680, 0x1680 },
	{ 0x2000, 0x200B },
	{ 0x202F, 0x202F },
	{ 0x205F, 0x205F },
	{ 0x3000, 0x3000 },
	/* C.2.1 ASCII control */
	{ 0x0000, 0x001F },
	{ 0x007F, 0x007F },
	/* C.2.2 non-ASCII control */
	{ 0x0080, 0x009F },
	{ 0x06DD, 0x06DD },
	{ 0x070F, 0x070F },
	{ 0x180E, 0x180E },
	{ 0x200C, 0x200D },
	{ 0x2028, 0x2029 },
	{ 0x2060, 0x2063 },
	{ 0x206A, 0x206F },
	{ 0xFEFF, 0xFEFF },
	{ 0xFFF9, 0xFFFC },
	{ 0x1D173, 0x1D17A },
	/* C.3 private use */
	{ 0xE000, 0xF8FF },
	{ 0xF0000, 0xFFFFD },
	{ 0x100000, 0x10FFFD },
	/* C.4 non-character code points */
	{ 0xFDD0, 0xFDEF },
	{ 0xFFFE, 0xFFFF },
	{ 0x1FFFE, 0x1FFFF },
	{ 0x2FFFE, 0x2FFFF },
	{ 0x3FFFE, 0x3FFFF },
	{ 0x4FFFE, 0x4FFFF },
	{ 0x5FFFE, 0x5FFFF },
	{ 0x6FFFE, 0x6FFFF },
	{ 0x7FFFE, 0x7FFFF },
	{ 0x8FFFE, 0x8FFFF },
	{ 0x9FFFE, 0x9FFFF },
	{ 0xAFFFE, 0xAFFFF },
	{ 0xBFFFE, 0xBFFFF },
	{ 0xCFFFE, 0xCFFFF },
	{ 0xDFFFE, 0xDFFFF },
	{ 0xEFFFE, 0xEFFFF },
	{ 0xFFFFE, 0xFFFFF },
	{ 0x10FFFE, 0x10FFFF },
	/* C.5 surrogate codes */
	{ 0xD800, 0xDFFF },
	/* C.6 inappropriate for plain text */
	{ 0xFFF9, 0xFFFD },
	/* C.7 inappropriate for canonical representation */
	{ 0x2FF0, 0x2FFB },
	/* C.8 change display properties or deprecated */
	{ 0x0340, 0x0341 },
	{ 0x200E, 0x200F },
	{ 0x202A, 0x202E },
	{ 0x206A, 0x206F },
	/* C.9 tagging characters */
	{ 0xE0001, 0xE0001 },
	{ 0xE0020, 0xE007F },
};

static bool in_ranges(uint32_t cp, const struct cp_range *t, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (cp >= t[i].lo && cp <= t[i].hi)
			return true;
	return false;
}

/* A.1: not assigned in Unicode 3.2 (RFC 4013 2.5 prohibits unassigned code
 * points in stored strings, and PostgreSQL applies that to passwords). */
static bool unassigned_in_3_2(uint32_t cp)
{
	UVersionInfo age;
	icu_api.char_age((UChar32)cp, age);
	if (age[0] == 0 && age[1] == 0 && age[2] == 0 && age[3] == 0)
		return true;
	return age[0] > 3 || (age[0] == 3 && age[1] > 2);
}

static bool rand_al_cat(uint32_t cp)
{
	UCharDirection d = icu_api.char_direction((UChar32)cp);
	return d == U_RIGHT_TO_LEFT || d == U_RIGHT_TO_LEFT_ARABIC;
}

static bool l_cat(uint32_t cp)
{
	return icu_api.char_direction((UChar32)cp) == U_LEFT_TO_RIGHT;
}

static bool is_ascii(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] & 0x80)
			return false;
	return true;
}

/* One code point of strict UTF-8 (RFC 3629: no overlongs, no surrogates,
 * nothing past U+10FFFF), as PostgreSQL's pg_utf8_islegal; 0 when illegal. */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
	unsigned char c = s[0];
	size_t len = c < 0x80                 ? 1
		     : c >= 0xC2 && c <= 0xDF ? 2
		     : c >= 0xE0 && c <= 0xEF ? 3
		     : c >= 0xF0 && c <= 0xF4 ? 4
					      : 0;
	if (len == 0 || len > n)
		return 0;
	uint32_t v = len == 1 ? c : c & (0xFF >> (len + 1));
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		v = v << 6 | (s[i] & 0x3F);
	}
	if ((len == 3 && (v < 0x800 || (v >= 0xD800 && v <= 0xDFFF))) ||
	    (len == 4 && (v < 0x10000 || v > 0x10FFFF)))
		return 0;
	*cp = v;
	return len;
}

/* Step 1, map: decodes and maps in one pass; *n code points out. */
static bool decode_and_map(const char *in, size_t in_len, uint32_t *cps, size_t *n)
{
	size_t k = 0;
	for (size_t i = 0; i < in_len;) {
		uint32_t cp;
		size_t used = utf8_decode((const unsigned char *)in + i, in_len - i, &cp);
		if (used == 0)
			return false;
		i += used;
		if (IN_TABLE(cp, non_ascii_space))
			cps[k++] = 0x20;
		else if (!IN_TABLE(cp, mapped_to_nothing))
			cps[k++] = cp;
	}
	*n = k;
	return true;
}

/* Steps 3 and 4 on the mapped code points. */
static bool allowed(const uint32_t *cps, size_t n)
{
	bool any_ral = false, any_l = false;
	for (size_t i = 0; i < n; i++) {
		if (IN_TABLE(cps[i], prohibited) || unassigned_in_3_2(cps[i]))
			return false;
		any_ral = any_ral || rand_al_cat(cps[i]);
		any_l = any_l || l_cat(cps[i]);
	}
	if (!any_ral)
		return true;
	return !any_l && rand_al_cat(cps[0]) && rand_al_cat(cps[n - 1]);
}

/* Step 2, NFKC, through UTF-16 (ICU's form); the result as UTF-8. */
static bool nfkc_utf8(const uint32_t *cps, size_t n, char **out, size_t *out_len)
{
	UErrorCode e = U_ZERO_ERROR;
	const UNormalizer2 *nfkc = icu_api.nfkc_instance(&e);
	int32_t cap16 = (int32_t)(2 * n + 1), len16 = 0, norm_len = 0, len8 = 0;
	UChar *u16 = xmalloc((size_t)cap16 * sizeof(UChar)), *norm = NULL;
	char *u8 = NULL;
	bool ok = false;
	icu_api.str_from_utf32(u16, cap16, &len16, (const UChar32 *)cps, (int32_t)n, &e);
	if (U_SUCCESS(e)) {
		norm_len = icu_api.normalize(nfkc, u16, len16, NULL, 0, &e);
		e = e == U_BUFFER_OVERFLOW_ERROR ? U_ZERO_ERROR : e;
	}
	if (U_SUCCESS(e)) {
		norm = xmalloc(((size_t)norm_len + 1) * sizeof(UChar));
		icu_api.normalize(nfkc, u16, len16, norm, norm_len + 1, &e);
	}
	if (U_SUCCESS(e)) {
		icu_api.str_to_utf8(NULL, 0, &len8, norm, norm_len, &e);
		e = e == U_BUFFER_OVERFLOW_ERROR ? U_ZERO_ERROR : e;
	}
	if (U_SUCCESS(e)) {
		u8 = xmalloc((size_t)len8 + 1);
		icu_api.str_to_utf8(u8, len8 + 1, NULL, norm, norm_len, &e);
		ok = U_SUCCESS(e);
	}
	secret_wipe(u16, (size_t)cap16 * sizeof(UChar));
	free(u16);
	if (norm) {
		secret_wipe(norm, ((size_t)norm_len + 1) * sizeof(UChar));
		free(norm);
	}
	if (!ok) {
		secret_free(u8);
		return false;
	}
	*out = u8;
	*out_len = (size_t)len8;
	return true;
}

/* The first failure is logged once: every later non-ASCII password fails the
 * same way. */
static bool icu_loaded(void)
{
	static bool logged;
	char err[256];
	if (icu_api_load(err, sizeof(err)))
		return true;
	if (!logged)
		log_error("SASLprep of a non-ASCII password needs ICU: %s", err);
	logged = true;
	return false;
}

enum saslprep_result saslprep(const char *in, size_t in_len, char **out, size_t *out_len)
{
	*out = NULL;
	*out_len = 0;
	if (in_len > SASLPREP_MAX_INPUT)
		return SASLPREP_TOO_LONG;
	if (is_ascii(in, in_len)) {
		*out = xstrndup(in, in_len);
		*out_len = in_len;
		return SASLPREP_OK;
	}
	if (!icu_loaded())
		return SASLPREP_FAILED;
	uint32_t *cps = xmalloc((in_len + 1) * sizeof(*cps));
	size_t n = 0;
	enum saslprep_result rc = SASLPREP_OK;
	if (!decode_and_map(in, in_len, cps, &n))
		rc = SASLPREP_INVALID_UTF8;
	else if (n == 0 || !allowed(cps, n))
		rc = SASLPREP_PROHIBITED;
	else if (!nfkc_utf8(cps, n, out, out_len))
		rc = SASLPREP_FAILED;
	secret_wipe(cps, (in_len + 1) * sizeof(*cps));
	free(cps);
	return rc;
}

char *saslprep_or_raw(const char *in, size_t in_len, size_t *out_len)
{
	char *prepped;
	if (saslprep(in, in_len, &prepped, out_len) == SASLPREP_OK)
		return prepped;
	*out_len = in_len;
	return xstrndup(in, in_len);
}
