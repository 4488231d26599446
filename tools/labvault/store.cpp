#include "store.hpp"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "gate/b64.hpp"
#include "gate/json_text.hpp"

namespace labvault {

namespace gate = vaultwall::gate;

namespace {

long long now_s() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string new_version() {
    unsigned char b[16];
    RAND_bytes(b, sizeof b);
    return gate::hex_encode(std::string(reinterpret_cast<char*>(b), sizeof b));
}

Reply error(unsigned status, const std::string& code, const std::string& message) {
    return {status, json{{"error", {{"code", code}, {"message", message}}}}};
}

Reply not_found(const std::string& what, const std::string& name) {
    std::string cap = what == "secret" ? "Secret" : "Key";
    return error(404, cap + "NotFound",
                 "A " + what + " with (name/id) " + name +
                     " was not found in this key vault. If you recently deleted this " + what +
                     " you may be able to recover it using the correct recovery command. For help resolving this "
                     "issue, please see https://go.microsoft.com/fwlink/?linkid=2125182");
}

bool valid_name(const std::string& s) {
    if (s.empty() || s.size() > 127) return false;
    for (char c : s)
        if (!std::isalnum((unsigned char)c) && c != '-') return false;
    return true;
}

// Key Vault object names are case-insensitive (the gate's scope check is
// too): the name an object was created with, if one matches `name` in any
// case, else `name` itself (a new object keeps its spelling).
std::string stored_name(const json& all, const std::string& name) {
    auto same = [&name](const std::string& k) {
        return k.size() == name.size() && std::equal(k.begin(), k.end(), name.begin(), [](char a, char b) {
                   return std::tolower((unsigned char)a) == std::tolower((unsigned char)b);
               });
    };
    for (const auto& [k, v] : all.items())
        if (same(k)) return k;
    return name;
}

json attributes(const json& v) {
    return json{{"enabled", v.value("enabled", true)},
                {"created", v["created"]},
                {"updated", v["updated"]},
                {"recoveryLevel", "Recoverable+Purgeable"},
                {"recoverableDays", 90}};
}

// Finds a version entry (the latest when version is empty).
const json* find_version(const json& obj, const std::string& version) {
    const auto& vs = obj["versions"];
    if (vs.empty()) return nullptr;
    if (version.empty()) return &vs.back();
    for (const auto& v : vs)
        if (v["version"] == version) return &v;
    return nullptr;
}

json secret_bundle(const std::string& base, const std::string& name, const json& v) {
    json b{{"value", v["value"]},
           {"id", base + "/secrets/" + name + "/" + v["version"].get<std::string>()},
           {"attributes", attributes(v)},
           {"tags", v.value("tags", json::object())}};
    if (v.contains("contentType")) b["contentType"] = v["contentType"];
    return b;
}

json secret_item(const std::string& base, const std::string& id_path, const json& v) {
    json b{{"id", base + id_path}, {"attributes", attributes(v)}, {"tags", v.value("tags", json::object())}};
    if (v.contains("contentType")) b["contentType"] = v["contentType"];
    return b;
}

// ---- RSA keys ----

struct PkeyFree {
    void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
struct CtxFree {
    void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};

Pkey load_pem(const std::string& pem) {
    BIO* b = BIO_new_mem_buf(pem.data(), (int)pem.size());
    EVP_PKEY* k = PEM_read_bio_PrivateKey(b, nullptr, nullptr, nullptr);
    BIO_free(b);
    return Pkey(k);
}

std::string to_pem(EVP_PKEY* k) {
    BIO* b = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(b, k, nullptr, nullptr, 0, nullptr, nullptr);
    char* p = nullptr;
    long n = BIO_get_mem_data(b, &p);
    std::string s(p, (size_t)n);
    BIO_free(b);
    return s;
}

std::string bn_param(EVP_PKEY* k, const char* name) {
    BIGNUM* bn = nullptr;
    if (!EVP_PKEY_get_bn_param(k, name, &bn)) return {};
    std::string out((size_t)BN_num_bytes(bn), '\0');
    BN_bn2bin(bn, reinterpret_cast<unsigned char*>(out.data()));
    BN_free(bn);
    return out;
}

json key_bundle(const std::string& base, const std::string& name, const json& v) {
    Pkey k = load_pem(v["pem"]);
    json key{{"kid", base + "/keys/" + name + "/" + v["version"].get<std::string>()},
             {"kty", "RSA"},
             {"key_ops", v.value("key_ops", json::array({"encrypt", "decrypt", "wrapKey", "unwrapKey", "sign", "verify"}))},
             {"n", gate::b64url_encode(bn_param(k.get(), OSSL_PKEY_PARAM_RSA_N))},
             {"e", gate::b64url_encode(bn_param(k.get(), OSSL_PKEY_PARAM_RSA_E))}};
    return json{{"key", key}, {"attributes", attributes(v)}, {"tags", v.value("tags", json::object())}};
}

// RSA-OAEP (SHA-1) and RSA-OAEP-256 (SHA-256, MGF1-SHA-256), and RSA1_5.
std::optional<std::string> rsa_crypt(EVP_PKEY* k, const std::string& alg, const std::string& in, bool encrypt) {
    std::unique_ptr<EVP_PKEY_CTX, CtxFree> ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, k, nullptr));
    if (!ctx) return std::nullopt;
    if ((encrypt ? EVP_PKEY_encrypt_init(ctx.get()) : EVP_PKEY_decrypt_init(ctx.get())) <= 0) return std::nullopt;
    if (alg == "RSA-OAEP" || alg == "RSA-OAEP-256") {
        if (EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) <= 0) return std::nullopt;
        const EVP_MD* md = alg == "RSA-OAEP" ? EVP_sha1() : EVP_sha256();
        if (EVP_PKEY_CTX_set_rsa_oaep_md(ctx.get(), md) <= 0 || EVP_PKEY_CTX_set_rsa_mgf1_md(ctx.get(), md) <= 0)
            return std::nullopt;
    } else if (alg == "RSA1_5") {
        if (EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING) <= 0) return std::nullopt;
    } else {
        return std::nullopt;
    }
    size_t len = 0;
    auto* inp = reinterpret_cast<const unsigned char*>(in.data());
    int rc = encrypt ? EVP_PKEY_encrypt(ctx.get(), nullptr, &len, inp, in.size())
                     : EVP_PKEY_decrypt(ctx.get(), nullptr, &len, inp, in.size());
    if (rc <= 0) return std::nullopt;
    std::string out(len, '\0');
    auto* outp = reinterpret_cast<unsigned char*>(out.data());
    rc = encrypt ? EVP_PKEY_encrypt(ctx.get(), outp, &len, inp, in.size())
                 : EVP_PKEY_decrypt(ctx.get(), outp, &len, inp, in.size());
    if (rc <= 0) return std::nullopt;
    out.resize(len);
    return out;
}

}  // namespace

