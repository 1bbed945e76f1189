/* The doctor's report: a table (or JSON) with one row per alias, each step's
 * time, and for a failure the step, the exact cause and what to change. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "admin/check-t.h"
#include "core/config.h"

const char *check_step_name(enum step st)
{
	static const char *const names[NSTEPS] = {
		"token", "resolve", "connect", "tls", "login", "select1", "check_query",
	};
	return (unsigned)st < NSTEPS ? names[st] : "?";
}

static bool uses_token(const struct probe *pr)
{
	return pr->alias->auth != UPSTREAM_AUTH_PASSWORD;
}

static void tls_hint(const struct probe *pr, char *buf, size_t len)
{
	if (strstr(pr->cause, "does not support TLS"))
		snprintf(
			buf, len, "the server does not offer TLS; %s",
			uses_token(pr)
				? "a token is sent only over TLS: enable TLS on the server"
				: "enable TLS on the server, or set sslmode=prefer on the alias if it may be cleartext");
	else if ((pr->have_tls && !pr->tls.verify_ok) || strstr(pr->cause, "certificate"))
		snprintf(buf, len,
			 "the server's certificate did not verify (%s): set server_tls_ca_file to the CA "
			 "that signed it, and check that host=%s is a name the certificate carries (verify-full)",
			 pr->have_tls ? pr->tls.verify : "see the cause",
			 pr->alias->host ? pr->alias->host : "");
	else
		snprintf(buf, len,
			 "the TLS handshake failed: compare server_tls_protocols and server_tls_ciphers "
			 "with what the server accepts");
}

static void login_hint(const struct probe *pr, char *buf, size_t len)
{
	if (strstr(pr->cause, "database") && strstr(pr->cause, "does not exist"))
		snprintf(buf, len, "check dbname= on the alias");
	else if (uses_token(pr))
		snprintf(
			buf, len,
			"the server refused the %stoken for role \"%s\": check that the role exists and is "
			"mapped to this identity (Entra: the role created for the principal; AWS RDS: GRANT rds_iam "
			"and an IAM policy allowing rds-db:connect; Aurora DSQL: dsql:DbConnect or DbConnectAdmin)",
			pr->token_retried ? "fresh " : "", pr->user ? pr->user : "");
	else
		snprintf(buf, len,
			 "the server refused the login of \"%s\": check password= on the alias, or the "
			 "user's entry in auth_file (a SCRAM secret there must be the server's own)",
			 pr->user ? pr->user : "");
}

/* What to change, for a failed alias. */
static void hint(const struct probe *pr, char *buf, size_t len)
{
	const struct db_alias *a = pr->alias;
	int port = a->port > 0 ? a->port : 5432;
	if (strncmp(pr->cause, "no answer in time", 17) == 0) {
		snprintf(buf, len,
			 "the %s step did not finish in time: check that host=%s port=%d leads to a "
			 "PostgreSQL server (not a firewall that drops packets), and server_connect_timeout",
			 check_step_name(pr->failed), a->host ? a->host : "", port);
		return;
	}
	switch (pr->failed) {
	case STEP_TOKEN:
		snprintf(buf, len,
			 "check [credential.%s] (type, ids, secret or key files) and that its identity "
			 "endpoint is reachable from here; `tokenbouncer token %s FILE.ini` runs this step alone",
			 a->credential ? a->credential : "?", a->name);
		return;
	case STEP_RESOLVE:
		snprintf(buf, len,
			 "host=%s does not resolve from here: check the name, and the resolver "
			 "(/etc/resolv.conf, /etc/hosts)",
			 a->host ? a->host : "");
		return;
	case STEP_CONNECT:
		snprintf(buf, len,
			 "nothing accepted a connection at %s port %d: check host= and port=, that the "
			 "server runs, and firewalls or security groups between here and there",
			 pr->address[0] ? pr->address
			 : a->host      ? a->host
					: "",
			 port);
		return;
	case STEP_TLS:
		tls_hint(pr, buf, len);
		return;
	case STEP_LOGIN:
		login_hint(pr, buf, len);
		return;
	case STEP_QUERY:
	case STEP_CHECK:
		snprintf(buf, len, "logged in, but the %s failed: check the role's rights%s",
			 pr->failed == STEP_QUERY ? "SELECT 1" : "server_check_query",
			 pr->failed == STEP_CHECK ? " and server_check_query" : "");
		return;
	case NSTEPS:
		break;
	}
	snprintf(buf, len, "see the cause");
}

static const char *result_of(const struct probe *pr)
{
	return pr->skipped ? "skipped" : pr->ok ? "ok" : "FAILED";
}

static double ms(usec_t u)
{
	return (double)(u / 100) / 10.0; /* to 0.1 ms */
}

