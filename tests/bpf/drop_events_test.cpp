// Denied-flow events from the real XDP program under BPF_PROG_TEST_RUN: what
// an event says, which packets make one, and the per-CPU token bucket
// (host.drop_events_per_second). The flood over veth is in
// tests/daemon/drops_test.cpp.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <netinet/in.h>
#include <sched.h>

#include <chrono>
#include <cstring>
#include <set>
#include <thread>
#include <vector>

#include "bpfmaps/drop_events.hpp"
#include "fixture.hpp"
#include "rules/ipv6.hpp"

namespace vaultwall::testing {
namespace {

using namespace vaultwall::packet;

constexpr std::uint32_t kVtep = 0xC6120005;  // 198.18.0.5
constexpr std::uint32_t kHost = 0xC6120001;  // 198.18.0.1

class DropEvents : public DatapathTest {
protected:
    void SetUp() override {
        DatapathTest::SetUp();
        reader = std::make_unique<bpfmaps::DropEventReader>(
            [this](std::size_t, const vw_drop_event& e) { events.push_back(e); });
        reader->add(*dp, 0);
    }
    void install_rate(std::uint32_t rate, std::set<std::string> audit = {}) {
        auto s = sample_rules();
        s.drop_events_per_second = rate;
        for (auto& v : s.vaults) v.audit = audit.count(v.name) > 0;
        install(s);
    }
    std::vector<vw_drop_event> take() {
        reader->consume();
        auto out = std::move(events);
        events.clear();
        return out;
    }

    std::unique_ptr<bpfmaps::DropEventReader> reader;
    std::vector<vw_drop_event> events;
};

// IPv6 (SPEC §11): family 6 and all sixteen bytes of both addresses, for
// the inner flow of VXLAN over an IPv4 underlay too.
TEST_F(DropEvents, AnIpv6DropNamesItsFlow) {
    auto s = sample_rules();
    s.endpoints6 = {{0, 0, *rules::parse_ipv6("2001:db8::10"), 443, rules::Proto::tcp, false}};
    s.drop_events_per_second = 1000;
    install(s);
    Flow6 f{*rules::parse_ipv6("2001:db8:7::8"), *rules::parse_ipv6("2001:db8::10"), 41000, 443};
    auto frame = tcp_frame6(f, tcp_flags::syn);
    ASSERT_EQ(bpfmaps::run_main(*dp, frame), XDP_DROP);
    ASSERT_EQ(bpfmaps::run_main(*dp, vxlan_frame(kVtep, kHost, 5003, frame)), XDP_DROP);
    auto ev = take();
    ASSERT_EQ(ev.size(), 2u);
    for (const auto& e : ev) {
        EXPECT_EQ(e.reason, VW_DROP_NO_RULE);
        EXPECT_EQ(e.vault_id, vault_id("strict"));
        EXPECT_EQ(e.family, VW_FAMILY_IPV6);
        EXPECT_EQ(std::memcmp(e.saddr, f.src.data(), 16), 0);
        EXPECT_EQ(std::memcmp(e.daddr, f.dst.data(), 16), 0);
        EXPECT_EQ(ntohs(e.sport), 41000);
        EXPECT_EQ(ntohs(e.dport), 443);
        EXPECT_EQ(e.protocol, IPPROTO_TCP);
    }
    EXPECT_EQ(ev[0].vni, 0u);
    EXPECT_EQ(ev[1].vni, 5003u);
}

TEST_F(DropEvents, ADropBecomesOneEventThatNamesTheFlow) {
    install_rate(1000);
    Flow f{ip("198.51.100.8"), ip("203.0.113.10"), 41000, 443};
    auto frame = tcp_frame(f, tcp_flags::syn);
    ASSERT_EQ(bpfmaps::run_main(*dp, frame), XDP_DROP);
    auto ev = take();
    ASSERT_EQ(ev.size(), 1u);
    const auto& e = ev[0];
    EXPECT_EQ(e.reason, VW_DROP_NO_RULE);
    EXPECT_EQ(e.vault_id, vault_id("strict"));
    EXPECT_EQ(e.family, VW_FAMILY_IPV4);
    EXPECT_EQ(ntohl(e.saddr[0]), f.src);
    EXPECT_EQ(ntohl(e.daddr[0]), f.dst);
    EXPECT_EQ(ntohs(e.sport), 41000);
    EXPECT_EQ(ntohs(e.dport), 443);
    EXPECT_EQ(e.protocol, IPPROTO_TCP);
    EXPECT_EQ(e.vni, 0u);
    EXPECT_EQ(e.bytes, frame.size());
    EXPECT_EQ(e.generation, report.generation);
    EXPECT_GT(e.timestamp_ns, 0u);

    // VXLAN: the inner flow and its VNI; a global drop has no vault.
    ASSERT_EQ(bpfmaps::run_main(*dp, vxlan_frame(kVtep, kHost, 5003,
                                                  tcp_frame({ip("198.19.1.7"), ip("203.0.113.10"), 1, 443}))),
              XDP_DROP);
    ASSERT_EQ(bpfmaps::run_main(*dp, tcp_frame({ip("192.0.2.1"), ip("198.19.1.100"), 2, 443})), XDP_DROP);
    ev = take();
    ASSERT_EQ(ev.size(), 2u);
    EXPECT_EQ(ev[0].vni, 5003u);
    EXPECT_EQ(ntohl(ev[0].saddr[0]), ip("198.19.1.7"));
    EXPECT_EQ(ev[1].reason, VW_DROP_NOT_PRIVATE_LINK);
    EXPECT_EQ(ev[1].vault_id, 0u);

    // A frame too short for IPv4 still reports, without addresses.
    Bytes runt = tcp_frame(f);
    runt.resize(20);
    ASSERT_EQ(bpfmaps::run_main(*dp, runt), XDP_DROP);
    ev = take();
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].reason, VW_DROP_MALFORMED);
    EXPECT_EQ(ev[0].family, VW_FAMILY_NONE);
}

