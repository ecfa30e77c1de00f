import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EventBus, type EngineEvent } from '../../source/engine/events.js';
import { acquireLocks, lockFileName } from '../../source/engine/lock.js';
import { runPlan, type RunPlanOptions } from '../../source/engine/run.js';
import { validatePlan } from '../../source/plan/validate.js';
import type { CheckRunner } from '../../source/engine/actions.js';
import { createRedactor } from '../../source/exec/redact.js';
import type { Plan, PlanStep } from '../../source/plan/types.js';
import type { PlannedAction } from '../../source/actions/types.js';

let dir: string;
let lockDir: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'engine-test-'));
  lockDir = path.join(dir, 'locks');
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function step(id: string, actions: PlannedAction[], extra: Partial<PlanStep> = {}): PlanStep {
  return {
    id,
    title: `Run ${id}`,
    doneTitle: `${id} done`,
    phase: 'postgres',
    lane: 'main',
    destructive: false,
    actions,
    dependsOn: [],
    ...extra,
  };
}

function plan(steps: PlanStep[], options: Partial<Plan['options']> = {}): Plan {
  return {
    version: 1,
    mode: 'restore',
    createdAt: new Date().toISOString(),
    stamp: '20260101T000000',
    recipe: { name: 'unit', file: '<inline>', digest: 'x' },
    backup: { id: 'b1', time: '2026-01-01T00:00:00.000Z', layout: 'flat', location: dir, components: [] },
    targets: {},
    steps,
    lockKeys: ['recipe:unit'],
    options: { yes: true, rollbackOnUnhealthy: false, dropSafetyCopies: false, missingRoles: 'fail', parallel: true, jobs: 1, ...options },
    facts: {},
    warnings: [],
    objectives: {},
  };
}

const node = (code: string): PlannedAction => ({ type: 'exec', argv: [process.execPath, '-e', code], purpose: 'node', runsIn: 'host' });
const move = (from: string, to: string): PlannedAction => ({ type: 'move', from, to, purpose: `move ${from}` });
/** A move that records what it moved (undo and --drop-safety-copies by identity). */
const recordedMove = (from: string, to: string, fact: string): PlannedAction => ({
  type: 'move',
  from,
  to,
  purpose: `move ${from}`,
  recordAs: fact,
});

async function go(
  p: Plan,
  extra: Partial<RunPlanOptions> = {},
): Promise<{ summary: Awaited<ReturnType<typeof runPlan>>; events: EngineEvent[]; states: Array<{ title: string; state: string }> }> {
  const bus = new EventBus();
  let states: Array<{ title: string; state: string }> = [];
  const summary = await runPlan(p, {
    bus,
    redact: createRedactor(),
    renderer: 'test',
    runId: 'run-1',
    kind: 'restore',
    lockDir,
    onTaskStates: (s) => (states = s),
    ...extra,
  });
  return { summary, events: bus.history, states };
}

const types = (events: EngineEvent[], type: EngineEvent['type']): EngineEvent[] => events.filter((e) => e.type === type);
const idsOf = (events: EngineEvent[], type: EngineEvent['type']): string[] =>
  types(events, type).map((e) => ('stepId' in e ? (e.stepId ?? '') : ''));

