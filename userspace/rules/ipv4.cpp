#include "rules/ipv4.hpp"

#include <charconv>

namespace vaultwall::rules {

std::optional<unsigned> parse_small_decimal(std::string_view s, unsigned max) {
    if (s.empty() || s.size() > 3 || (s.size() > 1 && s[0] == '0')) return std::nullopt;
    unsigned v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size() || v > max) return std::nullopt;
    return v;
}

std::optional<std::uint32_t> parse_ipv4(std::string_view text) {
    std::uint32_t addr = 0;
    for (int i = 0; i < 4; ++i) {
        auto dot = text.find('.');
        if ((i < 3) != (dot != std::string_view::npos)) return std::nullopt;
        auto part = text.substr(0, dot);
        auto octet = parse_small_decimal(part, 255);
        if (!octet) return std::nullopt;
        addr = (addr << 8) | *octet;
        text = i < 3 ? text.substr(dot + 1) : std::string_view{};
    }
    return addr;
}

std::string format_ipv4(std::uint32_t a) {
    return std::to_string(a >> 24) + "." + std::to_string((a >> 16) & 0xff) + "." +
           std::to_string((a >> 8) & 0xff) + "." + std::to_string(a & 0xff);
}

std::string Ipv4Prefix::str() const { return format_ipv4(addr) + "/" + std::to_string(len); }

std::optional<PrefixParse> parse_ipv4_prefix(std::string_view text) {
    auto slash = text.find('/');
    auto addr = parse_ipv4(text.substr(0, slash));
    if (!addr) return std::nullopt;
    unsigned len = 32;
    if (slash != std::string_view::npos) {
        auto l = parse_small_decimal(text.substr(slash + 1), 32);
        if (!l) return std::nullopt;
        len = *l;
    }
    PrefixParse r;
    r.prefix.len = static_cast<std::uint8_t>(len);
    r.prefix.addr = *addr & Ipv4Prefix::mask(r.prefix.len);
    r.host_bits_set = r.prefix.addr != *addr;
    return r;
}

}  // namespace vaultwall::rules
