#include "fleet/ruleset.hpp"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include "rules/compiled.hpp"
#include "rules/model.hpp"
#include "rules/parser.hpp"
#include "rules/source.hpp"

namespace vaultwall::fleet {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr int kFormat = 1;  // the manifest's layout version

std::string files_prefix(const std::string& ruleset) { return ruleset_prefix(ruleset) + "files/"; }

std::string utc_now() {
    auto t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    char buf[32];
    std::tm tm{};
    gmtime_r(&t, &tm);
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

// A member path as the manifest may name it: relative and normal (no "..",
// no "."), or absolute and normal. Anything else would let a value in etcd
// name files the publisher never had.
bool valid_member_path(const std::string& p) {
    if (p.empty() || p.find('\0') != std::string::npos || p.size() > 4096) return false;
    fs::path path(p);
    if (path.lexically_normal().string() != p) return false;
    for (const auto& part : path)
        if (part == ".." || part == ".") return false;
    return p.back() != '/';
}

}  // namespace

std::string sha256_hex(const std::string& bytes) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_sha256(), nullptr) != 1)
        throw std::runtime_error("SHA-256 failed");
    static const char* hex = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < len; ++i) {
        out += hex[md[i] >> 4];
        out += hex[md[i] & 15];
    }
    return out;
}

void check_name(const std::string& what, const std::string& v) {
    bool ok = !v.empty() && v.size() <= 128 && v != "." && v != "..";
    for (char c : v)
        ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-');
    if (!ok)
        throw std::invalid_argument(what + " '" + v + "': use 1-128 letters, digits, '.', '_' or '-'");
}

std::string ruleset_prefix(const std::string& ruleset) { return "/vaultwall/rulesets/" + ruleset + "/"; }
std::string manifest_key(const std::string& ruleset) { return ruleset_prefix(ruleset) + "manifest"; }
std::string hosts_prefix(const std::string& ruleset) { return "/vaultwall/hosts/" + ruleset + "/"; }
std::string host_key(const std::string& ruleset, const std::string& id) { return hosts_prefix(ruleset) + id; }

namespace {

// The filesystem, remembering what it handed the loader: publish writes the
// bytes that were checked, not a second read of files that may have changed.
class RecordingSource : public rules::FileSource {
public:
    std::optional<std::string> read(const std::string& path) const override {
        auto bytes = rules::filesystem_source().read(path);
        if (bytes) seen_[path] = *bytes;
        return bytes;
    }
    mutable std::map<std::string, std::string> seen_;
};

}  // namespace

Bundle load_bundle(const std::string& path, rules::RuleFile& loaded) {
    RecordingSource src;
    loaded = rules::load_rule_file(path, src);
    rules::compile(loaded);
    fs::path main = fs::path(loaded.files.at(0));
    fs::path dir = main.parent_path();
    Bundle b;
    b.rule_file = main.filename().string();
    for (const auto& file : loaded.files) {
        fs::path p = fs::path(file).lexically_normal();
        fs::path rel = p.lexically_relative(dir);
        bool inside = !rel.empty() && *rel.begin() != "..";
        auto bytes = src.seen_.find(file);
        if (bytes == src.seen_.end()) throw std::runtime_error("the loader read " + file + " from elsewhere");
        b.files.emplace(inside ? rel.string() : p.string(), bytes->second);
    }
    return b;
}

std::string host_path(const std::string& dir, const std::string& member) {
    if (!member.empty() && member.front() == '/') return member;
    return (fs::path(dir) / member).lexically_normal().string();
}

PublishResult publish(EtcdClient& etcd, const std::string& ruleset, const Bundle& bundle,
                      std::optional<std::int64_t> if_revision) {
    json files = json::object();
    std::vector<Op> puts;
    std::set<std::string> keep{manifest_key(ruleset)};
    for (const auto& [path, bytes] : bundle.files) {
        files[path] = {{"size", bytes.size()}, {"sha256", sha256_hex(bytes)}};
        puts.push_back(Op::put(files_prefix(ruleset) + path, bytes));
        keep.insert(puts.back().key);
    }
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    json manifest = {{"format", kFormat},
                     {"rule_file", bundle.rule_file},
                     {"files", files},
                     {"published_at", utc_now()},
                     {"published_from", host}};
    puts.push_back(Op::put(manifest_key(ruleset), manifest.dump()));
    // etcd refuses a Txn that deletes and puts the same key, so the keys of
    // the previous revision that this one drops are deleted one by one. The
    // Txn holds only if the manifest is still where this read saw it (and,
    // with if_revision, where the caller saw it); a concurrent publish makes
    // us read again.
    for (int attempt = 0;; ++attempt) {
        RangeResult cur = etcd.get_prefix(ruleset_prefix(ruleset), 0, true);
        std::int64_t at = 0;
        std::vector<Op> ops;
        for (const auto& kv : cur.kvs) {
            if (kv.key == manifest_key(ruleset)) at = kv.mod_revision;
            if (!keep.count(kv.key)) ops.push_back(Op::remove(kv.key));
        }
        if (if_revision && at != *if_revision) return {false, at};
        ops.insert(ops.end(), puts.begin(), puts.end());
        TxnResult r = etcd.txn({{manifest_key(ruleset), Compare::Target::mod_revision, at, {}}}, ops);
        if (r.succeeded) return {true, r.revision};
        if (if_revision || attempt >= 10) {
            auto kv = etcd.get(manifest_key(ruleset));
            return {false, kv ? kv->mod_revision : 0};
        }
    }
}

