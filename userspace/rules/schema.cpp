// The rule file's section schemas (SPEC §2, §7, §9): its YAML document ->
// the model, every key, type and value checked where it is written. What
// spans entries (duplicates, the VNets that rules and private endpoints name,
// endpoints shared between vaults, what the gate needs) is validate.cpp's,
// over the model.
//
// Keys are matched after turning camelCase into snake_case, so the Azure
// spellings (`defaultAction`, `ipRules`, `publicNetworkAccess`...) name the
// same fields. Enum values are matched case-insensitively, ignoring `_`/`-`
// (`AzureServices` == `azure_services`).
#include "rules/schema.hpp"

#include <algorithm>
#include <cstring>
#include <map>
#include <tuple>
#include <unordered_map>

#include "rules/ip_list.hpp"
#include "rules/names.hpp"
#include "rules/yaml_access.hpp"

namespace vaultwall::rules {

namespace {

// The highest host.drop_events_per_second: beyond it the ring buffer, not the
// limit, decides what is lost.
constexpr std::uint64_t kMaxDropEventsPerSecond = 1'000'000;

class Schema : public YamlReader {
public:
    Schema(FileName file, std::string base_dir, Diagnostics& diags, const ReadFile& read)
        : YamlReader(file, std::move(base_dir), diags), file_(std::move(file)), read_(read) {}

    RuleFile parse_rule_file(const yaml::Node& root);

private:
    void parse_version(const Fields& f, const yaml::Node& root, RuleFile& rf);
    void parse_host(const Field& f, Host& host);
    void parse_identity(const Field& f, Identity& id);
    void parse_issuer(const yaml::Node& n, Identity& id);
    void parse_trusted_services(const Field& f, RuleFile& rf);
    void parse_gate(const Field& f, RuleFile& rf);
    void parse_metrics(const Field& f, RuleFile& rf);
    void parse_vnets(const Field& f, RuleFile& rf);
    void parse_vnet(const yaml::Node& n, RuleFile& rf);
    void parse_vaults(const Field& f, RuleFile& rf);
    void parse_vault(const yaml::Node& n, Vault& v);
    void parse_endpoints(const Field& f, Vault& v);
    void parse_private_endpoints(const Field& f, Vault& v);
    void parse_network_acls(const Field& f, Vault& v);
    void parse_ip_rule(const yaml::Node& n, Vault& v);
    void parse_vnet_rule(const yaml::Node& n, Vault& v);
    void parse_access_policy(const yaml::Node& n, Vault& v);
    void parse_role_assignment(const yaml::Node& n, Vault& v);
    bool parse_subnet_prefixes(const yaml::Node& n, Subnet& sub);

