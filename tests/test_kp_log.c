/*  =========================================================================
    test_kp_log - the segmented log: framing, rollover, recovery, errors

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
*/
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include "kp_log.h"
#include "kp_testutil.h"

#define SEGMENT_LARGE   (64u * 1024 * 1024)
#define HEADER_SIZE     16          //  segment header, docs/LOG_FORMAT.md
#define FRAME_SIZE      8           //  record frame header

TestSuite (kp_log, .timeout = 60.);

//  --------------------------------------------------------------------------
//  Helpers

//  The payload of record seq: its size varies with seq, its bytes too
static size_t
s_payload_size (uint64_t seq)
{
    return 20 + (size_t) (seq % 50);
}

static void
s_payload_fill (uint64_t seq, uint8_t *payload, size_t size)
{
    for (size_t index = 0; index < size; index++)
        payload [index] = (uint8_t) (seq * 31 + index * 7 + (seq >> 8));
}

static bool
s_payload_is (uint64_t seq, const uint8_t *payload, size_t size)
{
    if (size != s_payload_size (seq))
        return false;
    uint8_t expected [128];
    s_payload_fill (seq, expected, size);
    return memcmp (payload, expected, size) == 0;
}

//  Append count records with the standard payloads; positions into pos
//  (may be NULL)
static void
s_append_records (kp_log_t *log, uint64_t count, uint64_t *positions)
{
    for (uint64_t index = 0; index < count; index++) {
        uint64_t seq = kp_log_size (log);
        uint8_t payload [128];
        size_t size = s_payload_size (seq);
        s_payload_fill (seq, payload, size);
        uint64_t got_seq, pos;
        cr_assert_eq (kp_log_append (log, payload, size, &got_seq, &pos), 0);
        cr_assert_eq (got_seq, seq);
        if (positions)
            positions [index] = pos;
    }
}

static kp_log_t *
s_open (const char *dir, size_t segment_size, bool load_truncated,
        kp_log_status_t expected_status)
{
    kp_log_status_t status = KP_LOG_IOERR;
    kp_log_t *log = kp_log_open (dir, segment_size, load_truncated, &status);
    cr_assert_eq (status, expected_status, "open status %d, expected %d", status,
                  expected_status);
    if (status == KP_LOG_OK || status == KP_LOG_TRUNCATED)
        cr_assert_not_null (log);
    else
        cr_assert_null (log);
    return log;
}

//  Make a log of count standard records in a new temp dir, synced and closed
static char *
s_log_make (uint64_t count, size_t segment_size)
{
    char *dir = kp_test_tempdir ();
    kp_log_t *log = s_open (dir, segment_size, true, KP_LOG_OK);
    s_append_records (log, count, NULL);
    cr_assert_eq (kp_log_sync (log), 0);
    kp_log_destroy (&log);
    return dir;
}

//  Path of the segment starting at seq; caller frees
static char *
s_segment_path (const char *dir, uint64_t seq)
{
    return zsys_sprintf ("%s/%020llu.kplog", dir, (unsigned long long) seq);
}

static uint64_t
s_file_size (const char *path)
{
    struct stat info;
    cr_assert_eq (stat (path, &info), 0, "stat %s: %s", path, strerror (errno));
    return (uint64_t) info.st_size;
}

//  The logical end of a segment file: the end of its last record, where
//  the zero space written ahead (if any) starts (docs/LOG_FORMAT.md)
static uint64_t
s_log_end (const char *path)
{
    uint64_t size = s_file_size (path);
    int fd = open (path, O_RDONLY);
    cr_assert (fd >= 0, "open %s: %s", path, strerror (errno));
    uint64_t offset = HEADER_SIZE;
    while (offset + FRAME_SIZE <= size) {
        uint8_t frame [4];
        cr_assert_eq (pread (fd, frame, 4, (off_t) offset), 4);
        uint32_t length = (uint32_t) frame [0] | (uint32_t) frame [1] << 8
                        | (uint32_t) frame [2] << 16 | (uint32_t) frame [3] << 24;
        if (length == 0 || offset + FRAME_SIZE + length > size)
            break;
        offset += FRAME_SIZE + length;
    }
    close (fd);
    return offset < size? offset: size;
}

//  Are the bytes of the file from offset to its end all zero?
static bool
s_file_zero_from (const char *path, uint64_t offset)
{
    uint64_t size = s_file_size (path);
    int fd = open (path, O_RDONLY);
    cr_assert (fd >= 0);
    bool zero = true;
    uint8_t bytes [4096];
    while (zero && offset < size) {
        size_t want = sizeof bytes;
        if (size - offset < want)
            want = (size_t) (size - offset);
        cr_assert_eq (pread (fd, bytes, want, (off_t) offset), (ssize_t) want);
        for (size_t index = 0; index < want; index++)
            zero = zero && bytes [index] == 0;
        offset += want;
    }
    close (fd);
    return zero;
}

//  Offset in segment 0 of record index when every record is standard
static uint64_t
s_record_offset (uint64_t index)
{
    uint64_t offset = HEADER_SIZE;
    for (uint64_t seq = 0; seq < index; seq++)
        offset += FRAME_SIZE + s_payload_size (seq);
    return offset;
}

//  First seqs of the segments of a log of count standard records, by the
//  rollover rule of docs/LOG_FORMAT.md; returns how many
static size_t
s_segment_starts (uint64_t count, size_t segment_size, uint64_t *starts, size_t limit)
{
    size_t segments = 1;
    uint64_t size = HEADER_SIZE;
    starts [0] = 0;
    for (uint64_t seq = 0; seq < count; seq++) {
        uint64_t frame = FRAME_SIZE + s_payload_size (seq);
        if (size > HEADER_SIZE && size + frame > segment_size) {
            cr_assert_lt (segments, limit);
            starts [segments++] = seq;
            size = HEADER_SIZE;
        }
        size += frame;
    }
    return segments;
}

static void
s_file_write_at (const char *path, uint64_t offset, const void *bytes, size_t size)
{
    int fd = open (path, O_WRONLY | O_CREAT, 0600);
    cr_assert (fd >= 0, "open %s: %s", path, strerror (errno));
    cr_assert_eq (pwrite (fd, bytes, size, (off_t) offset), (ssize_t) size);
    close (fd);
}

static void
s_file_flip (const char *path, uint64_t offset)
{
    int fd = open (path, O_RDWR);
    cr_assert (fd >= 0);
    uint8_t byte;
    cr_assert_eq (pread (fd, &byte, 1, (off_t) offset), 1);
    byte ^= 0x40;
    cr_assert_eq (pwrite (fd, &byte, 1, (off_t) offset), 1);
    close (fd);
}

static void
s_put_u32 (uint8_t *out, uint32_t value)
{
    for (int index = 0; index < 4; index++)
        out [index] = (uint8_t) (value >> (8 * index));
}

static void
s_dir_remove (char **dir_p)
{
    kp_test_rmtree (*dir_p);
    free (*dir_p);
    *dir_p = NULL;
}

//  What a replay saw
typedef struct {
    uint64_t count;                 //  records visited
    uint64_t stop_after;            //  return -1 after this many; 0 = never
    uint64_t *positions;            //  pos of each, if not NULL
    bool all_good;                  //  every seq and payload as expected
} s_replay_t;

static int
s_replay_visit (const uint8_t *data, size_t size, uint64_t seq, uint64_t pos, void *arg)
{
    s_replay_t *replay = (s_replay_t *) arg;
    if (seq != replay->count || !s_payload_is (seq, data, size))
        replay->all_good = false;
    if (replay->positions && replay->positions [seq] != pos)
        replay->all_good = false;
    replay->count++;
    if (replay->stop_after && replay->count == replay->stop_after)
        return -1;
    return 0;
}

//  Replay the whole log and check every record is the standard one
static uint64_t
s_replay_check (kp_log_t *log)
{
    s_replay_t replay = { 0, 0, NULL, true };
    cr_assert_eq (kp_log_replay (log, s_replay_visit, &replay), 0);
    cr_assert (replay.all_good);
    cr_assert_eq (replay.count, kp_log_size (log));
    return replay.count;
}

//  Bitwise CRC32C, the definition, to check the table-driven one against
static uint32_t
s_crc32c_bitwise (const uint8_t *data, size_t size)
{
    uint32_t crc = 0xFFFFFFFF;
    for (size_t index = 0; index < size; index++) {
        crc ^= data [index];
        for (int bit = 0; bit < 8; bit++)
            crc = (crc >> 1) ^ (0x82F63B78 & (0u - (crc & 1)));
    }
    return ~crc;
}

//  --------------------------------------------------------------------------
//  CRC32C

//  The known vectors, through kp_crc32c (the CPU's crc32 instruction where
//  it has SSE4.2) and through the software path
typedef uint32_t (s_crc_fn) (uint32_t crc, const void *data, size_t size);

static void
s_crc_vectors (s_crc_fn *crc32c)
{
    cr_assert_eq (crc32c (0, "123456789", 9), 0xE3069283);
    uint8_t block [32];
    memset (block, 0, sizeof block);
    cr_assert_eq (crc32c (0, block, sizeof block), 0x8A9136AA);
    memset (block, 0xFF, sizeof block);
    cr_assert_eq (crc32c (0, block, sizeof block), 0x62A8AB43);
    cr_assert_eq (crc32c (0, NULL, 0), 0);
}

Test (kp_log, crc32c_software_and_hardware_paths_agree)
{
    cr_log_info ("kp_crc32c uses the crc32 instruction: %s",
                 kp_crc32c_accelerated ()? "yes": "no (both calls are software)");
    s_crc_vectors (kp_crc32c);
    s_crc_vectors (kp_crc32c_software);
    //  A large buffer at every alignment, in one call and continued
    size_t size = 70000;
    uint8_t *data = (uint8_t *) malloc (size);
    cr_assert_not_null (data);
    uint32_t state = 12345;
    for (size_t index = 0; index < size; index++) {
        state = state * 1103515245 + 12345;
        data [index] = (uint8_t) (state >> 16);
    }
    for (size_t start = 0; start < 16; start++) {
        uint32_t hardware = kp_crc32c (0, data + start, size - start);
        uint32_t software = kp_crc32c_software (0, data + start, size - start);
        cr_assert_eq (hardware, software, "start %zu", start);
        uint32_t split = kp_crc32c (kp_crc32c_software (0, data + start, 1001),
                                    data + start + 1001, size - start - 1001);
        cr_assert_eq (split, software, "start %zu, continued", start);
    }
    free (data);
}

Test (kp_log, crc32c_matches_known_vectors)
{
    cr_assert_eq (kp_crc32c (0, "123456789", 9), 0xE3069283);
    uint8_t block [32];
    memset (block, 0, sizeof block);
    cr_assert_eq (kp_crc32c (0, block, sizeof block), 0x8A9136AA);
    //  RFC 3720 B.4
    memset (block, 0xFF, sizeof block);
    cr_assert_eq (kp_crc32c (0, block, sizeof block), 0x62A8AB43);
    for (int index = 0; index < 32; index++)
        block [index] = (uint8_t) index;
    cr_assert_eq (kp_crc32c (0, block, sizeof block), 0x46DD794E);
    for (int index = 0; index < 32; index++)
        block [index] = (uint8_t) (31 - index);
    cr_assert_eq (kp_crc32c (0, block, sizeof block), 0x113FDB5C);
    cr_assert_eq (kp_crc32c (0, NULL, 0), 0);
}

Test (kp_log, crc32c_agrees_with_bitwise_at_every_length_and_alignment)
{
    uint8_t data [300];
    for (size_t index = 0; index < sizeof data; index++)
        data [index] = (uint8_t) (index * 167 + 13);
    for (size_t start = 0; start < 8; start++)
        for (size_t size = 0; start + size <= sizeof data; size++) {
            uint32_t expected = s_crc32c_bitwise (data + start, size);
            cr_assert_eq (kp_crc32c (0, data + start, size), expected,
                          "start %zu size %zu", start, size);
            cr_assert_eq (kp_crc32c_software (0, data + start, size), expected,
                          "software, start %zu size %zu", start, size);
        }
}

Test (kp_log, crc32c_continues_across_calls)
{
    const char *text = "the quick brown fox jumps over the lazy dog";
    size_t size = strlen (text);
    uint32_t whole = kp_crc32c (0, text, size);
    for (size_t split = 0; split <= size; split++)
        cr_assert_eq (kp_crc32c (kp_crc32c (0, text, split), text + split, size - split),
                      whole);
    cr_assert_eq (kp_crc32c_software (0, text, size), whole);
    for (size_t split = 0; split <= size; split++)
        cr_assert_eq (kp_crc32c_software (kp_crc32c_software (0, text, split),
                                          text + split, size - split), whole);
}

//  --------------------------------------------------------------------------
//  Appending, reading, replaying

Test (kp_log, append_sync_read_round_trip)
{
    char *dir = kp_test_tempdir ();
    kp_log_t *log = s_open (dir, SEGMENT_LARGE, true, KP_LOG_OK);
    cr_assert_eq (kp_log_size (log), 0);
    cr_assert_eq (kp_log_synced (log), 0);

    uint64_t positions [10];
    s_append_records (log, 10, positions);
    cr_assert_eq (kp_log_size (log), 10);
    cr_assert_eq (kp_log_synced (log), 0);
    //  Readable before the sync too
    size_t size;
    const uint8_t *data = kp_log_read (log, positions [3], &size);
    cr_assert_not_null (data);
    cr_assert (s_payload_is (3, data, size));

    cr_assert_eq (kp_log_sync (log), 0);
    cr_assert_eq (kp_log_synced (log), 10);
    for (uint64_t seq = 0; seq < 10; seq++) {
        data = kp_log_read (log, positions [seq], &size);
        cr_assert_not_null (data);
        cr_assert (s_payload_is (seq, data, size), "record %llu",
                   (unsigned long long) seq);
    }
    char *path = s_segment_path (dir, 0);
    cr_assert_eq (s_log_end (path), s_record_offset (10));
    cr_assert_gt (s_file_size (path), s_record_offset (10), "zero space written ahead");
    cr_assert (s_file_zero_from (path, s_record_offset (10)));
    free (path);
    kp_log_destroy (&log);
    kp_log_destroy (&log);
    cr_assert_null (log);
    s_dir_remove (&dir);
}

