/* libFuzzer: the whole configuration parser (inih + our reader, connection
 * strings, parameter values, credential sections). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	memcpy(text, data, size);
	text[size] = '\0';
	char err[512];
	struct tb_config *cfg = config_parse_string(text, "fuzz.ini", err, sizeof(err));
	config_free(cfg);
	free(text);
	return 0;
}
