#include "daemon/daemon.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <sstream>

#include <spdlog/spdlog.h>

#include "bpfmaps/counters.hpp"
#include "bpfmaps/prog_run.hpp"
#include "daemon/metrics.hpp"
#include "packet/packet.hpp"
#include "common/reasons.hpp"
#include "reference/classifier.hpp"
#include "rules/parser.hpp"

namespace vaultwall::daemon {

namespace {

double ms_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

double round3(double v) { return static_cast<double>(static_cast<long long>(v * 1000 + 0.5)) / 1000; }

class ReloadFailure : public std::runtime_error {
public:
    ReloadFailure(std::string msg, Json errors = Json::array())
        : std::runtime_error(std::move(msg)), errors(std::move(errors)) {}
    Json errors;
};

std::uint32_t parse_u32(const Json& j, const char* what) {
    if (j.is_number_unsigned()) return j.get<std::uint32_t>();
    if (j.is_string()) {
        try {
            std::size_t used = 0;
            unsigned long v = std::stoul(j.get<std::string>(), &used);
            if (used == j.get<std::string>().size() && v <= 0xffffffffUL) return static_cast<std::uint32_t>(v);
        } catch (...) {
        }
    }
    throw std::invalid_argument(std::string("bad ") + what);
}

}  // namespace

packet::Bytes explain_frame(std::uint32_t src, std::uint32_t dst, std::uint16_t port, bool tcp, bool fragment) {
    packet::Flow f{src, dst, 40000, port};
    auto spec = tcp ? packet::FrameSpec::tcp_flow(f) : packet::FrameSpec::udp_flow(f);
    if (fragment) spec.fragment(true, 0);
    return spec.build();
}

packet::Bytes explain_vxlan(const packet::Bytes& inner, std::uint32_t vtep, std::uint32_t vni, std::uint16_t port) {
    auto outer = packet::VxlanSpec::between(vtep, *rules::parse_ipv4("198.18.255.254"), vni, port);
    return packet::vxlan_encapsulate(inner, outer);
}

Daemon::Daemon(DaemonOptions opts) : opts_(std::move(opts)), config_path_(opts_.config) {}

Daemon::~Daemon() { stop(); }

void Daemon::start() {
    started_ = std::chrono::system_clock::now();
    for (const auto& dev : opts_.attach) {
        const std::string pin_dir = opts_.pin_root + "/" + dev;
        auto st = interface_status(opts_.pin_root);
        auto it = std::find_if(st.begin(), st.end(), [&](const auto& s) { return s.dev == dev; });
        if (it != st.end() && it->attached) {
            spdlog::info("attach {}: already attached (prog id {}), adopting it", dev, it->prog_id);
            continue;
        }
        auto r = daemon::attach({.dev = dev, .mode = opts_.attach_mode, .pin_root = opts_.pin_root,
                                 .max_rules = opts_.max_rules, .lookup_blocks = opts_.lookup_blocks});
        spdlog::info("attached to {} in {} mode (prog id {}), maps pinned in {}", r.dev, r.mode,
                     r.prog_id, r.pin_dir);
    }
    {
        std::lock_guard lk(mu_);
        rescan_locked();
        if (ifaces_.empty())
            spdlog::warn("no interface has vaultwall attached under {}: rules are compiled but "
                         "enforced nowhere until `vaultwall-loader attach` (checked every 2 s)",
                         opts_.pin_root);
        Json r = reload_locked(config_path_, "startup");
        if (!r.value("ok", false)) throw std::runtime_error(r.value("error", std::string("reload failed")));
    }
    if (opts_.serve_socket) {
        control_ = std::make_unique<ControlServer>(
            opts_.socket, opts_.ctl_group,
            [this](const Json& req, const Peer& peer) { return handle(req, peer); });
        control_->start();
        spdlog::info("control socket {} (mode {})", opts_.socket, opts_.ctl_group ? "0660" : "0600");
    }
}

void Daemon::stop() {
    if (control_) {
        control_->stop();
        control_.reset();
    }
    std::lock_guard lk(mu_);
    if (metrics_) {
        metrics_->stop();
        metrics_.reset();
    }
    if (gate_) {
        gate_->stop();
        gate_.reset();
    }
}

void Daemon::rescan_locked() {
    auto devs = pinned_interfaces(opts_.pin_root);
    // Forget interfaces detached (or re-attached with new maps) since.
    std::erase_if(ifaces_, [&](const Iface& i) {
        bool keep = std::find(devs.begin(), devs.end(), i.dev) != devs.end() &&
                    pinned_prog_id(i.pin_dir + "/" + bpfmaps::kMainProgPin) == i.prog_id;
        if (!keep) spdlog::info("interface {}: pins gone or replaced, no longer managed", i.dev);
        return !keep;
    });
    for (const auto& dev : devs) {
        if (std::any_of(ifaces_.begin(), ifaces_.end(), [&](const Iface& i) { return i.dev == dev; }))
            continue;
        Iface i;
        i.dev = dev;
        i.pin_dir = opts_.pin_root + "/" + dev;
        try {
            i.prog_id = pinned_prog_id(i.pin_dir + "/" + bpfmaps::kMainProgPin);
            i.dp = bpfmaps::Datapath::open_pinned(i.pin_dir);
            i.inst = std::make_unique<bpfmaps::Installer>(*i.dp);
        } catch (const std::exception& e) {
            spdlog::error("interface {}: cannot adopt the pinned maps in {}: {}", dev, i.pin_dir, e.what());
            continue;
        }
        spdlog::info("interface {}: adopted pinned datapath (prog id {}, generation {})", dev,
                     i.prog_id, i.inst->generation());
        if (set_) {
            try {
                auto rep = i.inst->install(*set_);
                spdlog::info("interface {}: installed the current rules as generation {}", dev,
                             rep.generation);
            } catch (const std::exception& e) {
                spdlog::error("interface {}: cannot install the current rules: {}", dev, e.what());
            }
        }
        ifaces_.push_back(std::move(i));
    }
    std::sort(ifaces_.begin(), ifaces_.end(), [](const Iface& a, const Iface& b) { return a.dev < b.dev; });
}

void Daemon::rescan() {
    std::lock_guard lk(mu_);
    rescan_locked();
}

Daemon::Iface* Daemon::iface_locked(const std::string& dev) {
    if (ifaces_.empty()) throw std::runtime_error("no interface has vaultwall attached");
    if (dev.empty()) return &ifaces_.front();
    for (auto& i : ifaces_)
        if (i.dev == dev) return &i;
    throw std::runtime_error("vaultwall is not attached to " + dev);
}

Json Daemon::reload(const std::string& file, const std::string& trigger) {
    std::lock_guard lk(mu_);
    return reload_locked(file, trigger);
}

Json Daemon::reload_locked(const std::string& file_arg, const std::string& trigger) {
    const auto t0 = std::chrono::steady_clock::now();
    const std::string path = file_arg.empty() ? config_path_ : file_arg;
    try {
        rules::RuleFile rf;
        try {
            rf = rules::load_rule_file(path);
        } catch (const rules::RuleFileError& e) {
            Json errs = Json::array();
            for (const auto& d : e.diagnostics()) errs.push_back(d.str());
            throw ReloadFailure(e.what(), errs);
        }
        rules::CompiledRuleSet set;
        try {
            set = rules::compile(rf);
        } catch (const std::exception& e) {
            throw ReloadFailure(path + ": error: " + e.what());
        }
        rescan_locked();
        for (const auto& i : ifaces_)
            if (set.rules.size() >= i.dp->max_rules())
                throw ReloadFailure(path + ": error: " + std::to_string(set.rules.size()) +
                                    " rules do not fit the datapath of " + i.dev + ", which holds " +
                                    std::to_string(i.dp->max_rules() - 1) +
                                    "; re-attach with a larger --max-rules");
        auto reference = std::make_unique<reference::Classifier>(set);

        // The gate first: a configuration it cannot run rejects the reload
        // before the datapath changes.
        Json warnings = Json::array();
        for (const auto& w : rf.warnings) warnings.push_back(w);
        if (opts_.run_gate) {
            if (rf.gate) {
                if (!gate_) gate_ = make_gate_host();
                if (!gate_) {
                    gate_error_ = "this build of vaultwalld has no L7 gate; the `gate` section is ignored";
                    warnings.push_back(gate_error_);
                } else {
                    try {
                        std::vector<std::string> pins;
                        for (const auto& i : ifaces_) pins.push_back(i.pin_dir);
                        for (auto& m : gate_->apply(rf, pins))
                            warnings.push_back("gate: " + m);
                        gate_error_.clear();
                    } catch (const std::exception& e) {
                        throw ReloadFailure(path + ": error: gate: " + e.what());
                    }
                }
            } else if (gate_) {
                gate_->stop();
                gate_.reset();
                spdlog::info("gate stopped: the rule file has no gate section");
            }
        }

        Json ifaces = Json::array();
        std::optional<bpfmaps::InstallReport> first;
        for (auto& i : ifaces_) {
            bpfmaps::InstallReport rep;
            try {
                rep = i.inst->install(set);
            } catch (const std::exception& e) {
                // Earlier interfaces already run the new set: say so plainly.
                spdlog::error("interface {}: install failed: {}", i.dev, e.what());
                throw ReloadFailure(std::string("installing into ") + i.dev + " failed: " + e.what() +
                                    (first ? " (interfaces before it run the new rules)" : ""));
            }
            ifaces.push_back({{"dev", i.dev}, {"generation", rep.generation}});
            if (rep.lookup.trie_scopes) {
                // Still correct, only slower: say how to give it room.
                std::string w = "interface " + i.dev + ": " + std::to_string(rep.lookup.trie_scopes) + " of " +
                                std::to_string(rep.lookup.trie_scopes + rep.lookup.stride_scopes) +
                                " rule scopes (vault, VNI) did not fit the " +
                                std::to_string(rep.lookup.blocks_per_set) +
                                " stride-table blocks and use the slower trie lookup; re-attach with a "
                                "larger --lookup-blocks";
                warnings.push_back(w);
            }
            if (!first) first = rep;
        }

        Json diff = Json::array();
        if (first)
            for (const auto& d : first->diff)
                diff.push_back({{"vault", d.vault}, {"added", d.rules_added}, {"removed", d.rules_removed}});
        const double took = ms_since(t0);
        config_path_ = path;
        file_ = std::move(rf);
        set_ = std::move(set);
        reference_ = std::move(reference);
        apply_side_services_locked(*file_);
        ++reloads_ok_;
        last_reload_ms_ = took;
        last_reload_ok_unix_ = std::chrono::duration_cast<std::chrono::seconds>(
                                   std::chrono::system_clock::now().time_since_epoch()).count();

        Json out = {{"ok", true},
                    {"generation", first ? first->generation : 0},
                    {"rules", set_->rules.size()},
                    {"vaults", set_->vaults.size()},
                    {"endpoints", set_->endpoints.size()},
                    {"diff", diff},
                    {"took_ms", round3(took)},
                    {"file", path},
                    {"interfaces", ifaces}};
        if (!warnings.empty()) out["warnings"] = warnings;
        std::size_t added = 0, removed = 0;
        for (const auto& d : diff) {
            added += d["added"].get<std::size_t>();
            removed += d["removed"].get<std::size_t>();
        }
        spdlog::info("reload ({}) ok: {} -> generation {}, {} vaults, {} rules (+{} -{}), {} interface(s), {:.1f} ms",
                     trigger, path, first ? first->generation : 0, set_->vaults.size(), set_->rules.size(),
                     added, removed, ifaces_.size(), took);
        for (const auto& w : warnings) spdlog::warn("{}", w.get<std::string>());
        last_reload_ = {{"ok", true}, {"trigger", trigger}, {"file", path},
                        {"generation", out["generation"]}, {"took_ms", out["took_ms"]},
                        {"at", last_reload_ok_unix_}};
        return out;
    } catch (const ReloadFailure& e) {
        ++reloads_failed_;
        std::string first_line = e.what();
        first_line = first_line.substr(0, first_line.find('\n'));
        spdlog::warn("reload ({}) rejected, rules unchanged: {}{}", trigger, first_line,
                     e.errors.size() > 1 ? " (+" + std::to_string(e.errors.size() - 1) + " more)" : "");
        Json out = {{"ok", false}, {"error", e.what()}};
        if (!e.errors.empty()) out["errors"] = e.errors;
        last_reload_ = {{"ok", false}, {"trigger", trigger}, {"file", path}, {"error", first_line}};
        return out;
    } catch (const std::exception& e) {
        ++reloads_failed_;
        spdlog::error("reload ({}) failed: {}", trigger, e.what());
        last_reload_ = {{"ok", false}, {"trigger", trigger}, {"file", path}, {"error", e.what()}};
        return {{"ok", false}, {"error", e.what()}};
    }
}

void Daemon::apply_side_services_locked(const rules::RuleFile& file) {
    const std::string want = file.metrics.value_or("");
    if (metrics_ && metrics_->listen() != want) {
        metrics_->stop();
        metrics_.reset();
        spdlog::info("metrics endpoint closed");
    }
    if (!want.empty() && !metrics_) {
        auto m = std::make_unique<MetricsServer>(want, [this] { return metrics_text(); });
        try {
            m->start();
            metrics_ = std::move(m);
            spdlog::info("metrics on http://{}/metrics", want);
        } catch (const std::exception& e) {
            spdlog::error("{}", e.what());
        }
    }
}

Counters Daemon::counters_locked(const std::string& dev) {
    Counters c;
    for (auto& i : ifaces_) {
        if (!dev.empty() && i.dev != dev) continue;
        collect_counters(*i.dp, i.inst->vault_names(), c);
    }
    if (!dev.empty() && std::none_of(ifaces_.begin(), ifaces_.end(), [&](const Iface& i) { return i.dev == dev; }))
        throw std::runtime_error("vaultwall is not attached to " + dev);
    return c;
}

Json Daemon::stats(const std::string& dev) {
    std::lock_guard lk(mu_);
    return {{"ok", true}, {"stats", stats_json(counters_locked(dev))}};
}

Json Daemon::rules(const std::string& vault, const std::string& dev) {
    std::lock_guard lk(mu_);
    std::vector<RuleRow> rows;
    for (auto& i : ifaces_) {
        if (!dev.empty() && i.dev != dev) continue;
        merge_rules(rows, collect_rules(*i.dp, *i.inst, set_ ? &*set_ : nullptr));
    }
    if (!vault.empty()) {
        if (set_ && std::none_of(set_->vaults.begin(), set_->vaults.end(),
                                 [&](const auto& v) { return v.name == vault; }))
            throw std::runtime_error("no vault named " + vault);
        std::erase_if(rows, [&](const RuleRow& r) { return r.vault != vault; });
    }
    return {{"ok", true}, {"generation", ifaces_.empty() ? 0 : ifaces_.front().inst->generation()},
            {"rules", rules_json(rows)}};
}

Json Daemon::status() {
    std::lock_guard lk(mu_);
    rescan_locked();
    Json ifs = Json::array();
    for (const auto& s : interface_status(opts_.pin_root)) ifs.push_back(to_json(s));
    auto up = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now() - started_);
    Json out = {{"ok", true},
                {"pid", ::getpid()},
                {"config", config_path_},
                {"uptime_s", up.count()},
                {"generation", ifaces_.empty() ? 0 : ifaces_.front().inst->generation()},
                {"vaults", set_ ? set_->vaults.size() : 0},
                {"endpoints", set_ ? set_->endpoints.size() : 0},
                {"rules", set_ ? set_->rules.size() : 0},
                {"reloads", {{"ok", reloads_ok_}, {"failed", reloads_failed_}}},
                {"last_reload", last_reload_},
                {"pin_dir", opts_.pin_root},
                {"socket", opts_.serve_socket ? Json(opts_.socket) : Json(nullptr)},
                {"metrics", metrics_ ? Json(metrics_->listen()) : Json(nullptr)},
                {"interfaces", ifs}};
    if (gate_) out["gate"] = gate_->status();
    else if (!gate_error_.empty()) out["gate"] = {{"running", false}, {"error", gate_error_}};
    else out["gate"] = nullptr;
    return out;
}

