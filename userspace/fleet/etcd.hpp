// A small etcd v3 client over etcd's native gRPC API (the protos Debian ships
// in golang-etcd-server-dev): KV Range and Txn, Watch (several watches on one
// multiplexed stream, progress requests, cancel), Lease grant/revoke and the
// LeaseKeepAlive stream, user/password auth, TLS with client certificates.
//
// Why not the JSON gateway: its HTTP/1.1 long polls are weak for watches in
// etcd 3.4 (etcd issues #8237, #11372). Why hand-written: Debian packages no
// C++ etcd client; the generated stubs are the heavy part and come from the
// packages at build time.
//
// Error convention: every failure is an EtcdError (a std::runtime_error with a
// one-line message naming the endpoint, the call and etcd's answer);
// retryable() says whether another attempt (later, or on another member) can
// succeed. Nothing else is thrown for etcd failures.
//
// Endpoints: one gRPC channel per member. A unary call goes to the current
// member; when that member is unreachable or has no leader the call moves to
// the next member and is retried there (each member at most once per call).
// Streams are opened on the current member and do not move: their owner
// reopens them (after EtcdClient::rotate()) when they fail.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace vaultwall::fleet {

class EtcdError : public std::runtime_error {
public:
    // code: the gRPC status code (0 when the failure is not gRPC's).
    EtcdError(const std::string& what, int code, bool retryable)
        : std::runtime_error(what), code_(code), retryable_(retryable) {}
    int code() const { return code_; }
    // Unreachable member, no leader, leader changed, timed out: a later or
    // different attempt may succeed. False for refusals (auth, bad request,
    // request too large, compacted revision).
    bool retryable() const { return retryable_; }

private:
    int code_;
    bool retryable_;
};

struct EtcdOptions {
    // "http://127.0.0.1:2379", "https://etcd1:2379", "host:port" (TLS when a
    // CA is given), or a local socket "unix:///run/etcd/sock" ("unixs://" with
    // TLS; the certificate is checked for "localhost"). Every endpoint is
    // plain or every endpoint is TLS.
    std::vector<std::string> endpoints;
    std::string cacert;  // PEM files; cacert alone: server-authenticated TLS
    std::string cert;
    std::string key;
    std::string user;  // etcd user/password auth when user is set
    std::string password;
    std::chrono::milliseconds timeout{5000};  // per unary call and per member
};

// "a,b,c" -> {"a","b","c"}; throws std::invalid_argument naming a bad entry.
std::vector<std::string> split_endpoints(const std::string& csv);

struct KeyValue {
    std::string key;
    std::string value;
    std::int64_t create_revision = 0;
    std::int64_t mod_revision = 0;
    std::int64_t version = 0;
    std::int64_t lease = 0;
};

struct RangeResult {
    std::int64_t revision = 0;  // the store's revision the read saw
    std::vector<KeyValue> kvs;
};

// The end of the range of every key starting with `prefix` (etcd's rule:
// the prefix with its last byte incremented).
std::string prefix_end(const std::string& prefix);

// One comparison of a Txn; all must hold for the success branch.
struct Compare {
    enum class Target { version, create_revision, mod_revision, value };
    std::string key;
    Target target = Target::mod_revision;
    std::int64_t number = 0;  // for version / revisions (0: the key does not exist)
    std::string value;        // for Target::value
};

struct Op {
    enum class Kind { put, remove, remove_prefix };
    Kind kind = Kind::put;
    std::string key;
    std::string value;
    std::int64_t lease = 0;
    static Op put(std::string k, std::string v, std::int64_t lease = 0) {
        return {Kind::put, std::move(k), std::move(v), lease};
    }
    static Op remove(std::string k) { return {Kind::remove, std::move(k), {}, 0}; }
    static Op remove_prefix(std::string p) { return {Kind::remove_prefix, std::move(p), {}, 0}; }
};

struct TxnResult {
    bool succeeded = false;
    std::int64_t revision = 0;  // the store's revision after the Txn
};

