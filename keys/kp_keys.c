/*  =========================================================================
    kp-keys - make a region, register, list, show and revoke partners

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
    A thin main over kp_region (writing) and kp_registry (reading). Output
    goes to stdout, errors as one line to stderr. It never prints a secret
    key: only public keys and the paths of secret certs. Exit codes: 0 ok,
    1 failure, 2 usage error.
*/
#include "kp_region.h"
#include <sodium.h>
#include <dirent.h>
#include <getopt.h>
#include <sys/stat.h>

#define S_EXIT_OK 0
#define S_EXIT_FAILURE 1
#define S_EXIT_USAGE 2
#define S_DEFAULT_NAME "ketenpostd"

//  One command of the tool
typedef struct {
    const char *name;               //  as typed: "add"
    const char *options;            //  option letters it takes (see s_options)
    const char *synopsis;           //  its usage line(s)
    const char *summary;            //  what it does, one line
} s_command_t;

static const s_command_t s_commands [] = {
    { "init", "rn",
      "kp-keys init --region DIR [--name NAME]",
      "make a region: broker cert, checkpoint and registration keys, partners/,\n"
      "      revoked/, secrets/" },
    { "add", "rionackSE",
      "kp-keys add --region DIR --id ID --role ROLE --name NAME [--address CODE]...\n"
      "            [--covenant] [--public-key Z85 --sign-key HEX --seal-key HEX]",
      "register a partner and vouch for its keys; prints its public keys and the\n"
      "      path of its secret cert" },
    { "list", "rj",
      "kp-keys list --region DIR [--json]",
      "list the partners, revoked ones included (--json: one object per line)" },
    { "show", "ri",
      "kp-keys show --region DIR --id ID",
      "show one partner, active or revoked" },
    { "region-key", "r",
      "kp-keys region-key --region DIR",
      "print the region's registration public key: hand REGION/registration.pub\n"
      "      to every partner (kp-send/kp-inbox --region-key)" },
    { "revoke", "ri",
      "kp-keys revoke --region DIR --id ID",
      "revoke a partner: its cert moves to revoked/, its secret cert is deleted" },
};
#define S_COMMAND_COUNT (sizeof s_commands / sizeof s_commands [0])

static const struct option s_options [] = {
    { "region", required_argument, NULL, 'r' },
    { "id", required_argument, NULL, 'i' },
    { "role", required_argument, NULL, 'o' },
    { "name", required_argument, NULL, 'n' },
    { "address", required_argument, NULL, 'a' },
    { "covenant", no_argument, NULL, 'c' },
    { "public-key", required_argument, NULL, 'k' },
    { "sign-key", required_argument, NULL, 'S' },
    { "seal-key", required_argument, NULL, 'E' },
    { "json", no_argument, NULL, 'j' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 }
};

static const char *s_option_help =
    "options:\n"
    "  -r, --region DIR        the region directory\n"
    "  -n, --name NAME         organisation name (init: the broker's name)\n"
    "  -i, --id ID             partner id: a-z, 0-9 and '-', at most 64, not starting\n"
    "                          with '-'\n"
    "  -o, --role ROLE         police, veilig_thuis, local_team, leerplicht, school or\n"
    "                          auditor\n"
    "  -a, --address CODE      an address served: municipality GM0153 or school 12AB00;\n"
    "                          repeat for more (a school has exactly one)\n"
    "  -c, --covenant          the school joined the Handle with Care covenant\n"
    "  -k, --public-key Z85    register this CURVE public key; no secret cert is made\n"
    "  -S, --sign-key HEX      with --public-key: the partner's Ed25519 public key\n"
    "  -E, --seal-key HEX      with --public-key: the partner's X25519 public key\n"
    "  -j, --json              one JSON object per line\n"
    "  -h, --help              this help\n";

//  The parsed command line
typedef struct {
    const char *region;             //  --region
    const char *id;                 //  --id
    const char *role;               //  --role
    const char *name;               //  --name
    const char **addresses;         //  --address values, NULL-terminated
    size_t address_count;           //  number of --address values
    bool covenant;                  //  --covenant
    const char *public_key;         //  --public-key
    const char *sign_key;           //  --sign-key
    const char *seal_key;           //  --seal-key
    bool json;                      //  --json
    bool help;                      //  --help
} s_args_t;

