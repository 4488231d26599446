// The real XDP program under BPF_PROG_TEST_RUN: every reason of SPEC §3-§4,
// what each counter does, admission records, and truncated frames.
#include <bpf/bpf.h>
#include <arpa/inet.h>
#include <linux/bpf.h>

#include <set>

#include "bpfmaps/error.hpp"
#include "fixture.hpp"

namespace vaultwall::testing {
namespace {

using namespace vaultwall::packet;

constexpr std::uint32_t kVtep = 0xC6120005;      // 198.18.0.5 (trusted)
constexpr std::uint32_t kImpostor = 0xC6120105;  // 198.18.1.5 (not a VTEP)
constexpr std::uint32_t kHost = 0xC6120001;      // 198.18.0.1 (underlay of the host)

// Frames of the sample rule set.
Bytes plain_syn(const char* src, const char* dst, std::uint16_t dport = 443) {
    return tcp_frame({ip(src), ip(dst), 40000, dport}, tcp_flags::syn);
}
Bytes vxlan_syn(std::uint32_t vni, const char* src, const char* dst, std::uint32_t vtep = kVtep) {
    return vxlan_frame(vtep, kHost, vni, tcp_frame({ip(src), ip(dst), 40000, 443}));
}

class Verdicts : public DatapathTest {
protected:
    void SetUp() override {
        DatapathTest::SetUp();
        install(sample_rules());
    }

    // Runs the attached program on `frame` and checks its action, that exactly
    // the expected counter moved (by one packet and the frame's bytes), the
    // rule hit count, and that the explain program gives the same answer
    // without moving anything.
    void expect(const Bytes& frame, vw_reason reason, const char* vault = nullptr,
                int rule_index = -1) {
        SCOPED_TRACE(hexdump(frame));
        const std::uint32_t vid = vault ? vault_id(vault) : 0;
        const bool passes = reason == VW_PASS_NOT_IP || reason == VW_PASS_UNPROTECTED ||
                            (reason >= VW_PASS_PRIVATE_ENDPOINT && reason <= VW_PASS_TRUSTED_CANDIDATE) ||
                            reason == VW_AUDIT_NO_RULE || reason == VW_AUDIT_PUBLIC_ACCESS_DISABLED;
        const std::uint32_t rule_id = rule_index >= 0 ? report.rule_ids.at(rule_index) : 0;

        auto before = counters();
        auto hits_before = rule_id ? bpfmaps::read_rule_hits(*dp, rule_id) : 0;
        auto ex = bpfmaps::run_explain(*dp, frame);
        EXPECT_EQ(counters().global, before.global) << "explain moved a counter";
        EXPECT_EQ(ex.reason, static_cast<std::uint32_t>(reason));
        EXPECT_EQ(ex.vault_id, vid);
        EXPECT_EQ(ex.rule_id, rule_id);

        EXPECT_EQ(bpfmaps::run_main(*dp, frame), passes ? XDP_PASS : XDP_DROP);
        auto after = counters();
        for (std::uint32_t r = 0; r < VW_REASONS; ++r) {
            for (auto& [id, row] : after.vaults) {
                if (r < VW_GLOBAL_REASONS && id != after.vaults.begin()->first) continue;
                auto d_packets = after.get(vw_reason(r), id).packets - before.get(vw_reason(r), id).packets;
                auto d_bytes = after.get(vw_reason(r), id).bytes - before.get(vw_reason(r), id).bytes;
                const bool expected = r == reason && (r < VW_GLOBAL_REASONS || id == vid);
                EXPECT_EQ(d_packets, expected ? 1u : 0u) << "reason " << r << " vault " << id;
                EXPECT_EQ(d_bytes, expected ? frame.size() : 0u) << "reason " << r << " vault " << id;
            }
        }
        if (rule_id) {
            EXPECT_EQ(bpfmaps::read_rule_hits(*dp, rule_id), hits_before + 1);
        }
    }

