#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "rules/parser.hpp"
#include "parse_support.hpp"
#include "temp_dir.hpp"

using namespace vaultwall::rules;
using namespace vaultwall::rules::test;
namespace fs = std::filesystem;

namespace {

const char* kHeader = R"(version: 1
host:
  vteps: [198.18.0.0/24]
vnets:
  - name: prod-vnet
    vni: 5001
    subnets:
      app: 198.19.1.0/24
      data: 198.19.2.0/24
)";

// A vault block appended after kHeader (which has 9 lines), so vault lines
// start at 11: "vaults:" is line 10.
std::string with_vault(const std::string& body) {
    return std::string(kHeader) +
           "vaults:\n"
           "  - name: v1\n"                                          // 11
           "    tenant_id: 3f1c9a52-7d0e-4b8a-9c11-5e2f0a6d4b10\n"  // 12
           "    endpoints: [203.0.113.10:443]\n"                     // 13
           + body;                                                  // 14...
}

}  // namespace

TEST(Parser, MinimalFile) {
    auto rf = parse("version: 1\n");
    EXPECT_EQ(rf.version, 1);
    EXPECT_EQ(rf.host.vxlan_port, 4789);
    EXPECT_TRUE(rf.vaults.empty());
    EXPECT_TRUE(rf.warnings.empty());
}

TEST(Parser, BasicVault) {
    auto rf = parse(with_vault("    network_acls:\n"
                               "      default_action: deny\n"
                               "      bypass: none\n"
                               "      ip_rules: [192.0.2.0/24, 198.51.100.7]\n"
                               "      virtual_network_rules: [prod-vnet/app]\n"
                               "    private_endpoints:\n"
                               "      - { vnet: prod-vnet, address: 198.19.1.100:443 }\n"));
    ASSERT_EQ(rf.vaults.size(), 1u);
    const auto& v = rf.vaults[0];
    EXPECT_EQ(v.name, "v1");
    EXPECT_EQ(v.pos.line, 11);
    ASSERT_EQ(v.endpoints.size(), 1u);
    EXPECT_EQ(v.endpoints[0].addr, *parse_ipv4("203.0.113.10"));
    EXPECT_EQ(v.endpoints[0].port, 443);
    EXPECT_EQ(v.endpoints[0].proto, Proto::tcp);
    EXPECT_EQ(v.default_action, DefaultAction::deny);
    EXPECT_EQ(v.bypass, Bypass::none);
    ASSERT_EQ(v.ip_rules.size(), 2u);
    EXPECT_EQ(v.ip_rules[0].prefix.str(), "192.0.2.0/24");
    EXPECT_EQ(v.ip_rules[1].prefix.str(), "198.51.100.7/32");  // bare address = /32
    EXPECT_EQ(v.ip_rules[1].pos.line, 17);
    ASSERT_EQ(v.vnet_rules.size(), 1u);
    EXPECT_EQ(v.vnet_rules[0].vni, 5001u);
    ASSERT_EQ(v.vnet_rules[0].prefixes.size(), 1u);
    EXPECT_EQ(v.vnet_rules[0].prefixes[0].str(), "198.19.1.0/24");
    EXPECT_TRUE(v.vnet_rules[0].prefixes6.empty());
    EXPECT_EQ(v.vnet_rules[0].vnet, "prod-vnet");
    EXPECT_EQ(v.vnet_rules[0].subnet, "app");
    ASSERT_EQ(v.private_endpoints.size(), 1u);
    EXPECT_EQ(v.private_endpoints[0].vni, 5001u);
    EXPECT_EQ(v.private_endpoints[0].endpoint.port, 443);
    ASSERT_EQ(rf.host.vteps.size(), 1u);
    EXPECT_EQ(rf.host.vteps[0].str(), "198.18.0.0/24");
}

// ---------------------------------------------------------------- errors

TEST(ParserErrors, HostBitsSet) {
    expect_one_error(with_vault("    network_acls:\n"
                                "      ip_rules: [198.51.100.0/24, 192.0.2.1/24]\n"),
                     15, 35, "192.0.2.1/24 has host bits set; did you mean 192.0.2.0/24?");
}

TEST(ParserErrors, NotAPrefix) {
    expect_one_error(with_vault("    network_acls:\n"
                                "      ip_rules:\n"
                                "        - 192.0.2.300\n"),
                     16, 11, "'192.0.2.300' in ip_rules is not an IPv4 prefix");
    expect_one_error(with_vault("    network_acls:\n"
                                "      ip_rules: [192.0.2.0/33]\n"),
                     15, 18, "is not an IPv4 prefix");
}

