/* libFuzzer: identity endpoint responses (Entra, IMDS, CLI JSON; STS XML;
 * AWS credential JSON; Google OAuth, metadata and IAM Credentials JSON and
 * credential files), which arrive from the network or from files. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "token/aws_parse.h"
#include "token/azure_parse.h"
#include "token/alloydb.h"
#include "token/connector.h"
#include "token/gcp_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512], code[128];
	const char *body = (const char *)data;
	for (int k = AZURE_RESP_ENTRA; k <= AZURE_RESP_CLI; k++) {
		struct azure_token t = { 0 };
		if (azure_parse_token((enum azure_response)k, "fuzz", body, size, 1700000000, &t, err,
				      sizeof(err)))
			azure_token_clear(&t);
	}
	struct aws_credentials c = { 0 };
	aws_parse_sts_response(body, size, &c, code, sizeof(code), err, sizeof(err));
	aws_credentials_clear(&c);
	for (int k = AWS_JSON_IMDS; k <= AWS_JSON_PROCESS; k++) {
		aws_parse_credentials_json((enum aws_json_source)k, body, size, &c, err, sizeof(err));
		aws_credentials_clear(&c);
	}
	char *role = aws_parse_imds_role(body, size, err, sizeof(err));
	free(role);
	struct gcp_token g;
	if (gcp_parse_oauth(body, size, 1700000000, &g, err, sizeof(err)))
		gcp_token_clear(&g);
	if (gcp_parse_iam(body, size, &g, err, sizeof(err)))
		gcp_token_clear(&g);
	struct gcp_file f;
	if (gcp_file_parse(body, size, &f, err, sizeof(err)))
		gcp_file_clear(&f);
	gcp_retry_delay_ms(GCP_RETRY_TOKEN, 1, 400, body, size, 0.5);
	struct cloudsql_settings cs;
	if (cloudsql_parse_settings(body, size, &cs, err, sizeof(err)))
		cloudsql_settings_clear(&cs);
	free(cloudsql_parse_cert(body, size, err, sizeof(err)));
	char name[256];
	size_t n = size < sizeof(name) - 1 ? size : sizeof(name) - 1;
	memcpy(name, body, n);
	name[n] = '\0';
	struct cloudsql_name cn;
	cloudsql_parse_name(name, &cn);
	struct alloydb_name an;
	alloydb_parse_name(name, &an);
	struct alloydb_info ai;
	if (alloydb_parse_info(body, size, &ai, err, sizeof(err)))
		alloydb_info_clear(&ai);
	char *chain = NULL, *ca = NULL;
	if (alloydb_parse_cert(body, size, &chain, &ca, err, sizeof(err))) {
		free(chain);
		free(ca);
	}
	mdx_parse_response(data, size, err, sizeof(err));
	return 0;
}
