import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { PlannedAction } from '../source/actions/types.js';
import { formatBytes } from '../source/output.js';
import { backupPgCustom, SandboxGroup, storyPortalBackupId, type PostgresSandbox } from '../source/sandbox/index.js';
import { shellQuote } from '../source/text/shell.js';
import { indexHeavyRolesSql, indexHeavySql } from '../test/support/index-heavy.js';
import { buildCli } from '../scripts/build.js';
import { writeBenchSection } from './benchmarks-doc.js';
import { conn, plainRestoreAction, median, oneStepPlan, recreate, timed } from './common.js';

/**
 * Parallel restore of plain dumps (issue 14), on the index-heavy world (test/support/index-heavy.ts:
 * big tables with several indexes each, foreign keys, a trigger, a materialized view, grants),
 * built here at PLAIN_BENCH_ORDERS orders (default small: 200,000). Side by side in one run,
 * interleaved (the order rotates every run), median of PLAIN_BENCH_RUNS (default 5):
 *
 * - `gunzip -c dump.sql.gz | psql` (by hand);
 * - `pg_restore -j2` of a custom dump of the same data (by hand);
 * - the tool's plain single stream (the engine's exec step: psql restricted, verified bytes);
 * - the tool's plain parallel (--jobs 2: engine/plain-split/);
 * - the tool's whole restore (`restore --yes --jobs 2`): its RTO (confirm -> healthy, from the
 *   evidence) and the command's wall time (deep verification included);
 *
 * and the engine's peak RSS for the parallel restore of the big dump and of one 1/20 its size.
 * Writes the "Plain dumps in parallel" section of docs/benchmarks.md.
 *
 *   PLAIN_BENCH_ORDERS=2000000 PLAIN_BENCH_RUNS=3 node --import tsx bench/plain-parallel.ts
 */

const exec = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.join(here, '..');
const JOBS = 2;

async function byHandPlain(pg: PostgresSandbox, file: string): Promise<number> {
  await recreate(pg, 'target');
  const psql = [pg.bin('psql'), '-X', '-q', '-v', 'ON_ERROR_STOP=1', ...conn(pg, 'target')].map(shellQuote).join(' ');
  return timed(() =>
    exec('bash', ['-c', `set -o pipefail; gunzip -c ${shellQuote(file)} | ${psql} >/dev/null`], {
      env: { ...process.env, ...pg.env() },
      maxBuffer: 64 * 1024 * 1024,
    }),
  );
}

async function byHandCustom(pg: PostgresSandbox, file: string): Promise<number> {
  await recreate(pg, 'target');
  return timed(() =>
    exec(pg.bin('pg_restore'), [`--jobs=${JOBS}`, '--exit-on-error', ...conn(pg, 'target'), file], {
      env: { ...process.env, ...pg.env() },
      maxBuffer: 64 * 1024 * 1024,
    }),
  );
}

function engineAction(pg: PostgresSandbox, file: string, parallel: boolean): PlannedAction {
  return plainRestoreAction(pg, file, parallel ? JOBS : undefined);
}

/**
 * The tool as it ships (scripts/build.ts: the esbuild bundle) into `<work>/build/dist`, with
 * bench/restore-child.ts as one more entry of the same bundle, so engine runs and the whole CLI are
 * plain Node running the shipped code (no tsx loader in the process or in its peak RSS).
 */
async function buildTool(work: string): Promise<{ child: string; cli: string }> {
  const root = path.join(work, 'build');
  await mkdir(root, { recursive: true });
  const { bin } = await buildCli(path.join(root, 'dist'), { extraEntries: { 'bench/restore-child': 'bench/restore-child.ts' } });
  await exec('cp', ['--', path.join(repo, 'package.json'), path.join(root, 'package.json')]);
  await exec('ln', ['-sfn', '--', path.join(repo, 'node_modules'), path.join(root, 'node_modules')]);
  return { child: path.join(root, 'dist', 'bench', 'restore-child.js'), cli: bin };
}

