import { mkdtempSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseTarget, targetText } from '../../source/pitr/target.js';
import { cliBin, runCli } from '../support/cli.js';
import { keys } from '../support/keys.js';
import { startArchivingCluster, type ArchivingCluster, type ServiceCtlArgv } from '../support/pitr-cluster.js';
import { Terminal } from '../support/terminal.js';

/**
 * The guide's point-in-time restore end to end (issue 16): the real built binary in an 80x24
 * pseudo-terminal, real keystrokes, a real PostgreSQL 15 with WAL archiving. The base is listed
 * with its window, a time outside it is refused, a recorded time inside it is typed (with its zone,
 * as psql printed it), the cluster plan and the confirmation name the data directory and the time,
 * and after the run the table holds exactly the rows of that time.
 */

describe('guide: point-in-time restore in a pseudo-terminal against real PostgreSQL with archiving', () => {
  let base: string;
  let cluster: ArchivingCluster;
  let recipe: string;
  let env: NodeJS.ProcessEnv;
  let stopService: string[] = [];
  /** The server's clock_timestamp() after each write (as psql prints it) and the rows up to it. */
  const marks: Array<{ at: string; rows: string }> = [];
  const terminals: Terminal[] = [];
  const rows = (): Promise<string> => cluster.pg.psql("SELECT coalesce(string_agg(i::text, ',' ORDER BY i), '') FROM t");

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'ra-guide-pitr-'));
    const { serviceCtlArgv } = (await import(join(dirname(cliBin()), 'sandbox', 'service-ctl.js'))) as { serviceCtlArgv: ServiceCtlArgv };
    // The shared archiving set-up (test/support/pitr-cluster.ts), small: 1 MiB segments, three writes.
    cluster = await startArchivingCluster(base, { initdbArgs: ['--wal-segsize=1'] });
    await cluster.pg.psql('CREATE TABLE t (i int PRIMARY KEY); INSERT INTO t (i) VALUES (0)');
    await cluster.baseBackup('2026-12-01_03-00-00');
    for (let i = 1; i <= 3; i++) {
      await cluster.pg.psql(`INSERT INTO t (i) VALUES (${i}); SELECT pg_switch_wal();`);
      await new Promise((r) => setTimeout(r, 300));
      marks.push({ at: await cluster.pg.psql('SELECT clock_timestamp()'), rows: await rows() });
      await new Promise((r) => setTimeout(r, 700));
    }
    await cluster.switchAndArchive();
    const service = await cluster.toService(serviceCtlArgv);
    stopService = service.stop;
    recipe = join(base, 'guide-pitr.json');
    await writeFile(
      recipe,
      cluster.recipe({
        name: 'guide-pitr',
        service,
        passwordEnv: 'E2E_PITR_PASSWORD',
        evidenceDir: join(base, 'evidence'),
        checks: [{ name: 'table t readable', sql: { query: 'SELECT count(*) FROM t', minRows: 1 }, retries: 5, intervalSeconds: 0.5 }],
      }),
    );
    env = {
      ...process.env,
      E2E_PITR_PASSWORD: cluster.pg.password,
      XDG_RUNTIME_DIR: join(base, 'run'),
      XDG_STATE_HOME: join(base, 'state'),
      RESTORE_ASSISTANT_STATE_DIR: join(base, 'state'),
      RESTORE_ASSISTANT_LOCK_DIR: join(base, 'locks'),
      NO_COLOR: '1',
    };
  }, 180_000);

  afterAll(async () => {
    for (const t of terminals) t.kill();
    if (stopService[0]) await execa(stopService[0], stopService.slice(1), { reject: false });
    await cluster?.pg.dispose();
    if (base) await rm(base, { recursive: true, force: true });
  });

  it('restores the cluster to a typed time inside the window: exactly that time’s rows', async () => {
    const mark = marks[1]!;
    const t = Terminal.start(['guide', '--recipe', recipe], env, base, { cols: 80, rows: 24 });
    terminals.push(t);
    await t.waitFor('What do you want to do with guide-pitr?');
    t.write(keys.enter);
    const list = await t.waitFor('Restorable window (UTC)');
    expect(list).toMatch(/restorable from \d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)? UTC to/);
    t.write(keys.enter);
    await t.waitFor('to which point in time?');
    t.write(keys.down);
    await t.waitFor('› Immediately consistent');
    t.write(keys.down);
    await t.waitFor('› A time inside the window');
    t.write(keys.enter);
    await t.waitFor('Time with its zone');
    // An hour after the last write: outside the window, refused with the window; nothing read.
    const later = new Date(Date.parse(marks.at(-1)!.at.replace(' ', 'T').replace(/\+00$/, 'Z')) + 3600_000).toISOString();
    await t.type(later);
    await t.waitFor('is after the last archived commit');
    // The recorded time as psql printed it ("2026-12-01 03:00:05.123456+00"): its zone is part of it.
    await t.type(mark.at);
    const plan = await t.waitFor('IN-PLACE point-in-time restore of guide-pitr', 120_000);
    const flatPlan = plan.replace(/\s+/g, ' ');
    expect(flatPlan).toContain(`Cluster: `);
    expect(flatPlan).toMatch(/WAL segments \([\d.]+ [KM]iB\) verified/);
    t.write(keys.enter);
    const confirm = await t.waitFor('Type postgres');
    expect(confirm.replace(/\s+/g, ' ')).toMatch(
      /Type postgres to replace the cluster \S+ \(127\.0\.0\.1:\d+\) with its state at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ UTC/,
    );
    await t.type('postgres');
    const summary = await t.waitFor(/p print/, 180_000);
    expect(summary).toContain('Restore of guide-pitr from 2026-12-01_03-00-00: restored, healthy (exit 0)');
    expect(summary).toMatch(/Target: +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ UTC/);
    expect(summary).toMatch(/Replayed WAL: +out of recovery after \d+s; replayed to [0-9A-F]+\/[0-9A-F]+/);
    t.write('q');
    expect(await t.exited).toBe(0);
    expect(await rows()).toBe(mark.rows);
    expect(await cluster.pg.psql('SELECT pg_is_in_recovery()')).toBe('f');

    // The dry run the guide's preflight refusal names (session/guide-pitr.ts: plan --recipe F --backup ID --to T), as pasted.
    const target = parseTarget(mark.at);
    const dry = await runCli(['plan', '--recipe', recipe, '--backup', '2026-12-01_03-00-00', '--to', targetText(target)], {
      env: env as Record<string, string>,
      cwd: base,
    });
    expect(dry.code, `${dry.stdout}\n${dry.stderr}`).toBe(0);
    expect(dry.stderr).toContain('Dry run: nothing was touched.');
  }, 240_000);
});
