// Reading captures for `explain --pcap` and `whatif --pcap`: pcap and pcapng
// through libpcap (Debian's libpcap-dev), Ethernet or Linux cooked captures
// (`tcpdump -i any`), the latter given an Ethernet header so the datapath
// sees what it would see on a NIC.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace vaultwall::ctl {

struct CapturedFrame {
    std::int64_t unix_ns = 0;
    std::vector<std::uint8_t> data;
    std::uint32_t wire_len = 0;  // > data.size(): cut by the capture's snap length
};

// Every frame of the capture. Throws std::runtime_error naming the file and
// what is wrong (unreadable, not a capture, a link type that is not Ethernet).
std::vector<CapturedFrame> read_capture(const std::string& path);

}  // namespace vaultwall::ctl
