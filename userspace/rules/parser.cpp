// Rule file parser (SPEC §2). Every problem becomes a Diagnostic with the
// file, 1-based line and column, what is wrong and how to fix it; all of them
// are collected before the file is rejected.
//
// Keys are matched after turning camelCase into snake_case, so the Azure
// spellings (`defaultAction`, `ipRules`, `publicNetworkAccess`...) name the
// same fields. Enum values are matched case-insensitively, ignoring `_`/`-`
// (`AzureServices` == `azure_services`).
#include "rules/parser.hpp"


#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <tuple>
#include <unordered_map>

#include "rules/names.hpp"
#include "rules/source.hpp"
#include "rules/yaml_doc.hpp"

namespace vaultwall::rules {

std::string Diagnostic::str() const {
    std::string s = pos.file;
    if (pos.line > 0) s += ":" + std::to_string(pos.line) + ":" + std::to_string(pos.col);
    return s + ": error: " + message;
}

namespace {
std::string join_diags(const std::vector<Diagnostic>& diags) {
    std::string s;
    for (const auto& d : diags) {
        if (!s.empty()) s += "\n";
        s += d.str();
    }
    return s;
}
}  // namespace

RuleFileError::RuleFileError(std::vector<Diagnostic> diags)
    : std::runtime_error(join_diags(diags)), diags_(std::move(diags)) {}

namespace {

namespace fs = std::filesystem;

// ---------------------------------------------------------------- text helpers

std::string lower(std::string_view s) {
    std::string r(s);
    for (auto& c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return r;
}

// "defaultAction" -> "default_action"; snake_case passes unchanged.
std::string camel_to_snake(std::string_view k) {
    std::string r;
    for (std::size_t i = 0; i < k.size(); ++i) {
        char c = k[i];
        if (std::isupper(static_cast<unsigned char>(c))) {
            bool prev_lower = i > 0 && (std::islower(static_cast<unsigned char>(k[i - 1])) ||
                                        std::isdigit(static_cast<unsigned char>(k[i - 1])));
            bool acronym_end = i > 0 && std::isupper(static_cast<unsigned char>(k[i - 1])) &&
                               i + 1 < k.size() &&
                               std::islower(static_cast<unsigned char>(k[i + 1]));
            if (prev_lower || acronym_end) r += '_';
            r += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        } else {
            r += c;
        }
    }
    return r;
}

std::string snake_to_camel(std::string_view k) {
    std::string r;
    bool up = false;
    for (char c : k) {
        if (c == '_') {
            up = true;
        } else {
            r += up ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : c;
            up = false;
        }
    }
    return r;
}

// Enum value normal form: lower case without '_', '-' and ' '.
std::string enum_norm(std::string_view s) {
    std::string r;
    for (char c : s)
        if (c != '_' && c != '-' && c != ' ')
            r += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return r;
}

std::string join(const std::vector<std::string>& v, const char* sep = ", ") {
    std::string r;
    for (const auto& s : v) {
        if (!r.empty()) r += sep;
        r += s;
    }
    return r;
}

// Offset of the first byte that is not part of well-formed UTF-8 (RFC 3629:
// no overlongs, no surrogates, nothing above U+10FFFF), or npos.
std::size_t invalid_utf8_at(std::string_view s) {
    std::size_t i = 0;
    const auto* b = reinterpret_cast<const unsigned char*>(s.data());
    const std::size_t n = s.size();
    while (i < n) {
        unsigned c = b[i];
        if (c < 0x80) {
            ++i;
            continue;
        }
        std::size_t len;
        unsigned lo = 0x80, hi = 0xBF;  // allowed range of the second byte
        if (c >= 0xC2 && c <= 0xDF) len = 2;
        else if (c == 0xE0) len = 3, lo = 0xA0;
        else if (c >= 0xE1 && c <= 0xEC) len = 3;
        else if (c == 0xED) len = 3, hi = 0x9F;
        else if (c >= 0xEE && c <= 0xEF) len = 3;
        else if (c == 0xF0) len = 4, lo = 0x90;
        else if (c >= 0xF1 && c <= 0xF3) len = 4;
        else if (c == 0xF4) len = 4, hi = 0x8F;
        else return i;
        if (i + len > n || b[i + 1] < lo || b[i + 1] > hi) return i;
        for (std::size_t k = 2; k < len; ++k)
            if (b[i + k] < 0x80 || b[i + k] > 0xBF) return i;
        i += len;
    }
    return std::string_view::npos;
}

SourcePos position_of(const std::string& name, std::string_view text, std::size_t offset) {
    int line = 1;
    std::size_t line_start = 0;
    for (std::size_t i = 0; i < offset && i < text.size(); ++i)
        if (text[i] == '\n') {
            ++line;
            line_start = i + 1;
        }
    return {name, line, static_cast<int>(offset - line_start) + 1};
}

// The error for text that is not UTF-8 (SPEC §2: rule files are UTF-8), at
// its first bad byte; nullopt when the text is UTF-8.
std::optional<Diagnostic> utf8_error(const std::string& name, std::string_view text,
                                     const char* what) {
    auto bad = invalid_utf8_at(text);
    if (bad == std::string_view::npos) return std::nullopt;
    char hex[8];
    std::snprintf(hex, sizeof hex, "0x%02x", static_cast<unsigned char>(text[bad]));
    return Diagnostic{position_of(name, text, bad), std::string("byte ") + hex +
                                                        " is not UTF-8; " + what +
                                                        " must be UTF-8 text (re-save it as UTF-8)"};
}

// A value quoted for a diagnostic: its first 64 bytes at most (a 64 KiB scalar
// quoted whole by a thousand diagnostics once cost 400 MiB), bytes that are
// not UTF-8 written as \xNN so every writer (JSON included) can carry it.
std::string q(std::string_view s, std::size_t kMax = 64) {
    std::string r = "'";
    std::size_t i = 0;
    while (i < s.size() && i < kMax) {
        std::size_t bad = invalid_utf8_at(s.substr(i, 4));
        unsigned char c = static_cast<unsigned char>(s[i]);
        if (bad == 0) {
            static const char* hex = "0123456789abcdef";
            r += "\\x";
            r += hex[c >> 4];
            r += hex[c & 15];
            ++i;
            continue;
        }
        std::size_t len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
        r.append(s.substr(i, len));
        i += len;
    }
    r += "'";
    if (i < s.size()) r += "... (" + std::to_string(s.size()) + " bytes)";
    return r;
}

const char* kind_of(const yaml::Node& n) {
    switch (n.kind()) {
        case yaml::Kind::map: return "a map";
        case yaml::Kind::sequence: return "a list";
        case yaml::Kind::scalar: return "a scalar";
        default: return "nothing";
    }
}

bool is_guid(std::string_view s) {
    if (s.size() != 36) return false;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') return false;
        } else if (!std::isxdigit(static_cast<unsigned char>(s[i]))) {
            return false;
        }
    }
    return true;
}

std::optional<std::uint64_t> parse_uint(std::string_view s) {
    if (s.empty() || s.size() > 12) return std::nullopt;
    std::uint64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
    return v;
}

std::optional<bool> parse_bool(std::string_view s) {
    auto l = lower(s);
    if (l == "true" || l == "yes" || l == "on") return true;
    if (l == "false" || l == "no" || l == "off") return false;
    return std::nullopt;
}

// A Key Vault object name in a scope: 1-127 of [0-9A-Za-z-].
bool is_object_name(std::string_view s) {
    if (s.empty() || s.size() > 127) return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-';
    });
}

bool is_vault_name(std::string_view s) {
    if (s.empty() || s.size() >= 64) return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
    });
}

// ---------------------------------------------------------------- ip_rules_file

