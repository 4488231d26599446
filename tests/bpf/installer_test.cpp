// The Installer over MemoryMaps, without root: the translation's ids (stable
// vault and rule ids, fresh ids never taken from the live set), that prepare
// writes nothing, and that a failed write or a flip back leaves the live set,
// its generation and its counters exactly as they were.
#include <gtest/gtest.h>

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <set>

#include "bpfmaps/image.hpp"
#include "bpfmaps/installer.hpp"
#include "bpfmaps/map_backend.hpp"
#include "rules/compiled.hpp"
#include "rules/ipv4.hpp"
#include "rules/ipv6.hpp"

using namespace vaultwall;
using bpfmaps::Map;

namespace {

rules::Ipv4Prefix pfx(const char* s) { return rules::parse_ipv4_prefix(s)->prefix; }

// Vaults by name, each with one public endpoint and the given ip rules.
rules::CompiledRuleSet rule_set(const std::vector<std::pair<std::string, std::vector<const char*>>>& vaults) {
    rules::CompiledRuleSet s;
    s.vteps.push_back(pfx("198.18.0.0/24"));
    std::uint32_t ep = *rules::parse_ipv4("203.0.113.10");
    for (std::uint32_t v = 0; v < vaults.size(); ++v) {
        s.vaults.push_back({vaults[v].first, false, false, false});
        s.endpoints.push_back({v, 0, ep + v, 443, rules::Proto::tcp, false});
        for (const char* r : vaults[v].second) s.rules.push_back({v, 0, pfx(r), "ip_rules"});
    }
    return s;
}

vw_state state(const bpfmaps::MapBackend& m) {
    vw_state st{};
    std::uint32_t zero = 0;
    EXPECT_TRUE(m.get(Map::state, zero, st));
    return st;
}

std::uint64_t hits(const bpfmaps::MapBackend& m, std::uint32_t id) {
    std::uint64_t h = 0;
    m.get(Map::rule_hits, id, h);
    return h;
}

// rule id of `prefix` in vault `vault_id`, set `set`, straight from the map.
std::optional<std::uint32_t> rule_in_map(const bpfmaps::MapBackend& m, std::uint32_t set, std::uint32_t vault_id,
                                         const char* prefix) {
    auto p = pfx(prefix);
    vw_rule_key k{VW_RULE_KEY_FIXED_BITS + p.len, set, vault_id, 0, htonl(p.addr)};
    std::uint32_t id = 0;
    if (!m.get(Map::rules, k, id)) return std::nullopt;
    return id;
}

struct Fixture {
    bpfmaps::MemoryMaps maps{64, 64};
    Fixture() {
        std::uint32_t zero = 0;
        maps.put(Map::state, zero, vw_state{}, "init");  // an ARRAY map always has its entries
        maps.writes = 0;
    }
};

}  // namespace

TEST(Installer, TranslationKeepsVaultAndRuleIdsAndNeverReusesALiveId) {
    Fixture f;
    bpfmaps::Installer inst(f.maps);
    auto r1 = inst.install(rule_set({{"alpha", {"192.0.2.0/24", "198.51.100.7/32"}}, {"beta", {"192.0.2.0/24"}}}));
    EXPECT_EQ(r1.generation, 1u);
    EXPECT_EQ(r1.vault_ids, (std::vector<std::uint32_t>{1, 2}));
    ASSERT_EQ(r1.rule_ids.size(), 3u);
    // Both sets hold the rules after an install.
    for (std::uint32_t set = 0; set < VW_SETS; ++set)
        EXPECT_EQ(rule_in_map(f.maps, set, 1, "198.51.100.7/32"), r1.rule_ids[1]) << "set " << set;

    // gamma arrives before alpha, beta goes, alpha gains a rule.
    auto r2 = inst.install(rule_set({{"gamma", {"203.0.113.0/24"}}, {"alpha", {"192.0.2.0/24", "198.51.100.7/32", "198.51.100.8/32"}}}));
    EXPECT_EQ(r2.generation, 2u);
    EXPECT_EQ(r2.vault_ids[1], 1u) << "alpha keeps its id";
    EXPECT_EQ(r2.vault_ids[0], 3u) << "gamma does not take beta's id while a set still names beta";
    EXPECT_EQ(r2.rule_ids[1], r1.rule_ids[0]);
    EXPECT_EQ(r2.rule_ids[2], r1.rule_ids[1]);
    for (std::uint32_t fresh : {r2.rule_ids[0], r2.rule_ids[3]})
        for (std::uint32_t live : r1.rule_ids) EXPECT_NE(fresh, live);
    // beta is gone from both sets, so its id and name are released.
    EXPECT_FALSE(inst.vault_name(2));
    EXPECT_EQ(*inst.vault_name(3), "gamma");
    ASSERT_EQ(r2.diff.size(), 3u);
}

