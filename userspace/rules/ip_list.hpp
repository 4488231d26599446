// The ip_rules_file format (SPEC §7, §11): one address or CIDR a line, IPv4 or
// IPv6 (mixed as you like), `#` starts a comment, blank lines ignored; errors
// name file:line:col.
#pragma once

#include <string_view>
#include <vector>

#include "rules/diagnostics.hpp"
#include "rules/model.hpp"

namespace vaultwall::rules {

// Appends the rules of `text` (the file `name`) to `out` (IPv4) and `out6`
// (IPv6) in file order, duplicates kept (validate() merges them with a warning).
void scan_ip_list(std::string_view text, const FileName& name, std::vector<IpRule>& out,
                  std::vector<IpRule6>& out6, Diagnostics& diags);

}  // namespace vaultwall::rules
