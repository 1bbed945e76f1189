/* The "azure" provider family: checks [credential.NAME] sections of the
 * azure-* types, resolves each into a token source (or, for azure-default,
 * the chain of spec §2.2: environment, workload identity, managed identity,
 * Azure CLI, with the unavailable-versus-failed rule and stickiness), and
 * runs fetches for the token cache. */
#include "token/azure.h"

#include <errno.h>
#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "token/provider.h"

#define DEFAULT_SCOPE "https://ossrdbms-aad.database.windows.net/.default"
#define CHAIN_PREFIX "azure-default found no usable source: "

enum member {
	M_ENV,
	M_WORKLOAD,
	M_MANAGED,
	M_CLI,
	M_COUNT,
};

static const char *const member_names[M_COUNT] = {
	"environment",
	"workload-identity",
	"managed-identity",
	"cli",
};

/* AZURE_TOKEN_CREDENTIALS values naming one credential (§2.2). */
static const char *const member_sdk_names[M_COUNT] = {
	"environmentcredential",
	"workloadidentitycredential",
	"managedidentitycredential",
	"azureclicredential",
};

struct az_member {
	bool enabled;    /* in the chain */
	bool configured; /* else reason says what is missing */
	char reason[200];
	struct az_source src;
};

struct az_state {
	bool chain;
	struct az_source single;
	struct az_member members[M_COUNT];
	int sticky; /* member that answered first, -1 = none yet */
};

struct provider_op {
	struct credential *c;
	struct az_state *st;
	char *scope;
	access_token_cb cb;
	void *arg;
	int member;
	bool sticky_run;
	struct az_fetch *fetch;
	struct event *later;
	char why[900]; /* unavailable members so far */
};

/* ---- configuration helpers ---- */

static const char *env_value(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static bool parse_bool(const char *v, bool *out)
{
	static const char *const yes[] = { "true", "yes", "on", "1" }, *const no[] = { "false", "no", "off",
										       "0" };
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0 || strcasecmp(v, no[i]) == 0) {
			*out = strcasecmp(v, yes[i]) == 0;
			return true;
		}
	}
	return false;
}

/* A value from the key, else from the environment variable; required. */
static bool need(const struct credential *c, const char *key, const char *env, char **out, char *err,
		 size_t errlen)
{
	const char *v = credential_value(c, key);
	if (!v && env)
		v = env_value(env);
	if (!v) {
		if (env)
			return credential_fail(c, NULL, err, errlen,
					       "type %s needs %s (or the environment variable %s)", c->type,
					       key, env);
		return credential_fail(c, NULL, err, errlen, "type %s needs %s", c->type, key);
	}
	*out = xstrdup(v);
	return true;
}

static bool check_tenant(const struct credential *c, const char *key, const char *tenant, char *err,
			 size_t errlen)
{
	if (azure_tenant_ok(tenant))
		return true;
	return credential_fail(c, key, err, errlen,
			       "tenant id \"%s\" is not valid (letters, digits, '-' and '.')", tenant);
}

static bool authority_key(const struct credential *c, struct az_source *s, char *err, size_t errlen)
{
	const char *v = credential_value(c, "authority_host");
	char why[300];
	if (!v)
		return true;
	s->authority = azure_base_url(v, "https", true, why, sizeof(why));
	return s->authority || credential_fail(c, "authority_host", err, errlen, "authority_host: %s", why);
}

/* An inline secret in a file others can read earns a warning (not an error:
 * the operator may have reasons). */
static void warn_inline(const struct credential *c, const char *key)
{
	struct stat st;
	if (credential_value(c, key) && c->file && stat(c->file, &st) == 0 && (st.st_mode & 077))
		log_warning("%s:%d: [credential.%s]: %s is written in a file that group or others can "
			    "read; prefer a *_file or *_env key, or chmod 600 %s",
			    c->file, credential_line(c, key), c->name, key, c->file);
}

/* ---- per type ---- */

