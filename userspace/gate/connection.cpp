#include "gate/connection.hpp"

#include <boost/asio/write.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/read.hpp>
#include <spdlog/spdlog.h>

#include "gate/gate_state.hpp"
#include "gate/http_policy.hpp"

namespace vaultwall::gate {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;
using Steady = std::chrono::steady_clock;

namespace {
// Read-buffer capacity reserved when a request starts arriving; an idle
// keep-alive connection holds no read buffer at all.
constexpr std::size_t kRequestBuffer = 4 * 1024;
}  // namespace

void Loop::start_sweeping() {
    sweep.expires_after(kSweep);
    sweep.async_wait([this](beast::error_code ec) {
        if (ec) return;
        Connection::sweep(*this, Steady::now());
        start_sweeping();
    });
}

void Connection::open(Loop& loop, Socket socket, std::shared_ptr<GateState> st, std::shared_ptr<const GateConfig> cfg,
                      std::uint64_t gen) {
    beast::error_code ec1, ec2;
    auto local = socket.local_endpoint(ec1);
    auto remote = socket.remote_endpoint(ec2);
    std::optional<Peer> peer;
    if (!ec1 && !ec2) peer = Peer::of(local, remote, *cfg);
    if (!peer) {
        beast::error_code ignored;
        socket.close(ignored);
        return;
    }
    try {
        std::make_shared<Connection>(loop, std::move(socket), std::move(st), std::move(cfg), gen, std::move(*peer))
            ->start();
    } catch (const std::bad_alloc&) {
        spdlog::warn("gate: out of memory for a new connection");
    }
}

Connection::Connection(Loop& loop, Socket socket, std::shared_ptr<GateState> st, std::shared_ptr<const GateConfig> cfg,
                       std::uint64_t gen, Peer peer)
    : loop_(loop), st_(std::move(st)), cfg_(std::move(cfg)), gen_(gen),
      tls_(std::move(socket), cfg_->tls->native_handle()), handler_(*st_, std::move(peer)) {
    st_->count.active++;
    next_ = loop_.head;
    if (next_) next_->prev_ = this;
    loop_.head = this;
}

Connection::~Connection() {
    if (prev_) prev_->next_ = next_;
    else loop_.head = next_;
    if (next_) next_->prev_ = prev_;
    st_->count.active--;
}

void Connection::sweep(Loop& loop, Steady::time_point now) {
    for (Connection* c = loop.head; c; c = c->next_)
        if (c->deadline_ <= now) {
            c->deadline_ = Steady::time_point::max();
            c->tls_.close();
        }
}

void Connection::start() {
    beast::error_code ignored;
    tls_.socket().set_option(tcp::no_delay(true), ignored);
    expire_in(cfg_->limits.handshake_timeout);
    tls_.async_handshake([self = shared_from_this()](beast::error_code ec) {
        if (ec) return self->close();  // TLS failure: nothing to answer in HTTP
        self->read_request();
    });
}

// The current config for the next request; one in flight keeps its own.
void Connection::refresh_config() {
    if (st_->refresh(cfg_, gen_)) handler_.config_changed();
}

void Connection::read_request() {
    refresh_config();
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(cfg_->limits.header_limit));
    parser_->body_limit(cfg_->limits.body_limit);
    if (first_ || buffer_.size() > 0) return read_header();
    // Keep-alive: wait up to idle_timeout, holding no buffer, for the next
    // request's first byte; its header deadline starts there.
    expire_in(cfg_->limits.idle_timeout);
    tls_.async_wait_data([self = shared_from_this()](beast::error_code ec) {
        if (ec) return self->on_read_error(ec);
        self->read_header();
    });
}

// The request line and headers, within read_timeout.
void Connection::read_header() {
    expire_in(cfg_->limits.read_timeout);
    if (buffer_.capacity() < kRequestBuffer) buffer_.reserve(kRequestBuffer);
    http::async_read_header(tls_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
        self->on_header(ec);
    });
}

void Connection::on_read_error(beast::error_code ec) {
    if (auto r = refusal_for(ec, parser_ && parser_->got_some())) return refuse(*r);
    close();
}

void Connection::on_header(beast::error_code ec) {
    if (ec) return on_read_error(ec);
    auto& req = parser_->get();
    if (auto r = check_head(req)) return refuse(*r);
    head_fields_ = field_count(req);
    if (!parser_->is_done() && beast::iequals(req[http::field::expect], "100-continue")) {
        static constexpr char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
        expire_in(cfg_->limits.write_timeout);
        return net::async_write(tls_, net::buffer(kContinue, sizeof kContinue - 1),
                                [self = shared_from_this()](beast::error_code ec, std::size_t) {
                                    if (ec) return self->close();
                                    self->read_body();
                                });
    }
    read_body();
}

void Connection::read_body() {
    expire_in(cfg_->limits.read_timeout);
    http::async_read(tls_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
        if (ec) return self->on_read_error(ec);
        if (auto r = check_trailers(self->parser_->get(), self->head_fields_)) return self->refuse(*r);
        self->on_request();
    });
}

// The rest of the request is not read: answer and close.
void Connection::refuse(const Refusal& r) {
    handler_.refuse(*cfg_, r, parser_ ? &parser_->get() : nullptr);
    respond(true);
}

void Connection::on_request() {
    refresh_config();
    Request req = parser_->release();
    parser_.reset();
    // The upstream's own timeouts run while the request is forwarded.
    deadline_ = Steady::time_point::max();
    handler_.handle(*cfg_, *loop_.pool, std::move(req), shared_from_this());
}

// Writes the handler's answer (one buffer, coalesced into as few records as
// fit), then reads the next request or closes.
void Connection::respond(bool close_after) {
    expire_in(cfg_->limits.write_timeout);
    net::async_write(tls_, net::buffer(handler_.wire()),
                     [self = shared_from_this(), close_after](beast::error_code ec, std::size_t) {
                         if (ec || close_after) return self->close();
                         // Idle until the next request: hold no message memory meanwhile.
                         self->handler_.idle();
                         if (self->buffer_.size() == 0) self->buffer_.shrink_to_fit();
                         self->first_ = false;
                         self->read_request();
                     });
}

void Connection::close() {
    if (closing_) return;
    closing_ = true;
    expire_in(std::chrono::milliseconds(2000));
    tls_.async_shutdown([self = shared_from_this()](beast::error_code) {
        beast::error_code ignored;
        self->tls_.socket().shutdown(tcp::socket::shutdown_both, ignored);
        self->tls_.close();
    });
}

}  // namespace vaultwall::gate
