#include "bpfmaps/map_backend.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/membarrier.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <thread>

#include "bpfmaps/error.hpp"
#include "bpfmaps/map_io.hpp"

namespace vaultwall::bpfmaps {

void MapBackend::update_many(Map m, const void* keys, const void* values, std::size_t n, const char* what) {
    const auto& info = map_info(m);
    for (std::size_t i = 0; i < n; ++i)
        update(m, static_cast<const char*>(keys) + i * info.key_size,
               static_cast<const char*>(values) + i * info.value_size, what);
}

void MapBackend::remove_many(Map m, const void* keys, std::size_t n, const char* what) {
    const auto& info = map_info(m);
    for (std::size_t i = 0; i < n; ++i) remove(m, static_cast<const char*>(keys) + i * info.key_size, what);
}

KernelMaps::KernelMaps(const Datapath& dp) : dp_(dp) {
    for (const auto& m : kMaps) {
        bpf_map_info info{};
        __u32 len = sizeof(info);
        if (bpf_obj_get_info_by_fd(dp_.map_fd(m.map), &info, &len) != 0)
            throw_errno(std::string("reading the shape of ") + m.name);
        // A ring buffer has neither key nor value (its records are read with libbpf's ring_buffer).
        const bool keyed = info.type != BPF_MAP_TYPE_RINGBUF;
        if (keyed && (info.key_size != m.key_size || info.value_size != m.value_size))
            throw std::runtime_error(std::string(m.name) + " has key/value sizes " + std::to_string(info.key_size) +
                                     "/" + std::to_string(info.value_size) + ", this build expects " +
                                     std::to_string(m.key_size) + "/" + std::to_string(m.value_size) +
                                     " (a datapath from another version: re-attach it)");
        Shape& s = shapes_[static_cast<int>(m.map)];
        s.key_size = info.key_size;
        s.value_size = info.value_size;
        s.percpu = info.type == BPF_MAP_TYPE_PERCPU_ARRAY || info.type == BPF_MAP_TYPE_PERCPU_HASH ||
                   info.type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
    }
}

KernelMaps::~KernelMaps() {
    if (blocks_) munmap(blocks_, mapped_bytes_);
}

bool KernelMaps::lookup(Map m, const void* key, void* value) const {
    return bpf_map_lookup_elem(dp_.map_fd(m), key, value) == 0;
}

void KernelMaps::update(Map m, const void* key, const void* value, const char* what) {
    if (bpf_map_update_elem(dp_.map_fd(m), key, value, BPF_ANY) != 0) throw_errno(what);
}

void KernelMaps::remove(Map m, const void* key, const char* what) {
    if (bpf_map_delete_elem(dp_.map_fd(m), key) != 0 && errno != ENOENT) throw_errno(what);
}

void KernelMaps::for_each_key(Map m, const std::function<void(const void*)>& fn) const {
    const int fd = dp_.map_fd(m);
    const std::size_t ks = shapes_[static_cast<int>(m)].key_size;
    std::vector<unsigned char> key(ks), next(ks);
    const void* prev = nullptr;
    while (bpf_map_get_next_key(fd, prev, next.data()) == 0) {
        fn(next.data());
        key = next;
        prev = key.data();
    }
}

namespace {
constexpr std::size_t kBatch = 8192;  // elements per batch syscall
}

void KernelMaps::update_many(Map m, const void* keys, const void* values, std::size_t n, const char* what) {
    Shape& s = shapes_[static_cast<int>(m)];
    const auto* k = static_cast<const char*>(keys);
    const auto* v = static_cast<const char*>(values);
    const int fd = dp_.map_fd(m);
    for (std::size_t i = 0; i < n;) {
        __u32 count = 0;
        int rc = -1;
        if (s.batches) {
            count = static_cast<__u32>(std::min(kBatch, n - i));
            rc = bpf_map_update_batch(fd, k + i * s.key_size, v + i * s.value_size, &count, nullptr);
            i += std::min<std::size_t>(count, n - i);
            if (rc == 0) continue;
        }
        // The element that failed, alone, so the error is its own; if it
        // goes in alone the kernel has no batches for this map type.
        if (i == n) break;
        if (bpf_map_update_elem(fd, k + i * s.key_size, v + i * s.value_size, BPF_ANY) != 0) throw_errno(what);
        if (count == 0) s.batches = false;
        ++i;
    }
}

void KernelMaps::remove_many(Map m, const void* keys, std::size_t n, const char* what) {
    Shape& s = shapes_[static_cast<int>(m)];
    const auto* k = static_cast<const char*>(keys);
    const int fd = dp_.map_fd(m);
    for (std::size_t i = 0; i < n;) {
        __u32 count = 0;
        if (s.batches) {
            count = static_cast<__u32>(std::min(kBatch, n - i));
            const int rc = bpf_map_delete_batch(fd, k + i * s.key_size, &count, nullptr);
            i += std::min<std::size_t>(count, n - i);
            if (rc == 0) continue;
        }
        // A batch stops at a key that is not there (fine here) or one the
        // kernel refuses: that one alone.
        if (i == n) break;
        if (bpf_map_delete_elem(fd, k + i * s.key_size) != 0 && errno != ENOENT) throw_errno(what);
        ++i;
    }
}

void KernelMaps::zero(Map m, const std::vector<std::uint32_t>& keys, const char* what) {
    const Shape& s = shapes_[static_cast<int>(m)];
    // Per-CPU values are laid out 8-byte aligned, one per possible CPU.
    const std::size_t one = s.percpu ? (s.value_size + 7) / 8 * 8 : s.value_size;
    const std::size_t per_key = one * (s.percpu ? possible_cpus() : 1);
    // One batch for many keys: a reload of a million new rules must not cost
    // a million syscalls here.
    const int fd = dp_.map_fd(m);
    std::vector<unsigned char> zeros(per_key * std::min(kBatch, std::max<std::size_t>(keys.size(), 1)), 0);
    for (std::size_t i = 0; i < keys.size(); i += kBatch) {
        const std::size_t n = std::min(kBatch, keys.size() - i);
        __u32 count = static_cast<__u32>(n);
        if (bpf_map_update_batch(fd, keys.data() + i, zeros.data(), &count, nullptr) == 0 && count == n) continue;
        for (std::size_t j = i; j < i + n; ++j)
            if (bpf_map_update_elem(fd, &keys[j], zeros.data(), BPF_ANY) != 0) throw_errno(what);
    }
}

vw_stride_block* KernelMaps::stride_blocks() {
    if (!blocks_) {
        mapped_bytes_ = std::size_t(lookup_blocks()) * VW_SETS * sizeof(vw_stride_block);
        void* p = mmap(nullptr, mapped_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED,
                       dp_.map_fd(Map::stride_blocks), 0);
        if (p == MAP_FAILED) throw_errno("mapping the stride-table blocks");
        blocks_ = static_cast<vw_stride_block*>(p);
    }
    return blocks_;
}

void KernelMaps::grace_period() {
    // MEMBARRIER_CMD_GLOBAL is synchronize_rcu() in the kernel, and every
    // XDP run is an RCU read-side section. Without it (nohz_full kernels) fall
    // back to a sleep far longer than any XDP run.
    if (syscall(__NR_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0) != 0)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
}

MemoryMaps::MemoryMaps(std::uint32_t max_rules, std::uint32_t lookup_blocks)
    : max_rules_(max_rules), lookup_blocks_(lookup_blocks), blocks_(std::size_t(lookup_blocks) * VW_SETS) {
    std::memset(blocks_.data(), 0, blocks_.size() * sizeof(vw_stride_block));
}

void MemoryMaps::write_or_fail(const char* what) {
    ++writes;
    if (fail_in_) {
        if (*fail_in_ == 0) {
            fail_in_.reset();
            throw BpfError(what, EIO);
        }
        --*fail_in_;
    }
}

bool MemoryMaps::lookup(Map m, const void* key, void* value) const {
    const int i = static_cast<int>(m);
    auto it = maps_[i].find(std::string(static_cast<const char*>(key), map_info(m).key_size));
    if (it == maps_[i].end()) return false;
    std::memcpy(value, it->second.data(), it->second.size());
    return true;
}

void MemoryMaps::update(Map m, const void* key, const void* value, const char* what) {
    write_or_fail(what);
    const int i = static_cast<int>(m);
    maps_[i][std::string(static_cast<const char*>(key), map_info(m).key_size)] =
        std::string(static_cast<const char*>(value), map_info(m).value_size);
}

void MemoryMaps::remove(Map m, const void* key, const char* what) {
    write_or_fail(what);
    const int i = static_cast<int>(m);
    maps_[i].erase(std::string(static_cast<const char*>(key), map_info(m).key_size));
}

void MemoryMaps::for_each_key(Map m, const std::function<void(const void*)>& fn) const {
    // Keys are copied first: fn may write the map (as get_next_key allows).
    std::vector<std::string> keys;
    for (const auto& [k, v] : maps_[static_cast<int>(m)]) keys.push_back(k);
    for (const auto& k : keys) fn(k.data());
}

void MemoryMaps::zero(Map m, const std::vector<std::uint32_t>& keys, const char* what) {
    if (keys.empty()) return;
    write_or_fail(what);
    const int i = static_cast<int>(m);
    for (std::uint32_t k : keys)
        maps_[i][std::string(reinterpret_cast<const char*>(&k), 4)] = std::string(map_info(m).value_size, '\0');
}

}  // namespace vaultwall::bpfmaps
