/* Switching the process to the Unix user named by the `user` parameter (PgBouncer's `user`). */
#ifndef TB_CORE_RUNAS_H
#define TB_CORE_RUNAS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/mustcheck.h"

/* Become USER (its uid, primary group and supplementary groups). Started as root: switches,
 * irrevocably. Already running as USER: nothing to do. Otherwise an error: only root can
 * switch. false with a message in ERR when the user is unknown or a step fails. */
TB_MUSTCHECK bool runas_switch(const char *user, char *err, size_t errlen);

#endif
