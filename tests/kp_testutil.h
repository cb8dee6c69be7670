/*  =========================================================================
    kp_testutil - temp dirs, runtime-generated regions, a real broker fixture

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
@header
    Test helpers. A kp_test_region_t is a temporary directory holding a
    region made at runtime (fresh keys every time) with the demo partners:

        police-oost     police        (no addresses)
        vt-twente       veilig_thuis  the 14 Twente municipalities
        lt-enschede     local_team    GM0153
        lp-enschede     leerplicht    GM0153
        school-12ab00   school        12AB00, covenant member
        school-34cd00   school        34CD00, not a covenant member
        lt-hengelo      local_team    GM0164

    kp_test_broker_start runs the real ketenpostd from the build tree on
    tcp://127.0.0.1 with an ephemeral port and waits (polling, with a
    deadline) until it is ready; the endpoint is then in self->endpoint.
@end
*/
#ifndef KP_TESTUTIL_H_INCLUDED
#define KP_TESTUTIL_H_INCLUDED

#include <sys/types.h>
#include "kp_region.h"
#include "ketenpost.h"

typedef struct {
    char *dir;                      //  the temporary directory
    char *region;                   //  dir/region
    char *data;                     //  dir/data (the broker's log)
    char *config;                   //  dir/ketenpostd.cfg
    char *broker_cert;              //  dir/region/broker
    char *region_key;               //  dir/region/registration.pub
    char *endpoint;                 //  after start: tcp://127.0.0.1:PORT
    pid_t pid;                      //  broker pid, 0 when not running
} kp_test_region_t;

//  Make a temporary directory; caller frees the path.
char *
    kp_test_tempdir (void);

//  Remove a directory tree.
void
    kp_test_rmtree (const char *dir);

//  New region with the demo partners in a new temp dir. Asserts on failure.
kp_test_region_t *
    kp_test_region_new (void);

//  Stop the broker if running, remove the temp dir, free. Idempotent.
void
    kp_test_region_destroy (kp_test_region_t **self_p);

//  Write the broker config (extra is appended verbatim ZPL, may be NULL) and
//  start ketenpostd. Returns 0 when ready, -1 if it exited or timed out.
int
    kp_test_broker_start (kp_test_region_t *self, const char *extra_config);

//  Send sig (SIGTERM for a clean stop, SIGKILL for a crash) and reap it.
//  Returns the exit status as waitpid gives it.
int
    kp_test_broker_stop (kp_test_region_t *self, int sig);

//  Path of partner id's secret cert; caller frees.
char *
    kp_test_cert (kp_test_region_t *self, const char *id);

//  Connect a client as partner id, trusting the region's registration key.
//  Asserts on failure.
kp_client_t *
    kp_test_client (kp_test_region_t *self, const char *id);

//  Run a shell command line with a deadline of timeout_ms; capture stdout
//  and stderr into new strings (may pass NULL). Returns the exit code, or
//  -1 if it timed out (and was killed) or could not run.
int
    kp_test_run (const char *command, int timeout_ms, char **out_p, char **err_p);

//  A school day two days from now (UTC), "YYYY-MM-DD": school notifications
//  sent in tests must not be over before they are delivered. Caller frees.
char *
    kp_test_school_day (void);

//  Path of a program in the build tree ("broker/ketenpostd"); caller frees.
char *
    kp_test_program (const char *relative);

#endif
