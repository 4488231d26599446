// The official Azure Key Vault JavaScript SDKs, unmodified, against the
// vaultwall gate (run by tests/gate/test_sdk.cpp, ctest gate_sdk_tests).
//
// Environment (set by the C++ test):
//   VAULT_URL            https://contoso.vault.lab:PORT  (the gate, TLS with the lab CA)
//   GATE_ADDR            127.0.0.1 — where VAULT_URL's host is resolved to
//   TOKENS               JSON file: {"app": JWT, "limited": JWT, "tenant": "...", "audience": "..."}
//   NODE_EXTRA_CA_CERTS  the lab CA
//
// Nothing is mocked on the SDK side: the SDK sends its first request without
// a token, answers the gate's 401 challenge (authorization=, resource=) by
// asking the credential for "<resource>/.default", and retries.
import https from "node:https";
import { readFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { SecretClient } from "@azure/keyvault-secrets";
import { KeyClient, CryptographyClient } from "@azure/keyvault-keys";

const vaultUrl = process.env.VAULT_URL;
const gateAddr = process.env.GATE_ADDR || "127.0.0.1";
const tokens = JSON.parse(readFileSync(process.env.TOKENS, "utf8"));
const vaultHost = new URL(vaultUrl).hostname;

let failures = 0;
function check(cond, what) {
  if (cond) {
    console.log(`ok   ${what}`);
  } else {
    failures++;
    console.log(`FAIL ${what}`);
  }
}

// Resolves the vault's name to the gate's loopback address without touching
// /etc/hosts; TLS still verifies the certificate against the vault's name.
function lookup(hostname, options, cb) {
  if (typeof options === "function") {
    cb = options;
    options = {};
  }
  if (hostname !== vaultHost) return cb(new Error(`test resolver: unexpected host ${hostname}`));
  if (options && options.all) return cb(null, [{ address: gateAddr, family: 4 }]);
  return cb(null, gateAddr, 4);
}
const agent = new https.Agent({ keepAlive: true, lookup });

// A TokenCredential returning a token minted by the test; records what the
// SDK asked for (scopes from the challenge's resource, tenant from authorization).
class TestCredential {
  constructor(token) {
    this.token = token;
    this.requests = [];
  }
  async getToken(scopes, options) {
    this.requests.push({ scopes: [].concat(scopes), tenantId: options && options.tenantId });
    return { token: this.token, expiresOnTimestamp: Date.now() + 3600 * 1000 };
  }
}

const options = { agent, retryOptions: { maxRetries: 0 } };

async function main() {
  const cred = new TestCredential(tokens.app);
  const secrets = new SecretClient(vaultUrl, cred, options);

  // Secrets: set + get round trip (the first call goes through the challenge).
  const name = "sdk-secret";
  const set = await secrets.setSecret(name, "s3cr3t value from the SDK", { contentType: "text/plain" });
  check(set.value === "s3cr3t value from the SDK", "setSecret returns the value");
  check(set.properties.vaultUrl === vaultUrl, `setSecret id is on the vault URL (${set.properties.id})`);
  const got = await secrets.getSecret(name);
  check(got.value === "s3cr3t value from the SDK", "getSecret returns what setSecret stored");
  check(got.properties.version === set.properties.version, "getSecret returns the latest version");
  const v2 = await secrets.setSecret(name, "second");
  const old = await secrets.getSecret(name, { version: set.properties.version });
  check(old.value === "s3cr3t value from the SDK" && v2.properties.version !== set.properties.version,
        "getSecret by version");

  check(cred.requests.length >= 1, "the SDK asked the credential for a token");
  const scopes = cred.requests.map((r) => r.scopes.join(" "));
  check(scopes.every((s) => s === `${tokens.audience}/.default`),
        `scope from the challenge resource (${[...new Set(scopes)].join(",")})`);
  check(cred.requests.every((r) => r.tenantId === tokens.tenant),
        `tenant from the challenge authorization (${[...new Set(cred.requests.map((r) => r.tenantId))].join(",")})`);

  // Keys: create an RSA key, wrap and unwrap through CryptographyClient.
  const keys = new KeyClient(vaultUrl, cred, options);
  const key = await keys.createRsaKey("sdk-key", { keySize: 2048 });
  check(key.keyType === "RSA" && key.id.startsWith(`${vaultUrl}/keys/sdk-key/`), `createRsaKey (${key.id})`);
  const fetched = await keys.getKey("sdk-key");
  check(fetched.id === key.id, "getKey returns the created key");
  const crypto = new CryptographyClient(key.id, cred, options);
  const cek = randomBytes(32);
  const wrapped = await crypto.wrapKey("RSA-OAEP", cek);
  check(wrapped.result && wrapped.result.length === 256, "wrapKey RSA-OAEP gives 256 bytes");
  const unwrapped = await crypto.unwrapKey("RSA-OAEP", wrapped.result);
  check(Buffer.from(unwrapped.result).equals(cek), "unwrapKey returns the wrapped key");

  // A caller without secrets permissions: the gate's ForbiddenByPolicy
  // surfaces as the SDK's RestError with Key Vault's status and codes.
  // This SDK's RestError carries status, code and message but not the body;
  // a per-call pipeline policy (a client option) records the raw 403 body so
  // the inner code can be checked too.
  const forbiddenBodies = [];
  const recordBody = {
    name: "recordForbiddenBody",
    async sendRequest(request, next) {
      const response = await next(request);
      if (response.status === 403) forbiddenBodies.push(response.bodyAsText || "");
      return response;
    },
  };
  const limited = new SecretClient(vaultUrl, new TestCredential(tokens.limited), {
    ...options,
    additionalPolicies: [{ policy: recordBody, position: "perCall" }],
  });
  try {
    await limited.getSecret(name);
    check(false, "getSecret without permission must fail");
  } catch (e) {
    let inner;
    try {
      inner = JSON.parse(forbiddenBodies[0]).error.innererror.code;
    } catch {
      inner = undefined;
    }
    check(e.name === "RestError", `RestError (${e.name})`);
    check(e.statusCode === 403, `status 403 (${e.statusCode})`);
    check(e.code === "Forbidden", `code Forbidden (${e.code})`);
    check(inner === "ForbiddenByPolicy", `innererror ForbiddenByPolicy (${inner})`);
    check(typeof e.message === "string" && e.message.includes("does not have secrets get permission"),
          `Key Vault message (${e.message})`);
  }

  // An invalid token: 401 with error="invalid_token" surfaces as a RestError too.
  const bad = new SecretClient(vaultUrl, new TestCredential(tokens.app.slice(0, -4) + "AAAA"), options);
  try {
    await bad.getSecret(name);
    check(false, "getSecret with a bad signature must fail");
  } catch (e) {
    check(e.name === "RestError" && e.statusCode === 401, `bad token: RestError 401 (${e.name} ${e.statusCode})`);
  }
}

main()
  .catch((e) => {
    failures++;
    console.log(`FAIL unexpected error: ${e && e.stack ? e.stack : e}`);
    if (e && e.details) console.log(JSON.stringify(e.details));
  })
  .finally(() => {
    agent.destroy();
    console.log(failures === 0 ? "SDK CHECKS PASSED" : `${failures} SDK CHECK(S) FAILED`);
    process.exitCode = failures === 0 ? 0 : 1;
  });
