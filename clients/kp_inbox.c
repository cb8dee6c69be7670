/*  =========================================================================
    kp-inbox - receive ketenpost messages and status reports

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================

    kp-inbox --broker ENDPOINT --broker-cert FILE --cert FILE --region-key FILE
             [--state DIR] [--out DIR | --exec CMD] [--credit N] [--count N]
             [--idle-exit MS] [--read-receipt] [--timeout MS]
             [--quiet | --verbose]

    Hands each message or status to one of three sinks, and acknowledges it
    only after that sink has it safely:
      default     one JSON line on stdout (flushed and checked)
      --out DIR   DIR/<id>.json, statuses DIR/<id>.<STATUS>.json (temp file,
                  fsync, rename, fsync of DIR)
      --exec CMD  /bin/sh -c CMD with the JSON on stdin and KP_MSG_ID,
                  KP_MSG_TYPE, KP_MSG_SENDER, KP_MSG_KIND (message|status),
                  KP_MSG_STATUS in its environment; acked only if it exits 0,
                  else kp-inbox exits 1 and the item stays queued
    With --state DIR the acknowledged ids are journalled, so nothing is
    handed out twice across restarts; without it, only within this run.
    SIGINT/SIGTERM: finish the current item, exit 0.
*/
#include "ketenpost.h"
#include "kp_util.h"
#include <sodium.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/wait.h>

#define S_EXIT_OK 0
#define S_EXIT_FAILED 1
#define S_EXIT_USAGE 2
#define S_DEFAULT_TIMEOUT 5000      //  msec to connect; per read-receipt try
#define S_DEFAULT_CREDIT 16         //  deliveries in flight
#define S_RECV_SLICE 1000           //  msec per wait when not idle-exiting

extern char **environ;

static const char *s_synopsis =
    "usage: kp-inbox --broker ENDPOINT --broker-cert FILE --cert FILE\n"
    "                --region-key FILE\n"
    "                [--state DIR] [--out DIR | --exec CMD] [--credit N]\n"
    "                [--count N] [--idle-exit MS] [--read-receipt]\n"
    "                [--timeout MS] [--quiet | --verbose]\n"
    "\n"
    "  --region-key FILE  the region's registration.pub: senders' keys are\n"
    "                 checked with it; what fails is refused (nacked)\n"
    "  default        print each message or status as one JSON line\n"
    "  --out DIR      write DIR/<id>.json (statuses DIR/<id>.<STATUS>.json)\n"
    "  --exec CMD     run /bin/sh -c CMD per item, JSON on stdin; env KP_MSG_ID,\n"
    "                 KP_MSG_TYPE, KP_MSG_SENDER, KP_MSG_KIND, KP_MSG_STATUS;\n"
    "                 acknowledged only if CMD exits 0\n"
    "  --state DIR    journal acknowledged ids: never the same message twice\n"
    "  --credit N     deliveries in flight (default 16)\n"
    "  --count N      exit 0 after N items\n"
    "  --idle-exit MS exit 0 when nothing arrived for MS\n"
    "  --read-receipt after a school notification, send feedback READ to its sender\n"
    "  --quiet        errors only on stderr; --verbose: one line per item\n"
    "\n"
    "Exit 0 done or stopped by a signal, 1 failure, 2 usage error.\n";

typedef struct {
    const char *broker;             //  broker endpoint
    const char *broker_cert;        //  broker public cert file
    const char *cert;               //  our secret cert file
    const char *region_key;         //  the region's registration.pub
    const char *state;              //  journal directory, or NULL
    const char *out;                //  output directory, or NULL
    const char *exec;               //  command per item, or NULL
    int64_t credit;                 //  deliveries in flight
    int64_t count;                  //  items to handle, 0 = no limit
    int64_t idle_exit;              //  msec idle before exit, 0 = never
    int64_t timeout;                //  msec to connect
    bool read_receipt;              //  send READ feedback after notifications
    bool quiet;                     //  errors only
    bool verbose;                   //  a line per item
} s_options_t;

//  --------------------------------------------------------------------------
//  One line on stderr about a usage error; returns the usage exit code

static int
    s_usage_error (const char *format, ...) __attribute__ ((format (printf, 1, 2)));