TEST(ParserErrors, VtepHostBits) {
    expect_one_error("version: 1\nhost:\n  vteps: [198.18.0.1/24]\n", 3, 11,
                     "198.18.0.1/24 has host bits set; did you mean 198.18.0.0/24?");
}

TEST(ParserErrors, UnknownVnet) {
    expect_one_error(with_vault("    network_acls:\n"
                                "      virtual_network_rules: [prod-vnt/app]\n"),
                     15, 31, "unknown VNet 'prod-vnt' in virtual network rule 'prod-vnt/app'; did you mean 'prod-vnet'?");
}

TEST(ParserErrors, UnknownSubnet) {
    expect_one_error(with_vault("    network_acls:\n"
                                "      virtual_network_rules: [prod-vnet/web]\n"),
                     15, 31, "VNet 'prod-vnet' has no subnet 'web'; its subnets: app, data");
    expect_one_error(with_vault("    network_acls:\n"
                                "      virtual_network_rules: [prod-vnet/ap]\n"),
                     15, 31, "did you mean 'prod-vnet/app'?");
}

TEST(ParserErrors, BadVnetRuleShape) {
    expect_one_error(with_vault("    network_acls:\n"
                                "      virtual_network_rules: [prod-vnet]\n"),
                     15, 31, "write VNET/SUBNET");
}

TEST(ParserErrors, VniOutOfRange) {
    expect_one_error("version: 1\nvnets:\n  - name: a\n    vni: 16777216\n", 4, 10,
                     "VNI '16777216' is out of range; use 1..16777215");
    expect_one_error("version: 1\nvnets:\n  - name: a\n    vni: 0\n", 4, 10,
                     "out of range; use 1..16777215");
    expect_one_error("version: 1\nvnets:\n  - name: a\n    vni: -5\n", 4, 10,
                     "out of range");
}

TEST(ParserErrors, DuplicateVni) {
    expect_one_error("version: 1\nvnets:\n  - name: a\n    vni: 7\n  - name: b\n    vni: 7\n", 6,
                     10, "duplicate VNI 7: VNet 'a' (at line 3, col 5) already uses it");
}

TEST(ParserErrors, DuplicateVnetName) {
    expect_one_error("version: 1\nvnets:\n  - name: a\n    vni: 7\n  - name: a\n    vni: 8\n", 5,
                     11, "duplicate vnet name 'a'");
}

TEST(ParserErrors, EndpointNotIpPort) {
    expect_one_error(with_vault("    private_endpoints:\n"
                                "      - { vnet: prod-vnet, address: 198.19.1.100 }\n"),
                     15, 37, "'198.19.1.100' in private endpoint address is not an IPv4:port endpoint");
}

TEST(ParserErrors, EndpointHostname) {
    auto text = std::string(kHeader) +
                "vaults:\n"
                "  - name: v1\n"
                "    tenant_id: 3f1c9a52-7d0e-4b8a-9c11-5e2f0a6d4b10\n"
                "    endpoints: [vault.example:443]\n";
    expect_one_error(text, 13, 17, "'vault.example:443' in endpoints is not an IPv4:port endpoint");
}

TEST(ParserErrors, PortOutOfRange) {
    auto base = std::string(kHeader) +
                "vaults:\n"
                "  - name: v1\n"
                "    tenant_id: 3f1c9a52-7d0e-4b8a-9c11-5e2f0a6d4b10\n";
    expect_one_error(base + "    endpoints: [203.0.113.10:0]\n", 13, 17,
                     "port 0 in endpoints '203.0.113.10:0' is out of range; use 1..65535");
    expect_one_error(base + "    endpoints: [203.0.113.10:65536]\n", 13, 17,
                     "port 65536 in endpoints");
    expect_one_error(base + "    endpoints: [203.0.113.10:https]\n", 13, 17, "has no valid port");
    expect_one_error("version: 1\nhost:\n  vxlan_port: 70000\n", 3, 15,
                     "host.vxlan_port '70000' is not a UDP port");
}

