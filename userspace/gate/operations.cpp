#include "gate/operations.hpp"

#include <algorithm>
#include <cctype>
#include <vector>

namespace vaultwall::gate {
namespace {

// A pattern segment: a literal (matched case-insensitively) or "{n}" (the
// object name), "{v}" (a version) or "{v?}" (an optional trailing version).
struct Route {
    const char* method;
    const char* pattern;
    const char* op;
    const char* action;  // relative to Microsoft.KeyVault/vaults/
};

#define S "secrets/"
#define K "keys/"
#define C "certificates/"

// First match wins; literal collection paths come before "{n}" ones.
const Route kRoutes[] = {
    // secrets
    {"GET", "/secrets", S "list", S "readMetadata/action"},
    {"POST", "/secrets/restore", S "restore", S "restore/action"},
    {"GET", "/secrets/{n}/versions", S "list", S "readMetadata/action"},
    {"POST", "/secrets/{n}/backup", S "backup", S "backup/action"},
    {"GET", "/secrets/{n}/{v?}", S "get", S "getSecret/action"},
    {"PUT", "/secrets/{n}", S "set", S "setSecret/action"},
    {"PATCH", "/secrets/{n}/{v?}", S "set", S "update/action"},
    {"DELETE", "/secrets/{n}", S "delete", S "delete"},
    {"GET", "/deletedsecrets", S "list", S "readMetadata/action"},
    {"GET", "/deletedsecrets/{n}", S "get", S "readMetadata/action"},
    {"POST", "/deletedsecrets/{n}/recover", S "recover", S "recover/action"},
    {"DELETE", "/deletedsecrets/{n}", S "purge", S "purge/action"},
    // keys
    {"GET", "/keys", K "list", K "read"},
    {"POST", "/keys/restore", K "restore", K "restore/action"},
    {"GET", "/keys/{n}/versions", K "list", K "read"},
    {"POST", "/keys/{n}/create", K "create", K "create/action"},
    {"POST", "/keys/{n}/backup", K "backup", K "backup/action"},
    {"POST", "/keys/{n}/rotate", K "rotate", K "rotate/action"},
    {"GET", "/keys/{n}/rotationpolicy", K "getrotationpolicy", "keyrotationpolicies/read"},
    {"PUT", "/keys/{n}/rotationpolicy", K "setrotationpolicy", "keyrotationpolicies/write"},
    {"POST", "/keys/{n}/{v?}/encrypt", K "encrypt", K "encrypt/action"},
    {"POST", "/keys/{n}/{v?}/decrypt", K "decrypt", K "decrypt/action"},
    {"POST", "/keys/{n}/{v?}/wrapkey", K "wrapKey", K "wrap/action"},
    {"POST", "/keys/{n}/{v?}/unwrapkey", K "unwrapKey", K "unwrap/action"},
    {"POST", "/keys/{n}/{v?}/sign", K "sign", K "sign/action"},
    {"POST", "/keys/{n}/{v?}/verify", K "verify", K "verify/action"},
    {"POST", "/keys/{n}/{v?}/release", K "release", K "release/action"},
    {"GET", "/keys/{n}/{v?}", K "get", K "read"},
    {"PUT", "/keys/{n}", K "import", K "import/action"},
    {"PATCH", "/keys/{n}/{v?}", K "update", K "update/action"},
    {"DELETE", "/keys/{n}", K "delete", K "delete"},
    {"GET", "/deletedkeys", K "list", K "read"},
    {"GET", "/deletedkeys/{n}", K "get", K "read"},
    {"POST", "/deletedkeys/{n}/recover", K "recover", K "recover/action"},
    {"DELETE", "/deletedkeys/{n}", K "purge", K "purge/action"},
    // certificates: contacts and issuers first (they look like names)
    {"GET", "/certificates/contacts", C "managecontacts", "certificatecontacts/read"},
    {"PUT", "/certificates/contacts", C "managecontacts", "certificatecontacts/write"},
    {"DELETE", "/certificates/contacts", C "managecontacts", "certificatecontacts/write"},
    {"GET", "/certificates/issuers", C "listissuers", "certificatecas/read"},
    {"GET", "/certificates/issuers/{i}", C "getissuers", "certificatecas/read"},
    {"PUT", "/certificates/issuers/{i}", C "setissuers", "certificatecas/write"},
    {"PATCH", "/certificates/issuers/{i}", C "setissuers", "certificatecas/write"},
    {"DELETE", "/certificates/issuers/{i}", C "deleteissuers", "certificatecas/delete"},
    {"GET", "/certificates", C "list", C "read"},
    {"POST", "/certificates/restore", C "restore", C "restore/action"},
    {"GET", "/certificates/{n}/versions", C "list", C "read"},
    {"POST", "/certificates/{n}/create", C "create", C "create/action"},
    {"POST", "/certificates/{n}/import", C "import", C "import/action"},
    {"POST", "/certificates/{n}/backup", C "backup", C "backup/action"},
    {"GET", "/certificates/{n}/policy", C "get", C "read"},
    {"PATCH", "/certificates/{n}/policy", C "update", C "update/action"},
    {"GET", "/certificates/{n}/pending", C "get", C "read"},
    {"PATCH", "/certificates/{n}/pending", C "update", C "update/action"},
    {"DELETE", "/certificates/{n}/pending", C "delete", C "delete"},
    {"POST", "/certificates/{n}/pending/merge", C "create", C "create/action"},
    {"GET", "/certificates/{n}/{v?}", C "get", C "read"},
    {"PATCH", "/certificates/{n}/{v?}", C "update", C "update/action"},
    {"DELETE", "/certificates/{n}", C "delete", C "delete"},
    {"GET", "/deletedcertificates", C "list", C "read"},
    {"GET", "/deletedcertificates/{n}", C "get", C "read"},
    {"POST", "/deletedcertificates/{n}/recover", C "recover", C "recover/action"},
    {"DELETE", "/deletedcertificates/{n}", C "purge", C "purge/action"},
};

#undef S
#undef K
#undef C

bool iequal(std::string_view a, std::string_view b) {
    return a.size() == b.size() &&
           std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower((unsigned char)x) == std::tolower((unsigned char)y);
           });
}

