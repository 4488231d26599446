// `vaultwallctl publish` and `vaultwallctl fleet status` (SPEC §8), run as a
// user runs them, against a real etcd on loopback.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "etcd_cluster.hpp"
#include "fleet/ruleset.hpp"
#include "support.hpp"

using namespace vaultwall::fleet;
using nlohmann::json;

namespace {

const std::string kCtl = std::string(VW_BIN_DIR) + "/vaultwallctl";

class PublishTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() { cluster_ = new vwtest::EtcdCluster({1, false, {}}); }
    static void TearDownTestSuite() {
        delete cluster_;
        cluster_ = nullptr;
    }
    void SetUp() override {
        dir_ = cluster_->dir() + "/" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
        ruleset_ = ::testing::UnitTest::GetInstance()->current_test_info()->name();
        EtcdOptions o;
        o.endpoints = split_endpoints(cluster_->endpoints());
        etcd_ = std::make_unique<EtcdClient>(o);
    }
    vwtest::Exec ctl(const std::string& args) { return vwtest::exec(kCtl + " " + args); }
    std::string etcd_flag() const { return " --etcd " + cluster_->endpoints() + " --ruleset " + ruleset_; }

    static vwtest::EtcdCluster* cluster_;
    std::string dir_, ruleset_;
    std::unique_ptr<EtcdClient> etcd_;
};
vwtest::EtcdCluster* PublishTest::cluster_ = nullptr;

}  // namespace

TEST_F(PublishTest, WritesTheRuleFileAndItsCatalogAsOneRevision) {
    std::string file = vwtest::make_rules_dir(dir_, {"192.0.2.0/24", "198.51.100.7"});
    auto r = ctl("publish " + file + etcd_flag() + " --json");
    ASSERT_EQ(r.rc, 0) << r.out;
    json j = json::parse(r.out);
    ASSERT_TRUE(j["ok"].get<bool>());
    std::int64_t rev = j["revision"].get<std::int64_t>();
    EXPECT_EQ(j["files"], json::array({"rules.yaml", "trusted-services.yaml"}));

    auto keys = etcd_->get_prefix(ruleset_prefix(ruleset_));
    ASSERT_EQ(keys.kvs.size(), 3u);  // manifest + two files
    std::map<std::string, KeyValue> m;
    for (const auto& kv : keys.kvs) {
        EXPECT_EQ(kv.mod_revision, rev) << kv.key << " was not written with the others";
        m[kv.key] = kv;
    }
    auto decoded = decode_revision(ruleset_, m);
    ASSERT_TRUE(decoded);
    EXPECT_EQ(decoded->revision, rev);
    EXPECT_EQ(decoded->bundle.rule_file, "rules.yaml");
    EXPECT_EQ(decoded->bundle.files.at("rules.yaml"), vwtest::read_text(file));
    EXPECT_EQ(decoded->bundle.files.at("trusted-services.yaml"), vwtest::read_text(dir_ + "/trusted-services.yaml"));

    // Plain output names the revision.
    auto again = ctl("publish " + file + etcd_flag());
    ASSERT_EQ(again.rc, 0) << again.out;
    EXPECT_NE(again.out.find("revision " + std::to_string(rev + 1)), std::string::npos) << again.out;
}