class EtcdClient {
public:
    explicit EtcdClient(EtcdOptions opts);  // throws EtcdError (unreadable TLS files, no endpoint)
    ~EtcdClient();
    EtcdClient(const EtcdClient&) = delete;
    EtcdClient& operator=(const EtcdClient&) = delete;

    // Linearizable reads (the default in etcd: served through the leader).
    std::optional<KeyValue> get(const std::string& key);
    // Every key under `prefix`; at `revision` when non-zero (throws a
    // non-retryable EtcdError when that revision is compacted).
    RangeResult get_prefix(const std::string& prefix, std::int64_t revision = 0, bool keys_only = false);
    std::int64_t put(const std::string& key, const std::string& value, std::int64_t lease = 0);
    TxnResult txn(const std::vector<Compare>& when, const std::vector<Op>& then,
                  const std::vector<Op>& otherwise = {});

    std::int64_t lease_grant(std::int64_t ttl_seconds);  // the lease id
    void lease_revoke(std::int64_t id);

    // The member unary calls and new streams use now, and a move to the next.
    std::string endpoint() const;
    void rotate();

    const EtcdOptions& options() const { return opts_; }

    struct Impl;  // gRPC channels, stubs and the auth token (etcd.cpp)
    Impl& impl() { return *impl_; }

private:
    EtcdOptions opts_;
    std::unique_ptr<Impl> impl_;
};

struct WatchEvent {
    bool deleted = false;  // DELETE (kv.key and kv.mod_revision set) or PUT
    KeyValue kv;
};

struct WatchResponse {
    std::int64_t watch_id = 0;
    std::int64_t revision = 0;  // header: every event up to here was sent
    bool canceled = false;
    std::int64_t compact_revision = 0;  // >0: start revision was compacted (canceled)
    std::string cancel_reason;
    std::vector<WatchEvent> events;  // in revision order; a revision is never split
    bool progress() const { return events.empty() && !canceled; }
};

// One Watch stream on the client's current member, multiplexing any number of
// watches. Not thread-safe: one owner thread calls everything (a private
// reader thread feeds next()).
class WatchStream {
public:
    explicit WatchStream(EtcdClient& client);
    ~WatchStream();  // cancels the stream
    WatchStream(const WatchStream&) = delete;
    WatchStream& operator=(const WatchStream&) = delete;

    // Watches every key under `prefix` from `start_revision` (0: from now);
    // waits for etcd's "created" answer and returns the watch id. With
    // progress_notify etcd also sends empty progress responses when idle.
    std::int64_t watch_prefix(const std::string& prefix, std::int64_t start_revision,
                              bool progress_notify = true);
    // Asks etcd to end one watch; its last answer comes through next() with
    // canceled set.
    void cancel(std::int64_t watch_id);
    // Asks for a progress response (revision only, no events) on every
    // watch: proof the stream is alive and current up to that revision.
    void request_progress();
    // The next response (not "created" ones), or nullopt after `timeout`.
    // Throws EtcdError when the stream has failed or been closed by etcd.
    std::optional<WatchResponse> next(std::chrono::milliseconds timeout);
    std::string endpoint() const { return endpoint_; }

    struct Impl;

private:
    std::string endpoint_;
    std::unique_ptr<Impl> impl_;
};

// The LeaseKeepAlive stream for one lease on the client's current member.
class LeaseKeepAlive {
public:
    LeaseKeepAlive(EtcdClient& client, std::int64_t lease_id);
    ~LeaseKeepAlive();
    LeaseKeepAlive(const LeaseKeepAlive&) = delete;
    LeaseKeepAlive& operator=(const LeaseKeepAlive&) = delete;

    // One keep-alive round trip: the lease's remaining TTL in seconds, 0 when
    // the lease is gone (expired or revoked). Throws EtcdError when the
    // stream fails or etcd does not answer within `timeout`.
    std::int64_t refresh(std::chrono::milliseconds timeout);

    struct Impl;

private:
    std::int64_t id_;
    std::unique_ptr<Impl> impl_;
};

}  // namespace vaultwall::fleet