std::vector<std::string_view> split(std::string_view path) {
    std::vector<std::string_view> out;
    size_t i = 0;
    while (i < path.size()) {
        if (path[i] == '/') {
            ++i;
            continue;
        }
        size_t j = path.find('/', i);
        if (j == std::string_view::npos) j = path.size();
        out.push_back(path.substr(i, j - i));
        i = j;
    }
    return out;
}

// Key Vault object names: 1-127 of [0-9a-zA-Z-]. Versions: [0-9a-zA-Z]. We
// accept exactly that so a path can never smuggle "..", "%2F" or the like
// into a scope.
bool valid_name(std::string_view s) {
    if (s.empty() || s.size() > 127) return false;
    return std::all_of(s.begin(), s.end(), [](char c) { return std::isalnum((unsigned char)c) || c == '-'; });
}
bool valid_version(std::string_view s) {
    return !s.empty() && s.size() <= 64 &&
           std::all_of(s.begin(), s.end(), [](char c) { return std::isalnum((unsigned char)c); });
}

bool match(const Route& r, const std::vector<std::string_view>& segs, std::string& object) {
    auto pat = split(r.pattern);
    size_t si = 0;
    for (size_t pi = 0; pi < pat.size(); ++pi) {
        std::string_view p = pat[pi];
        if (p == "{v?}") {
            // Optional version: take it only if the remaining segments still fit.
            size_t rest_pat = pat.size() - pi - 1;
            if (segs.size() - si > rest_pat) {
                if (!valid_version(segs[si])) return false;
                ++si;
            }
            continue;
        }
        if (si >= segs.size()) return false;
        if (p == "{n}") {
            if (!valid_name(segs[si])) return false;
            object = std::string(segs[si]);
        } else if (p == "{i}") {
            if (!valid_name(segs[si])) return false;
        } else if (!iequal(p, segs[si])) {
            return false;
        }
        ++si;
    }
    return si == segs.size();
}

}  // namespace

std::optional<Operation> classify(std::string_view method, std::string_view target) {
    // The path ends at '?'. A '#' is not a delimiter here: a fragment has no
    // place in a request target (the proxy refuses it), and as part of a
    // segment it makes no valid name.
    auto q = target.find('?');
    std::string_view path = target.substr(0, q);
    if (path.empty() || path[0] != '/') return std::nullopt;
    // Refuse anything ambiguous: empty segments, dot segments, percent escapes.
    if (path.find("//") != std::string_view::npos || path.find('%') != std::string_view::npos) return std::nullopt;
    auto segs = split(path);
    for (auto s : segs)
        if (s == "." || s == "..") return std::nullopt;
    for (const auto& r : kRoutes) {
        if (method != r.method) continue;
        std::string object;
        if (!match(r, segs, object)) continue;
        Operation op;
        op.name = r.op;
        auto slash = op.name.find('/');
        op.kind = op.name.substr(0, slash);
        op.permission = op.name.substr(slash + 1);
        op.data_action = std::string("Microsoft.KeyVault/vaults/") + r.action;
        op.object = std::move(object);
        for (auto seg : segs) {
            op.target += '/';
            op.target += seg;
        }
        if (q != std::string_view::npos) op.target += target.substr(q);
        return op;
    }
    return std::nullopt;
}

}  // namespace vaultwall::gate
