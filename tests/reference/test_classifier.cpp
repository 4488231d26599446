// The reference classifier against hand-built frames, one group per step of
// docs/datapath.md. Frames are assembled byte by byte here on purpose.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <random>
#include <vector>

#include "reference/classifier.hpp"
#include "common/reasons.hpp"
#include "rules/compiled.hpp"
#include "rules/parser.hpp"

using namespace vaultwall;
using reference::Classifier;
using reference::Verdict;
using Bytes = std::vector<std::uint8_t>;

namespace {

// ---------------------------------------------------------------- frame bytes

std::uint32_t ip(const char* s) { return *rules::parse_ipv4(s); }

void put16(Bytes& b, std::uint16_t v) {
    b.push_back(v >> 8);
    b.push_back(v & 0xff);
}
void put32(Bytes& b, std::uint32_t v) {
    put16(b, v >> 16);
    put16(b, v & 0xffff);
}
Bytes cat(std::initializer_list<Bytes> parts) {
    Bytes r;
    for (const auto& p : parts) r.insert(r.end(), p.begin(), p.end());
    return r;
}

Bytes eth(std::uint16_t type, std::initializer_list<std::uint16_t> tags = {}) {
    Bytes b = {0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2};
    for (auto t : tags) {  // each: TPID, then TCI
        put16(b, t);
        put16(b, 0x0064);
    }
    put16(b, type);
    return b;
}

constexpr std::uint8_t TCP = 6, UDP = 17, ICMP = 1;
constexpr std::uint8_t SYN = 0x02, ACK = 0x10;
constexpr std::uint16_t MF = 0x2000;

// IPv4 header; tot_len covers the header and `payload_len`.
Bytes ipv4(std::uint32_t src, std::uint32_t dst, std::uint8_t proto, std::size_t payload_len,
           std::uint16_t frag = 0, unsigned ihl = 5) {
    Bytes b;
    b.push_back(0x40 | ihl);
    b.push_back(0);
    put16(b, static_cast<std::uint16_t>(ihl * 4 + payload_len));
    put16(b, 0x1234);  // id
    put16(b, frag);
    b.push_back(64);
    b.push_back(proto);
    put16(b, 0);  // checksum (not verified)
    put32(b, src);
    put32(b, dst);
    for (unsigned i = 5; i < ihl; ++i) put32(b, 0x01010101);  // NOP options
    return b;
}

Bytes tcp(std::uint16_t sport, std::uint16_t dport, std::uint8_t flags) {
    Bytes b;
    put16(b, sport);
    put16(b, dport);
    put32(b, 1000);
    put32(b, flags & ACK ? 2000 : 0);
    b.push_back(0x50);
    b.push_back(flags);
    put16(b, 65535);
    put16(b, 0);
    put16(b, 0);
    return b;
}

Bytes udp(std::uint16_t sport, std::uint16_t dport, std::size_t payload_len) {
    Bytes b;
    put16(b, sport);
    put16(b, dport);
    put16(b, static_cast<std::uint16_t>(8 + payload_len));
    put16(b, 0);
    return b;
}

Bytes vxlan_hdr(std::uint32_t vni, std::uint8_t flags = 0x08) {
    return {flags, 0, 0, 0, std::uint8_t(vni >> 16), std::uint8_t(vni >> 8), std::uint8_t(vni), 0};
}

// A plain TCP frame.
Bytes tcp_frame(const char* src, const char* dst, std::uint16_t dport, std::uint8_t flags = SYN) {
    auto l4 = tcp(40000, dport, flags);
    return cat({eth(0x0800), ipv4(ip(src), ip(dst), TCP, l4.size()), l4});
}
Bytes udp_frame(const char* src, const char* dst, std::uint16_t dport) {
    auto l4 = udp(40000, dport, 0);
    return cat({eth(0x0800), ipv4(ip(src), ip(dst), UDP, l4.size()), l4});
}

// `inner` (an Ethernet frame) inside VXLAN from `vtep` to the host.
Bytes vxlan_frame(const char* vtep, std::uint32_t vni, const Bytes& inner,
                  std::uint16_t port = 4789, std::uint8_t flags = 0x08) {
    auto payload = cat({vxlan_hdr(vni, flags), inner});
    auto u = udp(50000, port, payload.size());
    return cat({eth(0x0800), ipv4(ip(vtep), ip("198.18.0.1"), UDP, u.size() + payload.size()), u,
                payload});
}

// ---------------------------------------------------------------- the rule set

const char* kRules = R"(version: 1
host: { vteps: [198.18.0.0/24] }
vnets:
  - { name: prod, vni: 5001, subnets: { app: 198.19.1.0/24 } }
  - { name: dev, vni: 5002, subnets: { app: 198.19.1.0/24 } }
vaults:
  - name: main            # 0
    tenant_id: 3f1c9a52-7d0e-4b8a-9c11-5e2f0a6d4b10
    endpoints: [203.0.113.10:443]
    private_endpoints: [{ vnet: prod, address: 198.19.1.100:443 }]
    network_acls:
      default_action: deny
      bypass: none
      ip_rules: [192.0.2.0/24, 192.0.2.128/25]
      virtual_network_rules: [prod/app]
  - name: allow           # 1
    tenant_id: 3f1c9a52-7d0e-4b8a-9c11-5e2f0a6d4b10
    endpoints: [203.0.113.11:443]
    network_acls: { default_action: allow, bypass: none }
  - name: bypass          # 2
    tenant_id: 3f1c9a52-7d0e-4b8a-9c11-5e2f0a6d4b10
    endpoints: [203.0.113.12:443]
    network_acls: { default_action: deny, bypass: azure_services }
  - name: closed          # 3
    tenant_id: 3f1c9a52-7d0e-4b8a-9c11-5e2f0a6d4b10
    endpoints: [203.0.113.13:443]
    public_network_access: disabled
    network_acls: { bypass: none, ip_rules: [192.0.2.0/24] }
  - name: closed-bypass   # 4
    tenant_id: 3f1c9a52-7d0e-4b8a-9c11-5e2f0a6d4b10
    endpoints: [203.0.113.14:443]
    public_network_access: disabled
  - name: dev-pe          # 5
    tenant_id: 3f1c9a52-7d0e-4b8a-9c11-5e2f0a6d4b10
    private_endpoints: [{ vnet: dev, address: 198.19.1.100:443 }]
)";

