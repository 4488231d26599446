// The fleet agent vaultwalld runs with --etcd: follows one rule set in etcd
// and hands every revision, in order, to the daemon's reload transaction; keeps
// the host's key alive on its own lease.
//
// Guarantees (SPEC §8):
// - Revisions are applied in etcd's order, each once: the watch resumes after
//   the last revision this host saw (never one learned elsewhere), and a
//   revision equal to the one enforced is not applied again.
// - A compacted history (the host was away too long) means a fresh read of
//   the latest revision, then the watch resumes after it.
// - A revision that is malformed, incomplete or refused by the daemon is
//   reported in the host key (error, failed_revision); the host keeps its
//   last good rule set. A later good revision clears the error.
// - While etcd is unreachable nothing changes on the host: the datapath keeps
//   the last rule set; the agent retries every member with backoff.
// - A watch stream that stops answering progress requests is treated as dead
//   (a member cut off from its cluster may keep a stream open and idle).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "fleet/etcd.hpp"
#include "fleet/ruleset.hpp"

namespace vaultwall::fleet {

struct AgentOptions {
    std::string ruleset;
    std::string host_id;
    // Last applied revision kept here (state_dir/RULESET.json) so a restarted
    // daemon enforces it at once, even with etcd down, and resumes after it.
    // Empty: no cache.
    std::string state_dir;
    std::int64_t lease_ttl_s = 10;
    std::chrono::milliseconds progress_interval{3000};  // idle time before asking; as long to answer
};

struct ApplyOutcome {
    bool ok = false;
    std::uint64_t generation = 0;
    std::string error;  // one line, when !ok
};
// Applies one revision as one transaction (it must not throw; the agent
// treats a throw as a failure).
using ApplyFn = std::function<ApplyOutcome(const Revision&)>;

// The cached last applied revision of `ruleset` in `state_dir`, if any.
// Throws RevisionError when the cache exists but is unreadable.
std::optional<Revision> load_cached_revision(const std::string& state_dir, const std::string& ruleset);

class Agent {
public:
    // `enforced`: the revision the host already enforces (from the cache or a
    // first read), 0 for none; `generation` its datapath generation.
    Agent(EtcdOptions etcd, AgentOptions opts, ApplyFn apply);
    ~Agent();
    Agent(const Agent&) = delete;
    Agent& operator=(const Agent&) = delete;

    // Applies the latest revision once, synchronously (startup without a
    // cache): returns false when etcd could not be read (the agent will keep
    // trying after start()). Throws nothing.
    bool initial_load(std::chrono::milliseconds budget);
    // Records a revision applied outside the agent (restored from the cache).
    void adopt(const Revision& rev, std::uint64_t generation);

    void start();
    void stop();  // revokes the host's lease (the host leaves fleet status)

    // {"ruleset","host","revision","seen_revision","generation","error",
    //  "failed_revision","etcd":{"connected","endpoint","error"}}
    nlohmann::ordered_json status() const;
    std::int64_t revision() const;

private:
    void watch_loop();
    void host_loop();
    void fresh_read();
    void on_events(const std::vector<WatchEvent>& events);
    void apply(const std::optional<Revision>& rev, std::int64_t at, const std::string& decode_error);
    void save_cache(const Revision& rev);
    void mark_dirty();
    bool sleep_for(std::chrono::milliseconds d);  // false when stopping

    EtcdClient etcd_;
    AgentOptions opts_;
    ApplyFn apply_;

    mutable std::mutex mu_;  // guards record_, etcd_error_, connected_
    std::condition_variable cv_;
    HostRecord record_;
    std::string etcd_error_;
    bool connected_ = false;
    bool dirty_ = true;
    std::atomic<bool> stop_{false};

    // Watch thread only.
    std::map<std::string, KeyValue> keys_;  // the rule set's keys as of seen_revision
    std::int64_t seen_ = 0;
    bool need_fresh_ = false;

    std::thread watcher_, host_;
};

}  // namespace vaultwall::fleet
