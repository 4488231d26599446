// Typed, positioned access to a YAML document (yaml_doc.hpp) for the section
// schemas: a map's keys by canonical name (camelCase Azure spellings accepted),
// scalars, lists, enums, prefixes, endpoints. Every failure is reported to the
// Diagnostics at the value's position (or its key's, when the value is empty)
// and returns nullopt.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "rules/diagnostics.hpp"
#include "rules/ip_text.hpp"
#include "rules/names.hpp"
#include "rules/model.hpp"
#include "rules/text.hpp"
#include "rules/yaml_doc.hpp"

namespace vaultwall::rules {

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

// The highest host.drop_events_per_second: beyond it the ring buffer, not the
// limit, decides what is lost.
constexpr std::uint64_t kMaxDropEventsPerSecond = 1'000'000;

// "a map", "a list", "a scalar", "nothing".
inline const char* kind_of(const yaml::Node& n) {
    switch (n.kind()) {
        case yaml::Kind::map: return "a map";
        case yaml::Kind::sequence: return "a list";
        case yaml::Kind::scalar: return "a scalar";
        default: return "nothing";
    }
}

// Text -> its one YAML document; nullopt with the error reported when it is not
// UTF-8, not YAML, or more than one document. `what`: "a rule file"...
std::optional<yaml::Node> load_yaml(std::string_view text, const FileName& file, const char* what,
                                    Diagnostics& diags);

class YamlReader {
public:
    YamlReader(FileName file, std::string base_dir, Diagnostics& diags)
        : file_(std::move(file)), base_dir_(std::move(base_dir)), diags_(diags) {}

    const FileName& file() const { return file_; }
    Diagnostics& diags() { return diags_; }

    SourcePos pos(const yaml::Node& n) const {
        auto m = n.Mark();
        if (m.is_null()) return {file_, 0, 0};
        return {file_, m.line + 1, m.column + 1};
    }
    void error(const yaml::Node& at, std::string msg) { diags_.error(pos(at), std::move(msg)); }
    void error(const Field& f, std::string msg) { error(where(f), std::move(msg)); }
    void warn(const SourcePos& p, const std::string& msg) { diags_.warn(p, msg); }
    // Where to point for a value: the value itself, or its key when empty.
    static const yaml::Node& where(const Field& f) {
        return f.value.Mark().is_null() || f.value.IsNull() ? f.key : f.value;
    }

    // The keys of map `n` among `allowed` (unknown and duplicate keys reported).
    std::optional<Fields> map_fields(const yaml::Node& n, const std::string& what,
                                     const std::vector<KeySpec>& allowed);
    // Reports a missing required key; false when missing.
    bool require(const Fields& f, const yaml::Node& map, const std::string& key,
                 const std::string& what, const std::string& example);
    std::optional<std::string> scalar(const Field& f, const std::string& what);
    std::optional<std::string> nonempty(const Field& f, const std::string& what);
    // The sequence itself (iterate it; `key:` with nothing is an empty list),
    // not a copy of its million entries.
    std::optional<yaml::Node> list(const Field& f, const std::string& what);
    std::optional<std::vector<std::string>> string_list(const Field& f, const std::string& what);
    std::optional<bool> boolean(const Field& f, const std::string& what);
    template <typename E>
    std::optional<E> enumeration(const Field& f, const std::string& what,
                                 const std::vector<std::pair<std::string, E>>& values);
    // Either family (ip_text.hpp).
    std::optional<IpPrefix> prefix(const yaml::Node& n, const std::string& what);
    std::optional<EndpointText> endpoint(const yaml::Node& n, const std::string& what);
    // A path named in the file, absolute (relative ones against the file's directory).
    std::string resolve(const std::string& p) const;

private:
    FileName file_;
    std::string base_dir_;
    Diagnostics& diags_;
};

template <typename E>
std::optional<E> YamlReader::enumeration(const Field& f, const std::string& what,
                                     const std::vector<std::pair<std::string, E>>& values) {
    auto s = scalar(f, what);
    if (!s) return std::nullopt;
    std::vector<std::string> names;
    for (const auto& [name, value] : values) {
        if (enum_norm(name) == enum_norm(*s)) return value;
        names.push_back(name);
    }
    std::string msg = "bad value " + quote(*s) + " for " + what + "; expected " + join(names, " or ");
    if (auto c = closest_match(*s, names)) msg += " (did you mean " + quote(*c) + "?)";
    error(f, msg);
    return std::nullopt;
}

}  // namespace vaultwall::rules
