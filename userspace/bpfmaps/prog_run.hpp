// Runs the datapath's programs on a frame with BPF_PROG_TEST_RUN.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "bpfmaps/datapath.hpp"
#include "vaultwall_abi.h"

namespace vaultwall::bpfmaps {

// The attached program itself: counters move, admissions are recorded.
// Returns the XDP action.
std::uint32_t run_main(const Datapath& dp, std::span<const std::uint8_t> frame);

// The explain program: same classification on the live maps, no side effects.
vw_explain_result run_explain(const Datapath& dp, std::span<const std::uint8_t> frame);

// Runs `prog_fd` `repeat` times on each frame; returns the kernel's mean
// ns per run over all frames (for benchmarks).
double run_repeat_ns(int prog_fd, const std::vector<std::vector<std::uint8_t>>& frames,
                     std::uint32_t repeat);

}  // namespace vaultwall::bpfmaps
