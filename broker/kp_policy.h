/*  =========================================================================
    kp_policy - who may send which message type to whom; address resolution

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
@header
    The routing table of DESIGN.md as data: for each message type, which
    sender roles may send it, which address kinds they may use, and which
    recipient role an address resolves to. A municipality address resolves
    by message type (a signal for GM0153 to the Veilig Thuis serving it, a
    referral to its local team, a school notification from the police to
    the region's first-leg role). Feedback goes only to the sender of the
    referenced message, from its recipient. Stateless apart from the
    region's school route; lookups go to the live registry.
@end
*/
#ifndef KP_POLICY_H_INCLUDED
#define KP_POLICY_H_INCLUDED

#include "kp_registry.h"

//  What the broker knows of the message a feedback refers to.
typedef struct {
    const char *sender;             //  partner that sent it
    const char *recipient;          //  partner it was delivered to
} kp_reference_t;

//  The outcome of routing one submit.
typedef struct {
    Kp__Wire__ErrorCode code;       //  OK, or why not
    const kp_partner_t *recipient;  //  when OK: the resolved partner
    char reason [200];              //  when not OK: one line for the sender
} kp_route_t;

//  Route a message of type from sender to address. school_route is the
//  role that receives the first leg of a police school notification
//  (LEERPLICHT or VEILIG_THUIS). reference is the referenced message, or
//  NULL if the envelope has none or it is unknown. Fills *route.
void
    kp_policy_route (kp_registry_t *registry, Kp__Wire__Role school_route,
                     const kp_partner_t *sender, Kp__Wire__MessageType type,
                     const char *address, const kp_reference_t *reference,
                     kp_route_t *route);

#endif
