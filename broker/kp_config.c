/*  =========================================================================
    kp_config - ketenpostd's ZPL config file -> validated, typed config

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
@header
    Every key the broker knows is one row of s_keys below: its path
    ("section/key"), how its text is read and checked, its default, its
    range, and the field it fills. kp_config_new applies the defaults through
    the same rows, kp_config_load applies a ZPL file's keys, kp_config_set a
    command-line flag's; so a value is checked the same way wherever it comes
    from. docs/CONFIG.md mirrors the table. The broker fails closed: an
    unknown section or key, a bad value, or a missing security section stop
    it with one error line. Plain data after load; one thread.
@end
*/

#include "kp_config.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

typedef struct _key_spec_t key_spec_t;

//  A setter reads value for its key and stores it in self. Returns 0, or -1
//  after one error line; self is unchanged then. source is the config file,
//  or NULL for defaults and flags.
typedef int (key_setter_fn) (kp_config_t *self, const key_spec_t *spec,
                             const char *value, const char *source);

#define KEY_REQUIRED    1           //  no default: kp_config_check insists
#define KEY_IN_FILE     2           //  must be in the file itself (security)

struct _key_spec_t {
    const char *path;               //  "section/key", as in the file
    key_setter_fn *setter;          //  reads, checks and stores the text
    const char *fallback;           //  default as text, or NULL
    int64_t min;                    //  smallest accepted number
    int64_t max;                    //  largest accepted number
    size_t offset;                  //  field in kp_config_t it fills
    int flags;                      //  KEY_REQUIRED, KEY_IN_FILE
};

//  --------------------------------------------------------------------------
//  Log one refusal: "kp_config: <file>: <path>: <what is wrong>". Returns -1.

