#include <gtest/gtest.h>

#include <string>

#include "rules/ipv6.hpp"

using namespace vaultwall::rules;

namespace {

std::string canon(const char* text) {
    auto a = parse_ipv6(text);
    return a ? format_ipv6(*a) : std::string("<invalid>");
}

}  // namespace

TEST(Ipv6, ParsesEveryRfc4291Form) {
    auto a = parse_ipv6("2001:db8::1");
    ASSERT_TRUE(a);
    Ipv6Addr want{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    EXPECT_EQ(*a, want);
    EXPECT_EQ(parse_ipv6("2001:0DB8:0000:0000:0000:0000:0000:0001"), want);  // full, upper case
    EXPECT_EQ(parse_ipv6("2001:db8:0:0:0:0:0:1"), want);
    EXPECT_EQ(parse_ipv6("::"), Ipv6Addr{});
    Ipv6Addr mapped{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1};
    EXPECT_EQ(parse_ipv6("::ffff:192.0.2.1"), mapped);
    EXPECT_EQ(parse_ipv6("0:0:0:0:0:ffff:192.0.2.1"), mapped);
    EXPECT_TRUE(parse_ipv6("1:2:3:4:5:6:7::"));  // "::" for a single field is valid input
}

TEST(Ipv6, RefusesWhatIsNotAnAddress) {
    for (const char* bad : {"", ":", ":::", "2001:db8:::1", "1::2::3", "1:2:3:4:5:6:7:8:9",
                            "1:2:3:4:5:6:7", "1::2:3:4:5:6:7:8", "12345::1", "2001:db8::g",
                            "fe80::1%eth0", "[2001:db8::1]", "2001:db8::1/64", " 2001:db8::1",
                            "2001:db8::1 ", "::1.2.3", "::1.02.3.4", "::1.2.3.4:5", "::256.0.0.1",
                            "1.2.3.4", "2001:db8::1:", ":2001:db8::1",
                            "0000:0000:0000:0000:0000:0000:0000:0000:0"}) {
        EXPECT_FALSE(parse_ipv6(bad)) << "'" << bad << "'";
    }
    EXPECT_FALSE(parse_ipv6(std::string_view("2001:db8::1\0", 12)));  // an embedded NUL
}

TEST(Ipv6, FormatsInRfc5952Form) {
    EXPECT_EQ(canon("2001:0DB8::0001"), "2001:db8::1");                  // §4.1, §4.3
    EXPECT_EQ(canon("2001:db8:0:0:1:0:0:1"), "2001:db8::1:0:0:1");       // §4.2.3: first of a tie
    EXPECT_EQ(canon("2001:0:0:1:0:0:0:1"), "2001:0:0:1::1");             // §4.2.3: the longest
    EXPECT_EQ(canon("2001:db8:0:1:1:1:1:1"), "2001:db8:0:1:1:1:1:1");    // §4.2.2: not one field
    EXPECT_EQ(canon("2001:db8:0:0:0:0:2:1"), "2001:db8::2:1");
    EXPECT_EQ(canon("1:2:3:4:5:6:7::"), "1:2:3:4:5:6:7:0");
    EXPECT_EQ(canon("0:0:0:0:0:0:0:0"), "::");
    EXPECT_EQ(canon("::1"), "::1");
    EXPECT_EQ(canon("::2"), "::2");                                      // not ::0.0.0.2
    EXPECT_EQ(canon("1::"), "1::");
    EXPECT_EQ(canon("0:0:0:0:0:FFFF:c000:0201"), "::ffff:192.0.2.1");    // §5: IPv4-mapped
    EXPECT_EQ(canon("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
              "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
}

TEST(Ipv6, FormatThenParseIsTheSameAddress) {
    // Every pattern of zero and non-zero fields.
    for (unsigned pattern = 0; pattern < 256; ++pattern) {
        Ipv6Addr a{};
        for (int f = 0; f < 8; ++f)
            if (pattern & (1u << f)) a[2 * f + 1] = static_cast<std::uint8_t>(f + 1);
        auto text = format_ipv6(a);
        EXPECT_EQ(parse_ipv6(text), a) << text;
        EXPECT_EQ(text.find(":::"), std::string::npos) << text;
    }
}

TEST(Ipv6Prefix, ParsesLengthsAndNamesTheIntendedNetwork) {
    auto p = parse_ipv6_prefix("2001:db8::/32");
    ASSERT_TRUE(p);
    EXPECT_FALSE(p->host_bits_set);
    EXPECT_EQ(p->prefix.len, 32);
    EXPECT_EQ(p->prefix.str(), "2001:db8::/32");

    auto host = parse_ipv6_prefix("2001:db8::10");  // a bare address is a /128
    ASSERT_TRUE(host);
    EXPECT_EQ(host->prefix.str(), "2001:db8::10/128");

    auto set = parse_ipv6_prefix("2001:db8:1:2::5/33");
    ASSERT_TRUE(set);
    EXPECT_TRUE(set->host_bits_set);
    EXPECT_EQ(set->prefix.str(), "2001:db8::/33");  // "did you mean 2001:db8::/33?"

    auto odd = parse_ipv6_prefix("2001:db8:ffff::/45");
    ASSERT_TRUE(odd);
    EXPECT_TRUE(odd->host_bits_set);
    EXPECT_EQ(odd->prefix.str(), "2001:db8:fff8::/45");

    auto all = parse_ipv6_prefix("::/0");
    ASSERT_TRUE(all);
    EXPECT_EQ(all->prefix.str(), "::/0");
    EXPECT_TRUE(parse_ipv6_prefix("2001:db8::1/0")->host_bits_set);

    for (const char* bad : {"2001:db8::/129", "2001:db8::/032", "2001:db8::/", "2001:db8::/-1",
                            "2001:db8::/+3", "2001:db8::/32/1", "/32", "2001:db8::/ 32",
                            "192.0.2.0/24", "2001:db8::%1/32"}) {
        EXPECT_FALSE(parse_ipv6_prefix(bad)) << bad;
    }
}

TEST(Ipv6Prefix, ContainsAndOrders) {
    auto net = parse_ipv6_prefix("2001:db8:8000::/33")->prefix;
    EXPECT_TRUE(net.contains(*parse_ipv6("2001:db8:8000::1")));
    EXPECT_TRUE(net.contains(*parse_ipv6("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff")));
    EXPECT_FALSE(net.contains(*parse_ipv6("2001:db8:7fff:ffff::1")));
    EXPECT_FALSE(net.contains(*parse_ipv6("2001:db9::")));
    EXPECT_TRUE(Ipv6Prefix{}.contains(*parse_ipv6("ffff::1")));  // ::/0
    auto h = parse_ipv6_prefix("2001:db8::10")->prefix;
    EXPECT_TRUE(h.contains(*parse_ipv6("2001:db8::10")));
    EXPECT_FALSE(h.contains(*parse_ipv6("2001:db8::11")));

    auto a = parse_ipv6_prefix("2001:db8::/32")->prefix;
    auto b = parse_ipv6_prefix("2001:db8::/48")->prefix;
    auto c = parse_ipv6_prefix("2001:db9::/32")->prefix;
    EXPECT_TRUE(a < b);
    EXPECT_TRUE(b < c);
    EXPECT_FALSE(b < a);
    EXPECT_EQ(a, parse_ipv6_prefix("2001:0db8:0::/32")->prefix);
    EXPECT_FALSE(a == b);
}
