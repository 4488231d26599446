// The phases of one control-plane change (a reload, a rule edit), timed: for
// the answer ("phases") and, as they happen, for a client watching a long one.
#pragma once

#include <chrono>
#include <string>
#include <type_traits>

#include "daemon/control.hpp"

namespace vaultwall::daemon {

class PhaseLog {
public:
    explicit PhaseLog(const Progress& progress) : progress_(progress) {}

    // Runs fn() as phase `name` (its answer entry carries `extra`'s fields)
    // and records its time; an exception leaves `current()` naming it.
    template <class F>
    auto run(const std::string& name, Json extra, F fn) {
        if (!extra.is_object()) extra = Json::object();  // `{}` is null
        const auto t0 = std::chrono::steady_clock::now();
        current_ = name;
        if (progress_) {
            Json p = {{"phase", name}, {"state", "started"}};
            p.update(extra);
            progress_(p);
        }
        auto done = [&] {
            current_.clear();
            Json entry = {{"phase", name}};
            entry.update(extra);
            const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
            entry["ms"] = static_cast<double>(static_cast<long long>(ms * 1000 + 0.5)) / 1000;
            phases_.push_back(entry);
            if (progress_) {
                Json p = entry;
                p["state"] = "done";
                progress_(p);
            }
        };
        if constexpr (std::is_void_v<decltype(fn())>) {
            fn();
            done();
        } else {
            auto r = fn();
            done();
            return r;
        }
    }
    const Json& phases() const { return phases_; }
    const std::string& current() const { return current_; }  // the phase running (or failed)

private:
    const Progress& progress_;
    std::string current_;
    Json phases_ = Json::array();
};

}  // namespace vaultwall::daemon