TEST(ParserErrors, DuplicateVaultNames) {
    auto text = std::string("version: 1\nvaults:\n") +
                "  - name: v1\n"
                "    tenant_id: 3f1c9a52-7d0e-4b8a-9c11-5e2f0a6d4b10\n"
                "    endpoints: [203.0.113.10:443]\n"
                "  - name: v1\n"
                "    tenant_id: 3f1c9a52-7d0e-4b8a-9c11-5e2f0a6d4b10\n"
                "    endpoints: [203.0.113.11:443]\n";
    expect_one_error(text, 6, 5, "duplicate vault name 'v1' (first at line 3, col 5)");
}

TEST(ParserErrors, EndpointOwnedByTwoVaults) {
    auto text = std::string("version: 1\nvaults:\n") +
                "  - name: v1\n"
                "    tenant_id: 3f1c9a52-7d0e-4b8a-9c11-5e2f0a6d4b10\n"
                "    endpoints: [203.0.113.10:443]\n"
                "  - name: v2\n"
                "    tenant_id: 3f1c9a52-7d0e-4b8a-9c11-5e2f0a6d4b10\n"
                "    endpoints: [203.0.113.10:443]\n";
    expect_one_error(text, 8, 17, "is already served by vault 'v1'");
}

TEST(ParserErrors, UnknownPermission) {
    auto d = errors_of(with_vault("    access_policies:\n"
                                  "      - object_id: 6b0c8d8e-0000-4000-8000-000000000001\n"
                                  "        permissions: { secrets: [get, lst], keys: [wrapkey, "
                                  "frobnicate] }\n"));
    ASSERT_EQ(d.size(), 2u);
    // kinds are checked in the order secrets, keys, certificates, storage
    EXPECT_EQ(d[0].pos.line, 16);
    EXPECT_EQ(d[0].pos.col, 39);
    EXPECT_NE(d[0].message.find("unknown secrets permission 'lst'; did you mean 'list'?"),
              std::string::npos)
        << d[0].str();
    EXPECT_NE(d[0].message.find("all, backup, delete, get, list, purge, recover, restore, set"),
              std::string::npos);
    EXPECT_EQ(d[1].pos.line, 16);
    EXPECT_EQ(d[1].pos.col, 61);
    EXPECT_NE(d[1].message.find("unknown keys permission 'frobnicate'"), std::string::npos);
    EXPECT_NE(d[1].message.find("unwrapKey"), std::string::npos);
}

TEST(ParserErrors, UnknownPermissionKind) {
    expect_one_error(with_vault("    access_policies:\n"
                                "      - object_id: 6b0c8d8e-0000-4000-8000-000000000001\n"
                                "        permissions: { secret: [get] }\n"),
                     16, 24, "unknown key 'secret' in permissions; did you mean 'secrets'?");
}

TEST(ParserErrors, UnknownRole) {
    expect_one_error(with_vault("    authorization: rbac\n"
                                "    role_assignments:\n"
                                "      - principal_id: 6b0c8d8e-0000-4000-8000-000000000002\n"
                                "        role: Key Vault Secret User\n"),
                     17, 15, "unknown role 'Key Vault Secret User'; did you mean 'Key Vault Secrets User'?");
    expect_one_error(with_vault("    authorization: rbac\n"
                                "    role_assignments:\n"
                                "      - principal_id: 6b0c8d8e-0000-4000-8000-000000000002\n"
                                "        role: Owner\n"),
                     17, 15, "Key Vault Crypto Service Release User");
}

TEST(ParserErrors, BadScope) {
    expect_one_error(with_vault("    authorization: rbac\n"
                                "    role_assignments:\n"
                                "      - principal_id: 6b0c8d8e-0000-4000-8000-000000000002\n"
                                "        role: Key Vault Secrets User\n"
                                "        scope: /secret/db-password\n"),
                     18, 16, "bad scope '/secret/db-password'; use /");
    expect_one_error(with_vault("    authorization: rbac\n"
                                "    role_assignments:\n"
                                "      - principal_id: 6b0c8d8e-0000-4000-8000-000000000002\n"
                                "        role: Key Vault Secrets User\n"
                                "        scope: /secrets/\n"),
                     18, 16, "bad scope");
}

TEST(ParserErrors, UnknownKeyTypo) {
    expect_one_error(with_vault("    network_acls:\n"
                                "      ip_rule: [192.0.2.0/24]\n"),
                     15, 7, "unknown key 'ip_rule' in network_acls; did you mean 'ip_rules'?");
    expect_one_error("version: 1\nvaultz: []\n", 2, 1,
                     "unknown key 'vaultz' in the rule file; did you mean 'vaults'?");
    expect_one_error("version: 1\nzzzzzz: []\n", 2, 1, "expected one of: version, host");
    // camelCase typos are answered in camelCase
    expect_one_error(with_vault("    networkAcls:\n"
                                "      ipRule: [192.0.2.0/24]\n"),
                     15, 7, "did you mean 'ipRules'?");
}

