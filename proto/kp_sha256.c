/*  =========================================================================
    kp_sha256 - SHA-256 (FIPS 180-4), with the CPU's SHA extensions if any

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
@header
    Padding, length and streaming are written once; only the compression of
    whole 64-byte blocks has two versions: portable C after FIPS 180-4
    6.2.2, and one with Intel's SHA extensions (sha256rnds2, sha256msg1,
    sha256msg2). The latter is compiled for "sha,sse4.1" by a function
    attribute, so the rest of the file stays baseline x86-64 and runs on
    any CPU; it is called only when the CPU reports both features. Other
    architectures (and compilers, see S_SHANI) get the portable version
    alone. No state of ours: the choice is read on each call from what the
    compiler's runtime found at start-up.
@end
*/
#include <assert.h>
#include <string.h>
#include "kp_sha256.h"

//  The SHA-NI code is built where the compiler can also ask the CPU for the
//  feature: __builtin_cpu_supports ("sha") is refused at compile time by
//  clang before 19, and checked here with GCC 12. Other compilers get the
//  portable code alone, which gives the same digests.
#if defined (__x86_64__) \
 && ((defined (__clang__) && __clang_major__ >= 19) \
 ||  (!defined (__clang__) && defined (__GNUC__) && __GNUC__ >= 12))
#   define S_SHANI 1
#   include <immintrin.h>
#endif

//  Compresses count whole blocks into hash (H0..H7, host order)
typedef void (s_blocks_fn) (uint32_t hash [8], const uint8_t *blocks, size_t count);

//  H(0), FIPS 180-4 5.3.3: the first 32 bits of the fractional parts of the
//  square roots of the first 8 primes
static const uint32_t s_initial [8] = {
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
    0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19
};

//  K, FIPS 180-4 4.2.2: the first 32 bits of the fractional parts of the
//  cube roots of the first 64 primes. Aligned for the SIMD loads.
static _Alignas (16) const uint32_t s_round [64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
    0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
    0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
    0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
    0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
    0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
    0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
};

//  --------------------------------------------------------------------------
//  Big-endian 32-bit load and store, byte by byte: no alignment needed

static inline uint32_t
s_load_be32 (const uint8_t *bytes)
{
    return (uint32_t) bytes [0] << 24 | (uint32_t) bytes [1] << 16
         | (uint32_t) bytes [2] << 8 | (uint32_t) bytes [3];
}

static inline void
s_store_be32 (uint8_t *bytes, uint32_t value)
{
    bytes [0] = (uint8_t) (value >> 24);
    bytes [1] = (uint8_t) (value >> 16);
    bytes [2] = (uint8_t) (value >> 8);
    bytes [3] = (uint8_t) value;
}

//  --------------------------------------------------------------------------
//  Rotate right by bits (1..31); compilers emit one ror

static inline uint32_t
s_rotr (uint32_t value, unsigned bits)
{
    return (value >> bits) | (value << (32 - bits));
}

//  --------------------------------------------------------------------------
//  Compress count blocks in portable C, FIPS 180-4 6.2.2. The working
//  variables keep the standard's names a..h, so the loop reads as the text.

