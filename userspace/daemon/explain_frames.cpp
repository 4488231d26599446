#include "daemon/explain_frames.hpp"

#include <linux/bpf.h>

#include <stdexcept>

#include <spdlog/spdlog.h>

#include "bpfmaps/error.hpp"
#include "bpfmaps/prog_run.hpp"
#include "common/reasons.hpp"
#include "daemon/daemon.hpp"
#include "rules/ipv4.hpp"
#include "rules/ipv6.hpp"

namespace vaultwall::daemon {

LiveExplainer::LiveExplainer(const bpfmaps::Datapath& dp, const bpfmaps::Installer& inst,
                             const rules::CompiledRuleSet& set, const reference::Classifier& ref)
    : dp_(dp), inst_(inst), set_(set), ref_(ref) {
    for (const auto& r : inst_.live_rules()) rule_prefix_[r.rule_id] = rules::Ipv4Prefix{r.addr, r.len}.str();
    // IPv6 rules share the id space (bpfmaps/installer.hpp): one map for both.
    for (const auto& r : inst_.live_rules6()) rule_prefix_[r.rule_id] = r.prefix.str();
}

Json flow_json(const reference::FlowFacts& f) {
    if (!f.ipv4 && !f.ipv6) return nullptr;
    const bool ports = f.proto == 6 || f.proto == 17;
    // ICMP's protocol number differs by family (1 for IPv4, 58 for IPv6).
    const bool icmp = f.proto == (f.ipv6 ? 58 : 1);
    return {{"src", f.ipv6 ? rules::format_ipv6(f.src6) : rules::format_ipv4(f.src)},
            {"dst", f.ipv6 ? rules::format_ipv6(f.dst6) : rules::format_ipv4(f.dst)},
            {"sport", ports ? Json(f.sport) : Json(nullptr)},
            {"dport", ports ? Json(f.dport) : Json(nullptr)},
            {"protocol", f.proto == 6    ? Json("tcp")
                         : f.proto == 17 ? Json("udp")
                         : icmp          ? Json(f.ipv6 ? "icmpv6" : "icmp")
                                         : Json(f.proto)},
            {"vxlan", f.vxlan}};
}

Json LiveExplainer::explain(std::span<const std::uint8_t> frame) const {
    const auto k = bpfmaps::run_explain(dp_, frame);
    const auto kreason = static_cast<vw_reason>(k.reason);
    Json kvault = nullptr, krule = nullptr, rvault = nullptr, rrule = nullptr;
    if (k.vault_id)
        if (auto n = inst_.vault_name(k.vault_id)) kvault = *n;
    if (k.rule_id) {
        auto it = rule_prefix_.find(k.rule_id);
        krule = it == rule_prefix_.end() ? Json("#" + std::to_string(k.rule_id)) : Json(it->second);
    }
    const auto rv = ref_.classify(frame.data(), frame.size());
    if (rv.rule >= 0) rrule = set_.rules[static_cast<std::size_t>(rv.rule)].prefix.str();
    if (rv.rule6 >= 0) rrule = set_.rules6[static_cast<std::size_t>(rv.rule6)].prefix.str();
    if (rv.vault >= 0) rvault = set_.vaults[static_cast<std::size_t>(rv.vault)].name;
    // The kernel's action must say what its reason says, and both must match
    // the reference.
    const bool kpass = k.action == XDP_PASS;
    const bool agree = kpass == reason_is_pass(kreason) && kreason == rv.reason && kpass == rv.pass &&
                       kvault == rvault && krule == rrule;
    return {{"verdict", kpass == reason_is_pass(kreason) ? verdict_name(kreason) : (kpass ? "pass" : "drop")},
            {"reason", reason_name(kreason)},
            {"vault", kvault},
            {"rule", krule},
            {"vni", k.vni},
            {"reference",
             {{"verdict", verdict_name(rv.reason)}, {"reason", reason_name(rv.reason)}, {"vault", rvault},
              {"rule", rrule}}},
            {"agree", agree},
            {"generation", k.generation},
            {"flow", flow_json(rv.flow)}};
}

packet::Bytes parse_hex_frame(const std::string& hex) {
    packet::Bytes out;
    int hi = -1;
    for (std::size_t i = 0; i < hex.size(); ++i) {
        const char c = hex[i];
        int v;
        if (c >= '0' && c <= '9') v = c - '0';
        else if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
        else if ((c == ' ' || c == ':' || c == '\t' || c == '\n' || c == '\r') && hi < 0) continue;
        else
            throw std::invalid_argument("frame: '" + std::string(1, c) + "' at offset " + std::to_string(i) +
                                        " is not a hex digit (two per byte; spaces or ':' only between bytes)");
        if (hi < 0) {
            hi = v;
        } else {
            out.push_back(static_cast<std::uint8_t>(hi << 4 | v));
            hi = -1;
        }
    }
    if (hi >= 0) throw std::invalid_argument("frame: odd number of hex digits (two per byte)");
    return out;
}

std::string to_hex(std::span<const std::uint8_t> bytes) {
    static const char* d = "0123456789abcdef";
    std::string s;
    s.reserve(bytes.size() * 2);
    for (auto b : bytes) {
        s += d[b >> 4];
        s += d[b & 15];
    }
    return s;
}

// {"cmd":"explain","frames":[HEX...][,"dev":IFACE]} -> {"ok":true,"dev":..,"results":[..]}:
// one result per frame, or {"error":...} for a frame the kernel would not run.
Json Daemon::explain_frames(const Json& req) {
    const Json& frames = req["frames"];
    if (!frames.is_array()) throw std::invalid_argument("explain: \"frames\" must be an array of hex strings");
    std::vector<packet::Bytes> bytes;
    for (std::size_t i = 0; i < frames.size(); ++i) {
        if (!frames[i].is_string()) throw std::invalid_argument("explain: frame " + std::to_string(i) + " is not a string");
        try {
            bytes.push_back(parse_hex_frame(frames[i].get<std::string>()));
        } catch (const std::invalid_argument& e) {
            throw std::invalid_argument("explain: frame " + std::to_string(i) + ": " + e.what());
        }
    }
    std::lock_guard lk(mu_);
    if (!set_) throw std::runtime_error("no rules loaded");
    Iface* i = iface_locked(req.value("dev", std::string()));
    LiveExplainer ex(*i->dp, *i->inst, *set_, reference_locked());
    Json results = Json::array();
    for (std::size_t n = 0; n < bytes.size(); ++n) {
        try {
            Json r = ex.explain(bytes[n]);
            if (!r["agree"].get<bool>())
                spdlog::warn("explain: kernel and reference disagree on a frame: {}", dump_json(r));
            results.push_back(std::move(r));
        } catch (const bpfmaps::BpfError& e) {
            results.push_back({{"error", std::string("the kernel would not run this frame (") + e.what() +
                                             "): XDP needs 14 to about 3500 bytes"}});
        }
    }
    return {{"ok", true}, {"dev", i->dev}, {"results", results}};
}

}  // namespace vaultwall::daemon
