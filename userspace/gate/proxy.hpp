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
//
// The daemon's reload transaction uses the two phases instead:
//   auto p = g.prepare(cfg);   // throws: nothing running changed
//   ... other steps of the transaction; dropping p undoes this one ...
//   g.commit(std::move(p));    // never throws
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
    class Prepared;  // opaque: a config with its listeners opened

    // threads == 0: std::thread::hardware_concurrency(). `config` may be null
    // when the first config comes with commit().
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

    // Builds everything `config` needs without touching what runs: checks its
    // TLS context (a certificate and the key matching it) and its audit log,
    // and binds a listening socket for every endpoint not served already.
    // Throws std::runtime_error naming the failing endpoint or file. Dropping
    // the result releases its sockets. Works on a Gate not started yet.
    std::unique_ptr<Prepared> prepare(std::shared_ptr<const GateConfig> config);
    // Swaps the prepared config in: requests that start afterwards use it,
    // the prepared listeners accept, endpoints it no longer has are closed;
    // starts the gate if it was not running. Never throws (a failure it
    // cannot undo, such as no thread to start, is logged).
    void commit(std::unique_ptr<Prepared> prepared) noexcept;

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

class Gate::Prepared {
public:
    ~Prepared();  // closes the listeners commit() did not take
    Prepared(const Prepared&) = delete;
    Prepared& operator=(const Prepared&) = delete;

private:
    friend class Gate;
    struct State;
    explicit Prepared(std::unique_ptr<State> s);
    std::unique_ptr<State> s_;
};

}  // namespace vaultwall::gate
