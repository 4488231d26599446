#include "gate/proxy.hpp"

#include <netinet/in.h>
#include <sys/socket.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <thread>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <spdlog/spdlog.h>

#include "gate/audit.hpp"
#include "gate/decision.hpp"
#include "gate/upstream.hpp"
#include "rules/ipv4.hpp"

namespace vaultwall::gate {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = net::ip::tcp;

namespace {

struct Counters {
    std::atomic<std::uint64_t> accepted{0}, rejected{0}, active{0}, requests{0}, allowed{0}, denied{0},
        upstream_errors{0}, protocol_errors{0};
};

}  // namespace

// State shared by the Gate and its sessions (sessions may outlive a stop()).
struct Shared {
    explicit Shared(net::io_context& ioc) : pool(std::make_shared<UpstreamPool>(ioc)) {}
    std::shared_ptr<const GateConfig> config() {
        std::lock_guard lock(mu);
        return cfg;
    }
    void set_config(std::shared_ptr<const GateConfig> c) {
        std::lock_guard lock(mu);
        cfg = std::move(c);
        generation.fetch_add(1, std::memory_order_release);
    }
    // Refreshes `cfg` (and `gen`) when a newer config was set; true if it did.
    // Sessions call it per request: one atomic load unless the config changed.
    bool refresh(std::shared_ptr<const GateConfig>& c, std::uint64_t& gen) {
        if (generation.load(std::memory_order_acquire) == gen && c) return false;
        std::lock_guard lock(mu);
        c = cfg;
        gen = generation.load(std::memory_order_relaxed);
        return true;
    }
    std::mutex mu;
    std::shared_ptr<const GateConfig> cfg;
    std::atomic<std::uint64_t> generation{0};  // bumped by set_config, under mu
    std::shared_ptr<UpstreamPool> pool;
    AuditLog audit;
    Counters c;
};

namespace {

std::string network_info(const std::string& client) { return "addr=" + client + ";act_addr_fam=InterNetwork;"; }

bool is_hop_by_hop(http::field f) {
    switch (f) {
    case http::field::connection:
    case http::field::keep_alive:
    case http::field::proxy_connection:
    case http::field::proxy_authenticate:
    case http::field::proxy_authorization:
    case http::field::te:
    case http::field::trailer:
    case http::field::transfer_encoding:
    case http::field::upgrade:
    case http::field::expect:
        return true;
    default:
        return false;
    }
}

template <class Msg>
void strip_hop_by_hop(Msg& m) {
    // Also the fields a Connection header names.
    std::vector<std::string> named;
    for (auto it = m.find(http::field::connection); it != m.end() && it->name() == http::field::connection; ++it)
        for (auto tok : http::token_list{it->value()}) named.emplace_back(tok);
    for (const auto& n : named) m.erase(n);
    for (auto it = m.begin(); it != m.end();) {
        if (is_hop_by_hop(it->name()))
            it = m.erase(it);
        else
            ++it;
    }
}

// Read-buffer capacity a keep-alive connection keeps between requests.
constexpr std::size_t kKeptReadBuffer = 8 * 1024;
// The first read of a keep-alive request (it fits in the kept buffer).
constexpr std::size_t kFirstRead = 4 * 1024;

class Session : public std::enable_shared_from_this<Session> {
public:
    Session(tcp::socket&& socket, std::shared_ptr<Shared> sh, std::shared_ptr<const GateConfig> cfg,
            std::uint64_t gen)
        : sh_(std::move(sh)), cfg_(std::move(cfg)), gen_(gen), tls_(cfg_->tls), stream_(std::move(socket), *tls_) {
        sh_->c.active++;
    }
    ~Session() { sh_->c.active--; }

    void run() {
        net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->on_run(); });
    }

private:
    tcp::socket& sock() { return beast::get_lowest_layer(stream_).socket(); }
    beast::tcp_stream& tcp_layer() { return beast::get_lowest_layer(stream_); }

