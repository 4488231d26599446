// vaultwalld's core: loads and compiles the rule file, installs it into the
// pinned maps of every attached interface (one Installer each), and answers
// the control requests (reload, stats, rules, status, explain) and metrics.
//
// Fail-static: the daemon owns nothing the datapath needs. The program and
// maps are pinned by the loader; a daemon that dies leaves them enforcing the
// last rule set, and a new one adopts them (Installer reads the live state).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "bpfmaps/datapath.hpp"
#include "bpfmaps/drop_events.hpp"
#include "bpfmaps/installer.hpp"
#include "packet/packet.hpp"
#include "daemon/attach.hpp"
#include "daemon/control.hpp"
#include "daemon/stats.hpp"
#include "rules/compiled.hpp"
#include "rules/model.hpp"

namespace vaultwall::reference {
class Classifier;
}
namespace vaultwall::rules {
class FileSource;
}

namespace vaultwall::daemon {

class MetricsServer;
class DropMonitor;
class PhaseLog;

// The L7 gate as the daemon sees it: started, reconfigured and stopped with
// the rule file. make_gate_host() returns the real gate when the build has it.
class GateHost {
public:
    virtual ~GateHost() = default;
    class Prepared {  // what prepare() built; opaque to the daemon
    public:
        virtual ~Prepared() = default;
    };
    // Builds everything the gate needs for this rule file without touching
    // the running gate: certificates and keys loaded, tokens' key sets read,
    // a listening socket bound for every endpoint not served yet. Throws
    // std::runtime_error naming what is wrong (the file, the endpoint that
    // cannot be bound); dropping the result releases what it opened.
    // pin_dirs: the managed interfaces (admission records, vault names).
    virtual std::shared_ptr<Prepared> prepare(const rules::RuleFile& file,
                                              const std::vector<std::string>& pin_dirs) = 0;
    // Swaps the prepared configuration in (starting the gate the first
    // time): requests that start afterwards use it, endpoints it no longer
    // has are closed. Never fails.
    virtual void commit(std::shared_ptr<Prepared> prepared) noexcept = 0;
    virtual void stop() = 0;
    virtual Json status() const = 0;
};
std::unique_ptr<GateHost> make_gate_host();  // null when built without the gate

// The packets `explain` synthesizes (tests send the same ones for real):
// a TCP SYN (or UDP datagram) from src:40000 to dst:port, a first fragment
// when asked; wrapped in VXLAN from `vtep` to 198.18.255.254 for a VNI.
packet::Bytes explain_frame(std::uint32_t src, std::uint32_t dst, std::uint16_t port, bool tcp,
                            bool fragment = false);
packet::Bytes explain_vxlan(const packet::Bytes& inner, std::uint32_t vtep, std::uint32_t vni,
                            std::uint16_t port = 4789);
// The same over IPv6 (SPEC §11): the fragment is a first fragment header;
// the IPv6 underlay goes from `vtep` to 2001:2:0:ffff::fffe.
packet::Bytes explain_frame6(const packet::Ipv6Addr& src, const packet::Ipv6Addr& dst, std::uint16_t port,
                             bool tcp, bool fragment = false);
packet::Bytes explain_vxlan6(const packet::Bytes& inner, const packet::Ipv6Addr& vtep, std::uint32_t vni,
                             std::uint16_t port = 4789);

// What a reload reads: the rule file at `path` (empty: the current config
// file) and the files it names, from `files` (null: the filesystem). The
// fleet hands a rule set from etcd this way (an in-memory source).
struct ReloadSource {
    std::string path;
    const rules::FileSource* files = nullptr;
};

struct DaemonOptions {
    std::string config;
    std::string socket = kDefaultSocket;
    std::string pin_root = kDefaultPinRoot;
    std::vector<std::string> attach;   // interfaces to attach ourselves
    XdpMode attach_mode = XdpMode::native;
    std::uint32_t max_rules = 0;
    std::uint32_t lookup_blocks = 0;
    std::optional<gid_t> ctl_group;    // may reload besides root
    bool serve_socket = true;          // false: no control socket (tests)
    bool run_gate = true;
    // Where start() reads `config` and the files it names (null: the
    // filesystem). The fleet starts from a rule set held in memory.
    const rules::FileSource* config_files = nullptr;
    // Tests: called at each step of a reload transaction ("prepare", "write",
    // "flip" with the interface; "gate prepare", "gate" with ""); throwing
    // from it fails that step as a real failure there would.
    std::function<void(const std::string& step, const std::string& dev)> fault;
};

class Daemon {
public:
    explicit Daemon(DaemonOptions opts);
    ~Daemon();
    Daemon(const Daemon&) = delete;
    Daemon& operator=(const Daemon&) = delete;

