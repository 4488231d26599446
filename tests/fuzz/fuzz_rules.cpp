// The rule-file loader and compiler on arbitrary bytes (SPEC §2, §7).
//
// The input is up to three files, separated by a line "#~~~": the rule file
// (/fuzz/rules.yaml), an ip_rules_file (/fuzz/ips.txt) and a trusted-services
// catalog (/fuzz/trusted.yaml). They are served from memory (rules'
// MemorySource): the harness never reads the disk, whatever paths the input
// names. Properties:
//  - the loader either accepts or throws RuleFileError: no other exception,
//    no crash, no hang;
//  - every diagnostic names a file and a position, says something, stays
//    short, and can be written as JSON (what `check --json` and the daemon
//    do with it);
//  - an accepted file compiles, and the compiled set is one the installer
//    takes: the real Installer writes it into the in-memory map backend
//    (bpfmaps::MemoryMaps) without refusing it, and the set passes the
//    preconditions checked here too (names, sizes, unique canonical rules,
//    VNIs, vault indexes, for IPv4 and IPv6 alike); the reference classifier
//    can be built from it;
//  - vault names are unique, ignoring case (Key Vault's names are).
#include <cctype>
#include <set>
#include <tuple>

#include <nlohmann/json.hpp>

#include "bpfmaps/installer.hpp"
#include "bpfmaps/map_backend.hpp"
#include "common.hpp"
#include "reference/classifier.hpp"
#include "rules/compiled.hpp"
#include "rules/parser.hpp"
#include "rules/source.hpp"
#include "vaultwall_abi.h"

using namespace vaultwall;
using namespace vaultwall::rules;

