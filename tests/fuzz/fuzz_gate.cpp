// The gate's request path on arbitrary bytes, end to end: the real Gate
// (TLS, Beast's HTTP parser with the gate's limits, framing checks, the
// operation table, the decision, the forward) in this process, with a
// recording upstream. Each input is the plaintext a client sends on one TLS
// connection (any number of requests, any bytes); the harness sends it, says
// close_notify, and reads until the gate closes.
//
// Properties, besides never crashing:
//  - every request the upstream receives was authorised: the gate's audit log
//    has one "allow" line for it, in order, with the same method;
//  - the operation the upstream would perform is the one authorised: the
//    forwarded target, read as a lenient upstream reads it (query cut at '?'
//    but a '#' kept, %2E / %2F decoded, dot segments resolved), classifies
//    to the audited operation on the same object;
//  - what is forwarded carries one Host, at most one Authorization and no
//    method-override header (the gate authorised the real method).
//
// Valid tokens cannot be committed (the keys are made per process), so the
// input's placeholders $TOKEN_APP (secrets get/list/set, keys
// get/wrapKey/unwrapKey), $TOKEN_KEYS (keys only) and $TOKEN_EXPIRED are
// replaced by freshly signed tokens before sending.
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include <utility>  // before Boost 1.74 asio
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "../gate/support.hpp"
#include "common.hpp"
#include "gate/operations.hpp"
#include "gate/proxy.hpp"

using namespace vaultwall;
using namespace vaultwall::gate;
using namespace std::chrono_literals;
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;

namespace {

constexpr std::uint32_t kLoop = 0x7F000001;

// What the upstream received.
struct Seen {
    std::string method, target;
    int hosts = 0, authorizations = 0, overrides = 0;
};

// A plain HTTP/1.1 vault stand-in on 127.0.0.1 that records every request
// and answers 200 {} (keep-alive): blocking sockets, a thread per connection.
// It stops in order (the destructor wakes and waits for every thread it
// started): at exit, a thread still in accept() once built a socket on the
// destroyed io_context, an ASan heap-use-after-free after the last input
// (saved as an empty crash input; docs/hardening.md).
class RecordingUpstream {
public:
    RecordingUpstream() : acc_(ioc_, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)) {
        port = acc_.local_endpoint().port();
        acceptor_ = std::thread([this] { accept_loop(); });
    }
    ~RecordingUpstream() {
        std::unique_lock lock(mu_);
        stopping_ = true;
        ::shutdown(acc_.native_handle(), SHUT_RDWR);  // accept() returns EINVAL
        for (tcp::socket* s : open_) ::shutdown(s->native_handle(), SHUT_RDWR);  // read() returns 0
        lock.unlock();
        acceptor_.join();
        lock.lock();
        idle_.wait(lock, [this] { return serving_ == 0; });
    }
    std::vector<Seen> take() {
        std::lock_guard lock(mu_);
        return std::exchange(seen_, {});
    }
    std::uint16_t port = 0;

private:
    void accept_loop() {
        for (;;) {
            auto s = std::make_shared<tcp::socket>(ioc_);
            boost::system::error_code ec;
            acc_.accept(*s, ec);
            std::lock_guard lock(mu_);
            if (stopping_) return;
            if (ec) continue;
            open_.insert(s.get());
            ++serving_;
            std::thread([this, s]() mutable {
                serve(*s);
                {
                    std::lock_guard lock(mu_);
                    open_.erase(s.get());
                }
                s.reset();  // closes it while ioc_ is alive (the destructor waits for this)
                std::lock_guard lock(mu_);
                if (--serving_ == 0) idle_.notify_all();
            }).detach();
        }
    }
    void serve(tcp::socket& s) {
        beast::flat_buffer buf;
        for (;;) {
            http::request_parser<http::string_body> p;
            p.body_limit(64 << 20);
            p.header_limit(1 << 20);
            boost::system::error_code ec;
            http::read(s, buf, p, ec);
            if (ec) return;
            auto& req = p.get();
            Seen seen;
            seen.method = std::string(req.method_string());
            seen.target = std::string(req.target());
            for (const auto& f : req) {
                std::string name(f.name_string());
                for (auto& c : name) c = char(std::tolower(static_cast<unsigned char>(c)));
                seen.hosts += name == "host";
                seen.authorizations += name == "authorization";
                seen.overrides += name == "x-http-method-override" || name == "x-http-method" ||
                                  name == "x-method-override";
            }
            {
                std::lock_guard lock(mu_);
                seen_.push_back(std::move(seen));
            }
            static const std::string ok = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
            net::write(s, net::buffer(ok), ec);
            if (ec) return;
        }
    }

