/*  =========================================================================
    kp-audit - the auditor's tool: fetch, verify, replay, prove, consistency,
    open

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================

    kp-audit fetch   --dir LOCAL --checkpoint-key FILE CLIENT [--save-checkpoint NOTE]
    kp-audit verify  --dir DIR --checkpoint-key FILE [--trusted NOTE ...]
                     [--tolerance SECONDS]
    kp-audit replay  --dir DIR [--from TIME] [--to TIME] [--partner ID]
                     [--id HEX] [--subject HEX] [--event NAME]
    kp-audit prove   --dir LOCAL --id HEX --checkpoint-key FILE [CLIENT]
    kp-audit consistency --checkpoint-key FILE CLIENT OLD_NOTE NEW_NOTE
    kp-audit open    --id HEX --region-key FILE CLIENT [--dir LOCAL]

    CLIENT is --broker ENDPOINT --broker-cert FILE --cert FILE [--timeout MS],
    the cert being the auditor's secret cert (role auditor).

    A data dir (the broker's DATA, or the auditor's LOCAL copy) holds log/
    (a kp_log of kp.wire.Record, docs/LOG_FORMAT.md) and checkpoints/ (a
    kp_log of C2SP signed notes, sizes strictly increasing). The Merkle
    tree is RFC 9162 over the records as stored. docs/AUDITING.md is the
    auditor's walkthrough and says what each finding means.

    Exit 0 ok, 1 a verification failed or an error, 2 usage error; one
    line on stderr saying what failed.
*/
#include "kp_util.h"
#include "kp_log.h"
#include "kp_merkle.h"
#include "kp_checkpoint.h"
#include "kp_json.h"
#include "kp_msg_internal.h"
#include "kp_seal.h"
#include "kp_validate.h"
#include <sodium.h>
#include <ctype.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <sys/file.h>
#include <sys/stat.h>

#define S_EXIT_OK 0
#define S_EXIT_FAILED 1
#define S_EXIT_USAGE 2
#define S_DEFAULT_TIMEOUT 10000         //  msec per answer from the broker
#define S_DEFAULT_TOLERANCE 60          //  seconds the clock may step back
#define S_ENTRIES_BATCH 1000            //  most entries one request asks for
#define S_MAX_FRAME (64 * 1024 * 1024)  //  largest command we unpack
#define S_MAX_NOTE 8192                 //  bytes in a checkpoint note
#define S_MAX_TRUSTED 64                //  --trusted notes
#define S_SEGMENT_SIZE (64 * 1024 * 1024)   //  segment size of logs we write
#define S_ARENA_SIZE (256 * 1024)       //  bytes of the per-record decode arena
#define S_PROGRESS_EVERY 8192           //  records between progress checks
#define S_PROGRESS_MSEC 200             //  msec between progress redraws

static const char *s_synopsis =
    "usage: kp-audit fetch   --dir LOCAL --checkpoint-key FILE CLIENT\n"
    "                        [--save-checkpoint NOTE]\n"
    "       kp-audit verify  --dir DIR --checkpoint-key FILE [--trusted NOTE ...]\n"
    "                        [--tolerance SECONDS]\n"
    "       kp-audit replay  --dir DIR [--from TIME] [--to TIME] [--partner ID]\n"
    "                        [--id HEX] [--subject HEX] [--event NAME]\n"
    "       kp-audit prove   --dir LOCAL --id HEX --checkpoint-key FILE [CLIENT]\n"
    "       kp-audit consistency --checkpoint-key FILE CLIENT OLD_NOTE NEW_NOTE\n"
    "       kp-audit open    --id HEX --region-key REGKEY CLIENT [--dir LOCAL]\n"
    "\n"
    "  CLIENT        --broker ENDPOINT --broker-cert FILE --cert FILE [--timeout MS]\n"
    "                (--cert: the auditor's secret cert)\n"
    "  fetch         copy the broker's log into LOCAL up to its latest checkpoint,\n"
    "                checking the signature, the consistency with LOCAL's last\n"
    "                checkpoint and the root over every record; --save-checkpoint\n"
    "                writes the verified checkpoint to NOTE, to keep elsewhere\n"
    "  verify        offline: recompute the tree, check every checkpoint (and each\n"
    "                --trusted one kept from earlier), the framing, and the order\n"
    "                of events\n"
    "  replay        print the records as JSON lines; filters are AND-ed\n"
    "  prove         the inclusion proof of a message's ACCEPTED record (from the\n"
    "                broker with CLIENT, else computed from LOCAL)\n"
    "  consistency   check with the broker that NEW_NOTE extends OLD_NOTE\n"
    "  open          fetch the sealed body of a message whose type the region lets\n"
    "                auditors read (audit/open-types), check the sender's\n"
    "                registration and signature, print it as one JSON line; with\n"
    "                --dir, the body must be the one LOCAL's ACCEPTED record hashed\n"
    "  REGKEY        the region's registration.pub (hex Ed25519 key), out of band\n"
    "  FILE          the region's checkpoint.pub (hex Ed25519 key), got out of band\n"
    "  TIME          2026-11-23, 2026-11-23T07:30[:00[.000]]Z, or ms since 1970\n"
    "  NAME          an event: ACCEPTED, REJECTED, DELIVERED_TO, ACKNOWLEDGED, ...\n"
    "\n"
    "Exit 0 ok, 1 verification failed or error, 2 usage error.\n";

//  --------------------------------------------------------------------------
//  The command line

typedef enum {
    S_FETCH, S_VERIFY, S_REPLAY, S_PROVE, S_CONSISTENCY, S_OPEN
} s_command_t;

typedef struct {
    s_command_t command;            //  the subcommand
    const char *name;               //  its name
    const char *dir;                //  --dir
    const char *broker;             //  --broker endpoint
    const char *broker_cert;        //  --broker-cert file
    const char *cert;               //  --cert: our secret cert
    const char *key_file;           //  --checkpoint-key
    const char *region_key;         //  --region-key: registration.pub
    const char *trusted [S_MAX_TRUSTED];    //  --trusted note files
    size_t trusted_count;
    int64_t timeout;                //  msec per broker answer
    int64_t tolerance;              //  msec the clock may step back
    bool have_from, have_to;        //  --from, --to given
    int64_t from, to;               //  time window, ms since 1970
    const char *partner;            //  --partner
    bool have_id;                   //  --id given
    uint8_t id [KP_ID_SIZE];        //  message id
    bool have_subject;              //  --subject given
    uint8_t subject [KP_HASH_SIZE]; //  subject pseudonym
    int event;                      //  --event, 0 = any
    const char *save_note;          //  fetch --save-checkpoint FILE
    const char *old_note;           //  consistency: positional arguments
    const char *new_note;
    uint8_t key [KP_CHECKPOINT_PUBLIC];     //  the checkpoint public key
} s_options_t;

//  --------------------------------------------------------------------------
//  One line on stderr; returns the exit code given

static int
    s_say (int code, const char *format, ...) __attribute__ ((format (printf, 2, 3)));

static int
s_say (int code, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    fprintf (stderr, "kp-audit: ");
    vfprintf (stderr, format, args);
    fprintf (stderr, code == S_EXIT_USAGE? " (see kp-audit --help)\n": "\n");
    va_end (args);
    return code;
}

//  --------------------------------------------------------------------------
//  The libraries (kp_log, kp_checkpoint, kp_merkle) say what went wrong
//  through zsys. While one of them runs we collect those lines, so that we
//  can print the last one as our own single line, without the log prefix.

typedef struct {
    FILE *stream;                   //  memstream zsys writes to
    char *text;                     //  what was written
    size_t size;
} s_capture_t;

//  Send zsys output to a memstream until s_capture_end
static void
s_capture_begin (s_capture_t *self)
{
    self->text = NULL;
    self->size = 0;
    self->stream = open_memstream (&self->text, &self->size);
    assert (self->stream);
    zsys_set_logstream (self->stream);
}

//  Stop capturing; returns the last line without "E: (ident) date time ",
//  or "" if nothing was logged. Caller frees.
static char *
s_capture_end (s_capture_t *self)
{
    zsys_set_logstream (stderr);
    fclose (self->stream);
    char *text = self->text? self->text: strdup ("");
    assert (text);
    size_t length = strlen (text);
    while (length > 0 && text [length - 1] == '\n')
        text [--length] = 0;
    char *line = strrchr (text, '\n');
    line = line? line + 1: text;
    if (line [0] && line [1] == ':' && line [2] == ' ')
        line += 3;
    if (*line == '(') {
        char *end = strstr (line, ") ");
        if (end)
            line = end + 2;
    }
    //  yy-mm-dd hh:mm:ss
    if (strlen (line) > 18 && line [2] == '-' && line [5] == '-' && line [8] == ' '
    &&  line [11] == ':' && line [14] == ':' && line [17] == ' ')
        line += 18;
    char *result = strdup (line);
    assert (result);
    free (text);
    return result;
}

//  --------------------------------------------------------------------------
//  A progress bar on stderr, only when stderr is a terminal

typedef struct {
    bool on;                        //  stderr is a tty
    const char *what;               //  "verify", "fetch", ...
    uint64_t total;                 //  records to do
    int64_t next_draw;              //  monotonic ms of the next redraw
    bool drawn;                     //  something is on the line
} s_progress_t;

//  Start a bar for total records (drawn only on a terminal)
static void
s_progress_start (s_progress_t *self, const char *what, uint64_t total)
{
    self->on = isatty (STDERR_FILENO) != 0;
    self->what = what;
    self->total = total;
    self->next_draw = kp_mono_ms () + S_PROGRESS_MSEC;
    self->drawn = false;
}

//  Redraw the bar, at most every S_PROGRESS_MSEC
static void
s_progress_update (s_progress_t *self, uint64_t done)
{
    if (!self->on)
        return;
    int64_t now = kp_mono_ms ();
    if (now < self->next_draw)
        return;
    self->next_draw = now + S_PROGRESS_MSEC;
    int percent = self->total? (int) (done * 100 / self->total): 100;
    int width = 30;
    int filled = percent * width / 100;
    fprintf (stderr, "\rkp-audit: %s [%.*s%*s] %3d%% %" PRIu64 "/%" PRIu64 " records",
             self->what, filled, "##############################", width - filled, "",
             percent, done, self->total);
    fflush (stderr);
    self->drawn = true;
}

//  Clear the bar's line
static void
s_progress_end (s_progress_t *self)
{
    if (self->on && self->drawn) {
        fprintf (stderr, "\r\033[K");
        fflush (stderr);
    }
    self->drawn = false;
}

//  --------------------------------------------------------------------------
//  A bump allocator for protobuf-c, reset after every record: decoding a
//  record costs no malloc (only a record too big for the arena falls back
//  to malloc, freed at the reset).

typedef struct {
    uint8_t *base;                  //  the arena
    size_t used;                    //  bytes handed out
    size_t limit;                   //  bytes in the arena
    void **large;                   //  malloc'd blocks past the arena
    size_t large_count, large_limit;
} s_arena_t;

//  protobuf-c alloc: bump in the arena, or malloc past it
static void *
s_arena_alloc (void *data, size_t size)
{
    s_arena_t *self = (s_arena_t *) data;
    size = (size + 15) & ~(size_t) 15;
    if (size <= self->limit - self->used) {
        void *block = self->base + self->used;
        self->used += size;
        return block;
    }
    if (self->large_count == self->large_limit) {
        size_t limit = self->large_limit? self->large_limit * 2: 16;
        void **large = (void **) realloc (self->large, limit * sizeof (void *));
        if (!large)
            return NULL;
        self->large = large;
        self->large_limit = limit;
    }
    void *block = malloc (size);
    if (block)
        self->large [self->large_count++] = block;
    return block;
}

//  protobuf-c free: nothing until the reset
static void
s_arena_free (void *data, void *block)
{
    (void) data;
    (void) block;                   //  everything goes at the reset
}

//  Forget everything handed out (after each record)
static void
s_arena_reset (s_arena_t *self)
{
    for (size_t index = 0; index < self->large_count; index++)
        free (self->large [index]);
    self->large_count = 0;
    self->used = 0;
}

//  A fresh arena, and the allocator that uses it
static void
s_arena_init (s_arena_t *self, ProtobufCAllocator *allocator)
{
    memset (self, 0, sizeof *self);
    self->base = (uint8_t *) malloc (S_ARENA_SIZE);
    assert (self->base);
    self->limit = S_ARENA_SIZE;
    allocator->alloc = s_arena_alloc;
    allocator->free = s_arena_free;
    allocator->allocator_data = self;
}

//  Free the arena
static void
s_arena_destroy (s_arena_t *self)
{
    s_arena_reset (self);
    free (self->large);
    free (self->base);
    memset (self, 0, sizeof *self);
}

//  --------------------------------------------------------------------------
//  Open-addressing hash tables for the semantic checks, keyed by seq and
//  by message id: no allocation per record, only when a table doubles.

#define S_ENTRY_ACCEPTED 1          //  the entry is an ACCEPTED record
#define S_ENTRY_STATUS 2            //  a record that sends the sender a status:
                                    //  ACKNOWLEDGED, NACKED, EXPIRED_EVENT, OVERDUE
#define S_FLAG_DELIVERED 1          //  accepted: a DELIVERED_TO came
#define S_FLAG_SETTLED 2            //  accepted: acked, nacked or expired
#define S_FLAG_STATUS_ACKED 4       //  status: the sender acknowledged it
#define S_FLAG_OVERDUE 8            //  accepted: an OVERDUE_EVENT came
#define S_FLAG_BODY_DELETED 16      //  accepted: a BODY_DELETED came
#define S_FLAG_VOIDED 32            //  accepted: a VOIDED came (done = its seq)
#define S_FLAG_READ 64              //  accepted: a READ_EVENT came

typedef struct {
    uint64_t key;                   //  seq + 1; 0 = empty slot
    uint64_t done;                  //  seq of the settling / status-ack record,
                                    //  or of the VOIDED record
    uint64_t pos;                   //  accepted: its position in the log
    int64_t expires_at_ms;          //  accepted: envelope expiry
    int64_t due_at_ms;              //  accepted: envelope due time, or 0
    uint8_t id [KP_ID_SIZE];        //  accepted: message id
    uint32_t sender;                //  partner index
    uint32_t recipient;             //  partner index (accepted)
    uint8_t kind;                   //  S_ENTRY_*
    uint8_t flags;                  //  S_FLAG_*
    uint8_t event;                  //  accepted: settling event; status: own
} s_entry_t;

typedef struct {
    s_entry_t *slots;
    size_t mask;                    //  slot count - 1 (a power of two)
    size_t count;                   //  entries
} s_seqmap_t;

//  Finaliser of MurmurHash3: spreads dense seqs over the table
static inline size_t
s_mix (uint64_t value)
{
    value ^= value >> 33;
    value *= 0xff51afd7ed558ccdULL;
    value ^= value >> 33;
    return (size_t) value;
}

//  An empty table of slots entries (a power of two)
static void
s_seqmap_init (s_seqmap_t *self, size_t slots)
{
    self->slots = (s_entry_t *) calloc (slots, sizeof (s_entry_t));
    assert (self->slots);
    self->mask = slots - 1;
    self->count = 0;
}

//  The entry for seq, or NULL
static s_entry_t *
s_seqmap_find (s_seqmap_t *self, uint64_t seq)
{
    uint64_t key = seq + 1;
    for (size_t slot = s_mix (key) & self->mask; ; slot = (slot + 1) & self->mask) {
        s_entry_t *entry = &self->slots [slot];
        if (entry->key == key)
            return entry;
        if (entry->key == 0)
            return NULL;
    }
}

//  Insert a new, zeroed entry for seq (which must not be in the table)
static s_entry_t *
s_seqmap_insert (s_seqmap_t *self, uint64_t seq)
{
    if ((self->count + 1) * 2 > self->mask + 1) {
        s_seqmap_t bigger;
        s_seqmap_init (&bigger, (self->mask + 1) * 2);
        for (size_t index = 0; index <= self->mask; index++) {
            s_entry_t *entry = &self->slots [index];
            if (entry->key == 0)
                continue;
            size_t slot = s_mix (entry->key) & bigger.mask;
            while (bigger.slots [slot].key)
                slot = (slot + 1) & bigger.mask;
            bigger.slots [slot] = *entry;
        }
        bigger.count = self->count;
        free (self->slots);
        *self = bigger;
    }
    uint64_t key = seq + 1;
    size_t slot = s_mix (key) & self->mask;
    while (self->slots [slot].key)
        slot = (slot + 1) & self->mask;
    s_entry_t *entry = &self->slots [slot];
    memset (entry, 0, sizeof *entry);
    entry->key = key;
    self->count++;
    return entry;
}

//  Message ids (16 random bytes) -> seq of their ACCEPTED record
typedef struct {
    uint8_t id [KP_ID_SIZE];
    uint64_t seq_plus1;             //  0 = empty slot
} s_id_slot_t;

