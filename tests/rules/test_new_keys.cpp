// SPEC §7/§9 keys: network_acls.ip_rules_file, network_acls.enforcement,
// host.drop_events_per_second, drop_log; and loading through a FileSource.
#include <gtest/gtest.h>

#include <string>

#include "rules/parser.hpp"
#include "rules/source.hpp"
#include "temp_dir.hpp"

using namespace vaultwall::rules;
using vaultwall::rules::test::TempDir;

namespace {

std::vector<Diagnostic> errors_of_file(const std::string& path, const FileSource& src) {
    try {
        load_rule_file(path, src);
    } catch (const RuleFileError& e) {
        return e.diagnostics();
    }
    ADD_FAILURE() << "expected RuleFileError for " << path;
    return {};
}

std::string vault_with_acls(const std::string& acls) {
    return "version: 1\n"
           "vaults:\n"
           "  - name: v1\n"
           "    tenant_id: 3f1c9a52-7d0e-4b8a-9c11-5e2f0a6d4b10\n"
           "    endpoints: [203.0.113.10:443]\n"
           "    network_acls:\n" +
           acls;
}

}  // namespace

TEST(IpRulesFile, JoinsIpRulesRelativeToTheRuleFile) {
    TempDir t;
    t.write("lists/v1.txt",
            "# feed of 2026-12-01\n"
            "\n"
            "192.0.2.0/24\n"
            "   198.51.100.7   # a host, trailing comment\n"
            "\t203.0.113.0/25\r\n"
            "192.0.2.0/24\n");  // duplicate of line 3: merged with a warning
    auto path = t.write("vw.yaml", vault_with_acls("      ip_rules: [10.1.0.0/16, 198.51.100.7]\n"
                                                   "      ip_rules_file: lists/v1.txt\n"));
    auto rf = load_rule_file(path);
    const auto& v = rf.vaults.at(0);
    EXPECT_EQ(v.ip_rules_file, t.path("lists/v1.txt"));
    ASSERT_EQ(v.ip_rules.size(), 4u);
    EXPECT_EQ(v.ip_rules[0].prefix.str(), "10.1.0.0/16");
    EXPECT_EQ(v.ip_rules[1].prefix.str(), "198.51.100.7/32");
    EXPECT_EQ(v.ip_rules[2].prefix.str(), "192.0.2.0/24");
    EXPECT_EQ(v.ip_rules[2].pos.file, t.path("lists/v1.txt"));
    EXPECT_EQ(v.ip_rules[2].pos.line, 3);
    EXPECT_EQ(v.ip_rules[2].pos.col, 1);
    EXPECT_EQ(v.ip_rules[3].prefix.str(), "203.0.113.0/25");
    EXPECT_EQ(v.ip_rules[3].pos.line, 5);
    EXPECT_EQ(v.ip_rules[3].pos.col, 2);
    ASSERT_EQ(rf.warnings.size(), 2u);
    // 198.51.100.7 is in ip_rules (vw.yaml:7) and on line 4 of the file.
    EXPECT_NE(rf.warnings[0].find(t.path("lists/v1.txt") + ":4:4: warning: duplicate ip rule "
                                                          "198.51.100.7/32"),
              std::string::npos)
        << rf.warnings[0];
    EXPECT_NE(rf.warnings[1].find(":6:1: warning: duplicate ip rule 192.0.2.0/24"),
              std::string::npos)
        << rf.warnings[1];
    EXPECT_EQ(rf.files, (std::vector<std::string>{path, t.path("lists/v1.txt")}));
}

