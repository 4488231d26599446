#include "gate/audit.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <ctime>

#include <spdlog/spdlog.h>

#include "gate/json_text.hpp"

namespace vaultwall::gate {
namespace {

// A JSON string exactly as json_text() (nlohmann's dump with replace)
// writes it. Written by hand because building an nlohmann::json object and
// dumping it for every request was ~8% of the gate's CPU in the profile
// (docs/benchmarks.md, "Gate"), and nlohmann has no public function that
// escapes one string. Pure ASCII (nearly every field) is escaped here; any
// byte >= 0x80 goes through nlohmann for its UTF-8 validation/replacement.
// tests/gate/test_audit.cpp checks the bytes against nlohmann's.
void append_string(std::string& out, std::string_view s) {
    for (unsigned char c : s)
        if (c >= 0x80) {
            out += json_text(std::string(s));
            return;
        }
    out += '"';
    std::size_t run = 0;  // start of the pending run of plain characters
    for (std::size_t i = 0; i < s.size(); ++i) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        out.append(s.data() + run, i - run);
        run = i + 1;
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\b': out += "\\b"; break;
        case '\t': out += "\\t"; break;
        case '\n': out += "\\n"; break;
        case '\f': out += "\\f"; break;
        case '\r': out += "\\r"; break;
        default: {
            static const char hex[] = "0123456789abcdef";
            char b[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            out.append(b, sizeof b);
        }
        }
    }
    out.append(s.data() + run, s.size() - run);
    out += '"';
}

void append_uint(std::string& out, std::uint64_t v) {
    char b[24];
    auto r = std::to_chars(b, b + sizeof b, v);
    out.append(b, r.ptr);
}

// "2026-11-29T20:54:37.123Z"; gmtime_r once per second and thread.
void append_time(std::string& out, std::chrono::system_clock::time_point now) {
    using namespace std::chrono;
    auto ms_total = duration_cast<milliseconds>(now.time_since_epoch()).count();
    std::time_t t = static_cast<std::time_t>(ms_total / 1000);
    int ms = static_cast<int>(ms_total % 1000);
    thread_local std::time_t cached_sec = -1;
    thread_local char cached[32];
    thread_local int cached_len = 0;
    if (t != cached_sec) {
        std::tm tm{};
        gmtime_r(&t, &tm);
        cached_len = std::snprintf(cached, sizeof cached, "%04d-%02d-%02dT%02d:%02d:%02d.", tm.tm_year + 1900,
                                   tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        cached_sec = t;
    }
    out.append(cached, cached_len);
    char b[4] = {char('0' + ms / 100), char('0' + ms / 10 % 10), char('0' + ms % 10), 'Z'};
    out.append(b, sizeof b);
}

void write_all(int fd, const std::string& data) {
    const char* p = data.data();
    std::size_t left = data.size();
    while (left > 0) {
        ssize_t n = ::write(fd, p, left);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            spdlog::error("gate: cannot write the audit log: {}", n < 0 ? std::strerror(errno) : "short write");
            return;
        }
        p += n;
        left -= static_cast<std::size_t>(n);
    }
}

}  // namespace

AuditLog::AuditLog() { flusher_ = std::thread([this] { run(); }); }

AuditLog::~AuditLog() {
    {
        std::lock_guard lk(mu_);
        stop_ = true;
    }
    wake_.notify_all();
    room_.notify_all();
    flusher_.join();
    std::lock_guard io(io_mu_);
    drain();
    if (fd_ >= 0) ::close(fd_);
}

bool AuditLog::open(const std::string& path) {
    std::lock_guard io(io_mu_);
    if (path == path_ && (fd_ >= 0 || path.empty())) return true;
    drain();  // what was logged so far belongs to the previous file
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    enabled_ = false;
    path_ = path;
    if (path.empty()) return true;
    fd_ = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
    enabled_ = fd_ >= 0;
    return fd_ >= 0;
}

void AuditLog::append_line(std::string& out, const AuditRecord& r, std::chrono::system_clock::time_point now) {
    // The keys in sorted order, as the std::map of nlohmann::json had them.
    auto str = [&out](const char* key, std::string_view v) {
        out += key;
        append_string(out, v);
    };
    str("{\"caller\":", r.caller);
    str(",\"client\":", r.client);
    str(",\"decision\":", r.decision);
    str(",\"method\":", r.method);
    str(",\"operation\":", r.operation);
    str(",\"path\":", r.path);
    str(",\"reason\":", r.reason);
    out += ",\"status\":";
    append_uint(out, r.status);
    out += ",\"time\":\"";
    append_time(out, now);
    out += '"';
    str(",\"vault\":", r.vault);
    out += ",\"vni\":";
    append_uint(out, r.vni);
    out += "}\n";
}

nlohmann::json AuditLog::to_json(const AuditRecord& r) {
    std::string line;
    append_line(line, r, std::chrono::system_clock::now());
    return nlohmann::json::parse(line);
}

void AuditLog::write(const AuditRecord& r) {
    if (!enabled_.load(std::memory_order_relaxed)) return;
    thread_local std::string line;
    line.clear();
    append_line(line, r, std::chrono::system_clock::now());
    std::unique_lock lk(mu_);
    // A stalled disk: wait for the flusher rather than drop or grow without bound.
    room_.wait(lk, [this] { return pending_.size() < kMaxPendingBytes || stop_; });
    pending_ += line;
    if (pending_.size() >= kFlushBytes && !kicked_) {
        kicked_ = true;
        wake_.notify_one();
    }
}

void AuditLog::flush() {
    std::lock_guard io(io_mu_);
    drain();
}

void AuditLog::drain() {
    {
        std::lock_guard lk(mu_);
        writing_.swap(pending_);
        kicked_ = false;
    }
    room_.notify_all();
    if (writing_.empty()) return;
    if (fd_ >= 0) write_all(fd_, writing_);
    writing_.clear();
    if (writing_.capacity() > 4 * kFlushBytes) std::string().swap(writing_);
}

void AuditLog::run() {
    std::unique_lock lk(mu_);
    while (!stop_) {
        wake_.wait_for(lk, kFlushInterval, [this] { return stop_ || kicked_; });
        if (pending_.empty()) {
            kicked_ = false;
            continue;
        }
        lk.unlock();
        flush();
        lk.lock();
    }
}

}  // namespace vaultwall::gate
