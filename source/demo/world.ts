import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { freePort } from '../sandbox/ports.js';
import { SandboxGroup } from '../sandbox/group.js';
import { readServiceSpec, serviceCtlArgv, startService, stopService, writeServiceSpec } from '../sandbox/service-ctl.js';
import { backupStoryPortal } from '../sandbox/backups.js';
import { fingerprintPostgres, fingerprintRedis, seedPostgres, seedRedis } from '../sandbox/world.js';
import type { PostgresSandbox } from '../sandbox/postgres.js';
import type { RedisSandbox } from '../sandbox/redis.js';
import type { PrometheusSandbox } from '../sandbox/prometheus.js';
import { demoAppArgv } from './app.js';

/**
 * The demo's sandbox "production": real PostgreSQL, Redis and Prometheus plus a tiny application
 * service, all on loopback ports in one temp dir; backed up in the story-portal layout, then
 * broken the way incidents break things. Everything is removed by teardown().
 */

export const DEMO_DB = 'shop';
export const DEMO_PG_PASSWORD_ENV = 'RESTORE_ASSISTANT_DEMO_PGPASSWORD';

export interface DemoWorld {
  base: string;
  recipeFile: string;
  backupRoot: string;
  evidenceDir: string;
  /** Environment the restore needs (the demo database password). */
  env: Record<string, string>;
  secrets: string[];
  pg: PostgresSandbox;
  redis: RedisSandbox;
  prom: PrometheusSandbox;
  /** What the latest backup holds, to compare against after the restore. */
  expected: { tables: Record<string, number>; redisKeys: number };
  /** Break production: drop a table, flush Redis, wipe Prometheus. Returns what was done. */
  breakProduction(): Promise<string[]>;
  /** Compare production with the backup: one line per fact, ok or not. */
  compare(): Promise<Array<{ ok: boolean; line: string }>>;
  teardown(): Promise<void>;
}

function redisKeyCount(fp: Awaited<ReturnType<typeof fingerprintRedis>>): number {
  return Object.values(fp.dbs).reduce((n, db) => n + Object.keys(db).length, 0);
}

