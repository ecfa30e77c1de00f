import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pasteableAction as describeAction } from '../../source/actions/describe.js';
import type { PlannedAction } from '../../source/actions/types.js';
import { executeAction, type ActionContext } from '../../source/engine/actions.js';
import type { EngineEventBody } from '../../source/engine/events.js';
import { createRedactor } from '../../source/exec/redact.js';
import { redisLayout } from '../../source/plan/build.js';
import type { TargetFacts } from '../../source/plan/types.js';
import { redisSchema } from '../../source/recipe/schema.js';
import { DEBIAN_REDIS_CONF, offlineRedisFacts, parseRedisConf, redisConfigFile } from '../../source/targets/redis-config.js';

let dir: string;
let events: EngineEventBody[];

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'redis-aof-unit-'));
  events = [];
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function ctx(): ActionContext {
  return {
    stepId: 's1',
    emit: (e) => events.push(e),
    redact: createRedactor(),
    env: {},
    signal: new AbortController().signal,
    runCheck: async () => ({ ok: true, attempts: 1, detail: 'ok', durationMs: 1 }),
    progressIntervalMs: 0,
  };
}

const svc = { stop: ['systemctl', 'stop', 'redis-server'], start: ['systemctl', 'start', 'redis-server'] };

describe('redis.conf parsing', () => {
  it('reads the restore-relevant settings; the last one wins; quotes and comments as Redis reads them', () => {
    const conf = parseRedisConf(
      [
        '# appendonly yes',
        'appendonly no',
        'dir "/var/lib/red is"',
        "dbfilename 'x.rdb'",
        'APPENDONLY yes',
        'appenddirname aofs',
        'appendfilename "a.aof"',
        'dir relative/',
        'bogus "unbalanced',
      ].join('\n'),
    );
    expect(conf).toEqual({ appendonly: true, dir: '/var/lib/red is', dbfilename: 'x.rdb', appenddirname: 'aofs', appendfilename: 'a.aof' });
    expect(parseRedisConf('port 6379\n')).toEqual({});
  });

  it("uses the recipe's configFile, else Debian's file when the service is Debian's redis-server unit", () => {
    expect(redisConfigFile(redisSchema.parse({ service: svc, configFile: '/etc/x.conf' }))).toBe('/etc/x.conf');
    expect(redisConfigFile(redisSchema.parse({ service: svc }))).toBe(DEBIAN_REDIS_CONF);
    expect(redisConfigFile(redisSchema.parse({ service: { stop: ['svc', 'stop'], start: ['svc', 'start'] } }))).toBeUndefined();
  });

  it('learns from the file and finds an AOF dir in the data dir', async () => {
    const data = path.join(dir, 'data');
    await mkdir(path.join(data, 'appendonlydir'), { recursive: true });
    const conf = path.join(dir, 'redis.conf');
    await writeFile(conf, `dir ${data}\nappendonly yes\n`);
    const t = redisSchema.parse({ service: svc, configFile: conf });
    expect(await offlineRedisFacts(t)).toEqual({ configFile: conf, conf: { dir: data, appendonly: true }, aofFound: true });
    const missing = await offlineRedisFacts(
      redisSchema.parse({ service: svc, configFile: path.join(dir, 'nope.conf'), dataDir: path.join(dir, 'empty') }),
    );
    expect(missing).toEqual({ configFile: path.join(dir, 'nope.conf'), configError: 'it does not exist', conf: {}, aofFound: false });
  });
});

describe('redisLayout: appendonly when the server did not say', () => {
  const base: NonNullable<TargetFacts['redis']> = {
    dir: '/var/lib/redis',
    dbfilename: 'dump.rdb',
    appendonly: false,
    appenddirname: 'appendonlydir',
    appendfilename: 'appendonly.aof',
    source: 'recipe',
    reachable: false,
  };
  const t = redisSchema.parse({ service: svc, dataDir: '/var/lib/redis' });

  it('an AOF dir in the data dir means appendonly yes, never "assuming appendonly no"', () => {
    const { layout, warnings } = redisLayout(t, { redis: { ...base, appendonly: true, appendonlyFrom: 'aof-dir', aofFound: true } });
    expect(layout.appendonly).toBe(true);
    expect(warnings.join('\n')).not.toContain('assuming appendonly no');
    expect(warnings.join('\n')).toContain('an AOF exists');
  });

  it('nothing known: installs the backup both ways', () => {
    const { layout, warnings } = redisLayout(t, { redis: base });
    expect(layout.appendonly).toBe(true);
    expect(warnings.join('\n')).toMatch(/installed as the RDB and as the AOF base/);
    expect(redisLayout(t, {}).layout.appendonly).toBe(true);
  });

  it("the config file's answer wins over the recipe's, with a warning; the server's over both", () => {
    const stated = redisSchema.parse({ service: svc, dataDir: '/var/lib/redis', appendonly: true });
    const fromFile = redisLayout(stated, {
      redis: { ...base, appendonly: false, appendonlyFrom: 'config-file', configFile: '/etc/redis/redis.conf' },
    });
    expect(fromFile.layout.appendonly).toBe(false);
    expect(fromFile.warnings.join('\n')).toContain('/etc/redis/redis.conf says appendonly no, the recipe says yes');
    expect(redisLayout(stated, { redis: { ...base, appendonly: false, source: 'server', reachable: true } }).layout.appendonly).toBe(false);
    expect(redisLayout(stated, { redis: { ...base, appendonly: true, appendonlyFrom: 'recipe' } }).layout.appendonly).toBe(true);
  });
});

