// Attaching the XDP datapath to interfaces (what `vaultwall-loader` and
// `vaultwalld --attach` do), detaching it, and reporting what is attached.
//
// Attachment goes through libxdp, so the program joins libxdp's multi-program
// dispatcher where the kernel supports it (freplace programs) and is attached
// alone otherwise. Maps and both programs are pinned under PIN_ROOT/IFACE/.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace vaultwall::daemon { using Json = nlohmann::ordered_json; }

namespace vaultwall::daemon {

inline constexpr const char* kDefaultPinRoot = "/sys/fs/bpf/vaultwall";

// A refusal or failure with a message fit for a user, one line.
class AttachError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

enum class XdpMode { native, skb };
const char* mode_name(XdpMode m);
std::optional<XdpMode> parse_mode(const std::string& s);

struct AttachOptions {
    std::string dev;
    XdpMode mode = XdpMode::native;
    std::string pin_root = kDefaultPinRoot;
    std::uint32_t max_rules = 0;  // 0: the ABI default
    std::uint32_t lookup_blocks = 0;  // stride-table blocks per rule set; 0: the ABI default
};

struct AttachResult {
    std::string dev;
    int ifindex = 0;
    std::string mode;          // "native" / "skb"
    std::uint32_t prog_id = 0;
    bool dispatcher = false;   // joined libxdp's dispatcher (else attached alone)
    std::string pin_dir;
};

// Throws AttachError: no such interface, mode unsupported, vaultwall already
// attached, another XDP program holds the interface (named by id and name),
// stale pins from an earlier attachment.
AttachResult attach(const AttachOptions& opts);

// Detaches vaultwall's program from `dev` and removes its pins. Refuses to
// touch another program. Returns a one-line description of what was done.
std::string detach(const std::string& dev, const std::string& pin_root = kDefaultPinRoot);

// What is attached to one interface, as the kernel reports it.
struct XdpHolder {
    std::uint32_t prog_id = 0;  // 0: nothing attached
    std::string prog_name;
    std::string mode;           // "native", "skb", "hw" or ""
    bool dispatcher = false;
    std::vector<std::pair<std::uint32_t, std::string>> components;  // dispatcher members
};
XdpHolder xdp_holder(int ifindex);

// One interface vaultwall has pins for (PIN_ROOT/IFACE).
struct InterfaceStatus {
    std::string dev;
    std::string pin_dir;
    int ifindex = 0;                 // 0: the interface is gone
    bool attached = false;           // our pinned program is the one running there
    std::string mode;
    std::uint32_t prog_id = 0;       // our pinned program's id
    std::uint32_t attached_prog_id = 0;  // whatever runs there (if not ours)
    std::string attached_prog_name;
    std::uint64_t generation = 0;
    std::uint64_t pass_packets = 0, pass_bytes = 0, drop_packets = 0, drop_bytes = 0;
    std::string error;               // pins unreadable
};

// Interfaces with pins under pin_root (sorted by name).
std::vector<std::string> pinned_interfaces(const std::string& pin_root);
std::vector<InterfaceStatus> interface_status(const std::string& pin_root);
Json to_json(const InterfaceStatus& s);

// Program id of a program fd / pinned program path (0 when unreadable).
std::uint32_t prog_id_of_fd(int fd);
std::uint32_t pinned_prog_id(const std::string& path);

}  // namespace vaultwall::daemon
