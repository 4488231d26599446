// An I/O thread of the gate (Loop) and the client connections it runs.
// Connection is the HTTP plumbing only: the TLS stream, reading each
// request under the framing and size policy (http_policy.hpp), deadlines,
// keep-alive, writing the answer. What a request gets is the
// RequestHandler's business (request_handler.hpp). Internal to the gate.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include "gate/request_handler.hpp"
#include "gate/tls_stream.hpp"
#include "gate/upstream.hpp"

namespace vaultwall::gate {

class Connection;
class GateState;

// One I/O thread: its io_context, its upstream pool, its listeners' accepted
// connections, and their deadlines. Nothing here is touched from another
// thread except through post().
struct Loop {
    // Deadlines are checked by one sweep per loop (every kSweep) over an
    // intrusive list, not a timer per connection: no timer object or timer
    // queue operation per request phase.
    static constexpr std::chrono::milliseconds kSweep{100};
    Connection* head = nullptr;  // before ioc: connections unlink themselves while ioc is destroyed

    boost::asio::io_context ioc{1};
    std::shared_ptr<UpstreamPool> pool = std::make_shared<UpstreamPool>(ioc);
    boost::asio::steady_timer sweep{ioc};
    std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work;
    std::thread thread;

    void start_sweeping();
};

class Connection final : public std::enable_shared_from_this<Connection>, public Responder {
public:
    // Starts serving an accepted socket under `cfg` (GateState generation
    // `gen`). A socket of a family the gate does not serve is closed.
    static void open(Loop& loop, Socket socket, std::shared_ptr<GateState> st, std::shared_ptr<const GateConfig> cfg,
                     std::uint64_t gen);

    Connection(Loop& loop, Socket socket, std::shared_ptr<GateState> st, std::shared_ptr<const GateConfig> cfg,
               std::uint64_t gen, Peer peer);
    ~Connection();

    // The sweep: a connection past its deadline is closed; what waits on its
    // socket completes with operation_aborted.
    static void sweep(Loop& loop, std::chrono::steady_clock::time_point now);

    void respond(bool close) override;

private:
    using Parser = boost::beast::http::request_parser<boost::beast::http::string_body>;

    void start();
    void expire_in(std::chrono::milliseconds d) { deadline_ = std::chrono::steady_clock::now() + d; }
    void refresh_config();
    void read_request();
    void read_header();
    void on_header(boost::system::error_code ec);
    void read_body();
    void on_read_error(boost::system::error_code ec);
    void refuse(const Refusal& r);
    void on_request();
    void close();

    Loop& loop_;
    Connection* prev_ = nullptr;
    Connection* next_ = nullptr;
    std::chrono::steady_clock::time_point deadline_ = std::chrono::steady_clock::time_point::max();
    std::shared_ptr<GateState> st_;
    std::shared_ptr<const GateConfig> cfg_;
    std::uint64_t gen_ = 0;  // GateState generation of cfg_
    TlsStream tls_;
    boost::beast::flat_buffer buffer_;
    std::optional<Parser> parser_;
    std::size_t head_fields_ = 0;  // fields in the head: more after the body are trailers
    RequestHandler handler_;
    bool first_ = true;
    bool closing_ = false;
};

}  // namespace vaultwall::gate
