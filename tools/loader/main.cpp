// vaultwall-loader attach|detach|status: a thin front end over daemon/attach.hpp.
#include <cstdio>
#include <iostream>

#include <CLI/CLI.hpp>

#include "bpfmaps/datapath.hpp"
#include "daemon/attach.hpp"
#include "daemon/control.hpp"

using namespace vaultwall::daemon;

namespace {

std::string human_bytes(std::uint64_t b) {
    char buf[32];
    if (b >= (1ull << 30)) std::snprintf(buf, sizeof(buf), "%.1f GiB", double(b) / (1ull << 30));
    else if (b >= (1ull << 20)) std::snprintf(buf, sizeof(buf), "%.1f MiB", double(b) / (1ull << 20));
    else if (b >= 1024) std::snprintf(buf, sizeof(buf), "%.1f KiB", double(b) / 1024);
    else std::snprintf(buf, sizeof(buf), "%llu B", static_cast<unsigned long long>(b));
    return buf;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"vaultwall-loader: attach the vaultwall XDP datapath to an interface (through libxdp), "
                 "detach it, show what is attached"};
    app.require_subcommand(1);
    std::string dev, mode = "native", pin_root = kDefaultPinRoot;
    std::uint32_t max_rules = 0, lookup_blocks = 0;
    bool json = false;

    auto* a = app.add_subcommand("attach", "load the program, attach it to IFACE, pin its maps in DIR/IFACE");
    a->add_option("--dev", dev, "interface")->required();
    a->add_option("--mode", mode, "native or skb")->check(CLI::IsMember({"native", "skb"}))->capture_default_str();
    a->add_option("--pin-dir", pin_root, "bpffs directory for the pins")->capture_default_str();
    a->add_option("--max-rules", max_rules, "rule capacity (default 1048576)")
        ->check(CLI::Range(2u, 1u << 28));
    a->add_option("--lookup-blocks", lookup_blocks,
                  "stride-table blocks (1 KiB each) per rule set; scopes that do not fit use the slower "
                  "trie (default 16384)")
        ->check(CLI::Range(1u, vaultwall::bpfmaps::kMaxLookupBlocks));

    auto* d = app.add_subcommand("detach", "detach vaultwall from IFACE and remove its pins");
    d->add_option("--dev", dev, "interface")->required();
    d->add_option("--pin-dir", pin_root, "bpffs directory of the pins")->capture_default_str();

    auto* s = app.add_subcommand("status", "interfaces with vaultwall: mode, program, generation, totals");
    s->add_option("--pin-dir", pin_root, "bpffs directory of the pins")->capture_default_str();
    s->add_option("--dev", dev, "only this interface");
    s->add_flag("--json", json, "JSON output");

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::cerr << "vaultwall-loader: " << e.what() << " (see --help)\n";
        return 2;
    }

    try {
        if (a->parsed()) {
            auto r = attach({.dev = dev, .mode = *parse_mode(mode), .pin_root = pin_root, .max_rules = max_rules,
                             .lookup_blocks = lookup_blocks});
            std::cout << "attached vaultwall to " << r.dev << " in " << r.mode << " mode (prog id " << r.prog_id
                      << (r.dispatcher ? ", in libxdp's dispatcher" : ", alone: no libxdp dispatcher here")
                      << "), maps pinned in " << r.pin_dir
                      << "; every packet passes until vaultwalld installs rules\n";
            return 0;
        }
        if (d->parsed()) {
            std::cout << detach(dev, pin_root) << "\n";
            return 0;
        }
        auto st = interface_status(pin_root);
        if (!dev.empty()) std::erase_if(st, [&](const InterfaceStatus& x) { return x.dev != dev; });
        if (json) {
            Json arr = Json::array();
            for (const auto& x : st) arr.push_back(to_json(x));
            std::cout << dump_json({{"pin_dir", pin_root}, {"interfaces", arr}}, 2) << "\n";
            return 0;
        }
        if (st.empty()) {
            std::cout << "vaultwall is not attached anywhere (no pins under " << pin_root << ")\n";
            return 0;
        }
        std::printf("%-16s %-9s %-7s %8s %10s %14s %12s %14s %12s\n", "INTERFACE", "STATE", "MODE", "PROG",
                    "GENERATION", "PASS PKTS", "PASS", "DROP PKTS", "DROP");
        for (const auto& x : st) {
            std::string state = x.ifindex == 0 ? "gone" : x.attached ? "attached" : "detached";
            std::printf("%-16s %-9s %-7s %8u %10llu %14llu %12s %14llu %12s\n", x.dev.c_str(), state.c_str(),
                        x.attached ? x.mode.c_str() : "-", x.prog_id,
                        static_cast<unsigned long long>(x.generation),
                        static_cast<unsigned long long>(x.pass_packets), human_bytes(x.pass_bytes).c_str(),
                        static_cast<unsigned long long>(x.drop_packets), human_bytes(x.drop_bytes).c_str());
            if (!x.attached && x.attached_prog_id)
                std::printf("  %s runs another XDP program: prog id %u '%s'\n", x.dev.c_str(),
                            x.attached_prog_id, x.attached_prog_name.c_str());
            if (!x.error.empty()) std::printf("  %s: %s\n", x.dev.c_str(), x.error.c_str());
        }
        return 0;
    } catch (const std::exception& e) {
        std::string msg = e.what();
        std::cerr << "vaultwall-loader: " << msg.substr(0, msg.find('\n')) << "\n";
        return 1;
    }
}
