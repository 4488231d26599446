// The real proxy over TLS on loopback: curl and raw TLS clients against the
// gate, with vaultwall-labvault (or a test server) as the upstream.
#include <signal.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <utility>  // before Boost 1.74 asio (awaitable.hpp needs std::exchange)
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <gtest/gtest.h>

#include "gate/proxy.hpp"
#include "rules/ipv4.hpp"
#include "rules/ipv6.hpp"
#include "support.hpp"

using namespace vaultwall;
using namespace vaultwall::gate;
using namespace vwtest;
namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;

namespace {

constexpr std::uint32_t kLoop = 0x7F000001;

std::string run(const std::string& cmd) {
    std::string out;
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) return out;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    pclose(p);
    return out;
}

struct FakeAdmission : AdmissionSource {
    std::atomic<std::uint32_t> reason{VW_PASS_IP_RULE};
    std::atomic<bool> present{true};
    std::optional<vw_admission> lookup(std::uint32_t, std::uint16_t, std::uint32_t, std::uint16_t) override {
        if (!present) return std::nullopt;
        vw_admission a{};
        a.vault_id = 1;
        a.reason = reason;
        return a;
    }
    // The IPv6 4-tuples asked for, in order.
    struct Tuple6 {
        rules::Ipv6Addr saddr, daddr;
        std::uint16_t sport, dport;
    };
    std::optional<vw_admission> lookup6(const rules::Ipv6Addr& saddr, std::uint16_t sport,
                                        const rules::Ipv6Addr& daddr, std::uint16_t dport) override {
        {
            std::lock_guard lock(mu);
            asked6.push_back({saddr, daddr, sport, dport});
        }
        return lookup(0, sport, 0, dport);
    }
    std::vector<Tuple6> tuples6() {
        std::lock_guard lock(mu);
        return asked6;
    }
    std::mutex mu;
    std::vector<Tuple6> asked6;
};

struct CurlResult {
    int code = 0;
    std::string headers, body;
};

// Stands in for a slow vault: accepts, reads, answers after `delay`.
class SlowServer {
public:
    explicit SlowServer(std::chrono::milliseconds delay) : delay_(delay), acc_(ioc_) {
        acc_.open(tcp::v4());
        acc_.set_option(net::socket_base::reuse_address(true));
        acc_.bind(tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
        acc_.listen();
        port = acc_.local_endpoint().port();
        th_ = std::thread([this] {
            for (int i = 0; i < 8 && !stop_; ++i) {
                tcp::socket s(ioc_);
                boost::system::error_code ec;
                acc_.accept(s, ec);
                if (ec || stop_) return;
                char buf[4096];
                s.read_some(net::buffer(buf), ec);
                std::this_thread::sleep_for(delay_);
                std::string r = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
                net::write(s, net::buffer(r), ec);
            }
        });
    }
    ~SlowServer() {
        stop_ = true;
        boost::system::error_code ec;
        tcp::socket s(ioc_);
        s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port), ec);
        th_.join();
    }
    std::uint16_t port = 0;

private:
    std::chrono::milliseconds delay_;
    net::io_context ioc_;
    tcp::acceptor acc_;
    std::atomic<bool> stop_{false};
    std::thread th_;
};

// Stands in for a vault that records what reaches it: every request (head
// and body, as received) and answers 200 "{}" on a keep-alive connection.
class RecordingServer {
public:
    RecordingServer() : acc_(ioc_) {
        acc_.open(tcp::v4());
        acc_.set_option(net::socket_base::reuse_address(true));
        acc_.bind(tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
        acc_.listen();
        port = acc_.local_endpoint().port();
        th_ = std::thread([this] {
            while (!stop_) {
                auto s = std::make_shared<tcp::socket>(ioc_);
                boost::system::error_code ec;
                acc_.accept(*s, ec);
                if (ec || stop_) return;
                conns_.emplace_back([this, s] { serve(*s); });
            }
        });
    }
    ~RecordingServer() {
        stop_ = true;
        boost::system::error_code ec;
        tcp::socket s(ioc_);
        s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port), ec);
        th_.join();
        for (auto& t : conns_) t.join();
    }
    std::vector<std::string> requests() {
        std::lock_guard lock(mu_);
        return requests_;
    }
    std::uint16_t port = 0;

private:
    void serve(tcp::socket& s) {
        struct timeval tv {0, 200000};
        setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        std::string in;
        char buf[4096];
        while (!stop_) {
            auto end = in.find("\r\n\r\n");
            if (end != std::string::npos) {
                std::size_t len = 0;
                auto cl = in.find("Content-Length: ");
                if (cl != std::string::npos && cl < end) len = std::stoul(in.substr(cl + 16));
                if (in.size() >= end + 4 + len) {
                    {
                        std::lock_guard lock(mu_);
                        requests_.push_back(in.substr(0, end + 4 + len));
                    }
                    in.erase(0, end + 4 + len);
                    std::string r = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
                    boost::system::error_code ec;
                    net::write(s, net::buffer(r), ec);
                    continue;
                }
            }
            int n = ::recv(s.native_handle(), buf, sizeof buf, 0);
            if (n == 0) return;
            if (n < 0) continue;  // timeout: look at stop_
            in.append(buf, n);
        }
    }
    net::io_context ioc_;
    tcp::acceptor acc_;
    std::atomic<bool> stop_{false};
    std::thread th_;
    std::vector<std::thread> conns_;
    std::mutex mu_;
    std::vector<std::string> requests_;
};

class Proxy : public ::testing::Test {
protected:
    static inline std::string dir, ca, audit;
    static inline pid_t labvault = -1;
    static inline std::uint16_t vault_port = 0;

