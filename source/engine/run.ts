import { existsSync } from 'node:fs';
import { lstat, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Listr, ListrLogger, ProcessOutput, type DefaultRenderer, type ListrTask, type ListrTaskWrapper, type SimpleRenderer } from 'listr2';
import type { ComponentKind } from '../catalog/types.js';
import { runCheck, type CheckContext } from '../checks/index.js';
import { ExitCode } from '../exit-codes.js';
import type { Redactor } from '../exec/redact.js';
import { redactDeep } from '../exec/redact.js';
import { formatDuration } from '../output.js';
import type { Lane, Plan, PlannedAction, PlanStep, SafetyCopy } from '../plan/types.js';
import { toolVersion } from '../version.js';
import {
  ActionError,
  CheckFailedError,
  describeAction,
  executeAction,
  InterruptedError,
  type ActionContext,
  type CheckRunner,
} from './actions.js';
import type { EngineEventBody, EventBus, Outcome } from './events.js';
import { attachLineRenderer } from './line-renderer.js';
import { acquireLocks, defaultLockDir, LockError, type LockHandle } from './lock.js';
import { sanitizeText } from '../text/sanitize.js';

/**
 * The engine: runs a Plan exactly as planned, as listr2 tasks, and reports everything on the bus.
 * It never prompts and never exits the process. On a failure or an interrupt it undoes every step
 * that started (completed ones and the one that failed half-way) in reverse order, and says exactly
 * what state each target is in — including what is left to do by hand when an undo fails.
 */

export type RunSummary = Omit<Extract<EngineEventBody, { type: 'run-finished' }>, 'type'>;

export type RendererName = 'default' | 'simple' | 'silent' | 'test';

export interface RunPlanOptions {
  bus: EventBus;
  redact: Redactor;
  /** The operator's environment (secrets named by `envFrom` are read here). Default: process.env. */
  env?: NodeJS.ProcessEnv;
  /** First SIGINT/SIGTERM: stop the running command, roll back, outcome 'interrupted' (130). */
  signal?: AbortSignal;
  /** Second signal: stop waiting (also for the rollback) and report the exact state. */
  stopSignal?: AbortSignal;
  renderer: RendererName;
  /** Where the plain ('simple') renderer writes; default stderr. */
  write?: (line: string) => void;
  color?: boolean;
  runId: string;
  kind: 'restore' | 'drill';
  /** When the operator confirmed: the RTO clock starts here. */
  confirmedAt?: Date;
  operator?: string;
  /** Re-checks just before anything is touched; non-empty problems refuse the run (exit 9). */
  preflight?: () => Promise<string[]>;
  lockDir?: string;
  /** Targets to lock (engine/lock.ts `lockKeysForRecipe`); default: one key per planned target. */
  lockKeys?: string[];
  /** Locks the caller already holds (taken before it probed the targets); the engine does not take or release them. */
  heldLocks?: LockHandle;
  /** Health-check runner (default: source/checks/index.ts `runCheck`). */
  runCheck?: CheckRunner;
  /** Extra context every check receives (e.g. `recipe`). */
  checkContext?: Record<string, unknown>;
  /** Minimum time between progress events (default 250 ms). */
  progressIntervalMs?: number;
  /** Called with each listr2 task's final title and state (tests). */
  onTaskStates?: (tasks: Array<{ title: string; state: string }>) => void;
  /**
   * Asked when health checks fail in a restore whose plan does not already say to roll back: keep
   * the restored state (exit 4) or roll back (exit 1). The engine itself never prompts; the guided
   * interface answers with the operator's keypress. `state` is what each target holds now. While
   * the question is open, `signal` still interrupts (rollback, exit 130); a rejected promise keeps
   * the restored state. The answer is recorded as an event; the RTO ends with the health checks,
   * before the question. Not asked for drills.
   */
  onUnhealthy?: (failed: { checks: string[]; state: string[] }) => Promise<UnhealthyDecision>;
}

/** What to do with a restore whose health checks failed. */
export type UnhealthyDecision = 'keep' | 'rollback';

type StepStatus = 'pending' | 'running' | 'done' | 'unhealthy' | 'failed' | 'skipped';

interface StepRecord {
  step: PlanStep;
  status: StepStatus;
  started: boolean;
  startedAt?: number;
  finishedAt?: number;
  error?: string;
  done: Promise<void>;
  resolve: () => void;
}

const componentNames: Record<ComponentKind | 'services', string> = {
  postgres: 'PostgreSQL',
  redis: 'Redis',
  prometheus: 'Prometheus',
  services: 'Application services',
};

const laneNames: Record<Lane, string> = { main: 'Main', postgres: 'PostgreSQL', redis: 'Redis', prometheus: 'Prometheus' };