class ClassifierTest : public ::testing::Test {
protected:
    ClassifierTest()
        : set_(rules::compile(rules::parse_rule_text(kRules, "ref.yaml", "/"))), c_(set_) {}

    Verdict run(const Bytes& f) const { return c_.classify(f.data(), f.size()); }

    int rule_index(std::uint32_t vault, std::uint32_t vni, const char* prefix) const {
        auto p = rules::parse_ipv4_prefix(prefix)->prefix;
        for (std::size_t i = 0; i < set_.rules.size(); ++i)
            if (set_.rules[i].vault == vault && set_.rules[i].vni == vni &&
                set_.rules[i].prefix == p)
                return static_cast<int>(i);
        return -2;
    }

    void expect(const Bytes& f, vw_reason reason, int vault = -1, int rule = -1,
                std::uint32_t vni = 0) const {
        auto v = run(f);
        EXPECT_EQ(vaultwall::reason_name(v.reason), std::string(vaultwall::reason_name(reason)));
        EXPECT_EQ(v.pass, vaultwall::reason_is_pass(reason));
        EXPECT_EQ(v.vault, vault);
        EXPECT_EQ(v.rule, rule);
        EXPECT_EQ(v.vni, vni);
    }

    rules::CompiledRuleSet set_;
    Classifier c_;
};

}  // namespace

// ---------------------------------------------------------------- names