describe('runPlan: order and lanes', () => {
  it('runs main steps in order and lanes concurrently, respecting dependsOn', async () => {
    const flag = path.join(dir, 'prometheus-ran');
    // The PostgreSQL step only finishes once the Prometheus step has run: that needs concurrency.
    const waitForFlag = node(
      `const fs=require('fs');const t=setInterval(()=>{if(fs.existsSync(${JSON.stringify(flag)})){clearInterval(t);process.exit(0)}},20);setTimeout(()=>process.exit(3),20000)`,
    );
    const p = plan([
      step('quiesce', [node('')], { phase: 'quiesce' }),
      step('pg-restore', [waitForFlag], { lane: 'postgres', dependsOn: ['quiesce'] }),
      step('pg-analyze', [node('')], { lane: 'postgres', dependsOn: ['pg-restore'] }),
      step('redis', [node('')], { lane: 'redis', phase: 'redis', dependsOn: ['pg-restore'] }),
      step('prom', [node(`require('fs').writeFileSync(${JSON.stringify(flag)}, 'x')`)], { lane: 'prometheus', phase: 'prometheus' }),
      step('start', [node('')], { phase: 'start', dependsOn: ['pg-analyze', 'redis', 'prom'] }),
    ]);
    const { summary, events, states } = await go(p);
    expect(summary.outcome).toBe('restored');
    expect(summary.exitCode).toBe(0);
    const started = idsOf(events, 'step-started');
    const finished = idsOf(events, 'step-finished');
    expect(started[0]).toBe('quiesce');
    expect(finished.indexOf('quiesce')).toBeLessThan(started.indexOf('pg-restore'));
    // redis waits for its dependency in another lane
    const order = events
      .filter((e) => e.type === 'step-started' || e.type === 'step-finished')
      .map((e) => `${e.type === 'step-started' ? '>' : '<'}${'stepId' in e ? e.stepId : ''}`);
    expect(order.indexOf('<pg-restore')).toBeLessThan(order.indexOf('>redis'));
    expect(order.indexOf('<pg-analyze')).toBeLessThan(order.indexOf('>start'));
    expect(order.indexOf('<redis')).toBeLessThan(order.indexOf('>start'));
    expect(started.at(-1)).toBe('start');
    // listr2 task titles end as the done titles
    const completed = states.filter((s) => s.state === 'COMPLETED').map((s) => s.title);
    expect(completed.some((t) => t.startsWith('pg-restore done ('))).toBe(true);
    expect(completed.some((t) => t.startsWith('start done ('))).toBe(true);
  });

  it('runs lanes one after another when parallel is off (so the same plan deadlocks into a timeout failure)', async () => {
    const flag = path.join(dir, 'never');
    const p = plan(
      [
        step('a', [{ ...node(`setTimeout(()=>process.exit(require('fs').existsSync(${JSON.stringify(flag)})?0:3), 50)`) }], {
          lane: 'postgres',
        }),
        step('b', [node(`require('fs').writeFileSync(${JSON.stringify(flag)}, 'x')`)], { lane: 'prometheus' }),
      ],
      { parallel: false },
    );
    const { summary, events } = await go(p);
    expect(summary.exitCode).toBe(1);
    expect(idsOf(events, 'step-started')).toEqual(['a']);
    expect(idsOf(events, 'step-skipped')).toEqual(['b']);
  });

  it('emits run-started with the plan and confirmedAt, and every command with argv, exit code and output tails', async () => {
    const confirmedAt = new Date(Date.now() - 1000);
    const p = plan([step('one', [node(`console.log('hello out'); console.error('hello err')`)])]);
    const { summary, events } = await go(p, { confirmedAt });
    const started = events[0];
    expect(started?.type).toBe('run-started');
    if (started?.type === 'run-started') {
      expect(started.confirmedAt).toBe(confirmedAt.toISOString());
      expect(started.plan?.steps.map((s) => s.id)).toEqual(['one']);
    }
    const fin = types(events, 'command-finished')[0];
    expect(fin).toMatchObject({ stepId: 'one', exitCode: 0, signal: null, stdoutTail: ['hello out'], stderrTail: ['hello err'] });
    expect(types(events, 'command-started')[0]).toMatchObject({ stepId: 'one', runsIn: 'host' });
    expect(summary.rtoMs).toBeGreaterThanOrEqual(1000);
    expect(summary.rpoMs).toBeGreaterThan(0);
    expect(events.at(-1)?.type).toBe('run-finished');
  });
});