// The ip_rules_file line scanner (SPEC §7). Hand-written because the format is
// not YAML: a million lines must not become a million YAML nodes.
void scan_ip_list(std::string_view text, const FileName& name, std::vector<IpRule>& out,
                  std::vector<Diagnostic>& errors) {
    if (auto bad = utf8_error(name, text, "an ip_rules_file")) {
        errors.push_back(*std::move(bad));
        return;
    }
    auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r'; };
    int line = 0;
    std::size_t at = 0;
    while (at < text.size()) {
        ++line;
        std::size_t eol = text.find('\n', at);
        if (eol == std::string_view::npos) eol = text.size();
        std::string_view l = text.substr(at, eol - at);
        at = eol + 1;
        if (auto hash = l.find('#'); hash != std::string_view::npos) l = l.substr(0, hash);
        std::size_t b = 0;
        while (b < l.size() && blank(l[b])) ++b;
        if (b == l.size()) continue;
        std::size_t e = b;
        while (e < l.size() && !blank(l[e])) ++e;
        std::string_view token = l.substr(b, e - b);
        SourcePos pos{name, line, static_cast<int>(b) + 1};
        std::size_t extra = e;
        while (extra < l.size() && blank(l[extra])) ++extra;
        if (extra < l.size()) {
            std::size_t end = extra;
            while (end < l.size() && !blank(l[end])) ++end;
            errors.push_back({{name, line, static_cast<int>(extra) + 1},
                              "a second value " + q(l.substr(extra, end - extra)) +
                                  " on this line; write one address or CIDR per line "
                                  "(`#` starts a comment)"});
            continue;
        }
        auto p = parse_ipv4_prefix(token);
        if (!p) {
            errors.push_back({pos, q(token) +
                                       " is not an IPv4 prefix; write an address (192.0.2.7) or "
                                       "a network with its length (192.0.2.0/24)"});
            continue;
        }
        if (p->host_bits_set) {
            errors.push_back({pos, std::string(token) + " has host bits set; did you mean " +
                                       p->prefix.str() + "?"});
            continue;
        }
        out.push_back({p->prefix, std::move(pos)});
    }
}

// ---------------------------------------------------------------- YAML access

struct Field {
    yaml::Node key;
    yaml::Node value;
};

// The keys of one YAML map, by canonical (snake_case) name.
class Fields {
public:
    const Field* get(const std::string& k) const {
        auto it = m_.find(k);
        return it == m_.end() ? nullptr : &it->second;
    }
    void put(const std::string& k, Field f) { m_.emplace(k, std::move(f)); }

private:
    std::map<std::string, Field> m_;
};

// Allowed keys of a map: canonical name plus accepted aliases.
struct KeySpec {
    std::string name;
    std::vector<std::string> aliases = {};
};

struct EndpointText {
    std::uint32_t addr = 0;
    std::uint16_t port = 0;
    Proto proto = Proto::tcp;
};

// The highest host.drop_events_per_second: beyond it the ring buffer, not the
// limit, decides what is lost.
constexpr std::uint64_t kMaxDropEventsPerSecond = 1'000'000;

// ---------------------------------------------------------------- the parser

class Parser;
std::optional<yaml::Node> load_yaml(std::string_view text, Parser& p, const std::string& name,
                                    const char* what);

class Parser {
public:
    Parser(std::string file, std::string base_dir, const FileSource& source)
        : file_(std::move(file)), base_dir_(std::move(base_dir)), source_(source) {}

    std::vector<Diagnostic> errors;
    std::vector<std::string> warnings;
    std::vector<std::string> files;  // read through source_, in order

    // The bytes of `path` (absolute), or nullopt with an error at `at`.
    std::optional<std::string> read_named(const std::string& path, const std::string& what,
                                          const SourcePos& at) {
        try {
            if (auto bytes = source_.read(path)) {
                files.push_back(path);
                return bytes;
            }
            error_at(at, "cannot read " + what + " " + q(path, 1024) +
                             ": no such file; fix the path (relative to this file)");
        } catch (const SourceError& e) {
            error_at(at, "cannot read " + what + " " + q(path, 1024) + ": it " + e.what());
        }
        return std::nullopt;
    }

    RuleFile parse_rule_file(const yaml::Node& root);
    std::vector<TrustedService> parse_catalog(const yaml::Node& root);

    void error_at(SourcePos p, std::string msg) { errors.push_back({std::move(p), std::move(msg)}); }

    SourcePos pos(const yaml::Node& n) const {
        auto m = n.Mark();
        if (m.is_null()) return {file_, 0, 0};
        return {file_, m.line + 1, m.column + 1};
    }

private:
    FileName file_;
    std::string base_dir_;
    const FileSource& source_;

    // Diagnostics ------------------------------------------------------------
    void error(const yaml::Node& at, std::string msg) { error_at(pos(at), std::move(msg)); }
    void error(const Field& f, std::string msg) { error(where(f), std::move(msg)); }
    void warn(const SourcePos& p, const std::string& msg) {
        std::string s = p.file;
        if (p.line > 0) s += ":" + std::to_string(p.line) + ":" + std::to_string(p.col);
        warnings.push_back(s + ": warning: " + msg);
    }
    // Where to point for a value: the value itself, or its key when empty.
    static const yaml::Node& where(const Field& f) {
        return f.value.Mark().is_null() || f.value.IsNull() ? f.key : f.value;
    }
    static std::string at_text(const SourcePos& p) {
        return "line " + std::to_string(p.line) + ", col " + std::to_string(p.col);
    }

    // Typed access -------------------------------------------------------------
    std::optional<Fields> map_fields(const yaml::Node& n, const std::string& what,
                                     const std::vector<KeySpec>& allowed);
    bool require(const Fields& f, const yaml::Node& map, const std::string& key,
                 const std::string& what, const std::string& example);
    std::optional<std::string> scalar(const Field& f, const std::string& what);
    std::optional<std::string> nonempty(const Field& f, const std::string& what);
    std::optional<yaml::Node> list(const Field& f, const std::string& what);
    std::optional<std::vector<std::string>> string_list(const Field& f, const std::string& what);
    std::optional<bool> boolean(const Field& f, const std::string& what);
    template <typename E>
    std::optional<E> enumeration(const Field& f, const std::string& what,
                                 const std::vector<std::pair<std::string, E>>& values);
    std::optional<Ipv4Prefix> prefix(const yaml::Node& n, const std::string& what);
    std::optional<EndpointText> endpoint(const yaml::Node& n, const std::string& what);
    std::string resolve(const std::string& p) const;

    // Sections -----------------------------------------------------------------
    void parse_version(const Fields& f, const yaml::Node& root, RuleFile& rf);
    void parse_host(const Field& f, Host& host);
    void parse_identity(const Field& f, Identity& id);
    void parse_issuer(const yaml::Node& n, Identity& id);
    void parse_trusted_services(const Field& f, RuleFile& rf);
    void parse_gate(const Field& f, RuleFile& rf);
    void parse_metrics(const Field& f, RuleFile& rf);
    void parse_vnets(const Field& f, RuleFile& rf);
    void parse_vnet(const yaml::Node& n, RuleFile& rf);
    void parse_vaults(const Field& f, RuleFile& rf);
    void parse_vault(const yaml::Node& n, Vault& v);
    void parse_endpoints(const Field& f, Vault& v);
    void parse_private_endpoints(const Field& f, Vault& v);
    void parse_network_acls(const Field& f, Vault& v);
    void parse_ip_rule(const yaml::Node& n, Vault& v);
    void merge_duplicate_ip_rules(Vault& v);
    void parse_vnet_rule(const yaml::Node& n, Vault& v);
    void parse_access_policy(const yaml::Node& n, Vault& v);
    void parse_role_assignment(const yaml::Node& n, Vault& v);
    void check_endpoint_owners(const RuleFile& rf);
    const Vnet* find_vnet(const std::string& name, const yaml::Node& at,
                          const std::string& context);
    TrustedService parse_service(const yaml::Node& n,
                                 std::map<std::string, SourcePos>& ids);

