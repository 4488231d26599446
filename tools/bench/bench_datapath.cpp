// vaultwall-bench: datapath and reload benchmarks. Every figure is reported
// beside a baseline measured in the same run (these machines are shared and
// noisy): the XDP_DROP-only program is the floor, one kernel LPM-trie lookup
// the reference.
//
//   vaultwall-bench datapath [--sizes 10,1000,...] [--packets N] [--sweeps N] [--json]
//   vaultwall-bench datapath6 [--sizes 100000,1000000] [--packets N] [--sweeps N] [--json]
//   vaultwall-bench datapath-ab --before-obj OBJ [--after-obj OBJ] [--copies K] [--sizes 1000,...] [--packets N] [--rounds N] [--json]
//   vaultwall-bench reload   [--sizes 1000,100000,...] [--json]
//   vaultwall-bench events   [--packets N] [--sweeps N] [--json]
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sched.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <linux/bpf.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "bpfmaps/counters.hpp"
#include "bpfmaps/datapath.hpp"
#include "bpfmaps/drop_events.hpp"
#include "bpfmaps/installer.hpp"
#include "bpfmaps/prog_run.hpp"
#include "packet/packet.hpp"
#include "rules/compiled.hpp"
#include "rules/model.hpp"
#include "vaultwall_bpf.skel.h"
#include "vw_bench_bpf.skel.h"

namespace {

using namespace vaultwall;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr std::uint32_t kVaults = 8;              // vault N's endpoint is 203.0.113.N:443
constexpr std::uint32_t kOverlayBase = 0xC6120000;  // 198.18.0.0/15: rule sources
constexpr std::uint32_t kOverlayBits = 17;
constexpr std::uint32_t kVtep = 0xC6120005, kHost = 0xC6120001;
constexpr std::uint32_t kVni = 5001;

std::uint32_t endpoint_addr(std::uint32_t vault_index) { return 0xCB007100u | (vault_index + 1); }

// `n` distinct (vault, prefix) rules, mostly /32s with some /20../31,
// spread over kVaults vaults; vni 0 (ip rules) or kVni (vnet rules).
rules::CompiledRuleSet make_rules(std::size_t n, std::uint32_t vni, std::mt19937_64& rng) {
    rules::CompiledRuleSet s;
    s.vteps = {{0xC6120000, 24}};
    for (std::uint32_t v = 0; v < kVaults; ++v) {
        s.vaults.push_back({"bench-" + std::to_string(v + 1), false, false, false});
        s.endpoints.push_back({v, 0, endpoint_addr(v), 443, rules::Proto::tcp, false});
    }
    std::set<std::tuple<std::uint32_t, std::uint32_t, std::uint8_t>> seen;
    std::uniform_int_distribution<std::uint32_t> addr(0, (1u << kOverlayBits) - 1), vault(0, kVaults - 1),
        len_short(20, 31), pct(0, 99);
    while (s.rules.size() < n) {
        std::uint8_t len = pct(rng) < 70 ? 32 : static_cast<std::uint8_t>(len_short(rng));
        std::uint32_t a = (kOverlayBase | addr(rng)) & rules::Ipv4Prefix::mask(len);
        std::uint32_t v = vault(rng);
        if (seen.insert({v, a, len}).second) s.rules.push_back({v, vni, {a, len}, "bench"});
    }
    return s;
}

// The working set: distinct flows to the vaults' endpoints, sources inside
// one of the destination vault's rules (85%) or anywhere in the range.
std::vector<packet::Flow> make_flows(const rules::CompiledRuleSet& s, std::size_t count, std::mt19937_64& rng) {
    std::vector<std::vector<const rules::CompiledRule*>> by_vault(kVaults);
    for (const auto& r : s.rules) by_vault[r.vault].push_back(&r);
    std::uniform_int_distribution<std::uint32_t> pct(0, 99), vault(0, kVaults - 1),
        addr(0, (1u << kOverlayBits) - 1);
    std::vector<packet::Flow> out;
    out.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
        std::uint32_t v = vault(rng);
        std::uint32_t src = kOverlayBase | addr(rng);
        if (!by_vault[v].empty() && pct(rng) < 85) {
            const auto* r = by_vault[v][rng() % by_vault[v].size()];
            std::uint32_t size = r->prefix.len == 32 ? 1 : (1u << (32 - r->prefix.len));
            src = r->prefix.addr + static_cast<std::uint32_t>(rng() % size);
        }
        out.push_back({src, endpoint_addr(v), static_cast<std::uint16_t>(1024 + rng() % 60000), 443});
    }
    return out;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

// Kernel memory charged to a map (fdinfo "memlock").
std::uint64_t map_memlock(int fd) {
    std::ifstream in("/proc/self/fdinfo/" + std::to_string(fd));
    std::string key;
    std::uint64_t value = 0;
    while (in >> key) {
        if (key == "memlock:") {
            in >> value;
            return value;
        }
        in.ignore(1 << 20, '\n');
    }
    return 0;
}

// The driver, the two baselines and the LPM reference's trie, loaded with a
// working set of flows written into one template frame.
struct Bench {
    struct Flow {
        std::uint32_t saddr, daddr;  // network order
        std::uint16_t sport, dport;
    };
    struct Flow6 {
        std::uint8_t saddr[16], daddr[16];
        std::uint16_t sport, dport;  // network order
    };
    vw_bench_bpf* skel = nullptr;
    packet::Bytes frame;
    std::size_t flows = 0;
    int driver = -1;  // the driver program of the working set's family

