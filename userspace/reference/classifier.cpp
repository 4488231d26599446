// docs/datapath.md, step by step. Offsets are into the frame; every read is
// checked against the frame end and against the end of the enclosing IPv4
// datagram (`ip + tot_len`), so Ethernet padding is never parsed.
#include "reference/classifier.hpp"

namespace vaultwall::reference {

namespace {

constexpr std::uint16_t kEthIpv4 = 0x0800;
constexpr std::uint16_t kEthVlan = 0x8100;
constexpr std::uint16_t kEthQinQ = 0x88a8;
constexpr std::uint8_t kProtoTcp = 6;
constexpr std::uint8_t kProtoUdp = 17;

std::uint16_t be16(const std::uint8_t* p) { return static_cast<std::uint16_t>(p[0] << 8 | p[1]); }
std::uint32_t be32(const std::uint8_t* p) {
    return std::uint32_t(p[0]) << 24 | std::uint32_t(p[1]) << 16 | std::uint32_t(p[2]) << 8 | p[3];
}

enum class EthResult { ipv4, not_ip, malformed };

// Step 1: Ethernet plus up to two VLAN tags in [off, end). On ipv4, `off`
// is moved to the IPv4 header.
EthResult parse_ethernet(const std::uint8_t* f, std::size_t& off, std::size_t end) {
    if (end < off + 14) return EthResult::malformed;
    std::uint16_t type = be16(f + off + 12);
    off += 14;
    for (int tags = 0; tags < 2 && (type == kEthVlan || type == kEthQinQ); ++tags) {
        if (end < off + 4) return EthResult::malformed;
        type = be16(f + off + 2);
        off += 4;
    }
    return type == kEthIpv4 ? EthResult::ipv4 : EthResult::not_ip;
}

struct Ipv4 {
    std::size_t l4 = 0;   // offset of the layer-4 header
    std::size_t end = 0;  // offset just past the datagram (ip + tot_len)
    std::uint8_t proto = 0;
    std::uint32_t src = 0, dst = 0;
    bool fragment = false;     // MF set or offset > 0
    bool first_fragment = false;  // offset 0
};

// Step 2: IPv4 header at `off`, bounded by `end`. False: drop.malformed.
bool parse_ipv4(const std::uint8_t* f, std::size_t off, std::size_t end, Ipv4& ip) {
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

// Step 4: TCP 20 bytes, UDP 8 bytes inside the datagram. False: malformed.
bool parse_l4(const std::uint8_t* f, const Ipv4& ip, L4& l4) {
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

    // 1. Ethernet
    std::size_t off = 0;
    switch (parse_ethernet(f, off, len)) {
        case EthResult::malformed: return done(VW_DROP_MALFORMED);
        case EthResult::not_ip: return done(VW_PASS_NOT_IP);
        case EthResult::ipv4: break;
    }
    // 2. IPv4
    Ipv4 outer;
    if (!parse_ipv4(f, off, len, outer)) return done(VW_DROP_MALFORMED);
    v.flow = {true, outer.src, outer.dst, outer.proto, 0, 0, false};

    // 3. Fragments of the outer datagram
    if (outer.fragment) {
        if (is_vtep(outer.src)) return done(VW_DROP_FRAGMENT);
        if (outer.first_fragment && outer.proto == kProtoUdp) {
            if (outer.end < outer.l4 + 4) return done(VW_DROP_MALFORMED);
            if (be16(f + outer.l4 + 2) == set_.vxlan_port) return done(VW_DROP_FRAGMENT);
        }
        if (endpoint_addrs_.count(outer.dst)) return done(VW_DROP_FRAGMENT);
        return done(VW_PASS_UNPROTECTED);
    }

    // 4. Layer 4
    L4 l4;
    if (!parse_l4(f, outer, l4)) return done(VW_DROP_MALFORMED);
    v.flow.sport = l4.sport;
    v.flow.dport = l4.dport;

    // 5. VXLAN
    Ipv4 flow = outer;
    bool vxlan = false;
    std::uint32_t vni = 0;
    if (outer.proto == kProtoUdp && l4.dport == set_.vxlan_port) {
        vxlan = true;
        if (!is_vtep(outer.src)) return done(VW_DROP_UNTRUSTED_VTEP);
        std::size_t vx = outer.l4 + 8;
        if (outer.end < vx + 8 + 14 || !(f[vx] & 0x08)) return done(VW_DROP_MALFORMED);
        vni = std::uint32_t(f[vx + 4]) << 16 | std::uint32_t(f[vx + 5]) << 8 | f[vx + 6];
        v.vni = vni;
        std::size_t inner_off = vx + 8;
        switch (parse_ethernet(f, inner_off, outer.end)) {
            case EthResult::malformed: return done(VW_DROP_MALFORMED);
            case EthResult::not_ip: return done(VW_PASS_NOT_IP);
            case EthResult::ipv4: break;
        }
        Ipv4 inner;
        if (!parse_ipv4(f, inner_off, outer.end, inner)) return done(VW_DROP_MALFORMED);
        v.flow = {true, inner.src, inner.dst, inner.proto, 0, 0, true};
        if (inner.fragment)
            return done(endpoint_addrs_.count(inner.dst) ? VW_DROP_FRAGMENT : VW_PASS_UNPROTECTED);
        l4 = L4{};
        if (!parse_l4(f, inner, l4)) return done(VW_DROP_MALFORMED);
        v.flow.sport = l4.sport;
        v.flow.dport = l4.dport;
        flow = inner;
    }

    // 6. Endpoint
    if (flow.proto != kProtoTcp && flow.proto != kProtoUdp) return done(VW_PASS_UNPROTECTED);
    Key k = endpoint_key(0, flow.dst, l4.dport, flow.proto);
    const rules::CompiledEndpoint* ep = nullptr;
    if (vxlan && vni != 0) {
        Key pk = k;
        pk.first = vni;
        if (auto it = endpoints_.find(pk); it != endpoints_.end()) ep = &set_.endpoints[it->second];
    }
    if (!ep) {
        Key pub = k;
        pub.first = std::uint64_t(1) << 32;
        if (auto it = endpoints_.find(pub); it != endpoints_.end()) ep = &set_.endpoints[it->second];
    }
    if (!ep)
        return done(private_any_.count(k) ? VW_DROP_NOT_PRIVATE_LINK : VW_PASS_UNPROTECTED);

    // 7. Vault decision
    v.vault = static_cast<int>(ep->vault);
    const rules::CompiledVault& vault = set_.vaults.at(ep->vault);
    vw_reason reason;
    if (ep->is_private) {
        reason = VW_PASS_PRIVATE_ENDPOINT;
    } else if (vault.public_access_disabled) {
        reason = vault.bypass ? VW_PASS_TRUSTED_CANDIDATE : VW_DROP_PUBLIC_ACCESS_DISABLED;
    } else {
        int rule = -1;
        if (!vxlan) rule = match_rule(ep->vault, 0, flow.src);
        else if (vni != 0) rule = match_rule(ep->vault, vni, flow.src);
        if (rule >= 0) {
            v.rule = rule;
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
