// JWT validation: every refusal of SPEC §5.2, at the validator and through
// decide() (401 + the right WWW-Authenticate).
#include <gtest/gtest.h>
#include <limits>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "gate/b64.hpp"
#include "gate/decision.hpp"
#include "gate/jwt.hpp"
#include "support.hpp"

using namespace vaultwall;
using namespace vaultwall::gate;
using namespace vwtest;

namespace {

class Jwt : public ::testing::Test {
protected:
    JwtValidator v{policy()};
    JwtResult check(const std::string& tok, const std::string& tenant = kTenant) { return v.validate(tok, tenant); }

    // The same token through the whole decision: must be 401 with the
    // invalid_token challenge.
    void expect_401_invalid(const std::string& tok, const std::string& reason) {
        rules::Vault vlt = vault();
        rules::Identity id = identity();
        auto cat = catalog();
        DecisionContext ctx{vlt, id, cat, v};
        std::string auth = "Bearer " + tok;
        RequestFacts f{"GET", "/secrets/db?api-version=7.4", auth, 0xC0000209};
        Admission a;
        a.admitted = true;
        a.reason = VW_PASS_IP_RULE;
        auto d = decide(ctx, f, a);
        EXPECT_FALSE(d.allow);
        EXPECT_EQ(d.status, 401u);
        EXPECT_EQ(d.www_authenticate,
                  "Bearer authorization=\"https://login.microsoftonline.com/" + kTenant +
                      "\", resource=\"https://vault.azure.net\", error=\"invalid_token\"");
        EXPECT_EQ(d.reason, reason);
        auto body = nlohmann::json::parse(d.body());
        EXPECT_EQ(body["error"]["code"], "Unauthorized");
    }
};

std::string hs256(const std::string& secret, const json& header, const json& payload) {
    std::string input = b64url_encode(header.dump()) + "." + b64url_encode(payload.dump());
    unsigned char out[64];
    size_t len = 0;
    EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, secret.data(), secret.size(),
              reinterpret_cast<const unsigned char*>(input.data()), input.size(), out, sizeof out, &len);
    return input + "." + b64url_encode(std::string(reinterpret_cast<char*>(out), len));
}

std::string rsa_public_pem() {
    BIO* b = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(b, keys().rsa);
    char* p = nullptr;
    long n = BIO_get_mem_data(b, &p);
    std::string s(p, (size_t)n);
    BIO_free(b);
    return s;
}

}  // namespace

TEST_F(Jwt, ValidRs256) {
    auto r = check(token(base_claims()));
    ASSERT_TRUE(r.ok()) << r.message;
    EXPECT_EQ(r.claims->oid, kOidApp);
    EXPECT_EQ(r.claims->caller(), "appid=" + kAppApp + ";oid=" + kOidApp + ";iss=" + kIssuer);
}

TEST_F(Jwt, ValidEs256) {
    auto r = check(token(base_claims(), "ES256", "ec1"));
    ASSERT_TRUE(r.ok()) << r.message;
}

TEST_F(Jwt, AudienceArrayContainingAudiencePasses) {
    auto c = base_claims();
    c["aud"] = json::array({"api://other", kAudience});
    EXPECT_TRUE(check(token(c)).ok());
}

TEST_F(Jwt, AlgNoneRefused) {
    json h{{"alg", "none"}, {"kid", "rsa1"}};
    std::string tok = b64url_encode(h.dump()) + "." + b64url_encode(base_claims().dump()) + ".";
    EXPECT_EQ(check(tok).error, JwtError::unsupported_alg);
    expect_401_invalid(tok, "unsupported_alg");
}

TEST_F(Jwt, Hs256KeyConfusionRefused) {
    json h{{"alg", "HS256"}, {"kid", "rsa1"}};
    std::string tok = hs256(rsa_public_pem(), h, base_claims());
    EXPECT_EQ(check(tok).error, JwtError::unsupported_alg);
    expect_401_invalid(tok, "unsupported_alg");
}

TEST_F(Jwt, OtherAlgorithmsRefused) {
    for (auto alg : {"PS256", "RS384", "ES384", "EdDSA", "RS256 "}) {
        json h{{"alg", alg}, {"kid", "rsa1"}};
        std::string tok = b64url_encode(h.dump()) + "." + b64url_encode(base_claims().dump()) + ".AAAA";
        EXPECT_EQ(check(tok).error, JwtError::unsupported_alg) << alg;
    }
}

TEST_F(Jwt, UnknownKidRefused) {
    auto tok = token(base_claims(), "RS256", "nope", keys().other);
    EXPECT_EQ(check(tok).error, JwtError::unknown_kid);
    expect_401_invalid(tok, "unknown_kid");
}

TEST_F(Jwt, KeyTypeMustMatchAlg) {
    // RS256 naming the EC key, ES256 naming the RSA key.
    EXPECT_EQ(check(token(base_claims(), "RS256", "ec1", keys().rsa)).error, JwtError::key_mismatch);
    EXPECT_EQ(check(token(base_claims(), "ES256", "rsa1", keys().ec)).error, JwtError::key_mismatch);
    expect_401_invalid(token(base_claims(), "RS256", "ec1", keys().rsa), "key_alg_mismatch");
}

