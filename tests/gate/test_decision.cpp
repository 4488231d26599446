// Every decision of SPEC §5 through the pure decision module: status, inner
// code and the exact Key Vault message text.
#include <gtest/gtest.h>

#include "gate/audit.hpp"
#include "gate/decision.hpp"
#include "support.hpp"

using namespace vaultwall;
using namespace vaultwall::gate;
using namespace vwtest;

namespace {

constexpr std::uint32_t kClientIn = 0xC0000209;    // 192.0.2.9 (in ip_rules)
constexpr std::uint32_t kClientOut = 0xC6336409;   // 198.51.100.9 (not)
const std::string kStorageApp = kAppStorage;

class DecisionTest : public ::testing::Test {
protected:
    JwtValidator jwt{policy()};
    rules::Vault v = vault();
    rules::Identity id = identity();
    std::vector<rules::TrustedService> cat = catalog();

    static std::string name_of(std::uint32_t vid) { return vid == 1 ? "contoso-prod" : vid == 2 ? "other" : ""; }

    Admission adm(std::uint32_t reason, IpAddress client = kClientIn, bool private_ep = false,
                  std::uint32_t vault_id = 1, std::uint32_t vni = 0) {
        vw_admission rec{};
        rec.vault_id = vault_id;
        rec.reason = reason;
        rec.vni = vni;
        return resolve_admission(rec, name_of, v, client, private_ep);
    }
    Admission no_record(IpAddress client, bool private_ep = false) {
        return resolve_admission(std::nullopt, name_of, v, client, private_ep);
    }

    Decision run(const Admission& a, const std::string& method, const std::string& target,
                 std::optional<std::string> auth, IpAddress client = kClientIn) {
        DecisionContext ctx{v, id, cat, jwt};
        return decide(ctx, RequestFacts{method, target, std::move(auth), client}, a);
    }
    std::string bearer(const json& c) { return "Bearer " + token(c); }
    std::string caller(const std::string& app, const std::string& oid) {
        return "appid=" + app + ";oid=" + oid + ";iss=" + kIssuer;
    }
    static json body(const Decision& d) { return json::parse(d.body()); }
};

}  // namespace

TEST_F(DecisionTest, AdmittedByIpRule) {
    auto d = run(adm(VW_PASS_IP_RULE), "GET", "/secrets/db?api-version=7.4", bearer(base_claims()));
    EXPECT_TRUE(d.allow);
    EXPECT_EQ(d.status, 200u);
    EXPECT_EQ(d.reason, "ip_rule");
    EXPECT_EQ(d.operation, "secrets/get");
    EXPECT_EQ(d.caller, caller(kAppApp, kOidApp));
    EXPECT_TRUE(d.admission.from_datapath);
}

TEST_F(DecisionTest, AdmittedByVnetRule) {
    auto d = run(adm(VW_PASS_VNET_RULE, 0xC6130105, false, 1, 5001), "GET", "/secrets/db", bearer(base_claims()));
    EXPECT_TRUE(d.allow);
    EXPECT_EQ(d.reason, "vnet_rule");
    EXPECT_EQ(d.admission.vni, 5001u);
}

TEST_F(DecisionTest, AdmittedByPrivateEndpoint) {
    auto d = run(adm(VW_PASS_PRIVATE_ENDPOINT, 0xC6130105, true, 1, 5001), "PUT", "/secrets/db",
                 bearer(base_claims()));
    EXPECT_TRUE(d.allow);
    EXPECT_EQ(d.reason, "private_endpoint");
    EXPECT_EQ(d.operation, "secrets/set");
}

TEST_F(DecisionTest, AdmittedByDefaultAllow) {
    v.default_action = rules::DefaultAction::allow;
    auto d = run(adm(VW_PASS_DEFAULT_ALLOW, kClientOut), "GET", "/secrets", bearer(base_claims()), kClientOut);
    EXPECT_TRUE(d.allow);
    EXPECT_EQ(d.reason, "default_allow");
}

