// The loaded XDP object and its maps: loaded fresh (skeleton embedded in the
// binary) or reopened from pins. Knows nothing of YAML or of rule semantics.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "bpfmaps/map_list.hpp"

struct bpf_object;
struct vaultwall_bpf;  // generated skeleton

namespace vaultwall::bpfmaps {

// Every map of bpf/maps.h (the list is bpfmaps/map_list.hpp).
enum class Map {
#define VW_MAP_ENUM(e, name, key, value, role) e,
    VW_MAP_LIST(VW_MAP_ENUM)
#undef VW_MAP_ENUM
    count_  // not a map
};

struct MapInfo {
    Map map;
    const char* name;  // in the BPF object, and the pinned file's name
    std::size_t key_size, value_size;
    const char* role;
};
inline constexpr MapInfo kMaps[] = {
#define VW_MAP_INFO(e, name, key, value, role) {Map::e, #name, sizeof(key), sizeof(value), role},
    VW_MAP_LIST(VW_MAP_INFO)
#undef VW_MAP_INFO
};
static_assert(sizeof(kMaps) / sizeof(kMaps[0]) == static_cast<std::size_t>(Map::count_));

inline const MapInfo& map_info(Map m) { return kMaps[static_cast<int>(m)]; }
inline const char* map_name(Map m) { return map_info(m).name; }

inline constexpr const char* kMainProgPin = "prog_main";
inline constexpr const char* kExplainProgPin = "prog_explain";

// Stride-table blocks per rule set: at most this many (block indexes must
// stay clear of VW_STRIDE_CHILD, and the map addressable).
inline constexpr std::uint32_t kMaxLookupBlocks = 1u << 22;

struct LoadOptions {
    std::uint32_t max_rules = 0;  // 0: the ABI default (VW_DEFAULT_MAX_RULES)
    // Stride-table blocks (1 KiB each) per rule set; 0: VW_DEFAULT_STRIDE_BLOCKS.
    std::uint32_t lookup_blocks = 0;
};

class Datapath {
public:
    // Opens the embedded object and sizes its maps, without loading it into
    // the kernel; call load() (or let libxdp load object()) next.
    static std::unique_ptr<Datapath> open(const LoadOptions& opts = {});
    // open() + load(): ready for BPF_PROG_TEST_RUN and map access.
    static std::unique_ptr<Datapath> open_and_load(const LoadOptions& opts = {});
    // Reopens what pin() left in `dir` (DIR/IFACE).
    static std::unique_ptr<Datapath> open_pinned(const std::string& dir);

    ~Datapath();
    Datapath(const Datapath&) = delete;
    Datapath& operator=(const Datapath&) = delete;

    void load();  // bpf_object__load of an open()ed object
    // After an external loader (libxdp) loaded object(): pick up the fds.
    void adopt_loaded();
    // Pins every map and both programs under `dir` (created if missing).
    void pin(const std::string& dir) const;
    // Removes what pin() created; missing files are fine.
    static void unpin(const std::string& dir);

    int map_fd(Map m) const { return map_fds_[static_cast<int>(m)]; }
    int main_prog_fd() const { return main_prog_fd_; }
    int explain_prog_fd() const { return explain_prog_fd_; }
    bpf_object* object() const;  // null when opened from pins
    std::uint32_t max_rules() const { return max_rules_; }
    std::uint32_t lookup_blocks() const { return lookup_blocks_; }  // per set

private:
    Datapath() = default;
    void collect_fds();

    vaultwall_bpf* skel_ = nullptr;
    int map_fds_[static_cast<int>(Map::count_)] = {};
    int main_prog_fd_ = -1;
    int explain_prog_fd_ = -1;
    bool owns_fds_ = false;  // fds from pins are ours to close
    std::uint32_t max_rules_ = 0;
    std::uint32_t lookup_blocks_ = 0;
};

// Creates a bpffs mount at /sys/fs/bpf when none is there.
void ensure_bpffs(const std::string& pin_root);

}  // namespace vaultwall::bpfmaps
