// Verdict reason names (SPEC §4) for the daemon and tools. Kept here so the
// daemon does not depend on the reference classifier to print a counter.
#pragma once

#include "vaultwall_abi.h"

namespace vaultwall::daemon {

inline const char* reason_name(vw_reason r) {
    switch (r) {
        case VW_PASS_NOT_IPV4: return "not_ipv4";
        case VW_PASS_UNPROTECTED: return "unprotected";
        case VW_DROP_MALFORMED: return "malformed";
        case VW_DROP_UNTRUSTED_VTEP: return "untrusted_vtep";
        case VW_DROP_FRAGMENT: return "fragment";
        case VW_DROP_NOT_PRIVATE_LINK: return "not_private_link";
        case VW_PASS_PRIVATE_ENDPOINT: return "private_endpoint";
        case VW_PASS_IP_RULE: return "ip_rule";
        case VW_PASS_VNET_RULE: return "vnet_rule";
        case VW_PASS_DEFAULT_ALLOW: return "default_allow";
        case VW_PASS_TRUSTED_CANDIDATE: return "trusted_candidate";
        case VW_DROP_NO_RULE: return "no_rule";
        case VW_DROP_PUBLIC_ACCESS_DISABLED: return "public_access_disabled";
        default: return "unknown";
    }
}

inline bool reason_is_pass(vw_reason r) {
    switch (r) {
        case VW_PASS_NOT_IPV4:
        case VW_PASS_UNPROTECTED:
        case VW_PASS_PRIVATE_ENDPOINT:
        case VW_PASS_IP_RULE:
        case VW_PASS_VNET_RULE:
        case VW_PASS_DEFAULT_ALLOW:
        case VW_PASS_TRUSTED_CANDIDATE: return true;
        default: return false;
    }
}

}  // namespace vaultwall::daemon
