import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { SandboxGroup, type PostgresSandbox } from '../source/sandbox/index.js';
import { buildCli } from '../scripts/build.js';
import { indexHeavyRolesSql } from '../test/support/index-heavy.js';
import { conn, median, oneStepPlan, plainRestoreAction, recreate } from './common.js';

/**
 * Where the CPU of a plain parallel restore goes (issue 14), robust on a shared machine: for
 * `pg_restore -j2` of the custom dump and the tool's plain parallel restore (--jobs 2) of the
 * same data, interleaved, CPU seconds of
 * - the PostgreSQL server (the postmaster's own, its reaped backends' and its live children's,
 *   from /proc/<pid>/stat before and after),
 * - the client side: pg_restore and its workers, or the engine's Node process and its psql
 *   children (GNU time %U+%S of the process tree; the Node process alone from process.cpuUsage()),
 * plus wall time and the load average. Uses a cached world (bench/.cache, bench/plain-parallel.ts):
 *
 *   CPU_SPLIT_WORLD=bench/.cache/index-heavy-960000-... CPU_SPLIT_RUNS=3 node --import tsx bench/cpu-split.ts
 *
 * CPU_SPLIT_PROFILE=dir adds `--cpu-prof --cpu-prof-dir=dir` to the engine process.
 * CPU_SPLIT_TOOL=dir uses an already compiled tool (its bench/restore-child.js) instead of compiling;
 * a variant `parallel@dir` (CPU_SPLIT_VARIANTS=pgRestore,parallel@/tmp/before,parallel@/tmp/after)
 * runs the compiled tool in dir, so two builds are compared interleaved; `single` is the single stream.
 */

const exec = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.join(here, '..');
const TICK = 100; // USER_HZ on Linux

async function procCpu(pid: number, withChildren: boolean): Promise<number> {
  const s = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  // fields after the comm: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14)
  const n = (i: number): number => Number(f[i] ?? 0);
  return (n(11) + n(12) + (withChildren ? n(13) + n(14) : 0)) / TICK;
}

/** CPU seconds of the server: the postmaster with its reaped children, plus its live children. */
async function serverCpu(pg: PostgresSandbox): Promise<number> {
  const pm = pg.pid()!;
  let total = await procCpu(pm, true);
  for (const d of await readdir('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const s = await readFile(`/proc/${d}/stat`, 'utf8').catch(() => '');
    const ppid = Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid === pm) total += await procCpu(Number(d), false);
  }
  return total;
}

async function timedTree(
  argv: string[],
  env: NodeJS.ProcessEnv,
  timeFile: string,
): Promise<{ wall: number; cpu: number; rssKiB: number; stdout: string }> {
  const t = performance.now();
  const { stdout } = await exec('/usr/bin/time', ['-f', '%U %S %M', '-o', timeFile, ...argv], {
    env,
    maxBuffer: 64 * 1024 * 1024,
    cwd: repo,
  });
  const wall = (performance.now() - t) / 1000;
  const [u, s, m] = (await readFile(timeFile, 'utf8')).trim().split('\n').at(-1)!.split(' ').map(Number);
  return { wall, cpu: u! + s!, rssKiB: m!, stdout };
}

/** The tool as it ships (scripts/build.ts), with bench/restore-child.ts as one more entry of the bundle: `<work>/build/out`. */
async function buildTool(work: string): Promise<string> {
  const root = path.join(work, 'build');
  const out = path.join(root, 'out');
  await mkdir(root, { recursive: true });
  await buildCli(out, { extraEntries: { 'bench/restore-child': 'bench/restore-child.ts' } });
  await exec('cp', ['--', path.join(repo, 'package.json'), path.join(root, 'package.json')]);
  await exec('ln', ['-sfn', '--', path.join(repo, 'node_modules'), path.join(root, 'node_modules')]);
  return path.join(out, 'bench', 'restore-child.js');
}

interface Sample {
  wall: number;
  server: number;
  client: number;
  node?: number;
  rssKiB: number;
  load: number;
}

