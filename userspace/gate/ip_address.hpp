// An IPv4 or IPv6 address as the gate keys and prints it: the endpoints it
// listens on and the clients it answers (SPEC §11). IPv4 is held in host
// order, as rules::Endpoint and rules::Ipv4Prefix hold it; IPv6 in network
// order, as rules::Ipv6Addr.
#pragma once

#include <compare>
#include <cstdint>
#include <string>

#include "rules/ipv4.hpp"
#include "rules/ipv6.hpp"

namespace vaultwall::gate {

class IpAddress {
public:
    IpAddress() = default;
    IpAddress(std::uint32_t v4) : v4_(v4) {}  // NOLINT: implicit, an IPv4 address is one
    explicit IpAddress(const rules::Ipv6Addr& v6) : is_v6_(true), v6_(v6) {}

    bool is_v6() const { return is_v6_; }
    std::uint32_t v4() const { return v4_; }            // 0 for IPv6
    const rules::Ipv6Addr& v6() const { return v6_; }   // all zero for IPv4
    // "192.0.2.9", "2001:db8::1" (RFC 5952)
    std::string str() const { return is_v6_ ? rules::format_ipv6(v6_) : rules::format_ipv4(v4_); }

    friend auto operator<=>(const IpAddress&, const IpAddress&) = default;
    friend bool operator==(const IpAddress&, const IpAddress&) = default;

private:
    bool is_v6_ = false;
    std::uint32_t v4_ = 0;
    rules::Ipv6Addr v6_{};
};

}  // namespace vaultwall::gate
