import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
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
  type PrometheusSandbox,
  type RedisFingerprint,
  type RedisSandbox,
  type StoryPortalBackup,
} from '../../source/sandbox/index.js';
import { cliBin } from '../support/cli.js';

/**
 * Issue 11, the kill matrix: a real restore (PostgreSQL, Redis, Prometheus, an application
 * service; the built CLI) is killed with SIGKILL when step N has started, for every step of the
 * plan (the journal's `intent` line says where it is: the file is polled and the kill sent as soon
 * as the line is there), and in the middle of the PostgreSQL data load (the dump sleeps half-way
 * through, after some tables were committed: the kill comes while PostgreSQL runs that sleep).
 * After each kill: `recover --rollback --yes` brings every target back to its pre-restore
 * fingerprint, or `recover --finish --yes` to the backup's; services end running; no lock remains;
 * a new restore before that is refused and sent to recover.
 *
 * To keep the file fast, one set of servers is shared; a PostgreSQL recipe is killed at every one
 * of its step boundaries, recovered by rollback and finish in turn, and both ways at the three
 * steps that replace the data (rename aside, create, load); the full recipe (PostgreSQL, Redis, Prometheus
 * and an application service) is sampled at three boundaries, one per kind of step; the mid-load
 * kill is recovered both ways. SIGHUP (handled: it rolls back as SIGTERM does, session/interrupts.ts)
 * is sampled at two boundaries: the run rolls itself back, exit 130, nothing left to recover.
 */

/** The CLI built once for the test run (test/global-setup.ts); service-ctl beside it. */
let bin: string;
const DB = 'killdb';

interface CliResult {
  exitCode: number | undefined;
  stdout: string;
  stderr: string;
  signal?: string | undefined;
}

