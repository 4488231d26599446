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

std::optional<Ipv4Prefix> YamlReader::prefix(const yaml::Node& n, const std::string& what) {
    if (!n.IsScalar()) {
        error(n, what + " must be an IPv4 address or prefix like 192.0.2.0/24, got " +
                     kind_of(n));
        return std::nullopt;
    }
    const std::string& s = n.Scalar();
    auto p = parse_ipv4_prefix(s);
    if (!p) {
        error(n, quote(s) + " in " + what +
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
std::optional<EndpointText> YamlReader::endpoint(const yaml::Node& n, const std::string& what) {
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
            error(n, "unknown protocol " + quote(text.substr(slash + 1)) + " in " + what + " " + quote(s) + "; use /tcp or /udp, or leave it out for TCP");
            return std::nullopt;
        }
        text = text.substr(0, slash);
    }
    auto colon = text.rfind(':');
    std::optional<std::uint32_t> addr;
    if (colon != std::string::npos) addr = parse_ipv4(text.substr(0, colon));
    if (colon == std::string::npos || !addr) {
        error(n, quote(s) + " in " + what + " is not an IPv4:port endpoint" + fix);
        return std::nullopt;
    }
    auto port = parse_uint(text.substr(colon + 1));
    if (!port) {
        error(n, quote(s) + " in " + what + " has no valid port" + fix);
        return std::nullopt;
    }
    if (*port == 0 || *port > 65535) {
        error(n, "port " + std::to_string(*port) + " in " + what + " " + quote(s) + " is out of range; use 1..65535");
        return std::nullopt;
    }
    ep.addr = *addr;
    ep.port = static_cast<std::uint16_t>(*port);
    return ep;
}

std::string YamlReader::resolve(const std::string& p) const {
    fs::path path(p);
    if (path.is_absolute()) return path.lexically_normal().string();
    fs::path base = base_dir_.empty() ? fs::current_path() : fs::path(base_dir_);
    return fs::absolute(base / path).lexically_normal().string();
}

}  // namespace vaultwall::rules