    void on_run() {
        beast::error_code ec;
        auto local = sock().local_endpoint(ec);
        auto remote = sock().remote_endpoint(ec);
        if (ec || !local.address().is_v4() || !remote.address().is_v4()) return;
        local_ = {local.address().to_v4().to_uint(), local.port()};
        client_ = remote.address().to_v4().to_uint();
        client_port_ = remote.port();
        client_str_ = rules::format_ipv4(client_);
        network_info_ = network_info(client_str_);
        if (cfg_->admission) record_ = cfg_->admission->lookup(client_, client_port_, local_.addr, local_.port);
        sock().set_option(tcp::no_delay(true), ec);
        tcp_layer().expires_after(cfg_->limits.handshake_timeout);
        stream_.async_handshake(ssl::stream_base::server,
                                [self = shared_from_this()](beast::error_code ec) {
                                    if (ec) return;  // TLS failure: nothing to answer in HTTP
                                    self->do_read();
                                });
    }

    // The current config; the cached route/admission go with the old one.
    void refresh_config() {
        if (sh_->refresh(cfg_, gen_)) routed_ = false;
    }

    void do_read() {
        refresh_config();
        parser_.emplace();
        parser_->header_limit(static_cast<std::uint32_t>(cfg_->limits.header_limit));
        parser_->body_limit(cfg_->limits.body_limit);
        if (first_ || buffer_.size() > 0) return read_header();
        // Keep-alive: wait up to idle_timeout for the next request's first
        // byte; its header deadline starts there, as the first request's did.
        tcp_layer().expires_after(cfg_->limits.idle_timeout);
        stream_.async_read_some(buffer_.prepare(kFirstRead),
                                [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                                    if (ec) return self->on_read_error(ec);
                                    self->buffer_.commit(n);
                                    self->read_header();
                                });
    }

    // The request line and headers, within read_timeout.
    void read_header() {
        tcp_layer().expires_after(cfg_->limits.read_timeout);
        http::async_read_header(stream_, buffer_, *parser_,
                                [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_header(ec); });
    }