    const std::vector<Vnet>* vnets_ = nullptr;  // the file's, known while vaults are parsed
    std::unordered_map<std::string, std::size_t> vnet_names_;  // name -> index in *vnets_
    std::unordered_map<std::uint32_t, std::size_t> vnis_;      // VNI -> index in *vnets_
    // Per vault: what its rules hold so far, to merge duplicates in O(1).
    std::map<std::pair<std::uint32_t, std::uint64_t>, std::size_t> vnet_rule_seen_;
};

std::optional<Fields> Parser::map_fields(const yaml::Node& n, const std::string& what,
                                         const std::vector<KeySpec>& allowed) {
    if (!n.IsMap()) {
        error(n, what + " must be a map of keys, got " + kind_of(n));
        return std::nullopt;
    }
    std::vector<std::string> names;
    for (const auto& k : allowed) names.push_back(k.name);
    Fields out;
    std::map<std::string, SourcePos> seen;
    for (auto it = n.begin(); it != n.end(); ++it) {
        const yaml::Node& key = it->first;
        if (!key.IsScalar()) {
            error(key, "keys in " + what + " must be plain names, got " + kind_of(key));
            continue;
        }
        std::string raw = key.Scalar();
        std::string snake = camel_to_snake(raw);
        const KeySpec* spec = nullptr;
        for (const auto& k : allowed) {
            if (k.name == snake ||
                std::find(k.aliases.begin(), k.aliases.end(), snake) != k.aliases.end()) {
                spec = &k;
                break;
            }
        }
        if (!spec) {
            std::string msg = "unknown key " + q(raw) + " in " + what;
            bool camel = raw.find_first_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ") != std::string::npos;
            if (auto s = closest_match(snake, names))
                msg += "; did you mean " + q(camel ? snake_to_camel(*s) : *s) + "?";
            else
                msg += "; expected one of: " + join(names);
            error(key, msg);
            continue;
        }
        if (auto d = seen.find(spec->name); d != seen.end()) {
            error(key, "duplicate key " + q(raw) + " in " + what + " (first at " +
                           at_text(d->second) + "); keep only one");
            continue;
        }
        seen.emplace(spec->name, pos(key));
        out.put(spec->name, Field{key, it->second});
    }
    return out;
}

bool Parser::require(const Fields& f, const yaml::Node& map, const std::string& key,
                     const std::string& what, const std::string& example) {
    if (f.get(key)) return true;
    error(map, "missing required key " + q(key) + " in " + what + "; add e.g. `" + example + "`");
    return false;
}

std::optional<std::string> Parser::scalar(const Field& f, const std::string& what) {
    if (!f.value.IsScalar()) {
        error(f, what + " must be a single value, got " + kind_of(f.value));
        return std::nullopt;
    }
    return f.value.Scalar();
}

std::optional<std::string> Parser::nonempty(const Field& f, const std::string& what) {
    auto s = scalar(f, what);
    if (s && s->empty()) {
        error(f, what + " is empty; give it a value");
        return std::nullopt;
    }
    return s;
}

// The sequence itself (iterate it; `key:` with nothing is an empty list), not
// a copy of its million entries.
std::optional<yaml::Node> Parser::list(const Field& f, const std::string& what) {
    if (f.value.IsNull()) return yaml::Node();
    if (!f.value.IsSequence()) {
        error(f, what + " must be a list, got " + kind_of(f.value) +
                     "; write `[a, b]` or one `- item` per line");
        return std::nullopt;
    }
    return f.value;
}

std::optional<std::vector<std::string>> Parser::string_list(const Field& f,
                                                            const std::string& what) {
    auto items = list(f, what);
    if (!items) return std::nullopt;
    std::vector<std::string> r;
    bool ok = true;
    for (const auto& n : *items) {
        if (!n.IsScalar()) {
            error(n, "each entry of " + what + " must be a single value, got " + kind_of(n));
            ok = false;
        } else {
            r.push_back(n.Scalar());
        }
    }
    if (!ok) return std::nullopt;
    return r;
}

std::optional<bool> Parser::boolean(const Field& f, const std::string& what) {
    auto s = scalar(f, what);
    if (!s) return std::nullopt;
    auto b = parse_bool(*s);
    if (!b) error(f, what + " must be true or false, got " + q(*s));
    return b;
}

template <typename E>
std::optional<E> Parser::enumeration(const Field& f, const std::string& what,
                                     const std::vector<std::pair<std::string, E>>& values) {
    auto s = scalar(f, what);
    if (!s) return std::nullopt;
    std::vector<std::string> names;
    for (const auto& [name, value] : values) {
        if (enum_norm(name) == enum_norm(*s)) return value;
        names.push_back(name);
    }
    std::string msg = "bad value " + q(*s) + " for " + what + "; expected " + join(names, " or ");
    if (auto c = closest_match(*s, names)) msg += " (did you mean " + q(*c) + "?)";
    error(f, msg);
    return std::nullopt;
}

std::optional<Ipv4Prefix> Parser::prefix(const yaml::Node& n, const std::string& what) {
    if (!n.IsScalar()) {
        error(n, what + " must be an IPv4 address or prefix like 192.0.2.0/24, got " +
                     kind_of(n));
        return std::nullopt;
    }
    const std::string& s = n.Scalar();
    auto p = parse_ipv4_prefix(s);
    if (!p) {
        error(n, q(s) + " in " + what +
                     " is not an IPv4 prefix; write an address (192.0.2.7) or a network "
                     "with its length (192.0.2.0/24)");
        return std::nullopt;
    }
    if (p->host_bits_set) {
        error(n, s + " has host bits set; did you mean " + p->prefix.str() + "?");
        return std::nullopt;
    }
    return p->prefix;
}

// "203.0.113.10:443", optionally "/tcp" or "/udp".
std::optional<EndpointText> Parser::endpoint(const yaml::Node& n, const std::string& what) {
    const char* fix = "; write IPv4:port, e.g. 203.0.113.10:443";
    if (!n.IsScalar()) {
        error(n, what + " must be an IPv4:port endpoint, got " + std::string(kind_of(n)) + fix);
        return std::nullopt;
    }
    std::string s = n.Scalar();
    EndpointText ep;
    std::string text = s;
    if (auto slash = text.rfind('/'); slash != std::string::npos) {
        auto proto = lower(text.substr(slash + 1));
        if (proto == "tcp") ep.proto = Proto::tcp;
        else if (proto == "udp") ep.proto = Proto::udp;
        else {
            error(n, "unknown protocol " + q(text.substr(slash + 1)) + " in " + what + " " + q(s) + "; use /tcp or /udp, or leave it out for TCP");
            return std::nullopt;
        }
        text = text.substr(0, slash);
    }
    auto colon = text.rfind(':');
    std::optional<std::uint32_t> addr;
    if (colon != std::string::npos) addr = parse_ipv4(text.substr(0, colon));
    if (colon == std::string::npos || !addr) {
        error(n, q(s) + " in " + what + " is not an IPv4:port endpoint" + fix);
        return std::nullopt;
    }
    auto port = parse_uint(text.substr(colon + 1));
    if (!port) {
        error(n, q(s) + " in " + what + " has no valid port" + fix);
        return std::nullopt;
    }
    if (*port == 0 || *port > 65535) {
        error(n, "port " + std::to_string(*port) + " in " + what + " " + q(s) + " is out of range; use 1..65535");
        return std::nullopt;
    }
    ep.addr = *addr;
    ep.port = static_cast<std::uint16_t>(*port);
    return ep;
}

std::string Parser::resolve(const std::string& p) const {
    fs::path path(p);
    if (path.is_absolute()) return path.lexically_normal().string();
    fs::path base = base_dir_.empty() ? fs::current_path() : fs::path(base_dir_);
    return fs::absolute(base / path).lexically_normal().string();
}

// ---------------------------------------------------------------- top level

