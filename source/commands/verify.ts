import path from 'node:path';
import { listCommand } from '../text/next.js';
import { recipeRedactor } from '../recipe/secrets.js';
import { findBackupSet, listBackupSets, loadBackupSetFromPath } from '../catalog/index.js';
import { sanitizeText } from '../text/sanitize.js';
import { formatUtc } from '../catalog/names.js';
import { isPathRef, needSourceError, resolveBackupSource } from '../catalog/resolve.js';
import { isPhysicalSource } from '../pitr/source.js';
import type { BackupSet, VerifyReport } from '../catalog/types.js';
import { verifyBackupSet, type VerifyProgress } from '../catalog/verify.js';
import { RestoreAssistantError, UsageError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { expandHome } from '../recipe/load.js';
import { prepareRecipeEvidence } from '../evidence/writer.js';
import { startVerifyRun } from '../evidence/verify-run.js';
import { releaseStaged, stagedEvents } from '../offsite/index.js';
import { pickLocalOrOffsite } from '../offsite/pick.js';
import { createOutput, formatAge, formatBytes, formatDuration, paint, type Output } from '../output.js';

export interface VerifyCommandOptions {
  recipe?: string;
  root?: string;
  quick?: boolean;
  json?: boolean;
  /** Point-in-time (physical layout): verify the WAL up to this target ("latest", "immediate", a time). */
  to?: string;
}

/** Progress on stderr: one line per component without a TTY, a live percentage with one. */
function progressPrinter(out: Output): { onProgress: (p: VerifyProgress) => void; done: () => void } {
  const tty = Boolean(process.stderr.isTTY);
  let current = '';
  let lastPct = -1;
  return {
    onProgress: (p) => {
      const name = `${p.component} ${sanitizeText(path.basename(p.path), 120)}`;
      const pct = p.bytesTotal > 0 ? Math.floor((p.bytesDone / p.bytesTotal) * 100) : 100;
      if (name !== current) {
        if (tty && current !== '') process.stderr.write('\n');
        current = name;
        lastPct = -1;
        if (!tty) out.info(`Reading ${name} (${formatBytes(p.bytesTotal)})`);
      }
      if (tty && pct !== lastPct) {
        lastPct = pct;
        process.stderr.write(`\r\u001B[2KReading ${name}  ${pct}% (${formatBytes(p.bytesDone)} of ${formatBytes(p.bytesTotal)})`);
      }
    },
    done: () => {
      if (tty && current !== '') process.stderr.write('\n');
    },
  };
}

export function renderVerifyReport(set: BackupSet, report: VerifyReport, color: boolean, now = Date.now()): string[] {
  const p = paint(color);
  const lines: string[] = [];
  lines.push(
    `Backup set ${sanitizeText(set.id, 80)} (${set.layout}, ${formatUtc(set.time)} UTC, ${formatAge(Math.max(0, now - Date.parse(set.time)))} old), ${report.depth} verification`,
  );
  for (const c of report.components) {
    const mark = c.ok ? p('green', 'ok  ') : p('red', 'FAIL');
    const passed = c.checks.filter((ch) => ch.ok).map((ch) => ch.name);
    const facts: string[] = [];
    const f = c.facts ?? {};
    if (typeof f['tocEntries'] === 'number') facts.push(`${f['tocEntries']} TOC entries`);
    if (typeof f['redisKeys'] === 'number') facts.push(`${f['redisKeys']} keys`);
    if (typeof f['prometheusBlocks'] === 'number')
      facts.push(`${f['prometheusBlocks']} block${f['prometheusBlocks'] === 1 ? '' : 's'}${f['hasWal'] ? ' + wal' : ''}`);
    if (f['plainDumpHasRestrictLine'] === true) facts.push('starts with \\restrict: psql older than 15.14/16.10/17.6 rejects it');
    lines.push(
      `  ${mark} ${c.kind.padEnd(10)} ${sanitizeText(path.basename(c.path), 60).padEnd(24)} ${formatBytes(c.size ?? 0).padStart(9)}  sha256 ${c.checksum ?? 'absent'}${passed.length > 0 ? `; ${passed.join(', ')}` : ''}${facts.length > 0 ? ` (${facts.join(', ')})` : ''}`,
    );
  }
  if (report.depth === 'quick') {
    const skipped = report.components
      .map((c) => ({ kind: c.kind, what: Array.isArray(c.facts?.['notChecked']) ? (c.facts['notChecked'] as string[]) : [] }))
      .filter((x) => x.what.length > 0);
    if (skipped.length > 0)
      lines.push(
        p(
          'dim',
          `Not checked (quick): ${skipped.map((x) => `${x.kind}: ${x.what.join(', ')}`).join('; ')}. Run without --quick to check them.`,
        ),
      );
  }
  if (report.warnings && report.warnings.length > 0) {
    lines.push(p('yellow', 'Warnings:'));
    for (const w of report.warnings) lines.push(`  ${sanitizeText(w, 300)}`);
  }
  if (report.ok) {
    lines.push(
      p(
        'green',
        `Backup set verified (${report.components.length} component${report.components.length === 1 ? '' : 's'}, ${report.depth}, ${formatDuration(report.durationMs)}).`,
      ),
    );
  } else {
    lines.push(p('red', `Backup set rejected: ${report.problems.length} problem${report.problems.length === 1 ? '' : 's'}.`));
    for (const pr of report.problems) lines.push(`  - ${sanitizeText(pr.message, 400)} [${pr.code}]`);
  }
  return lines;
}

/** `restore-assistant verify <set>`: prove a set is restorable; exit 0 good, 3 rejected. */
export async function verifyCommand(ref: string, opts: VerifyCommandOptions): Promise<number> {
  const out = createOutput();
  if (!ref || ref.trim() === '') throw new UsageError('verify needs a set: an id, "latest", or a path.');
  const source = await resolveBackupSource(opts);
  const refIsPath = await isPathRef(ref);
  let set: BackupSet;
  const scope = source ? (source.recipe ? { recipe: source.recipe.file } : { root: path.resolve(expandHome(source.root)) }) : undefined;
  if (!source) {
    if (!refIsPath)
      throw await needSourceError('verify', ` (or give a path to a set directory or dump file instead of "${sanitizeText(ref, 60)}")`, [
        ref,
      ]);
    set = await loadBackupSetFromPath(ref);
  } else if (await isPhysicalSource(source)) {
    return (await import('./pitr.js')).pitrVerifyCommand(source, ref, opts);
  } else {
    const local = async (): Promise<BackupSet> => {
      const listed = await listBackupSets({
        root: source.root,
        layout: source.layout,
        ...(source.database ? { database: source.database } : {}),
        ...(source.pairWindowMinutes ? { pairWindowMinutes: source.pairWindowMinutes } : {}),
      });
      try {
        return findBackupSet(listed.sets, ref, scope);
      } catch (error) {
        if (!refIsPath) throw error;
        return loadBackupSetFromPath(path.resolve(expandHome(ref)), scope);
      }
    };
    // With an off-site source, a set only in the bucket is staged (downloaded, checked, decrypted) first.
    set = source.recipe
      ? await pickLocalOrOffsite(source.recipe, ref, local, { redact: recipeRedactor(source.recipe), log: (line) => out.info(line) })
      : await local();
  }
  const depth = opts.quick ? 'quick' : 'deep';
  out.info(
    `Verifying backup set ${sanitizeText(set.id, 80)} (${depth}, ${set.components.length} component${set.components.length === 1 ? '' : 's'}, ${formatBytes(set.totalSize)})…`,
  );
  const progress = progressPrinter(out);
  // With a recipe, the verification is a run of its own in the recipe's evidence (kind 'verify'),
  // so the runbook's history shows when each set was last proven intact.
  let evidence: ReturnType<typeof startVerifyRun> | undefined;
  try {
    if (source?.recipe) await prepareRecipeEvidence(source.recipe, process.env);
    evidence = source?.recipe ? startVerifyRun(source.recipe, set, stagedEvents(set)) : undefined;
  } catch (error) {
    // Verification is read-only and must work where evidence cannot be written; say so.
    out.info(
      `Warning: this verification is not recorded as evidence: ${error instanceof Error ? error.message : String(error)}${error instanceof RestoreAssistantError && error.next ? ` Next: ${error.next}` : ''}`,
    );
  }
  let report: VerifyReport;
  try {
    report = await verifyBackupSet(set, {
      depth,
      expect: source?.expect ?? [],
      onProgress: progress.onProgress,
      ...(source?.pgBin ? { pgBin: source.pgBin } : {}),
      ...(source?.recipe?.recipe.components.postgres ? { expectDatabase: source.recipe.recipe.components.postgres.database } : {}),
    });
  } catch (error) {
    await evidence?.finish(undefined);
    throw error;
  } finally {
    progress.done();
  }
  const evidenceDirOfRun = await evidence?.finish(report);
  const stagedLine = await releaseStaged(set);
  if (opts.json) {
    out.json(report);
  } else {
    for (const line of renderVerifyReport(set, report, out.color)) out.result(line);
  }
  if (evidenceDirOfRun) out.info(`Evidence: ${evidenceDirOfRun}`);
  if (stagedLine) out.info(stagedLine);
  if (report.ok) {
    out.info(
      report.components.some((c) => c.checksum === 'verified') ? 'Checksums verified. Nothing was touched.' : 'Nothing was touched.',
    );
    return ExitCode.ok;
  }
  out.info(
    `Backup set ${sanitizeText(set.id, 80)} rejected. Nothing was touched. Next: pick another set (\`${listCommand(scope)}\`), or fix the problems above and verify again.`,
  );
  return ExitCode.backupRejected;
}
