/*  =========================================================================
    kp_registry - the region's partners: key -> id, role, addresses

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
@header
    A kp_registry_t reads a region directory made by kp-keys: one public
    zcert file per partner in REGION/partners/ with metadata (partner, role,
    name, addresses, covenant, created). Revoked certs live in
    REGION/revoked/ and are never loaded as partners. The registry answers
    lookups by public key, by id and by (role, address), and reloads when
    asked or when it notices the directory changed. Used by the broker (one
    thread) and by kp-keys, which also writes through it.
@end
*/
#ifndef KP_REGISTRY_H_INCLUDED
#define KP_REGISTRY_H_INCLUDED

#include "kp_util.h"

typedef struct _kp_registry_t kp_registry_t;

//  One partner. Fields are owned by the registry and valid until the next
//  reload or destroy: copy what must live longer (e.g. the id).
typedef struct {
    char *id;                       //  partner id, [a-z0-9-]{1,64}
    Kp__Wire__Role role;
    char *name;                     //  organisation name (never logged)
    char public_key [KP_KEY_TEXT + 1];  //  Z85 CURVE public key
    char **addresses;               //  GM0153 or 12AB00; NULL-terminated
    size_t address_count;
    bool covenant;                  //  school in the Handle with Care covenant
    char *created;                  //  ISO 8601 UTC
    //  The partner's vouched keys, from kp-keys, or NULL; the broker passes
    //  it on and does not check it: clients do, with the region's key
    Kp__Wire__Registration *registration;
} kp_partner_t;

//  Load the registry of the region directory region_dir. Returns NULL (one
//  zsys_error line) if the partners directory is missing or any cert in it
//  is malformed: the broker fails closed rather than run with half a region.
kp_registry_t *
    kp_registry_new (const char *region_dir);

//  Destroy; idempotent, nulls *self_p.
void
    kp_registry_destroy (kp_registry_t **self_p);

//  Re-read the directory. On failure keeps the old contents and returns -1.
//  Sets *changed_p (may be NULL) to whether the partner set changed.
int
    kp_registry_reload (kp_registry_t *self, bool *changed_p);

//  True if the directory looks changed since the last load (cheap: stat of
//  partners/ and revoked/ and their entries' count and mtimes).
bool
    kp_registry_stale (kp_registry_t *self);

//  Lookups; NULL if none. Key comparison is constant-time.
const kp_partner_t *
    kp_registry_by_key (kp_registry_t *self, const char *public_key);
const kp_partner_t *
    kp_registry_by_id (kp_registry_t *self, const char *id);

//  The partner of role that serves address (a municipality or school code).
//  If several serve it, the first by id. NULL if none.
const kp_partner_t *
    kp_registry_serving (kp_registry_t *self, Kp__Wire__Role role,
                         const char *address);

//  Iterate partners in id order: first/next return NULL at the end.
const kp_partner_t *
    kp_registry_first (kp_registry_t *self);
const kp_partner_t *
    kp_registry_next (kp_registry_t *self);

//  Number of partners loaded.
size_t
    kp_registry_size (kp_registry_t *self);

//  True if address is a valid municipality (GM + 4 digits) or school code
//  (2 digits + 2 letters + 2 digits, e.g. 12AB00).
bool
    kp_address_valid (const char *address);

//  True if id is a valid partner id: [a-z0-9-]{1,64}, not starting with '-'.
bool
    kp_partner_id_valid (const char *id);

//  True if name is 1..256 bytes of UTF-8 without control characters or
//  double quotes (ZPL cannot carry a double quote inside a value).
bool
    kp_partner_name_valid (const char *name);

//  Check a partner's fields against the region's rules, the same for the
//  broker loading a partner and kp-keys writing one. Returns NULL if they
//  hold, else what is wrong (a static string).
const char *
    kp_partner_check (const char *id, Kp__Wire__Role role, const char *name,
                      const char *const *addresses, size_t address_count,
                      bool covenant);

#endif
