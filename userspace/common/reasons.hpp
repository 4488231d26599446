// Verdict reason names as SPEC §4 spells them, for every part of user space
// (reference classifier, daemon, tools, gate). Which reasons pass is defined
// once, in the shared ABI (vw_reason_passes), for the datapath too.
#pragma once

#include <optional>
#include <string_view>

#include "vaultwall_abi.h"

namespace vaultwall {

// "not_ip", "unprotected", ... ; "unknown" for values outside the enum.
// An audit reason has the name of the drop it stands for: its verdict
// (verdict_name) tells them apart.
inline const char* reason_name(vw_reason r) {
    switch (r) {
        case VW_PASS_NOT_IP: return "not_ip";
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
        case VW_AUDIT_NO_RULE: return "no_rule";
        case VW_AUDIT_PUBLIC_ACCESS_DISABLED: return "public_access_disabled";
        default: return "unknown";
    }
}

// XDP_PASS (true) or XDP_DROP (false).
inline bool reason_is_pass(vw_reason r) { return vw_reason_passes(r) != 0; }

// Passed only because its vault is in audit mode.
inline bool reason_is_audit(vw_reason r) { return vw_reason_is_audit(r) != 0; }

// "pass", "drop" or "audit" (SPEC §4 and §9 group names, Prometheus verdict).
inline const char* verdict_name(vw_reason r) {
    return reason_is_audit(r) ? "audit" : reason_is_pass(r) ? "pass" : "drop";
}

// The reason spelled `name` under `verdict`, if any.
inline std::optional<vw_reason> reason_from_name(std::string_view verdict, std::string_view name) {
    for (int r = 0; r < VW_REASONS; ++r)
        if (name == reason_name(vw_reason(r)) && verdict == verdict_name(vw_reason(r))) return vw_reason(r);
    return std::nullopt;
}

// The reason spelled `name`, if any; a drop before its audit twin.
inline std::optional<vw_reason> reason_from_name(std::string_view name) {
    for (int r = 0; r < VW_REASONS; ++r)
        if (name == reason_name(vw_reason(r))) return vw_reason(r);
    return std::nullopt;
}

// Counted globally (true) or per vault (false).
inline bool reason_is_global(vw_reason r) { return r < VW_GLOBAL_REASONS; }

}  // namespace vaultwall
