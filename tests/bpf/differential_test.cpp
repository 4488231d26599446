// The kernel program against the reference classifier on random rule sets
// (a quarter of the vaults in audit mode) and random packets biased to prefix edges: verdict, reason, vault and rule must
// agree on every packet, and the counters the real program moved must add up
// to what the reference predicts.
#include <arpa/inet.h>
#include <linux/bpf.h>

#include <cstdlib>
#include <random>
#include <set>

#include "fixture.hpp"
#include "reference/classifier.hpp"

namespace vaultwall::testing {
namespace {

using namespace vaultwall::packet;
using rules::Ipv4Prefix;

constexpr std::uint32_t kHost = 0xC6120001;  // 198.18.0.1

// Address pools, all inside SPEC §6 ranges.
struct Range {
    std::uint32_t base;
    std::uint8_t len;
};
constexpr Range kPublicRanges[] = {{0xC0000200, 24}, {0xC6336400, 24}, {0xCB007100, 24}};
constexpr Range kOverlay = {0xC6120000, 15};  // 198.18.0.0/15
constexpr std::uint32_t kVniBase = 5000;

class Generator {
public:
    explicit Generator(std::uint64_t seed) : rng_(seed) {}

    std::uint32_t u(std::uint32_t n) { return std::uniform_int_distribution<std::uint32_t>(0, n - 1)(rng_); }
    bool chance(double p) { return std::bernoulli_distribution(p)(rng_); }

    std::uint32_t addr_in(const Range& r) {
        return r.base | (r.len == 32 ? 0 : u(1u << (32 - r.len)));
    }
    Ipv4Prefix prefix_in(const Range& r) {
        std::uint8_t len = static_cast<std::uint8_t>(r.len + u(33 - r.len));
        std::uint32_t a = addr_in(r);
        return {a & Ipv4Prefix::mask(len), len};
    }

    // Hundreds of vaults, tens of thousands of overlapping prefixes.
    rules::CompiledRuleSet rule_set(std::size_t vaults, std::size_t rules) {
        rules::CompiledRuleSet s;
        s.vxlan_port = chance(0.5) ? 4789 : 8472;
        s.vteps = {{0xC6120000, 24}, {0xC6120A00, 28}, {0xC6130001, 32}};
        std::set<std::tuple<std::uint32_t, std::uint32_t, std::uint16_t, int>> used;
        for (std::size_t v = 0; v < vaults; ++v) {
            rules::CompiledVault cv;
            cv.name = "vault-" + std::to_string(v);
            cv.public_access_disabled = chance(0.1);
            cv.default_allow = chance(0.15);
            cv.bypass = chance(0.4);
            cv.audit = chance(0.25);  // SPEC §9 audit mode
            s.vaults.push_back(cv);
            // One or two public endpoints, maybe a private one.
            for (int i = 0, n = 1 + int(u(2)); i < n; ++i) {
                for (;;) {
                    std::uint32_t a = addr_in(kPublicRanges[2]);
                    std::uint16_t port = chance(0.5) ? 443 : static_cast<std::uint16_t>(8000 + u(64));
                    auto proto = chance(0.9) ? rules::Proto::tcp : rules::Proto::udp;
                    if (used.insert({0, a, port, int(proto)}).second) {
                        s.endpoints.push_back({std::uint32_t(v), 0, a, port, proto, false});
                        break;
                    }
                }
            }
            if (chance(0.3)) {
                for (;;) {
                    std::uint32_t vni = kVniBase + u(20);
                    std::uint32_t a = 0xC6130000 | u(64);  // 198.19.0.x: reused across VNIs
                    if (used.insert({vni, a, 443, int(rules::Proto::tcp)}).second) {
                        s.endpoints.push_back({std::uint32_t(v), vni, a, 443, rules::Proto::tcp, true});
                        break;
                    }
                }
            }
        }
        std::set<std::tuple<std::uint32_t, std::uint32_t, std::uint32_t, std::uint8_t>> seen;
        while (s.rules.size() < rules) {
            std::uint32_t v = u(std::uint32_t(vaults));
            bool vnet = chance(0.4);
            std::uint32_t vni = vnet ? kVniBase + u(20) : 0;
            Ipv4Prefix p = vnet ? prefix_in(kOverlay) : prefix_in(kPublicRanges[u(3)]);
            if (seen.insert({v, vni, p.addr, p.len}).second)
                s.rules.push_back({v, vni, p, vnet ? "vnet" : "ip_rules"});
        }
        return s;
    }