static bool build_client(const struct credential *c, struct az_source *s, const char *tenant_env,
			 const char *client_env, char *err, size_t errlen)
{
	return need(c, "tenant_id", tenant_env, &s->tenant_id, err, errlen) &&
	       check_tenant(c, "tenant_id", s->tenant_id, err, errlen) &&
	       need(c, "client_id", client_env, &s->client_id, err, errlen) &&
	       authority_key(c, s, err, errlen);
}

static bool build_secret(struct credential *c, struct az_state *st, char *err, size_t errlen)
{
	struct az_source *s = &st->single;
	s->kind = AZ_CLIENT_SECRET;
	snprintf(s->label, sizeof(s->label), "client-secret");
	if (!build_client(c, s, NULL, NULL, err, errlen))
		return false;
	const char *inline_v = credential_value(c, "client_secret"),
		   *file = credential_value(c, "client_secret_file");
	const char *env = credential_value(c, "client_secret_env");
	if (!!inline_v + !!file + !!env != 1)
		return credential_fail(c, NULL, err, errlen,
				       "type %s needs exactly one of client_secret_file, "
				       "client_secret_env and client_secret",
				       c->type);
	if (file && access(file, R_OK) != 0)
		return credential_fail(c, "client_secret_file", err, errlen,
				       "cannot read client_secret_file %s: %s", file, strerror(errno));
	if (env && !env_value(env))
		return credential_fail(c, "client_secret_env", err, errlen,
				       "the environment variable %s "
				       "(client_secret_env) is not set",
				       env);
	warn_inline(c, "client_secret");
	s->secret = dup_or_null(inline_v);
	s->secret_file = dup_or_null(file);
	s->secret_env = dup_or_null(env);
	return true;
}

/* Loads the certificate once now, so a wrong path or password is a
 * configuration error rather than a failed login later. */
static bool check_certificate(const struct credential *c, const char *key, const struct az_source *s,
			      char *err, size_t errlen)
{
	FILE *fp = fopen(s->cert_file, "rbe");
	if (!fp)
		return credential_fail(c, key, err, errlen, "cannot read %s: %s", s->cert_file,
				       strerror(errno));
	char *buf = xmalloc(256 * 1024);
	size_t n = fread(buf, 1, 256 * 1024, fp);
	fclose(fp);
	char why[300];
	struct azure_cert *cert = azure_cert_load(buf, n, s->cert_password, why, sizeof(why));
	secret_wipe(buf, n);
	free(buf);
	azure_cert_free(cert);
	return cert || credential_fail(c, key, err, errlen, "%s: %s", s->cert_file, why);
}

static bool build_cert(struct credential *c, struct az_state *st, char *err, size_t errlen)
{
	struct az_source *s = &st->single;
	s->kind = AZ_CLIENT_CERT;
	snprintf(s->label, sizeof(s->label), "client-certificate");
	if (!build_client(c, s, NULL, NULL, err, errlen) ||
	    !need(c, "certificate_file", NULL, &s->cert_file, err, errlen))
		return false;
	const char *chain = credential_value(c, "send_certificate_chain");
	if (chain && !parse_bool(chain, &s->send_chain))
		return credential_fail(c, "send_certificate_chain", err, errlen,
				       "send_certificate_chain must be "
				       "true or false, not \"%s\"",
				       chain);
	warn_inline(c, "certificate_password");
	s->cert_password = dup_or_null(credential_value(c, "certificate_password"));
	return check_certificate(c, "certificate_file", s, err, errlen);
}

static bool build_workload(struct credential *c, struct az_state *st, char *err, size_t errlen)
{
	struct az_source *s = &st->single;
	s->kind = AZ_WORKLOAD;
	snprintf(s->label, sizeof(s->label), "workload-identity");
	return build_client(c, s, "AZURE_TENANT_ID", "AZURE_CLIENT_ID", err, errlen) &&
	       need(c, "token_file", "AZURE_FEDERATED_TOKEN_FILE", &s->token_file, err, errlen);
}

