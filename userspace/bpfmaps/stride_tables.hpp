// The stride tables of the rule lookup (vaultwall_abi.h; docs/datapath.md,
// "Rule lookup"): a scope's rules expanded into 256-entry blocks, one level
// per byte of the source address, so the datapath finds the longest prefix
// in at most four array loads however many rules there are.
//
// build_stride_image() is the pure expansion. StrideTables writes the
// vw_stride_blocks map (in place: MapBackend::stride_blocks is the mmapped
// map, no syscall per block) and vw_scopes, and keeps which blocks each scope
// of each set owns.
// Callers write only a set no packet reads (the Installer's idle set).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <vector>

#include "bpfmaps/map_backend.hpp"
#include "vaultwall_abi.h"

namespace vaultwall::bpfmaps {

struct StridePrefix {
    std::uint32_t addr = 0;  // host byte order
    std::uint8_t len = 0;
    std::uint32_t id = 0;    // rule id, >= 1
};

// blocks[0] is the root; a child entry holds VW_STRIDE_CHILD | its index here.
struct StrideImage {
    std::vector<vw_stride_block> blocks;
};

// One scope's rules (any order, no two with the same prefix) expanded.
StrideImage build_stride_image(std::vector<StridePrefix> rules);

// The datapath's walk over an image: the id of the longest prefix holding
// addr (host order), 0 for none. For tests.
std::uint32_t stride_image_lookup(const StrideImage& image, std::uint32_t addr);

class StrideTables {
public:
    // Maps the blocks and adopts the scopes both sets hold now.
    explicit StrideTables(MapBackend& maps);
    StrideTables(const StrideTables&) = delete;
    StrideTables& operator=(const StrideTables&) = delete;

    // scope = vault_id << 32 | vni, as RuleEntry::scope.
    // Makes `scope` of `set` hold exactly `rules`: in blocks when they fit
    // the blocks the set has free, else flagged to use the rules trie
    // (which must already hold them). Returns whether it is on blocks.
    bool write_scope(std::uint32_t set, std::uint64_t scope, std::vector<StridePrefix> rules);
    void remove_scope(std::uint32_t set, std::uint64_t scope);
    bool has_scope(std::uint32_t set, std::uint64_t scope) const;
    std::vector<std::uint64_t> scopes(std::uint32_t set) const;
    // Relearns a set from the maps (after a failed write).
    void relearn(std::uint32_t set);

    struct Usage {
        std::size_t stride_scopes = 0;
        std::size_t trie_scopes = 0;
        std::size_t blocks_used = 0;
        std::size_t blocks_per_set = 0;
    };
    Usage usage(std::uint32_t set) const;

private:
    struct Owned {
        bool trie = false;
        std::vector<std::uint32_t> blocks;  // blocks[0] is the root
    };
    struct SetTables {
        std::map<std::uint64_t, Owned> scopes;
        std::vector<std::uint32_t> free;  // a stack: lowest index on top
    };

    void release(SetTables& t, Owned& o);
    void write_scope_entry(std::uint32_t set, std::uint64_t scope, const vw_scope& value);

    MapBackend& maps_;
    std::uint32_t per_set_ = 0;
    vw_stride_block* blocks_ = nullptr;  // VW_SETS * per_set_ blocks
    SetTables sets_[VW_SETS];
};

}  // namespace vaultwall::bpfmaps
