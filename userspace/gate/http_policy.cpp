#include "gate/http_policy.hpp"

#include <charconv>
#include <iterator>
#include <vector>

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <boost/beast/http/status.hpp>

namespace vaultwall::gate {
namespace {

namespace http = boost::beast::http;
namespace net = boost::asio;
using boost::beast::string_view;

constexpr Refusal kSmuggling{400, "BadParameter", "request_smuggling",
                             "Conflicting or unsupported message framing (Content-Length / Transfer-Encoding)."};

bool is_hop_by_hop(http::field f) {
    switch (f) {
    case http::field::connection:
    case http::field::keep_alive:
    case http::field::proxy_connection:
    case http::field::proxy_authenticate:
    case http::field::proxy_authorization:
    case http::field::te:
    case http::field::trailer:
    case http::field::transfer_encoding:
    case http::field::upgrade:
    case http::field::expect:
        return true;
    default:
        return false;
    }
}

template <class Fields>
void strip_hop_by_hop_fields(Fields& m) {
    // Also the fields a Connection header names.
    std::vector<std::string> named;
    for (auto it = m.find(http::field::connection); it != m.end() && it->name() == http::field::connection; ++it)
        for (auto tok : http::token_list{it->value()}) named.emplace_back(tok);
    for (const auto& n : named) m.erase(n);
    for (auto it = m.begin(); it != m.end();) {
        if (is_hop_by_hop(it->name()))
            it = m.erase(it);
        else
            ++it;
    }
}

void append_uint(std::string& out, std::size_t v) {
    char b[24];
    auto r = std::to_chars(b, b + sizeof b, v);
    out.append(b, r.ptr);
}

void append_status_line(std::string& out, unsigned status, string_view reason) {
    out += "HTTP/1.1 ";
    append_uint(out, status);
    out += ' ';
    out.append(reason.data(), reason.size());
    out += "\r\n";
}

template <class Message>
void append_fields_and_body(std::string& out, const Message& m) {
    for (const auto& f : m) {
        auto n = f.name_string();
        auto v = f.value();
        out.append(n.data(), n.size());
        out += ": ";
        out.append(v.data(), v.size());
        out += "\r\n";
    }
    out += "\r\n";
    out += m.body();
}

}  // namespace

std::optional<Refusal> check_head(const http::request_header<>& req) {
    auto cl = req.equal_range(http::field::content_length);
    auto te = req.equal_range(http::field::transfer_encoding);
    auto n_cl = std::distance(cl.first, cl.second);
    auto n_te = std::distance(te.first, te.second);
    bool bad = n_cl > 1 || (n_cl && n_te) || n_te > 1;
    if (n_cl == 1) {
        auto v = cl.first->value();
        bad = bad || v.empty() || v.find_first_not_of("0123456789") != string_view::npos;
    }
    if (n_te == 1) bad = bad || !boost::beast::iequals(te.first->value(), "chunked") || req.version() < 11;
    if (bad) return kSmuggling;
    if (req.method() == http::verb::unknown)  // an extension method, or "get": none is Key Vault's
        return Refusal{501, "NotImplemented", "unknown_method", "The request method is not supported."};
    if (req.target().find('#') != string_view::npos)
        return Refusal{400, "BadParameter", "fragment_in_target",
                       "The request target must not contain a fragment ('#')."};
    // One identity per request: the one the gate authenticates is the one forwarded.
    if (req.count(http::field::authorization) > 1)
        return Refusal{400, "BadParameter", "duplicate_authorization",
                       "The request has more than one Authorization header."};
    // RFC 9112 §3.2: HTTP/1.1 has exactly one Host; HTTP/1.0 at most one.
    std::size_t hosts = req.count(http::field::host);
    if (hosts > 1 || (hosts == 0 && req.version() >= 11))
        return Refusal{400, "BadParameter", "bad_host", "The request must have exactly one Host header."};
    return std::nullopt;
}

std::optional<Refusal> refusal_for(boost::system::error_code ec, bool got_some) {
    if (ec == http::error::header_limit)
        return Refusal{431, "BadParameter", "header_too_large", "Request header fields too large."};
    if (ec == http::error::body_limit) return Refusal{413, "BadParameter", "body_too_large", "Request body too large."};
    if (ec == http::error::bad_content_length || ec == http::error::bad_transfer_encoding) return kSmuggling;
    if (ec == http::error::end_of_stream || ec == boost::beast::error::timeout || ec == net::error::eof ||
        ec == net::ssl::error::stream_truncated || ec == net::error::operation_aborted ||
        ec == net::error::connection_reset || ec == net::error::bad_descriptor ||
        ec.category() == net::error::get_ssl_category() || !got_some)
        return std::nullopt;
    return Refusal{400, "BadParameter", "bad_request", "The request is malformed."};
}

std::size_t field_count(const http::request_header<>& head) {
    return static_cast<std::size_t>(std::distance(head.begin(), head.end()));
}

std::optional<Refusal> check_trailers(const Request& req, std::size_t head_fields) {
    if (field_count(req) == head_fields) return std::nullopt;
    return Refusal{400, "BadParameter", "trailer_fields", "Trailer fields are not accepted."};
}

void to_upstream(Request& up, std::string_view target, std::string_view client, std::string_view default_host) {
    strip_hop_by_hop_fields(up);
    // What was authorised is the real method on the normalised target.
    for (const char* f : {"X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"}) up.erase(f);
    up.target(string_view(target.data(), target.size()));
    if (up.find(http::field::host) == up.end()) up.set(http::field::host, string_view(default_host.data(), default_host.size()));
    up.version(11);
    up.set("X-Forwarded-For", string_view(client.data(), client.size()));
    up.set("X-Forwarded-Proto", "https");
    up.keep_alive(true);
    up.prepare_payload();
}

void from_upstream(Response& res, std::string_view network_info, bool keep_alive) {
    strip_hop_by_hop_fields(res);
    res.version(11);
    res.set("x-ms-keyvault-network-info", string_view(network_info.data(), network_info.size()));
    res.keep_alive(keep_alive);
}

void serialize(Response& res, std::string& out) {
    res.prepare_payload();
    out.clear();
    append_status_line(out, res.result_int(), res.reason());
    append_fields_and_body(out, res);
}

void serialize(const Request& req, std::string& out) {
    out.clear();
    auto m = req.method_string();
    auto t = req.target();
    out.append(m.data(), m.size());
    out += ' ';
    out.append(t.data(), t.size());
    out += req.version() == 10 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n";
    append_fields_and_body(out, req);
}

void serialize_error(unsigned status, std::string_view body, std::string_view network_info,
                     std::string_view www_authenticate, bool close, std::string& out) {
    out.clear();
    append_status_line(out, status, http::obsolete_reason(static_cast<http::status>(status)));
    out += "Content-Type: application/json; charset=utf-8\r\n";
    if (!www_authenticate.empty()) {
        out += "WWW-Authenticate: ";
        out += www_authenticate;
        out += "\r\n";
    }
    out += "x-ms-keyvault-network-info: ";
    out += network_info;
    out += "\r\n";
    if (close) out += "Connection: close\r\n";
    out += "Content-Length: ";
    append_uint(out, body.size());
    out += "\r\n\r\n";
    out += body;
}

}  // namespace vaultwall::gate