Test (kp_log, replay_gives_records_in_order_with_seq_and_pos)
{
    char *dir = kp_test_tempdir ();
    kp_log_t *log = s_open (dir, 4096, true, KP_LOG_OK);
    uint64_t positions [200];
    s_append_records (log, 200, positions);
    s_replay_t replay = { 0, 0, positions, true };
    cr_assert_eq (kp_log_replay (log, s_replay_visit, &replay), 0);
    cr_assert (replay.all_good);
    cr_assert_eq (replay.count, 200);
    kp_log_destroy (&log);
    s_dir_remove (&dir);
}

Test (kp_log, replay_stops_when_the_visitor_says_so)
{
    char *dir = s_log_make (10, SEGMENT_LARGE);
    kp_log_t *log = s_open (dir, SEGMENT_LARGE, true, KP_LOG_OK);
    s_replay_t replay = { 0, 3, NULL, true };
    cr_assert_eq (kp_log_replay (log, s_replay_visit, &replay), -1);
    cr_assert_eq (replay.count, 3);
    kp_log_destroy (&log);
    s_dir_remove (&dir);
}

Test (kp_log, reopen_continues_the_sequence_and_keeps_positions)
{
    char *dir = kp_test_tempdir ();
    kp_log_t *log = s_open (dir, 1024, true, KP_LOG_OK);
    uint64_t positions [60];
    s_append_records (log, 40, positions);
    cr_assert_eq (kp_log_sync (log), 0);
    kp_log_destroy (&log);

    log = s_open (dir, 1024, true, KP_LOG_OK);
    cr_assert_eq (kp_log_size (log), 40);
    cr_assert_eq (kp_log_synced (log), 40);
    s_append_records (log, 20, positions + 40);
    cr_assert_eq (kp_log_sync (log), 0);
    kp_log_destroy (&log);

    log = s_open (dir, 1024, true, KP_LOG_OK);
    cr_assert_eq (kp_log_size (log), 60);
    for (uint64_t seq = 0; seq < 60; seq++) {
        size_t size;
        const uint8_t *data = kp_log_read (log, positions [seq], &size);
        cr_assert_not_null (data, "record %llu", (unsigned long long) seq);
        cr_assert (s_payload_is (seq, data, size));
    }
    s_replay_t replay = { 0, 0, positions, true };
    cr_assert_eq (kp_log_replay (log, s_replay_visit, &replay), 0);
    cr_assert (replay.all_good);
    cr_assert_eq (replay.count, 60);
    kp_log_destroy (&log);
    s_dir_remove (&dir);
}

Test (kp_log, open_creates_a_missing_directory_and_ignores_other_files)
{
    char *base = kp_test_tempdir ();
    char *dir = zsys_sprintf ("%s/data/log", base);
    kp_log_t *log = s_open (dir, SEGMENT_LARGE, true, KP_LOG_OK);
    s_append_records (log, 3, NULL);
    cr_assert_eq (kp_log_sync (log), 0);
    kp_log_destroy (&log);

    char *readme = zsys_sprintf ("%s/README", dir);
    char *stray = zsys_sprintf ("%s/backup.kplog", dir);
    s_file_write_at (readme, 0, "notes", 5);
    s_file_write_at (stray, 0, "junk", 4);
    log = s_open (dir, SEGMENT_LARGE, true, KP_LOG_OK);
    cr_assert_eq (s_replay_check (log), 3);
    kp_log_destroy (&log);
    free (readme);
    free (stray);
    free (dir);
    s_dir_remove (&base);
}

Test (kp_log, sync_counts_only_real_fdatasyncs)
{
    char *dir = kp_test_tempdir ();
    kp_log_t *log = s_open (dir, SEGMENT_LARGE, true, KP_LOG_OK);
    cr_assert_eq (kp_log_sync_count (log), 0);
    cr_assert_eq (kp_log_sync (log), 0);
    cr_assert_eq (kp_log_sync_count (log), 0, "nothing to sync: no fdatasync");
    s_append_records (log, 5, NULL);
    cr_assert_eq (kp_log_sync (log), 0);
    cr_assert_eq (kp_log_sync_count (log), 1);
    cr_assert_eq (kp_log_sync (log), 0);
    cr_assert_eq (kp_log_sync_count (log), 1);
    s_append_records (log, 5, NULL);
    cr_assert_eq (kp_log_synced (log), 5);
    cr_assert_eq (kp_log_sync (log), 0);
    cr_assert_eq (kp_log_sync_count (log), 2);
    cr_assert_eq (kp_log_synced (log), 10);
    kp_log_destroy (&log);
    s_dir_remove (&dir);
}

Test (kp_log, bad_positions_read_as_null)
{
    char *dir = kp_test_tempdir ();
    kp_log_t *log = s_open (dir, SEGMENT_LARGE, true, KP_LOG_OK);
    uint64_t positions [3];
    s_append_records (log, 3, positions);
    size_t size = 0;
    cr_assert_null (kp_log_read (log, 0, &size), "inside the segment header");
    cr_assert_null (kp_log_read (log, positions [2] + FRAME_SIZE + s_payload_size (2),
                                 &size), "at the end");
    cr_assert_null (kp_log_read (log, positions [1] + 3, &size), "inside a record");
    cr_assert_null (kp_log_read (log, positions [0] | (UINT64_C (7) << 40), &size),
                    "no such segment");
    cr_assert_null (kp_log_read (log, UINT64_MAX, &size));
    cr_assert_not_null (kp_log_read (log, positions [1], &size));
    kp_log_destroy (&log);
    s_dir_remove (&dir);
}

Test (kp_log, large_records_round_trip_through_open_replay_and_read)
{
    char *dir = kp_test_tempdir ();
    kp_log_t *log = s_open (dir, SEGMENT_LARGE, true, KP_LOG_OK);
    size_t large_size = 3 * 1024 * 1024 + 17;
    uint8_t *large = (uint8_t *) malloc (large_size);
    cr_assert_not_null (large);
    for (size_t index = 0; index < large_size; index++)
        large [index] = (uint8_t) (index * 13 + (index >> 12));
    uint64_t seq, pos [3];
    s_append_records (log, 1, pos);
    cr_assert_eq (kp_log_append (log, large, large_size, &seq, &pos [1]), 0);
    cr_assert_eq (kp_log_append (log, large, large_size, &seq, &pos [2]), 0);
    cr_assert_eq (seq, 2);
    cr_assert_eq (kp_log_sync (log), 0);
    kp_log_destroy (&log);

    log = s_open (dir, SEGMENT_LARGE, false, KP_LOG_OK);
    cr_assert_eq (kp_log_size (log), 3);
    size_t size;
    const uint8_t *data = kp_log_read (log, pos [2], &size);
    cr_assert_not_null (data);
    cr_assert_eq (size, large_size);
    cr_assert_eq (memcmp (data, large, large_size), 0);
    data = kp_log_read (log, pos [0], &size);
    cr_assert (s_payload_is (0, data, size));
    kp_log_destroy (&log);
    free (large);
    s_dir_remove (&dir);
}

Test (kp_log, many_records_survive_reopen)
{
    //  Crosses many read-ahead chunks and segments
    char *dir = s_log_make (60000, 256 * 1024);
    kp_log_t *log = s_open (dir, 256 * 1024, false, KP_LOG_OK);
    cr_assert_eq (kp_log_size (log), 60000);
    cr_assert_eq (s_replay_check (log), 60000);
    kp_log_destroy (&log);
    s_dir_remove (&dir);
}

//  --------------------------------------------------------------------------
//  Segments

Test (kp_log, segments_roll_over_and_reads_cross_them)
{
    char *dir = kp_test_tempdir ();
    kp_log_t *log = s_open (dir, 150, true, KP_LOG_OK);
    uint64_t positions [20];
    s_append_records (log, 20, positions);
    cr_assert_eq (kp_log_sync (log), 0);
    uint64_t starts [20];
    size_t segments = s_segment_starts (20, 150, starts, 20);
    cr_assert_geq (segments, 5);
    cr_assert_eq (kp_log_sync_count (log), segments,
                  "each rollover syncs the full segment, then one sync");
    for (size_t index = 0; index < segments; index++) {
        char *path = s_segment_path (dir, starts [index]);
        cr_assert_eq (access (path, F_OK), 0, "%s missing", path);
        uint64_t end = index + 1 < segments? starts [index + 1]: 20;
        //  Positions in one segment share their high bits
        cr_assert_eq (positions [starts [index]] >> 40, positions [end - 1] >> 40);
        free (path);
    }
    char *path = s_segment_path (dir, starts [1] + 1);
    cr_assert_neq (access (path, F_OK), 0);
    free (path);
    for (uint64_t seq = 0; seq < 20; seq++) {
        size_t size;
        const uint8_t *data = kp_log_read (log, positions [seq], &size);
        cr_assert_not_null (data);
        cr_assert (s_payload_is (seq, data, size));
    }
    kp_log_destroy (&log);

    log = s_open (dir, 150, true, KP_LOG_OK);
    s_replay_t replay = { 0, 0, positions, true };
    cr_assert_eq (kp_log_replay (log, s_replay_visit, &replay), 0);
    cr_assert (replay.all_good);
    cr_assert_eq (replay.count, 20);
    kp_log_destroy (&log);
    s_dir_remove (&dir);
}

Test (kp_log, seek_and_next_pos_find_every_record_across_segments)
{
    char *dir = kp_test_tempdir ();
    kp_log_t *log = s_open (dir, 150, true, KP_LOG_OK);
    uint64_t positions [20];
    s_append_records (log, 20, positions);
    cr_assert_eq (kp_log_sync (log), 0);
    kp_log_destroy (&log);
    log = s_open (dir, 150, true, KP_LOG_OK);
    uint64_t pos = positions [0];
    for (uint64_t seq = 0; seq < 20; seq++) {
        uint64_t found;
        cr_assert_eq (kp_log_seek (log, seq, &found), 0);
        cr_assert_eq (found, positions [seq], "seek of %" PRIu64, seq);
        cr_assert_eq (pos, positions [seq], "next_pos chain at %" PRIu64, seq);
        size_t size;
        const uint8_t *data = kp_log_read (log, pos, &size);
        cr_assert_not_null (data);
        cr_assert (s_payload_is (seq, data, size));
        pos = kp_log_next_pos (log, pos, size);
    }
    kp_log_destroy (&log);
    s_dir_remove (&dir);
}

Test (kp_log, erased_record_reads_as_zeros_and_the_log_stays_valid)
{
    char *dir = kp_test_tempdir ();
    kp_log_t *log = s_open (dir, 1 << 20, false, KP_LOG_OK);
    uint64_t positions [3];
    s_append_records (log, 3, positions);
    cr_assert_eq (kp_log_sync (log), 0);
    size_t size;
    const uint8_t *data = kp_log_read (log, positions [1], &size);
    size_t original = size;
    cr_assert_eq (kp_log_erase (log, positions [1]), 0);
    data = kp_log_read (log, positions [1], &size);
    cr_assert_not_null (data);
    cr_assert_eq (size, original);
    for (size_t index = 0; index < size; index++)
        cr_assert_eq (data [index], 0);
    cr_assert_eq (kp_log_erase (log, positions [1] + 1), -1, "not a record position");
    kp_log_destroy (&log);
    //  Reopens cleanly (strict: no torn tail allowed), the others intact
    log = s_open (dir, 1 << 20, false, KP_LOG_OK);
    cr_assert_eq (kp_log_size (log), 3);
    for (uint64_t seq = 0; seq < 3; seq += 2) {
        data = kp_log_read (log, positions [seq], &size);
        cr_assert (data && s_payload_is (seq, data, size));
    }
    kp_log_destroy (&log);
    s_dir_remove (&dir);
}

Test (kp_log, a_record_larger_than_a_segment_gets_its_own)
{
    char *dir = kp_test_tempdir ();
    kp_log_t *log = s_open (dir, 100, true, KP_LOG_OK);
    uint8_t big [500];
    memset (big, 0x5A, sizeof big);
    uint64_t seq, pos;
    cr_assert_eq (kp_log_append (log, big, sizeof big, &seq, &pos), 0);
    cr_assert_eq (seq, 0);
    cr_assert_eq (kp_log_append (log, big, sizeof big, &seq, &pos), 0);
    cr_assert_eq (seq, 1);
    cr_assert_eq (kp_log_sync (log), 0);
    char *path = s_segment_path (dir, 1);
    cr_assert_eq (s_file_size (path), HEADER_SIZE + FRAME_SIZE + sizeof big);
    free (path);
    kp_log_destroy (&log);
    log = s_open (dir, 100, true, KP_LOG_OK);
    cr_assert_eq (kp_log_size (log), 2);
    kp_log_destroy (&log);
    s_dir_remove (&dir);
}

//  --------------------------------------------------------------------------
//  Torn tails: cut with load_truncated, refused without

//  The log is written with zero space after its records (docs/LOG_FORMAT.md),
//  so a torn write leaves its bytes at the end of the records, with zeros
//  after them; the cases cut at the end of the file are the ones a log
//  without zero space (a crash during the write that extends the file)
//  shows.
typedef enum {
    DAMAGE_PARTIAL_HEADER,          //  a few bytes of a frame header, then zeros
    DAMAGE_PARTIAL_PAYLOAD,         //  the last record cut short by the file's end
    DAMAGE_PAYLOAD_ZEROED,          //  the last record's end zero, then zeros
    DAMAGE_PAYLOAD_PAST_EOF,        //  a new frame whose payload the file lacks
    DAMAGE_PAYLOAD_MISSING,         //  a new frame, part of its payload, then zeros
    DAMAGE_LAST_CHECKSUM            //  a flipped byte in the last record
} s_damage_t;

