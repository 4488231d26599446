// vaultwallctl fleet status --etcd URLS --ruleset NAME [--json] (SPEC §8):
// every live host of a rule set (its key exists while its lease does), the
// revision it enforces and its last error.
//
// Exit: 0 every host enforces the latest revision; 1 a host is behind it or
// failed it; 3 etcd unreachable; 2 bad usage.
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "daemon/control.hpp"
#include "fleet/cli.hpp"
#include "fleet/ruleset.hpp"

namespace vaultwall::ctl {

namespace {

struct FleetArgs {
    std::string ruleset;
    bool json = false;
    fleet::EtcdFlags etcd;
};

int run_status(const FleetArgs& a) {
    using Json = nlohmann::ordered_json;
    fleet::check_name("rule set", a.ruleset);
    fleet::FleetStatus st;
    try {
        fleet::EtcdClient etcd(fleet::etcd_options(a.etcd));
        st = fleet::fleet_status(etcd, a.ruleset);
    } catch (const fleet::EtcdError& e) {
        if (a.json) std::cout << daemon::dump_json(Json{{"ok", false}, {"error", e.what()}}) << "\n";
        else std::cerr << "vaultwallctl: " << e.what() << "\n";
        return 3;
    }
    if (a.json) {
        Json hosts = Json::array();
        for (const auto& h : st.hosts) {
            const auto& r = h.record;
            hosts.push_back({{"host", r.host_id},
                             {"state", h.state},
                             {"revision", r.revision},
                             {"generation", r.generation},
                             {"error", r.error.empty() ? Json(nullptr) : Json(r.error)},
                             {"failed_revision", r.failed_revision ? Json(r.failed_revision) : Json(nullptr)},
                             {"seen_revision", r.seen_revision},
                             {"updated", r.updated}});
        }
        // Host ids and errors come from etcd: written whatever bytes they hold.
        std::cout << daemon::dump_json(Json{{"ok", st.converged()}, {"ruleset", st.ruleset},
                                            {"revision", st.revision}, {"hosts", hosts}},
                                       2)
                  << "\n";
    } else {
        std::printf("rule set %s: latest revision %lld, %zu live host%s\n", st.ruleset.c_str(),
                    static_cast<long long>(st.revision), st.hosts.size(), st.hosts.size() == 1 ? "" : "s");
        for (const auto& h : st.hosts) {
            const auto& r = h.record;
            std::printf("  %-24s %-10s revision %-8lld generation %-6llu %s\n", r.host_id.c_str(), h.state.c_str(),
                        static_cast<long long>(r.revision), static_cast<unsigned long long>(r.generation),
                        r.error.empty() ? ""
                                        : ("error (revision " + std::to_string(r.failed_revision) + "): " + r.error)
                                              .c_str());
        }
    }
    return st.converged() ? 0 : 1;
}

}  // namespace

Runner add_fleet(CLI::App& app, const Globals&) {
    auto args = std::make_shared<FleetArgs>();
    auto* fleet = app.add_subcommand("fleet", "the hosts that enforce a rule set from etcd");
    fleet->require_subcommand(1);
    auto* status = fleet->add_subcommand(
        "status", "every live host, the revision it enforces, its last error (exit 1 unless all are current)");
    status->add_option("--ruleset", args->ruleset, "rule set name")->required();
    status->add_flag("--json", args->json, "JSON");
    fleet::add_etcd_flags(*status, args->etcd, true);
    return [status, args]() -> std::optional<int> {
        if (!status->parsed()) return std::nullopt;
        try {
            return run_status(*args);
        } catch (const std::invalid_argument& e) {
            std::cerr << "vaultwallctl: " << e.what() << " (see --help)\n";
            return 2;
        }
    };
}

}  // namespace vaultwall::ctl
