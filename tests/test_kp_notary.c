/*  =========================================================================
    test_kp_notary - the broker's tree and checkpoints, and their recovery

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
*/
#include <criterion/criterion.h>
#include <sodium.h>
#include "kp_testutil.h"
#include "kp_notary.h"
#include "kp_checkpoint.h"

static char *s_dir;                 //  temp dir: region/ and data/
static char *s_region;
static char *s_data;

static void
s_setup (void)
{
    cr_assert_geq (sodium_init (), 0);
    s_dir = kp_test_tempdir ();
    s_region = zsys_sprintf ("%s/region", s_dir);
    s_data = zsys_sprintf ("%s/data", s_dir);
    cr_assert_eq (kp_region_init (s_region, "notary-test"), 0);
    cr_assert_eq (zsys_dir_create ("%s", s_data), 0);
}

static void
s_teardown (void)
{
    kp_test_rmtree (s_dir);
    zstr_free (&s_data);
    zstr_free (&s_region);
    zstr_free (&s_dir);
}

TestSuite (kp_notary, .init = s_setup, .fini = s_teardown, .timeout = 30.);

//  Append records "record-N" for N in [from, to)
static void
s_append (kp_notary_t *notary, uint64_t from, uint64_t to)
{
    for (uint64_t index = from; index < to; index++) {
        char record [32];
        snprintf (record, sizeof record, "record-%" PRIu64, index);
        cr_assert_eq (kp_notary_append (notary, (const uint8_t *) record, strlen (record)), 0);
    }
}

//  Verify the latest checkpoint with the region's key
static kp_checkpoint_t
s_latest (kp_notary_t *notary)
{
    uint8_t public_key [KP_CHECKPOINT_PUBLIC];
    cr_assert_eq (kp_checkpoint_load_public (s_region, public_key), 0);
    const char *note = kp_notary_latest (notary);
    cr_assert_not_null (note);
    kp_checkpoint_t checkpoint;
    const char *error = NULL;
    cr_assert_eq (kp_checkpoint_verify (note, strlen (note), "twente", public_key,
                                        &checkpoint, &error), 0, "%s", error);
    return checkpoint;
}

Test (kp_notary, checkpoint_signs_the_root_of_the_tree_once_per_size)
{
    kp_notary_t *notary = kp_notary_open (s_data, s_region, "twente", 0);
    cr_assert_not_null (notary);
    cr_assert_null (kp_notary_latest (notary));
    s_append (notary, 0, 10);
    cr_assert_eq (kp_notary_checkpoint (notary, 10), 0);
    kp_checkpoint_t checkpoint = s_latest (notary);
    cr_assert_eq (checkpoint.size, 10);
    cr_assert_str_eq (checkpoint.origin, "twente");
    uint8_t root [KP_MERKLE_HASH];
    cr_assert_eq (kp_merkle_root (kp_notary_tree (notary), 10, root), 0);
    cr_assert_arr_eq (root, checkpoint.root, KP_MERKLE_HASH);
    //  Same size again: nothing new is signed
    const char *note = kp_notary_latest (notary);
    cr_assert_eq (kp_notary_checkpoint (notary, 10), 0);
    cr_assert_eq (kp_notary_latest (notary), note);
    cr_assert_eq (kp_notary_checkpoint (notary, 7), 0);
    cr_assert_eq (kp_notary_latest_size (notary), 10);
    kp_notary_destroy (&notary);
    cr_assert_null (notary);
}

