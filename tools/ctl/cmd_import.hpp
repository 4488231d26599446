// vaultwallctl import azure FILE.json [--into RULES.yaml] [-o OUT.yaml]
// (SPEC §10): offline, no daemon, no root. The logic is userspace/migrate.
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

namespace vaultwall::ctl {

struct ImportCommand {
    CLI::App* command;         // parsed() when the user asked for it
    std::function<int()> run;  // the exit status
};
ImportCommand add_import_command(CLI::App& app);

}  // namespace vaultwall::ctl
