// vaultwallctl rule add|remove --vault NAME --ip CIDR... [--json] (SPEC §7):
// one vault's IP rules changed through the daemon as a new generation,
// persisted in that vault's ip_rules_file before the answer; the rule file
// is not re-read. The daemon does the work (userspace/daemon/rule_edit.cpp).
//
// Exit: 0 applied (or nothing to change); 1 refused; 2 bad usage.
#include <cstdio>
#include <iostream>
#include <memory>

#include "commands.hpp"
#include "daemon/control.hpp"
#include "progress.hpp"

namespace vaultwall::ctl {

namespace {

using daemon::Json;

int run_rule(const Globals& g, const std::string& op, const std::string& vault, const std::vector<std::string>& ips,
             bool json) {
    Json req = {{"cmd", "rule"}, {"op", op}, {"vault", vault}, {"ips", ips}, {"progress", true}};
    Json r = daemon::control_request(g.socket, req, std::chrono::seconds(60),
                                     json ? daemon::Progress{} : reload_progress_printer());
    if (json) {
        r.erase("phases");
        std::cout << daemon::dump_json(r) << "\n";
        return r.value("ok", false) ? 0 : 1;
    }
    if (!r.value("ok", false)) {
        std::cerr << r.value("error", std::string("rule ") + op + " failed") << "\n";
        return 1;
    }
    auto list = [](const Json& a) {
        std::string s;
        for (const auto& x : a) s += (s.empty() ? "" : " ") + x.get<std::string>();
        return s;
    };
    if (r["added"].empty() && r["removed"].empty()) {
        std::printf("vault %s: nothing to change (%s %s)\n", vault.c_str(), list(r["unchanged"]).c_str(),
                    op == "add" ? "already a rule" : "not a rule");
        return 0;
    }
    std::printf("vault %s: generation %llu, %s%s%s in %s, %.1f ms\n", vault.c_str(), r.value("generation", 0ull),
                r["added"].empty() ? "" : ("+" + list(r["added"])).c_str(),
                !r["added"].empty() && !r["removed"].empty() ? " " : "",
                r["removed"].empty() ? "" : ("-" + list(r["removed"])).c_str(),
                r.value("file", std::string()).c_str(), r.value("took_ms", 0.0));
    if (!r["unchanged"].empty())
        std::printf("  unchanged: %s (%s)\n", list(r["unchanged"]).c_str(),
                    op == "add" ? "already a rule" : "not a rule");
    return 0;
}

}  // namespace

Runner add_rule(CLI::App& app, const Globals& g) {
    struct Args {
        std::string vault;
        std::vector<std::string> ips;
        bool json = false;
    };
    auto a = std::make_shared<Args>();
    auto* rule = app.add_subcommand("rule", "change one vault's IP rules through the daemon (kept in its ip_rules_file)");
    rule->require_subcommand(1);
    std::vector<std::pair<std::string, CLI::App*>> ops;
    for (const char* op : {"add", "remove"}) {
        auto* s = rule->add_subcommand(op, std::string(op) + " IP rules of a vault, as a new generation");
        s->add_option("--vault", a->vault, "vault name")->required();
        s->add_option("--ip", a->ips, "IPv4 address or CIDR (repeat for more)")->required();
        s->add_flag("--json", a->json, "JSON answer");
        ops.push_back({op, s});
    }
    return [a, ops, &g]() -> std::optional<int> {
        for (const auto& [op, s] : ops)
            if (s->parsed()) return run_rule(g, op, a->vault, a->ips, a->json);
        return std::nullopt;
    };
}

}  // namespace vaultwall::ctl
