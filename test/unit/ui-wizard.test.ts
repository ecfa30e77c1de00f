import { describe, expect, it } from 'vitest';
import { ExitCode } from '../../source/exit-codes.js';
import {
  catalogRejections,
  confirmWordFor,
  estimateFromHistory,
  exitCodeOf,
  filterSets,
  initialState,
  isTerminal,
  planRequestOf,
  wizardReducer,
  type Job,
  type WizardEvent,
  type WizardState,
} from '../../source/ui/wizard.js';
import { NOW, planFixture, recipeFixture, reportFixture, SETS, setFixture, summaryFixture } from '../support/ui-fixtures.js';

const recipe = recipeFixture();

function jobOf(state: WizardState): Job {
  const s = state.screen === 'help' ? state.previous : state;
  if (!('job' in s) || !s.job) throw new Error(`state ${s.screen} has no job`);
  return s.job;
}

function reduceAll(state: WizardState, events: WizardEvent[]): WizardState {
  return events.reduce(wizardReducer, state);
}

function toBackup(): WizardState {
  let s = initialState();
  s = wizardReducer(s, { type: 'recipes-loaded', job: jobOf(s), recipes: [{ name: 'story-portal', file: recipe.file, loaded: recipe }] });
  s = wizardReducer(s, { type: 'select-recipe', name: 'story-portal' });
  s = wizardReducer(s, { type: 'recipe-action', action: 'restore' });
  expect(s.screen).toBe('backup');
  return wizardReducer(s, { type: 'sets-loaded', job: jobOf(s), sets: SETS, warnings: [] });
}

function toPlan(setIndex = 0): WizardState {
  let s = toBackup();
  if (setIndex > 0) s = wizardReducer(s, { type: 'move', delta: setIndex });
  s = wizardReducer(s, { type: 'choose-set' });
  expect(s.screen).toBe('verify');
  const set = SETS[setIndex]!;
  s = wizardReducer(s, { type: 'verify-done', job: jobOf(s), report: reportFixture(set, true) });
  s = wizardReducer(s, { type: 'probe-done', job: jobOf(s), facts: {} });
  s = wizardReducer(s, { type: 'plan-built', job: jobOf(s), plan: planFixture({ set, recipe, mode: 'restore' }) });
  expect(s.screen).toBe('plan');
  return s;
}

function toConfirm(): WizardState {
  const s = wizardReducer(toPlan(), { type: 'proceed' });
  expect(s.screen).toBe('confirm');
  return s;
}