    // A source near a random rule's edges, or anywhere in the pools.
    std::uint32_t source(const rules::CompiledRuleSet& s, bool overlay) {
        if (!s.rules.empty() && chance(0.8)) {
            const auto& r = s.rules[u(std::uint32_t(s.rules.size()))].prefix;
            std::uint32_t size = r.len == 0 ? 0 : (1u << (32 - r.len));
            switch (u(6)) {
                case 0: return r.addr - 1;
                case 1: return r.addr;
                case 2: return r.addr + 1;
                case 3: return r.addr + size - 1;
                case 4: return r.addr + size;
                default: return r.addr + (size ? u(size) : 0);
            }
        }
        return overlay ? addr_in(kOverlay) : addr_in(kPublicRanges[u(3)]);
    }

    Bytes inner_or_plain(const rules::CompiledRuleSet& s, bool overlay) {
        Flow f;
        f.src = source(s, overlay);
        f.sport = static_cast<std::uint16_t>(1024 + u(60000));
        const auto& ep = s.endpoints[u(std::uint32_t(s.endpoints.size()))];
        if (chance(0.85)) {
            f.dst = ep.addr;
            f.dport = ep.port;
        } else {
            f.dst = chance(0.5) ? addr_in(kPublicRanges[2]) : (0xC6130000 | u(64));
            f.dport = chance(0.5) ? 443 : static_cast<std::uint16_t>(8000 + u(64));
        }
        FrameSpec spec;
        bool udp = ep.proto == rules::Proto::udp ? chance(0.8) : chance(0.1);
        if (chance(0.03)) {
            spec = FrameSpec::arp_request(f.src, f.dst);
        } else if (chance(0.03)) {
            spec = FrameSpec::icmp_echo(f.src, f.dst);
        } else if (udp) {
            spec = FrameSpec::udp_flow(f);
        } else {
            std::uint8_t flags = chance(0.5) ? tcp_flags::syn
                                 : chance(0.5) ? std::uint8_t(tcp_flags::syn | tcp_flags::ack)
                                               : tcp_flags::ack;
            spec = FrameSpec::tcp_flow(f, flags);
        }
        if (chance(0.05)) spec.fragment(chance(0.5), chance(0.5) ? 0 : std::uint16_t(1 + u(100)));
        if (chance(0.05)) spec.ip_options(Bytes(4 * (1 + u(10)), 0x01));
        if (chance(0.1)) spec.vlan(std::uint16_t(1 + u(4000)));
        if (chance(0.05)) spec.qinq(std::uint16_t(1 + u(4000)), std::uint16_t(1 + u(4000)));
        if (chance(0.05)) spec.pad_to = 60 + u(100);
        return spec.build();
    }