typedef struct {
    s_id_slot_t *slots;
    size_t mask;
    size_t count;
} s_idmap_t;

//  An empty table of slots ids (a power of two)
static void
s_idmap_init (s_idmap_t *self, size_t slots)
{
    self->slots = (s_id_slot_t *) calloc (slots, sizeof (s_id_slot_t));
    assert (self->slots);
    self->mask = slots - 1;
    self->count = 0;
}

//  Ids are random: mixing their two halves is enough
static inline size_t
s_id_hash (const uint8_t *id)
{
    uint64_t low, high;
    memcpy (&low, id, 8);
    memcpy (&high, id + 8, 8);
    return s_mix (low ^ (high * 0x9e3779b97f4a7c15ULL));
}

//  The seq + 1 stored for id, or 0
static uint64_t
s_idmap_find (s_idmap_t *self, const uint8_t *id)
{
    for (size_t slot = s_id_hash (id) & self->mask; ; slot = (slot + 1) & self->mask) {
        s_id_slot_t *entry = &self->slots [slot];
        if (entry->seq_plus1 == 0)
            return 0;
        if (memcmp (entry->id, id, KP_ID_SIZE) == 0)
            return entry->seq_plus1;
    }
}

//  Point id (in the table) at seq instead
static void
s_idmap_update (s_idmap_t *self, const uint8_t *id, uint64_t seq)
{
    for (size_t slot = s_id_hash (id) & self->mask; ; slot = (slot + 1) & self->mask) {
        s_id_slot_t *entry = &self->slots [slot];
        assert (entry->seq_plus1);
        if (memcmp (entry->id, id, KP_ID_SIZE) == 0) {
            entry->seq_plus1 = seq + 1;
            return;
        }
    }
}

//  Add id (not in the table) with seq
static void
s_idmap_insert (s_idmap_t *self, const uint8_t *id, uint64_t seq)
{
    if ((self->count + 1) * 2 > self->mask + 1) {
        s_idmap_t bigger;
        s_idmap_init (&bigger, (self->mask + 1) * 2);
        for (size_t index = 0; index <= self->mask; index++) {
            s_id_slot_t *entry = &self->slots [index];
            if (entry->seq_plus1 == 0)
                continue;
            size_t slot = s_id_hash (entry->id) & bigger.mask;
            while (bigger.slots [slot].seq_plus1)
                slot = (slot + 1) & bigger.mask;
            bigger.slots [slot] = *entry;
        }
        bigger.count = self->count;
        free (self->slots);
        *self = bigger;
    }
    size_t slot = s_id_hash (id) & self->mask;
    while (self->slots [slot].seq_plus1)
        slot = (slot + 1) & self->mask;
    memcpy (self->slots [slot].id, id, KP_ID_SIZE);
    self->slots [slot].seq_plus1 = seq + 1;
    self->count++;
}

//  --------------------------------------------------------------------------
//  Small helpers: hex, files, times, JSON strings

//  Hex of data into a caller's buffer of at least 2 * size + 1
static char *
s_hex (const uint8_t *data, size_t size, char *text)
{
    static const char digits [] = "0123456789abcdef";
    for (size_t index = 0; index < size; index++) {
        text [2 * index] = digits [data [index] >> 4];
        text [2 * index + 1] = digits [data [index] & 15];
    }
    text [2 * size] = 0;
    return text;
}

//  Read a small file (up to limit bytes) into a new string; NULL with errno
static char *
s_read_file (const char *path, size_t limit, size_t *size_p)
{
    FILE *file = fopen (path, "r");
    if (!file)
        return NULL;
    char *text = (char *) malloc (limit + 1);
    assert (text);
    size_t size = fread (text, 1, limit + 1, file);
    int err = ferror (file)? errno: 0;
    fclose (file);
    if (err || size > limit) {
        free (text);
        errno = err? err: EFBIG;
        return NULL;
    }
    text [size] = 0;
    if (size_p)
        *size_p = size;
    return text;
}

//  True if path is a directory
static bool
s_is_dir (const char *path)
{
    struct stat info;
    return stat (path, &info) == 0 && S_ISDIR (info.st_mode);
}

//  ISO 8601 UTC with milliseconds into a caller's buffer of 32
static const char *
s_iso (int64_t ms, char *text)
{
    char *iso = kp_msg_iso_time (ms);
    snprintf (text, 32, "%s", iso);
    free (iso);
    return text;
}

//  Parse TIME: ms since 1970, or YYYY-MM-DD[THH:MM[:SS[.mmm]][Z]], UTC.
//  Returns 0 or -1.
static int
s_parse_time (const char *text, int64_t *ms_p)
{
    if (!*text)
        return -1;
    size_t digits = strspn (text, "0123456789");
    if (text [digits] == 0 && digits <= 15) {
        *ms_p = strtoll (text, NULL, 10);
        return 0;
    }
    struct tm parts;
    memset (&parts, 0, sizeof parts);
    int year, month, day, hour = 0, minute = 0, second = 0, millis = 0;
    int used = 0;
    if (sscanf (text, "%4d-%2d-%2d%n", &year, &month, &day, &used) != 3 || used != 10)
        return -1;
    const char *rest = text + used;
    if (*rest == 'T' || *rest == ' ') {
        if (sscanf (rest + 1, "%2d:%2d%n", &hour, &minute, &used) != 2 || used != 5)
            return -1;
        rest += 1 + used;
        if (*rest == ':') {
            if (sscanf (rest + 1, "%2d%n", &second, &used) != 1 || used != 2)
                return -1;
            rest += 1 + used;
            if (*rest == '.') {
                if (sscanf (rest + 1, "%3d%n", &millis, &used) != 1 || used != 3)
                    return -1;
                rest += 1 + used;
            }
        }
    }
    if (*rest == 'Z')
        rest++;
    if (*rest || month < 1 || month > 12 || day < 1 || day > 31 || hour > 23
    ||  minute > 59 || second > 60)
        return -1;
    parts.tm_year = year - 1900;
    parts.tm_mon = month - 1;
    parts.tm_mday = day;
    parts.tm_hour = hour;
    parts.tm_min = minute;
    parts.tm_sec = second;
    time_t when = timegm (&parts);
    if (when == (time_t) -1)
        return -1;
    *ms_p = (int64_t) when * 1000 + millis;
    return 0;
}

//  Write text as a JSON string
static void
s_json_string (FILE *stream, const char *text)
{
    fputc ('"', stream);
    for (const unsigned char *cursor = (const unsigned char *) text; *cursor; cursor++) {
        if (*cursor == '"' || *cursor == '\\')
            fprintf (stream, "\\%c", *cursor);
        else if (*cursor == '\n')
            fputs ("\\n", stream);
        else if (*cursor < 0x20)
            fprintf (stream, "\\u%04x", *cursor);
        else
            fputc (*cursor, stream);
    }
    fputc ('"', stream);
}

//  --------------------------------------------------------------------------
//  Checkpoints: the key, notes, and the checkpoints of a data dir

//  Load the checkpoint public key from FILE (64 hex digits, as
//  REGION/checkpoint.pub) or from a region directory. 0 or -1 (said).
static int
s_key_load (const char *path, uint8_t *key)
{
    if (s_is_dir (path)) {
        s_capture_t capture;
        s_capture_begin (&capture);
        int rc = kp_checkpoint_load_public (path, key);
        char *why = s_capture_end (&capture);
        if (rc)
            s_say (S_EXIT_FAILED, "cannot load the checkpoint key from '%s': %s", path,
                   *why? why: "unreadable");
        free (why);
        return rc;
    }
    char *text = s_read_file (path, 1024, NULL);
    if (!text)
        return s_say (-1, "cannot read the checkpoint key '%s': %s", path,
                      strerror (errno));
    //  Trim surrounding white space
    char *start = text + strspn (text, " \t\r\n");
    size_t length = strcspn (start, " \t\r\n");
    start [length] = 0;
    int rc = length == 2 * KP_CHECKPOINT_PUBLIC
          && kp_hex_decode (start, key, KP_CHECKPOINT_PUBLIC) == 0? 0: -1;
    free (text);
    if (rc)
        s_say (S_EXIT_FAILED, "checkpoint key '%s' is not 64 hex digits (an Ed25519 "
               "public key, as in REGION/checkpoint.pub)", path);
    return rc;
}

//  A verified checkpoint and where it came from
typedef struct {
    kp_checkpoint_t checkpoint;     //  origin, size, root
    char *note;                     //  the note text
    char *source;                   //  "DIR/checkpoints record 3", "FILE"
    bool trusted;                   //  from --trusted
} s_note_t;

//  Verify a note with key under its own origin (first line), which must
//  equal *origin if that is set (else it is set). Fills *note. Returns 0,
//  or -1 with *why (into a buffer of the caller's of 256).
static int
s_note_verify (const char *text, size_t size, const uint8_t *key, char *origin,
               kp_checkpoint_t *checkpoint, char *why)
{
    size_t length = 0;
    while (length < size && text [length] != '\n')
        length++;
    if (length == 0 || length == size || length > KP_CHECKPOINT_MAX_ORIGIN) {
        snprintf (why, 256, "not a checkpoint note (no origin line)");
        return -1;
    }
    char name [KP_CHECKPOINT_MAX_ORIGIN + 1];
    memcpy (name, text, length);
    name [length] = 0;
    if (*origin && strcmp (origin, name) != 0) {
        snprintf (why, 256, "its origin is '%.100s', not '%.100s'", name, origin);
        return -1;
    }
    const char *error = NULL;
    s_capture_t capture;
    s_capture_begin (&capture);
    int rc = kp_checkpoint_verify (text, size, name, key, checkpoint, &error);
    free (s_capture_end (&capture));
    if (rc) {
        snprintf (why, 256, "signature does not verify with the checkpoint key: %s",
                  error? error: "invalid");
        return -1;
    }
    if (!*origin)
        snprintf (origin, KP_CHECKPOINT_MAX_ORIGIN + 1, "%s", name);
    return 0;
}

//  Free count notes and the array
static void
s_notes_destroy (s_note_t *notes, size_t count)
{
    for (size_t index = 0; index < count; index++) {
        free (notes [index].note);
        free (notes [index].source);
    }
    free (notes);
}

typedef struct {
    s_note_t *notes;                //  grows
    size_t count, limit;
    const char *dir;                //  for the source names
    const uint8_t *key;
    char *origin;                   //  shared origin, "" until the first
    bool failed;                    //  a note failed (said)
} s_notes_load_t;

//  kp_log_replay visitor: verify one stored note and keep it
static int
s_notes_visit (const uint8_t *data, size_t size, uint64_t seq, uint64_t pos, void *arg)
{
    (void) pos;
    s_notes_load_t *load = (s_notes_load_t *) arg;
    char why [256];
    kp_checkpoint_t checkpoint;
    if (size > S_MAX_NOTE
    ||  s_note_verify ((const char *) data, size, load->key, load->origin, &checkpoint,
                       why)) {
        if (size > S_MAX_NOTE)
            snprintf (why, sizeof why, "%zu bytes is too long for a note", size);
        s_say (S_EXIT_FAILED, "%s/checkpoints record %" PRIu64 ": %s", load->dir, seq,
               why);
        load->failed = true;
        return -1;
    }
    uint64_t before = load->count? load->notes [load->count - 1].checkpoint.size: 0;
    if (load->count > 0 && checkpoint.size <= before) {
        s_say (S_EXIT_FAILED, "%s/checkpoints record %" PRIu64 ": size %" PRIu64
               " is not larger than the one before (%" PRIu64 "): checkpoints must grow",
               load->dir, seq, checkpoint.size, before);
        load->failed = true;
        return -1;
    }
    if (load->count == load->limit) {
        load->limit = load->limit? load->limit * 2: 64;
        load->notes = (s_note_t *) realloc (load->notes, load->limit * sizeof (s_note_t));
        assert (load->notes);
    }
    s_note_t *note = &load->notes [load->count++];
    note->checkpoint = checkpoint;
    note->note = strndup ((const char *) data, size);
    note->source = zsys_sprintf ("%s/checkpoints record %" PRIu64, load->dir, seq);
    note->trusted = false;
    assert (note->note && note->source);
    return 0;
}

//  Open DIR/name as a kp_log for reading. NULL (said) if it cannot be
//  opened or is damaged; *absent set (and NULL, nothing said) if the
//  directory does not exist and absent_ok.
static kp_log_t *
s_log_open (const char *dir, const char *name, bool writable, bool absent_ok,
            bool *absent)
{
    char *path = zsys_sprintf ("%s/%s", dir, name);
    assert (path);
    if (absent)
        *absent = false;
    if (!writable && !s_is_dir (path)) {
        if (absent_ok && absent && access (path, F_OK) != 0)
            *absent = true;
        else
            s_say (S_EXIT_FAILED, "%s is not a log directory%s", path,
                   absent_ok? "": " (a broker data dir or a kp-audit fetch copy holds "
                   "log/ and checkpoints/)");
        free (path);
        return NULL;
    }
    s_capture_t capture;
    s_capture_begin (&capture);
    kp_log_status_t status;
    kp_log_t *log = writable? kp_log_open (path, S_SEGMENT_SIZE, true, &status):
                              kp_log_open_readonly (path, &status);
    char *why = s_capture_end (&capture);
    if (!log)
        s_say (S_EXIT_FAILED, "%s: %s",
               status == KP_LOG_CORRUPT? "framing": "cannot open", *why? why: path);
    free (why);
    free (path);
    return log;
}

//  Load and verify every checkpoint of dir/checkpoints (absent = none).
//  origin is shared (see s_note_verify). Returns 0 or -1 (said).
static int
s_notes_load (const char *dir, const uint8_t *key, char *origin, bool writable,
              s_note_t **notes_p, size_t *count_p, kp_log_t **log_p)
{
    *notes_p = NULL;
    *count_p = 0;
    if (log_p)
        *log_p = NULL;
    bool absent = false;
    kp_log_t *log = s_log_open (dir, "checkpoints", writable, true, &absent);
    if (!log)
        return absent? 0: -1;
    s_notes_load_t load = { NULL, 0, 0, dir, key, origin, false };
    int rc = kp_log_replay (log, s_notes_visit, &load);
    if (rc && !load.failed)
        s_say (S_EXIT_FAILED, "cannot read %s/checkpoints", dir);
    if (rc) {
        s_notes_destroy (load.notes, load.count);
        kp_log_destroy (&log);
        return -1;
    }
    *notes_p = load.notes;
    *count_p = load.count;
    if (log_p)
        *log_p = log;
    else
        kp_log_destroy (&log);
    return 0;
}

//  Read and verify a note file. 0 or -1 (said)
static int
s_note_file (const char *path, const uint8_t *key, char *origin, s_note_t *note)
{
    size_t size;
    char *text = s_read_file (path, S_MAX_NOTE, &size);
    if (!text)
        return s_say (-1, "cannot read checkpoint '%s': %s", path, strerror (errno));
    char why [256];
    if (s_note_verify (text, size, key, origin, &note->checkpoint, why)) {
        free (text);
        return s_say (-1, "checkpoint '%s': %s", path, why);
    }
    note->note = text;
    note->source = strdup (path);
    assert (note->source);
    note->trusted = true;
    return 0;
}

//  --------------------------------------------------------------------------
//  The broker, over CurveZMQ: Hello -> Welcome, then one AuditRequest at a
//  time -> AuditReply | Error.

typedef struct {
    zsock_t *dealer;                //  to the broker
    int64_t timeout;                //  msec per answer
    uint64_t tag;                   //  last request tag
    char *broker;                   //  broker name, from Welcome
    char *partner;                  //  our partner id, from Welcome
} s_wire_t;

//  Read the broker's public key (Z85) from its public cert; NULL (said)
static char *
s_broker_key (const char *path)
{
    zconfig_t *root = zconfig_load (path);
    if (!root) {
        s_say (S_EXIT_FAILED, "cannot read broker cert '%s'", path);
        return NULL;
    }
    const char *text = zconfig_get (root, "curve/public-key", NULL);
    uint8_t key [32];
    char *result = NULL;
    if (text && strlen (text) == KP_KEY_TEXT && zmq_z85_decode (key, text))
        result = strdup (text);
    else
        s_say (S_EXIT_FAILED, "broker cert '%s' holds no valid curve public-key", path);
    zconfig_destroy (&root);
    return result;
}

