/*  =========================================================================
    test_kp_queue - delivery state: the accepted table, order, in flight,
    requeue, expiry

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
*/
#include <criterion/criterion.h>
#include "kp_queue.h"

TestSuite (kp_queue);

//  A message id made from a number
static void
s_id (uint8_t *id, uint64_t number)
{
    memset (id, 0x5a, KP_ID_SIZE);
    memcpy (id, &number, sizeof number);
}

//  Accept a message with record seq at position seq * 10; returns its index
static uint32_t
s_accept (kp_accepted_t *accepted, uint64_t seq)
{
    uint8_t id [KP_ID_SIZE];
    s_id (id, seq);
    return kp_accepted_add (accepted, id, seq, seq * 10, 3);
}

//  Accept message seq and queue it for partner
static uint32_t
s_queue_message (kp_queue_t *queue, kp_accepted_t *accepted, const char *partner,
                 uint64_t seq, int64_t expires_at_ms)
{
    uint32_t index = s_accept (accepted, seq);
    kp_queue_add_message (queue, partner, index, expires_at_ms);
    return index;
}

static uint64_t
s_first_seq (kp_queue_t *queue, const char *partner)
{
    kp_item_t item;
    return kp_queue_first_ready (queue, partner, &item)? item.seq: UINT64_MAX;
}

Test (kp_queue, accepted_messages_are_found_by_seq_and_by_id)
{
    kp_accepted_t *accepted = kp_accepted_new ();
    //  Enough to grow the entries and the index several times
    for (uint64_t seq = 1; seq <= 100000; seq++)
        cr_assert_eq (s_accept (accepted, seq * 3), seq - 1);
    cr_assert_eq (kp_accepted_size (accepted), 100000);
    cr_assert_eq (kp_accepted_by_seq (accepted, 3), 0);
    cr_assert_eq (kp_accepted_by_seq (accepted, 300000), 99999);
    cr_assert_eq (kp_accepted_by_seq (accepted, 4), KP_ACCEPTED_NONE);
    cr_assert_eq (kp_accepted_by_seq (accepted, 0), KP_ACCEPTED_NONE);
    cr_assert_eq (kp_accepted_by_seq (accepted, 300003), KP_ACCEPTED_NONE);
    kp_message_t *message = kp_accepted_get (accepted, 41);
    cr_assert_eq (message->seq, 126);
    cr_assert_eq (message->pos, 1260);
    cr_assert_eq (message->type, 3);
    cr_assert_eq (message->state, KP_MESSAGE_READY);
    cr_assert_null (kp_accepted_get (accepted, 100000));
    //  Every id finds its message among its candidates; an unknown id
    //  finds none (or, rarely, a fingerprint twin, never itself)
    uint8_t id [KP_ID_SIZE];
    for (uint64_t seq = 1; seq <= 100000; seq++) {
        s_id (id, seq * 3);
        size_t cursor = 0;
        uint32_t index, found = KP_ACCEPTED_NONE;
        while ((index = kp_accepted_candidate (accepted, id, &cursor)) != KP_ACCEPTED_NONE)
            if (kp_accepted_get (accepted, index)->seq == seq * 3)
                found = index;
        cr_assert_eq (found, seq - 1);
    }
    size_t false_candidates = 0;
    for (uint64_t number = 1; number <= 10000; number++) {
        s_id (id, number * 3 + 1);
        size_t cursor = 0;
        while (kp_accepted_candidate (accepted, id, &cursor) != KP_ACCEPTED_NONE)
            false_candidates++;
    }
    cr_assert_lt (false_candidates, 3, "32-bit fingerprints: about 0.0002 expected");
    cr_assert_lt (kp_accepted_bytes (accepted), 100000 * 48);
    kp_accepted_destroy (&accepted);
    kp_accepted_destroy (&accepted);
    cr_assert_null (accepted);
}

Test (kp_queue, the_same_id_twice_gives_both_in_the_order_added)
{
    kp_accepted_t *accepted = kp_accepted_new ();
    uint8_t id [KP_ID_SIZE];
    s_id (id, 1000000);
    kp_accepted_add (accepted, id, 1, 10, 1);
    for (uint64_t seq = 2; seq < 5000; seq++)
        s_accept (accepted, seq * 2 + 1);
    kp_accepted_add (accepted, id, 20000, 200000, 1);
    size_t cursor = 0;
    cr_assert_eq (kp_accepted_candidate (accepted, id, &cursor), 0);
    cr_assert_eq (kp_accepted_candidate (accepted, id, &cursor), 4999);
    cr_assert_eq (kp_accepted_candidate (accepted, id, &cursor), KP_ACCEPTED_NONE);
    kp_accepted_destroy (&accepted);
}

