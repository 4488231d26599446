#include "daemon/daemon.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <sstream>

#include <spdlog/spdlog.h>

#include "bpfmaps/counters.hpp"
#include "bpfmaps/prog_run.hpp"
#include "daemon/drops.hpp"
#include "daemon/explain_frames.hpp"
#include "daemon/metrics.hpp"
#include "daemon/phase_log.hpp"
#include "packet/packet.hpp"
#include "common/reasons.hpp"
#include "reference/classifier.hpp"
#include "rules/ip_text.hpp"
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

packet::Bytes explain_frame6(const packet::Ipv6Addr& src, const packet::Ipv6Addr& dst, std::uint16_t port,
                             bool tcp, bool fragment) {
    packet::Flow6 f{src, dst, 40000, port};
    auto spec = tcp ? packet::FrameSpec::tcp_flow6(f) : packet::FrameSpec::udp_flow6(f);
    if (fragment) spec.ext6(packet::Ipv6ExtHeader::fragment(0, true));
    return spec.build();
}

packet::Bytes explain_vxlan6(const packet::Bytes& inner, const packet::Ipv6Addr& vtep, std::uint32_t vni,
                             std::uint16_t port) {
    auto outer = packet::VxlanSpec::between6(vtep, *rules::parse_ipv6("2001:2:0:ffff::fffe"), vni, port);
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
        drops_ = std::make_unique<DropMonitor>();
        rescan_locked();
        if (ifaces_.empty())
            spdlog::warn("no interface has vaultwall attached under {}: rules are compiled but "
                         "enforced nowhere until `vaultwall-loader attach` (checked every 2 s)",
                         opts_.pin_root);
        Json r = reload_locked(ReloadSource{config_path_, opts_.config_files}, "startup", {});
        if (!r.value("ok", false)) throw std::runtime_error(r.value("error", std::string("reload failed")));
        drops_->start();
    }
    if (opts_.serve_socket) {
        control_ = std::make_unique<ControlServer>(
            opts_.socket, opts_.ctl_group,
            [this](const Json& req, const Peer& peer, const Progress& progress) {
                return handle(req, peer, progress);
            });
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
    if (drops_) drops_->stop();
    if (gate_) {
        gate_->stop();
        gate_.reset();
    }
}

