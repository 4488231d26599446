#include "support.hpp"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <boost/asio.hpp>
#include <thread>

#include "gate/jwks.hpp"
#include "rules/ipv4.hpp"

namespace vwtest {

using namespace vaultwall;

const Keys& keys() {
    static Keys k = [] {
        Keys k;
        k.rsa = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", (size_t)2048);
        k.ec = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
        k.other = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", (size_t)2048);
        if (!k.rsa || !k.ec || !k.other) throw std::runtime_error("keygen failed");
        k.jwks = "{\"keys\":[" + gate::jwk_json_from_pkey(k.rsa, "rsa1") + "," +
                 gate::jwk_json_from_pkey(k.ec, "ec1") + "]}";
        return k;
    }();
    return k;
}

gate::JwtPolicy policy() {
    gate::JwtPolicy p;
    p.audience = kAudience;
    p.issuers.push_back({kIssuer, std::make_shared<const gate::KeySet>(gate::KeySet::parse(keys().jwks)), nullptr});
    return p;
}

long long now_s() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

json base_claims(const std::string& oid, const std::string& appid) {
    auto n = now_s();
    return json{{"iss", kIssuer}, {"aud", kAudience}, {"tid", kTenant}, {"oid", oid}, {"appid", appid},
                {"sub", oid},     {"iat", n - 10},    {"nbf", n - 10},  {"exp", n + 3600}};
}

std::string token(const json& claims, const std::string& alg, const std::string& kid, EVP_PKEY* key) {
    if (!key) key = alg == "ES256" ? keys().ec : keys().rsa;
    json h{{"alg", alg}, {"typ", "JWT"}, {"kid", kid}};
    return gate::sign_jwt(key, h, claims);
}

rules::Identity identity(const std::string& jwks_file) {
    rules::Identity id;
    id.audience = kAudience;
    id.authority = kAuthority;
    id.issuers.push_back({kIssuer, jwks_file, ""});
    return id;
}

std::vector<rules::TrustedService> catalog() {
    rules::TrustedService st;
    st.id = "azure-storage";
    st.name = "Azure Storage";
    st.scenario = "Storage Service Encryption using customer-managed keys in Azure Key Vault.";
    st.app_ids = {kAppStorage};
    st.resource_types = {"Microsoft.Storage/storageAccounts"};
    st.operations = {"keys/get", "keys/wrapKey", "keys/unwrapKey"};
    rules::TrustedService arm;
    arm.id = "azure-resource-manager";
    arm.name = "Azure Resource Manager template deployment service";
    arm.scenario = "Pass secure values during deployment.";
    arm.app_ids = {"cccccccc-0000-4000-8000-00000000000c"};
    arm.operations = {"secrets/get"};
    return {st, arm};
}

rules::Vault vault(std::uint32_t ep_addr, std::uint16_t port) {
    rules::Vault v;
    v.name = "contoso-prod";
    v.tenant_id = kTenant;
    v.subscription_id = kSubscription;
    v.location = "lab";
    rules::Endpoint ep;
    ep.addr = ep_addr;
    ep.port = port;
    v.endpoints.push_back(ep);
    v.upstream = "http://127.0.0.1:8200";
    v.public_network_access = true;
    v.default_action = rules::DefaultAction::deny;
    v.bypass = rules::Bypass::azure_services;
    v.ip_rules.push_back({rules::parse_ipv4_prefix("192.0.2.0/24")->prefix, {}});
    rules::AccessPolicy ap;
    ap.object_id = kOidApp;
    ap.permissions["secrets"] = {"get", "list", "set"};
    ap.permissions["keys"] = {"get", "wrapKey", "unwrapKey"};
    ap.permissions["certificates"] = {};
    v.access_policies.push_back(ap);
    rules::AccessPolicy sp;
    sp.object_id = kOidStorage;
    sp.permissions["keys"] = {"get", "wrapKey", "unwrapKey"};
    v.access_policies.push_back(sp);
    return v;
}

namespace {

void add_ext(X509* cert, X509* issuer, int nid, const char* value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ex = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    if (!ex) throw std::runtime_error("bad extension");
    X509_add_ext(cert, ex, -1);
    X509_EXTENSION_free(ex);
}

X509* make_cert(EVP_PKEY* key, const char* cn, X509* issuer, EVP_PKEY* issuer_key, bool ca, long serial,
                const std::vector<std::string>& extra_dns = {}) {
    X509* c = X509_new();
    X509_set_version(c, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(c), serial);
    X509_gmtime_adj(X509_getm_notBefore(c), -3600);
    X509_gmtime_adj(X509_getm_notAfter(c), 3600L * 24 * 30);
    X509_set_pubkey(c, key);
    X509_NAME* name = X509_get_subject_name(c);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn), -1, -1, 0);
    X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : name);
    X509* iss = issuer ? issuer : c;
    if (ca) {
        add_ext(c, iss, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(c, iss, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        add_ext(c, iss, NID_basic_constraints, "critical,CA:FALSE");
        add_ext(c, iss, NID_key_usage, "critical,digitalSignature,keyEncipherment");
        add_ext(c, iss, NID_ext_key_usage, "serverAuth");
        std::string san =
            "DNS:localhost,IP:127.0.0.1,IP:127.0.0.2,IP:127.0.0.3,IP:127.0.0.4,IP:127.0.0.5,IP:127.0.0.6,"
            "IP:127.0.0.7,IP:127.0.0.8,IP:127.0.0.9,IP:::1";
        for (const auto& d : extra_dns) san += ",DNS:" + d;
        add_ext(c, iss, NID_subject_alt_name, san.c_str());
    }
    add_ext(c, iss, NID_subject_key_identifier, "hash");
    X509_sign(c, issuer_key, EVP_sha256());
    return c;
}

void write_pem_cert(const std::string& path, X509* a, X509* b = nullptr) {
    FILE* f = std::fopen(path.c_str(), "w");
    PEM_write_X509(f, a);
    if (b) PEM_write_X509(f, b);
    std::fclose(f);
}

}  // namespace