    Bytes packet(const rules::CompiledRuleSet& s) {
        Bytes frame;
        if (chance(0.4)) {
            // VXLAN from a VTEP (mostly), an impostor, or a host-bit edge.
            std::uint32_t vtep = chance(0.85) ? (0xC6120000 | u(256)) : addr_in(kOverlay);
            std::uint32_t vni = chance(0.9) ? kVniBase + u(22) : u(3);
            auto outer = VxlanSpec::between(vtep, kHost, vni, s.vxlan_port);
            if (chance(0.02)) outer.vxlan.i_flag = false;
            if (chance(0.03)) outer.ip.mf = true;
            if (chance(0.05)) outer.eth.vlans.push_back({kEtherVlan, std::uint16_t(1 + u(4000))});
            frame = vxlan_encapsulate(inner_or_plain(s, true), outer);
        } else {
            frame = inner_or_plain(s, false);
        }
        // Damage: truncation anywhere, or a byte of the headers flipped.
        if (chance(0.04) && frame.size() > 14) frame.resize(14 + u(std::uint32_t(frame.size() - 14)));
        if (chance(0.04)) frame[u(std::uint32_t(std::min<std::size_t>(frame.size(), 90)))] ^= std::uint8_t(1 + u(255));
        return frame;
    }

private:
    std::mt19937_64 rng_;
};

// Packets compared over the four rule sets: 200,000 in CI; VW_DIFF_PACKETS=N
// for the benchmark mode (tools/bench/soak.sh compares 1,000,000).
std::size_t packets_from_env() {
    const char* s = std::getenv("VW_DIFF_PACKETS");
    return s && std::strtoull(s, nullptr, 10) > 0 ? std::strtoull(s, nullptr, 10) : 200'000;
}

std::uint64_t seed_from_env() {
    if (const char* s = std::getenv("VW_DIFF_SEED")) return std::strtoull(s, nullptr, 10);
    return std::random_device{}();
}

// The rule lookup has two paths: stride tables, and the rules trie for the
// scopes that do not fit the blocks. Each run covers one mix of them.
enum class Lookup { strides_only, mixed };

class Differential : public DatapathTest, public ::testing::WithParamInterface<Lookup> {
protected:
    void SetUp() override {
        // 65,536 blocks hold every scope here; 2,048 hold only some.
        const std::uint32_t blocks = GetParam() == Lookup::strides_only ? 1u << 16 : 2048u;
        dp = bpfmaps::Datapath::open_and_load({.max_rules = 1 << 18, .lookup_blocks = blocks});
        installer = std::make_unique<bpfmaps::Installer>(*dp);
    }

