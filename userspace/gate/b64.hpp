// Base64 / base64url codecs, strict: no whitespace, no stray characters,
// canonical padding bits. Used by the JWT/JWKS code and the lab vault.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace vaultwall::gate {

// base64url without padding (RFC 7515 §2). Rejects '=', '+', '/', whitespace,
// a length of 1 mod 4 and non-zero trailing bits.
std::optional<std::string> b64url_decode(std::string_view in);
std::string b64url_encode(std::string_view in);

// Standard base64 with padding (RFC 4648 §4); strict.
std::optional<std::string> b64_decode(std::string_view in);
std::string b64_encode(std::string_view in);

std::string hex_encode(std::string_view in);

}  // namespace vaultwall::gate
