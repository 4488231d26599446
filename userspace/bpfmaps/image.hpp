// The datapath image: what the tables of one rule set must hold, as a plain
// value, and translate(), the one pure step from a compiled rule set (rules
// model) to it. translate() also assigns the ids that must stay stable across
// reloads (a vault or rule that stays keeps its id, so its counters carry)
// and computes the difference against the live image, so the Installer only
// writes. Nothing here touches a map; errors (the set does not fit) are
// thrown before anything is written.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "bpfmaps/map_backend.hpp"
#include "rules/compiled.hpp"
#include "vaultwall_abi.h"

namespace vaultwall::bpfmaps {

struct VaultDiff {
    std::string vault;
    std::size_t rules_added = 0;
    std::size_t rules_removed = 0;
};

// A rule as a set holds it: its identity across reloads (the rule key without
// its set) and its id. Images keep these sorted by identity, so comparing two
// is one linear merge, even at a million rules.
struct RuleEntry {
    std::uint64_t scope = 0;   // vault_id << 32 | vni
    std::uint64_t prefix = 0;  // addr (host order) << 8 | len
    std::uint32_t id = 0;

    static RuleEntry make(std::uint32_t vault_id, std::uint32_t vni, std::uint32_t addr, std::uint8_t len,
                          std::uint32_t id) {
        return {std::uint64_t(vault_id) << 32 | vni, std::uint64_t(addr) << 8 | len, id};
    }
    std::uint32_t vault_id() const { return static_cast<std::uint32_t>(scope >> 32); }
    std::uint32_t vni() const { return static_cast<std::uint32_t>(scope); }
    std::uint32_t addr() const { return static_cast<std::uint32_t>(prefix >> 8); }
    std::uint8_t len() const { return static_cast<std::uint8_t>(prefix); }
    bool same_rule(const RuleEntry& o) const { return scope == o.scope && prefix == o.prefix; }
    bool operator==(const RuleEntry&) const = default;
    bool before(const RuleEntry& o) const {
        return scope != o.scope ? scope < o.scope : prefix < o.prefix;
    }
};
using RuleList = std::shared_ptr<const std::vector<RuleEntry>>;

// The same for an IPv6 rule: the address (network order, host bits clear)
// is too wide to pack with its length, so the identity is (scope, addr, len).
struct RuleEntry6 {
    std::uint64_t scope = 0;  // vault_id << 32 | vni
    rules::Ipv6Addr addr{};
    std::uint8_t len = 0;
    std::uint32_t id = 0;