TEST(Reasons, NamesAndClasses) {
    const char* names[] = {"not_ip",         "unprotected",   "malformed", "untrusted_vtep",
                           "fragment",         "not_private_link", "private_endpoint", "ip_rule",
                           "vnet_rule",        "default_allow", "trusted_candidate", "no_rule",
                           "public_access_disabled", "no_rule", "public_access_disabled"};
    for (int r = 0; r < VW_REASONS; ++r)
        EXPECT_STREQ(vaultwall::reason_name(static_cast<vw_reason>(r)), names[r]);
    EXPECT_TRUE(vaultwall::reason_is_global(VW_DROP_NOT_PRIVATE_LINK));
    EXPECT_FALSE(vaultwall::reason_is_global(VW_PASS_PRIVATE_ENDPOINT));
    EXPECT_TRUE(vaultwall::reason_is_pass(VW_PASS_NOT_IP));
    EXPECT_FALSE(vaultwall::reason_is_pass(VW_DROP_NO_RULE));
    EXPECT_TRUE(vaultwall::reason_is_pass(VW_PASS_TRUSTED_CANDIDATE));
    EXPECT_FALSE(vaultwall::reason_is_pass(VW_DROP_PUBLIC_ACCESS_DISABLED));
    // Audit reasons pass, and their verdict tells them from the drops.
    EXPECT_TRUE(vaultwall::reason_is_pass(VW_AUDIT_NO_RULE));
    EXPECT_STREQ(vaultwall::verdict_name(VW_AUDIT_NO_RULE), "audit");
    EXPECT_STREQ(vaultwall::verdict_name(VW_DROP_NO_RULE), "drop");
    EXPECT_STREQ(vaultwall::verdict_name(VW_PASS_IP_RULE), "pass");
    EXPECT_EQ(vaultwall::reason_from_name("audit", "public_access_disabled"), VW_AUDIT_PUBLIC_ACCESS_DISABLED);
    EXPECT_EQ(vaultwall::reason_from_name("drop", "no_rule"), VW_DROP_NO_RULE);
    EXPECT_FALSE(vaultwall::reason_from_name("audit", "ip_rule"));
}

// ---------------------------------------------------------------- 1. Ethernet

TEST_F(ClassifierTest, NotIp) {
    expect(cat({eth(0x0806), Bytes(28, 0)}), VW_PASS_NOT_IP);  // ARP
    expect(cat({eth(0x88b5), Bytes(40, 0)}), VW_PASS_NOT_IP);  // neither IPv4 nor IPv6
    expect(cat({eth(0x86dd), Bytes(40, 0)}), VW_DROP_MALFORMED);  // IPv6 EtherType, version 0
    // a third VLAN tag is not parsed
    auto l4 = tcp(1, 443, SYN);
    expect(cat({eth(0x0800, {0x88a8, 0x8100, 0x8100}), ipv4(ip("192.0.2.5"), ip("203.0.113.10"),
                                                            TCP, l4.size()),
                l4}),
           VW_PASS_NOT_IP);
}

TEST_F(ClassifierTest, VlanTags) {
    auto l4 = tcp(1, 443, SYN);
    auto ipb = ipv4(ip("192.0.2.5"), ip("203.0.113.10"), TCP, l4.size());
    expect(cat({eth(0x0800, {0x8100}), ipb, l4}), VW_PASS_IP_RULE, 0, rule_index(0, 0, "192.0.2.0/24"));
    expect(cat({eth(0x0800, {0x88a8, 0x8100}), ipb, l4}), VW_PASS_IP_RULE, 0,
           rule_index(0, 0, "192.0.2.0/24"));
}

TEST_F(ClassifierTest, MalformedEthernet) {
    expect(Bytes(13, 0), VW_DROP_MALFORMED);
    expect(Bytes{}, VW_DROP_MALFORMED);
    auto e = eth(0x8100);  // tag announced, 2 of its 4 bytes present
    e.push_back(0);
    e.push_back(1);
    expect(e, VW_DROP_MALFORMED);
}