/** Problems that make a plan unsafe or unrunnable (empty: fine). */
export function validatePlan(plan: Plan): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const step of plan.steps) {
    if (seen.has(step.id)) problems.push(`step id "${step.id}" appears twice`);
    for (const dep of step.dependsOn) {
      if (!seen.has(dep)) {
        problems.push(
          plan.steps.some((s) => s.id === dep)
            ? `step "${step.id}" depends on "${dep}", which comes after it`
            : `step "${step.id}" depends on "${dep}", which is not in the plan`,
        );
      }
    }
    seen.add(step.id);
    // The copy may be taken by an earlier step of the same component (dump first, then drop).
    const copied = step.safetyCopy ?? plan.steps.slice(0, plan.steps.indexOf(step)).find((s) => s.safetyCopy && s.component !== undefined && s.component === step.component)?.safetyCopy;
    if (step.destructive && !copied) {
      problems.push(`step "${step.id}" (${step.title}) destroys ${step.destroys ?? 'data'} but plans no safety copy and no recorded decision to keep none`);
    }
  }
  return problems;
}

/** Consecutive non-main steps form one group whose lanes run concurrently (when parallel). */
type Group = { kind: 'step'; step: PlanStep } | { kind: 'lanes'; lanes: Array<[Lane, PlanStep[]]> };

function groupSteps(plan: Plan): Group[] {
  const groups: Group[] = [];
  let current: Map<Lane, PlanStep[]> | undefined;
  const close = (): void => {
    if (current) groups.push({ kind: 'lanes', lanes: [...current.entries()] });
    current = undefined;
  };
  for (const step of plan.steps) {
    if (!plan.options.parallel || step.lane === 'main') {
      close();
      groups.push({ kind: 'step', step });
      continue;
    }
    current ??= new Map();
    const list = current.get(step.lane) ?? [];
    list.push(step);
    current.set(step.lane, list);
  }
  close();
  // A group with a single lane is just a sequence.
  return groups.flatMap((g): Group[] => (g.kind === 'lanes' && g.lanes.length === 1 ? (g.lanes[0]?.[1] ?? []).map((step) => ({ kind: 'step', step })) : [g]));
}

function defaultLockKeys(plan: Plan): string[] {
  const keys: string[] = [];
  for (const kind of ['postgres', 'redis', 'prometheus'] as const) {
    if (plan.steps.some((s) => s.component === kind)) keys.push(`${kind}:${plan.targets[kind] ?? plan.recipe.name}`);
  }
  return keys.length > 0 ? keys : [`recipe:${plan.recipe.name}`];
}

/** The recipe-aware check runner (source/checks/index.ts); `checkContext.recipe` carries the recipe. */
const defaultCheckRunner: CheckRunner = async (check, ctx) => {
  const recipe = ctx['recipe'] as CheckContext['recipe'] | undefined;
  if (!recipe) return { ok: false, attempts: 0, durationMs: 0, detail: `no recipe to run "${check.name}" against (checkContext.recipe is missing)` };
  return runCheck(check, { recipe, env: ctx.env, redact: ctx.redact, signal: ctx.signal });
};

function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

async function pathExists(p: string): Promise<boolean> {
  try {
    await lstat(p);
    return true;
  } catch {
    return false;
  }
}

type Task = ListrTaskWrapper<unknown, typeof DefaultRenderer, typeof SimpleRenderer>;
type StepTask = ListrTask<unknown, typeof DefaultRenderer, typeof SimpleRenderer>;

export async function runPlan(plan: Plan, opts: RunPlanOptions): Promise<RunSummary> {
  const { bus } = opts;
  const redact = opts.redact;
  const env = opts.env ?? process.env;
  const runStartedAt = new Date();
  const clockStart = opts.confirmedAt ?? runStartedAt;
  const emit = (body: EngineEventBody): void => {
    bus.emit(body);
  };
  const detach =
    opts.renderer === 'simple'
      ? attachLineRenderer(bus, { write: opts.write ?? ((line) => process.stderr.write(`${line}\n`)), color: opts.color ?? false })
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
  });

  const rpoMs = Number.isNaN(Date.parse(plan.backup.time)) ? undefined : Math.max(0, clockStart.getTime() - Date.parse(plan.backup.time));

  const finish = (summary: RunSummary): RunSummary => {
    const clean = redactDeep(summary, redact);
    emit({ type: 'run-finished', ...clean });
    return clean;
  };

  const refuse = (exitCode: number, error: string, nextSteps: string[], problems: string[] = []): RunSummary => {
    for (const p of problems) emit({ type: 'log', level: 'error', message: redact(p) });
    return finish({
      outcome: 'refused',
      exitCode,
      ...(rpoMs === undefined ? {} : { rpoMs }),
      safetyCopies: [],
      state: targetsOf(plan).map((k) => `${describeTarget(plan, k)}: untouched`),
      nextSteps,
      error,
    });
  };

  try {
    const planProblems = validatePlan(plan);
    if (planProblems.length > 0) {
      return refuse(ExitCode.preflightFailed, `The plan is unsafe to run: ${planProblems[0] ?? ''}`, ['This is a bug in the plan builder: report it with the plan (`restore-assistant plan --json`). Nothing was touched.'], planProblems);
    }
    if (opts.signal?.aborted) {
      return finish({ outcome: 'interrupted', exitCode: ExitCode.interrupted, safetyCopies: [], state: targetsOf(plan).map((k) => `${describeTarget(plan, k)}: untouched`), nextSteps: ['Run the restore again when ready.'], error: 'interrupted before anything started' });
    }

    let lock: LockHandle;
    try {
      // A caller that took the locks before probing (restore, drill) hands them over; it releases them.
      lock = opts.heldLocks
        ? { files: opts.heldLocks.files, release: async () => undefined }
        : await acquireLocks(opts.lockKeys ?? defaultLockKeys(plan), { dir: opts.lockDir ?? defaultLockDir(env), runId: opts.runId });
    } catch (error) {
      if (error instanceof LockError) return refuse(ExitCode.locked, error.message, error.next ? [error.next] : [], error.problems);
      throw error;
    }
    try {
      if (opts.preflight) {
        const problems = await opts.preflight();
        if (problems.length > 0) {
          return refuse(ExitCode.preflightFailed, `Preflight found ${problems.length} problem${problems.length === 1 ? '' : 's'}: ${problems[0] ?? ''}`, ['Fix the problems listed above and run the restore again.'], problems);
        }
      }
      if (opts.signal?.aborted) {
        return finish({ outcome: 'interrupted', exitCode: ExitCode.interrupted, safetyCopies: [], state: targetsOf(plan).map((k) => `${describeTarget(plan, k)}: untouched`), nextSteps: ['Run the restore again when ready.'], error: 'interrupted before anything started' });
      }
      return finish(await execute(plan, { ...opts, env, runCheck: opts.runCheck ?? defaultCheckRunner, clockStart, rpoMs }));
    } finally {
      await lock.release();
    }
  } finally {
    detach();
  }
}

