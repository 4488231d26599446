// vaultwall-labvault as a program: usage errors, persistence across restarts,
// id URLs from the Host header.
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include <gtest/gtest.h>

namespace {

std::string run(const std::string& cmd, int* rc = nullptr) {
    std::string out;
    FILE* p = popen(cmd.c_str(), "r");
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    int st = pclose(p);
    if (rc) *rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return out;
}

pid_t start(const std::string& listen, const std::string& dir) {
    pid_t pid = fork();
    if (pid == 0) {
        execl(LABVAULT_BIN, LABVAULT_BIN, "--listen", listen.c_str(), "--data", dir.c_str(), (char*)nullptr);
        _exit(127);
    }
    // wait (bounded) until it answers
    for (int i = 0; i < 100; ++i) {
        int rc = 0;
        run("curl -s --max-time 1 -o /dev/null http://" + listen + "/secrets", &rc);
        if (rc == 0) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return pid;
}

void stop(pid_t pid) {
    kill(pid, SIGTERM);
    waitpid(pid, nullptr, 0);
}

std::string port_str() {
    // A port unlikely to collide: derived from the pid.
    return std::to_string(20000 + getpid() % 20000);
}

}  // namespace

TEST(Labvault, UsageErrorsAreOneLineAndNonZero) {
    int rc = 0;
    std::string out = run(std::string(LABVAULT_BIN) + " 2>&1", &rc);
    EXPECT_NE(rc, 0);
    EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
    out = run(std::string(LABVAULT_BIN) + " --listen nonsense --data /tmp/x 2>&1", &rc);
    EXPECT_NE(rc, 0);
    EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
    out = run(std::string(LABVAULT_BIN) + " --help 2>&1", &rc);
    EXPECT_EQ(rc, 0);
    EXPECT_NE(out.find("--listen"), std::string::npos);
}

TEST(Labvault, RestartLosesNothing) {
    char tmpl[] = "/tmp/vwlabvault-XXXXXX";
    ASSERT_TRUE(mkdtemp(tmpl));
    std::string dir = tmpl, listen = "127.0.0.1:" + port_str(), base = "http://" + listen;
    pid_t pid = start(listen, dir);
    std::string put = run("curl -sS --max-time 5 -X PUT -d '{\"value\":\"v1\"}' " + base + "/secrets/s1");
    ASSERT_NE(put.find("\"value\":\"v1\""), std::string::npos) << put;
    EXPECT_NE(put.find("\"id\":\"https://" + listen + "/secrets/s1/"), std::string::npos);
    run("curl -sS --max-time 5 -X PUT -d '{\"value\":\"v2\"}' " + base + "/secrets/s1");
    std::string key = run("curl -sS --max-time 10 -X POST -d '{\"kty\":\"RSA\"}' " + base + "/keys/k1/create");
    ASSERT_NE(key.find("\"kty\":\"RSA\""), std::string::npos);
    std::string wrapped = run("curl -sS --max-time 5 -X POST -d '{\"alg\":\"RSA-OAEP\",\"value\":\"AAECAw\"}' " + base +
                              "/keys/k1/wrapkey");
    auto v = wrapped.find("\"value\":\"");
    ASSERT_NE(v, std::string::npos) << wrapped;
    std::string blob = wrapped.substr(v + 9, wrapped.find('"', v + 9) - v - 9);
    stop(pid);

    pid = start(listen, dir);
    std::string get = run("curl -sS --max-time 5 -H 'Host: myvault.vault.lab' " + base + "/secrets/s1");
    EXPECT_NE(get.find("\"value\":\"v2\""), std::string::npos) << get;
    EXPECT_NE(get.find("https://myvault.vault.lab/secrets/s1/"), std::string::npos);
    std::string versions = run("curl -sS --max-time 5 " + base + "/secrets/s1/versions");
    EXPECT_EQ(std::count(versions.begin(), versions.end(), '{') >= 4, true) << versions;
    std::string un = run("curl -sS --max-time 5 -X POST -d '{\"alg\":\"RSA-OAEP\",\"value\":\"" + blob + "\"}' " +
                         base + "/keys/k1/unwrapkey");
    EXPECT_NE(un.find("\"value\":\"AAECAw\""), std::string::npos) << un;
    // backup, delete, restore
    std::string backup = run("curl -sS --max-time 5 -X POST " + base + "/secrets/s1/backup");
    auto bv = backup.find("\"value\":\"");
    ASSERT_NE(bv, std::string::npos);
    std::string bblob = backup.substr(bv + 9, backup.find('"', bv + 9) - bv - 9);
    run("curl -sS --max-time 5 -X DELETE " + base + "/secrets/s1");
    EXPECT_NE(run("curl -sS --max-time 5 " + base + "/secrets/s1").find("SecretNotFound"), std::string::npos);
    std::string restored =
        run("curl -sS --max-time 5 -X POST -d '{\"value\":\"" + bblob + "\"}' " + base + "/secrets/restore");
    EXPECT_NE(restored.find("\"value\":\"v2\""), std::string::npos) << restored;
    stop(pid);
    run("rm -rf '" + dir + "'");
}

// Issue 17 item 14: object names are case-insensitive, as in Key Vault (and
// in the gate's scope check): /secrets/ALLOWED is /secrets/allowed, one
// secret whose name keeps the spelling it was created with.
TEST(Labvault, NamesAreCaseInsensitive) {
    char tmpl[] = "/tmp/vwlabvault-XXXXXX";
    ASSERT_TRUE(mkdtemp(tmpl));
    std::string dir = tmpl, listen = "127.0.0.1:" + std::to_string(20000 + (getpid() + 7) % 20000),
                base = "http://" + listen;
    pid_t pid = start(listen, dir);
    std::string put = run("curl -sS --max-time 5 -X PUT -d '{\"value\":\"v1\"}' " + base + "/secrets/allowed");
    ASSERT_NE(put.find("\"value\":\"v1\""), std::string::npos) << put;
    std::string get = run("curl -sS --max-time 5 " + base + "/secrets/ALLOWED");
    EXPECT_NE(get.find("\"value\":\"v1\""), std::string::npos) << get;
    EXPECT_NE(get.find("/secrets/allowed/"), std::string::npos) << get;
    run("curl -sS --max-time 5 -X PUT -d '{\"value\":\"v2\"}' " + base + "/secrets/Allowed");
    std::string versions = run("curl -sS --max-time 5 " + base + "/secrets/aLLowed/versions");
    EXPECT_EQ(std::count(versions.begin(), versions.end(), '{'), 2 * 3 + 1) << versions;  // two items
    std::string list = run("curl -sS --max-time 5 " + base + "/secrets");
    EXPECT_EQ(list.find("/secrets/Allowed"), std::string::npos) << list;
    std::string key = run("curl -sS --max-time 10 -X POST -d '{\"kty\":\"RSA\"}' " + base + "/keys/Cmk/create");
    ASSERT_NE(key.find("\"kty\":\"RSA\""), std::string::npos) << key;
    std::string wrapped = run("curl -sS --max-time 5 -X POST -d '{\"alg\":\"RSA-OAEP\",\"value\":\"AAECAw\"}' " + base +
                              "/keys/CMK/wrapkey");
    EXPECT_NE(wrapped.find("/keys/Cmk/"), std::string::npos) << wrapped;
    std::string del = run("curl -sS --max-time 5 -X DELETE " + base + "/secrets/ALLOWED");
    EXPECT_NE(run("curl -sS --max-time 5 " + base + "/secrets/allowed").find("SecretNotFound"), std::string::npos);
    stop(pid);
    run("rm -rf '" + dir + "'");
}
