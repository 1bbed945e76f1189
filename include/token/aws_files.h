/* The AWS shared config and credentials files (spec/cloud-tokens.md §1.3.2,
 * §1.3.3-1.3.5) and what a profile in them means. A small line-based INI
 * reader of our own (no line-length limit: session tokens are ~1 KiB, and
 * libinih cuts lines at 200 bytes). Pure: the environment and home directory
 * are inputs; values are wiped when freed. */
#ifndef TB_TOKEN_AWS_FILES_H
#define TB_TOKEN_AWS_FILES_H
#include "token/aws_parse.h"

#include <stdbool.h>
#include <stddef.h>

/* Larger files are rejected (real ones are a few KiB). */
#define AWS_FILES_MAX_SIZE (4 * 1024 * 1024)
/* Defaults when AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE are unset;
 * pass them through aws_files_expand_path. */
#define AWS_FILES_DEFAULT_CONFIG "~/.aws/config"
#define AWS_FILES_DEFAULT_CREDENTIALS "~/.aws/credentials"

enum aws_file_kind {
	AWS_FILE_CONFIG,      /* sections [default] and [profile <name>] */
	AWS_FILE_CREDENTIALS, /* section name = profile name */
};

/* Both files, parsed. Either may be empty (missing file). */
struct aws_files;

struct aws_files *aws_files_new(void);
void aws_files_free(struct aws_files *f);

/* Parses text as the given file, replacing what was parsed for that kind
 * before. name is used in error messages ("<name>: line N: ..."). Rules:
 * "[section]" headers, "key = value" or "key: value" (keys lower-cased,
 * both sides trimmed, no inline comments), full-line comments starting with
 * "#" or ";", indented lines continue the previous value, a key with an empty
 * value followed by indented lines is a nested block (ignored), CRLF and a
 * UTF-8 BOM are accepted, repeated sections merge and later keys win. */
bool aws_files_parse(struct aws_files *f, enum aws_file_kind kind, const char *text, size_t len,
		     const char *name, char *err, size_t errlen);
/* Reads and parses path. A file that does not exist leaves that kind empty
 * and is not an error (*found = false; found may be NULL). */
bool aws_files_load(struct aws_files *f, enum aws_file_kind kind, const char *path, bool *found, char *err,
		    size_t errlen);

/* Whether either file defines the profile. */
bool aws_files_has_profile(const struct aws_files *f, const char *profile);
/* A key of one file's profile; NULL when unset, empty or a nested block.
 * The string belongs to f and lives until that file is parsed again or f is
 * freed. */
const char *aws_files_get_in(const struct aws_files *f, enum aws_file_kind kind, const char *profile,
			     const char *key);
/* A key of the merged profile: the credentials file's value over the config
 * file's (botocore's full_config, used for role/process lookups). */
const char *aws_files_get(const struct aws_files *f, const char *profile, const char *key);

/* "$NAME" and "${NAME}" from envp ("NAME=value" strings, NULL-terminated;
 * unknown names stay as written), then a leading "~" or "~/" becomes home
 * (or envp's HOME when home is NULL; "~user" is left alone). malloc'd. */
char *aws_files_expand_path(const char *path, const char *home, char *const *envp);

/* POSIX shell-word splitting for credential_process, without a shell:
 * blanks separate words; '...' is literal; in "..." a backslash escapes
 * $ ` " \ and newline only; outside quotes a backslash escapes any
 * character and backslash-newline disappears. No expansion of any kind.
 * Unquoted | & ; < > ( ) are rejected (they would need a shell), as are
 * unterminated quotes and an empty command. Returns a NULL-terminated
 * malloc'd argv (free with aws_files_argv_free); *argc may be NULL. */
char **aws_files_split_command(const char *cmd, size_t *argc, char *err, size_t errlen);
void aws_files_argv_free(char **argv);

/* --- What a profile resolves to (botocore providers 2, 3, 5, 7, 8) --- */

/* Where the first credentials of the plan come from. */
enum aws_source_kind {
	AWS_SOURCE_NONE,
	AWS_SOURCE_STATIC,       /* keys in a file (static_creds, static_file) */
	AWS_SOURCE_WEB_IDENTITY, /* AssumeRoleWithWebIdentity (web_identity_*) */
	AWS_SOURCE_PROCESS,      /* credential_process (process_*) */
	AWS_SOURCE_ENVIRONMENT,  /* credential_source = Environment */
	AWS_SOURCE_IMDS,         /* credential_source = Ec2InstanceMetadata */
	AWS_SOURCE_CONTAINER,    /* credential_source = EcsContainer */
};

/* One STS AssumeRole call, signed with the credentials before it. */
struct aws_role_step {
	char *profile;
	char *role_arn;
	char *role_session_name; /* NULL: use "botocore-session-<epoch>" */
	char *external_id;       /* NULL: omit */
	int duration_seconds;    /* 0: omit (STS default 3600) */
};

struct aws_profile_plan {
	enum aws_source_kind source;
	char *source_profile; /* profile that supplied the source; NULL for the environment */
	struct aws_credentials static_creds;
	enum aws_file_kind static_file;
	char *web_identity_token_file; /* re-read on every refresh */
	char *web_identity_role_arn;
	char *web_identity_session_name; /* NULL: use "botocore-session-<epoch>" */
	char *process_command;           /* as configured, for messages */
	char **process_argv;             /* split; NULL-terminated */
	struct aws_role_step *roles;     /* applied in order after the source */
	size_t nroles;
	char *region; /* the selected profile's region, or NULL */
};
void aws_profile_plan_clear(struct aws_profile_plan *p);

/* Environment variables that take part in profile resolution; NULL = unset.
 * (Read them yourself; this module does not call getenv.) */
struct aws_files_env {
	const char *web_identity_token_file; /* AWS_WEB_IDENTITY_TOKEN_FILE */
	const char *role_arn;                /* AWS_ROLE_ARN */
	const char *role_session_name;       /* AWS_ROLE_SESSION_NAME */
};

enum aws_resolve_result {
	AWS_RESOLVE_OK,    /* *plan filled */
	AWS_RESOLVE_NONE,  /* nothing here: go on with container / IMDS */
	AWS_RESOLVE_ERROR, /* configuration error, in err */
};

/* Resolves profile in botocore's order: role_arn without
 * web_identity_token_file -> assume role (exactly one of source_profile /
 * credential_source; source profiles resolved recursively, loops and
 * mfa_serial rejected); web identity (env over profile, role_arn required);
 * static keys in the credentials file; credential_process; static keys in
 * the config file. env may be NULL. */
enum aws_resolve_result aws_files_resolve(const struct aws_files *f, const char *profile,
					  const struct aws_files_env *env, struct aws_profile_plan *plan,
					  char *err, size_t errlen);
#endif