static int
s_refuse (const char *source, const char *path, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

static int
s_refuse (const char *source, const char *path, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    char *problem = zsys_vprintf (format, args);
    va_end (args);
    if (source)
        zsys_error ("kp_config: %s: %s: %s", source, path, problem? problem: "bad value");
    else
        zsys_error ("kp_config: %s: %s", path, problem? problem: "bad value");
    zstr_free (&problem);
    return -1;
}

//  --------------------------------------------------------------------------
//  Read a whole decimal number within the key's range. No white space, no
//  '+', no suffixes: "64M" or "5s" would be guesses at units, and units
//  belong in the docs.

static int
s_read_number (const key_spec_t *spec, const char *value, const char *source,
               int64_t *number_p)
{
    const char *digits = value [0] == '-'? value + 1: value;
    if (*digits < '0' || *digits > '9')
        return s_refuse (source, spec->path, "\"%s\" is not a whole number "
                         "(no units or suffixes; see docs/CONFIG.md)", value);
    errno = 0;
    char *end = NULL;
    long long number = strtoll (value, &end, 10);
    if (end == value || *end)
        return s_refuse (source, spec->path, "\"%s\" is not a whole number "
                         "(no units or suffixes; see docs/CONFIG.md)", value);
    if (errno == ERANGE || number < spec->min || number > spec->max)
        return s_refuse (source, spec->path, "%s is out of range %" PRId64 "..%" PRId64,
                         value, spec->min, spec->max);
    *number_p = (int64_t) number;
    return 0;
}

//  --------------------------------------------------------------------------
//  Setter for an int field

static int
s_set_int (kp_config_t *self, const key_spec_t *spec, const char *value,
           const char *source)
{
    int64_t number = 0;
    if (s_read_number (spec, value, source, &number))
        return -1;
    assert (number >= INT_MIN && number <= INT_MAX);
    *(int *) ((char *) self + spec->offset) = (int) number;
    return 0;
}

//  --------------------------------------------------------------------------
//  Setter for an int64_t field

static int
s_set_int64 (kp_config_t *self, const key_spec_t *spec, const char *value,
             const char *source)
{
    int64_t number = 0;
    if (s_read_number (spec, value, source, &number))
        return -1;
    *(int64_t *) ((char *) self + spec->offset) = number;
    return 0;
}

//  --------------------------------------------------------------------------
//  Setter for a 0/1 flag in an int field

static int
s_set_bool (kp_config_t *self, const key_spec_t *spec, const char *value,
            const char *source)
{
    if (strcmp (value, "0") && strcmp (value, "1"))
        return s_refuse (source, spec->path, "\"%s\" must be 0 or 1", value);
    *(int *) ((char *) self + spec->offset) = value [0] == '1';
    return 0;
}

//  --------------------------------------------------------------------------
//  Setter for a non-empty string field (names, paths)

static int
s_set_text (kp_config_t *self, const key_spec_t *spec, const char *value,
            const char *source)
{
    if (!*value)
        return s_refuse (source, spec->path, "must not be empty");
    char *copy = strdup (value);
    if (!copy)
        return s_refuse (source, spec->path, "out of memory");
    char **field = (char **) ((char *) self + spec->offset);
    free (*field);
    *field = copy;
    return 0;
}

//  --------------------------------------------------------------------------
//  Setter for security/mechanism: only CURVE; there is no field to fill,
//  since the broker runs nothing else

static int
s_set_mechanism (kp_config_t *self, const key_spec_t *spec, const char *value,
                 const char *source)
{
    (void) self;
    if (strcmp (value, "curve"))
        return s_refuse (source, spec->path, "\"%s\" is not accepted; the only "
                         "mechanism is curve", value);
    return 0;
}

//  --------------------------------------------------------------------------
//  Setter for bind/endpoint: a tcp:// or ipc:// endpoint

static int
s_set_endpoint (kp_config_t *self, const key_spec_t *spec, const char *value,
                const char *source)
{
    if ((strncmp (value, "tcp://", 6) && strncmp (value, "ipc://", 6))
    ||  strlen (value) == 6)
        return s_refuse (source, spec->path, "\"%s\" must be tcp://HOST:PORT or "
                         "ipc://PATH", value);
    return s_set_text (self, spec, value, source);
}

//  --------------------------------------------------------------------------
//  Setter for policy/school-route: the role that receives the first leg of
//  a school notification sent by the police

static int
s_set_school_route (kp_config_t *self, const key_spec_t *spec, const char *value,
                    const char *source)
{
    Kp__Wire__Role role = kp_role_from_name (value);
    if (role != KP__WIRE__ROLE__LEERPLICHT && role != KP__WIRE__ROLE__VEILIG_THUIS)
        return s_refuse (source, spec->path, "\"%s\" must be leerplicht or "
                         "veilig_thuis", value);
    *(Kp__Wire__Role *) ((char *) self + spec->offset) = role;
    return 0;
}

//  --------------------------------------------------------------------------
//  Setter for audit/open-types: a comma-separated list of message types
//  whose bodies are also sealed to the auditors' keys ("" = none)

static int
s_set_open_types (kp_config_t *self, const key_spec_t *spec, const char *value,
                  const char *source)
{
    bool open [5] = { false };
    char *list = strdup (value);
    assert (list);
    int rc = 0;
    char *saved = NULL;
    for (char *name = strtok_r (list, ", ", &saved); name;
         name = strtok_r (NULL, ", ", &saved)) {
        Kp__Wire__MessageType type = kp_type_from_name (name);
        if (!kp_type_name (type) || !streq (kp_type_name (type), name)) {
            rc = s_refuse (source, spec->path, "\"%s\" is not a message type (signal, "
                           "referral, school_notification, feedback)", name);
            break;
        }
        open [type] = true;
    }
    free (list);
    if (rc == 0)
        memcpy (self->audit_open, open, sizeof open);
    return rc;
}

#define MSEC_DAY    86400000LL
#define MIB         1048576LL
#define FIELD(name) offsetof (kp_config_t, name)

//  The one table of keys, defaults and ranges; docs/CONFIG.md mirrors it.
//  security/server-cert has no static default: kp_config_check derives
//  REGION/broker, so that a --region flag moves it along.
static const key_spec_t s_keys [] = {
    { "server/name", s_set_text, "ketenpostd", 0, 0, FIELD (name), 0 },
    { "server/verbose", s_set_bool, "0", 0, 1, FIELD (verbose), 0 },
    { "server/logsystem", s_set_bool, "0", 0, 1, FIELD (logsystem), 0 },
    { "server/heartbeat", s_set_int, "5000", 100, 600000, FIELD (heartbeat), 0 },
    { "server/handshake", s_set_int, "10000", 100, 600000, FIELD (handshake), 0 },
    { "security/mechanism", s_set_mechanism, NULL, 0, 0, 0, KEY_IN_FILE },
    { "security/region", s_set_text, NULL, 0, 0, FIELD (region), KEY_REQUIRED },
    { "security/server-cert", s_set_text, NULL, 0, 0, FIELD (server_cert), 0 },
    { "bind/endpoint", s_set_endpoint, NULL, 0, 0, FIELD (endpoint), KEY_REQUIRED },
    { "log/dir", s_set_text, NULL, 0, 0, FIELD (data_dir), KEY_REQUIRED },
    { "log/segment-size", s_set_int64, "67108864", 4096, 4096 * MIB,
      FIELD (segment_size), 0 },
    { "log/load-truncated", s_set_bool, "1", 0, 1, FIELD (load_truncated), 0 },
    { "limits/max-message", s_set_int64, "1048576", 4096, 64 * MIB,
      FIELD (max_message), 0 },
    { "limits/max-signal", s_set_int64, "65536", 256, 64 * MIB,
      FIELD (max_body [KP__WIRE__MESSAGE_TYPE__SIGNAL]), 0 },
    { "limits/max-referral", s_set_int64, "65536", 256, 64 * MIB,
      FIELD (max_body [KP__WIRE__MESSAGE_TYPE__REFERRAL]), 0 },
    { "limits/max-school-notification", s_set_int64, "4096", 256, 64 * MIB,
      FIELD (max_body [KP__WIRE__MESSAGE_TYPE__SCHOOL_NOTIFICATION]), 0 },
    { "limits/max-feedback", s_set_int64, "16384", 256, 64 * MIB,
      FIELD (max_body [KP__WIRE__MESSAGE_TYPE__FEEDBACK]), 0 },
    { "limits/max-sessions", s_set_int, "10000", 1, 1000000, FIELD (max_sessions), 0 },
    { "delivery/credit", s_set_int, "1000", 1, 10000, FIELD (credit), 0 },
    { "delivery/ack-timeout", s_set_int, "30000", 100, MSEC_DAY, FIELD (ack_timeout), 0 },
    { "delivery/default-ttl", s_set_int64, "604800000", 60000, 366 * MSEC_DAY,
      FIELD (default_ttl), 0 },
    { "policy/school-route", s_set_school_route, "leerplicht", 0, 0,
      FIELD (school_route), 0 },
    { "audit/open-types", s_set_open_types, "", 0, 0, 0, 0 },
};
#define KEY_COUNT (sizeof s_keys / sizeof s_keys [0])

//  --------------------------------------------------------------------------
//  The row for path, or NULL

static const key_spec_t *
s_key_find (const char *path)
{
    for (size_t index = 0; index < KEY_COUNT; index++)
        if (streq (s_keys [index].path, path))
            return &s_keys [index];
    return NULL;
}

//  --------------------------------------------------------------------------
//  True if some key lives in section name

static bool
s_section_known (const char *name)
{
    size_t size = strlen (name);
    for (size_t index = 0; index < KEY_COUNT; index++)
        if (strncmp (s_keys [index].path, name, size) == 0
        &&  s_keys [index].path [size] == '/')
            return true;
    return false;
}

//  --------------------------------------------------------------------------
//  A config holding only defaults. Caller destroys it.

kp_config_t *
kp_config_new (void)
{
    kp_config_t *self = (kp_config_t *) zmalloc (sizeof (kp_config_t));
    assert (self);
    for (size_t index = 0; index < KEY_COUNT; index++) {
        const key_spec_t *spec = &s_keys [index];
        if (spec->fallback) {
            //  The defaults are ours: one that does not pass is a bug
            int rc = spec->setter (self, spec, spec->fallback, NULL);
            assert (rc == 0);
        }
    }
    return self;
}

//  --------------------------------------------------------------------------
//  Destroy; idempotent, nulls *self_p

void
kp_config_destroy (kp_config_t **self_p)
{
    assert (self_p);
    kp_config_t *self = *self_p;
    if (self) {
        free (self->data_dir);
        free (self->endpoint);
        free (self->server_cert);
        free (self->region);
        free (self->name);
        free (self);
        *self_p = NULL;
    }
}

//  --------------------------------------------------------------------------
//  Apply the keys of one section. given[] marks keys already set, so a key
//  given twice is refused. Returns 0 or -1 after one error line.

static int
s_load_section (kp_config_t *self, zconfig_t *section, const char *source, bool *given)
{
    const char *name = zconfig_name (section);
    if (!s_section_known (name))
        return s_refuse (source, name, "unknown section");
    const char *section_value = zconfig_value (section);
    if (section_value && *section_value)
        return s_refuse (source, name, "a section holds keys, not a value");

    for (zconfig_t *key = zconfig_child (section); key; key = zconfig_next (key)) {
        char *path = zsys_sprintf ("%s/%s", name, zconfig_name (key));
        assert (path);
        const key_spec_t *spec = s_key_find (path);
        const char *value = zconfig_value (key);
        int rc = 0;
        if (!spec)
            rc = s_refuse (source, path, "unknown key");
        else if (zconfig_child (key))
            rc = s_refuse (source, path, "a key holds a value, not a section");
        else if (given [spec - s_keys])
            rc = s_refuse (source, path, "given twice");
        else {
            given [spec - s_keys] = true;
            rc = spec->setter (self, spec, value? value: "", source);
        }
        zstr_free (&path);
        if (rc)
            return -1;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Read the whole of path into a new string. Returns NULL after one error
//  line (naming the file and the reason). Caller frees.

static char *
s_read_file (const char *path)
{
    FILE *file = fopen (path, "r");
    if (!file) {
        int err = errno;
        zsys_error ("kp_config: %s: cannot read: %s", path, strerror (err));
        return NULL;
    }
    size_t size = 0;
    size_t limit = 4096;
    char *text = (char *) malloc (limit);
    while (text) {
        size += fread (text + size, 1, limit - size - 1, file);
        if (size < limit - 1)
            break;
        limit *= 2;
        char *larger = (char *) realloc (text, limit);
        if (!larger)
            zstr_free (&text);
        text = larger;
    }
    int err = ferror (file)? errno: 0;
    fclose (file);
    if (!text || err) {
        zsys_error ("kp_config: %s: cannot read: %s", path,
                    text? strerror (err): "out of memory");
        free (text);
        return NULL;
    }
    text [size] = 0;
    if (strlen (text) != size) {
        zsys_error ("kp_config: %s: not a text file (it holds a NUL byte)", path);
        free (text);
        return NULL;
    }
    return text;
}

//  --------------------------------------------------------------------------
//  Load and validate path. Returns NULL (one zsys_error line naming the
//  file, the key and what is wrong) on any error.

kp_config_t *
kp_config_load (const char *path)
{
    assert (path);
    //  Read the text ourselves: zconfig_load cannot say why a file is
    //  unreadable, and in CZMQ 4.2.1 it leaks the file on a syntax error
    char *text = s_read_file (path);
    if (!text)
        return NULL;
    zconfig_t *root = zconfig_str_load (text);
    free (text);
    if (!root) {
        zsys_error ("kp_config: %s: not valid ZPL (the zconfig line above says where)",
                    path);
        return NULL;
    }
    kp_config_t *self = kp_config_new ();
    bool given [KEY_COUNT] = { false };
    int rc = 0;
    for (zconfig_t *section = zconfig_child (root); section && rc == 0;
         section = zconfig_next (section))
        rc = s_load_section (self, section, path, given);

    //  Fail closed: the security section must say what it means
    for (size_t index = 0; index < KEY_COUNT && rc == 0; index++)
        if ((s_keys [index].flags & KEY_IN_FILE) && !given [index])
            rc = s_refuse (path, s_keys [index].path, "missing; the file must say "
                           "mechanism = curve in its security section");
    zconfig_destroy (&root);
    if (rc)
        kp_config_destroy (&self);
    return self;
}

//  --------------------------------------------------------------------------
//  Set one key by its path from text, as a flag would. Returns 0, or -1
//  with one zsys_error line.

int
kp_config_set (kp_config_t *self, const char *path, const char *value)
{
    assert (self);
    assert (path);
    assert (value);
    const key_spec_t *spec = s_key_find (path);
    if (!spec)
        return s_refuse (NULL, path, "unknown key");
    return spec->setter (self, spec, value, NULL);
}

//  --------------------------------------------------------------------------
//  Check the fields that have no default are set and coherent; derive
//  server-cert from the region. Returns 0 or -1.

int
kp_config_check (kp_config_t *self)
{
    assert (self);
    for (size_t index = 0; index < KEY_COUNT; index++) {
        const key_spec_t *spec = &s_keys [index];
        if ((spec->flags & KEY_REQUIRED)
        &&  *(char **) ((char *) self + spec->offset) == NULL)
            return s_refuse (NULL, spec->path, "not set; it has no default "
                             "(set it in the config file or with a flag)");
    }
    if (!self->server_cert) {
        self->server_cert = zsys_sprintf ("%s/broker", self->region);
        assert (self->server_cert);
    }
    //  A body limit above the frame limit is harmless but never reached
    for (size_t index = 0; index < KEY_COUNT; index++) {
        const key_spec_t *spec = &s_keys [index];
        if (spec->offset > FIELD (max_body)
        &&  spec->offset < FIELD (max_body) + sizeof self->max_body) {
            int64_t limit = *(int64_t *) ((char *) self + spec->offset);
            if (limit > self->max_message)
                zsys_warning ("kp_config: %s=%" PRId64 " exceeds limits/max-message=%"
                              PRId64 "; the frame limit applies first",
                              spec->path, limit, self->max_message);
        }
    }
    return 0;
}
