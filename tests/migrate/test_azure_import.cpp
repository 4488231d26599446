// vaultwallctl import azure (SPEC §10): realistic `az keyvault show` output,
// with Azure's quirks (bare IPs stored as /32, mixed-case enums and subnet ids,
// ignoreMissingVnetServiceEndpoint, null networkAcls, an IPv6 range, compound
// identities), turned into rule-file vaults that the rule-file parser accepts
// and that mean what the Azure vault meant.
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "migrate/azure_import.hpp"
#include "rules/parser.hpp"

namespace {

namespace fs = std::filesystem;
using namespace vaultwall;
using migrate::AzureImportOptions;
using migrate::import_azure;
using migrate::ImportError;
using json = nlohmann::json;

const std::string kSrc = VW_SOURCE_DIR;
const std::string kRulesDir = kSrc + "/rules";  // trusted-services.yaml resolves there

std::string read(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}
std::string doc(const std::string& name) { return read(kSrc + "/tests/migrate/data/" + name); }

// A site's rule file: the VNets the Azure subnets live in, with their VNIs.
const std::string kSite = R"(version: 1
host: { vteps: [198.18.0.0/24] }
trusted_services: trusted-services.yaml
vnets:
  - name: prod-vnet
    vni: 5001
    subnets: { app: 198.19.1.0/24, data: 198.19.2.0/24 }
vaults:
  - name: contoso-cmk
    tenant_id: 3f1c9a52-7d0e-4b8a-9c11-5e2f0a6d4b10
    endpoints: [203.0.113.20:443]
)";

AzureImportOptions into(const std::string& text) {
    AzureImportOptions o;
    o.into_text = text;
    o.into_path = kRulesDir + "/site.yaml";
    return o;
}

rules::RuleFile parse(const std::string& yaml) { return rules::parse_rule_text(yaml, "out.yaml", kRulesDir); }

const rules::Vault& vault(const rules::RuleFile& rf, const std::string& name) {
    auto it = std::find_if(rf.vaults.begin(), rf.vaults.end(), [&](const auto& v) { return v.name == name; });
    if (it == rf.vaults.end()) throw std::runtime_error("no vault " + name);
    return *it;
}

bool warned(const migrate::AzureImport& r, const std::string& needle) {
    return std::any_of(r.warnings.begin(), r.warnings.end(),
                       [&](const std::string& w) { return w.find(needle) != std::string::npos; });
}

std::vector<std::string> prefixes(const rules::Vault& v) {
    std::vector<std::string> out;
    for (const auto& r : v.ip_rules) out.push_back(r.prefix.str());
    return out;
}

TEST(AzureImport, NetworkRulesIntoASiteFileMeanWhatAzureMeant) {
    auto o = into(kSite);
    o.endpoints = {"203.0.113.10:443"};
    auto r = import_azure(doc("contoso-prod.json"), "contoso-prod.json", o);
    auto rf = parse(r.yaml);
    ASSERT_EQ(rf.vaults.size(), 2u);  // the site's vault is still there
    EXPECT_EQ(rf.vaults[0].name, "contoso-cmk");
    const auto& v = vault(rf, "contoso-prod");
    EXPECT_EQ(v.tenant_id, "3f1c9a52-7d0e-4b8a-9c11-5e2f0a6d4b10");
    EXPECT_EQ(v.subscription_id, "0b1f6471-1bf0-4dda-aec3-cb9272f09590");
    EXPECT_EQ(v.location, "westeurope");
    EXPECT_TRUE(v.public_network_access);
    EXPECT_EQ(v.default_action, rules::DefaultAction::deny);  // "Deny"
    EXPECT_EQ(v.bypass, rules::Bypass::azure_services);       // "AzureServices"
    // "198.51.100.7/32" (Azure's spelling of one address) and a bare "203.0.113.5".
    EXPECT_EQ(prefixes(v), (std::vector<std::string>{"192.0.2.0/24", "198.51.100.7/32", "203.0.113.5/32"}));
    // The lower-cased subnet id and the mixed-case one both find prod-vnet's subnets.
    ASSERT_EQ(v.vnet_rules.size(), 2u);
    EXPECT_EQ(v.vnet_rules[0].vni, 5001u);
    EXPECT_EQ(v.vnet_rules[0].prefixes.at(0).str(), "198.19.1.0/24");
    EXPECT_EQ(v.vnet_rules[1].subnet, "data");
    EXPECT_EQ(v.vnet_rules[1].prefixes.at(0).str(), "198.19.2.0/24");
    ASSERT_EQ(v.endpoints.size(), 1u);
    EXPECT_EQ(v.endpoints[0].port, 443);

    // What could not be mapped is named.
    EXPECT_TRUE(warned(r, "IPv6 ip rule 2001:db8::/48"));
    EXPECT_TRUE(warned(r, "virtualNetworks/legacy-vnet/subnets/default left out"));
    EXPECT_TRUE(warned(r, "no `vnets` entry 'legacy-vnet'"));
    EXPECT_FALSE(warned(r, "prod-vnet/subnets/app"));
    EXPECT_EQ(r.vaults, std::vector<std::string>{"contoso-prod"});
}