    Bench(const std::vector<packet::Flow>& working_set, bool vxlan, std::uint32_t lpm_entries)
        : flows(working_set.size()) {
        auto inner = packet::tcp_frame(working_set.at(0), packet::tcp_flags::ack);
        frame = vxlan ? packet::vxlan_frame(kVtep, kHost, kVni, inner) : inner;
        open_and_load(frame.size() - inner.size() + 14, lpm_entries, 16);
        driver = bpf_program__fd(skel->progs.xdp_bench_driver);
        for (std::uint32_t i = 0; i < flows; ++i) {
            const auto& f = working_set[i];
            Flow v{htonl(f.src), htonl(f.dst), htons(f.sport), htons(f.dport)};
            if (bpf_map_update_elem(bpf_map__fd(skel->maps.bench_flows), &i, &v, BPF_ANY))
                throw std::runtime_error("loading the working set");
        }
    }

    // Plain IPv6 TCP; the IPv6 LPM reference gets `lpm6_entries`.
    Bench(const std::vector<packet::Flow6>& working_set, std::uint32_t lpm6_entries) : flows(working_set.size()) {
        frame = packet::tcp_frame6(working_set.at(0), packet::tcp_flags::ack);
        open_and_load(packet::kEthHeaderLen, 16, lpm6_entries);
        driver = bpf_program__fd(skel->progs.xdp_bench_driver6);
        for (std::uint32_t i = 0; i < flows; ++i) {
            const auto& f = working_set[i];
            Flow6 v{};
            std::memcpy(v.saddr, f.src.data(), 16);
            std::memcpy(v.daddr, f.dst.data(), 16);
            v.sport = htons(f.sport);
            v.dport = htons(f.dport);
            if (bpf_map_update_elem(bpf_map__fd(skel->maps.bench_flows6), &i, &v, BPF_ANY))
                throw std::runtime_error("loading the working set");
        }
    }

    void open_and_load(std::size_t ip_offset, std::uint32_t lpm_entries, std::uint32_t lpm6_entries) {
        skel = vw_bench_bpf__open();
        if (!skel) throw std::runtime_error("opening the benchmark programs failed");
        skel->rodata->bench_nflows = static_cast<std::uint32_t>(flows);
        skel->rodata->bench_ip_offset = static_cast<std::uint32_t>(ip_offset);
        bpf_map__set_max_entries(skel->maps.bench_flows, static_cast<std::uint32_t>(flows));
        bpf_map__set_max_entries(skel->maps.bench_flows6, static_cast<std::uint32_t>(flows));
        bpf_map__set_max_entries(skel->maps.bench_lpm, std::max<std::uint32_t>(lpm_entries, 16));
        bpf_map__set_max_entries(skel->maps.bench_lpm6, std::max<std::uint32_t>(lpm6_entries, 16));
        if (vw_bench_bpf__load(skel)) throw std::runtime_error("loading the benchmark programs failed");
    }
    ~Bench() { vw_bench_bpf__destroy(skel); }

    void fill_lpm(const rules::CompiledRuleSet& s, const std::vector<std::uint32_t>& vault_ids) {
        struct {
            std::uint32_t prefixlen, vault_id, addr;
        } key;
        std::uint32_t one = 1;
        int fd = bpf_map__fd(skel->maps.bench_lpm);
        for (const auto& r : s.rules) {
            key = {32u + r.prefix.len, vault_ids[r.vault], htonl(r.prefix.addr)};
            if (bpf_map_update_elem(fd, &key, &one, BPF_ANY)) throw std::runtime_error("filling the LPM reference");
        }
    }

    void fill_lpm6(const rules::CompiledRuleSet& s, const std::vector<std::uint32_t>& vault_ids) {
        struct {
            std::uint32_t prefixlen, vault_id;
            std::uint8_t addr[16];
        } key;
        std::uint32_t one = 1;
        int fd = bpf_map__fd(skel->maps.bench_lpm6);
        for (const auto& r : s.rules6) {
            key.prefixlen = 32u + r.prefix.len;
            key.vault_id = vault_ids[r.vault];
            std::memcpy(key.addr, r.prefix.addr.data(), 16);
            if (bpf_map_update_elem(fd, &key, &one, BPF_ANY)) throw std::runtime_error("filling the IPv6 LPM reference");
        }
    }

    // Mean ns per run of `prog_fd` behind the driver, over `rounds` passes of
    // the working set, all inside one BPF_PROG_TEST_RUN.
    double ns_per_packet(int prog_fd, std::uint32_t rounds) {
        std::uint32_t zero = 0;
        if (bpf_map_update_elem(bpf_map__fd(skel->maps.bench_target), &zero, &prog_fd, BPF_ANY))
            throw std::runtime_error("setting the program under test");
        std::vector<std::uint32_t> cursor(libbpf_num_possible_cpus(), 0);
        bpf_map_update_elem(bpf_map__fd(skel->maps.bench_cursor), &zero, cursor.data(), BPF_ANY);
        LIBBPF_OPTS(bpf_test_run_opts, opts);
        opts.data_in = frame.data();
        opts.data_size_in = static_cast<std::uint32_t>(frame.size());
        opts.repeat = static_cast<std::uint32_t>(flows) * rounds;
        if (bpf_prog_test_run_opts(driver, &opts))
            throw std::runtime_error("BPF_PROG_TEST_RUN of the driver failed");
        if (opts.retval == XDP_ABORTED) throw std::runtime_error("the driver aborted");
        return opts.duration;
    }

