import { stat } from 'node:fs/promises';
import path from 'node:path';
import { ExitCode } from '../exit-codes.js';
import { expandHome } from '../recipe/load.js';
import { createOutput, paint } from '../output.js';
import { verifyEvidence } from '../evidence/verify.js';
import { resolveRunDir } from './report.js';

/**
 * `restore-assistant evidence verify <run-dir>`: exit 0 for an intact sealed run, 6 for an intact
 * run that never sealed (interrupted), 7 for anything edited, reordered or truncated.
 */
export async function evidenceVerifyCommand(run: string, opts: { json?: boolean }): Promise<number> {
  const out = createOutput();
  // An existing directory is checked as it is (a missing events.jsonl is itself tampering).
  const asPath = path.resolve(expandHome(run));
  const isDir = await stat(asPath).then((s) => s.isDirectory(), () => false);
  const dir = isDir ? asPath : await resolveRunDir(run);
  const v = await verifyEvidence(dir);
  const code = v.status === 'sealed' ? ExitCode.ok : v.status === 'unsealed' ? ExitCode.evidenceUnsealed : ExitCode.evidenceTampered;
  if (opts.json) {
    out.json({ dir, ...v, exitCode: code });
    return code;
  }
  const c = paint(out.color);
  if (v.status === 'sealed') {
    out.result(`${c('green', 'Evidence verified')}: ${dir}`);
    out.result(`  ${v.lines} lines, hash chain intact, sealed (outcome ${v.outcome ?? '?'}), seal sha256 ${v.sealHash ?? '?'}`);
    out.result(`  ${v.indexed ? 'matches the seal recorded in history.jsonl' : 'no entry in history.jsonl to cross-check (the run was not indexed)'}`);
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
