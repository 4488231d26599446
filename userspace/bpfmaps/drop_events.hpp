// The datapath's denied-flow events (SPEC §9): the vw_drop_events ring buffer
// and the per-CPU token buckets in vw_event_budget. A thin reader; decoding
// events into names and JSON is the daemon's (daemon/drops.hpp).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bpfmaps/datapath.hpp"
#include "vaultwall_abi.h"

struct ring_buffer;

namespace vaultwall::bpfmaps {

// What the token buckets of every CPU let through, and what they did not.
struct EventBudget {
    std::uint64_t sent = 0;
    std::uint64_t suppressed = 0;  // over drop_events_per_second
    std::uint64_t lost = 0;        // within the limit, but the ring was full
};
EventBudget read_event_budget(const Datapath& dp);

// Reads the ring buffers of one or more datapaths. Not thread-safe: one
// thread polls it. The map fds are duplicated, so the reader outlives the
// Datapath objects it was given.
class DropEventReader {
public:
    // Called for every event with the `source` index given to add().
    using Handler = std::function<void(std::size_t source, const vw_drop_event&)>;

    explicit DropEventReader(Handler handler);
    ~DropEventReader();
    DropEventReader(const DropEventReader&) = delete;
    DropEventReader& operator=(const DropEventReader&) = delete;

    // Adds the ring buffer of `dp`; events from it carry index `source`.
    void add(const Datapath& dp, std::size_t source);
    // Waits up to `timeout_ms` for a wakeup, then handles all events that are
    // there (the program wakes the reader only for a batch,
    // VW_DROP_EVENTS_WAKEUP_BYTES: call this every VW_DROP_EVENTS_READ_MS).
    // Returns how many were handled.
    int poll(int timeout_ms);
    // Handles what is there without waiting.
    int consume();

private:
    static int on_sample(void* ctx, void* data, std::size_t size);

    struct Source {
        DropEventReader* self;
        std::size_t index;
    };
    Handler handler_;
    ring_buffer* rb_ = nullptr;
    std::vector<int> fds_;
    std::vector<std::unique_ptr<Source>> sources_;
};

}  // namespace vaultwall::bpfmaps
