import { mkdtempSync, rmSync } from 'node:fs';
import { copyFile, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  backupMetachat,
  backupStoryPortal,
  fingerprintPostgres,
  fingerprintPrometheus,
  fingerprintRedis,
  freePort,
  SandboxGroup,
  seedPostgres,
  seedRedis,
  writeServiceSpec,
  type PostgresFingerprint,
  type PostgresSandbox,
  type PrometheusFingerprint,
  type PrometheusSandbox,
  type RedisFingerprint,
  type RedisSandbox,
  type StoryPortalBackup,
} from '../../source/sandbox/index.js';
import { cliBin } from '../support/cli.js';

/**
 * The restore command end to end: real PostgreSQL, Redis (RDB and AOF) and Prometheus, a real
 * application service (a node HTTP server under service-ctl), real backups in both audited
 * layouts, the built CLI (`node dist/bin.js restore ...`). No mocks.
 */

/** The CLI built once for the test run (test/global-setup.ts); service-ctl beside it. */
let bin: string;
const DB = 'storydb';
const CHAT_DB = 'metachat';

interface CliResult {
  exitCode: number | undefined;
  stdout: string;
  stderr: string;
}

describe('restore: real services, real backups, the real CLI', () => {
  let base: string;
  let group: SandboxGroup;
  let pg: PostgresSandbox;
  let redis: RedisSandbox;
  let redisAof: RedisSandbox;
  let prom: PrometheusSandbox;
  let appPort: number;
  let appSpec: string;
  let spRoot: string;
  let mcRoot: string;
  let set: StoryPortalBackup;
  let promT: number;
  let backupPg: PostgresFingerprint;
  let backupRedis: RedisFingerprint;
  let backupProm: PrometheusFingerprint;
  let backupChat: PostgresFingerprint;
  let backupRedisAof: RedisFingerprint;
  let env: NodeJS.ProcessEnv;

  /** service-ctl from dist (plain node, no TypeScript loader): the argv a recipe names. */
  let serviceCtlArgv: (action: 'start' | 'stop' | 'status', spec: string) => string[];
  const ctl = (action: 'start' | 'stop' | 'status', spec: string): string[] => serviceCtlArgv(action, spec);

  async function writeRecipe(name: string, body: Record<string, unknown>): Promise<string> {
    const file = join(base, `${name}.yaml`);
    // JSON is YAML.
    await writeFile(file, JSON.stringify({ name, ...body }, null, 2));
    return file;
  }

  function storyRecipe(name: string, checks: unknown[] = []): Promise<string> {
    return writeRecipe(name, {
      backups: { root: spRoot, layout: 'story-portal' },
      components: {
        postgres: {
          host: pg.host,
          port: pg.port,
          user: 'postgres',
          passwordEnv: 'IT_PG_PASSWORD',
          database: DB,
          owner: 'app_owner',
          bin: pg.binDir,
        },
        redis: {
          host: redis.host,
          port: redis.port,
          service: {
            stop: ctl('stop', redis.spec),
            start: ctl('start', redis.spec),
            status: ctl('status', redis.spec),
            timeoutSeconds: 30,
          },
        },
        prometheus: {
          url: prom.url,
          dataDir: prom.dataDir,
          service: { stop: ctl('stop', prom.spec), start: ctl('start', prom.spec), status: ctl('status', prom.spec), timeoutSeconds: 60 },
        },
      },
      services: [
        { name: 'app', stop: ctl('stop', appSpec), start: ctl('start', appSpec), status: ctl('status', appSpec), timeoutSeconds: 30 },
      ],
      checks: [
        { name: 'app answers', http: { url: `http://127.0.0.1:${appPort}/health`, status: 200 }, retries: 3, intervalSeconds: 0.5 },
        { name: 'users restored', sql: { query: 'SELECT count(*) FROM app.users', minRows: 1 }, retries: 1, intervalSeconds: 0.5 },
        ...checks,
      ],
      objectives: { rtoMinutes: 30, rpoMinutes: 1440 },
      evidence: { dir: join(base, 'evidence') },
    });
  }

  function run(args: string[], extraEnv: NodeJS.ProcessEnv = {}): ResultPromise {
    return execa(process.execPath, [bin, ...args], { env: { ...env, ...extraEnv }, reject: false, cwd: base, stdin: 'ignore' });
  }

  async function restore(args: string[]): Promise<CliResult> {
    const r = await run(['restore', ...args]);
    return { exitCode: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr) };
  }

  const show = (r: CliResult): string => `exit ${r.exitCode}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

  async function appAnswers(): Promise<boolean> {
    try {
      const res = await fetch(`http://127.0.0.1:${appPort}/health`, { signal: AbortSignal.timeout(2000) });
      return res.status === 200;
    } catch {
      return false;
    }
  }

  async function servicesRun(): Promise<void> {
    expect(await appAnswers()).toBe(true);
    expect(await redis.isRunning()).toBe(true);
    expect(String(await redis.command(['PING']))).toBe('PONG');
    expect(await prom.isRunning()).toBe(true);
    expect((await fetch(`${prom.url}/-/ready`)).status).toBe(200);
  }

  /** A copy of the story-portal set under a new id (a later time), with its PostgreSQL dump rewritten. */
  async function variantSet(offsetSeconds: number, rewrite: (sql: Buffer) => Buffer): Promise<string> {
    const time = new Date(Date.parse(`${set.id.slice(0, 10)}T${set.id.slice(11).replace(/-/g, ':')}Z`) + offsetSeconds * 1000);
    const p = (n: number): string => String(n).padStart(2, '0');
    const id = `${time.getUTCFullYear()}-${p(time.getUTCMonth() + 1)}-${p(time.getUTCDate())}_${p(time.getUTCHours())}-${p(time.getUTCMinutes())}-${p(time.getUTCSeconds())}`;
    const dir = join(spRoot, id);
    await mkdir(dir);
    for (const f of await readdir(set.dir))
      if (f !== 'postgres.sql.gz' && f !== 'metadata.txt') await copyFile(join(set.dir, f), join(dir, f));
    await writeFile(
      join(dir, 'metadata.txt'),
      (await readFile(join(set.dir, 'metadata.txt'), 'utf8')).replace(/^Backup Date: .*$/m, `Backup Date: ${id}`),
    );
    await writeFile(join(dir, 'postgres.sql.gz'), rewrite(await readFile(join(set.dir, 'postgres.sql.gz'))));
    return id;
  }

  async function markPreRestoreState(tag: string): Promise<void> {
    await pg.psql(
      `CREATE TABLE IF NOT EXISTS public.pre_restore_marker (tag text); INSERT INTO public.pre_restore_marker VALUES ('${tag}')`,
      DB,
    );
    await redis.command(['SET', 'pre:restore:marker', tag]);
  }

  async function expectPreRestoreState(tag: string): Promise<void> {
    expect(await pg.psql("SELECT string_agg(tag, ',') FROM public.pre_restore_marker", DB)).toContain(tag);
    expect(String(await redis.command(['GET', 'pre:restore:marker']))).toBe(tag);
    // No database left renamed aside: the rollback renamed it back.
    expect(await pg.psql(`SELECT count(*) FROM pg_database WHERE datname LIKE '${DB}\\_\\_pre\\_restore\\_%'`)).toBe('0');
  }

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'ra-restore-it-'));
    // Never a build into the checkout's dist/: two files doing that at once rewrite the
    // service-ctl.js a running restore is about to execute (a Redis that was never started again).
    bin = cliBin();
    ({ serviceCtlArgv } = (await import(join(dirname(bin), 'sandbox', 'service-ctl.js'))) as { serviceCtlArgv: typeof serviceCtlArgv });
    group = new SandboxGroup();
    [pg, redis, redisAof, prom] = await Promise.all([
      group.postgres(),
      group.redis(),
      group.redis({ appendonly: true }),
      group.prometheus(),
    ]);
    appPort = await freePort();
    appSpec = join(base, 'app.json');
    await writeServiceSpec(appSpec, {
      name: 'app',
      argv: [process.execPath, '-e', `require('http').createServer((q, s) => { s.end('ok') }).listen(${appPort}, '127.0.0.1')`],
      pidFile: join(base, 'app.pid'),
      logFile: join(base, 'app.log'),
      ready: { http: { url: `http://127.0.0.1:${appPort}/health` } },
    });
    const [file, ...args] = ctl('start', appSpec);
    await execa(file ?? process.execPath, args);
    // The two PostgreSQL seeds share cluster-wide roles: one after the other.
    await Promise.all([
      (async () => {
        await seedPostgres(pg, DB, { rows: 100 });
        await seedPostgres(pg, CHAT_DB, { rows: 50 });
      })(),
      seedRedis(redis),
      seedRedis(redisAof),
    ]);
    await prom.waitForSamples(6);
    promT = Math.floor(Date.now() / 1000) - 1;

    spRoot = join(base, 'story-portal-backups');
    mcRoot = join(base, 'metachat-backups');
    // Prometheus only has samples from the last seconds: the backup is "now" (its recorded time
    // must have samples before it, as the restore's series check looks there).
    const backupTime = new Date();
    set = await backupStoryPortal({ pg, db: DB, redis, prom }, spRoot, { time: backupTime });
    await backupMetachat({ pg, db: CHAT_DB, redis: redisAof }, mcRoot, { time: backupTime });
    [backupPg, backupRedis, backupProm, backupChat, backupRedisAof] = await Promise.all([
      fingerprintPostgres(pg, DB),
      fingerprintRedis(redis),
      fingerprintPrometheus(prom, promT),
      fingerprintPostgres(pg, CHAT_DB),
      fingerprintRedis(redisAof),
    ]);
    env = {
      ...process.env,
      IT_PG_PASSWORD: pg.password,
      XDG_RUNTIME_DIR: join(base, 'run'),
      XDG_STATE_HOME: join(base, 'state'),
      NO_COLOR: '1',
    };
    delete env['CI'];
  }, 240_000);

  afterAll(async () => {
    if (appSpec) {
      const [file, ...args] = ctl('stop', appSpec);
      await execa(file ?? process.execPath, args, { reject: false });
    }
    await group?.stopAll();
    if (base) rmSync(base, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
  });

  it('restores a wrecked world from the story-portal layout (plain .sql.gz, RDB, Prometheus tarball) and proves the data equals the backup', async () => {
    // Wreck everything.
    await pg.psql('DROP TABLE app.comments; UPDATE app.users SET karma = -1', DB);
    await redis.command(['FLUSHALL']);
    await prom.stop();
    await rm(prom.dataDir, { recursive: true, force: true });
    await mkdir(prom.dataDir);
    await prom.start();
    expect(await fingerprintPostgres(pg, DB)).not.toEqual(backupPg);

    const recipe = await storyRecipe('it-story');
    const r = await restore(['--recipe', recipe, '--backup', 'latest', '--yes']);
    expect(r.exitCode, show(r)).toBe(0);
    expect(r.stdout).toMatch(/Result: restored and healthy \(exit 0\)/);
    expect(r.stdout).toMatch(/RTO: .+ \(target .+: met\)/);
    expect(r.stdout).toMatch(/RPO: .+ of data lost at most \(target .+: met\)/);
    expect(r.stdout).toContain(`restored from ${set.id}`);
    expect(r.stderr).toMatch(/\d\d:\d\d:\d\d ✔ .*restored|\d\d:\d\d:\d\d ✔ /);
    // The closing block ends stdout and report.md, the same text; its Next command works when pasted.
    const closing = r.stdout.slice(r.stdout.lastIndexOf('----- restore-assistant restore of')).trimEnd();
    expect(closing).toMatch(/^Verdict: +RESTORED and healthy \(exit 0\)$/m);
    expect(closing).toMatch(new RegExp(`^Set: +${set.id}, taken `, 'm'));
    expect(closing).toMatch(/^RTO: +.+ from confirm to healthy \(target .+: met\)$/m);
    expect(closing).toMatch(/^Health checks: +(\d+) of \1 passed/m);
    expect(closing).toMatch(/^Safety copies: +.*__pre_restore_/m);
    const closingDir = /^Evidence: +(\S+)$/m.exec(closing)?.[1] ?? '';
    const reportMd = await readFile(join(closingDir, 'report.md'), 'utf8');
    expect(reportMd).toContain(closing);
    // Issue 14: the summary and report.md name the critical path; the health checks end it.
    expect(r.stdout).toMatch(
      /^Critical path: .+, .+ of .+ \(\d+%\); (it ended .+ after the last step beside it \(.+\)|nothing ran beside it)$/m,
    );
    const section = reportMd.slice(reportMd.indexOf('## Critical path'));
    expect(section, reportMd).toMatch(/^## Critical path\n\nLong pole: .+\.\n/);
    expect(section.split('\n\n')[2]?.trimEnd().split('\n').at(-1)).toMatch(/^\| Run health checks \| \+/);
    const nextLine = /^Next: +restore-assistant (.+)$/m.exec(closing)?.[1] ?? '';
    expect(nextLine).toBe(`evidence verify ${closingDir}`);
    expect((await run(['evidence', 'verify', closingDir])).exitCode).toBe(0);

    expect(await fingerprintPostgres(pg, DB)).toEqual(backupPg);
    expect(await fingerprintRedis(redis)).toEqual(backupRedis);
    expect(await fingerprintPrometheus(prom, promT)).toEqual(backupProm);
    await servicesRun();
    // The previous database was kept aside.
    expect(await pg.psql(`SELECT count(*) FROM pg_database WHERE datname LIKE '${DB}__pre_restore_%'`)).toBe('1');
    // The summary says how to find and drop the kept copies; the pasted list command lists that database.
    const listCopies = /`restore-assistant (safety-copies --recipe \S+)` lists them/.exec(r.stdout)?.[1];
    expect(listCopies, r.stdout).toBe(`safety-copies --recipe ${recipe}`);
    const listed = await run([...listCopies!.split(' '), '--json']);
    expect(listed.exitCode, `${String(listed.stdout)}${String(listed.stderr)}`).toBe(0);
    expect(listed.stdout).toMatch(new RegExp(`"id": ?"${DB}__pre_restore_`));

    // --json: the summary as JSON; evidence is sealed.
    const j = await restore(['--recipe', recipe, '--backup', set.id, '--yes', '--json', '--drop-safety-copies']);
    expect(j.exitCode, show(j)).toBe(0);
    const summary = JSON.parse(j.stdout) as {
      outcome: string;
      exitCode: number;
      evidence: string;
      rtoMs: number;
      rpoMs: number;
      state: string[];
    };
    expect(summary).toMatchObject({ outcome: 'restored', exitCode: 0 });
    expect(summary.rpoMs).toBeGreaterThan(0);
    const ev = await run(['evidence', 'verify', summary.evidence]);
    expect(ev.exitCode, String(ev.stdout) + String(ev.stderr)).toBe(0);
    expect(await fingerprintPostgres(pg, DB)).toEqual(backupPg);
    // The real database password was in the environment of both runs: no evidence file, no output holds it.
    const files = (await readdir(join(base, 'evidence'), { recursive: true, withFileTypes: true })).filter((d) => d.isFile());
    expect(files.length).toBeGreaterThan(4);
    for (const f of files)
      expect((await readFile(join(f.parentPath, f.name), 'utf8')).includes(pg.password), join(f.parentPath, f.name)).toBe(false);
    for (const out of [r.stdout, r.stderr, j.stdout, j.stderr]) expect(out.includes(pg.password)).toBe(false);
    // clean up the aside databases of this test
    for (const name of (await pg.psql(`SELECT string_agg(datname, ' ') FROM pg_database WHERE datname LIKE '${DB}__pre_restore_%'`))
      .split(' ')
      .filter(Boolean)) {
      await pg.psql(`DROP DATABASE "${name}"`);
    }
  });

  it('restores the metachat layout (custom dump with pg_restore -j, RDB) into a Redis with AOF enabled', async () => {
    await pg.psql('TRUNCATE app.comments; DELETE FROM app.stories', CHAT_DB);
    await redisAof.command(['FLUSHALL']);
    await redisAof.command(['SET', 'after:backup', 'x']);
    const recipe = await writeRecipe('it-chat', {
      backups: { root: mcRoot, layout: 'metachat', database: CHAT_DB },
      components: {
        postgres: {
          host: pg.host,
          port: pg.port,
          user: 'postgres',
          passwordEnv: 'IT_PG_PASSWORD',
          database: CHAT_DB,
          owner: 'app_owner',
          bin: pg.binDir,
          jobs: 2,
        },
        redis: {
          host: redisAof.host,
          port: redisAof.port,
          service: { stop: ctl('stop', redisAof.spec), start: ctl('start', redisAof.spec), timeoutSeconds: 30 },
        },
      },
      evidence: { dir: join(base, 'evidence') },
    });
    const r = await restore(['--recipe', recipe, '--yes']);
    expect(r.exitCode, show(r)).toBe(0);
    expect(await fingerprintPostgres(pg, CHAT_DB)).toEqual(backupChat);
    const after = await fingerprintRedis(redisAof);
    expect(after).toEqual(backupRedisAof);
    // AOF is on again and the restored data is what it holds: a restart keeps it.
    expect(String(await redisAof.command(['CONFIG', 'GET', 'appendonly']))).toContain('yes');
    await redisAof.stop();
    await redisAof.start();
    expect(await fingerprintRedis(redisAof)).toEqual(backupRedisAof);
  });

  it('a dump that fails midway (truncated) leaves the pre-restore data intact and services running: exit 1', async () => {
    await markPreRestoreState('truncated-test');
    const id = await variantSet(60, (gz) => gz.subarray(0, Math.floor(gz.length * 0.6)));
    const recipe = await storyRecipe('it-story');
    // By default every byte is verified first: the truncated dump is rejected before anything is touched.
    const rejected = await restore(['--recipe', recipe, '--backup', id, '--yes']);
    expect(rejected.exitCode, show(rejected)).toBe(3);
    expect(rejected.stderr).toMatch(/failed deep verification/);
    await expectPreRestoreState('truncated-test');
    // Forced past verification, it fails midway and is rolled back.
    const r = await restore(['--recipe', recipe, '--backup', id, '--yes', '--force-unverified', 'integration test: truncated on purpose']);
    expect(r.exitCode, show(r)).toBe(1);
    expect(r.stdout).toMatch(/Result: failed and rolled back/);
    expect(r.stdout).toMatch(/decompress|truncated|unexpected end/i);
    await expectPreRestoreState('truncated-test');
    await servicesRun();
  });

  it('SIGINT during the PostgreSQL restore rolls back (exit 130); a second restore on the same target meanwhile is refused (exit 8)', async () => {
    await markPreRestoreState('sigint-test');
    // A dump that takes a while: it sleeps after its first data block.
    const id = await variantSet(120, (gz) => {
      const sql = gunzipSync(gz).toString('utf8');
      const at = sql.indexOf('\n\\.\n') + 4;
      return gzipSync(`${sql.slice(0, at)}SELECT pg_sleep(60);\n${sql.slice(at)}`);
    });
    const recipe = await storyRecipe('it-story');
    const child = run(['restore', '--recipe', recipe, '--backup', id, '--yes']);
    // Wait until the dump's sleep is really running in the server: the restore is mid-way.
    let sleeping = false;
    for (let i = 0; i < 1200 && !sleeping; i++) {
      sleeping = (await pg.psql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(60)%'")) !== '0';
      if (!sleeping) await new Promise((r) => setTimeout(r, 100));
    }
    expect(sleeping).toBe(true);

    const second = await restore(['--recipe', recipe, '--backup', id, '--yes']);
    expect(second.exitCode, show(second)).toBe(8);
    expect(second.stderr + second.stdout).toMatch(/Another restore holds postgres:127\.0\.0\.1:\d+\/storydb/);

    child.kill('SIGINT');
    const r = await child;
    expect(r.exitCode, `${String(r.stdout)}\n${String(r.stderr)}`).toBe(130);
    expect(String(r.stdout)).toMatch(/Result: interrupted and rolled back/);
    await expectPreRestoreState('sigint-test');
    await servicesRun();
  });

  it('a failing health check exits 4 and keeps the restored state; with --rollback-on-unhealthy the pre-restore data comes back (exit 1)', async () => {
    const failing = [{ name: 'impossible', sql: { query: 'SELECT count(*) FROM app.users', expect: '999999' }, retries: 0 }];
    const recipe = await storyRecipe('it-story-unhealthy', failing);

    await markPreRestoreState('unhealthy-keep');
    const kept = await restore(['--recipe', recipe, '--backup', set.id, '--yes']);
    expect(kept.exitCode, show(kept)).toBe(4);
    expect(kept.stdout).toMatch(/Health checks failed: impossible/);
    expect(await fingerprintPostgres(pg, DB)).toEqual(backupPg);
    expect(String(await redis.command(['GET', 'pre:restore:marker']))).not.toBe('unhealthy-keep');
    await servicesRun();

    await markPreRestoreState('unhealthy-rollback');
    const before = await fingerprintPostgres(pg, DB);
    const rolled = await restore(['--recipe', recipe, '--backup', set.id, '--yes', '--rollback-on-unhealthy']);
    expect(rolled.exitCode, show(rolled)).toBe(1);
    expect(await fingerprintPostgres(pg, DB)).toEqual(before);
    expect(String(await redis.command(['GET', 'pre:restore:marker']))).toBe('unhealthy-rollback');
    await servicesRun();
  }, 240_000); // two full restores: 60 s is too tight on a loaded 2-core machine

  it('refuses without --yes when there is no terminal, naming the flag (exit 2)', async () => {
    const recipe = await storyRecipe('it-story');
    const r = await restore(['--recipe', recipe]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('--yes');
  });
});