RuleFile Parser::parse_rule_file(const yaml::Node& root) {
    RuleFile rf;
    rf.path = file_;
    vnets_ = &rf.vnets;
    if (root.IsNull()) {
        error_at({file_, 1, 1}, "the rule file is empty; it needs at least `version: 1`");
        return rf;
    }
    auto f = map_fields(root, "the rule file",
                        {{"version"}, {"host"}, {"identity"}, {"trusted_services"}, {"gate"},
                         {"metrics"}, {"drop_log"}, {"vnets"}, {"vaults"}});
    if (!f) return rf;
    if (auto x = f->get("drop_log"))
        if (auto s = nonempty(*x, "drop_log")) rf.drop_log = resolve(*s);
    parse_version(*f, root, rf);
    if (auto x = f->get("host")) parse_host(*x, rf.host);
    if (auto x = f->get("identity")) parse_identity(*x, rf.identity);
    if (auto x = f->get("trusted_services")) parse_trusted_services(*x, rf);
    if (auto x = f->get("gate")) parse_gate(*x, rf);
    if (auto x = f->get("metrics")) parse_metrics(*x, rf);
    if (auto x = f->get("vnets")) parse_vnets(*x, rf);  // before vaults: they refer to VNets
    if (auto x = f->get("vaults")) parse_vaults(*x, rf);
    if (rf.gate) {
        for (const auto& v : rf.vaults)
            if (v.upstream.empty())
                error_at(v.pos, "vault " + q(v.name) + " has no upstream, but the gate forwards to it; add e.g. "
                                    "`upstream: http://127.0.0.1:8200`");
    }
    return rf;
}

void Parser::parse_version(const Fields& f, const yaml::Node& root, RuleFile& rf) {
    if (!require(f, root, "version", "the rule file", "version: 1")) return;
    const Field& v = *f.get("version");
    auto s = scalar(v, "version");
    if (!s) return;
    auto n = parse_uint(*s);
    if (!n || *n != 1) {
        error(v, "unsupported version " + q(*s) + "; this vaultwall reads `version: 1`");
        return;
    }
    rf.version = 1;
}

void Parser::parse_host(const Field& fld, Host& host) {
    auto f = map_fields(fld.value, "host", {{"vxlan_port"}, {"vteps"}, {"drop_events_per_second"}});
    if (!f) return;
    if (auto x = f->get("drop_events_per_second")) {
        if (auto s = scalar(*x, "host.drop_events_per_second")) {
            auto n = parse_uint(*s);
            if (!n || *n > kMaxDropEventsPerSecond)
                error(*x, "host.drop_events_per_second " + q(*s) +
                              " is not a rate; use 0.." + std::to_string(kMaxDropEventsPerSecond) +
                              " events a second per CPU (default 1000; 0 counts drops without "
                              "sending events)");
            else
                host.drop_events_per_second = static_cast<std::uint32_t>(*n);
        }
    }
    if (auto x = f->get("vxlan_port")) {
        if (auto s = scalar(*x, "host.vxlan_port")) {
            auto n = parse_uint(*s);
            if (!n || *n == 0 || *n > 65535)
                error(*x, "host.vxlan_port " + q(*s) + " is not a UDP port; use 1..65535 (default 4789)");
            else
                host.vxlan_port = static_cast<std::uint16_t>(*n);
        }
    }
    if (auto x = f->get("vteps")) {
        auto items = list(*x, "host.vteps");
        if (!items) return;
        std::map<std::pair<std::uint32_t, std::uint8_t>, SourcePos> seen;
        for (const auto& n : *items) {
            auto p = prefix(n, "host.vteps");
            if (!p) continue;
            auto [it, fresh] = seen.emplace(std::make_pair(p->addr, p->len), pos(n));
            if (!fresh) {
                warn(pos(n), "duplicate VTEP prefix " + p->str() + " (first at " +
                                 at_text(it->second) + "); merged");
                continue;
            }
            host.vteps.push_back(*p);
        }
    }
}

void Parser::parse_identity(const Field& fld, Identity& id) {
    auto f = map_fields(fld.value, "identity", {{"audience"}, {"authority"}, {"issuers"}});
    if (!f) return;
    if (auto x = f->get("audience"))
        if (auto s = nonempty(*x, "identity.audience")) id.audience = *s;
    if (auto x = f->get("authority")) {
        if (auto s = nonempty(*x, "identity.authority")) {
            if (s->rfind("https://", 0) != 0 && s->rfind("http://", 0) != 0)
                error(*x, "identity.authority " + q(*s) + " is not a URL; write e.g. https://login.microsoftonline.com");
            else
                id.authority = *s;
        }
    }
    if (auto x = f->get("issuers")) {
        if (auto items = list(*x, "identity.issuers"))
            for (const auto& n : *items) parse_issuer(n, id);
    }
}

void Parser::parse_issuer(const yaml::Node& n, Identity& id) {
    auto f = map_fields(n, "an identity issuer", {{"issuer"}, {"jwks_file"}, {"jwks_url"}});
    if (!f) return;
    Issuer is;
    bool ok = require(*f, n, "issuer", "an identity issuer",
                      "issuer: https://sts.example/TENANT/");
    if (auto x = f->get("issuer")) {
        if (auto s = nonempty(*x, "issuer")) is.issuer = *s;
        else ok = false;
    }
    if (auto x = f->get("jwks_file")) {
        if (auto s = nonempty(*x, "jwks_file")) is.jwks_file = resolve(*s);
        else ok = false;
    }
    if (auto x = f->get("jwks_url")) {
        if (auto s = nonempty(*x, "jwks_url")) {
            if (s->rfind("https://", 0) != 0) {
                error(*x, "jwks_url " + q(*s) + " must be an https:// URL");
                ok = false;
            } else {
                is.jwks_url = *s;
            }
        } else {
            ok = false;
        }
    }
    if (!f->get("jwks_file") && !f->get("jwks_url")) {
        error(n, "identity issuer has no keys; add `jwks_file: PATH` or `jwks_url: https://...`");
        ok = false;
    }
    if (ok) id.issuers.push_back(std::move(is));
}

void Parser::parse_trusted_services(const Field& f, RuleFile& rf) {
    auto s = nonempty(f, "trusted_services");
    if (!s) return;
    rf.trusted_services_file = resolve(*s);
    auto text = read_named(rf.trusted_services_file, "trusted-services catalog", pos(where(f)));
    if (!text) return;
    Parser sub(rf.trusted_services_file, fs::path(rf.trusted_services_file).parent_path(),
               source_);
    if (auto root = load_yaml(*text, sub, rf.trusted_services_file, "a trusted-services catalog"))
        rf.trusted_services = sub.parse_catalog(*root);
    for (auto& d : sub.errors) errors.push_back(std::move(d));
    for (auto& w : sub.warnings) warnings.push_back(std::move(w));
}

void Parser::parse_gate(const Field& fld, RuleFile& rf) {
    auto f = map_fields(fld.value, "gate", {{"tls_cert"}, {"tls_key"}, {"audit_log"}});
    if (!f) return;
    Gate g;
    bool ok = require(*f, fld.value, "tls_cert", "gate", "tls_cert: certs/vault.pem");
    ok = require(*f, fld.value, "tls_key", "gate", "tls_key: certs/vault.key") && ok;
    if (auto x = f->get("tls_cert")) {
        if (auto s = nonempty(*x, "gate.tls_cert")) g.tls_cert = resolve(*s);
        else ok = false;
    }
    if (auto x = f->get("tls_key")) {
        if (auto s = nonempty(*x, "gate.tls_key")) g.tls_key = resolve(*s);
        else ok = false;
    }
    if (auto x = f->get("audit_log")) {
        if (auto s = nonempty(*x, "gate.audit_log")) g.audit_log = resolve(*s);
        else ok = false;
    }
    if (ok) rf.gate = std::move(g);
}

void Parser::parse_metrics(const Field& f, RuleFile& rf) {
    auto ep = endpoint(f.value.IsNull() ? f.key : f.value, "metrics");
    if (!ep) return;
    if ((ep->addr >> 24) != 127)
        warn(pos(where(f)), "metrics listens on " + format_ipv4(ep->addr) +
                                ", not on loopback; anyone who reaches it can read the counters");
    rf.metrics = format_ipv4(ep->addr) + ":" + std::to_string(ep->port);
}