TEST_F(DecisionTest, TrustedServiceInsideScenarioPasses) {
    auto d = run(adm(VW_PASS_TRUSTED_CANDIDATE, kClientOut), "POST", "/keys/cmk/0a1b/wrapkey?api-version=7.4",
                 bearer(base_claims(kOidStorage, kStorageApp)), kClientOut);
    EXPECT_TRUE(d.allow) << d.message;
    EXPECT_EQ(d.reason, "trusted_service:azure-storage");
}

TEST_F(DecisionTest, TrustedServiceByManagedIdentityPasses) {
    auto c = base_claims(kOidStorage, "99999999-0000-4000-8000-000000000009");
    c["xms_mirid"] = "/subscriptions/" + kSubscription +
                     "/resourcegroups/rg/providers/Microsoft.Storage/storageAccounts/acct";
    auto d = run(adm(VW_PASS_TRUSTED_CANDIDATE, kClientOut), "POST", "/keys/cmk/unwrapkey", bearer(c), kClientOut);
    EXPECT_TRUE(d.allow) << d.message;
}

TEST_F(DecisionTest, TrustedServiceOutsideScenarioRefused) {
    auto d = run(adm(VW_PASS_TRUSTED_CANDIDATE, kClientOut), "GET", "/secrets/db",
                 bearer(base_claims(kOidStorage, kStorageApp)), kClientOut);
    EXPECT_FALSE(d.allow);
    EXPECT_EQ(d.status, 403u);
    EXPECT_EQ(d.inner_code, "ForbiddenByFirewall");
    EXPECT_EQ(d.reason, "not_trusted_service");
    EXPECT_EQ(d.message, "Client address is not authorized and caller is not a trusted service.\r\n"
                         "Client address: 198.51.100.9\r\nCaller: " +
                             caller(kStorageApp, kOidStorage) + "\r\nVault: contoso-prod;location=lab");
}

TEST_F(DecisionTest, ManagedIdentityOfOtherSubscriptionRefused) {
    auto c = base_claims(kOidStorage, "99999999-0000-4000-8000-000000000009");
    c["xms_mirid"] = "/subscriptions/ffffffff-0000-4000-8000-000000000000/resourcegroups/rg/providers/"
                     "Microsoft.Storage/storageAccounts/acct";
    auto d = run(adm(VW_PASS_TRUSTED_CANDIDATE, kClientOut), "POST", "/keys/cmk/unwrapkey", bearer(c), kClientOut);
    EXPECT_EQ(d.status, 403u);
    EXPECT_EQ(d.inner_code, "ForbiddenByFirewall");
}

TEST_F(DecisionTest, NonTrustedCallerOnCandidateGetsForbiddenByFirewall) {
    auto d = run(adm(VW_PASS_TRUSTED_CANDIDATE, kClientOut), "GET", "/secrets/db", bearer(base_claims()), kClientOut);
    EXPECT_EQ(d.status, 403u);
    EXPECT_EQ(d.code, "Forbidden");
    EXPECT_EQ(d.inner_code, "ForbiddenByFirewall");
    auto b = body(d);
    EXPECT_EQ(b["error"]["code"], "Forbidden");
    EXPECT_EQ(b["error"]["innererror"]["code"], "ForbiddenByFirewall");
    EXPECT_EQ(b["error"]["message"],
              "Client address is not authorized and caller is not a trusted service.\r\nClient address: "
              "198.51.100.9\r\nCaller: " +
                  caller(kAppApp, kOidApp) + "\r\nVault: contoso-prod;location=lab");
    // The literal body carries the escaped CR LF, as Key Vault's does.
    EXPECT_NE(d.body().find("trusted service.\\r\\nClient address: 198.51.100.9"), std::string::npos);
}

// SPEC §11: an IPv6 client is named in RFC 5952 form.
TEST_F(DecisionTest, Ipv6ClientNamedInTheFirewall403) {
    const IpAddress c6(*rules::parse_ipv6("2001:DB8:0:0:0:0:0:9"));
    auto d = run(adm(VW_PASS_TRUSTED_CANDIDATE, c6), "GET", "/secrets/db", bearer(base_claims()), c6);
    EXPECT_EQ(d.status, 403u);
    EXPECT_EQ(d.inner_code, "ForbiddenByFirewall");
    EXPECT_EQ(body(d)["error"]["message"],
              "Client address is not authorized and caller is not a trusted service.\r\nClient address: "
              "2001:db8::9\r\nCaller: " +
                  caller(kAppApp, kOidApp) + "\r\nVault: contoso-prod;location=lab");
}