    void expect_lookup_mix() const {
        const auto& u = report.lookup;
        std::printf("lookup: %zu scopes on stride tables, %zu on the trie, %zu of %zu blocks\n",
                    u.stride_scopes, u.trie_scopes, u.blocks_used, u.blocks_per_set);
        EXPECT_GT(u.stride_scopes, 0u);
        if (GetParam() == Lookup::strides_only)
            EXPECT_EQ(u.trie_scopes, 0u);
        else
            EXPECT_GT(u.trie_scopes, 0u);
    }
};

INSTANTIATE_TEST_SUITE_P(Lookups, Differential, ::testing::Values(Lookup::strides_only, Lookup::mixed),
                         [](const ::testing::TestParamInfo<Lookup>& i) {
                             return i.param == Lookup::strides_only ? "StrideTables" : "StrideTablesAndTrie";
                         });

TEST_P(Differential, KernelAgreesWithReference) {
    const std::uint64_t seed = seed_from_env();
    const std::size_t kPackets = packets_from_env();
    const std::size_t kPacketsPerSet = (kPackets + 3) / 4;
    std::printf("differential seed %llu (rerun with VW_DIFF_SEED=%llu)\n",
                (unsigned long long)seed, (unsigned long long)seed);
    Generator gen(seed);

    std::size_t compared = 0, mismatches = 0, total_rules = 0;
    std::map<int, std::size_t> by_reason;
    // Four rule sets installed one after the other, so installs by diff are
    // exercised too: every packet must be judged by the set live at the time.
    for (int round = 0; round < 4; ++round) {
        auto set = gen.rule_set(300, 20'000 + 5'000 * round);
        total_rules += set.rules.size();
        install(set);
        expect_lookup_mix();
        reference::Classifier ref(set);

        auto before = counters();
        std::map<std::uint32_t, std::uint64_t> hits_before;
        for (std::uint32_t id : report.rule_ids) hits_before[id] = bpfmaps::read_rule_hits(*dp, id);
        std::map<std::pair<std::uint32_t, int>, bpfmaps::Count> expected;  // (vault id, reason)
        std::map<std::uint32_t, std::uint64_t> expected_hits;              // rule id -> hits
        for (std::size_t i = 0; i < kPacketsPerSet; ++i) {
            Bytes frame = gen.packet(set);
            if (frame.size() < kEthHeaderLen) continue;
            const auto want = ref.classify(frame.data(), frame.size());
            const auto got = bpfmaps::run_explain(*dp, frame);
            const std::uint32_t want_vault = want.vault >= 0 ? report.vault_ids.at(want.vault) : 0;
            const std::uint32_t want_rule = want.rule >= 0 ? report.rule_ids.at(want.rule) : 0;
            const bool vault_reason = !vaultwall::reason_is_global(want.reason);
            bool same = got.reason == std::uint32_t(want.reason) &&
                        got.action == std::uint32_t(want.pass ? XDP_PASS : XDP_DROP) &&
                        got.vault_id == want_vault && got.rule_id == want_rule &&
                        (!vault_reason || got.vni == want.vni);
            const std::uint32_t action = bpfmaps::run_main(*dp, frame);
            same = same && action == std::uint32_t(want.pass ? XDP_PASS : XDP_DROP);
            ++compared;
            ++by_reason[want.reason];
            auto& e = expected[{vault_reason ? want_vault : 0, want.reason}];
            e.packets++;
            e.bytes += frame.size();
            if (want_rule) expected_hits[want_rule]++;
            if (!same && ++mismatches <= 10) {
                ADD_FAILURE() << "mismatch: kernel " << vaultwall::reason_name(vw_reason(got.reason))
                              << " vault " << got.vault_id << " rule " << got.rule_id << " vni "
                              << got.vni << " action " << action << "; reference "
                              << vaultwall::reason_name(want.reason) << " vault " << want_vault
                              << " rule " << want_rule << " vni " << want.vni << "\n"
                              << hexdump(frame);
            }
        }
        // The attached program's counters moved exactly as the reference says.
        auto after = counters();
        for (std::uint32_t r = 0; r < VW_REASONS; ++r) {
            const bool global = r < VW_GLOBAL_REASONS;
            for (std::size_t vi = 0; vi < (global ? 1 : report.vault_ids.size()); ++vi) {
                std::uint32_t vid = global ? 0 : report.vault_ids[vi];
                bpfmaps::Count moved{after.get(vw_reason(r), vid).packets - before.get(vw_reason(r), vid).packets,
                                     after.get(vw_reason(r), vid).bytes - before.get(vw_reason(r), vid).bytes};
                auto it = expected.find({vid, int(r)});
                bpfmaps::Count want = it == expected.end() ? bpfmaps::Count{} : it->second;
                EXPECT_EQ(moved, want) << "counter " << vaultwall::reason_name(vw_reason(r))
                                       << " vault id " << vid << " round " << round;
            }
        }
        std::size_t hit_mismatch = 0;
        for (auto& [rule_id, was] : hits_before) {
            auto it = expected_hits.find(rule_id);
            std::uint64_t want = it == expected_hits.end() ? 0 : it->second;
            if (bpfmaps::read_rule_hits(*dp, rule_id) - was != want) ++hit_mismatch;
        }
        EXPECT_EQ(hit_mismatch, 0u) << "rules whose hit count differs from the reference";
    }
    std::printf("differential: compared %zu packets over 4 rule sets (%zu rules, 300 vaults each): "
                "%zu mismatches\n", compared, total_rules, mismatches);
    for (auto& [r, n] : by_reason)
        std::printf("  %-30s %zu\n",
                    (std::string(vaultwall::verdict_name(vw_reason(r))) + "." + vaultwall::reason_name(vw_reason(r))).c_str(), n);
    EXPECT_GE(compared, kPackets);
    EXPECT_EQ(mismatches, 0u);
    // Every reason was exercised.
    EXPECT_EQ(by_reason.size(), std::size_t(VW_REASONS));
}

}  // namespace
}  // namespace vaultwall::testing
