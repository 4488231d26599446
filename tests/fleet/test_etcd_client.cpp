// The etcd client against a real three-member etcd 3.4 cluster on loopback:
// KV and Txn, one multiplexed Watch stream with progress and cancel,
// compaction, leases kept alive and let expire, failover to another member,
// user/password auth and TLS with client certificates.
#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "etcd_cluster.hpp"
#include "fleet/etcd.hpp"

using namespace vaultwall::fleet;
using namespace std::chrono_literals;

namespace {

EtcdOptions opts_for(const vwtest::EtcdCluster& c) {
    EtcdOptions o;
    o.endpoints = split_endpoints(c.endpoints());
    o.timeout = 3000ms;
    return o;
}

// Reads responses until one for `id` arrives (or fails after 5 s).
WatchResponse next_for(WatchStream& ws, std::int64_t id) {
    auto end = std::chrono::steady_clock::now() + 5s;
    while (std::chrono::steady_clock::now() < end) {
        auto r = ws.next(200ms);
        if (r && r->watch_id == id) return *r;
    }
    throw std::runtime_error("no watch response for id " + std::to_string(id));
}

class EtcdClientTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() { cluster_ = new vwtest::EtcdCluster(); }
    static void TearDownTestSuite() {
        delete cluster_;
        cluster_ = nullptr;
    }
    static vwtest::EtcdCluster* cluster_;
};
vwtest::EtcdCluster* EtcdClientTest::cluster_ = nullptr;

}  // namespace

TEST_F(EtcdClientTest, PutGetRangeAndCompareAndSwap) {
    EtcdClient c(opts_for(*cluster_));
    std::int64_t r1 = c.put("/t/kv/a", "1");
    c.put("/t/kv/b", "2");
    c.put("/t/kvx", "not under /t/kv/");
    auto a = c.get("/t/kv/a");
    ASSERT_TRUE(a);
    EXPECT_EQ(a->value, "1");
    EXPECT_EQ(a->mod_revision, r1);
    EXPECT_FALSE(c.get("/t/kv/none"));
    auto range = c.get_prefix("/t/kv/");
    ASSERT_EQ(range.kvs.size(), 2u);
    EXPECT_EQ(range.kvs[1].value, "2");
    EXPECT_GE(range.revision, r1 + 2);

    // A Txn applies all of its operations, at one revision, only if its compare holds.
    TxnResult stale = c.txn({{"/t/kv/a", Compare::Target::mod_revision, r1 - 1, {}}}, {Op::put("/t/kv/a", "x")});
    EXPECT_FALSE(stale.succeeded);
    EXPECT_EQ(c.get("/t/kv/a")->value, "1");
    TxnResult ok = c.txn({{"/t/kv/a", Compare::Target::mod_revision, r1, {}}},
                         {Op::put("/t/kv/a", "3"), Op::remove("/t/kv/b"), Op::put("/t/kv/c", "4")});
    EXPECT_TRUE(ok.succeeded);
    EXPECT_EQ(c.get("/t/kv/a")->mod_revision, ok.revision);
    EXPECT_EQ(c.get("/t/kv/c")->mod_revision, ok.revision);
    EXPECT_FALSE(c.get("/t/kv/b"));
    // Compare on a missing key: revision 0.
    EXPECT_TRUE(c.txn({{"/t/kv/new", Compare::Target::mod_revision, 0, {}}}, {Op::put("/t/kv/new", "n")}).succeeded);
    EXPECT_FALSE(c.txn({{"/t/kv/new", Compare::Target::mod_revision, 0, {}}}, {Op::put("/t/kv/new", "m")}).succeeded);
    c.txn({}, {Op::remove_prefix("/t/kv/")});
    EXPECT_TRUE(c.get_prefix("/t/kv/").kvs.empty());
    EXPECT_TRUE(c.get("/t/kvx"));
}

