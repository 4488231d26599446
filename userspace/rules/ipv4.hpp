// IPv4 addresses and prefixes in host byte order, with strict text parsing.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vaultwall::rules {

// A decimal 0..max (max < 1000) with no sign and no leading zero (except "0"):
// an octet or a prefix length.
std::optional<unsigned> parse_small_decimal(std::string_view s, unsigned max);

// Dotted quad only ("192.0.2.1"): no leading zeros, no shorthand forms.
std::optional<std::uint32_t> parse_ipv4(std::string_view text);
std::string format_ipv4(std::uint32_t addr);

struct Ipv4Prefix {
    std::uint32_t addr = 0;  // network address, host byte order, host bits clear
    std::uint8_t len = 0;    // 0..32

    static std::uint32_t mask(std::uint8_t len) {
        return len == 0 ? 0u : ~0u << (32 - len);
    }
    bool contains(std::uint32_t a) const { return (a & mask(len)) == addr; }
    std::string str() const;
    friend bool operator==(const Ipv4Prefix& a, const Ipv4Prefix& b) {
        return a.addr == b.addr && a.len == b.len;
    }
    friend bool operator<(const Ipv4Prefix& a, const Ipv4Prefix& b) {
        return a.addr != b.addr ? a.addr < b.addr : a.len < b.len;
    }
};

// Result of parsing "a.b.c.d[/n]". A bare address means /32. When host bits
// are set, `host_bits_set` is true and `prefix` holds the intended network
// (so the caller can say "did you mean 192.0.2.0/24?").
struct PrefixParse {
    Ipv4Prefix prefix;
    bool host_bits_set = false;
};
std::optional<PrefixParse> parse_ipv4_prefix(std::string_view text);

}  // namespace vaultwall::rules