void make_lab_pki(const std::string& dir, const std::vector<std::string>& extra_dns) {
    EVP_PKEY* ca_key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
    EVP_PKEY* srv_key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
    X509* ca = make_cert(ca_key, "vaultwall lab CA", nullptr, ca_key, true, 1);
    X509* srv = make_cert(srv_key, "localhost", ca, ca_key, false, 2, extra_dns);
    write_pem_cert(dir + "/ca.pem", ca);
    write_pem_cert(dir + "/server.pem", srv, ca);
    FILE* f = std::fopen((dir + "/server.key").c_str(), "w");
    PEM_write_PrivateKey(f, srv_key, nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(f);
    X509_free(ca);
    X509_free(srv);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(srv_key);
}

std::string temp_dir(const std::string& tag) {
    std::string tmpl = (std::filesystem::temp_directory_path() / ("vwgate-" + tag + "-XXXXXX")).string();
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    return tmpl;
}

void write_file(const std::string& path, const std::string& text) {
    std::ofstream o(path, std::ios::binary);
    o << text;
}

std::string read_file(const std::string& path) {
    std::ifstream i(path, std::ios::binary);
    std::ostringstream ss;
    ss << i.rdbuf();
    return ss.str();
}

std::uint16_t free_port() {
    namespace net = boost::asio;
    net::io_context ioc;
    net::ip::tcp::acceptor a(ioc, net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    return a.local_endpoint().port();
}

bool wait_port(std::uint16_t port, std::chrono::milliseconds max, const std::string& addr) {
    namespace net = boost::asio;
    auto end = std::chrono::steady_clock::now() + max;
    while (std::chrono::steady_clock::now() < end) {
        net::io_context ioc;
        net::ip::tcp::socket s(ioc);
        boost::system::error_code ec;
        s.connect(net::ip::tcp::endpoint(net::ip::make_address(addr), port), ec);
        if (!ec) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
}

}  // namespace vwtest
