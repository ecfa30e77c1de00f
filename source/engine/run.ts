import { raCommand } from '../text/next.js';
import os from 'node:os';
import { runCheck, type CheckContext } from '../checks/index.js';
import { ExitCode } from '../exit-codes.js';
import { redactDeep } from '../exec/redact.js';
import type { Plan, PlanStep } from '../plan/types.js';
import { validatePlan } from '../plan/validate.js';
import { restoreInFlight } from '../state/holds.js';
import { toolVersion } from '../version.js';
import type { CheckRunner } from './actions.js';
import { dropCopies } from './drop-copies.js';
import type { EngineEventBody, Outcome } from './events.js';
import { attachLineRenderer } from './line-renderer.js';
import { rtoClockStart } from '../evidence/rto.js';
import { acquireLocks, defaultLockDir, LockError, type LockHandle } from './lock.js';
import type { ExecuteOptions, RunPlanOptions } from './options.js';
import { trackProgress } from './progress.js';
import { rollback } from './rollback.js';
import { runTasks, scheduleTasks } from './schedule.js';
import { newRunState, rec, runStep, type RunState } from './step.js';
import {
  buildSummary,
  everyTarget,
  incompleteRollback,
  keptCopies,
  manualUndo,
  runCriticalPath,
  stateLines,
  type RunSummary,
} from './summary.js';
import { askUnhealthy } from './unhealthy.js';

/**
 * The engine: runs a Plan exactly as planned, as listr2 tasks, and reports everything on the bus.
 * It never prompts and never exits the process. On a failure or an interrupt it undoes every step
 * that started (completed ones and the one that failed half-way) in reverse order, and says exactly
 * what state each target is in — including what is left to do by hand when an undo fails.
 *
 * This file takes the locks, runs the preflight and decides the outcome. The parts: options.ts
 * (what a run is given), schedule.ts (steps and parallel lanes as listr2 tasks), step.ts (one step
 * and the run's shared state), rollback.ts (the undo pass), unhealthy.ts (keep or roll back?),
 * drop-copies.ts (--drop-safety-copies), summary.ts (the one summary builder and its lines).
 */

export type { RendererName, RunPlanOptions, UnhealthyDecision } from './options.js';
export type { RunSummary } from './summary.js';

/** The recipe-aware check runner (source/checks/index.ts); `checkContext.recipe` carries the recipe. */
const defaultCheckRunner: CheckRunner = async (check, ctx) => {
  const recipe = ctx['recipe'] as CheckContext['recipe'] | undefined;
  if (!recipe)
    return { ok: false, attempts: 0, durationMs: 0, detail: `no recipe to run "${check.name}" against (checkContext.recipe is missing)` };
  return runCheck(check, { recipe, env: ctx.env, redact: ctx.redact, signal: ctx.signal });
};

