/* sd_notify for Type=notify units (see include/core/service.h). */
#include "core/service.h"

#include "config.h"

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>

void service_ready(void)
{
	sd_notify(0, "READY=1\nSTATUS=accepting connections");
}

void service_reloading(void)
{
	sd_notify(0, "RELOADING=1");
}

void service_stopping(void)
{
	sd_notify(0, "STOPPING=1");
}
#else
void service_ready(void)
{
}

void service_reloading(void)
{
}

void service_stopping(void)
{
}
#endif