Json Daemon::explain(const Json& req) {
    std::lock_guard lk(mu_);
    if (!set_) throw std::runtime_error("no rules loaded");
    Iface* i = iface_locked(req.value("dev", std::string()));

    auto src = rules::parse_ipv4(req.value("src", std::string()));
    if (!src) throw std::invalid_argument("explain: --src must be an IPv4 address");
    const std::string dst_s = req.value("dst", std::string());
    auto colon = dst_s.rfind(':');
    auto dst = colon == std::string::npos ? std::nullopt : rules::parse_ipv4(dst_s.substr(0, colon));
    std::uint32_t port = 0;
    try {
        if (dst) port = parse_u32(Json(dst_s.substr(colon + 1)), "port");
    } catch (...) {
        dst.reset();
    }
    if (!dst || port == 0 || port > 65535) throw std::invalid_argument("explain: --dst must be IPv4:PORT");
    const std::uint32_t vni = req.contains("vni") ? parse_u32(req["vni"], "vni") : 0;
    if (vni > VW_VNI_MAX) throw std::invalid_argument("explain: --vni must be 0..16777215");
    const std::string proto = req.value("proto", std::string("tcp"));
    if (proto != "tcp" && proto != "udp") throw std::invalid_argument("explain: --proto must be tcp or udp");

    const bool fragment = req.value("fragment", false);
    packet::Bytes frame = explain_frame(*src, *dst, static_cast<std::uint16_t>(port), proto == "tcp", fragment);
    std::uint32_t vtep = 0;
    if (vni) {
        // Synthesize the VXLAN underlay from a trusted VTEP (the first one
        // configured), unless the request names one.
        if (req.contains("vtep")) {
            auto v = rules::parse_ipv4(req["vtep"].get<std::string>());
            if (!v) throw std::invalid_argument("explain: --vtep must be an IPv4 address");
            vtep = *v;
        } else if (!set_->vteps.empty()) {
            const auto& p = set_->vteps.front();
            vtep = p.len >= 31 ? p.addr : p.addr + 1;
        } else {
            vtep = *rules::parse_ipv4("198.18.0.1");
        }
        frame = explain_vxlan(frame, vtep, vni, set_->vxlan_port);
    }

    auto k = bpfmaps::run_explain(*i->dp, frame);

    std::map<std::uint32_t, bpfmaps::LiveRule> by_id;
    for (const auto& r : i->inst->live_rules()) by_id[r.rule_id] = r;
    const auto kreason = static_cast<vw_reason>(k.reason);
    Json kvault = nullptr, krule = nullptr, rrule = nullptr, rvault = nullptr;
    if (k.vault_id)
        if (auto n = i->inst->vault_name(k.vault_id)) kvault = *n;
    if (k.rule_id) {
        auto it = by_id.find(k.rule_id);
        krule = it == by_id.end() ? Json("#" + std::to_string(k.rule_id))
                                  : Json(rules::Ipv4Prefix{it->second.addr, it->second.len}.str());
    }
    const char* kverdict = k.action == 2 /* XDP_PASS */ ? "pass" : "drop";
    auto rv = reference_->classify(frame.data(), frame.size());
    if (rv.rule >= 0) rrule = set_->rules[static_cast<std::size_t>(rv.rule)].prefix.str();
    if (rv.vault >= 0) rvault = set_->vaults[static_cast<std::size_t>(rv.vault)].name;
    const char* rverdict = rv.pass ? "pass" : "drop";
    const bool agree =
        std::string(kverdict) == rverdict && kreason == rv.reason && kvault == rvault && krule == rrule;
    const Json ref = {{"verdict", rverdict}, {"reason", reason_name(rv.reason)}, {"rule", rrule}};
    Json ex = {{"verdict", kverdict},
               {"reason", reason_name(kreason)},
               {"vault", kvault},
               {"rule", krule},
               {"vni", k.vni},
               {"reference", ref},
               {"agree", agree},
               {"generation", k.generation},
               {"dev", i->dev}};
    if (!agree)
        spdlog::warn("explain: kernel and reference disagree for src {} vni {} dst {} {}: kernel {} vs {}",
                     rules::format_ipv4(*src), vni, dst_s, proto, reason_name(kreason), dump_json(ref));
    return {{"ok", true}, {"explain", ex}};
}

