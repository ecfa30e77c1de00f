import type { PlanStep, SafetyCopy } from '../plan/types.js';
import { sanitizeText } from '../text/sanitize.js';
import { pasteableAction } from '../actions/describe.js';
import { executeAction } from './actions.js';
import { runTasks, type StepTask } from './schedule.js';
import { actionContext, type RunState } from './step.js';

/**
 * Rollback: undo every step that started (completed ones and the one that failed half-way), in
 * reverse plan order, and say exactly what could not be undone as pasteable manual steps. A second
 * signal (`stopSignal`) stops waiting: what has not run yet is reported, not attempted.
 */

export interface RollbackResult {
  complete: boolean;
  manualSteps: string[];
  /** Steps whose undo ran completely. */
  undone: Set<string>;
  /** Steps whose undo failed or never ran. */
  notUndone: Set<string>;
  /** Safety copies still where they were put (their undo did not run). */
  remainingCopies: SafetyCopy[];
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
        for (const a of undo.actions) manualSteps.push(pasteableAction(a, redact));
        if (step.safetyCopy && step.safetyCopy.kind !== 'none') remainingCopies.push(step.safetyCopy);
        bus.emit({ type: 'rollback-step', stepId: step.id, title: undo.title, ok: false, error: 'not run: the operator asked to stop waiting' });
        task.skip(sanitizeText(`${undo.title}: not run (stopped)`));
        return;
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
          manualSteps.push(`${pasteableAction(action, redact)}    # failed: ${message}`);
          for (const rest of undo.actions.slice(i + 1)) manualSteps.push(pasteableAction(rest, redact));
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
  return { complete, manualSteps, undone, notUndone, remainingCopies };
}
