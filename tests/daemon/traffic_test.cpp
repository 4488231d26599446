// Real traffic over the veth pair (plain and through kernel VXLAN devices):
// exact counters, reload under traffic, bad reloads, kill -9, and explain
// against what the wire shows.
#include <bpf/bpf.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>

#include "common/reasons.hpp"
#include "bpfmaps/map_io.hpp"
#include "lab.hpp"
#include "vaultwall_abi.h"

using namespace vwtest;
using vaultwall::packet::Bytes;
using vaultwall::daemon::Counters;

namespace {

bool contains(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

std::uint32_t be32(const Bytes& f, std::size_t off) {
    return std::uint32_t(f[off]) << 24 | std::uint32_t(f[off + 1]) << 16 | std::uint32_t(f[off + 2]) << 8 | f[off + 3];
}

// Outer IPv4 source of an untagged frame (0 when not IPv4).
std::uint32_t src_of(const Bytes& f) { return f.size() >= 34 && f[12] == 0x08 && f[13] == 0 ? be32(f, 26) : 0; }

std::size_t count_from(const std::vector<Bytes>& frames, std::uint32_t src) {
    std::size_t n = 0;
    for (const auto& f : frames) n += src_of(f) == src;
    return n;
}

// A TCP segment (ACK, so no admission record) carrying `seq`.
Bytes seq_frame(std::uint32_t src, std::uint32_t dst, std::uint32_t seq) {
    auto spec = vaultwall::packet::FrameSpec::tcp_flow({src, dst, 40000, 443}, vaultwall::packet::tcp_flags::ack);
    spec.tcp.seq = seq;
    return spec.build();
}

std::uint64_t pk(const Counters& c, vw_reason r, const std::string& vault = {}) { return c.get(r, vault).packets; }
std::uint64_t by(const Counters& c, vw_reason r, const std::string& vault = {}) { return c.get(r, vault).bytes; }

class TrafficTest : public ::testing::Test {
protected:
    void SetUp() override {
        auto a = lab.loader("attach --dev vr0");
        ASSERT_EQ(a.rc, 0) << a.out;
    }
    void start(const std::string& text) {
        rules = lab.write_rules("rules.yaml", text);
        lab.start_daemon(rules);
    }
    Lab lab;
    std::string rules;
};

}  // namespace

TEST_F(TrafficTest, PlainAllowedAndDeniedMoveCountersExactly) {
    start(base_rules());
    int tx = lab.sender(), rx = lab.receiver();
    const auto before = lab.counters();
    const auto allowed = seq_frame(ip("192.0.2.10"), ip("203.0.113.10"), 1);
    const auto denied = seq_frame(ip("198.51.100.9"), ip("203.0.113.10"), 1);
    const auto open = seq_frame(ip("198.51.100.9"), ip("203.0.113.12"), 1);
    for (int i = 0; i < 50; ++i) send_frame(tx, allowed);
    for (int i = 0; i < 30; ++i) send_frame(tx, denied);
    for (int i = 0; i < 7; ++i) send_frame(tx, open);
    auto got = drain(rx);
    EXPECT_EQ(count_from(got, ip("192.0.2.10")), 50u);
    EXPECT_EQ(count_from(got, ip("198.51.100.9")), 7u) << "only the open vault's packets from the denied source";
    const auto after = lab.counters();
    EXPECT_EQ(pk(after, VW_PASS_IP_RULE, "alpha") - pk(before, VW_PASS_IP_RULE, "alpha"), 50u);
    EXPECT_EQ(by(after, VW_PASS_IP_RULE, "alpha") - by(before, VW_PASS_IP_RULE, "alpha"), 50u * allowed.size());
    EXPECT_EQ(pk(after, VW_DROP_NO_RULE, "alpha") - pk(before, VW_DROP_NO_RULE, "alpha"), 30u);
    EXPECT_EQ(by(after, VW_DROP_NO_RULE, "alpha") - by(before, VW_DROP_NO_RULE, "alpha"), 30u * denied.size());
    EXPECT_EQ(pk(after, VW_PASS_DEFAULT_ALLOW, "open") - pk(before, VW_PASS_DEFAULT_ALLOW, "open"), 7u);
    EXPECT_EQ(after.total(false).packets - before.total(false).packets, 30u) << "no other drops";
    auto rl = Json::parse(lab.ctl("rules --vault alpha --json").out);
    EXPECT_EQ(rl[0]["prefix"], "192.0.2.0/24");
    EXPECT_EQ(rl[0]["hits"], 50);
}

TEST_F(TrafficTest, VxlanThroughKernelDevices) {
    start(base_rules());
    // The sender's underlay: 198.18.0.1 (a trusted VTEP) and 198.18.5.1 (not
    // one), each with a kernel VXLAN device towards the receiver.
    const std::string mac = [&] {
        auto r = run("ip -o -n " + lab.rns + " link show vr0");
        auto at = r.out.find("link/ether ");
        return at == std::string::npos ? std::string("?") : r.out.substr(at + 11, 17);
    }();
    for (const auto& c : {"ip addr add 198.18.0.1/24 dev vs0", "ip addr add 198.18.5.1/24 dev vs0",
                          "ip link add vx0 type vxlan id 5001 local 198.18.0.1 remote 198.18.0.2 dstport 4789 dev vs0",
                          "ip link add vx1 type vxlan id 5002 local 198.18.5.1 remote 198.18.5.2 dstport 4789 dev vs0",
                          "ip link set vx0 up", "ip link set vx1 up"})
        lab.sh("ip -n " + lab.sns + " " + std::string(c).substr(3));
    lab.sh("ip -n " + lab.sns + " neigh replace 198.18.0.2 lladdr " + mac + " dev vs0 nud permanent");
    lab.sh("ip -n " + lab.sns + " neigh replace 198.18.5.2 lladdr " + mac + " dev vs0 nud permanent");
    int vx0 = lab.sender("vx0"), vx1 = lab.sender("vx1"), rx = lab.receiver();
    drain(rx, 100);
    const auto before = lab.counters();

    const auto to_private = seq_frame(ip("198.19.1.10"), ip("198.19.1.100"), 1);   // pass.private_endpoint
    const auto via_subnet = seq_frame(ip("198.19.1.11"), ip("203.0.113.10"), 1);   // pass.vnet_rule
    const auto outside = seq_frame(ip("198.19.2.12"), ip("203.0.113.10"), 1);      // drop.no_rule
    for (int i = 0; i < 11; ++i) send_frame(vx0, to_private);
    for (int i = 0; i < 13; ++i) send_frame(vx0, via_subnet);
    for (int i = 0; i < 5; ++i) send_frame(vx0, outside);
    for (int i = 0; i < 3; ++i) send_frame(vx1, to_private);                        // drop.untrusted_vtep
    auto got = drain(rx);
    const auto after = lab.counters();
    const std::size_t encap = 50;  // outer Ethernet + IPv4 + UDP + VXLAN
    EXPECT_EQ(count_from(got, ip("198.18.0.1")), 24u);
    EXPECT_EQ(count_from(got, ip("198.18.5.1")), 0u);
    EXPECT_EQ(pk(after, VW_PASS_PRIVATE_ENDPOINT, "alpha") - pk(before, VW_PASS_PRIVATE_ENDPOINT, "alpha"), 11u);
    EXPECT_EQ(by(after, VW_PASS_PRIVATE_ENDPOINT, "alpha") - by(before, VW_PASS_PRIVATE_ENDPOINT, "alpha"),
              11u * (to_private.size() + encap));
    EXPECT_EQ(pk(after, VW_PASS_VNET_RULE, "alpha") - pk(before, VW_PASS_VNET_RULE, "alpha"), 13u);
    EXPECT_EQ(pk(after, VW_DROP_NO_RULE, "alpha") - pk(before, VW_DROP_NO_RULE, "alpha"), 5u);
    EXPECT_EQ(pk(after, VW_DROP_UNTRUSTED_VTEP) - pk(before, VW_DROP_UNTRUSTED_VTEP), 3u);
    EXPECT_EQ(by(after, VW_DROP_UNTRUSTED_VTEP) - by(before, VW_DROP_UNTRUSTED_VTEP), 3u * (to_private.size() + encap));
    EXPECT_EQ(after.total(false).packets - before.total(false).packets, 8u);
    auto rl = Json::parse(lab.ctl("rules --vault alpha --json").out);
    EXPECT_EQ(rl[1]["kind"], "vnet_rule");
    EXPECT_EQ(rl[1]["hits"], 13);
}

// Two rule sets that disagree on every packet of the stream: in A the
// endpoint 203.0.113.10:443 belongs to `alpha`, which admits 192.0.2.0/24
// (pass.ip_rule); in B it belongs to `beta`, which admits nobody
// (drop.no_rule). Both vaults exist in both sets, so counters carry over.
static std::string flip_rules(bool a) {
    const std::string mine = a ? "203.0.113.10:443" : "203.0.113.20:443";
    const std::string theirs = a ? "203.0.113.20:443" : "203.0.113.10:443";
    return "version: 1\nvaults:\n" +
           vault_yaml("alpha", "    endpoints: [" + mine + "]\n    network_acls:\n      default_action: deny\n"
                               "      bypass: none\n      ip_rules: [192.0.2.0/24]\n") +
           vault_yaml("beta", "    endpoints: [" + theirs + "]\n    network_acls:\n      default_action: deny\n"
                              "      bypass: none\n");
}

// Reloads of the soak: 1,000 in CI; VW_RELOAD_SOAK=N for the benchmark mode
// (tools/bench/soak.sh runs 10,000).
static int soak_reloads() {
    const char* s = std::getenv("VW_RELOAD_SOAK");
    return s && std::atoi(s) > 0 ? std::atoi(s) : 1000;
}

TEST_F(TrafficTest, ReloadUnderTrafficZeroMisclassified) {
    const auto file_a = lab.write_rules("a.yaml", flip_rules(true));
    const auto file_b = lab.write_rules("b.yaml", flip_rules(false));
    lab.start_daemon(file_a);  // generation 1 = A
    int tx = lab.sender(), rx = lab.receiver();
    const auto before = lab.counters();
    ASSERT_EQ(before.generation, 1u);

    const int kReloads = soak_reloads();
    // Room for every packet the sender sends while the reloads run (~32k/s;
    // a reload and its pause take a few ms): 4M for the CI run, more for the soak.
    const std::size_t slots = std::max<std::size_t>(1 << 22, std::size_t(kReloads) * 1024);
    std::vector<std::uint64_t> t_send(slots, 0), t_recv(slots, 0);
    std::atomic<bool> stop_send{false}, stop_recv{false};
    std::atomic<std::uint32_t> sent{0};
    std::thread receiver([&] {
        std::vector<std::uint8_t> buf(2048);
        while (!stop_recv) {
            pollfd p{rx, POLLIN, 0};
            if (::poll(&p, 1, 50) <= 0) continue;
            sockaddr_ll from{};
            socklen_t fl = sizeof(from);
            ssize_t n = ::recvfrom(rx, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from), &fl);
            if (n < 54 || from.sll_pkttype == PACKET_OUTGOING) continue;
            Bytes f(buf.begin(), buf.begin() + n);
            if (src_of(f) != ip("192.0.2.10")) continue;
            std::uint32_t seq = be32(f, 14 + 20 + 4);
            if (seq < t_recv.size()) t_recv[seq] = now_ns();
        }
    });
    std::thread sender([&] {
        for (std::uint32_t seq = 0; !stop_send && seq < t_send.size(); ++seq) {
            auto f = seq_frame(ip("192.0.2.10"), ip("203.0.113.10"), seq);
            t_send[seq] = now_ns();
            send_frame(tx, f);
            sent = seq + 1;
            if (seq % 16 == 15) std::this_thread::sleep_for(std::chrono::microseconds(500));
        }
    });

