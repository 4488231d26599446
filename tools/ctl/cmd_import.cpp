// vaultwallctl import azure FILE.json [--into RULES.yaml] [-o OUT.yaml]
// (SPEC §10): offline, no daemon, no root. The logic is userspace/migrate.
#include "commands.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include "migrate/azure_import.hpp"

namespace vaultwall::ctl {
namespace {

namespace fs = std::filesystem;

struct ImportArgs {
    std::string file, into, out, upstream;
    std::vector<std::string> endpoints;
};

std::string read_all(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path + ": " + std::strerror(errno));
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// Temporary file beside `path`, then rename: a reader never sees half a file.
void write_atomically(const std::string& path, const std::string& text) {
    std::string tmp = path + ".tmp." + std::to_string(getpid());
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        out << text;
        out.flush();
        if (!out) {
            std::remove(tmp.c_str());
            throw std::runtime_error("cannot write " + tmp);
        }
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        std::string err = std::strerror(errno);
        std::remove(tmp.c_str());
        throw std::runtime_error("cannot write " + path + ": " + err);
    }
}

int run_import(const ImportArgs& a) {
    migrate::AzureImportOptions o;
    try {
        std::string text = read_all(a.file);
        if (!a.into.empty()) {
            o.into_text = read_all(a.into);
            o.into_path = a.into;
        }
        o.endpoints = a.endpoints;
        o.upstream = a.upstream;
        if (!a.out.empty()) {
            fs::path dir = fs::path(a.out).parent_path();
            o.out_dir = dir.empty() ? "." : dir.string();
        }
        auto r = migrate::import_azure(text, a.file, o);
        for (const auto& w : r.warnings) std::cerr << "vaultwallctl: warning: " << w << "\n";
        if (a.out.empty()) {
            std::cout << r.yaml;
        } else {
            write_atomically(a.out, r.yaml);
            std::cerr << "vaultwallctl: imported " << r.vaults.size() << " vault(s) into " << a.out << "\n";
        }
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "vaultwallctl: " << e.what() << "\n";
        return 1;
    }
}

}  // namespace

Runner add_import(CLI::App& app, const Globals&) {
    auto args = std::make_shared<ImportArgs>();
    auto* import = app.add_subcommand("import", "turn another firewall's configuration into rule-file vaults (offline)");
    import->require_subcommand(1);
    auto* azure = import->add_subcommand(
        "azure", "from `az keyvault show` JSON to a rule-file vault; what cannot be mapped is named on stderr");
    azure->add_option("FILE.json", args->file, "output of `az keyvault show` (one vault, or a JSON array of them)")
        ->required();
    azure->add_option("--into", args->into,
                      "add the vault to a copy of this rule file; its `vnets` give the VNIs of Azure subnet ids");
    azure->add_option("-o,--output", args->out, "write the rule file here (default: standard output)");
    azure->add_option("--endpoint", args->endpoints, "IPv4:PORT this host serves the vault on (repeatable)");
    azure->add_option("--upstream", args->upstream, "where the gate forwards the vault's requests (http://HOST:PORT)");
    return [import, args]() -> std::optional<int> {
        if (!import->parsed()) return std::nullopt;
        return run_import(*args);
    };
}

}  // namespace vaultwall::ctl