//  Apply our keypair from the secret cert, then wipe it. 0 or -1 (said)
static int
s_apply_cert (zsock_t *dealer, const char *path)
{
    zcert_t *cert = zcert_load (path);
    if (!cert)
        return s_say (-1, "cannot read cert '%s'", path);
    int rc = 0;
    if (sodium_is_zero (zcert_secret_key (cert), 32))
        rc = s_say (-1, "cert '%s' holds no secret key (use the auditor's _secret file "
                    "kp-keys made)", path);
    else
        zcert_apply (cert, dealer);
    //  CZMQ does not wipe a cert: do it before it is freed
    sodium_memzero ((void *) (uintptr_t) zcert_secret_key (cert), 32);
    const char *secret_text = zcert_secret_txt (cert);
    sodium_memzero ((void *) (uintptr_t) secret_text, strlen (secret_text));
    zcert_destroy (&cert);
    return rc;
}

//  Send one command. 0 or -1
static int
s_wire_send (s_wire_t *self, Kp__Wire__Command *command)
{
    zframe_t *frame = kp_command_pack (command);
    assert (frame);
    int rc = zframe_send (&frame, self->dealer, 0);
    zframe_destroy (&frame);
    return rc;
}

//  Next command from the broker before deadline (monotonic ms); NULL on
//  timeout. Frames that are not one valid command are skipped.
static Kp__Wire__Command *
s_wire_recv (s_wire_t *self, int64_t deadline)
{
    void *handle = zsock_resolve (self->dealer);
    while (true) {
        int64_t left = deadline - kp_mono_ms ();
        if (left <= 0 || zsys_interrupted)
            return NULL;
        zmq_pollitem_t item = { handle, 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, (long) left) <= 0)
            continue;
        zmq_msg_t frame;
        zmq_msg_init (&frame);
        if (zmq_msg_recv (&frame, handle, ZMQ_DONTWAIT) == -1) {
            zmq_msg_close (&frame);
            continue;
        }
        bool more = zmq_msg_more (&frame);
        Kp__Wire__Command *command = more? NULL:
            kp_command_unpack ((const uint8_t *) zmq_msg_data (&frame),
                               zmq_msg_size (&frame), S_MAX_FRAME);
        zmq_msg_close (&frame);
        while (more) {
            zmq_msg_init (&frame);
            zmq_msg_recv (&frame, handle, 0);
            more = zmq_msg_more (&frame);
            zmq_msg_close (&frame);
        }
        if (!command)
            continue;
        if (command->kind_case == KP__WIRE__COMMAND__KIND_PING) {
            Kp__Wire__Command pong = KP__WIRE__COMMAND__INIT;
            pong.kind_case = KP__WIRE__COMMAND__KIND_PONG;
            pong.pong = command->ping;
            s_wire_send (self, &pong);
            kp__wire__command__free_unpacked (command, NULL);
            continue;
        }
        return command;
    }
}

//  Say Hello (credit 0: we take no deliveries) and wait for Welcome.
//  0 or -1 (said).
static int
s_wire_hello (s_wire_t *self)
{
    Kp__Wire__Hello hello = KP__WIRE__HELLO__INIT;
    hello.version = KP_PROTOCOL_VERSION;
    hello.credit = 0;
    hello.agent = (char *) "kp-audit";
    Kp__Wire__Command command = KP__WIRE__COMMAND__INIT;
    command.kind_case = KP__WIRE__COMMAND__KIND_HELLO;
    command.hello = &hello;
    if (s_wire_send (self, &command))
        return s_say (-1, "cannot send to the broker: %s", zmq_strerror (zmq_errno ()));
    int64_t deadline = kp_mono_ms () + self->timeout;
    while (true) {
        Kp__Wire__Command *reply = s_wire_recv (self, deadline);
        if (!reply)
            return s_say (-1, "the broker did not answer within %" PRId64 " ms (wrong "
                          "broker cert, unknown or revoked key, or broker down)",
                          self->timeout);
        int rc = 1;
        if (reply->kind_case == KP__WIRE__COMMAND__KIND_WELCOME) {
            free (self->broker);
            free (self->partner);
            self->broker = strdup (reply->welcome->broker);
            self->partner = strdup (reply->welcome->partner);
            assert (self->broker && self->partner);
            rc = 0;
        }
        else
        if (reply->kind_case == KP__WIRE__COMMAND__KIND_ERROR
        &&  reply->error->code != KP__WIRE__ERROR_CODE__UNEXPECTED) {
            const char *code = kp_error_name (reply->error->code);
            s_say (S_EXIT_FAILED, "the broker refused the session: %s: %s",
                   code? code: "ERROR", reply->error->reason);
            rc = -1;
        }
        kp__wire__command__free_unpacked (reply, NULL);
        if (rc <= 0)
            return rc;
    }
}

//  Close the connection; idempotent
static void
s_wire_destroy (s_wire_t **self_p)
{
    assert (self_p);
    s_wire_t *self = *self_p;
    if (self) {
        zsock_destroy (&self->dealer);
        free (self->broker);
        free (self->partner);
        free (self);
        *self_p = NULL;
    }
}

//  Connect to the broker and open a session; NULL (said) on failure
static s_wire_t *
s_wire_new (const s_options_t *options)
{
    char *server_key = s_broker_key (options->broker_cert);
    if (!server_key)
        return NULL;
    s_wire_t *self = (s_wire_t *) zmalloc (sizeof (s_wire_t));
    assert (self);
    self->timeout = options->timeout;
    self->dealer = zsock_new (ZMQ_DEALER);
    if (!self->dealer) {
        s_say (S_EXIT_FAILED, "cannot create a socket: %s", zmq_strerror (zmq_errno ()));
        goto failed;
    }
    zsock_set_curve_serverkey (self->dealer, server_key);
    if (s_apply_cert (self->dealer, options->cert))
        goto failed;
    zsock_set_linger (self->dealer, 0);
    zsock_set_reconnect_ivl (self->dealer, 100);
    zsock_set_heartbeat_ivl (self->dealer, 1000);
    zsock_set_heartbeat_timeout (self->dealer, 3000);
    zsock_set_handshake_ivl (self->dealer, (int) options->timeout);
    zsock_set_maxmsgsize (self->dealer, S_MAX_FRAME + 1024);
    if (zsock_connect (self->dealer, "%s", options->broker)) {
        s_say (S_EXIT_FAILED, "cannot connect to '%s': %s", options->broker,
               zmq_strerror (zmq_errno ()));
        goto failed;
    }
    if (s_wire_hello (self))
        goto failed;
    free (server_key);
    return self;

failed:
    free (server_key);
    s_wire_destroy (&self);
    return NULL;
}

//  Ask one audit question. Returns the reply command (caller frees it with
//  kp__wire__command__free_unpacked) whose audit_reply answers request, or
//  NULL (said) on an Error or no answer. If the broker lost our session
//  (idle, or it restarted) we say Hello again and ask once more.
static Kp__Wire__Command *
s_wire_ask (s_wire_t *self, Kp__Wire__AuditRequest *request)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        request->tag = ++self->tag;
        Kp__Wire__Command command = KP__WIRE__COMMAND__INIT;
        command.kind_case = KP__WIRE__COMMAND__KIND_AUDIT_REQUEST;
        command.audit_request = request;
        if (s_wire_send (self, &command)) {
            s_say (S_EXIT_FAILED, "cannot send to the broker: %s",
                   zmq_strerror (zmq_errno ()));
            return NULL;
        }
        int64_t deadline = kp_mono_ms () + self->timeout;
        while (true) {
            Kp__Wire__Command *reply = s_wire_recv (self, deadline);
            if (!reply) {
                s_say (S_EXIT_FAILED, "the broker did not answer within %" PRId64 " ms",
                       self->timeout);
                return NULL;
            }
            if (reply->kind_case == KP__WIRE__COMMAND__KIND_AUDIT_REPLY
            &&  reply->audit_reply->tag == request->tag)
                return reply;
            if (reply->kind_case == KP__WIRE__COMMAND__KIND_ERROR) {
                Kp__Wire__Error *error = reply->error;
                if (error->code == KP__WIRE__ERROR_CODE__UNEXPECTED && attempt == 0
                &&  strstr (error->reason, "hello")) {
                    kp__wire__command__free_unpacked (reply, NULL);
                    if (s_wire_hello (self))
                        return NULL;
                    break;          //  ask again
                }
                const char *code = kp_error_name (error->code);
                s_say (S_EXIT_FAILED, "the broker refused: %s: %s", code? code: "ERROR",
                       error->reason);
                kp__wire__command__free_unpacked (reply, NULL);
                return NULL;
            }
            //  A stale reply to an earlier question, or noise: skip it
            kp__wire__command__free_unpacked (reply, NULL);
        }
    }
    s_say (S_EXIT_FAILED, "the broker keeps losing our session");
    return NULL;
}

//  Ask for the latest checkpoint and verify it; the origin must be the
//  broker's name from Welcome (and *origin, if set). 0 or -1 (said)
static int
s_wire_checkpoint (s_wire_t *self, const uint8_t *key, char *origin, s_note_t *note)
{
    Kp__Wire__CheckpointQuery query = KP__WIRE__CHECKPOINT_QUERY__INIT;
    Kp__Wire__AuditRequest request = KP__WIRE__AUDIT_REQUEST__INIT;
    request.query_case = KP__WIRE__AUDIT_REQUEST__QUERY_CHECKPOINT;
    request.checkpoint = &query;
    Kp__Wire__Command *reply = s_wire_ask (self, &request);
    if (!reply)
        return -1;
    const char *text = reply->audit_reply->checkpoint;
    int rc = -1;
    char why [256];
    if (!*origin)
        snprintf (origin, KP_CHECKPOINT_MAX_ORIGIN + 1, "%s", self->broker);
    if (!*text)
        s_say (S_EXIT_FAILED, "the broker has no checkpoint yet");
    else
    if (s_note_verify (text, strlen (text), key, origin, &note->checkpoint, why))
        s_say (S_EXIT_FAILED, "the broker's latest checkpoint: %s", why);
    else {
        note->note = strdup (text);
        note->source = strdup ("the broker's latest checkpoint");
        note->trusted = false;
        assert (note->note && note->source);
        rc = 0;
    }
    kp__wire__command__free_unpacked (reply, NULL);
    return rc;
}

//  Ask for a consistency proof from old to new and verify it. 0 or -1
//  (said).
static int
s_wire_consistency (s_wire_t *self, const kp_checkpoint_t *old_checkpoint,
                    const kp_checkpoint_t *new_checkpoint)
{
    Kp__Wire__ConsistencyQuery query = KP__WIRE__CONSISTENCY_QUERY__INIT;
    query.old_size = old_checkpoint->size;
    query.new_size = new_checkpoint->size;
    Kp__Wire__AuditRequest request = KP__WIRE__AUDIT_REQUEST__INIT;
    request.query_case = KP__WIRE__AUDIT_REQUEST__QUERY_CONSISTENCY;
    request.consistency = &query;
    Kp__Wire__Command *reply = s_wire_ask (self, &request);
    if (!reply)
        return -1;
    Kp__Wire__AuditReply *answer = reply->audit_reply;
    int rc = -1;
    if (answer->old_size != old_checkpoint->size || answer->size != new_checkpoint->size)
        s_say (S_EXIT_FAILED, "the broker answered a consistency proof for sizes %"
               PRIu64 " to %" PRIu64 ", not %" PRIu64 " to %" PRIu64, answer->old_size,
               answer->size, old_checkpoint->size, new_checkpoint->size);
    else
    if (answer->n_proof > KP_MERKLE_MAX_PROOF)
        s_say (S_EXIT_FAILED, "the broker's consistency proof has %zu hashes, more than "
               "any tree needs", answer->n_proof);
    else {
        uint8_t proof [KP_MERKLE_MAX_PROOF * KP_MERKLE_HASH];
        bool shaped = true;
        for (size_t index = 0; index < answer->n_proof; index++) {
            if (answer->proof [index].len != KP_MERKLE_HASH)
                shaped = false;
            else
                memcpy (proof + index * KP_MERKLE_HASH, answer->proof [index].data,
                        KP_MERKLE_HASH);
        }
        if (!shaped)
            s_say (S_EXIT_FAILED, "the broker's consistency proof holds a hash that is "
                   "not 32 bytes");
        else
        if (!kp_merkle_verify_consistency (old_checkpoint->size, new_checkpoint->size,
                                           old_checkpoint->root, new_checkpoint->root,
                                           proof, answer->n_proof))
            s_say (S_EXIT_FAILED, "the consistency proof from size %" PRIu64 " to %"
                   PRIu64 " does not verify: the tree the broker signed at %" PRIu64
                   " is not a prefix of the one at %" PRIu64 " (history was rewritten)",
                   old_checkpoint->size, new_checkpoint->size, old_checkpoint->size,
                   new_checkpoint->size);
        else
            rc = 0;
    }
    kp__wire__command__free_unpacked (reply, NULL);
    return rc;
}

//  --------------------------------------------------------------------------
//  verify: the tree, the checkpoints, the framing and the order of events

//  A partner as the log knows it
typedef struct {
    uint64_t registered;            //  seq + 1 of its last PARTNER_REGISTERED
    uint64_t revoked;               //  seq + 1 of a PARTNER_REVOKED after it
    char *id;                       //  partner id
} s_partner_t;

typedef struct {
    const char *dir;                //  the data dir
    kp_log_t *log;                  //  its log, to read ACCEPTED records back
    s_note_t *notes;                //  every checkpoint, sorted by size
    size_t note_count;
    size_t next_note;               //  first note not yet compared
    kp_merkle_edge_t edge;          //  the tree so far
    s_arena_t arena;                //  decode memory
    ProtobufCAllocator allocator;   //  over the arena
    s_seqmap_t seqs;                //  ACCEPTED and settling records
    s_idmap_t ids;                  //  message id -> ACCEPTED seq
    zhashx_t *partner_index;        //  id -> index + 1
    s_partner_t *partners;          //  by index
    size_t partner_count, partner_limit;
    int64_t tolerance;              //  msec the clock may step back
    int64_t latest_time;            //  largest time_ms so far
    uint64_t latest_time_seq;       //  its record
    uint64_t records;               //  records visited
    uint64_t messages;              //  ACCEPTED records
    uint64_t voided;                //  VOIDED records
    uint64_t last_start;            //  seq + 1 of the last BROKER_START, or 0
    uint64_t last_stop;             //  seq + 1 of the last BROKER_STOP, or 0
    uint64_t voiding;               //  seq + 1 of the first VOIDED since it, or 0
    bool have_problem;              //  a record is wrong
    uint64_t problem_seq;           //  which
    char problem [512];             //  what, "record N: ..."
    bool failed;                    //  stop: the finding is in failure
    char failure [1024];            //  the one line to print
    s_progress_t progress;
} s_verify_t;

//  The index of partner id, added if new
static uint32_t
s_partner (s_verify_t *self, const char *id)
{
    void *found = zhashx_lookup (self->partner_index, id);
    if (found)
        return (uint32_t) ((uintptr_t) found - 1);
    if (self->partner_count == self->partner_limit) {
        self->partner_limit = self->partner_limit? self->partner_limit * 2: 64;
        self->partners = (s_partner_t *) realloc (self->partners,
                                                  self->partner_limit *
                                                  sizeof (s_partner_t));
        assert (self->partners);
    }
    uint32_t index = (uint32_t) self->partner_count++;
    zhashx_insert (self->partner_index, id, (void *) (uintptr_t) (index + 1));
    s_partner_t *partner = &self->partners [index];
    partner->registered = 0;
    partner->revoked = 0;
    partner->id = strdup (id);
    assert (partner->id);
    return index;
}