TEST(ParserErrors, DuplicateKey) {
    expect_one_error(with_vault("    network_acls:\n"
                                "      ip_rules: [192.0.2.0/24]\n"
                                "      ipRules: [{value: 198.51.100.0/24}]\n"),
                     16, 7, "duplicate key 'ipRules' in network_acls (first at line 15, col 7)");
}

TEST(ParserErrors, WrongType) {
    expect_one_error(with_vault("    network_acls:\n"
                                "      ip_rules: 192.0.2.0/24\n"),
                     15, 17, "ip_rules must be a list, got a scalar");
    expect_one_error("version: 1\nvaults: {a: 1}\n", 2, 9, "vaults must be a list, got a map");
    expect_one_error("version: 1\nhost: [1]\n", 2, 7, "host must be a map of keys, got a list");
    expect_one_error(with_vault("    location: [a, b]\n"), 14, 15,
                     "location must be a single value, got a list");
}

TEST(ParserErrors, MissingRequired) {
    expect_one_error("host: {}\n", 1, 1, "missing required key 'version' in the rule file");
    expect_one_error("version: 1\nvaults:\n  - tenant_id: 3f1c9a52-7d0e-4b8a-9c11-5e2f0a6d4b10\n",
                     3, 5, "missing required key 'name' in a vault; add e.g. `name: contoso-prod`");
    // tenant_id is needed by the gate only (a file without `gate:` may leave it out).
    expect_one_error("version: 1\nvaults:\n  - name: v1\n    endpoints: [203.0.113.1:443]\n"
                     "    upstream: http://127.0.0.1:8200\ngate: {tls_cert: a.pem, tls_key: a.key}\n",
                     3, 5, "missing required key 'tenant_id' in vault 'v1'");
    expect_one_error("version: 1\nvnets:\n  - name: a\n", 3, 5, "missing required key 'vni'");
}

TEST(ParserErrors, Version) {
    expect_one_error("version: 2\n", 1, 10, "unsupported version '2'; this vaultwall reads `version: 1`");
    expect_one_error("version: one\n", 1, 10, "unsupported version 'one'");
}

TEST(ParserErrors, BadEnumValues) {
    expect_one_error(with_vault("    network_acls:\n"
                                "      default_action: block\n"),
                     15, 23, "bad value 'block' for default_action; expected allow or deny");
    expect_one_error(with_vault("    network_acls:\n"
                                "      bypass: AzureService\n"),
                     15, 15, "did you mean 'azure_services'?");
    expect_one_error(with_vault("    public_network_access: off\n"), 14, 28,
                     "bad value 'off' for public_network_access; expected enabled or disabled");
    expect_one_error(with_vault("    authorization: acl\n"), 14, 20,
                     "expected access_policies or rbac");
}

TEST(ParserErrors, PrivateEndpointUnknownVnet) {
    expect_one_error(with_vault("    private_endpoints:\n"
                                "      - { vnet: dev-vnet, address: 198.19.1.100:443 }\n"),
                     15, 17, "unknown VNet 'dev-vnet' in private endpoint");
}

TEST(ParserErrors, YamlSyntax) {
    auto d = errors_of("version: 1\nvaults: [a, b\nhost: {}\n");
    ASSERT_EQ(d.size(), 1u);
    EXPECT_EQ(d[0].pos.line, 3);
    EXPECT_EQ(d[0].pos.col, 5);
    EXPECT_NE(d[0].message.find("YAML syntax error"), std::string::npos) << d[0].str();
    auto t = errors_of("version: 1\nhost:\n\tvxlan_port: 4789\n");
    ASSERT_EQ(t.size(), 1u);
    EXPECT_EQ(t[0].pos.line, 3);
    EXPECT_NE(t[0].message.find("tab"), std::string::npos) << t[0].str();
}

TEST(ParserErrors, BadGuid) {
    expect_one_error("version: 1\nvaults:\n  - name: v1\n    tenant_id: contoso\n"
                     "    endpoints: [203.0.113.1:443]\n",
                     4, 16, "tenant_id 'contoso' is not a GUID");
}

