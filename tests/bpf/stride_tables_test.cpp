// build_stride_image against a brute-force longest-prefix match: the
// expansion the datapath walks must give every address the id of its
// longest containing prefix, at every stride boundary.
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "bpfmaps/stride_tables.hpp"

namespace vaultwall::testing {
namespace {

using bpfmaps::StridePrefix;

std::uint32_t mask(std::uint8_t len) { return len == 0 ? 0 : ~0u << (32 - len); }

std::uint32_t brute_force(const std::vector<StridePrefix>& rules, std::uint32_t addr) {
    int best_len = -1;
    std::uint32_t id = 0;
    for (const auto& r : rules)
        if ((addr & mask(r.len)) == r.addr && r.len > best_len) best_len = r.len, id = r.id;
    return id;
}

TEST(StrideImage, EmptyScopeMatchesNothing) {
    auto img = bpfmaps::build_stride_image({});
    ASSERT_EQ(img.blocks.size(), 1u);
    EXPECT_EQ(bpfmaps::stride_image_lookup(img, 0xC6120001), 0u);
}

TEST(StrideImage, NestedPrefixesAtEveryStrideBoundary) {
    std::vector<StridePrefix> rules = {
        {0, 0, 1},                    // 0.0.0.0/0
        {0xC0000000, 8, 2},           // 192/8
        {0xC0000000, 9, 3},           // 192.0/9
        {0xC0000000, 16, 4},          // 192.0/16
        {0xC0000200, 24, 5},          // 192.0.2/24
        {0xC0000280, 25, 6},          // 192.0.2.128/25
        {0xC0000207, 32, 7},          // 192.0.2.7/32
        {0xC0000300, 31, 8},          // 192.0.3.0/31
    };
    auto img = bpfmaps::build_stride_image(rules);
    for (std::uint32_t a : {0x01020304u, 0xC1000000u, 0xC0800000u, 0xC07FFFFFu, 0xC0010000u, 0xC0000100u,
                            0xC0000201u, 0xC0000207u, 0xC0000208u, 0xC0000280u, 0xC00002FFu, 0xC0000300u,
                            0xC0000301u, 0xC0000302u})
        EXPECT_EQ(bpfmaps::stride_image_lookup(img, a), brute_force(rules, a)) << std::hex << a;
    // One root, 192 at level 1, 192.0 at level 2, 192.0.2 and 192.0.3 at level 3.
    EXPECT_EQ(img.blocks.size(), 5u);
}

TEST(StrideImage, RandomPrefixesAgreeWithBruteForce) {
    std::mt19937 rng(20261129);
    for (int round = 0; round < 20; ++round) {
        std::vector<StridePrefix> rules;
        std::set<std::pair<std::uint32_t, int>> seen;
        // Clustered, so prefixes nest and share blocks.
        const std::uint32_t base = rng() & 0xFFF00000;
        for (std::uint32_t id = 1; rules.size() < 300; ++id) {
            std::uint8_t len = static_cast<std::uint8_t>(rng() % 33);
            std::uint32_t a = (base | (rng() & 0x000FFFFF)) & mask(len);
            if (!seen.insert({a, len}).second) continue;
            rules.push_back({a, len, id});
        }
        auto img = bpfmaps::build_stride_image(rules);
        for (int i = 0; i < 5000; ++i) {
            const auto& r = rules[rng() % rules.size()];
            // Around a rule's first and last address, and anywhere.
            std::uint32_t span = ~mask(r.len);
            std::uint32_t a = i % 3 == 0 ? r.addr - 1 + (rng() % 3)
                            : i % 3 == 1 ? (r.addr | span) - 1 + (rng() % 3)
                                         : base | (rng() & 0x000FFFFF);
            ASSERT_EQ(bpfmaps::stride_image_lookup(img, a), brute_force(rules, a))
                << "round " << round << " addr " << std::hex << a;
        }
    }
}

TEST(StrideImage, RefusesIdsThatLookLikeChildren) {
    EXPECT_THROW(bpfmaps::build_stride_image({{0, 0, VW_STRIDE_CHILD | 1}}), std::invalid_argument);
    EXPECT_THROW(bpfmaps::build_stride_image({{0, 33, 1}}), std::invalid_argument);
}

}  // namespace
}  // namespace vaultwall::testing
