#include "gate/jwks_remote.hpp"

#include <utility>  // before Boost 1.74 asio (awaitable.hpp needs std::exchange)
#include <condition_variable>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <spdlog/spdlog.h>

namespace vaultwall::gate {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;
using SteadyClock = std::chrono::steady_clock;

std::optional<HttpsUrl> parse_https_url(const std::string& url, std::string* why) {
    auto bad = [&](const std::string& w) -> std::optional<HttpsUrl> {
        if (why) *why = "jwks_url '" + url + "': " + w;
        return std::nullopt;
    };
    const std::string scheme = "https://";
    if (url.size() < scheme.size() || !beast::iequals(url.substr(0, scheme.size()), scheme))
        return bad("must be an https:// URL");
    std::string rest = url.substr(scheme.size());
    if (auto hash = rest.find('#'); hash != std::string::npos) rest.resize(hash);
    auto slash = rest.find_first_of("/?");
    std::string authority = rest.substr(0, slash);
    HttpsUrl u;
    u.target = slash == std::string::npos ? "/" : rest.substr(slash);
    if (!u.target.empty() && u.target[0] == '?') u.target = "/" + u.target;
    if (authority.find('@') != std::string::npos) return bad("user information is not allowed");
    std::string port;
    if (!authority.empty() && authority[0] == '[') {
        auto close = authority.find(']');
        if (close == std::string::npos) return bad("unterminated IPv6 literal");
        u.host = authority.substr(1, close - 1);
        std::string after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after[0] != ':') return bad("bad authority");
            port = after.substr(1);
        }
    } else {
        auto colon = authority.rfind(':');
        u.host = authority.substr(0, colon);
        if (colon != std::string::npos) port = authority.substr(colon + 1);
    }
    if (u.host.empty()) return bad("no host");
    if (u.host.find_first_of(" \t\r\n") != std::string::npos ||
        u.target.find_first_of(" \t\r\n") != std::string::npos)
        return bad("whitespace in URL");
    if (port.empty()) {
        u.port = "443";
    } else {
        if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos || std::stoi(port) == 0 ||
            std::stoi(port) > 65535)
            return bad("bad port");
        u.port = port;
    }
    boost::system::error_code ec;
    net::ip::make_address(u.host, ec);
    u.host_is_ip = !ec;
    return u;
}

namespace {

// The fetcher thread: one io_context for every RemoteJwks of the process.
struct Service {
    net::io_context ioc{1};
    std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
    std::thread th;
    Service() {
        work.emplace(net::make_work_guard(ioc));
        th = std::thread([this] {
            for (;;) {
                try {
                    ioc.run();
                    return;
                } catch (const std::exception& e) {
                    spdlog::error("gate: JWKS fetcher: unexpected exception: {}", e.what());
                }
            }
        });
    }
    ~Service() {
        work.reset();
        ioc.stop();
        if (th.joinable()) th.join();
    }
};

Service& service() {
    OPENSSL_init_ssl(0, nullptr);  // before the static: OpenSSL's atexit cleanup then runs after ~Service
    static Service s;
    return s;
}

std::mutex registry_mu;
std::map<std::string, std::weak_ptr<RemoteJwks>>& registry() {
    static std::map<std::string, std::weak_ptr<RemoteJwks>> r;
    return r;
}

}  // namespace

struct RemoteJwks::Impl : std::enable_shared_from_this<RemoteJwks::Impl> {
    std::string url;
    HttpsUrl where;
    JwksFetchOptions opts;
    std::shared_ptr<ssl::context> ctx;

    mutable std::mutex mu;
    mutable std::condition_variable cv;
    std::shared_ptr<const KeySet> keys;
    bool in_flight = false;
    bool started_once = false;
    SteadyClock::time_point last_start{};
    std::uint64_t timer_gen = 0;
    RemoteJwksStats st;

    // Caller holds mu and has checked !in_flight.
    void start_locked();
    void finish(std::optional<KeySet> ks, const std::string& error);
    void schedule(std::chrono::milliseconds after);
};

namespace {

class Fetch : public std::enable_shared_from_this<Fetch> {
public:
    Fetch(std::shared_ptr<RemoteJwks::Impl> owner, net::io_context& ioc)
        : owner_(std::move(owner)), resolver_(ioc), stream_(ioc, *owner_->ctx), deadline_(ioc) {}

    void start() {
        const auto& w = owner_->where;
        SSL* s = stream_.native_handle();
        X509_VERIFY_PARAM* param = SSL_get0_param(s);
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        bool ok = w.host_is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, w.host.c_str()) == 1
                               : X509_VERIFY_PARAM_set1_host(param, w.host.c_str(), 0) == 1 &&
                                     SSL_set_tlsext_host_name(s, w.host.c_str()) == 1;
        if (!ok) return fail("cannot set up certificate verification for host " + w.host);
        SSL_set_verify(s, SSL_VERIFY_PEER, nullptr);