TEST(ParserErrors, AllErrorsCollected) {
    auto d = errors_of("version: 3\n"
                       "vnets:\n"
                       "  - name: a\n"
                       "    vni: 99999999\n"
                       "vaults:\n"
                       "  - name: v1\n"
                       "    tenant_id: 3f1c9a52-7d0e-4b8a-9c11-5e2f0a6d4b10\n"
                       "    endpoints: [203.0.113.10:0]\n"
                       "    network_acls:\n"
                       "      ip_rules: [192.0.2.1/24]\n"
                       "      bypas: none\n");
    ASSERT_EQ(d.size(), 5u);
    EXPECT_EQ(d[0].pos.line, 1);
    EXPECT_EQ(d[1].pos.line, 4);
    EXPECT_EQ(d[2].pos.line, 8);
    EXPECT_EQ(d[3].pos.line, 11);  // unknown keys are reported when the map is read
    EXPECT_EQ(d[4].pos.line, 10);
    EXPECT_NE(std::string(RuleFileError(d).what()).find("t.yaml:10:18: error: 192.0.2.1/24 has host bits set"),
              std::string::npos);
}

// ---------------------------------------------------------------- Azure spellings

TEST(Parser, AzureSpellingsMatchOurs) {
    auto ours = parse(with_vault("    public_network_access: disabled\n"
                                 "    network_acls:\n"
                                 "      default_action: allow\n"
                                 "      bypass: none\n"
                                 "      ip_rules: [192.0.2.0/24, 198.51.100.7]\n"
                                 "      virtual_network_rules: [prod-vnet/app]\n"
                                 "    authorization: rbac\n"
                                 "    role_assignments:\n"
                                 "      - { principal_id: 6b0c8d8e-0000-4000-8000-000000000002, "
                                 "role: Key Vault Secrets User, scope: / }\n"));
    auto azure = parse(with_vault(
        "    publicNetworkAccess: Disabled\n"
        "    networkAcls:\n"
        "      defaultAction: Allow\n"
        "      bypass: None\n"
        "      ipRules: [{value: 192.0.2.0/24}, {value: 198.51.100.7, action: Allow}]\n"
        "      virtualNetworkRules:\n"
        "        - id: /subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590/resourceGroups/rg/"
        "providers/Microsoft.Network/virtualNetworks/prod-vnet/subnets/app\n"
        "          ignoreMissingVnetServiceEndpoint: false\n"
        "    enableRbacAuthorization: true\n"
        "    roleAssignments:\n"
        "      - { principalId: 6B0C8D8E-0000-4000-8000-000000000002, roleDefinitionName: key "
        "vault secrets user }\n"));
    for (const auto* rf : {&ours, &azure}) {
        ASSERT_EQ(rf->vaults.size(), 1u);
        const auto& v = rf->vaults[0];
        EXPECT_FALSE(v.public_network_access);
        EXPECT_EQ(v.default_action, DefaultAction::allow);
        EXPECT_EQ(v.bypass, Bypass::none);
        ASSERT_EQ(v.ip_rules.size(), 2u);
        EXPECT_EQ(v.ip_rules[0].prefix.str(), "192.0.2.0/24");
        EXPECT_EQ(v.ip_rules[1].prefix.str(), "198.51.100.7/32");
        ASSERT_EQ(v.vnet_rules.size(), 1u);
        EXPECT_EQ(v.vnet_rules[0].vnet, "prod-vnet");
        EXPECT_EQ(v.vnet_rules[0].subnet, "app");
        EXPECT_EQ(v.vnet_rules[0].vni, 5001u);
        EXPECT_EQ(v.authorization, Authorization::rbac);
        ASSERT_EQ(v.role_assignments.size(), 1u);
        EXPECT_EQ(v.role_assignments[0].role, "Key Vault Secrets User");
        EXPECT_EQ(v.role_assignments[0].scope, "/");
        EXPECT_EQ(v.role_assignments[0].principal_id, "6b0c8d8e-0000-4000-8000-000000000002");
    }
}

