import { execFile } from 'node:child_process';
import { mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { serviceCtlArgv } from '../source/sandbox/service-ctl.js';
import { SandboxGroup } from '../source/sandbox/index.js';
import { startArchivingCluster } from '../test/support/pitr-cluster.js';
import { writeBenchSection } from './benchmarks-doc.js';
import { toolArgs } from './common.js';

/**
 * Point-in-time replay throughput (issue 16): WAL MB/s of a restore to `latest` by the engine
 * (`restore --to latest`, its start + follow-recovery steps) against PostgreSQL recovering the same
 * base + archive started by hand (tar -xzf, recovery.signal, restore_command = 'cp <archive>/%f %p',
 * pg_ctl start, polled until out of recovery). Writes the "Point-in-time replay" section of
 * docs/benchmarks.md. Needs root (the server runs as postgres). `npm run bench -- pitr`;
 * RESTORE_BENCH_PITR_ROWS (default 600000), RESTORE_BENCH_PITR_RUNS (default 2).
 */

const exec = promisify(execFile);
const repo = path.dirname(path.dirname(fileURLToPath(import.meta.url)));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}

export async function runPitrBench(): Promise<void> {
  const rows = Number(process.env['RESTORE_BENCH_PITR_ROWS'] ?? 600_000);
  const runs = Number(process.env['RESTORE_BENCH_PITR_RUNS'] ?? 2);
  const group = new SandboxGroup();
  const loadBefore = os.loadavg()[0] ?? 0;
  try {
    const work = await group.tempDir('ra-bench-pitr-');
    // The same archiving cluster and base backup as the integration tests (test/support/pitr-cluster.ts).
    const cluster = await startArchivingCluster(work, { extraConf: ['max_wal_size = 1GB'], start: (o) => group.postgres(o) });
    const { pg, archive } = cluster;
    const baseDir = await cluster.baseBackup('2026-12-01_03-00-00');
    process.stderr.write(`writing ${rows} rows of WAL...\n`);
    await pg.psql(
      `CREATE TABLE events (id bigserial PRIMARY KEY, at timestamptz, payload text);
       INSERT INTO events (at, payload) SELECT now(), md5(g::text) || md5((g * 7)::text) FROM generate_series(1, ${rows}) g;`,
    );
    await cluster.switchAndArchive(300_000);
    const walBytes = (
      await Promise.all(
        (await readdir(archive)).filter((n) => /^[0-9A-F]{24}$/.test(n)).map(async (n) => (await stat(path.join(archive, n))).size),
      )
    ).reduce((a, b) => a + b, 0);
    const expected = await pg.psql('SELECT count(*) FROM events');

    const service = await cluster.toService(serviceCtlArgv, 60_000);
    const recipe = path.join(work, 'bench-pitr.yaml');
    await writeFile(
      recipe,
      cluster.recipe({
        name: 'bench-pitr',
        service,
        passwordEnv: 'BENCH_PG_PASSWORD',
        evidenceDir: path.join(work, 'evidence'),
        recoveryTimeoutMinutes: 30,
        serviceTimeoutSeconds: 120,
      }),
    );
    const env = {
      ...process.env,
      BENCH_PG_PASSWORD: pg.password,
      RESTORE_ASSISTANT_STATE_DIR: path.join(work, 'state'),
      RESTORE_ASSISTANT_LOCK_DIR: path.join(work, 'locks'),
      NO_COLOR: '1',
    };
    const [ctlFile, ...ctlArgs] = service.start;
    const [stopFile, ...stopArgs] = service.stop;

    /** By hand: the same steps an operator types. Returns ms from start to out of recovery. */
    const byHand = async (): Promise<number> => {
      await exec(stopFile ?? process.execPath, stopArgs);
      const aside = `${pg.dataDir}.bench-aside`;
      await rename(pg.dataDir, aside);
      await mkdir(pg.dataDir, { mode: 0o700 });
      await exec('tar', ['-xzf', path.join(baseDir, 'base.tar.gz'), '-C', pg.dataDir]);
      await writeFile(path.join(pg.dataDir, 'recovery.signal'), '');
      await writeFile(
        path.join(pg.dataDir, 'postgresql.auto.conf'),
        `restore_command = 'cp ${archive}/%f %p'\nrecovery_target_action = 'promote'\n`,
        { flag: 'a' },
      );
      await exec('chown', ['-R', 'postgres:', pg.dataDir]);
      const t0 = performance.now();
      await exec(ctlFile ?? process.execPath, ctlArgs);
      for (;;) {
        const r = await pg.psql('SELECT pg_is_in_recovery()').catch(() => 't');
        if (r.trim() === 'f') break;
        await new Promise((res) => setTimeout(res, 200));
      }
      const ms = performance.now() - t0;
      if ((await pg.psql('SELECT count(*) FROM events')).trim() !== expected.trim()) throw new Error('by hand: wrong row count');
      await exec(stopFile ?? process.execPath, stopArgs);
      await rm(pg.dataDir, { recursive: true, force: true });
      await rename(aside, pg.dataDir);
      await exec(ctlFile ?? process.execPath, ctlArgs);
      return ms;
    };

    /** The engine: restore --to latest; the start + follow-recovery steps from its events. */
    const engine = async (): Promise<{ ms: number; totalMs: number }> => {
      const t0 = performance.now();
      await exec(process.execPath, toolArgs('restore', '--recipe', recipe, '--to', 'latest', '--yes', '--quick-verify'), {
        env,
        cwd: repo,
        maxBuffer: 64 << 20,
      });
      const totalMs = performance.now() - t0;
      const runsDir = path.join(work, 'evidence');
      const run =
        (await readdir(runsDir))
          .filter((d) => d.includes('-restore-'))
          .sort()
          .at(-1) ?? '';
      const events = (await readFile(path.join(runsDir, run, 'events.jsonl'), 'utf8'))
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { event?: { type?: string; stepId?: string; durationMs?: number } });
      let ms = 0;
      for (const e of events) {
        const b = e.event ?? {};
        if (b.type === 'step-finished' && (b.stepId === 'postgres:start-recovery' || b.stepId === 'postgres:follow-recovery'))
          ms += b.durationMs ?? 0;
      }
      if ((await pg.psql('SELECT count(*) FROM events')).trim() !== expected.trim()) throw new Error('engine: wrong row count');
      // The restore keeps the old data dir beside the new one: drop it to keep the disk flat.
      for (const d of await readdir(path.dirname(pg.dataDir)))
        if (d.includes('.pre-pitr-')) await rm(path.join(path.dirname(pg.dataDir), d), { recursive: true, force: true });
      return { ms, totalMs };
    };

    const hand: number[] = [];
    const eng: number[] = [];
    const total: number[] = [];
    for (let i = 0; i < runs; i++) {
      for (const who of i % 2 === 0 ? ['hand', 'engine'] : ['engine', 'hand']) {
        if (who === 'hand') hand.push(await byHand());
        else {
          const r = await engine();
          eng.push(r.ms);
          total.push(r.totalMs);
        }
        process.stderr.write(`${who}: ${Math.round((who === 'hand' ? hand : eng).at(-1) ?? 0)} ms\n`);
      }
    }
    const mb = walBytes / (1 << 20);
    const rate = (ms: number): string => `${(mb / (ms / 1000)).toFixed(1)} MiB/s`;
    const { stdout: pgv } = await exec(pg.bin('postgres'), ['--version']);
    const section = `## Point-in-time replay

\`npm run bench -- pitr\` (bench/pitr.ts), ${new Date().toISOString().slice(0, 10)}, ${os.cpus()[0]?.model ?? 'unknown CPU'} (${os.cpus().length} cores), Node ${process.version}, ${pgv.trim()}; load average ${loadBefore.toFixed(1)} at the start (a shared machine).

A throwaway cluster (sandbox, fsync off, 16 MiB segments) with \`archive_mode = on\` takes a \`pg_basebackup -Ft -z\`, then writes ${rows} rows: ${mb.toFixed(0)} MiB of archived WAL. Both sides replay all of it from the same base and archive to \`latest\`; time is from the server start to out of recovery (the engine: its start + follow-recovery steps). Median of ${runs} (of an even count: the slower middle run), alternating.

| | replay time | WAL throughput |
| --- | ---: | ---: |
| by hand (\`restore_command = 'cp …'\`, the same service controller's start, polled every 200 ms) | ${Math.round(median(hand))} ms | ${rate(median(hand))} |
| engine (\`restore --to latest\`: the checked restore_command, follow-recovery polling every second) | ${Math.round(median(eng))} ms | ${rate(median(eng))} |

Individual runs: by hand ${hand.map((x) => Math.round(x)).join(' / ')} ms; engine ${eng.map((x) => Math.round(x)).join(' / ')} ms. The whole engine restore (catalog, quick verification, stop, set aside, extract, recovery, reset, checks) took ${total.map((x) => Math.round(x / 1000)).join(' / ')} s.
The engine's replay includes up to one second of polling granularity (it checks \`pg_is_in_recovery()\` once a second).
`;
    await writeBenchSection('Point-in-time replay', section);
    process.stderr.write(section);
  } finally {
    await group.stopAll();
  }
}
