// Loading a rule file (SPEC §2, §7): its bytes and those of every file it names
// come through a FileSource; then its YAML document (yaml_doc, yaml_access),
// the section schemas (schema.cpp, catalog.cpp, ip_list.cpp) and the checks
// over the model (validate.cpp). Every problem is collected (diagnostics.hpp)
// before the file is rejected whole.
#include "rules/parser.hpp"

#include <filesystem>

#include "rules/ip_list.hpp"
#include "rules/schema.hpp"
#include "rules/text.hpp"
#include "rules/validate.hpp"
#include "rules/yaml_access.hpp"

namespace vaultwall::rules {

namespace {

namespace fs = std::filesystem;

std::string dir_of(const std::string& path) {
    return fs::absolute(fs::path(path)).parent_path().lexically_normal().string();
}

std::string absolute_path(const std::string& path) {
    return fs::absolute(fs::path(path)).lexically_normal().string();
}

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

// How the schemas read the files a rule file names: through `source`, each
// failure an error at the key naming the file, each file read listed.
ReadFile named_file_reader(const FileSource& source, Diagnostics& diags,
                           std::vector<std::string>& files) {
    return [&source, &diags, &files](const std::string& path, const std::string& what,
                                     const SourcePos& at) -> std::optional<std::string> {
        try {
            if (auto bytes = source.read(path)) {
                files.push_back(path);
                return bytes;
            }
            diags.error(at, "cannot read " + what + " " + quote(path, 1024) +
                                ": no such file; fix the path (relative to this file)");
        } catch (const SourceError& e) {
            diags.error(at, "cannot read " + what + " " + quote(path, 1024) + ": it " + e.what());
        }
        return std::nullopt;
    };
}

}  // namespace

RuleFile parse_rule_text(std::string_view text, const std::string& name,
                         const std::string& base_dir, const FileSource& source) {
    Diagnostics diags;
    std::vector<std::string> files;
    const ReadFile read = named_file_reader(source, diags, files);
    const FileName file(name);
    RuleFile rf;
    if (auto root = load_yaml(text, file, "a rule file", diags))
        rf = parse_rule_document(*root, file, base_dir, diags, read);
    validate(rf, diags);
    diags.throw_if_errors();
    rf.path = name;
    rf.warnings = std::move(diags.warnings());
    rf.files = std::move(files);
    return rf;
}

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
    Diagnostics diags;
    auto services = parse_catalog_text(text, FileName(path), diags);
    diags.throw_if_errors();
    return services;
}

IpRuleList parse_ip_rules_text(std::string_view text, const std::string& name) {
    Diagnostics diags;
    IpRuleList rules;
    scan_ip_list(text, FileName(name), rules.v4, rules.v6, diags);
    diags.throw_if_errors();
    return rules;
}

}  // namespace vaultwall::rules