// Without a datapath record an IPv6 client is checked against the vault's
// IPv6 rules only: no IPv4 rule, however wide, admits it.
TEST_F(DecisionTest, Ipv6ClientWithoutRecordIsNotAdmittedByAnIpv4Rule) {
    v.ip_rules.push_back({rules::parse_ipv4_prefix("0.0.0.0/0")->prefix, {}});
    const IpAddress c6(*rules::parse_ipv6("2001:db8::9"));
    auto a = no_record(c6);
    EXPECT_FALSE(a.admitted);
    EXPECT_EQ(a.reason, VW_DROP_NO_RULE);
    auto d = run(a, "GET", "/secrets/db", bearer(base_claims()), c6);
    EXPECT_EQ(d.status, 403u);
    EXPECT_EQ(d.inner_code, "ForbiddenByFirewall");
    // The same rule does admit an IPv4 client.
    EXPECT_TRUE(no_record(kClientOut).admitted);
}

// ... and the vault's IPv6 rules do admit it, which no IPv4 client matches.
TEST_F(DecisionTest, Ipv6ClientWithoutRecordAdmittedByAnIpv6Rule) {
    v.ip_rules6.push_back({rules::parse_ipv6_prefix("2001:db8::/32")->prefix, {}});
    auto a = no_record(IpAddress(*rules::parse_ipv6("2001:db8::9")));
    EXPECT_TRUE(a.admitted);
    EXPECT_EQ(a.reason, VW_PASS_IP_RULE);
    EXPECT_EQ(a.detail, "user-space ip rule 2001:db8::/32");
    EXPECT_FALSE(no_record(IpAddress(*rules::parse_ipv6("2001:db9::9"))).admitted);
    EXPECT_FALSE(no_record(kClientOut).admitted);
    auto d = run(a, "GET", "/secrets/db", bearer(base_claims()), IpAddress(*rules::parse_ipv6("2001:db8::9")));
    EXPECT_TRUE(d.allow) << d.reason;
}

TEST_F(DecisionTest, PublicAccessDisabledGivesForbiddenByConnection) {
    v.public_network_access = false;
    auto d = run(adm(VW_PASS_TRUSTED_CANDIDATE, kClientOut), "GET", "/secrets/db", bearer(base_claims()), kClientOut);
    EXPECT_EQ(d.status, 403u);
    EXPECT_EQ(d.inner_code, "ForbiddenByConnection");
    EXPECT_EQ(d.message, "Public network access is disabled and request is not from a trusted service nor via an "
                         "approved private link.\r\nCaller: " +
                             caller(kAppApp, kOidApp) + "\r\nVault: contoso-prod;location=lab");
    // A trusted service still passes when public access is disabled (bypass).
    auto t = run(adm(VW_PASS_TRUSTED_CANDIDATE, kClientOut), "POST", "/keys/cmk/wrapkey",
                 bearer(base_claims(kOidStorage, kStorageApp)), kClientOut);
    EXPECT_TRUE(t.allow);
}

TEST_F(DecisionTest, AccessPolicyRefusal) {
    auto d = run(adm(VW_PASS_IP_RULE), "DELETE", "/secrets/db?api-version=7.4", bearer(base_claims()));
    EXPECT_EQ(d.status, 403u);
    EXPECT_EQ(d.inner_code, "ForbiddenByPolicy");
    EXPECT_EQ(d.reason, "policy_denied");
    EXPECT_EQ(d.message, "The user, group or application '" + caller(kAppApp, kOidApp) +
                             "' does not have secrets delete permission on key vault 'contoso-prod;location=lab'. "
                             "For help resolving this issue, please see "
                             "https://go.microsoft.com/fwlink/?linkid=2125287");
    auto unknown = run(adm(VW_PASS_IP_RULE), "GET", "/secrets/db", bearer(base_claims(kOidRbac)));
    EXPECT_EQ(unknown.inner_code, "ForbiddenByPolicy");
}