//  One partner as list and show print it
typedef struct {
    char *id;                       //  partner id
    char *role;                     //  role name
    char *name;                     //  organisation name
    char *addresses;                //  comma-separated
    bool covenant;                  //  covenant member
    char *public_key;               //  Z85 public key
    char *created;                  //  ISO 8601 UTC
    char *revoked;                  //  ISO 8601 UTC, NULL if active
    char *cert;                     //  path of its cert file
    char *sign_key;                 //  vouched Ed25519 public key (hex), or NULL
    char *seal_key;                 //  vouched X25519 public key (hex), or NULL
} s_row_t;

//  --------------------------------------------------------------------------
//  Print the whole usage to stream

static void
s_usage (FILE *stream)
{
    fprintf (stream, "usage: kp-keys COMMAND [OPTIONS]\n\n"
                     "Make a ketenpost region and manage its partners.\n\n");
    for (size_t index = 0; index < S_COMMAND_COUNT; index++)
        fprintf (stream, "  %s\n      %s\n", s_commands [index].synopsis,
                 s_commands [index].summary);
    fprintf (stream, "\n%s\n"
                     "'kp-keys COMMAND --help' shows one command.\n"
                     "Exit codes: 0 ok, 1 failure, 2 usage error.\n", s_option_help);
}

//  --------------------------------------------------------------------------
//  Print one command's usage to stream

static void
s_command_usage (const s_command_t *command, FILE *stream)
{
    fprintf (stream, "usage: %s\n\n%s\n\n", command->synopsis, command->summary);
    if (streq (command->name, "revoke"))
        fprintf (stream, "The broker drops the partner within about a second, or at\n"
                         "once after kill -HUP.\n\n");
    fprintf (stream, "%s", s_option_help);
}

//  One usage error line, then the command's usage, on stderr
static int
s_usage_error (const s_command_t *command, const char *message, const char *detail)
{
    fprintf (stderr, "kp-keys: %s%s%s\n", message, detail? " ": "", detail? detail: "");
    if (command)
        s_command_usage (command, stderr);
    else
        s_usage (stderr);
    return S_EXIT_USAGE;
}

//  Sets *value_p to value unless it was set before; -1 if it was
static int
s_args_set (const char **value_p, const char *value)
{
    if (*value_p)
        return -1;
    *value_p = value;
    return 0;
}

//  --------------------------------------------------------------------------
//  Parse the options after the command word; 0, or the usage exit code

static int
s_args_parse (const s_command_t *command, int argc, char *argv [], s_args_t *args)
{
    memset (args, 0, sizeof (s_args_t));
    args->addresses = (const char **) zmalloc ((size_t) (argc + 1) * sizeof (char *));
    assert (args->addresses);
    opterr = 0;
    optind = 1;
    int code;
    while ((code = getopt_long (argc, argv, ":r:i:o:n:a:ck:S:E:jh", s_options, NULL))
           != -1) {
        const char *given = argv [optind - 1];
        if (code == '?')
            return s_usage_error (command, "unknown option", given);
        if (code == ':')
            return s_usage_error (command, "option needs a value:", given);
        if (code != 'h' && !strchr (command->options, code))
            return s_usage_error (command, "option does not apply here:", given);
        int rc = 0;
        switch (code) {
            case 'r': rc = s_args_set (&args->region, optarg); break;
            case 'i': rc = s_args_set (&args->id, optarg); break;
            case 'o': rc = s_args_set (&args->role, optarg); break;
            case 'n': rc = s_args_set (&args->name, optarg); break;
            case 'k': rc = s_args_set (&args->public_key, optarg); break;
            case 'S': rc = s_args_set (&args->sign_key, optarg); break;
            case 'E': rc = s_args_set (&args->seal_key, optarg); break;
            case 'a': args->addresses [args->address_count++] = optarg; break;
            case 'c': args->covenant = true; break;
            case 'j': args->json = true; break;
            case 'h': args->help = true; break;
            default: assert (false);
        }
        if (rc)
            return s_usage_error (command, "option given twice:", given);
    }
    if (optind < argc)
        return s_usage_error (command, "unexpected argument", argv [optind]);
    if (args->help)
        return 0;
    if (!args->region)
        return s_usage_error (command, "missing --region", NULL);
    if (strchr (command->options, 'i') && !args->id)
        return s_usage_error (command, "missing --id", NULL);
    if (streq (command->name, "add") && !args->role)
        return s_usage_error (command, "missing --role", NULL);
    if (streq (command->name, "add") && !args->name)
        return s_usage_error (command, "missing --name", NULL);
    if ((args->sign_key || args->seal_key)
    &&  (!args->public_key || !args->sign_key || !args->seal_key))
        return s_usage_error (command, "--public-key, --sign-key and --seal-key go "
                              "together", NULL);
    return 0;
}