typedef struct {
    s_damage_t damage;              //  what to do to the tail
    uint64_t survivors;             //  records left of 5
} s_torn_case_t;

static s_torn_case_t s_torn_cases [] = {
    { DAMAGE_PARTIAL_HEADER, 5 },
    { DAMAGE_PARTIAL_PAYLOAD, 4 },
    { DAMAGE_PAYLOAD_ZEROED, 4 },
    { DAMAGE_PAYLOAD_PAST_EOF, 5 },
    { DAMAGE_PAYLOAD_MISSING, 5 },
    { DAMAGE_LAST_CHECKSUM, 4 }
};

//  Write a log of 5 records, tear its tail; returns the dir
static char *
s_torn_log_make (s_damage_t damage)
{
    char *dir = s_log_make (5, SEGMENT_LARGE);
    char *path = s_segment_path (dir, 0);
    uint64_t end = s_record_offset (5);
    cr_assert_eq (s_log_end (path), end);
    cr_assert_gt (s_file_size (path), end + 2000, "zero space after the records");
    uint8_t bytes [4096];
    memset (bytes, 0, sizeof bytes);
    switch (damage) {
        case DAMAGE_PARTIAL_HEADER:
            s_put_u32 (bytes, 40);
            s_file_write_at (path, end, bytes, 5);
            break;
        case DAMAGE_PARTIAL_PAYLOAD:
            cr_assert_eq (truncate (path, (off_t) (end - 7)), 0);
            break;
        case DAMAGE_PAYLOAD_ZEROED:
            s_file_write_at (path, end - 7, bytes, 7);
            break;
        case DAMAGE_PAYLOAD_PAST_EOF:
        case DAMAGE_PAYLOAD_MISSING:
            s_put_u32 (bytes, 1000);
            s_put_u32 (bytes + 4, 0x12345678);
            memset (bytes + 8, 0x33, 100);
            s_file_write_at (path, end, bytes, 108);
            if (damage == DAMAGE_PAYLOAD_PAST_EOF)
                cr_assert_eq (truncate (path, (off_t) (end + 108)), 0);
            break;
        case DAMAGE_LAST_CHECKSUM:
            s_file_flip (path, end - 3);
            break;
    }
    free (path);
    return dir;
}

ParameterizedTestParameters (kp_log, torn_tail_is_cut_on_open)
{
    return cr_make_param_array (s_torn_case_t, s_torn_cases,
                                sizeof s_torn_cases / sizeof s_torn_cases [0]);
}

ParameterizedTest (s_torn_case_t *torn, kp_log, torn_tail_is_cut_on_open)
{
    char *dir = s_torn_log_make (torn->damage);
    char *path = s_segment_path (dir, 0);
    uint64_t size = s_file_size (path);
    kp_log_t *log = s_open (dir, SEGMENT_LARGE, true, KP_LOG_TRUNCATED);
    cr_assert_eq (kp_log_size (log), torn->survivors);
    cr_assert_eq (kp_log_synced (log), torn->survivors);
    //  Cut by zeroing the torn bytes: the file keeps its size and its zero space
    cr_assert_eq (s_file_size (path), size);
    cr_assert (s_file_zero_from (path, s_record_offset (torn->survivors)));
    cr_assert_eq (kp_log_end (log), s_record_offset (torn->survivors));
    cr_assert_eq (s_replay_check (log), torn->survivors);

    //  Appends continue after the cut, and the log is clean again
    s_append_records (log, 2, NULL);
    cr_assert_eq (kp_log_sync (log), 0);
    kp_log_destroy (&log);
    log = s_open (dir, SEGMENT_LARGE, false, KP_LOG_OK);
    cr_assert_eq (kp_log_size (log), torn->survivors + 2);
    cr_assert_eq (s_replay_check (log), torn->survivors + 2);
    kp_log_destroy (&log);
    free (path);
    s_dir_remove (&dir);
}

ParameterizedTestParameters (kp_log, torn_tail_is_refused_unless_allowed)
{
    return cr_make_param_array (s_torn_case_t, s_torn_cases,
                                sizeof s_torn_cases / sizeof s_torn_cases [0]);
}

ParameterizedTest (s_torn_case_t *torn, kp_log, torn_tail_is_refused_unless_allowed)
{
    char *dir = s_torn_log_make (torn->damage);
    char *path = s_segment_path (dir, 0);
    uint64_t size = s_file_size (path);
    s_open (dir, SEGMENT_LARGE, false, KP_LOG_CORRUPT);
    cr_assert_eq (s_file_size (path), size, "nothing cut");
    free (path);
    s_dir_remove (&dir);
}

Test (kp_log, torn_segment_creation_is_removed)
{
    //  A crash while creating the next segment: part of its header, or
    //  blocks allocated but never written
    static const size_t sizes [] = { 0, 7, 16, 600 };
    for (size_t index = 0; index < sizeof sizes / sizeof sizes [0]; index++) {
        char *dir = s_log_make (5, SEGMENT_LARGE);
        //  A rollover cuts the full segment to its records before it
        //  creates the next
        char *full = s_segment_path (dir, 0);
        cr_assert_eq (truncate (full, (off_t) s_record_offset (5)), 0);
        free (full);
        char *path = s_segment_path (dir, 5);
        uint8_t bytes [600];
        memset (bytes, 0, sizeof bytes);
        if (sizes [index] > 0 && sizes [index] < HEADER_SIZE)
            memcpy (bytes, "KPLOG001", 7);
        s_file_write_at (path, 0, bytes, sizes [index]);
        kp_log_t *log = s_open (dir, SEGMENT_LARGE, true, KP_LOG_TRUNCATED);
        cr_assert_eq (kp_log_size (log), 5);
        cr_assert_neq (access (path, F_OK), 0, "torn segment of %zu bytes removed",
                       sizes [index]);
        s_append_records (log, 1, NULL);
        cr_assert_eq (kp_log_sync (log), 0);
        kp_log_destroy (&log);
        log = s_open (dir, SEGMENT_LARGE, true, KP_LOG_OK);
        cr_assert_eq (s_replay_check (log), 6);
        kp_log_destroy (&log);
        free (path);
        s_dir_remove (&dir);
    }
}

Test (kp_log, torn_creation_of_the_only_segment_leaves_an_empty_log)
{
    char *dir = kp_test_tempdir ();
    char *path = s_segment_path (dir, 0);
    s_file_write_at (path, 0, "KPLOG", 5);
    s_open (dir, SEGMENT_LARGE, false, KP_LOG_CORRUPT);
    kp_log_t *log = s_open (dir, SEGMENT_LARGE, true, KP_LOG_TRUNCATED);
    cr_assert_eq (kp_log_size (log), 0);
    cr_assert_eq (s_file_size (path), HEADER_SIZE);
    s_append_records (log, 1, NULL);
    cr_assert_eq (kp_log_sync (log), 0);
    kp_log_destroy (&log);
    free (path);
    s_dir_remove (&dir);
}

//  --------------------------------------------------------------------------
//  Corruption: open refuses, changes nothing

//  Open must fail with KP_LOG_CORRUPT, even with load_truncated, and leave
//  the segment at seq first as it was
static void
s_assert_corrupt (const char *dir, uint64_t first, size_t segment_size)
{
    char *path = s_segment_path (dir, first);
    uint64_t size = s_file_size (path);
    s_open (dir, segment_size, true, KP_LOG_CORRUPT);
    s_open (dir, segment_size, false, KP_LOG_CORRUPT);
    cr_assert_eq (s_file_size (path), size);
    free (path);
}

Test (kp_log, flipped_byte_in_a_middle_record_is_corruption)
{
    char *dir = s_log_make (5, SEGMENT_LARGE);
    char *path = s_segment_path (dir, 0);
    s_file_flip (path, s_record_offset (2) + FRAME_SIZE + 4);
    s_assert_corrupt (dir, 0, SEGMENT_LARGE);
    free (path);
    s_dir_remove (&dir);
}

Test (kp_log, flipped_checksum_in_a_middle_record_is_corruption)
{
    char *dir = s_log_make (5, SEGMENT_LARGE);
    char *path = s_segment_path (dir, 0);
    s_file_flip (path, s_record_offset (1) + 5);
    s_assert_corrupt (dir, 0, SEGMENT_LARGE);
    free (path);
    s_dir_remove (&dir);
}

Test (kp_log, damaged_length_running_past_eof_is_corruption_not_a_tear)
{
    //  Looks like a torn tail from the length alone, but whole records
    //  follow it
    char *dir = s_log_make (5, SEGMENT_LARGE);
    char *path = s_segment_path (dir, 0);
    uint8_t length [4];
    s_put_u32 (length, 5000);
    s_file_write_at (path, s_record_offset (1), length, 4);
    s_assert_corrupt (dir, 0, SEGMENT_LARGE);
    free (path);
    s_dir_remove (&dir);
}

Test (kp_log, invalid_lengths_mid_file_are_corruption)
{
    static const uint32_t lengths [] = { 0, KP_LOG_MAX_RECORD + 1, 0xFFFFFFFF };
    for (size_t index = 0; index < sizeof lengths / sizeof lengths [0]; index++) {
        char *dir = s_log_make (5, SEGMENT_LARGE);
        char *path = s_segment_path (dir, 0);
        uint8_t length [4];
        s_put_u32 (length, lengths [index]);
        s_file_write_at (path, s_record_offset (3), length, 4);
        s_assert_corrupt (dir, 0, SEGMENT_LARGE);
        free (path);
        s_dir_remove (&dir);
    }
}

Test (kp_log, damage_in_a_segment_that_is_not_the_last_is_corruption)
{
    //  Even at its tail: only the last segment can be torn
    char *dir = s_log_make (12, 150);
    char *path = s_segment_path (dir, 0);
    cr_assert_eq (truncate (path, (off_t) (s_file_size (path) - 3)), 0);
    s_assert_corrupt (dir, 0, 150);
    free (path);
    s_dir_remove (&dir);
}

Test (kp_log, bad_segment_header_is_corruption)
{
    char *dir = s_log_make (12, 150);
    char *path = s_segment_path (dir, 4);
    s_file_write_at (path, 0, "KPLOG002", 8);
    s_assert_corrupt (dir, 4, 150);
    free (path);
    s_dir_remove (&dir);
}

Test (kp_log, bad_magic_in_the_last_segment_is_corruption)
{
    char *dir = s_log_make (12, 150);
    uint64_t starts [12];
    size_t segments = s_segment_starts (12, 150, starts, 12);
    char *path = s_segment_path (dir, starts [segments - 1]);
    s_file_flip (path, 0);
    s_assert_corrupt (dir, starts [segments - 1], 150);
    free (path);
    s_dir_remove (&dir);
}

Test (kp_log, header_seq_that_differs_from_the_name_is_corruption)
{
    char *dir = s_log_make (12, 150);
    char *path = s_segment_path (dir, 4);
    s_file_flip (path, 8);
    s_assert_corrupt (dir, 4, 150);
    free (path);
    s_dir_remove (&dir);
}

Test (kp_log, missing_segment_is_corruption)
{
    char *dir = s_log_make (12, 150);
    char *path = s_segment_path (dir, 4);
    cr_assert_eq (unlink (path), 0);
    s_assert_corrupt (dir, 8, 150);
    free (path);
    path = s_segment_path (dir, 0);
    cr_assert_eq (unlink (path), 0);
    s_assert_corrupt (dir, 8, 150);
    free (path);
    s_dir_remove (&dir);
}

//  --------------------------------------------------------------------------
//  Append limits and the write-error state

Test (kp_log, oversized_record_is_refused_and_the_log_carries_on)
{
    char *dir = kp_test_tempdir ();
    kp_log_t *log = s_open (dir, SEGMENT_LARGE, true, KP_LOG_OK);
    uint8_t *huge = (uint8_t *) calloc (1, KP_LOG_MAX_RECORD + 1);
    cr_assert_not_null (huge);
    uint64_t seq = 99, pos = 99;
    cr_assert_eq (kp_log_append (log, huge, KP_LOG_MAX_RECORD + 1, &seq, &pos), -1);
    cr_assert_eq (seq, 99);
    cr_assert_eq (kp_log_size (log), 0);
    free (huge);
    s_append_records (log, 2, NULL);
    cr_assert_eq (kp_log_sync (log), 0);
    cr_assert_eq (s_replay_check (log), 2);
    kp_log_destroy (&log);
    s_dir_remove (&dir);
}

Test (kp_log, empty_record_is_a_programming_error, .signal = SIGABRT)
{
    char *dir = kp_test_tempdir ();
    kp_log_t *log = s_open (dir, SEGMENT_LARGE, true, KP_LOG_OK);
    //  Remove the temp dir first: the assert ends this process
    s_dir_remove (&dir);
    uint64_t seq, pos;
    int rc = kp_log_append (log, "x", 0, &seq, &pos);
    cr_assert_fail ("an empty append returned %d", rc);
}

//  Set a file size limit (the next write past it is short, then fails
//  with EFBIG, as a full disk does); returns the old limit
static struct rlimit
s_file_limit (uint64_t bytes)
{
    struct rlimit saved, limit;
    cr_assert_eq (getrlimit (RLIMIT_FSIZE, &saved), 0);
    limit = saved;
    limit.rlim_cur = (rlim_t) bytes;
    signal (SIGXFSZ, SIG_IGN);
    cr_assert_eq (setrlimit (RLIMIT_FSIZE, &limit), 0);
    return saved;
}