TEST(AzureImport, AccessPoliciesKeepTheirPermissionsInKeyVaultSpelling) {
    auto r = import_azure(doc("contoso-prod.json"), "contoso-prod.json", into(kSite));
    auto rf = parse(r.yaml);
    const auto& v = vault(rf, "contoso-prod");
    EXPECT_EQ(v.authorization, rules::Authorization::access_policies);
    ASSERT_EQ(v.access_policies.size(), 1u);
    const auto& p = v.access_policies[0];
    EXPECT_EQ(p.object_id, "6b0c8d8e-0000-4000-8000-000000000001");  // Azure printed it upper-case
    EXPECT_EQ(p.permissions.at("keys"), (std::set<std::string>{"get", "list", "wrapKey", "unwrapKey"}));
    EXPECT_EQ(p.permissions.at("secrets"), (std::set<std::string>{"get", "list", "set"}));
    // The compound identity (objectId + applicationId) would grant the user
    // alone: left out, and said so.
    EXPECT_TRUE(warned(r, "6b0c8d8e-0000-4000-8000-000000000009 with applicationId"));
}

TEST(AzureImport, WithoutIntoVnetRulesAreNamedNotGuessed) {
    auto r = import_azure(doc("contoso-prod.json"), "contoso-prod.json", {});
    auto rf = parse(r.yaml);
    const auto& v = vault(rf, "contoso-prod");
    EXPECT_TRUE(v.vnet_rules.empty());
    EXPECT_EQ(v.ip_rules.size(), 3u);
    EXPECT_TRUE(warned(r, "virtualnetworks/prod-vnet/subnets/app left out: no --into rule file"));
    EXPECT_TRUE(warned(r, "Azure does not say where this host serves the vault"));
}

TEST(AzureImport, RbacVaultWithPublicAccessDisabled) {
    auto r = import_azure(doc("contoso-rbac.json"), "contoso-rbac.json", into(kSite));
    auto rf = parse(r.yaml);
    const auto& v = vault(rf, "contoso-rbac");
    EXPECT_FALSE(v.public_network_access);                    // "Disabled"
    EXPECT_EQ(v.default_action, rules::DefaultAction::deny);  // "deny"
    EXPECT_EQ(v.bypass, rules::Bypass::none);                 // "None"
    EXPECT_EQ(v.authorization, rules::Authorization::rbac);
    EXPECT_EQ(v.tenant_id, "3f1c9a52-7d0e-4b8a-9c11-5e2f0a6d4b10");  // upper-case in the document
    EXPECT_TRUE(warned(r, "role assignments are not part of `az keyvault show`"));
    EXPECT_TRUE(warned(r, "private endpoint connection"));
}

