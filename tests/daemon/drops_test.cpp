// Denied-flow events in the daemon (SPEC §9): the history and its filters
// (DropMonitor, no kernel), then for real over veth: `vaultwallctl drops`,
// `--top`, the rate limit under a flood, `explain --frame/--pcap`, `whatif`.
#include <arpa/inet.h>

#include <cstdio>
#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "daemon/drops.hpp"
#include "lab.hpp"

using namespace vwtest;
using vaultwall::daemon::DropFilter;
using vaultwall::daemon::DropMonitor;
using vaultwall::daemon::DropRecord;
using vaultwall::packet::Bytes;

namespace {

vw_drop_event event(const char* src, const char* dst, std::uint16_t dport, vw_reason reason, std::uint32_t vault) {
    vw_drop_event e{};
    e.timestamp_ns = 1;
    e.family = VW_FAMILY_IPV4;
    e.saddr[0] = htonl(ip(src));
    e.daddr[0] = htonl(ip(dst));
    e.sport = htons(40000);
    e.dport = htons(dport);
    e.protocol = IPPROTO_TCP;
    e.reason = reason;
    e.vault_id = vault;
    e.bytes = 54;
    return e;
}

std::vector<std::string> lines_of(const std::string& path) {
    std::ifstream in(path);
    std::vector<std::string> out;
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
}

}  // namespace

TEST(DropMonitorTest, HistoryFiltersTopAndBound) {
    DropMonitor m(5);
    const std::map<std::uint32_t, std::string> names = {{1, "alpha"}, {2, "closed"}};
    m.ingest("vr0", names, event("198.51.100.9", "203.0.113.10", 443, VW_DROP_NO_RULE, 1));
    m.ingest("vr0", names, event("198.51.100.9", "203.0.113.10", 443, VW_AUDIT_NO_RULE, 1));
    m.ingest("vr0", names, event("198.51.100.7", "203.0.113.13", 443, VW_DROP_PUBLIC_ACCESS_DISABLED, 2));
    m.ingest("vr1", names, event("198.51.100.9", "198.19.1.100", 443, VW_DROP_NOT_PRIVATE_LINK, 0));

    auto all = m.query({});
    ASSERT_EQ(all.size(), 4u);
    auto j = vaultwall::daemon::drop_json(all[0]);
    EXPECT_EQ(j["interface"], "vr0");
    EXPECT_EQ(j["source"], "198.51.100.9");
    EXPECT_EQ(j["sport"], 40000);
    EXPECT_EQ(j["destination"], "203.0.113.10:443");
    EXPECT_EQ(j["protocol"], "tcp");
    EXPECT_EQ(j["vault"], "alpha");
    EXPECT_EQ(j["verdict"], "drop");
    EXPECT_EQ(j["reason"], "no_rule");
    EXPECT_EQ(vaultwall::daemon::drop_json(all[1])["verdict"], "audit");
    EXPECT_TRUE(vaultwall::daemon::drop_json(all[3])["vault"].is_null());

    auto count = [&](DropFilter f) { return m.query(f).size(); };
    EXPECT_EQ(count({"alpha", ""}), 2u);
    EXPECT_EQ(count({"", "no_rule"}), 2u);        // drop and audit alike
    EXPECT_EQ(count({"", "audit"}), 1u);
    EXPECT_EQ(count({"", "drop.no_rule"}), 1u);
    EXPECT_EQ(count({"", "not_private_link"}), 1u);
    EXPECT_EQ(count({"", "", 3}), 1u);             // --follow: after seq 3
    EXPECT_EQ(m.query({}, 2).back().seq, 4u);      // the newest two
    EXPECT_THROW((DropFilter{"", "ip_rule"}.check()), std::invalid_argument);  // never reported
    EXPECT_THROW((DropFilter{"", "nonsense"}.check()), std::invalid_argument);
    EXPECT_NO_THROW((DropFilter{"", "audit.public_access_disabled"}.check()));

    auto top = vaultwall::daemon::top_sources(all, 1);
    ASSERT_EQ(top.size(), 1u);
    EXPECT_EQ(top[0]["source"], "198.51.100.9");
    EXPECT_EQ(top[0]["events"], 3);
    EXPECT_EQ(top[0]["vaults"], Json::array({"alpha"}));

    // Bounded: the oldest go first.
    for (int i = 0; i < 10; ++i) m.ingest("vr0", names, event("192.0.2.1", "203.0.113.10", 443, VW_DROP_NO_RULE, 1));
    EXPECT_EQ(m.query({}).size(), 5u);
    EXPECT_EQ(m.query({}).front().seq, 10u);
}

