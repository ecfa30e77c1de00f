import type { EngineEvent } from '../engine/events.js';
import type { Plan, SafetyCopy } from '../plan/types.js';
import type { RunSummary } from './types.js';
import { sanitizeDeep } from '../text/sanitize.js';

/**
 * What the run screen shows, folded from the engine's event stream. Pure: the same events always
 * give the same view, so the run screen is tested by feeding it events.
 */

export type StepStatus = 'running' | 'done' | 'failed' | 'skipped';

export interface StepView {
  id: string;
  title: string;
  status: StepStatus;
  /** ISO-8601 UTC when the step started (for the live elapsed time). */
  startedAt?: string;
  durationMs?: number;
  detail?: string;
  error?: string;
  reason?: string;
}

export interface ProgressView {
  unit: 'bytes' | 'items';
  done: number;
  total?: number;
  etaMs?: number;
}

export interface RollbackView {
  reason: string;
  steps: Array<{ stepId: string; title: string; ok: boolean; error?: string }>;
  complete?: boolean;
  manualSteps?: string[];
}

export interface RunView {
  runId?: string;
  /** Who ran it, where (run-started): for the incident block. */
  operator?: string;
  host?: string;
  /** Steps in the order they started. */
  steps: StepView[];
  /** Ids of finished (done, failed, skipped) steps in the order they finished. */
  finishedOrder: string[];
  progress: Record<string, ProgressView>;
  /** The last lines of output per step. */
  tails: Record<string, string[]>;
  safetyCopies: SafetyCopy[];
  health: Array<{ name: string; ok: boolean; attempts: number; durationMs: number; detail: string }>;
  /** Warnings and errors the engine logged. */
  notes: Array<{ level: 'warn' | 'error'; message: string }>;
  rollback?: RollbackView;
  finished?: RunSummary;
}

export const TAIL_LINES = 4;

export function emptyRunView(): RunView {
  return { steps: [], finishedOrder: [], progress: {}, tails: {}, safetyCopies: [], health: [], notes: [] };
}

function updateStep(view: RunView, id: string, title: string, patch: Partial<StepView>, finished: boolean): RunView {
  const idx = view.steps.findIndex((s) => s.id === id);
  const steps = [...view.steps];
  if (idx === -1) steps.push({ id, title, status: 'running', ...patch });
  else steps[idx] = { ...steps[idx]!, ...patch };
  const finishedOrder = finished && !view.finishedOrder.includes(id) ? [...view.finishedOrder, id] : view.finishedOrder;
  return { ...view, steps, finishedOrder };
}

export function foldRunEvent(view: RunView, raw: EngineEvent): RunView {
  // Titles, output lines, errors carry names and output from outside: control characters escaped.
  const event = sanitizeDeep(raw);
  switch (event.type) {
    case 'run-started':
      return { ...view, runId: event.runId, operator: event.operator, host: event.host };
    case 'step-started':
      return updateStep(view, event.stepId, event.title, { status: 'running', startedAt: event.ts, title: event.title }, false);
    case 'step-finished': {
      const patch: Partial<StepView> = { status: 'done', durationMs: event.durationMs, title: event.title };
      if (event.detail !== undefined) patch.detail = event.detail;
      return updateStep(view, event.stepId, event.title, patch, true);
    }
    case 'step-failed':
      return updateStep(
        view,
        event.stepId,
        event.title,
        { status: 'failed', durationMs: event.durationMs, error: event.error, title: event.title },
        true,
      );
    case 'step-skipped':
      return updateStep(view, event.stepId, event.title, { status: 'skipped', reason: event.reason, title: event.title }, true);
    case 'command-output': {
      const prev = view.tails[event.stepId] ?? [];
      const line = event.line.replace(/\s+$/, '');
      if (line === '') return view;
      return { ...view, tails: { ...view.tails, [event.stepId]: [...prev, line].slice(-TAIL_LINES) } };
    }
    case 'progress': {
      const p: ProgressView = { unit: event.unit, done: event.done };
      if (event.total !== undefined) p.total = event.total;
      if (event.etaMs !== undefined) p.etaMs = event.etaMs;
      return { ...view, progress: { ...view.progress, [event.stepId]: p } };
    }
    case 'log':
      if (event.level === 'info') return view;
      return { ...view, notes: [...view.notes, { level: event.level, message: event.message }].slice(-6) };
    case 'safety-copy':
      return { ...view, safetyCopies: [...view.safetyCopies, event.copy] };
    case 'health-check':
      return {
        ...view,
        health: [
          ...view.health,
          { name: event.name, ok: event.ok, attempts: event.attempts, durationMs: event.durationMs, detail: event.detail },
        ],
      };
    case 'rollback-started':
      return { ...view, rollback: { reason: event.reason, steps: [] } };
    case 'rollback-step': {
      const rb = view.rollback ?? { reason: 'rollback', steps: [] };
      const step: RollbackView['steps'][number] = { stepId: event.stepId, title: event.title, ok: event.ok };
      if (event.error !== undefined) step.error = event.error;
      return { ...view, rollback: { ...rb, steps: [...rb.steps, step] } };
    }
    case 'rollback-finished': {
      const rb = view.rollback ?? { reason: 'rollback', steps: [] };
      return { ...view, rollback: { ...rb, complete: event.complete, manualSteps: event.manualSteps } };
    }
    case 'run-finished': {
      const { ts: _ts, t: _t, type: _type, ...summary } = event;
      return { ...view, finished: summary };
    }
    default:
      return view;
  }
}

