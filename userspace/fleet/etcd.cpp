#include "fleet/etcd.hpp"

#include <cstring>
#include <fstream>
#include <sstream>

#include <grpc/support/log.h>
#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include "etcd/etcdserver/etcdserverpb/rpc.grpc.pb.h"

namespace vaultwall::fleet {

namespace pb = etcdserverpb;

namespace {

std::string read_pem(const std::string& path, const char* what) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw EtcdError("cannot read the etcd " + std::string(what) + " " + path, 0, false);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// etcd answers "the cluster cannot serve this now" with UNAVAILABLE (no
// leader, leader changed, request timed out, member stopping) and
// DEADLINE_EXCEEDED; another attempt may succeed. Everything else is a
// refusal that repeating will not change.
bool retryable_status(const grpc::Status& s) {
    switch (s.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::ABORTED:
        return true;
    default:
        return false;
    }
}

// gRPC core logs to stderr by itself (handshake failures, reconnects); the
// caller reports what matters through EtcdError, so route its lines to the
// debug log instead of printing them at the user.
void route_grpc_log(gpr_log_func_args* a) { spdlog::debug("grpc: {}:{}: {}", a->file, a->line, a->message); }
std::once_flag grpc_log_once;

bool invalid_token(const grpc::Status& s) {
    return s.error_code() == grpc::StatusCode::UNAUTHENTICATED ||
           s.error_message().find("invalid auth token") != std::string::npos;
}

std::string status_text(const grpc::Status& s) {
    std::string m = s.error_message();
    if (m.empty()) m = "gRPC status " + std::to_string(int(s.error_code()));
    for (char& c : m)
        if (c == '\n') c = ' ';
    return m;
}

KeyValue from_pb(const mvccpb::KeyValue& kv) {
    return {kv.key(), kv.value(), kv.create_revision(), kv.mod_revision(), kv.version(), kv.lease()};
}

void to_pb(const Op& op, pb::RequestOp* out) {
    switch (op.kind) {
    case Op::Kind::put: {
        auto* p = out->mutable_request_put();
        p->set_key(op.key);
        p->set_value(op.value);
        p->set_lease(op.lease);
        break;
    }
    case Op::Kind::remove:
        out->mutable_request_delete_range()->set_key(op.key);
        break;
    case Op::Kind::remove_prefix: {
        auto* d = out->mutable_request_delete_range();
        d->set_key(op.key);
        d->set_range_end(prefix_end(op.key));
        break;
    }
    }
}

// A bidirectional stream with a reader thread: the owner writes and takes
// answers from a queue with a timeout, so a member that stops answering is
// noticed (a blocking Read would wait forever).
template <class Req, class Resp>
class Bidi {
public:
    template <class Open>
    Bidi(std::unique_ptr<grpc::ClientContext> ctx, Open open, std::string what)
        : ctx_(std::move(ctx)), what_(std::move(what)) {
        stream_ = open(ctx_.get());
        reader_ = std::thread([this] { read_loop(); });
    }
    ~Bidi() {
        ctx_->TryCancel();
        reader_.join();
    }

    void write(const Req& r) {
        {
            std::lock_guard<std::mutex> lk(wmu_);
            if (!ended_ && stream_->Write(r)) return;
        }
        // The stream has failed: report why (the reader collects the status).
        std::unique_lock<std::mutex> lk(qmu_);
        cv_.wait_for(lk, std::chrono::seconds(2), [&] { return done_; });
        throw EtcdError(what_ + ": " + (done_ && !status_.ok() ? status_text(status_) : "stream closed"),
                        int(status_.error_code()), true);
    }

    // The next answer, nullopt after `timeout`; throws once the stream ended.
    std::optional<Resp> read(std::chrono::milliseconds timeout) {
        std::unique_lock<std::mutex> lk(qmu_);
        cv_.wait_for(lk, timeout, [&] { return !queue_.empty() || done_; });
        if (!queue_.empty()) {
            Resp r = std::move(queue_.front());
            queue_.pop_front();
            return r;
        }
        if (done_)
            throw EtcdError(what_ + ": " + (status_.ok() ? "stream ended by etcd" : status_text(status_)),
                            int(status_.error_code()), status_.ok() || retryable_status(status_) ||
                                                           invalid_token(status_));
        return std::nullopt;
    }

private:
    void read_loop() {
        Resp r;
        while (stream_->Read(&r)) {
            std::lock_guard<std::mutex> lk(qmu_);
            queue_.push_back(std::move(r));
            cv_.notify_all();
        }
        grpc::Status st;
        {
            std::lock_guard<std::mutex> lk(wmu_);
            ended_ = true;
            st = stream_->Finish();
        }
        std::lock_guard<std::mutex> lk(qmu_);
        status_ = st;
        done_ = true;
        cv_.notify_all();
    }

