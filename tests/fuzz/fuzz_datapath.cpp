// The datapath on arbitrary frames (needs root: BPF_PROG_TEST_RUN): the real
// compiled XDP program, loaded fresh with a rule set installed, must agree
// with the reference classifier on verdict, reason, vault, rule and VNI for
// every input, and the attached program (not only the explain one) must
// return the same action.
//
// Input: one byte choosing the rule set (two very different ones), then the
// frame. LLVMFuzzerCustomMutator knows the frame's layers (Ethernet, VLAN
// tags, IPv4, TCP/UDP, VXLAN and the inner frame): it sets fields to values
// that matter for the rule sets (prefix edges, endpoints, VTEPs, ports,
// fragment bits, lying lengths), adds and removes tags, wraps and unwraps
// VXLAN and builds fresh valid frames, and leaves the rest to libFuzzer's
// byte mutations. That gets far deeper than random bytes, which almost never
// form a frame to a protected endpoint from a VTEP.
#include <arpa/inet.h>
#include <linux/bpf.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <random>

#include "bpfmaps/datapath.hpp"
#include "bpfmaps/installer.hpp"
#include "bpfmaps/prog_run.hpp"
#include "common.hpp"
#include "common/reasons.hpp"
#include "packet/packet.hpp"
#include "reference/classifier.hpp"
#include "rules/ipv4.hpp"

using namespace vaultwall;
using namespace vaultwall::packet;

extern "C" std::size_t LLVMFuzzerMutate(std::uint8_t* data, std::size_t size, std::size_t max_size);

namespace {

constexpr std::size_t kMaxFrame = 1514;  // what the test run accepts with room to spare
constexpr std::uint32_t kHost = 0xC6120001;  // 198.18.0.1, the VTEPs' underlay peer

std::uint32_t ip(const char* s) { return *rules::parse_ipv4(s); }
rules::Ipv4Prefix pfx(const char* s) { return rules::parse_ipv4_prefix(s)->prefix; }

// Set 0: every vault flavour of SPEC §3 step 5, overlapping and nested
// prefixes (a /0 and a /32 inside a /24), reused private addresses, a UDP
// endpoint, two VTEP prefixes.
rules::CompiledRuleSet rule_set_0() {
    using rules::Proto;
    rules::CompiledRuleSet s;
    s.vxlan_port = 4789;
    s.vteps = {pfx("198.18.0.0/24"), pfx("198.18.10.0/28")};
    s.vaults = {{"strict", false, false, false}, {"bypass", false, false, true}, {"open", false, true, false},
                {"closed", true, false, false},  {"closed-b", true, false, true}, {"other", false, false, false},
                {"everyone", false, false, false}};
    s.endpoints = {
        {0, 0, ip("203.0.113.10"), 443, Proto::tcp, false},
        {0, 0, ip("203.0.113.10"), 500, Proto::udp, false},
        {0, 5001, ip("198.19.1.100"), 443, Proto::tcp, true},
        {1, 0, ip("203.0.113.11"), 443, Proto::tcp, false},
        {2, 0, ip("203.0.113.12"), 443, Proto::tcp, false},
        {3, 0, ip("203.0.113.13"), 443, Proto::tcp, false},
        {4, 0, ip("203.0.113.14"), 443, Proto::tcp, false},
        {5, 5002, ip("198.19.1.100"), 443, Proto::tcp, true},
        {6, 0, ip("203.0.113.16"), 8443, Proto::tcp, false},
    };
    s.rules = {
        {0, 0, pfx("192.0.2.0/24"), "ip_rules"},       {0, 0, pfx("192.0.2.128/25"), "ip_rules"},
        {0, 0, pfx("192.0.2.77/32"), "ip_rules"},      {0, 0, pfx("198.51.100.7/32"), "ip_rules"},
        {0, 5001, pfx("198.19.1.0/24"), "vnet/app"},   {0, 5001, pfx("198.19.2.0/25"), "vnet/data"},
        {1, 0, pfx("198.51.100.0/24"), "ip_rules"},    {1, 5001, pfx("198.19.1.64/26"), "vnet/app"},
        {3, 0, pfx("192.0.2.0/24"), "ip_rules"},       {5, 5002, pfx("198.19.1.0/24"), "vnet2/app"},
        {6, 0, pfx("0.0.0.0/0"), "ip_rules"},          {6, 5003, pfx("198.18.0.0/15"), "vnet3/all"},
    };
    return s;
}

// Set 1: another VXLAN port, a single /32 VTEP, a VTEP address that is also
// an endpoint, many vaults on one address (different ports).
rules::CompiledRuleSet rule_set_1() {
    using rules::Proto;
    rules::CompiledRuleSet s;
    s.vxlan_port = 8472;
    s.vteps = {pfx("198.18.0.5/32")};
    for (int v = 0; v < 6; ++v) {
        s.vaults.push_back({"v" + std::to_string(v), v == 4, v == 2, v % 2 == 1});
        s.endpoints.push_back({std::uint32_t(v), 0, ip("203.0.113.20"), std::uint16_t(443 + v), Proto::tcp, false});
        s.rules.push_back({std::uint32_t(v), 0, {ip("192.0.2.0") + 16 * std::uint32_t(v), 28}, "ip_rules"});
    }
    s.endpoints.push_back({0, 0, ip("198.18.0.5"), 443, Proto::tcp, false});
    s.endpoints.push_back({1, 7000, ip("198.18.1.1"), 443, Proto::tcp, true});
    s.rules.push_back({1, 7000, pfx("198.18.2.0/23"), "v/app"});
    s.rules.push_back({0, 0, pfx("198.18.0.0/16"), "ip_rules"});
    return s;
}

struct Loaded {
    std::unique_ptr<bpfmaps::Datapath> dp;
    std::unique_ptr<bpfmaps::Installer> installer;
    bpfmaps::InstallReport report;
    std::unique_ptr<reference::Classifier> ref;
    std::vector<std::uint32_t> addrs;   // addresses worth trying: prefix edges, endpoints, VTEPs
    std::vector<std::uint16_t> ports;   // endpoint ports and the VXLAN port
    std::vector<std::uint32_t> vnis;