TEST(AzureImport, NullNetworkAclsAdmitEveryNetworkAsAzureDoes) {
    auto r = import_azure(doc("contoso-open.json"), "contoso-open.json", {});
    auto rf = parse(r.yaml);
    const auto& v = vault(rf, "contoso-open");
    EXPECT_EQ(v.default_action, rules::DefaultAction::allow);
    EXPECT_TRUE(v.public_network_access);
    EXPECT_EQ(v.authorization, rules::Authorization::access_policies);  // enableRbacAuthorization: null
}

TEST(AzureImport, OddValuesAreNormalisedFailClosedAndNamed) {
    json j = json::parse(doc("contoso-prod.json"));
    j["properties"]["publicNetworkAccess"] = "SecuredByPerimeter";
    j["properties"]["networkAcls"]["ipRules"] = json::array({{{"value", "192.0.2.1/24"}}, {{"value", "192.0.2.0/24"}},
                                                             {{"value", "not-an-ip"}}});
    j["properties"]["networkAcls"]["bypass"] = "AzureServices, Logging";
    auto r = import_azure(j.dump(), "x.json", {});
    auto rf = parse(r.yaml);
    const auto& v = vault(rf, "contoso-prod");
    EXPECT_FALSE(v.public_network_access);
    EXPECT_TRUE(warned(r, "publicNetworkAccess 'SecuredByPerimeter'"));
    EXPECT_EQ(prefixes(v), std::vector<std::string>{"192.0.2.0/24"});
    EXPECT_TRUE(warned(r, "192.0.2.1/24 has host bits set; imported as the network 192.0.2.0/24"));
    EXPECT_TRUE(warned(r, "repeats 192.0.2.0/24; merged"));
    EXPECT_TRUE(warned(r, "'not-an-ip' is not an IPv4 address"));
    EXPECT_EQ(v.bypass, rules::Bypass::azure_services);
    EXPECT_TRUE(warned(r, "bypass flag 'logging'"));
}

TEST(AzureImport, ReimportReplacesTheVaultAndKeepsWhatAzureDoesNotKnow) {
    auto o = into(kSite);
    o.endpoints = {"203.0.113.10:443"};
    o.upstream = "http://127.0.0.1:8200";
    auto first = import_azure(doc("contoso-prod.json"), "contoso-prod.json", o);
    // Azure's rules change; the operator imports again, without --endpoint.
    json j = json::parse(doc("contoso-prod.json"));
    j["properties"]["networkAcls"]["ipRules"] = json::array({{{"value", "198.51.100.0/24"}}});
    auto again = import_azure(j.dump(), "contoso-prod.json", into(first.yaml));
    auto rf = parse(again.yaml);
    ASSERT_EQ(rf.vaults.size(), 2u);
    const auto& v = vault(rf, "contoso-prod");
    EXPECT_EQ(prefixes(v), std::vector<std::string>{"198.51.100.0/24"});
    ASSERT_EQ(v.endpoints.size(), 1u);
    EXPECT_EQ(v.upstream, "http://127.0.0.1:8200");
    EXPECT_TRUE(warned(again, "replaced the one in"));
}

TEST(AzureImport, ArraysImportEveryVault) {
    json arr = json::array({json::parse(doc("contoso-prod.json")), json::parse(doc("contoso-open.json"))});
    auto r = import_azure(arr.dump(), "all.json", into(kSite));
    EXPECT_EQ(r.vaults, (std::vector<std::string>{"contoso-prod", "contoso-open"}));
    EXPECT_EQ(parse(r.yaml).vaults.size(), 3u);
}

