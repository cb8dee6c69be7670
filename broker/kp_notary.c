/*  =========================================================================
    kp_notary - the broker's Merkle tree over the log and its checkpoints

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
*/
#include "kp_notary.h"
#include "kp_checkpoint.h"
#include <sodium.h>

#define S_SEGMENT_SIZE (16u * 1024 * 1024)  //  checkpoint store segments

struct _kp_notary_t {
    char *name;                     //  origin and key name
    kp_merkle_t *tree;              //  DATA/tree
    kp_log_t *store;                //  DATA/checkpoints
    uint8_t *secret_key;            //  sodium_malloc'd, locked, wiped
    uint8_t public_key [KP_CHECKPOINT_PUBLIC];
    char *latest;                   //  note text of the last checkpoint
    uint64_t latest_size;           //  its tree size
};

//  --------------------------------------------------------------------------
//  Keep the last note of the checkpoint store

static int
s_latest_visit (const uint8_t *data, size_t size, uint64_t seq, uint64_t pos, void *arg)
{
    (void) seq;
    (void) pos;
    kp_notary_t *self = (kp_notary_t *) arg;
    free (self->latest);
    self->latest = strndup ((const char *) data, size);
    assert (self->latest);
    return 0;
}

//  Check the last checkpoint and cut the tree back to it. 0 or -1.
static int
s_recover (kp_notary_t *self, const char *data_dir, uint64_t log_size)
{
    if (kp_log_replay (self->store, s_latest_visit, self)) {
        zsys_error ("kp_notary: cannot read %s/checkpoints", data_dir);
        return -1;
    }
    uint64_t trusted = 0;
    if (self->latest) {
        kp_checkpoint_t checkpoint;
        const char *error = NULL;
        if (kp_checkpoint_verify (self->latest, strlen (self->latest), self->name,
                                  self->public_key, &checkpoint, &error)) {
            zsys_error ("kp_notary: the last checkpoint in %s/checkpoints does not "
                        "verify as '%s' with the region's checkpoint.pub (%s); not starting",
                        data_dir, self->name, error);
            return -1;
        }
        if (checkpoint.size > log_size) {
            zsys_error ("kp_notary: the last checkpoint covers %llu records but the log "
                        "holds %llu: checkpointed records are gone; restore the log from "
                        "backup; not starting", (unsigned long long) checkpoint.size,
                        (unsigned long long) log_size);
            return -1;
        }
        self->latest_size = checkpoint.size;
        uint8_t root [KP_MERKLE_HASH];
        if (kp_merkle_size (self->tree) >= checkpoint.size
        &&  kp_merkle_root (self->tree, checkpoint.size, root) == 0
        &&  sodium_memcmp (root, checkpoint.root, KP_MERKLE_HASH) == 0)
            trusted = checkpoint.size;
        else
            zsys_warning ("kp_notary: the tree does not match the last checkpoint; "
                          "rebuilding it from the log");
    }
    if (kp_merkle_size (self->tree) > trusted
    &&  kp_merkle_truncate (self->tree, trusted))
        return -1;
    return 0;
}

//  --------------------------------------------------------------------------
//  Open; see the header

kp_notary_t *
kp_notary_open (const char *data_dir, const char *region_dir, const char *name,
                uint64_t log_size)
{
    assert (data_dir);
    assert (region_dir);
    assert (name);
    kp_notary_t *self = (kp_notary_t *) zmalloc (sizeof (kp_notary_t));
    assert (self);
    self->name = strdup (name);
    self->secret_key = (uint8_t *) sodium_malloc (KP_CHECKPOINT_SECRET);
    assert (self->secret_key);
    if (kp_checkpoint_load_secret (region_dir, self->secret_key)
    ||  kp_checkpoint_load_public (region_dir, self->public_key))
        goto failed;
    //  A name the note format cannot carry is a config error: find it now,
    //  not at the first checkpoint
    uint8_t empty_root [KP_MERKLE_HASH] = { 0 };
    char *probe = kp_checkpoint_sign (name, 0, empty_root, name, self->secret_key);
    if (!probe) {
        zsys_error ("kp_notary: server/name '%s' cannot name a checkpoint "
                    "(printable ASCII, no spaces or '+')", name);
        goto failed;
    }
    free (probe);
    char *path = zsys_sprintf ("%s/tree", data_dir);
    self->tree = kp_merkle_open (path);
    free (path);
    if (!self->tree)
        goto failed;
    path = zsys_sprintf ("%s/checkpoints", data_dir);
    kp_log_status_t status;
    self->store = kp_log_open (path, S_SEGMENT_SIZE, true, &status);
    free (path);
    if (!self->store || s_recover (self, data_dir, log_size))
        goto failed;
    return self;

failed:
    kp_notary_destroy (&self);
    return NULL;
}

//  --------------------------------------------------------------------------
//  Close; see the header

void
kp_notary_destroy (kp_notary_t **self_p)
{
    assert (self_p);
    kp_notary_t *self = *self_p;
    if (!self)
        return;
    kp_log_destroy (&self->store);
    kp_merkle_destroy (&self->tree);
    sodium_free (self->secret_key);         //  wipes it
    free (self->latest);
    free (self->name);
    free (self);
    *self_p = NULL;
}

uint64_t
kp_notary_size (kp_notary_t *self)
{
    assert (self);
    return kp_merkle_size (self->tree);
}

int
kp_notary_append (kp_notary_t *self, const uint8_t *data, size_t size)
{
    assert (self);
    uint8_t leaf [KP_MERKLE_HASH];
    kp_merkle_leaf_hash (data, size, leaf);
    return kp_merkle_append (self->tree, leaf);
}

//  --------------------------------------------------------------------------
//  Sign and persist a checkpoint; see the header. The order matters: the
//  tree's files reach the disk first (so a restart can trust them up to
//  this size), then the note, and only then is it the latest.

int
kp_notary_checkpoint (kp_notary_t *self, uint64_t size)
{
    assert (self);
    assert (size <= kp_merkle_size (self->tree));
    if (size <= self->latest_size && self->latest)
        return 0;
    uint8_t root [KP_MERKLE_HASH];
    if (kp_merkle_sync (self->tree) || kp_merkle_root (self->tree, size, root))
        return -1;
    char *note = kp_checkpoint_sign (self->name, size, root, self->name, self->secret_key);
    assert (note);                  //  the name was checked on open
    uint64_t seq, pos;
    if (kp_log_append (self->store, note, strlen (note), &seq, &pos)
    ||  kp_log_sync (self->store)) {
        free (note);
        return -1;
    }
    free (self->latest);
    self->latest = note;
    self->latest_size = size;
    return 0;
}

const char *
kp_notary_latest (kp_notary_t *self)
{
    assert (self);
    return self->latest;
}

uint64_t
kp_notary_latest_size (kp_notary_t *self)
{
    assert (self);
    return self->latest_size;
}

kp_merkle_t *
kp_notary_tree (kp_notary_t *self)
{
    assert (self);
    return self->tree;
}
