/*  =========================================================================
    kp_log - append-only segmented log: framing, group commit, recovery

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
@header
    A kp_log_t is a directory of segment files, NNNNNNNNNNNNNNNNNNNN.kplog,
    named by the sequence number of their first record. Each starts with a
    16-byte header ("KPLOG001" + first seq, u64 LE) and holds framed
    records: [u32 length LE][u32 CRC32C of payload LE][payload]. Only the
    last segment takes appends. The byte format and the recovery rules are
    in docs/LOG_FORMAT.md. Owned by one thread; not thread-safe, but for
    the helper thread of kp_log_sync_both (self, other), which only calls
    fdatasync on the descriptor of other's last segment, passed to it over
    a socket pair, while the owner waits for its answer: it shares no memory.

    One buffer per log holds the end of the last segment: first the
    cache, bytes [written - cached, written) that are in the file already,
    then the pending bytes, appended frames not written yet (up to
    S_WRITE_BUFFER, or one larger frame). Pending bytes reach the file with
    one write when kp_log_sync is called, when the next frame would pass
    S_WRITE_BUFFER, before a rollover, before replay or erase, and on
    destroy; then they simply count as cached. After each write, once the
    cache holds more than 1.5 times its budget (kp_log_set_cache), it is
    cut to exactly the last budget bytes, by moving them to the front (a
    move of at most the budget per half a budget written). The cut may
    fall inside a record: a record that starts before the cache is read
    from the file, and since the cache holds the file's bytes, any read
    gives what a read of the file would. (Cutting at a record boundary
    would mean walking the frame headers of cold memory, one cache miss
    per record: it cost more than the move.) So every record that starts
    within the last budget bytes written to the last segment, and every
    pending one, is read from memory: a record read back a few group
    commits after its write costs no pread. A rollover empties the cache
    (it is of the last segment only).

    The last segment's file is longer than its records: after a sync,
    s_prealloc writes zeros ahead (allocated is the file size, written the
    end of the records), so that appends, pwrites at written, do not
    change the file's size and fdatasync writes no inode. Open takes zeros
    after the last record for free space (s_tail_classify); a rollover
    cuts them off the full segment.
@end
*/
#include <dirent.h>
#if defined (__x86_64__)
#   include <nmmintrin.h>
#endif
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include "kp_log.h"

#define S_MAGIC             "KPLOG001"  //  first bytes of every segment
#define S_MAGIC_SIZE        8
#define S_HEADER_SIZE       16          //  segment header: magic + first seq
#define S_FRAME_SIZE        8           //  record frame: length + CRC32C
#define S_SUFFIX            ".kplog"    //  segment file names end in this
#define S_NAME_DIGITS       20          //  zero-padded first seq in the name
#define S_OFFSET_BITS       40          //  pos = segment index << 40 | offset
#define S_OFFSET_MASK       ((UINT64_C (1) << S_OFFSET_BITS) - 1)
#define S_SEGMENT_MAX       (UINT64_C (1) << (64 - S_OFFSET_BITS))
#define S_SCAN_CHUNK        (1024 * 1024)   //  read-ahead of open and replay
#define S_READ_AHEAD        4096            //  first pread of kp_log_read
#define S_RESYNC_BUDGET     (256u * 1024 * 1024)
#define S_ERROR_QUIET_MS    30000           //  one read-error line per 30 s
#define S_WRITE_START       (64 * 1024)     //  first size of the write buffer
#define S_WRITE_BUFFER      (1024 * 1024)   //  a batch is written when this full
#define S_CACHE_DEFAULT     (1024 * 1024)   //  cache budget of a log by default
#define S_PREALLOC_FIRST    (64 * 1024)     //  first zeros written ahead after open
#define S_PREALLOC_MAX      (8 * 1024 * 1024)   //  the most written ahead at once
#define S_PREALLOC_ALIGN    4096            //  zero space ends on a page boundary

//  One segment file. Every segment but the last is full and immutable.
typedef struct {
    uint64_t first_seq;             //  seq of its first record
    uint64_t size;                  //  bytes: header + whole records
    int fd;                         //  open file, -1 if none
    char *path;                     //  dir/NNNNNNNNNNNNNNNNNNNN.kplog
} s_segment_t;

struct _kp_log_t {
    char *dir;                      //  the log directory
    int dir_fd;                     //  dir, open for fsync after creates
    size_t segment_size;            //  roll over rather than pass this
    s_segment_t *segments;          //  in seq order; the last takes appends
    size_t segment_count;           //  segments in use
    size_t segment_limit;           //  segments allocated
    uint64_t next_seq;              //  seq of the next append = records
    uint64_t synced;                //  records known durable
    uint64_t sync_count;            //  fdatasync calls since open
    bool read_only;                 //  opened for reading: never writes
    bool write_failed;              //  a write failed: appends refused
    bool sync_failed;               //  fdatasync failed: all refused
    uint8_t *read_buffer;           //  frame + payload for kp_log_read
    size_t read_limit;              //  its allocated size
    uint8_t *scan_buffer;           //  read-ahead for open and replay
    size_t scan_limit;              //  its allocated size
    int64_t read_error_ms;          //  when the last read error was logged
    uint64_t read_errors_quiet;     //  read errors not logged since then
    uint8_t *buffer;                //  the cache, then the pending frames
    size_t buffer_limit;            //  its allocated size
    size_t cached;                  //  the last bytes written, at its start
    size_t pending_fill;            //  appended bytes after them, not written
    size_t cache_budget;            //  written bytes kept (kp_log_set_cache)
    uint64_t written;               //  bytes of the last segment in its file
    uint64_t allocated;             //  its file size: written + zero space
    uint64_t prealloc_chunk;        //  zeros the next extension writes ahead
    bool prealloc_off;              //  an extension failed in this segment
    uint64_t read_misses;           //  kp_log_read calls that read the file
    uint64_t verified;              //  records whose CRC open checked
    bool lost;                      //  a failed write lost appended records
    pthread_t helper;               //  kp_log_sync_both's fdatasync thread
    bool helper_running;            //  helper started and not yet joined
    bool helper_refused;            //  could not start: sync both in turn
    int helper_channel;             //  our end of the helper's socket pair
};

//  A window of one segment file in the log's scan buffer, refilled with
//  large sequential reads
typedef struct {
    int fd;                         //  the segment file
    uint64_t end;                   //  reads stop at this file offset
    uint64_t start;                 //  file offset of scan_buffer [0]
    size_t fill;                    //  valid bytes in scan_buffer
} s_window_t;

//  How a walk over a segment's records ended
typedef enum {
    S_WALK_END,                     //  all records good up to the end
    S_WALK_BAD,                     //  the frame at offset is bad
    S_WALK_STOPPED,                 //  the visitor stopped the walk
    S_WALK_IOERR                    //  a read failed
} s_walk_status_t;

//  The outcome of walking the records of one segment
typedef struct {
    s_walk_status_t status;         //  how the walk ended
    uint64_t offset;                //  where: end, or the bad frame
    uint64_t records;               //  good records before offset
    const char *reason;             //  S_WALK_BAD: what is wrong
    int err;                        //  S_WALK_IOERR: errno
} s_walk_t;

//  --------------------------------------------------------------------------
//  Little-endian encoding of the frame and header fields

static void
s_put_u32 (uint8_t *out, uint32_t value)
{
    for (int index = 0; index < 4; index++)
        out [index] = (uint8_t) (value >> (8 * index));
}

static uint32_t
s_get_u32 (const uint8_t *in)
{
    return (uint32_t) in [0] | (uint32_t) in [1] << 8
         | (uint32_t) in [2] << 16 | (uint32_t) in [3] << 24;
}

static void
s_put_u64 (uint8_t *out, uint64_t value)
{
    for (int index = 0; index < 8; index++)
        out [index] = (uint8_t) (value >> (8 * index));
}

static uint64_t
s_get_u64 (const uint8_t *in)
{
    return (uint64_t) s_get_u32 (in) | (uint64_t) s_get_u32 (in + 4) << 32;
}

//  --------------------------------------------------------------------------
//  The position of the record at offset in segment index

static uint64_t
s_pos (size_t index, uint64_t offset)
{
    return (uint64_t) index << S_OFFSET_BITS | offset;
}

//  --------------------------------------------------------------------------
//  Read exactly size bytes at offset. Returns 0, or -1 with errno set (EIO
//  if the file ends first).

static int
s_pread_full (int fd, uint8_t *buffer, size_t size, uint64_t offset)
{
    while (size > 0) {
        ssize_t rc = pread (fd, buffer, size, (off_t) offset);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0)
            return -1;
        if (rc == 0) {
            errno = EIO;
            return -1;
        }
        buffer += rc;
        size -= (size_t) rc;
        offset += (uint64_t) rc;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Write all of iov, looping over short writes and EINTR (a full disk shows
//  up first as a short write). Returns 0, or -1 with errno set. Changes iov.

static int
s_writev_full (int fd, struct iovec *iov, int count)
{
    while (count > 0) {
        ssize_t rc = writev (fd, iov, count);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0)
            return -1;
        if (rc == 0) {
            errno = EIO;            //  never for regular files; do not spin
            return -1;
        }
        size_t done = (size_t) rc;
        while (count > 0 && done >= iov->iov_len) {
            done -= iov->iov_len;
            iov++;
            count--;
        }
        if (count > 0) {
            iov->iov_base = (uint8_t *) iov->iov_base + done;
            iov->iov_len -= done;
        }
    }
    return 0;
}


//  --------------------------------------------------------------------------
//  Make bytes [offset, offset + want) of the window's file available in the
//  scan buffer and return a pointer to the byte at offset. Reads ahead in
//  large chunks; keeps what is already buffered past offset. The pointer is
//  valid until the next call. Returns NULL on a read error (errno set).

static const uint8_t *
s_window (kp_log_t *self, s_window_t *window, uint64_t offset, size_t want)
{
    assert (offset + want <= window->end);
    uint64_t buffered_end = window->start + window->fill;
    if (offset >= window->start && offset + want <= buffered_end)
        return self->scan_buffer + (offset - window->start);

    size_t keep = 0;
    if (offset >= window->start && offset < buffered_end) {
        keep = (size_t) (buffered_end - offset);
        memmove (self->scan_buffer, self->scan_buffer + (offset - window->start), keep);
    }
    window->start = offset;
    window->fill = keep;
    size_t limit = want > S_SCAN_CHUNK? want: S_SCAN_CHUNK;
    if (self->scan_limit < limit) {
        uint8_t *buffer = (uint8_t *) realloc (self->scan_buffer, limit);
        if (!buffer) {
            errno = ENOMEM;
            return NULL;
        }
        self->scan_buffer = buffer;
        self->scan_limit = limit;
    }
    while (window->fill < want) {
        uint64_t at = window->start + window->fill;
        size_t room = self->scan_limit - window->fill;
        if (room > window->end - at)
            room = (size_t) (window->end - at);
        ssize_t rc = pread (window->fd, self->scan_buffer + window->fill, room,
                            (off_t) at);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0)
            return NULL;
        if (rc == 0) {
            errno = EIO;            //  the file is shorter than it was
            return NULL;
        }
        window->fill += (size_t) rc;
    }
    return self->scan_buffer;
}

//  --------------------------------------------------------------------------
//  Free the scan buffer after open or replay (it may have grown to the
//  largest record)

static void
s_scan_buffer_release (kp_log_t *self)
{
    free (self->scan_buffer);
    self->scan_buffer = NULL;
    self->scan_limit = 0;
}

//  --------------------------------------------------------------------------
//  Walk the records of segment index from its header up to end, checking
//  every length and every checksum but those of records below seq trusted
//  (checked already by open), and calling visit (if not NULL) for each.
//  Reports in *walk how and where it stopped.

static void
s_walk (kp_log_t *self, size_t index, uint64_t end, uint64_t trusted,
        kp_log_visit_fn *visit, void *arg, s_walk_t *walk)
{
    //  Copy what we need: a visitor that appends may move the array
    int fd = self->segments [index].fd;
    uint64_t seq = self->segments [index].first_seq;
    s_window_t window = { fd, end, 0, 0 };
    uint64_t offset = S_HEADER_SIZE;
    walk->status = S_WALK_END;
    walk->offset = offset;
    walk->records = 0;
    walk->reason = NULL;
    walk->err = 0;

    while (offset < end) {
        if (end - offset < S_FRAME_SIZE) {
            walk->status = S_WALK_BAD;
            walk->reason = "record header cut short by the end of the file";
            return;
        }
        const uint8_t *frame = s_window (self, &window, offset, S_FRAME_SIZE);
        if (!frame)
            break;
        uint32_t length = s_get_u32 (frame);
        uint32_t checksum = s_get_u32 (frame + 4);
        if (length == 0 || length > KP_LOG_MAX_RECORD) {
            walk->status = S_WALK_BAD;
            walk->reason = "record length out of range";
            return;
        }
        if (length > end - offset - S_FRAME_SIZE) {
            walk->status = S_WALK_BAD;
            walk->reason = "record runs past the end of the file";
            return;
        }
        frame = s_window (self, &window, offset, S_FRAME_SIZE + length);
        if (!frame)
            break;
        if (seq >= trusted
        &&  kp_crc32c (0, frame + S_FRAME_SIZE, length) != checksum) {
            walk->status = S_WALK_BAD;
            walk->reason = "checksum mismatch";
            return;
        }
        if (visit
        &&  visit (frame + S_FRAME_SIZE, length, seq, s_pos (index, offset), arg)) {
            walk->status = S_WALK_STOPPED;
            return;
        }
        seq++;
        walk->records++;
        offset += S_FRAME_SIZE + length;
        walk->offset = offset;
    }
    if (offset < end) {
        walk->status = S_WALK_IOERR;
        walk->err = errno;
    }
}

//  --------------------------------------------------------------------------
//  Are the bytes [offset, end) of the file all zero? Sets *zero_p; returns
//  0, or -1 on a read error.

