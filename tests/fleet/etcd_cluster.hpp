// A real etcd cluster for the fleet tests: N members of Debian's etcd 3.4 on
// loopback, on free ports, each with its own data dir under a temporary
// directory; members are started, killed (SIGKILL, by PID) and restarted by
// the test. Optionally TLS with client-certificate auth (a throwaway CA made
// with the openssl CLI) and etcd user/password auth.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace vwtest {

struct Exec {
    int rc;
    std::string out;
};
Exec exec(const std::string& cmd);  // through sh, stderr folded into out

struct EtcdClusterOptions {
    int members = 3;
    bool tls = false;  // https with client-certificate auth (--client-cert-auth)
    std::vector<std::string> extra_args;
};

class EtcdCluster {
public:
    explicit EtcdCluster(EtcdClusterOptions opts = {});
    ~EtcdCluster();  // kills every member by PID, removes the data
    EtcdCluster(const EtcdCluster&) = delete;
    EtcdCluster& operator=(const EtcdCluster&) = delete;

    std::string endpoints() const;  // "http(s)://127.0.0.1:P1,..."
    std::string endpoint(int i) const;
    // The same members on local sockets ("unix:///DIR/localhost:PORT"):
    // reachable from any network namespace.
    std::string socket_endpoints() const;
    int size() const { return int(members_.size()); }

    void kill(int i);   // SIGKILL, reaped
    void start(int i);  // again, same data dir; returns once it is running
    bool running(int i) const { return members_[i].pid > 0; }
    int leader();       // index of the current leader (waits for one)
    void wait_healthy(std::chrono::seconds budget = std::chrono::seconds(20));

    // etcdctl against the running members (with the TLS client certificate
    // and root credentials when set up).
    Exec etcdctl(const std::string& args) const;
    void compact_to_latest();
    // Enables etcd auth with a user that may read and write /vaultwall/ and
    // root; returns nothing, throws on failure.
    void enable_auth(const std::string& user, const std::string& password);

    // TLS material (tls only): CA, a client certificate signed by it, and one
    // from a CA etcd does not trust.
    std::string dir() const { return dir_; }
    std::string ca() const { return dir_ + "/pki/ca.pem"; }
    std::string client_cert() const { return dir_ + "/pki/client.pem"; }
    std::string client_key() const { return dir_ + "/pki/client.key"; }
    std::string rogue_cert() const { return dir_ + "/pki/rogue.pem"; }
    std::string rogue_key() const { return dir_ + "/pki/rogue.key"; }

private:
    struct Member {
        std::string name;
        int client_port = 0, peer_port = 0;
        pid_t pid = -1;
        bool started_once = false;
    };
    void spawn(int i);
    void make_pki();

    EtcdClusterOptions opts_;
    std::string dir_;
    std::vector<Member> members_;
    std::string root_password_;
};

}  // namespace vwtest
