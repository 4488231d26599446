// `rule add|remove` and `diff`: the control requests that change, or compare
// against, the live rules without a full reload (SPEC §7).
//
// An edit never re-reads or recompiles the rule file: the new prefixes are
// validated as an ip_rules_file line would be, merged into the compiled set
// and into each interface's live image (translate_edit: one pass over the
// live rules of each family the edit touches), and written as a new
// generation in one transaction whose commit point is the rename of the
// vault's rewritten ip_rules_file (written and fsynced first). So the file always says what is enforced: a SIGHUP or a
// restart afterwards compiles exactly the same rules.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>
#include <tuple>

#include <spdlog/spdlog.h>

#include "daemon/daemon.hpp"
#include "daemon/phase_log.hpp"
#include "reference/classifier.hpp"
#include "rules/ip_text.hpp"
#include "rules/parser.hpp"

namespace vaultwall::daemon {

namespace fs = std::filesystem;

namespace {

std::string errno_text(const std::string& what) { return what + ": " + std::strerror(errno); }

// `text` written to PATH.vaultwall-new and fsynced; rename() makes it PATH.
struct PendingFile {
    std::string path, tmp;
    bool renamed = false;
    PendingFile(const std::string& p, const std::string& text) : path(p), tmp(p + ".vaultwall-new") {
        int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) throw std::runtime_error(errno_text("cannot write " + tmp));
        std::size_t off = 0;
        while (off < text.size()) {
            ssize_t n = ::write(fd, text.data() + off, text.size() - off);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                auto msg = errno_text("cannot write " + tmp);
                ::close(fd);
                ::unlink(tmp.c_str());
                throw std::runtime_error(msg);
            }
            off += static_cast<std::size_t>(n);
        }
        // Keep the file's mode and owner.
        struct stat st {};
        if (::stat(path.c_str(), &st) == 0) {
            (void)!::fchmod(fd, st.st_mode & 07777);
            (void)!::fchown(fd, st.st_uid, st.st_gid);
        }
        if (::fsync(fd) != 0) {
            auto msg = errno_text("cannot fsync " + tmp);
            ::close(fd);
            ::unlink(tmp.c_str());
            throw std::runtime_error(msg);
        }
        ::close(fd);
    }
    void commit() {
        if (::rename(tmp.c_str(), path.c_str()) != 0) throw std::runtime_error(errno_text("cannot replace " + path));
        renamed = true;
        // The rename itself survives a crash once the directory is synced.
        int dfd = ::open(fs::path(path).parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            (void)!::fsync(dfd);
            ::close(dfd);
        }
    }
    ~PendingFile() {
        if (!renamed) ::unlink(tmp.c_str());
    }
};

// The prefix on one ip_rules_file line (comment and blanks stripped), if any.
std::optional<rules::IpPrefix> line_prefix(std::string_view line) {
    if (auto h = line.find('#'); h != std::string_view::npos) line = line.substr(0, h);
    auto b = line.find_first_not_of(" \t\r\n");
    if (b == std::string_view::npos) return std::nullopt;
    auto e = line.find_last_not_of(" \t\r\n");
    auto p = rules::parse_prefix_text(line.substr(b, e - b + 1), "");
    if (auto* ok = std::get_if<rules::IpPrefix>(&p)) return *ok;
    return std::nullopt;
}

// Rules a diff lists by name per vault and direction (it counts them all).
constexpr std::size_t kDiffListed = 100;

// One family's part of an edit: which of the `given` prefixes to add to or
// remove from vault `v`, whose rules of that family are `have` (those of its
// ip_rules_file, and those of the rule file's ip_rules, which an edit must not
// touch).
template <typename Prefix, typename Rule>
struct FamilyEdit {
    std::vector<Prefix> add, remove;
    std::set<Prefix> to_remove;

