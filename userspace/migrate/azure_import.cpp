#include "migrate/azure_import.hpp"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <set>

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "rules/ipv4.hpp"
#include "rules/names.hpp"
#include "rules/parser.hpp"
#include "rules/text.hpp"

namespace vaultwall::migrate {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

using rules::lower;  // one lower() for the project (rules/text.hpp)

std::string trim(std::string_view s) {
    auto b = s.find_first_not_of(" \t");
    if (b == std::string_view::npos) return "";
    auto e = s.find_last_not_of(" \t");
    return std::string(s.substr(b, e - b + 1));
}

// The string member `key` of `j` (Azure prints absent values as null).
std::optional<std::string> str(const json& j, const char* key) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_string()) return std::nullopt;
    return it->get<std::string>();
}

// A member that `az keyvault show` prints under "properties"; the flattened
// form (the member at top level, as some tools export it) is accepted too.
const json* prop(const json& vault, const char* key) {
    if (auto p = vault.find("properties"); p != vault.end() && p->is_object())
        if (auto it = p->find(key); it != p->end()) return &*it;
    if (auto it = vault.find(key); it != vault.end()) return &*it;
    return nullptr;
}

// "/subscriptions/SUB/resourceGroups/..." -> SUB.
std::string subscription_of(const std::string& id) {
    std::string l = lower(id);
    const std::string tag = "/subscriptions/";
    if (l.rfind(tag, 0) != 0) return "";
    auto end = id.find('/', tag.size());
    return id.substr(tag.size(), end == std::string::npos ? std::string::npos : end - tag.size());
}

YAML::Node flow_list() {
    YAML::Node n(YAML::NodeType::Sequence);
    n.SetStyle(YAML::EmitterStyle::Flow);
    return n;
}

// The `vnets` of the --into file, for matching Azure subnet ids.
struct VnetIndex {
    struct Entry {
        std::string vnet, subnet;  // the rule file's spelling
    };
    std::map<std::pair<std::string, std::string>, Entry> by_name;  // (lower vnet, lower subnet)
    bool have_file = false;
};

class Importer {
public:
    Importer(const AzureImportOptions& o, const VnetIndex& vnets, bool gate)
        : o_(o), vnets_(vnets), gate_(gate) {}

    // One `az keyvault show` object -> a rule-file vault node.
    YAML::Node vault(const json& j, const YAML::Node* existing);
    std::vector<std::string> warnings;

private:
    void warn(const std::string& what) { warnings.push_back("vault '" + name_ + "': " + what); }
    YAML::Node network_acls(const json* acls);
    void ip_rules(const json& rules, YAML::Node& out);
    void vnet_rules(const json& rules, YAML::Node& out);
    YAML::Node access_policies(const json& list, const std::string& tenant);

    const AzureImportOptions& o_;
    const VnetIndex& vnets_;
    bool gate_;
    std::string name_;
};

