#include "gate/request_handler.hpp"

#include <algorithm>

#include "gate/audit.hpp"
#include "gate/gate_state.hpp"

namespace vaultwall::gate {

namespace http = boost::beast::http;

namespace {
// The wire buffer an idle connection keeps: most answers fit, so a
// keep-alive connection does not allocate per request; a larger one is given
// back once written.
constexpr std::size_t kKeptWire = 4 * 1024;

std::string_view sv(boost::beast::string_view s) { return {s.data(), s.size()}; }
}  // namespace

namespace {
IpAddress address_of(const boost::asio::ip::address& a) {
    namespace ip = boost::asio::ip;
    if (a.is_v4()) return a.to_v4().to_uint();
    const ip::address_v6 v6 = a.to_v6();
    if (v6.is_v4_mapped()) return ip::make_address_v4(ip::v4_mapped, v6).to_uint();
    return IpAddress(v6.to_bytes());
}
}  // namespace

std::optional<Peer> Peer::of(const boost::asio::ip::tcp::endpoint& local, const boost::asio::ip::tcp::endpoint& remote,
                             const GateConfig& cfg) {
    Peer p;
    p.local = {address_of(local.address()), local.port()};
    p.client = address_of(remote.address());
    if (p.client.is_v6() != p.local.addr.is_v6()) return std::nullopt;
    p.client_port = remote.port();
    p.client_str = p.client.str();
    p.network_info = "addr=" + p.client_str +
                     (p.client.is_v6() ? ";act_addr_fam=InterNetworkV6;" : ";act_addr_fam=InterNetwork;");
    if (cfg.admission)
        p.record = p.client.is_v6()
                       ? cfg.admission->lookup6(p.client.v6(), p.client_port, p.local.addr.v6(), p.local.port)
                       : cfg.admission->lookup(p.client.v4(), p.client_port, p.local.addr.v4(), p.local.port);
    return p;
}

// The vault this connection reaches under cfg and its admission: both depend
// only on the connection (its datapath record) and the config, so they are
// resolved (vault_name_of: bpf map lookups) once per connection and config,
// not per request.
const rules::Vault* RequestHandler::vault(const GateConfig& cfg) {
    if (!routed_) {
        route_ = cfg.route(peer_.local, peer_.record);
        vault_ = route_ ? &cfg.vaults[route_->vault] : nullptr;
        if (vault_)
            admission_ = resolve_admission(peer_.record, cfg.vault_name_of, *vault_, peer_.client, route_->is_private);
        routed_ = true;
    }
    return vault_;
}

void RequestHandler::handle(const GateConfig& cfg, UpstreamPool& pool, Request req, std::shared_ptr<Responder> to) {
    st_.count.requests++;
    note_request_line(req);
    keep_alive_ = req.keep_alive();
    const rules::Vault* vault = this->vault(cfg);
    if (!vault) {
        answer_error(503, error_body("ServiceUnavailable", "No vault is served on this endpoint."), {}, true);
        return to->respond(true);
    }
    RequestFacts facts;
    facts.method = sv(req.method_string());
    facts.target = sv(req.target());
    if (auto it = req.find(http::field::authorization); it != req.end()) facts.authorization = sv(it->value());
    facts.client = peer_.client;
    Decision d = decide(DecisionContext{*vault, cfg.identity, cfg.catalog, *cfg.jwt}, facts, admission_);
    if (!d.allow) {
        st_.count.denied++;
        audit(d, d.reason, d.status);
        answer_error(d.status, d.body(), d.www_authenticate, !keep_alive_);
        return to->respond(!keep_alive_);
    }
    st_.count.allowed++;
    forward(cfg, pool, std::move(req), std::move(d), std::move(to));
}

void RequestHandler::forward(const GateConfig& cfg, UpstreamPool& pool, Request req, Decision d,
                             std::shared_ptr<Responder> to) {
    decision_ = std::move(d);
    const Upstream& upstream = cfg.upstreams[route_->vault];
    to_upstream(req, decision_.target, peer_.client_str, upstream.key());
    serialize(req, wire_);
    // The pool is this thread's: the callback runs here, no hop. `to` keeps
    // this handler alive until it has.
    pool.forward(upstream, std::move(wire_), cfg.limits,
                 [this, to = std::move(to)](UpstreamFailure f, Response r, std::string wire) {
                     wire_ = std::move(wire);
                     on_upstream(f, std::move(r));
                     to->respond(!keep_alive_);
                 });
}

void RequestHandler::on_upstream(UpstreamFailure f, Response r) {
    if (f != UpstreamFailure::none) {
        st_.count.upstream_errors++;
        bool timeout = f == UpstreamFailure::timeout;
        unsigned status = timeout ? 504 : 502;
        audit(decision_, decision_.reason + (timeout ? ";upstream_timeout" : ";upstream_unavailable"), status);
        return answer_error(status,
                            error_body(timeout ? "GatewayTimeout" : "BadGateway",
                                       timeout ? "The vault did not answer in time." : "The vault is unavailable."),
                            {}, !keep_alive_);
    }
    audit(decision_, decision_.reason, r.result_int());
    from_upstream(r, peer_.network_info, keep_alive_);
    serialize(r, wire_);
}

void RequestHandler::refuse(const GateConfig& cfg, const Refusal& r, const http::request_header<>* head) {
    st_.count.protocol_errors++;
    if (head) note_request_line(*head);
    vault(cfg);
    audit(Decision{}, r.reason, r.status);
    answer_error(r.status, error_body(r.code, r.message), {}, true);
}

void RequestHandler::answer_error(unsigned status, const std::string& body, std::string_view www_authenticate,
                                  bool close) {
    serialize_error(status, body, peer_.network_info, www_authenticate, close, wire_);
}

void RequestHandler::idle() {
    decision_ = {};
    if (wire_.capacity() > kKeptWire) std::string().swap(wire_);
}

// One audit line for this request. `d` gives operation, caller and reason
// (its allow flag the decision); `status` is what was answered.
void RequestHandler::audit(const Decision& d, std::string_view reason, unsigned status) {
    AuditRecord a;
    a.client = peer_.client_str;
    a.vni = peer_.record ? peer_.record->vni : 0;
    if (vault_ && routed_) {
        a.vault = vault_->name;
        a.vni = admission_.vni;
    }
    a.operation = d.operation;
    a.caller = d.caller;
    a.decision = !d.allow ? "deny" : d.audit ? "audit" : "allow";
    a.reason = reason;
    a.status = status;
    a.method = method_;
    a.path = path_;
    st_.audit.write(a);
}

// Remembers what the audit line names while the request itself goes on (to
// the upstream, or away).
void RequestHandler::note_request_line(const http::request_header<>& h) {
    auto m = h.method_string();
    auto t = h.target();
    method_.assign(m.data(), m.size());
    path_.assign(t.data(), std::min(t.size(), t.find('?')));
}

}  // namespace vaultwall::gate
