#include "rules/diagnostics.hpp"

#include <cstdio>

#include "rules/text.hpp"

namespace vaultwall::rules {

namespace {
std::string where(const SourcePos& p) {
    std::string s = p.file;
    if (p.line > 0) s += ":" + std::to_string(p.line) + ":" + std::to_string(p.col);
    return s;
}

std::string join_diags(const std::vector<Diagnostic>& diags) {
    std::string s;
    for (const auto& d : diags) {
        if (!s.empty()) s += "\n";
        s += d.str();
    }
    return s;
}
}  // namespace

std::string Diagnostic::str() const { return where(pos) + ": error: " + message; }

RuleFileError::RuleFileError(std::vector<Diagnostic> diags)
    : std::runtime_error(join_diags(diags)), diags_(std::move(diags)) {}

void Diagnostics::warn(const SourcePos& at, const std::string& message) {
    warnings_.push_back(where(at) + ": warning: " + message);
}

void Diagnostics::throw_if_errors() {
    if (!errors_.empty()) throw RuleFileError(std::move(errors_));
}

std::string at_text(const SourcePos& p) {
    return "line " + std::to_string(p.line) + ", col " + std::to_string(p.col);
}

std::string at_text(const SourcePos& p, const SourcePos& here) {
    return p.file == here.file ? at_text(p) : where(p);
}

SourcePos position_of(const FileName& file, std::string_view text, std::size_t offset) {
    int line = 1;
    std::size_t line_start = 0;
    for (std::size_t i = 0; i < offset && i < text.size(); ++i)
        if (text[i] == '\n') {
            ++line;
            line_start = i + 1;
        }
    return {file, line, static_cast<int>(offset - line_start) + 1};
}

std::optional<Diagnostic> utf8_error(const FileName& file, std::string_view text,
                                     const char* what) {
    auto bad = invalid_utf8_at(text);
    if (bad == std::string_view::npos) return std::nullopt;
    char hex[8];
    std::snprintf(hex, sizeof hex, "0x%02x", static_cast<unsigned char>(text[bad]));
    return Diagnostic{position_of(file, text, bad), std::string("byte ") + hex +
                                                        " is not UTF-8; " + what +
                                                        " must be UTF-8 text (re-save it as UTF-8)"};
}

}  // namespace vaultwall::rules
