/*  =========================================================================
    test_kp_merkle - the RFC 9162 tree: hashes, stored levels, proofs,
    verification, crash repair, and the public proof corpus

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
*/
#include <criterion/criterion.h>
#include <signal.h>
#include <sys/resource.h>
#include <dirent.h>
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>
#include "kp_merkle.h"
#include "kp_testutil.h"

#define HASH            KP_MERKLE_HASH
#define BIG_TREE        1000        //  leaves of the larger test trees
#define RANDOM_PAIRS    300         //  random proofs of each kind
#define CORPUS_MAX_PROOF 128        //  proof hashes a corpus file may list

TestSuite (kp_merkle, .timeout = 120.);

//  --------------------------------------------------------------------------
//  An independent, naive RFC 9162 2.1 implementation to check against:
//  plain recursion over an array of leaf hashes, as the RFC writes it.

static void
s_ref_leaf (const uint8_t *data, size_t size, uint8_t *hash)
{
    uint8_t *input = (uint8_t *) malloc (size + 1);
    cr_assert_not_null (input);
    input [0] = 0x00;
    if (size)
        memcpy (input + 1, data, size);
    crypto_hash_sha256 (hash, input, size + 1);
    free (input);
}

static void
s_ref_node (const uint8_t *left, const uint8_t *right, uint8_t *hash)
{
    uint8_t input [1 + 2 * HASH];
    input [0] = 0x01;
    memcpy (input + 1, left, HASH);
    memcpy (input + 1 + HASH, right, HASH);
    crypto_hash_sha256 (hash, input, sizeof input);
}

//  The largest power of two less than n (n > 1)
static uint64_t
s_ref_split (uint64_t n)
{
    uint64_t k = 1;
    while (k * 2 < n)
        k *= 2;
    return k;
}

//  MTH (D[n])
static void
s_ref_mth (const uint8_t (*leaves) [HASH], uint64_t n, uint8_t *hash)
{
    if (n == 0)
        crypto_hash_sha256 (hash, NULL, 0);
    else
    if (n == 1)
        memcpy (hash, leaves [0], HASH);
    else {
        uint64_t k = s_ref_split (n);
        uint8_t left [HASH], right [HASH];
        s_ref_mth (leaves, k, left);
        s_ref_mth (leaves + k, n - k, right);
        s_ref_node (left, right, hash);
    }
}

//  PATH (m, D[n]), appended to proof at *count
static void
s_ref_path (uint64_t m, const uint8_t (*leaves) [HASH], uint64_t n, uint8_t *proof,
            size_t *count)
{
    if (n <= 1)
        return;
    uint64_t k = s_ref_split (n);
    if (m < k) {
        s_ref_path (m, leaves, k, proof, count);
        s_ref_mth (leaves + k, n - k, proof + HASH * (*count)++);
    }
    else {
        s_ref_path (m - k, leaves + k, n - k, proof, count);
        s_ref_mth (leaves, k, proof + HASH * (*count)++);
    }
}

//  SUBPROOF (m, D[n], b), appended to proof at *count
static void
s_ref_subproof (uint64_t m, const uint8_t (*leaves) [HASH], uint64_t n, bool b,
                uint8_t *proof, size_t *count)
{
    if (m == n) {
        if (!b)
            s_ref_mth (leaves, n, proof + HASH * (*count)++);
        return;
    }
    uint64_t k = s_ref_split (n);
    if (m <= k) {
        s_ref_subproof (m, leaves, k, b, proof, count);
        s_ref_mth (leaves + k, n - k, proof + HASH * (*count)++);
    }
    else {
        s_ref_subproof (m - k, leaves + k, n - k, false, proof, count);
        s_ref_mth (leaves, k, proof + HASH * (*count)++);
    }
}

//  --------------------------------------------------------------------------
//  Helpers

static void
s_hex (const char *hex, uint8_t *out)
{
    size_t length = 0;
    cr_assert_eq (sodium_hex2bin (out, HASH, hex, strlen (hex), NULL, &length, NULL), 0);
    cr_assert_eq (length, HASH);
}

//  Deterministic pseudo-random numbers (xorshift64*), state passed along
static uint64_t
s_random (uint64_t *state)
{
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return *state * UINT64_C (2685821657736338717);
}

//  The bytes of test record index: varying length and content
static size_t
s_record (uint64_t index, uint8_t *data)
{
    size_t size = (size_t) (index % 97);
    for (size_t at = 0; at < size; at++)
        data [at] = (uint8_t) (index * 131 + at * 7);
    return size;
}

//  Leaf hashes of records [0, count), by the reference
static uint8_t (*s_ref_leaves (uint64_t count)) [HASH]
{
    uint8_t (*leaves) [HASH] = (uint8_t (*) [HASH]) malloc ((count? count: 1) * HASH);
    cr_assert_not_null (leaves);
    for (uint64_t index = 0; index < count; index++) {
        uint8_t data [128];
        size_t size = s_record (index, data);
        s_ref_leaf (data, size, leaves [index]);
    }
    return leaves;
}

//  Append leaves [from, to) to tree
static void
s_append (kp_merkle_t *tree, const uint8_t (*leaves) [HASH], uint64_t from, uint64_t to)
{
    for (uint64_t index = from; index < to; index++) {
        cr_assert_eq (kp_merkle_size (tree), index);
        cr_assert_eq (kp_merkle_append (tree, leaves [index]), 0);
    }
}

static char *
s_level_path (const char *dir, int level)
{
    char *path = zsys_sprintf ("%s/level-%02d", dir, level);
    cr_assert_not_null (path);
    return path;
}

static off_t
s_level_length (const char *dir, int level)
{
    char *path = s_level_path (dir, level);
    struct stat info;
    off_t length = stat (path, &info) == 0? info.st_size: -1;
    free (path);
    return length;
}

static void
s_level_cut (const char *dir, int level, off_t length)
{
    char *path = s_level_path (dir, level);
    cr_assert_eq (truncate (path, length), 0, "truncate %s: %s", path, strerror (errno));
    free (path);
}

//  Read a whole level file into a new buffer; sets *size_p
static uint8_t *
s_level_slurp (const char *dir, int level, size_t *size_p)
{
    char *path = s_level_path (dir, level);
    int fd = open (path, O_RDONLY);
    cr_assert (fd >= 0, "open %s: %s", path, strerror (errno));
    struct stat info;
    cr_assert_eq (fstat (fd, &info), 0);
    uint8_t *data = (uint8_t *) malloc ((size_t) info.st_size + 1);
    cr_assert_not_null (data);
    cr_assert_eq (pread (fd, data, (size_t) info.st_size, 0), info.st_size);
    close (fd);
    free (path);
    *size_p = (size_t) info.st_size;
    return data;
}

//  Overwrite HASH bytes of a level file at hash index with value
static void
s_level_poke (const char *dir, int level, uint64_t index, uint8_t value)
{
    char *path = s_level_path (dir, level);
    int fd = open (path, O_WRONLY | O_CREAT, 0600);
    cr_assert (fd >= 0, "open %s: %s", path, strerror (errno));
    uint8_t junk [HASH];
    memset (junk, value, HASH);
    cr_assert_eq (pwrite (fd, junk, HASH, (off_t) (index * HASH)), HASH);
    close (fd);
    free (path);
}

//  Every level file holds exactly size >> k hashes (absent if none needed)
static void
s_assert_levels_fit (const char *dir, uint64_t size)
{
    for (int level = 0; level < 64; level++) {
        off_t length = s_level_length (dir, level);
        off_t want = (off_t) ((size >> level) * HASH);
        if (want > 0 || level == 0)
            cr_assert_eq (length, want, "level %d: %lld bytes, want %lld", level,
                          (long long) length, (long long) want);
        else
            cr_assert (length <= 0, "level %d: %lld bytes, want none", level,
                       (long long) length);
    }
}

//  Reference roots of every size [0, count]
static uint8_t (*s_ref_roots (const uint8_t (*leaves) [HASH], uint64_t count)) [HASH]
{
    uint8_t (*roots) [HASH] = (uint8_t (*) [HASH]) malloc ((count + 1) * HASH);
    cr_assert_not_null (roots);
    for (uint64_t size = 0; size <= count; size++)
        s_ref_mth (leaves, size, roots [size]);
    return roots;
}