    static void SetUpTestSuite() {
        signal(SIGPIPE, SIG_IGN);
        dir = temp_dir("proxy");
        make_lab_pki(dir);
        ca = dir + "/ca.pem";
        audit = dir + "/audit.jsonl";
        write_file(dir + "/jwks.json", keys().jwks);
        vault_port = free_port();
        std::string listen = "127.0.0.1:" + std::to_string(vault_port);
        std::string data = dir + "/vault";
        labvault = fork();
        if (labvault == 0) {
            execl(LABVAULT_BIN, LABVAULT_BIN, "--listen", listen.c_str(), "--data", data.c_str(), (char*)nullptr);
            _exit(127);
        }
        ASSERT_TRUE(wait_port(vault_port, 5s)) << "labvault did not start";
    }
    static void TearDownTestSuite() {
        if (labvault > 0) {
            kill(labvault, SIGTERM);
            waitpid(labvault, nullptr, 0);
        }
        run("rm -rf '" + dir + "'");
    }

    std::shared_ptr<FakeAdmission> adm = std::make_shared<FakeAdmission>();
    std::uint16_t port = 0;
    std::unique_ptr<Gate> gate;

    rules::RuleFile rule_file(std::uint16_t gate_port, const std::string& upstream) {
        rules::RuleFile rf;
        rf.path = dir + "/rules.yaml";
        rf.identity = identity(dir + "/jwks.json");
        rf.trusted_services = catalog();
        rf.gate = rules::Gate{dir + "/server.pem", dir + "/server.key", audit};
        auto v = vault(kLoop, gate_port);
        v.upstream = upstream;
        rf.vaults.push_back(v);
        return rf;
    }
    GateOptions options() {
        GateOptions o;
        o.limits.read_timeout = 1500ms;
        o.limits.idle_timeout = 3000ms;
        o.limits.upstream_timeout = 1000ms;
        o.limits.upstream_connect_timeout = 1000ms;
        o.admission = adm;
        o.vault_name_of = [](std::uint32_t id) { return id == 1 ? std::string("contoso-prod") : std::string(); };
        return o;
    }
    // `edit` changes the rule file / options before the config is built.
    void start(const std::string& upstream = "",
               const std::function<void(rules::RuleFile&, GateOptions&)>& edit = nullptr) {
        port = free_port();
        auto rf = rule_file(port, upstream.empty() ? "http://127.0.0.1:" + std::to_string(vault_port) : upstream);
        auto opts = options();
        if (edit) edit(rf, opts);
        gate = std::make_unique<Gate>(GateConfig::build(rf, opts), 2);
        gate->start();
    }
    // The vault on an IPv6 endpoint too, [::1]:port (SPEC §11; the host's
    // own loopback, so nothing leaves it), and the client on it.
    void start_dual_stack(const std::function<void(rules::RuleFile&)>& edit = nullptr) {
        gate->stop();
        port = free_port();
        auto rf = rule_file(port, "http://127.0.0.1:" + std::to_string(vault_port));
        if (edit) edit(rf);
        rules::Endpoint6 ep6;
        ep6.addr = kLoop6;
        ep6.port = port;
        rf.vaults[0].endpoints6.push_back(ep6);
        gate = std::make_unique<Gate>(GateConfig::build(rf, options()), 2);
        gate->start();
        host = "[::1]";
    }
    static inline const rules::Ipv6Addr kLoop6 = *rules::parse_ipv6("::1");
    // The gate again, in front of `up`.
    void restart_before(const RecordingServer& up) {
        gate->stop();
        start("http://127.0.0.1:" + std::to_string(up.port));
    }
    void SetUp() override { start(); }
    void TearDown() override {
        if (gate) gate->stop();
    }

    std::string host = "127.0.0.1";  // "[::1]" for the IPv6 endpoint
    std::string url(const std::string& path) { return "https://" + host + ":" + std::to_string(port) + path; }

    CurlResult curl(const std::string& method, const std::string& path, const std::string& auth = "",
                    const std::string& body = "") {
        static std::atomic<int> n{0};
        std::string base = dir + "/curl" + std::to_string(n++);
        std::string cmd = "curl -sS --max-time 10 --cacert '" + ca + "' -X " + method + " -D '" + base +
                          ".h' -o '" + base + ".b' -w '%{http_code}' -g ";
        if (!auth.empty()) cmd += "-H 'Authorization: " + auth + "' ";
        if (!body.empty()) {
            write_file(base + ".in", body);
            cmd += "-H 'Content-Type: application/json' --data-binary @'" + base + ".in' ";
        }
        cmd += "'" + url(path) + "' 2>&1";
        CurlResult r;
        std::string out = run(cmd);
        r.code = std::atoi(out.c_str());
        r.headers = read_file(base + ".h");
        r.body = read_file(base + ".b");
        return r;
    }

    // Raw TLS: sends `data`, then reads until the server closes or `max` passes.
    struct Raw {
        std::string data;
        bool closed = false;
        std::chrono::milliseconds took{0};
    };
    Raw raw(const std::string& data, std::chrono::milliseconds max = 5000ms, bool half = false) {
        net::io_context ioc;
        ssl::context ctx(ssl::context::tls_client);
        ctx.load_verify_file(ca);
        ctx.set_verify_mode(ssl::verify_peer);
        ssl::stream<tcp::socket> s(ioc, ctx);
        s.next_layer().connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
        struct timeval tv {0, 200000};
        setsockopt(s.next_layer().native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        s.handshake(ssl::stream_base::client);
        auto t0 = std::chrono::steady_clock::now();
        Raw r;
        boost::system::error_code ec;
        net::write(s, net::buffer(data), ec);
        (void)half;
        char buf[16384];
        while (std::chrono::steady_clock::now() - t0 < max) {
            size_t n = s.read_some(net::buffer(buf), ec);
            if (n) r.data.append(buf, n);
            if (ec == net::error::eof || ec == ssl::error::stream_truncated || ec == net::error::connection_reset ||
                (ec && ec != net::error::would_block && ec != net::error::try_again && ec.value() != EAGAIN)) {
                r.closed = true;
                break;
            }
        }
        r.took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
        return r;
    }

    static int count(const std::string& hay, const std::string& needle) {
        int n = 0;
        for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
        return n;
    }
    std::string bearer() { return "Bearer " + token(base_claims()); }
    std::vector<json> audit_lines() {
        gate->flush_audit();  // lines are otherwise written in batches
        std::vector<json> out;
        std::ifstream in(audit);
        std::string line;
        while (std::getline(in, line))
            if (!line.empty()) out.push_back(json::parse(line));
        return out;
    }
};

}  // namespace

