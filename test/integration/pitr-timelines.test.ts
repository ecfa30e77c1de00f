import { mkdtempSync } from 'node:fs';
import { chown, mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PostgresSandbox } from '../../source/sandbox/index.js';
import { cliBin } from '../support/cli.js';
import { startArchivingCluster, type ArchivingCluster, type ServiceCtlArgv } from '../support/pitr-cluster.js';

/**
 * Issue 16, what the physical layout must not get wrong, against real PostgreSQL 15:
 * - timelines: base A (timeline 1), writes 1..3, a point-in-time restore to after write 2 promotes
 *   timeline 2 (write 3 is abandoned on timeline 1, whose WAL stays in the archive), writes 10, 11
 *   on timeline 2. The window of A follows the history file to timeline 2 (not the abandoned end of
 *   timeline 1), deep verify reads both timelines, and `restore --to latest` from A gives
 *   0,1,2,10,11 (it gave 0,1,2,3 with recovery_target_timeline = 'current').
 * - tablespaces: a base taken with a tablespace (pg_basebackup -Ft writes <oid>.tar.gz beside
 *   base.tar.gz) is refused in preflight (exit 9, what/why/next) and the cluster is untouched;
 *   verify names it (exit 3).
 */

describe('point-in-time recovery: timelines and tablespaces', () => {
  let work: string;
  let cluster: ArchivingCluster;
  let pg: PostgresSandbox;
  let bin: string;
  let env: NodeJS.ProcessEnv;
  let recipe: string;
  let afterTwo = '';
  let lastOnTl2 = '';
  let binDir = '';
  let waldumpLog = '';

  const cli = (args: string[]): ResultPromise =>
    execa(process.execPath, [bin, ...args], { env, reject: false, cwd: work, stdin: 'ignore' });
  const show = (r: { exitCode?: number; stdout: unknown; stderr: unknown }): string =>
    `exit ${r.exitCode}\n--- stdout\n${String(r.stdout)}\n--- stderr\n${String(r.stderr)}`;
  const rows = (): Promise<string> => pg.psql("SELECT coalesce(string_agg(i::text, ',' ORDER BY i), '') FROM t");
  const iso = (pgTime: string): number => Date.parse(pgTime.replace(' ', 'T').replace(/\+00$/, 'Z'));

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'ra-pitr-tl-'));
    bin = cliBin();
    const { serviceCtlArgv } = (await import(join(dirname(bin), 'sandbox', 'service-ctl.js'))) as { serviceCtlArgv: ServiceCtlArgv };
    cluster = await startArchivingCluster(work, { initdbArgs: ['--wal-segsize=1'] });
    pg = cluster.pg;
    await pg.psql('CREATE TABLE t (i int PRIMARY KEY, at timestamptz DEFAULT clock_timestamp()); INSERT INTO t (i) VALUES (0)');
    await cluster.baseBackup('2026-12-01_03-00-00');
    for (const i of [1, 2, 3]) {
      await pg.psql(`INSERT INTO t (i) VALUES (${i}); SELECT pg_switch_wal();`);
      await new Promise((r) => setTimeout(r, 400));
      if (i === 2) afterTwo = await pg.psql('SELECT clock_timestamp()');
      await new Promise((r) => setTimeout(r, 600));
    }
    await cluster.switchAndArchive();
    const service = await cluster.toService(serviceCtlArgv);
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
    // The server binaries through a dir whose pg_waldump logs its argv (then runs the real one):
    // every read must carry an --end, or pg_waldump looks for the segment after the staged ones
    // and retries the missing file for 5 s before it gives up (once per read).
    binDir = join(work, 'bin');
    await mkdir(binDir);
    for (const n of await readdir(pg.binDir)) if (n !== 'pg_waldump') await symlink(join(pg.binDir, n), join(binDir, n));
    waldumpLog = join(work, 'pg_waldump.argv');
    await writeFile(
      join(binDir, 'pg_waldump'),
      `#!/bin/sh\nprintf '%s\\n' "$*" >> '${waldumpLog}'\nexec '${pg.bin('pg_waldump')}' "$@"\n`,
      { mode: 0o755 },
    );
    recipe = join(work, 'pitr-tl.yaml');
    const spec = JSON.parse(
      cluster.recipe({ name: 'pitr-tl', service, passwordEnv: 'IT_PG_PASSWORD', evidenceDir: join(work, 'evidence') }),
    ) as { components: { postgres: { cluster: Record<string, unknown> } } };
    spec.components.postgres.cluster['bin'] = binDir;
    await writeFile(recipe, JSON.stringify(spec));
    // The earlier PITR: back to after write 2; the promotion starts timeline 2.
    const r = await cli(['restore', '--recipe', recipe, '--to', afterTwo, '--yes', '--quick-verify']);
    expect(r.exitCode, show(r)).toBe(0);
    expect(await rows()).toBe('0,1,2');
    for (const i of [10, 11]) {
      await pg.psql(`INSERT INTO t (i) VALUES (${i}); SELECT pg_switch_wal();`);
      await new Promise((r) => setTimeout(r, 300));
    }
    lastOnTl2 = await pg.psql('SELECT at FROM t WHERE i = 11');
    await cluster.switchAndArchive();
    const names = await readdir(cluster.archive);
    expect(names).toContain('00000002.history');
    // Timeline 1 goes on past the switch point in the archive (write 3): the abandoned branch.
    expect(names.some((n) => n.startsWith('00000002') && /^[0-9A-F]{24}$/.test(n))).toBe(true);
  }, 240_000);

  afterAll(async () => {
    await pg?.dispose();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('the window follows the history file to timeline 2, and deep verify reads both timelines', async () => {
    const l = await cli(['list', '--recipe', recipe, '--json']);
    expect(l.exitCode, show(l)).toBe(0);
    const listed = JSON.parse(String(l.stdout)) as {
      bases: Array<{
        window: { to: string; lastSegment: string } | null;
        timelines: Array<{ timeline: number }>;
        recoveryTimeline: string | number;
        gap: unknown;
      }>;
    };
    const b = listed.bases[0]!;
    expect(b.window, show(l)).not.toBeNull();
    expect(b.window!.lastSegment.startsWith('00000002'), show(l)).toBe(true);
    expect(b.timelines.map((t) => t.timeline)).toEqual([1, 2]);
    expect(b.recoveryTimeline).toBe('latest');
    expect(b.gap).toBeNull();
    // The window ends at timeline 2's last commit (write 11), not at the abandoned end of timeline 1.
    expect(Math.abs(Date.parse(b.window!.to) - iso(lastOnTl2)), show(l)).toBeLessThan(1000);
    const v = await cli(['verify', 'latest', '--recipe', recipe]);
    expect(v.exitCode, show(v)).toBe(0);
    expect(String(v.stdout)).toContain('timelines 1 → 2');
    // list (the window) and deep verify (the read-through) each ran pg_waldump, every time with an
    // end at a segment boundary (1 MiB segments here), never left to look for a file after the run.
    const reads = (await readFile(waldumpLog, 'utf8')).trim().split('\n');
    expect(reads.length).toBeGreaterThan(1);
    for (const argv of reads) expect(argv, argv).toMatch(/--end=[0-9A-F]+\/[0-9A-F]*00000( |$)/);
  });

  it('restore --to latest from the timeline-1 base replays onto timeline 2: the abandoned write 3 is not back', async () => {
    const r = await cli(['restore', '--recipe', recipe, '--to', 'latest', '--yes', '--quick-verify']);
    expect(r.exitCode, show(r)).toBe(0);
    expect(await rows()).toBe('0,1,2,10,11');
    expect(await pg.psql('SELECT pg_is_in_recovery()')).toBe('f');
  }, 120_000);

  it('a base with a tablespace is refused in preflight (exit 9), naming what, why and what to do; nothing is touched', async () => {
    const loc = join(work, 'ts1');
    await mkdir(loc);
    await chown(loc, cluster.uid, cluster.gid);
    await pg.psql(`CREATE TABLESPACE ts1 LOCATION '${loc}'; CREATE TABLE u (i int) TABLESPACE ts1; INSERT INTO u VALUES (7)`);
    const dir = await cluster.baseBackup('2026-12-01_04-00-00');
    const tars = (await readdir(dir)).filter((n) => /^\d+\.tar(\.gz)?$/.test(n));
    expect(tars).toHaveLength(1);
    await cluster.switchAndArchive();
    const before = await rows();
    const asideBefore = (await readdir(dirname(pg.dataDir))).filter((n) => n.includes('.pre-pitr-'));
    const v = await cli(['verify', '2026-12-01_04-00-00', '--recipe', recipe, '--quick']);
    expect(v.exitCode, show(v)).toBe(3);
    expect(String(v.stdout)).toContain('pitr-tablespaces');
    const r = await cli(['restore', '--recipe', recipe, '--backup', '2026-12-01_04-00-00', '--to', 'latest', '--yes']);
    expect(r.exitCode, show(r)).toBe(9);
    const err = String(r.stderr);
    expect(err).toContain(tars[0]);
    expect(err).toMatch(/does not restore tablespaces/);
    expect(err).toMatch(/tablespace_map/);
    expect(err).toMatch(/Next:/);
    // Untouched: the same server, the same rows, no data directory set aside.
    expect(await rows()).toBe(before);
    expect(await pg.psql('SELECT i FROM u')).toBe('7');
    expect((await readdir(dirname(pg.dataDir))).filter((n) => n.includes('.pre-pitr-'))).toEqual(asideBefore);
  }, 120_000);
});
