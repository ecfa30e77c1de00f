import os from 'node:os';
import { runCheck, type CheckContext } from '../checks/index.js';
import { pasteableAction } from '../actions/describe.js';
import { executeAction, withKnownFacts, type CheckRunner } from '../engine/actions.js';
import { dataNotBack, undoStartsService } from '../engine/rollback.js';
import type { EngineEventBody, EventBus } from '../engine/events.js';
import type { RunSummary } from '../engine/run.js';
import { ExitCode } from '../exit-codes.js';
import { redactDeep, type Redactor } from '../exec/redact.js';
import type { LoadedRecipe } from '../recipe/load.js';
import { toolVersion } from '../version.js';
import { probeTargetsNow } from './describe.js';
import { settledState, stepsToUndo, type UnfinishedRun } from './state.js';

/**
 * `recover --rollback`: put the pre-restore state back from the safety copies, per the journal.
 * Undoes every step the dead run started and did not undo, newest first, with the plan's exact
 * undo actions (the same ones the engine's rollback runs); each undo is journaled (`undo` lines
 * of this run's journal), so a rollback that is itself killed resumes where it stopped. A step
 * in doubt whose host moves left nothing at their destinations never ran and is not undone. As in
 * the engine's rollback, a service is never started again on data that is not back (its data
 * target's undo failed or could not run): it stays stopped and the manual steps say when to start
 * it. The state lines at the end come from a live check of each target.
 */

const defaultCheckRunner: CheckRunner = async (check, ctx) => {
  const recipe = ctx['recipe'] as CheckContext['recipe'] | undefined;
  if (!recipe) return { ok: false, attempts: 0, durationMs: 0, detail: 'no recipe' };
  return runCheck(check, { recipe, env: ctx.env, redact: ctx.redact, signal: ctx.signal });
};

export interface RollbackUnfinishedOptions {
  bus: EventBus;
  redact: Redactor;
  env: NodeJS.ProcessEnv;
  runId: string;
  operator: string;
  loaded: LoadedRecipe;
  /** First signal: finish the undo that runs, then stop and report the exact state. */
  signal?: AbortSignal;
  /** One line per undo, for the operator (stderr). */
  write?: (line: string) => void;
}

