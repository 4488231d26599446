#include "progress.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <vector>

namespace vaultwall::ctl {

using daemon::Json;

// A reload taking more than a second shows its phases on a terminal (stderr),
// those already done first.
daemon::Progress reload_progress_printer() {
    if (!isatty(2)) return {};
    struct State {
        std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
        std::vector<Json> held;
        bool showing = false;
    };
    auto st = std::make_shared<State>();
    auto show = [](const Json& p) {
        std::string line = "  " + p.value("phase", std::string());
        if (p.contains("dev")) line += " " + p["dev"].get<std::string>();
        if (p.value("state", std::string()) == "started") {
            line += " ...";
        } else {
            for (const char* k : {"rules", "interfaces"})
                if (p.contains(k)) line += " " + daemon::dump_json(p[k]) + " " + k;
            char ms[32];
            std::snprintf(ms, sizeof(ms), " %.1f ms", p.value("ms", 0.0));
            line += ms;
        }
        std::fprintf(stderr, "%s\n", line.c_str());
    };
    return [st, show](const Json& p) {
        if (!st->showing) {
            st->held.push_back(p);
            if (std::chrono::steady_clock::now() - st->t0 < std::chrono::seconds(1)) return;
            st->showing = true;
            std::fprintf(stderr, "reloading (more than a second):\n");
            for (const auto& h : st->held)
                if (h.value("state", std::string()) == "done") show(h);
            if (p.value("state", std::string()) == "started") show(p);
            return;
        }
        show(p);
    };
}

}  // namespace vaultwall::ctl
