// identity.issuers[].jwks_url: JWKS over HTTPS from a local TLS server on
// 127.0.0.x started by the test — fetch, certificate checks, key rotation,
// rate-limited refresh storms, bounded responses, timeouts, and the gate
// end to end (curl with a token whose key only the URL knows).
#include <signal.h>

#include <utility>  // before Boost 1.74 asio (awaitable.hpp needs std::exchange)
#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <thread>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <gtest/gtest.h>

#include "gate/b64.hpp"
#include "gate/jwks_remote.hpp"
#include "gate/proxy.hpp"
#include "rules/ipv4.hpp"
#include "support.hpp"

using namespace vaultwall;
using namespace vaultwall::gate;
using namespace vwtest;
namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;

namespace {

// A small HTTPS server serving one JWKS document; the test swaps the
// document, the status, and a response delay while it runs.
class JwksServer {
public:
    JwksServer(const std::string& dir, const std::string& bind = "127.0.0.1")
        : ctx_(ssl::context::tls_server), acc_(ioc_) {
        ctx_.use_certificate_chain_file(dir + "/server.pem");
        ctx_.use_private_key_file(dir + "/server.key", ssl::context::pem);
        tcp::endpoint ep(net::ip::make_address(bind), 0);
        acc_.open(ep.protocol());
        acc_.set_option(net::socket_base::reuse_address(true));
        acc_.bind(ep);
        acc_.listen();
        port = acc_.local_endpoint().port();
        host = bind;
        accept();
        th_ = std::thread([this] { ioc_.run(); });
    }
    ~JwksServer() {
        net::post(ioc_, [this] {
            beast::error_code ec;
            acc_.close(ec);
        });
        ioc_.stop();
        th_.join();
    }
    std::string url(const std::string& path = "/discovery/keys") const {
        return "https://" + host + ":" + std::to_string(port) + path;
    }
    void set(std::string body, unsigned status = 200) {
        std::lock_guard l(mu_);
        body_ = std::move(body);
        status_ = status;
    }
    void delay(std::chrono::milliseconds d) { delay_ = d; }
    int requests() const { return requests_; }

    std::uint16_t port = 0;
    std::string host;

private:
    struct Conn : std::enable_shared_from_this<Conn> {
        Conn(JwksServer& s, tcp::socket sock) : srv(s), stream(std::move(sock), s.ctx_), timer(s.ioc_) {}
        JwksServer& srv;
        beast::ssl_stream<beast::tcp_stream> stream;
        net::steady_timer timer;
        beast::flat_buffer buf;
        http::request<http::string_body> req;
        http::response<http::string_body> res;
        void run() {
            stream.async_handshake(ssl::stream_base::server, [self = shared_from_this()](beast::error_code ec) {
                if (ec) return;
                http::async_read(self->stream, self->buf, self->req,
                                 [self](beast::error_code ec, std::size_t) {
                                     if (ec) return;
                                     self->srv.requests_++;
                                     self->timer.expires_after(self->srv.delay_.load());
                                     self->timer.async_wait([self](beast::error_code) { self->answer(); });
                                 });
            });
        }
        void answer() {
            {
                std::lock_guard l(srv.mu_);
                res.result(srv.status_);
                res.body() = srv.body_;
            }
            res.version(11);
            res.set(http::field::content_type, "application/json");
            res.keep_alive(false);
            res.prepare_payload();
            http::async_write(stream, res, [self = shared_from_this()](beast::error_code, std::size_t) {
                beast::error_code ec;
                beast::get_lowest_layer(self->stream).socket().shutdown(tcp::socket::shutdown_both, ec);
            });
        }
    };
    void accept() {
        acc_.async_accept([this](beast::error_code ec, tcp::socket s) {
            if (ec) return;
            std::make_shared<Conn>(*this, std::move(s))->run();
            accept();
        });
    }

