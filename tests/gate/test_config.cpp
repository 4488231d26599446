// The rule file's gate.* knobs (issue 12): parsed with positions, refused
// when out of range, and applied by GateConfig::build.
#include <gtest/gtest.h>
#include <openssl/ssl.h>

#include <boost/asio/ssl/context.hpp>

#include "gate/config.hpp"
#include "rules/parser.hpp"
#include "support.hpp"

using namespace vaultwall;
using namespace vaultwall::gate;
using namespace vwtest;

namespace {

class GateKnobs : public ::testing::Test {
protected:
    static inline std::string dir;
    static void SetUpTestSuite() {
        dir = temp_dir("knobs");
        make_lab_pki(dir);
        write_file(dir + "/jwks.json", keys().jwks);
    }

    // A whole rule file whose gate section ends with `extra` (indented lines).
    static std::string text(const std::string& extra) {
        return "version: 1\n"
               "identity:\n"
               "  audience: https://vault.azure.net\n"
               "  authority: https://login.microsoftonline.com\n"
               "  issuers:\n"
               "    - issuer: " + kIssuer + "\n"
               "      jwks_file: jwks.json\n"
               "gate:\n"
               "  tls_cert: server.pem\n"
               "  tls_key: server.key\n" + extra +
               "vaults:\n"
               "  - name: contoso-prod\n"
               "    tenant_id: " + kTenant + "\n"
               "    subscription_id: " + kSubscription + "\n"
               "    location: lab\n"
               "    endpoints: [127.0.0.1:8443]\n"
               "    upstream: http://127.0.0.1:8200\n"
               "    public_network_access: enabled\n"
               "    network_acls: { default_action: deny, bypass: none, ip_rules: [192.0.2.0/24] }\n"
               "    authorization: access_policies\n";
    }
    static rules::RuleFile parse(const std::string& extra) {
        return rules::parse_rule_text(text(extra), dir + "/rules.yaml", dir);
    }
    // The first diagnostic of a refused file.
    static std::string refusal(const std::string& extra) {
        try {
            parse(extra);
        } catch (const rules::RuleFileError& e) {
            return e.diagnostics().front().str();
        }
        return "accepted";
    }
};

}  // namespace

TEST_F(GateKnobs, DefaultsWithoutKnobs) {
    auto rf = parse("");
    ASSERT_TRUE(rf.gate);
    auto c = GateConfig::build(rf);
    GateLimits defaults;
    EXPECT_EQ(c->limits.max_connections, defaults.max_connections);
    EXPECT_EQ(c->limits.token_cache_entries, defaults.token_cache_entries);
    EXPECT_EQ(c->io_threads, 0u);
    SSL_CTX* ctx = c->tls->native_handle();
    EXPECT_EQ(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
    EXPECT_EQ(SSL_CTX_get_max_proto_version(ctx), TLS1_3_VERSION);
    EXPECT_TRUE(SSL_CTX_get_options(ctx) & SSL_OP_NO_RENEGOTIATION);
    EXPECT_FALSE(SSL_CTX_get_options(ctx) & SSL_OP_NO_TICKET);
    // The default TLS 1.2 list is forward-secret AEAD only.
    SSL* ssl = SSL_new(ctx);
    STACK_OF(SSL_CIPHER)* list = SSL_get1_supported_ciphers(ssl);
    for (int i = 0; i < sk_SSL_CIPHER_num(list); ++i) {
        const SSL_CIPHER* ci = sk_SSL_CIPHER_value(list, i);
        if (SSL_CIPHER_get_protocol_id(ci) >> 8 == 0x13) continue;  // TLS 1.3 suites
        EXPECT_TRUE(SSL_CIPHER_is_aead(ci)) << SSL_CIPHER_get_name(ci);
        EXPECT_EQ(SSL_CIPHER_get_kx_nid(ci), NID_kx_ecdhe) << SSL_CIPHER_get_name(ci);
    }
    sk_SSL_CIPHER_free(list);
    SSL_free(ssl);
}

TEST_F(GateKnobs, KnobsAreApplied) {
    auto rf = parse("  io_threads: 3\n  max_connections: 500\n  header_limit: 8192\n  body_limit: 65536\n"
                    "  token_cache_entries: 10\n  tls_versions: [1.3]\n  session_tickets: false\n"
                    "  tls_ciphersuites: TLS_AES_256_GCM_SHA384\n  jwks_ca_file: server.pem\n");
    ASSERT_TRUE(rf.gate);
    EXPECT_EQ(rf.gate->jwks_ca_file, dir + "/server.pem");
    auto c = GateConfig::build(rf);
    EXPECT_EQ(c->io_threads, 3u);
    EXPECT_EQ(c->limits.max_connections, 500u);
    EXPECT_EQ(c->limits.header_limit, 8192u);
    EXPECT_EQ(c->limits.body_limit, 65536u);
    EXPECT_EQ(c->limits.token_cache_entries, 10u);
    SSL_CTX* ctx = c->tls->native_handle();
    EXPECT_EQ(SSL_CTX_get_min_proto_version(ctx), TLS1_3_VERSION);
    EXPECT_TRUE(SSL_CTX_get_options(ctx) & SSL_OP_NO_TICKET);
    auto only12 = GateConfig::build(parse("  tls_versions: [\"1.2\"]\n  tls_ciphers: ECDHE-RSA-AES256-GCM-SHA384\n"));
    EXPECT_EQ(SSL_CTX_get_max_proto_version(only12->tls->native_handle()), TLS1_2_VERSION);
}

TEST_F(GateKnobs, BadValuesAreRefusedWithTheirPosition) {
    EXPECT_NE(refusal("  io_threads: 0\n").find("rules.yaml:11:15: error: gate.io_threads '0' is out of range"),
              std::string::npos)
        << refusal("  io_threads: 0\n");
    EXPECT_NE(refusal("  max_connections: lots\n").find("gate.max_connections 'lots' is out of range"),
              std::string::npos);
    EXPECT_NE(refusal("  tls_versions: [1.1, 1.3]\n").find("gate.tls_versions '1.1' is not offered"),
              std::string::npos);
    EXPECT_NE(refusal("  tls_versions: []\n").find("gate.tls_versions is empty"), std::string::npos);
    EXPECT_NE(refusal("  session_tickets: maybe\n").find("gate.session_tickets must be true or false"),
              std::string::npos);
    EXPECT_NE(refusal("  header_limt: 9000\n").find("did you mean 'header_limit'?"), std::string::npos);
    // What OpenSSL alone can judge is refused by GateConfig::build, naming the key.
    try {
        GateConfig::build(parse("  tls_ciphers: NOT-A-CIPHER\n"));
        ADD_FAILURE() << "accepted";
    } catch (const GateConfigError& e) {
        EXPECT_NE(std::string(e.what()).find("gate.tls_ciphers 'NOT-A-CIPHER'"), std::string::npos) << e.what();
    }
}
