// JSON Web Key Sets (RFC 7517) -> OpenSSL EVP_PKEYs. Only what RS256 and ES256
// need: RSA public keys (n, e) and EC P-256 public keys (crv, x, y).
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>

#include <openssl/evp.h>

namespace vaultwall::gate {

struct PkeyDeleter {
    void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using PkeyPtr = std::shared_ptr<EVP_PKEY>;

enum class KeyType { rsa, ec_p256 };

struct Jwk {
    std::string kid;
    KeyType type = KeyType::rsa;
    std::string alg;  // optional "alg" member of the JWK ("" when absent)
    PkeyPtr key;
};

class JwksError : public std::runtime_error {
    using std::runtime_error::runtime_error;
};

// An immutable key set, indexed by kid. Keys without a kid, with an unknown
// kty/crv, or with "use" other than "sig" are skipped (so a real provider's
// JWKS with encryption keys still loads); a JWKS that is not valid JSON or
// holds no usable key is an error.
class KeySet {
public:
    static KeySet parse(std::string_view json);           // throws JwksError
    static KeySet load_file(const std::string& path);      // throws JwksError
    const Jwk* find(const std::string& kid) const;
    size_t size() const { return keys_.size(); }

private:
    std::map<std::string, Jwk> keys_;
};

// Helpers exposed for tests and the lab tools: EVP_PKEY -> JWK JSON text.
std::string jwk_json_from_pkey(EVP_PKEY* pkey, const std::string& kid);

}  // namespace vaultwall::gate