/* Where to ask for a managed identity token (§2.7): an explicit IMDS
 * endpoint, else what the platform's environment says. */
static void select_managed(struct az_source *s, char *imds)
{
	const char *ep = env_value("IDENTITY_ENDPOINT"), *hdr = env_value("IDENTITY_HEADER");
	const char *client = s->mi_kind == AZURE_MI_CLIENT_ID ? s->mi_id
			     : s->mi_kind == AZURE_MI_SYSTEM  ? env_value("AZURE_CLIENT_ID")
							      : NULL;
	s->mi_where = AZ_MI_AT_IMDS;
	if (imds) {
		s->mi_base = imds;
		s->imds_known = true;
	} else if (ep && hdr && env_value("IDENTITY_SERVER_THUMBPRINT")) {
		s->mi_where = AZ_MI_UNSUPPORTED;
		s->mi_unsupported = xstrdup("managed identity on Service Fabric is not supported");
	} else if (ep && hdr) {
		s->mi_where = AZ_MI_AT_APP_SERVICE;
		s->mi_base = xstrdup(ep);
	} else if (ep && env_value("IMDS_ENDPOINT")) {
		s->mi_where = AZ_MI_UNSUPPORTED;
		s->mi_unsupported = xstrdup("managed identity on Azure Arc is not supported");
	} else if (env_value("MSI_ENDPOINT")) {
		s->mi_where = AZ_MI_UNSUPPORTED;
		s->mi_unsupported = xstrdup("managed identity through MSI_ENDPOINT (Azure ML, Cloud Shell) is "
					    "not supported");
	} else if (env_value("AZURE_AUTHORITY_HOST") && env_value("AZURE_TENANT_ID") &&
		   env_value("AZURE_FEDERATED_TOKEN_FILE") && client &&
		   azure_tenant_ok(env_value("AZURE_TENANT_ID"))) {
		s->mi_where = AZ_MI_AT_WORKLOAD;
		s->tenant_id = xstrdup(env_value("AZURE_TENANT_ID"));
		s->client_id = xstrdup(client);
		s->token_file = xstrdup(env_value("AZURE_FEDERATED_TOKEN_FILE"));
	} else {
		char why[300];
		const char *pod = env_value("AZURE_POD_IDENTITY_AUTHORITY_HOST");
		s->mi_base = pod ? azure_base_url(pod, "http", false, why, sizeof(why))
				 : xstrdup(AZURE_DEFAULT_IMDS);
		s->imds_known = pod != NULL;
		if (!s->mi_base) {
			s->mi_where = AZ_MI_UNSUPPORTED;
			s->mi_unsupported = xasprintf("AZURE_POD_IDENTITY_AUTHORITY_HOST: %s", why);
		}
	}
	snprintf(s->label, sizeof(s->label), "%s",
		 s->mi_where == AZ_MI_AT_APP_SERVICE ? "app-service"
		 : s->mi_where == AZ_MI_AT_WORKLOAD  ? "workload-identity"
						     : "imds");
}

static bool imds_key(const struct credential *c, char **out, char *err, size_t errlen)
{
	const char *v = credential_value(c, "imds_endpoint");
	char why[300];
	*out = NULL;
	if (!v)
		return true;
	*out = azure_base_url(v, "http", false, why, sizeof(why));
	return *out || credential_fail(c, "imds_endpoint", err, errlen, "imds_endpoint: %s", why);
}

static bool build_managed(struct credential *c, struct az_state *st, char *err, size_t errlen)
{
	static const char *const sel[] = { "client_id", "object_id", "resource_id" };
	struct az_source *s = &st->single;
	int n = 0;
	s->kind = AZ_MANAGED;
	for (int i = 0; i < 3; i++) {
		if (credential_value(c, sel[i])) {
			n++;
			s->mi_kind = (enum azure_mi_id)(AZURE_MI_CLIENT_ID + i);
		}
	}
	if (n > 1)
		return credential_fail(c, NULL, err, errlen,
				       "set at most one of client_id, object_id and resource_id");
	if (n == 1)
		s->mi_id = xstrdup(credential_value(c, sel[s->mi_kind - AZURE_MI_CLIENT_ID]));
	char *imds;
	if (!imds_key(c, &imds, err, errlen))
		return false;
	select_managed(s, imds);
	return true;
}