TEST(Installer, RuleHitsCarryForRulesThatStayAndStartAtZeroForNewOnes) {
    Fixture f;
    bpfmaps::Installer inst(f.maps);
    auto r1 = inst.install(rule_set({{"alpha", {"192.0.2.0/24"}}}));
    f.maps.put(Map::rule_hits, r1.rule_ids[0], std::uint64_t(41), "test");
    f.maps.put(Map::rule_hits, std::uint32_t(2), std::uint64_t(99), "test");  // a stale count on a free id
    auto r2 = inst.install(rule_set({{"alpha", {"192.0.2.0/24", "198.51.100.0/24"}}}));
    EXPECT_EQ(hits(f.maps, r2.rule_ids[0]), 41u);
    EXPECT_EQ(r2.rule_ids[1], 2u);
    EXPECT_EQ(hits(f.maps, r2.rule_ids[1]), 0u);
}

TEST(Installer, PrepareWritesNothingAndRefusesWhatDoesNotFit) {
    Fixture f;
    bpfmaps::Installer inst(f.maps);
    inst.install(rule_set({{"alpha", {"192.0.2.0/24"}}}));
    const auto writes = f.maps.writes;
    auto plan = inst.prepare(rule_set({{"alpha", {"192.0.2.0/24", "198.51.100.0/24"}}, {"beta", {}}}));
    EXPECT_EQ(f.maps.writes, writes);
    EXPECT_EQ(plan.t.upserts.size(), 1u);
    EXPECT_EQ(plan.t.new_vaults.size(), 1u);

    std::vector<const char*> many;
    std::vector<std::string> storage;
    for (int i = 0; i < 70; ++i) storage.push_back("10.0.0." + std::to_string(i) + "/32");
    for (auto& s : storage) many.push_back(s.c_str());
    EXPECT_THROW(inst.prepare(rule_set({{"alpha", many}})), std::length_error);
    EXPECT_EQ(f.maps.writes, writes);
    EXPECT_EQ(state(f.maps).generation, 1u);
}

// A write that fails at any point of write_idle leaves the live set and its
// generation as they were; the next install then succeeds from what the idle
// set really holds and ends identical to an install that never failed.
TEST(Installer, FailedIdleWriteChangesNothingLiveAtAnyPoint) {
    const auto before = rule_set({{"alpha", {"192.0.2.0/24"}}, {"beta", {"198.51.100.0/24"}}});
    const auto after = rule_set({{"alpha", {"192.0.2.0/24", "192.0.2.128/25"}}, {"gamma", {"203.0.113.0/24"}}});
    // How many writes a clean write_idle takes.
    std::size_t clean = 0;
    {
        Fixture f;
        bpfmaps::Installer inst(f.maps);
        inst.install(before);
        auto p = inst.prepare(after);
        const auto w = f.maps.writes;
        inst.write_idle(p);
        clean = f.maps.writes - w;
    }
    ASSERT_GT(clean, 3u);
    for (std::size_t n = 0; n < clean; ++n) {
        Fixture f;
        bpfmaps::Installer inst(f.maps);
        auto r1 = inst.install(before);
        const vw_state st = state(f.maps);
        auto p = inst.prepare(after);
        f.maps.fail_write_after(n);
        EXPECT_THROW(inst.write_idle(p), bpfmaps::BpfError) << "write " << n;
        EXPECT_EQ(state(f.maps).generation, st.generation);
        EXPECT_EQ(state(f.maps).active_set, st.active_set);
        EXPECT_EQ(inst.generation(), 1u);
        EXPECT_EQ(rule_in_map(f.maps, st.active_set, 2, "198.51.100.0/24"), r1.rule_ids[1]) << "write " << n;
        EXPECT_FALSE(rule_in_map(f.maps, st.active_set, 1, "192.0.2.128/25")) << "write " << n;
        EXPECT_EQ(*inst.vault_name(2), "beta");
        // Recovery.
        auto r2 = inst.install(after);
        EXPECT_EQ(r2.generation, 2u);
        for (std::uint32_t set = 0; set < VW_SETS; ++set) {
            EXPECT_TRUE(rule_in_map(f.maps, set, 1, "192.0.2.128/25")) << "write " << n << " set " << set;
            EXPECT_FALSE(rule_in_map(f.maps, set, 2, "198.51.100.0/24")) << "write " << n << " set " << set;
        }
    }
}