function safeUser(): string {
  try {
    return os.userInfo().username;
  } catch {
    return process.env['USER'] ?? 'unknown';
  }
}

function targetsOf(plan: Plan): ComponentKind[] {
  return (['postgres', 'redis', 'prometheus'] as const).filter((k) => plan.steps.some((s) => s.component === k));
}

function describeTarget(plan: Plan, kind: ComponentKind): string {
  return plan.targets[kind] ?? componentNames[kind];
}

interface ExecuteOptions extends RunPlanOptions {
  env: NodeJS.ProcessEnv;
  runCheck: CheckRunner;
  clockStart: Date;
  rpoMs: number | undefined;
}

async function execute(plan: Plan, opts: ExecuteOptions): Promise<RunSummary> {
  const { bus, redact } = opts;
  const emit = (body: EngineEventBody): void => {
    bus.emit(body);
  };
  const records = new Map<string, StepRecord>();
  for (const step of plan.steps) {
    let resolve!: () => void;
    const done = new Promise<void>((r) => (resolve = r));
    records.set(step.id, { step, status: 'pending', started: false, done, resolve });
  }
  const rec = (id: string): StepRecord => {
    const r = records.get(id);
    if (!r) throw new Error(`unknown step ${id}`);
    return r;
  };

  // Stops every lane when one step fails; the operator's signal does the same.
  const stopAll = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, stopAll.signal]) : stopAll.signal;
  let failure: { stepId: string; message: string; phase: string } | undefined;
  const failedChecks: string[] = [];
  let healthDoneAt: number | undefined;

  const actionContext = (stepId: string, task: Task | undefined, sig: AbortSignal): ActionContext => ({
    stepId,
    emit,
    redact,
    env: opts.env,
    signal: sig,
    runCheck: opts.runCheck,
    ...(opts.checkContext ? { checkContext: opts.checkContext } : {}),
    ...(opts.progressIntervalMs ? { progressIntervalMs: opts.progressIntervalMs } : {}),
    ...(task ? { onOutput: (line: string) => (task.output = sanitizeText(line)) } : {}),
    verifiedFiles: plan.backup.components,
  });

  /** Called when a step settles (the parallel group retitles itself once all its steps have). */
  const onSettled = new Map<string, () => void>();

  const runStep = async (step: PlanStep, task: Task): Promise<void> => {
    const r = rec(step.id);
    try {
      for (const dep of step.dependsOn) await rec(dep).done;
      const skip = (reason: string): void => {
        r.status = 'skipped';
        emit({ type: 'step-skipped', stepId: step.id, title: step.title, reason });
        task.skip(sanitizeText(`${step.title} (skipped: ${reason})`));
      };
      if (signal.aborted || failure) return skip(opts.signal?.aborted ? 'interrupted' : 'an earlier step failed');
      const blocked = step.dependsOn.find((d) => rec(d).status !== 'done' && rec(d).status !== 'unhealthy');
      if (blocked) return skip(`${rec(blocked).step.title} did not finish`);
      if (step.phase === 'cleanup' && failedChecks.length > 0) return skip('health checks failed: safety copies are kept');

      r.status = 'running';
      r.started = true;
      r.startedAt = performance.now();
      emit({ type: 'step-started', stepId: step.id, title: step.title });
      const details: string[] = [];
      const stepChecksFailed: string[] = [];
      for (const action of step.actions) {
        try {
          const detail = await executeAction(action, actionContext(step.id, task, signal));
          // Waits only say how long they took; the step's duration says that already.
          if (detail && !action.type.startsWith('wait-')) details.push(detail);
        } catch (error) {
          if (error instanceof CheckFailedError && step.phase === 'health' && !signal.aborted) {
            stepChecksFailed.push(error.checkName);
            continue;
          }
          const message = redact(error instanceof Error ? error.message : String(error));
          r.status = 'failed';
          r.error = message;
          r.finishedAt = performance.now();
          const interrupted = error instanceof InterruptedError || (opts.signal?.aborted ?? false);
          if (!failure && !(interrupted && !opts.signal?.aborted)) failure = { stepId: step.id, message, phase: step.phase };
          stopAll.abort();
          emit({ type: 'step-failed', stepId: step.id, title: step.title, durationMs: Math.round(r.finishedAt - r.startedAt), error: message });
          task.title = sanitizeText(`${step.title}: ${opts.signal?.aborted ? 'interrupted' : 'failed'}`);
          throw error instanceof ActionError || error instanceof InterruptedError ? new Error(message) : error;
        }
      }
      r.finishedAt = performance.now();
      const durationMs = Math.round(r.finishedAt - r.startedAt);
      if (step.phase === 'health') healthDoneAt = Date.now();
      if (stepChecksFailed.length > 0) {
        r.status = 'unhealthy';
        failedChecks.push(...stepChecksFailed);
        const message = `${stepChecksFailed.length} health check${stepChecksFailed.length === 1 ? '' : 's'} failed: ${stepChecksFailed.join(', ')}`;
        emit({ type: 'step-failed', stepId: step.id, title: step.title, durationMs, error: message });
        task.title = sanitizeText(`${step.title}: ${message}`);
        throw new Error(message);
      }
      r.status = 'done';
      if (step.safetyCopy) emit({ type: 'safety-copy', stepId: step.id, copy: redactDeep(step.safetyCopy, redact) });
      emit({ type: 'step-finished', stepId: step.id, title: step.doneTitle, durationMs, ...(details.length ? { detail: redact(details.join('; ')) } : {}) });
      task.title = sanitizeText(`${step.doneTitle} (${formatDuration(durationMs)})`);
    } finally {
      r.resolve();
      onSettled.get(step.id)?.();
    }
  };

  const stepTask = (step: PlanStep): StepTask => ({
    title: sanitizeText(step.title),
    task: (_ctx, task) => runStep(step, task),
  });

  const tasks = groupSteps(plan).map((g): StepTask => {
    if (g.kind === 'step') return stepTask(g.step);
    const names = g.lanes.map(([lane]) => laneNames[lane]);
    const list = names.length > 1 ? `${names.slice(0, -1).join(', ')} and ${names.at(-1) ?? ''}` : (names[0] ?? '');
    const groupSteps = g.lanes.flatMap(([, steps]) => steps);
    const settle = (): void => {
      if (!groupTask || !groupSteps.every((s) => !['pending', 'running'].includes(rec(s.id).status))) return;
      const ok = groupSteps.every((s) => rec(s.id).status === 'done');
      groupTask.title = sanitizeText(ok ? `${list} restored` : `${list}: stopped (${opts.signal?.aborted ? 'interrupted' : 'a step failed'})`);
    };
    let groupTask: Task | undefined;
    for (const s of groupSteps) onSettled.set(s.id, settle);
    return {
      title: sanitizeText(`Restore ${list} (in parallel)`),
      task: (_ctx, task) => {
        groupTask = task;
        return task.newListr(
          g.lanes.map(([lane, steps]) =>
            steps.length === 1 && steps[0]
              ? stepTask(steps[0])
              : { title: sanitizeText(laneNames[lane] ?? ''), task: (_c: unknown, t: Task) => t.newListr(steps.map(stepTask), { concurrent: false, exitOnError: false }) },
          ),
          { concurrent: true, exitOnError: false },
        );
      },
    };
  });

  const listr = makeListr(tasks, opts);
  try {
    await listr.run();
  } catch {
    // Step failures are recorded on the records; listr2 only displays them.
  }
  reportTaskStates(listr, opts);

  const mainDoneAt = Date.now();
  const interrupted = opts.signal?.aborted ?? false;
  const started = plan.steps.filter((s) => rec(s.id).started);
  const completed = (s: PlanStep): boolean => rec(s.id).status === 'done' || rec(s.id).status === 'unhealthy';

  // ----- failure / interrupt: roll back -----
  if (failure || interrupted) {
    const reason = interrupted ? 'interrupted by a signal' : `${rec(failure?.stepId ?? '').step.title} failed: ${failure?.message ?? ''}`;
    const onlyPreflight = started.every((s) => s.phase === 'preflight' || (!s.destructive && !s.undo));
    if (plan.mode === 'drill' && !(failure?.phase === 'preflight' && onlyPreflight)) {
      // A drill's targets are scratch services that are thrown away: rolling them back would only
      // add noise (and a "no safety copy" database cannot be rolled back anyway). Say what failed.
      return {
        outcome: interrupted ? 'interrupted' : 'failed',
        exitCode: interrupted ? ExitCode.interrupted : ExitCode.failedRolledBack,
        ...(opts.rpoMs === undefined ? {} : { rpoMs: opts.rpoMs }),
        safetyCopies: [],
        state: targetsOf(plan).map((k) => `${describeTarget(plan, k)}: scratch target, discarded (a drill never touches the real targets)`),
        nextSteps: interrupted
          ? ['The drill was interrupted; run it again when ready.']
          : [`The backup did NOT restore cleanly: ${failure?.message ?? reason}.`, 'Investigate before you need this backup in an incident: `restore-assistant report` shows every command and its output.'],
        error: reason,
      };
    }
    const rb = await rollback(plan, started, reason, opts, actionContext);
    const state = stateLines(plan, { outcome: 'rollback', records, rb });
    if (!rb.complete) return incompleteRollback(rb, state, reason, opts.rpoMs);
    if (interrupted) {
      return {
        outcome: 'interrupted',
        exitCode: ExitCode.interrupted,
        ...(opts.rpoMs === undefined ? {} : { rpoMs: opts.rpoMs }),
        safetyCopies: [],
        state,
        nextSteps: [started.length > 0 ? 'Everything that was changed has been put back. Run the restore again when ready.' : 'Nothing was changed. Run the restore again when ready.'],
        error: reason,
      };
    }
    if (failure?.phase === 'preflight' && onlyPreflight) {
      return {
        outcome: 'refused',
        exitCode: ExitCode.preflightFailed,
        ...(opts.rpoMs === undefined ? {} : { rpoMs: opts.rpoMs }),
        safetyCopies: [],
        state: targetsOf(plan).map((k) => `${describeTarget(plan, k)}: untouched`),
        nextSteps: [`Fix the cause (${failure.message}) and run the restore again.`],
        error: reason,
      };
    }
    return {
      outcome: 'rolled-back',
      exitCode: ExitCode.failedRolledBack,
      ...(opts.rpoMs === undefined ? {} : { rpoMs: opts.rpoMs }),
      safetyCopies: [],
      state,
      nextSteps: [`Fix the cause (${failure?.message ?? reason}) and run the restore again.`, 'The targets hold their pre-restore data again.'],
      error: reason,
    };
  }

  const rtoMs = Math.max(0, (healthDoneAt ?? mainDoneAt) - opts.clockStart.getTime());

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
      const rb = await rollback(plan, started, reason, opts, actionContext);
      const state = stateLines(plan, { outcome: 'rollback', records, rb });
      if (!rb.complete) {
        return { ...incompleteRollback(rb, state, reason, opts.rpoMs), failedChecks };
      }
      if (decision === 'interrupted') {
        return {
          outcome: 'interrupted',
          exitCode: ExitCode.interrupted,
          ...(opts.rpoMs === undefined ? {} : { rpoMs: opts.rpoMs }),
          safetyCopies: [],
          state,
          nextSteps: ['The restored data failed its health checks; the interrupt rolled it back, so the targets hold their pre-restore data again.'],
          failedChecks,
          error: reason,
        };
      }
      return {
        outcome: 'rolled-back',
        exitCode: ExitCode.failedRolledBack,
        ...(opts.rpoMs === undefined ? {} : { rpoMs: opts.rpoMs }),
        safetyCopies: [],
        state,
        nextSteps: [
          decision === 'rollback'
            ? 'The restored data failed its health checks and the operator chose to roll back; the targets hold their pre-restore data again.'
            : 'The restored data failed its health checks and was rolled back (--rollback-on-unhealthy); the targets hold their pre-restore data again.',
        ],
        failedChecks,
        error: reason,
      };
    }
    const copies = keptCopies(plan, records);
    const undo = manualUndo(started.filter(completed), redact);
    return {
      outcome: 'unhealthy',
      exitCode: ExitCode.unhealthy,
      // Confirm to the end of the (failed) health checks, as the evidence report measures it.
      rtoMs,
      ...(opts.rpoMs === undefined ? {} : { rpoMs: opts.rpoMs }),
      safetyCopies: copies,
      state: [...restoredState, `Health checks failed: ${failedChecks.join(', ')}`],
      nextSteps: [
        opts.onUnhealthy && plan.mode !== 'drill' ? 'The operator chose to keep the restored state. Look at the failed checks.' : 'The restored state was kept. Look at the failed checks before deciding.',
        ...(undo.length > 0
          ? ['To go back to the pre-restore data, run these in order (or restore again with --rollback-on-unhealthy):', ...undo.map((m, i) => `${i + 1}. ${m}`)]
          : []),
      ],
      failedChecks,
      error: `health checks failed: ${failedChecks.join(', ')}`,
    };
  }

  // ----- restored and healthy -----
  const dropped = plan.options.dropSafetyCopies ? await dropCopies(plan, records, emit) : { dropped: [], problems: [] };
  const copies = keptCopies(plan, records).filter((c) => !dropped.dropped.some((d) => d.location === c.location));
  const nextSteps: string[] = [];
  if (plan.mode === 'drill') {
    nextSteps.push('The backup restored and passed its checks. Record the sign-off in the run\'s report.md (run by / reviewed by).');
  } else if (copies.length > 0) {
    nextSteps.push(`Safety copies are kept: ${copies.map((c) => c.location).join(', ')}. Remove them when you are satisfied (or restore with --drop-safety-copies).`);
  }
  nextSteps.push(...dropped.problems);
  return {
    outcome: 'restored',
    exitCode: ExitCode.ok,
    rtoMs,
    ...(opts.rpoMs === undefined ? {} : { rpoMs: opts.rpoMs }),
    // A drill's "copies" live in scratch services that are about to be discarded.
    safetyCopies: plan.mode === 'drill' ? [] : copies,
    state:
      plan.mode === 'drill'
        ? targetsOf(plan).map((k) => `${describeTarget(plan, k)}: scratch target, restored from ${plan.backup.id} and checked`)
        : stateLines(plan, { outcome: 'restored', records, dropped: dropped.dropped }),
    nextSteps,
  };
}

