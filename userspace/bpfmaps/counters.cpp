#include "bpfmaps/counters.hpp"

#include "bpfmaps/map_io.hpp"

namespace vaultwall::bpfmaps {

namespace {
Count sum(int fd, std::uint32_t idx) {
    std::vector<vw_counter> per_cpu(possible_cpus());
    Count c;
    if (bpf_map_lookup_elem(fd, &idx, per_cpu.data()) != 0) return c;
    for (const auto& v : per_cpu) {
        c.packets += v.packets;
        c.bytes += v.bytes;
    }
    return c;
}
}  // namespace

Count CounterSnapshot::get(vw_reason reason, std::uint32_t vault_id) const {
    if (reason < VW_GLOBAL_REASONS) return global[reason];
    auto it = vaults.find(vault_id);
    return it == vaults.end() ? Count{} : it->second[reason - VW_GLOBAL_REASONS];
}

std::uint64_t read_generation(const Datapath& dp) {
    std::uint32_t zero = 0;
    vw_state st{};
    if (!map_lookup(dp.map_fd(Map::state), zero, st)) throw_errno("reading vw_state");
    return st.generation;
}

CounterSnapshot read_counters(const Datapath& dp, const std::vector<std::uint32_t>& vault_ids) {
    CounterSnapshot snap;
    snap.generation = read_generation(dp);
    for (std::uint32_t r = 0; r < VW_GLOBAL_REASONS; ++r)
        snap.global[r] = sum(dp.map_fd(Map::global_counters), r);
    for (std::uint32_t id : vault_ids) {
        auto& row = snap.vaults[id];
        for (std::uint32_t r = VW_GLOBAL_REASONS; r < VW_REASONS; ++r)
            row[r - VW_GLOBAL_REASONS] =
                sum(dp.map_fd(Map::vault_counters), VW_VAULT_COUNTER_INDEX(id, r));
    }
    return snap;
}

std::uint64_t read_rule_hits(const Datapath& dp, std::uint32_t rule_id) {
    std::uint64_t hits = 0;
    map_lookup(dp.map_fd(Map::rule_hits), rule_id, hits);
    return hits;
}

}  // namespace vaultwall::bpfmaps
