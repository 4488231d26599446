// GateLimits::max_connections and the memory an idle TLS connection costs.
//
// The clients live in a forked child process (plain blocking OpenSSL, no
// threads) so the parent's RSS is the gate's alone.
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <malloc.h>
#include <poll.h>
#include <unistd.h>

#include <utility>  // before Boost 1.74 asio (awaitable.hpp needs std::exchange)
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio.hpp>
#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "gate/proxy.hpp"
#include "rules/ipv4.hpp"
#include "support.hpp"

using namespace vaultwall;
using namespace vaultwall::gate;
using namespace vwtest;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;

namespace {

long rss_kib() {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    return -1;
}

// A blocking TLS client connection (no certificate check: the lab CA is not
// the point here).
struct Client {
    int fd = -1;
    SSL* ssl = nullptr;
    ~Client() { reset(); }
    void reset() {
        if (ssl) SSL_free(ssl);
        if (fd >= 0) ::close(fd);
        ssl = nullptr;
        fd = -1;
    }
    bool connect(SSL_CTX* ctx, std::uint16_t port) {
        fd = ::socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) return false;
        timeval tv{5, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(0x7F000001);
        if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return false;
        ssl = SSL_new(ctx);
        SSL_set_fd(ssl, fd);
        return SSL_connect(ssl) == 1;
    }
    // One request without a token: the gate answers the 401 challenge and keeps the connection.
    bool request_ok() {
        std::string req = "GET /secrets/s1?api-version=7.4 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
        if (SSL_write(ssl, req.data(), (int)req.size()) != (int)req.size()) return false;
        std::string got;
        char buf[4096];
        for (;;) {
            auto hdr_end = got.find("\r\n\r\n");
            if (hdr_end != std::string::npos) {
                auto cl = got.find("Content-Length: ");
                if (cl == std::string::npos) cl = got.find("content-length: ");
                if (cl != std::string::npos && got.size() >= hdr_end + 4 + std::stoul(got.substr(cl + 16)))
                    return got.rfind("HTTP/1.1 401", 0) == 0;
            }
            int n = SSL_read(ssl, buf, sizeof buf);
            if (n <= 0) return false;
            got.append(buf, n);
        }
    }
    // True when the server has closed this connection (EOF or reset) within `max`.
    bool closed_by_server(std::chrono::milliseconds max) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, (int)max.count()) <= 0) return false;
        char c;
        return ::recv(fd, &c, 1, MSG_DONTWAIT) <= 0;
    }
};

SSL_CTX* client_ctx() {
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    return ctx;
}

void raise_fd_limit(rlim_t want) {
    rlimit rl{};
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = std::min(std::max(rl.rlim_cur, want), rl.rlim_max);
    setrlimit(RLIMIT_NOFILE, &rl);
}

rlim_t fd_limit() {
    rlimit rl{};
    getrlimit(RLIMIT_NOFILE, &rl);
    return rl.rlim_cur;
}

class Limits : public ::testing::Test {
protected:
    std::string dir;
    std::uint16_t port = 0;
    std::unique_ptr<Gate> gate;

    void SetUp() override {
        signal(SIGPIPE, SIG_IGN);
        dir = temp_dir("limits");
        make_lab_pki(dir);
        write_file(dir + "/jwks.json", keys().jwks);
    }
    void TearDown() override {
        if (gate) gate->stop();
        std::system(("rm -rf '" + dir + "'").c_str());
    }
    void start(std::size_t max_connections) {
        port = free_port();
        rules::RuleFile rf;
        rf.path = dir + "/rules.yaml";
        rf.identity = identity(dir + "/jwks.json");
        rf.trusted_services = catalog();
        rf.gate = rules::Gate{dir + "/server.pem", dir + "/server.key", dir + "/audit.jsonl"};
        auto v = vault(0x7F000001, port);
        v.ip_rules.push_back({rules::parse_ipv4_prefix("127.0.0.0/8")->prefix, {}});
        rf.vaults.push_back(v);
        GateOptions o;
        o.limits.max_connections = max_connections;
        gate = std::make_unique<Gate>(GateConfig::build(rf, o), 2);
        gate->start();
    }
    bool wait_active(std::uint64_t n, std::chrono::milliseconds max) {
        auto end = std::chrono::steady_clock::now() + max;
        while (gate->stats().connections_active != n) {
            if (std::chrono::steady_clock::now() > end) return false;
            std::this_thread::sleep_for(10ms);
        }
        return true;
    }
};

