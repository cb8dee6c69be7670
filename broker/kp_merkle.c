/*  =========================================================================
    kp_merkle - the RFC 9162 Merkle tree over the log, and its proofs

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
@header
    A kp_merkle_t is a directory of level files, DIR/level-00 .. level-63.
    Level k holds, back to back, the 32-byte hashes of every complete,
    aligned subtree of 2^k leaves: hash i covers leaves [i*2^k, (i+1)*2^k).
    Level 0 holds the leaf hashes and defines the size; level k always has
    exactly size >> k hashes. An append makes one hash plus one per carry;
    they go to a buffer per level (up to S_PENDING_HASHES), written with
    one pwrite per level by kp_merkle_sync, when the buffer is full, and on
    destroy. Reads use pread, or the buffer for hashes not yet written;
    nothing is mapped, so memory does not grow with the tree. The right
    edge (the last complete subtree of every level whose bit is set in the
    size) is kept in memory, so the root of the whole tree costs no read.
    Hashes lost from the buffers in a crash are harmless: the tree is
    trusted only up to the last checkpoint, and kp_notary syncs it before
    signing one. Owned by one thread; not thread-safe.
@end
*/
#include <czmq.h>
#include <fcntl.h>
#include <libgen.h>
#include <sys/stat.h>
#include <unistd.h>
#include "kp_merkle.h"
#include "kp_sha256.h"
#include "kp_util.h"

#define S_LEVELS            64          //  levels 0..63 cover any n < 2^64
#define S_REPAIR_CHUNK      4096        //  parent hashes rebuilt per read
#define S_ERROR_QUIET_MS    30000       //  one read-error line per 30 s
#define S_STALE_WALK        1024        //  bad tail hashes checked one by one
#define S_PENDING_START     32          //  first size of a level's buffer, hashes
#define S_PENDING_HASHES    2048        //  a level's buffer is written when full

//  One level file, and its hashes not yet written
typedef struct {
    int fd;                         //  open file, -1 if none yet
    char *path;                     //  DIR/level-NN, NULL if none yet
    uint64_t written;               //  hashes in the file; pending follows
    uint8_t *pending;               //  hashes appended, not yet written
    size_t pending_count;           //  hashes in pending
    size_t pending_limit;           //  hashes allocated
    bool dirty;                     //  changed since the last fdatasync
} s_level_t;

struct _kp_merkle_t {
    char *dir;                      //  the tree directory
    int dir_fd;                     //  dir, open for fsync after creates
    s_level_t levels [S_LEVELS];    //  level files by height
    kp_merkle_edge_t edge;          //  size and right edge, as on disk
    bool dir_dirty;                 //  a level file was created since sync
    bool sync_failed;               //  fdatasync failed: writes refused
    int64_t read_error_ms;          //  when the last read error was logged
    uint64_t read_errors_quiet;     //  read errors not logged since then
};

//  --------------------------------------------------------------------------
//  Leaf hash of a record's stored bytes: SHA-256 (0x00 || data). No
//  allocation: the verifier calls this once per record.

void
kp_merkle_leaf_hash (const uint8_t *data, size_t size, uint8_t *hash)
{
    assert (data || size == 0);
    assert (hash);
    const uint8_t prefix = 0x00;
    kp_sha256_t state;
    kp_sha256_init (&state);
    kp_sha256_update (&state, &prefix, 1);
    kp_sha256_update (&state, data, size);
    kp_sha256_final (&state, hash);
}

//  --------------------------------------------------------------------------
//  Node hash of two children: SHA-256 (0x01 || left || right). hash may be
//  the same buffer as left or right: both are copied first.

void
kp_merkle_node_hash (const uint8_t *left, const uint8_t *right, uint8_t *hash)
{
    assert (left);
    assert (right);
    assert (hash);
    uint8_t input [1 + 2 * KP_MERKLE_HASH];
    input [0] = 0x01;
    memcpy (input + 1, left, KP_MERKLE_HASH);
    memcpy (input + 1 + KP_MERKLE_HASH, right, KP_MERKLE_HASH);
    kp_sha256 (hash, input, sizeof input);
}

//  --------------------------------------------------------------------------
//  The root of the empty tree: SHA-256 of the empty string

static void
s_empty_root (uint8_t *root)
{
    kp_sha256 (root, NULL, 0);
}

//  --------------------------------------------------------------------------
//  The largest power of two strictly less than n (n >= 2): the split point
//  k of RFC 9162 2.1.1