interface EngineRun {
  ms: number;
  maxRssKiB: number;
  peakMiB: Record<string, number>;
}

async function throughEngine(pg: PostgresSandbox, action: PlannedAction, work: string, child: string): Promise<EngineRun> {
  await recreate(pg, 'target');
  const planFile = path.join(work, 'plan.json');
  await writeFile(planFile, JSON.stringify(oneStepPlan(action, { lockKey: 'recipe:bench-plain', jobs: JOBS })));
  const { stdout } = await exec(process.execPath, [child, planFile, path.join(work, 'locks')], {
    cwd: repo,
    env: { ...process.env, BENCH_PGPASSWORD: pg.password },
    maxBuffer: 64 * 1024 * 1024,
  });
  const r = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as EngineRun & { outcome: string; error?: string };
  if (r.outcome !== 'restored') throw new Error(`engine restore failed: ${r.error ?? r.outcome}`);
  return { ms: r.ms, maxRssKiB: r.maxRssKiB, peakMiB: r.peakMiB };
}

/**
 * The whole tool: `restore --yes --jobs 2` of a story-portal set, the compiled CLI under GNU time;
 * RTO from the run's report.json, the wall time, and the CLI process's peak RSS.
 */
async function wholeRestore(
  pg: PostgresSandbox,
  cli: string,
  recipe: string,
  setId: string,
  work: string,
): Promise<{ rtoMs: number; wallMs: number; maxRssKiB: number }> {
  const evidence = path.join(work, 'evidence');
  await pg.psql('DROP DATABASE IF EXISTS bench_rto');
  const before = new Set(await readdir(evidence).catch(() => [] as string[]));
  const timeFile = path.join(work, 'time.txt');
  const wallMs = await timed(() =>
    exec(
      '/usr/bin/time',
      [
        '-f',
        '%M',
        '-o',
        timeFile,
        process.execPath,
        cli,
        'restore',
        '--recipe',
        recipe,
        '--backup',
        setId,
        '--yes',
        '--jobs',
        String(JOBS),
      ],
      {
        cwd: work,
        env: {
          ...process.env,
          BENCH_PGPASSWORD: pg.password,
          NO_COLOR: '1',
          RESTORE_ASSISTANT_STATE_DIR: path.join(work, 'state'),
          RESTORE_ASSISTANT_LOCK_DIR: path.join(work, 'locks'),
        },
        maxBuffer: 64 * 1024 * 1024,
      },
    ),
  );
  const maxRssKiB = Number((await readFile(timeFile, 'utf8')).trim().split('\n').at(-1));
  const run = (await readdir(evidence)).find((d) => !before.has(d) && d.includes('-restore-'));
  if (!run) throw new Error('the restore left no evidence run');
  const report = JSON.parse(await readFile(path.join(evidence, run, 'report.json'), 'utf8')) as { rto: { measuredMs: number | null } };
  const kept = await pg.psql(
    "SELECT coalesce(string_agg(datname, ' '), '') FROM pg_database WHERE datname LIKE 'bench_rto__pre_restore_%'",
  );
  for (const db of kept.split(' ').filter(Boolean)) await pg.psql(`DROP DATABASE ${db}`);
  return { rtoMs: report.rto.measuredMs ?? Number.NaN, wallMs, maxRssKiB };
}

async function dumpPlainGz(pg: PostgresSandbox, db: string, file: string): Promise<void> {
  const dump = [pg.bin('pg_dump'), ...conn(pg, db)].map(shellQuote).join(' ');
  await exec('bash', ['-c', `set -o pipefail; ${dump} | gzip -c > ${shellQuote(file)}`], { env: { ...process.env, ...pg.env() } });
}

interface World {
  orders: number;
  plainGz: string;
  custom: string;
  /** Bytes of SQL in the plain dump. */
  uncompressed: number;
  sizeGz: number;
  sizeCustom: number;
}

