// The per-request decision of SPEC §5 steps 1-4, pure: admission,
// authentication, network (trusted services), permission. No I/O; the proxy
// calls it and either forwards or sends the response described here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gate/admission.hpp"
#include "gate/jwt.hpp"
#include "gate/operations.hpp"
#include "rules/model.hpp"

namespace vaultwall::gate {

// Views into the request: they must outlive the decide() call.
struct RequestFacts {
    std::string_view method;
    std::string_view target;                       // "/secrets/x?api-version=7.4"
    std::optional<std::string_view> authorization;  // the Authorization header, if present
    IpAddress client;                               // named in the firewall's 403
};

struct DecisionContext {
    const rules::Vault& vault;
    const rules::Identity& identity;
    const std::vector<rules::TrustedService>& catalog;
    const JwtValidator& jwt;
};

struct Decision {
    bool allow = false;
    bool audit = false;               // allowed only because the vault is in audit mode (decision "audit")
    unsigned status = 200;            // 200: forward; else the status to answer with
    std::string code;                 // outer error code ("Unauthorized", "Forbidden", "BadParameter")
    std::string inner_code;           // "ForbiddenByFirewall", ...; "" when none
    std::string reason;               // short audit reason: "ip_rule", "missing_token", "bad_signature", ...
    std::string message;              // Key Vault message text
    std::string www_authenticate;     // set on 401
    std::string operation;            // "secrets/get" ("" when not classified)
    std::string target;               // what to forward: Operation::target ("" when not classified)
    std::string caller;               // "appid=...;oid=...;iss=..." ("" when unauthenticated)
    Admission admission;
    std::string body() const;         // Key Vault error JSON ("" when allowed)
};

Decision decide(const DecisionContext& ctx, const RequestFacts& req, const Admission& admission,
                Clock::time_point now = Clock::now());

// Key Vault's error JSON, {"error":{"code":..,"message":..[,"innererror":{"code":..}]}}:
// every error body the gate sends. Safe whatever bytes it is given (json_text.hpp).
std::string error_body(std::string_view code, std::string_view message, std::string_view inner_code = {});

// "contoso-prod;location=lab"
std::string vault_label(const rules::Vault& v);
// Bearer authorization="<authority>/<tenant>", resource="<audience>"[, error="invalid_token"]
std::string bearer_challenge(const rules::Identity& id, const rules::Vault& v, bool invalid_token);

}  // namespace vaultwall::gate
