import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { lstat, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  backupStoryPortal,
  fingerprintPostgres,
  SandboxGroup,
  seedPostgres,
  seedRedis,
  type PostgresFingerprint,
  type PostgresSandbox,
  type RedisSandbox,
  type StoryPortalBackup,
} from '../../source/sandbox/index.js';
import { cliBin } from '../support/cli.js';

/**
 * Issue 11: locks keyed by the target's identity, in one machine-wide directory. Real PostgreSQL,
 * the built CLI. Two restores of one database, from two recipes that spell the host differently
 * (`localhost`, `127.0.0.1`) and from two environments (different HOME, XDG_RUNTIME_DIR, XDG_STATE_HOME,
 * one "via sudo"), started one second apart: exactly one runs; the other is refused before it
 * touches anything (exit 8), naming the owner; the database ends restored once, with exactly one
 * safety copy holding the pre-restore data. Two users (root and the unprivileged `nobody`, through
 * setpriv) cannot hold the same target, whichever of them takes it first.
 */

const NOBODY = 65534;
const isRoot = process.getuid?.() === 0;

const DB = 'locksdb';

interface CliResult {
  exitCode: number | undefined;
  stdout: string;
  stderr: string;
}

describe('one restore per target, whatever the spelling and the environment', () => {
  let base: string;
  let group: SandboxGroup;
  let pg: PostgresSandbox;
  let redis: RedisSandbox;
  let set: StoryPortalBackup;
  let backupPg: PostgresFingerprint;
  let lockDir: string;
  const show = (r: CliResult): string => `exit ${r.exitCode}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

  async function recipe(
    name: string,
    host: string,
    gate: string,
    evidence = join(base, `evidence-${name}`),
    reached?: string,
  ): Promise<string> {
    const file = join(base, `${name}.yaml`);
    // The application's stop waits for the gate: the run that got the lock stays in the middle of its restore until the test opens it.
    // With `reached`, the stop first writes that file: the run is then provably inside its restore (a step is running).
    const mark = reached === undefined ? '' : `fs.writeFileSync(${JSON.stringify(reached)},'');`;
    const wait = `const fs=require('fs');${mark}const t=setInterval(()=>{if(fs.existsSync(${JSON.stringify(gate)})){clearInterval(t);process.exit(0)}},50);setTimeout(()=>process.exit(3),120000)`;
    await writeFile(
      file,
      JSON.stringify({
        name,
        backups: { root: join(base, 'backups'), layout: 'story-portal' },
        components: {
          postgres: {
            host,
            port: pg.port,
            user: 'postgres',
            passwordEnv: 'IT_PG_PASSWORD',
            database: DB,
            owner: 'app_owner',
            bin: pg.binDir,
          },
        },
        services: [{ name: 'app', stop: [process.execPath, '-e', wait], start: [process.execPath, '-e', ''], timeoutSeconds: 130 }],
        checks: [
          { name: 'users restored', sql: { query: 'SELECT count(*) FROM app.users', minRows: 1 }, retries: 1, intervalSeconds: 0.5 },
        ],
        evidence: { dir: evidence },
      }),
    );
    return file;
  }

  function restore(recipeFile: string, env: NodeJS.ProcessEnv, asUid?: number): ResultPromise {
    const argv = [process.execPath, cliBin(), 'restore', '--recipe', recipeFile, '--backup', set.id, '--yes', '--quick-verify'];
    const [file, ...args] = asUid === undefined ? argv : ['setpriv', `--reuid=${asUid}`, `--regid=${asUid}`, '--clear-groups', ...argv];
    return execa(file!, args, {
      env,
      reject: false,
      cwd: base,
      stdin: 'ignore',
    });
  }

  const result = async (p: ResultPromise): Promise<CliResult> => {
    const r = await p;
    return { exitCode: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr) };
  };

  async function asideDatabases(): Promise<string[]> {
    const out = await pg.psql(
      `SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database WHERE datname LIKE '${DB}\\_\\_pre\\_restore\\_%'`,
    );
    return out.trim() === '' ? [] : out.trim().split(',');
  }

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'ra-locks-it-'));
    group = new SandboxGroup();
    [pg, redis] = await Promise.all([group.postgres(), group.redis()]);
    await Promise.all([seedPostgres(pg, DB, { rows: 20 }), seedRedis(redis)]);
    set = await backupStoryPortal({ pg, db: DB, redis }, join(base, 'backups'), { time: new Date(Date.now() - 600_000) });
    backupPg = await fingerprintPostgres(pg, DB);
    lockDir = join(base, 'locks');
  }, 240_000);

  afterAll(async () => {
    await group?.stopAll();
    if (base) rmSync(base, { recursive: true, force: true });
  });

  it('`localhost` and `127.0.0.1`, two environments, one second apart: exactly one run, the pre-restore data kept once', async () => {
    expect(pg.host).toBe('127.0.0.1');
    await pg.psql(
      `CREATE TABLE IF NOT EXISTS public.pre_restore_marker (tag text); INSERT INTO public.pre_restore_marker VALUES ('before')`,
      DB,
    );
    const pre = await fingerprintPostgres(pg, DB);
    const gate = join(base, 'gate');
    const a = await recipe('locks-a', 'localhost', gate);
    const b = await recipe('locks-b', '127.0.0.1', gate);
    const common = {
      PATH: process.env['PATH'] ?? '',
      LANG: 'C.UTF-8',
      NO_COLOR: '1',
      IT_PG_PASSWORD: pg.password,
      RESTORE_ASSISTANT_LOCK_DIR: lockDir,
      RESTORE_ASSISTANT_STATE_DIR: join(base, 'state'),
    };
    const envA = { ...common, HOME: join(base, 'home-a'), XDG_RUNTIME_DIR: join(base, 'run-a'), XDG_STATE_HOME: join(base, 'xdg-a') };
    const envB = {
      ...common,
      HOME: join(base, 'home-b'),
      XDG_RUNTIME_DIR: join(base, 'run-b'),
      XDG_STATE_HOME: join(base, 'xdg-b'),
      SUDO_USER: 'alice',
    };

    const first = restore(a, envA);
    await new Promise((r) => setTimeout(r, 1000));
    const second = restore(b, envB);
    // One of them is refused while the other waits at the gate; then the gate opens.
    const refused = await Promise.race([first.then(() => 'a' as const), second.then(() => 'b' as const)]);
    await writeFile(gate, 'open');
    const [ra, rb] = await Promise.all([result(first), result(second)]);
    const [winner, loser] = refused === 'a' ? [rb, ra] : [ra, rb];
    expect(loser.exitCode, show(loser)).toBe(8);
    expect(loser.stderr).toMatch(
      new RegExp(`Another restore holds postgres:127\\.0\\.0\\.1:${pg.port}/${DB} \\(pid \\d+ on .*, by .*, started \\d{4}-`),
    );
    expect(loser.stderr).toMatch(/Nothing was touched/);
    expect(winner.exitCode, show(winner)).toBe(0);

    // The database holds the backup; exactly one safety copy, holding the pre-restore data.
    expect(await fingerprintPostgres(pg, DB)).toEqual(backupPg);
    const aside = await asideDatabases();
    expect(aside).toHaveLength(1);
    // The safety copy refuses connections (by design) until someone allows them.
    await pg.psql(`ALTER DATABASE "${aside[0]!}" ALLOW_CONNECTIONS true`);
    expect(await pg.psql("SELECT string_agg(tag, ',') FROM public.pre_restore_marker", aside[0]!)).toBe('before');
    expect((await fingerprintPostgres(pg, aside[0]!)).tables).toEqual(pre.tables);
    // Exactly one run reached the engine: one evidence run has a run-started event.
    const started: string[] = [];
    for (const name of ['locks-a', 'locks-b']) {
      const root = join(base, `evidence-${name}`);
      for (const run of await readdir(root).catch(() => [] as string[])) if (existsSync(join(root, run, 'events.jsonl'))) started.push(run);
    }
    expect(started).toHaveLength(1);
    // No lock is left.
    expect((await readdir(lockDir)).filter((f) => f.endsWith('.lock'))).toEqual([]);
    for (const name of aside) await pg.psql(`DROP DATABASE "${name}"`);
  });
  it.runIf(isRoot)(
    'root and an unprivileged user cannot hold the same target, whoever takes it first (exit 8 naming owner, pid, start)',
    async () => {
      // nobody reaches the files (the built CLI is world-readable) and has directories of its own.
      chmodSync(base, 0o755);
      const own = (dir: string): string => {
        mkdirSync(dir, { recursive: true, mode: 0o700 });
        chownSync(dir, NOBODY, NOBODY);
        return dir;
      };
      own(join(base, 'nobody'));
      const gate = join(base, 'gate-users');
      const asRoot = await recipe('users-root', 'localhost', gate);
      // nobody's stop writes this file once it runs: Ctrl-C must land in a step (130), not before the first one (a cancel, 0).
      const nobodyInRun = join(own(join(base, 'nobody', 'marks')), 'stopping-app');
      const asNobody = await recipe('users-nobody', '127.0.0.1', gate, own(join(base, 'nobody', 'evidence')), nobodyInRun);
      const common = {
        PATH: process.env['PATH'] ?? '',
        LANG: 'C.UTF-8',
        NO_COLOR: '1',
        IT_PG_PASSWORD: pg.password,
        RESTORE_ASSISTANT_LOCK_DIR: lockDir,
      };
      const rootEnv = { ...common, HOME: join(base, 'home-root'), RESTORE_ASSISTANT_STATE_DIR: join(base, 'state') };
      const nobodyEnv = {
        ...common,
        HOME: own(join(base, 'nobody', 'home')),
        XDG_STATE_HOME: own(join(base, 'nobody', 'xdg')),
        XDG_RUNTIME_DIR: own(join(base, 'nobody', 'run')),
        RESTORE_ASSISTANT_STATE_DIR: own(join(base, 'nobody', 'state')),
      };
      const lockOf = async (uid: number): Promise<boolean> => {
        for (const f of await readdir(lockDir).catch(() => [] as string[]))
          if (f.endsWith('.lock') && (await lstat(join(lockDir, f)).catch(() => undefined))?.uid === uid) return true;
        return false;
      };
      const until = async (what: string, test: () => Promise<boolean>, child: ResultPromise): Promise<void> => {
        let exited = false;
        void child.finally(() => (exited = true));
        while (!(await test())) {
          if (exited) throw new Error(`${what}: the holder ended first\n${show(await result(child))}`);
          await new Promise((r) => setTimeout(r, 25));
        }
      };
      const holder = new RegExp(
        `Another restore holds postgres:127\\.0\\.0\\.1:${pg.port}/${DB} \\(pid \\d+ on .*, by .*, started \\d{4}-`,
      );

      // Root holds the target (its restore waits at the gate); nobody is refused before anything is touched.
      await rm(gate, { force: true });
      const rootRun = restore(asRoot, rootEnv);
      await until('root takes its locks', () => lockOf(0), rootRun);
      const refused = await result(restore(asNobody, nobodyEnv, NOBODY));
      expect(refused.exitCode, show(refused)).toBe(8);
      expect(refused.stderr).toMatch(holder);
      expect(refused.stderr).toMatch(/by root/);
      expect(refused.stderr).toMatch(/Nothing was touched/);
      await writeFile(gate, 'open');
      const rootDone = await result(rootRun);
      expect(rootDone.exitCode, show(rootDone)).toBe(0);
      expect(await fingerprintPostgres(pg, DB)).toEqual(backupPg);

      // nobody holds it; root is refused, naming uid 65534. Ctrl-C then rolls nobody's run back (exit 130).
      await rm(gate, { force: true });
      const nobodyRun = restore(asNobody, nobodyEnv, NOBODY);
      await until('nobody takes its locks', () => lockOf(NOBODY), nobodyRun);
      const refusedRoot = await result(restore(asRoot, rootEnv));
      expect(refusedRoot.exitCode, show(refusedRoot)).toBe(8);
      expect(refusedRoot.stderr).toMatch(holder);
      expect(refusedRoot.stderr).toMatch(/uid 65534/);
      await until('nobody is in its restore (stopping the app)', async () => existsSync(nobodyInRun), nobodyRun);
      nobodyRun.kill('SIGINT');
      const nobodyDone = await result(nobodyRun);
      expect(nobodyDone.exitCode, show(nobodyDone)).toBe(130);
      expect(await fingerprintPostgres(pg, DB)).toEqual(backupPg);
      expect((await readdir(lockDir)).filter((f) => f.endsWith('.lock'))).toEqual([]);
      for (const name of await asideDatabases()) await pg.psql(`DROP DATABASE "${name}"`);
    },
  );
});