/**
 * Asks the injected hook whether to keep the restored state or roll back, and records the answer.
 * No hook (or a drill): keep, as before. An interrupt while the question is open wins.
 */
async function askUnhealthy(plan: Plan, opts: ExecuteOptions, checks: string[], state: string[]): Promise<UnhealthyDecision | 'interrupted'> {
  const ask = opts.onUnhealthy;
  if (!ask || plan.mode === 'drill') return 'keep';
  const { bus, redact } = opts;
  const log = (level: 'info' | 'warn', message: string): void => {
    bus.emit({ type: 'log', level, message: redact(message) });
  };
  const signal = opts.signal;
  if (signal?.aborted) {
    log('warn', 'interrupted before the operator was asked about failed health checks: rolling back');
    return 'interrupted';
  }
  log('info', `health checks failed (${checks.join(', ')}): asking the operator whether to keep the restored state or roll back`);
  let onAbort: (() => void) | undefined;
  const interrupted = new Promise<'interrupted'>((resolve) => {
    onAbort = () => resolve('interrupted');
    signal?.addEventListener('abort', onAbort, { once: true });
  });
  let answer: UnhealthyDecision | 'interrupted' | 'failed';
  let failure = '';
  try {
    answer = await Promise.race([
      Promise.resolve()
        .then(() => ask({ checks: [...checks], state: [...state] }))
        .then((a): UnhealthyDecision | 'failed' => {
          if (a === 'keep' || a === 'rollback') return a;
          failure = `unexpected answer ${JSON.stringify(a)}`;
          return 'failed';
        }),
      interrupted,
    ]);
  } catch (error) {
    failure = error instanceof Error ? error.message : String(error);
    answer = 'failed';
  } finally {
    if (onAbort) signal?.removeEventListener('abort', onAbort);
  }
  if (answer === 'interrupted' || signal?.aborted) {
    log('warn', 'interrupted while the operator was asked about failed health checks: rolling back');
    return 'interrupted';
  }
  if (answer === 'failed') {
    log('warn', `the question about failed health checks got no answer (${failure}): the restored state is kept`);
    return 'keep';
  }
  log('info', answer === 'rollback' ? 'operator chose to roll back after failed health checks' : 'operator chose to keep the restored state after failed health checks');
  return answer;
}

