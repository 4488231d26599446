// A two-namespace lab for the loader/daemon tests:
//
//   ns <tag>s: vs0 ──veth── vr0 :ns <tag>r   (XDP on vr0)
//
// The sender writes whole frames on vs0 with an AF_PACKET socket; the
// receiver reads what XDP passed on vr0 with another. Neither namespace has a
// route anywhere. Everything is torn down in the destructor, also after a
// failed assertion.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bpfmaps/datapath.hpp"
#include "daemon/attach.hpp"
#include "daemon/daemon.hpp"
#include "daemon/control.hpp"
#include "daemon/explain_frames.hpp"
#include "daemon/stats.hpp"
#include "packet/packet.hpp"
#include "rules/ipv4.hpp"

namespace vwtest {

namespace fs = std::filesystem;
using vaultwall::daemon::Json;

inline std::uint32_t ip(const char* s) { return *vaultwall::rules::parse_ipv4(s); }

struct Cmd {
    int rc;
    std::string out;
};

inline Cmd run(const std::string& cmd) {
    Cmd r{-1, {}};
    FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
    if (!p) return r;
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) r.out.append(buf, n);
    int st = ::pclose(p);
    r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
}

inline std::string bin(const std::string& name) { return std::string(VW_BIN_DIR) + "/" + name; }

inline std::uint64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// Runs fn() on a thread that joined namespace `ns` (sockets keep their namespace).
template <class F>
auto in_netns(const std::string& ns, F fn) {
    decltype(fn()) result{};
    std::string err;
    std::thread t([&] {
        int fd = ::open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0 || ::setns(fd, CLONE_NEWNET) != 0) {
            err = "cannot enter netns " + ns;
            if (fd >= 0) ::close(fd);
            return;
        }
        ::close(fd);
        result = fn();
    });
    t.join();
    if (!err.empty()) throw std::runtime_error(err);
    return result;
}

// An AF_PACKET socket bound to `dev` inside `ns`.
inline int packet_socket(const std::string& ns, const std::string& dev) {
    int fd = in_netns(ns, [&] {
        int s = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
        if (s < 0) return -1;
        sockaddr_ll a{};
        a.sll_family = AF_PACKET;
        a.sll_protocol = htons(ETH_P_ALL);
        a.sll_ifindex = static_cast<int>(if_nametoindex(dev.c_str()));
        if (!a.sll_ifindex || ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
            ::close(s);
            return -1;
        }
        int big = 64 << 20;
        ::setsockopt(s, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
        ::setsockopt(s, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big));
        return s;
    });
    if (fd < 0) throw std::runtime_error("cannot open a packet socket on " + ns + "/" + dev);
    return fd;
}

class Lab {
public:
    explicit Lab(bool veth = true) {
        static int counter = 0;
        tag_ = "vwd" + std::to_string(::getpid() % 100000) + "x" + std::to_string(counter++);
        sns = tag_ + "s";
        rns = tag_ + "r";
        pin_root = "/sys/fs/bpf/" + tag_;
        dir = "/tmp/" + tag_;
        sock = dir + "/ctl.sock";
        fs::create_directories(dir);
        for (const auto& ns : {sns, rns}) {
            sh("ip netns add " + ns);
            sh("ip netns exec " + ns + " sysctl -qw net.ipv6.conf.all.disable_ipv6=1 "
               "net.ipv6.conf.default.disable_ipv6=1");
            sh("ip -n " + ns + " link set lo up");
        }
        if (veth) {
            sh("ip link add vs0 netns " + sns + " type veth peer name vr0 netns " + rns);
            sh("ip -n " + sns + " link set vs0 up");
            sh("ip -n " + rns + " link set vr0 up");
        }
    }

    ~Lab() {
        stop_daemon(SIGKILL);
        for (int fd : fds_) ::close(fd);
        for (const auto& d : vaultwall::daemon::pinned_interfaces(pin_root))
            run(in_r(bin("vaultwall-loader") + " detach --dev " + d + " --pin-dir " + pin_root));
        run("ip netns del " + sns);
        run("ip netns del " + rns);
        std::error_code ec;
        fs::remove_all(pin_root, ec);
        fs::remove_all(dir, ec);
        ::rmdir("/sys/fs/bpf/xdp");  // libxdp's lock directory, only when empty
    }

    void sh(const std::string& cmd) {
        auto r = run(cmd);
        if (r.rc != 0) throw std::runtime_error("`" + cmd + "` failed: " + r.out);
    }
    std::string in_r(const std::string& cmd) const { return "nsenter --net=/run/netns/" + rns + " " + cmd; }
    std::string in_s(const std::string& cmd) const { return "nsenter --net=/run/netns/" + sns + " " + cmd; }

    Cmd loader(const std::string& args) { return run(in_r(bin("vaultwall-loader") + " " + args + " --pin-dir " + pin_root)); }
    Cmd ctl(const std::string& args) {
        // Global options go before the subcommand.
        return run(in_r(bin("vaultwallctl") + " --socket " + sock + " --pin-dir " + pin_root + " " + args));
    }

    std::string write_rules(const std::string& name, const std::string& text) {
        std::string p = dir + "/" + name;
        std::ofstream(p) << text;
        return p;
    }