    FamilyEdit(const std::string& op, const std::vector<Rule>& have, const std::vector<Rule>& given,
               const rules::Vault& v, const std::string& config_path, Json& unchanged) {
        // Which of the given prefixes are rules of the vault now. One pass,
        // no set of a million rules.
        std::set<Prefix> asked, in_file, inline_rules;
        for (const auto& g : given) asked.insert(g.prefix);
        if (!asked.empty())
            for (const auto& r : have)
                if (asked.count(r.prefix)) (r.pos.file == v.ip_rules_file ? in_file : inline_rules).insert(r.prefix);
        for (const auto& g : given) {
            const auto& p = g.prefix;
            if (op == "add") {
                if (in_file.count(p) || inline_rules.count(p)) unchanged.push_back(p.str());
                else add.push_back(p);
            } else if (in_file.count(p)) {
                if (inline_rules.count(p))
                    throw std::runtime_error(p.str() + " is also in the ip_rules of vault '" + v.name + "' in " +
                                             config_path + ": remove it there");
                remove.push_back(p);
            } else if (inline_rules.count(p)) {
                throw std::runtime_error(p.str() + " is in the ip_rules of vault '" + v.name + "' in " +
                                         config_path + ", not in its ip_rules_file: edit the rule file and reload");
            } else {
                unchanged.push_back(p.str());  // not a rule: nothing to remove
            }
        }
        std::sort(add.begin(), add.end());
        add.erase(std::unique(add.begin(), add.end()), add.end());
        std::sort(remove.begin(), remove.end());
        remove.erase(std::unique(remove.begin(), remove.end()), remove.end());
        to_remove.insert(remove.begin(), remove.end());
    }
    bool empty() const { return add.empty() && remove.empty(); }
    bool removes(const Prefix& p) const { return to_remove.count(p) != 0; }

    // The edit applied in place to `rules` (sorted by (vault, vni, prefix) as
    // the compiler sorts them) for vault `vi`.
    template <typename Compiled>
    void apply(std::vector<Compiled>& rules, std::uint32_t vi) const {
        auto less = [](const Compiled& a, const Compiled& b) {
            return std::tie(a.vault, a.vni, a.prefix) < std::tie(b.vault, b.vni, b.prefix);
        };
        for (const auto& p : remove) {
            Compiled key{vi, 0, p, {}};
            auto it = std::lower_bound(rules.begin(), rules.end(), key, less);
            if (it != rules.end() && !less(key, *it)) rules.erase(it);
        }
        for (const auto& p : add) {
            Compiled r{vi, 0, p, "ip_rules"};
            rules.insert(std::upper_bound(rules.begin(), rules.end(), r, less), r);
        }
    }

    // The model's rules after the commit (its positions are the new file's
    // lines; added ones at its end).
    void commit(std::vector<Rule>& rules, const std::string& file) const {
        std::vector<Rule> kept;
        kept.reserve(rules.size() + add.size());
        for (auto& r : rules)
            if (!(r.pos.file == file && removes(r.prefix))) kept.push_back(std::move(r));
        for (const auto& p : add) kept.push_back({p, {file, 0, 0}});
        rules = std::move(kept);
    }
};

}  // namespace

