/*  =========================================================================
    kp_notary - the broker's Merkle tree over the log and its checkpoints

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
@header
    The notary keeps the broker's side of the audit: the RFC 9162 tree over
    every record of the log (DATA/tree, a kp_merkle), and the signed
    checkpoints (DATA/checkpoints, a kp_log of C2SP notes, in the order they
    were signed, sizes strictly increasing). It signs with the region's
    checkpoint key and never signs two roots for one size: a checkpoint is
    appended and synced before it is published.

    The tree is derived data, trusted only up to the last checkpoint: on
    open it is cut back to that size (after checking its root there) and
    the owner appends the records after it again while replaying the log.
    The tree's files are synced before each checkpoint is signed.

    Owned by the server thread; not thread-safe.
@end
*/
#ifndef KP_NOTARY_H_INCLUDED
#define KP_NOTARY_H_INCLUDED

#include "kp_log.h"
#include "kp_merkle.h"

typedef struct _kp_notary_t kp_notary_t;

//  Open the notary in data_dir for a log of log_size records, signing as
//  name (origin and key name) with the checkpoint key of region_dir.
//  Returns NULL, with one logged line saying why, if the key cannot be
//  loaded, the last checkpoint does not verify, or it covers more records
//  than the log holds (records that were checkpointed are gone).
kp_notary_t *
    kp_notary_open (const char *data_dir, const char *region_dir, const char *name,
                    uint64_t log_size);

//  Close; wipes the signing key. Does not sign: call kp_notary_checkpoint
//  first for a final checkpoint.
void
    kp_notary_destroy (kp_notary_t **self_p);

//  Leaves in the tree: the owner appends records from here on.
uint64_t
    kp_notary_size (kp_notary_t *self);

//  Add the record with these stored bytes as the next leaf. 0 or -1.
int
    kp_notary_append (kp_notary_t *self, const uint8_t *data, size_t size)
    __attribute__ ((warn_unused_result));

//  Sign and persist a checkpoint for the first size leaves (size <=
//  kp_notary_size, and records up to size durable in the log). Does
//  nothing if size is not larger than the last checkpoint's. 0, or -1 if
//  the tree or the checkpoint store failed (the owner must stop).
int
    kp_notary_checkpoint (kp_notary_t *self, uint64_t size)
    __attribute__ ((warn_unused_result));

//  The latest checkpoint's note text, or NULL if none was signed yet.
const char *
    kp_notary_latest (kp_notary_t *self);

//  The latest checkpoint's tree size (0 if none).
uint64_t
    kp_notary_latest_size (kp_notary_t *self);

//  The tree, for proofs.
kp_merkle_t *
    kp_notary_tree (kp_notary_t *self);

#endif
