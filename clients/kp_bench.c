/*  =========================================================================
    kp-bench - the ketenpost benchmark: throughput, latency, backlog, recovery

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
    kp-bench makes a fresh region with real CURVE keys in a temporary
    directory (S police senders, R Veilig Thuis recipients, each serving a
    municipality of its own), starts the built ketenpostd on 127.0.0.1,
    drives it over the wire protocol, and prints ONE JSON line on stdout.
    Next to the broker's figures it measures two floors in the same run
    with the same keys and sizes: a bare CURVE DEALER -> ROUTER pipe and a
    bare append + fdatasync loop on the data directory's disk.

    It speaks the protocol itself (docs/PROTOCOL.md) rather than through
    libketenpost, whose kp_client_send waits for each receipt: senders keep a
    window of submits in flight, recipients ack every Deliver at once.
    Every message id carries its index, so receipts, deliveries and status
    reports are matched to their submit time exactly (monotonic clock, ns).

    One thread, one poll loop; nothing sleeps to wait: the broker's start is
    watched with inotify and a pidfd, the offered rate of latency mode is a
    timerfd. The broker is killed and reaped on every exit path, and dies
    with us if we crash (PR_SET_PDEATHSIG). The figures' meaning, how to run
    each mode and what was measured are in docs/PERFORMANCE.md.
    Exit codes: 0 ok, 1 runtime failure, 2 usage error.
*/
#include "kp_region.h"
#include "kp_body.pb-c.h"
#include <sodium.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/perf_event.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define S_WINDOW 1000               //  default submits in flight per sender
#define S_HELLO_CREDIT 10000        //  credit we ask for; the broker caps it
#define S_MAX_PEERS 1000            //  most senders, most recipients
#define S_MIN_SIZE 16               //  smallest body a signal can be padded to
#define S_MAX_SIZE 65536            //  the broker's default limits/max-signal
#define S_READ_BATCH 1024           //  commands read per socket per turn
#define S_POLL_MS 100               //  longest wait of one loop turn
#define S_PING_NS 1000000000LL      //  ping a socket idle this long
#define S_WELCOME_MS 10000          //  msec for all sessions to open
#define S_STALL_MS 60000            //  msec without progress: give up
#define S_START_MS 600000           //  msec for the broker to become ready
#define S_STOP_MS 120000            //  msec for the broker to stop
#define S_FLOOR_FSYNC_NS 1000000000LL   //  duration of the fsync floor
#define S_SCAN_BUFFER (1024 * 1024) //  read-ahead of the log scanner
#define S_LOG_HEADER 16             //  segment header (LOG_FORMAT.md)
#define S_LOG_FRAME 8               //  record frame: length + CRC32C
#define S_MIB (1024.0 * 1024.0)

typedef enum {
    S_MODE_THROUGHPUT,
    S_MODE_LATENCY,
    S_MODE_BACKLOG,
    S_MODE_RECOVERY,
    S_MODE_VERIFY
} s_mode_t;

static const char *s_mode_names [] = {
    "throughput", "latency", "backlog", "recovery", "verify"
};

//  Default --count per mode: a run of seconds, not minutes
static const uint64_t s_default_count [] = { 100000, 20000, 100000, 100000, 100000 };

typedef struct {
    s_mode_t mode;
    size_t senders;                 //  S, police partners
    size_t recipients;              //  R, veilig_thuis partners
    size_t size;                    //  body bytes
    uint64_t count;                 //  messages
    double rate;                    //  latency mode: offered msgs/s
    size_t window;                  //  submits in flight per sender
    const char *data_parent;        //  --data-dir, or NULL: the temp dir
    const char *ketenpostd;         //  --ketenpostd, or NULL: find it
    bool keep;                      //  keep the temp dir
} s_options_t;

//  The life of one message, monotonic ns; 0 = not yet
typedef struct {
    int64_t submit_ns;              //  Submit sent (latency: scheduled)
    int64_t receipt_ns;             //  Receipt read by the sender
    int64_t deliver_ns;             //  Deliver read by the recipient
    int64_t status_ns;              //  Status DELIVERED read by the sender
} s_timing_t;

//  One session with the broker: a DEALER with a partner's key
typedef struct {
    zsock_t *sock;                  //  DEALER, CURVE client; NULL if closed
    void *handle;                   //  its libzmq handle
    char *partner;                  //  partner id
    size_t index;                   //  sender s or recipient r
    bool sender;                    //  a sender (police) or a recipient
    bool welcomed;                  //  the broker answered our Hello
    bool blocked;                   //  a send hit the high-water mark
    uint64_t next;                  //  sender: its next message number
    uint64_t outstanding;           //  sender: submits without an answer
    uint64_t ping_sent;             //  nonce of our last Ping
    uint64_t pong_seen;             //  nonce of the last Pong
    int64_t last_send_ns;           //  when we last sent anything
} s_peer_t;

//  The broker process we started
typedef struct {
    char *program;                  //  ketenpostd
    char *config;                   //  its config file
    char *data;                     //  its data dir
    char *log_path;                 //  its stderr
    pid_t pid;                      //  0 when not running
    int pidfd;                      //  -1 when not running
    int counters [2];               //  perf: fdatasync, fsync calls; -1 = none
    char *endpoint;                 //  where it listens, once ready
} s_broker_t;

//  Incremental record counter over one log directory (LOG_FORMAT.md)
typedef struct {
    char *dir;                      //  DATA/log or DATA/bodies
    zhashx_t *marks;                //  segment name -> uint64_t scanned offset
    uint64_t records;               //  whole records seen so far
    uint64_t bytes;                 //  their bytes, frames included
    uint8_t *buffer;                //  read-ahead
} s_counter_t;

//  What the broker did during a measured window
typedef struct {
    int64_t start_ns;
    double cpu_s;                   //  utime + stime at the start
    double client_cpu_s;            //  ours (all threads) at the start
    uint64_t syncs;                 //  fdatasync + fsync calls at the start
    bool syncs_known;               //  the perf counters work
    uint64_t log_records;           //  at the start
    uint64_t log_bytes;
    uint64_t body_records;
    uint64_t body_bytes;
} s_window_t;

typedef struct {
    double seconds;                 //  window length
    double cpu_s;                   //  broker CPU in it
    double client_cpu_s;            //  kp-bench's CPU in it
    double records_per_s;           //  log records appended per second
    double fsyncs_per_s;            //  NAN if not countable
    double appends_per_fsync;       //  log + body store appends per sync
    double append_bytes;            //  mean append, frame included
} s_window_result_t;

typedef struct {
    const s_options_t *options;
    char *self_dir;                 //  directory of this program
    char *dir;                      //  the temp dir
    char *data_dir;                 //  the broker's data dir
    char *region;                   //  dir/region
    char *server_key;               //  broker's public key, Z85
    s_broker_t broker;
    s_counter_t log_counter;        //  DATA/log
    s_counter_t body_counter;       //  DATA/bodies
    uint8_t nonce [8];              //  first half of every message id
    uint8_t *body;                  //  the signal body, size bytes
    size_t body_size;
    uint8_t body_hash [KP_HASH_SIZE];
    char **addresses;               //  per recipient: municipality:GM9nnn
    s_peer_t *peers;                //  senders first, then recipients
    size_t peer_count;
    s_timing_t *timing;             //  per message
    uint64_t receipted;             //  first receipts seen
    uint64_t delivered;             //  first deliveries seen
    uint64_t settled;               //  DELIVERED statuses seen
    bool paced;                     //  latency mode: submits on the timer
    uint64_t paced_next;            //  next message to offer
    int64_t paced_start_ns;         //  when message 0 was due
    int64_t paced_lag_ns;           //  the latest a submit went out
    int timer_fd;                   //  the pacing timer, -1 if none
    int64_t progress_ns;            //  when we last heard from the broker
    uint64_t duplicates;            //  repeated deliveries or receipts
} s_bench_t;

static void
    s_complain (const char *format, ...) __attribute__ ((format (printf, 1, 2)));

//  --------------------------------------------------------------------------
//  One line on stderr, prefixed with our name

static void
s_complain (const char *format, ...)
{
    va_list args;
    va_start (args, format);
    fprintf (stderr, "kp-bench: ");
    vfprintf (stderr, format, args);
    fprintf (stderr, "\n");
    va_end (args);
}

//  --------------------------------------------------------------------------
//  Monotonic clock in ns

static int64_t
s_now_ns (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000000LL + ts.tv_nsec;
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
    uint64_t value = 0;
    for (int index = 7; index >= 0; index--)
        value = value << 8 | in [index];
    return value;
}

//  --------------------------------------------------------------------------
//  Remove a directory tree

static int
s_remove_entry (const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void) sb; (void) flag; (void) ftw;
    return remove (path);
}