TEST_F(Jwt, MissingKidRefused) {
    json h{{"alg", "RS256"}};
    auto tok = sign_jwt(keys().rsa, h, base_claims());
    EXPECT_EQ(check(tok).error, JwtError::missing_kid);
}

TEST_F(Jwt, WrongAudienceRefused) {
    auto c = base_claims();
    c["aud"] = "https://management.azure.com";
    EXPECT_EQ(check(token(c)).error, JwtError::bad_audience);
    expect_401_invalid(token(c), "bad_audience");
    c.erase("aud");
    EXPECT_EQ(check(token(c)).error, JwtError::bad_audience);
}

TEST_F(Jwt, WrongIssuerRefused) {
    auto c = base_claims();
    c["iss"] = "https://sts.evil.test/" + kTenant + "/";
    EXPECT_EQ(check(token(c)).error, JwtError::unknown_issuer);
    expect_401_invalid(token(c), "bad_issuer");
}

TEST_F(Jwt, WrongTenantRefused) {
    auto c = base_claims();
    c["tid"] = kOtherTenant;
    EXPECT_EQ(check(token(c)).error, JwtError::bad_tenant);
    expect_401_invalid(token(c), "bad_tenant");
    // and a good token presented to a vault of another tenant
    EXPECT_EQ(check(token(base_claims()), kOtherTenant).error, JwtError::bad_tenant);
}

TEST_F(Jwt, ExpiredRefused) {
    auto c = base_claims();
    c["exp"] = now_s() - 61 - 5;
    EXPECT_EQ(check(token(c)).error, JwtError::expired);
    expect_401_invalid(token(c), "token_expired");
}

TEST_F(Jwt, ExpiredWithinSkewPasses) {
    auto c = base_claims();
    c["exp"] = now_s() - 30;
    EXPECT_TRUE(check(token(c)).ok());
}

TEST_F(Jwt, MissingExpRefused) {
    auto c = base_claims();
    c.erase("exp");
    EXPECT_EQ(check(token(c)).error, JwtError::malformed);
}

TEST_F(Jwt, NbfBeyondSkewRefused) {
    auto c = base_claims();
    c["nbf"] = now_s() + 120;
    EXPECT_EQ(check(token(c)).error, JwtError::not_yet_valid);
    expect_401_invalid(token(c), "token_not_yet_valid");
}

TEST_F(Jwt, NbfWithinSkewPasses) {
    auto c = base_claims();
    c["nbf"] = now_s() + 30;
    EXPECT_TRUE(check(token(c)).ok());
}

TEST_F(Jwt, BadSignatureRefused) {
    auto tok = token(base_claims());
    // Change one signature byte (decode, flip, re-encode so base64 stays canonical).
    auto dot = tok.rfind('.');
    auto sig = *b64url_decode(tok.substr(dot + 1));
    sig[10] ^= 0x01;
    std::string bad = tok.substr(0, dot + 1) + b64url_encode(sig);
    EXPECT_EQ(check(bad).error, JwtError::bad_signature);
    expect_401_invalid(bad, "bad_signature");
    // ES256 too, and a valid signature over different claims
    auto etok = token(base_claims(), "ES256", "ec1");
    auto edot = etok.rfind('.');
    auto esig = *b64url_decode(etok.substr(edot + 1));
    esig[40] ^= 0x01;
    EXPECT_EQ(check(etok.substr(0, edot + 1) + b64url_encode(esig)).error, JwtError::bad_signature);
    auto other = token(base_claims(kOidRbac));
    auto mixed = other.substr(0, other.rfind('.')) + tok.substr(dot);
    EXPECT_EQ(check(mixed).error, JwtError::bad_signature);
}

TEST_F(Jwt, SignedByKeyNotInJwksRefused) {
    auto tok = token(base_claims(), "RS256", "rsa1", keys().other);
    EXPECT_EQ(check(tok).error, JwtError::bad_signature);
}

TEST_F(Jwt, MalformedBase64Refused) {
    auto tok = token(base_claims());
    std::string bad = tok;
    bad[3] = '+';
    EXPECT_EQ(check(bad).error, JwtError::malformed);
    expect_401_invalid(bad, "malformed_token");
    EXPECT_EQ(check(tok + "=").error, JwtError::malformed);
    EXPECT_EQ(check("a.b").error, JwtError::malformed);
    EXPECT_EQ(check(tok + ".x").error, JwtError::malformed);
}

TEST_F(Jwt, MalformedJsonRefused) {
    json h{{"alg", "RS256"}, {"kid", "rsa1"}};
    std::string tok = b64url_encode(h.dump()) + "." + b64url_encode("{\"iss\": ") + ".AAAA";
    EXPECT_EQ(check(tok).error, JwtError::malformed);
    expect_401_invalid(tok, "malformed_token");
    std::string arr = b64url_encode("[1]") + "." + b64url_encode(base_claims().dump()) + ".AAAA";
    EXPECT_EQ(check(arr).error, JwtError::malformed);
}

