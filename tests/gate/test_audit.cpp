// The audit log's line format (byte for byte what the former nlohmann::json
// dump wrote) and its batching: nothing lost, nothing interleaved.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "gate/audit.hpp"
#include "support.hpp"

using namespace vaultwall::gate;
using namespace vwtest;
using json = nlohmann::json;

namespace {

// The line the log wrote before it formatted lines itself.
std::string nlohmann_line(const AuditRecord& r, const std::string& time) {
    json j;
    j["time"] = time;
    j["client"] = std::string(r.client);
    j["vni"] = r.vni;
    j["vault"] = std::string(r.vault);
    j["operation"] = std::string(r.operation);
    j["caller"] = std::string(r.caller);
    j["decision"] = std::string(r.decision);
    j["reason"] = std::string(r.reason);
    j["status"] = r.status;
    j["method"] = std::string(r.method);
    j["path"] = std::string(r.path);
    return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::size_t p = 0;
    for (std::size_t e; (e = text.find('\n', p)) != std::string::npos; p = e + 1) out.push_back(text.substr(p, e - p));
    EXPECT_EQ(p, text.size()) << "a partial last line";
    return out;
}

AuditRecord denial(std::string_view reason) { return {"192.0.2.1", 0, "v", "", "", "deny", reason, 403, "GET", "/"}; }

}  // namespace

TEST(AuditFormat, SameBytesAsNlohmann) {
    using namespace std::chrono;
    auto t = system_clock::time_point(milliseconds(1764449677007));  // 2025-11-29T20:54:37.007Z
    std::string ctl;
    for (int c = 0; c < 0x20; ++c) ctl += char(c);
    ctl += "\x7f/\"\\ end";
    const std::string odd[] = {"",
                               "plain",
                               "appid=a;oid=b;iss=https://sts.windows.net/t/",
                               ctl,
                               "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x91",   // valid UTF-8
                               "bad \xff byte",                                // invalid
                               "cut \xe2\x82",                                 // truncated sequence at the end
                               "cut \xe2\x82 mid \xc3(",                       // truncated in the middle
                               "overlong \xc0\xaf and surrogate \xed\xa0\x80"};
    for (const auto& s : odd) {
        AuditRecord r{s, 4294967295u, s, s, s, "deny", s, 599, s, s};
        std::string line;
        AuditLog::append_line(line, r, t);
        EXPECT_EQ(line, nlohmann_line(r, "2025-11-29T20:54:37.007Z")) << json(s).dump(-1, ' ', true,
                                                                                        json::error_handler_t::replace);
    }
    AuditRecord r{"198.51.100.9", 7, "contoso-prod", "secrets/get", "appid=x", "allow", "ip_rule", 200, "GET",
                  "/secrets/db"};
    std::string line;
    AuditLog::append_line(line, r, system_clock::time_point(milliseconds(1764449677999)));
    EXPECT_EQ(line, "{\"caller\":\"appid=x\",\"client\":\"198.51.100.9\",\"decision\":\"allow\",\"method\":\"GET\","
                    "\"operation\":\"secrets/get\",\"path\":\"/secrets/db\",\"reason\":\"ip_rule\",\"status\":200,"
                    "\"time\":\"2025-11-29T20:54:37.999Z\",\"vault\":\"contoso-prod\",\"vni\":7}\n");
}

TEST(AuditLog, BatchedLinesAreWrittenOnFlushAndNeverInterleaved) {
    std::string dir = temp_dir("audit");
    std::string path = dir + "/audit.jsonl";
    const int threads = 4, per = 5000;
    {
        AuditLog log;
        ASSERT_TRUE(log.open(path));
        log.write(denial("first"));
        log.flush();
        ASSERT_EQ(lines_of(read_file(path)).size(), 1u);
        std::vector<std::thread> ts;
        for (int t = 0; t < threads; ++t)
            ts.emplace_back([&, t] {
                std::string reason = "thread" + std::to_string(t) + std::string(100 + t * 37, 'x');
                for (int i = 0; i < per; ++i)
                    log.write(AuditRecord{"192.0.2.1", std::uint32_t(i), "v", "op", "caller", "allow", reason, 200,
                                          "GET", "/p"});
            });
        for (auto& t : ts) t.join();
        // Still buffered lines reach the file by the destructor at the latest.
    }
    auto lines = lines_of(read_file(path));
    ASSERT_EQ(lines.size(), 1u + threads * per);
    std::vector<int> next(threads, 0);
    for (std::size_t i = 1; i < lines.size(); ++i) {
        auto j = json::parse(lines[i]);  // throws on an interleaved line
        int t = j["reason"].get<std::string>()[6] - '0';
        ASSERT_EQ(j["vni"].get<int>(), next[t]++) << "thread " << t << " lost or reordered a line";
    }
    std::filesystem::remove_all(dir);
}

class AuditFile : public ::testing::Test {
protected:
    void SetUp() override { ASSERT_TRUE(log.open(dir + "/a.jsonl")); }
    void TearDown() override { std::filesystem::remove_all(dir); }
    std::string dir = temp_dir("audit");
    AuditLog log;
};

TEST_F(AuditFile, ReopenWritesBufferedLinesToThePreviousFile) {
    log.write(denial("to_a"));
    ASSERT_TRUE(log.open(dir + "/b.jsonl"));
    log.write(denial("to_b"));
    log.flush();
    EXPECT_NE(read_file(dir + "/a.jsonl").find("to_a"), std::string::npos);
    EXPECT_EQ(read_file(dir + "/a.jsonl").find("to_b"), std::string::npos);
    EXPECT_NE(read_file(dir + "/b.jsonl").find("to_b"), std::string::npos);
}

TEST_F(AuditFile, FlushesWithinTheIntervalWithoutBeingAsked) {
    log.write(denial("soon"));
    auto until = std::chrono::steady_clock::now() + 20 * AuditLog::kFlushInterval;
    while (read_file(dir + "/a.jsonl").empty() && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    EXPECT_NE(read_file(dir + "/a.jsonl").find("soon"), std::string::npos);
}