    // Maps a read error to an answer, or to a silent close.
    void on_read_error(beast::error_code ec) {
        if (ec == http::error::header_limit)
            return protocol_error(http::status::request_header_fields_too_large, "header_too_large",
                                  "Request header fields too large.");
        if (ec == http::error::body_limit)
            return protocol_error(http::status::payload_too_large, "body_too_large", "Request body too large.");
        if (ec == http::error::bad_content_length || ec == http::error::bad_transfer_encoding)
            return protocol_error(http::status::bad_request, "request_smuggling",
                                  "Conflicting or unsupported message framing (Content-Length / Transfer-Encoding).");
        if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == net::error::eof ||
            ec == ssl::error::stream_truncated || ec == net::error::operation_aborted ||
            ec == net::error::connection_reset || !parser_->got_some())
            return close();
        return protocol_error(http::status::bad_request, "bad_request", "The request is malformed.");
    }

    void on_header(beast::error_code ec) {
        if (ec) return on_read_error(ec);
        auto& req = parser_->get();
        // Request smuggling: exactly one framing, spelled exactly one way.
        auto cl = req.equal_range(http::field::content_length);
        auto te = req.equal_range(http::field::transfer_encoding);
        std::size_t n_cl = std::distance(cl.first, cl.second);
        std::size_t n_te = std::distance(te.first, te.second);
        bool bad = n_cl > 1 || (n_cl && n_te) || n_te > 1;
        if (n_cl == 1) {
            auto v = cl.first->value();
            bad = bad || v.empty() || v.find_first_not_of("0123456789") != beast::string_view::npos;
        }
        if (n_te == 1) {
            bad = bad || !beast::iequals(te.first->value(), "chunked") || req.version() < 11;
        }
        if (bad)
            return protocol_error(http::status::bad_request, "request_smuggling",
                                  "Conflicting or unsupported message framing (Content-Length / Transfer-Encoding).");
        if (req.method() == http::verb::unknown)  // an extension method, or "get": none is Key Vault's
            return protocol_error(http::status::not_implemented, "unknown_method",
                                  "The request method is not supported.", "NotImplemented");
        if (req.target().find('#') != beast::string_view::npos)
            return protocol_error(http::status::bad_request, "fragment_in_target",
                                  "The request target must not contain a fragment ('#').");
        // One identity per request: the one the gate authenticates is the one forwarded.
        if (req.count(http::field::authorization) > 1)
            return protocol_error(http::status::bad_request, "duplicate_authorization",
                                  "The request has more than one Authorization header.");
        // RFC 9112 §3.2: HTTP/1.1 has exactly one Host; HTTP/1.0 at most one.
        std::size_t hosts = req.count(http::field::host);
        if (hosts > 1 || (hosts == 0 && req.version() >= 11))
            return protocol_error(http::status::bad_request, "bad_host",
                                  "The request must have exactly one Host header.");
        header_fields_ = static_cast<std::size_t>(std::distance(req.begin(), req.end()));
        if (!parser_->is_done() && beast::iequals(req[http::field::expect], "100-continue")) {
            cont_.emplace(http::status::continue_, 11);
            tcp_layer().expires_after(cfg_->limits.write_timeout);
            return http::async_write(stream_, *cont_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
                if (ec) return self->close();
                self->read_body();
            });
        }
        read_body();
    }

    void read_body() {
        tcp_layer().expires_after(cfg_->limits.read_timeout);
        http::async_read(stream_, buffer_, *parser_,
                         [self = shared_from_this()](beast::error_code ec, std::size_t) {
                             if (ec) return self->on_read_error(ec);
                             // Beast appends chunked trailer fields to the
                             // header fields; RFC 9110 §6.5.1 forbids that
                             // merge (an Authorization or Host in the
                             // trailer), so a trailer is refused.
                             auto& req = self->parser_->get();
                             if (static_cast<std::size_t>(std::distance(req.begin(), req.end())) !=
                                 self->header_fields_)
                                 return self->protocol_error(http::status::bad_request, "trailer_fields",
                                                             "Trailer fields are not accepted.");
                             self->on_request();
                         });
    }

    // The vault this connection reaches under cfg_ and its admission: both
    // depend only on the connection (its datapath record) and the config, so
    // they are resolved (vault_name_of: bpf map lookups) once per connection
    // and config generation, not per request.
    const rules::Vault* vault() {
        if (!routed_) {
            route_ = cfg_->route(local_, record_);
            vault_ = route_ ? &cfg_->vaults[route_->vault] : nullptr;
            if (vault_)
                admission_ = resolve_admission(record_, cfg_->vault_name_of, *vault_, client_, route_->is_private);
            routed_ = true;
        }
        return vault_;
    }

    void audit(std::string_view vault, std::uint32_t vni, std::string_view op, std::string_view caller, bool allow,
               std::string_view reason, unsigned status) {
        AuditRecord a;
        a.client = client_str_;
        a.vni = vni;
        a.vault = vault;
        a.operation = op;
        a.caller = caller;
        a.decision = allow ? "allow" : "deny";
        a.reason = reason;
        a.status = status;
        if (parser_) {
            auto m = parser_->get().method_string();
            auto t = parser_->get().target();
            a.method = std::string_view(m.data(), m.size());
            a.path = std::string_view(t.data(), std::min(t.size(), t.find('?')));
        }
        sh_->audit.write(a);
    }

    void protocol_error(http::status st, const std::string& reason, const std::string& message,
                        const char* code = "BadParameter") {
        sh_->c.protocol_errors++;
        const rules::Vault* v = vault();
        audit(v ? std::string_view(v->name) : std::string_view(), record_ ? record_->vni : 0, "", "", false, reason,
              static_cast<unsigned>(st));
        http::response<http::string_body> res{st, 11};
        res.set(http::field::content_type, "application/json; charset=utf-8");
        res.body() = error_body(code, message);
        send(std::move(res), true);
    }

    void on_request() {
        sh_->c.requests++;
        refresh_config();
        req_ = parser_->release();
        parser_.emplace();  // keep method/target for audit of this request
        parser_->get().method_string(req_.method_string());
        parser_->get().target(req_.target());
        keep_alive_ = req_.keep_alive();

        const rules::Vault* vault = this->vault();
        if (!vault) {
            http::response<http::string_body> res{http::status::service_unavailable, 11};
            res.set(http::field::content_type, "application/json; charset=utf-8");
            res.body() = error_body("ServiceUnavailable", "No vault is served on this endpoint.");
            return send(std::move(res), true);
        }
        const Admission& adm = admission_;
        auto sv = [](beast::string_view s) { return std::string_view(s.data(), s.size()); };
        RequestFacts facts;
        facts.method = sv(req_.method_string());
        facts.target = sv(req_.target());
        if (auto it = req_.find(http::field::authorization); it != req_.end()) facts.authorization = sv(it->value());
        facts.client = client_;
        DecisionContext ctx{*vault, cfg_->identity, cfg_->catalog, *cfg_->jwt};
        Decision d = decide(ctx, facts, adm, Clock::now());
        vni_ = adm.vni;
        if (!d.allow) {
            sh_->c.denied++;
            audit(vault->name, adm.vni, d.operation, d.caller, false, d.reason, d.status);
            http::response<http::string_body> res{static_cast<http::status>(d.status), 11};
            res.set(http::field::content_type, "application/json; charset=utf-8");
            if (!d.www_authenticate.empty()) res.set(http::field::www_authenticate, d.www_authenticate);
            res.body() = d.body();
            return send(std::move(res), !keep_alive_);
        }
        sh_->c.allowed++;
        decision_ = std::move(d);

        http::request<http::string_body> up = std::move(req_);
        strip_hop_by_hop(up);
        // What was authorised is the real method on the normalised target.
        for (const char* f : {"X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"}) up.erase(f);
        up.target(decision_.target);
        if (up.find(http::field::host) == up.end()) up.set(http::field::host, cfg_->upstreams[route_->vault].key());
        up.version(11);
        up.set("X-Forwarded-For", client_str_);
        up.set("X-Forwarded-Proto", "https");
        up.keep_alive(true);
        up.prepare_payload();
        auto self = shared_from_this();
        sh_->pool->forward(cfg_->upstreams[route_->vault], std::move(up), cfg_->limits,
                           [self](UpstreamFailure f, UpstreamPool::Response r) {
                               net::dispatch(self->stream_.get_executor(), [self, f, r = std::move(r)]() mutable {
                                   self->on_upstream(f, std::move(r));
                               });
                           });
    }

    void on_upstream(UpstreamFailure f, UpstreamPool::Response r) {
        if (f != UpstreamFailure::none) {
            sh_->c.upstream_errors++;
            bool timeout = f == UpstreamFailure::timeout;
            auto st = timeout ? http::status::gateway_timeout : http::status::bad_gateway;
            audit(vault_->name, vni_, decision_.operation, decision_.caller, true,
                  decision_.reason + (timeout ? ";upstream_timeout" : ";upstream_unavailable"),
                  static_cast<unsigned>(st));
            http::response<http::string_body> res{st, 11};
            res.set(http::field::content_type, "application/json; charset=utf-8");
            res.body() = error_body(timeout ? "GatewayTimeout" : "BadGateway",
                                    timeout ? "The vault did not answer in time." : "The vault is unavailable.");
            return send(std::move(res), !keep_alive_);
        }
        audit(vault_->name, vni_, decision_.operation, decision_.caller, true, decision_.reason, r.result_int());
        strip_hop_by_hop(r);
        r.version(11);
        send(std::move(r), !keep_alive_);
    }

    void send(http::response<http::string_body> res, bool close_after) {
        res.set("x-ms-keyvault-network-info", network_info_);
        res.keep_alive(!close_after);
        res.prepare_payload();
        res_ = std::move(res);
        tcp_layer().expires_after(cfg_->limits.write_timeout);
        http::async_write(stream_, res_, [self = shared_from_this(), close_after](beast::error_code ec, std::size_t) {
            if (ec || close_after) return self->close();
            // Idle until the next request: hold no message memory meanwhile,
            // except a small read buffer (reallocating it for every request
            // of a keep-alive connection costs more than the few KiB it
            // keeps; a buffer grown by a large request is given back).
            self->res_ = {};
            self->req_ = {};
            self->decision_ = {};
            self->parser_.reset();
            if (self->buffer_.size() == 0 && self->buffer_.capacity() > kKeptReadBuffer) self->buffer_.shrink_to_fit();
            self->first_ = false;
            self->do_read();
        });
    }

    void close() {
        if (closing_) return;
        closing_ = true;
        tcp_layer().expires_after(std::chrono::seconds(2));
        stream_.async_shutdown([self = shared_from_this()](beast::error_code) {
            beast::error_code ignored;
            self->sock().shutdown(tcp::socket::shutdown_both, ignored);
            self->sock().close(ignored);
        });
    }

    std::shared_ptr<Shared> sh_;
    std::shared_ptr<const GateConfig> cfg_;
    std::uint64_t gen_ = 0;  // Shared::generation of cfg_
    std::shared_ptr<ssl::context> tls_;
    beast::ssl_stream<beast::tcp_stream> stream_;
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<http::string_body>> parser_;
    std::optional<http::response<http::empty_body>> cont_;
    http::request<http::string_body> req_;
    http::response<http::string_body> res_;
    Decision decision_;
    // vault(): valid while routed_ (reset with every new cfg_).
    bool routed_ = false;
    const VaultRoute* route_ = nullptr;
    const rules::Vault* vault_ = nullptr;
    Admission admission_;
    std::uint32_t vni_ = 0;
    ListenKey local_;
    std::uint32_t client_ = 0;
    std::string client_str_;    // "192.0.2.9"
    std::string network_info_;  // x-ms-keyvault-network-info, per connection
    std::uint16_t client_port_ = 0;
    std::optional<vw_admission> record_;
    bool first_ = true;
    std::size_t header_fields_ = 0;  // fields in the header: more after the body are trailers
    bool keep_alive_ = true;
    bool closing_ = false;
};

