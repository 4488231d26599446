// The positioned YAML tree the rule parser reads (libyaml underneath).
#include <gtest/gtest.h>

#include <string>

#include "rules/yaml_doc.hpp"

using namespace vaultwall::rules::yaml;

TEST(YamlDoc, NodesKeepTheirPositions) {
    ParseError err;
    auto root = parse_document("a: [x, 'y']\nb:\n  - {c: ~}\n", err);
    ASSERT_TRUE(root) << err.message;
    ASSERT_TRUE(root->IsMap());
    ASSERT_EQ(root->size(), 2u);
    auto it = root->begin();
    EXPECT_EQ(it->first.Scalar(), "a");
    EXPECT_TRUE(it->second.IsSequence());
    EXPECT_EQ(it->second.size(), 2u);
    Node y = *(++it->second.begin());
    EXPECT_EQ(y.Scalar(), "y");
    EXPECT_EQ(y.Mark().line, 0);
    EXPECT_EQ(y.Mark().column, 7);
    ++it;
    Node c = (*it->second.begin());
    ASSERT_TRUE(c.IsMap());
    EXPECT_EQ(c.Mark().line, 2);
    EXPECT_TRUE(c.begin()->second.IsNull());
}

TEST(YamlDoc, AliasesShareAndBillionLaughsIsRefused) {
    ParseError err;
    auto root = parse_document("a: &x [1, 2]\nb: *x\n", err);
    ASSERT_TRUE(root) << err.message;
    EXPECT_EQ((++root->begin())->second.size(), 2u);
    std::string laughs = "l0: &l0 [a, a, a, a, a, a, a, a, a, a]\n";
    for (int i = 1; i < 9; ++i) {
        std::string prev = "*l" + std::to_string(i - 1);
        laughs += "l" + std::to_string(i) + ": &l" + std::to_string(i) + " [";
        for (int k = 0; k < 10; ++k) laughs += (k ? ", " : "") + prev;
        laughs += "]\n";
    }
    EXPECT_FALSE(parse_document(laughs, err));
    EXPECT_NE(err.message.find("expands to more than"), std::string::npos) << err.message;
    EXPECT_GT(err.mark.line, 5);
}

TEST(YamlDoc, DepthAndDocumentsAreBounded) {
    ParseError err;
    EXPECT_FALSE(parse_document(std::string(300, '[') + std::string(300, ']'), err));
    EXPECT_NE(err.message.find("nested deeper than 256"), std::string::npos) << err.message;
    EXPECT_FALSE(parse_document("a: 1\n---\nb: 2\n", err));
    EXPECT_EQ(err.message, "a second YAML document");
    EXPECT_EQ(err.mark.line, 1);
    auto empty = parse_document("", err);
    ASSERT_TRUE(empty);
    EXPECT_TRUE(empty->IsNull());
    EXPECT_FALSE(parse_document("a: [1, 2\nb: 3\n", err));
    EXPECT_EQ(err.mark.line, 1);
    EXPECT_EQ(err.mark.column, 1);
    EXPECT_NE(err.message.find("did not find expected ',' or ']'"), std::string::npos);
}
