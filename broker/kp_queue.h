/*  =========================================================================
    kp_queue - per-recipient delivery state, rebuilt from the log

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
@header
    The broker's delivery state: for every partner, the items waiting to
    be delivered to it (messages addressed to it, status reports about
    messages it sent) and the items in flight (sent, not yet acked). Every
    item is named by its delivery tag, the log index (seq) of the record
    that created it, and holds only positions in the log, never a body: the
    messages themselves stay on disk.

    Memory follows the backlog, with no allocation per item: a queued
    message is 4 bytes in its partner's ready array (its index in the
    kp_accepted table, which holds its seq, position and state) and 8 in
    the expiry heap (which keeps the second an expiry falls in); a queued
    status is 16 bytes. Items in flight (at most
    the sessions' credit) sit in a small array per partner. Owned by the
    server thread.
@end
*/
#ifndef KP_QUEUE_H_INCLUDED
#define KP_QUEUE_H_INCLUDED

#include "kp_util.h"
#include "kp_accepted.h"

typedef struct _kp_queue_t kp_queue_t;

typedef enum {
    KP_ITEM_MESSAGE = 0,            //  a message to deliver (ACCEPTED record)
    KP_ITEM_STATUS = 1              //  a status for the sender of a message
} kp_item_kind_t;

//  An item, as the queue hands it out (a copy: the queue keeps its own)
typedef struct {
    uint64_t seq;                   //  delivery tag: index of the record
    uint64_t pos;                   //  position of that record in the log
    uint32_t message;               //  message: kp_accepted index; else NONE
    kp_item_kind_t kind;
    void *session;                  //  in flight: the session it went to
} kp_item_t;

//  New, empty queue set over the accepted messages (borrowed: it must
//  outlive the queue). Destroy with kp_queue_destroy.
kp_queue_t *
    kp_queue_new (kp_accepted_t *accepted);
void
    kp_queue_destroy (kp_queue_t **self_p);

//  Queue accepted message index (READY in the table) for partner, which is
//  its recipient. expires_at_ms 0 means never.
void
    kp_queue_add_message (kp_queue_t *self, const char *partner, uint32_t index,
                          int64_t expires_at_ms);

//  Queue a status for partner: the record at seq, pos tells it.
void
    kp_queue_add_status (kp_queue_t *self, const char *partner, uint64_t seq,
                         uint64_t pos);

//  The first ready item of partner, in delivery-tag order: true and *item
//  filled, or false if none is ready.
bool
    kp_queue_first_ready (kp_queue_t *self, const char *partner, kp_item_t *item);

//  Move partner's first ready item (as kp_queue_first_ready gave it) to
//  its in-flight items, sent to session now. A message's attempt count
//  goes up by one.
void
    kp_queue_mark_sent (kp_queue_t *self, const char *partner, void *session,
                        int64_t now_mono);

//  Take the item with delivery tag seq out of partner's in-flight items
//  if it was sent to session: true and *item filled, else false and
//  nothing changes.
bool
    kp_queue_take_in_flight (kp_queue_t *self, const char *partner, uint64_t seq,
                             void *session, kp_item_t *item);

//  Take the item with delivery tag seq of partner out of the queue,
//  wherever it is (ready or in flight): true and *item filled (session
//  NULL if it was ready), else false. A message becomes SETTLED.
bool
    kp_queue_remove (kp_queue_t *self, const char *partner, uint64_t seq, kp_item_t *item);

//  Put every in-flight item of partner sent to session back into the ready
//  items, in delivery-tag order. Returns how many.
size_t
    kp_queue_requeue_session (kp_queue_t *self, const char *partner, void *session);

//  Called for each in-flight item just before it goes back to ready.
typedef void (kp_queue_requeue_fn) (const kp_item_t *item, void *arg);

//  Put every in-flight item sent before now_mono - timeout back into the
//  ready items, calling requeued (if not NULL) for each first. Returns how
//  many.
size_t
    kp_queue_requeue_timed_out (kp_queue_t *self, int64_t now_mono, int64_t timeout,
                                kp_queue_requeue_fn *requeued, void *arg);

//  The index of the next queued message (ready or in flight) whose expiry
//  falls in the second of now_ms or before, or KP_ACCEPTED_NONE. It stays
//  queued: the caller checks its exact expiry, then logs it and takes it
//  out with kp_queue_remove, or, if it expires later in this second, puts
//  it back with kp_queue_expire_later once it is done asking.
uint32_t
    kp_queue_next_expired (kp_queue_t *self, int64_t now_ms);

//  Put message index back in the expiry heap, for expires_at_ms.
void
    kp_queue_expire_later (kp_queue_t *self, uint32_t index, int64_t expires_at_ms);

//  Counts for partner (0 if unknown), and in total.
size_t
    kp_queue_ready (kp_queue_t *self, const char *partner);
size_t
    kp_queue_in_flight (kp_queue_t *self, const char *partner);
size_t
    kp_queue_size (kp_queue_t *self);

#endif