        deadline_.expires_after(owner_->opts.timeout);
        deadline_.async_wait([self = shared_from_this()](beast::error_code ec) {
            if (!ec) self->fail("timed out after " + std::to_string(self->owner_->opts.timeout.count()) + " ms");
        });
        resolver_.async_resolve(w.host, w.port,
                                [self = shared_from_this()](beast::error_code ec, tcp::resolver::results_type r) {
                                    if (self->done_) return;
                                    if (ec) return self->fail("cannot resolve " + self->owner_->where.host + ": " + ec.message());
                                    self->connect(r);
                                });
    }

private:
    void connect(const tcp::resolver::results_type& r) {
        beast::get_lowest_layer(stream_).async_connect(
            r, [self = shared_from_this()](beast::error_code ec, const tcp::endpoint&) {
                if (self->done_) return;
                if (ec) return self->fail("cannot connect: " + ec.message());
                self->stream_.async_handshake(ssl::stream_base::client,
                                              [self](beast::error_code ec) { self->on_handshake(ec); });
            });
    }

    void on_handshake(beast::error_code ec) {
        if (done_) return;
        if (ec) {
            long vr = SSL_get_verify_result(stream_.native_handle());
            std::string why = vr != X509_V_OK ? std::string("certificate verification failed: ") +
                                                    X509_verify_cert_error_string(vr)
                                              : ec.message();
            return fail("TLS handshake failed: " + why);
        }
        req_.method(http::verb::get);
        req_.target(owner_->where.target);
        req_.version(11);
        bool v6 = owner_->where.host.find(':') != std::string::npos;
        std::string host = v6 ? "[" + owner_->where.host + "]" : owner_->where.host;
        if (owner_->where.port != "443") host += ":" + owner_->where.port;
        req_.set(http::field::host, host);
        req_.set(http::field::user_agent, "vaultwall-gate");
        req_.set(http::field::accept, "application/json");
        req_.set(http::field::connection, "close");
        http::async_write(stream_, req_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
            if (self->done_) return;
            if (ec) return self->fail("cannot send request: " + ec.message());
            self->parser_.header_limit(16 * 1024);
            self->parser_.body_limit(self->owner_->opts.max_bytes);
            http::async_read(self->stream_, self->buf_, self->parser_,
                             [self](beast::error_code ec, std::size_t) { self->on_read(ec); });
        });
    }

    void on_read(beast::error_code ec) {
        if (done_) return;
        if (ec == http::error::body_limit)
            return fail("response larger than " + std::to_string(owner_->opts.max_bytes) + " bytes");
        if (ec) return fail("cannot read response: " + ec.message());
        auto& res = parser_.get();
        if (res.result() != http::status::ok)
            return fail("server answered " + std::to_string(res.result_int()) + " (expected 200)");
        try {
            auto ks = KeySet::parse(res.body());
            finish(std::move(ks), "");
        } catch (const JwksError& e) {
            fail(e.what());
        }
    }

    void fail(const std::string& why) { finish(std::nullopt, why); }

    void finish(std::optional<KeySet> ks, const std::string& error) {
        if (done_) return;
        done_ = true;
        beast::error_code ignored;
        deadline_.cancel();
        resolver_.cancel();
        beast::get_lowest_layer(stream_).socket().close(ignored);
        owner_->finish(std::move(ks), error);
    }

    std::shared_ptr<RemoteJwks::Impl> owner_;
    tcp::resolver resolver_;
    beast::ssl_stream<beast::tcp_stream> stream_;
    net::steady_timer deadline_;
    beast::flat_buffer buf_;
    http::request<http::empty_body> req_;
    http::response_parser<http::string_body> parser_;
    bool done_ = false;
};

}  // namespace

void RemoteJwks::Impl::start_locked() {
    in_flight = true;
    started_once = true;
    last_start = SteadyClock::now();
    st.fetches_started++;
    auto self = shared_from_this();
    net::post(service().ioc, [self] { std::make_shared<Fetch>(self, service().ioc)->start(); });
}

void RemoteJwks::Impl::finish(std::optional<KeySet> ks, const std::string& error) {
    bool ok = ks.has_value();
    std::size_t n = ok ? ks->size() : 0;
    {
        std::lock_guard lock(mu);
        in_flight = false;
        if (ok) {
            keys = std::make_shared<const KeySet>(std::move(*ks));
            st.fetches_ok++;
            st.last_error.clear();
        } else {
            st.fetches_failed++;
            st.last_error = error;
        }
    }
    cv.notify_all();
    if (ok)
        spdlog::info("gate: JWKS {} loaded ({} keys)", url, n);
    else
        spdlog::warn("gate: JWKS {}: {} (keeping the previous keys; retry in {} ms)", url, error,
                     opts.min_refresh.count());
    schedule(ok ? opts.refresh_interval : opts.min_refresh);
}

