#include "gate/authz.hpp"
#include "rules/text.hpp"

#include <algorithm>
#include <cctype>
#include <map>

namespace vaultwall::gate {
namespace {

using rules::lower;  // one lower() for the project (rules/text.hpp)

// Glob match, '*' spans any run of characters (also across '/', as Azure does).
bool glob(const char* p, const char* s) {
    while (*p) {
        if (*p == '*') {
            while (*p == '*') ++p;
            if (!*p) return true;
            for (; *s; ++s)
                if (glob(p, s)) return true;
            return false;
        }
        if (!*s || *p != *s) return false;
        ++p;
        ++s;
    }
    return !*s;
}

#define KV "Microsoft.KeyVault/vaults/"

const std::map<std::string, std::vector<std::string>>& roles() {
    static const std::map<std::string, std::vector<std::string>> r = {
        {"key vault administrator", {KV "*"}},
        {"key vault reader", {KV "*/read", KV "secrets/readMetadata/action"}},
        {"key vault secrets officer", {KV "secrets/*"}},
        {"key vault secrets user", {KV "secrets/getSecret/action", KV "secrets/readMetadata/action"}},
        {"key vault crypto officer", {KV "keys/*", KV "keyrotationpolicies/*"}},
        {"key vault crypto user",
         {KV "keys/read", KV "keys/update/action", KV "keys/backup/action", KV "keys/encrypt/action",
          KV "keys/decrypt/action", KV "keys/wrap/action", KV "keys/unwrap/action", KV "keys/sign/action",
          KV "keys/verify/action"}},
        {"key vault crypto service encryption user", {KV "keys/read", KV "keys/wrap/action", KV "keys/unwrap/action"}},
        {"key vault crypto service release user", {KV "keys/release/action"}},
        {"key vault certificates officer",
         {KV "certificatecas/*", KV "certificates/*", KV "certificatecontacts/write"}},
        {"key vault certificate user",
         {KV "certificates/read", KV "secrets/getSecret/action", KV "secrets/readMetadata/action", KV "keys/read"}},
        // Management-plane only: no data actions.
        {"key vault data access administrator", {}},
    };
    return r;
}

#undef KV

}  // namespace

AuthzResult check_access_policies(const std::vector<rules::AccessPolicy>& policies, const std::string& oid,
                                  const Operation& op) {
    if (oid.empty()) return {false, "token has no oid"};
    const std::string want = lower(op.permission);
    for (const auto& p : policies) {
        if (lower(p.object_id) != lower(oid)) continue;
        auto it = p.permissions.find(op.kind);
        if (it == p.permissions.end()) continue;
        for (const auto& perm : it->second) {
            auto l = lower(perm);
            if (l == want || l == "all") return {true, "access policy " + p.object_id + ": " + op.kind + "/" + perm};
        }
    }
    return {false, "no access policy grants " + op.name};
}

std::optional<std::vector<std::string>> builtin_role_data_actions(const std::string& role) {
    auto it = roles().find(lower(role));
    if (it == roles().end()) return std::nullopt;
    return it->second;
}

bool data_action_matches(const std::string& pattern, const std::string& action) {
    return glob(lower(pattern).c_str(), lower(action).c_str());
}

bool scope_covers(const std::string& scope, const Operation& op) {
    std::string s = scope;
    while (s.size() > 1 && s.back() == '/') s.pop_back();
    if (s == "/" || s.empty()) return true;
    if (op.object.empty()) return false;  // collection operations need the vault scope
    return lower(s) == lower("/" + op.kind + "/" + op.object);
}

AuthzResult check_rbac(const std::vector<rules::RoleAssignment>& assignments, const std::string& oid,
                       const Operation& op) {
    if (oid.empty()) return {false, "token has no oid"};
    for (const auto& a : assignments) {
        if (lower(a.principal_id) != lower(oid)) continue;
        if (!scope_covers(a.scope, op)) continue;
        auto actions = builtin_role_data_actions(a.role);
        if (!actions) continue;
        for (const auto& pat : *actions)
            if (data_action_matches(pat, op.data_action))
                return {true, "role assignment '" + a.role + "' at " + a.scope};
    }
    return {false, "no role assignment grants " + op.data_action};
}

AuthzResult authorize(const rules::Vault& vault, const std::string& oid, const Operation& op) {
    return vault.authorization == rules::Authorization::rbac ? check_rbac(vault.role_assignments, oid, op)
                                                             : check_access_policies(vault.access_policies, oid, op);
}

}  // namespace vaultwall::gate
