// IPv6 in the real XDP program under BPF_PROG_TEST_RUN (SPEC §11,
// docs/datapath.md "IPv6"): rules and endpoints, the extension-header walk
// and its fail-closed cases, fragments, VXLAN over either underlay with
// either inner family, admission records, truncation, reloads. Every frame
// is also given to the reference classifier, which must say the same.
#include <bpf/bpf.h>
#include <arpa/inet.h>
#include <linux/bpf.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "bpfmaps/error.hpp"
#include "fixture.hpp"
#include "reference/classifier.hpp"
#include "rules/ipv6.hpp"

namespace vaultwall::testing {
namespace {

using namespace vaultwall::packet;
using rules::Ipv6Addr;

Ipv6Addr ip6(const char* s) { return *rules::parse_ipv6(s); }
rules::Ipv6Prefix prefix6(const char* s) { return rules::parse_ipv6_prefix(s)->prefix; }

constexpr std::uint32_t kVtep4 = 0xC6120005;  // 198.18.0.5 (trusted)
constexpr std::uint32_t kHost4 = 0xC6120001;  // 198.18.0.1
const Ipv6Addr kVtep6 = ip6("2001:2::5");      // in host.vteps (2001:2::/64)
const Ipv6Addr kImpostor6 = ip6("2001:2:0:ff::5");
const Ipv6Addr kHost6 = ip6("2001:2::1");

// sample_rules() plus its IPv6 half:
//   strict (0): [2001:db8::10]:443; private [2001:2:0:1::100]:443 via VNI 5001;
//               ip rules 2001:db8:1::/48 (rules6[0]), 2001:db8:1:2::/64 (1),
//               2001:db8:ff::7/128 (2); vnet rule 5001/2001:2:0:1::/64 (3)
//   open (2):   [2001:db8::12]:443, default allow
//   closed (3): [2001:db8::13]:443, public access disabled
rules::CompiledRuleSet dual_stack_rules() {
    using rules::Proto;
    auto s = sample_rules();
    s.vteps6 = {prefix6("2001:2::/64")};
    s.endpoints6 = {
        {0, 0, ip6("2001:db8::10"), 443, Proto::tcp, false},
        {0, 5001, ip6("2001:2:0:1::100"), 443, Proto::tcp, true},
        {2, 0, ip6("2001:db8::12"), 443, Proto::tcp, false},
        {3, 0, ip6("2001:db8::13"), 443, Proto::tcp, false},
    };
    s.rules6 = {
        {0, 0, prefix6("2001:db8:1::/48"), "ip_rules"},
        {0, 0, prefix6("2001:db8:1:2::/64"), "ip_rules"},
        {0, 0, prefix6("2001:db8:ff::7/128"), "ip_rules"},
        {0, 5001, prefix6("2001:2:0:1::/64"), "prod-vnet/app"},
    };
    return s;
}

Bytes plain_syn4(const char* src, const char* dst) {
    return tcp_frame({ip(src), ip(dst), 40000, 443}, tcp_flags::syn);
}

FrameSpec syn6(const char* src, const char* dst, std::uint16_t dport = 443) {
    return FrameSpec::tcp_flow6({ip6(src), ip6(dst), 40000, dport}, tcp_flags::syn);
}

class Ipv6 : public DatapathTest {
protected:
    void SetUp() override {
        DatapathTest::SetUp();
        set = dual_stack_rules();
        install(set);
        ref = std::make_unique<reference::Classifier>(set);
    }

