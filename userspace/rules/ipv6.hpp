// IPv6 addresses and prefixes in network byte order, with strict text parsing
// (RFC 4291 §2.2 forms in, RFC 5952 form out).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vaultwall::rules {

using Ipv6Addr = std::array<std::uint8_t, 16>;  // network byte order

// "2001:db8::1", "::", "::ffff:192.0.2.1", "2001:DB8:0:0:0:0:0:1": every RFC
// 4291 text form. No zone ("fe80::1%eth0"), no brackets, no spaces, no prefix.
std::optional<Ipv6Addr> parse_ipv6(std::string_view text);
// RFC 5952: lower case, no leading zeros, the longest run of two or more zero
// fields (the first if tied) as "::"; IPv4-mapped addresses as ::ffff:a.b.c.d.
std::string format_ipv6(const Ipv6Addr& addr);

struct Ipv6Prefix {
    Ipv6Addr addr{};       // network address, host bits clear
    std::uint8_t len = 0;  // 0..128

    // `a` with every bit after the first `len` cleared.
    static Ipv6Addr masked(const Ipv6Addr& a, std::uint8_t len);
    bool contains(const Ipv6Addr& a) const { return masked(a, len) == addr; }
    std::string str() const;  // "2001:db8::/32"
    friend bool operator==(const Ipv6Prefix& a, const Ipv6Prefix& b) {
        return a.addr == b.addr && a.len == b.len;
    }
    friend bool operator<(const Ipv6Prefix& a, const Ipv6Prefix& b) {
        return a.addr != b.addr ? a.addr < b.addr : a.len < b.len;
    }
};

// Result of parsing "addr[/n]". A bare address means /128. When host bits are
// set, `host_bits_set` is true and `prefix` holds the intended network (so the
// caller can say "did you mean 2001:db8::/32?").
struct Ipv6PrefixParse {
    Ipv6Prefix prefix;
    bool host_bits_set = false;
};
std::optional<Ipv6PrefixParse> parse_ipv6_prefix(std::string_view text);

}  // namespace vaultwall::rules
