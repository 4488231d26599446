// Denied-flow events in the daemon (SPEC §9): a thread reads the ring buffer
// of every managed interface, keeps a bounded history in memory for
// `vaultwallctl drops`, and appends each event to `drop_log` as a JSON line.
// The datapath rate-limits what reaches it (host.drop_events_per_second), so
// the work here is bounded too.
#pragma once

#include <cstdint>
#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bpfmaps/datapath.hpp"
#include "bpfmaps/drop_events.hpp"
#include "daemon/control.hpp"
#include "vaultwall_abi.h"

namespace vaultwall::daemon {

// One event as the daemon keeps it.
struct DropRecord {
    std::uint64_t seq = 0;      // 1, 2, ...: `drops --follow` asks for what came after
    std::int64_t unix_ns = 0;   // wall-clock time of the packet
    std::string dev;            // interface it arrived on
    std::string vault;          // "" for global reasons
    vw_drop_event event{};
};

// {"seq","time","interface","source","sport","destination","protocol","vni",
//  "vault","verdict","reason","bytes","generation"}: `drops --json` and drop_log.
Json drop_json(const DropRecord& r);

// Which records a `drops` request wants.
struct DropFilter {
    std::string vault;           // "" any
    std::string reason;          // "" any; a reason ("no_rule"), a verdict ("audit") or both ("audit.no_rule")
    std::uint64_t after = 0;     // only seq > after
    // Throws std::invalid_argument naming what is accepted when `reason` names nothing.
    void check() const;
    bool matches(const DropRecord& r) const;
};

// `--top N`: the N sources with the most events among `records`, each with its
// event count, first and last time, and the vaults and reasons seen.
Json top_sources(const std::vector<DropRecord>& records, std::size_t n);

class DropMonitor {
public:
    static constexpr std::size_t kDefaultHistory = 10000;

    explicit DropMonitor(std::size_t capacity = kDefaultHistory);
    ~DropMonitor();
    DropMonitor(const DropMonitor&) = delete;
    DropMonitor& operator=(const DropMonitor&) = delete;

    struct Source {
        std::string dev;
        const bpfmaps::Datapath* dp = nullptr;  // only read during set_sources()
        std::map<std::uint32_t, std::string> vault_names;
    };
    // The interfaces to read from now (after an attach, detach or reload).
    void set_sources(const std::vector<Source>& sources);
    // Appends events to `path` ("" for none); opens it again even when the
    // path is the same, so a rotated log is let go (SIGHUP). Throws
    // std::runtime_error when it cannot be opened (the old one is kept).
    void set_log(const std::string& path);

    void start();
    void stop();

    // The records matching `f`, oldest first, at most `limit` of the newest (0: all).
    std::vector<DropRecord> query(const DropFilter& f, std::size_t limit = 0) const;
    std::uint64_t last_seq() const;
    std::size_t capacity() const { return capacity_; }

    // Takes one event as the reader hands it (the thread; tests).
    void ingest(const std::string& dev, const std::map<std::uint32_t, std::string>& names,
                const vw_drop_event& e);

private:
    void loop();

    const std::size_t capacity_;
    mutable std::mutex mu_;
    std::deque<DropRecord> history_;
    std::uint64_t seq_ = 0;
    std::int64_t mono_to_unix_ns_ = 0;  // CLOCK_REALTIME - CLOCK_MONOTONIC

    std::mutex log_mu_;
    std::FILE* log_ = nullptr;
    std::string log_path_;

    // Sources and their reader: swapped in by set_sources, used by the thread.
    struct Reader;
    std::mutex reader_mu_;
    std::unique_ptr<Reader> next_reader_;
    bool stop_ = false;
    std::thread thread_;
};

}  // namespace vaultwall::daemon
