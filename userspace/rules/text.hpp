// Text helpers of the rule loader: case, key spellings, numbers, names, UTF-8
// and quoting values in diagnostics. One copy of each (lower() was written four
// times).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vaultwall::rules {

std::string lower(std::string_view s);  // ASCII only: names, keys and enum values
std::string camel_to_snake(std::string_view k);  // "defaultAction" -> "default_action"
std::string snake_to_camel(std::string_view k);  // "default_action" -> "defaultAction"
std::string enum_norm(std::string_view s);       // lower case without '_', '-' and ' '
std::string join(const std::vector<std::string>& v, const char* sep = ", ");

// Offset of the first byte that is not part of well-formed UTF-8 (RFC 3629:
// no overlongs, no surrogates, nothing above U+10FFFF), or npos.
std::size_t invalid_utf8_at(std::string_view s);

// A value quoted for a diagnostic: 'its first `max` bytes', then "... (N bytes)"
// when longer (a 64 KiB scalar quoted whole by a thousand diagnostics once cost
// 400 MiB); bytes that are not UTF-8 written as \xNN so every writer (JSON
// included) can carry it.
std::string quote(std::string_view s, std::size_t max = 64);

bool is_guid(std::string_view s);
std::optional<std::uint64_t> parse_uint(std::string_view s);  // decimal, at most 12 digits
std::optional<bool> parse_bool(std::string_view s);          // true/yes/on, false/no/off
bool is_object_name(std::string_view s);  // Key Vault object: 1-127 of [0-9A-Za-z-]
bool is_vault_name(std::string_view s);   // up to 63 of [0-9A-Za-z-_.]

}  // namespace vaultwall::rules
