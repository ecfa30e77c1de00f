import { chmod, writeFile } from 'node:fs/promises';
import { warnUnfinished } from '../journal/detect.js';
import path from 'node:path';
import { createInterface } from 'node:readline/promises';
import { verifyBackupSet } from '../catalog/index.js';
import type { ComponentKind, VerifyReport } from '../catalog/types.js';
import { assertDrillIsolation, drillRecipe } from '../drill/isolate.js';
import { startDrillScratch, type DrillScratch } from '../drill/sandbox.js';
import { releaseFromExitGuard } from '../sandbox/exit-guard.js';
import { EventBus, verificationEvent } from '../engine/events.js';
import { lockKeysForRecipe, defaultLockDir } from '../engine/lock.js';
import { runPlan, type RunSummary } from '../engine/run.js';
import { RestoreAssistantError, UsageError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { createRedactor } from '../exec/redact.js';
import { attachRecipeEvidence, currentOperator, newRunId, prepareRecipeEvidence, type EvidenceHandle } from '../evidence/writer.js';
import { createOutput } from '../output.js';
import { buildPlan, restorableComponents } from '../plan/build.js';
import { resolvePlanOptions } from '../plan/options.js';
import { preflightProblems, probeFacts, runPreflight } from '../plan/probe.js';
import type { Plan } from '../plan/types.js';
import { evidenceDir, resolveRecipe, type LoadedRecipe } from '../recipe/load.js';
import { toolVersion } from '../version.js';
import { pickBackupSet } from './plan.js';
import { pickDrillSet } from '../drill/pick.js';
import { formatSummary, installSignalHandlers } from './restore.js';
import { sanitizeText } from '../text/sanitize.js';

/**
 * `restore-assistant drill`: prove a backup restores, without touching production. The set is
 * verified deeply, restored by the same plan builder and engine as a real restore into scratch
 * PostgreSQL / Redis / Prometheus on free loopback ports, checked with the recipe's data checks,
 * recorded as a drill (RTO, RPO) in the recipe's evidence history, and torn down.
 */

export interface DrillCommandOptions {
  recipe?: string;
  backup?: string;
  /** random-recent | oldest-retained (source/drill/pick.ts) */
  pick?: string;
  yes?: boolean;
  keep?: boolean;
  json?: boolean;
}

async function askStart(out: ReturnType<typeof createOutput>, recipeName: string, setId: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  try {
    const answer = await rl.question(`Start a drill of ${recipeName} from backup ${setId} into scratch services? [y/N] `);
    const ok = /^y(es)?$/i.test(answer.trim());
    out.info(ok ? 'Confirmed.' : 'Cancelled. Nothing was touched.');
    return ok;
  } finally {
    rl.close();
  }
}

/** Records how --pick chose the set (evidence) and returns the line for stderr. */
function logPick(bus: EventBus, note: string): string {
  const message = sanitizeText(note);
  bus.emit({ type: 'log', level: 'info', message });
  return message;
}

export async function drillCommand(opts: DrillCommandOptions): Promise<number> {
  const out = createOutput();
  if (!opts.recipe) throw new UsageError('drill needs --recipe NAME (or a path to a recipe file).');
  const interactive = Boolean(process.stdin.isTTY && process.stderr.isTTY);
  if (!opts.yes && !interactive) {
    throw new UsageError('drill asks before it starts, and there is no terminal to ask on.', {
      next: 'Pass --yes (scheduled drills: see docs/drills.md).',
    });
  }
  const loaded = await resolveRecipe(opts.recipe);
  // A drill never touches the real targets; it says when a restore left them half done.
  await warnUnfinished(loaded, opts.recipe, (t) => process.stderr.write(`${t}\n`));
  const real = loaded.recipe;
  // The evidence directory and the signing key are checked before anything slow.
  await prepareRecipeEvidence(loaded, process.env);
  if (opts.pick && opts.backup && opts.backup !== 'latest') throw new UsageError('--pick and --backup choose the set two ways; pass one of them.');
  const picked = opts.pick ? await pickDrillSet(loaded, opts.pick) : undefined; // source/drill/pick.ts
  const set = picked?.set ?? (await pickBackupSet(loaded, opts.backup ?? 'latest'));
  const { kinds } = restorableComponents(loaded, set, undefined);
  if (kinds.length === 0) {
    throw new RestoreAssistantError(`Backup set ${set.id} has nothing this recipe restores.`, ExitCode.backupRejected, {
      untouched: 'Nothing was touched.',
      next: 'Check the recipe\'s components and the set (restore-assistant list).',
    });
  }
  if (!opts.yes && !(await askStart(out, real.name, set.id))) return ExitCode.ok;

  const confirmedAt = new Date();
  const runId = newRunId('drill', real.name, confirmedAt);
  const bus = new EventBus();
  const baseRedact = createRedactor([real.components.postgres?.passwordEnv, real.components.redis?.passwordEnv].map((n) => (n ? process.env[n] : undefined)));
  const evidence: EvidenceHandle = attachRecipeEvidence(bus, { loaded, kind: 'drill', redact: baseRedact, runId, commandLine: ['restore-assistant', ...process.argv.slice(2)], env: process.env });
  if (picked) out.info(logPick(bus, picked.note));
  let scratch: DrillScratch | undefined;
  const signals = installSignalHandlers(out);
  let summary: RunSummary | undefined;
  let plan: Plan | undefined;
  try {
    // 1. Deep verification: a drill exists to prove the backup, so every byte is read.
    const expect = (['postgres', 'redis', 'prometheus'] as ComponentKind[]).filter((k) => real.components[k] !== undefined);
    out.info(`Verifying backup set ${sanitizeText(set.id)} (deep: every byte, every archive entry)...`);
    const report: VerifyReport = await verifyBackupSet(set, {
      depth: 'deep',
      expect,
      signal: signals.signal,
      ...(real.components.postgres?.bin ? { pgBin: real.components.postgres.bin } : {}),
      ...(real.components.postgres ? { expectDatabase: real.components.postgres.database } : {}),
    });
    bus.emit(verificationEvent(report, baseRedact));
    if (!report.ok) {
      const rpoMs = confirmedAt.getTime() - Date.parse(set.time);
      bus.emit({
        type: 'run-started',
        runId,
        kind: 'drill',
        operator: currentOperator().operator,
        host: (await import('node:os')).hostname(),
        toolVersion: toolVersion(),
        recipe: { name: real.name, file: loaded.file, digest: loaded.digest },
        backup: { id: set.id, time: set.time, location: set.location },
        confirmedAt: confirmedAt.toISOString(),
      });
      summary = {
        outcome: 'refused',
        exitCode: ExitCode.backupRejected,
        rpoMs,
        safetyCopies: [],
        state: ['Nothing was restored: the backup set failed verification.', ...report.problems.map((p) => `${p.component ?? 'set'}: ${p.message}`)],
        nextSteps: ['Fix the backup job that produced this set; run `restore-assistant verify` on newer sets.'],
      };
      bus.emit({ type: 'run-finished', ...summary });
      out.result(`Drill FAILED: backup set ${set.id} is not restorable.`);
      for (const p of report.problems) out.result(`  - ${p.component ? `${p.component}: ` : ''}${p.message}`);
      out.result(`Evidence: ${evidence.dir}`);
      return ExitCode.backupRejected;
    }

    // 2. Scratch services, and a recipe that can only address them.
    out.info(`Starting scratch services (${kinds.join(', ')}) on loopback ports...`);
    scratch = await startDrillScratch(loaded, kinds);
    const redact = baseRedact.with(scratch.secrets);
    const { recipe: drill, skippedChecks } = drillRecipe(real, scratch.sandbox);
    const drillLoaded: LoadedRecipe = { recipe: drill, file: loaded.file, digest: loaded.digest };
    for (const s of skippedChecks) bus.emit({ type: 'log', level: 'warn', message: `check skipped in drill: ${s}` });
    const facts = await probeFacts(drillLoaded, set, report, { redact, env: scratch.env, safetyDir: scratch.sandbox.rootDirs[0] ?? '' });
    const options = resolvePlanOptions(drill, { yes: true, missingRoles: 'create', safetyDir: scratch.sandbox.rootDirs[0] ?? '' });
    const blocking = preflightProblems(drillLoaded, set, facts, { missingRoles: options.missingRoles }).filter((p) => p.severity === 'error');
    if (blocking.length > 0) {
      throw new RestoreAssistantError(`Drill preflight found ${blocking.length} problem${blocking.length === 1 ? '' : 's'}.`, ExitCode.preflightFailed, {
        problems: blocking.map((p) => redact(`${p.component ? `${p.component}: ` : ''}${p.message}${p.next ? ` Next: ${p.next}` : ''}`)),
        untouched: 'Nothing was restored; the real targets were not contacted.',
        next: 'Fix the problems listed (they would stop a real restore too), then run the drill again.',
      });
    }
    plan = buildPlan({ recipe: drillLoaded, set, facts, options, mode: 'drill', now: confirmedAt, verify: report });
    // 3. The guard: every host, port, URL and path in the plan must be the sandbox's.
    assertDrillIsolation(plan, scratch.sandbox, real);

    const env = scratch.env;
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
      kind: 'drill',
      confirmedAt,
      operator: currentOperator().operator,
      preflight: async () => {
        if (!plan) return [];
        return (await runPreflight(plan, drillLoaded, { redact, env, verify: report })).filter((p) => p.severity === 'error').map((p) => p.message);
      },
      lockDir: defaultLockDir(process.env, evidenceDir(real)),
      lockKeys: lockKeysForRecipe(drill, kinds),
      checkContext: { recipe: drill, loaded: drillLoaded, mode: 'drill' },
    });
  } finally {
    signals.dispose();
    if (scratch) {
      if (opts.keep && summary) {
        const info = path.join(scratch.sandbox.rootDirs[0] ?? '.', 'drill-connection.txt');
        await writeFile(info, `PGPASSWORD=${scratch.env['RESTORE_ASSISTANT_DRILL_PGPASSWORD'] ?? ''}\n`, { mode: 0o600 });
        await chmod(info, 0o600);
        releaseFromExitGuard();
        out.info('Scratch services left running (--keep):');
        for (const line of scratch.connectionInfo()) out.info(`  ${line}`);
      } else {
        await scratch.teardown();
      }
    }
    await evidence.close();
  }
  if (!summary || !plan) return ExitCode.internal;
  if (opts.json) {
    out.json({ runId, kind: 'drill', evidence: evidence.dir, backup: { id: plan.backup.id, time: plan.backup.time }, objectives: plan.objectives, ...summary });
  } else {
    out.result(`Drill of ${real.name}: ${summary.exitCode === 0 ? 'PASSED' : 'FAILED'}`);
    out.result(formatSummary(summary, plan, evidence.dir, out.color));
    if (!opts.keep) out.result('Scratch services stopped and removed.');
  }
  return summary.exitCode;
}