TEST(Parser, AzureBypassAndAccessPolicies) {
    auto rf = parse(with_vault("    networkAcls: { bypass: AzureServices, defaultAction: Deny }\n"
                               "    accessPolicies:\n"
                               "      - tenantId: 3f1c9a52-7d0e-4b8a-9c11-5e2f0a6d4b10\n"
                               "        objectId: 6b0c8d8e-0000-4000-8000-000000000001\n"
                               "        permissions:\n"
                               "          keys: [Get, WrapKey, unwrapkey]\n"
                               "          secrets: [ALL]\n"
                               "          certificates: []\n"
                               "          storage:\n"));
    const auto& v = rf.vaults.at(0);
    EXPECT_EQ(v.bypass, Bypass::azure_services);
    EXPECT_EQ(v.default_action, DefaultAction::deny);
    ASSERT_EQ(v.access_policies.size(), 1u);
    const auto& p = v.access_policies[0];
    EXPECT_EQ(p.object_id, "6b0c8d8e-0000-4000-8000-000000000001");
    EXPECT_EQ(p.permissions.at("keys"), (std::set<std::string>{"get", "wrapKey", "unwrapKey"}));
    EXPECT_EQ(p.permissions.at("secrets"), (std::set<std::string>{"all"}));
    EXPECT_TRUE(p.permissions.at("certificates").empty());
}

// ---------------------------------------------------------------- merging, paths

TEST(Parser, DuplicatePrefixesMergedWithWarning) {
    auto rf = parse(with_vault("    network_acls:\n"
                               "      ip_rules:\n"
                               "        - 192.0.2.0/24\n"        // 16
                               "        - 198.51.100.7\n"        // 17
                               "        - 198.51.100.7/32\n"     // 18
                               "        - 192.0.2.0/24\n"        // 19
                               "      virtual_network_rules: [prod-vnet/app, prod-vnet/app]\n"));
    const auto& v = rf.vaults.at(0);
    EXPECT_EQ(v.ip_rules.size(), 2u);
    EXPECT_EQ(v.vnet_rules.size(), 1u);
    ASSERT_EQ(rf.warnings.size(), 3u);
    EXPECT_EQ(rf.warnings[0],
              "t.yaml:18:11: warning: duplicate ip rule 198.51.100.7/32 in vault 'v1' (first at "
              "line 17, col 11); merged");
    EXPECT_EQ(rf.warnings[1].rfind("t.yaml:19:11: warning: duplicate ip rule 192.0.2.0/24", 0), 0u)
        << rf.warnings[1];
    EXPECT_EQ(rf.warnings[2].rfind("t.yaml:20:46: warning: duplicate virtual network rule", 0), 0u)
        << rf.warnings[2];
}

TEST(Parser, RelativePathsResolved) {
    auto rf = parse("version: 1\n"
                    "identity:\n"
                    "  issuers:\n"
                    "    - { issuer: https://sts.lab.test/t/, jwks_file: keys/jwks.json }\n"
                    "    - { issuer: https://sts2.lab.test/t/, jwks_file: /abs/jwks.json }\n"
                    "gate:\n"
                    "  tls_cert: certs/vault.pem\n"
                    "  tls_key: ../k/vault.key\n"
                    "  audit_log: /var/log/vw/audit.jsonl\n");
    ASSERT_EQ(rf.identity.issuers.size(), 2u);
    EXPECT_EQ(rf.identity.issuers[0].jwks_file, "/etc/vw/keys/jwks.json");
    EXPECT_EQ(rf.identity.issuers[1].jwks_file, "/abs/jwks.json");
    ASSERT_TRUE(rf.gate);
    EXPECT_EQ(rf.gate->tls_cert, "/etc/vw/certs/vault.pem");
    EXPECT_EQ(rf.gate->tls_key, "/etc/k/vault.key");
    EXPECT_EQ(rf.gate->audit_log, "/var/log/vw/audit.jsonl");
}

TEST(ParserErrors, GateNeedsUpstream) {
    expect_one_error("version: 1\ngate: { tls_cert: a.pem, tls_key: a.key }\nvaults:\n"
                     "  - name: v1\n    tenant_id: 3f1c9a52-7d0e-4b8a-9c11-5e2f0a6d4b10\n"
                     "    endpoints: [203.0.113.1:443]\n",
                     4, 5, "vault 'v1' has no upstream");
}

// ---------------------------------------------------------------- catalog

namespace {
using vaultwall::rules::test::TempDir;

const char* kCatalog = R"(trusted_services:
  - id: azure-storage
    name: Azure Storage
    scenario: Storage Service Encryption using customer-managed keys in Azure Key Vault.
    app_ids: [00000000-0000-0000-0000-0000000000a1]
    resource_types: [Microsoft.Storage/storageAccounts]
    operations: [keys/get, keys/wrapKey, keys/unwrapKey]
  - id: azure-backup
    name: Azure Backup
    scenario: Allow backup and restore of relevant keys and secrets.
    app_ids: []
    resource_types: []
    operations: [keys/backup, secrets/Backup, keys/restore]
)";
}  // namespace