Json Daemon::rule_edit(const Json& req, const Progress& progress) {
    const auto t0 = std::chrono::steady_clock::now();
    const std::string op = req.value("op", std::string());
    if (op != "add" && op != "remove") throw std::invalid_argument("rule: \"op\" must be add or remove");
    const std::string vault = req.value("vault", std::string());
    if (!req.contains("ips") || !req["ips"].is_array() || req["ips"].empty())
        throw std::invalid_argument("rule: \"ips\" must be a non-empty list of addresses or CIDRs");
    std::string text;
    for (const auto& ip : req["ips"]) {
        if (!ip.is_string()) throw std::invalid_argument("rule: every entry of \"ips\" must be a string");
        if (ip.get<std::string>().find_first_of("\n#") != std::string::npos)
            throw std::invalid_argument("rule: an address may not hold a newline or '#'");
        text += ip.get<std::string>() + "\n";
    }

    std::lock_guard lk(mu_);
    PhaseLog log(progress);
    try {
        if (!file_ || !set_) throw std::runtime_error("no rules loaded");
        auto vit = std::find_if(file_->vaults.begin(), file_->vaults.end(),
                                [&](const rules::Vault& v) { return v.name == vault; });
        if (vit == file_->vaults.end()) throw std::runtime_error("no vault named '" + vault + "' in " + config_path_);
        const std::uint32_t vi = static_cast<std::uint32_t>(vit - file_->vaults.begin());
        if (vit->ip_rules_file.empty())
            throw std::runtime_error("vault '" + vault + "' has no ip_rules_file, so its rules live in " +
                                     config_path_ + "; add `ip_rules_file: " + vault +
                                     ".rules` under its network_acls (the file may start empty), reload, "
                                     "and `vaultwallctl rule` can then change it");
        // Validated as lines of the file would be ("--ip:N:col: error: ...").
        rules::IpRuleList given;
        try {
            given = rules::parse_ip_rules_text(text, "--ip");
        } catch (const rules::RuleFileError& e) {
            Json errs = Json::array();
            for (const auto& d : e.diagnostics()) errs.push_back(d.str());
            return {{"ok", false}, {"error", e.what()}, {"errors", errs}};
        }
        using Edit4 = FamilyEdit<rules::Ipv4Prefix, rules::IpRule>;
        using Edit6 = FamilyEdit<rules::Ipv6Prefix, rules::IpRule6>;
        Json unchanged = Json::array();
        auto [v4, v6] = log.run("check", {{"vault", vault}}, [&] {
            return std::pair(Edit4(op, vit->ip_rules, given.v4, *vit, config_path_, unchanged),
                             Edit6(op, vit->ip_rules6, given.v6, *vit, config_path_, unchanged));
        });

        Json out = {{"ok", true}, {"vault", vault}, {"file", vit->ip_rules_file}};
        auto strs = [](const auto& a4, const auto& a6) {
            Json a = Json::array();
            for (const auto& p : a4) a.push_back(p.str());
            for (const auto& p : a6) a.push_back(p.str());
            return a;
        };
        if (v4.empty() && v6.empty()) {
            out["generation"] = ifaces_.empty() ? 0 : ifaces_.front().inst->generation();
            out["added"] = Json::array();
            out["removed"] = Json::array();
            out["unchanged"] = unchanged;
            return out;
        }

        // The file as it will be: removed lines dropped, added ones appended.
        std::string bytes = log.run("read", {{"file", vit->ip_rules_file}}, [&] {
            auto b = rules::filesystem_source().read(vit->ip_rules_file);
            if (!b) throw std::runtime_error("cannot read " + vit->ip_rules_file);
            return *b;
        });
        std::string next;
        next.reserve(bytes.size() + v4.add.size() * 20 + v6.add.size() * 44);
        const bool removing = !v4.remove.empty() || !v6.remove.empty();
        auto removed = [&](const rules::IpPrefix& p) {
            if (auto* p4 = std::get_if<rules::Ipv4Prefix>(&p)) return v4.removes(*p4);
            return v6.removes(std::get<rules::Ipv6Prefix>(p));
        };
        for (std::size_t i = 0; i < bytes.size();) {
            std::size_t nl = bytes.find('\n', i);
            std::size_t end = nl == std::string::npos ? bytes.size() : nl + 1;
            std::string_view line(bytes.data() + i, end - i);
            auto p = removing ? line_prefix(line) : std::nullopt;
            if (!p || !removed(*p)) {
                next.append(line);
                if (nl == std::string::npos) next += '\n';
            }
            i = end;
        }
        for (const auto& p : v4.add) next += p.str() + "\n";
        for (const auto& p : v6.add) next += p.str() + "\n";

        // Both families take the one-pass path (translate_edit: the live
        // image with the edit merged in) and the compiled set follows in place
        // after the commit: no copy of a million rules.
        bpfmaps::RuleEdit edit{v4.add, v4.remove, v6.add, v6.remove};
        const std::size_t after4 = set_->rules.size() + v4.add.size() - v4.remove.size();
        const std::size_t after6 = set_->rules6.size() + v6.add.size() - v6.remove.size();
        std::vector<bpfmaps::Installer::Plan> plans;
        for (auto& i : ifaces_) {
            plans.push_back(log.run("prepare", {{"dev", i.dev}}, [&] {
                try {
                    // Rule ids 1..max_rules-1 are one space for both families.
                    if (after4 + after6 >= i.dp->max_rules())
                        throw std::length_error(std::to_string(after4 + after6) + " rules (" +
                                                std::to_string(after4) + " IPv4, " + std::to_string(after6) +
                                                " IPv6) do not fit its datapath, which holds " +
                                                std::to_string(i.dp->max_rules() - 1) + " of both families");
                    return i.inst->prepare_edit(vault, edit);
                } catch (const std::exception& e) {
                    throw std::runtime_error("interface " + i.dev + ": " + e.what() + " (nothing changed)");
                }
            }));
        }
        std::optional<PendingFile> pending;
        log.run("persist", {{"file", vit->ip_rules_file}}, [&] { pending.emplace(vit->ip_rules_file, next); });
        auto reports = apply_plans_locked(plans, log, "rename", [&] { pending->commit(); });

        // Committed: the model and the compiled set follow.
        v4.commit(vit->ip_rules, vit->ip_rules_file);
        v6.commit(vit->ip_rules6, vit->ip_rules_file);
        v4.apply(set_->rules, vi);
        v6.apply(set_->rules6, vi);
        reference_.reset();  // rebuilt by the next explain
        ++reloads_ok_;

        const std::uint64_t gen = reports.empty() ? 0 : reports.front().generation;
        const double took = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        out["generation"] = gen;
        out["added"] = strs(v4.add, v6.add);
        out["removed"] = strs(v4.remove, v6.remove);
        out["unchanged"] = unchanged;
        out["rules"] = set_->rules.size() + set_->rules6.size();
        out["took_ms"] = static_cast<double>(static_cast<long long>(took * 1000 + 0.5)) / 1000;
        out["phases"] = log.phases();
        spdlog::info("rule {} ({}): vault {} +{} -{} -> generation {}, {:.1f} ms", op, vit->ip_rules_file, vault,
                     v4.add.size() + v6.add.size(), v4.remove.size() + v6.remove.size(), gen, took);
        last_reload_ = {{"ok", true}, {"trigger", "rule " + op}, {"file", vit->ip_rules_file},
                        {"generation", gen}, {"took_ms", out["took_ms"]}};
        return out;
    } catch (const std::exception& e) {
        spdlog::warn("rule {} for vault {} refused, rules unchanged: {}", op, vault, e.what());
        return {{"ok", false}, {"error", e.what()}, {"step", log.current()}, {"phases", log.phases()}};
    }
}

