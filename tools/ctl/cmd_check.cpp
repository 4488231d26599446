// vaultwallctl check FILE [--json] (SPEC §7): parse and compile FILE (and the
// files it names) with no daemon and no root.
//
// Exit: 0 valid (warnings are printed, they do not fail it); 1 FILE has
// errors, each printed as file:line:col; 2 bad usage.
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "rules/compiled.hpp"
#include "rules/parser.hpp"

namespace vaultwall::ctl {

namespace {

using Json = nlohmann::ordered_json;

// Paths come from the command line and may be any bytes: never let one abort
// the JSON writer.
std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

int run_check(const std::string& file, bool json) {
    rules::RuleFile rf;
    rules::CompiledRuleSet compiled;
    try {
        rf = rules::load_rule_file(file);
        compiled = rules::compile(rf);
    } catch (const rules::RuleFileError& e) {
        if (json) {
            Json errors = Json::array();
            for (const auto& d : e.diagnostics()) errors.push_back(d.str());
            std::cout << dump(Json{{"ok", false}, {"file", file}, {"errors", errors}}) << "\n";
        } else {
            for (const auto& d : e.diagnostics()) std::cout << d.str() << "\n";
            std::cout << file << ": " << e.diagnostics().size()
                      << (e.diagnostics().size() == 1 ? " error" : " errors")
                      << "; the file would be refused whole\n";
        }
        return 1;
    }
    if (json) {
        std::cout << dump(Json{{"ok", true},
                               {"file", file},
                               {"vaults", compiled.vaults.size()},
                               {"rules", compiled.rules.size() + compiled.rules6.size()},
                               {"endpoints", compiled.endpoints.size() + compiled.endpoints6.size()},
                               {"rules_ipv6", compiled.rules6.size()},
                               {"endpoints_ipv6", compiled.endpoints6.size()},
                               {"files", rf.files},
                               {"warnings", rf.warnings}})
                  << "\n";
    } else {
        for (const auto& w : rf.warnings) std::cout << w << "\n";
        std::printf("%s: OK: %zu vaults, %zu rules, %zu endpoints", file.c_str(), compiled.vaults.size(),
                    compiled.rules.size() + compiled.rules6.size(),
                    compiled.endpoints.size() + compiled.endpoints6.size());
        if (!compiled.rules6.empty() || !compiled.endpoints6.empty())
            std::printf(" (IPv6: %zu rules, %zu endpoints)", compiled.rules6.size(), compiled.endpoints6.size());
        if (!rf.warnings.empty()) std::printf(", %zu warnings", rf.warnings.size());
        std::printf("\n");
    }
    return 0;
}

}  // namespace

Runner add_check(CLI::App& app, const Globals&) {
    auto file = std::make_shared<std::string>();
    auto json = std::make_shared<bool>(false);
    auto* check = app.add_subcommand(
        "check", "check a rule file offline (no daemon, no root): exit 0 valid, 1 with every error");
    check->add_option("FILE", *file, "rule file")->required();
    check->add_flag("--json", *json, R"(JSON: {"ok":...,"errors":[...],"warnings":[...]})");
    return [check, file, json]() -> std::optional<int> {
        if (!check->parsed()) return std::nullopt;
        return run_check(*file, *json);
    };
}

}  // namespace vaultwall::ctl
