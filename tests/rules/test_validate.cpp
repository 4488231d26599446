// validate() over a model built in code, as an importer or a test builds one.
#include <gtest/gtest.h>

#include "rules/validate.hpp"

using namespace vaultwall::rules;

namespace {
Vault vault(const std::string& name, int line) {
    Vault v;
    v.name = name;
    v.pos = {"code", line, 1};
    return v;
}
}  // namespace

TEST(Validate, ModelBuiltInCodeIsCheckedAndMerged) {
    RuleFile rf;
    rf.gate = Gate{};
    Vault a = vault("fz-prod", 1);
    a.tenant_id = "3f1c9a52-7d0e-4b8a-9c11-5e2f0a6d4b10";
    a.upstream = "http://127.0.0.1:8200";
    a.endpoints.push_back({0xCB00710A, 443, Proto::tcp, {"code", 2, 1}});
    a.ip_rules = {{{0xC0000200, 24}, {"code", 3, 1}}, {{0xC0000200, 24}, {"code", 4, 1}}};
    Vault b = vault("FZ-PROD", 5);  // no tenant_id, no upstream, a's endpoint
    b.endpoints.push_back({0xCB00710A, 443, Proto::tcp, {"code", 6, 1}});
    rf.vaults = {a, b};
    Diagnostics d;
    validate(rf, d);
    EXPECT_EQ(rf.vaults[0].ip_rules.size(), 1u);
    ASSERT_EQ(d.warnings().size(), 1u);
    EXPECT_EQ(d.warnings()[0], "code:4:1: warning: duplicate ip rule 192.0.2.0/24 in vault 'fz-prod' "
                               "(first at line 3, col 1); merged");
    try {
        d.throw_if_errors();
        FAIL();
    } catch (const RuleFileError& e) {
        const auto& x = e.diagnostics();
        ASSERT_EQ(x.size(), 4u) << e.what();
        EXPECT_NE(x[0].message.find("duplicate vault name 'FZ-PROD' (first at line 1, col 1, spelled 'fz-prod')"),
                  std::string::npos);
        EXPECT_NE(x[1].message.find("endpoint 203.0.113.10:443 is already served by vault 'fz-prod'"),
                  std::string::npos);
        EXPECT_NE(x[2].message.find("missing required key 'tenant_id' in vault 'FZ-PROD'"), std::string::npos);
        EXPECT_NE(x[3].message.find("vault 'FZ-PROD' has no upstream"), std::string::npos);
    }
}
