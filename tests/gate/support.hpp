// Test support: keys, JWKS, tokens, a lab CA and server certificate, all
// generated in-process with OpenSSL (no fixtures from the net).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include "gate/jwt.hpp"
#include "rules/model.hpp"

namespace vwtest {

// A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0).
std::uint16_t free_port();
// Polls until something accepts on 127.0.0.1:port, for at most `max`.
bool wait_port(std::uint16_t port, std::chrono::milliseconds max, const std::string& addr = "127.0.0.1");


using nlohmann::json;

inline const std::string kTenant = "3f1c9a52-7d0e-4b8a-9c11-5e2f0a6d4b10";
inline const std::string kOtherTenant = "11111111-2222-4333-8444-555555555555";
inline const std::string kSubscription = "0b1f6471-1bf0-4dda-aec3-cb9272f09590";
inline const std::string kIssuer = "https://sts.lab.test/3f1c9a52-7d0e-4b8a-9c11-5e2f0a6d4b10/";
inline const std::string kAudience = "https://vault.azure.net";
inline const std::string kAuthority = "https://login.microsoftonline.com";
inline const std::string kOidApp = "6b0c8d8e-0000-4000-8000-000000000001";
inline const std::string kOidRbac = "6b0c8d8e-0000-4000-8000-000000000002";
inline const std::string kOidStorage = "6b0c8d8e-0000-4000-8000-0000000000aa";
inline const std::string kAppApp = "aaaaaaaa-0000-4000-8000-000000000001";
inline const std::string kAppStorage = "bbbbbbbb-0000-4000-8000-00000000000b";

struct Keys {
    EVP_PKEY* rsa = nullptr;   // kid "rsa1"
    EVP_PKEY* ec = nullptr;    // kid "ec1"
    EVP_PKEY* other = nullptr; // RSA key not in the JWKS
    std::string jwks;          // JSON text with rsa1 + ec1
};
const Keys& keys();  // generated once per process

vaultwall::gate::JwtPolicy policy();

long long now_s();
json base_claims(const std::string& oid = kOidApp, const std::string& appid = kAppApp);
std::string token(const json& claims, const std::string& alg = "RS256", const std::string& kid = "rsa1",
                  EVP_PKEY* key = nullptr);

vaultwall::rules::Identity identity(const std::string& jwks_file = "");
std::vector<vaultwall::rules::TrustedService> catalog();
// contoso-prod: public endpoint 203.0.113.10:443 (or as given), ip rule
// 192.0.2.0/24, access policy for kOidApp (secrets get/list/set, keys
// get/wrapKey/unwrapKey) and for kOidStorage (keys get/wrapKey/unwrapKey).
vaultwall::rules::Vault vault(std::uint32_t ep_addr = 0xCB00710A, std::uint16_t port = 443);

// Writes ca.pem, server.pem (chain), server.key under dir; the server cert
// names 127.0.0.1 .. 127.0.0.9 and localhost, plus `extra_dns`.
void make_lab_pki(const std::string& dir, const std::vector<std::string>& extra_dns = {});

std::string temp_dir(const std::string& tag);
void write_file(const std::string& path, const std::string& text);
std::string read_file(const std::string& path);

}  // namespace vwtest
