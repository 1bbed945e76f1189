/* Man pages generated from the parameter and credential tables. */
#ifndef TB_CORE_PARAMS_MAN_H
#define TB_CORE_PARAMS_MAN_H
#include <stdbool.h>
#include <stdio.h>

/* Exactly doc/man/tokenbouncer.ini.5 and doc/man/tokenbouncer.1. */
void params_print_man_ini(FILE *f);
void params_print_man_cli(FILE *f);
/* page: "tokenbouncer.1" or "tokenbouncer.ini.5" (or "1", "5"); false if unknown. */
bool params_print_man(FILE *f, const char *page);
#endif