    explicit Loaded(const rules::CompiledRuleSet& set) {
        dp = bpfmaps::Datapath::open_and_load({.max_rules = 1 << 10, .lookup_blocks = 64});
        installer = std::make_unique<bpfmaps::Installer>(*dp);
        report = installer->install(set);
        ref = std::make_unique<reference::Classifier>(set);
        for (const auto& r : set.rules) {
            std::uint32_t size = r.prefix.len == 0 ? 0 : 1u << (32 - r.prefix.len);
            for (std::uint32_t a : {r.prefix.addr - 1, r.prefix.addr, r.prefix.addr + 1, r.prefix.addr + size - 1,
                                    r.prefix.addr + size})
                addrs.push_back(a);
            if (r.vni) vnis.push_back(r.vni);
        }
        for (const auto& e : set.endpoints) {
            addrs.push_back(e.addr);
            ports.push_back(e.port);
            if (e.vni) vnis.push_back(e.vni);
        }
        for (const auto& v : set.vteps) {
            addrs.push_back(v.addr);
            addrs.push_back(v.addr + 1);
            addrs.push_back(v.addr | ~rules::Ipv4Prefix::mask(v.len));
            addrs.push_back((v.addr | ~rules::Ipv4Prefix::mask(v.len)) + 1);
        }
        addrs.push_back(kHost);
        ports.push_back(set.vxlan_port);
        vnis.push_back(0);
        vnis.push_back(0xffffff);
    }
};

Loaded& loaded(int which) {
    static Loaded sets[2] = {Loaded(rule_set_0()), Loaded(rule_set_1())};
    return sets[which & 1];
}

// ------------------------------------------------------------ the property

void check_frame(const Loaded& l, std::span<const std::uint8_t> frame) {
    const auto want = l.ref->classify(frame.data(), frame.size());
    const auto got = bpfmaps::run_explain(*l.dp, frame);
    const std::uint32_t want_vault = want.vault >= 0 ? l.report.vault_ids.at(want.vault) : 0;
    const std::uint32_t want_rule = want.rule >= 0 ? l.report.rule_ids.at(want.rule) : 0;
    const std::uint32_t want_action = want.pass ? XDP_PASS : XDP_DROP;
    const bool vault_reason = !reason_is_global(want.reason);
    const bool same = got.reason == std::uint32_t(want.reason) && got.action == want_action &&
                      got.vault_id == want_vault && got.rule_id == want_rule && (!vault_reason || got.vni == want.vni);
    FUZZ_CHECK(same, "kernel %s vault %u rule %u vni %u action %u; reference %s vault %u rule %u vni %u\n%s",
               reason_name(vw_reason(got.reason)), got.vault_id, got.rule_id, got.vni, got.action,
               reason_name(want.reason), want_vault, want_rule, want.vni, hexdump(frame).c_str());
    const std::uint32_t action = bpfmaps::run_main(*l.dp, frame);
    FUZZ_CHECK(action == want_action, "attached program returned %u, reference %s", action,
               reason_name(want.reason));
}

// ------------------------------------------------------------ the mutator

// Where a frame's layers start, found the way the datapath reads them (it
// may be wrong about a damaged frame: then the mutation is just less apt).
struct Layers {
    std::size_t type_at = 12;  // the EtherType after the tags
    std::vector<std::size_t> tags;  // offsets of each tag's TPID
    std::size_t l3 = 0, l4 = 0, vxlan = 0, inner = 0;  // 0: absent
    std::size_t inner_l3 = 0, inner_l4 = 0;
};

std::uint16_t be16(const Bytes& f, std::size_t at) { return std::uint16_t(f[at] << 8 | f[at + 1]); }
void put16(Bytes& f, std::size_t at, std::uint16_t v) {
    if (at + 2 > f.size()) return;
    f[at] = std::uint8_t(v >> 8);
    f[at + 1] = std::uint8_t(v);
}
void put32(Bytes& f, std::size_t at, std::uint32_t v) {
    if (at + 4 > f.size()) return;
    for (int i = 0; i < 4; ++i) f[at + i] = std::uint8_t(v >> (24 - 8 * i));
}

// Ethernet at `eth`: returns the L3 offset (0 when not IPv4 or too short).
std::size_t walk_l2(const Bytes& f, std::size_t eth, std::size_t& type_at, std::vector<std::size_t>* tags) {
    std::size_t at = eth + 12;
    for (int i = 0; i < 3 && at + 2 <= f.size(); ++i) {
        std::uint16_t t = be16(f, at);
        if (t != kEtherVlan && t != kEtherQinQ) break;
        if (tags) tags->push_back(at);
        at += 4;
    }
    type_at = at;
    if (at + 2 > f.size() || be16(f, at) != kEtherIpv4) return 0;
    return at + 2 + kIpv4HeaderLen <= f.size() ? at + 2 : 0;
}

std::size_t walk_l3(const Bytes& f, std::size_t l3, std::uint8_t& proto) {
    std::size_t ihl = (f[l3] & 0x0f) * 4u;
    proto = f[l3 + 9];
    if (ihl < kIpv4HeaderLen || l3 + ihl + 4 > f.size()) return 0;
    return l3 + ihl;
}

Layers layers(const Bytes& f, std::uint16_t vxlan_port) {
    Layers L;
    if (f.size() < kEthHeaderLen) return L;
    std::uint8_t proto = 0;
    L.l3 = walk_l2(f, 0, L.type_at, &L.tags);
    if (!L.l3) return L;
    L.l4 = walk_l3(f, L.l3, proto);
    if (!L.l4 || proto != kProtoUdp || be16(f, L.l4 + 2) != vxlan_port) return L;
    if (L.l4 + 8 + 8 + kEthHeaderLen > f.size()) return L;
    L.vxlan = L.l4 + 8;
    L.inner = L.vxlan + 8;
    std::size_t type_at = 0;
    L.inner_l3 = walk_l2(f, L.inner, type_at, nullptr);
    if (L.inner_l3) L.inner_l4 = walk_l3(f, L.inner_l3, proto);
    return L;
}

class Mutator {
public:
    Mutator(const Loaded& l, unsigned seed) : l_(l), rng_(seed) {}