TEST(IpRulesFile, ErrorsNameTheListFileLineAndColumn) {
    TempDir t;
    auto list = t.write("v1.txt",
                        "192.0.2.0/24\n"
                        "  192.0.2.1/24\n"            // 2:3 host bits
                        "198.51.100.300\n"            // 3:1 not an address
                        "10.0.0.0/8 10.1.0.0/16\n"    // 4:12 second value
                        "10.2.0.0/16 # fine\n");
    auto path = t.write("vw.yaml", vault_with_acls("      ip_rules_file: v1.txt\n"));
    auto d = errors_of_file(path, filesystem_source());
    ASSERT_EQ(d.size(), 3u);
    EXPECT_EQ(d[0].str(), list + ":2:3: error: 192.0.2.1/24 has host bits set; did you mean "
                                 "192.0.2.0/24?");
    EXPECT_EQ(d[1].pos.line, 3);
    EXPECT_EQ(d[1].pos.col, 1);
    EXPECT_NE(d[1].message.find("'198.51.100.300' is not an IPv4 prefix"), std::string::npos);
    EXPECT_EQ(d[2].pos.line, 4);
    EXPECT_EQ(d[2].pos.col, 12);
    EXPECT_NE(d[2].message.find("a second value '10.1.0.0/16'"), std::string::npos);
}

TEST(IpRulesFile, MissingFileIsAnErrorAtTheKey) {
    TempDir t;
    auto path = t.write("vw.yaml", vault_with_acls("      ip_rules_file: nope.txt\n"));
    auto d = errors_of_file(path, filesystem_source());
    ASSERT_EQ(d.size(), 1u);
    EXPECT_EQ(d[0].pos.file, path);
    EXPECT_EQ(d[0].pos.line, 7);
    EXPECT_EQ(d[0].pos.col, 22);
    EXPECT_NE(d[0].message.find("cannot read ip_rules_file '" + t.path("nope.txt") +
                                "': no such file"),
              std::string::npos)
        << d[0].str();
}

TEST(IpRulesFile, ParsedAloneForRuleEdits) {
    auto rules = parse_ip_rules_text("# x\n192.0.2.7\n\n10.0.0.0/8\n", "edit");
    ASSERT_EQ(rules.v4.size(), 2u);
    EXPECT_EQ(rules.v4[0].prefix.str(), "192.0.2.7/32");
    EXPECT_EQ(rules.v4[1].pos.line, 4);
    try {
        parse_ip_rules_text("10.0.0.1/8\n", "--ip");
        FAIL();
    } catch (const RuleFileError& e) {
        EXPECT_EQ(e.diagnostics().at(0).str(),
                  "--ip:1:1: error: 10.0.0.1/8 has host bits set; did you mean 10.0.0.0/8?");
    }
}

TEST(NewKeys, EnforcementDefaultsToEnforce) {
    auto rf = parse_rule_text(vault_with_acls("      default_action: deny\n"), "t.yaml", "/");
    EXPECT_EQ(rf.vaults.at(0).enforcement, Enforcement::enforce);
    rf = parse_rule_text(vault_with_acls("      enforcement: audit\n"), "t.yaml", "/");
    EXPECT_EQ(rf.vaults.at(0).enforcement, Enforcement::audit);
    rf = parse_rule_text(vault_with_acls("      enforcement: Enforce\n"), "t.yaml", "/");
    EXPECT_EQ(rf.vaults.at(0).enforcement, Enforcement::enforce);
    try {
        parse_rule_text(vault_with_acls("      enforcement: audt\n"), "t.yaml", "/");
        FAIL();
    } catch (const RuleFileError& e) {
        EXPECT_EQ(e.diagnostics().at(0).str(),
                  "t.yaml:7:20: error: bad value 'audt' for enforcement; expected enforce or "
                  "audit (did you mean 'audit'?)");
    }
}

