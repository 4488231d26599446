// vaultwalld --etcd (SPEC §8) end to end: real daemons, each in its own
// network namespace with vaultwall attached (native XDP on a veth pair),
// following one rule set in a real three-member etcd cluster. Verdicts are
// read from the live kernel program (`vaultwallctl explain`) and from real
// frames sent over the veth. Root; run under the network lock.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include <nlohmann/json.hpp>

#include "../daemon/lab.hpp"
#include "etcd_cluster.hpp"
#include "fleet/etcd.hpp"
#include "fleet/ruleset.hpp"
#include "support.hpp"

using namespace std::chrono_literals;
using vaultwall::packet::Bytes;
namespace fleet = vaultwall::fleet;

namespace {

const std::string kRuleset = "prod";

// A vault host: a Lab (sender namespace, receiver namespace with XDP on vr0)
// whose vaultwalld takes its rules from etcd.
class FleetHost {
public:
    FleetHost(std::string id, std::string etcd_flags) : id_(std::move(id)), etcd_flags_(std::move(etcd_flags)) {
        lab.sh(lab.in_r(vwtest::bin("vaultwall-loader") + " attach --dev vr0 --mode native --pin-dir " + lab.pin_root +
                        " --max-rules 4096 --lookup-blocks 64"));
        lab.sh("ip -n " + lab.rns + " addr add 203.0.113.10/24 dev vr0");
        local_dir = lab.dir + "/local";
        std::filesystem::create_directories(local_dir);
    }
    ~FleetHost() { stop(SIGKILL); }

    void start() {
        std::string log = lab.dir + "/vaultwalld.log";
        std::string cmd = "exec " + lab.in_r(vwtest::bin("vaultwalld")) + " " + etcd_flags_ + " --ruleset " + kRuleset +
                          " --host-id " + id_ + " --socket " + lab.sock + " --pin-dir " + lab.pin_root +
                          " --state-dir " + lab.dir + "/state --ruleset-dir " + local_dir + " --lease-ttl 3 >>" +
                          log + " 2>&1";
        pid_t pid = ::fork();
        if (pid == 0) {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // as in Lab::start_daemon
            ::execl("/bin/sh", "sh", "-c", cmd.c_str(), nullptr);
            ::_exit(127);
        }
        lab.daemon_pid = pid;
        for (int i = 0; i < 1000; ++i) {
            try {
                if (lab.request({{"cmd", "ping"}}).value("ok", false)) return;
            } catch (...) {
            }
            int st;
            if (::waitpid(pid, &st, WNOHANG) == pid) {
                lab.daemon_pid = 0;
                throw std::runtime_error("vaultwalld exited at start: " + vwtest::Lab::slurp(log));
            }
            std::this_thread::sleep_for(20ms);
        }
        throw std::runtime_error("vaultwalld did not answer on " + lab.sock);
    }
    void stop(int sig = SIGTERM) { lab.stop_daemon(sig); }

    // The live kernel program's verdict for a SYN from `src` to the vault.
    std::string verdict(const std::string& src) {
        auto r = lab.ctl("explain --src " + src + " --dst 203.0.113.10:443 --json");
        auto j = nlohmann::json::parse(r.out, nullptr, false);
        return j.is_object() ? j.value("verdict", "?") : "error: " + r.out;
    }
    std::string log() { return vwtest::Lab::slurp(lab.dir + "/vaultwalld.log"); }

    vwtest::Lab lab;
    std::string local_dir;

private:
    std::string id_, etcd_flags_;
};

class DaemonFleetTest : public ::testing::Test {
protected:
    void SetUp() override { make_cluster({}); }
    void make_cluster(vwtest::EtcdClusterOptions o) {
        hosts_.clear();
        cluster_ = std::make_unique<vwtest::EtcdCluster>(o);
        fleet::EtcdOptions eo;
        eo.endpoints = fleet::split_endpoints(cluster_->endpoints());
        if (o.tls) {
            eo.cacert = cluster_->ca();
            eo.cert = cluster_->client_cert();
            eo.key = cluster_->client_key();
        }
        etcd_ = std::make_unique<fleet::EtcdClient>(eo);
        dir_ = cluster_->dir() + "/src";
    }
    // The daemons run in their own network namespaces: they reach etcd
    // through its local sockets.
    std::string flags() const { return "--etcd " + cluster_->socket_endpoints(); }

