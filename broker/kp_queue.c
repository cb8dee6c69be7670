/*  =========================================================================
    kp_queue - per-recipient delivery state, rebuilt from the log

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
*/
#include "kp_queue.h"

//  One partner's lists. Ready is kept in delivery-tag order; in flight is
//  in order of sending, so the oldest send is first (ack timeouts).
typedef struct {
    char *id;                       //  partner id
    kp_item_t *ready_head;          //  next to deliver
    kp_item_t *ready_tail;
    kp_item_t *flight_head;         //  oldest send
    kp_item_t *flight_tail;
    size_t ready_count;
    size_t flight_count;
} s_partner_t;

//  Expiry heap entry; stale entries (item gone) are skipped when popped
typedef struct {
    int64_t expires_at_ms;
    uint64_t seq;
} s_expiry_t;

struct _kp_queue_t {
    zhashx_t *partners;             //  id -> s_partner_t
    zhashx_t *items;                //  &seq -> kp_item_t
    s_expiry_t *heap;               //  min-heap by expires_at_ms
    size_t heap_size;
    size_t heap_limit;
};

static size_t
s_seq_hash (const void *key)
{
    uint64_t value = *(const uint64_t *) key;
    value ^= value >> 33;
    value *= 0xff51afd7ed558ccdULL;
    value ^= value >> 33;
    return (size_t) value;
}

static int
s_seq_compare (const void *left, const void *right)
{
    uint64_t a = *(const uint64_t *) left, b = *(const uint64_t *) right;
    return a < b? -1: a > b? 1: 0;
}

static void
s_partner_destroy (void **item_p)
{
    s_partner_t *partner = (s_partner_t *) *item_p;
    if (partner) {
        free (partner->id);
        free (partner);
        *item_p = NULL;
    }
}

static void
s_item_destroy (void **item_p)
{
    free (*item_p);
    *item_p = NULL;
}

//  --------------------------------------------------------------------------
//  New, empty queue set

kp_queue_t *
kp_queue_new (void)
{
    kp_queue_t *self = (kp_queue_t *) zmalloc (sizeof (kp_queue_t));
    assert (self);
    self->partners = zhashx_new ();
    assert (self->partners);
    zhashx_set_destructor (self->partners, s_partner_destroy);
    self->items = zhashx_new ();
    assert (self->items);
    zhashx_set_key_hasher (self->items, s_seq_hash);
    zhashx_set_key_comparator (self->items, s_seq_compare);
    zhashx_set_key_duplicator (self->items, NULL);
    zhashx_set_key_destructor (self->items, NULL);
    zhashx_set_destructor (self->items, s_item_destroy);
    self->heap_limit = 1024;
    self->heap = (s_expiry_t *) malloc (self->heap_limit * sizeof (s_expiry_t));
    assert (self->heap);
    return self;
}

//  --------------------------------------------------------------------------
//  Destroy; idempotent

void
kp_queue_destroy (kp_queue_t **self_p)
{
    assert (self_p);
    kp_queue_t *self = *self_p;
    if (self) {
        free (self->heap);
        zhashx_destroy (&self->items);
        zhashx_destroy (&self->partners);
        free (self);
        *self_p = NULL;
    }
}

static s_partner_t *
s_partner_require (kp_queue_t *self, const char *id)
{
    s_partner_t *partner = (s_partner_t *) zhashx_lookup (self->partners, id);
    if (!partner) {
        partner = (s_partner_t *) zmalloc (sizeof (s_partner_t));
        assert (partner);
        partner->id = strdup (id);
        assert (partner->id);
        zhashx_insert (self->partners, id, partner);
    }
    return partner;
}

