// The compiler's output: flat tables the datapath needs, still free of BPF.
// Vaults are referred to by their index in `vaults`; the BPF-maps layer maps
// indices to stable datapath ids by vault name, and rules to stable rule ids
// by their identity (vault name, vni, prefix).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "rules/ipv4.hpp"
#include "rules/ipv6.hpp"
#include "rules/model.hpp"

namespace vaultwall::rules {

struct CompiledVault {
    std::string name;
    bool public_access_disabled = false;
    bool default_allow = false;
    bool bypass = false;  // bypass: azure_services
    bool audit = false;   // enforcement: audit (pass what would drop, SPEC §9)
};

struct CompiledEndpoint {
    std::uint32_t vault = 0;  // index into CompiledRuleSet::vaults
    std::uint32_t vni = 0;    // 0 for a public endpoint; the VNet's VNI for a private one
    std::uint32_t addr = 0;   // host byte order
    std::uint16_t port = 0;
    Proto proto = Proto::tcp;
    bool is_private = false;
};

// One source rule. vni == 0: an ip_rule (plain traffic). vni != 0: a
// virtual_network_rule (VXLAN traffic of that VNI).
struct CompiledRule {
    std::uint32_t vault = 0;
    std::uint32_t vni = 0;
    Ipv4Prefix prefix;
    std::string origin;  // "ip_rules" or "prod-vnet/app" (first, if merged)
};

// The IPv6 tables sit beside the IPv4 ones, not merged into a common type, so
// the IPv4 path (image, installer, datapath) keeps its 32-bit keys unchanged.
struct CompiledEndpoint6 {
    std::uint32_t vault = 0;  // index into CompiledRuleSet::vaults
    std::uint32_t vni = 0;    // 0 for a public endpoint; the VNet's VNI for a private one
    Ipv6Addr addr{};          // network byte order
    std::uint16_t port = 0;
    Proto proto = Proto::tcp;
    bool is_private = false;
};

// As CompiledRule, for an IPv6 source prefix.
struct CompiledRule6 {
    std::uint32_t vault = 0;
    std::uint32_t vni = 0;
    Ipv6Prefix prefix;
    std::string origin;
};

struct CompiledRuleSet {
    std::uint16_t vxlan_port = 4789;
    std::uint32_t drop_events_per_second = 1000;  // per CPU; 0: no denied-flow events
    std::vector<Ipv4Prefix> vteps;
    std::vector<CompiledVault> vaults;
    std::vector<CompiledEndpoint> endpoints;
    std::vector<CompiledRule> rules;  // no two with the same (vault, vni, prefix)
    std::vector<Ipv6Prefix> vteps6;   // IPv6 underlay VTEPs (host.vteps)
    std::vector<CompiledEndpoint6> endpoints6;
    std::vector<CompiledRule6> rules6;  // no two with the same (vault, vni, prefix)
};

CompiledRuleSet compile(const RuleFile& file);

}  // namespace vaultwall::rules
