// Step 4 of SPEC §5: may this caller do this operation on this vault?
// Access policies (by object id, Key Vault permission names incl. "all") or
// RBAC with the built-in Key Vault data-plane roles and their data actions.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "gate/operations.hpp"
#include "rules/model.hpp"

namespace vaultwall::gate {

struct AuthzResult {
    bool allowed = false;
    std::string detail;  // which policy / role assignment matched, or why not
};

// Access policies: a policy whose object_id equals the caller's oid grants
// op.permission in op.kind, or "all" in that kind. Case-insensitive.
AuthzResult check_access_policies(const std::vector<rules::AccessPolicy>& policies, const std::string& oid,
                                  const Operation& op);

// Data actions of a built-in Key Vault data role (wildcards as Azure writes
// them); nullopt for an unknown role name (compared case-insensitively).
std::optional<std::vector<std::string>> builtin_role_data_actions(const std::string& role);

// Azure-style data-action matching with '*' wildcards (case-insensitive).
bool data_action_matches(const std::string& pattern, const std::string& action);

// Scope "/" covers the vault; "/secrets/NAME" covers that secret, and so on.
bool scope_covers(const std::string& scope, const Operation& op);

AuthzResult check_rbac(const std::vector<rules::RoleAssignment>& assignments, const std::string& oid,
                       const Operation& op);

AuthzResult authorize(const rules::Vault& vault, const std::string& oid, const Operation& op);

}  // namespace vaultwall::gate