TEST_F(Proxy, SecretRoundTripWithCurl) {
    auto put = curl("PUT", "/secrets/db?api-version=7.4", bearer(), R"({"value":"hunter2"})");
    ASSERT_EQ(put.code, 200) << put.body;
    auto j = json::parse(put.body);
    EXPECT_EQ(j["value"], "hunter2");
    EXPECT_EQ(j["id"].get<std::string>().rfind("https://127.0.0.1:" + std::to_string(port) + "/secrets/db/", 0), 0u);
    EXPECT_NE(put.headers.find("x-ms-keyvault-network-info: addr=127.0.0.1;act_addr_fam=InterNetwork;"),
              std::string::npos);
    auto get = curl("GET", "/secrets/db?api-version=7.4", bearer());
    ASSERT_EQ(get.code, 200);
    EXPECT_EQ(json::parse(get.body)["value"], "hunter2");
    auto list = curl("GET", "/secrets?api-version=7.4", bearer());
    ASSERT_EQ(list.code, 200);
    EXPECT_GE(json::parse(list.body)["value"].size(), 1u);
    auto lines = audit_lines();
    ASSERT_FALSE(lines.empty());
    auto last = lines.back();
    EXPECT_EQ(last["decision"], "allow");
    EXPECT_EQ(last["operation"], "secrets/list");
    EXPECT_EQ(last["vault"], "contoso-prod");
    EXPECT_EQ(last["client"], "127.0.0.1");
    EXPECT_EQ(last["reason"], "ip_rule");
}

TEST_F(Proxy, WrapUnwrapKeyThroughGate) {
    // Create the key directly at the lab vault (the test identity has no keys/create).
    std::string created = run("curl -sS --max-time 10 -X POST -d '{\"kty\":\"RSA\"}' http://127.0.0.1:" +
                              std::to_string(vault_port) + "/keys/cmk/create");
    ASSERT_NE(created.find("\"kty\":\"RSA\""), std::string::npos) << created;
    std::string cek = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
    auto w = curl("POST", "/keys/cmk/wrapkey?api-version=7.4", bearer(),
                  R"({"alg":"RSA-OAEP-256","value":")" + cek + "\"}");
    ASSERT_EQ(w.code, 200) << w.body;
    std::string wrapped = json::parse(w.body)["value"];
    auto u = curl("POST", "/keys/cmk/unwrapkey?api-version=7.4", bearer(),
                  R"({"alg":"RSA-OAEP-256","value":")" + wrapped + "\"}");
    ASSERT_EQ(u.code, 200) << u.body;
    EXPECT_EQ(json::parse(u.body)["value"], cek);
    auto g = curl("GET", "/keys/cmk?api-version=7.4", bearer());
    EXPECT_EQ(g.code, 200);
}

TEST_F(Proxy, MissingTokenChallengeWithCurl) {
    auto r = curl("GET", "/secrets/db?api-version=7.4");
    EXPECT_EQ(r.code, 401);
    EXPECT_NE(r.headers.find("WWW-Authenticate: Bearer authorization=\"https://login.microsoftonline.com/" +
                             kTenant + "\", resource=\"https://vault.azure.net\"\r\n"),
              std::string::npos)
        << r.headers;
    EXPECT_NE(r.headers.find("x-ms-keyvault-network-info: addr=127.0.0.1;"), std::string::npos);
    auto bad = curl("GET", "/secrets/db", "Bearer not.a.token");
    EXPECT_EQ(bad.code, 401);
    EXPECT_NE(bad.headers.find("error=\"invalid_token\""), std::string::npos);
    EXPECT_EQ(audit_lines().back()["reason"], "malformed_token");
}

TEST_F(Proxy, TrustedCandidateNonTrustedGetsForbiddenByFirewall) {
    adm->reason = VW_PASS_TRUSTED_CANDIDATE;
    auto r = curl("GET", "/secrets/db?api-version=7.4", bearer());
    EXPECT_EQ(r.code, 403);
    auto j = json::parse(r.body);
    EXPECT_EQ(j["error"]["innererror"]["code"], "ForbiddenByFirewall");
    auto last = audit_lines().back();
    EXPECT_EQ(last["decision"], "deny");
    EXPECT_EQ(last["reason"], "not_trusted_service");
    EXPECT_EQ(last["caller"], "appid=" + kAppApp + ";oid=" + kOidApp + ";iss=" + kIssuer);
    // A trusted service doing its scenario passes (and reaches the vault: 404 there).
    auto t = curl("GET", "/keys/nokey?api-version=7.4", "Bearer " + token(base_claims(kOidStorage, kAppStorage)));
    EXPECT_EQ(t.code, 404) << t.body;
    EXPECT_EQ(audit_lines().back()["reason"], "trusted_service:azure-storage");
}

TEST_F(Proxy, NoRecordFailsClosed) {
    adm->present = false;  // 127.0.0.1 is not in the vault's ip_rules
    auto r = curl("GET", "/secrets/db", bearer());
    EXPECT_EQ(r.code, 403);
    EXPECT_EQ(json::parse(r.body)["error"]["innererror"]["code"], "ForbiddenByFirewall");
    EXPECT_EQ(audit_lines().back()["reason"], "no_rule");
}