    // The same, in runs of `chunk` with `between()` called after each (the
    // kernel's mean per run is unaffected by it): the events benchmark drains
    // the ring buffer there, so every event finds room as with a live reader.
    template <class Between>
    double ns_per_packet_chunked(int prog_fd, std::uint32_t runs, std::uint32_t chunk, Between between) {
        std::uint32_t zero = 0;
        if (bpf_map_update_elem(bpf_map__fd(skel->maps.bench_target), &zero, &prog_fd, BPF_ANY))
            throw std::runtime_error("setting the program under test");
        std::vector<std::uint32_t> cursor(libbpf_num_possible_cpus(), 0);
        bpf_map_update_elem(bpf_map__fd(skel->maps.bench_cursor), &zero, cursor.data(), BPF_ANY);
        double total = 0;
        for (std::uint32_t done = 0; done < runs; done += chunk) {
            LIBBPF_OPTS(bpf_test_run_opts, opts);
            opts.data_in = frame.data();
            opts.data_size_in = static_cast<std::uint32_t>(frame.size());
            opts.repeat = std::min(chunk, runs - done);
            if (bpf_prog_test_run_opts(driver, &opts))
                throw std::runtime_error("BPF_PROG_TEST_RUN of the driver failed");
            total += double(opts.duration) * opts.repeat;
            between();
        }
        return total / runs;
    }
};

// Denied-flow events (SPEC §9): the cost per dropped packet with events off
// (drop_events_per_second: 0), at the limit (every drop sends an event: a rate
// no run reaches) and past it (1000/s: all but the first thousand are
// suppressed), against events off in the same run. Every packet of the
// working set is a drop (no_rule), the case a flood makes.
int cmd_events(std::size_t packets, int sweeps, bool as_json) {
    std::mt19937_64 rng(11);
    auto rules = make_rules(10000, 0, rng);
    auto dp = bpfmaps::Datapath::open_and_load({.max_rules = 10000 + 1024});
    bpfmaps::Installer installer(*dp);
    installer.install(rules);
    std::vector<packet::Flow> flows;
    for (std::size_t i = 0; i < packets; ++i)  // 192.0.2.0/24 is in no rule
        flows.push_back({0xC0000200u | std::uint32_t(i % 256), endpoint_addr(std::uint32_t(i % kVaults)),
                         static_cast<std::uint16_t>(1024 + i % 60000), 443});
    Bench base(flows, false, 16);
    std::uint64_t events = 0;
    bpfmaps::DropEventReader reader([&](std::size_t, const vw_drop_event&) { ++events; });
    reader.add(*dp, 0);
    auto drain = [&] { reader.consume(); };
    // An event takes 88 bytes of ring (80 and a header): 5,000 fit the
    // 512 KiB between drains.
    constexpr std::uint32_t kChunk = 5000;
    static_assert(kChunk * (sizeof(vw_drop_event) + 8) <= VW_DROP_EVENTS_RING_BYTES);
    const auto runs = static_cast<std::uint32_t>(flows.size() * 2);
    struct Mode {
        const char* name;
        std::uint32_t rate;
        std::vector<double> ns;
        std::uint64_t sent = 0, suppressed = 0, lost = 0;
    };
    std::vector<Mode> modes = {{"off", 0, {}}, {"at_limit", 0xffffffffu, {}}, {"past_limit", 1000, {}}};
    std::vector<double> drop;
    for (int s = 0; s < sweeps; ++s) {
        drop.push_back(base.ns_per_packet_chunked(bpf_program__fd(base.skel->progs.xdp_drop_only), runs, kChunk, drain));
        for (auto& m : modes) {
            rules.drop_events_per_second = m.rate;
            installer.install(rules);
            auto before = bpfmaps::read_event_budget(*dp);
            m.ns.push_back(base.ns_per_packet_chunked(dp->main_prog_fd(), runs, kChunk, drain));
            auto after = bpfmaps::read_event_budget(*dp);
            m.sent += after.sent - before.sent;
            m.suppressed += after.suppressed - before.suppressed;
            m.lost += after.lost - before.lost;
        }
    }
    const double off = median(modes[0].ns);
    json j = {{"packets", flows.size()}, {"runs_per_sweep", runs}, {"sweeps", sweeps},
              {"xdp_drop_ns", median(drop)}, {"modes", json::array()}};
    for (const auto& m : modes) {
        j["modes"].push_back({{"mode", m.name},
                              {"drop_events_per_second", m.rate},
                              {"ns_per_packet", median(m.ns)},
                              {"vs_off", median(m.ns) / off},
                              {"events_sent", m.sent},
                              {"events_suppressed", m.suppressed},
                              {"events_lost", m.lost}});
        if (!as_json)
            std::printf("events %-10s (rate %10u/s): %6.1f ns per dropped packet, %.2fx events off; "
                        "sent %llu, suppressed %llu, lost %llu\n",
                        m.name, m.rate, median(m.ns), median(m.ns) / off, (unsigned long long)m.sent,
                        (unsigned long long)m.suppressed, (unsigned long long)m.lost);
    }
    if (as_json) std::cout << j.dump(2) << "\n";
    else std::printf("xdp_drop floor %.1f ns; events read by the benchmark: %llu\n", median(drop),
                     (unsigned long long)events);
    return 0;
}

json bench_datapath_size(std::size_t n, bool vxlan, std::size_t packets, int sweeps, std::mt19937_64& rng) {
    auto rules = make_rules(n, vxlan ? kVni : 0, rng);
    auto dp = bpfmaps::Datapath::open_and_load({.max_rules = static_cast<std::uint32_t>(n + 1024)});
    bpfmaps::Installer installer(*dp);
    auto rep = installer.install(rules);
    Bench base(make_flows(rules, packets, rng), vxlan, static_cast<std::uint32_t>(n + 16));
    base.fill_lpm(rules, rep.vault_ids);

    std::vector<double> vw, lpm, drop;
    for (int s = 0; s < sweeps; ++s) {  // interleaved, so noise hits all three alike
        drop.push_back(base.ns_per_packet(bpf_program__fd(base.skel->progs.xdp_drop_only), 2));
        lpm.push_back(base.ns_per_packet(bpf_program__fd(base.skel->progs.xdp_lpm_one), 2));
        vw.push_back(base.ns_per_packet(dp->main_prog_fd(), 2));
    }
    std::uint64_t mem = 0;
    for (const auto& m : bpfmaps::kMaps) mem += map_memlock(dp->map_fd(m.map));
    json j = {{"rules", n},
              {"encap", vxlan ? "vxlan" : "plain"},
              {"packets", base.flows},
              {"sweeps", sweeps},
              {"ns_per_packet", {{"vaultwall", median(vw)}, {"lpm_reference", median(lpm)}, {"xdp_drop", median(drop)}}},
              {"rules_map_memlock_bytes", map_memlock(dp->map_fd(bpfmaps::Map::rules))},
              {"lookup", {{"stride_scopes", rep.lookup.stride_scopes},
                          {"trie_scopes", rep.lookup.trie_scopes},
                          {"stride_blocks_used", rep.lookup.blocks_used},
                          {"stride_bytes_used", rep.lookup.blocks_used * sizeof(vw_stride_block)}}},
              {"all_maps_memlock_bytes", mem},
              {"lpm_reference_memlock_bytes", map_memlock(bpf_map__fd(base.skel->maps.bench_lpm))}};
    return j;
}

int cmd_datapath(const std::vector<std::size_t>& sizes, std::size_t packets, int sweeps, bool as_json) {
    std::mt19937_64 rng(42);
    json results = json::array();
    for (bool vxlan : {false, true}) {
        for (std::size_t n : sizes) {
            auto r = bench_datapath_size(n, vxlan, packets, sweeps, rng);
            results.push_back(r);
            if (!as_json) {
                const auto& ns = r["ns_per_packet"];
                double vw = ns["vaultwall"], ref = ns["lpm_reference"], drop = ns["xdp_drop"];
                std::printf("%-5s %8zu rules: vaultwall %6.1f ns  lpm-ref %6.1f ns  drop %5.1f ns  "
                            "(over floor: %6.1f vs %6.1f; ref/vaultwall %.2fx)  trie %.1f MiB, "
                            "stride blocks %.1f MiB (%d scopes on the trie)\n",
                            vxlan ? "vxlan" : "plain", n, vw, ref, drop, vw - drop, ref - drop, ref / vw,
                            double(r["rules_map_memlock_bytes"]) / (1 << 20),
                            double(r["lookup"]["stride_bytes_used"]) / (1 << 20),
                            int(r["lookup"]["trie_scopes"]));
                std::fflush(stdout);
            }
        }
    }
    if (as_json) std::cout << results.dump(2) << "\n";
    return 0;
}

// IPv6 (SPEC §11): vault N's endpoint is [2001:db8::N]:443; `n` distinct
// IPv6 rules spread over the vaults, shaped like real ones: 70% /128 hosts,
// 20% /64 subnets, 10% /48../60 sites (six prefix lengths a scope), in
// 2001:db8:0..ff::/40.
rules::Ipv6Addr endpoint6_addr(std::uint32_t vault_index) {
    rules::Ipv6Addr a{0x20, 0x01, 0x0d, 0xb8};
    a[15] = static_cast<std::uint8_t>(vault_index + 1);
    return a;
}

rules::CompiledRuleSet make_rules6(std::size_t n, std::mt19937_64& rng) {
    rules::CompiledRuleSet s;
    for (std::uint32_t v = 0; v < kVaults; ++v) {
        s.vaults.push_back({"bench-" + std::to_string(v + 1), false, false, false});
        s.endpoints6.push_back({v, 0, endpoint6_addr(v), 443, rules::Proto::tcp, false});
    }
    std::set<std::tuple<std::uint32_t, rules::Ipv6Addr, std::uint8_t>> seen;
    std::uniform_int_distribution<std::uint32_t> vault(0, kVaults - 1), pct(0, 99), site(0, 3);
    static const std::uint8_t kSites[] = {48, 52, 56, 60};
    while (s.rules6.size() < n) {
        const std::uint32_t p = pct(rng);
        const std::uint8_t len = p < 70 ? 128 : p < 90 ? 64 : kSites[site(rng)];
        rules::Ipv6Addr a{0x20, 0x01, 0x0d, 0xb8};
        const std::uint64_t hi = rng(), lo = rng();
        for (int i = 5; i < 8; ++i) a[i] = std::uint8_t(hi >> (8 * i));  // 2001:db8:00XX:XXXX::/40
        for (int i = 8; i < 16; ++i) a[i] = std::uint8_t(lo >> (8 * (i - 8)));
        a = rules::Ipv6Prefix::masked(a, len);
        const std::uint32_t v = vault(rng);
        if (seen.insert({v, a, len}).second) s.rules6.push_back({v, 0, {a, len}, "bench"});
    }
    return s;
}

std::vector<packet::Flow6> make_flows6(const rules::CompiledRuleSet& s, std::size_t count, std::mt19937_64& rng) {
    std::vector<std::vector<const rules::CompiledRule6*>> by_vault(kVaults);
    for (const auto& r : s.rules6) by_vault[r.vault].push_back(&r);
    std::uniform_int_distribution<std::uint32_t> pct(0, 99), vault(0, kVaults - 1);
    std::vector<packet::Flow6> out;
    out.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
        const std::uint32_t v = vault(rng);
        rules::Ipv6Addr src{0x20, 0x01, 0x0d, 0xb8};
        const std::uint64_t lo = rng();
        for (int b = 8; b < 16; ++b) src[b] = std::uint8_t(lo >> (8 * (b - 8)));
        for (int b = 5; b < 8; ++b) src[b] = std::uint8_t(rng());
        if (!by_vault[v].empty() && pct(rng) < 85) {  // inside one of the vault's rules
            const auto* r = by_vault[v][rng() % by_vault[v].size()];
            for (int bit = 0; bit < r->prefix.len; ++bit) {
                const std::uint8_t m = std::uint8_t(0x80 >> (bit % 8));
                src[bit / 8] = std::uint8_t((src[bit / 8] & ~m) | (r->prefix.addr[bit / 8] & m));
            }
        }
        out.push_back({src, endpoint6_addr(v), static_cast<std::uint16_t>(1024 + rng() % 60000), 443});
    }
    return out;
}

