/* Telling the service manager (systemd) where the pooler is: ready after the
 * listeners are open, reloading, stopping. No-ops when built without
 * libsystemd or when not started by systemd ($NOTIFY_SOCKET unset). */
#ifndef TB_CORE_SERVICE_H
#define TB_CORE_SERVICE_H

void service_ready(void);
void service_reloading(void);
void service_stopping(void);
#endif