TEST(Catalog, LoadsRelativeToRuleFile) {
    TempDir t;
    t.write("rules/trusted-services.yaml", kCatalog);
    auto path = t.write("rules/vaultwall.yaml",
                        "version: 1\ntrusted_services: trusted-services.yaml\n");
    auto rf = load_rule_file(path);
    EXPECT_EQ(rf.trusted_services_file, (t.dir / "rules/trusted-services.yaml").string());
    ASSERT_EQ(rf.trusted_services.size(), 2u);
    EXPECT_EQ(rf.trusted_services[0].id, "azure-storage");
    EXPECT_EQ(rf.trusted_services[0].operations,
              (std::vector<std::string>{"keys/get", "keys/wrapKey", "keys/unwrapKey"}));
    EXPECT_EQ(rf.trusted_services[0].resource_types,
              (std::vector<std::string>{"Microsoft.Storage/storageAccounts"}));
    EXPECT_EQ(rf.trusted_services[1].operations[1], "secrets/backup");
    auto direct = load_trusted_services(t.dir / "rules/trusted-services.yaml");
    EXPECT_EQ(direct.size(), 2u);
}

TEST(Catalog, ErrorsNameTheCatalogFile) {
    TempDir t;
    auto cat = t.write("ts.yaml", R"(trusted_services:
  - id: x
    name: X
    app_ids: [a]
    resource_types: [Microsoft.Storage]
    operations: [keys/wrapkey, keys/wrap]
)");
    try {
        load_trusted_services(cat);
        FAIL() << "expected errors";
    } catch (const RuleFileError& e) {
        const auto& d = e.diagnostics();
        ASSERT_EQ(d.size(), 3u) << e.what();
        EXPECT_EQ(d[0].pos.file, cat);
        EXPECT_EQ(d[0].pos.line, 2);
        EXPECT_EQ(d[0].pos.col, 5);
        EXPECT_NE(d[0].message.find("missing required key 'scenario'"), std::string::npos);
        EXPECT_EQ(d[1].pos.line, 5);
        EXPECT_EQ(d[1].pos.col, 22);
        EXPECT_NE(d[1].message.find("is not NAMESPACE/TYPE"), std::string::npos);
        EXPECT_EQ(d[2].pos.line, 6);
        EXPECT_EQ(d[2].pos.col, 32);
        EXPECT_NE(d[2].message.find("unknown operation 'keys/wrap'; did you mean 'keys/wrapKey'?"),
                  std::string::npos)
            << d[2].str();
    }
}

TEST(Catalog, MissingCatalogIsAnErrorAtTheKey) {
    TempDir t;
    auto path = t.write("r.yaml", "version: 1\ntrusted_services: nope.yaml\n");
    try {
        load_rule_file(path);
        FAIL();
    } catch (const RuleFileError& e) {
        ASSERT_EQ(e.diagnostics().size(), 1u);
        EXPECT_EQ(e.diagnostics()[0].pos.line, 2);
        EXPECT_EQ(e.diagnostics()[0].pos.col, 19);
        EXPECT_NE(e.diagnostics()[0].message.find("cannot read trusted-services catalog"),
                  std::string::npos);
    }
}

TEST(Parser, MissingFile) {
    EXPECT_THROW(load_rule_file("/nonexistent/vw.yaml"), RuleFileError);
}

// ---------------------------------------------------------------- full example