//  Unlink item from whichever list it is on
static void
s_unlink (kp_item_t *item)
{
    s_partner_t *partner = (s_partner_t *) item->partner;
    kp_item_t **head = item->in_flight? &partner->flight_head: &partner->ready_head;
    kp_item_t **tail = item->in_flight? &partner->flight_tail: &partner->ready_tail;
    if (item->prev)
        item->prev->next = item->next;
    else
        *head = item->next;
    if (item->next)
        item->next->prev = item->prev;
    else
        *tail = item->prev;
    item->prev = item->next = NULL;
    if (item->in_flight)
        partner->flight_count--;
    else
        partner->ready_count--;
}

//  Insert item into the ready list in delivery-tag order. New items have
//  the highest tag so far and land at the tail at once.
static void
s_insert_ready (kp_item_t *item)
{
    s_partner_t *partner = (s_partner_t *) item->partner;
    kp_item_t *after = partner->ready_tail;
    while (after && after->seq > item->seq)
        after = after->prev;
    item->in_flight = false;
    item->session = NULL;
    item->prev = after;
    item->next = after? after->next: partner->ready_head;
    if (item->next)
        item->next->prev = item;
    else
        partner->ready_tail = item;
    if (after)
        after->next = item;
    else
        partner->ready_head = item;
    partner->ready_count++;
}

static void
s_heap_push (kp_queue_t *self, int64_t expires_at_ms, uint64_t seq)
{
    if (self->heap_size == self->heap_limit) {
        self->heap_limit *= 2;
        self->heap = (s_expiry_t *) realloc (self->heap,
                                             self->heap_limit * sizeof (s_expiry_t));
        assert (self->heap);
    }
    size_t index = self->heap_size++;
    while (index > 0) {
        size_t parent = (index - 1) / 2;
        if (self->heap [parent].expires_at_ms <= expires_at_ms)
            break;
        self->heap [index] = self->heap [parent];
        index = parent;
    }
    self->heap [index] = (s_expiry_t) { expires_at_ms, seq };
}

static void
s_heap_pop (kp_queue_t *self)
{
    assert (self->heap_size > 0);
    s_expiry_t last = self->heap [--self->heap_size];
    size_t index = 0;
    while (true) {
        size_t child = index * 2 + 1;
        if (child >= self->heap_size)
            break;
        if (child + 1 < self->heap_size
        &&  self->heap [child + 1].expires_at_ms < self->heap [child].expires_at_ms)
            child++;
        if (last.expires_at_ms <= self->heap [child].expires_at_ms)
            break;
        self->heap [index] = self->heap [child];
        index = child;
    }
    if (self->heap_size > 0)
        self->heap [index] = last;
}

//  --------------------------------------------------------------------------
//  Add an item for partner at the end of its ready list

kp_item_t *
kp_queue_add (kp_queue_t *self, const char *partner, kp_item_kind_t kind,
              uint64_t seq, uint64_t pos, uint64_t body_pos, int64_t expires_at_ms)
{
    assert (self);
    assert (partner);
    assert (!zhashx_lookup (self->items, &seq));
    kp_item_t *item = (kp_item_t *) zmalloc (sizeof (kp_item_t));
    assert (item);
    item->seq = seq;
    item->pos = pos;
    item->body_pos = body_pos;
    item->expires_at_ms = expires_at_ms;
    item->kind = kind;
    item->partner = s_partner_require (self, partner);
    s_insert_ready (item);
    zhashx_insert (self->items, &item->seq, item);
    if (kind == KP_ITEM_MESSAGE && expires_at_ms > 0)
        s_heap_push (self, expires_at_ms, seq);
    return item;
}

//  --------------------------------------------------------------------------
//  The item with delivery tag seq, or NULL

kp_item_t *
kp_queue_find (kp_queue_t *self, uint64_t seq)
{
    assert (self);
    return (kp_item_t *) zhashx_lookup (self->items, &seq);
}

//  --------------------------------------------------------------------------
//  The partner id that owns item

const char *
kp_queue_owner (kp_item_t *item)
{
    assert (item);
    return ((s_partner_t *) item->partner)->id;
}

//  --------------------------------------------------------------------------
//  Remove and free item

