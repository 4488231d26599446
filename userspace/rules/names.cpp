#include "rules/names.hpp"

#include "rules/text.hpp"

#include <algorithm>
#include <cctype>
#include <map>

namespace vaultwall::rules {

namespace {

const std::map<std::string, std::vector<std::string>>& permission_table() {
    // Key Vault's access policy permissions (ARM `permissions` enum values).
    static const std::map<std::string, std::vector<std::string>> table = {
        {"secrets", {"all", "backup", "delete", "get", "list", "purge", "recover", "restore", "set"}},
        {"keys",
         {"all", "backup", "create", "decrypt", "delete", "encrypt", "get", "getrotationpolicy",
          "import", "list", "purge", "recover", "release", "restore", "rotate",
          "setrotationpolicy", "sign", "unwrapKey", "update", "verify", "wrapKey"}},
        {"certificates",
         {"all", "backup", "create", "delete", "deleteissuers", "get", "getissuers", "import",
          "list", "listissuers", "managecontacts", "manageissuers", "purge", "recover",
          "restore", "setissuers", "update"}},
        {"storage",
         {"all", "backup", "delete", "deletesas", "get", "getsas", "list", "listsas", "purge",
          "recover", "regeneratekey", "restore", "set", "setsas", "update"}},
    };
    return table;
}

std::optional<std::string> find_ci(std::string_view name, const std::vector<std::string>& list) {
    auto l = lower(name);
    for (const auto& c : list)
        if (lower(c) == l) return c;
    return std::nullopt;
}

std::size_t edit_distance(const std::string& a, const std::string& b) {
    std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        cur[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            std::size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
            cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
        }
        std::swap(prev, cur);
    }
    return prev[b.size()];
}

}  // namespace

const std::vector<std::string>& permission_kinds() {
    static const std::vector<std::string> kinds = {"secrets", "keys", "certificates", "storage"};
    return kinds;
}

const std::vector<std::string>& permission_names(std::string_view kind) {
    static const std::vector<std::string> none;
    auto it = permission_table().find(std::string(kind));
    return it == permission_table().end() ? none : it->second;
}

std::optional<std::string> canonical_permission(std::string_view kind, std::string_view name) {
    return find_ci(name, permission_names(kind));
}

const std::vector<std::string>& builtin_role_names() {
    static const std::vector<std::string> roles = {
        "Key Vault Administrator",
        "Key Vault Reader",
        "Key Vault Secrets Officer",
        "Key Vault Secrets User",
        "Key Vault Crypto Officer",
        "Key Vault Crypto User",
        "Key Vault Crypto Service Encryption User",
        "Key Vault Crypto Service Release User",
        "Key Vault Certificates Officer",
        "Key Vault Certificate User",
    };
    return roles;
}

std::optional<std::string> canonical_role(std::string_view name) {
    return find_ci(name, builtin_role_names());
}

const std::vector<std::string>& known_operations() {
    static const std::vector<std::string> ops = [] {
        std::vector<std::string> r;
        for (const auto& [kind, names] : permission_table())
            for (const auto& n : names)
                if (n != "all") r.push_back(kind + "/" + n);
        return r;
    }();
    return ops;
}

std::optional<std::string> canonical_operation(std::string_view op) {
    return find_ci(op, known_operations());
}

std::optional<std::string> closest_match(std::string_view word,
                                         const std::vector<std::string>& candidates) {
    // Plausible typo: a couple of edits, fewer than half the word.
    std::size_t limit = std::max<std::size_t>(1, std::min<std::size_t>(3, word.size() / 3));
    // Bounded work: no suggestion for a word longer than any name worth
    // suggesting, and no distance computed where the lengths alone rule it out
    // (25 references to a 20,000-character name once took 16 s).
    constexpr std::size_t kMaxWord = 128;
    if (word.size() > kMaxWord) return std::nullopt;
    auto w = lower(word);
    std::optional<std::string> best;
    std::size_t best_d = 0;
    for (const auto& c : candidates) {
        std::size_t gap = c.size() > w.size() ? c.size() - w.size() : w.size() - c.size();
        if (gap > limit) continue;
        auto d = edit_distance(w, lower(c));
        if (!best || d < best_d) {
            best = c;
            best_d = d;
        }
    }
    if (best && best_d <= limit && best_d < w.size()) return best;
    return std::nullopt;
}

}  // namespace vaultwall::rules
