import { existsSync } from 'node:fs';
import { COMPONENT_KINDS, type ComponentKind, componentLabel } from '../catalog/types.js';
import { ExitCode } from '../exit-codes.js';
import type { Redactor } from '../exec/redact.js';
import type { Plan, PlanStep, SafetyCopy } from '../plan/types.js';
import type { PlannedAction } from '../actions/types.js';
import { pasteableAction } from '../actions/describe.js';
import type { EngineEventBody, Outcome } from './events.js';
import type { RollbackResult } from './rollback.js';
import type { StepRecord } from './step.js';
import { criticalPath, type CriticalPath } from './critical-path.js';

/**
 * The run's summary (the `run-finished` event without its type): one builder for every outcome,
 * and the lines it is made of — what each target holds now, which safety copies are kept, and
 * what is left to do by hand.
 */

export type RunSummary = Omit<Extract<EngineEventBody, { type: 'run-finished' }>, 'type'>;

export interface SummaryParts {
  outcome: Outcome;
  exitCode: number;
  rtoMs?: number;
  /** Left out of the summary when unknown. */
  rpoMs: number | undefined;
  safetyCopies?: SafetyCopy[];
  state: string[];
  nextSteps: string[];
  failedChecks?: string[];
  manualSteps?: string[];
  error?: string;
  criticalPath?: CriticalPath;
}

/** The one place a RunSummary is put together. */
export function buildSummary(p: SummaryParts): RunSummary {
  return {
    outcome: p.outcome,
    exitCode: p.exitCode,
    ...(p.rtoMs === undefined ? {} : { rtoMs: p.rtoMs }),
    ...(p.rpoMs === undefined ? {} : { rpoMs: p.rpoMs }),
    safetyCopies: p.safetyCopies ?? [],
    state: p.state,
    nextSteps: p.nextSteps,
    ...(p.failedChecks ? { failedChecks: p.failedChecks } : {}),
    ...(p.manualSteps ? { manualSteps: p.manualSteps } : {}),
    ...(p.error === undefined ? {} : { error: p.error }),
    ...(p.criticalPath ? { criticalPath: p.criticalPath } : {}),
  };
}

const componentNames: Record<ComponentKind | 'services', string> = { ...componentLabel, services: 'Application services' };

export function targetsOf(plan: Plan): ComponentKind[] {
  return COMPONENT_KINDS.filter((k) => plan.steps.some((s) => s.component === k));
}

export function describeTarget(plan: Plan, kind: ComponentKind): string {
  return plan.targets[kind] ?? componentNames[kind];
}

/** Every target: the same state line (`untouched`, `scratch target, ...`). */
export function everyTarget(plan: Plan, state: string): string[] {
  return targetsOf(plan).map((k) => `${describeTarget(plan, k)}: ${state}`);
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
export function incompleteRollback(
  rb: RollbackResult,
  state: string[],
  reason: string,
  rpoMs: number | undefined,
  failedChecks?: string[],
): RunSummary {
  return buildSummary({
    outcome: 'rollback-incomplete',
    exitCode: ExitCode.rollbackIncomplete,
    rpoMs,
    safetyCopies: rb.remainingCopies,
    state,
    nextSteps: ['The rollback did not complete. Do these by hand, in order:', ...rb.manualSteps.map((m, i) => `${i + 1}. ${m}`)],
    ...(failedChecks ? { failedChecks } : {}),
    manualSteps: rb.manualSteps,
    error: reason,
  });
}

export function keptCopies(plan: Plan, records: Map<string, StepRecord>): SafetyCopy[] {
  return plan.steps
    .filter((s) => s.safetyCopy && s.safetyCopy.kind !== 'none' && records.get(s.id)?.started && records.get(s.id)?.status !== 'failed')
    .flatMap((s) => {
      const copy = actualCopy(s);
      return copy ? [copy] : [];
    });
}

/** The undo commands of the completed steps, in reverse order, for the operator to run by hand. */
export function manualUndo(steps: PlanStep[], redact: Redactor): string[] {
  return [...steps].reverse().flatMap((s) => (s.undo?.actions ?? []).map((a) => pasteableAction(a, redact)));
}

export function stateLines(
  plan: Plan,
  s:
    | { outcome: 'restored'; records: Map<string, StepRecord>; dropped: SafetyCopy[] }
    | { outcome: 'rollback'; records: Map<string, StepRecord>; rb: RollbackResult },
): string[] {
  const lines: string[] = [];
  const kinds: Array<ComponentKind | 'services'> = [
    ...targetsOf(plan),
    ...(plan.steps.some((st) => st.component === 'services') ? (['services'] as const) : []),
  ];
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
        lines.push(
          `${label}: ${steps.some((st) => st.phase === 'start' && s.records.get(st.id)?.status === 'done') ? 'started again' : 'as before'}`,
        );
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
    const kept = started.filter((st) => s.rb.keptStopped.has(st.id));
    if (kept.length > 0 && kept.length === failedUndo.length) {
      const why = [...new Set(kept.flatMap((st) => s.rb.keptStopped.get(st.id) ?? []))].map((k) =>
        k === 'services' ? k : describeTarget(plan, k as ComponentKind),
      );
      lines.push(
        `${label}: kept STOPPED because ${why.join(' and ')} ${why.length === 1 ? 'is' : 'are'} not back (start ${kind === 'services' ? 'them' : 'it'} by hand once ${why.length === 1 ? 'it is' : 'they are'}: see the manual steps)`,
      );
      continue;
    }
    if (failedUndo.length === 0) {
      lines.push(kind === 'services' ? `${label}: running again as before` : `${label}: back to its pre-restore data (rolled back)`);
    } else {
      lines.push(
        `${label}: NOT back to its pre-restore state: ${failedUndo.map((st) => st.undo?.title ?? st.title).join(', ')} did not complete (see the manual steps)`,
      );
    }
  }
  return lines;
}

/** The critical path of a run from its step records (performance.now() times), ms from the RTO clock start. */
export function runCriticalPath(records: Map<string, StepRecord>, clockStart: Date): CriticalPath | undefined {
  const origin = clockStart.getTime() - performance.timeOrigin;
  const timed = [...records.values()].flatMap((r) =>
    r.startedAt !== undefined && r.finishedAt !== undefined
      ? [{ stepId: r.step.id, title: r.step.title, startMs: Math.round(r.startedAt - origin), endMs: Math.round(r.finishedAt - origin) }]
      : [],
  );
  return criticalPath(timed, 0);
}