// SPEC §11: the gate listens on the vault's IPv6 endpoint beside its IPv4
// one, looks the connection's admission record up by its IPv6 4-tuple, and
// answers act_addr_fam=InterNetworkV6 with the client in RFC 5952 form.
TEST_F(Proxy, Ipv6EndpointAdmittedByItsRecordAnswersInterNetworkV6) {
    start_dual_stack();
    auto listening = gate->listening();
    EXPECT_NE(std::find(listening.begin(), listening.end(), "[::1]:" + std::to_string(port)), listening.end());
    auto put = curl("PUT", "/secrets/db6?api-version=7.4", bearer(), R"({"value":"over-v6"})");
    ASSERT_EQ(put.code, 200) << put.body;
    EXPECT_NE(put.headers.find("x-ms-keyvault-network-info: addr=::1;act_addr_fam=InterNetworkV6;\r\n"),
              std::string::npos)
        << put.headers;
    auto last = audit_lines().back();
    EXPECT_EQ(last["decision"], "allow");
    EXPECT_EQ(last["client"], "::1");
    EXPECT_EQ(last["vault"], "contoso-prod");
    EXPECT_EQ(last["reason"], "ip_rule");
    auto asked = adm->tuples6();
    ASSERT_EQ(asked.size(), 1u);
    EXPECT_EQ(asked[0].saddr, kLoop6);
    EXPECT_EQ(asked[0].daddr, kLoop6);
    EXPECT_EQ(asked[0].dport, port);
    EXPECT_NE(asked[0].sport, 0);
    EXPECT_NE(asked[0].sport, port);
    // The IPv4 endpoint on the same port is served as before.
    host = "127.0.0.1";
    auto get = curl("GET", "/secrets/db6?api-version=7.4", bearer());
    ASSERT_EQ(get.code, 200) << get.body;
    EXPECT_EQ(json::parse(get.body)["value"], "over-v6");
    EXPECT_NE(get.headers.find("x-ms-keyvault-network-info: addr=127.0.0.1;act_addr_fam=InterNetwork;\r\n"),
              std::string::npos);
    EXPECT_EQ(adm->tuples6().size(), 1u);
}

TEST_F(Proxy, Ipv6ClientWithoutRecordFailsClosedAndIsNamedInThe403) {
    start_dual_stack();
    adm->present = false;  // ::1 is in no rule of the vault
    auto r = curl("GET", "/secrets/db?api-version=7.4", bearer());
    EXPECT_EQ(r.code, 403);
    auto j = json::parse(r.body);
    EXPECT_EQ(j["error"]["innererror"]["code"], "ForbiddenByFirewall");
    EXPECT_NE(j["error"]["message"].get<std::string>().find("\r\nClient address: ::1\r\n"), std::string::npos)
        << r.body;
    EXPECT_NE(r.headers.find("x-ms-keyvault-network-info: addr=::1;act_addr_fam=InterNetworkV6;"), std::string::npos);
    auto last = audit_lines().back();
    EXPECT_EQ(last["decision"], "deny");
    EXPECT_EQ(last["reason"], "no_rule");
    EXPECT_EQ(last["client"], "::1");
}

// A vault whose upstream is on IPv6 ([::1], the host's loopback).
// Without a record, an IPv6 client is checked against the vault's IPv6
// rules in user space.
TEST_F(Proxy, Ipv6ClientWithoutRecordAdmittedByAnIpv6Rule) {
    start_dual_stack([](rules::RuleFile& rf) {
        rf.vaults[0].ip_rules6.push_back({rules::parse_ipv6_prefix("::1/128")->prefix, {}});
    });
    adm->present = false;
    auto r = curl("GET", "/secrets/nothing-here?api-version=7.4", bearer());
    EXPECT_EQ(r.code, 404) << r.body;  // admitted: the vault itself answers
    auto last = audit_lines().back();
    EXPECT_EQ(last["decision"], "allow");
    EXPECT_EQ(last["reason"], "ip_rule");
    EXPECT_EQ(last["client"], "::1");
    // The IPv4 client on the same gate is in no rule: refused.
    host = "127.0.0.1";
    EXPECT_EQ(curl("GET", "/secrets/nothing-here?api-version=7.4", bearer()).code, 403);
}

TEST_F(Proxy, Ipv6UpstreamIsForwardedTo) {
    std::uint16_t up = free_port();
    std::string listen = "[::1]:" + std::to_string(up), data = dir + "/vault6";
    pid_t pid = fork();
    if (pid == 0) {
        execl(LABVAULT_BIN, LABVAULT_BIN, "--listen", listen.c_str(), "--data", data.c_str(), (char*)nullptr);
        _exit(127);
    }
    ASSERT_TRUE(wait_port(up, 5s, "::1")) << "labvault did not start on " << listen;
    gate->stop();
    start("http://[::1]:" + std::to_string(up));
    auto put = curl("PUT", "/secrets/at-v6-upstream?api-version=7.4", bearer(), R"({"value":"v6-up"})");
    auto get = curl("GET", "/secrets/at-v6-upstream?api-version=7.4", bearer());
    kill(pid, SIGTERM);
    waitpid(pid, nullptr, 0);
    ASSERT_EQ(put.code, 200) << put.body;
    ASSERT_EQ(get.code, 200) << get.body;
    EXPECT_EQ(json::parse(get.body)["value"], "v6-up");
    // It is that vault's store, not the fixture's (on 127.0.0.1) that holds it.
    EXPECT_EQ(run("curl -sS -o /dev/null -w '%{http_code}' --max-time 5 http://127.0.0.1:" + std::to_string(vault_port) +
                  "/secrets/at-v6-upstream"),
              "404");
}