Json Daemon::diff(const std::string& path) {
    rules::RuleFile rf;
    try {
        rf = rules::load_rule_file(path);
    } catch (const rules::RuleFileError& e) {
        Json errs = Json::array();
        for (const auto& d : e.diagnostics()) errs.push_back(d.str());
        return {{"ok", false}, {"error", e.what()}, {"errors", errs}};
    }
    rules::CompiledRuleSet next = rules::compile(rf);
    std::lock_guard lk(mu_);
    if (!set_) throw std::runtime_error("no rules loaded");
    const rules::CompiledRuleSet& live = *set_;
    using Key = std::tuple<std::uint32_t, std::uint32_t, std::uint8_t>;  // vni, addr, len
    using Key6 = std::tuple<std::uint32_t, rules::Ipv6Prefix>;
    auto rules_of = [](const rules::CompiledRuleSet& s) {
        std::map<std::string, std::vector<Key>> by_vault;
        for (const auto& r : s.rules) by_vault[s.vaults[r.vault].name].push_back({r.vni, r.prefix.addr, r.prefix.len});
        for (auto& [n, v] : by_vault) std::sort(v.begin(), v.end());
        return by_vault;
    };
    auto rules6_of = [](const rules::CompiledRuleSet& s) {
        std::map<std::string, std::vector<Key6>> by_vault;
        for (const auto& r : s.rules6) by_vault[s.vaults[r.vault].name].push_back({r.vni, r.prefix});
        for (auto& [n, v] : by_vault) std::sort(v.begin(), v.end());
        return by_vault;
    };
    auto settings_of = [](const rules::CompiledRuleSet& s, std::uint32_t vi) {
        const auto& v = s.vaults[vi];
        std::vector<std::tuple<std::uint32_t, std::uint32_t, std::uint16_t, int, bool>> eps;
        for (const auto& e : s.endpoints)
            if (e.vault == vi) eps.push_back({e.vni, e.addr, e.port, static_cast<int>(e.proto), e.is_private});
        std::sort(eps.begin(), eps.end());
        std::vector<std::tuple<std::uint32_t, rules::Ipv6Addr, std::uint16_t, int, bool>> eps6;
        for (const auto& e : s.endpoints6)
            if (e.vault == vi) eps6.push_back({e.vni, e.addr, e.port, static_cast<int>(e.proto), e.is_private});
        std::sort(eps6.begin(), eps6.end());
        return std::tuple(v.public_access_disabled, v.default_allow, v.bypass, std::pair(eps, eps6));
    };
    auto old_rules = rules_of(live), new_rules = rules_of(next);
    auto old_rules6 = rules6_of(live), new_rules6 = rules6_of(next);
    std::map<std::string, std::uint32_t> old_idx, new_idx;
    for (std::uint32_t i = 0; i < live.vaults.size(); ++i) old_idx[live.vaults[i].name] = i;
    for (std::uint32_t i = 0; i < next.vaults.size(); ++i) new_idx[next.vaults[i].name] = i;
    std::set<std::string> names;
    for (auto& [n, i] : old_idx) names.insert(n);
    for (auto& [n, i] : new_idx) names.insert(n);
    Json vaults = Json::array();
    for (const auto& n : names) {
        const auto& a = old_rules[n];
        const auto& b = new_rules[n];
        std::vector<Key> added, removed;
        std::set_difference(b.begin(), b.end(), a.begin(), a.end(), std::back_inserter(added));
        std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(removed));
        const auto& a6 = old_rules6[n];
        const auto& b6 = new_rules6[n];
        std::vector<Key6> added6, removed6;
        std::set_difference(b6.begin(), b6.end(), a6.begin(), a6.end(), std::back_inserter(added6));
        std::set_difference(a6.begin(), a6.end(), b6.begin(), b6.end(), std::back_inserter(removed6));
        const bool was = old_idx.count(n), is = new_idx.count(n);
        Json settings = Json::array();
        if (was && is) {
            auto [opd, oda, ob, oe] = settings_of(live, old_idx[n]);
            auto [npd, nda, nb, ne] = settings_of(next, new_idx[n]);
            if (opd != npd) settings.push_back("public_network_access");
            if (oda != nda) settings.push_back("default_action");
            if (ob != nb) settings.push_back("bypass");
            if (oe != ne) settings.push_back("endpoints");
        }
        if (was && is && added.empty() && removed.empty() && added6.empty() && removed6.empty() &&
            settings.empty())
            continue;
        auto fmt = [](const std::vector<Key>& v, const std::vector<Key6>& v6) {
            Json out = Json::array();
            auto put = [&](std::uint32_t vni, const std::string& p) {
                if (out.size() < kDiffListed)  // the counts stay exact
                    out.push_back(vni ? p + " (vni " + std::to_string(vni) + ")" : p);
            };
            for (const auto& [vni, addr, len] : v) put(vni, rules::Ipv4Prefix{addr, len}.str());
            for (const auto& [vni, p] : v6) put(vni, p.str());
            return out;
        };
        vaults.push_back({{"vault", n},
                          {"change", !was ? "added" : !is ? "removed" : "changed"},
                          {"rules_added", added.size() + added6.size()},
                          {"rules_removed", removed.size() + removed6.size()},
                          {"added", fmt(added, added6)},
                          {"removed", fmt(removed, removed6)},
                          {"settings", settings}});
    }
    Json host = Json::array();
    if (live.vxlan_port != next.vxlan_port) host.push_back("vxlan_port");
    if (live.vteps != next.vteps || live.vteps6 != next.vteps6) host.push_back("vteps");
    return {{"ok", true}, {"file", path}, {"live", config_path_}, {"changes", !vaults.empty() || !host.empty()},
            {"vaults", vaults}, {"host", host}};
}

}  // namespace vaultwall::daemon
