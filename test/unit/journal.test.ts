import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EventBus } from '../../source/engine/events.js';
import { attachJournal, readIndex, readJournal, JOURNAL_FILE } from '../../source/journal/journal.js';
import { findUnfinishedRuns, finishPlan, stepsToUndo } from '../../source/journal/state.js';
import type { Plan, PlanStep } from '../../source/plan/types.js';

/** The journal's pure logic: durable records from the bus, a parseable prefix after a torn write, the fold, the finish plan. */

const note = (purpose: string) => ({ type: 'note' as const, purpose });

function step(id: string, extra: Partial<PlanStep> = {}): PlanStep {
  return {
    id,
    title: `Do ${id}`,
    doneTitle: `${id} done`,
    phase: 'postgres',
    lane: 'main',
    component: 'postgres',
    destructive: false,
    actions: [note(id)],
    dependsOn: [],
    ...extra,
  };
}

const plan = {
  version: 1,
  mode: 'restore',
  createdAt: '2026-12-01T00:00:00Z',
  stamp: 'S',
  recipe: { name: 'j', file: '/r/j.yaml', digest: 'd' },
  backup: { id: 'set', time: '2026-12-01T00:00:00Z', layout: 'story-portal', location: '/b', components: [] },
  targets: { postgres: 'PostgreSQL app' },
  steps: [
    step('preflight', { phase: 'preflight', component: undefined as never }),
    step('postgres:terminate', { undo: { title: 'Allow', actions: [note('allow')] } }),
    step('postgres:safety-copy', {
      destructive: true,
      destroys: 'db',
      safetyCopy: { component: 'postgres', kind: 'rename', location: 'app__pre_restore_S', description: 'the database as it was' },
      undo: { title: 'Rename back', actions: [note('rename back')] },
    }),
    step('postgres:create', { undo: { title: 'Drop new', actions: [note('drop')] } }),
    step('postgres:restore'),
    step('postgres:analyze'),
    step('health', { phase: 'health', component: undefined as never }),
  ],
  options: { yes: true, rollbackOnUnhealthy: false, dropSafetyCopies: false, missingRoles: 'fail', parallel: true, jobs: 1 },
  facts: {},
  warnings: [],
  objectives: {},
} as unknown as Plan;

let dir: string;
let env: NodeJS.ProcessEnv;

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'ra-journal-unit-'));
  env = { RESTORE_ASSISTANT_STATE_DIR: path.join(dir, 'state') };
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** A run that "died" after `upTo` steps finished and the next one started (its intent written). */
function deadRun(upTo: number): string {
  const bus = new EventBus();
  const runDir = path.join(dir, 'run');
  // The run dir is the evidence writer's (made before the journal is attached).
  mkdirSync(runDir, { recursive: true });
  attachJournal(bus, { runDir, lockKeys: ['postgres:x'], env });
  bus.emit({
    type: 'run-started',
    runId: 'R1',
    kind: 'restore',
    operator: 'op',
    host: os.hostname(),
    toolVersion: '0',
    recipe: plan.recipe,
    backup: { id: 'set', time: plan.backup.time, location: '/b' },
    plan,
  });
  for (const [i, s] of plan.steps.entries()) {
    bus.emit({ type: 'step-started', stepId: s.id, title: s.title });
    if (i === upTo) break;
    bus.emit({ type: 'step-finished', stepId: s.id, title: s.doneTitle, durationMs: 1 });
  }
  return path.join(runDir, JOURNAL_FILE);
}

describe('restore journal', () => {
  it('records the begin (plan, pre-incident copy), every intent with its undo, and outcomes; indexes the run in the state dir', () => {
    const file = deadRun(4);
    const records = readJournal(file);
    expect(records[0]).toMatchObject({
      j: 'begin',
      runId: 'R1',
      lockKeys: ['postgres:x'],
      preIncident: [{ stepId: 'postgres:safety-copy', location: 'app__pre_restore_S', run: 'R1' }],
    });
    expect(records.find((r) => r.j === 'intent' && r.stepId === 'postgres:create')).toMatchObject({
      undo: { actions: [{ purpose: 'drop' }] },
    });
    expect(records.at(-1)).toMatchObject({ j: 'intent', stepId: 'postgres:restore' });
    expect(readIndex(env).map((e) => e.runId)).toEqual(['R1']);
  });

  it('a torn last line (a kill between write and newline) leaves a parseable prefix', () => {
    const file = deadRun(4);
    const before = readJournal(file).length;
    appendFileSync(file, '{"j":"step","stepId":"postgres:rest');
    expect(readJournal(file)).toHaveLength(before);
  });

  it('an unfinished run whose owner is gone is found; the step it died in is in doubt; rollback undoes newest first', () => {
    deadRun(4);
    // This process wrote it and is alive: not unfinished yet. Pretend its owner is gone.
    const idx = path.join(dir, 'state', 'journal', 'R1.json');
    const entry = JSON.parse(readFileSync(idx, 'utf8')) as Record<string, unknown>;
    writeFileSync(idx, JSON.stringify({ ...entry, pid: 2 ** 22 + 12345 }));
    const [u] = findUnfinishedRuns(env, { lockKeys: ['postgres:x'] });
    expect(u?.diedIn).toMatchObject({ stepId: 'postgres:restore', state: 'in-doubt' });
    expect(stepsToUndo(u!).map((s) => s.id)).toEqual([
      'postgres:restore',
      'postgres:create',
      'postgres:safety-copy',
      'postgres:terminate',
      'preflight',
    ]);
    // Finish: the component is reset from its safety copy on (half-loaded database dropped, copy renamed back), then run again.
    const f = finishPlan(u!);
    expect(f.steps.map((s) => s.id)).toEqual([
      'preflight',
      'postgres:terminate',
      'reset:postgres:restore',
      'reset:postgres:create',
      'reset:postgres:safety-copy',
      'postgres:safety-copy',
      'postgres:create',
      'postgres:restore',
      'postgres:analyze',
      'health',
    ]);
    // Finished steps are no-ops that keep their undo (a failed finish rolls back all the way).
    expect(f.steps.find((s) => s.id === 'postgres:terminate')).toMatchObject({ actions: [{ type: 'note' }], undo: { title: 'Allow' } });
    expect(f.steps.find((s) => s.id === 'postgres:safety-copy')?.safetyCopy?.location).toBe('app__pre_restore_S');
    expect(f.options.parallel).toBe(false);
    // Other keys, other recipe: not found.
    expect(findUnfinishedRuns(env, { lockKeys: ['redis:y'], recipeName: 'other' })).toEqual([]);
  });
});