TEST(Installer, FlipBackRestoresTheLiveSetAndGeneration) {
    Fixture f;
    bpfmaps::Installer inst(f.maps);
    auto r1 = inst.install(rule_set({{"alpha", {"192.0.2.0/24"}}}));
    const vw_state st = state(f.maps);
    auto p = inst.prepare(rule_set({{"alpha", {"198.51.100.0/24"}}}));
    inst.write_idle(p);
    inst.flip(p);
    EXPECT_EQ(state(f.maps).generation, 2u);
    EXPECT_NE(state(f.maps).active_set, st.active_set);
    const auto graces = f.maps.grace_periods;
    inst.flip_back();
    EXPECT_EQ(state(f.maps).generation, st.generation);
    EXPECT_EQ(state(f.maps).active_set, st.active_set);
    EXPECT_EQ(f.maps.grace_periods, graces + 1) << "no packet may still run on the abandoned set";
    EXPECT_EQ(inst.live_rules().size(), 1u);
    EXPECT_EQ(inst.live_rules()[0].rule_id, r1.rule_ids[0]);
    EXPECT_EQ(rule_in_map(f.maps, st.active_set, 1, "192.0.2.0/24"), r1.rule_ids[0]);
    // And the next install still works from there.
    auto r3 = inst.install(rule_set({{"alpha", {"203.0.113.0/24"}}}));
    EXPECT_EQ(r3.generation, 2u);
    for (std::uint32_t set = 0; set < VW_SETS; ++set) {
        EXPECT_TRUE(rule_in_map(f.maps, set, 1, "203.0.113.0/24"));
        EXPECT_FALSE(rule_in_map(f.maps, set, 1, "198.51.100.0/24")) << set;
        EXPECT_FALSE(rule_in_map(f.maps, set, 1, "192.0.2.0/24")) << set;
    }
}

TEST(Installer, AReadOnlyImageOfTheMapsIsWhatTheInstallerHolds) {
    Fixture f;
    bpfmaps::Installer inst(f.maps);
    inst.install(rule_set({{"alpha", {"192.0.2.0/24", "198.51.100.7/32"}}, {"beta", {}}}));
    const auto writes = f.maps.writes;
    auto live = bpfmaps::read_live_image(f.maps);
    EXPECT_EQ(f.maps.writes, writes);
    EXPECT_EQ(live.generation, inst.generation());
    EXPECT_EQ(live.names, inst.vault_names());
    EXPECT_EQ(*live.live.rules, *inst.live_image().rules);
    EXPECT_EQ(live.live.vault_flags, inst.live_image().vault_flags);
    EXPECT_EQ(live.live.endpoints.size(), inst.live_image().endpoints.size());
}