export function runningSteps(view: RunView): StepView[] {
  return view.steps.filter((s) => s.status === 'running');
}

export function finishedSteps(view: RunView): StepView[] {
  const byId = new Map(view.steps.map((s) => [s.id, s]));
  return view.finishedOrder.map((id) => byId.get(id)).filter((s): s is StepView => s !== undefined);
}

/**
 * The exact state, step by step, as far as the events tell it: for the report when the operator
 * stops waiting for a rollback. One line per plan step, then the safety copies.
 */
export function describeRunState(view: RunView, plan: Plan): string[] {
  const byId = new Map(view.steps.map((s) => [s.id, s]));
  const undone = new Map((view.rollback?.steps ?? []).map((s) => [s.stepId, s]));
  const lines: string[] = [];
  for (const step of plan.steps) {
    const seen = byId.get(step.id);
    const rb = undone.get(step.id);
    let state: string;
    if (!seen) state = 'not started';
    else if (seen.status === 'running') state = 'was running when interrupted (may be half done)';
    else if (seen.status === 'skipped') state = 'skipped';
    else if (seen.status === 'failed') state = 'failed';
    else state = 'done';
    if (rb) state += rb.ok ? ', undone' : `, undo FAILED${rb.error ? `: ${rb.error}` : ''}`;
    else if (seen && seen.status !== 'skipped' && (step.destructive || step.undo) && view.rollback)
      state += step.undo ? ', NOT undone yet' : '';
    lines.push(`${step.title}: ${state}`);
  }
  for (const copy of view.safetyCopies) lines.push(`Safety copy of ${copy.component} kept: ${copy.location} (${copy.description})`);
  if (view.rollback?.manualSteps) for (const m of view.rollback.manualSteps) lines.push(`Manual step: ${m}`);
  return lines;
}

/** How long earlier runs took, and how long this one has run so far (for the overall time left). */
export interface OverallEstimate {
  /** Median of earlier successful runs of this kind (confirm to healthy). */
  ms: number;
  runs: number;
  /** Since the operator confirmed. */
  elapsedMs: number;
}

/**
 * The run's overall position, one line: "Step 9 of 19 · 8 done · about 8s left in Restore
 * PostgreSQL database shop" (the time left is the engine's own per-step ETA from its progress
 * events; without one, none is claimed). Parallel steps: "Steps 9–10 of 19". With earlier runs'
 * median: " · about 12s left in all (median of 3 runs)", never less than the running step's ETA;
 * past the median it says so instead of counting below zero.
 */
export function overallProgressLine(
  view: RunView,
  totalSteps: number,
  formatDuration: (ms: number) => string,
  estimate?: OverallEstimate,
): string | undefined {
  if (view.rollback || view.finished || totalSteps === 0) return undefined;
  const done = view.finishedOrder.length;
  const running = runningSteps(view);
  const first = Math.min(totalSteps, done + 1);
  const last = Math.min(totalSteps, done + Math.max(1, running.length));
  const where = first === last ? `Step ${first} of ${totalSteps}` : `Steps ${first}–${last} of ${totalSteps}`;
  // The running step with the longest ETA the engine reported decides "time left".
  let eta = '';
  let longest = 0;
  for (const s of running) {
    const ms = view.progress[s.id]?.etaMs;
    if (ms !== undefined && ms > longest) {
      longest = ms;
      eta = ` · about ${formatDuration(ms)} left in ${s.title}`;
    }
  }
  let overall = '';
  if (estimate && estimate.runs > 0) {
    const left = estimate.ms - estimate.elapsedMs;
    const runs = `median of ${estimate.runs} run${estimate.runs === 1 ? '' : 's'}`;
    overall =
      left > 0
        ? ` · about ${formatDuration(Math.max(left, longest))} left in all (${runs})`
        : ` · longer than the usual ${formatDuration(estimate.ms)} (${runs})`;
  }
  return `${where} · ${done} done${eta}${overall}`;
}
