// docs/datapath.md, step by step. Offsets are into the frame; every read is
// checked against the frame end and against the end of the enclosing
// datagram (IPv4 `ip + tot_len`, IPv6 `ip + 40 + payload_len`), so Ethernet
// padding is never parsed.
#include "reference/classifier.hpp"

namespace vaultwall::reference {

namespace {

constexpr std::uint16_t kEthIpv4 = 0x0800;
constexpr std::uint16_t kEthIpv6 = 0x86dd;
constexpr std::uint16_t kEthVlan = 0x8100;
constexpr std::uint16_t kEthQinQ = 0x88a8;
constexpr std::uint8_t kProtoTcp = 6;
constexpr std::uint8_t kProtoUdp = 17;

std::uint16_t be16(const std::uint8_t* p) { return static_cast<std::uint16_t>(p[0] << 8 | p[1]); }
std::uint32_t be32(const std::uint8_t* p) {
    return std::uint32_t(p[0]) << 24 | std::uint32_t(p[1]) << 16 | std::uint32_t(p[2]) << 8 | p[3];
}

enum class EthResult { ipv4, ipv6, not_ip, malformed };

// Step 1: Ethernet plus up to two VLAN tags in [off, end). On ipv4/ipv6,
// `off` is moved to the IP header.
EthResult parse_ethernet(const std::uint8_t* f, std::size_t& off, std::size_t end) {
    if (end < off + 14) return EthResult::malformed;
    std::uint16_t type = be16(f + off + 12);
    off += 14;
    for (int tags = 0; tags < 2 && (type == kEthVlan || type == kEthQinQ); ++tags) {
        if (end < off + 4) return EthResult::malformed;
        type = be16(f + off + 2);
        off += 4;
    }
    if (type == kEthIpv4) return EthResult::ipv4;
    if (type == kEthIpv6) return EthResult::ipv6;
    return EthResult::not_ip;
}

// An IP datagram of either family, as far as steps 2 and 3 read it.
struct Ip {
    bool v6 = false;
    std::size_t l4 = 0;   // offset of the layer-4 header
    std::size_t end = 0;  // offset just past the datagram
    std::uint8_t proto = 0;
    std::uint32_t src = 0, dst = 0;      // IPv4
    rules::Ipv6Addr src6{}, dst6{};      // IPv6
    bool fragment = false;        // IPv4: MF set or offset > 0; IPv6: a non-atomic fragment header
    bool first_fragment = false;  // offset 0
};

// Step 2: IPv4 header at `off`, bounded by `end`. False: drop.malformed.
bool parse_ipv4(const std::uint8_t* f, std::size_t off, std::size_t end, Ip& ip) {
    if (end < off + 20) return false;
    const std::uint8_t* h = f + off;
    unsigned version = h[0] >> 4, ihl = h[0] & 0x0f;
    if (version != 4 || ihl < 5) return false;
    std::size_t hlen = ihl * 4u;
    if (end < off + hlen) return false;
    std::size_t tot = be16(h + 2);
    if (tot < hlen || end < off + tot) return false;
    std::uint16_t frag = be16(h + 6);
    ip.l4 = off + hlen;
    ip.end = off + tot;
    ip.proto = h[9];
    ip.src = be32(h + 12);
    ip.dst = be32(h + 16);
    ip.fragment = (frag & 0x3fff) != 0;
    ip.first_fragment = (frag & 0x1fff) == 0;
    return true;
}

struct L4 {
    std::uint16_t sport = 0, dport = 0;
    std::uint8_t tcp_flags = 0;
};

// IPv6 step 2: the fixed header and the bounded walk of extension headers.
enum class Chain { ok, malformed, truncated, too_long, second_fragment };
constexpr std::uint8_t kHopByHop = 0, kRouting = 43, kFragment = 44, kDstOpts = 60;
constexpr int kMaxExtHeaders = VW_IPV6_MAX_EXT_HEADERS;

bool is_ext_header(std::uint8_t t) { return t == kHopByHop || t == kRouting || t == kDstOpts || t == kFragment; }

Chain parse_ipv6(const std::uint8_t* f, std::size_t off, std::size_t end, Ip& ip) {
    if (end < off + 40) return Chain::malformed;
    const std::uint8_t* h = f + off;
    if (h[0] >> 4 != 6) return Chain::malformed;
    const std::size_t dgram_end = off + 40 + be16(h + 4);
    if (end < dgram_end) return Chain::malformed;
    ip.v6 = true;
    ip.end = dgram_end;
    std::copy(h + 8, h + 24, ip.src6.begin());
    std::copy(h + 24, h + 40, ip.dst6.begin());
    std::uint8_t next = h[6];
    std::size_t at = off + 40;
    int fragment_headers = 0;
    ip.proto = next;
    for (int n = 0; n < kMaxExtHeaders && is_ext_header(next); ++n) {
        if (ip.end < at + 8) return Chain::truncated;  // every header is at least 8 bytes
        if (next == kFragment) {
            if (++fragment_headers > 1) return Chain::second_fragment;
            const std::uint16_t frag = be16(f + at + 2);
            const bool more = frag & 1;
            const std::uint16_t offset = frag >> 3;
            next = f[at];
            at += 8;
            if (offset != 0) {  // a later fragment: the rest is payload
                ip.fragment = true;
                ip.first_fragment = false;
                ip.proto = next;
                ip.l4 = at;
                return Chain::ok;
            }
            if (more) {
                ip.fragment = true;
                ip.first_fragment = true;
            }  // else an atomic fragment (RFC 6946): a whole datagram
            continue;
        }
        const std::size_t len = (std::size_t(f[at + 1]) + 1) * 8;
        next = f[at];
        at += len;
        if (ip.end < at) return Chain::truncated;
    }
    if (is_ext_header(next)) return Chain::too_long;
    ip.proto = next;
    ip.l4 = at;
    return Chain::ok;
}

// Step 4: TCP 20 bytes, UDP 8 bytes inside the datagram. False: malformed.
bool parse_l4(const std::uint8_t* f, const Ip& ip, L4& l4) {
    if (ip.proto == kProtoTcp) {
        if (ip.end < ip.l4 + 20) return false;
        l4.tcp_flags = f[ip.l4 + 13];
    } else if (ip.proto == kProtoUdp) {
        if (ip.end < ip.l4 + 8) return false;
    } else {
        return true;  // no ports; never matches an endpoint
    }
    l4.sport = be16(f + ip.l4);
    l4.dport = be16(f + ip.l4 + 2);
    return true;
}

}  // namespace

Classifier::Key Classifier::endpoint_key(std::uint32_t vni, std::uint32_t addr, std::uint16_t port,
                                         std::uint8_t proto) {
    return {std::uint64_t(vni), std::uint64_t(addr) << 32 | std::uint64_t(port) << 8 | proto};
}

Classifier::Classifier(const rules::CompiledRuleSet& set) : set_(set) {
    for (std::size_t i = 0; i < set_.endpoints.size(); ++i) {
        const auto& e = set_.endpoints[i];
        auto proto = static_cast<std::uint8_t>(e.proto);
        // Public endpoints get a key space of their own (bit 32 of the first
        // half, beyond any VNI); private ones live under their VNI.
        std::uint64_t space = e.is_private ? e.vni : (std::uint64_t(1) << 32);
        Key k = endpoint_key(0, e.addr, e.port, proto);
        k.first = space;
        endpoints_.emplace(k, i);
        if (e.is_private) private_any_.insert(endpoint_key(0, e.addr, e.port, proto));
        endpoint_addrs_.insert(e.addr);
    }
    for (std::size_t i = 0; i < set_.rules.size(); ++i) {
        const auto& r = set_.rules[i];
        std::uint64_t vv = std::uint64_t(r.vault) << 32 | r.vni;
        rule_lengths_[{vv, 0}] |= std::uint64_t(1) << r.prefix.len;
        std::uint32_t net = r.prefix.addr & rules::Ipv4Prefix::mask(r.prefix.len);
        rules_.emplace(Key{vv, std::uint64_t(r.prefix.len) << 32 | net}, static_cast<int>(i));
    }
    for (const auto& p : set_.vteps) {
        vtep_lengths_ |= std::uint64_t(1) << p.len;
        vteps_.insert({0, std::uint64_t(p.len) << 32 | (p.addr & rules::Ipv4Prefix::mask(p.len))});
    }
    for (std::size_t i = 0; i < set_.endpoints6.size(); ++i) {
        const auto& e = set_.endpoints6[i];
        auto proto = static_cast<std::uint8_t>(e.proto);
        std::uint64_t space = e.is_private ? e.vni : (std::uint64_t(1) << 32);
        endpoints6_.emplace(Endpoint6Key{space, e.addr, e.port, proto}, i);
        if (e.is_private) private_any6_.insert({e.addr, e.port, proto});
        endpoint_addrs6_.insert(e.addr);
    }
    for (std::size_t i = 0; i < set_.rules6.size(); ++i) {
        const auto& r = set_.rules6[i];
        std::uint64_t vv = std::uint64_t(r.vault) << 32 | r.vni;
        rule_lengths6_[vv].set(r.prefix.len);
        rules6_.emplace(std::tuple{vv, r.prefix.len, rules::Ipv6Prefix::masked(r.prefix.addr, r.prefix.len)},
                        static_cast<int>(i));
    }
    for (const auto& p : set_.vteps6) {
        vtep_lengths6_.set(p.len);
        vteps6_.insert({p.len, rules::Ipv6Prefix::masked(p.addr, p.len)});
    }
}

int Classifier::match_rule6(std::uint32_t vault, std::uint32_t vni, const rules::Ipv6Addr& src) const {
    std::uint64_t vv = std::uint64_t(vault) << 32 | vni;
    auto lens = rule_lengths6_.find(vv);
    if (lens == rule_lengths6_.end()) return -1;
    for (int len = 128; len >= 0; --len) {
        if (!lens->second.test(len)) continue;
        auto l = static_cast<std::uint8_t>(len);
        auto it = rules6_.find({vv, l, rules::Ipv6Prefix::masked(src, l)});
        if (it != rules6_.end()) return it->second;
    }
    return -1;
}

bool Classifier::is_vtep6(const rules::Ipv6Addr& src) const {
    for (int len = 128; len >= 0; --len) {
        if (!vtep_lengths6_.test(len)) continue;
        auto l = static_cast<std::uint8_t>(len);
        if (vteps6_.count({l, rules::Ipv6Prefix::masked(src, l)})) return true;
    }
    return false;
}

int Classifier::match_rule(std::uint32_t vault, std::uint32_t vni, std::uint32_t src) const {
    std::uint64_t vv = std::uint64_t(vault) << 32 | vni;
    auto lens = rule_lengths_.find({vv, 0});
    if (lens == rule_lengths_.end()) return -1;
    for (int len = 32; len >= 0; --len) {
        if (!(lens->second >> len & 1)) continue;
        std::uint32_t net = src & rules::Ipv4Prefix::mask(static_cast<std::uint8_t>(len));
        auto it = rules_.find({vv, std::uint64_t(len) << 32 | net});
        if (it != rules_.end()) return it->second;
    }
    return -1;
}

bool Classifier::is_vtep(std::uint32_t src) const {
    for (int len = 32; len >= 0; --len) {
        if (!(vtep_lengths_ >> len & 1)) continue;
        std::uint32_t net = src & rules::Ipv4Prefix::mask(static_cast<std::uint8_t>(len));
        if (vteps_.count({0, std::uint64_t(len) << 32 | net})) return true;
    }
    return false;
}

Verdict Classifier::classify(const std::uint8_t* f, std::size_t len) const {
    Verdict v{false, VW_DROP_MALFORMED};
    auto done = [&v](vw_reason r) {
        v.reason = r;
        v.pass = reason_is_pass(r);
        return v;
    };
    auto facts = [](const Ip& ip, bool vxlan) {
        FlowFacts ff;
        ff.ipv4 = !ip.v6;
        ff.ipv6 = ip.v6;
        ff.src = ip.src;
        ff.dst = ip.dst;
        ff.src6 = ip.src6;
        ff.dst6 = ip.dst6;
        ff.proto = ip.proto;
        ff.vxlan = vxlan;
        return ff;
    };
    auto protected_dst = [&](const Ip& ip) {
        return ip.v6 ? endpoint_addrs6_.count(ip.dst6) > 0 : endpoint_addrs_.count(ip.dst) > 0;
    };
    auto from_vtep = [&](const Ip& ip) { return ip.v6 ? is_vtep6(ip.src6) : is_vtep(ip.src); };
    auto l4_whole = [&](const Ip& ip) {
        if (ip.proto == kProtoTcp) return ip.end >= ip.l4 + 20;
        if (ip.proto == kProtoUdp) return ip.end >= ip.l4 + 8;
        return true;
    };
    // Steps 2 and 3 for an IP header at `off` inside [off, end): 0 to go on
    // with layer 4, else the final reason. `outer`: the datagram on the wire
    // (its fragments are also checked against VTEPs and the VXLAN port).
    auto parse_ip = [&](bool v6, std::size_t off, std::size_t end, bool outer, Ip& ip) -> int {
        if (!v6) {
            if (!parse_ipv4(f, off, end, ip)) return VW_DROP_MALFORMED;
        } else {
            switch (parse_ipv6(f, off, end, ip)) {
                case Chain::malformed:
                case Chain::too_long: return VW_DROP_MALFORMED;
                case Chain::truncated: return ip.first_fragment ? VW_DROP_FRAGMENT : VW_DROP_MALFORMED;
                case Chain::second_fragment: return VW_DROP_FRAGMENT;
                case Chain::ok: break;
            }
        }
        v.flow = facts(ip, !outer);
        if (!ip.fragment) return 0;
        // 3. Fragments
        if (ip.v6 && ip.first_fragment && !l4_whole(ip)) return VW_DROP_FRAGMENT;  // RFC 7112
        if (outer) {
            if (from_vtep(ip)) return VW_DROP_FRAGMENT;
            if (ip.first_fragment && ip.proto == kProtoUdp) {
                if (ip.end < ip.l4 + 4) return VW_DROP_MALFORMED;
                if (be16(f + ip.l4 + 2) == set_.vxlan_port) return VW_DROP_FRAGMENT;
            }
        }
        return protected_dst(ip) ? VW_DROP_FRAGMENT : VW_PASS_UNPROTECTED;
    };

    // 1. Ethernet
    std::size_t off = 0;
    bool v6 = false;
    switch (parse_ethernet(f, off, len)) {
        case EthResult::malformed: return done(VW_DROP_MALFORMED);
        case EthResult::not_ip: return done(VW_PASS_NOT_IP);
        case EthResult::ipv6: v6 = true; break;
        case EthResult::ipv4: break;
    }
    // 2-3. IP, fragments
    Ip outer;
    if (int r = parse_ip(v6, off, len, true, outer)) return done(static_cast<vw_reason>(r));

    // 4. Layer 4
    L4 l4;
    if (!parse_l4(f, outer, l4)) return done(VW_DROP_MALFORMED);
    v.flow.sport = l4.sport;
    v.flow.dport = l4.dport;

    // 5. VXLAN
    Ip flow = outer;
    bool vxlan = false;
    std::uint32_t vni = 0;
    if (outer.proto == kProtoUdp && l4.dport == set_.vxlan_port) {
        vxlan = true;
        if (!from_vtep(outer)) return done(VW_DROP_UNTRUSTED_VTEP);
        std::size_t vx = outer.l4 + 8;
        if (outer.end < vx + 8 + 14 || !(f[vx] & 0x08)) return done(VW_DROP_MALFORMED);
        vni = std::uint32_t(f[vx + 4]) << 16 | std::uint32_t(f[vx + 5]) << 8 | f[vx + 6];
        v.vni = vni;
        std::size_t inner_off = vx + 8;
        bool inner_v6 = false;
        switch (parse_ethernet(f, inner_off, outer.end)) {
            case EthResult::malformed: return done(VW_DROP_MALFORMED);
            case EthResult::not_ip: return done(VW_PASS_NOT_IP);
            case EthResult::ipv6: inner_v6 = true; break;
            case EthResult::ipv4: break;
        }
        Ip inner;
        if (int r = parse_ip(inner_v6, inner_off, outer.end, false, inner)) return done(static_cast<vw_reason>(r));
        l4 = L4{};
        if (!parse_l4(f, inner, l4)) return done(VW_DROP_MALFORMED);
        v.flow.sport = l4.sport;
        v.flow.dport = l4.dport;
        flow = inner;
    }

    // 6. Endpoint
    if (flow.proto != kProtoTcp && flow.proto != kProtoUdp) return done(VW_PASS_UNPROTECTED);
    const std::uint64_t kPublic = std::uint64_t(1) << 32;
    auto find_endpoint = [&](std::uint64_t space) -> const void* {
        if (flow.v6) {
            auto it = endpoints6_.find({space, flow.dst6, l4.dport, flow.proto});
            return it == endpoints6_.end() ? nullptr : &set_.endpoints6[it->second];
        }
        Key k = endpoint_key(0, flow.dst, l4.dport, flow.proto);
        k.first = space;
        auto it = endpoints_.find(k);
        return it == endpoints_.end() ? nullptr : &set_.endpoints[it->second];
    };
    const void* found = nullptr;
    if (vxlan && vni != 0) found = find_endpoint(vni);
    if (!found) found = find_endpoint(kPublic);
    if (!found) {
        const bool private_here = flow.v6 ? private_any6_.count({flow.dst6, l4.dport, flow.proto}) > 0
                                          : private_any_.count(endpoint_key(0, flow.dst, l4.dport, flow.proto)) > 0;
        return done(private_here ? VW_DROP_NOT_PRIVATE_LINK : VW_PASS_UNPROTECTED);
    }
    std::uint32_t ep_vault;
    bool ep_private;
    if (flow.v6) {
        const auto* ep = static_cast<const rules::CompiledEndpoint6*>(found);
        ep_vault = ep->vault;
        ep_private = ep->is_private;
    } else {
        const auto* ep = static_cast<const rules::CompiledEndpoint*>(found);
        ep_vault = ep->vault;
        ep_private = ep->is_private;
    }

    // 7. Vault decision
    v.vault = static_cast<int>(ep_vault);
    const rules::CompiledVault& vault = set_.vaults.at(ep_vault);
    vw_reason reason;
    if (ep_private) {
        reason = VW_PASS_PRIVATE_ENDPOINT;
    } else if (vault.public_access_disabled) {
        reason = vault.bypass ? VW_PASS_TRUSTED_CANDIDATE : VW_DROP_PUBLIC_ACCESS_DISABLED;
    } else {
        int rule = -1;
        if (!vxlan || vni != 0)
            rule = flow.v6 ? match_rule6(ep_vault, vni, flow.src6) : match_rule(ep_vault, vni, flow.src);
        if (rule >= 0) {
            (flow.v6 ? v.rule6 : v.rule) = rule;
            reason = vxlan ? VW_PASS_VNET_RULE : VW_PASS_IP_RULE;
        } else if (vault.default_allow) {
            reason = VW_PASS_DEFAULT_ALLOW;
        } else if (vault.bypass) {
            reason = VW_PASS_TRUSTED_CANDIDATE;
        } else {
            reason = VW_DROP_NO_RULE;
        }
    }
    // Audit mode passes what the vault would drop, under the audit reason.
    if (vault.audit) reason = static_cast<vw_reason>(vw_reason_audited(reason));
    done(reason);

    // 8. Admission record: TCP SYN without ACK that passes with a vault reason.
    constexpr std::uint8_t kSyn = 0x02, kAck = 0x10;
    if (v.pass && flow.proto == kProtoTcp && (l4.tcp_flags & kSyn) && !(l4.tcp_flags & kAck))
        v.admission = true;
    return v;
}

}  // namespace vaultwall::reference