//  The tree's root for every size [0, its size] equals the reference
static void
s_assert_roots (kp_merkle_t *tree, const uint8_t (*roots) [HASH])
{
    for (uint64_t size = 0; size <= kp_merkle_size (tree); size++) {
        uint8_t root [HASH];
        cr_assert_eq (kp_merkle_root (tree, size, root), 0);
        cr_assert_arr_eq (root, roots [size], HASH, "root of size %llu",
                          (unsigned long long) size);
    }
}

//  --------------------------------------------------------------------------
//  Corrupted variants of a valid inclusion proof must all be refused
//  (the mutations of the transparency-dev corpus, and a bit flip in every
//  byte of every hash when exhaustive)

static void
s_assert_inclusion_refusals (const uint8_t *leaf, uint64_t index, uint64_t size,
                             const uint8_t *proof, size_t count, const uint8_t *root,
                             bool exhaustive)
{
    uint8_t changed [KP_MERKLE_MAX_PROOF + 2][HASH];
    uint8_t other [HASH];
    uint8_t empty [HASH];
    crypto_hash_sha256 (empty, NULL, 0);
    cr_assert (count <= KP_MERKLE_MAX_PROOF);

    if (index > 0)
        cr_assert (!kp_merkle_verify_inclusion (leaf, index - 1, size, proof, count,
                                                root));
    cr_assert (!kp_merkle_verify_inclusion (leaf, index + 1, size, proof, count, root));
    if ((index ^ 2) != index)
        cr_assert (!kp_merkle_verify_inclusion (leaf, index ^ 2, size, proof, count,
                                                root));
    cr_assert (!kp_merkle_verify_inclusion (leaf, index, size * 2, proof, count, root));
    cr_assert (!kp_merkle_verify_inclusion (leaf, index, size / 2, proof, count, root));
    memcpy (other, leaf, HASH);
    other [HASH - 1] ^= 1;
    cr_assert (!kp_merkle_verify_inclusion (other, index, size, proof, count, root));
    cr_assert (!kp_merkle_verify_inclusion (leaf, index, size, proof, count, empty));
    memcpy (other, root, HASH);
    other [0] ^= 0x80;
    cr_assert (!kp_merkle_verify_inclusion (leaf, index, size, proof, count, other));

    for (size_t position = 0; position < count; position++) {
        for (size_t byte = 0; byte < HASH; byte += exhaustive? 1: 13) {
            memcpy (changed, proof, count * HASH);
            changed [position][byte] ^= (uint8_t) (1 << (byte % 8));
            cr_assert (!kp_merkle_verify_inclusion (leaf, index, size, changed [0], count,
                                                    root),
                       "flip at proof[%zu] byte %zu accepted", position, byte);
        }
        memcpy (changed, proof, count * HASH);
        memcpy (changed [position], empty, HASH);
        cr_assert (!kp_merkle_verify_inclusion (leaf, index, size, changed [0], count,
                                                root));
        //  removed component
        memcpy (changed, proof, position * HASH);
        memcpy (changed [position], proof + (position + 1) * HASH,
                (count - position - 1) * HASH);
        cr_assert (!kp_merkle_verify_inclusion (leaf, index, size, changed [0],
                                                count - 1, root));
    }
    //  trailing garbage, trailing root
    memcpy (changed, proof, count * HASH);
    memset (changed [count], 0, HASH);
    cr_assert (!kp_merkle_verify_inclusion (leaf, index, size, changed [0], count + 1,
                                            root));
    memcpy (changed [count], root, HASH);
    cr_assert (!kp_merkle_verify_inclusion (leaf, index, size, changed [0], count + 1,
                                            root));
    //  preceding garbage, preceding root, inserted component
    memset (changed [0], 0, HASH);
    memcpy (changed [1], proof, count * HASH);
    cr_assert (!kp_merkle_verify_inclusion (leaf, index, size, changed [0], count + 1,
                                            root));
    memcpy (changed [0], root, HASH);
    cr_assert (!kp_merkle_verify_inclusion (leaf, index, size, changed [0], count + 1,
                                            root));
    if (count > 0) {
        memcpy (changed, proof, HASH);
        memset (changed [1], 0x5a, HASH);
        memcpy (changed [2], proof + HASH, (count - 1) * HASH);
        cr_assert (!kp_merkle_verify_inclusion (leaf, index, size, changed [0],
                                                count + 1, root));
    }
}

//  Corrupted variants of a valid, non-empty consistency proof must all be
//  refused

static void
s_assert_consistency_refusals (uint64_t old_size, uint64_t new_size,
                               const uint8_t *old_root, const uint8_t *new_root,
                               const uint8_t *proof, size_t count, bool exhaustive)
{
    uint8_t changed [KP_MERKLE_MAX_PROOF + 2][HASH];
    uint8_t other [HASH];
    cr_assert (count <= KP_MERKLE_MAX_PROOF);
    if (count == 0)
        return;
    cr_assert (!kp_merkle_verify_consistency (old_size - 1, new_size, old_root, new_root,
                                              proof, count));
    cr_assert (!kp_merkle_verify_consistency (old_size + 1, new_size, old_root, new_root,
                                              proof, count));
    if ((old_size ^ 2) != old_size)
        cr_assert (!kp_merkle_verify_consistency (old_size ^ 2, new_size, old_root,
                                                  new_root, proof, count));
    cr_assert (!kp_merkle_verify_consistency (old_size, new_size * 2, old_root, new_root,
                                              proof, count));
    cr_assert (!kp_merkle_verify_consistency (old_size, new_size / 2, old_root, new_root,
                                              proof, count));
    memcpy (other, old_root, HASH);
    other [5] ^= 4;
    cr_assert (!kp_merkle_verify_consistency (old_size, new_size, other, new_root,
                                              proof, count));
    memcpy (other, new_root, HASH);
    other [30] ^= 64;
    cr_assert (!kp_merkle_verify_consistency (old_size, new_size, old_root, other,
                                              proof, count));
    cr_assert (!kp_merkle_verify_consistency (old_size, new_size, new_root, old_root,
                                              proof, count));
    cr_assert (!kp_merkle_verify_consistency (old_size, new_size, old_root, new_root,
                                              proof, 0));
    for (size_t position = 0; position < count; position++) {
        for (size_t byte = 0; byte < HASH; byte += exhaustive? 1: 11) {
            memcpy (changed, proof, count * HASH);
            changed [position][byte] ^= (uint8_t) (1 << ((byte + 3) % 8));
            cr_assert (!kp_merkle_verify_consistency (old_size, new_size, old_root,
                                                      new_root, changed [0], count),
                       "flip at proof[%zu] byte %zu accepted", position, byte);
        }
        memcpy (changed, proof, position * HASH);
        memcpy (changed [position], proof + (position + 1) * HASH,
                (count - position - 1) * HASH);
        cr_assert (!kp_merkle_verify_consistency (old_size, new_size, old_root,
                                                  new_root, changed [0], count - 1));
    }
    memcpy (changed, proof, count * HASH);
    memset (changed [count], 0, HASH);
    cr_assert (!kp_merkle_verify_consistency (old_size, new_size, old_root, new_root,
                                              changed [0], count + 1));
    memcpy (changed [count], old_root, HASH);
    cr_assert (!kp_merkle_verify_consistency (old_size, new_size, old_root, new_root,
                                              changed [0], count + 1));
    memset (changed [0], 0, HASH);
    memcpy (changed [1], proof, count * HASH);
    cr_assert (!kp_merkle_verify_consistency (old_size, new_size, old_root, new_root,
                                              changed [0], count + 1));
    memcpy (changed [0], proof, HASH);
    cr_assert (!kp_merkle_verify_consistency (old_size, new_size, old_root, new_root,
                                              changed [0], count + 1));
}