Test (kp_log, write_error_at_sync_cuts_back_to_the_last_whole_record)
{
    char *dir = s_log_make (3, SEGMENT_LARGE);
    kp_log_t *log = s_open (dir, SEGMENT_LARGE, false, KP_LOG_OK);
    uint64_t positions [2];
    s_append_records (log, 1, positions);
    cr_assert_eq (kp_log_sync (log), 0);
    char *path = s_segment_path (dir, 0);
    uint64_t good_size = s_log_end (path);
    uint64_t allocated = s_file_size (path);

    //  Two more records, in the write buffer: appends cannot fail yet
    s_append_records (log, 1, positions + 1);
    uint8_t payload [100];
    memset (payload, 0x77, sizeof payload);
    uint64_t seq, pos;
    cr_assert_eq (kp_log_append (log, payload, sizeof payload, &seq, &pos), 0);
    cr_assert_eq (s_log_end (path), good_size, "nothing written before the sync");
    cr_assert_eq (s_file_size (path), allocated);
    size_t size;
    const uint8_t *data = kp_log_read (log, pos, &size);
    cr_assert (data && size == sizeof payload && data [0] == 0x77, "read from memory");

    //  The limit lets the first buffered record through, not the second
    uint64_t first_frame = FRAME_SIZE + s_payload_size (4);
    struct rlimit saved = s_file_limit (good_size + first_frame + 20);
    int rc = kp_log_sync (log);
    cr_assert_eq (setrlimit (RLIMIT_FSIZE, &saved), 0);
    cr_assert_eq (rc, -1, "a failed write fails the sync");
    cr_assert_eq (s_file_size (path), good_size + first_frame,
                  "cut back to the last whole record");
    cr_assert_eq (kp_log_synced (log), 4);

    //  Refused from now on, though the disk has room again
    cr_assert_eq (kp_log_append (log, payload, sizeof payload, &seq, &pos), -1);
    cr_assert_eq (kp_log_sync (log), -1, "records were lost: never durable");
    cr_assert_eq (s_file_size (path), good_size + first_frame);
    //  What reached the file stays readable; the lost record does not
    data = kp_log_read (log, positions [0], &size);
    cr_assert (data && s_payload_is (3, data, size));
    data = kp_log_read (log, positions [1], &size);
    cr_assert (data && s_payload_is (4, data, size));
    cr_assert_null (kp_log_read (log, pos, &size));
    kp_log_destroy (&log);
    cr_assert_eq (s_file_size (path), good_size + first_frame, "destroy wrote nothing");

    log = s_open (dir, SEGMENT_LARGE, false, KP_LOG_OK);
    cr_assert_eq (s_replay_check (log), 5);
    kp_log_destroy (&log);
    free (path);
    s_dir_remove (&dir);
}

Test (kp_log, write_error_when_the_buffer_fills_fails_the_append)
{
    char *dir = s_log_make (3, SEGMENT_LARGE);
    kp_log_t *log = s_open (dir, SEGMENT_LARGE, false, KP_LOG_OK);
    char *path = s_segment_path (dir, 0);
    uint64_t good_size = s_log_end (path);
    //  Two records of 600 KiB do not fit one 1 MiB batch: the second append
    //  writes the first, and that write fails
    size_t big = 600 * 1024;
    uint8_t *payload = (uint8_t *) malloc (big);
    cr_assert_not_null (payload);
    memset (payload, 0x5a, big);
    uint64_t seq, pos;
    cr_assert_eq (kp_log_append (log, payload, big, &seq, &pos), 0);
    struct rlimit saved = s_file_limit (good_size + 4096);
    int rc = kp_log_append (log, payload, big, &seq, &pos);
    cr_assert_eq (setrlimit (RLIMIT_FSIZE, &saved), 0);
    cr_assert_eq (rc, -1);
    cr_assert_eq (s_file_size (path), good_size, "cut back to the last whole record");
    cr_assert_eq (kp_log_size (log), 4, "the failed append got no seq");
    cr_assert_eq (kp_log_sync (log), -1);
    cr_assert_eq (kp_log_append (log, "x", 1, &seq, &pos), -1);
    kp_log_destroy (&log);
    free (payload);

    log = s_open (dir, SEGMENT_LARGE, false, KP_LOG_OK);
    cr_assert_eq (s_replay_check (log), 3);
    kp_log_destroy (&log);
    free (path);
    s_dir_remove (&dir);
}

//  --------------------------------------------------------------------------
//  The write buffer and the cache

Test (kp_log, buffered_records_are_read_sought_and_replayed_before_any_write)
{
    char *dir = kp_test_tempdir ();
    kp_log_t *log = s_open (dir, SEGMENT_LARGE, true, KP_LOG_OK);
    char *path = s_segment_path (dir, 0);
    uint64_t positions [50];
    s_append_records (log, 50, positions);
    cr_assert_eq (s_file_size (path), HEADER_SIZE, "appends wait in memory");
    uint64_t pos = positions [0];
    for (uint64_t seq = 0; seq < 50; seq++) {
        size_t size;
        const uint8_t *data = kp_log_read (log, positions [seq], &size);
        cr_assert (data && s_payload_is (seq, data, size), "record %" PRIu64, seq);
        uint64_t found;
        cr_assert_eq (kp_log_seek (log, seq, &found), 0);
        cr_assert_eq (found, positions [seq]);
        cr_assert_eq (pos, positions [seq]);
        pos = kp_log_next_pos (log, pos, size);
    }
    size_t size;
    cr_assert_null (kp_log_read (log, positions [7] + 3, &size),
                    "inside a buffered record");
    cr_assert_null (kp_log_read (log, positions [49] + FRAME_SIZE + s_payload_size (49),
                                 &size), "at the end");
    cr_assert_eq (s_file_size (path), HEADER_SIZE, "reads wrote nothing");
    cr_assert_eq (kp_log_synced (log), 0);
    //  Replay sees them all (and writes them first)
    cr_assert_eq (s_replay_check (log), 50);
    cr_assert_eq (s_file_size (path), s_record_offset (50));
    cr_assert_eq (kp_log_sync (log), 0);
    cr_assert_eq (kp_log_synced (log), 50);
    kp_log_destroy (&log);
    free (path);
    s_dir_remove (&dir);
}

Test (kp_log, destroy_writes_buffered_records)
{
    char *dir = kp_test_tempdir ();
    kp_log_t *log = s_open (dir, SEGMENT_LARGE, true, KP_LOG_OK);
    s_append_records (log, 7, NULL);
    kp_log_destroy (&log);
    log = s_open (dir, SEGMENT_LARGE, false, KP_LOG_OK);
    cr_assert_eq (s_replay_check (log), 7);
    kp_log_destroy (&log);
    s_dir_remove (&dir);
}

Test (kp_log, reads_cross_a_rollover_with_records_still_buffered)
{
    char *dir = kp_test_tempdir ();
    kp_log_t *log = s_open (dir, 1024, true, KP_LOG_OK);
    uint64_t positions [100];
    s_append_records (log, 100, positions);
    uint64_t starts [100];
    size_t segments = s_segment_starts (100, 1024, starts, 100);
    cr_assert_geq (segments, 4);
    cr_assert_eq (positions [99] >> 40, segments - 1);
    //  Rollovers wrote and synced the full segments; the last one's
    //  records are still in the write buffer
    char *last = s_segment_path (dir, starts [segments - 1]);
    cr_assert_eq (s_file_size (last), HEADER_SIZE);
    cr_assert_eq (kp_log_synced (log), starts [segments - 1]);
    uint64_t pos = positions [0];
    for (uint64_t seq = 0; seq < 100; seq++) {
        size_t size;
        const uint8_t *data = kp_log_read (log, positions [seq], &size);
        cr_assert (data && s_payload_is (seq, data, size), "record %" PRIu64, seq);
        uint64_t found;
        cr_assert_eq (kp_log_seek (log, seq, &found), 0);
        cr_assert_eq (found, positions [seq], "seek of %" PRIu64, seq);
        cr_assert_eq (pos, positions [seq], "next_pos chain at %" PRIu64, seq);
        pos = kp_log_next_pos (log, pos, size);
    }
    //  Erasing a buffered record writes it first
    cr_assert_eq (kp_log_erase (log, positions [98]), 0);
    size_t size;
    const uint8_t *data = kp_log_read (log, positions [98], &size);
    cr_assert_not_null (data);
    for (size_t index = 0; index < size; index++)
        cr_assert_eq (data [index], 0);
    cr_assert_eq (kp_log_sync (log), 0);
    kp_log_destroy (&log);

    log = s_open (dir, 1024, false, KP_LOG_OK);
    cr_assert_eq (kp_log_size (log), 100);
    for (uint64_t seq = 0; seq < 100; seq++) {
        data = kp_log_read (log, positions [seq], &size);
        cr_assert_not_null (data);
        cr_assert (seq == 98 || s_payload_is (seq, data, size));
    }
    kp_log_destroy (&log);
    free (last);
    s_dir_remove (&dir);
}

Test (kp_log, the_last_batch_written_is_read_from_memory)
{
    char *dir = kp_test_tempdir ();
    kp_log_t *log = s_open (dir, SEGMENT_LARGE, true, KP_LOG_OK);
    uint64_t positions [20];
    s_append_records (log, 10, positions);
    cr_assert_eq (kp_log_sync (log), 0);
    //  Spoil record 5 in the file behind the log's back: the cache
    //  still has the batch, so the read does not see the damage
    char *path = s_segment_path (dir, 0);
    int fd = open (path, O_WRONLY);
    cr_assert_geq (fd, 0);
    uint8_t junk [4] = { 1, 2, 3, 4 };
    off_t at = (off_t) (s_record_offset (5) + FRAME_SIZE);
    cr_assert_eq (pwrite (fd, junk, sizeof junk, at), (ssize_t) sizeof junk);
    close (fd);
    size_t size;
    const uint8_t *data = kp_log_read (log, positions [5], &size);
    cr_assert (data && s_payload_is (5, data, size), "served from the cache");
    //  Once record 5 is out of the cache (here: the cache is cut to
    //  nothing, kp_log_set_cache), it is read from the file: the damage shows
    kp_log_set_cache (log, 0);
    s_append_records (log, 10, positions + 10);
    cr_assert_eq (kp_log_sync (log), 0);
    cr_assert_null (kp_log_read (log, positions [5], &size), "the damage shows");
    data = kp_log_read (log, positions [15], &size);
    cr_assert (data && s_payload_is (15, data, size));
    data = kp_log_read (log, positions [4], &size);
    cr_assert (data && s_payload_is (4, data, size));
    kp_log_destroy (&log);
    free (path);
    s_dir_remove (&dir);
}

//  Is data the payload of record seq at size bytes (s_payload_fill)?
static bool
s_sized_payload_is (uint64_t seq, const uint8_t *data, size_t size, size_t expected)
{
    if (size != expected)
        return false;
    for (size_t index = 0; index < size; index++)
        if (data [index] != (uint8_t) (seq * 31 + index * 7 + (seq >> 8)))
            return false;
    return true;
}

//  Append record seq with size bytes of s_payload_fill; returns its pos
static uint64_t
s_append_sized (kp_log_t *log, uint64_t seq, size_t size)
{
    uint8_t *payload = (uint8_t *) malloc (size);
    cr_assert_not_null (payload);
    s_payload_fill (seq, payload, size);
    uint64_t got_seq, pos;
    cr_assert_eq (kp_log_append (log, payload, size, &got_seq, &pos), 0);
    cr_assert_eq (got_seq, seq);
    free (payload);
    return pos;
}

//  Read record seq at pos and check it has size bytes of s_payload_fill
static void
s_read_sized (kp_log_t *log, uint64_t seq, uint64_t pos, size_t expected)
{
    size_t size;
    const uint8_t *data = kp_log_read (log, pos, &size);
    cr_assert_not_null (data, "record %" PRIu64, seq);
    cr_assert (s_sized_payload_is (seq, data, size, expected), "record %" PRIu64, seq);
}

//  The broker's pattern: records of 330 bytes, a group commit every 600,
//  each record read back lag records after its write
typedef struct {
    size_t cache;                   //  kp_log_set_cache; 0: leave the default
    uint64_t lag;                   //  records between a write and its read
    bool all_miss;                  //  true: every read misses; false: none
} s_lag_case_t;

static s_lag_case_t s_lag_cases [] = {
    //  2,000 records of 338 bytes (676,000) after it, up to 600 of them
    //  not written yet: within the default cache of 1 MiB
    { 0, 2000, false },
    { 1024 * 1024, 3000, false },
    //  Past 1.5 x the cache, even with a whole batch pending: from the file
    { 256 * 1024, 2000, true },
    { 0, 5000, true }
};

ParameterizedTestParameters (kp_log, records_read_back_batches_after_their_write)
{
    return cr_make_param_array (s_lag_case_t, s_lag_cases,
                                sizeof s_lag_cases / sizeof s_lag_cases [0]);
}

ParameterizedTest (s_lag_case_t *lag, kp_log, records_read_back_batches_after_their_write)
{
    enum { COUNT = 12000, SIZE = 330, SYNC_EVERY = 600 };
    char *dir = kp_test_tempdir ();
    kp_log_t *log = s_open (dir, SEGMENT_LARGE, true, KP_LOG_OK);
    if (lag->cache)
        kp_log_set_cache (log, lag->cache);
    uint64_t *positions = (uint64_t *) calloc (COUNT, sizeof (uint64_t));
    cr_assert_not_null (positions);
    for (uint64_t seq = 0; seq < COUNT; seq++) {
        positions [seq] = s_append_sized (log, seq, SIZE);
        if ((seq + 1) % SYNC_EVERY == 0)
            cr_assert_eq (kp_log_sync (log), 0);
        if (seq >= lag->lag)
            s_read_sized (log, seq - lag->lag, positions [seq - lag->lag], SIZE);
    }
    uint64_t reads = COUNT - lag->lag;
    cr_assert_eq (kp_log_read_misses (log), lag->all_miss? reads: 0,
                  "%" PRIu64 " misses of %" PRIu64 " reads", kp_log_read_misses (log),
                  reads);
    cr_assert_eq (kp_log_sync (log), 0);
    kp_log_destroy (&log);

    //  Reopened, the log has every record; the cache starts empty
    log = s_open (dir, SEGMENT_LARGE, false, KP_LOG_OK);
    cr_assert_eq (kp_log_size (log), COUNT);
    for (uint64_t seq = 0; seq < COUNT; seq++)
        s_read_sized (log, seq, positions [seq], SIZE);
    cr_assert_eq (kp_log_read_misses (log), COUNT);
    kp_log_destroy (&log);
    free (positions);
    s_dir_remove (&dir);
}