static bool build_cli(struct credential *c, struct az_state *st, char *err, size_t errlen)
{
	struct az_source *s = &st->single;
	s->kind = AZ_CLI;
	snprintf(s->label, sizeof(s->label), "cli");
	const char *tenant = credential_value(c, "tenant_id"), *sub = credential_value(c, "subscription");
	if (tenant && !check_tenant(c, "tenant_id", tenant, err, errlen))
		return false;
	for (const char *p = sub; p && *p; p++)
		if ((unsigned char)*p < ' ' || (p == sub && *p == '-'))
			return credential_fail(c, "subscription", err, errlen,
					       "subscription \"%s\" is not valid", sub);
	s->tenant_id = dup_or_null(tenant);
	s->subscription = dup_or_null(sub);
	return true;
}

/* ---- azure-default (§2.2) ---- */

/* AZURE_TOKEN_CREDENTIALS, then the exclude key. */
static bool chain_members(const struct credential *c, struct az_state *st, char *err, size_t errlen)
{
	const char *sel = env_value("AZURE_TOKEN_CREDENTIALS");
	char v[64] = "";
	if (sel) {
		size_t n = strlen(sel);
		while (n > 0 && (*sel == ' ' || *sel == '\t'))
			sel++, n--;
		while (n > 0 && (sel[n - 1] == ' ' || sel[n - 1] == '\t'))
			n--;
		snprintf(v, sizeof(v), "%.*s", (int)n, sel);
	}
	bool known = !*v || strcasecmp(v, "dev") == 0 || strcasecmp(v, "prod") == 0;
	for (int m = 0; m < M_COUNT; m++) {
		bool named = strcasecmp(v, member_sdk_names[m]) == 0;
		known = known || named;
		st->members[m].enabled = !*v || named || (strcasecmp(v, "dev") == 0 && m == M_CLI) ||
					 (strcasecmp(v, "prod") == 0 && m != M_CLI);
	}
	static const char *const others[] = { "visualstudiocodecredential", "azuredeveloperclicredential",
					      "azurepowershellcredential", "interactivebrowsercredential" };
	for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
		if (strcasecmp(v, others[i]) == 0)
			return credential_fail(
				c, NULL, err, errlen,
				"AZURE_TOKEN_CREDENTIALS=%s selects a credential "
				"tokenbouncer does not implement (it implements environmentcredential, "
				"workloadidentitycredential, managedidentitycredential, azureclicredential)",
				v);
	if (!known)
		return credential_fail(c, NULL, err, errlen,
				       "AZURE_TOKEN_CREDENTIALS=\"%s\" is not dev, prod or a "
				       "credential name such as managedidentitycredential",
				       v);
	const char *ex = credential_value(c, "exclude");
	char *copy = dup_or_null(ex), *save = NULL;
	for (char *w = copy ? strtok_r(copy, ", \t", &save) : NULL; w; w = strtok_r(NULL, ", \t", &save)) {
		int m = 0;
		while (m < M_COUNT && strcasecmp(w, member_names[m]) != 0)
			m++;
		if (m == M_COUNT) {
			credential_fail(c, "exclude", err, errlen,
					"exclude: unknown source \"%s\" (expected environment, "
					"workload-identity, managed-identity, cli)",
					w);
			free(copy);
			return false;
		}
		st->members[m].enabled = false;
	}
	free(copy);
	for (int m = 0; m < M_COUNT; m++)
		if (st->members[m].enabled)
			return true;
	return credential_fail(c, ex ? "exclude" : NULL, err, errlen, "no source is left in the chain");
}

