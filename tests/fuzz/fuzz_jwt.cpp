// JWT and JWKS parsing and verification (SPEC §5.2) on arbitrary bytes.
//
// The first byte says what the rest is:
//   0  a compact token, validated as the gate validates a bearer token;
//   1  a JWKS document: KeySet::parse, then tokens the harness signed are
//      validated against what it loaded;
//   2  header JSON, "\n~\n", payload JSON: the harness signs it with its
//      EC key (ES256), so mutations reach the claim checks behind the
//      signature; 3: the same with its RSA key (RS256).
// Never a crash, and a token the validator accepts must be acceptable on its
// own terms, checked here independently of jwt.cpp: RS256/ES256 with the
// key its kid names, a signature OpenSSL verifies, the issuer, audience and
// tenant, and exp/nbf/iat integral int64 seconds that put `now` inside the
// validity window (60 s skew).
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>

#include "common.hpp"
#include "gate/b64.hpp"
#include "gate/jwks.hpp"
#include "gate/jwt.hpp"

using namespace vaultwall;
using namespace vaultwall::gate;
using nlohmann::json;

namespace {

const std::string kIssuer = "https://sts.lab.test/3f1c9a52-7d0e-4b8a-9c11-5e2f0a6d4b10/";
const std::string kAudience = "https://vault.azure.net";
const std::string kTenant = "3f1c9a52-7d0e-4b8a-9c11-5e2f0a6d4b10";
constexpr std::int64_t kNow = 1'900'000'000;  // fixed: runs are reproducible
constexpr std::int64_t kSkew = 60;

EVP_PKEY* load_key(const char* file) {
    std::string path = std::string(VW_FUZZ_DATA_DIR) + "/" + file;
    FILE* f = std::fopen(path.c_str(), "r");
    if (!f) {
        std::fprintf(stderr, "fuzz_jwt: cannot open %s\n", path.c_str());
        std::exit(2);
    }
    EVP_PKEY* k = PEM_read_PrivateKey(f, nullptr, nullptr, nullptr);
    std::fclose(f);
    if (!k) std::exit(2);
    return k;
}

struct World {
    EVP_PKEY* ec = load_key("ec-p256.pem");    // kid "ec1"
    EVP_PKEY* rsa = load_key("rsa-2048.pem");  // kid "rsa1"
    std::shared_ptr<const KeySet> keys;
    std::unique_ptr<JwtValidator> validator;
    std::string signed_ec, signed_rsa;  // valid tokens, for the JWKS mode

    World() {
        std::string jwks = "{\"keys\":[" + jwk_json_from_pkey(ec, "ec1") + "," + jwk_json_from_pkey(rsa, "rsa1") + "]}";
        keys = std::make_shared<const KeySet>(KeySet::parse(jwks));
        validator = std::make_unique<JwtValidator>(policy(keys), 64);  // small cache: eviction too
        json payload = {{"iss", kIssuer}, {"aud", kAudience}, {"tid", kTenant}, {"oid", "o"},
                        {"exp", kNow + 3600}, {"nbf", kNow - 60}};
        signed_ec = sign_jwt(ec, {{"alg", "ES256"}, {"kid", "ec1"}, {"typ", "JWT"}}, payload);
        signed_rsa = sign_jwt(rsa, {{"alg", "RS256"}, {"kid", "rsa1"}, {"typ", "JWT"}}, payload);
    }

