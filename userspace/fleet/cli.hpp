// The etcd connection flags every fleet program takes (vaultwalld --etcd,
// vaultwallctl publish and fleet status), declared once.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "fleet/etcd.hpp"

namespace vaultwall::fleet {

struct EtcdFlags {
    std::string endpoints;  // --etcd URLS (comma-separated)
    std::string cacert, cert, key;
    std::string user, password_file;
};

// Adds --etcd (required when `required`), --etcd-cacert, --etcd-cert,
// --etcd-key, --etcd-user and --etcd-password-file to `app`.
CLI::Option* add_etcd_flags(CLI::App& app, EtcdFlags& flags, bool required);

// The client options the flags say; throws std::invalid_argument (bad
// endpoint list, unreadable password file, user without password).
EtcdOptions etcd_options(const EtcdFlags& flags);

}  // namespace vaultwall::fleet