//  Check the tree's inclusion proof of (index, size) against the reference,
//  verify it and its corrupted variants
static void
s_check_inclusion (kp_merkle_t *tree, const uint8_t (*leaves) [HASH],
                   const uint8_t (*roots) [HASH], uint64_t index, uint64_t size,
                   bool exhaustive)
{
    uint8_t proof [KP_MERKLE_MAX_PROOF * HASH];
    uint8_t expected [KP_MERKLE_MAX_PROOF * HASH];
    size_t count = 99, expected_count = 0;
    cr_assert_eq (kp_merkle_inclusion (tree, index, size, proof, &count), 0);
    s_ref_path (index, leaves, size, expected, &expected_count);
    cr_assert_eq (count, expected_count, "inclusion (%llu, %llu): %zu hashes, want %zu",
                  (unsigned long long) index, (unsigned long long) size, count,
                  expected_count);
    cr_assert_arr_eq (proof, expected, count * HASH, "inclusion (%llu, %llu) differs",
                      (unsigned long long) index, (unsigned long long) size);
    cr_assert (kp_merkle_verify_inclusion (leaves [index], index, size, proof, count,
                                           roots [size]),
               "inclusion (%llu, %llu) does not verify", (unsigned long long) index,
               (unsigned long long) size);
    s_assert_inclusion_refusals (leaves [index], index, size, proof, count, roots [size],
                                 exhaustive);
}

static void
s_check_consistency (kp_merkle_t *tree, const uint8_t (*leaves) [HASH],
                     const uint8_t (*roots) [HASH], uint64_t old_size, uint64_t new_size,
                     bool exhaustive)
{
    uint8_t proof [KP_MERKLE_MAX_PROOF * HASH];
    uint8_t expected [KP_MERKLE_MAX_PROOF * HASH];
    size_t count = 99, expected_count = 0;
    cr_assert_eq (kp_merkle_consistency (tree, old_size, new_size, proof, &count), 0);
    s_ref_subproof (old_size, leaves, new_size, true, expected, &expected_count);
    cr_assert_eq (count, expected_count, "consistency (%llu, %llu): %zu hashes, want %zu",
                  (unsigned long long) old_size, (unsigned long long) new_size, count,
                  expected_count);
    cr_assert_arr_eq (proof, expected, count * HASH, "consistency (%llu, %llu) differs",
                      (unsigned long long) old_size, (unsigned long long) new_size);
    cr_assert (kp_merkle_verify_consistency (old_size, new_size, roots [old_size],
                                             roots [new_size], proof, count),
               "consistency (%llu, %llu) does not verify", (unsigned long long) old_size,
               (unsigned long long) new_size);
    s_assert_consistency_refusals (old_size, new_size, roots [old_size], roots [new_size],
                                   proof, count, exhaustive);
}

//  --------------------------------------------------------------------------
//  The certificate-transparency reference leaves and their known tree
//  heads (from the CT / transparency-dev test data; every value below was
//  found in more than one public copy of that data)

static const struct {
    const char *data;
    size_t size;
} s_ct_leaves [8] = {
    { "", 0 },
    { "\x00", 1 },
    { "\x10", 1 },
    { "\x20\x21", 2 },
    { "\x30\x31", 2 },
    { "\x40\x41\x42\x43", 4 },
    { "\x50\x51\x52\x53\x54\x55\x56\x57", 8 },
    { "\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f", 16 }
};

static const char *s_ct_roots [9] = {
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
};

//  Known proofs over those leaves: (a, b) is (leaf index, tree size) for
//  inclusion and (old size, new size) for consistency
typedef struct {
    bool consistency;
    uint64_t a, b;
    size_t count;
    const char *hashes [4];
} s_known_proof_t;

