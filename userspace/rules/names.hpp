// Key Vault vocabulary the rule file is checked against: access-policy
// permission names, built-in data-plane role names, data-plane operations.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vaultwall::rules {

// Object kinds an access policy grants permissions on, as Key Vault spells
// them: "secrets", "keys", "certificates", "storage".
const std::vector<std::string>& permission_kinds();

// Key Vault's access-policy permission names of one kind, canonical spelling
// ("get", "wrapKey", "getrotationpolicy", "all"...). Empty for unknown kinds.
const std::vector<std::string>& permission_names(std::string_view kind);

// Canonical spelling of a permission name (case-insensitive match), or
// nullopt when Key Vault has no such permission for that kind.
std::optional<std::string> canonical_permission(std::string_view kind, std::string_view name);

// The built-in Key Vault data-plane role names ("Key Vault Secrets User"...).
const std::vector<std::string>& builtin_role_names();
std::optional<std::string> canonical_role(std::string_view name);  // case-insensitive

// Data-plane operations "kind/permission" for every permission but "all"
// ("keys/wrapKey", "secrets/get"...), the vocabulary of the trusted-services
// catalog's `operations` and of the gate.
const std::vector<std::string>& known_operations();
std::optional<std::string> canonical_operation(std::string_view op);  // case-insensitive

// The closest candidate to `word` (case-insensitive edit distance), if close
// enough to be a plausible typo.
std::optional<std::string> closest_match(std::string_view word,
                                         const std::vector<std::string>& candidates);

}  // namespace vaultwall::rules
