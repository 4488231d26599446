#include "bpfmaps/datapath.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "bpfmaps/error.hpp"
#include "vaultwall_bpf.skel.h"
#include "vaultwall_abi.h"

namespace vaultwall::bpfmaps {

namespace fs = std::filesystem;

namespace {

bpf_map* skel_map(vaultwall_bpf* s, Map m) {
    switch (m) {
#define VW_MAP_CASE(e, name, key, value, role) \
    case Map::e: return s->maps.name;
        VW_MAP_LIST(VW_MAP_CASE)
#undef VW_MAP_CASE
        case Map::count_: break;
    }
    throw std::logic_error("unknown map");
}

// libbpf's own messages: warnings and errors only, minus the note that it
// skips libxdp's .xdp_run_config section (libxdp reads that, libbpf need not).
int libbpf_print(enum libbpf_print_level level, const char* fmt, va_list args) {
    if (level == LIBBPF_DEBUG) return 0;
    if (std::strstr(fmt, "skipping unrecognized data section")) return 0;
    return vfprintf(stderr, fmt, args);
}

std::uint32_t map_max_entries(int fd) {
    bpf_map_info info{};
    __u32 len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) throw_errno("reading map info");
    return info.max_entries;
}

}  // namespace

std::unique_ptr<Datapath> Datapath::open(const LoadOptions& opts) {
    static const bool quiet = (libbpf_set_print(libbpf_print), true);
    (void)quiet;
    std::unique_ptr<Datapath> dp(new Datapath());
    dp->skel_ = vaultwall_bpf__open();
    if (!dp->skel_) throw_errno("opening the embedded BPF object");
    dp->max_rules_ = opts.max_rules ? opts.max_rules : VW_DEFAULT_MAX_RULES;
    if (dp->max_rules_ < 2) throw std::invalid_argument("max_rules must be at least 2");
    // Both rule sets share one trie; rule ids index the per-CPU hit counters.
    // IPv4 and IPv6 rules share the rule ids (and so the hit counters).
    if (bpf_map__set_max_entries(dp->skel_->maps.vw_rules, VW_SETS * dp->max_rules_) ||
        bpf_map__set_max_entries(dp->skel_->maps.vw_rules6, VW_SETS * dp->max_rules_) ||
        bpf_map__set_max_entries(dp->skel_->maps.vw_rules6_hash, VW_SETS * dp->max_rules_) ||
        bpf_map__set_max_entries(dp->skel_->maps.vw_rule_hits, dp->max_rules_))
        throw_errno("sizing the rule maps");
    dp->lookup_blocks_ = opts.lookup_blocks ? opts.lookup_blocks : VW_DEFAULT_STRIDE_BLOCKS;
    if (dp->lookup_blocks_ > kMaxLookupBlocks)
        throw std::invalid_argument("lookup_blocks must be at most " + std::to_string(kMaxLookupBlocks) +
                                    " per rule set");
    if (bpf_map__set_max_entries(dp->skel_->maps.vw_stride_blocks, VW_SETS * dp->lookup_blocks_))
        throw_errno("sizing the stride-table blocks");
    return dp;
}

std::unique_ptr<Datapath> Datapath::open_and_load(const LoadOptions& opts) {
    auto dp = open(opts);
    dp->load();
    return dp;
}

void Datapath::load() {
    if (int err = vaultwall_bpf__load(skel_); err) {
        errno = -err;
        throw_errno("loading the XDP program (verifier or map creation)");
    }
    collect_fds();
}

void Datapath::adopt_loaded() { collect_fds(); }

void Datapath::collect_fds() {
    for (const auto& m : kMaps) map_fds_[static_cast<int>(m.map)] = bpf_map__fd(skel_map(skel_, m.map));
    main_prog_fd_ = bpf_program__fd(skel_->progs.xdp_vaultwall);
    explain_prog_fd_ = bpf_program__fd(skel_->progs.xdp_vw_explain);
    owns_fds_ = false;
}

std::unique_ptr<Datapath> Datapath::open_pinned(const std::string& dir) {
    std::unique_ptr<Datapath> dp(new Datapath());
    dp->owns_fds_ = true;
    for (int i = 0; i < static_cast<int>(Map::count_); ++i) dp->map_fds_[i] = -1;
    for (const auto& m : kMaps) {
        auto path = dir + "/" + m.name;
        int& fd = dp->map_fds_[static_cast<int>(m.map)];
        fd = bpf_obj_get(path.c_str());
        if (fd < 0) throw_errno("opening pinned map " + path);
    }
    dp->main_prog_fd_ = bpf_obj_get((dir + "/" + kMainProgPin).c_str());
    if (dp->main_prog_fd_ < 0) throw_errno("opening pinned program " + dir + "/" + kMainProgPin);
    dp->explain_prog_fd_ = bpf_obj_get((dir + "/" + kExplainProgPin).c_str());
    if (dp->explain_prog_fd_ < 0)
        throw_errno("opening pinned program " + dir + "/" + kExplainProgPin);
    dp->max_rules_ = map_max_entries(dp->map_fd(Map::rule_hits));
    dp->lookup_blocks_ = map_max_entries(dp->map_fd(Map::stride_blocks)) / VW_SETS;
    return dp;
}

Datapath::~Datapath() {
    if (owns_fds_) {
        for (int fd : map_fds_)
            if (fd >= 0) close(fd);
        if (main_prog_fd_ >= 0) close(main_prog_fd_);
        if (explain_prog_fd_ >= 0) close(explain_prog_fd_);
    }
    if (skel_) vaultwall_bpf__destroy(skel_);
}

bpf_object* Datapath::object() const { return skel_ ? skel_->obj : nullptr; }

void Datapath::pin(const std::string& dir) const {
    fs::create_directories(dir);
    for (const auto& m : kMaps) {
        auto path = dir + "/" + m.name;
        if (bpf_obj_pin(map_fd(m.map), path.c_str()) != 0) throw_errno("pinning " + path);
    }
    for (auto [fd, name] : {std::pair{main_prog_fd_, kMainProgPin},
                            std::pair{explain_prog_fd_, kExplainProgPin}}) {
        auto path = dir + "/" + name;
        if (bpf_obj_pin(fd, path.c_str()) != 0) throw_errno("pinning " + path);
    }
}

void Datapath::unpin(const std::string& dir) {
    std::error_code ec;
    for (const auto& m : kMaps) fs::remove(dir + "/" + m.name, ec);
    fs::remove(dir + "/" + kMainProgPin, ec);
    fs::remove(dir + "/" + kExplainProgPin, ec);
    fs::remove(dir, ec);  // only when empty
}

void ensure_bpffs(const std::string& pin_root) {
    // A pin root inside an existing bpffs (the usual /sys/fs/bpf) is enough.
    fs::path p = pin_root;
    while (!p.empty() && !fs::exists(p)) p = p.parent_path();
    struct statfs st {};
    if (!p.empty() && statfs(p.c_str(), &st) == 0 && st.f_type == BPF_FS_MAGIC) return;
    if (statfs("/sys/fs/bpf", &st) == 0 && st.f_type == BPF_FS_MAGIC) return;
    if (mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700") != 0)
        throw_errno("mounting bpffs at /sys/fs/bpf");
}

}  // namespace vaultwall::bpfmaps