Store::Store(std::string dir) : dir_(std::move(dir)) {
    std::error_code ec;
    std::filesystem::create_directories(dir_, ec);
    if (ec) throw std::runtime_error("cannot create data directory " + dir_ + ": " + ec.message());
    std::string path = dir_ + "/state.json";
    state_ = json{{"secrets", json::object()}, {"keys", json::object()}};
    std::ifstream in(path);
    if (in) {
        std::stringstream ss;
        ss << in.rdbuf();
        json j = json::parse(ss.str(), nullptr, false);
        if (j.is_discarded() || !j.is_object()) throw std::runtime_error(path + " is not valid JSON");
        if (j.contains("secrets")) state_["secrets"] = j["secrets"];
        if (j.contains("keys")) state_["keys"] = j["keys"];
    }
    // Fail early if the directory is not writable.
    save();
}

void Store::save() {
    std::string path = dir_ + "/state.json";
    std::string tmp = path + ".tmp";
    {
        std::ofstream o(tmp, std::ios::trunc);
        if (!o) throw std::runtime_error("cannot write " + tmp);
        o << gate::json_text(state_, 1);
        o.flush();
        if (!o) throw std::runtime_error("cannot write " + tmp);
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) throw std::runtime_error("cannot replace " + path);
}

Reply Store::handle(const std::string& method, const std::vector<std::string>& segs, const std::string& body,
                    const std::string& base) {
    json in = json::object();
    if (!body.empty()) {
        in = json::parse(body, nullptr, false);
        if (in.is_discarded() || !in.is_object()) return error(400, "BadParameter", "The request body is not a JSON object.");
    }
    std::lock_guard lock(mu_);
    try {
        if (!segs.empty() && segs[0] == "secrets") return secrets(method, segs, in, base);
        if (!segs.empty() && segs[0] == "keys") return keys(method, segs, in, base);
    } catch (const json::exception& e) {
        return error(400, "BadParameter", std::string("Invalid request: ") + e.what());
    }
    return error(404, "NotFound", "The requested path is not served by this lab vault.");
}

