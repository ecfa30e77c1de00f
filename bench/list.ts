import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { writeBenchSection } from './benchmarks-doc.js';
import { median } from './common.js';
import { benchCli, machine } from './build-cli.js';

/**
 * `list` over 1,000 story-portal sets (issue 14: under 0.5 s), through the built CLI in its own
 * process (`node dist/bin.js list --root R`), as an operator runs it:
 * - cold: no cache file (the state directory's list cache removed before the run): every set is
 *   cataloged (parallel reads) and the cache written;
 * - warm: the cache from the run before: every set answered from it after its files are stat'ed;
 * - --no-cache: catalog every set, read and write no cache.
 * Runs interleave (cold, warm, --no-cache, …), medians of LIST_BENCH_RUNS (default 7). With
 * BENCH_BASELINE_CLI=<another build's bin.js> the same runs of that build interleave too (before/after).
 * CPU time (user + system, GNU time) is printed beside the wall time: on a shared 2-core machine
 * the wall time mostly measures the other load.
 *
 *   node --import tsx bench/list.ts     (LIST_BENCH_SETS, LIST_BENCH_RUNS to tune; BENCH_CLI to reuse a build)
 */

const exec = promisify(execFile);

function stampOf(t: number): string {
  return new Date(t).toISOString().slice(0, 19).replace('T', '_').replace(/:/g, '-');
}

/** A story-portal root as the audited script writes it: one directory per set, four files each. */
async function buildRoot(root: string, count: number): Promise<void> {
  await mkdir(root, { recursive: true });
  const t0 = Date.parse('2025-06-01T01:45:13Z');
  for (let i = 0; i < count; i++) {
    const id = stampOf(t0 + i * 6 * 3_600_000);
    const dir = path.join(root, id);
    await mkdir(dir);
    await Promise.all([
      writeFile(
        path.join(dir, 'postgres.sql.gz'),
        Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]), Buffer.alloc(2000 + (i % 97))]),
      ),
      writeFile(path.join(dir, 'redis.rdb'), Buffer.concat([Buffer.from('REDIS0010'), Buffer.alloc(500 + (i % 13))])),
      writeFile(path.join(dir, 'prometheus-data.tar.gz'), Buffer.concat([Buffer.from([0x1f, 0x8b, 8]), Buffer.alloc(4000)])),
      writeFile(
        path.join(dir, 'metadata.txt'),
        `Backup Date: ${id.replace('_', ' ').replace(/-(\d\d)-(\d\d)$/, ':$1:$2')}\nBackup Type: full\nHost: story-portal-prod\n` +
          `Components:\n  - PostgreSQL (agentic_platform)\n  - Redis\n  - Prometheus\nBackup Size:\n12M\n`,
      ),
    ]);
  }
}

interface Run {
  wallMs: number;
  cpuMs: number;
  hits?: number;
  misses?: number;
}

async function listOnce(cli: string, root: string, env: NodeJS.ProcessEnv, extra: string[]): Promise<Run> {
  const argv = [process.execPath, cli, 'list', '--root', root, ...extra];
  const timed = existsSync('/usr/bin/time') ? ['/usr/bin/time', '-f', 'cpu=%U+%S', ...argv] : argv;
  const t = performance.now();
  const r = await exec(timed[0]!, timed.slice(1), { env, maxBuffer: 64 * 1024 * 1024 });
  const wallMs = performance.now() - t;
  const cpu = /cpu=([\d.]+)\+([\d.]+)/.exec(r.stderr);
  const cache = /list cache: (\d+) set\(s\) from the cache, (\d+) cataloged/.exec(r.stderr);
  if (!r.stdout.includes('2025-06-01_01-45-13'))
    throw new Error(`list printed no sets:\n${r.stdout.slice(0, 500)}\n${r.stderr.slice(-500)}`);
  return {
    wallMs,
    cpuMs: cpu ? (Number(cpu[1]) + Number(cpu[2])) * 1000 : Number.NaN,
    ...(cache ? { hits: Number(cache[1]), misses: Number(cache[2]) } : {}),
  };
}