describe('kill matrix: a restore killed at every step is recovered (rollback or finish)', () => {
  let base: string;
  let group: SandboxGroup;
  let pg: PostgresSandbox;
  let redis: RedisSandbox;
  let prom: PrometheusSandbox;
  let appPort: number;
  let appSpec: string;
  let spRoot: string;
  let set: StoryPortalBackup;
  let slowSetId: string;
  let backupPg: PostgresFingerprint;
  let backupRedis: RedisFingerprint;
  let backupTime: number;
  let env: NodeJS.ProcessEnv;
  let pgRecipe: string;
  let fullRecipe: string;
  let stepIds: string[];
  let serviceCtlArgv: (action: 'start' | 'stop' | 'status', spec: string) => string[];
  const ctl = (action: 'start' | 'stop' | 'status', spec: string): string[] => serviceCtlArgv(action, spec);
  const show = (r: CliResult): string => `exit ${r.exitCode} ${r.signal ?? ''}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
  const evidenceRoot = (): string => join(base, 'evidence');
  const lockDir = (): string => join(base, 'locks');

  function cli(args: string[]): ResultPromise {
    return execa(process.execPath, [bin, ...args], { env, reject: false, cwd: base, stdin: 'ignore' });
  }
  async function run(args: string[]): Promise<CliResult> {
    const r = await cli(args);
    return { exitCode: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr) };
  }

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

  async function asideDatabases(): Promise<string[]> {
    const out = await pg.psql(
      `SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database WHERE datname LIKE '${DB}\\_\\_pre\\_restore\\_%'`,
    );
    return out.trim() === '' ? [] : out.trim().split(',');
  }

  /** The state before each restore: the backup plus a marker (PostgreSQL, Redis), and Prometheus's own newer samples. */
  async function preRestoreState(
    tag: string,
  ): Promise<{ pg: PostgresFingerprint; redis: RedisFingerprint; promAt: number; prom: unknown }> {
    for (const name of await asideDatabases()) await pg.psql(`DROP DATABASE "${name}"`);
    await pg.psql(
      `CREATE TABLE IF NOT EXISTS public.pre_restore_marker (tag text); INSERT INTO public.pre_restore_marker VALUES ('${tag}')`,
      DB,
    );
    await redis.command(['SET', 'pre:restore:marker', tag]);
    await prom.waitForSamples(2);
    const promAt = Math.floor(Date.now() / 1000) - 1;
    return {
      pg: await fingerprintPostgres(pg, DB),
      redis: await fingerprintRedis(redis),
      promAt,
      prom: await fingerprintPrometheus(prom, promAt),
    };
  }

  /** The journal of the newest restore run (not a recover run). */
  async function newestJournal(before: Set<string>): Promise<string | undefined> {
    const runs = (await readdir(evidenceRoot()).catch(() => [] as string[]))
      .filter((r) => r.includes('-restore-') && !before.has(r))
      .sort();
    const run = runs.at(-1);
    return run ? join(evidenceRoot(), run, 'journal.jsonl') : undefined;
  }

  /** Start a restore and send `signal` once `ready()` says so (polled); returns how it ended. */
  async function killRestore(
    recipeFile: string,
    setId: string,
    signal: NodeJS.Signals,
    ready: (journal: string) => Promise<boolean>,
    how: string[] = ['--no-parallel', '--quick-verify'],
  ): Promise<CliResult & { journal: string }> {
    const before = new Set(await readdir(evidenceRoot()).catch(() => [] as string[]));
    const child = cli(['restore', '--recipe', recipeFile, '--backup', setId, '--yes', ...how]);
    let journal: string | undefined;
    let exited = false;
    void child.finally(() => (exited = true));
    for (;;) {
      if (exited) break;
      journal ??= await newestJournal(before);
      if (journal && existsSync(journal) && (await ready(journal))) {
        child.kill(signal);
        break;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    const r = await child;
    return { exitCode: r.exitCode, signal: r.signal, stdout: String(r.stdout), stderr: String(r.stderr), journal: journal ?? '' };
  }

  const intentOf =
    (stepId: string) =>
    async (journal: string): Promise<boolean> =>
      readFileSync(journal, 'utf8')
        .split('\n')
        .some((l) => l.includes('"j":"intent"') && l.includes(`"stepId":${JSON.stringify(stepId)}`));

  async function expectPre(pre: Awaited<ReturnType<typeof preRestoreState>>, what: string): Promise<void> {
    expect(await fingerprintPostgres(pg, DB), what).toEqual(pre.pg);
    expect(await fingerprintRedis(redis), what).toEqual(pre.redis);
    expect(await fingerprintPrometheus(prom, pre.promAt), what).toEqual(pre.prom);
    expect(await asideDatabases(), what).toEqual([]);
  }

  /** The backup's data where the recipe restores (full: PostgreSQL, Redis, Prometheus; else PostgreSQL only, the rest as it was). */
  async function expectBackup(pre: Awaited<ReturnType<typeof preRestoreState>>, what: string, full: boolean): Promise<void> {
    expect(await fingerprintPostgres(pg, DB), what).toEqual(backupPg);
    if (!full) {
      expect(await fingerprintRedis(redis), what).toEqual(pre.redis);
      expect(await fingerprintPrometheus(prom, pre.promAt), what).toEqual(pre.prom);
      return;
    }
    expect(await fingerprintRedis(redis), what).toEqual(backupRedis);
    // Prometheus holds the backup's data: nothing newer than the backup at the pre-restore instant.
    const now = (await fingerprintPrometheus(prom, pre.promAt)) as { lastUpTimestamp?: string };
    expect(Number(now.lastUpTimestamp ?? 0), what).toBeLessThanOrEqual(backupTime + 1);
  }

  async function expectNoLocks(what: string): Promise<void> {
    // The restore and the recover took their locks here (the dir exists): none may be left.
    expect(await readdir(lockDir()), what).toEqual([]);
  }

  async function recover(recipeFile: string, mode: 'rollback' | 'finish'): Promise<CliResult> {
    return run(['recover', '--recipe', recipeFile, `--${mode}`, '--yes']);
  }

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'ra-kill-it-'));
    bin = cliBin();
    ({ serviceCtlArgv } = (await import(join(dirname(bin), 'sandbox', 'service-ctl.js'))) as { serviceCtlArgv: typeof serviceCtlArgv });
    group = new SandboxGroup();
    [pg, redis, prom] = await Promise.all([group.postgres(), group.redis(), group.prometheus()]);
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
    await Promise.all([seedPostgres(pg, DB, { rows: 30 }), seedRedis(redis)]);
    await prom.waitForSamples(4);
    spRoot = join(base, 'backups');
    const now = new Date();
    set = await backupStoryPortal({ pg, db: DB, redis, prom }, spRoot, { time: now });
    // The Prometheus tarball holds no sample newer than this (it is taken live, after the dump).
    backupTime = Math.ceil(Date.now() / 1000);
    [backupPg, backupRedis] = await Promise.all([fingerprintPostgres(pg, DB), fingerprintRedis(redis)]);

    // The same set, with a dump that sleeps half-way through the load (some tables committed).
    const time = new Date(Date.parse(`${set.id.slice(0, 10)}T${set.id.slice(11).replace(/-/g, ':')}Z`) + 60_000);
    const p = (n: number): string => String(n).padStart(2, '0');
    slowSetId = `${time.getUTCFullYear()}-${p(time.getUTCMonth() + 1)}-${p(time.getUTCDate())}_${p(time.getUTCHours())}-${p(time.getUTCMinutes())}-${p(time.getUTCSeconds())}`;
    const slowDir = join(spRoot, slowSetId);
    await mkdir(slowDir);
    for (const f of await readdir(set.dir))
      if (f !== 'postgres.sql.gz' && f !== 'metadata.txt') await copyFile(join(set.dir, f), join(slowDir, f));
    await writeFile(
      join(slowDir, 'metadata.txt'),
      (await readFile(join(set.dir, 'metadata.txt'), 'utf8')).replace(/^Backup Date: .*$/m, `Backup Date: ${slowSetId}`),
    );
    const sql = gunzipSync(await readFile(join(set.dir, 'postgres.sql.gz'))).toString('utf8');
    const ends = [...sql.matchAll(/^\\\.$/gm)].map((m) => m.index ?? 0);
    expect(ends.length).toBeGreaterThan(1);
    const cut = (ends[Math.floor(ends.length / 2)] ?? 0) + 3;
    await writeFile(join(slowDir, 'postgres.sql.gz'), gzipSync(`${sql.slice(0, cut)}SELECT pg_sleep(3);\n${sql.slice(cut)}`));

    env = {
      ...process.env,
      IT_PG_PASSWORD: pg.password,
      XDG_RUNTIME_DIR: join(base, 'run'),
      XDG_STATE_HOME: join(base, 'state'),
      RESTORE_ASSISTANT_STATE_DIR: join(base, 'state'),
      RESTORE_ASSISTANT_LOCK_DIR: join(base, 'locks'),
      NO_COLOR: '1',
    };
    delete env['CI'];
    const pgComponent = {
      host: pg.host,
      port: pg.port,
      user: 'postgres',
      passwordEnv: 'IT_PG_PASSWORD',
      database: DB,
      owner: 'app_owner',
      bin: pg.binDir,
    };
    const usersCheck = {
      name: 'users restored',
      sql: { query: 'SELECT count(*) FROM app.users', minRows: 1 },
      retries: 1,
      intervalSeconds: 0.5,
    };
    pgRecipe = join(base, 'kill-pg.yaml');
    await writeFile(
      pgRecipe,
      JSON.stringify({
        name: 'kill-pg',
        backups: { root: spRoot, layout: 'story-portal' },
        components: { postgres: pgComponent },
        checks: [usersCheck],
        evidence: { dir: join(base, 'evidence') },
      }),
    );
    fullRecipe = join(base, 'kill-full.yaml');
    await writeFile(
      fullRecipe,
      JSON.stringify({
        name: 'kill-full',
        backups: { root: spRoot, layout: 'story-portal' },
        components: {
          postgres: pgComponent,
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
          usersCheck,
        ],
        evidence: { dir: join(base, 'evidence') },
      }),
    );
    const plan = await run(['plan', '--recipe', pgRecipe, '--backup', set.id, '--no-parallel', '--json']);
    expect(plan.exitCode, show(plan)).toBe(0);
    stepIds = (JSON.parse(plan.stdout) as { steps: Array<{ id: string }> }).steps.map((s) => s.id);
    expect(stepIds).toContain('postgres:restore');
  }, 240_000);

  afterAll(async () => {
    if (appSpec) {
      const [file, ...args] = ctl('stop', appSpec);
      await execa(file ?? process.execPath, args, { reject: false });
    }
    await group?.stopAll();
    if (base) rmSync(base, { recursive: true, force: true });
  });

  /** Kill a restore of `recipeFile` when `stepId` started, check the refusal (once), recover with `mode`, check the targets. */
  async function killAndRecover(
    recipeFile: string,
    full: boolean,
    stepId: string,
    mode: 'rollback' | 'finish',
    tag: string,
    checkRefusal = false,
  ): Promise<void> {
    const what = `${full ? 'full' : 'postgres'} recipe killed when step ${stepId} started, recover --${mode}`;
    const pre = await preRestoreState(tag);
    const killed = await killRestore(recipeFile, set.id, 'SIGKILL', intentOf(stepId));
    expect(killed.signal, `${what}\n${show(killed)}`).toBe('SIGKILL');
    if (checkRefusal) {
      // A new restore over the dead run is refused and sent to recover, naming the run and the step.
      const again = await run(['restore', '--recipe', recipeFile, '--backup', set.id, '--yes']);
      expect(again.exitCode, show(again)).toBe(8);
      expect(again.stderr).toMatch(/An unfinished restore holds these targets: run \S+-restore-kill-/);
      expect(again.stderr).toContain(`(step ${stepId}, started`);
      expect(again.stderr).toMatch(/Now \(checked live\):/);
      expect(again.stderr).toContain(`restore-assistant recover --recipe ${recipeFile}`);
      // plan says it too, and goes on.
      const plan = await run(['plan', '--recipe', recipeFile, '--backup', set.id]);
      expect(plan.exitCode, show(plan)).toBe(0);
      expect(plan.stderr).toMatch(/An unfinished restore holds these targets/);
    }
    const r = await recover(recipeFile, mode);
    expect(r.exitCode, `${what}\n${show(r)}`).toBe(0);
    expect(r.stdout, `${what}\n${show(r)}`).toMatch(new RegExp(`Recover \\(${mode}\\) of run \\S+-restore-kill-`));
    if (mode === 'rollback') await expectPre(pre, `${what}\n${show(r)}`);
    else await expectBackup(pre, `${what}\n${show(r)}`, full);
    if (full) await servicesRun();
    await expectNoLocks(what);
    const none = await run(['recover', '--recipe', recipeFile]);
    expect(none.stdout, `${what}\n${show(none)}`).toMatch(/No unfinished restore/);
  }

  it('PostgreSQL recipe, SIGKILL at every step boundary: --rollback to the pre-restore data, --finish to the backup (alternating; both ways where the data is replaced)', async () => {
    expect(stepIds).toContain('postgres:restore');
    const both = new Set(['postgres:safety-copy', 'postgres:create', 'postgres:restore']);
    for (const [i, stepId] of stepIds.entries()) {
      const first = i % 2 === 0 ? 'rollback' : 'finish';
      await killAndRecover(pgRecipe, false, stepId, first, `pg-${i}a`, i === 2);
      if (both.has(stepId)) await killAndRecover(pgRecipe, false, stepId, first === 'rollback' ? 'finish' : 'rollback', `pg-${i}b`);
    }
  }, 400_000);

  it('full recipe (PostgreSQL, Redis, Prometheus, an app), SIGKILL at sampled boundaries: services end running, every target recovered', async () => {
    await killAndRecover(fullRecipe, true, 'quiesce:app', 'finish', 'full-1');
    await killAndRecover(fullRecipe, true, 'redis:place', 'rollback', 'full-2');
    await killAndRecover(fullRecipe, true, 'prometheus:start', 'finish', 'full-3');
  }, 400_000);

  for (const mode of ['rollback', 'finish'] as const) {
    it(`SIGKILL in the middle of the PostgreSQL load (some tables committed): recover --${mode}${mode === 'finish' ? ' loads it again (never keeps the half database) and names the real pre-incident copy' : ' puts the pre-incident database back, never the half-loaded one'}`, async () => {
      const pre = await preRestoreState(`mid-${mode}`);
      const killed = await killRestore(
        pgRecipe,
        slowSetId,
        'SIGKILL',
        async () =>
          (
            await pg.psql(
              `SELECT count(*) FROM pg_stat_activity WHERE datname = '${DB}' AND query LIKE '%pg_sleep%' AND pid <> pg_backend_pid()`,
            )
          ).trim() !== '0',
      );
      expect(killed.signal, show(killed)).toBe('SIGKILL');
      const journal = readFileSync(killed.journal, 'utf8');
      const aside = /"location":"(killdb__pre_restore_[^"]+)"/.exec(journal)?.[1];
      expect(aside, journal).toBeDefined();
      // Half loaded: some tables are there and committed.
      expect(Number(await pg.psql("SELECT count(*) FROM pg_tables WHERE schemaname = 'app'", DB))).toBeGreaterThan(0);

      const r = await recover(pgRecipe, mode);
      expect(r.exitCode, show(r)).toBe(0);
      if (mode === 'rollback') await expectPre(pre, show(r));
      else {
        await expectBackup(pre, show(r), false);
        // The pre-incident copy the summary names is the one the killed run made, and it holds the pre-restore data.
        expect(r.stdout).toContain(aside!);
        expect(await asideDatabases()).toEqual([aside]);
        // (The copy refuses connections, as the restore left it: opened here only to read it.)
        await pg.psql(`ALTER DATABASE "${aside!}" ALLOW_CONNECTIONS true`);
        expect(await pg.psql("SELECT string_agg(tag, ',') FROM public.pre_restore_marker", aside!)).toContain(`mid-${mode}`);
      }
      await expectNoLocks(show(r));
    }, 120_000);
  }

  it('SIGKILL during a parallel plain load: the staging dir the run made is journaled by identity, the next restore lists it (read-only), recover removes it', async () => {
    const pre = await preRestoreState('temp-left');
    const sleeping = async (): Promise<boolean> =>
      (
        await pg.psql(
          `SELECT count(*) FROM pg_stat_activity WHERE datname = '${DB}' AND query LIKE '%pg_sleep%' AND pid <> pg_backend_pid()`,
        )
      ).trim() !== '0';
    // Deep verification reads the dump's structure: the split (parallel) restore needs it.
    const killed = await killRestore(pgRecipe, slowSetId, 'SIGKILL', sleeping, ['--jobs', '2']);
    expect(killed.signal, show(killed)).toBe('SIGKILL');
    // The last fact for each temp dir wins: made (its identity) and not said gone.
    const facts = new Map<string, string>();
    for (const line of readFileSync(killed.journal, 'utf8').split('\n')) {
      if (!line.includes('"j":"fact"')) continue;
      const r = JSON.parse(line) as { name: string; value: string };
      if (r.name.startsWith('run-temp-dir:')) facts.set(r.name.slice('run-temp-dir:'.length), r.value);
    }
    const left = [...facts].filter(([, v]) => v !== '').map(([dir]) => dir);
    expect(left.length, JSON.stringify([...facts])).toBe(1);
    const staging = left[0]!;
    expect(staging).toMatch(/restore-assistant-split-/);
    expect(existsSync(staging), staging).toBe(true);

    // The next restore refuses (an unfinished run holds the targets) and lists the dir, touching nothing.
    const again = await run(['restore', '--recipe', pgRecipe, '--backup', set.id, '--yes', '--quick-verify']);
    expect(again.exitCode, show(again)).toBe(8);
    expect(again.stderr).toContain(`Temp dirs it left (recover removes them, by identity): ${staging}`);
    expect(existsSync(staging)).toBe(true);

    const r = await recover(pgRecipe, 'rollback');
    expect(r.exitCode, show(r)).toBe(0);
    expect(r.stderr).toContain(`removed the dead run's private temp dir ${staging}`);
    expect(existsSync(staging), show(r)).toBe(false);
    await expectPre(pre, show(r));
    await expectNoLocks(show(r));
  }, 120_000);

  it('a recover that is itself killed is recovered by the next one', async () => {
    const pre = await preRestoreState('rec-killed');
    await killRestore(pgRecipe, set.id, 'SIGKILL', intentOf('postgres:analyze'));
    // Kill the rollback once it has undone a step (its journal has an undo line).
    const before = new Set(await readdir(evidenceRoot()));
    const child = cli(['recover', '--recipe', pgRecipe, '--rollback', '--yes']);
    let done = false;
    void child.finally(() => (done = true));
    while (!done) {
      const run = (await readdir(evidenceRoot()))
        .filter((r) => r.includes('-recover-') && !before.has(r))
        .sort()
        .at(-1);
      const j = run ? join(evidenceRoot(), run, 'journal.jsonl') : undefined;
      if (j && existsSync(j) && readFileSync(j, 'utf8').includes('"j":"undo"')) {
        child.kill('SIGKILL');
        break;
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    const first = await child;
    expect(first.signal, String(first.stderr)).toBe('SIGKILL');
    const r = await recover(pgRecipe, 'rollback');
    expect(r.exitCode, show(r)).toBe(0);
    expect(r.stderr, show(r)).toMatch(/after 1 recover attempt/);
    await expectPre(pre, show(r));
    await expectNoLocks(show(r));
  }, 120_000);

  for (const stepId of ['postgres:create', 'postgres:restore'] as const) {
    it(`SIGHUP (a dropped ssh session) when ${stepId} started: rolled back as for SIGTERM (pre-restore fingerprints, no lock, exit 130 in the run's evidence), nothing left to recover`, async () => {
      const pre = await preRestoreState(`hup-${stepId}`);
      const hup = await killRestore(pgRecipe, set.id, 'SIGHUP', intentOf(stepId));
      // Handled, never a death by the signal: the run rolled itself back.
      expect(hup.signal, show(hup)).toBeUndefined();
      expect(hup.exitCode, show(hup)).toBe(130);
      expect(hup.stderr, show(hup)).toContain('SIGHUP received: stopping the running command and rolling back.');
      await expectPre(pre, show(hup));
      const events = readFileSync(join(dirname(hup.journal), 'events.jsonl'), 'utf8')
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => (JSON.parse(l) as { event?: { type?: string; outcome?: string; exitCode?: number } }).event);
      expect(
        events.find((e) => e?.type === 'run-finished'),
        show(hup),
      ).toMatchObject({ outcome: 'interrupted', exitCode: 130 });
      const none = await run(['recover', '--recipe', pgRecipe]);
      expect(none.stdout, show(none)).toMatch(/No unfinished restore/);
      await expectNoLocks(stepId);
    }, 120_000);
  }
});