    static JwtPolicy policy(std::shared_ptr<const KeySet> ks) {
        JwtPolicy p;
        p.audience = kAudience;
        p.issuers.push_back({kIssuer, std::move(ks), nullptr});
        return p;
    }
    EVP_PKEY* key_for(const std::string& kid) const {
        return kid == "ec1" ? ec : kid == "rsa1" ? rsa : nullptr;
    }
};

World& world() {
    static World w;
    return w;
}

Clock::time_point now() { return Clock::time_point(std::chrono::seconds(kNow)); }

// An integral number of seconds that fits int64, as a JSON value.
std::optional<std::int64_t> seconds(const json& v) {
    if (v.is_number_integer() && !v.is_number_unsigned()) return v.get<std::int64_t>();
    if (v.is_number_unsigned()) {
        auto u = v.get<std::uint64_t>();
        if (u > std::uint64_t(INT64_MAX)) return std::nullopt;
        return std::int64_t(u);
    }
    if (v.is_number_float()) {
        double d = v.get<double>();
        if (!std::isfinite(d) || d != std::floor(d) || d < -9.2e18 || d > 9.2e18) return std::nullopt;
        return std::int64_t(d);
    }
    return std::nullopt;
}

// The signature over header.payload, checked with OpenSSL directly.
bool signature_ok(EVP_PKEY* key, const std::string& alg, std::string_view input, const std::string& sig) {
    std::string der;
    if (alg == "ES256") {
        if (sig.size() != 64) return false;
        ECDSA_SIG* s = ECDSA_SIG_new();
        ECDSA_SIG_set0(s, BN_bin2bn(reinterpret_cast<const unsigned char*>(sig.data()), 32, nullptr),
                       BN_bin2bn(reinterpret_cast<const unsigned char*>(sig.data()) + 32, 32, nullptr));
        unsigned char* p = nullptr;
        int n = i2d_ECDSA_SIG(s, &p);
        ECDSA_SIG_free(s);
        if (n <= 0) return false;
        der.assign(reinterpret_cast<char*>(p), n);
        OPENSSL_free(p);
    } else {
        der = sig;
    }
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    bool ok = EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1 &&
              EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(der.data()), der.size(),
                               reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
    EVP_MD_CTX_free(ctx);
    return ok;
}

// Everything an accepted token must satisfy, judged without jwt.cpp.
void check_accepted(std::string_view token, const JwtResult& r, EVP_PKEY* (*key_for)(const std::string&)) {
    FUZZ_CHECK(r.claims != nullptr, "accepted without claims");
    auto d1 = token.find('.');
    auto d2 = token.find('.', d1 + 1);
    FUZZ_CHECK(d1 != std::string_view::npos && d2 != std::string_view::npos &&
                   token.find('.', d2 + 1) == std::string_view::npos,
               "accepted a token that is not three parts");
    auto h = b64url_decode(token.substr(0, d1));
    auto p = b64url_decode(token.substr(d1 + 1, d2 - d1 - 1));
    auto s = b64url_decode(token.substr(d2 + 1));
    FUZZ_CHECK(h && p && s, "accepted a token that is not base64url");
    json header = json::parse(*h, nullptr, false), payload = json::parse(*p, nullptr, false);
    FUZZ_CHECK(header.is_object() && payload.is_object(), "accepted a token whose parts are not JSON objects");
    std::string alg = header.value("alg", json()).is_string() ? header["alg"].get<std::string>() : "";
    std::string kid = header.value("kid", json()).is_string() ? header["kid"].get<std::string>() : "";
    FUZZ_CHECK(alg == "ES256" || alg == "RS256", "accepted alg '%s'", alg.c_str());
    FUZZ_CHECK(!header.contains("crit"), "accepted a critical header");
    EVP_PKEY* key = key_for(kid);
    FUZZ_CHECK(key != nullptr, "accepted unknown kid '%s'", kid.c_str());
    FUZZ_CHECK((alg == "ES256") == (EVP_PKEY_get_base_id(key) == EVP_PKEY_EC), "alg %s with kid %s", alg.c_str(),
               kid.c_str());
    FUZZ_CHECK(signature_ok(key, alg, token.substr(0, d2), *s), "accepted a signature OpenSSL refuses");

    FUZZ_CHECK(payload.value("iss", json()) == kIssuer, "accepted issuer %s", payload.value("iss", json()).dump().c_str());
    FUZZ_CHECK(payload.value("tid", json()) == kTenant, "accepted tenant %s", payload.value("tid", json()).dump().c_str());
    const json aud = payload.value("aud", json());
    bool aud_ok = aud == kAudience;
    if (aud.is_array())
        for (const auto& a : aud) aud_ok = aud_ok || a == kAudience;
    FUZZ_CHECK(aud_ok, "accepted audience %s", aud.dump().c_str());

    FUZZ_CHECK(payload.contains("exp"), "accepted without exp");
    auto exp = seconds(payload["exp"]);
    FUZZ_CHECK(exp.has_value(), "accepted exp %s (not integral int64 seconds)", payload["exp"].dump().c_str());
    FUZZ_CHECK(kNow <= *exp + kSkew, "accepted an expired token (exp %lld)", (long long)*exp);
    if (payload.contains("nbf")) {
        auto nbf = seconds(payload["nbf"]);
        FUZZ_CHECK(nbf.has_value(), "accepted nbf %s (not integral int64 seconds)", payload["nbf"].dump().c_str());
        FUZZ_CHECK(*nbf <= kNow + kSkew, "accepted a token not yet valid (nbf %lld)", (long long)*nbf);
    }
    if (payload.contains("iat"))
        FUZZ_CHECK(seconds(payload["iat"]).has_value(), "accepted iat %s (not integral int64 seconds)",
                   payload["iat"].dump().c_str());
    FUZZ_CHECK(r.claims->exp == *exp, "claims exp %lld, token says %lld", (long long)r.claims->exp, (long long)*exp);
}

EVP_PKEY* world_key(const std::string& kid) { return world().key_for(kid); }

// header.payload signed by the harness (what sign_jwt does, but over raw bytes
// that need not be JSON).
std::string sign_raw(EVP_PKEY* key, std::string_view header, std::string_view payload) {
    std::string input = b64url_encode(header) + "." + b64url_encode(payload);
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    size_t len = 0;
    std::string sig;
    if (EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1 &&
        EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1) {
        sig.resize(len);
        EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                       reinterpret_cast<const unsigned char*>(input.data()), input.size());
        sig.resize(len);
    }
    EVP_MD_CTX_free(ctx);
    if (EVP_PKEY_get_base_id(key) == EVP_PKEY_EC) sig = der_to_jose(sig).value_or("");
    return input + "." + b64url_encode(sig);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    World& w = world();
    const std::string_view rest = fuzz::as_text(data + 1, size - 1);
    switch (data[0] % 4) {
    case 0: {
        JwtResult r = w.validator->validate(rest, kTenant, now());
        if (r.ok()) check_accepted(rest, r, world_key);
        break;
    }
    case 1: {
        std::optional<KeySet> ks;
        try {
            ks = KeySet::parse(rest);
        } catch (const JwksError&) {
            return 0;  // refused, with a message: fine
        }
        FUZZ_CHECK(ks->size() > 0, "a JWKS with no usable key loaded");
        JwtValidator v(World::policy(std::make_shared<const KeySet>(std::move(*ks))), 4);
        // A token verifies only against the key that signed it.
        for (const std::string* tok : {&w.signed_ec, &w.signed_rsa}) {
            JwtResult r = v.validate(*tok, kTenant, now());
            if (!r.ok()) continue;
            const Jwk* jwk = v.policy().issuers[0].keys->find(tok == &w.signed_ec ? "ec1" : "rsa1");
            FUZZ_CHECK(jwk && EVP_PKEY_eq(jwk->key.get(), tok == &w.signed_ec ? w.ec : w.rsa) == 1,
                       "a token verified with a key that did not sign it");
        }
        break;
    }
    default: {
        auto parts = fuzz::split(rest, "\n~\n");
        if (parts.size() != 2) return 0;
        EVP_PKEY* key = data[0] % 4 == 2 ? w.ec : w.rsa;
        std::string token = sign_raw(key, parts[0], parts[1]);
        JwtResult r = w.validator->validate(token, kTenant, now());
        if (r.ok()) check_accepted(token, r, world_key);
        break;
    }
    }
    return 0;
}
