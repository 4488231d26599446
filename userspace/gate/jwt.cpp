#include "gate/jwt.hpp"

#include <cmath>
#include <limits>

#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>

#include "gate/b64.hpp"
#include "gate/jwks_remote.hpp"
#include "gate/json_text.hpp"

namespace vaultwall::gate {
namespace {

using json = nlohmann::json;

struct MdCtxFree {
    void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

JwtResult fail(JwtError e, std::string msg) {
    JwtResult r;
    r.error = e;
    r.message = std::move(msg);
    return r;
}

std::string str_claim(const json& j, const char* name) {
    auto it = j.find(name);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string{};
}

// A NumericDate claim: an integer in the int64 range (written as a JSON
// integer, or as a float with no fraction). Anything else is nullopt: a
// double beyond the range cast to int64 is undefined behaviour (it wrapped,
// making nbf=1e300 "long valid"), and nlohmann keeps 2^63..2^64-1 unsigned.
std::optional<int64_t> num_claim(const json& j, const char* name) {
    auto it = j.find(name);
    if (it == j.end() || !it->is_number()) return std::nullopt;
    if (it->is_number_unsigned()) {
        auto u = it->get<std::uint64_t>();
        if (u > static_cast<std::uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
        return static_cast<int64_t>(u);
    }
    if (it->is_number_integer()) return it->get<int64_t>();
    double d = it->get<double>();
    // [-2^63, 2^63): both bounds are exact doubles.
    if (!std::isfinite(d) || std::trunc(d) != d || d < -9223372036854775808.0 || d >= 9223372036854775808.0)
        return std::nullopt;
    return static_cast<int64_t>(d);
}

std::optional<json> decode_json_part(std::string_view part) {
    auto raw = b64url_decode(part);
    if (!raw) return std::nullopt;
    json j = json::parse(*raw, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return std::nullopt;
    return j;
}

bool verify_sig(EVP_PKEY* key, std::string_view signing_input, std::string_view sig) {
    MdCtx ctx(EVP_MD_CTX_new());
    if (!ctx) return false;
    if (EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) != 1) return false;
    return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                            reinterpret_cast<const unsigned char*>(signing_input.data()),
                            signing_input.size()) == 1;
}

}  // namespace

std::string Claims::caller() const {
    return "appid=" + app() + ";oid=" + oid + ";iss=" + iss;
}

const char* to_string(JwtError e) {
    switch (e) {
    case JwtError::none: return "ok";
    case JwtError::too_large: return "token_too_large";
    case JwtError::malformed: return "malformed_token";
    case JwtError::unsupported_alg: return "unsupported_alg";
    case JwtError::missing_kid: return "missing_kid";
    case JwtError::unknown_issuer: return "bad_issuer";
    case JwtError::unknown_kid: return "unknown_kid";
    case JwtError::key_mismatch: return "key_alg_mismatch";
    case JwtError::bad_signature: return "bad_signature";
    case JwtError::bad_audience: return "bad_audience";
    case JwtError::expired: return "token_expired";
    case JwtError::not_yet_valid: return "token_not_yet_valid";
    case JwtError::bad_tenant: return "bad_tenant";
    }
    return "invalid_token";
}

std::string sha256(std::string_view data) {
    // Fetched once (EVP_sha256() would fetch it, under a lock, on every call);
    // one digest context per thread, reused.
    static EVP_MD* const md_sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    thread_local MdCtx ctx(EVP_MD_CTX_new());
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (!md_sha256 || !ctx || EVP_DigestInit_ex2(ctx.get(), md_sha256, nullptr) != 1 ||
        EVP_DigestUpdate(ctx.get(), data.data(), data.size()) != 1 || EVP_DigestFinal_ex(ctx.get(), md, &len) != 1)
        throw std::runtime_error("sha256: OpenSSL digest failed");
    return std::string(reinterpret_cast<char*>(md), len);
}

std::optional<std::string> jose_to_der(std::string_view raw) {
    if (raw.size() != 64) return std::nullopt;
    ECDSA_SIG* sig = ECDSA_SIG_new();
    if (!sig) return std::nullopt;
    BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()), 32, nullptr);
    BIGNUM* s = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()) + 32, 32, nullptr);
    if (!r || !s || ECDSA_SIG_set0(sig, r, s) != 1) {
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(sig);
        return std::nullopt;
    }
    unsigned char* der = nullptr;
    int len = i2d_ECDSA_SIG(sig, &der);
    ECDSA_SIG_free(sig);
    if (len <= 0) return std::nullopt;
    std::string out(reinterpret_cast<char*>(der), (size_t)len);
    OPENSSL_free(der);
    return out;
}

