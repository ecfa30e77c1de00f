import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { listBackupSets } from '../../source/catalog/index.js';
import type * as Catalog from '../../source/catalog/index.js';
import type { BackupSet } from '../../source/catalog/types.js';
import { buildDemoWorld, type DemoWorld } from '../../source/demo/world.js';
import { EventBus, type EngineEvent } from '../../source/engine/events.js';
import { acquireLocks, lockFileName } from '../../source/engine/lock.js';
import { identityLockKeys } from '../../source/engine/target-identity.js';
import { loadRecipeFile, type LoadedRecipe } from '../../source/recipe/load.js';
import { createGuideDeps } from '../../source/session/guide-deps.js';
import { lockDirFor } from '../../source/session/session.js';
import { runCli } from '../support/cli.js';

/**
 * The restore session through its real entry points: the guide's wiring (session/guide-deps.ts)
 * restores and drills the demo's sandbox "production" (real PostgreSQL, Redis, Prometheus and an
 * application service), and every entry point (guide, restore, drill) refuses a locked target with
 * exit 8 before anything is verified. The verifier is wrapped to count calls (it still runs).
 */

const verifyCalls = vi.hoisted(() => ({ count: 0 }));
vi.mock('../../source/catalog/index.js', async (importOriginal) => {
  const real = await importOriginal<typeof Catalog>();
  return {
    ...real,
    verifyBackupSet: (...args: Parameters<typeof real.verifyBackupSet>) => {
      verifyCalls.count += 1;
      return real.verifyBackupSet(...args);
    },
  };
});

