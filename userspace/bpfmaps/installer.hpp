// Installs compiled rule sets into the datapath's maps, atomically.
//
// The maps hold two rule sets (vaultwall_abi.h). install() writes only the
// difference between the idle set and the new rules into the idle set, flips
// the live set, waits for an RCU grace period so no packet still runs on the
// old set, and then writes the same difference into the old set, so both
// sets hold the new rules and the next install is again a difference. Vault and rule ids are
// stable while a vault or rule stays, so their counters carry across reloads.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bpfmaps/datapath.hpp"
#include "bpfmaps/stride_tables.hpp"
#include "rules/compiled.hpp"
#include "vaultwall_abi.h"

namespace vaultwall::bpfmaps {

struct VaultDiff {
    std::string vault;
    std::size_t rules_added = 0;
    std::size_t rules_removed = 0;
};

struct InstallReport {
    std::uint64_t generation = 0;
    std::size_t vaults = 0;
    std::size_t endpoints = 0;
    std::size_t rules = 0;
    std::vector<VaultDiff> diff;          // only vaults whose rules changed
    std::chrono::microseconds took{0};
    std::vector<std::uint32_t> vault_ids;  // by index of CompiledRuleSet::vaults
    std::vector<std::uint32_t> rule_ids;   // by index of CompiledRuleSet::rules
    StrideTables::Usage lookup;            // the live set's rule lookup
};

// One source rule as the datapath holds it.
struct LiveRule {
    std::uint32_t rule_id = 0;
    std::uint32_t vault_id = 0;
    std::uint32_t vni = 0;
    std::uint32_t addr = 0;  // host byte order
    std::uint8_t len = 0;
};

// A rule as a set holds it: its identity across reloads (the rule key without
// its set) and its id. Sets keep these sorted by identity, so comparing two
// sets is one linear merge, even at a million rules.
struct RuleEntry {
    std::uint64_t scope = 0;   // vault_id << 32 | vni
    std::uint64_t prefix = 0;  // addr (host order) << 8 | len
    std::uint32_t id = 0;

    std::uint32_t vault_id() const { return static_cast<std::uint32_t>(scope >> 32); }
    std::uint32_t vni() const { return static_cast<std::uint32_t>(scope); }
    std::uint32_t addr() const { return static_cast<std::uint32_t>(prefix >> 8); }
    std::uint8_t len() const { return static_cast<std::uint8_t>(prefix); }
    bool same_rule(const RuleEntry& o) const { return scope == o.scope && prefix == o.prefix; }
    bool before(const RuleEntry& o) const {
        return scope != o.scope ? scope < o.scope : prefix < o.prefix;
    }
};

class Installer {
public:
    // Adopts whatever the maps hold (a fresh load, or a previous daemon's).
    explicit Installer(const Datapath& dp);
    ~Installer();

    // Throws (changing nothing live) when the set does not fit the maps.
    InstallReport install(const rules::CompiledRuleSet& set);

    std::uint64_t generation() const { return generation_; }
    std::optional<std::uint32_t> vault_id(const std::string& name) const;
    std::optional<std::string> vault_name(std::uint32_t id) const;
    std::map<std::uint32_t, std::string> vault_names() const;
    std::vector<LiveRule> live_rules() const;

private:
    struct SetShadow {
        std::uint16_t vxlan_port = 0;
        std::map<std::uint32_t, std::uint32_t> vault_flags;  // id -> flags
        std::map<std::pair<std::uint32_t, std::uint8_t>, bool> vteps;
        std::map<std::tuple<std::uint8_t, std::uint16_t, std::uint32_t, std::uint32_t>,
                 vw_endpoint> endpoints;  // (proto, port, vni, addr) in network order
        std::map<std::uint32_t, bool> protected_addrs;  // network order
        // Sorted by identity. Both sets hold the same rules after an install,
        // so they share one immutable list: a million rules are not copied.
        std::shared_ptr<const std::vector<RuleEntry>> rules =
            std::make_shared<const std::vector<RuleEntry>>();
    };

    // The rules install() found added and removed between the live set and
    // the new one. Both sets' writes apply it, rather than each comparing a
    // million rules again, when the set being written holds `from`.
    struct RuleDiff {
        const std::vector<RuleEntry>* from = nullptr;
        const std::vector<RuleEntry>* to = nullptr;
        std::vector<RuleEntry> upserts;
        std::vector<RuleEntry> removals;
    };

    void read_state();
    void read_names();
    void read_set(std::uint32_t set, SetShadow& out) const;
    std::vector<std::uint32_t> assign_vault_ids(const rules::CompiledRuleSet& set);
    void release_unused_vault_ids();
    void write_set(std::uint32_t set, SetShadow& have, const SetShadow& want, const RuleDiff& diff);
    void write_strides(std::uint32_t set, const std::vector<RuleEntry>& want,
                       const std::vector<std::uint64_t>& changed);
    void relearn_set(std::uint32_t set);
    void flip(std::uint32_t new_live);
    void zero_vault_counters(std::uint32_t vault_id);
    void zero_rule_hits(const std::vector<std::uint32_t>& rule_ids);

    const Datapath& dp_;
    std::uint32_t max_rules_;
    std::uint32_t live_ = 0;
    std::uint64_t generation_ = 0;
    std::map<std::uint32_t, std::string> names_;  // vault id -> name
    SetShadow sets_[VW_SETS];
    std::unique_ptr<StrideTables> strides_;
};

// Waits until every XDP run that started before the call has finished.
void wait_for_datapath_grace_period();

}  // namespace vaultwall::bpfmaps
