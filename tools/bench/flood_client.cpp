// vaultwall-flood-client: legitimate clients for tools/bench/flood.sh. Each
// thread, in a loop until the time is up: a new TCP connection, a full TLS
// handshake, one GET with a bearer token, the whole answer read, close. A
// request succeeds when it answers 200 within --timeout-ms of its start
// (connect included: a SYN lost to a full backlog shows as a slow or failed
// request, which is what a SYN flood does to callers). New connections, not
// keep-alive: a flood from denied sources threatens connection set-up.
//
//   vaultwall-flood-client --addr IP:PORT --host NAME --path /secrets/x
//                          --token-file FILE --seconds S [--threads N] [--timeout-ms MS]
//
// Prints one JSON object: requests, ok, success_rate, p50_ms, p99_ms, max_ms,
// and the failures by kind (connect, tls, timeout, status).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

namespace {

using Clock = std::chrono::steady_clock;

enum class Outcome { ok, connect, tls, timeout, status };

struct Options {
    sockaddr_in addr{};
    std::string host, path, token;
    std::chrono::milliseconds timeout{2000};
};

// Milliseconds left until `deadline`, at least 1.
int left_ms(Clock::time_point deadline) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    return ms < 1 ? 1 : int(ms);
}

// Waits until `fd` is readable/writable or the deadline passes.
bool wait_fd(int fd, short events, Clock::time_point deadline) {
    pollfd p{fd, events, 0};
    return ::poll(&p, 1, left_ms(deadline)) == 1;
}

Outcome one_request(SSL_CTX* ctx, const Options& o, const std::string& request) {
    const auto deadline = Clock::now() + o.timeout;
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) return Outcome::connect;
    struct Closer {
        int fd;
        SSL* ssl = nullptr;
        ~Closer() {
            if (ssl) SSL_free(ssl);
            ::close(fd);
        }
    } closer{fd};
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&o.addr), sizeof o.addr) != 0) {
        if (errno != EINPROGRESS) return Outcome::connect;
        if (!wait_fd(fd, POLLOUT, deadline)) return Outcome::timeout;
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) return Outcome::connect;
    }
    SSL* ssl = SSL_new(ctx);
    closer.ssl = ssl;
    SSL_set_fd(ssl, fd);
    SSL_set_tlsext_host_name(ssl, o.host.c_str());
    // Non-blocking OpenSSL: every step waits on poll() within the deadline.
    auto drive = [&](auto step) -> int {
        for (;;) {
            int r = step();
            if (r > 0) return r;
            int e = SSL_get_error(ssl, r);
            if (e == SSL_ERROR_WANT_READ) {
                if (!wait_fd(fd, POLLIN, deadline)) return -2;
            } else if (e == SSL_ERROR_WANT_WRITE) {
                if (!wait_fd(fd, POLLOUT, deadline)) return -2;
            } else {
                return e == SSL_ERROR_ZERO_RETURN ? 0 : -1;
            }
        }
    };
    int r = drive([&] { return SSL_connect(ssl); });
    if (r == -2) return Outcome::timeout;
    if (r <= 0) return Outcome::tls;
    std::size_t off = 0;
    while (off < request.size()) {
        r = drive([&] { return SSL_write(ssl, request.data() + off, int(request.size() - off)); });
        if (r == -2) return Outcome::timeout;
        if (r <= 0) return Outcome::tls;
        off += std::size_t(r);
    }
    std::string answer;
    char buf[8192];
    for (;;) {
        r = drive([&] { return SSL_read(ssl, buf, sizeof buf); });
        if (r == -2) return Outcome::timeout;
        if (r <= 0) break;  // close_notify or the connection closed: the answer is complete
        answer.append(buf, std::size_t(r));
    }
    return answer.rfind("HTTP/1.1 200 ", 0) == 0 ? Outcome::ok : Outcome::status;
}