// IPv6 rule lookups against one 128-bit kernel LPM lookup (and the drop
// floor) in the same run.
int cmd_datapath6(const std::vector<std::size_t>& sizes, std::size_t packets, int sweeps, bool as_json) {
    std::mt19937_64 rng(43);
    json results = json::array();
    for (std::size_t n : sizes) {
        auto rules = make_rules6(n, rng);
        auto dp = bpfmaps::Datapath::open_and_load({.max_rules = static_cast<std::uint32_t>(n + 1024)});
        bpfmaps::Installer installer(*dp);
        auto t0 = Clock::now();
        auto rep = installer.install(rules);
        const double install_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
        Bench base(make_flows6(rules, packets, rng), static_cast<std::uint32_t>(n + 16));
        base.fill_lpm6(rules, rep.vault_ids);
        std::vector<double> vw, lpm, drop;
        for (int s = 0; s < sweeps; ++s) {
            drop.push_back(base.ns_per_packet(bpf_program__fd(base.skel->progs.xdp_drop_only), 2));
            lpm.push_back(base.ns_per_packet(bpf_program__fd(base.skel->progs.xdp_lpm6_one), 2));
            vw.push_back(base.ns_per_packet(dp->main_prog_fd(), 2));
        }
        json j = {{"rules6", n},
                  {"packets", base.flows},
                  {"sweeps", sweeps},
                  {"install_ms", install_ms},
                  {"ns_per_packet", {{"vaultwall", median(vw)}, {"lpm6_reference", median(lpm)}, {"xdp_drop", median(drop)}}},
                  {"rules6_trie_memlock_bytes", map_memlock(dp->map_fd(bpfmaps::Map::rules6))},
                  {"rules6_hash_memlock_bytes", map_memlock(dp->map_fd(bpfmaps::Map::rules6_hash))},
                  {"lpm6_reference_memlock_bytes", map_memlock(bpf_map__fd(base.skel->maps.bench_lpm6))}};
        results.push_back(j);
        if (!as_json) {
            const double v = median(vw), r = median(lpm), d = median(drop);
            std::printf("ipv6  %8zu rules: vaultwall %6.1f ns  lpm6-ref %6.1f ns  drop %5.1f ns  (over floor: %6.1f "
                        "vs %6.1f; ref/vaultwall %.2fx)  hash %.1f MiB + trie %.1f MiB (ref trie %.1f MiB); "
                        "install %.0f ms\n",
                        n, v, r, d, v - d, r - d, r / v, double(j["rules6_hash_memlock_bytes"]) / (1 << 20),
                        double(j["rules6_trie_memlock_bytes"]) / (1 << 20),
                        double(j["lpm6_reference_memlock_bytes"]) / (1 << 20), install_ms);
            std::fflush(stdout);
        }
    }
    if (as_json) std::cout << results.dump(2) << "\n";
    return 0;
}

