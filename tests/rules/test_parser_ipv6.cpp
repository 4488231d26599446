// IPv6 in the rule file (SPEC §11): rules, ip_rules_files, VNet subnets,
// VTEPs, endpoints and private endpoints, mixed with IPv4, with the same
// diagnostics as IPv4 (addresses in RFC 5952 form).
#include <gtest/gtest.h>

#include <string>

#include "rules/compiled.hpp"
#include "rules/parser.hpp"
#include "rules/validate.hpp"
#include "parse_support.hpp"
#include "temp_dir.hpp"

using namespace vaultwall::rules;
using namespace vaultwall::rules::test;

namespace {

const char* kHeader = R"(version: 1
host:
  vteps: [198.18.0.0/24, "2001:2::/64"]
vnets:
  - name: prod-vnet
    vni: 5001
    subnets:
      app: [198.19.1.0/24, "2001:2:0:1::/64"]
      v6only: "2001:2:0:2::/64"
)";

// kHeader has 9 lines; "vaults:" is line 10, the vault's keys start at 11.
std::string with_vault(const std::string& body) {
    return std::string(kHeader) +
           "vaults:\n"
           "  - name: v1\n"                                  // 11
           "    endpoints: [203.0.113.10:443, \"[2001:db8::10]:443\"]\n"  // 12
           + body;                                          // 13...
}

Ipv6Addr a6(const char* s) { return *parse_ipv6(s); }
Ipv6Prefix p6(const char* s) { return parse_ipv6_prefix(s)->prefix; }

}  // namespace

TEST(ParserIpv6, MixedFamiliesInOneFile) {
    auto rf = parse(with_vault("    network_acls:\n"
                               "      ip_rules: [192.0.2.0/24, \"2001:DB8:0:0::/48\", \"2001:db8:1::7\", "
                               "{value: \"2001:db8:2::/64\"}]\n"
                               "      virtual_network_rules: [prod-vnet/app, prod-vnet/v6only]\n"
                               "    private_endpoints:\n"
                               "      - { vnet: prod-vnet, address: \"[2001:2:0:1::100]:443\" }\n"
                               "      - { vnet: prod-vnet, address: 198.19.1.100:443 }\n"));
    EXPECT_TRUE(rf.warnings.empty()) << rf.warnings[0];
    const Vault& v = rf.vaults.at(0);
    ASSERT_EQ(v.ip_rules.size(), 1u);
    ASSERT_EQ(v.ip_rules6.size(), 3u);
    EXPECT_EQ(v.ip_rules6[0].prefix.str(), "2001:db8::/48");
    EXPECT_EQ(v.ip_rules6[1].prefix.str(), "2001:db8:1::7/128");  // a bare address is a /128
    EXPECT_EQ(v.ip_rules6[2].prefix.str(), "2001:db8:2::/64");
    EXPECT_EQ(v.ip_rules6[0].pos.line, 14);
    ASSERT_EQ(v.endpoints.size(), 1u);
    ASSERT_EQ(v.endpoints6.size(), 1u);
    EXPECT_EQ(v.endpoints6[0].addr, a6("2001:db8::10"));
    EXPECT_EQ(v.endpoints6[0].port, 443);
    ASSERT_EQ(v.private_endpoints6.size(), 1u);
    EXPECT_EQ(v.private_endpoints6[0].vni, 5001u);
    EXPECT_EQ(v.private_endpoints6[0].endpoint.addr, a6("2001:2:0:1::100"));
    ASSERT_EQ(v.vnet_rules.size(), 2u);
    EXPECT_EQ(v.vnet_rules[0].prefixes.size(), 1u);   // app is dual-stack
    EXPECT_EQ(v.vnet_rules[0].prefixes6.size(), 1u);
    EXPECT_TRUE(v.vnet_rules[1].prefixes.empty());    // v6only
    EXPECT_EQ(v.vnet_rules[1].prefixes6.at(0).str(), "2001:2:0:2::/64");
    ASSERT_EQ(rf.host.vteps6.size(), 1u);
    EXPECT_EQ(rf.host.vteps6[0].str(), "2001:2::/64");

    auto c = compile(rf);
    ASSERT_EQ(c.vteps.size(), 1u);
    ASSERT_EQ(c.vteps6.size(), 1u);
    ASSERT_EQ(c.rules.size(), 2u);  // 192.0.2.0/24, app's 198.19.1.0/24 on VNI 5001
    ASSERT_EQ(c.rules6.size(), 5u);
    // Sorted by (vault, vni, prefix): the ip rules, then the VNet's.
    EXPECT_EQ(c.rules6[0].prefix, p6("2001:db8::/48"));
    EXPECT_EQ(c.rules6[0].vni, 0u);
    EXPECT_EQ(c.rules6[0].origin, "ip_rules");
    EXPECT_EQ(c.rules6[2].prefix, p6("2001:db8:2::/64"));
    EXPECT_EQ(c.rules6[3].prefix, p6("2001:2:0:1::/64"));
    EXPECT_EQ(c.rules6[3].vni, 5001u);
    EXPECT_EQ(c.rules6[3].origin, "prod-vnet/app");
    EXPECT_EQ(c.rules6[4].origin, "prod-vnet/v6only");
    ASSERT_EQ(c.endpoints6.size(), 2u);
    EXPECT_FALSE(c.endpoints6[0].is_private);  // public before private
    EXPECT_EQ(c.endpoints6[0].addr, a6("2001:db8::10"));
    EXPECT_TRUE(c.endpoints6[1].is_private);
    EXPECT_EQ(c.endpoints6[1].vni, 5001u);
    EXPECT_EQ(c.endpoints.size(), 2u);  // the IPv4 tables are untouched by the IPv6 entries
}