function makeListr(
  tasks: Array<StepTask>,
  opts: RunPlanOptions,
): Listr<unknown, 'default' | 'simple' | 'silent' | 'test', 'simple'> {
  const common = { concurrent: false, exitOnError: false, registerSignalListeners: false } as const;
  switch (opts.renderer) {
    case 'default':
      return new Listr<unknown, 'default', 'simple'>(tasks, {
        ...common,
        renderer: 'default',
        rendererOptions: {
          logger: new ListrLogger({ processOutput: new ProcessOutput(process.stderr, process.stderr) }),
          collapseSubtasks: false,
          showErrorMessage: true,
        },
        fallbackRenderer: 'simple',
      }) as Listr<unknown, 'default' | 'simple' | 'silent' | 'test', 'simple'>;
    case 'test':
      return new Listr<unknown, 'test', 'simple'>(tasks as never, { ...common, renderer: 'test', rendererOptions: { logger: quietLogger() } }) as Listr<unknown, 'default' | 'simple' | 'silent' | 'test', 'simple'>;
    case 'simple':
    case 'silent':
      // The plain renderer reads the event stream (line-renderer.ts); listr2 draws nothing.
      return new Listr<unknown, 'silent', 'simple'>(tasks, { ...common, renderer: 'silent' }) as Listr<unknown, 'default' | 'simple' | 'silent' | 'test', 'simple'>;
  }
}

