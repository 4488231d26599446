// vaultwallctl rule add|remove and diff (SPEC §7) against a real vaultwalld:
// an edit is a new generation enforced on real traffic, persisted in the
// vault's ip_rules_file, leaves other rules' hit counts alone, and a SIGHUP
// or a restart afterwards enforces exactly the same rules.
#include "lab.hpp"

using namespace vwtest;

namespace {

bool contains(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

class RuleEdit : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_EQ(lab.loader("attach --dev vr0").rc, 0);
        list = lab.write_rules("alpha.rules", "# alpha's machine-managed list\n192.0.2.0/24\n198.51.100.7  # a host\n");
        std::string text = base_rules();
        const std::string inline_rules = "      ip_rules: [192.0.2.0/24]\n";
        text.replace(text.find(inline_rules), inline_rules.size(), "      ip_rules_file: alpha.rules\n");
        rules = lab.write_rules("rules.yaml", text);
        lab.start_daemon(rules);
    }
    std::uint64_t generation() { return lab.request({{"cmd", "status"}})["generation"].get<std::uint64_t>(); }
    // alpha's rules as vaultwallctl shows them: prefix -> hits.
    std::map<std::string, std::uint64_t> alpha_rules() {
        std::map<std::string, std::uint64_t> out;
        const Json answer = lab.request({{"cmd", "rules"}, {"vault", "alpha"}});
        for (const auto& r : answer["rules"])
            if (r["kind"] == "ip_rule") out[r["prefix"].get<std::string>()] = r["hits"].get<std::uint64_t>();
        return out;
    }
    // Sends a SYN from `src` to alpha and says whether it passed (ip_rule).
    bool passes(const char* src) {
        const auto before = lab.counters().get(VW_PASS_IP_RULE, "alpha").packets;
        send_frame(tx, vaultwall::daemon::explain_frame(ip(src), ip("203.0.113.10"), 443, true));
        std::this_thread::sleep_for(std::chrono::milliseconds(80));
        return lab.counters().get(VW_PASS_IP_RULE, "alpha").packets == before + 1;
    }
    Lab lab;
    std::string rules, list;
    int tx = -1;
};

}  // namespace