    FileName file_;
    const ReadFile& read_;
};

// ---------------------------------------------------------------- top level

RuleFile Schema::parse_rule_file(const yaml::Node& root) {
    RuleFile rf;
    rf.path = file_;
    if (root.IsNull()) {
        diags().error({file_, 1, 1}, "the rule file is empty; it needs at least `version: 1`");
        return rf;
    }
    auto f = map_fields(root, "the rule file",
                        {{"version"}, {"host"}, {"identity"}, {"trusted_services"}, {"gate"},
                         {"metrics"}, {"drop_log"}, {"vnets"}, {"vaults"}});
    if (!f) return rf;
    if (auto x = f->get("drop_log"))
        if (auto s = nonempty(*x, "drop_log")) rf.drop_log = resolve(*s);
    parse_version(*f, root, rf);
    if (auto x = f->get("host")) parse_host(*x, rf.host);
    if (auto x = f->get("identity")) parse_identity(*x, rf.identity);
    if (auto x = f->get("trusted_services")) parse_trusted_services(*x, rf);
    if (auto x = f->get("gate")) parse_gate(*x, rf);
    if (auto x = f->get("metrics")) parse_metrics(*x, rf);
    if (auto x = f->get("vnets")) parse_vnets(*x, rf);
    if (auto x = f->get("vaults")) parse_vaults(*x, rf);
    return rf;
}

void Schema::parse_version(const Fields& f, const yaml::Node& root, RuleFile& rf) {
    if (!require(f, root, "version", "the rule file", "version: 1")) return;
    const Field& v = *f.get("version");
    auto s = scalar(v, "version");
    if (!s) return;
    auto n = parse_uint(*s);
    if (!n || *n != 1) {
        error(v, "unsupported version " + quote(*s) + "; this vaultwall reads `version: 1`");
        return;
    }
    rf.version = 1;
}

void Schema::parse_host(const Field& fld, Host& host) {
    auto f = map_fields(fld.value, "host", {{"vxlan_port"}, {"vteps"}, {"drop_events_per_second"}});
    if (!f) return;
    if (auto x = f->get("drop_events_per_second")) {
        if (auto s = scalar(*x, "host.drop_events_per_second")) {
            auto n = parse_uint(*s);
            if (!n || *n > kMaxDropEventsPerSecond)
                error(*x, "host.drop_events_per_second " + quote(*s) +
                              " is not a rate; use 0.." + std::to_string(kMaxDropEventsPerSecond) +
                              " events a second per CPU (default 1000; 0 counts drops without "
                              "sending events)");
            else
                host.drop_events_per_second = static_cast<std::uint32_t>(*n);
        }
    }
    if (auto x = f->get("vxlan_port")) {
        if (auto s = scalar(*x, "host.vxlan_port")) {
            auto n = parse_uint(*s);
            if (!n || *n == 0 || *n > 65535)
                error(*x, "host.vxlan_port " + quote(*s) + " is not a UDP port; use 1..65535 (default 4789)");
            else
                host.vxlan_port = static_cast<std::uint16_t>(*n);
        }
    }
    if (auto x = f->get("vteps")) {
        auto items = list(*x, "host.vteps");
        if (!items) return;
        std::map<Ipv4Prefix, SourcePos> seen;
        std::map<Ipv6Prefix, SourcePos> seen6;
        auto add = [&](auto& seen, auto& vteps, const auto& p, const yaml::Node& n) {
            auto [it, fresh] = seen.emplace(p, pos(n));
            if (!fresh)
                return warn(pos(n), "duplicate VTEP prefix " + p.str() + " (first at " +
                                        at_text(it->second) + "); merged");
            vteps.push_back(p);
        };
        for (const auto& n : *items) {
            auto p = prefix(n, "host.vteps");
            if (!p) continue;
            if (auto* v4 = std::get_if<Ipv4Prefix>(&*p)) add(seen, host.vteps, *v4, n);
            else add(seen6, host.vteps6, std::get<Ipv6Prefix>(*p), n);
        }
    }
}

void Schema::parse_identity(const Field& fld, Identity& id) {
    auto f = map_fields(fld.value, "identity", {{"audience"}, {"authority"}, {"issuers"}});
    if (!f) return;
    if (auto x = f->get("audience"))
        if (auto s = nonempty(*x, "identity.audience")) id.audience = *s;
    if (auto x = f->get("authority")) {
        if (auto s = nonempty(*x, "identity.authority")) {
            if (s->rfind("https://", 0) != 0 && s->rfind("http://", 0) != 0)
                error(*x, "identity.authority " + quote(*s) + " is not a URL; write e.g. https://login.microsoftonline.com");
            else
                id.authority = *s;
        }
    }
    if (auto x = f->get("issuers")) {
        if (auto items = list(*x, "identity.issuers"))
            for (const auto& n : *items) parse_issuer(n, id);
    }
}

void Schema::parse_issuer(const yaml::Node& n, Identity& id) {
    auto f = map_fields(n, "an identity issuer", {{"issuer"}, {"jwks_file"}, {"jwks_url"}});
    if (!f) return;
    Issuer is;
    ErrorScope scope(diags());
    require(*f, n, "issuer", "an identity issuer",
                      "issuer: https://sts.example/TENANT/");
    if (auto x = f->get("issuer")) {
        if (auto s = nonempty(*x, "issuer")) is.issuer = *s;
    }
    if (auto x = f->get("jwks_file")) {
        if (auto s = nonempty(*x, "jwks_file")) is.jwks_file = resolve(*s);
    }
    if (auto x = f->get("jwks_url")) {
        if (auto s = nonempty(*x, "jwks_url")) {
            if (s->rfind("https://", 0) != 0) {
                error(*x, "jwks_url " + quote(*s) + " must be an https:// URL");
            } else {
                is.jwks_url = *s;
            }
        }
    }
    if (!f->get("jwks_file") && !f->get("jwks_url")) {
        error(n, "identity issuer has no keys; add `jwks_file: PATH` or `jwks_url: https://...`");
    }
    if (!scope.failed()) id.issuers.push_back(std::move(is));
}

void Schema::parse_trusted_services(const Field& f, RuleFile& rf) {
    auto s = nonempty(f, "trusted_services");
    if (!s) return;
    rf.trusted_services_file = resolve(*s);
    if (auto text = read_(rf.trusted_services_file, "trusted-services catalog", pos(where(f))))
        rf.trusted_services = parse_catalog_text(*text, rf.trusted_services_file, diags());
}

void Schema::parse_gate(const Field& fld, RuleFile& rf) {
    auto f = map_fields(fld.value, "gate",
                        {{"tls_cert"}, {"tls_key"}, {"audit_log"}, {"jwks_ca_file"}, {"io_threads"},
                         {"max_connections"}, {"header_limit"}, {"body_limit"}, {"token_cache_entries"},
                         {"tls_versions"}, {"tls_ciphers"}, {"tls_ciphersuites"}, {"session_tickets"}});
    if (!f) return;
    Gate g;
    ErrorScope scope(diags());
    require(*f, fld.value, "tls_cert", "gate", "tls_cert: certs/vault.pem");
    require(*f, fld.value, "tls_key", "gate", "tls_key: certs/vault.key");
    auto path = [&](const char* key, std::string& out) {
        if (auto x = f->get(key))
            if (auto s = nonempty(*x, std::string("gate.") + key)) out = resolve(*s);
    };
    path("tls_cert", g.tls_cert);
    path("tls_key", g.tls_key);
    path("audit_log", g.audit_log);
    path("jwks_ca_file", g.jwks_ca_file);
    // The gate's operator knobs (docs/operators-guide.md): counts in a range.
    auto count = [&](const char* key, std::uint64_t lo, std::uint64_t hi, const char* unit,
                     std::optional<std::uint64_t>& out) {
        auto x = f->get(key);
        if (!x) return;
        auto s = scalar(*x, std::string("gate.") + key);
        if (!s) return;
        auto n = parse_uint(*s);
        if (!n || *n < lo || *n > hi)
            return error(*x, std::string("gate.") + key + " " + quote(*s) + " is out of range; use " +
                                 std::to_string(lo) + ".." + std::to_string(hi) + " " + unit);
        out = *n;
    };
    count("io_threads", 1, 256, "threads", g.io_threads);
    count("max_connections", 1, 10'000'000, "connections", g.max_connections);
    count("header_limit", 1024, 1024 * 1024, "bytes", g.header_limit);
    count("body_limit", 1024, 1024 * 1024 * 1024, "bytes", g.body_limit);
    count("token_cache_entries", 0, 10'000'000, "tokens (0: no cache)", g.token_cache_entries);
    if (auto x = f->get("tls_versions")) {
        if (auto vs = string_list(*x, "gate.tls_versions")) {
            g.tls_versions.clear();
            for (const auto& v : *vs) {
                if (v != "1.2" && v != "1.3")
                    error(*x, "gate.tls_versions " + quote(v) + " is not offered; use 1.2 and/or 1.3");
                else if (std::find(g.tls_versions.begin(), g.tls_versions.end(), v) == g.tls_versions.end())
                    g.tls_versions.push_back(v);
            }
            if (vs->empty()) error(*x, "gate.tls_versions is empty; give 1.2 and/or 1.3");
        }
    }
    auto text = [&](const char* key, std::string& out) {
        if (auto x = f->get(key))
            if (auto s = nonempty(*x, std::string("gate.") + key)) out = *s;
    };
    text("tls_ciphers", g.tls_ciphers);
    text("tls_ciphersuites", g.tls_ciphersuites);
    if (auto x = f->get("session_tickets"))
        if (auto b = boolean(*x, "gate.session_tickets")) g.session_tickets = *b;
    if (!scope.failed()) rf.gate = std::move(g);
}

void Schema::parse_metrics(const Field& f, RuleFile& rf) {
    auto ep = endpoint(f.value.IsNull() ? f.key : f.value, "metrics");
    if (!ep) return;
    if (ep->v6)
        return error(f, "metrics listens on IPv4 only; write e.g. `metrics: 127.0.0.1:9469`");
    if ((ep->addr >> 24) != 127)
        warn(pos(where(f)), "metrics listens on " + format_ipv4(ep->addr) +
                                ", not on loopback; anyone who reaches it can read the counters");
    rf.metrics = format_ipv4(ep->addr) + ":" + std::to_string(ep->port);
}

// ---------------------------------------------------------------- vnets

void Schema::parse_vnets(const Field& f, RuleFile& rf) {
    auto items = list(f, "vnets");
    if (!items) return;
    for (const auto& n : *items) parse_vnet(n, rf);
}

void Schema::parse_vnet(const yaml::Node& n, RuleFile& rf) {
    auto f = map_fields(n, "a vnet", {{"name"}, {"vni"}, {"subnets"}});
    if (!f) return;
    Vnet v;
    v.pos = pos(n);
    ErrorScope scope(diags());
    require(*f, n, "name", "a vnet", "name: prod-vnet");
    require(*f, n, "vni", "a vnet", "vni: 5001");
    if (auto x = f->get("name")) {
        auto s = nonempty(*x, "vnet name");
        if (s && s->find('/') != std::string::npos) {
            error(*x, "vnet name " + quote(*s) + " must not contain '/' (rules say VNET/SUBNET)");
        } else if (s) {
            v.name = *s;
            v.name_pos = pos(where(*x));
        }
    }
    if (auto x = f->get("vni")) {
        auto s = scalar(*x, "vni");
        auto num = s ? parse_uint(*s) : std::nullopt;
        if (s && (!num || *num < 1 || *num > 16777215)) {
            error(*x, "VNI " + quote(*s) + " is out of range; use 1..16777215");
        } else if (num) {
            v.vni = static_cast<std::uint32_t>(*num);
            v.vni_pos = pos(where(*x));
        }
    }
    // Kept when its name and VNI are good: a bad subnet alone must not turn
    // every rule naming this VNet into an "unknown VNet" error too.
    // (Two VNets of one name or VNI: validate.cpp.)
    const bool keep = !scope.failed();
    if (auto x = f->get("subnets")) {
        if (x->value.IsNull()) {
            // no subnets: allowed (private endpoints only)
        } else if (!x->value.IsMap()) {
            error(*x, "subnets must be a map of NAME: PREFIX (or a list of prefixes), e.g. "
                      "`app: 198.19.1.0/24` or `app: [198.19.1.0/24, 2001:2:0:1::/64]`, got " +
                          std::string(kind_of(x->value)));
        } else {
            std::unordered_map<std::string, std::size_t> subnet_names;
            for (auto it = x->value.begin(); it != x->value.end(); ++it) {
                if (!it->first.IsScalar()) {
                    error(it->first, "subnet names must be plain names");
                    continue;
                }
                std::string name = it->first.Scalar();
                if (name.empty() || name.find('/') != std::string::npos) {
                    error(it->first, "subnet name " + quote(name) + " must be non-empty without '/'");
                    continue;
                }
                auto [dup_at, fresh] = subnet_names.emplace(name, v.subnets.size());
                if (!fresh) {
                    auto dup = v.subnets.begin() + static_cast<std::ptrdiff_t>(dup_at->second);
                    error(it->first, "duplicate subnet " + quote(name) + " (first at " +
                                         at_text(dup->pos) + ")");
                    continue;
                }
                Subnet sub{name, {}, {}, pos(it->first)};
                if (parse_subnet_prefixes(it->second, sub)) v.subnets.push_back(std::move(sub));
                else subnet_names.erase(name);
            }
        }
    }
    if (keep) rf.vnets.push_back(std::move(v));
}

// `198.19.1.0/24`, or a list of prefixes of either family (a dual-stack subnet).
bool Schema::parse_subnet_prefixes(const yaml::Node& n, Subnet& sub) {
    const std::string what = "subnet " + quote(sub.name);
    ErrorScope scope(diags());
    auto one = [&](const yaml::Node& item) {
        auto p = prefix(item, what);
        if (!p) return;
        if (auto* v4 = std::get_if<Ipv4Prefix>(&*p)) {
            if (std::find(sub.prefixes.begin(), sub.prefixes.end(), *v4) == sub.prefixes.end())
                sub.prefixes.push_back(*v4);
        } else if (auto& v6 = std::get<Ipv6Prefix>(*p);
                   std::find(sub.prefixes6.begin(), sub.prefixes6.end(), v6) == sub.prefixes6.end()) {
            sub.prefixes6.push_back(v6);
        }
    };
    if (n.IsSequence()) {
        for (const auto& item : n) one(item);
        if (sub.prefixes.empty() && sub.prefixes6.empty() && !scope.failed())
            error(n, what + " has no prefixes; give at least one, e.g. `" + sub.name + ": 198.19.1.0/24`");
    } else {
        one(n);
    }
    return !scope.failed();
}

// ---------------------------------------------------------------- vaults

void Schema::parse_vaults(const Field& f, RuleFile& rf) {
    auto items = list(f, "vaults");
    if (!items) return;
    for (const auto& n : *items) {
        Vault v;
        v.pos = pos(n);
        ErrorScope scope(diags());
        parse_vault(n, v);
        if (!scope.failed()) rf.vaults.push_back(std::move(v));
    }
}

void Schema::parse_vault(const yaml::Node& n, Vault& v) {
    auto f = map_fields(n, "a vault",
                        {{"name"},
                         {"tenant_id"},
                         {"subscription_id"},
                         {"location"},
                         {"endpoints"},
                         {"private_endpoints"},
                         {"upstream"},
                         {"public_network_access"},
                         {"network_acls"},
                         {"authorization"},
                         {"enable_rbac_authorization"},
                         {"access_policies"},
                         {"role_assignments"}});
    if (!f) return;
    require(*f, n, "name", "a vault", "name: contoso-prod");
    std::string what = "vault";
    if (auto x = f->get("name")) {
        if (auto s = nonempty(*x, "vault name")) {
            if (!is_vault_name(*s))
                error(*x, "vault name " + quote(*s) + " is not valid; use up to 63 letters, digits, '-', '_' or '.'");
            else
                v.name = *s;
            what = "vault " + quote(*s);
        }
    }
    // tenant_id is required only with a gate (validate.cpp): only the gate uses it.
    if (auto x = f->get("tenant_id")) {
        if (auto s = nonempty(*x, "tenant_id")) {
            if (!is_guid(*s))
                error(*x, "tenant_id " + quote(*s) + " is not a GUID; write it like 3f1c9a52-7d0e-4b8a-9c11-5e2f0a6d4b10");
            else
                v.tenant_id = lower(*s);
        }
    }
    if (auto x = f->get("subscription_id")) {
        if (auto s = nonempty(*x, "subscription_id")) {
            if (!is_guid(*s))
                error(*x, "subscription_id " + quote(*s) + " is not a GUID; write it like 0b1f6471-1bf0-4dda-aec3-cb9272f09590");
            else
                v.subscription_id = lower(*s);
        }
    }
    if (auto x = f->get("location"))
        if (auto s = scalar(*x, "location")) v.location = *s;
    if (auto x = f->get("upstream")) {
        if (auto s = nonempty(*x, "upstream")) {
            if (s->rfind("http://", 0) != 0 && s->rfind("https://", 0) != 0)
                error(*x, "upstream " + quote(*s) + " is not a URL; write e.g. http://127.0.0.1:8200");
            else
                v.upstream = *s;
        }
    }
    if (auto x = f->get("endpoints")) parse_endpoints(*x, v);
    if (auto x = f->get("private_endpoints")) parse_private_endpoints(*x, v);
    if (auto x = f->get("public_network_access")) {
        if (auto e = enumeration<bool>(*x, "public_network_access",
                                       {{"enabled", true}, {"disabled", false}}))
            v.public_network_access = *e;
    }
    if (auto x = f->get("network_acls")) parse_network_acls(*x, v);

    std::optional<Authorization> mode;
    if (auto x = f->get("authorization"))
        mode = enumeration<Authorization>(
            *x, "authorization",
            {{"access_policies", Authorization::access_policies}, {"rbac", Authorization::rbac}});
    if (auto x = f->get("enable_rbac_authorization")) {
        if (auto b = boolean(*x, "enable_rbac_authorization")) {
            auto m = *b ? Authorization::rbac : Authorization::access_policies;
            if (mode && *mode != m)
                error(*x, "enable_rbac_authorization contradicts `authorization`; keep one of them");
            mode = m;
        }
    }
    if (mode) v.authorization = *mode;
    if (auto x = f->get("access_policies")) {
        if (auto items = list(*x, "access_policies"))
            for (const auto& p : *items) parse_access_policy(p, v);
    }
    if (auto x = f->get("role_assignments")) {
        if (auto items = list(*x, "role_assignments"))
            for (const auto& p : *items) parse_role_assignment(p, v);
    }
    // access_policies and role_assignments may both be present (SPEC §2's
    // example has both): `authorization` picks the one in force, so switching
    // modes is a one-line change.
    if (!f->get("endpoints") && !f->get("private_endpoints"))
        warn(v.pos, what + " has no endpoints or private_endpoints; nothing reaches it");
}

// Duplicates are merged by validate().
void Schema::parse_endpoints(const Field& f, Vault& v) {
    auto items = list(f, "endpoints");
    if (!items) return;
    for (const auto& n : *items) {
        auto ep = endpoint(n, "endpoints");
        if (!ep) continue;
        if (ep->v6) v.endpoints6.push_back(Endpoint6{ep->addr6, ep->port, ep->proto, pos(n)});
        else v.endpoints.push_back(Endpoint{ep->addr, ep->port, ep->proto, pos(n)});
    }
}

// Their VNets are looked up, and duplicates merged, by validate().
void Schema::parse_private_endpoints(const Field& f, Vault& v) {
    auto items = list(f, "private_endpoints");
    if (!items) return;
    for (const auto& n : *items) {
        auto pf = map_fields(n, "a private endpoint", {{"vnet"}, {"address"}});
        if (!pf) continue;
        ErrorScope scope(diags());
        require(*pf, n, "vnet", "a private endpoint", "vnet: prod-vnet");
        require(*pf, n, "address", "a private endpoint", "address: 198.19.1.100:443");
        if (scope.failed()) continue;
        auto vnet = nonempty(*pf->get("vnet"), "private endpoint vnet");
        const SourcePos vnet_pos = pos(where(*pf->get("vnet")));
        const yaml::Node& an = where(*pf->get("address"));
        auto ep = endpoint(an, "private endpoint address");
        if (!vnet || !ep) continue;
        if (ep->v6)
            v.private_endpoints6.push_back(
                PrivateEndpoint6{*vnet, 0, Endpoint6{ep->addr6, ep->port, ep->proto, pos(an)}, vnet_pos});
        else
            v.private_endpoints.push_back(
                PrivateEndpoint{*vnet, 0, Endpoint{ep->addr, ep->port, ep->proto, pos(an)}, vnet_pos});
    }
}

void Schema::parse_network_acls(const Field& fld, Vault& v) {
    auto f = map_fields(fld.value, "network_acls",
                        {{"default_action"},
                         {"bypass"},
                         {"enforcement"},
                         {"ip_rules"},
                         {"ip_rules_file"},
                         {"virtual_network_rules"}});
    if (!f) return;
    if (auto x = f->get("enforcement")) {
        if (auto e = enumeration<Enforcement>(
                *x, "enforcement", {{"enforce", Enforcement::enforce}, {"audit", Enforcement::audit}}))
            v.enforcement = *e;
    }
    if (auto x = f->get("default_action")) {
        if (auto e = enumeration<DefaultAction>(
                *x, "default_action", {{"allow", DefaultAction::allow}, {"deny", DefaultAction::deny}}))
            v.default_action = *e;
    }
    if (auto x = f->get("bypass")) {
        if (auto e = enumeration<Bypass>(
                *x, "bypass", {{"azure_services", Bypass::azure_services}, {"none", Bypass::none}}))
            v.bypass = *e;
    }
    if (auto x = f->get("ip_rules")) {
        if (auto items = list(*x, "ip_rules"))
            for (const auto& n : *items) parse_ip_rule(n, v);
    }
    if (auto x = f->get("ip_rules_file")) {
        if (auto s = nonempty(*x, "ip_rules_file")) {
            v.ip_rules_file = resolve(*s);
            if (auto text = read_(v.ip_rules_file, "ip_rules_file", pos(where(*x))))
                scan_ip_list(*text, FileName(v.ip_rules_file), v.ip_rules, v.ip_rules6, diags());
        }
    }
    if (auto x = f->get("virtual_network_rules")) {
        if (auto items = list(*x, "virtual_network_rules"))
            for (const auto& n : *items) parse_vnet_rule(n, v);
    }
}

// `192.0.2.0/24`, or Azure's `{value: 192.0.2.0/24}`.
void Schema::parse_ip_rule(const yaml::Node& n, Vault& v) {
    yaml::Node value = n;
    if (n.IsMap()) {
        auto f = map_fields(n, "an ip rule", {{"value"}, {"action"}});
        if (!f) return;
        if (!require(*f, n, "value", "an ip rule", "value: 192.0.2.0/24")) return;
        if (auto a = f->get("action")) {
            if (!enumeration<bool>(*a, "ip rule action", {{"allow", true}})) return;
        }
        value = where(*f->get("value"));
    }
    auto p = prefix(value, "ip_rules");
    if (!p) return;
    if (auto* v4 = std::get_if<Ipv4Prefix>(&*p)) v.ip_rules.push_back(IpRule{*v4, pos(value)});
    else v.ip_rules6.push_back(IpRule6{std::get<Ipv6Prefix>(*p), pos(value)});
}

// `prod-vnet/app`, or `{id: prod-vnet/app}`, or an Azure subnet resource id
// (`.../virtualNetworks/prod-vnet/subnets/app`).
void Schema::parse_vnet_rule(const yaml::Node& n, Vault& v) {
    yaml::Node value = n;
    if (n.IsMap()) {
        auto f = map_fields(n, "a virtual network rule",
                            {{"id"}, {"ignore_missing_vnet_service_endpoint"}});
        if (!f) return;
        if (!require(*f, n, "id", "a virtual network rule", "id: prod-vnet/app")) return;
        if (auto x = f->get("ignore_missing_vnet_service_endpoint")) boolean(*x, x->key.Scalar());
        value = where(*f->get("id"));
    }
    if (!value.IsScalar()) {
        error(value, "a virtual network rule must be VNET/SUBNET (e.g. prod-vnet/app), got " +
                         std::string(kind_of(value)));
        return;
    }
    std::string text = value.Scalar();
    std::string vnet_name, subnet_name;
    auto l = lower(text);
    if (auto i = l.find("/virtualnetworks/"); i != std::string::npos) {
        std::string rest = text.substr(i + std::strlen("/virtualnetworks/"));
        auto s = lower(rest).find("/subnets/");
        if (s != std::string::npos) {
            vnet_name = rest.substr(0, s);
            subnet_name = rest.substr(s + std::strlen("/subnets/"));
        }
    } else if (auto slash = text.find('/');
               slash != std::string::npos && text.find('/', slash + 1) == std::string::npos) {
        vnet_name = text.substr(0, slash);
        subnet_name = text.substr(slash + 1);
    }
    if (vnet_name.empty() || subnet_name.empty()) {
        error(value, quote(text) + " is not a virtual network rule; write VNET/SUBNET, e.g. prod-vnet/app");
        return;
    }
    // The VNet and its subnet are looked up by validate().
    v.vnet_rules.push_back(VnetRule{vnet_name, subnet_name, pos(value)});
}

void Schema::parse_access_policy(const yaml::Node& n, Vault& v) {
    auto f = map_fields(n, "an access policy",
                        {{"object_id"}, {"tenant_id"}, {"application_id"}, {"permissions"}});
    if (!f) return;
    AccessPolicy ap;
    ap.pos = pos(n);
    ErrorScope scope(diags());
    require(*f, n, "object_id", "an access policy",
                      "object_id: 6b0c8d8e-0000-4000-8000-000000000001");
    require(*f, n, "permissions", "an access policy", "permissions: { secrets: [get] }");
    if (auto x = f->get("object_id")) {
        auto s = nonempty(*x, "object_id");
        if (s && !is_guid(*s)) {
            error(*x, "object_id " + quote(*s) + " is not a GUID; use the principal's object id");
        } else if (s) {
            ap.object_id = lower(*s);
        }
    }
    for (const char* k : {"tenant_id", "application_id"}) {
        if (auto x = f->get(k)) {
            auto s = nonempty(*x, k);
            if (s && !is_guid(*s)) {
                error(*x, std::string(k) + " " + quote(*s) + " is not a GUID");
            }
        }
    }
    if (auto x = f->get("permissions")) {
        std::vector<KeySpec> kinds;
        for (const auto& k : permission_kinds()) kinds.push_back({k});
        auto pf = map_fields(x->value, "permissions", kinds);
        if (!pf) return;
        for (const auto& kind : permission_kinds()) {
            const Field* pk = pf->get(kind);
            if (!pk) continue;
            auto names = string_list(*pk, "permissions." + kind);
            if (!names) {
                continue;
            }
            auto& set = ap.permissions[kind];
            std::size_t i = 0;
            for (const auto& item : pk->value.IsNull() ? yaml::Node() : pk->value) {
                const std::string& name = (*names)[i++];
                if (auto c = canonical_permission(kind, name)) {
                    set.insert(*c);
                    continue;
                }
                std::string msg = "unknown " + kind + " permission " + quote(name);
                if (auto s = closest_match(name, permission_names(kind)))
                    msg += "; did you mean " + quote(*s) + "?";
                else
                    msg += ";";
                msg += " Key Vault's " + kind + " permissions: " + join(permission_names(kind));
                error(item, msg);
            }
        }
    }
    if (!scope.failed()) v.access_policies.push_back(std::move(ap));
}

void Schema::parse_role_assignment(const yaml::Node& n, Vault& v) {
    auto f = map_fields(n, "a role assignment",
                        {{"principal_id"}, {"role", {"role_definition_name"}}, {"scope"}});
    if (!f) return;
    RoleAssignment ra;
    ra.pos = pos(n);
    ra.scope = "/";
    ErrorScope scope(diags());
    require(*f, n, "principal_id", "a role assignment",
                      "principal_id: 6b0c8d8e-0000-4000-8000-000000000002");
    require(*f, n, "role", "a role assignment", "role: Key Vault Secrets User");
    if (auto x = f->get("principal_id")) {
        auto s = nonempty(*x, "principal_id");
        if (s && !is_guid(*s)) {
            error(*x, "principal_id " + quote(*s) + " is not a GUID; use the principal's object id");
        } else if (s) {
            ra.principal_id = lower(*s);
        }
    }
    if (auto x = f->get("role")) {
        auto s = nonempty(*x, "role");
        if (s) {
            if (auto c = canonical_role(*s)) {
                ra.role = *c;
            } else {
                std::string msg = "unknown role " + quote(*s);
                if (auto m = closest_match(*s, builtin_role_names()))
                    msg += "; did you mean " + quote(*m) + "?";
                else
                    msg += ";";
                msg += " Built-in Key Vault data roles: " + join(builtin_role_names());
                error(*x, msg);
            }
        }
    }
    if (auto x = f->get("scope")) {
        auto s = nonempty(*x, "scope");
        bool good = false;
        if (s) {
            if (*s == "/") {
                good = true;
            } else {
                for (const char* kind : {"secrets", "keys", "certificates"}) {
                    std::string pre = std::string("/") + kind + "/";
                    if (s->rfind(pre, 0) == 0 && is_object_name(s->substr(pre.size()))) good = true;
                }
            }
            if (!good)
                error(*x, "bad scope " + quote(*s) + "; use / (the whole vault), /secrets/NAME, /keys/NAME or "
                              "/certificates/NAME (NAME: 1-127 letters, digits or '-')");
            else
                ra.scope = *s;
        }
    }
    if (!scope.failed()) v.role_assignments.push_back(std::move(ra));
}

}  // namespace

RuleFile parse_rule_document(const yaml::Node& root, const FileName& file,
                             const std::string& base_dir, Diagnostics& diags,
                             const ReadFile& read) {
    return Schema(file, base_dir, diags, read).parse_rule_file(root);
}

}  // namespace vaultwall::rules
