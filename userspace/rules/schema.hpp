// Section schemas: a rule file's (schema.cpp) or a trusted-services catalog's
// (catalog.cpp) YAML document -> the model. Errors and warnings go to `diags`.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rules/diagnostics.hpp"
#include "rules/model.hpp"
#include "rules/yaml_doc.hpp"

namespace vaultwall::rules {

// How a schema reads a file the rule file names (the catalog, an
// ip_rules_file): the loader's, through its FileSource. Returns the bytes, or
// nullopt with the error already reported at `at`.
using ReadFile = std::function<std::optional<std::string>(
    const std::string& path, const std::string& what, const SourcePos& at)>;

RuleFile parse_rule_document(const yaml::Node& root, const FileName& file,
                             const std::string& base_dir, Diagnostics& diags,
                             const ReadFile& read);

// The catalog's text (UTF-8, one YAML document) -> its services.
std::vector<TrustedService> parse_catalog_text(std::string_view text, const FileName& file,
                                               Diagnostics& diags);

}  // namespace vaultwall::rules