    static RuleEntry6 make(std::uint32_t vault_id, std::uint32_t vni, const rules::Ipv6Addr& addr,
                           std::uint8_t len, std::uint32_t id) {
        return {std::uint64_t(vault_id) << 32 | vni, addr, len, id};
    }
    std::uint32_t vault_id() const { return static_cast<std::uint32_t>(scope >> 32); }
    std::uint32_t vni() const { return static_cast<std::uint32_t>(scope); }
    bool same_rule(const RuleEntry6& o) const { return scope == o.scope && addr == o.addr && len == o.len; }
    bool operator==(const RuleEntry6&) const = default;
    bool before(const RuleEntry6& o) const {
        if (scope != o.scope) return scope < o.scope;
        if (addr != o.addr) return addr < o.addr;
        return len < o.len;
    }
};
using RuleList6 = std::shared_ptr<const std::vector<RuleEntry6>>;

// Endpoint key fields (proto, port, vni, addr), port and addr in network order.
using EndpointId = std::tuple<std::uint8_t, std::uint16_t, std::uint32_t, std::uint32_t>;
// The same for IPv6: (proto, port, vni, addr), addr in network order.
using EndpointId6 = std::tuple<std::uint8_t, std::uint16_t, std::uint32_t, rules::Ipv6Addr>;

// vw_scopes6's value for one scope's IPv6 rules (sorted by identity): its
// distinct prefix lengths, longest first, or VW_SCOPE_TRIE when there are
// more than VW_SCOPE6_MAX_LENS of them. Zero-filled, so images compare by bytes.
vw_scope6 scope6_of(const RuleEntry6* begin, const RuleEntry6* end);

// What one rule set's tables hold (vaultwall_abi.h). The stride tables are
// derived from `rules` when written (bpfmaps/stride_tables.hpp).
struct SetImage {
    std::uint16_t vxlan_port = 0;
    std::uint32_t drop_events_per_second = 0;
    std::map<std::uint32_t, std::uint32_t> vault_flags;              // vault id -> VW_VAULT_*
    std::map<std::pair<std::uint32_t, std::uint8_t>, bool> vteps;     // (addr host order, len)
    std::map<EndpointId, vw_endpoint> endpoints;
    std::map<std::uint32_t, bool> protected_addrs;                    // network order
    // Sorted by identity. Images of both sets hold the same list after an
    // install, so they share it: a million rules are not copied.
    RuleList rules = std::make_shared<const std::vector<RuleEntry>>();
    // IPv6: the twins of the tables above (vaultwall_abi.h, "IPv6 tables").
    std::map<std::pair<rules::Ipv6Addr, std::uint8_t>, bool> vteps6;  // (addr, len)
    std::map<EndpointId6, vw_endpoint> endpoints6;
    std::map<rules::Ipv6Addr, bool> protected_addrs6;
    RuleList6 rules6 = std::make_shared<const std::vector<RuleEntry6>>();
    std::map<std::uint64_t, vw_scope6> scopes6;  // scope -> scope6_of(its rules6)
};

// A compiled set translated against what the datapath holds now.
struct Translation {
    SetImage image;
    std::vector<std::uint32_t> vault_ids;             // by index of CompiledRuleSet::vaults
    std::vector<std::uint32_t> rule_ids;              // by index of CompiledRuleSet::rules
    std::vector<std::uint32_t> rule_ids6;             // by index of CompiledRuleSet::rules6
    std::map<std::uint32_t, std::string> new_vaults;  // ids to register (counters zeroed first)
    std::vector<std::uint32_t> fresh_rule_ids;        // hit counts to zero
    // Rule changes against the live image (`from`), both sorted by identity.
    const std::vector<RuleEntry>* from = nullptr;
    std::vector<RuleEntry> upserts, removals;
    const std::vector<RuleEntry6>* from6 = nullptr;   // the same for IPv6 rules
    std::vector<RuleEntry6> upserts6, removals6;
    std::vector<VaultDiff> diff;                      // only vaults whose rules changed
};

// `names`: vault ids registered now (held by either set); `live`: the live
// set's image; rule ids 1..max_rules-1. Throws std::length_error or
// std::invalid_argument, naming the limit, when the set does not fit.
Translation translate(const rules::CompiledRuleSet& set, const SetImage& live,
                      const std::map<std::uint32_t, std::string>& names, std::uint32_t max_rules);

// One vault's ip rules (vni 0) to change, per family: each list sorted and
// without duplicates, adds not live yet, removals live.
struct RuleEdit {
    // Initialised, so that {.add6 = {...}} leaves the others empty without a warning.
    std::vector<rules::Ipv4Prefix> add = {}, remove = {};
    std::vector<rules::Ipv6Prefix> add6 = {}, remove6 = {};
    bool empty() const { return add.empty() && remove.empty() && add6.empty() && remove6.empty(); }
};

// `edit` applied to vault `vault_id` of the live image. Gives what
// translate() of the edited rule set would (ids, the IPv6 scope's list of
// prefix lengths, the difference), in one pass over each family's live rules
// and without the compiled set: the path of `vaultwallctl rule add|remove` at
// a million rules. vault_ids, rule_ids and rule_ids6 stay empty. Throws
// std::length_error or std::invalid_argument, writing nothing, as
// translate() does.
Translation translate_edit(const SetImage& live, std::uint32_t vault_id, const std::string& vault_name,
                           const RuleEdit& edit, std::uint32_t max_rules);

// What the live set holds now, read without writing anything (vaultwallctl
// reads the pins with it while the daemon is down).
struct LiveImage {
    std::uint32_t live_set = 0;
    std::uint64_t generation = 0;
    std::map<std::uint32_t, std::string> names;  // vault id -> name
    SetImage live;
};
SetImage read_set_image(const MapBackend& maps, std::uint32_t set);
std::map<std::uint32_t, std::string> read_vault_names(const MapBackend& maps);
LiveImage read_live_image(const MapBackend& maps);

// Sorts rules by identity; linear for the compiler's order (one sorted run
// per vault).
void sort_rule_entries(std::vector<RuleEntry>& v);
void sort_rule_entries(std::vector<RuleEntry6>& v);

// Merge of two sorted rule lists (RuleEntry or RuleEntry6): on_want(entry,
// have_or_null) for each wanted rule, on_gone(entry) for each rule only
// `have` holds.
template <class Entry, class OnWant, class OnGone>
void merge_rule_lists(const std::vector<Entry>& have, const std::vector<Entry>& want, OnWant on_want,
                      OnGone on_gone) {
    std::size_t h = 0;
    for (const auto& w : want) {
        while (h < have.size() && have[h].before(w)) on_gone(have[h++]);
        if (h < have.size() && have[h].same_rule(w))
            on_want(w, &have[h++]);
        else
            on_want(w, nullptr);
    }
    while (h < have.size()) on_gone(have[h++]);
}

}  // namespace vaultwall::bpfmaps