TEST_F(DecisionTest, RbacAllowAndRefusal) {
    v.authorization = rules::Authorization::rbac;
    v.role_assignments = {{kOidRbac, "Key Vault Secrets User", "/", {}},
                          {kOidRbac, "Key Vault Crypto User", "/keys/k1", {}}};
    auto ok = run(adm(VW_PASS_IP_RULE), "GET", "/secrets/db", bearer(base_claims(kOidRbac)));
    EXPECT_TRUE(ok.allow);
    auto wrap = run(adm(VW_PASS_IP_RULE), "POST", "/keys/k1/wrapkey", bearer(base_claims(kOidRbac)));
    EXPECT_TRUE(wrap.allow);
    auto d = run(adm(VW_PASS_IP_RULE), "PUT", "/secrets/db", bearer(base_claims(kOidRbac)));
    EXPECT_EQ(d.status, 403u);
    EXPECT_EQ(d.inner_code, "ForbiddenByRbac");
    EXPECT_EQ(d.message,
              "Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or "
              "role definitions were changed recently, please observe propagation time.\r\nCaller: " +
                  caller(kAppApp, kOidRbac) +
                  "\r\nAction: 'Microsoft.KeyVault/vaults/secrets/setSecret/action'\r\nResource: '/subscriptions/" +
                  kSubscription +
                  "/providers/microsoft.keyvault/vaults/contoso-prod/secrets/db'\r\nAssignment: (not "
                  "found)\r\nDenyAssignmentId: null\r\nDecisionReason: null \r\nVault: contoso-prod;location=lab\r\n");
    auto k2 = run(adm(VW_PASS_IP_RULE), "POST", "/keys/k2/wrapkey", bearer(base_claims(kOidRbac)));
    EXPECT_EQ(k2.inner_code, "ForbiddenByRbac");
    // Access policies are ignored under rbac.
    auto app = run(adm(VW_PASS_IP_RULE), "GET", "/secrets/db", bearer(base_claims()));
    EXPECT_EQ(app.inner_code, "ForbiddenByRbac");
}

TEST_F(DecisionTest, MissingTokenGetsChallenge) {
    for (std::optional<std::string> h : {std::optional<std::string>{}, std::optional<std::string>{"Basic Zm9vOmJhcg=="},
                                         std::optional<std::string>{"Bearertoken"}}) {
        auto d = run(adm(VW_PASS_IP_RULE), "GET", "/secrets/db?api-version=7.4", h);
        EXPECT_EQ(d.status, 401u);
        EXPECT_EQ(d.inner_code, "");
        EXPECT_EQ(d.reason, "missing_token");
        EXPECT_EQ(d.www_authenticate, "Bearer authorization=\"https://login.microsoftonline.com/" + kTenant +
                                          "\", resource=\"https://vault.azure.net\"");
        auto b = body(d);
        EXPECT_EQ(b["error"]["code"], "Unauthorized");
        EXPECT_EQ(b["error"]["message"], "AKV10000: Request is missing a Bearer or PoP token.");
    }
    auto empty = run(adm(VW_PASS_IP_RULE), "GET", "/secrets/db", std::string("Bearer "));
    EXPECT_EQ(empty.status, 401u);
    EXPECT_NE(empty.www_authenticate.find("error=\"invalid_token\""), std::string::npos);
    auto lower = run(adm(VW_PASS_IP_RULE), "GET", "/secrets/db", "bearer  " + token(base_claims()));
    EXPECT_TRUE(lower.allow);
}

TEST_F(DecisionTest, ChallengeAuthorityTrailingSlashNotDoubled) {
    id.authority = "https://login.microsoftonline.com/";
    auto d = run(adm(VW_PASS_IP_RULE), "GET", "/secrets/db", std::nullopt);
    EXPECT_EQ(d.www_authenticate, "Bearer authorization=\"https://login.microsoftonline.com/" + kTenant +
                                      "\", resource=\"https://vault.azure.net\"");
}