Test (kp_log, the_cache_keeps_the_records_within_its_budget)
{
    enum { BUDGET = 4096, BATCHES = 12, BATCH = 37, COUNT = BATCHES * BATCH };
    char *dir = kp_test_tempdir ();
    kp_log_t *log = s_open (dir, SEGMENT_LARGE, true, KP_LOG_OK);
    kp_log_set_cache (log, BUDGET);
    uint64_t positions [COUNT];
    for (uint64_t batch = 0; batch < BATCHES; batch++) {
        s_append_records (log, BATCH, positions + batch * BATCH);
        cr_assert_eq (kp_log_sync (log), 0);
        //  Every record read back: within the budget from memory, past 1.5
        //  x the budget from the file, between the two either way
        uint64_t written = s_record_offset ((batch + 1) * BATCH);
        for (uint64_t seq = 0; seq < (batch + 1) * BATCH; seq++) {
            uint64_t before = kp_log_read_misses (log);
            uint64_t back = written - s_record_offset (seq);
            size_t size;
            const uint8_t *data = kp_log_read (log, positions [seq], &size);
            cr_assert (data && s_payload_is (seq, data, size), "record %" PRIu64, seq);
            if (back <= BUDGET)
                cr_assert_eq (kp_log_read_misses (log), before, "record %" PRIu64
                              " is %" PRIu64 " bytes back: in the cache", seq, back);
            else if (back > BUDGET + BUDGET / 2)
                cr_assert_eq (kp_log_read_misses (log), before + 1, "record %" PRIu64
                              " is %" PRIu64 " bytes back: not cached", seq, back);
        }
    }
    //  Setting the budget cuts the cache to it exactly
    kp_log_set_cache (log, BUDGET);
    uint64_t written = s_record_offset (COUNT);
    for (uint64_t seq = 0; seq < COUNT; seq++) {
        uint64_t before = kp_log_read_misses (log);
        size_t size;
        const uint8_t *data = kp_log_read (log, positions [seq], &size);
        cr_assert (data && s_payload_is (seq, data, size), "record %" PRIu64, seq);
        bool cached = written - s_record_offset (seq) <= BUDGET;
        cr_assert_eq (kp_log_read_misses (log), before + (cached? 0: 1),
                      "record %" PRIu64, seq);
    }
    kp_log_set_cache (log, 0);
    uint64_t before = kp_log_read_misses (log);
    size_t size;
    cr_assert_not_null (kp_log_read (log, positions [COUNT - 1], &size));
    cr_assert_eq (kp_log_read_misses (log), before + 1);
    //  Pending records are read from memory whatever the budget
    s_append_records (log, 3, NULL);
    uint64_t pos;
    cr_assert_eq (kp_log_seek (log, COUNT + 1, &pos), 0);
    const uint8_t *data = kp_log_read (log, pos, &size);
    cr_assert (data && s_payload_is (COUNT + 1, data, size));
    cr_assert_eq (kp_log_read_misses (log), before + 1);
    cr_assert_eq (kp_log_sync (log), 0);
    kp_log_destroy (&log);
    s_dir_remove (&dir);
}

Test (kp_log, setting_the_cache_size_drops_what_is_past_it_at_once)
{
    char *dir = kp_test_tempdir ();
    kp_log_t *log = s_open (dir, SEGMENT_LARGE, true, KP_LOG_OK);
    uint64_t positions [60];
    s_append_records (log, 60, positions);
    cr_assert_eq (kp_log_sync (log), 0);
    //  The default cache holds all 3,000-odd bytes written; a size of 2,500
    //  (not 1.5 x less than that) keeps exactly the last 2,500
    uint64_t written = s_record_offset (60);
    cr_assert_gt (written - HEADER_SIZE, 2500 + 100);
    cr_assert_lt (written - HEADER_SIZE, 2500 + 2500 / 2);
    for (uint64_t seq = 0; seq < 60; seq++) {
        size_t size;
        const uint8_t *data = kp_log_read (log, positions [seq], &size);
        cr_assert (data && s_payload_is (seq, data, size), "record %" PRIu64, seq);
    }
    cr_assert_eq (kp_log_read_misses (log), 0);
    kp_log_set_cache (log, 2500);
    uint64_t misses = 0;
    for (uint64_t seq = 0; seq < 60; seq++) {
        size_t size;
        const uint8_t *data = kp_log_read (log, positions [seq], &size);
        cr_assert (data && s_payload_is (seq, data, size), "record %" PRIu64, seq);
        if (written - s_record_offset (seq) > 2500)
            misses++;
        cr_assert_eq (kp_log_read_misses (log), misses, "record %" PRIu64, seq);
    }
    cr_assert_gt (misses, 0);
    //  A larger size keeps what is there, and more from then on
    kp_log_set_cache (log, 1024 * 1024);
    s_append_records (log, 10, NULL);
    cr_assert_eq (kp_log_sync (log), 0);
    size_t size;
    cr_assert_not_null (kp_log_read (log, positions [59], &size));
    cr_assert_eq (kp_log_read_misses (log), misses);
    kp_log_destroy (&log);
    s_dir_remove (&dir);
}

Test (kp_log, a_cache_smaller_than_one_record_holds_none)
{
    size_t budgets [] = { 0, 100 };
    for (size_t test = 0; test < 2; test++) {
        char *dir = kp_test_tempdir ();
        kp_log_t *log = s_open (dir, SEGMENT_LARGE, true, KP_LOG_OK);
        kp_log_set_cache (log, budgets [test]);
        uint64_t positions [10];
        for (uint64_t seq = 0; seq < 5; seq++)
            positions [seq] = s_append_sized (log, seq, 500);
        for (uint64_t seq = 0; seq < 5; seq++)
            s_read_sized (log, seq, positions [seq], 500);
        cr_assert_eq (kp_log_read_misses (log), 0, "pending: from memory");
        cr_assert_eq (kp_log_sync (log), 0);
        for (uint64_t seq = 0; seq < 5; seq++)
            s_read_sized (log, seq, positions [seq], 500);
        cr_assert_eq (kp_log_read_misses (log), 5, "written: from the file");
        for (uint64_t seq = 5; seq < 10; seq++) {
            positions [seq] = s_append_sized (log, seq, 500);
            cr_assert_eq (kp_log_sync (log), 0);
        }
        for (uint64_t seq = 0; seq < 10; seq++)
            s_read_sized (log, seq, positions [seq], 500);
        cr_assert_eq (kp_log_read_misses (log), 15);
        kp_log_destroy (&log);
        log = s_open (dir, SEGMENT_LARGE, false, KP_LOG_OK);
        for (uint64_t seq = 0; seq < 10; seq++)
            s_read_sized (log, seq, positions [seq], 500);
        kp_log_destroy (&log);
        s_dir_remove (&dir);
    }
}

Test (kp_log, a_record_larger_than_the_write_buffer_is_cached_within_the_budget)
{
    size_t large = 1536 * 1024;     //  larger than a batch (1 MiB)
    char *dir = kp_test_tempdir ();
    kp_log_t *log = s_open (dir, SEGMENT_LARGE, true, KP_LOG_OK);
    uint64_t positions [6];
    positions [0] = s_append_sized (log, 0, 100);
    positions [1] = s_append_sized (log, 1, large);
    s_read_sized (log, 1, positions [1], large);
    cr_assert_eq (kp_log_read_misses (log), 0, "pending: from memory");
    cr_assert_eq (kp_log_sync (log), 0);
    //  Past the default budget of 1 MiB: from the file
    s_read_sized (log, 1, positions [1], large);
    s_read_sized (log, 0, positions [0], 100);
    cr_assert_eq (kp_log_read_misses (log), 2);
    //  With a cache of 4 MiB it stays, and the small records after it too
    kp_log_set_cache (log, 4 * 1024 * 1024);
    positions [2] = s_append_sized (log, 2, large);
    positions [3] = s_append_sized (log, 3, 100);
    cr_assert_eq (kp_log_sync (log), 0);
    positions [4] = s_append_sized (log, 4, 200);
    cr_assert_eq (kp_log_sync (log), 0);
    positions [5] = s_append_sized (log, 5, large);
    s_read_sized (log, 2, positions [2], large);
    s_read_sized (log, 3, positions [3], 100);
    s_read_sized (log, 4, positions [4], 200);
    s_read_sized (log, 5, positions [5], large);
    cr_assert_eq (kp_log_read_misses (log), 2);
    cr_assert_eq (kp_log_sync (log), 0);
    kp_log_destroy (&log);
    log = s_open (dir, SEGMENT_LARGE, false, KP_LOG_OK);
    size_t sizes [6] = { 100, large, large, 100, 200, large };
    for (uint64_t seq = 0; seq < 6; seq++)
        s_read_sized (log, seq, positions [seq], sizes [seq]);
    kp_log_destroy (&log);
    s_dir_remove (&dir);
}

Test (kp_log, an_erased_cached_record_reads_as_zeros_from_the_cache_and_the_file)
{
    char *dir = kp_test_tempdir ();
    kp_log_t *log = s_open (dir, SEGMENT_LARGE, false, KP_LOG_OK);
    uint64_t positions [20];
    s_append_records (log, 20, positions);
    cr_assert_eq (kp_log_sync (log), 0);
    s_append_records (log, 5, NULL);    //  pending while the erase runs
    cr_assert_eq (kp_log_erase (log, positions [7]), 0);
    cr_assert_eq (kp_log_read_misses (log), 0);
    size_t size;
    const uint8_t *data = kp_log_read (log, positions [7], &size);
    cr_assert_not_null (data);
    cr_assert_eq (size, s_payload_size (7));
    for (size_t index = 0; index < size; index++)
        cr_assert_eq (data [index], 0);
    cr_assert_eq (kp_log_read_misses (log), 0, "from the cache, erased there too");
    for (uint64_t seq = 0; seq < 20; seq++) {
        data = kp_log_read (log, positions [seq], &size);
        cr_assert (data && (seq == 7 || s_payload_is (seq, data, size)));
    }
    cr_assert_eq (kp_log_read_misses (log), 0);
    //  The file says the same
    kp_log_set_cache (log, 0);
    data = kp_log_read (log, positions [7], &size);
    cr_assert_not_null (data);
    for (size_t index = 0; index < size; index++)
        cr_assert_eq (data [index], 0);
    cr_assert_eq (kp_log_read_misses (log), 1);
    cr_assert_eq (kp_log_sync (log), 0);
    kp_log_destroy (&log);
    log = s_open (dir, SEGMENT_LARGE, false, KP_LOG_OK);
    cr_assert_eq (kp_log_size (log), 25);
    for (uint64_t seq = 0; seq < 25; seq++) {
        uint64_t pos;
        cr_assert_eq (kp_log_seek (log, seq, &pos), 0);
        data = kp_log_read (log, pos, &size);
        cr_assert (data && (seq == 7 || s_payload_is (seq, data, size)));
    }
    kp_log_destroy (&log);
    s_dir_remove (&dir);
}

Test (kp_log, erasing_the_record_the_cache_starts_inside_changes_its_cached_end)
{
    char *dir = kp_test_tempdir ();
    kp_log_t *log = s_open (dir, SEGMENT_LARGE, false, KP_LOG_OK);
    //  Four records of 500 bytes; record 2 carries a valid frame of 50
    //  bytes 'E' at payload offset 300, so that a read at that position
    //  shows whether the bytes there are the record's or zeros
    uint8_t payload [500];
    memset (payload, 0x11, sizeof payload);
    uint8_t inner [50];
    memset (inner, 'E', sizeof inner);
    s_put_u32 (payload + 300, sizeof inner);
    s_put_u32 (payload + 304, kp_crc32c (0, inner, sizeof inner));
    memcpy (payload + 308, inner, sizeof inner);
    uint64_t positions [4], seq;
    for (int index = 0; index < 4; index++)
        cr_assert_eq (kp_log_append (log, payload, sizeof payload, &seq,
                                     &positions [index]), 0);
    cr_assert_eq (kp_log_sync (log), 0);
    //  The last 1,000 bytes: record 3, and the last 492 of record 2
    kp_log_set_cache (log, 1000);
    uint64_t inside = positions [2] + FRAME_SIZE + 300;
    size_t size;
    const uint8_t *data = kp_log_read (log, inside, &size);
    cr_assert (data && size == sizeof inner && data [0] == 'E');
    cr_assert_eq (kp_log_read_misses (log), 0, "in the cache");
    cr_assert_not_null (kp_log_read (log, positions [2], &size));
    cr_assert_eq (kp_log_read_misses (log), 1, "record 2 starts before the cache");

    cr_assert_eq (kp_log_erase (log, positions [2]), 0);
    cr_assert_null (kp_log_read (log, inside, &size), "the cached end is zeros too");
    data = kp_log_read (log, positions [2], &size);
    cr_assert (data && size == sizeof payload);
    for (size_t index = 0; index < size; index++)
        cr_assert_eq (data [index], 0);
    uint64_t misses = kp_log_read_misses (log);
    data = kp_log_read (log, positions [3], &size);
    cr_assert (data && size == sizeof payload && memcmp (data, payload, size) == 0);
    cr_assert_eq (kp_log_read_misses (log), misses, "record 3 from the cache");
    kp_log_destroy (&log);
    log = s_open (dir, SEGMENT_LARGE, false, KP_LOG_OK);
    cr_assert_null (kp_log_read (log, inside, &size));
    data = kp_log_read (log, positions [1], &size);
    cr_assert (data && size == sizeof payload && memcmp (data, payload, size) == 0);
    kp_log_destroy (&log);
    s_dir_remove (&dir);
}