    // Starts vaultwalld in the receiver namespace and waits for its socket.
    void start_daemon(const std::string& config, const std::string& extra = {}) {
        log = dir + "/vaultwalld.log";
        std::string cmd = "exec nsenter --net=/run/netns/" + rns + " " + bin("vaultwalld") + " --config " + config +
                          " --socket " + sock + " --pin-dir " + pin_root + " " + extra + " >>" + log + " 2>&1";
        pid_t pid = ::fork();
        if (pid == 0) {
            // Dies with the test process even when ~Lab does not run (a
            // sanitizer abort, a crash): no daemon left attached holding the
            // test's fds. sh and nsenter exec, so the setting reaches vaultwalld.
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            ::execl("/bin/sh", "sh", "-c", cmd.c_str(), nullptr);
            ::_exit(127);
        }
        daemon_pid = pid;
        for (int i = 0; i < 300; ++i) {
            try {
                if (vaultwall::daemon::control_request(sock, {{"cmd", "ping"}}).value("ok", false)) return;
            } catch (...) {
            }
            int st;
            if (::waitpid(pid, &st, WNOHANG) == pid) {
                daemon_pid = 0;
                throw std::runtime_error("vaultwalld exited at start: " + slurp(log));
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        throw std::runtime_error("vaultwalld did not answer on " + sock);
    }

    void stop_daemon(int sig = SIGTERM) {
        if (daemon_pid <= 0) return;
        ::kill(daemon_pid, sig);
        int st;
        ::waitpid(daemon_pid, &st, 0);
        daemon_pid = 0;
    }

    Json request(const Json& req) { return vaultwall::daemon::control_request(sock, req); }

    // Counters of the receiver's datapath, straight from the pins.
    vaultwall::daemon::Counters counters(const std::string& dev = "vr0") {
        auto dp = vaultwall::bpfmaps::Datapath::open_pinned(pin_root + "/" + dev);
        vaultwall::daemon::Counters c;
        vaultwall::daemon::collect_counters(*dp, vaultwall::daemon::read_vault_names(*dp), c);
        return c;
    }

    int sender(const std::string& dev = "vs0") { return keep(packet_socket(sns, dev)); }
    int receiver(const std::string& dev = "vr0") { return keep(packet_socket(rns, dev)); }
    int keep(int fd) {
        fds_.push_back(fd);
        return fd;
    }

    static std::string slurp(const std::string& p) {
        std::ifstream in(p);
        return std::string(std::istreambuf_iterator<char>(in), {});
    }

    std::string sns, rns, pin_root, dir, sock, log;
    pid_t daemon_pid = 0;

private:
    std::string tag_;
    std::vector<int> fds_;
};

inline void send_frame(int fd, const vaultwall::packet::Bytes& f) {
    for (;;) {
        ssize_t n = ::send(fd, f.data(), f.size(), 0);
        if (n == static_cast<ssize_t>(f.size())) return;
        if (n < 0 && (errno == ENOBUFS || errno == EAGAIN || errno == EINTR)) {
            std::this_thread::sleep_for(std::chrono::microseconds(50));
            continue;
        }
        throw std::runtime_error(std::string("send: ") + std::strerror(errno));
    }
}

// Incoming frames on a packet socket until `quiet_ms` pass without one.
inline std::vector<vaultwall::packet::Bytes> drain(int fd, int quiet_ms = 200) {
    std::vector<vaultwall::packet::Bytes> out;
    std::vector<std::uint8_t> buf(65536);
    for (;;) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, quiet_ms) <= 0) return out;
        sockaddr_ll from{};
        socklen_t fl = sizeof(from);
        ssize_t n = ::recvfrom(fd, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from), &fl);
        if (n <= 0) continue;
        if (from.sll_pkttype == PACKET_OUTGOING) continue;
        out.emplace_back(buf.begin(), buf.begin() + n);
    }
}

// Rule file shared by most tests (SPEC §6 addresses).
//   alpha: 203.0.113.10:443, private 198.19.1.100:443 via prod (VNI 5001);
//          deny, no bypass; ip_rules 192.0.2.0/24; vnet rule prod/app 198.19.1.0/24
//   open:  203.0.113.12:443, default allow
//   bypassv: 203.0.113.11:443, deny + bypass
//   closed: 203.0.113.13:443, public access disabled, no bypass
inline std::string vault_yaml(const std::string& name, const std::string& body) {
    return "  - name: " + name +
           "\n    tenant_id: 3f1c9a52-7d0e-4b8a-9c11-5e2f0a6d4b10"
           "\n    subscription_id: 0b1f6471-1bf0-4dda-aec3-cb9272f09590"
           "\n    location: lab\n    upstream: http://127.0.0.1:8200\n" + body;
}

inline std::string base_rules(const std::string& alpha_ip_rules = "[192.0.2.0/24]", const std::string& extra = {}) {
    return "version: 1\nhost:\n  vteps: [198.18.0.0/24]\n" + extra +
           "vnets:\n  - name: prod\n    vni: 5001\n    subnets:\n      app: 198.19.1.0/24\n"
           "vaults:\n" +
           vault_yaml("alpha",
                      "    endpoints: [203.0.113.10:443]\n"
                      "    private_endpoints:\n      - { vnet: prod, address: 198.19.1.100:443 }\n"
                      "    network_acls:\n      default_action: deny\n      bypass: none\n"
                      "      ip_rules: " + alpha_ip_rules + "\n      virtual_network_rules: [prod/app]\n") +
           vault_yaml("open", "    endpoints: [203.0.113.12:443]\n    network_acls:\n      default_action: allow\n") +
           vault_yaml("bypassv",
                      "    endpoints: [203.0.113.11:443]\n    network_acls:\n      default_action: deny\n"
                      "      bypass: azure_services\n") +
           vault_yaml("closed",
                      "    endpoints: [203.0.113.13:443]\n    public_network_access: disabled\n"
                      "    network_acls:\n      default_action: deny\n      bypass: none\n");
}

}  // namespace vwtest
