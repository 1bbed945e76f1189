/* The SHA-256 block functions behind core/sha256.h: the portable one, and one
 * with the x86 SHA extensions (SHA-NI) where the CPU has them. Which one runs
 * is chosen once, by cpuid, when the program starts; tests can force either
 * to compare them. */
#ifndef TB_CORE_SHA256_BLOCK_H
#define TB_CORE_SHA256_BLOCK_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The round constants (FIPS 180-4, 4.2.2), shared by both block functions. */
extern const uint32_t sha256_round_k[64];

/* Hashes nblocks consecutive 64-byte blocks into the state. */
typedef void sha256_blocks_fn(uint32_t st[8], const unsigned char *blocks, size_t nblocks);

sha256_blocks_fn sha256_blocks_portable;
/* True if this CPU has SHA-NI and SSE4.1 (and the build targets x86). */
bool sha256_cpu_has_shani(void);
/* Only call it if sha256_cpu_has_shani(). */
sha256_blocks_fn sha256_blocks_shani;

/* Selects the block function: the SHA-NI one if asked for and available.
 * Returns whether the SHA-NI one is now in use. */
bool sha256_use_shani(bool want);
#endif
