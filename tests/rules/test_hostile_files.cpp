// Issue 17's rule-file items: hostile rule files get a precise error, fast,
// with bounded memory, and change nothing.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <string>

#include <nlohmann/json.hpp>

#include "rules/names.hpp"
#include "rules/parser.hpp"
#include "rules/source.hpp"
#include "temp_dir.hpp"

using namespace vaultwall::rules;
using vaultwall::rules::test::TempDir;

namespace {

std::vector<Diagnostic> errors_of(const std::string& text) {
    try {
        parse_rule_text(text, "h.yaml", "/etc/vw");
    } catch (const RuleFileError& e) {
        return e.diagnostics();
    }
    ADD_FAILURE() << "expected RuleFileError for:\n" << text;
    return {};
}

std::vector<Diagnostic> errors_of_file(const std::string& path) {
    try {
        load_rule_file(path);
    } catch (const RuleFileError& e) {
        return e.diagnostics();
    }
    ADD_FAILURE() << "expected RuleFileError for " << path;
    return {};
}

std::string vault(const std::string& name, const std::string& extra = "") {
    return "  - name: " + name + "\n"
           "    tenant_id: 3f1c9a52-7d0e-4b8a-9c11-5e2f0a6d4b10\n" + extra;
}

}  // namespace

// Item 1: the rule file is UTF-8; a Latin-1 byte is an error at its position.
TEST(HostileFiles, NonUtf8ByteIsAPositionedError) {
    auto d = errors_of("version: 1\nvaults:\n" + vault("caf\xe9"));
    ASSERT_EQ(d.size(), 1u);
    EXPECT_EQ(d[0].str(), "h.yaml:3:14: error: byte 0xe9 is not UTF-8; a rule file must be UTF-8 "
                          "text (re-save it as UTF-8)");
    d = errors_of("version: 1\nvaults:\n" + vault("v1", "    location: M\xfcnchen\n"));
    ASSERT_EQ(d.size(), 1u);
    EXPECT_EQ(d[0].pos.line, 5);
    EXPECT_EQ(d[0].pos.col, 16);
    // Overlong encodings and surrogates are not UTF-8 either.
    for (std::string bad : {"\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\x80"}) {
        d = errors_of("version: 1\n# " + bad + "\n");
        ASSERT_EQ(d.size(), 1u);
        EXPECT_EQ(d[0].pos.line, 2);
        EXPECT_EQ(d[0].pos.col, 3);
    }
    // Real UTF-8 is fine, wherever it is.
    auto rf = parse_rule_text("version: 1\nvaults:\n" + vault("v1", "    location: München 東京 🔑\n"),
                              "h.yaml", "/");
    EXPECT_EQ(rf.vaults.at(0).location, "München 東京 🔑");
}

// Found by fuzz_rules: yaml-cpp's own message quoted a lone byte of a UTF-8
// character (or what it decoded from a file it took for UTF-32), so the
// diagnostic was not UTF-8 although the file was.
TEST(HostileFiles, YamlSyntaxErrorsArePrintable) {
    for (std::string text : {std::string("version: 1\nvaults:\n  - name: \"a\\\xc3\xa9\"\n"),
                             std::string("v\0\0\0\0\0\0\0\x01-\n[amelosed\n", 21)}) {
        auto d = errors_of(text);
        ASSERT_EQ(d.size(), 1u);
        EXPECT_NE(d[0].message.find("YAML syntax error"), std::string::npos) << d[0].str();
        EXPECT_NO_THROW((void)nlohmann::json(d[0].str()).dump()) << d[0].str();
    }
}

TEST(HostileFiles, NonUtf8InTheCatalogAndInAListFile) {
    TempDir t;
    t.write("ts.yaml", "trusted_services:\n  - id: x\xff\n");
    t.write("v1.txt", "192.0.2.0/24\n10.0.0.0/8 # \xe9t\xe9\n");
    auto path = t.write("vw.yaml", "version: 1\ntrusted_services: ts.yaml\nvaults:\n" +
                                       vault("v1", "    network_acls: {ip_rules_file: v1.txt}\n"));
    auto d = errors_of_file(path);
    ASSERT_EQ(d.size(), 2u);
    EXPECT_EQ(d[0].pos.file, t.path("ts.yaml"));
    EXPECT_EQ(d[0].pos.line, 2);
    EXPECT_EQ(d[0].pos.col, 10);
    EXPECT_NE(d[0].message.find("byte 0xff is not UTF-8"), std::string::npos);
    EXPECT_EQ(d[1].pos.file, t.path("v1.txt"));
    EXPECT_EQ(d[1].pos.line, 2);
    EXPECT_EQ(d[1].pos.col, 14);
}

// Item 9: what a diagnostic quotes is bounded (was: 1,000 aliases of a 64 KiB
// scalar, each error quoting all of it, ~400 MiB).
TEST(HostileFiles, DiagnosticsQuoteABoundedPartOfAValue) {
    std::string big(64 * 1024, 'x');
    std::string text = "version: 1\nhost:\n  vteps: [&a " + big;
    for (int i = 0; i < 1000; ++i) text += ", *a";
    text += "]\n";
    auto d = errors_of(text);
    ASSERT_EQ(d.size(), 1001u);
    std::size_t longest = 0;
    for (const auto& x : d) longest = std::max(longest, x.str().size());
    EXPECT_LT(longest, 300u);
    EXPECT_NE(d[0].message.find("'" + std::string(64, 'x') + "'... (65536 bytes)"),
              std::string::npos)
        << d[0].message;
}

