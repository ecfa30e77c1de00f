import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  backupStoryPortal,
  SandboxGroup,
  seedPostgres,
  seedRedis,
  type PostgresSandbox,
  type PrometheusSandbox,
  type RedisSandbox,
  type StoryPortalBackup,
} from '../../source/sandbox/index.js';
import { copyRoomFacts } from '../../source/probe/copy-room.js';
import { preflightProblems, probeFacts } from '../../source/probe/index.js';
import { loadRecipeFile } from '../../source/recipe/load.js';
import { recipeSchema } from '../../source/recipe/schema.js';
import { createRedactor } from '../../source/exec/redact.js';
import type { BackupSet } from '../../source/catalog/types.js';
import { cliBin } from '../support/cli.js';

/**
 * Issue 11: `safety-copies` lists what earlier restores kept (from their journals, checked live)
 * and `safety-copies drop` removes them by identity (a database by the OID its run recorded, a
 * file or directory by device/inode/real path), idempotently, with evidence; never one an
 * unfinished run still needs. And the rollback's undo by identity, with real Redis and Prometheus:
 * a planted replacement at a name the run restored is refused and kept, not removed. One set of
 * real servers (PostgreSQL, Redis, Prometheus) for the file; the built CLI.
 */

let bin: string;
const DB = 'copiesdb';

interface CliResult {
  exitCode: number | undefined;
  stdout: string;
  stderr: string;
}

interface ListedCopy {
  id: string;
  component: string;
  kind: string;
  location: string;
  run: { runId: string } | null;
  sizeBytes: number | null;
  ageMs: number | null;
  preIncident: boolean | null;
  state: string;
  droppable: boolean;
  why?: string;
  neededBy?: { runId: string; live: boolean };
}

