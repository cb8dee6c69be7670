/*  =========================================================================
    ketenpostd - the ketenpost broker daemon

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
    ketenpostd --config FILE [flags]: loads the ZPL config, applies the
    flags over it, starts the kp_server actor and waits for SIGINT/SIGTERM
    (clean stop) or SIGHUP (reload the partner registry). Exit codes: 0 ok,
    1 runtime failure, 2 usage error.
*/
#include "kp_config.h"
#include "kp_server.h"
#include <getopt.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>

static volatile sig_atomic_t s_hangup = 0;

static void
s_on_hangup (int signum)
{
    (void) signum;
    s_hangup = 1;
}

static void
s_usage (FILE *stream)
{
    fprintf (stream,
        "usage: ketenpostd --config FILE [options]\n"
        "  -c, --config FILE      ZPL configuration (see docs/CONFIG.md)\n"
        "  -e, --endpoint EP      override bind/endpoint\n"
        "  -r, --region DIR       override security/region\n"
        "  -d, --data-dir DIR     override log/dir\n"
        "  -v, --verbose          per-message debug logging\n"
        "  -h, --help             this text\n"
        "      --version          print the version\n"
        "SIGHUP reloads the partner registry; SIGTERM stops cleanly.\n");
}

//  Write the bound endpoint to DATA/endpoint (temp + rename) so operators
//  and test fixtures can find an ephemeral port
static int
s_write_endpoint (const char *data_dir, const char *endpoint)
{
    char *path = zsys_sprintf ("%s/endpoint", data_dir);
    char *temp = zsys_sprintf ("%s/.endpoint.tmp", data_dir);
    int rc = -1;
    FILE *file = fopen (temp, "w");
    if (file) {
        bool written = fprintf (file, "%s\n", endpoint) > 0;
        if (fclose (file) == 0 && written && rename (temp, path) == 0)
            rc = 0;
    }
    if (rc)
        zsys_error ("ketenpostd: cannot write %s: %s", path, strerror (errno));
    free (temp);
    free (path);
    return rc;
}

int
main (int argc, char *argv [])
{
    static const struct option options [] = {
        { "config", required_argument, NULL, 'c' },
        { "endpoint", required_argument, NULL, 'e' },
        { "region", required_argument, NULL, 'r' },
        { "data-dir", required_argument, NULL, 'd' },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 }
    };
    //  The delivery state lives in a few large arrays that grow and shrink
    //  with the backlog: keep them out of the heap (mmap from 128 KiB on,
    //  not glibc's adaptive threshold, which rises to 32 MiB), so that
    //  what a drain frees goes back to the system (docs/PERFORMANCE.md)
    mallopt (M_MMAP_THRESHOLD, 128 * 1024);
    const char *config_path = NULL;
    const char *overrides [3][2] = {
        { "bind/endpoint", NULL }, { "security/region", NULL }, { "log/dir", NULL }
    };
    bool verbose = false;
    int option;
    while ((option = getopt_long (argc, argv, "c:e:r:d:vh", options, NULL)) != -1) {
        switch (option) {
            case 'c': config_path = optarg; break;
            case 'e': overrides [0][1] = optarg; break;
            case 'r': overrides [1][1] = optarg; break;
            case 'd': overrides [2][1] = optarg; break;
            case 'v': verbose = true; break;
            case 'h': s_usage (stdout); return 0;
            case 'V': printf ("ketenpostd %s\n", KP_VERSION); return 0;
            default: s_usage (stderr); return 2;
        }
    }
    if (optind < argc || !config_path) {
        fprintf (stderr, "ketenpostd: %s\n", config_path? "unexpected argument":
                                                          "--config FILE is required");
        s_usage (stderr);
        return 2;
    }
    zsys_init ();
    zsys_set_logident ("ketenpostd");
    zsys_set_logstream (stderr);
    kp_config_t *config = kp_config_load (config_path);
    if (!config)
        return 1;
    for (int index = 0; index < 3; index++)
        if (overrides [index][1]
        &&  kp_config_set (config, overrides [index][0], overrides [index][1])) {
            kp_config_destroy (&config);
            return 2;
        }
    if (kp_config_check (config)) {
        kp_config_destroy (&config);
        return 1;
    }
    if (verbose)
        config->verbose = 1;
    kp_verbose = config->verbose;
    if (config->logsystem)
        zsys_set_logsystem (true);

    struct sigaction action;
    memset (&action, 0, sizeof action);
    action.sa_handler = s_on_hangup;
    sigaction (SIGHUP, &action, NULL);

    //  The server thread inherits a mask that blocks SIGHUP, so the signal
    //  always reaches this thread and never interrupts the server's poll
    sigset_t hangup, previous;
    sigemptyset (&hangup);
    sigaddset (&hangup, SIGHUP);
    pthread_sigmask (SIG_BLOCK, &hangup, &previous);
    int exit_code = 0;
    zactor_t *server = zactor_new (kp_server, config);
    assert (server);
    pthread_sigmask (SIG_SETMASK, &previous, NULL);
    zstr_send (server, "ENDPOINT");
    char *endpoint = zstr_recv (server);
    if (!endpoint || !*endpoint
    ||  s_write_endpoint (config->data_dir, endpoint))
        exit_code = 1;
    zstr_free (&endpoint);

    zpoller_t *poller = zpoller_new (server, NULL);
    assert (poller);
    while (exit_code == 0 && !zsys_interrupted) {
        void *which = zpoller_wait (poller, 200);
        if (which == server) {
            char *message = zstr_recv (server);
            if (message && streq (message, "FATAL"))
                exit_code = 1;
            zstr_free (&message);
        }
        //  A signal interrupts the wait and marks the poller terminated;
        //  only SIGINT and SIGTERM (zsys_interrupted) stop the broker
        if (s_hangup) {
            s_hangup = 0;
            zsys_notice ("ketenpostd: SIGHUP: reloading the partner registry");
            zstr_send (server, "RELOAD");
            char *reply = zstr_recv (server);
            zstr_free (&reply);
        }
    }
    zpoller_destroy (&poller);
    zactor_destroy (&server);
    kp_config_destroy (&config);
    return exit_code;
}