//  --------------------------------------------------------------------------
//  Rows: the partners as list and show print them

static void
s_row_destroy (s_row_t **self_p)
{
    assert (self_p);
    s_row_t *self = *self_p;
    if (!self)
        return;
    free (self->seal_key);
    free (self->sign_key);
    free (self->cert);
    free (self->revoked);
    free (self->created);
    free (self->public_key);
    free (self->addresses);
    free (self->name);
    free (self->role);
    free (self->id);
    free (self);
    *self_p = NULL;
}

static void
s_row_free (void **item_p)
{
    s_row_destroy ((s_row_t **) item_p);
}

static int
s_row_compare (const void *item1, const void *item2)
{
    return strcmp (((const s_row_t *) item1)->id, ((const s_row_t *) item2)->id);
}

static char *
s_strdup (const char *text)
{
    char *copy = strdup (text? text: "");
    assert (copy);
    return copy;
}

//  Set the row's vouched public keys from a packed Registration (the
//  signature is the clients' business; here we only show the keys)
static void
s_row_registration (s_row_t *self, const Kp__Wire__Registration *registration)
{
    Kp__Wire__RegistrationStatement *statement = registration
        ? kp__wire__registration_statement__unpack (NULL, registration->statement.len,
                                                    registration->statement.data)
        : NULL;
    if (statement && statement->sign_key.len == 32 && statement->seal_key.len == 32) {
        self->sign_key = kp_hex_encode (statement->sign_key.data, 32);
        self->seal_key = kp_hex_encode (statement->seal_key.data, 32);
    }
    if (statement)
        kp__wire__registration_statement__free_unpacked (statement, NULL);
}

//  Row of an active partner
static s_row_t *
s_row_active (const char *region, const kp_partner_t *partner)
{
    s_row_t *self = (s_row_t *) zmalloc (sizeof (s_row_t));
    assert (self);
    self->id = s_strdup (partner->id);
    self->role = s_strdup (kp_role_name (partner->role));
    self->name = s_strdup (partner->name);
    size_t size = 1;
    for (size_t index = 0; index < partner->address_count; index++)
        size += strlen (partner->addresses [index]) + 1;
    self->addresses = (char *) zmalloc (size);
    assert (self->addresses);
    for (size_t index = 0; index < partner->address_count; index++) {
        if (index)
            strcat (self->addresses, ",");
        strcat (self->addresses, partner->addresses [index]);
    }
    self->covenant = partner->covenant;
    self->public_key = s_strdup (partner->public_key);
    self->created = s_strdup (partner->created);
    self->cert = zsys_sprintf ("%s/partners/%s", region, partner->id);
    assert (self->cert);
    s_row_registration (self, partner->registration);
    return self;
}