static void
s_blocks_portable (uint32_t hash [8], const uint8_t *blocks, size_t count)
{
    uint32_t schedule [64];
    while (count-- > 0) {
        for (unsigned t = 0; t < 16; t++)
            schedule [t] = s_load_be32 (blocks + 4 * t);
        for (unsigned t = 16; t < 64; t++) {
            uint32_t w2 = schedule [t - 2];
            uint32_t w15 = schedule [t - 15];
            uint32_t sigma1 = s_rotr (w2, 17) ^ s_rotr (w2, 19) ^ (w2 >> 10);
            uint32_t sigma0 = s_rotr (w15, 7) ^ s_rotr (w15, 18) ^ (w15 >> 3);
            schedule [t] = sigma1 + schedule [t - 7] + sigma0 + schedule [t - 16];
        }
        uint32_t a = hash [0], b = hash [1], c = hash [2], d = hash [3];
        uint32_t e = hash [4], f = hash [5], g = hash [6], h = hash [7];
        for (unsigned t = 0; t < 64; t++) {
            uint32_t sum1 = s_rotr (e, 6) ^ s_rotr (e, 11) ^ s_rotr (e, 25);
            uint32_t choose = (e & f) ^ (~e & g);
            uint32_t t1 = h + sum1 + choose + s_round [t] + schedule [t];
            uint32_t sum0 = s_rotr (a, 2) ^ s_rotr (a, 13) ^ s_rotr (a, 22);
            uint32_t majority = (a & b) ^ (a & c) ^ (b & c);
            uint32_t t2 = sum0 + majority;
            h = g;
            g = f;
            f = e;
            e = d + t1;
            d = c;
            c = b;
            b = a;
            a = t1 + t2;
        }
        hash [0] += a;
        hash [1] += b;
        hash [2] += c;
        hash [3] += d;
        hash [4] += e;
        hash [5] += f;
        hash [6] += g;
        hash [7] += h;
        blocks += KP_SHA256_BLOCK;
    }
}

#if defined (S_SHANI)
//  The SHA extensions keep the eight working variables in two registers,
//  named by their 32-bit lanes from the highest down: ABEF holds a, b, e, f
//  and CDGH holds c, d, g, h. sha256rnds2 takes CDGH, ABEF and W+K of two
//  rounds (the two low lanes), and returns the new ABEF; the new CDGH is
//  the old ABEF, so two calls with the registers' roles swapped make four
//  rounds and leave each register holding its own name again.
//
//  The message schedule comes four words at a time: for the words t..t+3,
//  sha256msg1 adds sigma0 of W[t-15..t-12] to W[t-16..t-13], the program
//  adds W[t-7..t-4], and sha256msg2 adds sigma1 of W[t-2..t-1], including
//  the two words it has just made itself.

//  --------------------------------------------------------------------------
//  Four rounds: quad is the index of the four words in words (0..15)

__attribute__ ((target ("sha,sse4.1")))
static inline void
s_shani_rounds (__m128i *abef, __m128i *cdgh, __m128i words, unsigned quad)
{
    __m128i sum = _mm_add_epi32 (words,
                                 _mm_load_si128 ((const __m128i *) (s_round + 4 * quad)));
    *cdgh = _mm_sha256rnds2_epu32 (*cdgh, *abef, sum);
    sum = _mm_shuffle_epi32 (sum, 0x0e);        //  lanes 2, 3 down to 0, 1
    *abef = _mm_sha256rnds2_epu32 (*abef, *cdgh, sum);
}

//  --------------------------------------------------------------------------
//  The next four schedule words from the last sixteen, oldest first

__attribute__ ((target ("sha,sse4.1")))
static inline __m128i
s_shani_schedule (__m128i oldest, __m128i older, __m128i newer, __m128i newest)
{
    __m128i words = _mm_sha256msg1_epu32 (oldest, older);
    words = _mm_add_epi32 (words, _mm_alignr_epi8 (newest, newer, 4));
    return _mm_sha256msg2_epu32 (words, newest);
}

//  --------------------------------------------------------------------------
//  Compress count blocks with the SHA extensions. Call only if the CPU has
//  SHA and SSE4.1.

