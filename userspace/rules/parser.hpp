// Rule file loading (SPEC §2, §7): YAML text -> validated RuleFile, or every
// error found (RuleFileError, diagnostics.hpp), each naming file:line:col and
// what to do about it. The library's public entry points.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "rules/diagnostics.hpp"
#include "rules/model.hpp"
#include "rules/source.hpp"

namespace vaultwall::rules {

// Loads `path`, resolving relative paths (trusted_services, jwks_file,
// tls_cert, ip_rules_file, ...) against its directory, and reads the files it
// names (catalog, ip_rules_files) through `source` too. The rule file and
// everything it names must be UTF-8 and one YAML document.
RuleFile load_rule_file(const std::string& path,
                        const FileSource& source = filesystem_source());

// Parses text already in memory; `name` is used in diagnostics and `base_dir`
// to resolve relative paths; the files it names are read through `source`.
RuleFile parse_rule_text(std::string_view text, const std::string& name,
                         const std::string& base_dir,
                         const FileSource& source = filesystem_source());

// Loads a trusted-services catalog (top-level key `trusted_services`).
std::vector<TrustedService> load_trusted_services(
    const std::string& path, const FileSource& source = filesystem_source());

// The rules of an ip_rules_file, by family, each in file order.
struct IpRuleList {
    std::vector<IpRule> v4;
    std::vector<IpRule6> v6;
};

// Parses the text of an ip_rules_file (SPEC §7: one IPv4 or IPv6 address or
// CIDR a line, `#` comments, blank lines ignored); `name` is used in
// diagnostics (name:line:col). Duplicates are kept (a vault merges them with a
// warning). Throws RuleFileError.
IpRuleList parse_ip_rules_text(std::string_view text, const std::string& name);

}  // namespace vaultwall::rules
