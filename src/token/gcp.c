/* The "gcp" provider family: checks [credential.NAME] sections of the gcp-*
 * types, resolves each into one token source (for gcp-default, the order of
 * spec §3.2: GOOGLE_APPLICATION_CREDENTIALS, the gcloud ADC file, then the
 * metadata server), and runs fetches for the token cache. */
#include "token/gcp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/file_read.h"
#include "core/util.h"
#include "token/azure_parse.h"
#include "token/provider.h"

#define ADC_FILE "application_default_credentials.json"
#define MAX_LIFETIME 43200

struct gcp_type {
	struct credential_type head; /* first: credential_type_find returns it */
	bool (*build)(const struct credential *c, struct gcp_source *s, char *err, size_t errlen);
};

struct provider_op {
	struct gcp_fetch *fetch;
	access_token_cb cb;
	void *arg;
	struct credential *c;
};

/* ---- helpers ---- */

static const char *env_value(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

static bool url_key(const struct credential *c, const char *key, const char *dflt, char **out, char *err,
		    size_t errlen)
{
	const char *v = credential_value(c, key);
	char why[300];
	if (!v) {
		*out = dflt ? xstrdup(dflt) : NULL;
		return true;
	}
	*out = azure_base_url(v, "https", true, why, sizeof(why));
	return *out || credential_fail(c, key, err, errlen, "%s: %s", key, why);
}

static void set_quota(const struct credential *c, struct gcp_source *s, const char *from_file)
{
	const char *q = credential_value(c, "quota_project");
	if (!q)
		q = env_value("GOOGLE_CLOUD_QUOTA_PROJECT");
	if (!q)
		q = from_file;
	free(s->quota_project);
	s->quota_project = q ? xstrdup(q) : NULL;
}

/* A credential file into s (a file source, or impersonation on top of one). */
static bool load_file(const struct credential *c, const char *key, const char *path, struct gcp_source *s,
		      char *err, size_t errlen)
{
	char why[400];
	size_t len = 0;
	char *json = file_read_all(path, GCP_MAX_FILE, &len, why, sizeof(why));
	struct gcp_file f;
	bool ok = json && gcp_file_parse(json, len, &f, why, sizeof(why));
	secret_free(json);
	if (!ok)
		return credential_fail(c, key, err, errlen, "%s: %s", path, why);
	set_quota(c, s, f.quota_project);
	if (f.type != GCP_FILE_IMPERSONATED) {
		s->kind = GCP_SRC_FILE;
		snprintf(s->label, sizeof(s->label), "%s",
			 f.type == GCP_FILE_SERVICE_ACCOUNT ? "service-account" : "authorized-user");
		s->file = f;
		/* A key file's token_uri is honoured; a section's token_uri wins (tests). */
		const char *file_uri = f.type == GCP_FILE_SERVICE_ACCOUNT ? f.token_uri : NULL;
		return url_key(c, "token_uri", file_uri ? file_uri : GCP_TOKEN_URI, &s->token_uri, err,
			       errlen);
	}
	s->kind = GCP_SRC_IMPERSONATE;
	snprintf(s->label, sizeof(s->label), "impersonated");
	s->target = f.target;
	s->iam_base = f.iam_base;
	memcpy(s->delegates, f.delegates, sizeof(s->delegates));
	s->ndelegates = f.ndelegates;
	s->lifetime = 3600;
	s->inner = xcalloc(1, sizeof(*s->inner));
	s->inner->kind = GCP_SRC_FILE;
	s->inner->owner = c->name;
	s->inner->file = *f.source;
	snprintf(s->inner->label, sizeof(s->inner->label), "impersonation source");
	free(f.source);
	free(f.client_email);
	free(f.quota_project);
	const char *src_uri = s->inner->file.type == GCP_FILE_SERVICE_ACCOUNT ? s->inner->file.token_uri
									      : NULL;
	return url_key(c, "token_uri", src_uri ? src_uri : GCP_TOKEN_URI, &s->inner->token_uri, err, errlen);
}

static void use_metadata(const struct credential *c, struct gcp_source *s, bool ping)
{
	s->kind = GCP_SRC_METADATA;
	s->ping = ping;
	snprintf(s->label, sizeof(s->label), "metadata");
	set_quota(c, s, NULL);
}

/* ---- per type ---- */

/* §3.2: the first of the environment's file, gcloud's file, the metadata server. */
static bool build_default(const struct credential *c, struct gcp_source *s, char *err, size_t errlen)
{
	const char *gac = env_value("GOOGLE_APPLICATION_CREDENTIALS");
	if (gac)
		return load_file(c, NULL, gac, s, err, errlen);
	const char *dir = env_value("CLOUDSDK_CONFIG");
	char *path = dir                 ? xasprintf("%s/%s", dir, ADC_FILE)
		     : env_value("HOME") ? xasprintf("%s/.config/gcloud/%s", env_value("HOME"), ADC_FILE)
					 : NULL;
	bool found = path && access(path, F_OK) == 0;
	bool ok = found ? load_file(c, NULL, path, s, err, errlen) : true;
	if (found) {
		free(path);
		return ok;
	}
	const char *no_gce = env_value("NO_GCE_CHECK");
	if (no_gce && strcasecmp(no_gce, "true") == 0) {
		s->kind = GCP_SRC_NONE;
		snprintf(s->label, sizeof(s->label), "none");
		s->why = xasprintf(
			"gcp-default found no credentials: GOOGLE_APPLICATION_CREDENTIALS is not set, "
			"%s does not exist, and NO_GCE_CHECK=true rules out the metadata server",
			path ? path : "~/.config/gcloud/" ADC_FILE);
	} else {
		use_metadata(c, s, true);
	}
	free(path);
	return true;
}

static bool build_service_account(const struct credential *c, struct gcp_source *s, char *err, size_t errlen)
{
	const char *path = credential_value(c, "key_file");
	if (!path)
		return credential_fail(c, NULL, err, errlen, "type %s needs key_file", c->type);
	if (!load_file(c, "key_file", path, s, err, errlen))
		return false;
	if (s->kind != GCP_SRC_FILE || s->file.type != GCP_FILE_SERVICE_ACCOUNT)
		return credential_fail(c, "key_file", err, errlen, "%s is not a service_account key file",
				       path);
	return true;
}

static bool build_authorized_user(const struct credential *c, struct gcp_source *s, char *err, size_t errlen)
{
	const char *path = credential_value(c, "file");
	if (!path)
		return credential_fail(c, NULL, err, errlen, "type %s needs file", c->type);
	if (!load_file(c, "file", path, s, err, errlen))
		return false;
	if (s->kind != GCP_SRC_FILE || s->file.type != GCP_FILE_AUTHORIZED_USER)
		return credential_fail(c, "file", err, errlen, "%s is not an authorized_user file", path);
	return true;
}

static bool parse_delegates(const struct credential *c, struct gcp_source *s, char *err, size_t errlen)
{
	const char *v = credential_value(c, "delegates");
	while (v && *v) {
		size_t n = strcspn(v, ",");
		size_t lead = strspn(v, " ");
		size_t len = n > lead ? n - lead : 0;
		while (len > 0 && v[lead + len - 1] == ' ')
			len--;
		if (len) {
			if (s->ndelegates == GCP_MAX_DELEGATES)
				return credential_fail(c, "delegates", err, errlen, "at most %d delegates",
						       GCP_MAX_DELEGATES);
			s->delegates[s->ndelegates++] = xstrndup(v + lead, len);
		}
		v += n + (v[n] == ',');
	}
	return true;
}

static bool build_impersonate(const struct credential *c, struct gcp_source *s, char *err, size_t errlen)
{
	const char *target = credential_value(c, "target_principal"), *life = credential_value(c, "lifetime");
	if (!target || !strchr(target, '@'))
		return credential_fail(c, "target_principal", err, errlen,
				       "type %s needs target_principal (the "
				       "service account's e-mail)",
				       c->type);
	s->kind = GCP_SRC_IMPERSONATE;
	snprintf(s->label, sizeof(s->label), "impersonated");
	s->target = xstrdup(target);
	s->lifetime = 3600;
	if (life) {
		char *end;
		long long x = strtoll(life, &end, 10);
		if (end == life || (*end && strcmp(end, "s") != 0) || x < 1 || x > MAX_LIFETIME)
			return credential_fail(c, "lifetime", err, errlen, "lifetime must be 1..%d seconds",
					       MAX_LIFETIME);
		s->lifetime = x;
	}
	set_quota(c, s, NULL);
	if (!parse_delegates(c, s, err, errlen) ||
	    !url_key(c, "iam_credentials_endpoint", GCP_IAM_ENDPOINT, &s->iam_base, err, errlen))
		return false;
	const char *src = credential_value(c, "source");
	if (src) {
		if (strcasecmp(src, c->name) == 0)
			return credential_fail(c, "source", err, errlen,
					       "source cannot name the credential itself");
		s->source_name = xstrdup(src);
		return true;
	}
	s->inner = xcalloc(1, sizeof(*s->inner));
	s->inner->owner = c->name;
	return build_default(c, s->inner, err, errlen);
}

static bool build_metadata(const struct credential *c, struct gcp_source *s, char *err, size_t errlen)
{
	use_metadata(c, s, false);
	return true;
}

static const char *const default_keys[] = { "quota_project", "token_uri", "iam_credentials_endpoint", NULL };
static const char *const service_account_keys[] = { "key_file", "token_uri", "quota_project", NULL };
static const char *const authorized_user_keys[] = { "file", "token_uri", "quota_project", NULL };
static const char *const impersonate_keys[] = {
	"target_principal",         "delegates",     "lifetime",  "source",
	"iam_credentials_endpoint", "quota_project", "token_uri", NULL
};
static const char *const metadata_keys[] = { "quota_project", NULL };

static const struct gcp_type gcp_types[] = {
	{ { "gcp-default", default_keys }, build_default },
	{ { "gcp-service-account", service_account_keys }, build_service_account },
	{ { "gcp-authorized-user", authorized_user_keys }, build_authorized_user },
	{ { "gcp-impersonate", impersonate_keys }, build_impersonate },
	{ { "gcp-metadata", metadata_keys }, build_metadata },
};

const char *const *gcp_credential_keys(const char *type)
{
	return credential_type_keys(CREDENTIAL_TYPE_FIND(gcp_types, type));
}

static bool gcp_validate(struct credential *c, char *err, size_t errlen)
{
	const struct gcp_type *t = (const struct gcp_type *)CREDENTIAL_TYPE_FIND(gcp_types, c->type);
	if (!t)
		return credential_fail(
			c, "type", err, errlen,
			"unknown type \"%s\" (expected gcp-default, "
			"gcp-service-account, gcp-authorized-user, gcp-impersonate or gcp-metadata)",
			c->type);
	if (!credential_check_keys(c, &t->head, err, errlen))
		return false;
	struct gcp_source *s = xcalloc(1, sizeof(*s));
	s->owner = c->name;
	c->state = s;
	return t->build(c, s, err, errlen);
}

static void gcp_free_state(struct credential *c)
{
	if (!c->state)
		return;
	gcp_source_clear(c->state);
	free(c->state);
	c->state = NULL;
}

/* ---- fetching ---- */

static void on_fetch(void *arg, const struct gcp_token *tok, const char *source, const char *err)
{
	struct provider_op *op = arg;
	op->fetch = NULL;
	if (tok) {
		snprintf(op->c->source, sizeof(op->c->source), "%s", source);
		op->cb(op->arg, tok->access_token, strlen(tok->access_token), tok->expires_at, 0, NULL);
	} else {
		op->cb(op->arg, NULL, 0, 0, 0, err);
	}
	free(op);
}

static struct provider_op *gcp_get_token(struct credential *c, const char *scope, access_token_cb cb,
					 void *arg)
{
	struct provider_op *op = xcalloc(1, sizeof(*op));
	op->c = c;
	op->cb = cb;
	op->arg = arg;
	op->fetch = gcp_fetch_start(c->state, scope && *scope ? scope : GCP_CLOUD_PLATFORM, on_fetch, op);
	return op;
}

static void gcp_cancel(struct provider_op *op)
{
	if (!op)
		return;
	gcp_fetch_cancel(op->fetch);
	free(op);
}

const char *gcp_credential_email(const struct credential *c)
{
	return c && c->family == CRED_FAMILY_GCP && c->state ? gcp_source_email(c->state) : NULL;
}

bool gcp_credential_email_later(const struct credential *c)
{
	const struct gcp_source *s = c && c->family == CRED_FAMILY_GCP ? c->state : NULL;
	return s && s->kind == GCP_SRC_METADATA;
}

const char *gcp_credential_email_error(const struct credential *c)
{
	const struct gcp_source *s = c && c->family == CRED_FAMILY_GCP ? c->state : NULL;
	if (!s || s->kind != GCP_SRC_METADATA)
		return "this credential's type names no e-mail";
	return s->email_error[0] ? s->email_error : s->email_asked ? "no answer" : "not asked yet";
}

const char *gcp_credential_quota_project(const struct credential *c)
{
	const struct gcp_source *s = c && c->family == CRED_FAMILY_GCP ? c->state : NULL;
	return s ? s->quota_project : NULL;
}

/* google-auth: stale 3 min 45 s before expiry (§3.5). */
const struct provider_family gcp_family = {
	.name = "gcp",
	.validate = gcp_validate,
	.get_token = gcp_get_token,
	.get_aws = NULL,
	.cancel = gcp_cancel,
	.free_state = gcp_free_state,
	.refresh_margin = 225,
	.hard_margin = 30,
};
