#include "rules/validate.hpp"

#include <algorithm>
#include <cstdint>
#include <map>
#include <tuple>
#include <unordered_map>

#include "rules/ipv4.hpp"
#include "rules/names.hpp"
#include "rules/text.hpp"

namespace vaultwall::rules {

namespace {

// The key a prefix sorts by when looking for duplicates: packed for IPv4 (a
// million of them are sorted on every load), the prefix itself for IPv6.
std::uint64_t dup_key(const Ipv4Prefix& p) { return std::uint64_t(p.addr) << 8 | p.len; }
const Ipv6Prefix& dup_key(const Ipv6Prefix& p) { return p; }

// Merges rules with the same prefix into the first, with a warning for each
// later one, keeping file order. By sorting (prefix, index) pairs: a hash map
// of a million prefixes cost more than the rest of the ip_rules parse.
template <typename Rule>
void merge_duplicate_ip_rules(std::vector<Rule>& rules, const Vault& v, Diagnostics& diags) {
    using K = std::decay_t<decltype(dup_key(rules.front().prefix))>;
    std::vector<std::pair<K, std::uint32_t>> keys(rules.size());
    for (std::uint32_t i = 0; i < keys.size(); ++i) keys[i] = {dup_key(rules[i].prefix), i};
    std::sort(keys.begin(), keys.end());
    std::vector<std::uint32_t> first_of(rules.size(), UINT32_MAX);  // duplicate -> first
    bool any = false;
    for (std::size_t k = 1; k < keys.size(); ++k)
        if (keys[k].first == keys[k - 1].first) {
            first_of[keys[k].second] = first_of[keys[k - 1].second] == UINT32_MAX
                                           ? keys[k - 1].second
                                           : first_of[keys[k - 1].second];
            any = true;
        }
    if (!any) return;
    for (std::size_t i = 0; i < rules.size(); ++i) {
        if (first_of[i] == UINT32_MAX) continue;
        const Rule& r = rules[i];
        const Rule& o = rules[first_of[i]];
        diags.warn(r.pos, "duplicate ip rule " + r.prefix.str() + " in vault " + quote(v.name) +
                              " (first at " + at_text(o.pos, r.pos) + "); merged");
    }
    std::size_t out = 0;
    for (std::size_t i = 0; i < rules.size(); ++i)
        if (first_of[i] == UINT32_MAX) {
            if (out != i) rules[out] = std::move(rules[i]);
            ++out;
        }
    rules.resize(out);
}

// "203.0.113.10:443", "[2001:db8::10]:443/udp".
std::string endpoint_text(const Endpoint& e) {
    return format_ipv4(e.addr) + ":" + std::to_string(e.port) + (e.proto == Proto::udp ? "/udp" : "");
}
std::string endpoint_text(const Endpoint6& e) {
    return "[" + format_ipv6(e.addr) + "]:" + std::to_string(e.port) + (e.proto == Proto::udp ? "/udp" : "");
}
auto endpoint_key(std::uint32_t vni, const Endpoint& e) {
    return std::make_tuple(vni, e.addr, e.port, static_cast<int>(e.proto));
}
auto endpoint_key(std::uint32_t vni, const Endpoint6& e) {
    return std::make_tuple(vni, e.addr, e.port, static_cast<int>(e.proto));
}

// The same endpoint listed twice in a vault is one, with a warning.
template <typename E>
void merge_duplicate_endpoints(std::vector<E>& eps, Diagnostics& diags) {
    std::map<decltype(endpoint_key(0, eps.front())), SourcePos> seen;
    std::vector<E> kept;
    kept.reserve(eps.size());
    for (auto& e : eps) {
        auto [at, fresh] = seen.emplace(endpoint_key(0, e), e.pos);
        if (!fresh) {
            diags.warn(e.pos, "duplicate endpoint " + endpoint_text(e) + " (first at " +
                                  at_text(at->second, e.pos) + "); merged");
            continue;
        }
        kept.push_back(std::move(e));
    }
    eps = std::move(kept);
}

template <typename P>
void merge_duplicate_private_endpoints(std::vector<P>& eps, Diagnostics& diags) {
    std::map<decltype(endpoint_key(0, eps.front().endpoint)), SourcePos> seen;
    std::vector<P> kept;
    kept.reserve(eps.size());
    for (auto& pe : eps) {
        auto [at, fresh] = seen.emplace(endpoint_key(pe.vni, pe.endpoint), pe.endpoint.pos);
        if (!fresh) {
            diags.warn(pe.endpoint.pos, "duplicate private endpoint " + endpoint_text(pe.endpoint) +
                                            " in VNet " + quote(pe.vnet) + " (first at " +
                                            at_text(at->second, pe.endpoint.pos) + "); merged");
            continue;
        }
        kept.push_back(std::move(pe));
    }
    eps = std::move(kept);
}

// Names and VNIs are unique; a VNI is 1..2^24-1 (0 is plain traffic); a
// subnet has a prefix.
void check_vnets(const RuleFile& rf, Diagnostics& diags) {
    std::unordered_map<std::string, const Vnet*> names;
    std::unordered_map<std::uint32_t, const Vnet*> vnis;
    for (const auto& v : rf.vnets) {
        const SourcePos& name_at = v.name_pos.line ? v.name_pos : v.pos;
        const SourcePos& vni_at = v.vni_pos.line ? v.vni_pos : v.pos;
        if (auto [o, fresh] = names.emplace(v.name, &v); !fresh)
            diags.error(name_at, "duplicate vnet name " + quote(v.name) + " (first at " +
                                     at_text(o->second->pos, name_at) + "); give every VNet its own name");
        if (v.vni < 1 || v.vni > 16777215)
            diags.error(vni_at, "VNI " + std::to_string(v.vni) + " of VNet " + quote(v.name) +
                                    " is out of range; use 1..16777215");
        else if (auto [o, fresh] = vnis.emplace(v.vni, &v); !fresh)
            diags.error(vni_at, "duplicate VNI " + std::to_string(v.vni) + ": VNet " + quote(o->second->name) +
                                    " (at " + at_text(o->second->pos, vni_at) +
                                    ") already uses it; every VNet needs its own VNI");
        for (const auto& sub : v.subnets)
            if (sub.prefixes.empty() && sub.prefixes6.empty())
                diags.error(sub.pos.line ? sub.pos : v.pos,
                            "subnet " + quote(sub.name) + " of VNet " + quote(v.name) + " has no prefix");
    }
}

// Resolves the VNets that private endpoints and virtual network rules name.
class VnetRefs {
public:
    explicit VnetRefs(const RuleFile& rf) : vnets_(rf.vnets) {
        for (const auto& v : rf.vnets) by_name_.emplace(v.name, &v);  // the first of a name
    }