Test (kp_queue, items_come_out_in_delivery_tag_order_per_partner)
{
    kp_accepted_t *accepted = kp_accepted_new ();
    kp_queue_t *queue = kp_queue_new (accepted);
    uint32_t three = s_queue_message (queue, accepted, "school-12ab00", 3, 0);
    s_queue_message (queue, accepted, "vt-twente", 4, 0);
    kp_queue_add_status (queue, "school-12ab00", 7, 70);
    s_queue_message (queue, accepted, "school-12ab00", 8, 0);
    cr_assert_eq (kp_queue_ready (queue, "school-12ab00"), 3);
    cr_assert_eq (kp_queue_ready (queue, "vt-twente"), 1);
    cr_assert_eq (kp_queue_ready (queue, "nobody"), 0);
    cr_assert_eq (kp_queue_size (queue), 4);
    kp_item_t item;
    cr_assert (kp_queue_first_ready (queue, "school-12ab00", &item));
    cr_assert_eq (item.seq, 3);
    cr_assert_eq (item.pos, 30);
    cr_assert_eq (item.kind, KP_ITEM_MESSAGE);
    cr_assert_eq (item.message, three);
    cr_assert_not (kp_queue_first_ready (queue, "nobody", &item));
    int session;
    kp_queue_mark_sent (queue, "school-12ab00", &session, 1000);
    cr_assert_eq (kp_accepted_get (accepted, three)->attempt, 1);
    cr_assert_eq (kp_accepted_get (accepted, three)->state, KP_MESSAGE_IN_FLIGHT);
    cr_assert (kp_queue_first_ready (queue, "school-12ab00", &item));
    cr_assert_eq (item.seq, 7);
    cr_assert_eq (item.pos, 70);
    cr_assert_eq (item.kind, KP_ITEM_STATUS);
    cr_assert_eq (item.message, KP_ACCEPTED_NONE);
    kp_queue_mark_sent (queue, "school-12ab00", &session, 1000);
    cr_assert_eq (s_first_seq (queue, "school-12ab00"), 8);
    cr_assert_eq (kp_queue_in_flight (queue, "school-12ab00"), 2);
    //  Only the session it went to, and only the owner, can take it
    int other;
    cr_assert_not (kp_queue_take_in_flight (queue, "school-12ab00", 3, &other, &item));
    cr_assert_not (kp_queue_take_in_flight (queue, "vt-twente", 3, &session, &item));
    cr_assert_not (kp_queue_take_in_flight (queue, "school-12ab00", 8, &session, &item));
    cr_assert (kp_queue_take_in_flight (queue, "school-12ab00", 3, &session, &item));
    cr_assert_eq (item.seq, 3);
    cr_assert_eq (item.session, &session);
    cr_assert_eq (kp_accepted_get (accepted, three)->state, KP_MESSAGE_SETTLED);
    cr_assert_not (kp_queue_take_in_flight (queue, "school-12ab00", 3, &session, &item));
    cr_assert (kp_queue_take_in_flight (queue, "school-12ab00", 7, &session, &item));
    cr_assert_eq (item.kind, KP_ITEM_STATUS);
    cr_assert_eq (kp_queue_in_flight (queue, "school-12ab00"), 0);
    cr_assert_eq (kp_queue_size (queue), 2);
    kp_queue_destroy (&queue);
    kp_queue_destroy (&queue);
    cr_assert_null (queue);
    kp_accepted_destroy (&accepted);
}

Test (kp_queue, requeued_items_return_in_order_before_newer_ones)
{
    kp_accepted_t *accepted = kp_accepted_new ();
    kp_queue_t *queue = kp_queue_new (accepted);
    for (uint64_t seq = 1; seq <= 6; seq++)
        if (seq == 2 || seq == 5)
            kp_queue_add_status (queue, "lt-enschede", seq, seq * 10);
        else
            s_queue_message (queue, accepted, "lt-enschede", seq, 0);
    int session_a, session_b;
    //  1 and 3 to session a, 2 to session b, 4 to a: out of order on purpose
    kp_queue_mark_sent (queue, "lt-enschede", &session_a, 10);
    kp_queue_mark_sent (queue, "lt-enschede", &session_b, 10);
    kp_queue_mark_sent (queue, "lt-enschede", &session_a, 10);
    kp_queue_mark_sent (queue, "lt-enschede", &session_a, 10);
    cr_assert_eq (s_first_seq (queue, "lt-enschede"), 5);
    cr_assert_eq (kp_queue_requeue_session (queue, "lt-enschede", &session_a), 3);
    cr_assert_eq (kp_queue_in_flight (queue, "lt-enschede"), 1);
    cr_assert_eq (kp_queue_ready (queue, "lt-enschede"), 5);
    cr_assert_eq (kp_queue_requeue_session (queue, "lt-enschede", &session_b), 1);
    uint64_t expected [] = { 1, 2, 3, 4, 5, 6 };
    for (size_t index = 0; index < 6; index++) {
        cr_assert_eq (s_first_seq (queue, "lt-enschede"), expected [index]);
        kp_queue_mark_sent (queue, "lt-enschede", &session_b, 20);
    }
    cr_assert_eq (s_first_seq (queue, "lt-enschede"), UINT64_MAX);
    cr_assert_eq (kp_accepted_get (accepted, 0)->attempt, 2);
    kp_queue_destroy (&queue);
    kp_accepted_destroy (&accepted);
}