YAML::Node Importer::vault(const json& j, const YAML::Node* existing) {
    if (!j.is_object()) throw ImportError("a vault must be a JSON object (the output of `az keyvault show`)");
    auto name = str(j, "name");
    if (!name || name->empty()) throw ImportError("a vault has no \"name\": is this the output of `az keyvault show`?");
    name_ = *name;
    const json* tenant = prop(j, "tenantId");
    if (!tenant || !tenant->is_string() || tenant->get<std::string>().empty())
        throw ImportError("vault '" + name_ + "' has no properties.tenantId");

    YAML::Node v(YAML::NodeType::Map);
    v["name"] = name_;
    v["tenant_id"] = lower(tenant->get<std::string>());
    if (auto id = str(j, "id"); id && !subscription_of(*id).empty()) v["subscription_id"] = lower(subscription_of(*id));
    if (auto loc = str(j, "location")) v["location"] = *loc;

    // Where this host serves the vault: the operator's, not Azure's. A
    // re-import keeps what the rule file already says.
    auto kept = [&](const char* snake, const char* camel) -> std::optional<YAML::Node> {
        if (!existing) return std::nullopt;
        for (const char* k : {snake, camel})
            if (YAML::Node n = (*existing)[k]; n.IsDefined() && !n.IsNull()) return YAML::Clone(n);
        return std::nullopt;
    };
    if (!o_.endpoints.empty()) {
        YAML::Node eps = flow_list();
        for (const auto& e : o_.endpoints) eps.push_back(e);
        v["endpoints"] = eps;
    } else if (auto eps = kept("endpoints", "endpoints")) {
        v["endpoints"] = *eps;
    }
    if (auto pe = kept("private_endpoints", "privateEndpoints")) v["private_endpoints"] = *pe;
    if (!v["endpoints"] && !v["private_endpoints"])
        warn("Azure does not say where this host serves the vault: add `endpoints: [IP:443]` "
             "(or give --endpoint IP:PORT)");
    if (!o_.upstream.empty()) {
        v["upstream"] = o_.upstream;
    } else if (auto up = kept("upstream", "upstream")) {
        v["upstream"] = *up;
    } else if (gate_) {
        throw ImportError("vault '" + name_ + "': " + o_.into_path +
                          " has a gate section, so the vault needs an upstream (where the gate forwards its "
                          "requests): give --upstream URL, e.g. --upstream http://127.0.0.1:8200");
    }

    // publicNetworkAccess: absent on vaults made before it existed (enabled).
    std::string pna = "enabled";
    if (const json* p = prop(j, "publicNetworkAccess"); p && p->is_string()) {
        std::string s = lower(p->get<std::string>());
        if (s == "disabled") {
            pna = "disabled";
        } else if (s != "enabled") {
            pna = "disabled";
            warn("publicNetworkAccess '" + p->get<std::string>() +
                 "' has no vaultwall equivalent; imported as disabled (only private endpoints and trusted services)");
        }
    }
    v["public_network_access"] = pna;
    YAML::Node acls = network_acls(prop(j, "networkAcls"));
    if (existing) {  // machine-managed rule lists and the rollout mode stay the operator's
        auto old = kept("network_acls", "networkAcls");
        if (old && old->IsMap())
            for (const char* k : {"ip_rules_file", "ipRulesFile", "enforcement"})
                if ((*old)[k]) acls[k] = (*old)[k];
    }
    v["network_acls"] = acls;

    bool rbac = false;
    if (const json* r = prop(j, "enableRbacAuthorization"); r && r->is_boolean()) rbac = r->get<bool>();
    v["authorization"] = rbac ? "rbac" : "access_policies";
    if (const json* ap = prop(j, "accessPolicies"); ap && ap->is_array() && !ap->empty())
        v["access_policies"] = access_policies(*ap, lower(tenant->get<std::string>()));
    if (auto ra = kept("role_assignments", "roleAssignments")) {
        v["role_assignments"] = *ra;
    } else if (rbac) {
        warn("enableRbacAuthorization is true, but role assignments are not part of `az keyvault show`: add "
             "`role_assignments` (from `az role assignment list --scope <vault id>`), or no caller is permitted");
    }
    if (const json* pec = prop(j, "privateEndpointConnections"); pec && pec->is_array() && !pec->empty())
        warn(std::to_string(pec->size()) +
             " Azure private endpoint connection(s) not imported: add `private_endpoints` ({vnet, address}) "
             "for the addresses this host serves in each VNet");
    return v;
}

YAML::Node Importer::network_acls(const json* acls) {
    YAML::Node out(YAML::NodeType::Map);
    if (!acls || acls->is_null()) {
        // No networkAcls: Azure admits every network.
        out["default_action"] = "allow";
        out["bypass"] = "azure_services";
        return out;
    }
    if (!acls->is_object()) throw ImportError("vault '" + name_ + "': properties.networkAcls is not an object");
    std::string action = "deny";
    if (auto a = str(*acls, "defaultAction")) {
        std::string l = lower(*a);
        if (l == "allow" || l == "deny")
            action = l;
        else
            warn("networkAcls.defaultAction '" + *a + "' is neither Allow nor Deny; imported as deny");
    }
    out["default_action"] = action;
    // "AzureServices", "None", or a comma-separated list of flags.
    std::string bypass = "none";
    if (auto b = str(*acls, "bypass")) {
        std::string list = *b;
        for (std::size_t i = 0; i <= list.size();) {
            auto comma = list.find(',', i);
            if (comma == std::string::npos) comma = list.size();
            std::string flag = lower(trim(std::string_view(list).substr(i, comma - i)));
            if (flag == "azureservices")
                bypass = "azure_services";
            else if (!flag.empty() && flag != "none")
                warn("networkAcls.bypass flag '" + flag + "' has no vaultwall equivalent; left out");
            i = comma + 1;
        }
    }
    out["bypass"] = bypass;
    if (auto it = acls->find("ipRules"); it != acls->end() && it->is_array()) ip_rules(*it, out);
    if (auto it = acls->find("virtualNetworkRules"); it != acls->end() && it->is_array()) vnet_rules(*it, out);
    return out;
}