// Item 9: did-you-mean compares bounded words (was: edit distance over
// 20,000-character names, 16 s for 25 references).
TEST(HostileFiles, DidYouMeanIgnoresHugeWordsAndFarLengths) {
    std::string name(20000, 'n');
    EXPECT_FALSE(closest_match(name + "x", {name}));
    EXPECT_EQ(closest_match("prod-vnte", {std::string(5000, 'p'), "prod-vnet"}), "prod-vnet");
    std::string text = "version: 1\nvnets:\n  - {name: " + name + ", vni: 7}\nvaults:\n" +
                       vault("v1", "    network_acls:\n      virtual_network_rules:\n");
    for (int i = 0; i < 25; ++i) text += "        - " + name + "x/app\n";
    auto d = errors_of(text);
    ASSERT_EQ(d.size(), 25u);
    EXPECT_NE(d[0].message.find("unknown VNet '" + std::string(64, 'n') + "'... (20001 bytes)"),
              std::string::npos)
        << d[0].message.substr(0, 200);
}

// Item 10: only regular files are read, so a FIFO cannot block a reload.
TEST(HostileFiles, FifoIsRefusedAtOnce) {
    TempDir t;
    auto fifo = t.path("rules.fifo");
    ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
    auto cat_fifo = t.path("ts.fifo");
    ASSERT_EQ(mkfifo(cat_fifo.c_str(), 0600), 0);
    auto path = t.write("vw.yaml", "version: 1\ntrusted_services: ts.fifo\n");
    auto load = std::async(std::launch::async, [&] {
        return std::make_pair(errors_of_file(fifo), errors_of_file(path));
    });
    if (load.wait_for(std::chrono::seconds(20)) != std::future_status::ready) {
        // Unblock the loader (writers appear) so the test ends, then fail.
        while (load.wait_for(std::chrono::milliseconds(50)) != std::future_status::ready)
            for (const auto& f : {fifo, cat_fifo}) {
                int fd = ::open(f.c_str(), O_WRONLY | O_NONBLOCK);
                if (fd >= 0) ::close(fd);
            }
        FAIL() << "loading a FIFO blocked";
    }
    auto [direct, named] = load.get();
    ASSERT_EQ(direct.size(), 1u);
    EXPECT_EQ(direct[0].str(), fifo + ": error: cannot read rule file: it is a FIFO, not a regular file");
    ASSERT_EQ(named.size(), 1u);
    EXPECT_EQ(named[0].pos.line, 2);
    EXPECT_EQ(named[0].pos.col, 19);
    EXPECT_NE(named[0].message.find("is a FIFO, not a regular file"), std::string::npos);
}

// Item 10: /dev/zero (endless) and an oversized file are refused with the limit named.
TEST(HostileFiles, DevicesAndOversizedFilesAreRefused) {
    auto d = errors_of_file("/dev/zero");
    ASSERT_EQ(d.size(), 1u);
    EXPECT_EQ(d[0].message, "cannot read rule file: it is a character device, not a regular file");
    d = errors_of("version: 1\ntrusted_services: /dev/zero\n");
    ASSERT_EQ(d.size(), 1u);
    EXPECT_EQ(d[0].str(), "h.yaml:2:19: error: cannot read trusted-services catalog '/dev/zero': "
                          "it is a character device, not a regular file");
    TempDir t;
    auto path = t.write("big.yaml", "version: 1\n" + std::string(2000, '#') + "\n");
    try {
        load_rule_file(path, FilesystemSource(1024));
        FAIL();
    } catch (const RuleFileError& e) {
        EXPECT_EQ(e.diagnostics().at(0).message,
                  "cannot read rule file: it is larger than the 1024-byte limit for a rule file");
    }
    EXPECT_NO_THROW(load_rule_file(path, FilesystemSource(4096)));
    EXPECT_EQ(kMaxRuleFileBytes, 256u << 20);
}

// Item 12: a rule file is one YAML document.
TEST(HostileFiles, SecondYamlDocumentIsAnError) {
    auto d = errors_of("version: 1\n---\n[unclosed\n");
    ASSERT_EQ(d.size(), 1u);
    EXPECT_EQ(d[0].pos.line, 2);
    EXPECT_NE(d[0].message.find("a second YAML document"), std::string::npos) << d[0].str();
    d = errors_of("version: 1\n---\nversion: 1\nvaults: []\n");
    ASSERT_EQ(d.size(), 1u);
    EXPECT_EQ(d[0].pos.line, 2);  // at its `---`
    EXPECT_EQ(d[0].pos.col, 1);
    EXPECT_NE(d[0].message.find("a second YAML document; a rule file is one document"),
              std::string::npos)
        << d[0].str();
    // A document end marker alone, or a leading `---`, is still one document.
    EXPECT_NO_THROW(parse_rule_text("---\nversion: 1\n...\n", "h.yaml", "/"));
}

// Item 13: vault names differing only in case are one name (Key Vault's rule).
TEST(HostileFiles, VaultNamesDifferingInCaseAreDuplicates) {
    auto d = errors_of("version: 1\nvaults:\n" + vault("fz-prod") + vault("FZ-PROD"));
    ASSERT_EQ(d.size(), 1u);
    EXPECT_EQ(d[0].str(), "h.yaml:5:5: error: duplicate vault name 'FZ-PROD' (first at line 3, "
                          "col 5, spelled 'fz-prod'); vault names must be unique, ignoring case "
                          "as Key Vault does");
}