    std::unique_ptr<grpc::ClientContext> ctx_;
    std::unique_ptr<grpc::ClientReaderWriter<Req, Resp>> stream_;
    std::string what_;
    std::mutex wmu_;
    bool ended_ = false;
    std::mutex qmu_;
    std::condition_variable cv_;
    std::deque<Resp> queue_;
    bool done_ = false;
    grpc::Status status_;
    std::thread reader_;
};

}  // namespace

std::vector<std::string> split_endpoints(const std::string& csv) {
    std::vector<std::string> out;
    std::stringstream s(csv);
    std::string e;
    while (std::getline(s, e, ',')) {
        if (e.empty()) throw std::invalid_argument("empty etcd endpoint in '" + csv + "'");
        out.push_back(e);
    }
    if (out.empty()) throw std::invalid_argument("no etcd endpoint given");
    return out;
}

std::string prefix_end(const std::string& prefix) {
    std::string end = prefix;
    while (!end.empty()) {
        if (static_cast<unsigned char>(end.back()) < 0xff) {
            end.back() = char(static_cast<unsigned char>(end.back()) + 1);
            return end;
        }
        end.pop_back();
    }
    return std::string(1, '\0');  // every key
}

struct Member {
    std::string url;
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<pb::KV::Stub> kv;
    std::unique_ptr<pb::Lease::Stub> lease;
    std::unique_ptr<pb::Watch::Stub> watch;
    std::unique_ptr<pb::Auth::Stub> auth;
};

struct EtcdClient::Impl {
    EtcdOptions opts;
    std::vector<Member> members;
    mutable std::mutex mu;
    std::size_t current = 0;
    std::string token;  // etcd auth token, cluster-wide (simple tokens go through raft)

    explicit Impl(EtcdOptions o) : opts(std::move(o)) {
        std::call_once(grpc_log_once, [] { gpr_set_log_function(route_grpc_log); });
        if (opts.endpoints.empty()) throw EtcdError("no etcd endpoint given", 0, false);
        bool any_https = false;
        for (const auto& e : opts.endpoints) any_https |= e.rfind("https://", 0) == 0 || e.rfind("unixs://", 0) == 0;
        bool tls = any_https || !opts.cacert.empty();
        if ((!opts.cert.empty()) != (!opts.key.empty()))
            throw EtcdError("an etcd client certificate needs both --etcd-cert and --etcd-key", 0, false);
        if (!opts.cert.empty() && !tls)
            throw EtcdError("an etcd client certificate needs TLS (https:// endpoints or --etcd-cacert)", 0, false);
        std::shared_ptr<grpc::ChannelCredentials> creds;
        if (tls) {
            grpc::SslCredentialsOptions ssl;
            if (!opts.cacert.empty()) ssl.pem_root_certs = read_pem(opts.cacert, "CA certificate");
            if (!opts.cert.empty()) {
                ssl.pem_cert_chain = read_pem(opts.cert, "client certificate");
                ssl.pem_private_key = read_pem(opts.key, "client key");
            }
            creds = grpc::SslCredentials(ssl);
        } else {
            creds = grpc::InsecureChannelCredentials();
        }
        for (const auto& url : opts.endpoints) {
            std::string target = url;
            bool unix_socket = false;
            for (const char* scheme : {"https://", "http://", "unixs://", "unix://"})
                if (target.rfind(scheme, 0) == 0) {
                    std::string s = scheme;
                    if (tls != (s == "https://" || s == "unixs://"))
                        throw EtcdError("etcd endpoint " + url + ": mixed plain and TLS endpoints (or --etcd-cacert "
                                        "with a plain one)", 0, false);
                    unix_socket = s.rfind("unix", 0) == 0;
                    target = target.substr(s.size());
                    break;
                }
            if (!unix_socket && !target.empty() && target.back() == '/') target.pop_back();
            if (target.empty() || (!unix_socket && target.find('/') != std::string::npos) ||
                (unix_socket && target.front() != '/'))
                throw EtcdError("bad etcd endpoint '" + url +
                                    "' (want http(s)://HOST:PORT, or unix(s):///ABSOLUTE/PATH for a local socket)",
                                0, false);
            if (unix_socket) target = "unix:" + target;
            grpc::ChannelArguments args;
            // Over a local socket the server's certificate is checked for "localhost".
            if (unix_socket && tls) args.SetSslTargetNameOverride("localhost");
            args.SetMaxReceiveMessageSize(-1);  // a big rule set is one value
            args.SetMaxSendMessageSize(-1);
            // Notice a dead member in seconds, and reconnect to a restarted one
            // quickly (etcd allows pings every 5 s: --grpc-keepalive-min-time).
            args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
            args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
            args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
            // (GRPC_ARG_MIN_RECONNECT_BACKOFF_MS stays at its default: gRPC also
            // takes it as the deadline of one connection attempt.)
            args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
            Member m;
            m.url = url;
            m.channel = grpc::CreateCustomChannel(target, creds, args);
            m.kv = pb::KV::NewStub(m.channel);
            m.lease = pb::Lease::NewStub(m.channel);
            m.watch = pb::Watch::NewStub(m.channel);
            m.auth = pb::Auth::NewStub(m.channel);
            members.push_back(std::move(m));
        }
    }

