#include "etcd_cluster.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <thread>

#include <nlohmann/json.hpp>

namespace vwtest {

namespace fs = std::filesystem;

Exec exec(const std::string& cmd) {
    Exec r{-1, {}};
    FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
    if (!p) return r;
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
    int st = ::pclose(p);
    r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
}

namespace {

// A port nobody listens on now (the kernel's pick for port 0). Two members'
// ports come from sockets held open together, so they differ.
std::vector<int> free_ports(int n) {
    std::vector<int> fds, ports;
    for (int i = 0; i < n; ++i) {
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
        socklen_t len = sizeof a;
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
        ports.push_back(ntohs(a.sin_port));
        fds.push_back(fd);
    }
    for (int fd : fds) ::close(fd);
    return ports;
}

}  // namespace

EtcdCluster::EtcdCluster(EtcdClusterOptions opts) : opts_(std::move(opts)) {
    char tmpl[] = "/tmp/vw-etcd-XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    auto ports = free_ports(2 * opts_.members);
    for (int i = 0; i < opts_.members; ++i)
        members_.push_back({"m" + std::to_string(i), ports[2 * i], ports[2 * i + 1], -1, false});
    if (opts_.tls) make_pki();
    for (int i = 0; i < opts_.members; ++i) spawn(i);
    wait_healthy();
}

EtcdCluster::~EtcdCluster() {
    for (int i = 0; i < size(); ++i)
        if (members_[i].pid > 0) kill(i);
    std::error_code ec;
    if (!std::getenv("VW_KEEP_ETCD")) fs::remove_all(dir_, ec);  // kept for a post-mortem when set
}

std::string EtcdCluster::endpoint(int i) const {
    return std::string(opts_.tls ? "https" : "http") + "://127.0.0.1:" + std::to_string(members_[i].client_port);
}

std::string EtcdCluster::socket_endpoints() const {
    std::string s;
    for (int i = 0; i < size(); ++i)
        s += std::string(i ? "," : "") + (opts_.tls ? "unixs://" : "unix://") + dir_ + "/localhost:" +
             std::to_string(members_[i].client_port);
    return s;
}

std::string EtcdCluster::endpoints() const {
    std::string s;
    for (int i = 0; i < size(); ++i) s += (i ? "," : "") + endpoint(i);
    return s;
}

void EtcdCluster::make_pki() {
    std::string p = dir_ + "/pki";
    fs::create_directories(p);
    std::string script =
        "set -e; cd " + p +
        "; openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=vw-test-ca"
        " -keyout ca.key -out ca.pem"
        "; openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=rogue-ca"
        " -keyout rogue-ca.key -out rogue-ca.pem"
        "; printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\nextendedKeyUsage=serverAuth,clientAuth\\n' > server.ext"
        "; printf 'extendedKeyUsage=clientAuth\\n' > client.ext"
        "; openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=etcd -keyout server.key"
        " -out server.csr"
        "; openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile server.ext"
        " -out server.pem"
        "; openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=vaultwall -keyout client.key"
        " -out client.csr"
        "; openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile client.ext"
        " -out client.pem"
        "; openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=vaultwall -keyout rogue.key"
        " -out rogue.csr"
        "; openssl x509 -req -in rogue.csr -CA rogue-ca.pem -CAkey rogue-ca.key -CAcreateserial -days 2"
        " -extfile client.ext -out rogue.pem";
    Exec r = exec(script);
    if (r.rc != 0) throw std::runtime_error("making the test PKI failed: " + r.out);
}

void EtcdCluster::spawn(int i) {
    Member& m = members_[i];
    std::string cluster;
    for (int j = 0; j < size(); ++j)
        cluster += (j ? "," : "") + members_[j].name + "=http://127.0.0.1:" + std::to_string(members_[j].peer_port);
    std::vector<std::string> args = {
        "etcd",
        "--name", m.name,
        "--data-dir", dir_ + "/" + m.name,
        // Also on a local socket (in the data dir): daemons in other network
        // namespaces reach it there, and etcd still listens on loopback only.
        "--listen-client-urls", endpoint(i) + "," + (opts_.tls ? "unixs" : "unix") + "://localhost:" +
                                    std::to_string(m.client_port),
        "--advertise-client-urls", endpoint(i),
        "--listen-peer-urls", "http://127.0.0.1:" + std::to_string(m.peer_port),
        "--initial-advertise-peer-urls", "http://127.0.0.1:" + std::to_string(m.peer_port),
        "--initial-cluster", cluster,
        "--initial-cluster-state", m.started_once ? "existing" : "new",
        "--initial-cluster-token", "vw-test-" + std::to_string(::getpid()),
        // Fast elections on loopback (defaults: 100 ms / 1000 ms).
        "--heartbeat-interval", "50", "--election-timeout", "500",
        "--logger", "zap", "--log-level", "warn",
    };
    if (opts_.tls) {
        std::string pki = dir_ + "/pki/";
        for (const std::string& a : std::vector<std::string>{"--cert-file", pki + "server.pem", "--key-file", pki + "server.key",
                              "--trusted-ca-file", pki + "ca.pem", "--client-cert-auth"})
            args.push_back(a);
    }
    for (const auto& a : opts_.extra_args) args.push_back(a);
    std::string log = dir_ + "/" + m.name + ".log";
    // A killed member leaves its socket file behind; etcd would not listen again.
    ::unlink((dir_ + "/localhost:" + std::to_string(m.client_port)).c_str());
    pid_t pid = ::fork();
    if (pid == 0) {
        // Killed with the test process even when its destructors do not run
        // (a sanitizer abort, a crash): an orphaned etcd would keep its ports
        // and every fd the test inherited, a held lock file's too.
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::chdir(dir_.c_str()) != 0) ::_exit(126);  // the local sockets land here
        int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        ::dup2(fd, 1);
        ::dup2(fd, 2);
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        ::execvp("etcd", argv.data());
        ::_exit(127);
    }
    m.pid = pid;
    m.started_once = true;
}

