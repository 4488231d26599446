#include "bpfmaps/stride_tables.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>


namespace vaultwall::bpfmaps {

namespace {
static_assert(VW_STRIDE_BITS * VW_STRIDE_LEVELS == 32, "the levels cover an IPv4 address");

vw_scope_key scope_key(std::uint32_t set, std::uint64_t scope) {
    return {set, static_cast<std::uint32_t>(scope >> 32), static_cast<std::uint32_t>(scope)};
}

unsigned byte_at(std::uint32_t addr, unsigned level) {
    return (addr >> (32 - VW_STRIDE_BITS * (level + 1))) & (VW_STRIDE_FANOUT - 1);
}
}  // namespace

StrideImage build_stride_image(std::vector<StridePrefix> rules) {
    // Shorter prefixes first: a rule then only ever fills entries that hold
    // a shorter covering rule (or nothing), never a child block, because a
    // child below level L is made only by a rule longer than 8 * (L + 1).
    // (A stable bucket pass by length: a comparison sort here was most of a
    // one-rule reload's stride rebuild at 125k rules a scope.)
    {
        std::size_t start[34] = {};
        for (const auto& r : rules) ++start[std::min<unsigned>(r.len, 32) + 1];
        for (unsigned l = 1; l < 34; ++l) start[l] += start[l - 1];
        std::vector<StridePrefix> by_len(rules.size());
        for (const auto& r : rules) by_len[start[std::min<unsigned>(r.len, 32)]++] = r;
        rules = std::move(by_len);
    }
    StrideImage img;
    img.blocks.emplace_back();
    std::memset(&img.blocks[0], 0, sizeof(vw_stride_block));
    for (const auto& r : rules) {
        if (r.len > 32 || r.id == 0 || (r.id & VW_STRIDE_CHILD))
            throw std::invalid_argument("stride tables: bad rule (prefix length or id)");
        std::size_t blk = 0;
        for (unsigned level = 0; level < VW_STRIDE_LEVELS; ++level) {
            const unsigned idx = byte_at(r.addr, level);
            const unsigned level_end = VW_STRIDE_BITS * (level + 1);
            if (r.len <= level_end) {
                const unsigned span = 1u << (level_end - r.len);
                const unsigned first = idx & ~(span - 1);
                std::fill_n(img.blocks[blk].entry + first, span, r.id);
                break;
            }
            std::uint32_t e = img.blocks[blk].entry[idx];
            if (!(e & VW_STRIDE_CHILD)) {
                // A new block inherits the rule covering this entry.
                vw_stride_block child;
                std::fill_n(child.entry, VW_STRIDE_FANOUT, e);
                img.blocks.push_back(child);
                e = VW_STRIDE_CHILD | static_cast<std::uint32_t>(img.blocks.size() - 1);
                img.blocks[blk].entry[idx] = e;
            }
            blk = e & ~VW_STRIDE_CHILD;
        }
    }
    return img;
}

std::uint32_t stride_image_lookup(const StrideImage& image, std::uint32_t addr) {
    std::size_t blk = 0;
    for (unsigned level = 0; level < VW_STRIDE_LEVELS && blk < image.blocks.size(); ++level) {
        const std::uint32_t e = image.blocks[blk].entry[byte_at(addr, level)];
        if (!(e & VW_STRIDE_CHILD)) return e;
        blk = e & ~VW_STRIDE_CHILD;
    }
    return 0;
}

StrideTables::StrideTables(MapBackend& maps)
    : maps_(maps), per_set_(maps.lookup_blocks()), blocks_(maps.stride_blocks()) {
    for (std::uint32_t s = 0; s < VW_SETS; ++s) relearn(s);
}

void StrideTables::relearn(std::uint32_t set) {
    SetTables& t = sets_[set];
    t = SetTables{};
    const std::uint32_t base = set * per_set_, end = base + per_set_;
    std::vector<bool> owned(per_set_, false);
    maps_.each_key<vw_scope_key>(Map::scopes, [&](const vw_scope_key& k) {
        vw_scope v{};
        if (k.set != set || !maps_.get(Map::scopes, k, v)) return;
        Owned o;
        o.trie = v.flags & VW_SCOPE_TRIE;
        // Walk the scope's blocks from its root; an index outside this set's
        // range is ignored (the datapath's bounds check makes it "no rule").
        std::vector<std::uint32_t> todo;
        if (!o.trie) todo.push_back(v.root);
        while (!todo.empty()) {
            std::uint32_t b = todo.back();
            todo.pop_back();
            if (b < base || b >= end || owned[b - base]) continue;
            owned[b - base] = true;
            o.blocks.push_back(b);
            for (std::uint32_t e : blocks_[b].entry)
                if (e & VW_STRIDE_CHILD) todo.push_back(e & ~VW_STRIDE_CHILD);
        }
        t.scopes[std::uint64_t(k.vault_id) << 32 | k.vni] = std::move(o);
    });
    for (std::uint32_t i = per_set_; i-- > 0;)
        if (!owned[i]) t.free.push_back(base + i);
}

void StrideTables::release(SetTables& t, Owned& o) {
    // Pushed in reverse, so the next scope reuses them in the same order.
    for (auto it = o.blocks.rbegin(); it != o.blocks.rend(); ++it) t.free.push_back(*it);
    o.blocks.clear();
}

void StrideTables::write_scope_entry(std::uint32_t set, std::uint64_t scope, const vw_scope& value) {
    maps_.put(Map::scopes, scope_key(set, scope), value, "writing a rule scope");
}

bool StrideTables::write_scope(std::uint32_t set, std::uint64_t scope, std::vector<StridePrefix> rules) {
    if (rules.empty()) {
        remove_scope(set, scope);
        return true;
    }
    SetTables& t = sets_[set];
    Owned& o = t.scopes[scope];
    release(t, o);
    const StrideImage img = build_stride_image(std::move(rules));
    if (img.blocks.size() > t.free.size()) {
        o.trie = true;
        write_scope_entry(set, scope, vw_scope{0, VW_SCOPE_TRIE});
        return false;
    }
    o.trie = false;
    o.blocks.reserve(img.blocks.size());
    for (std::size_t i = 0; i < img.blocks.size(); ++i) {
        o.blocks.push_back(t.free.back());
        t.free.pop_back();
    }
    for (std::size_t i = 0; i < img.blocks.size(); ++i) {
        vw_stride_block& dst = blocks_[o.blocks[i]];
        for (unsigned j = 0; j < VW_STRIDE_FANOUT; ++j) {
            const std::uint32_t e = img.blocks[i].entry[j];
            dst.entry[j] = (e & VW_STRIDE_CHILD) ? VW_STRIDE_CHILD | o.blocks[e & ~VW_STRIDE_CHILD] : e;
        }
    }
    write_scope_entry(set, scope, vw_scope{o.blocks[0], 0});
    return true;
}

void StrideTables::remove_scope(std::uint32_t set, std::uint64_t scope) {
    SetTables& t = sets_[set];
    auto it = t.scopes.find(scope);
    if (it == t.scopes.end()) return;
    maps_.del(Map::scopes, scope_key(set, scope), "deleting a rule scope");
    release(t, it->second);
    t.scopes.erase(it);
}

bool StrideTables::has_scope(std::uint32_t set, std::uint64_t scope) const {
    return sets_[set].scopes.count(scope) != 0;
}

std::vector<std::uint64_t> StrideTables::scopes(std::uint32_t set) const {
    std::vector<std::uint64_t> out;
    for (const auto& [scope, o] : sets_[set].scopes) out.push_back(scope);
    return out;
}

StrideTables::Usage StrideTables::usage(std::uint32_t set) const {
    Usage u;
    u.blocks_per_set = per_set_;
    u.blocks_used = per_set_ - sets_[set].free.size();
    for (const auto& [scope, o] : sets_[set].scopes) (o.trie ? u.trie_scopes : u.stride_scopes)++;
    return u;
}

}  // namespace vaultwall::bpfmaps
