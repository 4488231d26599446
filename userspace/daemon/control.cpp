#include "daemon/control.hpp"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <spdlog/spdlog.h>

namespace vaultwall::daemon {

namespace fs = std::filesystem;

namespace {

constexpr std::size_t kMaxLine = 1 << 20;
constexpr int kMaxClients = 64;
constexpr int kIdleTimeoutMs = 300'000;

std::string errno_str(const std::string& what) { return what + ": " + std::strerror(errno); }

sockaddr_un make_addr(const std::string& path) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (path.size() >= sizeof(a.sun_path)) throw std::runtime_error("socket path too long: " + path);
    std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
    return a;
}

std::vector<gid_t> proc_groups(pid_t pid) {
    std::vector<gid_t> out;
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("Groups:", 0) == 0) {
            std::istringstream is(line.substr(7));
            long g;
            while (is >> g) out.push_back(static_cast<gid_t>(g));
            break;
        }
    }
    return out;
}

bool write_all(int fd, const std::string& s) {
    std::size_t off = 0;
    while (off < s.size()) {
        ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        off += static_cast<std::size_t>(n);
    }
    return true;
}

}  // namespace

std::string dump_json(const Json& j, int indent) {
    return j.dump(indent, ' ', false, Json::error_handler_t::replace);
}

bool Peer::in_group(gid_t g) const {
    return gid == g || std::find(groups.begin(), groups.end(), g) != groups.end();
}

ControlServer::ControlServer(std::string path, std::optional<gid_t> group, Handler handler)
    : path_(std::move(path)), group_(group), handler_(std::move(handler)) {}

ControlServer::~ControlServer() { stop(); }

void ControlServer::start() {
    auto addr = make_addr(path_);
    std::error_code ec;
    fs::path dir = fs::path(path_).parent_path();
    if (!dir.empty() && !fs::exists(dir)) {
        fs::create_directories(dir, ec);
        if (ec) throw std::runtime_error("cannot create " + dir.string() + ": " + ec.message());
        ::chmod(dir.c_str(), 0755);
    }
    // Someone answering on the path: another daemon. Nobody: a stale socket.
    if (fs::exists(path_, ec)) {
        int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        bool alive = probe >= 0 &&
                     ::connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
        if (probe >= 0) ::close(probe);
        if (alive) throw std::runtime_error("another vaultwalld is serving " + path_);
        fs::remove(path_, ec);
    }
    listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listen_fd_ < 0) throw std::runtime_error(errno_str("socket"));
    mode_t old = ::umask(0177);
    int rc = ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    ::umask(old);
    if (rc != 0) {
        auto msg = errno_str("cannot bind " + path_);
        ::close(listen_fd_);
        listen_fd_ = -1;
        throw std::runtime_error(msg);
    }
    if (group_) {
        if (::chown(path_.c_str(), 0, *group_) != 0 || ::chmod(path_.c_str(), 0660) != 0)
            throw std::runtime_error(errno_str("cannot set owner/mode of " + path_));
    } else if (::chmod(path_.c_str(), 0600) != 0) {
        throw std::runtime_error(errno_str("cannot set mode of " + path_));
    }
    if (::listen(listen_fd_, 64) != 0) throw std::runtime_error(errno_str("listen " + path_));
    if (::pipe2(stop_pipe_, O_CLOEXEC) != 0) throw std::runtime_error(errno_str("pipe"));
    acceptor_ = std::thread([this] { accept_loop(); });
}

void ControlServer::stop() {
    if (stop_pipe_[1] >= 0) {
        char c = 1;
        (void)!::write(stop_pipe_[1], &c, 1);
    }
    if (acceptor_.joinable()) acceptor_.join();
    {
        std::unique_lock lk(mu_);
        idle_.wait(lk, [this] { return active_.load() == 0; });
    }
    if (listen_fd_ >= 0) {
        ::close(listen_fd_);
        listen_fd_ = -1;
        std::error_code ec;
        fs::remove(path_, ec);
    }
    for (int& fd : stop_pipe_)
        if (fd >= 0) {
            ::close(fd);
            fd = -1;
        }
}