// `rule add|remove`'s path: an edit of one vault's ip rules translates to
// exactly what a full translation of the edited set gives (ids included).
TEST(Installer, AnEditTranslatesAsTheFullTranslationWould) {
    Fixture f;
    bpfmaps::Installer inst(f.maps);
    inst.install(rule_set({{"alpha", {"192.0.2.0/24", "198.51.100.7/32"}}, {"beta", {"192.0.2.0/24"}}}));
    const auto edited = rule_set({{"alpha", {"192.0.2.0/24", "198.51.100.8/32", "203.0.113.0/25"}}, {"beta", {"192.0.2.0/24"}}});
    auto full = inst.prepare(edited);
    auto edit = inst.prepare_edit("alpha", {.add = {pfx("198.51.100.8/32"), pfx("203.0.113.0/25")},
                                            .remove = {pfx("198.51.100.7/32")}});
    EXPECT_EQ(*edit.t.image.rules, *full.t.image.rules);
    EXPECT_EQ(edit.t.upserts, full.t.upserts);
    EXPECT_EQ(edit.t.removals, full.t.removals);
    EXPECT_EQ(edit.t.fresh_rule_ids, full.t.fresh_rule_ids);
    EXPECT_EQ(edit.t.image.vault_flags, full.t.image.vault_flags);
    EXPECT_EQ(edit.rules, 4u);
    EXPECT_THROW(inst.prepare_edit("alpha", {.add = {pfx("192.0.2.0/24")}}), std::invalid_argument);
    EXPECT_THROW(inst.prepare_edit("nosuch", {.add = {pfx("10.0.0.0/8")}}), std::invalid_argument);
    // And it installs.
    inst.write_idle(edit);
    inst.flip(edit);
    auto rep = inst.finish(edit);
    EXPECT_EQ(rep.generation, 2u);
    for (std::uint32_t set = 0; set < VW_SETS; ++set) {
        EXPECT_TRUE(rule_in_map(f.maps, set, 1, "203.0.113.0/25")) << set;
        EXPECT_FALSE(rule_in_map(f.maps, set, 1, "198.51.100.7/32")) << set;
    }
}

