/* libFuzzer: identity endpoint responses (Entra, IMDS, CLI JSON; STS XML;
 * AWS credential JSON), which arrive from the network. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "token/aws_parse.h"
#include "token/azure_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512], code[128];
	const char *body = (const char *)data;
	for (int k = AZURE_RESP_ENTRA; k <= AZURE_RESP_CLI; k++) {
		struct azure_token t = { 0 };
		if (azure_parse_token((enum azure_response)k, "fuzz", body, size, 1700000000, &t, err, sizeof(err)))
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
	return 0;
}