async function main(): Promise<void> {
  const world = process.env['CPU_SPLIT_WORLD'];
  if (!world) throw new Error('CPU_SPLIT_WORLD=<bench/.cache/index-heavy-...> is required');
  const runs = Number(process.env['CPU_SPLIT_RUNS'] ?? 3);
  const variants = (process.env['CPU_SPLIT_VARIANTS'] ?? 'pgRestore,parallel').split(',');
  const group = new SandboxGroup();
  try {
    const pg = await group.postgres(process.env['BENCH_PG_CONF'] ? { extraConf: process.env['BENCH_PG_CONF'].split(';') } : {});
    const work = await group.tempDir('ra-cpu-split-');
    await pg.psql(indexHeavyRolesSql());
    const childOf = (v: string): string | undefined =>
      v.includes('@') ? path.join(v.slice(v.indexOf('@') + 1), 'bench', 'restore-child.js') : undefined;
    const child = process.env['CPU_SPLIT_TOOL']
      ? path.join(process.env['CPU_SPLIT_TOOL'], 'bench', 'restore-child.js')
      : await buildTool(work);
    const profile = process.env['CPU_SPLIT_PROFILE'];
    const timeFile = path.join(work, 'time.txt');
    const baseEnv = { ...process.env, ...pg.env(), BENCH_PGPASSWORD: pg.password };
    const samples: Record<string, Sample[]> = Object.fromEntries(variants.map((v) => [v, []]));
    for (let i = 0; i < runs; i++) {
      for (let k = 0; k < variants.length; k++) {
        const v = variants[(k + i) % variants.length]!;
        await recreate(pg, 'target');
        // A `+mwm` variant runs with PGOPTIONS=-c maintenance_work_mem=1024MB (the sessions' index builds).
        const env = v.includes('+mwm') ? { ...baseEnv, PGOPTIONS: '-c maintenance_work_mem=1024MB' } : baseEnv;
        const s0 = await serverCpu(pg);
        let r: Awaited<ReturnType<typeof timedTree>>;
        let node: number | undefined;
        if (v.startsWith('pgRestore')) {
          r = await timedTree(
            [pg.bin('pg_restore'), '--jobs=2', '--exit-on-error', ...conn(pg, 'target'), path.join(world, 'world.dump')],
            env,
            timeFile,
          );
        } else {
          const action = plainRestoreAction(pg, path.join(world, 'world.sql.gz'), v.startsWith('parallel') ? 2 : undefined);
          const planFile = path.join(work, 'plan.json');
          await writeFile(planFile, JSON.stringify(oneStepPlan(action, { lockKey: 'recipe:bench-cpu', jobs: 2 })));
          const prof = profile ? ['--cpu-prof', `--cpu-prof-dir=${profile}`] : [];
          r = await timedTree([process.execPath, ...prof, childOf(v) ?? child, planFile, path.join(work, 'locks')], env, timeFile);
          const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { cpuMs: number; outcome: string; error?: string };
          if (out.outcome !== 'restored') throw new Error(`engine restore failed: ${out.error ?? out.outcome}`);
          node = out.cpuMs / 1000;
        }
        // Backends exit after their client disconnects: wait until the postmaster has reaped them.
        for (let t = 0; t < 50; t++) {
          const n = Number(await pg.psql("SELECT count(*) FROM pg_stat_activity WHERE datname = 'target'"));
          if (n === 0) break;
          await new Promise((res) => setTimeout(res, 100));
        }
        await new Promise((res) => setTimeout(res, 200));
        const server = (await serverCpu(pg)) - s0;
        const sample: Sample = {
          wall: r.wall,
          server,
          client: r.cpu,
          ...(node !== undefined ? { node } : {}),
          rssKiB: r.rssKiB,
          load: os.loadavg()[0] ?? 0,
        };
        samples[v]!.push(sample);
        process.stderr.write(
          `round ${i + 1} ${v}: wall ${sample.wall.toFixed(2)} s, server ${server.toFixed(2)} s CPU, client tree ${r.cpu.toFixed(2)} s${node !== undefined ? ` (node ${node.toFixed(2)}, psql ${(r.cpu - node).toFixed(2)})` : ''}, rss ${r.rssKiB >> 10} MiB, load ${sample.load.toFixed(1)}\n`,
        );
      }
    }
    for (const v of variants) {
      const s = samples[v]!;
      const m = (f: (x: Sample) => number): string => median(s.map(f)).toFixed(2);
      process.stdout.write(
        `${v}: median wall ${m((x) => x.wall)} s, server CPU ${m((x) => x.server)} s, client CPU ${m((x) => x.client)} s${s[0]?.node !== undefined ? ` (node ${m((x) => x.node!)} s, psql ${m((x) => x.client - x.node!)} s)` : ''}, peak RSS ${Math.max(...s.map((x) => x.rssKiB)) >> 10} MiB\n`,
      );
    }
  } finally {
    await group.stopAll();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