static void
s_count_requeued (const kp_item_t *item, void *arg)
{
    (void) item;
    (*(int *) arg)++;
}

Test (kp_queue, ack_timeout_requeues_only_old_sends)
{
    kp_accepted_t *accepted = kp_accepted_new ();
    kp_queue_t *queue = kp_queue_new (accepted);
    s_queue_message (queue, accepted, "vt-twente", 1, 0);
    s_queue_message (queue, accepted, "vt-twente", 2, 0);
    kp_queue_mark_sent (queue, "vt-twente", NULL, 100);
    kp_queue_mark_sent (queue, "vt-twente", NULL, 900);
    int count = 0;
    cr_assert_eq (kp_queue_requeue_timed_out (queue, 1000, 500, s_count_requeued, &count), 1);
    cr_assert_eq (count, 1);
    cr_assert_eq (s_first_seq (queue, "vt-twente"), 1);
    cr_assert_eq (kp_accepted_get (accepted, 0)->state, KP_MESSAGE_READY);
    cr_assert_eq (kp_queue_in_flight (queue, "vt-twente"), 1);
    kp_queue_destroy (&queue);
    kp_accepted_destroy (&accepted);
}

Test (kp_queue, remove_takes_an_item_wherever_it_is)
{
    kp_accepted_t *accepted = kp_accepted_new ();
    kp_queue_t *queue = kp_queue_new (accepted);
    s_queue_message (queue, accepted, "a", 1, 0);
    s_queue_message (queue, accepted, "a", 2, 0);
    kp_queue_add_status (queue, "a", 3, 30);
    s_queue_message (queue, accepted, "a", 4, 0);
    kp_queue_add_status (queue, "a", 5, 50);
    s_queue_message (queue, accepted, "b", 6, 0);
    int session;
    kp_queue_mark_sent (queue, "a", &session, 1);
    kp_item_t item;
    //  Not the owner's, or not there
    cr_assert_not (kp_queue_remove (queue, "b", 2, &item));
    cr_assert_not (kp_queue_remove (queue, "a", 6, &item));
    cr_assert_not (kp_queue_remove (queue, "a", 99, &item));
    cr_assert_not (kp_queue_remove (queue, "nobody", 2, &item));
    //  In flight, ready in the middle, a status in the middle
    cr_assert (kp_queue_remove (queue, "a", 1, &item));
    cr_assert_eq (item.session, &session);
    cr_assert (kp_queue_remove (queue, "a", 4, &item));
    cr_assert_null (item.session);
    cr_assert_eq (item.pos, 40);
    cr_assert_not (kp_queue_remove (queue, "a", 4, &item));
    cr_assert (kp_queue_remove (queue, "a", 3, &item));
    cr_assert_eq (item.kind, KP_ITEM_STATUS);
    cr_assert_not (kp_queue_remove (queue, "a", 3, &item));
    cr_assert_eq (kp_queue_ready (queue, "a"), 2);
    cr_assert_eq (kp_queue_size (queue), 3);
    //  What is left comes out in order, the removed ones skipped
    cr_assert_eq (s_first_seq (queue, "a"), 2);
    kp_queue_mark_sent (queue, "a", &session, 1);
    cr_assert_eq (s_first_seq (queue, "a"), 5);
    kp_queue_mark_sent (queue, "a", &session, 1);
    cr_assert_eq (s_first_seq (queue, "a"), UINT64_MAX);
    kp_queue_destroy (&queue);
    kp_accepted_destroy (&accepted);
}