    // The attached program's action, the explain program's reason, vault
    // and rule, and the reference's verdict all match `reason`.
    void expect(const Bytes& frame, vw_reason reason, const char* vault = nullptr, int rule6 = -1) {
        SCOPED_TRACE(hexdump(frame));
        const std::uint32_t vid = vault ? vault_id(vault) : 0;
        const std::uint32_t rule_id = rule6 >= 0 ? report.rule_ids6.at(rule6) : 0;
        const auto hits_before = rule_id ? bpfmaps::read_rule_hits(*dp, rule_id) : 0;
        const auto ex = bpfmaps::run_explain(*dp, frame);
        EXPECT_EQ(reason_name(vw_reason(ex.reason)), reason_name(reason));
        EXPECT_EQ(ex.vault_id, vid);
        EXPECT_EQ(ex.rule_id, rule_id);
        const bool passes = vaultwall::reason_is_pass(reason);
        EXPECT_EQ(bpfmaps::run_main(*dp, frame), std::uint32_t(passes ? XDP_PASS : XDP_DROP));
        if (rule_id) {
            EXPECT_EQ(bpfmaps::read_rule_hits(*dp, rule_id), hits_before + 1);
        }
        const auto want = ref->classify(frame.data(), frame.size());
        EXPECT_EQ(reason_name(want.reason), reason_name(reason)) << "reference";
        EXPECT_EQ(want.rule6, rule6) << "reference";
        EXPECT_EQ(want.vault, vault ? int(std::find_if(set.vaults.begin(), set.vaults.end(),
                                                      [&](auto& v) { return v.name == vault; }) -
                                         set.vaults.begin())
                                    : -1)
            << "reference";
    }

    std::optional<vw_admission> admission6(const Flow6& f) {
        vw_flow6_key key{};
        std::memcpy(key.saddr, f.src.data(), 16);
        std::memcpy(key.daddr, f.dst.data(), 16);
        key.sport = htons(f.sport);
        key.dport = htons(f.dport);
        vw_admission adm{};
        if (bpf_map_lookup_elem(dp->map_fd(bpfmaps::Map::admissions6), &key, &adm) != 0) return std::nullopt;
        return adm;
    }

