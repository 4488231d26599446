// Addresses as a rule file, an ip_rules_file or a command line writes them,
// either family: a prefix ("192.0.2.0/24", "2001:db8::/32") or an endpoint
// ("203.0.113.10:443", "[2001:db8::10]:443/udp"). One place says what is wrong
// with bad text, so the YAML schemas, the ip_rules_file scanner and the CLI
// give the same diagnostics. Errors are returned as the message text (the
// caller adds the position).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "rules/ipv4.hpp"
#include "rules/ipv6.hpp"
#include "rules/model.hpp"

namespace vaultwall::rules {

using IpPrefix = std::variant<Ipv4Prefix, Ipv6Prefix>;

// A bare address is a /32 or /128; host bits set is an error naming the
// intended network. Text with a ':' is read as IPv6. `what` ("ip_rules") is
// named in the message when not empty.
std::variant<IpPrefix, std::string> parse_prefix_text(std::string_view text, std::string_view what);

struct EndpointText {
    bool v6 = false;
    std::uint32_t addr = 0;  // IPv4, host byte order (when !v6)
    Ipv6Addr addr6{};        // when v6
    std::uint16_t port = 0;
    Proto proto = Proto::tcp;
};

// "IPv4:port" or "[IPv6]:port", optionally "/tcp" or "/udp". A bare
// "2001:db8::10:443" is refused as ambiguous, with the bracketed form to write.
std::variant<EndpointText, std::string> parse_endpoint_text(std::string_view text, std::string_view what);

// "203.0.113.10:443" or "[2001:db8::10]:443" (RFC 5952 §6), no protocol.
std::string endpoint_str(const EndpointText& e);

}  // namespace vaultwall::rules
