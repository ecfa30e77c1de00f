import { execFile } from 'node:child_process';
import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { SandboxGroup } from '../source/sandbox/index.js';
import { indexHeavyRolesSql } from '../test/support/index-heavy.js';
import { conn, oneStepPlan, plainRestoreAction, recreate } from './common.js';

/**
 * Where a parallel restore's time goes, statement by statement (issue 14): one throwaway server
 * with log_min_duration_statement = 0, then `pg_restore -j2` of the custom dump and/or the tool's
 * restore of the plain dump (parallel on 2 connections, or the single stream), each into a fresh
 * database; for each, the busy time per backend and every statement over 150 ms with its start
 * (relative to the first statement), duration and backend. Comparing the two shows scheduling
 * differences (which index builds first, which connection waits) that wall times alone hide.
 *
 *   TL_WORLD=bench/.cache/index-heavy-960000-... TL_CHILD=<built>/bench/restore-child.js \
 *     TL_VARIANTS=pgRestore,parallel node --import tsx bench/timeline.ts
 *
 * Variants: pgRestore, parallel, single, parallel-shm (the parallel restore staging on /dev/shm, a
 * tmpfs: whether the staging file's writeback to disk costs). TL_CHILD is bench/restore-child.ts inside a build of the tool (scripts/build.ts buildCli with the
 * extra entry 'bench/restore-child', as bench/cpu-split.ts builds it).
 */

const exec = promisify(execFile);

/** Sectors (512 bytes) written to every whole disk so far (/proc/diskstats). */
async function sectorsWritten(): Promise<number> {
  const text = await readFile('/proc/diskstats', 'utf8').catch(() => '');
  let n = 0;
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length > 9 && /^(vd|sd|nvme\d+n|xvd)[a-z0-9]*$/.test(f[2]!) && !/\d$/.test(f[2]!.replace(/^nvme\d+n\d+/, ''))) n += Number(f[9]);
  }
  return n;
}

async function main(): Promise<void> {
  const world = process.env['TL_WORLD'];
  const child = process.env['TL_CHILD'];
  if (!world || !child) throw new Error('TL_WORLD=<bench/.cache/index-heavy-...> and TL_CHILD=<built restore-child.js> are required');
  const variants = (process.env['TL_VARIANTS'] ?? 'pgRestore,parallel').split(',');
  const group = new SandboxGroup();
  try {
    const pg = await group.postgres();
    const work = await group.tempDir('ra-tl-');
    await pg.psql(indexHeavyRolesSql());
    await pg.psql('ALTER SYSTEM SET log_min_duration_statement = 0');
    await pg.psql("ALTER SYSTEM SET log_line_prefix = '%m [%p] '");
    await pg.psql('SELECT pg_reload_conf()');
    const env = { ...process.env, ...pg.env(), BENCH_PGPASSWORD: pg.password };
    for (const v of variants) {
      await recreate(pg, 'target');
      const from = (await stat(pg.logFile)).size;
      await exec('sync');
      const written0 = await sectorsWritten();
      const t0 = Date.now();
      if (v === 'pgRestore') {
        await exec(pg.bin('pg_restore'), ['--jobs=2', '--exit-on-error', ...conn(pg, 'target'), path.join(world, 'world.dump')], { env });
      } else {
        const action = plainRestoreAction(pg, path.join(world, 'world.sql.gz'), v.startsWith('parallel') ? 2 : undefined);
        const planFile = path.join(work, 'plan.json');
        await writeFile(planFile, JSON.stringify(oneStepPlan(action, { lockKey: 'recipe:tl', jobs: 2 })));
        // parallel-shm: the engine's temp dir (its plain-split staging) on /dev/shm (a tmpfs: no disk writes).
        const childEnv = v === 'parallel-shm' ? { ...env, TMPDIR: '/dev/shm' } : env;
        await exec(process.execPath, [child, planFile, path.join(work, 'locks')], { env: childEnv, maxBuffer: 1 << 26 });
      }
      const wall = (Date.now() - t0) / 1000;
      // What the run left dirty is written now, so it counts here, not in the next run.
      await exec('sync');
      const writtenMiB = ((await sectorsWritten()) - written0) / 2048;
      await new Promise((r) => setTimeout(r, 300));
      const log = (await readFile(pg.logFile, 'utf8')).slice(from);
      const rows: Array<{ end: number; pid: string; ms: number; stmt: string }> = [];
      for (const m of log.matchAll(/^(\S+ \S+) \S+ \[(\d+)\] LOG:  duration: ([\d.]+) ms  statement: ([^\n]*)/gm)) {
        rows.push({ end: Date.parse(m[1]!.replace(' ', 'T') + 'Z'), pid: m[2]!, ms: Number(m[3]), stmt: m[4]!.slice(0, 90) });
      }
      const start = Math.min(...rows.map((r) => r.end - r.ms));
      console.log(`\n== ${v}: wall ${wall.toFixed(2)} s, ${rows.length} statements, ${writtenMiB.toFixed(0)} MiB written to disk`);
      const byPid = new Map<string, number>();
      for (const r of rows) byPid.set(r.pid, (byPid.get(r.pid) ?? 0) + r.ms);
      console.log('busy per backend (s):', [...byPid].map(([p, ms]) => `${p}:${(ms / 1000).toFixed(2)}`).join(' '));
      for (const r of rows.filter((r) => r.ms > 150).sort((a, b) => a.end - a.ms - (b.end - b.ms)))
        console.log(
          `${((r.end - r.ms - start) / 1000).toFixed(2).padStart(7)} +${(r.ms / 1000).toFixed(2).padStart(6)} [${r.pid}] ${r.stmt}`,
        );
    }
  } finally {
    await group.stopAll();
  }
}
main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
