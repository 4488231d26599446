// JSON text written by the gate (error bodies, JWKs, the audit log, the lab
// vault). Strings come from rule files, tokens and requests, and any of them
// may hold bytes that are not UTF-8: nlohmann's default dump() throws on
// those (type_error.316), which took down the connection. Here every invalid
// sequence becomes U+FFFD instead; valid UTF-8 is written unchanged.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace vaultwall::gate {

inline std::string json_text(const nlohmann::json& j, int indent = -1) {
    return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace vaultwall::gate