TEST_F(DropEvents, PassesAndExplainReportNothingAuditedPassesDo) {
    install_rate(1000, {"strict"});
    EXPECT_EQ(bpfmaps::run_main(*dp, tcp_frame({ip("192.0.2.1"), ip("203.0.113.10"), 1, 443})), XDP_PASS);
    EXPECT_EQ(bpfmaps::run_main(*dp, tcp_frame({ip("192.0.2.1"), ip("203.0.113.99"), 1, 443})), XDP_PASS);
    bpfmaps::run_explain(*dp, tcp_frame({ip("192.0.2.1"), ip("203.0.113.13"), 1, 443}));  // a drop
    EXPECT_TRUE(take().empty());
    EXPECT_EQ(bpfmaps::run_main(*dp, tcp_frame({ip("198.51.100.8"), ip("203.0.113.10"), 1, 443})), XDP_PASS);
    auto ev = take();
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].reason, VW_AUDIT_NO_RULE);
}

TEST_F(DropEvents, RateZeroTurnsEventsOff) {
    install_rate(0);
    for (int i = 0; i < 10; ++i)
        bpfmaps::run_main(*dp, tcp_frame({ip("198.51.100.8"), ip("203.0.113.10"), 1, 443}));
    EXPECT_TRUE(take().empty());
    auto b = bpfmaps::read_event_budget(*dp);
    EXPECT_EQ(b.sent + b.suppressed + b.lost, 0u);
}

// A burst far beyond the limit: one second's worth of tokens goes out, the
// rest is counted as suppressed; every drop is accounted for.
TEST_F(DropEvents, TokenBucketSendsTheLimitAndCountsTheRest) {
    // The bucket is per CPU and a test run executes on the calling thread's
    // CPU: pin this thread to one CPU so that both runs below draw from the
    // same bucket (a migration between them would find a full one).
    cpu_set_t saved, one;
    ASSERT_EQ(sched_getaffinity(0, sizeof saved, &saved), 0);
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu(), &one);
    ASSERT_EQ(sched_setaffinity(0, sizeof one, &one), 0);
    struct Restore {
        cpu_set_t set;
        ~Restore() { sched_setaffinity(0, sizeof set, &set); }
    } restore{saved};
    install_rate(50);
    const auto frame = tcp_frame({ip("198.51.100.8"), ip("203.0.113.10"), 1, 443});
    auto before = bpfmaps::read_event_budget(*dp);
    const auto t0 = std::chrono::steady_clock::now();
    // One run with repeat: the kernel loops on one CPU, as a flood would.
    LIBBPF_OPTS(bpf_test_run_opts, opts);
    opts.data_in = frame.data();
    opts.data_size_in = static_cast<__u32>(frame.size());
    opts.repeat = 5000;
    ASSERT_EQ(bpf_prog_test_run_opts(dp->main_prog_fd(), &opts), 0);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    auto ev = take();
    auto after = bpfmaps::read_event_budget(*dp);
    const auto sent = after.sent - before.sent, suppressed = after.suppressed - before.suppressed;
    EXPECT_EQ(sent + suppressed + (after.lost - before.lost), 5000u);
    EXPECT_EQ(ev.size(), sent);
    // A full bucket (50), plus what 50/s refills while the run lasted.
    EXPECT_GE(sent, 50u);
    EXPECT_LE(sent, 50u + static_cast<std::uint64_t>(50 * secs) + 1);
    EXPECT_EQ(after.lost, before.lost);
    EXPECT_EQ(counters().get(VW_DROP_NO_RULE, vault_id("strict")).packets, 5000u);

    // The bucket refills with time: 0.1 s later, 50/s of it (no more).
    const auto t1 = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    opts.repeat = 100;
    ASSERT_EQ(bpf_prog_test_run_opts(dp->main_prog_fd(), &opts), 0);
    const double gap = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
    auto again = bpfmaps::read_event_budget(*dp);
    EXPECT_GE(again.sent - after.sent, 4u);
    EXPECT_LE(again.sent - after.sent, static_cast<std::uint64_t>(50 * (gap + secs)) + 1);
}

}  // namespace
}  // namespace vaultwall::testing
