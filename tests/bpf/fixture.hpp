// A freshly loaded datapath (the real compiled XDP object) with a small rule
// set installed, and helpers to run frames and read what moved.
#pragma once

#include <gtest/gtest.h>

#include <memory>

#include "bpfmaps/counters.hpp"
#include "bpfmaps/datapath.hpp"
#include "bpfmaps/installer.hpp"
#include "bpfmaps/prog_run.hpp"
#include "packet/packet.hpp"
#include "rules/compiled.hpp"

namespace vaultwall::testing {

inline std::uint32_t ip(const char* s) { return *rules::parse_ipv4(s); }
inline rules::Ipv4Prefix prefix(const char* s) { return rules::parse_ipv4_prefix(s)->prefix; }

// The rule set most datapath tests share (addresses from SPEC §6).
//   0 strict:   203.0.113.10:443; private 198.19.1.100:443 via VNI 5001;
//               deny, no bypass; ip rules 192.0.2.0/24, 192.0.2.128/25,
//               198.51.100.7/32; vnet rule 5001/198.19.1.0/24
//   1 bypass:   203.0.113.11:443, deny + bypass
//   2 open:     203.0.113.12:443, default allow
//   3 closed:   203.0.113.13:443, public access disabled, no bypass
//   4 closed-b: 203.0.113.14:443, public access disabled + bypass
//   5 other:    private 198.19.1.100:443 via VNI 5002 (address reused)
inline rules::CompiledRuleSet sample_rules() {
    using rules::Proto;
    rules::CompiledRuleSet s;
    s.vxlan_port = 4789;
    s.vteps = {prefix("198.18.0.0/24")};
    s.vaults = {{"strict", false, false, false},   {"bypass", false, false, true},
                {"open", false, true, false},      {"closed", true, false, false},
                {"closed-b", true, false, true},   {"other", false, false, false}};
    s.endpoints = {
        {0, 0, ip("203.0.113.10"), 443, Proto::tcp, false},
        {0, 5001, ip("198.19.1.100"), 443, Proto::tcp, true},
        {1, 0, ip("203.0.113.11"), 443, Proto::tcp, false},
        {2, 0, ip("203.0.113.12"), 443, Proto::tcp, false},
        {3, 0, ip("203.0.113.13"), 443, Proto::tcp, false},
        {4, 0, ip("203.0.113.14"), 443, Proto::tcp, false},
        {5, 5002, ip("198.19.1.100"), 443, Proto::tcp, true},
    };
    s.rules = {
        {0, 0, prefix("192.0.2.0/24"), "ip_rules"},
        {0, 0, prefix("192.0.2.128/25"), "ip_rules"},
        {0, 0, prefix("198.51.100.7/32"), "ip_rules"},
        {0, 5001, prefix("198.19.1.0/24"), "prod-vnet/app"},
    };
    return s;
}

class DatapathTest : public ::testing::Test {
protected:
    void SetUp() override {
        dp = bpfmaps::Datapath::open_and_load({.max_rules = 1 << 16});
        installer = std::make_unique<bpfmaps::Installer>(*dp);
    }

    bpfmaps::InstallReport install(const rules::CompiledRuleSet& s) {
        auto rep = installer->install(s);
        report = rep;
        return rep;
    }

    bpfmaps::CounterSnapshot counters() const {
        std::vector<std::uint32_t> ids;
        for (auto& [id, name] : installer->vault_names()) ids.push_back(id);
        return bpfmaps::read_counters(*dp, ids);
    }

    std::uint32_t vault_id(const std::string& name) const { return *installer->vault_id(name); }

    std::unique_ptr<bpfmaps::Datapath> dp;
    std::unique_ptr<bpfmaps::Installer> installer;
    bpfmaps::InstallReport report;
};

}  // namespace vaultwall::testing
