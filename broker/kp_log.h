/*  =========================================================================
    kp_log - append-only segmented log: framing, group commit, recovery

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
@header
    A kp_log_t is a directory of segment files holding framed records:
    each record is [u32 length][u32 CRC32C of payload][payload], little
    endian (docs/LOG_FORMAT.md). Records get a sequence number from 0 and a
    position (opaque, stable for the life of the log) to read them back.
    Appends are buffered in memory (a write buffer of up to 1 MiB per log)
    and written with one write when kp_log_sync is called (or when the
    buffer fills, at rollover, before kp_log_replay or kp_log_erase, and in
    kp_log_destroy); kp_log_sync then makes every record appended so far
    durable with one fdatasync (group commit). Records in the write buffer,
    and the records written last to the last segment (a cache of a size
    set by kp_log_set_cache, 1 MiB by default), are read back from memory.
    Memory: a log holds at most 1.5 x its cache size + 1 MiB in its
    buffer (2.5 MiB by default), more only while a record over 1 MiB waits
    in it to be written; plus a read buffer as large as the largest record
    read, and during open and replay a read-ahead buffer of 1 MiB (or the
    largest record).
    The last segment keeps zero space after its records, written ahead a
    chunk at a time after a sync, so that appends do not change the file's
    size and fdatasync has no inode to write; readers go by the end of the
    last record, never the file size, and a rollover cuts the full segment
    to its records.
    On open, zeros after the last record are free space (clean); a torn
    last record (followed only by zeros) is cut (if allowed) by zeroing it;
    a bad record anywhere else makes open fail with a message naming the
    file and offset.
    Positions survive close and reopen (segments are never removed), so
    they may be stored in records, as body_pos is.
    Owned by one thread; not thread-safe. The one other thread is the
    helper of kp_log_sync_both (a, b), which belongs to a and touches
    nothing but the descriptor of b's last segment (see there).
@end
*/
#ifndef KP_LOG_H_INCLUDED
#define KP_LOG_H_INCLUDED

#include "kp_util.h"

typedef struct _kp_log_t kp_log_t;

typedef enum {
    KP_LOG_OK = 0,                  //  opened clean
    KP_LOG_TRUNCATED = 1,           //  opened; a torn tail was cut
    KP_LOG_CORRUPT = 2,             //  bad record mid-log; not opened
    KP_LOG_IOERR = 3                //  cannot read/create; not opened
} kp_log_status_t;

//  Called for each record in order by kp_log_replay. Return 0 to go on,
//  -1 to stop the replay (kp_log_replay then returns -1).
typedef int (kp_log_visit_fn) (const uint8_t *data, size_t size,
                               uint64_t seq, uint64_t pos, void *arg);

//  Open the log in dir, creating dir if missing. segment_size is the size
//  after which a new segment starts. If load_truncated, a torn tail is cut
//  and *status_p is KP_LOG_TRUNCATED; otherwise a torn tail is an error.
//  Returns NULL on failure, with *status_p saying why and one zsys_error line
//  naming the file, the offset and the repair step.
kp_log_t *
    kp_log_open (const char *dir, size_t segment_size, bool load_truncated,
                 kp_log_status_t *status_p);

//  Open the log in dir for reading only (an auditor's copy, a read-only
//  mount): checks every record as kp_log_open does, but writes nothing,
//  creates nothing, and treats a torn tail as an error (KP_LOG_CORRUPT).
//  Appends and erases are refused.
kp_log_t *
    kp_log_open_readonly (const char *dir, kp_log_status_t *status_p);

//  Close the log: writes records still in the write buffer to the file,
//  but does not sync them, and joins the helper thread that
//  kp_log_sync_both (self, ...) started, if any. Idempotent; nulls *self_p.
void
    kp_log_destroy (kp_log_t **self_p);

//  Append one record of size bytes (size > 0, <= KP_LOG_MAX_RECORD).
//  Sets *seq_p to its sequence number and *pos_p to its position. Not durable
//  until kp_log_sync returns 0. Returns -1 on a write error (the record goes
//  to a write buffer, so the error shows when a full buffer is written):
//  the log cut itself back to the last whole record and refuses further
//  appends; records of the failed batch are lost, and kp_log_sync fails.
//  A record over KP_LOG_MAX_RECORD is refused (-1, logged) without entering
//  that state; size 0 is a programming error and asserts.
#define KP_LOG_MAX_RECORD (64u * 1024 * 1024)
int
    kp_log_append (kp_log_t *self, const void *data, size_t size,
                   uint64_t *seq_p, uint64_t *pos_p) KP_MUST_CHECK;

//  Make every record appended so far durable: write the write buffer, then
//  fdatasync the last segment (a rollover synced the ones before); then,
//  if the records come near the end of the file, write zero space ahead and
//  fdatasync it (once per chunk of up to 8 MiB; a failed write of the
//  zeros is no error, a failed fdatasync is). Returns
//  0, or -1: then the caller must stop accepting and exit (after an fsync
//  error the kernel may have dropped the dirty pages; after a failed write,
//  records appended since the last sync were lost).
int
    kp_log_sync (kp_log_t *self) KP_MUST_CHECK;

