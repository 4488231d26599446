// RuleFile -> CompiledRuleSet: flat tables in a deterministic order.
#include <algorithm>
#include <tuple>

#include "rules/compiled.hpp"

namespace vaultwall::rules {

namespace {

std::vector<Ipv4Prefix> unique_sorted(std::vector<Ipv4Prefix> v) {
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
    return v;
}

}  // namespace

CompiledRuleSet compile(const RuleFile& file) {
    CompiledRuleSet out;
    out.vxlan_port = file.host.vxlan_port;
    out.vteps = unique_sorted(file.host.vteps);

    for (std::uint32_t vi = 0; vi < file.vaults.size(); ++vi) {
        const Vault& v = file.vaults[vi];
        out.vaults.push_back(CompiledVault{
            v.name,
            !v.public_network_access,
            v.default_action == DefaultAction::allow,
            v.bypass == Bypass::azure_services,
        });
        for (const auto& e : v.endpoints)
            out.endpoints.push_back({vi, 0, e.addr, e.port, e.proto, false});
        for (const auto& pe : v.private_endpoints)
            out.endpoints.push_back(
                {vi, pe.vni, pe.endpoint.addr, pe.endpoint.port, pe.endpoint.proto, true});
        for (const auto& r : v.ip_rules) out.rules.push_back({vi, 0, r.prefix, "ip_rules"});
        for (const auto& r : v.vnet_rules)
            out.rules.push_back({vi, r.vni, r.prefix, r.vnet + "/" + r.subnet});
    }

    // Endpoints: by vault, then public before private, then (vni, addr, port, proto).
    auto ep_key = [](const CompiledEndpoint& e) {
        return std::make_tuple(e.vault, e.is_private, e.vni, e.addr, e.port,
                               static_cast<int>(e.proto));
    };
    std::stable_sort(out.endpoints.begin(), out.endpoints.end(),
                     [&](const auto& a, const auto& b) { return ep_key(a) < ep_key(b); });
    out.endpoints.erase(std::unique(out.endpoints.begin(), out.endpoints.end(),
                                    [&](const auto& a, const auto& b) {
                                        return ep_key(a) == ep_key(b);
                                    }),
                        out.endpoints.end());

    // Rules: by (vault, vni, prefix address, prefix length); the first in file
    // order keeps its origin when several collapse into one.
    auto rule_key = [](const CompiledRule& r) {
        return std::make_tuple(r.vault, r.vni, r.prefix.addr, r.prefix.len);
    };
    std::stable_sort(out.rules.begin(), out.rules.end(),
                     [&](const auto& a, const auto& b) { return rule_key(a) < rule_key(b); });
    out.rules.erase(std::unique(out.rules.begin(), out.rules.end(),
                                [&](const auto& a, const auto& b) {
                                    return rule_key(a) == rule_key(b);
                                }),
                    out.rules.end());
    return out;
}

}  // namespace vaultwall::rules