TEST_F(Proxy, KeepAliveAndPipelining) {
    std::string auth = "Authorization: " + bearer() + "\r\n";
    std::string get = "GET /secrets/nosuch?api-version=7.4 HTTP/1.1\r\nHost: vault\r\n" + auth + "\r\n";
    std::string last = "GET /secrets/nosuch2 HTTP/1.1\r\nHost: vault\r\nConnection: close\r\n" + auth + "\r\n";
    // three pipelined requests in one write
    auto r = raw(get + get + last);
    EXPECT_TRUE(r.closed);
    EXPECT_EQ(count(r.data, "HTTP/1.1 404"), 3) << r.data;
    EXPECT_EQ(count(r.data, "x-ms-keyvault-network-info"), 3);
    // and a denied + an allowed request on one connection
    auto r2 = raw("GET /secrets/x HTTP/1.1\r\nHost: v\r\n\r\n" + last);
    EXPECT_EQ(count(r2.data, "HTTP/1.1 401"), 1);
    EXPECT_EQ(count(r2.data, "HTTP/1.1 404"), 1);
}

TEST_F(Proxy, SmugglingRefused) {
    std::string auth = "Authorization: " + bearer() + "\r\n";
    auto cl_te = raw("POST /secrets/db/backup HTTP/1.1\r\nHost: v\r\n" + auth +
                     "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /secrets/db HTTP/1.1\r\nHost: "
                     "v\r\n\r\n");
    EXPECT_EQ(cl_te.data.rfind("HTTP/1.1 400", 0), 0u) << cl_te.data;
    EXPECT_EQ(count(cl_te.data, "HTTP/1.1 "), 1);
    EXPECT_TRUE(cl_te.closed);
    auto te_cl = raw("POST /secrets/db/backup HTTP/1.1\r\nHost: v\r\nTransfer-Encoding: chunked\r\nContent-Length: "
                     "4\r\n\r\n0\r\n\r\n");
    EXPECT_EQ(te_cl.data.rfind("HTTP/1.1 400", 0), 0u);
    auto two_cl = raw("PUT /secrets/db HTTP/1.1\r\nHost: v\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}");
    EXPECT_EQ(two_cl.data.rfind("HTTP/1.1 400", 0), 0u) << two_cl.data;
    auto two_cl_diff = raw("PUT /secrets/db HTTP/1.1\r\nHost: v\r\nContent-Length: 2\r\nContent-Length: 5\r\n\r\n{}");
    EXPECT_EQ(two_cl_diff.data.rfind("HTTP/1.1 400", 0), 0u);
    auto list_cl = raw("PUT /secrets/db HTTP/1.1\r\nHost: v\r\nContent-Length: 2, 2\r\n\r\n{}");
    EXPECT_EQ(list_cl.data.rfind("HTTP/1.1 400", 0), 0u);
    auto te_gzip = raw("PUT /secrets/db HTTP/1.1\r\nHost: v\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n");
    EXPECT_EQ(te_gzip.data.rfind("HTTP/1.1 400", 0), 0u);
    auto te_dup = raw("PUT /secrets/db HTTP/1.1\r\nHost: v\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
                      "chunked\r\n\r\n0\r\n\r\n");
    EXPECT_EQ(te_dup.data.rfind("HTTP/1.1 400", 0), 0u);
    EXPECT_EQ(audit_lines().back()["reason"], "request_smuggling");
}

TEST_F(Proxy, ChunkedBodyIsForwardedWithLength) {
    std::string auth = "Authorization: " + bearer() + "\r\n";
    std::string body = R"({"value":"chunky"})";
    char sz[16];
    std::snprintf(sz, sizeof sz, "%zx", body.size());
    auto r = raw("PUT /secrets/chunked HTTP/1.1\r\nHost: v\r\nConnection: close\r\n" + auth +
                 "Transfer-Encoding: chunked\r\n\r\n" + sz + "\r\n" + body + "\r\n0\r\n\r\n");
    EXPECT_EQ(r.data.rfind("HTTP/1.1 200", 0), 0u) << r.data;
    EXPECT_NE(r.data.find("chunky"), std::string::npos);
}

TEST_F(Proxy, OversizedHeaderAndBody) {
    auto h = raw("GET /secrets/db HTTP/1.1\r\nHost: v\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n");
    EXPECT_EQ(h.data.rfind("HTTP/1.1 431", 0), 0u) << h.data.substr(0, 100);
    EXPECT_TRUE(h.closed);
    auto b = raw("PUT /secrets/db HTTP/1.1\r\nHost: v\r\nContent-Length: 2000000\r\n\r\n" + std::string(1000, 'x'));
    EXPECT_EQ(b.data.rfind("HTTP/1.1 413", 0), 0u) << b.data.substr(0, 100);
    EXPECT_TRUE(b.closed);
    auto c = curl("PUT", "/secrets/db", bearer(), R"({"value":")" + std::string(1100000, 'x') + "\"}");
    EXPECT_EQ(c.code, 413);
    auto tok = curl("GET", "/secrets/db", "Bearer " + std::string(17000, 'a'));
    EXPECT_EQ(tok.code, 431);  // a 17 KiB header line is over the header limit before it is a token
}

TEST_F(Proxy, SlowlorisClosedByTimeout) {
    auto r = raw("GET /secrets/db HTTP/1.1\r\nHost: v\r\nX-A: ", 8000ms);
    EXPECT_TRUE(r.closed);
    EXPECT_LT(r.took.count(), 4000);
    EXPECT_GE(r.took.count(), 1000);
    // An idle TLS connection that sends nothing is closed as well.
    auto idle = raw("", 8000ms);
    EXPECT_TRUE(idle.closed);
    EXPECT_LT(idle.took.count(), 4000);
}

TEST_F(Proxy, UpstreamDownIs502) {
    gate->stop();
    start("http://127.0.0.1:" + std::to_string(free_port()));
    auto r = curl("GET", "/secrets/db", bearer());
    EXPECT_EQ(r.code, 502) << r.body;
    EXPECT_NE(r.headers.find("x-ms-keyvault-network-info"), std::string::npos);
    EXPECT_EQ(audit_lines().back()["reason"], "ip_rule;upstream_unavailable");
}