static void
s_rmtree (const char *dir)
{
    if (dir)
        nftw (dir, s_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

//  --------------------------------------------------------------------------
//  Command-line options

static void
s_usage (FILE *stream)
{
    fprintf (stream,
        "usage: kp-bench [options]\n"
        "  --mode M             throughput (default), latency, backlog, recovery,\n"
        "                       verify\n"
        "  --senders S          sending partners (police), default 1\n"
        "  --recipients R       receiving partners (veilig_thuis), default 1\n"
        "  --size B             body bytes, default 1024 (%d .. %d)\n"
        "  --count N            messages (default: throughput, backlog, recovery\n"
        "                       100000; latency 20000)\n"
        "  --rate R             latency mode: offered msgs/s, default 2000\n"
        "  --window W           submits in flight per sender, default %d\n"
        "  --data-dir DIR       put the broker's data in a new directory under DIR\n"
        "                       (default: in the temporary directory)\n"
        "  --ketenpostd PATH    the broker program (default: the one built with us)\n"
        "  --keep               keep the temporary directory\n"
        "  -h, --help           this text\n"
        "Prints one JSON line; see docs/PERFORMANCE.md for what each key means.\n",
        S_MIN_SIZE, S_MAX_SIZE, S_WINDOW);
}

//  Parse a whole decimal number in [low, high]; 0 or -1
static int
s_parse_count (const char *text, uint64_t low, uint64_t high, uint64_t *value_p)
{
    if (!text || !*text || *text == '-' || *text == '+')
        return -1;
    char *end = NULL;
    errno = 0;
    unsigned long long value = strtoull (text, &end, 10);
    if (errno || *end || value < low || value > high)
        return -1;
    *value_p = value;
    return 0;
}

//  Parse options into *options; returns 0, or 2 (usage error, one line
//  written), or -1 for --help (written)
static int
s_options_parse (int argc, char *argv [], s_options_t *options)
{
    static const struct option table [] = {
        { "mode", required_argument, NULL, 'm' },
        { "senders", required_argument, NULL, 's' },
        { "recipients", required_argument, NULL, 'r' },
        { "size", required_argument, NULL, 'b' },
        { "count", required_argument, NULL, 'n' },
        { "rate", required_argument, NULL, 'R' },
        { "window", required_argument, NULL, 'w' },
        { "data-dir", required_argument, NULL, 'd' },
        { "ketenpostd", required_argument, NULL, 'k' },
        { "keep", no_argument, NULL, 'K' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    options->mode = S_MODE_THROUGHPUT;
    options->senders = 1;
    options->recipients = 1;
    options->size = 1024;
    options->count = 0;
    options->rate = 2000;
    options->window = S_WINDOW;
    bool count_given = false;
    opterr = 0;
    int option;
    uint64_t value;
    while ((option = getopt_long (argc, argv, ":h", table, NULL)) != -1) {
        switch (option) {
            case 'm': {
                size_t mode = 0;
                while (mode < sizeof s_mode_names / sizeof s_mode_names [0]
                   &&  strcmp (s_mode_names [mode], optarg))
                    mode++;
                if (mode == sizeof s_mode_names / sizeof s_mode_names [0]) {
                    s_complain ("--mode: \"%s\" is not throughput, latency, backlog, "
                                "recovery or verify", optarg);
                    return 2;
                }
                options->mode = (s_mode_t) mode;
                break;
            }
            case 's':
            case 'r':
                if (s_parse_count (optarg, 1, S_MAX_PEERS, &value)) {
                    s_complain ("--%s: \"%s\" is not a whole number from 1 to %d",
                                option == 's'? "senders": "recipients", optarg,
                                S_MAX_PEERS);
                    return 2;
                }
                if (option == 's')
                    options->senders = (size_t) value;
                else
                    options->recipients = (size_t) value;
                break;
            case 'b':
                if (s_parse_count (optarg, S_MIN_SIZE, S_MAX_SIZE, &value)) {
                    s_complain ("--size: \"%s\" is not a whole number of bytes from "
                                "%d to %d", optarg, S_MIN_SIZE, S_MAX_SIZE);
                    return 2;
                }
                options->size = (size_t) value;
                break;
            case 'n':
                if (s_parse_count (optarg, 1, 100000000, &value)) {
                    s_complain ("--count: \"%s\" is not a whole number from 1 to "
                                "100000000", optarg);
                    return 2;
                }
                options->count = value;
                count_given = true;
                break;
            case 'R':
                if (s_parse_count (optarg, 1, 1000000, &value)) {
                    s_complain ("--rate: \"%s\" is not a whole number of msgs/s from 1 "
                                "to 1000000", optarg);
                    return 2;
                }
                options->rate = (double) value;
                break;
            case 'w':
                if (s_parse_count (optarg, 1, 100000, &value)) {
                    s_complain ("--window: \"%s\" is not a whole number from 1 to "
                                "100000", optarg);
                    return 2;
                }
                options->window = (size_t) value;
                break;
            case 'd': {
                struct stat info;
                if (stat (optarg, &info) || !S_ISDIR (info.st_mode)) {
                    s_complain ("--data-dir: \"%s\" is not a directory", optarg);
                    return 2;
                }
                options->data_parent = optarg;
                break;
            }
            case 'k':
                if (access (optarg, X_OK)) {
                    s_complain ("--ketenpostd: \"%s\" is not an executable program",
                                optarg);
                    return 2;
                }
                options->ketenpostd = optarg;
                break;
            case 'K':
                options->keep = true;
                break;
            case 'h':
                s_usage (stdout);
                return -1;
            case ':':
                s_complain ("%s needs a value (see --help)", argv [optind - 1]);
                return 2;
            default:
                s_complain ("unknown option %s (see --help)", argv [optind - 1]);
                return 2;
        }
    }
    if (optind < argc) {
        s_complain ("unexpected argument \"%s\" (see --help)", argv [optind]);
        return 2;
    }
    if (!count_given)
        options->count = s_default_count [options->mode];
    return 0;
}

//  --------------------------------------------------------------------------
//  The directory this program lives in; caller frees

static char *
s_self_dir (void)
{
    char path [PATH_MAX];
    ssize_t size = readlink ("/proc/self/exe", path, sizeof path - 1);
    if (size <= 0)
        return strdup (".");
    path [size] = 0;
    char *slash = strrchr (path, '/');
    if (slash)
        *slash = 0;
    return strdup (path);
}

//  The built ketenpostd: beside us (installed) or in ../broker (build
//  tree). Caller frees; NULL if none.
static char *
s_find_program (const char *self_dir, const char *name, const char *build_subdir)
{
    char *path = zsys_sprintf ("%s/%s", self_dir, name);
    if (access (path, X_OK) == 0)
        return path;
    free (path);
    path = zsys_sprintf ("%s/../%s/%s", self_dir, build_subdir, name);
    if (access (path, X_OK) == 0)
        return path;
    free (path);
    return NULL;
}

//  --------------------------------------------------------------------------
//  /proc figures of the broker

//  A "Field:   N kB" line of /proc/PID/status in MiB, or NAN
static double
s_proc_mib (pid_t pid, const char *field)
{
    char path [64];
    snprintf (path, sizeof path, "/proc/%d/status", (int) pid);
    FILE *file = fopen (path, "r");
    if (!file)
        return NAN;
    double result = NAN;
    char line [256];
    size_t field_size = strlen (field);
    while (fgets (line, sizeof line, file)) {
        if (strncmp (line, field, field_size) == 0 && line [field_size] == ':') {
            unsigned long long kib = 0;
            if (sscanf (line + field_size + 1, "%llu", &kib) == 1)
                result = (double) kib / 1024.0;
            break;
        }
    }
    fclose (file);
    return result;
}

//  utime + stime of all the broker's threads in seconds, or NAN
static double
s_proc_cpu_s (pid_t pid)
{
    char path [64];
    snprintf (path, sizeof path, "/proc/%d/stat", (int) pid);
    FILE *file = fopen (path, "r");
    if (!file)
        return NAN;
    char line [1024];
    double result = NAN;
    if (fgets (line, sizeof line, file)) {
        //  Fields after the command name, which may hold spaces: state is
        //  field 3, utime 14, stime 15
        char *cursor = strrchr (line, ')');
        unsigned long long utime = 0, stime = 0;
        if (cursor
        &&  sscanf (cursor + 2, "%*c %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %llu %llu",
                    &utime, &stime) == 2)
            result = (double) (utime + stime) / (double) sysconf (_SC_CLK_TCK);
    }
    fclose (file);
    return result;
}

//  Our own CPU, all threads (libzmq's I/O thread does our CURVE work)
static double
s_self_cpu_s (void)
{
    struct rusage usage;
    if (getrusage (RUSAGE_SELF, &usage))
        return NAN;
    return (double) (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
         + (double) (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

//  --------------------------------------------------------------------------
//  Counting the broker's fdatasync and fsync calls, exactly and without
//  slowing it: a perf tracepoint counter on syscalls:sys_enter_<name>,
//  inherited by every thread the broker starts. Needs tracefs and the
//  permission to trace the process (root, or perf_event_paranoid <= -1);
//  without them the figure is null.

static int
s_tracepoint_id (const char *name)
{
    static const char *roots [] = { "/sys/kernel/tracing", "/sys/kernel/debug/tracing" };
    for (size_t index = 0; index < 2; index++) {
        char *path = zsys_sprintf ("%s/events/syscalls/sys_enter_%s/id",
                                   roots [index], name);
        FILE *file = fopen (path, "r");
        free (path);
        if (!file)
            continue;
        int id = -1;
        if (fscanf (file, "%d", &id) != 1)
            id = -1;
        fclose (file);
        if (id >= 0)
            return id;
    }
    return -1;
}

static int
s_counter_open (pid_t pid, const char *syscall_name)
{
    int id = s_tracepoint_id (syscall_name);
    if (id < 0)
        return -1;
    struct perf_event_attr attr;
    memset (&attr, 0, sizeof attr);
    attr.type = PERF_TYPE_TRACEPOINT;
    attr.size = sizeof attr;
    attr.config = (uint64_t) id;
    attr.inherit = 1;               //  the threads the broker starts, too
    return (int) syscall (SYS_perf_event_open, &attr, pid, -1, -1,
                          PERF_FLAG_FD_CLOEXEC);
}

//  Sync calls so far, or -1 if not countable
static int64_t
s_broker_syncs (s_broker_t *broker)
{
    int64_t total = 0;
    for (int index = 0; index < 2; index++) {
        uint64_t value;
        if (broker->counters [index] < 0
        ||  read (broker->counters [index], &value, sizeof value) != sizeof value)
            return -1;
        total += (int64_t) value;
    }
    return total;
}

//  --------------------------------------------------------------------------
//  The broker process

//  Print the last lines of the broker's log on stderr
static void
s_broker_log_tail (s_broker_t *broker)
{
    FILE *file = fopen (broker->log_path, "r");
    if (!file)
        return;
    char *lines [20] = { NULL };
    size_t count = 0;
    char line [1024];
    while (fgets (line, sizeof line, file)) {
        free (lines [count % 20]);
        lines [count % 20] = strdup (line);
        count++;
    }
    fclose (file);
    fprintf (stderr, "kp-bench: the broker's log (%s) ends with:\n", broker->log_path);
    for (size_t index = count > 20? count - 20: 0; index < count; index++)
        fprintf (stderr, "    %s", lines [index % 20]);
    for (size_t index = 0; index < 20; index++)
        free (lines [index]);
}

//  Read DATA/endpoint if the broker wrote it; sets broker->endpoint
static bool
s_broker_ready (s_broker_t *broker)
{
    char *path = zsys_sprintf ("%s/endpoint", broker->data);
    FILE *file = fopen (path, "r");
    free (path);
    if (!file)
        return false;
    char line [512] = "";
    bool ready = fgets (line, sizeof line, file) && strchr (line, '\n');
    fclose (file);
    if (ready) {
        line [strcspn (line, "\n")] = 0;
        free (broker->endpoint);
        broker->endpoint = strdup (line);
    }
    return ready;
}

//  Reap the broker after it exited; returns its wait status
static int
s_broker_reap (s_broker_t *broker)
{
    int status = 0;
    while (waitpid (broker->pid, &status, 0) < 0 && errno == EINTR)
        ;
    broker->pid = 0;
    if (broker->pidfd >= 0)
        close (broker->pidfd);
    broker->pidfd = -1;
    for (int index = 0; index < 2; index++) {
        if (broker->counters [index] >= 0)
            close (broker->counters [index]);
        broker->counters [index] = -1;
    }
    return status;
}

//  --------------------------------------------------------------------------
//  Start ketenpostd and wait, with a deadline, until it wrote DATA/endpoint
//  (it does so once it replayed its log and bound). Sets *ready_ms to the
//  time from fork to ready. Returns 0, or -1 (logged; the broker is gone).

static int
s_broker_start (s_broker_t *broker, double *ready_ms)
{
    assert (broker->pid == 0);
    char *ready_path = zsys_sprintf ("%s/endpoint", broker->data);
    unlink (ready_path);
    free (ready_path);
    //  Watch before the fork, so that the write cannot slip past us
    int watch_fd = inotify_init1 (IN_CLOEXEC | IN_NONBLOCK);
    if (watch_fd < 0
    ||  inotify_add_watch (watch_fd, broker->data, IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
        s_complain ("cannot watch %s: %s", broker->data, strerror (errno));
        if (watch_fd >= 0)
            close (watch_fd);
        return -1;
    }
    int gate [2];
    if (pipe2 (gate, O_CLOEXEC)) {
        s_complain ("pipe: %s", strerror (errno));
        close (watch_fd);
        return -1;
    }
    pid_t parent = getpid ();
    int64_t started = s_now_ns ();
    pid_t pid = fork ();
    if (pid < 0) {
        s_complain ("fork: %s", strerror (errno));
        close (gate [0]);
        close (gate [1]);
        close (watch_fd);
        return -1;
    }
    if (pid == 0) {
        //  The broker dies with us, whatever way we go
        prctl (PR_SET_PDEATHSIG, SIGKILL);
        if (getppid () != parent)
            _exit (127);
        int log_fd = open (broker->log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (log_fd >= 0) {
            dup2 (log_fd, STDOUT_FILENO);
            dup2 (log_fd, STDERR_FILENO);
        }
        //  Wait until the parent attached its counters
        close (gate [1]);
        char byte;
        while (read (gate [0], &byte, 1) < 0 && errno == EINTR)
            ;
        execl (broker->program, broker->program, "--config", broker->config,
               (char *) NULL);
        _exit (127);
    }
    close (gate [0]);
    broker->pid = pid;
    broker->counters [0] = s_counter_open (pid, "fdatasync");
    broker->counters [1] = broker->counters [0] >= 0? s_counter_open (pid, "fsync"): -1;
    close (gate [1]);               //  go
    broker->pidfd = (int) syscall (SYS_pidfd_open, pid, 0);

    int rc = -1;
    int64_t deadline = started + (int64_t) S_START_MS * 1000000;
    while (true) {
        if (s_broker_ready (broker)) {
            rc = 0;
            break;
        }
        int64_t left_ms = (deadline - s_now_ns ()) / 1000000;
        if (left_ms <= 0) {
            s_complain ("ketenpostd did not become ready within %d s", S_START_MS / 1000);
            break;
        }
        if (zsys_interrupted) {
            s_complain ("interrupted while the broker was starting");
            break;
        }
        struct pollfd items [2] = {
            { watch_fd, POLLIN, 0 }, { broker->pidfd, POLLIN, 0 }
        };
        int count = poll (items, broker->pidfd >= 0? 2: 1,
                          broker->pidfd >= 0? (int) left_ms: 100);
        if (count < 0 && errno != EINTR) {
            s_complain ("poll: %s", strerror (errno));
            break;
        }
        if (count > 0 && (items [0].revents & POLLIN)) {
            char events [4096];
            while (read (watch_fd, events, sizeof events) > 0)
                ;
        }
        int status;
        if ((count > 0 && (items [1].revents & POLLIN))
        ||  (broker->pidfd < 0 && waitpid (pid, &status, WNOHANG) == pid)) {
            if (s_broker_ready (broker)) {
                rc = 0;
                break;
            }
            s_complain ("ketenpostd exited while starting");
            if (broker->pidfd >= 0)
                s_broker_reap (broker);
            else
                broker->pid = 0;
            s_broker_log_tail (broker);
            break;
        }
    }
    close (watch_fd);
    *ready_ms = (double) (s_now_ns () - started) / 1e6;
    if (rc && broker->pid) {
        kill (broker->pid, SIGKILL);
        s_broker_reap (broker);
        s_broker_log_tail (broker);
    }
    return rc;
}

//  --------------------------------------------------------------------------
//  Stop the broker with sig and reap it, escalating to SIGKILL after a
//  deadline. Sets *stop_ms (may be NULL). Returns 0 if it exited 0.

static int
s_broker_stop (s_broker_t *broker, int sig, double *stop_ms)
{
    if (!broker->pid)
        return 0;
    int64_t started = s_now_ns ();
    kill (broker->pid, sig);
    if (broker->pidfd >= 0 && sig != SIGKILL) {
        struct pollfd item = { broker->pidfd, POLLIN, 0 };
        int64_t deadline = started + (int64_t) S_STOP_MS * 1000000;
        int64_t left;
        while ((left = (deadline - s_now_ns ()) / 1000000) > 0) {
            int count = poll (&item, 1, (int) left);
            if (count > 0 || (count < 0 && errno != EINTR))
                break;
        }
        if (!(item.revents & POLLIN)) {
            s_complain ("ketenpostd did not stop within %d s; killing it",
                        S_STOP_MS / 1000);
            kill (broker->pid, SIGKILL);
        }
    }
    int status = s_broker_reap (broker);
    if (stop_ms)
        *stop_ms = (double) (s_now_ns () - started) / 1e6;
    if (sig != SIGKILL && !(WIFEXITED (status) && WEXITSTATUS (status) == 0)) {
        s_complain ("ketenpostd did not stop cleanly (wait status %d)", status);
        s_broker_log_tail (broker);
        return -1;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Counting records in a log directory, reading only frame headers

static void
s_counter_init (s_counter_t *self, const char *dir)
{
    self->dir = strdup (dir);
    self->marks = zhashx_new ();
    assert (self->marks);
    zhashx_set_destructor (self->marks, (zhashx_destructor_fn *) zstr_free);
    self->records = 0;
    self->bytes = 0;
    self->buffer = (uint8_t *) malloc (S_SCAN_BUFFER);
    assert (self->dir && self->buffer);
}

static void
s_counter_fini (s_counter_t *self)
{
    zhashx_destroy (&self->marks);
    free (self->buffer);
    free (self->dir);
    self->buffer = NULL;
    self->dir = NULL;
}

//  Count the whole records of one segment past *offset_p
static void
s_counter_segment (s_counter_t *self, const char *path, uint64_t *offset_p)
{
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    struct stat info;
    if (fstat (fd, &info)) {
        close (fd);
        return;
    }
    uint64_t size = (uint64_t) info.st_size;
    uint64_t offset = *offset_p;
    uint64_t buffer_start = 0;
    size_t fill = 0;
    while (offset + S_LOG_FRAME <= size) {
        if (offset < buffer_start || offset + S_LOG_FRAME > buffer_start + fill) {
            ssize_t count = pread (fd, self->buffer, S_SCAN_BUFFER, (off_t) offset);
            if (count < S_LOG_FRAME)
                break;
            buffer_start = offset;
            fill = (size_t) count;
        }
        const uint8_t *frame = self->buffer + (offset - buffer_start);
        uint32_t length = (uint32_t) frame [0] | (uint32_t) frame [1] << 8
                        | (uint32_t) frame [2] << 16 | (uint32_t) frame [3] << 24;
        //  A record still being written, or not a record: stop here
        if (length == 0 || length > 64u * 1024 * 1024
        ||  offset + S_LOG_FRAME + length > size)
            break;
        offset += S_LOG_FRAME + length;
        self->records++;
        self->bytes += S_LOG_FRAME + length;
    }
    close (fd);
    *offset_p = offset;
}

//  Bring the counts up to date with what is in the directory now
static void
s_counter_update (s_counter_t *self)
{
    DIR *handle = opendir (self->dir);
    if (!handle)
        return;
    zlistx_t *names = zlistx_new ();
    zlistx_set_destructor (names, (zlistx_destructor_fn *) zstr_free);
    zlistx_set_comparator (names, (zlistx_comparator_fn *) strcmp);
    struct dirent *entry;
    while ((entry = readdir (handle))) {
        size_t length = strlen (entry->d_name);
        if (length > 6 && streq (entry->d_name + length - 6, ".kplog"))
            zlistx_add_end (names, strdup (entry->d_name));
    }
    closedir (handle);
    zlistx_sort (names);
    for (char *name = (char *) zlistx_first (names); name;
         name = (char *) zlistx_next (names)) {
        char *mark = (char *) zhashx_lookup (self->marks, name);
        uint64_t offset = mark? strtoull (mark, NULL, 10): S_LOG_HEADER;
        char *path = zsys_sprintf ("%s/%s", self->dir, name);
        s_counter_segment (self, path, &offset);
        free (path);
        zhashx_update (self->marks, name, zsys_sprintf ("%" PRIu64, offset));
    }
    zlistx_destroy (&names);
}

//  --------------------------------------------------------------------------
//  The measured window: what the broker did between start and end

static void
s_window_start (s_bench_t *self, s_window_t *window)
{
    s_counter_update (&self->log_counter);
    s_counter_update (&self->body_counter);
    window->log_records = self->log_counter.records;
    window->log_bytes = self->log_counter.bytes;
    window->body_records = self->body_counter.records;
    window->body_bytes = self->body_counter.bytes;
    int64_t syncs = s_broker_syncs (&self->broker);
    window->syncs_known = syncs >= 0;
    window->syncs = syncs >= 0? (uint64_t) syncs: 0;
    window->cpu_s = s_proc_cpu_s (self->broker.pid);
    window->client_cpu_s = s_self_cpu_s ();
    window->start_ns = s_now_ns ();
}

//  End the window; seconds is the length to divide by (the caller's
//  measured span), or <= 0 for start to now
static void
s_window_end (s_bench_t *self, const s_window_t *window, double seconds,
              s_window_result_t *result)
{
    if (seconds <= 0)
        seconds = (double) (s_now_ns () - window->start_ns) / 1e9;
    result->seconds = seconds;
    result->cpu_s = s_proc_cpu_s (self->broker.pid) - window->cpu_s;
    result->client_cpu_s = s_self_cpu_s () - window->client_cpu_s;
    int64_t syncs = s_broker_syncs (&self->broker);
    s_counter_update (&self->log_counter);
    s_counter_update (&self->body_counter);
    uint64_t records = self->log_counter.records - window->log_records;
    uint64_t appends = records + self->body_counter.records - window->body_records;
    uint64_t bytes = self->log_counter.bytes - window->log_bytes
                   + self->body_counter.bytes - window->body_bytes;
    result->records_per_s = (double) records / seconds;
    result->append_bytes = appends? (double) bytes / (double) appends: NAN;
    if (window->syncs_known && syncs >= 0) {
        uint64_t count = (uint64_t) syncs - window->syncs;
        result->fsyncs_per_s = (double) count / seconds;
        result->appends_per_fsync = count? (double) appends / (double) count: NAN;
    }
    else {
        result->fsyncs_per_s = NAN;
        result->appends_per_fsync = NAN;
    }
}

//  --------------------------------------------------------------------------
//  The body: a kp.body.Signal whose narrative is padded so that the packed
//  body is exactly size bytes. Returns the packed bytes; caller frees.

static uint8_t *
s_body_new (size_t size)
{
    Kp__Body__Signal signal = KP__BODY__SIGNAL__INIT;
    signal.kind = KP__BODY__SIGNAL_KIND__MELDING;
    signal.urgency = KP__BODY__URGENCY__STRUCTURAL;
    signal.municipality = "GM9000";
    char *narrative = (char *) malloc (size + 1);
    assert (narrative);
    memset (narrative, 'x', size);
    //  The narrative's length prefix grows by a byte at 128 and 16384, so
    //  some sizes need a two-byte field more (family_informed) to be hit
    uint8_t *body = NULL;
    for (int informed = 0; informed < 2 && !body; informed++) {
        signal.family_informed = informed == 1;
        signal.narrative = "";
        //  The narrative adds its length plus 1 to 4 bytes of tag and prefix:
        //  start a few bytes short of the answer
        size_t base = kp__body__signal__get_packed_size (&signal);
        size_t first = size > base + 6? size - base - 6: 0;
        for (size_t length = first; length <= size; length++) {
            narrative [length] = 0;
            signal.narrative = narrative;
            size_t packed = kp__body__signal__get_packed_size (&signal);
            narrative [length] = 'x';
            if (packed > size)
                break;
            if (packed == size) {
                narrative [length] = 0;
                body = (uint8_t *) malloc (size);
                assert (body);
                size_t written = kp__body__signal__pack (&signal, body);
                assert (written == size);
                break;
            }
        }
    }
    free (narrative);
    return body;
}

//  --------------------------------------------------------------------------
//  Sessions

//  Apply our keypair from a secret cert to a socket (zsock or raw libzmq)
//  and wipe the cert. If server is true, the socket becomes a CURVE server
//  with this key. Returns 0 or -1.
static int
s_apply_secret (void *socket, const char *path, bool server)
{
    zcert_t *cert = zcert_load (path);
    if (!cert) {
        s_complain ("cannot read cert %s", path);
        return -1;
    }
    int rc = 0;
    if (server) {
        int on = 1;
        if (zmq_setsockopt (socket, ZMQ_CURVE_SERVER, &on, sizeof on)
        ||  zmq_setsockopt (socket, ZMQ_CURVE_SECRETKEY, zcert_secret_key (cert), 32))
            rc = -1;
    }
    else
        zcert_apply (cert, socket);
    //  CZMQ does not wipe a cert's secret
    sodium_memzero ((void *) (uintptr_t) zcert_secret_key (cert), 32);
    const char *secret_text = zcert_secret_txt (cert);
    sodium_memzero ((void *) (uintptr_t) secret_text, strlen (secret_text));
    zcert_destroy (&cert);
    return rc;
}

//  A DEALER with partner's key connected to endpoint; NULL on failure
static zsock_t *
s_dealer_new (s_bench_t *self, const char *partner, const char *endpoint)
{
    zsock_t *sock = zsock_new (ZMQ_DEALER);
    if (!sock) {
        s_complain ("cannot create a socket: %s", zmq_strerror (zmq_errno ()));
        return NULL;
    }
    char *secret = kp_region_secret_path (self->region, partner);
    int rc = s_apply_secret (sock, secret, false);
    free (secret);
    if (rc) {
        zsock_destroy (&sock);
        return NULL;
    }
    zsock_set_curve_serverkey (sock, self->server_key);
    zsock_set_linger (sock, 0);
    zsock_set_sndhwm (sock, 1000000);
    zsock_set_rcvhwm (sock, 1000000);
    zsock_set_maxmsgsize (sock, 2 * S_MAX_SIZE + 65536);
    if (zsock_connect (sock, "%s", endpoint)) {
        s_complain ("cannot connect to %s: %s", endpoint, zmq_strerror (zmq_errno ()));
        zsock_destroy (&sock);
        return NULL;
    }
    return sock;
}

//  Send a packed command; 0, or -1 (errno EAGAIN: the pipe is full)
static int
s_send (s_peer_t *peer, const Kp__Wire__Command *command)
{
    uint8_t small [256];
    size_t size = kp__wire__command__get_packed_size (command);
    if (size <= sizeof small) {
        kp__wire__command__pack (command, small);
        if (zmq_send (peer->handle, small, size, ZMQ_DONTWAIT) < 0)
            return -1;
    }
    else {
        zmq_msg_t msg;
        zmq_msg_init_size (&msg, size);
        kp__wire__command__pack (command, (uint8_t *) zmq_msg_data (&msg));
        if (zmq_msg_send (&msg, peer->handle, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (&msg);
            return -1;
        }
    }
    peer->last_send_ns = s_now_ns ();
    return 0;
}

static int
s_send_hello (s_peer_t *peer)
{
    Kp__Wire__Hello hello = KP__WIRE__HELLO__INIT;
    hello.version = KP_PROTOCOL_VERSION;
    hello.credit = S_HELLO_CREDIT;
    hello.agent = "kp-bench";
    Kp__Wire__Command command = KP__WIRE__COMMAND__INIT;
    command.kind_case = KP__WIRE__COMMAND__KIND_HELLO;
    command.hello = &hello;
    return s_send (peer, &command);
}

static int
s_send_ping (s_peer_t *peer)
{
    Kp__Wire__Ping ping = KP__WIRE__PING__INIT;
    ping.nonce = peer->ping_sent + 1;
    Kp__Wire__Command command = KP__WIRE__COMMAND__INIT;
    command.kind_case = KP__WIRE__COMMAND__KIND_PING;
    command.ping = &ping;
    if (s_send (peer, &command))
        return -1;
    peer->ping_sent++;
    return 0;
}

static int
s_send_ack (s_peer_t *peer, uint64_t seq)
{
    Kp__Wire__Ack ack = KP__WIRE__ACK__INIT;
    ack.seq = seq;
    Kp__Wire__Command command = KP__WIRE__COMMAND__INIT;
    command.kind_case = KP__WIRE__COMMAND__KIND_ACK;
    command.ack = &ack;
    return s_send (peer, &command);
}

//  The recipient of message index: each sender spreads over the recipients
static size_t
s_recipient_of (s_bench_t *self, uint64_t index)
{
    return (size_t) ((index / self->options->senders) % self->options->recipients);
}

//  Fill the Submit of message index into command (pointing into id and
//  envelope, which the caller owns)
static void
s_submit_build (s_bench_t *self, uint64_t index, uint8_t *id,
                Kp__Wire__Envelope *envelope, Kp__Wire__Submit *submit,
                Kp__Wire__Command *command)
{
    memcpy (id, self->nonce, 8);
    s_put_u64 (id + 8, index);
    kp__wire__envelope__init (envelope);
    envelope->id.data = id;
    envelope->id.len = KP_ID_SIZE;
    envelope->type = KP__WIRE__MESSAGE_TYPE__SIGNAL;
    envelope->recipient = self->addresses [s_recipient_of (self, index)];
    envelope->created_at_ms = kp_now_ms ();
    envelope->purpose = "bench";
    envelope->acting_user = "kp-bench";
    envelope->body_length = (uint32_t) self->body_size;
    envelope->body_hash.data = self->body_hash;
    envelope->body_hash.len = KP_HASH_SIZE;
    kp__wire__submit__init (submit);
    submit->envelope = envelope;
    submit->body.data = self->body;
    submit->body.len = self->body_size;
    kp__wire__command__init (command);
    command->kind_case = KP__WIRE__COMMAND__KIND_SUBMIT;
    command->submit = submit;
}

//  Submit message index on peer, stamped stamp_ns; 0 or -1 (pipe full)
static int
s_submit (s_bench_t *self, s_peer_t *peer, uint64_t index, int64_t stamp_ns)
{
    uint8_t id [KP_ID_SIZE];
    Kp__Wire__Envelope envelope;
    Kp__Wire__Submit submit;
    Kp__Wire__Command command;
    s_submit_build (self, index, id, &envelope, &submit, &command);
    if (s_send (peer, &command))
        return -1;
    self->timing [index].submit_ns = stamp_ns? stamp_ns: peer->last_send_ns;
    peer->outstanding++;
    return 0;
}

//  The message index in an id of ours, or UINT64_MAX
static uint64_t
s_index_of (s_bench_t *self, const ProtobufCBinaryData *id)
{
    if (id->len != KP_ID_SIZE || memcmp (id->data, self->nonce, 8))
        return UINT64_MAX;
    uint64_t index = s_get_u64 (id->data + 8);
    return index < self->options->count? index: UINT64_MAX;
}

//  --------------------------------------------------------------------------
//  Handle one command from the broker. Returns 0, or -1 to stop the run.

static int
s_on_command (s_bench_t *self, s_peer_t *peer, Kp__Wire__Command *command,
              int64_t now)
{
    switch (command->kind_case) {
        case KP__WIRE__COMMAND__KIND_WELCOME:
            peer->welcomed = true;
            return 0;
        case KP__WIRE__COMMAND__KIND_RECEIPT: {
            uint64_t index = s_index_of (self, &command->receipt->id);
            if (index == UINT64_MAX)
                return 0;
            if (self->timing [index].receipt_ns) {
                self->duplicates++;
                return 0;
            }
            self->timing [index].receipt_ns = now;
            self->receipted++;
            if (peer->outstanding > 0)
                peer->outstanding--;
            return 0;
        }
        case KP__WIRE__COMMAND__KIND_DELIVER: {
            Kp__Wire__Deliver *deliver = command->deliver;
            uint64_t index = deliver->envelope?
                             s_index_of (self, &deliver->envelope->id): UINT64_MAX;
            if (index != UINT64_MAX && deliver->body.len == self->body_size) {
                if (self->timing [index].deliver_ns)
                    self->duplicates++;
                else {
                    self->timing [index].deliver_ns = now;
                    self->delivered++;
                }
            }
            else
                s_complain ("a delivery that is not ours or has the wrong body size "
                            "(seq %" PRIu64 "); acked anyway", deliver->seq);
            if (s_send_ack (peer, deliver->seq)) {
                s_complain ("cannot send an ack: %s", zmq_strerror (zmq_errno ()));
                return -1;
            }
            return 0;
        }
        case KP__WIRE__COMMAND__KIND_STATUS: {
            Kp__Wire__Status *status = command->status;
            uint64_t index = s_index_of (self, &status->id);
            if (index != UINT64_MAX && status->status == KP__WIRE__STATUS_KIND__DELIVERED
            &&  !self->timing [index].status_ns) {
                self->timing [index].status_ns = now;
                self->settled++;
            }
            if (s_send_ack (peer, status->seq)) {
                s_complain ("cannot send an ack: %s", zmq_strerror (zmq_errno ()));
                return -1;
            }
            return 0;
        }
        case KP__WIRE__COMMAND__KIND_PONG:
            peer->pong_seen = command->pong->nonce;
            return 0;
        case KP__WIRE__COMMAND__KIND_ERROR: {
            const char *code = kp_error_name (command->error->code);
            s_complain ("the broker refused something from %s: %s: %s", peer->partner,
                        code? code: "?", command->error->reason);
            return -1;
        }
        default:
            s_complain ("unexpected command %d from the broker",
                        (int) command->kind_case);
            return -1;
    }
}

//  Read what peer has waiting, up to a batch. Returns 0 or -1.
static int
s_peer_read (s_bench_t *self, s_peer_t *peer)
{
    for (int count = 0; count < S_READ_BATCH; count++) {
        zmq_msg_t msg;
        zmq_msg_init (&msg);
        if (zmq_msg_recv (&msg, peer->handle, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (&msg);
            break;
        }
        int64_t now = s_now_ns ();
        self->progress_ns = now;
        if (zmq_msg_more (&msg)) {
            zmq_msg_close (&msg);
            s_complain ("a multi-frame message from the broker");
            return -1;
        }
        Kp__Wire__Command *command = kp__wire__command__unpack (
            NULL, zmq_msg_size (&msg), (const uint8_t *) zmq_msg_data (&msg));
        zmq_msg_close (&msg);
        if (!command) {
            s_complain ("a frame from the broker does not decode");
            return -1;
        }
        int rc = s_on_command (self, peer, command, now);
        kp__wire__command__free_unpacked (command, NULL);
        if (rc)
            return -1;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Submitting: a window per sender, or (latency mode) on a timer

static int64_t
s_due_ns (s_bench_t *self, uint64_t index)
{
    return self->paced_start_ns + (int64_t) ((double) index * 1e9 / self->options->rate);
}

static void
s_timer_arm (s_bench_t *self, int64_t due_ns)
{
    struct itimerspec spec;
    memset (&spec, 0, sizeof spec);
    spec.it_value.tv_sec = due_ns / 1000000000LL;
    spec.it_value.tv_nsec = due_ns % 1000000000LL;
    if (spec.it_value.tv_sec == 0 && spec.it_value.tv_nsec == 0)
        spec.it_value.tv_nsec = 1;  //  0 would disarm it
    timerfd_settime (self->timer_fd, TFD_TIMER_ABSTIME, &spec, NULL);
}

static void
s_submit_more (s_bench_t *self)
{
    const s_options_t *options = self->options;
    if (self->paced) {
        //  Open loop: what is due goes out, stamped with when it was due,
        //  so that a late send counts as latency (no coordinated omission)
        int64_t now = s_now_ns ();
        int64_t due;
        while (self->paced_next < options->count
           &&  (due = s_due_ns (self, self->paced_next)) <= now) {
            s_peer_t *peer = &self->peers [self->paced_next % options->senders];
            if (s_submit (self, peer, self->paced_next, due)) {
                peer->blocked = true;
                break;
            }
            if (peer->last_send_ns - due > self->paced_lag_ns)
                self->paced_lag_ns = peer->last_send_ns - due;
            self->paced_next++;
        }
        if (self->paced_next < options->count)
            s_timer_arm (self, s_due_ns (self, self->paced_next));
        return;
    }
    for (size_t index = 0; index < options->senders; index++) {
        s_peer_t *peer = &self->peers [index];
        while (peer->outstanding < options->window) {
            uint64_t message = index + peer->next * options->senders;
            if (message >= options->count)
                break;
            if (s_submit (self, peer, message, 0)) {
                peer->blocked = true;
                break;
            }
            peer->next++;
        }
    }
}

//  --------------------------------------------------------------------------
//  The loop: submit (if asked), read, ack, until the goal is met

typedef enum {
    S_GOAL_WELCOMED,                //  every open session has its Welcome
    S_GOAL_RECEIPTS,                //  every message has its receipt
    S_GOAL_SETTLED,                 //  ... and was delivered and acked
    S_GOAL_PONGS                    //  every open session answered our Ping
} s_goal_t;

static bool
s_goal_met (s_bench_t *self, s_goal_t goal)
{
    uint64_t count = self->options->count;
    switch (goal) {
        case S_GOAL_RECEIPTS:
            return self->receipted == count;
        case S_GOAL_SETTLED:
            return self->receipted == count && self->delivered == count
                && self->settled == count;
        case S_GOAL_WELCOMED:
        case S_GOAL_PONGS:
            for (size_t index = 0; index < self->peer_count; index++) {
                s_peer_t *peer = &self->peers [index];
                bool waiting = goal == S_GOAL_WELCOMED?
                               !peer->welcomed: peer->pong_seen != peer->ping_sent;
                if (peer->sock && waiting)
                    return false;
            }
            return true;
    }
    return false;
}

static int
s_pump (s_bench_t *self, bool submit, s_goal_t goal, int64_t limit_ms)
{
    zmq_pollitem_t *items = (zmq_pollitem_t *) calloc (self->peer_count + 1,
                                                       sizeof (zmq_pollitem_t));
    s_peer_t **owners = (s_peer_t **) calloc (self->peer_count + 1, sizeof (s_peer_t *));
    assert (items && owners);
    self->progress_ns = s_now_ns ();
    int rc = 0;
    while (!s_goal_met (self, goal)) {
        if (zsys_interrupted) {
            s_complain ("interrupted");
            rc = -1;
            break;
        }
        if (submit)
            s_submit_more (self);
        int count = 0;
        for (size_t index = 0; index < self->peer_count; index++) {
            s_peer_t *peer = &self->peers [index];
            if (!peer->sock)
                continue;
            items [count] = (zmq_pollitem_t) {
                peer->handle, 0, (short) (ZMQ_POLLIN | (peer->blocked? ZMQ_POLLOUT: 0)), 0
            };
            owners [count++] = peer;
        }
        int timer_item = -1;
        if (self->paced && submit && self->paced_next < self->options->count) {
            timer_item = count;
            items [count++] = (zmq_pollitem_t) { NULL, self->timer_fd, ZMQ_POLLIN, 0 };
        }
        if (zmq_poll (items, count, S_POLL_MS) < 0) {
            if (zmq_errno () == EINTR)
                continue;
            s_complain ("poll: %s", zmq_strerror (zmq_errno ()));
            rc = -1;
            break;
        }
        for (int index = 0; index < count && rc == 0; index++) {
            if (index == timer_item) {
                uint64_t expirations;
                if (items [index].revents & ZMQ_POLLIN)
                    while (read (self->timer_fd, &expirations, sizeof expirations) > 0)
                        ;
                continue;
            }
            if (items [index].revents & ZMQ_POLLOUT)
                owners [index]->blocked = false;
            if (items [index].revents & ZMQ_POLLIN)
                rc = s_peer_read (self, owners [index]);
        }
        if (rc)
            break;
        int64_t now = s_now_ns ();
        for (int index = 0; index < count; index++) {
            if (index == timer_item)
                continue;
            s_peer_t *peer = owners [index];
            //  Keep quiet sessions alive (the broker drops a session after
            //  three silent heartbeats)
            if (now - peer->last_send_ns > S_PING_NS && peer->welcomed)
                s_send_ping (peer);
        }
        if (now - self->progress_ns > (int64_t) limit_ms * 1000000) {
            s_complain ("no progress for %" PRId64 " s (receipts %" PRIu64
                        ", deliveries %" PRIu64 ", statuses %" PRIu64 " of %" PRIu64 ")",
                        limit_ms / 1000, self->receipted, self->delivered,
                        self->settled, self->options->count);
            s_broker_log_tail (&self->broker);
            rc = -1;
            break;
        }
    }
    free (owners);
    free (items);
    return rc;
}

//  Open sessions for peers [first, first + count) and wait for Welcomes
static int
s_peers_open (s_bench_t *self, size_t first, size_t count)
{
    for (size_t index = first; index < first + count; index++) {
        s_peer_t *peer = &self->peers [index];
        peer->sock = s_dealer_new (self, peer->partner, self->broker.endpoint);
        if (!peer->sock)
            return -1;
        peer->handle = zsock_resolve (peer->sock);
        peer->welcomed = false;
        if (s_send_hello (peer)) {
            s_complain ("cannot send hello: %s", zmq_strerror (zmq_errno ()));
            return -1;
        }
    }
    if (s_pump (self, false, S_GOAL_WELCOMED, S_WELCOME_MS)) {
        s_complain ("the broker did not welcome every session");
        return -1;
    }
    return 0;
}

static void
s_peers_close (s_bench_t *self)
{
    for (size_t index = 0; index < self->peer_count; index++)
        zsock_destroy (&self->peers [index].sock);
}

//  Ping every open session and wait for the Pongs: the broker answers a
//  Ping after all that session sent before it, so afterwards every ack
//  we sent has been handled
static int
s_flush (s_bench_t *self)
{
    for (size_t index = 0; index < self->peer_count; index++)
        if (self->peers [index].sock && s_send_ping (&self->peers [index])) {
            s_complain ("cannot send a ping: %s", zmq_strerror (zmq_errno ()));
            return -1;
        }
    return s_pump (self, false, S_GOAL_PONGS, S_STALL_MS);
}

//  --------------------------------------------------------------------------
//  Percentiles (nearest rank) of a latency, in microseconds

typedef enum {
    S_SPAN_RECEIPT,                 //  submit -> receipt
    S_SPAN_DELIVERY                 //  submit -> deliver
} s_span_t;

static int
s_compare_i64 (const void *left, const void *right)
{
    int64_t a = *(const int64_t *) left, b = *(const int64_t *) right;
    return a < b? -1: a > b? 1: 0;
}

typedef struct {
    double p50, p99, p999;
} s_percentiles_t;

static void
s_percentiles (s_bench_t *self, s_span_t span, s_percentiles_t *result)
{
    uint64_t count = self->options->count;
    int64_t *values = (int64_t *) malloc (count * sizeof (int64_t));
    assert (values);
    size_t size = 0;
    for (uint64_t index = 0; index < count; index++) {
        const s_timing_t *timing = &self->timing [index];
        int64_t end = span == S_SPAN_RECEIPT? timing->receipt_ns: timing->deliver_ns;
        if (timing->submit_ns && end)
            values [size++] = end - timing->submit_ns;
    }
    result->p50 = result->p99 = result->p999 = NAN;
    if (size > 0) {
        qsort (values, size, sizeof (int64_t), s_compare_i64);
        double fractions [3] = { 0.50, 0.99, 0.999 };
        double *targets [3] = { &result->p50, &result->p99, &result->p999 };
        for (int index = 0; index < 3; index++) {
            double rank = fractions [index] * (double) size;
            size_t position = (size_t) rank;
            if ((double) position < rank)
                position++;         //  ceil
            if (position > 0)
                position--;
            if (position >= size)
                position = size - 1;
            *targets [index] = (double) values [position] / 1000.0;
        }
    }
    free (values);
}

//  Span of the run: first submit to the last of the given stamps
static double
s_span_s (s_bench_t *self, bool settled)
{
    int64_t first = INT64_MAX, last = 0;
    for (uint64_t index = 0; index < self->options->count; index++) {
        const s_timing_t *timing = &self->timing [index];
        if (timing->submit_ns && timing->submit_ns < first)
            first = timing->submit_ns;
        int64_t end = settled? timing->status_ns: timing->receipt_ns;
        if (settled && timing->deliver_ns > end)
            end = timing->deliver_ns;
        if (end > last)
            last = end;
    }
    return last > first? (double) (last - first) / 1e9: NAN;
}

//  --------------------------------------------------------------------------
//  Floor (a): a bare CURVE DEALER -> ROUTER pipe on 127.0.0.1, with the
//  broker's key and the senders' keys, carrying frames of the size of our
//  Submits, each echoed back as a frame of the size of a Receipt. The echo
//  side runs in its own libzmq context (so its own I/O thread), as the
//  broker runs in its own process. No broker logic, no disk.

typedef struct {
    void *router;                   //  CURVE server ROUTER
    uint8_t reply [128];            //  a Receipt-sized answer
    size_t reply_size;
} s_echo_t;

static void *
s_echo_run (void *arg)
{
    s_echo_t *echo = (s_echo_t *) arg;
    while (true) {
        zmq_msg_t routing, payload;
        zmq_msg_init (&routing);
        if (zmq_msg_recv (&routing, echo->router, 0) < 0) {
            zmq_msg_close (&routing);
            if (zmq_errno () == EINTR)
                continue;
            break;                  //  ETERM: the context is shutting down
        }
        zmq_msg_init (&payload);
        int rc = zmq_msg_recv (&payload, echo->router, 0);
        zmq_msg_close (&payload);
        if (rc < 0
        ||  zmq_msg_send (&routing, echo->router, ZMQ_SNDMORE) < 0
        ||  zmq_send (echo->router, echo->reply, echo->reply_size, 0) < 0) {
            zmq_msg_close (&routing);
            if (zmq_errno () == EINTR)
                continue;
            break;
        }
    }
    zmq_close (echo->router);
    return NULL;
}

//  Returns msgs/s, or NAN on failure (logged)
static double
s_floor_pipe (s_bench_t *self)
{
    const s_options_t *options = self->options;
    double result = NAN;
    s_echo_t echo;
    memset (&echo, 0, sizeof echo);
    //  The answer: a Receipt as the broker would send it
    uint8_t id [KP_ID_SIZE];
    memcpy (id, self->nonce, 8);
    s_put_u64 (id + 8, 0);
    Kp__Wire__Receipt receipt = KP__WIRE__RECEIPT__INIT;
    receipt.id.data = id;
    receipt.id.len = KP_ID_SIZE;
    receipt.seq = options->count * 4;
    receipt.accepted_at_ms = kp_now_ms ();
    receipt.recipient_partner = "bench-vt-0000";
    receipt.recipient_role = KP__WIRE__ROLE__VEILIG_THUIS;
    Kp__Wire__Command answer = KP__WIRE__COMMAND__INIT;
    answer.kind_case = KP__WIRE__COMMAND__KIND_RECEIPT;
    answer.receipt = &receipt;
    echo.reply_size = kp__wire__command__get_packed_size (&answer);
    assert (echo.reply_size <= sizeof echo.reply);
    kp__wire__command__pack (&answer, echo.reply);
    //  The request: message 0's Submit, as sent to the broker
    Kp__Wire__Envelope envelope;
    Kp__Wire__Submit submit;
    Kp__Wire__Command command;
    s_submit_build (self, 0, id, &envelope, &submit, &command);
    size_t request_size = kp__wire__command__get_packed_size (&command);
    uint8_t *request = (uint8_t *) malloc (request_size);
    assert (request);
    kp__wire__command__pack (&command, request);

    void *context = zmq_ctx_new ();
    assert (context);
    echo.router = zmq_socket (context, ZMQ_ROUTER);
    assert (echo.router);
    int linger = 0, hwm = 1000000, mandatory = 1;
    zmq_setsockopt (echo.router, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt (echo.router, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt (echo.router, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt (echo.router, ZMQ_ROUTER_MANDATORY, &mandatory, sizeof mandatory);
    char *secret = zsys_sprintf ("%s/broker_secret", self->region);
    char endpoint [256] = "";
    size_t endpoint_size = sizeof endpoint;
    bool ready = s_apply_secret (echo.router, secret, true) == 0
              && zmq_bind (echo.router, "tcp://127.0.0.1:*") == 0
              && zmq_getsockopt (echo.router, ZMQ_LAST_ENDPOINT, endpoint,
                                 &endpoint_size) == 0;
    free (secret);
    pthread_t thread;
    bool threaded = ready && pthread_create (&thread, NULL, s_echo_run, &echo) == 0;
    if (!threaded) {
        s_complain ("cannot set up the CURVE pipe floor");
        zmq_close (echo.router);
    }
    bool running = threaded;
    size_t senders = options->senders;
    zsock_t **dealers = (zsock_t **) calloc (senders, sizeof (zsock_t *));
    uint64_t *sent = (uint64_t *) calloc (senders, sizeof (uint64_t));
    uint64_t *answered = (uint64_t *) calloc (senders, sizeof (uint64_t));
    zmq_pollitem_t *items = (zmq_pollitem_t *) calloc (senders, sizeof (zmq_pollitem_t));
    assert (dealers && sent && answered && items);
    for (size_t index = 0; running && index < senders; index++) {
        dealers [index] = s_dealer_new (self, self->peers [index].partner, endpoint);
        if (!dealers [index])
            running = false;
        else
            items [index] = (zmq_pollitem_t) {
                zsock_resolve (dealers [index]), 0, ZMQ_POLLIN, 0
            };
    }
    //  Warm up: one round trip per dealer, so the handshakes are not timed
    uint64_t total = 0;
    for (size_t index = 0; running && index < senders; index++)
        if (zmq_send (items [index].socket, request, request_size, 0) < 0)
            running = false;
    int64_t deadline = s_now_ns () + (int64_t) S_WELCOME_MS * 1000000;
    while (running && total < senders) {
        if (s_now_ns () > deadline || zsys_interrupted) {
            s_complain ("the CURVE pipe floor did not answer");
            running = false;
            break;
        }
        if (zmq_poll (items, (int) senders, S_POLL_MS) < 0 && zmq_errno () != EINTR)
            running = false;
        for (size_t index = 0; running && index < senders; index++)
            while (zmq_recv (items [index].socket, id, 0, ZMQ_DONTWAIT) >= 0)
                total++;
    }
    //  Timed: each dealer its share, window messages in flight
    uint64_t share_total = options->count;
    int64_t started = s_now_ns ();
    int64_t progress = started;
    total = 0;
    while (running && total < share_total) {
        for (size_t index = 0; index < senders; index++) {
            uint64_t share = share_total / senders + (index < share_total % senders);
            while (sent [index] < share
               &&  sent [index] - answered [index] < options->window
               &&  zmq_send (items [index].socket, request, request_size,
                             ZMQ_DONTWAIT) >= 0)
                sent [index]++;
        }
        if (zmq_poll (items, (int) senders, S_POLL_MS) < 0 && zmq_errno () != EINTR)
            break;
        for (size_t index = 0; index < senders; index++)
            for (int count = 0; count < S_READ_BATCH
                 &&  zmq_recv (items [index].socket, id, 0, ZMQ_DONTWAIT) >= 0; count++) {
                answered [index]++;
                total++;
                progress = s_now_ns ();
            }
        if (zsys_interrupted || s_now_ns () - progress > (int64_t) S_STALL_MS * 1000000) {
            s_complain ("the CURVE pipe floor stalled");
            break;
        }
    }
    if (running && total == share_total)
        result = (double) total / ((double) (s_now_ns () - started) / 1e9);
    for (size_t index = 0; index < senders; index++)
        zsock_destroy (&dealers [index]);
    if (threaded) {
        //  The echo thread's recv fails with ETERM; it closes its socket
        zmq_ctx_shutdown (context);
        pthread_join (thread, NULL);
    }
    zmq_ctx_term (context);
    free (items);
    free (answered);
    free (sent);
    free (dealers);
    free (request);
    return result;
}

//  --------------------------------------------------------------------------
//  Floor (b): a bare append + fdatasync loop on the data directory's disk,
//  batched as the broker batched: each sync follows `batch` appends of
//  `bytes` each (the broker's mean append, frame included). Returns
//  fdatasyncs per second, or NAN.

static double
s_floor_fsync (const char *dir, double batch, double bytes)
{
    if (!(batch >= 1))
        batch = 1;
    if (!(bytes >= 1))
        bytes = 256;
    char *path = zsys_sprintf ("%s/floor-fsync.tmp", dir);
    int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) {
        s_complain ("cannot create %s: %s", path, strerror (errno));
        free (path);
        return NAN;
    }
    size_t size = (size_t) bytes;
    uint8_t *record = (uint8_t *) malloc (size);
    assert (record);
    randombytes_buf (record, size);
    uint64_t syncs = 0;
    double owed = 0;
    int64_t started = s_now_ns ();
    int64_t now = started;
    bool failed = false;
    while (!failed && now - started < S_FLOOR_FSYNC_NS && !zsys_interrupted) {
        for (owed += batch; owed >= 1 && !failed; owed -= 1)
            failed = write (fd, record, size) != (ssize_t) size;
        failed = failed || fdatasync (fd) != 0;
        syncs++;
        now = s_now_ns ();
    }
    if (failed)
        s_complain ("the fsync floor failed on %s: %s", path, strerror (errno));
    close (fd);
    unlink (path);
    free (path);
    free (record);
    return failed? NAN: (double) syncs / ((double) (now - started) / 1e9);
}

//  --------------------------------------------------------------------------
//  Set up: temp dir, region with S senders and R recipients, broker config

static int
s_setup (s_bench_t *self)
{
    const s_options_t *options = self->options;
    const char *tmp = getenv ("TMPDIR");
    self->dir = zsys_sprintf ("%s/kp-bench-XXXXXX", tmp && *tmp? tmp: "/tmp");
    if (!mkdtemp (self->dir)) {
        s_complain ("cannot make a temporary directory %s: %s", self->dir,
                    strerror (errno));
        zstr_free (&self->dir);
        return -1;
    }
    if (options->data_parent) {
        self->data_dir = zsys_sprintf ("%s/kp-bench-data-XXXXXX", options->data_parent);
        if (!mkdtemp (self->data_dir)) {
            s_complain ("cannot make a directory in %s: %s", options->data_parent,
                        strerror (errno));
            zstr_free (&self->data_dir);
            return -1;
        }
    }
    else {
        self->data_dir = zsys_sprintf ("%s/data", self->dir);
        if (mkdir (self->data_dir, 0700)) {
            s_complain ("cannot make %s: %s", self->data_dir, strerror (errno));
            return -1;
        }
    }
    self->region = zsys_sprintf ("%s/region", self->dir);
    if (kp_region_init (self->region, "kp-bench"))
        return -1;
    self->peer_count = options->senders + options->recipients;
    self->peers = (s_peer_t *) calloc (self->peer_count, sizeof (s_peer_t));
    self->addresses = (char **) calloc (options->recipients, sizeof (char *));
    assert (self->peers && self->addresses);
    for (size_t index = 0; index < self->peer_count; index++) {
        s_peer_t *peer = &self->peers [index];
        peer->sender = index < options->senders;
        peer->index = peer->sender? index: index - options->senders;
        peer->partner = peer->sender? zsys_sprintf ("bench-police-%04zu", peer->index)
                                    : zsys_sprintf ("bench-vt-%04zu", peer->index);
        char municipality [16];
        snprintf (municipality, sizeof municipality, "GM9%03zu", peer->index);
        const char *addresses [2] = { peer->sender? NULL: municipality, NULL };
        Kp__Wire__Role role = peer->sender? KP__WIRE__ROLE__POLICE
                                          : KP__WIRE__ROLE__VEILIG_THUIS;
        if (kp_region_add (self->region, peer->partner, role,
                           peer->sender? "kp-bench sender": "kp-bench recipient",
                           addresses, false, NULL))
            return -1;
        if (!peer->sender)
            self->addresses [peer->index] = zsys_sprintf ("municipality:%s",
                                                          municipality);
    }
    //  The broker's public key, read from its public cert only (zcert_load
    //  would also load the secret beside it)
    char *cert_path = kp_region_broker_cert (self->region);
    zconfig_t *cert = zconfig_load (cert_path);
    const char *key = cert? zconfig_get (cert, "curve/public-key", NULL): NULL;
    if (key && strlen (key) == KP_KEY_TEXT)
        self->server_key = strdup (key);
    zconfig_destroy (&cert);
    free (cert_path);
    if (!self->server_key) {
        s_complain ("the new region has no readable broker cert");
        return -1;
    }
    //  The broker: defaults, but for a name, the region, 127.0.0.1, the data
    s_broker_t *broker = &self->broker;
    broker->config = zsys_sprintf ("%s/ketenpostd.cfg", self->dir);
    broker->data = strdup (self->data_dir);
    broker->log_path = zsys_sprintf ("%s/broker.log", self->dir);
    FILE *file = fopen (broker->config, "w");
    if (!file) {
        s_complain ("cannot write %s: %s", broker->config, strerror (errno));
        return -1;
    }
    fprintf (file,
             "#   written by kp-bench: the defaults of docs/CONFIG.md but for these\n"
             "server\n    name = kp-bench\n"
             "security\n    mechanism = curve\n    region = %s\n"
             "bind\n    endpoint = tcp://127.0.0.1:*\n"
             "log\n    dir = %s\n",
             self->region, self->data_dir);
    if (fclose (file)) {
        s_complain ("cannot write %s: %s", broker->config, strerror (errno));
        return -1;
    }
    char *log_dir = zsys_sprintf ("%s/log", self->data_dir);
    char *body_dir = zsys_sprintf ("%s/bodies", self->data_dir);
    s_counter_init (&self->log_counter, log_dir);
    s_counter_init (&self->body_counter, body_dir);
    free (body_dir);
    free (log_dir);
    //  Messages: a per-run nonce in every id, and one body for all
    randombytes_buf (self->nonce, sizeof self->nonce);
    self->body = s_body_new (options->size);
    if (!self->body) {
        s_complain ("cannot pad a signal body to %zu bytes", options->size);
        return -1;
    }
    self->body_size = options->size;
    crypto_hash_sha256 (self->body_hash, self->body, self->body_size);
    self->timing = (s_timing_t *) calloc (options->count, sizeof (s_timing_t));
    if (!self->timing) {
        s_complain ("cannot allocate the timings of %" PRIu64 " messages",
                    options->count);
        return -1;
    }
    return 0;
}

static void
s_teardown (s_bench_t *self)
{
    s_peers_close (self);
    if (self->broker.pid) {
        kill (self->broker.pid, SIGKILL);
        s_broker_reap (&self->broker);
    }
    if (self->timer_fd >= 0)
        close (self->timer_fd);
    if (self->dir) {
        if (self->options->keep)
            fprintf (stderr, "kp-bench: kept %s%s%s\n", self->dir,
                     self->options->data_parent? " and ": "",
                     self->options->data_parent? self->data_dir: "");
        else {
            if (self->options->data_parent && self->data_dir)
                s_rmtree (self->data_dir);
            s_rmtree (self->dir);
        }
    }
    s_counter_fini (&self->log_counter);
    s_counter_fini (&self->body_counter);
    for (size_t index = 0; index < self->peer_count; index++)
        free (self->peers [index].partner);
    free (self->peers);
    if (self->addresses)
        for (size_t index = 0; index < self->options->recipients; index++)
            free (self->addresses [index]);
    free (self->addresses);
    free (self->timing);
    free (self->body);
    free (self->server_key);
    free (self->broker.program);
    free (self->broker.config);
    free (self->broker.data);
    free (self->broker.log_path);
    free (self->broker.endpoint);
    free (self->region);
    free (self->data_dir);
    free (self->dir);
    free (self->self_dir);
}

//  --------------------------------------------------------------------------
//  JSON output: one line, keys in a fixed order, null for not measured

static void
s_json_number (FILE *stream, const char *key, double value, int decimals)
{
    if (isnan (value) || isinf (value))
        fprintf (stream, ",\"%s\":null", key);
    else
        fprintf (stream, ",\"%s\":%.*f", key, decimals, value);
}

static FILE *
s_json_open (s_bench_t *self, char **text_p, size_t *size_p)
{
    const s_options_t *options = self->options;
    FILE *stream = open_memstream (text_p, size_p);
    assert (stream);
    fprintf (stream, "{\"mode\":\"%s\",\"messages\":%" PRIu64 ",\"size_bytes\":%zu,"
             "\"senders\":%zu,\"recipients\":%zu,\"window_msgs\":%zu",
             s_mode_names [options->mode], options->count, options->size,
             options->senders, options->recipients, options->window);
    return stream;
}

static void
s_json_window (FILE *stream, const s_window_result_t *window)
{
    s_json_number (stream, "broker_cpu_s", window->cpu_s, 2);
    s_json_number (stream, "client_cpu_s", window->client_cpu_s, 2);
    s_json_number (stream, "records_per_s", window->records_per_s, 0);
    s_json_number (stream, "fsyncs_per_s", window->fsyncs_per_s, 0);
    s_json_number (stream, "appends_per_fsync", window->appends_per_fsync, 1);
}

//  Finish and print the line
static void
s_json_print (FILE *stream, char **text_p)
{
    fprintf (stream, "}\n");
    fclose (stream);
    fputs (*text_p, stdout);
    fflush (stdout);
    free (*text_p);
    *text_p = NULL;
}

//  --------------------------------------------------------------------------
//  The floors, after the broker stopped; adds their keys

static void
s_json_floors (s_bench_t *self, FILE *stream, const s_window_result_t *window,
               double msgs_per_s)
{
    double pipe = s_floor_pipe (self);
    double fsyncs = s_floor_fsync (self->data_dir, window->appends_per_fsync,
                                   window->append_bytes);
    s_json_number (stream, "floor_curve_pipe_msgs_per_s", pipe, 0);
    s_json_number (stream, "floor_fsync_per_s", fsyncs, 0);
    s_json_number (stream, "floor_fsync_batch_appends",
                   isnan (window->appends_per_fsync)? 1: window->appends_per_fsync, 1);
    s_json_number (stream, "floor_fsync_append_bytes", window->append_bytes, 0);
    s_json_number (stream, "ratio_to_curve_pipe", msgs_per_s / pipe, 3);
}

//  --------------------------------------------------------------------------
//  Modes. Each returns 0 (and printed its line) or 1.

static int
s_run_flow (s_bench_t *self)
{
    const s_options_t *options = self->options;
    bool latency = options->mode == S_MODE_LATENCY;
    double ready_ms;
    if (s_broker_start (&self->broker, &ready_ms))
        return 1;
    //  Recipients first, so that nothing waits in the queue for them
    if (s_peers_open (self, options->senders, options->recipients)
    ||  s_peers_open (self, 0, options->senders))
        return 1;
    s_window_t window;
    s_window_start (self, &window);
    if (latency) {
        self->paced = true;
        self->paced_start_ns = s_now_ns () + 1000000;
        self->timer_fd = timerfd_create (CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (self->timer_fd < 0) {
            s_complain ("timerfd: %s", strerror (errno));
            return 1;
        }
        s_timer_arm (self, self->paced_start_ns);
    }
    if (s_pump (self, true, S_GOAL_SETTLED, S_STALL_MS) || s_flush (self))
        return 1;
    double span = s_span_s (self, true);
    s_window_result_t result;
    s_window_end (self, &window, span, &result);
    double peak_mib = s_proc_mib (self->broker.pid, "VmHWM");
    s_peers_close (self);
    if (s_broker_stop (&self->broker, SIGTERM, NULL))
        return 1;

    s_percentiles_t receipt, delivery;
    s_percentiles (self, S_SPAN_RECEIPT, &receipt);
    s_percentiles (self, S_SPAN_DELIVERY, &delivery);
    double throughput = (double) options->count / span;
    char *text = NULL;
    size_t size = 0;
    FILE *stream = s_json_open (self, &text, &size);
    if (latency) {
        s_json_number (stream, "offered_msgs_per_s", options->rate, 0);
        s_json_number (stream, "send_lag_max_us",
                       (double) self->paced_lag_ns / 1000.0, 0);
    }
    s_json_number (stream, "throughput_msgs_per_s", throughput, 0);
    s_json_number (stream, "receipt_p50_us", receipt.p50, 0);
    s_json_number (stream, "receipt_p99_us", receipt.p99, 0);
    s_json_number (stream, "receipt_p999_us", receipt.p999, 0);
    s_json_number (stream, "delivery_p50_us", delivery.p50, 0);
    s_json_number (stream, "delivery_p99_us", delivery.p99, 0);
    s_json_number (stream, "broker_peak_rss_mib", peak_mib, 1);
    s_json_window (stream, &result);
    if (!latency)
        s_json_floors (self, stream, &result, throughput);
    s_json_print (stream, &text);
    return 0;
}

static int
s_run_backlog (s_bench_t *self)
{
    const s_options_t *options = self->options;
    double ready_ms;
    if (s_broker_start (&self->broker, &ready_ms)
    ||  s_peers_open (self, 0, options->senders))
        return 1;
    //  Fill: the recipients are offline, everything queues
    if (s_pump (self, true, S_GOAL_RECEIPTS, S_STALL_MS) || s_flush (self))
        return 1;
    double fill_s = s_span_s (self, false);
    double before_mib = s_proc_mib (self->broker.pid, "VmRSS");
    //  Drain: the recipients come on line
    s_window_t window;
    s_window_start (self, &window);
    int64_t drain_start = window.start_ns;
    if (s_peers_open (self, options->senders, options->recipients)
    ||  s_pump (self, false, S_GOAL_SETTLED, S_STALL_MS))
        return 1;
    int64_t drain_end = 0;
    for (uint64_t index = 0; index < options->count; index++) {
        const s_timing_t *timing = &self->timing [index];
        if (timing->status_ns > drain_end)
            drain_end = timing->status_ns;
        if (timing->deliver_ns > drain_end)
            drain_end = timing->deliver_ns;
    }
    if (s_flush (self))
        return 1;
    double drain_s = (double) (drain_end - drain_start) / 1e9;
    s_window_result_t result;
    s_window_end (self, &window, drain_s, &result);
    double after_mib = s_proc_mib (self->broker.pid, "VmRSS");
    double peak_mib = s_proc_mib (self->broker.pid, "VmHWM");
    s_peers_close (self);
    if (s_broker_stop (&self->broker, SIGTERM, NULL))
        return 1;

    double drain = (double) options->count / drain_s;
    char *text = NULL;
    size_t size = 0;
    FILE *stream = s_json_open (self, &text, &size);
    s_json_number (stream, "fill_msgs_per_s", (double) options->count / fill_s, 0);
    s_json_number (stream, "broker_rss_before_mib", before_mib, 1);
    s_json_number (stream, "drain_msgs_per_s", drain, 0);
    s_json_number (stream, "broker_rss_after_mib", after_mib, 1);
    s_json_number (stream, "broker_peak_rss_mib", peak_mib, 1);
    s_json_window (stream, &result);
    s_json_floors (self, stream, &result, drain);
    s_json_print (stream, &text);
    return 0;
}

//  The broker's own account of its replay: "replayed records=N queued=Q
//  msec=M", the last such line of its log
static void
s_replay_line (s_bench_t *self, double *records, double *msec)
{
    *records = *msec = NAN;
    FILE *file = fopen (self->broker.log_path, "r");
    if (!file)
        return;
    char line [1024];
    while (fgets (line, sizeof line, file)) {
        const char *found = strstr (line, "replayed records=");
        unsigned long long count, queued;
        long long elapsed;
        if (found && sscanf (found, "replayed records=%llu queued=%llu msec=%lld",
                             &count, &queued, &elapsed) == 3) {
            *records = (double) count;
            *msec = (double) elapsed;
        }
    }
    fclose (file);
}

static int
s_run_recovery (s_bench_t *self)
{
    const s_options_t *options = self->options;
    double ready_ms;
    if (s_broker_start (&self->broker, &ready_ms)
    ||  s_peers_open (self, 0, options->senders))
        return 1;
    if (s_pump (self, true, S_GOAL_RECEIPTS, S_STALL_MS) || s_flush (self))
        return 1;
    double fill_s = s_span_s (self, false);
    s_peers_close (self);
    double stop_ms;
    if (s_broker_stop (&self->broker, SIGTERM, &stop_ms))
        return 1;
    s_counter_update (&self->log_counter);
    double records = (double) self->log_counter.records;
    //  The measure: start to ready (DATA/endpoint written)
    double recovery_ms;
    if (s_broker_start (&self->broker, &recovery_ms))
        return 1;
    double peak_mib = s_proc_mib (self->broker.pid, "VmHWM");
    double rss_mib = s_proc_mib (self->broker.pid, "VmRSS");
    double cpu_s = s_proc_cpu_s (self->broker.pid);
    if (s_broker_stop (&self->broker, SIGTERM, NULL))
        return 1;
    double replayed, replay_ms;
    s_replay_line (self, &replayed, &replay_ms);

    char *text = NULL;
    size_t size = 0;
    FILE *stream = s_json_open (self, &text, &size);
    s_json_number (stream, "fill_msgs_per_s", (double) options->count / fill_s, 0);
    s_json_number (stream, "log_records", records, 0);
    s_json_number (stream, "stop_ms", stop_ms, 1);
    s_json_number (stream, "recovery_ms", recovery_ms, 1);
    s_json_number (stream, "replay_ms", replay_ms, 0);
    s_json_number (stream, "replayed_records", replayed, 0);
    s_json_number (stream, "broker_rss_mib", rss_mib, 1);
    s_json_number (stream, "broker_peak_rss_mib", peak_mib, 1);
    s_json_number (stream, "broker_cpu_s", cpu_s, 2);
    s_json_print (stream, &text);
    return 0;
}

//  --------------------------------------------------------------------------
//  Run a program to its end with a deadline, output to log_path. Returns
//  its wait status, or -1 if it could not run or timed out (killed). Sets
//  *elapsed_ms and *peak_mib (its VmHWM, from wait4).

static int
s_program_run (char *const argv [], const char *log_path, int64_t limit_ms,
               double *elapsed_ms, double *peak_mib)
{
    pid_t parent = getpid ();
    int64_t started = s_now_ns ();
    pid_t pid = fork ();
    if (pid < 0) {
        s_complain ("fork: %s", strerror (errno));
        return -1;
    }
    if (pid == 0) {
        prctl (PR_SET_PDEATHSIG, SIGKILL);
        if (getppid () != parent)
            _exit (127);
        int log_fd = open (log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (log_fd >= 0) {
            dup2 (log_fd, STDOUT_FILENO);
            dup2 (log_fd, STDERR_FILENO);
        }
        execv (argv [0], argv);
        _exit (127);
    }
    int pidfd = (int) syscall (SYS_pidfd_open, pid, 0);
    bool exited = false;
    int64_t deadline = started + limit_ms * 1000000;
    while (pidfd >= 0 && !exited && !zsys_interrupted) {
        int64_t left = (deadline - s_now_ns ()) / 1000000;
        if (left <= 0)
            break;
        struct pollfd item = { pidfd, POLLIN, 0 };
        int count = poll (&item, 1, (int) left);
        if (count < 0 && errno != EINTR)
            break;
        exited = count > 0;
    }
    if (pidfd >= 0 && !exited)
        kill (pid, SIGKILL);
    int status = 0;
    struct rusage usage;
    memset (&usage, 0, sizeof usage);
    while (wait4 (pid, &status, 0, &usage) < 0 && errno == EINTR)
        ;
    if (pidfd >= 0)
        close (pidfd);
    *elapsed_ms = (double) (s_now_ns () - started) / 1e6;
    *peak_mib = (double) usage.ru_maxrss / 1024.0;
    if (pidfd >= 0 && !exited) {
        s_complain ("%s did not finish within %" PRId64 " s", argv [0], limit_ms / 1000);
        return -1;
    }
    return status;
}

//  verify: a log filled by the whole flow (every event a message makes),
//  the broker stopped, then kp-audit verify over its data dir, timed
static int
s_run_verify (s_bench_t *self, const char *audit)
{
    const s_options_t *options = self->options;
    double ready_ms;
    if (s_broker_start (&self->broker, &ready_ms)
    ||  s_peers_open (self, options->senders, options->recipients)
    ||  s_peers_open (self, 0, options->senders)
    ||  s_pump (self, true, S_GOAL_SETTLED, S_STALL_MS) || s_flush (self))
        return 1;
    s_peers_close (self);
    if (s_broker_stop (&self->broker, SIGTERM, NULL))
        return 1;
    s_counter_update (&self->log_counter);
    double records = (double) self->log_counter.records;

    char *key = zsys_sprintf ("%s/checkpoint.pub", self->region);
    char *log_path = zsys_sprintf ("%s/audit.log", self->dir);
    char *argv [] = {
        (char *) audit, "verify", "--dir", self->data_dir, "--checkpoint-key", key, NULL
    };
    double verify_ms, peak_mib;
    int status = s_program_run (argv, log_path, S_START_MS, &verify_ms, &peak_mib);
    bool passed = status >= 0 && WIFEXITED (status) && WEXITSTATUS (status) == 0;
    if (!passed) {
        s_complain ("kp-audit verify did not pass (wait status %d); its output is in %s",
                    status, log_path);
        FILE *file = fopen (log_path, "r");
        char line [1024];
        while (file && fgets (line, sizeof line, file))
            fprintf (stderr, "    %s", line);
        if (file)
            fclose (file);
    }
    free (log_path);
    free (key);
    if (!passed)
        return 1;
    char *text = NULL;
    size_t size = 0;
    FILE *stream = s_json_open (self, &text, &size);
    s_json_number (stream, "log_records", records, 0);
    s_json_number (stream, "verify_ms", verify_ms, 1);
    s_json_number (stream, "verify_records_per_s", records / (verify_ms / 1000.0), 0);
    s_json_number (stream, "audit_peak_rss_mib", peak_mib, 1);
    s_json_print (stream, &text);
    return 0;
}

//  --------------------------------------------------------------------------

int
main (int argc, char *argv [])
{
    s_options_t options;
    memset (&options, 0, sizeof options);
    int rc = s_options_parse (argc, argv, &options);
    if (rc)
        return rc == -1? 0: rc;

    char *self_dir = s_self_dir ();
    char *audit = NULL;
    if (options.mode == S_MODE_VERIFY) {
        audit = s_find_program (self_dir, "kp-audit", "clients");
        if (!audit) {
            s_complain ("--mode verify: not available yet (it needs kp-audit, which is "
                        "not built beside kp-bench)");
            free (self_dir);
            return 2;
        }
    }
    char *program = options.ketenpostd? strdup (options.ketenpostd)
                                      : s_find_program (self_dir, "ketenpostd", "broker");
    if (!program) {
        s_complain ("cannot find ketenpostd beside %s or in %s/../broker; use "
                    "--ketenpostd PATH", self_dir, self_dir);
        free (audit);
        free (self_dir);
        return 2;
    }
    zsys_init ();
    zsys_set_logident ("kp-bench");
    zsys_set_logstream (stderr);
    if (sodium_init () < 0) {
        s_complain ("libsodium cannot start");
        free (audit);
        free (program);
        free (self_dir);
        return 1;
    }
    //  Our sockets: many in flight, fast
    zsys_set_sndhwm (1000000);
    zsys_set_rcvhwm (1000000);

    s_bench_t bench;
    memset (&bench, 0, sizeof bench);
    bench.options = &options;
    bench.self_dir = self_dir;
    bench.timer_fd = -1;
    bench.broker.program = program;
    bench.broker.pidfd = -1;
    bench.broker.counters [0] = bench.broker.counters [1] = -1;
    //  Making the region logs a notice per key: keep them unless it fails
    char *setup_log = NULL;
    size_t setup_log_size = 0;
    FILE *setup_stream = open_memstream (&setup_log, &setup_log_size);
    assert (setup_stream);
    zsys_set_logstream (setup_stream);
    int setup_rc = s_setup (&bench);
    zsys_set_logstream (stderr);
    fclose (setup_stream);
    if (setup_rc)
        fputs (setup_log, stderr);
    free (setup_log);
    int exit_code = 1;
    if (setup_rc == 0) {
        if (options.mode == S_MODE_BACKLOG)
            exit_code = s_run_backlog (&bench);
        else
        if (options.mode == S_MODE_VERIFY)
            exit_code = s_run_verify (&bench, audit);
        else
        if (options.mode == S_MODE_RECOVERY)
            exit_code = s_run_recovery (&bench);
        else
            exit_code = s_run_flow (&bench);
    }
    s_teardown (&bench);
    free (audit);
    return exit_code;
}