void ControlServer::accept_loop() {
    for (;;) {
        pollfd p[2] = {{listen_fd_, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
        if (::poll(p, 2, -1) < 0) {
            if (errno == EINTR) continue;
            spdlog::error("control socket: poll: {}", std::strerror(errno));
            return;
        }
        if (p[1].revents) return;
        if (!(p[0].revents & POLLIN)) continue;
        int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) continue;
        if (active_.load() >= kMaxClients) {
            write_all(fd, dump_json({{"ok", false}, {"error", "too many control connections"}}) + "\n");
            ::close(fd);
            continue;
        }
        ++active_;
        std::thread([this, fd] {
            // Nothing a peer sends may end the daemon: an exception leaving
            // this thread would std::terminate it, gate and all.
            try {
                serve(fd);
            } catch (const std::exception& e) {
                spdlog::error("control connection: {}", e.what());
            } catch (...) {
                spdlog::error("control connection: unexpected exception");
            }
            ::close(fd);
            std::lock_guard lk(mu_);
            --active_;
            idle_.notify_all();
        }).detach();
    }
}

void ControlServer::serve(int fd) {
    Peer peer;
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return;
    peer.pid = cred.pid;
    peer.uid = cred.uid;
    peer.gid = cred.gid;
    peer.groups = proc_groups(cred.pid);

    std::string buf;
    char chunk[4096];
    for (;;) {
        pollfd p[2] = {{fd, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
        int rc = ::poll(p, 2, kIdleTimeoutMs);
        if (rc < 0 && errno == EINTR) continue;
        if (rc <= 0 || p[1].revents) return;
        ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
        if (n <= 0) return;
        buf.append(chunk, static_cast<std::size_t>(n));
        std::size_t nl;
        while ((nl = buf.find('\n')) != std::string::npos) {
            std::string line = buf.substr(0, nl);
            buf.erase(0, nl + 1);
            if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
            Json answer;
            try {
                Json req = Json::parse(line);
                if (!req.is_object()) throw std::invalid_argument("a request is a JSON object");
                // Progress lines go out as the handler runs; a client gone
                // mid-way does not stop the work (a reload completes).
                bool client_gone = false;
                Progress progress = [&](const Json& p) {
                    if (!client_gone) client_gone = !write_all(fd, dump_json({{"progress", p}}) + "\n");
                };
                answer = handler_(req, peer, progress);
            } catch (const Json::exception& e) {
                answer = {{"ok", false}, {"error", std::string("bad request: ") + e.what()}};
            } catch (const std::exception& e) {
                answer = {{"ok", false}, {"error", e.what()}};
            } catch (...) {
                answer = {{"ok", false}, {"error", "internal error"}};
            }
            if (!write_all(fd, dump_json(answer) + "\n")) return;
        }
        if (buf.size() > kMaxLine) {
            write_all(fd, dump_json({{"ok", false}, {"error", "request line too long"}}) + "\n");
            return;
        }
    }
}

Json control_request(const std::string& path, const Json& request,
                     std::chrono::milliseconds timeout, const Progress& on_progress) {
    auto addr = make_addr(path);
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error(errno_str("socket"));
    struct Closer {
        int fd;
        ~Closer() { ::close(fd); }
    } closer{fd};
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
        if (errno == ENOENT || errno == ECONNREFUSED)
            throw DaemonNotRunning("vaultwalld is not running (nothing answers on " + path + ")");
        if (errno == EACCES || errno == EPERM)
            throw std::runtime_error("permission denied on " + path +
                                     " (run as root or as a member of the daemon's control group)");
        throw std::runtime_error(errno_str("cannot connect to " + path));
    }
    if (!write_all(fd, dump_json(request) + "\n"))
        throw std::runtime_error(errno_str("cannot send to " + path));
    std::string buf;
    char chunk[65536];
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) throw std::runtime_error("no answer from vaultwalld within " +
                                                        std::to_string(timeout.count() / 1000) + " s");
        pollfd p{fd, POLLIN, 0};
        int rc = ::poll(&p, 1, static_cast<int>(left.count()));
        if (rc < 0 && errno == EINTR) continue;
        if (rc <= 0) continue;
        ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) throw std::runtime_error("vaultwalld closed the connection without answering");
        buf.append(chunk, static_cast<std::size_t>(n));
        for (std::size_t nl; (nl = buf.find('\n')) != std::string::npos;) {
            Json line;
            try {
                line = Json::parse(buf.substr(0, nl));
            } catch (const Json::exception&) {
                throw std::runtime_error("vaultwalld sent an answer that is not JSON");
            }
            buf.erase(0, nl + 1);
            if (!line.is_object() || !line.contains("progress") || line.contains("ok")) return line;
            deadline = std::chrono::steady_clock::now() + timeout;  // still making progress
            if (on_progress) on_progress(line["progress"]);
        }
    }
}

}  // namespace vaultwall::daemon
