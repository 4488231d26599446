// The thin layer the Installer and the stride tables write through: the maps
// of one datapath, addressed by Map (bpfmaps/map_list.hpp) and raw key and
// value bytes. KernelMaps is the real thing (the fds of a Datapath, the
// mmapped stride blocks, an RCU grace period); MemoryMaps holds the same in
// process memory, so id assignment, diffs and rollback are unit-tested
// without root, and can be told to fail at the Nth write.
#pragma once

#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bpfmaps/datapath.hpp"
#include "bpfmaps/error.hpp"
#include "vaultwall_abi.h"

namespace vaultwall::bpfmaps {

class MapBackend {
public:
    virtual ~MapBackend() = default;

    virtual std::uint32_t max_rules() const = 0;      // rule ids 1..max_rules-1
    virtual std::uint32_t lookup_blocks() const = 0;  // stride blocks per set

    // Throw BpfError (bpfmaps/error.hpp) naming `what` on failure.
    virtual bool lookup(Map m, const void* key, void* value) const = 0;
    virtual void update(Map m, const void* key, const void* value, const char* what) = 0;
    virtual void remove(Map m, const void* key, const char* what) = 0;  // absent is fine
    virtual void for_each_key(Map m, const std::function<void(const void* key)>& fn) const = 0;
    // `n` updates (removals) of one map at once: keys and values packed in
    // arrays. The kernel takes them in batches (BPF_MAP_UPDATE_BATCH): a
    // reload of a million rules is not a million syscalls. By default one
    // update() (remove()) each.
    virtual void update_many(Map m, const void* keys, const void* values, std::size_t n, const char* what);
    virtual void remove_many(Map m, const void* keys, std::size_t n, const char* what);  // absent is fine
    // Sets the values of these u32 keys to zero (on every CPU for per-CPU maps).
    virtual void zero(Map m, const std::vector<std::uint32_t>& keys, const char* what) = 0;
    // VW_SETS * lookup_blocks() blocks, written in place.
    virtual vw_stride_block* stride_blocks() = 0;
    // Returns once no packet still runs on what was live before the last
    // vw_state write (an RCU grace period on the kernel).
    virtual void grace_period() = 0;

    // Typed conveniences.
    template <class K, class V>
    bool get(Map m, const K& key, V& value) const { return lookup(m, &key, &value); }
    template <class K, class V>
    void put(Map m, const K& key, const V& value, const char* what) { update(m, &key, &value, what); }
    template <class K>
    void del(Map m, const K& key, const char* what) { remove(m, &key, what); }
    template <class K>
    void each_key(Map m, const std::function<void(const K&)>& fn) const {
        for_each_key(m, [&](const void* k) {
            K key;
            std::memcpy(&key, k, sizeof(key));
            fn(key);
        });
    }
};

// The maps of a loaded or pinned Datapath (which must outlive this).
class KernelMaps : public MapBackend {
public:
    explicit KernelMaps(const Datapath& dp);
    ~KernelMaps() override;
    KernelMaps(const KernelMaps&) = delete;
    KernelMaps& operator=(const KernelMaps&) = delete;

    std::uint32_t max_rules() const override { return dp_.max_rules(); }
    std::uint32_t lookup_blocks() const override { return dp_.lookup_blocks(); }
    bool lookup(Map m, const void* key, void* value) const override;
    void update(Map m, const void* key, const void* value, const char* what) override;
    void remove(Map m, const void* key, const char* what) override;
    void for_each_key(Map m, const std::function<void(const void*)>& fn) const override;
    void update_many(Map m, const void* keys, const void* values, std::size_t n, const char* what) override;
    void remove_many(Map m, const void* keys, std::size_t n, const char* what) override;
    void zero(Map m, const std::vector<std::uint32_t>& keys, const char* what) override;
    vw_stride_block* stride_blocks() override;
    void grace_period() override;

private:
    struct Shape {
        std::uint32_t key_size = 0, value_size = 0;
        bool percpu = false;
        bool batches = true;  // false once the kernel refused a batch that single calls took
    };
    const Datapath& dp_;
    Shape shapes_[static_cast<int>(Map::count_)];
    vw_stride_block* blocks_ = nullptr;  // mapped on first use
    std::size_t mapped_bytes_ = 0;
};

// Maps as byte strings in memory. Lookups are exact-match (no LPM): enough to
// check what an install wrote, not to classify.
class MemoryMaps : public MapBackend {
public:
    MemoryMaps(std::uint32_t max_rules, std::uint32_t lookup_blocks);

    std::uint32_t max_rules() const override { return max_rules_; }
    std::uint32_t lookup_blocks() const override { return lookup_blocks_; }
    bool lookup(Map m, const void* key, void* value) const override;
    void update(Map m, const void* key, const void* value, const char* what) override;
    void remove(Map m, const void* key, const char* what) override;
    void for_each_key(Map m, const std::function<void(const void*)>& fn) const override;
    void zero(Map m, const std::vector<std::uint32_t>& keys, const char* what) override;
    vw_stride_block* stride_blocks() override { return blocks_.data(); }
    void grace_period() override { ++grace_periods; }

    // The write (update, remove or zero) numbered `n` from now (0: the next)
    // fails with EIO, as would a kernel refusing it.
    void fail_write_after(std::size_t n) { fail_in_ = n; }
    std::size_t writes = 0;
    std::size_t grace_periods = 0;
    std::size_t entries(Map m) const { return maps_[static_cast<int>(m)].size(); }

private:
    void write_or_fail(const char* what);

    std::uint32_t max_rules_, lookup_blocks_;
    std::map<std::string, std::string> maps_[static_cast<int>(Map::count_)];
    std::vector<vw_stride_block> blocks_;
    std::optional<std::size_t> fail_in_;
};

}  // namespace vaultwall::bpfmaps