    const Vnet* find(const std::string& name, const SourcePos& at, const std::string& context,
                     Diagnostics& diags) const {
        if (auto it = by_name_.find(name); it != by_name_.end()) return it->second;
        std::string msg = "unknown VNet " + quote(name) + " in " + context;
        // Suggestions are worth their cost for a hand-written list, not for 100k VNets.
        if (vnets_.size() > 1000) {
            diags.error(at, msg + "; it is not among the file's " + std::to_string(vnets_.size()) + " VNets");
            return nullptr;
        }
        std::vector<std::string> names;
        for (const auto& v : vnets_) names.push_back(v.name);
        if (auto s = closest_match(name, names))
            msg += "; did you mean " + quote(*s) + "?";
        else if (names.empty())
            msg += "; no VNets are defined: add it under `vnets:`";
        else
            msg += "; known VNets: " + join(names);
        diags.error(at, msg);
        return nullptr;
    }

    // Fills the rule's VNI and prefixes; false (reported) when it names no subnet.
    bool resolve(VnetRule& r, Diagnostics& diags) const {
        const std::string text = r.vnet + "/" + r.subnet;
        const Vnet* vnet = find(r.vnet, r.pos, "virtual network rule " + quote(text), diags);
        if (!vnet) return false;
        auto sub = std::find_if(vnet->subnets.begin(), vnet->subnets.end(),
                                [&](const Subnet& s) { return s.name == r.subnet; });
        if (sub == vnet->subnets.end()) {
            std::vector<std::string> names;
            for (const auto& s : vnet->subnets) names.push_back(s.name);
            std::string msg = "VNet " + quote(r.vnet) + " has no subnet " + quote(r.subnet);
            if (auto c = closest_match(r.subnet, names))
                msg += "; did you mean '" + r.vnet + "/" + *c + "'?";
            else if (names.empty())
                msg += "; it has no subnets: add one under its `subnets:`";
            else
                msg += "; its subnets: " + join(names);
            diags.error(r.pos, msg);
            return false;
        }
        r.vni = vnet->vni;
        r.prefixes = sub->prefixes;
        r.prefixes6 = sub->prefixes6;
        return true;
    }

private:
    const std::vector<Vnet>& vnets_;
    std::unordered_map<std::string, const Vnet*> by_name_;
};

void resolve_references(RuleFile& rf, Diagnostics& diags) {
    const VnetRefs refs(rf);
    for (auto& v : rf.vaults) {
        auto vni_of = [&](auto& pe) {
            const SourcePos& at = pe.vnet_pos.line ? pe.vnet_pos : pe.endpoint.pos;
            if (const Vnet* vnet = refs.find(pe.vnet, at, "private endpoint", diags)) pe.vni = vnet->vni;
        };
        for (auto& pe : v.private_endpoints) vni_of(pe);
        for (auto& pe : v.private_endpoints6) vni_of(pe);
        // A rule that names no subnet is an error; dropped so no later check trips on it.
        std::erase_if(v.vnet_rules, [&](VnetRule& r) { return !refs.resolve(r, diags); });
    }
}

// The same (VNI, prefixes) reached through two VNet/subnet names is one rule.
void merge_duplicate_vnet_rules(Vault& v, Diagnostics& diags) {
    using Key = std::tuple<std::uint32_t, std::vector<Ipv4Prefix>, std::vector<Ipv6Prefix>>;
    std::map<Key, std::size_t> seen;
    std::vector<VnetRule> kept;
    kept.reserve(v.vnet_rules.size());
    for (auto& r : v.vnet_rules) {
        auto [at, fresh] = seen.emplace(Key{r.vni, r.prefixes, r.prefixes6}, kept.size());
        if (!fresh) {
            const VnetRule& o = kept[at->second];
            std::vector<std::string> prefixes;
            for (const auto& p : r.prefixes) prefixes.push_back(p.str());
            for (const auto& p : r.prefixes6) prefixes.push_back(p.str());
            diags.warn(r.pos, "duplicate virtual network rule " + r.vnet + "/" + r.subnet + " (" +
                                  join(prefixes) + " in VNI " + std::to_string(r.vni) +
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
    std::map<std::tuple<std::uint32_t, std::uint32_t, std::uint16_t, int>, std::pair<const Vault*, SourcePos>> owner;
    std::map<std::tuple<std::uint32_t, Ipv6Addr, std::uint16_t, int>, std::pair<const Vault*, SourcePos>> owner6;
    auto claim = [&](auto& owners, const Vault& v, std::uint32_t vni, const auto& e, const char* kind) {
        auto [it, fresh] = owners.emplace(endpoint_key(vni, e), std::make_pair(&v, e.pos));
        if (!fresh && it->second.first != &v)
            diags.error(e.pos, std::string(kind) + " " + endpoint_text(e) + " is already served by vault " +
                                   quote(it->second.first->name) + " (at " +
                                   at_text(it->second.second, e.pos) +
                                   "); an endpoint belongs to exactly one vault");
    };
    for (const auto& v : rf.vaults) {
        for (const auto& e : v.endpoints) claim(owner, v, 0, e, "endpoint");
        for (const auto& pe : v.private_endpoints) claim(owner, v, pe.vni, pe.endpoint, "private endpoint");
        for (const auto& e : v.endpoints6) claim(owner6, v, 0, e, "endpoint");
        for (const auto& pe : v.private_endpoints6) claim(owner6, v, pe.vni, pe.endpoint, "private endpoint");
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
    check_vnets(rf, diags);
    resolve_references(rf, diags);
    for (auto& v : rf.vaults) {
        merge_duplicate_endpoints(v.endpoints, diags);
        merge_duplicate_endpoints(v.endpoints6, diags);
        merge_duplicate_private_endpoints(v.private_endpoints, diags);
        merge_duplicate_private_endpoints(v.private_endpoints6, diags);
        merge_duplicate_ip_rules(v.ip_rules, v, diags);
        merge_duplicate_ip_rules(v.ip_rules6, v, diags);
        merge_duplicate_vnet_rules(v, diags);
    }
    check_vault_names(rf, diags);
    check_endpoint_owners(rf, diags);
    check_gate_needs(rf, diags);
}

}  // namespace vaultwall::rules
