// vaultwallctl whatif FILE --pcap CAPTURE [--json]: the dry run of a rule
// change against real traffic (SPEC §9). Every packet of the capture is
// judged by the live kernel program (through the daemon, nothing moves) and
// by the reference model compiled from FILE (here, no daemon needed for
// that); the packets whose verdict would change are listed, with counts per
// vault and reason.
#include <cstdio>
#include <iostream>
#include <map>
#include <tuple>

#include "commands.hpp"
#include "common/reasons.hpp"
#include "daemon/explain_frames.hpp"
#include "pcap.hpp"
#include "reference/classifier.hpp"
#include "rules/compiled.hpp"
#include "rules/parser.hpp"

namespace vaultwall::ctl {

using daemon::Json;

namespace {

struct Options {
    std::string file, pcap, dev;
    bool json = false;
    std::size_t show = 50;
};

std::string label(const Json& side) {
    return side["verdict"].get<std::string>() + "." + side["reason"].get<std::string>();
}

int run(const Globals& g, const Options& o) {
    rules::CompiledRuleSet set;
    try {
        set = rules::compile(rules::load_rule_file(o.file));
    } catch (const rules::RuleFileError& e) {
        for (const auto& d : e.diagnostics()) std::cerr << d.str() << "\n";
        throw std::runtime_error(o.file + " is not a valid rule file (see vaultwallctl check)");
    }
    const reference::Classifier next(set);
    const auto captured = read_capture(o.pcap);
    std::vector<std::vector<std::uint8_t>> frames;
    for (const auto& c : captured) frames.push_back(c.data);
    const auto live = explain_live(g.socket, o.dev, frames);

    Json changes = Json::array();
    std::map<std::tuple<std::string, std::string, std::string>, std::size_t> summary;  // (vault, from, to)
    std::size_t not_run = 0;
    for (std::size_t i = 0; i < live.size(); ++i) {
        if (live[i].contains("error")) {
            ++not_run;
            continue;
        }
        const auto v = next.classify(frames[i].data(), frames[i].size());
        Json now = {{"verdict", live[i]["verdict"]},
                    {"reason", live[i]["reason"]},
                    {"vault", live[i]["vault"]},
                    {"rule", live[i]["rule"]}};
        Json then = {{"verdict", verdict_name(v.reason)},
                     {"reason", reason_name(v.reason)},
                     {"vault", v.vault >= 0 ? Json(set.vaults[std::size_t(v.vault)].name) : Json(nullptr)},
                     {"rule", v.rule >= 0 ? Json(set.rules[std::size_t(v.rule)].prefix.str()) : Json(nullptr)}};
        if (now["verdict"] == then["verdict"]) continue;
        const std::string vault = !then["vault"].is_null() ? then["vault"].get<std::string>()
                                  : !now["vault"].is_null() ? now["vault"].get<std::string>() : "";
        ++summary[{vault, label(now), label(then)}];
        changes.push_back({{"index", i + 1},
                           {"time_ns", captured[i].unix_ns},
                           {"flow", daemon::flow_json(v.flow)},
                           {"vni", v.vni},
                           {"live", now},
                           {"file", then}});
    }
    Json by = Json::array();
    for (const auto& [k, n] : summary)
        by.push_back({{"vault", std::get<0>(k).empty() ? Json(nullptr) : Json(std::get<0>(k))},
                      {"from", std::get<1>(k)},
                      {"to", std::get<2>(k)},
                      {"packets", n}});
    if (o.json) {
        std::cout << daemon::dump_json({{"file", o.file}, {"capture", o.pcap}, {"packets", live.size()},
                                        {"not_run", not_run}, {"changed", changes.size()}, {"summary", by},
                                        {"changes", changes}},
                                       2)
                  << "\n";
        return 0;
    }
    std::printf("%zu packets of %s judged by the live rules and by %s: %zu would change verdict\n", live.size(),
                o.pcap.c_str(), o.file.c_str(), changes.size());
    if (not_run) std::printf("(%zu frames the kernel would not run were left out)\n", not_run);
    if (!changes.empty()) {
        std::printf("\n%-22s %-30s %-30s %8s\n", "VAULT", "LIVE", "WITH FILE", "PACKETS");
        for (const auto& s : by)
            std::printf("%-22s %-30s %-30s %8zu\n", opt_str(s["vault"]).c_str(), s["from"].get<std::string>().c_str(),
                        s["to"].get<std::string>().c_str(), s["packets"].get<std::size_t>());
        std::printf("\n%-6s %-44s %-30s %s\n", "#", "FLOW", "LIVE", "WITH FILE");
        std::size_t shown = 0;
        for (const auto& c : changes) {
            if (o.show && shown++ == o.show) {
                std::printf("... %zu more (--show 0 for all, --json for everything)\n", changes.size() - o.show);
                break;
            }
            std::string flow = flow_text(c["flow"]);
            if (c["vni"].get<std::uint32_t>()) flow += " vni " + c["vni"].dump();
            std::printf("%-6s %-44s %-30s %s\n", c["index"].dump().c_str(), flow.c_str(), label(c["live"]).c_str(),
                        label(c["file"]).c_str());
        }
    }
    return 0;
}

}  // namespace

Runner add_whatif(CLI::App& app, const Globals& g) {
    auto o = std::make_shared<Options>();
    auto* c = app.add_subcommand("whatif",
                                 "which packets of a capture would change verdict under FILE (nothing is changed)");
    c->add_option("FILE", o->file, "the rule file to try")->required()->check(CLI::ExistingFile);
    c->add_option("--pcap", o->pcap, "capture (pcap or pcapng, Ethernet) to judge")->required()->check(CLI::ExistingFile);
    c->add_option("--dev", o->dev, "interface whose live maps judge the capture (default: the first)");
    c->add_option("--show", o->show, "list at most N changed packets (0: all)")->capture_default_str();
    c->add_flag("--json", o->json, "JSON");
    return [c, o, g]() -> std::optional<int> {
        if (!c->parsed()) return std::nullopt;
        return run(g, *o);
    };
}

}  // namespace vaultwall::ctl
