import { createInterface } from 'node:readline/promises';
import { verifyBackupSet } from '../catalog/index.js';
import type { ComponentKind, VerifyReport } from '../catalog/types.js';
import { acquireLocks, lockKeysForRecipe, defaultLockDir } from '../engine/lock.js';
import { EventBus, verificationEvent } from '../engine/events.js';
import { runPlan, type RunSummary } from '../engine/run.js';
import { RestoreAssistantError, UsageError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { createRedactor, type Redactor } from '../exec/redact.js';
import { attachRecipeEvidence, currentOperator, newRunId, prepareRecipeEvidence, type EvidenceHandle } from '../evidence/writer.js';
import { createOutput, formatAge, formatBytes, formatDuration, paint, type Output } from '../output.js';
import { buildPlan } from '../plan/build.js';
import { resolvePlanOptions } from '../plan/options.js';
import { preflightProblems, probeFacts, runPreflight } from '../plan/probe.js';
import { renderPlanText } from '../plan/render.js';
import type { Plan } from '../plan/types.js';
import { evidenceDir, resolveRecipe, type LoadedRecipe } from '../recipe/load.js';
import { defaultSafetyDir, pickBackupSet } from './plan.js';
import { sanitizeDeep, sanitizeText } from '../text/sanitize.js';
import { refuseOverUnfinished } from '../journal/detect.js';
import { attachJournal } from '../journal/journal.js';

/**
 * `restore-assistant restore`: resolve the recipe and the set, verify it (deep by default), probe the
 * targets (read-only), build the plan, confirm (typed word on a TTY, or --yes), then run it with
 * the engine and print the summary. Progress goes to stderr; the summary to stdout (--json: JSON).
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
}

function confirmWord(loaded: LoadedRecipe): string {
  const r = loaded.recipe;
  return r.confirmWord ?? r.components.postgres?.database ?? r.name;
}

async function askConfirmation(word: string, out: Output): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  try {
    const answer = await rl.question(`Type "${word}" to start the restore (anything else cancels): `);
    const ok = answer.trim() === word;
    out.info(ok ? 'Confirmed.' : 'Cancelled. Nothing was touched.');
    return ok;
  } finally {
    rl.close();
  }
}

function verifyRejected(report: VerifyReport, setId: string): RestoreAssistantError {
  return new RestoreAssistantError(`Backup set ${setId} failed ${report.depth} verification: it is not restored.`, ExitCode.backupRejected, {
    problems: report.problems.map((p) => `${p.component ? `${p.component}: ` : ''}${p.message}`),
    untouched: 'Nothing was touched.',
    next: `Pick another set (restore-assistant list), run \`restore-assistant verify ${setId}\` for details, or restore it anyway with --force-unverified "<reason>" (the reason is recorded).`,
  });
}

function databaseMismatchRejected(problems: VerifyReport['problems'], setId: string, database: string): RestoreAssistantError {
  return new RestoreAssistantError(`Backup set ${setId} names another database than ${database}, the recipe's target: it is not restored.`, ExitCode.backupRejected, {
    problems: problems.map((p) => p.message),
    untouched: 'Nothing was touched.',
    next: `Pick the set of ${database} (restore-assistant list), or, if restoring this database's backup into ${database} is intended, re-run with --allow-database-mismatch "<reason>" (the reason is recorded).`,
  });
}

function vsTarget(ms: number | undefined, targetMinutes: number | undefined): string {
  if (ms === undefined) return 'not measured';
  if (targetMinutes === undefined) return `${formatDuration(ms)} (no target set)`;
  const met = ms <= targetMinutes * 60_000;
  return `${formatDuration(ms)} (target ${formatDuration(targetMinutes * 60_000)}: ${met ? 'met' : 'MISSED'})`;
}

const outcomeWords: Record<string, string> = {
  restored: 'restored and healthy',
  unhealthy: 'restored, but health checks failed (restored state kept)',
  'rolled-back': 'failed and rolled back',
  'rollback-incomplete': 'failed, and the rollback is INCOMPLETE: manual action needed',
  failed: 'drill failed: the backup did not restore cleanly (scratch services discarded)',
  interrupted: 'interrupted and rolled back',
  refused: 'refused (nothing was touched)',
};

/** The human summary printed on stdout. */
export function formatSummary(rawSummary: RunSummary, rawPlan: Plan, evidence: string | undefined, color = false): string {
  // Errors, state lines and names carry text from outside: one line each, control characters escaped.
  const summary = sanitizeDeep(rawSummary);
  const plan = sanitizeDeep(rawPlan);
  const c = paint(color);
  const lines: string[] = [];
  const good = summary.exitCode === 0;
  lines.push(`${c('bold', 'Result:')} ${c(good ? 'green' : summary.exitCode === 4 ? 'yellow' : 'red', outcomeWords[summary.outcome] ?? summary.outcome)} (exit ${summary.exitCode})`);
  if (summary.error && !good) lines.push(`${c('bold', 'Why:')} ${summary.error}`);
  lines.push(`${c('bold', 'Backup:')} ${plan.backup.id}, taken ${plan.backup.time}`);
  lines.push(
    summary.outcome === 'unhealthy'
      ? `${c('bold', 'RTO:')} not achieved (health checks failed)${summary.rtoMs !== undefined ? `; ${formatDuration(summary.rtoMs)} from confirm to the end of the failed checks` : ''}`
      : `${c('bold', 'RTO:')} ${vsTarget(summary.outcome === 'restored' ? summary.rtoMs : undefined, plan.objectives.rtoMinutes)}`,
  );
  lines.push(
    `${c('bold', 'RPO:')} ${summary.rpoMs === undefined ? 'not measured' : `${formatAge(summary.rpoMs)} of data lost at most${plan.objectives.rpoMinutes !== undefined ? ` (target ${formatAge(plan.objectives.rpoMinutes * 60_000)}: ${summary.rpoMs <= plan.objectives.rpoMinutes * 60_000 ? 'met' : 'MISSED'})` : ' (no target set)'}`}`,
  );
  if (summary.safetyCopies.length > 0) {
    lines.push(c('bold', 'Safety copies:'));
    for (const copy of summary.safetyCopies) lines.push(`  - ${copy.location} (${copy.description})`);
  }
  lines.push(c('bold', 'State:'));
  for (const s of summary.state) lines.push(`  - ${s}`);
  if (summary.nextSteps.length > 0) {
    lines.push(c('bold', 'Next steps:'));
    for (const s of summary.nextSteps) lines.push(/^\d+\. /.test(s) ? `    ${s}` : `  - ${s}`);
  }
  if (evidence) lines.push(`${c('bold', 'Evidence:')} ${evidence}`);
  return lines.join('\n');
}

/** SIGINT/SIGTERM: the first aborts the run (it rolls back); a second stops waiting. listr2's own handler is off. */
export function installSignalHandlers(out: Output): { signal: AbortSignal; stopSignal: AbortSignal; dispose(): void } {
  const abort = new AbortController();
  const stop = new AbortController();
  const handler = (sig: NodeJS.Signals): void => {
    if (!abort.signal.aborted) {
      out.info(`\n${sig} received: stopping the running command and rolling back. Send it again to stop waiting (the state will be reported as it is).`);
      abort.abort(new Error(sig));
    } else if (!stop.signal.aborted) {
      out.info(`\n${sig} received again: no longer waiting; reporting the exact state.`);
      stop.abort(new Error(sig));
    }
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    signal: abort.signal,
    stopSignal: stop.signal,
    dispose() {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}

export async function restoreCommand(opts: RestoreCommandOptions): Promise<number> {
  const out = createOutput();
  const env = process.env;
  if (!opts.recipe) throw new UsageError('restore needs --recipe NAME (or a path to a recipe file).');
  const interactive = Boolean(process.stdin.isTTY && process.stderr.isTTY);
  if (!opts.yes && !interactive) {
    throw new UsageError('restore needs a confirmation, and there is no terminal to ask on.', {
      next: 'Pass --yes to confirm on the command line (after checking the plan with `restore-assistant plan`).',
    });
  }

  const loaded = await resolveRecipe(opts.recipe);
  // A restore over a run that died half-way would take its half-done state for the data as it was.
  await refuseOverUnfinished(loaded, opts.recipe, env);
  const recipe = loaded.recipe;
  const safetyDir = defaultSafetyDir(loaded, env);
  const options = resolvePlanOptions(recipe, {
    ...(opts.only !== undefined ? { only: opts.only } : {}),
    ...(opts.missingRoles !== undefined ? { missingRoles: opts.missingRoles } : {}),
    ...(opts.jobs !== undefined ? { jobs: opts.jobs } : {}),
    ...(opts.parallel !== undefined ? { parallel: opts.parallel } : {}),
    yes: Boolean(opts.yes),
    rollbackOnUnhealthy: Boolean(opts.rollbackOnUnhealthy),
    dropSafetyCopies: Boolean(opts.dropSafetyCopies),
    ...(opts.forceUnverified ? { forceUnverified: opts.forceUnverified } : {}),
    ...(opts.allowDatabaseMismatch ? { allowDatabaseMismatch: opts.allowDatabaseMismatch } : {}),
    safetyDir,
  });
  const c = recipe.components;
  const redact: Redactor = createRedactor([c.postgres?.passwordEnv, c.redis?.passwordEnv].map((n) => (n ? env[n] : undefined)));

  // One restore per target: take the locks before anything else (verify, probe), so a second
  // restore is refused at once rather than probing targets the first one has stopped.
  // The evidence directory and the signing key are checked before anything slow (locks, verify).
  await prepareRecipeEvidence(loaded, env);
  const runId = newRunId('restore', recipe.name, new Date());
  const kinds = (['postgres', 'redis', 'prometheus'] as ComponentKind[]).filter((k) => c[k] !== undefined && (!options.only || options.only.includes(k)));
  const lockKeys = lockKeysForRecipe(recipe, kinds);
  const locks = await acquireLocks(lockKeys, { dir: defaultLockDir(env, evidenceDir(recipe, env)), runId });
  try {
    const set = await pickBackupSet(loaded, opts.backup ?? 'latest');
    const expect = kinds;
    // Deep by default: every byte is read before anything is touched (a truncated .sql.gz or a
    // damaged custom dump passes the quick header checks and would only fail mid-restore).
    const depth = opts.quickVerify ? 'quick' : 'deep';
    out.info(`Backup set ${sanitizeText(set.id)} (taken ${set.time}) selected; verifying it (${depth === 'deep' ? 'deep: every byte' : 'quick: checksums and headers'})...`);
    let lastProgress = Date.now();
    const report = await verifyBackupSet(set, {
      depth,
      expect,
      ...(c.postgres?.bin ? { pgBin: c.postgres.bin } : {}),
      ...(c.postgres && kinds.includes('postgres') ? { expectDatabase: c.postgres.database } : {}),
      onProgress: (p) => {
        if (Date.now() - lastProgress < 5000 || p.bytesTotal === 0) return;
        lastProgress = Date.now();
        out.info(`  verifying ${p.component}: ${Math.floor((100 * p.bytesDone) / p.bytesTotal)}% of ${formatBytes(p.bytesTotal)}`);
      },
    });
    // A set naming another database is refused on its own (--allow-database-mismatch); every
    // other problem needs --force-unverified.
    const mismatch = report.problems.filter((p) => p.code === 'database-mismatch');
    const otherProblems = report.problems.length - mismatch.length;
    if (otherProblems > 0) {
      if (!opts.forceUnverified) throw verifyRejected(report, set.id);
      out.info(redact(`Warning: set ${set.id} failed ${depth} verification; restoring anyway because: ${opts.forceUnverified}`));
    }
    if (mismatch.length > 0) {
      if (!opts.allowDatabaseMismatch) throw databaseMismatchRejected(mismatch, set.id, c.postgres?.database ?? '');
      out.info(redact(`Warning: ${mismatch.map((p) => p.message).join('; ')}; restoring anyway because: ${opts.allowDatabaseMismatch}`));
    }

    out.info('Probing the targets (read-only)...');
    const facts = await probeFacts(loaded, set, report, { redact, env, safetyDir });
    const blocking = preflightProblems(loaded, set, facts, { missingRoles: options.missingRoles, ...(options.only ? { only: options.only } : {}) }).filter((p) => p.severity === 'error');
    if (blocking.length > 0) {
      throw new RestoreAssistantError(`Preflight found ${blocking.length} problem${blocking.length === 1 ? '' : 's'}: the restore did not start.`, ExitCode.preflightFailed, {
        problems: blocking.map((p) => redact(`${p.component ? `${p.component}: ` : ''}${p.message}${p.next ? ` Next: ${p.next}` : ''}`)),
        untouched: 'Nothing was touched.',
        next: 'Fix the problems listed, then run the restore again (`restore-assistant plan` shows the plan without touching anything).',
      });
    }
    const plan = buildPlan({ recipe: loaded, set, facts, options, mode: 'restore', now: new Date(), verify: report });

    if (!opts.yes) {
      out.info('');
      out.info(redact(renderPlanText(plan, out.color)));
      out.info('');
      if (!(await askConfirmation(confirmWord(loaded), out))) return ExitCode.ok; // cancelled by the operator: nothing touched (as in the guide)
    } else {
      out.info(sanitizeText(`Restoring ${plan.backup.id} over: ${Object.values(plan.targets).join('; ')} (confirmed with --yes).`));
      for (const w of plan.warnings) out.info(redact(`Warning: ${sanitizeText(w)}`));
    }
    const confirmedAt = new Date();

    const bus = new EventBus();
    const signals = installSignalHandlers(out);
    let evidence: EvidenceHandle | undefined;
    let disposeJournal: (() => void) | undefined;
    let summary: RunSummary;
    try {
      // ---- EVIDENCE: the one place a restore attaches its evidence log to the event bus. ----
      evidence = attachRecipeEvidence(bus, { loaded, kind: 'restore', redact, runId, commandLine: ['restore-assistant', ...process.argv.slice(2)], env });
      // The restore journal (source/journal/): durable intents and outcomes, indexed machine-wide.
      const journal = attachJournal(bus, { runDir: evidence.dir, lockKeys, env });
      disposeJournal = journal.dispose;
      bus.emit(verificationEvent(report, redact));
      if (otherProblems > 0 && opts.forceUnverified) bus.emit({ type: 'log', level: 'warn', message: redact(`restoring a set that failed ${depth} verification; operator's reason: ${opts.forceUnverified}`) });
      if (mismatch.length > 0 && opts.allowDatabaseMismatch) {
        bus.emit({ type: 'log', level: 'warn', message: redact(`restoring a set that names another database (${mismatch.map((p) => p.message).join('; ')}); operator's reason: ${opts.allowDatabaseMismatch}`) });
      }

      summary = await runPlan(plan, {
        bus,
        redact,
        env,
        signal: signals.signal,
        stopSignal: signals.stopSignal,
        renderer: process.stderr.isTTY ? 'default' : 'simple',
        write: (line) => out.info(line),
        color: out.color,
        runId,
        kind: 'restore',
        confirmedAt,
        operator: currentOperator(env).operator,
        preflight: async () =>
          (await runPreflight(plan, loaded, { redact, env, verify: report }))
            .filter((p) => p.severity === 'error')
            .map((p) => `${p.component ? `${p.component}: ` : ''}${p.message}${p.next ? ` Next: ${p.next}` : ''}`),
        heldLocks: locks,
        checkContext: { recipe, loaded, mode: 'restore' },
      });
    } finally {
      signals.dispose();
      disposeJournal?.();
      await evidence?.close();
    }

    if (opts.json) {
      out.json({ runId, evidence: evidence?.dir, backup: { id: plan.backup.id, time: plan.backup.time }, objectives: plan.objectives, ...summary });
    } else {
      out.result(formatSummary(summary, plan, evidence?.dir, out.color));
    }
    for (const e of evidence?.errors ?? []) out.info(`Warning: evidence: ${e}`);
    return summary.exitCode;
  } finally {
    await locks.release();
  }
}
