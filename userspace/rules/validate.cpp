#include "rules/validate.hpp"

#include <algorithm>
#include <cstdint>
#include <map>
#include <tuple>
#include <unordered_map>

#include "rules/ipv4.hpp"
#include "rules/text.hpp"

namespace vaultwall::rules {

namespace {

// Merges rules with the same prefix into the first, with a warning for each
// later one, keeping file order. By sorting (prefix, index) pairs: a hash map
// of a million prefixes cost more than the rest of the ip_rules parse.
void merge_duplicate_ip_rules(Vault& v, Diagnostics& diags) {
    struct Key {
        std::uint64_t prefix;
        std::uint32_t index;
        bool operator<(const Key& o) const {
            return prefix != o.prefix ? prefix < o.prefix : index < o.index;
        }
    };
    std::vector<Key> keys(v.ip_rules.size());
    for (std::uint32_t i = 0; i < keys.size(); ++i)
        keys[i] = {std::uint64_t(v.ip_rules[i].prefix.addr) << 8 | v.ip_rules[i].prefix.len, i};
    std::sort(keys.begin(), keys.end());
    std::vector<std::uint32_t> first_of(v.ip_rules.size(), UINT32_MAX);  // duplicate -> first
    bool any = false;
    for (std::size_t k = 1; k < keys.size(); ++k)
        if (keys[k].prefix == keys[k - 1].prefix) {
            first_of[keys[k].index] =
                first_of[keys[k - 1].index] == UINT32_MAX ? keys[k - 1].index : first_of[keys[k - 1].index];
            any = true;
        }
    if (!any) return;
    for (std::size_t i = 0; i < v.ip_rules.size(); ++i) {
        if (first_of[i] == UINT32_MAX) continue;
        const IpRule& r = v.ip_rules[i];
        const IpRule& o = v.ip_rules[first_of[i]];
        diags.warn(r.pos, "duplicate ip rule " + r.prefix.str() + " in vault " + quote(v.name) +
                              " (first at " + at_text(o.pos, r.pos) + "); merged");
    }
    std::size_t out = 0;
    for (std::size_t i = 0; i < v.ip_rules.size(); ++i)
        if (first_of[i] == UINT32_MAX) {
            if (out != i) v.ip_rules[out] = std::move(v.ip_rules[i]);
            ++out;
        }
    v.ip_rules.resize(out);
}

// The same (VNI, prefix) reached through two VNet/subnet names is one rule.
void merge_duplicate_vnet_rules(Vault& v, Diagnostics& diags) {
    std::map<std::pair<std::uint32_t, std::uint64_t>, std::size_t> seen;
    std::vector<VnetRule> kept;
    kept.reserve(v.vnet_rules.size());
    for (auto& r : v.vnet_rules) {
        auto key = std::make_pair(r.vni, std::uint64_t(r.prefix.addr) << 8 | r.prefix.len);
        auto [at, fresh] = seen.emplace(key, kept.size());
        if (!fresh) {
            const VnetRule& o = kept[at->second];
            diags.warn(r.pos, "duplicate virtual network rule " + r.vnet + "/" + r.subnet + " (" +
                                  r.prefix.str() + " in VNI " + std::to_string(r.vni) +
                                  ") in vault " + quote(v.name) + " (same as " + o.vnet + "/" +
                                  o.subnet + " at " + at_text(o.pos, r.pos) + "); merged");
            continue;
        }
        kept.push_back(std::move(r));
    }
    v.vnet_rules = std::move(kept);
}

// Key Vault names are case-insensitive (the gate compares them so).
void check_vault_names(const RuleFile& rf, Diagnostics& diags) {
    std::unordered_map<std::string, const Vault*> first;  // by lower-case name
    for (const auto& v : rf.vaults) {
        auto [it, fresh] = first.emplace(lower(v.name), &v);
        if (fresh) continue;
        const Vault& o = *it->second;
        diags.error(v.pos, "duplicate vault name " + quote(v.name) + " (first at " +
                               at_text(o.pos, v.pos) +
                               (o.name == v.name ? std::string() : ", spelled " + quote(o.name)) +
                               "); vault names must be unique, ignoring case as Key Vault does");
    }
}

// An endpoint (public: VNI 0) belongs to one vault only.
void check_endpoint_owners(const RuleFile& rf, Diagnostics& diags) {
    std::map<std::tuple<std::uint32_t, std::uint32_t, std::uint16_t, int>,
             std::pair<const Vault*, SourcePos>>
        owner;
    auto claim = [&](const Vault& v, std::uint32_t vni, const Endpoint& e, const char* kind) {
        auto key = std::make_tuple(vni, e.addr, e.port, static_cast<int>(e.proto));
        auto [it, fresh] = owner.emplace(key, std::make_pair(&v, e.pos));
        if (!fresh && it->second.first != &v)
            diags.error(e.pos, std::string(kind) + " " + format_ipv4(e.addr) + ":" +
                                   std::to_string(e.port) + " is already served by vault " +
                                   quote(it->second.first->name) + " (at " +
                                   at_text(it->second.second, e.pos) +
                                   "); an endpoint belongs to exactly one vault");
    };
    for (const auto& v : rf.vaults) {
        for (const auto& e : v.endpoints) claim(v, 0, e, "endpoint");
        for (const auto& pe : v.private_endpoints) claim(v, pe.vni, pe.endpoint, "private endpoint");
    }
}

// The gate forwards to each vault's upstream and checks tokens against its
// tenant; without a gate neither is needed.
void check_gate_needs(const RuleFile& rf, Diagnostics& diags) {
    if (!rf.gate) return;
    for (const auto& v : rf.vaults) {
        if (v.tenant_id.empty())
            diags.error(v.pos, "missing required key 'tenant_id' in vault " + quote(v.name) +
                                   " (the gate checks its tokens' tenant); add e.g. "
                                   "`tenant_id: 3f1c9a52-7d0e-4b8a-9c11-5e2f0a6d4b10`");
        if (v.upstream.empty())
            diags.error(v.pos, "vault " + quote(v.name) +
                                   " has no upstream, but the gate forwards to it; add e.g. "
                                   "`upstream: http://127.0.0.1:8200`");
    }
}

}  // namespace

void validate(RuleFile& rf, Diagnostics& diags) {
    for (auto& v : rf.vaults) {
        merge_duplicate_ip_rules(v, diags);
        merge_duplicate_vnet_rules(v, diags);
    }
    check_vault_names(rf, diags);
    check_endpoint_owners(rf, diags);
    check_gate_needs(rf, diags);
}

}  // namespace vaultwall::rules