void EtcdCluster::kill(int i) {
    Member& m = members_[i];
    if (m.pid <= 0) return;
    ::kill(m.pid, SIGKILL);
    ::waitpid(m.pid, nullptr, 0);
    m.pid = -1;
}

void EtcdCluster::start(int i) {
    if (members_[i].pid > 0) return;
    spawn(i);
}

Exec EtcdCluster::etcdctl(const std::string& a) const {
    std::string eps;
    for (int i = 0; i < size(); ++i)
        if (members_[i].pid > 0) eps += (eps.empty() ? "" : ",") + endpoint(i);
    std::string cmd = "ETCDCTL_API=3 etcdctl --dial-timeout 2s --command-timeout 5s --endpoints " + eps;
    if (opts_.tls) cmd += " --cacert " + ca() + " --cert " + client_cert() + " --key " + client_key();
    if (!root_password_.empty()) cmd += " --user root:" + root_password_;
    return exec(cmd + " " + a);
}

void EtcdCluster::wait_healthy(std::chrono::seconds budget) {
    auto end = std::chrono::steady_clock::now() + budget;
    for (;;) {
        bool all = true;
        for (int i = 0; i < size() && all; ++i) {
            if (members_[i].pid <= 0) continue;
            std::string cmd = "ETCDCTL_API=3 etcdctl --dial-timeout 1s --command-timeout 2s --endpoints " +
                              endpoint(i);
            if (opts_.tls) cmd += " --cacert " + ca() + " --cert " + client_cert() + " --key " + client_key();
            if (!root_password_.empty()) cmd += " --user root:" + root_password_;
            all = exec(cmd + " endpoint health").rc == 0;
        }
        if (all) return;
        if (std::chrono::steady_clock::now() > end) throw std::runtime_error("etcd cluster not healthy in " + dir_);
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
}

int EtcdCluster::leader() {
    auto end = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < end) {
        Exec r = etcdctl("endpoint status -w json");
        auto j = nlohmann::json::parse(r.out, nullptr, false);
        if (j.is_array()) {
            for (const auto& e : j) {
                auto st = e.value("Status", nlohmann::json::object());
                auto hdr = st.value("header", nlohmann::json::object());
                if (st.value("leader", 0ull) != 0 && st.value("leader", 0ull) == hdr.value("member_id", 1ull)) {
                    std::string ep = e.value("Endpoint", std::string());
                    for (int i = 0; i < size(); ++i)
                        if (endpoint(i) == ep) return i;
                }
            }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    throw std::runtime_error("no etcd leader");
}

void EtcdCluster::compact_to_latest() {
    Exec r = etcdctl("endpoint status -w json");
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    if (!j.is_array() || j.empty()) throw std::runtime_error("etcdctl endpoint status: " + r.out);
    long long rev = j[0]["Status"]["header"]["revision"].get<long long>();
    Exec c = etcdctl("compact " + std::to_string(rev) + " --physical");
    if (c.rc != 0) throw std::runtime_error("etcdctl compact: " + c.out);
}

void EtcdCluster::enable_auth(const std::string& user, const std::string& password) {
    root_password_.clear();
    std::string root_pw = "root-" + std::to_string(::getpid());
    for (const std::string& a : std::vector<std::string>{"user add root:" + root_pw, "role add vaultwall",
                                 "role grant-permission vaultwall --prefix=true readwrite /vaultwall/",
                                 "user add " + user + ":" + password, "user grant-role " + user + " vaultwall",
                                 std::string("auth enable")}) {
        Exec r = etcdctl(a);
        if (r.rc != 0) throw std::runtime_error("etcdctl " + a + ": " + r.out);
    }
    root_password_ = root_pw;
}

}  // namespace vwtest