//  Row of the revoked cert region/revoked/file; NULL after an error line
static s_row_t *
s_row_revoked (const char *region, const char *file)
{
    char *path = zsys_sprintf ("%s/revoked/%s", region, file);
    assert (path);
    zconfig_t *root = zconfig_load (path);
    if (!root) {
        fprintf (stderr, "kp-keys: cannot read revoked cert %s\n", path);
        free (path);
        return NULL;
    }
    s_row_t *self = (s_row_t *) zmalloc (sizeof (s_row_t));
    assert (self);
    self->id = s_strdup (file);
    self->role = s_strdup (zconfig_get (root, "metadata/role", ""));
    self->name = s_strdup (zconfig_get (root, "metadata/name", ""));
    self->addresses = s_strdup (zconfig_get (root, "metadata/addresses", ""));
    self->covenant = streq (zconfig_get (root, "metadata/covenant", "0"), "1");
    self->public_key = s_strdup (zconfig_get (root, "curve/public-key", ""));
    self->created = s_strdup (zconfig_get (root, "metadata/created", ""));
    self->revoked = s_strdup (zconfig_get (root, "metadata/revoked", "?"));
    self->cert = path;
    const char *text = zconfig_get (root, "metadata/registration", NULL);
    if (text && *text) {
        size_t text_size = strlen (text);
        uint8_t *data = (uint8_t *) malloc (text_size);
        size_t size = 0;
        assert (data);
        if (sodium_base642bin (data, text_size, text, text_size, NULL, &size, NULL,
                               sodium_base64_VARIANT_ORIGINAL) == 0) {
            Kp__Wire__Registration *registration =
                kp__wire__registration__unpack (NULL, size, data);
            s_row_registration (self, registration);
            if (registration)
                kp__wire__registration__free_unpacked (registration, NULL);
        }
        free (data);
    }
    zconfig_destroy (&root);
    return self;
}

//  All partners, active and revoked, sorted by id; NULL after an error
//  line. Caller destroys the list.
static zlistx_t *
s_rows_load (const char *region)
{
    kp_registry_t *registry = kp_registry_new (region);
    if (!registry)
        return NULL;
    zlistx_t *rows = zlistx_new ();
    assert (rows);
    zlistx_set_destructor (rows, s_row_free);
    zlistx_set_comparator (rows, s_row_compare);
    for (const kp_partner_t *partner = kp_registry_first (registry); partner;
         partner = kp_registry_next (registry))
        zlistx_add_end (rows, s_row_active (region, partner));
    kp_registry_destroy (&registry);

    char *revoked_dir = zsys_sprintf ("%s/revoked", region);
    assert (revoked_dir);
    DIR *dir = opendir (revoked_dir);
    if (!dir && errno != ENOENT) {
        fprintf (stderr, "kp-keys: cannot read %s: %s\n", revoked_dir, strerror (errno));
        zlistx_destroy (&rows);
    }
    struct dirent *entry;
    while (dir && rows && (entry = readdir (dir))) {
        if (entry->d_name [0] == '.')
            continue;
        s_row_t *row = s_row_revoked (region, entry->d_name);
        if (row)
            zlistx_add_end (rows, row);
        else
            zlistx_destroy (&rows);
    }
    if (dir)
        closedir (dir);
    free (revoked_dir);
    if (rows)
        zlistx_sort (rows);
    return rows;
}

//  --------------------------------------------------------------------------
//  Output helpers

//  Print text as a JSON string
static void
s_json_string (const char *text)
{
    putchar ('"');
    for (const char *cursor = text; *cursor; cursor++) {
        unsigned char c = (unsigned char) *cursor;
        if (c == '"' || c == '\\')
            printf ("\\%c", c);
        else
        if (c < 0x20 || c == 0x7F)
            printf ("\\u%04x", c);
        else
            putchar (c);
    }
    putchar ('"');
}

