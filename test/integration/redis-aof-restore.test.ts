import { mkdtempSync, rmSync } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  backupRedisRdb,
  fingerprintRedis,
  SandboxGroup,
  seedRedis,
  serviceCtlArgv,
  type RedisFingerprint,
  type RedisSandbox,
} from '../../source/sandbox/index.js';
import { runCli, type CliResult } from '../support/cli.js';

/**
 * Issue 11: Redis with `appendonly yes` that is already DOWN when the restore starts (the usual
 * incident state), with a recipe that does not state `appendonly` (like recipes/metachat.yaml).
 * Real redis-server 7, the built CLI. The restore must load the backup's keys (not an empty AOF),
 * and a rollback (a failing health check with --rollback-on-unhealthy) must leave the pre-restore
 * keys, with the AOF directory put back.
 */

describe('Redis appendonly yes, down at the start, recipe silent about appendonly', () => {
  let base: string;
  let group: SandboxGroup;
  let redis: RedisSandbox;
  let backupRoot: string;
  let backup: RedisFingerprint;
  let env: Record<string, string>;

  const show = (r: CliResult): string => `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

  async function recipe(name: string, extra: Record<string, unknown> = {}, checks: unknown[] = []): Promise<string> {
    const file = join(base, `${name}.json`);
    await writeFile(
      file,
      JSON.stringify({
        name,
        backups: { root: backupRoot, layout: 'flat' },
        components: {
          redis: {
            host: redis.host,
            port: redis.port,
            // As recipes/metachat.yaml: dir and dbfilename stated, appendonly not.
            dataDir: redis.dir,
            dbfilename: redis.dbfilename,
            ...extra,
            service: {
              stop: serviceCtlArgv('stop', redis.spec),
              start: serviceCtlArgv('start', redis.spec),
              status: serviceCtlArgv('status', redis.spec),
              timeoutSeconds: 30,
            },
          },
        },
        checks,
        evidence: { dir: join(base, 'evidence', name) },
      }),
    );
    return file;
  }

  /** Pre-restore data: a marker only this state has, then Redis is stopped (the incident). */
  async function preRestore(tag: string): Promise<RedisFingerprint> {
    await redis.start();
    await redis.command(['FLUSHALL']);
    await redis.command(['SET', 'pre:restore:marker', tag]);
    await redis.command(['SET', 'pre:restore:other', 'x']);
    const fp = await fingerprintRedis(redis);
    await redis.stop();
    return fp;
  }

  async function live(): Promise<RedisFingerprint> {
    await redis.start();
    return fingerprintRedis(redis);
  }

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'ra-aof-it-'));
    group = new SandboxGroup();
    redis = await group.redis({ appendonly: true, save: '' });
    await seedRedis(redis);
    backup = await fingerprintRedis(redis);
    backupRoot = join(base, 'backups');
    await mkdir(backupRoot);
    const stamp = new Date(Date.now() - 3_600_000).toISOString().replace(/[-:]/g, '').replace('T', '_').slice(0, 15);
    await backupRedisRdb(redis, join(backupRoot, `redis_${stamp}.rdb`));
    env = { XDG_RUNTIME_DIR: join(base, 'run'), XDG_STATE_HOME: join(base, 'state'), RESTORE_ASSISTANT_STATE_DIR: join(base, 'ra-state') };
  }, 240_000);

  afterAll(async () => {
    await group?.stopAll();
    if (base) rmSync(base, { recursive: true, force: true });
  });

  it('the plan learns appendonly from the appendonlydir in the data dir (not "assuming appendonly no")', async () => {
    await preRestore('plan');
    const r = await runCli(['plan', '--recipe', await recipe('aof-plan'), '--backup', 'latest'], { env });
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout + r.stderr).not.toContain('assuming appendonly no');
    expect(r.stdout).toMatch(/AOF base/);
  }, 120_000);

  it('restores the backup keys (not an empty AOF) and keeps the AOF on', async () => {
    await preRestore('restore');
    const r = await runCli(['restore', '--recipe', await recipe('aof-restore'), '--backup', 'latest', '--yes'], { env });
    expect(r.code, show(r)).toBe(0);
    expect(await live()).toEqual(backup);
    expect(String(await redis.command(['CONFIG', 'GET', 'appendonly']))).toContain('yes');
    await redis.stop();
  }, 240_000);

  it("learns appendonly from the recipe's configFile and rolls back to the pre-restore keys with the AOF dir back", async () => {
    const pre = await preRestore('rollback');
    const keptBefore = (await readdir(redis.dir)).filter((n) => n.includes('_restore_')).sort();
    const failing = [
      {
        name: 'always fails',
        redis: { command: ['GET', 'no:such:key'], expect: 'never' },
        retries: 0,
        intervalSeconds: 0,
        when: ['restore'],
      },
    ];
    const file = await recipe('aof-rollback', { configFile: redis.confPath }, failing);
    const r = await runCli(['restore', '--recipe', file, '--backup', 'latest', '--yes', '--rollback-on-unhealthy'], { env });
    expect(r.code, show(r)).toBe(1);
    expect(r.stdout + r.stderr).not.toContain('assuming appendonly no');
    expect(await live()).toEqual(pre);
    // The copies this run made were put back (earlier runs' copies stay as they were).
    const left = await readdir(redis.dir);
    expect(left.filter((n) => n.includes('_restore_')).sort()).toEqual(keptBefore);
    expect(left).toContain('appendonlydir');
    await redis.stop();
  }, 240_000);
});