TEST(ParserIpv6, HostBitsNameTheIntendedNetworkInRfc5952Form) {
    expect_one_error(with_vault("    network_acls:\n"
                                "      ip_rules: [\"2001:0DB8:0:0::1/32\"]\n"),
                     14, 18, "2001:0DB8:0:0::1/32 has host bits set; did you mean 2001:db8::/32?");
    expect_one_error(with_vault("    network_acls:\n"
                                "      ip_rules: [\"2001:db8::/129\"]\n"),
                     14, 18, "'2001:db8::/129' in ip_rules is not an IPv6 prefix");
    expect_one_error(with_vault("    network_acls:\n"
                                "      ip_rules: [\"[2001:db8::]/32\"]\n"),
                     14, 18, "without brackets");
    expect_one_error(with_vault("    network_acls:\n"
                                "      ip_rules: [\"fe80::1%eth0\"]\n"),
                     14, 18, "a zone (%...) has no meaning in a rule");
    expect_one_error("version: 1\nvnets:\n  - name: n\n    vni: 7\n    subnets:\n      a: [\"2001:2::1/48\"]\n",
                     6, 11, "2001:2::1/48 has host bits set; did you mean 2001:2::/48?");
    expect_one_error("version: 1\nhost:\n  vteps: [\"2001:2::1/64\"]\n", 3, 11,
                     "did you mean 2001:2::/64?");
}

TEST(ParserIpv6, DuplicatesAreMergedWithAWarning) {
    auto rf = parse(with_vault("    network_acls:\n"
                               "      ip_rules: [\"2001:db8::/32\", \"2001:0db8:0::/32\", 2001:db8::/32]\n"
                               "    private_endpoints:\n"
                               "      - { vnet: prod-vnet, address: \"[2001:2:0:1::100]:443\" }\n"
                               "      - { vnet: prod-vnet, address: \"[2001:2:0:1:0::100]:443\" }\n"
                               "  - name: v2\n"
                               "    endpoints: [\"[2001:db8::11]:443\", \"[2001:db8:0::11]:443\"]\n"));
    ASSERT_EQ(rf.vaults.at(0).ip_rules6.size(), 1u);
    ASSERT_EQ(rf.vaults.at(0).private_endpoints6.size(), 1u);
    ASSERT_EQ(rf.vaults.at(1).endpoints6.size(), 1u);
    ASSERT_EQ(rf.warnings.size(), 4u);
    std::string all;
    for (const auto& w : rf.warnings) all += w + "\n";
    EXPECT_NE(all.find("t.yaml:19:39: warning: duplicate endpoint [2001:db8::11]:443 (first at line 19, col 17); merged"),
              std::string::npos) << all;
    EXPECT_NE(all.find("t.yaml:14:35: warning: duplicate ip rule 2001:db8::/32 in vault 'v1' (first at line 14, col 18)"),
              std::string::npos) << all;
    EXPECT_NE(all.find("duplicate private endpoint [2001:2:0:1::100]:443 in VNet 'prod-vnet'"), std::string::npos)
        << all;
}

