// The seam between the daemon and the L7 gate (userspace/gate). Built with
// VW_HAVE_GATE when the gate library is part of the build; otherwise the
// daemon runs the datapath only and says so when a rule file has `gate:`.
#include "daemon/daemon.hpp"

#ifdef VW_HAVE_GATE
#include <bpf/bpf.h>

#include <cstring>

#include "gate/admission.hpp"
#include "gate/config.hpp"
#include "gate/proxy.hpp"
#endif

namespace vaultwall::daemon {

#ifndef VW_HAVE_GATE
std::unique_ptr<GateHost> make_gate_host() { return nullptr; }
#else

namespace {

// Admission records and vault names from the pinned maps of every managed
// interface; a connection arrives on one of them. Owns its map fds, and is
// shared with the gate configs that use it, so an in-flight request keeps it.
class PinnedAdmissions : public gate::AdmissionSource {
public:
    explicit PinnedAdmissions(const std::vector<std::string>& pin_dirs) {
        for (const auto& d : pin_dirs) {
            try {
                dps_.push_back(bpfmaps::Datapath::open_pinned(d));
            } catch (const std::exception&) {
                // An interface that vanished: the others still answer.
            }
        }
    }
    std::optional<vw_admission> lookup(std::uint32_t saddr, std::uint16_t sport, std::uint32_t daddr,
                                       std::uint16_t dport) override {
        for (const auto& dp : dps_) {
            gate::BpfAdmissionSource src(dp->map_fd(bpfmaps::Map::admissions));
            if (auto r = src.lookup(saddr, sport, daddr, dport)) return r;
        }
        return std::nullopt;
    }
    std::optional<vw_admission> lookup6(const rules::Ipv6Addr& saddr, std::uint16_t sport,
                                        const rules::Ipv6Addr& daddr, std::uint16_t dport) override {
        for (const auto& dp : dps_) {
            gate::BpfAdmissionSource src(-1, dp->map_fd(bpfmaps::Map::admissions6));
            if (auto r = src.lookup6(saddr, sport, daddr, dport)) return r;
        }
        return std::nullopt;
    }
    std::string name_of(std::uint32_t id) const {
        for (const auto& dp : dps_) {
            vw_vault_name n{};
            if (bpf_map_lookup_elem(dp->map_fd(bpfmaps::Map::vault_names), &id, &n) == 0 && n.name[0])
                return std::string(n.name, strnlen(n.name, sizeof(n.name)));
        }
        return {};
    }

private:
    std::vector<std::unique_ptr<bpfmaps::Datapath>> dps_;
};

// The gate's half of the reload transaction: prepare() binds every new
// listener and loads the TLS material (gate::Gate::prepare), so a listener
// that cannot bind or a bad certificate fails the reload before any
// interface flips; commit() only swaps (gate::Gate::commit never throws).
class RealGate : public GateHost {
public:
    struct Config : Prepared {
        std::unique_ptr<gate::Gate> fresh;  // the first config: a gate not started yet
        std::unique_ptr<gate::Gate::Prepared> prepared;
    };
    std::shared_ptr<Prepared> prepare(const rules::RuleFile& file, const std::vector<std::string>& pin_dirs) override {
        auto adm = std::make_shared<PinnedAdmissions>(pin_dirs);
        gate::GateOptions opts;
        opts.admission = adm;
        opts.vault_name_of = [adm](std::uint32_t id) { return adm->name_of(id); };
        auto cfg = gate::GateConfig::build(file, opts);  // throws GateConfigError
        auto p = std::make_shared<Config>();
        if (!gate_) p->fresh = std::make_unique<gate::Gate>(cfg);  // starts nothing
        gate::Gate& g = gate_ ? *gate_ : *p->fresh;
        p->prepared = g.prepare(cfg);  // throws naming the endpoint or file; changes nothing
        return p;
    }
    void commit(std::shared_ptr<Prepared> prepared) noexcept override {
        auto& p = *std::static_pointer_cast<Config>(prepared);
        if (p.fresh) gate_ = std::move(p.fresh);
        gate_->commit(std::move(p.prepared));
    }
    void stop() override {
        if (gate_) gate_->stop();
        gate_.reset();
    }
    Json status() const override {
        if (!gate_) return {{"running", false}};
        auto s = gate_->stats();
        return {{"running", true},
                {"listening", gate_->listening()},
                {"connections_active", s.connections_active},
                {"requests", s.requests},
                {"allowed", s.allowed},
                {"denied", s.denied},
                {"upstream_errors", s.upstream_errors}};
    }

private:
    std::unique_ptr<gate::Gate> gate_;
};

}  // namespace

std::unique_ptr<GateHost> make_gate_host() { return std::make_unique<RealGate>(); }
#endif

}  // namespace vaultwall::daemon
