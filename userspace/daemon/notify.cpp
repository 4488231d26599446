#include "daemon/notify.hpp"

#include <systemd/sd-daemon.h>

#include <cstring>

#include <spdlog/spdlog.h>

namespace vaultwall::daemon {

ServiceNotifier::ServiceNotifier() {
    uint64_t usec = 0;
    // > 0 only when WATCHDOG_USEC is set and WATCHDOG_PID (if set) is us.
    if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) interval_ = std::chrono::microseconds(usec / 2);
}

void ServiceNotifier::send(const std::string& state) {
    int r = sd_notify(0, state.c_str());
    if (r < 0) spdlog::warn("sd_notify({}): {}", state.substr(0, state.find('\n')), std::strerror(-r));
}

void ServiceNotifier::ready(const std::string& status) { send("READY=1\nSTATUS=" + status); }

void ServiceNotifier::reloading() { send("RELOADING=1\nSTATUS=reloading"); }

void ServiceNotifier::stopping() { send("STOPPING=1\nSTATUS=stopping"); }

void ServiceNotifier::status(const std::string& status) { send("STATUS=" + status); }

void ServiceNotifier::keepalive(Clock::time_point now) {
    if (interval_.count() == 0 || now - last_keepalive_ < interval_) return;
    last_keepalive_ = now;
    send("WATCHDOG=1");
}

}  // namespace vaultwall::daemon