    std::uint32_t u(std::uint32_t n) { return n ? rng_() % n : 0; }
    template <class V>
    auto pick(const V& v) { return v[u(std::uint32_t(v.size()))]; }

    std::uint32_t addr() {
        switch (u(4)) {
        case 0: return std::uint32_t(rng_());
        case 1: return 0xC6120000 | u(1u << 17);  // 198.18.0.0/15
        default: return pick(l_.addrs);
        }
    }
    std::uint16_t port() { return u(4) == 0 ? std::uint16_t(rng_()) : pick(l_.ports); }

    // An IPv4 header field of the header at `l3`.
    void ip_field(Bytes& f, std::size_t l3) {
        static const std::uint8_t vihl[] = {0x45, 0x46, 0x4f, 0x44, 0x40, 0x55, 0x65, 0x00};
        static const std::uint16_t frag[] = {0x0000, 0x2000, 0x0001, 0x4000, 0x2001, 0x1fff, 0x6000};
        static const std::uint8_t protos[] = {kProtoTcp, kProtoUdp, kProtoIcmp, 0, 47, 255};
        switch (u(7)) {
        case 0: f[l3] = u(3) ? vihl[u(sizeof vihl)] : std::uint8_t(rng_()); break;
        case 1: put16(f, l3 + 2, pick(std::vector<std::uint16_t>{std::uint16_t(f.size() - l3), std::uint16_t(f.size() - l3 + 1),
                                                                  std::uint16_t(f.size() - l3 - 1), 0, 20, 0xffff,
                                                                  std::uint16_t(rng_())})); break;
        case 2: put16(f, l3 + 6, frag[u(sizeof frag / sizeof frag[0])]); break;
        case 3: f[l3 + 9] = protos[u(sizeof protos)]; break;
        case 4: put32(f, l3 + 12, addr()); break;
        default: put32(f, l3 + 16, addr()); break;
        }
    }