/** listr2's test renderer logs to a sink (tests assert on events and task states instead). */
function quietLogger(): ListrLogger {
  const sink = new (class extends ProcessOutput {
    override toStdout(): boolean {
      return true;
    }
    override toStderr(): boolean {
      return true;
    }
  })();
  return new ListrLogger({ processOutput: sink });
}

function reportTaskStates(listr: Listr<unknown, 'default' | 'simple' | 'silent' | 'test', 'simple'>, opts: RunPlanOptions): void {
  if (!opts.onTaskStates) return;
  const out: Array<{ title: string; state: string }> = [];
  const walk = (tasks: typeof listr.tasks): void => {
    for (const t of tasks) {
      out.push({ title: t.title ?? '', state: t.state });
      if (t.subtasks) walk(t.subtasks as typeof listr.tasks);
    }
  };
  walk(listr.tasks);
  opts.onTaskStates(out);
}

interface RollbackResult {
  complete: boolean;
  manualSteps: string[];
  /** Steps whose undo ran completely. */
  undone: Set<string>;
  /** Steps whose undo failed or never ran. */
  notUndone: Set<string>;
  /** Safety copies still where they were put (their undo did not run). */
  remainingCopies: SafetyCopy[];
}

async function rollback(
  plan: Plan,
  started: PlanStep[],
  reason: string,
  opts: ExecuteOptions,
  actionContext: (stepId: string, task: Task | undefined, sig: AbortSignal) => ActionContext,
): Promise<RollbackResult> {
  const { bus, redact } = opts;
  bus.emit({ type: 'rollback-started', reason: redact(reason) });
  const stop = opts.stopSignal ?? new AbortController().signal;
  const manualSteps: string[] = [];
  const undone = new Set<string>();
  const notUndone = new Set<string>();
  const remainingCopies: SafetyCopy[] = [];
  // Reverse plan order: every step is undone before the steps it depends on.
  const todo = [...started].reverse();

  const undoTask = (step: PlanStep): StepTask => ({
    title: sanitizeText(step.undo?.title ?? `Undo: ${step.title}`),
    task: async (_ctx, task) => {
      const undo = step.undo;
      if (!undo || undo.actions.length === 0) {
        if (step.destructive && step.safetyCopy?.kind === 'none') {
          notUndone.add(step.id);
          const line = `${step.title}: no safety copy was kept (the operator chose none), so ${step.destroys ?? 'the previous data'} cannot be brought back; restore an older backup to recover it.`;
          manualSteps.push(line);
          bus.emit({ type: 'rollback-step', stepId: step.id, title: `Undo ${step.title}`, ok: false, error: redact(line) });
          task.skip(sanitizeText(`${step.title}: nothing kept to undo with`));
          return;
        }
        undone.add(step.id);
        task.skip(sanitizeText(`${step.title}: nothing to undo`));
        return;
      }
      if (stop.aborted) {
        notUndone.add(step.id);
        for (const a of undo.actions) manualSteps.push(describeAction(a, redact));
        if (step.safetyCopy && step.safetyCopy.kind !== 'none') remainingCopies.push(step.safetyCopy);
        bus.emit({ type: 'rollback-step', stepId: step.id, title: undo.title, ok: false, error: 'not run: the operator asked to stop waiting' });
        task.skip(sanitizeText(`${undo.title}: not run (stopped)`));
        return;
      }
      for (let i = 0; i < undo.actions.length; i++) {
        const action = undo.actions[i];
        if (!action) continue;
        try {
          await executeAction(action, actionContext(step.id, task, stop));
        } catch (error) {
          const message = redact(error instanceof Error ? error.message : String(error));
          notUndone.add(step.id);
          if (step.safetyCopy && step.safetyCopy.kind !== 'none') remainingCopies.push(step.safetyCopy);
          manualSteps.push(`${describeAction(action, redact)}    # failed: ${message}`);
          for (const rest of undo.actions.slice(i + 1)) manualSteps.push(describeAction(rest, redact));
          bus.emit({ type: 'rollback-step', stepId: step.id, title: undo.title, ok: false, error: message });
          task.title = sanitizeText(`${undo.title}: failed`);
          throw new Error(message);
        }
      }
      undone.add(step.id);
      bus.emit({ type: 'rollback-step', stepId: step.id, title: undo.title, ok: true });
      task.title = sanitizeText(undo.title.replace(/^Undo\b/, 'Undone'));
    },
  });

  const listr = makeListr(todo.map(undoTask), opts);
  try {
    await listr.run();
  } catch {
    // recorded above
  }
  const complete = manualSteps.length === 0;
  bus.emit({ type: 'rollback-finished', complete, manualSteps: manualSteps.map((m) => redact(m)) });
  void plan;
  return { complete, manualSteps, undone, notUndone, remainingCopies };
}

