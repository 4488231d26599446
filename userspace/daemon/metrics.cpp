#include "daemon/metrics.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "rules/ipv4.hpp"

namespace vaultwall::daemon {

std::string prom_escape(const std::string& s) {
    std::string out;
    for (char c : s) {
        if (c == '\\' || c == '"') out += '\\';
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        out += c;
    }
    return out;
}

MetricsServer::MetricsServer(std::string listen, Render render)
    : listen_(std::move(listen)), render_(std::move(render)) {}

MetricsServer::~MetricsServer() { stop(); }

void MetricsServer::start() {
    auto colon = listen_.rfind(':');
    if (colon == std::string::npos) throw std::runtime_error("metrics: expected IP:PORT, got " + listen_);
    auto ip = rules::parse_ipv4(listen_.substr(0, colon));
    int port = 0;
    try {
        port = std::stoi(listen_.substr(colon + 1));
    } catch (...) {
    }
    if (!ip || port <= 0 || port > 65535)
        throw std::runtime_error("metrics: expected IPv4:PORT, got " + listen_);
    if ((*ip >> 24) != 127)
        throw std::runtime_error("metrics: " + listen_ + " is not a loopback address (127.0.0.0/8)");
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error(std::string("metrics: socket: ") + std::strerror(errno));
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(*ip);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || ::listen(fd_, 16) != 0) {
        std::string msg = "metrics: cannot listen on " + listen_ + ": " + std::strerror(errno);
        ::close(fd_);
        fd_ = -1;
        throw std::runtime_error(msg);
    }
    if (::pipe2(stop_pipe_, O_CLOEXEC) != 0)
        throw std::runtime_error(std::string("metrics: pipe: ") + std::strerror(errno));
    thread_ = std::thread([this] { loop(); });
}

void MetricsServer::stop() {
    if (stop_pipe_[1] >= 0) {
        char c = 1;
        (void)!::write(stop_pipe_[1], &c, 1);
    }
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    for (int& f : stop_pipe_)
        if (f >= 0) {
            ::close(f);
            f = -1;
        }
}

void MetricsServer::loop() {
    for (;;) {
        pollfd p[2] = {{fd_, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
        if (::poll(p, 2, -1) < 0) {
            if (errno == EINTR) continue;
            return;
        }
        if (p[1].revents) return;
        int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) continue;
        serve(c);
        ::close(c);
    }
}

void MetricsServer::serve(int c) {
    // Read the request head (bounded in size and time), answer, close.
    std::string req;
    char buf[2048];
    while (req.find("\r\n\r\n") == std::string::npos && req.find("\n\n") == std::string::npos &&
           req.size() < 8192) {
        pollfd p{c, POLLIN, 0};
        if (::poll(&p, 1, 2000) <= 0) return;
        ssize_t n = ::recv(c, buf, sizeof(buf), 0);
        if (n <= 0) break;
        req.append(buf, static_cast<std::size_t>(n));
    }
    std::string status = "200 OK", body, type = "text/plain; version=0.0.4; charset=utf-8";
    auto sp1 = req.find(' ');
    auto sp2 = sp1 == std::string::npos ? sp1 : req.find(' ', sp1 + 1);
    std::string method = req.substr(0, sp1);
    std::string target = sp2 == std::string::npos ? "" : req.substr(sp1 + 1, sp2 - sp1 - 1);
    if (method != "GET" && method != "HEAD") {
        status = "405 Method Not Allowed";
        body = "GET only\n";
        type = "text/plain";
    } else if (target != "/metrics" && target != "/") {
        status = "404 Not Found";
        body = "try /metrics\n";
        type = "text/plain";
    } else {
        try {
            body = render_();
        } catch (const std::exception& e) {
            status = "500 Internal Server Error";
            body = std::string(e.what()) + "\n";
            spdlog::warn("metrics: {}", e.what());
        }
    }
    std::string resp = "HTTP/1.0 " + status + "\r\nContent-Type: " + type +
                       "\r\nContent-Length: " + std::to_string(body.size()) +
                       "\r\nConnection: close\r\n\r\n";
    if (method != "HEAD") resp += body;
    std::size_t off = 0;
    while (off < resp.size()) {
        ssize_t n = ::send(c, resp.data() + off, resp.size() - off, MSG_NOSIGNAL);
        if (n <= 0) return;
        off += static_cast<std::size_t>(n);
    }
}

}  // namespace vaultwall::daemon
