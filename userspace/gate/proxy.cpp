#include "gate/proxy.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <spdlog/spdlog.h>

#include "gate/audit.hpp"
#include "gate/decision.hpp"
#include "gate/http_policy.hpp"
#include "gate/tls_stream.hpp"
#include "gate/upstream.hpp"
#include "rules/ipv4.hpp"

namespace vaultwall::gate {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;
using Acceptor = net::basic_socket_acceptor<tcp, Executor>;

namespace {

struct Counters {
    std::atomic<std::uint64_t> accepted{0}, rejected{0}, active{0}, requests{0}, allowed{0}, denied{0},
        upstream_errors{0}, protocol_errors{0};
};

// What every I/O thread and connection of one Gate shares: the current
// config (swapped whole on reload), the counters, the audit log.
class GateState {
public:
    std::shared_ptr<const GateConfig> config() {
        std::lock_guard lock(mu_);
        return cfg_;
    }
    void set_config(std::shared_ptr<const GateConfig> c) {
        std::lock_guard lock(mu_);
        cfg_ = std::move(c);
        generation_.fetch_add(1, std::memory_order_release);
    }
    // Refreshes `c` (and `gen`) when a newer config was set; true if it did.
    // Connections call it per request: one atomic load unless the config changed.
    bool refresh(std::shared_ptr<const GateConfig>& c, std::uint64_t& gen) {
        if (generation_.load(std::memory_order_acquire) == gen && c) return false;
        std::lock_guard lock(mu_);
        c = cfg_;
        gen = generation_.load(std::memory_order_relaxed);
        return true;
    }
    AuditLog audit;
    Counters count;

private:
    std::mutex mu_;
    std::shared_ptr<const GateConfig> cfg_;
    std::atomic<std::uint64_t> generation_{0};  // bumped by set_config, under mu_
};

class Connection;

// One I/O thread: its io_context, its upstream pool, its listeners' accepted
// connections, and their deadlines. Nothing here is touched from another
// thread except through post().
struct Loop {
    // Deadlines are checked by one sweep per loop (every kSweep) over an
    // intrusive list, not a timer per connection: no timer object or timer
    // queue operation per request phase.
    static constexpr std::chrono::milliseconds kSweep{100};
    Connection* head = nullptr;  // before ioc: connections unlink themselves while ioc is destroyed

    net::io_context ioc{1};
    std::shared_ptr<UpstreamPool> pool = std::make_shared<UpstreamPool>(ioc);
    net::steady_timer sweep{ioc};
    std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
    std::thread thread;

    void start_sweeping();
};

using Steady = std::chrono::steady_clock;

// Read-buffer capacity reserved when a request starts arriving; an idle
// keep-alive connection holds no read buffer at all.
constexpr std::size_t kRequestBuffer = 4 * 1024;

// One client connection: TLS, the HTTP framing and size policy
// (http_policy.hpp), the decision (decision.hpp), forwarding (upstream.hpp).
class Connection : public std::enable_shared_from_this<Connection> {
public:
    Connection(Loop& loop, Socket socket, std::shared_ptr<GateState> st, std::shared_ptr<const GateConfig> cfg,
               std::uint64_t gen)
        : loop_(loop), st_(std::move(st)), cfg_(std::move(cfg)), gen_(gen),
          tls_(std::move(socket), cfg_->tls->native_handle()) {
        st_->count.active++;
        next_ = loop_.head;
        if (next_) next_->prev_ = this;
        loop_.head = this;
    }
    ~Connection() {
        if (prev_) prev_->next_ = next_;
        else loop_.head = next_;
        if (next_) next_->prev_ = prev_;
        st_->count.active--;
    }

    void start() {
        beast::error_code ec;
        auto local = tls_.socket().local_endpoint(ec);
        auto remote = tls_.socket().remote_endpoint(ec);
        if (ec || !local.address().is_v4() || !remote.address().is_v4()) return;
        local_ = {local.address().to_v4().to_uint(), local.port()};
        client_ = remote.address().to_v4().to_uint();
        client_port_ = remote.port();
        client_str_ = rules::format_ipv4(client_);
        network_info_ = "addr=" + client_str_ + ";act_addr_fam=InterNetwork;";
        if (cfg_->admission) record_ = cfg_->admission->lookup(client_, client_port_, local_.addr, local_.port);
        tls_.socket().set_option(tcp::no_delay(true), ec);
        expire_in(cfg_->limits.handshake_timeout);
        tls_.async_handshake([self = shared_from_this()](beast::error_code ec) {
            if (ec) return self->close();  // TLS failure: nothing to answer in HTTP
            self->read_request();
        });
    }

