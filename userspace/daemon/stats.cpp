#include "daemon/stats.hpp"

#include <bpf/bpf.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <tuple>

#include "common/reasons.hpp"
#include "rules/ipv4.hpp"

namespace vaultwall::daemon {

using bpfmaps::Count;

std::map<std::uint32_t, std::string> read_vault_names(const bpfmaps::Datapath& dp) {
    return bpfmaps::read_vault_names(bpfmaps::KernelMaps(dp));
}

void Counters::add(const bpfmaps::CounterSnapshot& snap,
                   const std::map<std::uint32_t, std::string>& names) {
    generation = std::max(generation, snap.generation);
    for (int r = 0; r < VW_GLOBAL_REASONS; ++r) {
        global[r].packets += snap.global[r].packets;
        global[r].bytes += snap.global[r].bytes;
    }
    for (const auto& [id, row] : snap.vaults) {
        auto it = names.find(id);
        if (it == names.end()) continue;
        auto& dst = vaults[it->second];
        for (int r = 0; r < VW_VAULT_REASONS; ++r) {
            dst[r].packets += row[r].packets;
            dst[r].bytes += row[r].bytes;
        }
    }
}

Count Counters::get(vw_reason r, const std::string& vault) const {
    if (r < VW_GLOBAL_REASONS) return global[r];
    auto it = vaults.find(vault);
    return it == vaults.end() ? Count{} : it->second[r - VW_GLOBAL_REASONS];
}

Count Counters::total(bool pass) const {
    Count t;
    auto add = [&](vw_reason r, const Count& c) {
        if (reason_is_pass(r) == pass) {
            t.packets += c.packets;
            t.bytes += c.bytes;
        }
    };
    for (int r = 0; r < VW_GLOBAL_REASONS; ++r) add(vw_reason(r), global[r]);
    for (const auto& [name, row] : vaults)
        for (int r = 0; r < VW_VAULT_REASONS; ++r) add(vw_reason(r + VW_GLOBAL_REASONS), row[r]);
    return t;
}

void collect_counters(const bpfmaps::Datapath& dp,
                      const std::map<std::uint32_t, std::string>& names, Counters& into) {
    std::vector<std::uint32_t> ids;
    for (const auto& [id, n] : names) ids.push_back(id);
    into.add(bpfmaps::read_counters(dp, ids), names);
    for (const auto& [id, n] : names) into.vaults[n];  // vaults without traffic show zeros
}

namespace {
Json leaf(const Count& c) { return {{"packets", c.packets}, {"bytes", c.bytes}}; }

// SPEC §4 key order within each group.
const vw_reason kGlobalPass[] = {VW_PASS_NOT_IP, VW_PASS_UNPROTECTED};
const vw_reason kGlobalDrop[] = {VW_DROP_MALFORMED, VW_DROP_UNTRUSTED_VTEP, VW_DROP_FRAGMENT,
                                 VW_DROP_NOT_PRIVATE_LINK};
const vw_reason kVaultPass[] = {VW_PASS_PRIVATE_ENDPOINT, VW_PASS_IP_RULE, VW_PASS_VNET_RULE,
                                VW_PASS_DEFAULT_ALLOW, VW_PASS_TRUSTED_CANDIDATE};
const vw_reason kVaultDrop[] = {VW_DROP_NO_RULE, VW_DROP_PUBLIC_ACCESS_DISABLED};
const vw_reason kVaultAudit[] = {VW_AUDIT_NO_RULE, VW_AUDIT_PUBLIC_ACCESS_DISABLED};
}  // namespace

Json stats_json(const Counters& c) {
    using Json = nlohmann::ordered_json;
    Json global = {{"pass", Json::object()}, {"drop", Json::object()}};
    for (auto r : kGlobalPass) global["pass"][reason_name(r)] = leaf(c.get(r));
    for (auto r : kGlobalDrop) global["drop"][reason_name(r)] = leaf(c.get(r));
    Json vaults = Json::object();
    for (const auto& [name, row] : c.vaults) {
        Json v = {{"pass", Json::object()}, {"drop", Json::object()}, {"audit", Json::object()}};
        for (auto r : kVaultPass) v["pass"][reason_name(r)] = leaf(c.get(r, name));
        for (auto r : kVaultDrop) v["drop"][reason_name(r)] = leaf(c.get(r, name));
        for (auto r : kVaultAudit) v["audit"][reason_name(r)] = leaf(c.get(r, name));
        vaults[name] = std::move(v);
    }
    return Json{{"generation", c.generation}, {"global", global}, {"vaults", vaults}};
}

std::string stats_table(const Counters& c) {
    std::ostringstream os;
    char line[160];
    std::snprintf(line, sizeof(line), "generation %llu\n\n%-24s %-8s %-22s %14s %16s\n",
                  static_cast<unsigned long long>(c.generation), "VAULT", "VERDICT", "REASON",
                  "PACKETS", "BYTES");
    os << line;
    auto row = [&](const std::string& vault, vw_reason r, const Count& n) {
        std::snprintf(line, sizeof(line), "%-24s %-8s %-22s %14llu %16llu\n", vault.c_str(),
                      verdict_name(r), reason_name(r),
                      static_cast<unsigned long long>(n.packets),
                      static_cast<unsigned long long>(n.bytes));
        os << line;
    };
    for (auto r : kGlobalPass) row("(global)", r, c.get(r));
    for (auto r : kGlobalDrop) row("(global)", r, c.get(r));
    for (const auto& [name, v] : c.vaults) {
        for (auto r : kVaultPass) row(name, r, c.get(r, name));
        for (auto r : kVaultDrop) row(name, r, c.get(r, name));
        for (auto r : kVaultAudit) row(name, r, c.get(r, name));
    }
    auto p = c.total(true), d = c.total(false);
    std::snprintf(line, sizeof(line), "\ntotal pass %llu packets (%llu bytes), drop %llu packets (%llu bytes)\n",
                  static_cast<unsigned long long>(p.packets), static_cast<unsigned long long>(p.bytes),
                  static_cast<unsigned long long>(d.packets), static_cast<unsigned long long>(d.bytes));
    os << line;
    std::uint64_t audited = 0;
    for (const auto& [name, v] : c.vaults)
        for (auto r : kVaultAudit) audited += c.get(r, name).packets;
    if (audited) {
        std::snprintf(line, sizeof(line), "of the passed, %llu packets only because their vault is in audit mode\n",
                      static_cast<unsigned long long>(audited));
        os << line;
    }
    return os.str();
}

std::vector<RuleRow> collect_rules(const bpfmaps::Datapath& dp, const std::map<std::uint32_t, std::string>& names,
                                   const bpfmaps::SetImage& live, const rules::CompiledRuleSet* set) {
    // Origins of the compiled rules by identity (vault name, vni, prefix).
    std::map<std::tuple<std::string, std::uint32_t, std::uint32_t, std::uint8_t>, std::string> origin;
    if (set)
        for (const auto& r : set->rules)
            origin[{set->vaults[r.vault].name, r.vni, r.prefix.addr, r.prefix.len}] = r.origin;
    std::vector<RuleRow> rows;
    for (const auto& lr : bpfmaps::live_rules_of(live)) {
        RuleRow row;
        auto name = names.find(lr.vault_id);
        row.vault = name != names.end() ? name->second : "#" + std::to_string(lr.vault_id);
        row.kind = lr.vni ? "vnet_rule" : "ip_rule";
        row.prefix = rules::Ipv4Prefix{lr.addr, lr.len}.str();
        row.vni = lr.vni;
        row.rule_id = lr.rule_id;
        row.hits = bpfmaps::read_rule_hits(dp, lr.rule_id);
        if (auto it = origin.find({row.vault, lr.vni, lr.addr, lr.len}); it != origin.end())
            row.origin = it->second;
        rows.push_back(std::move(row));
    }
    auto key = [](const RuleRow& r) {
        auto p = rules::parse_ipv4_prefix(r.prefix);
        return std::tuple(r.vault, r.vni, p ? p->prefix.addr : 0u, p ? p->prefix.len : 0);
    };
    std::sort(rows.begin(), rows.end(),
              [&](const RuleRow& a, const RuleRow& b) { return key(a) < key(b); });
    return rows;
}

void merge_rules(std::vector<RuleRow>& into, const std::vector<RuleRow>& more) {
    // By identity, not a scan per row: a million rules on two interfaces.
    std::map<std::tuple<std::string, std::uint32_t, std::string>, std::size_t> at;
    for (std::size_t k = 0; k < into.size(); ++k) at[{into[k].vault, into[k].vni, into[k].prefix}] = k;
    for (const auto& m : more) {
        auto [it, fresh] = at.try_emplace({m.vault, m.vni, m.prefix}, into.size());
        if (fresh)
            into.push_back(m);
        else
            into[it->second].hits += m.hits;
    }
}

Json rules_json(const std::vector<RuleRow>& rows) {
    Json a = Json::array();
    for (const auto& r : rows) {
        Json j = {{"vault", r.vault}, {"kind", r.kind}, {"prefix", r.prefix},
                            {"hits", r.hits}};
        if (r.kind == "vnet_rule") j["vni"] = r.vni;
        if (!r.origin.empty()) j["origin"] = r.origin;
        a.push_back(std::move(j));
    }
    return a;
}

std::string rules_table(const std::vector<RuleRow>& rows) {
    std::ostringstream os;
    char line[200];
    std::snprintf(line, sizeof(line), "%-24s %-10s %-20s %-9s %-20s %14s\n", "VAULT", "KIND",
                  "PREFIX", "VNI", "ORIGIN", "HITS");
    os << line;
    for (const auto& r : rows) {
        std::snprintf(line, sizeof(line), "%-24s %-10s %-20s %-9s %-20s %14llu\n", r.vault.c_str(),
                      r.kind.c_str(), r.prefix.c_str(),
                      r.vni ? std::to_string(r.vni).c_str() : "-",
                      r.origin.empty() ? "-" : r.origin.c_str(),
                      static_cast<unsigned long long>(r.hits));
        os << line;
    }
    os << rows.size() << " rules\n";
    return os.str();
}

}  // namespace vaultwall::daemon
