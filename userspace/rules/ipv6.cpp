#include "rules/ipv6.hpp"

#include <arpa/inet.h>

#include "rules/ipv4.hpp"

namespace vaultwall::rules {

std::optional<Ipv6Addr> parse_ipv6(std::string_view text) {
    // inet_pton(AF_INET6) takes exactly RFC 4291's forms (an embedded IPv4
    // tail without leading zeros, at most one "::") and refuses zones and
    // brackets; it wants a NUL-terminated string. 45 characters is the longest
    // valid form ("ffff:...:ffff:255.255.255.255").
    if (text.empty() || text.size() > 45 || text.find('\0') != std::string_view::npos)
        return std::nullopt;
    char buf[46];
    text.copy(buf, text.size());
    buf[text.size()] = '\0';
    Ipv6Addr a{};
    if (inet_pton(AF_INET6, buf, a.data()) != 1) return std::nullopt;
    return a;
}

// Written here rather than with inet_ntop: glibc's inet_ntop writes
// IPv4-compatible forms ("::2" as "::0.0.0.2"), which RFC 5952 §5 does not.
std::string format_ipv6(const Ipv6Addr& a) {
    std::uint16_t w[8];
    for (int i = 0; i < 8; ++i) w[i] = static_cast<std::uint16_t>(a[2 * i] << 8 | a[2 * i + 1]);
    // The first longest run of at least two zero fields (RFC 5952 §4.2.2, §4.2.3).
    int best = -1, best_len = 1;
    for (int i = 0; i < 8;) {
        if (w[i] != 0) { ++i; continue; }
        int j = i;
        while (j < 8 && w[j] == 0) ++j;
        if (j - i > best_len) { best = i; best_len = j - i; }
        i = j;
    }
    // IPv4-mapped (::ffff:0:0/96) in mixed notation (RFC 5952 §5).
    bool mapped = best == 0 && best_len == 5 && w[5] == 0xffff;
    int fields = mapped ? 6 : 8;
    static const char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(46);
    for (int i = 0; i < fields;) {
        if (i == best) {
            out += "::";
            i += best_len;
            continue;
        }
        if (!out.empty() && out.back() != ':') out += ':';
        bool started = false;
        for (int shift = 12; shift >= 0; shift -= 4) {
            unsigned nibble = (w[i] >> shift) & 0xf;
            if (nibble || started || shift == 0) { out += hex[nibble]; started = true; }
        }
        ++i;
    }
    if (mapped)
        out += ":" + format_ipv4(std::uint32_t{a[12]} << 24 | std::uint32_t{a[13]} << 16 |
                           std::uint32_t{a[14]} << 8 | a[15]);
    return out;
}

Ipv6Addr Ipv6Prefix::masked(const Ipv6Addr& a, std::uint8_t len) {
    Ipv6Addr r{};
    for (unsigned i = 0; i < 16; ++i) {
        unsigned bits = len > 8 * i ? len - 8 * i : 0;
        if (bits >= 8) r[i] = a[i];
        else if (bits > 0) r[i] = static_cast<std::uint8_t>(a[i] & (0xff00u >> bits));
    }
    return r;
}

std::string Ipv6Prefix::str() const { return format_ipv6(addr) + "/" + std::to_string(len); }

std::optional<Ipv6PrefixParse> parse_ipv6_prefix(std::string_view text) {
    auto slash = text.find('/');
    auto addr = parse_ipv6(text.substr(0, slash));
    if (!addr) return std::nullopt;
    unsigned len = 128;
    if (slash != std::string_view::npos) {
        auto l = parse_small_decimal(text.substr(slash + 1), 128);
        if (!l) return std::nullopt;
        len = *l;
    }
    Ipv6PrefixParse r;
    r.prefix.len = static_cast<std::uint8_t>(len);
    r.prefix.addr = Ipv6Prefix::masked(*addr, r.prefix.len);
    r.host_bits_set = r.prefix.addr != *addr;
    return r;
}

}  // namespace vaultwall::rules
