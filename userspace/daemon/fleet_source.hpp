// vaultwalld --etcd URLS --ruleset NAME (SPEC §8): the daemon's rule set comes
// from etcd instead of a local file. The fleet agent (fleet/agent.hpp) follows
// the rule set's revisions; each one is applied here as one reload
// transaction, its files served from memory and layered over the host's
// filesystem for host-local paths (TLS certificate and key, jwks_file,
// audit_log), which resolve against --ruleset-dir.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "daemon/control.hpp"
#include "fleet/agent.hpp"
#include "fleet/cli.hpp"
#include "rules/source.hpp"

namespace vaultwall::daemon {

class Daemon;

struct FleetFlags {
    fleet::EtcdFlags etcd;
    std::string ruleset;
    std::string host_id;                        // default: the host name
    std::string dir = "/etc/vaultwall";         // where the rule set "lives" on this host
    std::string state_dir = "/var/lib/vaultwall/fleet";  // last applied revision, for restarts
    int lease_ttl = 10;
};

// Adds --etcd (the switch: fleet mode when given), --etcd-cacert, --etcd-cert,
// --etcd-key, --etcd-user, --etcd-password-file, --ruleset, --host-id,
// --ruleset-dir, --state-dir and --lease-ttl. Returns the --etcd option.
CLI::Option* add_fleet_flags(CLI::App& app, FleetFlags& flags);

// A revision's files as the loader reads them: in memory at their host paths,
// over the filesystem.
class RevisionFiles {
public:
    RevisionFiles(const fleet::Revision& rev, const std::string& dir);
    const rules::FileSource& source() const { return layered_; }
    const std::string& rule_file() const { return rule_file_; }

private:
    rules::MemorySource memory_;
    rules::LayeredSource layered_;
    std::string rule_file_;
};

class FleetSource {
public:
    explicit FleetSource(const FleetFlags& flags);  // throws std::invalid_argument on bad flags
    ~FleetSource();

    // The revision to start with: the one this host cached when it last ran
    // (enforced at once, even with etcd down), else the latest from etcd,
    // waiting up to `wait` for it. Throws std::runtime_error when neither.
    const RevisionFiles& initial(std::chrono::seconds wait);
    // Follows etcd from the initial revision on, applying through `d`.
    void start(Daemon& d);
    void stop();
    Json status() const;

private:
    FleetFlags flags_;
    std::unique_ptr<RevisionFiles> initial_;
    fleet::Revision initial_rev_;
    bool from_cache_ = false;
    Daemon* daemon_ = nullptr;
    std::unique_ptr<fleet::Agent> agent_;
};

}  // namespace vaultwall::daemon
