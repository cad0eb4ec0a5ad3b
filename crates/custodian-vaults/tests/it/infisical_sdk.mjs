// Drives Infisical's Node SDK (@infisical/sdk) against a fake Infisical: universal-auth
// login, a secret read by key and folder path, a list of a folder, a missing key.
// Run by tests/it/infisical_sdk.rs; prints one JSON line with what the SDK saw.
//
// Env: INFISICAL_NODE_DIR (a directory with node_modules/@infisical/sdk), SITE_URL,
// CLIENT_ID, CLIENT_SECRET, PROJECT_ID, ENVIRONMENT, SECRET_PATH, SECRET_NAME,
// MISSING_NAME.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const env = (name) => {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set`);
  }
  return value;
};

// Resolve the SDK from the directory it was installed in, not from this script's.
const require = createRequire(path.join(env("INFISICAL_NODE_DIR"), "package.json"));
const { InfisicalSDK } = require("@infisical/sdk");
const sdkVersion = JSON.parse(
  readFileSync(path.join(env("INFISICAL_NODE_DIR"), "node_modules/@infisical/sdk/package.json"), "utf8"),
).version;

const client = new InfisicalSDK({ siteUrl: env("SITE_URL") });
await client.auth().universalAuth.login({
  clientId: env("CLIENT_ID"),
  clientSecret: env("CLIENT_SECRET"),
});

const where = {
  projectId: env("PROJECT_ID"),
  environment: env("ENVIRONMENT"),
  secretPath: env("SECRET_PATH"),
};
const secret = await client.secrets().getSecret({ ...where, secretName: env("SECRET_NAME") });
const listed = await client.secrets().listSecrets(where);

let missing = null;
try {
  await client.secrets().getSecret({ ...where, secretName: env("MISSING_NAME") });
  missing = "found";
} catch (err) {
  missing = String(err && err.message);
}

console.log(
  JSON.stringify({
    sdkVersion,
    key: secret.secretKey,
    value: secret.secretValue,
    path: secret.secretPath,
    listed: listed.secrets.map((s) => [s.secretKey, s.secretValue]),
    missing,
  }),
);
