import type { PlannedAction } from '../actions/types.js';
import type { PlanStep, SafetyCopy } from '../plan/types.js';
import { sanitizeText } from '../text/sanitize.js';
import { pasteableAction } from '../actions/describe.js';
import { executeAction, withKnownFacts } from './actions.js';
import { runTasks, type StepTask } from './schedule.js';
import { actionContext, type RunState } from './step.js';

/**
 * Rollback: undo every step that started (completed ones and the one that failed half-way), in
 * reverse plan order, and say exactly what could not be undone as pasteable manual steps. A second
 * signal (`stopSignal`) stops waiting: what has not run yet is reported, not attempted.
 */

/** A step whose undo starts a service again (an application's stop, Redis' or Prometheus' stop). */
export function undoStartsService(step: PlanStep): boolean {
  return (
    step.phase === 'quiesce' || (step.component !== undefined && step.component !== 'services' && step.id === `${step.component}:stop`)
  );
}

/**
 * The data targets a service needs back before it is started again: an application needs every
 * data target; Redis and Prometheus need their own data.
 */
export function dataNotBack(step: PlanStep, started: readonly PlanStep[], notUndone: ReadonlySet<string>): PlanStep[] {
  return started.filter(
    (s) =>
      notUndone.has(s.id) &&
      !undoStartsService(s) &&
      s.component !== 'services' &&
      (step.component === 'services' || s.component === step.component),
  );
}

/** The undo's last action, when it waits for the service to be up (the probe of "already running"). */
function upProbe(actions: readonly PlannedAction[]): PlannedAction | undefined {
  const last = actions[actions.length - 1];
  if (!last) return undefined;
  if (last.type === 'wait-command' && last.untilExit === 'zero') return { ...last, timeoutSeconds: 3 };
  if ((last.type === 'wait-tcp' || last.type === 'wait-http') && (last.until ?? 'up') === 'up') return { ...last, timeoutSeconds: 3 };
  return undefined;
}

export interface RollbackResult {
  complete: boolean;
  manualSteps: string[];
  /** Steps whose undo ran completely. */
  undone: Set<string>;
  /** Steps whose undo failed or never ran. */
  notUndone: Set<string>;
  /** Safety copies still where they were put (their undo did not run). */
  remainingCopies: SafetyCopy[];
  /** Services kept stopped because a data target they need is not back, with the targets' names. */
  keptStopped: Map<string, string[]>;
}

export async function rollback(run: RunState, started: PlanStep[], reason: string): Promise<RollbackResult> {
  const { opts } = run;
  const { bus, redact } = opts;
  bus.emit({ type: 'rollback-started', reason: redact(reason) });
  const stop = opts.stopSignal ?? new AbortController().signal;
  const manualSteps: string[] = [];
  const undone = new Set<string>();
  const notUndone = new Set<string>();
  const remainingCopies: SafetyCopy[] = [];
  const keptStopped = new Map<string, string[]>();
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
        for (const a of undo.actions) manualSteps.push(pasteableAction(withKnownFacts(a, run.facts), redact));
        if (step.safetyCopy && step.safetyCopy.kind !== 'none') remainingCopies.push(step.safetyCopy);
        bus.emit({
          type: 'rollback-step',
          stepId: step.id,
          title: undo.title,
          ok: false,
          error: 'not run: the operator asked to stop waiting',
        });
        task.skip(sanitizeText(`${undo.title}: not run (stopped)`));
        return;
      }
      if (undoStartsService(step)) {
        // Never start a service on data that is not back (an application on an empty new database,
        // Redis on an empty AOF): it stays stopped, and the summary says why.
        const missing = dataNotBack(step, started, notUndone);
        if (missing.length > 0) {
          const why = [...new Set(missing.map((m) => m.component ?? m.id))];
          notUndone.add(step.id);
          keptStopped.set(step.id, why);
          const line = `${undo.title} only once ${why.join(' and ')} ${why.length === 1 ? 'is' : 'are'} back (the steps above):`;
          manualSteps.push(`# ${line}`);
          for (const a of undo.actions) manualSteps.push(pasteableAction(withKnownFacts(a, run.facts), redact));
          bus.emit({
            type: 'rollback-step',
            stepId: step.id,
            title: undo.title,
            ok: false,
            error: redact(`not run: kept stopped because ${why.join(' and ')} ${why.length === 1 ? 'is' : 'are'} not back`),
          });
          task.skip(sanitizeText(`${undo.title}: kept stopped (${why.join(', ')} not back)`));
          return;
        }
        // Idempotent: a stop that never completed (killed mid-way, or failed) left it running.
        const probe = upProbe(undo.actions);
        if (probe) {
          const running = await executeAction(probe, actionContext(run, step.id, task, stop)).then(
            () => true,
            () => false,
          );
          if (running) {
            undone.add(step.id);
            bus.emit({ type: 'log', stepId: step.id, level: 'info', message: redact(`${undo.title}: already running, nothing to start`) });
            bus.emit({ type: 'rollback-step', stepId: step.id, title: undo.title, ok: true });
            task.title = sanitizeText(`${undo.title}: already running`);
            return;
          }
        }
      }
      for (let i = 0; i < undo.actions.length; i++) {
        const action = undo.actions[i];
        if (!action) continue;
        try {
          await executeAction(action, actionContext(run, step.id, task, stop));
        } catch (error) {
          const message = redact(error instanceof Error ? error.message : String(error));
          notUndone.add(step.id);
          if (step.safetyCopy && step.safetyCopy.kind !== 'none') remainingCopies.push(step.safetyCopy);
          manualSteps.push(`${pasteableAction(withKnownFacts(action, run.facts), redact)}    # failed: ${message}`);
          for (const rest of undo.actions.slice(i + 1)) manualSteps.push(pasteableAction(withKnownFacts(rest, run.facts), redact));
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

  await runTasks(todo.map(undoTask), opts);
  const complete = manualSteps.length === 0;
  bus.emit({ type: 'rollback-finished', complete, manualSteps: manualSteps.map((m) => redact(m)) });
  return { complete, manualSteps, undone, notUndone, remainingCopies, keptStopped };
}