// ---------------------------------------------------------------- vnets

void Parser::parse_vnets(const Field& f, RuleFile& rf) {
    auto items = list(f, "vnets");
    if (!items) return;
    for (const auto& n : *items) parse_vnet(n, rf);
}

void Parser::parse_vnet(const yaml::Node& n, RuleFile& rf) {
    auto f = map_fields(n, "a vnet", {{"name"}, {"vni"}, {"subnets"}});
    if (!f) return;
    Vnet v;
    v.pos = pos(n);
    bool ok = require(*f, n, "name", "a vnet", "name: prod-vnet");
    ok = require(*f, n, "vni", "a vnet", "vni: 5001") && ok;
    if (auto x = f->get("name")) {
        auto s = nonempty(*x, "vnet name");
        if (s && s->find('/') != std::string::npos) {
            error(*x, "vnet name " + q(*s) + " must not contain '/' (rules say VNET/SUBNET)");
            ok = false;
        } else if (s) {
            v.name = *s;
            if (auto o = vnet_names_.find(v.name); o != vnet_names_.end()) {
                    error(*x, "duplicate vnet name " + q(v.name) + " (first at " + at_text(rf.vnets[o->second].pos) +
                                  "); give every VNet its own name");
                    ok = false;
                }
        } else {
            ok = false;
        }
    }
    if (auto x = f->get("vni")) {
        auto s = scalar(*x, "vni");
        auto num = s ? parse_uint(*s) : std::nullopt;
        if (s && (!num || *num < 1 || *num > 16777215)) {
            error(*x, "VNI " + q(*s) + " is out of range; use 1..16777215");
            ok = false;
        } else if (num) {
            v.vni = static_cast<std::uint32_t>(*num);
            if (auto it = vnis_.find(v.vni); it != vnis_.end()) {
                    const Vnet& o = rf.vnets[it->second];
                    error(*x, "duplicate VNI " + std::to_string(v.vni) + ": VNet " + q(o.name) + " (at " + at_text(o.pos) +
                                  ") already uses it; every VNet needs its own VNI");
                    ok = false;
                }
        } else {
            ok = false;
        }
    }
    if (auto x = f->get("subnets")) {
        if (x->value.IsNull()) {
            // no subnets: allowed (private endpoints only)
        } else if (!x->value.IsMap()) {
            error(*x, "subnets must be a map of NAME: PREFIX, e.g. `app: 198.19.1.0/24`, got " +
                          std::string(kind_of(x->value)));
            ok = false;
        } else {
            std::unordered_map<std::string, std::size_t> subnet_names;
            for (auto it = x->value.begin(); it != x->value.end(); ++it) {
                if (!it->first.IsScalar()) {
                    error(it->first, "subnet names must be plain names");
                    continue;
                }
                std::string name = it->first.Scalar();
                if (name.empty() || name.find('/') != std::string::npos) {
                    error(it->first, "subnet name " + q(name) + " must be non-empty without '/'");
                    continue;
                }
                auto [dup_at, fresh] = subnet_names.emplace(name, v.subnets.size());
                if (!fresh) {
                    auto dup = v.subnets.begin() + static_cast<std::ptrdiff_t>(dup_at->second);
                    error(it->first, "duplicate subnet " + q(name) + " (first at " +
                                         at_text(dup->pos) + ")");
                    continue;
                }
                auto p = prefix(it->second, "subnet " + q(name));
                if (p) v.subnets.push_back({name, *p, pos(it->first)});
                else subnet_names.erase(name);
            }
        }
    }
    if (ok) {
        vnet_names_.emplace(v.name, rf.vnets.size());
        vnis_.emplace(v.vni, rf.vnets.size());
        rf.vnets.push_back(std::move(v));
    }
}

const Vnet* Parser::find_vnet(const std::string& name, const yaml::Node& at,
                              const std::string& context) {
    if (auto it = vnet_names_.find(name); it != vnet_names_.end()) return &(*vnets_)[it->second];
    std::string msg = "unknown VNet " + q(name) + " in " + context;
    // Suggestions are worth their cost for a hand-written list, not for 100k VNets.
    if (vnets_->size() > 1000) {
        error(at, msg + "; it is not among the file's " + std::to_string(vnets_->size()) + " VNets");
        return nullptr;
    }
    std::vector<std::string> names;
    for (const auto& v : *vnets_) names.push_back(v.name);
    if (auto s = closest_match(name, names))
        msg += "; did you mean " + q(*s) + "?";
    else if (names.empty())
        msg += "; no VNets are defined: add it under `vnets:`";
    else
        msg += "; known VNets: " + join(names);
    error(at, msg);
    return nullptr;
}

// ---------------------------------------------------------------- vaults

void Parser::parse_vaults(const Field& f, RuleFile& rf) {
    auto items = list(f, "vaults");
    if (!items) return;
    std::map<std::string, std::pair<std::string, SourcePos>> names;  // by lower-case name
    for (const auto& n : *items) {
        Vault v;
        v.pos = pos(n);
        std::size_t before = errors.size();
        parse_vault(n, v);
        if (!v.name.empty()) {
            // Key Vault names are case-insensitive (the gate compares them so).
            auto [it, fresh] = names.emplace(lower(v.name), std::make_pair(v.name, v.pos));
            if (!fresh)
                error_at(v.pos, "duplicate vault name " + q(v.name) + " (first at " +
                                    at_text(it->second.second) +
                                    (it->second.first == v.name
                                         ? std::string()
                                         : ", spelled " + q(it->second.first)) +
                                    "); vault names must be unique, ignoring case as Key Vault "
                                    "does");
        }
        if (errors.size() == before) rf.vaults.push_back(std::move(v));
    }
    check_endpoint_owners(rf);
}

void Parser::parse_vault(const yaml::Node& n, Vault& v) {
    vnet_rule_seen_.clear();
    auto f = map_fields(n, "a vault",
                        {{"name"},
                         {"tenant_id"},
                         {"subscription_id"},
                         {"location"},
                         {"endpoints"},
                         {"private_endpoints"},
                         {"upstream"},
                         {"public_network_access"},
                         {"network_acls"},
                         {"authorization"},
                         {"enable_rbac_authorization"},
                         {"access_policies"},
                         {"role_assignments"}});
    if (!f) return;
    require(*f, n, "name", "a vault", "name: contoso-prod");
    std::string what = "vault";
    if (auto x = f->get("name")) {
        if (auto s = nonempty(*x, "vault name")) {
            if (!is_vault_name(*s))
                error(*x, "vault name " + q(*s) + " is not valid; use up to 63 letters, digits, '-', '_' or '.'");
            else
                v.name = *s;
            what = "vault " + q(*s);
        }
    }
    require(*f, n, "tenant_id", what, "tenant_id: 3f1c9a52-7d0e-4b8a-9c11-5e2f0a6d4b10");
    if (auto x = f->get("tenant_id")) {
        if (auto s = nonempty(*x, "tenant_id")) {
            if (!is_guid(*s))
                error(*x, "tenant_id " + q(*s) + " is not a GUID; write it like 3f1c9a52-7d0e-4b8a-9c11-5e2f0a6d4b10");
            else
                v.tenant_id = lower(*s);
        }
    }
    if (auto x = f->get("subscription_id")) {
        if (auto s = nonempty(*x, "subscription_id")) {
            if (!is_guid(*s))
                error(*x, "subscription_id " + q(*s) + " is not a GUID; write it like 0b1f6471-1bf0-4dda-aec3-cb9272f09590");
            else
                v.subscription_id = lower(*s);
        }
    }
    if (auto x = f->get("location"))
        if (auto s = scalar(*x, "location")) v.location = *s;
    if (auto x = f->get("upstream")) {
        if (auto s = nonempty(*x, "upstream")) {
            if (s->rfind("http://", 0) != 0 && s->rfind("https://", 0) != 0)
                error(*x, "upstream " + q(*s) + " is not a URL; write e.g. http://127.0.0.1:8200");
            else
                v.upstream = *s;
        }
    }
    if (auto x = f->get("endpoints")) parse_endpoints(*x, v);
    if (auto x = f->get("private_endpoints")) parse_private_endpoints(*x, v);
    if (auto x = f->get("public_network_access")) {
        if (auto e = enumeration<bool>(*x, "public_network_access",
                                       {{"enabled", true}, {"disabled", false}}))
            v.public_network_access = *e;
    }
    if (auto x = f->get("network_acls")) parse_network_acls(*x, v);

    std::optional<Authorization> mode;
    if (auto x = f->get("authorization"))
        mode = enumeration<Authorization>(
            *x, "authorization",
            {{"access_policies", Authorization::access_policies}, {"rbac", Authorization::rbac}});
    if (auto x = f->get("enable_rbac_authorization")) {
        if (auto b = boolean(*x, "enable_rbac_authorization")) {
            auto m = *b ? Authorization::rbac : Authorization::access_policies;
            if (mode && *mode != m)
                error(*x, "enable_rbac_authorization contradicts `authorization`; keep one of them");
            mode = m;
        }
    }
    if (mode) v.authorization = *mode;
    if (auto x = f->get("access_policies")) {
        if (auto items = list(*x, "access_policies"))
            for (const auto& p : *items) parse_access_policy(p, v);
    }
    if (auto x = f->get("role_assignments")) {
        if (auto items = list(*x, "role_assignments"))
            for (const auto& p : *items) parse_role_assignment(p, v);
    }
    // access_policies and role_assignments may both be present (SPEC §2's
    // example has both): `authorization` picks the one in force, so switching
    // modes is a one-line change.
    if (!f->get("endpoints") && !f->get("private_endpoints"))
        warn(v.pos, what + " has no endpoints or private_endpoints; nothing reaches it");
}

