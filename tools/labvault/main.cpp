// vaultwall-labvault --listen IP:PORT --data DIR
// A small Key Vault REST-compatible stand-in vault (plain HTTP; the gate in
// front terminates TLS). Secrets and RSA keys, persisted under DIR.
#include <csignal>
#include <cstdio>
#include <iostream>
#include <thread>

#include <CLI/CLI.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "gate/json_text.hpp"
#include "lab_pki.hpp"
#include "store.hpp"

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {

std::vector<std::string> split_path(beast::string_view target) {
    auto q = target.find('?');
    beast::string_view path = target.substr(0, q);
    std::vector<std::string> out;
    size_t i = 0;
    while (i < path.size()) {
        if (path[i] == '/') {
            ++i;
            continue;
        }
        size_t j = path.find('/', i);
        if (j == beast::string_view::npos) j = path.size();
        out.emplace_back(path.substr(i, j - i));
        i = j;
    }
    // Literal path parts are case-insensitive in Key Vault; names are kept as sent.
    auto lower = [](std::string v) {
        for (auto& c : v) c = static_cast<char>(std::tolower((unsigned char)c));
        return v;
    };
    if (!out.empty()) out[0] = lower(out[0]);
    static const char* kw[] = {"versions", "backup", "restore", "wrapkey", "unwrapkey", "encrypt", "decrypt", "create"};
    if (out.size() >= 2)
        for (auto k : kw)
            if (lower(out.back()) == k) out.back() = k;
    return out;
}

void serve(tcp::socket sock, labvault::Store& store) {
    struct timeval tv {30, 0};
    setsockopt(sock.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(sock.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    beast::flat_buffer buf;
    beast::error_code ec;
    for (;;) {
        http::request_parser<http::string_body> parser;
        parser.body_limit(1024 * 1024);
        parser.header_limit(64 * 1024);
        http::read(sock, buf, parser, ec);
        if (ec) break;
        auto req = parser.release();
        std::string host(req[http::field::host]);
        if (host.empty()) host = "localhost";
        auto segs = split_path(req.target());
        labvault::Reply r = store.handle(std::string(req.method_string()), segs, req.body(), "https://" + host);
        http::response<http::string_body> res{static_cast<http::status>(r.status), req.version()};
        res.set(http::field::content_type, "application/json; charset=utf-8");
        res.set(http::field::server, "vaultwall-labvault");
        res.body() = vaultwall::gate::json_text(r.body);  // the Host header may be any bytes
        res.keep_alive(req.keep_alive());
        res.prepare_payload();
        http::write(sock, res, ec);
        if (ec || !res.keep_alive()) break;
    }
    sock.shutdown(tcp::socket::shutdown_both, ec);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc > 1 && labvault::is_pki_command(argv[1])) return labvault::run_pki_command(argc - 1, argv + 1);
    CLI::App app{"vaultwall-labvault: a Key Vault REST-compatible stand-in vault for labs and tests (plain HTTP). "
                 "Also `vaultwall-labvault pki|jwks|mint --help`: the lab's certificates, JWKS and tokens"};
    std::string listen, data;
    app.add_option("--listen", listen, "IP:PORT to listen on (e.g. 127.0.0.1:8200, [::1]:8200)")->required();
    app.add_option("--data", data, "directory where secrets and keys are persisted")->required();
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::fprintf(stderr, "vaultwall-labvault: %s (see --help)\n", e.what());
        return 2;
    }
    auto colon = listen.rfind(':');
    boost::system::error_code ec;
    net::ip::address addr;
    unsigned long port = 0;
    if (colon != std::string::npos) {
        std::string host = listen.substr(0, colon);
        if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
        addr = net::ip::make_address(host, ec);
        try {
            size_t used = 0;
            port = std::stoul(listen.substr(colon + 1), &used);
            if (used != listen.size() - colon - 1) port = 0;
        } catch (...) {
            port = 0;
        }
    }
    if (colon == std::string::npos || ec || port == 0 || port > 65535) {
        std::fprintf(stderr, "vaultwall-labvault: --listen must be IP:PORT, got '%s'\n", listen.c_str());
        return 2;
    }
    std::signal(SIGPIPE, SIG_IGN);
    try {
        labvault::Store store(data);
        net::io_context ioc;
        tcp::acceptor acc(ioc);
        tcp::endpoint ep(addr, static_cast<unsigned short>(port));
        acc.open(ep.protocol());
        acc.set_option(net::socket_base::reuse_address(true));
        acc.bind(ep);
        acc.listen();
        std::fprintf(stderr, "vaultwall-labvault: listening on %s, data in %s\n", listen.c_str(), data.c_str());
        for (;;) {
            tcp::socket s(ioc);
            acc.accept(s, ec);
            if (ec) continue;
            std::thread(serve, std::move(s), std::ref(store)).detach();
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "vaultwall-labvault: %s\n", e.what());
        return 1;
    }
}