    // The sweep: a connection past its deadline is closed; what waits on its
    // socket completes with operation_aborted.
    static void sweep(Loop& loop, Steady::time_point now) {
        for (Connection* c = loop.head; c; c = c->next_)
            if (c->deadline_ <= now) {
                c->deadline_ = Steady::time_point::max();
                c->tls_.close();
            }
    }
    Connection* next() const { return next_; }

private:
    void expire_in(std::chrono::milliseconds d) { deadline_ = Steady::now() + d; }

    // The current config; the cached route/admission go with the old one.
    void refresh_config() {
        if (st_->refresh(cfg_, gen_)) routed_ = false;
    }

    void read_request() {
        refresh_config();
        parser_.emplace();
        parser_->header_limit(static_cast<std::uint32_t>(cfg_->limits.header_limit));
        parser_->body_limit(cfg_->limits.body_limit);
        if (first_ || buffer_.size() > 0) return read_header();
        // Keep-alive: wait up to idle_timeout, holding no buffer, for the
        // next request's first byte; its header deadline starts there.
        expire_in(cfg_->limits.idle_timeout);
        tls_.async_wait_data([self = shared_from_this()](beast::error_code ec) {
            if (ec) return self->on_read_error(ec);
            self->read_header();
        });
    }

    // The request line and headers, within read_timeout.
    void read_header() {
        expire_in(cfg_->limits.read_timeout);
        if (buffer_.capacity() < kRequestBuffer) buffer_.reserve(kRequestBuffer);
        http::async_read_header(tls_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
            self->on_header(ec);
        });
    }

    void on_read_error(beast::error_code ec) {
        if (auto r = refusal_for(ec, parser_ && parser_->got_some())) return refuse(*r);
        close();
    }

