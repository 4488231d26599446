#include "gate/admission.hpp"

namespace vaultwall::gate {

Admission resolve_admission(const std::optional<vw_admission>& rec, const VaultNameOf& name_of,
                            const rules::Vault& vault, const IpAddress& client, bool private_endpoint) {
    Admission a;
    if (rec) {
        std::string name = name_of ? name_of(rec->vault_id) : std::string{};
        // A pass with a vault (the datapath records only those).
        bool pass = !reason_is_global(vw_reason(rec->reason)) && reason_is_pass(vw_reason(rec->reason));
        bool pe_ok = (rec->reason == VW_PASS_PRIVATE_ENDPOINT) == private_endpoint;
        if (name == vault.name && pass && pe_ok) {
            a.admitted = true;
            a.reason = rec->reason;
            a.vni = rec->vni;
            a.rule_id = rec->rule_id;
            a.from_datapath = true;
            a.detail = "datapath";
            return a;
        }
        a.detail = "datapath record does not match this vault; ";
    }
    // Fail closed.
    if (private_endpoint) {
        a.reason = VW_DROP_NOT_PRIVATE_LINK;
        a.detail += "no datapath record for a private-endpoint connection";
        return a;
    }
    if (!vault.public_network_access) {
        a.reason = VW_DROP_PUBLIC_ACCESS_DISABLED;
        a.detail += "no datapath record; public network access is disabled";
        return a;
    }
    auto admit = [&a](const std::string& prefix) {
        a.admitted = true;
        a.reason = VW_PASS_IP_RULE;
        a.detail += "user-space ip rule " + prefix;
        return a;
    };
    if (client.is_v6()) {
        for (const auto& r : vault.ip_rules6)
            if (r.prefix.contains(client.v6())) return admit(r.prefix.str());
    } else {
        for (const auto& r : vault.ip_rules)
            if (r.prefix.contains(client.v4())) return admit(r.prefix.str());
    }
    a.reason = VW_DROP_NO_RULE;
    a.detail += "no datapath record and no ip rule admits the client";
    return a;
}

}  // namespace vaultwall::gate