// A build's attached program (an older commit's vaultwall.bpf.o, or this
// build's own object again), loaded against `dp`'s maps: both programs then
// classify with the very same rules, and the benchmark alternates between
// them in one process. Every map of the object must be one of this build's
// (same name; libbpf refuses a different key or value size at load).
class OtherMain {
public:
    // From a file.
    OtherMain(const std::string& path, const bpfmaps::Datapath& dp)
        : OtherMain(path, bpf_object__open_file(path.c_str(), nullptr), dp) {}
    // This build's object, as embedded in the library: another JIT image of
    // the very program dp runs.
    explicit OtherMain(const bpfmaps::Datapath& dp) : OtherMain("this build's object", open_embedded(), dp) {}
    int fd() const { return fd_; }

private:
    static bpf_object* open_embedded() {
        std::size_t size = 0;
        const void* bytes = vaultwall_bpf__elf_bytes(&size);
        return bpf_object__open_mem(bytes, size, nullptr);
    }
    OtherMain(const std::string& what, bpf_object* obj, const bpfmaps::Datapath& dp) : obj_(obj, bpf_object__close) {
        if (!obj_) throw std::runtime_error("opening " + what + ": " + std::strerror(errno));
        bpf_map* m;
        bpf_object__for_each_map(m, obj_.get()) {
            if (bpf_map__is_internal(m)) continue;  // .rodata and the like stay its own
            const std::string name = bpf_map__name(m);
            const auto* info = std::find_if(std::begin(bpfmaps::kMaps), std::end(bpfmaps::kMaps),
                                            [&](const bpfmaps::MapInfo& i) { return name == i.name; });
            if (info == std::end(bpfmaps::kMaps))
                throw std::runtime_error(what + ": map " + name + " is not one of this build's maps");
            if (int err = bpf_map__reuse_fd(m, dp.map_fd(info->map)))
                throw std::runtime_error(what + ": reusing map " + name + ": " + std::strerror(-err));
        }
        bpf_program* main = bpf_object__find_program_by_name(obj_.get(), "xdp_vaultwall");
        if (!main) throw std::runtime_error(what + " has no program xdp_vaultwall");
        bpf_program* p;
        bpf_object__for_each_program(p, obj_.get()) bpf_program__set_autoload(p, p == main);
        if (int err = bpf_object__load(obj_.get()))
            throw std::runtime_error("loading " + what + ": " + std::strerror(-err));
        fd_ = bpf_program__fd(main);
    }