describe('install-aof action', () => {
  it('builds the AOF dir in staging and renames it into place; nothing staged is left', async () => {
    const data = path.join(dir, 'data');
    await mkdir(data);
    const rdb = path.join(dir, 'backup.rdb');
    await writeFile(rdb, 'REDIS0011-fake');
    const action: PlannedAction = {
      type: 'install-aof',
      from: rdb,
      dir: path.join(data, 'appendonlydir'),
      base: 'appendonly.aof.1.base.rdb',
      manifest: 'appendonly.aof.manifest',
      purpose: 'x',
    };
    await executeAction(action, ctx());
    expect(readdirSync(path.join(data, 'appendonlydir')).sort()).toEqual(['appendonly.aof.1.base.rdb', 'appendonly.aof.manifest']);
    expect(await readFile(path.join(data, 'appendonlydir', 'appendonly.aof.manifest'), 'utf8')).toBe(
      'file appendonly.aof.1.base.rdb seq 1 type b\n',
    );
    expect(await readFile(path.join(data, 'appendonlydir', 'appendonly.aof.1.base.rdb'), 'utf8')).toBe('REDIS0011-fake');
    expect(lstatSync(path.join(data, 'appendonlydir')).mode & 0o777).toBe(0o755);
    expect(readdirSync(dir).filter((n) => n.includes('.restore-'))).toEqual([]);
    expect(readdirSync(data)).toEqual(['appendonlydir']);
  });

  it('a symlink planted at the AOF dir name is refused and its target is not written', async () => {
    const data = path.join(dir, 'data');
    const victim = path.join(dir, 'victim');
    await mkdir(data);
    await mkdir(victim);
    await symlink(victim, path.join(data, 'appendonlydir'));
    const rdb = path.join(dir, 'backup.rdb');
    await writeFile(rdb, 'x');
    const action: PlannedAction = {
      type: 'install-aof',
      from: rdb,
      dir: path.join(data, 'appendonlydir'),
      base: 'a.1.base.rdb',
      manifest: 'a.manifest',
      purpose: 'x',
    };
    await expect(executeAction(action, ctx())).rejects.toThrow(/already exists/);
    expect(readdirSync(victim)).toEqual([]);
  });

  it('its pasteable form builds the same layout in a shell', async () => {
    const data = path.join(dir, 'data');
    await mkdir(data);
    const rdb = path.join(dir, 'backup.rdb');
    await writeFile(rdb, 'rdb');
    const line = describeAction(
      { type: 'install-aof', from: rdb, dir: path.join(data, 'aof dir'), base: 'a.1.base.rdb', manifest: 'a.manifest', purpose: 'x' },
      createRedactor(),
    );
    execFileSync('sh', ['-c', line]);
    expect(await readFile(path.join(data, 'aof dir', 'a.manifest'), 'utf8')).toBe('file a.1.base.rdb seq 1 type b\n');
  });
});

describe('move with displaceTo', () => {
  it('moves what is at the name out of the way (kept), in the engine and when pasted', async () => {
    for (const how of ['engine', 'pasted'] as const) {
      const d = path.join(dir, how);
      await mkdir(path.join(d, 'appendonlydir.pre'), { recursive: true });
      await writeFile(path.join(d, 'appendonlydir.pre', 'old'), 'old');
      await mkdir(path.join(d, 'appendonlydir'));
      await writeFile(path.join(d, 'appendonlydir', 'new'), 'new');
      const action: PlannedAction = {
        type: 'move',
        from: path.join(d, 'appendonlydir.pre'),
        to: path.join(d, 'appendonlydir'),
        ifExists: true,
        displaceTo: path.join(d, 'appendonlydir.failed'),
        purpose: 'x',
      };
      if (how === 'engine') await executeAction(action, ctx());
      else execFileSync('sh', ['-c', describeAction(action, createRedactor())]);
      expect(readdirSync(path.join(d, 'appendonlydir'))).toEqual(['old']);
      expect(readdirSync(path.join(d, 'appendonlydir.failed'))).toEqual(['new']);
      expect(existsSync(path.join(d, 'appendonlydir.pre'))).toBe(false);
    }
  });
});
