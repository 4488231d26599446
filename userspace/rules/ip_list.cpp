#include "rules/ip_list.hpp"

#include "rules/ip_text.hpp"
#include "rules/text.hpp"

namespace vaultwall::rules {

// Hand-written because the format is not YAML: a million lines must not become
// a million YAML nodes.
void scan_ip_list(std::string_view text, const FileName& name, std::vector<IpRule>& out,
                  std::vector<IpRule6>& out6, Diagnostics& diags) {
    if (auto bad = utf8_error(name, text, "an ip_rules_file")) {
        diags.error(bad->pos, bad->message);
        return;
    }
    auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r'; };
    int line = 0;
    std::size_t at = 0;
    while (at < text.size()) {
        ++line;
        std::size_t eol = text.find('\n', at);
        if (eol == std::string_view::npos) eol = text.size();
        std::string_view l = text.substr(at, eol - at);
        at = eol + 1;
        if (auto hash = l.find('#'); hash != std::string_view::npos) l = l.substr(0, hash);
        std::size_t b = 0;
        while (b < l.size() && blank(l[b])) ++b;
        if (b == l.size()) continue;
        std::size_t e = b;
        while (e < l.size() && !blank(l[e])) ++e;
        std::string_view token = l.substr(b, e - b);
        SourcePos pos{name, line, static_cast<int>(b) + 1};
        std::size_t extra = e;
        while (extra < l.size() && blank(l[extra])) ++extra;
        if (extra < l.size()) {
            std::size_t end = extra;
            while (end < l.size() && !blank(l[end])) ++end;
            diags.error({name, line, static_cast<int>(extra) + 1},
                              "a second value " + quote(l.substr(extra, end - extra)) +
                                  " on this line; write one address or CIDR per line "
                                  "(`#` starts a comment)");
            continue;
        }
        auto p = parse_prefix_text(token, "");
        if (auto* err = std::get_if<std::string>(&p)) {
            diags.error(pos, std::move(*err));
            continue;
        }
        if (auto* v4 = std::get_if<Ipv4Prefix>(&std::get<IpPrefix>(p)))
            out.push_back({*v4, std::move(pos)});
        else
            out6.push_back({std::get<Ipv6Prefix>(std::get<IpPrefix>(p)), std::move(pos)});
    }
}

}  // namespace vaultwall::rules
