// GateConfig: everything one generation of the gate needs, built once from a
// rules::RuleFile (plus daemon-side options) and then immutable. The Gate
// swaps whole configs atomically on reload.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/ssl/context.hpp>

#include "gate/admission.hpp"
#include "gate/jwks_remote.hpp"
#include "gate/jwt.hpp"
#include "rules/model.hpp"

namespace vaultwall::gate {

struct GateLimits {
    std::size_t header_limit = 16 * 1024;          // request line + headers -> 431 beyond
    std::size_t body_limit = 1024 * 1024;          // -> 413 beyond
    std::size_t max_connections = 10000;           // accepted beyond this are closed at once
    std::chrono::milliseconds handshake_timeout{10000};
    std::chrono::milliseconds read_timeout{20000};  // a whole request (headers + body) must arrive within this
    std::chrono::milliseconds idle_timeout{120000}; // keep-alive wait for the next request
    std::chrono::milliseconds write_timeout{30000};
    std::chrono::milliseconds upstream_connect_timeout{5000};
    std::chrono::milliseconds upstream_timeout{60000};  // send request + receive response -> 504 beyond
    std::size_t upstream_idle_per_vault = 64;      // pooled keep-alive connections kept per upstream
    std::size_t upstream_response_limit = 16 * 1024 * 1024;
    std::size_t token_cache_entries = 65536;
    // identity.issuers[].jwks_url (jwks_remote.hpp)
    std::chrono::milliseconds jwks_min_refresh{30000};       // at most one fetch per issuer URL per this
    std::chrono::milliseconds jwks_refresh_interval{3600000};
    std::chrono::milliseconds jwks_fetch_timeout{10000};
    std::size_t jwks_max_bytes = 1024 * 1024;
    // GateConfig::build waits at most this long for a URL's first fetch (0: not
    // at all). Never fatal: tokens are refused (401) until the keys arrive.
    std::chrono::milliseconds jwks_initial_wait{3000};
};

struct GateOptions {
    GateLimits limits;
    std::shared_ptr<AdmissionSource> admission;  // null: no datapath, always the fail-closed fallback
    VaultNameOf vault_name_of;                   // datapath vault id -> name
    // CA bundle (PEM) that verifies the servers of identity.issuers[].jwks_url;
    // empty: the system store (OpenSSL's default verify paths).
    std::string jwks_ca_file;
};

class GateConfigError : public std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct Upstream {
    std::string host;  // a name, an IPv4 address, or an IPv6 address (without brackets)
    std::string port;  // service string, "80" by default
    // "127.0.0.1:8200", "[2001:db8::20]:8200": the pool's key and a Host header.
    std::string key() const;
};
// "http://host[:port][/]", "http://[2001:db8::20][:port][/]"; throws GateConfigError
Upstream parse_upstream(const std::string& url);

struct ListenKey {
    IpAddress addr;
    std::uint16_t port = 0;
    friend auto operator<=>(const ListenKey&, const ListenKey&) = default;
    friend bool operator==(const ListenKey&, const ListenKey&) = default;
    std::string str() const;  // "203.0.113.10:443", "[2001:db8::10]:443"
};

struct VaultRoute {
    std::size_t vault = 0;  // index into GateConfig::vaults
    bool is_private = false;
    std::uint32_t vni = 0;
};

struct GateConfig {
    rules::Identity identity;
    std::vector<rules::TrustedService> catalog;
    std::vector<rules::Vault> vaults;
    std::vector<Upstream> upstreams;  // parallel to vaults
    std::string tls_cert, tls_key, audit_log;
    GateLimits limits;   // GateOptions::limits with the rule file's gate.* knobs over them
    unsigned io_threads = 0;  // gate.io_threads (0: one per CPU); read when a Gate is made
    std::shared_ptr<AdmissionSource> admission;
    VaultNameOf vault_name_of;
    std::shared_ptr<const JwtValidator> jwt;
    std::shared_ptr<boost::asio::ssl::context> tls;
    std::map<ListenKey, std::vector<VaultRoute>> routes;  // every TCP endpoint -> vaults served there

    // Builds from a loaded rule file. Requires rf.gate; loads every issuer's
    // jwks_file (or starts fetching its jwks_url) and the TLS cert/key. Throws GateConfigError with a one-line
    // message naming the offending file or vault.
    static std::shared_ptr<const GateConfig> build(const rules::RuleFile& rf, GateOptions opts = {});

    // The vault served on `local` for a connection with datapath record
    // `rec` (nullptr when none fits).
    const VaultRoute* route(const ListenKey& local, const std::optional<vw_admission>& rec) const;
};

// What the rule file's gate section says of TLS (rules::Gate); defaults:
// TLS 1.2 and 1.3, forward-secret AEAD suites for 1.2, tickets on.
struct TlsPolicy {
    std::vector<std::string> versions{"1.2", "1.3"};
    std::string ciphers;       // TLS 1.2, OpenSSL syntax ("": the default list)
    std::string ciphersuites;  // TLS 1.3 ("": OpenSSL's)
    bool session_tickets = true;
};

// Server context from a PEM chain and key; throws GateConfigError naming the
// file or gate.* key at fault.
std::shared_ptr<boost::asio::ssl::context> make_server_tls(const std::string& cert, const std::string& key,
                                                           const TlsPolicy& policy = {});

}  // namespace vaultwall::gate
