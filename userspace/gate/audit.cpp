#include "gate/audit.hpp"

#include <chrono>
#include <ctime>

namespace vaultwall::gate {

AuditLog::~AuditLog() {
    if (f_) std::fclose(f_);
}

bool AuditLog::open(const std::string& path) {
    std::lock_guard lock(mu_);
    if (path == path_ && (f_ || path.empty())) return true;
    if (f_) std::fclose(f_);
    f_ = nullptr;
    path_ = path;
    if (path.empty()) return true;
    f_ = std::fopen(path.c_str(), "a");
    return f_ != nullptr;
}

nlohmann::json AuditLog::to_json(const AuditRecord& r) {
    using namespace std::chrono;
    auto now = system_clock::now();
    std::time_t t = system_clock::to_time_t(now);
    auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[96];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)ms);
    nlohmann::json j;
    j["time"] = buf;
    j["client"] = r.client;
    j["vni"] = r.vni;
    j["vault"] = r.vault;
    j["operation"] = r.operation;
    j["caller"] = r.caller;
    j["decision"] = r.decision;
    j["reason"] = r.reason;
    j["status"] = r.status;
    j["method"] = r.method;
    j["path"] = r.path;
    return j;
}

void AuditLog::write(const AuditRecord& r) {
    std::string line = to_json(r).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    std::lock_guard lock(mu_);
    if (!f_) return;
    std::fwrite(line.data(), 1, line.size(), f_);
    std::fflush(f_);
}

}  // namespace vaultwall::gate