TEST_F(Proxy, UpstreamSlowIs504) {
    SlowServer slow(2500ms);
    gate->stop();
    start("http://127.0.0.1:" + std::to_string(slow.port));
    auto t0 = std::chrono::steady_clock::now();
    auto r = curl("GET", "/secrets/db", bearer());
    EXPECT_EQ(r.code, 504) << r.body;
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 2500ms);
}

TEST_F(Proxy, ReconfigureSwapsConfig) {
    auto ok = curl("GET", "/secrets/nosuch", bearer());
    EXPECT_EQ(ok.code, 404);
    auto rf = rule_file(port, "http://127.0.0.1:" + std::to_string(vault_port));
    rf.vaults[0].access_policies.clear();
    auto errs = gate->reconfigure(GateConfig::build(rf, options()));
    EXPECT_TRUE(errs.empty());
    auto denied = curl("GET", "/secrets/nosuch", bearer());
    EXPECT_EQ(denied.code, 403);
    EXPECT_EQ(json::parse(denied.body)["error"]["innererror"]["code"], "ForbiddenByPolicy");
    // A new endpoint is opened, the old one closed.
    auto p2 = free_port();
    auto rf2 = rule_file(p2, "http://127.0.0.1:" + std::to_string(vault_port));
    EXPECT_TRUE(gate->reconfigure(GateConfig::build(rf2, options())).empty());
    auto l = gate->listening();
    ASSERT_EQ(l.size(), 1u);
    EXPECT_EQ(l[0], "127.0.0.1:" + std::to_string(p2));
    port = p2;
    EXPECT_EQ(curl("GET", "/secrets/nosuch", bearer()).code, 404);
}

TEST_F(Proxy, ManyConcurrentClients) {
    std::vector<std::thread> ts;
    std::atomic<int> ok{0};
    for (int i = 0; i < 8; ++i)
        ts.emplace_back([&] {
            auto r = curl("GET", "/secrets/nosuch", bearer());
            if (r.code == 404) ok++;
        });
    for (auto& t : ts) t.join();
    EXPECT_EQ(ok, 8);
    auto s = gate->stats();
    EXPECT_GE(s.requests, 8u);
}

TEST(GateConfig, BuildErrorsAreOneLine) {
    rules::RuleFile rf;
    EXPECT_THROW(GateConfig::build(rf), GateConfigError);
    rf.gate = rules::Gate{"/nonexistent.pem", "/nonexistent.key", ""};
    rf.identity = identity("/nonexistent/jwks.json");
    try {
        GateConfig::build(rf);
        FAIL();
    } catch (const GateConfigError& e) {
        EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
        EXPECT_NE(std::string(e.what()).find("/nonexistent/jwks.json"), std::string::npos);
    }
    EXPECT_THROW(parse_upstream("https://x:1"), GateConfigError);
    EXPECT_THROW(parse_upstream("http://x:99999"), GateConfigError);
    EXPECT_EQ(parse_upstream("http://127.0.0.1:8200/").key(), "127.0.0.1:8200");
    // IPv6 upstreams, in brackets (RFC 3986 §3.2.2).
    auto v6 = parse_upstream("http://[2001:db8::20]:8200/");
    EXPECT_EQ(v6.host, "2001:db8::20");
    EXPECT_EQ(v6.port, "8200");
    EXPECT_EQ(v6.key(), "[2001:db8::20]:8200");
    EXPECT_EQ(parse_upstream("http://[::1]").key(), "[::1]:80");
    EXPECT_THROW(parse_upstream("http://2001:db8::20:8200"), GateConfigError);
    EXPECT_THROW(parse_upstream("http://[2001:db8::20:8200"), GateConfigError);
    EXPECT_THROW(parse_upstream("http://[not-v6]:8200"), GateConfigError);
    EXPECT_THROW(parse_upstream("http://[::1]8200"), GateConfigError);
    EXPECT_THROW(parse_upstream("http://[::1]:0"), GateConfigError);
}

// ---- Issue 17: hostile requests (each test fails on the gate before the fix) ----

