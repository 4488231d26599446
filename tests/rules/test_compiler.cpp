#include <gtest/gtest.h>

#include "rules/compiled.hpp"
#include "rules/parser.hpp"

using namespace vaultwall::rules;

namespace {
const char* kFile = R"(version: 1
host:
  vxlan_port: 8472
  vteps: [198.18.1.0/24, 198.18.0.0/24]
vnets:
  - name: a
    vni: 7
    subnets: { s1: 198.19.1.0/24, s2: 198.19.2.0/24, dup: 198.19.1.0/24 }
  - name: b
    vni: 9
    subnets: { s1: 198.19.1.0/24 }
vaults:
  - name: zeta
    tenant_id: 3f1c9a52-7d0e-4b8a-9c11-5e2f0a6d4b10
    endpoints: [203.0.113.20:443, 203.0.113.20:8443/udp]
    private_endpoints: [{ vnet: b, address: 198.19.1.5:443 }]
    public_network_access: disabled
    network_acls:
      default_action: allow
      bypass: none
      ip_rules: [198.51.100.0/24, 192.0.2.0/24, 192.0.2.0/25]
      virtual_network_rules: [a/s2, b/s1, a/s1, a/dup]
  - name: alpha
    tenant_id: 3f1c9a52-7d0e-4b8a-9c11-5e2f0a6d4b10
    endpoints: [203.0.113.10:443]
    network_acls:
      ip_rules: [192.0.2.0/24]
)";
}

TEST(Compiler, FlatTables) {
    auto rf = parse_rule_text(kFile, "c.yaml", "/");
    auto c = compile(rf);
    EXPECT_EQ(c.vxlan_port, 8472);
    ASSERT_EQ(c.vteps.size(), 2u);
    EXPECT_EQ(c.vteps[0].str(), "198.18.0.0/24");

    ASSERT_EQ(c.vaults.size(), 2u);
    EXPECT_EQ(c.vaults[0].name, "zeta");  // file order
    EXPECT_TRUE(c.vaults[0].public_access_disabled);
    EXPECT_TRUE(c.vaults[0].default_allow);
    EXPECT_FALSE(c.vaults[0].bypass);
    EXPECT_EQ(c.vaults[1].name, "alpha");
    EXPECT_FALSE(c.vaults[1].public_access_disabled);
    EXPECT_FALSE(c.vaults[1].default_allow);
    EXPECT_TRUE(c.vaults[1].bypass);

    ASSERT_EQ(c.endpoints.size(), 4u);
    EXPECT_EQ(c.endpoints[0].vault, 0u);
    EXPECT_EQ(c.endpoints[0].port, 443);
    EXPECT_EQ(c.endpoints[0].proto, Proto::tcp);
    EXPECT_EQ(c.endpoints[1].port, 8443);
    EXPECT_EQ(c.endpoints[1].proto, Proto::udp);
    EXPECT_TRUE(c.endpoints[2].is_private);
    EXPECT_EQ(c.endpoints[2].vni, 9u);
    EXPECT_EQ(c.endpoints[2].addr, *parse_ipv4("198.19.1.5"));
    EXPECT_EQ(c.endpoints[3].vault, 1u);

    // zeta: 3 ip rules (vni 0) + vnet rules: a/s1 (=a/dup, merged), a/s2, b/s1
    ASSERT_EQ(c.rules.size(), 7u);
    std::vector<std::string> got;
    for (const auto& r : c.rules)
        got.push_back(std::to_string(r.vault) + " " + std::to_string(r.vni) + " " +
                      r.prefix.str() + " " + r.origin);
    EXPECT_EQ(got, (std::vector<std::string>{
                       "0 0 192.0.2.0/24 ip_rules",
                       "0 0 192.0.2.0/25 ip_rules",
                       "0 0 198.51.100.0/24 ip_rules",
                       "0 7 198.19.1.0/24 a/s1",
                       "0 7 198.19.2.0/24 a/s2",
                       "0 9 198.19.1.0/24 b/s1",
                       "1 0 192.0.2.0/24 ip_rules",
                   }));
    // a/dup collapsed into a/s1 with a warning at parse time
    ASSERT_EQ(rf.warnings.size(), 1u);
    EXPECT_NE(rf.warnings[0].find("duplicate virtual network rule a/dup"), std::string::npos)
        << rf.warnings[0];
}

TEST(Compiler, DeduplicatesHandBuiltModels) {
    RuleFile rf;
    Vault v;
    v.name = "v";
    Ipv4Prefix p{0xC0000200u, 24};
    v.ip_rules = {{p, {}}, {p, {}}};
    v.vnet_rules = {{"n", "s", {}, 5, {p}, {}}, {"n", "t", {}, 5, {p}, {}}};
    rf.vaults.push_back(v);
    auto c = compile(rf);
    ASSERT_EQ(c.rules.size(), 2u);
    EXPECT_EQ(c.rules[0].vni, 0u);
    EXPECT_EQ(c.rules[1].vni, 5u);
    EXPECT_EQ(c.rules[1].origin, "n/s");
}

TEST(Compiler, Deterministic) {
    auto rf = parse_rule_text(kFile, "c.yaml", "/");
    auto a = compile(rf), b = compile(rf);
    ASSERT_EQ(a.rules.size(), b.rules.size());
    for (std::size_t i = 0; i < a.rules.size(); ++i) {
        EXPECT_EQ(a.rules[i].prefix, b.rules[i].prefix);
        EXPECT_EQ(a.rules[i].origin, b.rules[i].origin);
    }
}
