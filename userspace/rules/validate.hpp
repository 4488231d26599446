// Semantic checks over a rule model, however it was built (parsed from a
// file, imported, made in code): what spans entries. Duplicate rules are
// merged into the first with a warning; duplicate or case-insensitively equal
// vault names, an endpoint claimed by two vaults, and what the gate needs
// (an upstream and a tenant_id per vault) are errors. Everything is reported
// to `diags` at the model's positions.
#pragma once

#include "rules/diagnostics.hpp"
#include "rules/model.hpp"

namespace vaultwall::rules {

void validate(RuleFile& rf, Diagnostics& diags);

}  // namespace vaultwall::rules