    net::io_context ioc_;
    ssl::context ctx_;
    tcp::acceptor acc_;
    std::thread th_;
    std::mutex mu_;
    std::string body_;
    unsigned status_ = 200;
    std::atomic<std::chrono::milliseconds> delay_{0ms};
    std::atomic<int> requests_{0};
};

std::string jwks_of(std::initializer_list<std::pair<EVP_PKEY*, std::string>> ks) {
    std::string s = "{\"keys\":[";
    bool first = true;
    for (auto& [k, kid] : ks) {
        if (!first) s += ",";
        first = false;
        s += jwk_json_from_pkey(k, kid);
    }
    return s + "]}";
}

EVP_PKEY* rotated_key() {
    static EVP_PKEY* k = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", (size_t)2048);
    return k;
}

std::atomic<int> jti{0};
json fresh_claims() {
    auto c = base_claims();
    c["jti"] = "t" + std::to_string(jti++);  // a distinct token: never served from the token cache
    return c;
}

JwtValidator validator_for(std::shared_ptr<RemoteJwks> r) {
    JwtPolicy p;
    p.audience = kAudience;
    IssuerKeys ik;
    ik.issuer = kIssuer;
    ik.remote = std::move(r);
    p.issuers.push_back(std::move(ik));
    return JwtValidator(std::move(p));
}

class RemoteJwksTest : public ::testing::Test {
protected:
    static inline std::string dir, ca;
    static void SetUpTestSuite() {
        signal(SIGPIPE, SIG_IGN);
        dir = temp_dir("jwks");
        make_lab_pki(dir);
        ca = dir + "/ca.pem";
    }
    static void TearDownTestSuite() { std::system(("rm -rf '" + dir + "'").c_str()); }