Test (kp_notary, reopen_trusts_the_tree_only_up_to_the_last_checkpoint)
{
    kp_notary_t *notary = kp_notary_open (s_data, s_region, "twente", 0);
    s_append (notary, 0, 10);
    cr_assert_eq (kp_notary_checkpoint (notary, 10), 0);
    s_append (notary, 10, 15);          //  not checkpointed: a crash now
    kp_notary_destroy (&notary);

    notary = kp_notary_open (s_data, s_region, "twente", 15);
    cr_assert_not_null (notary);
    cr_assert_eq (kp_notary_size (notary), 10, "the tree is cut back to the checkpoint");
    cr_assert_eq (kp_notary_latest_size (notary), 10);
    s_append (notary, 10, 15);
    cr_assert_eq (kp_notary_checkpoint (notary, 15), 0);
    kp_checkpoint_t checkpoint = s_latest (notary);
    cr_assert_eq (checkpoint.size, 15);
    kp_notary_destroy (&notary);

    //  The same tree from scratch in another directory has the same root
    char *other = zsys_sprintf ("%s/other", s_dir);
    cr_assert_eq (zsys_dir_create ("%s", other), 0);
    notary = kp_notary_open (other, s_region, "twente", 0);
    s_append (notary, 0, 15);
    uint8_t root [KP_MERKLE_HASH];
    cr_assert_eq (kp_merkle_root (kp_notary_tree (notary), 15, root), 0);
    cr_assert_arr_eq (root, checkpoint.root, KP_MERKLE_HASH);
    kp_notary_destroy (&notary);
    free (other);
}

Test (kp_notary, a_damaged_tree_is_rebuilt_from_the_log)
{
    kp_notary_t *notary = kp_notary_open (s_data, s_region, "twente", 0);
    s_append (notary, 0, 7);
    cr_assert_eq (kp_notary_checkpoint (notary, 7), 0);
    kp_notary_destroy (&notary);
    //  Flip a byte of the last leaf hash, which the root of 7 is made of
    //  (open checks the hashes on the root's path, not every node)
    char *path = zsys_sprintf ("%s/tree/level-00", s_data);
    FILE *file = fopen (path, "r+b");
    cr_assert_not_null (file, "%s", path);
    fseek (file, 6 * KP_MERKLE_HASH, SEEK_SET);
    int byte = fgetc (file);
    fseek (file, 6 * KP_MERKLE_HASH, SEEK_SET);
    fputc (byte ^ 0x40, file);
    fclose (file);
    free (path);
    notary = kp_notary_open (s_data, s_region, "twente", 7);
    cr_assert_not_null (notary);
    cr_assert_eq (kp_notary_size (notary), 0, "a tree that does not match is dropped");
    kp_notary_destroy (&notary);
}

Test (kp_notary, refuses_a_log_shorter_than_its_checkpoint)
{
    kp_notary_t *notary = kp_notary_open (s_data, s_region, "twente", 0);
    s_append (notary, 0, 8);
    cr_assert_eq (kp_notary_checkpoint (notary, 8), 0);
    kp_notary_destroy (&notary);
    cr_assert_null (kp_notary_open (s_data, s_region, "twente", 5));
    cr_assert_not_null (notary = kp_notary_open (s_data, s_region, "twente", 8));
    kp_notary_destroy (&notary);
}

Test (kp_notary, refuses_a_checkpoint_that_the_region_key_does_not_verify)
{
    kp_notary_t *notary = kp_notary_open (s_data, s_region, "twente", 0);
    s_append (notary, 0, 4);
    cr_assert_eq (kp_notary_checkpoint (notary, 4), 0);
    kp_notary_destroy (&notary);
    //  Another name, or another region's key: not the same signer
    cr_assert_null (kp_notary_open (s_data, s_region, "overijssel", 4));
    char *other = zsys_sprintf ("%s/other-region", s_dir);
    cr_assert_eq (kp_region_init (other, "other"), 0);
    cr_assert_null (kp_notary_open (s_data, other, "twente", 4));
    free (other);
}

Test (kp_notary, refuses_a_name_a_checkpoint_cannot_carry)
{
    cr_assert_null (kp_notary_open (s_data, s_region, "has space", 0));
    cr_assert_null (kp_notary_open (s_data, s_region, "a+b", 0));
}
