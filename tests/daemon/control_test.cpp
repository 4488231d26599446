// The control socket against hostile bytes (issue 17, item 1): whatever a
// request, a rule file or a catalog holds, the daemon answers with valid JSON
// and keeps running; a refused input changes neither rules nor generation.
#include <sys/un.h>

#include "lab.hpp"

using namespace vwtest;

namespace {

bool contains(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

// Sends `bytes` as they are (no JSON encoding on our side) and returns the
// answer line, or "" when the daemon closed without one.
std::string raw_request(const std::string& sock, const std::string& bytes) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof(a.sun_path), "%s", sock.c_str());
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
        ::close(fd);
        return "";
    }
    (void)!::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    std::string out;
    char buf[4096];
    for (;;) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 10'000) <= 0) break;
        ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
        if (n <= 0) break;
        out.append(buf, static_cast<std::size_t>(n));
        if (out.find('\n') != std::string::npos) break;
    }
    ::close(fd);
    return out.substr(0, out.find('\n'));
}

// nlohmann refuses ill-formed UTF-8.
bool is_valid_utf8_json(const std::string& line) { return Json::accept(line); }

}  // namespace

// The server alone: an answer holding bytes that are not UTF-8 is written
// (each bad byte as U+FFFD), and the server keeps serving.
TEST(ControlServer, AnswerWithInvalidUtf8IsWrittenNotFatal) {
    const std::string dir = "/tmp/vwctl-" + std::to_string(::getpid());
    fs::create_directories(dir);
    const std::string sock = dir + "/ctl.sock";
    vaultwall::daemon::ControlServer server(sock, std::nullopt, [](const Json& req, const vaultwall::daemon::Peer&, const vaultwall::daemon::Progress&) {
        if (req.value("cmd", std::string()) == "latin1") return Json{{"ok", true}, {"vault", "caf\xe9"}};
        if (req.value("cmd", std::string()) == "throw") throw 42;  // not even a std::exception
        return Json{{"ok", true}};
    });
    server.start();
    auto a = vaultwall::daemon::control_request(sock, {{"cmd", "latin1"}});
    EXPECT_EQ(a["vault"], "caf\xef\xbf\xbd") << vaultwall::daemon::dump_json(a);
    auto t = vaultwall::daemon::control_request(sock, {{"cmd", "throw"}});
    EXPECT_EQ(t["ok"], false);
    EXPECT_EQ(vaultwall::daemon::control_request(sock, {{"cmd", "ping"}})["ok"], true);
    server.stop();
    fs::remove_all(dir);
}

TEST(ControlServer, DumpJsonReplacesEveryBadByte) {
    EXPECT_EQ(vaultwall::daemon::dump_json(Json("a\xff\xfe" "b")), "\"a\xef\xbf\xbd\xef\xbf\xbd" "b\"");
    EXPECT_EQ(vaultwall::daemon::dump_json(Json{{"k", "caf\xc3\xa9"}}), "{\"k\":\"caf\xc3\xa9\"}");
}

class HostileInput : public ::testing::Test {
protected:
    void SetUp() override {
        auto a = lab.loader("attach --dev vr0");
        ASSERT_EQ(a.rc, 0) << a.out;
        rules = lab.write_rules("rules.yaml", base_rules());
        lab.start_daemon(rules);
        before = lab.request({{"cmd", "status"}});
        ASSERT_EQ(before["generation"], 1);
        rules_before = lab.request({{"cmd", "rules"}})["rules"];
    }
    void expect_alive_and_unchanged() {
        ASSERT_EQ(lab.request({{"cmd", "ping"}})["ok"], true) << Lab::slurp(lab.log);
        auto st = lab.request({{"cmd", "status"}});
        EXPECT_EQ(st["generation"], before["generation"]);
        EXPECT_EQ(st["rules"], before["rules"]);
        EXPECT_EQ(lab.counters().generation, before["generation"].get<std::uint64_t>());
        EXPECT_EQ(lab.request({{"cmd", "rules"}})["rules"], rules_before);
    }
    // A rule file whose `alpha` vault is renamed to `name` (raw bytes).
    std::string with_vault_named(const std::string& file, const std::string& name) {
        std::string text = base_rules();
        text.replace(text.find("name: alpha"), 11, "name: " + name);
        return lab.write_rules(file, text);
    }
    Lab lab;
    std::string rules;
    Json before, rules_before;
};

TEST_F(HostileInput, RequestWithInvalidUtf8IsRefusedAndChangesNothing) {
    for (const std::string bytes : {"{\"cmd\":\"\xff\"}\n", "{\"cmd\":\"reload\",\"file\":\"/tmp/caf\xe9.yaml\"}\n",
                                    "\xc3\x28\n", "{\"cmd\":\"rules\",\"vault\":\"\xed\xa0\x80\"}\n"}) {
        auto line = raw_request(lab.sock, bytes);
        ASSERT_FALSE(line.empty()) << "no answer to " << bytes << "; daemon log: " << Lab::slurp(lab.log);
        ASSERT_TRUE(is_valid_utf8_json(line)) << line;
        auto j = Json::parse(line);
        EXPECT_EQ(j["ok"], false) << line;
        EXPECT_TRUE(contains(j["error"].get<std::string>(), "bad request")) << line;
        expect_alive_and_unchanged();
    }
}