TEST(DropMonitorTest, LogIsJsonLinesAndReopensForRotation) {
    const std::string dir = "/tmp/vw-droplog-" + std::to_string(::getpid());
    fs::create_directories(dir);
    const std::string log = dir + "/drops.jsonl";
    DropMonitor m;
    m.set_log(log);
    m.ingest("vr0", {{1, "alpha"}}, event("198.51.100.9", "203.0.113.10", 443, VW_DROP_NO_RULE, 1));
    fs::rename(log, log + ".1");  // logrotate
    m.ingest("vr0", {{1, "alpha"}}, event("198.51.100.8", "203.0.113.10", 443, VW_DROP_NO_RULE, 1));
    m.set_log(log);  // SIGHUP
    m.ingest("vr0", {{1, "alpha"}}, event("198.51.100.7", "203.0.113.10", 443, VW_DROP_NO_RULE, 1));
    m.set_log("");
    auto old = lines_of(log + ".1"), now = lines_of(log);
    ASSERT_EQ(old.size(), 2u);
    ASSERT_EQ(now.size(), 1u);
    EXPECT_EQ(Json::parse(old[1])["source"], "198.51.100.8");
    EXPECT_EQ(Json::parse(now[0])["source"], "198.51.100.7");
    EXPECT_THROW(m.set_log(dir + "/no/such/dir/x.jsonl"), std::runtime_error);
    fs::remove_all(dir);
}

