// The trusted-services exception (SPEC §5 step 3): which catalog entry, if
// any, recognises the caller, and does that entry's scenario include the
// operation?
#pragma once

#include <string>
#include <vector>

#include "gate/jwt.hpp"
#include "rules/model.hpp"

namespace vaultwall::gate {

struct TrustedResult {
    bool trusted = false;             // a recognised service doing an operation of its scenario
    const rules::TrustedService* service = nullptr;  // the entry that recognised the caller (may be set even when !trusted)
    std::string detail;
};

// xms_mirid looks like
// /subscriptions/<sub>/resourcegroups/<rg>/providers/<Namespace/type>/<name>[/...].
// Returns "<Namespace/type>" when the subscription equals `subscription`
// (case-insensitively) and the id is well formed; "" otherwise.
std::string mirid_resource_type(const std::string& mirid, const std::string& subscription);

TrustedResult check_trusted(const std::vector<rules::TrustedService>& catalog, const Claims& caller,
                            const std::string& vault_subscription, const std::string& operation);

}  // namespace vaultwall::gate
