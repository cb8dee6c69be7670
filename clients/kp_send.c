/*  =========================================================================
    kp-send - send one ketenpost message and print its receipt as JSON

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================

    kp-send --broker ENDPOINT --broker-cert FILE --cert FILE --region-key FILE
            --type TYPE --to ADDRESS (--body JSON | --body-file FILE|-)
            [--id HEX] [--reference HEX] [--purpose CODE] [--user ID]
            [--on-behalf-of ID] [--subject HEX] [--ttl SECONDS]
            [--timeout MS] [--verbose]

    Prints the broker's receipt as one JSON line on stdout and exits 0.
    On refusal or failure prints nothing on stdout, one line on stderr, and
    exits 1; on a usage error exits 2.
*/
#include "ketenpost.h"
#include "kp_util.h"
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>

#define S_EXIT_OK 0
#define S_EXIT_FAILED 1
#define S_EXIT_USAGE 2
#define S_DEFAULT_TIMEOUT 5000      //  msec to connect, and per send try
#define S_SEND_TRIES 3
#define S_BODY_MAX (16 * 1024 * 1024)   //  longest body JSON we read
#define S_TTL_MAX (366LL * 24 * 3600)   //  a year, in seconds

static const char *s_synopsis =
    "usage: kp-send --broker ENDPOINT --broker-cert FILE --cert FILE\n"
    "               --region-key FILE\n"
    "               --type TYPE --to ADDRESS (--body JSON | --body-file FILE|-)\n"
    "               [--id HEX] [--reference HEX] [--purpose CODE] [--user ID]\n"
    "               [--on-behalf-of ID] [--subject HEX] [--ttl SECONDS]\n"
    "               [--timeout MS] [--verbose]\n"
    "\n"
    "  --region-key FILE  the region's registration.pub: the body is sealed only\n"
    "           to a recipient whose keys it vouches for\n"
    "  TYPE     signal | referral | school_notification | feedback\n"
    "  ADDRESS  municipality:GM0153 | school:12AB00 | partner:ID\n"
    "  JSON     the body in the type's schema (proto/kp_body.proto), field names\n"
    "           as in the .proto\n"
    "\n"
    "Prints the receipt as one JSON line. Exit 0 accepted, 1 refused or failed,\n"
    "2 usage error.\n";

//  --------------------------------------------------------------------------
//  One line on stderr about a usage error; returns the usage exit code

static int
    s_usage_error (const char *format, ...) __attribute__ ((format (printf, 1, 2)));

static int
s_usage_error (const char *format, ...)
{
    va_list args;
    va_start (args, format);
    fprintf (stderr, "kp-send: ");
    vfprintf (stderr, format, args);
    fprintf (stderr, " (see kp-send --help)\n");
    va_end (args);
    return S_EXIT_USAGE;
}

//  --------------------------------------------------------------------------
//  Read a whole file, or stdin for "-", into a new string; NULL on error
//  (errno set; EFBIG if over the limit)

static char *
s_read_body (const char *path)
{
    FILE *file = strcmp (path, "-") == 0? stdin: fopen (path, "r");
    if (!file)
        return NULL;
    char *text = NULL;
    size_t size = 0;
    FILE *stream = open_memstream (&text, &size);
    assert (stream);
    char buffer [8192];
    size_t count;
    bool too_big = false;
    while ((count = fread (buffer, 1, sizeof buffer, file)) > 0) {
        if (size + count > S_BODY_MAX) {
            too_big = true;
            break;
        }
        fwrite (buffer, 1, count, stream);
        fflush (stream);
    }
    int err = ferror (file)? errno: 0;
    if (file != stdin)
        fclose (file);
    fclose (stream);
    if (too_big || err) {
        free (text);
        errno = too_big? EFBIG: err;
        return NULL;
    }
    if (memchr (text, 0, size)) {
        free (text);
        errno = EINVAL;
        return NULL;
    }
    return text;
}

//  --------------------------------------------------------------------------
//  Parse the arguments, build the message, send it, print the receipt

