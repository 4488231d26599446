// The kernel program against the reference classifier on random dual-stack
// rule sets (a quarter of the vaults in audit mode) and random packets of
// both families biased to prefix edges (IPv6 with random extension-header
// chains and fragments, VXLAN over either underlay with either inner
// family): verdict, reason, vault and rule must agree on every packet, and
// the counters the real program moved must add up to what the reference
// predicts.
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
using rules::Ipv6Addr;
using rules::Ipv6Prefix;

constexpr std::uint32_t kHost = 0xC6120001;  // 198.18.0.1

// Address pools, all inside SPEC §6 ranges.
struct Range {
    std::uint32_t base;
    std::uint8_t len;
};
constexpr Range kPublicRanges[] = {{0xC0000200, 24}, {0xC6336400, 24}, {0xCB007100, 24}};
constexpr Range kOverlay = {0xC6120000, 15};  // 198.18.0.0/15
constexpr std::uint32_t kVniBase = 5000;

// IPv6 pools (SPEC §6): clients in 2001:db8:0..3::/48, endpoints in
// 2001:db8:ffff::/64, the overlay and underlay in 2001:2::/48.
Ipv6Addr v6(std::uint16_t a, std::uint16_t b, std::uint16_t c, std::uint16_t d, std::uint64_t low = 0) {
    Ipv6Addr r{};
    const std::uint16_t g[4] = {a, b, c, d};
    for (int i = 0; i < 4; ++i) {
        r[2 * i] = std::uint8_t(g[i] >> 8);
        r[2 * i + 1] = std::uint8_t(g[i]);
    }
    for (int i = 0; i < 8; ++i) r[8 + i] = std::uint8_t(low >> (56 - 8 * i));
    return r;
}
const Ipv6Addr kHost6 = v6(0x2001, 2, 0, 0, 1);  // 2001:2::1
// Adds a signed amount to an address, as a 128-bit number.
Ipv6Addr add6(Ipv6Addr a, std::int64_t n) {
    int carry = 0;
    std::uint64_t mag = n < 0 ? std::uint64_t(-n) : std::uint64_t(n);
    for (int i = 15; i >= 0; --i) {
        int byte = n < 0 ? int(a[i]) - int(mag & 0xff) - carry : int(a[i]) + int(mag & 0xff) + carry;
        carry = byte < 0 || byte > 255;
        a[i] = std::uint8_t(byte & 0xff);
        mag >>= 8;
    }
    return a;
}
// The last address of a prefix.
Ipv6Addr last6(const Ipv6Prefix& p) {
    Ipv6Addr a = p.addr;
    for (int bit = p.len; bit < 128; ++bit) a[bit / 8] |= std::uint8_t(0x80 >> (bit % 8));
    return a;
}

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

    // A random address of a /`len` network (`len` a multiple of 16 here).
    Ipv6Addr addr6_in(const Ipv6Addr& base, int len) {
        Ipv6Addr a = base;
        for (int bit = len; bit < 128; ++bit)
            if (chance(0.5)) a[bit / 8] |= std::uint8_t(0x80 >> (bit % 8));
        return a;
    }
    // Mostly the lengths real rule sets use, some of any length (so some
    // scopes use more lengths than vw_scopes6 lists and go to the trie).
    Ipv6Prefix prefix6_in(const Ipv6Addr& base, int base_len) {
        static const int common[] = {48, 56, 60, 64, 96, 112, 120, 126, 127, 128};
        int len = chance(0.8) ? common[u(10)] : base_len + int(u(std::uint32_t(129 - base_len)));
        if (len < base_len) len = base_len;
        const auto l = static_cast<std::uint8_t>(len);
        return {Ipv6Prefix::masked(addr6_in(base, base_len), l), l};
    }
    Ipv6Addr client6() { return v6(0x2001, 0xdb8, std::uint16_t(u(4)), std::uint16_t(u(3)), (std::uint64_t(u(1u << 31)) << 32) | u(1u << 31)); }
    Ipv6Addr overlay6() { return v6(0x2001, 2, 0, std::uint16_t(1 + u(4)), u(256)); }

    // Hundreds of vaults, tens of thousands of overlapping prefixes.
    rules::CompiledRuleSet rule_set(std::size_t vaults, std::size_t rules) {
        rules::CompiledRuleSet s;
        s.vxlan_port = chance(0.5) ? 4789 : 8472;
        s.vteps = {{0xC6120000, 24}, {0xC6120A00, 28}, {0xC6130001, 32}};
        std::set<std::tuple<std::uint32_t, std::uint32_t, std::uint16_t, int>> used;
        std::set<std::tuple<std::uint32_t, Ipv6Addr, std::uint16_t, int>> used6;
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
            // Most vaults are dual-stack: an IPv6 endpoint, maybe a private one.
            if (chance(0.7)) {
                for (;;) {
                    Ipv6Addr a = v6(0x2001, 0xdb8, 0xffff, 0, u(512));
                    std::uint16_t port = chance(0.5) ? 443 : static_cast<std::uint16_t>(8000 + u(64));
                    auto proto = chance(0.9) ? rules::Proto::tcp : rules::Proto::udp;
                    if (used6.insert({0, a, port, int(proto)}).second) {
                        s.endpoints6.push_back({std::uint32_t(v), 0, a, port, proto, false});
                        break;
                    }
                }
            }
            if (chance(0.2)) {
                for (;;) {
                    std::uint32_t vni = kVniBase + u(20);
                    Ipv6Addr a = v6(0x2001, 2, 0, 1, u(64));  // reused across VNIs
                    if (used6.insert({vni, a, 443, int(rules::Proto::tcp)}).second) {
                        s.endpoints6.push_back({std::uint32_t(v), vni, a, 443, rules::Proto::tcp, true});
                        break;
                    }
                }
            }
        }
        s.vteps6 = {{v6(0x2001, 2, 0, 0), 64}, {v6(0x2001, 2, 0, 0xff, 5), 128}};
        std::set<std::tuple<std::uint32_t, std::uint32_t, Ipv6Addr, std::uint8_t>> seen6;
        while (s.rules6.size() < rules / 2) {
            std::uint32_t v = u(std::uint32_t(vaults));
            bool vnet = chance(0.4);
            std::uint32_t vni = vnet ? kVniBase + u(20) : 0;
            Ipv6Prefix p = vnet ? prefix6_in(v6(0x2001, 2, 0, std::uint16_t(1 + u(4))), 64)
                                : prefix6_in(v6(0x2001, 0xdb8, std::uint16_t(u(4)), 0), 48);
            if (seen6.insert({v, vni, p.addr, p.len}).second)
                s.rules6.push_back({v, vni, p, vnet ? "vnet" : "ip_rules"});
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

    // An IPv6 source near a random IPv6 rule's edges, or anywhere in the pools.
    Ipv6Addr source6(const rules::CompiledRuleSet& s, bool overlay) {
        if (!s.rules6.empty() && chance(0.8)) {
            const auto& r = s.rules6[u(std::uint32_t(s.rules6.size()))].prefix;
            switch (u(6)) {
                case 0: return add6(r.addr, -1);
                case 1: return r.addr;
                case 2: return add6(r.addr, 1);
                case 3: return last6(r);
                case 4: return add6(last6(r), 1);
                default: return r.len >= 128 ? r.addr : addr6_in(r.addr, r.len);
            }
        }
        return overlay ? overlay6() : client6();
    }

    // A random extension-header chain: mostly short and well formed; at
    // times longer than the bound, with a lying length, or with fragments.
    std::vector<Ipv6ExtHeader> chain6() {
        std::vector<Ipv6ExtHeader> ext;
        if (chance(0.6)) return ext;
        static const std::uint8_t kinds[] = {kProtoHopByHop, kProtoDstOpts, kProtoRouting};
        const std::uint32_t n = chance(0.1) ? 7 + u(4) : 1 + u(3);
        for (std::uint32_t i = 0; i < n; ++i) {
            if (chance(0.2)) {
                const bool later = chance(0.4);
                ext.push_back(Ipv6ExtHeader::fragment(later ? std::uint16_t(1 + u(100)) : 0, later ? chance(0.5) : chance(0.7)));
            } else {
                ext.push_back(Ipv6ExtHeader::options(kinds[u(3)], std::uint8_t(chance(0.8) ? u(3) : u(24))));
            }
            if (chance(0.03)) ext.back().hdr_ext_len = std::uint8_t(u(256));
        }
        return ext;
    }

    Bytes inner_or_plain6(const rules::CompiledRuleSet& s, bool overlay) {
        Flow6 f;
        f.src = source6(s, overlay);
        f.sport = static_cast<std::uint16_t>(1024 + u(60000));
        rules::Proto proto = rules::Proto::tcp;
        if (!s.endpoints6.empty() && chance(0.85)) {
            const auto& ep = s.endpoints6[u(std::uint32_t(s.endpoints6.size()))];
            f.dst = ep.addr;
            f.dport = ep.port;
            proto = ep.proto;
        } else {
            f.dst = chance(0.5) ? v6(0x2001, 0xdb8, 0xffff, 0, u(512)) : v6(0x2001, 2, 0, 1, u(64));
            f.dport = chance(0.5) ? 443 : static_cast<std::uint16_t>(8000 + u(64));
        }
        FrameSpec spec;
        const bool udp = proto == rules::Proto::udp ? chance(0.8) : chance(0.1);
        if (chance(0.03)) {
            spec = FrameSpec::icmp6_echo(f.src, f.dst);
        } else if (udp) {
            spec = FrameSpec::udp_flow6(f);
        } else {
            std::uint8_t flags = chance(0.5) ? tcp_flags::syn
                                 : chance(0.5) ? std::uint8_t(tcp_flags::syn | tcp_flags::ack)
                                               : tcp_flags::ack;
            spec = FrameSpec::tcp_flow6(f, flags);
        }
        spec.ip6.ext = chain6();
        if (chance(0.03)) {  // a split upper-layer header
            spec.l4_header = false;
            spec.payload = Bytes(u(20), 0);
        }
        if (chance(0.05)) spec.payload = Bytes(u(64), 0x5a);
        if (chance(0.1)) spec.vlan(std::uint16_t(1 + u(4000)));
        if (chance(0.05)) spec.qinq(std::uint16_t(1 + u(4000)), std::uint16_t(1 + u(4000)));
        if (chance(0.05)) spec.pad_to = 60 + u(100);
        return spec.build();
    }

    // Frames the size an Ethernet link carries (1514 bytes at most). Longer
    // ones do not fit one page, and BPF_PROG_TEST_RUN then hands XDP only
    // the first part of the frame (a multi-buffer packet): the program drops
    // that as malformed, which the reference, seeing the whole frame, cannot
    // know.
    Bytes packet(const rules::CompiledRuleSet& s) {
        for (;;) {
            Bytes frame = any_packet(s);
            if (frame.size() <= kEthHeaderLen + 1500) return frame;
        }
    }

    Bytes any_packet(const rules::CompiledRuleSet& s) {
        Bytes frame;
        if (chance(0.35)) {
            // IPv6: plain, or VXLAN (over an IPv6 underlay mostly) of either inner family.
            if (chance(0.6)) {
                frame = inner_or_plain6(s, false);
            } else {
                const bool v6_underlay = chance(0.6);
                const bool inner_v6 = chance(0.6);
                const std::uint32_t vni = chance(0.9) ? kVniBase + u(22) : u(3);
                Bytes inner = inner_v6 ? inner_or_plain6(s, true) : inner_or_plain(s, true);
                VxlanSpec outer;
                if (v6_underlay) {
                    const Ipv6Addr vtep = chance(0.8) ? v6(0x2001, 2, 0, 0, u(256))
                                          : chance(0.5) ? v6(0x2001, 2, 0, 0xff, 5) : v6(0x2001, 2, 0, 0xfe, u(256));
                    outer = VxlanSpec::between6(vtep, kHost6, vni, s.vxlan_port);
                    if (chance(0.1)) outer.ip6.ext = chain6();
                } else {
                    outer = VxlanSpec::between(0xC6120000 | u(256), kHost, vni, s.vxlan_port);
                }
                if (chance(0.02)) outer.vxlan.i_flag = false;
                frame = vxlan_encapsulate(inner, outer);
            }
            if (chance(0.04) && frame.size() > 14) frame.resize(14 + u(std::uint32_t(frame.size() - 14)));
            if (chance(0.04)) frame[u(std::uint32_t(std::min<std::size_t>(frame.size(), 130)))] ^= std::uint8_t(1 + u(255));
            return frame;
        }
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

    std::size_t compared = 0, mismatches = 0, total_rules = 0, total_rules6 = 0, ipv6_frames = 0;
    std::size_t trie_scopes6 = 0;
    std::map<int, std::size_t> by_reason;
    // Four rule sets installed one after the other, so installs by diff are
    // exercised too: every packet must be judged by the set live at the time.
    for (int round = 0; round < 4; ++round) {
        auto set = gen.rule_set(300, 20'000 + 5'000 * round);
        total_rules += set.rules.size();
        total_rules6 += set.rules6.size();
        {  // IPv6 scopes with more prefix lengths than vw_scopes6 lists: the trie
            std::map<std::pair<std::uint32_t, std::uint32_t>, std::set<int>> lens;
            for (const auto& r : set.rules6) lens[{r.vault, r.vni}].insert(r.prefix.len);
            for (const auto& [scope, l] : lens) trie_scopes6 += l.size() > VW_SCOPE6_MAX_LENS;
        }
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
            const std::uint32_t want_rule = want.rule >= 0    ? report.rule_ids.at(want.rule)
                                            : want.rule6 >= 0 ? report.rule_ids6.at(want.rule6)
                                                              : 0;
            const bool vault_reason = !vaultwall::reason_is_global(want.reason);
            bool same = got.reason == std::uint32_t(want.reason) &&
                        got.action == std::uint32_t(want.pass ? XDP_PASS : XDP_DROP) &&
                        got.vault_id == want_vault && got.rule_id == want_rule &&
                        (!vault_reason || got.vni == want.vni);
            const std::uint32_t action = bpfmaps::run_main(*dp, frame);
            same = same && action == std::uint32_t(want.pass ? XDP_PASS : XDP_DROP);
            ++compared;
            ++by_reason[want.reason];
            if (frame.size() > 13 && frame[12] == 0x86 && frame[13] == 0xdd) ++ipv6_frames;
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
    std::printf("differential: compared %zu packets (%zu IPv6 on the wire) over 4 rule sets (%zu IPv4 and "
                "%zu IPv6 rules, 300 vaults each; %zu IPv6 scopes on the trie): %zu mismatches\n",
                compared, ipv6_frames, total_rules, total_rules6, trie_scopes6, mismatches);
    for (auto& [r, n] : by_reason)
        std::printf("  %-30s %zu\n",
                    (std::string(vaultwall::verdict_name(vw_reason(r))) + "." + vaultwall::reason_name(vw_reason(r))).c_str(), n);
    EXPECT_GE(compared, kPackets);
    EXPECT_EQ(mismatches, 0u);
    // Every reason was exercised; IPv6 was a good share; both IPv6 lookups ran.
    EXPECT_EQ(by_reason.size(), std::size_t(VW_REASONS));
    EXPECT_GT(ipv6_frames, compared / 5);
    EXPECT_GT(trie_scopes6, 0u);
}

}  // namespace
}  // namespace vaultwall::testing
