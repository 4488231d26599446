#include "daemon/fleet_source.hpp"

#include <unistd.h>

#include <spdlog/spdlog.h>

#include "daemon/daemon.hpp"

namespace vaultwall::daemon {

CLI::Option* add_fleet_flags(CLI::App& app, FleetFlags& f) {
    auto* etcd = fleet::add_etcd_flags(app, f.etcd, false);
    app.add_option("--ruleset", f.ruleset, "with --etcd: the rule set to enforce (/vaultwall/rulesets/NAME/)");
    app.add_option("--host-id", f.host_id, "with --etcd: this host's name in fleet status (default: the host name)");
    app.add_option("--ruleset-dir", f.dir,
                   "with --etcd: the directory the rule set's relative host-local paths (TLS files, jwks_file) "
                   "resolve against")
        ->capture_default_str();
    app.add_option("--state-dir", f.state_dir,
                   "with --etcd: where the last applied revision is kept for restarts (empty: nowhere)")
        ->capture_default_str();
    app.add_option("--lease-ttl", f.lease_ttl, "with --etcd: seconds the host key outlives a silent daemon")
        ->check(CLI::Range(2, 3600))
        ->capture_default_str();
    return etcd;
}

RevisionFiles::RevisionFiles(const fleet::Revision& rev, const std::string& dir)
    : layered_({&memory_, &rules::filesystem_source()}),
      rule_file_(fleet::host_path(dir, rev.bundle.rule_file)) {
    for (const auto& [member, bytes] : rev.bundle.files) memory_.add(fleet::host_path(dir, member), bytes);
}

namespace {
fleet::AgentOptions agent_options(const FleetFlags& f) {
    fleet::AgentOptions a;
    a.ruleset = f.ruleset;
    a.host_id = f.host_id;
    a.state_dir = f.state_dir;
    a.lease_ttl_s = f.lease_ttl;
    return a;
}
}  // namespace

FleetSource::FleetSource(const FleetFlags& flags) : flags_(flags) {
    if (flags_.ruleset.empty()) throw std::invalid_argument("--etcd needs --ruleset NAME");
    if (flags_.host_id.empty()) {
        char host[256] = "";
        gethostname(host, sizeof host - 1);
        flags_.host_id = host;
    }
    fleet::check_name("rule set", flags_.ruleset);
    fleet::check_name("host id", flags_.host_id);
    if (flags_.dir.empty() || flags_.dir.front() != '/')
        throw std::invalid_argument("--ruleset-dir must be an absolute path");
}

FleetSource::~FleetSource() { stop(); }

const RevisionFiles& FleetSource::initial(std::chrono::seconds wait) {
    // The agent applies every later revision through the daemon; until
    // start() there is no daemon, so it only records what it would apply.
    agent_ = std::make_unique<fleet::Agent>(
        fleet::etcd_options(flags_.etcd), agent_options(flags_), [this](const fleet::Revision& rev) {
            if (!daemon_) {
                initial_rev_ = rev;
                return fleet::ApplyOutcome{true, 0, {}};
            }
            RevisionFiles files(rev, flags_.dir);
            Json r = daemon_->reload(ReloadSource{files.rule_file(), &files.source()},
                                     "etcd revision " + std::to_string(rev.revision));
            if (r.value("ok", false)) return fleet::ApplyOutcome{true, r.value("generation", std::uint64_t{0}), {}};
            return fleet::ApplyOutcome{false, 0, r.value("error", std::string("reload failed"))};
        });
    if (auto cached = fleet::load_cached_revision(flags_.state_dir, flags_.ruleset)) {
        spdlog::info("fleet: starting with rule set {} revision {} (cached in {}); catching up with etcd after it",
                     flags_.ruleset, cached->revision, flags_.state_dir);
        initial_rev_ = *cached;
        from_cache_ = true;
    } else {
        if (!agent_->initial_load(std::chrono::duration_cast<std::chrono::milliseconds>(wait)) ||
            initial_rev_.revision == 0)
            throw std::runtime_error("rule set " + flags_.ruleset + ": no revision in etcd and none cached in " +
                                     flags_.state_dir + " (" + agent_->status()["etcd"]["error"].get<std::string>() +
                                     ")");
    }
    initial_ = std::make_unique<RevisionFiles>(initial_rev_, flags_.dir);
    return *initial_;
}

void FleetSource::start(Daemon& d) {
    daemon_ = &d;
    Json st = d.status();
    agent_->adopt(initial_rev_, st.value("generation", std::uint64_t{0}));
    agent_->start();
}

void FleetSource::stop() {
    if (agent_) agent_->stop();
}

Json FleetSource::status() const { return agent_ ? agent_->status() : Json(nullptr); }

}  // namespace vaultwall::daemon
