// The official Azure Key Vault SDKs for JavaScript (@azure/keyvault-secrets,
// @azure/keyvault-keys), unmodified, through the gate over TLS on 127.0.0.1,
// with vaultwall-labvault behind it. Runs tests/gate/sdk/sdk_test.mjs with
// node; installs the pinned packages with `npm ci` when node_modules is
// missing. node and npm are required: without them this test FAILS (CI
// installs the Debian packages nodejs and npm).
//
// Names: the SDK insists that the challenge's resource domain is a suffix of
// the vault host, so identity.audience is https://vault.lab and the vault
// URL is https://contoso.vault.lab:PORT. The script's https.Agent resolves
// that name to 127.0.0.1 with a custom `lookup` (no /etc/hosts edits); TLS
// verifies the lab certificate, which names contoso.vault.lab, against the
// lab CA given in NODE_EXTRA_CA_CERTS.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <utility>  // before Boost 1.74 asio (awaitable.hpp needs std::exchange)
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <thread>

#include <boost/asio.hpp>
#include <gtest/gtest.h>

#include "gate/proxy.hpp"
#include "rules/ipv4.hpp"
#include "support.hpp"

using namespace vaultwall;
using namespace vaultwall::gate;
using namespace vwtest;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;

namespace {

const std::string kSdkAudience = "https://vault.lab";
const std::string kVaultHost = "contoso.vault.lab";

// Runs a shell command; returns {exit status, stdout+stderr}.
std::pair<int, std::string> sh(const std::string& cmd) {
    std::string out;
    FILE* p = popen((cmd + " 2>&1").c_str(), "r");
    if (!p) return {-1, ""};
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    int st = pclose(p);
    return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

std::string q(const std::string& s) { return "'" + s + "'"; }

TEST(KeyVaultSdk, NodeSecretsKeysAndCryptographyThroughTheGate) {
    signal(SIGPIPE, SIG_IGN);
    // node and npm are prerequisites, not optional: fail loudly.
    auto node = sh("command -v node && node --version");
    ASSERT_EQ(node.first, 0) << "node is not installed (Debian: apt-get install nodejs npm)";
    auto npm = sh("command -v npm && npm --version");
    ASSERT_EQ(npm.first, 0) << "npm is not installed (Debian: apt-get install nodejs npm)";
    int major = 0;
    std::sscanf(node.second.substr(node.second.find('\n') + 1).c_str(), "v%d", &major);
    ASSERT_GE(major, 18) << "node >= 18 required: " << node.second;

    const std::string sdk = SDK_DIR;
    if (!std::filesystem::exists(sdk + "/node_modules/@azure/keyvault-secrets/package.json") ||
        !std::filesystem::exists(sdk + "/node_modules/@azure/keyvault-keys/package.json")) {
        auto ci = sh("cd " + q(sdk) + " && npm ci --no-audit --no-fund");
        ASSERT_EQ(ci.first, 0) << "npm ci failed in " << sdk << ":\n" << ci.second;
    }

    std::string dir = temp_dir("sdk");
    make_lab_pki(dir, {kVaultHost});
    write_file(dir + "/jwks.json", keys().jwks);

    // The stand-in vault behind the gate.
    std::uint16_t vault_port = free_port();
    std::string listen = "127.0.0.1:" + std::to_string(vault_port);
    std::string data = dir + "/vault";
    pid_t labvault = fork();
    if (labvault == 0) {
        execl(LABVAULT_BIN, LABVAULT_BIN, "--listen", listen.c_str(), "--data", data.c_str(), (char*)nullptr);
        _exit(127);
    }
    struct Reap {
        pid_t pid;
        ~Reap() {
            kill(pid, SIGTERM);
            waitpid(pid, nullptr, 0);
        }
    } reap{labvault};
    ASSERT_TRUE(wait_port(vault_port, 5s)) << "labvault did not start";

    // The gate: audience https://vault.lab, vault on 127.0.0.1:PORT, no
    // datapath (the fail-closed fallback admits 127.0.0.0/8 by ip rule).
    std::uint16_t port = free_port();
    rules::RuleFile rf;
    rf.path = dir + "/rules.yaml";
    rf.identity = identity(dir + "/jwks.json");
    rf.identity.audience = kSdkAudience;
    rf.trusted_services = catalog();
    rf.gate = rules::Gate{dir + "/server.pem", dir + "/server.key", dir + "/audit.jsonl"};
    auto v = vault(0x7F000001, port);
    v.upstream = "http://" + listen;
    v.ip_rules.push_back({rules::parse_ipv4_prefix("127.0.0.0/8")->prefix, {}});
    v.access_policies[0].permissions["keys"] = {"get", "create", "wrapKey", "unwrapKey"};
    rf.vaults.push_back(v);
    Gate gate(GateConfig::build(rf, {}), 2);
    gate.start();

    auto app = base_claims();
    app["aud"] = kSdkAudience;
    auto limited = base_claims(kOidStorage, kAppStorage);  // keys only: no secrets permission
    limited["aud"] = kSdkAudience;
    json toks{{"app", token(app)}, {"limited", token(limited, "ES256", "ec1")}, {"tenant", kTenant},
              {"audience", kSdkAudience}};
    write_file(dir + "/tokens.json", toks.dump());

    std::string vault_url = "https://" + kVaultHost + ":" + std::to_string(port);
    auto run = sh("cd " + q(sdk) + " && VAULT_URL=" + q(vault_url) + " GATE_ADDR=127.0.0.1 TOKENS=" +
                  q(dir + "/tokens.json") + " NODE_EXTRA_CA_CERTS=" + q(dir + "/ca.pem") +
                  " timeout 120 node sdk_test.mjs");
    std::cout << run.second;
    EXPECT_EQ(run.first, 0) << "the SDK script failed";
    EXPECT_NE(run.second.find("SDK CHECKS PASSED"), std::string::npos);
    gate.stop();

    // The audit log saw the SDK's challenge round trips and every operation.
    std::string audit = read_file(dir + "/audit.jsonl");
    for (const char* what : {"\"reason\":\"missing_token\"", "\"operation\":\"secrets/set\"",
                             "\"operation\":\"secrets/get\"", "\"operation\":\"keys/create\"",
                             "\"operation\":\"keys/get\"", "\"operation\":\"keys/unwrapKey\""})
        EXPECT_NE(audit.find(what), std::string::npos) << what << " missing from the audit log:\n" << audit;
    EXPECT_NE(audit.find("\"reason\":\"policy_denied\""), std::string::npos);
    EXPECT_NE(audit.find("\"status\":403"), std::string::npos);
    if (!HasFailure()) std::filesystem::remove_all(dir);
}

}  // namespace
