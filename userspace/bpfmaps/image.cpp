#include "bpfmaps/image.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "bpfmaps/error.hpp"

namespace vaultwall::bpfmaps {

// The compiler emits rules sorted by (vault index, vni, prefix), so they
// arrive as one sorted run per vault and only the runs' order (by vault id)
// may be wrong: reordering runs is linear, where a comparison sort of a
// million rules costs ~100 ms, most of a one-rule reload. Any other order
// falls back to std::sort.
namespace {

template <class Entry>
void sort_entries(std::vector<Entry>& v) {
    auto less = [](const Entry& a, const Entry& b) { return a.before(b); };
    std::vector<std::pair<std::size_t, std::size_t>> runs;  // [begin, end)
    for (std::size_t i = 0; i < v.size();) {
        std::size_t j = i + 1;
        while (j < v.size() && less(v[j - 1], v[j])) ++j;
        runs.push_back({i, j});
        i = j;
    }
    if (runs.size() <= 1) return;
    if (runs.size() > VW_MAX_VAULTS) {  // not the compiler's order
        std::sort(v.begin(), v.end(), less);
        return;
    }
    std::sort(runs.begin(), runs.end(), [&](auto a, auto b) { return less(v[a.first], v[b.first]); });
    bool disjoint = true;
    for (std::size_t r = 1; disjoint && r < runs.size(); ++r)
        disjoint = less(v[runs[r - 1].second - 1], v[runs[r].first]);
    if (!disjoint) {
        std::sort(v.begin(), v.end(), less);
        return;
    }
    std::vector<Entry> sorted;
    sorted.reserve(v.size());
    for (auto [b, e] : runs) sorted.insert(sorted.end(), v.begin() + b, v.begin() + e);
    v = std::move(sorted);
}

// Rule ids 1..max-1, shared by both families: the ids a live rule holds stay
// taken; a new rule takes the lowest free one.
class IdPool {
public:
    IdPool(std::uint32_t max_rules, const SetImage& live) : max_(max_rules), taken_(max_rules, false) {
        if (max_) taken_[0] = true;
        for (const auto& e : *live.rules)
            if (e.id < max_) taken_[e.id] = true;
        for (const auto& e : *live.rules6)
            if (e.id < max_) taken_[e.id] = true;
    }
    std::uint32_t take() {
        while (next_ < max_ && taken_[next_]) ++next_;
        if (next_ >= max_)
            throw std::length_error("the rules do not fit: this host's datapath holds " +
                                    std::to_string(max_ ? max_ - 1 : 0) +
                                    " rules (live and changed together); raise max_rules when attaching");
        taken_[next_] = true;
        return next_;
    }

private:
    std::uint32_t max_;
    std::vector<bool> taken_;
    std::uint32_t next_ = 1;
};

// Gives each rule of `rules` (sorted by identity; each entry's id is its
// index in the compiled set for now) its rule id: the live one if the rule
// stays (so its hit count carries), else a fresh one. Fills what changed.
template <class Entry>
void assign_rule_ids(const std::vector<Entry>& live, std::vector<Entry>& rules, IdPool& pool,
                     std::vector<std::uint32_t>& ids_by_index, std::vector<Entry>& upserts,
                     std::vector<Entry>& removals, std::vector<std::uint32_t>& fresh,
                     std::map<std::uint32_t, VaultDiff>& diffs) {
    std::vector<std::size_t> added_at;  // positions in `rules`
    ids_by_index.assign(rules.size(), 0);
    merge_rule_lists(live, rules,
        [&](const Entry& w, const Entry* kept) {
            std::uint32_t id;
            if (kept) {
                id = kept->id;
            } else {
                id = pool.take();
                fresh.push_back(id);
                added_at.push_back(static_cast<std::size_t>(&w - rules.data()));
                diffs[w.vault_id()].rules_added++;
            }
            ids_by_index[w.id] = id;
        },
        [&](const Entry& gone) {
            removals.push_back(gone);
            diffs[gone.vault_id()].rules_removed++;
        });
    for (auto& e : rules) e.id = ids_by_index[e.id];
    for (std::size_t pos : added_at) upserts.push_back(rules[pos]);
    std::size_t scopes = 0;
    for (std::size_t i = 0; i < rules.size(); ++i)
        if (i == 0 || rules[i].scope != rules[i - 1].scope) ++scopes;
    if (scopes > VW_MAX_SCOPES)
        throw std::length_error("rules for " + std::to_string(scopes) +
                                " (vault, virtual network) pairs exceed the " +
                                std::to_string(VW_MAX_SCOPES) + " the datapath holds");
    // Duplicates (the compiler merges them) would share one trie entry.
    for (std::size_t i = 1; i < rules.size(); ++i)
        if (rules[i].same_rule(rules[i - 1]))
            throw std::invalid_argument("duplicate rule in a compiled rule set");
}

std::map<std::uint64_t, vw_scope6> scopes6_of(const std::vector<RuleEntry6>& rules) {
    std::map<std::uint64_t, vw_scope6> out;
    for (std::size_t i = 0; i < rules.size();) {
        std::size_t j = i;
        while (j < rules.size() && rules[j].scope == rules[i].scope) ++j;
        out.emplace_hint(out.end(), rules[i].scope, scope6_of(rules.data() + i, rules.data() + j));
        i = j;
    }
    return out;
}

}  // namespace

void sort_rule_entries(std::vector<RuleEntry>& v) { sort_entries(v); }
void sort_rule_entries(std::vector<RuleEntry6>& v) { sort_entries(v); }

vw_scope6 scope6_of(const RuleEntry6* begin, const RuleEntry6* end) {
    std::uint64_t present[3] = {0, 0, 0};  // bit L: some rule is /L (0..128)
    for (const RuleEntry6* e = begin; e != end; ++e) present[e->len / 64] |= std::uint64_t(1) << (e->len % 64);
    vw_scope6 s;
    std::memset(&s, 0, sizeof(s));
    for (int len = 128; len >= 0; --len) {
        if (!(present[len / 64] >> (len % 64) & 1)) continue;
        if (s.nlens == VW_SCOPE6_MAX_LENS) {  // too many: the trie
            std::memset(&s, 0, sizeof(s));
            s.flags = VW_SCOPE_TRIE;
            return s;
        }
        s.lens[s.nlens++] = static_cast<std::uint8_t>(len);
    }
    return s;
}

Translation translate(const rules::CompiledRuleSet& set, const SetImage& live,
                      const std::map<std::uint32_t, std::string>& names, std::uint32_t max_rules) {
    if (set.endpoints.size() > VW_MAX_ENDPOINTS)
        throw std::length_error(std::to_string(set.endpoints.size()) + " endpoints exceed the " +
                                std::to_string(VW_MAX_ENDPOINTS) + " the datapath holds");
    if (set.vteps.size() > VW_MAX_VTEP_PREFIXES)
        throw std::length_error(std::to_string(set.vteps.size()) + " VTEP prefixes exceed the " +
                                std::to_string(VW_MAX_VTEP_PREFIXES) + " the datapath holds");
    if (set.endpoints6.size() > VW_MAX_ENDPOINTS6)
        throw std::length_error(std::to_string(set.endpoints6.size()) + " IPv6 endpoints exceed the " +
                                std::to_string(VW_MAX_ENDPOINTS6) + " the datapath holds");
    if (set.vteps6.size() > VW_MAX_VTEP_PREFIXES6)
        throw std::length_error(std::to_string(set.vteps6.size()) + " IPv6 VTEP prefixes exceed the " +
                                std::to_string(VW_MAX_VTEP_PREFIXES6) + " the datapath holds");
    Translation t;

    // Vault ids: a name registered keeps its id; a new one takes the lowest
    // id nobody holds (ids of vaults gone stay held while a set refers to them).
    std::map<std::string, std::uint32_t> by_name;
    for (const auto& [id, name] : names) by_name[name] = id;
    std::uint32_t next = 1;
    for (const auto& v : set.vaults) {
        if (v.name.empty() || v.name.size() >= VW_VAULT_NAME_LEN)
            throw std::invalid_argument("vault name '" + v.name + "' must be 1.." +
                                        std::to_string(VW_VAULT_NAME_LEN - 1) + " bytes");
        if (auto it = by_name.find(v.name); it != by_name.end()) {
            t.vault_ids.push_back(it->second);
            continue;
        }
        while (next < VW_MAX_VAULTS && (names.count(next) || t.new_vaults.count(next))) ++next;
        if (next >= VW_MAX_VAULTS)
            throw std::length_error("more than " + std::to_string(VW_MAX_VAULTS - 1) +
                                    " vaults (live and new) do not fit the datapath");
        t.new_vaults[next] = v.name;
        by_name[v.name] = next;
        t.vault_ids.push_back(next);
    }

    SetImage& want = t.image;
    want.vxlan_port = set.vxlan_port;
    want.drop_events_per_second = set.drop_events_per_second;
    for (const auto& p : set.vteps) want.vteps[{p.addr, p.len}] = true;
    for (std::size_t i = 0; i < set.vaults.size(); ++i) {
        const auto& v = set.vaults[i];
        std::uint32_t flags = VW_VAULT_PRESENT;
        if (v.public_access_disabled) flags |= VW_VAULT_PUBLIC_DISABLED;
        if (v.default_allow) flags |= VW_VAULT_DEFAULT_ALLOW;
        if (v.bypass) flags |= VW_VAULT_BYPASS;
        if (v.audit) flags |= VW_VAULT_AUDIT;
        want.vault_flags[t.vault_ids[i]] = flags;
    }
    // The first endpoint at an address wins (the compiler refuses duplicates).
    auto add_endpoint = [&](auto& table, auto& addrs, const auto& e, auto addr) {
        const std::uint32_t vid = t.vault_ids.at(e.vault);
        const auto proto = static_cast<std::uint8_t>(e.proto);
        const std::uint16_t port = htons(e.port);
        using Id = typename std::decay_t<decltype(table)>::key_type;
        if (e.is_private) {
            table.emplace(Id{proto, port, e.vni, addr}, vw_endpoint{vid, VW_EP_PRIVATE});
            table.emplace(Id{proto, port, VW_VNI_ANY_PRIVATE, addr}, vw_endpoint{vid, VW_EP_PRIVATE});
        } else {
            table.emplace(Id{proto, port, 0u, addr}, vw_endpoint{vid, 0});
        }
        addrs[addr] = true;
    };
    for (const auto& e : set.endpoints) add_endpoint(want.endpoints, want.protected_addrs, e, htonl(e.addr));
    for (const auto& e : set.endpoints6) add_endpoint(want.endpoints6, want.protected_addrs6, e, e.addr);
    for (const auto& p : set.vteps6) want.vteps6[{p.addr, p.len}] = true;

    // Rule ids: a rule that stays keeps its id (and its hit count); new
    // rules take ids the live set does not use (of either family), with
    // their counts zeroed.
    IdPool pool(max_rules, live);
    std::map<std::uint32_t, VaultDiff> diffs;
    std::vector<RuleEntry> rules;
    rules.reserve(set.rules.size());
    for (std::size_t i = 0; i < set.rules.size(); ++i) {
        const auto& r = set.rules[i];
        rules.push_back(RuleEntry::make(t.vault_ids.at(r.vault), r.vni, r.prefix.addr, r.prefix.len,
                                        static_cast<std::uint32_t>(i)));  // index for now
    }
    sort_rule_entries(rules);
    assign_rule_ids(*live.rules, rules, pool, t.rule_ids, t.upserts, t.removals, t.fresh_rule_ids, diffs);
    want.rules = std::make_shared<const std::vector<RuleEntry>>(std::move(rules));
    t.from = live.rules.get();

    std::vector<RuleEntry6> rules6;
    rules6.reserve(set.rules6.size());
    for (std::size_t i = 0; i < set.rules6.size(); ++i) {
        const auto& r = set.rules6[i];
        rules6.push_back(RuleEntry6::make(t.vault_ids.at(r.vault), r.vni,
                                          rules::Ipv6Prefix::masked(r.prefix.addr, r.prefix.len), r.prefix.len,
                                          static_cast<std::uint32_t>(i)));
    }
    sort_rule_entries(rules6);
    assign_rule_ids(*live.rules6, rules6, pool, t.rule_ids6, t.upserts6, t.removals6, t.fresh_rule_ids, diffs);
    want.scopes6 = scopes6_of(rules6);
    want.rules6 = std::make_shared<const std::vector<RuleEntry6>>(std::move(rules6));
    t.from6 = live.rules6.get();

    for (auto& [vid, d] : diffs) {
        auto n = names.find(vid);
        auto fresh = t.new_vaults.find(vid);
        d.vault = n != names.end() ? n->second : fresh != t.new_vaults.end() ? fresh->second : "#" + std::to_string(vid);
        t.diff.push_back(d);
    }
    return t;
}

namespace {

// The rule of `e`'s identity as text, for an error.
std::string rule_text(const RuleEntry& e) { return rules::Ipv4Prefix{e.addr(), e.len()}.str(); }
std::string rule_text(const RuleEntry6& e) { return rules::Ipv6Prefix{e.addr, e.len}.str(); }

// One family's live rules (sorted by identity) with `adds` and `removals`
// (entries of one scope, sorted) merged in, in one pass: an added rule takes
// the lowest id nobody holds (`pool` is shared by both families, and IPv4
// takes its ids first, as in translate()), a removed one goes to `gone`.
template <class Entry>
std::vector<Entry> edit_rules(const std::vector<Entry>& have, const std::vector<Entry>& adds,
                              const std::vector<Entry>& removals, const char* family, IdPool& pool,
                              std::vector<Entry>& upserts, std::vector<Entry>& gone,
                              std::vector<std::uint32_t>& fresh) {
    std::vector<Entry> out;
    out.reserve(have.size() + adds.size());
    std::size_t a = 0, r = 0, scopes = 0;
    auto push = [&](const Entry& e) {
        if (out.empty() || out.back().scope != e.scope) ++scopes;
        out.push_back(e);
    };
    auto add_next = [&] {
        Entry e = adds[a++];
        e.id = pool.take();
        fresh.push_back(e.id);
        upserts.push_back(e);
        push(e);
    };
    for (const auto& h : have) {
        while (a < adds.size() && adds[a].before(h)) add_next();
        if (a < adds.size() && adds[a].same_rule(h))
            throw std::invalid_argument("rule " + rule_text(adds[a]) + " is already live");
        if (r < removals.size() && removals[r].same_rule(h)) {
            gone.push_back(h);
            ++r;
            continue;
        }
        push(h);
    }
    while (a < adds.size()) add_next();
    if (r != removals.size()) throw std::invalid_argument("rule " + rule_text(removals[r]) + " is not live");
    if (scopes > VW_MAX_SCOPES)
        throw std::length_error(std::string(family) + " rules for " + std::to_string(scopes) +
                                " (vault, virtual network) pairs exceed the " + std::to_string(VW_MAX_SCOPES) +
                                " the datapath holds");
    return out;
}

// The entries of one edit list, sorted by identity; a prefix given twice is refused.
template <class Entry, class Prefix, class Make>
std::vector<Entry> edit_entries(const std::vector<Prefix>& prefixes, Make make) {
    std::vector<Entry> out;
    out.reserve(prefixes.size());
    for (const auto& p : prefixes) out.push_back(make(p));
    std::sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) { return a.before(b); });
    for (std::size_t i = 1; i < out.size(); ++i)
        if (out[i].same_rule(out[i - 1])) throw std::invalid_argument("rule " + rule_text(out[i]) + " is twice in one edit");
    return out;
}

}  // namespace

