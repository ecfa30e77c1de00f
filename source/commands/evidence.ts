import { stat } from 'node:fs/promises';
import path from 'node:path';
import { ExitCode } from '../exit-codes.js';
import { expandHome } from '../recipe/load.js';
import { createOutput, paint } from '../output.js';
import { keyFingerprint, loadSealSigner, parsePublicKey, stateDir } from '../evidence/signing.js';
import { verifyEvidence } from '../evidence/verify.js';
import { resolveRunDir } from './report.js';

/**
 * `restore-assistant evidence verify <run-dir> [--key PUB]`: exit 0 for an intact sealed run (with
 * --key: only when its seal is signed by that key), 6 for an intact run that never sealed
 * (interrupted), 7 for anything edited, reordered or truncated, and with --key for a seal that is
 * unsigned, signed by another key, or re-sealed.
 */
export async function evidenceVerifyCommand(run: string, opts: { json?: boolean; key?: string }): Promise<number> {
  const out = createOutput();
  const expected = opts.key !== undefined ? parsePublicKey(opts.key) : undefined;
  // An existing directory is checked as it is (a missing events.jsonl is itself tampering).
  const asPath = path.resolve(expandHome(run));
  const isDir = await stat(asPath).then(
    (s) => s.isDirectory(),
    () => false,
  );
  const dir = isDir ? asPath : await resolveRunDir(run);
  const v = await verifyEvidence(dir, expected ? { key: expected.key } : {});
  const signatureOk = v.signature?.status === 'valid';
  const code =
    v.status === 'sealed'
      ? expected && !signatureOk
        ? ExitCode.evidenceTampered
        : ExitCode.ok
      : v.status === 'unsealed'
        ? ExitCode.evidenceUnsealed
        : ExitCode.evidenceTampered;
  if (opts.json) {
    out.json({ dir, ...v, ...(expected ? { expectedKey: expected.publicKey } : {}), exitCode: code });
    return code;
  }
  const c = paint(out.color);
  if (v.status === 'sealed' && code !== ExitCode.ok) {
    out.result(`${c('red', 'Evidence NOT signed by the given key')}: ${dir}`);
    out.result(
      `  ${v.lines} lines, hash chain intact, sealed (outcome ${v.outcome ?? '?'}), but ${v.signature?.reason ?? 'the seal is not signed'}.`,
    );
    out.result(`  Expected key: ${expected?.publicKey ?? '?'} (fingerprint ${expected ? keyFingerprint(expected.publicKey) : '?'}).`);
    out.result(
      "  Whoever can write the evidence directory can rewrite a run and its seal; only the signature ties it to this tool's key. Treat this run as forged.",
    );
  } else if (v.status === 'sealed') {
    out.result(`${c('green', 'Evidence verified')}: ${dir}`);
    out.result(`  ${v.lines} lines, hash chain intact, sealed (outcome ${v.outcome ?? '?'}), seal sha256 ${v.sealHash ?? '?'}`);
    out.result(
      `  ${v.indexed ? 'matches the seal recorded in history.jsonl' : 'no entry in history.jsonl to cross-check (the run was not indexed)'}`,
    );
    if (expected) out.result(`  signed by the given key (fingerprint ${keyFingerprint(expected.publicKey)})`);
    else if (v.signature?.status === 'valid')
      out.result(`  ${v.signature.reason}; pass --key with this host's key (\`restore-assistant evidence key\`) to prove who signed it`);
    else out.result(`  seal signature: ${v.signature?.reason ?? 'not checked'}`);
  } else if (v.status === 'unsealed') {
    out.result(`${c('yellow', 'Evidence intact but unsealed')}: ${dir}`);
    out.result(`  ${v.lines} lines, hash chain intact; ${v.reason ?? 'no seal'}.`);
    out.result('  The run was interrupted: the state of its targets is unknown; `restore-assistant report` shows how far it got.');
  } else {
    out.result(`${c('red', 'Evidence tampered')}: ${dir}`);
    out.result(`  first bad line: ${v.firstBadLine ?? '?'} of ${v.lines}`);
    out.result(`  ${v.reason ?? 'hash chain broken'}`);
  }
  return code;
}

/** `restore-assistant evidence key`: this host's seal-signing public key (the key is made on first use). */
export function evidenceKeyCommand(opts: { json?: boolean }): number {
  const out = createOutput();
  const signer = loadSealSigner(process.env);
  if (opts.json) {
    out.json({
      algorithm: 'ed25519',
      publicKey: signer.publicKey,
      fingerprint: keyFingerprint(signer.publicKey),
      keyFile: signer.keyFile,
      stateDir: stateDir(process.env),
    });
  } else {
    out.result(signer.publicKey);
    out.info(
      `Fingerprint ${keyFingerprint(signer.publicKey)}; private key ${signer.keyFile} (mode 0600). Keep this public key off this host (runbook, ticket) and check runs with \`restore-assistant evidence verify <run-dir> --key ${signer.publicKey}\`.`,
    );
  }
  return ExitCode.ok;
}
