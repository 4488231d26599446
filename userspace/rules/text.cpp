#include "rules/text.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace vaultwall::rules {

std::string lower(std::string_view s) {
    std::string r(s);
    for (auto& c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return r;
}

// "defaultAction" -> "default_action"; snake_case passes unchanged.
std::string camel_to_snake(std::string_view k) {
    std::string r;
    for (std::size_t i = 0; i < k.size(); ++i) {
        char c = k[i];
        if (std::isupper(static_cast<unsigned char>(c))) {
            bool prev_lower = i > 0 && (std::islower(static_cast<unsigned char>(k[i - 1])) ||
                                        std::isdigit(static_cast<unsigned char>(k[i - 1])));
            bool acronym_end = i > 0 && std::isupper(static_cast<unsigned char>(k[i - 1])) &&
                               i + 1 < k.size() &&
                               std::islower(static_cast<unsigned char>(k[i + 1]));
            if (prev_lower || acronym_end) r += '_';
            r += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        } else {
            r += c;
        }
    }
    return r;
}

std::string snake_to_camel(std::string_view k) {
    std::string r;
    bool up = false;
    for (char c : k) {
        if (c == '_') {
            up = true;
        } else {
            r += up ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : c;
            up = false;
        }
    }
    return r;
}

// Enum value normal form: lower case without '_', '-' and ' '.
std::string enum_norm(std::string_view s) {
    std::string r;
    for (char c : s)
        if (c != '_' && c != '-' && c != ' ')
            r += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return r;
}

std::string join(const std::vector<std::string>& v, const char* sep) {
    std::string r;
    for (const auto& s : v) {
        if (!r.empty()) r += sep;
        r += s;
    }
    return r;
}

// Offset of the first byte that is not part of well-formed UTF-8 (RFC 3629:
// no overlongs, no surrogates, nothing above U+10FFFF), or npos.
std::size_t invalid_utf8_at(std::string_view s) {
    std::size_t i = 0;
    const auto* b = reinterpret_cast<const unsigned char*>(s.data());
    const std::size_t n = s.size();
    while (i < n) {
        unsigned c = b[i];
        if (c < 0x80) {
            ++i;
            continue;
        }
        std::size_t len;
        unsigned lo = 0x80, hi = 0xBF;  // allowed range of the second byte
        if (c >= 0xC2 && c <= 0xDF) len = 2;
        else if (c == 0xE0) len = 3, lo = 0xA0;
        else if (c >= 0xE1 && c <= 0xEC) len = 3;
        else if (c == 0xED) len = 3, hi = 0x9F;
        else if (c >= 0xEE && c <= 0xEF) len = 3;
        else if (c == 0xF0) len = 4, lo = 0x90;
        else if (c >= 0xF1 && c <= 0xF3) len = 4;
        else if (c == 0xF4) len = 4, hi = 0x8F;
        else return i;
        if (i + len > n || b[i + 1] < lo || b[i + 1] > hi) return i;
        for (std::size_t k = 2; k < len; ++k)
            if (b[i + k] < 0x80 || b[i + k] > 0xBF) return i;
        i += len;
    }
    return std::string_view::npos;
}

std::string quote(std::string_view s, std::size_t max) {
    std::string r = "'";
    std::size_t i = 0;
    while (i < s.size() && i < max) {
        std::size_t bad = invalid_utf8_at(s.substr(i, 4));
        unsigned char c = static_cast<unsigned char>(s[i]);
        if (bad == 0) {
            static const char* hex = "0123456789abcdef";
            r += "\\x";
            r += hex[c >> 4];
            r += hex[c & 15];
            ++i;
            continue;
        }
        std::size_t len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
        r.append(s.substr(i, len));
        i += len;
    }
    r += "'";
    if (i < s.size()) r += "... (" + std::to_string(s.size()) + " bytes)";
    return r;
}

bool is_guid(std::string_view s) {
    if (s.size() != 36) return false;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') return false;
        } else if (!std::isxdigit(static_cast<unsigned char>(s[i]))) {
            return false;
        }
    }
    return true;
}

std::optional<std::uint64_t> parse_uint(std::string_view s) {
    if (s.empty() || s.size() > 12) return std::nullopt;
    std::uint64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
    return v;
}

std::optional<bool> parse_bool(std::string_view s) {
    auto l = lower(s);
    if (l == "true" || l == "yes" || l == "on") return true;
    if (l == "false" || l == "no" || l == "off") return false;
    return std::nullopt;
}

// A Key Vault object name in a scope: 1-127 of [0-9A-Za-z-].
bool is_object_name(std::string_view s) {
    if (s.empty() || s.size() > 127) return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-';
    });
}

bool is_vault_name(std::string_view s) {
    if (s.empty() || s.size() >= 64) return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
    });
}

}  // namespace vaultwall::rules