TEST(Parser, FullSpecExampleLoads) {
    TempDir t;
    t.write("trusted-services.yaml", kCatalog);
    auto path = t.write("vaultwall.yaml", R"(version: 1
host:
  vxlan_port: 4789
  vteps: [198.18.0.0/24]
identity:
  audience: https://vault.azure.net
  authority: https://login.microsoftonline.com
  issuers:
    - issuer: https://sts.lab.test/3f1c9a52-7d0e-4b8a-9c11-5e2f0a6d4b10/
      jwks_file: /etc/vaultwall/jwks.json
trusted_services: trusted-services.yaml
gate:
  tls_cert: certs/vault.pem
  tls_key: certs/vault.key
  audit_log: /var/log/vaultwall/audit.jsonl
metrics: 127.0.0.1:9469
vnets:
  - name: prod-vnet
    vni: 5001
    subnets:
      app: 198.19.1.0/24
      data: 198.19.2.0/24
vaults:
  - name: contoso-prod
    tenant_id: 3f1c9a52-7d0e-4b8a-9c11-5e2f0a6d4b10
    subscription_id: 0b1f6471-1bf0-4dda-aec3-cb9272f09590
    location: lab
    endpoints: [203.0.113.10:443]
    private_endpoints:
      - { vnet: prod-vnet, address: 198.19.1.100:443 }
    upstream: http://127.0.0.1:8200
    public_network_access: enabled
    network_acls:
      default_action: deny
      bypass: azure_services
      ip_rules: [192.0.2.0/24, 198.51.100.7]
      virtual_network_rules: [prod-vnet/app]
    authorization: access_policies
    access_policies:
      - object_id: 6b0c8d8e-0000-4000-8000-000000000001
        permissions: { secrets: [get, list, set], keys: [get, wrapKey, unwrapKey], certificates: [] }
    role_assignments:
      - { principal_id: 6b0c8d8e-0000-4000-8000-000000000002, role: Key Vault Secrets User, scope: / }
)");
    auto rf = load_rule_file(path);
    EXPECT_EQ(rf.path, path);
    EXPECT_EQ(rf.identity.issuers.at(0).issuer,
              "https://sts.lab.test/3f1c9a52-7d0e-4b8a-9c11-5e2f0a6d4b10/");
    EXPECT_EQ(rf.gate->tls_cert, (t.dir / "certs/vault.pem").string());
    EXPECT_EQ(rf.metrics, "127.0.0.1:9469");
    EXPECT_EQ(rf.trusted_services.size(), 2u);
    const auto& v = rf.vaults.at(0);
    EXPECT_EQ(v.upstream, "http://127.0.0.1:8200");
    EXPECT_EQ(v.location, "lab");
    EXPECT_EQ(v.access_policies.at(0).permissions.at("keys").size(), 3u);
    EXPECT_EQ(v.role_assignments.size(), 1u);
    EXPECT_TRUE(rf.warnings.empty());
}

// The shipped example loads without a warning, and shows both families
// (SPEC §11): contoso-prod is dual-stack.
TEST(Parser, ShippedExampleLoads) {
    auto rf = load_rule_file((fs::path(VW_SOURCE_DIR) / "rules/example.yaml").string());
    EXPECT_TRUE(rf.warnings.empty()) << rf.warnings.front();
    EXPECT_FALSE(rf.trusted_services.empty());
    ASSERT_FALSE(rf.vaults.empty());
    EXPECT_EQ(rf.host.vteps6.size(), 1u);
    EXPECT_EQ(rf.vnets.at(0).subnets.at(0).prefixes6.size(), 1u);
    const auto& prod = rf.vaults.at(0);
    EXPECT_EQ(prod.name, "contoso-prod");
    EXPECT_EQ(prod.endpoints.size(), 1u);
    EXPECT_EQ(prod.endpoints6.size(), 1u);
    EXPECT_EQ(prod.private_endpoints6.size(), 1u);
    EXPECT_EQ(prod.ip_rules.size(), 2u);
    EXPECT_EQ(prod.ip_rules6.size(), 2u);
}

TEST(Parser, MetricsAndVtepWarnings) {
    auto rf = parse("version: 1\nhost:\n  vteps: [198.18.0.0/24, 198.18.0.0/24]\nmetrics: 0.0.0.0:9469\n");
    EXPECT_EQ(rf.metrics, "0.0.0.0:9469");
    EXPECT_EQ(rf.host.vteps.size(), 1u);
    ASSERT_EQ(rf.warnings.size(), 2u);
    EXPECT_EQ(rf.warnings[0].rfind("t.yaml:3:26: warning: duplicate VTEP prefix 198.18.0.0/24", 0), 0u)
        << rf.warnings[0];
    EXPECT_EQ(rf.warnings[1].rfind("t.yaml:4:10: warning: metrics listens on 0.0.0.0", 0), 0u)
        << rf.warnings[1];
}

TEST(Parser, UdpEndpointSuffix) {
    auto rf = parse(with_vault("    private_endpoints: [{ vnet: prod-vnet, address: 198.19.1.100:53/udp }]\n"));
    EXPECT_EQ(rf.vaults.at(0).private_endpoints.at(0).endpoint.proto, Proto::udp);
    expect_one_error(with_vault("    private_endpoints: [{ vnet: prod-vnet, address: 198.19.1.100:53/sctp }]\n"),
                     14, 53, "unknown protocol 'sctp'");
}
