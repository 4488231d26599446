#include "fleet/agent.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <spdlog/spdlog.h>

namespace vaultwall::fleet {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

namespace {

std::int64_t unix_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string cache_path(const std::string& dir, const std::string& ruleset) { return dir + "/" + ruleset + ".json"; }

}  // namespace

std::optional<Revision> load_cached_revision(const std::string& state_dir, const std::string& ruleset) {
    if (state_dir.empty()) return std::nullopt;
    std::string path = cache_path(state_dir, ruleset);
    std::ifstream in(path, std::ios::binary);
    if (!in) return std::nullopt;
    std::ostringstream s;
    s << in.rdbuf();
    Json j = Json::parse(s.str(), nullptr, false);
    try {
        if (!j.is_object()) throw std::runtime_error("not JSON");
        Revision r;
        r.revision = j.at("revision").get<std::int64_t>();
        r.bundle.rule_file = j.at("rule_file").get<std::string>();
        for (const auto& [k, v] : j.at("files").items()) r.bundle.files.emplace(k, v.get<std::string>());
        if (r.revision <= 0 || !r.bundle.files.count(r.bundle.rule_file)) throw std::runtime_error("incomplete");
        return r;
    } catch (const std::exception& e) {
        throw RevisionError("the cached rule set " + path + " is unreadable (" + e.what() +
                            "): remove it to start from etcd");
    }
}

Agent::Agent(EtcdOptions etcd, AgentOptions opts, ApplyFn apply)
    : etcd_(std::move(etcd)), opts_(std::move(opts)), apply_(std::move(apply)) {
    check_name("rule set", opts_.ruleset);
    check_name("host id", opts_.host_id);
    record_.host_id = opts_.host_id;
    record_.pid = getpid();
}

Agent::~Agent() { stop(); }

std::int64_t Agent::revision() const {
    std::lock_guard<std::mutex> lk(mu_);
    return record_.revision;
}

Json Agent::status() const {
    std::lock_guard<std::mutex> lk(mu_);
    return Json{{"ruleset", opts_.ruleset},
                {"host", opts_.host_id},
                {"revision", record_.revision},
                {"seen_revision", record_.seen_revision},
                {"generation", record_.generation},
                {"error", record_.error},
                {"failed_revision", record_.failed_revision},
                {"etcd", {{"connected", connected_}, {"endpoint", etcd_.endpoint()}, {"error", etcd_error_}}}};
}

void Agent::adopt(const Revision& rev, std::uint64_t generation) {
    std::lock_guard<std::mutex> lk(mu_);
    record_.revision = rev.revision;
    record_.generation = generation;
    record_.seen_revision = rev.revision;
    seen_ = rev.revision;
    dirty_ = true;
}

bool Agent::initial_load(std::chrono::milliseconds budget) {
    auto end = std::chrono::steady_clock::now() + budget;
    for (;;) {
        try {
            fresh_read();
            return true;
        } catch (const EtcdError& e) {
            {
                std::lock_guard<std::mutex> lk(mu_);
                etcd_error_ = e.what();
            }
            if (std::chrono::steady_clock::now() >= end) {
                spdlog::warn("fleet: cannot read rule set {} from etcd yet: {}", opts_.ruleset, e.what());
                return false;
            }
            etcd_.rotate();
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
        }
    }
}

void Agent::start() {
    stop_ = false;
    watcher_ = std::thread([this] { watch_loop(); });
    host_ = std::thread([this] { host_loop(); });
}

void Agent::stop() {
    if (stop_.exchange(true)) return;
    cv_.notify_all();
    if (watcher_.joinable()) watcher_.join();
    if (host_.joinable()) host_.join();
}

bool Agent::sleep_for(std::chrono::milliseconds d) {
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait_for(lk, d, [&] { return stop_.load(); });
    return !stop_;
}

void Agent::mark_dirty() {
    std::lock_guard<std::mutex> lk(mu_);
    dirty_ = true;
    cv_.notify_all();
}

// A read of the whole rule set at the latest revision: at startup, and when
// the history the watch needs was compacted.
void Agent::fresh_read() {
    RangeResult r = etcd_.get_prefix(ruleset_prefix(opts_.ruleset));
    std::map<std::string, KeyValue> keys;
    for (auto& kv : r.kvs) keys.emplace(kv.key, std::move(kv));
    keys_ = std::move(keys);
    std::optional<Revision> rev;
    std::string err;
    try {
        rev = decode_revision(opts_.ruleset, keys_);
    } catch (const RevisionError& e) {
        err = e.what();
    }
    auto m = keys_.find(manifest_key(opts_.ruleset));
    std::int64_t at = m == keys_.end() ? 0 : m->second.mod_revision;
    seen_ = r.revision;
    {
        std::lock_guard<std::mutex> lk(mu_);
        record_.seen_revision = seen_;
        connected_ = true;
        etcd_error_.clear();
    }
    if (at != 0 && at != revision()) apply(rev, at, err);
    mark_dirty();
}

void Agent::apply(const std::optional<Revision>& rev, std::int64_t at, const std::string& decode_error) {
    ApplyOutcome out;
    if (!decode_error.empty()) {
        out.error = decode_error;
    } else if (!rev) {
        out.error = "rule set " + opts_.ruleset + " was deleted from etcd at revision " + std::to_string(at) +
                    "; keeping the last rule set";
    } else {
        try {
            out = apply_(*rev);
        } catch (const std::exception& e) {
            out = {false, 0, e.what()};
        }
    }
    if (out.ok) {
        spdlog::info("fleet: rule set {} revision {} applied (generation {})", opts_.ruleset, at, out.generation);
        save_cache(*rev);
    } else {
        spdlog::error("fleet: rule set {} revision {} not applied, keeping revision {}: {}", opts_.ruleset, at,
                      revision(), out.error);
    }
    std::lock_guard<std::mutex> lk(mu_);
    if (out.ok) {
        record_.revision = at;
        record_.generation = out.generation;
        record_.error.clear();
        record_.failed_revision = 0;
    } else {
        record_.error = out.error.substr(0, out.error.find('\n'));
        record_.failed_revision = at;
    }
    record_.applied_unix_ms = unix_ms();
    dirty_ = true;
    cv_.notify_all();
}

// The events of one response, grouped by revision (etcd never splits a
// revision across responses unless asked to fragment, which we do not).
void Agent::on_events(const std::vector<WatchEvent>& events) {
    const std::string manifest = manifest_key(opts_.ruleset);
    std::size_t i = 0;
    while (i < events.size()) {
        std::int64_t rev = events[i].kv.mod_revision;
        bool touches_manifest = false;
        for (; i < events.size() && events[i].kv.mod_revision == rev; ++i) {
            const auto& e = events[i];
            touches_manifest |= e.kv.key == manifest;
            if (e.deleted)
                keys_.erase(e.kv.key);
            else
                keys_[e.kv.key] = e.kv;
        }
        if (rev <= seen_) continue;  // already seen (cannot happen: the watch starts after seen_)
        seen_ = rev;
        if (!touches_manifest) continue;
        std::optional<Revision> r;
        std::string err;
        try {
            r = decode_revision(opts_.ruleset, keys_);
        } catch (const RevisionError& e) {
            err = e.what();
        }
        apply(r, rev, err);
    }
    std::lock_guard<std::mutex> lk(mu_);
    record_.seen_revision = seen_;
}

void Agent::watch_loop() {
    auto backoff = std::chrono::milliseconds(200);
    while (!stop_) {
        try {
            if (need_fresh_) {
                fresh_read();
                need_fresh_ = false;
            }
            WatchStream ws(etcd_);
            ws.watch_prefix(ruleset_prefix(opts_.ruleset), seen_ + 1, true);
            {
                std::lock_guard<std::mutex> lk(mu_);
                if (!connected_) spdlog::info("fleet: watching rule set {} on {} from revision {}", opts_.ruleset,
                                              ws.endpoint(), seen_ + 1);
                connected_ = true;
                etcd_error_.clear();
            }
            backoff = std::chrono::milliseconds(200);
            auto last_answer = std::chrono::steady_clock::now();
            std::optional<std::chrono::steady_clock::time_point> asked;
            while (!stop_) {
                auto r = ws.next(std::chrono::milliseconds(200));
                auto now = std::chrono::steady_clock::now();
                if (!r) {
                    if (!asked && now - last_answer > opts_.progress_interval) {
                        ws.request_progress();
                        asked = now;
                    } else if (asked && now - *asked > opts_.progress_interval) {
                        throw EtcdError("etcd " + ws.endpoint() + ": the watch stopped answering progress requests",
                                        4, true);
                    }
                    continue;
                }
                last_answer = now;
                asked.reset();
                if (r->compact_revision > 0) {
                    spdlog::warn("fleet: etcd compacted past revision {} (now {}): reading rule set {} afresh",
                                 seen_ + 1, r->compact_revision, opts_.ruleset);
                    need_fresh_ = true;
                    break;
                }
                if (r->canceled)
                    throw EtcdError("etcd " + ws.endpoint() + ": watch canceled: " + r->cancel_reason, 0, true);
                if (!r->events.empty()) {
                    on_events(r->events);
                } else if (r->revision > seen_) {
                    seen_ = r->revision;  // progress: nothing of ours changed up to here
                    std::lock_guard<std::mutex> lk(mu_);
                    record_.seen_revision = seen_;
                }
            }
        } catch (const EtcdError& e) {
            {
                std::lock_guard<std::mutex> lk(mu_);
                if (connected_ || etcd_error_ != e.what())
                    spdlog::warn("fleet: {} (keeping revision {}; retrying)", e.what(), record_.revision);
                connected_ = false;
                etcd_error_ = e.what();
            }
            etcd_.rotate();
            if (!sleep_for(backoff)) break;
            backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
        }
    }
}

// Keeps /vaultwall/hosts/NAME/ID on a lease of its own, rewritten whenever the
// record changes and kept alive every third of its TTL.
void Agent::host_loop() {
    const std::string key = host_key(opts_.ruleset, opts_.host_id);
    const auto period = std::chrono::milliseconds(opts_.lease_ttl_s * 1000 / 3);
    auto backoff = std::chrono::milliseconds(200);
    std::int64_t lease = 0;
    while (!stop_) {
        try {
            lease = etcd_.lease_grant(opts_.lease_ttl_s);
            LeaseKeepAlive ka(etcd_, lease);
            mark_dirty();
            auto next_refresh = std::chrono::steady_clock::now() + period;
            while (!stop_) {
                std::string value;
                {
                    std::unique_lock<std::mutex> lk(mu_);
                    cv_.wait_until(lk, next_refresh, [&] { return dirty_ || stop_.load(); });
                    if (stop_) break;
                    if (dirty_) {
                        dirty_ = false;
                        value = encode_host(record_);
                    }
                }
                if (!value.empty()) {
                    etcd_.put(key, value, lease);
                    continue;
                }
                if (ka.refresh(opts_.progress_interval) == 0) {
                    spdlog::warn("fleet: lease of host key {} expired; registering again", key);
                    break;
                }
                next_refresh = std::chrono::steady_clock::now() + period;
            }
            backoff = std::chrono::milliseconds(200);
        } catch (const EtcdError& e) {
            {
                std::lock_guard<std::mutex> lk(mu_);
                dirty_ = true;  // write the record again once etcd is back
            }
            spdlog::debug("fleet: host key {}: {}", key, e.what());
            if (!sleep_for(backoff)) break;
            backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
        }
    }
    if (lease != 0) {
        try {
            etcd_.lease_revoke(lease);  // leave fleet status now, not a TTL later
        } catch (const EtcdError&) {
        }
    }
}

void Agent::save_cache(const Revision& rev) {
    if (opts_.state_dir.empty()) return;
    std::string path = cache_path(opts_.state_dir, opts_.ruleset);
    try {
        Json files = Json::object();
        for (const auto& [k, v] : rev.bundle.files) files[k] = v;
        std::string text =
            Json{{"revision", rev.revision}, {"rule_file", rev.bundle.rule_file}, {"files", files}}.dump();
        fs::create_directories(opts_.state_dir);
        std::string tmp = path + ".tmp";
        int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0) throw std::runtime_error(std::string("open: ") + std::strerror(errno));
        bool ok = ::write(fd, text.data(), text.size()) == ssize_t(text.size()) && ::fsync(fd) == 0;
        ::close(fd);
        if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0)
            throw std::runtime_error(std::string("write: ") + std::strerror(errno));
    } catch (const std::exception& e) {
        // Not fatal: the revision is enforced; a restart reads etcd instead.
        spdlog::warn("fleet: cannot cache revision {} in {}: {}", rev.revision, path, e.what());
    }
}

}  // namespace vaultwall::fleet
