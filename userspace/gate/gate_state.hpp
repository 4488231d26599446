// What every I/O thread and connection of one Gate shares: the current
// config (swapped whole on reload), the counters, the audit log. Internal to
// the gate (proxy.cpp, connection.cpp, request_handler.cpp).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>

#include "gate/audit.hpp"
#include "gate/config.hpp"

namespace vaultwall::gate {

struct GateCounters {
    std::atomic<std::uint64_t> accepted{0}, rejected{0}, active{0}, requests{0}, allowed{0}, denied{0},
        upstream_errors{0}, protocol_errors{0};
};

class GateState {
public:
    std::shared_ptr<const GateConfig> config() {
        std::lock_guard lock(mu_);
        return cfg_;
    }
    void set_config(std::shared_ptr<const GateConfig> c) {
        std::lock_guard lock(mu_);
        cfg_ = std::move(c);
        generation_.fetch_add(1, std::memory_order_release);
    }
    // Refreshes `c` (and `gen`) when a newer config was set; true if it did.
    // Connections call it per request: one atomic load unless the config changed.
    bool refresh(std::shared_ptr<const GateConfig>& c, std::uint64_t& gen) {
        if (generation_.load(std::memory_order_acquire) == gen && c) return false;
        std::lock_guard lock(mu_);
        c = cfg_;
        gen = generation_.load(std::memory_order_relaxed);
        return true;
    }
    AuditLog audit;
    GateCounters count;

private:
    std::mutex mu_;
    std::shared_ptr<const GateConfig> cfg_;
    std::atomic<std::uint64_t> generation_{0};  // bumped by set_config, under mu_
};

}  // namespace vaultwall::gate
