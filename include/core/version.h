/* The one version string: --version and the console's SHOW VERSION print it. */
#ifndef TB_CORE_VERSION_H
#define TB_CORE_VERSION_H
#include "config.h"

/* Some monitoring tools match "PgBouncer x.y.z" to pick the columns they read. */
#define TB_VERSION_STRING "tokenbouncer " PACKAGE_VERSION " (PgBouncer 1.25.0 compatible)"
#endif
