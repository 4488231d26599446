// Step 1 of SPEC §5: how was this connection admitted? The datapath records
// every admitted SYN (struct vw_admission keyed by the 4-tuple); the gate
// reads the record after accept(). Without a usable record the gate fails
// closed: only a client address inside the vault's ip_rules is admitted.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "common/reasons.hpp"
#include "gate/ip_address.hpp"
#include "rules/model.hpp"
#include "vaultwall_abi.h"

namespace vaultwall::gate {

// IPv4 addresses and all ports in HOST byte order, IPv6 addresses in network
// order (the BPF adapter converts).
class AdmissionSource {
public:
    virtual ~AdmissionSource() = default;
    virtual std::optional<vw_admission> lookup(std::uint32_t saddr, std::uint16_t sport, std::uint32_t daddr,
                                               std::uint16_t dport) = 0;
    // An IPv6 connection's record; a source without IPv6 records has none
    // (the connection then gets the fail-closed fallback).
    virtual std::optional<vw_admission> lookup6(const rules::Ipv6Addr& saddr, std::uint16_t sport,
                                                const rules::Ipv6Addr& daddr, std::uint16_t dport) {
        (void)saddr, (void)sport, (void)daddr, (void)dport;
        return std::nullopt;
    }
};

// Maps a datapath vault id to the vault's name ("" when unknown).
using VaultNameOf = std::function<std::string(std::uint32_t)>;

struct Admission {
    bool admitted = false;
    std::uint32_t reason = VW_DROP_NO_RULE;  // enum vw_reason
    std::uint32_t vni = 0;
    std::uint32_t rule_id = 0;
    bool from_datapath = false;  // false: user-space fallback
    std::string detail;
};


// `rec`: the datapath record for the connection, if any. It is used only if
// it names this vault (by `name_of`) and carries a pass reason; otherwise the
// fallback applies: a connection to a private endpoint, or to a vault whose
// public network access is disabled, is refused; a public one is admitted
// only when `client` is inside one of the vault's ip_rules of its family.
Admission resolve_admission(const std::optional<vw_admission>& rec, const VaultNameOf& name_of,
                            const rules::Vault& vault, const IpAddress& client, bool private_endpoint);

// The adapter for the daemon: the pinned LRU hashes `vw_admissions`
// (struct vw_flow_key -> struct vw_admission) and `vw_admissions6` (struct
// vw_flow6_key; -1: none). Lives in vw_gate_bpf so that vw_gate does not
// link libbpf. Does not own the fds.
class BpfAdmissionSource : public AdmissionSource {
public:
    explicit BpfAdmissionSource(int map_fd, int map6_fd = -1) : fd_(map_fd), fd6_(map6_fd) {}
    std::optional<vw_admission> lookup(std::uint32_t saddr, std::uint16_t sport, std::uint32_t daddr,
                                       std::uint16_t dport) override;
    std::optional<vw_admission> lookup6(const rules::Ipv6Addr& saddr, std::uint16_t sport,
                                        const rules::Ipv6Addr& daddr, std::uint16_t dport) override;

private:
    int fd_, fd6_;
};

}  // namespace vaultwall::gate
