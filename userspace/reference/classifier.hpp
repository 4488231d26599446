// Reference classifier: docs/datapath.md implemented directly in C++ over a
// CompiledRuleSet, independent of the BPF program; the oracle differential
// tests compare the kernel against.
#pragma once

#include <bitset>
#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/reasons.hpp"
#include "rules/compiled.hpp"
#include "vaultwall_abi.h"

namespace vaultwall::reference {

// What the classifier read of the flow, for showing a packet (explain,
// whatif): the inner flow once VXLAN is decapsulated. Host byte order.
struct FlowFacts {
    bool ipv4 = false;        // an IPv4 header was read (src, dst valid)
    std::uint32_t src = 0, dst = 0;
    bool ipv6 = false;        // an IPv6 header was read (src6, dst6 valid)
    rules::Ipv6Addr src6{}, dst6{};
    std::uint8_t proto = 0;
    std::uint16_t sport = 0, dport = 0;  // TCP/UDP only
    bool vxlan = false;
};

struct Verdict {
    bool pass;
    vw_reason reason;
    int vault = -1;  // index into set.vaults; -1 for global reasons
    int rule = -1;   // index into set.rules; -1 when no rule admitted it
    int rule6 = -1;  // index into set.rules6, for an IPv6 flow
    std::uint32_t vni = 0;   // VNI of the VXLAN header once it was read, else 0
    bool admission = false;  // SYN admission recorded (datapath.md step 8)
    FlowFacts flow;
};

class Classifier {
public:
    explicit Classifier(const rules::CompiledRuleSet& set);
    Verdict classify(const std::uint8_t* frame, std::size_t len) const;

    const rules::CompiledRuleSet& rule_set() const { return set_; }

    // Lookups the classifier is built from, exposed for tests and `explain`.
    // Longest rule of `vault` with `vni` containing `src` (host order), or -1.
    int match_rule(std::uint32_t vault, std::uint32_t vni, std::uint32_t src) const;
    bool is_vtep(std::uint32_t src) const;
    // The same for IPv6: an index into set.rules6, or -1.
    int match_rule6(std::uint32_t vault, std::uint32_t vni, const rules::Ipv6Addr& src) const;
    bool is_vtep6(const rules::Ipv6Addr& src) const;

private:
    struct U128Hash {
        std::size_t operator()(const std::pair<std::uint64_t, std::uint64_t>& k) const {
            std::uint64_t h = k.first * 0x9E3779B97F4A7C15ull ^ (k.second + 0x632BE59BD9B4E019ull);
            h ^= h >> 29;
            h *= 0xBF58476D1CE4E5B9ull;
            return static_cast<std::size_t>(h ^ (h >> 32));
        }
    };
    using Key = std::pair<std::uint64_t, std::uint64_t>;

    static Key endpoint_key(std::uint32_t vni, std::uint32_t addr, std::uint16_t port,
                            std::uint8_t proto);

    rules::CompiledRuleSet set_;
    // (vni, addr, port, proto) -> endpoint index; first one wins.
    std::unordered_map<Key, std::size_t, U128Hash> endpoints_;
    // (addr, port, proto) of private endpoints of any VNI.
    std::unordered_set<Key, U128Hash> private_any_;
    // every address carrying some endpoint
    std::unordered_set<std::uint32_t> endpoint_addrs_;
    // rules: (vault, vni) -> bitmask of prefix lengths present (bit L = /L)
    std::unordered_map<Key, std::uint64_t, U128Hash> rule_lengths_;
    // (vault, vni, len, network) -> rule index
    std::unordered_map<Key, int, U128Hash> rules_;
    std::uint64_t vtep_lengths_ = 0;
    std::unordered_set<Key, U128Hash> vteps_;

    // IPv6: ordered containers keyed by the 16-byte address; the same
    // meaning as the tables above.
    using Endpoint6Key = std::tuple<std::uint64_t, rules::Ipv6Addr, std::uint16_t, std::uint8_t>;
    std::map<Endpoint6Key, std::size_t> endpoints6_;  // (space, addr, port, proto)
    std::set<std::tuple<rules::Ipv6Addr, std::uint16_t, std::uint8_t>> private_any6_;
    std::set<rules::Ipv6Addr> endpoint_addrs6_;
    std::map<std::uint64_t, std::bitset<129>> rule_lengths6_;  // (vault << 32 | vni) -> lengths
    std::map<std::tuple<std::uint64_t, std::uint8_t, rules::Ipv6Addr>, int> rules6_;
    std::bitset<129> vtep_lengths6_;
    std::set<std::pair<std::uint8_t, rules::Ipv6Addr>> vteps6_;

};

}  // namespace vaultwall::reference