//  Make every record appended so far to both logs durable, syncing the
//  two at the same time (b's fdatasync on a helper thread while this
//  thread syncs a). Either may be NULL or have nothing to sync. Returns 0,
//  or -1 if either failed (same semantics as kp_log_sync for each).
//  Each log ends as kp_log_sync would leave it: a failure of one does not
//  stop the other's sync. a and b are different logs, both owned by the
//  calling thread. Call sequence of a group commit over two logs:
//
//      kp_log_append (bodies, ...);  kp_log_append (log, ...);  ...
//      if (kp_log_sync_both (bodies, log))
//          stop accepting and exit 1, as after kp_log_sync
//      send the receipts
//
//  Threads: the writes of both batches happen on this thread. Only if
//  both logs have records to sync is b's fdatasync handed to a's helper
//  thread (otherwise the one sync runs here, with no handoff). The helper
//  belongs to a: started by the first call that needs it, it lives until
//  kp_log_destroy (a) joins it. It receives the number of b's last segment
//  descriptor over a socket pair, calls fdatasync on it, and answers 0 or
//  errno the same way; it touches no memory of a or b, and this thread
//  waits for the answer before it updates either log (synced, the sync
//  count, the failed state). So b needs no lock, and may be destroyed at
//  any time between calls. If the helper cannot start (logged once), the
//  two are synced in turn on this thread.
//  Order: none between the two logs. A crash during the call may leave
//  the new records of either one durable and not the other's, whereas
//  kp_log_sync (a) then kp_log_sync (b) writes b's batch only once a's is
//  durable (unless b's buffer filled or b rolled over before). Records in
//  b that point into a must be checked against a on recovery.
int
    kp_log_sync_both (kp_log_t *a, kp_log_t *b) KP_MUST_CHECK;

//  Read the record at pos. Returns a pointer into a buffer owned by the log,
//  valid until the next call on the log, and sets *size_p; NULL if pos is
//  not a record position or the record fails its checksum. From memory if
//  the record is in the write buffer or the cache (kp_log_set_cache), else
//  from the file (a read miss, see kp_log_read_misses).
const uint8_t *
    kp_log_read (kp_log_t *self, uint64_t pos, size_t *size_p);

//  Erase the payload of the record at pos for good: overwrite it with zeros,
//  give the frame the checksum of those zeros (so the log stays valid and
//  positions stay put), and fdatasync the segment before returning. For
//  the body store's deletions, which are rare. 0, or -1 if pos is not a
//  record or a write failed (logged; a failed sync refuses further writes).
int
    kp_log_erase (kp_log_t *self, uint64_t pos) KP_MUST_CHECK;

//  The position of the record after the one at pos, whose payload has size
//  bytes (as kp_log_read gave it); the append point after the last record.
//  For reading a run of records in order without a seek each.
uint64_t
    kp_log_next_pos (kp_log_t *self, uint64_t pos, size_t size);

//  The position the next record will get: every record has a position
//  below it, and a position at or past it holds no record (yet).
uint64_t
    kp_log_end (kp_log_t *self);

//  Find the position of record seq (< kp_log_size). Reads only frame
//  headers, within the one segment that holds seq. 0, or -1 on a read
//  error or a bad frame (logged).
int
    kp_log_seek (kp_log_t *self, uint64_t seq, uint64_t *pos_p) KP_MUST_CHECK;

//  Visit every record from the first, in order (writing the write buffer
//  first). Checksums checked by the open are not checked again. Returns 0,
//  or -1 if the visitor stopped it, or a read or that write failed.
//  The data passed to the visitor is valid during the call only; the
//  visitor may call kp_log_read, but not kp_log_replay.
int
    kp_log_replay (kp_log_t *self, kp_log_visit_fn *visit, void *arg);

//  Number of records in the log (the next sequence number).
uint64_t
    kp_log_size (kp_log_t *self);

//  Number of records known durable.
uint64_t
    kp_log_synced (kp_log_t *self);

//  Count of fdatasync calls that made records durable so far (kp_log_sync,
//  kp_log_sync_both, rollover; not those of zero space written ahead or of
//  an erase), for stats and benchmarks.
uint64_t
    kp_log_sync_count (kp_log_t *self);

//  Keep the last bytes written to the last segment readable from memory,
//  in addition to the records still in the write buffer: kp_log_read of
//  every record that starts within the last bytes bytes written to the
//  file needs no read of it, and kp_log_seek reads the frame headers there
//  from memory (bytes = 0: only the write buffer). 1 MiB unless set. The
//  cache is of the last segment only, so a rollover empties it, and after
//  kp_log_open it holds only what was written since. It costs up to 1.5 x
//  bytes of memory (once it passes that, it is cut back to the last bytes
//  bytes, so that the cut, a move of those bytes to the front, happens at
//  most once per bytes/2 written). A call drops at once what is past the
//  new size. The broker's audit log wants its acknowledgements' ACCEPTED
//  records, written one or two windows before, in it.
//  bytes <= KP_LOG_CACHE_MAX.
#define KP_LOG_CACHE_MAX (1024u * 1024 * 1024)
void
    kp_log_set_cache (kp_log_t *self, size_t bytes);

//  Count of kp_log_read calls that read the file, because the record was
//  in neither the cache nor the write buffer (for stats and benchmarks).
uint64_t
    kp_log_read_misses (kp_log_t *self);

//  The CRC32C (Castagnoli) of data, continuing from crc (start with 0).
//  Uses the CPU's crc32 instruction where it has SSE4.2, else software.
uint32_t
    kp_crc32c (uint32_t crc, const void *data, size_t size);

//  The same CRC32C, always in software (slicing-by-8): the fallback of
//  kp_crc32c, callable on its own so that tests check both.
uint32_t
    kp_crc32c_software (uint32_t crc, const void *data, size_t size);

//  True if kp_crc32c uses the CPU's crc32 instruction (SSE4.2).
bool
    kp_crc32c_accelerated (void);

#endif
