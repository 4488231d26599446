#include "gate/config.hpp"

#include <algorithm>

#include <boost/asio/ssl.hpp>

#include "rules/ipv6.hpp"

namespace vaultwall::gate {

Upstream parse_upstream(const std::string& url) {
    const std::string scheme = "http://";
    if (url.compare(0, scheme.size(), scheme) != 0)
        throw GateConfigError("upstream '" + url + "': only http://host:port upstreams are supported");
    std::string rest = url.substr(scheme.size());
    while (!rest.empty() && rest.back() == '/') rest.pop_back();
    if (rest.empty() || rest.find('/') != std::string::npos || rest.find('@') != std::string::npos)
        throw GateConfigError("upstream '" + url + "': expected http://host:port");
    Upstream u;
    std::string port;  // after the host's ':' ("" when none)
    bool has_port = false;
    if (rest.front() == '[') {  // RFC 3986 §3.2.2: an IPv6 literal in brackets
        auto close = rest.find(']');
        if (close == std::string::npos) throw GateConfigError("upstream '" + url + "': no ']' after the IPv6 address");
        u.host = rest.substr(1, close - 1);
        if (!rules::parse_ipv6(u.host))
            throw GateConfigError("upstream '" + url + "': '" + u.host + "' is not an IPv6 address");
        std::string after = rest.substr(close + 1);
        if (!after.empty() && after.front() != ':') throw GateConfigError("upstream '" + url + "': expected http://[IPv6]:port");
        has_port = !after.empty();
        if (has_port) port = after.substr(1);
    } else {
        auto colon = rest.find(':');
        if (colon != std::string::npos && rest.find(':', colon + 1) != std::string::npos)
            throw GateConfigError("upstream '" + url + "': an IPv6 address goes in brackets, http://[2001:db8::1]:8200");
        has_port = colon != std::string::npos;
        u.host = rest.substr(0, colon);
        if (has_port) port = rest.substr(colon + 1);
    }
    if (!has_port) {
        u.port = "80";
    } else {
        if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
            std::stoi(port) == 0 || std::stoi(port) > 65535)
            throw GateConfigError("upstream '" + url + "': bad port");
        u.port = port;
    }
    if (u.host.empty()) throw GateConfigError("upstream '" + url + "': no host");
    return u;
}

std::string Upstream::key() const {
    return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + port;
}

namespace {
constexpr const char* kDefaultTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
}  // namespace