    // Waits until `m`'s channel is connected. A channel left IDLE after a
    // failed attempt does not reconnect by itself in this gRPC (1.51): asking
    // for its state with try_to_connect starts an attempt.
    void connect(Member& m, std::chrono::milliseconds budget) {
        auto deadline = std::chrono::system_clock::now() + budget;
        for (;;) {
            auto st = m.channel->GetState(true);
            if (st == GRPC_CHANNEL_READY) return;
            if (!m.channel->WaitForStateChange(st, deadline))
                throw EtcdError("etcd " + m.url + ": cannot connect (" + std::to_string(budget.count()) + " ms)",
                                int(grpc::StatusCode::UNAVAILABLE), true);
        }
    }

    std::size_t current_index() const {
        std::lock_guard<std::mutex> lk(mu);
        return current;
    }
    void move_on(std::size_t from) {
        std::lock_guard<std::mutex> lk(mu);
        if (current == from) current = (current + 1) % members.size();
    }

    // A token for calls to `m`, authenticating first when there is none.
    std::string auth_token(Member& m, bool renew) {
        if (opts.user.empty()) return {};
        {
            std::lock_guard<std::mutex> lk(mu);
            if (!renew && !token.empty()) return token;
        }
        pb::AuthenticateRequest req;
        req.set_name(opts.user);
        req.set_password(opts.password);
        pb::AuthenticateResponse resp;
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + opts.timeout);
        grpc::Status s = m.auth->Authenticate(&ctx, req, &resp);
        if (!s.ok())
            throw EtcdError("etcd " + m.url + ": authenticate as " + opts.user + ": " + status_text(s),
                            int(s.error_code()), retryable_status(s));
        std::lock_guard<std::mutex> lk(mu);
        token = resp.token();
        return token;
    }

    std::unique_ptr<grpc::ClientContext> context(Member& m, bool renew_token, bool deadline) {
        auto ctx = std::make_unique<grpc::ClientContext>();
        if (deadline) ctx->set_deadline(std::chrono::system_clock::now() + opts.timeout);
        std::string t = auth_token(m, renew_token);
        if (!t.empty()) ctx->AddMetadata("token", t);
        return ctx;
    }

    // Runs one unary call on the current member, moving to the next member
    // when it cannot serve; each member is tried once.
    template <class F>
    void call(const std::string& what, F f) {
        std::string last;
        int last_code = 0;
        for (std::size_t attempt = 0; attempt < members.size(); ++attempt) {
            std::size_t idx = current_index();
            Member& m = members[idx];
            try {
                connect(m, std::min(opts.timeout, std::chrono::milliseconds(2000)));
                grpc::Status s;
                for (int round = 0; round < 2; ++round) {
                    auto ctx = context(m, round > 0, true);
                    s = f(m, *ctx);
                    if (s.ok() || !invalid_token(s) || opts.user.empty()) break;
                }
                if (s.ok()) return;
                last = "etcd " + m.url + ": " + what + ": " + status_text(s);
                last_code = int(s.error_code());
                if (!retryable_status(s)) throw EtcdError(last, last_code, false);
            } catch (const EtcdError& e) {
                if (!e.retryable()) throw;
                last = e.what();
                last_code = e.code();
            }
            move_on(idx);
        }
        throw EtcdError(members.size() > 1 ? last + " (and every other member)" : last, last_code, true);
    }
};