int
main (int argc, char *argv [])
{
    zsys_set_logstream (stderr);
    zsys_set_logident ("kp-send");
    static struct option options [] = {
        { "broker", required_argument, NULL, 'b' },
        { "broker-cert", required_argument, NULL, 'B' },
        { "cert", required_argument, NULL, 'c' },
        { "region-key", required_argument, NULL, 'K' },
        { "type", required_argument, NULL, 't' },
        { "to", required_argument, NULL, 'r' },
        { "body", required_argument, NULL, 'j' },
        { "body-file", required_argument, NULL, 'f' },
        { "id", required_argument, NULL, 'i' },
        { "reference", required_argument, NULL, 'R' },
        { "purpose", required_argument, NULL, 'p' },
        { "user", required_argument, NULL, 'u' },
        { "on-behalf-of", required_argument, NULL, 'o' },
        { "subject", required_argument, NULL, 's' },
        { "ttl", required_argument, NULL, 'T' },
        { "timeout", required_argument, NULL, 'w' },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *broker = NULL, *broker_cert = NULL, *cert = NULL, *region_key = NULL;
    const char *type = NULL, *to = NULL, *body = NULL, *body_file = NULL;
    const char *id = NULL, *reference = NULL, *purpose = NULL, *user = NULL;
    const char *on_behalf_of = NULL, *subject = NULL, *ttl_text = NULL;
    const char *timeout_text = NULL;
    opterr = 0;
    int option;
    while ((option = getopt_long (argc, argv, "", options, NULL)) != -1) {
        switch (option) {
            case 'b': broker = optarg; break;
            case 'B': broker_cert = optarg; break;
            case 'c': cert = optarg; break;
            case 'K': region_key = optarg; break;
            case 't': type = optarg; break;
            case 'r': to = optarg; break;
            case 'j': body = optarg; break;
            case 'f': body_file = optarg; break;
            case 'i': id = optarg; break;
            case 'R': reference = optarg; break;
            case 'p': purpose = optarg; break;
            case 'u': user = optarg; break;
            case 'o': on_behalf_of = optarg; break;
            case 's': subject = optarg; break;
            case 'T': ttl_text = optarg; break;
            case 'w': timeout_text = optarg; break;
            case 'v': kp_verbose = 1; break;
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
    if (!broker)
        return s_usage_error ("missing --broker");
    if (!broker_cert)
        return s_usage_error ("missing --broker-cert");
    if (!cert)
        return s_usage_error ("missing --cert");
    if (!region_key)
        return s_usage_error ("missing --region-key (the region's registration.pub)");
    if (!type)
        return s_usage_error ("missing --type");
    if (!to)
        return s_usage_error ("missing --to");
    if (!body == !body_file)
        return s_usage_error ("give exactly one of --body and --body-file");
    int64_t ttl = 0;
    if (ttl_text && (ttl = kp_parse_positive (ttl_text, S_TTL_MAX)) < 0)
        return s_usage_error ("--ttl must be a number of seconds, 1 to a year: '%s'",
                              ttl_text);
    int64_t timeout = S_DEFAULT_TIMEOUT;
    if (timeout_text && (timeout = kp_parse_positive (timeout_text, 3600000)) < 0)
        return s_usage_error ("--timeout must be milliseconds, 1 to 3600000: '%s'",
                              timeout_text);

    kp_msg_t *msg = kp_msg_new (type, to);
    if (!msg)
        return s_usage_error ("unknown --type '%s' (signal, referral, "
                              "school_notification, feedback)", type);
    int rc = S_EXIT_USAGE;
    char *body_text = NULL;
    kp_client_t *client = NULL;
    if ((id && kp_msg_set_id (msg, id))
    ||  (reference && kp_msg_set_reference (msg, reference))
    ||  (subject && kp_msg_set_subject (msg, subject))) {
        fprintf (stderr, "kp-send: %s (see kp-send --help)\n", kp_msg_error (msg));
        goto done;
    }
    if (purpose)
        kp_msg_set_purpose (msg, purpose);
    if (user)
        kp_msg_set_acting_user (msg, user);
    if (on_behalf_of)
        kp_msg_set_on_behalf_of (msg, on_behalf_of);
    if (ttl)
        kp_msg_set_expires_at (msg, kp_now_ms () + ttl * 1000);

    rc = S_EXIT_FAILED;
    if (body_file) {
        body_text = s_read_body (body_file);
        if (!body_text) {
            fprintf (stderr, "kp-send: cannot read body from '%s': %s\n", body_file,
                     errno == EINVAL? "it holds a NUL byte": strerror (errno));
            goto done;
        }
    }
    if (kp_msg_set_body_json (msg, body_text? body_text: body)) {
        fprintf (stderr, "kp-send: invalid %s: %s\n", type, kp_msg_error (msg));
        goto done;
    }
    //  The library prints its own line if it cannot connect
    client = kp_client_new (broker, broker_cert, cert, (int) timeout);
    if (!client || kp_client_set_region_key (client, region_key))
        goto done;
    kp_client_set_send_timeout (client, (int) timeout, S_SEND_TRIES);
    kp_receipt_t receipt;
    if (kp_client_send (client, msg, &receipt) == 0) {
        char *json = kp_receipt_json (&receipt);
        bool written = printf ("%s\n", json) > 0 && fflush (stdout) == 0;
        free (json);
        if (written)
            rc = S_EXIT_OK;
        else
            fprintf (stderr, "kp-send: accepted as %s, but cannot write the "
                     "receipt: %s\n", receipt.id, strerror (errno));
    }
    else if (strcmp (receipt.error, "TRANSPORT") == 0)
        fprintf (stderr, "kp-send: failed: %s; resend with --id %s\n",
                 receipt.reason, receipt.id);
    else if (strcmp (receipt.error, "UNTRUSTED") == 0)
        fprintf (stderr, "kp-send: not sent: %s\n", receipt.reason);
    else if (strcmp (receipt.error, "INVALID") == 0)
        fprintf (stderr, "kp-send: invalid %s: %s\n", type, receipt.reason);
    else
        fprintf (stderr, "kp-send: refused: %s: %s\n", receipt.error, receipt.reason);

done:
    kp_client_destroy (&client);
    free (body_text);
    kp_msg_destroy (&msg);
    return rc;
}