static int
s_usage_error (const char *format, ...)
{
    va_list args;
    va_start (args, format);
    fprintf (stderr, "kp-inbox: ");
    vfprintf (stderr, format, args);
    fprintf (stderr, " (see kp-inbox --help)\n");
    va_end (args);
    return S_EXIT_USAGE;
}

//  One line on stderr, unless quiet (errors always print)
static void
    s_say (const s_options_t *options, bool error, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

static void
s_say (const s_options_t *options, bool error, const char *format, ...)
{
    if (options->quiet && !error)
        return;
    va_list args;
    va_start (args, format);
    fprintf (stderr, "kp-inbox: ");
    vfprintf (stderr, format, args);
    fprintf (stderr, "\n");
    va_end (args);
}

//  --------------------------------------------------------------------------
//  Write all of data to fd, across short writes and EINTR; 0 or -1

static int
s_write_all (int fd, const char *data, size_t size)
{
    size_t done = 0;
    while (done < size) {
        ssize_t count = write (fd, data + done, size - done);
        if (count < 0 && errno == EINTR)
            continue;
        if (count <= 0)
            return -1;
        done += (size_t) count;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Write DIR/name durably: temp file, fsync, rename, fsync of DIR. The
//  rename makes the file appear whole or not at all; a redelivery after a
//  crash rewrites the same name. Returns 0 or -1 with one line on stderr.

static int
s_write_file (const s_options_t *options, const char *name, const char *json)
{
    char *path = zsys_sprintf ("%s/%s", options->out, name);
    char *temp = zsys_sprintf ("%s/.%s.tmp", options->out, name);
    assert (path && temp);
    int rc = -1;
    int err = 0;
    int dir_fd = -1;
    int fd = open (temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0
    ||  s_write_all (fd, json, strlen (json))
    ||  s_write_all (fd, "\n", 1)
    ||  fsync (fd)) {
        err = errno;
        goto cleanup;
    }
    if (close (fd)) {
        fd = -1;
        err = errno;
        goto cleanup;
    }
    fd = -1;
    if (rename (temp, path)) {
        err = errno;
        goto cleanup;
    }
    dir_fd = open (options->out, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0 || fsync (dir_fd)) {
        err = errno;
        goto cleanup;
    }
    rc = 0;

cleanup:
    if (fd >= 0)
        close (fd);
    if (dir_fd >= 0)
        close (dir_fd);
    if (rc) {
        unlink (temp);
        s_say (options, true, "cannot write '%s': %s", path, strerror (err));
    }
    zstr_free (&temp);
    zstr_free (&path);
    return rc;
}

//  --------------------------------------------------------------------------
//  Build the command's environment: ours without KP_MSG_*, plus the item's.
//  Built before fork: the child of a threaded process may only exec.

static char **
s_exec_environment (kp_msg_t *msg)
{
    size_t count = 0;
    while (environ [count])
        count++;
    char **envp = (char **) zmalloc ((count + 6) * sizeof (char *));
    assert (envp);
    size_t used = 0;
    for (size_t index = 0; index < count; index++)
        if (strncmp (environ [index], "KP_MSG_", 7) != 0)
            envp [used++] = strdup (environ [index]);
    bool status = kp_msg_is_status (msg);
    envp [used++] = zsys_sprintf ("KP_MSG_ID=%s", kp_msg_id (msg));
    envp [used++] = zsys_sprintf ("KP_MSG_TYPE=%s", kp_msg_type (msg));
    envp [used++] = zsys_sprintf ("KP_MSG_SENDER=%s", kp_msg_sender (msg));
    envp [used++] = zsys_sprintf ("KP_MSG_KIND=%s", status? "status": "message");
    envp [used++] = zsys_sprintf ("KP_MSG_STATUS=%s", kp_msg_status (msg));
    envp [used] = NULL;
    return envp;
}

//  --------------------------------------------------------------------------
//  Free what s_exec_environment built

static void
s_free_environment (char **envp)
{
    for (size_t index = 0; envp [index]; index++)
        free (envp [index]);
    free (envp);
}

//  --------------------------------------------------------------------------
//  Run the command for one item with its JSON on stdin. Returns 0 if it
//  exited 0, else -1 with one line on stderr.

static int
s_run_command (const s_options_t *options, kp_msg_t *msg, const char *json)
{
    int pipe_fds [2];
    if (pipe2 (pipe_fds, O_CLOEXEC)) {
        s_say (options, true, "cannot run command: %s", strerror (errno));
        return -1;
    }
    char **envp = s_exec_environment (msg);
    char *const argv [] = { (char *) "sh", (char *) "-c", (char *) options->exec, NULL };
    pid_t pid = fork ();
    if (pid < 0) {
        int err = errno;
        close (pipe_fds [0]);
        close (pipe_fds [1]);
        s_free_environment (envp);
        s_say (options, true, "cannot run command: %s", strerror (err));
        return -1;
    }
    if (pid == 0) {
        //  Only async-signal-safe calls from here on
        dup2 (pipe_fds [0], STDIN_FILENO);
        signal (SIGPIPE, SIG_DFL);
        execve ("/bin/sh", argv, envp);
        _exit (127);
    }
    close (pipe_fds [0]);
    s_free_environment (envp);
    //  The command need not read its input: EPIPE is fine (SIGPIPE ignored)
    if (s_write_all (pipe_fds [1], json, strlen (json)) == 0)
        s_write_all (pipe_fds [1], "\n", 1);
    close (pipe_fds [1]);
    int status = 0;
    while (waitpid (pid, &status, 0) < 0) {
        if (errno != EINTR) {
            s_say (options, true, "cannot wait for command: %s", strerror (errno));
            return -1;
        }
    }
    if (WIFEXITED (status) && WEXITSTATUS (status) == 0)
        return 0;
    if (WIFEXITED (status))
        s_say (options, true, "command exited with status %d for %s %s; not "
               "acknowledged, it stays queued", WEXITSTATUS (status),
               kp_msg_is_status (msg)? "status of": "message", kp_msg_id (msg));
    else
        s_say (options, true, "command killed by signal %d for %s %s; not "
               "acknowledged, it stays queued", WTERMSIG (status),
               kp_msg_is_status (msg)? "status of": "message", kp_msg_id (msg));
    return -1;
}

//  --------------------------------------------------------------------------
//  Send the read receipt of a school notification: feedback READ to its
//  sender, referring to it. Its id is derived from the notification's, so
//  that sending it again (after a crash before our ack) is the same message
//  to the broker, not a second receipt. Returns 0, or -1 if it could not be
//  delivered to the broker (the notification then stays unacked).

static int
s_send_read_receipt (const s_options_t *options, kp_client_t *client, kp_msg_t *msg)
{
    char *to = zsys_sprintf ("partner:%s", kp_msg_sender (msg));
    kp_msg_t *receipt_msg = kp_msg_new ("feedback", to);
    zstr_free (&to);
    assert (receipt_msg);
    char *seed = zsys_sprintf ("ketenpost read receipt %s", kp_msg_id (msg));
    uint8_t hash [crypto_hash_sha256_BYTES];
    crypto_hash_sha256 (hash, (const uint8_t *) seed, strlen (seed));
    zstr_free (&seed);
    char *id = kp_hex_encode (hash, KP_ID_SIZE);
    int rc = -1;
    if (kp_msg_set_id (receipt_msg, id)
    ||  kp_msg_set_reference (receipt_msg, kp_msg_id (msg))
    ||  kp_msg_set_body_json (receipt_msg, "{\"status\":\"READ\"}")) {
        s_say (options, true, "cannot build read receipt: %s",
               kp_msg_error (receipt_msg));
        goto done;
    }
    kp_receipt_t receipt;
    if (kp_client_send (client, receipt_msg, &receipt) == 0) {
        if (options->verbose)
            s_say (options, false, "read receipt %s sent for %s", receipt.id,
                   kp_msg_id (msg));
        rc = 0;
    }
    else if (strcmp (receipt.error, "TRANSPORT") == 0)
        s_say (options, true, "read receipt for %s not sent: %s", kp_msg_id (msg),
               receipt.reason);
    else {
        //  A refusal will not change on retry: say so, and go on
        s_say (options, false, "read receipt for %s refused: %s: %s", kp_msg_id (msg),
               receipt.error, receipt.reason);
        rc = 0;
    }
done:
    free (id);
    kp_msg_destroy (&receipt_msg);
    return rc;
}

//  --------------------------------------------------------------------------
//  Handle one item: hand it to the sink, read receipt, then acknowledge.
//  Returns 0, or -1 (not acknowledged; it will come again).

static int
s_handle (const s_options_t *options, kp_client_t *client, kp_msg_t *msg)
{
    char *json = kp_msg_json (msg);
    if (!json) {
        s_say (options, true, "cannot render message %s: %s", kp_msg_id (msg),
               kp_msg_error (msg));
        return -1;
    }
    int rc = 0;
    if (options->out) {
        char *name = kp_msg_is_status (msg)
            ? zsys_sprintf ("%s.%s.json", kp_msg_id (msg), kp_msg_status (msg))
            : zsys_sprintf ("%s.json", kp_msg_id (msg));
        rc = s_write_file (options, name, json);
        zstr_free (&name);
    }
    else if (options->exec) {
        fflush (stdout);            //  the command shares our stdout
        rc = s_run_command (options, msg, json);
    }
    else {
        if (printf ("%s\n", json) < 0 || fflush (stdout) || ferror (stdout)) {
            s_say (options, true, "cannot write to stdout: %s", strerror (errno));
            rc = -1;
        }
    }
    sodium_memzero (json, strlen (json));
    free (json);
    if (rc)
        return -1;
    if (options->read_receipt && !kp_msg_is_status (msg)
    &&  strcmp (kp_msg_type (msg), "school_notification") == 0
    &&  s_send_read_receipt (options, client, msg))
        return -1;
    if (kp_client_ack (client, msg))
        return -1;                  //  the library said why
    if (options->verbose) {
        if (kp_msg_is_status (msg))
            s_say (options, false, "status %s of %s from %s", kp_msg_status (msg),
                   kp_msg_id (msg), kp_msg_sender (msg));
        else
            s_say (options, false, "%s %s from %s", kp_msg_type (msg), kp_msg_id (msg),
                   kp_msg_sender (msg));
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Parse the command line into options; returns -1 if fine, else an exit
//  code
static int
s_parse (int argc, char *argv [], s_options_t *options)
{
    static struct option table [] = {
        { "broker", required_argument, NULL, 'b' },
        { "broker-cert", required_argument, NULL, 'B' },
        { "cert", required_argument, NULL, 'c' },
        { "region-key", required_argument, NULL, 'K' },
        { "state", required_argument, NULL, 's' },
        { "out", required_argument, NULL, 'o' },
        { "exec", required_argument, NULL, 'e' },
        { "credit", required_argument, NULL, 'C' },
        { "count", required_argument, NULL, 'n' },
        { "idle-exit", required_argument, NULL, 'I' },
        { "read-receipt", no_argument, NULL, 'r' },
        { "timeout", required_argument, NULL, 'w' },
        { "quiet", no_argument, NULL, 'q' },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *credit = NULL, *count = NULL, *idle_exit = NULL, *timeout = NULL;
    opterr = 0;
    int option;
    while ((option = getopt_long (argc, argv, "", table, NULL)) != -1) {
        switch (option) {
            case 'b': options->broker = optarg; break;
            case 'B': options->broker_cert = optarg; break;
            case 'c': options->cert = optarg; break;
            case 'K': options->region_key = optarg; break;
            case 's': options->state = optarg; break;
            case 'o': options->out = optarg; break;
            case 'e': options->exec = optarg; break;
            case 'C': credit = optarg; break;
            case 'n': count = optarg; break;
            case 'I': idle_exit = optarg; break;
            case 'r': options->read_receipt = true; break;
            case 'w': timeout = optarg; break;
            case 'q': options->quiet = true; break;
            case 'v': options->verbose = true; break;
            case 'h':
                fputs (s_synopsis, stdout);
                return S_EXIT_OK;
            default:
                return s_usage_error ("unknown option or missing value: %s",
                                      argv [optind - 1]);
        }
    }
    if (optind < argc)
        return s_usage_error ("unexpected argument '%s'", argv [optind]);
    if (!options->broker)
        return s_usage_error ("missing --broker");
    if (!options->broker_cert)
        return s_usage_error ("missing --broker-cert");
    if (!options->cert)
        return s_usage_error ("missing --cert");
    if (!options->region_key)
        return s_usage_error ("missing --region-key (the region's registration.pub)");
    if (options->out && options->exec)
        return s_usage_error ("give at most one of --out and --exec");
    if (options->quiet && options->verbose)
        return s_usage_error ("give at most one of --quiet and --verbose");
    if (options->out && !*options->out)
        return s_usage_error ("--out needs a directory");
    if (options->exec && !*options->exec)
        return s_usage_error ("--exec needs a command");
    if (options->state && !*options->state)
        return s_usage_error ("--state needs a directory");
    options->credit = S_DEFAULT_CREDIT;
    if (credit && (options->credit = kp_parse_positive (credit, 100000)) < 0)
        return s_usage_error ("--credit must be 1 to 100000: '%s'", credit);
    if (count && (options->count = kp_parse_positive (count, INT64_MAX / 2)) < 0)
        return s_usage_error ("--count must be a positive number: '%s'", count);
    if (idle_exit && (options->idle_exit = kp_parse_positive (idle_exit, INT32_MAX)) < 0)
        return s_usage_error ("--idle-exit must be milliseconds, at least 1: '%s'",
                              idle_exit);
    options->timeout = S_DEFAULT_TIMEOUT;
    if (timeout && (options->timeout = kp_parse_positive (timeout, 3600000)) < 0)
        return s_usage_error ("--timeout must be milliseconds, 1 to 3600000: '%s'",
                              timeout);
    return -1;
}

//  --------------------------------------------------------------------------
//  Connect, then hand each item to its sink and acknowledge it, until a
//  count, an idle time or a signal ends the run

int
main (int argc, char *argv [])
{
    zsys_set_logstream (stderr);
    zsys_set_logident ("kp-inbox");
    s_options_t options = { 0 };
    int rc = s_parse (argc, argv, &options);
    if (rc >= 0)
        return rc;
    kp_verbose = options.verbose;
    //  Write errors on stdout or to a command that does not read its input
    //  are handled where they happen
    signal (SIGPIPE, SIG_IGN);
    if (sodium_init () < 0) {
        s_say (&options, true, "libsodium cannot start");
        return S_EXIT_FAILED;
    }
    if (options.out && zsys_dir_create ("%s", options.out)) {
        s_say (&options, true, "cannot create '%s': %s", options.out, strerror (errno));
        return S_EXIT_FAILED;
    }
    //  The library prints its own line if it cannot connect. CZMQ's signal
    //  handler (installed with the first socket) sets zsys_interrupted on
    //  SIGINT/SIGTERM; we check it between items.
    kp_client_t *client = kp_client_new (options.broker, options.broker_cert,
                                         options.cert, (int) options.timeout);
    if (!client)
        return S_EXIT_FAILED;
    kp_client_set_send_timeout (client, (int) options.timeout, 3);
    rc = S_EXIT_FAILED;
    if (kp_client_set_region_key (client, options.region_key))
        goto done;
    if (options.state) {
        if (kp_client_set_state_dir (client, options.state))
            goto done;
    }
    else if (options.verbose)
        s_say (&options, false,
               "no --state: duplicates are suppressed within this run only");
    if (kp_client_receive (client, (unsigned) options.credit))
        goto done;
    if (options.verbose)
        s_say (&options, false, "connected as %s (%s)", kp_client_partner (client),
               kp_client_role (client));

    int64_t handled = 0;
    int64_t last_item = kp_mono_ms ();
    while (!zsys_interrupted) {
        if (options.count && handled >= options.count)
            break;
        int wait = S_RECV_SLICE;
        if (options.idle_exit) {
            int64_t left = last_item + options.idle_exit - kp_mono_ms ();
            if (left <= 0)
                break;
            wait = left < S_RECV_SLICE? (int) left: S_RECV_SLICE;
        }
        kp_msg_t *msg = kp_client_recv (client, wait);
        if (!msg && *kp_client_failure (client)) {
            s_say (&options, true, "broker refused us: %s", kp_client_failure (client));
            goto done;
        }
        if (!msg)
            continue;
        int handled_rc = s_handle (&options, client, msg);
        kp_msg_destroy (&msg);
        if (handled_rc)
            goto done;
        handled++;
        last_item = kp_mono_ms ();
    }
    rc = S_EXIT_OK;

done:
    kp_client_destroy (&client);
    return rc;
}