// ---------------------------------------------------------------- 2. IPv4

TEST_F(ClassifierTest, MalformedIpv4) {
    auto good = tcp_frame("192.0.2.5", "203.0.113.10", 443);
    expect(good, VW_PASS_IP_RULE, 0, rule_index(0, 0, "192.0.2.0/24"));

    expect(Bytes(good.begin(), good.begin() + 14 + 19), VW_DROP_MALFORMED);  // short header
    auto v6 = good;
    v6[14] = 0x65;  // version 6 under EtherType IPv4
    expect(v6, VW_DROP_MALFORMED);
    auto ihl4 = good;
    ihl4[14] = 0x44;
    expect(ihl4, VW_DROP_MALFORMED);
    auto ihl15 = good;  // 60-byte header does not fit in the frame
    ihl15[14] = 0x4f;
    ihl15.resize(14 + 50);
    expect(ihl15, VW_DROP_MALFORMED);
    auto longtot = good;  // tot_len beyond the frame
    longtot[16] = 0;
    longtot[17] = 41;
    expect(longtot, VW_DROP_MALFORMED);
    auto shorttot = good;  // tot_len < ihl*4
    shorttot[16] = 0;
    shorttot[17] = 19;
    expect(shorttot, VW_DROP_MALFORMED);
}

TEST_F(ClassifierTest, OptionsAndPadding) {
    auto l4 = tcp(1, 443, SYN);
    expect(cat({eth(0x0800), ipv4(ip("192.0.2.200"), ip("203.0.113.10"), TCP, l4.size(), 0, 7), l4}),
           VW_PASS_IP_RULE, 0, rule_index(0, 0, "192.0.2.128/25"));
    // Ethernet padding after the datagram is ignored...
    auto padded = cat({tcp_frame("192.0.2.5", "203.0.113.10", 443), Bytes(30, 0xee)});
    expect(padded, VW_PASS_IP_RULE, 0, rule_index(0, 0, "192.0.2.0/24"));
    // ...and does not count as layer-4 bytes: tot_len leaves only 10 of TCP.
    auto cut = cat({eth(0x0800), ipv4(ip("192.0.2.5"), ip("203.0.113.10"), TCP, 10), l4});
    expect(cut, VW_DROP_MALFORMED);
}

// ---------------------------------------------------------------- 3. outer fragments

TEST_F(ClassifierTest, OuterFragments) {
    auto l4 = udp(1, 4789, 0);
    // from a VTEP: always dropped, whatever it carries
    auto from_vtep = cat({eth(0x0800), ipv4(ip("198.18.0.9"), ip("198.51.100.1"), ICMP, 8, 100), Bytes(8, 0)});
    expect(from_vtep, VW_DROP_FRAGMENT);
    // first fragment of UDP to the VXLAN port from anywhere
    expect(cat({eth(0x0800), ipv4(ip("192.0.2.9"), ip("198.51.100.1"), UDP, 8, MF), l4}), VW_DROP_FRAGMENT);
    // first fragment of UDP with fewer than 4 bytes of header
    expect(cat({eth(0x0800), ipv4(ip("192.0.2.9"), ip("198.51.100.1"), UDP, 3, MF), Bytes(3, 0)}),
           VW_DROP_MALFORMED);
    // a later fragment (offset > 0) is not read as UDP
    expect(cat({eth(0x0800), ipv4(ip("192.0.2.9"), ip("198.51.100.1"), UDP, 3, 10), Bytes(3, 0)}),
           VW_PASS_UNPROTECTED);
    // to an address that carries any endpoint (any port, public or private)
    auto t = tcp(1, 80, 0);
    expect(cat({eth(0x0800), ipv4(ip("192.0.2.5"), ip("203.0.113.10"), TCP, t.size(), MF), t}),
           VW_DROP_FRAGMENT);
    expect(cat({eth(0x0800), ipv4(ip("192.0.2.5"), ip("198.19.1.100"), TCP, t.size(), 0x0010), t}),
           VW_DROP_FRAGMENT);
    // elsewhere: unprotected; DF alone is not a fragment
    expect(cat({eth(0x0800), ipv4(ip("192.0.2.5"), ip("203.0.113.99"), TCP, t.size(), MF), t}),
           VW_PASS_UNPROTECTED);
    auto df = tcp(1, 443, SYN);
    expect(cat({eth(0x0800), ipv4(ip("192.0.2.5"), ip("203.0.113.10"), TCP, df.size(), 0x4000), df}),
           VW_PASS_IP_RULE, 0, rule_index(0, 0, "192.0.2.0/24"));
}

