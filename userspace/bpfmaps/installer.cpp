#include "bpfmaps/installer.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace vaultwall::bpfmaps {

std::vector<LiveRule> live_rules_of(const SetImage& image) {
    std::vector<LiveRule> out;
    out.reserve(image.rules->size());
    for (const auto& e : *image.rules) out.push_back({e.id, e.vault_id(), e.vni(), e.addr(), e.len()});
    std::sort(out.begin(), out.end(), [](const LiveRule& a, const LiveRule& b) { return a.rule_id < b.rule_id; });
    return out;
}

std::vector<LiveRule6> live_rules6_of(const SetImage& image) {
    std::vector<LiveRule6> out;
    out.reserve(image.rules6->size());
    for (const auto& e : *image.rules6) out.push_back({e.id, e.vault_id(), e.vni(), {e.addr, e.len}});
    std::sort(out.begin(), out.end(), [](const LiveRule6& a, const LiveRule6& b) { return a.rule_id < b.rule_id; });
    return out;
}

Installer::Installer(const Datapath& dp) : Installer(std::make_unique<KernelMaps>(dp)) {}

Installer::Installer(std::unique_ptr<MapBackend> owned) : owned_(std::move(owned)), maps_(*owned_) { adopt(); }

Installer::Installer(MapBackend& maps) : maps_(maps) { adopt(); }

Installer::~Installer() = default;

void Installer::adopt() {
    max_rules_ = maps_.max_rules();
    std::uint32_t zero = 0;
    vw_state st{};
    if (!maps_.get(Map::state, zero, st)) throw BpfError("reading vw_state", ENOENT);
    live_ = st.active_set & 1;
    generation_ = st.generation;
    names_ = read_vault_names(maps_);
    for (std::uint32_t s = 0; s < VW_SETS; ++s) sets_[s] = read_set_image(maps_, s);
    strides_ = std::make_unique<StrideTables>(maps_);
}

void Installer::relearn_set(std::uint32_t set) {
    sets_[set] = read_set_image(maps_, set);
    strides_->relearn(set);
}

