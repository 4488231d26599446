// A reload is one transaction over every interface and the gate (SPEC §7):
// a failure at any step leaves every interface's generation, rules, counters,
// the gate and `status` exactly as they were, and names the step. Two real
// veth interfaces under XDP; vaultwalld runs in process (no control socket)
// so a test can make one step fail where no real input reaches it.
#include "lab.hpp"

using namespace vwtest;
using vaultwall::daemon::Daemon;
using vaultwall::daemon::DaemonOptions;

namespace {

bool contains(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

struct StepFault {
    std::string step, dev;
};

class Transaction : public ::testing::Test {
protected:
    void SetUp() override {
        lab.sh("ip link add vs1 netns " + lab.sns + " type veth peer name vr1 netns " + lab.rns);
        lab.sh("ip -n " + lab.sns + " link set vs1 up");
        lab.sh("ip -n " + lab.rns + " link set vr1 up");
        ASSERT_EQ(lab.loader("attach --dev vr0").rc, 0);
        ASSERT_EQ(lab.loader(std::string("attach --dev vr1") + (small_vr1 ? " --max-rules 4" : "")).rc, 0);
        rules = lab.write_rules("rules.yaml", base_rules());
        more = lab.write_rules("more.yaml", base_rules("[192.0.2.0/24, 198.51.100.0/24]"));
        DaemonOptions o;
        o.config = rules;
        o.pin_root = lab.pin_root;
        o.serve_socket = false;
        o.run_gate = run_gate;
        o.fault = [this](const std::string& step, const std::string& dev) {
            if (fault && fault->step == step && (fault->dev.empty() || fault->dev == dev))
                throw std::runtime_error("injected failure");
        };
        // In the receiver's namespace: the gate's listeners (when it runs) bind there.
        in_netns(lab.rns, [&] {
            d = std::make_unique<Daemon>(o);
            d->start();
            return 0;
        });
    }
    void TearDown() override {
        if (d) in_netns(lab.rns, [&] {
            d->stop();
            d.reset();
            return 0;
        });
    }
    Json reload(const std::string& file) {
        return in_netns(lab.rns, [&] { return d->reload(file, "test"); });
    }

    // Everything a user can see of the rule state, minus the reload history.
    Json snapshot() {
        Json s = d->status();
        for (const char* volatile_key : {"uptime_s", "reloads", "last_reload", "pid"}) s.erase(volatile_key);
        Json out = {{"status", s}};
        for (const char* dev : {"vr0", "vr1"}) {
            out[dev] = {{"generation", lab.counters(dev).generation},
                        {"rules", d->rules({}, dev)["rules"]},
                        {"stats", d->stats(dev)["stats"]}};
        }
        return out;
    }
    // A packet only `more` allows, on both interfaces: what each one did.
    std::pair<std::uint64_t, std::uint64_t> send_new_only_packet() {
        auto f = vaultwall::daemon::explain_frame(ip("198.51.100.9"), ip("203.0.113.10"), 443, true);
        for (const char* dev : {"vs0", "vs1"}) send_frame(lab.sender(dev), f);
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        std::uint64_t pass = 0, drop = 0;
        for (const char* dev : {"vr0", "vr1"}) {
            auto c = lab.counters(dev);
            pass += c.get(VW_PASS_IP_RULE, "alpha").packets;
            drop += c.get(VW_DROP_NO_RULE, "alpha").packets;
        }
        return {pass, drop};
    }

    bool small_vr1 = false;
    bool run_gate = false;
    Lab lab;
    std::string rules, more;
    std::optional<StepFault> fault;
    std::unique_ptr<Daemon> d;
};

class SmallSecondInterface : public Transaction {
protected:
    void SetUp() override {
        small_vr1 = true;
        Transaction::SetUp();
    }
};

}  // namespace

TEST_F(Transaction, AFailureAtAnyStepOnAnyInterfaceChangesNothing) {
    const Json before = snapshot();
    ASSERT_EQ(before["vr0"]["generation"], 1);
    ASSERT_EQ(before["vr1"]["generation"], 1);
    for (const char* step : {"prepare", "write", "flip"}) {
        for (const char* dev : {"vr0", "vr1"}) {
            fault = StepFault{step, dev};
            auto r = reload(more);
            EXPECT_EQ(r["ok"], false) << step << " " << dev << ": " << r.dump();
            EXPECT_EQ(r["step"], step) << r.dump();
            EXPECT_TRUE(contains(r["error"].get<std::string>(), dev)) << r.dump();
            EXPECT_TRUE(contains(r["error"].get<std::string>(), "injected failure")) << r.dump();
            EXPECT_EQ(snapshot(), before) << "after a failure at " << step << " on " << dev;
        }
    }
    // And the datapath really still runs the old rules on both interfaces.
    auto [pass, drop] = send_new_only_packet();
    EXPECT_EQ(pass, 0u);
    EXPECT_EQ(drop, 2u);

    fault.reset();
    auto ok = reload(more);
    ASSERT_EQ(ok["ok"], true) << ok.dump();
    EXPECT_EQ(ok["interfaces"][0]["generation"], 2);
    EXPECT_EQ(ok["interfaces"][1]["generation"], 2);
    auto [pass2, drop2] = send_new_only_packet();
    EXPECT_EQ(pass2, 2u);
    EXPECT_EQ(drop2, 2u);
    // The answer reports each phase's time.
    std::vector<std::string> phases;
    for (const auto& p : ok["phases"]) {
        phases.push_back(p["phase"]);
        EXPECT_TRUE(p["ms"].is_number()) << p.dump();
    }
    EXPECT_EQ(phases, (std::vector<std::string>{"parse", "compile", "prepare", "prepare", "write", "write", "flip",
                                                "finish"}));
}

// Real input, no injection: vr1 holds only 3 rules, the new file has 4. It is
// refused naming vr1, and vr0 (checked first) keeps the old rules too.
TEST_F(SmallSecondInterface, RulesThatDoNotFitOneInterfaceChangeNoInterface) {
    const Json before = snapshot();
    auto four = lab.write_rules("four.yaml", base_rules("[192.0.2.0/24, 198.51.100.0/24, 198.51.100.200]"));
    auto r = reload(four);
    EXPECT_EQ(r["ok"], false) << r.dump();
    EXPECT_EQ(r["step"], "prepare") << r.dump();
    EXPECT_TRUE(contains(r["error"].get<std::string>(), "vr1")) << r.dump();
    EXPECT_TRUE(contains(r["error"].get<std::string>(), "--max-rules")) << r.dump();
    EXPECT_EQ(snapshot(), before);
}

namespace {

// Holds addr:port in namespace `ns` with a plain listening socket (no
// SO_REUSEPORT, so nobody else can bind it). -1 when it cannot.
int hold_port(const std::string& ns, const char* addr, std::uint16_t port) {
    return in_netns(ns, [&] {
        int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(ip(addr));
        if (::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || ::listen(s, 1) != 0) {
            ::close(s);
            return -1;
        }
        return s;
    });
}

class GateTransaction : public Transaction {
protected:
    void SetUp() override {
        run_gate = true;
        Transaction::SetUp();
        for (const char* a : {"203.0.113.10", "203.0.113.11", "203.0.113.12", "203.0.113.13", "203.0.113.14"})
            lab.sh("ip -n " + lab.rns + " addr add " + a + "/32 dev lo");
    }
    void TearDown() override {
        for (int fd : held) ::close(fd);
        Transaction::TearDown();
    }
    std::string with_gate(const std::string& cert, const std::string& key, const std::string& more_vaults = {}) {
        return base_rules("[192.0.2.0/24, 198.51.100.0/24]",
                          "gate:\n  tls_cert: " + cert + "\n  tls_key: " + key + "\n") + more_vaults;
    }
    // A self-signed certificate (and its key) for CN=`cn`, in the lab's directory.
    void make_cert(const std::string& name, const std::string& cn) {
        lab.sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=" + cn +
               " -keyout " + lab.dir + "/" + name + ".key -out " + lab.dir + "/" + name + ".pem 2>/dev/null");
    }
    void hold(const char* addr, std::uint16_t port) {
        int fd = hold_port(lab.rns, addr, port);
        ASSERT_GE(fd, 0) << addr << ":" << port;
        held.push_back(fd);
    }
    // What a client of vault alpha's endpoint sees: the certificate's
    // subject and the HTTP status of a request without a token (the
    // connection does not come through XDP, so the gate refuses it: 403).
    std::string probe(const char* addr = "203.0.113.10") {
        auto subject = run(lab.in_r("sh -c 'openssl s_client -connect " + std::string(addr) +
                                    ":443 </dev/null 2>/dev/null | openssl x509 -noout -subject 2>/dev/null'"));
        auto code = run(lab.in_r("curl -sk -m 5 -o /dev/null -w '%{http_code}' https://" + std::string(addr) +
                                 "/secrets/x?api-version=7.4"));
        return subject.out + "HTTP " + code.out;
    }
    // The probes' connections are closed (status counts active ones).
    void wait_idle() {
        for (int i = 0; i < 200; ++i) {
            auto g = d->status()["gate"];
            if (g.is_null() || g.value("connections_active", 0) == 0) return;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    }
    std::vector<int> held;
};

const char* kExtraVault =
    "  - name: extra\n"
    "    tenant_id: 3f1c9a52-7d0e-4b8a-9c11-5e2f0a6d4b10\n"
    "    subscription_id: 0b1f6471-1bf0-4dda-aec3-cb9272f09590\n"
    "    location: lab\n    upstream: http://127.0.0.1:8200\n"
    "    endpoints: [203.0.113.14:443]\n"
    "    network_acls:\n      default_action: allow\n";

}  // namespace

// The gate's TLS material is loaded before any interface changes.
TEST_F(GateTransaction, ABadCertificateChangesNothing) {
    const Json before = snapshot();
    ASSERT_TRUE(before["status"]["gate"].is_null()) << before.dump();
    lab.write_rules("bad.pem", "-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n");
    lab.write_rules("bad.key", "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n");
    auto file = lab.write_rules("gate.yaml", with_gate("bad.pem", "bad.key"));
    auto r = reload(file);
    EXPECT_EQ(r["ok"], false) << r.dump();
    EXPECT_EQ(r["step"], "gate prepare") << r.dump();
    EXPECT_TRUE(contains(r["error"].get<std::string>(), "tls_cert")) << r.dump();
    EXPECT_EQ(snapshot(), before);
    auto [pass, drop] = send_new_only_packet();
    EXPECT_EQ(pass, 0u);
    EXPECT_EQ(drop, 2u);
}

// A listener that cannot bind is found when the gate's part is prepared,
// before any interface flips: nothing changes, and no gate starts.
TEST_F(GateTransaction, AListenerThatCannotBindChangesNothing) {
    make_cert("vault", "vault.lab");
    hold("203.0.113.12", 443);  // vault `open`'s endpoint, held by someone else
    const Json before = snapshot();
    auto file = lab.write_rules("gate.yaml", with_gate("vault.pem", "vault.key"));
    auto r = reload(file);
    EXPECT_EQ(r["ok"], false) << r.dump();
    EXPECT_EQ(r["step"], "gate prepare") << r.dump();
    EXPECT_TRUE(contains(r["error"].get<std::string>(), "203.0.113.12:443")) << r.dump();
    EXPECT_TRUE(contains(r["error"].get<std::string>(), "nothing changed")) << r.dump();
    EXPECT_EQ(snapshot(), before);
    EXPECT_TRUE(d->status()["gate"].is_null());
    // The other endpoints were bound while preparing and are released again.
    EXPECT_EQ(probe(), "HTTP 000");
    auto [pass, drop] = send_new_only_packet();
    EXPECT_EQ(pass, 0u);
    EXPECT_EQ(drop, 2u);

    // Once the address is free the same file loads, gate and all.
    ::close(held.back());
    held.pop_back();
    auto ok = reload(file);
    ASSERT_EQ(ok["ok"], true) << ok.dump();
    EXPECT_EQ(ok["interfaces"][0]["generation"], 2);
    EXPECT_EQ(ok["interfaces"][1]["generation"], 2);
    EXPECT_EQ(d->status()["gate"]["running"], true);
    EXPECT_EQ(probe(), "subject=CN = vault.lab\nHTTP 403");
    auto [pass2, drop2] = send_new_only_packet();
    EXPECT_EQ(pass2, 2u);
}

// With a gate running: a reload that adds an endpoint someone else holds, or
// brings a bad certificate, leaves every interface, the counters, `status`
// and what the running gate serves exactly as they were.
TEST_F(GateTransaction, ARunningGateKeepsServingWhenItsPartOfAReloadFails) {
    make_cert("vault", "vault.lab");
    make_cert("other", "other.lab");
    auto good = lab.write_rules("gate.yaml", with_gate("vault.pem", "vault.key"));
    auto ok = reload(good);
    ASSERT_EQ(ok["ok"], true) << ok.dump();
    const std::string serving = probe();
    ASSERT_EQ(serving, "subject=CN = vault.lab\nHTTP 403");

    hold("203.0.113.14", 443);
    lab.write_rules("bad.pem", "-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n");
    lab.write_rules("bad.key", "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n");
    struct Case {
        std::string file, error;
    } cases[] = {
        // a new vault whose endpoint cannot be bound; a new certificate too,
        // which must not be half-applied
        {lab.write_rules("taken.yaml", with_gate("other.pem", "other.key", kExtraVault)), "203.0.113.14:443"},
        {lab.write_rules("badcert.yaml", with_gate("bad.pem", "bad.key")), "tls_cert"},
    };
    for (const auto& c : cases) {
        wait_idle();
        const Json before = snapshot();
        ASSERT_EQ(before["vr0"]["generation"], 2);
        ASSERT_EQ(before["status"]["gate"]["running"], true) << before.dump();
        auto r = reload(c.file);
        EXPECT_EQ(r["ok"], false) << r.dump();
        EXPECT_EQ(r["step"], "gate prepare") << r.dump();
        EXPECT_TRUE(contains(r["error"].get<std::string>(), c.error)) << r.dump();
        EXPECT_EQ(snapshot(), before) << c.file;
        EXPECT_EQ(probe(), serving) << c.file;
    }

    // The probe sees a change: a good new certificate is served after a reload.
    auto other = lab.write_rules("other.yaml", with_gate("other.pem", "other.key"));
    auto ok2 = reload(other);
    ASSERT_EQ(ok2["ok"], true) << ok2.dump();
    EXPECT_EQ(ok2["interfaces"][0]["generation"], 3);
    EXPECT_EQ(probe(), "subject=CN = other.lab\nHTTP 403");
}