// IPv6 and mixed edits (`rule add|remove` with IPv6 prefixes): the same
// one-pass path as IPv4's, so an edit must give exactly what a full
// translation and install of the edited set gives, map for map, also when a
// prefix length appears, when the last rule of a length goes, when the
// scope's lengths cross VW_SCOPE6_MAX_LENS (hash probes <-> the trie) either
// way, and when a vault's last IPv6 rule goes or its first arrives.
namespace {

rules::Ipv6Prefix pfx6(const char* s) { return rules::parse_ipv6_prefix(s)->prefix; }

// Every entry of every map, and the stride blocks, as bytes: two backends
// that compare equal cannot be told apart by a datapath reading them.
struct MapDump {
    std::map<std::pair<int, std::string>, std::string> entries;
    std::string blocks;
    bool operator==(const MapDump&) const = default;
};
MapDump dump(bpfmaps::MemoryMaps& m) {
    MapDump d;
    for (const auto& info : bpfmaps::kMaps)
        m.for_each_key(info.map, [&](const void* k) {
            std::string value(info.value_size, '\0');
            m.lookup(info.map, k, value.data());
            d.entries[{static_cast<int>(info.map), std::string(static_cast<const char*>(k), info.key_size)}] = value;
        });
    d.blocks.assign(reinterpret_cast<const char*>(m.stride_blocks()),
                    std::size_t(m.lookup_blocks()) * VW_SETS * sizeof(vw_stride_block));
    return d;
}

// rule id of an IPv6 prefix in `map` (the trie's record or the lookup hash).
std::optional<std::uint32_t> rule6_in_map(const bpfmaps::MapBackend& m, Map map, std::uint32_t set,
                                          std::uint32_t vault_id, const char* prefix) {
    auto p = pfx6(prefix);
    vw_rule6_key k{};
    k.prefixlen = VW_RULE_KEY_FIXED_BITS + p.len;
    k.set = set;
    k.vault_id = vault_id;
    std::memcpy(k.addr, p.addr.data(), sizeof(k.addr));
    std::uint32_t id = 0;
    if (!m.get(map, k, id)) return std::nullopt;
    return id;
}

vw_scope6 scope6_in_map(const bpfmaps::MapBackend& m, std::uint32_t set, std::uint32_t vault_id) {
    vw_scope6 v;
    std::memset(&v, 0, sizeof(v));
    m.get(Map::scopes6, vw_scope_key{set, vault_id, 0}, v);
    return v;
}

bool same_scopes(const std::map<std::uint64_t, vw_scope6>& a, const std::map<std::uint64_t, vw_scope6>& b) {
    if (a.size() != b.size()) return false;
    for (auto i = a.begin(), j = b.begin(); i != a.end(); ++i, ++j)
        if (i->first != j->first || std::memcmp(&i->second, &j->second, sizeof(vw_scope6)) != 0) return false;
    return true;
}

// alpha and beta, both dual-stack (an IPv6 endpoint each).
rules::CompiledRuleSet dual_stack(const std::vector<const char*>& alpha4, const std::vector<const char*>& alpha6,
                                  const std::vector<const char*>& beta6) {
    auto s = rule_set({{"alpha", alpha4}, {"beta", {"192.0.2.0/24"}}});
    for (std::uint32_t v = 0; v < 2; ++v) {
        auto ep = pfx6("2001:db8:ffff::10/128").addr;
        ep[15] = std::uint8_t(0x10 + v);
        s.endpoints6.push_back({v, 0, ep, 443, rules::Proto::tcp, false});
    }
    for (const char* r : alpha6) s.rules6.push_back({0, 0, pfx6(r), "ip_rules"});
    for (const char* r : beta6) s.rules6.push_back({1, 0, pfx6(r), "ip_rules"});
    return s;
}

// `e` applied to vault `v`'s ip rules of the compiled set, as a reload of the
// edited file would compile them.
void apply(rules::CompiledRuleSet& s, std::uint32_t v, const bpfmaps::RuleEdit& e) {
    std::erase_if(s.rules, [&](const rules::CompiledRule& r) {
        return r.vault == v && r.vni == 0 && std::find(e.remove.begin(), e.remove.end(), r.prefix) != e.remove.end();
    });
    std::erase_if(s.rules6, [&](const rules::CompiledRule6& r) {
        return r.vault == v && r.vni == 0 && std::find(e.remove6.begin(), e.remove6.end(), r.prefix) != e.remove6.end();
    });
    for (const auto& p : e.add) s.rules.push_back({v, 0, p, "ip_rules"});
    for (const auto& p : e.add6) s.rules6.push_back({v, 0, p, "ip_rules"});
}

// Two datapaths with the same history: `edited` takes each change through
// prepare_edit, `reloaded` through a full prepare of the edited set.
struct Twins {
    bpfmaps::MemoryMaps a{4096, 256}, b{4096, 256};
    std::optional<bpfmaps::Installer> edited, reloaded;
    rules::CompiledRuleSet set;
    explicit Twins(rules::CompiledRuleSet s) : set(std::move(s)) {
        std::uint32_t zero = 0;
        for (auto* m : {&a, &b}) m->put(Map::state, zero, vw_state{}, "init");
        edited.emplace(a);
        reloaded.emplace(b);
        edited->install(set);
        reloaded->install(set);
    }
    // One edit of alpha down both paths; the plans and then every map must agree.
    void edit(const bpfmaps::RuleEdit& e, const std::string& what) {
        SCOPED_TRACE(what);
        apply(set, 0, e);
        auto full = reloaded->prepare(set);
        const auto writes = a.writes;
        auto plan = edited->prepare_edit("alpha", e);
        EXPECT_EQ(a.writes, writes) << "prepare_edit writes nothing";
        EXPECT_EQ(*plan.t.image.rules, *full.t.image.rules);
        EXPECT_EQ(*plan.t.image.rules6, *full.t.image.rules6);
        EXPECT_TRUE(same_scopes(plan.t.image.scopes6, full.t.image.scopes6));
        EXPECT_EQ(plan.t.upserts, full.t.upserts);
        EXPECT_EQ(plan.t.removals, full.t.removals);
        EXPECT_EQ(plan.t.upserts6, full.t.upserts6);
        EXPECT_EQ(plan.t.removals6, full.t.removals6);
        EXPECT_EQ(plan.t.fresh_rule_ids, full.t.fresh_rule_ids) << "one id space, IPv4 first";
        EXPECT_EQ(plan.t.image.drop_events_per_second, full.t.image.drop_events_per_second);
        EXPECT_EQ(plan.t.image.endpoints6.size(), full.t.image.endpoints6.size());
        EXPECT_EQ(plan.rules, full.rules);
        ASSERT_EQ(plan.t.diff.size(), full.t.diff.size());
        for (std::size_t i = 0; i < plan.t.diff.size(); ++i) {
            EXPECT_EQ(plan.t.diff[i].vault, full.t.diff[i].vault);
            EXPECT_EQ(plan.t.diff[i].rules_added, full.t.diff[i].rules_added);
            EXPECT_EQ(plan.t.diff[i].rules_removed, full.t.diff[i].rules_removed);
        }
        for (auto [inst, p] : {std::pair{&*edited, &plan}, std::pair{&*reloaded, &full}}) {
            inst->write_idle(*p);
            inst->flip(*p);
            inst->finish(*p);
        }
        EXPECT_TRUE(dump(a) == dump(b)) << "the maps after the edit differ from those after a full install";
    }
};

}  // namespace

