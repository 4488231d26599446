#include "gate/trusted.hpp"
#include "rules/text.hpp"

#include <algorithm>
#include <cctype>

namespace vaultwall::gate {
namespace {

using rules::lower;  // one lower() for the project (rules/text.hpp)

std::vector<std::string> split(const std::string& s) {
    std::vector<std::string> out;
    size_t i = 0;
    if (s.empty() || s[0] != '/') return out;
    i = 1;
    while (i <= s.size()) {
        size_t j = s.find('/', i);
        if (j == std::string::npos) j = s.size();
        out.push_back(s.substr(i, j - i));
        i = j + 1;
    }
    return out;
}

}  // namespace

std::string mirid_resource_type(const std::string& mirid, const std::string& subscription) {
    auto seg = split(mirid);
    // subscriptions/<sub>/resourcegroups/<rg>/providers/<ns>/<type>/<name>
    if (seg.size() < 8) return {};
    for (const auto& s : seg)
        if (s.empty()) return {};
    if (lower(seg[0]) != "subscriptions" || lower(seg[1]) != lower(subscription) ||
        lower(seg[2]) != "resourcegroups" || lower(seg[4]) != "providers")
        return {};
    return seg[5] + "/" + seg[6];
}

TrustedResult check_trusted(const std::vector<rules::TrustedService>& catalog, const Claims& caller,
                            const std::string& vault_subscription, const std::string& operation) {
    TrustedResult res;
    const std::string app = lower(caller.app());
    const std::string rtype = caller.xms_mirid.empty() ? "" : lower(mirid_resource_type(caller.xms_mirid, vault_subscription));
    const std::string op = lower(operation);
    for (const auto& svc : catalog) {
        bool recognised = false;
        if (!app.empty())
            for (const auto& id : svc.app_ids)
                if (lower(id) == app) recognised = true;
        if (!recognised && !rtype.empty())
            for (const auto& t : svc.resource_types)
                if (lower(t) == rtype) recognised = true;
        if (!recognised) continue;
        if (!res.service) res.service = &svc;
        for (const auto& o : svc.operations)
            if (lower(o) == op) {
                res.trusted = true;
                res.service = &svc;
                res.detail = "trusted service " + svc.id + " (" + svc.name + ")";
                return res;
            }
    }
    res.detail = res.service ? "trusted service " + res.service->id + " does not need " + operation
                             : "caller is not a trusted service";
    return res;
}

}  // namespace vaultwall::gate