describe('runPlan: failure and rollback', () => {
  it('undoes completed steps and the failing one in reverse order, then reports the state', async () => {
    const data = path.join(dir, 'data');
    const aside = path.join(dir, 'data.pre_restore');
    const redisFile = path.join(dir, 'dump.rdb');
    await mkdir(data);
    await writeFile(path.join(data, 'old'), 'old data');
    await writeFile(redisFile, 'old rdb');
    const log = path.join(dir, 'undo.log');
    const logUndo = (what: string): PlannedAction =>
      node(`require('fs').appendFileSync(${JSON.stringify(log)}, ${JSON.stringify(`${what}\n`)})`);
    const p = plan([
      step('quiesce', [node('')], {
        phase: 'quiesce',
        component: 'services',
        undo: { title: 'Undo quiesce: start services', actions: [logUndo('start services')] },
      }),
      step('aside', [move(data, aside)], {
        component: 'prometheus',
        destructive: true,
        safetyCopy: { component: 'prometheus', kind: 'move', location: aside, description: 'old data dir' },
        undo: { title: 'Undo aside', actions: [logUndo('aside'), move(aside, data)] },
      }),
      step('rdb-aside', [move(redisFile, `${redisFile}.old`)], {
        component: 'redis',
        destructive: true,
        safetyCopy: { component: 'redis', kind: 'move', location: `${redisFile}.old`, description: 'old rdb' },
        undo: { title: 'Undo rdb-aside', actions: [logUndo('rdb-aside'), move(`${redisFile}.old`, redisFile)] },
      }),
      step(
        'restore',
        [node(`require('fs').mkdirSync(${JSON.stringify(data)})`), node(`console.error('boom: bad dump'); process.exit(3)`)],
        {
          component: 'prometheus',
          undo: {
            title: 'Undo restore',
            actions: [logUndo('restore'), { type: 'exec', argv: ['rm', '-rf', '--', data], purpose: 'remove partial', runsIn: 'host' }],
          },
        },
      ),
      step('never', [node('')], { component: 'prometheus' }),
    ]);
    const { summary, events } = await go(p);
    expect(summary.outcome).toBe('rolled-back');
    expect(summary.exitCode).toBe(1);
    expect(summary.error).toContain('boom: bad dump');
    expect((await readFile(log, 'utf8')).trim().split('\n')).toEqual(['restore', 'rdb-aside', 'aside', 'start services']);
    expect(await readFile(path.join(data, 'old'), 'utf8')).toBe('old data');
    expect(await readFile(redisFile, 'utf8')).toBe('old rdb');
    expect(existsSync(aside)).toBe(false);
    expect(idsOf(events, 'step-failed')).toEqual(['restore']);
    expect(idsOf(events, 'step-skipped')).toEqual(['never']);
    expect(idsOf(events, 'rollback-step')).toEqual(['restore', 'rdb-aside', 'aside', 'quiesce']);
    const rbStart = events.findIndex((e) => e.type === 'rollback-started');
    const failedAt = events.findIndex((e) => e.type === 'step-failed');
    expect(failedAt).toBeLessThan(rbStart);
    expect(types(events, 'rollback-finished')[0]).toMatchObject({ complete: true, manualSteps: [] });
    expect(summary.state).toContain('Prometheus: back to its pre-restore data (rolled back)');
    expect(summary.state).toContain('Application services: running again as before');
    expect(summary.safetyCopies).toEqual([]);
  });

  it('continues the rollback when an undo fails and lists exactly what is left to do by hand', async () => {
    const a = path.join(dir, 'a');
    const b = path.join(dir, 'b');
    await writeFile(a, 'A');
    await writeFile(b, 'B');
    const p = plan([
      step('move-a', [move(a, `${a}.old`)], {
        component: 'postgres',
        destructive: true,
        safetyCopy: { component: 'postgres', kind: 'move', location: `${a}.old`, description: 'a' },
        undo: { title: 'Undo move-a', actions: [move(`${a}.old`, a)] },
      }),
      step('move-b', [move(b, `${b}.old`)], {
        component: 'redis',
        destructive: true,
        safetyCopy: { component: 'redis', kind: 'move', location: `${b}.old`, description: 'b' },
        // The undo itself breaks: something occupies the way back.
        undo: {
          title: 'Undo move-b',
          actions: [node(`require('fs').writeFileSync(${JSON.stringify(b)}, 'intruder')`), move(`${b}.old`, b), node('')],
        },
      }),
      step('fail', [node('process.exit(2)')], { component: 'redis' }),
    ]);
    const { summary, events } = await go(p);
    expect(summary.outcome).toBe('rollback-incomplete');
    expect(summary.exitCode).toBe(5);
    // The other undo still ran.
    expect(await readFile(a, 'utf8')).toBe('A');
    const manual = summary.manualSteps ?? [];
    expect(manual[0]).toMatch(new RegExp(`^mv -T -- ${b}\\.old ${b} +# failed: .*already exists`));
    expect(manual[1]).toContain(process.execPath);
    expect(types(events, 'rollback-finished')[0]).toMatchObject({ complete: false });
    expect(summary.state.find((l) => l.startsWith('Redis'))).toMatch(/NOT back to its pre-restore state/);
    expect(summary.state.find((l) => l.startsWith('PostgreSQL'))).toBe('PostgreSQL: back to its pre-restore data (rolled back)');
    expect(summary.safetyCopies.map((c) => c.location)).toEqual([`${b}.old`]);
    expect(summary.nextSteps.join('\n')).toContain(`mv -T -- ${b}.old ${b}`);
  });

  it('rolls back and returns 130 when interrupted while a command runs', async () => {
    const a = path.join(dir, 'a');
    await writeFile(a, 'A');
    const controller = new AbortController();
    const p = plan([
      step('move-a', [move(a, `${a}.old`)], {
        destructive: true,
        component: 'postgres',
        safetyCopy: { component: 'postgres', kind: 'move', location: `${a}.old`, description: 'a' },
        undo: { title: 'Undo move-a', actions: [move(`${a}.old`, a)] },
      }),
      step('long', [node(`console.log('started'); setTimeout(()=>{}, 60000)`)], { component: 'postgres' }),
      step('after', [node('')], { component: 'postgres' }),
    ]);
    const bus = new EventBus();
    bus.on((e) => {
      if (e.type === 'command-output' && e.stepId === 'long') controller.abort();
    });
    const summary = await runPlan(p, {
      bus,
      redact: createRedactor(),
      renderer: 'test',
      runId: 'r',
      kind: 'restore',
      lockDir,
      signal: controller.signal,
    });
    expect(summary.outcome).toBe('interrupted');
    expect(summary.exitCode).toBe(130);
    expect(await readFile(a, 'utf8')).toBe('A');
    const fin = types(bus.history, 'command-finished').find((e) => e.type === 'command-finished' && e.stepId === 'long');
    expect(fin && fin.type === 'command-finished' ? fin.signal : undefined).toBe('SIGTERM');
    expect(idsOf(bus.history, 'rollback-step')).toEqual(['move-a']);
    expect(idsOf(bus.history, 'step-skipped')).toEqual(['after']);
  });

  it('a second signal during the rollback stops waiting and reports what is left to do by hand (exit 5)', async () => {
    const a = path.join(dir, 'a');
    await writeFile(a, 'A');
    const interrupt = new AbortController();
    const stop = new AbortController();
    const p = plan([
      step('move-a', [move(a, `${a}.old`)], {
        destructive: true,
        component: 'postgres',
        safetyCopy: { component: 'postgres', kind: 'move', location: `${a}.old`, description: 'a' },
        undo: { title: 'Undo move-a', actions: [node(`console.log('undo waiting'); setTimeout(()=>{}, 60000)`), move(`${a}.old`, a)] },
      }),
      step('long', [node(`console.log('started'); setTimeout(()=>{}, 60000)`)], { component: 'postgres' }),
    ]);
    const bus = new EventBus();
    let rollingBack = false;
    bus.on((e) => {
      if (e.type === 'command-output' && e.stepId === 'long') interrupt.abort();
      if (e.type === 'rollback-started') rollingBack = true;
      if (rollingBack && e.type === 'command-output' && e.line === 'undo waiting') stop.abort();
    });
    const summary = await runPlan(p, {
      bus,
      redact: createRedactor(),
      renderer: 'test',
      runId: 'r',
      kind: 'restore',
      lockDir,
      signal: interrupt.signal,
      stopSignal: stop.signal,
    });
    expect(summary).toMatchObject({ outcome: 'rollback-incomplete', exitCode: 5 });
    expect(summary.manualSteps?.[0]).toMatch(/# failed: interrupted/);
    expect(summary.manualSteps?.[1]).toBe(`mv -T -- ${a}.old ${a}`);
    expect(existsSync(`${a}.old`)).toBe(true);
    expect(summary.safetyCopies.map((c) => c.location)).toEqual([`${a}.old`]);
  });

  it('a failed drill reports the failure without rolling back its scratch targets (exit 1, outcome failed)', async () => {
    const undone = path.join(dir, 'undone');
    const p = {
      ...plan([
        step('a', [node('0')], {
          undo: { title: 'undo a', actions: [node(`require('fs').writeFileSync(${JSON.stringify(undone)}, 'x')`)] },
        }),
        step('b', [node('process.exit(3)')]),
      ]),
      mode: 'drill' as const,
    };
    const { summary, events } = await go(p, { kind: 'drill' });
    expect(summary.outcome).toBe('failed');
    expect(summary.exitCode).toBe(1);
    expect(types(events, 'rollback-started')).toEqual([]);
    expect(existsSync(undone)).toBe(false);
    expect(summary.nextSteps.join(' ')).toContain('did NOT restore cleanly');
  });

  it('names only the safety copies that exist: a move whose source was absent kept nothing', async () => {
    const rdb = path.join(dir, 'dump.rdb');
    await writeFile(rdb, 'old data');
    const aof = path.join(dir, 'appendonlydir'); // never existed
    const keptRdb = `${rdb}.pre_restore`;
    const keptAof = `${aof}.pre_restore`;
    const p = plan([
      step(
        'aside',
        [
          { type: 'move', from: rdb, to: keptRdb, purpose: 'rdb aside', ifExists: true },
          { type: 'move', from: aof, to: keptAof, purpose: 'aof aside', ifExists: true },
        ],
        {
          destructive: true,
          component: 'redis',
          safetyCopy: { component: 'redis', kind: 'move', location: `${keptRdb}, ${keptAof}`, description: 'files as they were' },
          undo: { title: 'back', actions: [move(keptRdb, rdb)] },
        },
      ),
    ]);
    const { summary } = await go(p);
    expect(summary.exitCode).toBe(0);
    expect(summary.safetyCopies.map((c) => c.location)).toEqual([keptRdb]);
    expect(summary.nextSteps.join(' ')).not.toContain(keptAof);
  });

  it('refuses a destructive step without a safety copy before touching anything', async () => {
    const marker = path.join(dir, 'touched');
    const p = plan([
      step('ok', [node(`require('fs').writeFileSync(${JSON.stringify(marker)}, 'x')`)]),
      step('drop', [node('')], { destructive: true, destroys: 'the database' }),
    ]);
    expect(validatePlan(p)).toHaveLength(1);
    const { summary, events } = await go(p);
    expect(summary.outcome).toBe('refused');
    expect(summary.exitCode).toBe(9);
    expect(summary.error).toMatch(/destroys the database but plans no safety copy/);
    expect(existsSync(marker)).toBe(false);
    expect(types(events, 'step-started')).toHaveLength(0);
  });

  it('accepts an explicit safety copy of kind none and says the data could not be brought back', async () => {
    const p = plan([
      step('drop', [node('')], {
        destructive: true,
        component: 'postgres',
        safetyCopy: { component: 'postgres', kind: 'none', location: '', description: 'operator chose none' },
      }),
      step('fail', [node('process.exit(1)')], { component: 'postgres' }),
    ]);
    const { summary } = await go(p);
    expect(summary.exitCode).toBe(5);
    expect(summary.manualSteps?.[0]).toMatch(/no safety copy was kept/);
  });

  it('refuses when the preflight re-check finds problems (exit 9, nothing run)', async () => {
    const marker = path.join(dir, 'touched');
    const p = plan([step('one', [node(`require('fs').writeFileSync(${JSON.stringify(marker)}, 'x')`)])]);
    const { summary } = await go(p, { preflight: async () => ['pg_restore 13 cannot read this dump'] });
    expect(summary).toMatchObject({ outcome: 'refused', exitCode: 9 });
    expect(existsSync(marker)).toBe(false);
  });
});

describe('runPlan: health checks', () => {
  const failing: CheckRunner = async (check) => ({
    ok: check.name !== 'api',
    attempts: 3,
    durationMs: 5,
    detail: check.name === 'api' ? 'status 500' : 'fine',
  });
  const healthStep = step(
    'health',
    [
      {
        type: 'check',
        check: { name: 'api', timeoutSeconds: 1, retries: 0, intervalSeconds: 0, when: ['restore'], tcp: { host: '127.0.0.1', port: 1 } },
        purpose: 'api',
      },
      {
        type: 'check',
        check: { name: 'db', timeoutSeconds: 1, retries: 0, intervalSeconds: 0, when: ['restore'], tcp: { host: '127.0.0.1', port: 1 } },
        purpose: 'db',
      },
    ],
    { phase: 'health' },
  );

  it('keeps the restored state and exits 4 when a health check fails', async () => {
    const a = path.join(dir, 'a');
    await writeFile(a, 'old');
    const p = plan([
      step('swap', [move(a, `${a}.old`), { type: 'exec', argv: ['cp', '--', path.join(dir, 'a.old'), a], purpose: 'x', runsIn: 'host' }], {
        component: 'redis',
        destructive: true,
        safetyCopy: { component: 'redis', kind: 'move', location: `${a}.old`, description: 'old a' },
        undo: {
          title: 'Undo swap',
          actions: [{ type: 'exec', argv: ['rm', '-f', '--', a], purpose: 'rm', runsIn: 'host' }, move(`${a}.old`, a)],
        },
      }),
      healthStep,
      step('cleanup', [node('')], { phase: 'cleanup' }),
    ]);
    const { summary, events } = await go(p, { runCheck: failing });
    expect(summary).toMatchObject({ outcome: 'unhealthy', exitCode: 4, failedChecks: ['api'] });
    expect(existsSync(`${a}.old`)).toBe(true);
    expect(types(events, 'health-check').map((e) => (e.type === 'health-check' ? [e.name, e.ok] : []))).toEqual([
      ['api', false],
      ['db', true],
    ]);
    expect(idsOf(events, 'step-skipped')).toEqual(['cleanup']);
    expect(summary.state[0]).toBe(`Redis: restored from b1; previous data kept as ${a}.old`);
    expect(summary.nextSteps.join('\n')).toContain(`mv -T -- ${a}.old ${a}`);
  });

  it('rolls back when asked to on unhealthy (exit 1)', async () => {
    const a = path.join(dir, 'a');
    await writeFile(a, 'old');
    const p = plan(
      [
        step('swap', [move(a, `${a}.old`), node(`require('fs').writeFileSync(${JSON.stringify(a)}, 'new')`)], {
          component: 'redis',
          destructive: true,
          safetyCopy: { component: 'redis', kind: 'move', location: `${a}.old`, description: 'old a' },
          undo: {
            title: 'Undo swap',
            actions: [{ type: 'exec', argv: ['rm', '-f', '--', a], purpose: 'rm', runsIn: 'host' }, move(`${a}.old`, a)],
          },
        }),
        healthStep,
      ],
      { rollbackOnUnhealthy: true },
    );
    const { summary } = await go(p, { runCheck: failing });
    expect(summary).toMatchObject({ outcome: 'rolled-back', exitCode: 1, failedChecks: ['api'] });
    expect(await readFile(a, 'utf8')).toBe('old');
  });

  describe('asking the operator (onUnhealthy)', () => {
    /** A restore that swaps file `a` for new content, then runs the failing checks. */
    async function swapThenCheck(): Promise<{ a: string; p: Plan }> {
      const a = path.join(dir, 'a');
      await writeFile(a, 'old');
      const p = plan([
        step('swap', [move(a, `${a}.old`), node(`require('fs').writeFileSync(${JSON.stringify(a)}, 'new')`)], {
          component: 'redis',
          destructive: true,
          safetyCopy: { component: 'redis', kind: 'move', location: `${a}.old`, description: 'old a' },
          undo: {
            title: 'Undo swap',
            actions: [{ type: 'exec', argv: ['rm', '-f', '--', a], purpose: 'rm', runsIn: 'host' }, move(`${a}.old`, a)],
          },
        }),
        healthStep,
      ]);
      return { a, p };
    }
    const logs = (events: EngineEvent[]): string[] => events.flatMap((e) => (e.type === 'log' ? [e.message] : []));
    const WAIT_MS = 1500;

    it('"rollback" brings the pre-restore state back (exit 1) and records who decided', async () => {
      const { a, p } = await swapThenCheck();
      const asked: Array<{ checks: string[]; state: string[] }> = [];
      const { summary, events } = await go(p, {
        runCheck: failing,
        onUnhealthy: async (failed) => {
          asked.push(failed);
          // The restored data is in place while the operator decides.
          expect(await readFile(a, 'utf8')).toBe('new');
          return 'rollback';
        },
      });
      expect(asked).toEqual([{ checks: ['api'], state: [`Redis: restored from b1; previous data kept as ${a}.old`] }]);
      expect(summary).toMatchObject({ outcome: 'rolled-back', exitCode: 1, failedChecks: ['api'] });
      expect(summary.error).toBe('health checks failed: api; the operator chose to roll back');
      expect(summary.nextSteps.join(' ')).toContain('the operator chose to roll back');
      expect(await readFile(a, 'utf8')).toBe('old');
      expect(existsSync(`${a}.old`)).toBe(false);
      // The decision is an event, after the failed check and before the rollback.
      const decided = events.findIndex((e) => e.type === 'log' && e.message === 'operator chose to roll back after failed health checks');
      expect(decided).toBeGreaterThan(events.findIndex((e) => e.type === 'health-check' && !e.ok));
      expect(decided).toBeLessThan(events.findIndex((e) => e.type === 'rollback-started'));
      expect(logs(events)).toContain('health checks failed (api): asking the operator whether to keep the restored state or roll back');
      expect(idsOf(events, 'rollback-step')).toEqual(['swap']);
    });

    it('"keep" keeps the restored state (exit 4); the RTO ends with the health checks, not the answer', async () => {
      const { a, p } = await swapThenCheck();
      const confirmedAt = new Date();
      let askedAt = 0;
      const { summary, events } = await go(p, {
        runCheck: failing,
        confirmedAt,
        onUnhealthy: async () => {
          askedAt = Date.now();
          await new Promise((r) => setTimeout(r, WAIT_MS));
          return 'keep';
        },
      });
      expect(summary).toMatchObject({ outcome: 'unhealthy', exitCode: 4, failedChecks: ['api'] });
      expect(await readFile(a, 'utf8')).toBe('new');
      expect(existsSync(`${a}.old`)).toBe(true);
      expect(types(events, 'rollback-started')).toEqual([]);
      expect(logs(events)).toContain('operator chose to keep the restored state after failed health checks');
      expect(summary.nextSteps[0]).toBe('The operator chose to keep the restored state. Look at the failed checks.');
      // RTO stopped before the question was asked; the run itself lasted through the wait.
      expect(summary.rtoMs).toBeDefined();
      expect(summary.rtoMs ?? Infinity).toBeLessThanOrEqual(askedAt - confirmedAt.getTime());
      const finished = events.at(-1);
      expect(finished?.type).toBe('run-finished');
      expect(Date.parse(finished?.ts ?? '') - confirmedAt.getTime()).toBeGreaterThanOrEqual((summary.rtoMs ?? 0) + WAIT_MS - 5);
    });

    it('is not asked when the checks pass, when the plan already says to roll back, or for a drill', async () => {
      let asked = 0;
      const onUnhealthy = async (): Promise<'keep'> => {
        asked++;
        return 'keep';
      };
      const healthy = await go(plan([step('one', [node('')]), healthStep]), {
        runCheck: async () => ({ ok: true, attempts: 1, durationMs: 1, detail: 'fine' }),
        onUnhealthy,
      });
      expect(healthy.summary.outcome).toBe('restored');
      const planned = await swapThenCheck();
      const rolled = await go(
        { ...planned.p, options: { ...planned.p.options, rollbackOnUnhealthy: true } },
        { runCheck: failing, onUnhealthy },
      );
      expect(rolled.summary).toMatchObject({ outcome: 'rolled-back', exitCode: 1 });
      expect(rolled.summary.nextSteps.join(' ')).toContain('--rollback-on-unhealthy');
      expect(logs(rolled.events).some((m) => m.includes('operator'))).toBe(false);
      const drill = await go(
        { ...plan([step('one', [node('')]), healthStep]), mode: 'drill' as const },
        { kind: 'drill', runCheck: failing, onUnhealthy },
      );
      expect(drill.summary.failedChecks).toEqual(['api']);
      expect(asked).toBe(0);
    });

    it('an interrupt while the question is open rolls back (exit 130)', async () => {
      const { a, p } = await swapThenCheck();
      const interrupt = new AbortController();
      const { summary, events } = await go(p, {
        runCheck: failing,
        signal: interrupt.signal,
        // Never answered: the operator presses Ctrl-C instead.
        onUnhealthy: () => {
          setTimeout(() => interrupt.abort(), 20);
          return new Promise(() => undefined);
        },
      });
      expect(summary).toMatchObject({ outcome: 'interrupted', exitCode: 130, failedChecks: ['api'] });
      expect(await readFile(a, 'utf8')).toBe('old');
      expect(logs(events)).toContain('interrupted while the operator was asked about failed health checks: rolling back');
      expect(types(events, 'rollback-finished')[0]).toMatchObject({ complete: true });
    });

    it('a hook that fails keeps the restored state and says so', async () => {
      const { a, p } = await swapThenCheck();
      const { summary, events } = await go(p, {
        runCheck: failing,
        onUnhealthy: async () => {
          throw new Error('the terminal went away');
        },
      });
      expect(summary).toMatchObject({ outcome: 'unhealthy', exitCode: 4 });
      expect(await readFile(a, 'utf8')).toBe('new');
      expect(logs(events)).toContain(
        'the question about failed health checks got no answer (the terminal went away): the restored state is kept',
      );
    });
  });

  it('drops moved safety copies after a healthy restore when asked', async () => {
    const a = path.join(dir, 'a');
    await mkdir(a);
    const p = plan(
      [
        step('swap', [recordedMove(a, `${a}.old`, 'path.a-aside'), node(`require('fs').mkdirSync(${JSON.stringify(a)})`)], {
          component: 'prometheus',
          destructive: true,
          safetyCopy: { component: 'prometheus', kind: 'move', location: `${a}.old`, description: 'old a' },
        }),
      ],
      { dropSafetyCopies: true },
    );
    const { summary } = await go(p);
    expect(summary.outcome).toBe('restored');
    expect(existsSync(`${a}.old`)).toBe(false);
    expect(summary.safetyCopies).toEqual([]);
    expect(summary.state[0]).toMatch(/previous data removed \(--drop-safety-copies/);
  });

  it('--drop-safety-copies removes a safety copy only if it is what the run moved aside (by identity)', async () => {
    const a = path.join(dir, 'a');
    await mkdir(a);
    // The step moves a aside, then something else takes the copy's name (the real copy kept elsewhere).
    const swapIn = `const fs = require('fs'); fs.renameSync(${JSON.stringify(`${a}.old`)}, ${JSON.stringify(`${a}.kept`)}); fs.mkdirSync(${JSON.stringify(`${a}.old`)}); fs.writeFileSync(${JSON.stringify(`${a}.old/planted`)}, 'x'); fs.mkdirSync(${JSON.stringify(a)})`;
    const p = plan(
      [
        step('swap', [recordedMove(a, `${a}.old`, 'path.a-aside'), node(swapIn)], {
          component: 'prometheus',
          destructive: true,
          safetyCopy: { component: 'prometheus', kind: 'move', location: `${a}.old`, description: 'old a' },
        }),
      ],
      { dropSafetyCopies: true },
    );
    const { summary } = await go(p);
    expect(summary.outcome).toBe('restored');
    expect(existsSync(`${a}.old/planted`)).toBe(true);
    expect(summary.nextSteps.join('\n')).toMatch(/Did not remove the safety copy .*a\.old: .*is not what this run put there/);
  });
});

describe('runPlan: a signal after the confirmation, before the first step', () => {
  // Nothing was touched yet: a cancel, as a signal before the confirmation is (exit 0), not an
  // interrupted run (130); the locks are released as before the run.
  const cancelled = async (abortWhen: 'before the engine' | 'in the preflight'): Promise<void> => {
    const a = path.join(dir, 'a');
    await writeFile(a, 'A');
    const controller = new AbortController();
    if (abortWhen === 'before the engine') controller.abort(new Error('SIGTERM'));
    const abort = (): void => {
      if (!controller.signal.aborted) controller.abort(new Error('SIGINT'));
    };
    const p = plan([
      step('move-a', [move(a, `${a}.old`)], {
        destructive: true,
        component: 'postgres',
        safetyCopy: { component: 'postgres', kind: 'move', location: `${a}.old`, description: 'a' },
        undo: { title: 'Undo move-a', actions: [move(`${a}.old`, a)] },
      }),
    ]);
    const { summary, events } = await go(p, {
      signal: controller.signal,
      ...(abortWhen === 'in the preflight'
        ? {
            preflight: async () => {
              abort();
              return [];
            },
          }
        : {}),
    });
    expect(summary.outcome, abortWhen).toBe('cancelled');
    expect(summary.exitCode, abortWhen).toBe(0);
    expect(summary.error).toBe('cancelled by a signal before the first step: nothing was touched');
    expect(summary.nextSteps.join(' ')).toMatch(/Nothing was touched; the locks are released\. Run the restore again when ready\./);
    expect(types(events, 'step-started'), abortWhen).toEqual([]);
    expect(types(events, 'rollback-started'), abortWhen).toEqual([]);
    expect(types(events, 'run-finished')).toHaveLength(1);
    expect(await readFile(a, 'utf8')).toBe('A');
    expect(existsSync(`${a}.old`)).toBe(false);
    expect(existsSync(path.join(lockDir, lockFileName('recipe:unit'))), abortWhen).toBe(false);
  };

  it('aborted before the engine starts: cancelled, exit 0, nothing touched', async () => {
    await cancelled('before the engine');
  });
  it('aborted once the locks are taken (preflight): cancelled, exit 0, the locks released', async () => {
    await cancelled('in the preflight');
  });
});

describe('runPlan: locks', () => {
  it('refuses (exit 8) while another run holds a target, and releases its own lock afterwards', async () => {
    const held = await acquireLocks(['postgres:127.0.0.1:5432/app'], { dir: lockDir, runId: 'other' });
    const marker = path.join(dir, 'touched');
    const p = plan([step('one', [node(`require('fs').writeFileSync(${JSON.stringify(marker)}, 'x')`)])]);
    const first = await go({ ...p, lockKeys: ['postgres:127.0.0.1:5432/app'] });
    expect(first.summary).toMatchObject({ outcome: 'refused', exitCode: 8 });
    expect(first.summary.error).toMatch(/Another restore holds postgres:127\.0\.0\.1:5432\/app \(pid \d+ on .*run other\)/);
    expect(existsSync(marker)).toBe(false);
    await held.release();
    const second = await go({ ...p, lockKeys: ['postgres:127.0.0.1:5432/app'] });
    expect(second.summary.exitCode).toBe(0);
    expect(existsSync(path.join(lockDir, lockFileName('postgres:127.0.0.1:5432/app')))).toBe(false);
  });

  it('reports a stale lock from a dead process with its contents and the removal command, without taking it', async () => {
    const { spawnSync } = await import('node:child_process');
    const dead = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' });
    const pid = Number(dead.stdout.trim());
    await mkdir(lockDir, { recursive: true });
    const file = path.join(lockDir, lockFileName('redis:127.0.0.1:6379'));
    await writeFile(
      file,
      JSON.stringify({
        key: 'redis:127.0.0.1:6379',
        pid,
        host: os.hostname(),
        startedAt: '2026-01-01T00:00:00.000Z',
        runId: 'crashed-run',
      }),
    );
    const p = plan([step('one', [node('')])]);
    const { summary } = await go({ ...p, lockKeys: ['redis:127.0.0.1:6379'] });
    expect(summary).toMatchObject({ outcome: 'refused', exitCode: 8 });
    expect(summary.error).toMatch(/stale lock/);
    expect(summary.error).toContain(`pid ${pid}`);
    expect(summary.nextSteps.join(' ')).toContain(`rm -- ${file.replace(/%/g, '%')}`);
    expect(existsSync(file)).toBe(true);
  });
});

describe('runPlan: services stay stopped while data is not back; start undos are idempotent', () => {
  it('an application is not started again while a data target is not back, and the summary says so', async () => {
    const started = path.join(dir, 'app-started');
    const p = plan([
      step('quiesce:app', [node('')], {
        phase: 'quiesce',
        component: 'services',
        undo: { title: 'Start app', actions: [node(`require('fs').writeFileSync(${JSON.stringify(started)}, 'x')`)] },
      }),
      step('postgres:create', [node('')], {
        component: 'postgres',
        dependsOn: ['quiesce:app'],
        undo: { title: 'Drop the new database', actions: [node('process.exit(4)')] },
      }),
      step('postgres:restore', [node('process.exit(1)')], { component: 'postgres', dependsOn: ['postgres:create'] }),
    ]);
    const { summary, events } = await go(p);
    expect(summary).toMatchObject({ outcome: 'rollback-incomplete', exitCode: 5 });
    expect(existsSync(started)).toBe(false);
    expect(summary.state.join('\n')).toMatch(/Application services: kept STOPPED because PostgreSQL is not back/);
    expect(summary.state.join('\n')).not.toMatch(/running again as before/);
    const manual = summary.manualSteps ?? [];
    expect(manual.findIndex((m) => m.includes('Start app only once'))).toBeGreaterThan(
      manual.findIndex((m) => m.includes('process.exit(4)')),
    );
    expect(types(events, 'rollback-step').find((e) => e.type === 'rollback-step' && e.stepId === 'quiesce:app')).toMatchObject({
      ok: false,
      error: expect.stringContaining('kept stopped'),
    });
  });

  it('undoing a stop that never completed is not an error: the service still running means nothing to start', async () => {
    const running = path.join(dir, 'running');
    await writeFile(running, 'x');
    const startCalls = path.join(dir, 'start-calls');
    const status: PlannedAction = {
      type: 'wait-command',
      command: { argv: ['test', '-e', running], purpose: 'status', runsIn: 'host' },
      untilExit: 'zero',
      timeoutSeconds: 5,
      purpose: 'Wait until it is running',
    };
    const p = plan([
      // The stop fails half-way: the service keeps running.
      step('redis:stop', [node('process.exit(1)')], {
        component: 'redis',
        phase: 'redis',
        undo: {
          title: 'Start Redis',
          actions: [node(`require('fs').appendFileSync(${JSON.stringify(startCalls)}, 'x'); process.exit(1)`), status],
        },
      }),
    ]);
    const { summary } = await go(p);
    expect(summary).toMatchObject({ outcome: 'rolled-back', exitCode: 1 });
    expect(existsSync(startCalls)).toBe(false);
  });
});