static uint64_t
s_split (uint64_t n)
{
    assert (n >= 2);
    return UINT64_C (1) << (63 - __builtin_clzll (n - 1));
}

//  --------------------------------------------------------------------------
//  Start an empty edge

void
kp_merkle_edge_init (kp_merkle_edge_t *edge)
{
    assert (edge);
    memset (edge, 0, sizeof *edge);
}

//  --------------------------------------------------------------------------
//  Push the next leaf's hash. edge->edge [k] holds the last complete subtree
//  of 2^k leaves for every bit k set in edge->size; a new leaf merges with
//  the subtrees of the trailing one bits, as a binary counter carries.

void
kp_merkle_edge_push (kp_merkle_edge_t *edge, const uint8_t *leaf_hash)
{
    assert (edge);
    assert (leaf_hash);
    assert (edge->size < UINT64_MAX);
    uint8_t node [KP_MERKLE_HASH];
    memcpy (node, leaf_hash, KP_MERKLE_HASH);
    int level = 0;
    while ((edge->size >> level) & 1) {
        kp_merkle_node_hash (edge->edge [level], node, node);
        level++;
    }
    memcpy (edge->edge [level], node, KP_MERKLE_HASH);
    edge->size++;
}

//  --------------------------------------------------------------------------
//  Root of the leaves pushed so far: the subtrees of the set bits, folded
//  from the right (the smallest) to the left

