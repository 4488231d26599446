// Pooled keep-alive HTTP/1.1 connections to vault upstreams (plain HTTP; the
// gate terminates TLS). Fully asynchronous.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include "gate/config.hpp"

namespace vaultwall::gate {

namespace beast = boost::beast;
namespace http = boost::beast::http;

enum class UpstreamFailure { none, unavailable /* 502 */, timeout /* 504 */ };

class UpstreamPool : public std::enable_shared_from_this<UpstreamPool> {
public:
    using Response = http::response<http::string_body>;
    using Callback = std::function<void(UpstreamFailure, Response)>;

    explicit UpstreamPool(boost::asio::io_context& ioc) : ioc_(ioc) {}

    // Sends `req` to `up` and calls `cb` exactly once (on some pool thread).
    void forward(const Upstream& up, http::request<http::string_body> req, const GateLimits& limits, Callback cb);

    void clear();  // drops idle connections (call before the io_context goes)
    std::size_t idle_count();

    // internal
    std::unique_ptr<beast::tcp_stream> take(const std::string& key);
    void give(const std::string& key, std::unique_ptr<beast::tcp_stream> s, std::size_t max_idle);
    boost::asio::io_context& ioc() { return ioc_; }

private:
    boost::asio::io_context& ioc_;
    std::mutex mu_;
    std::map<std::string, std::vector<std::unique_ptr<beast::tcp_stream>>> idle_;
};

}  // namespace vaultwall::gate