export async function runListBench(): Promise<void> {
  const count = Number(process.env['LIST_BENCH_SETS'] ?? 1000);
  const runs = Number(process.env['LIST_BENCH_RUNS'] ?? 7);
  const base = await mkdtemp(path.join(os.tmpdir(), 'ra-bench-list-'));
  try {
    const cli = await benchCli(path.join(base, 'cli'));
    const baseline = process.env['BENCH_BASELINE_CLI'] ? path.resolve(process.env['BENCH_BASELINE_CLI']) : undefined;
    const root = path.join(base, 'backups');
    await buildRoot(root, count);
    // The cache refuses sets whose files changed in the last 2 s (timestamps coarser than the clock).
    await new Promise((r) => setTimeout(r, 2_500));
    const state = path.join(base, 'state');
    const env: NodeJS.ProcessEnv = {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      HOME: process.env['HOME'] ?? base,
      NO_COLOR: '1',
      RESTORE_ASSISTANT_STATE_DIR: state,
      RESTORE_ASSISTANT_LOCK_DIR: path.join(base, 'locks'),
      RESTORE_ASSISTANT_DEBUG: '1',
    };
    const dropCache = async (): Promise<void> => rm(path.join(state, 'cache'), { recursive: true, force: true });
    const results: Record<string, Run[]> = { cold: [], warm: [], nocache: [], baseline: [] };
    const load0 = os.loadavg()[0] ?? 0;
    // One warm-up of each (page cache, the CLI's own modules).
    await listOnce(cli, root, env, ['--no-cache']);
    if (baseline) await listOnce(baseline, root, env, []);
    for (let i = 0; i < runs; i++) {
      await dropCache();
      results['cold']!.push(await listOnce(cli, root, env, []));
      results['warm']!.push(await listOnce(cli, root, env, []));
      results['nocache']!.push(await listOnce(cli, root, env, ['--no-cache']));
      if (baseline) results['baseline']!.push(await listOnce(baseline, root, env, []));
      process.stderr.write(`list bench: run ${i + 1}/${runs}\n`);
    }
    const load1 = os.loadavg()[0] ?? 0;
    const warm = results['warm']!;
    const allHits = warm.every((r) => r.hits === count && r.misses === 0);
    const cold = results['cold']!;
    const allMissed = cold.every((r) => r.misses === count);
    const files = (await readdir(path.join(state, 'cache')).catch(() => [] as string[])).length;
    const ms = (v: number): string => `${Math.round(v)} ms`;
    const row = (label: string, rs: Run[]): string =>
      `| ${label} | ${ms(median(rs.map((r) => r.wallMs)))} | ${ms(median(rs.map((r) => r.cpuMs)))} | ${ms(Math.min(...rs.map((r) => r.wallMs)))} |`;
    const medianWarm = median(warm.map((r) => r.wallMs));
    const medianWarmCpu = median(warm.map((r) => r.cpuMs));
    const date = new Date().toISOString().slice(0, 10);
    const section = `## list over 1,000 sets

\`npm run bench -- list\` (bench/list.ts), ${date}, on ${machine()}. Load average (1 min) ${load0.toFixed(1)} at the start, ${load1.toFixed(1)} at the end.

${count} story-portal sets (a directory each: postgres.sql.gz, redis.rdb, prometheus-data.tar.gz,
metadata.txt) in a temp dir, listed by the built CLI in its own process (\`node dist/bin.js list
--root R\`, start-up included). cold: no cache file (every set cataloged, 32 at a time, and the
cache written); warm: the cache of the run before (every set's files stat'ed, the entry used);
--no-cache: every set cataloged, no cache read or written. Runs interleave; median of ${runs}.
CPU is user + system time of the process (GNU time).

| list | wall (median) | CPU (median) | wall (fastest) |
| --- | ---: | ---: | ---: |
${row('cold (no cache file)', cold)}
${row('warm (cache)', warm)}
${row('--no-cache', results['nocache']!)}
${baseline ? `${row('baseline build (BENCH_BASELINE_CLI)', results['baseline']!)}\n` : ''}
Warm runs answered ${allHits ? 'every set' : 'NOT every set'} from the cache; cold runs cataloged ${allMissed ? 'every set' : 'NOT every set'}; ${files} cache file.
Target: under 500 ms warm: ${medianWarm < 500 ? `met (${ms(medianWarm)})` : `NOT met on the wall clock (${ms(medianWarm)}; CPU ${ms(medianWarmCpu)})`}.

Runs (wall ms): cold ${cold.map((r) => Math.round(r.wallMs)).join(', ')}; warm ${warm.map((r) => Math.round(r.wallMs)).join(', ')}; --no-cache ${results['nocache']!.map((r) => Math.round(r.wallMs)).join(', ')}${baseline ? `; baseline ${results['baseline']!.map((r) => Math.round(r.wallMs)).join(', ')}` : ''}.
`;
    process.stdout.write(`${section}\n`);
    await writeBenchSection('list over 1,000 sets', section);
  } finally {
    await rm(base, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  runListBench().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  });
}
