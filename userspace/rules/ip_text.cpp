#include "rules/ip_text.hpp"

#include <algorithm>

#include "rules/text.hpp"

namespace vaultwall::rules {

namespace {

std::string in(std::string_view what) { return what.empty() ? "" : " in " + std::string(what); }

constexpr const char* kEndpointFix =
    "; write IPv4:port or [IPv6]:port, e.g. 203.0.113.10:443 or [2001:db8::10]:443";

// "443" -> 443; the error names `s` within `what`.
std::variant<std::uint16_t, std::string> port_of(std::string_view port, std::string_view s,
                                                 std::string_view what) {
    auto n = parse_uint(port);
    if (!n) return quote(s) + in(what) + " has no valid port" + kEndpointFix;
    if (*n == 0 || *n > 65535)
        return "port " + std::to_string(*n) + in(what) + " " + quote(s) + " is out of range; use 1..65535";
    return static_cast<std::uint16_t>(*n);
}

}  // namespace

std::variant<IpPrefix, std::string> parse_prefix_text(std::string_view text, std::string_view what) {
    if (text.find(':') == std::string_view::npos) {
        auto p = parse_ipv4_prefix(text);
        if (!p)
            return quote(text) + in(what) +
                   " is not an IPv4 prefix; write an address (192.0.2.7) or a network with its "
                   "length (192.0.2.0/24)";
        if (p->host_bits_set)
            return std::string(text) + " has host bits set; did you mean " + p->prefix.str() + "?";
        return p->prefix;
    }
    auto p = parse_ipv6_prefix(text);
    if (!p) {
        std::string why = " is not an IPv6 prefix; write an address (2001:db8::7) or a network with its "
                          "length (2001:db8::/32)";
        if (text.find('[') != std::string_view::npos)
            why = " is not an IPv6 prefix: write it without brackets, e.g. 2001:db8::/32";
        else if (text.find('%') != std::string_view::npos)
            why = " is not an IPv6 prefix: a zone (%...) has no meaning in a rule; leave it out";
        return quote(text) + in(what) + why;
    }
    if (p->host_bits_set)
        return std::string(text) + " has host bits set; did you mean " + p->prefix.str() + "?";
    return p->prefix;
}

std::variant<EndpointText, std::string> parse_endpoint_text(std::string_view s, std::string_view what) {
    EndpointText ep;
    std::string_view text = s;
    if (auto slash = text.rfind('/'); slash != std::string_view::npos) {
        auto proto = lower(text.substr(slash + 1));
        if (proto == "tcp") ep.proto = Proto::tcp;
        else if (proto == "udp") ep.proto = Proto::udp;
        else
            return "unknown protocol " + quote(text.substr(slash + 1)) + in(what) + " " + quote(s) +
                   "; use /tcp or /udp, or leave it out for TCP";
        text = text.substr(0, slash);
    }
    if (!text.empty() && text[0] == '[') {
        auto close = text.find(']');
        if (close == std::string_view::npos)
            return quote(s) + in(what) + " has no ']' after its IPv6 address" + kEndpointFix;
        auto inside = text.substr(1, close - 1);
        auto a = parse_ipv6(inside);
        if (!a) {
            if (parse_ipv4(inside))
                return quote(s) + in(what) + ": brackets are for IPv6 addresses; write " +
                       std::string(inside) + std::string(text.substr(close + 1));
            return quote(s) + in(what) + ": " + quote(inside) + " is not an IPv6 address" + kEndpointFix;
        }
        auto rest = text.substr(close + 1);
        if (rest.size() < 2 || rest[0] != ':')
            return quote(s) + in(what) + " has no port; write [" + format_ipv6(*a) + "]:PORT, e.g. [" +
                   format_ipv6(*a) + "]:443";
        auto port = port_of(rest.substr(1), s, what);
        if (auto* err = std::get_if<std::string>(&port)) return *err;
        ep.v6 = true;
        ep.addr6 = *a;
        ep.port = std::get<std::uint16_t>(port);
        return ep;
    }
    if (std::count(text.begin(), text.end(), ':') > 1) {
        // An IPv6 address without brackets: its last group and a port look alike.
        auto colon = text.rfind(':');
        auto a = parse_ipv6(text.substr(0, colon));
        auto n = parse_uint(text.substr(colon + 1));
        if (a && n && *n >= 1 && *n <= 65535)
            return quote(s) + in(what) + " is ambiguous (is " + std::string(text.substr(colon + 1)) +
                   " the port or part of the address?); write [" + format_ipv6(*a) + "]:" +
                   std::to_string(*n) + " for port " + std::to_string(*n);
        if (auto whole = parse_ipv6(text))
            return quote(s) + in(what) + " has no port; write [" + format_ipv6(*whole) + "]:PORT, e.g. [" +
                   format_ipv6(*whole) + "]:443";
        return quote(s) + in(what) + " is not an endpoint" + kEndpointFix;
    }
    auto colon = text.rfind(':');
    std::optional<std::uint32_t> addr;
    if (colon != std::string_view::npos) addr = parse_ipv4(text.substr(0, colon));
    if (colon == std::string_view::npos || !addr)
        return quote(s) + in(what) + " is not an IPv4:port endpoint" + kEndpointFix;
    auto port = port_of(text.substr(colon + 1), s, what);
    if (auto* err = std::get_if<std::string>(&port)) return *err;
    ep.addr = *addr;
    ep.port = std::get<std::uint16_t>(port);
    return ep;
}

std::string endpoint_str(const EndpointText& e) {
    return (e.v6 ? "[" + format_ipv6(e.addr6) + "]" : format_ipv4(e.addr)) + ":" + std::to_string(e.port);
}

}  // namespace vaultwall::rules
