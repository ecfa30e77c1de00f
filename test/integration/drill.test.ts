import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { assertDrillIsolation, drillRecipe, isolationProblems, type DrillSandbox } from '../../source/drill/isolate.js';
import { buildPlan } from '../../source/plan/build.js';
import { resolvePlanOptions } from '../../source/plan/options.js';
import { recipeFacts } from '../../source/probe/index.js';
import { listBackupSets } from '../../source/catalog/index.js';
import { loadRecipeFile } from '../../source/recipe/load.js';
import {
  backupStoryPortal,
  fingerprintPostgres,
  fingerprintPrometheus,
  fingerprintRedis,
  SandboxGroup,
  seedPostgres,
  seedRedis,
  serviceCtlArgv,
  type PostgresSandbox,
  type PrometheusSandbox,
  type RedisSandbox,
} from '../../source/sandbox/index.js';
import { cliBin, runCli } from '../support/cli.js';
import { pidAlive } from '../support/processes.js';

/**
 * A drill restores into scratch services only. "Production" here is a set of real throwaway
 * services with a recipe pointing at them; the drill must leave them exactly as they were and
 * never even connect to them.
 */

const DB = 'agentic_platform';

async function redisConnections(redis: RedisSandbox): Promise<number> {
  const info = await redis.cli(['INFO', 'stats']);
  return Number(/total_connections_received:(\d+)/.exec(info)?.[1] ?? NaN);
}

async function promRequests(prom: PrometheusSandbox): Promise<Record<string, number>> {
  // Reading /metrics only counts against the /metrics handler; everything else is someone else.
  const text = await (await fetch(`${prom.url}/metrics`)).text();
  const counts: Record<string, number> = {};
  for (const m of text.matchAll(/^prometheus_http_requests_total\{code="\d+",handler="([^"]+)"\} (\d+)/gm)) {
    const handler = m[1] ?? '';
    if (handler === '/metrics') continue;
    counts[handler] = (counts[handler] ?? 0) + Number(m[2]);
  }
  return counts;
}

function pgConnectionsLogged(pg: PostgresSandbox): number {
  return (readFileSync(pg.logFile, 'utf8').match(/connection received/g) ?? []).length;
}

