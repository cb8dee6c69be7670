/*  =========================================================================
    kp_policy - who may send which message type to whom; address resolution

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
*/
#include "kp_policy.h"

typedef enum {
    S_MUNICIPALITY,                 //  municipality:GMnnnn
    S_SCHOOL,                       //  school:99XX99
    S_PARTNER                       //  partner:ID
} s_address_kind_t;

//  A recipient role of S_ROUTE means: the region's school route
#define S_ROUTE ((Kp__Wire__Role) -1)

//  One allowed route. A partner:ID address is allowed wherever the partner
//  has the recipient role of a row for that sender and type.
typedef struct {
    Kp__Wire__MessageType type;
    Kp__Wire__Role sender;
    s_address_kind_t kind;
    Kp__Wire__Role recipient;
} s_rule_t;

static const s_rule_t s_rules [] = {
    { KP__WIRE__MESSAGE_TYPE__SIGNAL, KP__WIRE__ROLE__POLICE,
      S_MUNICIPALITY, KP__WIRE__ROLE__VEILIG_THUIS },
    { KP__WIRE__MESSAGE_TYPE__SIGNAL, KP__WIRE__ROLE__LOCAL_TEAM,
      S_MUNICIPALITY, KP__WIRE__ROLE__VEILIG_THUIS },
    { KP__WIRE__MESSAGE_TYPE__SIGNAL, KP__WIRE__ROLE__SCHOOL,
      S_MUNICIPALITY, KP__WIRE__ROLE__VEILIG_THUIS },
    { KP__WIRE__MESSAGE_TYPE__SIGNAL, KP__WIRE__ROLE__LEERPLICHT,
      S_MUNICIPALITY, KP__WIRE__ROLE__VEILIG_THUIS },
    { KP__WIRE__MESSAGE_TYPE__REFERRAL, KP__WIRE__ROLE__VEILIG_THUIS,
      S_MUNICIPALITY, KP__WIRE__ROLE__LOCAL_TEAM },
    { KP__WIRE__MESSAGE_TYPE__SCHOOL_NOTIFICATION, KP__WIRE__ROLE__POLICE,
      S_MUNICIPALITY, S_ROUTE },
    { KP__WIRE__MESSAGE_TYPE__SCHOOL_NOTIFICATION, KP__WIRE__ROLE__VEILIG_THUIS,
      S_MUNICIPALITY, KP__WIRE__ROLE__LEERPLICHT },
    { KP__WIRE__MESSAGE_TYPE__SCHOOL_NOTIFICATION, KP__WIRE__ROLE__LEERPLICHT,
      S_SCHOOL, KP__WIRE__ROLE__SCHOOL },
    { KP__WIRE__MESSAGE_TYPE__SCHOOL_NOTIFICATION, KP__WIRE__ROLE__VEILIG_THUIS,
      S_SCHOOL, KP__WIRE__ROLE__SCHOOL },
};
#define S_RULE_COUNT (sizeof s_rules / sizeof s_rules [0])

