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
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include "gate/connection.hpp"
#include "gate/gate_state.hpp"
#include "gate/tls_stream.hpp"

namespace vaultwall::gate {

namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;
using Acceptor = net::basic_socket_acceptor<tcp, Executor>;

namespace {

// One endpoint on one loop: a SO_REUSEPORT socket of its own, so the kernel
// spreads new connections over the loops and no accept hops threads.
class Listener : public std::enable_shared_from_this<Listener> {
public:
    Listener(Loop& loop, std::shared_ptr<GateState> st, ListenKey key)
        : loop_(loop), st_(std::move(st)), key_(key), acceptor_(loop.ioc.get_executor()),
          retry_(loop.ioc.get_executor()) {}

    void open() {
        tcp::endpoint ep = key_.addr.is_v6()
                               ? tcp::endpoint(net::ip::address_v6(key_.addr.v6()), key_.port)
                               : tcp::endpoint(net::ip::address_v4(key_.addr.v4()), key_.port);
        acceptor_.open(ep.protocol());
        acceptor_.set_option(net::socket_base::reuse_address(true));
        // An IPv6 listener takes IPv6 only: IPv4 has listeners of its own.
        if (key_.addr.is_v6()) acceptor_.set_option(net::ip::v6_only(true));
        int one = 1;
        // Bind before the address is configured (the vault's endpoint may
        // come up after the daemon); IP_FREEBIND covers IPv6 sockets too.
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
    std::string name() const { return key_.str(); }

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
            Connection::open(loop_, std::move(s), st_, std::move(cfg), gen);
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