class DropsLab : public ::testing::Test {
protected:
    void SetUp() override {
        auto a = lab.loader("attach --dev vr0");
        ASSERT_EQ(a.rc, 0) << a.out;
    }
    void start(const std::string& text, const std::string& extra = {}) {
        rules = lab.write_rules("rules.yaml", text);
        lab.start_daemon(rules, extra);
    }
    Json drops(const std::string& args) {
        auto r = lab.ctl("drops --json " + args);
        EXPECT_EQ(r.rc, 0) << r.out;
        Json arr = Json::array();
        std::istringstream in(r.out);
        for (std::string l; std::getline(in, l);)
            if (!l.empty()) arr.push_back(Json::parse(l));
        return arr;
    }
    // Waits until the daemon has seen `n` events in all (it polls every 100 ms).
    Json wait_for(std::size_t n) {
        Json r;
        for (int i = 0; i < 100; ++i) {
            r = lab.request({{"cmd", "drops"}});
            if (r["drops"].size() >= n) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        return r;
    }
    Lab lab;
    std::string rules;
};

Bytes syn(const char* src, const char* dst, std::uint16_t sport = 40000) {
    return vaultwall::packet::tcp_frame({ip(src), ip(dst), sport, 443}, vaultwall::packet::tcp_flags::syn);
}

TEST_F(DropsLab, DroppedFlowsAreListedFilteredAndRankedBySource) {
    start(base_rules());
    int tx = lab.sender();
    for (int i = 0; i < 6; ++i) send_frame(tx, syn("198.51.100.9", "203.0.113.10", std::uint16_t(41000 + i)));
    for (int i = 0; i < 2; ++i) send_frame(tx, syn("198.51.100.7", "203.0.113.13"));
    send_frame(tx, syn("198.51.100.9", "198.19.1.100"));  // not_private_link
    send_frame(tx, syn("192.0.2.10", "203.0.113.10"));     // admitted: no event
    auto r = wait_for(9);
    ASSERT_EQ(r["drops"].size(), 9u) << r.dump();

    auto all = drops("");
    ASSERT_EQ(all.size(), 9u);
    EXPECT_EQ(all[0]["interface"], "vr0");
    EXPECT_EQ(all[0]["source"], "198.51.100.9");
    EXPECT_EQ(all[0]["sport"], 41000);
    EXPECT_EQ(all[0]["destination"], "203.0.113.10:443");
    EXPECT_EQ(all[0]["vault"], "alpha");
    EXPECT_EQ(all[0]["reason"], "no_rule");
    EXPECT_EQ(drops("--vault closed").size(), 2u);
    EXPECT_EQ(drops("--reason not_private_link").size(), 1u);
    EXPECT_EQ(drops("--reason public_access_disabled --vault closed")[0]["source"], "198.51.100.7");

    auto t = lab.ctl("drops --top 2 --json");
    ASSERT_EQ(t.rc, 0) << t.out;
    auto top = Json::parse(t.out);
    ASSERT_EQ(top.size(), 2u);
    EXPECT_EQ(top[0]["source"], "198.51.100.9");
    EXPECT_EQ(top[0]["events"], 7);
    EXPECT_EQ(top[1]["source"], "198.51.100.7");

    auto table = lab.ctl("drops");
    EXPECT_EQ(table.rc, 0);
    EXPECT_NE(table.out.find("alpha"), std::string::npos) << table.out;
    EXPECT_NE(table.out.find("drop.no_rule"), std::string::npos) << table.out;

    // Bad usage and unknown names: one line, non-zero.
    EXPECT_NE(lab.ctl("drops --reason ip_rule").rc, 0);
    EXPECT_NE(lab.ctl("drops --vault nosuch").rc, 0);
    EXPECT_EQ(lab.ctl("drops --top 0").rc, 2);
}

// A flood of denied packets over the veth pair (the rate from the rule file): at most one second's worth
// of events per CPU plus the refill, every other drop counted as suppressed,
// and the daemon keeps up.
TEST_F(DropsLab, FloodIsRateLimitedAndCounted) {
    const int metrics_port = 20000 + ::getpid() % 20000;
    const std::uint64_t rate = 300;  // host.drop_events_per_second
    start(base_rules("[192.0.2.0/24]", "  drop_events_per_second: " + std::to_string(rate) +
                                           "\nmetrics: 127.0.0.1:" + std::to_string(metrics_port) + "\n"));
    int tx = lab.sender();
    const int kFlood = 30000;
    const auto c0 = lab.counters();
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < kFlood; ++i)
        send_frame(tx, syn("198.51.100.9", "203.0.113.10", std::uint16_t(1024 + i % 60000)));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const auto drops_seen = lab.counters().get(VW_DROP_NO_RULE, "alpha").packets - c0.get(VW_DROP_NO_RULE, "alpha").packets;
    ASSERT_GE(drops_seen, std::uint64_t(kFlood) * 9 / 10) << "the datapath did not see the flood";

    const Json r = lab.request({{"cmd", "drops"}, {"limit", 0}});
    const auto& ev = r["events"];
    const std::uint64_t sent = ev["sent"], suppressed = ev["suppressed"], lost = ev["lost"];
    const unsigned cpus = std::thread::hardware_concurrency();
    std::printf("flood: %d packets in %.2f s on %u CPUs: %llu events sent, %llu suppressed, %llu lost\n", kFlood,
                secs, cpus, (unsigned long long)sent, (unsigned long long)suppressed, (unsigned long long)lost);
    EXPECT_EQ(sent + suppressed + lost, drops_seen);
    EXPECT_GE(sent, rate);                                                    // one full bucket at least
    EXPECT_LE(sent, std::uint64_t(cpus * (rate + rate * secs)) + 1);          // never more than the limit
    EXPECT_GE(suppressed, drops_seen - std::uint64_t(cpus * (rate + rate * secs)) - 1);
    EXPECT_EQ(lost, 0u) << "the ring buffer overflowed within the limit";
    // The daemon kept every event it was sent (its history holds 10,000).
    auto kept = wait_for(sent);
    EXPECT_EQ(kept["drops"].size(), sent);

