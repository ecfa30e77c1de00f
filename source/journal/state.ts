import { existsSync } from 'node:fs';
import os from 'node:os';
import type { PlannedAction } from '../actions/types.js';
import type { Plan, PlanStep } from '../plan/types.js';
import {
  bootId,
  indexFile,
  readIndex,
  readJournal,
  removeIndexEntry,
  type JournalIndexEntry,
  type JournalRecord,
  type PreIncidentCopy,
  type RecoverMode,
} from './journal.js';

/**
 * What a journal says: which steps of an unfinished run started, finished, were undone, and
 * what is in doubt (a step whose `intent` is on disk but not its outcome: the kill came while it
 * ran). Recovery folds the original run's journal with the journals of every `recover` attempt on
 * it (recorded in the original as `attempt` lines), so a recover that is itself killed is
 * recovered from the same facts.
 */

export type StepState = 'pending' | 'in-doubt' | 'failed' | 'done' | 'undone';

export interface Attempt {
  runId: string;
  mode: RecoverMode;
  journal: string;
}

export interface UnfinishedRun {
  runId: string;
  journal: string;
  entry: JournalIndexEntry;
  begin: Extract<JournalRecord, { j: 'begin' }>;
  plan: Plan;
  /** Per step id of the original plan. */
  steps: Map<string, StepState>;
  /** When each step started (its intent), for "died in". */
  startedAt: Map<string, string>;
  /** The step the run died in (the last in doubt, else the last started). */
  diedIn?: { stepId: string; title: string; at: string; state: StepState };
  /** A rollback was under way when it died. */
  rollingBack: boolean;
  attempts: Attempt[];
  preIncident: PreIncidentCopy[];
  /** When the journal was last written. */
  lastAt: string;
  /** Run facts the run (and its recover attempts) recorded: the OID of the database it created. */
  facts: Map<string, string>;
}

export type AttemptRecord = Extract<JournalRecord, { j: 'attempt' }>;

