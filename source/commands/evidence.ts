import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { UsageError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { expandHome, resolveRecipe, type LoadedRecipe } from '../recipe/load.js';
import type { EvidenceUpload } from '../recipe/schema.js';
import { EVENTS_FILE } from '../evidence/format.js';
import { fetchRun, runsNotUploaded, uploadRootUrl, uploadRun } from '../evidence/upload.js';
import { raCommand } from '../text/next.js';
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

/** The recipe file a run's header names (line 1 of events.jsonl), or undefined. */
async function runHeaderRecipe(dir: string): Promise<{ name: string; file: string } | undefined> {
  try {
    const text = await readFile(path.join(dir, EVENTS_FILE), 'utf8');
    const first = JSON.parse(text.slice(0, text.indexOf('\n'))) as { header?: { recipe?: { name?: unknown; file?: unknown } } };
    const r = first.header?.recipe;
    return typeof r?.name === 'string' && typeof r.file === 'string' ? { name: r.name, file: r.file } : undefined;
  } catch {
    return undefined;
  }
}

function needUpload(loaded: LoadedRecipe): EvidenceUpload {
  const u = loaded.recipe.evidence.upload;
  if (!u) {
    throw new UsageError(`The recipe ${loaded.recipe.name} has no evidence.upload bucket.`, {
      next: `Add evidence.upload (endpoint, bucket, prefix, credentials *Env) to ${loaded.file}: docs/recipes.md, "Evidence off-site".`,
    });
  }
  return u;
}

/**
 * `restore-assistant evidence upload [--recipe R] [RUN]`: send a sealed run directory (RUN), or
 * every sealed run of the recipe not uploaded yet, to the recipe's evidence.upload bucket. Exit 0
 * when all went, 9 when the bucket failed or refused (recorded in history.jsonl), 6 / 7 for a RUN
 * that is not sealed / does not verify (not sent).
 */
export async function evidenceUploadCommand(run: string | undefined, opts: { recipe?: string; json?: boolean }): Promise<number> {
  const out = createOutput();
  if (!opts.recipe && !run) {
    throw new UsageError('Name the recipe whose runs to upload, or one run.', {
      next: 'Pass --recipe with the name or file of a recipe that has evidence.upload (it sends every sealed run not uploaded yet), or one run directory.',
    });
  }
  const dir = run ? await resolveRunDir(run, opts.recipe) : undefined;
  let loaded: LoadedRecipe;
  if (opts.recipe) loaded = await resolveRecipe(opts.recipe);
  else {
    const header = await runHeaderRecipe(dir!);
    if (!header) {
      throw new UsageError(`${dir} does not name the recipe it ran (its first line is not a header).`, {
        next: 'Pass --recipe with the name or file of the recipe that ran it.',
      });
    }
    loaded = await resolveRecipe(header.file);
  }
  const u = needUpload(loaded);
  if (dir) {
    const header = await runHeaderRecipe(dir);
    if (header && header.name !== loaded.recipe.name) {
      throw new UsageError(`The run ${path.basename(dir)} was recorded by the recipe ${header.name}, not ${loaded.recipe.name}.`, {
        next: `\`${raCommand('evidence', 'upload', '--recipe', header.file, dir)}\` sends it with its own recipe's evidence.upload.`,
      });
    }
  }
  const dirs = dir ? [dir] : await runsNotUploaded(loaded);
  const results = [];
  for (const d of dirs) results.push(await uploadRun(d, u, loaded.recipe.name, { log: (l) => out.info(l) }));
  const refused = results.find((r) => r.status === 'refused');
  const code = results.some((r) => r.status === 'failed')
    ? ExitCode.preflightFailed
    : refused?.status === 'refused'
      ? refused.exitCode
      : ExitCode.ok;
  if (opts.json) {
    out.json({ recipe: loaded.recipe.name, results, exitCode: code });
    return code;
  }
  const c = paint(out.color);
  if (results.length === 0) out.result(`Nothing to upload: every sealed run of ${loaded.recipe.name} is in ${uploadRootUrl(u)}`);
  for (const r of results) {
    if (r.status === 'uploaded')
      out.result(`${c('green', 'Uploaded')} ${r.record.runId}: ${r.record.url} (${r.record.objects.length} objects)`);
    else if (r.status === 'failed')
      out.result(`${c('red', 'NOT uploaded')} ${r.record.runId}: ${r.record.why ?? '?'} (after ${r.record.attempts} tries)`);
    else out.result(`${c('yellow', 'Not sent')} ${r.runId}: ${r.why}`);
  }
  if (code === ExitCode.preflightFailed)
    out.info(
      `The failure is recorded in history.jsonl. Next: fix the bucket or network, then ${raCommand('evidence', 'upload', '--recipe', loaded.file)}`,
    );
  return code;
}

/**
 * `restore-assistant evidence fetch --recipe R RUN DIR`: copy a run back from the recipe's
 * evidence.upload bucket into DIR/RUN (then `evidence verify DIR/RUN`). Exit 0 when fetched, 7 when
 * an object differs from what this host's history.jsonl says it uploaded, 9 when the bucket fails.
 */
export async function evidenceFetchCommand(run: string, dest: string, opts: { recipe: string; json?: boolean }): Promise<number> {
  const out = createOutput();
  const loaded = await resolveRecipe(opts.recipe);
  needUpload(loaded);
  const r = await fetchRun(loaded, run, expandHome(dest), { log: (l) => out.info(l) });
  const code = r.differs.length > 0 ? ExitCode.evidenceTampered : ExitCode.ok;
  if (opts.json) {
    out.json({ ...r, exitCode: code });
    return code;
  }
  const c = paint(out.color);
  out.result(`Fetched ${r.url} into ${r.dir} (${r.objects.length} objects)`);
  for (const k of r.skipped) out.result(`  ${c('yellow', 'skipped')} ${k} (not a plain file name of a run directory)`);
  if (r.differs.length > 0) {
    out.result(`${c('red', 'The copy differs from what this host uploaded')}:`);
    for (const d of r.differs) out.result(`  ${d}`);
  } else if (r.recorded) out.result('  every object matches the sha256 this host recorded when it uploaded the run');
  out.result(`Next: ${raCommand('evidence', 'verify', r.dir)}`);
  return code;
}
