import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { copyFile, mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackupSet } from '../../source/catalog/types.js';
import { runCheck } from '../../source/checks/index.js';
import { buildPlan } from '../../source/plan/build.js';
import { resolvePlanOptions } from '../../source/plan/options.js';
import { probeFacts } from '../../source/probe/index.js';
import type { Plan } from '../../source/plan/types.js';
import type { PlannedAction, PlannedCommand } from '../../source/actions/types.js';
import type { LoadedRecipe } from '../../source/recipe/load.js';
import { recipeSchema } from '../../source/recipe/schema.js';
import { SandboxGroup, serviceCtlArgv, type RedisSandbox } from '../../source/sandbox/index.js';

/**
 * The Redis steps of a plan, run for real against redis-server 7 with appendonly yes: the probe
 * learns the layout, the plan installs the backup RDB as the AOF base (manifest
 * `file appendonly.aof.1.base.rdb seq 1 type b`), and after start the backup's keys are there,
 * the AOF is live, and the undo lists bring the previous data back.
 *
 * The actions run through a minimal executor below (the engine's job in production): it proves
 * the planned argv and file operations, not the engine.
 */

const PW_ENV = 'RA_AOF_TEST_PW';
const PASSWORD = 'aof-test-password';
let baseDir: string;
let group: SandboxGroup;
let source: RedisSandbox;
let target: RedisSandbox;
let backupRdb: string;
const env: NodeJS.ProcessEnv = { ...process.env, [PW_ENV]: PASSWORD };

function childEnv(cmd: PlannedCommand): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [child, op] of Object.entries(cmd.envFrom ?? {})) {
    const v = env[op];
    if (v !== undefined) out[child] = v;
  }
  return out;
}

async function runCommand(cmd: PlannedCommand): Promise<number> {
  const [file, ...args] = cmd.argv;
  const r = await execa(file!, args, { env: childEnv(cmd), reject: false, timeout: (cmd.timeoutSeconds ?? 60) * 1000 });
  if (r.exitCode === undefined) throw new Error(`${cmd.argv.join(' ')} did not run: ${r.message}`);
  return r.exitCode;
}

function tcpUp(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => (s.destroy(), resolve(false)));
  });
}

async function until(what: string, timeoutSeconds: number, ok: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + timeoutSeconds * 1000;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await sleep(50);
  }
}

/** A minimal executor of planned actions (host only). */
async function execute(action: PlannedAction, recipe: LoadedRecipe): Promise<void> {
  switch (action.type) {
    case 'exec': {
      const code = await runCommand(action);
      if (!(action.okExitCodes ?? [0]).includes(code)) throw new Error(`${action.purpose}: ${action.argv.join(' ')} exited ${code}`);
      return;
    }
    case 'wait-command':
      return until(action.purpose, action.timeoutSeconds, async () => {
        const code = await runCommand(action.command);
        return action.untilExit === 'zero' ? code === 0 : code !== 0;
      });
    case 'wait-tcp':
      return until(
        action.purpose,
        action.timeoutSeconds,
        async () => (await tcpUp(action.host, action.port)) === (action.until !== 'down'),
      );
    case 'move':
      if (!existsSync(action.from)) {
        if (action.ifExists) return;
        throw new Error(`${action.from} does not exist`);
      }
      if (existsSync(action.to)) {
        if (!action.displaceTo) throw new Error(`${action.to} exists`);
        await rename(action.to, action.displaceTo);
      }
      return rename(action.from, action.to);
    case 'copy-file':
      return copyFile(action.from, action.to);
    case 'install-aof': {
      // The engine builds it in a private staging dir; here only the resulting layout matters.
      const tmp = `${action.dir}.tmp`;
      await mkdir(tmp);
      await copyFile(action.from, join(tmp, action.base));
      await writeFile(join(tmp, action.manifest), `file ${action.base} seq 1 type b\n`);
      return rename(tmp, action.dir);
    }
    case 'check': {
      const r = await runCheck(action.check, { recipe, env });
      if (!r.ok) throw new Error(`${action.check.name}: ${r.detail}`);
      return;
    }
    case 'remove':
      // The engine removes only what matches the recorded identity; here, what the plan names.
      for (const p of action.paths) await rm(p.path, { recursive: true, force: true });
      return;
    case 'note':
    case 'record-identity':
      // Identity records feed the engine's undo-by-identity checks (test/unit/undo-identity.test.ts,
      // safety-copies.test.ts); here only the Redis layout the plan builds is under test.
      return;
    default:
      throw new Error(`not supported here: ${action.type}`);
  }
}

async function runSteps(plan: Plan, ids: string[], recipe: LoadedRecipe): Promise<void> {
  for (const id of ids) {
    const step = plan.steps.find((s) => s.id === id);
    if (!step) throw new Error(`no step ${id}`);
    for (const a of step.actions) await execute(a, recipe);
  }
}

async function runUndo(plan: Plan, ids: string[], recipe: LoadedRecipe): Promise<void> {
  for (const id of [...ids].reverse()) {
    const step = plan.steps.find((s) => s.id === id);
    for (const a of step?.undo?.actions ?? []) await execute(a, recipe);
  }
}

