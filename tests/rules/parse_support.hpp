// Helpers the rule-file tests share: parse a YAML text as file "t.yaml"
// (relative paths resolved under /etc/vw), collect the errors of a text
// that must be refused, and assert exactly one positioned error.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "rules/parser.hpp"

namespace vaultwall::rules::test {

inline RuleFile parse(const std::string& text, const std::string& file = "t.yaml") {
    return parse_rule_text(text, file, "/etc/vw");
}

// Parses text expecting errors; returns them.
inline std::vector<Diagnostic> errors_of(const std::string& text, const std::string& file = "t.yaml") {
    try {
        parse(text, file);
    } catch (const RuleFileError& e) {
        return e.diagnostics();
    }
    ADD_FAILURE() << "expected RuleFileError for:\n" << text;
    return {};
}

// Exactly one error in "t.yaml", at line:col, whose message contains `needle`.
inline void expect_one_error(const std::string& text, int line, int col, const std::string& needle) {
    auto d = errors_of(text);
    ASSERT_EQ(d.size(), 1u) << [&] {
        std::string s;
        for (auto& x : d) s += x.str() + "\n";
        return s;
    }();
    EXPECT_EQ(d[0].pos.file, "t.yaml");
    EXPECT_EQ(d[0].pos.line, line) << d[0].str();
    EXPECT_EQ(d[0].pos.col, col) << d[0].str();
    EXPECT_NE(d[0].message.find(needle), std::string::npos) << d[0].str();
    EXPECT_NE(d[0].str().find("t.yaml:" + std::to_string(line) + ":" + std::to_string(col) + ": error: "),
              std::string::npos)
        << d[0].str();
}

}  // namespace vaultwall::rules::test