static void
s_row_print_json (const s_row_t *row)
{
    printf ("{\"id\":");
    s_json_string (row->id);
    printf (",\"status\":\"%s\",\"role\":", row->revoked? "revoked": "active");
    s_json_string (row->role);
    printf (",\"name\":");
    s_json_string (row->name);
    printf (",\"addresses\":[");
    const char *cursor = row->addresses;
    bool first = true;
    while (*cursor) {
        size_t length = strcspn (cursor, ",");
        char *address = strndup (cursor, length);
        assert (address);
        printf ("%s", first? "": ",");
        s_json_string (address);
        free (address);
        first = false;
        cursor += length + (cursor [length] == ',');
    }
    printf ("],\"covenant\":%s,\"public_key\":", row->covenant? "true": "false");
    s_json_string (row->public_key);
    printf (",\"sign_key\":");
    if (row->sign_key)
        s_json_string (row->sign_key);
    else
        printf ("null");
    printf (",\"seal_key\":");
    if (row->seal_key)
        s_json_string (row->seal_key);
    else
        printf ("null");
    printf (",\"created\":");
    s_json_string (row->created);
    printf (",\"revoked\":");
    if (row->revoked)
        s_json_string (row->revoked);
    else
        printf ("null");
    printf ("}\n");
}

//  Width of UTF-8 text on a terminal, counting code points
static size_t
s_width (const char *text)
{
    size_t width = 0;
    for (const unsigned char *cursor = (const unsigned char *) text; *cursor; cursor++)
        width += (*cursor & 0xC0) != 0x80;
    return width;
}

//  Print a table cell padded to width, then two spaces
static void
s_cell (const char *text, size_t width)
{
    printf ("%s", text);
    for (size_t pad = s_width (text); pad < width + 2; pad++)
        putchar (' ');
}

#define S_COLUMNS 7

//  The cells of a row, for the table
static void
s_row_cells (const s_row_t *row, const char **cells, char *key_prefix)
{
    snprintf (key_prefix, 9, "%s", row->public_key);
    cells [0] = row->id;
    cells [1] = row->role;
    cells [2] = row->name;
    cells [3] = *row->addresses? row->addresses: "-";
    cells [4] = row->covenant? "yes": "no";
    cells [5] = key_prefix;
    cells [6] = row->revoked? "revoked": "active";
}

static void
s_rows_print_table (zlistx_t *rows)
{
    const char *headers [S_COLUMNS] = {
        "ID", "ROLE", "NAME", "ADDRESSES", "COVENANT", "KEY", "STATUS"
    };
    size_t widths [S_COLUMNS];
    const char *cells [S_COLUMNS];
    char key_prefix [9];
    for (size_t column = 0; column < S_COLUMNS; column++)
        widths [column] = s_width (headers [column]);
    for (s_row_t *row = (s_row_t *) zlistx_first (rows); row;
         row = (s_row_t *) zlistx_next (rows)) {
        s_row_cells (row, cells, key_prefix);
        for (size_t column = 0; column < S_COLUMNS; column++)
            if (s_width (cells [column]) > widths [column])
                widths [column] = s_width (cells [column]);
    }
    for (size_t column = 0; column < S_COLUMNS - 1; column++)
        s_cell (headers [column], widths [column]);
    printf ("%s\n", headers [S_COLUMNS - 1]);
    for (s_row_t *row = (s_row_t *) zlistx_first (rows); row;
         row = (s_row_t *) zlistx_next (rows)) {
        s_row_cells (row, cells, key_prefix);
        for (size_t column = 0; column < S_COLUMNS - 1; column++)
            s_cell (cells [column], widths [column]);
        printf ("%s\n", cells [S_COLUMNS - 1]);
    }
}

//  Public key of the cert file at path, or NULL; caller frees. Reads only
//  the public file: zcert_load would read the _secret beside it.
static char *
s_public_key_read (const char *path)
{
    zconfig_t *root = zconfig_load (path);
    if (!root)
        return NULL;
    const char *key = zconfig_get (root, "curve/public-key", NULL);
    char *copy = key? strdup (key): NULL;
    zconfig_destroy (&root);
    return copy;
}

//  First line of a small text file (a hex public key), or NULL; caller frees
static char *
s_line_read (const char *path)
{
    char *line = NULL;
    size_t size = 0;
    FILE *file = fopen (path, "r");
    if (file && getline (&line, &size, file) > 0)
        line [strcspn (line, "\r\n")] = 0;
    else
        zstr_free (&line);
    if (file)
        fclose (file);
    return line;
}

//  --------------------------------------------------------------------------
//  The commands; each returns the exit code