TEST(NewKeys, DropEventsPerSecondAndDropLog) {
    auto rf = parse_rule_text("version: 1\n", "t.yaml", "/etc/vw");
    EXPECT_EQ(rf.host.drop_events_per_second, 1000u);
    EXPECT_FALSE(rf.drop_log);
    rf = parse_rule_text("version: 1\nhost:\n  drop_events_per_second: 0\ndrop_log: log/drops.jsonl\n",
                         "t.yaml", "/etc/vw");
    EXPECT_EQ(rf.host.drop_events_per_second, 0u);
    EXPECT_EQ(rf.drop_log, "/etc/vw/log/drops.jsonl");
    rf = parse_rule_text("version: 1\nhost: {dropEventsPerSecond: 250}\n", "t.yaml", "/");
    EXPECT_EQ(rf.host.drop_events_per_second, 250u);
    for (const char* bad : {"-1", "many", "2000000"}) {
        try {
            parse_rule_text(std::string("version: 1\nhost:\n  drop_events_per_second: ") + bad + "\n",
                            "t.yaml", "/");
            ADD_FAILURE() << bad;
        } catch (const RuleFileError& e) {
            EXPECT_EQ(e.diagnostics().at(0).pos.line, 3);
            EXPECT_EQ(e.diagnostics().at(0).pos.col, 27);
            EXPECT_NE(e.diagnostics().at(0).message.find("use 0..1000000"), std::string::npos);
        }
    }
}

// The fleet's case: the rule set lives in memory; host-local files on disk.
TEST(Sources, RuleSetFromMemoryLayeredOverTheFilesystem) {
    TempDir t;
    t.write("ts.yaml", "trusted_services: []\n");  // host-local, on disk
    MemorySource etcd;
    etcd.add("/rulesets/prod/vw.yaml",
             vault_with_acls("      ip_rules_file: lists/v1.txt\n") +
                 "trusted_services: " + t.path("ts.yaml") + "\n");
    etcd.add("/rulesets/prod/lists/v1.txt", "192.0.2.0/24\n");
    FilesystemSource disk;
    LayeredSource layered({&etcd, &disk});
    auto rf = load_rule_file("/rulesets/prod/vw.yaml", layered);
    ASSERT_EQ(rf.vaults.at(0).ip_rules.size(), 1u);
    EXPECT_EQ(rf.vaults[0].ip_rules[0].pos.file, "/rulesets/prod/lists/v1.txt");
    EXPECT_EQ(rf.files, (std::vector<std::string>{"/rulesets/prod/vw.yaml", t.path("ts.yaml"),
                                                  "/rulesets/prod/lists/v1.txt"}));
    // Memory alone: the host-local catalog is missing, an error at its key.
    auto d = errors_of_file("/rulesets/prod/vw.yaml", etcd);
    ASSERT_EQ(d.size(), 1u);
    EXPECT_EQ(d[0].pos.line, 8);
    EXPECT_NE(d[0].message.find("cannot read trusted-services catalog"), std::string::npos);
}

TEST(Sources, MemorySourceKnowsOnlyItsFiles) {
    MemorySource m(std::map<std::string, std::string>{{"/a", "x"}});
    EXPECT_EQ(m.read("/a"), "x");
    EXPECT_FALSE(m.read("/b"));
    EXPECT_THROW(load_rule_file("/b", m), RuleFileError);
}

// Only the gate uses a vault's tenant_id: without a gate section it may be left out.
TEST(NewKeys, TenantIdIsRequiredOnlyWithAGate) {
    const std::string vault = "vaults:\n  - name: v1\n    endpoints: [203.0.113.10:443]\n"
                              "    upstream: http://127.0.0.1:8200\n";
    auto rf = parse_rule_text("version: 1\n" + vault, "t.yaml", "/");
    EXPECT_TRUE(rf.vaults.at(0).tenant_id.empty());
    try {
        parse_rule_text("version: 1\ngate: {tls_cert: a.pem, tls_key: a.key}\n" + vault, "t.yaml", "/");
        FAIL();
    } catch (const RuleFileError& e) {
        ASSERT_EQ(e.diagnostics().size(), 1u);
        EXPECT_EQ(e.diagnostics()[0].pos.line, 4);
        EXPECT_NE(e.diagnostics()[0].message.find("missing required key 'tenant_id' in vault 'v1'"),
                  std::string::npos);
    }
}