TEST(Installer, Ipv6EditsWriteWhatAFullInstallWould) {
    Twins t(dual_stack({"192.0.2.0/24"}, {"2001:db8:1::/48", "2001:db8:2::1/128"}, {"2001:db8:1::/48"}));
    const std::uint32_t alpha = *t.edited->vault_id("alpha");
    auto lens = [&](std::uint32_t set) {
        const vw_scope6 v = scope6_in_map(t.a, set, alpha);
        return std::vector<int>(v.lens, v.lens + v.nlens);
    };
    const std::uint32_t live = state(t.a).active_set;
    ASSERT_EQ(lens(live), (std::vector<int>{128, 48}));

    t.edit({.add6 = {pfx6("2001:db8:1:2::/64")}}, "a new prefix length");
    for (std::uint32_t set = 0; set < VW_SETS; ++set) {
        EXPECT_EQ(lens(set), (std::vector<int>{128, 64, 48})) << set;
        EXPECT_TRUE(rule6_in_map(t.a, Map::rules6_hash, set, alpha, "2001:db8:1:2::/64")) << set;
        EXPECT_TRUE(rule6_in_map(t.a, Map::rules6, set, alpha, "2001:db8:1:2::/64")) << set;
    }
    t.edit({.remove6 = {pfx6("2001:db8:2::1/128")}}, "the last rule of a length");
    EXPECT_EQ(lens(0), (std::vector<int>{64, 48}));
    EXPECT_FALSE(rule6_in_map(t.a, Map::rules6_hash, 0, alpha, "2001:db8:2::1/128"));
    EXPECT_FALSE(rule6_in_map(t.a, Map::rules6, 1, alpha, "2001:db8:2::1/128"));

    // Mixed: the IPv4 half takes its fresh id before the IPv6 half, as a reload does.
    t.edit({.add = {pfx("198.51.100.7/32")}, .remove = {pfx("192.0.2.0/24")}, .add6 = {pfx6("2001:db8:3::/56")}},
           "mixed");
    EXPECT_LT(*rule_in_map(t.a, 0, alpha, "198.51.100.7/32"), *rule6_in_map(t.a, Map::rules6, 0, alpha, "2001:db8:3::/56"));

    // Up to 16 lengths the scope probes the hash; the 17th sends it to the trie.
    std::vector<std::string> more;
    for (int len = 65; len <= 77; ++len) more.push_back("2001:db8:4::/" + std::to_string(len));
    bpfmaps::RuleEdit to16;
    for (const auto& m : more) to16.add6.push_back(pfx6(m.c_str()));
    t.edit(to16, "sixteen lengths");
    EXPECT_EQ(lens(0).size(), std::size_t(VW_SCOPE6_MAX_LENS));
    EXPECT_EQ(scope6_in_map(t.a, 0, alpha).flags, 0u);
    t.edit({.add6 = {pfx6("2001:db8:5::/100")}}, "the seventeenth length");
    for (std::uint32_t set = 0; set < VW_SETS; ++set) {
        EXPECT_EQ(scope6_in_map(t.a, set, alpha).flags, std::uint32_t(VW_SCOPE_TRIE)) << set;
        // Both tables still hold every rule, whatever the flag says.
        EXPECT_TRUE(rule6_in_map(t.a, Map::rules6_hash, set, alpha, "2001:db8:5::/100")) << set;
        EXPECT_TRUE(rule6_in_map(t.a, Map::rules6, set, alpha, "2001:db8:4::/70")) << set;
    }
    t.edit({.remove6 = {pfx6("2001:db8:4::/70")}}, "back to sixteen");
    EXPECT_EQ(scope6_in_map(t.a, 0, alpha).flags, 0u);
    EXPECT_EQ(lens(1).size(), std::size_t(VW_SCOPE6_MAX_LENS));

    // alpha's last IPv6 rules go: its scope goes; beta's stays.
    bpfmaps::RuleEdit all;
    for (const auto& r : t.set.rules6)
        if (r.vault == 0) all.remove6.push_back(r.prefix);
    t.edit(all, "the vault's last IPv6 rules");
    for (std::uint32_t set = 0; set < VW_SETS; ++set) {
        vw_scope6 v;
        EXPECT_FALSE(t.a.get(Map::scopes6, vw_scope_key{set, alpha, 0}, v)) << set;
        EXPECT_TRUE(t.a.get(Map::scopes6, vw_scope_key{set, *t.edited->vault_id("beta"), 0}, v)) << set;
    }
    t.edit({.add6 = {pfx6("2001:db8:1::/48")}}, "a first IPv6 rule again");
    EXPECT_EQ(lens(0), (std::vector<int>{48}));
}