__attribute__ ((target ("sha,sse4.1")))
static void
s_blocks_shani (uint32_t hash [8], const uint8_t *blocks, size_t count)
{
    //  Reverses the bytes of each 32-bit lane: the message is big-endian
    const __m128i byte_swap = _mm_set_epi64x (0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);

    //  Lanes are listed from 0 up in these comments
    __m128i front = _mm_loadu_si128 ((const __m128i *) hash);         //  a b c d
    __m128i back = _mm_loadu_si128 ((const __m128i *) (hash + 4));    //  e f g h
    front = _mm_shuffle_epi32 (front, 0xb1);                          //  b a d c
    back = _mm_shuffle_epi32 (back, 0x1b);                            //  h g f e
    __m128i abef = _mm_alignr_epi8 (front, back, 8);                  //  f e b a
    __m128i cdgh = _mm_blend_epi16 (back, front, 0xf0);               //  h g d c

    while (count-- > 0) {
        __m128i abef_before = abef;
        __m128i cdgh_before = cdgh;
        __m128i words0 = _mm_shuffle_epi8 (
            _mm_loadu_si128 ((const __m128i *) blocks), byte_swap);
        __m128i words1 = _mm_shuffle_epi8 (
            _mm_loadu_si128 ((const __m128i *) (blocks + 16)), byte_swap);
        __m128i words2 = _mm_shuffle_epi8 (
            _mm_loadu_si128 ((const __m128i *) (blocks + 32)), byte_swap);
        __m128i words3 = _mm_shuffle_epi8 (
            _mm_loadu_si128 ((const __m128i *) (blocks + 48)), byte_swap);
        s_shani_rounds (&abef, &cdgh, words0, 0);
        s_shani_rounds (&abef, &cdgh, words1, 1);
        s_shani_rounds (&abef, &cdgh, words2, 2);
        s_shani_rounds (&abef, &cdgh, words3, 3);
        //  Each new group replaces the oldest, which it no longer needs
        for (unsigned quad = 4; quad < 16; quad += 4) {
            words0 = s_shani_schedule (words0, words1, words2, words3);
            s_shani_rounds (&abef, &cdgh, words0, quad);
            words1 = s_shani_schedule (words1, words2, words3, words0);
            s_shani_rounds (&abef, &cdgh, words1, quad + 1);
            words2 = s_shani_schedule (words2, words3, words0, words1);
            s_shani_rounds (&abef, &cdgh, words2, quad + 2);
            words3 = s_shani_schedule (words3, words0, words1, words2);
            s_shani_rounds (&abef, &cdgh, words3, quad + 3);
        }
        abef = _mm_add_epi32 (abef, abef_before);
        cdgh = _mm_add_epi32 (cdgh, cdgh_before);
        blocks += KP_SHA256_BLOCK;
    }

    abef = _mm_shuffle_epi32 (abef, 0x1b);                            //  a b e f
    cdgh = _mm_shuffle_epi32 (cdgh, 0xb1);                            //  g h c d
    front = _mm_blend_epi16 (abef, cdgh, 0xf0);                       //  a b c d
    back = _mm_alignr_epi8 (cdgh, abef, 8);                           //  e f g h
    _mm_storeu_si128 ((__m128i *) hash, front);
    _mm_storeu_si128 ((__m128i *) (hash + 4), back);
}
#endif

//  --------------------------------------------------------------------------
//  True if kp_sha256 uses the CPU's SHA extensions. The check reads what the
//  compiler's runtime found at start-up: no state of ours.

bool
kp_sha256_accelerated (void)
{
#if defined (S_SHANI)
    return __builtin_cpu_supports ("sha") && __builtin_cpu_supports ("sse4.1");
#else
    return false;
#endif
}

//  --------------------------------------------------------------------------
//  The fastest block function this CPU can run

static s_blocks_fn *
s_blocks_best (void)
{
#if defined (S_SHANI)
    if (kp_sha256_accelerated ())
        return s_blocks_shani;
#endif
    return s_blocks_portable;
}

//  --------------------------------------------------------------------------
//  Pad the last tail_size (< 64) bytes of a message of length bytes,
//  compress the one or two blocks that makes (FIPS 180-4 5.1.1: a 1 bit,
//  zeros, the length in bits as 64 bits big-endian), and write the digest
//  into out. out may overlap tail: the tail is copied first.

