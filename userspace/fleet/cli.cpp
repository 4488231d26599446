#include "fleet/cli.hpp"

#include <fstream>
#include <sstream>

namespace vaultwall::fleet {

CLI::Option* add_etcd_flags(CLI::App& app, EtcdFlags& f, bool required) {
    auto* o = app.add_option("--etcd", f.endpoints,
                             "etcd endpoints, comma-separated (http://HOST:PORT or https://HOST:PORT)");
    if (required) o->required();
    app.add_option("--etcd-cacert", f.cacert, "CA certificate (PEM) that signed the etcd servers' certificates")
        ->check(CLI::ExistingFile);
    app.add_option("--etcd-cert", f.cert, "client certificate (PEM) for etcd's client-cert auth")
        ->check(CLI::ExistingFile);
    app.add_option("--etcd-key", f.key, "the client certificate's private key (PEM)")->check(CLI::ExistingFile);
    app.add_option("--etcd-user", f.user, "etcd user (etcd's user/password auth)");
    app.add_option("--etcd-password-file", f.password_file,
                   "file holding the etcd user's password (first line), kept out of the process list")
        ->check(CLI::ExistingFile);
    return o;
}

EtcdOptions etcd_options(const EtcdFlags& f) {
    EtcdOptions o;
    o.endpoints = split_endpoints(f.endpoints);
    o.cacert = f.cacert;
    o.cert = f.cert;
    o.key = f.key;
    o.user = f.user;
    if (!f.password_file.empty()) {
        if (f.user.empty()) throw std::invalid_argument("--etcd-password-file needs --etcd-user");
        std::ifstream in(f.password_file);
        if (!in || !std::getline(in, o.password))
            throw std::invalid_argument("cannot read the etcd password from " + f.password_file);
    } else if (!f.user.empty()) {
        throw std::invalid_argument("--etcd-user needs --etcd-password-file");
    }
    return o;
}

}  // namespace vaultwall::fleet