Reply Store::secrets(const std::string& m, const std::vector<std::string>& s, const json& in, const std::string& base) {
    auto& all = state_["secrets"];
    // POST /secrets/restore
    if (s.size() == 2 && s[1] == "restore" && m == "POST") {
        auto raw = gate::b64url_decode(in.value("value", ""));
        if (!raw) return error(400, "BadParameter", "Malformed backup blob.");
        json blob = json::parse(*raw, nullptr, false);
        if (blob.is_discarded() || !blob.contains("name") || !blob.contains("versions"))
            return error(400, "BadParameter", "Malformed backup blob.");
        std::string name = blob["name"];
        if (!valid_name(name)) return error(400, "BadParameter", "Malformed backup blob.");
        name = stored_name(all, name);
        if (all.contains(name))
            return error(409, "Conflict", "Secret " + name + " already exists.");
        all[name] = json{{"versions", blob["versions"]}};
        save();
        return {200, secret_bundle(base, name, all[name]["versions"].back())};
    }
    if (s.size() == 1) {
        if (m != "GET") return error(405, "MethodNotAllowed", "Method not allowed.");
        json items = json::array();
        for (auto& [name, obj] : all.items())
            if (auto* v = find_version(obj, "")) items.push_back(secret_item(base, "/secrets/" + name, *v));
        return {200, json{{"value", items}, {"nextLink", nullptr}}};
    }
    if (!valid_name(s[1])) return error(400, "BadParameter", "Invalid secret name.");
    const std::string name = stored_name(all, s[1]);
    bool exists = all.contains(name);
    if (s.size() == 2 && m == "PUT") {
        if (!in.contains("value") || !in["value"].is_string())
            return error(400, "BadParameter", "The parameter 'value' is required.");
        json v{{"version", new_version()}, {"value", in["value"]}, {"created", now_s()}, {"updated", now_s()},
               {"enabled", true}};
        if (in.contains("contentType")) v["contentType"] = in["contentType"];
        if (in.contains("tags")) v["tags"] = in["tags"];
        if (in.contains("attributes") && in["attributes"].contains("enabled"))
            v["enabled"] = in["attributes"]["enabled"];
        all[name]["versions"].push_back(v);
        save();
        return {200, secret_bundle(base, name, v)};
    }
    if (!exists) return not_found("secret", name);
    auto& obj = all[name];
    if (s.size() == 2 && m == "DELETE") {
        json b = secret_bundle(base, name, obj["versions"].back());
        b.erase("value");
        b["recoveryId"] = base + "/deletedsecrets/" + name;
        b["deletedDate"] = now_s();
        b["scheduledPurgeDate"] = now_s() + 90 * 86400;
        all.erase(name);
        save();
        return {200, b};
    }
    if (s.size() == 3 && s[2] == "versions" && m == "GET") {
        json items = json::array();
        for (const auto& v : obj["versions"])
            items.push_back(secret_item(base, "/secrets/" + name + "/" + v["version"].get<std::string>(), v));
        return {200, json{{"value", items}, {"nextLink", nullptr}}};
    }
    if (s.size() == 3 && s[2] == "backup" && m == "POST") {
        json blob{{"name", name}, {"versions", obj["versions"]}};
        return {200, json{{"value", gate::b64url_encode(gate::json_text(blob))}}};
    }
    if ((s.size() == 2 || s.size() == 3) && m == "GET") {
        const json* v = find_version(obj, s.size() == 3 ? s[2] : "");
        if (!v) return not_found("secret", name);
        return {200, secret_bundle(base, name, *v)};
    }
    return error(405, "MethodNotAllowed", "Method not allowed.");
}