Test (kp_log, a_rollover_empties_the_cache)
{
    enum { COUNT = 300, SEGMENT = 4096 };
    char *dir = kp_test_tempdir ();
    kp_log_t *log = s_open (dir, SEGMENT, true, KP_LOG_OK);
    uint64_t positions [COUNT];
    for (uint64_t seq = 0; seq < COUNT; seq++) {
        s_append_records (log, 1, positions + seq);
        if (seq % 25 == 24)
            cr_assert_eq (kp_log_sync (log), 0);
    }
    cr_assert_eq (kp_log_sync (log), 0);
    uint64_t starts [COUNT];
    size_t segments = s_segment_starts (COUNT, SEGMENT, starts, COUNT);
    cr_assert_geq (segments, 3);
    //  Only the last segment's records are cached
    uint64_t last = starts [segments - 1];
    for (uint64_t seq = 0; seq < COUNT; seq++) {
        uint64_t before = kp_log_read_misses (log);
        size_t size;
        const uint8_t *data = kp_log_read (log, positions [seq], &size);
        cr_assert (data && s_payload_is (seq, data, size), "record %" PRIu64, seq);
        cr_assert_eq (kp_log_read_misses (log), before + (seq < last? 1: 0),
                      "record %" PRIu64, seq);
    }
    //  The record that starts the next segment empties the cache
    uint64_t seq = COUNT;
    while ((positions [COUNT - 1] >> 40) == (uint64_t) segments - 1) {
        uint64_t pos;
        s_append_records (log, 1, &pos);
        positions [COUNT - 1] = pos;
        seq++;
    }
    uint64_t before = kp_log_read_misses (log);
    size_t size;
    const uint8_t *data = kp_log_read (log, positions [COUNT - 1], &size);
    cr_assert (data && s_payload_is (seq - 1, data, size), "pending: from memory");
    cr_assert_eq (kp_log_read_misses (log), before);
    uint64_t pos;
    cr_assert_eq (kp_log_seek (log, seq - 2, &pos), 0);
    data = kp_log_read (log, pos, &size);
    cr_assert (data && s_payload_is (seq - 2, data, size));
    cr_assert_eq (kp_log_read_misses (log), before + 1, "the last segment's: file");
    cr_assert_eq (kp_log_sync (log), 0);
    kp_log_destroy (&log);
    log = s_open (dir, SEGMENT, false, KP_LOG_OK);
    cr_assert_eq (s_replay_check (log), seq);
    kp_log_destroy (&log);
    s_dir_remove (&dir);
}

Test (kp_log, a_failed_write_leaves_the_cache_as_the_file)
{
    char *dir = kp_test_tempdir ();
    kp_log_t *log = s_open (dir, SEGMENT_LARGE, false, KP_LOG_OK);
    uint64_t positions [51];
    s_append_records (log, 50, positions);
    cr_assert_eq (kp_log_sync (log), 0);
    char *path = s_segment_path (dir, 0);
    uint64_t good_size = s_log_end (path);
    //  Record 50 reaches the file, the next one does not
    s_append_records (log, 1, positions + 50);
    uint8_t payload [100];
    memset (payload, 0x77, sizeof payload);
    uint64_t seq, pos;
    cr_assert_eq (kp_log_append (log, payload, sizeof payload, &seq, &pos), 0);
    uint64_t first_frame = FRAME_SIZE + s_payload_size (50);
    struct rlimit saved = s_file_limit (good_size + first_frame + 20);
    int rc = kp_log_sync (log);
    cr_assert_eq (setrlimit (RLIMIT_FSIZE, &saved), 0);
    cr_assert_eq (rc, -1);
    cr_assert_eq (s_file_size (path), good_size + first_frame);
    //  From memory: what reached the file, and nothing else
    size_t size;
    for (uint64_t index = 0; index < 51; index++) {
        const uint8_t *data = kp_log_read (log, positions [index], &size);
        cr_assert (data && s_payload_is (index, data, size), "record %" PRIu64, index);
    }
    cr_assert_null (kp_log_read (log, pos, &size));
    cr_assert_eq (kp_log_read_misses (log), 0);
    //  The file says the same
    kp_log_set_cache (log, 0);
    for (uint64_t index = 0; index < 51; index++) {
        const uint8_t *data = kp_log_read (log, positions [index], &size);
        cr_assert (data && s_payload_is (index, data, size), "record %" PRIu64, index);
    }
    cr_assert_eq (kp_log_read_misses (log), 51);
    kp_log_destroy (&log);
    log = s_open (dir, SEGMENT_LARGE, false, KP_LOG_OK);
    cr_assert_eq (s_replay_check (log), 51);
    kp_log_destroy (&log);
    free (path);
    s_dir_remove (&dir);
}

Test (kp_log, a_failed_erase_leaves_the_cache_as_the_file)
{
    char *dir = kp_test_tempdir ();
    kp_log_t *log = s_open (dir, SEGMENT_LARGE, false, KP_LOG_OK);
    uint64_t positions [3];
    positions [0] = s_append_sized (log, 0, 100);
    positions [1] = s_append_sized (log, 1, 10000);
    positions [2] = s_append_sized (log, 2, 100);
    cr_assert_eq (kp_log_sync (log), 0);
    //  The erase writes zeros in chunks of 4 KiB: the limit lets the first
    //  through, and cuts the second short
    uint64_t payload_offset = (positions [1] & ((UINT64_C (1) << 40) - 1)) + FRAME_SIZE;
    struct rlimit saved = s_file_limit (payload_offset + 5000);
    int rc = kp_log_erase (log, positions [1]);
    cr_assert_eq (setrlimit (RLIMIT_FSIZE, &saved), 0);
    cr_assert_eq (rc, -1);
    //  The file holds a damaged record 1 now, and so do reads of it
    size_t size;
    cr_assert_null (kp_log_read (log, positions [1], &size));
    cr_assert_eq (kp_log_read_misses (log), 1, "from the file: the cache forgot it");
    s_read_sized (log, 2, positions [2], 100);
    cr_assert_eq (kp_log_read_misses (log), 1, "record 2 from the cache");
    s_read_sized (log, 0, positions [0], 100);
    kp_log_destroy (&log);
    s_dir_remove (&dir);
}

//  A random walk over appends of all sizes, syncs, reads, seeks, erases and
//  changes of the cache budget, across segments: every read as expected
typedef struct {
    uint64_t state;                 //  xorshift64 state
} s_random_t;

static uint64_t
s_random_next (s_random_t *random, uint64_t bound)
{
    random->state ^= random->state << 13;
    random->state ^= random->state >> 7;
    random->state ^= random->state << 17;
    return random->state % bound;
}

//  Check the record at pos: record seq of size bytes, or zeros if erased
static void
s_random_check (kp_log_t *log, uint64_t seq, uint64_t pos, size_t expected, bool erased)
{
    size_t size;
    const uint8_t *data = kp_log_read (log, pos, &size);
    cr_assert_not_null (data, "record %" PRIu64, seq);
    cr_assert_eq (size, expected, "record %" PRIu64, seq);
    if (erased) {
        for (size_t index = 0; index < size; index++)
            cr_assert_eq (data [index], 0, "erased record %" PRIu64, seq);
    }
    else
        cr_assert (s_sized_payload_is (seq, data, size, expected),
                   "record %" PRIu64, seq);
}

Test (kp_log, random_appends_reads_erases_and_budgets_agree_with_the_file)
{
    enum { STEPS = 20000, SEGMENT = 6 * 1024 * 1024 };
    static const size_t budgets [] = {
        0, 100, 4096, 65536, 1024 * 1024, 3 * 1024 * 1024
    };
    char *dir = kp_test_tempdir ();
    kp_log_t *log = s_open (dir, SEGMENT, true, KP_LOG_OK);
    s_random_t random = { 0x9E3779B97F4A7C15u };
    uint64_t *positions = (uint64_t *) calloc (STEPS, sizeof (uint64_t));
    size_t *sizes = (size_t *) calloc (STEPS, sizeof (size_t));
    bool *erased = (bool *) calloc (STEPS, sizeof (bool));
    cr_assert (positions && sizes && erased);
    uint64_t count = 0;
    for (int step = 0; step < STEPS; step++) {
        uint64_t dice = s_random_next (&random, 1000);
        if (dice < 600) {
            size_t size = 1 + (size_t) s_random_next (&random, 2000);
            if (s_random_next (&random, 400) == 0)
                size = 900 * 1024 + (size_t) s_random_next (&random, 900 * 1024);
            sizes [count] = size;
            positions [count] = s_append_sized (log, count, size);
            count++;
        }
        else if (dice < 650)
            cr_assert_eq (kp_log_sync (log), 0);
        else if (dice < 950 && count > 0) {
            uint64_t back = s_random_next (&random, dice < 900? 300: count);
            uint64_t seq = back < count? count - 1 - back: 0;
            s_random_check (log, seq, positions [seq], sizes [seq], erased [seq]);
        }
        else if (dice < 960 && count > 0) {
            uint64_t seq = s_random_next (&random, count);
            uint64_t pos;
            cr_assert_eq (kp_log_seek (log, seq, &pos), 0);
            cr_assert_eq (pos, positions [seq], "seek of %" PRIu64, seq);
        }
        else if (dice < 963 && count > 0) {
            uint64_t seq = count - 1 - s_random_next (&random, count < 50? count: 50);
            cr_assert_eq (kp_log_erase (log, positions [seq]), 0);
            erased [seq] = true;
        }
        else if (dice < 966)
            kp_log_set_cache (log, budgets [s_random_next (&random, 6)]);
    }
    cr_assert_eq (kp_log_sync (log), 0);
    for (uint64_t seq = 0; seq < count; seq++)
        s_random_check (log, seq, positions [seq], sizes [seq], erased [seq]);
    kp_log_destroy (&log);
    log = s_open (dir, SEGMENT, false, KP_LOG_OK);
    cr_assert_eq (kp_log_size (log), count);
    for (uint64_t seq = 0; seq < count; seq++)
        s_random_check (log, seq, positions [seq], sizes [seq], erased [seq]);
    kp_log_destroy (&log);
    free (positions);
    free (sizes);
    free (erased);
    s_dir_remove (&dir);
}

Test (kp_log, replay_after_open_does_not_check_checksums_again)
{
    char *dir = s_log_make (10, SEGMENT_LARGE);
    kp_log_t *log = s_open (dir, SEGMENT_LARGE, true, KP_LOG_OK);
    //  Damage a record after the open checked it: the replay trusts the
    //  open (only this process writes the log), a read still checks
    char *path = s_segment_path (dir, 0);
    int fd = open (path, O_WRONLY);
    cr_assert_geq (fd, 0);
    uint8_t junk [1] = { 0xEE };
    cr_assert_eq (pwrite (fd, junk, 1, (off_t) (s_record_offset (3) + FRAME_SIZE)), 1);
    close (fd);
    s_replay_t replay = { 0, 0, NULL, true };
    cr_assert_eq (kp_log_replay (log, s_replay_visit, &replay), 0);
    cr_assert_eq (replay.count, 10);
    uint64_t pos;
    cr_assert_eq (kp_log_seek (log, 3, &pos), 0);
    size_t size;
    cr_assert_null (kp_log_read (log, pos, &size));
    //  Records appended after the open are checked by the replay
    s_append_records (log, 2, NULL);
    cr_assert_eq (kp_log_sync (log), 0);
    cr_assert_eq (kp_log_seek (log, 11, &pos), 0);
    fd = open (path, O_WRONLY);
    cr_assert_geq (fd, 0);
    cr_assert_eq (pwrite (fd, junk, 1, (off_t) ((pos & ((UINT64_C (1) << 40) - 1))
                                                + FRAME_SIZE)), 1);
    close (fd);
    replay = (s_replay_t) { 0, 0, NULL, true };
    cr_assert_eq (kp_log_replay (log, s_replay_visit, &replay), -1);
    cr_assert_eq (replay.count, 11);
    kp_log_destroy (&log);
    //  And the next open finds the damage
    kp_log_status_t status;
    cr_assert_null (kp_log_open (dir, SEGMENT_LARGE, true, &status));
    cr_assert_eq (status, KP_LOG_CORRUPT);
    free (path);
    s_dir_remove (&dir);
}

Test (kp_log, read_only_open_reads_everything_and_writes_nothing)
{
    char *dir = s_log_make (5, SEGMENT_LARGE);
    char *segment = s_segment_path (dir, 0);
    cr_assert_gt (s_file_size (segment), s_record_offset (5), "zero space after records");
    free (segment);
    kp_log_status_t status;
    kp_log_t *log = kp_log_open_readonly (dir, &status);
    cr_assert_not_null (log);
    cr_assert_eq (status, KP_LOG_OK);
    cr_assert_eq (kp_log_size (log), 5);
    cr_assert_eq (s_replay_check (log), 5);
    uint64_t seq, pos;
    cr_assert_eq (kp_log_append (log, "x", 1, &seq, &pos), -1, "appends are refused");
    kp_log_destroy (&log);

    //  A torn tail is an error, and stays as it was
    s_dir_remove (&dir);
    dir = s_torn_log_make (DAMAGE_PARTIAL_PAYLOAD);
    char *path = s_segment_path (dir, 0);
    uint64_t size = s_file_size (path);
    cr_assert_null (kp_log_open_readonly (dir, &status));
    cr_assert_eq (status, KP_LOG_CORRUPT);
    cr_assert_eq (s_file_size (path), size, "a read-only open cut the file");
    free (path);

    //  A missing directory is not created
    char *missing = zsys_sprintf ("%s/missing", dir);
    cr_assert_null (kp_log_open_readonly (missing, &status));
    cr_assert_eq (status, KP_LOG_IOERR);
    cr_assert_neq (access (missing, F_OK), 0);
    free (missing);
    s_dir_remove (&dir);
}