EtcdClient::EtcdClient(EtcdOptions opts) : opts_(opts), impl_(std::make_unique<Impl>(std::move(opts))) {}
EtcdClient::~EtcdClient() = default;

std::string EtcdClient::endpoint() const { return impl_->members[impl_->current_index()].url; }
void EtcdClient::rotate() { impl_->move_on(impl_->current_index()); }

std::optional<KeyValue> EtcdClient::get(const std::string& key) {
    pb::RangeRequest req;
    req.set_key(key);
    pb::RangeResponse resp;
    impl_->call("get " + key, [&](Member& m, grpc::ClientContext& ctx) { return m.kv->Range(&ctx, req, &resp); });
    if (resp.kvs_size() == 0) return std::nullopt;
    return from_pb(resp.kvs(0));
}

RangeResult EtcdClient::get_prefix(const std::string& prefix, std::int64_t revision, bool keys_only) {
    pb::RangeRequest req;
    req.set_keys_only(keys_only);
    req.set_key(prefix);
    req.set_range_end(prefix_end(prefix));
    req.set_revision(revision);
    pb::RangeResponse resp;
    impl_->call("get " + prefix + "*", [&](Member& m, grpc::ClientContext& ctx) {
        return m.kv->Range(&ctx, req, &resp);
    });
    RangeResult r;
    r.revision = resp.header().revision();
    for (const auto& kv : resp.kvs()) r.kvs.push_back(from_pb(kv));
    return r;
}

std::int64_t EtcdClient::put(const std::string& key, const std::string& value, std::int64_t lease) {
    pb::PutRequest req;
    req.set_key(key);
    req.set_value(value);
    req.set_lease(lease);
    pb::PutResponse resp;
    impl_->call("put " + key, [&](Member& m, grpc::ClientContext& ctx) { return m.kv->Put(&ctx, req, &resp); });
    return resp.header().revision();
}

TxnResult EtcdClient::txn(const std::vector<Compare>& when, const std::vector<Op>& then,
                          const std::vector<Op>& otherwise) {
    pb::TxnRequest req;
    for (const auto& c : when) {
        auto* pc = req.add_compare();
        pc->set_key(c.key);
        pc->set_result(pb::Compare::EQUAL);
        switch (c.target) {
        case Compare::Target::version:
            pc->set_target(pb::Compare::VERSION);
            pc->set_version(c.number);
            break;
        case Compare::Target::create_revision:
            pc->set_target(pb::Compare::CREATE);
            pc->set_create_revision(c.number);
            break;
        case Compare::Target::mod_revision:
            pc->set_target(pb::Compare::MOD);
            pc->set_mod_revision(c.number);
            break;
        case Compare::Target::value:
            pc->set_target(pb::Compare::VALUE);
            pc->set_value(c.value);
            break;
        }
    }
    for (const auto& op : then) to_pb(op, req.add_success());
    for (const auto& op : otherwise) to_pb(op, req.add_failure());
    pb::TxnResponse resp;
    impl_->call("txn", [&](Member& m, grpc::ClientContext& ctx) { return m.kv->Txn(&ctx, req, &resp); });
    return {resp.succeeded(), resp.header().revision()};
}

std::int64_t EtcdClient::lease_grant(std::int64_t ttl_seconds) {
    pb::LeaseGrantRequest req;
    req.set_ttl(ttl_seconds);
    pb::LeaseGrantResponse resp;
    impl_->call("lease grant", [&](Member& m, grpc::ClientContext& ctx) {
        return m.lease->LeaseGrant(&ctx, req, &resp);
    });
    if (!resp.error().empty()) throw EtcdError("etcd: lease grant: " + resp.error(), 0, true);
    return resp.id();
}

void EtcdClient::lease_revoke(std::int64_t id) {
    pb::LeaseRevokeRequest req;
    req.set_id(id);
    pb::LeaseRevokeResponse resp;
    impl_->call("lease revoke", [&](Member& m, grpc::ClientContext& ctx) {
        return m.lease->LeaseRevoke(&ctx, req, &resp);
    });
}

// ---- Watch ------------------------------------------------------------------

struct WatchStream::Impl {
    std::unique_ptr<Bidi<pb::WatchRequest, pb::WatchResponse>> bidi;
    std::deque<WatchResponse> pending;  // answers that arrived while waiting for "created"
    std::chrono::milliseconds timeout;
};

