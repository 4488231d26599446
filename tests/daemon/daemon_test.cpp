// vaultwall-loader, vaultwalld's control socket and vaultwallctl, against the
// real XDP program on a veth pair in namespaces the tests create.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <linux/if_link.h>
#include <grp.h>

#include "lab.hpp"

using namespace vwtest;
using vaultwall::packet::Bytes;

namespace {

// A foreign XDP program ("vw_other": return XDP_PASS) attached to `dev` in `ns`.
struct ForeignXdp {
    int fd = -1;
    std::uint32_t id = 0;
    ForeignXdp(const std::string& ns, const std::string& dev) {
        bpf_insn insns[] = {
            {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 2 /* XDP_PASS */},
            {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
        };
        fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "vw_other", "GPL", insns, 2, nullptr);
        if (fd < 0) throw std::runtime_error("cannot load the foreign XDP program");
        id = vaultwall::daemon::prog_id_of_fd(fd);
        int rc = in_netns(ns, [&] {
            return bpf_xdp_attach(static_cast<int>(if_nametoindex(dev.c_str())), fd, XDP_FLAGS_DRV_MODE, nullptr);
        });
        if (rc != 0) throw std::runtime_error("cannot attach the foreign XDP program");
    }
    ~ForeignXdp() { ::close(fd); }  // the namespace's deletion detaches it
};

bool contains(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

}  // namespace

class LoaderTest : public ::testing::TestWithParam<std::string> {};

TEST_P(LoaderTest, AttachDetachStatus) {
    Lab lab;
    const std::string mode = GetParam();
    auto a = lab.loader("attach --dev vr0 --mode " + mode);
    ASSERT_EQ(a.rc, 0) << a.out;
    EXPECT_TRUE(contains(a.out, "attached vaultwall to vr0 in " + mode + " mode")) << a.out;
    EXPECT_TRUE(fs::exists(lab.pin_root + "/vr0/prog_main"));
    for (const auto& m : vaultwall::bpfmaps::kMaps)
        EXPECT_TRUE(fs::exists(lab.pin_root + "/vr0/" + m.name)) << m.name << " (" << m.role << ") not pinned";

    auto ipl = run(lab.in_r("ip link show vr0"));
    EXPECT_TRUE(contains(ipl.out, mode == "skb" ? "xdpgeneric" : "xdp ")) << ipl.out;
    EXPECT_TRUE(contains(ipl.out, "xdp_vaultwall")) << ipl.out;

    auto st = lab.loader("status --json");
    ASSERT_EQ(st.rc, 0) << st.out;
    auto j = Json::parse(st.out);
    ASSERT_EQ(j["interfaces"].size(), 1u);
    const auto& i = j["interfaces"][0];
    EXPECT_EQ(i["dev"], "vr0");
    EXPECT_EQ(i["attached"], true);
    EXPECT_EQ(i["mode"], mode);
    EXPECT_GT(i["prog_id"].get<std::uint32_t>(), 0u);
    EXPECT_EQ(i["generation"], 0);
    EXPECT_EQ(i["totals"]["drop"]["packets"], 0);
    auto human = lab.loader("status");
    EXPECT_EQ(human.rc, 0);
    EXPECT_TRUE(contains(human.out, "vr0") && contains(human.out, "attached")) << human.out;

    // Attaching again: refused, and the first attachment is untouched.
    auto again = lab.loader("attach --dev vr0 --mode " + mode);
    EXPECT_EQ(again.rc, 1);
    EXPECT_TRUE(contains(again.out, "already attached to vr0")) << again.out;
    EXPECT_EQ(std::count(again.out.begin(), again.out.end(), '\n'), 1) << again.out;

    auto d = lab.loader("detach --dev vr0");
    ASSERT_EQ(d.rc, 0) << d.out;
    EXPECT_FALSE(fs::exists(lab.pin_root + "/vr0"));
    ipl = run(lab.in_r("ip link show vr0"));
    EXPECT_FALSE(contains(ipl.out, "xdp")) << ipl.out;
    auto d2 = lab.loader("detach --dev vr0");
    EXPECT_EQ(d2.rc, 1);
    EXPECT_TRUE(contains(d2.out, "not attached")) << d2.out;
}

INSTANTIATE_TEST_SUITE_P(Modes, LoaderTest, ::testing::Values("native", "skb"));

TEST(Loader, RefusesWhenAnotherXdpProgramHoldsTheInterface) {
    Lab lab;
    ForeignXdp other(lab.rns, "vr0");
    auto a = lab.loader("attach --dev vr0");
    EXPECT_EQ(a.rc, 1);
    EXPECT_TRUE(contains(a.out, "another XDP program holds vr0: prog id " + std::to_string(other.id) +
                                    " 'vw_other'")) << a.out;
    EXPECT_EQ(std::count(a.out.begin(), a.out.end(), '\n'), 1) << "one line only: " << a.out;
    EXPECT_FALSE(fs::exists(lab.pin_root + "/vr0"));
    // Detach does not touch it either.
    auto d = lab.loader("detach --dev vr0");
    EXPECT_EQ(d.rc, 1);
    EXPECT_TRUE(contains(d.out, "vw_other")) << d.out;
    auto ipl = run(lab.in_r("ip link show vr0"));
    EXPECT_TRUE(contains(ipl.out, "id " + std::to_string(other.id))) << ipl.out;
}

TEST(Loader, ClearRefusalsAndUsage) {
    Lab lab;
    auto none = lab.loader("attach --dev nosuch0");
    EXPECT_EQ(none.rc, 1);
    EXPECT_EQ(none.out, "vaultwall-loader: no such interface: nosuch0\n");
    // Loopback has no native XDP.
    auto lo = lab.loader("attach --dev lo --mode native");
    EXPECT_EQ(lo.rc, 1);
    EXPECT_EQ(lo.out, "vaultwall-loader: lo does not support native XDP (try --mode skb)\n");
    auto bad = run(bin("vaultwall-loader") + " attach --dev vr0 --mode turbo");
    EXPECT_EQ(bad.rc, 2) << bad.out;
    EXPECT_EQ(run(bin("vaultwall-loader")).rc, 2);
    EXPECT_EQ(run(bin("vaultwall-loader") + " --help").rc, 0);
    EXPECT_EQ(run(bin("vaultwallctl") + " --help").rc, 0);
    EXPECT_EQ(run(bin("vaultwallctl") + " explain --src 192.0.2.1").rc, 2);
    EXPECT_EQ(run(bin("vaultwalld") + " --help").rc, 0);
    EXPECT_EQ(run(bin("vaultwalld")).rc, 2);
    auto no_daemon = lab.ctl("reload");
    EXPECT_EQ(no_daemon.rc, 1);
    EXPECT_TRUE(contains(no_daemon.out, "vaultwalld is not running")) << no_daemon.out;
}

// ---------------------------------------------------------------- daemon

class DaemonTest : public ::testing::Test {
protected:
    void SetUp() override {
        auto a = lab.loader("attach --dev vr0");
        ASSERT_EQ(a.rc, 0) << a.out;
        rules = lab.write_rules("rules.yaml", base_rules("[192.0.2.0/24]", "metrics: 127.0.0.1:19470\n"));
        lab.start_daemon(rules);
    }
    Lab lab;
    std::string rules;
};

TEST_F(DaemonTest, ReloadAnswersGenerationRulesDiffAndTime) {
    auto st = lab.request({{"cmd", "status"}});
    ASSERT_TRUE(st["ok"]) << st.dump();
    EXPECT_EQ(st["generation"], 1);
    EXPECT_EQ(st["interfaces"][0]["dev"], "vr0");

    auto more = lab.write_rules("more.yaml", base_rules("[192.0.2.0/24, 198.51.100.0/25, 198.51.100.200]"));
    auto r = lab.request({{"cmd", "reload"}, {"file", more}});
    ASSERT_TRUE(r["ok"]) << r.dump();
    EXPECT_EQ(r["generation"], 2);
    EXPECT_EQ(r["rules"], 4);  // 3 ip rules + 1 vnet rule
    ASSERT_EQ(r["diff"].size(), 1u);
    EXPECT_EQ(r["diff"][0]["vault"], "alpha");
    EXPECT_EQ(r["diff"][0]["added"], 2);
    EXPECT_EQ(r["diff"][0]["removed"], 0);
    EXPECT_TRUE(r["took_ms"].is_number());

    // SIGHUP reloads the same (now: more.yaml) file.
    ::kill(lab.daemon_pid, SIGHUP);
    for (int i = 0; i < 100 && lab.request({{"cmd", "status"}})["generation"] != 3; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_EQ(lab.request({{"cmd", "status"}})["generation"], 3);

    auto c = lab.ctl("reload " + rules);
    EXPECT_EQ(c.rc, 0) << c.out;
    EXPECT_TRUE(contains(c.out, "generation 4")) << c.out;
    EXPECT_TRUE(contains(c.out, "alpha") && contains(c.out, "-2 rules")) << c.out;

    auto rl = lab.ctl("rules --vault alpha --json");
    ASSERT_EQ(rl.rc, 0) << rl.out;
    auto arr = Json::parse(rl.out);
    ASSERT_EQ(arr.size(), 2u);
    EXPECT_EQ(arr[0]["kind"], "ip_rule");
    EXPECT_EQ(arr[0]["prefix"], "192.0.2.0/24");
    EXPECT_EQ(arr[1]["kind"], "vnet_rule");
    EXPECT_EQ(arr[1]["vni"], 5001);
    EXPECT_EQ(arr[1]["origin"], "prod/app");
    EXPECT_EQ(lab.ctl("rules --vault nosuch").rc, 1);

    auto sj = lab.ctl("status --json");
    ASSERT_EQ(sj.rc, 0) << sj.out;
    EXPECT_EQ(Json::parse(sj.out)["reloads"]["ok"], 4);
}

TEST_F(DaemonTest, StatsJsonIsSpecShapeAndMetricsServeTheSameFigures) {
    auto s = lab.ctl("stats --json");
    ASSERT_EQ(s.rc, 0) << s.out;
    auto j = Json::parse(s.out);
    std::vector<std::string> top;
    for (auto& [k, v] : j.items()) top.push_back(k);
    EXPECT_EQ(top, (std::vector<std::string>{"generation", "global", "vaults"}));
    auto keys = [](const Json& o) {
        std::vector<std::string> k;
        for (auto& [n, v] : o.items()) k.push_back(n);
        return k;
    };
    EXPECT_EQ(keys(j["global"]["pass"]), (std::vector<std::string>{"not_ip", "unprotected"}));
    EXPECT_EQ(keys(j["global"]["drop"]),
              (std::vector<std::string>{"malformed", "untrusted_vtep", "fragment", "not_private_link"}));
    ASSERT_TRUE(j["vaults"].contains("alpha"));
    EXPECT_EQ(keys(j["vaults"]["alpha"]["pass"]),
              (std::vector<std::string>{"private_endpoint", "ip_rule", "vnet_rule", "default_allow",
                                        "trusted_candidate"}));
    EXPECT_EQ(keys(j["vaults"]["alpha"]["drop"]), (std::vector<std::string>{"no_rule", "public_access_disabled"}));
    EXPECT_EQ(keys(j["vaults"]["alpha"]["drop"]["no_rule"]), (std::vector<std::string>{"packets", "bytes"}));
    EXPECT_EQ(j["vaults"].size(), 4u);

    // Send one denied packet; stats, table and metrics all show it.
    int tx = lab.sender();
    Bytes f = vaultwall::daemon::explain_frame(ip("198.51.100.9"), ip("203.0.113.10"), 443, true);
    send_frame(tx, f);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    j = Json::parse(lab.ctl("stats --json").out);
    EXPECT_EQ(j["vaults"]["alpha"]["drop"]["no_rule"]["packets"], 1);
    EXPECT_EQ(j["vaults"]["alpha"]["drop"]["no_rule"]["bytes"], f.size());
    auto table = lab.ctl("stats");
    EXPECT_TRUE(contains(table.out, "alpha") && contains(table.out, "no_rule")) << table.out;
    auto m = run(lab.in_r("curl -sf http://127.0.0.1:19470/metrics"));
    ASSERT_EQ(m.rc, 0) << m.out;
    EXPECT_TRUE(contains(m.out, "vaultwall_packets_total{vault=\"alpha\",verdict=\"drop\",reason=\"no_rule\"} 1\n")) << m.out;
    EXPECT_TRUE(contains(m.out, "vaultwall_bytes_total{vault=\"alpha\",verdict=\"drop\",reason=\"no_rule\"} " +
                                    std::to_string(f.size()) + "\n"));
    EXPECT_TRUE(contains(m.out, "vaultwall_rules{vault=\"alpha\",kind=\"ip_rule\"} 1\n"));
    EXPECT_TRUE(contains(m.out, "vaultwall_generation 1\n"));
    EXPECT_TRUE(contains(m.out, "vaultwall_reloads_total{outcome=\"success\"} 1\n"));
    EXPECT_EQ(run(lab.in_r("curl -s -o /dev/null -w %{http_code} http://127.0.0.1:19470/nope")).out, "404");
}

// Too few stride-table blocks: the reload says so, and the scopes that did
// not fit are still filtered right (by the trie) on real traffic.
TEST(Daemon, TooFewLookupBlocksWarnAndStillFilter) {
    Lab lab;
    auto a = lab.loader("attach --dev vr0 --lookup-blocks 3");
    ASSERT_EQ(a.rc, 0) << a.out;
    // alpha's ip rules need root + 192 + 192.0 + 192.0.2 + 198 + 198.51 + 198.51.100
    // blocks: more than 3. Its vnet rule (3 blocks) fits.
    auto rules = lab.write_rules("rules.yaml", base_rules("[192.0.2.0/24, 198.51.100.7]"));
    lab.start_daemon(rules);
    auto r = lab.request({{"cmd", "reload"}, {"file", rules}});
    ASSERT_TRUE(r["ok"]) << r.dump();
    ASSERT_TRUE(r.contains("warnings")) << r.dump();
    EXPECT_TRUE(contains(r["warnings"].dump(), "1 of 2 rule scopes")) << r.dump();
    EXPECT_TRUE(contains(r["warnings"].dump(), "--lookup-blocks")) << r.dump();

    int tx = lab.sender();
    send_frame(tx, vaultwall::daemon::explain_frame(ip("198.51.100.7"), ip("203.0.113.10"), 443, true));
    send_frame(tx, vaultwall::daemon::explain_frame(ip("198.51.100.8"), ip("203.0.113.10"), 443, true));
    send_frame(tx, vaultwall::daemon::explain_frame(ip("192.0.2.200"), ip("203.0.113.10"), 443, true));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    auto j = Json::parse(lab.ctl("stats --json").out);
    EXPECT_EQ(j["vaults"]["alpha"]["pass"]["ip_rule"]["packets"], 2);
    EXPECT_EQ(j["vaults"]["alpha"]["drop"]["no_rule"]["packets"], 1);
}

// Runs `fn` in a child with the given uid/gid and returns what it printed.
static std::string as_user(uid_t uid, gid_t gid, const std::function<std::string()>& fn) {
    int p[2];
    if (::pipe(p) != 0) return "pipe failed";
    pid_t pid = ::fork();
    if (pid == 0) {
        ::close(p[0]);
        std::string out;
        if (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0) out = "cannot drop privileges";
        else {
            try {
                out = fn();
            } catch (const std::exception& e) {
                out = std::string("exception: ") + e.what();
            }
        }
        (void)!::write(p[1], out.data(), out.size());
        ::_exit(0);
    }
    ::close(p[1]);
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(p[0], buf, sizeof(buf))) > 0) out.append(buf, static_cast<std::size_t>(n));
    ::close(p[0]);
    ::waitpid(pid, nullptr, 0);
    return out;
}