function recipeFor(r: RedisSandbox): LoadedRecipe {
  return {
    recipe: recipeSchema.parse({
      name: 'aof-test',
      backups: { root: baseDir },
      components: {
        redis: {
          host: r.host,
          port: r.port,
          passwordEnv: PW_ENV,
          service: {
            stop: serviceCtlArgv('stop', r.spec),
            start: serviceCtlArgv('start', r.spec),
            status: serviceCtlArgv('status', r.spec),
            timeoutSeconds: 30,
          },
        },
      },
    }),
    file: '<inline>',
    digest: 'test',
  };
}

function setFor(rdb: string): BackupSet {
  const size = statSync(rdb).size;
  return {
    id: 'aof-set',
    layout: 'flat',
    root: baseDir,
    location: baseDir,
    time: '2026-01-18T01:45:13Z',
    timeSource: 'name',
    components: [{ kind: 'redis', format: 'redis-rdb', path: rdb, size, checksum: 'absent' }],
    metadata: {},
    warnings: [],
    totalSize: size,
  };
}

async function keys(r: RedisSandbox): Promise<string[]> {
  return (await r.cli(['KEYS', '*'])).split('\n').filter(Boolean).sort();
}

beforeAll(async () => {
  baseDir = mkdtempSync(join(tmpdir(), 'ra-aof-test-'));
  group = new SandboxGroup({ baseDir });
  [source, target] = await Promise.all([
    group.redis({ password: PASSWORD, save: '' }),
    group.redis({ appendonly: true, password: PASSWORD }),
  ]);
  await source.commands([
    ['SET', 'restored:a', '1'],
    ['RPUSH', 'restored:list', 'x', 'y', 'z'],
    ['HSET', 'restored:hash', 'f', 'v'],
  ]);
  await source.command(['SET', 'restored:other-db', 'q'], 2);
  await source.bgsave();
  backupRdb = join(baseDir, 'backup.rdb');
  await copyFile(source.rdbPath, backupRdb);
  // The target's current data lives only in its AOF (appendonly yes).
  await target.command(['SET', 'previous:key', 'keep me']);
}, 120_000);

afterAll(async () => {
  await group?.stopAll();
  rmSync(baseDir, { recursive: true, force: true });
});

describe('Redis 7 with appendonly yes: the backup RDB installed as the AOF base', () => {
  const lane = ['redis:stop', 'redis:safety-copy', 'redis:place', 'redis:start', 'redis:verify-keys'];

  it('restores the backup keys, keeps the AOF live, and the undo brings the previous data back', async () => {
    const recipe = recipeFor(target);
    const set = setFor(backupRdb);
    const facts = await probeFacts(recipe, set, undefined, { env });
    expect(facts.redis).toEqual(expect.objectContaining({ source: 'server', appendonly: true, versionMajor: 7, backupKeys: 4 }));
    const plan = buildPlan({
      recipe,
      set,
      facts,
      options: resolvePlanOptions(recipe.recipe, { jobs: 1 }, 1),
      mode: 'restore',
      now: new Date('2026-02-01T00:00:00Z'),
    });

    await runSteps(plan, lane, recipe);

    // The manifest Redis 7.0.15 accepted, in the format the plan wrote.
    const manifest = await readFile(join(target.aofDir, 'appendonly.aof.manifest'), 'utf8');
    expect(manifest.split('\n')[0]).toBe('file appendonly.aof.1.base.rdb seq 1 type b');
    expect(await keys(target)).toEqual(['restored:a', 'restored:hash', 'restored:list']);
    expect(await target.cli(['GET', 'restored:other-db'], 2)).toBe('q');
    expect(await target.cli(['LRANGE', 'restored:list', '0', '-1'])).toBe('x\ny\nz');
    const persistence = await target.cli(['INFO', 'persistence']);
    expect(persistence).toMatch(/aof_enabled:1/);
    expect(persistence).toMatch(/loading:0/);
    // The previous files are kept aside.
    const data = await readdir(target.dir);
    expect(data).toContain('appendonlydir.pre_restore_20260201T000000Z');

    // Writes after the restore go to the AOF and survive a restart on top of the restored base.
    await target.command(['SET', 'after:restore', 'yes']);
    await target.stop();
    await target.start();
    expect(await keys(target)).toEqual(['after:restore', 'restored:a', 'restored:hash', 'restored:list']);

    // Undo in reverse: stop, remove the restored files, put the previous ones back, start.
    await runUndo(plan, lane, recipe);
    expect(await keys(target)).toEqual(['previous:key']);
    expect(await target.cli(['GET', 'previous:key'])).toBe('keep me');
    expect((await target.cli(['INFO', 'persistence'])).match(/aof_enabled:1/)).toBeTruthy();
  }, 180_000);

  it('a naive copy of only dump.rdb is ignored while appendonly is on (why the AOF base is needed)', async () => {
    await target.stop();
    await copyFile(backupRdb, target.rdbPath);
    await target.start();
    expect(await keys(target)).toEqual(['previous:key']);
    const { stdout } = await execa('redis-check-rdb', [backupRdb], { reject: false });
    expect(stdout).toMatch(/4 keys read/);
  });
});
