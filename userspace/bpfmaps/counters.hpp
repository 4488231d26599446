// Reads the datapath's verdict counters and rule hit counts (summed over CPUs).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <vector>

#include "bpfmaps/datapath.hpp"
#include "vaultwall_abi.h"

namespace vaultwall::bpfmaps {

struct Count {
    std::uint64_t packets = 0;
    std::uint64_t bytes = 0;
    friend bool operator==(const Count&, const Count&) = default;
};

struct CounterSnapshot {
    std::uint64_t generation = 0;
    std::array<Count, VW_GLOBAL_REASONS> global{};
    // vault id -> counts indexed by (reason - VW_GLOBAL_REASONS)
    std::map<std::uint32_t, std::array<Count, VW_VAULT_REASONS>> vaults;

    // The count of any reason: global ones ignore vault_id.
    Count get(vw_reason reason, std::uint32_t vault_id = 0) const;
};

// Reads the global counters and those of the given vault ids.
CounterSnapshot read_counters(const Datapath& dp, const std::vector<std::uint32_t>& vault_ids);
std::uint64_t read_rule_hits(const Datapath& dp, std::uint32_t rule_id);
std::uint64_t read_generation(const Datapath& dp);

}  // namespace vaultwall::bpfmaps
