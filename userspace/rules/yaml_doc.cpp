#include "rules/yaml_doc.hpp"

#include <yaml.h>

#include <unordered_map>

namespace vaultwall::rules::yaml {

// Scalar: [a, a+b) of `text`. Sequence: kids[a .. a+b). Map: kids[a .. a+2b)
// as key, value, key, value...
struct Rec {
    Kind kind;
    std::uint32_t line, col;
    std::uint32_t a, b;
};

struct Tree {
    std::vector<Rec> recs;
    std::vector<std::uint32_t> kids;
    std::string text;  // every scalar's bytes, back to back
    Node node(std::uint32_t i) const { return Node(this, i); }
    static Node root(const std::shared_ptr<const Tree>& t, std::uint32_t i) {
        Node n(t.get(), i);
        n.keep_ = t;
        return n;
    }
};

Kind Node::kind() const { return t_ ? t_->recs[i_].kind : Kind::null; }

std::string Node::Scalar() const { return std::string(scalar_view()); }

std::string_view Node::scalar_view() const {
    if (!t_ || t_->recs[i_].kind != Kind::scalar) return {};
    const Rec& r = t_->recs[i_];
    return std::string_view(t_->text).substr(r.a, r.b);
}

Mark Node::Mark() const {
    if (!t_) return {};
    return {static_cast<int>(t_->recs[i_].line), static_cast<int>(t_->recs[i_].col)};
}

std::size_t Node::size() const {
    if (!t_) return 0;
    const Rec& r = t_->recs[i_];
    return r.kind == Kind::sequence || r.kind == Kind::map ? r.b : 0;
}

Node Node::child(std::size_t k) const { return t_->node(t_->kids[t_->recs[i_].a + k]); }

Entry Node::iterator::operator*() const {
    Entry e;
    if (n_->IsMap()) {
        e.first = n_->child(2 * i_);
        e.second = n_->child(2 * i_ + 1);
    } else {
        static_cast<Node&>(e) = n_->child(i_);
    }
    return e;
}

namespace {

std::string mark_text(const yaml_mark_t& m) {
    return "line " + std::to_string(m.line + 1) + ", col " + std::to_string(m.column + 1);
}

struct Frame {
    std::uint32_t rec;
    std::size_t pending_start;  // its children so far: pending[pending_start..]
    std::uint64_t expanded;     // nodes it stands for, aliases expanded
    std::string anchor;
};

class Builder {
public:
    explicit Builder(std::string_view text) : tree_(std::make_shared<Tree>()) {
        yaml_parser_initialize(&p_);
        yaml_parser_set_input_string(&p_, reinterpret_cast<const unsigned char*>(text.data()),
                                     text.size());
        tree_->text.reserve(text.size() / 2);
    }
    ~Builder() { yaml_parser_delete(&p_); }
    Builder(const Builder&) = delete;
    Builder& operator=(const Builder&) = delete;

    std::optional<Node> run(ParseError& err);

private:
    // Appends a finished node (index, expanded size) to the open container.
    bool add(std::uint32_t idx, std::uint64_t expanded, ParseError& err, const yaml_mark_t& m) {
        total_ += expanded;
        if (total_ > kMaxExpandedNodes) {
            err = {{static_cast<int>(m.line), static_cast<int>(m.column)},
                   "the document expands to more than " + std::to_string(kMaxExpandedNodes) +
                       " nodes through aliases; refusing it"};
            return false;
        }
        if (stack_.empty()) {
            root_ = idx;
            have_root_ = true;
        } else {
            pending_.push_back(idx);
            stack_.back().expanded += expanded;
        }
        return true;
    }
    std::uint32_t new_rec(Kind k, const yaml_mark_t& m, std::uint32_t a = 0, std::uint32_t b = 0) {
        tree_->recs.push_back({k, static_cast<std::uint32_t>(m.line),
                               static_cast<std::uint32_t>(m.column), a, b});
        return static_cast<std::uint32_t>(tree_->recs.size() - 1);
    }
    static std::string anchor_of(const yaml_char_t* a) {
        return a ? std::string(reinterpret_cast<const char*>(a)) : std::string();
    }