describe('guided flow state machine', () => {
  it('walks recipe → backup → verify → plan → confirm → run → summary and ends with the engine exit code', () => {
    let s = toConfirm();
    s = wizardReducer(s, { type: 'confirm-submit', text: 'agentic_platform', at: NOW.toISOString() });
    expect(s.screen).toBe('run');
    if (s.screen !== 'run') throw new Error('unreachable');
    expect(s.confirmedAt).toBe(NOW.toISOString());
    expect(exitCodeOf(s)).toBeUndefined();
    s = wizardReducer(s, {
      type: 'run-done',
      job: jobOf(s),
      result: { summary: summaryFixture({ outcome: 'unhealthy', exitCode: ExitCode.unhealthy }), evidenceDir: '/runs/x' },
    });
    expect(s.screen).toBe('summary');
    expect(isTerminal(s)).toBe(true);
    expect(exitCodeOf(s)).toBe(ExitCode.unhealthy);
  });

  it('the confirm word is recipe.confirmWord, else the database name, else the recipe name', () => {
    expect(confirmWordFor(recipeFixture({ confirmWord: 'yes-restore-prod' }).recipe)).toBe('yes-restore-prod');
    expect(confirmWordFor(recipe.recipe)).toBe('agentic_platform');
    expect(confirmWordFor(recipeFixture({ components: { redis: { service: { stop: ['a'], start: ['b'] } } } }).recipe)).toBe(
      'story-portal',
    );
  });

  it('a wrong word keeps the confirm screen, counts the attempt and never starts the run', () => {
    let s = toConfirm();
    for (const text of ['', 'agentic', 'AGENTIC_PLATFORM', 'story-portal', 'yes']) {
      s = wizardReducer(s, { type: 'confirm-submit', text, at: NOW.toISOString() });
      expect(s.screen).toBe('confirm');
    }
    if (s.screen !== 'confirm') throw new Error('unreachable');
    expect(s.attempts).toBe(5);
    expect(s.mismatch).toBe('yes');
  });

  it('run is reachable only through confirm with the matching word (every event kind from every reachable state)', () => {
    // Explore the state space with every kind of event; results are answered for the state's own job.
    // States are compared by structure; unbounded counters (typed filter, attempts) are capped below.
    const seen = new Set<string>();
    const heavy: Record<string, (v: never) => unknown> = {
      recipe: () => 'R',
      recipes: (v: unknown[]) => v.length,
      pinned: () => 'P',
      sets: (v: Array<{ id: string }>) => v.map((x) => x.id),
      set: (v: { id: string }) => v.id,
      plan: (v: { backup: { id: string } }) => v.backup.id,
      report: (v: { ok: boolean }) => v.ok,
      result: () => 'result',
    };
    const keyOf = (s: WizardState): string =>
      JSON.stringify(s, (k: string, v: unknown) => (k in heavy && v !== undefined ? heavy[k]!(v as never) : v));
    const queue: WizardState[] = [initialState()];
    let transitionsToRun = 0;
    let answered = 0;
    let explored = 0;
    const eventsFor = (s: WizardState): WizardEvent[] => {
      const inner = s.screen === 'help' ? s.previous : s;
      const job = 'job' in inner && inner.job ? inner.job : ({ kind: 'run' } as Job);
      const set = SETS[1]!;
      return [
        { type: 'recipes-loaded', job, recipes: [{ name: 'story-portal', file: recipe.file, loaded: recipe }] },
        { type: 'select-recipe', name: 'story-portal' },
        { type: 'recipe-action', action: 'restore' },
        { type: 'sets-loaded', job, sets: SETS, warnings: [] },
        { type: 'move', delta: 1 },
        { type: 'filter-input', text: '17' },
        { type: 'choose-set' },
        { type: 'override-submit', reason: 'needed' },
        { type: 'verify-done', job, report: reportFixture(set, false) },
        { type: 'verify-done', job, report: reportFixture(set, true) },
        { type: 'probe-done', job, facts: {} },
        { type: 'probe-done', job, facts: { postgres: { missingRoles: ['app'] } } },
        { type: 'roles-chosen', choice: 'create' },
        { type: 'plan-built', job, plan: planFixture({ set, recipe, mode: 'restore' }) },
        { type: 'proceed' },
        { type: 'toggle-unhealthy' },
        { type: 'confirm-submit', text: 'wrong', at: NOW.toISOString() },
        { type: 'confirm-submit', text: 'agentic_platform', at: NOW.toISOString() },
        { type: 'unhealthy-asked', job, question: { checks: ['api'], state: ['Redis: restored'] } },
        { type: 'unhealthy-answer', decision: 'rollback' },
        { type: 'unhealthy-answer', decision: 'keep' },
        { type: 'run-done', job, result: { summary: summaryFixture() } },
        { type: 'job-failed', job, error: { message: 'x', exitCode: 9 } },
        { type: 'interrupt' },
        { type: 'back' },
        { type: 'help' },
        { type: 'quit' },
      ];
    };
    while (queue.length > 0 && explored < 50_000) {
      const s = queue.shift()!;
      const key = keyOf(s);
      if (seen.has(key)) continue;
      seen.add(key);
      explored++;
      for (const e of eventsFor(s)) {
        if (e.type === 'filter-input' && s.screen === 'backup' && s.filter !== '') continue;
        if (e.type === 'confirm-submit' && e.text === 'wrong' && s.screen === 'confirm' && s.attempts > 0) continue;
        const next = wizardReducer(s, e);
        // An answer is only ever taken for an open question the plan left to "ask", before any interrupt, once.
        if (next.screen === 'run' && next.answer !== undefined && (s.screen !== 'run' || s.answer === undefined)) {
          expect(e.type).toBe('unhealthy-answer');
          expect(s).toMatchObject({ screen: 'run', onUnhealthy: 'ask', interrupts: 0, question: { checks: ['api'] } });
          answered++;
        }
        if (s.screen === 'run' && s.answer !== undefined && next.screen === 'run') expect(next.answer).toBe(s.answer);
        if (next.screen === 'run' && s.screen !== 'run') {
          transitionsToRun++;
          expect(s.screen).toBe('confirm');
          expect(e).toMatchObject({ type: 'confirm-submit', text: 'agentic_platform' });
        }
        if (!isTerminal(next) && !seen.has(keyOf(next))) queue.push(next);
      }
    }
    expect(queue).toEqual([]); // the whole (capped) space was explored
    expect(transitionsToRun).toBeGreaterThan(0);
    expect(answered).toBeGreaterThan(0);
  });

  it('Esc goes back one screen at a time, also at confirm (back to the plan as it was); q there cancels with nothing touched', () => {
    const plan = toPlan();
    const backFromPlan = wizardReducer(plan, { type: 'back' });
    expect(backFromPlan.screen).toBe('backup');
    const backFromBackup = wizardReducer(backFromPlan, { type: 'back' });
    expect(backFromBackup.screen).toBe('recipe');
    const closeActions = wizardReducer(backFromBackup, { type: 'back' });
    expect(closeActions).toMatchObject({ screen: 'recipe', selected: undefined });
    const leave = wizardReducer(closeActions, { type: 'back' });
    expect(leave).toMatchObject({ screen: 'cancelled', exitCode: 0, message: 'Cancelled, nothing was touched.' });

    const confirm = toConfirm();
    const backToPlan = wizardReducer(confirm, { type: 'back' });
    expect(backToPlan.screen).toBe('plan');
    expect(confirm.screen === 'confirm' && backToPlan).toBe(confirm.screen === 'confirm' ? confirm.back : undefined);
    const cancelled = wizardReducer(backToPlan, { type: 'quit' });
    expect(cancelled).toMatchObject({ screen: 'cancelled', from: 'plan', exitCode: 0 });
    expect(exitCodeOf(cancelled)).toBe(ExitCode.cancelled);
  });

  it('Esc while verifying goes back to the list and the late result is ignored', () => {
    const backup = toBackup();
    const verifying = wizardReducer(backup, { type: 'choose-set' });
    const job = jobOf(verifying);
    const back = wizardReducer(verifying, { type: 'back' });
    expect(back.screen).toBe('backup');
    const late = wizardReducer(back, { type: 'verify-done', job, report: reportFixture(SETS[0]!, true) });
    expect(late).toBe(back);
  });

  it('a set that failed its checks is marked and can only be planned with a recorded reason', () => {
    let s = toBackup();
    s = wizardReducer(s, { type: 'choose-set' });
    s = wizardReducer(s, { type: 'verify-done', job: jobOf(s), report: reportFixture(SETS[0]!, false) });
    expect(s).toMatchObject({ screen: 'verify', phase: 'rejected' });
    s = wizardReducer(s, { type: 'proceed' });
    expect(s.screen).toBe('backup');
    if (s.screen !== 'backup') throw new Error('unreachable');
    expect(s.rejected[SETS[0]!.id]).toEqual(['postgres.sql.gz ends before the end of the gzip stream']);

    // Choosing it again opens the override prompt instead of verifying.
    s = wizardReducer(s, { type: 'choose-set' });
    expect(s).toMatchObject({ screen: 'backup', override: { setId: SETS[0]!.id } });
    // Movement and choosing do nothing while the prompt is open; an empty reason is refused.
    expect(wizardReducer(s, { type: 'choose-set' })).toBe(s);
    s = wizardReducer(s, { type: 'override-submit', reason: '   ' });
    expect(s).toMatchObject({ screen: 'backup', override: { setId: SETS[0]!.id } });
    if (s.screen !== 'backup') throw new Error('unreachable');
    expect(s.notice).toMatch(/reason is required/);

    s = wizardReducer(s, { type: 'override-submit', reason: "only set with yesterday's orders" });
    expect(s).toMatchObject({ screen: 'verify', phase: 'probing', overrideRejected: "only set with yesterday's orders" });
    s = wizardReducer(s, { type: 'probe-done', job: jobOf(s), facts: {} });
    if (s.screen !== 'verify') throw new Error('unreachable');
    expect(planRequestOf(s)).toEqual({ missingRoles: 'fail', overrideRejected: "only set with yesterday's orders" });
  });

  it('Esc on the override prompt returns to the list without choosing', () => {
    const sets = [
      setFixture('bad', '2026-01-18T01:00:00Z', {
        components: [{ kind: 'postgres', format: 'pg-custom', path: '/b/x.dump', size: 0, checksum: 'absent' }],
      }),
    ];
    let s = initialState({ pinned: recipe });
    s = wizardReducer(s, { type: 'recipes-loaded', job: jobOf(s), recipes: [] });
    s = wizardReducer(s, { type: 'recipe-action', action: 'restore' });
    s = wizardReducer(s, { type: 'sets-loaded', job: jobOf(s), sets, warnings: [] });
    if (s.screen !== 'backup') throw new Error('unreachable');
    expect(s.rejected['bad']).toEqual(['postgres: the file is empty (0 bytes)']);
    s = wizardReducer(s, { type: 'choose-set' });
    s = wizardReducer(s, { type: 'back' });
    expect(s).toMatchObject({ screen: 'backup', override: undefined });
  });

  it('the catalog rules out sets with a checksum mismatch or an empty file', () => {
    const set = setFixture('x', '2026-01-18T01:00:00Z');
    expect(catalogRejections(set)).toEqual([]);
    set.components[1]!.checksum = 'mismatch';
    expect(catalogRejections(set)).toEqual(['redis: checksum does not match the recorded sha256']);
  });

  it('type to filter narrows the list; Esc clears the filter before leaving the screen', () => {
    let s = toBackup();
    s = reduceAll(s, [{ type: 'filter-input', text: '01-17' }]);
    if (s.screen !== 'backup') throw new Error('unreachable');
    expect(filterSets(s.sets ?? [], s.filter).map((x) => x.id)).toEqual(['2026-01-17_01-45-02']);
    s = wizardReducer(s, { type: 'choose-set' });
    expect(s).toMatchObject({ screen: 'verify', set: { id: '2026-01-17_01-45-02' } });
    s = wizardReducer(s, { type: 'back' });
    s = wizardReducer(s, { type: 'back' });
    expect(s).toMatchObject({ screen: 'backup', filter: '', filtering: false });
    expect(wizardReducer(s, { type: 'back' }).screen).toBe('recipe');
  });

  it('missing roles with missingRoles: ask go through the roles choice; "stop" cancels', () => {
    let s = toBackup();
    s = wizardReducer(s, { type: 'choose-set' });
    s = wizardReducer(s, { type: 'verify-done', job: jobOf(s), report: reportFixture(SETS[0]!, true) });
    s = wizardReducer(s, { type: 'probe-done', job: jobOf(s), facts: { postgres: { missingRoles: ['app_rw'] } } });
    expect(s).toMatchObject({ screen: 'roles', missing: ['app_rw'] });
    const stop = wizardReducer(s, { type: 'roles-chosen', choice: 'fail' });
    expect(stop).toMatchObject({ screen: 'cancelled', exitCode: 0 });
    const create = wizardReducer(s, { type: 'roles-chosen', choice: 'create' });
    if (create.screen !== 'verify') throw new Error('unreachable');
    expect(planRequestOf(create)).toEqual({ missingRoles: 'create' });
  });

  it('Ctrl-C before the run cancels (exit 0, never 130: nothing ran); during the run it aborts first and abandons on the second press', () => {
    for (const before of [toPlan(), toConfirm(), toBackup()]) {
      const c = wizardReducer(before, { type: 'interrupt' });
      expect(c).toMatchObject({ screen: 'cancelled', message: 'Cancelled, nothing was touched.' });
      expect(exitCodeOf(c)).toBe(ExitCode.cancelled);
      expect(exitCodeOf(c)).not.toBe(ExitCode.interrupted);
    }
    let s = wizardReducer(toConfirm(), { type: 'confirm-submit', text: 'agentic_platform', at: NOW.toISOString() });
    s = wizardReducer(s, { type: 'interrupt' });
    expect(s).toMatchObject({ screen: 'run', interrupts: 1 });
    // The engine's answer after an abort is the summary (rolled back, exit 130).
    const finished = wizardReducer(s, {
      type: 'run-done',
      job: jobOf(s),
      result: { summary: summaryFixture({ outcome: 'interrupted', exitCode: 130 }) },
    });
    expect(exitCodeOf(finished)).toBe(130);
    s = wizardReducer(s, { type: 'interrupt' });
    expect(s).toMatchObject({ screen: 'run', interrupts: 2 });
    const abandoned = wizardReducer(s, { type: 'interrupt' });
    expect(abandoned.screen).toBe('abandoned');
    expect(exitCodeOf(abandoned)).toBe(ExitCode.rollbackIncomplete);
  });

  it('q quits before the run with nothing touched, but is ignored during the run and while typing', () => {
    expect(wizardReducer(toPlan(), { type: 'quit' })).toMatchObject({ screen: 'cancelled', exitCode: 0 });
    const confirm = toConfirm();
    expect(wizardReducer(confirm, { type: 'quit' })).toBe(confirm);
    const run = wizardReducer(confirm, { type: 'confirm-submit', text: 'agentic_platform', at: NOW.toISOString() });
    expect(wizardReducer(run, { type: 'quit' })).toBe(run);
    expect(wizardReducer(run, { type: 'back' })).toBe(run);
  });

  it('help sits on top of a screen, lets job results through, and returns to it', () => {
    let s = initialState();
    const job = jobOf(s);
    s = wizardReducer(s, { type: 'help' });
    expect(s.screen).toBe('help');
    s = wizardReducer(s, { type: 'recipes-loaded', job, recipes: [] });
    s = wizardReducer(s, { type: 'back' });
    expect(s).toMatchObject({ screen: 'recipe', recipes: [] });
  });

  it('a failing probe or plan shows the error with a way back; a crashed run is an error with unknown state', () => {
    let s = toBackup();
    s = wizardReducer(s, { type: 'choose-set' });
    s = wizardReducer(s, { type: 'verify-done', job: jobOf(s), report: reportFixture(SETS[0]!, true) });
    s = wizardReducer(s, {
      type: 'job-failed',
      job: jobOf(s),
      error: { message: 'PostgreSQL unreachable', exitCode: ExitCode.preflightFailed },
    });
    expect(s).toMatchObject({ screen: 'error', touched: false });
    expect(isTerminal(s)).toBe(false);
    expect(wizardReducer(s, { type: 'back' }).screen).toBe('backup');
    const quit = wizardReducer(s, { type: 'quit' });
    expect(exitCodeOf(quit)).toBe(ExitCode.preflightFailed);

    let r = wizardReducer(toConfirm(), { type: 'confirm-submit', text: 'agentic_platform', at: NOW.toISOString() });
    r = wizardReducer(r, { type: 'job-failed', job: jobOf(r), error: { message: 'boom', exitCode: 70 } });
    expect(r).toMatchObject({ screen: 'error', touched: true });
    expect(exitCodeOf(r)).toBe(70);
  });

  it('estimates the duration from earlier successful runs of the same kind (median of RTO)', () => {
    const e = (kind: 'restore' | 'drill', outcome: 'restored' | 'rolled-back', rtoMs: number) => ({
      runId: `${kind}${rtoMs}`,
      kind,
      startedAt: NOW.toISOString(),
      outcome,
      rtoMs,
    });
    expect(estimateFromHistory([], 'restore')).toBeUndefined();
    expect(
      estimateFromHistory(
        [e('restore', 'restored', 100), e('restore', 'restored', 300), e('restore', 'rolled-back', 5), e('drill', 'restored', 1)],
        'restore',
      ),
    ).toEqual({ ms: 200, runs: 2 });
  });

  it('failed health checks: ask by default; the plan screen can decide in advance (u: ask → roll back → keep → ask)', () => {
    const plan = toPlan();
    if (plan.screen !== 'plan') throw new Error('unreachable');
    expect(plan).toMatchObject({ onUnhealthy: 'ask', plan: { options: { rollbackOnUnhealthy: false } } });
    // The plan object is never copied (the deps know the plans they built by identity): the choice is data.
    const toggled = wizardReducer(plan, { type: 'toggle-unhealthy' });
    expect(toggled).toMatchObject({ onUnhealthy: 'rollback' });
    expect(toggled.screen === 'plan' && toggled.plan).toBe(plan.plan);
    const keep = wizardReducer(toggled, { type: 'toggle-unhealthy' });
    expect(keep).toMatchObject({ onUnhealthy: 'keep' });
    expect(keep.screen === 'plan' && keep.plan).toBe(plan.plan);
    const again = wizardReducer(keep, { type: 'toggle-unhealthy' });
    expect(again).toMatchObject({ onUnhealthy: 'ask' });
    expect(again.screen === 'plan' && again.plan).toBe(plan.plan);
    const run = reduceAll(toggled, [{ type: 'proceed' }, { type: 'confirm-submit', text: 'agentic_platform', at: NOW.toISOString() }]);
    expect(run).toMatchObject({ screen: 'run', onUnhealthy: 'rollback' });
    expect(run.screen === 'run' && run.plan).toBe(plan.plan);
    // Decided in advance: a question (which the App would not ask) is ignored.
    expect(wizardReducer(run, { type: 'unhealthy-asked', job: jobOf(run), question: { checks: ['api'], state: [] } })).toBe(run);
    const kept = reduceAll(keep, [{ type: 'proceed' }, { type: 'confirm-submit', text: 'agentic_platform', at: NOW.toISOString() }]);
    expect(kept).toMatchObject({ screen: 'run', onUnhealthy: 'keep' });
    expect(wizardReducer(kept, { type: 'unhealthy-asked', job: jobOf(kept), question: { checks: ['api'], state: [] } })).toBe(kept);
  });

  it('failed health checks asked during the run: the question opens once, takes one answer, and the run-done still decides the end', () => {
    const run = wizardReducer(toConfirm(), { type: 'confirm-submit', text: 'agentic_platform', at: NOW.toISOString() });
    expect(run).toMatchObject({ screen: 'run', onUnhealthy: 'ask' });
    // No question yet: an answer means nothing.
    expect(wizardReducer(run, { type: 'unhealthy-answer', decision: 'rollback' })).toBe(run);
    // A question from a stale job is ignored.
    expect(wizardReducer(run, { type: 'unhealthy-asked', job: { kind: 'run' }, question: { checks: ['api'], state: [] } })).toBe(run);
    const question = { checks: ['api'], state: ['Redis: restored from b1'] };
    const asked = wizardReducer(run, { type: 'unhealthy-asked', job: jobOf(run), question });
    expect(asked).toMatchObject({ screen: 'run', question });
    expect(asked.screen === 'run' ? asked.answer : 'n/a').toBeUndefined();
    expect(isTerminal(asked)).toBe(false);
    // q and ? stay ignored while asked (only k / r / Ctrl-C mean something).
    expect(wizardReducer(asked, { type: 'quit' })).toBe(asked);
    expect(wizardReducer(asked, { type: 'help' })).toBe(asked);
    const rolled = wizardReducer(asked, { type: 'unhealthy-answer', decision: 'rollback' });
    expect(rolled).toMatchObject({ screen: 'run', question, answer: 'rollback' });
    expect(wizardReducer(rolled, { type: 'unhealthy-answer', decision: 'keep' })).toBe(rolled);
    expect(wizardReducer(rolled, { type: 'unhealthy-asked', job: jobOf(rolled), question })).toBe(rolled);
    const done = wizardReducer(rolled, {
      type: 'run-done',
      job: jobOf(rolled),
      result: { summary: summaryFixture({ outcome: 'rolled-back', exitCode: ExitCode.failedRolledBack }) },
    });
    expect(exitCodeOf(done)).toBe(ExitCode.failedRolledBack);
    const kept = wizardReducer(asked, { type: 'unhealthy-answer', decision: 'keep' });
    expect(kept).toMatchObject({ answer: 'keep' });
  });

  it('Ctrl-C while the question is open closes it (the engine rolls back); a later answer is ignored', () => {
    const run = wizardReducer(toConfirm(), { type: 'confirm-submit', text: 'agentic_platform', at: NOW.toISOString() });
    const asked = wizardReducer(run, { type: 'unhealthy-asked', job: jobOf(run), question: { checks: ['api'], state: [] } });
    const interrupted = wizardReducer(asked, { type: 'interrupt' });
    expect(interrupted).toMatchObject({ screen: 'run', interrupts: 1 });
    if (interrupted.screen !== 'run') throw new Error('unreachable');
    expect(interrupted.question).toBeUndefined();
    expect(wizardReducer(interrupted, { type: 'unhealthy-answer', decision: 'keep' })).toBe(interrupted);
    expect(wizardReducer(interrupted, { type: 'unhealthy-asked', job: jobOf(interrupted), question: { checks: ['api'], state: [] } })).toBe(
      interrupted,
    );
  });

  it('a drill is never asked and has nothing to decide on the plan screen', () => {
    let s = initialState({ pinned: recipe });
    s = wizardReducer(s, { type: 'recipes-loaded', job: jobOf(s), recipes: [] });
    s = wizardReducer(s, { type: 'recipe-action', action: 'drill' });
    s = wizardReducer(s, { type: 'sets-loaded', job: jobOf(s), sets: SETS, warnings: [] });
    s = wizardReducer(s, { type: 'choose-set' });
    s = wizardReducer(s, { type: 'verify-done', job: jobOf(s), report: reportFixture(SETS[0]!, true) });
    s = wizardReducer(s, { type: 'probe-done', job: jobOf(s), facts: {} });
    s = wizardReducer(s, { type: 'plan-built', job: jobOf(s), plan: planFixture({ set: SETS[0]!, recipe, mode: 'drill' }) });
    expect(s).toMatchObject({ screen: 'plan', onUnhealthy: 'keep' });
    expect(wizardReducer(s, { type: 'toggle-unhealthy' })).toBe(s);
  });

  it('a drill chosen on the recipe screen plans a drill', () => {
    let s = initialState({ pinned: recipe });
    s = wizardReducer(s, { type: 'recipes-loaded', job: jobOf(s), recipes: [] });
    s = wizardReducer(s, { type: 'recipe-action', action: 'drill' });
    expect(s).toMatchObject({ screen: 'backup', chosen: { mode: 'drill' } });
  });
});