TEST_F(DaemonTest, NonRootPeerCannotReload) {
    // The socket is root's, mode 0600: nobody cannot even connect.
    EXPECT_EQ(fs::status(lab.sock).permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);
    const std::string sock = lab.sock;
    auto out = as_user(65534, 65534, [&] {
        return vaultwall::daemon::control_request(sock, {{"cmd", "reload"}}).dump();
    });
    EXPECT_TRUE(contains(out, "permission denied")) << out;

    // Opened up by hand, the daemon itself still refuses a non-root peer
    // (SO_PEERCRED), while read-only commands work.
    fs::permissions(fs::path(lab.dir), fs::perms::all);
    fs::permissions(lab.sock, fs::perms::all);
    out = as_user(65534, 65534, [&] { return vaultwall::daemon::control_request(sock, {{"cmd", "reload"}}).dump(); });
    EXPECT_TRUE(contains(out, "\"ok\":false") && contains(out, "permission denied: reload needs root")) << out;
    out = as_user(65534, 65534, [&] { return vaultwall::daemon::control_request(sock, {{"cmd", "stats"}}).dump(); });
    EXPECT_TRUE(contains(out, "\"ok\":true")) << out;
    EXPECT_EQ(lab.request({{"cmd", "status"}})["generation"], 1) << "nothing was reloaded";
    EXPECT_TRUE(contains(Lab::slurp(lab.log), "refused reload from uid 65534")) << Lab::slurp(lab.log);
}