/**
 * The dumps (plain .sql.gz and custom) of the index-heavy world at `orders` orders, built once and
 * kept under PLAIN_BENCH_CACHE (default bench/.cache, git-ignored) between runs: building a 1 GB
 * world takes longer than restoring it. The key is a digest of the world's SQL and the server's
 * major version, so a changed world is rebuilt; an entry without manifest.json is rebuilt, unless
 * another bench process is building it (its `building` file names a live pid): then it waits.
 */
async function cachedWorld(pg: PostgresSandbox, orders: number): Promise<World> {
  const key = createHash('sha256')
    .update(`${indexHeavySql(orders)}\0${pg.majorVersion}`)
    .digest('hex')
    .slice(0, 12);
  const dir = path.join(process.env['PLAIN_BENCH_CACHE'] ?? path.join(here, '.cache'), `index-heavy-${orders}-${key}`);
  const manifest = path.join(dir, 'manifest.json');
  const files = { plainGz: path.join(dir, 'world.sql.gz'), custom: path.join(dir, 'world.dump') };
  const building = path.join(dir, 'building');
  for (let waited = false; ; waited = true) {
    try {
      const m = JSON.parse(await readFile(manifest, 'utf8')) as World;
      process.stderr.write(`index-heavy world of ${orders} orders from the cache: ${dir}\n`);
      return { ...m, ...files };
    } catch {
      // not built (yet)
    }
    const pid = Number(await readFile(building, 'utf8').catch(() => ''));
    if (!(pid > 0 && pid !== process.pid && isAlive(pid))) break;
    if (!waited) process.stderr.write(`waiting for process ${pid} to finish building ${dir}...\n`);
    await new Promise((r) => setTimeout(r, 5000));
  }
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  await writeFile(building, String(process.pid));
  process.stderr.write(`building the index-heavy world: ${orders} orders into ${dir}...\n`);
  const t0 = performance.now();
  const db = `world_${orders}`;
  await pg.psql(`DROP DATABASE IF EXISTS ${db}`);
  await pg.psql(`CREATE DATABASE ${db}`);
  await pg.psql(indexHeavySql(orders), db);
  process.stderr.write(`  ${db} loaded after ${((performance.now() - t0) / 1000).toFixed(0)} s\n`);
  await dumpPlainGz(pg, db, files.plainGz);
  await backupPgCustom(pg, db, files.custom);
  await pg.psql(`DROP DATABASE ${db}`);
  const m: World = {
    orders,
    ...files,
    uncompressed: Number((await exec('sh', ['-c', `gunzip -c ${shellQuote(files.plainGz)} | wc -c`])).stdout.trim()),
    sizeGz: (await stat(files.plainGz)).size,
    sizeCustom: (await stat(files.custom)).size,
  };
  await writeFile(manifest, JSON.stringify(m, null, 2));
  await rm(building, { force: true });
  process.stderr.write(
    `world built in ${((performance.now() - t0) / 1000).toFixed(0)} s: plain ${formatBytes(m.sizeGz)} (${formatBytes(m.uncompressed)} SQL), custom ${formatBytes(m.sizeCustom)}\n`,
  );
  return m;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const METHODS = ['psql', 'pgRestore', 'single', 'parallel', 'whole'] as const;
type Method = (typeof METHODS)[number];

/** CPU time of the whole machine from /proc/stat, in ticks: all of it and the hypervisor's steal. */
async function cpuTicks(): Promise<{ total: number; steal: number }> {
  const line = (await readFile('/proc/stat', 'utf8').catch(() => '')).split('\n')[0] ?? '';
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest time is already in user)
  return { total: f.slice(0, 8).reduce((a, b) => a + (b || 0), 0), steal: f[7] ?? 0 };
}

