/*  =========================================================================
    kp_config - ketenpostd's ZPL config file -> validated, typed config

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
@header
    kp_config_load parses a ZPL file once (zconfig) into a kp_config_t whose
    every field has a value: from the file, else from the one defaults table
    in kp_config.c (mirrored in docs/CONFIG.md). Unknown keys and a bad
    security section are errors; the broker fails closed. Command-line flags
    override fields with kp_config_set. Plain data after load; one thread.
@end
*/
#ifndef KP_CONFIG_H_INCLUDED
#define KP_CONFIG_H_INCLUDED

#include "kp_util.h"

typedef struct {
    //  server
    char *name;                     //  broker name, in logs and Welcome
    int verbose;                    //  1 = per-message debug logging
    int logsystem;                  //  1 = syslog, 0 = stderr
    int heartbeat;                  //  msec; peer expires after 3 missed
    int handshake;                  //  msec allowed for the CURVE handshake
    //  security
    char *region;                   //  region dir (kp-keys): partners/, broker
    char *server_cert;              //  broker cert; "_secret" file beside it
    //  bind
    char *endpoint;                 //  e.g. tcp://127.0.0.1:7700
    //  log
    char *data_dir;                 //  log/ and bodies/ live here
    int64_t segment_size;           //  bytes per segment file
    int load_truncated;             //  1 = cut a torn tail at start
    //  limits
    int64_t max_message;            //  bytes per frame
    int64_t max_body [5];           //  bytes per body, by MessageType
    int max_sessions;
    //  delivery
    int credit;                     //  largest credit window granted
    int ack_timeout;                //  msec before an unacked delivery is resent
    int64_t default_ttl;            //  msec until a message without expiry expires
    //  policy
    Kp__Wire__Role school_route;    //  LEERPLICHT or VEILIG_THUIS: first leg
    //  audit
    bool audit_open [5];            //  by MessageType: auditors may open bodies
} kp_config_t;

//  Load and validate path. Returns NULL (one zsys_error line naming the file,
//  the key and what is wrong) on any error.
kp_config_t *
    kp_config_load (const char *path);

//  A config holding only defaults (for tests and for flags-only start).
//  region, server_cert, endpoint, data_dir are NULL and must be set.
kp_config_t *
    kp_config_new (void);

//  Set one key by its path ("bind/endpoint", "log/dir", ...) from text, as a
//  flag would. Returns 0, or -1 with one zsys_error line.
int
    kp_config_set (kp_config_t *self, const char *path, const char *value) KP_MUST_CHECK;

//  Check the fields that have no default are set and coherent. 0 or -1.
int
    kp_config_check (kp_config_t *self) KP_MUST_CHECK;

//  Destroy; idempotent, nulls *self_p.
void
    kp_config_destroy (kp_config_t **self_p);

#endif
