// `vaultwallctl import azure` (SPEC §10): the JSON that `az keyvault show`
// prints -> a rule-file vault (SPEC §2), optionally added to a copy of an
// existing rule file whose `vnets` give the VNIs Azure's subnet ids map to.
// Pure: texts in, text out; the CLI (tools/ctl/cmd_import.cpp) does the I/O.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace vaultwall::migrate {

struct AzureImportOptions {
    // --into: the rule file the vault is added to (its text, and its path for
    // messages and for its relative paths). Without it the output is a rule
    // file holding only the imported vault(s).
    std::optional<std::string> into_text;
    std::string into_path;
    // Directory the output is written to. Relative paths of the --into file
    // (catalog, JWKS, TLS files...) are made absolute when it differs from
    // the --into file's directory, so they still name the same files.
    std::string out_dir;
    // What Azure cannot say: where this host serves the vault, and where the
    // gate forwards its requests (needed when the rule file has a `gate`).
    std::vector<std::string> endpoints;  // "203.0.113.10:443"
    std::string upstream;                // "http://127.0.0.1:8200"
};

struct AzureImport {
    std::string yaml;                   // the whole rule file (it passes `vaultwallctl check`)
    std::vector<std::string> vaults;    // names of the imported vaults
    std::vector<std::string> warnings;  // what was not mapped, and why; one line each
};

// Bad input (not JSON, no vault name or tenant, an --into file with errors,
// a missing --upstream the gate needs): a message naming the file and what
// to do; nothing is produced.
class ImportError : public std::runtime_error {
    using std::runtime_error::runtime_error;
};

// `json_text` is one `az keyvault show` object, or an array of them.
AzureImport import_azure(std::string_view json_text, const std::string& json_name,
                         const AzureImportOptions& options);

}  // namespace vaultwall::migrate