std::optional<std::string> der_to_jose(std::string_view der) {
    const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
    ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, (long)der.size());
    if (!sig) return std::nullopt;
    std::string out(64, '\0');
    const BIGNUM *r = nullptr, *s = nullptr;
    ECDSA_SIG_get0(sig, &r, &s);
    bool ok = BN_bn2binpad(r, reinterpret_cast<unsigned char*>(out.data()), 32) == 32 &&
              BN_bn2binpad(s, reinterpret_cast<unsigned char*>(out.data()) + 32, 32) == 32;
    ECDSA_SIG_free(sig);
    if (!ok) return std::nullopt;
    return out;
}

std::string sign_jwt(EVP_PKEY* key, const json& header, const json& payload) {
    std::string input = b64url_encode(json_text(header)) + "." + b64url_encode(json_text(payload));
    MdCtx ctx(EVP_MD_CTX_new());
    size_t len = 0;
    if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) != 1 ||
        EVP_DigestSign(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()),
                       input.size()) != 1)
        return {};
    std::string sig(len, '\0');
    if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                       reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1)
        return {};
    sig.resize(len);
    if (EVP_PKEY_is_a(key, "EC")) {
        auto raw = der_to_jose(sig);
        if (!raw) return {};
        sig = *raw;
    }
    return input + "." + b64url_encode(sig);
}

JwtValidator::JwtValidator(JwtPolicy policy, size_t cache_capacity)
    : policy_(std::move(policy)), capacity_(cache_capacity) {}

size_t JwtValidator::cache_size() const {
    std::lock_guard lock(mu_);
    return cache_.size();
}

JwtResult JwtValidator::verify_uncached(std::string_view token) const {
    auto d1 = token.find('.');
    auto d2 = d1 == std::string_view::npos ? d1 : token.find('.', d1 + 1);
    if (d2 == std::string_view::npos || token.find('.', d2 + 1) != std::string_view::npos)
        return fail(JwtError::malformed, "AKV10005: Invalid token: not a compact JWS.");
    auto header = decode_json_part(token.substr(0, d1));
    auto payload = decode_json_part(token.substr(d1 + 1, d2 - d1 - 1));
    auto sig = b64url_decode(token.substr(d2 + 1));
    if (!header || !payload || !sig)
        return fail(JwtError::malformed, "AKV10005: Invalid token: malformed base64url or JSON.");

    auto alg = str_claim(*header, "alg");
    if (alg != "RS256" && alg != "ES256")
        return fail(JwtError::unsupported_alg, "AKV10005: Invalid token: algorithm '" + alg + "' is not accepted.");
    if (header->contains("crit"))
        return fail(JwtError::malformed, "AKV10005: Invalid token: unsupported critical header.");
    auto kid = str_claim(*header, "kid");
    if (kid.empty()) return fail(JwtError::missing_kid, "AKV10005: Invalid token: no key id.");

    auto c = std::make_shared<Claims>();
    c->iss = str_claim(*payload, "iss");
    const IssuerKeys* issuer = nullptr;
    for (const auto& i : policy_.issuers)
        if (i.issuer == c->iss) issuer = &i;
    if (!issuer || (!issuer->keys && !issuer->remote))
        return fail(JwtError::unknown_issuer, "AKV10032: Invalid issuer. Expected one of the configured issuers, found: " + c->iss + ".");
    // Held for this call: a refresh may swap the remote set meanwhile.
    std::shared_ptr<const KeySet> keyset = issuer->remote ? issuer->remote->keys() : issuer->keys;
    const Jwk* jwk = keyset ? keyset->find(kid) : nullptr;
    if (!jwk) {
        // Key rotation: ask for a background refresh (rate limited) and
        // refuse this token now — never wait for the fetch (fail closed).
        if (issuer->remote) issuer->remote->refresh_for_unknown_kid();
        return fail(JwtError::unknown_kid, "AKV10005: Invalid token: signing key '" + kid + "' is unknown.");
    }
    bool fits = (alg == "RS256" && jwk->type == KeyType::rsa) || (alg == "ES256" && jwk->type == KeyType::ec_p256);
    if (!fits || (!jwk->alg.empty() && jwk->alg != alg))
        return fail(JwtError::key_mismatch, "AKV10005: Invalid token: key '" + kid + "' cannot verify " + alg + ".");

    std::string der;
    std::string_view sigv = *sig;
    if (alg == "ES256") {
        auto d = jose_to_der(*sig);
        if (!d) return fail(JwtError::bad_signature, "AKV10005: Invalid token: bad signature.");
        der = std::move(*d);
        sigv = der;
    }
    if (!verify_sig(jwk->key.get(), token.substr(0, d2), sigv))
        return fail(JwtError::bad_signature, "AKV10005: Invalid token: bad signature.");

    // Audience: a string, or an array that contains the audience.
    bool aud_ok = false;
    std::string aud_seen;
    if (auto it = payload->find("aud"); it != payload->end()) {
        if (it->is_string()) {
            aud_seen = it->get<std::string>();
            aud_ok = aud_seen == policy_.audience;
        } else if (it->is_array()) {
            for (const auto& a : *it)
                if (a.is_string()) {
                    if (!aud_seen.empty()) aud_seen += ",";
                    aud_seen += a.get<std::string>();
                    if (a.get<std::string>() == policy_.audience) aud_ok = true;
                }
        }
    }
    if (!aud_ok)
        return fail(JwtError::bad_audience, "AKV10022: Invalid audience. Expected " + policy_.audience + ", found: " + aud_seen + ".");

    auto exp = num_claim(*payload, "exp");
    if (!exp) return fail(JwtError::malformed, "AKV10005: Invalid token: no expiry.");
    for (const char* claim : {"nbf", "iat"})
        if (payload->contains(claim) && !num_claim(*payload, claim))
            return fail(JwtError::malformed, std::string("AKV10005: Invalid token: bad ") + claim + ".");
    c->exp = *exp;
    c->nbf = num_claim(*payload, "nbf");
    c->tid = str_claim(*payload, "tid");
    c->oid = str_claim(*payload, "oid");
    c->appid = str_claim(*payload, "appid");
    c->azp = str_claim(*payload, "azp");
    c->sub = str_claim(*payload, "sub");
    c->xms_mirid = str_claim(*payload, "xms_mirid");
    c->payload = std::move(*payload);
    JwtResult r;
    r.claims = std::move(c);
    return r;
}