TEST(Daemon, ControlGroupMayReload) {
    Lab lab;
    ASSERT_EQ(lab.loader("attach --dev vr0").rc, 0);
    auto rules = lab.write_rules("rules.yaml", base_rules());
    fs::permissions(fs::path(lab.dir), fs::perms::all);
    lab.start_daemon(rules, "--group nogroup");
    EXPECT_EQ(fs::status(lab.sock).permissions() & fs::perms::all,
              fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::group_write);
    const std::string sock = lab.sock;
    auto out = as_user(65534, 65534, [&] { return vaultwall::daemon::control_request(sock, {{"cmd", "reload"}}).dump(); });
    EXPECT_TRUE(contains(out, "\"ok\":true") && contains(out, "\"generation\":2")) << out;
    out = as_user(65533, 65533, [&] { return vaultwall::daemon::control_request(sock, {{"cmd", "reload"}}).dump(); });
    EXPECT_TRUE(contains(out, "permission denied")) << out;
}

TEST(Daemon, StartupRejectsABadFileAndChangesNothing) {
    Lab lab;
    ASSERT_EQ(lab.loader("attach --dev vr0").rc, 0);
    auto bad = lab.write_rules("bad.yaml", "version: 1\nvaults:\n  - name: a\n    endpoints: [203.0.113.10:443\n");
    auto r = run(lab.in_r(bin("vaultwalld") + " --config " + bad + " --socket " + lab.sock + " --pin-dir " + lab.pin_root));
    EXPECT_EQ(r.rc, 1);
    EXPECT_TRUE(contains(r.out, "vaultwalld: " + bad + ":5:1: error: YAML syntax error")) << r.out;
    EXPECT_EQ(lab.counters().generation, 0u);
    EXPECT_FALSE(fs::exists(lab.sock));
}