//  --------------------------------------------------------------------------
//  Syncing two logs at the same time (kp_log_sync_both)

//  Threads of this process now, from /proc/self/status
static int
s_thread_count (void)
{
    FILE *file = fopen ("/proc/self/status", "r");
    cr_assert_not_null (file);
    char line [256];
    int threads = -1;
    while (fgets (line, sizeof line, file))
        if (sscanf (line, "Threads: %d", &threads) == 1)
            break;
    fclose (file);
    cr_assert_gt (threads, 0);
    return threads;
}

//  Open file descriptors of this process now
static int
s_fd_count (void)
{
    DIR *handle = opendir ("/proc/self/fd");
    cr_assert_not_null (handle);
    int count = 0;
    while (readdir (handle))
        count++;
    closedir (handle);
    return count;
}

Test (kp_log, sync_both_makes_both_logs_durable_with_one_fdatasync_each)
{
    char *dir_a = kp_test_tempdir ();
    char *dir_b = kp_test_tempdir ();
    kp_log_t *a = s_open (dir_a, SEGMENT_LARGE, true, KP_LOG_OK);
    kp_log_t *b = s_open (dir_b, SEGMENT_LARGE, true, KP_LOG_OK);
    s_append_records (a, 30, NULL);
    s_append_records (b, 7, NULL);
    uint64_t count_a = kp_log_sync_count (a);
    uint64_t count_b = kp_log_sync_count (b);
    int threads = s_thread_count ();
    cr_assert_eq (kp_log_sync_both (a, b), 0);
    cr_assert_eq (kp_log_synced (a), kp_log_size (a));
    cr_assert_eq (kp_log_synced (b), kp_log_size (b));
    cr_assert_eq (kp_log_sync_count (a), count_a + 1);
    cr_assert_eq (kp_log_sync_count (b), count_b + 1);
    cr_assert_eq (s_thread_count (), threads + 1, "a's helper thread runs");

    //  Nothing new: no fdatasync at all
    cr_assert_eq (kp_log_sync_both (a, b), 0);
    cr_assert_eq (kp_log_sync_count (a), count_a + 1);
    cr_assert_eq (kp_log_sync_count (b), count_b + 1);
    kp_log_destroy (&a);
    kp_log_destroy (&b);

    a = s_open (dir_a, SEGMENT_LARGE, false, KP_LOG_OK);
    b = s_open (dir_b, SEGMENT_LARGE, false, KP_LOG_OK);
    cr_assert_eq (s_replay_check (a), 30);
    cr_assert_eq (s_replay_check (b), 7);
    kp_log_destroy (&a);
    kp_log_destroy (&b);
    s_dir_remove (&dir_a);
    s_dir_remove (&dir_b);
}

Test (kp_log, sync_both_with_a_null_log_syncs_the_other_on_this_thread)
{
    char *dir = kp_test_tempdir ();
    kp_log_t *log = s_open (dir, SEGMENT_LARGE, true, KP_LOG_OK);
    int threads = s_thread_count ();
    cr_assert_eq (kp_log_sync_both (NULL, NULL), 0);

    s_append_records (log, 4, NULL);
    cr_assert_eq (kp_log_sync_both (log, NULL), 0);
    cr_assert_eq (kp_log_synced (log), 4);
    cr_assert_eq (kp_log_sync_count (log), 1);

    s_append_records (log, 3, NULL);
    cr_assert_eq (kp_log_sync_both (NULL, log), 0);
    cr_assert_eq (kp_log_synced (log), 7);
    cr_assert_eq (kp_log_sync_count (log), 2);
    cr_assert_eq (s_thread_count (), threads, "no helper thread for one log");
    kp_log_destroy (&log);

    log = s_open (dir, SEGMENT_LARGE, false, KP_LOG_OK);
    cr_assert_eq (s_replay_check (log), 7);
    kp_log_destroy (&log);
    s_dir_remove (&dir);
}

Test (kp_log, sync_both_with_one_clean_log_syncs_the_other_without_a_handoff)
{
    char *dir_a = s_log_make (5, SEGMENT_LARGE);
    char *dir_b = kp_test_tempdir ();
    kp_log_t *a = s_open (dir_a, SEGMENT_LARGE, false, KP_LOG_OK);
    kp_log_t *b = s_open (dir_b, SEGMENT_LARGE, false, KP_LOG_OK);
    int threads = s_thread_count ();

    //  a has nothing to sync: only b's fdatasync, here
    s_append_records (b, 6, NULL);
    cr_assert_eq (kp_log_sync_both (a, b), 0);
    cr_assert_eq (kp_log_sync_count (a), 0);
    cr_assert_eq (kp_log_sync_count (b), 1);
    cr_assert_eq (kp_log_synced (b), 6);

    //  b has nothing to sync: only a's
    s_append_records (a, 2, NULL);
    cr_assert_eq (kp_log_sync_both (a, b), 0);
    cr_assert_eq (kp_log_sync_count (a), 1);
    cr_assert_eq (kp_log_sync_count (b), 1);
    cr_assert_eq (kp_log_synced (a), 7);
    cr_assert_eq (s_thread_count (), threads, "no helper thread was started");
    kp_log_destroy (&a);
    kp_log_destroy (&b);

    a = s_open (dir_a, SEGMENT_LARGE, false, KP_LOG_OK);
    b = s_open (dir_b, SEGMENT_LARGE, false, KP_LOG_OK);
    cr_assert_eq (s_replay_check (a), 7);
    cr_assert_eq (s_replay_check (b), 6);
    kp_log_destroy (&a);
    kp_log_destroy (&b);
    s_dir_remove (&dir_a);
    s_dir_remove (&dir_b);
}

Test (kp_log, sync_both_thousands_of_times_hands_over_to_one_helper_thread)
{
    char *dir_a = kp_test_tempdir ();
    char *dir_b = kp_test_tempdir ();
    int fds = s_fd_count ();
    kp_log_t *a = s_open (dir_a, SEGMENT_LARGE, true, KP_LOG_OK);
    kp_log_t *b = s_open (dir_b, SEGMENT_LARGE, true, KP_LOG_OK);
    int threads = s_thread_count ();
    uint64_t rounds = 2000;
    for (uint64_t round = 0; round < rounds; round++) {
        s_append_records (a, 1, NULL);
        s_append_records (b, 1 + round % 3, NULL);
        cr_assert_eq (kp_log_sync_both (a, b), 0, "round %llu",
                      (unsigned long long) round);
        cr_assert_eq (kp_log_synced (a), kp_log_size (a));
        cr_assert_eq (kp_log_synced (b), kp_log_size (b));
    }
    cr_assert_eq (kp_log_sync_count (a), rounds);
    cr_assert_eq (kp_log_sync_count (b), rounds);
    cr_assert_eq (s_thread_count (), threads + 1, "one helper thread for all rounds");

    //  The roles swap: b gets a helper of its own
    for (uint64_t round = 0; round < 100; round++) {
        s_append_records (a, 2, NULL);
        s_append_records (b, 1, NULL);
        cr_assert_eq (kp_log_sync_both (b, a), 0);
    }
    cr_assert_eq (kp_log_sync_count (a), rounds + 100);
    cr_assert_eq (kp_log_sync_count (b), rounds + 100);
    cr_assert_eq (kp_log_synced (a), kp_log_size (a));
    cr_assert_eq (kp_log_synced (b), kp_log_size (b));
    cr_assert_eq (s_thread_count (), threads + 2);
    uint64_t size_a = kp_log_size (a);
    uint64_t size_b = kp_log_size (b);
    kp_log_destroy (&a);
    kp_log_destroy (&b);
    cr_assert_eq (s_fd_count (), fds, "destroy joined the helpers, closed their pipes");

    a = s_open (dir_a, SEGMENT_LARGE, false, KP_LOG_OK);
    b = s_open (dir_b, SEGMENT_LARGE, false, KP_LOG_OK);
    cr_assert_eq (s_replay_check (a), size_a);
    cr_assert_eq (s_replay_check (b), size_b);
    kp_log_destroy (&a);
    kp_log_destroy (&b);
    s_dir_remove (&dir_a);
    s_dir_remove (&dir_b);
}

Test (kp_log, sync_both_syncs_the_segment_a_rollover_started)
{
    size_t segment_size = 1024;
    char *dir_a = kp_test_tempdir ();
    char *dir_b = kp_test_tempdir ();
    kp_log_t *a = s_open (dir_a, segment_size, true, KP_LOG_OK);
    kp_log_t *b = s_open (dir_b, segment_size, true, KP_LOG_OK);
    for (int round = 0; round < 20; round++) {
        s_append_records (a, 7, NULL);
        s_append_records (b, 3, NULL);
        cr_assert_eq (kp_log_sync_both (a, b), 0);
        cr_assert_eq (kp_log_synced (a), kp_log_size (a));
        cr_assert_eq (kp_log_synced (b), kp_log_size (b));
    }
    //  One fdatasync per rollover, plus one per round for the last segment
    uint64_t starts [64];
    size_t segments_a = s_segment_starts (140, segment_size, starts, 64);
    size_t segments_b = s_segment_starts (60, segment_size, starts, 64);
    cr_assert_gt (segments_a, 3);
    cr_assert_eq (kp_log_sync_count (a), segments_a - 1 + 20);
    cr_assert_eq (kp_log_sync_count (b), segments_b - 1 + 20);
    kp_log_destroy (&a);
    kp_log_destroy (&b);

    a = s_open (dir_a, segment_size, false, KP_LOG_OK);
    b = s_open (dir_b, segment_size, false, KP_LOG_OK);
    cr_assert_eq (s_replay_check (a), 140);
    cr_assert_eq (s_replay_check (b), 60);
    kp_log_destroy (&a);
    kp_log_destroy (&b);
    s_dir_remove (&dir_a);
    s_dir_remove (&dir_b);
}

Test (kp_log, sync_both_fails_for_a_log_whose_write_failed_and_still_syncs_the_other)
{
    char *dir_a = s_log_make (3, SEGMENT_LARGE);
    char *dir_b = s_log_make (200, SEGMENT_LARGE);
    kp_log_t *a = s_open (dir_a, SEGMENT_LARGE, false, KP_LOG_OK);
    kp_log_t *b = s_open (dir_b, SEGMENT_LARGE, false, KP_LOG_OK);
    s_append_records (a, 2, NULL);
    s_append_records (b, 2, NULL);
    char *path_b = s_segment_path (dir_b, 0);
    uint64_t good_b = s_log_end (path_b);

    //  The limit stops b's batch (its file is the larger), not a's
    struct rlimit saved = s_file_limit (good_b + 10);
    int rc = kp_log_sync_both (a, b);
    cr_assert_eq (setrlimit (RLIMIT_FSIZE, &saved), 0);
    cr_assert_eq (rc, -1, "b's failed write fails the call");
    cr_assert_eq (kp_log_synced (a), 5, "a is synced all the same");
    cr_assert_eq (kp_log_sync_count (a), 1);
    cr_assert_eq (kp_log_synced (b), 200);
    cr_assert_eq (kp_log_sync_count (b), 0);
    cr_assert_eq (s_file_size (path_b), good_b, "b cut back to its last whole record");

    //  b refuses from now on, as after kp_log_sync; a goes on
    s_append_records (a, 1, NULL);
    cr_assert_eq (kp_log_sync_both (a, b), -1);
    cr_assert_eq (kp_log_synced (a), 6);
    cr_assert_eq (kp_log_sync_count (a), 2);
    cr_assert_eq (kp_log_sync (b), -1);
    cr_assert_eq (kp_log_sync_both (NULL, b), -1);
    cr_assert_eq (kp_log_sync_both (a, NULL), 0);
    kp_log_destroy (&a);
    kp_log_destroy (&b);

    a = s_open (dir_a, SEGMENT_LARGE, false, KP_LOG_OK);
    b = s_open (dir_b, SEGMENT_LARGE, false, KP_LOG_OK);
    cr_assert_eq (s_replay_check (a), 6);
    cr_assert_eq (s_replay_check (b), 200);
    kp_log_destroy (&a);
    kp_log_destroy (&b);
    free (path_b);
    s_dir_remove (&dir_a);
    s_dir_remove (&dir_b);
}

//  The highest open file descriptor of this process now
static int
s_fd_top (void)
{
    DIR *handle = opendir ("/proc/self/fd");
    cr_assert_not_null (handle);
    int top = -1;
    struct dirent *entry;
    while ((entry = readdir (handle)))
        if (entry->d_name [0] != '.' && atoi (entry->d_name) > top)
            top = atoi (entry->d_name);
    closedir (handle);
    return top;
}