static int
s_cmd_init (s_args_t *args)
{
    if (kp_region_init (args->region, args->name? args->name: S_DEFAULT_NAME))
        return S_EXIT_FAILURE;
    char *broker_cert = kp_region_broker_cert (args->region);
    char *broker_key = s_public_key_read (broker_cert);
    char *checkpoint_path = zsys_sprintf ("%s/checkpoint.pub", args->region);
    assert (checkpoint_path);
    char *checkpoint_key = NULL;
    FILE *file = fopen (checkpoint_path, "r");
    size_t size = 0;
    if (file && getline (&checkpoint_key, &size, file) > 0)
        checkpoint_key [strcspn (checkpoint_key, "\n")] = 0;
    if (file)
        fclose (file);
    printf ("region: %s\n", args->region);
    printf ("broker-cert: %s\n", broker_cert);
    printf ("broker-public-key: %s\n", broker_key? broker_key: "?");
    printf ("checkpoint-public-key: %s\n", checkpoint_key? checkpoint_key: "?");
    char *registration_path = kp_region_registration_key (args->region);
    char *registration_key = s_line_read (registration_path);
    printf ("registration-public-key: %s\n", registration_key? registration_key: "?");
    printf ("registration-key-file: %s\n", registration_path);
    free (registration_key);
    free (registration_path);
    free (checkpoint_key);
    free (checkpoint_path);
    free (broker_key);
    free (broker_cert);
    return S_EXIT_OK;
}

static int
s_cmd_add (s_args_t *args)
{
    Kp__Wire__Role role = kp_role_from_name (args->role);
    if (!kp_role_name (role) || !streq (kp_role_name (role), args->role)) {
        fprintf (stderr, "kp-keys: unknown role '%s' (police, veilig_thuis, local_team, "
                         "leerplicht, school, auditor)\n", args->role);
        return S_EXIT_USAGE;
    }
    if (kp_region_add_keys (args->region, args->id, role, args->name, args->addresses,
                            args->covenant, args->public_key, args->sign_key,
                            args->seal_key))
        return S_EXIT_FAILURE;
    kp_registry_t *registry = kp_registry_new (args->region);
    const kp_partner_t *partner = registry? kp_registry_by_id (registry, args->id): NULL;
    int rc = S_EXIT_FAILURE;
    if (partner) {
        char *secret_path = kp_region_secret_path (args->region, args->id);
        printf ("partner: %s\n", partner->id);
        printf ("public-key: %s\n", partner->public_key);
        s_row_t row = { 0 };
        s_row_registration (&row, partner->registration);
        printf ("sign-key: %s\n", row.sign_key? row.sign_key: "none");
        printf ("seal-key: %s\n", row.seal_key? row.seal_key: "none");
        free (row.sign_key);
        free (row.seal_key);
        if (args->public_key)
            printf ("secret-cert: none (the partner holds the secret key)\n");
        else
            printf ("secret-cert: %s\n", secret_path);
        free (secret_path);
        rc = S_EXIT_OK;
    }
    else
        fprintf (stderr, "kp-keys: partner %s was added but does not load\n", args->id);
    kp_registry_destroy (&registry);
    return rc;
}

static int
s_cmd_list (s_args_t *args)
{
    zlistx_t *rows = s_rows_load (args->region);
    if (!rows)
        return S_EXIT_FAILURE;
    if (args->json) {
        for (s_row_t *row = (s_row_t *) zlistx_first (rows); row;
             row = (s_row_t *) zlistx_next (rows))
            s_row_print_json (row);
    }
    else
        s_rows_print_table (rows);
    zlistx_destroy (&rows);
    return S_EXIT_OK;
}