// A random walk of edits of both families, each checked against the full
// install as above (lengths 40..128, so the scope crosses 16 lengths often).
TEST(Installer, RandomMixedEditsWriteWhatAFullInstallWould) {
    Twins t(dual_stack({"192.0.2.0/24"}, {"2001:db8::/48"}, {"2001:db8::/48"}));
    std::mt19937 rng(11);
    auto u = [&](std::uint32_t n) { return std::uniform_int_distribution<std::uint32_t>(0, n - 1)(rng); };
    int crossings = 0;
    bool was_trie = false;
    for (int step = 0; step < 60; ++step) {
        bpfmaps::RuleEdit e;
        std::set<rules::Ipv4Prefix> live4, add4;
        std::set<rules::Ipv6Prefix> live6, add6;
        for (const auto& r : t.set.rules)
            if (r.vault == 0 && r.vni == 0) live4.insert(r.prefix);
        for (const auto& r : t.set.rules6)
            if (r.vault == 0 && r.vni == 0) live6.insert(r.prefix);
        for (std::uint32_t i = 0, n = u(4); i < n; ++i) {
            const std::uint8_t len = std::uint8_t(24 + u(9));
            rules::Ipv4Prefix p{(0xC6336400u | u(256)) & rules::Ipv4Prefix::mask(len), len};  // 198.51.100.0/24
            if (!live4.count(p) && add4.insert(p).second) e.add.push_back(p);
        }
        for (std::uint32_t i = 0, n = u(5); i < n; ++i) {
            const std::uint8_t len = std::uint8_t(40 + u(89));
            auto a = pfx6("2001:db8::/32").addr;
            for (int b = 4; b < 16; ++b) a[b] = std::uint8_t(u(4));
            rules::Ipv6Prefix p{rules::Ipv6Prefix::masked(a, len), len};
            if (!live6.count(p) && add6.insert(p).second) e.add6.push_back(p);
        }
        for (const auto& p : live4)
            if (u(8) == 0) e.remove.push_back(p);
        for (const auto& p : live6)
            if (u(6) == 0) e.remove6.push_back(p);
        std::sort(e.add.begin(), e.add.end());
        std::sort(e.add6.begin(), e.add6.end());
        t.edit(e, "step " + std::to_string(step));
        if (::testing::Test::HasFailure()) break;
        vw_scope6 v;
        const bool trie = t.a.get(Map::scopes6, vw_scope_key{state(t.a).active_set, 1, 0}, v) && v.flags;
        crossings += step > 0 && trie != was_trie;
        was_trie = trie;
    }
    EXPECT_GE(crossings, 2) << "the walk must cross 16 lengths both ways";
}

