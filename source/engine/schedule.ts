import {
  Listr,
  ListrLogger,
  ProcessOutput,
  type DefaultRenderer,
  type ListrTask,
  type ListrTaskWrapper,
  type SimpleRenderer,
} from 'listr2';
import { componentLabel } from '../catalog/types.js';
import type { Lane, Plan, PlanStep } from '../plan/types.js';
import { sanitizeText } from '../text/sanitize.js';
import type { RunPlanOptions } from './options.js';

/**
 * Scheduling: which steps run in sequence and which lanes run side by side, as listr2 tasks. What
 * one step does is source/engine/step.ts; the undo pass reuses `makeListr` and `runTasks`.
 */

export type Task = ListrTaskWrapper<unknown, typeof DefaultRenderer, typeof SimpleRenderer>;
export type StepTask = ListrTask<unknown, typeof DefaultRenderer, typeof SimpleRenderer>;
type AnyListr = Listr<unknown, 'default' | 'simple' | 'silent' | 'test', 'simple'>;

const laneNames: Record<Lane, string> = { main: 'Main', ...componentLabel };

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
  return groups.flatMap((g): Group[] =>
    g.kind === 'lanes' && g.lanes.length === 1 ? (g.lanes[0]?.[1] ?? []).map((step) => ({ kind: 'step', step })) : [g],
  );
}

export interface ScheduleHooks {
  /** Runs one step as the given task (source/engine/step.ts `runStep`). */
  runStep: (step: PlanStep, task: Task) => Promise<void>;
  /** Whether the step has settled and whether it succeeded (for a parallel group's title). */
  status: (stepId: string) => 'open' | 'ok' | 'not-ok';
  /** Registers what to call when a step settles. */
  onSettled: (stepId: string, settle: () => void) => void;
  /** The operator's signal fired (a group says "interrupted" rather than "a step failed"). */
  interrupted: () => boolean;
}

/** The plan's steps as listr2 tasks: main steps in order, each parallel group's lanes concurrently. */
export function scheduleTasks(plan: Plan, hooks: ScheduleHooks): StepTask[] {
  const stepTask = (step: PlanStep): StepTask => ({
    title: sanitizeText(step.title),
    task: (_ctx, task) => hooks.runStep(step, task),
  });

  return groupSteps(plan).map((g): StepTask => {
    if (g.kind === 'step') return stepTask(g.step);
    const names = g.lanes.map(([lane]) => laneNames[lane]);
    const list = names.length > 1 ? `${names.slice(0, -1).join(', ')} and ${names.at(-1) ?? ''}` : (names[0] ?? '');
    const groupSteps = g.lanes.flatMap(([, steps]) => steps);
    const settle = (): void => {
      if (!groupTask || !groupSteps.every((s) => hooks.status(s.id) !== 'open')) return;
      const ok = groupSteps.every((s) => hooks.status(s.id) === 'ok');
      groupTask.title = sanitizeText(
        ok ? `${list} restored` : `${list}: stopped (${hooks.interrupted() ? 'interrupted' : 'a step failed'})`,
      );
    };
    let groupTask: Task | undefined;
    for (const s of groupSteps) hooks.onSettled(s.id, settle);
    return {
      title: sanitizeText(`Restore ${list} (in parallel)`),
      task: (_ctx, task) => {
        groupTask = task;
        return task.newListr(
          g.lanes.map(([lane, steps]) =>
            steps.length === 1 && steps[0]
              ? stepTask(steps[0])
              : {
                  title: sanitizeText(laneNames[lane] ?? ''),
                  task: (_c: unknown, t: Task) => t.newListr(steps.map(stepTask), { concurrent: false, exitOnError: false }),
                },
          ),
          { concurrent: true, exitOnError: false },
        );
      },
    };
  });
}

/** Runs the tasks to the end (failures are recorded by the tasks themselves; listr2 only displays them). */
export async function runTasks(tasks: StepTask[], opts: RunPlanOptions, report = false): Promise<void> {
  const listr = makeListr(tasks, opts);
  try {
    await listr.run();
  } catch {
    // Step failures are recorded on the records; listr2 only displays them.
  }
  if (report) reportTaskStates(listr, opts);
}

function makeListr(tasks: Array<StepTask>, opts: RunPlanOptions): AnyListr {
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
      }) as AnyListr;
    case 'test':
      return new Listr<unknown, 'test', 'simple'>(tasks as never, {
        ...common,
        renderer: 'test',
        rendererOptions: { logger: quietLogger() },
      }) as AnyListr;
    case 'simple':
    case 'silent':
      // The plain renderer reads the event stream (line-renderer.ts); listr2 draws nothing.
      return new Listr<unknown, 'silent', 'simple'>(tasks, { ...common, renderer: 'silent' }) as AnyListr;
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

function reportTaskStates(listr: AnyListr, opts: RunPlanOptions): void {
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