    net::io_context ioc_;
    tcp::acceptor acc_;
    std::thread acceptor_;
    std::mutex mu_;
    std::condition_variable idle_;  // serving_ reached 0
    bool stopping_ = false;
    std::set<tcp::socket*> open_;   // connections being served (for the destructor's shutdown)
    int serving_ = 0;               // serving threads still running
    std::vector<Seen> seen_;
};

struct AlwaysIpRule : AdmissionSource {
    std::optional<vw_admission> lookup(std::uint32_t, std::uint16_t, std::uint32_t, std::uint16_t) override {
        vw_admission a{};
        a.vault_id = 1;
        a.reason = VW_PASS_IP_RULE;
        return a;
    }
};

struct World {
    std::string dir = vwtest::temp_dir("fuzz-gate");
    std::string audit = dir + "/audit.jsonl";
    RecordingUpstream upstream;
    std::unique_ptr<Gate> gate;
    std::uint16_t port = 0;
    SSL_CTX* client = nullptr;
    SSL_SESSION* session = nullptr;  // resumed: a full handshake per input costs more than the request
    std::string token_app, token_keys, token_expired;

    World() {
        signal(SIGPIPE, SIG_IGN);
        vwtest::make_lab_pki(dir);
        vwtest::write_file(dir + "/jwks.json", vwtest::keys().jwks);
        port = vwtest::free_port();
        rules::RuleFile rf;
        rf.path = dir + "/rules.yaml";
        rf.identity = vwtest::identity(dir + "/jwks.json");
        rf.trusted_services = vwtest::catalog();
        rf.gate = rules::Gate{dir + "/server.pem", dir + "/server.key", audit};
        auto v = vwtest::vault(kLoop, port);
        v.upstream = "http://127.0.0.1:" + std::to_string(upstream.port);
        rf.vaults.push_back(v);
        GateOptions o;
        // Short limits: an input that stops mid-request costs little.
        o.limits.handshake_timeout = 2000ms;
        o.limits.read_timeout = 1000ms;
        o.limits.idle_timeout = 1000ms;
        o.limits.upstream_timeout = 1000ms;
        o.limits.upstream_connect_timeout = 1000ms;
        o.admission = std::make_shared<AlwaysIpRule>();
        o.vault_name_of = [](std::uint32_t id) { return id == 1 ? std::string("contoso-prod") : std::string(); };
        gate = std::make_unique<Gate>(GateConfig::build(rf, o), 1);
        gate->start();

        client = SSL_CTX_new(TLS_client_method());
        SSL_CTX_set_verify(client, SSL_VERIFY_NONE, nullptr);
        SSL_CTX_set_session_cache_mode(client, SSL_SESS_CACHE_CLIENT);

        auto claims = vwtest::base_claims();
        claims["exp"] = vwtest::now_s() + 30 * 86400;  // outlives a long run
        token_app = vwtest::token(claims);
        auto storage = vwtest::base_claims(vwtest::kOidStorage, vwtest::kAppStorage);
        storage["exp"] = claims["exp"];
        token_keys = vwtest::token(storage, "ES256", "ec1");
        auto old = vwtest::base_claims();
        old["exp"] = vwtest::now_s() - 3600;
        token_expired = vwtest::token(old);
    }

    std::string substitute(std::string s) const {
        for (auto [from, to] : {std::pair<const char*, const std::string*>{"$TOKEN_APP", &token_app},
                                {"$TOKEN_KEYS", &token_keys}, {"$TOKEN_EXPIRED", &token_expired}})
            for (auto at = s.find(from); at != std::string::npos; at = s.find(from, at + to->size()))
                s.replace(at, std::strlen(from), *to);
        return s;
    }

    // Sends `bytes` on a fresh TLS connection, then close_notify; reads
    // until the gate closes (bounded by a receive timeout).
    void send(const std::string& bytes) {
        int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(kLoop);
        timeval tv{5, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
            ::close(fd);
            return;
        }
        SSL* ssl = SSL_new(client);
        SSL_set_fd(ssl, fd);
        if (session) SSL_set_session(ssl, session);
        if (SSL_connect(ssl) == 1) {
            std::size_t off = 0;
            while (off < bytes.size()) {
                int n = SSL_write(ssl, bytes.data() + off, int(std::min<std::size_t>(bytes.size() - off, 16384)));
                if (n <= 0) break;
                off += std::size_t(n);
            }
            SSL_shutdown(ssl);  // our close_notify: the request stream ends here
            char buf[16384];
            while (SSL_read(ssl, buf, sizeof buf) > 0) {
            }
            if (SSL_SESSION* s = SSL_get1_session(ssl)) {
                if (session) SSL_SESSION_free(session);
                session = s;
            }
        }
        SSL_free(ssl);
        ::close(fd);
        ERR_clear_error();
    }

