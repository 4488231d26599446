// vaultwallctl diff FILE [--json] (SPEC §7): what a reload of FILE would
// change against the live rules, per vault (rules added and removed,
// settings changed). Changes nothing; the daemon compares (it holds the
// live compiled set).
//
// Exit: 0 (with or without differences); 1 FILE is invalid or the daemon
// refused; 2 bad usage.
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>

#include "commands.hpp"
#include "daemon/control.hpp"

namespace vaultwall::ctl {

namespace {

using daemon::Json;

int run_diff(const Globals& g, const std::string& file, bool json) {
    Json r = daemon::control_request(
        g.socket, {{"cmd", "diff"}, {"file", std::filesystem::absolute(file).lexically_normal().string()}});
    if (json) {
        std::cout << daemon::dump_json(r) << "\n";
        return r.value("ok", false) ? 0 : 1;
    }
    if (!r.value("ok", false)) {
        if (r.contains("errors"))
            for (const auto& e : r["errors"]) std::cerr << e.get<std::string>() << "\n";
        else
            std::cerr << r.value("error", std::string("diff failed")) << "\n";
        return 1;
    }
    if (!r.value("changes", false)) {
        std::printf("%s: no changes against the live rules\n", file.c_str());
        return 0;
    }
    for (const auto& h : r["host"]) std::printf("host: %s changed\n", h.get<std::string>().c_str());
    for (const auto& v : r["vaults"]) {
        std::string settings;
        for (const auto& s : v["settings"]) settings += (settings.empty() ? "" : ", ") + s.get<std::string>();
        std::printf("%-24s %-8s +%zu -%zu rules%s%s\n", v["vault"].get<std::string>().c_str(),
                    v["change"].get<std::string>().c_str(), v.value("rules_added", std::size_t{0}),
                    v.value("rules_removed", std::size_t{0}), settings.empty() ? "" : "; settings: ",
                    settings.c_str());
        for (const auto& p : v["added"]) std::printf("  + %s\n", p.get<std::string>().c_str());
        for (const auto& p : v["removed"]) std::printf("  - %s\n", p.get<std::string>().c_str());
    }
    return 0;
}

}  // namespace

Runner add_diff(CLI::App& app, const Globals& g) {
    auto file = std::make_shared<std::string>();
    auto json = std::make_shared<bool>(false);
    auto* diff = app.add_subcommand("diff", "what a reload of FILE would change against the live rules (changes nothing)");
    diff->add_option("FILE", *file, "rule file")->required();
    diff->add_flag("--json", *json, "JSON");
    return [diff, file, json, &g]() -> std::optional<int> {
        if (!diff->parsed()) return std::nullopt;
        return run_diff(g, *file, *json);
    };
}

}  // namespace vaultwall::ctl