    // Exported for Prometheus.
    auto m = run(lab.in_r("curl -sf http://127.0.0.1:" + std::to_string(metrics_port) + "/metrics"));
    ASSERT_EQ(m.rc, 0) << m.out;
    EXPECT_NE(m.out.find("vaultwall_drop_events_suppressed_total " + std::to_string(suppressed) + "\n"),
              std::string::npos)
        << m.out;
}

// Writes frames as a classic pcap (microsecond, Ethernet), by hand: the test
// must not share the reader's library to check it.
void write_pcap(const std::string& path, const std::vector<Bytes>& frames) {
    std::ofstream out(path, std::ios::binary);
    auto u32 = [&](std::uint32_t v) { out.write(reinterpret_cast<const char*>(&v), 4); };
    auto u16 = [&](std::uint16_t v) { out.write(reinterpret_cast<const char*>(&v), 2); };
    u32(0xa1b2c3d4);
    u16(2);
    u16(4);
    u32(0);
    u32(0);
    u32(65535);
    u32(1);  // LINKTYPE_ETHERNET
    std::uint32_t t = 1764625000;
    for (const auto& f : frames) {
        u32(t++);
        u32(0);
        u32(static_cast<std::uint32_t>(f.size()));
        u32(static_cast<std::uint32_t>(f.size()));
        out.write(reinterpret_cast<const char*>(f.data()), static_cast<std::streamsize>(f.size()));
    }
}

std::string hex(const Bytes& b) {
    static const char* d = "0123456789abcdef";
    std::string s;
    for (auto c : b) s += std::string{d[c >> 4], d[c & 15]};
    return s;
}

TEST_F(DropsLab, ExplainAnyFrameAndWhatifOnACapture) {
    start(base_rules());
    // not_ip and malformed: only a real frame can show them.
    auto arp = vaultwall::packet::arp_frame(ip("198.51.100.9"), ip("203.0.113.10"));
    auto e = lab.ctl("explain --json --frame " + hex(arp));
    ASSERT_EQ(e.rc, 0) << e.out;
    EXPECT_EQ(Json::parse(e.out)["reason"], "not_ip");
    Bytes cut = syn("198.51.100.9", "203.0.113.10");
    cut.resize(30);
    e = lab.ctl("explain --json --frame " + hex(cut));
    ASSERT_EQ(e.rc, 0) << e.out;
    auto j = Json::parse(e.out);
    EXPECT_EQ(j["verdict"], "drop");
    EXPECT_EQ(j["reason"], "malformed");
    EXPECT_EQ(j["reference"]["reason"], "malformed");
    EXPECT_EQ(lab.ctl("explain --frame 0g").rc, 1);
    EXPECT_EQ(lab.ctl("explain --frame 00 --src 1.2.3.4").rc, 2);

    const std::vector<Bytes> capture = {
        syn("192.0.2.10", "203.0.113.10"),    // alpha ip_rule
        syn("198.51.100.9", "203.0.113.10"),  // alpha no_rule
        syn("198.51.100.9", "203.0.113.10", 41001),
        syn("198.51.100.9", "203.0.113.12"),  // open default_allow
        arp,
    };
    const std::string pcap = lab.dir + "/capture.pcap";
    write_pcap(pcap, capture);
    e = lab.ctl("explain --json --pcap " + pcap);
    ASSERT_EQ(e.rc, 0) << e.out;
    j = Json::parse(e.out);
    ASSERT_EQ(j["packets"], 5);
    EXPECT_EQ(j["disagree"], 0);
    EXPECT_EQ(j["results"][0]["reason"], "ip_rule");
    EXPECT_EQ(j["results"][0]["rule"], "192.0.2.0/24");
    EXPECT_EQ(j["results"][1]["reason"], "no_rule");
    EXPECT_EQ(j["results"][1]["flow"]["src"], "198.51.100.9");
    EXPECT_EQ(j["results"][4]["reason"], "not_ip");
    EXPECT_EQ(lab.ctl("explain --pcap " + pcap).rc, 0);

    // whatif: alpha admits 198.51.100.0/24, open turns to deny.
    std::string next = base_rules("[192.0.2.0/24, 198.51.100.0/24]");
    const std::string from = "      default_action: allow\n";
    next.replace(next.find(from), from.size(), "      default_action: deny\n      bypass: none\n");
    const std::string file = lab.write_rules("next.yaml", next);
    auto w = lab.ctl("whatif " + file + " --pcap " + pcap + " --json");
    ASSERT_EQ(w.rc, 0) << w.out;
    j = Json::parse(w.out);
    EXPECT_EQ(j["packets"], 5);
    EXPECT_EQ(j["changed"], 3);
    std::map<std::string, int> summary;
    for (const auto& s : j["summary"])
        summary[s["vault"].get<std::string>() + " " + s["from"].get<std::string>() + " -> " +
                s["to"].get<std::string>()] = s["packets"];
    EXPECT_EQ(summary["alpha drop.no_rule -> pass.ip_rule"], 2) << w.out;
    EXPECT_EQ(summary["open pass.default_allow -> drop.no_rule"], 1) << w.out;
    EXPECT_EQ(j["changes"][0]["index"], 2);
    // Nothing live changed.
    EXPECT_EQ(Json::parse(lab.ctl("explain --json --src 198.51.100.9 --dst 203.0.113.10:443").out)["reason"], "no_rule");
    auto bad = lab.ctl("whatif " + lab.write_rules("bad.yaml", "version: 1\nvaults: 7\n") + " --pcap " + pcap);
    EXPECT_EQ(bad.rc, 1) << bad.out;
}

