/* ICU's common library, loaded on first use. Linking it maps and relocates
 * libicuuc and libstdc++ (about 1.4 MB resident) in every process, and only
 * SASLprep of a non-ASCII SCRAM password needs it (pg/saslprep.c). ICU's
 * exported names carry its major version (unorm2_normalize_72); the names
 * are built from ICU's own renaming macros, so the version compiled against
 * is the one loaded. */
#ifndef TB_PG_ICU_API_H
#define TB_PG_ICU_API_H
#include <stdbool.h>
#include <stddef.h>
#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>

struct icu_api {
	void (*char_age)(UChar32 c, UVersionInfo age);
	UCharDirection (*char_direction)(UChar32 c);
	const UNormalizer2 *(*nfkc_instance)(UErrorCode *e);
	int32_t (*normalize)(const UNormalizer2 *n, const UChar *src, int32_t len, UChar *dest, int32_t cap,
			     UErrorCode *e);
	UChar *(*str_from_utf32)(UChar *dest, int32_t cap, int32_t *len, const UChar32 *src, int32_t srclen,
				 UErrorCode *e);
	char *(*str_to_utf8)(char *dest, int32_t cap, int32_t *len, const UChar *src, int32_t srclen,
			     UErrorCode *e);
};

/* Filled by icu_api_load; all NULL before. */
extern struct icu_api icu_api;

/* dlopen libicuuc.so.<ICU major> and resolve the table. Idempotent; false
 * with err set if it cannot (the answer is kept: one attempt per process). */
bool icu_api_load(char *err, size_t errlen);
#endif