    JwksFetchOptions opts(std::chrono::milliseconds min_refresh = 30s) {
        JwksFetchOptions o;
        o.ca_file = ca;
        o.min_refresh = min_refresh;
        o.timeout = 3s;
        return o;
    }
};

TEST(HttpsUrl, Parses) {
    auto u = parse_https_url("https://login.lab.test/common/discovery/v2.0/keys?x=1");
    ASSERT_TRUE(u);
    EXPECT_EQ(u->host, "login.lab.test");
    EXPECT_EQ(u->port, "443");
    EXPECT_EQ(u->target, "/common/discovery/v2.0/keys?x=1");
    EXPECT_FALSE(u->host_is_ip);
    u = parse_https_url("HTTPS://127.0.0.1:8443");
    ASSERT_TRUE(u);
    EXPECT_EQ(u->port, "8443");
    EXPECT_EQ(u->target, "/");
    EXPECT_TRUE(u->host_is_ip);
    u = parse_https_url("https://[::1]:9/k");
    ASSERT_TRUE(u);
    EXPECT_EQ(u->host, "::1");
    EXPECT_TRUE(u->host_is_ip);
    std::string why;
    EXPECT_FALSE(parse_https_url("http://sts.lab.test/keys", &why));
    EXPECT_NE(why.find("https://"), std::string::npos);
    EXPECT_FALSE(parse_https_url("https://user@sts.lab.test/keys"));
    EXPECT_FALSE(parse_https_url("https://sts.lab.test:0/keys"));
    EXPECT_FALSE(parse_https_url("https://sts.lab.test:99999/keys"));
    EXPECT_FALSE(parse_https_url("https:///keys"));
}

TEST_F(RemoteJwksTest, FetchesOnceAndValidatesRs256AndEs256) {
    JwksServer srv(dir);
    srv.set(keys().jwks);
    auto r = RemoteJwks::get(srv.url(), opts());
    ASSERT_TRUE(r->wait_loaded(5s)) << r->stats().last_error;
    EXPECT_EQ(r->keys()->size(), 2u);
    auto v = validator_for(r);
    EXPECT_TRUE(v.validate(token(fresh_claims()), kTenant).ok());
    EXPECT_TRUE(v.validate(token(fresh_claims(), "ES256", "ec1"), kTenant).ok());
    // Same URL and options: the same cache (a config reload does not refetch).
    EXPECT_EQ(RemoteJwks::get(srv.url(), opts()), r);
    EXPECT_EQ(srv.requests(), 1);
    EXPECT_EQ(r->stats().fetches_ok, 1u);
}

TEST_F(RemoteJwksTest, KeyRotationNewKidIsPickedUpWithoutBlockingRequests) {
    JwksServer srv(dir);
    srv.set(keys().jwks);
    auto r = RemoteJwks::get(srv.url(), opts(300ms));
    ASSERT_TRUE(r->wait_loaded(5s)) << r->stats().last_error;
    auto v = validator_for(r);
    ASSERT_TRUE(v.validate(token(fresh_claims()), kTenant).ok());

    // The issuer rotates: rsa1 retires, rsa2 appears. The server is slow.
    srv.set(jwks_of({{rotated_key(), "rsa2"}, {keys().ec, "ec1"}}));
    srv.delay(500ms);
    std::this_thread::sleep_for(350ms);  // past min_refresh since the first fetch
    std::string t2 = token(fresh_claims(), "RS256", "rsa2", rotated_key());

    auto t0 = std::chrono::steady_clock::now();
    auto res = v.validate(t2, kTenant);
    auto took = std::chrono::steady_clock::now() - t0;
    EXPECT_EQ(res.error, JwtError::unknown_kid);  // fail closed while the refresh runs
    EXPECT_LT(took, 100ms) << "validate() waited for the fetch";
    EXPECT_TRUE(r->in_flight());
    EXPECT_EQ(v.validate(t2, kTenant).error, JwtError::unknown_kid);  // still in flight: refused again
    EXPECT_GE(r->stats().rate_limited, 1u);

    ASSERT_TRUE(r->wait_idle(5s));
    EXPECT_TRUE(v.validate(t2, kTenant).ok()) << v.validate(t2, kTenant).message;
    EXPECT_EQ(r->stats().refreshes_for_kid, 1u);
    // The retired key no longer verifies new tokens (and, min_refresh having
    // passed, asks for one more refresh).
    EXPECT_EQ(v.validate(token(fresh_claims()), kTenant).error, JwtError::unknown_kid);
    EXPECT_EQ(r->stats().refreshes_for_kid, 2u);
    ASSERT_TRUE(r->wait_idle(5s));
}

TEST_F(RemoteJwksTest, RefreshStormIsRateLimited) {
    JwksServer srv(dir);
    srv.set(keys().jwks);
    auto r = RemoteJwks::get(srv.url(), opts(1s));
    ASSERT_TRUE(r->wait_loaded(5s));
    auto v = validator_for(r);
    std::this_thread::sleep_for(1100ms);  // one refresh is allowed again

    // 4 threads x 500 tokens, each with a kid nobody knows (signature irrelevant:
    // the kid is looked up first).
    std::vector<std::string> tokens;
    const std::string body = b64url_encode(base_claims().dump()) + "." + b64url_encode(std::string(256, 's'));
    for (int i = 0; i < 2000; ++i)
        tokens.push_back(b64url_encode(json{{"alg", "RS256"}, {"kid", "attacker-" + std::to_string(i)}}.dump()) + "." +
                         body);
    std::atomic<int> refused{0};
    std::vector<std::thread> th;
    for (int t = 0; t < 4; ++t)
        th.emplace_back([&, t] {
            for (int i = t; i < 2000; i += 4)
                if (v.validate(tokens[i], kTenant).error == JwtError::unknown_kid) refused++;
        });
    for (auto& t : th) t.join();
    EXPECT_EQ(refused.load(), 2000);
    ASSERT_TRUE(r->wait_idle(5s));
    auto st = r->stats();
    EXPECT_EQ(st.refreshes_for_kid, 1u);
    EXPECT_EQ(st.rate_limited, 1999u);
    EXPECT_EQ(srv.requests(), 2);  // the first fetch + one refresh
    // Within the interval, more unknown kids fetch nothing.
    for (int i = 0; i < 100; ++i) v.validate(tokens[i], kTenant);
    std::this_thread::sleep_for(100ms);
    EXPECT_EQ(srv.requests(), 2);
    // Good tokens were never affected.
    EXPECT_TRUE(v.validate(token(fresh_claims()), kTenant).ok());
}

TEST_F(RemoteJwksTest, UntrustedCertificateIsRefused) {
    JwksServer srv(dir);
    srv.set(keys().jwks);
    auto o = opts();
    o.ca_file.clear();  // the system store does not know the lab CA
    auto r = RemoteJwks::get(srv.url(), o);
    ASSERT_TRUE(r->wait_idle(5s));
    EXPECT_EQ(r->keys(), nullptr);
    EXPECT_NE(r->stats().last_error.find("certificate verification failed"), std::string::npos)
        << r->stats().last_error;
    // No keys: every token is refused.
    EXPECT_EQ(validator_for(r).validate(token(fresh_claims()), kTenant).error, JwtError::unknown_kid);
}

TEST_F(RemoteJwksTest, CertificateMustNameTheHost) {
    JwksServer srv(dir, "127.0.0.10");  // the lab cert names 127.0.0.1 .. 127.0.0.9 only
    srv.set(keys().jwks);
    auto r = RemoteJwks::get(srv.url(), opts());
    ASSERT_TRUE(r->wait_idle(5s));
    EXPECT_EQ(r->keys(), nullptr);
    EXPECT_NE(r->stats().last_error.find("certificate verification failed"), std::string::npos)
        << r->stats().last_error;
}

TEST_F(RemoteJwksTest, ResponseSizeIsBounded) {
    JwksServer srv(dir);
    srv.set("{\"keys\":[],\"pad\":\"" + std::string(2 * 1024 * 1024, 'x') + "\"}");
    auto o = opts();
    o.max_bytes = 64 * 1024;
    auto r = RemoteJwks::get(srv.url(), o);
    ASSERT_TRUE(r->wait_idle(5s));
    EXPECT_EQ(r->keys(), nullptr);
    EXPECT_NE(r->stats().last_error.find("larger than 65536"), std::string::npos) << r->stats().last_error;
}

TEST_F(RemoteJwksTest, BadAnswersKeepThePreviousKeys) {
    JwksServer srv(dir);
    srv.set(keys().jwks);
    auto r = RemoteJwks::get(srv.url(), opts(100ms));
    ASSERT_TRUE(r->wait_loaded(5s));
    auto before = r->keys();
    auto v = validator_for(r);
    std::string unknown = token(base_claims(), "RS256", "rsa9");

    srv.set("{\"error\":\"boom\"}", 500);
    std::this_thread::sleep_for(150ms);
    EXPECT_TRUE(r->refresh_for_unknown_kid() || r->in_flight());
    ASSERT_TRUE(r->wait_idle(5s));
    EXPECT_NE(r->stats().last_error.find("answered 500"), std::string::npos) << r->stats().last_error;
    EXPECT_EQ(r->keys(), before);

    srv.set("not json", 200);
    std::this_thread::sleep_for(150ms);
    EXPECT_EQ(v.validate(unknown, kTenant).error, JwtError::unknown_kid);
    ASSERT_TRUE(r->wait_idle(5s));
    EXPECT_NE(r->stats().last_error.find("not a JSON object"), std::string::npos) << r->stats().last_error;
    EXPECT_EQ(r->keys(), before);
    EXPECT_TRUE(v.validate(token(fresh_claims()), kTenant).ok());
}

TEST_F(RemoteJwksTest, SlowServerTimesOut) {
    JwksServer srv(dir);
    srv.set(keys().jwks);
    srv.delay(3s);
    auto o = opts();
    o.timeout = 300ms;
    auto t0 = std::chrono::steady_clock::now();
    auto r = RemoteJwks::get(srv.url(), o);
    ASSERT_TRUE(r->wait_idle(2s));
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 1500ms);
    EXPECT_EQ(r->keys(), nullptr);
    EXPECT_NE(r->stats().last_error.find("timed out"), std::string::npos) << r->stats().last_error;
}