void Parser::parse_endpoints(const Field& f, Vault& v) {
    auto items = list(f, "endpoints");
    if (!items) return;
    std::unordered_map<std::uint64_t, std::size_t> seen;  // (addr, port, proto) -> index
    for (const auto& n : *items) {
        auto ep = endpoint(n, "endpoints");
        if (!ep) continue;
        Endpoint e{ep->addr, ep->port, ep->proto, pos(n)};
        auto key = std::uint64_t(e.addr) << 24 | std::uint64_t(e.port) << 8 | static_cast<std::uint8_t>(e.proto);
        auto [at, fresh] = seen.emplace(key, v.endpoints.size());
        if (!fresh) {
            auto dup = v.endpoints.begin() + static_cast<std::ptrdiff_t>(at->second);
            warn(e.pos, "duplicate endpoint " + n.Scalar() + " (first at " + at_text(dup->pos) +
                            "); merged");
            continue;
        }
        v.endpoints.push_back(e);
    }
}

void Parser::parse_private_endpoints(const Field& f, Vault& v) {
    auto items = list(f, "private_endpoints");
    if (!items) return;
    std::map<std::tuple<std::uint32_t, std::uint32_t, std::uint16_t, int>, std::size_t> seen;
    for (const auto& n : *items) {
        auto pf = map_fields(n, "a private endpoint", {{"vnet"}, {"address"}});
        if (!pf) continue;
        bool ok = require(*pf, n, "vnet", "a private endpoint", "vnet: prod-vnet");
        ok = require(*pf, n, "address", "a private endpoint", "address: 198.19.1.100:443") && ok;
        if (!ok) continue;
        PrivateEndpoint pe;
        const Vnet* vnet = nullptr;
        if (auto s = nonempty(*pf->get("vnet"), "private endpoint vnet")) {
            vnet = find_vnet(*s, where(*pf->get("vnet")), "private endpoint");
            pe.vnet = *s;
        }
        const yaml::Node& an = where(*pf->get("address"));
        auto ep = endpoint(an, "private endpoint address");
        if (!vnet || !ep) continue;
        pe.vni = vnet->vni;
        pe.endpoint = Endpoint{ep->addr, ep->port, ep->proto, pos(an)};
        auto key = std::make_tuple(pe.vni, ep->addr, ep->port, static_cast<int>(ep->proto));
        auto [at, fresh] = seen.emplace(key, v.private_endpoints.size());
        if (!fresh) {
            auto dup = v.private_endpoints.begin() + static_cast<std::ptrdiff_t>(at->second);
            warn(pe.endpoint.pos, "duplicate private endpoint " + an.Scalar() + " in VNet " + q(pe.vnet) + " (first at " + at_text(dup->endpoint.pos) +
                                      "); merged");
            continue;
        }
        v.private_endpoints.push_back(std::move(pe));
    }
}

// An endpoint (public: VNI 0) belongs to one vault only.
void Parser::check_endpoint_owners(const RuleFile& rf) {
    std::map<std::tuple<std::uint32_t, std::uint32_t, std::uint16_t, int>,
             std::pair<std::string, SourcePos>>
        owner;
    auto claim = [&](const Vault& v, std::uint32_t vni, const Endpoint& e, const char* kind) {
        auto key = std::make_tuple(vni, e.addr, e.port, static_cast<int>(e.proto));
        auto [it, fresh] = owner.emplace(key, std::make_pair(v.name, e.pos));
        if (!fresh && it->second.first != v.name)
            error_at(e.pos, std::string(kind) + " " + format_ipv4(e.addr) + ":" +
                                std::to_string(e.port) + " is already served by vault " + q(it->second.first) + " (at " + at_text(it->second.second) +
                                "); an endpoint belongs to exactly one vault");
    };
    for (const auto& v : rf.vaults) {
        for (const auto& e : v.endpoints) claim(v, 0, e, "endpoint");
        for (const auto& pe : v.private_endpoints) claim(v, pe.vni, pe.endpoint, "private endpoint");
    }
}

void Parser::parse_network_acls(const Field& fld, Vault& v) {
    auto f = map_fields(fld.value, "network_acls",
                        {{"default_action"},
                         {"bypass"},
                         {"enforcement"},
                         {"ip_rules"},
                         {"ip_rules_file"},
                         {"virtual_network_rules"}});
    if (!f) return;
    if (auto x = f->get("enforcement")) {
        if (auto e = enumeration<Enforcement>(
                *x, "enforcement", {{"enforce", Enforcement::enforce}, {"audit", Enforcement::audit}}))
            v.enforcement = *e;
    }
    if (auto x = f->get("default_action")) {
        if (auto e = enumeration<DefaultAction>(
                *x, "default_action", {{"allow", DefaultAction::allow}, {"deny", DefaultAction::deny}}))
            v.default_action = *e;
    }
    if (auto x = f->get("bypass")) {
        if (auto e = enumeration<Bypass>(
                *x, "bypass", {{"azure_services", Bypass::azure_services}, {"none", Bypass::none}}))
            v.bypass = *e;
    }
    if (auto x = f->get("ip_rules")) {
        if (auto items = list(*x, "ip_rules"))
            for (const auto& n : *items) parse_ip_rule(n, v);
    }
    if (auto x = f->get("ip_rules_file")) {
        if (auto s = nonempty(*x, "ip_rules_file")) {
            v.ip_rules_file = resolve(*s);
            if (auto text = read_named(v.ip_rules_file, "ip_rules_file", pos(where(*x)))) {
                std::vector<IpRule> rules;
                scan_ip_list(*text, v.ip_rules_file, rules, errors);
                for (auto& r : rules) v.ip_rules.push_back(std::move(r));
            }
        }
    }
    merge_duplicate_ip_rules(v);
    if (auto x = f->get("virtual_network_rules")) {
        if (auto items = list(*x, "virtual_network_rules"))
            for (const auto& n : *items) parse_vnet_rule(n, v);
    }
}