export async function runPlan(plan: Plan, opts: RunPlanOptions): Promise<RunSummary> {
  const { bus } = opts;
  const redact = opts.redact;
  const env = opts.env ?? process.env;
  const runStartedAt = new Date();
  const clockStart = opts.confirmedAt ?? runStartedAt;
  // The one RTO definition (evidence/rto.ts): a restore's clock starts at the confirmation, a drill's here.
  const rtoFrom = rtoClockStart(opts.kind, { confirmedAt: opts.confirmedAt, runStartedAt });
  const emit = (body: EngineEventBody): void => {
    bus.emit(body);
  };
  const detach =
    opts.renderer === 'simple'
      ? attachLineRenderer(bus, {
          write: opts.write ?? ((line) => process.stderr.write(`${line}\n`)),
          color: opts.color ?? false,
          steps: plan.steps.map((s) => s.id),
        })
      : () => undefined;

  emit({
    type: 'run-started',
    runId: opts.runId,
    kind: opts.kind,
    operator: opts.operator ?? safeUser(),
    host: os.hostname(),
    toolVersion: toolVersion(),
    recipe: plan.recipe,
    backup: { id: plan.backup.id, time: plan.backup.time, location: redact(plan.backup.location) },
    plan: redactDeep(plan, redact),
    ...(opts.confirmedAt ? { confirmedAt: opts.confirmedAt.toISOString() } : {}),
    rtoFrom: rtoFrom.toISOString(),
  });

  // From here until the run has ended a restore is in flight: if the process dies of a bug, its locks
  // stay for `recover` (source/last-resort.ts), which reads the journal this run keeps. A drill's
  // targets are scratch services, removed when the process exits.
  const landed =
    opts.kind === 'restore' ? restoreInFlight({ runId: opts.runId, recipe: plan.recipe.name, recipeFile: plan.recipe.file }) : undefined;

  const rpoMs = Number.isNaN(Date.parse(plan.backup.time)) ? undefined : Math.max(0, clockStart.getTime() - Date.parse(plan.backup.time));

  const finish = (summary: RunSummary): RunSummary => {
    const clean = redactDeep(summary, redact);
    emit({ type: 'run-finished', ...clean });
    return clean;
  };

  const refuse = (exitCode: number, error: string, nextSteps: string[], problems: string[] = []): RunSummary => {
    for (const p of problems) emit({ type: 'log', level: 'error', message: redact(p) });
    return finish(buildSummary({ outcome: 'refused', exitCode, rpoMs, state: everyTarget(plan, 'untouched'), nextSteps, error }));
  };

  try {
    const planProblems = validatePlan(plan);
    if (planProblems.length > 0) {
      return refuse(
        ExitCode.preflightFailed,
        `The plan is unsafe to run: ${planProblems[0] ?? ''}`,
        ['This is a bug in the plan builder: report it with the plan (`restore-assistant plan --json`). Nothing was touched.'],
        planProblems,
      );
    }
    if (opts.signal?.aborted) {
      return finish(notStarted(plan));
    }

    let lock: LockHandle;
    try {
      // A caller that took the locks before probing (restore, drill) hands them over; it releases them.
      // The plan names its lock keys. A caller that took them before verifying and probing (the
      // session) hands them over and releases them itself; any key it does not hold is taken here.
      const missing = plan.lockKeys.filter((k) => !opts.heldLocks?.files.has(k));
      lock =
        missing.length === 0
          ? { files: new Map(), release: async () => undefined }
          : await acquireLocks(missing, { dir: opts.lockDir ?? defaultLockDir(env), runId: opts.runId });
    } catch (error) {
      if (error instanceof LockError) return refuse(ExitCode.locked, error.message, error.next ? [error.next] : [], error.problems);
      throw error;
    }
    try {
      if (opts.preflight) {
        const problems = await opts.preflight();
        if (problems.length > 0) {
          return refuse(
            ExitCode.preflightFailed,
            `Preflight found ${problems.length} problem${problems.length === 1 ? '' : 's'}: ${problems[0] ?? ''}`,
            ['Fix the problems listed above and run the restore again.'],
            problems,
          );
        }
      }
      if (opts.signal?.aborted) {
        return finish(notStarted(plan));
      }
      return finish(
        await checkedLive(
          await execute(plan, { ...opts, env, runCheck: opts.runCheck ?? defaultCheckRunner, clockStart: rtoFrom, rpoMs }),
          opts,
        ),
      );
    } finally {
      await lock.release();
    }
  } finally {
    landed?.();
    detach();
  }
}

/** After an interrupt: the state lines as checked live (RunPlanOptions.stateNow), with the engine's own account in the evidence. */
async function checkedLive(summary: RunSummary, opts: RunPlanOptions): Promise<RunSummary> {
  if (!opts.stateNow || !opts.signal?.aborted || opts.kind === 'drill') return summary;
  opts.bus.emit({
    type: 'log',
    level: 'info',
    message: opts.redact(`after the interrupt, the engine's account of the targets: ${summary.state.join('; ')}`),
  });
  try {
    const live = await opts.stateNow();
    if (live.length === 0) return summary;
    opts.bus.emit({ type: 'log', level: 'info', message: opts.redact(`what each target holds now, checked live: ${live.join('; ')}`) });
    return { ...summary, state: live.map((l) => `${l} (checked live)`) };
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    return {
      ...summary,
      state: [...summary.state, `(the live check of the targets failed: ${opts.redact(why)}; the lines above are the engine's account)`],
    };
  }
}

/**
 * A signal after the confirmation but before the first step began: nothing was touched, so it is a
 * cancel, as before the run (exit `cancelled`, 0), not an interrupted run (130). No RPO: nothing was restored.
 */
function notStarted(plan: Plan): RunSummary {
  const again = plan.mode === 'drill' ? 'Run the drill again when ready.' : 'Run the restore again when ready.';
  return buildSummary({
    outcome: 'cancelled',
    exitCode: ExitCode.cancelled,
    rpoMs: undefined,
    state: everyTarget(plan, 'untouched'),
    nextSteps: [`Nothing was touched; the locks are released. ${again}`],
    error: 'cancelled by a signal before the first step: nothing was touched',
  });
}