std::optional<Revision> decode_revision(const std::string& ruleset, const std::map<std::string, KeyValue>& keys) {
    auto m = keys.find(manifest_key(ruleset));
    if (m == keys.end()) return std::nullopt;
    Revision rev;
    rev.revision = m->second.mod_revision;
    std::string where = "rule set " + ruleset + " revision " + std::to_string(rev.revision);
    json manifest = json::parse(m->second.value, nullptr, false);
    if (!manifest.is_object() || !manifest.contains("format") || !manifest["format"].is_number_integer())
        throw RevisionError(where + ": the manifest is not a vaultwall manifest");
    if (manifest["format"].get<int>() != kFormat)
        throw RevisionError(where + ": manifest format " + manifest["format"].dump() + " (this vaultwalld reads " +
                            std::to_string(kFormat) + "): upgrade vaultwalld");
    if (!manifest["rule_file"].is_string() || !manifest["files"].is_object())
        throw RevisionError(where + ": the manifest lacks rule_file or files");
    rev.bundle.rule_file = manifest["rule_file"].get<std::string>();
    for (const auto& [path, meta] : manifest["files"].items()) {
        if (!valid_member_path(path)) throw RevisionError(where + ": bad member path '" + path + "'");
        if (!meta.is_object() || !meta["size"].is_number_unsigned() || !meta["sha256"].is_string())
            throw RevisionError(where + ": member " + path + " has no size or sha256");
        auto f = keys.find(files_prefix(ruleset) + path);
        if (f == keys.end()) throw RevisionError(where + " is incomplete: member " + path + " is missing");
        const std::string& bytes = f->second.value;
        if (bytes.size() != meta["size"].get<std::size_t>() || sha256_hex(bytes) != meta["sha256"].get<std::string>())
            throw RevisionError(where + ": member " + path + " does not match its size and SHA-256");
        if (f->second.mod_revision != rev.revision)
            throw RevisionError(where + ": member " + path + " was written at revision " +
                                std::to_string(f->second.mod_revision) + ", not with the manifest");
        rev.bundle.files.emplace(path, bytes);
    }
    if (!rev.bundle.files.count(rev.bundle.rule_file))
        throw RevisionError(where + ": the rule file " + rev.bundle.rule_file + " is not among its files");
    return rev;
}

std::string encode_host(const HostRecord& h) {
    return json{{"host", h.host_id},
                {"revision", h.revision},
                {"generation", h.generation},
                {"error", h.error},
                {"failed_revision", h.failed_revision},
                {"seen_revision", h.seen_revision},
                {"applied_unix_ms", h.applied_unix_ms},
                {"updated", h.updated.empty() ? utc_now() : h.updated},
                {"pid", h.pid}}
        .dump();
}

HostRecord decode_host(const std::string& host_id, const std::string& value) {
    json j = json::parse(value, nullptr, false);
    if (!j.is_object()) throw RevisionError("host " + host_id + ": its record is not JSON");
    HostRecord h;
    h.host_id = host_id;
    try {
        h.revision = j.value("revision", std::int64_t{0});
        h.generation = j.value("generation", std::uint64_t{0});
        h.error = j.value("error", std::string());
        h.failed_revision = j.value("failed_revision", std::int64_t{0});
        h.seen_revision = j.value("seen_revision", std::int64_t{0});
        h.applied_unix_ms = j.value("applied_unix_ms", std::int64_t{0});
        h.updated = j.value("updated", std::string());
        h.pid = j.value("pid", std::int64_t{0});
    } catch (const json::exception&) {
        throw RevisionError("host " + host_id + ": its record has a field of the wrong type");
    }
    return h;
}

bool FleetStatus::converged() const {
    for (const auto& h : hosts)
        if (h.state != "current") return false;
    return true;
}

FleetStatus fleet_status(EtcdClient& etcd, const std::string& ruleset) {
    FleetStatus st;
    st.ruleset = ruleset;
    auto manifest = etcd.get(manifest_key(ruleset));
    st.revision = manifest ? manifest->mod_revision : 0;
    std::string prefix = hosts_prefix(ruleset);
    for (const auto& kv : etcd.get_prefix(prefix).kvs) {
        HostState hs;
        std::string id = kv.key.substr(prefix.size());
        try {
            hs.record = decode_host(id, kv.value);
            const auto& r = hs.record;
            if (st.revision != 0 && r.failed_revision == st.revision && r.revision != st.revision)
                hs.state = "failed";
            else if (r.revision < st.revision)
                hs.state = "behind";
            else
                hs.state = "current";
        } catch (const RevisionError& e) {
            hs.record.host_id = id;
            hs.record.error = e.what();
            hs.state = "unreadable";
        }
        st.hosts.push_back(std::move(hs));
    }
    return st;
}

}  // namespace vaultwall::fleet