namespace {
WatchResponse from_pb(const pb::WatchResponse& r) {
    WatchResponse w;
    w.watch_id = r.watch_id();
    w.revision = r.header().revision();
    w.canceled = r.canceled();
    w.compact_revision = r.compact_revision();
    w.cancel_reason = r.cancel_reason();
    for (const auto& e : r.events())
        w.events.push_back({e.type() == mvccpb::Event::DELETE, fleet::from_pb(e.kv())});
    return w;
}
}  // namespace

WatchStream::WatchStream(EtcdClient& client) : impl_(std::make_unique<Impl>()) {
    auto& ci = client.impl();
    std::size_t idx = ci.current_index();
    Member& m = ci.members[idx];
    endpoint_ = m.url;
    impl_->timeout = client.options().timeout;
    ci.connect(m, impl_->timeout);
    auto ctx = ci.context(m, false, false);
    // Ask etcd to end the stream when this member loses its leader: a
    // partitioned member would otherwise keep an idle stream open forever.
    ctx->AddMetadata("hasleader", "true");
    impl_->bidi = std::make_unique<Bidi<pb::WatchRequest, pb::WatchResponse>>(
        std::move(ctx), [&](grpc::ClientContext* c) { return m.watch->Watch(c); }, "etcd " + m.url + ": watch");
}

WatchStream::~WatchStream() = default;

std::int64_t WatchStream::watch_prefix(const std::string& prefix, std::int64_t start_revision,
                                       bool progress_notify) {
    pb::WatchRequest req;
    auto* c = req.mutable_create_request();
    c->set_key(prefix);
    c->set_range_end(prefix_end(prefix));
    c->set_start_revision(start_revision);
    c->set_progress_notify(progress_notify);
    impl_->bidi->write(req);
    auto deadline = std::chrono::steady_clock::now() + impl_->timeout;
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) throw EtcdError("etcd " + endpoint_ + ": watch " + prefix + ": no answer", 4, true);
        auto r = impl_->bidi->read(left);
        if (!r) continue;
        if (r->created()) {
            if (r->canceled()) {
                bool token = r->cancel_reason().find("auth token") != std::string::npos;
                throw EtcdError("etcd " + endpoint_ + ": watch " + prefix + ": " + r->cancel_reason(), 0, token);
            }
            return r->watch_id();
        }
        impl_->pending.push_back(from_pb(*r));
    }
}

void WatchStream::cancel(std::int64_t watch_id) {
    pb::WatchRequest req;
    req.mutable_cancel_request()->set_watch_id(watch_id);
    impl_->bidi->write(req);
}

void WatchStream::request_progress() {
    pb::WatchRequest req;
    req.mutable_progress_request();
    impl_->bidi->write(req);
}

std::optional<WatchResponse> WatchStream::next(std::chrono::milliseconds timeout) {
    if (!impl_->pending.empty()) {
        WatchResponse w = std::move(impl_->pending.front());
        impl_->pending.pop_front();
        return w;
    }
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() < 0) return std::nullopt;
        auto r = impl_->bidi->read(left);
        if (!r) return std::nullopt;
        if (r->created() && !r->canceled()) continue;  // a watch created on this stream earlier
        return from_pb(*r);
    }
}

// ---- LeaseKeepAlive ---------------------------------------------------------

struct LeaseKeepAlive::Impl {
    std::unique_ptr<Bidi<pb::LeaseKeepAliveRequest, pb::LeaseKeepAliveResponse>> bidi;
};

LeaseKeepAlive::LeaseKeepAlive(EtcdClient& client, std::int64_t lease_id)
    : id_(lease_id), impl_(std::make_unique<Impl>()) {
    auto& ci = client.impl();
    Member& m = ci.members[ci.current_index()];
    ci.connect(m, client.options().timeout);
    impl_->bidi = std::make_unique<Bidi<pb::LeaseKeepAliveRequest, pb::LeaseKeepAliveResponse>>(
        ci.context(m, false, false), [&](grpc::ClientContext* c) { return m.lease->LeaseKeepAlive(c); },
        "etcd " + m.url + ": lease keep-alive");
}

LeaseKeepAlive::~LeaseKeepAlive() = default;

std::int64_t LeaseKeepAlive::refresh(std::chrono::milliseconds timeout) {
    pb::LeaseKeepAliveRequest req;
    req.set_id(id_);
    impl_->bidi->write(req);
    auto r = impl_->bidi->read(timeout);
    if (!r) throw EtcdError("etcd: lease keep-alive: no answer in " + std::to_string(timeout.count()) + " ms", 4, true);
    return r->ttl();
}

}  // namespace vaultwall::fleet