static bool env_member(const struct credential *c, struct az_member *mb, char *err, size_t errlen)
{
	struct az_source *s = &mb->src;
	const char *tenant = env_value("AZURE_TENANT_ID"), *client = env_value("AZURE_CLIENT_ID");
	const char *secret = env_value("AZURE_CLIENT_SECRET"),
		   *cert = env_value("AZURE_CLIENT_CERTIFICATE_PATH");
	if (!tenant || !client || (!secret && !cert)) {
		snprintf(mb->reason, sizeof(mb->reason),
			 "AZURE_TENANT_ID, AZURE_CLIENT_ID and "
			 "AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH are not all set");
		return true;
	}
	if (!azure_tenant_ok(tenant))
		return credential_fail(c, NULL, err, errlen,
				       "AZURE_TENANT_ID \"%s\" is not a valid tenant id", tenant);
	mb->configured = true;
	s->tenant_id = xstrdup(tenant);
	s->client_id = xstrdup(client);
	if (secret) {
		s->kind = AZ_CLIENT_SECRET;
		s->secret_env = xstrdup("AZURE_CLIENT_SECRET");
		snprintf(s->label, sizeof(s->label), "environment/client-secret");
	} else {
		const char *chain = env_value("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN");
		s->kind = AZ_CLIENT_CERT;
		s->cert_file = xstrdup(cert);
		s->cert_password = dup_or_null(env_value("AZURE_CLIENT_CERTIFICATE_PASSWORD"));
		s->send_chain = chain && (strcasecmp(chain, "true") == 0 || strcmp(chain, "1") == 0);
		snprintf(s->label, sizeof(s->label), "environment/client-certificate");
	}
	return authority_key(c, s, err, errlen);
}

static bool workload_member(const struct credential *c, struct az_member *mb, char *err, size_t errlen)
{
	struct az_source *s = &mb->src;
	const char *tenant = credential_value(c, "workload_identity_tenant_id");
	const char *client = credential_value(c, "workload_identity_client_id");
	const char *file = env_value("AZURE_FEDERATED_TOKEN_FILE");
	tenant = tenant ? tenant : env_value("AZURE_TENANT_ID");
	client = client ? client : env_value("AZURE_CLIENT_ID");
	if (!tenant || !client || !file) {
		const char *missing[3];
		int n = 0;
		if (!tenant)
			missing[n++] = "AZURE_TENANT_ID";
		if (!client)
			missing[n++] = "AZURE_CLIENT_ID";
		if (!file)
			missing[n++] = "AZURE_FEDERATED_TOKEN_FILE";
		snprintf(mb->reason, sizeof(mb->reason), "%s%s%s%s%s %s not set", missing[0],
			 n > 1 ? ", " : "", n > 1 ? missing[1] : "", n > 2 ? ", " : "",
			 n > 2 ? missing[2] : "", n > 1 ? "are" : "is");
		return true;
	}
	if (!check_tenant(c, "workload_identity_tenant_id", tenant, err, errlen))
		return false;
	mb->configured = true;
	s->kind = AZ_WORKLOAD;
	snprintf(s->label, sizeof(s->label), "workload-identity");
	s->tenant_id = xstrdup(tenant);
	s->client_id = xstrdup(client);
	s->token_file = xstrdup(file);
	return authority_key(c, s, err, errlen);
}

static bool build_default(struct credential *c, struct az_state *st, char *err, size_t errlen)
{
	st->chain = true;
	if (!chain_members(c, st, err, errlen) || !env_member(c, &st->members[M_ENV], err, errlen) ||
	    !workload_member(c, &st->members[M_WORKLOAD], err, errlen))
		return false;
	struct az_member *mi = &st->members[M_MANAGED];
	const char *client = credential_value(c, "managed_identity_client_id");
	client = client ? client : env_value("AZURE_CLIENT_ID");
	mi->configured = true;
	mi->src.kind = AZ_MANAGED;
	mi->src.mi_kind = client ? AZURE_MI_CLIENT_ID : AZURE_MI_SYSTEM;
	mi->src.mi_id = dup_or_null(client);
	char *imds;
	if (!imds_key(c, &imds, err, errlen))
		return false;
	select_managed(&mi->src, imds);
	st->members[M_CLI].configured = true;
	st->members[M_CLI].src.kind = AZ_CLI;
	snprintf(st->members[M_CLI].src.label, sizeof(st->members[M_CLI].src.label), "cli");
	return true;
}

