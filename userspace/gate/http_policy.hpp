// The gate's HTTP policy, pure: what a request head may look like (framing,
// smuggling, the fields the decision relies on), which read errors get an
// answer, what the upstream is sent, and how a response is put on the wire.
// No I/O: proxy.cpp reads and writes; decision.hpp decides.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/system/error_code.hpp>

namespace vaultwall::gate {

using Request = boost::beast::http::request<boost::beast::http::string_body>;
using Response = boost::beast::http::response<boost::beast::http::string_body>;

// An answer the gate gives before (or instead of) a decision. The
// connection is closed after it: the rest of the request is not read.
struct Refusal {
    unsigned status = 400;
    const char* code = "BadParameter";  // Key Vault's outer error code
    const char* reason = "";           // the audit reason
    const char* message = "";
};

// The request head: exactly one framing spelled one way (no CL+TE, no list
// or repeated Content-Length, TE only "chunked" on HTTP/1.1), a known
// method, no fragment in the target, at most one Authorization, and the
// Host RFC 9112 §3.2 requires. nullopt: acceptable.
std::optional<Refusal> check_head(const boost::beast::http::request_header<>& head);

// A read error of a request: the answer (431, 413, 400), or nullopt for a
// silent close (EOF, timeout, reset, TLS failure, nothing received).
std::optional<Refusal> refusal_for(boost::system::error_code ec, bool got_some);

// Beast appends chunked trailer fields to the header fields; RFC 9110 §6.5.1
// forbids merging them, so a request whose field count grew after its head
// was read (`head_fields`) is refused.
std::optional<Refusal> check_trailers(const Request& req, std::size_t head_fields);
std::size_t field_count(const boost::beast::http::request_header<>& head);

// Makes `req` the request the upstream gets: hop-by-hop fields (and those
// Connection names) and the method-override fields removed, the normalised
// `target` the gate authorised, a Host when HTTP/1.0 sent none, X-Forwarded-
// For/-Proto, HTTP/1.1 keep-alive, the length of the body.
void to_upstream(Request& req, std::string_view target, std::string_view client, std::string_view default_host);
// Makes the upstream's `res` the client's answer: hop-by-hop fields
// removed, HTTP/1.1, `network_info` as x-ms-keyvault-network-info, keep-alive
// or Connection: close.
void from_upstream(Response& res, std::string_view network_info, bool keep_alive);

// Serialise a message into `out`, replacing what `out` held (its capacity is
// reused): start line, fields, body in one buffer, one write. A response's
// Content-Length is set here; a request's by to_upstream().
void serialize(Response& res, std::string& out);
void serialize(const Request& req, std::string& out);
// An answer without a Response object: status line, the JSON content type,
// `network_info`, `www_authenticate` when not empty, Connection: close when
// `close`, and the body. Every error answer of the gate is built here.
void serialize_error(unsigned status, std::string_view body, std::string_view network_info,
                     std::string_view www_authenticate, bool close, std::string& out);

}  // namespace vaultwall::gate
