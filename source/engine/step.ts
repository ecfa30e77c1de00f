import { redactDeep } from '../exec/redact.js';
import { formatDuration } from '../output.js';
import type { Plan, PlanStep } from '../plan/types.js';
import { sanitizeText } from '../text/sanitize.js';
import { ActionError, CheckFailedError, executeAction, InterruptedError, type ActionContext } from './actions.js';
import type { EngineEventBody } from './events.js';
import type { ExecuteOptions } from './options.js';
import type { RunProgress } from './progress.js';
import type { Task } from './schedule.js';

/**
 * One step: wait for its dependencies, skip it when the run is stopping or a dependency did not
 * finish, run its actions in order, and record and report how it ended. The run's shared state
 * (what each step did, the first failure, the failed health checks) lives in one RunState per run.
 */

export type StepStatus = 'pending' | 'running' | 'done' | 'unhealthy' | 'failed' | 'skipped';

export interface StepRecord {
  step: PlanStep;
  status: StepStatus;
  started: boolean;
  startedAt?: number;
  finishedAt?: number;
  error?: string;
  done: Promise<void>;
  resolve: () => void;
}

export interface RunState {
  plan: Plan;
  opts: ExecuteOptions;
  records: Map<string, StepRecord>;
  /** Stops every lane when one step fails; the operator's signal does the same. */
  stopAll: AbortController;
  signal: AbortSignal;
  failure: { stepId: string; message: string; phase: string } | undefined;
  failedChecks: string[];
  healthDoneAt: number | undefined;
  /** Called when a step settles (the parallel group retitles itself once all its steps have). */
  onSettled: Map<string, () => void>;
  /** Run facts recorded by commands (PlannedCommand.record), e.g. the OID of the database this run created. */
  facts: Map<string, string>;
  /** The terminal display's step N of M, elapsed and ETA (progress.ts); only with listr2's default renderer. */
  progress?: RunProgress;
}

export function newRunState(plan: Plan, opts: ExecuteOptions): RunState {
  const records = new Map<string, StepRecord>();
  for (const step of plan.steps) {
    let resolve!: () => void;
    const done = new Promise<void>((r) => (resolve = r));
    records.set(step.id, { step, status: 'pending', started: false, done, resolve });
  }
  const stopAll = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, stopAll.signal]) : stopAll.signal;
  return {
    plan,
    opts,
    records,
    stopAll,
    signal,
    failure: undefined,
    failedChecks: [],
    healthDoneAt: undefined,
    onSettled: new Map(),
    facts: new Map(opts.facts ?? []),
  };
}

export function rec(run: RunState, id: string): StepRecord {
  const r = run.records.get(id);
  if (!r) throw new Error(`unknown step ${id}`);
  return r;
}

/** What an action needs to run for the given step (the undo pass uses it too). */
export function actionContext(run: RunState, stepId: string, task: Task | undefined, sig: AbortSignal): ActionContext {
  const { opts } = run;
  return {
    stepId,
    emit: (body: EngineEventBody) => opts.bus.emit(body),
    redact: opts.redact,
    env: opts.env,
    signal: sig,
    runCheck: opts.runCheck,
    ...(opts.checkContext ? { checkContext: opts.checkContext } : {}),
    ...(opts.progressIntervalMs ? { progressIntervalMs: opts.progressIntervalMs } : {}),
    ...(task ? { onOutput: (line: string) => (task.output = sanitizeText(line)) } : {}),
    verifiedFiles: run.plan.backup.components,
    facts: run.facts,
  };
}

export async function runStep(run: RunState, step: PlanStep, task: Task): Promise<void> {
  const { opts, signal } = run;
  const { redact } = opts;
  const emit = (body: EngineEventBody): void => {
    opts.bus.emit(body);
  };
  const r = rec(run, step.id);
  let ticker: ReturnType<typeof setInterval> | undefined;
  try {
    for (const dep of step.dependsOn) await rec(run, dep).done;
    const skip = (reason: string): void => {
      r.status = 'skipped';
      emit({ type: 'step-skipped', stepId: step.id, title: step.title, reason });
      task.skip(sanitizeText(`${step.title} (skipped: ${reason})`));
    };
    if (signal.aborted || run.failure) return skip(opts.signal?.aborted ? 'interrupted' : 'an earlier step failed');
    const blocked = step.dependsOn.find((d) => rec(run, d).status !== 'done' && rec(run, d).status !== 'unhealthy');
    if (blocked) return skip(`${rec(run, blocked).step.title} did not finish`);
    if (step.phase === 'cleanup' && run.failedChecks.length > 0) return skip('health checks failed: safety copies are kept');

    r.status = 'running';
    r.started = true;
    r.startedAt = performance.now();
    emit({ type: 'step-started', stepId: step.id, title: step.title });
    // On a terminal: the running step's title says where the run is, every second, until it settles.
    const progress = run.progress;
    if (progress) {
      const title = sanitizeText(step.title);
      const startedAt = r.startedAt;
      const retitle = (): void => {
        if (r.status === 'running') task.title = `${title} (${progress.status(step.id, startedAt)})`;
      };
      retitle();
      ticker = setInterval(retitle, 1000);
      ticker.unref();
    }
    const details: string[] = [];
    const stepChecksFailed: string[] = [];
    for (const action of step.actions) {
      try {
        const detail = await executeAction(action, actionContext(run, step.id, task, signal));
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
        if (!run.failure && !(interrupted && !opts.signal?.aborted)) run.failure = { stepId: step.id, message, phase: step.phase };
        run.stopAll.abort();
        emit({
          type: 'step-failed',
          stepId: step.id,
          title: step.title,
          durationMs: Math.round(r.finishedAt - r.startedAt),
          error: message,
        });
        task.title = sanitizeText(`${step.title}: ${opts.signal?.aborted ? 'interrupted' : 'failed'}`);
        throw error instanceof ActionError || error instanceof InterruptedError ? new Error(message) : error;
      }
    }
    r.finishedAt = performance.now();
    const durationMs = Math.round(r.finishedAt - r.startedAt);
    if (step.phase === 'health') run.healthDoneAt = Date.now();
    if (stepChecksFailed.length > 0) {
      r.status = 'unhealthy';
      run.failedChecks.push(...stepChecksFailed);
      const message = `${stepChecksFailed.length} health check${stepChecksFailed.length === 1 ? '' : 's'} failed: ${stepChecksFailed.join(', ')}`;
      emit({ type: 'step-failed', stepId: step.id, title: step.title, durationMs, error: message });
      task.title = sanitizeText(`${step.title}: ${message}`);
      throw new Error(message);
    }
    r.status = 'done';
    if (step.safetyCopy) emit({ type: 'safety-copy', stepId: step.id, copy: redactDeep(step.safetyCopy, redact) });
    emit({
      type: 'step-finished',
      stepId: step.id,
      title: step.doneTitle,
      durationMs,
      ...(details.length ? { detail: redact(details.join('; ')) } : {}),
    });
    task.title = sanitizeText(`${step.doneTitle} (${formatDuration(durationMs)})`);
  } finally {
    if (ticker) clearInterval(ticker);
    r.resolve();
    run.onSettled.get(step.id)?.();
  }
}