void RemoteJwks::Impl::schedule(std::chrono::milliseconds after) {
    std::uint64_t gen;
    {
        std::lock_guard lock(mu);
        gen = ++timer_gen;
    }
    auto timer = std::make_shared<net::steady_timer>(service().ioc, after);
    std::weak_ptr<Impl> weak = weak_from_this();
    timer->async_wait([weak, timer, gen](beast::error_code ec) {
        if (ec) return;
        auto self = weak.lock();
        if (!self) return;
        std::lock_guard lock(self->mu);
        if (self->timer_gen != gen || self->in_flight) return;
        self->start_locked();
    });
}

RemoteJwks::RemoteJwks(std::string url, HttpsUrl parsed, JwksFetchOptions opts)
    : url_(std::move(url)), impl_(std::make_shared<Impl>()) {
    impl_->url = url_;
    impl_->where = std::move(parsed);
    impl_->opts = std::move(opts);
}

RemoteJwks::~RemoteJwks() {
    // A fetch in flight finishes on the fetcher thread; the periodic timer
    // finds the Impl gone (or its generation stale) and does nothing.
    std::lock_guard lock(impl_->mu);
    impl_->timer_gen++;
}

std::shared_ptr<RemoteJwks> RemoteJwks::get(const std::string& url, const JwksFetchOptions& opts) {
    std::string why;
    auto parsed = parse_https_url(url, &why);
    if (!parsed) throw JwksError(why);
    std::string key = url + "\n" + opts.ca_file + "\n" + std::to_string(opts.min_refresh.count()) + "\n" +
                      std::to_string(opts.refresh_interval.count()) + "\n" + std::to_string(opts.timeout.count()) +
                      "\n" + std::to_string(opts.max_bytes);
    std::lock_guard lock(registry_mu);
    auto& reg = registry();
    if (auto it = reg.find(key); it != reg.end())
        if (auto existing = it->second.lock()) return existing;
    for (auto it = reg.begin(); it != reg.end();) it = it->second.expired() ? reg.erase(it) : std::next(it);

    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
    ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                     ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    boost::system::error_code ec;
    if (opts.ca_file.empty()) {
        ctx->set_default_verify_paths(ec);
        if (ec) throw JwksError("jwks_url " + url + ": cannot load the system CA store: " + ec.message());
    } else {
        if (!std::ifstream(opts.ca_file)) throw JwksError("JWKS CA file " + opts.ca_file + " cannot be read");
        ctx->load_verify_file(opts.ca_file, ec);
        if (ec) throw JwksError("JWKS CA file " + opts.ca_file + ": " + ec.message());
    }
    ctx->set_verify_mode(ssl::verify_peer);

    std::shared_ptr<RemoteJwks> r(new RemoteJwks(url, std::move(*parsed), opts));
    r->impl_->ctx = std::move(ctx);
    {
        std::lock_guard l(r->impl_->mu);
        r->impl_->start_locked();
    }
    reg[key] = r;
    return r;
}

std::shared_ptr<const KeySet> RemoteJwks::keys() const {
    std::lock_guard lock(impl_->mu);
    return impl_->keys;
}

bool RemoteJwks::refresh_for_unknown_kid() {
    auto& im = *impl_;
    std::lock_guard lock(im.mu);
    if (im.in_flight || (im.started_once && SteadyClock::now() - im.last_start < im.opts.min_refresh)) {
        im.st.rate_limited++;
        return false;
    }
    im.st.refreshes_for_kid++;
    im.start_locked();
    return true;
}

bool RemoteJwks::in_flight() const {
    std::lock_guard lock(impl_->mu);
    return impl_->in_flight;
}

bool RemoteJwks::wait_loaded(std::chrono::milliseconds max) const {
    std::unique_lock lock(impl_->mu);
    return impl_->cv.wait_for(lock, max, [&] { return impl_->keys != nullptr; });
}

bool RemoteJwks::wait_idle(std::chrono::milliseconds max) const {
    std::unique_lock lock(impl_->mu);
    return impl_->cv.wait_for(lock, max, [&] { return !impl_->in_flight; });
}

RemoteJwksStats RemoteJwks::stats() const {
    std::lock_guard lock(impl_->mu);
    return impl_->st;
}

}  // namespace vaultwall::gate