// ---------------------------------------------------------------- 4. layer 4

TEST_F(ClassifierTest, Layer4) {
    // truncated TCP / UDP inside the datagram
    expect(cat({eth(0x0800), ipv4(ip("192.0.2.5"), ip("203.0.113.10"), TCP, 19), Bytes(19, 0)}),
           VW_DROP_MALFORMED);
    expect(cat({eth(0x0800), ipv4(ip("192.0.2.5"), ip("203.0.113.10"), UDP, 7), Bytes(7, 0)}),
           VW_DROP_MALFORMED);
    // other protocols never match an endpoint
    expect(cat({eth(0x0800), ipv4(ip("198.51.100.1"), ip("203.0.113.10"), ICMP, 8), Bytes(8, 0)}),
           VW_PASS_UNPROTECTED);
    // not an endpoint: other address, other port, other protocol
    expect(tcp_frame("198.51.100.1", "203.0.113.99", 443), VW_PASS_UNPROTECTED);
    expect(tcp_frame("198.51.100.1", "203.0.113.10", 80), VW_PASS_UNPROTECTED);
    expect(udp_frame("198.51.100.1", "203.0.113.10", 443), VW_PASS_UNPROTECTED);
}

// ---------------------------------------------------------------- 5. VXLAN

TEST_F(ClassifierTest, Vxlan) {
    auto inner = tcp_frame("198.19.1.7", "203.0.113.10", 443);
    expect(vxlan_frame("198.18.0.5", 5001, inner), VW_PASS_VNET_RULE, 0,
           rule_index(0, 5001, "198.19.1.0/24"), 5001);
    // untrusted VTEP
    expect(vxlan_frame("192.0.2.5", 5001, inner), VW_DROP_UNTRUSTED_VTEP);
    // I flag clear
    expect(vxlan_frame("198.18.0.5", 5001, inner, 4789, 0x00), VW_DROP_MALFORMED);
    // no room for the inner Ethernet header
    expect(vxlan_frame("198.18.0.5", 5001, Bytes(13, 0)), VW_DROP_MALFORMED);
    // inner not IPv4 (overlay ARP): passes, VNI known
    expect(vxlan_frame("198.18.0.5", 5001, cat({eth(0x0806), Bytes(28, 0)})), VW_PASS_NOT_IP, -1,
           -1, 5001);
    // inner IPv4 malformed; inner bounded by the outer datagram
    auto bad_inner = inner;
    bad_inner[14] = 0x46;
    expect(vxlan_frame("198.18.0.5", 5001, bad_inner), VW_DROP_MALFORMED, -1, -1, 5001);
    auto outer = vxlan_frame("198.18.0.5", 5001, inner);
    auto shrunk = outer;  // outer tot_len cuts the inner TCP header short
    std::uint16_t tot = static_cast<std::uint16_t>((shrunk[16] << 8 | shrunk[17]) - 4);
    shrunk[16] = tot >> 8;
    shrunk[17] = tot & 0xff;
    expect(shrunk, VW_DROP_MALFORMED, -1, -1, 5001);
    // inner truncated TCP
    auto inner_cut = cat({eth(0x0800), ipv4(ip("198.19.1.7"), ip("203.0.113.10"), TCP, 12), Bytes(12, 0)});
    expect(vxlan_frame("198.18.0.5", 5001, inner_cut), VW_DROP_MALFORMED, -1, -1, 5001);
    // inner fragments
    auto t = tcp(1, 443, SYN);
    expect(vxlan_frame("198.18.0.5", 5001,
                       cat({eth(0x0800), ipv4(ip("198.19.1.7"), ip("203.0.113.10"), TCP, t.size(), MF), t})),
           VW_DROP_FRAGMENT, -1, -1, 5001);
    expect(vxlan_frame("198.18.0.5", 5001,
                       cat({eth(0x0800), ipv4(ip("198.19.1.7"), ip("198.19.9.9"), TCP, t.size(), MF), t})),
           VW_PASS_UNPROTECTED, -1, -1, 5001);
    // outer UDP to another port is not VXLAN
    expect(vxlan_frame("192.0.2.5", 5001, inner, 4790), VW_PASS_UNPROTECTED);
    // inner VLAN tag
    auto tagged = cat({eth(0x0800, {0x8100}), Bytes(inner.begin() + 14, inner.end())});
    expect(vxlan_frame("198.18.0.5", 5001, tagged), VW_PASS_VNET_RULE, 0,
           rule_index(0, 5001, "198.19.1.0/24"), 5001);
}