    // Publishes `ips` (and `extra` in the vault) as a new revision.
    std::int64_t publish(const std::vector<std::string>& ips, const std::string& extra = {},
                         const std::string& top = {}) {
        std::string file = vwtest::make_rules_dir(dir_, ips);
        if (!extra.empty() || !top.empty()) vwtest::write_file(file, vwtest::rule_text(ips, extra) + top);
        vaultwall::rules::RuleFile loaded;
        return fleet::publish(*etcd_, kRuleset, fleet::load_bundle(file, loaded), std::nullopt).revision;
    }
    FleetHost& add_host(const std::string& id, const std::string& etcd_flags = {}) {
        hosts_.push_back(std::make_unique<FleetHost>(id, etcd_flags.empty() ? flags() : etcd_flags));
        return *hosts_.back();
    }
    // Waits until fleet status shows `n` hosts in `want` state for `rev`.
    fleet::FleetStatus wait_status(std::size_t n, std::int64_t rev, std::chrono::seconds budget = 20s) {
        auto end = std::chrono::steady_clock::now() + budget;
        fleet::FleetStatus st;
        while (std::chrono::steady_clock::now() < end) {
            st = fleet::fleet_status(*etcd_, kRuleset);
            std::size_t settled = 0;
            for (const auto& h : st.hosts)
                settled += h.record.revision == rev || h.record.failed_revision == rev;
            if (st.revision == rev && st.hosts.size() == n && settled == n) break;
            std::this_thread::sleep_for(100ms);
        }
        return st;
    }
    const fleet::HostState* host_in(const fleet::FleetStatus& st, const std::string& id) {
        for (const auto& h : st.hosts)
            if (h.record.host_id == id) return &h;
        return nullptr;
    }

    std::unique_ptr<vwtest::EtcdCluster> cluster_;
    std::unique_ptr<fleet::EtcdClient> etcd_;
    std::string dir_;
    std::vector<std::unique_ptr<FleetHost>> hosts_;
};

// A TCP ACK from `src` to the vault (no admission record).
Bytes frame_from(const std::string& src, std::uint32_t seq) {
    auto spec = vaultwall::packet::FrameSpec::tcp_flow({vwtest::ip(src.c_str()), vwtest::ip("203.0.113.10"), 40000, 443},
                                                       vaultwall::packet::tcp_flags::ack);
    spec.tcp.seq = seq;
    return spec.build();
}

std::size_t count_from(const std::vector<Bytes>& frames, const std::string& src) {
    std::uint32_t want = vwtest::ip(src.c_str());
    std::size_t n = 0;
    for (const auto& f : frames)
        if (f.size() >= 34 && f[12] == 0x08 && f[13] == 0) {
            std::uint32_t s = std::uint32_t(f[26]) << 24 | std::uint32_t(f[27]) << 16 | std::uint32_t(f[28]) << 8 | f[29];
            n += s == want;
        }
    return n;
}

}  // namespace

TEST_F(DaemonFleetTest, ARevisionOneHostCannotApplyIsReportedWhileTheOthersEnforceIt) {
    std::int64_t r1 = publish({"192.0.2.0/24"});
    auto& a = add_host("vault-a");
    auto& b = add_host("vault-b");
    auto& c = add_host("vault-c");
    // a and b have the gate's certificate; c lacks it (a host-local file).
    vwtest::exec("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=vault "
                 "-addext subjectAltName=IP:203.0.113.10 -keyout " + dir_ + "/vault.key -out " + dir_ + "/vault.pem");
    for (FleetHost* h : {&a, &b}) {
        std::filesystem::create_directories(h->local_dir + "/certs");
        std::filesystem::copy_file(dir_ + "/vault.pem", h->local_dir + "/certs/vault.pem");
        std::filesystem::copy_file(dir_ + "/vault.key", h->local_dir + "/certs/vault.key");
    }
    for (FleetHost* h : {&a, &b, &c}) h->start();
    auto st = wait_status(3, r1);
    ASSERT_EQ(st.hosts.size(), 3u);
    EXPECT_TRUE(st.converged());
    for (FleetHost* h : {&a, &b, &c}) EXPECT_EQ(h->verdict("198.51.100.7"), "drop");

    // Revision 2 admits 198.51.100.7 and turns the gate on.
    std::int64_t r2 = publish({"192.0.2.0/24", "198.51.100.7"}, {},
                              "gate:\n  tls_cert: certs/vault.pem\n  tls_key: certs/vault.key\n");
    st = wait_status(3, r2);
    ASSERT_EQ(st.hosts.size(), 3u);
    EXPECT_FALSE(st.converged());
    EXPECT_EQ(host_in(st, "vault-a")->state, "current");
    EXPECT_EQ(host_in(st, "vault-b")->state, "current");
    const auto* failed = host_in(st, "vault-c");
    ASSERT_NE(failed, nullptr);
    EXPECT_EQ(failed->state, "failed");
    EXPECT_EQ(failed->record.revision, r1);
    EXPECT_EQ(failed->record.failed_revision, r2);
    EXPECT_NE(failed->record.error.find("vault.pem"), std::string::npos) << failed->record.error;
    EXPECT_EQ(a.verdict("198.51.100.7"), "pass");
    EXPECT_EQ(b.verdict("198.51.100.7"), "pass");
    EXPECT_EQ(c.verdict("198.51.100.7"), "drop") << "the failing host must keep its last good rule set";

    // What an operator runs: fleet status names the failing host, exit 1.
    auto out = vwtest::exec(vwtest::bin("vaultwallctl") + " fleet status --etcd " + cluster_->endpoints() +
                            " --ruleset " + kRuleset);
    EXPECT_EQ(out.rc, 1) << out.out;
    EXPECT_NE(out.out.find("vault-c"), std::string::npos);
    EXPECT_NE(out.out.find("failed"), std::string::npos) << out.out;
}