export async function runPlainParallelBench(): Promise<void> {
  const orders = Number(process.env['PLAIN_BENCH_ORDERS'] ?? 9_600_000);
  const rssOrders = (process.env['PLAIN_BENCH_RSS_ORDERS'] ?? '960000,9600000').split(',').map(Number);
  const runs = Number(process.env['PLAIN_BENCH_RUNS'] ?? 5);
  const warmup = process.env['PLAIN_BENCH_WARMUP'] !== '0';
  // No new round starts after this time (ISO 8601); the section says how many rounds ran.
  const until = process.env['PLAIN_BENCH_ROUNDS_UNTIL'] ? Date.parse(process.env['PLAIN_BENCH_ROUNDS_UNTIL']) : Infinity;
  const group = new SandboxGroup();
  const loads: number[] = [os.loadavg()[0] ?? 0];
  const started = new Date();
  try {
    const pg = await group.postgres();
    const work = await group.tempDir('ra-bench-plain-');
    await pg.psql(indexHeavyRolesSql());
    if (process.env['PLAIN_BENCH_BUILD_ONLY'] === '1') {
      for (const n of [orders, ...rssOrders]) await cachedWorld(pg, n);
      return;
    }
    process.stderr.write('compiling the tool...\n');
    const tool = await buildTool(work);
    const world = await cachedWorld(pg, orders);
    const { plainGz, custom } = world;

    // The whole tool restores a story-portal set of the same dump.
    const root = path.join(work, 'story');
    const setId = storyPortalBackupId(new Date(Date.UTC(2026, 0, 1)));
    await mkdir(path.join(root, setId), { recursive: true });
    await exec('cp', ['--', plainGz, path.join(root, setId, 'postgres.sql.gz')]);
    await writeFile(path.join(root, setId, 'metadata.txt'), `Backup Date: ${setId}\nPlatform: bench\n`);
    const recipe = path.join(work, 'bench.yaml');
    await writeFile(
      recipe,
      JSON.stringify({
        name: 'bench-rto',
        backups: { root, layout: 'story-portal' },
        components: {
          postgres: {
            host: pg.host,
            port: pg.port,
            user: 'postgres',
            passwordEnv: 'BENCH_PGPASSWORD',
            database: 'bench_rto',
            bin: pg.binDir,
          },
        },
        checks: [{ name: 'orders', sql: { query: 'SELECT count(*) FROM shop.orders', minRows: 1 }, retries: 3, intervalSeconds: 0.5 }],
        evidence: { dir: path.join(work, 'evidence') },
      }),
    );

    const ms: Record<Method, number[]> = { psql: [], pgRestore: [], single: [], parallel: [], whole: [] };
    // The share of the machine's CPU time the hypervisor gave to other guests during each run (%).
    const steal: Record<Method, number[]> = { psql: [], pgRestore: [], single: [], parallel: [], whole: [] };
    const wall: number[] = [];
    const wholeRss: number[] = [];
    const parallelRss: EngineRun[] = [];
    const singleRss: EngineRun[] = [];
    const rss: { world: World; single: EngineRun; parallel: EngineRun; wholeKiB: number }[] = [];
    const pgv = (await exec(pg.bin('psql'), ['--version'])).stdout.trim();
    const write = async (final: boolean): Promise<void> => {
      loads.push(os.loadavg()[0] ?? 0);
      const section = benchSection({
        orders,
        runs,
        started,
        loads,
        world,
        ms,
        steal,
        wall,
        wholeRss,
        parallelRss,
        rss,
        pgv,
        final,
        warmup,
      });
      await writeBenchSection('Plain dumps in parallel', section);
      if (final) process.stdout.write(section);
    };

    // The dumps read once into the page cache; then (unless PLAIN_BENCH_WARMUP=0: on a 1 GB world each
    // takes minutes and the rotation already spreads a cold first run over all five) one warm-up of each
    // by-hand restore; then interleaved rounds, the order rotated each round.
    // Into /dev/null, never into this process: a child's getrusage maxrss starts from its parent's
    // peak at fork (Linux keeps the pre-exec high-water mark), so a big buffer here would show up as
    // every engine run's peak RSS.
    await exec('sh', ['-c', `cat -- ${shellQuote(plainGz)} ${shellQuote(custom)} >/dev/null`]);
    if (warmup) {
      await byHandPlain(pg, plainGz);
      await byHandCustom(pg, custom);
    }
    for (let i = 0; i < runs && Date.now() < until; i++) {
      const order = METHODS.map((_m, k) => METHODS[(k + i) % METHODS.length]!);
      for (const m of order) {
        const t0 = await cpuTicks();
        if (m === 'psql') ms.psql.push(await byHandPlain(pg, plainGz));
        else if (m === 'pgRestore') ms.pgRestore.push(await byHandCustom(pg, custom));
        else if (m === 'single') {
          const r = await throughEngine(pg, engineAction(pg, plainGz, false), work, tool.child);
          ms.single.push(r.ms);
          singleRss.push(r);
        } else if (m === 'parallel') {
          const r = await throughEngine(pg, engineAction(pg, plainGz, true), work, tool.child);
          ms.parallel.push(r.ms);
          parallelRss.push(r);
        } else {
          const r = await wholeRestore(pg, tool.cli, recipe, setId, work);
          ms.whole.push(r.rtoMs);
          wall.push(r.wallMs);
          wholeRss.push(r.maxRssKiB);
        }
        const t1 = await cpuTicks();
        steal[m].push(t1.total > t0.total ? (100 * (t1.steal - t0.steal)) / (t1.total - t0.total) : 0);
        process.stderr.write(
          `round ${i + 1}/${runs}: ${m} ${(ms[m].at(-1)! / 1000).toFixed(2)} s (load ${(os.loadavg()[0] ?? 0).toFixed(1)}, steal ${steal[m].at(-1)!.toFixed(1)}%)\n`,
        );
      }
      await write(false);
    }
    // Peak RSS at each size: for the timed world, the highest of its timed rounds (no extra runs); for
    // the others one run each of single, parallel and the whole CLI.
    const highest = (xs: EngineRun[]): EngineRun | undefined =>
      xs.reduce<EngineRun | undefined>((a, b) => (a && a.maxRssKiB >= b.maxRssKiB ? a : b), undefined);
    for (const n of [...new Set(rssOrders)].sort((a, b) => a - b)) {
      const w = n === orders ? world : await cachedWorld(pg, n);
      const fromRounds = n === orders ? { parallel: highest(parallelRss), single: highest(singleRss) } : undefined;
      const parallel = fromRounds?.parallel ?? (await throughEngine(pg, engineAction(pg, w.plainGz, true), work, tool.child));
      const single = fromRounds?.single ?? (await throughEngine(pg, engineAction(pg, w.plainGz, false), work, tool.child));
      let wholeKiB = n === orders && wholeRss.length ? Math.max(...wholeRss) : Number.NaN;
      // The timed world without timed rounds (PLAIN_BENCH_RUNS=0: only the RSS runs): its own set, one run.
      if (n === orders && !Number.isFinite(wholeKiB)) wholeKiB = (await wholeRestore(pg, tool.cli, recipe, setId, work)).maxRssKiB;
      if (n !== orders) {
        const setIdN = storyPortalBackupId(new Date(Date.UTC(2026, 0, 2)));
        await mkdir(path.join(root, setIdN), { recursive: true });
        await exec('cp', ['--', w.plainGz, path.join(root, setIdN, 'postgres.sql.gz')]);
        await writeFile(path.join(root, setIdN, 'metadata.txt'), `Backup Date: ${setIdN}\nPlatform: bench\n`);
        wholeKiB = (await wholeRestore(pg, tool.cli, recipe, setIdN, work)).maxRssKiB;
        await rm(path.join(root, setIdN), { recursive: true, force: true });
      }
      process.stderr.write(
        `peak RSS at ${formatBytes(w.uncompressed)} of SQL: parallel ${parallel.maxRssKiB >> 10} MiB, single ${single.maxRssKiB >> 10} MiB, whole CLI ${Math.round(wholeKiB) >> 10} MiB\n`,
      );
      rss.push({ world: w, single, parallel, wholeKiB });
      await write(false);
    }
    await write(true);
  } finally {
    await group.stopAll();
  }
}

