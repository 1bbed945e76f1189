/* SHA-256 blocks with the x86 SHA extensions: sha256rnds2 does two rounds,
 * sha256msg1/msg2 the message schedule, four words per register. Compiled
 * for those instructions with a target attribute, so the rest of the program
 * stays portable; core/sha256.c calls this only after sha256_cpu_has_shani().
 * The state and the schedule live in XMM registers, which C cannot wipe: the
 * compiler keeps them there at -O2 (no stack spill in this function). */
#include "core/sha256_block.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>

bool sha256_cpu_has_shani(void)
{
	unsigned a, b, c, d;
	if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_SSE4_1) || !(c & bit_SSSE3))
		return false;
	if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
		return false;
	return (b & bit_SHA) != 0;
}

#define TB_SHANI __attribute__((target("sha,sse4.1")))

/* Four rounds t .. t+3 with the schedule words w (w[0] = W[t]): the low two
 * words of w + K drive the first sha256rnds2, the high two the second. abef
 * and cdgh swap roles after each pair of rounds. */
TB_SHANI static inline void rounds4(__m128i *abef, __m128i *cdgh, __m128i w, int t)
{
	__m128i wk = _mm_add_epi32(w, _mm_loadu_si128((const __m128i *)&sha256_round_k[t]));
	*cdgh = _mm_sha256rnds2_epu32(*cdgh, *abef, wk);
	wk = _mm_shuffle_epi32(wk, 0x0e);
	*abef = _mm_sha256rnds2_epu32(*abef, *cdgh, wk);
}

/* W[t..t+3] from the four previous groups: msg1 adds sigma0(W[t-15]) to
 * W[t-16], the alignr brings W[t-7], msg2 adds sigma1(W[t-2]). */
TB_SHANI static inline __m128i schedule4(__m128i w16, __m128i w12, __m128i w8, __m128i w4)
{
	__m128i x = _mm_sha256msg1_epu32(w16, w12);
	x = _mm_add_epi32(x, _mm_alignr_epi8(w4, w8, 4));
	return _mm_sha256msg2_epu32(x, w4);
}

/* The 64 rounds of one block; m[0..3] hold W[0..15] on entry. */
TB_SHANI static inline void block_rounds(__m128i *abef, __m128i *cdgh, __m128i m0, __m128i m1, __m128i m2,
					 __m128i m3)
{
	rounds4(abef, cdgh, m0, 0);
	rounds4(abef, cdgh, m1, 4);
	rounds4(abef, cdgh, m2, 8);
	rounds4(abef, cdgh, m3, 12);
	for (int t = 16; t < 64; t += 16) {
		m0 = schedule4(m0, m1, m2, m3);
		rounds4(abef, cdgh, m0, t);
		m1 = schedule4(m1, m2, m3, m0);
		rounds4(abef, cdgh, m1, t + 4);
		m2 = schedule4(m2, m3, m0, m1);
		rounds4(abef, cdgh, m2, t + 8);
		m3 = schedule4(m3, m0, m1, m2);
		rounds4(abef, cdgh, m3, t + 12);
	}
}

/* The instructions want the state as (A,B,E,F) and (C,D,G,H), A in the top
 * lane; st[] is A..H in order. */
TB_SHANI void sha256_blocks_shani(uint32_t st[8], const unsigned char *blocks, size_t nblocks)
{
	const __m128i be = _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);
	__m128i badc = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&st[0]), 0xb1); /* B A D C */
	__m128i hgfe = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&st[4]), 0x1b); /* H G F E */
	__m128i abef = _mm_alignr_epi8(badc, hgfe, 8);                                    /* F E B A */
	__m128i cdgh = _mm_blend_epi16(hgfe, badc, 0xf0);                                 /* H G D C */
	for (; nblocks; nblocks--, blocks += 64) {
		__m128i abef0 = abef, cdgh0 = cdgh;
		const __m128i *in = (const __m128i *)blocks;
		block_rounds(&abef, &cdgh, _mm_shuffle_epi8(_mm_loadu_si128(in), be),
			     _mm_shuffle_epi8(_mm_loadu_si128(in + 1), be),
			     _mm_shuffle_epi8(_mm_loadu_si128(in + 2), be),
			     _mm_shuffle_epi8(_mm_loadu_si128(in + 3), be));
		abef = _mm_add_epi32(abef, abef0);
		cdgh = _mm_add_epi32(cdgh, cdgh0);
	}
	__m128i abef_r = _mm_shuffle_epi32(abef, 0x1b); /* A B E F */
	__m128i ghcd = _mm_shuffle_epi32(cdgh, 0xb1);   /* G H C D */
	_mm_storeu_si128((__m128i *)&st[0], _mm_blend_epi16(abef_r, ghcd, 0xf0));
	_mm_storeu_si128((__m128i *)&st[4], _mm_alignr_epi8(ghcd, abef_r, 8));
}
#else
bool sha256_cpu_has_shani(void)
{
	return false;
}

void sha256_blocks_shani(uint32_t st[8], const unsigned char *blocks, size_t nblocks)
{
	sha256_blocks_portable(st, blocks, nblocks);
}
#endif