describe('safety-copies: list and drop by identity; undo by identity with real Redis and Prometheus', () => {
  let base: string;
  let group: SandboxGroup;
  let pg: PostgresSandbox;
  let redis: RedisSandbox;
  let prom: PrometheusSandbox;
  let set: StoryPortalBackup;
  let env: NodeJS.ProcessEnv;
  let recipe: string;
  let serviceCtlArgv: (action: 'start' | 'stop' | 'status', spec: string) => string[];
  const ctl = (action: 'start' | 'stop' | 'status', spec: string): string[] => serviceCtlArgv(action, spec);
  const show = (r: CliResult): string => `exit ${r.exitCode}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
  const evidenceRoot = (): string => join(base, 'evidence');

  async function run(args: string[]): Promise<CliResult> {
    const r = await execa(process.execPath, [bin, ...args], { env, reject: false, cwd: base, stdin: 'ignore' });
    return { exitCode: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr) };
  }

  async function list(): Promise<ListedCopy[]> {
    const r = await run(['safety-copies', '--recipe', recipe, '--json']);
    expect(r.exitCode, show(r)).toBe(0);
    return (JSON.parse(r.stdout) as { copies: ListedCopy[] }).copies;
  }

  async function databases(like: string): Promise<string[]> {
    const out = await pg.psql(`SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database WHERE datname LIKE '${like}'`);
    return out.trim() === '' ? [] : out.trim().split(',');
  }

  async function restore(): Promise<CliResult> {
    return run(['restore', '--recipe', recipe, '--backup', set.id, '--yes', '--no-parallel', '--quick-verify']);
  }

  /** Start a restore and SIGKILL it once the journal has the intent line of `stepId`. */
  async function killAt(stepId: string): Promise<void> {
    const before = new Set(await readdir(evidenceRoot()).catch(() => [] as string[]));
    const child = execa(
      process.execPath,
      [bin, 'restore', '--recipe', recipe, '--backup', set.id, '--yes', '--no-parallel', '--quick-verify'],
      {
        env,
        reject: false,
        cwd: base,
        stdin: 'ignore',
      },
    );
    let exited = false;
    void child.finally(() => (exited = true));
    let journal: string | undefined;
    for (;;) {
      if (exited) break;
      if (!journal) {
        const runs = (await readdir(evidenceRoot()).catch(() => [] as string[])).filter((r) => r.includes('-restore-') && !before.has(r));
        if (runs[0]) journal = join(evidenceRoot(), runs[0], 'journal.jsonl');
      }
      if (
        journal &&
        existsSync(journal) &&
        readFileSync(journal, 'utf8')
          .split('\n')
          .some((l) => l.includes('"j":"intent"') && l.includes(`"stepId":${JSON.stringify(stepId)}`))
      ) {
        child.kill('SIGKILL');
        break;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    const r = await child;
    expect(r.signal, `the restore ended before step ${stepId}: ${String(r.stdout)}${String(r.stderr)}`).toBe('SIGKILL');
  }

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'ra-copies-it-'));
    bin = cliBin();
    ({ serviceCtlArgv } = (await import(join(dirname(bin), 'sandbox', 'service-ctl.js'))) as { serviceCtlArgv: typeof serviceCtlArgv });
    group = new SandboxGroup();
    [pg, redis, prom] = await Promise.all([group.postgres(), group.redis(), group.prometheus()]);
    await Promise.all([seedPostgres(pg, DB, { rows: 20 }), seedRedis(redis)]);
    await prom.waitForSamples(2);
    set = await backupStoryPortal({ pg, db: DB, redis, prom }, join(base, 'backups'), { time: new Date() });
    env = {
      ...process.env,
      IT_PG_PASSWORD: pg.password,
      XDG_RUNTIME_DIR: join(base, 'run'),
      XDG_STATE_HOME: join(base, 'state'),
      RESTORE_ASSISTANT_STATE_DIR: join(base, 'state'),
      RESTORE_ASSISTANT_LOCK_DIR: join(base, 'locks'),
      RESTORE_ASSISTANT_RECIPES: join(base, 'recipes'),
      NO_COLOR: '1',
    };
    delete env['CI'];
    await mkdir(join(base, 'recipes'));
    recipe = join(base, 'recipes', 'copies.yaml');
    await writeFile(
      recipe,
      JSON.stringify({
        name: 'copies',
        backups: { root: join(base, 'backups'), layout: 'story-portal' },
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
            dataDir: redis.dir,
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
        checks: [
          { name: 'users restored', sql: { query: 'SELECT count(*) FROM app.users', minRows: 1 }, retries: 1, intervalSeconds: 0.5 },
        ],
        evidence: { dir: evidenceRoot() },
      }),
    );
  }, 240_000);

  afterAll(async () => {
    await group?.stopAll();
    if (base) rmSync(base, { recursive: true, force: true });
  });

  let runId: string;
  let pgCopy: ListedCopy;
  let promCopy: ListedCopy;

  it('lists what a restore kept: the renamed database, the moved-aside Redis RDB and Prometheus data, with size, age, run, pre-incident', async () => {
    const r = await restore();
    expect(r.exitCode, show(r)).toBe(0);
    runId = (await readdir(evidenceRoot())).find((d) => d.includes('-restore-'))!;
    const copies = await list();
    pgCopy = copies.find((c) => c.component === 'postgres')!;
    promCopy = copies.find((c) => c.component === 'prometheus')!;
    const redisCopy = copies.find((c) => c.component === 'redis');
    expect(pgCopy, JSON.stringify(copies)).toEqual(
      expect.objectContaining({
        kind: 'database',
        run: expect.objectContaining({ runId }),
        preIncident: true,
        state: 'present',
        droppable: true,
      }),
    );
    expect(pgCopy.id).toMatch(new RegExp(`^${DB}__pre_restore_`));
    expect(await databases(pgCopy.id)).toEqual([pgCopy.id]);
    expect(pgCopy.sizeBytes).toBeGreaterThan(0);
    expect(pgCopy.ageMs).toBeGreaterThanOrEqual(0);
    expect(promCopy).toEqual(expect.objectContaining({ kind: 'directory', preIncident: true, state: 'present', droppable: true }));
    expect(promCopy.location).toMatch(/\.pre_restore_/);
    expect(promCopy.sizeBytes).toBeGreaterThan(0);
    expect(redisCopy).toEqual(
      expect.objectContaining({ kind: 'file', location: expect.stringMatching(/dump\.rdb\.pre_restore_/), droppable: true }),
    );
    // The text form names each copy, its run and the command to drop it.
    const text = await run(['safety-copies', '--recipe', recipe]);
    expect(text.exitCode, show(text)).toBe(0);
    expect(text.stdout).toContain(pgCopy.id);
    expect(text.stdout).toContain(`made by run ${runId}, the pre-incident copy`);
    expect(text.stdout.split('\n')).toContain(pgCopy.id);
    expect(text.stdout).toContain(`restore-assistant safety-copies drop --recipe ${recipe}`);
    // Without --recipe: every recipe found ($RESTORE_ASSISTANT_RECIPES).
    const all = await run(['safety-copies', '--json']);
    expect((JSON.parse(all.stdout) as { copies: ListedCopy[] }).copies.map((c) => c.id).sort()).toEqual(copies.map((c) => c.id).sort());
  }, 180_000);

  it('a disk that falls short names the safety copies kept there and the command that drops them (preflight)', async () => {
    const loaded = await loadRecipeFile(recipe);
    const backup: BackupSet = {
      id: set.id,
      layout: 'story-portal',
      root: join(base, 'backups'),
      location: set.dir,
      time: new Date().toISOString(),
      timeSource: 'metadata',
      components: (await readdir(set.dir))
        .filter((f) => f.startsWith('postgres') || f.endsWith('.rdb') || f.endsWith('.tar.gz'))
        .map((f) => ({
          kind: f.startsWith('postgres') ? 'postgres' : f.endsWith('.rdb') ? 'redis' : 'prometheus',
          format: f.startsWith('postgres') ? 'pg-plain-gz' : f.endsWith('.rdb') ? 'redis-rdb' : 'prometheus-tar-gz',
          path: join(set.dir, f),
          size: 1000,
          checksum: 'absent',
        })) as BackupSet['components'],
      metadata: {},
      warnings: [],
      totalSize: 3000,
    };
    const facts = await probeFacts(loaded, backup, undefined, { env });
    // The real disks have room: nothing is named. Then pretend the PostgreSQL and Prometheus disks are full.
    expect(facts.keptCopies).toBeUndefined();
    const tight = { ...facts, disk: (facts.disk ?? []).map((d) => ({ ...d, freeBytes: d.neededBytes - 1 })) };
    Object.assign(tight, await copyRoomFacts(loaded, tight, { env, redact: createRedactor() }));
    const problems = preflightProblems(loaded, backup, tight, { missingRoles: 'create' }).filter((p) => p.code === 'disk-space');
    const pgProblem = problems.find((p) => p.component === 'postgres');
    expect(pgProblem?.message).toContain(`Safety copies earlier restores kept there`);
    expect(pgProblem?.message).toContain(pgCopy.id);
    expect(pgProblem?.next).toContain(`restore-assistant safety-copies drop --recipe ${recipe} ${pgCopy.id}`);
    const promProblem = problems.find((p) => p.component === 'prometheus');
    expect(promProblem?.message).toContain(promCopy.location);

    // A data dir that is a mount point cannot be moved aside by a rename: refused before anything is touched.
    const mounted = {
      recipe: recipeSchema.parse({
        name: 'mounted',
        backups: { root: base },
        components: { prometheus: { url: prom.url, dataDir: '/proc', service: { stop: ['true'], start: ['true'] } } },
      }),
      file: '<inline>',
      digest: 'test',
    };
    const room = await copyRoomFacts(mounted, { prometheus: { ready: true } }, { env, redact: createRedactor() });
    expect(room.moveAside).toEqual([{ component: 'prometheus', path: '/proc' }]);
    const promOnly: BackupSet = { ...backup, components: backup.components.filter((c) => c.kind === 'prometheus') };
    expect(preflightProblems(mounted, promOnly, { prometheus: { ready: true }, ...room }, { missingRoles: 'fail' })).toContainEqual(
      expect.objectContaining({ code: 'disk-space', severity: 'error', message: expect.stringContaining('/proc is a mount point') }),
    );
  }, 120_000);

  it('drop without a terminal and without --yes refuses (exit 2) with the --yes hint; nothing is removed', async () => {
    const r = await run(['safety-copies', 'drop', '--recipe', recipe, pgCopy.id]);
    expect(r.exitCode, show(r)).toBe(2);
    expect(r.stderr).toContain('--yes');
    expect(await databases(pgCopy.id)).toEqual([pgCopy.id]);
  });

  it('refuses (exit 10) to drop a planted replacement of a copy, and removes nothing: database and directory', async () => {
    // A different database under the copy's name (the real one renamed away).
    await pg.psql(`ALTER DATABASE "${pgCopy.id}" RENAME TO "${DB}_real_copy"`);
    await pg.psql(`CREATE DATABASE "${pgCopy.id}"`);
    const listed = (await list()).find((c) => c.id === pgCopy.id)!;
    expect(listed.state).toBe('changed');
    const r = await run(['safety-copies', 'drop', '--recipe', recipe, pgCopy.id, '--yes']);
    expect(r.exitCode, show(r)).toBe(10);
    expect(r.stderr).toMatch(/not the one the run renamed aside|not what run/);
    expect(await databases(pgCopy.id)).toEqual([pgCopy.id]);
    expect(await databases(`${DB}_real_copy`)).toEqual([`${DB}_real_copy`]);
    await pg.psql(`DROP DATABASE "${pgCopy.id}"`);
    await pg.psql(`ALTER DATABASE "${DB}_real_copy" RENAME TO "${pgCopy.id}"`);

    // A different directory at the Prometheus copy's path (the real one kept elsewhere).
    await rename(promCopy.location, `${promCopy.location}.real`);
    await mkdir(promCopy.location);
    await writeFile(join(promCopy.location, 'planted'), 'not a safety copy');
    const d = await run(['safety-copies', 'drop', '--recipe', recipe, promCopy.location, '--yes']);
    expect(d.exitCode, show(d)).toBe(10);
    expect(d.stderr).toMatch(/it is not what run \S+ kept: recorded a directory \(device \d+, inode \d+\) .* found a directory/);
    expect(await readFile(join(promCopy.location, 'planted'), 'utf8')).toBe('not a safety copy');
    await rm(promCopy.location, { recursive: true });
    await rename(`${promCopy.location}.real`, promCopy.location);
  }, 120_000);

  it('drops by identity, says so when it is gone already (exit 0), and records the drop as evidence', async () => {
    const r = await run(['safety-copies', 'drop', '--recipe', recipe, pgCopy.id, '--yes']);
    expect(r.exitCode, show(r)).toBe(0);
    expect(await databases(pgCopy.id)).toEqual([]);
    // The live database (the restored one) is untouched.
    expect(await databases(DB)).toEqual([DB]);
    const again = await run(['safety-copies', 'drop', '--recipe', recipe, pgCopy.id, '--yes']);
    expect(again.exitCode, show(again)).toBe(0);
    expect(again.stderr).toContain('gone already');
    const cleanup = (await readdir(evidenceRoot())).filter((d) => d.includes('-cleanup-'));
    expect(cleanup.length).toBeGreaterThanOrEqual(1);
    const events = await readFile(join(evidenceRoot(), cleanup[0]!, 'events.jsonl'), 'utf8');
    expect(events).toContain(`dropped ${pgCopy.id}`);
    const history = await readFile(join(evidenceRoot(), 'history.jsonl'), 'utf8');
    expect(history).toContain(cleanup[0]!);
    const verified = await run(['evidence', 'verify', join(evidenceRoot(), cleanup[0]!)]);
    expect(verified.exitCode, show(verified)).toBe(0);

    // Everything droppable older than 0 minutes: the Redis RDB and the Prometheus data.
    const rest = await run(['safety-copies', 'drop', '--recipe', recipe, '--older-than', '0m', '--yes', '--json']);
    expect(rest.exitCode, show(rest)).toBe(0);
    const out = JSON.parse(rest.stdout) as { dropped: ListedCopy[] };
    expect(out.dropped.map((c) => c.component).sort()).toEqual(['prometheus', 'redis']);
    expect(existsSync(promCopy.location)).toBe(false);
    expect(await list()).toEqual([]);
  }, 120_000);

  it('never drops a copy an unfinished run needs for its rollback: refused (exit 8) and sent to recover', async () => {
    await killAt('postgres:create');
    const copies = await list();
    const needed = copies.find((c) => c.component === 'postgres')!;
    expect(needed.neededBy).toEqual(expect.objectContaining({ live: false }));
    const r = await run(['safety-copies', 'drop', '--recipe', recipe, needed.id, '--yes']);
    expect(r.exitCode, show(r)).toBe(8);
    expect(r.stderr).toContain('restore-assistant recover --recipe');
    expect(await databases(needed.id)).toEqual([needed.id]);
    const rec = await run(['recover', '--recipe', recipe, '--rollback', '--yes']);
    expect(rec.exitCode, show(rec)).toBe(0);
    expect(await databases(needed.id)).toEqual([]);
  }, 180_000);

  it('the rollback refuses planted replacements at restored names (Redis appendonlydir, Prometheus data dir): kept, not removed (exit 5)', async () => {
    await killAt('prometheus:start');
    // A directory at the AOF name that this run never put there (appendonly is off).
    await mkdir(redis.aofDir);
    await writeFile(join(redis.aofDir, 'planted'), 'someone else');
    // The restored Prometheus data dir swapped for another directory (the restored one kept aside).
    await rename(prom.dataDir, `${prom.dataDir}.restored-kept`);
    await mkdir(prom.dataDir);
    await writeFile(join(prom.dataDir, 'planted'), 'someone else');
    const r = await run(['recover', '--recipe', recipe, '--rollback', '--yes']);
    expect(r.exitCode, show(r)).toBe(5);
    const said = `${r.stdout}\n${r.stderr}`;
    expect(said).toContain(`refusing to move ${prom.dataDir}`);
    expect(said).toContain('is not what this run put there');
    expect(said).toMatch(/appendonlydir is a directory .* that this run did not create or move there/);
    expect(await readFile(join(redis.aofDir, 'planted'), 'utf8')).toBe('someone else');
    expect(await readFile(join(prom.dataDir, 'planted'), 'utf8')).toBe('someone else');
    expect(existsSync(`${prom.dataDir}.restored-kept`)).toBe(true);
    // Redis and Prometheus are not started again on data that is not back (the planted dirs).
    expect(said).toMatch(/kept stopped \(prometheus not back\)/);
    expect(said).toMatch(/kept stopped \(redis not back\)/);
    const promUp = await fetch(`${prom.url}/-/ready`).then(
      (res) => res.ok,
      () => false,
    );
    expect(promUp, 'Prometheus was started on a data dir the run did not put there').toBe(false);
  }, 180_000);
});