Test (kp_queue, expiry_pops_in_time_order_and_skips_removed_items)
{
    kp_accepted_t *accepted = kp_accepted_new ();
    kp_queue_t *queue = kp_queue_new (accepted);
    uint32_t one = s_queue_message (queue, accepted, "a", 1, 5000);
    uint32_t two = s_queue_message (queue, accepted, "a", 2, 1000);
    s_queue_message (queue, accepted, "b", 3, 3000);
    s_queue_message (queue, accepted, "b", 4, 0);     //  never
    kp_queue_add_status (queue, "b", 5, 50);
    kp_item_t item;
    cr_assert (kp_queue_remove (queue, "b", 3, &item));
    cr_assert_eq (kp_queue_next_expired (queue, 999), KP_ACCEPTED_NONE);
    //  In flight expires as well
    kp_queue_mark_sent (queue, "a", NULL, 1);
    cr_assert_eq (kp_queue_next_expired (queue, 6000), two);
    cr_assert (kp_queue_remove (queue, "a", 2, &item));
    cr_assert_eq (kp_queue_next_expired (queue, 6000), one);
    cr_assert (kp_queue_remove (queue, "a", 1, &item));
    cr_assert_eq (kp_queue_next_expired (queue, INT64_MAX), KP_ACCEPTED_NONE);
    cr_assert_eq (kp_queue_size (queue), 2);
    kp_queue_destroy (&queue);
    kp_accepted_destroy (&accepted);
}

Test (kp_queue, a_large_backlog_drains_in_order_and_gives_memory_back)
{
    kp_accepted_t *accepted = kp_accepted_new ();
    kp_queue_t *queue = kp_queue_new (accepted);
    //  Expiry in reverse order of acceptance, statuses between
    for (uint64_t seq = 0; seq < 200000; seq++)
        if (seq % 5 == 4)
            kp_queue_add_status (queue, "a", seq, seq * 10);
        else
            s_queue_message (queue, accepted, "a", seq, (int64_t) (1000000 - seq));
    cr_assert_eq (kp_queue_size (queue), 200000);
    //  Acked as they come, in batches of a credit
    int session;
    uint64_t expected = 0;
    while (kp_queue_ready (queue, "a") > 0) {
        for (int count = 0; count < 1000 && kp_queue_ready (queue, "a") > 0; count++) {
            cr_assert_eq (s_first_seq (queue, "a"), expected++);
            kp_queue_mark_sent (queue, "a", &session, 1);
        }
        kp_item_t item;
        for (uint64_t seq = expected - 1000; seq < expected; seq++)
            cr_assert (kp_queue_take_in_flight (queue, "a", seq, &session, &item));
    }
    cr_assert_eq (expected, 200000);
    cr_assert_eq (kp_queue_size (queue), 0);
    //  Every expiry entry is stale now
    cr_assert_eq (kp_queue_next_expired (queue, INT64_MAX), KP_ACCEPTED_NONE);
    kp_queue_destroy (&queue);
    kp_accepted_destroy (&accepted);
}

Test (kp_queue, expiry_of_many_comes_in_time_order)
{
    kp_accepted_t *accepted = kp_accepted_new ();
    kp_queue_t *queue = kp_queue_new (accepted);
    for (uint64_t seq = 0; seq < 5000; seq++)
        s_queue_message (queue, accepted, seq % 2? "a": "b", seq,
                         (int64_t) (10000 - (seq * 7919) % 5000));
    int64_t last = 0;
    uint32_t index;
    size_t count = 0;
    while ((index = kp_queue_next_expired (queue, 20000)) != KP_ACCEPTED_NONE) {
        uint64_t seq = kp_accepted_get (accepted, index)->seq;
        //  In order of the second they fall in
        int64_t expires = (int64_t) (10000 - (seq * 7919) % 5000) / 1000;
        cr_assert_geq (expires, last);
        last = expires;
        kp_item_t item;
        cr_assert (kp_queue_remove (queue, seq % 2? "a": "b", seq, &item));
        count++;
    }
    cr_assert_eq (count, 5000);
    cr_assert_eq (kp_queue_size (queue), 0);
    kp_queue_destroy (&queue);
    kp_accepted_destroy (&accepted);
}

Test (kp_queue, expiry_is_by_the_second_and_an_early_one_goes_back)
{
    kp_accepted_t *accepted = kp_accepted_new ();
    kp_queue_t *queue = kp_queue_new (accepted);
    uint32_t message = s_queue_message (queue, accepted, "a", 1, 1500);
    cr_assert_eq (kp_queue_next_expired (queue, 999), KP_ACCEPTED_NONE);
    //  In its second, not yet at its millisecond: the caller puts it back
    cr_assert_eq (kp_queue_next_expired (queue, 1200), message);
    cr_assert_eq (kp_queue_next_expired (queue, 1200), KP_ACCEPTED_NONE);
    kp_queue_expire_later (queue, message, 1500);
    cr_assert_eq (kp_queue_next_expired (queue, 1600), message);
    //  A far future stays put (in 2100)
    s_queue_message (queue, accepted, "a", 2, INT64_MAX);
    cr_assert_eq (kp_queue_next_expired (queue, 4102444800000), KP_ACCEPTED_NONE);
    kp_queue_destroy (&queue);
    kp_accepted_destroy (&accepted);
}
