// Packet builder: crafts Ethernet frames byte by byte for tests, `vaultwallctl
// explain` and benchmarks. It writes whatever it is told, including malformed
// headers (wrong version, lying ihl/tot_len, fragments, missing VXLAN I flag),
// so the datapath's error paths can be exercised.
//
// Conventions: IPv4 addresses are uint32 in host byte order (as returned by
// rules::parse_ipv4); IPv6 addresses are 16 bytes in network order (the
// same type as rules::Ipv6Addr, as returned by rules::parse_ipv6); ports and
// other numeric fields in host order; the builder writes everything in
// network byte order.
//
// Layout: one function per layer, each appending its header followed by the
// payload it is given (the already-built upper layers), so frames are built
// from the inside out:
//
//     Bytes l4, l3, frame;
//     append_tcp(l4, tcp, ip.src, ip.dst, data);
//     append_ipv4(l3, ip, l4);
//     append_ethernet(frame, eth, l3);
//
// FrameSpec / build() do the same from one aggregate, and tcp_frame(),
// udp_frame(), arp_frame(), vxlan_frame() cover the common cases in one call.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace vaultwall::packet {

using Bytes = std::vector<std::uint8_t>;
using ByteView = std::span<const std::uint8_t>;
using Mac = std::array<std::uint8_t, 6>;
using Ipv6Addr = std::array<std::uint8_t, 16>;  // network byte order

// EtherTypes / TPIDs.
inline constexpr std::uint16_t kEtherIpv4 = 0x0800;
inline constexpr std::uint16_t kEtherArp = 0x0806;
inline constexpr std::uint16_t kEtherIpv6 = 0x86dd;
inline constexpr std::uint16_t kEtherVlan = 0x8100;  // 802.1Q (inner / single tag)
inline constexpr std::uint16_t kEtherQinQ = 0x88a8;  // 802.1ad (outer tag)

// IPv4 protocol numbers.
inline constexpr std::uint8_t kProtoIcmp = 1;
inline constexpr std::uint8_t kProtoTcp = 6;
inline constexpr std::uint8_t kProtoUdp = 17;
// IPv6 next-header values: extension headers (RFC 8200 §4) and ICMPv6.
inline constexpr std::uint8_t kProtoHopByHop = 0;
inline constexpr std::uint8_t kProtoRouting = 43;
inline constexpr std::uint8_t kProtoFragment = 44;
inline constexpr std::uint8_t kProtoIcmp6 = 58;
inline constexpr std::uint8_t kProtoNoNext = 59;
inline constexpr std::uint8_t kProtoDstOpts = 60;

inline constexpr std::uint16_t kVxlanPort = 4789;
inline constexpr std::uint8_t kVxlanFlagI = 0x08;

// Header sizes (without options / tags).
inline constexpr std::size_t kEthHeaderLen = 14;
inline constexpr std::size_t kVlanTagLen = 4;
inline constexpr std::size_t kIpv4HeaderLen = 20;
inline constexpr std::size_t kIpv6HeaderLen = 40;
inline constexpr std::size_t kIpv6FragmentHeaderLen = 8;
inline constexpr std::size_t kTcpHeaderLen = 20;
inline constexpr std::size_t kUdpHeaderLen = 8;
inline constexpr std::size_t kIcmpHeaderLen = 8;
inline constexpr std::size_t kArpLen = 28;
inline constexpr std::size_t kVxlanHeaderLen = 8;

namespace tcp_flags {
inline constexpr std::uint8_t fin = 0x01;
inline constexpr std::uint8_t syn = 0x02;
inline constexpr std::uint8_t rst = 0x04;
inline constexpr std::uint8_t psh = 0x08;
inline constexpr std::uint8_t ack = 0x10;
inline constexpr std::uint8_t urg = 0x20;
}  // namespace tcp_flags

