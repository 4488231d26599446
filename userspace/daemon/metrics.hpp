// A tiny blocking HTTP/1.0 responder for Prometheus on a loopback address:
// GET /metrics (or /) answers the text exposition format, anything else 404.
#pragma once

#include <functional>
#include <string>
#include <thread>

namespace vaultwall::daemon {

class MetricsServer {
public:
    using Render = std::function<std::string()>;
    // listen: "127.0.0.1:9469". Only loopback addresses are accepted.
    MetricsServer(std::string listen, Render render);
    ~MetricsServer();
    MetricsServer(const MetricsServer&) = delete;
    MetricsServer& operator=(const MetricsServer&) = delete;

    void start();  // throws std::runtime_error (bad address, not loopback, bind failure)
    void stop();
    const std::string& listen() const { return listen_; }

private:
    void loop();
    void serve(int fd);

    std::string listen_;
    Render render_;
    int fd_ = -1;
    int stop_pipe_[2] = {-1, -1};
    std::thread thread_;
};

// Escapes a Prometheus label value.
std::string prom_escape(const std::string& s);

}  // namespace vaultwall::daemon