TEST_F(ClassifierTest, VxlanPortIsConfigurable) {
    auto set = set_;
    set.vxlan_port = 8472;
    Classifier c(set);
    auto inner = tcp_frame("198.19.1.7", "203.0.113.10", 443);
    auto f = vxlan_frame("198.18.0.5", 5001, inner, 8472);
    EXPECT_EQ(c.classify(f.data(), f.size()).reason, VW_PASS_VNET_RULE);
    auto g = vxlan_frame("198.18.0.5", 5001, inner, 4789);
    EXPECT_EQ(c.classify(g.data(), g.size()).reason, VW_PASS_UNPROTECTED);
}

// ---------------------------------------------------------------- 6. endpoints

TEST_F(ClassifierTest, PrivateEndpoints) {
    auto to_pe = tcp_frame("198.19.1.7", "198.19.1.100", 443);
    expect(vxlan_frame("198.18.0.5", 5001, to_pe), VW_PASS_PRIVATE_ENDPOINT, 0, -1, 5001);
    // the same address in another VNet belongs to another vault
    expect(vxlan_frame("198.18.0.5", 5002, to_pe), VW_PASS_PRIVATE_ENDPOINT, 5, -1, 5002);
    // wrong VNI, VNI 0, or plain: not through its VNet
    expect(vxlan_frame("198.18.0.5", 5003, to_pe), VW_DROP_NOT_PRIVATE_LINK, -1, -1, 5003);
    expect(vxlan_frame("198.18.0.5", 0, to_pe), VW_DROP_NOT_PRIVATE_LINK);
    expect(tcp_frame("192.0.2.5", "198.19.1.100", 443), VW_DROP_NOT_PRIVATE_LINK);
    // another port of that address is not an endpoint
    expect(tcp_frame("192.0.2.5", "198.19.1.100", 80), VW_PASS_UNPROTECTED);
}

// ---------------------------------------------------------------- 7. vault decision