function safeUser(): string {
  try {
    return os.userInfo().username;
  } catch {
    return process.env['USER'] ?? 'unknown';
  }
}

async function execute(plan: Plan, opts: ExecuteOptions): Promise<RunSummary> {
  const run = newRunState(plan, opts);
  // listr2's terminal display: each running step says "step N of M, elapsed, about T left" (progress.ts).
  if (opts.renderer === 'default') run.progress = trackProgress(plan, opts.bus);
  const tasks = scheduleTasks(plan, {
    runStep: (step, task) => runStep(run, step, task),
    status: (id) => {
      const status = rec(run, id).status;
      return status === 'pending' || status === 'running' ? 'open' : status === 'done' ? 'ok' : 'not-ok';
    },
    onSettled: (id, settle) => run.onSettled.set(id, settle),
    interrupted: () => opts.signal?.aborted ?? false,
  });
  try {
    await runTasks(tasks, opts, true);
  } finally {
    run.progress?.dispose();
  }
  return conclude(run, Date.now());
}

/** After the last step: roll back, ask, or drop copies, and say how the run ended. */
async function conclude(run: RunState, mainDoneAt: number): Promise<RunSummary> {
  const { plan, opts, records, failure, failedChecks } = run;
  const { redact, rpoMs } = opts;
  const interrupted = opts.signal?.aborted ?? false;
  const started = plan.steps.filter((s) => rec(run, s.id).started);
  const completed = (s: PlanStep): boolean => rec(run, s.id).status === 'done' || rec(run, s.id).status === 'unhealthy';

  // A signal before the first step began (the scheduler starts none once it is aborted): nothing to roll back.
  if (interrupted && !failure && started.length === 0) return notStarted(plan);

  // ----- failure / interrupt: roll back -----
  if (failure || interrupted) {
    const reason = interrupted
      ? 'interrupted by a signal'
      : `${rec(run, failure?.stepId ?? '').step.title} failed: ${failure?.message ?? ''}`;
    const onlyPreflight = started.every((s) => s.phase === 'preflight' || (!s.destructive && !s.undo));
    if (plan.mode === 'drill' && !(failure?.phase === 'preflight' && onlyPreflight)) {
      // A drill's targets are scratch services that are thrown away: rolling them back would only
      // add noise (and a "no safety copy" database cannot be rolled back anyway). Say what failed.
      return buildSummary({
        outcome: interrupted ? 'interrupted' : 'failed',
        exitCode: interrupted ? ExitCode.interrupted : ExitCode.failedRolledBack,
        rpoMs,
        state: everyTarget(plan, 'scratch target, discarded (a drill never touches the real targets)'),
        nextSteps: interrupted
          ? ['The drill was interrupted; run it again when ready.']
          : [
              `The backup did NOT restore cleanly: ${failure?.message ?? reason}.`,
              'Investigate before you need this backup in an incident: `restore-assistant report` shows every command and its output.',
            ],
        error: reason,
      });
    }
    const rb = await rollback(run, started, reason);
    const state = stateLines(plan, { outcome: 'rollback', records, rb });
    if (!rb.complete) return incompleteRollback(rb, state, reason, rpoMs);
    if (interrupted) {
      return buildSummary({
        outcome: 'interrupted',
        exitCode: ExitCode.interrupted,
        rpoMs,
        state,
        nextSteps: [
          started.length > 0
            ? 'Everything that was changed has been put back. Run the restore again when ready.'
            : 'Nothing was changed. Run the restore again when ready.',
        ],
        error: reason,
      });
    }
    if (failure?.phase === 'preflight' && onlyPreflight) {
      return buildSummary({
        outcome: 'refused',
        exitCode: ExitCode.preflightFailed,
        rpoMs,
        state: everyTarget(plan, 'untouched'),
        nextSteps: [`Fix the cause (${failure.message}) and run the restore again.`],
        error: reason,
      });
    }
    return buildSummary({
      outcome: 'rolled-back',
      exitCode: ExitCode.failedRolledBack,
      rpoMs,
      state,
      nextSteps: [
        `Fix the cause (${failure?.message ?? reason}) and run the restore again.`,
        'The targets hold their pre-restore data again.',
      ],
      error: reason,
    });
  }

  const rtoMs = Math.max(0, (run.healthDoneAt ?? mainDoneAt) - opts.clockStart.getTime());
  const path = runCriticalPath(records, opts.clockStart);
  const onPath = path ? { criticalPath: path } : {};

  // ----- unhealthy -----
  if (failedChecks.length > 0) {
    const restoredState = stateLines(plan, { outcome: 'restored', records, dropped: [] });
    // Decided in the plan, else asked (the RTO above already ended with the health checks).
    const decision = plan.options.rollbackOnUnhealthy ? 'planned' : await askUnhealthy(plan, opts, failedChecks, restoredState);
    if (decision !== 'keep') {
      const checks = `health checks failed: ${failedChecks.join(', ')}`;
      const reason =
        decision === 'interrupted'
          ? `interrupted by a signal while the operator was asked about failed health checks (${failedChecks.join(', ')})`
          : decision === 'rollback'
            ? `${checks}; the operator chose to roll back`
            : checks;
      const rb = await rollback(run, started, reason);
      const state = stateLines(plan, { outcome: 'rollback', records, rb });
      if (!rb.complete) return incompleteRollback(rb, state, reason, rpoMs, failedChecks);
      if (decision === 'interrupted') {
        return buildSummary({
          outcome: 'interrupted',
          exitCode: ExitCode.interrupted,
          rpoMs,
          state,
          nextSteps: [
            'The restored data failed its health checks; the interrupt rolled it back, so the targets hold their pre-restore data again.',
          ],
          failedChecks,
          error: reason,
        });
      }
      return buildSummary({
        outcome: 'rolled-back',
        exitCode: ExitCode.failedRolledBack,
        rpoMs,
        state,
        nextSteps: [
          decision === 'rollback'
            ? 'The restored data failed its health checks and the operator chose to roll back; the targets hold their pre-restore data again.'
            : 'The restored data failed its health checks and was rolled back (--rollback-on-unhealthy); the targets hold their pre-restore data again.',
        ],
        failedChecks,
        error: reason,
      });
    }
    const copies = keptCopies(plan, records);
    const undo = manualUndo(started.filter(completed), redact);
    return buildSummary({
      outcome: 'unhealthy',
      exitCode: ExitCode.unhealthy,
      // Confirm to the end of the (failed) health checks, as the evidence report measures it.
      rtoMs,
      rpoMs,
      ...onPath,
      safetyCopies: copies,
      state: [...restoredState, `Health checks failed: ${failedChecks.join(', ')}`],
      nextSteps: [
        opts.onUnhealthy && plan.mode !== 'drill'
          ? 'The operator chose to keep the restored state. Look at the failed checks.'
          : 'The restored state was kept. Look at the failed checks before deciding.',
        ...(undo.length > 0
          ? [
              'To go back to the pre-restore data, run these in order (or restore again with --rollback-on-unhealthy):',
              ...undo.map((m, i) => `${i + 1}. ${m}`),
            ]
          : []),
      ],
      failedChecks,
      error: `health checks failed: ${failedChecks.join(', ')}`,
    });
  }

  // ----- restored and healthy -----
  const dropped = plan.options.dropSafetyCopies
    ? await dropCopies(plan, records, (body) => opts.bus.emit(body), run.facts)
    : { dropped: [], problems: [] };
  const copies = keptCopies(plan, records).filter((c) => !dropped.dropped.some((d) => d.location === c.location));
  const nextSteps: string[] = [];
  if (plan.mode === 'drill') {
    nextSteps.push("The backup restored and passed its checks. Record the sign-off in the run's report.md (run by / reviewed by).");
  } else if (copies.length > 0) {
    nextSteps.push(
      `Safety copies are kept: ${copies.map((c) => c.location).join(', ')}. Remove them when you are satisfied: \`${raCommand('safety-copies', '--recipe', plan.recipe.file)}\` lists them, \`${raCommand('safety-copies', 'drop', '--recipe', plan.recipe.file, 'ID')}\` removes one by identity (or restore with --drop-safety-copies).`,
    );
  }
  nextSteps.push(...dropped.problems);
  return buildSummary({
    outcome: 'restored',
    exitCode: ExitCode.ok,
    rtoMs,
    rpoMs,
    ...onPath,
    // A drill's "copies" live in scratch services that are about to be discarded.
    safetyCopies: plan.mode === 'drill' ? [] : copies,
    state:
      plan.mode === 'drill'
        ? everyTarget(plan, `scratch target, restored from ${plan.backup.id} and checked`)
        : stateLines(plan, { outcome: 'restored', records, dropped: dropped.dropped }),
    nextSteps,
  });
}

export type { Outcome };