/* ---- validation ---- */

struct az_type {
	struct credential_type head; /* first: credential_type_find returns it */
	bool (*build)(struct credential *c, struct az_state *st, char *err, size_t errlen);
};

static const char *const secret_keys[] = {
	"tenant_id",      "client_id", "client_secret", "client_secret_file", "client_secret_env",
	"authority_host", NULL
};
static const char *const cert_keys[] = {
	"tenant_id",      "client_id", "certificate_file", "certificate_password", "send_certificate_chain",
	"authority_host", NULL
};
static const char *const workload_keys[] = { "tenant_id", "client_id", "token_file", "authority_host", NULL };
static const char *const managed_keys[] = { "client_id", "object_id", "resource_id", "imds_endpoint", NULL };
static const char *const cli_keys[] = { "tenant_id", "subscription", NULL };
static const char *const default_keys[] = { "exclude",
					    "authority_host",
					    "imds_endpoint",
					    "managed_identity_client_id",
					    "workload_identity_client_id",
					    "workload_identity_tenant_id",
					    NULL };

static const struct az_type az_types[] = {
	{ { "azure-managed-identity", managed_keys }, build_managed },
	{ { "azure-client-secret", secret_keys }, build_secret },
	{ { "azure-client-certificate", cert_keys }, build_cert },
	{ { "azure-workload-identity", workload_keys }, build_workload },
	{ { "azure-cli", cli_keys }, build_cli },
	{ { "azure-default", default_keys }, build_default },
};

const char *const *azure_credential_keys(const char *type)
{
	return credential_type_keys(CREDENTIAL_TYPE_FIND(az_types, type));
}

static bool azure_validate(struct credential *c, char *err, size_t errlen)
{
	const struct az_type *t = (const struct az_type *)CREDENTIAL_TYPE_FIND(az_types, c->type);
	if (!t)
		return credential_fail(
			c, "type", err, errlen,
			"unknown type \"%s\" (expected azure-managed-identity, "
			"azure-client-secret, azure-client-certificate, azure-workload-identity, "
			"azure-cli or azure-default)",
			c->type);
	if (!credential_check_keys(c, &t->head, err, errlen))
		return false;
	struct az_state *st = xcalloc(1, sizeof(*st));
	st->sticky = -1;
	c->state = st;
	if (!t->build(c, st, err, errlen))
		return false;
	st->single.owner = c->name;
	for (int m = 0; m < M_COUNT; m++)
		st->members[m].src.owner = c->name;
	return true;
}

static void azure_free_state(struct credential *c)
{
	struct az_state *st = c->state;
	if (!st)
		return;
	az_source_clear(&st->single);
	for (int m = 0; m < M_COUNT; m++)
		az_source_clear(&st->members[m].src);
	free(st);
	c->state = NULL;
}

/* ---- fetching ---- */

static void op_free(struct provider_op *op)
{
	if (op->fetch)
		az_fetch_cancel(op->fetch);
	if (op->later)
		event_free(op->later);
	free(op->scope);
	free(op);
}

static void deliver(struct provider_op *op, const struct azure_token *tok, const char *source, const char *err)
{
	op->fetch = NULL;
	if (tok) {
		snprintf(op->c->source, sizeof(op->c->source), "%s", source ? source : "?");
		op->cb(op->arg, tok->token, tok->len, tok->expires_at, tok->refresh_at, NULL);
	} else {
		op->cb(op->arg, NULL, 0, 0, 0, err);
	}
	op_free(op);
}

