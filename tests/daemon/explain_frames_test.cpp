// flow_json (userspace/daemon/explain_frames.hpp): the "flow" of every packet
// in `explain --frame/--pcap --json` and `whatif --json`, as the reference
// model read it, for IPv4 and IPv6 frames alike (SPEC §11). No kernel needed:
// the frames go through the reference classifier only.
#include "daemon/explain_frames.hpp"

#include <gtest/gtest.h>

#include "packet/packet.hpp"
#include "reference/classifier.hpp"
#include "rules/compiled.hpp"
#include "rules/ipv4.hpp"
#include "rules/ipv6.hpp"
#include "rules/parser.hpp"

namespace {

using vaultwall::daemon::flow_json;
using vaultwall::daemon::Json;
namespace packet = vaultwall::packet;
namespace rules = vaultwall::rules;

// One dual-stack vault: IPv4 and IPv6 endpoints, rules and VNet subnet, and
// VTEPs on both underlays.
constexpr const char* kRules = R"(version: 1
host:
  vteps: [198.18.0.0/24, "2001:2::/64"]
vnets:
  - name: prod
    vni: 5001
    subnets:
      app: [198.19.1.0/24, "2001:2:0:1::/64"]
vaults:
  - name: alpha
    tenant_id: 3f1c9a52-7d0e-4b8a-9c11-5e2f0a6d4b10
    endpoints: [203.0.113.10:443, "[2001:db8::10]:443"]
    network_acls:
      default_action: deny
      bypass: none
      ip_rules: [192.0.2.0/24, "2001:db8:1::/48"]
      virtual_network_rules: [prod/app]
)";

packet::Ipv6Addr v6(const char* s) { return *rules::parse_ipv6(s); }
std::uint32_t v4(const char* s) { return *rules::parse_ipv4(s); }

class FlowJsonTest : public ::testing::Test {
protected:
    FlowJsonTest() : set_(rules::compile(rules::parse_rule_text(kRules, "flow.yaml", "/"))), ref_(set_) {}

    vaultwall::reference::Verdict judge(const packet::Bytes& f) const { return ref_.classify(f.data(), f.size()); }

    rules::CompiledRuleSet set_;
    vaultwall::reference::Classifier ref_;
};

TEST_F(FlowJsonTest, Ipv6TcpHasTheSameFieldsAsIpv4) {
    const auto v = judge(packet::tcp_frame6({v6("2001:db8:1::10"), v6("2001:db8::10"), 40000, 443}));
    EXPECT_EQ(v.reason, VW_PASS_IP_RULE);
    EXPECT_EQ(flow_json(v.flow), Json({{"src", "2001:db8:1::10"},
                                       {"dst", "2001:db8::10"},
                                       {"sport", 40000},
                                       {"dport", 443},
                                       {"protocol", "tcp"},
                                       {"vxlan", false}}));
    const auto w = judge(packet::tcp_frame({v4("192.0.2.10"), v4("203.0.113.10"), 40000, 443}));
    EXPECT_EQ(w.reason, VW_PASS_IP_RULE);
    EXPECT_EQ(flow_json(w.flow), Json({{"src", "192.0.2.10"},
                                       {"dst", "203.0.113.10"},
                                       {"sport", 40000},
                                       {"dport", 443},
                                       {"protocol", "tcp"},
                                       {"vxlan", false}}));
}

// RFC 5952: lower case, no leading zeros, the first of two equally long zero
// runs as "::"; an IPv4-mapped address keeps its dotted tail.
TEST_F(FlowJsonTest, Ipv6AddressesInRfc5952Form) {
    const auto v = judge(packet::udp_frame6({v6("2001:0DB8:0000:0000:0001:0000:0000:0001"),
                                             v6("2001:db8:0:0:0:0:0:10"), 5353, 53}));
    const Json f = flow_json(v.flow);
    EXPECT_EQ(f["src"], "2001:db8::1:0:0:1") << f.dump();
    EXPECT_EQ(f["dst"], "2001:db8::10") << f.dump();
    EXPECT_EQ(f["protocol"], "udp");
    EXPECT_EQ(f["sport"], 5353);
    EXPECT_EQ(f["dport"], 53);
    const auto m = judge(packet::tcp_frame6({v6("::ffff:192.0.2.1"), v6("2001:db8::10"), 1, 443}));
    EXPECT_EQ(flow_json(m.flow)["src"], "::ffff:192.0.2.1");
}