TEST_F(ClassifierTest, VaultDecision) {
    // ip rules: longest prefix wins
    expect(tcp_frame("192.0.2.5", "203.0.113.10", 443), VW_PASS_IP_RULE, 0,
           rule_index(0, 0, "192.0.2.0/24"));
    expect(tcp_frame("192.0.2.200", "203.0.113.10", 443), VW_PASS_IP_RULE, 0,
           rule_index(0, 0, "192.0.2.128/25"));
    expect(tcp_frame("198.51.100.1", "203.0.113.10", 443), VW_DROP_NO_RULE, 0);
    // VXLAN traffic never matches ip rules; VNI 0 matches no vnet rule
    expect(vxlan_frame("198.18.0.5", 0, tcp_frame("192.0.2.5", "203.0.113.10", 443)),
           VW_DROP_NO_RULE, 0);
    // the subnet prefix of another VNI is not a rule of this vault
    expect(vxlan_frame("198.18.0.5", 5002, tcp_frame("198.19.1.7", "203.0.113.10", 443)),
           VW_DROP_NO_RULE, 0, -1, 5002);
    // plain traffic from a vnet rule's prefix is not admitted by it
    expect(tcp_frame("198.19.1.7", "203.0.113.10", 443), VW_DROP_NO_RULE, 0);
    expect(tcp_frame("198.51.100.1", "203.0.113.11", 443), VW_PASS_DEFAULT_ALLOW, 1);
    expect(tcp_frame("198.51.100.1", "203.0.113.12", 443), VW_PASS_TRUSTED_CANDIDATE, 2);
    // public network access disabled comes before ip rules
    expect(tcp_frame("192.0.2.5", "203.0.113.13", 443), VW_DROP_PUBLIC_ACCESS_DISABLED, 3);
    expect(tcp_frame("192.0.2.5", "203.0.113.14", 443), VW_PASS_TRUSTED_CANDIDATE, 4);
    // service-endpoint traffic (VXLAN) reaches public endpoints too
    expect(vxlan_frame("198.18.0.5", 5001, tcp_frame("198.19.1.7", "203.0.113.11", 443)),
           VW_PASS_DEFAULT_ALLOW, 1, -1, 5001);
}

// A vault in audit mode passes what it would drop, under the audit reason;
// what it admits anyway, and the other vaults, are judged as before.
TEST_F(ClassifierTest, AuditMode) {
    rules::CompiledRuleSet set = set_;
    set.vaults[0].audit = true;
    set.vaults[3].audit = true;
    Classifier c(set);
    auto judge = [&](const Bytes& f) { return c.classify(f.data(), f.size()); };
    auto v = judge(tcp_frame("198.51.100.1", "203.0.113.10", 443, SYN));
    EXPECT_EQ(v.reason, VW_AUDIT_NO_RULE);
    EXPECT_TRUE(v.pass);
    EXPECT_EQ(v.vault, 0);
    EXPECT_TRUE(v.admission);  // the gate must see it was audited
    EXPECT_EQ(judge(tcp_frame("192.0.2.5", "203.0.113.13", 443)).reason, VW_AUDIT_PUBLIC_ACCESS_DISABLED);
    EXPECT_EQ(judge(tcp_frame("192.0.2.5", "203.0.113.10", 443)).reason, VW_PASS_IP_RULE);
    EXPECT_EQ(judge(tcp_frame("198.51.100.1", "203.0.113.12", 443)).reason, VW_PASS_TRUSTED_CANDIDATE);
    EXPECT_EQ(judge(tcp_frame("198.51.100.1", "198.19.1.100", 443)).reason, VW_DROP_NOT_PRIVATE_LINK);
    // The flow as the classifier read it, for explain and whatif.
    EXPECT_TRUE(v.flow.ipv4);
    EXPECT_EQ(v.flow.src, ip("198.51.100.1"));
    EXPECT_EQ(v.flow.dst, ip("203.0.113.10"));
    EXPECT_EQ(v.flow.dport, 443);
    EXPECT_EQ(v.flow.proto, TCP);
}

// ---------------------------------------------------------------- 8. admissions