static void
s_refuse (kp_route_t *route, Kp__Wire__ErrorCode code, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

static void
s_refuse (kp_route_t *route, Kp__Wire__ErrorCode code, const char *format, ...)
{
    route->code = code;
    route->recipient = NULL;
    va_list args;
    va_start (args, format);
    vsnprintf (route->reason, sizeof route->reason, format, args);
    va_end (args);
}

//  The rule's recipient role, with the school route filled in
static Kp__Wire__Role
s_rule_recipient (const s_rule_t *rule, Kp__Wire__Role school_route)
{
    return rule->recipient == S_ROUTE? school_route: rule->recipient;
}

//  Feedback: from the recipient of the referenced message to its sender only
static void
s_route_feedback (kp_registry_t *registry, const kp_partner_t *sender,
                  s_address_kind_t kind, const char *target,
                  const kp_reference_t *reference, kp_route_t *route)
{
    if (!reference)
        s_refuse (route, KP__WIRE__ERROR_CODE__UNKNOWN_REFERENCE,
                  "feedback must refer to a message you received");
    else
    if (strcmp (reference->recipient, sender->id) != 0)
        s_refuse (route, KP__WIRE__ERROR_CODE__FORBIDDEN,
                  "feedback may come only from the recipient of the referenced message");
    else
    if (kind != S_PARTNER || strcmp (target, reference->sender) != 0)
        s_refuse (route, KP__WIRE__ERROR_CODE__FORBIDDEN,
                  "feedback goes only to partner:%s, the sender of the referenced message",
                  reference->sender);
    else {
        route->recipient = kp_registry_by_id (registry, reference->sender);
        if (route->recipient)
            route->code = KP__WIRE__ERROR_CODE__OK;
        else
            s_refuse (route, KP__WIRE__ERROR_CODE__UNKNOWN_ADDRESS,
                      "partner %s is no longer registered", reference->sender);
    }
}

//  --------------------------------------------------------------------------
//  Route a message of type from sender to address; fills *route

void
kp_policy_route (kp_registry_t *registry, Kp__Wire__Role school_route,
                 const kp_partner_t *sender, Kp__Wire__MessageType type,
                 const char *address, const kp_reference_t *reference,
                 kp_route_t *route)
{
    assert (registry);
    assert (sender);
    assert (route);
    memset (route, 0, sizeof *route);
    const char *type_name = kp_type_name (type);
    const char *role_name = kp_role_name (sender->role);
    if (!type_name) {
        s_refuse (route, KP__WIRE__ERROR_CODE__BAD_ENVELOPE, "unknown message type");
        return;
    }
    //  Parse the address: kind and target
    s_address_kind_t kind;
    const char *target;
    if (address && strncmp (address, "municipality:", 13) == 0) {
        kind = S_MUNICIPALITY;
        target = address + 13;
    }
    else
    if (address && strncmp (address, "school:", 7) == 0) {
        kind = S_SCHOOL;
        target = address + 7;
    }
    else
    if (address && strncmp (address, "partner:", 8) == 0) {
        kind = S_PARTNER;
        target = address + 8;
    }
    else {
        s_refuse (route, KP__WIRE__ERROR_CODE__BAD_ENVELOPE,
                  "recipient must be municipality:GMnnnn, school:CODE or partner:ID");
        return;
    }
    if (kind != S_PARTNER && !kp_address_valid (target)) {
        s_refuse (route, KP__WIRE__ERROR_CODE__BAD_ENVELOPE,
                  "'%.60s' is not a municipality or school code", target);
        return;
    }
    if (type == KP__WIRE__MESSAGE_TYPE__FEEDBACK) {
        s_route_feedback (registry, sender, kind, target, reference, route);
        return;
    }
    //  Which rules let this role send this type at all?
    bool type_allowed = false;
    const kp_partner_t *target_partner =
        kind == S_PARTNER? kp_registry_by_id (registry, target): NULL;
    for (size_t index = 0; index < S_RULE_COUNT; index++) {
        const s_rule_t *rule = s_rules + index;
        if (rule->type != type || rule->sender != sender->role)
            continue;
        type_allowed = true;
        Kp__Wire__Role recipient_role = s_rule_recipient (rule, school_route);
        if (kind == S_PARTNER) {
            if (target_partner && target_partner->role == recipient_role) {
                route->recipient = target_partner;
                break;
            }
        }
        else
        if (kind == rule->kind) {
            route->recipient = kp_registry_serving (registry, recipient_role, target);
            if (!route->recipient) {
                s_refuse (route, KP__WIRE__ERROR_CODE__UNKNOWN_ADDRESS,
                          "no %s serves %s for %s", kp_role_name (recipient_role),
                          target, type_name);
                return;
            }
            break;
        }
    }
    if (!type_allowed) {
        s_refuse (route, KP__WIRE__ERROR_CODE__FORBIDDEN,
                  "role %s may not send %s", role_name, type_name);
        return;
    }
    if (!route->recipient) {
        if (kind == S_PARTNER && !target_partner)
            s_refuse (route, KP__WIRE__ERROR_CODE__UNKNOWN_ADDRESS,
                      "no registered partner '%.64s'", target);
        else
            s_refuse (route, KP__WIRE__ERROR_CODE__FORBIDDEN,
                      "role %s may not send %s to %s", role_name, type_name, address);
        return;
    }
    //  Handle with Care reaches only schools in the region's covenant
    if (route->recipient->role == KP__WIRE__ROLE__SCHOOL && !route->recipient->covenant) {
        s_refuse (route, KP__WIRE__ERROR_CODE__NOT_COVENANT,
                  "school %s has not joined the Handle with Care covenant", target);
        return;
    }
    route->code = KP__WIRE__ERROR_CODE__OK;
}
