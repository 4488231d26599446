// Rule file loading (SPEC §2): YAML text -> validated RuleFile, or every error
// found, each naming file:line:col and what to do about it.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "rules/model.hpp"

namespace vaultwall::rules {

struct Diagnostic {
    SourcePos pos;
    std::string message;
    std::string str() const;  // "file:line:col: error: message"
};

// Thrown when a file has one or more errors; the file is rejected whole.
class RuleFileError : public std::runtime_error {
public:
    explicit RuleFileError(std::vector<Diagnostic> diags);
    const std::vector<Diagnostic>& diagnostics() const { return diags_; }

private:
    std::vector<Diagnostic> diags_;
};

// Loads `path`, resolving relative paths (trusted_services, jwks_file,
// tls_cert, ...) against its directory, and loads the trusted-services catalog.
RuleFile load_rule_file(const std::string& path);

// Parses text already in memory; `name` is used in diagnostics and `base_dir`
// to resolve relative paths.
RuleFile parse_rule_text(std::string_view text, const std::string& name,
                         const std::string& base_dir);

// Loads a trusted-services catalog (top-level key `trusted_services`).
std::vector<TrustedService> load_trusted_services(const std::string& path);

}  // namespace vaultwall::rules