TEST_F(RuleEdit, AddAndRemoveAreEnforcedPersistedAndSurviveSighupAndRestart) {
    tx = lab.sender();
    ASSERT_EQ(generation(), 1u);
    EXPECT_TRUE(passes("192.0.2.5"));
    EXPECT_FALSE(passes("198.51.100.9"));
    ASSERT_EQ(alpha_rules()["192.0.2.0/24"], 1u);

    auto add = lab.ctl("rule add --vault alpha --ip 198.51.100.9 --ip 203.0.113.64/26 --json");
    ASSERT_EQ(add.rc, 0) << add.out;
    auto a = Json::parse(add.out);
    EXPECT_EQ(a["generation"], 2);
    EXPECT_EQ(a["added"], Json({"198.51.100.9/32", "203.0.113.64/26"}));
    EXPECT_EQ(generation(), 2u);
    EXPECT_TRUE(passes("198.51.100.9"));
    const std::string after_add = Lab::slurp(list);
    EXPECT_TRUE(contains(after_add, "# alpha's machine-managed list\n192.0.2.0/24\n198.51.100.7  # a host\n")) << after_add;
    EXPECT_TRUE(contains(after_add, "198.51.100.9/32\n")) << after_add;
    EXPECT_FALSE(fs::exists(list + ".vaultwall-new"));
    // explain sees the edit: the kernel and the reference model (rebuilt
    // after an edit) both pass the added address by its rule.
    auto ex = lab.request({{"cmd", "explain"},
                           {"frames", {vaultwall::daemon::to_hex(vaultwall::daemon::explain_frame(
                                          ip("203.0.113.70"), ip("203.0.113.10"), 443, true))}}});
    ASSERT_EQ(ex["ok"], true) << ex.dump();
    EXPECT_EQ(ex["results"][0]["agree"], true) << ex.dump();
    EXPECT_EQ(ex["results"][0]["verdict"], "pass") << ex.dump();
    EXPECT_EQ(ex["results"][0]["reason"], "ip_rule") << ex.dump();
    // The rule that stayed kept its hit count.
    EXPECT_EQ(alpha_rules()["192.0.2.0/24"], 1u);
    EXPECT_EQ(alpha_rules()["198.51.100.9/32"], 1u);

    auto rm = lab.ctl("rule remove --vault alpha --ip 198.51.100.7");
    ASSERT_EQ(rm.rc, 0) << rm.out;
    EXPECT_TRUE(contains(rm.out, "generation 3")) << rm.out;
    EXPECT_FALSE(contains(Lab::slurp(list), "198.51.100.7")) << Lab::slurp(list);
    EXPECT_TRUE(contains(Lab::slurp(list), "# alpha's machine-managed list\n")) << "comments stay";
    EXPECT_FALSE(passes("198.51.100.7"));
    const auto edited = alpha_rules();

    // SIGHUP: the file says exactly what is enforced, so nothing changes but the generation.
    ::kill(lab.daemon_pid, SIGHUP);
    for (int i = 0; i < 100 && generation() != 4; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ASSERT_EQ(generation(), 4u);
    EXPECT_EQ(lab.request({{"cmd", "status"}})["last_reload"]["ok"], true);
    EXPECT_EQ(alpha_rules(), edited);
    auto again = lab.request({{"cmd", "reload"}});
    ASSERT_EQ(again["ok"], true) << again.dump();
    EXPECT_TRUE(again["diff"].empty()) << again.dump();

    // Restart: the same rules, the same counts.
    lab.stop_daemon();
    lab.start_daemon(rules);
    EXPECT_EQ(alpha_rules(), edited);
    EXPECT_TRUE(passes("198.51.100.9"));
}

TEST_F(RuleEdit, RefusalsChangeNothingAndSayTheFix) {
    const std::string before = Lab::slurp(list);
    auto bad = lab.ctl("rule add --vault alpha --ip 300.1.1.1 --ip 192.0.2.1/24");
    EXPECT_EQ(bad.rc, 1) << bad.out;
    EXPECT_TRUE(contains(bad.out, "--ip:1:")) << bad.out;
    auto nofile = lab.ctl("rule add --vault open --ip 198.51.100.1");
    EXPECT_EQ(nofile.rc, 1);
    EXPECT_TRUE(contains(nofile.out, "has no ip_rules_file") && contains(nofile.out, "ip_rules_file: open.rules"))
        << nofile.out;
    auto novault = lab.ctl("rule add --vault nosuch --ip 198.51.100.1 --json");
    EXPECT_EQ(novault.rc, 1);
    EXPECT_EQ(Json::parse(novault.out)["ok"], false);
    auto usage = lab.ctl("rule add --vault alpha");
    EXPECT_EQ(usage.rc, 2) << usage.out;
    auto same = lab.ctl("rule add --vault alpha --ip 192.0.2.0/24");
    EXPECT_EQ(same.rc, 0) << same.out;
    EXPECT_TRUE(contains(same.out, "nothing to change")) << same.out;
    EXPECT_EQ(generation(), 1u);
    EXPECT_EQ(Lab::slurp(list), before);
}

TEST_F(RuleEdit, DiffSaysWhatAReloadWouldChangeAndChangesNothing) {
    auto same = lab.ctl("diff " + rules);
    EXPECT_EQ(same.rc, 0) << same.out;
    EXPECT_TRUE(contains(same.out, "no changes")) << same.out;

    lab.write_rules("other.rules", "192.0.2.0/24\n198.51.100.7\n203.0.113.200\n");
    std::string text = Lab::slurp(rules);
    text.replace(text.find("ip_rules_file: alpha.rules"), 26, "ip_rules_file: other.rules");
    text.replace(text.find("default_action: allow"), 21, "default_action: deny");
    auto other = lab.write_rules("other.yaml", text);
    auto d = lab.ctl("diff " + other + " --json");
    ASSERT_EQ(d.rc, 0) << d.out;
    auto j = Json::parse(d.out);
    EXPECT_EQ(j["changes"], true);
    std::map<std::string, Json> by;
    for (const auto& v : j["vaults"]) by[v["vault"]] = v;
    ASSERT_TRUE(by.count("alpha")) << d.out;
    EXPECT_EQ(by["alpha"]["rules_added"], 1);
    EXPECT_EQ(by["alpha"]["added"], Json({"203.0.113.200/32"}));
    ASSERT_TRUE(by.count("open")) << d.out;
    EXPECT_EQ(by["open"]["settings"], Json({"default_action"}));
    EXPECT_EQ(by.size(), 2u) << d.out;
    EXPECT_EQ(generation(), 1u);
    EXPECT_EQ(lab.request({{"cmd", "status"}})["config"], rules);
}

// IPv6 prefixes are edited like IPv4 ones (SPEC §11): validated with the same
// diagnostics (RFC 5952 form), persisted in the same file, listed by diff.
TEST_F(RuleEdit, Ipv6PrefixesAreEditedPersistedAndDiffed) {
    tx = lab.sender();
    auto bad = lab.ctl("rule add --vault alpha --ip 2001:db8::1/32 --json");
    EXPECT_EQ(bad.rc, 1) << bad.out;
    EXPECT_TRUE(contains(bad.out, "--ip:1:1: error: 2001:db8::1/32 has host bits set; did you mean 2001:db8::/32?"))
        << bad.out;
    EXPECT_EQ(generation(), 1u);

    auto add = lab.ctl("rule add --vault alpha --ip 2001:DB8:5:0::/64 --ip 198.51.100.9 --json");
    ASSERT_EQ(add.rc, 0) << add.out;
    auto a = Json::parse(add.out);
    EXPECT_EQ(a["added"], Json({"198.51.100.9/32", "2001:db8:5::/64"}));
    EXPECT_EQ(generation(), 2u);
    EXPECT_TRUE(passes("198.51.100.9"));  // the IPv4 half is enforced as before
    EXPECT_TRUE(contains(Lab::slurp(list), "198.51.100.9/32\n2001:db8:5::/64\n")) << Lab::slurp(list);

    auto same = lab.ctl("rule add --vault alpha --ip 2001:db8:5::/64");
    EXPECT_EQ(same.rc, 0) << same.out;
    EXPECT_TRUE(contains(same.out, "nothing to change")) << same.out;

    // A reload of the edited file changes nothing: the file says what is enforced.
    auto d = lab.ctl("diff " + rules + " --json");
    ASSERT_EQ(d.rc, 0) << d.out;
    EXPECT_EQ(Json::parse(d.out)["changes"], false) << d.out;

    auto rm = lab.ctl("rule remove --vault alpha --ip 2001:db8:5::/64 --json");
    ASSERT_EQ(rm.rc, 0) << rm.out;
    EXPECT_EQ(Json::parse(rm.out)["removed"], Json({"2001:db8:5::/64"}));
    EXPECT_FALSE(contains(Lab::slurp(list), "2001:db8:5::")) << Lab::slurp(list);
    EXPECT_TRUE(contains(Lab::slurp(list), "198.51.100.9/32\n")) << Lab::slurp(list);

    lab.write_rules("other.rules", "192.0.2.0/24\n198.51.100.7\n198.51.100.9\n2001:db8:7::/48\n");
    std::string text = Lab::slurp(rules);
    text.replace(text.find("ip_rules_file: alpha.rules"), 26, "ip_rules_file: other.rules");
    auto other = lab.write_rules("other.yaml", text);
    d = lab.ctl("diff " + other + " --json");
    ASSERT_EQ(d.rc, 0) << d.out;
    auto j = Json::parse(d.out);
    ASSERT_EQ(j["vaults"].size(), 1u) << d.out;
    EXPECT_EQ(j["vaults"][0]["added"], Json({"2001:db8:7::/48"})) << d.out;
    EXPECT_EQ(j["vaults"][0]["rules_added"], 1);
}
