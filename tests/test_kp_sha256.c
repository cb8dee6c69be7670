/*  =========================================================================
    test_kp_sha256 - SHA-256 known answers, both block functions against
    libsodium, streaming against one shot

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
*/
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <signal.h>
#if defined (__x86_64__)
#   include <cpuid.h>
#endif
#include <sodium.h>
#include "kp_sha256.h"
#include "kp_util.h"

#define MAX_SMALL       1000        //  every length 0..MAX_SMALL is checked
#define ALIGN_SPREAD    16          //  start offsets tried, for unaligned input

static void
s_setup (void)
{
    cr_assert_geq (sodium_init (), 0);
}

TestSuite (kp_sha256, .init = s_setup, .timeout = 60.);

//  --------------------------------------------------------------------------
//  Deterministic pseudo-random bytes, so a failure can be reproduced

static uint8_t *
s_random_bytes (size_t size, uint8_t tag)
{
    uint8_t seed [randombytes_SEEDBYTES] = { tag };
    uint8_t *bytes = (uint8_t *) malloc (size? size: 1);
    cr_assert_not_null (bytes);
    randombytes_buf_deterministic (bytes, size, seed);
    return bytes;
}

//  --------------------------------------------------------------------------
//  Digest as lower-case hex; caller frees

static char *
s_hex (const uint8_t *digest)
{
    return kp_hex_encode (digest, KP_SHA256_SIZE);
}

//  Check kp_sha256, kp_sha256_software and streaming in one piece against
//  libsodium for one input; what names it in a failure
static void
s_expect_all_paths (const uint8_t *data, size_t size, const char *what)
{
    uint8_t expected [KP_SHA256_SIZE];
    uint8_t dispatched [KP_SHA256_SIZE];
    uint8_t software [KP_SHA256_SIZE];
    uint8_t streamed [KP_SHA256_SIZE];
    crypto_hash_sha256 (expected, data, size);
    kp_sha256 (dispatched, data, size);
    kp_sha256_software (software, data, size);
    kp_sha256_t state;
    kp_sha256_init (&state);
    kp_sha256_update (&state, data, size);
    kp_sha256_final (&state, streamed);
    cr_expect_arr_eq (dispatched, expected, KP_SHA256_SIZE, "one shot differs: %s", what);
    cr_expect_arr_eq (software, expected, KP_SHA256_SIZE, "software differs: %s", what);
    cr_expect_arr_eq (streamed, expected, KP_SHA256_SIZE, "streaming differs: %s", what);
}

//  --------------------------------------------------------------------------
//  Known answers: FIPS 180-4 examples (NIST CSRC "SHA256.pdf") and the
//  one-million-a message of FIPS 180-2 appendix B.3

typedef struct {
    const char *name;               //  what the case is
    const char *text;               //  the message, or its repeated unit
    size_t repeat;                  //  times text is repeated
    const char *digest;             //  expected digest, hex
} s_known_answer_t;

