// JSON-lines audit log: one line per gate decision (SPEC §5).
//
// The I/O threads format each line directly (no JSON tree) and append it to a
// shared buffer under a short lock; a flusher thread writes the buffer out in
// batches: when 64 KiB are buffered, at least every 100 ms, and always on
// flush(), open() (before switching files) and destruction. Lines are appended
// whole, so they are never interleaved, and none is dropped: beyond 8 MiB
// buffered (a stalled disk) writers wait for the flusher instead.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include <nlohmann/json.hpp>

namespace vaultwall::gate {

// Views only: an AuditRecord lives for the duration of one write().
struct AuditRecord {
    std::string_view client;     // "192.0.2.9"
    std::uint32_t vni = 0;
    std::string_view vault;
    std::string_view operation;
    std::string_view caller;
    std::string_view decision;   // "allow" | "deny" | "audit" (allowed only by audit mode, SPEC §9)
    std::string_view reason;
    unsigned status = 0;
    std::string_view method, path;
};

class AuditLog {
public:
    static constexpr std::size_t kFlushBytes = 64 * 1024;
    static constexpr std::chrono::milliseconds kFlushInterval{100};
    static constexpr std::size_t kMaxPendingBytes = 8 * 1024 * 1024;

    AuditLog();
    ~AuditLog();  // flushes
    AuditLog(const AuditLog&) = delete;
    AuditLog& operator=(const AuditLog&) = delete;

    // (Re)opens `path` for appending when it differs from the open one; ""
    // closes. Lines buffered so far go to the previous file first. Returns
    // false (and keeps logging nowhere) when it cannot open.
    bool open(const std::string& path);
    void write(const AuditRecord& r);
    // Writes every line buffered so far before returning.
    void flush();

    // One line, "\n"-terminated: the keys in the order of the former
    // nlohmann::json dump (sorted), strings escaped as it did (invalid UTF-8
    // replaced by U+FFFD).
    static void append_line(std::string& out, const AuditRecord& r, std::chrono::system_clock::time_point now);
    static nlohmann::json to_json(const AuditRecord& r);

private:
    void run();
    void drain();  // caller holds io_mu_: writes out pending_

    std::mutex io_mu_;  // fd_, path_ and the order of writes; taken before mu_
    int fd_ = -1;
    std::string path_;
    std::string writing_;  // the batch being written (io_mu_)

    std::atomic<bool> enabled_{false};  // a file is open: lines are worth formatting
    std::mutex mu_;  // pending_, stop_, kicked_
    std::condition_variable wake_, room_;
    std::string pending_;
    bool stop_ = false, kicked_ = false;
    std::thread flusher_;
};

}  // namespace vaultwall::gate
