#include "pg/icu_api.h"

#include <stdio.h>

#include "core/dl_table.h"

struct icu_api icu_api;

/* unicode/urename.h defines each function name as itself plus "_<major>"; a
 * two-level stringify expands that macro before quoting it. */
#define ICU_NAME_(fn) #fn
#define ICU_NAME(fn) ICU_NAME_(fn)
#define ICU_SONAME "libicuuc.so." U_ICU_VERSION_SHORT

bool icu_api_load(char *err, size_t errlen)
{
	static void *handle;
	static bool tried;
	static char why[256];
	if (handle)
		return true;
	if (tried) {
		snprintf(err, errlen, "%s", why);
		return false;
	}
	tried = true;
	struct icu_api api;
	const struct dl_symbol syms[] = {
		{ ICU_NAME(u_charAge), (void **)&api.char_age },
		{ ICU_NAME(u_charDirection), (void **)&api.char_direction },
		{ ICU_NAME(unorm2_getNFKCInstance), (void **)&api.nfkc_instance },
		{ ICU_NAME(unorm2_normalize), (void **)&api.normalize },
		{ ICU_NAME(u_strFromUTF32), (void **)&api.str_from_utf32 },
		{ ICU_NAME(u_strToUTF8), (void **)&api.str_to_utf8 },
	};
	void *h;
	if (!dl_table_load(ICU_SONAME, syms, sizeof(syms) / sizeof(syms[0]), &h, why, sizeof(why))) {
		snprintf(err, errlen, "%s", why);
		return false;
	}
	icu_api = api;
	handle = h;
	return true;
}