Translation translate_edit(const SetImage& live, std::uint32_t vault_id, const std::string& vault_name,
                           const RuleEdit& edit, std::uint32_t max_rules) {
    if (!live.vault_flags.count(vault_id)) throw std::invalid_argument("vault " + vault_name + " is not live");
    Translation t;
    t.image.vxlan_port = live.vxlan_port;
    t.image.drop_events_per_second = live.drop_events_per_second;
    t.image.vault_flags = live.vault_flags;
    t.image.vteps = live.vteps;
    t.image.endpoints = live.endpoints;
    t.image.protected_addrs = live.protected_addrs;
    t.image.vteps6 = live.vteps6;
    t.image.endpoints6 = live.endpoints6;
    t.image.protected_addrs6 = live.protected_addrs6;
    t.image.scopes6 = live.scopes6;
    t.from = live.rules.get();
    t.from6 = live.rules6.get();
    IdPool pool(max_rules, live);

    auto entry4 = [&](const rules::Ipv4Prefix& p) { return RuleEntry::make(vault_id, 0, p.addr, p.len, 0); };
    auto entry6 = [&](const rules::Ipv6Prefix& p) {
        return RuleEntry6::make(vault_id, 0, rules::Ipv6Prefix::masked(p.addr, p.len), p.len, 0);
    };
    const auto adds4 = edit_entries<RuleEntry>(edit.add, entry4), removals4 = edit_entries<RuleEntry>(edit.remove, entry4);
    const auto adds6 = edit_entries<RuleEntry6>(edit.add6, entry6),
               removals6 = edit_entries<RuleEntry6>(edit.remove6, entry6);

    // A family the edit leaves alone keeps the live list itself (shared, not copied).
    if (adds4.empty() && removals4.empty()) {
        t.image.rules = live.rules;
    } else {
        t.image.rules = std::make_shared<const std::vector<RuleEntry>>(
            edit_rules(*live.rules, adds4, removals4, "IPv4", pool, t.upserts, t.removals, t.fresh_rule_ids));
    }
    if (adds6.empty() && removals6.empty()) {
        t.image.rules6 = live.rules6;
    } else {
        auto rules6 = std::make_shared<const std::vector<RuleEntry6>>(
            edit_rules(*live.rules6, adds6, removals6, "IPv6", pool, t.upserts6, t.removals6, t.fresh_rule_ids));
        // The scope's list of prefix lengths, from its rules after the edit:
        // a length may appear or go with its last rule. Crossing
        // VW_SCOPE6_MAX_LENS (either way) needs nothing more than this value:
        // vw_rules6 (the trie) and vw_rules6_hash both hold every IPv6 rule
        // whatever the scope's flag, so the switch between hash probes and the
        // trie walk is this one entry, written with the rules (write_set6).
        const std::uint64_t scope = std::uint64_t(vault_id) << 32;
        auto lo = std::partition_point(rules6->begin(), rules6->end(), [&](const RuleEntry6& e) { return e.scope < scope; });
        auto hi = std::partition_point(lo, rules6->end(), [&](const RuleEntry6& e) { return e.scope == scope; });
        if (lo == hi)
            t.image.scopes6.erase(scope);
        else
            t.image.scopes6[scope] = scope6_of(&*lo, &*lo + (hi - lo));
        t.image.rules6 = std::move(rules6);
    }
    if (!edit.empty())
        t.diff.push_back({vault_name, adds4.size() + adds6.size(), removals4.size() + removals6.size()});
    return t;
}