void
kp_queue_remove (kp_queue_t *self, kp_item_t *item)
{
    assert (self);
    assert (item);
    s_unlink (item);
    uint64_t seq = item->seq;
    zhashx_delete (self->items, &seq);
}

//  --------------------------------------------------------------------------
//  The first ready item of partner, or NULL

kp_item_t *
kp_queue_first_ready (kp_queue_t *self, const char *partner)
{
    assert (self);
    s_partner_t *entry = (s_partner_t *) zhashx_lookup (self->partners, partner);
    return entry? entry->ready_head: NULL;
}

//  --------------------------------------------------------------------------
//  Move a ready item to the in-flight list

void
kp_queue_mark_sent (kp_queue_t *self, kp_item_t *item, void *session, int64_t now_mono)
{
    assert (self);
    assert (item);
    assert (!item->in_flight);
    s_unlink (item);
    s_partner_t *partner = (s_partner_t *) item->partner;
    item->in_flight = true;
    item->session = session;
    item->sent_mono = now_mono;
    item->attempt++;
    item->prev = partner->flight_tail;
    item->next = NULL;
    if (partner->flight_tail)
        partner->flight_tail->next = item;
    else
        partner->flight_head = item;
    partner->flight_tail = item;
    partner->flight_count++;
}

//  --------------------------------------------------------------------------
//  Requeue every in-flight item of partner sent to session

size_t
kp_queue_requeue_session (kp_queue_t *self, const char *partner, void *session)
{
    assert (self);
    s_partner_t *entry = (s_partner_t *) zhashx_lookup (self->partners, partner);
    size_t count = 0;
    kp_item_t *item = entry? entry->flight_head: NULL;
    while (item) {
        kp_item_t *next = item->next;
        if (item->session == session) {
            s_unlink (item);
            s_insert_ready (item);
            count++;
        }
        item = next;
    }
    return count;
}

//  --------------------------------------------------------------------------
//  Requeue every in-flight item sent before now_mono - timeout

size_t
kp_queue_requeue_timed_out (kp_queue_t *self, int64_t now_mono, int64_t timeout,
                            kp_queue_requeue_fn *requeued, void *arg)
{
    assert (self);
    size_t count = 0;
    s_partner_t *partner = (s_partner_t *) zhashx_first (self->partners);
    while (partner) {
        //  In-flight lists are in order of sending: stop at the first young one
        while (partner->flight_head
           &&  partner->flight_head->sent_mono + timeout <= now_mono) {
            kp_item_t *item = partner->flight_head;
            if (requeued)
                requeued (item, arg);
            s_unlink (item);
            s_insert_ready (item);
            count++;
        }
        partner = (s_partner_t *) zhashx_next (self->partners);
    }
    return count;
}

//  --------------------------------------------------------------------------
//  The next message item expired at now_ms, or NULL

kp_item_t *
kp_queue_next_expired (kp_queue_t *self, int64_t now_ms)
{
    assert (self);
    while (self->heap_size > 0 && self->heap [0].expires_at_ms <= now_ms) {
        uint64_t seq = self->heap [0].seq;
        s_heap_pop (self);
        kp_item_t *item = kp_queue_find (self, seq);
        if (item)
            return item;
    }
    return NULL;
}

//  --------------------------------------------------------------------------
//  Counts

size_t
kp_queue_ready (kp_queue_t *self, const char *partner)
{
    assert (self);
    s_partner_t *entry = (s_partner_t *) zhashx_lookup (self->partners, partner);
    return entry? entry->ready_count: 0;
}

size_t
kp_queue_in_flight (kp_queue_t *self, const char *partner)
{
    assert (self);
    s_partner_t *entry = (s_partner_t *) zhashx_lookup (self->partners, partner);
    return entry? entry->flight_count: 0;
}

size_t
kp_queue_size (kp_queue_t *self)
{
    assert (self);
    return zhashx_size (self->items);
}
