// The control socket: a Unix stream socket speaking JSON lines. Each request
// is one JSON object on one line ({"cmd":"reload",...}); each answer is one
// JSON object on one line ({"ok":true,...} or {"ok":false,"error":"..."}).
// The server learns the peer's credentials (SO_PEERCRED) and hands them to
// the handler, which decides what that peer may do.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace vaultwall::daemon {

using Json = nlohmann::ordered_json;

inline constexpr const char* kDefaultSocket = "/run/vaultwall/ctl.sock";

// Every JSON the daemon and vaultwallctl write goes through this. Strings
// that are not UTF-8 (a Latin-1 vault name, a path, a diagnostic quoting a
// rule file's bytes) have each bad byte replaced by U+FFFD rather than
// throwing: an answer or a status line must never fail to be written.
std::string dump_json(const Json& j, int indent = -1);

// Reports of a long request (a reload) sent to the client as they happen,
// each as a line {"progress":{...}} before the answer.
using Progress = std::function<void(const Json&)>;

struct Peer {
    pid_t pid = 0;
    uid_t uid = 0;
    gid_t gid = 0;
    std::vector<gid_t> groups;  // supplementary groups (from /proc/PID/status)
    bool in_group(gid_t g) const;
};

class ControlServer {
public:
    using Handler = std::function<Json(const Json& request, const Peer& peer, const Progress& progress)>;

    // group: when set, the socket is root:group mode 0660, else root-only 0600.
    ControlServer(std::string path, std::optional<gid_t> group, Handler handler);
    ~ControlServer();
    ControlServer(const ControlServer&) = delete;
    ControlServer& operator=(const ControlServer&) = delete;

    // Creates the socket (and its directory); refuses when another daemon
    // answers on it; replaces a stale one. Throws std::runtime_error.
    void start();
    void stop();  // closes the socket, joins every thread, removes the file
    const std::string& path() const { return path_; }

private:
    void accept_loop();
    void serve(int fd);

    std::string path_;
    std::optional<gid_t> group_;
    Handler handler_;
    int listen_fd_ = -1;
    int stop_pipe_[2] = {-1, -1};
    std::thread acceptor_;
    std::mutex mu_;
    std::condition_variable idle_;
    std::atomic<int> active_{0};
};

// Nothing answers on the socket (no file, or nobody listening).
class DaemonNotRunning : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Client side: one request, one answer. Throws std::runtime_error with a
// one-line message (daemon not running, permission denied, timeout...).
// `timeout` runs from the request or from the last progress line, which go
// to `on_progress`: a long reload that keeps reporting is never given up on.
Json control_request(const std::string& path, const Json& request,
                     std::chrono::milliseconds timeout = std::chrono::seconds(60),
                     const Progress& on_progress = {});

}  // namespace vaultwall::daemon