class Listener : public std::enable_shared_from_this<Listener> {
public:
    Listener(net::io_context& ioc, std::shared_ptr<Shared> sh, ListenKey key)
        : ioc_(ioc), sh_(std::move(sh)), key_(key), strand_(net::make_strand(ioc)), acceptor_(strand_),
          retry_(strand_) {}

    void open() {
        tcp::endpoint ep(net::ip::address_v4(key_.addr), key_.port);
        acceptor_.open(ep.protocol());
        acceptor_.set_option(net::socket_base::reuse_address(true));
        int one = 1;
        ::setsockopt(acceptor_.native_handle(), IPPROTO_IP, IP_FREEBIND, &one, sizeof one);
        acceptor_.bind(ep);
        acceptor_.listen(net::socket_base::max_listen_connections);
    }

    void start() {
        net::dispatch(strand_, [self = shared_from_this()] { self->accept(); });
    }

    void close() {
        net::post(strand_, [self = shared_from_this()] {
            beast::error_code ignored;
            self->closed_ = true;
            self->retry_.cancel();
            self->acceptor_.close(ignored);
        });
    }
    void close_now() {
        beast::error_code ignored;
        closed_ = true;
        acceptor_.close(ignored);
    }
    std::string name() const { return rules::format_ipv4(key_.addr) + ":" + std::to_string(key_.port); }

private:
    void accept() {
        if (closed_) return;
        acceptor_.async_accept(net::make_strand(ioc_), [self = shared_from_this()](beast::error_code ec,
                                                                                  tcp::socket s) {
            self->on_accept(ec, std::move(s));
        });
    }