// SPEC §9 for real: a vault in audit mode passes what it would drop, counts
// it under `audit`, reports it as an audit event; a reload to enforce drops
// it again, atomically.
TEST_F(DropsLab, AuditModePassesCountsAndReportsThenEnforceDrops) {
    auto audited = [](const std::string& mode) {
        std::string r = base_rules();
        const std::string acl = "    network_acls:\n      default_action: deny\n      bypass: none\n";
        r.replace(r.find(acl), acl.size(), "    network_acls:\n      enforcement: " + mode + "\n" + acl.substr(18));
        return r;
    };
    start(audited("audit"));
    int tx = lab.sender(), rx = lab.receiver();
    const auto c0 = lab.counters();
    const Bytes denied = syn("198.51.100.9", "203.0.113.10");
    send_frame(tx, denied);
    auto got = drain(rx, 150);
    const auto c1 = lab.counters();
    EXPECT_EQ(c1.get(VW_AUDIT_NO_RULE, "alpha").packets - c0.get(VW_AUDIT_NO_RULE, "alpha").packets, 1u);
    EXPECT_EQ(c1.get(VW_DROP_NO_RULE, "alpha").packets, c0.get(VW_DROP_NO_RULE, "alpha").packets);
    EXPECT_EQ(std::count(got.begin(), got.end(), denied), 1) << "the audited packet did not pass";
    auto stats = Json::parse(lab.ctl("stats --json").out);
    EXPECT_EQ(stats["vaults"]["alpha"]["audit"]["no_rule"]["packets"], 1) << stats.dump();
    auto r = wait_for(1);
    ASSERT_EQ(r["drops"].size(), 1u) << r.dump();
    EXPECT_EQ(r["drops"][0]["verdict"], "audit");
    EXPECT_EQ(r["drops"][0]["reason"], "no_rule");
    auto e = Json::parse(lab.ctl("explain --json --src 198.51.100.9 --dst 203.0.113.10:443").out);
    EXPECT_EQ(e["verdict"], "audit");
    EXPECT_EQ(e["reference"]["verdict"], "audit");

    // Enforce: the same packet is dropped.
    lab.write_rules("rules.yaml", audited("enforce"));
    auto rl = lab.ctl("reload");
    ASSERT_EQ(rl.rc, 0) << rl.out;
    send_frame(tx, denied);
    got = drain(rx, 150);
    EXPECT_EQ(std::count(got.begin(), got.end(), denied), 0);
    EXPECT_EQ(lab.counters().get(VW_DROP_NO_RULE, "alpha").packets - c1.get(VW_DROP_NO_RULE, "alpha").packets, 1u);
    r = wait_for(2);
    ASSERT_EQ(r["drops"].size(), 2u);
    EXPECT_EQ(r["drops"][1]["verdict"], "drop");
}