static usec_t total_of(const struct probe *pr)
{
	usec_t t = 0;
	for (int i = 0; i < NSTEPS; i++)
		t += pr->spent[i];
	return t;
}

static int exit_status(const struct probe *probes, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!probes[i].ok && !probes[i].skipped)
			return 1;
	return 0;
}

static void text_details(const struct probe *pr, FILE *out)
{
	if (pr->address[0])
		fprintf(out, "  %s: address %s\n", pr->alias->name, pr->address);
	if (pr->have_tls)
		fprintf(out, "  %s: %s, certificate %s, expires %s (%ld days), verification %s\n",
			pr->alias->name, pr->tls.protocol, pr->tls.subject[0] ? pr->tls.subject : "(none)",
			pr->tls.not_after[0] ? pr->tls.not_after : "?", pr->tls.days_left, pr->tls.verify);
	else if (pr->reached[STEP_TLS] && pr->failed != STEP_TLS)
		fprintf(out, "  %s: no TLS: the server declined it and the alias's sslmode allows that\n",
			pr->alias->name);
	if (pr->token_retried)
		fprintf(out, "  %s: the server refused the first token; the pooler retried with a fresh one\n",
			pr->alias->name);
	if (pr->skipped) {
		fprintf(out, "  %s: skipped: %s\n", pr->alias->name, pr->cause);
	} else if (!pr->ok) {
		char fix[600];
		hint(pr, fix, sizeof(fix));
		fprintf(out, "  %s: FAILED at %s: %s\n  %s: fix: %s\n", pr->alias->name,
			check_step_name(pr->failed), pr->cause, pr->alias->name, fix);
	}
}

int check_report_text(const struct probe *probes, size_t n, FILE *out)
{
	fprintf(out, "%-16s %-9s %-16s %-7s %9s", "ALIAS", "METHOD", "USER", "RESULT", "TOTAL_MS");
	for (int s = 0; s < NSTEPS; s++)
		fprintf(out, " %11s", check_step_name((enum step)s));
	fprintf(out, "\n");
	for (size_t i = 0; i < n; i++) {
		const struct probe *pr = &probes[i];
		fprintf(out, "%-16s %-9s %-16s %-7s %9.1f", pr->alias->name,
			upstream_auth_name(pr->alias->auth), pr->user ? pr->user : "-", result_of(pr),
			ms(total_of(pr)));
		for (int s = 0; s < NSTEPS; s++) {
			if (pr->reached[s])
				fprintf(out, " %11.1f", ms(pr->spent[s]));
			else
				fprintf(out, " %11s", "-");
		}
		fprintf(out, "\n");
	}
	for (size_t i = 0; i < n; i++)
		text_details(&probes[i], out);
	return exit_status(probes, n);
}

static json_t *tls_json(const struct probe *pr)
{
	if (!pr->have_tls)
		return json_null();
	return json_pack("{s:s, s:s, s:s, s:I, s:s, s:b}", "protocol", pr->tls.protocol, "subject",
			 pr->tls.subject, "not_after", pr->tls.not_after, "days_left",
			 (json_int_t)pr->tls.days_left, "verify", pr->tls.verify, "verify_ok",
			 pr->tls.verify_ok);
}

static json_t *probe_json(const struct probe *pr)
{
	json_t *steps = json_object();
	for (int s = 0; s < NSTEPS; s++)
		if (pr->reached[s])
			json_object_set_new(steps, check_step_name((enum step)s), json_real(ms(pr->spent[s])));
	json_t *o = json_pack("{s:s, s:s, s:s?, s:s, s:f, s:o, s:o, s:b}", "alias", pr->alias->name, "method",
			      upstream_auth_name(pr->alias->auth), "user", pr->user, "result",
			      pr->skipped ? "skipped"
			      : pr->ok    ? "ok"
					  : "failed",
			      "total_ms", ms(total_of(pr)), "steps_ms", steps, "tls", tls_json(pr),
			      "token_retried", pr->token_retried);
	if (pr->address[0])
		json_object_set_new(o, "address", json_string(pr->address));
	if (!pr->ok) {
		if (!pr->skipped) {
			char fix[600] = "";
			hint(pr, fix, sizeof(fix));
			json_object_set_new(o, "failed_step", json_string(check_step_name(pr->failed)));
			json_object_set_new(o, "fix", json_string(fix));
		}
		json_object_set_new(o, "cause", json_string(pr->cause));
	}
	return o;
}

int check_report_json(const struct probe *probes, size_t n, FILE *out)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, probe_json(&probes[i]));
	char *text = json_dumps(arr, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (text)
		fprintf(out, "%s\n", text);
	free(text);
	json_decref(arr);
	return exit_status(probes, n);
}