// The rule file's jwks_url, through GateConfig and the TLS proxy.
class GateJwksUrl : public RemoteJwksTest {
protected:
    rules::RuleFile rule_file(const std::string& jwks_url, std::uint16_t port) {
        rules::RuleFile rf;
        rf.path = dir + "/rules.yaml";
        rf.identity = identity();
        rf.identity.issuers[0].jwks_file.clear();
        rf.identity.issuers[0].jwks_url = jwks_url;
        rf.trusted_services = catalog();
        rf.gate = rules::Gate{dir + "/server.pem", dir + "/server.key", dir + "/audit.jsonl"};
        auto v = vault(0x7F000001, port);
        v.upstream = "http://127.0.0.1:9";  // nothing listens: an admitted request gets 502
        v.ip_rules.push_back({rules::parse_ipv4_prefix("127.0.0.0/8")->prefix, {}});
        rf.vaults.push_back(v);
        return rf;
    }
};

TEST_F(GateJwksUrl, ConfigRejectsNonHttpsUrlAndUnreadableCa) {
    GateOptions o;
    o.jwks_ca_file = ca;
    EXPECT_THROW(GateConfig::build(rule_file("http://127.0.0.1:1/keys", 8443), o), GateConfigError);
    o.jwks_ca_file = dir + "/missing.pem";
    try {
        GateConfig::build(rule_file("https://127.0.0.1:1/keys", 8443), o);
        FAIL() << "no error";
    } catch (const GateConfigError& e) {
        EXPECT_NE(std::string(e.what()).find("missing.pem"), std::string::npos) << e.what();
    }
}