    void l4_field(Bytes& f, std::size_t l4) {
        static const std::uint8_t flags[] = {tcp_flags::syn, tcp_flags::syn | tcp_flags::ack, tcp_flags::ack,
                                             tcp_flags::rst, 0, 0xff};
        switch (u(3)) {
        case 0: put16(f, l4, port()); break;
        case 1: put16(f, l4 + 2, port()); break;
        default:
            if (l4 + 14 <= f.size()) f[l4 + 13] = flags[u(sizeof flags)];
            break;
        }
    }

    // A fresh valid frame: plain, VLAN, QinQ, or VXLAN from a VTEP.
    Bytes fresh() {
        Flow fl{addr(), addr(), std::uint16_t(1024 + u(60000)), port()};
        if (u(3)) {  // mostly to an endpoint
            const auto& ep = pick(l_.ref->rule_set().endpoints);
            fl.dst = ep.addr;
            fl.dport = ep.port;
        }
        FrameSpec spec;
        switch (u(8)) {
        case 0: spec = FrameSpec::udp_flow(fl); break;
        case 1: spec = FrameSpec::arp_request(fl.src, fl.dst); break;
        case 2: spec = FrameSpec::icmp_echo(fl.src, fl.dst); break;
        default: spec = FrameSpec::tcp_flow(fl, u(2) ? tcp_flags::syn : tcp_flags::ack); break;
        }
        if (u(6) == 0) spec.vlan(std::uint16_t(1 + u(4000)));
        if (u(8) == 0) spec.qinq(std::uint16_t(1 + u(4000)), std::uint16_t(1 + u(4000)));
        if (u(10) == 0) spec.ip_options(Bytes(4 * (1 + u(10)), 0x01));
        if (u(10) == 0) spec.fragment(u(2), std::uint16_t(u(3)));
        Bytes frame = spec.build();
        if (u(2)) frame = wrap(frame);
        return frame;
    }

