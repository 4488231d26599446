#include "rules/yaml_access.hpp"

#include <algorithm>
#include <filesystem>

#include "rules/names.hpp"
#include "rules/source.hpp"

namespace vaultwall::rules {

namespace fs = std::filesystem;

std::optional<yaml::Node> load_yaml(std::string_view text, const FileName& file, const char* what,
                                    Diagnostics& diags) {
    if (auto bad = utf8_error(file, text, what)) {
        diags.error(bad->pos, bad->message);
        return std::nullopt;
    }
    yaml::ParseError err;
    auto root = yaml::parse_document(text, err);
    if (root) return root;
    SourcePos at{file, err.mark.line + 1, err.mark.column + 1};
    if (err.message == "a second YAML document")
        diags.error(at, err.message + "; " + what +
                            " is one document: remove the `---` and what follows, or merge it "
                            "into the first");
    else
        diags.error(at, "YAML syntax error: " + err.message +
                            "; check the indentation (spaces, not tabs), the ':' after each key, "
                            "brackets and quotes");
    return std::nullopt;
}

std::optional<Fields> YamlReader::map_fields(const yaml::Node& n, const std::string& what,
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
            std::string msg = "unknown key " + quote(raw) + " in " + what;
            bool camel = raw.find_first_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ") != std::string::npos;
            if (auto s = closest_match(snake, names))
                msg += "; did you mean " + quote(camel ? snake_to_camel(*s) : *s) + "?";
            else
                msg += "; expected one of: " + join(names);
            error(key, msg);
            continue;
        }
        if (auto d = seen.find(spec->name); d != seen.end()) {
            error(key, "duplicate key " + quote(raw) + " in " + what + " (first at " +
                           at_text(d->second) + "); keep only one");
            continue;
        }
        seen.emplace(spec->name, pos(key));
        out.put(spec->name, Field{key, it->second});
    }
    return out;
}

bool YamlReader::require(const Fields& f, const yaml::Node& map, const std::string& key,
                     const std::string& what, const std::string& example) {
    if (f.get(key)) return true;
    error(map, "missing required key " + quote(key) + " in " + what + "; add e.g. `" + example + "`");
    return false;
}

std::optional<std::string> YamlReader::scalar(const Field& f, const std::string& what) {
    if (!f.value.IsScalar()) {
        error(f, what + " must be a single value, got " + kind_of(f.value));
        return std::nullopt;
    }
    return f.value.Scalar();
}

std::optional<std::string> YamlReader::nonempty(const Field& f, const std::string& what) {
    auto s = scalar(f, what);
    if (s && s->empty()) {
        error(f, what + " is empty; give it a value");
        return std::nullopt;
    }
    return s;
}

std::optional<yaml::Node> YamlReader::list(const Field& f, const std::string& what) {
    if (f.value.IsNull()) return yaml::Node();
    if (!f.value.IsSequence()) {
        error(f, what + " must be a list, got " + kind_of(f.value) +
                     "; write `[a, b]` or one `- item` per line");
        return std::nullopt;
    }
    return f.value;
}

std::optional<std::vector<std::string>> YamlReader::string_list(const Field& f,
                                                            const std::string& what) {
    auto items = list(f, what);
    if (!items) return std::nullopt;
    std::vector<std::string> r;
    ErrorScope scope(diags_);
    for (const auto& n : *items) {
        if (!n.IsScalar())
            error(n, "each entry of " + what + " must be a single value, got " + kind_of(n));
        else
            r.push_back(n.Scalar());
    }
    if (scope.failed()) return std::nullopt;
    return r;
}

std::optional<bool> YamlReader::boolean(const Field& f, const std::string& what) {
    auto s = scalar(f, what);
    if (!s) return std::nullopt;
    auto b = parse_bool(*s);
    if (!b) error(f, what + " must be true or false, got " + quote(*s));
    return b;
}

std::optional<IpPrefix> YamlReader::prefix(const yaml::Node& n, const std::string& what) {
    if (!n.IsScalar()) {
        error(n, what + " must be an address or prefix like 192.0.2.0/24 or 2001:db8::/32, got " +
                     kind_of(n));
        return std::nullopt;
    }
    auto p = parse_prefix_text(n.Scalar(), what);
    if (auto* err = std::get_if<std::string>(&p)) {
        error(n, std::move(*err));
        return std::nullopt;
    }
    return std::get<IpPrefix>(p);
}

// "203.0.113.10:443" or "[2001:db8::10]:443", optionally "/tcp" or "/udp".
std::optional<EndpointText> YamlReader::endpoint(const yaml::Node& n, const std::string& what) {
    if (!n.IsScalar()) {
        // Unquoted, YAML reads `[2001:db8::10]:443` as a list or a map.
        const bool looks_v6 = n.IsMap() || n.IsSequence();
        error(n, what + " must be an IPv4:port or [IPv6]:port endpoint, got " + std::string(kind_of(n)) +
                     (looks_v6 ? "; quote an IPv6 endpoint, or YAML reads its brackets as a list: "
                                 "\"[2001:db8::10]:443\""
                               : "; write e.g. 203.0.113.10:443 or \"[2001:db8::10]:443\""));
        return std::nullopt;
    }
    auto ep = parse_endpoint_text(n.Scalar(), what);
    if (auto* err = std::get_if<std::string>(&ep)) {
        error(n, std::move(*err));
        return std::nullopt;
    }
    return std::get<EndpointText>(ep);
}

std::string YamlReader::resolve(const std::string& p) const {
    fs::path path(p);
    if (path.is_absolute()) return path.lexically_normal().string();
    fs::path base = base_dir_.empty() ? fs::current_path() : fs::path(base_dir_);
    return fs::absolute(base / path).lexically_normal().string();
}

}  // namespace vaultwall::rules
