// How a rule set lives in etcd (SPEC §8), for `vaultwallctl publish`,
// `vaultwallctl fleet status` and vaultwalld --etcd.
//
//   /vaultwall/rulesets/NAME/manifest      JSON: the rule file's name, every
//                                          member file with its size and SHA-256
//   /vaultwall/rulesets/NAME/files/PATH    one key per member file (bytes)
//   /vaultwall/hosts/NAME/ID               one key per host, on the host's lease
//
// A publish rewrites all of NAME/ in one Txn, so one etcd revision holds one
// whole rule set; the rule set's revision is the manifest's mod_revision.
// Member files are the rule file itself, its trusted-services catalog and its
// ip_rules_files; PATH is relative to the rule file's directory (absolute when
// the file lies outside it). Host-local files (TLS certificate and key,
// jwks_file, audit_log) are not members: they stay paths on every host.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "fleet/etcd.hpp"

namespace vaultwall::rules {
struct RuleFile;
}

namespace vaultwall::fleet {

// A rule-set or host name: letters, digits, '.', '_', '-' (1-128 of them).
// Throws std::invalid_argument naming `what`.
void check_name(const std::string& what, const std::string& value);

std::string ruleset_prefix(const std::string& ruleset);  // "/vaultwall/rulesets/NAME/"
std::string manifest_key(const std::string& ruleset);
std::string hosts_prefix(const std::string& ruleset);  // "/vaultwall/hosts/NAME/"
std::string host_key(const std::string& ruleset, const std::string& host_id);

// A rule set's files, by path relative to the rule file's directory.
struct Bundle {
    std::string rule_file;                     // e.g. "rules.yaml"
    std::map<std::string, std::string> files;  // path -> bytes; rule_file among them
};

// Loads the rule file at `path` from disk as `vaultwallctl check` does (parse
// and compile) and returns the rule set to publish: the exact bytes the loader
// read and checked, for every member file (RuleFile::files). Throws
// rules::RuleFileError with every diagnostic; `loaded` gets the parsed file.
Bundle load_bundle(const std::string& path, rules::RuleFile& loaded);

// The paths of `bundle`'s files on a host whose rule-set directory is `dir`
// (relative paths under it, absolute ones as they are).
std::string host_path(const std::string& dir, const std::string& member);

struct PublishResult {
    bool written = false;
    std::int64_t revision = 0;  // the new revision, or (not written) the current one
};

// Writes `bundle` as rule set `ruleset` in one Txn. With if_revision, only
// when the rule set is still at that revision (0: does not exist yet).
PublishResult publish(EtcdClient& etcd, const std::string& ruleset, const Bundle& bundle,
                      std::optional<std::int64_t> if_revision);

// A malformed or incomplete rule set in etcd: nothing of it is applied.
class RevisionError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct Revision {
    std::int64_t revision = 0;  // the manifest's mod_revision
    Bundle bundle;
};

// Decodes rule set `ruleset` from its keys (key -> value as of one etcd
// revision). nullopt when it has no manifest (never published, or deleted).
// Throws RevisionError when the manifest is malformed or a member file is
// missing or does not match its size and SHA-256.
std::optional<Revision> decode_revision(const std::string& ruleset, const std::map<std::string, KeyValue>& keys);

// What a host reports in /vaultwall/hosts/NAME/ID.
struct HostRecord {
    std::string host_id;
    std::int64_t revision = 0;         // the rule-set revision it enforces (0: none yet)
    std::uint64_t generation = 0;      // its datapath generation
    std::string error;                 // the last revision's failure ("" when it applied)
    std::int64_t failed_revision = 0;  // the revision `error` is about
    std::int64_t seen_revision = 0;    // etcd revision its watch has caught up to
    std::int64_t applied_unix_ms = 0;  // when it last applied (or failed) a revision
    std::string updated;               // UTC, RFC 3339
    std::int64_t pid = 0;
};
std::string encode_host(const HostRecord& h);
HostRecord decode_host(const std::string& host_id, const std::string& value);  // throws RevisionError

struct HostState {
    HostRecord record;
    std::string state;  // "current", "behind", "failed" or "unreadable"
};

struct FleetStatus {
    std::string ruleset;
    std::int64_t revision = 0;  // the latest published revision (0: none)
    std::vector<HostState> hosts;
    bool converged() const;     // every host current
};

FleetStatus fleet_status(EtcdClient& etcd, const std::string& ruleset);

std::string sha256_hex(const std::string& bytes);

}  // namespace vaultwall::fleet