TEST_F(DecisionTest, FallbackAdmitsIpRuleClient) {
    auto a = no_record(kClientIn);
    EXPECT_TRUE(a.admitted);
    EXPECT_FALSE(a.from_datapath);
    auto d = run(a, "GET", "/secrets/db", bearer(base_claims()));
    EXPECT_TRUE(d.allow);
    EXPECT_EQ(d.reason, "ip_rule");
}

TEST_F(DecisionTest, FallbackFailsClosed) {
    auto d = run(no_record(kClientOut), "GET", "/secrets/db", bearer(base_claims()), kClientOut);
    EXPECT_EQ(d.status, 403u);
    EXPECT_EQ(d.inner_code, "ForbiddenByFirewall");
    EXPECT_EQ(d.reason, "no_rule");
    EXPECT_EQ(d.message, "Client address is not authorized and caller is not a trusted service.\r\nClient address: "
                         "198.51.100.9\r\nCaller: " +
                             caller(kAppApp, kOidApp) + "\r\nVault: contoso-prod;location=lab");
    // Even a default-allow vault: without the datapath's record only ip_rules count.
    v.default_action = rules::DefaultAction::allow;
    EXPECT_EQ(run(no_record(kClientOut), "GET", "/secrets/db", bearer(base_claims()), kClientOut).status, 403u);
    // Without a token the refusal still comes first (no challenge).
    EXPECT_EQ(run(no_record(kClientOut), "GET", "/secrets/db", std::nullopt, kClientOut).status, 403u);
}

TEST_F(DecisionTest, FallbackPublicDisabledAndPrivateEndpoint) {
    v.public_network_access = false;
    auto d = run(no_record(kClientIn), "GET", "/secrets/db", bearer(base_claims()));
    EXPECT_EQ(d.inner_code, "ForbiddenByConnection");
    EXPECT_EQ(d.reason, "public_access_disabled");
    v.public_network_access = true;
    auto p = run(no_record(kClientIn, true), "GET", "/secrets/db", bearer(base_claims()));
    EXPECT_EQ(p.status, 403u);
    EXPECT_EQ(p.reason, "not_private_link");
}

TEST_F(DecisionTest, RecordOfAnotherVaultIsNotTrusted) {
    auto a = adm(VW_PASS_DEFAULT_ALLOW, kClientOut, false, 2);
    EXPECT_FALSE(a.admitted);
    auto b = adm(VW_DROP_NO_RULE, kClientOut);  // a drop reason is never an admission
    EXPECT_FALSE(b.admitted);
    auto c = adm(VW_PASS_IP_RULE, kClientIn, false, 2);  // falls back, and the fallback admits
    EXPECT_TRUE(c.admitted);
    EXPECT_FALSE(c.from_datapath);
}

TEST_F(DecisionTest, UnknownOperationIsBadRequest) {
    auto d = run(adm(VW_PASS_IP_RULE), "GET", "/admin/config", bearer(base_claims()));
    EXPECT_EQ(d.status, 400u);
    EXPECT_EQ(d.reason, "unknown_operation");
}

TEST_F(DecisionTest, AuditLineHasEveryField) {
    auto d = run(adm(VW_PASS_TRUSTED_CANDIDATE, kClientOut), "GET", "/secrets/db", bearer(base_claims()), kClientOut);
    AuditRecord r{"198.51.100.9", 0, "contoso-prod", d.operation, d.caller, "deny", d.reason, d.status, "GET",
                  "/secrets/db"};
    auto j = AuditLog::to_json(r);
    for (auto k : {"time", "client", "vni", "vault", "operation", "caller", "decision", "reason"})
        EXPECT_TRUE(j.contains(k)) << k;
    EXPECT_EQ(j["operation"], "secrets/get");
    EXPECT_EQ(j["reason"], "not_trusted_service");
}

