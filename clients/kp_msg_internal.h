/*  =========================================================================
    kp_msg_internal - what kp_client.c and kp_msg.c share about kp_msg_t

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
@header
    Not installed. kp_client builds wire commands from a message and
    messages from wire commands; kp_msg owns the struct and the body
    schemas. Tests may include this header to build received messages
    without a broker.
@end
*/
#ifndef KP_MSG_INTERNAL_H_INCLUDED
#define KP_MSG_INTERNAL_H_INCLUDED

#include "ketenpost.h"
#include "kp_util.h"


struct _kp_msg_t {
    bool is_status;                 //  a status report, not a message
    bool received;                  //  came from the broker (has a seq)
    uint64_t seq;                   //  received: delivery tag for ack/nack
    uint32_t attempt;               //  received: delivery attempt, from 1
    Kp__Wire__MessageType type;     //  message type (status: unknown, 0)
    bool has_id;                    //  id is set
    uint8_t id [KP_ID_SIZE];        //  message id (status: the message)
    char id_hex [KP_ID_SIZE * 2 + 1];   //  id as hex, "" when unset
    char *recipient;                //  address it was sent to
    int64_t created_at_ms;          //  sender's clock, UTC
    int64_t expires_at_ms;          //  0 = none
    int64_t due_at_ms;              //  0, or not acked by then -> OVERDUE
    bool has_reference;             //  reference is set
    uint8_t reference [KP_ID_SIZE]; //  id of the earlier message
    char reference_hex [KP_ID_SIZE * 2 + 1];    //  as hex, "" when unset
    char *purpose;                  //  purpose / legal-basis code, or ""
    char *acting_user;              //  user the partner vouches for, or ""
    char *on_behalf_of;             //  on whose behalf, or ""
    bool has_subject;               //  subject is set
    uint8_t subject [KP_HASH_SIZE]; //  subject pseudonym
    bool has_body;                  //  a body was set or received
    uint8_t *body;                  //  packed body protobuf (may be NULL)
    size_t body_size;               //  its size
    uint8_t body_hash [KP_HASH_SIZE];   //  received: SHA-256 of the sealed body
    char *sender;                   //  received: sender partner, or ""
    Kp__Wire__Role sender_role;     //  received: its role
    char *recipient_partner;        //  received: who the address became
    Kp__Wire__Role recipient_role;  //  received: its role
    Kp__Wire__StatusKind status;    //  status: what happened
    int64_t status_at_ms;           //  status: when, broker clock
    char *status_partner;           //  status: the recipient partner
    char *status_reason;            //  status: reason (REFUSED), or ""
    uint8_t *receipt;               //  status DELIVERED: signed receipt, or NULL
    size_t receipt_size;            //  its size
    bool receipt_verified;          //  its signature checked out
    char *key;                      //  duplicate key: "hex" or "hex STATUS"
    char *error;                    //  last setter error, or NULL
};

//  Make a received message from a Deliver command and its opened body
//  (body, body_size: the plaintext kp_seal_open gave; copied). Checks the
//  envelope, the sealed body's length and hash, the opened body against
//  its schema and the data-minimisation rules. Returns NULL and sets
//  *reason_p (a static string, one line) if the delivery must be refused.
//  Caller owns the result.
kp_msg_t *
    kp_msg_new_delivered (const Kp__Wire__Deliver *deliver, const uint8_t *body,
                          size_t body_size, const char **reason_p);

//  Check a Deliver's envelope and that its (sealed) body has the length
//  and hash the envelope says. NULL if fine, else a static reason.
const char *
    kp_msg_deliver_check (const Kp__Wire__Deliver *deliver);

//  Make a received status report from a Status command. Returns NULL if it
//  names no valid message id or status. Caller owns the result.
kp_msg_t *
    kp_msg_new_status (const Kp__Wire__Status *status);

//  Prepare an outgoing message for Submit: set a random id if none, check
//  the envelope strings and the body against the schema and the data-
//  minimisation rules; for a school notification set due_at and cap
//  expires_at by its school day. Returns 0, or -1 and sets kp_msg_error.
int
    kp_msg_seal (kp_msg_t *self);

//  Fill envelope (KP__WIRE__ENVELOPE__INIT'd by the caller) with pointers
//  into self, which must outlive it. Call after kp_msg_seal. body_length
//  and body_hash are left for the caller (they describe the sealed body).
void
    kp_msg_fill_envelope (kp_msg_t *self, Kp__Wire__Envelope *envelope);

//  The body descriptor for this message: by type, and for a school
//  notification by the recipient (received: recipient_role school;
//  outgoing: an address "school:..."). NULL for an unknown type.
const ProtobufCMessageDescriptor *
    kp_msg_body_descriptor (kp_msg_t *self);

//  Render an ISO 8601 UTC time with milliseconds ("2026-11-23T07:30:00.000Z")
//  into a new string. Caller frees.
char *
    kp_msg_iso_time (int64_t ms);

#endif