/**
 * The safety copy a step actually left. A host `move` with ifExists moves nothing when its source
 * did not exist (a Redis without an AOF dir, say): naming that path as "kept" would send the
 * operator looking for something that is not there. Copies made inside containers are as planned.
 */
function actualCopy(step: PlanStep): SafetyCopy | undefined {
  const copy = step.safetyCopy;
  if (!copy || copy.kind !== 'move') return copy;
  const hostMoves = step.actions.filter((a): a is Extract<PlannedAction, { type: 'move' }> => a.type === 'move');
  if (hostMoves.length === 0) return copy;
  const parts = copy.location.split(', ');
  const kept = parts.filter((p) => !hostMoves.some((m) => m.to === p) || existsSync(p));
  if (kept.length === parts.length) return copy;
  return kept.length === 0 ? undefined : { ...copy, location: kept.join(', ') };
}

/** The summary of a rollback that did not complete: what is left, as pasteable manual steps. */
function incompleteRollback(rb: RollbackResult, state: string[], reason: string, rpoMs: number | undefined): RunSummary {
  return {
    outcome: 'rollback-incomplete',
    exitCode: ExitCode.rollbackIncomplete,
    ...(rpoMs === undefined ? {} : { rpoMs }),
    safetyCopies: rb.remainingCopies,
    state,
    nextSteps: ['The rollback did not complete. Do these by hand, in order:', ...rb.manualSteps.map((m, i) => `${i + 1}. ${m}`)],
    manualSteps: rb.manualSteps,
    error: reason,
  };
}

