// vaultwallctl explain --frame HEX | --pcap FILE: any frame through the live
// kernel program and the live reference, side by side (SPEC §9).
#include <cstdio>
#include <iostream>

#include "commands.hpp"
#include "daemon/explain_frames.hpp"
#include "pcap.hpp"

namespace vaultwall::ctl {

using daemon::Json;

std::string opt_str(const Json& j) { return j.is_null() ? "-" : j.is_string() ? j.get<std::string>() : daemon::dump_json(j); }

Json ask(const std::string& socket, const Json& req) {
    Json r = daemon::control_request(socket, req);
    if (!r.value("ok", false)) throw std::runtime_error(r.value("error", std::string("request failed")));
    return r;
}

std::vector<Json> explain_live(const std::string& socket, const std::string& dev,
                               const std::vector<std::vector<std::uint8_t>>& frames) {
    // The control protocol takes lines up to 1 MiB: hex doubles each frame.
    constexpr std::size_t kBatchBytes = 256 * 1024;
    std::vector<Json> out;
    for (std::size_t i = 0; i < frames.size();) {
        Json req = {{"cmd", "explain"}, {"frames", Json::array()}};
        if (!dev.empty()) req["dev"] = dev;
        std::size_t bytes = 0;
        for (; i < frames.size() && (bytes == 0 || bytes + frames[i].size() <= kBatchBytes); ++i) {
            req["frames"].push_back(daemon::to_hex(frames[i]));
            bytes += frames[i].size();
        }
        Json answer = ask(socket, req);
        for (auto& r : answer["results"]) out.push_back(std::move(r));
    }
    return out;
}

std::string flow_text(const Json& f) {
    if (f.is_null()) return "(no IP header)";
    // An IPv6 address before a port is bracketed, as in [2001:db8::10]:443.
    auto ep = [&](const char* a, const char* p) {
        const std::string addr = f[a].get<std::string>();
        if (f[p].is_null()) return addr;
        return (addr.find(':') != std::string::npos ? "[" + addr + "]" : addr) + ":" + f[p].dump();
    };
    return opt_str(f["protocol"]) + " " + ep("src", "sport") + " -> " + ep("dst", "dport") +
           (f.value("vxlan", false) ? " (inner, VXLAN)" : "");
}

int explain_frames(const Globals& g, const std::vector<std::string>& hex_frames, const std::string& pcap,
                   const std::string& dev, bool json) {
    std::vector<std::vector<std::uint8_t>> frames;
    std::vector<CapturedFrame> captured;
    std::size_t cut = 0;
    if (!pcap.empty()) {
        captured = read_capture(pcap);
        for (const auto& c : captured) {
            frames.push_back(c.data);
            if (c.wire_len > c.data.size()) ++cut;
        }
    } else {
        for (const auto& h : hex_frames) frames.push_back(daemon::parse_hex_frame(h));
    }
    auto results = explain_live(g.socket, dev, frames);
    std::size_t disagree = 0, errors = 0;
    for (auto& r : results) {
        if (r.contains("error")) ++errors;
        else if (!r.value("agree", false)) ++disagree;
    }
    if (json) {
        Json arr = Json::array();
        for (std::size_t i = 0; i < results.size(); ++i) {
            Json r = results[i];
            r["index"] = i + 1;
            if (i < captured.size()) {
                r["captured_bytes"] = captured[i].data.size();
                r["wire_bytes"] = captured[i].wire_len;
            }
            arr.push_back(std::move(r));
        }
        if (pcap.empty() && arr.size() == 1) std::cout << daemon::dump_json(arr[0]) << "\n";
        else
            std::cout << daemon::dump_json({{"packets", arr.size()}, {"disagree", disagree}, {"errors", errors},
                                            {"results", arr}})
                      << "\n";
    } else {
        for (std::size_t i = 0; i < results.size(); ++i) {
            const Json& r = results[i];
            std::printf("#%-5zu ", i + 1);
            if (r.contains("error")) {
                std::printf("%s\n", r["error"].get<std::string>().c_str());
                continue;
            }
            const Json& ref = r["reference"];
            std::printf("%s\n       kernel    %s.%s  vault %s  rule %s  vni %s\n       reference %s.%s  vault %s  rule %s%s\n",
                        flow_text(r["flow"]).c_str(), r["verdict"].get<std::string>().c_str(),
                        r["reason"].get<std::string>().c_str(), opt_str(r["vault"]).c_str(), opt_str(r["rule"]).c_str(),
                        r["vni"].dump().c_str(), ref["verdict"].get<std::string>().c_str(),
                        ref["reason"].get<std::string>().c_str(), opt_str(ref["vault"]).c_str(), opt_str(ref["rule"]).c_str(),
                        r.value("agree", false) ? "" : "\n       THEY DISAGREE: please report this");
            if (i < captured.size() && captured[i].wire_len > captured[i].data.size())
                std::printf("       (captured %zu of %u bytes: the cut frame is what was judged)\n",
                            captured[i].data.size(), captured[i].wire_len);
        }
        std::printf("%zu packets: %zu disagree%s", results.size(), disagree, errors ? "" : "\n");
        if (errors) std::printf(", %zu not run\n", errors);
        if (cut) std::printf("%zu frames were cut by the capture's snap length (capture with -s 0)\n", cut);
    }
    return disagree ? 4 : 0;
}

}  // namespace vaultwall::ctl
