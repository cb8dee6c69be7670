/*  =========================================================================
    test_kp_policy - the routing table and address resolution

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
*/
#include <criterion/criterion.h>
#include "kp_testutil.h"
#include "kp_policy.h"

typedef struct {
    const char *sender;             //  partner id in the demo region
    Kp__Wire__MessageType type;
    const char *address;
    Kp__Wire__Role school_route;
    Kp__Wire__ErrorCode code;       //  expected outcome
    const char *recipient;          //  expected partner when OK
} s_case_t;

#define SIGNAL KP__WIRE__MESSAGE_TYPE__SIGNAL
#define REFERRAL KP__WIRE__MESSAGE_TYPE__REFERRAL
#define NOTIFICATION KP__WIRE__MESSAGE_TYPE__SCHOOL_NOTIFICATION
#define LEERPLICHT KP__WIRE__ROLE__LEERPLICHT
#define VEILIG_THUIS KP__WIRE__ROLE__VEILIG_THUIS
#define OK KP__WIRE__ERROR_CODE__OK
#define FORBIDDEN KP__WIRE__ERROR_CODE__FORBIDDEN
#define UNKNOWN KP__WIRE__ERROR_CODE__UNKNOWN_ADDRESS
#define BAD KP__WIRE__ERROR_CODE__BAD_ENVELOPE
#define NOT_COVENANT KP__WIRE__ERROR_CODE__NOT_COVENANT

static s_case_t s_cases [] = {
    //  Signals go to the Veilig Thuis of the municipality
    { "police-oost", SIGNAL, "municipality:GM0153", LEERPLICHT, OK, "vt-twente" },
    { "police-oost", SIGNAL, "municipality:GM1700", LEERPLICHT, OK, "vt-twente" },
    { "lt-enschede", SIGNAL, "municipality:GM0153", LEERPLICHT, OK, "vt-twente" },
    { "school-12ab00", SIGNAL, "municipality:GM0153", LEERPLICHT, OK, "vt-twente" },
    { "lp-enschede", SIGNAL, "municipality:GM0153", LEERPLICHT, OK, "vt-twente" },
    { "police-oost", SIGNAL, "partner:vt-twente", LEERPLICHT, OK, "vt-twente" },
    { "police-oost", SIGNAL, "partner:lt-enschede", LEERPLICHT, FORBIDDEN, NULL },
    { "vt-twente", SIGNAL, "municipality:GM0153", LEERPLICHT, FORBIDDEN, NULL },
    { "police-oost", SIGNAL, "municipality:GM0983", LEERPLICHT, UNKNOWN, NULL },
    { "police-oost", SIGNAL, "school:12AB00", LEERPLICHT, FORBIDDEN, NULL },
    { "police-oost", SIGNAL, "municipality:GM153", LEERPLICHT, BAD, NULL },
    { "police-oost", SIGNAL, "GM0153", LEERPLICHT, BAD, NULL },
    { "police-oost", SIGNAL, "partner:nobody", LEERPLICHT, UNKNOWN, NULL },
    //  Referrals from Veilig Thuis to the local team
    { "vt-twente", REFERRAL, "municipality:GM0153", LEERPLICHT, OK, "lt-enschede" },
    { "vt-twente", REFERRAL, "municipality:GM0164", LEERPLICHT, OK, "lt-hengelo" },
    { "vt-twente", REFERRAL, "municipality:GM0141", LEERPLICHT, UNKNOWN, NULL },
    { "police-oost", REFERRAL, "municipality:GM0153", LEERPLICHT, FORBIDDEN, NULL },
    { "school-12ab00", REFERRAL, "municipality:GM0153", LEERPLICHT, FORBIDDEN, NULL },
    //  Handle with Care: the first leg follows the region's route
    { "police-oost", NOTIFICATION, "municipality:GM0153", LEERPLICHT, OK, "lp-enschede" },
    { "police-oost", NOTIFICATION, "municipality:GM0153", VEILIG_THUIS, OK, "vt-twente" },
    { "vt-twente", NOTIFICATION, "municipality:GM0153", VEILIG_THUIS, OK, "lp-enschede" },
    { "police-oost", NOTIFICATION, "school:12AB00", LEERPLICHT, FORBIDDEN, NULL },
    { "lp-enschede", NOTIFICATION, "school:12AB00", LEERPLICHT, OK, "school-12ab00" },
    { "vt-twente", NOTIFICATION, "school:12AB00", LEERPLICHT, OK, "school-12ab00" },
    { "lp-enschede", NOTIFICATION, "school:34CD00", LEERPLICHT, NOT_COVENANT, NULL },
    { "lp-enschede", NOTIFICATION, "partner:school-34cd00", LEERPLICHT, NOT_COVENANT, NULL },
    { "lp-enschede", NOTIFICATION, "school:56EF00", LEERPLICHT, UNKNOWN, NULL },
    { "lp-enschede", NOTIFICATION, "municipality:GM0153", LEERPLICHT, FORBIDDEN, NULL },
    { "school-12ab00", NOTIFICATION, "school:12AB00", LEERPLICHT, FORBIDDEN, NULL },
    { "lt-enschede", NOTIFICATION, "municipality:GM0153", LEERPLICHT, FORBIDDEN, NULL },
};

