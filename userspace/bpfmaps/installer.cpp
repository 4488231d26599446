#include "bpfmaps/installer.hpp"

#include <arpa/inet.h>
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <stdexcept>
#include <thread>

#include "bpfmaps/map_io.hpp"


namespace vaultwall::bpfmaps {

namespace {
RuleEntry make_entry(std::uint32_t vault_id, std::uint32_t vni, std::uint32_t addr, std::uint8_t len,
                     std::uint32_t id) {
    return {std::uint64_t(vault_id) << 32 | vni, std::uint64_t(addr) << 8 | len, id};
}
// Sorts rules by identity (scope, then prefix). The compiler emits them
// sorted by (vault index, vni, prefix), so they arrive as one sorted run per
// vault and only the runs' order (by vault id) may be wrong: reordering runs
// is linear, where a comparison sort of a million rules costs ~100 ms, most
// of a one-rule reload. Any other order falls back to std::sort.
void sort_rules(std::vector<RuleEntry>& v) {
    auto less = [](const RuleEntry& a, const RuleEntry& b) { return a.before(b); };
    std::vector<std::pair<std::size_t, std::size_t>> runs;  // [begin, end)
    for (std::size_t i = 0; i < v.size();) {
        std::size_t j = i + 1;
        while (j < v.size() && less(v[j - 1], v[j])) ++j;
        runs.push_back({i, j});
        i = j;
    }
    if (runs.size() <= 1) return;
    if (runs.size() > VW_MAX_VAULTS) {  // not the compiler's order
        std::sort(v.begin(), v.end(), less);
        return;
    }
    std::sort(runs.begin(), runs.end(), [&](auto a, auto b) { return less(v[a.first], v[b.first]); });
    bool disjoint = true;
    for (std::size_t r = 1; disjoint && r < runs.size(); ++r)
        disjoint = less(v[runs[r - 1].second - 1], v[runs[r].first]);
    if (!disjoint) {
        std::sort(v.begin(), v.end(), less);
        return;
    }
    std::vector<RuleEntry> sorted;
    sorted.reserve(v.size());
    for (auto [b, e] : runs) sorted.insert(sorted.end(), v.begin() + b, v.begin() + e);
    v = std::move(sorted);
}

// Merge of two sorted rule lists: on_want(entry, have_or_null) for each wanted
// rule, on_gone(entry) for each rule only `have` holds.
template <class OnWant, class OnGone>
void merge_rules(const std::vector<RuleEntry>& have, const std::vector<RuleEntry>& want, OnWant on_want,
                 OnGone on_gone) {
    std::size_t h = 0;
    for (const auto& w : want) {
        while (h < have.size() && have[h].before(w)) on_gone(have[h++]);
        if (h < have.size() && have[h].same_rule(w))
            on_want(w, &have[h++]);
        else
            on_want(w, nullptr);
    }
    while (h < have.size()) on_gone(have[h++]);
}
}  // namespace

void wait_for_datapath_grace_period() {
    // MEMBARRIER_CMD_GLOBAL is synchronize_rcu() in the kernel, and every
    // XDP run is an RCU read-side section. Without it (nohz_full kernels) fall
    // back to a sleep far longer than any XDP run.
    if (syscall(__NR_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0) != 0)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
}

Installer::Installer(const Datapath& dp) : dp_(dp), max_rules_(dp.max_rules()) {
    read_state();
    read_names();
    for (std::uint32_t s = 0; s < VW_SETS; ++s) read_set(s, sets_[s]);
    strides_ = std::make_unique<StrideTables>(dp);
}

Installer::~Installer() = default;

void Installer::relearn_set(std::uint32_t set) {
    read_set(set, sets_[set]);
    strides_->relearn(set);
}

void Installer::read_state() {
    std::uint32_t zero = 0;
    vw_state st{};
    if (!map_lookup(dp_.map_fd(Map::state), zero, st)) throw_errno("reading vw_state");
    live_ = st.active_set & 1;
    generation_ = st.generation;
}

void Installer::read_names() {
    names_.clear();
    for (std::uint32_t id = 1; id < VW_MAX_VAULTS; ++id) {
        vw_vault_name n{};
        if (map_lookup(dp_.map_fd(Map::vault_names), id, n) && n.name[0])
            names_[id] = std::string(n.name, strnlen(n.name, sizeof(n.name)));
    }
}

void Installer::read_set(std::uint32_t set, SetShadow& out) const {
    out = SetShadow{};
    vw_config cfg{};
    if (map_lookup(dp_.map_fd(Map::config), set, cfg)) out.vxlan_port = cfg.vxlan_port;
    for (std::uint32_t id = 1; id < VW_MAX_VAULTS; ++id) {
        std::uint32_t idx = set * VW_MAX_VAULTS + id;
        vw_vault v{};
        if (map_lookup(dp_.map_fd(Map::vaults), idx, v) && v.flags) out.vault_flags[id] = v.flags;
    }
    map_for_each_key<vw_vtep_key>(dp_.map_fd(Map::vteps), [&](const vw_vtep_key& k) {
        if (k.set == set)
            out.vteps[{ntohl(k.addr), std::uint8_t(k.prefixlen - VW_VTEP_KEY_FIXED_BITS)}] = true;
    });
    map_for_each_key<vw_endpoint_key>(dp_.map_fd(Map::endpoints), [&](const vw_endpoint_key& k) {
        vw_endpoint ep{};
        if (k.set == set && map_lookup(dp_.map_fd(Map::endpoints), k, ep))
            out.endpoints[{k.proto, k.port, k.vni, k.addr}] = ep;
    });
    map_for_each_key<vw_addr_key>(dp_.map_fd(Map::protected_addrs), [&](const vw_addr_key& k) {
        if (k.set == set) out.protected_addrs[k.addr] = true;
    });
    std::vector<RuleEntry> rules;
    map_for_each_key<vw_rule_key>(dp_.map_fd(Map::rules), [&](const vw_rule_key& k) {
        std::uint32_t id = 0;
        if (k.set == set && map_lookup(dp_.map_fd(Map::rules), k, id))
            rules.push_back(make_entry(k.vault_id, k.vni, ntohl(k.addr),
                                       std::uint8_t(k.prefixlen - VW_RULE_KEY_FIXED_BITS), id));
    });
    sort_rules(rules);
    out.rules = std::make_shared<const std::vector<RuleEntry>>(std::move(rules));
}

std::vector<std::uint32_t> Installer::assign_vault_ids(const rules::CompiledRuleSet& set) {
    std::map<std::string, std::uint32_t> by_name;
    for (auto& [id, name] : names_) by_name[name] = id;
    std::vector<std::uint32_t> ids;
    std::uint32_t next = 1;
    for (const auto& v : set.vaults) {
        if (v.name.empty() || v.name.size() >= VW_VAULT_NAME_LEN)
            throw std::invalid_argument("vault name '" + v.name + "' must be 1.." +
                                        std::to_string(VW_VAULT_NAME_LEN - 1) + " bytes");
        if (auto it = by_name.find(v.name); it != by_name.end()) {
            ids.push_back(it->second);
            continue;
        }
        while (next < VW_MAX_VAULTS && names_.count(next)) ++next;
        if (next >= VW_MAX_VAULTS)
            throw std::length_error("more than " + std::to_string(VW_MAX_VAULTS - 1) +
                                    " vaults (live and new) do not fit the datapath");
        zero_vault_counters(next);
        vw_vault_name n{};
        std::memcpy(n.name, v.name.data(), v.name.size());
        map_update(dp_.map_fd(Map::vault_names), next, n, "registering a vault name");
        names_[next] = v.name;
        by_name[v.name] = next;
        ids.push_back(next);
    }
    return ids;
}

// A vault id stays reserved while the live or the idle set refers to it.
void Installer::release_unused_vault_ids() {
    for (auto it = names_.begin(); it != names_.end();) {
        std::uint32_t id = it->first;
        if (sets_[0].vault_flags.count(id) || sets_[1].vault_flags.count(id)) {
            ++it;
            continue;
        }
        vw_vault_name empty{};
        map_update(dp_.map_fd(Map::vault_names), id, empty, "releasing a vault name");
        it = names_.erase(it);
    }
}

void Installer::zero_vault_counters(std::uint32_t vault_id) {
    for (std::uint32_t r = VW_GLOBAL_REASONS; r < VW_REASONS; ++r) {
        std::uint32_t idx = VW_VAULT_COUNTER_INDEX(vault_id, r);
        percpu_zero<std::uint32_t, vw_counter>(dp_.map_fd(Map::vault_counters), idx,
                                               "zeroing vault counters");
    }
}

void Installer::zero_rule_hits(const std::vector<std::uint32_t>& rule_ids) {
    // One batch for all of them: a reload of a million new rules must not
    // cost a million syscalls here.
    constexpr std::size_t kBatch = 8192;
    const int fd = dp_.map_fd(Map::rule_hits);
    std::vector<std::uint64_t> zeros(kBatch, 0);
    for (std::size_t i = 0; i < rule_ids.size(); i += kBatch) {
        __u32 count = static_cast<__u32>(std::min(kBatch, rule_ids.size() - i));
        if (bpf_map_update_batch(fd, rule_ids.data() + i, zeros.data(), &count, nullptr) == 0) continue;
        for (std::size_t j = i; j < i + std::min(kBatch, rule_ids.size() - i); ++j)
            map_update(fd, rule_ids[j], std::uint64_t(0), "zeroing rule hits");
    }
}

namespace {

// Writes `want` over `have` in a map: updates what differs, deletes what is gone.
template <class Table, class Update, class Delete>
void sync_table(const Table& have, const Table& want, Update update, Delete del) {
    for (const auto& [k, v] : want) {
        auto it = have.find(k);
        if (it == have.end() || !(std::memcmp(&it->second, &v, sizeof(v)) == 0)) update(k, v);
    }
    for (const auto& [k, v] : have)
        if (!want.count(k)) del(k);
}

}  // namespace

void Installer::write_set(std::uint32_t set, SetShadow& have, const SetShadow& want, const RuleDiff& diff) {
    const int fd_vaults = dp_.map_fd(Map::vaults), fd_vteps = dp_.map_fd(Map::vteps);
    const int fd_eps = dp_.map_fd(Map::endpoints), fd_addrs = dp_.map_fd(Map::protected_addrs);
    const int fd_rules = dp_.map_fd(Map::rules);

    sync_table(have.vault_flags, want.vault_flags,
        [&](std::uint32_t id, std::uint32_t flags) {
            map_update(fd_vaults, std::uint32_t(set * VW_MAX_VAULTS + id), vw_vault{flags},
                       "writing a vault");
        },
        [&](std::uint32_t id) {
            map_update(fd_vaults, std::uint32_t(set * VW_MAX_VAULTS + id), vw_vault{0},
                       "clearing a vault");
        });
    auto vtep_key = [&](const std::pair<std::uint32_t, std::uint8_t>& p) {
        return vw_vtep_key{std::uint32_t(VW_VTEP_KEY_FIXED_BITS + p.second), set, htonl(p.first)};
    };
    sync_table(have.vteps, want.vteps,
        [&](const auto& p, bool) { map_update(fd_vteps, vtep_key(p), std::uint32_t(1), "writing a VTEP"); },
        [&](const auto& p) { map_delete(fd_vteps, vtep_key(p), "deleting a VTEP"); });
    auto ep_key = [&](const auto& t) {
        vw_endpoint_key k{};
        k.set = std::uint8_t(set);
        std::tie(k.proto, k.port, k.vni, k.addr) = t;
        return k;
    };
    sync_table(have.endpoints, want.endpoints,
        [&](const auto& t, const vw_endpoint& ep) { map_update(fd_eps, ep_key(t), ep, "writing an endpoint"); },
        [&](const auto& t) { map_delete(fd_eps, ep_key(t), "deleting an endpoint"); });
    sync_table(have.protected_addrs, want.protected_addrs,
        [&](std::uint32_t a, bool) {
            map_update(fd_addrs, vw_addr_key{set, a}, std::uint32_t(1), "writing a protected address");
        },
        [&](std::uint32_t a) { map_delete(fd_addrs, vw_addr_key{set, a}, "deleting a protected address"); });
    auto rule_key = [&](const RuleEntry& r) {
        return vw_rule_key{std::uint32_t(VW_RULE_KEY_FIXED_BITS + r.len()), set, r.vault_id(), r.vni(),
                           htonl(r.addr())};
    };
    std::vector<std::uint64_t> changed;  // scopes whose rules differ
    auto upsert = [&](const RuleEntry& w) {
        map_update(fd_rules, rule_key(w), w.id, "writing a rule");
        changed.push_back(w.scope);
    };
    auto remove = [&](const RuleEntry& gone) {
        map_delete(fd_rules, rule_key(gone), "deleting a rule");
        changed.push_back(gone.scope);
    };
    if (have.rules.get() == diff.from && want.rules.get() == diff.to) {
        for (const auto& e : diff.removals) remove(e);
        for (const auto& e : diff.upserts) upsert(e);
    } else {  // this set held other rules (adopted maps, a failed write)
        merge_rules(*have.rules, *want.rules,
            [&](const RuleEntry& w, const RuleEntry* h) {
                if (!h || h->id != w.id) upsert(w);
            },
            remove);
    }
    std::sort(changed.begin(), changed.end());
    changed.erase(std::unique(changed.begin(), changed.end()), changed.end());
    // After the trie: a scope that falls back to it must find its rules there.
    write_strides(set, *want.rules, changed);
    vw_config cfg{};
    cfg.vxlan_port = want.vxlan_port;
    cfg.installed = 1;
    map_update(dp_.map_fd(Map::config), set, cfg, "writing the host config");
    have = want;
}

// Rebuilds the stride tables of every scope whose rules changed (or that has
// none yet, as after an upgrade) and removes those of scopes that are gone.
void Installer::write_strides(std::uint32_t set, const std::vector<RuleEntry>& want,
                              const std::vector<std::uint64_t>& changed) {
    std::vector<std::uint64_t> wanted;
    for (std::size_t i = 0; i < want.size();) {
        const std::uint64_t scope = want[i].scope;
        std::size_t j = i;
        while (j < want.size() && want[j].scope == scope) ++j;
        wanted.push_back(scope);
        if (std::binary_search(changed.begin(), changed.end(), scope) || !strides_->has_scope(set, scope)) {
            std::vector<StridePrefix> prefixes;
            prefixes.reserve(j - i);
            for (std::size_t k = i; k < j; ++k) prefixes.push_back({want[k].addr(), want[k].len(), want[k].id});
            strides_->write_scope(set, scope, std::move(prefixes));
        }
        i = j;
    }
    for (std::uint64_t scope : strides_->scopes(set))
        if (!std::binary_search(wanted.begin(), wanted.end(), scope)) strides_->remove_scope(set, scope);
}

void Installer::flip(std::uint32_t new_live) {
    vw_state st{};
    st.active_set = new_live;
    st.generation = generation_ + 1;
    map_update(dp_.map_fd(Map::state), std::uint32_t(0), st, "switching the live rule set");
    live_ = new_live;
    generation_ = st.generation;
    wait_for_datapath_grace_period();
}

InstallReport Installer::install(const rules::CompiledRuleSet& set) {
    const auto start = std::chrono::steady_clock::now();
    if (set.endpoints.size() > VW_MAX_ENDPOINTS)
        throw std::length_error(std::to_string(set.endpoints.size()) + " endpoints exceed the " +
                                std::to_string(VW_MAX_ENDPOINTS) + " the datapath holds");
    if (set.vteps.size() > VW_MAX_VTEP_PREFIXES)
        throw std::length_error(std::to_string(set.vteps.size()) + " VTEP prefixes exceed the " +
                                std::to_string(VW_MAX_VTEP_PREFIXES) + " the datapath holds");
    // Rule ids of the live set stay taken while the new set is written.
    const SetShadow& live = sets_[live_];
    InstallReport rep;
    rep.vault_ids = assign_vault_ids(set);

    SetShadow want;
    want.vxlan_port = set.vxlan_port;
    for (const auto& p : set.vteps) want.vteps[{p.addr, p.len}] = true;
    for (std::size_t i = 0; i < set.vaults.size(); ++i) {
        const auto& v = set.vaults[i];
        std::uint32_t flags = VW_VAULT_PRESENT;
        if (v.public_access_disabled) flags |= VW_VAULT_PUBLIC_DISABLED;
        if (v.default_allow) flags |= VW_VAULT_DEFAULT_ALLOW;
        if (v.bypass) flags |= VW_VAULT_BYPASS;
        want.vault_flags[rep.vault_ids[i]] = flags;
    }
    // The first endpoint at an address wins (the compiler refuses duplicates).
    for (const auto& e : set.endpoints) {
        const std::uint32_t vid = rep.vault_ids.at(e.vault);
        const auto proto = static_cast<std::uint8_t>(e.proto);
        const std::uint16_t port = htons(e.port);
        const std::uint32_t addr = htonl(e.addr);
        if (e.is_private) {
            want.endpoints.emplace(std::tuple{proto, port, e.vni, addr},
                                   vw_endpoint{vid, VW_EP_PRIVATE});
            want.endpoints.emplace(std::tuple{proto, port, VW_VNI_ANY_PRIVATE, addr},
                                   vw_endpoint{vid, VW_EP_PRIVATE});
        } else {
            want.endpoints.emplace(std::tuple{proto, port, 0u, addr}, vw_endpoint{vid, 0});
        }
        want.protected_addrs[addr] = true;
    }

    // Rule ids: a rule that stays keeps its id (and its hit count); new
    // rules take ids the live set does not use, with their counts zeroed.
    // `rules` is sorted by identity; each entry's id is first its index in
    // set.rules, then the rule id.
    std::vector<RuleEntry> rules;
    rules.reserve(set.rules.size());
    for (std::size_t i = 0; i < set.rules.size(); ++i) {
        const auto& r = set.rules[i];
        rules.push_back(make_entry(rep.vault_ids.at(r.vault), r.vni, r.prefix.addr, r.prefix.len,
                                   static_cast<std::uint32_t>(i)));  // index for now
    }
    sort_rules(rules);
    std::vector<bool> taken(max_rules_, false);
    taken[0] = true;
    for (const auto& e : *live.rules)
        if (e.id < max_rules_) taken[e.id] = true;
    std::uint32_t next_free = 1;
    std::vector<std::uint32_t> fresh_ids;
    std::vector<std::size_t> added_at;  // positions in `rules`
    RuleDiff rule_diff;
    std::map<std::uint32_t, VaultDiff> diffs;
    rep.rule_ids.assign(set.rules.size(), 0);
    merge_rules(*live.rules, rules,
        [&](const RuleEntry& w, const RuleEntry* kept) {
            std::uint32_t id;
            if (kept) {
                id = kept->id;
            } else {
                while (next_free < max_rules_ && taken[next_free]) ++next_free;
                if (next_free >= max_rules_)
                    throw std::length_error(
                        "the rules do not fit: this host's datapath holds " +
                        std::to_string(max_rules_ - 1) +
                        " rules (live and changed together); raise max_rules when attaching");
                id = next_free;
                taken[id] = true;
                fresh_ids.push_back(id);
                added_at.push_back(static_cast<std::size_t>(&w - rules.data()));
                diffs[w.vault_id()].rules_added++;
            }
            rep.rule_ids[w.id] = id;
        },
        [&](const RuleEntry& gone) {
            rule_diff.removals.push_back(gone);
            diffs[gone.vault_id()].rules_removed++;
        });
    for (auto& e : rules) e.id = rep.rule_ids[e.id];
    for (std::size_t pos : added_at) rule_diff.upserts.push_back(rules[pos]);
    std::size_t scopes = 0;
    for (std::size_t i = 0; i < rules.size(); ++i)
        if (i == 0 || rules[i].scope != rules[i - 1].scope) ++scopes;
    if (scopes > VW_MAX_SCOPES)
        throw std::length_error("rules for " + std::to_string(scopes) +
                                " (vault, virtual network) pairs exceed the " +
                                std::to_string(VW_MAX_SCOPES) + " the datapath holds");
    // Duplicates (the compiler merges them) would share one trie entry.
    for (std::size_t i = 1; i < rules.size(); ++i)
        if (rules[i].same_rule(rules[i - 1]))
            throw std::invalid_argument("duplicate rule in a compiled rule set");

    want.rules = std::make_shared<const std::vector<RuleEntry>>(std::move(rules));
    rule_diff.from = live.rules.get();
    rule_diff.to = want.rules.get();

    zero_rule_hits(fresh_ids);

    const std::uint32_t idle = live_ ^ 1;
    try {
        write_set(idle, sets_[idle], want, rule_diff);
    } catch (...) {
        relearn_set(idle);  // the idle set is half-written: relearn it
        throw;
    }
    const std::uint32_t old_live = live_;
    flip(idle);
    // No packet runs on the old set any more: bring it up to date too, so
    // the next reload writes only its own difference (a one-rule change stays
    // a one-rule write) and no id is held by a set nobody reads.
    try {
        write_set(old_live, sets_[old_live], want, rule_diff);
    } catch (...) {
        relearn_set(old_live);  // the live set is fine; relearn this one
    }
    release_unused_vault_ids();

    for (auto& [vid, d] : diffs) {
        auto n = names_.find(vid);
        d.vault = n != names_.end() ? n->second : "#" + std::to_string(vid);
        rep.diff.push_back(d);
    }
    rep.generation = generation_;
    rep.vaults = set.vaults.size();
    rep.endpoints = set.endpoints.size();
    rep.rules = set.rules.size();
    rep.lookup = strides_->usage(live_);
    rep.took = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - start);
    return rep;
}

std::optional<std::uint32_t> Installer::vault_id(const std::string& name) const {
    for (auto& [id, n] : names_)
        if (n == name) return id;
    return std::nullopt;
}

std::optional<std::string> Installer::vault_name(std::uint32_t id) const {
    auto it = names_.find(id);
    if (it == names_.end()) return std::nullopt;
    return it->second;
}

std::map<std::uint32_t, std::string> Installer::vault_names() const { return names_; }

std::vector<LiveRule> Installer::live_rules() const {
    std::vector<LiveRule> out;
    for (const auto& e : *sets_[live_].rules) out.push_back({e.id, e.vault_id(), e.vni(), e.addr(), e.len()});
    std::sort(out.begin(), out.end(), [](const LiveRule& a, const LiveRule& b) { return a.rule_id < b.rule_id; });
    return out;
}

}  // namespace vaultwall::bpfmaps