TEST_F(EtcdClientTest, OneStreamMultiplexesWatchesWithProgressAndCancel) {
    EtcdClient c(opts_for(*cluster_));
    WatchStream ws(c);
    std::int64_t wa = ws.watch_prefix("/t/w/a/", 0);
    std::int64_t wb = ws.watch_prefix("/t/w/b/", 0);
    EXPECT_NE(wa, wb);

    std::int64_t ra = c.put("/t/w/a/1", "A");
    std::int64_t rb = c.put("/t/w/b/1", "B");
    auto ea = next_for(ws, wa);
    ASSERT_EQ(ea.events.size(), 1u);
    EXPECT_EQ(ea.events[0].kv.key, "/t/w/a/1");
    EXPECT_EQ(ea.events[0].kv.mod_revision, ra);
    auto eb = next_for(ws, wb);
    ASSERT_EQ(eb.events.size(), 1u);
    EXPECT_EQ(eb.events[0].kv.value, "B");
    EXPECT_EQ(eb.events[0].kv.mod_revision, rb);

    // One Txn: its events arrive together, at one revision.
    auto t = c.txn({}, {Op::put("/t/w/a/2", "x"), Op::put("/t/w/a/3", "y"), Op::remove("/t/w/a/1")});
    auto batch = next_for(ws, wa);
    ASSERT_EQ(batch.events.size(), 3u);
    for (const auto& e : batch.events) EXPECT_EQ(e.kv.mod_revision, t.revision);
    EXPECT_TRUE(batch.events[2].deleted);

    // A progress request is answered with the current revision and no events.
    ws.request_progress();
    bool progressed = false;
    auto end = std::chrono::steady_clock::now() + 5s;
    while (!progressed && std::chrono::steady_clock::now() < end) {
        auto r = ws.next(200ms);
        if (r && r->progress()) {
            EXPECT_GE(r->revision, t.revision);
            progressed = true;
        }
    }
    EXPECT_TRUE(progressed);

    // Canceling one watch leaves the other running on the same stream.
    ws.cancel(wa);
    EXPECT_TRUE(next_for(ws, wa).canceled);
    c.put("/t/w/a/4", "after cancel");
    std::int64_t rb2 = c.put("/t/w/b/2", "B2");
    auto eb2 = next_for(ws, wb);
    ASSERT_EQ(eb2.events.size(), 1u);
    EXPECT_EQ(eb2.events[0].kv.mod_revision, rb2);
    for (int i = 0; i < 3; ++i) {
        auto r = ws.next(100ms);
        if (r) {
            EXPECT_NE(r->watch_id, wa) << "a canceled watch still sends events";
        }
    }
}

TEST_F(EtcdClientTest, WatchFromACompactedRevisionSaysSo) {
    EtcdClient c(opts_for(*cluster_));
    std::int64_t first = c.put("/t/c/k", "1");
    c.put("/t/c/k", "2");
    cluster_->compact_to_latest();
    WatchStream ws(c);
    std::int64_t id = ws.watch_prefix("/t/c/", first);
    auto r = next_for(ws, id);
    EXPECT_TRUE(r.canceled);
    EXPECT_GT(r.compact_revision, first);
    // A read at a compacted revision is a refusal, not something to retry.
    try {
        c.get_prefix("/t/c/", first);
        ADD_FAILURE() << "read at a compacted revision succeeded";
    } catch (const EtcdError& e) {
        EXPECT_FALSE(e.retryable()) << e.what();
        EXPECT_NE(std::string(e.what()).find("compacted"), std::string::npos) << e.what();
    }
}

TEST_F(EtcdClientTest, LeaseLivesWhileKeptAliveAndExpiresAfter) {
    EtcdClient c(opts_for(*cluster_));
    std::int64_t lease = c.lease_grant(2);
    c.put("/t/l/host", "alive", lease);
    {
        LeaseKeepAlive ka(c, lease);
        for (int i = 0; i < 8; ++i) {  // 4 s: twice the TTL
            EXPECT_GT(ka.refresh(2000ms), 0);
            std::this_thread::sleep_for(500ms);
        }
        EXPECT_TRUE(c.get("/t/l/host"));
    }
    auto end = std::chrono::steady_clock::now() + 6s;
    while (c.get("/t/l/host") && std::chrono::steady_clock::now() < end) std::this_thread::sleep_for(200ms);
    EXPECT_FALSE(c.get("/t/l/host")) << "the key outlived its lease";
    LeaseKeepAlive late(c, lease);
    EXPECT_EQ(late.refresh(2000ms), 0) << "an expired lease must report TTL 0";

    std::int64_t revoked = c.lease_grant(30);
    c.put("/t/l/gone", "x", revoked);
    c.lease_revoke(revoked);
    EXPECT_FALSE(c.get("/t/l/gone"));
}

TEST_F(EtcdClientTest, LocalSocketsReachTheSameCluster) {
    EtcdOptions o;
    o.endpoints = split_endpoints(cluster_->socket_endpoints());
    EtcdClient local(o);
    EtcdClient tcp(opts_for(*cluster_));
    std::int64_t rev = local.put("/t/s/k", "over a unix socket");
    EXPECT_EQ(tcp.get("/t/s/k")->mod_revision, rev);
}

TEST_F(EtcdClientTest, UnaryCallsMoveToAnotherMemberWhenOneDies) {
    EtcdClient c(opts_for(*cluster_));
    c.put("/t/f/k", "v");
    std::string first = c.endpoint();
    int idx = 0;
    for (int i = 0; i < cluster_->size(); ++i)
        if (cluster_->endpoint(i) == first) idx = i;
    cluster_->kill(idx);
    auto kv = c.get("/t/f/k");  // fails on the dead member, succeeds on the next
    ASSERT_TRUE(kv);
    EXPECT_EQ(kv->value, "v");
    EXPECT_NE(c.endpoint(), first);
    cluster_->start(idx);
    cluster_->wait_healthy();
}