    yaml_parser_t p_;
    std::shared_ptr<Tree> tree_;
    std::vector<Frame> stack_;
    std::vector<std::uint32_t> pending_;
    std::unordered_map<std::string, std::pair<std::uint32_t, std::uint64_t>> anchors_;
    std::uint64_t total_ = 0;
    std::uint32_t root_ = 0;
    bool have_root_ = false;
};

struct Event {
    yaml_event_t e;
    ~Event() { yaml_event_delete(&e); }
};

std::optional<Node> Builder::run(ParseError& err) {
    int documents = 0;
    for (;;) {
        Event ev;
        if (!yaml_parser_parse(&p_, &ev.e)) {
            std::string msg = p_.problem ? p_.problem : "not YAML";
            if (p_.context) msg += " (" + std::string(p_.context) + " at " + mark_text(p_.context_mark) + ")";
            err = {{static_cast<int>(p_.problem_mark.line), static_cast<int>(p_.problem_mark.column)},
                   msg};
            return std::nullopt;
        }
        const yaml_event_t& e = ev.e;
        const yaml_mark_t& m = e.start_mark;
        switch (e.type) {
            case YAML_STREAM_END_EVENT: {
                return have_root_ ? Tree::root(tree_, root_) : Node();
            }
            case YAML_DOCUMENT_START_EVENT:
                if (++documents > 1) {
                    err = {{static_cast<int>(m.line), static_cast<int>(m.column)},
                           "a second YAML document"};
                    return std::nullopt;
                }
                break;
            case YAML_SCALAR_EVENT: {
                std::string_view v(reinterpret_cast<const char*>(e.data.scalar.value),
                                   e.data.scalar.length);
                bool plain = e.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
                std::uint32_t idx;
                if (plain && (v.empty() || v == "~" || v == "null" || v == "Null" || v == "NULL")) {
                    idx = new_rec(Kind::null, m);
                } else {
                    idx = new_rec(Kind::scalar, m, static_cast<std::uint32_t>(tree_->text.size()),
                                  static_cast<std::uint32_t>(v.size()));
                    tree_->text.append(v);
                }
                if (e.data.scalar.anchor) anchors_[anchor_of(e.data.scalar.anchor)] = {idx, 1};
                if (!add(idx, 1, err, m)) return std::nullopt;
                break;
            }
            case YAML_ALIAS_EVENT: {
                auto it = anchors_.find(anchor_of(e.data.alias.anchor));
                if (it == anchors_.end()) {
                    err = {{static_cast<int>(m.line), static_cast<int>(m.column)},
                           "unknown alias *" + anchor_of(e.data.alias.anchor)};
                    return std::nullopt;
                }
                if (!add(it->second.first, it->second.second, err, m)) return std::nullopt;
                break;
            }
            case YAML_SEQUENCE_START_EVENT:
            case YAML_MAPPING_START_EVENT: {
                if (stack_.size() >= kMaxDepth) {
                    err = {{static_cast<int>(m.line), static_cast<int>(m.column)},
                           "nested deeper than " + std::to_string(kMaxDepth) + " levels"};
                    return std::nullopt;
                }
                bool seq = e.type == YAML_SEQUENCE_START_EVENT;
                std::uint32_t idx = new_rec(seq ? Kind::sequence : Kind::map, m);
                stack_.push_back({idx, pending_.size(), 1,
                                  anchor_of(seq ? e.data.sequence_start.anchor
                                                : e.data.mapping_start.anchor)});
                break;
            }
            case YAML_SEQUENCE_END_EVENT:
            case YAML_MAPPING_END_EVENT: {
                Frame f = std::move(stack_.back());
                stack_.pop_back();
                Rec& r = tree_->recs[f.rec];
                std::size_t n = pending_.size() - f.pending_start;
                r.a = static_cast<std::uint32_t>(tree_->kids.size());
                r.b = static_cast<std::uint32_t>(r.kind == Kind::map ? n / 2 : n);
                tree_->kids.insert(tree_->kids.end(), pending_.begin() + f.pending_start, pending_.end());
                pending_.resize(f.pending_start);
                if (!f.anchor.empty()) anchors_[f.anchor] = {f.rec, f.expanded};
                // Its children were counted as they came; count the container itself.
                total_ -= f.expanded - 1;
                if (!add(f.rec, f.expanded, err, m)) return std::nullopt;
                break;
            }
            default:
                break;
        }
    }
}

}  // namespace

std::optional<Node> parse_document(std::string_view text, ParseError& err) {
    Builder b(text);
    return b.run(err);
}

}  // namespace vaultwall::rules::yaml