static void
s_finish (uint32_t hash [8], const uint8_t *tail, size_t tail_size, uint64_t length,
          s_blocks_fn *blocks, uint8_t *out)
{
    assert (tail_size < KP_SHA256_BLOCK);
    uint8_t last [2 * KP_SHA256_BLOCK];
    size_t count = tail_size + 1 + 8 <= KP_SHA256_BLOCK? 1: 2;
    size_t end = count * KP_SHA256_BLOCK;
    if (tail_size > 0)
        memcpy (last, tail, tail_size);
    last [tail_size] = 0x80;
    memset (last + tail_size + 1, 0, end - 8 - tail_size - 1);
    uint64_t bits = length << 3;
    s_store_be32 (last + end - 8, (uint32_t) (bits >> 32));
    s_store_be32 (last + end - 4, (uint32_t) bits);
    blocks (hash, last, count);
    for (unsigned index = 0; index < 8; index++)
        s_store_be32 (out + 4 * index, hash [index]);
}

//  --------------------------------------------------------------------------
//  One-shot digest with the given block function: whole blocks straight
//  from data, then the padded tail

static void
s_digest (uint8_t *out, const void *data, size_t size, s_blocks_fn *blocks)
{
    assert (out);
    assert (data || size == 0);
    const uint8_t *bytes = (const uint8_t *) data;
    uint32_t hash [8];
    memcpy (hash, s_initial, sizeof hash);
    size_t whole = size / KP_SHA256_BLOCK;
    if (whole > 0) {
        blocks (hash, bytes, whole);
        bytes += whole * KP_SHA256_BLOCK;
    }
    s_finish (hash, bytes, size % KP_SHA256_BLOCK, size, blocks, out);
}

//  --------------------------------------------------------------------------
//  Digest of data in one call, with the SHA extensions if the CPU has them

void
kp_sha256 (uint8_t out [KP_SHA256_SIZE], const void *data, size_t size)
{
    s_digest (out, data, size, s_blocks_best ());
}

//  --------------------------------------------------------------------------
//  Digest of data in one call, always in portable C

void
kp_sha256_software (uint8_t out [KP_SHA256_SIZE], const void *data, size_t size)
{
    s_digest (out, data, size, s_blocks_portable);
}

//  --------------------------------------------------------------------------
//  Start a new streaming hash

void
kp_sha256_init (kp_sha256_t *self)
{
    assert (self);
    memcpy (self->hash, s_initial, sizeof self->hash);
    self->length = 0;
    memset (self->block, 0, sizeof self->block);
}

//  --------------------------------------------------------------------------
//  Add data: fill a started block first, then whole blocks straight from
//  data, and keep the rest for the next call

void
kp_sha256_update (kp_sha256_t *self, const void *data, size_t size)
{
    assert (self);
    assert (data || size == 0);
    if (size == 0)
        return;
    s_blocks_fn *blocks = s_blocks_best ();
    const uint8_t *bytes = (const uint8_t *) data;
    size_t used = (size_t) (self->length % KP_SHA256_BLOCK);
    self->length += size;
    if (used > 0) {
        size_t room = KP_SHA256_BLOCK - used;
        if (size < room) {
            memcpy (self->block + used, bytes, size);
            return;
        }
        memcpy (self->block + used, bytes, room);
        blocks (self->hash, self->block, 1);
        bytes += room;
        size -= room;
    }
    size_t whole = size / KP_SHA256_BLOCK;
    if (whole > 0) {
        blocks (self->hash, bytes, whole);
        bytes += whole * KP_SHA256_BLOCK;
        size -= whole * KP_SHA256_BLOCK;
    }
    if (size > 0)
        memcpy (self->block, bytes, size);
}

//  --------------------------------------------------------------------------
//  Write the digest of everything added

void
kp_sha256_final (kp_sha256_t *self, uint8_t out [KP_SHA256_SIZE])
{
    assert (self);
    assert (out);
    s_finish (self->hash, self->block, (size_t) (self->length % KP_SHA256_BLOCK),
              self->length, s_blocks_best (), out);
}
