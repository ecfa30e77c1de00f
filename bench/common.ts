import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { PlannedAction } from '../source/actions/types.js';
import type { Plan } from '../source/plan/types.js';
import type { PostgresSandbox } from '../source/sandbox/index.js';

/** What the benchmarks share: statistics, timing, PostgreSQL connection argv, and the one-step engine run. */

const exec = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.join(here, '..');

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] ?? 0) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

/** Wall time of `fn` in ms. */
export async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

/** psql / pg_restore connection flags for `db` on the sandbox server. */
export function conn(pg: PostgresSandbox, db: string): string[] {
  return ['-h', pg.host, '-p', String(pg.port), '-U', pg.user, '-d', db];
}

/** Node's arguments that run the tool from source (tsx), then `args`: `[process.execPath, ...toolArgs('restore', ...)]`. */
export function toolArgs(...args: string[]): string[] {
  return ['--import', 'tsx', path.join(repo, 'source', 'bin.ts'), ...args];
}

/** Drop and create `db` (an identifier the benchmark chose, never data). */
export async function recreate(pg: PostgresSandbox, db: string): Promise<void> {
  await pg.psql(`DROP DATABASE IF EXISTS ${db}`);
  await pg.psql(`CREATE DATABASE ${db}`);
}

/** A Plan of one non-destructive step running `action`, for bench/restore-child.ts. */
export function oneStepPlan(action: PlannedAction, opts: { lockKey: string; jobs: number }): Plan {
  return {
    version: 1,
    mode: 'restore',
    createdAt: new Date().toISOString(),
    stamp: 'bench',
    recipe: { name: 'bench', file: '<bench>', digest: '-' },
    backup: { id: 'bench', time: new Date().toISOString(), layout: 'flat', location: '/', components: [] },
    targets: {},
    lockKeys: [opts.lockKey],
    steps: [
      {
        id: 'restore',
        title: 'Restore the dump',
        doneTitle: 'Dump restored',
        phase: 'postgres',
        lane: 'main',
        destructive: false,
        actions: [action],
        dependsOn: [],
      },
    ],
    options: {
      yes: true,
      rollbackOnUnhealthy: false,
      dropSafetyCopies: false,
      missingRoles: 'fail',
      parallel: false,
      jobs: opts.jobs,
    },
    facts: {},
    warnings: [],
    objectives: {},
  };
}

export interface EngineTiming {
  /** runPlan's wall time. */
  ms: number;
  /** CPU time of the engine process itself (not of psql/pg_restore). */
  cpuMs: number;
  /** Peak RSS of the engine process. */
  maxRssKiB: number;
}

/**
 * Run `plan` through runPlan in its own process (bench/restore-child.ts, so the peak RSS is the
 * engine's alone), with BENCH_PGPASSWORD set to the sandbox's password; throws unless it restored.
 */
export async function throughEngine(pg: PostgresSandbox, plan: Plan, work: string): Promise<EngineTiming> {
  const planFile = path.join(work, 'plan.json');
  await writeFile(planFile, JSON.stringify(plan));
  const { stdout } = await exec(
    process.execPath,
    ['--import', 'tsx', path.join(here, 'restore-child.ts'), planFile, path.join(work, 'locks')],
    {
      cwd: repo,
      env: { ...process.env, BENCH_PGPASSWORD: pg.password },
      maxBuffer: 64 * 1024 * 1024,
    },
  );
  const r = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as EngineTiming & { outcome: string; error?: string };
  if (r.outcome !== 'restored') throw new Error(`engine restore failed: ${r.error ?? r.outcome}`);
  return { ms: r.ms, cpuMs: r.cpuMs, maxRssKiB: r.maxRssKiB };
}

/**
 * The plan action of the tool's plain-dump restore of `file` into the database `target`: the
 * restricted psql of the single stream, or (`jobs`) the parallel split on that many connections.
 */
export function plainRestoreAction(pg: PostgresSandbox, file: string, jobs?: number): PlannedAction {
  return {
    type: 'exec',
    argv: [pg.bin('psql'), '-X', '-v', 'ON_ERROR_STOP=1', '--no-psqlrc', '--no-password', ...conn(pg, 'target')],
    envFrom: { PGPASSWORD: 'BENCH_PGPASSWORD' },
    input: { file, gunzip: true, psqlRestrict: true, ...(jobs ? { parallel: { jobs } } : {}) },
    progress: 'input-bytes',
    purpose: jobs ? `restore the plain dump on ${jobs} connections` : 'restore the plain dump',
    runsIn: 'host',
  };
}
