// vaultwalld --config FILE [--socket PATH] [--pin-dir DIR] [--attach IFACE]...
// vaultwalld --etcd URLS --ruleset NAME [...]: the rule set from etcd (fleet_source.hpp)
#include <grp.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "bpfmaps/datapath.hpp"
#include "daemon/daemon.hpp"
#include "daemon/fleet_source.hpp"
#include "daemon/notify.hpp"

using namespace vaultwall::daemon;

int main(int argc, char** argv) {
    DaemonOptions o;
    std::string mode = "native", group, level = "info";
    bool no_gate = false;
    CLI::App app{"vaultwalld: compiles the vaultwall rule file into the XDP datapath of every attached "
                 "interface, reloads it atomically (SIGHUP or the control socket), serves counters, "
                 "metrics and the L7 gate"};
    FleetFlags fleet_flags;
    auto* etcd = add_fleet_flags(app, fleet_flags);
    app.add_option("--config", o.config, "rule file (YAML); or --etcd and --ruleset instead")->excludes(etcd);
    app.add_option("--socket", o.socket, "control socket path")->capture_default_str();
    app.add_option("--pin-dir", o.pin_root, "bpffs directory with the pinned maps (DIR/IFACE)")
        ->capture_default_str();
    app.add_option("--attach", o.attach, "attach the datapath to IFACE first (repeatable)");
    app.add_option("--mode", mode, "XDP mode for --attach: native or skb")
        ->check(CLI::IsMember({"native", "skb"}))
        ->capture_default_str();
    app.add_option("--max-rules", o.max_rules, "rule capacity for --attach (default 1048576)");
    app.add_option("--lookup-blocks", o.lookup_blocks,
                   "stride-table blocks (1 KiB) per rule set for --attach (default 16384)")
        ->check(CLI::Range(1u, vaultwall::bpfmaps::kMaxLookupBlocks));
    app.add_option("--group", group, "group whose members may reload besides root (socket 0660)");
    app.add_option("--log-level", level, "trace, debug, info, warn, error")
        ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}))
        ->capture_default_str();
    app.add_flag("--no-gate", no_gate, "never run the L7 gate, even with a gate section");
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::cerr << "vaultwalld: " << e.what() << " (see --help)\n";
        return 2;
    }

    std::unique_ptr<FleetSource> fleet;
    try {
        if (etcd->count()) fleet = std::make_unique<FleetSource>(fleet_flags);
        else if (o.config.empty()) throw std::invalid_argument("give --config FILE, or --etcd URLS --ruleset NAME");
    } catch (const std::invalid_argument& e) {
        std::cerr << "vaultwalld: " << e.what() << " (see --help)\n";
        return 2;
    }

    auto logger = spdlog::stderr_logger_mt("vaultwalld");
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
    spdlog::set_default_logger(logger);
    spdlog::set_level(spdlog::level::from_str(level));
    spdlog::flush_on(spdlog::level::trace);

    o.attach_mode = *parse_mode(mode);
    o.run_gate = !no_gate;
    if (!group.empty()) {
        struct group* g = getgrnam(group.c_str());
        if (!g) {
            std::cerr << "vaultwalld: no such group: " << group << "\n";
            return 2;
        }
        o.ctl_group = g->gr_gid;
    }

    // Signals are taken synchronously by this thread; every other thread
    // inherits the mask.
    sigset_t set;
    sigemptyset(&set);
    for (int s : {SIGHUP, SIGTERM, SIGINT, SIGQUIT}) sigaddset(&set, s);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    signal(SIGPIPE, SIG_IGN);

    try {
        if (fleet) {
            const RevisionFiles& first = fleet->initial(std::chrono::seconds(30));
            o.config = first.rule_file();
            o.config_files = &first.source();
        }
    } catch (const std::exception& e) {
        spdlog::error("cannot start: {}", e.what());
        std::cerr << "vaultwalld: " << e.what() << "\n";
        return 1;
    }
    Daemon d(o);
    ServiceNotifier notify;  // systemd Type=notify (no-op outside systemd)
    try {
        d.start();
        if (fleet) fleet->start(d);
    } catch (const std::exception& e) {
        spdlog::error("cannot start: {}", e.what());
        std::string msg = e.what();
        std::cerr << "vaultwalld: " << msg.substr(0, msg.find('\n')) << "\n";
        return 1;
    }
    spdlog::info("vaultwalld running (pid {})", getpid());
    notify.ready("enforcing " + o.config);
    // Wake at least every 2 s for the interface rescan, and often enough for
    // the watchdog's keep-alives.
    const std::chrono::microseconds tick = std::chrono::seconds(2);
    auto wait = notify.keepalive_interval().count() ? std::min(tick, notify.keepalive_interval()) : tick;
    auto next_rescan = std::chrono::steady_clock::now() + tick;
    for (;;) {
        notify.keepalive();
        timespec ts{static_cast<time_t>(wait.count() / 1000000), static_cast<long>(wait.count() % 1000000) * 1000};
        int sig = sigtimedwait(&set, nullptr, &ts);
        if (sig < 0) {
            if (std::chrono::steady_clock::now() < next_rescan) continue;
            next_rescan = std::chrono::steady_clock::now() + tick;
            try {
                d.rescan();
            } catch (const std::exception& e) {
                spdlog::error("rescan: {}", e.what());
            }
            continue;
        }
        if (sig == SIGHUP) {
            if (fleet) {
                spdlog::info("SIGHUP ignored: the rule set comes from etcd (publish to change it)");
                continue;
            }
            notify.reloading();
            Json r = d.reload(std::string(), "SIGHUP");
            notify.ready(r.value("ok", false) ? "enforcing " + o.config + ", generation " +
                                                    std::to_string(r.value("generation", 0ull))
                                              : "reload failed, previous rules kept: " +
                                                    r.value("error", std::string("?")).substr(0, 200));
            continue;
        }
        spdlog::info("signal {}: stopping; the datapath keeps enforcing the live rules", sig);
        notify.stopping();
        break;
    }
    if (fleet) fleet->stop();
    d.stop();
    return 0;
}
