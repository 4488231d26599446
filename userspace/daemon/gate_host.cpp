// The seam between the daemon and the L7 gate (userspace/gate). Built with
// VW_HAVE_GATE when the gate library is part of the build.
#include "daemon/daemon.hpp"

namespace vaultwall::daemon {

#ifndef VW_HAVE_GATE
std::unique_ptr<GateHost> make_gate_host() { return nullptr; }
#endif

}  // namespace vaultwall::daemon
