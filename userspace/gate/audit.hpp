// JSON-lines audit log: one line per gate decision (SPEC §5).
#pragma once

#include <cstdio>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

namespace vaultwall::gate {

struct AuditRecord {
    std::string client;     // "192.0.2.9"
    std::uint32_t vni = 0;
    std::string vault;
    std::string operation;
    std::string caller;
    std::string decision;   // "allow" | "deny"
    std::string reason;
    unsigned status = 0;
    std::string method, path;
};

class AuditLog {
public:
    AuditLog() = default;
    ~AuditLog();
    AuditLog(const AuditLog&) = delete;
    AuditLog& operator=(const AuditLog&) = delete;

    // (Re)opens `path` for appending when it differs from the open one; ""
    // closes. Returns false (and keeps logging nowhere) when it cannot open.
    bool open(const std::string& path);
    void write(const AuditRecord& r);
    static nlohmann::json to_json(const AuditRecord& r);

private:
    std::mutex mu_;
    std::string path_;
    std::FILE* f_ = nullptr;
};

}  // namespace vaultwall::gate