static const s_known_answer_t s_known_answers [] = {
    { "empty", "", 1,
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
    { "abc", "abc", 1,
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
    { "448 bits", "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 1,
      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
    { "896 bits", "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn"
                  "hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu", 1,
      "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1" },
    { "one million a", "a", 1000000,
      "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0" },
};

#define KNOWN_ANSWERS (sizeof s_known_answers / sizeof s_known_answers [0])

//  Parameters are indices into the static table: Criterion runs each test
//  in another process, where only cr_malloc'd memory is shared
static void
s_free_indices (struct criterion_test_params *params)
{
    cr_free (params->params);
}

ParameterizedTestParameters (kp_sha256, known_answers_on_every_path)
{
    size_t *indices = (size_t *) cr_malloc (KNOWN_ANSWERS * sizeof (size_t));
    cr_assert_not_null (indices);
    for (size_t index = 0; index < KNOWN_ANSWERS; index++)
        indices [index] = index;
    return cr_make_param_array (size_t, indices, KNOWN_ANSWERS, s_free_indices);
}

ParameterizedTest (size_t *index, kp_sha256, known_answers_on_every_path)
{
    const s_known_answer_t *known = s_known_answers + *index;
    size_t unit = strlen (known->text);
    size_t size = unit * known->repeat;
    uint8_t *message = (uint8_t *) malloc (size? size: 1);
    cr_assert_not_null (message);
    for (size_t copy = 0; copy < known->repeat; copy++)
        memcpy (message + copy * unit, known->text, unit);

    uint8_t digest [KP_SHA256_SIZE];
    kp_sha256 (digest, message, size);
    char *hex = s_hex (digest);
    cr_expect_str_eq (hex, known->digest, "kp_sha256 of %s", known->name);
    free (hex);

    kp_sha256_software (digest, message, size);
    hex = s_hex (digest);
    cr_expect_str_eq (hex, known->digest, "kp_sha256_software of %s", known->name);
    free (hex);

    //  Streamed one unit at a time: for "a" a million one-byte updates
    kp_sha256_t state;
    kp_sha256_init (&state);
    for (size_t copy = 0; copy < known->repeat; copy++)
        kp_sha256_update (&state, known->text, unit);
    kp_sha256_final (&state, digest);
    hex = s_hex (digest);
    cr_expect_str_eq (hex, known->digest, "streamed %s", known->name);
    free (hex);
    free (message);
}

Test (kp_sha256, empty_input_may_be_null)
{
    uint8_t expected [KP_SHA256_SIZE];
    uint8_t digest [KP_SHA256_SIZE];
    crypto_hash_sha256 (expected, NULL, 0);
    kp_sha256 (digest, NULL, 0);
    cr_expect_arr_eq (digest, expected, KP_SHA256_SIZE);
    kp_sha256_software (digest, NULL, 0);
    cr_expect_arr_eq (digest, expected, KP_SHA256_SIZE);
    kp_sha256_t state;
    kp_sha256_init (&state);
    kp_sha256_update (&state, NULL, 0);
    kp_sha256_final (&state, digest);
    cr_expect_arr_eq (digest, expected, KP_SHA256_SIZE);
}

//  --------------------------------------------------------------------------
//  Random input against libsodium

Test (kp_sha256, every_length_to_1000_matches_libsodium)
{
    //  Start offsets vary with the length, so most inputs are unaligned
    uint8_t *bytes = s_random_bytes (MAX_SMALL + ALIGN_SPREAD, 1);
    for (size_t size = 0; size <= MAX_SMALL; size++) {
        size_t offset = size % ALIGN_SPREAD;
        char what [64];
        snprintf (what, sizeof what, "%zu bytes at offset %zu", size, offset);
        s_expect_all_paths (bytes + offset, size, what);
    }
    free (bytes);
}

Test (kp_sha256, large_inputs_match_libsodium)
{
    const size_t sizes [] = {
        65535, 65536, 65537, (1 << 20) + 17, (4 << 20) + 63
    };
    for (size_t index = 0; index < sizeof sizes / sizeof sizes [0]; index++) {
        uint8_t *bytes = s_random_bytes (sizes [index] + 1, (uint8_t) (2 + index));
        char what [64];
        snprintf (what, sizeof what, "%zu bytes", sizes [index]);
        s_expect_all_paths (bytes, sizes [index], what);
        snprintf (what, sizeof what, "%zu bytes at offset 1", sizes [index]);
        s_expect_all_paths (bytes + 1, sizes [index], what);
        free (bytes);
    }
}

Test (kp_sha256, merkle_node_input_matches_libsodium)
{
    //  0x01 || left || right: 65 bytes, one block and a tail that needs two
    uint8_t *bytes = s_random_bytes (1000 * 65, 9);
    for (size_t node = 0; node < 1000; node++) {
        bytes [node * 65] = 0x01;
        char what [64];
        snprintf (what, sizeof what, "node %zu", node);
        s_expect_all_paths (bytes + node * 65, 65, what);
    }
    free (bytes);
}

//  --------------------------------------------------------------------------
//  Streaming in pieces equals one shot

Test (kp_sha256, streaming_with_odd_pieces_equals_one_shot)
{
    //  Piece sizes around the block size and a few primes, cycled; 0 too
    const size_t pieces [] = { 1, 63, 64, 0, 65, 2, 127, 128, 129, 7, 31, 200, 13, 1000 };
    const size_t piece_count = sizeof pieces / sizeof pieces [0];
    uint8_t *bytes = s_random_bytes (5000, 20);
    for (size_t size = 0; size <= 5000; size += 173) {
        for (size_t first = 0; first < piece_count; first++) {
            uint8_t whole [KP_SHA256_SIZE];
            uint8_t streamed [KP_SHA256_SIZE];
            kp_sha256 (whole, bytes, size);
            kp_sha256_t state;
            kp_sha256_init (&state);
            size_t done = 0;
            for (size_t turn = first; done < size; turn++) {
                size_t piece = pieces [turn % piece_count];
                if (piece > size - done)
                    piece = size - done;
                kp_sha256_update (&state, bytes + done, piece);
                done += piece;
            }
            kp_sha256_final (&state, streamed);
            cr_expect_arr_eq (streamed, whole, KP_SHA256_SIZE,
                              "%zu bytes, pieces from %zu", size, first);
        }
    }
    free (bytes);
}

Test (kp_sha256, every_two_piece_split_equals_one_shot)
{
    const size_t size = 300;
    uint8_t *bytes = s_random_bytes (size, 21);
    uint8_t whole [KP_SHA256_SIZE];
    kp_sha256 (whole, bytes, size);
    for (size_t split = 0; split <= size; split++) {
        uint8_t streamed [KP_SHA256_SIZE];
        kp_sha256_t state;
        kp_sha256_init (&state);
        kp_sha256_update (&state, bytes, split);
        kp_sha256_update (&state, bytes + split, size - split);
        kp_sha256_final (&state, streamed);
        cr_expect_arr_eq (streamed, whole, KP_SHA256_SIZE, "split at %zu", split);
    }
    free (bytes);
}

Test (kp_sha256, a_copied_state_continues_on_its_own)
{
    uint8_t *bytes = s_random_bytes (300, 22);
    kp_sha256_t prefix;
    kp_sha256_init (&prefix);
    kp_sha256_update (&prefix, bytes, 100);
    kp_sha256_t copy = prefix;
    kp_sha256_update (&prefix, bytes + 100, 200);
    kp_sha256_update (&copy, bytes + 100, 50);
    uint8_t long_digest [KP_SHA256_SIZE];
    uint8_t short_digest [KP_SHA256_SIZE];
    kp_sha256_final (&prefix, long_digest);
    kp_sha256_final (&copy, short_digest);
    uint8_t expected [KP_SHA256_SIZE];
    crypto_hash_sha256 (expected, bytes, 300);
    cr_expect_arr_eq (long_digest, expected, KP_SHA256_SIZE);
    crypto_hash_sha256 (expected, bytes, 150);
    cr_expect_arr_eq (short_digest, expected, KP_SHA256_SIZE);
    free (bytes);
}

Test (kp_sha256, digest_may_overwrite_its_input)
{
    uint8_t *bytes = s_random_bytes (100, 23);
    uint8_t expected [KP_SHA256_SIZE];
    crypto_hash_sha256 (expected, bytes, 100);
    kp_sha256 (bytes, bytes, 100);
    cr_expect_arr_eq (bytes, expected, KP_SHA256_SIZE);
    free (bytes);
}

//  --------------------------------------------------------------------------
//  The dispatch, and misuse

Test (kp_sha256, accelerated_follows_the_cpu)
{
#if defined (__x86_64__)
    //  Ask the CPU itself: SSE4.1 is leaf 1 ECX bit 19, SHA leaf 7 EBX bit 29
    unsigned eax, ebx, ecx, edx;
    bool sse41 = __get_cpuid (1, &eax, &ebx, &ecx, &edx) && (ecx & bit_SSE4_1);
    bool sha = __get_cpuid_count (7, 0, &eax, &ebx, &ecx, &edx) && (ebx & bit_SHA);
    if (kp_sha256_accelerated ())
        cr_expect (sha && sse41, "SHA-NI used on a CPU without it");
#   if !defined (__clang__) && __GNUC__ >= 12
    //  The compilers kp_sha256.c builds SHA-NI with must also use it
    cr_expect_eq (kp_sha256_accelerated (), sha && sse41);
#   endif
#else
    cr_expect_not (kp_sha256_accelerated ());
#endif
    if (!kp_sha256_accelerated ())
        cr_log_warn ("SHA-NI not used: only the portable path was tested");
}

Test (kp_sha256, null_data_with_a_size_is_a_programming_error, .signal = SIGABRT)
{
    kp_sha256_t state;
    kp_sha256_init (&state);
    kp_sha256_update (&state, NULL, 1);
}
