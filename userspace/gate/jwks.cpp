#include "gate/jwks.hpp"

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>

#include "gate/b64.hpp"
#include "gate/json_text.hpp"

namespace vaultwall::gate {
namespace {

using json = nlohmann::json;

struct BnFree {
    void operator()(BIGNUM* b) const { BN_free(b); }
};
using BnPtr = std::unique_ptr<BIGNUM, BnFree>;
struct BldFree {
    void operator()(OSSL_PARAM_BLD* b) const { OSSL_PARAM_BLD_free(b); }
};
struct ParamFree {
    void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
};
struct CtxFree {
    void operator()(EVP_PKEY_CTX* c) const { EVP_PKEY_CTX_free(c); }
};

std::string member(const json& j, const char* name) {
    auto it = j.find(name);
    if (it == j.end() || !it->is_string()) return {};
    return it->get<std::string>();
}

std::string decode_member(const json& j, const char* name, const std::string& kid) {
    auto s = member(j, name);
    auto d = b64url_decode(s);
    if (s.empty() || !d || d->empty())
        throw JwksError("key '" + kid + "': member '" + std::string(name) + "' is missing or not base64url");
    return *d;
}

PkeyPtr fromdata(const char* type, OSSL_PARAM* params, const std::string& kid) {
    std::unique_ptr<EVP_PKEY_CTX, CtxFree> ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
    EVP_PKEY* pkey = nullptr;
    if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) <= 0 ||
        EVP_PKEY_fromdata(ctx.get(), &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0 || !pkey)
        throw JwksError("key '" + kid + "': OpenSSL rejected the key material");
    return PkeyPtr(pkey, PkeyDeleter{});
}

PkeyPtr rsa_key(const json& j, const std::string& kid) {
    auto n = decode_member(j, "n", kid);
    auto e = decode_member(j, "e", kid);
    if (n.size() < 256) throw JwksError("key '" + kid + "': RSA modulus shorter than 2048 bits");
    BnPtr bn_n(BN_bin2bn(reinterpret_cast<const unsigned char*>(n.data()), (int)n.size(), nullptr));
    BnPtr bn_e(BN_bin2bn(reinterpret_cast<const unsigned char*>(e.data()), (int)e.size(), nullptr));
    std::unique_ptr<OSSL_PARAM_BLD, BldFree> bld(OSSL_PARAM_BLD_new());
    if (!bn_n || !bn_e || !bld || !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) ||
        !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()))
        throw JwksError("key '" + kid + "': cannot build RSA parameters");
    std::unique_ptr<OSSL_PARAM, ParamFree> params(OSSL_PARAM_BLD_to_param(bld.get()));
    if (!params) throw JwksError("key '" + kid + "': cannot build RSA parameters");
    return fromdata("RSA", params.get(), kid);
}

PkeyPtr ec_key(const json& j, const std::string& kid) {
    auto x = decode_member(j, "x", kid);
    auto y = decode_member(j, "y", kid);
    if (x.size() != 32 || y.size() != 32) throw JwksError("key '" + kid + "': P-256 coordinates must be 32 bytes");
    std::string point = "\x04" + x + y;
    std::unique_ptr<OSSL_PARAM_BLD, BldFree> bld(OSSL_PARAM_BLD_new());
    if (!bld || !OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
        !OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()))
        throw JwksError("key '" + kid + "': cannot build EC parameters");
    std::unique_ptr<OSSL_PARAM, ParamFree> params(OSSL_PARAM_BLD_to_param(bld.get()));
    if (!params) throw JwksError("key '" + kid + "': cannot build EC parameters");
    return fromdata("EC", params.get(), kid);  // fromdata checks the point is on the curve
}

std::string bn_bytes(EVP_PKEY* pkey, const char* name, size_t pad_to = 0) {
    BIGNUM* bn = nullptr;
    if (!EVP_PKEY_get_bn_param(pkey, name, &bn)) return {};
    BnPtr guard(bn);
    size_t len = std::max<size_t>(pad_to, (size_t)BN_num_bytes(bn));
    std::string out(len, '\0');
    BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), (int)len);
    return out;
}

}  // namespace

KeySet KeySet::parse(std::string_view text) {
    json doc = json::parse(text, nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) throw JwksError("JWKS is not a JSON object");
    auto it = doc.find("keys");
    if (it == doc.end() || !it->is_array()) throw JwksError("JWKS has no \"keys\" array");
    KeySet set;
    for (const auto& k : *it) {
        if (!k.is_object()) continue;
        auto kid = member(k, "kid");
        auto kty = member(k, "kty");
        auto use = member(k, "use");
        if (kid.empty() || (!use.empty() && use != "sig")) continue;
        Jwk jwk;
        jwk.kid = kid;
        jwk.alg = member(k, "alg");
        if (kty == "RSA") {
            jwk.type = KeyType::rsa;
            jwk.key = rsa_key(k, kid);
        } else if (kty == "EC" && member(k, "crv") == "P-256") {
            jwk.type = KeyType::ec_p256;
            jwk.key = ec_key(k, kid);
        } else {
            continue;
        }
        set.keys_[kid] = std::move(jwk);
    }
    if (set.keys_.empty()) throw JwksError("JWKS holds no usable RSA or EC P-256 signing key");
    return set;
}

KeySet KeySet::load_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw JwksError("cannot read JWKS file " + path);
    std::ostringstream ss;
    ss << in.rdbuf();
    try {
        return parse(ss.str());
    } catch (const JwksError& e) {
        throw JwksError(path + ": " + e.what());
    }
}

const Jwk* KeySet::find(const std::string& kid) const {
    auto it = keys_.find(kid);
    return it == keys_.end() ? nullptr : &it->second;
}

std::string jwk_json_from_pkey(EVP_PKEY* pkey, const std::string& kid) {
    json j;
    j["kid"] = kid;
    j["use"] = "sig";
    if (EVP_PKEY_is_a(pkey, "RSA")) {
        j["kty"] = "RSA";
        j["n"] = b64url_encode(bn_bytes(pkey, OSSL_PKEY_PARAM_RSA_N));
        j["e"] = b64url_encode(bn_bytes(pkey, OSSL_PKEY_PARAM_RSA_E));
    } else {
        j["kty"] = "EC";
        j["crv"] = "P-256";
        j["x"] = b64url_encode(bn_bytes(pkey, OSSL_PKEY_PARAM_EC_PUB_X, 32));
        j["y"] = b64url_encode(bn_bytes(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, 32));
    }
    return json_text(j);
}

}  // namespace vaultwall::gate