std::string Daemon::metrics_text() {
    std::lock_guard lk(mu_);
    Counters c = counters_locked({});
    std::ostringstream os;
    auto series = [&](const char* name, bool bytes) {
        os << "# HELP " << name
           << (bytes ? " Bytes" : " Packets")
           << " classified by the XDP datapath, by vault (empty for global reasons), verdict and reason.\n"
           << "# TYPE " << name << " counter\n";
        auto line = [&](const std::string& vault, vw_reason r, const bpfmaps::Count& n) {
            os << name << "{vault=\"" << prom_escape(vault) << "\",verdict=\"" << verdict_name(r)
               << "\",reason=\"" << reason_name(r) << "\"} " << (bytes ? n.bytes : n.packets)
               << "\n";
        };
        for (int r = 0; r < VW_GLOBAL_REASONS; ++r) line("", vw_reason(r), c.get(vw_reason(r)));
        for (const auto& [vault, row] : c.vaults)
            for (int r = VW_GLOBAL_REASONS; r < VW_REASONS; ++r) line(vault, vw_reason(r), c.get(vw_reason(r), vault));
    };
    series("vaultwall_packets_total", false);
    series("vaultwall_bytes_total", true);

    os << "# HELP vaultwall_rules Source rules installed, by vault and kind.\n# TYPE vaultwall_rules gauge\n";
    if (set_) {
        std::map<std::pair<std::string, bool>, std::size_t> n;
        for (const auto& v : set_->vaults) n[{v.name, false}] = 0, n[{v.name, true}] = 0;
        for (const auto& r : set_->rules) ++n[{set_->vaults[r.vault].name, r.vni != 0}];
        for (const auto& [k, v] : n)
            os << "vaultwall_rules{vault=\"" << prom_escape(k.first) << "\",kind=\""
               << (k.second ? "vnet_rule" : "ip_rule") << "\"} " << v << "\n";
    }
    os << "# HELP vaultwall_vaults Vaults in the live rule set.\n# TYPE vaultwall_vaults gauge\n"
       << "vaultwall_vaults " << (set_ ? set_->vaults.size() : 0) << "\n";
    os << "# HELP vaultwall_endpoints Protected endpoints in the live rule set.\n# TYPE vaultwall_endpoints gauge\n"
       << "vaultwall_endpoints " << (set_ ? set_->endpoints.size() : 0) << "\n";
    os << "# HELP vaultwall_generation Rule-set generation live in the datapath.\n# TYPE vaultwall_generation gauge\n"
       << "vaultwall_generation " << c.generation << "\n";
    os << "# HELP vaultwall_interfaces Interfaces the daemon manages.\n# TYPE vaultwall_interfaces gauge\n"
       << "vaultwall_interfaces " << ifaces_.size() << "\n";
    os << "# HELP vaultwall_reloads_total Rule reloads by outcome.\n# TYPE vaultwall_reloads_total counter\n"
       << "vaultwall_reloads_total{outcome=\"success\"} " << reloads_ok_ << "\n"
       << "vaultwall_reloads_total{outcome=\"failure\"} " << reloads_failed_ << "\n";
    os << "# HELP vaultwall_last_reload_duration_seconds Duration of the last successful reload.\n"
       << "# TYPE vaultwall_last_reload_duration_seconds gauge\n"
       << "vaultwall_last_reload_duration_seconds " << last_reload_ms_ / 1000.0 << "\n";
    os << "# HELP vaultwall_last_reload_success_timestamp_seconds Unix time of the last successful reload.\n"
       << "# TYPE vaultwall_last_reload_success_timestamp_seconds gauge\n"
       << "vaultwall_last_reload_success_timestamp_seconds " << last_reload_ok_unix_ << "\n";
    return os.str();
}