Test (kp_log, sync_both_syncs_in_turn_when_its_thread_cannot_start)
{
    char *dir_a = kp_test_tempdir ();
    char *dir_b = kp_test_tempdir ();
    kp_log_t *a = s_open (dir_a, SEGMENT_LARGE, true, KP_LOG_OK);
    kp_log_t *b = s_open (dir_b, SEGMENT_LARGE, true, KP_LOG_OK);
    s_append_records (a, 5, NULL);
    s_append_records (b, 8, NULL);
    int threads = s_thread_count ();

    //  No descriptor left for the helper's socket pair: lower the limit to
    //  the highest one open, and fill every free number below it. CZMQ
    //  starts first, as in the broker: its first log line would need some.
    zsys_init ();
    struct rlimit saved, limit;
    cr_assert_eq (getrlimit (RLIMIT_NOFILE, &saved), 0);
    limit = saved;
    limit.rlim_cur = (rlim_t) s_fd_top () + 1;
    cr_assert_eq (setrlimit (RLIMIT_NOFILE, &limit), 0);
    int fillers [256];
    int filled = 0;
    while (filled < 256 && (fillers [filled] = open ("/dev/null", O_RDONLY)) >= 0)
        filled++;
    int err = errno;
    int rc = kp_log_sync_both (a, b);
    while (filled > 0)
        close (fillers [--filled]);
    cr_assert_eq (setrlimit (RLIMIT_NOFILE, &saved), 0);
    cr_assert_eq (err, EMFILE);
    cr_assert_eq (rc, 0);
    cr_assert_eq (kp_log_synced (a), 5);
    cr_assert_eq (kp_log_synced (b), 8);
    cr_assert_eq (kp_log_sync_count (a), 1);
    cr_assert_eq (kp_log_sync_count (b), 1);

    //  Not tried again: still in turn, with descriptors to spare
    s_append_records (a, 1, NULL);
    s_append_records (b, 1, NULL);
    cr_assert_eq (kp_log_sync_both (a, b), 0);
    cr_assert_eq (kp_log_sync_count (a), 2);
    cr_assert_eq (kp_log_sync_count (b), 2);
    cr_assert_eq (s_thread_count (), threads, "no helper thread");
    kp_log_destroy (&a);
    kp_log_destroy (&b);

    a = s_open (dir_a, SEGMENT_LARGE, false, KP_LOG_OK);
    b = s_open (dir_b, SEGMENT_LARGE, false, KP_LOG_OK);
    cr_assert_eq (s_replay_check (a), 6);
    cr_assert_eq (s_replay_check (b), 9);
    kp_log_destroy (&a);
    kp_log_destroy (&b);
    s_dir_remove (&dir_a);
    s_dir_remove (&dir_b);
}

Test (kp_log, sync_both_of_one_log_twice_is_a_programming_error, .signal = SIGABRT)
{
    char *dir = kp_test_tempdir ();
    kp_log_t *log = s_open (dir, SEGMENT_LARGE, true, KP_LOG_OK);
    //  Remove the temp dir first: the assert ends this process
    s_dir_remove (&dir);
    int rc = kp_log_sync_both (log, log);
    cr_assert_fail ("kp_log_sync_both (log, log) returned %d", rc);
}

//  --------------------------------------------------------------------------
//  Zero space written ahead (docs/LOG_FORMAT.md, "Zero space"): appends
//  land inside the file, so its size does not change and fdatasync has no
//  inode to write; zeros after the last record are free space

Test (kp_log, the_file_size_stays_put_while_appends_fill_the_zero_space)
{
    char *dir = kp_test_tempdir ();
    kp_log_t *log = s_open (dir, SEGMENT_LARGE, true, KP_LOG_OK);
    char *path = s_segment_path (dir, 0);
    cr_assert_eq (s_file_size (path), HEADER_SIZE, "no zero space before a sync");
    s_append_records (log, 1, NULL);
    cr_assert_eq (kp_log_sync (log), 0);
    uint64_t allocated = s_file_size (path);
    cr_assert_geq (allocated, s_record_offset (1) + 64 * 1024);
    cr_assert_eq (allocated % 4096, 0);

    //  Appends and syncs within the zero space leave the size alone; the
    //  writes ahead are not counted as syncs of records
    uint64_t records = 1;
    while (s_record_offset (records + 20) + 32 * 1024 < allocated) {
        s_append_records (log, 20, NULL);
        records += 20;
        cr_assert_eq (kp_log_sync (log), 0);
        cr_assert_eq (s_file_size (path), allocated);
        cr_assert_eq (kp_log_end (log), s_record_offset (records));
    }
    cr_assert_eq (kp_log_sync_count (log), 1 + (records - 1) / 20);
    cr_assert (s_file_zero_from (path, s_record_offset (records)));

    //  Near the end, a sync writes the next, larger, chunk of zeros ahead
    while (s_file_size (path) == allocated) {
        s_append_records (log, 20, NULL);
        records += 20;
        cr_assert_eq (kp_log_sync (log), 0);
    }
    cr_assert_geq (s_file_size (path), s_record_offset (records) + 128 * 1024,
                   "the chunk doubled");
    cr_assert (s_file_zero_from (path, s_record_offset (records)));
    cr_assert_eq (s_log_end (path), s_record_offset (records));
    kp_log_destroy (&log);
    log = s_open (dir, SEGMENT_LARGE, false, KP_LOG_OK);
    cr_assert_eq (s_replay_check (log), records);
    kp_log_destroy (&log);
    free (path);
    s_dir_remove (&dir);
}

Test (kp_log, reopen_of_a_log_with_zero_space_is_clean_and_appends_continue_at_its_end)
{
    char *dir = s_log_make (5, SEGMENT_LARGE);
    char *path = s_segment_path (dir, 0);
    uint64_t allocated = s_file_size (path);
    cr_assert_gt (allocated, s_record_offset (5));
    kp_log_t *log = s_open (dir, SEGMENT_LARGE, false, KP_LOG_OK);
    cr_assert_eq (kp_log_size (log), 5);
    cr_assert_eq (kp_log_end (log), s_record_offset (5));
    cr_assert_eq (s_replay_check (log), 5);
    uint64_t positions [8];
    for (uint64_t seq = 0; seq < 5; seq++)
        cr_assert_eq (kp_log_seek (log, seq, &positions [seq]), 0);
    s_append_records (log, 3, positions + 5);
    cr_assert_eq (positions [5], s_record_offset (5), "appends go on at the last record");
    cr_assert_eq (kp_log_sync (log), 0);
    cr_assert_eq (s_file_size (path), allocated);
    cr_assert_eq (kp_log_next_pos (log, positions [7], s_payload_size (7)),
                  kp_log_end (log));
    kp_log_destroy (&log);

    log = s_open (dir, SEGMENT_LARGE, false, KP_LOG_OK);
    s_replay_t replay = { 0, 0, positions, true };
    cr_assert_eq (kp_log_replay (log, s_replay_visit, &replay), 0);
    cr_assert (replay.all_good);
    cr_assert_eq (replay.count, 8);
    kp_log_set_cache (log, 0);
    for (uint64_t seq = 0; seq < 8; seq++) {
        size_t size;
        const uint8_t *data = kp_log_read (log, positions [seq], &size);
        cr_assert (data && s_payload_is (seq, data, size));
    }
    size_t size;
    cr_assert_null (kp_log_read (log, kp_log_end (log), &size),
                    "zero space is no record");
    kp_log_destroy (&log);

    //  Read-only too, and the audit's view: nothing changes on disk
    kp_log_status_t status;
    log = kp_log_open_readonly (dir, &status);
    cr_assert_not_null (log);
    cr_assert_eq (status, KP_LOG_OK);
    cr_assert_eq (kp_log_size (log), 8);
    cr_assert_eq (kp_log_end (log), s_record_offset (8));
    cr_assert_eq (s_replay_check (log), 8);
    kp_log_destroy (&log);
    cr_assert_eq (s_file_size (path), allocated);
    free (path);
    s_dir_remove (&dir);
}

Test (kp_log, zeros_after_the_last_record_are_free_space_not_a_torn_tail)
{
    //  Any number of zeros, after a log with or without zero space of its
    //  own: clean, even without load_truncated, and left as they are
    static const size_t counts [] = { 1, 7, 8, 4096, 100000 };
    for (size_t index = 0; index < sizeof counts / sizeof counts [0]; index++) {
        char *dir = s_log_make (5, SEGMENT_LARGE);
        char *path = s_segment_path (dir, 0);
        cr_assert_eq (truncate (path, (off_t) (s_record_offset (5) + counts [index])), 0);
        kp_log_t *log = s_open (dir, SEGMENT_LARGE, false, KP_LOG_OK);
        cr_assert_eq (kp_log_size (log), 5);
        cr_assert_eq (kp_log_end (log), s_record_offset (5));
        kp_log_destroy (&log);
        cr_assert_eq (s_file_size (path), s_record_offset (5) + counts [index]);
        free (path);
        s_dir_remove (&dir);
    }
}

Test (kp_log, a_zero_length_frame_followed_by_data_is_corruption)
{
    //  Zeros where a frame header should be, then non-zero bytes: not free
    //  space (free space is zeros to the end of the file), and not a torn
    //  frame (a length of 0 is never written)
    static const uint64_t garbage_at [] = { 8, 9, 1000, 60000 };
    for (size_t index = 0; index < sizeof garbage_at / sizeof garbage_at [0]; index++) {
        char *dir = s_log_make (5, SEGMENT_LARGE);
        char *path = s_segment_path (dir, 0);
        cr_assert_gt (s_file_size (path), s_record_offset (5) + garbage_at [index] + 2);
        s_file_write_at (path, s_record_offset (5) + garbage_at [index], "\x55\x66", 2);
        s_assert_corrupt (dir, 0, SEGMENT_LARGE);
        free (path);
        s_dir_remove (&dir);
    }
}

Test (kp_log, a_torn_frame_with_data_after_its_end_is_corruption)
{
    //  A frame that fails its checksum, zeros, then a non-zero byte past the
    //  frame's claimed end: more than a torn write leaves
    char *dir = s_log_make (5, SEGMENT_LARGE);
    char *path = s_segment_path (dir, 0);
    uint64_t end = s_record_offset (5);
    uint8_t bytes [108];
    s_put_u32 (bytes, 100);
    s_put_u32 (bytes + 4, 0x12345678);
    memset (bytes + 8, 0x33, 50);
    memset (bytes + 58, 0, 50);
    s_file_write_at (path, end, bytes, sizeof bytes);
    s_file_write_at (path, end + 300, "\x01", 1);
    s_assert_corrupt (dir, 0, SEGMENT_LARGE);
    //  Without that byte it is a torn tail: zeroed with load_truncated
    s_file_write_at (path, end + 300, "", 1);
    s_open (dir, SEGMENT_LARGE, false, KP_LOG_CORRUPT);
    kp_log_t *log = s_open (dir, SEGMENT_LARGE, true, KP_LOG_TRUNCATED);
    cr_assert_eq (kp_log_size (log), 5);
    kp_log_destroy (&log);
    cr_assert (s_file_zero_from (path, end));
    log = s_open (dir, SEGMENT_LARGE, false, KP_LOG_OK);
    kp_log_destroy (&log);
    free (path);
    s_dir_remove (&dir);
}

Test (kp_log, a_rollover_cuts_the_full_segment_to_its_records)
{
    //  Sealed segments end at their last record; the last has zero space
    size_t segment_size = 16 * 1024;
    char *dir = kp_test_tempdir ();
    kp_log_t *log = s_open (dir, segment_size, true, KP_LOG_OK);
    uint64_t records = 0;
    while (records < 1000) {
        s_append_records (log, 10, NULL);
        records += 10;
        cr_assert_eq (kp_log_sync (log), 0);
    }
    kp_log_destroy (&log);
    uint64_t starts [1000];
    size_t segments = s_segment_starts (records, segment_size, starts, 1000);
    cr_assert_geq (segments, 3);
    for (size_t index = 0; index < segments; index++) {
        char *path = s_segment_path (dir, starts [index]);
        uint64_t size = s_file_size (path);
        cr_assert_leq (size, segment_size, "zero space stops at segment-size");
        if (index + 1 < segments)
            cr_assert_eq (size, s_log_end (path), "sealed segment %zu", index);
        else {
            cr_assert_gt (size, s_log_end (path));
            cr_assert (s_file_zero_from (path, s_log_end (path)));
        }
        free (path);
    }
    log = s_open (dir, segment_size, false, KP_LOG_OK);
    cr_assert_eq (s_replay_check (log), records);
    kp_log_destroy (&log);
    s_dir_remove (&dir);
}

Test (kp_log, zero_space_the_file_size_limit_refuses_is_no_error)
{
    //  The write ahead fails (as on a full disk): the sync still succeeds,
    //  the file is cut back to its records, and appends go on until they
    //  themselves reach the limit, exactly where they would have failed
    char *dir = kp_test_tempdir ();
    kp_log_t *log = s_open (dir, SEGMENT_LARGE, false, KP_LOG_OK);
    char *path = s_segment_path (dir, 0);
    uint64_t limit = 4096;
    struct rlimit saved = s_file_limit (limit);
    s_append_records (log, 1, NULL);
    int rc = kp_log_sync (log);
    uint64_t size_after = s_file_size (path);
    uint64_t records = 1;
    int append_rc = 0, sync_rc = 0;
    while (append_rc == 0 && sync_rc == 0 && records < 1000) {
        uint8_t payload [128];
        s_payload_fill (records, payload, s_payload_size (records));
        uint64_t seq, pos;
        append_rc = kp_log_append (log, payload, s_payload_size (records), &seq, &pos);
        if (append_rc == 0) {
            records++;
            sync_rc = kp_log_sync (log);
        }
    }
    cr_assert_eq (setrlimit (RLIMIT_FSIZE, &saved), 0);
    cr_assert_eq (rc, 0, "a failed write ahead fails no sync");
    cr_assert_eq (size_after, s_record_offset (1), "cut back to the records");
    cr_assert_eq (sync_rc, -1, "the record that passes the limit fails");
    uint64_t kept = records - 1;
    cr_assert_leq (s_record_offset (kept), limit);
    cr_assert_gt (s_record_offset (kept + 1), limit);
    cr_assert_eq (s_file_size (path), s_record_offset (kept));
    kp_log_destroy (&log);
    log = s_open (dir, SEGMENT_LARGE, false, KP_LOG_OK);
    cr_assert_eq (s_replay_check (log), kept);
    //  With room again, the next sync writes zeros ahead
    s_append_records (log, 1, NULL);
    cr_assert_eq (kp_log_sync (log), 0);
    cr_assert_gt (s_file_size (path), s_record_offset (kept + 1));
    kp_log_destroy (&log);
    free (path);
    s_dir_remove (&dir);
}
