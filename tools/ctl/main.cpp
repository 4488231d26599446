// vaultwallctl: a thin front end over the daemon's control socket; `stats`
// and `rules` read the pinned maps directly when the daemon is down.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <thread>

#include <CLI/CLI.hpp>

#include "progress.hpp"
#include "bpfmaps/datapath.hpp"
#include "bpfmaps/image.hpp"
#include "common/reasons.hpp"
#include "daemon/attach.hpp"
#include "daemon/control.hpp"
#include "daemon/stats.hpp"
#include "commands.hpp"

using namespace vaultwall;
using namespace vaultwall::daemon;
using vaultwall::ctl::ask;
using vaultwall::ctl::opt_str;

namespace {

struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

Counters counters_from_pins(const std::string& pin_root, const std::string& dev) {
    auto devs = pinned_interfaces(pin_root);
    if (!dev.empty()) std::erase_if(devs, [&](const std::string& d) { return d != dev; });
    if (devs.empty())
        throw std::runtime_error("vaultwalld is not running and no pinned datapath is under " + pin_root +
                                 (dev.empty() ? "" : "/" + dev));
    Counters c;
    for (const auto& d : devs) {
        auto dp = bpfmaps::Datapath::open_pinned(pin_root + "/" + d);
        collect_counters(*dp, read_vault_names(*dp), c);
    }
    return c;
}

std::vector<RuleRow> rules_from_pins(const std::string& pin_root, const std::string& dev) {
    auto devs = pinned_interfaces(pin_root);
    if (!dev.empty()) std::erase_if(devs, [&](const std::string& d) { return d != dev; });
    if (devs.empty())
        throw std::runtime_error("vaultwalld is not running and no pinned datapath is under " + pin_root);
    std::vector<RuleRow> rows;
    for (const auto& d : devs) {
        auto dp = bpfmaps::Datapath::open_pinned(pin_root + "/" + d);
        auto live = bpfmaps::read_live_image(bpfmaps::KernelMaps(*dp));  // reads only
        merge_rules(rows, collect_rules(*dp, live.names, live.live, nullptr));
    }
    return rows;
}

// Stats as SPEC §4 JSON from the daemon, or from the pins when it is down.
Json stats_once(const std::string& socket, const std::string& pin_root, const std::string& dev, bool& from_pins) {
    try {
        Json req = {{"cmd", "stats"}};
        if (!dev.empty()) req["dev"] = dev;
        from_pins = false;
        return ask(socket, req)["stats"];
    } catch (const DaemonNotRunning&) {
        from_pins = true;
        return stats_json(counters_from_pins(pin_root, dev));
    }
}

Counters counters_of(const Json& j) {
    Counters c;
    c.generation = j.value("generation", 0ull);
    auto leaf = [](const Json& l) { return bpfmaps::Count{l.value("packets", 0ull), l.value("bytes", 0ull)}; };
    for (const char* verdict : {"pass", "drop"})
        for (auto& [name, l] : j["global"][verdict].items())
            if (auto r = reason_from_name(verdict, name)) c.global[*r] = leaf(l);
    for (auto& [vault, v] : j["vaults"].items()) {
        auto& row = c.vaults[vault];
        for (const char* verdict : {"pass", "drop", "audit"})
            if (v.contains(verdict))
                for (auto& [name, l] : v[verdict].items())
                    if (auto r = reason_from_name(verdict, name)) row[*r - VW_GLOBAL_REASONS] = leaf(l);
    }
    return c;
}


}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"vaultwallctl: control vaultwalld (reload, stats, rules, explain, status)"};
    app.require_subcommand(1);
    std::string socket = kDefaultSocket, pin_root = kDefaultPinRoot, dev;
    app.add_option("--socket", socket, "daemon control socket")->capture_default_str();
    app.add_option("--pin-dir", pin_root, "bpffs directory of the pinned maps")->capture_default_str();

    std::string file;
    auto* reload = app.add_subcommand("reload", "reload the rule file (or load FILE instead) atomically");
    reload->add_option("FILE", file, "rule file to load (default: the daemon's current one)");

    bool json = false;
    double watch = 0;
    auto* stats = app.add_subcommand("stats", "verdict counters per vault and reason");
    stats->add_flag("--json", json, "JSON (SPEC §4)");
    stats->add_option("--watch", watch, "repeat every SECS seconds")->check(CLI::PositiveNumber);
    stats->add_option("--dev", dev, "one interface only (default: summed over all)");

    std::string vault;
    auto* rulesc = app.add_subcommand("rules", "source rules with their hit counts");
    rulesc->add_option("--vault", vault, "one vault only");
    rulesc->add_flag("--json", json, "JSON");
    rulesc->add_option("--dev", dev, "one interface only");

    std::string src, dst, proto = "tcp", vtep;
    std::uint32_t vni = 0;
    auto* explain = app.add_subcommand(
        "explain", "run the live kernel program on a synthesized packet (counters untouched) beside the reference model");
    std::vector<std::string> frames;
    std::string pcap;
    explain->add_option("--frame", frames, "explain this frame instead (hex, from the Ethernet header on)");
    explain->add_option("--pcap", pcap, "explain every frame of this capture (pcap/pcapng)")->check(CLI::ExistingFile);
    explain->add_option("--src", src, "source IPv4 or IPv6 address (inner source with --vni)");
    explain->add_option("--vni", vni, "arrive through VXLAN with this VNI (0: plain)")->check(CLI::Range(0u, 0xffffffu));
    explain->add_option("--dst", dst, "destination IPv4:PORT or [IPv6]:PORT");
    explain->add_option("--proto", proto, "tcp or udp")->check(CLI::IsMember({"tcp", "udp"}))->capture_default_str();
    explain->add_option("--vtep", vtep, "outer VXLAN source, IPv4 or IPv6 (default: the first configured VTEP)");
    explain->add_option("--dev", dev, "interface whose maps to use (default: the first)");
    bool fragment = false;
    explain->add_flag("--fragment", fragment, "make it a first fragment (MF set)");
    explain->add_flag("--json", json, "JSON");

    auto* status = app.add_subcommand("status", "daemon, interfaces, generation, reloads");
    status->add_flag("--json", json, "JSON");

    const ctl::Globals globals{socket, pin_root};
    const std::vector<ctl::Runner> commands = {ctl::add_publish(app, globals), ctl::add_fleet(app, globals),
                                               ctl::add_check(app, globals), ctl::add_drops(app, globals),
                                               ctl::add_whatif(app, globals), ctl::add_import(app, globals),
                                               ctl::add_rule(app, globals), ctl::add_diff(app, globals)};

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::cerr << "vaultwallctl: " << e.what() << " (see --help)\n";
        return 2;
    }

    try {
        for (const auto& run : commands)
            if (auto rc = run()) return *rc;
        if (reload->parsed()) {
            Json req = {{"cmd", "reload"}, {"progress", true}};
            if (!file.empty()) req["file"] = std::filesystem::absolute(file).lexically_normal().string();
            Json r = control_request(socket, req, std::chrono::seconds(60), ctl::reload_progress_printer());
            if (!r.value("ok", false)) {
                std::cerr << r.value("error", std::string("reload failed")) << "\n";
                return 1;
            }
            std::printf("reloaded %s: generation %llu, %zu vaults, %zu rules, %.1f ms\n",
                        r.value("file", std::string()).c_str(), r.value("generation", 0ull),
                        r.value("vaults", std::size_t{0}), r.value("rules", std::size_t{0}),
                        r.value("took_ms", 0.0));
            for (const auto& d : r["diff"])
                std::printf("  %-24s +%zu -%zu rules\n", d.value("vault", std::string()).c_str(),
                            d.value("added", std::size_t{0}), d.value("removed", std::size_t{0}));
            if (r.contains("warnings"))
                for (const auto& w : r["warnings"]) std::fprintf(stderr, "%s\n", w.get<std::string>().c_str());
            return 0;
        }
        if (stats->parsed()) {
            for (bool first = true;; first = false) {
                bool from_pins = false;
                Json s = stats_once(socket, pin_root, dev, from_pins);
                if (json) {
                    std::cout << (watch > 0 ? dump_json(s) : dump_json(s, 2)) << std::endl;
                } else {
                    if (watch > 0 && isatty(1)) std::cout << "\033[H\033[2J";
                    if (from_pins && (first || watch > 0))
                        std::cout << "(vaultwalld is not running: read from the pinned maps in " << pin_root << ")\n";
                    std::cout << stats_table(counters_of(s)) << std::flush;
                }
                if (watch <= 0) return 0;
                std::this_thread::sleep_for(std::chrono::duration<double>(watch));
            }
        }
        if (rulesc->parsed()) {
            std::vector<RuleRow> rows;
            Json arr;
            try {
                Json req = {{"cmd", "rules"}};
                if (!vault.empty()) req["vault"] = vault;
                if (!dev.empty()) req["dev"] = dev;
                arr = ask(socket, req)["rules"];
            } catch (const DaemonNotRunning&) {
                rows = rules_from_pins(pin_root, dev);
                if (!vault.empty()) std::erase_if(rows, [&](const RuleRow& r) { return r.vault != vault; });
                arr = rules_json(rows);
                if (!json) std::cout << "(vaultwalld is not running: read from the pinned maps)\n";
            }
            if (json) {
                std::cout << dump_json(arr, 2) << "\n";
                return 0;
            }
            rows.clear();
            for (const auto& j : arr) {
                RuleRow r;
                r.vault = j.value("vault", std::string());
                r.kind = j.value("kind", std::string());
                r.prefix = j.value("prefix", std::string());
                r.vni = j.value("vni", 0u);
                r.origin = j.value("origin", std::string());
                r.hits = j.value("hits", 0ull);
                rows.push_back(r);
            }
            std::cout << rules_table(rows);
            return 0;
        }
        if (explain->parsed()) {
            const bool synthesized = !src.empty() || !dst.empty();
            if (!frames.empty() + !pcap.empty() + synthesized != 1 || (synthesized && (src.empty() || dst.empty()))) {
                std::cerr << "vaultwallctl: explain needs --src and --dst, or --frame HEX, or --pcap FILE (see --help)\n";
                return 2;
            }
            if (!synthesized) return ctl::explain_frames(globals, frames, pcap, dev, json);
            Json req = {{"cmd", "explain"}, {"src", src}, {"dst", dst}, {"proto", proto}, {"vni", vni}};
            if (!vtep.empty()) req["vtep"] = vtep;
            if (fragment) req["fragment"] = true;
            if (!dev.empty()) req["dev"] = dev;
            Json e = ask(socket, req)["explain"];
            if (json) {
                Json out = e;
                out.erase("dev");
                std::cout << dump_json(out) << "\n";
                return 0;
            }
            const Json& ref = e["reference"];
            std::printf("packet    %s %s -> %s%s\n", proto.c_str(), src.c_str(), dst.c_str(),
                        vni ? (" via VXLAN VNI " + std::to_string(vni)).c_str() : "");
            std::printf("kernel    %s.%s  vault %s  rule %s  (generation %llu on %s)\n",
                        e["verdict"].get<std::string>().c_str(), e["reason"].get<std::string>().c_str(),
                        opt_str(e["vault"]).c_str(), opt_str(e["rule"]).c_str(),
                        e.value("generation", 0ull), e.value("dev", std::string()).c_str());
            if (ref.is_null())
                std::printf("reference (this build has no reference classifier)\n");
            else
                std::printf("reference %s.%s  rule %s\n", ref["verdict"].get<std::string>().c_str(),
                            ref["reason"].get<std::string>().c_str(), opt_str(ref["rule"]).c_str());
            std::printf("%s\n", e.value("agree", false) ? "they agree" : "THEY DISAGREE: please report this");
            return e.value("agree", false) ? 0 : 4;
        }
        if (status->parsed()) {
            Json s;
            try {
                s = ask(socket, {{"cmd", "status"}});
            } catch (const DaemonNotRunning& e) {
                Json arr = Json::array();
                for (const auto& x : interface_status(pin_root)) arr.push_back(to_json(x));
                if (json) {
                    std::cout << dump_json({{"daemon", "not running"}, {"interfaces", arr}}, 2) << "\n";
                } else {
                    std::cout << e.what() << "\n";
                    for (const auto& x : arr)
                        std::printf("  %s: %s, generation %llu (still enforced by the datapath)\n",
                                    x["dev"].get<std::string>().c_str(),
                                    x["attached"].get<bool>() ? "attached" : "not attached",
                                    x.value("generation", 0ull));
                }
                return 3;
            }
            s.erase("ok");
            if (json) {
                std::cout << dump_json(s, 2) << "\n";
                return 0;
            }
            std::printf("vaultwalld pid %d, up %llds, config %s\n", s.value("pid", 0),
                        s.value("uptime_s", 0ll), s.value("config", std::string()).c_str());
            std::printf("generation %llu: %zu vaults, %zu endpoints, %zu rules; reloads %llu ok, %llu failed\n",
                        s.value("generation", 0ull), s.value("vaults", std::size_t{0}),
                        s.value("endpoints", std::size_t{0}), s.value("rules", std::size_t{0}),
                        s["reloads"].value("ok", 0ull), s["reloads"].value("failed", 0ull));
            if (s["last_reload"].is_object() && !s["last_reload"].empty()) {
                const auto& l = s["last_reload"];
                if (l.value("ok", false))
                    std::printf("last reload: ok (%s), generation %llu, %.1f ms\n",
                                l.value("trigger", std::string()).c_str(), l.value("generation", 0ull),
                                l.value("took_ms", 0.0));
                else
                    std::printf("last reload: FAILED (%s): %s\n", l.value("trigger", std::string()).c_str(),
                                l.value("error", std::string()).c_str());
            }
            for (const auto& x : s["interfaces"])
                std::printf("  %-16s %-9s %-7s prog %-6u generation %llu\n", x["dev"].get<std::string>().c_str(),
                            x["attached"].get<bool>() ? "attached" : "detached",
                            x["mode"].is_null() ? "-" : x["mode"].get<std::string>().c_str(),
                            x.value("prog_id", 0u), x.value("generation", 0ull));
            std::printf("metrics: %s\n", opt_str(s["metrics"]).c_str());
            if (s["gate"].is_null()) std::printf("gate: not configured\n");
            else std::printf("gate: %s\n", dump_json(s["gate"]).c_str());
            return 0;
        }
    } catch (const std::exception& e) {
        std::string msg = e.what();
        std::cerr << "vaultwallctl: " << msg.substr(0, msg.find('\n')) << "\n";
        return 1;
    }
    return 0;
}
