#include <gtest/gtest.h>

#include "gate/authz.hpp"
#include "gate/trusted.hpp"
#include "support.hpp"

using namespace vaultwall;
using namespace vaultwall::gate;

namespace {
Operation op(const char* m, const char* t) { return *classify(m, t); }
}  // namespace

TEST(AccessPolicies, GrantsNamedPermissionsOnly) {
    auto v = vwtest::vault();
    EXPECT_TRUE(check_access_policies(v.access_policies, vwtest::kOidApp, op("GET", "/secrets/x")).allowed);
    EXPECT_TRUE(check_access_policies(v.access_policies, vwtest::kOidApp, op("POST", "/keys/k/wrapkey")).allowed);
    EXPECT_FALSE(check_access_policies(v.access_policies, vwtest::kOidApp, op("DELETE", "/secrets/x")).allowed);
    EXPECT_FALSE(check_access_policies(v.access_policies, vwtest::kOidApp, op("GET", "/certificates/c")).allowed);
    EXPECT_FALSE(check_access_policies(v.access_policies, vwtest::kOidRbac, op("GET", "/secrets/x")).allowed);
    EXPECT_FALSE(check_access_policies(v.access_policies, "", op("GET", "/secrets/x")).allowed);
}

TEST(AccessPolicies, AllAndCaseInsensitive) {
    rules::AccessPolicy p;
    p.object_id = "ABC";
    p.permissions["keys"] = {"All"};
    p.permissions["secrets"] = {"GET"};
    std::vector<rules::AccessPolicy> ps{p};
    EXPECT_TRUE(check_access_policies(ps, "abc", op("POST", "/keys/k/unwrapkey")).allowed);
    EXPECT_TRUE(check_access_policies(ps, "abc", op("DELETE", "/deletedkeys/k")).allowed);
    EXPECT_TRUE(check_access_policies(ps, "abc", op("GET", "/secrets/s")).allowed);
    EXPECT_FALSE(check_access_policies(ps, "abc", op("GET", "/secrets")).allowed);
}

TEST(Rbac, BuiltInRoles) {
    auto sec_user = *builtin_role_data_actions("Key Vault Secrets User");
    EXPECT_EQ(sec_user.size(), 2u);
    EXPECT_FALSE(builtin_role_data_actions("Owner"));
    EXPECT_TRUE(builtin_role_data_actions("key vault administrator"));
    EXPECT_TRUE(data_action_matches("Microsoft.KeyVault/vaults/*", "Microsoft.KeyVault/vaults/keys/wrap/action"));
    EXPECT_TRUE(data_action_matches("Microsoft.KeyVault/vaults/*/read", "Microsoft.KeyVault/vaults/keys/read"));
    EXPECT_FALSE(data_action_matches("Microsoft.KeyVault/vaults/*/read",
                                     "Microsoft.KeyVault/vaults/secrets/getSecret/action"));
}

TEST(Rbac, RolesScopesAndPrincipals) {
    std::vector<rules::RoleAssignment> as = {
        {"p1", "Key Vault Secrets User", "/", {}},
        {"p2", "Key Vault Crypto Service Encryption User", "/keys/k1", {}},
        {"p3", "Key Vault Reader", "/", {}},
        {"p4", "Key Vault Administrator", "/", {}},
        {"p5", "Key Vault Secrets Officer", "/secrets/s1", {}},
    };
    EXPECT_TRUE(check_rbac(as, "p1", op("GET", "/secrets/any")).allowed);
    EXPECT_TRUE(check_rbac(as, "p1", op("GET", "/secrets")).allowed);
    EXPECT_FALSE(check_rbac(as, "p1", op("PUT", "/secrets/any")).allowed);
    EXPECT_FALSE(check_rbac(as, "p1", op("GET", "/keys/k1")).allowed);
    EXPECT_TRUE(check_rbac(as, "p2", op("POST", "/keys/k1/v/wrapkey")).allowed);
    EXPECT_TRUE(check_rbac(as, "p2", op("POST", "/keys/K1/unwrapkey")).allowed);
    EXPECT_FALSE(check_rbac(as, "p2", op("POST", "/keys/k2/wrapkey")).allowed);
    EXPECT_FALSE(check_rbac(as, "p2", op("POST", "/keys/k1/sign")).allowed);
    EXPECT_FALSE(check_rbac(as, "p2", op("GET", "/keys")).allowed);  // collection needs vault scope
    EXPECT_TRUE(check_rbac(as, "p3", op("GET", "/keys/k1")).allowed);
    EXPECT_TRUE(check_rbac(as, "p3", op("GET", "/secrets")).allowed);
    EXPECT_FALSE(check_rbac(as, "p3", op("GET", "/secrets/s")).allowed);  // reader sees metadata, not values
    EXPECT_TRUE(check_rbac(as, "p4", op("DELETE", "/deletedcertificates/c")).allowed);
    EXPECT_TRUE(check_rbac(as, "p5", op("PUT", "/secrets/s1")).allowed);
    EXPECT_FALSE(check_rbac(as, "p5", op("PUT", "/secrets/s2")).allowed);
    EXPECT_FALSE(check_rbac(as, "nobody", op("GET", "/secrets/s1")).allowed);
}

TEST(Trusted, AppIdAndMirid) {
    auto cat = vwtest::catalog();
    Claims c;
    c.appid = vwtest::kAppStorage;
    EXPECT_TRUE(check_trusted(cat, c, vwtest::kSubscription, "keys/wrapKey").trusted);
    EXPECT_FALSE(check_trusted(cat, c, vwtest::kSubscription, "secrets/get").trusted);
    Claims v2;
    v2.azp = vwtest::kAppStorage;  // v2 tokens carry azp
    EXPECT_TRUE(check_trusted(cat, v2, vwtest::kSubscription, "keys/get").trusted);
    Claims mi;
    mi.appid = "99999999-0000-4000-8000-000000000009";
    mi.xms_mirid = "/subscriptions/" + vwtest::kSubscription +
                   "/resourcegroups/rg1/providers/Microsoft.Storage/storageAccounts/acct1";
    EXPECT_TRUE(check_trusted(cat, mi, vwtest::kSubscription, "keys/unwrapKey").trusted);
    EXPECT_FALSE(check_trusted(cat, mi, "00000000-0000-0000-0000-000000000000", "keys/unwrapKey").trusted);
    mi.xms_mirid = "/subscriptions/" + vwtest::kSubscription +
                   "/resourcegroups/rg1/providers/Microsoft.Compute/virtualMachines/vm1";
    EXPECT_FALSE(check_trusted(cat, mi, vwtest::kSubscription, "keys/unwrapKey").trusted);
    Claims nobody;
    nobody.appid = vwtest::kAppApp;
    EXPECT_FALSE(check_trusted(cat, nobody, vwtest::kSubscription, "keys/get").trusted);
}

TEST(Trusted, MiridParsing) {
    EXPECT_EQ(mirid_resource_type("/subscriptions/S/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/a", "s"),
              "Microsoft.Storage/storageAccounts");
    EXPECT_EQ(mirid_resource_type("/subscriptions/S/resourceGroups/rg/providers/Microsoft.Storage", "S"), "");
    EXPECT_EQ(mirid_resource_type("subscriptions/S/resourceGroups/rg/providers/A/b/c", "S"), "");
    EXPECT_EQ(mirid_resource_type("/subscriptions/S/resourceGroups//providers/A/b/c", "S"), "");
}
