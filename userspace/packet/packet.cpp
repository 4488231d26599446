#include "packet/packet.hpp"

#include <cstdio>

namespace vaultwall::packet {

namespace {

void put8(Bytes& out, std::uint8_t v) { out.push_back(v); }

void put16(Bytes& out, std::uint16_t v) {
    out.push_back(static_cast<std::uint8_t>(v >> 8));
    out.push_back(static_cast<std::uint8_t>(v));
}

void put32(Bytes& out, std::uint32_t v) {
    put16(out, static_cast<std::uint16_t>(v >> 16));
    put16(out, static_cast<std::uint16_t>(v));
}

void put_mac(Bytes& out, const Mac& m) { out.insert(out.end(), m.begin(), m.end()); }

void put_bytes(Bytes& out, ByteView b) { out.insert(out.end(), b.begin(), b.end()); }

void set16(Bytes& out, std::size_t at, std::uint16_t v) {
    out[at] = static_cast<std::uint8_t>(v >> 8);
    out[at + 1] = static_cast<std::uint8_t>(v);
}

std::size_t padded4(std::size_t n) { return (n + 3) / 4 * 4; }

}  // namespace

// ------------------------------------------------------------------ checksums

std::uint16_t inet_checksum(ByteView data, std::uint32_t partial) {
    std::uint64_t sum = partial;
    std::size_t i = 0;
    for (; i + 1 < data.size(); i += 2) sum += static_cast<std::uint32_t>(data[i] << 8 | data[i + 1]);
    if (i < data.size()) sum += static_cast<std::uint32_t>(data[i] << 8);
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<std::uint16_t>(~sum & 0xffff);
}

std::uint32_t pseudo_header_sum(std::uint32_t src, std::uint32_t dst, std::uint8_t proto,
                                std::uint16_t l4_len) {
    return (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + proto + l4_len;
}

std::uint32_t pseudo_header_sum6(const Ipv6Addr& src, const Ipv6Addr& dst, std::uint8_t proto,
                                 std::uint32_t l4_len) {
    std::uint32_t sum = 0;
    for (std::size_t i = 0; i < 16; i += 2) {
        sum += static_cast<std::uint32_t>(src[i] << 8 | src[i + 1]);
        sum += static_cast<std::uint32_t>(dst[i] << 8 | dst[i + 1]);
    }
    return sum + (l4_len >> 16) + (l4_len & 0xffff) + proto;
}

// ------------------------------------------------------------------- lengths

std::size_t ethernet_header_len(const EthernetSpec& eth) {
    return kEthHeaderLen + kVlanTagLen * eth.vlans.size();
}

std::size_t ipv4_header_len(const Ipv4Spec& ip) {
    return kIpv4HeaderLen + padded4(ip.options.size());
}

std::size_t Ipv6Spec::ext_len() const {
    std::size_t n = 0;
    for (const auto& h : ext) n += h.size();
    return n;
}

const Ipv6ExtHeader* Ipv6Spec::fragment_header() const {
    for (const auto& h : ext)
        if (h.type == kProtoFragment) return &h;
    return nullptr;
}

std::size_t ipv6_header_len(const Ipv6Spec& ip) { return kIpv6HeaderLen + ip.ext_len(); }

std::size_t tcp_header_len(const TcpSpec& tcp) {
    return kTcpHeaderLen + padded4(tcp.options.size());
}

// -------------------------------------------------------------------- layers

void append_ethernet(Bytes& out, const EthernetSpec& eth, ByteView payload) {
    put_mac(out, eth.dst);
    put_mac(out, eth.src);
    for (const VlanTag& tag : eth.vlans) {
        put16(out, tag.tpid);
        put16(out, tag.tci());
    }
    put16(out, eth.ethertype);
    put_bytes(out, payload);
}

void append_ipv4(Bytes& out, const Ipv4Spec& ip, ByteView payload) {
    const std::size_t start = out.size();
    const std::size_t hlen = ipv4_header_len(ip);
    const std::uint8_t version = ip.version.value_or(4) & 0x0f;
    const std::uint8_t ihl = ip.ihl.value_or(static_cast<std::uint8_t>(hlen / 4)) & 0x0f;
    const std::uint16_t tot_len =
        ip.tot_len.value_or(static_cast<std::uint16_t>(hlen + payload.size()));
    const std::uint16_t frag = static_cast<std::uint16_t>((ip.df ? 0x4000 : 0) | (ip.mf ? 0x2000 : 0) |
                                                          (ip.frag_offset & 0x1fff));
    put8(out, static_cast<std::uint8_t>(version << 4 | ihl));
    put8(out, ip.tos);
    put16(out, tot_len);
    put16(out, ip.id);
    put16(out, frag);
    put8(out, ip.ttl);
    put8(out, ip.protocol);
    put16(out, 0);  // checksum, below
    put32(out, ip.src);
    put32(out, ip.dst);
    put_bytes(out, ip.options);
    out.resize(start + hlen, 0);  // EOL padding
    const std::uint16_t csum =
        ip.checksum.value_or(inet_checksum(ByteView(out).subspan(start, hlen)));
    set16(out, start + 10, csum);
    put_bytes(out, payload);
}

namespace {

// TCP and UDP of either family: `pseudo(len)` is the pseudo-header sum.
template <class Pseudo>
void put_tcp(Bytes& out, const TcpSpec& tcp, Pseudo pseudo, ByteView payload) {
    const std::size_t start = out.size();
    const std::size_t hlen = tcp_header_len(tcp);
    const std::uint8_t doff = tcp.data_offset.value_or(static_cast<std::uint8_t>(hlen / 4)) & 0x0f;
    put16(out, tcp.sport);
    put16(out, tcp.dport);
    put32(out, tcp.seq);
    put32(out, tcp.ack_seq);
    put8(out, static_cast<std::uint8_t>(doff << 4));
    put8(out, tcp.flags);
    put16(out, tcp.window);
    put16(out, 0);  // checksum, below
    put16(out, tcp.urg_ptr);
    put_bytes(out, tcp.options);
    out.resize(start + hlen, 0);
    put_bytes(out, payload);
    if (tcp.checksum) {
        const auto len = static_cast<std::uint16_t>(out.size() - start);
        set16(out, start + 16, inet_checksum(ByteView(out).subspan(start), pseudo(len)));
    }
}

template <class Pseudo>
void put_udp(Bytes& out, const UdpSpec& udp, Pseudo pseudo, ByteView payload) {
    const std::size_t start = out.size();
    const auto real_len = static_cast<std::uint16_t>(kUdpHeaderLen + payload.size());
    put16(out, udp.sport);
    put16(out, udp.dport);
    put16(out, udp.length.value_or(real_len));
    put16(out, 0);  // checksum, below
    put_bytes(out, payload);
    if (udp.checksum) {
        std::uint16_t csum = inet_checksum(ByteView(out).subspan(start), pseudo(real_len));
        if (csum == 0) csum = 0xffff;  // 0 means "no checksum" in UDP
        set16(out, start + 6, csum);
    }
}

}  // namespace

void append_tcp(Bytes& out, const TcpSpec& tcp, std::uint32_t src, std::uint32_t dst, ByteView payload) {
    put_tcp(out, tcp, [&](std::uint16_t len) { return pseudo_header_sum(src, dst, kProtoTcp, len); }, payload);
}

void append_udp(Bytes& out, const UdpSpec& udp, std::uint32_t src, std::uint32_t dst, ByteView payload) {
    put_udp(out, udp, [&](std::uint16_t len) { return pseudo_header_sum(src, dst, kProtoUdp, len); }, payload);
}

void append_tcp6(Bytes& out, const TcpSpec& tcp, const Ipv6Addr& src, const Ipv6Addr& dst, ByteView payload) {
    put_tcp(out, tcp, [&](std::uint16_t len) { return pseudo_header_sum6(src, dst, kProtoTcp, len); }, payload);
}

void append_udp6(Bytes& out, const UdpSpec& udp, const Ipv6Addr& src, const Ipv6Addr& dst, ByteView payload) {
    put_udp(out, udp, [&](std::uint16_t len) { return pseudo_header_sum6(src, dst, kProtoUdp, len); }, payload);
}

void append_icmp6(Bytes& out, const IcmpSpec& icmp, const Ipv6Addr& src, const Ipv6Addr& dst,
                  ByteView payload) {
    const std::size_t start = out.size();
    put8(out, icmp.type);
    put8(out, icmp.code);
    put16(out, 0);  // checksum, below
    put16(out, icmp.id);
    put16(out, icmp.seq);
    put_bytes(out, payload);
    const auto len = static_cast<std::uint32_t>(out.size() - start);
    set16(out, start + 2, inet_checksum(ByteView(out).subspan(start), pseudo_header_sum6(src, dst, kProtoIcmp6, len)));
}

void append_ipv6(Bytes& out, const Ipv6Spec& ip, ByteView payload) {
    const std::uint8_t version = ip.version.value_or(6) & 0x0f;
    const auto payload_len = ip.payload_len.value_or(static_cast<std::uint16_t>(ip.ext_len() + payload.size()));
    put32(out, std::uint32_t(version) << 28 | std::uint32_t(ip.traffic_class) << 20 | (ip.flow_label & 0xfffff));
    put16(out, payload_len);
    put8(out, ip.ext.empty() ? ip.protocol : ip.ext.front().type);
    put8(out, ip.hop_limit);
    put_bytes(out, ip.src);
    put_bytes(out, ip.dst);
    for (std::size_t i = 0; i < ip.ext.size(); ++i) {
        const Ipv6ExtHeader& h = ip.ext[i];
        const std::uint8_t next = i + 1 < ip.ext.size() ? ip.ext[i + 1].type : ip.protocol;
        const std::size_t start = out.size();
        put8(out, next);
        if (h.type == kProtoFragment) {
            put8(out, h.hdr_ext_len.value_or(0));  // reserved
            put16(out, static_cast<std::uint16_t>((h.frag_offset & 0x1fff) << 3 | (h.more_fragments ? 1 : 0)));
            put32(out, h.frag_id);
        } else {
            put8(out, h.hdr_ext_len.value_or(h.units));
            put_bytes(out, h.body);
        }
        out.resize(start + h.size(), 0);
    }
    put_bytes(out, payload);
}

void append_icmp(Bytes& out, const IcmpSpec& icmp, ByteView payload) {
    const std::size_t start = out.size();
    put8(out, icmp.type);
    put8(out, icmp.code);
    put16(out, 0);  // checksum, below
    put16(out, icmp.id);
    put16(out, icmp.seq);
    put_bytes(out, payload);
    set16(out, start + 2, inet_checksum(ByteView(out).subspan(start)));
}

void append_arp(Bytes& out, const ArpSpec& arp) {
    put16(out, 1);           // htype Ethernet
    put16(out, kEtherIpv4);  // ptype
    put8(out, 6);            // hlen
    put8(out, 4);            // plen
    put16(out, arp.op);
    put_mac(out, arp.sha);
    put32(out, arp.spa);
    put_mac(out, arp.tha);
    put32(out, arp.tpa);
}

void append_vxlan(Bytes& out, const VxlanHeader& vx, ByteView inner_frame) {
    put8(out, static_cast<std::uint8_t>((vx.i_flag ? kVxlanFlagI : 0) | (vx.extra_flags & ~kVxlanFlagI)));
    put8(out, 0);
    put16(out, 0);
    put32(out, (vx.vni & 0xffffff) << 8);  // VNI in bytes 4..6, byte 7 reserved
    put_bytes(out, inner_frame);
}

// ---------------------------------------------------------------- FrameSpec

namespace {

// The transport part of a flow's frame; the caller sets the addresses.
FrameSpec l4_flow(std::uint8_t protocol, std::uint16_t sport, std::uint16_t dport, std::uint8_t flags) {
    FrameSpec s;
    s.ip.protocol = protocol;
    s.ip6.protocol = protocol;
    if (protocol == kProtoTcp) {
        s.tcp.sport = sport;
        s.tcp.dport = dport;
        s.tcp.flags = flags;
        if (flags & tcp_flags::ack) s.tcp.ack_seq = 1;
    } else {
        s.udp.sport = sport;
        s.udp.dport = dport;
    }
    return s;
}

FrameSpec flow4(std::uint8_t protocol, const Flow& f, std::uint8_t flags) {
    FrameSpec s = l4_flow(protocol, f.sport, f.dport, flags);
    s.ip.src = f.src;
    s.ip.dst = f.dst;
    return s;
}

FrameSpec flow6(std::uint8_t protocol, const Flow6& f, std::uint8_t flags) {
    FrameSpec s = l4_flow(protocol, f.sport, f.dport, flags);
    s.eth.ethertype = kEtherIpv6;
    s.ip6.src = f.src;
    s.ip6.dst = f.dst;
    return s;
}

}  // namespace

FrameSpec FrameSpec::tcp_flow(const Flow& f, std::uint8_t flags) { return flow4(kProtoTcp, f, flags); }

FrameSpec FrameSpec::udp_flow(const Flow& f) { return flow4(kProtoUdp, f, 0); }

FrameSpec FrameSpec::icmp_echo(std::uint32_t src, std::uint32_t dst) {
    FrameSpec s;
    s.ip.src = src;
    s.ip.dst = dst;
    s.ip.protocol = kProtoIcmp;
    return s;
}

FrameSpec FrameSpec::tcp_flow6(const Flow6& f, std::uint8_t flags) { return flow6(kProtoTcp, f, flags); }

FrameSpec FrameSpec::udp_flow6(const Flow6& f) { return flow6(kProtoUdp, f, 0); }

FrameSpec FrameSpec::icmp6_echo(const Ipv6Addr& src, const Ipv6Addr& dst) {
    FrameSpec s;
    s.eth.ethertype = kEtherIpv6;
    s.ip6.src = src;
    s.ip6.dst = dst;
    s.ip6.protocol = kProtoIcmp6;
    s.icmp.type = 128;  // echo request
    return s;
}

FrameSpec FrameSpec::arp_request(std::uint32_t sender, std::uint32_t target) {
    FrameSpec s;
    s.eth.dst = kBroadcastMac;
    s.eth.ethertype = kEtherArp;
    s.arp.op = 1;
    s.arp.sha = s.eth.src;
    s.arp.spa = sender;
    s.arp.tpa = target;
    return s;
}

FrameSpec& FrameSpec::vlan(std::uint16_t vid, std::uint16_t tpid) {
    eth.vlans.push_back(VlanTag{.tpid = tpid, .vid = vid, .pcp = 0, .dei = false});
    return *this;
}

FrameSpec& FrameSpec::qinq(std::uint16_t outer_vid, std::uint16_t inner_vid) {
    vlan(outer_vid, kEtherQinQ);
    return vlan(inner_vid, kEtherVlan);
}

FrameSpec& FrameSpec::fragment(bool more_fragments, std::uint16_t offset_units) {
    ip.mf = more_fragments;
    ip.frag_offset = offset_units;
    return *this;
}

FrameSpec& FrameSpec::ip_options(Bytes opts) {
    ip.options = std::move(opts);
    return *this;
}

FrameSpec& FrameSpec::with_payload(Bytes data) {
    payload = std::move(data);
    return *this;
}

FrameSpec& FrameSpec::ethertype(std::uint16_t type) {
    eth.ethertype = type;
    return *this;
}

FrameSpec& FrameSpec::ext6(Ipv6ExtHeader h) {
    ip6.ext.push_back(std::move(h));
    return *this;
}

Bytes FrameSpec::build() const { return packet::build(*this); }

Bytes build(const FrameSpec& s) {
    Bytes body;
    if (s.eth.ethertype == kEtherIpv4) {
        Bytes l4;
        const bool with_l4 = s.l4_header && s.ip.frag_offset == 0;
        if (with_l4 && s.ip.protocol == kProtoTcp) {
            append_tcp(l4, s.tcp, s.ip.src, s.ip.dst, s.payload);
        } else if (with_l4 && s.ip.protocol == kProtoUdp) {
            append_udp(l4, s.udp, s.ip.src, s.ip.dst, s.payload);
        } else if (with_l4 && s.ip.protocol == kProtoIcmp) {
            append_icmp(l4, s.icmp, s.payload);
        } else {
            l4 = s.payload;
        }
        append_ipv4(body, s.ip, l4);
    } else if (s.eth.ethertype == kEtherIpv6) {
        Bytes l4;
        const bool with_l4 = s.l4_header && !s.ip6.non_first_fragment();
        if (with_l4 && s.ip6.protocol == kProtoTcp) {
            append_tcp6(l4, s.tcp, s.ip6.src, s.ip6.dst, s.payload);
        } else if (with_l4 && s.ip6.protocol == kProtoUdp) {
            append_udp6(l4, s.udp, s.ip6.src, s.ip6.dst, s.payload);
        } else if (with_l4 && s.ip6.protocol == kProtoIcmp6) {
            append_icmp6(l4, s.icmp, s.ip6.src, s.ip6.dst, s.payload);
        } else {
            l4 = s.payload;
        }
        append_ipv6(body, s.ip6, l4);
    } else if (s.eth.ethertype == kEtherArp) {
        append_arp(body, s.arp);
        put_bytes(body, s.payload);
    } else {
        body = s.payload;
    }
    Bytes frame;
    frame.reserve(ethernet_header_len(s.eth) + body.size());
    append_ethernet(frame, s.eth, body);
    if (frame.size() < s.pad_to) frame.resize(s.pad_to, 0);
    return frame;
}

// --------------------------------------------------------------------- VXLAN

VxlanSpec VxlanSpec::between(std::uint32_t vtep_src, std::uint32_t vtep_dst, std::uint32_t vni,
                             std::uint16_t port) {
    VxlanSpec s;
    s.ip.src = vtep_src;
    s.ip.dst = vtep_dst;
    s.udp.dport = port;
    s.vxlan.vni = vni;
    return s;
}

VxlanSpec VxlanSpec::between6(const Ipv6Addr& vtep_src, const Ipv6Addr& vtep_dst, std::uint32_t vni,
                              std::uint16_t port) {
    VxlanSpec s;
    s.ipv6 = true;
    s.ip6.src = vtep_src;
    s.ip6.dst = vtep_dst;
    s.udp.dport = port;
    s.vxlan.vni = vni;
    return s;
}

Bytes vxlan_encapsulate(ByteView inner_frame, const VxlanSpec& outer) {
    FrameSpec f;
    f.eth = outer.eth;
    f.eth.ethertype = outer.ipv6 ? kEtherIpv6 : kEtherIpv4;
    f.ip = outer.ip;
    f.ip.protocol = kProtoUdp;
    f.ip6 = outer.ip6;
    f.ip6.protocol = kProtoUdp;
    f.udp = outer.udp;
    f.pad_to = outer.pad_to;
    append_vxlan(f.payload, outer.vxlan, inner_frame);
    return build(f);
}

std::size_t vxlan_inner_offset(const VxlanSpec& outer) {
    return ethernet_header_len(outer.eth) + (outer.ipv6 ? ipv6_header_len(outer.ip6) : ipv4_header_len(outer.ip)) +
           kUdpHeaderLen + kVxlanHeaderLen;
}

// --------------------------------------------------------------- convenience

Bytes tcp_frame(const Flow& f, std::uint8_t flags, ByteView payload) {
    FrameSpec s = FrameSpec::tcp_flow(f, flags);
    s.payload.assign(payload.begin(), payload.end());
    return build(s);
}

Bytes udp_frame(const Flow& f, ByteView payload) {
    FrameSpec s = FrameSpec::udp_flow(f);
    s.payload.assign(payload.begin(), payload.end());
    return build(s);
}

Bytes tcp_frame6(const Flow6& f, std::uint8_t flags, ByteView payload) {
    FrameSpec s = FrameSpec::tcp_flow6(f, flags);
    s.payload.assign(payload.begin(), payload.end());
    return build(s);
}

Bytes udp_frame6(const Flow6& f, ByteView payload) {
    FrameSpec s = FrameSpec::udp_flow6(f);
    s.payload.assign(payload.begin(), payload.end());
    return build(s);
}

Bytes arp_frame(std::uint32_t sender, std::uint32_t target) {
    return build(FrameSpec::arp_request(sender, target));
}

Bytes vxlan_frame(std::uint32_t vtep_src, std::uint32_t vtep_dst, std::uint32_t vni,
                  ByteView inner_frame) {
    return vxlan_encapsulate(inner_frame, VxlanSpec::between(vtep_src, vtep_dst, vni));
}

Bytes vxlan_frame6(const Ipv6Addr& vtep_src, const Ipv6Addr& vtep_dst, std::uint32_t vni,
                   ByteView inner_frame) {
    return vxlan_encapsulate(inner_frame, VxlanSpec::between6(vtep_src, vtep_dst, vni));
}

// ------------------------------------------------------------------ hexdump

std::string hexdump(ByteView data) {
    std::string out;
    char buf[32];
    for (std::size_t line = 0; line < data.size(); line += 16) {
        std::snprintf(buf, sizeof buf, "%04zx  ", line);
        out += buf;
        for (std::size_t i = 0; i < 16; ++i) {
            if (line + i < data.size()) {
                std::snprintf(buf, sizeof buf, "%02x ", data[line + i]);
                out += buf;
            } else {
                out += "   ";
            }
            if (i == 7) out += ' ';
        }
        out += " |";
        for (std::size_t i = 0; i < 16 && line + i < data.size(); ++i) {
            const std::uint8_t c = data[line + i];
            out += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '.';
        }
        out += "|\n";
    }
    if (data.empty()) out = "(empty)\n";
    return out;
}

}  // namespace vaultwall::packet
