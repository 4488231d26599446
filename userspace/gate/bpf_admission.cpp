// The only file of the gate that touches libbpf (library vw_gate_bpf).
#include <arpa/inet.h>
#include <bpf/bpf.h>

#include <cstring>

#include "gate/admission.hpp"

namespace vaultwall::gate {

std::optional<vw_admission> BpfAdmissionSource::lookup(std::uint32_t saddr, std::uint16_t sport,
                                                       std::uint32_t daddr, std::uint16_t dport) {
    if (fd_ < 0) return std::nullopt;
    struct vw_flow_key key {};
    key.saddr = htonl(saddr);
    key.daddr = htonl(daddr);
    key.sport = htons(sport);
    key.dport = htons(dport);
    key.pad = 0;
    struct vw_admission val {};
    if (bpf_map_lookup_elem(fd_, &key, &val) != 0) return std::nullopt;
    return val;
}

std::optional<vw_admission> BpfAdmissionSource::lookup6(const rules::Ipv6Addr& saddr, std::uint16_t sport,
                                                        const rules::Ipv6Addr& daddr, std::uint16_t dport) {
    if (fd6_ < 0) return std::nullopt;
    struct vw_flow6_key key {};
    static_assert(sizeof key.saddr == sizeof saddr);
    std::memcpy(key.saddr, saddr.data(), sizeof key.saddr);
    std::memcpy(key.daddr, daddr.data(), sizeof key.daddr);
    key.sport = htons(sport);
    key.dport = htons(dport);
    key.pad = 0;
    struct vw_admission val {};
    if (bpf_map_lookup_elem(fd6_, &key, &val) != 0) return std::nullopt;
    return val;
}

}  // namespace vaultwall::gate
