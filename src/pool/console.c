#include "pool/console.h"

#include <assert.h>
#include <stddef.h>

static const struct console_ops *console;

void console_register(const struct console_ops *ops)
{
	console = ops;
}

bool console_is_db(const char *dbname)
{
	return console && console->is_console_db(dbname);
}

bool console_login(struct client *c)
{
	assert(console);
	return console->login(c);
}

bool console_process(struct client *c)
{
	assert(console);
	return console->process(c);
}