    std::unique_ptr<bpf_object, decltype(&bpf_object__close)> obj_;
    int fd_ = -1;
};

// Packets by verdict reason and vault: what a run of the working set did.
std::vector<std::uint64_t> verdict_packets(const bpfmaps::Datapath& dp, const std::vector<std::uint32_t>& vault_ids) {
    auto snap = bpfmaps::read_counters(dp, vault_ids);
    std::vector<std::uint64_t> out;
    for (const auto& c : snap.global) out.push_back(c.packets);
    for (const auto& [id, counts] : snap.vaults)
        for (const auto& c : counts) out.push_back(c.packets);
    return out;
}

struct Quantiles {
    double min, q1, median, q3, max;
};
Quantiles quantiles(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    auto at = [&](double q) {  // linear between the closest ranks
        const double pos = q * double(v.size() - 1);
        const auto lo = static_cast<std::size_t>(pos);
        const std::size_t hi = std::min(lo + 1, v.size() - 1);
        return v[lo] + (v[hi] - v[lo]) * (pos - double(lo));
    };
    return {v.front(), at(0.25), at(0.5), at(0.75), v.back()};
}

json quantiles_json(const std::vector<double>& v) {
    const auto q = quantiles(v);
    return {{"min", q.min}, {"q1", q.q1}, {"median", q.median}, {"q3", q.q3}, {"max", q.max}};
}

// IPv4 before and after: this build's program, or after_obj's ("after"),
// against another build's ("before"), each side `copies` loads (OtherMain),
// on the same maps and working sets, in many short rounds. A round measures the XDP_DROP floor, both programs (the order
// swapped every round, so a drift in the machine's speed hits both alike) and
// the floor again; its ratio is after / before, raw and over the round's
// floor. Rounds are the unit: the median ratio and its spread over rounds are
// the result, not one long measurement that a burst of load could skew. Each
// round also checks that both programs counted the same packets under the
// same reasons and vaults.
int cmd_datapath_ab(const std::string& before_obj, const std::string& after_obj, int copies,
                    const std::vector<std::size_t>& sizes, std::size_t packets, int rounds, bool as_json) {
    std::mt19937_64 rng(44);
    json results = json::array();
    struct Shape {
        const char* name;
        bool vxlan;
    };
    // spread: make_flows (85% inside one of the destination vault's rules);
    // hot: one source (inside a rule) for every packet, ports varying;
    // nomatch: sources in 192.0.2.0/24, which no rule holds.
    const Shape shapes[] = {{"spread", false}, {"hot", false}, {"nomatch", false}, {"vxlan-spread", true}};
    // One CPU: the driver's cursor is per CPU, so a run that migrated midway
    // (the kernel may reschedule inside a long repeat) would restart the
    // working set on the other CPU, and the two programs would no longer see
    // the same packets.
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu(), &one);
    if (sched_setaffinity(0, sizeof(one), &one)) throw std::runtime_error("pinning to one CPU failed");
    constexpr std::uint32_t kPasses = 3;  // passes over the working set a measurement
    if (!as_json)
        std::printf("datapath-ab: after = %s, before = %s; %d copies of each, %d rounds, %zu packets a working set, "
                    "%u passes a measurement, on CPU %d\n",
                    after_obj.empty() ? "this build" : after_obj.c_str(), before_obj.c_str(), copies, rounds, packets,
                    kPasses, sched_getcpu());
    for (std::size_t n : sizes) {
        for (bool vxlan : {false, true}) {
            auto rules = make_rules(n, vxlan ? kVni : 0, rng);
            auto dp = bpfmaps::Datapath::open_and_load({.max_rules = static_cast<std::uint32_t>(n + 1024)});
            bpfmaps::Installer installer(*dp);
            auto rep = installer.install(rules);
            // Each side is `copies` separately loaded programs, so as many JIT
            // images, each where the kernel put it: with one image a side, A/A
            // runs of one object against itself came out ~1% apart (1.010,
            // 1.011), with four or eight 1.001-1.006 (docs/benchmarks.md,
            // "Placement bias"): a single load's luck is charged to the code.
            // Round r runs before copy r % copies and after copy
            // (r / copies) % copies, so the rounds cover the pairs alike.
            std::vector<std::unique_ptr<OtherMain>> before_progs, after_progs;
            for (int i = 0; i < copies; ++i) {
                before_progs.push_back(std::make_unique<OtherMain>(before_obj, *dp));
                // Without --after-obj: this build's program, dp's own first.
                if (!after_obj.empty())
                    after_progs.push_back(std::make_unique<OtherMain>(after_obj, *dp));
                else if (i > 0)
                    after_progs.push_back(std::make_unique<OtherMain>(*dp));
            }
            auto before_fd = [&](int r) { return before_progs[r % copies]->fd(); };
            auto after_fd = [&](int r) {
                const int i = (r / copies) % copies;
                if (after_obj.empty()) return i == 0 ? dp->main_prog_fd() : after_progs[i - 1]->fd();
                return after_progs[i]->fd();
            };
            for (const auto& shape : shapes) {
                if (shape.vxlan != vxlan) continue;
                std::vector<packet::Flow> flows;
                const std::string sname = shape.name;
                if (sname == "hot") {
                    const auto& r = rules.rules[rng() % rules.rules.size()];
                    for (std::size_t i = 0; i < packets; ++i)
                        flows.push_back({r.prefix.addr, endpoint_addr(r.vault), static_cast<std::uint16_t>(1024 + i % 60000), 443});
                } else if (sname == "nomatch") {
                    for (std::size_t i = 0; i < packets; ++i)
                        flows.push_back({0xC0000200u | std::uint32_t(rng() % 256), endpoint_addr(std::uint32_t(rng() % kVaults)),
                                         static_cast<std::uint16_t>(1024 + rng() % 60000), 443});
                } else {
                    flows = make_flows(rules, packets, rng);
                }
                Bench base(flows, vxlan, 16);
                const int drop_fd = bpf_program__fd(base.skel->progs.xdp_drop_only);
                std::vector<double> b_ns, a_ns, floor_ns, ratio, ratio_over;
                for (int r = 0; r < rounds; ++r) {
                    const double f0 = base.ns_per_packet(drop_fd, kPasses);
                    double nb = 0, na = 0;
                    std::vector<std::uint64_t> vb, va;
                    auto run = [&](bool after) {
                        auto c0 = verdict_packets(*dp, rep.vault_ids);
                        const double ns = base.ns_per_packet(after ? after_fd(r) : before_fd(r), kPasses);
                        auto c1 = verdict_packets(*dp, rep.vault_ids);
                        for (std::size_t i = 0; i < c1.size(); ++i) c1[i] -= c0[i];
                        (after ? na : nb) = ns;
                        (after ? va : vb) = std::move(c1);
                    };
                    run(r % 2 == 1);
                    run(r % 2 == 0);
                    const double f1 = base.ns_per_packet(drop_fd, kPasses);
                    if (va != vb) {
                        std::string d;
                        for (std::size_t i = 0; i < va.size(); ++i)
                            if (va[i] != vb[i])
                                d += " [" + std::to_string(i) + "] after " + std::to_string(va[i]) + " before " +
                                     std::to_string(vb[i]);
                        throw std::runtime_error("before and after counted different verdicts (" + sname + ", " +
                                                 std::to_string(n) + " rules, round " + std::to_string(r) + "):" + d);
                    }
                    const double f = (f0 + f1) / 2;
                    b_ns.push_back(nb);
                    a_ns.push_back(na);
                    floor_ns.push_back(f);
                    ratio.push_back(na / nb);
                    ratio_over.push_back((na - f) / (nb - f));
                }
                json j = {{"rules", n},
                          {"shape", sname},
                          {"packets", flows.size()},
                          {"rounds", rounds},
                          {"copies", copies},
                          {"before_ns", quantiles_json(b_ns)},
                          {"after_ns", quantiles_json(a_ns)},
                          {"floor_ns", quantiles_json(floor_ns)},
                          {"after_over_before", quantiles_json(ratio)},
                          {"after_over_before_above_floor", quantiles_json(ratio_over)}};
                results.push_back(j);
                if (!as_json) {
                    const auto q = quantiles(ratio), qo = quantiles(ratio_over);
                    std::printf("ipv4 %-12s %8zu rules: before %6.1f ns  after %6.1f ns  floor %5.1f ns  "
                                "after/before %.3f (IQR %.3f-%.3f, min-max %.3f-%.3f)  above floor %.3f "
                                "(IQR %.3f-%.3f)\n",
                                shape.name, n, median(b_ns), median(a_ns), median(floor_ns), q.median, q.q1, q.q3,
                                q.min, q.max, qo.median, qo.q1, qo.q3);
                    std::fflush(stdout);
                }
            }
        }
    }
    if (as_json) std::cout << results.dump(2) << "\n";
    return 0;
}