TEST_F(Jwt, HugeTokenRefused) {
    auto c = base_claims();
    c["pad"] = std::string(64 * 1024, 'x');
    auto tok = token(c);
    EXPECT_GT(tok.size(), 64u * 1024);
    EXPECT_EQ(check(tok).error, JwtError::too_large);
    expect_401_invalid(tok, "token_too_large");
}

TEST_F(Jwt, CacheHitsAndStillChecksTimeAndTenant) {
    auto c = base_claims();
    auto tok = token(c);
    auto r1 = check(tok);
    ASSERT_TRUE(r1.ok());
    EXPECT_FALSE(r1.from_cache);
    auto r2 = check(tok);
    ASSERT_TRUE(r2.ok());
    EXPECT_TRUE(r2.from_cache);
    EXPECT_EQ(v.cache_size(), 1u);
    EXPECT_EQ(check(tok, kOtherTenant).error, JwtError::bad_tenant);
    auto later = Clock::now() + std::chrono::hours(2);
    EXPECT_EQ(v.validate(tok, kTenant, later).error, JwtError::expired);
    // Refusals are not cached.
    auto bad = tok.substr(0, tok.size() - 2) + "AA";
    check(bad);
    EXPECT_EQ(v.cache_size(), 1u);
}

TEST_F(Jwt, CacheIsBounded) {
    JwtValidator small(policy(), 4);
    for (int i = 0; i < 10; ++i) {
        auto c = base_claims();
        c["jti"] = i;
        ASSERT_TRUE(small.validate(token(c), kTenant).ok());
    }
    EXPECT_LE(small.cache_size(), 4u);
}

TEST(Jwks, ParsesRsaAndEcAndSkipsOthers) {
    std::string j = "{\"keys\":[" + jwk_json_from_pkey(keys().rsa, "a") + "," + jwk_json_from_pkey(keys().ec, "b") +
                    R"(,{"kid":"c","kty":"oct","k":"AAAA"},{"kid":"d","kty":"RSA","use":"enc","n":"AQAB","e":"AQAB"}]})";
    auto ks = KeySet::parse(j);
    EXPECT_EQ(ks.size(), 2u);
    EXPECT_EQ(ks.find("a")->type, KeyType::rsa);
    EXPECT_EQ(ks.find("b")->type, KeyType::ec_p256);
    EXPECT_EQ(ks.find("c"), nullptr);
}

TEST(Jwks, RejectsGarbage) {
    EXPECT_THROW(KeySet::parse("nope"), JwksError);
    EXPECT_THROW(KeySet::parse("{}"), JwksError);
    EXPECT_THROW(KeySet::parse(R"({"keys":[]})"), JwksError);
    // EC point not on the curve
    EXPECT_THROW(KeySet::parse(R"({"keys":[{"kid":"x","kty":"EC","crv":"P-256","x":")" +
                               b64url_encode(std::string(32, '\x01')) + R"(","y":")" +
                               b64url_encode(std::string(32, '\x02')) + R"("}]})"),
                 JwksError);
    EXPECT_THROW(KeySet::load_file("/nonexistent/jwks.json"), JwksError);
}

// Issue 17 item 6: a time claim is an integer in the int64 range. Beyond it
// (or with a fraction) the former double-to-int64 cast was undefined and
// wrapped: nbf=1e300 counted as long valid, exp=2^64-1 as expired.
TEST_F(Jwt, TimeClaimsOutOfRangeOrNonIntegralAreInvalidTokens) {
    const json odd[] = {1e300, -1e300, 1e19, 9223372036854775808.0 /* 2^63 */,
                        json(std::uint64_t{9223372036854775808u}) /* 2^63, as an unsigned */,
                        json(std::uint64_t{18446744073709551615u}) /* 2^64-1 */, json(double(now_s() - 10) + 0.5)};
    for (const char* claim : {"nbf", "exp", "iat"}) {
        for (const auto& value : odd) {
            SCOPED_TRACE(std::string(claim) + "=" + value.dump());
            auto c = base_claims();
            c[claim] = value;
            EXPECT_EQ(check(token(c)).error, JwtError::malformed);
            expect_401_invalid(token(c), "malformed_token");
        }
    }
    // The edges of the range are plain numbers: no overflow adding the skew.
    auto c = base_claims();
    c["exp"] = std::numeric_limits<std::int64_t>::max();
    EXPECT_TRUE(check(token(c)).ok());
    c = base_claims();
    c["nbf"] = std::numeric_limits<std::int64_t>::min();
    EXPECT_TRUE(check(token(c)).ok());
    c = base_claims();
    c["nbf"] = std::numeric_limits<std::int64_t>::max();
    EXPECT_EQ(check(token(c)).error, JwtError::not_yet_valid);
    c = base_claims();
    c["exp"] = double(now_s() + 600);  // integral, if written as a float
    EXPECT_TRUE(check(token(c)).ok());
}
