// vaultwallctl's subcommands that live in their own files. Each add_*()
// registers its subcommand on `app` and returns a runner: nullopt when that
// subcommand was not the one parsed, else its exit code.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "daemon/control.hpp"

namespace vaultwall::ctl {

struct Globals {
    const std::string& socket;
    const std::string& pin_root;
};

using Runner = std::function<std::optional<int>()>;

Runner add_publish(CLI::App& app, const Globals& g);  // cmd_publish.cpp
Runner add_fleet(CLI::App& app, const Globals& g);    // cmd_fleet.cpp
Runner add_rule(CLI::App& app, const Globals& g);     // cmd_rule.cpp
Runner add_diff(CLI::App& app, const Globals& g);     // cmd_diff.cpp
Runner add_check(CLI::App& app, const Globals& g);    // cmd_check.cpp
Runner add_drops(CLI::App& app, const Globals& g);   // cmd_drops.cpp
Runner add_whatif(CLI::App& app, const Globals& g);  // cmd_whatif.cpp
Runner add_import(CLI::App& app, const Globals& g);  // cmd_import.cpp

// `explain --frame HEX` / `--pcap FILE` (cmd_explain_frames.cpp): exit 4 on
// any disagreement between the kernel and the reference.
int explain_frames(const Globals& g, const std::vector<std::string>& hex_frames, const std::string& pcap,
                   const std::string& dev, bool json);

// "-" for null, a string as it is, anything else as JSON.
std::string opt_str(const daemon::Json& j);

// A flow as daemon::flow_json gives it, for people: "tcp 192.0.2.10:40000 ->
// 203.0.113.10:443", "tcp [2001:db8:1::10]:40000 -> [2001:db8::10]:443".
std::string flow_text(const daemon::Json& flow);

// The daemon's request/answer; throws std::runtime_error with its error.
daemon::Json ask(const std::string& socket, const daemon::Json& request);

// The live kernel program's (and live reference's) answer for each frame, in
// order, asked in batches that fit the control protocol's line limit.
std::vector<daemon::Json> explain_live(const std::string& socket, const std::string& dev,
                                       const std::vector<std::vector<std::uint8_t>>& frames);

}  // namespace vaultwall::ctl