export async function rollbackUnfinished(u: UnfinishedRun, opts: RollbackUnfinishedOptions): Promise<RunSummary> {
  const { bus, redact } = opts;
  const emit = (body: EngineEventBody): void => {
    bus.emit(body);
  };
  const write = opts.write ?? (() => undefined);
  const plan = u.plan;
  emit({
    type: 'run-started',
    runId: opts.runId,
    kind: 'restore',
    operator: opts.operator,
    host: os.hostname(),
    toolVersion: toolVersion(),
    recipe: plan.recipe,
    backup: { id: plan.backup.id, time: plan.backup.time, location: redact(plan.backup.location) },
    plan: redactDeep(plan, redact),
    confirmedAt: new Date().toISOString(),
  });
  emit({ type: 'log', level: 'info', message: redact(`recover: rolling back unfinished run ${u.runId} (journal ${u.journal})`) });
  emit({ type: 'rollback-started', reason: redact(`recover --rollback of unfinished run ${u.runId}`) });
  const manualSteps: string[] = [];
  const never = new AbortController().signal;
  const toUndo = stepsToUndo(u);
  /** Steps whose undo failed or never ran: their targets are not back. */
  const notUndone = new Set<string>();
  for (const step of toUndo) {
    const undo = step.undo;
    if (!undo || undo.actions.length === 0) {
      if (step.destructive && step.safetyCopy?.kind === 'none') {
        notUndone.add(step.id);
        const line = `${step.title}: no safety copy was kept (the operator chose none), so ${step.destroys ?? 'the previous data'} cannot be brought back; restore an older backup to recover it.`;
        manualSteps.push(line);
        emit({ type: 'rollback-step', stepId: step.id, title: `Undo ${step.title}`, ok: false, error: redact(line) });
      }
      continue;
    }
    if (opts.signal?.aborted) {
      notUndone.add(step.id);
      for (const a of undo.actions) manualSteps.push(pasteableAction(a, redact));
      emit({ type: 'rollback-step', stepId: step.id, title: undo.title, ok: false, error: 'not run: interrupted' });
      continue;
    }
    if (undoStartsService(step)) {
      // Never start a service on data that is not back (an application on an empty new database,
      // Prometheus on a data dir this run did not put there): it stays stopped, and the summary says why.
      const missing = dataNotBack(step, toUndo, notUndone);
      if (missing.length > 0) {
        const why = [...new Set(missing.map((m) => m.component ?? m.id))];
        const are = why.length === 1 ? 'is' : 'are';
        notUndone.add(step.id);
        manualSteps.push(`# ${undo.title} only once ${why.join(' and ')} ${are} back (the steps above):`);
        for (const a of undo.actions) manualSteps.push(pasteableAction(withKnownFacts(a, u.facts), redact));
        const error = redact(`not run: kept stopped because ${why.join(' and ')} ${are} not back`);
        emit({ type: 'rollback-step', stepId: step.id, title: undo.title, ok: false, error });
        write(`${undo.title}: kept stopped (${why.join(', ')} not back)`);
        continue;
      }
    }
    write(`${undo.title}${settledState(u, step) === 'in-doubt' ? ' (the run died in this step)' : ''}...`);
    let failed: string | undefined;
    for (let i = 0; i < undo.actions.length; i++) {
      const action = undo.actions[i]!;
      try {
        await executeAction(action, {
          stepId: step.id,
          emit,
          redact,
          env: opts.env,
          signal: never,
          runCheck: defaultCheckRunner,
          checkContext: { recipe: opts.loaded.recipe, loaded: opts.loaded, mode: 'restore' },
          verifiedFiles: plan.backup.components,
          facts: u.facts,
        });
      } catch (error) {
        failed = redact(error instanceof Error ? error.message : String(error));
        manualSteps.push(`${pasteableAction(withKnownFacts(action, u.facts), redact)}    # failed: ${failed}`);
        for (const rest of undo.actions.slice(i + 1)) manualSteps.push(pasteableAction(rest, redact));
        notUndone.add(step.id);
        break;
      }
    }
    emit({ type: 'rollback-step', stepId: step.id, title: undo.title, ok: failed === undefined, ...(failed ? { error: failed } : {}) });
    write(failed ? `  failed: ${failed}` : '  done');
  }
  const complete = manualSteps.length === 0;
  emit({ type: 'rollback-finished', complete, manualSteps });
  const state = await probeTargetsNow(opts.loaded, u, opts.env).catch((error: unknown) => [
    `the targets could not be checked: ${String(error)}`,
  ]);
  const summary: RunSummary = complete
    ? {
        outcome: 'rolled-back',
        exitCode: ExitCode.ok,
        safetyCopies: [],
        state,
        nextSteps: [
          `Run ${u.runId} is rolled back: the targets hold their pre-restore data again (from ${u.preIncident.map((c) => c.location).join(', ') || 'the safety copies'}). Restore again when ready.`,
        ],
      }
    : {
        outcome: 'rollback-incomplete',
        exitCode: ExitCode.rollbackIncomplete,
        safetyCopies: u.preIncident.map((c) => ({
          component: c.component,
          kind: c.kind,
          location: c.location,
          description: `${c.description} (the pre-incident copy, made by run ${c.run})`,
        })),
        state,
        nextSteps: [
          'The rollback did not complete. Do these by hand, in order (or run `restore-assistant recover` again once the cause is fixed):',
          ...manualSteps.map((m, i) => `${i + 1}. ${m}`),
        ],
        manualSteps,
        error: `the rollback of run ${u.runId} did not complete`,
      };
  const clean = redactDeep(summary, redact);
  emit({ type: 'run-finished', ...clean });
  return clean;
}