static int
s_all_zero (kp_log_t *self, int fd, uint64_t offset, uint64_t end, bool *zero_p)
{
    s_window_t window = { fd, end, 0, 0 };
    *zero_p = true;
    while (offset < end && *zero_p) {
        size_t want = end - offset < S_SCAN_CHUNK? (size_t) (end - offset): S_SCAN_CHUNK;
        const uint8_t *bytes = s_window (self, &window, offset, want);
        if (!bytes)
            return -1;
        for (size_t index = 0; index < want; index++) {
            if (bytes [index]) {
                *zero_p = false;
                break;
            }
        }
        offset += want;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Where the bytes [offset, end) of the file stop being data: the offset
//  after their last non-zero byte, or offset if they are all zero. Sets
//  *used_p; returns 0, or -1 on a read error.

static int
s_used_end (kp_log_t *self, int fd, uint64_t offset, uint64_t end, uint64_t *used_p)
{
    s_window_t window = { fd, end, 0, 0 };
    *used_p = offset;
    while (offset < end) {
        size_t want = end - offset < S_SCAN_CHUNK? (size_t) (end - offset): S_SCAN_CHUNK;
        const uint8_t *bytes = s_window (self, &window, offset, want);
        if (!bytes)
            return -1;
        for (size_t index = want; index > 0; index--) {
            if (bytes [index - 1]) {
                *used_p = offset + index;
                break;
            }
        }
        offset += want;
    }
    return 0;
}

//  What follows the last good record of the last segment
typedef enum {
    S_TAIL_FREE,                    //  zero bytes only: free space, clean
    S_TAIL_TORN,                    //  a torn last frame (and zeros): cut it
    S_TAIL_CORRUPT                  //  anything else: refuse
} s_tail_t;

//  --------------------------------------------------------------------------
//  The frame at offset in the last segment, whose file ends at end, is bad
//  (or is the zero space after the last record): what is it? Free space if
//  every byte from offset on is zero. A torn tail if the non-zero bytes
//  from offset on (up to *used_p) are fewer than a frame header, or if
//  they all lie inside one frame with a valid length (which passes the end
//  of the file or fails its checksum) and no valid record starts inside
//  that frame: what a torn write leaves before the zero space or the end
//  of the file. Anything else (a bad length, non-zero bytes after the bad
//  frame's end, a valid record inside it) is corruption. Sets *tail_p and
//  *used_p; returns 0, or -1 on a read error.

static int
s_tail_classify (kp_log_t *self, int fd, uint64_t offset, uint64_t end,
                 s_tail_t *tail_p, uint64_t *used_p)
{
    *tail_p = S_TAIL_CORRUPT;
    if (s_used_end (self, fd, offset, end, used_p))
        return -1;
    uint64_t used = *used_p;
    if (used == offset) {
        *tail_p = S_TAIL_FREE;
        return 0;
    }
    if (used - offset < S_FRAME_SIZE) {
        *tail_p = S_TAIL_TORN;      //  part of a frame header, then zeros or EOF
        return 0;
    }
    s_window_t window = { fd, end, 0, 0 };
    const uint8_t *tail = s_window (self, &window, offset, S_FRAME_SIZE);
    if (!tail)
        return -1;
    uint32_t length = s_get_u32 (tail);
    if (length == 0 || length > KP_LOG_MAX_RECORD
    ||  offset + S_FRAME_SIZE + length < used)
        return 0;

    //  The non-zero bytes are one frame, at most KP_LOG_MAX_RECORD + 8
    //  bytes: look in it (as far as the file holds it) for any valid
    //  record, which would mean the length field was damaged, not the
    //  write torn. The search is bounded; past the budget we cannot tell,
    //  and refuse.
    uint64_t left = end - offset;
    if (left > S_FRAME_SIZE + (uint64_t) length)
        left = S_FRAME_SIZE + (uint64_t) length;
    tail = s_window (self, &window, offset, (size_t) left);
    if (!tail)
        return -1;
    size_t budget = S_RESYNC_BUDGET;
    for (size_t at = 1; at + S_FRAME_SIZE < left; at++) {
        uint32_t candidate = s_get_u32 (tail + at);
        if (candidate == 0 || candidate > left - at - S_FRAME_SIZE)
            continue;
        if (candidate > budget)
            return 0;
        budget -= candidate;
        uint32_t checksum = s_get_u32 (tail + at + 4);
        if (kp_crc32c (0, tail + at + S_FRAME_SIZE, candidate) == checksum)
            return 0;
    }
    *tail_p = S_TAIL_TORN;
    return 0;
}

//  --------------------------------------------------------------------------
//  Write zero bytes over [offset, end) of the file with pwrite (through a
//  descriptor without O_APPEND), looping over short writes and EINTR.
//  Returns 0, or -1 with errno set.

static int
s_zeros_write (int fd, uint64_t offset, uint64_t end)
{
    static const uint8_t zeros [64 * 1024];
    while (offset < end) {
        size_t chunk = end - offset < sizeof zeros? (size_t) (end - offset): sizeof zeros;
        if (kp_pwrite_full (fd, zeros, chunk, offset, NULL))
            return -1;
        offset += chunk;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Append a segment entry (no file yet) for first_seq; returns it

static s_segment_t *
s_segment_add (kp_log_t *self, uint64_t first_seq)
{
    if (self->segment_count == self->segment_limit) {
        size_t limit = self->segment_limit? self->segment_limit * 2: 16;
        s_segment_t *segments = (s_segment_t *) realloc (self->segments,
                                                         limit * sizeof (s_segment_t));
        assert (segments);
        self->segments = segments;
        self->segment_limit = limit;
    }
    s_segment_t *segment = &self->segments [self->segment_count++];
    segment->first_seq = first_seq;
    segment->size = 0;
    segment->fd = -1;
    segment->path = zsys_sprintf ("%s/%0*llu%s", self->dir, S_NAME_DIGITS,
                                  (unsigned long long) first_seq, S_SUFFIX);
    assert (segment->path);
    return segment;
}

//  --------------------------------------------------------------------------
//  Drop the last segment entry, closing its file

static void
s_segment_pop (kp_log_t *self)
{
    assert (self->segment_count > 0);
    s_segment_t *segment = &self->segments [--self->segment_count];
    if (segment->fd >= 0)
        close (segment->fd);
    free (segment->path);
    segment->path = NULL;
    segment->fd = -1;
}

//  --------------------------------------------------------------------------
//  Create the segment for first_seq: write its header, fsync the file, then
//  fsync the directory, since a new file is durable only after its
//  directory entry is. Returns 0, or -1 (logged; no file is left behind).

static int
s_segment_create (kp_log_t *self, uint64_t first_seq)
{
    if (self->segment_count >= S_SEGMENT_MAX) {
        zsys_error ("kp_log: cannot create a segment in %s: the log has the most "
                    "segments a position can address; raise segment-size", self->dir);
        return -1;
    }
    s_segment_t *segment = s_segment_add (self, first_seq);
    uint8_t header [S_HEADER_SIZE];
    memcpy (header, S_MAGIC, S_MAGIC_SIZE);
    s_put_u64 (header + S_MAGIC_SIZE, first_seq);
    struct iovec iov = { header, sizeof header };

    segment->fd = open (segment->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (segment->fd >= 0
    &&  s_writev_full (segment->fd, &iov, 1) == 0
    &&  fsync (segment->fd) == 0
    &&  fsync (self->dir_fd) == 0) {
        segment->size = S_HEADER_SIZE;
        self->written = S_HEADER_SIZE;  //  the new last segment,
        self->allocated = S_HEADER_SIZE;    //  with no zero space yet,
        self->prealloc_off = false;
        self->cached = 0;               //  of which nothing is cached
        return 0;
    }
    int err = errno;
    zsys_error ("kp_log: cannot create segment %s: %s", segment->path, strerror (err));
    if (segment->fd >= 0)
        unlink (segment->path);     //  leave no half-made segment behind
    s_segment_pop (self);
    return -1;
}

//  --------------------------------------------------------------------------
//  Replace a segment's read-only descriptor by one for appends (which are
//  pwrites at the end of the records, not O_APPEND writes at the end of
//  the file: the file may end in zero space). Returns 0, or -1 (logged).

static int
s_segment_writable (s_segment_t *segment)
{
    int fd = open (segment->path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        zsys_error ("kp_log: cannot open %s for writing: %s", segment->path,
                    strerror (errno));
        return -1;
    }
    if (segment->fd >= 0)
        close (segment->fd);
    segment->fd = fd;
    return 0;
}

//  --------------------------------------------------------------------------
//  A sync has three parts, so that kp_log_sync_both can run the middle one
//  for one of its logs on another thread: s_sync_write (the write buffer to
//  the file; the log's thread), s_sync_data (the fdatasync alone; any
//  thread), s_sync_mark (the counters or the failed state; the log's
//  thread, after s_sync_data returned). kp_log_sync, kp_log_sync_both and
//  s_roll_over are made of them.

//  --------------------------------------------------------------------------
//  The fdatasync part of a sync: fdatasync fd. Touches no memory of any
//  log, so it may run on kp_log_sync_both's helper thread. Returns 0, or
//  the errno of the failure.

static int
s_sync_data (int fd)
{
    return fdatasync (fd) == 0? 0: errno;
}

//  --------------------------------------------------------------------------
//  The last part of a sync: s_sync_data of the last segment returned err,
//  after the write buffer was written. Counts the fdatasync and marks every
//  record durable. A failure is final: the kernel may have dropped the
//  dirty pages, so retrying could report success for lost data. Returns 0,
//  or -1 (logged) and the log refuses all further writes.

static int
s_sync_mark (kp_log_t *self, int err)
{
    assert (self->pending_fill == 0);
    if (err) {
        self->sync_failed = true;
        zsys_error ("kp_log: fdatasync of %s failed: %s; refusing all further writes; "
                    "restart to recover from what is on disk",
                    self->segments [self->segment_count - 1].path, strerror (err));
        return -1;
    }
    self->sync_count++;
    self->synced = self->next_seq;
    return 0;
}

//  --------------------------------------------------------------------------
//  fdatasync the last segment on this thread, the write buffer written:
//  s_sync_data then s_sync_mark. Returns 0, or -1 (logged) and the log
//  refuses all further writes.

static int
s_segment_sync (kp_log_t *self)
{
    return s_sync_mark (self, s_sync_data (self->segments [self->segment_count - 1].fd));
}

//  --------------------------------------------------------------------------
//  Parse a segment file name; returns 0 and sets *seq_p, or -1 if the name
//  is not 20 decimal digits and ".kplog".

static int
s_name_parse (const char *name, uint64_t *seq_p)
{
    if (strlen (name) != S_NAME_DIGITS + strlen (S_SUFFIX)
    ||  strcmp (name + S_NAME_DIGITS, S_SUFFIX) != 0)
        return -1;
    for (int index = 0; index < S_NAME_DIGITS; index++)
        if (name [index] < '0' || name [index] > '9')
            return -1;
    errno = 0;
    unsigned long long value = strtoull (name, NULL, 10);
    if (errno == ERANGE)
        return -1;
    *seq_p = (uint64_t) value;
    return 0;
}

//  --------------------------------------------------------------------------
//  qsort order of first seqs

static int
s_seq_compare (const void *left, const void *right)
{
    uint64_t a = *(const uint64_t *) left, b = *(const uint64_t *) right;
    return a < b? -1: a > b? 1: 0;
}

//  --------------------------------------------------------------------------
//  List the segments in the directory, sorted by first seq. Other files are
//  ignored (with a warning if they look like segments). Returns 0 and a new
//  array the caller frees, or -1 (logged).

static int
s_segments_list (kp_log_t *self, uint64_t **seqs_p, size_t *count_p)
{
    DIR *handle = opendir (self->dir);
    if (!handle) {
        zsys_error ("kp_log: cannot list %s: %s", self->dir, strerror (errno));
        return -1;
    }
    uint64_t *seqs = NULL;
    size_t count = 0, limit = 0;
    struct dirent *entry;
    errno = 0;
    while ((entry = readdir (handle))) {
        uint64_t seq;
        if (s_name_parse (entry->d_name, &seq) == 0) {
            if (count == limit) {
                limit = limit? limit * 2: 64;
                seqs = (uint64_t *) realloc (seqs, limit * sizeof (uint64_t));
                assert (seqs);
            }
            seqs [count++] = seq;
        }
        else {
            size_t length = strlen (entry->d_name);
            if (length >= strlen (S_SUFFIX)
            &&  strcmp (entry->d_name + length - strlen (S_SUFFIX), S_SUFFIX) == 0)
                zsys_warning ("kp_log: ignoring %s/%s: not a segment name",
                              self->dir, entry->d_name);
        }
        errno = 0;
    }
    int err = errno;
    closedir (handle);
    if (err) {
        zsys_error ("kp_log: cannot list %s: %s", self->dir, strerror (err));
        free (seqs);
        return -1;
    }
    if (count > 1)
        qsort (seqs, count, sizeof (uint64_t), s_seq_compare);
    *seqs_p = seqs;
    *count_p = count;
    return 0;
}

//  --------------------------------------------------------------------------
//  Open and check segment index, which must start at seq expected: name,
//  header, every record. Sets *records_p to its good records, *cut_p to
//  where a torn tail starts (0: the whole file is a torn creation; UINT64_MAX:
//  nothing torn) and *torn_end_p to where its non-zero bytes end; only the
//  last segment can be torn, or end in zero space. Returns KP_LOG_OK, or
//  KP_LOG_CORRUPT / KP_LOG_IOERR with one error line.

static kp_log_status_t
s_segment_check (kp_log_t *self, size_t index, bool last, uint64_t expected,
                 uint64_t *records_p, uint64_t *cut_p, uint64_t *torn_end_p)
{
    s_segment_t *segment = &self->segments [index];
    *records_p = 0;
    *cut_p = UINT64_MAX;
    *torn_end_p = 0;
    if (segment->first_seq != expected) {
        zsys_error ("kp_log: segment %s should start at seq %llu: a segment is missing "
                    "or misplaced; restore the segments from backup", segment->path,
                    (unsigned long long) expected);
        return KP_LOG_CORRUPT;
    }
    segment->fd = open (segment->path, O_RDONLY | O_CLOEXEC);
    struct stat info;
    if (segment->fd < 0 || fstat (segment->fd, &info)) {
        zsys_error ("kp_log: cannot open %s: %s", segment->path, strerror (errno));
        return KP_LOG_IOERR;
    }
    uint64_t file_size = (uint64_t) info.st_size;
    if (file_size < S_HEADER_SIZE) {
        if (last) {
            *cut_p = 0;             //  creation torn before its header
            return KP_LOG_OK;
        }
        zsys_error ("kp_log: segment %s at offset 0: shorter than its header; "
                    "restore it from backup", segment->path);
        return KP_LOG_CORRUPT;
    }
    uint8_t header [S_HEADER_SIZE];
    if (s_pread_full (segment->fd, header, S_HEADER_SIZE, 0)) {
        zsys_error ("kp_log: cannot read %s: %s", segment->path, strerror (errno));
        return KP_LOG_IOERR;
    }
    if (memcmp (header, S_MAGIC, S_MAGIC_SIZE) != 0) {
        bool zero = false;
        if (last && s_all_zero (self, segment->fd, 0, file_size, &zero)) {
            zsys_error ("kp_log: cannot read %s: %s", segment->path, strerror (errno));
            return KP_LOG_IOERR;
        }
        if (zero) {
            *cut_p = 0;             //  creation torn: blocks allocated, not written
            return KP_LOG_OK;
        }
        zsys_error ("kp_log: segment %s at offset 0: bad magic, not a ketenpost log "
                    "segment; restore it from backup", segment->path);
        return KP_LOG_CORRUPT;
    }
    uint64_t header_seq = s_get_u64 (header + S_MAGIC_SIZE);
    if (header_seq != segment->first_seq) {
        zsys_error ("kp_log: segment %s at offset 8: header says first seq %llu, the "
                    "name says otherwise; restore it from backup", segment->path,
                    (unsigned long long) header_seq);
        return KP_LOG_CORRUPT;
    }
    s_walk_t walk;
    s_walk (self, index, file_size, 0, NULL, NULL, &walk);
    if (walk.status == S_WALK_IOERR) {
        zsys_error ("kp_log: cannot read %s: %s", segment->path, strerror (walk.err));
        return KP_LOG_IOERR;
    }
    *records_p = walk.records;
    segment->size = walk.offset;
    if (walk.status == S_WALK_END)
        return KP_LOG_OK;

    assert (walk.status == S_WALK_BAD);
    if (last) {
        s_tail_t tail;
        uint64_t used;
        if (s_tail_classify (self, segment->fd, walk.offset, file_size, &tail, &used)) {
            zsys_error ("kp_log: cannot read %s: %s", segment->path, strerror (errno));
            return KP_LOG_IOERR;
        }
        if (tail == S_TAIL_FREE)
            return KP_LOG_OK;       //  zero space written ahead: the log is clean
        if (tail == S_TAIL_TORN) {
            *cut_p = walk.offset;
            *torn_end_p = used;
            return KP_LOG_OK;
        }
    }
    zsys_error ("kp_log: corrupt record in %s at offset %llu (%s), with more data after "
                "it; not opening: restore the segment from backup, or inspect it and "
                "truncate it at this offset by hand", segment->path,
                (unsigned long long) walk.offset, walk.reason);
    return KP_LOG_CORRUPT;
}

//  --------------------------------------------------------------------------
//  Load the log: check every segment in order, then cut a torn tail if
//  allowed, make the last segment writable (creating segment 0 in an empty
//  log) and durable. Nothing is changed on disk unless every check passed.

static kp_log_status_t
s_log_load (kp_log_t *self, bool load_truncated)
{
    uint64_t *seqs = NULL;
    size_t count = 0;
    if (s_segments_list (self, &seqs, &count))
        return KP_LOG_IOERR;

    kp_log_status_t status = KP_LOG_OK;
    uint64_t expected = 0;          //  records in the segments so far
    uint64_t cut = UINT64_MAX;      //  torn tail offset in the last segment
    uint64_t torn_end = 0;          //  where its non-zero bytes end
    for (size_t index = 0; index < count; index++) {
        s_segment_add (self, seqs [index]);
        uint64_t records;
        bool last = index + 1 == count;
        status = s_segment_check (self, index, last, expected, &records, &cut,
                                  &torn_end);
        if (status != KP_LOG_OK)
            goto cleanup;
        expected += records;
    }
    if (cut != UINT64_MAX && self->read_only) {
        zsys_error ("kp_log: torn tail in %s at offset %llu; a read-only open does not "
                    "cut it (if the broker is running, it may be writing just now: "
                    "copy the log and try again)",
                    self->segments [self->segment_count - 1].path, (unsigned long long) cut);
        status = KP_LOG_CORRUPT;
        goto cleanup;
    }
    if (cut != UINT64_MAX) {
        s_segment_t *last = &self->segments [self->segment_count - 1];
        if (!load_truncated) {
            if (cut == 0)
                zsys_error ("kp_log: segment %s at offset 0: its creation was torn (no "
                            "whole header); not removed because load-truncated is off: "
                            "set it to 1, or remove the file by hand", last->path);
            else
                zsys_error ("kp_log: torn tail in %s at offset %llu; not cut because "
                            "load-truncated is off: set it to 1 to cut it, or truncate "
                            "the file at this offset by hand", last->path,
                            (unsigned long long) cut);
            status = KP_LOG_CORRUPT;
            goto cleanup;
        }
        if (cut == 0) {
            if (unlink (last->path) || fsync (self->dir_fd)) {
                zsys_error ("kp_log: cannot remove torn segment %s: %s", last->path,
                            strerror (errno));
                status = KP_LOG_IOERR;
                goto cleanup;
            }
            zsys_warning ("kp_log: removed %s: its creation was torn", last->path);
            s_segment_pop (self);
        }
        else {
            if (s_segment_writable (last)) {
                status = KP_LOG_IOERR;
                goto cleanup;
            }
            //  Zero the torn bytes rather than truncate: the zero space
            //  after them stays, and the file size does not change
            if (s_zeros_write (last->fd, cut, torn_end) || fsync (last->fd)) {
                zsys_error ("kp_log: cannot cut torn tail of %s at offset %llu: %s",
                            last->path, (unsigned long long) cut, strerror (errno));
                status = KP_LOG_IOERR;
                goto cleanup;
            }
            zsys_warning ("kp_log: cut torn tail of %s at offset %llu", last->path,
                          (unsigned long long) cut);
        }
        status = KP_LOG_TRUNCATED;
    }
    if (self->read_only)
        ;                           //  nothing to create or make durable
    else
    if (self->segment_count == 0) {
        if (s_segment_create (self, 0)) {
            status = KP_LOG_IOERR;
            goto cleanup;
        }
    }
    else {
        //  What we read may still be only in the page cache (the last run
        //  was killed before its sync): make it durable before anyone acts
        //  on it, and make sure the last segment's directory entry is too.
        s_segment_t *last = &self->segments [self->segment_count - 1];
        if (s_segment_writable (last)) {
            status = KP_LOG_IOERR;
            goto cleanup;
        }
        if (fsync (last->fd) || fsync (self->dir_fd)) {
            zsys_error ("kp_log: fsync of %s failed: %s", last->path, strerror (errno));
            status = KP_LOG_IOERR;
            goto cleanup;
        }
    }
    self->next_seq = expected;
    self->synced = expected;
    self->verified = expected;
    if (self->segment_count > 0) {
        s_segment_t *last = &self->segments [self->segment_count - 1];
        self->written = last->size;
        struct stat info;
        if (fstat (last->fd, &info)) {
            zsys_error ("kp_log: cannot stat %s: %s", last->path, strerror (errno));
            status = KP_LOG_IOERR;
            goto cleanup;
        }
        //  The file is at least its records long: the rest is zero space
        self->allocated = (uint64_t) info.st_size > last->size?
                          (uint64_t) info.st_size: last->size;
    }

cleanup:
    free (seqs);
    s_scan_buffer_release (self);
    return status;
}


//  --------------------------------------------------------------------------
//  Open the log in dir, creating dir if missing; see kp_log.h

static kp_log_t *s_log_open (const char *dir, size_t segment_size, bool load_truncated,
                             bool read_only, kp_log_status_t *status_p);

kp_log_t *
kp_log_open (const char *dir, size_t segment_size, bool load_truncated,
             kp_log_status_t *status_p)
{
    return s_log_open (dir, segment_size, load_truncated, false, status_p);
}

//  --------------------------------------------------------------------------
//  Open for reading only; see kp_log.h

kp_log_t *
kp_log_open_readonly (const char *dir, kp_log_status_t *status_p)
{
    return s_log_open (dir, SIZE_MAX, false, true, status_p);
}

static kp_log_t *
s_log_open (const char *dir, size_t segment_size, bool load_truncated, bool read_only,
            kp_log_status_t *status_p)
{
    assert (dir);
    assert (segment_size > 0);
    assert (status_p);
    kp_log_t *self = (kp_log_t *) zmalloc (sizeof (kp_log_t));
    assert (self);
    self->dir = strdup (dir);
    assert (self->dir);
    self->dir_fd = -1;
    self->segment_size = segment_size;
    self->segments = NULL;
    self->segment_count = 0;
    self->segment_limit = 0;
    self->next_seq = 0;
    self->synced = 0;
    self->sync_count = 0;
    self->read_only = read_only;
    self->write_failed = read_only;     //  appends are refused
    self->sync_failed = false;
    self->read_buffer = NULL;
    self->read_limit = 0;
    self->scan_buffer = NULL;
    self->scan_limit = 0;
    self->read_error_ms = 0;
    self->read_errors_quiet = 0;
    self->buffer = NULL;
    self->buffer_limit = 0;
    self->cached = 0;
    self->pending_fill = 0;
    self->cache_budget = S_CACHE_DEFAULT;
    self->written = 0;
    self->allocated = 0;
    self->prealloc_chunk = S_PREALLOC_FIRST;
    self->prealloc_off = false;
    self->read_misses = 0;
    self->verified = 0;
    self->lost = false;
    self->helper_running = false;   //  self->helper is set when it starts
    self->helper_refused = false;
    self->helper_channel = -1;

    kp_log_status_t status = KP_LOG_IOERR;
    self->dir_fd = kp_dir_open (self->dir, !self->read_only, "kp_log");
    if (self->dir_fd >= 0)
        status = s_log_load (self, load_truncated);
    *status_p = status;
    if (status != KP_LOG_OK && status != KP_LOG_TRUNCATED)
        kp_log_destroy (&self);
    return self;
}

//  --------------------------------------------------------------------------
//  Close the log: stop the helper thread of kp_log_sync_both if it runs,
//  write what is still in the write buffer (without a sync, so it is not
//  made durable), then close. Idempotent; nulls *self_p.

static int s_flush (kp_log_t *self);
static void s_helper_stop (kp_log_t *self);

void
kp_log_destroy (kp_log_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        kp_log_t *self = *self_p;
        s_helper_stop (self);
        if (self->pending_fill > 0 && !self->write_failed && !self->sync_failed)
            s_flush (self);         //  a failure is logged; nothing more to do
        while (self->segment_count > 0)
            s_segment_pop (self);
        free (self->segments);
        free (self->scan_buffer);
        free (self->read_buffer);
        free (self->buffer);
        if (self->dir_fd >= 0)
            close (self->dir_fd);
        free (self->dir);
        free (self);
        *self_p = NULL;
    }
}

//  --------------------------------------------------------------------------
//  Writing the batch of the write buffer to the last segment failed after
//  done bytes (errno err): cut the file back to the end of the last whole
//  record that reached it, and refuse all further appends. The records
//  after that are lost, and were never synced, so no receipt was given for
//  them; kp_log_sync refuses from now on. The cut also drops the zero
//  space after it (the log takes no more appends), so the file ends at its
//  last record. The whole records that reached the file join the cache, as
//  after a write that succeeded. One error line.

static void
s_flush_failed (kp_log_t *self, s_segment_t *segment, size_t done, int err)
{
    const uint8_t *pending = self->buffer + self->cached;
    size_t keep = 0;                //  whole records written
    while (keep + S_FRAME_SIZE <= done) {
        size_t frame_size = S_FRAME_SIZE + s_get_u32 (pending + keep);
        if (frame_size > done - keep)
            break;
        keep += frame_size;
    }
    uint64_t cut = self->written + keep;
    self->write_failed = true;
    self->lost = true;
    if (ftruncate (segment->fd, (off_t) cut) == 0)
        zsys_error ("kp_log: write to %s failed at offset %llu: %s; cut back to the "
                    "last whole record; %zu bytes of appended records lost (never "
                    "synced); refusing further appends and syncs", segment->path,
                    (unsigned long long) cut, strerror (err),
                    self->pending_fill - keep);
    else
        zsys_error ("kp_log: write to %s failed at offset %llu: %s, and cutting it back "
                    "failed: %s; refusing further appends and syncs (the next open "
                    "cuts the torn tail)", segment->path, (unsigned long long) cut,
                    strerror (err), strerror (errno));
    segment->size = cut;
    self->written = cut;
    self->allocated = cut;
    self->cached += keep;
    self->pending_fill = 0;
}

//  --------------------------------------------------------------------------
//  The most bytes the buffer holds, but for one frame larger than
//  S_WRITE_BUFFER: the cache up to 1.5 times its budget (it is cut back to
//  the budget after a write that takes it past that), then a batch.

static size_t
s_buffer_capacity (kp_log_t *self)
{
    return self->cache_budget + self->cache_budget / 2 + S_WRITE_BUFFER;
}

//  --------------------------------------------------------------------------
//  Forget the first bytes cached bytes: move the rest of the cache and the
//  pending frames to the front.

static void
s_cache_forget (kp_log_t *self, size_t bytes)
{
    assert (bytes <= self->cached);
    if (bytes == 0)
        return;
    size_t keep = self->cached - bytes + self->pending_fill;
    memmove (self->buffer, self->buffer + bytes, keep);
    self->cached -= bytes;
}

//  --------------------------------------------------------------------------
//  Cut the cache to the last cache_budget bytes written (the cut may fall
//  inside a record; see the header)

static void
s_cache_drop (kp_log_t *self)
{
    if (self->cached > self->cache_budget)
        s_cache_forget (self, self->cached - self->cache_budget);
}

//  --------------------------------------------------------------------------
//  After a write, or a change of budget: cut the cache back to its budget
//  once it holds more than 1.5 times that (so the move happens at most once
//  per half a budget written), and give back a buffer grown past its
//  capacity for one large frame, or for a larger budget than now.

static void
s_buffer_fit (kp_log_t *self)
{
    if (self->cached > self->cache_budget + self->cache_budget / 2)
        s_cache_drop (self);
    if (self->buffer_limit <= s_buffer_capacity (self))
        return;
    s_cache_drop (self);
    size_t fill = self->cached + self->pending_fill;
    if (fill == 0) {
        free (self->buffer);
        self->buffer = NULL;
        self->buffer_limit = 0;
        return;
    }
    size_t limit = fill > S_WRITE_START? fill: S_WRITE_START;
    if (limit < self->buffer_limit) {
        uint8_t *buffer = (uint8_t *) realloc (self->buffer, limit);
        if (buffer) {               //  else keep the larger one
            self->buffer = buffer;
            self->buffer_limit = limit;
        }
    }
}

//  --------------------------------------------------------------------------
//  Write the pending frames to the last segment with one write (looping
//  over short writes and EINTR). They stay in the buffer, as cached bytes.
//  Returns 0, or -1 (logged, see s_flush_failed).

static int
s_flush (kp_log_t *self)
{
    if (self->pending_fill == 0)
        return 0;
    s_segment_t *segment = &self->segments [self->segment_count - 1];
    const uint8_t *pending = self->buffer + self->cached;
    size_t done;
    int rc = kp_pwrite_full (segment->fd, pending, self->pending_fill, self->written, &done);
    if (rc)
        s_flush_failed (self, segment, done, errno);
    else {
        self->cached += self->pending_fill;
        self->written += self->pending_fill;
        self->pending_fill = 0;
        if (self->allocated < self->written)
            self->allocated = self->written;    //  the batch passed the zero space
    }
    s_buffer_fit (self);
    return rc;
}

//  --------------------------------------------------------------------------
//  Make room for a frame of frame_size bytes after the pending ones: if it
//  would take the batch past S_WRITE_BUFFER, write the batch first; grow
//  the buffer by doubling up to its capacity. A frame larger than
//  S_WRITE_BUFFER gets a buffer large enough for it, given back after its
//  write. Returns 0, or -1 if writing the batch failed (logged).

static int
s_buffer_reserve (kp_log_t *self, size_t frame_size)
{
    if (self->pending_fill > 0 && self->pending_fill + frame_size > S_WRITE_BUFFER
    &&  s_flush (self))
        return -1;
    size_t need = self->cached + self->pending_fill + frame_size;
    if (need > self->buffer_limit) {
        size_t capacity = s_buffer_capacity (self);
        size_t limit = self->buffer_limit > S_WRITE_START? self->buffer_limit
                                                         : S_WRITE_START;
        while (limit < need && limit < capacity)
            limit *= 2;
        if (limit > capacity)
            limit = capacity;
        if (limit < need)
            limit = need;           //  one frame larger than a batch
        uint8_t *buffer = (uint8_t *) realloc (self->buffer, limit);
        assert (buffer);
        self->buffer = buffer;
        self->buffer_limit = limit;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Start a new segment at the next seq. The full one is written, cut to
//  the end of its last record (its zero space goes: a sealed segment ends
//  at its last record) and made durable first: a segment that is not the
//  last must be whole on disk, so that recovery can call any bad byte in
//  it corruption, never a torn tail. Returns 0, or -1 (logged) and the log
//  refuses further appends.

static int
s_roll_over (kp_log_t *self)
{
    if (s_flush (self))
        return -1;
    s_segment_t *segment = &self->segments [self->segment_count - 1];
    if (self->allocated > self->written) {
        if (ftruncate (segment->fd, (off_t) self->written)) {
            zsys_error ("kp_log: cannot cut the zero space of %s at offset %llu: %s; "
                        "refusing further appends", segment->path,
                        (unsigned long long) self->written, strerror (errno));
            self->write_failed = true;
            return -1;
        }
        self->allocated = self->written;
    }
    if (s_segment_sync (self))
        return -1;
    if (s_segment_create (self, self->next_seq)) {
        self->write_failed = true;
        return -1;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Append one record; see kp_log.h. The frame goes into the write buffer;
//  no system call unless the buffer is full or the segment rolls over.

int
kp_log_append (kp_log_t *self, const void *data, size_t size,
               uint64_t *seq_p, uint64_t *pos_p)
{
    assert (self);
    assert (data);
    assert (size > 0);
    assert (seq_p);
    assert (pos_p);
    if (size > KP_LOG_MAX_RECORD) {
        zsys_error ("kp_log: refused a record of %zu bytes in %s: the most is %u",
                    size, self->dir, KP_LOG_MAX_RECORD);
        return -1;
    }
    if (self->write_failed || self->sync_failed)
        return -1;

    uint64_t frame_size = S_FRAME_SIZE + (uint64_t) size;
    s_segment_t *segment = &self->segments [self->segment_count - 1];
    if ((segment->size > S_HEADER_SIZE && segment->size + frame_size > self->segment_size)
    ||  segment->size > S_OFFSET_MASK - frame_size) {
        if (s_roll_over (self))
            return -1;
        segment = &self->segments [self->segment_count - 1];
    }
    if (s_buffer_reserve (self, (size_t) frame_size))
        return -1;
    uint8_t *frame = self->buffer + self->cached + self->pending_fill;
    s_put_u32 (frame, (uint32_t) size);
    s_put_u32 (frame + 4, kp_crc32c (0, data, size));
    memcpy (frame + S_FRAME_SIZE, data, size);
    self->pending_fill += (size_t) frame_size;
    *seq_p = self->next_seq++;
    *pos_p = s_pos (self->segment_count - 1, segment->size);
    segment->size += frame_size;
    return 0;
}

//  --------------------------------------------------------------------------
//  What the write part of a sync left to do

typedef enum {
    S_SYNC_FAILED,                  //  refused, or the write failed: sync fails
    S_SYNC_CLEAN,                   //  nothing appended since the last sync
    S_SYNC_DUE                      //  written: the last segment needs fdatasync
} s_sync_step_t;

//  --------------------------------------------------------------------------
//  The write part of a sync: refuse if a sync failed or a write lost
//  records, else write the write buffer to the last segment (the only one
//  that can hold records not yet synced: s_roll_over syncs the others).

static s_sync_step_t
s_sync_write (kp_log_t *self)
{
    if (self->sync_failed || self->lost)
        return S_SYNC_FAILED;
    if (self->synced == self->next_seq)
        return S_SYNC_CLEAN;
    if (s_flush (self))
        return S_SYNC_FAILED;
    return S_SYNC_DUE;
}

//  --------------------------------------------------------------------------
//  After a sync of the last segment: if the records come within an eighth
//  of a chunk (1 MiB of 8 MiB) of the end of the file, write a chunk of
//  zeros after the file's end (not past segment_size), and fdatasync it,
//  once. Why: an fdatasync of a file whose size changed must also write
//  its inode, a second I/O per commit; appends that land inside the file
//  leave its size alone, and fdatasync writes only their pages. Real
//  zeros, not fallocate: the unwritten extents it makes would need their
//  own metadata update on the first write into them. The chunk starts at
//  64 KiB after an open (a small log stays small) and doubles with each
//  extension up to 8 MiB. A failed write of the zeros (full disk, file
//  size limit) is no error: the file is cut back to its size before, so
//  no space is held that appends could use, and this segment writes no
//  more zeros ahead. A failed fdatasync is final, as any. Returns 0, or
//  -1 (logged) and the log refuses all further writes.

static int
s_prealloc (kp_log_t *self)
{
    if (self->prealloc_off || self->write_failed || self->sync_failed)
        return 0;
    if (self->allocated - self->written >= self->prealloc_chunk / 8)
        return 0;
    uint64_t target = self->written + self->prealloc_chunk;
    target = (target + S_PREALLOC_ALIGN - 1) / S_PREALLOC_ALIGN * S_PREALLOC_ALIGN;
    if (target > self->segment_size)
        target = self->segment_size;
    if (target <= self->allocated)
        return 0;                   //  the segment is as large as it gets
    s_segment_t *segment = &self->segments [self->segment_count - 1];
    if (s_zeros_write (segment->fd, self->allocated, target)) {
        int err = errno;
        self->prealloc_off = true;
        if (ftruncate (segment->fd, (off_t) self->allocated))
            zsys_warning ("kp_log: cannot write zero space ahead in %s: %s, nor cut it "
                          "back: %s (it reads as free space)", segment->path,
                          strerror (err), strerror (errno));
        else
            zsys_warning ("kp_log: cannot write zero space ahead in %s: %s; appending "
                          "without it in this segment", segment->path, strerror (err));
        return 0;
    }
    int err = s_sync_data (segment->fd);
    if (err) {
        self->sync_failed = true;
        zsys_error ("kp_log: fdatasync of %s failed: %s; refusing all further writes; "
                    "restart to recover from what is on disk", segment->path,
                    strerror (err));
        return -1;
    }
    self->allocated = target;
    if (self->prealloc_chunk < S_PREALLOC_MAX)
        self->prealloc_chunk *= 2;
    return 0;
}

//  --------------------------------------------------------------------------
//  Make every record appended so far durable; see kp_log.h. Write the
//  buffer to the last segment, then one fdatasync; then write zero space
//  ahead if the records come near the end of the file (s_prealloc).

int
kp_log_sync (kp_log_t *self)
{
    assert (self);
    s_sync_step_t step = s_sync_write (self);
    if (step != S_SYNC_DUE)
        return step == S_SYNC_CLEAN? 0: -1;
    if (s_segment_sync (self))
        return -1;
    return s_prealloc (self);
}

//  --------------------------------------------------------------------------
//  Send one int over a socket pair of the helper thread, retrying on EINTR
//  (MSG_NOSIGNAL: a closed peer is an error, never a SIGPIPE). Returns 0,
//  or -1 (errno set).

static int
s_int_send (int channel, int value)
{
    ssize_t rc;
    do
        rc = send (channel, &value, sizeof value, MSG_NOSIGNAL);
    while (rc < 0 && errno == EINTR);
    return rc == (ssize_t) sizeof value? 0: -1;
}

//  --------------------------------------------------------------------------
//  Receive one int from a socket pair of the helper thread, retrying on
//  EINTR. Returns 0, or -1 if the peer closed its end or on an error.

static int
s_int_recv (int channel, int *value_p)
{
    ssize_t rc;
    do
        rc = recv (channel, value_p, sizeof *value_p, 0);
    while (rc < 0 && errno == EINTR);
    return rc == (ssize_t) sizeof *value_p? 0: -1;
}

//  --------------------------------------------------------------------------
//  The helper thread of kp_log_sync_both. args is its end of a socket pair
//  (SOCK_SEQPACKET: whole messages), which it owns: for each descriptor
//  number received, fdatasync it and send back 0 or the errno. Ends when
//  the log closes its end (s_helper_stop). All it knows comes over the
//  pair: it shares no memory with the log's thread, so nothing needs a lock.

static void *
s_helper_run (void *args)
{
    int channel = (int) (intptr_t) args;
    int fd;
    while (s_int_recv (channel, &fd) == 0)
        if (s_int_send (channel, s_sync_data (fd)))
            break;                  //  cannot happen: the log holds its end
    close (channel);
    return NULL;
}

//  --------------------------------------------------------------------------
//  Start the helper thread of self unless it runs: a socket pair, then the
//  thread, with every signal blocked in it (signals are for the threads of
//  the program). Returns 0, or -1 if it cannot (logged once; then
//  kp_log_sync_both syncs its two logs in turn, on the calling thread).

static int
s_helper_start (kp_log_t *self)
{
    if (self->helper_running)
        return 0;
    if (self->helper_refused)
        return -1;
    int channels [2];
    int err = 0;
    if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, channels))
        err = errno;
    else {
        sigset_t blocked, previous;
        sigfillset (&blocked);
        pthread_sigmask (SIG_SETMASK, &blocked, &previous);
        err = pthread_create (&self->helper, NULL, s_helper_run,
                              (void *) (intptr_t) channels [1]);
        pthread_sigmask (SIG_SETMASK, &previous, NULL);
        if (err) {
            close (channels [0]);
            close (channels [1]);
        }
    }
    if (err) {
        zsys_warning ("kp_log: cannot start the sync thread of %s: %s; syncing two "
                      "logs one after the other", self->dir, strerror (err));
        self->helper_refused = true;
        return -1;
    }
    pthread_setname_np (self->helper, "kp_log sync");   //  for top -H and perf
    self->helper_channel = channels [0];
    self->helper_running = true;
    return 0;
}

//  --------------------------------------------------------------------------
//  Stop the helper thread of self if it runs: closing our end of the pair
//  ends its loop; then join it. No request is ever pending here, as
//  kp_log_sync_both waits for every reply.

static void
s_helper_stop (kp_log_t *self)
{
    if (!self->helper_running)
        return;
    close (self->helper_channel);
    int rc = pthread_join (self->helper, NULL);
    assert (rc == 0);
    self->helper_channel = -1;
    self->helper_running = false;
}

//  --------------------------------------------------------------------------
//  Make every record appended so far to both logs durable, the two
//  fdatasyncs at the same time; see kp_log.h. Both writes happen here,
//  then b's last segment descriptor goes to a's helper thread, a's
//  fdatasync runs here, and b's result is awaited before either log is
//  marked. Only when both logs have records to sync is the helper used.

int
kp_log_sync_both (kp_log_t *a, kp_log_t *b)
{
    assert (!a || a != b);
    s_sync_step_t step_a = a? s_sync_write (a): S_SYNC_CLEAN;
    s_sync_step_t step_b = b? s_sync_write (b): S_SYNC_CLEAN;
    int rc = step_a == S_SYNC_FAILED || step_b == S_SYNC_FAILED? -1: 0;
    if (step_a == S_SYNC_DUE && step_b == S_SYNC_DUE && s_helper_start (a) == 0) {
        int fd_b = b->segments [b->segment_count - 1].fd;
        //  The send cannot block (one request at a time) and never fails
        //  while the helper runs; if it fails anyway, b is synced here
        bool handed = s_int_send (a->helper_channel, fd_b) == 0;
        int err_a = s_sync_data (a->segments [a->segment_count - 1].fd);
        int err_b;
        if (handed) {
            int recv_rc = s_int_recv (a->helper_channel, &err_b);
            assert (recv_rc == 0);  //  the helper answers every request
        }
        else
            err_b = s_sync_data (fd_b);
        if (s_sync_mark (a, err_a) || s_prealloc (a))
            rc = -1;
        if (s_sync_mark (b, err_b) || s_prealloc (b))
            rc = -1;
    }
    else {
        if (step_a == S_SYNC_DUE && (s_segment_sync (a) || s_prealloc (a)))
            rc = -1;
        if (step_b == S_SYNC_DUE && (s_segment_sync (b) || s_prealloc (b)))
            rc = -1;
    }
    return rc;
}

//  --------------------------------------------------------------------------
//  Log a read failure, at most one line per S_ERROR_QUIET_MS

static void
s_read_failed (kp_log_t *self, const s_segment_t *segment, uint64_t offset,
               const char *reason)
{
    int64_t now = kp_mono_ms ();
    if (self->read_error_ms && now - self->read_error_ms < S_ERROR_QUIET_MS) {
        self->read_errors_quiet++;
        return;
    }
    zsys_error ("kp_log: cannot read the record in %s at offset %llu: %s "
                "(%llu more read errors not logged)", segment->path,
                (unsigned long long) offset, reason,
                (unsigned long long) self->read_errors_quiet);
    self->read_error_ms = now;
    self->read_errors_quiet = 0;
}

//  --------------------------------------------------------------------------
//  The bytes at offset of segment index if they are in memory: in the
//  cache (written) or pending (not yet), which are one run of bytes of the
//  last segment up to its end. Sets *available_p to the bytes from there
//  to that end, so a record that starts in memory is in memory whole.
//  NULL if not in memory.

static const uint8_t *
s_memory (kp_log_t *self, uint64_t index, uint64_t offset, size_t *available_p)
{
    uint64_t start = self->written - self->cached;  //  file offset of buffer [0]
    size_t fill = self->cached + self->pending_fill;
    if (index + 1 == self->segment_count && offset >= start && offset - start < fill) {
        *available_p = fill - (size_t) (offset - start);
        return self->buffer + (offset - start);
    }
    return NULL;
}

//  --------------------------------------------------------------------------
//  Make the read buffer at least size bytes

static void
s_read_buffer_reserve (kp_log_t *self, size_t size)
{
    if (size <= self->read_limit)
        return;
    size_t limit = size > S_READ_AHEAD? size: S_READ_AHEAD;
    uint8_t *buffer = (uint8_t *) realloc (self->read_buffer, limit);
    assert (buffer);
    self->read_buffer = buffer;
    self->read_limit = limit;
}

//  --------------------------------------------------------------------------
//  Read the record at pos; see kp_log.h. From memory if it is cached or
//  pending, else one pread for small records (a read miss). Either way the
//  record is copied to the read buffer and its checksum checked.

const uint8_t *
kp_log_read (kp_log_t *self, uint64_t pos, size_t *size_p)
{
    assert (self);
    assert (size_p);
    uint64_t index = pos >> S_OFFSET_BITS;
    uint64_t offset = pos & S_OFFSET_MASK;
    if (index >= self->segment_count)
        return NULL;
    const s_segment_t *segment = &self->segments [index];
    if (offset < S_HEADER_SIZE || offset + S_FRAME_SIZE > segment->size)
        return NULL;
    size_t available;
    const uint8_t *memory = s_memory (self, index, offset, &available);
    uint32_t length;
    if (memory) {
        if (available < S_FRAME_SIZE)
            return NULL;            //  not a record position
        length = s_get_u32 (memory);
        if (length == 0 || length > KP_LOG_MAX_RECORD
        ||  S_FRAME_SIZE + (size_t) length > available)
            return NULL;            //  not a record position
        s_read_buffer_reserve (self, S_FRAME_SIZE + (size_t) length);
        memcpy (self->read_buffer, memory, S_FRAME_SIZE + (size_t) length);
    }
    else {
        self->read_misses++;
        s_read_buffer_reserve (self, S_READ_AHEAD);
        size_t first = segment->size - offset < S_READ_AHEAD?
                       (size_t) (segment->size - offset): S_READ_AHEAD;
        //  Only bytes in the file: the rest of the segment is in memory
        if (index + 1 == self->segment_count && offset + first > self->written)
            first = offset + S_FRAME_SIZE <= self->written?
                    (size_t) (self->written - offset): 0;
        if (first < S_FRAME_SIZE)
            return NULL;            //  not a record position
        if (s_pread_full (segment->fd, self->read_buffer, first, offset)) {
            s_read_failed (self, segment, offset, strerror (errno));
            return NULL;
        }
        length = s_get_u32 (self->read_buffer);
        uint64_t end = index + 1 == self->segment_count? self->written: segment->size;
        if (length == 0 || length > KP_LOG_MAX_RECORD
        ||  offset + S_FRAME_SIZE + length > end)
            return NULL;            //  not a record position
        size_t frame_size = S_FRAME_SIZE + (size_t) length;
        if (frame_size > first) {
            s_read_buffer_reserve (self, frame_size);
            if (s_pread_full (segment->fd, self->read_buffer + first, frame_size - first,
                              offset + first)) {
                s_read_failed (self, segment, offset, strerror (errno));
                return NULL;
            }
        }
    }
    uint32_t checksum = s_get_u32 (self->read_buffer + 4);
    if (kp_crc32c (0, self->read_buffer + S_FRAME_SIZE, length) != checksum) {
        s_read_failed (self, segment, offset, "checksum mismatch");
        return NULL;
    }
    *size_p = length;
    return self->read_buffer + S_FRAME_SIZE;
}

//  --------------------------------------------------------------------------
//  Erase a record's payload; see kp_log.h. A pending record is written
//  first; the bytes of the record in the cache (all, or the end of it if
//  the cache starts inside it) are changed as in the file once the file's
//  are (if that fails, the cache forgets up to the record's end, so that
//  reads show what the file holds).

int
kp_log_erase (kp_log_t *self, uint64_t pos)
{
    assert (self);
    if (self->write_failed || self->sync_failed)
        return -1;
    size_t size;
    if (!kp_log_read (self, pos, &size))
        return -1;
    uint64_t index = pos >> S_OFFSET_BITS;
    s_segment_t *segment = &self->segments [index];
    uint64_t offset = pos & S_OFFSET_MASK;
    if (index + 1 == self->segment_count && offset >= self->written && s_flush (self))
        return -1;
    //  Is any of the record in the cache? (None of it is pending now)
    uint64_t start = self->written - self->cached;  //  file offset of buffer [0]
    uint64_t end = offset + S_FRAME_SIZE + size;
    bool cached = index + 1 == self->segment_count && end > start;
    //  Segments but the last are open read-only: write through a
    //  descriptor of our own
    int fd = open (segment->path, O_WRONLY | O_CLOEXEC);
    uint8_t zeros [4096] = { 0 };
    uint32_t checksum = 0;
    int rc = fd >= 0? 0: -1;
    for (size_t done = 0; rc == 0 && done < size; ) {
        size_t chunk = size - done < sizeof zeros? size - done: sizeof zeros;
        checksum = kp_crc32c (checksum, zeros, chunk);
        if (pwrite (fd, zeros, chunk, (off_t) (offset + S_FRAME_SIZE + done))
            != (ssize_t) chunk)
            rc = -1;
        done += chunk;
    }
    uint8_t frame [4];
    s_put_u32 (frame, checksum);
    if (rc == 0 && pwrite (fd, frame, sizeof frame, (off_t) (offset + 4)) != sizeof frame)
        rc = -1;
    if (rc == 0 && fdatasync (fd))
        self->sync_failed = true;       //  as after any failed fdatasync
    if (rc || self->sync_failed)
        zsys_error ("kp_log: cannot erase the record in %s at offset %llu: %s",
                    segment->path, (unsigned long long) offset, strerror (errno));
    if (fd >= 0)
        close (fd);
    if (cached && (rc || self->sync_failed))
        s_cache_forget (self, (size_t) (end - start));
    else if (cached) {
        uint64_t zeros_from = offset + S_FRAME_SIZE > start? offset + S_FRAME_SIZE: start;
        memset (self->buffer + (zeros_from - start), 0, (size_t) (end - zeros_from));
        for (uint64_t at = offset + 4; at < offset + S_FRAME_SIZE; at++)
            if (at >= start)
                self->buffer [at - start] = frame [at - offset - 4];
    }
    return rc || self->sync_failed? -1: 0;
}

//  --------------------------------------------------------------------------
//  Position of the next record; see kp_log.h

uint64_t
kp_log_next_pos (kp_log_t *self, uint64_t pos, size_t size)
{
    assert (self);
    uint64_t index = pos >> S_OFFSET_BITS;
    uint64_t offset = (pos & S_OFFSET_MASK) + S_FRAME_SIZE + size;
    assert (index < self->segment_count);
    if (offset >= self->segments [index].size && index + 1 < self->segment_count)
        return (index + 1) << S_OFFSET_BITS | S_HEADER_SIZE;
    return index << S_OFFSET_BITS | offset;
}

//  --------------------------------------------------------------------------
//  The position the next record will get

uint64_t
kp_log_end (kp_log_t *self)
{
    assert (self);
    return s_pos (self->segment_count - 1, self->segments [self->segment_count - 1].size);
}

//  --------------------------------------------------------------------------
//  Position of record seq: the segment by binary search on first seqs, then
//  a walk over frame headers (from memory where the buffers hold them); see
//  kp_log.h

int
kp_log_seek (kp_log_t *self, uint64_t seq, uint64_t *pos_p)
{
    assert (self);
    assert (pos_p);
    assert (seq < self->next_seq);
    size_t low = 0;
    size_t high = self->segment_count;
    while (high - low > 1) {
        size_t middle = low + (high - low) / 2;
        if (self->segments [middle].first_seq <= seq)
            low = middle;
        else
            high = middle;
    }
    const s_segment_t *segment = &self->segments [low];
    uint64_t offset = S_HEADER_SIZE;
    for (uint64_t current = segment->first_seq; current < seq; current++) {
        uint8_t header [S_FRAME_SIZE];
        const uint8_t *frame = header;
        size_t available;
        if (offset + S_FRAME_SIZE > segment->size) {
            s_read_failed (self, segment, offset, "cannot read a frame header");
            return -1;
        }
        const uint8_t *memory = s_memory (self, low, offset, &available);
        if (memory && available >= S_FRAME_SIZE)
            frame = memory;
        else
        if (s_pread_full (segment->fd, header, S_FRAME_SIZE, offset)) {
            s_read_failed (self, segment, offset, "cannot read a frame header");
            return -1;
        }
        uint32_t length = s_get_u32 (frame);
        if (length == 0 || length > KP_LOG_MAX_RECORD) {
            s_read_failed (self, segment, offset, "bad frame length");
            return -1;
        }
        offset += S_FRAME_SIZE + length;
    }
    *pos_p = (uint64_t) low << S_OFFSET_BITS | offset;
    return 0;
}

//  --------------------------------------------------------------------------
//  Visit every record in order; see kp_log.h. Writes the write buffer
//  first, then reads each segment with large sequential reads. Checks every
//  length, and every checksum but those open checked already: the records
//  open read cannot have changed since but through this process.

int
kp_log_replay (kp_log_t *self, kp_log_visit_fn *visit, void *arg)
{
    assert (self);
    assert (visit);
    if (self->pending_fill > 0 && s_flush (self))
        return -1;
    int rc = 0;
    size_t count = self->segment_count;
    for (size_t index = 0; index < count && rc == 0; index++) {
        s_walk_t walk;
        s_walk (self, index, self->segments [index].size, self->verified, visit, arg,
                &walk);
        const char *path = self->segments [index].path;
        if (walk.status == S_WALK_STOPPED)
            rc = -1;
        else if (walk.status == S_WALK_IOERR) {
            zsys_error ("kp_log: cannot read %s: %s", path, strerror (walk.err));
            rc = -1;
        }
        else if (walk.status == S_WALK_BAD) {
            zsys_error ("kp_log: corrupt record in %s at offset %llu (%s): the file "
                        "changed after open; restore it from backup", path,
                        (unsigned long long) walk.offset, walk.reason);
            rc = -1;
        }
    }
    s_scan_buffer_release (self);
    return rc;
}

//  --------------------------------------------------------------------------
//  Number of records in the log (the next sequence number)

uint64_t
kp_log_size (kp_log_t *self)
{
    assert (self);
    return self->next_seq;
}

//  --------------------------------------------------------------------------
//  Number of records known durable

uint64_t
kp_log_synced (kp_log_t *self)
{
    assert (self);
    return self->synced;
}

//  --------------------------------------------------------------------------
//  Count of fdatasync calls (by kp_log_sync and at segment rollover)

uint64_t
kp_log_sync_count (kp_log_t *self)
{
    assert (self);
    return self->sync_count;
}

//  --------------------------------------------------------------------------
//  Set the cache budget; see kp_log.h. Drops what is past it at once, and
//  gives back the memory above the new capacity.

void
kp_log_set_cache (kp_log_t *self, size_t bytes)
{
    assert (self);
    assert (bytes <= KP_LOG_CACHE_MAX);
    self->cache_budget = bytes;
    s_cache_drop (self);
    s_buffer_fit (self);
}

//  --------------------------------------------------------------------------
//  Count of kp_log_read calls that read the file

uint64_t
kp_log_read_misses (kp_log_t *self)
{
    assert (self);
    return self->read_misses;
}

//  CRC32C (Castagnoli, reflected polynomial 0x82F63B78) lookup tables for
//  slicing-by-8: s_crc32c_table [0][n] is the CRC of byte n, and
//  s_crc32c_table [k][n] the CRC of byte n followed by k zero bytes. A
//  constant, so no thread ever initialises it; tests/test_kp_log.c checks
//  it against a bitwise implementation.
static const uint32_t s_crc32c_table [8][256] = {
    {
        0x00000000, 0xf26b8303, 0xe13b70f7, 0x1350f3f4, 0xc79a971f, 0x35f1141c,
        0x26a1e7e8, 0xd4ca64eb, 0x8ad958cf, 0x78b2dbcc, 0x6be22838, 0x9989ab3b,
        0x4d43cfd0, 0xbf284cd3, 0xac78bf27, 0x5e133c24, 0x105ec76f, 0xe235446c,
        0xf165b798, 0x030e349b, 0xd7c45070, 0x25afd373, 0x36ff2087, 0xc494a384,
        0x9a879fa0, 0x68ec1ca3, 0x7bbcef57, 0x89d76c54, 0x5d1d08bf, 0xaf768bbc,
        0xbc267848, 0x4e4dfb4b, 0x20bd8ede, 0xd2d60ddd, 0xc186fe29, 0x33ed7d2a,
        0xe72719c1, 0x154c9ac2, 0x061c6936, 0xf477ea35, 0xaa64d611, 0x580f5512,
        0x4b5fa6e6, 0xb93425e5, 0x6dfe410e, 0x9f95c20d, 0x8cc531f9, 0x7eaeb2fa,
        0x30e349b1, 0xc288cab2, 0xd1d83946, 0x23b3ba45, 0xf779deae, 0x05125dad,
        0x1642ae59, 0xe4292d5a, 0xba3a117e, 0x4851927d, 0x5b016189, 0xa96ae28a,
        0x7da08661, 0x8fcb0562, 0x9c9bf696, 0x6ef07595, 0x417b1dbc, 0xb3109ebf,
        0xa0406d4b, 0x522bee48, 0x86e18aa3, 0x748a09a0, 0x67dafa54, 0x95b17957,
        0xcba24573, 0x39c9c670, 0x2a993584, 0xd8f2b687, 0x0c38d26c, 0xfe53516f,
        0xed03a29b, 0x1f682198, 0x5125dad3, 0xa34e59d0, 0xb01eaa24, 0x42752927,
        0x96bf4dcc, 0x64d4cecf, 0x77843d3b, 0x85efbe38, 0xdbfc821c, 0x2997011f,
        0x3ac7f2eb, 0xc8ac71e8, 0x1c661503, 0xee0d9600, 0xfd5d65f4, 0x0f36e6f7,
        0x61c69362, 0x93ad1061, 0x80fde395, 0x72966096, 0xa65c047d, 0x5437877e,
        0x4767748a, 0xb50cf789, 0xeb1fcbad, 0x197448ae, 0x0a24bb5a, 0xf84f3859,
        0x2c855cb2, 0xdeeedfb1, 0xcdbe2c45, 0x3fd5af46, 0x7198540d, 0x83f3d70e,
        0x90a324fa, 0x62c8a7f9, 0xb602c312, 0x44694011, 0x5739b3e5, 0xa55230e6,
        0xfb410cc2, 0x092a8fc1, 0x1a7a7c35, 0xe811ff36, 0x3cdb9bdd, 0xceb018de,
        0xdde0eb2a, 0x2f8b6829, 0x82f63b78, 0x709db87b, 0x63cd4b8f, 0x91a6c88c,
        0x456cac67, 0xb7072f64, 0xa457dc90, 0x563c5f93, 0x082f63b7, 0xfa44e0b4,
        0xe9141340, 0x1b7f9043, 0xcfb5f4a8, 0x3dde77ab, 0x2e8e845f, 0xdce5075c,
        0x92a8fc17, 0x60c37f14, 0x73938ce0, 0x81f80fe3, 0x55326b08, 0xa759e80b,
        0xb4091bff, 0x466298fc, 0x1871a4d8, 0xea1a27db, 0xf94ad42f, 0x0b21572c,
        0xdfeb33c7, 0x2d80b0c4, 0x3ed04330, 0xccbbc033, 0xa24bb5a6, 0x502036a5,
        0x4370c551, 0xb11b4652, 0x65d122b9, 0x97baa1ba, 0x84ea524e, 0x7681d14d,
        0x2892ed69, 0xdaf96e6a, 0xc9a99d9e, 0x3bc21e9d, 0xef087a76, 0x1d63f975,
        0x0e330a81, 0xfc588982, 0xb21572c9, 0x407ef1ca, 0x532e023e, 0xa145813d,
        0x758fe5d6, 0x87e466d5, 0x94b49521, 0x66df1622, 0x38cc2a06, 0xcaa7a905,
        0xd9f75af1, 0x2b9cd9f2, 0xff56bd19, 0x0d3d3e1a, 0x1e6dcdee, 0xec064eed,
        0xc38d26c4, 0x31e6a5c7, 0x22b65633, 0xd0ddd530, 0x0417b1db, 0xf67c32d8,
        0xe52cc12c, 0x1747422f, 0x49547e0b, 0xbb3ffd08, 0xa86f0efc, 0x5a048dff,
        0x8ecee914, 0x7ca56a17, 0x6ff599e3, 0x9d9e1ae0, 0xd3d3e1ab, 0x21b862a8,
        0x32e8915c, 0xc083125f, 0x144976b4, 0xe622f5b7, 0xf5720643, 0x07198540,
        0x590ab964, 0xab613a67, 0xb831c993, 0x4a5a4a90, 0x9e902e7b, 0x6cfbad78,
        0x7fab5e8c, 0x8dc0dd8f, 0xe330a81a, 0x115b2b19, 0x020bd8ed, 0xf0605bee,
        0x24aa3f05, 0xd6c1bc06, 0xc5914ff2, 0x37faccf1, 0x69e9f0d5, 0x9b8273d6,
        0x88d28022, 0x7ab90321, 0xae7367ca, 0x5c18e4c9, 0x4f48173d, 0xbd23943e,
        0xf36e6f75, 0x0105ec76, 0x12551f82, 0xe03e9c81, 0x34f4f86a, 0xc69f7b69,
        0xd5cf889d, 0x27a40b9e, 0x79b737ba, 0x8bdcb4b9, 0x988c474d, 0x6ae7c44e,
        0xbe2da0a5, 0x4c4623a6, 0x5f16d052, 0xad7d5351
    },
    {
        0x00000000, 0x13a29877, 0x274530ee, 0x34e7a899, 0x4e8a61dc, 0x5d28f9ab,
        0x69cf5132, 0x7a6dc945, 0x9d14c3b8, 0x8eb65bcf, 0xba51f356, 0xa9f36b21,
        0xd39ea264, 0xc03c3a13, 0xf4db928a, 0xe7790afd, 0x3fc5f181, 0x2c6769f6,
        0x1880c16f, 0x0b225918, 0x714f905d, 0x62ed082a, 0x560aa0b3, 0x45a838c4,
        0xa2d13239, 0xb173aa4e, 0x859402d7, 0x96369aa0, 0xec5b53e5, 0xfff9cb92,
        0xcb1e630b, 0xd8bcfb7c, 0x7f8be302, 0x6c297b75, 0x58ced3ec, 0x4b6c4b9b,
        0x310182de, 0x22a31aa9, 0x1644b230, 0x05e62a47, 0xe29f20ba, 0xf13db8cd,
        0xc5da1054, 0xd6788823, 0xac154166, 0xbfb7d911, 0x8b507188, 0x98f2e9ff,
        0x404e1283, 0x53ec8af4, 0x670b226d, 0x74a9ba1a, 0x0ec4735f, 0x1d66eb28,
        0x298143b1, 0x3a23dbc6, 0xdd5ad13b, 0xcef8494c, 0xfa1fe1d5, 0xe9bd79a2,
        0x93d0b0e7, 0x80722890, 0xb4958009, 0xa737187e, 0xff17c604, 0xecb55e73,
        0xd852f6ea, 0xcbf06e9d, 0xb19da7d8, 0xa23f3faf, 0x96d89736, 0x857a0f41,
        0x620305bc, 0x71a19dcb, 0x45463552, 0x56e4ad25, 0x2c896460, 0x3f2bfc17,
        0x0bcc548e, 0x186eccf9, 0xc0d23785, 0xd370aff2, 0xe797076b, 0xf4359f1c,
        0x8e585659, 0x9dface2e, 0xa91d66b7, 0xbabffec0, 0x5dc6f43d, 0x4e646c4a,
        0x7a83c4d3, 0x69215ca4, 0x134c95e1, 0x00ee0d96, 0x3409a50f, 0x27ab3d78,
        0x809c2506, 0x933ebd71, 0xa7d915e8, 0xb47b8d9f, 0xce1644da, 0xddb4dcad,
        0xe9537434, 0xfaf1ec43, 0x1d88e6be, 0x0e2a7ec9, 0x3acdd650, 0x296f4e27,
        0x53028762, 0x40a01f15, 0x7447b78c, 0x67e52ffb, 0xbf59d487, 0xacfb4cf0,
        0x981ce469, 0x8bbe7c1e, 0xf1d3b55b, 0xe2712d2c, 0xd69685b5, 0xc5341dc2,
        0x224d173f, 0x31ef8f48, 0x050827d1, 0x16aabfa6, 0x6cc776e3, 0x7f65ee94,
        0x4b82460d, 0x5820de7a, 0xfbc3faf9, 0xe861628e, 0xdc86ca17, 0xcf245260,
        0xb5499b25, 0xa6eb0352, 0x920cabcb, 0x81ae33bc, 0x66d73941, 0x7575a136,
        0x419209af, 0x523091d8, 0x285d589d, 0x3bffc0ea, 0x0f186873, 0x1cbaf004,
        0xc4060b78, 0xd7a4930f, 0xe3433b96, 0xf0e1a3e1, 0x8a8c6aa4, 0x992ef2d3,
        0xadc95a4a, 0xbe6bc23d, 0x5912c8c0, 0x4ab050b7, 0x7e57f82e, 0x6df56059,
        0x1798a91c, 0x043a316b, 0x30dd99f2, 0x237f0185, 0x844819fb, 0x97ea818c,
        0xa30d2915, 0xb0afb162, 0xcac27827, 0xd960e050, 0xed8748c9, 0xfe25d0be,
        0x195cda43, 0x0afe4234, 0x3e19eaad, 0x2dbb72da, 0x57d6bb9f, 0x447423e8,
        0x70938b71, 0x63311306, 0xbb8de87a, 0xa82f700d, 0x9cc8d894, 0x8f6a40e3,
        0xf50789a6, 0xe6a511d1, 0xd242b948, 0xc1e0213f, 0x26992bc2, 0x353bb3b5,
        0x01dc1b2c, 0x127e835b, 0x68134a1e, 0x7bb1d269, 0x4f567af0, 0x5cf4e287,
        0x04d43cfd, 0x1776a48a, 0x23910c13, 0x30339464, 0x4a5e5d21, 0x59fcc556,
        0x6d1b6dcf, 0x7eb9f5b8, 0x99c0ff45, 0x8a626732, 0xbe85cfab, 0xad2757dc,
        0xd74a9e99, 0xc4e806ee, 0xf00fae77, 0xe3ad3600, 0x3b11cd7c, 0x28b3550b,
        0x1c54fd92, 0x0ff665e5, 0x759baca0, 0x663934d7, 0x52de9c4e, 0x417c0439,
        0xa6050ec4, 0xb5a796b3, 0x81403e2a, 0x92e2a65d, 0xe88f6f18, 0xfb2df76f,
        0xcfca5ff6, 0xdc68c781, 0x7b5fdfff, 0x68fd4788, 0x5c1aef11, 0x4fb87766,
        0x35d5be23, 0x26772654, 0x12908ecd, 0x013216ba, 0xe64b1c47, 0xf5e98430,
        0xc10e2ca9, 0xd2acb4de, 0xa8c17d9b, 0xbb63e5ec, 0x8f844d75, 0x9c26d502,
        0x449a2e7e, 0x5738b609, 0x63df1e90, 0x707d86e7, 0x0a104fa2, 0x19b2d7d5,
        0x2d557f4c, 0x3ef7e73b, 0xd98eedc6, 0xca2c75b1, 0xfecbdd28, 0xed69455f,
        0x97048c1a, 0x84a6146d, 0xb041bcf4, 0xa3e32483
    },
    {
        0x00000000, 0xa541927e, 0x4f6f520d, 0xea2ec073, 0x9edea41a, 0x3b9f3664,
        0xd1b1f617, 0x74f06469, 0x38513ec5, 0x9d10acbb, 0x773e6cc8, 0xd27ffeb6,
        0xa68f9adf, 0x03ce08a1, 0xe9e0c8d2, 0x4ca15aac, 0x70a27d8a, 0xd5e3eff4,
        0x3fcd2f87, 0x9a8cbdf9, 0xee7cd990, 0x4b3d4bee, 0xa1138b9d, 0x045219e3,
        0x48f3434f, 0xedb2d131, 0x079c1142, 0xa2dd833c, 0xd62de755, 0x736c752b,
        0x9942b558, 0x3c032726, 0xe144fb14, 0x4405696a, 0xae2ba919, 0x0b6a3b67,
        0x7f9a5f0e, 0xdadbcd70, 0x30f50d03, 0x95b49f7d, 0xd915c5d1, 0x7c5457af,
        0x967a97dc, 0x333b05a2, 0x47cb61cb, 0xe28af3b5, 0x08a433c6, 0xade5a1b8,
        0x91e6869e, 0x34a714e0, 0xde89d493, 0x7bc846ed, 0x0f382284, 0xaa79b0fa,
        0x40577089, 0xe516e2f7, 0xa9b7b85b, 0x0cf62a25, 0xe6d8ea56, 0x43997828,
        0x37691c41, 0x92288e3f, 0x78064e4c, 0xdd47dc32, 0xc76580d9, 0x622412a7,
        0x880ad2d4, 0x2d4b40aa, 0x59bb24c3, 0xfcfab6bd, 0x16d476ce, 0xb395e4b0,
        0xff34be1c, 0x5a752c62, 0xb05bec11, 0x151a7e6f, 0x61ea1a06, 0xc4ab8878,
        0x2e85480b, 0x8bc4da75, 0xb7c7fd53, 0x12866f2d, 0xf8a8af5e, 0x5de93d20,
        0x29195949, 0x8c58cb37, 0x66760b44, 0xc337993a, 0x8f96c396, 0x2ad751e8,
        0xc0f9919b, 0x65b803e5, 0x1148678c, 0xb409f5f2, 0x5e273581, 0xfb66a7ff,
        0x26217bcd, 0x8360e9b3, 0x694e29c0, 0xcc0fbbbe, 0xb8ffdfd7, 0x1dbe4da9,
        0xf7908dda, 0x52d11fa4, 0x1e704508, 0xbb31d776, 0x511f1705, 0xf45e857b,
        0x80aee112, 0x25ef736c, 0xcfc1b31f, 0x6a802161, 0x56830647, 0xf3c29439,
        0x19ec544a, 0xbcadc634, 0xc85da25d, 0x6d1c3023, 0x8732f050, 0x2273622e,
        0x6ed23882, 0xcb93aafc, 0x21bd6a8f, 0x84fcf8f1, 0xf00c9c98, 0x554d0ee6,
        0xbf63ce95, 0x1a225ceb, 0x8b277743, 0x2e66e53d, 0xc448254e, 0x6109b730,
        0x15f9d359, 0xb0b84127, 0x5a968154, 0xffd7132a, 0xb3764986, 0x1637dbf8,
        0xfc191b8b, 0x595889f5, 0x2da8ed9c, 0x88e97fe2, 0x62c7bf91, 0xc7862def,
        0xfb850ac9, 0x5ec498b7, 0xb4ea58c4, 0x11abcaba, 0x655baed3, 0xc01a3cad,
        0x2a34fcde, 0x8f756ea0, 0xc3d4340c, 0x6695a672, 0x8cbb6601, 0x29faf47f,
        0x5d0a9016, 0xf84b0268, 0x1265c21b, 0xb7245065, 0x6a638c57, 0xcf221e29,
        0x250cde5a, 0x804d4c24, 0xf4bd284d, 0x51fcba33, 0xbbd27a40, 0x1e93e83e,
        0x5232b292, 0xf77320ec, 0x1d5de09f, 0xb81c72e1, 0xccec1688, 0x69ad84f6,
        0x83834485, 0x26c2d6fb, 0x1ac1f1dd, 0xbf8063a3, 0x55aea3d0, 0xf0ef31ae,
        0x841f55c7, 0x215ec7b9, 0xcb7007ca, 0x6e3195b4, 0x2290cf18, 0x87d15d66,
        0x6dff9d15, 0xc8be0f6b, 0xbc4e6b02, 0x190ff97c, 0xf321390f, 0x5660ab71,
        0x4c42f79a, 0xe90365e4, 0x032da597, 0xa66c37e9, 0xd29c5380, 0x77ddc1fe,
        0x9df3018d, 0x38b293f3, 0x7413c95f, 0xd1525b21, 0x3b7c9b52, 0x9e3d092c,
        0xeacd6d45, 0x4f8cff3b, 0xa5a23f48, 0x00e3ad36, 0x3ce08a10, 0x99a1186e,
        0x738fd81d, 0xd6ce4a63, 0xa23e2e0a, 0x077fbc74, 0xed517c07, 0x4810ee79,
        0x04b1b4d5, 0xa1f026ab, 0x4bdee6d8, 0xee9f74a6, 0x9a6f10cf, 0x3f2e82b1,
        0xd50042c2, 0x7041d0bc, 0xad060c8e, 0x08479ef0, 0xe2695e83, 0x4728ccfd,
        0x33d8a894, 0x96993aea, 0x7cb7fa99, 0xd9f668e7, 0x9557324b, 0x3016a035,
        0xda386046, 0x7f79f238, 0x0b899651, 0xaec8042f, 0x44e6c45c, 0xe1a75622,
        0xdda47104, 0x78e5e37a, 0x92cb2309, 0x378ab177, 0x437ad51e, 0xe63b4760,
        0x0c158713, 0xa954156d, 0xe5f54fc1, 0x40b4ddbf, 0xaa9a1dcc, 0x0fdb8fb2,
        0x7b2bebdb, 0xde6a79a5, 0x3444b9d6, 0x91052ba8
    },
    {
        0x00000000, 0xdd45aab8, 0xbf672381, 0x62228939, 0x7b2231f3, 0xa6679b4b,
        0xc4451272, 0x1900b8ca, 0xf64463e6, 0x2b01c95e, 0x49234067, 0x9466eadf,
        0x8d665215, 0x5023f8ad, 0x32017194, 0xef44db2c, 0xe964b13d, 0x34211b85,
        0x560392bc, 0x8b463804, 0x924680ce, 0x4f032a76, 0x2d21a34f, 0xf06409f7,
        0x1f20d2db, 0xc2657863, 0xa047f15a, 0x7d025be2, 0x6402e328, 0xb9474990,
        0xdb65c0a9, 0x06206a11, 0xd725148b, 0x0a60be33, 0x6842370a, 0xb5079db2,
        0xac072578, 0x71428fc0, 0x136006f9, 0xce25ac41, 0x2161776d, 0xfc24ddd5,
        0x9e0654ec, 0x4343fe54, 0x5a43469e, 0x8706ec26, 0xe524651f, 0x3861cfa7,
        0x3e41a5b6, 0xe3040f0e, 0x81268637, 0x5c632c8f, 0x45639445, 0x98263efd,
        0xfa04b7c4, 0x27411d7c, 0xc805c650, 0x15406ce8, 0x7762e5d1, 0xaa274f69,
        0xb327f7a3, 0x6e625d1b, 0x0c40d422, 0xd1057e9a, 0xaba65fe7, 0x76e3f55f,
        0x14c17c66, 0xc984d6de, 0xd0846e14, 0x0dc1c4ac, 0x6fe34d95, 0xb2a6e72d,
        0x5de23c01, 0x80a796b9, 0xe2851f80, 0x3fc0b538, 0x26c00df2, 0xfb85a74a,
        0x99a72e73, 0x44e284cb, 0x42c2eeda, 0x9f874462, 0xfda5cd5b, 0x20e067e3,
        0x39e0df29, 0xe4a57591, 0x8687fca8, 0x5bc25610, 0xb4868d3c, 0x69c32784,
        0x0be1aebd, 0xd6a40405, 0xcfa4bccf, 0x12e11677, 0x70c39f4e, 0xad8635f6,
        0x7c834b6c, 0xa1c6e1d4, 0xc3e468ed, 0x1ea1c255, 0x07a17a9f, 0xdae4d027,
        0xb8c6591e, 0x6583f3a6, 0x8ac7288a, 0x57828232, 0x35a00b0b, 0xe8e5a1b3,
        0xf1e51979, 0x2ca0b3c1, 0x4e823af8, 0x93c79040, 0x95e7fa51, 0x48a250e9,
        0x2a80d9d0, 0xf7c57368, 0xeec5cba2, 0x3380611a, 0x51a2e823, 0x8ce7429b,
        0x63a399b7, 0xbee6330f, 0xdcc4ba36, 0x0181108e, 0x1881a844, 0xc5c402fc,
        0xa7e68bc5, 0x7aa3217d, 0x52a0c93f, 0x8fe56387, 0xedc7eabe, 0x30824006,
        0x2982f8cc, 0xf4c75274, 0x96e5db4d, 0x4ba071f5, 0xa4e4aad9, 0x79a10061,
        0x1b838958, 0xc6c623e0, 0xdfc69b2a, 0x02833192, 0x60a1b8ab, 0xbde41213,
        0xbbc47802, 0x6681d2ba, 0x04a35b83, 0xd9e6f13b, 0xc0e649f1, 0x1da3e349,
        0x7f816a70, 0xa2c4c0c8, 0x4d801be4, 0x90c5b15c, 0xf2e73865, 0x2fa292dd,
        0x36a22a17, 0xebe780af, 0x89c50996, 0x5480a32e, 0x8585ddb4, 0x58c0770c,
        0x3ae2fe35, 0xe7a7548d, 0xfea7ec47, 0x23e246ff, 0x41c0cfc6, 0x9c85657e,
        0x73c1be52, 0xae8414ea, 0xcca69dd3, 0x11e3376b, 0x08e38fa1, 0xd5a62519,
        0xb784ac20, 0x6ac10698, 0x6ce16c89, 0xb1a4c631, 0xd3864f08, 0x0ec3e5b0,
        0x17c35d7a, 0xca86f7c2, 0xa8a47efb, 0x75e1d443, 0x9aa50f6f, 0x47e0a5d7,
        0x25c22cee, 0xf8878656, 0xe1873e9c, 0x3cc29424, 0x5ee01d1d, 0x83a5b7a5,
        0xf90696d8, 0x24433c60, 0x4661b559, 0x9b241fe1, 0x8224a72b, 0x5f610d93,
        0x3d4384aa, 0xe0062e12, 0x0f42f53e, 0xd2075f86, 0xb025d6bf, 0x6d607c07,
        0x7460c4cd, 0xa9256e75, 0xcb07e74c, 0x16424df4, 0x106227e5, 0xcd278d5d,
        0xaf050464, 0x7240aedc, 0x6b401616, 0xb605bcae, 0xd4273597, 0x09629f2f,
        0xe6264403, 0x3b63eebb, 0x59416782, 0x8404cd3a, 0x9d0475f0, 0x4041df48,
        0x22635671, 0xff26fcc9, 0x2e238253, 0xf36628eb, 0x9144a1d2, 0x4c010b6a,
        0x5501b3a0, 0x88441918, 0xea669021, 0x37233a99, 0xd867e1b5, 0x05224b0d,
        0x6700c234, 0xba45688c, 0xa345d046, 0x7e007afe, 0x1c22f3c7, 0xc167597f,
        0xc747336e, 0x1a0299d6, 0x782010ef, 0xa565ba57, 0xbc65029d, 0x6120a825,
        0x0302211c, 0xde478ba4, 0x31035088, 0xec46fa30, 0x8e647309, 0x5321d9b1,
        0x4a21617b, 0x9764cbc3, 0xf54642fa, 0x2803e842
    },
    {
        0x00000000, 0x38116fac, 0x7022df58, 0x4833b0f4, 0xe045beb0, 0xd854d11c,
        0x906761e8, 0xa8760e44, 0xc5670b91, 0xfd76643d, 0xb545d4c9, 0x8d54bb65,
        0x2522b521, 0x1d33da8d, 0x55006a79, 0x6d1105d5, 0x8f2261d3, 0xb7330e7f,
        0xff00be8b, 0xc711d127, 0x6f67df63, 0x5776b0cf, 0x1f45003b, 0x27546f97,
        0x4a456a42, 0x725405ee, 0x3a67b51a, 0x0276dab6, 0xaa00d4f2, 0x9211bb5e,
        0xda220baa, 0xe2336406, 0x1ba8b557, 0x23b9dafb, 0x6b8a6a0f, 0x539b05a3,
        0xfbed0be7, 0xc3fc644b, 0x8bcfd4bf, 0xb3debb13, 0xdecfbec6, 0xe6ded16a,
        0xaeed619e, 0x96fc0e32, 0x3e8a0076, 0x069b6fda, 0x4ea8df2e, 0x76b9b082,
        0x948ad484, 0xac9bbb28, 0xe4a80bdc, 0xdcb96470, 0x74cf6a34, 0x4cde0598,
        0x04edb56c, 0x3cfcdac0, 0x51eddf15, 0x69fcb0b9, 0x21cf004d, 0x19de6fe1,
        0xb1a861a5, 0x89b90e09, 0xc18abefd, 0xf99bd151, 0x37516aae, 0x0f400502,
        0x4773b5f6, 0x7f62da5a, 0xd714d41e, 0xef05bbb2, 0xa7360b46, 0x9f2764ea,
        0xf236613f, 0xca270e93, 0x8214be67, 0xba05d1cb, 0x1273df8f, 0x2a62b023,
        0x625100d7, 0x5a406f7b, 0xb8730b7d, 0x806264d1, 0xc851d425, 0xf040bb89,
        0x5836b5cd, 0x6027da61, 0x28146a95, 0x10050539, 0x7d1400ec, 0x45056f40,
        0x0d36dfb4, 0x3527b018, 0x9d51be5c, 0xa540d1f0, 0xed736104, 0xd5620ea8,
        0x2cf9dff9, 0x14e8b055, 0x5cdb00a1, 0x64ca6f0d, 0xccbc6149, 0xf4ad0ee5,
        0xbc9ebe11, 0x848fd1bd, 0xe99ed468, 0xd18fbbc4, 0x99bc0b30, 0xa1ad649c,
        0x09db6ad8, 0x31ca0574, 0x79f9b580, 0x41e8da2c, 0xa3dbbe2a, 0x9bcad186,
        0xd3f96172, 0xebe80ede, 0x439e009a, 0x7b8f6f36, 0x33bcdfc2, 0x0badb06e,
        0x66bcb5bb, 0x5eadda17, 0x169e6ae3, 0x2e8f054f, 0x86f90b0b, 0xbee864a7,
        0xf6dbd453, 0xcecabbff, 0x6ea2d55c, 0x56b3baf0, 0x1e800a04, 0x269165a8,
        0x8ee76bec, 0xb6f60440, 0xfec5b4b4, 0xc6d4db18, 0xabc5decd, 0x93d4b161,
        0xdbe70195, 0xe3f66e39, 0x4b80607d, 0x73910fd1, 0x3ba2bf25, 0x03b3d089,
        0xe180b48f, 0xd991db23, 0x91a26bd7, 0xa9b3047b, 0x01c50a3f, 0x39d46593,
        0x71e7d567, 0x49f6bacb, 0x24e7bf1e, 0x1cf6d0b2, 0x54c56046, 0x6cd40fea,
        0xc4a201ae, 0xfcb36e02, 0xb480def6, 0x8c91b15a, 0x750a600b, 0x4d1b0fa7,
        0x0528bf53, 0x3d39d0ff, 0x954fdebb, 0xad5eb117, 0xe56d01e3, 0xdd7c6e4f,
        0xb06d6b9a, 0x887c0436, 0xc04fb4c2, 0xf85edb6e, 0x5028d52a, 0x6839ba86,
        0x200a0a72, 0x181b65de, 0xfa2801d8, 0xc2396e74, 0x8a0ade80, 0xb21bb12c,
        0x1a6dbf68, 0x227cd0c4, 0x6a4f6030, 0x525e0f9c, 0x3f4f0a49, 0x075e65e5,
        0x4f6dd511, 0x777cbabd, 0xdf0ab4f9, 0xe71bdb55, 0xaf286ba1, 0x9739040d,
        0x59f3bff2, 0x61e2d05e, 0x29d160aa, 0x11c00f06, 0xb9b60142, 0x81a76eee,
        0xc994de1a, 0xf185b1b6, 0x9c94b463, 0xa485dbcf, 0xecb66b3b, 0xd4a70497,
        0x7cd10ad3, 0x44c0657f, 0x0cf3d58b, 0x34e2ba27, 0xd6d1de21, 0xeec0b18d,
        0xa6f30179, 0x9ee26ed5, 0x36946091, 0x0e850f3d, 0x46b6bfc9, 0x7ea7d065,
        0x13b6d5b0, 0x2ba7ba1c, 0x63940ae8, 0x5b856544, 0xf3f36b00, 0xcbe204ac,
        0x83d1b458, 0xbbc0dbf4, 0x425b0aa5, 0x7a4a6509, 0x3279d5fd, 0x0a68ba51,
        0xa21eb415, 0x9a0fdbb9, 0xd23c6b4d, 0xea2d04e1, 0x873c0134, 0xbf2d6e98,
        0xf71ede6c, 0xcf0fb1c0, 0x6779bf84, 0x5f68d028, 0x175b60dc, 0x2f4a0f70,
        0xcd796b76, 0xf56804da, 0xbd5bb42e, 0x854adb82, 0x2d3cd5c6, 0x152dba6a,
        0x5d1e0a9e, 0x650f6532, 0x081e60e7, 0x300f0f4b, 0x783cbfbf, 0x402dd013,
        0xe85bde57, 0xd04ab1fb, 0x9879010f, 0xa0686ea3
    },
    {
        0x00000000, 0xef306b19, 0xdb8ca0c3, 0x34bccbda, 0xb2f53777, 0x5dc55c6e,
        0x697997b4, 0x8649fcad, 0x6006181f, 0x8f367306, 0xbb8ab8dc, 0x54bad3c5,
        0xd2f32f68, 0x3dc34471, 0x097f8fab, 0xe64fe4b2, 0xc00c303e, 0x2f3c5b27,
        0x1b8090fd, 0xf4b0fbe4, 0x72f90749, 0x9dc96c50, 0xa975a78a, 0x4645cc93,
        0xa00a2821, 0x4f3a4338, 0x7b8688e2, 0x94b6e3fb, 0x12ff1f56, 0xfdcf744f,
        0xc973bf95, 0x2643d48c, 0x85f4168d, 0x6ac47d94, 0x5e78b64e, 0xb148dd57,
        0x370121fa, 0xd8314ae3, 0xec8d8139, 0x03bdea20, 0xe5f20e92, 0x0ac2658b,
        0x3e7eae51, 0xd14ec548, 0x570739e5, 0xb83752fc, 0x8c8b9926, 0x63bbf23f,
        0x45f826b3, 0xaac84daa, 0x9e748670, 0x7144ed69, 0xf70d11c4, 0x183d7add,
        0x2c81b107, 0xc3b1da1e, 0x25fe3eac, 0xcace55b5, 0xfe729e6f, 0x1142f576,
        0x970b09db, 0x783b62c2, 0x4c87a918, 0xa3b7c201, 0x0e045beb, 0xe13430f2,
        0xd588fb28, 0x3ab89031, 0xbcf16c9c, 0x53c10785, 0x677dcc5f, 0x884da746,
        0x6e0243f4, 0x813228ed, 0xb58ee337, 0x5abe882e, 0xdcf77483, 0x33c71f9a,
        0x077bd440, 0xe84bbf59, 0xce086bd5, 0x213800cc, 0x1584cb16, 0xfab4a00f,
        0x7cfd5ca2, 0x93cd37bb, 0xa771fc61, 0x48419778, 0xae0e73ca, 0x413e18d3,
        0x7582d309, 0x9ab2b810, 0x1cfb44bd, 0xf3cb2fa4, 0xc777e47e, 0x28478f67,
        0x8bf04d66, 0x64c0267f, 0x507ceda5, 0xbf4c86bc, 0x39057a11, 0xd6351108,
        0xe289dad2, 0x0db9b1cb, 0xebf65579, 0x04c63e60, 0x307af5ba, 0xdf4a9ea3,
        0x5903620e, 0xb6330917, 0x828fc2cd, 0x6dbfa9d4, 0x4bfc7d58, 0xa4cc1641,
        0x9070dd9b, 0x7f40b682, 0xf9094a2f, 0x16392136, 0x2285eaec, 0xcdb581f5,
        0x2bfa6547, 0xc4ca0e5e, 0xf076c584, 0x1f46ae9d, 0x990f5230, 0x763f3929,
        0x4283f2f3, 0xadb399ea, 0x1c08b7d6, 0xf338dccf, 0xc7841715, 0x28b47c0c,
        0xaefd80a1, 0x41cdebb8, 0x75712062, 0x9a414b7b, 0x7c0eafc9, 0x933ec4d0,
        0xa7820f0a, 0x48b26413, 0xcefb98be, 0x21cbf3a7, 0x1577387d, 0xfa475364,
        0xdc0487e8, 0x3334ecf1, 0x0788272b, 0xe8b84c32, 0x6ef1b09f, 0x81c1db86,
        0xb57d105c, 0x5a4d7b45, 0xbc029ff7, 0x5332f4ee, 0x678e3f34, 0x88be542d,
        0x0ef7a880, 0xe1c7c399, 0xd57b0843, 0x3a4b635a, 0x99fca15b, 0x76ccca42,
        0x42700198, 0xad406a81, 0x2b09962c, 0xc439fd35, 0xf08536ef, 0x1fb55df6,
        0xf9fab944, 0x16cad25d, 0x22761987, 0xcd46729e, 0x4b0f8e33, 0xa43fe52a,
        0x90832ef0, 0x7fb345e9, 0x59f09165, 0xb6c0fa7c, 0x827c31a6, 0x6d4c5abf,
        0xeb05a612, 0x0435cd0b, 0x308906d1, 0xdfb96dc8, 0x39f6897a, 0xd6c6e263,
        0xe27a29b9, 0x0d4a42a0, 0x8b03be0d, 0x6433d514, 0x508f1ece, 0xbfbf75d7,
        0x120cec3d, 0xfd3c8724, 0xc9804cfe, 0x26b027e7, 0xa0f9db4a, 0x4fc9b053,
        0x7b757b89, 0x94451090, 0x720af422, 0x9d3a9f3b, 0xa98654e1, 0x46b63ff8,
        0xc0ffc355, 0x2fcfa84c, 0x1b736396, 0xf443088f, 0xd200dc03, 0x3d30b71a,
        0x098c7cc0, 0xe6bc17d9, 0x60f5eb74, 0x8fc5806d, 0xbb794bb7, 0x544920ae,
        0xb206c41c, 0x5d36af05, 0x698a64df, 0x86ba0fc6, 0x00f3f36b, 0xefc39872,
        0xdb7f53a8, 0x344f38b1, 0x97f8fab0, 0x78c891a9, 0x4c745a73, 0xa344316a,
        0x250dcdc7, 0xca3da6de, 0xfe816d04, 0x11b1061d, 0xf7fee2af, 0x18ce89b6,
        0x2c72426c, 0xc3422975, 0x450bd5d8, 0xaa3bbec1, 0x9e87751b, 0x71b71e02,
        0x57f4ca8e, 0xb8c4a197, 0x8c786a4d, 0x63480154, 0xe501fdf9, 0x0a3196e0,
        0x3e8d5d3a, 0xd1bd3623, 0x37f2d291, 0xd8c2b988, 0xec7e7252, 0x034e194b,
        0x8507e5e6, 0x6a378eff, 0x5e8b4525, 0xb1bb2e3c
    },
    {
        0x00000000, 0x68032cc8, 0xd0065990, 0xb8057558, 0xa5e0c5d1, 0xcde3e919,
        0x75e69c41, 0x1de5b089, 0x4e2dfd53, 0x262ed19b, 0x9e2ba4c3, 0xf628880b,
        0xebcd3882, 0x83ce144a, 0x3bcb6112, 0x53c84dda, 0x9c5bfaa6, 0xf458d66e,
        0x4c5da336, 0x245e8ffe, 0x39bb3f77, 0x51b813bf, 0xe9bd66e7, 0x81be4a2f,
        0xd27607f5, 0xba752b3d, 0x02705e65, 0x6a7372ad, 0x7796c224, 0x1f95eeec,
        0xa7909bb4, 0xcf93b77c, 0x3d5b83bd, 0x5558af75, 0xed5dda2d, 0x855ef6e5,
        0x98bb466c, 0xf0b86aa4, 0x48bd1ffc, 0x20be3334, 0x73767eee, 0x1b755226,
        0xa370277e, 0xcb730bb6, 0xd696bb3f, 0xbe9597f7, 0x0690e2af, 0x6e93ce67,
        0xa100791b, 0xc90355d3, 0x7106208b, 0x19050c43, 0x04e0bcca, 0x6ce39002,
        0xd4e6e55a, 0xbce5c992, 0xef2d8448, 0x872ea880, 0x3f2bddd8, 0x5728f110,
        0x4acd4199, 0x22ce6d51, 0x9acb1809, 0xf2c834c1, 0x7ab7077a, 0x12b42bb2,
        0xaab15eea, 0xc2b27222, 0xdf57c2ab, 0xb754ee63, 0x0f519b3b, 0x6752b7f3,
        0x349afa29, 0x5c99d6e1, 0xe49ca3b9, 0x8c9f8f71, 0x917a3ff8, 0xf9791330,
        0x417c6668, 0x297f4aa0, 0xe6ecfddc, 0x8eefd114, 0x36eaa44c, 0x5ee98884,
        0x430c380d, 0x2b0f14c5, 0x930a619d, 0xfb094d55, 0xa8c1008f, 0xc0c22c47,
        0x78c7591f, 0x10c475d7, 0x0d21c55e, 0x6522e996, 0xdd279cce, 0xb524b006,
        0x47ec84c7, 0x2fefa80f, 0x97eadd57, 0xffe9f19f, 0xe20c4116, 0x8a0f6dde,
        0x320a1886, 0x5a09344e, 0x09c17994, 0x61c2555c, 0xd9c72004, 0xb1c40ccc,
        0xac21bc45, 0xc422908d, 0x7c27e5d5, 0x1424c91d, 0xdbb77e61, 0xb3b452a9,
        0x0bb127f1, 0x63b20b39, 0x7e57bbb0, 0x16549778, 0xae51e220, 0xc652cee8,
        0x959a8332, 0xfd99affa, 0x459cdaa2, 0x2d9ff66a, 0x307a46e3, 0x58796a2b,
        0xe07c1f73, 0x887f33bb, 0xf56e0ef4, 0x9d6d223c, 0x25685764, 0x4d6b7bac,
        0x508ecb25, 0x388de7ed, 0x808892b5, 0xe88bbe7d, 0xbb43f3a7, 0xd340df6f,
        0x6b45aa37, 0x034686ff, 0x1ea33676, 0x76a01abe, 0xcea56fe6, 0xa6a6432e,
        0x6935f452, 0x0136d89a, 0xb933adc2, 0xd130810a, 0xccd53183, 0xa4d61d4b,
        0x1cd36813, 0x74d044db, 0x27180901, 0x4f1b25c9, 0xf71e5091, 0x9f1d7c59,
        0x82f8ccd0, 0xeafbe018, 0x52fe9540, 0x3afdb988, 0xc8358d49, 0xa036a181,
        0x1833d4d9, 0x7030f811, 0x6dd54898, 0x05d66450, 0xbdd31108, 0xd5d03dc0,
        0x8618701a, 0xee1b5cd2, 0x561e298a, 0x3e1d0542, 0x23f8b5cb, 0x4bfb9903,
        0xf3feec5b, 0x9bfdc093, 0x546e77ef, 0x3c6d5b27, 0x84682e7f, 0xec6b02b7,
        0xf18eb23e, 0x998d9ef6, 0x2188ebae, 0x498bc766, 0x1a438abc, 0x7240a674,
        0xca45d32c, 0xa246ffe4, 0xbfa34f6d, 0xd7a063a5, 0x6fa516fd, 0x07a63a35,
        0x8fd9098e, 0xe7da2546, 0x5fdf501e, 0x37dc7cd6, 0x2a39cc5f, 0x423ae097,
        0xfa3f95cf, 0x923cb907, 0xc1f4f4dd, 0xa9f7d815, 0x11f2ad4d, 0x79f18185,
        0x6414310c, 0x0c171dc4, 0xb412689c, 0xdc114454, 0x1382f328, 0x7b81dfe0,
        0xc384aab8, 0xab878670, 0xb66236f9, 0xde611a31, 0x66646f69, 0x0e6743a1,
        0x5daf0e7b, 0x35ac22b3, 0x8da957eb, 0xe5aa7b23, 0xf84fcbaa, 0x904ce762,
        0x2849923a, 0x404abef2, 0xb2828a33, 0xda81a6fb, 0x6284d3a3, 0x0a87ff6b,
        0x17624fe2, 0x7f61632a, 0xc7641672, 0xaf673aba, 0xfcaf7760, 0x94ac5ba8,
        0x2ca92ef0, 0x44aa0238, 0x594fb2b1, 0x314c9e79, 0x8949eb21, 0xe14ac7e9,
        0x2ed97095, 0x46da5c5d, 0xfedf2905, 0x96dc05cd, 0x8b39b544, 0xe33a998c,
        0x5b3fecd4, 0x333cc01c, 0x60f48dc6, 0x08f7a10e, 0xb0f2d456, 0xd8f1f89e,
        0xc5144817, 0xad1764df, 0x15121187, 0x7d113d4f
    },
    {
        0x00000000, 0x493c7d27, 0x9278fa4e, 0xdb448769, 0x211d826d, 0x6821ff4a,
        0xb3657823, 0xfa590504, 0x423b04da, 0x0b0779fd, 0xd043fe94, 0x997f83b3,
        0x632686b7, 0x2a1afb90, 0xf15e7cf9, 0xb86201de, 0x847609b4, 0xcd4a7493,
        0x160ef3fa, 0x5f328edd, 0xa56b8bd9, 0xec57f6fe, 0x37137197, 0x7e2f0cb0,
        0xc64d0d6e, 0x8f717049, 0x5435f720, 0x1d098a07, 0xe7508f03, 0xae6cf224,
        0x7528754d, 0x3c14086a, 0x0d006599, 0x443c18be, 0x9f789fd7, 0xd644e2f0,
        0x2c1de7f4, 0x65219ad3, 0xbe651dba, 0xf759609d, 0x4f3b6143, 0x06071c64,
        0xdd439b0d, 0x947fe62a, 0x6e26e32e, 0x271a9e09, 0xfc5e1960, 0xb5626447,
        0x89766c2d, 0xc04a110a, 0x1b0e9663, 0x5232eb44, 0xa86bee40, 0xe1579367,
        0x3a13140e, 0x732f6929, 0xcb4d68f7, 0x827115d0, 0x593592b9, 0x1009ef9e,
        0xea50ea9a, 0xa36c97bd, 0x782810d4, 0x31146df3, 0x1a00cb32, 0x533cb615,
        0x8878317c, 0xc1444c5b, 0x3b1d495f, 0x72213478, 0xa965b311, 0xe059ce36,
        0x583bcfe8, 0x1107b2cf, 0xca4335a6, 0x837f4881, 0x79264d85, 0x301a30a2,
        0xeb5eb7cb, 0xa262caec, 0x9e76c286, 0xd74abfa1, 0x0c0e38c8, 0x453245ef,
        0xbf6b40eb, 0xf6573dcc, 0x2d13baa5, 0x642fc782, 0xdc4dc65c, 0x9571bb7b,
        0x4e353c12, 0x07094135, 0xfd504431, 0xb46c3916, 0x6f28be7f, 0x2614c358,
        0x1700aeab, 0x5e3cd38c, 0x857854e5, 0xcc4429c2, 0x361d2cc6, 0x7f2151e1,
        0xa465d688, 0xed59abaf, 0x553baa71, 0x1c07d756, 0xc743503f, 0x8e7f2d18,
        0x7426281c, 0x3d1a553b, 0xe65ed252, 0xaf62af75, 0x9376a71f, 0xda4ada38,
        0x010e5d51, 0x48322076, 0xb26b2572, 0xfb575855, 0x2013df3c, 0x692fa21b,
        0xd14da3c5, 0x9871dee2, 0x4335598b, 0x0a0924ac, 0xf05021a8, 0xb96c5c8f,
        0x6228dbe6, 0x2b14a6c1, 0x34019664, 0x7d3deb43, 0xa6796c2a, 0xef45110d,
        0x151c1409, 0x5c20692e, 0x8764ee47, 0xce589360, 0x763a92be, 0x3f06ef99,
        0xe44268f0, 0xad7e15d7, 0x572710d3, 0x1e1b6df4, 0xc55fea9d, 0x8c6397ba,
        0xb0779fd0, 0xf94be2f7, 0x220f659e, 0x6b3318b9, 0x916a1dbd, 0xd856609a,
        0x0312e7f3, 0x4a2e9ad4, 0xf24c9b0a, 0xbb70e62d, 0x60346144, 0x29081c63,
        0xd3511967, 0x9a6d6440, 0x4129e329, 0x08159e0e, 0x3901f3fd, 0x703d8eda,
        0xab7909b3, 0xe2457494, 0x181c7190, 0x51200cb7, 0x8a648bde, 0xc358f6f9,
        0x7b3af727, 0x32068a00, 0xe9420d69, 0xa07e704e, 0x5a27754a, 0x131b086d,
        0xc85f8f04, 0x8163f223, 0xbd77fa49, 0xf44b876e, 0x2f0f0007, 0x66337d20,
        0x9c6a7824, 0xd5560503, 0x0e12826a, 0x472eff4d, 0xff4cfe93, 0xb67083b4,
        0x6d3404dd, 0x240879fa, 0xde517cfe, 0x976d01d9, 0x4c2986b0, 0x0515fb97,
        0x2e015d56, 0x673d2071, 0xbc79a718, 0xf545da3f, 0x0f1cdf3b, 0x4620a21c,
        0x9d642575, 0xd4585852, 0x6c3a598c, 0x250624ab, 0xfe42a3c2, 0xb77edee5,
        0x4d27dbe1, 0x041ba6c6, 0xdf5f21af, 0x96635c88, 0xaa7754e2, 0xe34b29c5,
        0x380faeac, 0x7133d38b, 0x8b6ad68f, 0xc256aba8, 0x19122cc1, 0x502e51e6,
        0xe84c5038, 0xa1702d1f, 0x7a34aa76, 0x3308d751, 0xc951d255, 0x806daf72,
        0x5b29281b, 0x1215553c, 0x230138cf, 0x6a3d45e8, 0xb179c281, 0xf845bfa6,
        0x021cbaa2, 0x4b20c785, 0x906440ec, 0xd9583dcb, 0x613a3c15, 0x28064132,
        0xf342c65b, 0xba7ebb7c, 0x4027be78, 0x091bc35f, 0xd25f4436, 0x9b633911,
        0xa777317b, 0xee4b4c5c, 0x350fcb35, 0x7c33b612, 0x866ab316, 0xcf56ce31,
        0x14124958, 0x5d2e347f, 0xe54c35a1, 0xac704886, 0x7734cfef, 0x3e08b2c8,
        0xc451b7cc, 0x8d6dcaeb, 0x56294d82, 0x1f1530a5
    }
};

//  --------------------------------------------------------------------------
//  The CRC32C of data in software, continuing from crc (start with 0).
//  Eight bytes per step (slicing-by-8), then byte by byte.

uint32_t
kp_crc32c_software (uint32_t crc, const void *data, size_t size)
{
    assert (data || size == 0);
    const uint8_t *bytes = (const uint8_t *) data;
    crc = ~crc;
    while (size >= 8) {
        uint32_t low = crc ^ s_get_u32 (bytes);
        uint32_t high = s_get_u32 (bytes + 4);
        crc = s_crc32c_table [7][low & 0xff]
            ^ s_crc32c_table [6][(low >> 8) & 0xff]
            ^ s_crc32c_table [5][(low >> 16) & 0xff]
            ^ s_crc32c_table [4][low >> 24]
            ^ s_crc32c_table [3][high & 0xff]
            ^ s_crc32c_table [2][(high >> 8) & 0xff]
            ^ s_crc32c_table [1][(high >> 16) & 0xff]
            ^ s_crc32c_table [0][high >> 24];
        bytes += 8;
        size -= 8;
    }
    while (size--)
        crc = (crc >> 8) ^ s_crc32c_table [0][(crc ^ *bytes++) & 0xff];
    return ~crc;
}

#if defined (__x86_64__)
//  --------------------------------------------------------------------------
//  The CRC32C of data with SSE4.2's crc32 instruction (same polynomial,
//  same reflection): bytes up to an 8-byte boundary, then 8 bytes per
//  instruction, then the rest. Call only if the CPU has SSE4.2.

__attribute__ ((target ("sse4.2")))
static uint32_t
s_crc32c_sse42 (uint32_t crc, const uint8_t *bytes, size_t size)
{
    uint32_t state = ~crc;
    while (size > 0 && ((uintptr_t) bytes & 7) != 0) {
        state = _mm_crc32_u8 (state, *bytes++);
        size--;
    }
    uint64_t wide = state;
    while (size >= 8) {
        uint64_t word;
        memcpy (&word, bytes, 8);   //  x86 is little-endian, as the CRC reads
        wide = _mm_crc32_u64 (wide, word);
        bytes += 8;
        size -= 8;
    }
    state = (uint32_t) wide;
    while (size-- > 0)
        state = _mm_crc32_u8 (state, *bytes++);
    return ~state;
}
#endif

//  --------------------------------------------------------------------------
//  True if kp_crc32c uses the CPU's crc32 instruction. The check reads what
//  the compiler's runtime found at start-up: no state of ours.

bool
kp_crc32c_accelerated (void)
{
#if defined (__x86_64__)
    return __builtin_cpu_supports ("sse4.2");
#else
    return false;
#endif
}

//  --------------------------------------------------------------------------
//  The CRC32C of data, continuing from crc (start with 0): with the crc32
//  instruction where the CPU has SSE4.2 (about 10 times faster), else in
//  software.

uint32_t
kp_crc32c (uint32_t crc, const void *data, size_t size)
{
    assert (data || size == 0);
#if defined (__x86_64__)
    if (__builtin_cpu_supports ("sse4.2"))
        return s_crc32c_sse42 (crc, (const uint8_t *) data, size);
#endif
    return kp_crc32c_software (crc, data, size);
}