    // Attaches (--attach), adopts every pinned interface, loads, compiles and
    // installs the config, then serves the socket, metrics and gate. Throws
    // std::runtime_error with a one-line message; nothing live changes then.
    void start();
    void stop();

    // One transaction over every interface and the gate (SPEC §7):
    // {"ok":true,"generation":N,"rules":..,"diff":[..],"took_ms":..,
    // "phases":[{"phase","ms",...}]} or {"ok":false,"error":"...","step":PHASE}
    // with nothing changed. `file` empty: the current config file. On
    // success a file from disk becomes the config file (SIGHUP reloads it).
    Json reload(const std::string& file, const std::string& trigger, const Progress& progress = {});
    Json reload(const ReloadSource& source, const std::string& trigger, const Progress& progress = {});

    // {"cmd":"rule","op":"add"|"remove","vault":NAME,"ips":[CIDR...]}: see
    // rule_edit.cpp. Answers {"ok":true,"generation","added","removed",
    // "unchanged","file","took_ms","phases"} or {"ok":false,"error",...}.
    Json rule_edit(const Json& request, const Progress& progress = {});
    // What a reload of `file` would change against the live rules, per vault;
    // changes nothing.
    Json diff(const std::string& file);
    Json stats(const std::string& dev = {});
    Json rules(const std::string& vault = {}, const std::string& dev = {});
    Json status();
    Json explain(const Json& request);
    // `explain --frame/--pcap`: {"frames":[HEX...]} (explain_frames.cpp).
    Json explain_frames(const Json& request);
    // Denied-flow events: history, filters, --top (drops.cpp).
    Json drops(const Json& request);
    std::string metrics_text();
    // Adopts interfaces attached since (installing the live rules into them)
    // and forgets detached ones. The daemon calls this every few seconds.
    void rescan();

    // Dispatches one control request from `peer` (privilege checks here).
    Json handle(const Json& request, const Peer& peer, const Progress& progress = {});

private:
    struct Iface {
        std::string dev;
        std::string pin_dir;
        std::uint32_t prog_id = 0;
        std::unique_ptr<bpfmaps::Datapath> dp;
        std::unique_ptr<bpfmaps::Installer> inst;
    };

    void rescan_locked();
    Iface* iface_locked(const std::string& dev);  // null dev: the first; throws if none
    // The reference model of the live set, for explain: built on first use
    // after each change (it is as big as the rules, and reloads need it not).
    const reference::Classifier& reference_locked();
    Json reload_locked(const ReloadSource& source, const std::string& trigger, const Progress& progress);
    rules::RuleFile load_rules(const ReloadSource& source, const std::string& path);
    std::vector<bpfmaps::InstallReport> apply_plans_locked(std::vector<bpfmaps::Installer::Plan>& plans,
                                                           PhaseLog& log, const std::string& commit_phase,
                                                           const std::function<void()>& commit);
    void fault_point(const char* step, const std::string& dev);
    void apply_side_services_locked(const rules::RuleFile& file);
    Counters counters_locked(const std::string& dev);
    // drops.cpp
    void update_drop_sources_locked();
    bpfmaps::EventBudget event_budget_locked();
    std::string drop_metrics_locked();

    DaemonOptions opts_;
    std::mutex mu_;
    std::vector<Iface> ifaces_;
    std::string config_path_;
    std::optional<rules::RuleFile> file_;
    std::optional<rules::CompiledRuleSet> set_;
    std::unique_ptr<reference::Classifier> reference_;
    std::unique_ptr<ControlServer> control_;
    std::unique_ptr<MetricsServer> metrics_;
    std::unique_ptr<GateHost> gate_;
    std::unique_ptr<DropMonitor> drops_;
    std::string gate_error_;

    std::chrono::system_clock::time_point started_;
    std::uint64_t reloads_ok_ = 0, reloads_failed_ = 0;
    double last_reload_ms_ = 0;
    std::int64_t last_reload_ok_unix_ = 0;
    Json last_reload_;
};

}  // namespace vaultwall::daemon
