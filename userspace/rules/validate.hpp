// Semantic checks over a rule model, however it was built (parsed from a
// file, imported, made in code): what spans entries. The VNets that private
// endpoints and virtual network rules name are looked up and their VNIs and
// subnet prefixes filled in (an unknown VNet or subnet is an error, with a
// did-you-mean). Duplicate rules and endpoints are merged into the first with
// a warning; two VNets of one name or VNI, duplicate or case-insensitively
// equal vault names, an endpoint claimed by two vaults, and what the gate
// needs (an upstream and a tenant_id per vault) are errors. Both families
// alike. Everything is reported to `diags` at the model's positions.
#pragma once

#include "rules/diagnostics.hpp"
#include "rules/model.hpp"

namespace vaultwall::rules {

void validate(RuleFile& rf, Diagnostics& diags);

}  // namespace vaultwall::rules