describe('drill: restores into scratch services and never touches the real targets', () => {
  let base: string;
  let group: SandboxGroup;
  let pg: PostgresSandbox;
  let redis: RedisSandbox;
  let prom: PrometheusSandbox;
  let recipeFile: string;
  let evidenceDir: string;
  let stoppedMarker: string;

  beforeAll(async () => {
    base = mkdtempSync(path.join(tmpdir(), 'ra-drill-test-'));
    group = new SandboxGroup({ baseDir: base });
    [pg, redis, prom] = await Promise.all([group.postgres({ extraConf: ['log_connections = on'] }), group.redis(), group.prometheus()]);
    await Promise.all([seedPostgres(pg, DB), seedRedis(redis)]);
    await prom.waitForSamples(3);
    const root = path.join(base, 'backups');
    await backupStoryPortal({ pg, db: DB, redis, prom }, root);
    evidenceDir = path.join(base, 'evidence');
    stoppedMarker = path.join(base, 'app-was-stopped');
    recipeFile = path.join(base, 'prod.yaml');
    const touch = (file: string): string[] => [process.execPath, '-e', `require('fs').writeFileSync(${JSON.stringify(file)}, 'x')`];
    await writeFile(
      recipeFile,
      stringify({
        name: 'prod',
        backups: { root, layout: 'story-portal' },
        components: {
          postgres: { host: pg.host, port: pg.port, user: pg.user, passwordEnv: 'PROD_PGPASSWORD', database: DB },
          redis: {
            host: redis.host,
            port: redis.port,
            dataDir: redis.dir,
            dbfilename: redis.dbfilename,
            appendonly: false,
            service: {
              stop: serviceCtlArgv('stop', redis.spec),
              start: serviceCtlArgv('start', redis.spec),
              status: serviceCtlArgv('status', redis.spec),
            },
          },
          prometheus: {
            url: prom.url,
            dataDir: prom.dataDir,
            service: { stop: serviceCtlArgv('stop', prom.spec), start: serviceCtlArgv('start', prom.spec) },
          },
        },
        services: [{ name: 'api', stop: touch(stoppedMarker), start: touch(`${stoppedMarker}.started`) }],
        checks: [
          { name: 'users restored', sql: { query: 'select count(*) from app.users', minRows: 1 } },
          { name: 'redis keys', redis: { command: ['DBSIZE'], min: 1 } },
          { name: 'prometheus series', promql: { query: 'up', minSeries: 1 } },
          { name: 'api health', http: { url: 'http://127.0.0.1:9/health' }, when: ['restore'] },
          { name: 'api tcp', tcp: { host: '127.0.0.1', port: pg.port }, when: ['restore', 'drill'] },
        ],
        objectives: { rtoMinutes: 30, rpoMinutes: 1440 },
        evidence: { dir: evidenceDir },
      }),
    );
  }, 120_000);

  afterAll(async () => {
    await group?.stopAll();
    if (base) rmSync(base, { recursive: true, force: true });
  });

  it('restores the latest set into scratch services, passes its data checks, records a drill, leaves production untouched', async () => {
    const pgBefore = await fingerprintPostgres(pg, DB);
    const redisBefore = await fingerprintRedis(redis);
    const promAt = Math.floor(Date.now() / 1000) - 2;
    const promBefore = await fingerprintPrometheus(prom, promAt);
    // Connection counters last, so our own fingerprinting is not counted.
    const pgConn = pgConnectionsLogged(pg);
    const redisConn = await redisConnections(redis);
    const promReq = await promRequests(prom);
    const tmpBefore = readdirSync(tmpdir()).filter((n) => n.startsWith('restore-assistant-drill-'));

    const result = await runCli(['drill', '--recipe', recipeFile, '--backup', 'latest', '--yes'], {
      env: { PROD_PGPASSWORD: pg.password, XDG_STATE_HOME: path.join(base, 'xdg') },
    });
    expect(result.stderr + result.stdout).toContain('Drill of prod: PASSED');
    expect(result.code).toBe(0);
    // The http and tcp checks would reach real systems: skipped, and said so.
    expect(result.stdout + result.stderr).not.toContain('127.0.0.1:9/health');

    // Production never saw a connection from the drill.
    expect(pgConnectionsLogged(pg)).toBe(pgConn);
    expect(await redisConnections(redis)).toBe(redisConn + 1); // +1: the INFO call just made
    expect(await promRequests(prom)).toEqual(promReq);
    expect(existsSync(stoppedMarker)).toBe(false);
    // ...and its data is exactly as it was.
    expect(await fingerprintPostgres(pg, DB)).toEqual(pgBefore);
    expect(await fingerprintRedis(redis)).toEqual(redisBefore);
    expect(await fingerprintPrometheus(prom, promAt)).toEqual(promBefore);

    // Scratch services are gone.
    const tmpAfter = readdirSync(tmpdir()).filter((n) => n.startsWith('restore-assistant-drill-'));
    expect(tmpAfter.filter((n) => !tmpBefore.includes(n))).toEqual([]);

    // Recorded as a drill, with RTO and RPO, and the evidence verifies.
    const runs = readdirSync(evidenceDir).filter((n) => n.includes('-drill-'));
    expect(runs).toHaveLength(1);
    const report = JSON.parse(readFileSync(path.join(evidenceDir, runs[0] ?? '', 'report.json'), 'utf8')) as Record<string, unknown>;
    expect(JSON.stringify(report)).toContain('"kind":"drill"');
    const verify = await runCli(['evidence', 'verify', path.join(evidenceDir, runs[0] ?? '')]);
    expect(verify.code).toBe(0);
    const history = await runCli(['history', '--recipe', recipeFile, '--json']);
    expect(history.code).toBe(0);
    expect(history.stdout).toContain('drill');
    expect(readFileSync(path.join(evidenceDir, runs[0] ?? '', 'events.jsonl'), 'utf8')).not.toContain(pg.password);
  }, 240_000);

  it('records a drill of a damaged set as failed (exit 3), restoring nothing', async () => {
    const root = path.join(base, 'backups');
    const [good] = readdirSync(root).sort();
    const damaged = '2099-01-01_00-00-00';
    cpSync(path.join(root, good ?? ''), path.join(root, damaged), { recursive: true });
    const gz = path.join(root, damaged, 'postgres.sql.gz');
    const bytes = readFileSync(gz);
    writeFileSync(gz, bytes.subarray(0, Math.floor(bytes.length / 2)));
    const runsBefore = readdirSync(evidenceDir).filter((n) => n.includes('-drill-'));

    const result = await runCli(['drill', '--recipe', recipeFile, '--backup', damaged, '--yes'], {
      env: { PROD_PGPASSWORD: pg.password, XDG_STATE_HOME: path.join(base, 'xdg') },
    });
    expect(result.code).toBe(3);
    expect(result.stdout).toContain(`Drill FAILED: backup set ${damaged} is not restorable.`);
    expect(result.stdout + result.stderr).not.toContain('Starting scratch services');
    const run = readdirSync(evidenceDir).filter((n) => n.includes('-drill-') && !runsBefore.includes(n));
    expect(run).toHaveLength(1);
    expect((await runCli(['evidence', 'verify', path.join(evidenceDir, run[0] ?? '')])).code).toBe(0);
    const history = await runCli(['history', '--recipe', recipeFile, '--json']);
    expect(history.stdout).toContain(damaged);
    rmSync(path.join(root, damaged), { recursive: true, force: true });
  }, 120_000);

  it("verify with a recipe is recorded as a verify run in the recipe's evidence", async () => {
    const result = await runCli(['verify', 'latest', '--recipe', recipeFile], { env: { XDG_STATE_HOME: path.join(base, 'xdg') } });
    expect(result.code, result.stderr).toBe(0);
    const dir = /Evidence: (\S+)/.exec(result.stderr)?.[1];
    expect(dir).toBeDefined();
    expect(path.dirname(dir ?? '')).toBe(evidenceDir);
    expect((await runCli(['evidence', 'verify', dir ?? ''])).code).toBe(0);
    const history = JSON.parse((await runCli(['history', '--recipe', recipeFile, '--json'])).stdout) as {
      runs: Array<{ kind: string; outcome: string }>;
    };
    expect(history.runs.some((r) => r.kind === 'verify' && r.outcome === 'verified')).toBe(true);
  }, 120_000);

  it('a first Ctrl-C leaves the scratch services to the engine: they outlive its run-finished and are removed after it (exit 130)', async () => {
    const root = path.join(base, 'backups');
    const [good] = readdirSync(root).sort();
    // A set whose dump sleeps after its first data block: the drill is mid-restore for a minute.
    const slow = '2098-01-01_00-00-00';
    cpSync(path.join(root, good ?? ''), path.join(root, slow), { recursive: true });
    const gz = path.join(root, slow, 'postgres.sql.gz');
    const sql = gunzipSync(readFileSync(gz)).toString('utf8');
    const at = sql.indexOf('\n\\.\n') + 4;
    writeFileSync(gz, gzipSync(`${sql.slice(0, at)}SELECT pg_sleep(60);\n${sql.slice(at)}`));
    const drillRuns = (): string[] => (existsSync(evidenceDir) ? readdirSync(evidenceDir).filter((n) => n.includes('-drill-')) : []);
    const runsBefore = drillRuns();
    const env: Record<string, string> = { NO_COLOR: '1', PROD_PGPASSWORD: pg.password, XDG_STATE_HOME: path.join(base, 'xdg') };
    for (const k of ['PATH', 'HOME', 'LANG', 'TMPDIR', 'RESTORE_ASSISTANT_STATE_DIR', 'RESTORE_ASSISTANT_LOCK_DIR'])
      if (process.env[k]) env[k] = process.env[k] ?? '';
    const child = spawn(process.execPath, [cliBin(), 'drill', '--recipe', recipeFile, '--backup', slow, '--yes'], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      // Wait until the engine runs the PostgreSQL restore step (recorded in the drill's evidence).
      let events = '';
      let run: string | undefined;
      for (let i = 0; i < 1200; i++) {
        run = drillRuns().find((n) => !runsBefore.includes(n));
        events =
          run && existsSync(path.join(evidenceDir, run, 'events.jsonl'))
            ? readFileSync(path.join(evidenceDir, run, 'events.jsonl'), 'utf8')
            : '';
        if (/"type":"step-started"[^\n]*"stepId":"postgres:restore"/.test(events)) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(events, output).toMatch(/"stepId":"postgres:restore"/);
      // The scratch dir is the drill plan's safety dir (other test runs may have drills of their own).
      type Line = { event?: { type?: string; outcome?: string; plan?: { options: { safetyDir?: string } } } };
      const lines = (text: string): NonNullable<Line['event']>[] =>
        text
          .split('\n')
          .filter(Boolean)
          .map((l) => (JSON.parse(l) as Line).event ?? {});
      const started = lines(events).find((e) => e.type === 'run-started');
      const scratchDir = started?.plan?.options.safetyDir ?? '';
      expect(path.basename(scratchDir)).toMatch(/^restore-assistant-drill-/);
      const pgDir = readdirSync(scratchDir).find((n) => n.startsWith('ra-pg-'));
      const postmaster = Number(readFileSync(path.join(scratchDir, pgDir ?? '', 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
      expect(pidAlive(postmaster)).toBe(true);

      child.kill('SIGINT');
      // Watch the scratch PostgreSQL: when it is first seen gone, the engine must already have
      // finished (run-finished in the evidence). Before the session owned the signals, the sandbox's
      // exit guard killed it the moment the signal arrived, while the engine was still stopping.
      const eventsFile = path.join(evidenceDir, run ?? '', 'events.jsonl');
      while (pidAlive(postmaster)) await new Promise((r) => setTimeout(r, 10));
      expect(readFileSync(eventsFile, 'utf8')).toContain('"type":"run-finished"');

      expect(await exited, output).toBe(130);
      expect(output).toContain('Drill of prod: FAILED');
      expect(output).toMatch(/Result: interrupted/);
      expect(output).toContain('Scratch services stopped and removed.');
      expect(existsSync(scratchDir)).toBe(false);
      expect(lines(readFileSync(eventsFile, 'utf8')).find((e) => e.type === 'run-finished')?.outcome).toBe('interrupted');
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      rmSync(path.join(root, slow), { recursive: true, force: true });
    }
  }, 240_000);

  it('refuses a plan that addresses anything but the sandbox', async () => {
    const loaded = await loadRecipeFile(recipeFile);
    const { sets } = await listBackupSets({ root: loaded.recipe.backups.root, layout: 'story-portal' });
    const set = sets[0];
    if (!set) throw new Error('no set');
    const sandbox: DrillSandbox = {
      rootDirs: [path.join(base, 'scratch')],
      postgres: { host: '127.0.0.1', port: 1, user: 'postgres', passwordEnv: 'X' },
      redis: {
        host: '127.0.0.1',
        port: 2,
        dir: path.join(base, 'scratch', 'redis'),
        dbfilename: 'dump.rdb',
        appendonly: false,
        appenddirname: 'appendonlydir',
        service: { stop: ['true'], start: ['true'] },
      },
      prometheus: { url: 'http://127.0.0.1:3', dataDir: path.join(base, 'scratch', 'prom'), service: { stop: ['true'], start: ['true'] } },
    };
    const options = resolvePlanOptions(loaded.recipe, { yes: true, missingRoles: 'create' });
    // The real recipe's own plan (a restore) is refused on every count.
    const realPlan = buildPlan({
      recipe: loaded,
      set,
      facts: recipeFacts(loaded),
      options: { ...options },
      mode: 'drill',
      now: new Date(),
    });
    const problems = isolationProblems(realPlan, sandbox, loaded.recipe);
    expect(problems.some((p) => p.includes(`port ${pg.port}`))).toBe(true);
    expect(problems.some((p) => p.includes('application services'))).toBe(true);
    expect(problems.some((p) => p.includes(prom.dataDir) || p.includes('outside the sandbox'))).toBe(true);
    expect(() => assertDrillIsolation(realPlan, sandbox, loaded.recipe)).toThrow(/beyond the scratch targets/);

    // The drill recipe's plan passes...
    const { recipe: drill } = drillRecipe(loaded.recipe, sandbox);
    const drillLoaded = { ...loaded, recipe: drill };
    const drillPlan = buildPlan({
      recipe: drillLoaded,
      set,
      facts: recipeFacts(drillLoaded),
      options: resolvePlanOptions(drill, { yes: true, missingRoles: 'create' }),
      mode: 'drill',
      now: new Date(),
    });
    expect(isolationProblems(drillPlan, sandbox, loaded.recipe)).toEqual([]);
    // ...until one port in it is changed to production's.
    const tampered = JSON.parse(JSON.stringify(drillPlan).replaceAll('"1"', `"${pg.port}"`)) as typeof drillPlan;
    expect(isolationProblems(tampered, sandbox, loaded.recipe).length).toBeGreaterThan(0);
  });
});