    std::optional<vw_admission> admission(const Flow& f) {
        vw_flow_key key{htonl(f.src), htonl(f.dst), htons(f.sport), htons(f.dport), 0};
        vw_admission adm{};
        if (bpf_map_lookup_elem(dp->map_fd(bpfmaps::Map::admissions), &key, &adm) != 0)
            return std::nullopt;
        return adm;
    }
};

TEST_F(Verdicts, NotIpPasses) {
    expect(arp_frame(ip("192.0.2.1"), ip("203.0.113.10")), VW_PASS_NOT_IP);
    expect(build(FrameSpec::tcp_flow({}).ethertype(0x88b5)), VW_PASS_NOT_IP);  // not IP at all
    // A third VLAN tag is beyond what the datapath parses: not IPv4 to it.
    auto three = FrameSpec::tcp_flow({ip("192.0.2.1"), ip("203.0.113.10"), 1, 443});
    three.qinq(10, 20).vlan(30);
    expect(build(three), VW_PASS_NOT_IP);
}

TEST_F(Verdicts, UnprotectedDestinationsPass) {
    expect(plain_syn("192.0.2.1", "203.0.113.99"), VW_PASS_UNPROTECTED);
    expect(plain_syn("192.0.2.1", "203.0.113.10", 80), VW_PASS_UNPROTECTED);  // other port
    expect(udp_frame({ip("192.0.2.1"), ip("203.0.113.10"), 1, 443}), VW_PASS_UNPROTECTED);
    expect(build(FrameSpec::icmp_echo(ip("192.0.2.1"), ip("203.0.113.10"))), VW_PASS_UNPROTECTED);
}

TEST_F(Verdicts, IpRulesTakeTheLongestPrefix) {
    expect(plain_syn("192.0.2.1", "203.0.113.10"), VW_PASS_IP_RULE, "strict", 0);
    expect(plain_syn("192.0.2.200", "203.0.113.10"), VW_PASS_IP_RULE, "strict", 1);
    expect(plain_syn("198.51.100.7", "203.0.113.10"), VW_PASS_IP_RULE, "strict", 2);
    expect(plain_syn("198.51.100.8", "203.0.113.10"), VW_DROP_NO_RULE, "strict");
}

TEST_F(Verdicts, VaultDecisionOrder) {
    expect(plain_syn("198.51.100.8", "203.0.113.11"), VW_PASS_TRUSTED_CANDIDATE, "bypass");
    expect(plain_syn("198.51.100.8", "203.0.113.12"), VW_PASS_DEFAULT_ALLOW, "open");
    expect(plain_syn("192.0.2.1", "203.0.113.13"), VW_DROP_PUBLIC_ACCESS_DISABLED, "closed");
    expect(plain_syn("192.0.2.1", "203.0.113.14"), VW_PASS_TRUSTED_CANDIDATE, "closed-b");
}

TEST_F(Verdicts, VxlanFromTrustedVtep) {
    expect(vxlan_syn(5001, "198.19.1.7", "203.0.113.10"), VW_PASS_VNET_RULE, "strict", 3);
    // Unlisted subnet of the VNet, and a listed subnet on another VNI.
    expect(vxlan_syn(5001, "198.19.2.7", "203.0.113.10"), VW_DROP_NO_RULE, "strict");
    expect(vxlan_syn(5003, "198.19.1.7", "203.0.113.10"), VW_DROP_NO_RULE, "strict");
    // An IP rule never admits VXLAN traffic, even with VNI 0.
    expect(vxlan_syn(0, "192.0.2.1", "203.0.113.10"), VW_DROP_NO_RULE, "strict");
    expect(vxlan_syn(5001, "198.19.1.7", "203.0.113.99"), VW_PASS_UNPROTECTED);
}

TEST_F(Verdicts, PrivateEndpointsOnlyThroughTheirVni) {
    expect(vxlan_syn(5001, "198.19.2.7", "198.19.1.100"), VW_PASS_PRIVATE_ENDPOINT, "strict");
    expect(vxlan_syn(5002, "198.19.2.7", "198.19.1.100"), VW_PASS_PRIVATE_ENDPOINT, "other");
    expect(vxlan_syn(5003, "198.19.2.7", "198.19.1.100"), VW_DROP_NOT_PRIVATE_LINK);
    expect(plain_syn("192.0.2.1", "198.19.1.100"), VW_DROP_NOT_PRIVATE_LINK);
}

TEST_F(Verdicts, UntrustedVtepAndBadVxlan) {
    expect(vxlan_syn(5001, "198.19.1.7", "203.0.113.10", kImpostor), VW_DROP_UNTRUSTED_VTEP);
    VxlanSpec no_i = VxlanSpec::between(kVtep, kHost, 5001);
    no_i.vxlan.i_flag = false;
    expect(vxlan_encapsulate(plain_syn("198.19.1.7", "203.0.113.10"), no_i), VW_DROP_MALFORMED);
    // Overlay ARP passes as not IPv4; so does an overlay with a VLAN tag and IPv6.
    expect(vxlan_frame(kVtep, kHost, 5001, arp_frame(ip("198.19.1.7"), ip("198.19.1.100"))),
           VW_PASS_NOT_IP);
    // VXLAN header present but no room for the inner Ethernet header.
    Bytes stub;
    append_vxlan(stub, {5001, true, 0}, Bytes(10, 0));
    expect(vxlan_encapsulate({}, VxlanSpec::between(kVtep, kHost, 5001)), VW_DROP_MALFORMED);
}

TEST_F(Verdicts, VlanAndQinQ) {
    auto one = FrameSpec::tcp_flow({ip("192.0.2.1"), ip("203.0.113.10"), 1, 443});
    one.vlan(100);
    expect(build(one), VW_PASS_IP_RULE, "strict", 0);
    auto two = FrameSpec::tcp_flow({ip("198.51.100.8"), ip("203.0.113.10"), 1, 443});
    two.qinq(100, 200);
    expect(build(two), VW_DROP_NO_RULE, "strict");
    auto inner = FrameSpec::tcp_flow({ip("198.19.1.7"), ip("203.0.113.10"), 1, 443});
    inner.vlan(7);
    expect(vxlan_frame(kVtep, kHost, 5001, build(inner)), VW_PASS_VNET_RULE, "strict", 3);
}

TEST_F(Verdicts, IpOptionsAreSkipped) {
    auto f = FrameSpec::tcp_flow({ip("192.0.2.1"), ip("203.0.113.10"), 1, 443});
    f.ip_options({0x94, 0x04, 0, 0, 0x01, 0x01, 0x01, 0x00});  // router alert + NOPs
    expect(build(f), VW_PASS_IP_RULE, "strict", 0);
    f.ip_options(Bytes(40, 0x01));  // the maximum: ihl 15
    expect(build(f), VW_PASS_IP_RULE, "strict", 0);
}

TEST_F(Verdicts, MalformedIpv4Drops) {
    auto base = FrameSpec::tcp_flow({ip("192.0.2.1"), ip("203.0.113.10"), 1, 443});
    auto f = base;
    f.ip.version = 6;
    expect(build(f), VW_DROP_MALFORMED);
    f = base;
    f.ip.ihl = 4;
    expect(build(f), VW_DROP_MALFORMED);
    f = base;
    f.ip.ihl = 15;  // claims 60 bytes of header; the datagram is shorter
    f.payload.clear();
    f.l4_header = false;
    expect(build(f), VW_DROP_MALFORMED);
    f = base;
    f.ip.tot_len = 19;  // shorter than the header
    expect(build(f), VW_DROP_MALFORMED);
    f = base;
    f.ip.tot_len = 1500;  // beyond the frame
    expect(build(f), VW_DROP_MALFORMED);
    f = base;
    f.ip.tot_len = 30;  // the TCP header would run past the datagram
    expect(build(f), VW_DROP_MALFORMED);
}

TEST_F(Verdicts, EthernetPaddingIsIgnored) {
    auto f = FrameSpec::tcp_flow({ip("192.0.2.1"), ip("203.0.113.10"), 1, 443});
    f.pad_to = 128;
    expect(build(f), VW_PASS_IP_RULE, "strict", 0);
}

TEST_F(Verdicts, Fragments) {
    // To a protected address: dropped, first or later fragment.
    auto f = FrameSpec::tcp_flow({ip("192.0.2.1"), ip("203.0.113.10"), 1, 443});
    f.fragment(true, 0);
    expect(build(f), VW_DROP_FRAGMENT);
    f.fragment(false, 100);
    expect(build(f), VW_DROP_FRAGMENT);
    f = FrameSpec::tcp_flow({ip("192.0.2.1"), ip("198.19.1.100"), 1, 443});
    f.fragment(true, 0);
    expect(build(f), VW_DROP_FRAGMENT);
    // Elsewhere: passes.
    f = FrameSpec::tcp_flow({ip("192.0.2.1"), ip("203.0.113.99"), 1, 443});
    f.fragment(true, 0);
    expect(build(f), VW_PASS_UNPROTECTED);
    // Outer fragments of VXLAN: from a VTEP (any), or UDP to the VXLAN port.
    auto vx = VxlanSpec::between(kVtep, kHost, 5001);
    vx.ip.mf = true;
    expect(vxlan_encapsulate(plain_syn("198.19.1.7", "203.0.113.10"), vx), VW_DROP_FRAGMENT);
    vx = VxlanSpec::between(kImpostor, kHost, 5001);
    vx.ip.mf = true;
    expect(vxlan_encapsulate(plain_syn("198.19.1.7", "203.0.113.10"), vx), VW_DROP_FRAGMENT);
    auto later = FrameSpec::udp_flow({kVtep, kHost, 1, 9});
    later.fragment(false, 10);
    expect(build(later), VW_DROP_FRAGMENT);
    later.ip.src = kImpostor;
    expect(build(later), VW_PASS_UNPROTECTED);
    // Inner fragments: to a protected address dropped, elsewhere passed.
    auto inner = FrameSpec::tcp_flow({ip("198.19.1.7"), ip("203.0.113.10"), 1, 443});
    inner.fragment(true, 0);
    expect(vxlan_frame(kVtep, kHost, 5001, build(inner)), VW_DROP_FRAGMENT);
    inner.ip.dst = ip("203.0.113.99");
    expect(vxlan_frame(kVtep, kHost, 5001, build(inner)), VW_PASS_UNPROTECTED);
}

TEST_F(Verdicts, AdmissionRecordedForPassingSyn) {
    Flow f{ip("192.0.2.9"), ip("203.0.113.10"), 41000, 443};
    expect(tcp_frame(f, tcp_flags::syn), VW_PASS_IP_RULE, "strict", 0);
    auto adm = admission(f);
    ASSERT_TRUE(adm);
    EXPECT_EQ(adm->vault_id, vault_id("strict"));
    EXPECT_EQ(adm->reason, VW_PASS_IP_RULE);
    EXPECT_EQ(adm->rule_id, report.rule_ids[0]);
    EXPECT_EQ(adm->vni, 0u);
    EXPECT_EQ(adm->generation, report.generation);

    Flow v{ip("198.19.1.7"), ip("198.19.1.100"), 41001, 443};
    expect(vxlan_frame(kVtep, kHost, 5001, tcp_frame(v)), VW_PASS_PRIVATE_ENDPOINT, "strict");
    adm = admission(v);
    ASSERT_TRUE(adm);
    EXPECT_EQ(adm->vni, 5001u);
    EXPECT_EQ(adm->reason, VW_PASS_PRIVATE_ENDPOINT);

    // Not for a SYN-ACK, a dropped SYN, or an unprotected one.
    Flow g{ip("192.0.2.10"), ip("203.0.113.10"), 41002, 443};
    expect(tcp_frame(g, tcp_flags::syn | tcp_flags::ack), VW_PASS_IP_RULE, "strict", 0);
    EXPECT_FALSE(admission(g));
    Flow h{ip("198.51.100.9"), ip("203.0.113.10"), 41003, 443};
    expect(tcp_frame(h), VW_DROP_NO_RULE, "strict");
    EXPECT_FALSE(admission(h));
    Flow u{ip("198.51.100.9"), ip("203.0.113.99"), 41004, 443};
    expect(tcp_frame(u), VW_PASS_UNPROTECTED);
    EXPECT_FALSE(admission(u));
}

// Every prefix of every template: never a crash, and an IPv4 datagram cut
// short is always malformed (its tot_len no longer fits the frame).
TEST_F(Verdicts, TruncatedAtEveryLength) {
    auto qinq = FrameSpec::tcp_flow({ip("192.0.2.1"), ip("203.0.113.10"), 1, 443});
    qinq.qinq(1, 2).ip_options(Bytes(8, 0x01));
    const std::vector<Bytes> templates = {
        plain_syn("192.0.2.1", "203.0.113.10"),
        build(qinq),
        udp_frame({ip("192.0.2.1"), ip("203.0.113.10"), 1, 443}),
        vxlan_syn(5001, "198.19.1.7", "203.0.113.10"),
        vxlan_syn(5001, "198.19.1.7", "198.19.1.100"),
    };
    int runs = 0;
    for (const auto& t : templates) {
        for (std::size_t len = 0; len < t.size(); ++len) {
            Bytes cut(t.begin(), t.begin() + len);
            if (len < kEthHeaderLen) {
                // The kernel refuses to run XDP on less than an Ethernet header.
                EXPECT_THROW(bpfmaps::run_main(*dp, cut), bpfmaps::BpfError);
                continue;
            }
            auto res = bpfmaps::run_explain(*dp, cut);
            EXPECT_EQ(res.reason, static_cast<std::uint32_t>(VW_DROP_MALFORMED)) << "len " << len << "\n" << hexdump(cut);
            EXPECT_EQ(bpfmaps::run_main(*dp, cut), static_cast<std::uint32_t>(XDP_DROP));
            ++runs;
        }
    }
    EXPECT_GT(runs, 300);
}

// SPEC §9: a vault in audit mode passes what it would drop, counted under
// its audit group; everything else is judged as before.
class Audit : public Verdicts {
protected:
    void SetUp() override {
        DatapathTest::SetUp();
        install(audited(sample_rules(), {"strict", "closed"}));
    }
    static rules::CompiledRuleSet audited(rules::CompiledRuleSet s, std::set<std::string> names) {
        for (auto& v : s.vaults) v.audit = names.count(v.name) > 0;
        return s;
    }
};

TEST_F(Audit, WouldBeDropsPassUnderTheAuditGroup) {
    expect(plain_syn("198.51.100.8", "203.0.113.10"), VW_AUDIT_NO_RULE, "strict");
    expect(vxlan_syn(5003, "198.19.1.7", "203.0.113.10"), VW_AUDIT_NO_RULE, "strict");
    expect(plain_syn("192.0.2.1", "203.0.113.13"), VW_AUDIT_PUBLIC_ACCESS_DISABLED, "closed");
    // What passes anyway keeps its reason; other vaults still enforce.
    expect(plain_syn("192.0.2.1", "203.0.113.10"), VW_PASS_IP_RULE, "strict", 0);
    expect(vxlan_syn(5001, "198.19.2.7", "198.19.1.100"), VW_PASS_PRIVATE_ENDPOINT, "strict");
    expect(plain_syn("198.51.100.8", "203.0.113.11"), VW_PASS_TRUSTED_CANDIDATE, "bypass");
    // Global reasons are never audited: they belong to no vault's rules.
    expect(plain_syn("192.0.2.1", "198.19.1.100"), VW_DROP_NOT_PRIVATE_LINK);
    auto f = FrameSpec::tcp_flow({ip("198.51.100.8"), ip("203.0.113.10"), 1, 443});
    f.fragment(true, 0);
    expect(build(f), VW_DROP_FRAGMENT);
}

TEST_F(Audit, AuditedSynLeavesAnAdmissionTheGateCanTell) {
    Flow f{ip("198.51.100.8"), ip("203.0.113.10"), 41010, 443};
    expect(tcp_frame(f, tcp_flags::syn), VW_AUDIT_NO_RULE, "strict");
    auto adm = admission(f);
    ASSERT_TRUE(adm);
    EXPECT_EQ(adm->reason, VW_AUDIT_NO_RULE);
    EXPECT_EQ(adm->vault_id, vault_id("strict"));
}

TEST_F(Audit, ReloadFlipsEnforcementAtomicallyAndKeepsCounters) {
    const auto frame = plain_syn("198.51.100.8", "203.0.113.10");
    EXPECT_EQ(bpfmaps::run_main(*dp, frame), XDP_PASS);
    install(sample_rules());  // enforce
    expect(frame, VW_DROP_NO_RULE, "strict");
    install(audited(sample_rules(), {"strict"}));
    expect(frame, VW_AUDIT_NO_RULE, "strict");
    auto c = counters();
    EXPECT_EQ(c.get(VW_AUDIT_NO_RULE, vault_id("strict")).packets, 2u);
    EXPECT_EQ(c.get(VW_DROP_NO_RULE, vault_id("strict")).packets, 1u);
    EXPECT_EQ(report.generation, 3u);
}

class Reloads : public DatapathTest {};

TEST_F(Reloads, CountersAndRuleIdsSurvive) {
    auto a = sample_rules();
    auto rep1 = install(a);
    EXPECT_EQ(rep1.generation, 1u);
    auto frame = plain_syn("192.0.2.1", "203.0.113.10");
    bpfmaps::run_main(*dp, frame);
    bpfmaps::run_main(*dp, frame);

    auto b = a;
    b.rules.erase(b.rules.begin() + 2);                         // drop 198.51.100.7/32
    b.rules.push_back({0, 0, prefix("198.51.100.0/24"), "ip_rules"});  // add a /24
    auto rep2 = install(b);
    EXPECT_EQ(rep2.generation, 2u);
    ASSERT_EQ(rep2.diff.size(), 1u);
    EXPECT_EQ(rep2.diff[0].vault, "strict");
    EXPECT_EQ(rep2.diff[0].rules_added, 1u);
    EXPECT_EQ(rep2.diff[0].rules_removed, 1u);
    EXPECT_EQ(rep2.rule_ids[0], rep1.rule_ids[0]);  // 192.0.2.0/24 stayed
    EXPECT_EQ(bpfmaps::read_rule_hits(*dp, rep2.rule_ids[0]), 2u);
    EXPECT_EQ(counters().get(VW_PASS_IP_RULE, vault_id("strict")).packets, 2u);

    // The new rule admits, the removed one no longer does.
    auto ex = bpfmaps::run_explain(*dp, plain_syn("198.51.100.9", "203.0.113.10"));
    EXPECT_EQ(ex.reason, static_cast<std::uint32_t>(VW_PASS_IP_RULE));
    EXPECT_EQ(ex.rule_id, rep2.rule_ids.back());
    EXPECT_EQ(ex.generation, 2u);

    // Many reloads back and forth keep the ids and the counts.
    for (int i = 0; i < 10; ++i) install(i % 2 ? a : b);
    EXPECT_EQ(bpfmaps::read_rule_hits(*dp, rep1.rule_ids[0]), 2u);
    EXPECT_EQ(installer->generation(), 12u);
}

TEST_F(Reloads, RemovedVaultStopsMatchingAndRestartAdopts) {
    install(sample_rules());
    auto s = sample_rules();
    s.vaults.pop_back();                   // "other"
    s.endpoints.pop_back();
    install(s);
    // 198.19.1.100:443 is still strict's private endpoint, on VNI 5001 only.
    auto ex = bpfmaps::run_explain(*dp, vxlan_syn(5002, "198.19.2.7", "198.19.1.100"));
    EXPECT_EQ(ex.reason, static_cast<std::uint32_t>(VW_DROP_NOT_PRIVATE_LINK));
    EXPECT_FALSE(installer->vault_id("other").has_value() &&
                 bpfmaps::run_explain(*dp, vxlan_syn(5002, "198.19.2.7", "198.19.1.100")).vault_id ==
                     *installer->vault_id("other"));

    // A second installer on the same maps (a restarted daemon) adopts them.
    bpfmaps::Installer again(*dp);
    EXPECT_EQ(again.generation(), installer->generation());
    EXPECT_EQ(again.vault_id("strict"), installer->vault_id("strict"));
    auto rep = again.install(s);
    EXPECT_TRUE(rep.diff.empty());
    EXPECT_EQ(rep.rule_ids, report.rule_ids);
    // ...and the stride tables: no block leaked, none lost, and a change made
    // through it reaches the packets.
    EXPECT_EQ(rep.lookup.blocks_used, report.lookup.blocks_used);
    EXPECT_EQ(rep.lookup.stride_scopes, report.lookup.stride_scopes);
    s.rules.push_back({0, 0, prefix("198.51.100.8/29"), "ip_rules"});
    rep = again.install(s);
    EXPECT_EQ(bpfmaps::run_explain(*dp, plain_syn("198.51.100.9", "203.0.113.10")).reason,
              static_cast<std::uint32_t>(VW_PASS_IP_RULE));
    s.rules.pop_back();
    rep = again.install(s);
    EXPECT_EQ(rep.lookup.blocks_used, report.lookup.blocks_used);
    EXPECT_NE(bpfmaps::run_explain(*dp, plain_syn("198.51.100.9", "203.0.113.10")).reason,
              static_cast<std::uint32_t>(VW_PASS_IP_RULE));
}

// The same vaults listed in another order: their ids stay, so the rules
// arrive as runs out of id order (the installer's linear reordering).
TEST_F(Reloads, VaultsListedInAnotherOrderKeepRulesAndIds) {
    auto s = sample_rules();
    s.rules.push_back({2, 0, prefix("198.51.100.64/26"), "ip_rules"});
    s.rules.push_back({4, 0, prefix("192.0.2.0/25"), "ip_rules"});
    install(s);
    const auto first = report;
    const std::vector<Bytes> probes = {
        plain_syn("192.0.2.1", "203.0.113.10"),   plain_syn("192.0.2.200", "203.0.113.10"),
        plain_syn("198.51.100.7", "203.0.113.10"), plain_syn("198.51.100.70", "203.0.113.12"),
        plain_syn("192.0.2.1", "203.0.113.14"),   vxlan_syn(5001, "198.19.1.9", "198.19.1.100"),
    };
    std::vector<vw_explain_result> before;
    for (const auto& p : probes) before.push_back(bpfmaps::run_explain(*dp, p));

    auto r = s;  // vault i becomes n-1-i; rules in the compiler's order again
    const auto n = static_cast<std::uint32_t>(s.vaults.size());
    std::reverse(r.vaults.begin(), r.vaults.end());
    for (auto& e : r.endpoints) e.vault = n - 1 - e.vault;
    for (auto& x : r.rules) x.vault = n - 1 - x.vault;
    std::stable_sort(r.rules.begin(), r.rules.end(), [](const auto& a, const auto& b) {
        return std::tie(a.vault, a.vni, a.prefix.addr, a.prefix.len) <
               std::tie(b.vault, b.vni, b.prefix.addr, b.prefix.len);
    });
    install(r);
    EXPECT_TRUE(report.diff.empty());
    for (std::size_t i = 0; i < s.rules.size(); ++i)
        for (std::size_t j = 0; j < r.rules.size(); ++j)
            if (r.rules[j].vault == n - 1 - s.rules[i].vault && r.rules[j].vni == s.rules[i].vni &&
                r.rules[j].prefix == s.rules[i].prefix)
                EXPECT_EQ(report.rule_ids[j], first.rule_ids[i]) << "rule " << i;
    for (std::size_t i = 0; i < probes.size(); ++i) {
        auto now = bpfmaps::run_explain(*dp, probes[i]);
        EXPECT_EQ(now.reason, before[i].reason) << "probe " << i;
        EXPECT_EQ(now.rule_id, before[i].rule_id) << "probe " << i;
        EXPECT_EQ(now.vault_id, before[i].vault_id) << "probe " << i;
    }
}

TEST_F(Reloads, TooManyRulesIsRefusedAndChangesNothing) {
    install(sample_rules());
    auto big = sample_rules();
    for (std::uint32_t i = 0; i < (1u << 16); ++i)
        big.rules.push_back({1, 0, {0xC6120000u + (i << 1), 31}, "ip_rules"});
    EXPECT_THROW(installer->install(big), std::length_error);
    EXPECT_EQ(installer->generation(), 1u);
    auto ex = bpfmaps::run_explain(*dp, plain_syn("192.0.2.1", "203.0.113.10"));
    EXPECT_EQ(ex.reason, static_cast<std::uint32_t>(VW_PASS_IP_RULE));
}

}  // namespace
}  // namespace vaultwall::testing