    // The flip instants, watched on vw_state itself: generation g went live
    // after the last read that still showed g - 1 and before the first that
    // showed g, so it was live within [last_seen[g - 1], first_seen[g + 1]].
    std::map<std::uint64_t, std::uint64_t> first_seen, last_seen;
    std::atomic<bool> stop_watch{false};
    std::thread watcher([&] {
        auto dp = vaultwall::bpfmaps::Datapath::open_pinned(lab.pin_root + "/vr0");
        while (!stop_watch) {
            auto t = now_ns();
            auto g = vaultwall::bpfmaps::read_generation(*dp);
            auto t2 = now_ns();
            if (!first_seen.count(g)) first_seen[g] = t2;
            last_seen[g] = t;
            std::this_thread::yield();
        }
    });
    // Without the watcher, reload call g bounds it: [start[g], end[g + 1]].
    std::map<std::uint64_t, std::pair<std::uint64_t, std::uint64_t>> call;  // gen -> (start, end)
    std::map<std::uint64_t, bool> is_a;
    call[1] = {0, 0};
    is_a[1] = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    int ok = 0;
    for (int i = 0; i < kReloads; ++i) {
        const bool a = i % 2 == 1;
        auto t0 = now_ns();
        auto r = lab.request({{"cmd", "reload"}, {"file", a ? file_a : file_b}});
        auto t1 = now_ns();
        ASSERT_TRUE(r["ok"]) << r.dump();
        auto g = r["generation"].get<std::uint64_t>();
        ASSERT_EQ(g, static_cast<std::uint64_t>(i + 2));
        call[g] = {t0, t1};
        is_a[g] = a;
        ++ok;
        std::this_thread::sleep_for(std::chrono::milliseconds(3));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    stop_send = true;
    sender.join();
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    stop_recv = true;
    receiver.join();
    stop_watch = true;
    watcher.join();
    tpacket_stats ps{};
    socklen_t pl = sizeof(ps);
    ASSERT_EQ(::getsockopt(rx, SOL_PACKET, PACKET_STATISTICS, &ps, &pl), 0);
    ASSERT_EQ(ps.tp_drops, 0u) << "the receiving socket overflowed; the test cannot tell passes from drops";

    const std::uint32_t n = sent;
    const std::uint64_t end = now_ns();
    const std::uint64_t last_gen = call.rbegin()->first;
    auto live_from = [&](std::uint64_t g) -> std::uint64_t {
        if (g == 1) return 0;
        return last_seen.count(g - 1) ? last_seen[g - 1] : call[g].first;
    };
    auto live_to = [&](std::uint64_t g) -> std::uint64_t {
        if (g == last_gen) return UINT64_MAX;
        return first_seen.count(g + 1) ? first_seen[g + 1] : call[g + 1].second;
    };
    std::uint64_t received = 0, unambiguous = 0, boundary = 0, misclassified = 0;
    std::uint64_t next_recv = end;  // receive time of the next received packet (FIFO on the veth queue)
    std::vector<std::uint64_t> done(n);
    for (std::uint32_t s = n; s-- > 0;) {
        if (t_recv[s]) next_recv = t_recv[s];
        done[s] = t_recv[s] ? t_recv[s] : next_recv;
    }
    std::map<std::uint64_t, std::uint64_t> per_gen;
    // Generations in order with their live windows. The windows move forward
    // with g, so the generations that can have judged packet s lie between
    // `first` (it only moves forward) and the first window that opens after
    // the packet was done: linear in packets + generations, even at 10,000
    // reloads. A prefix max of the ends and a suffix min of the starts keep
    // that exact should two windows ever be out of order.
    struct Window { std::uint64_t g, from, to; bool a; };
    std::vector<Window> windows;
    for (const auto& [g, a] : is_a) windows.push_back({g, live_from(g), live_to(g), a});
    std::vector<std::uint64_t> max_to(windows.size()), min_from(windows.size());
    for (std::size_t w = 0; w < windows.size(); ++w)
        max_to[w] = std::max(windows[w].to, w ? max_to[w - 1] : 0);
    for (std::size_t w = windows.size(); w-- > 0;)
        min_from[w] = std::min(windows[w].from, w + 1 < windows.size() ? min_from[w + 1] : UINT64_MAX);
    std::size_t first = 0;
    for (std::uint32_t s = 0; s < n; ++s) {
        const bool passed = t_recv[s] != 0;
        received += passed;
        int agree = 0, candidates = 0;
        std::uint64_t which = 0;
        while (first + 1 < windows.size() && max_to[first] < t_send[s]) ++first;
        for (std::size_t w = first; w < windows.size() && min_from[w] <= done[s]; ++w) {
            const auto [g, from, to, a] = windows[w];
            if (from > done[s] || to < t_send[s]) continue;
            ++candidates;
            if (a == passed) {
                ++agree;
                which = g;
            }
        }
        if (agree == 0) ++misclassified;
        else if (candidates == 1) {
            ++unambiguous;
            ++per_gen[which];
        } else ++boundary;
    }
    const auto after = lab.counters();
    const auto passed_ctr = pk(after, VW_PASS_IP_RULE, "alpha") - pk(before, VW_PASS_IP_RULE, "alpha");
    const auto dropped_ctr = pk(after, VW_DROP_NO_RULE, "beta") - pk(before, VW_DROP_NO_RULE, "beta");
    std::printf("[ reload under traffic ] %d reloads (generations 2..%llu), %u packets sent, %llu received "
                "(passed), %llu dropped; counters: alpha.pass.ip_rule +%llu, beta.drop.no_rule +%llu; "
                "%llu packets inside one generation's window, %llu at a reload boundary (either side fits), "
                "%llu misclassified; %zu generations saw unambiguous packets\n",
                ok, static_cast<unsigned long long>(last_gen), n, static_cast<unsigned long long>(received),
                static_cast<unsigned long long>(n - received), static_cast<unsigned long long>(passed_ctr),
                static_cast<unsigned long long>(dropped_ctr), static_cast<unsigned long long>(unambiguous),
                static_cast<unsigned long long>(boundary), static_cast<unsigned long long>(misclassified),
                per_gen.size());
    EXPECT_EQ(ok, kReloads);
    EXPECT_EQ(misclassified, 0u);
    EXPECT_GT(received, 0u);
    EXPECT_LT(received, n);
    // Every packet counted once, by one of the two sets' verdicts, nothing else.
    EXPECT_EQ(passed_ctr, received);
    EXPECT_EQ(dropped_ctr, n - received);
    EXPECT_EQ(pk(after, VW_DROP_NO_RULE, "alpha"), pk(before, VW_DROP_NO_RULE, "alpha"));
    EXPECT_EQ(pk(after, VW_PASS_IP_RULE, "beta"), pk(before, VW_PASS_IP_RULE, "beta"));
    EXPECT_EQ(pk(after, VW_PASS_UNPROTECTED), pk(before, VW_PASS_UNPROTECTED));
    EXPECT_EQ(after.total(true).packets + after.total(false).packets -
                  before.total(true).packets - before.total(false).packets,
              n);
}

TEST_F(TrafficTest, BadReloadsLeaveTrafficAndCountersUnchanged) {
    start(base_rules());
    int tx = lab.sender(), rx = lab.receiver();
    const auto allowed = seq_frame(ip("192.0.2.10"), ip("203.0.113.10"), 1);
    const auto denied = seq_frame(ip("198.51.100.9"), ip("203.0.113.10"), 1);
    auto exchange = [&] {
        send_frame(tx, allowed);
        send_frame(tx, denied);
        send_frame(tx, allowed);
        return drain(rx, 150);
    };
    exchange();
    std::string base = base_rules();
    auto replace = [&](const std::string& from, const std::string& to) {
        std::string s = base;
        s.replace(s.find(from), from.size(), to);
        return s;
    };
    std::string dup = base + vault_yaml("alpha", "    endpoints: [203.0.113.30:443]\n");
    std::vector<std::tuple<std::string, std::string, std::string>> bad = {
        {"syntax", lab.write_rules("syntax.yaml", replace("ip_rules: [192.0.2.0/24]", "ip_rules: [192.0.2.0/24")), ":"},
        {"unknown vnet", lab.write_rules("vnet.yaml", replace("[prod/app]", "[nope/app]")), "nope"},
        {"host bits", lab.write_rules("hostbits.yaml", replace("[192.0.2.0/24]", "[192.0.2.1/24]")), "192.0.2.0/24"},
        {"duplicate vault", lab.write_rules("dup.yaml", dup), "alpha"},
        {"missing file", lab.dir + "/does-not-exist.yaml", "cannot read"},
        {"a directory", lab.dir, ""},
    };
    for (const auto& [what, file, mention] : bad) {
        SCOPED_TRACE(what);
        const auto c0 = lab.counters();
        auto r = lab.request({{"cmd", "reload"}, {"file", file}});
        EXPECT_FALSE(r["ok"]) << r.dump();
        const std::string err = r.value("error", std::string());
        EXPECT_EQ(err.rfind(file, 0), 0u) << "names the file first: " << err;
        if (what != "missing file" && what != "a directory") {
            // file:line:col
            auto rest = err.substr(file.size());
            EXPECT_TRUE(rest.size() > 4 && rest[0] == ':' && std::isdigit(static_cast<unsigned char>(rest[1])))
                << err;
        }
        EXPECT_TRUE(contains(err, mention)) << err;
        auto ctl = lab.ctl("reload " + file);
        EXPECT_EQ(ctl.rc, 1) << ctl.out;
        const auto c1 = lab.counters();
        EXPECT_EQ(c1.generation, c0.generation);
        EXPECT_EQ(vaultwall::daemon::stats_json(c1), vaultwall::daemon::stats_json(c0)) << "counters untouched";
        auto got = exchange();
        EXPECT_EQ(count_from(got, ip("192.0.2.10")), 2u);
        EXPECT_EQ(count_from(got, ip("198.51.100.9")), 0u);
        const auto c2 = lab.counters();
        EXPECT_EQ(pk(c2, VW_PASS_IP_RULE, "alpha") - pk(c1, VW_PASS_IP_RULE, "alpha"), 2u);
        EXPECT_EQ(pk(c2, VW_DROP_NO_RULE, "alpha") - pk(c1, VW_DROP_NO_RULE, "alpha"), 1u);
    }
    auto st = lab.request({{"cmd", "status"}});
    EXPECT_EQ(st["generation"], 1);
    EXPECT_EQ(st["reloads"]["failed"], 12);
    EXPECT_EQ(st["config"], rules) << "a rejected file does not replace the config";
}

TEST_F(TrafficTest, KillDashNineUnderTrafficEnforcementContinuesAndRestartAdopts) {
    start(base_rules());
    int tx = lab.sender(), rx = lab.receiver();
    const auto c0 = lab.counters();
    std::atomic<bool> go{true};
    std::atomic<std::uint64_t> n_allowed{0}, n_denied{0};
    const auto allowed = seq_frame(ip("192.0.2.10"), ip("203.0.113.10"), 1);
    const auto denied = seq_frame(ip("198.51.100.9"), ip("203.0.113.10"), 1);
    std::vector<Bytes> got;
    std::thread receiver([&] {
        while (go) {
            auto part = drain(rx, 50);
            got.insert(got.end(), part.begin(), part.end());
        }
    });
    std::thread sender([&] {
        while (go) {
            send_frame(tx, allowed);
            ++n_allowed;
            send_frame(tx, denied);
            ++n_denied;
            std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    const auto at_kill = n_allowed.load();
    lab.stop_daemon(SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(600));
    go = false;
    sender.join();
    receiver.join();
    auto tail = drain(rx, 200);
    got.insert(got.end(), tail.begin(), tail.end());
    EXPECT_GT(n_allowed - at_kill, 100u) << "traffic kept flowing after the kill";
    EXPECT_EQ(count_from(got, ip("192.0.2.10")), n_allowed.load());
    EXPECT_EQ(count_from(got, ip("198.51.100.9")), 0u) << "still enforcing with the daemon dead";
    const auto c1 = lab.counters();
    EXPECT_EQ(pk(c1, VW_PASS_IP_RULE, "alpha") - pk(c0, VW_PASS_IP_RULE, "alpha"), n_allowed.load());
    EXPECT_EQ(pk(c1, VW_DROP_NO_RULE, "alpha") - pk(c0, VW_DROP_NO_RULE, "alpha"), n_denied.load());

    // Daemon down: stats come from the pins, the same figures.
    auto s = lab.ctl("stats --json");
    ASSERT_EQ(s.rc, 0) << s.out;
    EXPECT_EQ(Json::parse(s.out), vaultwall::daemon::stats_json(c1));
    auto st = lab.ctl("status");
    EXPECT_EQ(st.rc, 3) << st.out;
    EXPECT_TRUE(contains(st.out, "not running")) << st.out;

    // Restart: adopts the maps (stale socket replaced), counters continue.
    lab.start_daemon(rules);
    const auto c2 = lab.counters();
    EXPECT_EQ(c2.generation, c1.generation + 1);
    EXPECT_EQ(pk(c2, VW_PASS_IP_RULE, "alpha"), pk(c1, VW_PASS_IP_RULE, "alpha"));
    EXPECT_EQ(pk(c2, VW_DROP_NO_RULE, "alpha"), pk(c1, VW_DROP_NO_RULE, "alpha"));
    for (int i = 0; i < 10; ++i) send_frame(tx, denied);
    drain(rx, 150);
    const auto c3 = lab.counters();
    EXPECT_EQ(pk(c3, VW_DROP_NO_RULE, "alpha"), pk(c1, VW_DROP_NO_RULE, "alpha") + 10);
    auto r = lab.request({{"cmd", "reload"}});
    EXPECT_TRUE(r["ok"]);
    EXPECT_EQ(r["diff"].size(), 0u) << "same rules: nothing added or removed";
    auto rl = Json::parse(lab.ctl("rules --vault alpha --json").out);
    EXPECT_EQ(rl[0]["hits"].get<std::uint64_t>(), pk(c3, VW_PASS_IP_RULE, "alpha")) << "rule hits survived";
}

TEST_F(TrafficTest, ExplainAgreesWithTrafficForEveryReasonAndMovesNoCounter) {
    start(base_rules());
    struct Case {
        const char* reason;
        const char* src;
        std::uint32_t vni;
        const char* dst;
        std::uint16_t port;
        bool fragment;
        const char* vtep;
        const char* vault;
    };
    const std::vector<Case> cases = {
        {"ip_rule", "192.0.2.10", 0, "203.0.113.10", 443, false, nullptr, "alpha"},
        {"no_rule", "198.51.100.9", 0, "203.0.113.10", 443, false, nullptr, "alpha"},
        {"default_allow", "198.51.100.9", 0, "203.0.113.12", 443, false, nullptr, "open"},
        {"trusted_candidate", "198.51.100.9", 0, "203.0.113.11", 443, false, nullptr, "bypassv"},
        {"public_access_disabled", "198.51.100.9", 0, "203.0.113.13", 443, false, nullptr, "closed"},
        {"unprotected", "198.51.100.9", 0, "203.0.113.50", 443, false, nullptr, nullptr},
        {"private_endpoint", "198.19.1.10", 5001, "198.19.1.100", 443, false, "198.18.0.1", "alpha"},
        {"vnet_rule", "198.19.1.10", 5001, "203.0.113.10", 443, false, "198.18.0.1", "alpha"},
        {"no_rule", "198.19.2.10", 5001, "203.0.113.10", 443, false, "198.18.0.1", "alpha"},
        {"not_private_link", "198.51.100.9", 0, "198.19.1.100", 443, false, nullptr, nullptr},
        {"not_private_link", "198.19.1.10", 5002, "198.19.1.100", 443, false, "198.18.0.1", nullptr},
        {"untrusted_vtep", "198.19.1.10", 5001, "198.19.1.100", 443, false, "198.18.9.1", nullptr},
        {"fragment", "198.51.100.9", 0, "203.0.113.10", 443, true, nullptr, nullptr},
    };
    const auto c0 = lab.counters();
    std::vector<Json> answers;
    for (const auto& c : cases) {
        std::string args = std::string("explain --json --src ") + c.src + " --dst " + c.dst + ":" +
                           std::to_string(c.port) + " --vni " + std::to_string(c.vni);
        if (c.fragment) args += " --fragment";
        if (c.vtep) args += std::string(" --vtep ") + c.vtep;
        auto r = lab.ctl(args);
        ASSERT_EQ(r.rc, 0) << c.reason << ": " << r.out;
        answers.push_back(Json::parse(r.out));
    }
    // Explaining moved nothing and recorded no admission.
    EXPECT_EQ(vaultwall::daemon::stats_json(lab.counters()), vaultwall::daemon::stats_json(c0));
    {
        auto dp = vaultwall::bpfmaps::Datapath::open_pinned(lab.pin_root + "/vr0");
        int keys = 0;
        vaultwall::bpfmaps::map_for_each_key<vw_flow_key>(dp->map_fd(vaultwall::bpfmaps::Map::admissions),
                                                          [&](const vw_flow_key&) { ++keys; });
        EXPECT_EQ(keys, 0);
    }

    int tx = lab.sender(), rx = lab.receiver();
    for (std::size_t i = 0; i < cases.size(); ++i) {
        const auto& c = cases[i];
        const Json& e = answers[i];
        SCOPED_TRACE(std::string(c.reason) + " from " + c.src + " vni " + std::to_string(c.vni));
        EXPECT_EQ(e["reason"], c.reason) << e.dump();
        EXPECT_EQ(e["agree"], true) << e.dump();
        EXPECT_EQ(e["reference"]["reason"], c.reason) << e.dump();
        EXPECT_EQ(e["vault"], c.vault ? Json(c.vault) : Json(nullptr)) << e.dump();
        // The same packet for real.
        Bytes f = vaultwall::daemon::explain_frame(ip(c.src), ip(c.dst), c.port, true, c.fragment);
        if (c.vni) f = vaultwall::daemon::explain_vxlan(f, ip(c.vtep), c.vni);
        const auto before = lab.counters();
        send_frame(tx, f);
        auto got = drain(rx, 150);
        const auto after = lab.counters();
        const auto r = *vaultwall::reason_from_name(c.reason);
        const std::string vault = c.vault ? c.vault : "";
        EXPECT_EQ(pk(after, r, vault) - pk(before, r, vault), 1u);
        EXPECT_EQ(by(after, r, vault) - by(before, r, vault), f.size());
        EXPECT_EQ(after.total(true).packets + after.total(false).packets -
                      before.total(true).packets - before.total(false).packets,
                  1u);
        const bool passed = count_from(got, src_of(f)) == 1;
        EXPECT_EQ(passed, e["verdict"] == "pass") << e.dump();
    }
}

// explain takes IPv6 (SPEC §11): --src 2001:db8::1 --dst [2001:db8::10]:443,
// over the overlay with --vni, the kernel beside the reference; bad
// arguments get the rule file's diagnostics.
TEST_F(TrafficTest, ExplainTakesIpv6) {
    std::string rules = base_rules("[192.0.2.0/24, \"2001:db8:1::/48\"]");
    const std::string ep = "endpoints: [203.0.113.10:443]";
    rules.replace(rules.find(ep), ep.size(), "endpoints: [203.0.113.10:443, \"[2001:db8::10]:443\"]");
    start(rules);
    auto bare = lab.ctl("explain --src 2001:db8::1 --dst 2001:db8::10:443");
    EXPECT_EQ(bare.rc, 1) << bare.out;
    EXPECT_NE(bare.out.find("'2001:db8::10:443' in --dst is ambiguous"), std::string::npos) << bare.out;
    EXPECT_NE(bare.out.find("write [2001:db8::10]:443 for port 443"), std::string::npos) << bare.out;
    auto mixed = lab.ctl("explain --src 2001:db8::1 --dst 203.0.113.10:443");
    EXPECT_EQ(mixed.rc, 1) << mixed.out;
    EXPECT_NE(mixed.out.find("are of different families"), std::string::npos) << mixed.out;
    EXPECT_EQ(lab.ctl("explain --src 2001:db8::1%eth0 --dst [2001:db8::10]:443").rc, 1);

    const auto c0 = lab.counters();
    for (const char* args : {"--src 2001:db8::1 --dst [2001:db8::10]:443",
                             "--src 2001:db8::1 --dst [2001:db8::10]:53 --proto udp --fragment",
                             "--src 2001:2:0:1::10 --vni 5001 --dst [2001:db8::10]:443",
                             "--src 2001:2:0:1::10 --vni 5001 --vtep 2001:2::2 --dst [2001:db8::10]:443"}) {
        auto r = lab.ctl(std::string("explain --json ") + args);
        ASSERT_EQ(r.rc, 0) << args << ": " << r.out;
        auto e = Json::parse(r.out);
        EXPECT_EQ(e["agree"], true) << args << ": " << e.dump();
        EXPECT_TRUE(e["verdict"] == "pass" || e["verdict"] == "drop") << e.dump();
    }
    // An IPv6 rule admits, and both sides name it; everyone else is dropped.
    auto in = Json::parse(lab.ctl("explain --json --src 2001:db8:1::10 --dst [2001:db8::10]:443").out);
    EXPECT_EQ(in["verdict"], "pass") << in.dump();
    EXPECT_EQ(in["reason"], "ip_rule") << in.dump();
    EXPECT_EQ(in["vault"], "alpha") << in.dump();
    EXPECT_EQ(in["rule"], "2001:db8:1::/48") << in.dump();
    EXPECT_EQ(in["reference"]["rule"], "2001:db8:1::/48") << in.dump();
    EXPECT_EQ(in["agree"], true) << in.dump();
    auto out = Json::parse(lab.ctl("explain --json --src 2001:db8::1 --dst [2001:db8::10]:443").out);
    EXPECT_EQ(out["verdict"], "drop") << out.dump();
    EXPECT_EQ(out["reason"], "no_rule") << out.dump();
    EXPECT_EQ(out["vault"], "alpha") << out.dump();
    EXPECT_EQ(out["agree"], true) << out.dump();
    auto text = lab.ctl("explain --src 2001:db8:1::10 --dst [2001:db8::10]:443");
    EXPECT_EQ(text.rc, 0) << text.out;
    EXPECT_NE(text.out.find("2001:db8:1::/48"), std::string::npos) << text.out;
    EXPECT_EQ(vaultwall::daemon::stats_json(lab.counters()), vaultwall::daemon::stats_json(c0));
}