    void on_accept(beast::error_code ec, tcp::socket s) {
        if (ec == net::error::operation_aborted || closed_) return;
        if (ec) {  // EMFILE and friends: back off a little instead of spinning
            retry_.expires_after(std::chrono::milliseconds(50));
            retry_.async_wait([self = shared_from_this()](beast::error_code e) {
                if (!e) self->accept();
            });
            return;
        }
        std::shared_ptr<const GateConfig> cfg;
        std::uint64_t gen = 0;
        sh_->refresh(cfg, gen);
        if (sh_->c.active.load() >= cfg->limits.max_connections) {
            sh_->c.rejected++;
            beast::error_code ignored;
            s.close(ignored);
        } else {
            sh_->c.accepted++;
            std::make_shared<Session>(std::move(s), sh_, std::move(cfg), gen)->run();
        }
        accept();
    }

    net::io_context& ioc_;
    std::shared_ptr<Shared> sh_;
    ListenKey key_;
    net::strand<net::io_context::executor_type> strand_;
    tcp::acceptor acceptor_;
    net::steady_timer retry_;
    bool closed_ = false;
};

}  // namespace

struct Gate::Impl {
    net::io_context ioc;  // first: destroyed last
    std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
    std::shared_ptr<Shared> sh;
    std::vector<std::thread> threads;
    unsigned nthreads = 1;
    std::mutex lmu;  // listeners, started, stopped
    std::map<ListenKey, std::shared_ptr<Listener>> listeners;
    bool started = false, stopped = false;