//  Remember the first problem with a record
static void
    s_problem (s_verify_t *self, uint64_t seq, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

static void
s_problem (s_verify_t *self, uint64_t seq, const char *format, ...)
{
    if (self->have_problem)
        return;
    self->have_problem = true;
    self->problem_seq = seq;
    int used = snprintf (self->problem, sizeof self->problem, "record %" PRIu64 ": ",
                         seq);
    va_list args;
    va_start (args, format);
    vsnprintf (self->problem + used, sizeof self->problem - (size_t) used, format, args);
    va_end (args);
}

//  Why a partner may not act now, or NULL if it may: never registered, or
//  revoked (into why, 128 bytes)
static const char *
s_partner_unfit (s_verify_t *self, uint32_t index, char *why)
{
    s_partner_t *partner = &self->partners [index];
    if (partner->registered == 0) {
        snprintf (why, 128, "who was never registered (no PARTNER_REGISTERED before)");
        return why;
    }
    if (partner->revoked) {
        snprintf (why, 128, "revoked at record %" PRIu64, partner->revoked - 1);
        return why;
    }
    return NULL;
}

//  An event's name, for messages
static const char *
s_event_text (int event)
{
    const char *name = kp_event_name ((Kp__Wire__EventKind) event);
    return name? name: "an unknown event";
}

//  The status a sender hears for a settling event
static Kp__Wire__StatusKind
s_status_for (int event)
{
    switch (event) {
        case KP__WIRE__EVENT_KIND__ACKNOWLEDGED: return KP__WIRE__STATUS_KIND__DELIVERED;
        case KP__WIRE__EVENT_KIND__NACKED: return KP__WIRE__STATUS_KIND__REFUSED;
        case KP__WIRE__EVENT_KIND__EXPIRED_EVENT:
            return KP__WIRE__STATUS_KIND__EXPIRED_UNDELIVERED;
        case KP__WIRE__EVENT_KIND__OVERDUE_EVENT: return KP__WIRE__STATUS_KIND__OVERDUE;
        default: return KP__WIRE__STATUS_KIND__STATUS_UNSPECIFIED;
    }
}

//  True for the records a broker writes at start between its VOIDED records
//  and its BROKER_START: the registry it loads, the bodies its retention
//  erases, the keys it turns away. Nothing of a running broker.
static bool
s_written_at_start (int event)
{
    switch (event) {
        case KP__WIRE__EVENT_KIND__VOIDED:
        case KP__WIRE__EVENT_KIND__PARTNER_REGISTERED:
        case KP__WIRE__EVENT_KIND__PARTNER_REVOKED:
        case KP__WIRE__EVENT_KIND__BODY_DELETED:
        case KP__WIRE__EVENT_KIND__AUTH_FAILURE:
        case KP__WIRE__EVENT_KIND__BROKER_START:
            return true;
        default:
            return false;
    }
}

//  Why a VOIDED record is not a copy of the ACCEPTED record at pos (the
//  first field that differs, into why, 128 bytes), or NULL if it is
static const char *
s_voided_unlike (s_verify_t *self, const Kp__Wire__Record *voided, uint64_t pos,
                 char *why)
{
    size_t size = 0;
    const uint8_t *data = kp_log_read (self->log, pos, &size);
    Kp__Wire__Record *accepted = data?
        kp__wire__record__unpack (&self->allocator, size, data): NULL;
    const char *field = NULL;
    if (!accepted) {
        snprintf (why, 128, "its ACCEPTED record cannot be read back");
        return why;
    }
    if (voided->type != accepted->type)
        field = "type";
    else
    if (strcmp (voided->sender, accepted->sender) != 0)
        field = "sender";
    else
    if (voided->sender_role != accepted->sender_role)
        field = "sender_role";
    else
    if (strcmp (voided->recipient, accepted->recipient) != 0)
        field = "recipient";
    else
    if (voided->recipient_role != accepted->recipient_role)
        field = "recipient_role";
    else
    if (voided->body_hash.len != accepted->body_hash.len
    ||  (accepted->body_hash.len
         && memcmp (voided->body_hash.data, accepted->body_hash.data,
                    accepted->body_hash.len) != 0))
        field = "body_hash";
    if (!field)
        return NULL;
    snprintf (why, 128, "it differs from its ACCEPTED record in %s", field);
    return why;
}

//  A VOIDED record: the broker found at start that a crash kept an
//  ACCEPTED record but lost its body (the two are synced at the same
//  time), so no receipt went out. The message must be one of the life
//  that just ended, with nothing else about it, voided once.
static void
s_verify_voided (s_verify_t *self, const Kp__Wire__Record *record, uint64_t seq)
{
    uint64_t ref = record->ref_seq;
    s_entry_t *entry = ref < seq? s_seqmap_find (&self->seqs, ref): NULL;
    if (!entry || entry->kind != S_ENTRY_ACCEPTED) {
        s_problem (self, seq, "VOIDED for seq %" PRIu64 " but %" PRIu64 " is not "
                   "ACCEPTED", ref, ref);
        return;
    }
    char id_text [2 * KP_ID_SIZE + 1];
    if (record->message_id.len != KP_ID_SIZE
    ||  memcmp (record->message_id.data, entry->id, KP_ID_SIZE) != 0) {
        s_problem (self, seq, "VOIDED for seq %" PRIu64 " names another message than %"
                   PRIu64 " accepted (%s)", ref, ref,
                   s_hex (entry->id, KP_ID_SIZE, id_text));
        return;
    }
    if (entry->flags & S_FLAG_VOIDED) {
        s_problem (self, seq, "a second VOIDED for seq %" PRIu64 " (the first is record %"
                   PRIu64 ")", ref, entry->done);
        return;
    }
    if (record->outcome != KP__WIRE__ERROR_CODE__UNAVAILABLE) {
        const char *outcome = kp_error_name (record->outcome);
        s_problem (self, seq, "VOIDED for seq %" PRIu64 " with outcome %s, not "
                   "UNAVAILABLE", ref, outcome? outcome: "unknown");
        return;
    }
    //  No receipt went out, so nothing else can have happened to it
    char what [96] = "";
    if (entry->flags & S_FLAG_SETTLED)
        snprintf (what, sizeof what, "it was settled (%s at record %" PRIu64 ")",
                  s_event_text (entry->event), entry->done);
    else
    if (entry->flags & S_FLAG_OVERDUE)
        snprintf (what, sizeof what, "its OVERDUE_EVENT");
    else
    if (entry->flags & S_FLAG_DELIVERED)
        snprintf (what, sizeof what, "it was delivered (DELIVERED_TO before)");
    else
    if (entry->flags & S_FLAG_READ)
        snprintf (what, sizeof what, "its READ_EVENT");
    if (*what) {
        s_problem (self, seq, "VOIDED for seq %" PRIu64 " after %s", ref, what);
        return;
    }
    //  A body on disk at one start stays there: only the life that just
    //  ended can have lost one
    if (self->last_start && self->last_start - 1 > ref) {
        s_problem (self, seq, "VOIDED for seq %" PRIu64 ", accepted before the "
                   "BROKER_START at record %" PRIu64 ": only a message of the broker "
                   "life that just ended can lose its body", ref, self->last_start - 1);
        return;
    }
    //  A clean stop synced every body: none can be lost after it
    if (self->last_stop > self->last_start) {
        s_problem (self, seq, "VOIDED for seq %" PRIu64 " after the clean BROKER_STOP at "
                   "record %" PRIu64 ": its body was lost from a synced body store",
                   ref, self->last_stop - 1);
        return;
    }
    char why [128];
    if (s_voided_unlike (self, record, entry->pos, why)) {
        s_problem (self, seq, "VOIDED for seq %" PRIu64 ": %s", ref, why);
        return;
    }
    entry->flags |= S_FLAG_VOIDED;
    entry->done = seq;
    self->voided++;
    if (!self->voiding)
        self->voiding = seq + 1;
}

//  The rules a correct broker keeps (see docs/AUDITING.md, "What verify
//  checks"). Reports the first broken one through s_problem. pos is the
//  record's position in the log.
static void
s_verify_record (s_verify_t *self, const Kp__Wire__Record *record, uint64_t seq,
                 uint64_t pos)
{
    char why [128];
    char times [2][32];
    if (record->time_ms < self->latest_time - self->tolerance) {
        s_problem (self, seq, "time goes back %" PRId64 " ms, to %s after %s at record %"
                   PRIu64 " (more than the tolerance of %" PRId64 " s)",
                   self->latest_time - record->time_ms,
                   s_iso (record->time_ms, times [0]),
                   s_iso (self->latest_time, times [1]), self->latest_time_seq,
                   self->tolerance / 1000);
        return;
    }
    if (record->time_ms > self->latest_time) {
        self->latest_time = record->time_ms;
        self->latest_time_seq = seq;
    }
    int event = (int) record->event;
    //  VOIDED records are written at start, after the last record of the
    //  life before; the life goes on only after the BROKER_START
    if (self->voiding && kp_event_name ((Kp__Wire__EventKind) event)
    &&  event != KP__WIRE__EVENT_KIND__EVENT_UNSPECIFIED && !s_written_at_start (event)) {
        s_problem (self, seq, "%s after the VOIDED at record %" PRIu64 ", before the "
                   "next BROKER_START (VOIDED is written only at start)",
                   s_event_text (event), self->voiding - 1);
        return;
    }
    switch (event) {
        case KP__WIRE__EVENT_KIND__ACCEPTED: {
            self->messages++;
            if (record->message_id.len != KP_ID_SIZE) {
                s_problem (self, seq, "ACCEPTED without a 16-byte message id");
                return;
            }
            char id_text [2 * KP_ID_SIZE + 1];
            s_hex (record->message_id.data, KP_ID_SIZE, id_text);
            if (record->outcome != KP__WIRE__ERROR_CODE__OK) {
                s_problem (self, seq, "ACCEPTED with outcome %s",
                           kp_error_name (record->outcome)?
                           kp_error_name (record->outcome): "unknown");
                return;
            }
            const Kp__Wire__Envelope *envelope = record->envelope;
            if (!envelope || envelope->id.len != KP_ID_SIZE
            ||  memcmp (envelope->id.data, record->message_id.data, KP_ID_SIZE) != 0
            ||  strcmp (envelope->sender, record->sender) != 0
            ||  strcmp (envelope->recipient_partner, record->recipient) != 0) {
                s_problem (self, seq, "ACCEPTED message %s: its envelope does not match "
                           "the record (id, sender or recipient)", id_text);
                return;
            }
            if (!*record->sender || !*record->recipient) {
                s_problem (self, seq, "ACCEPTED message %s without sender or recipient",
                           id_text);
                return;
            }
            uint32_t sender = s_partner (self, record->sender);
            uint32_t recipient = s_partner (self, record->recipient);
            if (s_partner_unfit (self, sender, why)) {
                s_problem (self, seq, "ACCEPTED message %s from %s, %s", id_text,
                           record->sender, why);
                return;
            }
            if (s_partner_unfit (self, recipient, why)) {
                s_problem (self, seq, "ACCEPTED message %s to %s, %s", id_text,
                           record->recipient, why);
                return;
            }
            //  A voided message's sender got no receipt and sends it again
            uint64_t first = s_idmap_find (&self->ids, record->message_id.data);
            s_entry_t *earlier = first? s_seqmap_find (&self->seqs, first - 1): NULL;
            if (first && !(earlier && (earlier->flags & S_FLAG_VOIDED))) {
                s_problem (self, seq, "a second ACCEPTED for message %s (the first is "
                           "record %" PRIu64 ")", id_text, first - 1);
                return;
            }
            if (first)
                s_idmap_update (&self->ids, record->message_id.data, seq);
            else
                s_idmap_insert (&self->ids, record->message_id.data, seq);
            s_entry_t *entry = s_seqmap_insert (&self->seqs, seq);
            entry->kind = S_ENTRY_ACCEPTED;
            entry->pos = pos;
            memcpy (entry->id, record->message_id.data, KP_ID_SIZE);
            entry->sender = sender;
            entry->recipient = recipient;
            entry->expires_at_ms = envelope->expires_at_ms;
            entry->due_at_ms = envelope->due_at_ms;
            return;
        }
        case KP__WIRE__EVENT_KIND__REJECTED:
            if (record->outcome == KP__WIRE__ERROR_CODE__OK)
                s_problem (self, seq, "REJECTED with outcome OK");
            return;

        case KP__WIRE__EVENT_KIND__DELIVERED_TO:
        case KP__WIRE__EVENT_KIND__ACKNOWLEDGED:
        case KP__WIRE__EVENT_KIND__NACKED:
        case KP__WIRE__EVENT_KIND__EXPIRED_EVENT:
        case KP__WIRE__EVENT_KIND__OVERDUE_EVENT:
        case KP__WIRE__EVENT_KIND__BODY_DELETED: {
            const char *name = s_event_text (event);
            uint64_t ref = record->ref_seq;
            s_entry_t *entry = ref < seq? s_seqmap_find (&self->seqs, ref): NULL;
            if (!entry || entry->kind != S_ENTRY_ACCEPTED) {
                s_problem (self, seq, "%s for seq %" PRIu64 " but %" PRIu64 " is not "
                           "ACCEPTED", name, ref, ref);
                return;
            }
            if (record->message_id.len != KP_ID_SIZE
            ||  memcmp (record->message_id.data, entry->id, KP_ID_SIZE) != 0) {
                char id_text [2 * KP_ID_SIZE + 1];
                s_problem (self, seq, "%s for seq %" PRIu64 " names another message than "
                           "%" PRIu64 " accepted (%s)", name, ref, ref,
                           s_hex (entry->id, KP_ID_SIZE, id_text));
                return;
            }
            if (entry->flags & S_FLAG_VOIDED) {
                s_problem (self, seq, "%s for seq %" PRIu64 ", which was VOIDED at "
                           "record %" PRIu64, name, ref, entry->done);
                return;
            }
            //  A body goes only once the message is done with, and once
            if (event == KP__WIRE__EVENT_KIND__BODY_DELETED) {
                if (entry->flags & S_FLAG_BODY_DELETED)
                    s_problem (self, seq, "a second BODY_DELETED for seq %" PRIu64, ref);
                else
                if (!(entry->flags & S_FLAG_SETTLED))
                    s_problem (self, seq, "BODY_DELETED for seq %" PRIu64 " before it "
                               "was settled (acknowledged, nacked or expired)", ref);
                entry->flags |= S_FLAG_BODY_DELETED;
                return;
            }
            if (entry->flags & S_FLAG_SETTLED) {
                if (entry->event == KP__WIRE__EVENT_KIND__EXPIRED_EVENT)
                    s_problem (self, seq, "%s for seq %" PRIu64 " after its "
                               "EXPIRED_EVENT at record %" PRIu64, name, ref,
                               entry->done);
                else
                    s_problem (self, seq, "%s for seq %" PRIu64 " after it was settled "
                               "(%s at record %" PRIu64 ")", name, ref,
                               s_event_text (entry->event), entry->done);
                return;
            }
            if (event == KP__WIRE__EVENT_KIND__DELIVERED_TO) {
                const char *addressed = self->partners [entry->recipient].id;
                if (strcmp (record->recipient, addressed) != 0) {
                    s_problem (self, seq, "DELIVERED_TO for seq %" PRIu64 " went to %s, "
                               "but %" PRIu64 " is addressed to %s", ref,
                               *record->recipient? record->recipient: "nobody", ref,
                               addressed);
                    return;
                }
                if (s_partner_unfit (self, entry->recipient, why)) {
                    s_problem (self, seq, "DELIVERED_TO for seq %" PRIu64 " to %s, %s",
                               ref, addressed, why);
                    return;
                }
                entry->flags |= S_FLAG_DELIVERED;
                return;
            }
            //  A due time that passed unsettled: one status, the message
            //  stays queued
            if (event == KP__WIRE__EVENT_KIND__OVERDUE_EVENT) {
                if (entry->flags & S_FLAG_OVERDUE) {
                    s_problem (self, seq, "a second OVERDUE_EVENT for seq %" PRIu64, ref);
                    return;
                }
                if (entry->due_at_ms == 0
                ||  record->time_ms + self->tolerance < entry->due_at_ms) {
                    s_problem (self, seq, "OVERDUE_EVENT for seq %" PRIu64 " at %s, %s%s",
                               ref, s_iso (record->time_ms, times [0]),
                               entry->due_at_ms? "before it is due at ": "which has no "
                               "due time", entry->due_at_ms?
                               s_iso (entry->due_at_ms, times [1]): "");
                    return;
                }
                entry->flags |= S_FLAG_OVERDUE;
                uint32_t sender = entry->sender;
                s_entry_t *status = s_seqmap_insert (&self->seqs, seq);
                status->kind = S_ENTRY_STATUS;
                status->event = (uint8_t) event;
                status->sender = sender;
                return;
            }
            if (event != KP__WIRE__EVENT_KIND__EXPIRED_EVENT
            &&  !(entry->flags & S_FLAG_DELIVERED)) {
                s_problem (self, seq, "%s for seq %" PRIu64 ", which was never delivered "
                           "(no DELIVERED_TO before)", name, ref);
                return;
            }
            if (event == KP__WIRE__EVENT_KIND__EXPIRED_EVENT && entry->expires_at_ms
            &&  record->time_ms + self->tolerance < entry->expires_at_ms) {
                s_problem (self, seq, "EXPIRED_EVENT for seq %" PRIu64 " at %s, before "
                           "it expires (%s)", ref, s_iso (record->time_ms, times [0]),
                           s_iso (entry->expires_at_ms, times [1]));
                return;
            }
            entry->flags |= S_FLAG_SETTLED;
            entry->event = (uint8_t) event;
            entry->done = seq;
            uint32_t sender = entry->sender;
            s_entry_t *status = s_seqmap_insert (&self->seqs, seq);
            status->kind = S_ENTRY_STATUS;
            status->event = (uint8_t) event;
            status->sender = sender;
            return;
        }
        case KP__WIRE__EVENT_KIND__STATUS_ACKNOWLEDGED: {
            uint64_t ref = record->ref_seq;
            s_entry_t *entry = ref < seq? s_seqmap_find (&self->seqs, ref): NULL;
            if (!entry || entry->kind != S_ENTRY_STATUS) {
                s_problem (self, seq, "STATUS_ACKNOWLEDGED for seq %" PRIu64 ", but %"
                           PRIu64 " is not an ACKNOWLEDGED, NACKED, EXPIRED_EVENT or "
                           "OVERDUE_EVENT record", ref, ref);
                return;
            }
            if (entry->flags & S_FLAG_STATUS_ACKED) {
                s_problem (self, seq, "STATUS_ACKNOWLEDGED for seq %" PRIu64 " again (it "
                           "was acknowledged at record %" PRIu64 ")", ref, entry->done);
                return;
            }
            if (record->status != KP__WIRE__STATUS_KIND__STATUS_UNSPECIFIED
            &&  record->status != s_status_for (entry->event)) {
                const char *status = kp_status_name (record->status);
                s_problem (self, seq, "STATUS_ACKNOWLEDGED of status %s for seq %" PRIu64
                           ", which is %s", status? status: "unknown", ref,
                           s_event_text (entry->event));
                return;
            }
            entry->flags |= S_FLAG_STATUS_ACKED;
            entry->done = seq;
            return;
        }
        case KP__WIRE__EVENT_KIND__PARTNER_REGISTERED: {
            if (!*record->sender) {
                s_problem (self, seq, "PARTNER_REGISTERED without a partner id");
                return;
            }
            uint32_t index = s_partner (self, record->sender);
            s_partner_t *partner = &self->partners [index];
            partner->registered = seq + 1;
            partner->revoked = 0;
            return;
        }
        case KP__WIRE__EVENT_KIND__PARTNER_REVOKED: {
            uint32_t index = s_partner (self, record->sender);
            s_partner_t *partner = &self->partners [index];
            if (partner->registered == 0 || partner->revoked) {
                s_problem (self, seq, "PARTNER_REVOKED for '%s', who is not registered",
                           record->sender);
                return;
            }
            partner->revoked = seq + 1;
            return;
        }
        case KP__WIRE__EVENT_KIND__AUDITOR_ACCESS: {
            //  Every question is logged, refused or not; only an auditor's
            //  may have been answered
            uint32_t asker = s_partner (self, record->sender);
            if (s_partner_unfit (self, asker, why)) {
                s_problem (self, seq, "AUDITOR_ACCESS by '%s', %s", record->sender, why);
                return;
            }
            if (record->outcome == KP__WIRE__ERROR_CODE__OK
            &&  record->sender_role != KP__WIRE__ROLE__AUDITOR) {
                const char *role = kp_role_name (record->sender_role);
                s_problem (self, seq, "AUDITOR_ACCESS answered for %s, whose role is %s, "
                           "not auditor", record->sender, role? role: "unknown");
                return;
            }
            return;
        }
        case KP__WIRE__EVENT_KIND__VOIDED:
            s_verify_voided (self, record, seq);
            return;

        case KP__WIRE__EVENT_KIND__READ_EVENT: {
            //  Reserved and not written, so not checked; but one about a
            //  message it names counts as something that happened to it
            uint64_t ref = record->ref_seq;
            s_entry_t *entry = ref < seq? s_seqmap_find (&self->seqs, ref): NULL;
            if (!entry || entry->kind != S_ENTRY_ACCEPTED
            ||  record->message_id.len != KP_ID_SIZE
            ||  memcmp (record->message_id.data, entry->id, KP_ID_SIZE) != 0)
                return;
            if (entry->flags & S_FLAG_VOIDED) {
                s_problem (self, seq, "READ_EVENT for seq %" PRIu64 ", which was VOIDED "
                           "at record %" PRIu64, ref, entry->done);
                return;
            }
            entry->flags |= S_FLAG_READ;
            return;
        }
        case KP__WIRE__EVENT_KIND__BROKER_START:
            self->last_start = seq + 1;
            self->voiding = 0;
            return;

        case KP__WIRE__EVENT_KIND__BROKER_STOP:
            self->last_stop = seq + 1;
            return;
        case KP__WIRE__EVENT_KIND__AUTH_FAILURE:
            return;
        default:
            s_problem (self, seq, "unknown event %d", event);
            return;
    }
}

//  Compare the tree with every checkpoint of the size reached. Returns
//  false, with the failure set, on a mismatch, or when a checkpoint was
//  reached after a problem with a record (the broker signed that record).
static bool
s_verify_checkpoints (s_verify_t *self)
{
    s_note_t *mismatch = NULL;
    bool compared = false;
    while (self->next_note < self->note_count
    &&     self->notes [self->next_note].checkpoint.size == self->edge.size) {
        s_note_t *note = &self->notes [self->next_note++];
        uint8_t root [KP_MERKLE_HASH];
        kp_merkle_edge_root (&self->edge, root);
        compared = true;
        if (!mismatch && sodium_memcmp (root, note->checkpoint.root, KP_MERKLE_HASH))
            mismatch = note;
    }
    if (mismatch && self->have_problem)
        snprintf (self->failure, sizeof self->failure, "%s; and checkpoint size %" PRIu64
                  " (%s) does not match the records before it: the log was changed "
                  "after it was signed", self->problem, mismatch->checkpoint.size,
                  mismatch->source);
    else
    if (mismatch)
        snprintf (self->failure, sizeof self->failure, "checkpoint size %" PRIu64 " (%s) "
                  "does not match the log's records 0..%" PRIu64 ": a record before %"
                  PRIu64 " was changed, dropped, inserted or reordered %s",
                  mismatch->checkpoint.size, mismatch->source,
                  mismatch->checkpoint.size - 1, mismatch->checkpoint.size,
                  mismatch->trusted? "since you kept this checkpoint, and the history "
                  "was re-signed": "after it was signed");
    else
    if (compared && self->have_problem)
        snprintf (self->failure, sizeof self->failure, "%s", self->problem);
    else
        return true;
    self->failed = true;
    return false;
}

//  kp_log_replay visitor: hash, decode and check one record
static int
s_verify_visit (const uint8_t *data, size_t size, uint64_t seq, uint64_t pos, void *arg)
{
    s_verify_t *self = (s_verify_t *) arg;
    uint8_t leaf [KP_MERKLE_HASH];
    kp_merkle_leaf_hash (data, size, leaf);
    kp_merkle_edge_push (&self->edge, leaf);
    self->records++;
    //  After the first problem we only hash on, to the next checkpoint,
    //  to tell a broker that logged it from a log changed since
    if (!self->have_problem) {
        Kp__Wire__Record *record = kp__wire__record__unpack (&self->allocator, size,
                                                             data);
        if (!record)
            s_problem (self, seq, "does not decode as a Record");
        else
        if (record->seq != seq)
            s_problem (self, seq, "its seq field is %" PRIu64 ": a record was dropped, "
                       "inserted or moved here", record->seq);
        else
            s_verify_record (self, record, seq, pos);
        s_arena_reset (&self->arena);
    }
    if (!s_verify_checkpoints (self))
        return -1;
    if (self->have_problem && self->next_note == self->note_count) {
        snprintf (self->failure, sizeof self->failure, "%s", self->problem);
        self->failed = true;
        return -1;
    }
    if (self->records % S_PROGRESS_EVERY == 0)
        s_progress_update (&self->progress, self->records);
    return 0;
}

//  qsort: notes by tree size
static int
s_note_compare (const void *left, const void *right)
{
    uint64_t a = ((const s_note_t *) left)->checkpoint.size;
    uint64_t b = ((const s_note_t *) right)->checkpoint.size;
    return a < b? -1: a > b;
}

//  verify: returns the exit code
static int
s_verify (s_options_t *options)
{
    int rc = S_EXIT_FAILED;
    char origin [KP_CHECKPOINT_MAX_ORIGIN + 1] = "";
    s_note_t *notes = NULL;
    size_t note_count = 0;
    kp_log_t *log = NULL;
    s_verify_t *self = NULL;
    if (s_key_load (options->key_file, options->key))
        goto cleanup;
    char *log_path = zsys_sprintf ("%s/log", options->dir);
    bool have_log = s_is_dir (log_path);
    free (log_path);
    if (!have_log) {
        s_say (S_EXIT_FAILED, "%s/log is not a log directory (a broker data dir or a "
               "kp-audit fetch copy holds log/ and checkpoints/)", options->dir);
        goto cleanup;
    }
    if (s_notes_load (options->dir, options->key, origin, false, &notes, &note_count,
                      NULL))
        goto cleanup;
    size_t stored_count = note_count;
    notes = (s_note_t *) realloc (notes, (note_count + options->trusted_count + 1)
                                         * sizeof (s_note_t));
    assert (notes);
    for (size_t index = 0; index < options->trusted_count; index++) {
        if (s_note_file (options->trusted [index], options->key, origin,
                         &notes [note_count]))
            goto cleanup;
        note_count++;
    }
    if (note_count == 0) {
        s_say (S_EXIT_FAILED, "%s/checkpoints holds no checkpoint and no --trusted was "
               "given: there is nothing signed to verify the log against", options->dir);
        goto cleanup;
    }
    //  The stored ones are in size order already; the trusted ones join them
    qsort (notes, note_count, sizeof (s_note_t), s_note_compare);

    log = s_log_open (options->dir, "log", false, false, NULL);
    if (!log)
        goto cleanup;
    uint64_t log_size = kp_log_size (log);

    self = (s_verify_t *) zmalloc (sizeof (s_verify_t));
    assert (self);
    self->dir = options->dir;
    self->log = log;
    self->notes = notes;
    self->note_count = note_count;
    kp_merkle_edge_init (&self->edge);
    s_arena_init (&self->arena, &self->allocator);
    //  Sized for a log of mostly messages (an ACCEPTED and a settling
    //  record each), so that the tables seldom grow while we run
    size_t slots = 1024;
    while (slots < log_size && slots < ((size_t) 1 << 20))
        slots *= 2;
    s_seqmap_init (&self->seqs, slots);
    s_idmap_init (&self->ids, slots / 2);
    self->partner_index = zhashx_new ();
    assert (self->partner_index);
    self->tolerance = options->tolerance;
    self->latest_time = INT64_MIN / 2;
    //  A checkpoint of the empty tree
    if (!s_verify_checkpoints (self)) {
        s_say (S_EXIT_FAILED, "%s", self->failure);
        goto cleanup;
    }
    s_progress_start (&self->progress, "verify", log_size);
    int64_t started = kp_mono_ms ();
    s_capture_t capture;
    s_capture_begin (&capture);
    int replayed = kp_log_replay (log, s_verify_visit, self);
    char *why = s_capture_end (&capture);
    int64_t elapsed = kp_mono_ms () - started;
    s_progress_end (&self->progress);
    if (self->failed) {
        s_say (S_EXIT_FAILED, "%s", self->failure);
        free (why);
        goto cleanup;
    }
    if (replayed) {
        s_say (S_EXIT_FAILED, "framing: %s", *why? why: "cannot read the log");
        free (why);
        goto cleanup;
    }
    free (why);
    if (self->next_note < self->note_count) {
        s_note_t *note = &notes [self->next_note];
        if (self->have_problem)
            s_say (S_EXIT_FAILED, "%s; and checkpoint size %" PRIu64 " (%s) covers more "
                   "records than the log holds (%" PRIu64 "): the log was changed after "
                   "it was signed", self->problem, note->checkpoint.size, note->source,
                   log_size);
        else
            s_say (S_EXIT_FAILED, "checkpoint size %" PRIu64 " (%s) covers more records "
                   "than the log holds (%" PRIu64 "): records were removed from its end",
                   note->checkpoint.size, note->source, log_size);
        goto cleanup;
    }
    if (self->have_problem) {
        s_say (S_EXIT_FAILED, "%s", self->problem);
        goto cleanup;
    }
    uint64_t latest = notes [note_count - 1].checkpoint.size;
    //  A voided message is not a message; its resend is
    printf ("ok: %" PRIu64 " records (%" PRIu64 " messages", log_size,
            self->messages - self->voided);
    if (self->voided)
        printf (", %" PRIu64 " voided", self->voided);
    printf ("), %zu checkpoints of %s (%zu stored, %zu trusted), latest size %" PRIu64
            "; %" PRIu64 " records after it not signed yet", note_count, origin,
            stored_count, note_count - stored_count, latest, log_size - latest);
    //  A rate over a few milliseconds says nothing
    if (elapsed >= 50)
        printf ("; %.2f s, %.0f records/s", elapsed / 1000.0,
                (double) log_size * 1000.0 / (double) elapsed);
    printf ("\n");
    rc = fflush (stdout) == 0? S_EXIT_OK: S_EXIT_FAILED;

cleanup:
    if (self) {
        s_arena_destroy (&self->arena);
        free (self->seqs.slots);
        free (self->ids.slots);
        zhashx_destroy (&self->partner_index);
        for (size_t index = 0; index < self->partner_count; index++)
            free (self->partners [index].id);
        free (self->partners);
        free (self);
    }
    kp_log_destroy (&log);
    s_notes_destroy (notes, note_count);
    return rc;
}

//  --------------------------------------------------------------------------
//  A pass over a log's leaves: the edge, optionally stopping at limit

typedef struct {
    kp_merkle_edge_t edge;          //  leaves so far
    uint64_t limit;                 //  stop after this many leaves
    uint64_t check_size;            //  compare the root at this size, 0 = none
    const uint8_t *check_root;
    bool mismatch;                  //  the root at check_size differed
    bool stopped;                   //  stopped at limit
    s_progress_t progress;
} s_hash_pass_t;

//  kp_log_replay visitor: push one leaf; stop at limit or a mismatch
static int
s_hash_visit (const uint8_t *data, size_t size, uint64_t seq, uint64_t pos, void *arg)
{
    (void) seq;
    (void) pos;
    s_hash_pass_t *self = (s_hash_pass_t *) arg;
    if (self->edge.size >= self->limit) {
        self->stopped = true;
        return -1;
    }
    uint8_t leaf [KP_MERKLE_HASH];
    kp_merkle_leaf_hash (data, size, leaf);
    kp_merkle_edge_push (&self->edge, leaf);
    if (self->check_size && self->edge.size == self->check_size) {
        uint8_t root [KP_MERKLE_HASH];
        kp_merkle_edge_root (&self->edge, root);
        if (sodium_memcmp (root, self->check_root, KP_MERKLE_HASH) != 0) {
            self->mismatch = true;
            return -1;
        }
    }
    if (self->edge.size % S_PROGRESS_EVERY == 0)
        s_progress_update (&self->progress, self->edge.size);
    return 0;
}

//  Hash log's first limit leaves into pass. 0 or -1 (said)
static int
s_hash_log (kp_log_t *log, const char *path, s_hash_pass_t *pass, const char *what)
{
    kp_merkle_edge_init (&pass->edge);
    pass->mismatch = false;
    pass->stopped = false;
    uint64_t total = kp_log_size (log) < pass->limit? kp_log_size (log): pass->limit;
    s_progress_start (&pass->progress, what, total);
    s_capture_t capture;
    s_capture_begin (&capture);
    int rc = kp_log_replay (log, s_hash_visit, pass);
    char *why = s_capture_end (&capture);
    s_progress_end (&pass->progress);
    if (pass->mismatch)
        rc = s_say (-1, "%s does not match its own checkpoint at size %" PRIu64
                    ": it was changed; run kp-audit verify", path, pass->check_size);
    else
    if (rc && !pass->stopped)
        rc = s_say (-1, "%s: %s", path, *why? why: "cannot read");
    else
        rc = 0;
    free (why);
    return rc;
}

//  --------------------------------------------------------------------------
//  fetch: copy the broker's log up to its latest checkpoint into LOCAL

//  nftw visitor: remove one entry of a tree
static int
s_remove_entry (const char *path, const struct stat *info, int flag, struct FTW *ftw)
{
    (void) info;
    (void) flag;
    (void) ftw;
    return remove (path);
}

//  Append every record of a log to another, as stored
static int
s_copy_visit (const uint8_t *data, size_t size, uint64_t seq, uint64_t pos, void *arg)
{
    (void) seq;
    (void) pos;
    uint64_t new_seq, new_pos;
    return kp_log_append ((kp_log_t *) arg, data, size, &new_seq, &new_pos);
}

//  Lock LOCAL against a second kp-audit; the fd, or -1 (said)
static int
s_lock (const char *dir)
{
    char *path = zsys_sprintf ("%s/.kp-audit.lock", dir);
    int fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        s_say (S_EXIT_FAILED, "cannot create %s: %s", path, strerror (errno));
    else
    if (flock (fd, LOCK_EX | LOCK_NB)) {
        s_say (S_EXIT_FAILED, "%s is in use by another kp-audit", dir);
        close (fd);
        fd = -1;
    }
    free (path);
    return fd;
}

//  Write a note to path whole or not at all: temp file, fsync, rename.
//  0 or -1 (said)
static int
s_note_save (const char *path, const char *note)
{
    char *temp = zsys_sprintf ("%s.tmp", path);
    int fd = open (temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    size_t size = strlen (note);
    bool written = fd >= 0 && write (fd, note, size) == (ssize_t) size && fsync (fd) == 0;
    int err = errno;
    if (fd >= 0 && close (fd) && written) {
        written = false;
        err = errno;
    }
    if (written && rename (temp, path) == 0) {
        free (temp);
        return 0;
    }
    if (written)
        err = errno;
    unlink (temp);
    free (temp);
    return s_say (-1, "cannot write the checkpoint to '%s': %s", path, strerror (err));
}

//  fetch: returns the exit code
static int
s_fetch (s_options_t *options)
{
    int rc = S_EXIT_FAILED;
    char origin [KP_CHECKPOINT_MAX_ORIGIN + 1] = "";
    s_note_t *notes = NULL;
    size_t note_count = 0;
    s_note_t latest = { { "", 0, { 0 } }, NULL, NULL, false };
    kp_log_t *checkpoints = NULL;
    kp_log_t *log = NULL;
    kp_log_t *staging = NULL;
    char *staging_path = NULL;
    s_wire_t *wire = NULL;
    int lock_fd = -1;
    if (s_key_load (options->key_file, options->key))
        goto cleanup;
    //  Never append to a broker's own log: its data dir has these too
    char *bodies = zsys_sprintf ("%s/bodies", options->dir);
    char *tree = zsys_sprintf ("%s/tree", options->dir);
    bool broker_dir = s_is_dir (bodies) || s_is_dir (tree);
    free (tree);
    free (bodies);
    if (broker_dir) {
        s_say (S_EXIT_FAILED, "%s is a broker's data dir (it holds bodies/ or tree/): "
               "fetch into a directory of your own", options->dir);
        goto cleanup;
    }
    if (zsys_dir_create ("%s", options->dir)) {
        s_say (S_EXIT_FAILED, "cannot create %s: %s", options->dir, strerror (errno));
        goto cleanup;
    }
    lock_fd = s_lock (options->dir);
    if (lock_fd < 0)
        goto cleanup;
    staging_path = zsys_sprintf ("%s/fetch.tmp", options->dir);
    nftw (staging_path, s_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    log = s_log_open (options->dir, "log", true, false, NULL);
    if (!log || s_notes_load (options->dir, options->key, origin, true, &notes,
                              &note_count, &checkpoints))
        goto cleanup;
    if (!checkpoints) {
        checkpoints = s_log_open (options->dir, "checkpoints", true, false, NULL);
        if (!checkpoints)
            goto cleanup;
    }
    const kp_checkpoint_t *held = note_count? &notes [note_count - 1].checkpoint: NULL;
    uint64_t local_size = kp_log_size (log);
    if (held && held->size > local_size) {
        s_say (S_EXIT_FAILED, "%s/checkpoints covers %" PRIu64 " records but %s/log "
               "holds only %" PRIu64 ": the copy is damaged", options->dir, held->size,
               options->dir, local_size);
        goto cleanup;
    }
    wire = s_wire_new (options);
    if (!wire)
        goto cleanup;
    if (*origin && strcmp (origin, wire->broker) != 0) {
        s_say (S_EXIT_FAILED, "%s holds the log of '%s', but this broker is '%s'",
               options->dir, origin, wire->broker);
        goto cleanup;
    }
    if (s_wire_checkpoint (wire, options->key, origin, &latest))
        goto cleanup;
    const kp_checkpoint_t *fresh = &latest.checkpoint;
    if (held) {
        if (fresh->size < held->size) {
            s_say (S_EXIT_FAILED, "the broker's latest checkpoint (size %" PRIu64 ") is "
                   "smaller than the one %s holds (%" PRIu64 "): the broker lost or "
                   "removed records; %s is unchanged", fresh->size, options->dir,
                   held->size, options->dir);
            goto cleanup;
        }
        if (fresh->size == held->size
        &&  sodium_memcmp (fresh->root, held->root, KP_MERKLE_HASH) != 0) {
            s_say (S_EXIT_FAILED, "the broker signed two different roots for size %"
                   PRIu64 ": history was rewritten; %s is unchanged", fresh->size,
                   options->dir);
            goto cleanup;
        }
        if (fresh->size > held->size && held->size > 0
        &&  s_wire_consistency (wire, held, fresh))
            goto cleanup;               //  said; LOCAL unchanged
    }
    //  Our own leaves, checked against our last checkpoint
    s_hash_pass_t pass;
    memset (&pass, 0, sizeof pass);
    pass.limit = fresh->size;
    pass.check_size = held? held->size: 0;
    pass.check_root = held? held->root: NULL;
    char *log_path = zsys_sprintf ("%s/log", options->dir);
    int hashed = s_hash_log (log, log_path, &pass, "hash");
    free (log_path);
    if (hashed)
        goto cleanup;
    uint64_t have = pass.edge.size;
    uint64_t fetched = 0;
    if (have < fresh->size) {
        //  New entries go to a staging log first: LOCAL changes only once
        //  they hash to the signed root
        s_capture_t capture;
        s_capture_begin (&capture);
        kp_log_status_t status;
        staging = kp_log_open (staging_path, S_SEGMENT_SIZE, true, &status);
        char *why = s_capture_end (&capture);
        if (!staging) {
            s_say (S_EXIT_FAILED, "cannot make %s: %s", staging_path, why);
            free (why);
            goto cleanup;
        }
        free (why);
        s_progress_t progress;
        s_progress_start (&progress, "fetch", fresh->size - have);
        while (have + fetched < fresh->size) {
            uint64_t start = have + fetched;
            uint64_t left = fresh->size - start;
            Kp__Wire__EntriesQuery query = KP__WIRE__ENTRIES_QUERY__INIT;
            query.start = start;
            query.count = left < S_ENTRIES_BATCH? (uint32_t) left: S_ENTRIES_BATCH;
            Kp__Wire__AuditRequest request = KP__WIRE__AUDIT_REQUEST__INIT;
            request.query_case = KP__WIRE__AUDIT_REQUEST__QUERY_ENTRIES;
            request.entries = &query;
            Kp__Wire__Command *reply = s_wire_ask (wire, &request);
            if (!reply) {
                s_progress_end (&progress);
                goto cleanup;
            }
            Kp__Wire__AuditReply *answer = reply->audit_reply;
            const char *wrong = NULL;
            if (answer->start != start)
                wrong = "entries from another start than asked";
            else
            if (answer->n_entries == 0 || answer->n_entries > query.count)
                wrong = answer->n_entries? "more entries than asked": "no entries";
            for (size_t index = 0; !wrong && index < answer->n_entries; index++) {
                ProtobufCBinaryData *entry = &answer->entries [index];
                if (entry->len == 0 || entry->len > KP_LOG_MAX_RECORD) {
                    wrong = "an empty or oversized entry";
                    break;
                }
                uint8_t leaf [KP_MERKLE_HASH];
                kp_merkle_leaf_hash (entry->data, entry->len, leaf);
                kp_merkle_edge_push (&pass.edge, leaf);
                uint64_t seq, pos;
                if (kp_log_append (staging, entry->data, entry->len, &seq, &pos))
                    wrong = "";
            }
            if (wrong) {
                s_progress_end (&progress);
                if (*wrong)
                    s_say (S_EXIT_FAILED, "the broker sent %s (at %" PRIu64 "); %s is "
                           "unchanged", wrong, start, options->dir);
                else
                    s_say (S_EXIT_FAILED, "cannot write %s; %s is unchanged",
                           staging_path, options->dir);
                kp__wire__command__free_unpacked (reply, NULL);
                goto cleanup;
            }
            fetched += answer->n_entries;
            kp__wire__command__free_unpacked (reply, NULL);
            s_progress_update (&progress, fetched);
        }
        s_progress_end (&progress);
    }
    uint8_t root [KP_MERKLE_HASH];
    kp_merkle_edge_root (&pass.edge, root);
    if (pass.edge.size != fresh->size
    ||  sodium_memcmp (root, fresh->root, KP_MERKLE_HASH) != 0) {
        s_say (S_EXIT_FAILED, "the %" PRIu64 " records do not hash to the root the "
               "broker signed for size %" PRIu64 ": %s; %s is unchanged", pass.edge.size,
               fresh->size, fetched? "the broker sent records other than it signed":
               "the records held here differ from what the broker signed",
               options->dir);
        goto cleanup;
    }
    //  Verified: the records first (synced), then the checkpoint
    if (staging) {
        s_capture_t capture;
        s_capture_begin (&capture);
        bool copied = kp_log_replay (staging, s_copy_visit, log) == 0
                   && kp_log_sync (log) == 0;
        char *why = s_capture_end (&capture);
        if (!copied) {
            s_say (S_EXIT_FAILED, "cannot write %s/log: %s", options->dir, why);
            free (why);
            goto cleanup;
        }
        free (why);
    }
    if (!held || fresh->size > held->size) {
        uint64_t seq, pos;
        s_capture_t capture;
        s_capture_begin (&capture);
        bool stored = kp_log_append (checkpoints, latest.note, strlen (latest.note),
                                     &seq, &pos) == 0
                   && kp_log_sync (checkpoints) == 0;
        char *why = s_capture_end (&capture);
        if (!stored) {
            s_say (S_EXIT_FAILED, "cannot write %s/checkpoints: %s", options->dir, why);
            free (why);
            goto cleanup;
        }
        free (why);
    }
    if (options->save_note && s_note_save (options->save_note, latest.note))
        goto cleanup;
    printf ("ok: fetched %" PRIu64 " records from %s; %s holds %" PRIu64 " records, "
            "verified up to checkpoint size %" PRIu64 "\n", fetched, wire->broker,
            options->dir, kp_log_size (log), fresh->size);
    rc = fflush (stdout) == 0? S_EXIT_OK: S_EXIT_FAILED;

cleanup:
    s_wire_destroy (&wire);
    kp_log_destroy (&staging);
    if (staging_path)
        nftw (staging_path, s_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free (staging_path);
    kp_log_destroy (&checkpoints);
    kp_log_destroy (&log);
    free (latest.note);
    free (latest.source);
    s_notes_destroy (notes, note_count);
    if (lock_fd >= 0)
        close (lock_fd);
    return rc;
}

//  --------------------------------------------------------------------------
//  replay: the records as JSON lines, filtered

typedef struct {
    const s_options_t *options;
    s_arena_t arena;
    ProtobufCAllocator allocator;
    s_idmap_t subject_ids;          //  --subject: ids of messages about it
    uint64_t printed;
    bool failed;                    //  a record did not decode or print
} s_replay_t;

//  Rewrite "x_ms":N to "x":"ISO 8601" outside strings; caller frees
static char *
s_json_times (const char *json)
{
    char *text = NULL;
    size_t size = 0;
    FILE *stream = open_memstream (&text, &size);
    assert (stream);
    const char *cursor = json;
    while (*cursor) {
        if (*cursor != '"') {
            fputc (*cursor++, stream);
            continue;
        }
        //  A string: find its end
        const char *end = cursor + 1;
        while (*end && *end != '"')
            end += *end == '\\' && end [1]? 2: 1;
        if (!*end) {
            fputs (cursor, stream);
            break;
        }
        size_t length = (size_t) (end - cursor - 1);
        char *after = NULL;
        long long value = 0;
        if (end [1] == ':' && length > 3 && strncmp (end - 3, "_ms", 3) == 0
        &&  (end [2] == '-' || (end [2] >= '0' && end [2] <= '9'))) {
            errno = 0;
            value = strtoll (end + 2, &after, 10);
            if (errno)
                after = NULL;
        }
        if (after) {
            char iso [32];
            fprintf (stream, "\"%.*s\":\"%s\"", (int) (length - 3), cursor + 1,
                     s_iso ((int64_t) value, iso));
            cursor = after;
        }
        else {
            fwrite (cursor, 1, (size_t) (end + 1 - cursor), stream);
            cursor = end + 1;
        }
    }
    fclose (stream);
    return text;
}

//  True if a bytes field holds exactly value
static bool
s_bytes_equal (const ProtobufCBinaryData *field, const uint8_t *value, size_t size)
{
    return field->len == size && memcmp (field->data, value, size) == 0;
}

//  kp_log_replay visitor: print one record if every filter matches
static int
s_replay_visit (const uint8_t *data, size_t size, uint64_t seq, uint64_t pos, void *arg)
{
    (void) pos;
    s_replay_t *self = (s_replay_t *) arg;
    const s_options_t *options = self->options;
    Kp__Wire__Record *record = kp__wire__record__unpack (&self->allocator, size, data);
    if (!record) {
        s_say (S_EXIT_FAILED, "record %" PRIu64 " does not decode as a Record (run "
               "kp-audit verify)", seq);
        self->failed = true;
        return -1;
    }
    bool match = true;
    if (options->have_subject) {
        bool about = s_bytes_equal (&record->subject, options->subject, KP_HASH_SIZE);
        bool has_id = record->message_id.len == KP_ID_SIZE;
        //  Records after the ACCEPTED one (DELIVERED_TO) may not repeat the
        //  subject: follow the message by its id
        bool followed = has_id
                     && s_idmap_find (&self->subject_ids, record->message_id.data);
        if (about && has_id && !followed)
            s_idmap_insert (&self->subject_ids, record->message_id.data, seq);
        else
        if (!about && followed)
            about = true;
        match = about;
    }
    if (match && options->have_from && record->time_ms < options->from)
        match = false;
    if (match && options->have_to && record->time_ms >= options->to)
        match = false;
    if (match && options->partner && strcmp (record->sender, options->partner) != 0
    &&  strcmp (record->recipient, options->partner) != 0)
        match = false;
    if (match && options->have_id
    &&  !s_bytes_equal (&record->message_id, options->id, KP_ID_SIZE))
        match = false;
    if (match && options->event && (int) record->event != options->event)
        match = false;
    if (match) {
        char *json = kp_json_from_message (&record->base);
        char *timed = json? s_json_times (json): NULL;
        free (json);
        if (!timed) {
            s_say (S_EXIT_FAILED, "record %" PRIu64 " cannot be rendered as JSON", seq);
            self->failed = true;
            s_arena_reset (&self->arena);
            return -1;
        }
        //  seq 0 is proto3's default, which the mapping leaves out
        if (seq == 0 && strncmp (timed, "{\"seq\":", 7) != 0)
            printf ("{\"seq\":0%s%s\n", timed [1] == '}'? "": ",", timed + 1);
        else
            printf ("%s\n", timed);
        free (timed);
        self->printed++;
        if (ferror (stdout)) {
            s_say (S_EXIT_FAILED, "cannot write: %s", strerror (errno));
            self->failed = true;
            s_arena_reset (&self->arena);
            return -1;
        }
    }
    s_arena_reset (&self->arena);
    return 0;
}

//  replay: returns the exit code
static int
s_replay (s_options_t *options)
{
    kp_log_t *log = s_log_open (options->dir, "log", false, false, NULL);
    if (!log)
        return S_EXIT_FAILED;
    s_replay_t self;
    memset (&self, 0, sizeof self);
    self.options = options;
    s_arena_init (&self.arena, &self.allocator);
    s_idmap_init (&self.subject_ids, 64);
    s_capture_t capture;
    s_capture_begin (&capture);
    int replayed = kp_log_replay (log, s_replay_visit, &self);
    char *why = s_capture_end (&capture);
    int rc = S_EXIT_OK;
    if (replayed && !self.failed)
        s_say (S_EXIT_FAILED, "framing: %s", *why? why: "cannot read the log");
    if (replayed || fflush (stdout))
        rc = S_EXIT_FAILED;
    free (why);
    free (self.subject_ids.slots);
    s_arena_destroy (&self.arena);
    kp_log_destroy (&log);
    return rc;
}

//  --------------------------------------------------------------------------
//  prove: the inclusion proof of a message's ACCEPTED record

//  A subtree [low, high) whose root is one hash of a proof
typedef struct {
    uint64_t low, high;
} s_range_t;

//  The ranges of RFC 9162 PATH(m, D[low:high]), in proof order
static void
s_path_ranges (uint64_t m, uint64_t low, uint64_t high, s_range_t *ranges, size_t *count)
{
    uint64_t n = high - low;
    if (n <= 1)
        return;
    uint64_t k = 1;
    while (k * 2 < n)
        k *= 2;
    if (m < k) {
        s_path_ranges (m, low, low + k, ranges, count);
        ranges [(*count)++] = (s_range_t) { low + k, high };
    }
    else {
        s_path_ranges (m - k, low + k, high, ranges, count);
        ranges [(*count)++] = (s_range_t) { low, low + k };
    }
}

typedef struct {
    const uint8_t *id;              //  the message id looked for
    s_arena_t arena;
    ProtobufCAllocator allocator;
    bool found;                     //  its ACCEPTED record was seen
    uint64_t seq;                   //  the index of the last one
    uint64_t voided;                //  seq + 1 of that one's VOIDED, or 0
    uint8_t leaf [KP_MERKLE_HASH];  //  its leaf hash
    uint64_t size;                  //  offline: the tree size of the proof
    s_range_t ranges [KP_MERKLE_MAX_PROOF];     //  offline: proof subtrees
    size_t range_count;
    kp_merkle_edge_t *edges;        //  offline: one per range
    kp_merkle_edge_t edge;          //  offline: the whole tree up to size
    bool offline;
} s_prove_t;

//  Find the record (first pass, to the end: the last ACCEPTED of the id
//  stands, since one that was VOIDED is sent again), or build the proof's
//  subtrees (second)
static int
s_prove_visit (const uint8_t *data, size_t size, uint64_t seq, uint64_t pos, void *arg)
{
    (void) pos;
    s_prove_t *self = (s_prove_t *) arg;
    if (!self->offline) {
        Kp__Wire__Record *record = kp__wire__record__unpack (&self->allocator, size,
                                                             data);
        if (record && s_bytes_equal (&record->message_id, self->id, KP_ID_SIZE)) {
            if (record->event == KP__WIRE__EVENT_KIND__ACCEPTED) {
                self->found = true;
                self->seq = seq;
                self->voided = 0;
                kp_merkle_leaf_hash (data, size, self->leaf);
            }
            else
            if (record->event == KP__WIRE__EVENT_KIND__VOIDED && self->found
            &&  record->ref_seq == self->seq)
                self->voided = seq + 1;
        }
        s_arena_reset (&self->arena);
        return 0;
    }
    if (seq >= self->size)
        return -1;
    uint8_t leaf [KP_MERKLE_HASH];
    kp_merkle_leaf_hash (data, size, leaf);
    kp_merkle_edge_push (&self->edge, leaf);
    for (size_t index = 0; index < self->range_count; index++)
        if (seq >= self->ranges [index].low && seq < self->ranges [index].high) {
            kp_merkle_edge_push (&self->edges [index], leaf);
            break;
        }
    return 0;
}

//  prove: returns the exit code
static int
s_prove (s_options_t *options)
{
    int rc = S_EXIT_FAILED;
    char origin [KP_CHECKPOINT_MAX_ORIGIN + 1] = "";
    s_note_t *notes = NULL;
    size_t note_count = 0;
    s_note_t used = { { "", 0, { 0 } }, NULL, NULL, false };
    kp_log_t *log = NULL;
    s_wire_t *wire = NULL;
    Kp__Wire__Command *reply = NULL;
    s_prove_t self;
    memset (&self, 0, sizeof self);
    s_arena_init (&self.arena, &self.allocator);
    self.id = options->id;
    uint8_t proof [KP_MERKLE_MAX_PROOF * KP_MERKLE_HASH];
    size_t proof_count = 0;
    char id_text [2 * KP_ID_SIZE + 1];
    s_hex (options->id, KP_ID_SIZE, id_text);

    if (s_key_load (options->key_file, options->key))
        goto cleanup;
    if (s_notes_load (options->dir, options->key, origin, false, &notes, &note_count,
                      NULL))
        goto cleanup;
    log = s_log_open (options->dir, "log", false, false, NULL);
    if (!log)
        goto cleanup;
    if (kp_log_replay (log, s_prove_visit, &self)) {
        s_say (S_EXIT_FAILED, "cannot read %s/log", options->dir);
        goto cleanup;
    }
    if (!self.found) {
        s_say (S_EXIT_FAILED, "%s/log holds no ACCEPTED record for message %s (fetch "
               "again if it is recent)", options->dir, id_text);
        goto cleanup;
    }
    //  Its receipt never went out: there is no acceptance to prove
    if (self.voided) {
        s_say (S_EXIT_FAILED, "message %s was VOIDED at record %" PRIu64 ": a crash lost "
               "the body of its ACCEPTED record %" PRIu64 " before any receipt went out, "
               "and %s/log holds no later ACCEPTED of it (fetch again if it was sent "
               "again)", id_text, self.voided - 1, self.seq, options->dir);
        goto cleanup;
    }
    if (options->broker) {
        wire = s_wire_new (options);
        if (!wire)
            goto cleanup;
        Kp__Wire__InclusionQuery query = KP__WIRE__INCLUSION_QUERY__INIT;
        query.index = self.seq;
        query.size = 0;
        Kp__Wire__AuditRequest request = KP__WIRE__AUDIT_REQUEST__INIT;
        request.query_case = KP__WIRE__AUDIT_REQUEST__QUERY_INCLUSION;
        request.inclusion = &query;
        reply = s_wire_ask (wire, &request);
        if (!reply)
            goto cleanup;
        Kp__Wire__AuditReply *answer = reply->audit_reply;
        if (!*answer->checkpoint) {
            s_say (S_EXIT_FAILED, "the broker sent no checkpoint with the proof");
            goto cleanup;
        }
        char why [256];
        if (!*origin)
            snprintf (origin, sizeof origin, "%s", wire->broker);
        if (s_note_verify (answer->checkpoint, strlen (answer->checkpoint), options->key,
                           origin, &used.checkpoint, why)) {
            s_say (S_EXIT_FAILED, "the broker's checkpoint: %s", why);
            goto cleanup;
        }
        used.note = strdup (answer->checkpoint);
        assert (used.note);
        if (answer->index != self.seq || answer->size != used.checkpoint.size) {
            s_say (S_EXIT_FAILED, "the broker proved leaf %" PRIu64 " in a tree of %"
                   PRIu64 ", not leaf %" PRIu64 " in its checkpoint's %" PRIu64,
                   answer->index, answer->size, self.seq, used.checkpoint.size);
            goto cleanup;
        }
        if (answer->leaf_hash.len != KP_MERKLE_HASH
        ||  memcmp (answer->leaf_hash.data, self.leaf, KP_MERKLE_HASH) != 0) {
            s_say (S_EXIT_FAILED, "the broker's leaf hash of record %" PRIu64 " differs "
                   "from the record in %s/log: the copy or the broker's log was changed",
                   self.seq, options->dir);
            goto cleanup;
        }
        if (answer->n_proof > KP_MERKLE_MAX_PROOF) {
            s_say (S_EXIT_FAILED, "the broker's proof has %zu hashes, more than any tree "
                   "needs", answer->n_proof);
            goto cleanup;
        }
        for (size_t index = 0; index < answer->n_proof; index++) {
            if (answer->proof [index].len != KP_MERKLE_HASH) {
                s_say (S_EXIT_FAILED, "the broker's proof holds a hash that is not 32 "
                       "bytes");
                goto cleanup;
            }
            memcpy (proof + index * KP_MERKLE_HASH, answer->proof [index].data,
                    KP_MERKLE_HASH);
        }
        proof_count = answer->n_proof;
    }
    else {
        //  Offline: against the latest checkpoint LOCAL holds, with the
        //  proof's subtrees computed in one pass, in memory
        if (note_count == 0) {
            s_say (S_EXIT_FAILED, "%s/checkpoints holds no checkpoint to prove against "
                   "(fetch first, or give --broker)", options->dir);
            goto cleanup;
        }
        s_note_t *latest = &notes [note_count - 1];
        used.checkpoint = latest->checkpoint;
        used.note = strdup (latest->note);
        assert (used.note);
        if (self.seq >= used.checkpoint.size) {
            s_say (S_EXIT_FAILED, "record %" PRIu64 " is after %s's latest checkpoint "
                   "(size %" PRIu64 "): fetch again", self.seq, options->dir,
                   used.checkpoint.size);
            goto cleanup;
        }
        self.offline = true;
        self.size = used.checkpoint.size;
        s_path_ranges (self.seq, 0, self.size, self.ranges, &self.range_count);
        self.edges = (kp_merkle_edge_t *) calloc (self.range_count + 1,
                                                  sizeof (kp_merkle_edge_t));
        assert (self.edges);
        for (size_t index = 0; index < self.range_count; index++)
            kp_merkle_edge_init (&self.edges [index]);
        kp_merkle_edge_init (&self.edge);
        kp_log_replay (log, s_prove_visit, &self);
        uint8_t root [KP_MERKLE_HASH];
        kp_merkle_edge_root (&self.edge, root);
        if (self.edge.size != self.size
        ||  sodium_memcmp (root, used.checkpoint.root, KP_MERKLE_HASH) != 0) {
            s_say (S_EXIT_FAILED, "%s/log does not match its checkpoint of size %" PRIu64
                   ": run kp-audit verify", options->dir, self.size);
            goto cleanup;
        }
        for (size_t index = 0; index < self.range_count; index++)
            kp_merkle_edge_root (&self.edges [index], proof + index * KP_MERKLE_HASH);
        proof_count = self.range_count;
    }
    if (!kp_merkle_verify_inclusion (self.leaf, self.seq, used.checkpoint.size, proof,
                                     proof_count, used.checkpoint.root)) {
        s_say (S_EXIT_FAILED, "the inclusion proof of record %" PRIu64 " in the tree of "
               "size %" PRIu64 " does not verify against the signed root", self.seq,
               used.checkpoint.size);
        goto cleanup;
    }
    char hex [2 * KP_MERKLE_HASH + 1];
    printf ("{\"id\":\"%s\",\"index\":%" PRIu64 ",\"size\":%" PRIu64
            ",\"leaf_hash\":\"%s\",\"proof\":[", id_text, self.seq, used.checkpoint.size,
            s_hex (self.leaf, KP_MERKLE_HASH, hex));
    for (size_t index = 0; index < proof_count; index++)
        printf ("%s\"%s\"", index? ",": "",
                s_hex (proof + index * KP_MERKLE_HASH, KP_MERKLE_HASH, hex));
    printf ("],\"root\":\"%s\",\"source\":\"%s\",\"checkpoint\":",
            s_hex (used.checkpoint.root, KP_MERKLE_HASH, hex),
            options->broker? "broker": "local");
    s_json_string (stdout, used.note);
    printf ("}\nok\n");
    rc = fflush (stdout) == 0? S_EXIT_OK: S_EXIT_FAILED;

cleanup:
    if (reply)
        kp__wire__command__free_unpacked (reply, NULL);
    s_wire_destroy (&wire);
    free (self.edges);
    s_arena_destroy (&self.arena);
    kp_log_destroy (&log);
    free (used.note);
    s_notes_destroy (notes, note_count);
    return rc;
}

//  --------------------------------------------------------------------------
//  consistency: does NEW_NOTE extend OLD_NOTE? Asks the broker for the proof

//  consistency: returns the exit code
static int
s_consistency (s_options_t *options)
{
    int rc = S_EXIT_FAILED;
    char origin [KP_CHECKPOINT_MAX_ORIGIN + 1] = "";
    s_note_t old_note = { { "", 0, { 0 } }, NULL, NULL, false };
    s_note_t new_note = { { "", 0, { 0 } }, NULL, NULL, false };
    s_wire_t *wire = NULL;
    if (s_key_load (options->key_file, options->key)
    ||  s_note_file (options->old_note, options->key, origin, &old_note)
    ||  s_note_file (options->new_note, options->key, origin, &new_note))
        goto cleanup;
    const kp_checkpoint_t *older = &old_note.checkpoint;
    const kp_checkpoint_t *newer = &new_note.checkpoint;
    if (older->size > newer->size) {
        s_say (S_EXIT_FAILED, "the old checkpoint (size %" PRIu64 ") is larger than the "
               "new one (%" PRIu64 "): give them in order", older->size, newer->size);
        goto cleanup;
    }
    if (older->size == newer->size) {
        if (sodium_memcmp (older->root, newer->root, KP_MERKLE_HASH) != 0) {
            s_say (S_EXIT_FAILED, "two different roots signed for size %" PRIu64 ": "
                   "history was rewritten", older->size);
            goto cleanup;
        }
    }
    else
    if (older->size > 0) {
        wire = s_wire_new (options);
        if (!wire)
            goto cleanup;
        if (strcmp (origin, wire->broker) != 0) {
            s_say (S_EXIT_FAILED, "the checkpoints are of '%s', but this broker is '%s'",
                   origin, wire->broker);
            goto cleanup;
        }
        if (s_wire_consistency (wire, older, newer))
            goto cleanup;
    }
    printf ("ok: size %" PRIu64 " is consistent with size %" PRIu64 " (%s)\n",
            newer->size, older->size, origin);
    rc = fflush (stdout) == 0? S_EXIT_OK: S_EXIT_FAILED;

cleanup:
    s_wire_destroy (&wire);
    free (old_note.note);
    free (old_note.source);
    free (new_note.note);
    free (new_note.source);
    return rc;
}

//  --------------------------------------------------------------------------
//  open: the body of one message, where the region lets auditors read it
//  (audit/open-types): the sender sealed the body's key to our sealing key
//  too. We check it as its recipient would (PROTOCOL.md 7.5), except that
//  the envelope names another recipient.

typedef struct {
    uint64_t accepted;              //  seq of the ACCEPTED record
    uint64_t voided;                //  seq + 1 of its VOIDED, or 0
    s_arena_t arena;
    ProtobufCAllocator allocator;
} s_voided_find_t;

//  kp_log_replay visitor: stop at the VOIDED of the ACCEPTED record; only
//  the records after that one are decoded
static int
s_voided_visit (const uint8_t *data, size_t size, uint64_t seq, uint64_t pos, void *arg)
{
    (void) pos;
    s_voided_find_t *self = (s_voided_find_t *) arg;
    if (seq <= self->accepted)
        return 0;
    Kp__Wire__Record *record = kp__wire__record__unpack (&self->allocator, size, data);
    if (record && record->event == KP__WIRE__EVENT_KIND__VOIDED
    &&  record->ref_seq == self->accepted)
        self->voided = seq + 1;
    s_arena_reset (&self->arena);
    return self->voided? -1: 0;
}

//  LOCAL's record seq must be the ACCEPTED record of message id, naming
//  the envelope's sender and recipient, not VOIDED since, with body_hash =
//  SHA-256 of the sealed bytes the broker handed us: the broker cannot
//  hand out another body than the one it logged. 0 or -1 (said)
static int
s_open_check_copy (const char *dir, uint64_t seq, const Kp__Wire__Envelope *envelope,
                   const ProtobufCBinaryData *sealed)
{
    kp_log_t *log = s_log_open (dir, "log", false, false, NULL);
    if (!log)
        return -1;
    char id_text [2 * KP_ID_SIZE + 1];
    s_hex (envelope->id.data, KP_ID_SIZE, id_text);
    int rc = -1;
    Kp__Wire__Record *record = NULL;
    if (seq >= kp_log_size (log)) {
        s_say (S_EXIT_FAILED, "%s/log holds %" PRIu64 " records; the broker says message "
               "%s is record %" PRIu64 ": fetch first", dir, kp_log_size (log), id_text,
               seq);
        goto cleanup;
    }
    s_capture_t capture;
    s_capture_begin (&capture);
    uint64_t pos = 0;
    size_t size = 0;
    const uint8_t *data = kp_log_seek (log, seq, &pos) == 0?
                          kp_log_read (log, pos, &size): NULL;
    char *why = s_capture_end (&capture);
    if (data)
        record = kp__wire__record__unpack (NULL, size, data);
    if (!data)
        s_say (S_EXIT_FAILED, "framing: %s", *why? why: "cannot read the record");
    else
    if (!record)
        s_say (S_EXIT_FAILED, "%s/log record %" PRIu64 " does not decode as a Record "
               "(run kp-audit verify)", dir, seq);
    free (why);
    if (!record)
        goto cleanup;
    uint8_t hash [KP_HASH_SIZE];
    crypto_hash_sha256 (hash, sealed->data, sealed->len);
    char hash_text [2 * KP_HASH_SIZE + 1];
    s_hex (hash, KP_HASH_SIZE, hash_text);
    //  A voided message's body was lost: whatever the broker holds at its
    //  position now is not its body
    s_voided_find_t find;
    memset (&find, 0, sizeof find);
    find.accepted = seq;
    s_arena_init (&find.arena, &find.allocator);
    s_capture_begin (&capture);
    int replayed = kp_log_replay (log, s_voided_visit, &find);
    why = s_capture_end (&capture);
    s_arena_destroy (&find.arena);
    if (replayed && !find.voided)
        s_say (S_EXIT_FAILED, "framing: %s", *why? why: "cannot read the log");
    free (why);
    if (replayed && !find.voided)
        goto cleanup;
    if (record->event != KP__WIRE__EVENT_KIND__ACCEPTED
    ||  !s_bytes_equal (&record->message_id, envelope->id.data, KP_ID_SIZE))
        s_say (S_EXIT_FAILED, "%s/log record %" PRIu64 " is not the ACCEPTED record of "
               "message %s: the broker named another record than the one it logged",
               dir, seq, id_text);
    else
    if (!streq (record->sender, envelope->sender)
    ||  !streq (record->recipient, envelope->recipient_partner))
        s_say (S_EXIT_FAILED, "message %s: the broker's envelope names %s -> %s, the "
               "log's ACCEPTED record %" PRIu64 " %s -> %s", id_text, envelope->sender,
               envelope->recipient_partner, seq, record->sender, record->recipient);
    else
    if (find.voided)
        s_say (S_EXIT_FAILED, "message %s: its ACCEPTED record %" PRIu64 " was VOIDED at "
               "record %" PRIu64 " (a crash lost its body before its receipt): the "
               "broker handed out a body for a message it voided", id_text, seq,
               find.voided - 1);
    else
    if (!s_bytes_equal (&record->body_hash, hash, KP_HASH_SIZE))
        s_say (S_EXIT_FAILED, "message %s: the body the broker handed out (SHA-256 %s) "
               "is not the one its ACCEPTED record %" PRIu64 " holds the hash of: the "
               "broker changed the body after logging it", id_text, hash_text, seq);
    else
        rc = 0;

cleanup:
    if (record)
        kp__wire__record__free_unpacked (record, NULL);
    kp_log_destroy (&log);
    return rc;
}

//  The opened message as one JSON line, the envelope as kp-inbox shows it
//  plus the record's seq and the sealed body's hash. 0 or -1 (said)
static int
s_open_print (kp_msg_t *msg, uint64_t seq)
{
    const char *reason = NULL;
    ProtobufCMessage *body = kp_validate_unpack (kp_msg_body_descriptor (msg), msg->body,
                                                 msg->body_size, &reason);
    char *body_json = body? kp_json_from_message (body): NULL;
    if (body)
        protobuf_c_message_free_unpacked (body, NULL);
    if (!body_json)
        return s_say (-1, "message %s: the body cannot be rendered as JSON: %s",
                      msg->id_hex, reason? reason: "kp_json");
    char iso [32];
    char hash_text [2 * KP_HASH_SIZE + 1];
    printf ("{\"seq\":%" PRIu64 ",\"id\":\"%s\",\"type\":", seq, msg->id_hex);
    s_json_string (stdout, kp_msg_type (msg));
    printf (",\"sender\":");
    s_json_string (stdout, msg->sender);
    printf (",\"sender_role\":");
    s_json_string (stdout, kp_msg_sender_role (msg));
    printf (",\"recipient\":");
    s_json_string (stdout, msg->recipient);
    printf (",\"recipient_partner\":");
    s_json_string (stdout, msg->recipient_partner);
    const char *recipient_role = kp_role_name (msg->recipient_role);
    printf (",\"recipient_role\":");
    s_json_string (stdout, recipient_role? recipient_role: "");
    printf (",\"created_at\":\"%s\"", s_iso (msg->created_at_ms, iso));
    if (msg->expires_at_ms)
        printf (",\"expires_at\":\"%s\"", s_iso (msg->expires_at_ms, iso));
    if (msg->due_at_ms)
        printf (",\"due_at\":\"%s\"", s_iso (msg->due_at_ms, iso));
    if (msg->has_reference)
        printf (",\"reference\":\"%s\"", msg->reference_hex);
    if (*msg->purpose) {
        printf (",\"purpose\":");
        s_json_string (stdout, msg->purpose);
    }
    if (*msg->acting_user) {
        printf (",\"acting_user\":");
        s_json_string (stdout, msg->acting_user);
    }
    if (*msg->on_behalf_of) {
        printf (",\"on_behalf_of\":");
        s_json_string (stdout, msg->on_behalf_of);
    }
    if (msg->has_subject)
        printf (",\"subject\":\"%s\"", s_hex (msg->subject, KP_HASH_SIZE, hash_text));
    printf (",\"body_hash\":\"%s\",\"body\":%s}\n",
            s_hex (msg->body_hash, KP_HASH_SIZE, hash_text), body_json);
    //  The body is personal data: leave no copy in freed memory
    sodium_memzero (body_json, strlen (body_json));
    free (body_json);
    if (fflush (stdout) || ferror (stdout))
        return s_say (-1, "cannot write: %s", strerror (errno));
    return 0;
}

//  open: returns the exit code
static int
s_open (s_options_t *options)
{
    int rc = S_EXIT_FAILED;
    const char *reason = NULL;
    s_wire_t *wire = NULL;
    Kp__Wire__Command *reply = NULL;
    uint8_t *body = NULL;
    size_t body_size = 0;
    kp_msg_t *msg = NULL;
    char id_text [2 * KP_ID_SIZE + 1];
    s_hex (options->id, KP_ID_SIZE, id_text);

    //  Our sealing key, and the region's key that vouches for the sender's
    kp_seal_t *seal = kp_seal_load (options->cert, &reason);
    if (!seal) {
        s_say (S_EXIT_FAILED, "cert '%s': %s", options->cert, reason);
        goto cleanup;
    }
    if (kp_seal_load_region_key (seal, options->region_key, &reason)) {
        s_say (S_EXIT_FAILED, "region key '%s': %s", options->region_key, reason);
        goto cleanup;
    }
    wire = s_wire_new (options);
    if (!wire)
        goto cleanup;
    Kp__Wire__BodyQuery query = KP__WIRE__BODY_QUERY__INIT;
    query.id.data = options->id;
    query.id.len = KP_ID_SIZE;
    Kp__Wire__AuditRequest request = KP__WIRE__AUDIT_REQUEST__INIT;
    request.query_case = KP__WIRE__AUDIT_REQUEST__QUERY_BODY;
    request.body = &query;
    reply = s_wire_ask (wire, &request);
    if (!reply)
        goto cleanup;               //  a refusal, said with its code and reason
    Kp__Wire__AuditReply *answer = reply->audit_reply;

    //  The answer as the Deliver the recipient got: the same checks apply
    Kp__Wire__Deliver deliver = KP__WIRE__DELIVER__INIT;
    deliver.seq = answer->seq;
    deliver.envelope = answer->envelope;
    deliver.body = answer->body;
    deliver.sender_registration = answer->sender_registration;
    reason = kp_msg_deliver_check (&deliver);
    if (reason) {
        s_say (S_EXIT_FAILED, "message %s: the broker's answer: %s", id_text, reason);
        goto cleanup;
    }
    const Kp__Wire__Envelope *envelope = answer->envelope;
    if (!s_bytes_equal (&envelope->id, options->id, KP_ID_SIZE)) {
        s_say (S_EXIT_FAILED, "message %s: the broker answered with another message",
               id_text);
        goto cleanup;
    }
    kp_vouched_t sender;
    if (kp_seal_verify (seal, answer->sender_registration, &sender, &reason)) {
        s_say (S_EXIT_FAILED, "message %s: the sender's registration: %s", id_text,
               reason);
        goto cleanup;
    }
    if (!streq (sender.partner, envelope->sender)
    ||  sender.role != envelope->sender_role) {
        s_say (S_EXIT_FAILED, "message %s: the sender's registration names another "
               "partner or role (%s) than the envelope (%s)", id_text, sender.partner,
               envelope->sender);
        goto cleanup;
    }
    if (options->dir
    &&  s_open_check_copy (options->dir, answer->seq, envelope, &answer->body))
        goto cleanup;
    body = kp_seal_open_reader (seal, envelope, answer->body.data, answer->body.len,
                                sender.sign_key, &body_size, &reason);
    if (!body) {
        s_say (S_EXIT_FAILED, "message %s: %s", id_text, reason);
        goto cleanup;
    }
    msg = kp_msg_new_delivered (&deliver, body, body_size, &reason);
    if (!msg) {
        s_say (S_EXIT_FAILED, "message %s: the body breaks the rules of its type: %s",
               id_text, reason);
        goto cleanup;
    }
    if (s_open_print (msg, answer->seq) == 0)
        rc = S_EXIT_OK;

cleanup:
    kp_msg_destroy (&msg);
    if (body) {
        sodium_memzero (body, body_size);
        free (body);
    }
    if (reply)
        kp__wire__command__free_unpacked (reply, NULL);
    s_wire_destroy (&wire);
    kp_seal_destroy (&seal);
    return rc;
}

//  Which options each command takes (by option letter)
typedef struct {
    const char *name;
    s_command_t command;
    const char *allowed;            //  option letters it accepts
    const char *required;           //  option letters it needs
} s_command_spec_t;

static const s_command_spec_t s_commands [] = {
    { "fetch", S_FETCH, "dkbBcwS", "dkbBc" },
    { "verify", S_VERIFY, "dkTl", "dk" },
    { "replay", S_REPLAY, "dFtpise", "d" },
    { "prove", S_PROVE, "dikbBcw", "dik" },
    { "consistency", S_CONSISTENCY, "kbBcw", "kbBc" },
    { "open", S_OPEN, "irdbBcw", "irbBc" },
};

static const struct option s_options [] = {
    { "dir", required_argument, NULL, 'd' },
    { "checkpoint-key", required_argument, NULL, 'k' },
    { "broker", required_argument, NULL, 'b' },
    { "broker-cert", required_argument, NULL, 'B' },
    { "cert", required_argument, NULL, 'c' },
    { "timeout", required_argument, NULL, 'w' },
    { "trusted", required_argument, NULL, 'T' },
    { "tolerance", required_argument, NULL, 'l' },
    { "from", required_argument, NULL, 'F' },
    { "to", required_argument, NULL, 't' },
    { "partner", required_argument, NULL, 'p' },
    { "id", required_argument, NULL, 'i' },
    { "subject", required_argument, NULL, 's' },
    { "event", required_argument, NULL, 'e' },
    { "save-checkpoint", required_argument, NULL, 'S' },
    { "region-key", required_argument, NULL, 'r' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 }
};

//  The long name of an option letter, for messages
static const char *
s_option_name (int letter)
{
    for (const struct option *option = s_options; option->name; option++)
        if (option->val == letter)
            return option->name;
    return "?";
}

//  Parse the command line into options. Returns -1 to go on, or an exit
//  code (usage error, or 0 after --help).
static int
s_parse (int argc, char *argv [], s_options_t *options)
{
    if (argc < 2)
        return s_say (S_EXIT_USAGE, "missing command: fetch, verify, replay, prove, "
                      "consistency or open");
    if (streq (argv [1], "--help") || streq (argv [1], "-h")
    ||  streq (argv [1], "help")) {
        fputs (s_synopsis, stdout);
        return S_EXIT_OK;
    }
    const s_command_spec_t *spec = NULL;
    for (size_t index = 0; index < sizeof s_commands / sizeof s_commands [0]; index++)
        if (streq (argv [1], s_commands [index].name))
            spec = &s_commands [index];
    if (!spec)
        return s_say (S_EXIT_USAGE, "unknown command '%s' (fetch, verify, replay, prove, "
                      "consistency, open)", argv [1]);
    options->command = spec->command;
    options->name = spec->name;
    options->timeout = S_DEFAULT_TIMEOUT;
    options->tolerance = S_DEFAULT_TOLERANCE * 1000;
    char seen [32] = "";
    const char *from = NULL, *to = NULL, *id = NULL, *subject = NULL, *event = NULL;
    const char *timeout = NULL, *tolerance = NULL;
    opterr = 0;
    optind = 1;
    int letter;
    while ((letter = getopt_long (argc - 1, argv + 1, "", s_options, NULL)) != -1) {
        if (letter == 'h') {
            fputs (s_synopsis, stdout);
            return S_EXIT_OK;
        }
        if (letter == '?' || letter == ':')
            return s_say (S_EXIT_USAGE, "unknown option or missing value: %s",
                          argv [optind]);
        if (!strchr (spec->allowed, letter))
            return s_say (S_EXIT_USAGE, "%s does not take --%s", spec->name,
                          s_option_name (letter));
        if (letter != 'T' && strchr (seen, letter))
            return s_say (S_EXIT_USAGE, "--%s given twice", s_option_name (letter));
        if (!strchr (seen, letter) && strlen (seen) < sizeof seen - 1)
            seen [strlen (seen)] = (char) letter;
        switch (letter) {
            case 'd': options->dir = optarg; break;
            case 'k': options->key_file = optarg; break;
            case 'b': options->broker = optarg; break;
            case 'B': options->broker_cert = optarg; break;
            case 'c': options->cert = optarg; break;
            case 'w': timeout = optarg; break;
            case 'l': tolerance = optarg; break;
            case 'F': from = optarg; break;
            case 't': to = optarg; break;
            case 'p': options->partner = optarg; break;
            case 'i': id = optarg; break;
            case 's': subject = optarg; break;
            case 'e': event = optarg; break;
            case 'S': options->save_note = optarg; break;
            case 'r': options->region_key = optarg; break;
            case 'T':
                if (options->trusted_count == S_MAX_TRUSTED)
                    return s_say (S_EXIT_USAGE, "at most %d --trusted", S_MAX_TRUSTED);
                options->trusted [options->trusted_count++] = optarg;
                break;
            default:
                return s_say (S_EXIT_USAGE, "unknown option");
        }
    }
    int positional = argc - 1 - optind;
    char **rest = argv + 1 + optind;
    if (spec->command == S_CONSISTENCY) {
        if (positional != 2)
            return s_say (S_EXIT_USAGE, "consistency takes two note files: OLD_NOTE "
                          "NEW_NOTE");
        options->old_note = rest [0];
        options->new_note = rest [1];
    }
    else
    if (positional > 0)
        return s_say (S_EXIT_USAGE, "unexpected argument '%s'", rest [0]);
    for (const char *need = spec->required; *need; need++)
        if (!strchr (seen, *need))
            return s_say (S_EXIT_USAGE, "%s needs --%s", spec->name,
                          s_option_name (*need));
    //  The client flags go together
    int client = !!options->broker + !!options->broker_cert + !!options->cert;
    if (client != 0 && client != 3)
        return s_say (S_EXIT_USAGE, "--broker, --broker-cert and --cert go together");
    if (timeout && (options->timeout = kp_parse_positive (timeout, 3600000)) < 0)
        return s_say (S_EXIT_USAGE, "--timeout must be milliseconds, 1 to 3600000: '%s'",
                      timeout);
    if (tolerance) {
        int64_t seconds = kp_parse_positive (tolerance, 86400);
        if (seconds < 0 && !streq (tolerance, "0"))
            return s_say (S_EXIT_USAGE, "--tolerance must be seconds, 0 to 86400: '%s'",
                          tolerance);
        options->tolerance = seconds < 0? 0: seconds * 1000;
    }
    if (from) {
        if (s_parse_time (from, &options->from))
            return s_say (S_EXIT_USAGE, "--from is not a time: '%s'", from);
        options->have_from = true;
    }
    if (to) {
        if (s_parse_time (to, &options->to))
            return s_say (S_EXIT_USAGE, "--to is not a time: '%s'", to);
        options->have_to = true;
    }
    if (id) {
        if (kp_hex_decode (id, options->id, KP_ID_SIZE))
            return s_say (S_EXIT_USAGE, "--id must be 32 hex digits: '%s'", id);
        options->have_id = true;
    }
    if (subject) {
        if (kp_hex_decode (subject, options->subject, KP_HASH_SIZE))
            return s_say (S_EXIT_USAGE, "--subject must be 64 hex digits: '%s'", subject);
        options->have_subject = true;
    }
    if (event) {
        char upper [64];
        size_t length = strlen (event);
        if (length >= sizeof upper)
            length = sizeof upper - 1;
        for (size_t index = 0; index < length; index++)
            upper [index] = (char) toupper ((unsigned char) event [index]);
        upper [length] = 0;
        const ProtobufCEnumValue *value = protobuf_c_enum_descriptor_get_value_by_name (
            &kp__wire__event_kind__descriptor, upper);
        if (!value || value->value == 0)
            return s_say (S_EXIT_USAGE, "--event must be an event name such as ACCEPTED, "
                          "DELIVERED_TO, ACKNOWLEDGED: '%s'", event);
        options->event = value->value;
    }
    return -1;
}

//  --------------------------------------------------------------------------
//  Parse the arguments and run the command

int
main (int argc, char *argv [])
{
    zsys_set_logstream (stderr);
    zsys_set_logident ("kp-audit");
    s_options_t options;
    memset (&options, 0, sizeof options);
    int rc = s_parse (argc, argv, &options);
    if (rc >= 0)
        return rc;
    if (sodium_init () < 0)
        return s_say (S_EXIT_FAILED, "libsodium cannot start");
    switch (options.command) {
        case S_FETCH: rc = s_fetch (&options); break;
        case S_VERIFY: rc = s_verify (&options); break;
        case S_REPLAY: rc = s_replay (&options); break;
        case S_PROVE: rc = s_prove (&options); break;
        case S_CONSISTENCY: rc = s_consistency (&options); break;
        case S_OPEN: rc = s_open (&options); break;
    }
    sodium_memzero (options.key, sizeof options.key);
    return rc;
}