namespace {
bool starts(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }
bool contains_nocase(std::string hay, std::string needle) {
    for (auto* s : {&hay, &needle})
        for (auto& c : *s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return hay.find(needle) != std::string::npos;
}
}  // namespace

// Item 1: a vault whose location is Latin-1 gets its 403 (the bad byte
// replaced), not a dropped connection.
TEST_F(Proxy, NonUtf8ConfigStringStillAnswers) {
    gate->stop();
    start("", [](rules::RuleFile& rf, GateOptions&) {
        rf.vaults[0].location = "caf\xe9";
        rf.vaults[0].access_policies.clear();
    });
    auto r = curl("GET", "/secrets/db", bearer());
    ASSERT_EQ(r.code, 403) << r.body;
    auto j = json::parse(r.body);
    EXPECT_NE(j["error"]["message"].get<std::string>().find("location=caf\xef\xbf\xbd"), std::string::npos);
    EXPECT_EQ(audit_lines().back()["reason"], "policy_denied");
}

// Item 2: a fragment in the target is refused; the target forwarded is the
// normalised one the gate classified.
TEST_F(Proxy, FragmentRefusedAndNormalisedTargetForwarded) {
    RecordingServer up;
    restart_before(up);
    std::string auth = "Authorization: " + bearer() + "\r\n";
    auto r = raw("GET /secrets/x1#/../../keys/k HTTP/1.1\r\nHost: v\r\n" + auth + "\r\n");
    EXPECT_TRUE(starts(r.data, "HTTP/1.1 400")) << r.data;
    EXPECT_EQ(audit_lines().back()["reason"], "fragment_in_target");
    auto w = raw("POST /keys/k/wrapkey#/../unwrapkey HTTP/1.1\r\nHost: v\r\nContent-Length: 2\r\n" + auth +
                 "\r\n{}");
    EXPECT_TRUE(starts(w.data, "HTTP/1.1 400")) << w.data;
    EXPECT_TRUE(up.requests().empty());
    auto ok = raw("GET /secrets/db/?api-version=7.4 HTTP/1.1\r\nHost: v\r\nConnection: close\r\n" + auth + "\r\n");
    EXPECT_TRUE(starts(ok.data, "HTTP/1.1 200")) << ok.data;
    auto reqs = up.requests();
    ASSERT_EQ(reqs.size(), 1u);
    EXPECT_TRUE(starts(reqs[0], "GET /secrets/db?api-version=7.4 HTTP/1.1\r\n")) << reqs[0];
}

// Item 3: trailer fields never become headers (an Authorization or Host in
// the trailer): such a request is refused and reaches nobody.
TEST_F(Proxy, ChunkedTrailersRefused) {
    RecordingServer up;
    restart_before(up);
    std::string body = R"({"value":"t"})";
    char sz[16];
    std::snprintf(sz, sizeof sz, "%zx", body.size());
    std::string chunks = std::string(sz) + "\r\n" + body + "\r\n0\r\n";
    auto a = raw("PUT /secrets/t HTTP/1.1\r\nHost: v\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks +
                 "Authorization: " + bearer() + "\r\n\r\n");
    EXPECT_TRUE(starts(a.data, "HTTP/1.1 400")) << a.data;
    EXPECT_TRUE(a.closed);
    EXPECT_EQ(audit_lines().back()["reason"], "trailer_fields");
    auto h = raw("PUT /secrets/t HTTP/1.1\r\nHost: v\r\nAuthorization: " + bearer() +
                 "\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks +
                 "Host: evil.example\r\nX-HTTP-Method-Override: DELETE\r\n\r\n");
    EXPECT_TRUE(starts(h.data, "HTTP/1.1 400")) << h.data;
    EXPECT_TRUE(up.requests().empty());
}

// Item 4: two Authorization headers are refused (an upstream reading the
// last one would act as another identity than the one authenticated).
TEST_F(Proxy, TwoAuthorizationHeadersRefused) {
    RecordingServer up;
    restart_before(up);
    std::string other = "Bearer " + token(base_claims(kOidStorage, kAppStorage));
    auto r = raw("GET /secrets/db HTTP/1.1\r\nHost: v\r\nAuthorization: " + bearer() + "\r\nAuthorization: " + other +
                 "\r\n\r\n");
    EXPECT_TRUE(starts(r.data, "HTTP/1.1 400")) << r.data;
    EXPECT_EQ(audit_lines().back()["reason"], "duplicate_authorization");
    EXPECT_TRUE(up.requests().empty());
}

// Item 5: HTTP/1.1 needs exactly one Host; method-override headers never
// reach the upstream (the gate authorised the real method).
TEST_F(Proxy, HostRequiredOnceAndMethodOverridesStripped) {
    RecordingServer up;
    restart_before(up);
    std::string auth = "Authorization: " + bearer() + "\r\n";
    auto none = raw("GET /secrets/db HTTP/1.1\r\n" + auth + "\r\n");
    EXPECT_TRUE(starts(none.data, "HTTP/1.1 400")) << none.data;
    EXPECT_EQ(audit_lines().back()["reason"], "bad_host");
    auto two = raw("GET /secrets/db HTTP/1.1\r\nHost: v\r\nHost: evil.example\r\n" + auth + "\r\n");
    EXPECT_TRUE(starts(two.data, "HTTP/1.1 400")) << two.data;
    EXPECT_TRUE(up.requests().empty());
    // HTTP/1.0 may omit it.
    auto old = raw("GET /secrets/db HTTP/1.0\r\n" + auth + "\r\n");
    EXPECT_TRUE(starts(old.data, "HTTP/1.1 200")) << old.data;
    auto ov = raw("GET /secrets/db HTTP/1.1\r\nHost: v\r\nConnection: close\r\n" + auth +
                  "X-HTTP-Method-Override: DELETE\r\nX-HTTP-Method: DELETE\r\nx-method-override: PURGE\r\n\r\n");
    EXPECT_TRUE(starts(ov.data, "HTTP/1.1 200")) << ov.data;
    auto reqs = up.requests();
    ASSERT_EQ(reqs.size(), 2u);
    for (const auto& q : reqs) {
        EXPECT_FALSE(contains_nocase(q, "method")) << q;
        EXPECT_EQ(count(q, "\r\nHost: "), 1) << q;
    }
}

// Item 7: extension methods get an answer and an audit line, not an
// exception in the I/O thread and a dropped connection.
TEST_F(Proxy, ExtensionMethodsAnswered501AndAudited) {
    for (std::string m : {"FOO", "get", "BREW"}) {
        auto r = raw(m + " /secrets/db HTTP/1.1\r\nHost: v\r\nAuthorization: " + bearer() + "\r\n\r\n");
        EXPECT_TRUE(starts(r.data, "HTTP/1.1 501")) << m << ": " << r.data;
        auto last = audit_lines().back();
        EXPECT_EQ(last["status"], 501);
        EXPECT_EQ(last["method"], m);
        EXPECT_EQ(last["reason"], "unknown_method");
    }
    // The gate still serves.
    EXPECT_EQ(curl("GET", "/secrets/nosuch", bearer()).code, 404);
}

// Item 8: on a keep-alive connection the header deadline (read_timeout)
// starts at the first byte of every request, not only the first one: a
// second request dripped a byte at a time is cut like the first would be,
// long before the idle timeout.
TEST_F(Proxy, SlowlorisOnKeepAliveCutAtHeaderDeadline) {
    gate->stop();
    start("", [](rules::RuleFile&, GateOptions& o) {
        o.limits.read_timeout = 1500ms;
        o.limits.idle_timeout = 20000ms;
    });
    net::io_context ioc;
    ssl::context ctx(ssl::context::tls_client);
    ctx.load_verify_file(ca);
    ssl::stream<tcp::socket> s(ioc, ctx);
    s.next_layer().connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    s.handshake(ssl::stream_base::client);
    std::string first = "GET /secrets/db HTTP/1.1\r\nHost: v\r\n\r\n";  // 401, keep-alive
    net::write(s, net::buffer(first));
    std::string got;
    char buf[4096];
    while (got.find("}") == std::string::npos) got.append(buf, s.read_some(net::buffer(buf)));
    ASSERT_TRUE(starts(got, "HTTP/1.1 401")) << got;
    std::this_thread::sleep_for(500ms);  // idle a little: allowed
    std::string drip = "GET /secrets/db HTTP/1.1\r\nHost: v\r\nX-Slow: " + std::string(200, 'a');
    auto t0 = std::chrono::steady_clock::now();
    bool closed = false;
    for (char c : drip) {
        boost::system::error_code ec;
        net::write(s, net::buffer(&c, 1), ec);
        pollfd p{s.next_layer().native_handle(), POLLIN, 0};
        if (ec || ::poll(&p, 1, 100) > 0) {
            closed = true;
            break;
        }
        if (std::chrono::steady_clock::now() - t0 > 8s) break;
    }
    auto took = std::chrono::steady_clock::now() - t0;
    EXPECT_TRUE(closed);
    EXPECT_LT(took, 4000ms);
    EXPECT_GE(took, 1000ms);
}

// ---- The two-phase reconfiguration (Gate::prepare / Gate::commit) ----

namespace {
// A plain TCP connect to 127.0.0.1:port succeeds (something listens).
bool connects(std::uint16_t port) {
    net::io_context ioc;
    tcp::socket s(ioc);
    boost::system::error_code ec;
    s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port), ec);
    return !ec;
}
}  // namespace

