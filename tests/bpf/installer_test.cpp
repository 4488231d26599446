// The Installer over MemoryMaps, without root: the translation's ids (stable
// vault and rule ids, fresh ids never taken from the live set), that prepare
// writes nothing, and that a failed write or a flip back leaves the live set,
// its generation and its counters exactly as they were.
#include <gtest/gtest.h>

#include <arpa/inet.h>

#include "bpfmaps/image.hpp"
#include "bpfmaps/installer.hpp"
#include "bpfmaps/map_backend.hpp"
#include "rules/compiled.hpp"
#include "rules/ipv4.hpp"

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
    auto edit = inst.prepare_edit("alpha", {pfx("198.51.100.8/32"), pfx("203.0.113.0/25")}, {pfx("198.51.100.7/32")});
    EXPECT_EQ(*edit.t.image.rules, *full.t.image.rules);
    EXPECT_EQ(edit.t.upserts, full.t.upserts);
    EXPECT_EQ(edit.t.removals, full.t.removals);
    EXPECT_EQ(edit.t.fresh_rule_ids, full.t.fresh_rule_ids);
    EXPECT_EQ(edit.t.image.vault_flags, full.t.image.vault_flags);
    EXPECT_EQ(edit.rules, 4u);
    EXPECT_THROW(inst.prepare_edit("alpha", {pfx("192.0.2.0/24")}, {}), std::invalid_argument);
    EXPECT_THROW(inst.prepare_edit("nosuch", {pfx("10.0.0.0/8")}, {}), std::invalid_argument);
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
