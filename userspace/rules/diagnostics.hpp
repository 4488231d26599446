// How the rule loader reports problems, its one convention: every check that
// fails adds a Diagnostic (file:line:col, what is wrong, how to fix it) to the
// loader's Diagnostics and returns nullopt (or skips the entry); nothing is
// thrown until the whole file has been read, so every error is reported at
// once. A composite entry (a vault, an access policy) is kept only when no
// error was reported while reading it: ErrorScope says so.
#pragma once

#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "rules/model.hpp"

namespace vaultwall::rules {

struct Diagnostic {
    SourcePos pos;
    std::string message;
    std::string str() const;  // "file:line:col: error: message"
};

// Thrown when a file has one or more errors; the file is rejected whole.
class RuleFileError : public std::runtime_error {
public:
    explicit RuleFileError(std::vector<Diagnostic> diags);
    const std::vector<Diagnostic>& diagnostics() const { return diags_; }

private:
    std::vector<Diagnostic> diags_;
};

class Diagnostics {
public:
    void error(SourcePos at, std::string message) {
        errors_.push_back({std::move(at), std::move(message)});
    }
    void warn(const SourcePos& at, const std::string& message);  // "file:line:col: warning: ..."
    std::size_t error_count() const { return errors_.size(); }
    std::vector<std::string>& warnings() { return warnings_; }
    // Throws RuleFileError with every error, if there is one.
    void throw_if_errors();

private:
    std::vector<Diagnostic> errors_;
    std::vector<std::string> warnings_;
};

// Whether an error was reported since it was made.
class ErrorScope {
public:
    explicit ErrorScope(const Diagnostics& d) : d_(d), start_(d.error_count()) {}
    bool failed() const { return d_.error_count() != start_; }

private:
    const Diagnostics& d_;
    std::size_t start_;
};

// "line 3, col 5": where an earlier, related entry is (same file).
std::string at_text(const SourcePos& p);
// "file:3:5" or "line 3, col 5" when `p` is in `here`'s file.
std::string at_text(const SourcePos& p, const SourcePos& here);

// The position of byte `offset` of `text`.
SourcePos position_of(const FileName& file, std::string_view text, std::size_t offset);

// The error for text that is not UTF-8 (rule files, catalogs and ip_rules_files
// are UTF-8), at its first bad byte; nullopt when the text is UTF-8.
std::optional<Diagnostic> utf8_error(const FileName& file, std::string_view text,
                                     const char* what);

}  // namespace vaultwall::rules
