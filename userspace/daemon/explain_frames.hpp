// `explain` for any frame (SPEC §9): the live kernel program (the pinned
// xdp_vw_explain, no side effects) and the live reference model side by side,
// so every reason, not_ip and malformed included, can be explained.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "bpfmaps/datapath.hpp"
#include "bpfmaps/installer.hpp"
#include "daemon/control.hpp"
#include "packet/packet.hpp"
#include "reference/classifier.hpp"
#include "rules/compiled.hpp"

namespace vaultwall::daemon {

// The kernel's and the reference's answers for frames, against one
// interface's live maps and the live rule set. Built once per request: it
// indexes the live rules by id.
class LiveExplainer {
public:
    LiveExplainer(const bpfmaps::Datapath& dp, const bpfmaps::Installer& inst, const rules::CompiledRuleSet& set,
                  const reference::Classifier& ref);

    // {"verdict","reason","vault","rule","vni","reference":{"verdict","reason","vault","rule"},
    //  "agree","generation","flow":{...}}. Throws bpfmaps::BpfError when the
    // kernel refuses to run the frame (shorter than Ethernet, too big).
    Json explain(std::span<const std::uint8_t> frame) const;

private:
    const bpfmaps::Datapath& dp_;
    const bpfmaps::Installer& inst_;
    const rules::CompiledRuleSet& set_;
    const reference::Classifier& ref_;
    std::map<std::uint32_t, std::string> rule_prefix_;  // live rule id -> "192.0.2.0/24", "2001:db8::/32"
};

// What the reference read of a frame: {"src","dst","sport","dport","protocol","vxlan"},
// IPv6 addresses in RFC 5952 form (null when the frame has no IPv4 or IPv6
// header it could read). Once an inner frame in VXLAN was read, its flow (of
// either family, "vxlan": true).
Json flow_json(const reference::FlowFacts& f);

// Hex digits (whitespace and ':' between bytes allowed) to bytes. Throws
// std::invalid_argument naming the offending character.
packet::Bytes parse_hex_frame(const std::string& hex);
std::string to_hex(std::span<const std::uint8_t> bytes);

}  // namespace vaultwall::daemon
