import { existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { chmod, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  backupMetachat,
  fingerprintPostgres,
  fingerprintRedis,
  SandboxGroup,
  seedPostgres,
  seedRedis,
  type PostgresFingerprint,
  type PostgresSandbox,
  type RedisFingerprint,
  type RedisSandbox,
} from '../../source/sandbox/index.js';
import { cliBin } from '../support/cli.js';

/**
 * Issue 11, signals wired for real: the built CLI, real PostgreSQL and Redis. Windows are made
 * deterministic by holds, not by timing: the recipe's PostgreSQL bin directory has a pg_restore
 * and a psql that wait while a hold file exists (and say so in a file), so a signal lands inside
 * the deep verification (pg_restore --list) or the probe (psql); a health check that never ends
 * keeps the run in its health phase; the application's start (the rollback's last undo) waits on a
 * hold, so a second Ctrl-C 0.2 s after the first lands inside the rollback.
 */

const DB = 'sigdb';

interface Ended {
  exitCode: number | undefined;
  signal?: string | undefined;
  stdout: string;
  stderr: string;
}

describe('signals: Ctrl-C, SIGTERM and SIGHUP from the first line of restore', () => {
  let base: string;
  let group: SandboxGroup;
  let pg: PostgresSandbox;
  let redis: RedisSandbox;
  let env: NodeJS.ProcessEnv;
  let recipe: string;
  let setId: string;
  let bin: string;
  let serviceCtlArgv: (action: 'start' | 'stop' | 'status', spec: string) => string[];
  const hold = (name: string): string => join(base, `hold-${name}`);
  const waiting = (name: string): string => join(base, `waiting-${name}`);
  const appRunning = (): string => join(base, 'app.running');
  const show = (r: Ended): string => `exit ${r.exitCode} ${r.signal ?? ''}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
  const lockDir = (): string => join(base, 'locks');

  function cli(args: string[]): ResultPromise {
    return execa(process.execPath, [bin, ...args], { env, reject: false, cwd: base, stdin: 'ignore', buffer: true });
  }
  async function ended(p: ResultPromise): Promise<Ended> {
    const r = await p;
    return { exitCode: r.exitCode, signal: r.signal, stdout: String(r.stdout), stderr: String(r.stderr) };
  }
  async function until(what: string, test: () => boolean | Promise<boolean>, child?: { exited: boolean }): Promise<void> {
    for (;;) {
      if (await test()) return;
      if (child?.exited) throw new Error(`the CLI ended before ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  /** A running CLI with its stderr so far. */
  function start(args: string[]): { p: ResultPromise; stderr: () => string; state: { exited: boolean } } {
    const p = cli(args);
    let err = '';
    p.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    const state = { exited: false };
    void p.finally(() => (state.exited = true));
    return { p, stderr: () => err, state };
  }

  async function preRestore(tag: string): Promise<{ pg: PostgresFingerprint; redis: RedisFingerprint }> {
    for (const name of await aside()) await pg.psql(`DROP DATABASE "${name}"`);
    await pg.psql(
      `CREATE TABLE IF NOT EXISTS public.pre_restore_marker (tag text); INSERT INTO public.pre_restore_marker VALUES ('${tag}')`,
      DB,
    );
    await redis.command(['SET', 'pre:restore:marker', tag]);
    return { pg: await fingerprintPostgres(pg, DB), redis: await fingerprintRedis(redis) };
  }
  async function aside(): Promise<string[]> {
    const out = await pg.psql(
      `SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database WHERE datname LIKE '${DB}\\_\\_pre\\_restore\\_%'`,
    );
    return out.trim() === '' ? [] : out.trim().split(',');
  }
  async function expectNothingLeft(what: string): Promise<void> {
    expect(
      (await readdir(lockDir()).catch(() => [] as string[])).filter((f) => f.endsWith('.lock')),
      what,
    ).toEqual([]);
    const none = await ended(cli(['recover', '--recipe', recipe]));
    expect(none.stdout, `${what}\n${show(none)}`).toMatch(/No unfinished restore/);
  }

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'ra-signals-it-'));
    bin = cliBin();
    ({ serviceCtlArgv } = (await import(join(dirname(bin), 'sandbox', 'service-ctl.js'))) as { serviceCtlArgv: typeof serviceCtlArgv });
    group = new SandboxGroup();
    [pg, redis] = await Promise.all([group.postgres(), group.redis()]);
    await Promise.all([seedPostgres(pg, DB, { rows: 20 }), seedRedis(redis)]);
    const root = join(base, 'backups');
    const taken = await backupMetachat({ pg, db: DB, redis }, root, { time: new Date(Date.now() - 600_000) });
    setId = taken.timestamp;

    // The PostgreSQL tools, with a pg_restore and a psql that wait while their hold file exists.
    const pgBin = join(base, 'pgbin');
    await mkdir(pgBin);
    for (const tool of await readdir(pg.binDir)) {
      if (tool === 'pg_restore' || tool === 'psql') {
        const script = `#!/bin/sh\nif [ -e '${hold(tool)}' ]; then\n  : > '${waiting(tool)}'\n  while [ -e '${hold(tool)}' ]; do sleep 0.05; done\nfi\nexec '${join(pg.binDir, tool)}' "$@"\n`;
        await writeFile(join(pgBin, tool), script);
        await chmod(join(pgBin, tool), 0o755);
      } else symlinkSync(join(pg.binDir, tool), join(pgBin, tool));
    }

    // The application: its start waits while hold-start exists; its status says whether it runs.
    const node = process.execPath;
    const startApp = `const fs=require('fs');const go=()=>{if(fs.existsSync(${JSON.stringify(hold('start'))})){fs.writeFileSync(${JSON.stringify(waiting('start'))},'');return setTimeout(go,50)}fs.writeFileSync(${JSON.stringify(appRunning())},'')};go()`;
    // The health check that keeps the run in its health phase until it is interrupted.
    const slowCheck = `require('fs').writeFileSync(${JSON.stringify(waiting('check'))},'');setInterval(()=>{},1000)`;
    recipe = join(base, 'sig.yaml');
    await writeFile(
      recipe,
      JSON.stringify({
        name: 'sig',
        backups: { root, layout: 'metachat', database: DB },
        components: {
          postgres: {
            host: pg.host,
            port: pg.port,
            user: 'postgres',
            passwordEnv: 'IT_PG_PASSWORD',
            database: DB,
            owner: 'app_owner',
            bin: pgBin,
          },
          redis: {
            host: redis.host,
            port: redis.port,
            service: {
              stop: serviceCtlArgv('stop', redis.spec),
              start: serviceCtlArgv('start', redis.spec),
              status: serviceCtlArgv('status', redis.spec),
              timeoutSeconds: 30,
            },
          },
        },
        services: [
          {
            name: 'app',
            stop: [node, '-e', `require('fs').rmSync(${JSON.stringify(appRunning())},{force:true})`],
            start: [node, '-e', startApp],
            status: [node, '-e', `process.exit(require('fs').existsSync(${JSON.stringify(appRunning())})?0:1)`],
            timeoutSeconds: 120,
          },
        ],
        checks: [{ name: 'slow check', command: { argv: [node, '-e', slowCheck] }, timeoutSeconds: 300, retries: 0 }],
        evidence: { dir: join(base, 'evidence') },
      }),
    );
    await writeFile(appRunning(), '');
    env = {
      ...process.env,
      IT_PG_PASSWORD: pg.password,
      XDG_RUNTIME_DIR: join(base, 'run'),
      XDG_STATE_HOME: join(base, 'state'),
      RESTORE_ASSISTANT_STATE_DIR: join(base, 'state'),
      RESTORE_ASSISTANT_LOCK_DIR: lockDir(),
      NO_COLOR: '1',
    };
    delete env['CI'];
  }, 240_000);

  afterAll(async () => {
    await group?.stopAll();
    if (base) rmSync(base, { recursive: true, force: true });
  });

  for (const [signal, name] of [
    ['SIGINT', 'Ctrl-C'],
    ['SIGTERM', 'SIGTERM'],
  ] as const) {
    it(`${signal} during the deep verification, then during the probe of the next restore (not refused): cancelled (exit 0), no lock left, nothing touched`, async () => {
      const pre = await preRestore(`verify-${signal}`);
      for (const [tool, during] of [
        ['pg_restore', `the verification of backup set ${setId}`],
        ['psql', 'the probing of the targets'],
      ] as const) {
        await writeFile(hold(tool), '');
        await rm(waiting(tool), { force: true });
        const child = start(['restore', '--recipe', recipe, '--backup', setId, '--yes']);
        await until(`${tool} waits`, () => existsSync(waiting(tool)), child.state);
        child.p.kill(signal);
        const r = await ended(child.p);
        await rm(hold(tool), { force: true });
        const what = `${signal} while ${tool} runs\n${show(r)}`;
        expect(r.signal, what).toBeUndefined();
        expect(r.exitCode, what).toBe(0);
        expect(r.stderr, what).toContain(`${name} received: cancelling the restore; nothing has been touched.`);
        expect(r.stderr, what).toContain(`${name} received during ${during}: cancelled before anything was touched.`);
        expect(r.stderr, what).toContain('Nothing was touched; the locks it took are released.');
        expect(r.stderr, what).not.toMatch(/Internal error/);
        expect(await fingerprintPostgres(pg, DB), what).toEqual(pre.pg);
        expect(await fingerprintRedis(redis), what).toEqual(pre.redis);
        expect(await aside(), what).toEqual([]);
        await expectNothingLeft(what);
      }
    }, 180_000);
  }

  it('double Ctrl-C 0.2 s apart during a run: the second is absorbed, the rollback completes (exit 130), the targets hold their pre-restore data, the state lines are what a live check finds', async () => {
    const pre = await preRestore('double');
    await rm(waiting('check'), { force: true });
    await rm(waiting('start'), { force: true });
    const child = start(['restore', '--recipe', recipe, '--backup', setId, '--yes', '--quick-verify', '--no-parallel']);
    // The run is in its health phase: everything was replaced and started again.
    await until('the health check runs', () => existsSync(waiting('check')), child.state);
    // The rollback's last undo (starting the app again) waits until the second Ctrl-C has been seen.
    await writeFile(hold('start'), '');
    child.p.kill('SIGINT');
    await new Promise((r) => setTimeout(r, 200));
    child.p.kill('SIGINT');
    await until(
      'the second Ctrl-C is absorbed',
      () => child.stderr().includes('Ctrl-C received again within 3 s: ignored, the rollback goes on.'),
      child.state,
    );
    await rm(hold('start'), { force: true });
    const r = await ended(child.p);
    expect(r.exitCode, show(r)).toBe(130);
    expect(r.stderr).toContain('One more stops waiting: the rollback is abandoned');
    expect(r.stdout, show(r)).toMatch(/Result: interrupted and rolled back \(exit 130\)/);
    expect(await fingerprintPostgres(pg, DB), show(r)).toEqual(pre.pg);
    expect(await fingerprintRedis(redis), show(r)).toEqual(pre.redis);
    expect(await aside(), show(r)).toEqual([]);
    expect(existsSync(appRunning()), show(r)).toBe(true);

    // The summary's state lines are the live state: the database's OID, Redis's key count, the app running.
    const state = r.stdout.slice(r.stdout.indexOf('State:'), r.stdout.indexOf('Next steps:'));
    const oid = (await pg.psql(`SELECT oid FROM pg_database WHERE datname = '${DB}'`)).trim();
    const keys = String(await redis.command(['DBSIZE'])).trim();
    expect(state, show(r)).toContain(`PostgreSQL ${DB} on ${pg.host}:${pg.port}: database ${DB}: exists (oid ${oid})`);
    expect(state, show(r)).toMatch(/\(the pre-incident copy\): absent/);
    expect(state, show(r)).toContain(`Redis ${redis.host}:${redis.port}: running, ${keys} keys`);
    expect(state, show(r)).toContain('app: running (checked live)');
    expect(state).not.toMatch(/NOT back/);
    await expectNothingLeft(show(r));
  }, 180_000);
});