// The reload benchmark's rules as the parser hands them to the compiler:
// kVaults vaults, each with its endpoint and a share of n unique ip rules in
// random file order, the same shapes as make_rules.
rules::RuleFile make_rule_file(std::size_t n, std::mt19937_64& rng) {
    rules::RuleFile f;
    f.host.vteps = {{0xC6120000, 24}};
    for (std::uint32_t v = 0; v < kVaults; ++v) {
        rules::Vault vault;
        vault.name = "bench-" + std::to_string(v + 1);
        vault.default_action = rules::DefaultAction::deny;
        vault.bypass = rules::Bypass::none;
        vault.endpoints.push_back({endpoint_addr(v), 443, rules::Proto::tcp, {}});
        f.vaults.push_back(std::move(vault));
    }
    std::set<std::tuple<std::uint32_t, std::uint32_t, std::uint8_t>> seen;
    std::uniform_int_distribution<std::uint32_t> addr(0, (1u << kOverlayBits) - 1), vault(0, kVaults - 1),
        len_short(20, 31), pct(0, 99);
    for (std::size_t added = 0; added < n;) {
        std::uint8_t len = pct(rng) < 70 ? 32 : static_cast<std::uint8_t>(len_short(rng));
        std::uint32_t a = (kOverlayBase | addr(rng)) & rules::Ipv4Prefix::mask(len);
        std::uint32_t v = vault(rng);
        if (!seen.insert({v, a, len}).second) continue;
        f.vaults[v].ip_rules.push_back({{a, len}, {}});
        ++added;
    }
    return f;
}