function benchSection(r: {
  orders: number;
  runs: number;
  started: Date;
  loads: number[];
  world: World;
  ms: Record<Method, number[]>;
  steal: Record<Method, number[]>;
  wall: number[];
  wholeRss: number[];
  parallelRss: EngineRun[];
  rss: { world: World; single: EngineRun; parallel: EngineRun; wholeKiB: number }[];
  warmup: boolean;
  pgv: string;
  final: boolean;
}): string {
  const { ms, world } = r;
  const done = ms.whole.length;
  const med = Object.fromEntries(METHODS.map((m) => [m, median(ms[m])])) as Record<Method, number>;
  const s = (x: number): string => (Number.isFinite(x) ? `${(x / 1000).toFixed(2)} s` : '-');
  const ratio = (a: number, b: number): string => (Number.isFinite(a / b) ? `${(a / b).toFixed(2)}x` : '-');
  const mib = (kib: number): string => `${(kib / 1024).toFixed(0)} MiB`;
  const fastest = (m: Method): string => s(ms[m].length ? Math.min(...ms[m]) : Number.NaN);
  const cpu = os.cpus()[0]?.model.trim() ?? 'unknown CPU';
  const verdict = (ok: boolean): string => (ok ? 'met' : '**NOT met**');
  const speedup = med.psql / med.parallel;
  const vsPgRestore = med.parallel / med.pgRestore;
  const rto = med.whole / med.parallel;
  // Per round: every variant ran back to back in it, so the machine's drift between rounds (the same
  // restore took 110-168 s in one run) cancels in a round's ratio; the median of those next to the
  // ratio of the medians.
  const perRound = (a: Method, b: Method): number[] => ms[a].slice(0, Math.min(ms[a].length, ms[b].length)).map((x, i) => x / ms[b][i]!);
  const paired = {
    speedup: perRound('psql', 'parallel'),
    vsPgRestore: perRound('parallel', 'pgRestore'),
    rto: perRound('whole', 'parallel'),
  };
  const pairedLine = (label: string, xs: number[], target: string, ok: (x: number) => boolean): string =>
    `  - ${label}: median ${xs.length ? `${median(xs).toFixed(2)}x` : '-'} (target ${target}: ${xs.length ? verdict(ok(median(xs))) : '-'}); rounds ${xs.map((x) => `${x.toFixed(2)}x`).join(', ')}.`;
  const env = [
    `PLAIN_BENCH_ORDERS=${r.orders}`,
    `PLAIN_BENCH_RSS_ORDERS=${r.rss.map((x) => x.world.orders).join(',') || '-'}`,
    `PLAIN_BENCH_RUNS=${r.runs}`,
    ...(r.warmup ? [] : ['PLAIN_BENCH_WARMUP=0']),
  ].join(' ');
  const row = (label: string, m: Method): string =>
    `| ${label} | ${s(med[m])} | ${fastest(m)} | ${ratio(med[m], med.psql)} | ${ratio(med[m], med.pgRestore)} |`;
  const rssRows = r.rss.map(
    (x) =>
      `| ${x.world.orders.toLocaleString('en-US')} orders: ${formatBytes(x.world.sizeGz)} (${formatBytes(x.world.uncompressed)} of SQL) | ${mib(x.single.maxRssKiB)} | ${mib(x.parallel.maxRssKiB)} | ${x.parallel.peakMiB['heapTotal'] ?? '-'} / ${x.parallel.peakMiB['external'] ?? '-'} MiB | ${Number.isFinite(x.wholeKiB) ? mib(x.wholeKiB) : '-'} |`,
  );
  const rssValues = r.rss.flatMap((x) => [x.single.maxRssKiB, x.parallel.maxRssKiB]);
  const rssMax = rssValues.length ? Math.max(...rssValues) : Number.NaN;
  return `## Plain dumps in parallel

\`${env} node --import tsx bench/plain-parallel.ts\`, started ${r.started.toISOString().slice(0, 16)}Z, on ${cpu}
(${os.availableParallelism()} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB RAM), Node ${process.version}, ${r.pgv}, sandbox server (fsync off).
${Math.max(...r.loads) <= 3.5 ? 'Nothing else ran on the machine (no test suites or builds)' : '**The machine was shared with other work (test suites, builds)**'}: load average (1 min)
${r.loads[0]!.toFixed(1)} at the start, ${r.loads.at(-1)!.toFixed(1)} at the end, between ${Math.min(...r.loads).toFixed(1)} and ${Math.max(...r.loads).toFixed(1)} after each round (the restores themselves keep 2 cores busy: about 2).
${r.final ? '' : `\n(In progress: ${done} of ${r.runs} rounds so far.)\n`}
The index-heavy world (test/support/index-heavy.ts: ${world.orders.toLocaleString('en-US')} orders, ${(world.orders * 2).toLocaleString('en-US')} order lines,
customers and products, 9 secondary indexes, 7 primary/unique keys, 4 foreign keys, a trigger, a materialized view with an index,
comments and grants) dumped as plain \`pg_dump | gzip\` (${formatBytes(world.sizeGz)}, ${formatBytes(world.uncompressed)} of SQL) and as custom \`pg_dump -Fc\` (${formatBytes(world.sizeCustom)}),
built once and cached under bench/.cache. Every restore goes into a fresh database. The tool runs as it ships (the esbuild bundle; no tsx
loader). Interleaved (the order of the five rotates each round, so load changes hit every variant alike), median of ${done}${done < r.runs ? ` (of ${r.runs} planned: the run was time-boxed)` : ''} ${r.warmup ? 'after one warm-up of the by-hand ones' : 'with the dumps read into the page cache first and no warm-up restore (PLAIN_BENCH_WARMUP=0)'}.

| restore | median | fastest | vs \`gunzip \\| psql\` | vs \`pg_restore -j${JOBS}\` |
| --- | ---: | ---: | ---: | ---: |
${row('`gunzip -c \\| psql` (by hand)', 'psql')}
${row(`\`pg_restore -j${JOBS}\` of the custom dump (by hand)`, 'pgRestore')}
${row('tool, plain single stream', 'single')}
${row(`tool, plain parallel (--jobs ${JOBS})`, 'parallel')}
${row('tool, whole restore: RTO (confirm -> healthy)', 'whole')}

