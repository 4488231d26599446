#include "gate/b64.hpp"

#include <array>
#include <cstdint>

namespace vaultwall::gate {
namespace {

constexpr char kStd[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr char kUrl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::array<int8_t, 256> make_table(const char* alphabet) {
    std::array<int8_t, 256> t{};
    t.fill(-1);
    for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(alphabet[i])] = static_cast<int8_t>(i);
    return t;
}

std::string encode(std::string_view in, const char* alphabet, bool pad) {
    std::string out;
    out.reserve((in.size() + 2) / 3 * 4);
    size_t i = 0;
    for (; i + 3 <= in.size(); i += 3) {
        uint32_t v = (uint8_t)in[i] << 16 | (uint8_t)in[i + 1] << 8 | (uint8_t)in[i + 2];
        out += alphabet[v >> 18];
        out += alphabet[(v >> 12) & 63];
        out += alphabet[(v >> 6) & 63];
        out += alphabet[v & 63];
    }
    size_t rest = in.size() - i;
    if (rest == 1) {
        uint32_t v = (uint8_t)in[i] << 16;
        out += alphabet[v >> 18];
        out += alphabet[(v >> 12) & 63];
        if (pad) out += "==";
    } else if (rest == 2) {
        uint32_t v = (uint8_t)in[i] << 16 | (uint8_t)in[i + 1] << 8;
        out += alphabet[v >> 18];
        out += alphabet[(v >> 12) & 63];
        out += alphabet[(v >> 6) & 63];
        if (pad) out += '=';
    }
    return out;
}

// Decodes unpadded data of length n (n % 4 != 1) with the table; checks that
// unused trailing bits are zero.
std::optional<std::string> decode_unpadded(std::string_view in, const std::array<int8_t, 256>& t) {
    if (in.size() % 4 == 1) return std::nullopt;
    std::string out;
    out.reserve(in.size() * 3 / 4);
    uint32_t acc = 0;
    int bits = 0;
    for (char c : in) {
        int8_t v = t[static_cast<unsigned char>(c)];
        if (v < 0) return std::nullopt;
        acc = (acc << 6) | static_cast<uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((acc >> bits) & 0xff);
        }
    }
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) return std::nullopt;
    return out;
}

}  // namespace

std::optional<std::string> b64url_decode(std::string_view in) {
    static const auto t = make_table(kUrl);
    return decode_unpadded(in, t);
}

std::string b64url_encode(std::string_view in) { return encode(in, kUrl, false); }

std::optional<std::string> b64_decode(std::string_view in) {
    static const auto t = make_table(kStd);
    if (in.size() % 4 != 0) return std::nullopt;
    size_t pad = 0;
    if (!in.empty() && in.back() == '=') ++pad;
    if (in.size() >= 2 && in[in.size() - 2] == '=') ++pad;
    return decode_unpadded(in.substr(0, in.size() - pad), t);
}

std::string b64_encode(std::string_view in) { return encode(in, kStd, true); }

std::string hex_encode(std::string_view in) {
    static const char* d = "0123456789abcdef";
    std::string out;
    out.reserve(in.size() * 2);
    for (unsigned char c : in) {
        out += d[c >> 4];
        out += d[c & 15];
    }
    return out;
}

}  // namespace vaultwall::gate