void Importer::ip_rules(const json& rules, YAML::Node& out) {
    YAML::Node list = flow_list();
    std::set<std::string> seen;
    for (const auto& r : rules) {
        // {"value": "192.0.2.0/24"}; some exports print bare strings.
        std::string value = r.is_string() ? r.get<std::string>() : r.is_object() ? str(r, "value").value_or("") : "";
        if (value.empty()) {
            warn("an ipRules entry without a value (" + r.dump() + "); left out");
            continue;
        }
        if (value.find(':') != std::string::npos) {
            warn("IPv6 ip rule " + value + " left out: this vaultwall enforces IPv4 rules only");
            continue;
        }
        auto p = rules::parse_ipv4_prefix(value);
        if (!p) {
            warn("ip rule '" + value + "' is not an IPv4 address or CIDR range; left out");
            continue;
        }
        if (p->host_bits_set)
            warn("ip rule " + value + " has host bits set; imported as the network " + p->prefix.str());
        // Azure stores a single address as a.b.c.d/32; a bare address means the same here.
        std::string text = p->prefix.len == 32 ? rules::format_ipv4(p->prefix.addr) : p->prefix.str();
        if (!seen.insert(text).second) {
            warn("ip rule " + value + " repeats " + text + "; merged");
            continue;
        }
        list.push_back(text);
    }
    if (list.size()) out["ip_rules"] = list;
}

void Importer::vnet_rules(const json& rules, YAML::Node& out) {
    YAML::Node list(YAML::NodeType::Sequence);
    std::set<std::string> seen;
    for (const auto& r : rules) {
        std::string id = r.is_object() ? str(r, "id").value_or("") : r.is_string() ? r.get<std::string>() : "";
        // Azure returns subnet ids in whatever case they were created with,
        // often all lower case: match case-insensitively.
        std::string l = lower(id);
        auto vi = l.find("/virtualnetworks/");
        auto si = l.find("/subnets/", vi == std::string::npos ? 0 : vi);
        if (id.empty() || vi == std::string::npos || si == std::string::npos) {
            warn("virtual network rule '" + id + "' is not an Azure subnet id; left out");
            continue;
        }
        std::string vnet = l.substr(vi + 17, si - vi - 17);
        std::string subnet = l.substr(si + 9);
        if (auto slash = subnet.find('/'); slash != std::string::npos) subnet.resize(slash);
        auto hit = vnets_.by_name.find({vnet, subnet});
        if (hit == vnets_.by_name.end()) {
            std::string where = vnets_.have_file ? o_.into_path + " has no `vnets` entry '" + id.substr(vi + 17, si - vi - 17) +
                                                       "' with subnet '" + id.substr(si + 9) + "'"
                                                 : "no --into rule file gives its VNet's VNI";
            warn("virtual network rule " + id + " left out: " + where +
                 " (add the VNet with its VNI and the subnet's prefix under `vnets`, then import again)");
            continue;
        }
        std::string text = hit->second.vnet + "/" + hit->second.subnet;
        if (!seen.insert(text).second) continue;
        // ignoreMissingVnetServiceEndpoint is about Azure's service endpoints,
        // which vaultwall does not have; it is kept so nothing is lost.
        bool ignore_missing = false;
        if (r.is_object())
            if (auto it = r.find("ignoreMissingVnetServiceEndpoint"); it != r.end() && it->is_boolean())
                ignore_missing = it->get<bool>();
        if (ignore_missing) {
            YAML::Node m(YAML::NodeType::Map);
            m.SetStyle(YAML::EmitterStyle::Flow);
            m["id"] = text;
            m["ignore_missing_vnet_service_endpoint"] = true;
            list.push_back(m);
        } else {
            list.push_back(text);
        }
    }
    if (list.size()) out["virtual_network_rules"] = list;
}