namespace {

// Longest diagnostic worth printing: a message quoting a 64 KiB scalar a
// thousand times is the memory blow-up of issue 17 item 9.
constexpr std::size_t kMaxDiagnostic = 4096;

void check_json_safe(const std::string& s, const char* what) {
    try {
        (void)nlohmann::json(s).dump();
    } catch (const nlohmann::json::exception& e) {
        FUZZ_CHECK(false, "%s cannot be written as JSON (%s): %s", what, e.what(), s.substr(0, 200).c_str());
    }
}

std::string lower(std::string s) {
    for (auto& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

void check_compiled(const RuleFile& rf, const CompiledRuleSet& set) {
    FUZZ_CHECK(set.vaults.size() == rf.vaults.size(), "compiled %zu vaults of %zu", set.vaults.size(), rf.vaults.size());
    FUZZ_CHECK(set.vaults.size() < VW_MAX_VAULTS, "%zu vaults", set.vaults.size());
    FUZZ_CHECK(set.endpoints.size() <= VW_MAX_ENDPOINTS, "%zu endpoints", set.endpoints.size());
    FUZZ_CHECK(set.vteps.size() <= VW_MAX_VTEP_PREFIXES, "%zu VTEP prefixes", set.vteps.size());
    std::set<std::string> names;
    for (const auto& v : set.vaults) {
        FUZZ_CHECK(!v.name.empty() && v.name.size() < VW_VAULT_NAME_LEN, "vault name of %zu bytes", v.name.size());
        FUZZ_CHECK(names.insert(lower(v.name)).second, "two vaults named '%s' (ignoring case)", v.name.c_str());
        check_json_safe(v.name, "a vault name");
    }
    for (const auto& p : set.vteps)
        FUZZ_CHECK(p.len <= 32 && (p.addr & ~Ipv4Prefix::mask(p.len)) == 0, "VTEP prefix with host bits");
    std::set<std::tuple<std::uint32_t, std::uint32_t, std::uint32_t, std::uint16_t, int>> eps;
    for (const auto& e : set.endpoints) {
        FUZZ_CHECK(e.vault < set.vaults.size(), "endpoint of vault index %u", e.vault);
        FUZZ_CHECK(e.is_private == (e.vni != 0), "endpoint private=%d with VNI %u", e.is_private, e.vni);
        FUZZ_CHECK(e.vni < (1u << 24), "endpoint VNI %u", e.vni);
        FUZZ_CHECK(e.proto == Proto::tcp || e.proto == Proto::udp, "endpoint protocol %d", int(e.proto));
        FUZZ_CHECK(eps.insert({e.vault, e.vni, e.addr, e.port, int(e.proto)}).second, "duplicate endpoint");
    }
    std::set<std::tuple<std::uint32_t, std::uint32_t>> scopes;
    std::set<std::tuple<std::uint32_t, std::uint32_t, std::uint32_t, std::uint8_t>> rules;
    for (const auto& r : set.rules) {
        FUZZ_CHECK(r.vault < set.vaults.size(), "rule of vault index %u", r.vault);
        FUZZ_CHECK(r.vni < (1u << 24), "rule VNI %u", r.vni);
        FUZZ_CHECK(r.prefix.len <= 32 && (r.prefix.addr & ~Ipv4Prefix::mask(r.prefix.len)) == 0,
                   "rule prefix with host bits");
        FUZZ_CHECK(rules.insert({r.vault, r.vni, r.prefix.addr, r.prefix.len}).second, "duplicate compiled rule");
        scopes.insert({r.vault, r.vni});
    }
    // The IPv6 side (SPEC §11): the same properties over 128-bit prefixes.
    for (const auto& p : set.vteps6)
        FUZZ_CHECK(p.len <= 128 && Ipv6Prefix::masked(p.addr, p.len) == p.addr, "IPv6 VTEP prefix with host bits");
    std::set<std::tuple<std::uint32_t, std::uint32_t, Ipv6Addr, std::uint16_t, int>> eps6;
    for (const auto& e : set.endpoints6) {
        FUZZ_CHECK(e.vault < set.vaults.size(), "IPv6 endpoint of vault index %u", e.vault);
        FUZZ_CHECK(e.is_private == (e.vni != 0), "IPv6 endpoint private=%d with VNI %u", e.is_private, e.vni);
        FUZZ_CHECK(e.vni < (1u << 24), "IPv6 endpoint VNI %u", e.vni);
        FUZZ_CHECK(e.proto == Proto::tcp || e.proto == Proto::udp, "IPv6 endpoint protocol %d", int(e.proto));
        FUZZ_CHECK(eps6.insert({e.vault, e.vni, e.addr, e.port, int(e.proto)}).second, "duplicate IPv6 endpoint");
    }
    std::set<std::tuple<std::uint32_t, std::uint32_t, Ipv6Prefix>> rules6;
    std::set<std::tuple<std::uint32_t, std::uint32_t>> scopes6;  // a map of their own (bpf/maps.h)
    for (const auto& r : set.rules6) {
        FUZZ_CHECK(r.vault < set.vaults.size(), "IPv6 rule of vault index %u", r.vault);
        FUZZ_CHECK(r.vni < (1u << 24), "IPv6 rule VNI %u", r.vni);
        FUZZ_CHECK(r.prefix.len <= 128 && Ipv6Prefix::masked(r.prefix.addr, r.prefix.len) == r.prefix.addr,
                   "IPv6 rule prefix with host bits");
        FUZZ_CHECK(rules6.insert({r.vault, r.vni, r.prefix}).second, "duplicate compiled IPv6 rule");
        scopes6.insert({r.vault, r.vni});
    }
    FUZZ_CHECK(scopes.size() <= VW_MAX_SCOPES, "%zu (vault, vni) scopes", scopes.size());
    FUZZ_CHECK(scopes6.size() <= VW_MAX_SCOPES, "%zu (vault, vni) IPv6 scopes", scopes6.size());
    reference::Classifier ref(set);
    (void)ref;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size > 256 * 1024) return 0;
    const auto parts = fuzz::split(fuzz::as_text(data, size), "\n#~~~\n");
    MemorySource files;
    files.add("/fuzz/rules.yaml", std::string(parts[0]));
    if (parts.size() > 1) files.add("/fuzz/ips.txt", std::string(parts[1]));
    if (parts.size() > 2) files.add("/fuzz/trusted.yaml", std::string(parts[2]));

    RuleFile rf;
    try {
        rf = load_rule_file("/fuzz/rules.yaml", files);
    } catch (const RuleFileError& e) {
        FUZZ_CHECK(!e.diagnostics().empty(), "rejected without a diagnostic");
        for (const auto& d : e.diagnostics()) {
            FUZZ_CHECK(!d.pos.file.empty(), "a diagnostic without a file: %s", d.message.c_str());
            FUZZ_CHECK(!d.message.empty(), "an empty diagnostic at %s:%d", d.pos.file.str().c_str(), d.pos.line);
            const std::string s = d.str();
            FUZZ_CHECK(s.size() <= kMaxDiagnostic, "a diagnostic of %zu bytes: %.200s...", s.size(), s.c_str());
            check_json_safe(s, "a diagnostic");
        }
        return 0;
    } catch (const std::exception& e) {
        FUZZ_CHECK(false, "the loader let a %s escape: %s", typeid(e).name(), e.what());
    }
    for (const auto& w : rf.warnings) {
        FUZZ_CHECK(w.size() <= kMaxDiagnostic, "a warning of %zu bytes: %.200s...", w.size(), w.c_str());
        check_json_safe(w, "a warning");
    }
    for (const auto& v : rf.vaults) {
        check_json_safe(v.location, "a vault location");
        check_json_safe(v.tenant_id, "a tenant id");
    }
    for (const auto& t : rf.trusted_services) check_json_safe(t.id, "a trusted-service id");
    CompiledRuleSet set;
    try {
        set = compile(rf);
    } catch (const std::exception& e) {
        FUZZ_CHECK(false, "an accepted file does not compile: %s", e.what());
    }
    check_compiled(rf, set);
    // Maps sized like a small host; a rule file that fits the ABI limits
    // checked above must install. (Stride blocks run out before rules do:
    // the installer then keeps those scopes on the trie, as on a real host.)
    bpfmaps::MemoryMaps maps(1u << 16, 64);
    maps.put(bpfmaps::Map::state, std::uint32_t(0), vw_state{}, "init");  // an ARRAY map has its entries
    bpfmaps::Installer installer(maps);
    try {
        installer.install(set);
    } catch (const std::exception& e) {
        FUZZ_CHECK(set.rules.size() + set.rules6.size() >= (1u << 16) - 1, "the installer refused an accepted file: %s",
                   e.what());
    }
    return 0;
}
