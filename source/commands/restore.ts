import type { VerifyReport } from '../catalog/types.js';
import { EventBus } from '../engine/events.js';
import { RestoreAssistantError, UsageError } from '../errors.js';
import { closingFromRun, formatClosing } from '../evidence/closing.js';
import { ExitCode } from '../exit-codes.js';
import { createOutput, formatBytes, type Output } from '../output.js';
import { renderPlanText } from '../plan/render.js';
import { resolveRecipe, type LoadedRecipe } from '../recipe/load.js';
import { openSession, prepare, verifyRejected } from '../session/session.js';
import { askLine } from '../session/prompt.js';
import { ownCommandSignals, type CommandSignals } from '../session/signals.js';
import { formatSummary } from '../session/summary.js';
import { raCommand } from '../text/next.js';
import { sanitizeText } from '../text/sanitize.js';
import { shellJoin } from '../text/shell.js';
import { isPhysicalRecipe } from '../pitr/source.js';

/**
 * `restore-assistant restore`: parse -> session -> print. The session (source/session/) resolves
 * the set, locks its targets, verifies it (deep by default), probes the targets (read-only) and
 * builds the plan; this command confirms (typed word on a TTY, or --yes), has the session start
 * the run, and prints the summary. Progress goes to stderr; the summary to stdout (--json: JSON).
 */

export interface RestoreCommandOptions {
  recipe?: string;
  backup?: string;
  only?: string;
  missingRoles?: string;
  jobs?: number;
  parallel?: boolean;
  yes?: boolean;
  rollbackOnUnhealthy?: boolean;
  dropSafetyCopies?: boolean;
  forceUnverified?: string;
  allowDatabaseMismatch?: string;
  quickVerify?: boolean;
  json?: boolean;
  /** Point-in-time target (physical recipes): latest, immediate, or a time with its zone. */
  to?: string;
}

/** The plan-shaping flags of this command line, for a pasted `plan` / `restore` (the recipe as typed: it resolved here). */
function planArgs(o: RestoreCommandOptions): string[] {
  return [
    '--recipe',
    o.recipe ?? '',
    '--backup',
    o.backup ?? 'latest',
    ...(o.only ? ['--only', o.only] : []),
    ...(o.missingRoles ? ['--missing-roles', o.missingRoles] : []),
    ...(o.jobs !== undefined ? ['--jobs', String(o.jobs)] : []),
    ...(o.parallel === false ? ['--no-parallel'] : []),
  ];
}

function restoreOnlyArgs(o: RestoreCommandOptions): string[] {
  return [
    ...(o.rollbackOnUnhealthy ? ['--rollback-on-unhealthy'] : []),
    ...(o.dropSafetyCopies ? ['--drop-safety-copies'] : []),
    ...(o.quickVerify ? ['--quick-verify'] : []),
    ...(o.forceUnverified ? ['--force-unverified', o.forceUnverified] : []),
    ...(o.allowDatabaseMismatch ? ['--allow-database-mismatch', o.allowDatabaseMismatch] : []),
  ];
}

function confirmWord(loaded: LoadedRecipe): string {
  const r = loaded.recipe;
  return r.confirmWord ?? r.components.postgres?.database ?? r.name;
}

async function askConfirmation(word: string, out: Output, signals: CommandSignals): Promise<boolean> {
  const answer = await askLine(`Type "${word}" to start the restore (anything else cancels): `, signals);
  // Ctrl-C (or a signal) at the question: cancelled, nothing touched (exit `cancelled`).
  signals.throwIfCancelled('the confirmation');
  const ok = answer?.trim() === word;
  out.info(ok ? 'Confirmed.' : 'Cancelled. Nothing was touched.');
  return ok;
}

function databaseMismatchRejected(
  problems: VerifyReport['problems'],
  setId: string,
  database: string,
  recipeFile: string,
): RestoreAssistantError {
  return new RestoreAssistantError(
    `Backup set ${setId} names another database than ${database}, the recipe's target: it is not restored.`,
    ExitCode.backupRejected,
    {
      problems: problems.map((p) => p.message),
      untouched: 'Nothing was touched.',
      next: `Pick the set of ${database} (\`${raCommand('list', '--recipe', recipeFile)}\`), or, if restoring this database's backup into ${database} is intended, re-run with --allow-database-mismatch "<reason>" (the reason is recorded).`,
    },
  );
}

export async function restoreCommand(opts: RestoreCommandOptions): Promise<number> {
  const out = createOutput();
  // Signals are owned from the first line (session/signals.ts): before the run one cancels (exit
  // `cancelled`, locks released); during it one rolls back.
  const signals = ownCommandSignals({
    notify: (line) => out.info(line),
    what: 'the restore',
    again: shellJoin(['restore-assistant', ...process.argv.slice(2)]),
  });
  try {
    return await restoreOwned(opts, out, signals);
  } finally {
    signals.dispose();
  }
}