YAML::Node Importer::access_policies(const json& list, const std::string& tenant) {
    YAML::Node out(YAML::NodeType::Sequence);
    for (const auto& p : list) {
        auto oid = p.is_object() ? str(p, "objectId") : std::nullopt;
        if (!oid || oid->empty()) {
            warn("an access policy without objectId left out");
            continue;
        }
        if (auto app = str(p, "applicationId"); app && !app->empty()) {
            // A compound identity: only that user through that application.
            // vaultwall grants by object id alone, which would grant more.
            warn("access policy for objectId " + *oid + " with applicationId " + *app +
                 " (a compound identity) left out: vaultwall cannot express it without granting more");
            continue;
        }
        if (auto t = str(p, "tenantId"); t && lower(*t) != tenant) {
            warn("access policy for objectId " + *oid + " names tenant " + *t +
                 ", not the vault's: its callers' tokens would never pass; left out");
            continue;
        }
        YAML::Node perms(YAML::NodeType::Map);
        if (auto it = p.find("permissions"); it != p.end() && it->is_object()) {
            for (const auto& [kind, names] : it->items()) {
                std::string k = lower(kind);
                const auto& kinds = rules::permission_kinds();
                if (std::find(kinds.begin(), kinds.end(), k) == kinds.end()) {
                    warn("access policy for " + *oid + ": permission kind '" + kind + "' unknown; left out");
                    continue;
                }
                if (!names.is_array() || names.empty()) continue;
                YAML::Node l = flow_list();
                for (const auto& n : names) {
                    auto c = n.is_string() ? rules::canonical_permission(k, n.get<std::string>()) : std::nullopt;
                    if (!c) {
                        warn("access policy for " + *oid + ": unknown " + k + " permission " + n.dump() + "; left out");
                        continue;
                    }
                    bool dup = false;
                    for (const auto& have : l) dup = dup || have.as<std::string>() == *c;
                    if (!dup) l.push_back(*c);
                }
                if (l.size()) perms[k] = l;
            }
        }
        YAML::Node ap(YAML::NodeType::Map);
        ap["object_id"] = lower(*oid);
        perms.SetStyle(YAML::EmitterStyle::Flow);
        ap["permissions"] = perms;
        out.push_back(ap);
    }
    return out;
}

// Relative paths in the --into file name files next to it; keep them naming
// the same files from the output's directory. The keys are the rule file's
// path-valued keys (SPEC §2, §7, §9).
void absolutize_paths(YAML::Node root, const fs::path& base) {
    auto fix = [&](YAML::Node parent, const char* key) {
        if (!parent.IsMap() || !parent[key] || !parent[key].IsScalar()) return;
        fs::path p = parent[key].as<std::string>();
        if (p.is_relative()) parent[key] = (base / p).lexically_normal().string();
    };
    for (const char* k : {"trusted_services", "trustedServices", "drop_log", "dropLog"}) fix(root, k);
    if (auto g = root["gate"])
        for (const char* k : {"tls_cert", "tls_key", "audit_log", "tlsCert", "tlsKey", "auditLog"}) fix(g, k);
    if (auto id = root["identity"]; id && id["issuers"] && id["issuers"].IsSequence())
        for (auto is : id["issuers"])
            for (const char* k : {"jwks_file", "jwksFile"}) fix(is, k);
    if (auto vs = root["vaults"]; vs && vs.IsSequence())
        for (auto v : vs)
            for (const char* a : {"network_acls", "networkAcls"})
                if (v.IsMap() && v[a])
                    for (const char* k : {"ip_rules_file", "ipRulesFile"}) fix(v[a], k);
}

}  // namespace