describe('the restore session: guide wiring, one lock policy', () => {
  let xdg: string;
  let world: DemoWorld;
  let loaded: LoadedRecipe;
  let sets: BackupSet[];
  let env: NodeJS.ProcessEnv;
  const cliEnv = (): Record<string, string | undefined> => ({
    ...world.env,
    XDG_RUNTIME_DIR: env['XDG_RUNTIME_DIR'],
    XDG_STATE_HOME: env['XDG_STATE_HOME'],
  });
  const runs = (kind: string): string[] =>
    existsSync(world.evidenceDir) ? readdirSync(world.evidenceDir).filter((n) => n.includes(`-${kind}-`)) : [];
  const noop = (): void => undefined;

  beforeAll(async () => {
    xdg = mkdtempSync(path.join(tmpdir(), 'ra-session-test-'));
    world = await buildDemoWorld({ evidenceDir: path.join(xdg, 'evidence') });
    loaded = await loadRecipeFile(world.recipeFile);
    sets = (await listBackupSets({ root: world.backupRoot, layout: 'story-portal' })).sets;
    env = { ...process.env, ...world.env, XDG_RUNTIME_DIR: path.join(xdg, 'run'), XDG_STATE_HOME: path.join(xdg, 'state'), NO_COLOR: '1' };
  }, 180_000);

  afterAll(async () => {
    await world?.teardown();
    if (xdg) rmSync(xdg, { recursive: true, force: true });
  });

  it('guide: verify locks first; a second guide, restore or drill on the target is refused (exit 8) before anything is verified; the run restores production', async () => {
    const set = sets[0];
    if (!set) throw new Error('no backup set');
    await world.breakProduction();
    const deps = createGuideDeps({ env, commandLine: ['restore-assistant', 'guide'] });
    try {
      const signal = new AbortController().signal;
      const report = await deps.verify(loaded, set, { depth: 'deep', onProgress: noop, signal, mode: 'restore' });
      expect(report.ok).toBe(true);
      const keys = await identityLockKeys(loaded.recipe, ['postgres', 'redis', 'prometheus'], 'restore');
      for (const k of keys) expect(existsSync(path.join(lockDirFor(loaded, env), lockFileName(k))), k).toBe(true);

      // A second operator in the guide: refused at verify, before the verifier is reached.
      const before = verifyCalls.count;
      const other = createGuideDeps({ env });
      try {
        await expect(other.verify(loaded, set, { depth: 'deep', onProgress: noop, signal, mode: 'restore' })).rejects.toMatchObject({
          exitCode: 8,
        });
        await expect(other.probe(loaded, set, report, { signal, mode: 'restore' })).rejects.toMatchObject({ exitCode: 8 });
      } finally {
        await other.dispose();
      }
      expect(verifyCalls.count).toBe(before);

      // ...and on the command line: exit 8, no verification line, no run recorded.
      const restoresBefore = runs('restore');
      const cli = await runCli(['restore', '--recipe', world.recipeFile, '--backup', set.id, '--yes'], { env: cliEnv() });
      expect(cli.code, cli.stderr).toBe(8);
      expect(cli.stderr).toMatch(/Another restore holds postgres:127\.0\.0\.1:\d+\/shop/);
      expect(cli.stderr).not.toMatch(/verifying/i);
      expect(runs('restore')).toEqual(restoresBefore);

      // The first guide goes on: probe, plan (it carries the keys it holds), run.
      const facts = await deps.probe(loaded, set, report, { signal, mode: 'restore' });
      const plan = deps.buildPlan({ recipe: loaded, set, facts, mode: 'restore', missingRoles: 'create', verify: report });
      expect(plan.lockKeys).toEqual(keys);
      const bus = new EventBus();
      const events: EngineEvent[] = [];
      bus.on((e) => events.push(e));
      const result = await deps.runPlan(plan, {
        bus,
        signal,
        stopSignal: new AbortController().signal,
        confirmedAt: new Date().toISOString(),
        rollbackOnUnhealthy: false,
      });
      expect(result.summary.exitCode, JSON.stringify(result.summary)).toBe(0);
      expect(events.map((e) => e.type)).toContain('verification');
      expect(events.findIndex((e) => e.type === 'verification')).toBeLessThan(events.findIndex((e) => e.type === 'run-started'));
      expect(result.evidenceDir && existsSync(path.join(result.evidenceDir, 'events.jsonl'))).toBe(true);
      expect((await world.compare()).filter((c) => !c.ok)).toEqual([]);
    } finally {
      await deps.dispose();
    }
    // Disposed: its locks are gone.
    const keys = await identityLockKeys(loaded.recipe, ['postgres', 'redis', 'prometheus'], 'restore');
    for (const k of keys) expect(existsSync(path.join(lockDirFor(loaded, env), lockFileName(k))), k).toBe(false);
  }, 240_000);

  it('drill: a locked drill of the deployment is refused (exit 8) before anything is verified, in the guide and on the command line', async () => {
    const set = sets[0];
    if (!set) throw new Error('no backup set');
    const held = await acquireLocks(await identityLockKeys(loaded.recipe, ['postgres', 'redis', 'prometheus'], 'drill'), {
      dir: lockDirFor(loaded, env),
      runId: 'another-drill',
    });
    try {
      const before = verifyCalls.count;
      const deps = createGuideDeps({ env });
      try {
        await expect(
          deps.verify(loaded, set, { depth: 'deep', onProgress: noop, signal: new AbortController().signal, mode: 'drill' }),
        ).rejects.toMatchObject({ exitCode: 8 });
      } finally {
        await deps.dispose();
      }
      expect(verifyCalls.count).toBe(before);

      const drillsBefore = runs('drill');
      const tmpBefore = readdirSync(tmpdir()).filter((n) => n.startsWith('restore-assistant-drill-'));
      const cli = await runCli(['drill', '--recipe', world.recipeFile, '--backup', set.id, '--yes'], { env: cliEnv() });
      expect(cli.code, cli.stderr).toBe(8);
      expect(cli.stderr).toMatch(/holds drill:postgres:127\.0\.0\.1:\d+\/shop/);
      expect(cli.stderr).not.toMatch(/Verifying|Starting scratch/);
      expect(runs('drill')).toEqual(drillsBefore);
      expect(readdirSync(tmpdir()).filter((n) => n.startsWith('restore-assistant-drill-') && !tmpBefore.includes(n))).toEqual([]);
    } finally {
      await held.release();
    }
  }, 120_000);

  it('guide drill: scratch services start at probe, the run passes, dispose removes them; a real restore is not blocked by it', async () => {
    const set = sets[0];
    if (!set) throw new Error('no backup set');
    const deps = createGuideDeps({ env });
    let scratchDir: string | undefined;
    try {
      const signal = new AbortController().signal;
      const report = await deps.verify(loaded, set, { depth: 'deep', onProgress: noop, signal, mode: 'drill' });
      expect(report.ok).toBe(true);
      // A restore's keys are free while a drill holds its own.
      const restoreLock = await acquireLocks(await identityLockKeys(loaded.recipe, ['postgres'], 'restore'), {
        dir: lockDirFor(loaded, env),
        runId: 'restore-meanwhile',
      });
      await restoreLock.release();
      const tmpBefore = readdirSync(tmpdir()).filter((n) => n.startsWith('restore-assistant-drill-'));
      const facts = await deps.probe(loaded, set, report, { signal, mode: 'drill' });
      scratchDir = readdirSync(tmpdir()).find((n) => n.startsWith('restore-assistant-drill-') && !tmpBefore.includes(n));
      expect(scratchDir).toBeDefined();
      const plan = deps.buildPlan({ recipe: loaded, set, facts, mode: 'drill', missingRoles: 'fail', verify: report });
      expect(plan.mode).toBe('drill');
      expect(plan.lockKeys.every((k) => k.startsWith('drill:'))).toBe(true);
      expect(plan.options.missingRoles).toBe('create');
      const result = await deps.runPlan(plan, {
        bus: new EventBus(),
        signal,
        stopSignal: new AbortController().signal,
        confirmedAt: new Date().toISOString(),
        rollbackOnUnhealthy: false,
      });
      expect(result.summary.exitCode, JSON.stringify(result.summary)).toBe(0);
      expect(existsSync(path.join(tmpdir(), scratchDir ?? ''))).toBe(true);
    } finally {
      await deps.dispose();
    }
    expect(existsSync(path.join(tmpdir(), scratchDir ?? 'never'))).toBe(false);
  }, 240_000);
});
