#include "core/dl_table.h"

#include <dlfcn.h>
#include <stdio.h>

bool dl_table_load(const char *soname, const struct dl_symbol *syms, size_t nsyms, void **handle, char *err,
		   size_t errlen)
{
	void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(err, errlen, "cannot load %s: %s", soname, dlerror());
		return false;
	}
	for (size_t i = 0; i < nsyms; i++) {
		*syms[i].slot = dlsym(h, syms[i].name);
		if (!*syms[i].slot) {
			snprintf(err, errlen, "%s has no %s", soname, syms[i].name);
			dlclose(h);
			return false;
		}
	}
	*handle = h;
	return true;
}