TEST(ParserIpv6, BareIpv6EndpointIsAmbiguousAndTheFixIsBracketed) {
    expect_one_error(with_vault("    private_endpoints:\n"
                                "      - { vnet: prod-vnet, address: \"2001:2:0:1::10:443\" }\n"),
                     14, 37,
                     "'2001:2:0:1::10:443' in private endpoint address is ambiguous (is 443 the port or part of "
                     "the address?); write [2001:2:0:1::10]:443 for port 443");
    auto at13 = [](const std::string& ep, const std::string& needle) {
        expect_one_error(std::string(kHeader) + "vaults:\n  - name: v1\n    endpoints: [\"" + ep + "\"]\n", 12, 17,
                         needle);
    };
    at13("2001:db8::10", "'2001:db8::10' in endpoints has no port; write [2001:db8::10]:PORT");
    at13("[2001:db8::10]", "has no port; write [2001:db8::10]:PORT");
    at13("[2001:DB8::10]:", "has no port; write [2001:db8::10]:PORT");
    at13("[2001:db8::10]:0", "port 0 in endpoints '[2001:db8::10]:0' is out of range");
    at13("[2001:db8::10]:https", "has no valid port");
    at13("[2001:db8::10:443", "has no ']' after its IPv6 address");
    at13("[192.0.2.1]:443", "brackets are for IPv6 addresses; write 192.0.2.1:443");
    at13("[fe80::1%eth0]:443", "'fe80::1%eth0' is not an IPv6 address");
    at13("[2001:db8::10]:443/sctp", "unknown protocol 'sctp'");
    auto rf = parse(std::string(kHeader) + "vaults:\n  - name: v1\n    endpoints: [\"[2001:db8::10]:53/udp\"]\n");
    EXPECT_EQ(rf.vaults.at(0).endpoints6.at(0).proto, Proto::udp);
    // Unquoted, YAML reads the brackets as a list (here a map of one): the fix is to quote it.
    expect_one_error(std::string(kHeader) + "vaults:\n  - name: v1\n    endpoints: [[2001:db8::10]:443]\n", 12, 17,
                     "quote an IPv6 endpoint, or YAML reads its brackets as a list: \"[2001:db8::10]:443\"");
    // metrics stays on IPv4 (the daemon's listener)
    expect_one_error("version: 1\nmetrics: \"[::1]:9469\"\n", 2, 10, "metrics listens on IPv4 only");
}

TEST(ParserIpv6, EndpointOfTwoVaultsAndUnknownVnet) {
    auto d = errors_of(with_vault("    private_endpoints:\n"
                                  "      - { vnet: prod-vnt, address: \"[2001:2:0:1::100]:443\" }\n"
                                  "  - name: v2\n"
                                  "    endpoints: [\"[2001:db8:0::10]:443\"]\n"));
    ASSERT_EQ(d.size(), 2u);
    EXPECT_EQ(d[0].pos.line, 14);
    EXPECT_EQ(d[0].pos.col, 17);
    EXPECT_NE(d[0].message.find("unknown VNet 'prod-vnt' in private endpoint; did you mean 'prod-vnet'?"),
              std::string::npos) << d[0].str();
    EXPECT_EQ(d[1].pos.line, 16);
    EXPECT_NE(d[1].message.find("endpoint [2001:db8::10]:443 is already served by vault 'v1' (at line 12, col 35)"),
              std::string::npos) << d[1].str();
}

TEST(ParserIpv6, SubnetLists) {
    expect_one_error("version: 1\nvnets:\n  - name: n\n    vni: 7\n    subnets:\n      a: []\n", 6, 10,
                     "subnet 'a' has no prefixes");
    expect_one_error("version: 1\nvnets:\n  - name: n\n    vni: 7\n    subnets:\n      a: [198.19.1.0/24, [x]]\n",
                     6, 26, "must be an address or prefix");
    auto rf = parse("version: 1\nvnets:\n  - name: n\n    vni: 7\n    subnets:\n"
                    "      a: [198.19.1.0/24, 198.19.2.0/24, \"2001:2::/64\", \"2001:2:0::/64\"]\n");
    const Subnet& s = rf.vnets.at(0).subnets.at(0);
    EXPECT_EQ(s.prefixes.size(), 2u);
    EXPECT_EQ(s.prefixes6.size(), 1u);  // the same prefix twice is one
}