    // The audit lines written since the last call (the file is emptied).
    std::vector<nlohmann::json> audit_lines() {
        gate->flush_audit();
        std::vector<nlohmann::json> out;
        std::ifstream in(audit);
        std::string line;
        while (std::getline(in, line))
            if (!line.empty()) out.push_back(nlohmann::json::parse(line));
        in.close();
        ::truncate(audit.c_str(), 0);  // the log appends (O_APPEND): safe to empty
        return out;
    }
};

World& world() {
    static World w;
    return w;
}

int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    c = char(std::tolower(static_cast<unsigned char>(c)));
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

// The path a lenient upstream would act on (see the header comment).
std::string upstream_path(std::string_view target) {
    target = target.substr(0, target.find('?'));
    std::string decoded;
    for (std::size_t i = 0; i < target.size(); ++i) {
        if (target[i] == '%' && i + 2 < target.size() && hexval(target[i + 1]) >= 0 && hexval(target[i + 2]) >= 0) {
            char c = char(hexval(target[i + 1]) * 16 + hexval(target[i + 2]));
            if (c == '.' || c == '/') {
                decoded += c;
                i += 2;
                continue;
            }
        }
        decoded += target[i];
    }
    // RFC 3986 §5.2.4 remove_dot_segments, on whole segments.
    std::vector<std::string> out;
    std::size_t at = 0;
    bool trailing = false;
    while (at <= decoded.size()) {
        auto end = decoded.find('/', at);
        if (end == std::string::npos) end = decoded.size();
        std::string seg = decoded.substr(at, end - at);
        trailing = false;
        if (seg == "..") {
            if (!out.empty()) out.pop_back();
            trailing = true;
        } else if (seg == ".") {
            trailing = true;
        } else if (!(seg.empty() && at == 0)) {
            out.push_back(seg);
        }
        at = end + 1;
    }
    std::string path;
    for (const auto& s : out) path += "/" + s;
    if (trailing || path.empty()) path += "/";
    return path;
}

bool iequal(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    world();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size > 64 * 1024) return 0;
    World& w = world();
    w.send(w.substitute(std::string(fuzz::as_text(data, size))));
    const std::vector<Seen> seen = w.upstream.take();
    std::vector<nlohmann::json> allowed;
    for (auto& line : w.audit_lines())
        if ((line.value("decision", "") == "allow" || line.value("decision", "") == "audit") &&
            line.value("status", 0) != 502 && line.value("status", 0) != 504)
            allowed.push_back(std::move(line));
    FUZZ_CHECK(seen.size() == allowed.size(), "upstream received %zu requests, the audit log allowed %zu",
               seen.size(), allowed.size());
    for (std::size_t i = 0; i < seen.size(); ++i) {
        const Seen& s = seen[i];
        const auto& a = allowed[i];
        const std::string op_name = a.value("operation", "");
        FUZZ_CHECK(s.method == a.value("method", ""), "forwarded %s, authorised %s", s.method.c_str(),
                   a.value("method", "").c_str());
        const std::string path = upstream_path(s.target);
        auto op = classify(s.method, path);
        auto authorised = classify(a.value("method", ""), a.value("path", ""));
        FUZZ_CHECK(op && op->name == op_name, "forwarded %s %s (upstream reads %s: %s), authorised %s",
                   s.method.c_str(), s.target.c_str(), path.c_str(), op ? op->name.c_str() : "no operation",
                   op_name.c_str());
        FUZZ_CHECK(authorised && iequal(op->object, authorised->object), "forwarded %s %s acts on '%s', authorised '%s'",
                   s.method.c_str(), s.target.c_str(), op->object.c_str(), authorised ? authorised->object.c_str() : "?");
        FUZZ_CHECK(s.hosts == 1, "forwarded with %d Host headers: %s %s", s.hosts, s.method.c_str(), s.target.c_str());
        FUZZ_CHECK(s.authorizations <= 1, "forwarded with %d Authorization headers", s.authorizations);
        FUZZ_CHECK(s.overrides == 0, "forwarded a method-override header: %s %s", s.method.c_str(), s.target.c_str());
    }
    return 0;
}