function keptCopies(plan: Plan, records: Map<string, StepRecord>): SafetyCopy[] {
  return plan.steps
    .filter((s) => s.safetyCopy && s.safetyCopy.kind !== 'none' && records.get(s.id)?.started && records.get(s.id)?.status !== 'failed')
    .flatMap((s) => {
      const copy = actualCopy(s);
      return copy ? [copy] : [];
    });
}

/** The undo commands of the completed steps, in reverse order, for the operator to run by hand. */
function manualUndo(steps: PlanStep[], redact: Redactor): string[] {
  return [...steps].reverse().flatMap((s) => (s.undo?.actions ?? []).map((a) => describeAction(a, redact)));
}

/**
 * After a healthy restore with --drop-safety-copies: the plan's cleanup steps did the work when it
 * had any; otherwise moved directories on this host are removed here. Others are reported.
 */
async function dropCopies(
  plan: Plan,
  records: Map<string, StepRecord>,
  emit: (body: EngineEventBody) => void,
): Promise<{ dropped: SafetyCopy[]; problems: string[] }> {
  const cleanupSteps = plan.steps.filter((s) => s.phase === 'cleanup');
  const copies = keptCopies(plan, records);
  if (cleanupSteps.length > 0) {
    const ok = cleanupSteps.every((s) => records.get(s.id)?.status === 'done');
    return ok ? { dropped: copies, problems: [] } : { dropped: [], problems: ['Removing the safety copies did not complete: see the cleanup step above.'] };
  }
  const dropped: SafetyCopy[] = [];
  const problems: string[] = [];
  for (const copy of copies) {
    // Files and directories on this host (moved data dirs, a safety dump); a location may list several.
    const paths = copy.kind === 'move' || copy.kind === 'dump' ? copy.location.split(', ').filter((p) => path.isAbsolute(p)) : [];
    if (paths.length === 0) {
      problems.push(`The safety copy ${copy.location} (${copy.description}) was kept: the plan has no step that removes it.`);
      continue;
    }
    const failed: string[] = [];
    for (const p of paths) {
      if (!(await pathExists(p))) continue;
      try {
        await rm(p, { recursive: true, force: true });
        emit({ type: 'log', level: 'info', message: `safety copy removed: ${p}` });
      } catch (error) {
        failed.push(p);
        problems.push(`Could not remove the safety copy ${p}: ${(error as Error).message}. Remove it by hand: rm -rf -- ${shellQuote(p)}`);
      }
    }
    if (failed.length === 0) dropped.push(copy);
  }
  return { dropped, problems };
}

function stateLines(
  plan: Plan,
  s: { outcome: 'restored'; records: Map<string, StepRecord>; dropped: SafetyCopy[] } | { outcome: 'rollback'; records: Map<string, StepRecord>; rb: RollbackResult },
): string[] {
  const lines: string[] = [];
  const kinds: Array<ComponentKind | 'services'> = [...targetsOf(plan), ...(plan.steps.some((st) => st.component === 'services') ? (['services'] as const) : [])];
  for (const kind of kinds) {
    const steps = plan.steps.filter((st) => st.component === kind);
    const started = steps.filter((st) => s.records.get(st.id)?.started);
    const label = kind === 'services' ? componentNames.services : describeTarget(plan, kind);
    if (started.length === 0) {
      lines.push(`${label}: untouched`);
      continue;
    }
    if (s.outcome === 'restored') {
      if (kind === 'services') {
        lines.push(`${label}: ${steps.some((st) => st.phase === 'start' && s.records.get(st.id)?.status === 'done') ? 'started again' : 'as before'}`);
        continue;
      }
      const copyStep = steps.find((st) => st.safetyCopy);
      const dropped = copyStep ? s.dropped.find((d) => d.component === copyStep.safetyCopy?.component) : undefined;
      const copy = copyStep ? actualCopy(copyStep) : undefined;
      let kept = '';
      if (dropped) kept = `; previous data removed (--drop-safety-copies, was ${dropped.location})`;
      else if (copyStep && !copy) kept = '; there was no previous data to keep';
      else if (copy?.kind === 'none') kept = '; no safety copy was kept (chosen by the operator)';
      else if (copy) kept = `; previous data kept as ${copy.location}`;
      lines.push(`${label}: restored from ${plan.backup.id}${kept}`);
      continue;
    }
    const failedUndo = started.filter((st) => s.rb.notUndone.has(st.id));
    if (failedUndo.length === 0) {
      lines.push(kind === 'services' ? `${label}: running again as before` : `${label}: back to its pre-restore data (rolled back)`);
    } else {
      lines.push(`${label}: NOT back to its pre-restore state: ${failedUndo.map((st) => st.undo?.title ?? st.title).join(', ')} did not complete (see the manual steps)`);
    }
  }
  return lines;
}

export type { Outcome };
