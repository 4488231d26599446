// vaultwallctl publish FILE --etcd URLS --ruleset NAME [--if-revision N] [--json]
// (SPEC §8): checks FILE as `check` does, then writes it and the files that
// belong to its rule set in one etcd Txn, and prints the new revision.
//
// Exit: 0 written; 1 FILE has errors, or --if-revision did not hold; 3 etcd
// unreachable or refused the write; 2 bad usage.
#include <iostream>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "daemon/control.hpp"
#include "fleet/cli.hpp"
#include "fleet/ruleset.hpp"
#include "rules/compiled.hpp"
#include "rules/parser.hpp"

namespace vaultwall::ctl {

namespace {

struct PublishArgs {
    std::string file;
    std::string ruleset;
    std::int64_t if_revision = -1;
    bool json = false;
    fleet::EtcdFlags etcd;
};

int run_publish(const PublishArgs& a) {
    using Json = nlohmann::ordered_json;
    fleet::check_name("rule set", a.ruleset);
    fleet::EtcdOptions eo = fleet::etcd_options(a.etcd);

    rules::RuleFile loaded;
    fleet::Bundle bundle;
    try {
        bundle = fleet::load_bundle(a.file, loaded);
    } catch (const rules::RuleFileError& e) {
        if (a.json) {
            Json errs = Json::array();
            for (const auto& d : e.diagnostics()) errs.push_back(d.str());
            std::cout << daemon::dump_json(Json{{"ok", false}, {"errors", errs}}) << "\n";
        } else {
            for (const auto& d : e.diagnostics()) std::cerr << d.str() << "\n";
            std::cerr << "vaultwallctl: " << a.file << " not published: it has errors\n";
        }
        return 1;
    }
    for (const auto& w : loaded.warnings) std::cerr << w << "\n";

    std::optional<std::int64_t> cas;
    if (a.if_revision >= 0) cas = a.if_revision;
    fleet::PublishResult r;
    try {
        fleet::EtcdClient etcd(eo);
        r = fleet::publish(etcd, a.ruleset, bundle, cas);
    } catch (const fleet::EtcdError& e) {
        if (a.json) std::cout << daemon::dump_json(Json{{"ok", false}, {"error", e.what()}}) << "\n";
        else std::cerr << "vaultwallctl: " << e.what() << "\n";
        return 3;
    }
    Json files = Json::array();
    for (const auto& [path, bytes] : bundle.files) files.push_back(path);
    if (!r.written) {
        std::string msg = cas ? "rule set " + a.ruleset + " is at revision " + std::to_string(r.revision) + ", not " +
                                    std::to_string(*cas) + ": nothing written (re-read it and publish again)"
                              : "rule set " + a.ruleset + " kept changing under concurrent publishes: nothing written";
        if (a.json) std::cout << daemon::dump_json(Json{{"ok", false}, {"error", msg}, {"revision", r.revision}}) << "\n";
        else std::cerr << "vaultwallctl: " << msg << "\n";
        return 1;
    }
    if (a.json)
        std::cout << daemon::dump_json(Json{{"ok", true}, {"ruleset", a.ruleset}, {"revision", r.revision}, {"files", files}})
                  << "\n";
    else
        std::cout << "published " << a.file << " as rule set " << a.ruleset << " revision " << r.revision << " ("
                  << files.size() << " files)\n";
    return 0;
}

}  // namespace

Runner add_publish(CLI::App& app, const Globals&) {
    auto args = std::make_shared<PublishArgs>();
    auto* c = app.add_subcommand("publish",
                                 "check FILE, then write it and the files of its rule set (ip_rules_files, "
                                 "trusted-services catalog) to etcd in one transaction; prints the revision");
    c->add_option("FILE", args->file, "rule file (YAML)")->required()->check(CLI::ExistingFile);
    c->add_option("--ruleset", args->ruleset, "rule set name (/vaultwall/rulesets/NAME/)")->required();
    c->add_option("--if-revision", args->if_revision,
                  "write only if the rule set is still at revision N (0: only if it does not exist yet)")
        ->check(CLI::NonNegativeNumber);
    c->add_flag("--json", args->json, "JSON answer");
    fleet::add_etcd_flags(*c, args->etcd, true);
    return [c, args]() -> std::optional<int> {
        if (!c->parsed()) return std::nullopt;
        try {
            return run_publish(*args);
        } catch (const std::invalid_argument& e) {
            std::cerr << "vaultwallctl: " << e.what() << " (see --help)\n";
            return 2;
        }
    };
}

}  // namespace vaultwall::ctl
