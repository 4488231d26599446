// vaultwallctl drops [--follow] [--top N] [--vault NAME] [--reason R] [--json]:
// the daemon's history of denied flows (SPEC §9), or a live view of them.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <thread>

#include "commands.hpp"

namespace vaultwall::ctl {

using daemon::Json;

namespace {

struct Options {
    bool follow = false, json = false;
    std::size_t top = 0, limit = 50;
    std::string vault, reason;
};

void print_header() {
    std::printf("%-24s %-10s %-21s %-21s %-5s %-8s %-20s %s\n", "TIME", "INTERFACE", "SOURCE", "DESTINATION",
                "PROTO", "VNI", "VAULT", "VERDICT.REASON");
}

void print_row(const Json& e) {
    std::string src = opt_str(e["source"]);
    if (!e["sport"].is_null()) src += ":" + e["sport"].dump();
    std::printf("%-24s %-10s %-21s %-21s %-5s %-8s %-20s %s.%s\n", e["time"].get<std::string>().c_str(),
                e["interface"].get<std::string>().c_str(), src.c_str(), opt_str(e["destination"]).c_str(),
                opt_str(e["protocol"]).c_str(), e["vni"].get<std::uint32_t>() ? e["vni"].dump().c_str() : "-",
                opt_str(e["vault"]).c_str(), e["verdict"].get<std::string>().c_str(),
                e["reason"].get<std::string>().c_str());
}

void print_budget(const Json& r) {
    const Json& ev = r["events"];
    std::printf("(events sent %llu, over the rate limit of %llu/s per CPU %llu, lost to a full ring %llu)\n",
                ev.value("sent", 0ull), r.value("rate_per_cpu", 0ull), ev.value("suppressed", 0ull),
                ev.value("lost", 0ull));
}

int run(const Globals& g, const Options& o) {
    Json req = {{"cmd", "drops"}};
    if (!o.vault.empty()) req["vault"] = o.vault;
    if (!o.reason.empty()) req["reason"] = o.reason;
    if (o.top) {
        req["top"] = o.top;
        Json r = ask(g.socket, req);
        if (o.json) {
            std::cout << daemon::dump_json(r["top"], 2) << "\n";
            return 0;
        }
        std::printf("%-18s %8s  %-24s %-24s %-24s %s\n", "SOURCE", "EVENTS", "FIRST", "LAST", "VAULTS", "REASONS");
        for (const auto& t : r["top"]) {
            std::string vaults, reasons;
            for (const auto& v : t["vaults"]) vaults += (vaults.empty() ? "" : ",") + v.get<std::string>();
            for (const auto& v : t["reasons"]) reasons += (reasons.empty() ? "" : ",") + v.get<std::string>();
            std::printf("%-18s %8llu  %-24s %-24s %-24s %s\n", t["source"].get<std::string>().c_str(),
                        t.value("events", 0ull), t["first"].get<std::string>().c_str(),
                        t["last"].get<std::string>().c_str(), vaults.empty() ? "-" : vaults.c_str(), reasons.c_str());
        }
        print_budget(r);
        return 0;
    }
    req["limit"] = o.limit;
    Json r = ask(g.socket, req);
    if (!o.json) print_header();
    auto show = [&](const Json& list) {
        for (const auto& e : list) {
            if (o.json) std::cout << daemon::dump_json(e) << "\n";
            else print_row(e);
        }
        std::cout << std::flush;
    };
    show(r["drops"]);
    if (!o.follow) {
        if (!o.json) print_budget(r);
        return 0;
    }
    // Follow: ask for what came after the last event seen, twice a second.
    std::uint64_t last = r.value("last_seq", 0ull);
    req.erase("limit");
    for (;;) {
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
        req["after"] = last;
        r = ask(g.socket, req);
        show(r["drops"]);
        last = r.value("last_seq", last);
    }
}

}  // namespace

Runner add_drops(CLI::App& app, const Globals& g) {
    auto o = std::make_shared<Options>();
    auto* c = app.add_subcommand("drops", "denied flows the datapath reported (dropped, or passed in audit mode)");
    c->add_flag("--follow,-f", o->follow, "keep printing new events as they arrive");
    c->add_option("--top", o->top, "the N sources with the most events")->check(CLI::PositiveNumber);
    c->add_option("--vault", o->vault, "one vault only");
    c->add_option("--reason", o->reason, "a reason (no_rule), a verdict (drop, audit) or both (audit.no_rule)");
    c->add_option("--limit", o->limit, "show at most the N newest kept events (0: all)")->capture_default_str();
    c->add_flag("--json", o->json, "JSON: one object per event and line");
    c->get_option("--follow")->excludes(c->get_option("--top"));
    return [c, o, g]() -> std::optional<int> {
        if (!c->parsed()) return std::nullopt;
        return run(g, *o);
    };
}

}  // namespace vaultwall::ctl