    explicit Impl(unsigned n) : ioc(static_cast<int>(n)), sh(std::make_shared<Shared>(ioc)), nthreads(n) {}

    // Opens a listener for every route of cfg that has none yet, into
    // `opened`. Caller holds lmu. Throws (naming the endpoint) only when
    // `errors` is null; otherwise collects one message per failure.
    void open_missing(const GateConfig& cfg, std::map<ListenKey, std::shared_ptr<Listener>>& opened,
                      std::vector<std::string>* errors) {
        for (const auto& [key, routes] : cfg.routes) {
            if (listeners.count(key) || opened.count(key)) continue;
            auto l = std::make_shared<Listener>(ioc, sh, key);
            try {
                l->open();
            } catch (const std::exception& e) {
                std::string msg = "cannot listen on " + l->name() + ": " + e.what();
                if (!errors) throw std::runtime_error(msg);
                errors->push_back(msg);
                continue;
            }
            opened[key] = l;
        }
    }

    // Takes `opened` into the running set (accepting if started) and closes
    // the listeners cfg no longer has. Caller holds lmu.
    void adopt(const GateConfig& cfg, std::map<ListenKey, std::shared_ptr<Listener>>& opened) {
        for (auto& [key, l] : opened) {
            if (listeners.count(key)) continue;  // dropped with `opened`
            listeners[key] = l;
            if (started) l->start();
        }
        opened.clear();
        for (auto it = listeners.begin(); it != listeners.end();) {
            if (!cfg.routes.count(it->first)) {
                it->second->close();
                it = listeners.erase(it);
            } else {
                ++it;
            }
        }
    }

    // Starts the I/O threads and every listener. Caller holds lmu.
    void run() {
        started = true;
        for (auto& [k, l] : listeners) l->start();
        work.emplace(net::make_work_guard(ioc));
        for (unsigned i = 0; i < nthreads; ++i)
            threads.emplace_back([this] {
                for (;;) {
                    try {
                        ioc.run();
                        return;
                    } catch (const std::exception& e) {
                        spdlog::error("gate: unexpected exception in I/O thread: {}", e.what());
                    }
                }
            });
    }
};

struct Gate::Prepared::State {
    std::shared_ptr<Impl> owner;  // its io_context outlives the listeners
    std::shared_ptr<const GateConfig> config;
    std::map<ListenKey, std::shared_ptr<Listener>> opened;  // bound and listening, not accepting
};

Gate::Prepared::Prepared(std::unique_ptr<State> s) : s_(std::move(s)) {}

Gate::Prepared::~Prepared() {
    if (!s_) return;
    for (auto& [k, l] : s_->opened) l->close_now();  // never accepted: no strand work to wait for
    s_->opened.clear();
}

namespace {
// threads == 0: VW_GATE_THREADS (1-256) if set, else the hardware concurrency.
// Measured with tools/bench/gate.sh on a 2-vCPU box that also runs wrk and the
// upstream (2026-11-29, two runs each): 2 threads on the shared io_context
// gave 9.9-10.2 k req/s, p99 3.2-3.4 ms; 1 thread (concurrency hint 1, no
// cross-thread wakeups) 9.4-9.5 k req/s, p99 3.5-3.6 ms, and far less for
// requests needing a full RS256 verify (7.0-7.2 k against 9.1-9.5 k). So the
// default stays one thread per CPU.
unsigned default_threads() {
    if (const char* e = std::getenv("VW_GATE_THREADS")) {
        int n = std::atoi(e);
        if (n >= 1 && n <= 256) return static_cast<unsigned>(n);
        spdlog::warn("gate: ignoring VW_GATE_THREADS={} (expected 1-256)", e);
    }
    return std::max(1u, std::thread::hardware_concurrency());
}
}  // namespace

Gate::Gate(std::shared_ptr<const GateConfig> config, unsigned threads) {
    if (threads == 0) threads = default_threads();
    impl_ = std::make_shared<Impl>(threads);
    impl_->sh->cfg = std::move(config);
}

Gate::~Gate() { stop(); }

