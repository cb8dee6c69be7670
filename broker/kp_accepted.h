/*  =========================================================================
    kp_accepted - what the broker remembers of every accepted message

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
@header
    A compact table of the messages the broker accepted, rebuilt from the
    log at start: 24 bytes per message, in one array ordered by the seq of
    each message's ACCEPTED record, plus an open-addressing index by message
    id of 4 to 8 bytes per message. It holds only what the loop needs to
    decide without reading the log (where the record is, the type, whether
    the message is queued, in flight or settled, read, its body deleted);
    everything else (sender, recipient, body hash, the envelope) is read
    back from the ACCEPTED record at pos when needed, which is rare.

    A message is named by its index, which never changes. The index by id
    keeps only a 32-bit keyed fingerprint (SipHash, with a key drawn at
    start, so clients cannot choose ids that collide): a lookup yields
    candidates, and the caller confirms the full id against the record.
    Owned by the server thread.
@end
*/
#ifndef KP_ACCEPTED_H_INCLUDED
#define KP_ACCEPTED_H_INCLUDED

#include "kp_util.h"

typedef struct _kp_accepted_t kp_accepted_t;

#define KP_ACCEPTED_NONE UINT32_MAX     //  no such message

//  Where a message is in its delivery
typedef enum {
    KP_MESSAGE_READY = 0,           //  queued for its recipient
    KP_MESSAGE_IN_FLIGHT = 1,       //  delivered, not yet acked
    KP_MESSAGE_SETTLED = 2          //  acked, nacked or expired
} kp_message_state_t;

#define KP_MESSAGE_READ 0x01            //  a school's read receipt came in
#define KP_MESSAGE_BODY_DELETED 0x02    //  BODY_DELETED was logged
#define KP_MESSAGE_OVERDUE 0x04         //  OVERDUE was logged
#define KP_MESSAGE_VOIDED 0x08          //  VOIDED: its body was lost, forgotten

//  One accepted message: 24 bytes
typedef struct {
    uint64_t seq;                   //  index of its ACCEPTED record
    uint64_t pos;                   //  position of that record in the log
    uint32_t fingerprint;           //  of the message id (keyed)
    uint8_t type;                   //  Kp__Wire__MessageType
    uint8_t state;                  //  kp_message_state_t
    uint8_t flags;                  //  KP_MESSAGE_READ, _BODY_DELETED, ...
    uint8_t attempt;                //  deliveries so far, stops at 255
} kp_message_t;

//  New, empty table. Destroy with kp_accepted_destroy.
kp_accepted_t *
    kp_accepted_new (void);
void
    kp_accepted_destroy (kp_accepted_t **self_p);

//  Add a message, READY, with no flags. seq must be above every seq added
//  before (messages come in log order). Returns its index.
uint32_t
    kp_accepted_add (kp_accepted_t *self, const uint8_t *id, uint64_t seq, uint64_t pos,
                     uint8_t type);

//  The message at index, or NULL if there is none.
kp_message_t *
    kp_accepted_get (kp_accepted_t *self, uint32_t index);

//  The index of the message whose ACCEPTED record is seq, or KP_ACCEPTED_NONE.
uint32_t
    kp_accepted_by_seq (kp_accepted_t *self, uint64_t seq);

//  The messages whose id may be id, in the order added: start with *cursor = 0
//  and call until KP_ACCEPTED_NONE. Each candidate's fingerprint matches;
//  the caller checks the full id in its ACCEPTED record.
uint32_t
    kp_accepted_candidate (kp_accepted_t *self, const uint8_t *id, size_t *cursor);

//  Number of messages in the table.
size_t
    kp_accepted_size (kp_accepted_t *self);

//  Bytes the table holds (entries and index), for stats.
size_t
    kp_accepted_bytes (kp_accepted_t *self);

#endif
