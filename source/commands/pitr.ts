import { formatUtc } from '../catalog/names.js';
import type { BackupSource } from '../catalog/resolve.js';
import { createInterface } from 'node:readline/promises';
import { RestoreAssistantError, UsageError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { renderPlanText } from '../plan/render.js';
import type { LoadedRecipe } from '../recipe/load.js';
import { openPitrSession } from '../pitr/session.js';
import type { CommandSignals } from '../session/signals.js';
import { formatSummary } from '../session/summary.js';
import { createOutput, formatBytes, formatDuration, paint } from '../output.js';
import { loadPitrCatalog, clusterBinDir } from '../pitr/catalog.js';
import { parseTarget, targetText } from '../pitr/target.js';
import { pickBase } from '../pitr/pick.js';
import { verifyPitr } from '../pitr/verify.js';
import { baseForTarget, lsnText, type PitrBase } from '../pitr/window.js';
import { recipeRedactor } from '../recipe/secrets.js';
import { createRedactor } from '../exec/redact.js';
import { raCommand } from '../text/next.js';
import { sanitizeText } from '../text/sanitize.js';
import { renderTable } from './list.js';

/** `list` / `verify` for the physical layout (base backups + WAL archive): the windows and where they end. */

function when(iso: string | undefined): string {
  return iso ? `${formatUtc(iso.replace(/\.(\d{3})Z$/, (m, ms: string) => (ms === '000' ? 'Z' : m)))}` : '?';
}

export function baseJson(b: PitrBase): Record<string, unknown> {
  return {
    id: b.set.id,
    location: b.set.location,
    base: b.set.components[0]?.path,
    size: b.set.totalSize,
    extractedBytes: b.extractedBytes,
    timeline: b.timeline,
    startLsn: lsnText(b.startLsn),
    endLsn: lsnText(b.endLsn),
    startTime: b.startTime,
    stopTime: b.stopTime,
    walMajor: b.walMajor,
    walSegmentBytes: b.segSize,
    window: b.window ?? null,
    walFirst: b.run?.first,
    walLast: b.run?.last,
    gap: b.run?.gap ?? null,
    timelines: (b.timelines ?? []).map((t) => ({
      timeline: t.tli,
      fromLsn: t.beginSegNo > 0n ? lsnText(t.beginSegNo * BigInt(b.segSize ?? 0)) : lsnText(b.startLsn),
    })),
    recoveryTimeline: b.recoveryTimeline ?? null,
    problems: b.problems,
    notes: b.notes,
    warnings: b.set.warnings,
  };
}

export function windowLines(b: PitrBase, color: boolean): string[] {
  const p = paint(color);
  const lines: string[] = [];
  const id = sanitizeText(b.set.id, 80);
  if (b.window) {
    lines.push(
      `${id}: restorable from ${when(b.window.from)} to ${when(b.window.to)} UTC (WAL ${b.run?.first ?? '?'} .. ${b.window.lastSegment}); latest: ${b.window.rpo}`,
    );
  } else lines.push(p('red', `${id}: no restorable window`));
  for (const pr of b.problems)
    lines.push(p(pr.code === 'pitr-wal-gap' ? 'yellow' : 'red', `  ! ${sanitizeText(pr.message, 400)} [${pr.code}]`));
  for (const n of b.notes) lines.push(p('dim', `  ${sanitizeText(n, 300)}`));
  for (const w of b.set.warnings) lines.push(p('yellow', `  ${sanitizeText(w, 300)}`));
  return lines;
}

export async function pitrListCommand(source: BackupSource, opts: { json?: boolean }): Promise<number> {
  const out = createOutput();
  const redact = source.recipe ? recipeRedactor(source.recipe) : createRedactor();
  const cat = await loadPitrCatalog(source.root, { ...(source.recipe ? { recipe: source.recipe.recipe } : {}), redact });
  const newest = [...cat.bases].sort((a, b) => Date.parse(b.startTime) - Date.parse(a.startTime));
  if (opts.json) {
    out.json({
      root: cat.root,
      layout: 'physical',
      walArchive: cat.archiveDir,
      ...(source.recipe ? { recipe: source.recipe.recipe.name } : {}),
      listedAt: new Date().toISOString(),
      bases: newest.map(baseJson),
      warnings: cat.warnings,
    });
    return ExitCode.ok;
  }
  const p = paint(out.color);
  if (newest.length === 0) {
    out.info(`No base backups found in ${cat.root}/base (physical layout).`);
    for (const w of cat.warnings) out.info(`  ! ${sanitizeText(w, 300)}`);
    out.info('Nothing was touched. Next: check the pg_basebackup job (pg_basebackup -Ft -D <root>/base/<stamp>).');
    return ExitCode.ok;
  }
  const rows = newest.map((b) => [
    sanitizeText(b.set.id, 80),
    when(b.startTime),
    `${lsnText(b.startLsn)} .. ${lsnText(b.endLsn)}`,
    formatBytes(b.set.totalSize),
    b.window ? `${when(b.window.from)} .. ${when(b.window.to)}` : 'none',
    b.problems.length > 0 ? String(b.problems.length) : '',
  ]);
  const lines = renderTable(['BASE', 'START (UTC)', 'LSN START .. END', 'SIZE', 'WINDOW (UTC)', 'PROBLEMS'], rows);
  out.result(p('bold', lines[0] ?? ''));
  for (const l of lines.slice(1)) out.result(l);
  out.result('');
  for (const b of newest) for (const l of windowLines(b, out.color)) out.result(l);
  if (cat.warnings.length > 0) {
    out.result(p('yellow', 'Warnings:'));
    for (const w of cat.warnings) out.result(`  ${sanitizeText(w, 300)}`);
  }
  out.info(
    `${newest.length} base backup${newest.length === 1 ? '' : 's'} in ${cat.root}/base, WAL archive ${cat.archiveDir} (${cat.archive.segments.size} segments). A restore can stop at any second inside a window (--to).`,
  );
  return ExitCode.ok;
}

export async function pitrVerifyCommand(
  source: BackupSource,
  ref: string,
  opts: { quick?: boolean; json?: boolean; to?: string },
): Promise<number> {
  const out = createOutput();
  const target = parseTarget(opts.to);
  const recipe = source.recipe?.recipe;
  const redact = source.recipe ? recipeRedactor(source.recipe) : createRedactor();
  const cat = await loadPitrCatalog(source.root, { ...(recipe ? { recipe } : {}), redact });
  const base = baseForTarget(pickBase(cat, ref, target), target);
  const depth = opts.quick ? 'quick' : 'deep';
  out.info(`Verifying base ${sanitizeText(base.set.id, 80)} and the WAL archive to ${targetText(target)} (${depth})…`);
  const binDir = clusterBinDir(recipe);
  const { report, segments, walBytes } = await verifyPitr(base, { depth, target, redact, ...(binDir ? { binDir } : {}) });
  if (opts.json) out.json({ ...report, target: targetText(target), base: baseJson(base) });
  else {
    const p = paint(out.color);
    const c = report.components[0];
    out.result(
      `Base ${sanitizeText(base.set.id, 80)} (${formatBytes(base.set.totalSize)}, LSN ${lsnText(base.startLsn)} .. ${lsnText(base.endLsn)}), ${depth} verification, target ${targetText(target)}`,
    );
    for (const ch of c?.checks ?? [])
      out.result(`  ${ch.ok ? p('green', 'ok  ') : p('red', 'FAIL')} ${ch.name}${ch.detail ? `: ${sanitizeText(ch.detail, 200)}` : ''}`);
    for (const l of windowLines(base, out.color)) out.result(l);
    if (report.ok)
      out.result(
        p('green', `Base and WAL verified (${segments} segments, ${formatBytes(walBytes)}, ${formatDuration(report.durationMs)}).`),
      );
    else {
      out.result(p('red', `Rejected: ${report.problems.length} problem${report.problems.length === 1 ? '' : 's'}.`));
      for (const pr of report.problems) out.result(`  - ${sanitizeText(pr.message, 400)} [${pr.code}]`);
    }
  }
  if (report.ok) {
    out.info('Nothing was touched.');
    return ExitCode.ok;
  }
  out.info(
    'Nothing was touched. Next: restore to a time inside the window (--to), pick another base, or recover the missing WAL into the archive and verify again.',
  );
  return ExitCode.backupRejected;
}

function pitrPreflightRefusal(problems: string[], redact: (s: string) => string, planCommand: string): RestoreAssistantError {
  return new RestoreAssistantError(
    `Preflight found ${problems.length} problem${problems.length === 1 ? '' : 's'}: the point-in-time restore did not start.`,
    ExitCode.preflightFailed,
    {
      problems: problems.map((p) => redact(p)),
      untouched: 'Nothing was touched.',
      next: `Fix the problems listed, then run the restore again (\`${planCommand}\` shows the plan without touching anything).`,
    },
  );
}

export interface PitrRestoreOptions {
  recipe?: string;
  backup?: string;
  to?: string;
  yes?: boolean;
  quickVerify?: boolean;
  json?: boolean;
  offline?: boolean;
}

/** The pasteable `plan` command for this restore: the recipe, the base and the target. */
function pitrPlanCommandLine(loaded: LoadedRecipe, opts: PitrRestoreOptions): string {
  return raCommand('plan', '--recipe', opts.recipe ?? loaded.file, '--backup', opts.backup ?? 'latest', '--to', opts.to ?? 'latest');
}

/** `plan --to` on a physical recipe: the dry run (read-only; no locks). */
export async function pitrPlanCommand(loaded: LoadedRecipe, opts: PitrRestoreOptions): Promise<number> {
  const out = createOutput();
  const target = parseTarget(opts.to);
  const session = openPitrSession(loaded, { recipeRef: opts.recipe ?? loaded.file });
  const prepared = await session.prepare({
    backup: opts.backup ?? 'latest',
    target,
    depth: 'quick',
    lock: false,
    onStage: (l) => out.info(l),
  });
  if (opts.json) out.json({ ...prepared.plan, preflight: prepared.preflight, window: prepared.base.window ?? null });
  else {
    out.result(session.redact(renderPlanText(prepared.plan, out.color)));
    for (const l of windowLines(prepared.base, out.color)) out.result(l);
    for (const pr of prepared.preflight) out.result(paint(out.color)('red', `Preflight: ${session.redact(pr)}`));
  }
  out.info('Dry run: nothing was touched.');
  return prepared.preflight.length > 0 ? ExitCode.preflightFailed : ExitCode.ok;
}

/** `restore --to` on a physical recipe. */
export async function pitrRestoreCommand(loaded: LoadedRecipe, opts: PitrRestoreOptions, signals: CommandSignals): Promise<number> {
  const out = createOutput();
  const target = parseTarget(opts.to);
  const interactive = Boolean(process.stdin.isTTY && process.stderr.isTTY);
  if (!opts.yes && !interactive)
    throw new UsageError('restore needs a confirmation, and there is no terminal to ask on.', {
      next: `Pass --yes to confirm on the command line (after checking the plan with \`${pitrPlanCommandLine(loaded, opts)}\`).`,
    });
  const session = openPitrSession(loaded, { recipeRef: opts.recipe ?? loaded.file });
  try {
    const prepared = await session.prepare({
      backup: opts.backup ?? 'latest',
      target,
      depth: opts.quickVerify ? 'quick' : 'deep',
      lock: true,
      onStage: (l) => out.info(l),
    });
    if (prepared.preflight.length > 0) throw pitrPreflightRefusal(prepared.preflight, session.redact, pitrPlanCommandLine(loaded, opts));
    const { plan } = prepared;
    const cluster = plan.targets.postgres ?? loaded.recipe.name;
    if (!opts.yes) {
      out.info(session.redact(renderPlanText(plan, out.color)));
      for (const l of windowLines(prepared.base, out.color)) out.info(l);
      const word = loaded.recipe.confirmWord ?? loaded.recipe.components.postgres?.database ?? loaded.recipe.name;
      const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
      try {
        const answer = await rl.question(
          `This replaces the whole cluster: ${sanitizeText(cluster, 200)}. Type "${word}" to restore it to ${targetText(target)} (anything else cancels): `,
        );
        if (answer.trim() !== word) {
          out.info('Cancelled. Nothing was touched.');
          return ExitCode.cancelled;
        }
        out.info('Confirmed.');
      } finally {
        rl.close();
      }
    } else out.info(sanitizeText(`Restoring ${cluster} from base ${plan.backup.id} (confirmed with --yes).`));
    signals.throwIfCancelled('the confirmation');
    const confirmedAt = new Date();
    // From here a signal interrupts the run: the first rolls back (exit 130), see session/interrupts.ts.
    const runSignals = signals.startRun();
    let result;
    try {
      result = await session.start(prepared, {
        signal: runSignals.signal,
        stopSignal: runSignals.stopSignal,
        renderer: process.stderr.isTTY ? 'default' : 'simple',
        write: (line) => out.info(line),
        color: out.color,
        confirmedAt,
        commandLine: ['restore-assistant', ...process.argv.slice(2)],
      });
    } finally {
      runSignals.dispose();
    }
    const { summary, evidenceDir } = result;
    if (opts.json)
      out.json({
        runId: session.runId,
        evidence: evidenceDir,
        backup: { id: plan.backup.id, restoredTo: plan.backup.time },
        target: targetText(target),
        window: prepared.base.window ?? null,
        ...summary,
      });
    else {
      out.result(formatSummary(summary, plan, evidenceDir, out.color));
      if (prepared.base.window)
        out.result(
          `Restored to ${targetText(target)} (${plan.backup.time}); window ${prepared.base.window.from} .. ${prepared.base.window.to}.`,
        );
    }
    return summary.exitCode;
  } finally {
    await session.dispose();
  }
}