Times are wall times; a ratio is the row's median over the column's (below 1.00x: faster).

- Parallel vs \`gunzip | psql\`: ${speedup.toFixed(2)}x as fast (target >= 1.25x): ${verdict(speedup >= 1.25)}.
- Parallel vs \`pg_restore -j${JOBS}\`: ${ratio(med.parallel, med.pgRestore)} its time (target <= 1.05x): ${verdict(vsPgRestore <= 1.05)}.
- RTO vs the raw restore alone (the parallel restore step it runs): ${ratio(med.whole, med.parallel)} (target <= 1.15x, goal 1.10x): ${verdict(rto <= 1.15)}${rto <= 1.1 ? ', goal met' : ''}; vs \`pg_restore -j${JOBS}\`: ${ratio(med.whole, med.pgRestore)}.
  The command from start to exit (deep verification of every byte before the confirmation included) took ${s(median(r.wall))} (median).
- The same ratios round by round (each round runs the five back to back, so the machine's drift between rounds cancels; the verdicts above are on the medians of the times):
${pairedLine('`gunzip | psql` over parallel (as fast)', paired.speedup, '>= 1.25x', (x) => x >= 1.25)}
${pairedLine(`parallel over \`pg_restore -j${JOBS}\``, paired.vsPgRestore, '<= 1.05x', (x) => x <= 1.05)}
${pairedLine('RTO over the parallel restore step', paired.rto, '<= 1.15x', (x) => x <= 1.15)}

