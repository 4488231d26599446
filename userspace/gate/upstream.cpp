#include "gate/upstream.hpp"

#include <optional>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/asio/write.hpp>

namespace vaultwall::gate {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;

class Exchange : public std::enable_shared_from_this<Exchange> {
public:
    Exchange(std::shared_ptr<UpstreamPool> pool, Upstream up, std::string wire, GateLimits limits,
             UpstreamPool::Callback cb)
        : pool_(std::move(pool)), up_(std::move(up)), wire_(std::move(wire)), limits_(limits), cb_(std::move(cb)) {}

    void start() {
        stream_ = pool_->take(up_.key());
        if (stream_) {
            reused_ = true;
            send();
        } else {
            connect();
        }
    }

private:
    void connect() {
        reused_ = false;
        stream_ = std::make_unique<UpstreamPool::Stream>(pool_->ioc().get_executor());
        // Only a new connection resolves (a pooled one needs no resolver).
        resolver_.emplace(pool_->ioc().get_executor());
        resolver_->async_resolve(up_.host, up_.port, net::ip::resolver_base::numeric_service,
                                [self = shared_from_this()](beast::error_code ec, tcp::resolver::results_type r) {
                                    if (ec) return self->finish(UpstreamFailure::unavailable);
                                    self->stream_->expires_after(self->limits_.upstream_connect_timeout);
                                    self->stream_->async_connect(
                                        r, [self](beast::error_code ec, const tcp::endpoint&) {
                                            if (ec)
                                                return self->finish(ec == beast::error::timeout
                                                                        ? UpstreamFailure::timeout
                                                                        : UpstreamFailure::unavailable);
                                            beast::error_code ignored;
                                            self->stream_->socket().set_option(tcp::no_delay(true), ignored);
                                            self->send();
                                        });
                                });
    }

    void send() {
        stream_->expires_after(limits_.upstream_timeout);
        net::async_write(*stream_, net::buffer(wire_), [self = shared_from_this()](beast::error_code ec, std::size_t) {
            if (ec) return self->failed(ec, false);
            self->parser_.emplace();
            self->parser_->body_limit(self->limits_.upstream_response_limit);
            self->parser_->header_limit(64 * 1024);
            self->buffer_.clear();
            http::async_read(*self->stream_, self->buffer_, *self->parser_,
                             [self](beast::error_code ec, std::size_t) {
                                 if (ec) return self->failed(ec, self->parser_->got_some());
                                 self->done();
                             });
        });
    }

    void failed(beast::error_code ec, bool got_some) {
        // A pooled connection the upstream closed meanwhile: retry once on a fresh one.
        if (reused_ && !got_some && ec != beast::error::timeout) {
            stream_.reset();
            return connect();
        }
        finish(ec == beast::error::timeout ? UpstreamFailure::timeout : UpstreamFailure::unavailable);
    }

    void done() {
        auto res = parser_->release();
        if (res.keep_alive() && buffer_.size() == 0) {
            stream_->expires_never();
            pool_->give(up_.key(), std::move(stream_), limits_.upstream_idle_per_vault);
        }
        stream_.reset();
        auto cb = std::move(cb_);
        cb(UpstreamFailure::none, std::move(res), std::move(wire_));
    }

    void finish(UpstreamFailure f) {
        if (stream_) {
            beast::error_code ignored;
            stream_->socket().close(ignored);
            stream_.reset();
        }
        auto cb = std::move(cb_);
        if (cb) cb(f, {}, std::move(wire_));
    }

    std::shared_ptr<UpstreamPool> pool_;
    Upstream up_;
    std::string wire_;  // the request, sent once more on a retry
    GateLimits limits_;
    UpstreamPool::Callback cb_;
    std::optional<tcp::resolver> resolver_;
    std::unique_ptr<UpstreamPool::Stream> stream_;
    beast::flat_buffer buffer_;
    std::optional<http::response_parser<http::string_body>> parser_;
    bool reused_ = false;
};

}  // namespace

void UpstreamPool::forward(const Upstream& up, std::string wire, const GateLimits& limits, Callback cb) {
    std::make_shared<Exchange>(shared_from_this(), up, std::move(wire), limits, std::move(cb))->start();
}

std::unique_ptr<UpstreamPool::Stream> UpstreamPool::take(const std::string& key) {
    auto it = idle_.find(key);
    while (it != idle_.end() && !it->second.empty()) {
        auto s = std::move(it->second.back());
        it->second.pop_back();
        if (s->socket().is_open()) return s;
    }
    return nullptr;
}

void UpstreamPool::give(const std::string& key, std::unique_ptr<Stream> s, std::size_t max_idle) {
    auto& v = idle_[key];
    if (v.size() < max_idle) v.push_back(std::move(s));
}

void UpstreamPool::clear() { idle_.clear(); }

}  // namespace vaultwall::gate
