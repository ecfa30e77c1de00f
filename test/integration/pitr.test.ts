import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PostgresSandbox } from '../../source/sandbox/index.js';
import { cliBin } from '../support/cli.js';
import { startArchivingCluster, type ServiceCtlArgv } from '../support/pitr-cluster.js';

/**
 * Issue 16, point-in-time recovery against real PostgreSQL 15 and the built CLI: a cluster with
 * archive_mode = on (1 MiB WAL segments, pg_switch_wal after each write) takes a pg_basebackup -Ft -z,
 * then writes a row every ~second, recording the server's time after each commit. Restores to
 * three recorded times give exactly the rows up to that time; `latest` gives them all; some
 * archived segments are gzip-compressed. A copy of the archive with a segment missing in the
 * middle is rejected by verify (exit 3, naming it) and its window ends before it. A restore killed
 * with SIGKILL while it follows recovery is rolled back by `recover --rollback --yes` to the old
 * data directory.
 */

const WRITES = 7;

describe('point-in-time recovery (base backup + WAL archive)', () => {
  let base: string;
  let pg: PostgresSandbox;
  let bin: string;
  let env: NodeJS.ProcessEnv;
  let recipe: string;
  let gapRecipe: string;
  let archive: string;
  const marks: Array<{ at: string; rows: string }> = [];
  let allRows = '';
  let missing = '';

  const cli = (args: string[]): ResultPromise =>
    execa(process.execPath, [bin, ...args], { env, reject: false, cwd: base, stdin: 'ignore' });
  const show = (r: { exitCode?: number; stdout: unknown; stderr: unknown }): string =>
    `exit ${r.exitCode}\n--- stdout\n${String(r.stdout)}\n--- stderr\n${String(r.stderr)}`;
  const rows = (): Promise<string> => pg.psql("SELECT coalesce(string_agg(i::text, ',' ORDER BY i), '') FROM t");

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'ra-pitr-it-'));
    bin = cliBin();
    const { serviceCtlArgv } = (await import(join(dirname(bin), 'sandbox', 'service-ctl.js'))) as { serviceCtlArgv: ServiceCtlArgv };
    const cluster = await startArchivingCluster(base, { initdbArgs: ['--wal-segsize=1'] });
    pg = cluster.pg;
    archive = cluster.archive;
    await pg.psql('CREATE TABLE t (i int PRIMARY KEY, at timestamptz DEFAULT clock_timestamp()); INSERT INTO t (i) VALUES (0)');
    await cluster.baseBackup('2026-12-01_03-00-00');
    for (let i = 1; i <= WRITES; i++) {
      await pg.psql(`INSERT INTO t (i) VALUES (${i}); SELECT pg_switch_wal();`);
      await new Promise((r) => setTimeout(r, 300));
      marks.push({ at: await pg.psql('SELECT clock_timestamp()'), rows: await rows() });
      await new Promise((r) => setTimeout(r, 600));
    }
    allRows = await rows();
    const lastSeg = await cluster.switchAndArchive();
    expect(existsSync(join(archive, lastSeg))).toBe(true);
    // Compress every other segment (archive_command = 'gzip < %p > <dir>/%f.gz' is common too).
    await cluster.gzipEveryOther();
    // A second archive with one segment missing in the middle (the one holding write 4).
    const gapArchive = join(base, 'wal_gap');
    await mkdir(gapArchive);
    const all = (await readdir(archive)).sort();
    const names = all.filter((n) => /^[0-9A-F]{24}(\.gz)?$/.test(n));
    missing = (names[Math.floor(names.length / 2) + 1] ?? '').replace(/\.gz$/, '');
    for (const n of all) if (!n.startsWith(missing)) await copyFile(join(archive, n), join(gapArchive, n));
    await execa('chown', ['-R', `${cluster.uid}:${cluster.gid}`, gapArchive]);

    // From here on the recipe's service controls the server (the way it would call systemctl).
    const service = await cluster.toService(serviceCtlArgv);

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
    const recipeOf = (name: string, walArchive: string): string =>
      cluster.recipe({
        name,
        walArchive,
        service,
        passwordEnv: 'IT_PG_PASSWORD',
        evidenceDir: join(base, 'evidence'),
        checks: [{ name: 'table t readable', sql: { query: 'SELECT count(*) FROM t', minRows: 1 }, retries: 5, intervalSeconds: 0.5 }],
      });
    recipe = join(base, 'pitr.yaml');
    gapRecipe = join(base, 'pitr-gap.yaml');
    await writeFile(recipe, recipeOf('pitr-it', archive));
    await writeFile(gapRecipe, recipeOf('pitr-gap', gapArchive));
  }, 180_000);

  afterAll(async () => {
    await pg?.dispose();
    if (base) await rm(base, { recursive: true, force: true });
  });

  it('lists the base with its LSNs and window, and verifies base + WAL deep', async () => {
    const l = await cli(['list', '--recipe', recipe, '--json']);
    expect(l.exitCode, show(l)).toBe(0);
    const listed = JSON.parse(String(l.stdout)) as {
      bases: Array<{ window: { from: string; to: string } | null; startLsn: string; gap: unknown }>;
    };
    expect(listed.bases).toHaveLength(1);
    const w = listed.bases[0]?.window;
    expect(w).not.toBeNull();
    expect(Date.parse(w!.to)).toBeGreaterThanOrEqual(Date.parse(marks.at(-1)!.at.replace(' ', 'T').replace(/\+00$/, 'Z')) - 1000);
    expect(listed.bases[0]?.gap).toBeNull();
    const v = await cli(['verify', 'latest', '--recipe', recipe]);
    expect(v.exitCode, show(v)).toBe(0);
    expect(String(v.stdout)).toContain('pg_verifybackup');
    expect(String(v.stdout)).toContain('WAL read through (pg_waldump)');
  });

  it('restores to three recorded times, each to exactly that time’s rows, then latest to all of them', async () => {
    for (const [k, idx] of [1, 3, 5].entries()) {
      const mark = marks[idx]!;
      const r = await cli(['restore', '--recipe', recipe, '--to', mark.at, '--yes', ...(k > 0 ? ['--quick-verify'] : [])]);
      expect(r.exitCode, show(r)).toBe(0);
      expect(await rows(), `restored to ${mark.at}`).toBe(mark.rows);
      expect(await pg.psql('SELECT pg_is_in_recovery()')).toBe('f');
    }
    const r = await cli(['restore', '--recipe', recipe, '--to', 'latest', '--yes', '--quick-verify', '--json']);
    expect(r.exitCode, show(r)).toBe(0);
    expect(await rows()).toBe(allRows);
    const summary = JSON.parse(String(r.stdout)) as { rtoMs?: number; rpoMs?: number; evidence: string };
    expect(existsSync(join(summary.evidence, 'events.jsonl'))).toBe(true);
    const events = readFileSync(join(summary.evidence, 'events.jsonl'), 'utf8');
    expect(events).toContain('recovery finished');
    expect(events).toContain('point-in-time restore: base');
    // The recovery settings were reset after promotion.
    expect(await pg.psql("SELECT count(*) FROM pg_file_settings WHERE name LIKE 'recovery_target%' OR name = 'restore_command'")).toBe('0');
  }, 240_000);

  it('a segment missing in the middle: verify exits 3 naming it, and the window ends before it', async () => {
    const v = await cli(['verify', 'latest', '--recipe', gapRecipe, '--quick']);
    expect(v.exitCode, show(v)).toBe(3);
    expect(String(v.stdout)).toContain(missing);
    const l = await cli(['list', '--recipe', gapRecipe, '--json']);
    const listed = JSON.parse(String(l.stdout)) as {
      bases: Array<{ window: { to: string; lastSegment: string }; gap: { missing: string } }>;
    };
    expect(listed.bases[0]?.gap.missing).toBe(missing);
    expect(listed.bases[0]!.window.lastSegment < missing).toBe(true);
    expect(Date.parse(listed.bases[0]!.window.to)).toBeLessThan(Date.parse(marks.at(-1)!.at.replace(' ', 'T').replace(/\+00$/, 'Z')));
    const restore = await cli(['restore', '--recipe', gapRecipe, '--to', 'latest', '--yes', '--quick-verify']);
    expect(restore.exitCode, show(restore)).toBe(3);
  });

  it('a restore killed (SIGKILL) while following recovery is rolled back by recover --rollback to the old data directory', async () => {
    await pg.psql('INSERT INTO t (i) VALUES (1000)');
    const before = await rows();
    const evidence = join(base, 'evidence');
    const seen = new Set(await readdir(evidence));
    const child = cli(['restore', '--recipe', recipe, '--to', marks[2]!.at, '--yes', '--quick-verify']);
    let exited = false;
    void child.finally(() => (exited = true));
    let journal: string | undefined;
    for (;;) {
      if (exited) break;
      const run = (await readdir(evidence))
        .filter((d) => d.includes('-restore-') && !seen.has(d))
        .sort()
        .at(-1);
      if (run) journal = join(evidence, run, 'journal.jsonl');
      if (journal && existsSync(journal) && readFileSync(journal, 'utf8').includes('"stepId":"postgres:follow-recovery"')) {
        child.kill('SIGKILL');
        break;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    const killed = await child;
    expect(killed.signal, show(killed)).toBe('SIGKILL');
    const refused = await cli(['restore', '--recipe', recipe, '--to', 'latest', '--yes', '--quick-verify']);
    expect(refused.exitCode, show(refused)).toBe(8);
    const rec = await cli(['recover', '--recipe', recipe, '--rollback', '--yes']);
    expect(rec.exitCode, show(rec)).toBe(0);
    expect(await rows()).toBe(before);
    expect(await readdir(join(base, 'locks'))).toEqual([]);
  }, 180_000);
});