    rules::CompiledRuleSet set;
    std::unique_ptr<reference::Classifier> ref;
};

TEST_F(Ipv6, RulesTakeTheLongestPrefix) {
    expect(syn6("2001:db8:1::5", "2001:db8::10").build(), VW_PASS_IP_RULE, "strict", 0);
    expect(syn6("2001:db8:1:2::5", "2001:db8::10").build(), VW_PASS_IP_RULE, "strict", 1);
    expect(syn6("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8::10").build(), VW_PASS_IP_RULE, "strict", 1);
    expect(syn6("2001:db8:1:3::5", "2001:db8::10").build(), VW_PASS_IP_RULE, "strict", 0);
    expect(syn6("2001:db8:ff::7", "2001:db8::10").build(), VW_PASS_IP_RULE, "strict", 2);
    expect(syn6("2001:db8:ff::6", "2001:db8::10").build(), VW_DROP_NO_RULE, "strict");
    expect(syn6("2001:db8:2::5", "2001:db8::10").build(), VW_DROP_NO_RULE, "strict");
}

TEST_F(Ipv6, EndpointsAndVaultDecisions) {
    expect(syn6("2001:db8:9::1", "2001:db8::12").build(), VW_PASS_DEFAULT_ALLOW, "open");
    expect(syn6("2001:db8:1::5", "2001:db8::13").build(), VW_DROP_PUBLIC_ACCESS_DISABLED, "closed");
    expect(syn6("2001:db8:1::5", "2001:db8::99").build(), VW_PASS_UNPROTECTED);  // no endpoint
    expect(syn6("2001:db8:1::5", "2001:db8::10", 444).build(), VW_PASS_UNPROTECTED);  // other port
    expect(FrameSpec::udp_flow6({ip6("2001:db8:1::5"), ip6("2001:db8::10"), 1, 443}).build(),
           VW_PASS_UNPROTECTED);  // the endpoint is TCP
    // ICMPv6 (neighbour discovery, echo) has no port: it passes.
    expect(FrameSpec::icmp6_echo(ip6("2001:db8:9::1"), ip6("2001:db8::10")).build(), VW_PASS_UNPROTECTED);
    // A private endpoint's address reached without its VNI.
    expect(syn6("2001:db8:1::5", "2001:2:0:1::100").build(), VW_DROP_NOT_PRIVATE_LINK);
    // IPv4 rules say nothing about IPv6 sources and the other way round:
    // 192.0.2.0/24 as an IPv4-mapped source is not an IPv4 rule's source.
    expect(syn6("::ffff:192.0.2.5", "2001:db8::10").build(), VW_DROP_NO_RULE, "strict");
    const auto v4 = bpfmaps::run_explain(*dp, plain_syn4("192.0.2.5", "203.0.113.10"));
    EXPECT_EQ(v4.reason, std::uint32_t(VW_PASS_IP_RULE));
    EXPECT_EQ(v4.rule_id, report.rule_ids.at(0));
}

TEST_F(Ipv6, ExtensionHeadersAreWalkedUpToTheBound) {
    auto chain = syn6("2001:db8:1::5", "2001:db8::10");
    chain.ext6(Ipv6ExtHeader::options(kProtoHopByHop, 0))
        .ext6(Ipv6ExtHeader::options(kProtoDstOpts, 3))
        .ext6(Ipv6ExtHeader::options(kProtoRouting, 2))
        .ext6(Ipv6ExtHeader::fragment(0, false));  // atomic: a whole datagram (RFC 6946)
    expect(chain.build(), VW_PASS_IP_RULE, "strict", 0);

    auto longest = syn6("2001:db8:1::5", "2001:db8::10");
    for (int i = 0; i < VW_IPV6_MAX_EXT_HEADERS; ++i) longest.ext6(Ipv6ExtHeader::options(kProtoDstOpts, 0));
    expect(longest.build(), VW_PASS_IP_RULE, "strict", 0);
    // One more than the bound: nothing after it is read, so it is dropped,
    // to a protected destination and to any other (it could hide VXLAN).
    auto too_long = longest;
    too_long.ext6(Ipv6ExtHeader::options(kProtoDstOpts, 0));
    expect(too_long.build(), VW_DROP_MALFORMED);
    too_long.ip6.dst = ip6("2001:db8::99");
    expect(too_long.build(), VW_DROP_MALFORMED);

    // A header whose length runs past the datagram.
    auto lying = syn6("2001:db8:1::5", "2001:db8::10");
    lying.ext6(Ipv6ExtHeader::options(kProtoDstOpts, 0));
    lying.ip6.ext[0].hdr_ext_len = 9;
    expect(lying.build(), VW_DROP_MALFORMED);
    // A chain that ends in no upper layer at all.
    auto none = syn6("2001:db8:1::5", "2001:db8::10");
    none.ip6.protocol = kProtoNoNext;
    none.l4_header = false;
    expect(none.build(), VW_PASS_UNPROTECTED);
    // TCP cut short inside the datagram.
    auto short_tcp = syn6("2001:db8:1::5", "2001:db8::10").with_payload(Bytes(12, 0));
    short_tcp.l4_header = false;
    expect(short_tcp.build(), VW_DROP_MALFORMED);
}

TEST_F(Ipv6, FragmentsFailClosed) {
    auto later = syn6("2001:db8:1::5", "2001:db8::10").with_payload(Bytes(32, 0xaa));
    later.ext6(Ipv6ExtHeader::fragment(4, true));
    expect(later.build(), VW_DROP_FRAGMENT);
    later.ip6.dst = ip6("2001:db8::99");  // unprotected: the stack reassembles it
    expect(later.build(), VW_PASS_UNPROTECTED);
    later.ip6.dst = ip6("2001:db8::12");  // any endpoint's address counts, whatever the port
    expect(later.build(), VW_DROP_FRAGMENT);

    auto first = syn6("2001:db8:1::5", "2001:db8::10");
    first.ext6(Ipv6ExtHeader::options(kProtoHopByHop, 0)).ext6(Ipv6ExtHeader::fragment(0, true));
    expect(first.build(), VW_DROP_FRAGMENT);
    first.ip6.dst = ip6("2001:db8::99");
    expect(first.build(), VW_PASS_UNPROTECTED);

    // RFC 7112: a first fragment whose TCP header is not whole, whoever it is for.
    auto tiny = syn6("2001:db8:1::5", "2001:db8::99").with_payload(Bytes(12, 0));
    tiny.l4_header = false;
    tiny.ext6(Ipv6ExtHeader::fragment(0, true));
    expect(tiny.build(), VW_DROP_FRAGMENT);
    // ... or whose header chain stops inside it.
    auto split_chain = syn6("2001:db8:1::5", "2001:db8::99");
    split_chain.ext6(Ipv6ExtHeader::fragment(0, true)).ext6(Ipv6ExtHeader::options(kProtoDstOpts, 0));
    split_chain.ip6.ext[1].hdr_ext_len = 20;
    expect(split_chain.build(), VW_DROP_FRAGMENT);
    // Two fragment headers.
    auto twice = syn6("2001:db8:1::5", "2001:db8::99");
    twice.ext6(Ipv6ExtHeader::fragment(0, true)).ext6(Ipv6ExtHeader::fragment(0, true));
    expect(twice.build(), VW_DROP_FRAGMENT);
    auto twice_atomic = syn6("2001:db8:1::5", "2001:db8::99");
    twice_atomic.ext6(Ipv6ExtHeader::fragment(0, false)).ext6(Ipv6ExtHeader::fragment(0, false));
    expect(twice_atomic.build(), VW_DROP_FRAGMENT);

    // Underlay fragments: from a VTEP, or of UDP to the VXLAN port.
    auto from_vtep = FrameSpec::udp_flow6({kVtep6, ip6("2001:db8::99"), 1, 53});
    from_vtep.ext6(Ipv6ExtHeader::fragment(0, true));
    expect(from_vtep.build(), VW_DROP_FRAGMENT);
    auto to_vxlan = FrameSpec::udp_flow6({kImpostor6, kHost6, 49152, kVxlanPort});
    to_vxlan.ext6(Ipv6ExtHeader::fragment(0, true));
    expect(to_vxlan.build(), VW_DROP_FRAGMENT);
}

TEST_F(Ipv6, VxlanOverEitherUnderlayWithEitherInnerFamily) {
    const Bytes inner6 = syn6("2001:2:0:1::7", "2001:2:0:1::100").build();
    const Bytes inner6_public = syn6("2001:2:0:1::7", "2001:db8::10").build();
    const Bytes inner4 = tcp_frame({ip("198.19.1.7"), ip("198.19.1.100"), 40000, 443});
    // IPv6 underlay.
    expect(vxlan_frame6(kVtep6, kHost6, 5001, inner6), VW_PASS_PRIVATE_ENDPOINT, "strict");
    expect(vxlan_frame6(kVtep6, kHost6, 5001, inner6_public), VW_PASS_VNET_RULE, "strict", 3);
    expect(vxlan_frame6(kVtep6, kHost6, 5001, inner4), VW_PASS_PRIVATE_ENDPOINT, "strict");
    expect(vxlan_frame6(kVtep6, kHost6, 5002, inner6), VW_DROP_NOT_PRIVATE_LINK);
    expect(vxlan_frame6(kVtep6, kHost6, 5002, inner6_public), VW_DROP_NO_RULE, "strict");
    expect(vxlan_frame6(kImpostor6, kHost6, 5001, inner6), VW_DROP_UNTRUSTED_VTEP);
    // An IPv4 VTEP prefix does not trust an IPv6 source, nor the other way.
    expect(vxlan_frame6(ip6("::ffff:198.18.0.5"), kHost6, 5001, inner6), VW_DROP_UNTRUSTED_VTEP);
    // IPv4 underlay, inner IPv6.
    expect(vxlan_frame(kVtep4, kHost4, 5001, inner6), VW_PASS_PRIVATE_ENDPOINT, "strict");
    expect(vxlan_frame(kVtep4, kHost4, 5001, inner6_public), VW_PASS_VNET_RULE, "strict", 3);
    // Inner fragments and chains.
    auto inner_frag = syn6("2001:2:0:1::7", "2001:2:0:1::100").with_payload(Bytes(16, 0));
    inner_frag.ext6(Ipv6ExtHeader::fragment(2, false));
    expect(vxlan_frame6(kVtep6, kHost6, 5001, inner_frag.build()), VW_DROP_FRAGMENT);
    inner_frag.ip6.dst = ip6("2001:2:0:1::99");
    expect(vxlan_frame6(kVtep6, kHost6, 5001, inner_frag.build()), VW_PASS_UNPROTECTED);
    auto inner_long = syn6("2001:2:0:1::7", "2001:2:0:1::100");
    for (int i = 0; i <= VW_IPV6_MAX_EXT_HEADERS; ++i) inner_long.ext6(Ipv6ExtHeader::options(kProtoDstOpts, 0));
    expect(vxlan_frame(kVtep4, kHost4, 5001, inner_long.build()), VW_DROP_MALFORMED);
    // The underlay's own extension headers are walked too.
    auto outer = VxlanSpec::between6(kVtep6, kHost6, 5001);
    outer.ip6.ext = {Ipv6ExtHeader::options(kProtoHopByHop, 0), Ipv6ExtHeader::options(kProtoDstOpts, 1)};
    expect(vxlan_encapsulate(inner6, outer), VW_PASS_PRIVATE_ENDPOINT, "strict");
    // Overlay ICMPv6 (neighbour discovery) has no port; overlay ARP is not IP.
    expect(vxlan_frame6(kVtep6, kHost6, 5001,
                        FrameSpec::icmp6_echo(ip6("2001:2:0:1::7"), ip6("2001:2:0:1::100")).build()),
           VW_PASS_UNPROTECTED);
    expect(vxlan_frame6(kVtep6, kHost6, 5001, arp_frame(ip("198.19.1.7"), ip("198.19.1.100"))), VW_PASS_NOT_IP);
}

TEST_F(Ipv6, AdmissionRecordedUnderTheIpv6FourTuple) {
    Flow6 f{ip6("2001:db8:1:2::9"), ip6("2001:db8::10"), 41000, 443};
    expect(tcp_frame6(f, tcp_flags::syn), VW_PASS_IP_RULE, "strict", 1);
    auto adm = admission6(f);
    ASSERT_TRUE(adm);
    EXPECT_EQ(adm->vault_id, vault_id("strict"));
    EXPECT_EQ(adm->reason, VW_PASS_IP_RULE);
    EXPECT_EQ(adm->rule_id, report.rule_ids6[1]);
    EXPECT_EQ(adm->generation, report.generation);

    Flow6 v{ip6("2001:2:0:1::7"), ip6("2001:2:0:1::100"), 41001, 443};
    expect(vxlan_frame6(kVtep6, kHost6, 5001, tcp_frame6(v)), VW_PASS_PRIVATE_ENDPOINT, "strict");
    adm = admission6(v);
    ASSERT_TRUE(adm);
    EXPECT_EQ(adm->vni, 5001u);

    Flow6 g{ip6("2001:db8:1::10"), ip6("2001:db8::10"), 41002, 443};
    expect(tcp_frame6(g, tcp_flags::syn | tcp_flags::ack), VW_PASS_IP_RULE, "strict", 0);
    EXPECT_FALSE(admission6(g));
    Flow6 h{ip6("2001:db8:7::1"), ip6("2001:db8::10"), 41003, 443};
    expect(tcp_frame6(h), VW_DROP_NO_RULE, "strict");
    EXPECT_FALSE(admission6(h));
}

// Every prefix of every IPv6 template: an IPv6 datagram cut short is always
// malformed (its payload length no longer fits the frame), never passed.
TEST_F(Ipv6, TruncatedAtEveryLength) {
    auto vlan_chain = syn6("2001:db8:1::5", "2001:db8::10");
    vlan_chain.qinq(1, 2).ext6(Ipv6ExtHeader::options(kProtoHopByHop, 1)).ext6(Ipv6ExtHeader::fragment(0, false));
    const Bytes inner6 = syn6("2001:2:0:1::7", "2001:2:0:1::100").build();
    const std::vector<Bytes> templates = {
        syn6("2001:db8:1::5", "2001:db8::10").build(),
        vlan_chain.build(),
        FrameSpec::udp_flow6({ip6("2001:db8:1::5"), ip6("2001:db8::10"), 1, 443}).build(),
        vxlan_frame(kVtep4, kHost4, 5001, inner6),
        vxlan_frame6(kVtep6, kHost6, 5001, inner6),
        vxlan_frame6(kVtep6, kHost6, 5001, tcp_frame({ip("198.19.1.7"), ip("198.19.1.100"), 40000, 443})),
    };
    int runs = 0;
    for (const auto& t : templates) {
        for (std::size_t len = kEthHeaderLen; len < t.size(); ++len) {
            Bytes cut(t.begin(), t.begin() + len);
            auto res = bpfmaps::run_explain(*dp, cut);
            EXPECT_EQ(reason_name(vw_reason(res.reason)), reason_name(VW_DROP_MALFORMED))
                << "len " << len << "\n" << hexdump(cut);
            EXPECT_EQ(bpfmaps::run_main(*dp, cut), static_cast<std::uint32_t>(XDP_DROP));
            EXPECT_EQ(ref->classify(cut.data(), cut.size()).reason, VW_DROP_MALFORMED) << "reference, len " << len;
            ++runs;
        }
    }
    EXPECT_GT(runs, 500);
}

TEST_F(Ipv6, ReloadsKeepRuleIdsAndHitCounts) {
    const auto first = report;
    expect(syn6("2001:db8:1::5", "2001:db8::10").build(), VW_PASS_IP_RULE, "strict", 0);
    expect(syn6("2001:db8:1::6", "2001:db8::10").build(), VW_PASS_IP_RULE, "strict", 0);
    auto b = set;
    b.rules6.erase(b.rules6.begin() + 2);                               // 2001:db8:ff::7/128 goes
    b.rules6.push_back({0, 0, prefix6("2001:db8:ff::/64"), "ip_rules"});  // a /64 comes
    set = b;
    ref = std::make_unique<reference::Classifier>(set);
    install(b);
    EXPECT_EQ(report.rule_ids6[0], first.rule_ids6[0]);
    EXPECT_EQ(bpfmaps::read_rule_hits(*dp, report.rule_ids6[0]), 2u);
    ASSERT_EQ(report.diff.size(), 1u);
    EXPECT_EQ(report.diff[0].rules_added, 1u);
    EXPECT_EQ(report.diff[0].rules_removed, 1u);
    // IPv4 and IPv6 rules share the id space: no id twice.
    std::set<std::uint32_t> ids(report.rule_ids.begin(), report.rule_ids.end());
    ids.insert(report.rule_ids6.begin(), report.rule_ids6.end());
    EXPECT_EQ(ids.size(), report.rule_ids.size() + report.rule_ids6.size());
    expect(syn6("2001:db8:ff::7", "2001:db8::10").build(), VW_PASS_IP_RULE, "strict", 3);
    // A restarted daemon adopts the IPv6 tables: the same ids, nothing to write.
    bpfmaps::Installer adopted(*dp);
    EXPECT_EQ(adopted.live_image().rules6->size(), b.rules6.size());
    auto rep = adopted.install(b);
    EXPECT_EQ(rep.rule_ids6, report.rule_ids6);
    EXPECT_TRUE(rep.diff.empty());
}

// A scope with more prefix lengths than vw_scope6 lists is looked up in the
// trie instead, with the same answers.
TEST_F(Ipv6, ScopeWithManyLengthsFallsBackToTheTrie) {
    auto s = set;
    const Ipv6Addr base = ip6("2001:db8:1:2:3:4:5:6");
    for (std::uint8_t len = 100; len <= 128; ++len)
        s.rules6.push_back({0, 0, {rules::Ipv6Prefix::masked(base, len), len}, "ip_rules"});
    set = s;
    ref = std::make_unique<reference::Classifier>(set);
    install(s);
    auto index_of_len = [](int len) { return 4 + len - 100; };  // rules6[4] is the /100
    expect(syn6("2001:db8:1:2:3:4:5:6", "2001:db8::10").build(), VW_PASS_IP_RULE, "strict", index_of_len(128));
    expect(syn6("2001:db8:1:2:3:4:5:7", "2001:db8::10").build(), VW_PASS_IP_RULE, "strict", index_of_len(127));
    expect(syn6("2001:db8:1:2:3:4:4:6", "2001:db8::10").build(), VW_PASS_IP_RULE, "strict", index_of_len(111));
    expect(syn6("2001:db8:1:2::9", "2001:db8::10").build(), VW_PASS_IP_RULE, "strict", 1);
    vw_scope_key key{0, vault_id("strict"), 0};
    vw_scope6 scope{};
    bool found = false;
    for (std::uint32_t set_no = 0; set_no < VW_SETS; ++set_no) {
        key.set = set_no;
        if (bpf_map_lookup_elem(dp->map_fd(bpfmaps::Map::scopes6), &key, &scope) == 0) {
            found = true;
            EXPECT_EQ(scope.flags & VW_SCOPE_TRIE, VW_SCOPE_TRIE);
        }
    }
    EXPECT_TRUE(found);
}

}  // namespace
}  // namespace vaultwall::testing
