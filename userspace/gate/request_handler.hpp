// What the gate does with one request of a connection, knowing nothing of
// TLS, parsing or deadlines (connection.hpp does those): which vault the
// connection reaches and how it was admitted, the decision (decide(),
// decision.hpp: pure), the audit line, and either the gate's own answer or
// the request forwarded to the vault's upstream (upstream.hpp) with its
// response passed back. Internal to the gate.
//
// Every answer is serialised once into the handler's wire buffer, one per
// connection and reused from request to request; while a request is
// forwarded the same buffer carries it to the upstream.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/ip/tcp.hpp>

#include "gate/config.hpp"
#include "gate/decision.hpp"
#include "gate/http_policy.hpp"
#include "gate/upstream.hpp"

namespace vaultwall::gate {

class GateState;

// The two ends of a client connection, resolved once after accept().
struct Peer {
    ListenKey local;                   // the endpoint the client reached
    IpAddress client;
    std::uint16_t client_port = 0;
    std::string client_str;            // "192.0.2.9", "2001:db8::9"
    std::string network_info;          // x-ms-keyvault-network-info
    std::optional<vw_admission> record;  // the datapath's admission record of the 4-tuple

    // An IPv4-mapped IPv6 address counts as the IPv4 address it maps.
    // nullopt: the two ends are of different families.
    static std::optional<Peer> of(const boost::asio::ip::tcp::endpoint& local,
                                  const boost::asio::ip::tcp::endpoint& remote, const GateConfig& cfg);
};

// The connection's side of an answer: write RequestHandler::wire(), then
// close the connection or read the next request.
class Responder {
public:
    virtual void respond(bool close) = 0;

protected:
    ~Responder() = default;
};

class RequestHandler {
public:
    RequestHandler(GateState& st, Peer peer) : st_(st), peer_(std::move(peer)) {}

    // The connection moved to a newer config: what was resolved under the
    // old one (route, admission) is resolved again.
    void config_changed() { routed_ = false; }

    // Answers `req` (its framing already checked, http_policy.hpp) into
    // wire(), then calls `to->respond(close)`: before returning for an
    // answer of the gate's own, later and on this thread for a forwarded
    // request. `to` is what keeps the connection (and this handler) alive
    // meanwhile; `cfg` must live until then too.
    void handle(const GateConfig& cfg, UpstreamPool& pool, Request req, std::shared_ptr<Responder> to);
    // A request the HTTP policy refused; `head` is what was read of it (null:
    // nothing). Audited and answered into wire(), with Connection: close.
    void refuse(const GateConfig& cfg, const Refusal& r, const boost::beast::http::request_header<>* head);

    // The answer to write.
    const std::string& wire() const { return wire_; }
    // Between requests: keeps no per-request memory beyond a small wire buffer.
    void idle();

private:
    const rules::Vault* vault(const GateConfig& cfg);
    void forward(const GateConfig& cfg, UpstreamPool& pool, Request req, Decision d, std::shared_ptr<Responder> to);
    void on_upstream(UpstreamFailure f, Response r);
    void answer_error(unsigned status, const std::string& body, std::string_view www_authenticate, bool close);
    void audit(const Decision& d, std::string_view reason, unsigned status);
    void note_request_line(const boost::beast::http::request_header<>& h);

    GateState& st_;
    Peer peer_;
    std::string wire_;
    Decision decision_;          // of the request being forwarded
    bool keep_alive_ = true;     // of the request being answered
    std::string method_, path_;  // of the current request, for its audit line
    // vault(): valid while routed_ (reset with every new config).
    bool routed_ = false;
    const VaultRoute* route_ = nullptr;
    const rules::Vault* vault_ = nullptr;
    Admission admission_;
};

}  // namespace vaultwall::gate