TEST_F(DaemonFleetTest, AKilledDaemonRestartsAdoptsItsPinsAndCatchesUpWithoutAnEnforcementGap) {
    std::int64_t r1 = publish({"192.0.2.0/24"});
    auto& h = add_host("vault-a");
    h.start();
    ASSERT_EQ(wait_status(1, r1).hosts.size(), 1u);
    int tx = h.lab.sender(), rx = h.lab.receiver();

    // Frames flow the whole time: admitted 192.0.2.10, denied 198.51.100.9.
    std::atomic<bool> stop{false};
    std::atomic<std::uint32_t> sent{0};
    std::thread sender([&] {
        for (std::uint32_t seq = 1; !stop; ++seq) {
            vwtest::send_frame(tx, frame_from("192.0.2.10", seq));
            vwtest::send_frame(tx, frame_from("198.51.100.9", seq));
            sent = seq;
            std::this_thread::sleep_for(2ms);
        }
    });
    std::vector<Bytes> got;
    std::thread receiver([&] {
        while (!stop) {
            auto part = vwtest::drain(rx, 100);
            got.insert(got.end(), part.begin(), part.end());
        }
    });
    std::this_thread::sleep_for(300ms);
    h.stop(SIGKILL);
    // While the daemon is dead the pinned datapath keeps enforcing revision 1;
    // a new revision is published meanwhile.
    std::int64_t r2 = publish({"192.0.2.0/24", "198.51.100.77"});
    std::this_thread::sleep_for(500ms);
    h.start();  // adopts the pins, starts from its cached revision, catches up
    auto st = wait_status(1, r2);
    std::this_thread::sleep_for(300ms);
    stop = true;
    sender.join();
    receiver.join();
    auto rest = vwtest::drain(rx, 200);
    got.insert(got.end(), rest.begin(), rest.end());

    ASSERT_EQ(st.hosts.size(), 1u);
    EXPECT_EQ(st.hosts[0].record.revision, r2);
    EXPECT_EQ(count_from(got, "192.0.2.10"), sent.load()) << "admitted frames were lost: an enforcement gap";
    EXPECT_EQ(count_from(got, "198.51.100.9"), 0u) << "denied frames got through: an enforcement gap";
    EXPECT_EQ(h.verdict("198.51.100.77"), "pass");
    EXPECT_NE(h.log().find("cached"), std::string::npos) << "the restart did not start from its cached revision";
}

TEST_F(DaemonFleetTest, WhileEveryMemberIsDownHostsKeepEnforcingAndCatchUpAfter) {
    std::int64_t r1 = publish({"192.0.2.0/24"});
    auto& a = add_host("vault-a");
    auto& b = add_host("vault-b");
    a.start();
    b.start();
    ASSERT_EQ(wait_status(2, r1).hosts.size(), 2u);
    for (int i = 0; i < cluster_->size(); ++i) cluster_->kill(i);
    std::this_thread::sleep_for(5s);  // past the lease TTL and the watch's progress timeout
    for (FleetHost* h : {&a, &b}) {
        EXPECT_EQ(h->verdict("192.0.2.10"), "pass");
        EXPECT_EQ(h->verdict("198.51.100.7"), "drop");
        EXPECT_EQ(h->lab.ctl("status").rc, 0) << "the daemon stopped serving while etcd was down";
    }
    for (int i = 0; i < cluster_->size(); ++i) cluster_->start(i);
    cluster_->wait_healthy();
    std::int64_t r2 = publish({"192.0.2.0/24", "198.51.100.7"});
    auto st = wait_status(2, r2, 30s);
    ASSERT_EQ(st.hosts.size(), 2u);
    EXPECT_TRUE(st.converged());
    for (FleetHost* h : {&a, &b}) EXPECT_EQ(h->verdict("198.51.100.7"), "pass");
}

TEST_F(DaemonFleetTest, OverTlsWithClientCertificatesAndUserPasswordAuth) {
    make_cluster({3, true, {}});
    cluster_->enable_auth("vaultwall", "fleet-pw");  // with client certs, etcd takes the user from the CN
    std::int64_t r1 = publish({"192.0.2.0/24"});
    std::string pki = " --etcd-cacert " + cluster_->ca() + " --etcd-cert " + cluster_->client_cert() +
                      " --etcd-key " + cluster_->client_key();
    vwtest::write_file(cluster_->dir() + "/pw", "fleet-pw\n");
    auto& a = add_host("vault-a", flags() + pki + " --etcd-user vaultwall --etcd-password-file " + cluster_->dir() + "/pw");
    a.start();
    auto st = wait_status(1, r1);
    ASSERT_EQ(st.hosts.size(), 1u) << a.log();
    std::int64_t r2 = publish({"192.0.2.0/24", "198.51.100.7"});
    ASSERT_EQ(wait_status(1, r2).hosts.at(0).record.revision, r2);
    EXPECT_EQ(a.verdict("198.51.100.7"), "pass");
}