TEST_F(GateJwksUrl, ProxyAcceptsTokensSignedWithFetchedKeys) {
    JwksServer srv(dir);
    srv.set(keys().jwks);
    net::io_context tmp;
    tcp::acceptor a(tmp, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    std::uint16_t port = a.local_endpoint().port();
    a.close();
    GateOptions o;
    o.jwks_ca_file = ca;
    o.limits.jwks_min_refresh = 200ms;
    o.limits.upstream_connect_timeout = 500ms;
    auto cfg = GateConfig::build(rule_file(srv.url("/gate/keys"), port), o);  // waits for the first fetch
    Gate g(cfg, 1);
    g.start();
    auto curl = [&](const std::string& tok) {
        std::string cmd = "curl -sS --max-time 10 --cacert '" + ca + "' -o /dev/null -D - -w 'code=%{http_code}' " +
                          "-H 'Authorization: Bearer " + tok + "' https://127.0.0.1:" + std::to_string(port) +
                          "/secrets/s1?api-version=7.4 2>&1";
        std::string out;
        FILE* p = popen(cmd.c_str(), "r");
        char buf[4096];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
        pclose(p);
        return out;
    };
    // Admitted (token fine) -> forwarded -> nothing at the upstream -> 502.
    EXPECT_NE(curl(token(fresh_claims())).find("code=502"), std::string::npos);
    // Rotation: the new kid is refused with invalid_token until the refresh lands.
    srv.set(jwks_of({{keys().rsa, "rsa1"}, {rotated_key(), "rsa2"}}));
    std::this_thread::sleep_for(250ms);
    std::string t2 = token(fresh_claims(), "RS256", "rsa2", rotated_key());
    auto first = curl(t2);
    EXPECT_NE(first.find("code=401"), std::string::npos) << first;
    EXPECT_NE(first.find("error=\"invalid_token\""), std::string::npos) << first;
    auto remote = cfg->jwt->policy().issuers[0].remote;
    ASSERT_TRUE(remote->wait_idle(5s));
    EXPECT_NE(curl(t2).find("code=502"), std::string::npos);
    g.stop();
}

}  // namespace
