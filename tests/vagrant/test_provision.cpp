// The vault VM's provisioning output, without booting a VM (no KVM here):
// runs vagrant/provision/vault-install.sh's install_config into a temporary
// /etc/vaultwall, mints a token with vagrant/vault/vaultwall-vm-token, and
// checks with the gate's own code what the VM's vaultwalld would check: the
// installed rules load, the gate configuration builds (JWKS, TLS key and
// certificate), the token verifies against the JWKS it wrote, and the vault
// certificate chains to the lab CA and names the endpoints.
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "gate/b64.hpp"
#include "gate/config.hpp"
#include "rules/parser.hpp"

namespace {

namespace fs = std::filesystem;
const std::string kSrc = VW_SOURCE_DIR;
const std::string kBin = VW_BIN_DIR;

// Provisioned once for the suite (three RSA keys take seconds here).
struct Provisioned : ::testing::Test {
    static inline fs::path etc;
    static void SetUpTestSuite() {
        char tmpl[] = "/tmp/vw-provision-XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        etc = tmpl;
        // The install provisioner's configuration step, as the VM runs it,
        // with the binaries of this build in place of /usr/local/bin.
        std::string cmd = "env VW_PROVISION_DIR=" + kSrc + "/vagrant/provision VW_SRC=" + kSrc +
                          " VW_ETC=" + etc.string() + " VW_LOG_DIR=" + (etc / "log").string() +
                          " VW_BIN=" + kBin + " bash -c '. " + kSrc +
                          "/vagrant/provision/vault-install.sh && install_config'";
        ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    }
    static void TearDownTestSuite() { fs::remove_all(etc); }

    std::string token(const std::string& id, int* status = nullptr) {
        std::string cmd = "env VW_PKI=" + (etc / "pki").string() + " VW_BIN=" + kBin + " " + kSrc +
                          "/vagrant/vault/vaultwall-vm-token " + id + " 2>/dev/null";
        FILE* p = popen(cmd.c_str(), "r");
        std::string out;
        char buf[4096];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
        int rc = pclose(p);
        if (status) *status = WEXITSTATUS(rc);
        while (!out.empty() && out.back() == '\n') out.pop_back();
        return out;
    }
};

TEST_F(Provisioned, JwksHasA2048BitModulus) {
    std::ifstream in(etc / "pki/jwks.json");
    auto jwks = nlohmann::json::parse(in);
    ASSERT_EQ(jwks["keys"].size(), 1u);
    const auto& k = jwks["keys"][0];
    EXPECT_EQ(k["kid"], "lab-1");
    EXPECT_EQ(k["kty"], "RSA");
    auto n = vaultwall::gate::b64url_decode(k["n"].get<std::string>());
    ASSERT_TRUE(n.has_value());
    EXPECT_EQ(n->size(), 256u);  // the old shell copy made 257 (a newline in the hex)
    EXPECT_EQ(k["e"], "AQAB");
}

TEST_F(Provisioned, TokensItMintsVerifyAgainstTheJwksItWrote) {
    auto rf = vaultwall::rules::load_rule_file((etc / "rules.yaml").string());
    auto cfg = vaultwall::gate::GateConfig::build(rf);  // loads jwks.json, vault.pem, vault.key
    ASSERT_FALSE(rf.vaults.empty());
    for (const char* id : {"app", "reader", "storage"}) {
        std::string t = token(id);
        auto r = cfg->jwt->validate(t, rf.vaults[0].tenant_id);
        EXPECT_TRUE(r.ok()) << id << ": " << vaultwall::gate::to_string(r.error) << " " << r.message;
    }
    auto app = cfg->jwt->validate(token("app"), rf.vaults[0].tenant_id);
    ASSERT_TRUE(app.ok());
    EXPECT_EQ(app.claims->oid, "6b0c8d8e-0000-4000-8000-000000000001");
    auto storage = cfg->jwt->validate(token("storage"), rf.vaults[0].tenant_id);
    ASSERT_TRUE(storage.ok());
    EXPECT_NE(storage.claims->xms_mirid.find("Microsoft.Storage/storageAccounts"), std::string::npos);

    // A signature from another key does not verify: the check is real.
    std::string t = token("app");
    t.back() = t.back() == 'A' ? 'B' : 'A';
    EXPECT_FALSE(cfg->jwt->validate(t, rf.vaults[0].tenant_id).ok());
}

TEST_F(Provisioned, UnknownIdentityIsRefused) {
    int status = 0;
    EXPECT_EQ(token("mallory", &status), "");
    EXPECT_EQ(status, 2);
}

TEST_F(Provisioned, VaultCertificateChainsToTheLabCaAndNamesTheEndpoints) {
    auto read_cert = [](const fs::path& p) {
        FILE* f = std::fopen(p.c_str(), "r");
        X509* c = f ? PEM_read_X509(f, nullptr, nullptr, nullptr) : nullptr;
        if (f) std::fclose(f);
        return c;
    };
    X509* ca = read_cert(etc / "pki/ca.pem");
    X509* vault = read_cert(etc / "pki/vault.pem");
    ASSERT_TRUE(ca && vault);
    X509_STORE* store = X509_STORE_new();
    X509_STORE_add_cert(store, ca);
    X509_STORE_CTX* ctx = X509_STORE_CTX_new();
    X509_STORE_CTX_init(ctx, store, vault, nullptr);
    X509_VERIFY_PARAM_set_purpose(X509_STORE_CTX_get0_param(ctx), X509_PURPOSE_SSL_SERVER);
    EXPECT_EQ(X509_verify_cert(ctx), 1) << X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx));
    for (const char* ip : {"203.0.113.10", "203.0.113.20", "198.19.1.100"})
        EXPECT_EQ(X509_check_ip_asc(vault, ip, 0), 1) << ip;
    EXPECT_EQ(X509_check_host(vault, "contoso-prod.vault.lab", 0, 0, nullptr), 1);
    EXPECT_EQ(X509_check_ip_asc(vault, "203.0.113.99", 0), 0);
    EXPECT_EQ(fs::status(etc / "pki/issuer.key").permissions() & fs::perms::others_read, fs::perms::none);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    X509_free(ca);
    X509_free(vault);
}

}  // namespace