TEST_F(Proxy, PrepareBindsWithoutTouchingWhatRunsAndCommitSwaps) {
    auto old_port = port;
    auto p2 = free_port();
    auto rf = rule_file(p2, "http://127.0.0.1:" + std::to_string(vault_port));
    rf.vaults[0].access_policies.clear();  // the new config denies
    auto prepared = gate->prepare(GateConfig::build(rf, options()));
    EXPECT_TRUE(connects(p2));  // bound and listening already...
    ASSERT_EQ(gate->listening(), std::vector<std::string>{"127.0.0.1:" + std::to_string(old_port)});
    EXPECT_EQ(curl("GET", "/secrets/nosuch", bearer()).code, 404);  // ...while the old config serves
    gate->commit(std::move(prepared));
    EXPECT_EQ(gate->listening(), std::vector<std::string>{"127.0.0.1:" + std::to_string(p2)});
    port = p2;
    auto denied = curl("GET", "/secrets/nosuch", bearer());
    EXPECT_EQ(denied.code, 403);
    EXPECT_EQ(json::parse(denied.body)["error"]["innererror"]["code"], "ForbiddenByPolicy");
    std::this_thread::sleep_for(100ms);  // the old listener closes on its strand
    EXPECT_FALSE(connects(old_port));
}

TEST_F(Proxy, PrepareFailureChangesNothing) {
    auto base = rule_file(port, "http://127.0.0.1:" + std::to_string(vault_port));
    // An endpoint that cannot be bound (another socket holds it).
    net::io_context ioc;
    tcp::acceptor busy(ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    auto busy_port = busy.local_endpoint().port();
    auto rf = base;
    rf.vaults[0].access_policies.clear();
    auto second = vault(kLoop, busy_port);
    second.name = "second";
    second.upstream = rf.vaults[0].upstream;
    rf.vaults.push_back(second);
    try {
        gate->prepare(GateConfig::build(rf, options()));
        ADD_FAILURE() << "prepare did not throw";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("127.0.0.1:" + std::to_string(busy_port)), std::string::npos)
            << e.what();
    }
    // A TLS context with no certificate (GateConfig::build refuses a bad
    // certificate file itself: checked by BuildErrorsAreOneLine).
    auto no_cert = std::make_shared<GateConfig>(*GateConfig::build(rf, options()));
    no_cert->tls = std::make_shared<ssl::context>(ssl::context::tls_server);
    try {
        gate->prepare(no_cert);
        ADD_FAILURE() << "prepare did not throw";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("server.pem"), std::string::npos) << e.what();
    }
    // An audit log that cannot be opened.
    auto bad_audit = base;
    bad_audit.gate->audit_log = dir + "/no/such/dir/audit.jsonl";
    EXPECT_THROW(gate->prepare(GateConfig::build(bad_audit, options())), std::runtime_error);
    // The running gate is as it was: same endpoint, same (allowing) config.
    EXPECT_EQ(gate->listening(), std::vector<std::string>{"127.0.0.1:" + std::to_string(port)});
    EXPECT_EQ(curl("GET", "/secrets/nosuch", bearer()).code, 404);
    // A dropped Prepared gives its sockets back.
    auto p3 = free_port();
    gate->prepare(GateConfig::build(rule_file(p3, base.vaults[0].upstream), options()));
    tcp::acceptor again(ioc);
    again.open(tcp::v4());
    boost::system::error_code ec;
    again.bind(tcp::endpoint(net::ip::make_address("127.0.0.1"), p3), ec);
    EXPECT_FALSE(ec) << ec.message();
}

TEST_F(Proxy, CommitStartsAGateNotStartedYet) {
    gate->stop();
    port = free_port();
    auto cfg = GateConfig::build(rule_file(port, "http://127.0.0.1:" + std::to_string(vault_port)), options());
    gate = std::make_unique<Gate>(nullptr, 2);
    EXPECT_TRUE(gate->listening().empty());
    gate->commit(gate->prepare(cfg));
    EXPECT_EQ(gate->listening(), std::vector<std::string>{"127.0.0.1:" + std::to_string(port)});
    EXPECT_EQ(curl("GET", "/secrets/nosuch", bearer()).code, 404);
}
