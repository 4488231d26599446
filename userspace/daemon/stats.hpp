// Counter, rule and explain views over one or more attached datapaths, as the
// JSON of SPEC §4 (shared by the daemon, `vaultwallctl` and the loader).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace vaultwall::daemon { using Json = nlohmann::ordered_json; }

#include "bpfmaps/counters.hpp"
#include "bpfmaps/datapath.hpp"
#include "bpfmaps/image.hpp"
#include "bpfmaps/installer.hpp"
#include "rules/compiled.hpp"
#include "vaultwall_abi.h"

namespace vaultwall::daemon {

// Vault id -> name from the pinned vw_vault_names map (ids in use only).
std::map<std::uint32_t, std::string> read_vault_names(const bpfmaps::Datapath& dp);

// Counters of every vault and reason, summed over interfaces and keyed by
// vault name ("" for the global reasons).
struct Counters {
    std::uint64_t generation = 0;  // highest generation over the interfaces
    std::array<bpfmaps::Count, VW_GLOBAL_REASONS> global{};
    std::map<std::string, std::array<bpfmaps::Count, VW_VAULT_REASONS>> vaults;

    void add(const bpfmaps::CounterSnapshot& snap,
             const std::map<std::uint32_t, std::string>& names);
    bpfmaps::Count get(vw_reason r, const std::string& vault = {}) const;
    bpfmaps::Count total(bool pass) const;
};

// Reads one datapath's counters into `into`.
void collect_counters(const bpfmaps::Datapath& dp,
                      const std::map<std::uint32_t, std::string>& names, Counters& into);

// SPEC §4, exactly: {"generation", "global": {...}, "vaults": {...}}; each
// vault also has the `audit` group of SPEC §9.
Json stats_json(const Counters& c);
// A readable table of the same figures.
std::string stats_table(const Counters& c);


// Rules as listed by `vaultwallctl rules`.
struct RuleRow {
    std::string vault;
    std::string kind;    // "ip_rule" / "vnet_rule"
    std::string prefix;  // "192.0.2.0/24"
    std::uint32_t vni = 0;
    std::string origin;  // "ip_rules", "prod-vnet/app" (when the rule set is known)
    std::uint32_t rule_id = 0;
    std::uint64_t hits = 0;
};
// Every live rule of one datapath with its hit count; `set` (when known)
// supplies origins. Rows are sorted by vault, vni, address, length.
std::vector<RuleRow> collect_rules(const bpfmaps::Datapath& dp, const std::map<std::uint32_t, std::string>& names,
                                   const bpfmaps::SetImage& live, const rules::CompiledRuleSet* set);
// Sums hit counts of equal rules of several interfaces.
void merge_rules(std::vector<RuleRow>& into, const std::vector<RuleRow>& more);
Json rules_json(const std::vector<RuleRow>& rows);
std::string rules_table(const std::vector<RuleRow>& rows);

}  // namespace vaultwall::daemon