void Daemon::rescan_locked() {
    auto devs = pinned_interfaces(opts_.pin_root);
    // Forget interfaces detached (or re-attached with new maps) since.
    std::size_t changed = std::erase_if(ifaces_, [&](const Iface& i) {
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
        ++changed;
    }
    std::sort(ifaces_.begin(), ifaces_.end(), [](const Iface& a, const Iface& b) { return a.dev < b.dev; });
    if (changed) update_drop_sources_locked();
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

const reference::Classifier& Daemon::reference_locked() {
    if (!set_) throw std::runtime_error("no rules loaded");
    if (!reference_) reference_ = std::make_unique<reference::Classifier>(*set_);
    return *reference_;
}

Json Daemon::reload(const std::string& file, const std::string& trigger, const Progress& progress) {
    return reload(ReloadSource{file}, trigger, progress);
}

Json Daemon::reload(const ReloadSource& source, const std::string& trigger, const Progress& progress) {
    std::lock_guard lk(mu_);
    return reload_locked(source, trigger, progress);
}

rules::RuleFile Daemon::load_rules(const ReloadSource& source, const std::string& path) {
    return rules::load_rule_file(path, source.files ? *source.files : rules::filesystem_source());
}

void Daemon::fault_point(const char* step, const std::string& dev) {
    if (opts_.fault) opts_.fault(step, dev);
}

// Steps 2-4 of a transaction (see reload_locked): every interface's idle set,
// every flip, then `commit` (the gate; a file rename), then the old sets. A
// failure before the flips changes nothing; from the first flip to the end of
// `commit` (none when empty) it flips the interfaces already flipped back. Throws ReloadFailure
// naming the interface and saying what runs.
std::vector<bpfmaps::InstallReport> Daemon::apply_plans_locked(std::vector<bpfmaps::Installer::Plan>& plans,
                                                               PhaseLog& log, const std::string& commit_phase,
                                                               const std::function<void()>& commit) {
    for (std::size_t k = 0; k < ifaces_.size(); ++k) {
        auto& i = ifaces_[k];
        log.run("write", {{"dev", i.dev}, {"rules", plans[k].rules}}, [&] {
            try {
                fault_point("write", i.dev);
                i.inst->write_idle(plans[k]);
            } catch (const std::exception& e) {
                spdlog::error("interface {}: writing the new rules failed: {}", i.dev, e.what());
                throw ReloadFailure("writing the new rules into " + i.dev + " failed: " + e.what() +
                                    " (nothing changed: every interface runs the old rules)");
            }
        });
    }
    std::size_t flipped = 0;
    auto roll_back = [&] {
        for (std::size_t k = flipped; k-- > 0;) {
            try {
                ifaces_[k].inst->flip_back();
            } catch (const std::exception& e) {
                spdlog::error("interface {}: cannot switch back to the old rules: {}", ifaces_[k].dev, e.what());
            }
        }
    };
    log.run("flip", {{"interfaces", ifaces_.size()}}, [&] {
        for (std::size_t k = 0; k < ifaces_.size(); ++k) {
            try {
                fault_point("flip", ifaces_[k].dev);
                ifaces_[k].inst->flip(plans[k]);
                ++flipped;
            } catch (const std::exception& e) {
                roll_back();
                throw ReloadFailure("switching " + ifaces_[k].dev + " to the new rules failed: " + e.what() +
                                    " (switched back: every interface runs the old rules)");
            }
        }
    });
    if (commit) log.run(commit_phase, {}, [&] {
        try {
            commit();
        } catch (const std::exception& e) {
            roll_back();
            throw ReloadFailure(std::string(e.what()) + " (switched back: every interface runs the old rules)");
        }
    });
    std::vector<bpfmaps::InstallReport> reports;
    log.run("finish", {}, [&] {
        for (std::size_t k = 0; k < ifaces_.size(); ++k) reports.push_back(ifaces_[k].inst->finish(plans[k]));
    });
    return reports;
}

// One transaction over every interface and the gate (SPEC §7):
//   1. build everything, touching nothing live: parse, compile, each
//      interface's plan (ids, capacity, difference), the gate's config
//      (certificates loaded, every new listener bound);
//   2. write every interface's idle set (no packet reads it);
//   3. flip every interface, then swap the gate's config; a failure here flips the
//      interfaces already flipped back (their old set is still the other
//      half of the double buffer);
//   4. bring every old set up to date, and take the new state.
// A failure in 1-3 leaves rules, counters, generations and the gate as they
// were, and the error names the step.
Json Daemon::reload_locked(const ReloadSource& source, const std::string& trigger, const Progress& progress) {
    const auto t0 = std::chrono::steady_clock::now();
    const std::string path = source.path.empty() ? config_path_ : source.path;
    PhaseLog log(progress);
    try {
        rules::RuleFile rf = log.run("parse", {{"file", path}}, [&] {
            try {
                return load_rules(source, path);
            } catch (const rules::RuleFileError& e) {
                Json errs = Json::array();
                for (const auto& d : e.diagnostics()) errs.push_back(d.str());
                throw ReloadFailure(e.what(), errs);
            }
        });
        rules::CompiledRuleSet set = log.run("compile", {}, [&] {
            try {
                return rules::compile(rf);
            } catch (const std::exception& e) {
                throw ReloadFailure(path + ": error: " + e.what());
            }
        });
        rescan_locked();
        // 1. Plans: nothing is written yet.
        std::vector<bpfmaps::Installer::Plan> plans;
        for (auto& i : ifaces_) {
            plans.push_back(log.run("prepare", {{"dev", i.dev}}, [&] {
                try {
                    fault_point("prepare", i.dev);
                    if (set.rules.size() >= i.dp->max_rules())
                        throw std::length_error(std::to_string(set.rules.size()) +
                                                " rules do not fit its datapath, which holds " +
                                                std::to_string(i.dp->max_rules() - 1) +
                                                "; re-attach with a larger --max-rules");
                    return i.inst->prepare(set);
                } catch (const std::exception& e) {
                    throw ReloadFailure(path + ": error: interface " + i.dev + ": " + e.what() +
                                        " (nothing changed)");
                }
            }));
        }
        Json warnings = Json::array();
        for (const auto& w : rf.warnings) warnings.push_back(w);

        // The gate's part: what it will run, built now (certificates and
        // keys loaded, listeners bound) so a bad certificate or an address
        // someone else holds fails before any interface changes.
        enum class GateStep { keep, stop, apply } gate_step = GateStep::keep;
        std::unique_ptr<GateHost> new_gate;  // when none runs yet
        std::shared_ptr<GateHost::Prepared> gate_prepared;
        std::string gate_error;
        if (opts_.run_gate) {
            if (rf.gate) {
                GateHost* host = gate_.get();
                if (!host) {
                    new_gate = make_gate_host();
                    host = new_gate.get();
                }
                if (!host) {
                    gate_error = "this build of vaultwalld has no L7 gate; the `gate` section is ignored";
                    warnings.push_back(gate_error);
                } else {
                    log.run("gate prepare", {}, [&] {
                        try {
                            fault_point("gate prepare", "");
                            std::vector<std::string> pins;
                            for (const auto& i : ifaces_) pins.push_back(i.pin_dir);
                            gate_prepared = host->prepare(rf, pins);
                        } catch (const std::exception& e) {
                            throw ReloadFailure(path + ": error: gate: " + e.what() + " (nothing changed)");
                        }
                    });
                    gate_step = GateStep::apply;
                }
            } else if (gate_) {
                gate_step = GateStep::stop;
            }
        }

        // 2.-4. Idle sets, flips, the gate, the old sets.
        std::function<void()> gate_commit;
        if (gate_step == GateStep::apply) gate_commit = [&] {
            try {
                fault_point("gate", "");
            } catch (const std::exception& e) {
                throw std::runtime_error(path + ": error: gate: " + e.what());
            }
            GateHost* host = new_gate ? new_gate.get() : gate_.get();
            host->commit(std::move(gate_prepared));  // never fails: prepare bound and loaded everything
        };
        auto reports = apply_plans_locked(plans, log, "gate", gate_commit);
        if (gate_step == GateStep::apply) {
            if (new_gate) gate_ = std::move(new_gate);
            gate_error_.clear();
        } else if (gate_step == GateStep::stop) {
            gate_->stop();
            gate_.reset();
            spdlog::info("gate stopped: the rule file has no gate section");
        }
        if (!gate_error.empty()) gate_error_ = gate_error;
        Json ifaces = Json::array();
        std::optional<bpfmaps::InstallReport> first;
        for (std::size_t k = 0; k < reports.size(); ++k) {
            const auto& rep = reports[k];
            ifaces.push_back({{"dev", ifaces_[k].dev}, {"generation", rep.generation}});
            if (rep.lookup.trie_scopes) {
                // Still correct, only slower: say how to give it room.
                warnings.push_back("interface " + ifaces_[k].dev + ": " + std::to_string(rep.lookup.trie_scopes) +
                                   " of " + std::to_string(rep.lookup.trie_scopes + rep.lookup.stride_scopes) +
                                   " rule scopes (vault, VNI) did not fit the " +
                                   std::to_string(rep.lookup.blocks_per_set) +
                                   " stride-table blocks and use the slower trie lookup; re-attach with a "
                                   "larger --lookup-blocks");
            }
            if (!first) first = rep;
        }
        Json diff = Json::array();
        if (first)
            for (const auto& d : first->diff)
                diff.push_back({{"vault", d.vault}, {"added", d.rules_added}, {"removed", d.rules_removed}});
        const double took = ms_since(t0);
        if (!source.files) config_path_ = path;
        file_ = std::move(rf);
        set_ = std::move(set);
        reference_.reset();  // built by the first explain that needs it
        apply_side_services_locked(*file_);
        update_drop_sources_locked();  // vault names may have changed
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
                    {"interfaces", ifaces},
                    {"phases", log.phases()}};
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
        Json out = {{"ok", false}, {"error", e.what()}, {"step", log.current()}, {"phases", log.phases()}};
        if (!e.errors.empty()) out["errors"] = e.errors;
        last_reload_ = {{"ok", false}, {"trigger", trigger}, {"file", path}, {"error", first_line}};
        return out;
    } catch (const std::exception& e) {
        ++reloads_failed_;
        spdlog::error("reload ({}) failed: {}", trigger, e.what());
        last_reload_ = {{"ok", false}, {"trigger", trigger}, {"file", path}, {"error", e.what()}};
        return {{"ok", false}, {"error", e.what()}, {"step", log.current()}, {"phases", log.phases()}};
    }
}


void Daemon::apply_side_services_locked(const rules::RuleFile& file) {
    if (drops_) {
        try {
            drops_->set_log(file.drop_log.value_or(""));  // opened again: logrotate + SIGHUP
        } catch (const std::exception& e) {
            spdlog::error("{} (denied-flow events are still kept in memory)", e.what());
        }
    }
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
        merge_rules(rows, collect_rules(*i.dp, i.inst->vault_names(), i.inst->live_image(), set_ ? &*set_ : nullptr));
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

    // Either family (SPEC §11): --src 2001:db8::1 --dst [2001:db8::10]:443.
    const std::string src_s = req.value("src", std::string());
    const std::string dst_s = req.value("dst", std::string());
    const bool src6 = src_s.find(':') != std::string::npos;
    std::uint32_t src4 = 0;
    rules::Ipv6Addr src_6{};
    if (auto a = src6 ? std::nullopt : rules::parse_ipv4(src_s)) src4 = *a;
    else if (auto b = src6 ? rules::parse_ipv6(src_s) : std::nullopt) src_6 = *b;
    else throw std::invalid_argument("explain: --src must be an IPv4 or IPv6 address");
    if (dst_s.find('/') != std::string::npos)
        throw std::invalid_argument("explain: --dst is ADDRESS:PORT; give the protocol with --proto");
    auto dst_or = rules::parse_endpoint_text(dst_s, "--dst");
    if (auto* err = std::get_if<std::string>(&dst_or)) throw std::invalid_argument("explain: " + *err);
    const auto dst = std::get<rules::EndpointText>(dst_or);
    if (dst.v6 != src6)
        throw std::invalid_argument("explain: --src " + src_s + " and --dst " + dst_s +
                                    " are of different families; give both IPv4 or both IPv6");
    const std::uint32_t vni = req.contains("vni") ? parse_u32(req["vni"], "vni") : 0;
    if (vni > VW_VNI_MAX) throw std::invalid_argument("explain: --vni must be 0..16777215");
    const std::string proto = req.value("proto", std::string("tcp"));
    if (proto != "tcp" && proto != "udp") throw std::invalid_argument("explain: --proto must be tcp or udp");

    const bool fragment = req.value("fragment", false);
    packet::Bytes frame = src6 ? explain_frame6(src_6, dst.addr6, dst.port, proto == "tcp", fragment)
                               : explain_frame(src4, dst.addr, dst.port, proto == "tcp", fragment);
    if (vni) {
        // Synthesize the VXLAN underlay from a trusted VTEP (the first one
        // configured, IPv4 first), unless the request names one. The
        // underlay's family need not be the inner frame's.
        std::optional<std::uint32_t> vtep;
        std::optional<rules::Ipv6Addr> vtep6;
        if (req.contains("vtep")) {
            const std::string v = req["vtep"].is_string() ? req["vtep"].get<std::string>() : "";
            vtep = rules::parse_ipv4(v);
            if (!vtep) vtep6 = rules::parse_ipv6(v);
            if (!vtep && !vtep6) throw std::invalid_argument("explain: --vtep must be an IPv4 or IPv6 address");
        } else if (!set_->vteps.empty()) {
            const auto& p = set_->vteps.front();
            vtep = p.len >= 31 ? p.addr : p.addr + 1;
        } else if (!set_->vteps6.empty()) {
            const auto& p = set_->vteps6.front();
            vtep6 = p.addr;
            if (p.len < 127) vtep6->back() |= 1;  // the first host of the prefix
        } else {
            vtep = *rules::parse_ipv4("198.18.0.1");
        }
        frame = vtep ? explain_vxlan(frame, *vtep, vni, set_->vxlan_port)
                     : explain_vxlan6(frame, *vtep6, vni, set_->vxlan_port);
    }

    Json ex = LiveExplainer(*i->dp, *i->inst, *set_, reference_locked()).explain(frame);
    ex.erase("flow");
    ex["dev"] = i->dev;
    if (!ex["agree"].get<bool>())
        spdlog::warn("explain: kernel and reference disagree for src {} vni {} dst {} {}: {}",
                     src6 ? rules::format_ipv6(src_6) : rules::format_ipv4(src4), vni, dst_s, proto,
                     dump_json(ex));
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
    os << drop_metrics_locked();
    os << "# HELP vaultwall_last_reload_success_timestamp_seconds Unix time of the last successful reload.\n"
       << "# TYPE vaultwall_last_reload_success_timestamp_seconds gauge\n"
       << "vaultwall_last_reload_success_timestamp_seconds " << last_reload_ok_unix_ << "\n";
    return os.str();
}

Json Daemon::handle(const Json& req, const Peer& peer, const Progress& progress) {
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
        return reload(str("file"), "socket uid " + std::to_string(peer.uid),
                      req.value("progress", false) ? progress : Progress{});
    }
    if (cmd == "rule" || cmd == "diff") {
        // diff reads a file as root and quotes it in errors: privileged too.
        const bool allowed = peer.uid == 0 || (opts_.ctl_group && peer.in_group(*opts_.ctl_group));
        if (!allowed)
            return {{"ok", false}, {"error", "permission denied: " + cmd + " needs root or the daemon's control group"}};
        if (cmd == "rule") return rule_edit(req, req.value("progress", false) ? progress : Progress{});
        return diff(str("file"));
    }
    spdlog::debug("control: {} from uid {} pid {}", cmd, peer.uid, peer.pid);
    if (cmd == "stats") return stats(str("dev"));
    if (cmd == "rules") return rules(str("vault"), str("dev"));
    if (cmd == "status") return status();
    if (cmd == "explain") return req.contains("frames") ? explain_frames(req) : explain(req);
    if (cmd == "drops") return drops(req);
    if (cmd == "ping") return {{"ok", true}};
    return {{"ok", false},
            {"error", cmd.empty() ? "no \"cmd\" in the request"
                                  : "unknown command \"" + cmd + "\" (reload, stats, rules, status, explain, drops, rule, diff)"}};
}

}  // namespace vaultwall::daemon
