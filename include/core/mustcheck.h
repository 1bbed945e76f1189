/* TB_MUSTCHECK marks an action that can fail or close its object: it
 * returns bool (false: it failed, or the connection is closed now) and the
 * compiler rejects a caller that ignores it (-Werror), as PgBouncer's
 * _MUSTCHECK does. The caller acts on the result, never on a re-check of
 * the object's state. */
#ifndef TB_CORE_MUSTCHECK_H
#define TB_CORE_MUSTCHECK_H

#if defined(__GNUC__) || defined(__clang__)
#define TB_MUSTCHECK __attribute__((warn_unused_result))
#else
#define TB_MUSTCHECK
#endif

/* A call whose result does not matter at this one place (the comment at the
 * call says why: it is the handler's last step, or a loop serves the next
 * object either way). GCC does not take a (void) cast as using the result. */
#define TB_UNUSED_RESULT(call) \
	do { \
		if (call) { \
		} \
	} while (0)

#endif