// `192.0.2.0/24`, or Azure's `{value: 192.0.2.0/24}`.
void Parser::parse_ip_rule(const yaml::Node& n, Vault& v) {
    yaml::Node value = n;
    if (n.IsMap()) {
        auto f = map_fields(n, "an ip rule", {{"value"}, {"action"}});
        if (!f) return;
        if (!require(*f, n, "value", "an ip rule", "value: 192.0.2.0/24")) return;
        if (auto a = f->get("action")) {
            if (!enumeration<bool>(*a, "ip rule action", {{"allow", true}})) return;
        }
        value = where(*f->get("value"));
    }
    auto p = prefix(value, "ip_rules");
    if (!p) return;
    v.ip_rules.push_back(IpRule{*p, pos(value)});
}

// Merges rules with the same prefix into the first, with a warning for each
// later one, keeping file order. By sorting (prefix, index) pairs: a hash map
// of a million prefixes cost more than the rest of the ip_rules parse.
void Parser::merge_duplicate_ip_rules(Vault& v) {
    struct Key {
        std::uint64_t prefix;
        std::uint32_t index;
        bool operator<(const Key& o) const {
            return prefix != o.prefix ? prefix < o.prefix : index < o.index;
        }
    };
    std::vector<Key> keys(v.ip_rules.size());
    for (std::uint32_t i = 0; i < keys.size(); ++i)
        keys[i] = {std::uint64_t(v.ip_rules[i].prefix.addr) << 8 | v.ip_rules[i].prefix.len, i};
    std::sort(keys.begin(), keys.end());
    std::vector<std::uint32_t> first_of(v.ip_rules.size(), UINT32_MAX);  // duplicate -> first
    bool any = false;
    for (std::size_t k = 1; k < keys.size(); ++k)
        if (keys[k].prefix == keys[k - 1].prefix) {
            first_of[keys[k].index] =
                first_of[keys[k - 1].index] == UINT32_MAX ? keys[k - 1].index : first_of[keys[k - 1].index];
            any = true;
        }
    if (!any) return;
    for (std::size_t i = 0; i < v.ip_rules.size(); ++i) {
        if (first_of[i] == UINT32_MAX) continue;
        const IpRule& r = v.ip_rules[i];
        const IpRule& o = v.ip_rules[first_of[i]];
        std::string first = o.pos.file == r.pos.file
                                ? at_text(o.pos)
                                : o.pos.file + ":" + std::to_string(o.pos.line) + ":" +
                                      std::to_string(o.pos.col);
        warn(r.pos, "duplicate ip rule " + r.prefix.str() + " in vault " + q(v.name) +
                        " (first at " + first + "); merged");
    }
    std::size_t out = 0;
    for (std::size_t i = 0; i < v.ip_rules.size(); ++i)
        if (first_of[i] == UINT32_MAX) {
            if (out != i) v.ip_rules[out] = std::move(v.ip_rules[i]);
            ++out;
        }
    v.ip_rules.resize(out);
}

// `prod-vnet/app`, or `{id: prod-vnet/app}`, or an Azure subnet resource id
// (`.../virtualNetworks/prod-vnet/subnets/app`).
void Parser::parse_vnet_rule(const yaml::Node& n, Vault& v) {
    yaml::Node value = n;
    if (n.IsMap()) {
        auto f = map_fields(n, "a virtual network rule",
                            {{"id"}, {"ignore_missing_vnet_service_endpoint"}});
        if (!f) return;
        if (!require(*f, n, "id", "a virtual network rule", "id: prod-vnet/app")) return;
        if (auto x = f->get("ignore_missing_vnet_service_endpoint")) boolean(*x, x->key.Scalar());
        value = where(*f->get("id"));
    }
    if (!value.IsScalar()) {
        error(value, "a virtual network rule must be VNET/SUBNET (e.g. prod-vnet/app), got " +
                         std::string(kind_of(value)));
        return;
    }
    std::string text = value.Scalar();
    std::string vnet_name, subnet_name;
    auto l = lower(text);
    if (auto i = l.find("/virtualnetworks/"); i != std::string::npos) {
        std::string rest = text.substr(i + std::strlen("/virtualnetworks/"));
        auto s = lower(rest).find("/subnets/");
        if (s != std::string::npos) {
            vnet_name = rest.substr(0, s);
            subnet_name = rest.substr(s + std::strlen("/subnets/"));
        }
    } else if (auto slash = text.find('/');
               slash != std::string::npos && text.find('/', slash + 1) == std::string::npos) {
        vnet_name = text.substr(0, slash);
        subnet_name = text.substr(slash + 1);
    }
    if (vnet_name.empty() || subnet_name.empty()) {
        error(value, q(text) + " is not a virtual network rule; write VNET/SUBNET, e.g. prod-vnet/app");
        return;
    }
    const Vnet* vnet = find_vnet(vnet_name, value, "virtual network rule " + q(text));
    if (!vnet) return;
    auto sub = std::find_if(vnet->subnets.begin(), vnet->subnets.end(),
                            [&](const Subnet& s) { return s.name == subnet_name; });
    if (sub == vnet->subnets.end()) {
        std::vector<std::string> names;
        for (const auto& s : vnet->subnets) names.push_back(s.name);
        std::string msg = "VNet " + q(vnet_name) + " has no subnet " + q(subnet_name);
        if (auto c = closest_match(subnet_name, names))
            msg += "; did you mean '" + vnet_name + "/" + *c + "'?";
        else if (names.empty())
            msg += "; it has no subnets: add one under its `subnets:`";
        else
            msg += "; its subnets: " + join(names);
        error(value, msg);
        return;
    }
    VnetRule r{vnet_name, subnet_name, vnet->vni, sub->prefix, pos(value)};
    auto key = std::make_pair(r.vni, std::uint64_t(r.prefix.addr) << 8 | r.prefix.len);
    auto [at, fresh] = vnet_rule_seen_.emplace(key, v.vnet_rules.size());
    if (!fresh) {
            const VnetRule& o = v.vnet_rules[at->second];
            warn(r.pos, "duplicate virtual network rule " + vnet_name + "/" + subnet_name + " (" +
                            r.prefix.str() + " in VNI " + std::to_string(r.vni) + ") in vault " + q(v.name) + " (same as " + o.vnet + "/" + o.subnet + " at " +
                            at_text(o.pos) + "); merged");
            return;
    }
    v.vnet_rules.push_back(std::move(r));
}

void Parser::parse_access_policy(const yaml::Node& n, Vault& v) {
    auto f = map_fields(n, "an access policy",
                        {{"object_id"}, {"tenant_id"}, {"application_id"}, {"permissions"}});
    if (!f) return;
    AccessPolicy ap;
    ap.pos = pos(n);
    bool ok = require(*f, n, "object_id", "an access policy",
                      "object_id: 6b0c8d8e-0000-4000-8000-000000000001");
    ok = require(*f, n, "permissions", "an access policy", "permissions: { secrets: [get] }") && ok;
    if (auto x = f->get("object_id")) {
        auto s = nonempty(*x, "object_id");
        if (s && !is_guid(*s)) {
            error(*x, "object_id " + q(*s) + " is not a GUID; use the principal's object id");
            ok = false;
        } else if (s) {
            ap.object_id = lower(*s);
        } else {
            ok = false;
        }
    }
    for (const char* k : {"tenant_id", "application_id"}) {
        if (auto x = f->get(k)) {
            auto s = nonempty(*x, k);
            if (s && !is_guid(*s)) {
                error(*x, std::string(k) + " " + q(*s) + " is not a GUID");
                ok = false;
            }
        }
    }
    if (auto x = f->get("permissions")) {
        std::vector<KeySpec> kinds;
        for (const auto& k : permission_kinds()) kinds.push_back({k});
        auto pf = map_fields(x->value, "permissions", kinds);
        if (!pf) return;
        for (const auto& kind : permission_kinds()) {
            const Field* pk = pf->get(kind);
            if (!pk) continue;
            auto names = string_list(*pk, "permissions." + kind);
            if (!names) {
                ok = false;
                continue;
            }
            auto& set = ap.permissions[kind];
            std::size_t i = 0;
            for (const auto& item : pk->value.IsNull() ? yaml::Node() : pk->value) {
                const std::string& name = (*names)[i++];
                if (auto c = canonical_permission(kind, name)) {
                    set.insert(*c);
                    continue;
                }
                std::string msg = "unknown " + kind + " permission " + q(name);
                if (auto s = closest_match(name, permission_names(kind)))
                    msg += "; did you mean " + q(*s) + "?";
                else
                    msg += ";";
                msg += " Key Vault's " + kind + " permissions: " + join(permission_names(kind));
                error(item, msg);
                ok = false;
            }
        }
    }
    if (ok) v.access_policies.push_back(std::move(ap));
}

