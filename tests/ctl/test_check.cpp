// vaultwallctl check FILE [--json] (SPEC §7): offline, no root; exit 0 when
// valid, 1 with every diagnostic as file:line:col.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "temp_dir.hpp"

using vaultwall::rules::test::TempDir;

namespace {

struct Run {
    int rc = -1;
    std::string out;  // stdout and stderr
};

Run run(const std::string& args) {
    Run r;
    FILE* p = ::popen((args + " 2>&1").c_str(), "r");
    if (!p) return r;
    std::array<char, 4096> buf{};
    std::size_t n;
    while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
    int st = ::pclose(p);
    r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
}

const std::string kCtl = VW_CTL;

const char* kGood = R"(version: 1
vaults:
  - name: v1
    tenant_id: 3f1c9a52-7d0e-4b8a-9c11-5e2f0a6d4b10
    endpoints: [203.0.113.10:443]
    network_acls:
      ip_rules: [192.0.2.0/24, 192.0.2.0/24, 198.51.100.7]
)";

const char* kBad = R"(version: 1
vaults:
  - name: v1
    tenant_id: 3f1c9a52-7d0e-4b8a-9c11-5e2f0a6d4b10
    endpoints: [203.0.113.10:99999]
    network_acls:
      ip_rules: [192.0.2.1/24]
)";

}  // namespace

TEST(CtlCheck, ValidFileExitsZeroWithItsWarnings) {
    TempDir t;
    auto path = t.write("vw.yaml", kGood);
    auto r = run(kCtl + " check " + path);
    EXPECT_EQ(r.rc, 0) << r.out;
    EXPECT_NE(r.out.find(path + ":7:32: warning: duplicate ip rule 192.0.2.0/24"), std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find(path + ": OK: 1 vaults, 2 rules, 1 endpoints, 1 warnings"), std::string::npos)
        << r.out;

    r = run(kCtl + " check --json " + path);
    ASSERT_EQ(r.rc, 0) << r.out;
    auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["ok"], true);
    EXPECT_EQ(j["rules"], 2);
    ASSERT_EQ(j["warnings"].size(), 1u);
}

TEST(CtlCheck, EveryErrorWithItsPositionAndExitOne) {
    TempDir t;
    auto path = t.write("vw.yaml", kBad);
    auto r = run(kCtl + " check " + path);
    EXPECT_EQ(r.rc, 1) << r.out;
    EXPECT_NE(r.out.find(path + ":5:17: error: port 99999"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(path + ":7:18: error: 192.0.2.1/24 has host bits set"), std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("2 errors"), std::string::npos) << r.out;

    r = run(kCtl + " check " + path + " --json");
    EXPECT_EQ(r.rc, 1) << r.out;
    auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["ok"], false);
    ASSERT_EQ(j["errors"].size(), 2u);
    EXPECT_EQ(j["errors"][0].get<std::string>().rfind(path + ":5:17: error: ", 0), 0u) << j.dump();
}

TEST(CtlCheck, MissingFileAndBadUsage) {
    auto r = run(kCtl + " check /nonexistent/vw.yaml");
    EXPECT_EQ(r.rc, 1) << r.out;
    EXPECT_NE(r.out.find("/nonexistent/vw.yaml: error: cannot read rule file: no such file"),
              std::string::npos)
        << r.out;
    r = run(kCtl + " check");
    EXPECT_EQ(r.rc, 2) << r.out;
    EXPECT_EQ(r.out.find("terminate"), std::string::npos) << r.out;
}

// Offline means no daemon and no root: run it as nobody, with no socket.
TEST(CtlCheck, NeedsNoRootAndNoDaemon) {
    TempDir t;
    ::chmod(t.dir.c_str(), 0755);
    auto path = t.write("vw.yaml", kGood);
    ::chmod(path.c_str(), 0644);
    auto r = run("setpriv --reuid=65534 --regid=65534 --clear-groups " + kCtl +
                 " --socket /nonexistent/ctl.sock check " + path);
    EXPECT_EQ(r.rc, 0) << r.out;
    EXPECT_NE(r.out.find(": OK: 1 vaults"), std::string::npos) << r.out;
}

// One file with both families (SPEC §11); IPv6 diagnostics in RFC 5952 form.
TEST(CtlCheck, DualStackFile) {
    TempDir t;
    t.write("v1.rules", "192.0.2.8\n2001:db8:5::/48\n");
    auto path = t.write("vw.yaml", R"(version: 1
vaults:
  - name: v1
    endpoints: [203.0.113.10:443, "[2001:db8::10]:443"]
    network_acls:
      ip_rules: [192.0.2.0/24, "2001:db8::/32"]
      ip_rules_file: v1.rules
)");
    auto r = run(kCtl + " check " + path);
    EXPECT_EQ(r.rc, 0) << r.out;
    EXPECT_NE(r.out.find(": OK: 1 vaults, 4 rules, 2 endpoints (IPv6: 2 rules, 1 endpoints)"), std::string::npos)
        << r.out;
    r = run(kCtl + " check --json " + path);
    auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["rules"], 4);
    EXPECT_EQ(j["rules_ipv6"], 2);
    EXPECT_EQ(j["endpoints_ipv6"], 1);

    t.write("v1.rules", "2001:db8:5::1/48\n");
    auto bad = t.write("bad.yaml", R"(version: 1
vaults:
  - name: v1
    endpoints: ["2001:db8::10:443"]
    network_acls:
      ip_rules_file: v1.rules
)");
    r = run(kCtl + " check " + bad);
    EXPECT_EQ(r.rc, 1) << r.out;
    EXPECT_NE(r.out.find(bad + ":4:17: error: '2001:db8::10:443' in endpoints is ambiguous"), std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("write [2001:db8::10]:443 for port 443"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(t.path("v1.rules") + ":1:1: error: 2001:db8:5::1/48 has host bits set; did you mean "
                                              "2001:db8:5::/48?"),
              std::string::npos)
        << r.out;
}
