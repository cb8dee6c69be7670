/*  =========================================================================
    kp_queue - per-recipient delivery state, rebuilt from the log

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
@header
    The broker's delivery state: for every partner, the items waiting to
    be delivered to it (messages addressed to it, status reports about
    messages it sent) and the items in flight (sent, not yet acked). An item
    holds only positions in the log and the body store, never a body: the
    messages themselves stay on disk. Every item is named by its delivery
    tag, the log index (seq) of the record that created it. Items also sit
    in an expiry heap by expires-at. Owned by the server thread.
@end
*/
#ifndef KP_QUEUE_H_INCLUDED
#define KP_QUEUE_H_INCLUDED

#include "kp_util.h"

typedef struct _kp_queue_t kp_queue_t;

typedef enum {
    KP_ITEM_MESSAGE = 0,            //  a message to deliver (ACCEPTED record)
    KP_ITEM_STATUS = 1              //  a status for the sender of a message
} kp_item_kind_t;

typedef struct _kp_item_t kp_item_t;
struct _kp_item_t {
    uint64_t seq;                   //  delivery tag: index of the record
    uint64_t pos;                   //  position of that record in the log
    uint64_t body_pos;              //  message: position in the body store
    int64_t expires_at_ms;          //  message: wall clock; 0 = never
    int64_t sent_mono;              //  in flight: when sent (monotonic ms)
    void *session;                  //  in flight: the session it went to
    uint32_t attempt;               //  deliveries so far
    kp_item_kind_t kind;
    bool in_flight;                 //  on the in-flight list, not ready
    void *partner;                  //  owning partner queue (opaque)
    kp_item_t *prev, *next;         //  links in the ready/in-flight list
};

//  New, empty queue set. Destroy with kp_queue_destroy.
kp_queue_t *
    kp_queue_new (void);
void
    kp_queue_destroy (kp_queue_t **self_p);

//  Add an item for partner (copied) at the end of its ready list.
//  Returns the item (owned by the queue).
kp_item_t *
    kp_queue_add (kp_queue_t *self, const char *partner, kp_item_kind_t kind,
                  uint64_t seq, uint64_t pos, uint64_t body_pos,
                  int64_t expires_at_ms);

//  The item with delivery tag seq, or NULL.
kp_item_t *
    kp_queue_find (kp_queue_t *self, uint64_t seq);

//  The partner id that owns item.
const char *
    kp_queue_owner (kp_item_t *item);

//  Remove and free item (acked, nacked or expired).
void
    kp_queue_remove (kp_queue_t *self, kp_item_t *item);

//  The first ready item of partner, or NULL.
kp_item_t *
    kp_queue_first_ready (kp_queue_t *self, const char *partner);

//  Move a ready item to partner's in-flight list, sent to session now.
void
    kp_queue_mark_sent (kp_queue_t *self, kp_item_t *item, void *session,
                        int64_t now_mono);

//  Put every in-flight item of partner sent to session back into the ready
//  list, in delivery-tag order. Returns how many.
size_t
    kp_queue_requeue_session (kp_queue_t *self, const char *partner, void *session);

//  Called for each in-flight item just before it goes back to ready.
typedef void (kp_queue_requeue_fn) (kp_item_t *item, void *arg);

//  Put every in-flight item sent before now_mono - timeout back into the
//  ready lists, calling requeued (if not NULL) for each first. Returns how
//  many.
size_t
    kp_queue_requeue_timed_out (kp_queue_t *self, int64_t now_mono, int64_t timeout,
                                kp_queue_requeue_fn *requeued, void *arg);

//  Pop the next message item whose expiry is at or before now_ms, or NULL.
//  The item stays in the queue: the caller logs and removes it.
kp_item_t *
    kp_queue_next_expired (kp_queue_t *self, int64_t now_ms);

//  Counts for partner (0 if unknown), and in total.
size_t
    kp_queue_ready (kp_queue_t *self, const char *partner);
size_t
    kp_queue_in_flight (kp_queue_t *self, const char *partner);
size_t
    kp_queue_size (kp_queue_t *self);

#endif
