// JWKS fetched from an HTTPS URL (identity.issuers[].jwks_url), cached, and
// refreshed in the background.
//
//  - Fetching is asynchronous (Boost.Beast over asio::ssl on a small fetcher
//    thread of its own); nothing on the request path ever waits for it.
//  - The server certificate is verified against the system store, or against
//    a configured CA file, and must name the URL's host (DNS name or IP).
//  - A token whose kid is unknown triggers a refresh, at most one per
//    `min_refresh` per URL; while a refresh is in flight (or rate limited)
//    such tokens are refused (401 invalid_token) — fail closed.
//  - The response is bounded (`max_bytes`, 16 KiB of headers) and must be a
//    200 with a JWKS; anything else keeps the previous keys.
//  - Keys are also refreshed every `refresh_interval`, and a failed fetch is
//    retried after `min_refresh`.
//  - One RemoteJwks per (URL, options): config reloads reuse the cache.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "gate/jwks.hpp"

namespace vaultwall::gate {

struct JwksFetchOptions {
    std::string ca_file;                              // PEM CA bundle; empty: the system store
    std::chrono::milliseconds min_refresh{30000};     // at most one fetch per URL per this interval
    std::chrono::milliseconds refresh_interval{3600000};  // periodic refresh of a loaded key set
    std::chrono::milliseconds timeout{10000};         // resolve + connect + TLS + request + response
    std::size_t max_bytes = 1024 * 1024;              // response body limit
};

struct HttpsUrl {
    std::string host;    // without brackets
    std::string port;    // "443" by default
    std::string target;  // "/path?query", "/" by default
    bool host_is_ip = false;
};
// "https://host[:port][/path]". nullopt (and *why) when it is not one.
std::optional<HttpsUrl> parse_https_url(const std::string& url, std::string* why = nullptr);

struct RemoteJwksStats {
    std::uint64_t fetches_started = 0;
    std::uint64_t fetches_ok = 0;
    std::uint64_t fetches_failed = 0;
    std::uint64_t refreshes_for_kid = 0;   // unknown-kid refreshes started
    std::uint64_t rate_limited = 0;        // unknown-kid refreshes refused (in flight or too soon)
    std::string last_error;                // "" after a success
};

class RemoteJwks : public std::enable_shared_from_this<RemoteJwks> {
public:
    // The shared instance for (url, opts); starts the first fetch when new.
    // Throws JwksError for a URL that is not https://host[:port]/path or an
    // unreadable CA file.
    static std::shared_ptr<RemoteJwks> get(const std::string& url, const JwksFetchOptions& opts = {});

    ~RemoteJwks();

    // The current key set (null until the first successful fetch). Never blocks on I/O.
    std::shared_ptr<const KeySet> keys() const;
    // A token named a kid the current set lacks: starts a background refresh
    // unless one is in flight or the last one started less than
    // min_refresh ago. Never blocks on I/O. True when a refresh was started.
    bool refresh_for_unknown_kid();
    bool in_flight() const;
    // Waits until keys are loaded (startup and tests only, never on the request path).
    bool wait_loaded(std::chrono::milliseconds max) const;
    // Waits until no fetch is in flight (tests).
    bool wait_idle(std::chrono::milliseconds max) const;
    RemoteJwksStats stats() const;
    const std::string& url() const { return url_; }

    struct Impl;

private:
    RemoteJwks(std::string url, HttpsUrl parsed, JwksFetchOptions opts);
    std::string url_;
    std::shared_ptr<Impl> impl_;
};

}  // namespace vaultwall::gate