Runs (ms): psql ${ms.psql.map(Math.round).join(', ')}; pg_restore ${ms.pgRestore.map(Math.round).join(', ')}; single ${ms.single.map(Math.round).join(', ')};
parallel ${ms.parallel.map(Math.round).join(', ')}; RTO ${ms.whole.map(Math.round).join(', ')}; whole command ${r.wall.map(Math.round).join(', ')}.
${stealLine(r.steal)}

Peak RSS (getrusage maxrss) of the engine process running the restore (compiled, Node included), the same world at two sizes;
the last column is the parallel run's peak V8 heap / external (Buffer) memory from process.memoryUsage() sampled every 100 ms:

| dump | single stream | parallel | parallel heap / external | whole CLI (\`restore --yes --jobs ${JOBS}\`, GNU time %M) |
| --- | ---: | ---: | ---: | ---: |
${rssRows.join('\n')}

${r.rss.length >= 2 ? `From ${formatBytes(r.rss[0]!.world.uncompressed)} to ${formatBytes(r.rss.at(-1)!.world.uncompressed)} of SQL peak RSS changes by ${((r.rss.at(-1)!.parallel.maxRssKiB - r.rss[0]!.parallel.maxRssKiB) / 1024).toFixed(0)} MiB (parallel) and ${((r.rss.at(-1)!.single.maxRssKiB - r.rss[0]!.single.maxRssKiB) / 1024).toFixed(0)} MiB (single stream); the largest is ${mib(rssMax)} (target <= 150 MB and flat): ${verdict(rssMax <= (150 * 1e6) / 1024 && Math.abs(r.rss.at(-1)!.parallel.maxRssKiB - r.rss[0]!.parallel.maxRssKiB) <= 16 * 1024)}.` : ''}
${wholeLine(r.rss, r.wholeRss, world)}
The parallel restore spills everything after pre-data to one file in a private staging directory and reads entries back in
bounded pieces, so its memory does not follow the dump's size.
`;
}

