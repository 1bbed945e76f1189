/* The parameter tables: every setting the configuration file accepts, with its
 * type, default, bounds, reload behaviour and one-line documentation. Parsing,
 * SHOW CONFIG, the sample file and the reference page all read these tables,
 * so a parameter is added in exactly one place.
 *
 * String parameters: a parameter whose default is NULL is NULL when unset or
 * set to an empty value; a parameter with a text default is never NULL (it may
 * be ""). */
#ifndef TB_CORE_PARAMS_H
#define TB_CORE_PARAMS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include "core/config-t.h"

enum param_type {
	PARAM_STRING,
	PARAM_INT,
	PARAM_BOOL,
	PARAM_TIME,
	PARAM_ENUM,
};

struct param_enum_val {
	const char *name;
	int value;
};

struct param_def {
	const char *name;
	enum param_type type;
	size_t offset;                          /* offsetof() into the struct the table describes */
	const char *default_value;              /* as text, parsed like the file; NULL = unset */
	long long min, max;                     /* PARAM_INT bounds; PARAM_TIME bounds in microseconds */
	const struct param_enum_val *enum_vals; /* PARAM_ENUM: ends with a NULL name */
	bool reloadable;
	bool secret;     /* masked in SHOW CONFIG, wiped on free */
	const char *doc; /* one sentence */
	/* Optional extra check for PARAM_STRING values; expect describes what is
	 * accepted, for the error message. */
	bool (*validate)(const char *value);
	const char *expect;
	/* A second name accepted for the same setting (PgBouncer's job_name for
	 * service_name, reserve_pool_size for reserve_pool). */
	const char *synonym;
	/* Set for a PgBouncer parameter that is accepted but changes nothing
	 * here: why, in a few words. Setting it to anything but its default
	 * gives a warning with this text. */
	const char *ignored;
};

/* [tokenbouncer] parameters; offsets into struct tb_config. */
extern const struct param_def param_table[];
extern const size_t param_count;
/* [databases] keys; offsets into struct db_alias. */
extern const struct param_def param_db_table[];
extern const size_t param_db_count;
/* [users] keys; offsets into struct user_cfg. */
extern const struct param_def param_user_table[];
extern const size_t param_user_count;
/* [peers] entry keys */
extern const struct param_def param_peer_table[];
extern const size_t param_peer_count;

/* Case-insensitive lookups by name or synonym; NULL if unknown. */
const struct param_def *param_find(const char *name);
const struct param_def *param_find_in(const struct param_def *table, size_t count, const char *name);

/* Parse value, check bounds, store into the struct at base (freeing an old
 * string). On failure nothing is stored and err holds
 * "invalid value for NAME: "VALUE" (expected ...)" (never the value of a
 * secret). */
bool param_store(void *base, const struct param_def *p, const char *value, char *err, size_t errlen);
bool param_set(struct tb_config *cfg, const struct param_def *p, const char *value, char *err, size_t errlen);
/* Free the string a parameter holds (wiped if secret) and set it to NULL. */
void param_clear(void *base, const struct param_def *p);
bool param_equal(const void *a, const void *b, const struct param_def *p);
/* Copy the value of p from src to dst (duplicating strings). */
void param_copy(void *dst, const void *src, const struct param_def *p);

/* Value as text, for SHOW CONFIG: times in seconds like PgBouncer ("3600",
 * "0.5"), booleans as 1/0, unset strings as "". */
void param_format(const struct tb_config *cfg, const struct param_def *p, bool mask_secret, char *buf,
		  size_t len);
void param_format_at(const void *base, const struct param_def *p, bool mask_secret, char *buf, size_t len);
void param_format_time(usec_t t, char *buf, size_t len);

/* client_tls_protocols / server_tls_protocols: which versions a value allows.
 * Returns false for an invalid list. */
bool param_parse_tls_protocols(const char *value, bool *tls12, bool *tls13);

/* Exactly the content of etc/tokenbouncer.ini and doc/config-reference.md. */
void params_print_sample(FILE *f);
void params_print_reference(FILE *f);
#endif