std::shared_ptr<boost::asio::ssl::context> make_server_tls(const std::string& cert, const std::string& key,
                                                           const TlsPolicy& policy) {
    namespace ssl = boost::asio::ssl;
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
    ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                     ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
    auto offers = [&policy](const char* v) {
        return std::find(policy.versions.begin(), policy.versions.end(), v) != policy.versions.end();
    };
    SSL_CTX_set_min_proto_version(ctx->native_handle(), offers("1.2") ? TLS1_2_VERSION : TLS1_3_VERSION);
    SSL_CTX_set_max_proto_version(ctx->native_handle(), offers("1.3") ? TLS1_3_VERSION : TLS1_2_VERSION);
    if (!policy.session_tickets) {
        SSL_CTX_set_options(ctx->native_handle(), SSL_OP_NO_TICKET);
        SSL_CTX_set_num_tickets(ctx->native_handle(), 0);
    }
    // Idle keep-alive connections give OpenSSL's record buffers back.
    SSL_CTX_set_mode(ctx->native_handle(), SSL_MODE_RELEASE_BUFFERS);
    // No renegotiation (TLS 1.2): a client cannot restart the handshake
    // under an authenticated connection.
    SSL_CTX_set_options(ctx->native_handle(), SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    // Resumption by stateless tickets only: a server-side session cache
    // would hold a session per client in the gate's memory.
    SSL_CTX_set_session_cache_mode(ctx->native_handle(), SSL_SESS_CACHE_OFF);
    // TLS 1.2: forward-secret AEAD suites only by default (TLS 1.3's are all of that kind).
    const std::string& ciphers = policy.ciphers.empty() ? std::string(kDefaultTls12Ciphers) : policy.ciphers;
    if (SSL_CTX_set_cipher_list(ctx->native_handle(), ciphers.c_str()) != 1)
        throw GateConfigError("gate.tls_ciphers '" + ciphers + "': OpenSSL knows none of these TLS 1.2 ciphers");
    if (!policy.ciphersuites.empty() && SSL_CTX_set_ciphersuites(ctx->native_handle(), policy.ciphersuites.c_str()) != 1)
        throw GateConfigError("gate.tls_ciphersuites '" + policy.ciphersuites +
                              "': OpenSSL knows none of these TLS 1.3 suites");
    boost::system::error_code ec;
    ctx->use_certificate_chain_file(cert, ec);
    if (ec) throw GateConfigError("gate.tls_cert " + cert + ": " + ec.message());
    ctx->use_private_key_file(key, ssl::context::pem, ec);
    if (ec) throw GateConfigError("gate.tls_key " + key + ": " + ec.message());
    if (SSL_CTX_check_private_key(ctx->native_handle()) != 1)
        throw GateConfigError("gate.tls_key " + key + " does not match gate.tls_cert " + cert);
    return ctx;
}

std::shared_ptr<const GateConfig> GateConfig::build(const rules::RuleFile& rf, GateOptions opts) {
    if (!rf.gate) throw GateConfigError(rf.path + ": no gate section");
    auto c = std::make_shared<GateConfig>();
    c->identity = rf.identity;
    c->catalog = rf.trusted_services;
    c->vaults = rf.vaults;
    c->tls_cert = rf.gate->tls_cert;
    c->tls_key = rf.gate->tls_key;
    c->audit_log = rf.gate->audit_log;
    c->limits = opts.limits;
    const rules::Gate& g = *rf.gate;
    if (g.max_connections) c->limits.max_connections = *g.max_connections;
    if (g.header_limit) c->limits.header_limit = *g.header_limit;
    if (g.body_limit) c->limits.body_limit = *g.body_limit;
    if (g.token_cache_entries) c->limits.token_cache_entries = *g.token_cache_entries;
    c->io_threads = static_cast<unsigned>(g.io_threads.value_or(0));
    if (opts.jwks_ca_file.empty()) opts.jwks_ca_file = g.jwks_ca_file;
    c->admission = std::move(opts.admission);
    c->vault_name_of = std::move(opts.vault_name_of);

    JwtPolicy pol;
    pol.audience = rf.identity.audience;
    std::vector<std::shared_ptr<RemoteJwks>> remotes;
    for (const auto& is : rf.identity.issuers) {
        IssuerKeys ik;
        ik.issuer = is.issuer;
        if (!is.jwks_file.empty()) {
            try {
                ik.keys = std::make_shared<const KeySet>(KeySet::load_file(is.jwks_file));
            } catch (const JwksError& e) {
                throw GateConfigError(std::string("issuer ") + is.issuer + ": " + e.what());
            }
        } else if (!is.jwks_url.empty()) {
            JwksFetchOptions fo;
            fo.ca_file = opts.jwks_ca_file;
            fo.min_refresh = c->limits.jwks_min_refresh;
            fo.refresh_interval = c->limits.jwks_refresh_interval;
            fo.timeout = c->limits.jwks_fetch_timeout;
            fo.max_bytes = c->limits.jwks_max_bytes;
            try {
                ik.remote = RemoteJwks::get(is.jwks_url, fo);
            } catch (const JwksError& e) {
                throw GateConfigError(std::string("issuer ") + is.issuer + ": " + e.what());
            }
            remotes.push_back(ik.remote);
        } else {
            throw GateConfigError("issuer " + is.issuer + ": no jwks_file or jwks_url");
        }
        pol.issuers.push_back(std::move(ik));
    }
    c->jwt = std::make_shared<const JwtValidator>(std::move(pol), c->limits.token_cache_entries);
    // Give first fetches a moment (they run in parallel; a reload finds them loaded).
    auto until = std::chrono::steady_clock::now() + c->limits.jwks_initial_wait;
    for (const auto& r : remotes) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
        if (left.count() <= 0 || !r->wait_loaded(left)) break;
    }
    c->tls = make_server_tls(c->tls_cert, c->tls_key,
                             TlsPolicy{g.tls_versions, g.tls_ciphers, g.tls_ciphersuites, g.session_tickets});

    for (std::size_t i = 0; i < c->vaults.size(); ++i) {
        const auto& v = c->vaults[i];
        try {
            c->upstreams.push_back(parse_upstream(v.upstream));
        } catch (const GateConfigError& e) {
            throw GateConfigError("vault " + v.name + ": " + e.what());
        }
        for (const auto& ep : v.endpoints)
            if (ep.proto == rules::Proto::tcp) c->routes[{ep.addr, ep.port}].push_back({i, false, 0});
        for (const auto& pe : v.private_endpoints)
            if (pe.endpoint.proto == rules::Proto::tcp)
                c->routes[{pe.endpoint.addr, pe.endpoint.port}].push_back({i, true, pe.vni});
        for (const auto& ep : v.endpoints6)
            if (ep.proto == rules::Proto::tcp) c->routes[{IpAddress(ep.addr), ep.port}].push_back({i, false, 0});
        for (const auto& pe : v.private_endpoints6)
            if (pe.endpoint.proto == rules::Proto::tcp)
                c->routes[{IpAddress(pe.endpoint.addr), pe.endpoint.port}].push_back({i, true, pe.vni});
    }
    return c;
}

std::string ListenKey::str() const {
    return (addr.is_v6() ? "[" + addr.str() + "]" : addr.str()) + ":" + std::to_string(port);
}

const VaultRoute* GateConfig::route(const ListenKey& local, const std::optional<vw_admission>& rec) const {
    auto it = routes.find(local);
    if (it == routes.end() || it->second.empty()) return nullptr;
    if (rec && vault_name_of) {
        std::string name = vault_name_of(rec->vault_id);
        for (const auto& r : it->second)
            if (vaults[r.vault].name == name && (!r.is_private || r.vni == rec->vni)) return &r;
    }
    // No (matching) record: the public endpoint owner, else the first route
    // (admission then fails closed for private endpoints).
    for (const auto& r : it->second)
        if (!r.is_private) return &r;
    return &it->second.front();
}

}  // namespace vaultwall::gate
