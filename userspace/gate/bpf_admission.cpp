// The only file of the gate that touches libbpf (library vw_gate_bpf).
#include <arpa/inet.h>
#include <bpf/bpf.h>

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

}  // namespace vaultwall::gate