// Locally administered defaults.
inline constexpr Mac kDefaultSrcMac{0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
inline constexpr Mac kDefaultDstMac{0x02, 0x00, 0x00, 0x00, 0x00, 0x02};
inline constexpr Mac kBroadcastMac{0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

// ---------------------------------------------------------------- layer specs

struct VlanTag {
    std::uint16_t tpid = kEtherVlan;  // 0x8100, or 0x88a8 for an outer S-tag
    std::uint16_t vid = 0;            // 12 bits
    std::uint8_t pcp = 0;             // 3 bits
    bool dei = false;
    std::uint16_t tci() const {
        return static_cast<std::uint16_t>((pcp & 0x7) << 13 | (dei ? 0x1000 : 0) | (vid & 0x0fff));
    }
};

struct EthernetSpec {
    Mac dst = kDefaultDstMac;
    Mac src = kDefaultSrcMac;
    std::vector<VlanTag> vlans;       // outermost first; any number is written
    std::uint16_t ethertype = kEtherIpv4;  // the type after the tags
};

struct Ipv4Spec {
    std::uint32_t src = 0;  // host byte order
    std::uint32_t dst = 0;
    std::uint8_t protocol = kProtoTcp;
    std::uint8_t tos = 0;
    std::uint8_t ttl = 64;
    std::uint16_t id = 0;
    bool df = false;
    bool mf = false;              // more fragments
    std::uint16_t frag_offset = 0;  // in 8-byte units (13 bits)
    Bytes options;                // zero-padded (EOL) to a multiple of 4; ihl grows
    // Overrides for malformed packets; unset = the correct value. The header
    // is always 20 + options bytes long whatever `ihl` claims, and the
    // checksum is computed over the bytes written, after the overrides.
    std::optional<std::uint8_t> version;   // 4 bits
    std::optional<std::uint8_t> ihl;       // 4 bits, in 32-bit words
    std::optional<std::uint16_t> tot_len;  // default: header + payload
    std::optional<std::uint16_t> checksum; // default: correct checksum

    bool is_fragment() const { return mf || frag_offset != 0; }
};

// One IPv6 extension header. Hop-by-hop, routing and destination options
// are (hdr_ext_len + 1) * 8 bytes: next header, hdr_ext_len, then `body`
// zero-padded to fill them (PadN is not needed: the datapath does not read
// options). A fragment header is 8 bytes: next header, reserved, offset/M,
// identification. The next-header byte is filled in by append_ipv6.
struct Ipv6ExtHeader {
    std::uint8_t type = kProtoDstOpts;
    std::uint8_t units = 0;        // options headers: hdr_ext_len (size (units + 1) * 8)
    Bytes body;                    // options headers: bytes after the first two
    std::uint16_t frag_offset = 0; // fragment: in 8-byte units (13 bits)
    bool more_fragments = false;   // fragment: M flag
    std::uint32_t frag_id = 0x1234;
    std::optional<std::uint8_t> hdr_ext_len;  // override for malformed headers (size stays)

    static Ipv6ExtHeader options(std::uint8_t type, std::uint8_t units = 0) {
        Ipv6ExtHeader h;
        h.type = type;
        h.units = units;
        return h;
    }
    static Ipv6ExtHeader fragment(std::uint16_t offset_units, bool more, std::uint32_t id = 0x1234) {
        Ipv6ExtHeader h;
        h.type = kProtoFragment;
        h.frag_offset = offset_units;
        h.more_fragments = more;
        h.frag_id = id;
        return h;
    }
    std::size_t size() const { return type == kProtoFragment ? kIpv6FragmentHeaderLen : (units + 1u) * 8u; }
};

struct Ipv6Spec {
    Ipv6Addr src{};
    Ipv6Addr dst{};
    std::uint8_t protocol = kProtoTcp;  // the upper layer, after the extension headers
    std::uint8_t traffic_class = 0;
    std::uint32_t flow_label = 0;      // 20 bits
    std::uint8_t hop_limit = 64;
    std::vector<Ipv6ExtHeader> ext;    // in order, outermost first
    std::optional<std::uint8_t> version;        // override (4 bits)
    std::optional<std::uint16_t> payload_len;   // override; default: ext headers + payload

    std::size_t ext_len() const;
    // The first fragment header, if any.
    const Ipv6ExtHeader* fragment_header() const;
    // Offset > 0 in the first fragment header: no upper-layer header follows.
    bool non_first_fragment() const {
        const auto* f = fragment_header();
        return f && f->frag_offset != 0;
    }
};

struct TcpSpec {
    std::uint16_t sport = 0;
    std::uint16_t dport = 0;
    std::uint32_t seq = 1;
    std::uint32_t ack_seq = 0;
    std::uint8_t flags = tcp_flags::syn;
    std::uint16_t window = 65535;
    std::uint16_t urg_ptr = 0;
    Bytes options;                          // zero-padded to a multiple of 4
    std::optional<std::uint8_t> data_offset;  // override, in 32-bit words
    bool checksum = true;                   // false: leave 0
};

struct UdpSpec {
    std::uint16_t sport = 0;
    std::uint16_t dport = 0;
    std::optional<std::uint16_t> length;  // override; default header + payload
    bool checksum = true;                 // false: 0 (no checksum, legal in IPv4)
};

struct IcmpSpec {
    std::uint8_t type = 8;  // echo request
    std::uint8_t code = 0;
    std::uint16_t id = 1;
    std::uint16_t seq = 1;
};

struct ArpSpec {
    std::uint16_t op = 1;  // 1 request, 2 reply
    Mac sha = kDefaultSrcMac;
    std::uint32_t spa = 0;
    Mac tha{};
    std::uint32_t tpa = 0;
};

struct VxlanHeader {
    std::uint32_t vni = 0;         // 24 bits
    bool i_flag = true;            // "VNI valid"; clear it for a malformed header
    std::uint8_t extra_flags = 0;  // other bits of the flags byte (reserved)
};

// ------------------------------------------------------------ layer functions
// Each appends its header, then `payload`, to `out`.

void append_ethernet(Bytes& out, const EthernetSpec& eth, ByteView payload = {});
// tot_len (unless overridden) covers the header and `payload`.
void append_ipv4(Bytes& out, const Ipv4Spec& ip, ByteView payload = {});
// src/dst feed the pseudo-header checksum.
void append_tcp(Bytes& out, const TcpSpec& tcp, std::uint32_t src, std::uint32_t dst,
                ByteView payload = {});
void append_udp(Bytes& out, const UdpSpec& udp, std::uint32_t src, std::uint32_t dst,
                ByteView payload = {});
void append_icmp(Bytes& out, const IcmpSpec& icmp, ByteView payload = {});
// IPv6 header and extension headers, then `payload` (the upper layer).
void append_ipv6(Bytes& out, const Ipv6Spec& ip, ByteView payload = {});
// The same upper layers with the IPv6 pseudo-header checksum.
void append_tcp6(Bytes& out, const TcpSpec& tcp, const Ipv6Addr& src, const Ipv6Addr& dst,
                 ByteView payload = {});
void append_udp6(Bytes& out, const UdpSpec& udp, const Ipv6Addr& src, const Ipv6Addr& dst,
                 ByteView payload = {});
void append_icmp6(Bytes& out, const IcmpSpec& icmp, const Ipv6Addr& src, const Ipv6Addr& dst,
                  ByteView payload = {});  // echo request is type 128
void append_arp(Bytes& out, const ArpSpec& arp);  // Ethernet/IPv4 ARP body, 28 bytes
void append_vxlan(Bytes& out, const VxlanHeader& vx, ByteView inner_frame = {});

// Header lengths as written (tags, options with padding).
std::size_t ethernet_header_len(const EthernetSpec& eth);
std::size_t ipv4_header_len(const Ipv4Spec& ip);
std::size_t ipv6_header_len(const Ipv6Spec& ip);  // 40 + extension headers
std::size_t tcp_header_len(const TcpSpec& tcp);

// Internet checksum (RFC 1071) of `data`, continuing from a partial sum.
std::uint16_t inet_checksum(ByteView data, std::uint32_t partial = 0);
// Sum of the TCP/UDP pseudo-header, to pass as `partial`.
std::uint32_t pseudo_header_sum(std::uint32_t src, std::uint32_t dst, std::uint8_t proto,
                                std::uint16_t l4_len);
std::uint32_t pseudo_header_sum6(const Ipv6Addr& src, const Ipv6Addr& dst, std::uint8_t proto,
                                 std::uint32_t l4_len);

// ---------------------------------------------------------------- whole frames

struct Flow {
    std::uint32_t src = 0;  // host byte order
    std::uint32_t dst = 0;
    std::uint16_t sport = 0;
    std::uint16_t dport = 0;
};

struct Flow6 {
    Ipv6Addr src{};
    Ipv6Addr dst{};
    std::uint16_t sport = 0;
    std::uint16_t dport = 0;
};

// A whole frame. build() writes:
//   eth.ethertype == IPv4: Ethernet / IPv4 / L4 chosen by ip.protocol (TCP,
//     UDP, ICMP; any other protocol: just the payload) / payload. The L4
//     header is left out (payload right after the IPv4 header) when
//     `l4_header` is false or the datagram is a non-first fragment
//     (frag_offset > 0).
//   eth.ethertype == IPv6: Ethernet / IPv6 with ip6.ext / L4 chosen by
//     ip6.protocol (TCP, UDP, ICMPv6) / payload; the L4 header is left out
//     as for IPv4 when `l4_header` is false or the first fragment header
//     has an offset > 0.
//   eth.ethertype == ARP: Ethernet / ARP body / payload.
//   anything else: Ethernet / payload.
// Then zero padding up to `pad_to` bytes (e.g. 60, the Ethernet minimum).
struct FrameSpec {
    EthernetSpec eth;
    Ipv4Spec ip;
    Ipv6Spec ip6;
    TcpSpec tcp;
    UdpSpec udp;
    IcmpSpec icmp;
    ArpSpec arp;
    Bytes payload;
    bool l4_header = true;
    std::size_t pad_to = 0;

    static FrameSpec tcp_flow(const Flow& f, std::uint8_t flags = tcp_flags::syn);
    static FrameSpec udp_flow(const Flow& f);
    static FrameSpec icmp_echo(std::uint32_t src, std::uint32_t dst);
    // IPv6 (ethertype 0x86dd).
    static FrameSpec tcp_flow6(const Flow6& f, std::uint8_t flags = tcp_flags::syn);
    static FrameSpec udp_flow6(const Flow6& f);
    static FrameSpec icmp6_echo(const Ipv6Addr& src, const Ipv6Addr& dst);
    static FrameSpec arp_request(std::uint32_t sender, std::uint32_t target);

    // Fluent setters.
    FrameSpec& vlan(std::uint16_t vid, std::uint16_t tpid = kEtherVlan);  // appends (innermost last)
    FrameSpec& qinq(std::uint16_t outer_vid, std::uint16_t inner_vid);  // 0x88a8 then 0x8100
    FrameSpec& fragment(bool more_fragments, std::uint16_t offset_units);
    FrameSpec& ip_options(Bytes opts);
    FrameSpec& with_payload(Bytes data);
    FrameSpec& ethertype(std::uint16_t type);
    FrameSpec& ext6(Ipv6ExtHeader h);  // appends an IPv6 extension header

    Bytes build() const;

    // Offsets in the built frame.
    std::size_t l3_offset() const { return ethernet_header_len(eth); }
    std::size_t l4_offset() const {
        return l3_offset() + (eth.ethertype == kEtherIpv6 ? ipv6_header_len(ip6) : ipv4_header_len(ip));
    }
};

Bytes build(const FrameSpec& spec);

// The outer part of a VXLAN packet: Ethernet / IPv4 or IPv6 (protocol forced
// to UDP) / UDP / VXLAN header. Outer fragments follow FrameSpec's rules.
struct VxlanSpec {
    EthernetSpec eth;
    bool ipv6 = false;             // the underlay: `ip6` instead of `ip`
    Ipv4Spec ip;                   // src = VTEP, dst = this host's underlay address
    Ipv6Spec ip6;                  // the same on an IPv6 underlay
    UdpSpec udp{.sport = 49152, .dport = kVxlanPort, .length = std::nullopt, .checksum = false};
    VxlanHeader vxlan;
    std::size_t pad_to = 0;

    static VxlanSpec between(std::uint32_t vtep_src, std::uint32_t vtep_dst, std::uint32_t vni,
                             std::uint16_t port = kVxlanPort);
    static VxlanSpec between6(const Ipv6Addr& vtep_src, const Ipv6Addr& vtep_dst, std::uint32_t vni,
                              std::uint16_t port = kVxlanPort);
};

// Wraps any inner frame (IPv4, ARP, a fragment, a truncated frame...).
Bytes vxlan_encapsulate(ByteView inner_frame, const VxlanSpec& outer);

// Offsets of a frame built from `outer`: where the inner frame starts.
std::size_t vxlan_inner_offset(const VxlanSpec& outer);

// ------------------------------------------------------- convenience builders

Bytes tcp_frame(const Flow& f, std::uint8_t flags = tcp_flags::syn, ByteView payload = {});
Bytes udp_frame(const Flow& f, ByteView payload = {});
Bytes arp_frame(std::uint32_t sender, std::uint32_t target);
Bytes tcp_frame6(const Flow6& f, std::uint8_t flags = tcp_flags::syn, ByteView payload = {});
Bytes udp_frame6(const Flow6& f, ByteView payload = {});
// VXLAN from vtep_src to vtep_dst on the default port, around `inner_frame`.
Bytes vxlan_frame(std::uint32_t vtep_src, std::uint32_t vtep_dst, std::uint32_t vni,
                  ByteView inner_frame);
Bytes vxlan_frame6(const Ipv6Addr& vtep_src, const Ipv6Addr& vtep_dst, std::uint32_t vni,
                   ByteView inner_frame);

// ------------------------------------------------------------------ debugging

// Classic offset / hex / ASCII dump, 16 bytes a line, for test failure
// messages. Does not parse anything.
std::string hexdump(ByteView data);

}  // namespace vaultwall::packet
