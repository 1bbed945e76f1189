/* The documentation of [credential.NAME] sections: every credential type,
 * what it is for and each of its keys in one sentence. The reference page,
 * the man page tokenbouncer.ini(5) and the sample configuration are printed
 * from this table; a unit test checks that its keys are exactly the ones the
 * token providers accept, so the two cannot drift apart. */
#ifndef TB_CORE_CREDENTIAL_DOC_H
#define TB_CORE_CREDENTIAL_DOC_H
#include <stddef.h>
#include <stdio.h>

struct credential_key_doc {
	const char *key;
	const char *doc;
};

struct credential_type_doc {
	const char *type;    /* "azure-client-secret" */
	const char *methods; /* the alias auth= values it serves */
	const char *doc;
	const struct credential_key_doc *keys; /* ends with a NULL key; "type" is implied */
	const char *example;                   /* a commented sample section body, lines joined by \n */
};

extern const struct credential_type_doc credential_type_docs[];
extern const size_t credential_type_doc_count;

/* Markdown for doc/config-reference.md (from "## [credential.NAME]" on). */
void credential_doc_print_md(FILE *f);
/* Commented examples of each token method for etc/tokenbouncer.ini: alias
 * lines (inside [databases]) and the [credential.NAME] sections they name. */
void credential_doc_print_sample_aliases(FILE *f);
void credential_doc_print_sample_sections(FILE *f);
#endif