    void on_header(beast::error_code ec) {
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

    void read_body() {
        expire_in(cfg_->limits.read_timeout);
        http::async_read(tls_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
            if (ec) return self->on_read_error(ec);
            if (auto r = check_trailers(self->parser_->get(), self->head_fields_)) return self->refuse(*r);
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

    // One audit line for this request. `d` gives operation, caller and
    // reason (its allow flag the decision); `status` is what was answered.
    void audit(const Decision& d, std::string_view reason, unsigned status) {
        AuditRecord a;
        a.client = client_str_;
        a.vni = record_ ? record_->vni : 0;
        if (vault_ && routed_) {
            a.vault = vault_->name;
            a.vni = admission_.vni;
        }
        a.operation = d.operation;
        a.caller = d.caller;
        a.decision = !d.allow ? "deny" : d.audit ? "audit" : "allow";
        a.reason = reason;
        a.status = status;
        a.method = std::string_view(method_.data(), method_.size());
        a.path = std::string_view(path_.data(), path_.size());
        st_->audit.write(a);
    }

    // Remembers what the audit line names while the request itself goes on
    // (to the upstream, or away).
    void note_request_line(const http::request_header<>& h) {
        auto m = h.method_string();
        auto t = h.target();
        method_.assign(m.data(), m.size());
        path_.assign(t.data(), std::min(t.size(), t.find('?')));
    }

    void refuse(const Refusal& r) {
        st_->count.protocol_errors++;
        if (parser_) note_request_line(parser_->get());
        vault();
        Decision none;
        audit(none, r.reason, r.status);
        answer_error(r.status, error_body(r.code, r.message), {}, true);
    }

    void on_request() {
        st_->count.requests++;
        refresh_config();
        req_ = parser_->release();
        parser_.reset();
        note_request_line(req_);
        keep_alive_ = req_.keep_alive();

        const rules::Vault* vault = this->vault();
        if (!vault) {
            return answer_error(503, error_body("ServiceUnavailable", "No vault is served on this endpoint."), {},
                                true);
        }
        auto sv = [](beast::string_view s) { return std::string_view(s.data(), s.size()); };
        RequestFacts facts;
        facts.method = sv(req_.method_string());
        facts.target = sv(req_.target());
        if (auto it = req_.find(http::field::authorization); it != req_.end()) facts.authorization = sv(it->value());
        facts.client = client_;
        DecisionContext ctx{*vault, cfg_->identity, cfg_->catalog, *cfg_->jwt};
        Decision d = decide(ctx, facts, admission_);
        if (!d.allow) {
            st_->count.denied++;
            audit(d, d.reason, d.status);
            req_ = {};
            return answer_error(d.status, d.body(), d.www_authenticate, !keep_alive_);
        }
        st_->count.allowed++;
        decision_ = std::move(d);
        Request up = std::move(req_);
        req_ = {};
        const Upstream& upstream = cfg_->upstreams[route_->vault];
        to_upstream(up, decision_.target, client_str_, upstream.key());
        deadline_ = Steady::time_point::max();  // the upstream's own timeouts run now
        // The pool is this thread's: the callback runs here, no hop.
        loop_.pool->forward(upstream, std::move(up), cfg_->limits,
                            [self = shared_from_this()](UpstreamFailure f, Response r) {
                                self->on_upstream(f, std::move(r));
                            });
    }

    void on_upstream(UpstreamFailure f, Response r) {
        if (f != UpstreamFailure::none) {
            st_->count.upstream_errors++;
            bool timeout = f == UpstreamFailure::timeout;
            unsigned status = timeout ? 504 : 502;
            audit(decision_, decision_.reason + (timeout ? ";upstream_timeout" : ";upstream_unavailable"), status);
            return answer_error(status,
                                error_body(timeout ? "GatewayTimeout" : "BadGateway",
                                           timeout ? "The vault did not answer in time." : "The vault is unavailable."),
                                {}, !keep_alive_);
        }
        audit(decision_, decision_.reason, r.result_int());
        strip_hop_by_hop(r);
        r.version(11);
        r.set("x-ms-keyvault-network-info", network_info_);
        r.keep_alive(keep_alive_);
        serialize(r, out_);
        write_out(!keep_alive_);
    }

    void answer_error(unsigned status, const std::string& body, std::string_view www_authenticate, bool close) {
        serialize_error(status, body, network_info_, www_authenticate, close, out_);
        write_out(close);
    }

    // Writes out_ (one buffer, coalesced into as few records as fit), then
    // reads the next request or closes.
    void write_out(bool close_after) {
        expire_in(cfg_->limits.write_timeout);
        net::async_write(tls_, net::buffer(out_), [self = shared_from_this(), close_after](beast::error_code ec,
                                                                                          std::size_t) {
            if (ec || close_after) return self->close();
            // Idle until the next request: hold no message memory meanwhile.
            self->decision_ = {};
            std::string().swap(self->out_);
            if (self->buffer_.size() == 0) self->buffer_.shrink_to_fit();
            self->first_ = false;
            self->read_request();
        });
    }

    void close() {
        if (closing_) return;
        closing_ = true;
        expire_in(std::chrono::milliseconds(2000));
        tls_.async_shutdown([self = shared_from_this()](beast::error_code) {
            beast::error_code ignored;
            self->tls_.socket().shutdown(tcp::socket::shutdown_both, ignored);
            self->tls_.close();
        });
    }

    Loop& loop_;
    Connection* prev_ = nullptr;
    Connection* next_ = nullptr;
    Steady::time_point deadline_ = Steady::time_point::max();
    std::shared_ptr<GateState> st_;
    std::shared_ptr<const GateConfig> cfg_;
    std::uint64_t gen_ = 0;  // GateState generation of cfg_
    TlsStream tls_;
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<http::string_body>> parser_;
    std::size_t head_fields_ = 0;  // fields in the head: more after the body are trailers
    Request req_;
    std::string out_;  // the response on the wire, serialised once
    Decision decision_;
    std::string method_, path_;  // of the current request, for its audit line
    // vault(): valid while routed_ (reset with every new cfg_).
    bool routed_ = false;
    const VaultRoute* route_ = nullptr;
    const rules::Vault* vault_ = nullptr;
    Admission admission_;
    ListenKey local_;
    std::uint32_t client_ = 0;
    std::string client_str_;    // "192.0.2.9"
    std::string network_info_;  // x-ms-keyvault-network-info, per connection
    std::uint16_t client_port_ = 0;
    std::optional<vw_admission> record_;
    bool first_ = true;
    bool keep_alive_ = true;
    bool closing_ = false;
};

void Loop::start_sweeping() {
    sweep.expires_after(kSweep);
    sweep.async_wait([this](beast::error_code ec) {
        if (ec) return;
        Connection::sweep(*this, Steady::now());
        start_sweeping();
    });
}

// One endpoint on one loop: a SO_REUSEPORT socket of its own, so the kernel
// spreads new connections over the loops and no accept hops threads.
class Listener : public std::enable_shared_from_this<Listener> {
public:
    Listener(Loop& loop, std::shared_ptr<GateState> st, ListenKey key)
        : loop_(loop), st_(std::move(st)), key_(key), acceptor_(loop.ioc.get_executor()),
          retry_(loop.ioc.get_executor()) {}

    void open() {
        tcp::endpoint ep(net::ip::address_v4(key_.addr), key_.port);
        acceptor_.open(ep.protocol());
        acceptor_.set_option(net::socket_base::reuse_address(true));
        int one = 1;
        ::setsockopt(acceptor_.native_handle(), IPPROTO_IP, IP_FREEBIND, &one, sizeof one);
        if (::setsockopt(acceptor_.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
            throw std::runtime_error(std::string("SO_REUSEPORT: ") + std::strerror(errno));
        acceptor_.bind(ep);
        acceptor_.listen(net::socket_base::max_listen_connections);
    }

    void start() {
        net::post(loop_.ioc, [self = shared_from_this()] { self->accept(); });
    }
    // From any thread: stops accepting on the loop's thread.
    void close() {
        net::post(loop_.ioc, [self = shared_from_this()] { self->close_now(); });
    }
    // On the loop's thread, or when it does not run.
    void close_now() {
        beast::error_code ignored;
        closed_ = true;
        retry_.cancel();
        acceptor_.close(ignored);
    }
    std::string name() const { return rules::format_ipv4(key_.addr) + ":" + std::to_string(key_.port); }

private:
    void accept() {
        if (closed_) return;
        acceptor_.async_accept(loop_.ioc.get_executor(), [self = shared_from_this()](beast::error_code ec, Socket s) {
            self->on_accept(ec, std::move(s));
        });
    }

    void on_accept(beast::error_code ec, Socket s) {
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
        st_->refresh(cfg, gen);
        if (st_->count.active.load() >= cfg->limits.max_connections) {
            st_->count.rejected++;
            beast::error_code ignored;
            s.close(ignored);
        } else {
            st_->count.accepted++;
            try {
                std::make_shared<Connection>(loop_, std::move(s), st_, std::move(cfg), gen)->start();
            } catch (const std::bad_alloc&) {
                spdlog::warn("gate: out of memory for a new connection");
            }
        }
        accept();
    }

    Loop& loop_;
    std::shared_ptr<GateState> st_;
    ListenKey key_;
    Acceptor acceptor_;
    net::steady_timer retry_;
    bool closed_ = false;
};

// An endpoint: one listener per loop.
using Listeners = std::vector<std::shared_ptr<Listener>>;

}  // namespace

struct Gate::Impl {
    std::shared_ptr<GateState> st = std::make_shared<GateState>();
    std::vector<std::unique_ptr<Loop>> loops;
    std::mutex lmu;  // listeners, started, stopped
    std::map<ListenKey, Listeners> listeners;
    bool started = false, stopped = false;

    explicit Impl(unsigned n) {
        for (unsigned i = 0; i < n; ++i) loops.push_back(std::make_unique<Loop>());
    }
    ~Impl() {
        listeners.clear();
        loops.clear();  // each io_context destroys what is still queued on it
    }

    // Opens the listeners of every route of cfg that has none yet, into
    // `opened`. Caller holds lmu. Throws (naming the endpoint) only when
    // `errors` is null; otherwise collects one message per failure.
    void open_missing(const GateConfig& cfg, std::map<ListenKey, Listeners>& opened, std::vector<std::string>* errors) {
        for (const auto& [key, routes] : cfg.routes) {
            if (listeners.count(key) || opened.count(key)) continue;
            Listeners ls;
            try {
                for (auto& loop : loops) {
                    ls.push_back(std::make_shared<Listener>(*loop, st, key));
                    ls.back()->open();
                }
            } catch (const std::exception& e) {
                std::string msg = "cannot listen on " + ls.back()->name() + ": " + e.what();
                for (auto& l : ls) l->close_now();
                if (!errors) throw std::runtime_error(msg);
                errors->push_back(msg);
                continue;
            }
            opened[key] = std::move(ls);
        }
    }

    // Takes `opened` into the running set (accepting if started) and closes
    // the listeners cfg no longer has. Caller holds lmu.
    void adopt(const GateConfig& cfg, std::map<ListenKey, Listeners>& opened) {
        for (auto& [key, ls] : opened) {
            if (listeners.count(key)) {
                for (auto& l : ls) l->close_now();
                continue;
            }
            if (started)
                for (auto& l : ls) l->start();
            listeners[key] = std::move(ls);
        }
        opened.clear();
        for (auto it = listeners.begin(); it != listeners.end();) {
            if (!cfg.routes.count(it->first)) {
                for (auto& l : it->second) l->close();
                it = listeners.erase(it);
            } else {
                ++it;
            }
        }
    }

    // Starts a thread per loop and every listener. Caller holds lmu.
    void run() {
        started = true;
        for (auto& [k, ls] : listeners)
            for (auto& l : ls) l->start();
        for (auto& loop : loops) {
            Loop* lp = loop.get();
            lp->work.emplace(net::make_work_guard(lp->ioc));
            lp->start_sweeping();
            lp->thread = std::thread([lp] {
                for (;;) {
                    try {
                        lp->ioc.run();
                        return;
                    } catch (const std::exception& e) {
                        spdlog::error("gate: unexpected exception in I/O thread: {}", e.what());
                    }
                }
            });
        }
    }
};

struct Gate::Prepared::State {
    std::shared_ptr<Impl> owner;  // its loops outlive the listeners
    std::shared_ptr<const GateConfig> config;
    std::map<ListenKey, Listeners> opened;  // bound and listening, not accepting
};

Gate::Prepared::Prepared(std::unique_ptr<State> s) : s_(std::move(s)) {}

Gate::Prepared::~Prepared() {
    if (!s_) return;
    for (auto& [k, ls] : s_->opened)
        for (auto& l : ls) l->close_now();  // never accepted: nothing runs on them
    s_->opened.clear();
}

namespace {
// threads == 0: VW_GATE_THREADS (1-256) if set, else the hardware concurrency
// (one loop per CPU, as nginx's worker_processes auto).
unsigned default_threads() {
    if (const char* e = std::getenv("VW_GATE_THREADS")) {
        int n = std::atoi(e);
        if (n >= 1 && n <= 256) return static_cast<unsigned>(n);
        spdlog::warn("gate: ignoring VW_GATE_THREADS={} (expected 1-256)", e);
    }
    return std::max(1u, std::thread::hardware_concurrency());
}

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

Gate::Gate(std::shared_ptr<const GateConfig> config, unsigned threads) {
    if (threads == 0) threads = config && config->io_threads ? config->io_threads : default_threads();
    impl_ = std::make_shared<Impl>(threads);
    if (config) impl_->st->set_config(std::move(config));
}

Gate::~Gate() { stop(); }

void Gate::start() {
    {
        std::lock_guard lock(impl_->lmu);
        if (impl_->started || impl_->stopped) return;
    }
    commit(prepare(config()));
}

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
    auto& p = *prepared->s_;
    auto& im = *impl_;
    try {
        im.st->set_config(p.config);
        if (!im.st->audit.open(p.config->audit_log))
            spdlog::error("gate: cannot open audit log {}", p.config->audit_log);
        std::lock_guard lock(im.lmu);
        if (im.stopped) return;
        im.adopt(*p.config, p.opened);
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
    for (auto& loop : im.loops) {
        loop->work.reset();
        loop->ioc.stop();
    }
    for (auto& loop : im.loops)
        if (loop->thread.joinable()) loop->thread.join();
    for (auto& [k, ls] : im.listeners)
        for (auto& l : ls) l->close_now();
    im.listeners.clear();
    for (auto& loop : im.loops) loop->pool->clear();
    im.st->audit.flush();
}

void Gate::flush_audit() { impl_->st->audit.flush(); }

std::vector<std::string> Gate::reconfigure(std::shared_ptr<const GateConfig> config) {
    auto& im = *impl_;
    im.st->set_config(config);
    if (!im.st->audit.open(config->audit_log))
        spdlog::error("gate: cannot open audit log {}", config->audit_log);
    std::lock_guard lock(im.lmu);
    if (im.stopped) return {};
    std::map<ListenKey, Listeners> opened;
    std::vector<std::string> errors;
    im.open_missing(*config, opened, &errors);
    im.adopt(*config, opened);
    return errors;
}

std::shared_ptr<const GateConfig> Gate::config() const { return impl_->st->config(); }

GateStats Gate::stats() const {
    auto& c = impl_->st->count;
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
    for (auto& [k, ls] : impl_->listeners)
        if (!ls.empty()) out.push_back(ls.front()->name());
    return out;
}

}  // namespace vaultwall::gate
