// Key Vault REST data plane: (method, path) -> operation. Table-driven; the
// query string (api-version, maxresults, ...) never changes the operation.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace vaultwall::gate {

struct Operation {
    std::string name;         // "secrets/get", "keys/wrapKey", ... (access-policy spelling)
    std::string kind;         // "secrets" | "keys" | "certificates"
    std::string permission;   // "get", "wrapKey", ... (the part after '/')
    std::string data_action;  // RBAC: "Microsoft.KeyVault/vaults/secrets/getSecret/action"
    std::string object;       // object name ("" for collection operations)
    // The target the gate forwards: the path's segments joined by '/' (no
    // empty or dot segment, no trailing '/'), then the query as sent.
    std::string target;
    // RBAC scope of the object: "/secrets/NAME" etc., or "/" for collections.
    std::string scope() const { return object.empty() ? "/" : "/" + kind + "/" + object; }
};

// `target` is the request target ("/secrets/foo?api-version=7.4"). nullopt:
// not a Key Vault data-plane request the gate knows (it answers 400/404 then).
std::optional<Operation> classify(std::string_view method, std::string_view target);

}  // namespace vaultwall::gate
