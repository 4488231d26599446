#include "daemon/drops.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <set>
#include <sstream>
#include <stdexcept>
#include <unordered_map>

#include <spdlog/spdlog.h>

#include "common/reasons.hpp"
#include "daemon/daemon.hpp"
#include "daemon/metrics.hpp"
#include "rules/ipv4.hpp"
#include "rules/ipv6.hpp"

namespace vaultwall::daemon {

namespace {

std::int64_t clock_ns(clockid_t id) {
    timespec ts{};
    ::clock_gettime(id, &ts);
    return std::int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// 2026-12-01T21:50:00.123Z
std::string iso_time(std::int64_t unix_ns) {
    std::time_t secs = static_cast<std::time_t>(unix_ns / 1'000'000'000);
    std::tm tm{};
    ::gmtime_r(&secs, &tm);
    char buf[40];
    std::size_t n = std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    std::snprintf(buf + n, sizeof(buf) - n, ".%03dZ", int(unix_ns / 1'000'000 % 1000));
    return buf;
}

std::string protocol_name(std::uint8_t p) {
    switch (p) {
        case IPPROTO_TCP: return "tcp";
        case IPPROTO_UDP: return "udp";
        case IPPROTO_ICMP: return "icmp";
        case IPPROTO_ICMPV6: return "icmpv6";
        default: return std::to_string(p);
    }
}

bool has_ports(const vw_drop_event& e) { return e.protocol == IPPROTO_TCP || e.protocol == IPPROTO_UDP; }

// An event's address in its family's text form (IPv6 in RFC 5952 form).
std::string address_text(const vw_drop_event& e, const __u32* addr) {
    if (e.family == VW_FAMILY_IPV4) return rules::format_ipv4(ntohl(addr[0]));
    rules::Ipv6Addr a;
    std::memcpy(a.data(), addr, a.size());
    return rules::format_ipv6(a);
}

bool has_addresses(const vw_drop_event& e) { return e.family == VW_FAMILY_IPV4 || e.family == VW_FAMILY_IPV6; }

Json source_json(const vw_drop_event& e) {
    return has_addresses(e) ? Json(address_text(e, e.saddr)) : Json(nullptr);
}

}  // namespace

Json drop_json(const DropRecord& r) {
    const auto& e = r.event;
    const auto reason = static_cast<vw_reason>(e.reason);
    Json dst = nullptr;
    if (has_addresses(e)) {
        std::string d = address_text(e, e.daddr);
        if (e.family == VW_FAMILY_IPV6 && has_ports(e)) d = "[" + d + "]";
        if (has_ports(e)) d += ":" + std::to_string(ntohs(e.dport));
        dst = d;
    }
    return {{"seq", r.seq},
            {"time", iso_time(r.unix_ns)},
            {"interface", r.dev},
            {"source", source_json(e)},
            {"sport", has_ports(e) ? Json(ntohs(e.sport)) : Json(nullptr)},
            {"destination", dst},
            {"protocol", has_addresses(e) ? Json(protocol_name(e.protocol)) : Json(nullptr)},
            {"vni", e.vni},
            {"vault", r.vault.empty() ? Json(nullptr) : Json(r.vault)},
            {"verdict", verdict_name(reason)},
            {"reason", reason_name(reason)},
            {"bytes", e.bytes},
            {"generation", e.generation}};
}

void DropFilter::check() const {
    if (reason.empty()) return;
    for (int r = 0; r < VW_REASONS; ++r) {
        DropRecord probe;
        probe.event.reason = static_cast<std::uint32_t>(r);
        if (vw_reason_reported(probe.event.reason) && DropFilter{{}, reason}.matches(probe)) return;
    }
    std::string known;
    std::set<std::string> names;
    for (int r = 0; r < VW_REASONS; ++r)
        if (vw_reason_reported(static_cast<std::uint32_t>(r))) names.insert(reason_name(vw_reason(r)));
    for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
    throw std::invalid_argument("no denied flow has reason \"" + reason + "\": try " + known +
                                ", drop, audit, or VERDICT.REASON (audit.no_rule)");
}

bool DropFilter::matches(const DropRecord& r) const {
    if (r.seq <= after && after) return false;
    if (!vault.empty() && r.vault != vault) return false;
    if (reason.empty()) return true;
    const auto rs = static_cast<vw_reason>(r.event.reason);
    const std::string name = reason_name(rs), verdict = verdict_name(rs);
    return reason == name || reason == verdict || reason == verdict + "." + name;
}

Json top_sources(const std::vector<DropRecord>& records, std::size_t n) {
    struct Agg {
        std::uint64_t events = 0;
        std::int64_t first = 0, last = 0;
        std::set<std::string> vaults, reasons;
    };
    std::unordered_map<std::string, Agg> by_source;
    for (const auto& r : records) {
        Json src = source_json(r.event);
        auto& a = by_source[src.is_null() ? std::string("-") : src.get<std::string>()];
        if (!a.events++) a.first = r.unix_ns;
        a.last = r.unix_ns;
        if (!r.vault.empty()) a.vaults.insert(r.vault);
        const auto rs = static_cast<vw_reason>(r.event.reason);
        a.reasons.insert(std::string(verdict_name(rs)) + "." + reason_name(rs));
    }
    std::vector<std::pair<std::string, const Agg*>> rows;
    for (const auto& [src, a] : by_source) rows.push_back({src, &a});
    std::sort(rows.begin(), rows.end(), [](const auto& x, const auto& y) {
        return x.second->events != y.second->events ? x.second->events > y.second->events : x.first < y.first;
    });
    if (rows.size() > n) rows.resize(n);
    Json out = Json::array();
    for (const auto& [src, a] : rows)
        out.push_back({{"source", src},
                       {"events", a->events},
                       {"first", iso_time(a->first)},
                       {"last", iso_time(a->last)},
                       {"vaults", a->vaults},
                       {"reasons", a->reasons}});
    return out;
}

// The sources and the reader over their ring buffers, built together.
struct DropMonitor::Reader {
    std::vector<Source> sources;  // dp pointers are not used after construction
    std::unique_ptr<bpfmaps::DropEventReader> rb;
};

DropMonitor::DropMonitor(std::size_t capacity) : capacity_(capacity) {
    mono_to_unix_ns_ = clock_ns(CLOCK_REALTIME) - clock_ns(CLOCK_MONOTONIC);
}

DropMonitor::~DropMonitor() {
    stop();
    if (log_) std::fclose(log_);
}

void DropMonitor::set_sources(const std::vector<Source>& sources) {
    auto r = std::make_unique<Reader>();
    r->sources = sources;
    Reader* raw = r.get();
    r->rb = std::make_unique<bpfmaps::DropEventReader>([this, raw](std::size_t i, const vw_drop_event& e) {
        ingest(raw->sources[i].dev, raw->sources[i].vault_names, e);
    });
    for (std::size_t i = 0; i < sources.size(); ++i) r->rb->add(*sources[i].dp, i);
    for (auto& s : r->sources) s.dp = nullptr;
    std::lock_guard lk(reader_mu_);
    next_reader_ = std::move(r);
}

void DropMonitor::set_log(const std::string& path) {
    std::FILE* f = nullptr;
    if (!path.empty()) {
        f = std::fopen(path.c_str(), "ae");
        if (!f) throw std::runtime_error("drop_log: cannot open " + path + ": " + std::strerror(errno));
    }
    std::lock_guard lk(log_mu_);
    if (log_) std::fclose(log_);
    log_ = f;
    log_path_ = path;
}

void DropMonitor::start() {
    if (thread_.joinable()) return;
    stop_ = false;
    thread_ = std::thread([this] { loop(); });
}

void DropMonitor::stop() {
    {
        std::lock_guard lk(reader_mu_);
        stop_ = true;
    }
    if (thread_.joinable()) thread_.join();
}

void DropMonitor::loop() {
    std::unique_ptr<Reader> reader;
    for (;;) {
        {
            std::lock_guard lk(reader_mu_);
            if (stop_) break;
            if (next_reader_) {
                if (reader) reader->rb->consume();  // what the old one still holds
                reader = std::move(next_reader_);
            }
        }
        try {
            // Short waits: events are read, and a new reader or stop() is
            // picked up, within VW_DROP_EVENTS_READ_MS.
            if (reader) reader->rb->poll(VW_DROP_EVENTS_READ_MS);
            else std::this_thread::sleep_for(std::chrono::milliseconds(VW_DROP_EVENTS_READ_MS));
        } catch (const std::exception& e) {
            spdlog::warn("drop events: {}", e.what());
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        std::lock_guard lk(log_mu_);
        if (log_) std::fflush(log_);
    }
    if (reader) reader->rb->consume();
}

void DropMonitor::ingest(const std::string& dev, const std::map<std::uint32_t, std::string>& names,
                         const vw_drop_event& e) {
    DropRecord r;
    r.dev = dev;
    r.event = e;
    r.unix_ns = static_cast<std::int64_t>(e.timestamp_ns) + mono_to_unix_ns_;
    if (e.vault_id)
        if (auto it = names.find(e.vault_id); it != names.end()) r.vault = it->second;
    {
        std::lock_guard lk(mu_);
        r.seq = ++seq_;
        history_.push_back(r);
        if (history_.size() > capacity_) history_.pop_front();
    }
    std::lock_guard lk(log_mu_);
    if (log_) {
        std::string line = dump_json(drop_json(r)) + "\n";
        if (std::fwrite(line.data(), 1, line.size(), log_) != line.size())
            spdlog::warn("drop_log {}: write failed: {}", log_path_, std::strerror(errno));
    }
}

std::vector<DropRecord> DropMonitor::query(const DropFilter& f, std::size_t limit) const {
    std::vector<DropRecord> out;
    std::lock_guard lk(mu_);
    for (const auto& r : history_)
        if (f.matches(r)) out.push_back(r);
    if (limit && out.size() > limit) out.erase(out.begin(), out.end() - static_cast<std::ptrdiff_t>(limit));
    return out;
}

std::uint64_t DropMonitor::last_seq() const {
    std::lock_guard lk(mu_);
    return seq_;
}

// ---- The daemon's side: its sources, the `drops` command, the metrics.

void Daemon::update_drop_sources_locked() {
    if (!drops_) return;
    std::vector<DropMonitor::Source> sources;
    for (const auto& i : ifaces_) sources.push_back({i.dev, i.dp.get(), i.inst->vault_names()});
    try {
        drops_->set_sources(sources);
    } catch (const std::exception& e) {
        spdlog::error("drop events: cannot read the ring buffers: {}", e.what());
    }
}

bpfmaps::EventBudget Daemon::event_budget_locked() {
    bpfmaps::EventBudget sum;
    for (const auto& i : ifaces_) {
        try {
            auto b = bpfmaps::read_event_budget(*i.dp);
            sum.sent += b.sent;
            sum.suppressed += b.suppressed;
            sum.lost += b.lost;
        } catch (const std::exception& e) {
            spdlog::warn("interface {}: {}", i.dev, e.what());
        }
    }
    return sum;
}

Json Daemon::drops(const Json& req) {
    DropFilter f;
    f.vault = req.value("vault", std::string());
    f.reason = req.value("reason", std::string());
    f.after = req.value("after", std::uint64_t{0});
    f.check();
    const std::size_t limit = req.value("limit", std::size_t{0});
    const std::size_t top = req.value("top", std::size_t{0});
    std::lock_guard lk(mu_);
    if (!drops_) throw std::runtime_error("drop events are not being read");
    if (!f.vault.empty() && set_ &&
        std::none_of(set_->vaults.begin(), set_->vaults.end(), [&](const auto& v) { return v.name == f.vault; }))
        throw std::invalid_argument("no vault named " + f.vault);
    const auto b = event_budget_locked();
    Json out = {{"ok", true},
                {"last_seq", drops_->last_seq()},
                {"capacity", drops_->capacity()},
                {"rate_per_cpu", set_ ? set_->drop_events_per_second : 0},
                {"events", {{"sent", b.sent}, {"suppressed", b.suppressed}, {"lost", b.lost}}}};
    auto records = drops_->query(f, top ? 0 : limit);
    if (top) {
        out["top"] = top_sources(records, top);
        return out;
    }
    Json arr = Json::array();
    for (const auto& r : records) arr.push_back(drop_json(r));
    out["drops"] = std::move(arr);
    return out;
}

std::string Daemon::drop_metrics_locked() {
    const auto b = event_budget_locked();
    std::ostringstream os;
    os << "# HELP vaultwall_drop_events_total Denied-flow events the datapath sent to the daemon.\n"
       << "# TYPE vaultwall_drop_events_total counter\n"
       << "vaultwall_drop_events_total " << b.sent << "\n"
       << "# HELP vaultwall_drop_events_suppressed_total Denied-flow events over "
          "host.drop_events_per_second: counted, not sent.\n"
       << "# TYPE vaultwall_drop_events_suppressed_total counter\n"
       << "vaultwall_drop_events_suppressed_total " << b.suppressed << "\n"
       << "# HELP vaultwall_drop_events_lost_total Denied-flow events within the limit that found the "
          "ring buffer full.\n"
       << "# TYPE vaultwall_drop_events_lost_total counter\n"
       << "vaultwall_drop_events_lost_total " << b.lost << "\n";
    return os.str();
}

}  // namespace vaultwall::daemon
