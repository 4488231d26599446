// Pooled keep-alive HTTP/1.1 connections to vault upstreams (plain HTTP; the
// gate terminates TLS). One pool per I/O thread: it is used only from its own
// io_context's thread, so it takes no lock and its callbacks run there.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/basic_stream.hpp>
#include <boost/beast/core/rate_policy.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "gate/config.hpp"

namespace vaultwall::gate {

enum class UpstreamFailure { none, unavailable /* 502 */, timeout /* 504 */ };

class UpstreamPool : public std::enable_shared_from_this<UpstreamPool> {
public:
    using Response = boost::beast::http::response<boost::beast::http::string_body>;
    // The response (empty on failure) and the request's buffer, given back
    // for the caller to reuse.
    using Callback = std::function<void(UpstreamFailure, Response, std::string wire)>;
    // A connection to an upstream, on this pool's io_context.
    using Stream = boost::beast::basic_stream<boost::asio::ip::tcp, boost::asio::io_context::executor_type,
                                              boost::beast::unlimited_rate_policy>;

    explicit UpstreamPool(boost::asio::io_context& ioc) : ioc_(ioc) {}

    // Sends `wire` (a serialised request, http_policy.hpp) to `up` and calls
    // `cb` exactly once, on this pool's thread (never inside this call).
    void forward(const Upstream& up, std::string wire, const GateLimits& limits, Callback cb);
    void clear();  // drops idle connections (call before the io_context goes)

    // For the exchange (upstream.cpp): a pooled connection, or null.
    std::unique_ptr<Stream> take(const std::string& key);
    void give(const std::string& key, std::unique_ptr<Stream> s, std::size_t max_idle);
    boost::asio::io_context& ioc() { return ioc_; }

private:
    boost::asio::io_context& ioc_;
    std::map<std::string, std::vector<std::unique_ptr<Stream>>> idle_;
};

}  // namespace vaultwall::gate