TEST_F(Limits, ConnectionsBeyondTheLimitAreClosedWhileExistingOnesKeepWorking) {
    start(8);
    SSL_CTX* ctx = client_ctx();
    std::vector<std::unique_ptr<Client>> held;
    for (int i = 0; i < 8; ++i) {
        held.push_back(std::make_unique<Client>());
        ASSERT_TRUE(held.back()->connect(ctx, port)) << "connection " << i;
        ASSERT_TRUE(held.back()->request_ok()) << "connection " << i;
    }
    ASSERT_TRUE(wait_active(8, 2s));

    // Four more: accepted by the kernel, closed by the gate at once (the TLS
    // handshake fails), counted as rejected.
    for (int i = 0; i < 4; ++i) {
        Client extra;
        EXPECT_FALSE(extra.connect(ctx, port) && extra.request_ok()) << "extra connection " << i << " was served";
    }
    EXPECT_EQ(gate->stats().connections_rejected, 4u);
    EXPECT_EQ(gate->stats().connections_active, 8u);

    // The eight keep working (keep-alive, another request each).
    for (auto& c : held) EXPECT_TRUE(c->request_ok());

    // Closing two frees two slots.
    held[0].reset();
    held[1].reset();
    ASSERT_TRUE(wait_active(6, 5s)) << gate->stats().connections_active;
    for (int i = 0; i < 2; ++i) {
        held.push_back(std::make_unique<Client>());
        EXPECT_TRUE(held.back()->connect(ctx, port) && held.back()->request_ok());
    }
    Client over;
    EXPECT_FALSE(over.connect(ctx, port) && over.request_ok());
    EXPECT_EQ(gate->stats().connections_rejected, 5u);
    for (auto it = held.begin() + 2; it != held.end(); ++it) EXPECT_TRUE((*it)->request_ok());
    SSL_CTX_free(ctx);
}

// RSS growth of the gate per idle TLS connection (handshake done, one
// request answered, waiting for the next). Measured on Debian 12 (OpenSSL
// 3.0, Boost 1.74, glibc 2.36), 2 gate threads, 2,000 connections: about
// 76 KiB per connection. Nearly all of it is asio::ssl::stream: its
// stream_core holds two 17 KiB record buffers and its engine a BIO pair with
// two more 17 KiB buffers (~68 KiB, fixed, not configurable in Boost 1.74);
// OpenSSL's own buffers are released while idle (SSL_MODE_RELEASE_BUFFERS)
// and the session drops its message/parser memory between requests. The
// benchmark issue's target (<= 30 KiB) needs a TLS stream without those
// buffers (SSL_set_fd-style, driven by socket readiness). The assertion below
// is a generous regression bound, not the target.
TEST_F(Limits, IdleTlsConnectionMemoryIsBounded) {
    int n = 2000;
    raise_fd_limit(2 * n + 256);
    if (fd_limit() < (rlim_t)(n + 256)) n = (int)fd_limit() - 256;  // the child has its own copy of the limit
    ASSERT_GE(n, 500) << "RLIMIT_NOFILE too low for this test: " << fd_limit();
    const int warm = 50;

    int to_child[2], from_child[2];
    ASSERT_EQ(pipe(to_child), 0);
    ASSERT_EQ(pipe(from_child), 0);
    pid_t child = fork();  // before the gate starts any thread
    if (child == 0) {
        ::close(to_child[1]);
        ::close(from_child[0]);
        std::uint16_t p = 0;
        if (::read(to_child[0], &p, sizeof p) != sizeof p) _exit(2);
        SSL_CTX* ctx = client_ctx();
        std::vector<Client> cs(warm + n);
        auto open = [&](int from, int to) {
            for (int i = from; i < to; ++i)
                if (!cs[i].connect(ctx, p) || !cs[i].request_ok()) return false;
            return true;
        };
        char ok = open(0, warm) ? 1 : 0;
        if (::write(from_child[1], &ok, 1) != 1) _exit(3);
        char go;
        if (::read(to_child[0], &go, 1) != 1) _exit(4);
        ok = open(warm, warm + n) ? 1 : 0;
        if (::write(from_child[1], &ok, 1) != 1) _exit(5);
        if (::read(to_child[0], &go, 1) != 1) _exit(6);  // hold until told
        _exit(0);
    }
    ::close(to_child[0]);
    ::close(from_child[1]);
    struct Reap {
        pid_t pid;
        ~Reap() {
            kill(pid, SIGKILL);
            waitpid(pid, nullptr, 0);
        }
    } reap{child};

    start(n + warm + 10);
    ASSERT_EQ(::write(to_child[1], &port, sizeof port), (ssize_t)sizeof port);
    char ok = 0;
    ASSERT_EQ(::read(from_child[0], &ok, 1), 1);
    ASSERT_EQ(ok, 1) << "warm-up connections failed";
    ASSERT_TRUE(wait_active(warm, 5s));
    std::this_thread::sleep_for(200ms);
    long before = rss_kib();
    auto heap_before = mallinfo2().uordblks;

    ASSERT_EQ(::write(to_child[1], "g", 1), 1);
    ASSERT_EQ(::read(from_child[0], &ok, 1), 1);
    ASSERT_EQ(ok, 1) << "not all " << n << " connections were served";
    ASSERT_TRUE(wait_active(warm + n, 10s)) << gate->stats().connections_active;
    std::this_thread::sleep_for(200ms);
    long after = rss_kib();
    auto heap_after = mallinfo2().uordblks;
    double per_conn = double(after - before) / n;
    std::printf("gate RSS: %ld KiB before, %ld KiB with %d more idle TLS connections: %.1f KiB per connection "
                "(malloc in use: %.1f KiB per connection)\n",
                before, after, n, per_conn, double(heap_after - heap_before) / 1024 / n);
    RecordProperty("rss_kib_per_idle_tls_connection", std::to_string(per_conn));
    EXPECT_LT(per_conn, 128.0) << "idle TLS connections cost more memory than before";
    EXPECT_EQ(gate->stats().connections_rejected, 0u);

    ASSERT_EQ(::write(to_child[1], "x", 1), 1);
}

}  // namespace
