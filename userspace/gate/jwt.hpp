// Bearer-token (JWT, RFC 7519) validation with OpenSSL 3 EVP: RS256 and ES256
// only, key by `kid` from the issuer's JWKS, key type must match `alg`, then
// iss / aud / exp / nbf (with skew) / tid. Verified tokens are cached by the
// SHA-256 of the token text until they expire.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "gate/jwks.hpp"

namespace vaultwall::gate {

using Clock = std::chrono::system_clock;

class RemoteJwks;  // gate/jwks_remote.hpp

struct IssuerKeys {
    std::string issuer;                   // exact "iss" value
    std::shared_ptr<const KeySet> keys;   // that issuer's JWKS (from jwks_file)
    // Or keys fetched from jwks_url: an unknown kid asks it for a
    // (rate-limited, background) refresh and the token is refused meanwhile.
    std::shared_ptr<RemoteJwks> remote;
};

struct JwtPolicy {
    std::string audience;                 // required "aud" (string or member of array)
    std::vector<IssuerKeys> issuers;
    std::chrono::seconds skew{60};
    size_t max_token_bytes = 16 * 1024;
};

// The claims the gate uses, from a verified token.
struct Claims {
    std::string iss, tid, oid, appid, azp, sub, xms_mirid;
    int64_t exp = 0;
    std::optional<int64_t> nbf;
    nlohmann::json payload;

    // appid (v1 tokens) or azp (v2 tokens)
    const std::string& app() const { return appid.empty() ? azp : appid; }
    // "appid=...;oid=...;iss=..." as Key Vault prints callers.
    std::string caller() const;
};

enum class JwtError {
    none,
    too_large,
    malformed,        // not three base64url parts of JSON objects
    unsupported_alg,  // anything but RS256 / ES256 (none, HS256, PS256, ...)
    missing_kid,
    unknown_issuer,
    unknown_kid,
    key_mismatch,     // kty/crv of the JWK does not fit alg
    bad_signature,
    bad_audience,
    expired,
    not_yet_valid,
    bad_tenant,
};

const char* to_string(JwtError e);

struct JwtResult {
    JwtError error = JwtError::none;
    std::string message;                  // Key Vault-style text for the 401 body
    std::shared_ptr<const Claims> claims;  // set when error == none
    bool from_cache = false;
    bool ok() const { return error == JwtError::none; }
};

class JwtValidator {
public:
    explicit JwtValidator(JwtPolicy policy, size_t cache_capacity = 65536);

    // `tenant`: the vault's tenant_id, compared with "tid".
    JwtResult validate(std::string_view token, const std::string& tenant,
                       Clock::time_point now = Clock::now()) const;

    const JwtPolicy& policy() const { return policy_; }
    size_t cache_size() const;

private:
    JwtResult verify_uncached(std::string_view token) const;
    JwtResult check_time_and_tenant(std::shared_ptr<const Claims> claims, const std::string& tenant,
                                    Clock::time_point now, bool cached) const;

    JwtPolicy policy_;
    size_t capacity_;
    mutable std::mutex mu_;
    mutable std::unordered_map<std::string, std::shared_ptr<const Claims>> cache_;
};

// Lower-level pieces, exposed for tests and tools.
std::string sha256(std::string_view data);
// JOSE ECDSA signature (r||s, 64 bytes) <-> DER.
std::optional<std::string> jose_to_der(std::string_view raw);
std::optional<std::string> der_to_jose(std::string_view der);
// Signs header.payload with an RSA (RS256) or EC P-256 (ES256) private key;
// used by tests and the lab token tool.
std::string sign_jwt(EVP_PKEY* key, const nlohmann::json& header, const nlohmann::json& payload);

}  // namespace vaultwall::gate