// Whatever the parser decides about a Latin-1 vault name (SPEC: a rule file
// is UTF-8), the daemon answers, stays up, and `status` still answers.
TEST_F(HostileInput, ReloadOfALatin1VaultNameAnswersAndStatusStillWorks) {
    auto bad = with_vault_named("latin1.yaml", "caf\xe9");
    auto line = raw_request(lab.sock, "{\"cmd\":\"reload\",\"file\":\"" + bad + "\"}\n");
    ASSERT_FALSE(line.empty()) << "daemon died answering: " << Lab::slurp(lab.log);
    ASSERT_TRUE(is_valid_utf8_json(line)) << line;
    auto r = Json::parse(line);
    auto st = lab.request({{"cmd", "status"}});
    ASSERT_EQ(st["ok"], true);
    EXPECT_TRUE(is_valid_utf8_json(vaultwall::daemon::dump_json(st)));
    if (r["ok"] == false) {
        expect_alive_and_unchanged();
    } else {
        EXPECT_EQ(st["generation"], 2);
        EXPECT_TRUE(contains(lab.request({{"cmd", "stats"}}).dump(), "caf\xef\xbf\xbd"));
    }
    // vaultwallctl prints it too (one line, no exception text).
    auto c = lab.ctl("status --json");
    EXPECT_EQ(c.rc, 0) << c.out;
    EXPECT_TRUE(is_valid_utf8_json(c.out)) << c.out;
    auto rl = lab.ctl("rules --json");
    EXPECT_EQ(rl.rc, 0) << rl.out;
}

// SIGHUP reloads a file the daemon has no one to answer about; the next
// `status` must still be written.
TEST_F(HostileInput, SighupOfALatin1FileThenStatus) {
    auto bad = with_vault_named("latin1.yaml", "caf\xe9");
    // Replace the config file itself: SIGHUP reloads it.
    fs::copy_file(bad, rules, fs::copy_options::overwrite_existing);
    ::kill(lab.daemon_pid, SIGHUP);
    Json st;
    for (int i = 0; i < 100; ++i) {
        st = lab.request({{"cmd", "status"}});
        if (st["reloads"]["ok"].get<int>() + st["reloads"]["failed"].get<int>() >= 2) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ASSERT_EQ(st["reloads"]["ok"].get<int>() + st["reloads"]["failed"].get<int>(), 2) << vaultwall::daemon::dump_json(st);
    auto line = raw_request(lab.sock, "{\"cmd\":\"status\"}\n");
    ASSERT_FALSE(line.empty()) << "daemon died answering status: " << Lab::slurp(lab.log);
    EXPECT_TRUE(is_valid_utf8_json(line)) << line;
    if (st["reloads"]["failed"] == 1) expect_alive_and_unchanged();
}

// A valid file whose warning quotes a Latin-1 trusted-service id: the answer
// arrives (the rules it installed are reported), and the daemon lives on.
TEST_F(HostileInput, WarningQuotingLatin1IsAnswered) {
    lab.write_rules("catalog.yaml",
                    "trusted_services:\n  - id: caf\xe9\n    name: x\n    scenario: x\n"
                    "    app_ids: [00000000-0000-0000-0000-000000000001]\n    resource_types: []\n"
                    "    operations: []\n");
    std::string text = base_rules();
    text.replace(text.find("host:"), 5, "trusted_services: catalog.yaml\nhost:");
    auto file = lab.write_rules("warn.yaml", text);
    auto line = raw_request(lab.sock, "{\"cmd\":\"reload\",\"file\":\"" + file + "\"}\n");
    ASSERT_FALSE(line.empty()) << "daemon died answering: " << Lab::slurp(lab.log);
    ASSERT_TRUE(is_valid_utf8_json(line)) << line;
    auto r = Json::parse(line);
    if (r["ok"] == true) {
        EXPECT_EQ(r["generation"], 2);
        EXPECT_TRUE(contains(r["warnings"].dump(), "caf\xef\xbf\xbd")) << line;
        EXPECT_EQ(lab.request({{"cmd", "status"}})["generation"], 2);
    } else {
        expect_alive_and_unchanged();
    }
    auto c = lab.ctl("reload " + file);
    EXPECT_TRUE(c.rc == 0 || c.rc == 1) << c.out;
    EXPECT_FALSE(contains(c.out, "json.exception")) << c.out;
    EXPECT_EQ(lab.request({{"cmd", "ping"}})["ok"], true);
}
