// Packet builder tests: every layer's offsets, lengths and checksums, checked
// against hand-computed bytes and known-answer vectors rather than against
// the builder's own helpers where possible.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "packet/packet.hpp"

namespace vaultwall::packet {
namespace {

constexpr std::uint32_t ip(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
    return std::uint32_t{a} << 24 | std::uint32_t{b} << 16 | std::uint32_t{c} << 8 | d;
}

std::uint16_t rd16(const Bytes& b, std::size_t at) {
    return static_cast<std::uint16_t>(b.at(at) << 8 | b.at(at + 1));
}
std::uint32_t rd32(const Bytes& b, std::size_t at) {
    return std::uint32_t{rd16(b, at)} << 16 | rd16(b, at + 2);
}

// Independent one's-complement sum (straightforward, no folding tricks).
std::uint16_t ones_sum(const Bytes& b, std::size_t from, std::size_t len, std::uint32_t init = 0) {
    std::uint32_t s = init;
    for (std::size_t i = 0; i < len; i += 2) {
        std::uint16_t w = static_cast<std::uint16_t>(b.at(from + i) << 8);
        if (i + 1 < len) w |= b.at(from + i + 1);
        s += w;
        s = (s & 0xffff) + (s >> 16);
    }
    return static_cast<std::uint16_t>(s);
}

bool ipv4_header_ok(const Bytes& b, std::size_t l3) {
    const std::size_t hlen = (b.at(l3) & 0x0f) * 4u;
    return ones_sum(b, l3, hlen) == 0xffff;
}

bool l4_checksum_ok(const Bytes& b, std::size_t l3, std::size_t l4, std::uint8_t proto) {
    const std::size_t len = rd16(b, l3 + 2) - (l4 - l3);
    std::uint32_t pseudo = rd16(b, l3 + 12) + rd16(b, l3 + 14) + rd16(b, l3 + 16) +
                           rd16(b, l3 + 18) + proto + static_cast<std::uint32_t>(len);
    pseudo = (pseudo & 0xffff) + (pseudo >> 16);
    return ones_sum(b, l4, len, pseudo) == 0xffff;
}

const Flow kFlow{.src = ip(192, 0, 2, 9), .dst = ip(203, 0, 113, 10), .sport = 40000, .dport = 443};

TEST(Checksum, KnownAnswer) {
    // Classic RFC 1071-style example header (checksum field zeroed): 0xb861.
    const Bytes hdr{0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                    0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
    EXPECT_EQ(inet_checksum(hdr), 0xb861);
    // Odd length: last byte padded with zero.
    const Bytes odd{0x01, 0x02, 0x03};
    EXPECT_EQ(inet_checksum(odd), static_cast<std::uint16_t>(~(0x0102 + 0x0300)));
}

TEST(Ethernet, PlainHeader) {
    Bytes out;
    const Bytes payload{0xaa, 0xbb};
    append_ethernet(out, EthernetSpec{.dst = kBroadcastMac, .src = kDefaultSrcMac, .vlans = {},
                                      .ethertype = kEtherArp},
                    payload);
    ASSERT_EQ(out.size(), 16u) << hexdump(out);
    EXPECT_EQ(Bytes(out.begin(), out.begin() + 6), Bytes(kBroadcastMac.begin(), kBroadcastMac.end()));
    EXPECT_EQ(Bytes(out.begin() + 6, out.begin() + 12), Bytes(kDefaultSrcMac.begin(), kDefaultSrcMac.end()));
    EXPECT_EQ(rd16(out, 12), 0x0806);
    EXPECT_EQ(out[14], 0xaa);
    EXPECT_EQ(out[15], 0xbb);
}

TEST(Ethernet, SingleVlanTag) {
    const Bytes f = FrameSpec::tcp_flow(kFlow).vlan(100).build();
    EXPECT_EQ(rd16(f, 12), 0x8100) << hexdump(f);
    EXPECT_EQ(rd16(f, 14), 100);
    EXPECT_EQ(rd16(f, 16), 0x0800);
    EXPECT_EQ(f[18] >> 4, 4);
    EXPECT_EQ(FrameSpec::tcp_flow(kFlow).vlan(100).l3_offset(), 18u);
}

TEST(Ethernet, QinQTags) {
    FrameSpec s = FrameSpec::tcp_flow(kFlow).qinq(300, 42);
    const Bytes f = s.build();
    EXPECT_EQ(rd16(f, 12), 0x88a8) << hexdump(f);
    EXPECT_EQ(rd16(f, 14), 300);
    EXPECT_EQ(rd16(f, 16), 0x8100);
    EXPECT_EQ(rd16(f, 18), 42);
    EXPECT_EQ(rd16(f, 20), 0x0800);
    EXPECT_EQ(s.l3_offset(), 22u);
    EXPECT_EQ(f[22], 0x45);
}

TEST(Ethernet, VlanTciFields) {
    VlanTag t{.tpid = kEtherVlan, .vid = 0xabc, .pcp = 5, .dei = true};
    EXPECT_EQ(t.tci(), 0xbabc);
    VlanTag big{.tpid = kEtherVlan, .vid = 0xffff, .pcp = 0, .dei = false};
    EXPECT_EQ(big.tci(), 0x0fff);  // vid masked to 12 bits
}

TEST(Ethernet, ThreeTagsAreWrittenToo) {
    FrameSpec s = FrameSpec::tcp_flow(kFlow).qinq(1, 2).vlan(3);
    const Bytes f = s.build();
    EXPECT_EQ(rd16(f, 20), 0x8100);
    EXPECT_EQ(rd16(f, 22), 3);
    EXPECT_EQ(rd16(f, 24), 0x0800);
}

TEST(Arp, RequestFrame) {
    const Bytes f = arp_frame(ip(198, 18, 0, 1), ip(198, 18, 0, 2));
    ASSERT_EQ(f.size(), kEthHeaderLen + kArpLen) << hexdump(f);
    EXPECT_EQ(rd16(f, 12), 0x0806);
    EXPECT_EQ(rd16(f, 14), 1);       // htype
    EXPECT_EQ(rd16(f, 16), 0x0800);  // ptype
    EXPECT_EQ(f[18], 6);
    EXPECT_EQ(f[19], 4);
    EXPECT_EQ(rd16(f, 20), 1);  // request
    EXPECT_EQ(rd32(f, 28), ip(198, 18, 0, 1));
    EXPECT_EQ(rd32(f, 38), ip(198, 18, 0, 2));
}

TEST(Ipv4, HeaderFieldsAndChecksum) {
    FrameSpec s = FrameSpec::tcp_flow(kFlow);
    s.ip.id = 0x1234;
    s.ip.ttl = 17;
    s.ip.df = true;
    const Bytes f = s.build();
    ASSERT_EQ(f.size(), 14u + 20u + 20u) << hexdump(f);
    EXPECT_EQ(f[14], 0x45);
    EXPECT_EQ(rd16(f, 16), 40);      // tot_len
    EXPECT_EQ(rd16(f, 18), 0x1234);  // id
    EXPECT_EQ(rd16(f, 20), 0x4000);  // DF
    EXPECT_EQ(f[22], 17);
    EXPECT_EQ(f[23], kProtoTcp);
    EXPECT_EQ(rd32(f, 26), kFlow.src);
    EXPECT_EQ(rd32(f, 30), kFlow.dst);
    EXPECT_TRUE(ipv4_header_ok(f, 14)) << hexdump(f);
}

TEST(Ipv4, OptionsArePaddedAndCounted) {
    FrameSpec s = FrameSpec::udp_flow(kFlow).ip_options({0x01, 0x01, 0x07});  // NOP NOP + 1 byte
    const Bytes f = s.build();
    EXPECT_EQ(ipv4_header_len(s.ip), 24u);
    EXPECT_EQ(s.l4_offset(), 14u + 24u);
    EXPECT_EQ(f[14], 0x46) << hexdump(f);  // ihl 6
    EXPECT_EQ(f[34], 0x01);
    EXPECT_EQ(f[36], 0x07);
    EXPECT_EQ(f[37], 0x00);  // EOL padding
    EXPECT_EQ(rd16(f, 16), 24 + 8);
    EXPECT_EQ(rd16(f, 38), kFlow.sport);  // UDP starts after the options
    EXPECT_TRUE(ipv4_header_ok(f, 14));
    EXPECT_TRUE(l4_checksum_ok(f, 14, 38, kProtoUdp));
}

TEST(Ipv4, MaximumOptions) {
    FrameSpec s = FrameSpec::tcp_flow(kFlow).ip_options(Bytes(40, 0x01));
    const Bytes f = s.build();
    EXPECT_EQ(f[14], 0x4f);
    EXPECT_EQ(s.l4_offset(), 14u + 60u);
    EXPECT_TRUE(ipv4_header_ok(f, 14));
    EXPECT_TRUE(l4_checksum_ok(f, 14, 74, kProtoTcp));
}

TEST(Ipv4, MalformedOverridesKeepTheLayoutAndAChecksumOverWhatIsWritten) {
    FrameSpec s = FrameSpec::tcp_flow(kFlow);
    s.ip.version = 6;
    s.ip.ihl = 4;
    s.ip.tot_len = 1500;
    const Bytes f = s.build();
    ASSERT_EQ(f.size(), 54u);  // still 20 + 20 bytes after Ethernet
    EXPECT_EQ(f[14], 0x64);
    EXPECT_EQ(rd16(f, 16), 1500);
    EXPECT_EQ(ones_sum(f, 14, 20), 0xffff);  // checksum over the real 20 bytes

    FrameSpec bad = FrameSpec::tcp_flow(kFlow);
    bad.ip.checksum = 0xdead;
    EXPECT_EQ(rd16(bad.build(), 24), 0xdead);
}

TEST(Ipv4, Fragments) {
    // First fragment: MF, offset 0, carries the L4 header.
    FrameSpec first = FrameSpec::udp_flow(kFlow).fragment(true, 0).with_payload(Bytes(16, 0x55));
    const Bytes a = first.build();
    EXPECT_EQ(rd16(a, 20), 0x2000);
    EXPECT_EQ(rd16(a, 34), kFlow.sport);
    EXPECT_EQ(rd16(a, 16), 20 + 8 + 16);
    EXPECT_TRUE(first.ip.is_fragment());

    // Later fragment: offset in 8-byte units, no L4 header, payload right after IPv4.
    FrameSpec later = FrameSpec::udp_flow(kFlow).fragment(false, 3).with_payload({0xde, 0xad});
    const Bytes b = later.build();
    EXPECT_EQ(rd16(b, 20), 3);
    ASSERT_EQ(b.size(), 14u + 20u + 2u) << hexdump(b);
    EXPECT_EQ(b[34], 0xde);
    EXPECT_TRUE(ipv4_header_ok(b, 14));

    FrameSpec both = FrameSpec::tcp_flow(kFlow).fragment(true, 0x1fff);
    both.ip.df = true;
    EXPECT_EQ(rd16(both.build(), 20), 0x7fff);
}

TEST(Tcp, SynHeader) {
    const Bytes payload{'h', 'i', '!'};
    const Bytes f = tcp_frame(kFlow, tcp_flags::syn, payload);
    ASSERT_EQ(f.size(), 14u + 20u + 20u + 3u) << hexdump(f);
    EXPECT_EQ(rd16(f, 34), 40000);
    EXPECT_EQ(rd16(f, 36), 443);
    EXPECT_EQ(rd32(f, 38), 1u);   // seq
    EXPECT_EQ(rd32(f, 42), 0u);   // ack
    EXPECT_EQ(f[46], 0x50);       // data offset 5
    EXPECT_EQ(f[47], 0x02);       // SYN only
    EXPECT_EQ(rd16(f, 48), 65535);
    EXPECT_EQ(f[54], 'h');
    EXPECT_EQ(rd16(f, 16), 43);
    EXPECT_TRUE(ipv4_header_ok(f, 14));
    EXPECT_TRUE(l4_checksum_ok(f, 14, 34, kProtoTcp)) << hexdump(f);
}

TEST(Tcp, SynAckAndOptions) {
    FrameSpec s = FrameSpec::tcp_flow(kFlow, tcp_flags::syn | tcp_flags::ack);
    s.tcp.options = {0x02, 0x04, 0x05, 0xb4, 0x01};  // MSS 1460, NOP -> padded to 8
    const Bytes f = s.build();
    EXPECT_EQ(f[47], 0x12);
    EXPECT_EQ(f[46], 0x70);  // data offset 7
    EXPECT_EQ(rd32(f, 42), 1u);
    EXPECT_EQ(f.size(), 14u + 20u + 28u);
    EXPECT_TRUE(l4_checksum_ok(f, 14, 34, kProtoTcp)) << hexdump(f);

    s.tcp.data_offset = 15;  // lies
    EXPECT_EQ(s.build()[46], 0xf0);
}

TEST(Udp, HeaderAndChecksum) {
    const Bytes payload{1, 2, 3, 4, 5};  // odd length exercises checksum padding
    const Bytes f = udp_frame(kFlow, payload);
    ASSERT_EQ(f.size(), 14u + 20u + 8u + 5u) << hexdump(f);
    EXPECT_EQ(f[23], kProtoUdp);
    EXPECT_EQ(rd16(f, 34), 40000);
    EXPECT_EQ(rd16(f, 36), 443);
    EXPECT_EQ(rd16(f, 38), 13);
    EXPECT_NE(rd16(f, 40), 0);
    EXPECT_TRUE(l4_checksum_ok(f, 14, 34, kProtoUdp)) << hexdump(f);

    FrameSpec nocsum = FrameSpec::udp_flow(kFlow);
    nocsum.udp.checksum = false;
    nocsum.udp.length = 3;
    const Bytes g = nocsum.build();
    EXPECT_EQ(rd16(g, 40), 0);
    EXPECT_EQ(rd16(g, 38), 3);
}

TEST(Icmp, EchoRequest) {
    FrameSpec s = FrameSpec::icmp_echo(kFlow.src, kFlow.dst).with_payload({9, 9, 9, 9});
    const Bytes f = s.build();
    ASSERT_EQ(f.size(), 14u + 20u + 8u + 4u);
    EXPECT_EQ(f[23], kProtoIcmp);
    EXPECT_EQ(f[34], 8);
    EXPECT_EQ(ones_sum(f, 34, 12), 0xffff);
}

TEST(Other, OtherProtocolAndEtherType) {
    FrameSpec gre = FrameSpec::tcp_flow(kFlow).with_payload({1, 2, 3, 4});
    gre.ip.protocol = 47;
    const Bytes f = gre.build();
    EXPECT_EQ(f.size(), 14u + 20u + 4u);
    EXPECT_EQ(f[23], 47);

    // An EtherType the builder has no layer for: just the payload.
    const Bytes other = FrameSpec{}.ethertype(0x88b5).with_payload(Bytes(40, 0)).build();
    EXPECT_EQ(other.size(), 54u);
    EXPECT_EQ(rd16(other, 12), 0x88b5);

    FrameSpec raw = FrameSpec::tcp_flow(kFlow).with_payload({7, 7});
    raw.l4_header = false;  // e.g. a TCP datagram too short for its header
    EXPECT_EQ(raw.build().size(), 14u + 20u + 2u);
}

TEST(Frame, PaddingAfterDatagram) {
    FrameSpec s = FrameSpec::udp_flow(kFlow);
    s.pad_to = 60;
    const Bytes f = s.build();
    ASSERT_EQ(f.size(), 60u);
    EXPECT_EQ(rd16(f, 16), 28);  // tot_len excludes the padding
    EXPECT_EQ(f[59], 0);
}

TEST(Vxlan, HeaderEncoding) {
    Bytes out;
    append_vxlan(out, VxlanHeader{.vni = 0xabcdef, .i_flag = true, .extra_flags = 0});
    EXPECT_EQ(out, (Bytes{0x08, 0, 0, 0, 0xab, 0xcd, 0xef, 0}));
    out.clear();
    append_vxlan(out, VxlanHeader{.vni = 0x1abcdef, .i_flag = false, .extra_flags = 0x80});
    EXPECT_EQ(out, (Bytes{0x80, 0, 0, 0, 0xab, 0xcd, 0xef, 0}));  // VNI masked to 24 bits
}

TEST(Vxlan, EncapsulatesTcp) {
    const Flow inner{.src = ip(198, 19, 1, 5), .dst = ip(198, 19, 1, 100), .sport = 5555, .dport = 443};
    const Bytes in = tcp_frame(inner);
    const Bytes f = vxlan_frame(ip(198, 18, 0, 7), ip(198, 18, 0, 1), 5001, in);
    const VxlanSpec spec = VxlanSpec::between(ip(198, 18, 0, 7), ip(198, 18, 0, 1), 5001);
    ASSERT_EQ(vxlan_inner_offset(spec), 14u + 20u + 8u + 8u);
    ASSERT_EQ(f.size(), 50u + in.size()) << hexdump(f);
    EXPECT_EQ(rd16(f, 12), 0x0800);
    EXPECT_EQ(f[23], kProtoUdp);
    EXPECT_EQ(rd32(f, 26), ip(198, 18, 0, 7));
    EXPECT_EQ(rd32(f, 30), ip(198, 18, 0, 1));
    EXPECT_EQ(rd16(f, 16), 20 + 8 + 8 + in.size());
    EXPECT_TRUE(ipv4_header_ok(f, 14));
    EXPECT_EQ(rd16(f, 36), 4789);
    EXPECT_EQ(rd16(f, 38), 8 + 8 + in.size());
    EXPECT_EQ(rd16(f, 40), 0);  // VXLAN: UDP checksum 0 by default
    EXPECT_EQ(f[42], 0x08);     // I flag
    EXPECT_EQ(rd32(f, 46) >> 8, 5001u);
    EXPECT_EQ(Bytes(f.begin() + 50, f.end()), in);
    EXPECT_TRUE(ipv4_header_ok(f, 50 + 14));
}

TEST(Vxlan, CustomPortFlagsOuterTagsAndArpInner) {
    VxlanSpec spec = VxlanSpec::between(ip(198, 18, 0, 7), ip(198, 18, 0, 1), 0xffffff, 8472);
    spec.vxlan.i_flag = false;
    spec.eth.vlans = {VlanTag{.tpid = kEtherQinQ, .vid = 10, .pcp = 0, .dei = false}};
    spec.udp.checksum = true;
    const Bytes in = arp_frame(ip(198, 19, 1, 5), ip(198, 19, 1, 1));
    const Bytes f = vxlan_encapsulate(in, spec);
    ASSERT_EQ(vxlan_inner_offset(spec), 54u);
    EXPECT_EQ(rd16(f, 12), 0x88a8);
    EXPECT_EQ(rd16(f, 16), 0x0800);
    EXPECT_EQ(rd16(f, 40), 8472);
    EXPECT_TRUE(l4_checksum_ok(f, 18, 38, kProtoUdp)) << hexdump(f);
    EXPECT_EQ(f[46], 0x00);  // I flag clear
    EXPECT_EQ(rd32(f, 50) >> 8, 0xffffffu);
    EXPECT_EQ(rd16(f, 54 + 12), 0x0806);
}

TEST(Vxlan, OuterFragmentAndInnerFragment) {
    FrameSpec inner = FrameSpec::tcp_flow({.src = ip(198, 19, 1, 5), .dst = ip(198, 19, 1, 100),
                                           .sport = 1, .dport = 443})
                          .fragment(false, 10)
                          .with_payload(Bytes(8, 0xee));
    VxlanSpec spec = VxlanSpec::between(ip(198, 18, 0, 7), ip(198, 18, 0, 1), 7);
    spec.ip.mf = true;
    const Bytes f = vxlan_encapsulate(inner.build(), spec);
    EXPECT_EQ(rd16(f, 20), 0x2000);
    EXPECT_EQ(rd16(f, 36), 4789);  // first fragment still has the UDP header
    EXPECT_EQ(rd16(f, 50 + 20), 10);
    EXPECT_EQ(f.size(), 50u + 14u + 20u + 8u);
}

TEST(Vxlan, TruncatedInnerFrame) {
    const Bytes in{1, 2, 3};  // no room for an inner Ethernet header
    const Bytes f = vxlan_frame(ip(198, 18, 0, 7), ip(198, 18, 0, 1), 1, in);
    EXPECT_EQ(f.size(), 53u);
    EXPECT_EQ(rd16(f, 38), 19);
}

TEST(Hexdump, Format) {
    Bytes b;
    for (int i = 0; i < 18; ++i) b.push_back(static_cast<std::uint8_t>(0x40 + i));
    const std::string d = hexdump(b);
    EXPECT_EQ(d,
              "0000  40 41 42 43 44 45 46 47  48 49 4a 4b 4c 4d 4e 4f  |@ABCDEFGHIJKLMNO|\n"
              "0010  50 51" + std::string(44, ' ') + " |PQ|\n");  // ASCII column aligned
    EXPECT_EQ(hexdump(Bytes{}), "(empty)\n");
    EXPECT_EQ(hexdump(Bytes{0x00, 0x7f}).find("|..|"), 56u);  // non-printables as dots
}

TEST(Layers, ManualCompositionMatchesBuild) {
    Ipv4Spec ipspec;
    ipspec.src = kFlow.src;
    ipspec.dst = kFlow.dst;
    ipspec.protocol = kProtoTcp;
    TcpSpec tcp;
    tcp.sport = kFlow.sport;
    tcp.dport = kFlow.dport;
    Bytes l4, l3, frame;
    append_tcp(l4, tcp, ipspec.src, ipspec.dst);
    append_ipv4(l3, ipspec, l4);
    append_ethernet(frame, EthernetSpec{}, l3);
    EXPECT_EQ(frame, tcp_frame(kFlow));
}

// ---------------------------------------------------------------------- IPv6

// 2001:db8::1 -> 2001:db8::10, written out byte by byte.
constexpr Ipv6Addr kSrc6{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01};
constexpr Ipv6Addr kDst6{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10};
const Flow6 kFlow6{kSrc6, kDst6, 40000, 443};

// The L4 checksum over an independently summed IPv6 pseudo-header.
bool l4_checksum6_ok(const Bytes& b, std::size_t l3, std::size_t l4, std::uint8_t proto) {
    const std::size_t len = b.size() - l4;
    std::uint32_t pseudo = ones_sum(b, l3 + 8, 32);  // src and dst
    pseudo += static_cast<std::uint32_t>(len) + proto;
    pseudo = (pseudo & 0xffff) + (pseudo >> 16);
    return ones_sum(b, l4, len, pseudo) == 0xffff;
}

TEST(Ipv6, HeaderFieldsAndTcpChecksum) {
    FrameSpec s = FrameSpec::tcp_flow6(kFlow6);
    s.ip6.traffic_class = 0xab;
    s.ip6.flow_label = 0x12345;
    const Bytes f = s.build();
    ASSERT_EQ(f.size(), 14u + 40u + 20u) << hexdump(f);
    EXPECT_EQ(rd16(f, 12), 0x86dd);
    EXPECT_EQ(rd32(f, 14), 0x6ab12345u);  // version 6, class 0xab, flow label
    EXPECT_EQ(rd16(f, 18), 20);           // payload length
    EXPECT_EQ(f[20], kProtoTcp);          // next header
    EXPECT_EQ(f[21], 64);                 // hop limit
    EXPECT_EQ(Ipv6Addr(), Ipv6Addr{});
    EXPECT_TRUE(std::equal(kSrc6.begin(), kSrc6.end(), f.begin() + 22));
    EXPECT_TRUE(std::equal(kDst6.begin(), kDst6.end(), f.begin() + 38));
    EXPECT_EQ(rd16(f, 54), 40000);
    EXPECT_EQ(rd16(f, 56), 443);
    EXPECT_EQ(f[67], tcp_flags::syn);
    EXPECT_TRUE(l4_checksum6_ok(f, 14, 54, kProtoTcp)) << hexdump(f);
    EXPECT_EQ(s.l4_offset(), 54u);
}

TEST(Ipv6, UdpAndIcmp6Checksums) {
    const Bytes u = udp_frame6(kFlow6, Bytes{1, 2, 3});
    EXPECT_EQ(u[20], kProtoUdp);
    EXPECT_EQ(rd16(u, 58), 11);
    EXPECT_TRUE(l4_checksum6_ok(u, 14, 54, kProtoUdp)) << hexdump(u);
    const Bytes e = FrameSpec::icmp6_echo(kSrc6, kDst6).build();
    EXPECT_EQ(e[20], kProtoIcmp6);
    EXPECT_EQ(e[54], 128);
    EXPECT_TRUE(l4_checksum6_ok(e, 14, 54, kProtoIcmp6)) << hexdump(e);
}

TEST(Ipv6, ExtensionHeadersAreChainedAndSizedByType) {
    FrameSpec s = FrameSpec::udp_flow6(kFlow6);
    s.ext6(Ipv6ExtHeader::options(kProtoHopByHop, 0))
        .ext6(Ipv6ExtHeader::options(kProtoRouting, 2))
        .ext6(Ipv6ExtHeader::fragment(0, true, 0xdeadbeef))
        .ext6(Ipv6ExtHeader::options(kProtoDstOpts, 1));
    const Bytes f = s.build();
    const std::size_t l3 = 14, l4 = l3 + 40 + 8 + 24 + 8 + 16;
    ASSERT_EQ(f.size(), l4 + 8) << hexdump(f);
    EXPECT_EQ(rd16(f, l3 + 4), 8 + 24 + 8 + 16 + 8);  // payload length covers the chain
    EXPECT_EQ(f[l3 + 6], kProtoHopByHop);
    EXPECT_EQ(f[54], kProtoRouting);  // hop-by-hop: next, hdr_ext_len 0
    EXPECT_EQ(f[55], 0);
    EXPECT_EQ(f[62], kProtoFragment);  // routing, 24 bytes
    EXPECT_EQ(f[63], 2);
    EXPECT_EQ(f[86], kProtoDstOpts);  // fragment: offset 0, M set, id
    EXPECT_EQ(rd16(f, 88), 0x0001);
    EXPECT_EQ(rd32(f, 90), 0xdeadbeefu);
    EXPECT_EQ(f[94], kProtoUdp);  // destination options, 16 bytes
    EXPECT_EQ(f[95], 1);
    EXPECT_EQ(rd16(f, l4 + 2), 443);
    EXPECT_EQ(s.l4_offset(), l4);
    EXPECT_TRUE(l4_checksum6_ok(f, l3, l4, kProtoUdp)) << hexdump(f);
}

TEST(Ipv6, NonFirstFragmentHasNoL4HeaderAndOverridesLie) {
    FrameSpec s = FrameSpec::tcp_flow6(kFlow6).with_payload(Bytes(16, 0xee));
    s.ext6(Ipv6ExtHeader::fragment(3, false));
    const Bytes f = s.build();
    ASSERT_EQ(f.size(), 14u + 40u + 8u + 16u);
    EXPECT_EQ(rd16(f, 56), 3 << 3);  // offset 3, M clear
    EXPECT_EQ(f[62], 0xee);
    s.ip6.version = 4;
    s.ip6.payload_len = 999;
    s.ip6.ext[0].hdr_ext_len = 7;
    const Bytes g = s.build();
    EXPECT_EQ(g[14] >> 4, 4);
    EXPECT_EQ(rd16(g, 18), 999);
    EXPECT_EQ(g[55], 7);
    EXPECT_EQ(g.size(), f.size());
}

TEST(Ipv6, VxlanOverAnIpv6Underlay) {
    const Bytes inner = tcp_frame6(kFlow6);
    const Bytes f = vxlan_frame6(kSrc6, kDst6, 5001, inner);
    const auto spec = VxlanSpec::between6(kSrc6, kDst6, 5001);
    ASSERT_EQ(vxlan_inner_offset(spec), 14u + 40u + 8u + 8u);
    ASSERT_EQ(f.size(), 14u + 40u + 8u + 8u + inner.size());
    EXPECT_EQ(rd16(f, 12), 0x86dd);
    EXPECT_EQ(f[20], kProtoUdp);
    EXPECT_EQ(rd16(f, 56), kVxlanPort);
    EXPECT_EQ(f[62], kVxlanFlagI);
    EXPECT_EQ(rd32(f, 66) >> 8, 5001u);
    EXPECT_TRUE(std::equal(inner.begin(), inner.end(), f.begin() + 70));
    // Inner IPv6 over an IPv4 underlay.
    const Bytes g = vxlan_frame(ip(198, 18, 0, 5), ip(198, 18, 0, 1), 5001, inner);
    EXPECT_EQ(rd16(g, 12), 0x0800);
    EXPECT_EQ(rd16(g, 50 + 12), 0x86dd);
}

}  // namespace
}  // namespace vaultwall::packet
