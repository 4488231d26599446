// vaultwalld under systemd's Type=notify (packaging/systemd/vaultwalld.service),
// without systemd: the test gives the daemon a NOTIFY_SOCKET of its own (a
// Unix datagram socket it reads) and a WATCHDOG_USEC, as systemd would, and
// checks what systemd would see: READY=1 only once the first rule set is
// installed, WATCHDOG=1 keep-alives, RELOADING=1 then READY=1 around a SIGHUP
// reload (also a failed one: the old rules stay), STOPPING=1 on SIGTERM, and
// no READY=1 at all when the rule file is bad.
#include <sys/socket.h>
#include <sys/un.h>

#include <cstdlib>

#include "lab.hpp"

namespace {

using namespace vwtest;
using Clock = std::chrono::steady_clock;

// A file any version refuses: SPEC §2 makes host bits in a prefix an error.
const char* kBadRules = "version: 1\nvaults:\n  - name: broken\n    tenant_id: 3f1c9a52-7d0e-4b8a-9c11-5e2f0a6d4b10\n"
                        "    network_acls: { ip_rules: [192.0.2.1/24] }\n";

const char* kRules = R"(version: 1
vaults:
  - name: contoso-prod
    tenant_id: 3f1c9a52-7d0e-4b8a-9c11-5e2f0a6d4b10
    endpoints: [203.0.113.10:443]
    network_acls:
      default_action: deny
      bypass: none
      ip_rules: [192.0.2.0/24]
)";

// What systemd's end of NOTIFY_SOCKET receives.
class NotifySocket {
public:
    explicit NotifySocket(const std::string& path) : path_(path) {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
        ::unlink(path.c_str());
        if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
            throw std::runtime_error("cannot bind " + path);
        ::setenv("NOTIFY_SOCKET", path.c_str(), 1);
        ::setenv("WATCHDOG_USEC", "300000", 1);  // keep-alives every 150 ms
    }
    ~NotifySocket() {
        ::unsetenv("NOTIFY_SOCKET");
        ::unsetenv("WATCHDOG_USEC");
        ::close(fd_);
        ::unlink(path_.c_str());
    }
    // The next datagram, or "" after `ms` without one.
    std::string next(int ms = 5000) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, ms) != 1) return "";
        char buf[4096];
        ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
        return n > 0 ? std::string(buf, n) : "";
    }
    // Datagrams until one contains `want` (skipping keep-alives); "" on timeout.
    std::string until(const std::string& want, std::vector<std::string>* seen = nullptr, int ms = 10000) {
        auto end = Clock::now() + std::chrono::milliseconds(ms);
        while (Clock::now() < end) {
            std::string m = next(100);
            if (m.empty()) continue;
            if (seen) seen->push_back(m);
            if (m.find(want) != std::string::npos) return m;
        }
        return "";
    }

private:
    std::string path_;
    int fd_ = -1;
};

bool has(const std::vector<std::string>& msgs, const std::string& s) {
    return std::any_of(msgs.begin(), msgs.end(), [&](const std::string& m) { return m.find(s) != std::string::npos; });
}

TEST(ServiceNotify, ReadyAfterTheFirstInstallKeepAlivesAndReloads) {
    Lab lab;
    ASSERT_EQ(lab.loader("attach --dev vr0").rc, 0);
    std::string rules = lab.write_rules("rules.yaml", kRules);
    NotifySocket systemd(lab.dir + "/notify.sock");
    lab.start_daemon(rules);

    std::vector<std::string> before;
    std::string ready = systemd.until("READY=1", &before);
    ASSERT_NE(ready, "") << Lab::slurp(lab.log);
    EXPECT_NE(ready.find("STATUS=enforcing " + rules), std::string::npos) << ready;
    EXPECT_FALSE(has(before, "RELOADING=1"));
    // Ready means enforcing: the rule set is in the interface's maps.
    Json st = lab.request({{"cmd", "status"}});
    EXPECT_GE(st.value("generation", 0ull), 1u) << st.dump();
    ASSERT_EQ(st["interfaces"].size(), 1u);
    EXPECT_GE(st["interfaces"][0].value("generation", 0ull), 1u) << st.dump();

    // Keep-alives, at about half of WATCHDOG_USEC.
    int keepalives = 0;
    auto end = Clock::now() + std::chrono::milliseconds(1200);
    while (Clock::now() < end)
        if (systemd.next(100).find("WATCHDOG=1") != std::string::npos) ++keepalives;
    EXPECT_GE(keepalives, 4);
    EXPECT_LE(keepalives, 12);

    // systemctl reload: SIGHUP -> RELOADING=1, then READY=1 with the new generation.
    ASSERT_EQ(::kill(lab.daemon_pid, SIGHUP), 0);
    std::vector<std::string> reload;
    std::string again = systemd.until("READY=1", &reload);
    ASSERT_NE(again, "");
    EXPECT_TRUE(has(reload, "RELOADING=1"));
    EXPECT_NE(again.find("generation 2"), std::string::npos) << again;

    // A reload that fails still ends in READY=1 (the old rules run on), and says so.
    std::ofstream(rules) << kBadRules;
    ASSERT_EQ(::kill(lab.daemon_pid, SIGHUP), 0);
    reload.clear();
    again = systemd.until("READY=1", &reload);
    EXPECT_TRUE(has(reload, "RELOADING=1"));
    EXPECT_NE(again.find("STATUS=reload failed, previous rules kept"), std::string::npos) << again;
    EXPECT_EQ(lab.request({{"cmd", "status"}}).value("generation", 0ull), 2u);

    lab.stop_daemon(SIGTERM);
    std::vector<std::string> tail;
    systemd.until("STOPPING=1", &tail, 2000);
    EXPECT_TRUE(has(tail, "STOPPING=1"));
}

TEST(ServiceNotify, NeverReadyWithABadRuleFile) {
    Lab lab;
    ASSERT_EQ(lab.loader("attach --dev vr0").rc, 0);
    std::string rules = lab.write_rules("rules.yaml", kBadRules);
    NotifySocket systemd(lab.dir + "/notify.sock");
    EXPECT_THROW(lab.start_daemon(rules), std::runtime_error);  // it exits at start
    std::vector<std::string> seen;
    EXPECT_EQ(systemd.until("READY=1", &seen, 1000), "");
}

}  // namespace
