/*  =========================================================================
    kp_testutil - temp dirs, runtime-generated regions, a real broker fixture

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
*/
#include "kp_testutil.h"
#include <criterion/criterion.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <sys/wait.h>

static char *s_slurp (const char *path);

#define S_START_DEADLINE 15000      //  msec for the broker to become ready

//  --------------------------------------------------------------------------
//  Make a temporary directory; caller frees the path

char *
kp_test_tempdir (void)
{
    char *dir = strdup ("/tmp/kp-test-XXXXXX");
    cr_assert_not_null (mkdtemp (dir), "mkdtemp: %s", strerror (errno));
    return dir;
}

static int
s_remove_entry (const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void) sb; (void) flag; (void) ftw;
    return remove (path);
}

//  --------------------------------------------------------------------------
//  Remove a directory tree

void
kp_test_rmtree (const char *dir)
{
    if (dir)
        nftw (dir, s_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

typedef struct {
    const char *id;
    Kp__Wire__Role role;
    const char *addresses [15];
    bool covenant;
} s_demo_partner_t;

static const s_demo_partner_t s_demo_partners [] = {
    { "police-oost", KP__WIRE__ROLE__POLICE, { NULL }, false },
    { "vt-twente", KP__WIRE__ROLE__VEILIG_THUIS,
      { "GM0141", "GM0147", "GM1774", "GM0153", "GM0158", "GM0163", "GM0164",
        "GM1735", "GM0168", "GM0173", "GM1742", "GM0183", "GM1700", "GM0189" },
      false },
    { "lt-enschede", KP__WIRE__ROLE__LOCAL_TEAM, { "GM0153" }, false },
    { "lp-enschede", KP__WIRE__ROLE__LEERPLICHT, { "GM0153" }, false },
    { "school-12ab00", KP__WIRE__ROLE__SCHOOL, { "12AB00" }, true },
    { "school-34cd00", KP__WIRE__ROLE__SCHOOL, { "34CD00" }, false },
    { "lt-hengelo", KP__WIRE__ROLE__LOCAL_TEAM, { "GM0164" }, false },
};

//  --------------------------------------------------------------------------
//  New region with the demo partners in a new temp dir

kp_test_region_t *
kp_test_region_new (void)
{
    kp_test_region_t *self = (kp_test_region_t *) zmalloc (sizeof (kp_test_region_t));
    cr_assert_not_null (self);
    cr_assert_geq (sodium_init (), 0);
    self->dir = kp_test_tempdir ();
    self->region = zsys_sprintf ("%s/region", self->dir);
    self->data = zsys_sprintf ("%s/data", self->dir);
    self->config = zsys_sprintf ("%s/ketenpostd.cfg", self->dir);
    self->broker_cert = zsys_sprintf ("%s/region/broker", self->dir);
    self->region_key = zsys_sprintf ("%s/region/registration.pub", self->dir);
    cr_assert_eq (kp_region_init (self->region, "test-broker"), 0);
    for (size_t index = 0; index < sizeof s_demo_partners / sizeof s_demo_partners [0];
         index++) {
        const s_demo_partner_t *partner = s_demo_partners + index;
        cr_assert_eq (kp_region_add (self->region, partner->id, partner->role,
                                     "Demo organisation", partner->addresses,
                                     partner->covenant, NULL), 0,
                      "cannot add %s", partner->id);
    }
    return self;
}

//  --------------------------------------------------------------------------
//  Stop the broker if running, remove the temp dir, free

void
kp_test_region_destroy (kp_test_region_t **self_p)
{
    assert (self_p);
    kp_test_region_t *self = *self_p;
    if (!self)
        return;
    if (self->pid) {
        //  A broker that crashed, or that a sanitizer complained about, fails
        //  the test that ran it, with the broker's own log
        int status = kp_test_broker_stop (self, SIGTERM);
        char *log_path = zsys_sprintf ("%s/broker.log", self->dir);
        char *log_text = s_slurp (log_path);
        bool clean = WIFEXITED (status) && WEXITSTATUS (status) == 0
                  && !(log_text && (strstr (log_text, "Sanitizer")
                                ||  strstr (log_text, "runtime error")));
        cr_expect (clean, "ketenpostd did not stop cleanly (status %d):\n%s", status,
                   log_text? log_text: "");
        zstr_free (&log_text);
        zstr_free (&log_path);
    }
    if (!getenv ("KP_TEST_KEEP"))
        kp_test_rmtree (self->dir);
    zstr_free (&self->endpoint);
    zstr_free (&self->region_key);
    zstr_free (&self->broker_cert);
    zstr_free (&self->config);
    zstr_free (&self->data);
    zstr_free (&self->region);
    zstr_free (&self->dir);
    free (self);
    *self_p = NULL;
}

//  Read a whole small file into a new string, or NULL
static char *
s_slurp (const char *path)
{
    FILE *file = fopen (path, "r");
    if (!file)
        return NULL;
    char *text = NULL;
    size_t size = 0;
    FILE *stream = open_memstream (&text, &size);
    char buffer [4096];
    size_t count;
    while ((count = fread (buffer, 1, sizeof buffer, file)) > 0)
        fwrite (buffer, 1, count, stream);
    fclose (stream);
    fclose (file);
    return text;
}

//  --------------------------------------------------------------------------
//  Write the config and start ketenpostd; 0 when ready, -1 if not

static int
s_broker_spawn (kp_test_region_t *self, const char *endpoint, const char *extra_config)
{
    FILE *file = fopen (self->config, "w");
    cr_assert_not_null (file);
    fprintf (file,
             "security\n    mechanism = curve\n    region = %s\n"
             "bind\n    endpoint = %s\n"
             "log\n    dir = %s\n%s",
             self->region, endpoint, self->data, extra_config? extra_config: "");
    fclose (file);

    char *ready_file = zsys_sprintf ("%s/endpoint", self->data);
    unlink (ready_file);
    char *program = kp_test_program ("broker/ketenpostd");
    char *log_path = zsys_sprintf ("%s/broker.log", self->dir);
    pid_t pid = fork ();
    cr_assert (pid >= 0);
    if (pid == 0) {
        int log_fd = open (log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (log_fd >= 0) {
            dup2 (log_fd, STDOUT_FILENO);
            dup2 (log_fd, STDERR_FILENO);
        }
        execl (program, program, "--config", self->config, (char *) NULL);
        _exit (127);
    }
    self->pid = pid;
    int rc = -1;
    int64_t deadline = kp_mono_ms () + S_START_DEADLINE;
    while (kp_mono_ms () < deadline) {
        char *text = s_slurp (ready_file);
        if (text && *text) {
            text [strcspn (text, "\n")] = 0;
            zstr_free (&self->endpoint);
            self->endpoint = text;
            rc = 0;
            break;
        }
        zstr_free (&text);
        int status;
        if (waitpid (pid, &status, WNOHANG) == pid) {
            self->pid = 0;
            break;
        }
        poll (NULL, 0, 10);     //  yield between checks of the ready file
    }
    if (rc == -1 && self->pid) {
        kill (self->pid, SIGKILL);
        waitpid (self->pid, NULL, 0);
        self->pid = 0;
    }
    if (rc == -1) {
        char *log_text = s_slurp (log_path);
        fprintf (stderr, "ketenpostd did not start:\n%s\n", log_text? log_text: "");
        zstr_free (&log_text);
    }
    zstr_free (&log_path);
    zstr_free (&program);
    zstr_free (&ready_file);
    return rc;
}

//  The broker gets a random port below the kernel's ephemeral range
//  (32768-60999), not the first free one from 49152: tests that restart the
//  broker need their port to stay free meanwhile, other tests running in
//  parallel would take 49152, and so might a reconnecting client's own
//  source port (TCP self-connect). A restart binds the same port again, so
//  connected clients find the broker there.

int
kp_test_broker_start (kp_test_region_t *self, const char *extra_config)
{
    assert (self);
    assert (self->pid == 0);
    if (self->endpoint)
        return s_broker_spawn (self, self->endpoint, extra_config);
    for (int attempt = 0; attempt < 5; attempt++) {
        char *endpoint = zsys_sprintf ("tcp://127.0.0.1:%u",
                                       20000 + randombytes_uniform (12000));
        int rc = s_broker_spawn (self, endpoint, extra_config);
        zstr_free (&endpoint);
        if (rc == 0)
            return 0;
    }
    return -1;
}

//  --------------------------------------------------------------------------
//  Signal the broker and reap it; returns the waitpid status

int
kp_test_broker_stop (kp_test_region_t *self, int sig)
{
    assert (self);
    if (!self->pid)
        return -1;
    kill (self->pid, sig);
    int status = 0;
    waitpid (self->pid, &status, 0);
    self->pid = 0;
    return status;
}

//  --------------------------------------------------------------------------
//  Path of partner id's secret cert; caller frees

char *
kp_test_cert (kp_test_region_t *self, const char *id)
{
    assert (self);
    return kp_region_secret_path (self->region, id);
}

//  --------------------------------------------------------------------------
//  Connect a client as partner id

kp_client_t *
kp_test_client (kp_test_region_t *self, const char *id)
{
    assert (self);
    assert (self->endpoint);
    char *cert = kp_test_cert (self, id);
    kp_client_t *client = kp_client_new (self->endpoint, self->broker_cert, cert, 5000);
    cr_assert_not_null (client, "client %s cannot connect", id);
    cr_assert_eq (kp_client_set_region_key (client, self->region_key), 0,
                  "client %s does not take the region key", id);
    zstr_free (&cert);
    return client;
}

//  Drain fd into stream; returns false at EOF
static bool
s_drain (int fd, FILE *stream)
{
    char buffer [4096];
    ssize_t count = read (fd, buffer, sizeof buffer);
    if (count <= 0)
        return false;
    if (stream)
        fwrite (buffer, 1, (size_t) count, stream);
    return true;
}

//  --------------------------------------------------------------------------
//  Run a shell command with a deadline, capturing its output

int
kp_test_run (const char *command, int timeout_ms, char **out_p, char **err_p)
{
    assert (command);
    int out_pipe [2], err_pipe [2];
    if (pipe (out_pipe) || pipe (err_pipe))
        return -1;
    pid_t pid = fork ();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2 (out_pipe [1], STDOUT_FILENO);
        dup2 (err_pipe [1], STDERR_FILENO);
        close (out_pipe [0]);
        close (err_pipe [0]);
        execl ("/bin/sh", "sh", "-c", command, (char *) NULL);
        _exit (127);
    }
    close (out_pipe [1]);
    close (err_pipe [1]);
    char *out_text = NULL, *err_text = NULL;
    size_t out_size = 0, err_size = 0;
    FILE *out_stream = open_memstream (&out_text, &out_size);
    FILE *err_stream = open_memstream (&err_text, &err_size);
    struct pollfd items [2] = {
        { out_pipe [0], POLLIN, 0 }, { err_pipe [0], POLLIN, 0 }
    };
    int open_count = 2;
    bool timed_out = false;
    int64_t deadline = kp_mono_ms () + timeout_ms;
    while (open_count > 0) {
        int64_t left = deadline - kp_mono_ms ();
        if (left <= 0) {
            timed_out = true;
            break;
        }
        if (poll (items, 2, (int) left) < 0 && errno != EINTR)
            break;
        for (int index = 0; index < 2; index++) {
            if (items [index].fd >= 0 && items [index].revents) {
                if (!s_drain (items [index].fd, index? err_stream: out_stream)) {
                    close (items [index].fd);
                    items [index].fd = -1;
                    open_count--;
                }
            }
        }
    }
    for (int index = 0; index < 2; index++)
        if (items [index].fd >= 0)
            close (items [index].fd);
    if (timed_out)
        kill (pid, SIGKILL);
    int status = 0;
    waitpid (pid, &status, 0);
    fclose (out_stream);
    fclose (err_stream);
    if (out_p)
        *out_p = out_text;
    else
        free (out_text);
    if (err_p)
        *err_p = err_text;
    else
        free (err_text);
    if (timed_out || !WIFEXITED (status))
        return -1;
    return WEXITSTATUS (status);
}

//  --------------------------------------------------------------------------
//  Path of a program in the build tree; caller frees

char *
kp_test_program (const char *relative)
{
    return zsys_sprintf ("%s/%s", KP_BIN_DIR, relative);
}

//  --------------------------------------------------------------------------
//  A school day two days from now, YYYY-MM-DD; caller frees

char *
kp_test_school_day (void)
{
    time_t when = time (NULL) + 2 * 24 * 3600;
    struct tm parts;
    gmtime_r (&when, &parts);
    char text [16];
    strftime (text, sizeof text, "%Y-%m-%d", &parts);
    return strdup (text);
}