static void on_later(evutil_socket_t fd, short what, void *arg)
{
	struct provider_op *op = arg;
	deliver(op, NULL, NULL, op->why);
}

static void on_single(void *arg, enum azure_outcome o, const struct azure_token *tok, const char *source,
		      const char *err)
{
	deliver(arg, o == AZURE_OK ? tok : NULL, source, err);
}

static void append_why(struct provider_op *op, const char *member, const char *why)
{
	size_t n = strlen(op->why);
	bool first = n <= strlen(CHAIN_PREFIX);
	snprintf(op->why + n, sizeof(op->why) - n, "%s%s: %s", first ? "" : "; ", member, why);
}

static void on_member(void *arg, enum azure_outcome o, const struct azure_token *tok, const char *source,
		      const char *err);

/* Starts the next member that is configured; when none is left, answers
 * with the reasons (from a timer when called from get_token). */
static void next_member(struct provider_op *op, bool from_loop)
{
	struct az_state *st = op->st;
	for (; op->member < M_COUNT; op->member++) {
		struct az_member *mb = &st->members[op->member];
		if (!mb->enabled)
			continue;
		if (mb->configured) {
			op->fetch = az_fetch_start(&mb->src, op->scope, true, on_member, op);
			return;
		}
		append_why(op, member_names[op->member], mb->reason);
	}
	if (from_loop) {
		deliver(op, NULL, NULL, op->why);
		return;
	}
	op->later = evtimer_new(token_engine_base(), on_later, op);
	struct timeval tv = { 0, 0 };
	evtimer_add(op->later, &tv);
}

static void on_member(void *arg, enum azure_outcome o, const struct azure_token *tok, const char *source,
		      const char *err)
{
	struct provider_op *op = arg;
	op->fetch = NULL;
	if (o == AZURE_OK) {
		if (op->st->sticky < 0)
			log_info("credential %s: azure-default uses %s from now on", op->c->name,
				 member_names[op->member]);
		op->st->sticky = op->member;
		deliver(op, tok, source, NULL);
		return;
	}
	if (op->sticky_run || o == AZURE_FAILED) {
		const char *m = member_names[op->member];
		char msg[sizeof(op->why) + 64];
		if (!source || strncmp(source, m, strlen(m)) == 0)
			snprintf(msg, sizeof(msg), "%s: %s", source ? source : m, err);
		else
			snprintf(msg, sizeof(msg), "%s (%s): %s", m, source, err);
		deliver(op, NULL, NULL, msg);
		return;
	}
	append_why(op, member_names[op->member], err);
	op->member++;
	next_member(op, true);
}

static struct provider_op *azure_get_token(struct credential *c, const char *scope, access_token_cb cb,
					   void *arg)
{
	struct provider_op *op = xcalloc(1, sizeof(*op));
	op->c = c;
	op->st = c->state;
	op->scope = xstrdup(scope && *scope ? scope : DEFAULT_SCOPE);
	op->cb = cb;
	op->arg = arg;
	if (!op->st->chain) {
		op->fetch = az_fetch_start(&op->st->single, op->scope, false, on_single, op);
	} else if (op->st->sticky >= 0) {
		/* After the first success, only that source is asked (§2.2). */
		op->member = op->st->sticky;
		op->sticky_run = true;
		op->fetch = az_fetch_start(&op->st->members[op->member].src, op->scope, true, on_member, op);
	} else {
		snprintf(op->why, sizeof(op->why), "%s", CHAIN_PREFIX);
		next_member(op, false);
	}
	return op;
}

static void azure_cancel(struct provider_op *op)
{
	if (op)
		op_free(op);
}

const struct provider_family azure_family = {
	.name = "azure",
	.validate = azure_validate,
	.get_token = azure_get_token,
	.get_aws = NULL,
	.cancel = azure_cancel,
	.free_state = azure_free_state,
	.refresh_margin = 300,
	.hard_margin = 60,
};
