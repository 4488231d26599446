// Installs compiled rule sets into the datapath's maps, atomically.
//
// The maps hold two rule sets (vaultwall_abi.h). An install is four steps,
// so that the daemon can run them over several interfaces as one
// transaction (daemon.cpp, "reload"):
//   prepare()    translate the rules against the live image (bpfmaps/image.hpp):
//                ids, capacity checks, the difference. Writes nothing.
//   write_idle() write that difference into the idle set. No packet reads it.
//   flip()       make the idle set live (generation + 1) and wait an RCU
//                grace period, so no packet still runs on the old set.
//                flip_back() undoes it while finish() has not run: the old
//                set is still intact in the other half.
//   finish()     write the same difference into the old set, so both sets
//                hold the new rules and the next install is again a
//                difference, and release vault ids nobody uses.
// install() is all four. Vault and rule ids are stable while a vault or rule
// stays, so their counters carry across reloads. Everything goes through a
// MapBackend: kernel maps, or memory in the unit tests.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bpfmaps/datapath.hpp"
#include "bpfmaps/image.hpp"
#include "bpfmaps/map_backend.hpp"
#include "bpfmaps/stride_tables.hpp"
#include "rules/compiled.hpp"
#include "vaultwall_abi.h"

namespace vaultwall::bpfmaps {

struct InstallReport {
    std::uint64_t generation = 0;
    std::size_t vaults = 0;
    std::size_t endpoints = 0;
    std::size_t rules = 0;
    std::vector<VaultDiff> diff;          // only vaults whose rules changed
    std::chrono::microseconds took{0};
    std::vector<std::uint32_t> vault_ids;  // by index of CompiledRuleSet::vaults
    std::vector<std::uint32_t> rule_ids;   // by index of CompiledRuleSet::rules
    std::vector<std::uint32_t> rule_ids6;  // by index of CompiledRuleSet::rules6
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
// The live rules of an image, by rule id.
std::vector<LiveRule> live_rules_of(const SetImage& image);

// The same for IPv6 rules (their ids are in the same space as IPv4's).
struct LiveRule6 {
    std::uint32_t rule_id = 0;
    std::uint32_t vault_id = 0;
    std::uint32_t vni = 0;
    rules::Ipv6Prefix prefix;
};
std::vector<LiveRule6> live_rules6_of(const SetImage& image);

class Installer {
public:
    // Adopts whatever the maps hold (a fresh load, or a previous daemon's).
    explicit Installer(const Datapath& dp);  // the kernel maps of dp
    explicit Installer(MapBackend& maps);    // which must outlive this
    ~Installer();

    struct Plan {
        Translation t;
        std::size_t vaults = 0, endpoints = 0, rules = 0;
        std::uint64_t for_generation = 0;  // the live generation it was made against
        std::chrono::steady_clock::time_point started;
    };
    // Throws (std::length_error, std::invalid_argument) when the set does not
    // fit the maps. Touches nothing.
    Plan prepare(const rules::CompiledRuleSet& set) const;
    // The same for an edit of one live vault's ip rules of either family
    // (translate_edit), without the compiled set: its counts are those of the
    // edited image.
    Plan prepare_edit(const std::string& vault, const RuleEdit& edit) const;
    // Throws BpfError when a write fails; the live set is untouched then.
    void write_idle(const Plan& plan);
    void flip(const Plan& plan);
    void flip_back();
    // Never throws: a failure to catch the old set up is repaired by the
    // next install (it then diffs against what that set really holds).
    InstallReport finish(const Plan& plan);

    InstallReport install(const rules::CompiledRuleSet& set);

    std::uint64_t generation() const { return generation_; }
    std::optional<std::uint32_t> vault_id(const std::string& name) const;
    std::optional<std::string> vault_name(std::uint32_t id) const;
    const std::map<std::uint32_t, std::string>& vault_names() const { return names_; }
    const SetImage& live_image() const { return sets_[live_]; }
    std::vector<LiveRule> live_rules() const { return live_rules_of(live_image()); }
    std::vector<LiveRule6> live_rules6() const { return live_rules6_of(live_image()); }

private:
    explicit Installer(std::unique_ptr<MapBackend> owned);
    void adopt();
    void relearn_set(std::uint32_t set);
    void release_unused_vault_ids();
    void write_set(std::uint32_t set, const Translation& t);
    void write_set6(std::uint32_t set, const Translation& t);
    void write_strides(std::uint32_t set, const std::vector<RuleEntry>& want,
                       const std::vector<std::uint64_t>& changed);
    void write_state(std::uint32_t live, std::uint64_t generation);

    std::unique_ptr<MapBackend> owned_;  // when built from a Datapath
    MapBackend& maps_;
    std::uint32_t max_rules_ = 0;
    std::uint32_t live_ = 0;
    std::uint64_t generation_ = 0;
    std::map<std::uint32_t, std::string> names_;  // vault id -> name
    SetImage sets_[VW_SETS];
    std::unique_ptr<StrideTables> strides_;
    // flip() remembers what to flip back to.
    std::optional<std::pair<std::uint32_t, std::uint64_t>> before_flip_;
};

}  // namespace vaultwall::bpfmaps
