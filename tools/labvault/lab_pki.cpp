// vaultwall-labvault pki|jwks|mint: see lab_pki.hpp. Lab material only: keys
// are written unencrypted (mode 0600) and certificates live for --days.
#include "lab_pki.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <stdexcept>
#include <cstring>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "gate/json_text.hpp"
#include "gate/jwks.hpp"
#include "gate/jwt.hpp"

namespace labvault {
namespace {

using json = nlohmann::json;

// The lab's tenant, subscription, issuer and audience: the values of
// vagrant/vault/rules.yaml and the rule files tools/vaultwall-lab and
// tools/bench/gate.sh write.
const std::string kTenant = "3f1c9a52-7d0e-4b8a-9c11-5e2f0a6d4b10";
const std::string kSubscription = "0b1f6471-1bf0-4dda-aec3-cb9272f09590";
const std::string kIssuer = "https://sts.lab.test/" + kTenant + "/";
const std::string kAudience = "https://vault.azure.net";

struct Identity {
    std::string oid, appid, xms_mirid, what;
};
// The lab identities, by the names `vaultwall-lab token ID` and
// `vaultwall-vm-token ID` take.
const std::map<std::string, Identity>& identities() {
    static const std::map<std::string, Identity> ids = {
        {"app",
         {"6b0c8d8e-0000-4000-8000-000000000001", "a1b2c3d4-0000-4000-8000-00000000a001", "",
          "secrets get/list/set, keys get/create/wrap/unwrap"}},
        {"reader",
         {"6b0c8d8e-0000-4000-8000-000000000003", "a1b2c3d4-0000-4000-8000-00000000a003", "",
          "keys get only"}},
        {"storage",
         {"6b0c8d8e-0000-4000-8000-000000000004", "00000000-0000-0000-0000-000000000022",
          "/subscriptions/" + kSubscription +
              "/resourceGroups/lab/providers/Microsoft.Storage/storageAccounts/labstore",
          "Azure Storage's appid and xms_mirid (a trusted service)"}},
    };
    return ids;
}

std::string openssl_error() {
    unsigned long e = ERR_get_error();
    if (!e) return "unknown OpenSSL error";
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    return buf;
}

struct PkeyFree {
    void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct X509Free {
    void operator()(X509* x) const { X509_free(x); }
};
struct FileClose {
    void operator()(FILE* f) const { std::fclose(f); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using Cert = std::unique_ptr<X509, X509Free>;
using File = std::unique_ptr<FILE, FileClose>;

Pkey rsa_key() {
    Pkey k(EVP_RSA_gen(2048));
    if (!k) throw std::runtime_error("RSA key generation failed: " + openssl_error());
    return k;
}

Pkey read_key(const std::string& path) {
    File f(std::fopen(path.c_str(), "r"));
    if (!f) throw std::runtime_error("cannot read " + path + ": " + std::strerror(errno));
    Pkey k(PEM_read_PrivateKey(f.get(), nullptr, nullptr, nullptr));
    if (!k) throw std::runtime_error(path + ": not a PEM private key (" + openssl_error() + ")");
    if (!EVP_PKEY_is_a(k.get(), "RSA")) throw std::runtime_error(path + ": not an RSA key (RS256 tokens need one)");
    return k;
}

// Opens path for writing with `mode` from the start (a key is never readable
// by others, not even for a moment).
File create(const std::string& path, mode_t mode) {
    std::filesystem::remove(path);
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) throw std::runtime_error("cannot write " + path + ": " + std::strerror(errno));
    File f(fdopen(fd, "w"));
    if (!f) {
        ::close(fd);
        throw std::runtime_error("cannot write " + path);
    }
    return f;
}

void write_key(const std::string& path, EVP_PKEY* k) {
    File f = create(path, 0600);
    if (!PEM_write_PrivateKey(f.get(), k, nullptr, nullptr, 0, nullptr, nullptr))
        throw std::runtime_error("cannot write " + path + ": " + openssl_error());
}

void write_cert(const std::string& path, X509* c) {
    File f = create(path, 0644);
    if (!PEM_write_X509(f.get(), c)) throw std::runtime_error("cannot write " + path + ": " + openssl_error());
}

void write_text(const std::string& path, const std::string& text, mode_t mode) {
    File f = create(path, mode);
    if (std::fwrite(text.data(), 1, text.size(), f.get()) != text.size())
        throw std::runtime_error("cannot write " + path);
}

void add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    if (!ext) throw std::runtime_error("bad certificate extension '" + value + "': " + openssl_error());
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
}

// A certificate for `key` named `cn`, signed by issuer/issuer_key (itself when
// issuer is null: the CA). `san` empty means a CA certificate.
Cert make_cert(EVP_PKEY* key, const std::string& cn, X509* issuer, EVP_PKEY* issuer_key, int days,
               const std::string& san) {
    Cert c(X509_new());
    X509_set_version(c.get(), 2);
    unsigned char serial[16];
    RAND_bytes(serial, sizeof serial);
    serial[0] &= 0x7f;  // a positive serial
    BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(c.get()));
    BN_free(bn);
    X509_gmtime_adj(X509_getm_notBefore(c.get()), -300);  // clocks of lab machines differ a little
    X509_time_adj_ex(X509_getm_notAfter(c.get()), days, 0, nullptr);
    X509_set_pubkey(c.get(), key);
    X509_NAME* name = X509_get_subject_name(c.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(cn.c_str()), -1,
                               -1, 0);
    X509* signer = issuer ? issuer : c.get();
    X509_set_issuer_name(c.get(), X509_get_subject_name(signer));
    add_ext(c.get(), signer, NID_subject_key_identifier, "hash");
    add_ext(c.get(), signer, NID_authority_key_identifier, "keyid:always");
    if (san.empty()) {
        add_ext(c.get(), signer, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(c.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        add_ext(c.get(), signer, NID_basic_constraints, "critical,CA:FALSE");
        add_ext(c.get(), signer, NID_key_usage, "critical,digitalSignature,keyEncipherment");
        add_ext(c.get(), signer, NID_ext_key_usage, "serverAuth");
        add_ext(c.get(), signer, NID_subject_alt_name, san);
    }
    if (!X509_sign(c.get(), issuer_key, EVP_sha256())) throw std::runtime_error("signing failed: " + openssl_error());
    return c;
}

std::string jwks_text(EVP_PKEY* issuer_key, const std::string& kid) {
    json jwk = json::parse(vaultwall::gate::jwk_json_from_pkey(issuer_key, kid));
    jwk["alg"] = "RS256";
    return vaultwall::gate::json_text(json{{"keys", json::array({jwk})}}) + "\n";
}

struct PkiOptions {
    std::string dir, kid = "lab-1";
    std::vector<std::string> san;
    int days = 2;
};

// DIR/ca.{key,pem}: the lab CA. DIR/vault.{key,pem}: the vault's TLS
// certificate, CN the first DNS name of --san. DIR/issuer.key and
// DIR/jwks.json: the token issuer.
void make_pki(const PkiOptions& o) {
    std::string cn, san;
    for (const auto& s : o.san) {
        if (s.rfind("DNS:", 0) != 0 && s.rfind("IP:", 0) != 0)
            throw std::invalid_argument("--san wants DNS:NAME or IP:ADDRESS, got '" + s + "'");
        if (cn.empty() && s.rfind("DNS:", 0) == 0) cn = s.substr(4);
        san += (san.empty() ? "" : ",") + s;
    }
    if (cn.empty()) throw std::invalid_argument("--san needs at least one DNS:NAME (the certificate's CN)");
    std::filesystem::create_directories(o.dir);
    ::chmod(o.dir.c_str(), 0700);
    Pkey ca_key = rsa_key(), vault_key = rsa_key(), issuer_key = rsa_key();
    Cert ca = make_cert(ca_key.get(), "vaultwall lab CA", nullptr, ca_key.get(), o.days, "");
    Cert vault = make_cert(vault_key.get(), cn, ca.get(), ca_key.get(), o.days, san);
    write_key(o.dir + "/ca.key", ca_key.get());
    write_cert(o.dir + "/ca.pem", ca.get());
    write_key(o.dir + "/vault.key", vault_key.get());
    write_cert(o.dir + "/vault.pem", vault.get());
    write_key(o.dir + "/issuer.key", issuer_key.get());
    write_text(o.dir + "/jwks.json", jwks_text(issuer_key.get(), o.kid), 0644);
}

struct MintOptions {
    std::string key, id, kid = "lab-1", issuer = kIssuer, tenant = kTenant, audience = kAudience;
    long long ttl = 3600;
};

std::string mint(const MintOptions& o) {
    auto it = identities().find(o.id);
    if (it == identities().end()) {
        std::string known;
        for (const auto& [name, _] : identities()) known += (known.empty() ? "" : ", ") + name;
        throw std::invalid_argument("unknown identity '" + o.id + "' (known: " + known + ")");
    }
    const Identity& who = it->second;
    Pkey key = read_key(o.key);
    long long now =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    json claims{{"iss", o.issuer}, {"aud", o.audience}, {"tid", o.tenant}, {"oid", who.oid}, {"appid", who.appid},
                {"sub", who.oid},  {"iat", now},        {"nbf", now},      {"exp", now + o.ttl}};
    if (!who.xms_mirid.empty()) claims["xms_mirid"] = who.xms_mirid;
    json header{{"alg", "RS256"}, {"typ", "JWT"}, {"kid", o.kid}};
    return vaultwall::gate::sign_jwt(key.get(), header, claims);
}

std::string identity_help() {
    std::string s = "Identities:";
    for (const auto& [name, who] : identities()) s += "\n  " + name + "  oid " + who.oid + ": " + who.what;
    return s;
}

}  // namespace

bool is_pki_command(std::string_view arg) { return arg == "pki" || arg == "jwks" || arg == "mint"; }

int run_pki_command(int argc, char** argv) {
    const std::string cmd = argv[0];
    CLI::App app;
    PkiOptions pki;
    MintOptions m;
    std::string key;
    if (cmd == "pki") {
        app.description(
            "vaultwall-labvault pki: write a lab CA (ca.pem, ca.key), the vault's TLS certificate signed by it "
            "(vault.pem, vault.key) and a token issuer (issuer.key, jwks.json) into DIR");
        app.add_option("--dir", pki.dir, "directory to write (created, mode 0700)")->required();
        app.add_option("--san", pki.san, "DNS:NAME or IP:ADDRESS in the vault certificate (repeatable; the first "
                                         "DNS name is its CN)")
            ->required();
        app.add_option("--days", pki.days, "validity of the certificates")->capture_default_str()->check(
            CLI::Range(1, 3650));
        app.add_option("--kid", pki.kid, "key id of the issuer's key in jwks.json")->capture_default_str();
    } else if (cmd == "jwks") {
        app.description("vaultwall-labvault jwks: print the JWKS (RS256) of an RSA private key");
        app.add_option("--key", key, "PEM private key (RSA)")->required();
        app.add_option("--kid", pki.kid, "key id")->capture_default_str();
    } else {
        app.description("vaultwall-labvault mint: print an RS256 bearer token for a lab identity, signed by the "
                        "issuer key");
        app.footer(identity_help());
        app.add_option("--key", m.key, "the issuer's PEM private key (pki's issuer.key)")->required();
        app.add_option("--id", m.id, "lab identity")->required();
        app.add_option("--ttl", m.ttl, "seconds until the token expires")->capture_default_str()->check(
            CLI::Range(1LL, 366LL * 86400));
        app.add_option("--kid", m.kid, "key id in the token header")->capture_default_str();
        app.add_option("--issuer", m.issuer, "iss claim")->capture_default_str();
        app.add_option("--tenant", m.tenant, "tid claim")->capture_default_str();
        app.add_option("--audience", m.audience, "aud claim")->capture_default_str();
    }
    app.name("vaultwall-labvault " + cmd);
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::cerr << "vaultwall-labvault " << cmd << ": " << e.what() << " (see --help)\n";
        return 2;
    }
    try {
        if (cmd == "pki") {
            make_pki(pki);
        } else if (cmd == "jwks") {
            std::cout << jwks_text(read_key(key).get(), pki.kid);
        } else {
            std::cout << mint(m) << "\n";
        }
    } catch (const std::invalid_argument& e) {
        std::cerr << "vaultwall-labvault " << cmd << ": " << e.what() << "\n";
        return 2;
    } catch (const std::exception& e) {
        std::cerr << "vaultwall-labvault " << cmd << ": " << e.what() << "\n";
        return 1;
    }
    return 0;
}

}  // namespace labvault
