// systemd's service notification protocol (sd_notify(3), through libsystemd)
// for vaultwalld under `Type=notify`: READY=1 once the first rule set is
// installed, RELOADING=1 / READY=1 around a SIGHUP reload, STATUS= lines for
// `systemctl status`, and WATCHDOG=1 keep-alives when the unit sets
// WatchdogSec. Without NOTIFY_SOCKET (not started by systemd) every call is a
// no-op.
#pragma once

#include <chrono>
#include <string>

namespace vaultwall::daemon {

class ServiceNotifier {
public:
    using Clock = std::chrono::steady_clock;

    ServiceNotifier();  // reads NOTIFY_SOCKET and WATCHDOG_USEC/WATCHDOG_PID

    void ready(const std::string& status);
    void reloading();
    void stopping();
    void status(const std::string& status);

    // How often keep-alives go out: half the watchdog timeout, as
    // sd_watchdog_enabled(3) advises; zero when there is no watchdog.
    std::chrono::microseconds keepalive_interval() const { return interval_; }
    // Sends WATCHDOG=1 when one is due. The daemon's main loop calls it, so a
    // hung loop stops the keep-alives and systemd restarts the daemon.
    void keepalive(Clock::time_point now = Clock::now());

private:
    void send(const std::string& state);
    std::chrono::microseconds interval_{0};
    Clock::time_point last_keepalive_{};
};

}  // namespace vaultwall::daemon
