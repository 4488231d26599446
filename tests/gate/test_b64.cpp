#include <gtest/gtest.h>

#include <vector>

#include "gate/b64.hpp"

using namespace vaultwall::gate;

TEST(Base64Url, RoundTrip) {
    for (std::string s : std::vector<std::string>{"", "f", "fo", "foo", "foob", "fooba", "foobar", std::string("\xff\xfe\x00\x01", 4)})
        EXPECT_EQ(b64url_decode(b64url_encode(s)), s);
    EXPECT_EQ(b64url_encode("\xfb\xff"), "-_8");
}

TEST(Base64Url, StrictRejects) {
    EXPECT_FALSE(b64url_decode("Zm9v="));   // padding
    EXPECT_FALSE(b64url_decode("Zm+v"));    // standard alphabet
    EXPECT_FALSE(b64url_decode("Zm9 v"));   // whitespace
    EXPECT_FALSE(b64url_decode("Z"));       // impossible length
    EXPECT_FALSE(b64url_decode("Zh"));      // non-zero trailing bits ("Zg" is canonical)
    EXPECT_TRUE(b64url_decode("Zg"));
}

TEST(Base64, Standard) {
    EXPECT_EQ(b64_encode("foob"), "Zm9vYg==");
    EXPECT_EQ(b64_decode("Zm9vYg=="), "foob");
    EXPECT_FALSE(b64_decode("Zm9vYg="));
    EXPECT_FALSE(b64_decode("Zm9v-g=="));
}
