import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import {
  closeSync,
  constants as fsConstants,
  existsSync,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import { RestoreAssistantError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { createExclusiveSync } from '../exec/safe-fs.js';
import { stateDir } from '../state/paths.js';

/**
 * Seal signatures: each run's seal is signed with an Ed25519 key the tool keeps in its machine-wide
 * state directory, outside the evidence directory, so whoever can rewrite the evidence directory
 * (but not read that key) cannot forge a run that `evidence verify --key PUB` accepts.
 *
 * State directory: $RESTORE_ASSISTANT_STATE_DIR, else /var/lib/restore-assistant as root, else
 * $XDG_STATE_HOME/restore-assistant (~/.local/state/restore-assistant). Created on first use with
 * mode 0700; the private key is seal-ed25519.key (PKCS#8 PEM, mode 0600), created on first use.
 *
 * <run dir>/seal.sig.json (docs/evidence.md):
 *   { "format": "restore-assistant/seal-signature@1", "runId", "sealHash", "algorithm": "ed25519",
 *     "publicKey": "ed25519:<base64 of the 32-byte key>", "signature": "<base64>" }
 * The signature is over the UTF-8 bytes of `restore-assistant/seal-signature@1 <runId> <sealHash>\n`,
 * where sealHash is the sha256 of the seal line (which holds the sha256 of every line before it).
 */

export const SIGNATURE_FILE = 'seal.sig.json';
export const SIGNATURE_FORMAT = 'restore-assistant/seal-signature@1';
export const KEY_FILE = 'seal-ed25519.key';
const KEY_PREFIX = 'ed25519:';

export interface SealSignature {
  format: typeof SIGNATURE_FORMAT;
  runId: string;
  sealHash: string;
  algorithm: 'ed25519';
  publicKey: string;
  signature: string;
}

export interface SealSigner {
  /** "ed25519:<base64>" */
  publicKey: string;
  keyFile: string;
  sign(runId: string, sealHash: string): SealSignature;
}

/** The machine-wide state directory: one helper for every module (source/state/paths.ts). */
export { stateDir } from '../state/paths.js';

function signedMessage(runId: string, sealHash: string): Buffer {
  return Buffer.from(`${SIGNATURE_FORMAT} ${runId} ${sealHash}\n`, 'utf8');
}

/** "ed25519:<base64 of the raw 32 bytes>" for a public key. */
export function formatPublicKey(key: KeyObject): string {
  const jwk = key.export({ format: 'jwk' });
  if (jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string') throw new Error('not an Ed25519 public key');
  return `${KEY_PREFIX}${Buffer.from(jwk.x, 'base64url').toString('base64')}`;
}

/** A short fingerprint for people: the first 16 hex digits of sha256 of the raw key. */
export function keyFingerprint(publicKey: string): string {
  return createHash('sha256')
    .update(Buffer.from(publicKey.slice(KEY_PREFIX.length), 'base64'))
    .digest('hex')
    .slice(0, 16);
}

function keyError(message: string, next: string, cause?: unknown): RestoreAssistantError {
  return new RestoreAssistantError(message, ExitCode.preflightFailed, {
    untouched: 'Nothing was touched.',
    next,
    ...(cause ? { cause } : {}),
  });
}

function myUid(): number {
  return process.getuid?.() ?? -1;
}

/** The state dir must be a real directory we own with mode 0700 (created so when missing). */
function ensureStateDir(dir: string): void {
  try {
    mkdirSync(path.dirname(dir), { recursive: true, mode: 0o755 });
    mkdirSync(dir, { mode: 0o700 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw keyError(
        `Cannot create the state directory ${dir} (${(error as NodeJS.ErrnoException).code ?? 'error'}).`,
        'Make its parent writable, or set RESTORE_ASSISTANT_STATE_DIR to a directory of your own.',
        error,
      );
    }
  }
  const st = lstatSync(dir);
  const mode = st.mode & 0o7777;
  if (!st.isDirectory())
    throw keyError(
      `The state directory ${dir} is not a directory (a symbolic link or a file).`,
      `Remove it (rm -- ${dir}) and run again; it is recreated with mode 0700.`,
    );
  if (st.uid !== myUid())
    throw keyError(
      `The state directory ${dir} is owned by uid ${st.uid}, not by us (uid ${myUid()}): whoever owns it could read or replace the signing key.`,
      `chown ${myUid()} ${dir} && chmod 0700 ${dir}, after checking who made it and why.`,
    );
  if ((mode & 0o077) !== 0)
    throw keyError(
      `The state directory ${dir} has mode ${mode.toString(8).padStart(4, '0')}: others can reach the signing key.`,
      `chmod 0700 ${dir}`,
    );
}

function readKeyFile(file: string): string {
  const fd = openSync(file, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
  try {
    const st = fstatSync(fd);
    const mode = st.mode & 0o7777;
    if (!st.isFile())
      throw keyError(
        `The signing key ${file} is not a regular file.`,
        `Remove it (rm -- ${file}); a new key is made on the next run (register its public key again).`,
      );
    if (st.uid !== myUid())
      throw keyError(
        `The signing key ${file} is owned by uid ${st.uid}, not by us (uid ${myUid()}).`,
        `Remove it (rm -- ${file}) after checking who made it; a new key is made on the next run.`,
      );
    if ((mode & 0o077) !== 0)
      throw keyError(
        `The signing key ${file} has mode ${mode.toString(8).padStart(4, '0')}: others may have read it.`,
        `Treat it as leaked: remove it (rm -- ${file}); a new key is made on the next run (register the new public key).`,
      );
    const buf = Buffer.alloc(Math.min(st.size, 64 * 1024));
    let off = 0;
    while (off < buf.length) {
      const n = readSync(fd, buf, off, buf.length - off, off);
      if (n === 0) break;
      off += n;
    }
    return buf.subarray(0, off).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

const cache = new Map<string, SealSigner>();

/**
 * The signing key of this machine: loaded from the state directory, created there on first use.
 * Throws a RestoreAssistantError (exit 9) with the fix when the directory or key is unsafe.
 */
export function loadSealSigner(env: NodeJS.ProcessEnv = process.env): SealSigner {
  const dir = stateDir(env);
  const keyFile = path.join(dir, KEY_FILE);
  const cached = cache.get(keyFile);
  if (cached) return cached;
  ensureStateDir(dir);
  let pem: string;
  if (existsSync(keyFile) || lstatExists(keyFile)) {
    pem = readKeyFile(keyFile);
  } else {
    const { privateKey } = generateKeyPairSync('ed25519');
    const text = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    try {
      const fd = createExclusiveSync(keyFile, 0o600);
      try {
        writeSync(fd, text);
      } finally {
        closeSync(fd);
      }
      pem = text;
    } catch (error) {
      // Another run made it at the same moment: use that one.
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST')
        throw keyError(
          `Cannot create the signing key ${keyFile} (${(error as NodeJS.ErrnoException).code ?? 'error'}).`,
          'Make the state directory writable, or set RESTORE_ASSISTANT_STATE_DIR.',
          error,
        );
      pem = readKeyFile(keyFile);
    }
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(pem);
    if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error(`a ${privateKey.asymmetricKeyType ?? 'unknown'} key`);
  } catch (error) {
    throw keyError(
      `The signing key ${keyFile} is not an Ed25519 private key (${error instanceof Error ? error.message : String(error)}).`,
      `Move it away (mv -- ${keyFile} ${keyFile}.bad); a new key is made on the next run.`,
      error,
    );
  }
  const publicKey = formatPublicKey(createPublicKey(privateKey));
  const signer: SealSigner = {
    publicKey,
    keyFile,
    sign: (runId, sealHash) => ({
      format: SIGNATURE_FORMAT,
      runId,
      sealHash,
      algorithm: 'ed25519',
      publicKey,
      signature: sign(null, signedMessage(runId, sealHash), privateKey).toString('base64'),
    }),
  };
  cache.set(keyFile, signer);
  return signer;
}

function lstatExists(file: string): boolean {
  try {
    lstatSync(file);
    return true;
  } catch {
    return false;
  }
}

/**
 * A public key as the operator gives it to `--key`: "ed25519:<base64>", the bare base64, a PEM
 * "PUBLIC KEY", or the path of a file holding one of those. Throws a usage error otherwise.
 */
export function parsePublicKey(arg: string): { key: KeyObject; publicKey: string } {
  let text = arg.trim();
  if (!text.startsWith(KEY_PREFIX) && !text.startsWith('-----BEGIN') && existsSync(text)) {
    text = readFileSync(text, 'utf8').trim();
  }
  try {
    let key: KeyObject;
    if (text.startsWith('-----BEGIN')) key = createPublicKey(text);
    else {
      const raw = Buffer.from(text.startsWith(KEY_PREFIX) ? text.slice(KEY_PREFIX.length) : text, 'base64');
      if (raw.length !== 32) throw new Error(`${raw.length} bytes, an Ed25519 key has 32`);
      key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
    }
    if (key.asymmetricKeyType !== 'ed25519') throw new Error(`a ${key.asymmetricKeyType ?? 'unknown'} key`);
    return { key, publicKey: formatPublicKey(key) };
  } catch (error) {
    throw new RestoreAssistantError(
      `--key is not an Ed25519 public key (${error instanceof Error ? error.message : String(error)}).`,
      ExitCode.usage,
      {
        untouched: 'Nothing was touched.',
        next: 'Pass the key `restore-assistant evidence key` prints on the host that made the runs (ed25519:<base64>), or a file holding it.',
      },
    );
  }
}

export type SignatureStatus = 'valid' | 'missing' | 'other-key' | 'invalid';

export interface SignatureCheck {
  status: SignatureStatus;
  /** The key the signature file names (when there is one). */
  publicKey?: string;
  reason: string;
}

/**
 * Check a run's seal.sig.json against the seal line's hash and, when given, the expected key.
 * Without an expected key, a signature is checked against the key it names (which proves nothing
 * about who made it: anyone can sign with a key of their own; docs/evidence.md).
 */
export function checkSignature(
  sigText: string | undefined,
  run: { runId: string; sealHash: string },
  expected?: KeyObject,
): SignatureCheck {
  if (sigText === undefined) return { status: 'missing', reason: `the run has no ${SIGNATURE_FILE}: its seal is not signed` };
  let sig: Partial<SealSignature>;
  try {
    sig = JSON.parse(sigText) as Partial<SealSignature>;
  } catch {
    return { status: 'invalid', reason: `${SIGNATURE_FILE} is not valid JSON` };
  }
  if (
    sig.format !== SIGNATURE_FORMAT ||
    sig.algorithm !== 'ed25519' ||
    typeof sig.signature !== 'string' ||
    typeof sig.publicKey !== 'string'
  ) {
    return { status: 'invalid', reason: `${SIGNATURE_FILE} is not a ${SIGNATURE_FORMAT} Ed25519 signature` };
  }
  const named = sig.publicKey;
  let key: KeyObject;
  try {
    key = expected ?? parsePublicKey(named).key;
  } catch {
    return { status: 'invalid', publicKey: named, reason: `${SIGNATURE_FILE} names a key that is not an Ed25519 public key` };
  }
  if (expected && named !== formatPublicKey(expected)) {
    return {
      status: 'other-key',
      publicKey: named,
      reason: `the seal is signed by another key (${named}, fingerprint ${keyFingerprint(named)})`,
    };
  }
  if (sig.runId !== run.runId || sig.sealHash !== run.sealHash) {
    return {
      status: 'invalid',
      publicKey: named,
      reason: `${SIGNATURE_FILE} signs another seal (run ${String(sig.runId)}, seal sha256 ${String(sig.sealHash)}) than this run's (${run.runId}, ${run.sealHash}): the run was re-sealed`,
    };
  }
  const ok = verify(null, signedMessage(run.runId, run.sealHash), key, Buffer.from(sig.signature, 'base64'));
  return ok
    ? { status: 'valid', publicKey: named, reason: `the seal is signed by ${named} (fingerprint ${keyFingerprint(named)})` }
    : {
        status: 'invalid',
        publicKey: named,
        reason: 'the signature does not match the seal: the run was re-sealed or the signature edited',
      };
}
