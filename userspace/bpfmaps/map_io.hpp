// Small typed wrappers over bpf(2) map calls, throwing BpfError on failure.
#pragma once

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <functional>
#include <string>
#include <vector>

#include "bpfmaps/error.hpp"

namespace vaultwall::bpfmaps {

template <class K, class V>
void map_update(int fd, const K& key, const V& value, const char* what) {
    if (bpf_map_update_elem(fd, &key, &value, BPF_ANY) != 0) throw_errno(what);
}

template <class K>
void map_delete(int fd, const K& key, const char* what) {
    if (bpf_map_delete_elem(fd, &key) != 0 && errno != ENOENT) throw_errno(what);
}

template <class K, class V>
bool map_lookup(int fd, const K& key, V& value) {
    return bpf_map_lookup_elem(fd, &key, &value) == 0;
}

// Calls fn(key) for every key of a hash or trie map.
template <class K>
void map_for_each_key(int fd, const std::function<void(const K&)>& fn) {
    K key{}, next{};
    const void* prev = nullptr;
    while (bpf_map_get_next_key(fd, prev, &next) == 0) {
        fn(next);
        key = next;
        prev = &key;
    }
}

inline int possible_cpus() {
    static const int n = libbpf_num_possible_cpus();
    return n;
}

// Sum of a per-CPU value across CPUs; V must support +=.
template <class K, class V>
V percpu_sum(int fd, const K& key) {
    std::vector<V> values(possible_cpus());
    V sum{};
    if (bpf_map_lookup_elem(fd, &key, values.data()) != 0) return sum;
    for (const auto& v : values) sum += v;
    return sum;
}

template <class K, class V>
void percpu_zero(int fd, const K& key, const char* what) {
    std::vector<V> values(possible_cpus());
    if (bpf_map_update_elem(fd, &key, values.data(), BPF_ANY) != 0) throw_errno(what);
}

}  // namespace vaultwall::bpfmaps