TEST_F(PublishTest, IpRulesFilesBelongToTheRuleSetHostLocalFilesDoNot) {
    std::string file = vwtest::make_rules_dir(dir_, {"192.0.2.0/24"}, "      ip_rules_file: feeds/prod.txt\n");
    vwtest::write_file(dir_ + "/feeds/prod.txt", "# machine-managed\n198.51.100.0/24\n203.0.113.7\n");
    // A gate section names host-local files: they are not published.
    std::string text = vwtest::read_text(file) +
                       "gate:\n  tls_cert: certs/vault.pem\n  tls_key: certs/vault.key\n  audit_log: /var/log/x.jsonl\n";
    vwtest::write_file(file, text);
    auto r = ctl("publish " + file + etcd_flag() + " --json");
    ASSERT_EQ(r.rc, 0) << r.out;
    json j = json::parse(r.out);
    EXPECT_EQ(j["files"], json::array({"feeds/prod.txt", "rules.yaml", "trusted-services.yaml"}));
    auto kv = etcd_->get(ruleset_prefix(ruleset_) + "files/feeds/prod.txt");
    ASSERT_TRUE(kv);
    EXPECT_EQ(kv->value, vwtest::read_text(dir_ + "/feeds/prod.txt"));
    EXPECT_EQ(kv->mod_revision, j["revision"].get<std::int64_t>());

    // The next revision without the feed drops its key in the same Txn.
    vwtest::make_rules_dir(dir_, {"192.0.2.0/24"});
    auto r2 = ctl("publish " + file + etcd_flag() + " --json");
    ASSERT_EQ(r2.rc, 0) << r2.out;
    EXPECT_FALSE(etcd_->get(ruleset_prefix(ruleset_) + "files/feeds/prod.txt"));
    // An error in the feed names it and nothing is written.
    vwtest::make_rules_dir(dir_, {"192.0.2.0/24"}, "      ip_rules_file: feeds/prod.txt\n");
    vwtest::write_file(dir_ + "/feeds/prod.txt", "198.51.100.0/24\n300.1.2.3\n");
    std::int64_t before = etcd_->get(manifest_key(ruleset_))->mod_revision;
    auto bad = ctl("publish " + file + etcd_flag());
    EXPECT_EQ(bad.rc, 1) << bad.out;
    EXPECT_NE(bad.out.find("prod.txt:2:"), std::string::npos) << bad.out;
    EXPECT_EQ(etcd_->get(manifest_key(ruleset_))->mod_revision, before);
}

TEST_F(PublishTest, AFileWithErrorsIsNotWritten) {
    std::string file = vwtest::make_rules_dir(dir_, {"192.0.2.1/24"});  // host bits set
    auto r = ctl("publish " + file + etcd_flag() + " --json");
    EXPECT_EQ(r.rc, 1) << r.out;
    json j = json::parse(r.out);
    EXPECT_FALSE(j["ok"].get<bool>());
    ASSERT_FALSE(j["errors"].empty());
    EXPECT_NE(j["errors"][0].get<std::string>().find("rules.yaml:"), std::string::npos) << r.out;
    EXPECT_NE(j["errors"][0].get<std::string>().find("192.0.2.0/24"), std::string::npos) << r.out;
    EXPECT_TRUE(etcd_->get_prefix(ruleset_prefix(ruleset_)).kvs.empty());
}

TEST_F(PublishTest, IfRevisionIsACompareAndSwap) {
    std::string file = vwtest::make_rules_dir(dir_, {"192.0.2.0/24"});
    auto first = ctl("publish " + file + etcd_flag() + " --if-revision 0 --json");
    ASSERT_EQ(first.rc, 0) << first.out;
    std::int64_t rev = json::parse(first.out)["revision"].get<std::int64_t>();

    // Someone else published meanwhile: a writer that saw "nothing yet" loses.
    auto lost = ctl("publish " + file + etcd_flag() + " --if-revision 0 --json");
    EXPECT_EQ(lost.rc, 1) << lost.out;
    EXPECT_EQ(json::parse(lost.out)["revision"].get<std::int64_t>(), rev);
    auto stale = ctl("publish " + file + etcd_flag() + " --if-revision " + std::to_string(rev - 1));
    EXPECT_EQ(stale.rc, 1);
    EXPECT_NE(stale.out.find("is at revision " + std::to_string(rev)), std::string::npos) << stale.out;
    EXPECT_EQ(etcd_->get(manifest_key(ruleset_))->mod_revision, rev) << "a failed CAS wrote something";

    vwtest::make_rules_dir(dir_, {"192.0.2.0/24", "198.51.100.0/24"});
    auto won = ctl("publish " + file + etcd_flag() + " --if-revision " + std::to_string(rev) + " --json");
    ASSERT_EQ(won.rc, 0) << won.out;
    EXPECT_GT(json::parse(won.out)["revision"].get<std::int64_t>(), rev);
}