AzureImport import_azure(std::string_view json_text, const std::string& json_name,
                         const AzureImportOptions& o) {
    json doc;
    try {
        doc = json::parse(json_text);
    } catch (const json::parse_error& e) {
        throw ImportError(json_name + ": not JSON (" + std::string(e.what()) +
                          "); give the output of `az keyvault show --name VAULT`");
    }
    std::vector<json> docs;
    if (doc.is_array())
        docs.assign(doc.begin(), doc.end());
    else
        docs.push_back(doc);
    if (docs.empty()) throw ImportError(json_name + ": an empty list, no vault to import");

    // The --into file must be valid itself: its vnets give the VNIs.
    VnetIndex vnets;
    YAML::Node root;
    bool gate = false;
    fs::path into_dir = o.into_path.empty() ? fs::path(".") : fs::path(o.into_path).parent_path();
    if (into_dir.empty()) into_dir = ".";
    if (o.into_text) {
        try {
            rules::RuleFile rf = rules::parse_rule_text(*o.into_text, o.into_path, into_dir.string());
            vnets.have_file = true;
            for (const auto& vn : rf.vnets)
                for (const auto& s : vn.subnets) vnets.by_name[{lower(vn.name), lower(s.name)}] = {vn.name, s.name};
            gate = rf.gate.has_value();
        } catch (const rules::RuleFileError& e) {
            throw ImportError(o.into_path + " does not pass check; fix it first:\n" + e.what());
        }
        root = YAML::Load(std::string(*o.into_text));
    } else {
        root = YAML::Node(YAML::NodeType::Map);
        root["version"] = 1;
    }
    if (!root["vaults"] || root["vaults"].IsNull()) root["vaults"] = YAML::Node(YAML::NodeType::Sequence);
    YAML::Node vaults = root["vaults"];

    AzureImport result;
    Importer imp(o, vnets, gate);
    std::set<std::string> imported;
    for (const auto& j : docs) {
        // A vault of the same name is replaced (a re-import after Azure's
        // rules changed); what Azure does not know is kept from it.
        std::string name = j.is_object() ? str(j, "name").value_or("") : "";
        if (!imported.insert(lower(name)).second)
            throw ImportError(json_name + ": vault '" + name + "' appears twice");
        std::optional<std::size_t> at;
        for (std::size_t i = 0; i < vaults.size(); ++i)
            if (vaults[i]["name"] && lower(vaults[i]["name"].as<std::string>()) == lower(name)) at = i;
        YAML::Node existing = at ? YAML::Node(vaults[*at]) : YAML::Node();
        YAML::Node v = imp.vault(j, at ? &existing : nullptr);
        if (at) {
            vaults[*at] = v;
            result.warnings.push_back("vault '" + name + "': replaced the one in " + o.into_path +
                                      " (its endpoints, private endpoints, upstream and role assignments kept)");
        } else {
            vaults.push_back(v);
        }
        result.vaults.push_back(v["name"].as<std::string>());
    }
    result.warnings.insert(result.warnings.end(), imp.warnings.begin(), imp.warnings.end());

    fs::path out_dir = o.out_dir.empty() ? into_dir : fs::path(o.out_dir);
    if (o.into_text && fs::weakly_canonical(fs::absolute(out_dir)) != fs::weakly_canonical(fs::absolute(into_dir)))
        absolutize_paths(root, fs::absolute(into_dir));

    YAML::Emitter e;
    e << YAML::Comment("vaultwallctl import azure " + json_name + (o.into_text ? " --into " + o.into_path : ""));
    e << YAML::Newline << root;
    if (!e.good()) throw ImportError("cannot write the rule file: " + e.GetLastError());
    result.yaml = std::string(e.c_str()) + "\n";

    // Never hand out a file that `check` refuses.
    try {
        rules::parse_rule_text(result.yaml, "<imported>", out_dir.string());
    } catch (const rules::RuleFileError& err) {
        throw ImportError(std::string("the imported rule file does not pass check (please report this):\n") +
                          err.what());
    }
    return result;
}

}  // namespace vaultwall::migrate
