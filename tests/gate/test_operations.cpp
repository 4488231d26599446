#include <gtest/gtest.h>

#include "gate/operations.hpp"

using namespace vaultwall::gate;

struct Row {
    const char* method;
    const char* target;
    const char* op;
    const char* action;  // after Microsoft.KeyVault/vaults/
    const char* object;
};

class Operations : public ::testing::TestWithParam<Row> {};

TEST_P(Operations, Classifies) {
    const Row& r = GetParam();
    auto op = classify(r.method, r.target);
    ASSERT_TRUE(op) << r.method << " " << r.target;
    EXPECT_EQ(op->name, r.op) << r.method << " " << r.target;
    EXPECT_EQ(op->data_action, std::string("Microsoft.KeyVault/vaults/") + r.action) << r.target;
    EXPECT_EQ(op->object, r.object) << r.target;
}

INSTANTIATE_TEST_SUITE_P(
    KeyVaultRest, Operations,
    ::testing::Values(
        Row{"GET", "/secrets/db?api-version=7.4", "secrets/get", "secrets/getSecret/action", "db"},
        Row{"GET", "/secrets/db/0123abcd?api-version=2016-10-01", "secrets/get", "secrets/getSecret/action", "db"},
        Row{"GET", "/secrets/db/", "secrets/get", "secrets/getSecret/action", "db"},
        Row{"GET", "/secrets?api-version=7.4&maxresults=25", "secrets/list", "secrets/readMetadata/action", ""},
        Row{"GET", "/secrets/db/versions?api-version=7.4", "secrets/list", "secrets/readMetadata/action", "db"},
        Row{"PUT", "/secrets/db?api-version=7.4", "secrets/set", "secrets/setSecret/action", "db"},
        Row{"PATCH", "/secrets/db/abc?api-version=7.4", "secrets/set", "secrets/update/action", "db"},
        Row{"DELETE", "/secrets/db", "secrets/delete", "secrets/delete", "db"},
        Row{"POST", "/secrets/db/backup", "secrets/backup", "secrets/backup/action", "db"},
        Row{"POST", "/secrets/restore", "secrets/restore", "secrets/restore/action", ""},
        Row{"GET", "/deletedsecrets", "secrets/list", "secrets/readMetadata/action", ""},
        Row{"GET", "/deletedsecrets/db", "secrets/get", "secrets/readMetadata/action", "db"},
        Row{"POST", "/deletedsecrets/db/recover", "secrets/recover", "secrets/recover/action", "db"},
        Row{"DELETE", "/deletedsecrets/db", "secrets/purge", "secrets/purge/action", "db"},
        Row{"POST", "/keys/k1/create?api-version=7.4", "keys/create", "keys/create/action", "k1"},
        Row{"PUT", "/keys/k1", "keys/import", "keys/import/action", "k1"},
        Row{"GET", "/keys/k1", "keys/get", "keys/read", "k1"},
        Row{"GET", "/keys/k1/abc123", "keys/get", "keys/read", "k1"},
        Row{"GET", "/keys", "keys/list", "keys/read", ""},
        Row{"GET", "/keys/k1/versions", "keys/list", "keys/read", "k1"},
        Row{"PATCH", "/keys/k1/abc", "keys/update", "keys/update/action", "k1"},
        Row{"DELETE", "/keys/k1", "keys/delete", "keys/delete", "k1"},
        Row{"POST", "/keys/k1/backup", "keys/backup", "keys/backup/action", "k1"},
        Row{"POST", "/keys/restore", "keys/restore", "keys/restore/action", ""},
        Row{"POST", "/keys/k1/abc/encrypt", "keys/encrypt", "keys/encrypt/action", "k1"},
        Row{"POST", "/keys/k1/abc/decrypt", "keys/decrypt", "keys/decrypt/action", "k1"},
        Row{"POST", "/keys/k1/abc/wrapkey?api-version=7.4", "keys/wrapKey", "keys/wrap/action", "k1"},
        Row{"POST", "/keys/k1/wrapkey", "keys/wrapKey", "keys/wrap/action", "k1"},
        Row{"POST", "/keys/k1/abc/unwrapkey", "keys/unwrapKey", "keys/unwrap/action", "k1"},
        Row{"POST", "/keys/k1/abc/sign", "keys/sign", "keys/sign/action", "k1"},
        Row{"POST", "/keys/k1/abc/verify", "keys/verify", "keys/verify/action", "k1"},
        Row{"POST", "/keys/k1/rotate", "keys/rotate", "keys/rotate/action", "k1"},
        Row{"GET", "/keys/k1/rotationpolicy", "keys/getrotationpolicy", "keyrotationpolicies/read", "k1"},
        Row{"PUT", "/keys/k1/rotationpolicy", "keys/setrotationpolicy", "keyrotationpolicies/write", "k1"},
        Row{"POST", "/keys/k1/abc/release", "keys/release", "keys/release/action", "k1"},
        Row{"GET", "/deletedkeys/k1", "keys/get", "keys/read", "k1"},
        Row{"POST", "/deletedkeys/k1/recover", "keys/recover", "keys/recover/action", "k1"},
        Row{"DELETE", "/deletedkeys/k1", "keys/purge", "keys/purge/action", "k1"},
        Row{"GET", "/certificates/web", "certificates/get", "certificates/read", "web"},
        Row{"GET", "/certificates", "certificates/list", "certificates/read", ""},
        Row{"POST", "/certificates/web/create", "certificates/create", "certificates/create/action", "web"},
        Row{"POST", "/certificates/web/import", "certificates/import", "certificates/import/action", "web"},
        Row{"PATCH", "/certificates/web/abc", "certificates/update", "certificates/update/action", "web"},
        Row{"DELETE", "/certificates/web", "certificates/delete", "certificates/delete", "web"},
        Row{"GET", "/certificates/contacts", "certificates/managecontacts", "certificatecontacts/read", ""},
        Row{"PUT", "/certificates/contacts", "certificates/managecontacts", "certificatecontacts/write", ""},
        Row{"GET", "/certificates/issuers", "certificates/listissuers", "certificatecas/read", ""},
        Row{"GET", "/certificates/issuers/digicert", "certificates/getissuers", "certificatecas/read", ""},
        Row{"PUT", "/certificates/issuers/digicert", "certificates/setissuers", "certificatecas/write", ""},
        Row{"DELETE", "/certificates/issuers/digicert", "certificates/deleteissuers", "certificatecas/delete", ""},
        Row{"POST", "/certificates/web/pending/merge", "certificates/create", "certificates/create/action", "web"},
        Row{"GET", "/deletedcertificates", "certificates/list", "certificates/read", ""},
        Row{"POST", "/deletedcertificates/web/recover", "certificates/recover", "certificates/recover/action", "web"},
        Row{"DELETE", "/deletedcertificates/web", "certificates/purge", "certificates/purge/action", "web"}));

