/*  =========================================================================
    kp_accepted - what the broker remembers of every accepted message

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
*/
#include "kp_accepted.h"
#include <sodium.h>

#define S_INITIAL_ENTRIES 1024
#define S_INITIAL_SLOTS 2048

struct _kp_accepted_t {
    kp_message_t *entries;          //  by index, in seq order
    size_t size;
    size_t limit;
    uint32_t *slots;                //  index + 1 by fingerprint; 0 = empty
    size_t slot_mask;               //  slots - 1 (a power of two, minus one)
    uint8_t key [crypto_shorthash_KEYBYTES];
};

//  The fingerprint of an id: 32 bits of its keyed hash (SipHash-2-4)
static uint32_t
s_fingerprint (kp_accepted_t *self, const uint8_t *id)
{
    uint8_t out [crypto_shorthash_BYTES];
    crypto_shorthash (out, id, KP_ID_SIZE, self->key);
    uint32_t fingerprint;
    memcpy (&fingerprint, out, sizeof fingerprint);
    return fingerprint;
}

//  The slot where the search for a fingerprint starts. Fingerprints are
//  uniform (keyed), so their low bits do.
static size_t
s_home (kp_accepted_t *self, uint32_t fingerprint)
{
    return (size_t) fingerprint & self->slot_mask;
}

//  Place index in the first free slot from home; the table has room
static void
s_slot_insert (kp_accepted_t *self, size_t home, uint32_t index)
{
    size_t slot = home;
    while (self->slots [slot])
        slot = (slot + 1) & self->slot_mask;
    self->slots [slot] = index + 1;
}

//  --------------------------------------------------------------------------
//  New, empty table

kp_accepted_t *
kp_accepted_new (void)
{
    int rc = sodium_init ();
    assert (rc >= 0);
    kp_accepted_t *self = (kp_accepted_t *) zmalloc (sizeof (kp_accepted_t));
    assert (self);
    self->limit = S_INITIAL_ENTRIES;
    self->entries = (kp_message_t *) malloc (self->limit * sizeof (kp_message_t));
    assert (self->entries);
    self->slots = (uint32_t *) calloc (S_INITIAL_SLOTS, sizeof (uint32_t));
    assert (self->slots);
    self->slot_mask = S_INITIAL_SLOTS - 1;
    crypto_shorthash_keygen (self->key);
    return self;
}

//  --------------------------------------------------------------------------
//  Destroy; idempotent

void
kp_accepted_destroy (kp_accepted_t **self_p)
{
    assert (self_p);
    kp_accepted_t *self = *self_p;
    if (self) {
        free (self->entries);
        free (self->slots);
        sodium_memzero (self->key, sizeof self->key);
        free (self);
        *self_p = NULL;
    }
}

//  Double the index, and place every message again, in index order, so
//  that candidates still come in the order they were added
static void
s_index_grow (kp_accepted_t *self)
{
    size_t slots = (self->slot_mask + 1) * 2;
    free (self->slots);
    self->slots = (uint32_t *) calloc (slots, sizeof (uint32_t));
    assert (self->slots);
    self->slot_mask = slots - 1;
    for (size_t index = 0; index < self->size; index++)
        s_slot_insert (self, s_home (self, self->entries [index].fingerprint),
                       (uint32_t) index);
}

//  --------------------------------------------------------------------------
//  Add a message; returns its index

uint32_t
kp_accepted_add (kp_accepted_t *self, const uint8_t *id, uint64_t seq, uint64_t pos,
                 uint8_t type)
{
    assert (self);
    assert (id);
    assert (self->size == 0 || self->entries [self->size - 1].seq < seq);
    assert (self->size < KP_ACCEPTED_NONE - 1);
    if (self->size == self->limit) {
        self->limit *= 2;
        self->entries = (kp_message_t *) realloc (self->entries,
                                                  self->limit * sizeof (kp_message_t));
        assert (self->entries);
    }
    if ((self->size + 1) * 2 > self->slot_mask + 1)
        s_index_grow (self);
    uint32_t index = (uint32_t) self->size++;
    uint32_t fingerprint = s_fingerprint (self, id);
    self->entries [index] = (kp_message_t) {
        .seq = seq, .pos = pos, .fingerprint = fingerprint, .type = type,
        .state = KP_MESSAGE_READY
    };
    s_slot_insert (self, s_home (self, fingerprint), index);
    return index;
}

//  --------------------------------------------------------------------------
//  The message at index, or NULL

kp_message_t *
kp_accepted_get (kp_accepted_t *self, uint32_t index)
{
    assert (self);
    return index < self->size? &self->entries [index]: NULL;
}

//  --------------------------------------------------------------------------
//  The index of the message whose ACCEPTED record is seq

uint32_t
kp_accepted_by_seq (kp_accepted_t *self, uint64_t seq)
{
    assert (self);
    size_t low = 0, high = self->size;
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        if (self->entries [middle].seq < seq)
            low = middle + 1;
        else
            high = middle;
    }
    return low < self->size && self->entries [low].seq == seq? (uint32_t) low:
                                                                KP_ACCEPTED_NONE;
}

//  --------------------------------------------------------------------------
//  The next message whose id may be id

uint32_t
kp_accepted_candidate (kp_accepted_t *self, const uint8_t *id, size_t *cursor)
{
    assert (self);
    assert (id);
    assert (cursor);
    uint32_t fingerprint = s_fingerprint (self, id);
    size_t slot = (s_home (self, fingerprint) + *cursor) & self->slot_mask;
    while (*cursor <= self->slot_mask) {
        uint32_t value = self->slots [slot];
        if (value == 0)
            break;
        (*cursor)++;
        if (self->entries [value - 1].fingerprint == fingerprint)
            return value - 1;
        slot = (slot + 1) & self->slot_mask;
    }
    return KP_ACCEPTED_NONE;
}

//  --------------------------------------------------------------------------
//  Sizes

size_t
kp_accepted_size (kp_accepted_t *self)
{
    assert (self);
    return self->size;
}

size_t
kp_accepted_bytes (kp_accepted_t *self)
{
    assert (self);
    return self->limit * sizeof (kp_message_t) + (self->slot_mask + 1) * sizeof (uint32_t);
}