Reply Store::keys(const std::string& m, const std::vector<std::string>& s, const json& in, const std::string& base) {
    auto& all = state_["keys"];
    if (s.size() == 1) {
        if (m != "GET") return error(405, "MethodNotAllowed", "Method not allowed.");
        json items = json::array();
        for (auto& [name, obj] : all.items())
            if (auto* v = find_version(obj, ""))
                items.push_back(json{{"kid", base + "/keys/" + name}, {"attributes", attributes(*v)}});
        return {200, json{{"value", items}, {"nextLink", nullptr}}};
    }
    if (!valid_name(s[1])) return error(400, "BadParameter", "Invalid key name.");
    const std::string name = stored_name(all, s[1]);
    if (s.size() == 3 && s[2] == "create" && m == "POST") {
        std::string kty = in.value("kty", "");
        if (kty != "RSA" && kty != "RSA-HSM")
            return error(400, "BadParameter", "Only RSA keys are supported by the lab vault.");
        int bits = in.value("key_size", 2048);
        if (bits != 2048 && bits != 3072 && bits != 4096)
            return error(400, "BadParameter", "key_size must be 2048, 3072 or 4096.");
        Pkey k(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", (size_t)bits));
        if (!k) return error(500, "InternalError", "Key generation failed.");
        json v{{"version", new_version()}, {"pem", to_pem(k.get())}, {"created", now_s()}, {"updated", now_s()},
               {"enabled", true}};
        if (in.contains("key_ops")) v["key_ops"] = in["key_ops"];
        if (in.contains("tags")) v["tags"] = in["tags"];
        all[name]["versions"].push_back(v);
        save();
        return {200, key_bundle(base, name, v)};
    }
    if (!all.contains(name)) return not_found("key", name);
    auto& obj = all[name];
    // GET /keys/{n}[/{v}], POST /keys/{n}[/{v}]/wrapkey|unwrapkey
    std::string last = s.back();
    bool crypto = m == "POST" && (last == "wrapkey" || last == "unwrapkey" || last == "encrypt" || last == "decrypt");
    if (crypto && (s.size() == 3 || s.size() == 4)) {
        const json* v = find_version(obj, s.size() == 4 ? s[2] : "");
        if (!v) return not_found("key", name);
        std::string alg = in.value("alg", "");
        auto data = gate::b64url_decode(in.value("value", ""));
        if (!data) return error(400, "BadParameter", "The parameter 'value' is not base64url.");
        Pkey k = load_pem((*v)["pem"]);
        bool enc = last == "wrapkey" || last == "encrypt";
        auto out = rsa_crypt(k.get(), alg, *data, enc);
        if (!out) {
            if (alg != "RSA-OAEP" && alg != "RSA-OAEP-256" && alg != "RSA1_5")
                return error(400, "BadParameter", "Unsupported algorithm '" + alg + "'.");
            return error(400, "BadParameter", "Operation failed (bad input for the key).");
        }
        return {200, json{{"kid", base + "/keys/" + name + "/" + (*v)["version"].get<std::string>()},
                          {"value", gate::b64url_encode(*out)}}};
    }
    if ((s.size() == 2 || s.size() == 3) && m == "GET") {
        if (s.size() == 3 && s[2] == "versions") {
            json items = json::array();
            for (const auto& v : obj["versions"])
                items.push_back(json{{"kid", base + "/keys/" + name + "/" + v["version"].get<std::string>()},
                                     {"attributes", attributes(v)}});
            return {200, json{{"value", items}, {"nextLink", nullptr}}};
        }
        const json* v = find_version(obj, s.size() == 3 ? s[2] : "");
        if (!v) return not_found("key", name);
        return {200, key_bundle(base, name, *v)};
    }
    return error(405, "MethodNotAllowed", "Method not allowed.");
}

}  // namespace labvault
