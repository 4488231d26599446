// Verdict reason names as SPEC §4 spells them, for every part of user space
// (reference classifier, daemon, tools, gate). Which reasons pass is defined
// once, in the shared ABI (vw_reason_passes), for the datapath too.
#pragma once

#include <optional>
#include <string_view>

#include "vaultwall_abi.h"

namespace vaultwall {

// "not_ipv4", "unprotected", ... ; "unknown" for values outside the enum.
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

// The reason spelled `name`, if any.
inline std::optional<vw_reason> reason_from_name(std::string_view name) {
    for (int r = 0; r < VW_REASONS; ++r)
        if (name == reason_name(vw_reason(r))) return vw_reason(r);
    return std::nullopt;
}

// XDP_PASS (true) or XDP_DROP (false).
inline bool reason_is_pass(vw_reason r) { return vw_reason_passes(r) != 0; }

// Counted globally (true) or per vault (false).
inline bool reason_is_global(vw_reason r) { return r < VW_GLOBAL_REASONS; }

}  // namespace vaultwall
