/*  =========================================================================
    kp_merkle - the RFC 9162 Merkle tree over the log, and its proofs

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
@header
    The audit log's Merkle tree (RFC 9162 section 2.1, as RFC 6962):
    leaf hash = SHA-256(0x00 || the record's stored bytes), node hash =
    SHA-256(0x01 || left || right), the empty tree's root = SHA-256("").

    A kp_merkle_t keeps the hashes of every complete, aligned subtree on
    disk, one file per level (level k holds the hashes of leaves
    [i*2^k, (i+1)*2^k) for every complete i), so any root, inclusion proof
    or consistency proof for any tree size up to size() costs O(log n)
    reads, never a pass over the log. It reads with pread and keeps in
    memory only the right edge and, per level, the hashes appended since
    they were last written (at most 64 KiB a level), so memory does not
    grow with the log. Hashes are written by kp_merkle_sync (one pwrite
    per level), when a level's buffer fills, and by kp_merkle_destroy.

    The tree is derived data: the log is the truth. A tree directory may be
    behind the log (a crash before its pages reached the disk); the owner
    truncates it to what it trusts and appends the missing leaves again.

    The free functions verify proofs without a tree: kp-audit uses them,
    and so does anyone who holds a checkpoint and a proof.
@end
*/
#ifndef KP_MERKLE_H_INCLUDED
#define KP_MERKLE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KP_MERKLE_HASH 32               //  SHA-256
#define KP_MERKLE_MAX_PROOF 64          //  hashes in any proof, for n < 2^64

typedef struct _kp_merkle_t kp_merkle_t;

//  --------------------------------------------------------------------------
//  Hashing (RFC 9162 2.1.1)

//  Leaf hash of a record's stored bytes.
void
    kp_merkle_leaf_hash (const uint8_t *data, size_t size, uint8_t *hash);

//  Node hash of two children.
void
    kp_merkle_node_hash (const uint8_t *left, const uint8_t *right, uint8_t *hash);

//  --------------------------------------------------------------------------
//  The stored tree

//  Open (creating if absent, mode 0700) the tree kept in dir. Returns NULL
//  with one logged line if dir cannot be used or its files are damaged
//  beyond what kp_merkle_truncate can repair (files whose lengths do not
//  fit together are cut back to the largest consistent leaf count).
kp_merkle_t *
    kp_merkle_open (const char *dir);

//  Close the tree. Writes the hashes still buffered; does not sync.
void
    kp_merkle_destroy (kp_merkle_t **self_p);

//  Number of leaves.
uint64_t
    kp_merkle_size (kp_merkle_t *self);

//  Append one leaf, given its leaf hash; buffers the new complete subtree
//  hashes of every level (a full buffer is written first). 0, or -1 on a
//  write error (logged; the tree is unchanged).
int
    kp_merkle_append (kp_merkle_t *self, const uint8_t *leaf_hash)
    __attribute__ ((warn_unused_result));

//  Write every buffered hash, then fdatasync every level file changed
//  since the last sync. 0 or -1.
int
    kp_merkle_sync (kp_merkle_t *self) __attribute__ ((warn_unused_result));

//  Cut the tree back to size leaves (size <= kp_merkle_size). 0 or -1.
int
    kp_merkle_truncate (kp_merkle_t *self, uint64_t size)
    __attribute__ ((warn_unused_result));

//  Root of the tree of the first size leaves (size <= kp_merkle_size;
//  size 0 gives SHA-256 of the empty string). 0 or -1 (read error).
int
    kp_merkle_root (kp_merkle_t *self, uint64_t size, uint8_t *root)
    __attribute__ ((warn_unused_result));

//  Leaf hash of leaf index (< kp_merkle_size). 0 or -1.
int
    kp_merkle_leaf (kp_merkle_t *self, uint64_t index, uint8_t *hash)
    __attribute__ ((warn_unused_result));

//  Inclusion proof (RFC 9162 2.1.3.1) of leaf index in the tree of size
//  leaves: fills proof (room for KP_MERKLE_MAX_PROOF hashes, each
//  KP_MERKLE_HASH bytes, back to back) and *count. Requires index < size
//  <= kp_merkle_size. 0 or -1.
int
    kp_merkle_inclusion (kp_merkle_t *self, uint64_t index, uint64_t size,
                         uint8_t *proof, size_t *count)
    __attribute__ ((warn_unused_result));

//  Consistency proof (RFC 9162 2.1.4.1) between tree sizes old_size and
//  new_size, 0 < old_size <= new_size <= kp_merkle_size; same output as
//  kp_merkle_inclusion. (old_size == new_size gives an empty proof.)
int
    kp_merkle_consistency (kp_merkle_t *self, uint64_t old_size, uint64_t new_size,
                           uint8_t *proof, size_t *count)
    __attribute__ ((warn_unused_result));

//  --------------------------------------------------------------------------
//  Verification (RFC 9162 2.1.3.2 and 2.1.4.2), no tree needed

//  True if proof shows leaf_hash at index in the tree of size with root.
bool
    kp_merkle_verify_inclusion (const uint8_t *leaf_hash, uint64_t index, uint64_t size,
                                const uint8_t *proof, size_t count, const uint8_t *root);

//  True if proof shows the tree of old_size with old_root is a prefix of
//  the tree of new_size with new_root.
bool
    kp_merkle_verify_consistency (uint64_t old_size, uint64_t new_size,
                                  const uint8_t *old_root, const uint8_t *new_root,
                                  const uint8_t *proof, size_t count);

//  --------------------------------------------------------------------------
//  The right edge of a tree in memory, for computing roots while streaming
//  over the leaves (kp-audit verify): O(log n) memory, one node hash per
//  leaf on average.

typedef struct {
    uint64_t size;                                      //  leaves pushed
    uint8_t edge [64][KP_MERKLE_HASH];                  //  complete subtrees
} kp_merkle_edge_t;

//  Start an empty edge.
void
    kp_merkle_edge_init (kp_merkle_edge_t *edge);

//  Push the next leaf's hash.
void
    kp_merkle_edge_push (kp_merkle_edge_t *edge, const uint8_t *leaf_hash);

//  Root of the leaves pushed so far.
void
    kp_merkle_edge_root (const kp_merkle_edge_t *edge, uint8_t *root);

#endif
