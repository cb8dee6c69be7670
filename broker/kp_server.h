/*  =========================================================================
    kp_server - the broker actor: ROUTER, CURVE, ZAP, dispatch loop

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
@header
    kp_server is a zactor. It owns the ROUTER socket (CurveZMQ server), its
    own ZAP handler (admitting only registered, unrevoked keys; enforced, so
    no handler means no admission), the registry, the log and body store,
    and the delivery queues. Start it with

        zactor_t *server = zactor_new (kp_server, config);

    where config (a kp_config_t *) must outlive the actor. Pipe commands:

        ENDPOINT  -> replies the bound endpoint, or "" if start-up failed
                     (the reason was logged)
        RELOAD    -> re-reads the registry; replies "OK"
        $TERM     -> logs broker stop, syncs, ends the actor

    If the log cannot be made durable (fsync error), the actor sends
    "FATAL" on its own and then waits only for $TERM: main exits 1.
@end
*/
#ifndef KP_SERVER_H_INCLUDED
#define KP_SERVER_H_INCLUDED

#include "kp_config.h"

void
    kp_server (zsock_t *pipe, void *args);

#endif