//  One region for the whole table: each row is checked and reported on its
//  own, so a failing row names itself and the others still run.
Test (kp_policy, routing_table)
{
    kp_test_region_t *region = kp_test_region_new ();
    kp_registry_t *registry = kp_registry_new (region->region);
    cr_assert_not_null (registry);
    for (size_t index = 0; index < sizeof s_cases / sizeof s_cases [0]; index++) {
        const s_case_t *test_case = &s_cases [index];
        const kp_partner_t *sender = kp_registry_by_id (registry, test_case->sender);
        cr_assert_not_null (sender, "row %zu: no partner %s", index, test_case->sender);
        kp_route_t route;
        kp_policy_route (registry, test_case->school_route, sender, test_case->type,
                         test_case->address, NULL, &route);
        cr_expect_eq (route.code, test_case->code, "row %zu, %s %s %s: expected %s, got %s (%s)",
                      index, test_case->sender, kp_type_name (test_case->type),
                      test_case->address, kp_error_name (test_case->code),
                      kp_error_name (route.code), route.reason);
        if (test_case->recipient) {
            cr_expect (route.recipient && streq (route.recipient->id, test_case->recipient),
                       "row %zu: expected recipient %s", index, test_case->recipient);
        }
        else {
            cr_expect_null (route.recipient, "row %zu", index);
            cr_expect_gt (strlen (route.reason), 10, "row %zu: reason too short", index);
        }
    }
    kp_registry_destroy (&registry);
    kp_test_region_destroy (&region);
}

Test (kp_policy, feedback_goes_only_from_recipient_to_sender)
{
    kp_test_region_t *region = kp_test_region_new ();
    kp_registry_t *registry = kp_registry_new (region->region);
    kp_reference_t signal = { "police-oost", "vt-twente" };
    const kp_partner_t *veilig_thuis = kp_registry_by_id (registry, "vt-twente");
    const kp_partner_t *local_team = kp_registry_by_id (registry, "lt-enschede");
    kp_route_t route;
    kp_policy_route (registry, LEERPLICHT, veilig_thuis, KP__WIRE__MESSAGE_TYPE__FEEDBACK,
                     "partner:police-oost", &signal, &route);
    cr_assert_eq (route.code, OK);
    cr_assert_str_eq (route.recipient->id, "police-oost");
    kp_policy_route (registry, LEERPLICHT, veilig_thuis, KP__WIRE__MESSAGE_TYPE__FEEDBACK,
                     "partner:lt-enschede", &signal, &route);
    cr_assert_eq (route.code, FORBIDDEN);
    kp_policy_route (registry, LEERPLICHT, local_team, KP__WIRE__MESSAGE_TYPE__FEEDBACK,
                     "partner:police-oost", &signal, &route);
    cr_assert_eq (route.code, FORBIDDEN);
    kp_policy_route (registry, LEERPLICHT, veilig_thuis, KP__WIRE__MESSAGE_TYPE__FEEDBACK,
                     "partner:police-oost", NULL, &route);
    cr_assert_eq (route.code, KP__WIRE__ERROR_CODE__UNKNOWN_REFERENCE);
    kp_registry_destroy (&registry);
    kp_test_region_destroy (&region);
}