// After extension headers the protocol is the upper layer's, not the first
// next-header value.
TEST_F(FlowJsonTest, Ipv6ProtocolIsTheUpperLayerAfterExtensionHeaders) {
    auto spec = packet::FrameSpec::tcp_flow6({v6("2001:db8:1::10"), v6("2001:db8::10"), 40001, 443});
    spec.ext6(packet::Ipv6ExtHeader::options(packet::kProtoHopByHop))
        .ext6(packet::Ipv6ExtHeader::options(packet::kProtoDstOpts, 1));
    const auto v = judge(spec.build());
    EXPECT_EQ(v.reason, VW_PASS_IP_RULE);
    const Json f = flow_json(v.flow);
    EXPECT_EQ(f["protocol"], "tcp") << f.dump();
    EXPECT_EQ(f["sport"], 40001);
}

TEST_F(FlowJsonTest, Icmpv6HasNoPorts) {
    const auto v = judge(packet::FrameSpec::icmp6_echo(v6("2001:db8::66"), v6("2001:db8::10")).build());
    EXPECT_EQ(flow_json(v.flow), Json({{"src", "2001:db8::66"},
                                       {"dst", "2001:db8::10"},
                                       {"sport", nullptr},
                                       {"dport", nullptr},
                                       {"protocol", "icmpv6"},
                                       {"vxlan", false}}));
    const auto w = judge(packet::FrameSpec::icmp_echo(v4("198.51.100.66"), v4("203.0.113.10")).build());
    EXPECT_EQ(flow_json(w.flow)["protocol"], "icmp");
}

// VXLAN: the inner flow, over either underlay.
TEST_F(FlowJsonTest, InnerIpv6FlowOfVxlan) {
    const auto inner = packet::tcp_frame6({v6("2001:2:0:1::10"), v6("2001:db8::10"), 40002, 443});
    const Json want = {{"src", "2001:2:0:1::10"}, {"dst", "2001:db8::10"}, {"sport", 40002},
                       {"dport", 443},            {"protocol", "tcp"},     {"vxlan", true}};
    const auto over4 = judge(packet::vxlan_frame(v4("198.18.0.2"), v4("198.18.0.1"), 5001, inner));
    EXPECT_EQ(over4.reason, VW_PASS_VNET_RULE);
    EXPECT_EQ(flow_json(over4.flow), want);
    const auto over6 = judge(packet::vxlan_frame6(v6("2001:2::2"), v6("2001:2::1"), 5001, inner));
    EXPECT_EQ(over6.reason, VW_PASS_VNET_RULE);
    EXPECT_EQ(flow_json(over6.flow), want);
    // From a VTEP outside host.vteps the inner frame is never read: the
    // flow is the outer IPv6 datagram (UDP to the VXLAN port).
    const auto untrusted = judge(packet::vxlan_frame6(v6("2001:2:5::2"), v6("2001:2::1"), 5001, inner));
    EXPECT_EQ(untrusted.reason, VW_DROP_UNTRUSTED_VTEP);
    const Json f = flow_json(untrusted.flow);
    EXPECT_EQ(f["src"], "2001:2:5::2") << f.dump();
    EXPECT_EQ(f["protocol"], "udp");
    EXPECT_EQ(f["dport"], 4789);
    EXPECT_EQ(f["vxlan"], false);
}

TEST_F(FlowJsonTest, NullWithoutAnIpHeader) {
    const auto arp = judge(packet::arp_frame(v4("192.0.2.10"), v4("203.0.113.10")));
    EXPECT_EQ(arp.reason, VW_PASS_NOT_IP);
    EXPECT_TRUE(flow_json(arp.flow).is_null());
    // An IPv6 header cut short is not read either.
    auto cut = packet::tcp_frame6({v6("2001:db8:1::10"), v6("2001:db8::10"), 40000, 443});
    cut.resize(14 + 20);
    const auto v = judge(cut);
    EXPECT_EQ(v.reason, VW_DROP_MALFORMED);
    EXPECT_TRUE(flow_json(v.flow).is_null());
}

}  // namespace
