// The lab's PKI and token tool: `vaultwall-labvault pki|jwks|mint`. The one
// implementation of the lab CA, the vault's TLS certificate, the token
// issuer's key and JWKS, and the lab identities' bearer tokens, used by
// tools/vaultwall-lab, tools/bench/gate.sh and the Vagrant lab.
#pragma once

#include <string_view>

namespace labvault {

// True when argv[1] names one of the PKI subcommands.
bool is_pki_command(std::string_view arg);
// Runs `vaultwall-labvault SUBCOMMAND ARGS...` (argv[0] is the subcommand);
// returns the exit status (0, 1 on failure, 2 on bad usage).
int run_pki_command(int argc, char** argv);

}  // namespace labvault
