// vaultwallctl rule add|remove and diff (SPEC §7) against a real vaultwalld:
// an edit is a new generation enforced on real traffic, persisted in the
// vault's ip_rules_file, leaves other rules' hit counts alone, and a SIGHUP
// or a restart afterwards enforces exactly the same rules.
#include <linux/bpf.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <set>

#include "bpfmaps/image.hpp"
#include "bpfmaps/map_backend.hpp"
#include "bpfmaps/prog_run.hpp"
#include "bpfmaps/counters.hpp"
#include "common/reasons.hpp"
#include "lab.hpp"
#include "reference/classifier.hpp"
#include "rules/ipv6.hpp"
#include "rules/parser.hpp"

using namespace vwtest;

namespace {

bool contains(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

class RuleEdit : public ::testing::Test {
protected:
    void SetUp() override { setup("", "# alpha's machine-managed list\n192.0.2.0/24\n198.51.100.7  # a host\n"); }
    // alpha's ip rules in alpha.rules (`list_text`); with `dual_stack`, alpha
    // also listens on [2001:db8::10]:443.
    void setup(const std::string& attach_options, const std::string& list_text, bool dual_stack = false) {
        ASSERT_EQ(lab.loader("attach --dev vr0" + attach_options).rc, 0);
        list = lab.write_rules("alpha.rules", list_text);
        std::string text = base_rules();
        const std::string inline_rules = "      ip_rules: [192.0.2.0/24]\n";
        text.replace(text.find(inline_rules), inline_rules.size(), "      ip_rules_file: alpha.rules\n");
        if (dual_stack) {
            const std::string eps = "    endpoints: [203.0.113.10:443]\n";  // alpha's, the first
            text.replace(text.find(eps), eps.size(), "    endpoints: [203.0.113.10:443, \"[2001:db8::10]:443\"]\n");
        }
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

// IPv6 and mixed edits take the one-pass path (bpfmaps::translate_edit) like
// IPv4 ones: enforced on real traffic from the next generation, refused
// whole (maps, generation, counters and file unchanged) when they do not
// fit, and after any sequence of them the datapath answers every packet as a
// full reload of the resulting file would.
namespace {

using vaultwall::packet::Bytes;
using vaultwall::rules::Ipv6Addr;

Ipv6Addr ip6(const char* s) { return *vaultwall::rules::parse_ipv6(s); }
const Ipv6Addr kAlpha6 = ip6("2001:db8::10");

Bytes syn6(const Ipv6Addr& src, const Ipv6Addr& dst = kAlpha6, std::uint16_t sport = 40000) {
    return vaultwall::packet::FrameSpec::tcp_flow6({src, dst, sport, 443}, vaultwall::packet::tcp_flags::syn).build();
}

class RuleEdit6 : public RuleEdit {
protected:
    void SetUp() override {}  // each test sets up its own datapath and list
    // Sends an IPv6 SYN from `src` to alpha: "pass" (by an ip rule, and the
    // frame reached the receiver), "drop" (no rule, and it did not), or what
    // else happened.
    std::string verdict6(const char* src) {
        const auto c0 = lab.counters();
        send_frame(tx, syn6(ip6(src), kAlpha6, sport++));  // a new flow each time
        std::size_t got = 0;
        for (const auto& f : drain(rx, 150))
            got += f.size() >= 54 && f[12] == 0x86 && f[13] == 0xdd && std::equal(f.begin() + 22, f.begin() + 38, ip6(src).begin());
        const auto c1 = lab.counters();
        const auto passed = c1.get(VW_PASS_IP_RULE, "alpha").packets - c0.get(VW_PASS_IP_RULE, "alpha").packets;
        const auto dropped = c1.get(VW_DROP_NO_RULE, "alpha").packets - c0.get(VW_DROP_NO_RULE, "alpha").packets;
        if (passed == 1 && dropped == 0 && got == 1) return "pass";
        if (passed == 0 && dropped == 1 && got == 0) return "drop";
        return "passed " + std::to_string(passed) + ", dropped " + std::to_string(dropped) + ", received " +
               std::to_string(got);
    }
    // Hits of alpha's live IPv6 rule `prefix`, from the pinned maps.
    std::optional<std::uint64_t> hits6(const std::string& prefix) {
        auto dp = vaultwall::bpfmaps::Datapath::open_pinned(lab.pin_root + "/vr0");
        vaultwall::bpfmaps::KernelMaps maps(*dp);
        const auto live = vaultwall::bpfmaps::read_live_image(maps);
        for (const auto& r : *live.live.rules6)
            if (vaultwall::rules::Ipv6Prefix{r.addr, r.len}.str() == prefix && live.names.at(r.vault_id()) == "alpha")
                return vaultwall::bpfmaps::read_rule_hits(*dp, r.id);
        return std::nullopt;
    }
    int rx = -1;
    std::uint16_t sport = 40000;
};

}  // namespace

TEST_F(RuleEdit6, Ipv6TrafficFromAPrefixPassesOnlyWhileItsRuleIsLive) {
    setup("", "192.0.2.0/24\n2001:db8:1::/48\n", true);
    tx = lab.sender();
    rx = lab.receiver();
    EXPECT_EQ(verdict6("2001:db8:1::5"), "pass");
    EXPECT_EQ(verdict6("2001:db8:5::7"), "drop");

    auto add = lab.ctl("rule add --vault alpha --ip 2001:db8:5::/64 --json");
    ASSERT_EQ(add.rc, 0) << add.out;
    EXPECT_EQ(Json::parse(add.out)["generation"], 2) << add.out;
    EXPECT_EQ(Json::parse(add.out)["phases"].dump().find("compile"), std::string::npos)
        << "an IPv6 edit copies and recompiles nothing: " << add.out;
    EXPECT_EQ(verdict6("2001:db8:5::7"), "pass");
    EXPECT_EQ(verdict6("2001:db8:5:0:ffff:ffff:ffff:ffff"), "pass");
    EXPECT_EQ(verdict6("2001:db8:5:1::7"), "drop");  // outside the /64
    EXPECT_EQ(hits6("2001:db8:5::/64"), 2u);
    EXPECT_EQ(hits6("2001:db8:1::/48"), 1u) << "the rule that stayed kept its count";
    EXPECT_TRUE(passes("192.0.2.5")) << "the IPv4 rules are untouched";

    // A longer prefix inside it (a new length for the scope), then the /64 goes:
    // only the /128 still admits.
    ASSERT_EQ(lab.ctl("rule add --vault alpha --ip 2001:db8:5::7").rc, 0);
    auto rm = lab.ctl("rule remove --vault alpha --ip 2001:db8:5::/64 --json");
    ASSERT_EQ(rm.rc, 0) << rm.out;
    EXPECT_EQ(Json::parse(rm.out)["generation"], 4) << rm.out;
    EXPECT_EQ(verdict6("2001:db8:5::7"), "pass");
    EXPECT_EQ(verdict6("2001:db8:5::8"), "drop");
    ASSERT_EQ(lab.ctl("rule remove --vault alpha --ip 2001:db8:5::7/128").rc, 0);
    EXPECT_EQ(verdict6("2001:db8:5::7"), "drop");
    EXPECT_EQ(verdict6("2001:db8:1::5"), "pass");
    EXPECT_EQ(Lab::slurp(list), "192.0.2.0/24\n2001:db8:1::/48\n");

    // The last IPv6 rule of the vault goes, and a first one comes back.
    ASSERT_EQ(lab.ctl("rule remove --vault alpha --ip 2001:db8:1::/48").rc, 0);
    EXPECT_EQ(verdict6("2001:db8:1::5"), "drop");
    ASSERT_EQ(lab.ctl("rule add --vault alpha --ip 2001:db8:1::/48").rc, 0);
    EXPECT_EQ(verdict6("2001:db8:1::5"), "pass");
    EXPECT_EQ(verdict6("2001:db8:5::7"), "drop");
}

// The capacity check counts both families (one rule-id space): a refused
// edit says so, and changes no map, generation, counter or file.
TEST_F(RuleEdit6, AnEditThatDoesNotFitChangesNothing) {
    // 8 ids: rules 1..7. alpha has 2 IPv4 ip rules and 1 IPv6, plus its VNet rule: 4.
    setup(" --max-rules 8", "192.0.2.0/24\n198.51.100.7\n2001:db8:1::/48\n", true);
    tx = lab.sender();
    rx = lab.receiver();
    EXPECT_EQ(verdict6("2001:db8:1::5"), "pass");
    const std::string file_before = Lab::slurp(list);
    const auto counters_before = vaultwall::daemon::stats_json(lab.counters());
    const auto hits_before = hits6("2001:db8:1::/48");
    auto refused = [&](const std::string& args, const std::string& says) {
        auto r = lab.ctl("rule add --vault alpha " + args + " --json");
        EXPECT_EQ(r.rc, 1) << r.out;
        auto j = Json::parse(r.out);
        EXPECT_EQ(j["ok"], false);
        EXPECT_TRUE(contains(j.value("error", ""), says)) << r.out;
        EXPECT_TRUE(contains(j.value("error", ""), "(nothing changed)")) << r.out;
        EXPECT_EQ(generation(), 1u);
        EXPECT_EQ(Lab::slurp(list), file_before);
        EXPECT_FALSE(fs::exists(list + ".vaultwall-new"));
        EXPECT_EQ(vaultwall::daemon::stats_json(lab.counters()), counters_before);
        EXPECT_EQ(hits6("2001:db8:1::/48"), hits_before);
        EXPECT_FALSE(hits6("2001:db8:9::1/128"));
    };
    refused("--ip 2001:db8:9::1 --ip 2001:db8:9::2 --ip 2001:db8:9::3 --ip 2001:db8:9::4",
            "interface vr0: 8 rules (3 IPv4, 5 IPv6) do not fit its datapath, which holds 7 of both families");
    refused("--ip 2001:db8:9::1 --ip 2001:db8:9::2 --ip 2001:db8:9::3 --ip 198.51.100.8",
            "interface vr0: 8 rules (4 IPv4, 4 IPv6) do not fit its datapath, which holds 7 of both families");
    EXPECT_EQ(verdict6("2001:db8:9::1"), "drop");
    // Three fit exactly, and work.
    auto ok = lab.ctl("rule add --vault alpha --ip 2001:db8:9::1 --ip 2001:db8:9::2 --ip 2001:db8:9::3");
    ASSERT_EQ(ok.rc, 0) << ok.out;
    EXPECT_EQ(generation(), 2u);
    EXPECT_EQ(verdict6("2001:db8:9::3"), "pass");
}

TEST_F(RuleEdit6, RandomEditsOfBothFamiliesAnswerAsAFullReloadOfTheFile) {
    setup("", "192.0.2.0/24\n2001:db8:1::/48\n", true);
    namespace vw = vaultwall;
    std::mt19937 rng(20261202);
    auto u = [&](std::uint32_t n) { return std::uniform_int_distribution<std::uint32_t>(0, n - 1)(rng); };
    std::set<std::string> in_file = {"192.0.2.0/24", "2001:db8:1::/48"};
    std::uint64_t gen = 1;
    // Lengths 40..128, so alpha's IPv6 scope passes 16 lengths (the trie) and back.
    auto random_prefix = [&]() -> std::string {
        if (u(3) == 0) {
            const std::uint8_t len = std::uint8_t(24 + u(9));
            return vw::rules::Ipv4Prefix{(0xC6336400u | u(256)) & vw::rules::Ipv4Prefix::mask(len), len}.str();
        }
        static const int common[] = {48, 56, 64, 96, 120, 128};
        const auto len = std::uint8_t(u(2) ? common[u(6)] : 40 + int(u(89)));
        Ipv6Addr a = ip6("2001:db8::");
        for (int b = 4; b < 16; ++b) a[b] = std::uint8_t(u(3));
        return vw::rules::Ipv6Prefix{vw::rules::Ipv6Prefix::masked(a, len), len}.str();
    };
    for (int step = 0; step < 40; ++step) {
        const bool add = in_file.size() < 4 || u(3) != 0;
        Json ips = Json::array();
        std::set<std::string> picked;
        for (std::uint32_t i = 0, n = 1 + u(4); i < n; ++i) {
            std::string p;
            if (add) p = random_prefix();
            else p = *std::next(in_file.begin(), std::ptrdiff_t(u(std::uint32_t(in_file.size()))));
            if (picked.insert(p).second) ips.push_back(p);
        }
        auto r = lab.request({{"cmd", "rule"}, {"op", add ? "add" : "remove"}, {"vault", "alpha"}, {"ips", ips}});
        ASSERT_EQ(r["ok"], true) << r.dump();
        for (const auto& p : r["added"]) in_file.insert(p.get<std::string>());
        for (const auto& p : r["removed"]) in_file.erase(p.get<std::string>());
        if (!r["added"].empty() || !r["removed"].empty()) ++gen;
        ASSERT_EQ(r["generation"], gen) << r.dump();
    }
    ASSERT_EQ(generation(), gen);

    // What a full reload of the file compiles to, and its reference model.
    const auto compiled = vw::rules::compile(vw::rules::load_rule_file(rules));
    std::size_t alpha_rules = 0;
    for (const auto& r : compiled.rules) alpha_rules += compiled.vaults[r.vault].name == "alpha" && r.vni == 0;
    for (const auto& r : compiled.rules6) alpha_rules += compiled.vaults[r.vault].name == "alpha";
    EXPECT_EQ(alpha_rules, in_file.size()) << "the file holds what the edits said";
    const vw::reference::Classifier ref(compiled);
    std::vector<Bytes> frames;
    auto near = [&](Ipv6Addr a, std::uint8_t len) {
        switch (u(4)) {
            case 0: return a;  // the first address
            case 1:            // the last
                for (int bit = len; bit < 128; ++bit) a[bit / 8] |= std::uint8_t(0x80 >> (bit % 8));
                return a;
            case 2:  // the neighbouring network of the same length
                if (len) a[(len - 1) / 8] ^= std::uint8_t(0x80 >> ((len - 1) % 8));
                return a;
            default:
                for (int bit = len; bit < 128; ++bit)
                    if (u(2)) a[bit / 8] |= std::uint8_t(0x80 >> (bit % 8));
                return a;
        }
    };
    for (int i = 0; i < 3000; ++i) {
        const auto sport = std::uint16_t(1024 + u(60000));
        if (u(3) == 0) {  // IPv4 to alpha, or to open (default allow)
            std::uint32_t src = 0xC6336400u | u(256);
            if (u(2) && !compiled.rules.empty()) src = compiled.rules[u(std::uint32_t(compiled.rules.size()))].prefix.addr + u(2);
            frames.push_back(vw::packet::FrameSpec::tcp_flow({src, ip(u(4) ? "203.0.113.10" : "203.0.113.12"), sport, 443}).build());
            continue;
        }
        Ipv6Addr src = ip6("2001:db8::");
        for (int b = 4; b < 16; ++b) src[b] = std::uint8_t(u(3));
        if (!compiled.rules6.empty() && u(5) != 0) {
            const auto& p = compiled.rules6[u(std::uint32_t(compiled.rules6.size()))].prefix;
            src = near(p.addr, p.len);
        }
        frames.push_back(syn6(src, kAlpha6, sport));
    }
    auto mismatches = [&](const char* when) {
        auto dp = vw::bpfmaps::Datapath::open_pinned(lab.pin_root + "/vr0");
        vw::bpfmaps::KernelMaps maps(*dp);
        const auto live = vw::bpfmaps::read_live_image(maps);
        std::map<std::uint32_t, std::string> prefix_of;
        for (const auto& r : *live.live.rules) prefix_of[r.id] = vw::rules::Ipv4Prefix{r.addr(), r.len()}.str();
        for (const auto& r : *live.live.rules6) prefix_of[r.id] = vw::rules::Ipv6Prefix{r.addr, r.len}.str();
        // The live image is the file's: translated against it, the file changes nothing.
        const auto t = vw::bpfmaps::translate(compiled, live.live, live.names, dp->max_rules());
        EXPECT_TRUE(t.upserts.empty() && t.removals.empty() && t.upserts6.empty() && t.removals6.empty()) << when;
        EXPECT_EQ(*t.image.rules6, *live.live.rules6) << when;
        EXPECT_EQ(t.image.scopes6.size(), live.live.scopes6.size()) << when;
        for (const auto& [scope, v] : t.image.scopes6)
            EXPECT_TRUE(live.live.scopes6.count(scope) &&
                        std::memcmp(&v, &live.live.scopes6.at(scope), sizeof(v)) == 0) << when << " scope " << scope;
        std::size_t bad = 0, passed = 0, by_rule6 = 0;
        for (const auto& f : frames) {
            const auto k = vw::bpfmaps::run_explain(*dp, f);
            const auto r = ref.classify(f.data(), f.size());
            std::string kvault = k.vault_id && live.names.count(k.vault_id) ? live.names.at(k.vault_id) : "";
            std::string rvault = r.vault >= 0 ? compiled.vaults[std::size_t(r.vault)].name : "";
            std::string krule = k.rule_id ? prefix_of[k.rule_id] : "";
            std::string rrule = r.rule6 >= 0  ? compiled.rules6[std::size_t(r.rule6)].prefix.str()
                                : r.rule >= 0 ? compiled.rules[std::size_t(r.rule)].prefix.str()
                                              : "";
            const bool same = (k.action == XDP_PASS) == r.pass && k.reason == r.reason && kvault == rvault && krule == rrule;
            if (!same && ++bad <= 5)
                ADD_FAILURE() << when << ": kernel " << vaultwall::reason_name(static_cast<vw_reason>(k.reason)) << " "
                              << kvault << " " << krule << ", reference " << vaultwall::reason_name(r.reason) << " "
                              << rvault << " " << rrule << " for " << vaultwall::daemon::to_hex(f);
            passed += r.pass;
            by_rule6 += r.rule6 >= 0;
        }
        std::string scope = "no IPv6 rules";
        for (const auto& [sc, v] : live.live.scopes6)
            if (live.names.at(std::uint32_t(sc >> 32)) == "alpha")
                scope = v.flags & VW_SCOPE_TRIE ? "the trie (over 16 lengths)" : std::to_string(v.nlens) + " lengths";
        std::printf("[ %s ] %zu frames, %zu pass, %zu by an IPv6 rule, %zu mismatches; %zu IPv6 rules live, alpha's "
                    "IPv6 lookup: %s\n",
                    when, frames.size(), passed, by_rule6, bad, live.live.rules6->size(), scope.c_str());
        EXPECT_GT(by_rule6, frames.size() / 4) << "the frames must exercise the IPv6 rules";
        EXPECT_LT(passed, frames.size()) << "and some must be denied";
        return bad;
    };
    EXPECT_EQ(mismatches("after the edits"), 0u);
    auto d = lab.ctl("diff " + rules + " --json");
    ASSERT_EQ(d.rc, 0) << d.out;
    EXPECT_EQ(Json::parse(d.out)["changes"], false) << d.out;
    // And a real full reload of the file: a new generation, the same answers.
    auto again = lab.request({{"cmd", "reload"}});
    ASSERT_EQ(again["ok"], true) << again.dump();
    EXPECT_TRUE(again["diff"].empty()) << again.dump();
    EXPECT_EQ(generation(), gen + 1);
    EXPECT_EQ(mismatches("after a full reload"), 0u);
}