TEST_F(ClassifierTest, Admissions) {
    EXPECT_TRUE(run(tcp_frame("192.0.2.5", "203.0.113.10", 443, SYN)).admission);
    EXPECT_FALSE(run(tcp_frame("192.0.2.5", "203.0.113.10", 443, SYN | ACK)).admission);
    EXPECT_FALSE(run(tcp_frame("192.0.2.5", "203.0.113.10", 443, ACK)).admission);
    EXPECT_FALSE(run(tcp_frame("198.51.100.1", "203.0.113.10", 443, SYN)).admission);  // dropped
    EXPECT_FALSE(run(tcp_frame("192.0.2.5", "203.0.113.99", 443, SYN)).admission);  // unprotected
    EXPECT_TRUE(run(tcp_frame("198.51.100.1", "203.0.113.12", 443, SYN)).admission);  // trusted cand.
    EXPECT_TRUE(run(vxlan_frame("198.18.0.5", 5001, tcp_frame("198.19.1.7", "198.19.1.100", 443, SYN)))
                    .admission);
    // UDP never records an admission
    rules::CompiledRuleSet set = set_;
    set.endpoints.push_back({1, 0, ip("203.0.113.11"), 53, rules::Proto::udp, false});
    Classifier c(set);
    auto u = udp_frame("198.51.100.1", "203.0.113.11", 53);
    auto v = c.classify(u.data(), u.size());
    EXPECT_EQ(v.reason, VW_PASS_DEFAULT_ALLOW);
    EXPECT_FALSE(v.admission);
}

// ---------------------------------------------------------------- scale + LPM cross-check

TEST(ClassifierScale, ManyVaultsManyPrefixes) {
    std::mt19937 rng(42);
    rules::CompiledRuleSet set;
    set.vteps.push_back({ip("198.18.0.0"), 24});
    const int vaults = 300;
    for (int v = 0; v < vaults; ++v) {
        set.vaults.push_back({"v" + std::to_string(v), false, false, v % 3 == 0});
        set.endpoints.push_back({std::uint32_t(v), 0, ip("203.0.113.0") + std::uint32_t(v % 250),
                                 std::uint16_t(443 + v / 250), rules::Proto::tcp, false});
    }
    // ~40k prefixes from a small address pool so that they nest and overlap.
    for (int i = 0; i < 40000; ++i) {
        std::uint8_t len = static_cast<std::uint8_t>(8 + rng() % 25);
        std::uint32_t a = (ip("192.0.0.0") | (rng() & 0x00ffffff)) & rules::Ipv4Prefix::mask(len);
        std::uint32_t vni = rng() % 4 == 0 ? 5000 + rng() % 3 : 0;
        set.rules.push_back({std::uint32_t(rng() % vaults), vni, {a, len}, "r"});
    }
    Classifier c(set);

    // LPM cross-check against a linear scan (first-longest wins).
    for (int i = 0; i < 3000; ++i) {
        std::uint32_t vault = rng() % vaults, vni = rng() % 2 ? 0 : 5000 + rng() % 3;
        std::uint32_t src = ip("192.0.0.0") | (rng() & 0x00ffffff);
        int best = -1;
        for (std::size_t r = 0; r < set.rules.size(); ++r) {
            const auto& rule = set.rules[r];
            if (rule.vault == vault && rule.vni == vni && rule.prefix.contains(src) &&
                (best < 0 || rule.prefix.len > set.rules[best].prefix.len))
                best = static_cast<int>(r);
        }
        ASSERT_EQ(c.match_rule(vault, vni, src), best);
    }

    // 200,000 packets
    std::vector<Bytes> frames;
    for (int i = 0; i < 1000; ++i) {
        auto l4 = tcp(1, std::uint16_t(443 + rng() % 2), SYN);
        auto ipb = ipv4(ip("192.0.0.0") | (rng() & 0x00ffffff), ip("203.0.113.0") + rng() % 250,
                        TCP, l4.size());
        frames.push_back(cat({eth(0x0800), ipb, l4}));
    }
    auto t0 = std::chrono::steady_clock::now();
    std::size_t passed = 0;
    for (int i = 0; i < 200000; ++i) {
        const auto& f = frames[i % frames.size()];
        passed += c.classify(f.data(), f.size()).pass;
    }
    auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_GT(passed, 0u);
    EXPECT_LT(secs, 10.0) << "200k packets took " << secs << " s";
    std::printf("200k packets against %zu rules: %.3f s\n", set.rules.size(), secs);
}
