// Rule-set fixtures for the fleet tests: a small data-plane rule file (one
// vault, SPEC §6 addresses) with its trusted-services catalog, in a directory
// of the test's own.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace vwtest {

inline void write_file(const std::string& path, const std::string& text) {
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

inline std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

// rules.yaml admitting `ips` to vault fleet-vault at 203.0.113.10:443; `extra`
// is appended to the vault's network_acls (e.g. an ip_rules_file line).
inline std::string rule_text(const std::vector<std::string>& ips, const std::string& extra = {}) {
    std::string s =
        "version: 1\n"
        "trusted_services: trusted-services.yaml\n"
        "vaults:\n"
        "  - name: fleet-vault\n"
        "    tenant_id: 3f1c9a52-7d0e-4b8a-9c11-5e2f0a6d4b10\n"
        "    endpoints: [203.0.113.10:443]\n"
        "    upstream: http://127.0.0.1:8200\n"
        "    network_acls:\n"
        "      default_action: deny\n"
        "      bypass: none\n"
        "      ip_rules: [";
    for (std::size_t i = 0; i < ips.size(); ++i) s += (i ? ", " : "") + ips[i];
    s += "]\n" + extra;
    return s;
}

// A directory holding rules.yaml and the shipped trusted-services catalog.
inline std::string make_rules_dir(const std::string& dir, const std::vector<std::string>& ips,
                                  const std::string& extra = {}) {
    write_file(dir + "/rules.yaml", rule_text(ips, extra));
    write_file(dir + "/trusted-services.yaml", read_text(std::string(VW_SOURCE_DIR) + "/rules/trusted-services.yaml"));
    return dir + "/rules.yaml";
}

}  // namespace vwtest