static const s_known_proof_t s_ct_proofs [] = {
    { false, 0, 8, 3, {
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4" } },
    { false, 5, 8, 3, {
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7" } },
    { false, 2, 3, 1, {
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125" } },
    { false, 1, 5, 3, {
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b" } },
    { true, 1, 8, 3, {
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4" } },
    { true, 6, 8, 3, {
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7" } },
    { true, 2, 5, 2, {
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b" } },
    { true, 3, 8, 4, {
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4" } }
};

//  Build the 8-leaf CT tree in dir; fills leaves with the leaf hashes
static kp_merkle_t *
s_ct_tree (const char *dir, uint8_t (*leaves) [HASH])
{
    kp_merkle_t *tree = kp_merkle_open (dir);
    cr_assert_not_null (tree);
    for (int index = 0; index < 8; index++) {
        kp_merkle_leaf_hash ((const uint8_t *) s_ct_leaves [index].data,
                             s_ct_leaves [index].size, leaves [index]);
        cr_assert_eq (kp_merkle_append (tree, leaves [index]), 0);
    }
    return tree;
}

//  --------------------------------------------------------------------------

Test (kp_merkle, hashes_follow_the_rfc_definitions)
{
    uint8_t data [200], got [HASH], want [HASH];
    for (size_t size = 0; size < sizeof data; size++) {
        data [size] = (uint8_t) (size * 13 + 1);
        kp_merkle_leaf_hash (data, size, got);
        s_ref_leaf (data, size, want);
        cr_assert_arr_eq (got, want, HASH);
    }
    uint8_t left [HASH], right [HASH];
    memset (left, 0x11, HASH);
    memset (right, 0x22, HASH);
    kp_merkle_node_hash (left, right, got);
    s_ref_node (left, right, want);
    cr_assert_arr_eq (got, want, HASH);
    //  The output may be one of the inputs
    kp_merkle_node_hash (left, right, left);
    cr_assert_arr_eq (left, want, HASH);
    kp_merkle_node_hash (right, right, right);
    memset (left, 0x22, HASH);
    s_ref_node (left, left, want);
    cr_assert_arr_eq (right, want, HASH);
}

Test (kp_merkle, known_roots_of_the_ct_test_data)
{
    char *dir = kp_test_tempdir ();
    char *tree_dir = zsys_sprintf ("%s/tree", dir);
    uint8_t leaves [8][HASH];
    kp_merkle_t *tree = s_ct_tree (tree_dir, leaves);
    kp_merkle_edge_t edge;
    kp_merkle_edge_init (&edge);
    for (uint64_t size = 0; size <= 8; size++) {
        uint8_t want [HASH], got [HASH];
        s_hex (s_ct_roots [size], want);
        cr_assert_eq (kp_merkle_root (tree, size, got), 0);
        cr_assert_arr_eq (got, want, HASH, "stored root of size %llu",
                          (unsigned long long) size);
        kp_merkle_edge_root (&edge, got);
        cr_assert_arr_eq (got, want, HASH, "edge root of size %llu",
                          (unsigned long long) size);
        s_ref_mth ((const uint8_t (*) [HASH]) leaves, size, got);
        cr_assert_arr_eq (got, want, HASH, "reference root of size %llu",
                          (unsigned long long) size);
        if (size < 8)
            kp_merkle_edge_push (&edge, leaves [size]);
    }
    kp_merkle_destroy (&tree);
    cr_assert_null (tree);
    kp_merkle_destroy (&tree);
    kp_test_rmtree (dir);
    free (tree_dir);
    free (dir);
}

Test (kp_merkle, known_proofs_of_the_ct_test_data)
{
    char *dir = kp_test_tempdir ();
    uint8_t leaves [8][HASH];
    kp_merkle_t *tree = s_ct_tree (dir, leaves);
    uint8_t roots [9][HASH];
    for (int size = 0; size <= 8; size++)
        s_hex (s_ct_roots [size], roots [size]);
    for (size_t item = 0; item < sizeof s_ct_proofs / sizeof s_ct_proofs [0]; item++) {
        const s_known_proof_t *known = &s_ct_proofs [item];
        uint8_t want [4 * HASH], got [KP_MERKLE_MAX_PROOF * HASH];
        for (size_t index = 0; index < known->count; index++)
            s_hex (known->hashes [index], want + index * HASH);
        size_t count = 0;
        if (known->consistency) {
            cr_assert_eq (kp_merkle_consistency (tree, known->a, known->b, got, &count),
                          0);
            cr_assert (kp_merkle_verify_consistency (known->a, known->b, roots [known->a],
                                                     roots [known->b], want,
                                                     known->count));
        }
        else {
            cr_assert_eq (kp_merkle_inclusion (tree, known->a, known->b, got, &count),
                          0);
            cr_assert (kp_merkle_verify_inclusion (leaves [known->a], known->a, known->b,
                                                   want, known->count, roots [known->b]));
        }
        cr_assert_eq (count, known->count, "proof %zu: %zu hashes", item, count);
        cr_assert_arr_eq (got, want, count * HASH, "proof %zu differs", item);
    }
    kp_merkle_destroy (&tree);
    kp_test_rmtree (dir);
    free (dir);
}

Test (kp_merkle, every_proof_up_to_eight_leaves)
{
    char *dir = kp_test_tempdir ();
    uint8_t leaves [8][HASH];
    kp_merkle_t *tree = s_ct_tree (dir, leaves);
    const uint8_t (*fixed) [HASH] = (const uint8_t (*) [HASH]) leaves;
    uint8_t (*roots) [HASH] = s_ref_roots (fixed, 8);
    size_t checked = 0;
    for (uint64_t size = 1; size <= 8; size++) {
        for (uint64_t index = 0; index < size; index++, checked++)
            s_check_inclusion (tree, fixed, (const uint8_t (*) [HASH]) roots, index, size,
                               true);
        for (uint64_t old_size = 1; old_size <= size; old_size++, checked++)
            s_check_consistency (tree, fixed, (const uint8_t (*) [HASH]) roots, old_size,
                                 size, true);
    }
    cr_assert_eq (checked, 36 + 36);
    free (roots);
    kp_merkle_destroy (&tree);
    kp_test_rmtree (dir);
    free (dir);
}

Test (kp_merkle, random_proofs_over_a_thousand_leaves)
{
    char *dir = kp_test_tempdir ();
    uint8_t (*leaves) [HASH] = s_ref_leaves (BIG_TREE);
    const uint8_t (*fixed) [HASH] = (const uint8_t (*) [HASH]) leaves;
    uint8_t (*roots) [HASH] = s_ref_roots (fixed, BIG_TREE);
    kp_merkle_t *tree = kp_merkle_open (dir);
    cr_assert_not_null (tree);
    s_append (tree, fixed, 0, BIG_TREE);
    uint64_t state = UINT64_C (0x9e3779b97f4a7c15);
    for (int pair = 0; pair < RANDOM_PAIRS; pair++) {
        uint64_t size = 1 + s_random (&state) % BIG_TREE;
        uint64_t index = s_random (&state) % size;
        s_check_inclusion (tree, fixed, (const uint8_t (*) [HASH]) roots, index, size,
                           pair < 20);
        uint64_t new_size = 1 + s_random (&state) % BIG_TREE;
        uint64_t old_size = 1 + s_random (&state) % new_size;
        s_check_consistency (tree, fixed, (const uint8_t (*) [HASH]) roots, old_size,
                             new_size, pair < 20);
    }
    //  The edges: first and last leaf, whole tree, equal sizes
    s_check_inclusion (tree, fixed, (const uint8_t (*) [HASH]) roots, 0, BIG_TREE,
                       false);
    s_check_inclusion (tree, fixed, (const uint8_t (*) [HASH]) roots, BIG_TREE - 1,
                       BIG_TREE, false);
    s_check_consistency (tree, fixed, (const uint8_t (*) [HASH]) roots, 1, BIG_TREE,
                         false);
    s_check_consistency (tree, fixed, (const uint8_t (*) [HASH]) roots, BIG_TREE - 1,
                         BIG_TREE, false);
    s_check_consistency (tree, fixed, (const uint8_t (*) [HASH]) roots, 512, BIG_TREE,
                         false);
    s_check_consistency (tree, fixed, (const uint8_t (*) [HASH]) roots, BIG_TREE,
                         BIG_TREE, false);
    free (roots);
    free (leaves);
    kp_merkle_destroy (&tree);
    kp_test_rmtree (dir);
    free (dir);
}

Test (kp_merkle, edge_root_equals_stored_root_for_every_size)
{
    char *dir = kp_test_tempdir ();
    uint8_t (*leaves) [HASH] = s_ref_leaves (BIG_TREE);
    const uint8_t (*fixed) [HASH] = (const uint8_t (*) [HASH]) leaves;
    uint8_t (*roots) [HASH] = s_ref_roots (fixed, BIG_TREE);
    kp_merkle_t *tree = kp_merkle_open (dir);
    cr_assert_not_null (tree);
    kp_merkle_edge_t edge;
    kp_merkle_edge_init (&edge);
    for (uint64_t size = 0; size <= BIG_TREE; size++) {
        uint8_t edge_root [HASH], stored_root [HASH];
        kp_merkle_edge_root (&edge, edge_root);
        cr_assert_eq (kp_merkle_root (tree, size, stored_root), 0);
        cr_assert_arr_eq (edge_root, stored_root, HASH, "size %llu",
                          (unsigned long long) size);
        cr_assert_arr_eq (edge_root, roots [size], HASH, "size %llu",
                          (unsigned long long) size);
        if (size < BIG_TREE) {
            uint8_t data [128];
            size_t length = s_record (size, data);
            uint8_t leaf [HASH];
            kp_merkle_leaf_hash (data, length, leaf);
            cr_assert_arr_eq (leaf, leaves [size], HASH);
            kp_merkle_edge_push (&edge, leaf);
            cr_assert_eq (kp_merkle_append (tree, leaf), 0);
        }
    }
    cr_assert_eq (edge.size, BIG_TREE);
    //  And every root below the final size, read from the level files
    s_assert_roots (tree, (const uint8_t (*) [HASH]) roots);
    for (uint64_t index = 0; index < BIG_TREE; index++) {
        uint8_t leaf [HASH];
        cr_assert_eq (kp_merkle_leaf (tree, index, leaf), 0);
        cr_assert_arr_eq (leaf, leaves [index], HASH);
    }
    //  The hashes are buffered until a sync writes them
    cr_assert_eq (kp_merkle_sync (tree), 0);
    s_assert_levels_fit (dir, BIG_TREE);
    free (roots);
    free (leaves);
    kp_merkle_destroy (&tree);
    kp_test_rmtree (dir);
    free (dir);
}

Test (kp_merkle, files_are_private_and_sync_works)
{
    char *dir = kp_test_tempdir ();
    char *tree_dir = zsys_sprintf ("%s/tree", dir);
    kp_merkle_t *tree = kp_merkle_open (tree_dir);
    cr_assert_not_null (tree);
    uint8_t leaf [HASH] = { 1 };
    for (int index = 0; index < 5; index++)
        cr_assert_eq (kp_merkle_append (tree, leaf), 0);
    cr_assert_eq (kp_merkle_sync (tree), 0);
    struct stat info;
    cr_assert_eq (stat (tree_dir, &info), 0);
    cr_assert_eq (info.st_mode & 0777, 0700);
    for (int level = 0; level < 3; level++) {
        char *path = s_level_path (tree_dir, level);
        cr_assert_eq (stat (path, &info), 0, "%s", path);
        cr_assert_eq (info.st_mode & 0777, 0600);
        free (path);
    }
    s_assert_levels_fit (tree_dir, 5);
    kp_merkle_destroy (&tree);
    kp_test_rmtree (dir);
    free (tree_dir);
    free (dir);
}

Test (kp_merkle, bad_arguments_are_refused)
{
    char *dir = kp_test_tempdir ();
    uint8_t leaves [8][HASH];
    kp_merkle_t *tree = s_ct_tree (dir, leaves);
    uint8_t proof [KP_MERKLE_MAX_PROOF * HASH], root [HASH];
    size_t count;
    cr_assert_eq (kp_merkle_root (tree, 9, root), -1);
    cr_assert_eq (kp_merkle_leaf (tree, 8, root), -1);
    cr_assert_eq (kp_merkle_inclusion (tree, 8, 8, proof, &count), -1);
    cr_assert_eq (kp_merkle_inclusion (tree, 0, 9, proof, &count), -1);
    cr_assert_eq (kp_merkle_inclusion (tree, 0, 0, proof, &count), -1);
    cr_assert_eq (kp_merkle_consistency (tree, 0, 8, proof, &count), -1);
    cr_assert_eq (kp_merkle_consistency (tree, 5, 4, proof, &count), -1);
    cr_assert_eq (kp_merkle_consistency (tree, 5, 9, proof, &count), -1);
    cr_assert_eq (kp_merkle_truncate (tree, 9), -1);
    cr_assert_eq (kp_merkle_consistency (tree, 8, 8, proof, &count), 0);
    cr_assert_eq (count, 0);
    //  The verifiers on their own
    uint8_t empty [HASH];
    crypto_hash_sha256 (empty, NULL, 0);
    cr_assert (!kp_merkle_verify_inclusion (empty, 0, 0, NULL, 0, empty));
    cr_assert (kp_merkle_verify_inclusion (leaves [0], 0, 1, NULL, 0, leaves [0]));
    cr_assert (!kp_merkle_verify_inclusion (leaves [0], 1, 1, NULL, 0, leaves [0]));
    cr_assert (!kp_merkle_verify_consistency (0, 0, empty, empty, NULL, 0));
    cr_assert (!kp_merkle_verify_consistency (0, 1, empty, leaves [0], empty, 1));
    cr_assert (kp_merkle_verify_consistency (1, 1, leaves [0], leaves [0], NULL, 0));
    cr_assert (!kp_merkle_verify_consistency (1, 1, leaves [0], leaves [0], empty, 1));
    cr_assert (!kp_merkle_verify_consistency (1, 1, leaves [0], leaves [1], NULL, 0));
    cr_assert (!kp_merkle_verify_consistency (2, 1, leaves [0], leaves [0], NULL, 0));
    cr_assert (!kp_merkle_verify_consistency (1, 2, leaves [0], leaves [0], NULL, 0));
    kp_merkle_destroy (&tree);
    //  A file where the dir should be
    char *file = zsys_sprintf ("%s/level-00", dir);
    cr_assert_null (kp_merkle_open (file));
    free (file);
    kp_test_rmtree (dir);
    free (dir);
}

//  --------------------------------------------------------------------------
//  Reopening and crash repair: a tree of BIG_TREE leaves, closed, its files
//  damaged as a crash (or worse) could leave them, and reopened

typedef struct {
    char *dir;                      //  temp dir
    char *tree_dir;                 //  dir/tree
    uint8_t (*leaves) [HASH];       //  reference leaf hashes
    uint8_t (*roots) [HASH];        //  reference roots of every size
} s_fixture_t;

static void
s_fixture_start (s_fixture_t *fixture)
{
    fixture->dir = kp_test_tempdir ();
    fixture->tree_dir = zsys_sprintf ("%s/tree", fixture->dir);
    fixture->leaves = s_ref_leaves (BIG_TREE);
    fixture->roots = s_ref_roots ((const uint8_t (*) [HASH]) fixture->leaves, BIG_TREE);
    kp_merkle_t *tree = kp_merkle_open (fixture->tree_dir);
    cr_assert_not_null (tree);
    s_append (tree, (const uint8_t (*) [HASH]) fixture->leaves, 0, BIG_TREE);
    cr_assert_eq (kp_merkle_sync (tree), 0);
    kp_merkle_destroy (&tree);
    s_assert_levels_fit (fixture->tree_dir, BIG_TREE);
}

static void
s_fixture_stop (s_fixture_t *fixture)
{
    kp_test_rmtree (fixture->dir);
    free (fixture->dir);
    free (fixture->tree_dir);
    free (fixture->leaves);
    free (fixture->roots);
}

//  Reopen; assert its size, that the files fit, that every root is right,
//  a few proofs, and that appending the rest gives the full tree again
static void
s_fixture_check (s_fixture_t *fixture, uint64_t size)
{
    kp_merkle_t *tree = kp_merkle_open (fixture->tree_dir);
    cr_assert_not_null (tree);
    cr_assert_eq (kp_merkle_size (tree), size, "size %llu, want %llu",
                  (unsigned long long) kp_merkle_size (tree), (unsigned long long) size);
    s_assert_levels_fit (fixture->tree_dir, size);
    const uint8_t (*leaves) [HASH] = (const uint8_t (*) [HASH]) fixture->leaves;
    const uint8_t (*roots) [HASH] = (const uint8_t (*) [HASH]) fixture->roots;
    s_assert_roots (tree, roots);
    if (size > 0) {
        s_check_inclusion (tree, leaves, roots, size / 3, size, false);
        s_check_consistency (tree, leaves, roots, 1 + size / 2, size, false);
    }
    s_append (tree, leaves, size, BIG_TREE);
    s_assert_roots (tree, roots);
    cr_assert_eq (kp_merkle_sync (tree), 0);
    s_assert_levels_fit (fixture->tree_dir, BIG_TREE);
    kp_merkle_destroy (&tree);
}

Test (kp_merkle, reopen_keeps_the_tree)
{
    s_fixture_t fixture;
    s_fixture_start (&fixture);
    s_fixture_check (&fixture, BIG_TREE);
    s_fixture_stop (&fixture);
}

Test (kp_merkle, partial_hash_in_a_higher_level_is_rebuilt)
{
    s_fixture_t fixture;
    s_fixture_start (&fixture);
    size_t original_size;
    uint8_t *original = s_level_slurp (fixture.tree_dir, 3, &original_size);
    s_level_cut (fixture.tree_dir, 3, 100 * HASH + 17);
    kp_merkle_t *tree = kp_merkle_open (fixture.tree_dir);
    cr_assert_not_null (tree);
    kp_merkle_destroy (&tree);
    size_t repaired_size;
    uint8_t *repaired = s_level_slurp (fixture.tree_dir, 3, &repaired_size);
    cr_assert_eq (repaired_size, original_size);
    cr_assert_arr_eq (repaired, original, original_size);
    free (original);
    free (repaired);
    s_fixture_check (&fixture, BIG_TREE);
    s_fixture_stop (&fixture);
}

Test (kp_merkle, partial_leaf_hash_is_cut)
{
    s_fixture_t fixture;
    s_fixture_start (&fixture);
    //  Leaf 999 torn: 999 whole leaves; every level above must shrink to fit
    s_level_cut (fixture.tree_dir, 0, 999 * HASH + 5);
    s_fixture_check (&fixture, 999);
    s_fixture_stop (&fixture);
}

Test (kp_merkle, deleted_level_is_rebuilt)
{
    s_fixture_t fixture;
    s_fixture_start (&fixture);
    size_t original_size;
    uint8_t *original = s_level_slurp (fixture.tree_dir, 2, &original_size);
    char *path = s_level_path (fixture.tree_dir, 2);
    cr_assert_eq (unlink (path), 0);
    char *top = s_level_path (fixture.tree_dir, 9);
    cr_assert_eq (unlink (top), 0);
    kp_merkle_t *tree = kp_merkle_open (fixture.tree_dir);
    cr_assert_not_null (tree);
    kp_merkle_destroy (&tree);
    size_t repaired_size;
    uint8_t *repaired = s_level_slurp (fixture.tree_dir, 2, &repaired_size);
    cr_assert_eq (repaired_size, original_size);
    cr_assert_arr_eq (repaired, original, original_size);
    free (original);
    free (repaired);
    free (path);
    free (top);
    s_fixture_check (&fixture, BIG_TREE);
    s_fixture_stop (&fixture);
}

Test (kp_merkle, short_level_zero_cuts_the_higher_levels)
{
    s_fixture_t fixture;
    s_fixture_start (&fixture);
    s_level_cut (fixture.tree_dir, 0, 600 * HASH);
    s_fixture_check (&fixture, 600);
    s_fixture_stop (&fixture);
}

Test (kp_merkle, empty_level_zero_empties_the_tree)
{
    s_fixture_t fixture;
    s_fixture_start (&fixture);
    char *path = s_level_path (fixture.tree_dir, 0);
    cr_assert_eq (unlink (path), 0);
    free (path);
    s_fixture_check (&fixture, 0);
    s_fixture_stop (&fixture);
}

Test (kp_merkle, stale_tail_of_a_level_is_rebuilt)
{
    s_fixture_t fixture;
    s_fixture_start (&fixture);
    //  The last hashes of levels 1 and 4 lost (zero pages), and garbage
    //  beyond the end of level 6
    s_level_poke (fixture.tree_dir, 1, 499, 0);
    s_level_poke (fixture.tree_dir, 1, 498, 0);
    s_level_poke (fixture.tree_dir, 4, 61, 0);
    s_level_poke (fixture.tree_dir, 6, 15, 0xee);
    s_fixture_check (&fixture, BIG_TREE);
    s_fixture_stop (&fixture);
}

Test (kp_merkle, zeroed_level_is_rebuilt_whole)
{
    //  More bad hashes than open walks back one by one: 1050 in level 1
    const uint64_t leaf_count = 2100;
    char *dir = kp_test_tempdir ();
    uint8_t (*leaves) [HASH] = s_ref_leaves (leaf_count);
    kp_merkle_t *tree = kp_merkle_open (dir);
    cr_assert_not_null (tree);
    s_append (tree, (const uint8_t (*) [HASH]) leaves, 0, leaf_count);
    kp_merkle_destroy (&tree);
    size_t original_size;
    uint8_t *original = s_level_slurp (dir, 1, &original_size);
    cr_assert_eq (original_size, 1050 * HASH);
    for (uint64_t index = 0; index < 1050; index++)
        s_level_poke (dir, 1, index, 0);
    tree = kp_merkle_open (dir);
    cr_assert_not_null (tree);
    cr_assert_eq (kp_merkle_size (tree), leaf_count);
    size_t repaired_size;
    uint8_t *repaired = s_level_slurp (dir, 1, &repaired_size);
    cr_assert_eq (repaired_size, original_size);
    cr_assert_arr_eq (repaired, original, original_size);
    uint8_t root [HASH], expected [HASH];
    cr_assert_eq (kp_merkle_root (tree, 1234, root), 0);
    s_ref_mth ((const uint8_t (*) [HASH]) leaves, 1234, expected);
    cr_assert_arr_eq (root, expected, HASH);
    kp_merkle_destroy (&tree);
    free (original);
    free (repaired);
    free (leaves);
    kp_test_rmtree (dir);
    free (dir);
}

Test (kp_merkle, stray_high_level_is_emptied)
{
    s_fixture_t fixture;
    s_fixture_start (&fixture);
    //  A level the tree cannot have yet, with junk in it
    s_level_poke (fixture.tree_dir, 12, 0, 0x33);
    s_level_poke (fixture.tree_dir, 10, 0, 0x44);
    s_fixture_check (&fixture, BIG_TREE);
    s_fixture_stop (&fixture);
}

Test (kp_merkle, truncate_then_append_again)
{
    s_fixture_t fixture;
    s_fixture_start (&fixture);
    const uint8_t (*leaves) [HASH] = (const uint8_t (*) [HASH]) fixture.leaves;
    const uint8_t (*roots) [HASH] = (const uint8_t (*) [HASH]) fixture.roots;
    kp_merkle_t *tree = kp_merkle_open (fixture.tree_dir);
    cr_assert_not_null (tree);
    const uint64_t sizes [] = { 999, 768, 513, 512, 100, 1, 0, 7 };
    for (size_t item = 0; item < sizeof sizes / sizeof sizes [0]; item++) {
        cr_assert_eq (kp_merkle_truncate (tree, sizes [item]), 0);
        cr_assert_eq (kp_merkle_size (tree), sizes [item]);
        s_assert_levels_fit (fixture.tree_dir, sizes [item]);
        uint8_t root [HASH];
        cr_assert_eq (kp_merkle_root (tree, sizes [item], root), 0);
        cr_assert_arr_eq (root, roots [sizes [item]], HASH);
        s_append (tree, leaves, sizes [item], BIG_TREE);
        cr_assert_eq (kp_merkle_root (tree, BIG_TREE, root), 0);
        cr_assert_arr_eq (root, roots [BIG_TREE], HASH);
        cr_assert_eq (kp_merkle_sync (tree), 0);
        s_assert_levels_fit (fixture.tree_dir, BIG_TREE);
    }
    //  Truncated and reopened
    cr_assert_eq (kp_merkle_truncate (tree, 333), 0);
    cr_assert_eq (kp_merkle_sync (tree), 0);
    kp_merkle_destroy (&tree);
    s_fixture_check (&fixture, 333);
    s_fixture_stop (&fixture);
}

//  --------------------------------------------------------------------------
//  The write buffers: hashes appended since the last sync live in memory
//  (up to 2048 a level), and every read must see them

#define LONG_TREE       5000        //  more leaves than one level buffer holds

//  Roots of every size [0, count], streamed through an edge (which the
//  tests above check against the reference)
static uint8_t (*s_edge_roots (const uint8_t (*leaves) [HASH], uint64_t count)) [HASH]
{
    uint8_t (*roots) [HASH] = (uint8_t (*) [HASH]) malloc ((count + 1) * HASH);
    cr_assert_not_null (roots);
    kp_merkle_edge_t edge;
    kp_merkle_edge_init (&edge);
    for (uint64_t size = 0; size <= count; size++) {
        kp_merkle_edge_root (&edge, roots [size]);
        if (size < count)
            kp_merkle_edge_push (&edge, leaves [size]);
    }
    return roots;
}

Test (kp_merkle, proofs_and_roots_see_hashes_not_yet_written)
{
    char *dir = kp_test_tempdir ();
    uint8_t (*leaves) [HASH] = s_ref_leaves (LONG_TREE);
    const uint8_t (*fixed) [HASH] = (const uint8_t (*) [HASH]) leaves;
    uint8_t (*roots) [HASH] = s_edge_roots (fixed, LONG_TREE);
    const uint8_t (*fixed_roots) [HASH] = (const uint8_t (*) [HASH]) roots;
    kp_merkle_t *tree = kp_merkle_open (dir);
    cr_assert_not_null (tree);
    s_append (tree, fixed, 0, LONG_TREE);
    //  Level 0 wrote two full buffers, level 1 one; the rest, and every
    //  higher level, wait in memory
    cr_assert_eq (s_level_length (dir, 0), 4096 * HASH);
    cr_assert_eq (s_level_length (dir, 1), 2048 * HASH);
    cr_assert_eq (s_level_length (dir, 2), 0);
    uint64_t state = UINT64_C (0x243f6a8885a308d3);
    for (int pair = 0; pair < 60; pair++) {
        uint64_t size = 1 + s_random (&state) % LONG_TREE;
        uint64_t index = s_random (&state) % size;
        s_check_inclusion (tree, fixed, fixed_roots, index, size, false);
        uint64_t new_size = 1 + s_random (&state) % LONG_TREE;
        uint64_t old_size = 1 + s_random (&state) % new_size;
        s_check_consistency (tree, fixed, fixed_roots, old_size, new_size, false);
    }
    const uint64_t sizes [] = { 1, 2047, 2048, 2049, 4095, 4096, 4097, 4999, 5000 };
    for (size_t item = 0; item < sizeof sizes / sizeof sizes [0]; item++) {
        uint64_t size = sizes [item];
        uint8_t root [HASH], leaf [HASH];
        cr_assert_eq (kp_merkle_root (tree, size, root), 0);
        cr_assert_arr_eq (root, roots [size], HASH, "root of %llu",
                          (unsigned long long) size);
        cr_assert_eq (kp_merkle_leaf (tree, size - 1, leaf), 0);
        cr_assert_arr_eq (leaf, leaves [size - 1], HASH);
        s_check_inclusion (tree, fixed, fixed_roots, size - 1, size, false);
        s_check_consistency (tree, fixed, fixed_roots, size, LONG_TREE, false);
    }
    //  A sync writes them all, one write per level, and nothing changes
    cr_assert_eq (kp_merkle_sync (tree), 0);
    s_assert_levels_fit (dir, LONG_TREE);
    s_check_inclusion (tree, fixed, fixed_roots, 4321, LONG_TREE, false);
    kp_merkle_destroy (&tree);
    free (roots);
    free (leaves);
    kp_test_rmtree (dir);
    free (dir);
}

Test (kp_merkle, truncate_drops_buffered_hashes_and_cuts_written_ones)
{
    char *dir = kp_test_tempdir ();
    uint8_t (*leaves) [HASH] = s_ref_leaves (LONG_TREE);
    const uint8_t (*fixed) [HASH] = (const uint8_t (*) [HASH]) leaves;
    uint8_t (*roots) [HASH] = s_edge_roots (fixed, LONG_TREE);
    const uint8_t (*fixed_roots) [HASH] = (const uint8_t (*) [HASH]) roots;
    kp_merkle_t *tree = kp_merkle_open (dir);
    cr_assert_not_null (tree);
    s_append (tree, fixed, 0, 3000);
    cr_assert_eq (s_level_length (dir, 0), 2048 * HASH);

    //  Into the buffer only: no file changes
    cr_assert_eq (kp_merkle_truncate (tree, 2500), 0);
    cr_assert_eq (kp_merkle_size (tree), 2500);
    cr_assert_eq (s_level_length (dir, 0), 2048 * HASH);
    uint8_t root [HASH];
    cr_assert_eq (kp_merkle_root (tree, 2500, root), 0);
    cr_assert_arr_eq (root, roots [2500], HASH);
    cr_assert_eq (kp_merkle_root (tree, 2100, root), 0);
    cr_assert_arr_eq (root, roots [2100], HASH);
    s_check_inclusion (tree, fixed, fixed_roots, 2499, 2500, false);

    //  Below what level 0 wrote: the file is cut, the buffers emptied
    cr_assert_eq (kp_merkle_truncate (tree, 1000), 0);
    cr_assert_eq (s_level_length (dir, 0), 1000 * HASH);
    cr_assert_eq (kp_merkle_root (tree, 1000, root), 0);
    cr_assert_arr_eq (root, roots [1000], HASH);
    s_check_consistency (tree, fixed, fixed_roots, 777, 1000, false);

    //  Appending again gives the same tree
    s_append (tree, fixed, 1000, LONG_TREE);
    for (uint64_t size = 0; size <= LONG_TREE; size += 7) {
        cr_assert_eq (kp_merkle_root (tree, size, root), 0);
        cr_assert_arr_eq (root, roots [size], HASH, "root of %llu",
                          (unsigned long long) size);
    }
    s_check_consistency (tree, fixed, fixed_roots, 999, LONG_TREE, false);

    //  Truncated inside the buffers, then closed without a sync: destroy
    //  writes what is buffered, and the files fit
    cr_assert_eq (kp_merkle_truncate (tree, 4500), 0);
    kp_merkle_destroy (&tree);
    s_assert_levels_fit (dir, 4500);
    tree = kp_merkle_open (dir);
    cr_assert_not_null (tree);
    cr_assert_eq (kp_merkle_size (tree), 4500);
    for (uint64_t size = 0; size <= 4500; size += 11) {
        cr_assert_eq (kp_merkle_root (tree, size, root), 0);
        cr_assert_arr_eq (root, roots [size], HASH);
    }
    kp_merkle_destroy (&tree);
    free (roots);
    free (leaves);
    kp_test_rmtree (dir);
    free (dir);
}

Test (kp_merkle, a_failed_write_leaves_the_tree_unchanged)
{
    char *dir = kp_test_tempdir ();
    uint8_t (*leaves) [HASH] = s_ref_leaves (LONG_TREE);
    const uint8_t (*fixed) [HASH] = (const uint8_t (*) [HASH]) leaves;
    uint8_t (*roots) [HASH] = s_edge_roots (fixed, LONG_TREE);
    kp_merkle_t *tree = kp_merkle_open (dir);
    cr_assert_not_null (tree);
    s_append (tree, fixed, 0, 2048);
    //  The next append writes level 0's full buffer; a file size limit
    //  makes that write fail
    struct rlimit saved, limit;
    cr_assert_eq (getrlimit (RLIMIT_FSIZE, &saved), 0);
    limit = saved;
    limit.rlim_cur = 1000;
    signal (SIGXFSZ, SIG_IGN);
    cr_assert_eq (setrlimit (RLIMIT_FSIZE, &limit), 0);
    int rc = kp_merkle_append (tree, leaves [2048]);
    int sync_rc = kp_merkle_sync (tree);
    cr_assert_eq (setrlimit (RLIMIT_FSIZE, &saved), 0);
    cr_assert_eq (rc, -1);
    cr_assert_eq (sync_rc, -1);
    cr_assert_eq (kp_merkle_size (tree), 2048);
    cr_assert_eq (s_level_length (dir, 0), 0, "cut back: no partial hashes");
    uint8_t root [HASH];
    cr_assert_eq (kp_merkle_root (tree, 2000, root), 0);
    cr_assert_arr_eq (root, roots [2000], HASH);
    //  The disk has room again: the buffered hashes are written after all
    s_append (tree, fixed, 2048, 2100);
    cr_assert_eq (kp_merkle_sync (tree), 0);
    s_assert_levels_fit (dir, 2100);
    kp_merkle_destroy (&tree);
    free (roots);
    free (leaves);
    kp_test_rmtree (dir);
    free (dir);
}

//  --------------------------------------------------------------------------
//  The transparency-dev proof corpus, read at run time. Each file is one
//  flat JSON object; the parser below reads just that shape.

typedef struct {
    uint64_t leaf_index, tree_size, size1, size2;
    char *root, *leaf_hash, *root1, *root2;         //  base64 text
    char *proof [CORPUS_MAX_PROOF];
    size_t proof_count;
    bool want_err;
    int seen;                                       //  keys we know, seen
} s_vector_t;

typedef struct {
    const char *at;
    const char *end;
} s_json_t;

static void
s_json_space (s_json_t *json)
{
    while (json->at < json->end && strchr (" \t\r\n", *json->at))
        json->at++;
}

static bool
s_json_take (s_json_t *json, char c)
{
    s_json_space (json);
    if (json->at < json->end && *json->at == c) {
        json->at++;
        return true;
    }
    return false;
}

//  A string without escapes but \" and \\; returns a new string or NULL
static char *
s_json_string (s_json_t *json)
{
    if (!s_json_take (json, '"'))
        return NULL;
    char *text = (char *) malloc ((size_t) (json->end - json->at) + 1);
    cr_assert_not_null (text);
    size_t length = 0;
    while (json->at < json->end && *json->at != '"') {
        if (*json->at == '\\' && json->at + 1 < json->end)
            json->at++;
        text [length++] = *json->at++;
    }
    text [length] = 0;
    if (!s_json_take (json, '"')) {
        free (text);
        return NULL;
    }
    return text;
}

static bool
s_json_number (s_json_t *json, uint64_t *value_p)
{
    s_json_space (json);
    uint64_t value = 0;
    const char *start = json->at;
    while (json->at < json->end && *json->at >= '0' && *json->at <= '9') {
        uint64_t digit = (uint64_t) (*json->at++ - '0');
        if (value > (UINT64_MAX - digit) / 10)
            return false;
        value = value * 10 + digit;
    }
    *value_p = value;
    return json->at > start;
}

static bool
s_json_word (s_json_t *json, const char *word)
{
    s_json_space (json);
    size_t length = strlen (word);
    if ((size_t) (json->end - json->at) >= length
    &&  memcmp (json->at, word, length) == 0) {
        json->at += length;
        return true;
    }
    return false;
}

static void
s_vector_free (s_vector_t *vector)
{
    free (vector->root);
    free (vector->leaf_hash);
    free (vector->root1);
    free (vector->root2);
    for (size_t index = 0; index < vector->proof_count; index++)
        free (vector->proof [index]);
}

//  Parse one corpus file's text; asserts on anything unexpected
static void
s_vector_parse (const char *path, const char *text, size_t size, s_vector_t *vector)
{
    memset (vector, 0, sizeof *vector);
    s_json_t json = { text, text + size };
    cr_assert (s_json_take (&json, '{'), "%s: not an object", path);
    if (s_json_take (&json, '}'))
        return;
    do {
        char *key = s_json_string (&json);
        cr_assert_not_null (key, "%s: bad key", path);
        cr_assert (s_json_take (&json, ':'), "%s: no ':'", path);
        uint64_t *number = streq (key, "leafIdx")? &vector->leaf_index:
                           streq (key, "treeSize")? &vector->tree_size:
                           streq (key, "size1")? &vector->size1:
                           streq (key, "size2")? &vector->size2: NULL;
        char **string = streq (key, "root")? &vector->root:
                        streq (key, "leafHash")? &vector->leaf_hash:
                        streq (key, "root1")? &vector->root1:
                        streq (key, "root2")? &vector->root2: NULL;
        if (number) {
            cr_assert (s_json_number (&json, number), "%s: bad %s", path, key);
            vector->seen++;
        }
        else
        if (string) {
            *string = s_json_string (&json);
            cr_assert_not_null (*string, "%s: bad %s", path, key);
            vector->seen++;
        }
        else
        if (streq (key, "proof")) {
            if (!s_json_word (&json, "null")) {
                cr_assert (s_json_take (&json, '['), "%s: bad proof", path);
                if (!s_json_take (&json, ']')) {
                    do {
                        cr_assert (vector->proof_count < CORPUS_MAX_PROOF);
                        vector->proof [vector->proof_count] = s_json_string (&json);
                        cr_assert_not_null (vector->proof [vector->proof_count],
                                            "%s: bad proof hash", path);
                        vector->proof_count++;
                    } while (s_json_take (&json, ','));
                    cr_assert (s_json_take (&json, ']'), "%s: bad proof", path);
                }
            }
            vector->seen++;
        }
        else
        if (streq (key, "wantErr")) {
            if (s_json_word (&json, "true"))
                vector->want_err = true;
            else
                cr_assert (s_json_word (&json, "false"), "%s: bad wantErr", path);
            vector->seen++;
        }
        else {
            char *ignored = s_json_string (&json);
            cr_assert_not_null (ignored, "%s: unexpected value of %s", path, key);
            free (ignored);
        }
        free (key);
    } while (s_json_take (&json, ','));
    cr_assert (s_json_take (&json, '}'), "%s: object not closed", path);
    s_json_space (&json);
    cr_assert (json.at == json.end, "%s: trailing text", path);
}

//  Decode base64 text into a 32-byte hash; false if it is not one
static bool
s_hash_decode (const char *text, uint8_t *hash)
{
    uint8_t buffer [3 * HASH];
    size_t length = 0;
    if (sodium_base642bin (buffer, sizeof buffer, text, strlen (text), NULL, &length,
                           NULL, sodium_base64_VARIANT_ORIGINAL) != 0
    ||  length != HASH)
        return false;
    memcpy (hash, buffer, HASH);
    return true;
}

typedef struct {
    size_t accepted;                //  wantErr false, verified
    size_t refused;                 //  wantErr true, refused by the verifier
    size_t refused_form;            //  wantErr true, a hash not 32 bytes
    size_t stand_in;                //  wantErr false, placeholder roots
} s_corpus_count_t;

//  Check one corpus file of kind "inclusion" or "consistency"
static void
s_corpus_file (const char *path, bool consistency, s_corpus_count_t *counts)
{
    FILE *file = fopen (path, "rb");
    cr_assert_not_null (file, "%s: %s", path, strerror (errno));
    char text [16384];
    size_t size = fread (text, 1, sizeof text, file);
    cr_assert (size < sizeof text, "%s: too big", path);
    fclose (file);
    s_vector_t vector;
    s_vector_parse (path, text, size, &vector);
    cr_assert_eq (vector.seen, 6, "%s: missing keys", path);

    //  Every hash must be 32 bytes to be passed to a SHA-256 verifier; a
    //  file with any other is refused before the verifier is called
    uint8_t proof [CORPUS_MAX_PROOF][HASH];
    bool hashes_fit = vector.proof_count <= KP_MERKLE_MAX_PROOF;
    for (size_t index = 0; index < vector.proof_count; index++)
        hashes_fit &= s_hash_decode (vector.proof [index], proof [index]);
    uint8_t first [HASH], second [HASH];
    if (consistency)
        hashes_fit &= s_hash_decode (vector.root1, first)
                   && s_hash_decode (vector.root2, second);
    else
        hashes_fit &= s_hash_decode (vector.leaf_hash, first)
                   && s_hash_decode (vector.root, second);

    if (!hashes_fit) {
        if (vector.want_err)
            counts->refused_form++;
        else {
            //  Only "equal sizes, empty proof, equal roots" is meaningful
            //  with placeholder roots: check that rule with a stand-in hash
            cr_assert (consistency && vector.size1 == vector.size2
                       && vector.proof_count == 0 && streq (vector.root1, vector.root2),
                       "%s: wantErr false with hashes that are not 32 bytes", path);
            uint8_t stand_in [HASH];
            crypto_hash_sha256 (stand_in, (const uint8_t *) vector.root1,
                                strlen (vector.root1));
            cr_assert (kp_merkle_verify_consistency (vector.size1, vector.size2,
                                                     stand_in, stand_in, NULL, 0),
                       "%s: refused", path);
            counts->stand_in++;
        }
        s_vector_free (&vector);
        return;
    }
    bool verified = consistency
        ? kp_merkle_verify_consistency (vector.size1, vector.size2, first, second,
                                        proof [0], vector.proof_count)
        : kp_merkle_verify_inclusion (first, vector.leaf_index, vector.tree_size,
                                      proof [0], vector.proof_count, second);
    cr_expect_eq (verified, !vector.want_err, "%s: %s", path,
                  verified? "accepted, want refused": "refused, want accepted");
    if (verified)
        counts->accepted++;
    else
        counts->refused++;
    s_vector_free (&vector);
}

//  Walk dir recursively, checking every .json file
static void
s_corpus_walk (const char *dir, bool consistency, s_corpus_count_t *counts)
{
    DIR *handle = opendir (dir);
    cr_assert_not_null (handle, "%s: %s", dir, strerror (errno));
    struct dirent *entry;
    while ((entry = readdir (handle))) {
        if (entry->d_name [0] == '.')
            continue;
        char *path = zsys_sprintf ("%s/%s", dir, entry->d_name);
        struct stat info;
        cr_assert_eq (stat (path, &info), 0);
        size_t length = strlen (entry->d_name);
        if (S_ISDIR (info.st_mode))
            s_corpus_walk (path, consistency, counts);
        else
        if (length > 5 && streq (entry->d_name + length - 5, ".json"))
            s_corpus_file (path, consistency, counts);
        free (path);
    }
    closedir (handle);
}

Test (kp_merkle, transparency_dev_proof_corpus)
{
    char *corpus = zsys_sprintf ("%s/merkle-transparency-dev", KP_VECTORS_DIR);
    struct stat info;
    if (stat (corpus, &info) != 0) {
        free (corpus);
        cr_skip ("no proof corpus at %s/merkle-transparency-dev", KP_VECTORS_DIR);
    }
    const char *kinds [2] = { "inclusion", "consistency" };
    size_t total = 0;
    for (int kind = 0; kind < 2; kind++) {
        s_corpus_count_t counts = { 0, 0, 0, 0 };
        char *dir = zsys_sprintf ("%s/%s", corpus, kinds [kind]);
        s_corpus_walk (dir, kind == 1, &counts);
        size_t files = counts.accepted + counts.refused + counts.refused_form
                     + counts.stand_in;
        fprintf (stderr, "kp_merkle corpus %s: %zu files: %zu accepted (wantErr false), "
                 "%zu refused by the verifier, %zu refused for hashes not 32 bytes "
                 "(wantErr true), %zu placeholder-root files checked with a stand-in "
                 "hash (wantErr false)\n", kinds [kind], files, counts.accepted,
                 counts.refused, counts.refused_form, counts.stand_in);
        cr_assert (counts.accepted > 0 && counts.refused > 0);
        total += files;
        free (dir);
    }
    cr_assert (total > 0);
    free (corpus);
}