export async function buildDemoWorld(opts: { evidenceDir: string; log?: (line: string) => void }): Promise<DemoWorld> {
  const log = opts.log ?? (() => undefined);
  const base = await mkdtemp(path.join(os.tmpdir(), 'restore-assistant-demo-'));
  const group = new SandboxGroup({ baseDir: base });
  const password = randomBytes(12).toString('hex');
  let appSpec: string | undefined;
  try {
    log('Starting a sandbox "production": PostgreSQL, Redis, Prometheus and a shop API on loopback ports...');
    const [pg, redis, prom] = await Promise.all([
      group.postgres({ password, scratch: true }),
      group.redis({ appendonly: false }),
      group.prometheus({}),
    ]);
    const appPort = await freePort();
    appSpec = path.join(base, 'shop-api.service.json');
    await writeServiceSpec(appSpec, {
      name: 'shop-api',
      argv: demoAppArgv(appPort),
      pidFile: path.join(base, 'shop-api.pid'),
      logFile: path.join(base, 'shop-api.log'),
      ready: { http: { url: `http://127.0.0.1:${appPort}/health` } },
      readyTimeoutMs: 15_000,
    });
    await startService(await readServiceSpec(appSpec));

    log(
      `Filling it with data: database "${DEMO_DB}" (users, stories, comments, a view, a trigger), Redis keys of every type, Prometheus series...`,
    );
    await Promise.all([seedPostgres(pg, DEMO_DB, { rows: 300 }), seedRedis(redis)]);
    await prom.waitForSamples(5);

    const backupRoot = path.join(base, 'backups');
    log("Taking two backups the way story-portal's backup.sh does (pg_dump | gzip, BGSAVE copy, tar of the Prometheus data dir)...");
    await backupStoryPortal({ pg, db: DEMO_DB, redis, prom }, backupRoot);
    // Sign-ups between the two backups: the older set lacks them, which the backup screen's RPO shows.
    await pg.psql(
      "INSERT INTO app.users (external_id, request_id, email, display_name, created_at) SELECT 'late-' || g, gen_random_uuid(), 'late' || g || '@example.com', 'Late signup ' || g, now() FROM generate_series(1, 25) g",
      DEMO_DB,
    );
    // Set ids have one-second resolution: make sure the second set gets its own.
    await new Promise((r) => setTimeout(r, 1100));
    await backupStoryPortal({ pg, db: DEMO_DB, redis, prom }, backupRoot);
    const pgFp = await fingerprintPostgres(pg, DEMO_DB);
    const redisFp = await fingerprintRedis(redis);
    const tables: Record<string, number> = {};
    for (const [name, t] of Object.entries(pgFp.tables)) tables[name] = t.rows;

    const recipeFile = path.join(base, 'demo.yaml');
    const recipe = {
      name: 'demo',
      description: 'Sandbox shop: PostgreSQL, Redis, Prometheus and a shop API (restore-assistant demo)',
      backups: { root: backupRoot, layout: 'story-portal' },
      components: {
        postgres: {
          host: pg.host,
          port: pg.port,
          user: pg.user,
          passwordEnv: DEMO_PG_PASSWORD_ENV,
          database: DEMO_DB,
          safetyCopy: 'rename',
          missingRoles: 'create',
        },
        redis: {
          host: redis.host,
          port: redis.port,
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
      services: [
        {
          name: 'shop-api',
          stop: serviceCtlArgv('stop', appSpec),
          start: serviceCtlArgv('start', appSpec),
          status: serviceCtlArgv('status', appSpec),
        },
      ],
      checks: [
        {
          name: 'shop API healthy',
          http: { url: `http://127.0.0.1:${appPort}/health`, status: 200, bodyContains: 'ok' },
          when: ['restore'],
        },
        { name: 'users table restored', sql: { query: 'select count(*) from app.users', minRows: 1 } },
        { name: 'comments table restored', sql: { query: 'select count(*) from app.comments', minRows: 1 } },
        { name: 'Redis has keys', redis: { command: ['DBSIZE'], min: 1 } },
        { name: 'Prometheus has series', promql: { query: 'up', minSeries: 1, freshScrape: false } },
      ],
      objectives: { rtoMinutes: 15, rpoMinutes: 60 },
      drill: { intervalDays: 7 },
      evidence: { dir: opts.evidenceDir },
      confirmWord: DEMO_DB,
    };
    await writeFile(recipeFile, `# Written by restore-assistant demo: a recipe for the sandbox "production".\n${stringify(recipe)}`);

    let historyAt = Math.floor(Date.now() / 1000);
    let historyBefore = 0;
    const world: DemoWorld = {
      base,
      recipeFile,
      backupRoot,
      evidenceDir: opts.evidenceDir,
      env: { [DEMO_PG_PASSWORD_ENV]: password },
      secrets: [password],
      pg,
      redis,
      prom,
      expected: { tables, redisKeys: redisKeyCount(redisFp) },
      async breakProduction() {
        // Samples up to here exist only in the backup once the data dir is wiped.
        historyAt = Math.floor(Date.now() / 1000) - 2;
        historyBefore = (await prom.queryNumber('count(up)', historyAt).catch(() => undefined)) ?? 0;
        await pg.psql('DROP TABLE app.comments CASCADE', DEMO_DB);
        await redis.cli(['FLUSHALL']);
        await prom.stop();
        await rm(prom.dataDir, { recursive: true, force: true });
        await prom.start();
        return [
          `PostgreSQL: table app.comments dropped (it had ${tables['app.comments'] ?? '?'} rows)`,
          'Redis: FLUSHALL (every key in every database gone)',
          'Prometheus: data directory wiped (all history gone)',
        ];
      },
      async compare() {
        const out: Array<{ ok: boolean; line: string }> = [];
        const fp = await fingerprintPostgres(pg, DEMO_DB).catch(() => undefined);
        for (const [name, rows] of Object.entries(tables)) {
          const now = fp?.tables[name]?.rows;
          out.push({ ok: now === rows, line: `PostgreSQL ${name}: ${now ?? 'missing'} rows (backup: ${rows})` });
        }
        const rfp = await fingerprintRedis(redis).catch(() => undefined);
        const keys = rfp ? redisKeyCount(rfp) : 0;
        out.push({ ok: keys === world.expected.redisKeys, line: `Redis: ${keys} keys (backup: ${world.expected.redisKeys})` });
        // History from before the incident (a fresh scrape after the wipe does not count).
        const past = (await prom.queryNumber('count(up)', historyAt).catch(() => undefined)) ?? 0;
        out.push({
          ok: past > 0 && past >= historyBefore,
          line: `Prometheus: ${past > 0 ? 'history from before the incident is back' : 'no history from before the incident'}`,
        });
        return out;
      },
      async teardown() {
        if (appSpec) await stopService(await readServiceSpec(appSpec)).catch(() => undefined);
        await group.stopAll();
        await rm(base, { recursive: true, force: true });
      },
    };
    return world;
  } catch (error) {
    if (appSpec) await stopService(await readServiceSpec(appSpec)).catch(() => undefined);
    await group.stopAll().catch(() => undefined);
    await rm(base, { recursive: true, force: true }).catch(() => undefined);
    throw error;
  }
}