double ms_since(Clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// Compile (rule model -> flat tables) and install (diff, write the idle set,
// flip, grace period, mirror) are timed apart; YAML parsing is not included.
int cmd_reload(const std::vector<std::size_t>& sizes, bool as_json) {
    std::mt19937_64 rng(7);
    json results = json::array();
    for (std::size_t n : sizes) {
        auto file = make_rule_file(n, rng);
        auto dp = bpfmaps::Datapath::open_and_load({.max_rules = static_cast<std::uint32_t>(n + 1024)});
        bpfmaps::Installer installer(*dp);
        auto t0 = Clock::now();
        auto compiled = rules::compile(file);
        const double compile_ms = ms_since(t0);
        t0 = Clock::now();
        installer.install(compiled);
        const double install_ms = ms_since(t0);
        // One more rule: the difference is all that is written.
        file.vaults[0].ip_rules.push_back({{0xCB007163u, 32}, {}});  // 203.0.113.99: outside every rule
        t0 = Clock::now();
        compiled = rules::compile(file);
        const double one_compile_ms = ms_since(t0);
        t0 = Clock::now();
        auto rep = installer.install(compiled);
        const double one_install_ms = ms_since(t0);
        if (rep.diff.size() != 1 || rep.diff[0].rules_added != 1)
            throw std::runtime_error("the one-rule change was not a one-rule difference");
        json j = {{"rules", n},
                  {"compile_ms", compile_ms},
                  {"install_ms", install_ms},
                  {"one_rule_change", {{"compile_ms", one_compile_ms}, {"install_ms", one_install_ms}}}};
        results.push_back(j);
        if (!as_json)
            std::printf("%8zu rules: compile %8.1f ms + install %8.1f ms   one-rule change: compile %6.1f ms + "
                        "install %6.1f ms\n",
                        n, compile_ms, install_ms, one_compile_ms, one_install_ms);
        std::fflush(stdout);
    }
    if (as_json) std::cout << results.dump(2) << "\n";
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"vaultwall-bench: datapath and reload benchmarks, each against a baseline of the same run"};
    app.require_subcommand(1);
    bool as_json = false;
    std::vector<std::size_t> sizes;
    std::size_t packets = 65536;
    int sweeps = 5;
    auto* dpc = app.add_subcommand("datapath", "ns/packet via BPF_PROG_TEST_RUN over a working set of distinct packets");
    dpc->add_option("--sizes", sizes, "rule-set sizes")->delimiter(',')->default_str("10,1000,10000,100000,1000000");
    dpc->add_option("--packets", packets, "distinct packets in the working set")->check(CLI::Range(1, 1 << 22));
    dpc->add_option("--sweeps", sweeps, "sweeps over the working set (median reported)")->check(CLI::Range(1, 100));
    dpc->add_flag("--json", as_json, "JSON output");
    auto* dp6 = app.add_subcommand("datapath6", "IPv6 rule lookups (ns/packet) against a 128-bit kernel LPM lookup");
    dp6->add_option("--sizes", sizes, "IPv6 rule-set sizes")->delimiter(',')->default_str("100000,1000000");
    dp6->add_option("--packets", packets, "distinct packets in the working set")->check(CLI::Range(1, 1 << 22));
    dp6->add_option("--sweeps", sweeps, "sweeps over the working set (median reported)")->check(CLI::Range(1, 100));
    dp6->add_flag("--json", as_json, "JSON output");
    std::string before_obj, after_obj;
    int rounds = 21, copies = 4;
    auto* abc = app.add_subcommand("datapath-ab", "IPv4 ns/packet of this build's program (or --after-obj) against "
                                                  "another build's object, alternating in short rounds on the same maps");
    abc->add_option("--before-obj", before_obj, "the other build's vaultwall.bpf.o")->required()->check(CLI::ExistingFile);
    abc->add_option("--after-obj", after_obj,
                    "measure this object instead of this build's program (the same object as --before-obj: an A/A run)")
        ->check(CLI::ExistingFile);
    abc->add_option("--copies", copies, "programs loaded a side, each a JIT image of its own (rounds rotate over them)")
        ->check(CLI::Range(1, 16))
        ->capture_default_str();
    abc->add_option("--sizes", sizes, "IPv4 rule-set sizes")->delimiter(',')->default_str("1000,100000,1000000");
    abc->add_option("--packets", packets, "distinct packets in the working set")->check(CLI::Range(1, 1 << 22));
    abc->add_option("--rounds", rounds, "alternating rounds (median and spread of their ratios reported)")
        ->check(CLI::Range(1, 1000));
    abc->add_flag("--json", as_json, "JSON output");
    auto* evc = app.add_subcommand("events", "datapath cost of denied-flow events: off, at the limit, past it");
    evc->add_option("--packets", packets, "distinct packets in the working set")->check(CLI::Range(1, 1 << 22));
    evc->add_option("--sweeps", sweeps, "sweeps (median reported)")->check(CLI::Range(1, 100));
    evc->add_flag("--json", as_json, "JSON output");
    auto* rlc = app.add_subcommand("reload", "time to compile and install rule sets, and a one-rule change");
    rlc->add_option("--sizes", sizes, "rule-set sizes")->delimiter(',')->default_str("1000,100000,1000000");
    rlc->add_flag("--json", as_json, "JSON output");
    CLI11_PARSE(app, argc, argv);
    try {
        if (dpc->parsed()) {
            if (sizes.empty()) sizes = {10, 1000, 10000, 100000, 1000000};
            return cmd_datapath(sizes, packets, sweeps, as_json);
        }
        if (dp6->parsed()) {
            if (sizes.empty()) sizes = {100000, 1000000};
            return cmd_datapath6(sizes, packets, sweeps, as_json);
        }
        if (abc->parsed()) {
            if (sizes.empty()) sizes = {1000, 100000, 1000000};
            return cmd_datapath_ab(before_obj, after_obj, copies, sizes, packets, rounds, as_json);
        }
        if (evc->parsed()) return cmd_events(packets, sweeps, as_json);
        if (sizes.empty()) sizes = {1000, 100000, 1000000};
        return cmd_reload(sizes, as_json);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "vaultwall-bench: %s\n", e.what());
        return 1;
    }
}