TEST(OperationsReject, NotDataPlaneOrAmbiguous) {
    EXPECT_FALSE(classify("GET", "/"));
    EXPECT_FALSE(classify("GET", "/foo"));
    EXPECT_FALSE(classify("GET", "/secrets/../keys/k1"));
    EXPECT_FALSE(classify("GET", "/secrets/a%2Fb"));
    EXPECT_FALSE(classify("GET", "/secrets//x"));
    EXPECT_FALSE(classify("GET", "/secrets/bad_name"));
    EXPECT_FALSE(classify("GET", "/secrets/a/b/c/d"));
    EXPECT_FALSE(classify("POST", "/secrets/db"));
    EXPECT_FALSE(classify("TRACE", "/secrets/db"));
    EXPECT_FALSE(classify("GET", "secrets/db"));
}

TEST(OperationsCase, PathLiteralsAreCaseInsensitive) {
    auto op = classify("POST", "/Keys/K1/WrapKey?api-version=7.4");
    ASSERT_TRUE(op);
    EXPECT_EQ(op->name, "keys/wrapKey");
    EXPECT_EQ(op->scope(), "/keys/K1");
}

// Issue 17 item 2: the path ends at '?' only. A '#' is no delimiter a request
// target may hold, so "x1#/../../keys/k" is one (invalid) name, never
// secrets/get of x1 with a tail the upstream resolves.
TEST(OperationsReject, FragmentIsPartOfNoOperation) {
    EXPECT_FALSE(classify("GET", "/secrets/x1#/../../keys/k"));
    EXPECT_FALSE(classify("POST", "/keys/k/wrapkey#/../unwrapkey"));
    EXPECT_FALSE(classify("GET", "/secrets/x1#frag"));
    EXPECT_FALSE(classify("GET", "/secrets#/x"));
}

// The target the gate forwards is the one it classified, normalised: the
// path's segments joined by '/', then the query as sent.
TEST(OperationsTarget, ForwardedTargetIsTheNormalisedOne) {
    EXPECT_EQ(classify("GET", "/secrets/db/?api-version=7.4")->target, "/secrets/db?api-version=7.4");
    EXPECT_EQ(classify("GET", "/secrets/db")->target, "/secrets/db");
    EXPECT_EQ(classify("POST", "/keys/k1/abc/wrapkey?api-version=7.4")->target, "/keys/k1/abc/wrapkey?api-version=7.4");
    EXPECT_EQ(classify("GET", "/secrets?")->target, "/secrets?");
}