void Parser::parse_role_assignment(const yaml::Node& n, Vault& v) {
    auto f = map_fields(n, "a role assignment",
                        {{"principal_id"}, {"role", {"role_definition_name"}}, {"scope"}});
    if (!f) return;
    RoleAssignment ra;
    ra.pos = pos(n);
    ra.scope = "/";
    bool ok = require(*f, n, "principal_id", "a role assignment",
                      "principal_id: 6b0c8d8e-0000-4000-8000-000000000002");
    ok = require(*f, n, "role", "a role assignment", "role: Key Vault Secrets User") && ok;
    if (auto x = f->get("principal_id")) {
        auto s = nonempty(*x, "principal_id");
        if (s && !is_guid(*s)) {
            error(*x, "principal_id " + q(*s) + " is not a GUID; use the principal's object id");
            ok = false;
        } else if (s) {
            ra.principal_id = lower(*s);
        } else {
            ok = false;
        }
    }
    if (auto x = f->get("role")) {
        auto s = nonempty(*x, "role");
        if (s) {
            if (auto c = canonical_role(*s)) {
                ra.role = *c;
            } else {
                std::string msg = "unknown role " + q(*s);
                if (auto m = closest_match(*s, builtin_role_names()))
                    msg += "; did you mean " + q(*m) + "?";
                else
                    msg += ";";
                msg += " Built-in Key Vault data roles: " + join(builtin_role_names());
                error(*x, msg);
                ok = false;
            }
        } else {
            ok = false;
        }
    }
    if (auto x = f->get("scope")) {
        auto s = nonempty(*x, "scope");
        bool good = false;
        if (s) {
            if (*s == "/") {
                good = true;
            } else {
                for (const char* kind : {"secrets", "keys", "certificates"}) {
                    std::string pre = std::string("/") + kind + "/";
                    if (s->rfind(pre, 0) == 0 && is_object_name(s->substr(pre.size()))) good = true;
                }
            }
            if (!good)
                error(*x, "bad scope " + q(*s) + "; use / (the whole vault), /secrets/NAME, /keys/NAME or "
                              "/certificates/NAME (NAME: 1-127 letters, digits or '-')");
            else
                ra.scope = *s;
        }
        ok = ok && good;
    }
    if (ok) v.role_assignments.push_back(std::move(ra));
}

// ---------------------------------------------------------------- catalog

std::vector<TrustedService> Parser::parse_catalog(const yaml::Node& root) {
    std::vector<TrustedService> out;
    if (root.IsNull()) {
        error_at({file_, 1, 1}, "the trusted-services catalog is empty; it needs `trusted_services:`");
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
        std::size_t before = errors.size();
        auto s = parse_service(n, ids);
        if (errors.size() == before) out.push_back(std::move(s));
    }
    return out;
}

TrustedService Parser::parse_service(const yaml::Node& n, std::map<std::string, SourcePos>& ids) {
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
                error(*x, "duplicate trusted service id " + q(*s) + " (first at " +
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
                    error(item, "resource type " + q(rt) + " is not NAMESPACE/TYPE, e.g. Microsoft.Storage/storageAccounts");
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
                std::string msg = "unknown operation " + q(op);
                if (auto m = closest_match(op, known_operations()))
                    msg += "; did you mean " + q(*m) + "?";
                else
                    msg += "; operations are KIND/PERMISSION, e.g. keys/wrapKey, secrets/get, "
                           "certificates/get";
                error(item, msg);
            }
            if (l->empty())
                warn(pos(x->key), "trusted service " + q(ts.id) + " has no operations; it can never pass the gate");
        }
    }
    return ts;
}

// ---------------------------------------------------------------- entry points

// The file's one YAML document; nullopt (with the error recorded) when the
// text is not UTF-8, not YAML, or holds more than one document.
std::optional<yaml::Node> load_yaml(std::string_view text, Parser& p, const std::string& name,
                                    const char* what) {
    if (auto bad = utf8_error(name, text, what)) {
        p.error_at(bad->pos, bad->message);
        return std::nullopt;
    }
    yaml::ParseError err;
    auto root = yaml::parse_document(text, err);
    if (root) return root;
    SourcePos at{name, err.mark.line + 1, err.mark.column + 1};
    if (err.message == "a second YAML document")
        p.error_at(at, err.message + "; " + what +
                           " is one document: remove the `---` and what follows, or merge it "
                           "into the first");
    else
        p.error_at(at, "YAML syntax error: " + err.message +
                           "; check the indentation (spaces, not tabs), the ':' after each key, "
                           "brackets and quotes");
    return std::nullopt;
}

std::string dir_of(const std::string& path) {
    auto parent = fs::absolute(fs::path(path)).parent_path();
    return parent.lexically_normal().string();
}

std::string absolute_path(const std::string& path) {
    return fs::absolute(fs::path(path)).lexically_normal().string();
}

}  // namespace

RuleFile parse_rule_text(std::string_view text, const std::string& name,
                         const std::string& base_dir, const FileSource& source) {
    Parser p(name, base_dir, source);
    RuleFile rf;
    if (auto root = load_yaml(text, p, name, "a rule file")) rf = p.parse_rule_file(*root);
    if (!p.errors.empty()) throw RuleFileError(std::move(p.errors));
    rf.path = name;
    rf.warnings = std::move(p.warnings);
    rf.files = std::move(p.files);
    return rf;
}

namespace {
// The bytes of a file named on the command line (or by the fleet), or a
// RuleFileError naming it.
std::string read_top(const std::string& path, const FileSource& source, const char* what) {
    try {
        if (auto bytes = source.read(path)) return *std::move(bytes);
        throw RuleFileError({Diagnostic{{path, 0, 0}, std::string("cannot read ") + what +
                                                          ": no such file"}});
    } catch (const SourceError& e) {
        throw RuleFileError(
            {Diagnostic{{path, 0, 0}, std::string("cannot read ") + what + ": it " + e.what()}});
    }
}
}  // namespace

RuleFile load_rule_file(const std::string& path, const FileSource& source) {
    std::string abs = absolute_path(path);
    std::string text = read_top(abs, source, "rule file");
    RuleFile rf = parse_rule_text(text, path, dir_of(path), source);
    rf.files.insert(rf.files.begin(), abs);
    return rf;
}

std::vector<TrustedService> load_trusted_services(const std::string& path,
                                                  const FileSource& source) {
    std::string text = read_top(absolute_path(path), source, "trusted-services catalog");
    Parser p(path, dir_of(path), source);
    std::vector<TrustedService> out;
    if (auto root = load_yaml(text, p, path, "a trusted-services catalog"))
        out = p.parse_catalog(*root);
    if (!p.errors.empty()) throw RuleFileError(std::move(p.errors));
    return out;
}

}  // namespace vaultwall::rules

namespace vaultwall::rules {

std::vector<IpRule> parse_ip_rules_text(std::string_view text, const std::string& name) {
    std::vector<IpRule> rules;
    std::vector<Diagnostic> errors;
    scan_ip_list(text, name, rules, errors);
    if (!errors.empty()) throw RuleFileError(std::move(errors));
    return rules;
}

}  // namespace vaultwall::rules
