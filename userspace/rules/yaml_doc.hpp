// One YAML document as a compact, positioned, read-only tree, built from
// libyaml's events (libyaml scans a 1,000,000-entry list in ~0.6 s here,
// yaml-cpp in ~5.6 s; yaml-cpp's node API also spends ~0.38 s and a few
// hundred bytes per 100k entries). Every node keeps the line and column it
// starts at, for diagnostics. Aliases share the anchored node (no copies); a
// document that expands beyond kMaxExpandedNodes through aliases is refused.
//
// The Node interface mimics the part of yaml-cpp's the schema code uses.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vaultwall::rules::yaml {

inline constexpr std::uint64_t kMaxExpandedNodes = 1u << 24;  // far above 1M rules
inline constexpr std::size_t kMaxDepth = 256;

struct Mark {
    int line = -1;  // 0-based, like yaml-cpp's; -1 = none
    int column = -1;
    bool is_null() const { return line < 0; }
};

enum class Kind : std::uint8_t { null, scalar, sequence, map };

struct Tree;  // the storage, shared by every Node of a document

class Node {
public:
    Node() = default;  // nothing: null, no mark

    Kind kind() const;
    bool IsNull() const { return kind() == Kind::null; }
    bool IsScalar() const { return kind() == Kind::scalar; }
    bool IsSequence() const { return kind() == Kind::sequence; }
    bool IsMap() const { return kind() == Kind::map; }
    // The scalar's text (empty for anything else).
    std::string Scalar() const;
    std::string_view scalar_view() const;
    yaml::Mark Mark() const;
    // Entries of a sequence, or key/value pairs of a map.
    std::size_t size() const;

    // Iteration, as in yaml-cpp: over a sequence each entry is the item
    // (an Entry is a Node); over a map, `first` and `second`.
    class iterator;
    iterator begin() const;
    iterator end() const;

private:
    friend struct Tree;
    friend class iterator;
    Node(const Tree* t, std::uint32_t i) : t_(t), i_(i) {}
    Node child(std::size_t k) const;
    std::shared_ptr<const Tree> keep_;  // set on the root only
    const Tree* t_ = nullptr;
    std::uint32_t i_ = 0;
};

struct Entry : public Node {
    Node first, second;
};

class Node::iterator {
public:
    iterator(const Node* n, std::size_t i) : n_(n), i_(i) {}
    Entry operator*() const;
    const Entry* operator->() const {
        cur_ = **this;
        return &cur_;
    }
    iterator& operator++() {
        ++i_;
        return *this;
    }
    bool operator!=(const iterator& o) const { return i_ != o.i_; }
    bool operator==(const iterator& o) const { return i_ == o.i_; }

private:
    const Node* n_;
    std::size_t i_;
    mutable Entry cur_;
};

inline Node::iterator Node::begin() const { return {this, 0}; }
inline Node::iterator Node::end() const { return {this, size()}; }

struct ParseError {
    Mark mark;
    std::string message;  // "did not find expected ',' or ']' (while parsing a flow sequence at line 2, col 9)"
};

// The document of `text`, or nullopt with `err` set: not YAML, more than one
// document, too deep, or too big through aliases. An empty text is a null
// root. The root Node keeps the tree alive; other Nodes are valid while the
// root (or a copy of it) lives.
std::optional<Node> parse_document(std::string_view text, ParseError& err);

}  // namespace vaultwall::rules::yaml