static int
s_cmd_show (s_args_t *args)
{
    zlistx_t *rows = s_rows_load (args->region);
    if (!rows)
        return S_EXIT_FAILURE;
    s_row_t *found = NULL;
    for (s_row_t *row = (s_row_t *) zlistx_first (rows); row && !found;
         row = (s_row_t *) zlistx_next (rows))
        if (streq (row->id, args->id))
            found = row;
    int rc = S_EXIT_FAILURE;
    if (found) {
        char *secret_path = kp_region_secret_path (args->region, found->id);
        struct stat status;
        bool has_secret = stat (secret_path, &status) == 0;
        printf ("id: %s\n", found->id);
        if (found->revoked)
            printf ("status: revoked %s\n", found->revoked);
        else
            printf ("status: active\n");
        printf ("role: %s\n", found->role);
        printf ("name: %s\n", found->name);
        printf ("addresses: %s\n", *found->addresses? found->addresses: "-");
        printf ("covenant: %s\n", found->covenant? "yes": "no");
        printf ("created: %s\n", found->created);
        printf ("public-key: %s\n", found->public_key);
        printf ("sign-key: %s\n", found->sign_key? found->sign_key: "none");
        printf ("seal-key: %s\n", found->seal_key? found->seal_key: "none");
        char *registration_path = kp_region_registration_key (args->region);
        char *registration_key = s_line_read (registration_path);
        printf ("registration-key: %s\n", registration_key? registration_key: "none");
        free (registration_key);
        free (registration_path);
        printf ("cert: %s\n", found->cert);
        printf ("secret-cert: %s\n", has_secret? secret_path: "none");
        free (secret_path);
        rc = S_EXIT_OK;
    }
    else
        fprintf (stderr, "kp-keys: no such partner: %s\n", args->id);
    zlistx_destroy (&rows);
    return rc;
}

static int
s_cmd_region_key (s_args_t *args)
{
    char *path = kp_region_registration_key (args->region);
    char *key = s_line_read (path);
    uint8_t binary [32];
    int rc = S_EXIT_FAILURE;
    if (key && kp_hex_decode (key, binary, sizeof binary) == 0) {
        printf ("registration-public-key: %s\n", key);
        printf ("registration-key-file: %s\n", path);
        rc = S_EXIT_OK;
    }
    else
        fprintf (stderr, "kp-keys: no registration key in %s (a region made by an "
                 "older kp-keys has none)\n", path);
    free (key);
    free (path);
    return rc;
}

static int
s_cmd_revoke (s_args_t *args)
{
    if (kp_region_revoke (args->region, args->id))
        return S_EXIT_FAILURE;
    printf ("revoked: %s\n", args->id);
    printf ("The broker drops it within about a second, or at once after kill -HUP.\n");
    return S_EXIT_OK;
}

int
main (int argc, char *argv [])
{
    //  Log lines are errors and notices for the operator: stderr, so that
    //  stdout carries only the output (e.g. list --json)
    zsys_set_logstream (stderr);
    zsys_set_logident ("kp-keys");
    //  Let Ctrl-C end the tool as usual; CZMQ would only set a flag
    zsys_handler_set (NULL);

    if (argc < 2)
        return s_usage_error (NULL, "missing command", NULL);
    if (streq (argv [1], "--help") || streq (argv [1], "-h")
    ||  streq (argv [1], "help")) {
        s_usage (stdout);
        return S_EXIT_OK;
    }
    const s_command_t *command = NULL;
    for (size_t index = 0; index < S_COMMAND_COUNT; index++)
        if (streq (argv [1], s_commands [index].name))
            command = &s_commands [index];
    if (!command)
        return s_usage_error (NULL, "unknown command", argv [1]);

    s_args_t args;
    int rc = s_args_parse (command, argc - 1, argv + 1, &args);
    if (rc == 0 && args.help)
        s_command_usage (command, stdout);
    else
    if (rc == 0) {
        if (streq (command->name, "init"))
            rc = s_cmd_init (&args);
        else if (streq (command->name, "add"))
            rc = s_cmd_add (&args);
        else if (streq (command->name, "list"))
            rc = s_cmd_list (&args);
        else if (streq (command->name, "show"))
            rc = s_cmd_show (&args);
        else if (streq (command->name, "region-key"))
            rc = s_cmd_region_key (&args);
        else
            rc = s_cmd_revoke (&args);
    }
    free (args.addresses);
    return rc;
}
