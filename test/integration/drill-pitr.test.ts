import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PostgresSandbox } from '../../source/sandbox/index.js';
import { cliBin } from '../support/cli.js';
import { startArchivingCluster, type ArchivingCluster, type ServiceCtlArgv } from '../support/pitr-cluster.js';
import { processesMentioning } from '../support/processes.js';

/**
 * Issue 16, drills cover point-in-time recovery, against real PostgreSQL 15: "production" is a
 * cluster with archiving, a base backup and recorded writes, run by its recipe's service. A drill
 * to a recorded time recovers a scratch cluster to exactly that time's rows (the recipe's drill
 * check says so), records target, window, WAL, RTO and RPO, and removes the scratch cluster;
 * `--pick` chooses a base and a second inside its window and says why. Production is untouched
 * throughout: the same postmaster, data directory (inode), rows, and WAL archive (no file added:
 * the scratch cluster's promotion is never archived).
 */

const WRITES = 5;

describe('point-in-time drills into a scratch cluster', () => {
  let work: string;
  let cluster: ArchivingCluster;
  let pg: PostgresSandbox;
  let bin: string;
  let env: NodeJS.ProcessEnv;
  let service: { stop: string[]; start: string[]; status: string[] };
  const marks: Array<{ at: string; rows: string }> = [];

  const cli = (args: string[]): ResultPromise =>
    execa(process.execPath, [bin, ...args], { env, reject: false, cwd: work, stdin: 'ignore' });
  const show = (r: { exitCode?: number; stdout: unknown; stderr: unknown }): string =>
    `exit ${r.exitCode}\n--- stdout\n${String(r.stdout)}\n--- stderr\n${String(r.stderr)}`;
  const rowsSql = "SELECT coalesce(string_agg(i::text, ',' ORDER BY i), '') FROM t";
  const scratchDirs = (): string[] => readdirSync(tmpdir()).filter((n) => n.startsWith('restore-assistant-drill-pitr-'));
  /** A recipe whose drill check expects exactly `rows`. */
  const recipeExpecting = async (name: string, rows?: string): Promise<string> => {
    const file = join(work, `${name}.yaml`);
    await writeFile(
      file,
      cluster.recipe({
        name,
        service,
        passwordEnv: 'IT_PG_PASSWORD',
        evidenceDir: join(work, 'evidence'),
        checks: [
          rows === undefined
            ? { name: 'table t readable', when: ['drill'], sql: { query: 'SELECT count(*) FROM t', minRows: 1 } }
            : { name: 'rows at the target', when: ['drill'], sql: { query: rowsSql, expect: rows } },
        ],
      }),
    );
    return file;
  };
  const production = async (): Promise<{ pid: string; inode: number; rows: string; archive: string[] }> => ({
    pid: readFileSync(join(work, 'pg-service.pid'), 'utf8').trim(),
    inode: statSync(pg.dataDir).ino,
    rows: await pg.psql(rowsSql),
    archive: (await readdir(cluster.archive)).sort(),
  });

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'ra-drill-pitr-'));
    bin = cliBin();
    const { serviceCtlArgv } = (await import(join(dirname(bin), 'sandbox', 'service-ctl.js'))) as { serviceCtlArgv: ServiceCtlArgv };
    cluster = await startArchivingCluster(work, { initdbArgs: ['--wal-segsize=1'] });
    pg = cluster.pg;
    await pg.psql('CREATE TABLE t (i int PRIMARY KEY, at timestamptz DEFAULT clock_timestamp()); INSERT INTO t (i) VALUES (0)');
    await cluster.baseBackup('2026-12-01_03-00-00');
    for (let i = 1; i <= WRITES; i++) {
      await pg.psql(`INSERT INTO t (i) VALUES (${i}); SELECT pg_switch_wal();`);
      await new Promise((r) => setTimeout(r, 300));
      marks.push({ at: await pg.psql('SELECT clock_timestamp()'), rows: await pg.psql(rowsSql) });
      await new Promise((r) => setTimeout(r, 600));
    }
    await cluster.switchAndArchive();
    service = await cluster.toService(serviceCtlArgv);
    env = {
      ...process.env,
      IT_PG_PASSWORD: pg.password,
      XDG_RUNTIME_DIR: join(work, 'run'),
      XDG_STATE_HOME: join(work, 'state'),
      RESTORE_ASSISTANT_STATE_DIR: join(work, 'state'),
      RESTORE_ASSISTANT_LOCK_DIR: join(work, 'locks'),
      NO_COLOR: '1',
    };
    delete env['CI'];
  }, 180_000);

  afterAll(async () => {
    await pg?.dispose();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('drill --to a recorded time: the scratch cluster has exactly that time’s rows; evidence; production untouched; scratch removed', async () => {
    const mark = marks[2]!;
    const recipe = await recipeExpecting('drill-pitr-time', mark.rows);
    const before = await production();
    const dirsBefore = scratchDirs();
    const r = await cli(['drill', '--recipe', recipe, '--to', mark.at, '--yes', '--json']);
    expect(r.exitCode, show(r)).toBe(0);
    const summary = JSON.parse(String(r.stdout)) as {
      kind: string;
      evidence: string;
      rtoMs?: number;
      rpoMs?: number;
      target: string;
      outcome: string;
    };
    expect(summary.kind).toBe('drill');
    expect(summary.outcome).toBe('restored');
    expect(typeof summary.rtoMs).toBe('number');
    expect(typeof summary.rpoMs).toBe('number');
    const events = readFileSync(join(summary.evidence, 'events.jsonl'), 'utf8');
    expect(events).toContain('point-in-time drill: base 2026-12-01_03-00-00');
    expect(events).toContain('window ');
    expect(events).toContain('recovery finished');
    expect(events).toContain('rows at the target');
    // Production: the same postmaster, data directory, rows; nothing added to its archive.
    expect(await production()).toEqual(before);
    expect(readdirSync(dirname(pg.dataDir)).filter((n) => n.includes('.pre-pitr-'))).toEqual([]);
    // The scratch cluster is gone: no dir, no server.
    expect(scratchDirs()).toEqual(dirsBefore);
    expect(processesMentioning('restore-assistant-drill-pitr-')).toEqual([]);
    expect(await readdir(join(work, 'locks'))).toEqual([]);
  }, 180_000);

  it('a drill check that does not hold fails the drill (the check is really run against the recovered cluster)', async () => {
    // Expecting the rows of the end of the window while recovering to the middle of it.
    const recipe = await recipeExpecting('drill-pitr-wrong', marks.at(-1)!.rows);
    const dirsBefore = scratchDirs();
    const r = await cli(['drill', '--recipe', recipe, '--to', marks[1]!.at, '--yes']);
    expect(r.exitCode, show(r)).not.toBe(0);
    expect(String(r.stdout)).toContain('FAILED');
    expect(scratchDirs()).toEqual(dirsBefore);
  }, 180_000);

  it('drill --pick random-recent: a base and a second inside its window, and the evidence says why', async () => {
    const recipe = await recipeExpecting('drill-pitr-pick');
    const before = await production();
    const r = await cli(['drill', '--recipe', recipe, '--pick', 'random-recent', '--yes', '--json']);
    expect(r.exitCode, show(r)).toBe(0);
    const summary = JSON.parse(String(r.stdout)) as { evidence: string; target: string; window: { from: string; to: string } };
    const t = Date.parse(summary.target.replace(' ', 'T'));
    expect(t).toBeGreaterThan(Date.parse(summary.window.from));
    expect(t).toBeLessThan(Date.parse(summary.window.to));
    const events = readFileSync(join(summary.evidence, 'events.jsonl'), 'utf8');
    expect(events).toMatch(
      /--pick random-recent: base 2026-12-01_03-00-00 .*at random among 1 base taken in the last 90 days; target [^"]*a second at random inside its window/,
    );
    expect(await production()).toEqual(before);
  }, 180_000);
});
