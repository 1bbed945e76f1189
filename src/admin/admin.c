#include "admin/admin.h"

bool admin_is_console_db(const char *dbname)
{
	(void)dbname;
	return false;
}

void admin_login(struct client *c)
{
	(void)c;
}

void admin_process(struct client *c)
{
	(void)c;
}

void admin_tick(void)
{
}