    Bytes wrap(const Bytes& inner) {
        std::uint32_t vtep = u(5) ? pick(l_.addrs) : addr();
        auto outer = VxlanSpec::between(vtep, kHost, pick(l_.vnis), l_.ref->rule_set().vxlan_port);
        if (u(20) == 0) outer.vxlan.i_flag = false;
        if (u(10) == 0) outer.eth.vlans.push_back({kEtherVlan, std::uint16_t(1 + u(4000))});
        if (u(20) == 0) outer.ip.mf = true;
        return vxlan_encapsulate(inner, outer);
    }

    void mutate(Bytes& f) {
        const Layers L = layers(f, l_.ref->rule_set().vxlan_port);
        switch (u(12)) {
        case 0: f = fresh(); return;
        case 1: f = wrap(f); return;
        case 2:
            if (L.inner) f.erase(f.begin(), f.begin() + std::ptrdiff_t(L.inner));  // unwrap
            return;
        case 3: {  // add a tag (802.1Q or 802.1ad) after the MACs
            if (f.size() < 12) return;
            std::uint16_t tpid = u(2) ? kEtherVlan : kEtherQinQ;
            std::uint8_t tag[4] = {std::uint8_t(tpid >> 8), std::uint8_t(tpid), std::uint8_t(u(16)), std::uint8_t(rng_())};
            f.insert(f.begin() + 12, tag, tag + 4);
            return;
        }
        case 4:
            if (!L.tags.empty()) {
                std::size_t at = pick(L.tags);
                f.erase(f.begin() + std::ptrdiff_t(at), f.begin() + std::ptrdiff_t(std::min(at + 4, f.size())));
            }
            return;
        case 5: {
            static const std::uint16_t types[] = {kEtherIpv4, kEtherArp, kEtherIpv6, kEtherVlan, kEtherQinQ, 0};
            put16(f, L.type_at, types[u(6)]);
            return;
        }
        case 6: {  // truncate near a layer boundary
            std::size_t cut = pick(std::vector<std::size_t>{L.l3, L.l4, L.vxlan, L.inner, L.inner_l3, L.inner_l4});
            if (cut) f.resize(std::min(f.size(), cut + u(24)));
            return;
        }
        case 7:
            if (L.vxlan) {
                if (u(2)) f[L.vxlan] = u(2) ? kVxlanFlagI : std::uint8_t(rng_());
                else { std::uint32_t vni = pick(l_.vnis); f[L.vxlan + 4] = std::uint8_t(vni >> 16); f[L.vxlan + 5] = std::uint8_t(vni >> 8); f[L.vxlan + 6] = std::uint8_t(vni); }
            }
            return;
        case 8: case 9:
            if (L.inner_l3 && u(2)) return ip_field(f, L.inner_l3);
            if (L.l3) ip_field(f, L.l3);
            return;
        default:
            if (L.inner_l4 && u(2)) return l4_field(f, L.inner_l4);
            if (L.l4) l4_field(f, L.l4);
            return;
        }
    }

private:
    const Loaded& l_;
    std::minstd_rand rng_;
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    loaded(0);  // load both programs up front: a missing privilege fails here, once
    loaded(1);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1 + kEthHeaderLen || size > 1 + kMaxFrame) return 0;  // the test run refuses shorter frames
    check_frame(loaded(data[0]), {data + 1, size - 1});
    return 0;
}

extern "C" std::size_t LLVMFuzzerCustomMutator(std::uint8_t* data, std::size_t size, std::size_t max_size,
                                               unsigned int seed) {
    if (size < 1 || max_size < 1 + kEthHeaderLen) return LLVMFuzzerMutate(data, size, max_size);
    Mutator m(loaded(data[0]), seed);
    if (m.u(4) == 0) return LLVMFuzzerMutate(data, size, max_size);  // plain bytes, a quarter of the time
    if (m.u(64) == 0) data[0] ^= 1;  // the other rule set
    Bytes frame(data + 1, data + size);
    for (int n = 1 + int(m.u(3)); n > 0; --n) m.mutate(frame);
    if (frame.size() < kEthHeaderLen) frame.resize(kEthHeaderLen, 0);
    frame.resize(std::min(frame.size(), std::min(max_size - 1, kMaxFrame)));
    std::memcpy(data + 1, frame.data(), frame.size());
    return 1 + frame.size();
}
