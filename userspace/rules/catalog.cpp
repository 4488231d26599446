// The trusted-services catalog (SPEC §2): top-level key `trusted_services`,
// one entry per trusted service with its ids, scenario, app ids, resource
// types and data-plane operations.
#include <map>

#include "rules/names.hpp"
#include "rules/schema.hpp"
#include "rules/yaml_access.hpp"

namespace vaultwall::rules {

namespace {

class CatalogSchema : public YamlReader {
public:
    CatalogSchema(FileName file, Diagnostics& diags) : YamlReader(file, "", diags), file_(std::move(file)) {}
    std::vector<TrustedService> parse_catalog(const yaml::Node& root);

private:
    TrustedService parse_service(const yaml::Node& n, std::map<std::string, SourcePos>& ids);
    FileName file_;
};


std::vector<TrustedService> CatalogSchema::parse_catalog(const yaml::Node& root) {
    std::vector<TrustedService> out;
    if (root.IsNull()) {
        diags().error({file_, 1, 1}, "the trusted-services catalog is empty; it needs `trusted_services:`");
        return out;
    }
    auto f = map_fields(root, "the trusted-services catalog", {{"trusted_services"}});
    if (!f) return out;
    if (!require(*f, root, "trusted_services", "the trusted-services catalog",
                 "trusted_services: [...]"))
        return out;
    auto items = list(*f->get("trusted_services"), "trusted_services");
    if (!items) return out;
    std::map<std::string, SourcePos> ids;
    for (const auto& n : *items) {
        ErrorScope scope(diags());
        auto s = parse_service(n, ids);
        if (!scope.failed()) out.push_back(std::move(s));
    }
    return out;
}

TrustedService CatalogSchema::parse_service(const yaml::Node& n, std::map<std::string, SourcePos>& ids) {
    TrustedService ts;
    auto f = map_fields(n, "a trusted service",
                        {{"id"}, {"name"}, {"scenario"}, {"app_ids"}, {"resource_types"},
                         {"operations"}});
    if (!f) return ts;
    const std::vector<std::pair<const char*, const char*>> required = {
        {"id", "id: azure-storage"},
        {"name", "name: Azure Storage"},
        {"scenario", "scenario: Storage Service Encryption using customer-managed keys"},
        {"app_ids", "app_ids: [00000000-0000-0000-0000-000000000000]"},
        {"resource_types", "resource_types: [Microsoft.Storage/storageAccounts]"},
        {"operations", "operations: [keys/get, keys/wrapKey, keys/unwrapKey]"}};
    for (const auto& [k, example] : required) require(*f, n, k, "a trusted service", example);
    if (auto x = f->get("id")) {
        if (auto s = nonempty(*x, "id")) {
            ts.id = *s;
            auto [it, fresh] = ids.emplace(*s, pos(x->value));
            if (!fresh)
                error(*x, "duplicate trusted service id " + quote(*s) + " (first at " +
                              at_text(it->second) + ")");
        }
    }
    if (auto x = f->get("name"))
        if (auto s = nonempty(*x, "name")) ts.name = *s;
    if (auto x = f->get("scenario"))
        if (auto s = nonempty(*x, "scenario")) ts.scenario = *s;
    if (auto x = f->get("app_ids"))
        if (auto l = string_list(*x, "app_ids")) ts.app_ids = *l;
    if (auto x = f->get("resource_types")) {
        if (auto l = string_list(*x, "resource_types")) {
            std::size_t i = 0;
            for (const auto& item : x->value.IsNull() ? yaml::Node() : x->value) {
                const auto& rt = (*l)[i++];
                auto slash = rt.find('/');
                if (slash == std::string::npos || slash == 0 || slash + 1 == rt.size())
                    error(item, "resource type " + quote(rt) + " is not NAMESPACE/TYPE, e.g. Microsoft.Storage/storageAccounts");
                else
                    ts.resource_types.push_back(rt);
            }
        }
    }
    if (auto x = f->get("operations")) {
        if (auto l = string_list(*x, "operations")) {
            std::size_t i = 0;
            for (const auto& item : x->value.IsNull() ? yaml::Node() : x->value) {
                const auto& op = (*l)[i++];
                if (auto c = canonical_operation(op)) {
                    ts.operations.push_back(*c);
                    continue;
                }
                std::string msg = "unknown operation " + quote(op);
                if (auto m = closest_match(op, known_operations()))
                    msg += "; did you mean " + quote(*m) + "?";
                else
                    msg += "; operations are KIND/PERMISSION, e.g. keys/wrapKey, secrets/get, "
                           "certificates/get";
                error(item, msg);
            }
            if (l->empty())
                warn(pos(x->key), "trusted service " + quote(ts.id) + " has no operations; it can never pass the gate");
        }
    }
    return ts;
}

}  // namespace

std::vector<TrustedService> parse_catalog_text(std::string_view text, const FileName& file,
                                               Diagnostics& diags) {
    auto root = load_yaml(text, file, "a trusted-services catalog", diags);
    if (!root) return {};
    return CatalogSchema(file, diags).parse_catalog(*root);
}

}  // namespace vaultwall::rules