void Gate::start() {
    {
        std::lock_guard lock(impl_->lmu);
        if (impl_->started || impl_->stopped) return;
    }
    commit(prepare(config()));
}

namespace {

// The checks prepare() makes of what GateConfig::build loaded.
void check_tls(const GateConfig& cfg) {
    SSL_CTX* ctx = cfg.tls ? cfg.tls->native_handle() : nullptr;
    if (!ctx || !SSL_CTX_get0_certificate(ctx))
        throw std::runtime_error("gate.tls_cert " + cfg.tls_cert + ": no certificate loaded");
    if (SSL_CTX_check_private_key(ctx) != 1)
        throw std::runtime_error("gate.tls_key " + cfg.tls_key + " does not match gate.tls_cert " + cfg.tls_cert);
}

void check_audit_log(const std::string& path) {
    if (path.empty()) return;
    int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) throw std::runtime_error("cannot open gate.audit_log " + path + ": " + std::strerror(errno));
    ::close(fd);
}

}  // namespace

std::unique_ptr<Gate::Prepared> Gate::prepare(std::shared_ptr<const GateConfig> config) {
    if (!config) throw std::runtime_error("gate: no configuration");
    check_tls(*config);
    check_audit_log(config->audit_log);
    auto st = std::make_unique<Prepared::State>();
    st->owner = impl_;
    st->config = config;
    auto& im = *impl_;
    std::lock_guard lock(im.lmu);
    if (im.stopped) throw std::runtime_error("gate: stopped");
    im.open_missing(*config, st->opened, nullptr);  // on a throw, st closes what it opened
    return std::unique_ptr<Prepared>(new Prepared(std::move(st)));
}

void Gate::commit(std::unique_ptr<Prepared> prepared) noexcept {
    if (!prepared || !prepared->s_ || prepared->s_->owner != impl_) return;
    auto& st = *prepared->s_;
    auto& im = *impl_;
    try {
        im.sh->set_config(st.config);
        if (!im.sh->audit.open(st.config->audit_log))
            spdlog::error("gate: cannot open audit log {}", st.config->audit_log);
        std::lock_guard lock(im.lmu);
        if (im.stopped) return;
        im.adopt(*st.config, st.opened);
        if (!im.started) im.run();
    } catch (const std::exception& e) {  // std::thread could not start, out of memory
        spdlog::error("gate: commit: {}", e.what());
    }
}

void Gate::stop() {
    if (!impl_) return;
    auto& im = *impl_;
    std::lock_guard lock(im.lmu);
    if (im.stopped) return;
    im.stopped = true;
    im.work.reset();
    im.ioc.stop();
    for (auto& t : im.threads) t.join();
    im.threads.clear();
    for (auto& [k, l] : im.listeners) l->close_now();
    im.listeners.clear();
    im.sh->pool->clear();
    im.sh->audit.flush();
}

void Gate::flush_audit() { impl_->sh->audit.flush(); }

std::vector<std::string> Gate::reconfigure(std::shared_ptr<const GateConfig> config) {
    auto& im = *impl_;
    im.sh->set_config(config);
    if (!im.sh->audit.open(config->audit_log))
        spdlog::error("gate: cannot open audit log {}", config->audit_log);
    std::lock_guard lock(im.lmu);
    if (im.stopped) return {};
    std::map<ListenKey, std::shared_ptr<Listener>> opened;
    std::vector<std::string> errors;
    im.open_missing(*config, opened, &errors);
    im.adopt(*config, opened);
    return errors;
}

std::shared_ptr<const GateConfig> Gate::config() const { return impl_->sh->config(); }

GateStats Gate::stats() const {
    auto& c = impl_->sh->c;
    GateStats s;
    s.connections_accepted = c.accepted;
    s.connections_rejected = c.rejected;
    s.connections_active = c.active;
    s.requests = c.requests;
    s.allowed = c.allowed;
    s.denied = c.denied;
    s.upstream_errors = c.upstream_errors;
    s.protocol_errors = c.protocol_errors;
    return s;
}

std::vector<std::string> Gate::listening() const {
    std::lock_guard lock(impl_->lmu);
    std::vector<std::string> out;
    for (auto& [k, l] : impl_->listeners) out.push_back(l->name());
    return out;
}

}  // namespace vaultwall::gate