std::map<std::uint32_t, std::string> read_vault_names(const MapBackend& maps) {
    std::map<std::uint32_t, std::string> names;
    for (std::uint32_t id = 1; id < VW_MAX_VAULTS; ++id) {
        vw_vault_name n{};
        if (maps.get(Map::vault_names, id, n) && n.name[0])
            names[id] = std::string(n.name, strnlen(n.name, sizeof(n.name)));
    }
    return names;
}

SetImage read_set_image(const MapBackend& maps, std::uint32_t set) {
    SetImage out;
    vw_config cfg{};
    if (maps.get(Map::config, set, cfg)) {
        out.vxlan_port = cfg.vxlan_port;
        out.drop_events_per_second = cfg.drop_events_per_second;
    }
    for (std::uint32_t id = 1; id < VW_MAX_VAULTS; ++id) {
        std::uint32_t idx = set * VW_MAX_VAULTS + id;
        vw_vault v{};
        if (maps.get(Map::vaults, idx, v) && v.flags) out.vault_flags[id] = v.flags;
    }
    maps.each_key<vw_vtep_key>(Map::vteps, [&](const vw_vtep_key& k) {
        if (k.set == set)
            out.vteps[{ntohl(k.addr), std::uint8_t(k.prefixlen - VW_VTEP_KEY_FIXED_BITS)}] = true;
    });
    maps.each_key<vw_endpoint_key>(Map::endpoints, [&](const vw_endpoint_key& k) {
        vw_endpoint ep{};
        if (k.set == set && maps.get(Map::endpoints, k, ep)) out.endpoints[{k.proto, k.port, k.vni, k.addr}] = ep;
    });
    maps.each_key<vw_addr_key>(Map::protected_addrs, [&](const vw_addr_key& k) {
        if (k.set == set) out.protected_addrs[k.addr] = true;
    });
    std::vector<RuleEntry> rules;
    maps.each_key<vw_rule_key>(Map::rules, [&](const vw_rule_key& k) {
        std::uint32_t id = 0;
        if (k.set == set && maps.get(Map::rules, k, id))
            rules.push_back(RuleEntry::make(k.vault_id, k.vni, ntohl(k.addr),
                                            std::uint8_t(k.prefixlen - VW_RULE_KEY_FIXED_BITS), id));
    });
    sort_rule_entries(rules);
    out.rules = std::make_shared<const std::vector<RuleEntry>>(std::move(rules));

    maps.each_key<vw_vtep6_key>(Map::vteps6, [&](const vw_vtep6_key& k) {
        if (k.set != set) return;
        rules::Ipv6Addr a;
        std::memcpy(a.data(), k.addr, a.size());
        out.vteps6[{a, std::uint8_t(k.prefixlen - VW_VTEP_KEY_FIXED_BITS)}] = true;
    });
    maps.each_key<vw_endpoint6_key>(Map::endpoints6, [&](const vw_endpoint6_key& k) {
        vw_endpoint ep{};
        if (k.set != set || !maps.get(Map::endpoints6, k, ep)) return;
        rules::Ipv6Addr a;
        std::memcpy(a.data(), k.addr, a.size());
        out.endpoints6[{k.proto, k.port, k.vni, a}] = ep;
    });
    maps.each_key<vw_addr6_key>(Map::protected_addrs6, [&](const vw_addr6_key& k) {
        if (k.set != set) return;
        rules::Ipv6Addr a;
        std::memcpy(a.data(), k.addr, a.size());
        out.protected_addrs6[a] = true;
    });
    // The trie is the record of the IPv6 rules, as vw_rules is of IPv4's.
    std::vector<RuleEntry6> rules6;
    maps.each_key<vw_rule6_key>(Map::rules6, [&](const vw_rule6_key& k) {
        std::uint32_t id = 0;
        if (k.set != set || !maps.get(Map::rules6, k, id)) return;
        rules::Ipv6Addr a;
        std::memcpy(a.data(), k.addr, a.size());
        rules6.push_back(RuleEntry6::make(k.vault_id, k.vni, a, std::uint8_t(k.prefixlen - VW_RULE_KEY_FIXED_BITS), id));
    });
    sort_rule_entries(rules6);
    maps.each_key<vw_scope_key>(Map::scopes6, [&](const vw_scope_key& k) {
        vw_scope6 v;
        std::memset(&v, 0, sizeof(v));
        if (k.set == set && maps.get(Map::scopes6, k, v)) out.scopes6[std::uint64_t(k.vault_id) << 32 | k.vni] = v;
    });
    out.rules6 = std::make_shared<const std::vector<RuleEntry6>>(std::move(rules6));
    return out;
}

LiveImage read_live_image(const MapBackend& maps) {
    LiveImage img;
    std::uint32_t zero = 0;
    vw_state st{};
    if (!maps.get(Map::state, zero, st)) throw BpfError("reading vw_state", ENOENT);
    img.live_set = st.active_set & 1;
    img.generation = st.generation;
    img.names = read_vault_names(maps);
    img.live = read_set_image(maps, img.live_set);
    return img;
}

}  // namespace vaultwall::bpfmaps
