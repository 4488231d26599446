#include "gate/decision.hpp"
#include "rules/text.hpp"

#include <algorithm>
#include <cctype>

#include <nlohmann/json.hpp>

#include "gate/authz.hpp"
#include "gate/json_text.hpp"
#include "gate/trusted.hpp"

namespace vaultwall::gate {
namespace {

using rules::lower;  // one lower() for the project (rules/text.hpp)

std::string trim_right_slash(std::string s) {
    while (!s.empty() && s.back() == '/') s.pop_back();
    return s;
}

Decision deny(Decision& d, unsigned status, std::string code, std::string inner, std::string reason,
              std::string message) {
    d.allow = false;
    d.status = status;
    d.code = std::move(code);
    d.inner_code = std::move(inner);
    d.reason = std::move(reason);
    d.message = std::move(message);
    return std::move(d);
}

// Parses "Bearer <token>" (scheme case-insensitive). nullopt: no bearer
// credentials at all (=> plain challenge); "" => present but empty (invalid).
std::optional<std::string_view> bearer_token(const std::optional<std::string_view>& h) {
    if (!h) return std::nullopt;
    std::string_view v = *h;
    size_t i = 0;
    while (i < v.size() && (v[i] == ' ' || v[i] == '\t')) ++i;
    if (v.size() - i < 6 || lower(std::string(v.substr(i, 6))) != "bearer") return std::nullopt;
    i += 6;
    if (i < v.size() && v[i] != ' ' && v[i] != '\t') return std::nullopt;  // "Bearerx"
    while (i < v.size() && (v[i] == ' ' || v[i] == '\t')) ++i;
    size_t e = v.size();
    while (e > i && (v[e - 1] == ' ' || v[e - 1] == '\t')) --e;
    return v.substr(i, e - i);
}

std::string firewall_message(const rules::Vault& v, const IpAddress& client, const std::string& caller) {
    return "Client address is not authorized and caller is not a trusted service.\r\nClient address: " +
           client.str() + "\r\nCaller: " + caller + "\r\nVault: " + vault_label(v);
}

std::string connection_message(const rules::Vault& v, const std::string& caller) {
    return "Public network access is disabled and request is not from a trusted service nor via an approved "
           "private link.\r\nCaller: " +
           caller + "\r\nVault: " + vault_label(v);
}

std::string policy_message(const rules::Vault& v, const std::string& caller, const Operation& op) {
    return "The user, group or application '" + caller + "' does not have " + op.kind + " " + op.permission +
           " permission on key vault '" + vault_label(v) +
           "'. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125287";
}

std::string rbac_message(const rules::Vault& v, const std::string& caller, const Operation& op) {
    std::string resource = lower("/subscriptions/" + v.subscription_id + "/providers/Microsoft.KeyVault/vaults/" +
                                 v.name + (op.object.empty() ? "" : op.scope()));
    return "Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or "
           "role definitions were changed recently, please observe propagation time.\r\nCaller: " +
           caller + "\r\nAction: '" + op.data_action + "'\r\nResource: '" + resource +
           "'\r\nAssignment: (not found)\r\nDenyAssignmentId: null\r\nDecisionReason: null \r\nVault: " +
           vault_label(v) + "\r\n";
}

}  // namespace

std::string vault_label(const rules::Vault& v) { return v.name + ";location=" + v.location; }

std::string bearer_challenge(const rules::Identity& id, const rules::Vault& v, bool invalid_token) {
    std::string s = "Bearer authorization=\"" + trim_right_slash(id.authority) + "/" + v.tenant_id +
                    "\", resource=\"" + id.audience + "\"";
    if (invalid_token) s += ", error=\"invalid_token\"";
    return s;
}

std::string error_body(std::string_view code, std::string_view message, std::string_view inner_code) {
    nlohmann::json j;
    j["error"]["code"] = code;
    j["error"]["message"] = message;
    if (!inner_code.empty()) j["error"]["innererror"]["code"] = inner_code;
    return json_text(j);
}

std::string Decision::body() const { return allow ? std::string() : error_body(code, message, inner_code); }

Decision decide(const DecisionContext& ctx, const RequestFacts& req, const Admission& admission,
                Clock::time_point now) {
    Decision d;
    d.admission = admission;
    const auto& vault = ctx.vault;
    auto token = bearer_token(req.authorization);
    std::shared_ptr<const Claims> claims;
    JwtResult jr;
    if (token && !token->empty()) {
        jr = ctx.jwt.validate(*token, vault.tenant_id, now);
        if (jr.ok()) {
            claims = jr.claims;
            d.caller = claims->caller();
        }
    }
    auto op = classify(req.method, req.target);
    if (op) {
        d.operation = op->name;
        d.target = op->target;
    }

    // Audit mode (SPEC §9): what only the network checks (1 and 3) would
    // refuse goes on, remembered here, and is allowed with decision `audit`;
    // the token and permission checks (2 and 4) refuse as ever.
    const bool audit_mode = vault.enforcement == rules::Enforcement::audit;
    std::string audited;

    // 1. Admission (fail closed). A datapath record with an audit reason was
    // admitted only because the vault was in audit mode when the SYN came.
    const bool audited_admission = reason_is_audit(vw_reason(admission.reason));
    if (!admission.admitted || audited_admission) {
        const bool no_public = admission.reason == VW_DROP_PUBLIC_ACCESS_DISABLED ||
                               admission.reason == VW_AUDIT_PUBLIC_ACCESS_DISABLED;
        if (audit_mode) {
            audited = reason_name(vw_reason(admission.reason));
        } else if (no_public) {
            return deny(d, 403, "Forbidden", "ForbiddenByConnection", reason_name(vw_reason(admission.reason)),
                        connection_message(vault, d.caller));
        } else {
            return deny(d, 403, "Forbidden", "ForbiddenByFirewall", reason_name(vw_reason(admission.reason)),
                        firewall_message(vault, req.client, d.caller));
        }
    }

    // 2. Authentication.
    if (!token) {
        d.www_authenticate = bearer_challenge(ctx.identity, vault, false);
        return deny(d, 401, "Unauthorized", "", "missing_token",
                    "AKV10000: Request is missing a Bearer or PoP token.");
    }
    if (!claims) {
        d.www_authenticate = bearer_challenge(ctx.identity, vault, true);
        if (token->empty())
            return deny(d, 401, "Unauthorized", "", "malformed_token", "AKV10005: Invalid token: empty.");
        return deny(d, 401, "Unauthorized", "", to_string(jr.error), jr.message);
    }

    // The operation (needed by steps 3 and 4).
    if (!op)
        return deny(d, 400, "BadParameter", "", "unknown_operation",
                    "The request URI is not a supported Key Vault data-plane operation.");

    // 3. Network: trusted-service exception.
    std::string allow_reason = reason_name(vw_reason(admission.reason));
    if (admission.reason == VW_PASS_TRUSTED_CANDIDATE) {
        auto t = check_trusted(ctx.catalog, *claims, vault.subscription_id, op->name);
        if (t.trusted)
            allow_reason = "trusted_service:" + t.service->id;
        else if (audit_mode)
            audited = "not_trusted_service";
        else if (!vault.public_network_access)
            return deny(d, 403, "Forbidden", "ForbiddenByConnection", "not_trusted_service",
                        connection_message(vault, d.caller));
        else
            return deny(d, 403, "Forbidden", "ForbiddenByFirewall", "not_trusted_service",
                        firewall_message(vault, req.client, d.caller));
    }

    // 4. Permission.
    auto a = authorize(vault, claims->oid, *op);
    if (!a.allowed) {
        if (vault.authorization == rules::Authorization::rbac)
            return deny(d, 403, "Forbidden", "ForbiddenByRbac", "rbac_denied",
                        rbac_message(vault, d.caller, *op));
        return deny(d, 403, "Forbidden", "ForbiddenByPolicy", "policy_denied",
                    policy_message(vault, d.caller, *op));
    }
    d.allow = true;
    d.status = 200;
    d.reason = audited.empty() ? allow_reason : audited;
    d.audit = !audited.empty();
    return d;
}

}  // namespace vaultwall::gate
