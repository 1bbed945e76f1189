/* Cloud SQL Admin API pieces without I/O (spec §3.8.1, §3.8.2, §3.8.4):
 * instance names, connectSettings and generateEphemeralCert answers, the
 * request body, the retry and refresh timing. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "token/connector.h"
#include "token/jwt.h"

#define REFRESH_NEAR_S 240
#define MAX_RESENDS 5

bool cloudsql_parse_name(const char *s, struct cloudsql_name *out)
{
	/* The last two colons end the project and the region; one more may sit
	 * inside a domain-scoped project ("example.com:proj"). */
	const char *last = s ? strrchr(s, ':') : NULL;
	if (!last || last == s)
		return false;
	const char *mid = last - 1;
	while (mid > s && *mid != ':')
		mid--;
	if (*mid != ':' || mid == s)
		return false;
	size_t plen = (size_t)(mid - s), rlen = (size_t)(last - mid - 1), ilen = strlen(last + 1);
	const char *extra = memchr(s, ':', plen);
	if (extra && memchr(extra + 1, ':', plen - (size_t)(extra + 1 - s)))
		return false;
	if (!plen || !rlen || !ilen || (extra && (extra == s || extra == mid - 1)) ||
	    plen >= sizeof(out->project) || rlen >= sizeof(out->region) || ilen >= sizeof(out->instance))
		return false;
	memcpy(out->project, s, plen);
	out->project[plen] = '\0';
	memcpy(out->region, mid + 1, rlen);
	out->region[rlen] = '\0';
	memcpy(out->instance, last + 1, ilen + 1);
	return strchr(out->instance, '/') == NULL;
}

void cloudsql_settings_clear(struct cloudsql_settings *s)
{
	free(s->ca_pem);
	free(s->public_ip);
	free(s->private_ip);
	free(s->psc_dns);
	free(s->dns_name);
	free(s->region);
	free(s->version);
	memset(s, 0, sizeof(*s));
}

static char *dup_str(const json_t *obj, const char *key)
{
	const json_t *v = json_object_get(obj, key);
	return json_is_string(v) && json_string_length(v) ? xstrdup(json_string_value(v)) : NULL;
}

static char *without_dot(char *name)
{
	size_t n = name ? strlen(name) : 0;
	if (n && name[n - 1] == '.')
		name[n - 1] = '\0';
	return name;
}

static void take_addresses(const json_t *root, struct cloudsql_settings *s)
{
	size_t i;
	const json_t *ip;
	json_array_foreach(json_object_get(root, "ipAddresses"), i, ip) {
		const char *type = json_string_value(json_object_get(ip, "type"));
		char **slot = !type                          ? NULL
			      : strcmp(type, "PRIMARY") == 0 ? &s->public_ip
			      : strcmp(type, "PRIVATE") == 0 ? &s->private_ip
							     : NULL;
		if (slot && !*slot)
			*slot = dup_str(ip, "ipAddress");
	}
	const json_t *d;
	json_array_foreach(json_object_get(root, "dnsNames"), i, d) {
		const char *ct = json_string_value(json_object_get(d, "connectionType"));
		const char *scope = json_string_value(json_object_get(d, "dnsScope"));
		if (!s->dns_name)
			s->dns_name = without_dot(dup_str(d, "name"));
		if (!s->psc_dns && ct && scope && strcmp(ct, "PRIVATE_SERVICE_CONNECT") == 0 &&
		    strcmp(scope, "INSTANCE") == 0)
			s->psc_dns = without_dot(dup_str(d, "name"));
	}
	if (!s->dns_name)
		s->dns_name = without_dot(dup_str(root, "dnsName"));
	if (!s->psc_dns && json_is_true(json_object_get(root, "pscEnabled")) && s->dns_name)
		s->psc_dns = xstrdup(s->dns_name);
	if (!json_is_true(json_object_get(root, "pscEnabled"))) {
		free(s->psc_dns);
		s->psc_dns = NULL;
	}
}

bool cloudsql_parse_settings(const char *body, size_t len, struct cloudsql_settings *out, char *err,
			     size_t errlen)
{
	memset(out, 0, sizeof(*out));
	json_t *root = json_loadb(body, len, 0, NULL);
	if (!json_is_object(root)) {
		json_decref(root);
		err_set(err, errlen, "connectSettings did not answer a JSON object");
		return false;
	}
	out->ca_pem = dup_str(json_object_get(root, "serverCaCert"), "cert");
	out->region = dup_str(root, "region");
	out->version = dup_str(root, "databaseVersion");
	take_addresses(root, out);
	json_decref(root);
	if (!out->ca_pem || !out->region) {
		err_set(err, errlen, "connectSettings has no %s",
			out->ca_pem ? "region" : "serverCaCert.cert");
		cloudsql_settings_clear(out);
		return false;
	}
	return true;
}

bool cloudsql_check_settings(const struct cloudsql_settings *s, const struct cloudsql_name *n,
			     enum connector_ip_type ip, const char **addr, char *err, size_t errlen)
{
	static const char *const names[] = { "PUBLIC", "PRIVATE", "PSC" };
	if (strcmp(s->region, n->region) != 0) {
		err_set(err, errlen, "the instance is in region %s, not %s as the instance name says",
			s->region, n->region);
		return false;
	}
	if (!s->version || strncmp(s->version, "POSTGRES", 8) != 0) {
		err_set(err, errlen, "the instance runs %s, not PostgreSQL",
			s->version ? s->version : "an unknown database");
		return false;
	}
	*addr = ip == CONNECTOR_IP_PUBLIC    ? s->public_ip
		: ip == CONNECTOR_IP_PRIVATE ? s->private_ip
					     : s->psc_dns;
	if (!*addr) {
		err_set(err, errlen, "the instance has no %s address (ip_type=%s)", names[ip],
			ip == CONNECTOR_IP_PUBLIC    ? "public"
			: ip == CONNECTOR_IP_PRIVATE ? "private"
						     : "psc");
		return false;
	}
	return true;
}

char *cloudsql_parse_cert(const char *body, size_t len, char *err, size_t errlen)
{
	json_t *root = json_loadb(body, len, 0, NULL);
	char *pem = dup_str(json_object_get(root, "ephemeralCert"), "cert");
	json_decref(root);
	if (!pem)
		err_set(err, errlen, "generateEphemeralCert answered no ephemeralCert.cert");
	return pem;
}

char *cloudsql_cert_body(const char *public_pem, const char *access_token, size_t *len)
{
	json_t *o = json_object();
	json_object_set_new(o, "public_key", json_string(public_pem));
	if (access_token)
		json_object_set_new(o, "access_token", json_string(access_token));
	char *body = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_secret_free(o);
	*len = strlen(body);
	return body;
}

int64_t cloudsql_retry_delay_ms(int resend, long status, double jitter01)
{
	if (status < 500 || resend >= MAX_RESENDS - 1)
		return -1;
	if (resend < 0)
		return 0; /* the first re-send is immediate */
	return (int64_t)(200.0 * pow(1.618, (double)resend + 1.0 + jitter01));
}

int64_t connector_refresh_margin(int64_t lifetime)
{
	if (lifetime >= 3600)
		return lifetime / 2;
	return lifetime / 2 < REFRESH_NEAR_S ? lifetime / 2 : REFRESH_NEAR_S;
}