// Issue 17 item 1: a vault's location (any config string) that is not UTF-8
// is quoted in the Key Vault message; the JSON body replaces the bad byte
// (U+FFFD) instead of throwing out of the I/O thread.
TEST_F(DecisionTest, InvalidUtf8InConfigIsReplacedInTheBody) {
    v.location = "caf\xe9";
    auto d = run(adm(VW_PASS_IP_RULE), "DELETE", "/secrets/db?api-version=7.4", bearer(base_claims()));
    EXPECT_EQ(d.status, 403u);
    std::string text;
    ASSERT_NO_THROW(text = d.body());
    auto j = json::parse(text);
    EXPECT_NE(j["error"]["message"].get<std::string>().find("contoso-prod;location=caf\xef\xbf\xbd'"),
              std::string::npos)
        << text;
    v.location = "lab";
    v.name = "bad\xff";
    EXPECT_NO_THROW(json::parse(run(adm(VW_PASS_IP_RULE), "DELETE", "/secrets/db", bearer(base_claims())).body()));
}

// SPEC §9 audit mode: what only the network checks would refuse is allowed
// with decision `audit` and the reason it would have been refused for;
// token and permission checks refuse as ever.
TEST_F(DecisionTest, AuditModeForwardsWhatOnlyTheNetworkWouldRefuse) {
    v.enforcement = rules::Enforcement::audit;
    // The datapath passed the SYN only because of audit mode.
    auto d = run(adm(VW_AUDIT_NO_RULE, kClientOut), "GET", "/secrets/db", bearer(base_claims()), kClientOut);
    EXPECT_TRUE(d.allow);
    EXPECT_TRUE(d.audit);
    EXPECT_EQ(d.reason, "no_rule");
    // No record at all, and the user-space fallback refuses the address.
    d = run(no_record(kClientOut), "GET", "/secrets/db", bearer(base_claims()), kClientOut);
    EXPECT_TRUE(d.allow);
    EXPECT_TRUE(d.audit);
    EXPECT_EQ(d.reason, "no_rule");
    // A trusted-service candidate that is not one.
    d = run(adm(VW_PASS_TRUSTED_CANDIDATE, kClientOut), "GET", "/secrets/db", bearer(base_claims()), kClientOut);
    EXPECT_TRUE(d.allow);
    EXPECT_TRUE(d.audit);
    EXPECT_EQ(d.reason, "not_trusted_service");
    // What passes anyway is a plain allow.
    d = run(adm(VW_PASS_IP_RULE), "GET", "/secrets/db", bearer(base_claims()));
    EXPECT_TRUE(d.allow);
    EXPECT_FALSE(d.audit);
    EXPECT_EQ(d.reason, "ip_rule");
}

TEST_F(DecisionTest, AuditModeNeverWaivesTokenOrPermission) {
    v.enforcement = rules::Enforcement::audit;
    auto d = run(adm(VW_AUDIT_NO_RULE, kClientOut), "GET", "/secrets/db", std::nullopt, kClientOut);
    EXPECT_FALSE(d.allow);
    EXPECT_EQ(d.status, 401u);
    d = run(adm(VW_AUDIT_NO_RULE, kClientOut), "GET", "/secrets/db", std::string("Bearer not.a.jwt"), kClientOut);
    EXPECT_EQ(d.status, 401u);
    auto claims = base_claims();
    claims["oid"] = "6b0c8d8e-0000-4000-8000-0000000000ff";  // no access policy
    d = run(adm(VW_AUDIT_NO_RULE, kClientOut), "GET", "/secrets/db", bearer(claims), kClientOut);
    EXPECT_FALSE(d.allow);
    EXPECT_EQ(d.status, 403u);
    EXPECT_EQ(d.inner_code, "ForbiddenByPolicy");
}

TEST_F(DecisionTest, AuditedAdmissionIsRefusedOnceTheVaultEnforces) {
    // The SYN came while the vault audited; the reload to enforce came since.
    auto d = run(adm(VW_AUDIT_NO_RULE, kClientOut), "GET", "/secrets/db", bearer(base_claims()), kClientOut);
    EXPECT_FALSE(d.allow);
    EXPECT_EQ(d.inner_code, "ForbiddenByFirewall");
    d = run(adm(VW_AUDIT_PUBLIC_ACCESS_DISABLED, kClientOut), "GET", "/secrets/db", bearer(base_claims()), kClientOut);
    EXPECT_FALSE(d.allow);
    EXPECT_EQ(d.inner_code, "ForbiddenByConnection");
}