JwtResult JwtValidator::check_time_and_tenant(std::shared_ptr<const Claims> c, const std::string& tenant,
                                              Clock::time_point now, bool cached) const {
    int64_t t = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
    int64_t skew = policy_.skew.count();
    // t +/- skew cannot overflow; exp/nbf + skew could (they span int64).
    if (t - skew > c->exp) return fail(JwtError::expired, "AKV10040: Token expired.");
    if (c->nbf && t + skew < *c->nbf) return fail(JwtError::not_yet_valid, "AKV10041: Token not yet valid.");
    if (c->tid != tenant)
        return fail(JwtError::bad_tenant, "AKV10032: Invalid issuer. Expected tenant " + tenant + ", found: " + c->tid + ".");
    JwtResult r;
    r.claims = std::move(c);
    r.from_cache = cached;
    return r;
}

JwtResult JwtValidator::validate(std::string_view token, const std::string& tenant, Clock::time_point now) const {
    if (token.size() > policy_.max_token_bytes)
        return fail(JwtError::too_large, "AKV10005: Invalid token: too large.");
    std::string key = sha256(token);
    {
        std::lock_guard lock(mu_);
        auto it = cache_.find(key);
        if (it != cache_.end()) {
            auto c = it->second;
            return check_time_and_tenant(std::move(c), tenant, now, true);
        }
    }
    JwtResult r = verify_uncached(token);
    if (!r.ok()) return r;
    int64_t t = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
    if (t - policy_.skew.count() <= r.claims->exp) {
        std::lock_guard lock(mu_);
        if (cache_.size() >= capacity_) {
            for (auto it = cache_.begin(); it != cache_.end();)
                it = (t - policy_.skew.count() > it->second->exp) ? cache_.erase(it) : std::next(it);
            while (cache_.size() >= capacity_ && !cache_.empty()) cache_.erase(cache_.begin());
        }
        if (capacity_ > 0) cache_.emplace(std::move(key), r.claims);
    }
    return check_time_and_tenant(r.claims, tenant, now, false);
}

}  // namespace vaultwall::gate
