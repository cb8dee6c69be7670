/*  =========================================================================
    kp_region - make a region directory and register, list, revoke partners

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
@header
    The writing side of the registry, used by kp-keys and by tests that
    build a region at runtime. Layout of a region directory:

        REGION/broker               broker CURVE public cert (zcert ZPL)
        REGION/broker_secret        its secret cert, mode 0600
        REGION/checkpoint.pub       Ed25519 checkpoint public key (hex)
        REGION/checkpoint_secret    Ed25519 checkpoint secret key, 0600
        REGION/registration.pub     Ed25519 registration public key (hex):
                                    handed to every partner out of band
        REGION/registration_secret  its secret key (hex), 0600: vouches for
                                    partner keys; keep it offline
        REGION/partners/ID          partner public cert + metadata, with
                                    "registration": base64 of the packed
                                    kp.wire.Registration (vouched keys)
        REGION/revoked/ID           revoked partner cert (+ revoked = time)
        REGION/secrets/ID_secret    partner secret cert to hand out, 0600,
                                    also holding "sign-secret" (Ed25519,
                                    64 bytes hex) and "seal-secret"
                                    (X25519, 32 bytes hex)

    Every file is created with fsync of file and directory; nothing is ever
    overwritten. Secrets are wiped from memory after writing.
@end
*/
#ifndef KP_REGION_H_INCLUDED
#define KP_REGION_H_INCLUDED

#include "kp_registry.h"

//  Create region_dir (must not exist or be empty) with broker cert,
//  checkpoint key and registration key. name is also the region's name in
//  every partner's registration. name is the broker's name (cert metadata). 0 or -1 with
//  one zsys_error line.
int
    kp_region_init (const char *region_dir, const char *name) KP_MUST_CHECK;

//  Register a partner: new CURVE, Ed25519 (signing) and X25519 (sealing)
//  keypairs, a RegistrationStatement signed with REGION/registration_secret,
//  public cert with metadata (and "registration") in partners/ID, secret
//  cert (with "sign-secret" and "seal-secret") in secrets/ID_secret.
//  addresses is NULL-terminated (municipality codes, or one school code for
//  a school). If public_key is not NULL (40 Z85 chars), register that key
//  instead and write no secret; such a partner gets no registration (no
//  sealed bodies): use kp_region_add_keys to give its signing and sealing
//  keys too. Refuses a duplicate id or key, a bad id, role or address.
//  Returns 0 or -1 with one zsys_error line.
int
    kp_region_add (const char *region_dir, const char *id, Kp__Wire__Role role,
                   const char *name, const char *const *addresses, bool covenant,
                   const char *public_key) KP_MUST_CHECK;

//  As kp_region_add; with public_key, sign_key_hex (Ed25519 public key, 64
//  hex digits) and seal_key_hex (X25519 public key, 64 hex digits) made by
//  the partner itself are registered as well. All three or none.
int
    kp_region_add_keys (const char *region_dir, const char *id, Kp__Wire__Role role,
                        const char *name, const char *const *addresses,
                        bool covenant, const char *public_key,
                        const char *sign_key_hex, const char *seal_key_hex)
                        KP_MUST_CHECK;

//  Revoke partner id: move partners/ID to revoked/ID with revoked = time,
//  fsync both directories. Returns 0 or -1.
int
    kp_region_revoke (const char *region_dir, const char *id) KP_MUST_CHECK;

//  Path of partner id's secret cert (REGION/secrets/ID_secret). Caller frees.
char *
    kp_region_secret_path (const char *region_dir, const char *id);

//  Path of the region's registration public key (REGION/registration.pub),
//  the file partners get out of band. Caller frees.
char *
    kp_region_registration_key (const char *region_dir);

//  Path of the broker's public cert (REGION/broker). Caller frees.
char *
    kp_region_broker_cert (const char *region_dir);

#endif