/** Steal time per run: how much of the 2 cores the hypervisor gave to other guests while a run was timed. */
function stealLine(steal: Record<Method, number[]>): string {
  const all = METHODS.flatMap((m) => steal[m]);
  if (!all.length) return '';
  const pct = (xs: number[]): string => xs.map((x) => x.toFixed(1)).join(', ');
  return `CPU steal (/proc/stat: the share of the machine's CPU time the hypervisor gave to other guests) during each run, %: psql ${pct(steal.psql)}; pg_restore ${pct(steal.pgRestore)}; single ${pct(steal.single)}; parallel ${pct(steal.parallel)}; whole ${pct(steal.whole)} (median ${median(all).toFixed(1)}%, highest ${Math.max(...all).toFixed(1)}%).`;
}

/** The whole CLI's peak RSS: the target (<= 150 MB, flat in the dump's size) applies to it too. */
function wholeLine(rss: { world: World; wholeKiB: number }[], wholeRss: number[], world: World): string {
  const mib = (kib: number): string => `${(kib / 1024).toFixed(0)} MiB`;
  const sizes = rss.filter((x) => Number.isFinite(x.wholeKiB));
  const peak = sizes.length ? Math.max(...sizes.map((x) => x.wholeKiB)) : wholeRss.length ? Math.max(...wholeRss) : Number.NaN;
  if (!Number.isFinite(peak)) return '';
  const mb = (peak * 1024) / 1e6;
  const flat =
    sizes.length >= 2
      ? ` From ${formatBytes(sizes[0]!.world.uncompressed)} to ${formatBytes(sizes.at(-1)!.world.uncompressed)} of SQL it changes by ${((sizes.at(-1)!.wholeKiB - sizes[0]!.wholeKiB) / 1024).toFixed(0)} MiB.`
      : '';
  return `The whole CLI process (\`restore --yes --jobs ${JOBS}\`: deep verification, plan, restore, checks, evidence) peaked at ${mib(peak)} = ${mb.toFixed(0)} MB (on the ${formatBytes(world.uncompressed)} dump: ${wholeRss.length ? mib(Math.max(...wholeRss)) : '-'}; target <= 150 MB): ${mb <= 150 ? 'met' : '**NOT met**'}.${flat}`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  runPlainParallelBench().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  });
}
