// vaultwallctl's subcommands that live in their own files. Each add_*()
// registers its subcommand on `app` and returns a runner: nullopt when that
// subcommand was not the one parsed, else its exit code.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

namespace vaultwall::ctl {

struct Globals {
    const std::string& socket;
    const std::string& pin_root;
};

using Runner = std::function<std::optional<int>()>;

Runner add_publish(CLI::App& app, const Globals& g);  // cmd_publish.cpp
Runner add_fleet(CLI::App& app, const Globals& g);    // cmd_fleet.cpp
Runner add_check(CLI::App& app, const Globals& g);    // cmd_check.cpp

}  // namespace vaultwall::ctl