TEST(EtcdAuth, UserAndPasswordAreRequiredAndChecked) {
    vwtest::EtcdCluster cluster({1, false, {}});
    cluster.enable_auth("vw", "s3cret");
    EtcdOptions o = opts_for(cluster);
    {
        EtcdClient anonymous(o);
        try {
            anonymous.put("/vaultwall/x", "1");
            ADD_FAILURE() << "etcd accepted a write without credentials";
        } catch (const EtcdError& e) {
            EXPECT_FALSE(e.retryable()) << e.what();
        }
    }
    {
        EtcdOptions bad = o;
        bad.user = "vw";
        bad.password = "wrong";
        EtcdClient c(bad);
        try {
            c.get("/vaultwall/x");
            ADD_FAILURE() << "a wrong password was accepted";
        } catch (const EtcdError& e) {
            EXPECT_NE(std::string(e.what()).find("authenticate as vw"), std::string::npos) << e.what();
            EXPECT_FALSE(e.retryable());
        }
    }
    o.user = "vw";
    o.password = "s3cret";
    EtcdClient c(o);
    std::int64_t rev = c.put("/vaultwall/x", "1");
    EXPECT_EQ(c.get("/vaultwall/x")->mod_revision, rev);
    // The role grants /vaultwall/ only.
    EXPECT_THROW(c.put("/elsewhere", "1"), EtcdError);
    // Streams carry the token too.
    WatchStream ws(c);
    std::int64_t id = ws.watch_prefix("/vaultwall/", rev + 1);
    std::int64_t r2 = c.put("/vaultwall/y", "2");
    EXPECT_EQ(next_for(ws, id).events.at(0).kv.mod_revision, r2);
    std::int64_t lease = c.lease_grant(5);
    LeaseKeepAlive ka(c, lease);
    EXPECT_GT(ka.refresh(2000ms), 0);
}

TEST(EtcdTls, ClientCertificatesAreRequiredAndVerified) {
    vwtest::EtcdCluster cluster({1, true, {}});
    EtcdOptions o = opts_for(cluster);
    o.timeout = 2000ms;
    o.cacert = cluster.ca();
    {
        EtcdClient no_cert(o);
        EXPECT_THROW(no_cert.put("/vaultwall/x", "1"), EtcdError) << "etcd accepted a client without a certificate";
    }
    {
        EtcdOptions rogue = o;
        rogue.cert = cluster.rogue_cert();
        rogue.key = cluster.rogue_key();
        EtcdClient c(rogue);
        EXPECT_THROW(c.put("/vaultwall/x", "1"), EtcdError) << "etcd accepted a certificate from another CA";
    }
    {
        EtcdOptions no_ca = o;  // the system's CAs do not know the test CA
        no_ca.cacert.clear();
        no_ca.cert = cluster.client_cert();
        no_ca.key = cluster.client_key();
        EtcdClient c(no_ca);
        EXPECT_THROW(c.put("/vaultwall/x", "1"), EtcdError) << "the client trusted an unknown server CA";
    }
    o.cert = cluster.client_cert();
    o.key = cluster.client_key();
    EtcdClient c(o);
    std::int64_t rev = c.put("/vaultwall/x", "1");
    EXPECT_EQ(c.get("/vaultwall/x")->mod_revision, rev);
    WatchStream ws(c);
    std::int64_t id = ws.watch_prefix("/vaultwall/", rev + 1);
    std::int64_t r2 = c.put("/vaultwall/y", "2");
    EXPECT_EQ(next_for(ws, id).events.at(0).kv.mod_revision, r2);

    // The same over etcd's local socket (the name checked is "localhost").
    EtcdOptions local = o;
    local.endpoints = split_endpoints(cluster.socket_endpoints());
    EtcdClient lc(local);
    EXPECT_EQ(lc.get("/vaultwall/y")->mod_revision, r2);

    EtcdOptions half = o;
    half.key.clear();
    EXPECT_THROW(EtcdClient{half}, EtcdError);
}

TEST(EtcdOptionsTest, EndpointListsAreChecked) {
    EXPECT_EQ(split_endpoints("http://a:1,http://b:2").size(), 2u);
    EXPECT_THROW(split_endpoints(""), std::invalid_argument);
    EXPECT_THROW(split_endpoints("http://a:1,,http://b:2"), std::invalid_argument);
    EtcdOptions mixed;
    mixed.endpoints = {"http://127.0.0.1:1", "https://127.0.0.1:2"};
    EXPECT_THROW(EtcdClient{mixed}, EtcdError);
    EtcdOptions path;
    path.endpoints = {"http://127.0.0.1:1/v3"};
    EXPECT_THROW(EtcdClient{path}, EtcdError);
    EtcdOptions relative;
    relative.endpoints = {"unix://run/etcd.sock"};
    EXPECT_THROW(EtcdClient{relative}, EtcdError);
    EXPECT_EQ(prefix_end("/a/"), "/a0");
    EXPECT_EQ(prefix_end(std::string("a\xff", 2)), "b");
}