Json Daemon::handle(const Json& req, const Peer& peer) {
    const std::string cmd = req.value("cmd", std::string());
    auto str = [&](const char* k) {
        if (!req.contains(k) || req[k].is_null()) return std::string();
        if (!req[k].is_string()) throw std::invalid_argument(std::string("\"") + k + "\" must be a string");
        return req[k].get<std::string>();
    };
    if (cmd == "reload") {
        const bool allowed = peer.uid == 0 || (opts_.ctl_group && peer.in_group(*opts_.ctl_group));
        if (!allowed) {
            spdlog::warn("control: refused reload from uid {} pid {}: not root nor in the control group",
                         peer.uid, peer.pid);
            return {{"ok", false},
                    {"error", "permission denied: reload needs root or the daemon's control group"}};
        }
        return reload(str("file"), "socket uid " + std::to_string(peer.uid));
    }
    spdlog::debug("control: {} from uid {} pid {}", cmd, peer.uid, peer.pid);
    if (cmd == "stats") return stats(str("dev"));
    if (cmd == "rules") return rules(str("vault"), str("dev"));
    if (cmd == "status") return status();
    if (cmd == "explain") return explain(req);
    if (cmd == "ping") return {{"ok", true}};
    return {{"ok", false},
            {"error", cmd.empty() ? "no \"cmd\" in the request"
                                  : "unknown command \"" + cmd + "\" (reload, stats, rules, status, explain)"}};
}

}  // namespace vaultwall::daemon
