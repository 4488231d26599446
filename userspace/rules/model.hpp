// The rules model: what a rule file (SPEC §2) says, validated, with no knowledge
// of YAML or BPF. The parser (parser.hpp) fills it; validate.hpp checks what
// spans entries and resolves references to VNets; the compiler (compiled.hpp)
// turns it into flat datapath entries; the gate reads identity, catalog and
// authorization from it.
//
// IPv6 (SPEC §11) has its own fields beside the IPv4 ones (endpoints6,
// ip_rules6, ...) rather than a two-family type in the IPv4 ones: a million
// IPv4 rules keep their 8-byte prefixes, and code that knows only IPv4 cannot
// mistake an IPv6 entry for an IPv4 one.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <ostream>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "rules/ipv4.hpp"
#include "rules/ipv6.hpp"

namespace vaultwall::rules {

// The name of a file, shared by every position in it: a million rules of one
// file hold one copy of its path (a std::string each cost ~70 MB at 1M rules).
class FileName {
public:
    FileName() = default;
    FileName(std::string name) : name_(std::make_shared<const std::string>(std::move(name))) {}
    FileName(const char* name) : FileName(std::string(name)) {}
    const std::string& str() const { return name_ ? *name_ : none(); }
    operator const std::string&() const { return str(); }
    bool empty() const { return str().empty(); }
    friend bool operator==(const FileName& a, const FileName& b) {
        return a.name_ == b.name_ || a.str() == b.str();
    }
    friend bool operator==(const FileName& a, const std::string& b) { return a.str() == b; }
    friend bool operator==(const FileName& a, const char* b) { return a.str() == b; }
    friend std::string operator+(const FileName& a, const std::string& b) { return a.str() + b; }
    friend std::string operator+(const FileName& a, const char* b) { return a.str() + b; }
    friend std::ostream& operator<<(std::ostream& o, const FileName& f) { return o << f.str(); }

private:
    static const std::string& none() {
        static const std::string e;
        return e;
    }
    std::shared_ptr<const std::string> name_;
};

// Where a value came from, for diagnostics that name file:line:col.
struct SourcePos {
    FileName file;
    int line = 0;  // 1-based; 0 = unknown
    int col = 0;   // 1-based
};

enum class Proto : std::uint8_t { tcp = 6, udp = 17 };

struct Endpoint {
    std::uint32_t addr = 0;  // IPv4, host byte order
    std::uint16_t port = 0;
    Proto proto = Proto::tcp;
    SourcePos pos;
};

struct Endpoint6 {
    Ipv6Addr addr{};  // network byte order; written [2001:db8::10]:443
    std::uint16_t port = 0;
    Proto proto = Proto::tcp;
    SourcePos pos;
};

struct PrivateEndpoint {
    std::string vnet;        // name of a `vnets` entry
    std::uint32_t vni = 0;   // resolved from the VNet by validate()
    Endpoint endpoint;
    SourcePos vnet_pos{};    // where `vnet:` names it
};

struct PrivateEndpoint6 {
    std::string vnet;
    std::uint32_t vni = 0;  // resolved from the VNet by validate()
    Endpoint6 endpoint;
    SourcePos vnet_pos{};
};

// A subnet may be dual-stack: `app: [198.19.1.0/24, 2001:2:0:1::/64]`.
struct Subnet {
    std::string name;
    std::vector<Ipv4Prefix> prefixes;
    std::vector<Ipv6Prefix> prefixes6;
    SourcePos pos;
};

struct Vnet {
    std::string name;
    std::uint32_t vni = 0;  // 1 .. 2^24-1; 0 means "plain traffic" and is refused
    std::vector<Subnet> subnets;
    SourcePos pos;
    SourcePos name_pos{}, vni_pos{};  // of its `name:` and `vni:` values
};

enum class DefaultAction { allow, deny };
enum class Bypass { azure_services, none };
enum class Authorization { access_policies, rbac };
// SPEC §9: audit passes (and counts) what enforce would drop.
enum class Enforcement { enforce, audit };

struct IpRule {
    Ipv4Prefix prefix;
    SourcePos pos;
};

struct IpRule6 {
    Ipv6Prefix prefix;
    SourcePos pos;
};

// `prod-vnet/app`: every address of that subnet (both families), arriving over
// the VNet's VNI. The parser fills the names; validate() checks them and
// resolves the VNI and the subnet's prefixes from `vnets`.
struct VnetRule {
    std::string vnet;
    std::string subnet;
    SourcePos pos;
    std::uint32_t vni = 0;
    std::vector<Ipv4Prefix> prefixes{};
    std::vector<Ipv6Prefix> prefixes6{};
};

// Permissions as Key Vault spells them ("get", "wrapKey", "all"...), per
// object kind: "secrets", "keys", "certificates".
struct AccessPolicy {
    std::string object_id;
    std::map<std::string, std::set<std::string>> permissions;
    SourcePos pos;
};

struct RoleAssignment {
    std::string principal_id;
    std::string role;   // built-in Key Vault data role name
    std::string scope;  // "/", "/secrets/NAME", "/keys/NAME", "/certificates/NAME"
    SourcePos pos;
};

struct Vault {
    std::string name;
    std::string tenant_id;
    std::string subscription_id;
    std::string location;
    std::vector<Endpoint> endpoints;
    std::vector<PrivateEndpoint> private_endpoints;
    std::vector<Endpoint6> endpoints6;
    std::vector<PrivateEndpoint6> private_endpoints6;
    std::string upstream;  // e.g. http://127.0.0.1:8200
    bool public_network_access = true;
    DefaultAction default_action = DefaultAction::deny;
    Bypass bypass = Bypass::azure_services;
    Enforcement enforcement = Enforcement::enforce;
    std::vector<IpRule> ip_rules;        // merged: no duplicates; ip_rules then ip_rules_file
    std::vector<IpRule6> ip_rules6;      // the same, IPv6 (both lists may hold both families)
    std::string ip_rules_file;           // absolute; empty when none. Its rules' pos.file is it.
    std::vector<VnetRule> vnet_rules;    // merged: no duplicates
    Authorization authorization = Authorization::access_policies;
    std::vector<AccessPolicy> access_policies;
    std::vector<RoleAssignment> role_assignments;
    SourcePos pos;
};

struct Issuer {
    std::string issuer;
    std::string jwks_file;  // absolute after loading (relative paths resolved)
    std::string jwks_url;   // optional HTTPS JWKS source
};

struct Identity {
    std::string audience = "https://vault.azure.net";
    std::string authority = "https://login.microsoftonline.com";
    std::vector<Issuer> issuers;
};

struct TrustedService {
    std::string id;
    std::string name;
    std::string scenario;
    std::vector<std::string> app_ids;
    std::vector<std::string> resource_types;
    std::vector<std::string> operations;  // "keys/get", "secrets/get", ...
};

struct Gate {
    std::string tls_cert;   // absolute after loading
    std::string tls_key;
    std::string audit_log;
    // The gate's operator knobs (docs/operators-guide.md §4); unset or empty:
    // the gate's default.
    // (Each has a default member initializer, so Gate{cert, key, log} stays warning-free.)
    std::string jwks_ca_file{};  // verifies identity.issuers[].jwks_url servers; "": the system store
    std::optional<std::uint64_t> io_threads{}, max_connections{}, header_limit{}, body_limit{},
        token_cache_entries{};
    std::vector<std::string> tls_versions{"1.2", "1.3"};
    std::string tls_ciphers{}, tls_ciphersuites{};  // OpenSSL lists for TLS 1.2 / TLS 1.3
    bool session_tickets = true;
};

struct Host {
    std::uint16_t vxlan_port = 4789;
    std::vector<Ipv4Prefix> vteps;
    std::vector<Ipv6Prefix> vteps6;  // IPv6 underlay (VXLAN over IPv6)
    std::uint32_t drop_events_per_second = 1000;  // per CPU; 0 = count drops, send no events
};

struct RuleFile {
    std::string path;  // the file this was loaded from
    int version = 1;
    Host host;
    Identity identity;
    std::string trusted_services_file;  // absolute; empty when none
    std::vector<TrustedService> trusted_services;
    std::optional<Gate> gate;
    std::optional<std::string> metrics;  // "127.0.0.1:9469"
    std::optional<std::string> drop_log;  // absolute; JSON lines of drop events (SPEC §9)
    std::vector<Vnet> vnets;
    std::vector<Vault> vaults;
    std::vector<std::string> warnings;  // "file:line:col: warning: ..."
    // Every file the loader read, absolute: the rule file first, then the
    // trusted-services catalog and the ip_rules_files (what a fleet publishes).
    std::vector<std::string> files;
};

}  // namespace vaultwall::rules