function fold(
  plan: Plan,
  records: ReadonlyArray<JournalRecord>,
  steps: Map<string, StepState>,
  startedAt: Map<string, string>,
): { rollingBack: boolean; last?: string } {
  let rollingBack = false;
  let last: string | undefined;
  const known = (id: string): boolean => steps.has(id);
  for (const r of records) {
    switch (r.j) {
      case 'intent': {
        if (r.stepId.startsWith('reset:')) {
          const id = r.stepId.slice('reset:'.length);
          if (known(id)) steps.set(id, 'in-doubt');
          break;
        }
        if (!known(r.stepId)) break;
        const was = steps.get(r.stepId);
        // A finish attempt replays done steps as no-ops: they stay done.
        if (was !== 'done') steps.set(r.stepId, 'in-doubt');
        startedAt.set(r.stepId, r.ts);
        last = r.stepId;
        break;
      }
      case 'step': {
        if (r.stepId.startsWith('reset:')) {
          const id = r.stepId.slice('reset:'.length);
          if (known(id) && r.status === 'done') steps.set(id, 'undone');
          break;
        }
        if (!known(r.stepId)) break;
        if (r.status === 'done' || r.status === 'unhealthy') steps.set(r.stepId, 'done');
        else if (r.status === 'failed') steps.set(r.stepId, 'failed');
        else if (r.status === 'skipped' && steps.get(r.stepId) !== 'done') steps.set(r.stepId, 'pending');
        break;
      }
      case 'rollback':
        rollingBack = true;
        break;
      case 'undo':
        if (known(r.stepId) && r.ok) steps.set(r.stepId, 'undone');
        break;
      default:
        break;
    }
  }
  void plan;
  return { rollingBack, ...(last ? { last } : {}) };
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether the process that wrote an index entry is still running (same host and boot, pid alive). */
export function ownerAlive(e: { pid: number; host: string; bootId: string }): boolean {
  if (e.host !== os.hostname()) return true; // another host's run: never judged dead from here
  if (e.bootId && bootId() && e.bootId !== bootId()) return false;
  return pidAlive(e.pid);
}

/** Load one indexed run; undefined when it is finished or resolved (its index entry is then removed). */
export function loadRun(entry: JournalIndexEntry, env: NodeJS.ProcessEnv): UnfinishedRun | undefined {
  let records: JournalRecord[];
  try {
    records = readJournal(entry.journal);
  } catch {
    return undefined;
  }
  const begin = records[0];
  if (!begin || begin.j !== 'begin') return undefined;
  if (records.some((r) => r.j === 'end' || r.j === 'resolved')) {
    removeIndexEntry(env, entry.runId);
    return undefined;
  }
  const plan = begin.plan;
  const steps = new Map<string, StepState>(plan.steps.map((s) => [s.id, 'pending']));
  const startedAt = new Map<string, string>();
  let { rollingBack, last } = fold(plan, records, steps, startedAt);
  const attempts: Attempt[] = [];
  let lastAt = (records.at(-1) as { ts?: string }).ts ?? begin.startedAt;
  for (const r of records) {
    if (r.j !== 'attempt') continue;
    attempts.push({ runId: r.by, mode: r.mode, journal: r.journal });
    let sub: JournalRecord[] = [];
    try {
      sub = readJournal(r.journal);
    } catch {
      continue; // the attempt died before its journal existed
    }
    const f = fold(plan, sub, steps, startedAt);
    rollingBack = r.mode === 'rollback' || f.rollingBack;
    if (f.last) last = f.last;
    lastAt = (sub.at(-1) as { ts?: string } | undefined)?.ts ?? lastAt;
  }
  const facts = new Map<string, string>();
  for (const r of records) if (r.j === 'fact') facts.set(r.name, r.value);
  for (const a of attempts) {
    try {
      for (const r of readJournal(a.journal)) if (r.j === 'fact') facts.set(r.name, r.value);
    } catch {
      // the attempt died before its journal existed
    }
  }
  const inDoubt = plan.steps.filter((s) => steps.get(s.id) === 'in-doubt' || steps.get(s.id) === 'failed');
  const died = inDoubt.at(-1) ?? plan.steps.find((s) => s.id === last);
  return {
    runId: entry.runId,
    journal: entry.journal,
    entry,
    begin,
    plan,
    steps,
    startedAt,
    ...(died
      ? {
          diedIn: {
            stepId: died.id,
            title: died.title,
            at: startedAt.get(died.id) ?? begin.startedAt,
            state: steps.get(died.id) ?? 'pending',
          },
        }
      : {}),
    rollingBack,
    attempts,
    preIncident: begin.preIncident,
    lastAt,
    facts,
  };
}

export interface FindOptions {
  /** Only runs on any of these lock keys, or of this recipe name. */
  lockKeys?: readonly string[];
  recipeName?: string;
  runId?: string;
}

/**
 * Unfinished runs whose owner process is gone: restores killed (or whose machine died) before
 * they finished or rolled back. A recover attempt counts as part of the run it recovers.
 */
export function findUnfinishedRuns(env: NodeJS.ProcessEnv, opts: FindOptions = {}): UnfinishedRun[] {
  const entries = readIndex(env);
  const out: UnfinishedRun[] = [];
  // Attempts are folded into their original; an attempt whose original is gone is dropped.
  const attemptIds = new Set(entries.filter((e) => e.recovers).map((e) => e.runId));
  for (const entry of entries) {
    if (attemptIds.has(entry.runId)) {
      // An attempt still indexed: cleaned once it or its original is finished.
      if (!entries.some((e) => e.runId === entry.recovers) && !ownerAlive(entry)) removeIndexEntry(env, entry.runId);
      continue;
    }
    if (opts.runId && entry.runId !== opts.runId) continue;
    const matches =
      opts.runId !== undefined ||
      (opts.lockKeys === undefined && opts.recipeName === undefined) ||
      (opts.lockKeys ?? []).some((k) => entry.lockKeys.includes(k)) ||
      (opts.recipeName !== undefined && entry.recipe.name === opts.recipeName);
    if (!matches) continue;
    if (ownerAlive(entry)) continue;
    const attempts = entries.filter((e) => e.recovers === entry.runId);
    if (attempts.some((a) => ownerAlive(a))) continue; // a recover is running on it
    const run = loadRun(entry, env);
    if (run) out.push(run);
  }
  return out;
}

/** A move-only step whose moves left nothing at their destinations never ran (ifExists moves of absent data). */
function movedNothing(step: PlanStep): boolean {
  const moves = step.actions.filter((a): a is Extract<PlannedAction, { type: 'move' }> => a.type === 'move');
  return moves.length > 0 && moves.length === step.actions.length && moves.every((m) => !existsSync(m.to));
}

/** The state of a step, with in-doubt host moves settled by looking at the disk. */
export function settledState(run: UnfinishedRun, step: PlanStep): StepState {
  const s = run.steps.get(step.id) ?? 'pending';
  if ((s === 'in-doubt' || s === 'failed') && movedNothing(step)) return 'pending';
  return s;
}

/** Steps to undo for a rollback, in the order to undo them (reverse plan order). */
export function stepsToUndo(run: UnfinishedRun): PlanStep[] {
  return [...run.plan.steps].reverse().filter((s) => ['in-doubt', 'failed', 'done'].includes(settledState(run, s)));
}

/** Whether anything is left that changed the targets (else the run can be closed as is). */
export function anythingToUndo(run: UnfinishedRun): boolean {
  return stepsToUndo(run).some((s) => s.undo && s.undo.actions.length > 0);
}

/**
 * The plan a `finish` runs (through the engine, so its rollback, health checks and summary are the
 * engine's): every step of the original, in order, run sequentially, where
 * - a step that finished becomes a no-op that keeps its undo and its safety copy (a failed finish
 *   rolls back all the way to the pre-restore state; the summary names the pre-incident copy);
 * - for a data component with a step in doubt, its steps from its last finished safety copy on are
 *   first undone (`reset:<id>` steps, newest first: the pre-incident data is back in place) and
 *   then run again: a half-loaded database is dropped and loaded again, never kept;
 * - everything else runs as planned, health checks included.
 */
export function finishPlan(run: UnfinishedRun): Plan {
  const plan = run.plan;
  const state = new Map(plan.steps.map((s) => [s.id, settledState(run, s)]));
  const reset = new Set<string>();
  for (const kind of ['postgres', 'redis', 'prometheus'] as const) {
    const steps = plan.steps.filter((s) => s.component === kind);
    const lastDoubt = steps.map((s) => state.get(s.id)).lastIndexOf('in-doubt');
    const lastFailed = steps.map((s) => state.get(s.id)).lastIndexOf('failed');
    const upTo = Math.max(lastDoubt, lastFailed);
    if (upTo < 0) continue;
    // From the last finished safety copy on, inclusive: the steps that replace the data often have
    // no undo of their own (the copy's undo moves the restored data away), so the copy is undone
    // too, and the pre-incident data is back in place before the steps run again.
    let from = 0;
    for (let i = upTo; i >= 0; i--) {
      const s = steps[i]!;
      if (s.safetyCopy && s.safetyCopy.kind !== 'none' && state.get(s.id) === 'done') {
        from = i;
        break;
      }
    }
    for (const s of steps.slice(from, upTo + 1)) if (state.get(s.id) !== 'pending' && state.get(s.id) !== 'undone') reset.add(s.id);
  }
  const out: PlanStep[] = [];
  const resetInserted = new Set<string>();
  for (const step of plan.steps) {
    const s = state.get(step.id) ?? 'pending';
    if (reset.has(step.id) && step.component && !resetInserted.has(step.component)) {
      resetInserted.add(step.component);
      const toReset = [...plan.steps].reverse().filter((x) => reset.has(x.id) && x.component === step.component);
      for (const x of toReset) {
        out.push({
          id: `reset:${x.id}`,
          title: `Undo the unfinished step "${x.title}" before running it again`,
          doneTitle: `Unfinished step "${x.title}" undone`,
          phase: x.phase,
          lane: x.lane,
          component: x.component!,
          destructive: false,
          actions: x.undo && x.undo.actions.length > 0 ? x.undo.actions : [{ type: 'note', purpose: 'nothing to undo' }],
          dependsOn: [],
        });
      }
    }
    if (s === 'done' && !reset.has(step.id)) {
      out.push({
        ...step,
        actions: [{ type: 'note', purpose: `done by run ${run.runId} before it was interrupted` }],
      });
      continue;
    }
    out.push(step);
  }
  const ids = new Set(out.map((s) => s.id));
  return {
    ...plan,
    steps: out.map((s) => ({ ...s, dependsOn: s.dependsOn.filter((d) => ids.has(d)) })),
    options: { ...plan.options, parallel: false },
  };
}

/** Record on the original run that a recover attempt started (before it touches anything). */
export function attemptRecord(by: string, mode: RecoverMode, journal: string): AttemptRecord {
  return { j: 'attempt', ts: new Date().toISOString(), by, mode, journal };
}

export { indexFile };