async function restoreOwned(opts: RestoreCommandOptions, out: Output, signals: CommandSignals): Promise<number> {
  const env = process.env;
  if (!opts.recipe) throw new UsageError('restore needs --recipe NAME (or a path to a recipe file).');
  const interactive = Boolean(process.stdin.isTTY && process.stderr.isTTY);
  if (!opts.yes && !interactive) {
    throw new UsageError('restore needs a confirmation, and there is no terminal to ask on.', {
      next: `Check the plan (\`${raCommand('plan', ...planArgs(opts))}\`), then confirm on the command line: \`${raCommand('restore', ...planArgs(opts), ...restoreOnlyArgs(opts), '--yes')}\`.`,
    });
  }

  const loaded = await resolveRecipe(opts.recipe);
  if (isPhysicalRecipe(loaded) || opts.to !== undefined) return (await import('./pitr.js')).pitrRestoreCommand(loaded, opts, signals);
  const session = openSession({
    loaded,
    mode: 'restore',
    env,
    recipeRef: opts.recipe,
    commandLine: ['restore-assistant', ...process.argv.slice(2)],
    flags: {
      ...(opts.only !== undefined ? { only: opts.only } : {}),
      ...(opts.missingRoles !== undefined ? { missingRoles: opts.missingRoles } : {}),
      ...(opts.jobs !== undefined ? { jobs: opts.jobs } : {}),
      ...(opts.parallel !== undefined ? { parallel: opts.parallel } : {}),
      yes: Boolean(opts.yes),
      rollbackOnUnhealthy: Boolean(opts.rollbackOnUnhealthy),
      dropSafetyCopies: Boolean(opts.dropSafetyCopies),
      ...(opts.forceUnverified ? { forceUnverified: opts.forceUnverified } : {}),
      ...(opts.allowDatabaseMismatch ? { allowDatabaseMismatch: opts.allowDatabaseMismatch } : {}),
    },
  });
  const redact = session.redactor();
  try {
    // Deep by default: every byte is read before anything is touched (a truncated .sql.gz or a
    // damaged custom dump passes the quick header checks and would only fail mid-restore).
    const depth = opts.quickVerify ? 'quick' : 'deep';
    let lastProgress = Date.now();
    const prepared = await prepare(session, {
      backup: opts.backup ?? 'latest',
      depth,
      signals,
      onStage: (stage, set) => {
        if (stage === 'verify')
          out.info(
            `Backup set ${sanitizeText(set.id)} (taken ${set.time}) selected; verifying it (${depth === 'deep' ? 'deep: every byte' : 'quick: checksums and headers'})...`,
          );
        else out.info('Probing the targets (read-only)...');
      },
      onProgress: (p) => {
        if (Date.now() - lastProgress < 5000 || p.bytesTotal === 0) return;
        lastProgress = Date.now();
        out.info(`  verifying ${p.component}: ${Math.floor((100 * p.bytesDone) / p.bytesTotal)}% of ${formatBytes(p.bytesTotal)}`);
      },
      onRejected: (report, set) => {
        // A set naming another database is refused on its own (--allow-database-mismatch); every
        // other problem needs --force-unverified.
        const mismatch = report.problems.filter((p) => p.code === 'database-mismatch');
        if (report.problems.length > mismatch.length) {
          if (!opts.forceUnverified) throw verifyRejected(report, set.id, loaded.file, set);
          out.info(redact(`Warning: set ${set.id} failed ${depth} verification; restoring anyway because: ${opts.forceUnverified}`));
        }
        if (mismatch.length > 0) {
          if (!opts.allowDatabaseMismatch)
            throw databaseMismatchRejected(mismatch, set.id, loaded.recipe.components.postgres?.database ?? '', loaded.file);
          out.info(
            redact(`Warning: ${mismatch.map((p) => p.message).join('; ')}; restoring anyway because: ${opts.allowDatabaseMismatch}`),
          );
        }
        return 'continue';
      },
    });
    if (prepared.kind !== 'planned') return ExitCode.internal;
    const { plan } = prepared;

    if (!opts.yes) {
      out.info('');
      out.info(redact(renderPlanText(plan, out.color)));
      out.info('');
      if (!(await askConfirmation(confirmWord(loaded), out, signals))) return ExitCode.cancelled; // cancelled by the operator: nothing touched (as in the guide)
    } else {
      out.info(sanitizeText(`Restoring ${plan.backup.id} over: ${Object.values(plan.targets).join('; ')} (confirmed with --yes).`));
      for (const w of plan.warnings) out.info(redact(`Warning: ${sanitizeText(w)}`));
    }
    signals.throwIfCancelled('the confirmation');
    const confirmedAt = new Date();

    // From here a signal interrupts the run: the first rolls back (exit 130), see session/interrupts.ts.
    const run = signals.startRun();
    const bus = new EventBus();
    let started;
    try {
      started = await session.start(plan, {
        bus,
        signal: run.signal,
        stopSignal: run.stopSignal,
        renderer: process.stderr.isTTY ? 'default' : 'simple',
        write: (line) => out.info(line),
        color: out.color,
        confirmedAt,
      });
    } finally {
      run.dispose();
    }
    const { summary, runId, evidenceDir } = started;
    if (opts.json) {
      out.json({
        runId,
        evidence: evidenceDir,
        backup: { id: plan.backup.id, time: plan.backup.time },
        objectives: plan.objectives,
        ...summary,
      });
    } else {
      out.result(formatSummary(summary, plan, evidenceDir, out.color));
      // The block to paste into the incident channel (evidence/closing.ts; report.md ends with it too).
      out.result('');
      out.result(formatClosing(closingFromRun({ summary, plan, evidenceDir, events: bus.history })));
    }
    for (const e of started.evidenceErrors) out.info(`Warning: evidence: ${e}`);
    return summary.exitCode;
  } finally {
    await session.dispose();
  }
}
