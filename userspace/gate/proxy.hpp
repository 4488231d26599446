// The L7 gate: an asynchronous TLS reverse proxy (Boost.Asio/Beast + OpenSSL)
// listening on every endpoint and private endpoint of every vault. Per
// request it runs decide() (decision.hpp) and either answers in Key Vault's
// words or forwards to the vault's upstream over a pooled connection.
//
//   auto cfg = gate::GateConfig::build(rule_file, {limits, admission, name_of});
//   gate::Gate g(cfg);            // threads = hardware concurrency by default
//   g.start();                    // binds every endpoint, throws on failure
//   ... g.reconfigure(gate::GateConfig::build(new_rule_file, ...));   // SIGHUP
//   g.stop();
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gate/config.hpp"

namespace vaultwall::gate {

struct GateStats {
    std::uint64_t connections_accepted = 0;
    std::uint64_t connections_rejected = 0;  // over max_connections
    std::uint64_t connections_active = 0;
    std::uint64_t requests = 0;
    std::uint64_t allowed = 0;
    std::uint64_t denied = 0;
    std::uint64_t upstream_errors = 0;       // 502 + 504
    std::uint64_t protocol_errors = 0;       // 400 / 413 / 431
};

class Gate {
public:
    // threads == 0: std::thread::hardware_concurrency().
    explicit Gate(std::shared_ptr<const GateConfig> config, unsigned threads = 0);
    ~Gate();
    Gate(const Gate&) = delete;
    Gate& operator=(const Gate&) = delete;

    // Binds every endpoint of the config and starts the I/O threads. Throws
    // std::runtime_error ("cannot listen on 203.0.113.10:443: ...") when an
    // endpoint cannot be bound; nothing keeps running then.
    void start();
    // Closes the listeners and every connection; joins the threads. Idempotent.
    void stop();
    // Atomically swaps in a new config: requests that start after the call
    // use it (a request in flight finishes under the old one). Listeners are
    // opened for new endpoints and closed for removed ones; returns one
    // message per endpoint that could not be bound (empty: all fine).
    std::vector<std::string> reconfigure(std::shared_ptr<const GateConfig> config);

    std::shared_ptr<const GateConfig> config() const;
    // Writes the audit lines buffered so far (they are otherwise written in
    // batches: at least every 100 ms, and on stop()).
    void flush_audit();
    GateStats stats() const;
    // Endpoints currently listening ("127.0.0.1:8443").
    std::vector<std::string> listening() const;

    struct Impl;

private:
    std::shared_ptr<Impl> impl_;
};

}  // namespace vaultwall::gate
