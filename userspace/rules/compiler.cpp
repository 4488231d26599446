// RuleFile -> CompiledRuleSet: flat tables in a deterministic order.
#include <algorithm>
#include <cstdint>
#include <tuple>

#include "rules/compiled.hpp"

namespace vaultwall::rules {

namespace {

template <typename P>
std::vector<P> unique_sorted(std::vector<P> v) {
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
    return v;
}

// Sorted by (vault, vni, prefix), one rule of each; the first in file order
// keeps its origin. (IPv6 rule sets are smaller; they sort the rules themselves.)
void sort_unique(std::vector<CompiledRule6>& rules) {
    auto key = [](const CompiledRule6& r) { return std::tie(r.vault, r.vni, r.prefix); };
    std::stable_sort(rules.begin(), rules.end(), [&](const auto& a, const auto& b) { return key(a) < key(b); });
    rules.erase(std::unique(rules.begin(), rules.end(), [&](const auto& a, const auto& b) { return key(a) == key(b); }),
                rules.end());
}

// By vault, then public before private, then (vni, addr, port, proto); one of each.
template <typename E>
void sort_unique(std::vector<E>& eps) {
    auto key = [](const E& e) {
        return std::make_tuple(e.vault, e.is_private, e.vni, e.addr, e.port, static_cast<int>(e.proto));
    };
    std::stable_sort(eps.begin(), eps.end(), [&](const auto& a, const auto& b) { return key(a) < key(b); });
    eps.erase(std::unique(eps.begin(), eps.end(), [&](const auto& a, const auto& b) { return key(a) == key(b); }),
              eps.end());
}

}  // namespace

CompiledRuleSet compile(const RuleFile& file) {
    CompiledRuleSet out;
    out.vxlan_port = file.host.vxlan_port;
    out.drop_events_per_second = file.host.drop_events_per_second;
    out.vteps = unique_sorted(file.host.vteps);
    out.vteps6 = unique_sorted(file.host.vteps6);

    for (std::uint32_t vi = 0; vi < file.vaults.size(); ++vi) {
        const Vault& v = file.vaults[vi];
        out.vaults.push_back(CompiledVault{
            v.name,
            !v.public_network_access,
            v.default_action == DefaultAction::allow,
            v.bypass == Bypass::azure_services,
            v.enforcement == Enforcement::audit,
        });
        for (const auto& e : v.endpoints)
            out.endpoints.push_back({vi, 0, e.addr, e.port, e.proto, false});
        for (const auto& pe : v.private_endpoints)
            out.endpoints.push_back(
                {vi, pe.vni, pe.endpoint.addr, pe.endpoint.port, pe.endpoint.proto, true});
        for (const auto& e : v.endpoints6)
            out.endpoints6.push_back({vi, 0, e.addr, e.port, e.proto, false});
        for (const auto& pe : v.private_endpoints6)
            out.endpoints6.push_back(
                {vi, pe.vni, pe.endpoint.addr, pe.endpoint.port, pe.endpoint.proto, true});
        for (const auto& r : v.ip_rules) out.rules.push_back({vi, 0, r.prefix, "ip_rules"});
        for (const auto& r : v.ip_rules6) out.rules6.push_back({vi, 0, r.prefix, "ip_rules"});
        for (const auto& r : v.vnet_rules) {
            for (const auto& p : r.prefixes) out.rules.push_back({vi, r.vni, p, r.vnet + "/" + r.subnet});
            for (const auto& p : r.prefixes6) out.rules6.push_back({vi, r.vni, p, r.vnet + "/" + r.subnet});
        }
    }

    sort_unique(out.endpoints);
    sort_unique(out.endpoints6);
    sort_unique(out.rules6);

    // Rules: by (vault, vni, prefix address, prefix length); the first in file
    // order keeps its origin when several collapse into one.
    // Sorted as packed keys, then gathered once: moving the rules themselves
    // (with their origin strings) through a sort took ~0.4 s at 1M rules.
    struct Key {
        std::uint64_t scope;   // vault << 32 | vni
        std::uint64_t prefix;  // addr << 8 | len
        std::uint32_t index;   // file order breaks ties: the first keeps its origin
        bool operator<(const Key& o) const {
            return std::tie(scope, prefix, index) < std::tie(o.scope, o.prefix, o.index);
        }
    };
    std::vector<Key> keys;
    keys.reserve(out.rules.size());
    for (std::uint32_t i = 0; i < out.rules.size(); ++i) {
        const auto& r = out.rules[i];
        keys.push_back({std::uint64_t(r.vault) << 32 | r.vni,
                        std::uint64_t(r.prefix.addr) << 8 | r.prefix.len, i});
    }
    std::sort(keys.begin(), keys.end());
    std::vector<CompiledRule> rules;
    rules.reserve(keys.size());
    for (std::size_t k = 0; k < keys.size(); ++k)
        if (k == 0 || keys[k].scope != keys[k - 1].scope || keys[k].prefix != keys[k - 1].prefix)
            rules.push_back(std::move(out.rules[keys[k].index]));
    out.rules = std::move(rules);
    return out;
}

}  // namespace vaultwall::rules