void
kp_merkle_edge_root (const kp_merkle_edge_t *edge, uint8_t *root)
{
    assert (edge);
    assert (root);
    if (edge->size == 0) {
        s_empty_root (root);
        return;
    }
    int level = __builtin_ctzll (edge->size);
    uint8_t node [KP_MERKLE_HASH];
    memcpy (node, edge->edge [level], KP_MERKLE_HASH);
    for (level++; level < S_LEVELS; level++)
        if ((edge->size >> level) & 1)
            kp_merkle_node_hash (edge->edge [level], node, node);
    memcpy (root, node, KP_MERKLE_HASH);
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
//  Log a read failure, at most one line per S_ERROR_QUIET_MS (proofs are
//  served to auditors; a failing disk must not flood the log)

static void
s_read_failed (kp_merkle_t *self, int level, uint64_t index, int err)
{
    int64_t now = kp_mono_ms ();
    if (self->read_error_ms && now - self->read_error_ms < S_ERROR_QUIET_MS) {
        self->read_errors_quiet++;
        return;
    }
    const char *path = self->levels [level].path;
    zsys_error ("kp_merkle: cannot read hash %llu of level %d in %s: %s (%llu more read "
                "errors not logged)", (unsigned long long) index, level,
                path? path: self->dir, strerror (err),
                (unsigned long long) self->read_errors_quiet);
    self->read_error_ms = now;
    self->read_errors_quiet = 0;
}

//  --------------------------------------------------------------------------
//  Read hash index of a level into hash, from its buffer if not written
//  yet, else from its file. Returns 0, or -1 (logged).

static int
s_hash_read (kp_merkle_t *self, int level, uint64_t index, uint8_t *hash)
{
    s_level_t *file = &self->levels [level];
    if (index >= file->written && index - file->written < file->pending_count) {
        memcpy (hash, file->pending + (index - file->written) * KP_MERKLE_HASH,
                KP_MERKLE_HASH);
        return 0;
    }
    if (file->fd < 0) {
        s_read_failed (self, level, index, ENOENT);
        return -1;
    }
    if (s_pread_full (file->fd, hash, KP_MERKLE_HASH, index * KP_MERKLE_HASH)) {
        s_read_failed (self, level, index, errno);
        return -1;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  The hash of the complete aligned subtree index at level (leaves
//  [index << level, (index + 1) << level), all below the size). The last
//  one of a level whose bit is set in the size is the edge's, in memory.
//  Returns 0, or -1 (logged).

static int
s_subtree (kp_merkle_t *self, int level, uint64_t index, uint8_t *hash)
{
    uint64_t count = self->edge.size >> level;
    assert (index < count);
    if ((count & 1) && index == count - 1) {
        memcpy (hash, self->edge.edge [level], KP_MERKLE_HASH);
        return 0;
    }
    return s_hash_read (self, level, index, hash);
}

//  --------------------------------------------------------------------------
//  MTH of the leaves [start, start + length), length >= 1, where start is a
//  multiple of every power of two in length's binary form: the range is
//  then the run of complete aligned subtrees of its set bits, largest
//  first, and MTH folds them from the right (RFC 9162 2.1.1 applied down
//  the right edge). One read per set bit. Returns 0, or -1 (logged).

static int
s_range_hash (kp_merkle_t *self, uint64_t start, uint64_t length, uint8_t *hash)
{
    assert (length >= 1);
    assert (start + length <= self->edge.size);
    uint8_t node [KP_MERKLE_HASH];
    uint8_t subtree [KP_MERKLE_HASH];
    bool first = true;
    for (int level = 0; level < S_LEVELS; level++) {
        if (((length >> level) & 1) == 0)
            continue;
        //  The subtree of this bit starts after those of the higher bits
        uint64_t higher = level == 63? 0: (length >> (level + 1)) << (level + 1);
        uint64_t offset = start + higher;
        assert ((offset & ((UINT64_C (1) << level) - 1)) == 0);
        if (s_subtree (self, level, offset >> level, first? node: subtree))
            return -1;
        if (!first)
            kp_merkle_node_hash (subtree, node, node);
        first = false;
    }
    memcpy (hash, node, KP_MERKLE_HASH);
    return 0;
}

//  --------------------------------------------------------------------------
//  Reverse count hashes in place (proofs are built root first)

static void
s_proof_reverse (uint8_t *proof, size_t count)
{
    uint8_t swap [KP_MERKLE_HASH];
    for (size_t low = 0, high = count? count - 1: 0; low < high; low++, high--) {
        memcpy (swap, proof + low * KP_MERKLE_HASH, KP_MERKLE_HASH);
        memcpy (proof + low * KP_MERKLE_HASH, proof + high * KP_MERKLE_HASH,
                KP_MERKLE_HASH);
        memcpy (proof + high * KP_MERKLE_HASH, swap, KP_MERKLE_HASH);
    }
}

//  --------------------------------------------------------------------------
//  Open the level file, creating it (mode 0600) if create. Returns 0, 1 if
//  it does not exist and create is false, or -1 (logged).

static int
s_level_open (kp_merkle_t *self, int level, bool create)
{
    s_level_t *file = &self->levels [level];
    if (file->fd >= 0)
        return 0;
    if (!file->path) {
        file->path = zsys_sprintf ("%s/level-%02d", self->dir, level);
        assert (file->path);
    }
    file->fd = open (file->path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (file->fd < 0 && errno == ENOENT && create) {
        file->fd = open (file->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                         0600);
        if (file->fd >= 0)
            self->dir_dirty = true;
    }
    if (file->fd < 0) {
        if (errno == ENOENT && !create)
            return 1;
        zsys_error ("kp_merkle: cannot open %s: %s", file->path, strerror (errno));
        return -1;
    }
    struct stat info;
    if (fstat (file->fd, &info)) {
        zsys_error ("kp_merkle: cannot stat %s: %s", file->path, strerror (errno));
        return -1;
    }
    if (!S_ISREG (info.st_mode)) {
        zsys_error ("kp_merkle: %s is not a regular file", file->path);
        return -1;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Length in bytes of an open level file. Returns 0 and sets *bytes_p, or
//  -1 (logged).

static int
s_level_bytes (kp_merkle_t *self, int level, uint64_t *bytes_p)
{
    s_level_t *file = &self->levels [level];
    struct stat info;
    if (fstat (file->fd, &info)) {
        zsys_error ("kp_merkle: cannot stat %s: %s", file->path, strerror (errno));
        return -1;
    }
    *bytes_p = (uint64_t) info.st_size;
    return 0;
}

//  --------------------------------------------------------------------------
//  Cut a level file to count hashes. Returns 0, or -1 (logged).

static int
s_level_cut (kp_merkle_t *self, int level, uint64_t count)
{
    s_level_t *file = &self->levels [level];
    file->dirty = true;
    if (ftruncate (file->fd, (off_t) (count * KP_MERKLE_HASH))) {
        zsys_error ("kp_merkle: cannot cut %s to %llu hashes: %s", file->path,
                    (unsigned long long) count, strerror (errno));
        return -1;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Does hash index of level (>= 1) equal the node hash of its two children
//  on the level below? Sets *good_p; returns 0, or -1 (logged).

static int
s_hash_check (kp_merkle_t *self, int level, uint64_t index, bool *good_p)
{
    uint8_t stored [KP_MERKLE_HASH];
    uint8_t children [2 * KP_MERKLE_HASH];
    uint8_t computed [KP_MERKLE_HASH];
    s_level_t *below = &self->levels [level - 1];
    if (s_hash_read (self, level, index, stored))
        return -1;
    if (s_pread_full (below->fd, children, sizeof children,
                      2 * index * KP_MERKLE_HASH)) {
        zsys_error ("kp_merkle: cannot read %s: %s", below->path, strerror (errno));
        return -1;
    }
    kp_merkle_node_hash (children, children + KP_MERKLE_HASH, computed);
    *good_p = memcmp (stored, computed, KP_MERKLE_HASH) == 0;
    return 0;
}

//  --------------------------------------------------------------------------
//  Rebuild hashes [from, to) of level (>= 1) from the level below, reading
//  and writing in chunks. Returns 0, or -1 (logged).

static int
s_level_rebuild (kp_merkle_t *self, int level, uint64_t from, uint64_t to)
{
    s_level_t *file = &self->levels [level];
    s_level_t *below = &self->levels [level - 1];
    uint8_t *children = (uint8_t *) malloc (S_REPAIR_CHUNK * 2 * KP_MERKLE_HASH);
    uint8_t *parents = (uint8_t *) malloc (S_REPAIR_CHUNK * KP_MERKLE_HASH);
    assert (children && parents);
    int rc = 0;
    while (from < to) {
        size_t count = to - from < S_REPAIR_CHUNK? (size_t) (to - from): S_REPAIR_CHUNK;
        if (s_pread_full (below->fd, children, count * 2 * KP_MERKLE_HASH,
                          from * 2 * KP_MERKLE_HASH)) {
            zsys_error ("kp_merkle: cannot read %s: %s", below->path, strerror (errno));
            rc = -1;
            break;
        }
        for (size_t index = 0; index < count; index++)
            kp_merkle_node_hash (children + 2 * index * KP_MERKLE_HASH,
                                 children + (2 * index + 1) * KP_MERKLE_HASH,
                                 parents + index * KP_MERKLE_HASH);
        if (kp_pwrite_full (file->fd, parents, count * KP_MERKLE_HASH,
                            from * KP_MERKLE_HASH, NULL)) {
            zsys_error ("kp_merkle: cannot write %s: %s", file->path, strerror (errno));
            rc = -1;
            break;
        }
        from += count;
    }
    free (children);
    free (parents);
    return rc;
}

//  --------------------------------------------------------------------------
//  Read the right edge of a tree of size leaves from the level files (one
//  read per set bit). Returns 0, or -1 (logged).

static int
s_edge_load (kp_merkle_t *self, uint64_t size, kp_merkle_edge_t *edge)
{
    kp_merkle_edge_init (edge);
    edge->size = size;
    for (int level = 0; level < S_LEVELS; level++)
        if ((size >> level) & 1)
            if (s_hash_read (self, level, (size >> level) - 1, edge->edge [level]))
                return -1;
    return 0;
}

//  --------------------------------------------------------------------------
//  Make the level files fit together after a crash. Level 0 (the leaves)
//  is the truth: n = its whole hashes. Then, level by level upwards, level
//  k must hold exactly n >> k hashes: a partial trailing hash is cut;
//  hashes past n >> k (level 0 lost pages that a higher level kept) are
//  cut; the last hash is checked against its children, and a stale tail
//  (pages of a higher level lost, or garbage) is walked back; what is
//  missing is rebuilt from the level below, which is already right. The
//  leaves themselves cannot be checked here: the owner compares them with
//  the log and truncates. Returns 0, or -1 (logged).

static int
s_load (kp_merkle_t *self)
{
    uint64_t size = 0;
    for (int level = 0; level < S_LEVELS; level++) {
        uint64_t want = level == 0? 0: size >> level;
        int rc = s_level_open (self, level, level == 0 || want > 0);
        if (rc < 0)
            return -1;
        if (rc == 1)
            continue;               //  absent and not needed
        uint64_t bytes;
        if (s_level_bytes (self, level, &bytes))
            return -1;
        uint64_t count = bytes / KP_MERKLE_HASH;
        if (level == 0)
            size = want = count;
        bool partial = bytes % KP_MERKLE_HASH != 0;
        if (partial || count > want) {
            if (count > want)
                zsys_warning ("kp_merkle: cutting %s from %llu to %llu hashes to fit "
                              "%llu leaves", self->levels [level].path,
                              (unsigned long long) count, (unsigned long long) want,
                              (unsigned long long) size);
            else
                zsys_warning ("kp_merkle: cutting a partial hash at the end of %s",
                              self->levels [level].path);
            if (count > want)
                count = want;
            if (s_level_cut (self, level, count))
                return -1;
        }
        if (level == 0 || want == 0)
            continue;
        //  A stale tail is short; past S_STALE_WALK bad hashes, rebuild the
        //  whole level with large reads rather than walk back one by one
        uint64_t good = count;
        while (good > 0) {
            bool match;
            if (s_hash_check (self, level, good - 1, &match))
                return -1;
            if (match)
                break;
            good = count - good < S_STALE_WALK? good - 1: 0;
        }
        if (good < want) {
            zsys_warning ("kp_merkle: rebuilding hashes %llu..%llu of %s from the "
                          "level below", (unsigned long long) good,
                          (unsigned long long) want, self->levels [level].path);
            if (s_level_rebuild (self, level, good, want))
                return -1;
        }
    }
    //  Every level file now holds exactly its hashes; sync them all once
    for (int level = 0; level < S_LEVELS; level++) {
        self->levels [level].written = size >> level;
        self->levels [level].dirty = self->levels [level].fd >= 0;
    }
    return s_edge_load (self, size, &self->edge);
}


//  --------------------------------------------------------------------------
//  Open (creating if absent) the tree kept in dir; see kp_merkle.h. Costs
//  a few syscalls per level and O(log n) reads when the files fit; a level
//  to rebuild costs a read of the level below it.

kp_merkle_t *
kp_merkle_open (const char *dir)
{
    assert (dir);
    kp_merkle_t *self = (kp_merkle_t *) zmalloc (sizeof (kp_merkle_t));
    assert (self);
    self->dir = strdup (dir);
    assert (self->dir);
    self->dir_fd = -1;
    for (int level = 0; level < S_LEVELS; level++) {
        self->levels [level].fd = -1;
        self->levels [level].path = NULL;
        self->levels [level].written = 0;
        self->levels [level].pending = NULL;
        self->levels [level].pending_count = 0;
        self->levels [level].pending_limit = 0;
        self->levels [level].dirty = false;
    }
    kp_merkle_edge_init (&self->edge);
    self->dir_dirty = false;
    self->sync_failed = false;
    self->read_error_ms = 0;
    self->read_errors_quiet = 0;

    self->dir_fd = kp_dir_open (self->dir, true, "kp_merkle");
    if (self->dir_fd < 0 || s_load (self))
        kp_merkle_destroy (&self);
    return self;
}

//  --------------------------------------------------------------------------
//  Write a level's buffered hashes to its file with one pwrite. On a
//  failure the file is cut back to the hashes written before (a partial
//  write must not leave a torn hash) and the buffer kept, so a later call
//  may try again. Returns 0, or -1 (logged).

static int
s_level_flush (kp_merkle_t *self, int level)
{
    s_level_t *file = &self->levels [level];
    if (file->pending_count == 0)
        return 0;
    assert (file->fd >= 0);
    if (kp_pwrite_full (file->fd, file->pending, file->pending_count * KP_MERKLE_HASH,
                        file->written * KP_MERKLE_HASH, NULL)) {
        int err = errno;
        zsys_error ("kp_merkle: cannot write %s at hash %llu: %s", file->path,
                    (unsigned long long) file->written, strerror (err));
        if (ftruncate (file->fd, (off_t) (file->written * KP_MERKLE_HASH)))
            zsys_warning ("kp_merkle: cannot cut %s back: %s", file->path,
                          strerror (errno));
        return -1;
    }
    file->written += file->pending_count;
    file->pending_count = 0;
    file->dirty = true;
    return 0;
}

//  --------------------------------------------------------------------------
//  Close the tree: writes the hashes still in the buffers, but does not
//  sync them. Idempotent; nulls *self_p.

void
kp_merkle_destroy (kp_merkle_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        kp_merkle_t *self = *self_p;
        for (int level = S_LEVELS - 1; level >= 0; level--) {
            if (!self->sync_failed)
                s_level_flush (self, level);    //  a failure is logged
            if (self->levels [level].fd >= 0)
                close (self->levels [level].fd);
            free (self->levels [level].path);
            free (self->levels [level].pending);
        }
        if (self->dir_fd >= 0)
            close (self->dir_fd);
        free (self->dir);
        free (self);
        *self_p = NULL;
    }
}

//  --------------------------------------------------------------------------
//  Number of leaves

uint64_t
kp_merkle_size (kp_merkle_t *self)
{
    assert (self);
    return self->edge.size;
}

//  --------------------------------------------------------------------------
//  Append one leaf by its hash. Leaf n goes to level 0 at index n; each
//  carry (bit k of n set) completes a subtree of 2^(k+1) leaves, for level
//  k+1 at index ((n + 1) >> (k + 1)) - 1. The new hashes go to the levels'
//  buffers; a full buffer is written first, so the edge and the buffers
//  change only when every write needed succeeded. Returns 0, or -1
//  (logged).

int
kp_merkle_append (kp_merkle_t *self, const uint8_t *leaf_hash)
{
    assert (self);
    assert (leaf_hash);
    if (self->sync_failed)
        return -1;
    uint64_t size = self->edge.size;
    if (size == UINT64_MAX) {
        zsys_error ("kp_merkle: %s is full", self->dir);
        return -1;
    }
    uint8_t nodes [S_LEVELS][KP_MERKLE_HASH];
    memcpy (nodes [0], leaf_hash, KP_MERKLE_HASH);
    int top = 0;
    while ((size >> top) & 1) {
        kp_merkle_node_hash (self->edge.edge [top], nodes [top], nodes [top + 1]);
        top++;
    }
    for (int level = 0; level <= top; level++) {
        s_level_t *file = &self->levels [level];
        if (s_level_open (self, level, true))
            return -1;
        if (file->pending_count == S_PENDING_HASHES && s_level_flush (self, level)) {
            zsys_error ("kp_merkle: leaf %llu not appended to %s",
                        (unsigned long long) size, self->dir);
            return -1;
        }
    }
    for (int level = 0; level <= top; level++) {
        s_level_t *file = &self->levels [level];
        assert (file->written + file->pending_count == ((size + 1) >> level) - 1);
        if (file->pending_count == file->pending_limit) {
            size_t limit = file->pending_limit? file->pending_limit * 2: S_PENDING_START;
            uint8_t *pending = (uint8_t *) realloc (file->pending,
                                                    limit * KP_MERKLE_HASH);
            assert (pending);
            file->pending = pending;
            file->pending_limit = limit;
        }
        memcpy (file->pending + file->pending_count * KP_MERKLE_HASH, nodes [level],
                KP_MERKLE_HASH);
        file->pending_count++;
    }
    memcpy (self->edge.edge [top], nodes [top], KP_MERKLE_HASH);
    self->edge.size = size + 1;
    return 0;
}

//  --------------------------------------------------------------------------
//  Write every level's buffered hashes (one pwrite per level), then
//  fdatasync every level file changed since the last sync, and the
//  directory after a level file was created. A failed fdatasync is final,
//  as for the log: the kernel may have dropped the dirty pages, so the tree
//  refuses further appends and syncs; reopen (which repairs from what is on
//  disk) to go on. Returns 0 or -1 (logged).

int
kp_merkle_sync (kp_merkle_t *self)
{
    assert (self);
    if (self->sync_failed)
        return -1;
    for (int level = 0; level < S_LEVELS; level++)
        if (s_level_flush (self, level))
            return -1;
    for (int level = 0; level < S_LEVELS; level++) {
        s_level_t *file = &self->levels [level];
        if (file->fd < 0 || !file->dirty)
            continue;
        if (fdatasync (file->fd)) {
            self->sync_failed = true;
            zsys_error ("kp_merkle: fdatasync of %s failed: %s; refusing further "
                        "writes; reopen to recover from what is on disk", file->path,
                        strerror (errno));
            return -1;
        }
        file->dirty = false;
    }
    if (self->dir_dirty) {
        if (fsync (self->dir_fd)) {
            self->sync_failed = true;
            zsys_error ("kp_merkle: fsync of %s failed: %s; refusing further writes",
                        self->dir, strerror (errno));
            return -1;
        }
        self->dir_dirty = false;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Cut the tree back to size leaves. The new edge is read first (all of it
//  is below the old size, in the files or the buffers); then every level
//  drops the buffered hashes past its new count, and a level whose file
//  holds more is cut, level 0 first, since it decides the size on the next
//  open. Returns 0 or -1 (logged).

int
kp_merkle_truncate (kp_merkle_t *self, uint64_t size)
{
    assert (self);
    if (size > self->edge.size) {
        zsys_error ("kp_merkle: cannot truncate %s to %llu leaves: it has %llu",
                    self->dir, (unsigned long long) size,
                    (unsigned long long) self->edge.size);
        return -1;
    }
    if (self->sync_failed)
        return -1;
    kp_merkle_edge_t edge;
    if (s_edge_load (self, size, &edge))
        return -1;
    int rc = 0;
    for (int level = 0; level < S_LEVELS; level++) {
        s_level_t *file = &self->levels [level];
        uint64_t count = size >> level;
        if (count >= file->written) {
            assert (count - file->written <= file->pending_count);
            file->pending_count = (size_t) (count - file->written);
        }
        else {
            file->pending_count = 0;
            if (file->fd >= 0 && s_level_cut (self, level, count))
                rc = -1;
            file->written = count;
        }
    }
    //  Cut or not, the files hold the new tree's hashes at the right
    //  offsets, and writes go to explicit offsets: go on at size
    self->edge = edge;
    return rc;
}

//  --------------------------------------------------------------------------
//  Root of the tree of the first size leaves. The current size costs no
//  read; others one read per set bit of size.

int
kp_merkle_root (kp_merkle_t *self, uint64_t size, uint8_t *root)
{
    assert (self);
    assert (root);
    if (size > self->edge.size)
        return -1;
    if (size == self->edge.size) {
        kp_merkle_edge_root (&self->edge, root);
        return 0;
    }
    if (size == 0) {
        s_empty_root (root);
        return 0;
    }
    return s_range_hash (self, 0, size, root);
}

//  --------------------------------------------------------------------------
//  Leaf hash of leaf index

int
kp_merkle_leaf (kp_merkle_t *self, uint64_t index, uint8_t *hash)
{
    assert (self);
    assert (hash);
    if (index >= self->edge.size)
        return -1;
    return s_subtree (self, 0, index, hash);
}

//  --------------------------------------------------------------------------
//  Inclusion proof, RFC 9162 2.1.3.1: PATH (m, D[n]) = PATH (m, D[0:k]) :
//  MTH (D[k:n]) if m < k, else PATH (m - k, D[k:n]) : MTH (D[0:k]). Walked
//  from the root down, then reversed to the leaf-first order. Every sibling
//  but one is a single aligned subtree (one read): only the first right
//  sibling [k, n) can be a run of them. O(log n) reads.

int
kp_merkle_inclusion (kp_merkle_t *self, uint64_t index, uint64_t size,
                     uint8_t *proof, size_t *count)
{
    assert (self);
    assert (proof);
    assert (count);
    *count = 0;
    if (index >= size || size > self->edge.size)
        return -1;
    uint64_t start = 0;
    uint64_t length = size;
    size_t depth = 0;
    while (length > 1) {
        uint64_t split = s_split (length);
        assert (depth < KP_MERKLE_MAX_PROOF);
        uint8_t *sibling = proof + depth * KP_MERKLE_HASH;
        int rc;
        if (index - start < split) {
            rc = s_range_hash (self, start + split, length - split, sibling);
            length = split;
        }
        else {
            rc = s_range_hash (self, start, split, sibling);
            start += split;
            length -= split;
        }
        if (rc)
            return -1;
        depth++;
    }
    s_proof_reverse (proof, depth);
    *count = depth;
    return 0;
}

//  --------------------------------------------------------------------------
//  Consistency proof, RFC 9162 2.1.4.1: PROOF (m, D[n]) = SUBPROOF (m,
//  D[n], true), where SUBPROOF (m, D[m], true) = {}, SUBPROOF (m, D[m],
//  false) = {MTH (D[m])}, and for m < n: SUBPROOF (m, D[0:k], b) : MTH
//  (D[k:n]) if m <= k, else SUBPROOF (m - k, D[k:n], false) : MTH (D[0:k]).
//  Walked from the root down, then reversed. O(log n) reads.

int
kp_merkle_consistency (kp_merkle_t *self, uint64_t old_size, uint64_t new_size,
                       uint8_t *proof, size_t *count)
{
    assert (self);
    assert (proof);
    assert (count);
    *count = 0;
    if (old_size == 0 || old_size > new_size || new_size > self->edge.size)
        return -1;
    uint64_t start = 0;
    uint64_t length = new_size;
    uint64_t old_length = old_size;
    bool whole = true;              //  b: the old tree is the whole subtree
    size_t depth = 0;
    while (old_length != length) {
        uint64_t split = s_split (length);
        assert (depth < KP_MERKLE_MAX_PROOF);
        uint8_t *node = proof + depth * KP_MERKLE_HASH;
        int rc;
        if (old_length <= split) {
            rc = s_range_hash (self, start + split, length - split, node);
            length = split;
        }
        else {
            rc = s_range_hash (self, start, split, node);
            start += split;
            length -= split;
            old_length -= split;
            whole = false;
        }
        if (rc)
            return -1;
        depth++;
    }
    if (!whole) {
        assert (depth < KP_MERKLE_MAX_PROOF);
        if (s_range_hash (self, start, length, proof + depth * KP_MERKLE_HASH))
            return -1;
        depth++;
    }
    s_proof_reverse (proof, depth);
    *count = depth;
    return 0;
}

//  --------------------------------------------------------------------------
//  Verify an inclusion proof exactly as RFC 9162 2.1.3.2 says

bool
kp_merkle_verify_inclusion (const uint8_t *leaf_hash, uint64_t index, uint64_t size,
                            const uint8_t *proof, size_t count, const uint8_t *root)
{
    assert (leaf_hash);
    assert (proof || count == 0);
    assert (root);
    //  1. leaf_index must be less than tree_size
    if (index >= size)
        return false;
    //  2., 3.
    uint64_t fn = index;
    uint64_t sn = size - 1;
    uint8_t r [KP_MERKLE_HASH];
    memcpy (r, leaf_hash, KP_MERKLE_HASH);
    //  4.
    for (size_t position = 0; position < count; position++) {
        const uint8_t *p = proof + position * KP_MERKLE_HASH;
        if (sn == 0)
            return false;
        if ((fn & 1) || fn == sn) {
            kp_merkle_node_hash (p, r, r);
            while ((fn & 1) == 0 && fn != 0) {
                fn >>= 1;
                sn >>= 1;
            }
        }
        else
            kp_merkle_node_hash (r, p, r);
        fn >>= 1;
        sn >>= 1;
    }
    //  5.
    return sn == 0 && memcmp (r, root, KP_MERKLE_HASH) == 0;
}

//  --------------------------------------------------------------------------
//  Verify a consistency proof as RFC 9162 2.1.4.2 says. Two cases come
//  before the RFC's steps: equal sizes (consistent iff the proof is empty
//  and the roots are equal, as PROOF (n, D[n]) is empty) and an old size of
//  0 (refused: a proof from the empty tree proves nothing, and the RFC's
//  algorithm is undefined there).

bool
kp_merkle_verify_consistency (uint64_t old_size, uint64_t new_size,
                              const uint8_t *old_root, const uint8_t *new_root,
                              const uint8_t *proof, size_t count)
{
    assert (old_root);
    assert (new_root);
    assert (proof || count == 0);
    if (old_size == 0 || old_size > new_size)
        return false;
    if (old_size == new_size)
        return count == 0 && memcmp (old_root, new_root, KP_MERKLE_HASH) == 0;
    //  1. an empty path fails
    if (count == 0)
        return false;
    //  2. if first is a power of 2, first_hash is prepended to the path
    size_t position = 0;
    const uint8_t *first_value = old_root;
    if ((old_size & (old_size - 1)) != 0)
        first_value = proof + KP_MERKLE_HASH * position++;
    //  3., 4.
    uint64_t fn = old_size - 1;
    uint64_t sn = new_size - 1;
    while (fn & 1) {
        fn >>= 1;
        sn >>= 1;
    }
    //  5.
    uint8_t fr [KP_MERKLE_HASH];
    uint8_t sr [KP_MERKLE_HASH];
    memcpy (fr, first_value, KP_MERKLE_HASH);
    memcpy (sr, first_value, KP_MERKLE_HASH);
    //  6.
    for (; position < count; position++) {
        const uint8_t *c = proof + position * KP_MERKLE_HASH;
        if (sn == 0)
            return false;
        if ((fn & 1) || fn == sn) {
            kp_merkle_node_hash (c, fr, fr);
            kp_merkle_node_hash (c, sr, sr);
            while ((fn & 1) == 0 && fn != 0) {
                fn >>= 1;
                sn >>= 1;
            }
        }
        else
            kp_merkle_node_hash (sr, c, sr);
        fn >>= 1;
        sn >>= 1;
    }
    //  7.
    return memcmp (fr, old_root, KP_MERKLE_HASH) == 0
        && memcmp (sr, new_root, KP_MERKLE_HASH) == 0
        && sn == 0;
}