TEST(AzureImport, BadInputIsRefusedWithTheFix) {
    auto msg = [](auto&& f) {
        try {
            f();
        } catch (const ImportError& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    EXPECT_NE(msg([] { import_azure("{not json", "x.json", {}); }).find("x.json: not JSON"), std::string::npos);
    EXPECT_NE(msg([] { import_azure(R"({"properties":{}})", "x.json", {}); }).find("no \"name\""), std::string::npos);
    EXPECT_NE(msg([] { import_azure(R"({"name":"v1","properties":{}})", "x.json", {}); }).find("tenantId"),
              std::string::npos);
    // A site file with a gate needs the vault's upstream.
    std::string gated = kSite + "gate: { tls_cert: c.pem, tls_key: c.key }\n";
    gated.replace(gated.find("    endpoints: [203.0.113.20:443]\n"), 0, "    upstream: http://127.0.0.1:8200\n");
    EXPECT_NE(msg([&] { import_azure(doc("contoso-prod.json"), "p.json", into(gated)); }).find("--upstream"),
              std::string::npos);
    auto o = into(gated);
    o.upstream = "http://127.0.0.1:8201";
    auto rf = parse(import_azure(doc("contoso-prod.json"), "p.json", o).yaml);
    EXPECT_EQ(vault(rf, "contoso-prod").upstream, "http://127.0.0.1:8201");
    // An --into file with errors is refused, its diagnostics shown.
    std::string broken = kSite + "    network_acls: { ip_rules: [192.0.2.1/24] }\n";
    auto m = msg([&] { import_azure(doc("contoso-prod.json"), "p.json", into(broken)); });
    EXPECT_NE(m.find("does not pass check"), std::string::npos) << m;
    EXPECT_NE(m.find("192.0.2.0/24"), std::string::npos) << m;
}

// The CLI: warnings on stderr, the file written with -o, relative paths of
// the --into file still naming the same files from the output's directory.
TEST(AzureImportCli, WritesACheckedFileAndWarnsOnStderr) {
    fs::path dir = fs::temp_directory_path() / ("vw-import-" + std::to_string(getpid()));
    fs::create_directories(dir / "out");
    {
        std::ofstream(dir / "site.yaml") << kSite;
    }
    fs::copy_file(kRulesDir + "/trusted-services.yaml", dir / "trusted-services.yaml");
    std::string cmd = std::string(VW_CTL) + " import azure " + kSrc + "/tests/migrate/data/contoso-prod.json --into " +
                      (dir / "site.yaml").string() + " --endpoint 203.0.113.10:443 -o " +
                      (dir / "out/rules.yaml").string() + " 2>" + (dir / "stderr").string();
    int rc = std::system(cmd.c_str());
    ASSERT_EQ(WEXITSTATUS(rc), 0) << read((dir / "stderr").string());
    std::string err = read((dir / "stderr").string());
    EXPECT_NE(err.find("warning: vault 'contoso-prod': IPv6 ip rule 2001:db8::/48"), std::string::npos) << err;
    auto rf = rules::load_rule_file((dir / "out/rules.yaml").string());
    EXPECT_EQ(vault(rf, "contoso-prod").vnet_rules.size(), 2u);
    EXPECT_EQ(rf.trusted_services_file, (dir / "trusted-services.yaml").string());
    // SPEC §10: the output passes `check`.
    rc = std::system((std::string(VW_CTL) + " check " + (dir / "out/rules.yaml").string() + " >/dev/null").c_str());
    EXPECT_EQ(WEXITSTATUS(rc), 0);

    // Bad usage: one line, non-zero.
    rc = std::system((std::string(VW_CTL) + " import azure 2>/dev/null").c_str());
    EXPECT_NE(WEXITSTATUS(rc), 0);
    rc = std::system((std::string(VW_CTL) + " import azure /nonexistent.json 2>" + (dir / "stderr").string()).c_str());
    EXPECT_EQ(WEXITSTATUS(rc), 1);
    EXPECT_NE(read((dir / "stderr").string()).find("cannot read /nonexistent.json"), std::string::npos);
    fs::remove_all(dir);
}

}  // namespace