double percentile(std::vector<double>& v, double p) {
    if (v.empty()) return 0;
    std::size_t k = std::min(v.size() - 1, std::size_t(p * double(v.size())));
    std::nth_element(v.begin(), v.begin() + std::ptrdiff_t(k), v.end());
    return v[k];
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"vaultwall-flood-client: legitimate TLS clients for tools/bench/flood.sh"};
    std::string addr, token_file;
    Options o;
    double seconds = 10;
    unsigned threads = 2;
    int timeout_ms = 2000;
    app.add_option("--addr", addr, "gate endpoint IP:PORT")->required();
    app.add_option("--host", o.host, "TLS server name and Host header")->required();
    app.add_option("--path", o.path, "request path, e.g. /secrets/db")->required();
    app.add_option("--token-file", token_file, "file holding a bearer token")->required();
    app.add_option("--seconds", seconds, "how long to run")->check(CLI::PositiveNumber);
    app.add_option("--threads", threads, "client threads (one request in flight each)")->check(CLI::Range(1, 256));
    app.add_option("--timeout-ms", timeout_ms, "a request slower than this fails")->check(CLI::Range(1, 600000));
    CLI11_PARSE(app, argc, argv);

    auto colon = addr.rfind(':');
    if (colon == std::string::npos || inet_pton(AF_INET, addr.substr(0, colon).c_str(), &o.addr.sin_addr) != 1) {
        std::fprintf(stderr, "vaultwall-flood-client: --addr wants IPv4:PORT, not '%s'\n", addr.c_str());
        return 2;
    }
    o.addr.sin_family = AF_INET;
    o.addr.sin_port = htons(std::uint16_t(std::atoi(addr.c_str() + colon + 1)));
    std::ifstream tf(token_file);
    std::getline(tf, o.token);
    if (o.token.empty()) {
        std::fprintf(stderr, "vaultwall-flood-client: no token in %s\n", token_file.c_str());
        return 2;
    }
    o.timeout = std::chrono::milliseconds(timeout_ms);
    signal(SIGPIPE, SIG_IGN);
    const std::string request = "GET " + o.path + "?api-version=7.4 HTTP/1.1\r\nHost: " + o.host +
                                "\r\nAuthorization: Bearer " + o.token + "\r\nConnection: close\r\n\r\n";

    // The lab's server certificate is not checked: the client measures
    // service, the gate's TLS is tested elsewhere.
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);  // a full handshake each time

    std::mutex mu;
    std::vector<double> latencies;  // ms, successful requests
    std::size_t counts[5] = {};
    const auto end = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    std::vector<std::thread> pool;
    for (unsigned t = 0; t < threads; ++t)
        pool.emplace_back([&] {
            std::vector<double> mine;
            std::size_t c[5] = {};
            while (Clock::now() < end) {
                auto t0 = Clock::now();
                Outcome out = one_request(ctx, o, request);
                double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
                ++c[int(out)];
                if (out == Outcome::ok) mine.push_back(ms);
                ERR_clear_error();
            }
            std::lock_guard lock(mu);
            latencies.insert(latencies.end(), mine.begin(), mine.end());
            for (int i = 0; i < 5; ++i) counts[i] += c[i];
        });
    for (auto& th : pool) th.join();

    std::size_t total = 0;
    for (auto n : counts) total += n;
    nlohmann::json j;
    j["requests"] = total;
    j["ok"] = counts[0];
    j["success_rate"] = total ? double(counts[0]) / double(total) : 0.0;
    j["p50_ms"] = percentile(latencies, 0.50);
    j["p99_ms"] = percentile(latencies, 0.99);
    j["max_ms"] = latencies.empty() ? 0.0 : *std::max_element(latencies.begin(), latencies.end());
    j["failed"] = {{"connect", counts[1]}, {"tls", counts[2]}, {"timeout", counts[3]}, {"status", counts[4]}};
    std::printf("%s\n", j.dump().c_str());
    SSL_CTX_free(ctx);
    return 0;
}