TEST(IpRulesFileIpv6, MixedFamiliesWithPositions) {
    test::TempDir dir;
    const std::string file = dir.write("v1.rules", "# both families\n192.0.2.7\n2001:db8::/32\n\n"
                                                   "  2001:db8:1::/48   # a comment\n");
    auto rf = parse_rule_text(with_vault("    network_acls:\n      ip_rules_file: v1.rules\n"), "t.yaml",
                              dir.dir.string());
    const Vault& v = rf.vaults.at(0);
    ASSERT_EQ(v.ip_rules.size(), 1u);
    ASSERT_EQ(v.ip_rules6.size(), 2u);
    EXPECT_EQ(v.ip_rules6[1].prefix.str(), "2001:db8:1::/48");
    EXPECT_EQ(v.ip_rules6[1].pos.line, 5);
    EXPECT_EQ(v.ip_rules6[1].pos.col, 3);
    EXPECT_EQ(v.ip_rules6[1].pos.file, file);

    try {
        parse_ip_rules_text("192.0.2.0/24\n  2001:db8::1/32\n2001:db8::/33 2001:db9::/32\n2001:db8:::1\n", "--ip");
        FAIL() << "expected errors";
    } catch (const RuleFileError& e) {
        ASSERT_EQ(e.diagnostics().size(), 3u);
        EXPECT_EQ(e.diagnostics()[0].str(),
                  "--ip:2:3: error: 2001:db8::1/32 has host bits set; did you mean 2001:db8::/32?");
        EXPECT_NE(e.diagnostics()[1].str().find("--ip:3:15: error: a second value '2001:db9::/32'"),
                  std::string::npos) << e.diagnostics()[1].str();
        EXPECT_NE(e.diagnostics()[2].str().find("--ip:4:1: error: '2001:db8:::1' is not an IPv6 prefix"),
                  std::string::npos) << e.diagnostics()[2].str();
    }
    auto list = parse_ip_rules_text("2001:db8::5\n198.51.100.0/24\n", "--ip");
    ASSERT_EQ(list.v6.size(), 1u);
    EXPECT_EQ(list.v6[0].prefix.str(), "2001:db8::5/128");
    ASSERT_EQ(list.v4.size(), 1u);
}

// A model built in code goes through the same checks (issue 10): references,
// duplicates and owners, both families.
TEST(ValidateIpv6, ModelBuiltInCode) {
    RuleFile rf;
    Vnet n;
    n.name = "n";
    n.vni = 7;
    n.pos = {"code", 1, 1};
    n.subnets.push_back({"s", {}, {p6("2001:2::/64")}, {"code", 2, 1}});
    Vnet dup = n;
    dup.name = "m";  // same VNI as n
    dup.pos = {"code", 3, 1};
    rf.vnets = {n, dup};
    Vault a;
    a.name = "a";
    a.pos = {"code", 4, 1};
    a.endpoints6 = {{a6("2001:db8::10"), 443, Proto::tcp, {"code", 5, 1}},
                    {a6("2001:db8::10"), 443, Proto::tcp, {"code", 6, 1}}};
    a.private_endpoints6 = {{"n", 0, {a6("2001:2::100"), 443, Proto::tcp, {"code", 7, 1}}, {}}};
    a.vnet_rules = {{"n", "s", {"code", 8, 1}}, {"n", "x", {"code", 9, 1}}, {"nope", "s", {"code", 10, 1}}};
    a.ip_rules6 = {{p6("2001:db8::/32"), {"code", 11, 1}}, {p6("2001:db8::/32"), {"code", 12, 1}}};
    Vault b;
    b.name = "b";
    b.pos = {"code", 13, 1};
    b.endpoints6 = {{a6("2001:db8::10"), 443, Proto::tcp, {"code", 14, 1}}};
    rf.vaults = {a, b};
    Diagnostics d;
    validate(rf, d);
    EXPECT_EQ(rf.vaults[0].endpoints6.size(), 1u);
    EXPECT_EQ(rf.vaults[0].ip_rules6.size(), 1u);
    EXPECT_EQ(rf.vaults[0].private_endpoints6[0].vni, 7u);
    EXPECT_EQ(rf.vaults[0].vnet_rules[0].vni, 7u);
    EXPECT_EQ(rf.vaults[0].vnet_rules[0].prefixes6.at(0), p6("2001:2::/64"));
    EXPECT_EQ(d.warnings().size(), 2u);
    try {
        d.throw_if_errors();
        FAIL() << "expected errors";
    } catch (const RuleFileError& e) {
        std::string all;
        for (const auto& x : e.diagnostics()) all += x.str() + "\n";
        EXPECT_EQ(e.diagnostics().size(), 4u) << all;
        EXPECT_NE(all.find("code:3:1: error: duplicate VNI 7: VNet 'n'"), std::string::npos) << all;
        EXPECT_NE(all.find("code:9:1: error: VNet 'n' has no subnet 'x'; its subnets: s"), std::string::npos) << all;
        EXPECT_NE(all.find("code:10:1: error: unknown VNet 'nope' in virtual network rule 'nope/s'"),
                  std::string::npos) << all;
        EXPECT_NE(all.find("code:14:1: error: endpoint [2001:db8::10]:443 is already served by vault 'a'"),
                  std::string::npos) << all;
    }
}
