// What vaultwallctl shows while the daemon works on a long request.
#pragma once

#include "daemon/control.hpp"

namespace vaultwall::ctl {

// For control_request(): a reload taking more than a second shows its
// phases and counts (parse, compile, prepare/write per interface, flip,
// gate, finish) on stderr when it is a terminal; nothing otherwise.
daemon::Progress reload_progress_printer();

}  // namespace vaultwall::ctl
