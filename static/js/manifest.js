// Signed key manifests (docs/SPEC.md §3): which recipient keys the browser seals to. The twin of
// tipline/crypto/manifest.py's verify_manifest. The browser trusts only the org public key the
// page was configured with, never one carried by the manifest itself.
import {
  MAX_SAFE_INTEGER, ManifestError, addDays, b64d, concat, expectDate, expectHeader, expectInt,
  expectLabel, expectMembers, hexd, hexe, isObject, isoDateOf, loadJson, utf8,
} from "./encoding.js";
import { SIG_KEY_MANIFEST, equal, keyId, sodium } from "./sodium.js";

export const MAX_KEY_MANIFEST = 65536;
export const MAX_SIGNED_MANIFEST = 96 * 1024;
export const MAX_RECIPIENTS = 32;
export const MAX_LABEL = 64;
// Body versions a reader accepts: 1 (label only), 2 (each entry also names its staff account).
export const BODY_VERSIONS = [1, 2];
const ACCOUNT = /^[a-z0-9][a-z0-9._-]{1,63}$/;

function parseBody(bytes) {
  const obj = loadJson(bytes, MAX_KEY_MANIFEST, ManifestError, "manifest body");
  const bodyV = obj.v;
  if (obj.type !== "tipline-key-manifest" || !BODY_VERSIONS.includes(bodyV)) {
    throw new ManifestError("manifest body is not a version 1 or 2 tipline-key-manifest document");
  }
  expectMembers(obj, ["type", "v", "version", "issued", "expires", "org_public_key", "recipients"],
    ManifestError, "manifest body");
  const version = expectInt(obj.version, 1, MAX_SAFE_INTEGER, ManifestError, "version");
  const issued = expectDate(obj.issued, ManifestError, "issued");
  const expires = expectDate(obj.expires, ManifestError, "expires");
  if (issued > expires) throw new ManifestError("it expires before it is issued");
  const orgPublicKey = b64d(obj.org_public_key, 32, ManifestError, "org_public_key");
  const entries = obj.recipients;
  if (!Array.isArray(entries) || entries.length < 1 || entries.length > MAX_RECIPIENTS) {
    throw new ManifestError(`it must list 1 to ${MAX_RECIPIENTS} recipients`);
  }
  const recipients = entries.map((entry) => {
    if (!isObject(entry)) throw new ManifestError("a recipient must be a JSON object");
    const members = ["key_id", "public_key", "label", ...(bodyV === 2 ? ["account"] : [])];
    expectMembers(entry, members, ManifestError, "recipient");
    const publicKey = b64d(entry.public_key, 32, ManifestError, "public_key");
    const id = hexd(entry.key_id, 16, ManifestError, "key_id");
    if (!equal(id, keyId(publicKey))) {
      throw new ManifestError("a recipient's key id does not match its public key");
    }
    const label = expectLabel(entry.label, MAX_LABEL, ManifestError, "label");
    const account = entry.account ?? null;
    if (account !== null && (typeof account !== "string" || !ACCOUNT.test(account))) {
      throw new ManifestError("account must be 2 to 64 lowercase letters, digits, '.', '-' or '_'");
    }
    return { keyId: hexe(id), publicKey, label, account };
  });
  if (new Set(recipients.map((r) => r.keyId)).size !== recipients.length) {
    throw new ManifestError("a recipient key is listed twice");
  }
  return { version, issued, expires, orgPublicKey, recipients };
}

// Apply the acceptance rules of docs/SPEC.md §3, in their order. `data` is the signed manifest
// file (bytes or text), `orgPublicKey` the configured key (32 bytes), `today` a UTC
// `YYYY-MM-DD` (default: now). `installedVersion` (rule 5) is for the vectors and the server's
// view; the browser has none and passes null. Throws ManifestError saying which rule failed.
export function verifyManifest(data, orgPublicKey, today = null, installedVersion = null) {
  const bytes = typeof data === "string" ? utf8(data) : data;
  if (!(orgPublicKey instanceof Uint8Array) || orgPublicKey.length !== 32) {
    throw new ManifestError("the configured org key is not 32 bytes");
  }
  const day = today ?? isoDateOf(new Date());
  const outer = loadJson(bytes, MAX_SIGNED_MANIFEST, ManifestError, "signed manifest");
  expectHeader(outer, "tipline-signed-key-manifest", ManifestError, "signed manifest");
  expectMembers(outer, ["type", "v", "body", "signature"], ManifestError, "signed manifest");
  const body = b64d(outer.body, null, ManifestError, "body");
  const signature = b64d(outer.signature, 64, ManifestError, "signature");
  if (body.length > MAX_KEY_MANIFEST) {
    throw new ManifestError(`the body is larger than ${MAX_KEY_MANIFEST} bytes`);
  }
  let valid = false;
  try {
    valid = sodium.crypto_sign_verify_detached(signature, concat(SIG_KEY_MANIFEST, body), orgPublicKey);
  } catch {
    valid = false;
  }
  if (!valid) throw new ManifestError("the signature does not verify against this tip line's org key");
  const manifest = parseBody(body);
  if (!equal(manifest.orgPublicKey, orgPublicKey)) throw new ManifestError("it names a different org key");
  if (day > manifest.expires) throw new ManifestError(`it expired on ${manifest.expires}`);
  if (day < addDays(manifest.issued, -1)) {
    throw new ManifestError(`it is dated in the future (${manifest.issued})`);
  }
  if (installedVersion !== null && manifest.version <= installedVersion) {
    throw new ManifestError(
      `its version ${manifest.version} is not newer than the installed version ${installedVersion}`);
  }
  return manifest;
}