// A refused IPv6 edit writes nothing: already live, not live, given twice,
// more rules than the datapath's one id space holds, no such vault.
TEST(Installer, RefusedIpv6EditsChangeNothing) {
    bpfmaps::MemoryMaps maps{8, 64};  // rule ids 1..7
    std::uint32_t zero = 0;
    maps.put(Map::state, zero, vw_state{}, "init");
    bpfmaps::Installer inst(maps);
    inst.install(dual_stack({"192.0.2.0/24"}, {"2001:db8:1::/48", "2001:db8:2::1/128"}, {}));
    const auto before = dump(maps);
    auto refused = [&](const bpfmaps::RuleEdit& e, const std::string& says) {
        try {
            inst.prepare_edit("alpha", e);
            ADD_FAILURE() << "accepted; expected: " << says;
        } catch (const std::exception& ex) {
            EXPECT_NE(std::string(ex.what()).find(says), std::string::npos) << ex.what();
        }
    };
    refused({.add6 = {pfx6("2001:db8:1::/48")}}, "rule 2001:db8:1::/48 is already live");
    refused({.remove6 = {pfx6("2001:db8:9::/48")}}, "rule 2001:db8:9::/48 is not live");
    refused({.add6 = {pfx6("2001:db8:9::/48"), pfx6("2001:db8:9::/48")}}, "rule 2001:db8:9::/48 is twice in one edit");
    // 4 live (beta's one too) + 4 new > 7 ids: IPv4's and IPv6's count together.
    refused({.add = {pfx("198.51.100.1/32")},
             .add6 = {pfx6("2001:db8:9::1/128"), pfx6("2001:db8:9::2/128"), pfx6("2001:db8:9::3/128")}},
            "the rules do not fit: this host's datapath holds 7 rules");
    EXPECT_THROW(inst.prepare_edit("nosuch", {.add6 = {pfx6("2001:db8:9::/48")}}), std::invalid_argument);
    EXPECT_TRUE(dump(maps) == before);
    EXPECT_EQ(inst.generation(), 1u);
    // Three fit exactly.
    auto p = inst.prepare_edit("alpha", {.add6 = {pfx6("2001:db8:9::1/128"), pfx6("2001:db8:9::2/128"),
                                                  pfx6("2001:db8:9::3/128")}});
    EXPECT_EQ(p.t.fresh_rule_ids, (std::vector<std::uint32_t>{5, 6, 7}));
}

// A write that fails at any point of an IPv6 edit's write_idle leaves the
// live set, its generation and its lookup tables as they were; the edit then
// goes through and ends as a clean one does.
TEST(Installer, FailedIpv6EditWriteChangesNothingLiveAtAnyPoint) {
    const auto start = dual_stack({"192.0.2.0/24"}, {"2001:db8:1::/48", "2001:db8:2::1/128"}, {"2001:db8:1::/48"});
    const bpfmaps::RuleEdit e{.add = {pfx("198.51.100.7/32")},
                              .add6 = {pfx6("2001:db8:1:2::/64"), pfx6("2001:db8:3::/56")},
                              .remove6 = {pfx6("2001:db8:2::1/128")}};
    MapDump clean_end;
    std::size_t clean = 0;
    {
        Fixture f;
        bpfmaps::Installer inst(f.maps);
        inst.install(start);
        auto p = inst.prepare_edit("alpha", e);
        const auto w = f.maps.writes;
        inst.write_idle(p);
        clean = f.maps.writes - w;
        inst.flip(p);
        inst.finish(p);
        clean_end = dump(f.maps);
    }
    ASSERT_GT(clean, 6u);
    for (std::size_t n = 0; n < clean; ++n) {
        SCOPED_TRACE("write " + std::to_string(n));
        Fixture f;
        bpfmaps::Installer inst(f.maps);
        inst.install(start);
        const vw_state st = state(f.maps);
        const auto live_before = bpfmaps::read_set_image(f.maps, st.active_set);
        auto p = inst.prepare_edit("alpha", e);
        f.maps.fail_write_after(n);
        EXPECT_THROW(inst.write_idle(p), bpfmaps::BpfError);
        EXPECT_EQ(state(f.maps).generation, st.generation);
        EXPECT_EQ(state(f.maps).active_set, st.active_set);
        const auto live_after = bpfmaps::read_set_image(f.maps, st.active_set);
        EXPECT_EQ(*live_after.rules6, *live_before.rules6);
        EXPECT_EQ(*live_after.rules, *live_before.rules);
        EXPECT_TRUE(same_scopes(live_after.scopes6, live_before.scopes6));
        EXPECT_TRUE(rule6_in_map(f.maps, Map::rules6_hash, st.active_set, 1, "2001:db8:2::1/128"));
        EXPECT_FALSE(rule6_in_map(f.maps, Map::rules6_hash, st.active_set, 1, "2001:db8:1:2::/64"));
        // Recovery: the same edit, planned again on what the maps now hold.
        auto again = inst.prepare_edit("alpha", e);
        inst.write_idle(again);
        inst.flip(again);
        inst.finish(again);
        EXPECT_EQ(inst.generation(), 2u);
        EXPECT_TRUE(dump(f.maps) == clean_end);
    }
}