// A vault id stays reserved while the live or the idle set refers to it.
void Installer::release_unused_vault_ids() {
    for (auto it = names_.begin(); it != names_.end();) {
        std::uint32_t id = it->first;
        if (sets_[0].vault_flags.count(id) || sets_[1].vault_flags.count(id)) {
            ++it;
            continue;
        }
        maps_.put(Map::vault_names, id, vw_vault_name{}, "releasing a vault name");
        it = names_.erase(it);
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

// Writes of one map gathered into batches (MapBackend::update_many): rules
// come one at a time from a merge, the kernel takes thousands at once.
// Removals go first, so the map never holds much more than either set.
template <class K, class V>
class BatchedWrites {
public:
    BatchedWrites(MapBackend& maps, Map m, const char* put_what, const char* del_what)
        : maps_(maps), m_(m), put_what_(put_what), del_what_(del_what) {}
    void put(const K& k, const V& v) {
        put_keys_.push_back(k);
        values_.push_back(v);
        if (put_keys_.size() == kChunk) flush();
    }
    void del(const K& k) {
        del_keys_.push_back(k);
        if (del_keys_.size() == kChunk) flush();
    }
    void flush() {
        maps_.remove_many(m_, del_keys_.data(), del_keys_.size(), del_what_);
        del_keys_.clear();
        maps_.update_many(m_, put_keys_.data(), values_.data(), put_keys_.size(), put_what_);
        put_keys_.clear();
        values_.clear();
    }

private:
    static constexpr std::size_t kChunk = 8192;
    MapBackend& maps_;
    Map m_;
    const char *put_what_, *del_what_;
    std::vector<K> put_keys_, del_keys_;
    std::vector<V> values_;
};

}  // namespace

void Installer::write_set(std::uint32_t set, const Translation& t) {
    SetImage& have = sets_[set];
    const SetImage& want = t.image;
    sync_table(have.vault_flags, want.vault_flags,
        [&](std::uint32_t id, std::uint32_t flags) {
            maps_.put(Map::vaults, std::uint32_t(set * VW_MAX_VAULTS + id), vw_vault{flags}, "writing a vault");
        },
        [&](std::uint32_t id) {
            maps_.put(Map::vaults, std::uint32_t(set * VW_MAX_VAULTS + id), vw_vault{0}, "clearing a vault");
        });
    auto vtep_key = [&](const std::pair<std::uint32_t, std::uint8_t>& p) {
        return vw_vtep_key{std::uint32_t(VW_VTEP_KEY_FIXED_BITS + p.second), set, htonl(p.first)};
    };
    sync_table(have.vteps, want.vteps,
        [&](const auto& p, bool) { maps_.put(Map::vteps, vtep_key(p), std::uint32_t(1), "writing a VTEP"); },
        [&](const auto& p) { maps_.del(Map::vteps, vtep_key(p), "deleting a VTEP"); });
    auto ep_key = [&](const EndpointId& id) {
        vw_endpoint_key k{};
        k.set = std::uint8_t(set);
        std::tie(k.proto, k.port, k.vni, k.addr) = id;
        return k;
    };
    sync_table(have.endpoints, want.endpoints,
        [&](const auto& id, const vw_endpoint& ep) { maps_.put(Map::endpoints, ep_key(id), ep, "writing an endpoint"); },
        [&](const auto& id) { maps_.del(Map::endpoints, ep_key(id), "deleting an endpoint"); });
    sync_table(have.protected_addrs, want.protected_addrs,
        [&](std::uint32_t a, bool) {
            maps_.put(Map::protected_addrs, vw_addr_key{set, a}, std::uint32_t(1), "writing a protected address");
        },
        [&](std::uint32_t a) { maps_.del(Map::protected_addrs, vw_addr_key{set, a}, "deleting a protected address"); });
    auto rule_key = [&](const RuleEntry& r) {
        return vw_rule_key{std::uint32_t(VW_RULE_KEY_FIXED_BITS + r.len()), set, r.vault_id(), r.vni(),
                           htonl(r.addr())};
    };
    std::vector<std::uint64_t> changed;  // scopes whose rules differ
    auto note_scope = [&](std::uint64_t scope) {  // rules come by scope: not one entry a rule
        if (changed.empty() || changed.back() != scope) changed.push_back(scope);
    };
    BatchedWrites<vw_rule_key, std::uint32_t> writes(maps_, Map::rules, "writing a rule", "deleting a rule");
    auto upsert = [&](const RuleEntry& w) {
        writes.put(rule_key(w), w.id);
        note_scope(w.scope);
    };
    auto remove = [&](const RuleEntry& gone) {
        writes.del(rule_key(gone));
        note_scope(gone.scope);
    };
    if (have.rules.get() == t.from) {
        // This set holds what the translation was made against: its
        // difference is the set's difference (no second million-rule merge).
        for (const auto& e : t.removals) remove(e);
        for (const auto& e : t.upserts) upsert(e);
    } else {  // this set held other rules (adopted maps, a failed write)
        merge_rule_lists(*have.rules, *want.rules,
            [&](const RuleEntry& w, const RuleEntry* h) {
                if (!h || h->id != w.id) upsert(w);
            },
            remove);
    }
    writes.flush();
    std::sort(changed.begin(), changed.end());
    changed.erase(std::unique(changed.begin(), changed.end()), changed.end());
    // After the trie: a scope that falls back to it must find its rules there.
    write_strides(set, *want.rules, changed);
    write_set6(set, t);
    vw_config cfg{};
    cfg.vxlan_port = want.vxlan_port;
    cfg.drop_events_per_second = want.drop_events_per_second;
    cfg.installed = 1;
    maps_.put(Map::config, set, cfg, "writing the host config");
    have = want;
}

// The IPv6 tables of one set. Every IPv6 rule is in the vw_rules6 trie (the
// record read_set_image() adopts) and in vw_rules6_hash (the lookup): a rule
// goes into the trie before the hash and leaves the hash before the trie, so
// a write that fails half-way never leaves a hash entry the trie lacks.
void Installer::write_set6(std::uint32_t set, const Translation& t) {
    SetImage& have = sets_[set];
    const SetImage& want = t.image;
    auto vtep_key = [&](const std::pair<rules::Ipv6Addr, std::uint8_t>& p) {
        vw_vtep6_key k{};
        k.prefixlen = VW_VTEP_KEY_FIXED_BITS + p.second;
        k.set = set;
        std::memcpy(k.addr, p.first.data(), sizeof(k.addr));
        return k;
    };
    sync_table(have.vteps6, want.vteps6,
        [&](const auto& p, bool) { maps_.put(Map::vteps6, vtep_key(p), std::uint32_t(1), "writing an IPv6 VTEP"); },
        [&](const auto& p) { maps_.del(Map::vteps6, vtep_key(p), "deleting an IPv6 VTEP"); });
    auto ep_key = [&](const EndpointId6& id) {
        vw_endpoint6_key k{};
        k.set = std::uint8_t(set);
        k.proto = std::get<0>(id);
        k.port = std::get<1>(id);
        k.vni = std::get<2>(id);
        std::memcpy(k.addr, std::get<3>(id).data(), sizeof(k.addr));
        return k;
    };
    sync_table(have.endpoints6, want.endpoints6,
        [&](const auto& id, const vw_endpoint& ep) {
            maps_.put(Map::endpoints6, ep_key(id), ep, "writing an IPv6 endpoint");
        },
        [&](const auto& id) { maps_.del(Map::endpoints6, ep_key(id), "deleting an IPv6 endpoint"); });
    auto addr_key = [&](const rules::Ipv6Addr& a) {
        vw_addr6_key k{};
        k.set = set;
        std::memcpy(k.addr, a.data(), sizeof(k.addr));
        return k;
    };
    sync_table(have.protected_addrs6, want.protected_addrs6,
        [&](const rules::Ipv6Addr& a, bool) {
            maps_.put(Map::protected_addrs6, addr_key(a), std::uint32_t(1), "writing a protected IPv6 address");
        },
        [&](const rules::Ipv6Addr& a) {
            maps_.del(Map::protected_addrs6, addr_key(a), "deleting a protected IPv6 address");
        });
    auto rule_key = [&](const RuleEntry6& r) {
        vw_rule6_key k{};
        k.prefixlen = VW_RULE_KEY_FIXED_BITS + r.len;
        k.set = set;
        k.vault_id = r.vault_id();
        k.vni = r.vni();
        std::memcpy(k.addr, r.addr.data(), sizeof(k.addr));
        return k;
    };
    // One batch per map and direction, each fed and flushed in that order,
    // so a hash write never reaches the kernel ahead of its trie write (nor
    // a trie delete ahead of its hash delete).
    using Batch = BatchedWrites<vw_rule6_key, std::uint32_t>;
    const char* put_what = "writing an IPv6 rule";
    const char* del_what = "deleting an IPv6 rule";
    Batch hash_del(maps_, Map::rules6_hash, put_what, del_what), trie_del(maps_, Map::rules6, put_what, del_what),
        trie_put(maps_, Map::rules6, put_what, del_what), hash_put(maps_, Map::rules6_hash, put_what, del_what);
    auto upsert = [&](const RuleEntry6& w) {
        trie_put.put(rule_key(w), w.id);
        hash_put.put(rule_key(w), w.id);
    };
    auto remove = [&](const RuleEntry6& gone) {
        hash_del.del(rule_key(gone));
        trie_del.del(rule_key(gone));
    };
    if (have.rules6.get() == t.from6) {
        for (const auto& e : t.removals6) remove(e);
        for (const auto& e : t.upserts6) upsert(e);
    } else {  // adopted maps or a failed write: the hash may lack what the trie holds
        merge_rule_lists(*have.rules6, *want.rules6, [&](const RuleEntry6& w, const RuleEntry6*) { upsert(w); },
                         remove);
    }
    for (Batch* b : {&hash_del, &trie_del, &trie_put, &hash_put}) b->flush();
    auto scope_key = [&](std::uint64_t scope) {
        return vw_scope_key{set, static_cast<std::uint32_t>(scope >> 32), static_cast<std::uint32_t>(scope)};
    };
    sync_table(have.scopes6, want.scopes6,
        [&](std::uint64_t scope, const vw_scope6& v) { maps_.put(Map::scopes6, scope_key(scope), v, "writing an IPv6 rule scope"); },
        [&](std::uint64_t scope) { maps_.del(Map::scopes6, scope_key(scope), "deleting an IPv6 rule scope"); });
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

void Installer::write_state(std::uint32_t live, std::uint64_t generation) {
    vw_state st{};
    st.active_set = live;
    st.generation = generation;
    maps_.put(Map::state, std::uint32_t(0), st, "switching the live rule set");
    live_ = live;
    generation_ = generation;
    maps_.grace_period();
}

Installer::Plan Installer::prepare(const rules::CompiledRuleSet& set) const {
    Plan p;
    p.started = std::chrono::steady_clock::now();
    // Rule ids of the live set stay taken while the new set is written.
    p.t = translate(set, sets_[live_], names_, max_rules_);
    p.vaults = set.vaults.size();
    p.endpoints = set.endpoints.size() + set.endpoints6.size();
    p.rules = set.rules.size() + set.rules6.size();
    p.for_generation = generation_;
    return p;
}

Installer::Plan Installer::prepare_edit(const std::string& vault, const RuleEdit& edit) const {
    Plan p;
    p.started = std::chrono::steady_clock::now();
    auto id = vault_id(vault);
    if (!id) throw std::invalid_argument("vault " + vault + " is not in this datapath");
    p.t = translate_edit(sets_[live_], *id, vault, edit, max_rules_);
    p.vaults = p.t.image.vault_flags.size();
    p.endpoints = p.t.image.endpoints.size() + p.t.image.endpoints6.size();
    p.rules = p.t.image.rules->size() + p.t.image.rules6->size();
    p.for_generation = generation_;
    return p;
}

void Installer::write_idle(const Plan& p) {
    if (p.for_generation != generation_ || before_flip_)
        throw std::logic_error("install plan made for generation " + std::to_string(p.for_generation) +
                               ", the datapath is at " + std::to_string(generation_));
    const std::uint32_t idle = live_ ^ 1;
    try {
        // New vault ids: counters zeroed before the name makes them count.
        std::vector<std::uint32_t> counters;
        for (const auto& [id, name] : p.t.new_vaults)
            for (std::uint32_t r = VW_GLOBAL_REASONS; r < VW_REASONS; ++r)
                counters.push_back(VW_VAULT_COUNTER_INDEX(id, r));
        maps_.zero(Map::vault_counters, counters, "zeroing vault counters");
        for (const auto& [id, name] : p.t.new_vaults) {
            vw_vault_name n{};
            std::memcpy(n.name, name.data(), name.size());
            maps_.put(Map::vault_names, id, n, "registering a vault name");
            names_[id] = name;
        }
        maps_.zero(Map::rule_hits, p.t.fresh_rule_ids, "zeroing rule hits");
        write_set(idle, p.t);
    } catch (...) {
        // The idle set is half-written: relearn it, and give back the vault
        // ids no set refers to.
        try {
            relearn_set(idle);
            release_unused_vault_ids();
        } catch (...) {
        }
        throw;
    }
}

void Installer::flip(const Plan& p) {
    if (p.for_generation != generation_ || before_flip_) throw std::logic_error("flip without write_idle");
    const auto before = std::pair{live_, generation_};
    write_state(live_ ^ 1, generation_ + 1);
    before_flip_ = before;
}

void Installer::flip_back() {
    if (!before_flip_) return;
    write_state(before_flip_->first, before_flip_->second);
    before_flip_.reset();
}

InstallReport Installer::finish(const Plan& p) {
    const std::uint32_t old_live = live_ ^ 1;
    before_flip_.reset();
    // No packet runs on the old set any more: bring it up to date too, so
    // the next reload writes only its own difference (a one-rule change stays
    // a one-rule write) and no id is held by a set nobody reads.
    try {
        write_set(old_live, p.t);
    } catch (...) {
        try {
            relearn_set(old_live);  // the live set is fine; relearn this one
        } catch (...) {
        }
    }
    try {
        release_unused_vault_ids();
    } catch (...) {
    }
    InstallReport rep;
    rep.generation = generation_;
    rep.vaults = p.vaults;
    rep.endpoints = p.endpoints;
    rep.rules = p.rules;
    rep.diff = p.t.diff;
    rep.vault_ids = p.t.vault_ids;
    rep.rule_ids = p.t.rule_ids;
    rep.rule_ids6 = p.t.rule_ids6;
    rep.lookup = strides_->usage(live_);
    rep.took = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - p.started);
    return rep;
}

InstallReport Installer::install(const rules::CompiledRuleSet& set) {
    Plan p = prepare(set);
    write_idle(p);
    flip(p);
    return finish(p);
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

}  // namespace vaultwall::bpfmaps