TEST_F(PublishTest, FleetStatusNamesHostsBehindOrFailing) {
    std::string file = vwtest::make_rules_dir(dir_, {"192.0.2.0/24"});
    auto none = ctl("fleet status" + etcd_flag());
    EXPECT_EQ(none.rc, 0) << none.out;
    EXPECT_NE(none.out.find("0 live hosts"), std::string::npos) << none.out;

    std::int64_t r1 = json::parse(ctl("publish " + file + etcd_flag() + " --json").out)["revision"];
    std::int64_t r2 = json::parse(ctl("publish " + file + etcd_flag() + " --json").out)["revision"];
    std::int64_t lease = etcd_->lease_grant(30);
    auto host = [&](const std::string& id, std::int64_t rev, std::int64_t failed, const std::string& err) {
        HostRecord h;
        h.host_id = id;
        h.revision = rev;
        h.generation = 7;
        h.failed_revision = failed;
        h.error = err;
        etcd_->put(host_key(ruleset_, id), encode_host(h), lease);
    };
    host("vault-a", r2, 0, "");
    host("vault-b", r2, 0, "");
    auto ok = ctl("fleet status" + etcd_flag() + " --json");
    EXPECT_EQ(ok.rc, 0) << ok.out;
    json j = json::parse(ok.out);
    EXPECT_EQ(j["revision"].get<std::int64_t>(), r2);
    EXPECT_EQ(j["hosts"].size(), 2u);
    EXPECT_EQ(j["hosts"][0]["state"], "current");

    host("vault-b", r1, 0, "");
    auto behind = ctl("fleet status" + etcd_flag());
    EXPECT_EQ(behind.rc, 1) << behind.out;
    EXPECT_NE(behind.out.find("vault-b"), std::string::npos);
    EXPECT_NE(behind.out.find("behind"), std::string::npos) << behind.out;

    host("vault-b", r1, r2, "fleet-vault: cannot read /etc/vaultwall/feed.txt");
    auto failed = ctl("fleet status" + etcd_flag() + " --json");
    EXPECT_EQ(failed.rc, 1) << failed.out;
    j = json::parse(failed.out);
    EXPECT_FALSE(j["ok"].get<bool>());
    EXPECT_EQ(j["hosts"][1]["host"], "vault-b");
    EXPECT_EQ(j["hosts"][1]["state"], "failed");
    EXPECT_EQ(j["hosts"][1]["failed_revision"].get<std::int64_t>(), r2);
    EXPECT_NE(j["hosts"][1]["error"].get<std::string>().find("feed.txt"), std::string::npos);

    // A host whose lease is gone is not live any more.
    etcd_->lease_revoke(lease);
    EXPECT_EQ(ctl("fleet status" + etcd_flag()).rc, 0);
}

TEST_F(PublishTest, UsageAndUnreachableEtcdAreOneLineErrors) {
    std::string file = vwtest::make_rules_dir(dir_, {"192.0.2.0/24"});
    auto no_ruleset = ctl("publish " + file + " --etcd " + cluster_->endpoints());
    EXPECT_EQ(no_ruleset.rc, 2) << no_ruleset.out;
    auto bad_name = ctl("publish " + file + " --etcd " + cluster_->endpoints() + " --ruleset ../x");
    EXPECT_EQ(bad_name.rc, 2) << bad_name.out;
    EXPECT_NE(bad_name.out.find("rule set '../x'"), std::string::npos) << bad_name.out;
    auto down = ctl("fleet status --etcd http://127.0.0.1:9 --ruleset x");
    EXPECT_EQ(down.rc, 3) << down.out;
    EXPECT_EQ(std::count(down.out.begin(), down.out.end(), '\n'), 1) << down.out;
    auto help = ctl("publish --help");
    EXPECT_EQ(help.rc, 0);
    EXPECT_NE(help.out.find("--if-revision"), std::string::npos);
}
