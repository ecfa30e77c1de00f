import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { copyFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackupSet, ComponentFormat } from '../../source/catalog/types.js';
import { buildPlan } from '../../source/plan/build.js';
import { resolvePlanOptions } from '../../source/plan/options.js';
import { preflightProblems, probeFacts, runPreflight } from '../../source/probe/index.js';
import type { LoadedRecipe } from '../../source/recipe/load.js';
import { recipeSchema, type RecipeInput } from '../../source/recipe/schema.js';
import { freePort, SandboxGroup, serviceCtlArgv, type PostgresSandbox, type RedisSandbox } from '../../source/sandbox/index.js';

/**
 * probeFacts against real throwaway servers: PostgreSQL versions, database existence, roles a
 * dump references that the server lacks (plain .sql.gz and custom archives), Redis CONFIG with
 * AOF on and a password, an unreachable Redis, and preflight built from those facts.
 */

const DB = 'probe_app';
const PW_ENV = 'RA_TEST_PG_PASSWORD';
const REDIS_PW_ENV = 'RA_TEST_REDIS_PASSWORD';

let baseDir: string;
let group: SandboxGroup;
let pg: PostgresSandbox;
let redis: RedisSandbox;
let plainGz: string;
let backupRdb: string;
let custom: string;
let env: NodeJS.ProcessEnv;

function loaded(input: RecipeInput): LoadedRecipe {
  return { recipe: recipeSchema.parse(input), file: '<inline>', digest: 'test' };
}

function recipeFor(over: { redisPort?: number; redisPasswordEnv?: string; dataDir?: string } = {}): LoadedRecipe {
  return loaded({
    name: 'probe-test',
    backups: { root: baseDir },
    components: {
      postgres: { host: pg.host, port: pg.port, user: pg.user, passwordEnv: PW_ENV, database: DB, owner: 'postgres' },
      redis: {
        host: redis.host,
        port: over.redisPort ?? redis.port,
        passwordEnv: over.redisPasswordEnv ?? REDIS_PW_ENV,
        ...(over.dataDir ? { dataDir: over.dataDir } : {}),
        service: {
          stop: serviceCtlArgv('stop', redis.spec),
          start: serviceCtlArgv('start', redis.spec),
          status: serviceCtlArgv('status', redis.spec),
        },
      },
    },
  });
}

function setWith(pgPath: string, format: ComponentFormat, rdb = backupRdb): BackupSet {
  return {
    id: 'probe-set',
    layout: 'flat',
    root: baseDir,
    location: baseDir,
    time: '2026-01-18T01:45:13Z',
    timeSource: 'name',
    components: [
      { kind: 'postgres', format, path: pgPath, size: statSync(pgPath).size, checksum: 'absent' },
      { kind: 'redis', format: 'redis-rdb', path: rdb, size: statSync(rdb).size, checksum: 'absent' },
    ],
    metadata: {},
    warnings: [],
    totalSize: statSync(pgPath).size + statSync(rdb).size,
  };
}

beforeAll(async () => {
  baseDir = mkdtempSync(join(tmpdir(), 'ra-probe-test-'));
  group = new SandboxGroup({ baseDir });
  [pg, redis] = await Promise.all([group.postgres(), group.redis({ appendonly: true, password: 'redis-secret-pw' })]);
  env = { ...process.env, [PW_ENV]: pg.password, [REDIS_PW_ENV]: 'redis-secret-pw' };
  // A database whose objects belong to roles that will not exist on the server being restored.
  await pg.psql(`CREATE ROLE ghost_role NOLOGIN; CREATE ROLE "Ghost Reader" NOLOGIN; CREATE DATABASE ${DB}`);
  await pg.psql(
    `CREATE TABLE t (id int primary key, note text); ALTER TABLE t OWNER TO ghost_role; GRANT SELECT ON t TO "Ghost Reader";` +
      // Table data that reads like a statement must not count.
      `INSERT INTO t VALUES (1, 'ALTER TABLE x OWNER TO not_a_role;');`,
    DB,
  );
  await redis.command(['SET', 'k1', 'v1']);
  await redis.command(['SET', 'k2', 'v2']);
  await redis.bgsave();
  backupRdb = join(baseDir, 'backup.rdb');
  await copyFile(redis.rdbPath, backupRdb);
  plainGz = join(baseDir, 'probe.sql.gz');
  custom = join(baseDir, 'probe.dump');
  const pgEnv = { ...process.env, ...pg.env() };
  const dump = await execa(pg.bin('pg_dump'), ['-d', DB], { env: pgEnv, encoding: 'buffer' });
  const { gzipSync } = await import('node:zlib');
  await writeFile(plainGz, gzipSync(dump.stdout as Uint8Array));
  await execa(pg.bin('pg_dump'), ['-Fc', '-d', DB, '-f', custom], { env: pgEnv });
  // The target server lacks them (and the database is gone, as after a disaster).
  await pg.psql(`DROP DATABASE ${DB}; DROP ROLE ghost_role; DROP ROLE "Ghost Reader"`);
}, 120_000);

afterAll(async () => {
  await group?.stopAll();
  rmSync(baseDir, { recursive: true, force: true });
});

describe('probeFacts (read-only, real servers)', () => {
  it('learns PostgreSQL versions, that the database is gone, and the roles a plain .sql.gz needs', async () => {
    const facts = await probeFacts(recipeFor(), setWith(plainGz, 'pg-plain-gz'), undefined, { env });
    const f = facts.postgres!;
    expect(f.reachable).toBe(true);
    expect(f.serverMajor).toBe(pg.majorVersion);
    expect(f.serverVersionNum).toBeGreaterThanOrEqual(pg.majorVersion * 10000);
    expect(f.clientMajor).toBe(pg.majorVersion);
    expect(f.psqlVersion).toMatch(/^\d+\.\d+$/);
    expect(f.databaseExists).toBe(false);
    expect(f.ownerExists).toBe(true);
    expect(f.referencedRoles).toEqual(expect.arrayContaining(['ghost_role', 'Ghost Reader']));
    expect(f.referencedRoles).not.toContain('not_a_role');
    expect(f.missingRoles).toEqual(['Ghost Reader', 'ghost_role']);
    expect(f.dump?.pgDumpVersion).toMatch(/^\d+\.\d+/);
    // pg_dump 15.18 (>= 15.14) writes \restrict after its header comment; the scan must find it there.
    expect(f.dump?.restrict).toBe(true);
    expect(facts.probedAt).toMatch(/Z$/);
  });

  it('reads a custom archive with pg_restore --list and --schema-only', async () => {
    const facts = await probeFacts(recipeFor(), setWith(custom, 'pg-custom'), undefined, { env });
    expect(facts.postgres?.dump?.tocEntries).toBeGreaterThan(3);
    expect(facts.postgres?.missingRoles).toEqual(['Ghost Reader', 'ghost_role']);
  });

  it('learns the Redis layout from CONFIG GET with AOF on, authenticating through REDISCLI_AUTH', async () => {
    const facts = await probeFacts(recipeFor(), setWith(plainGz, 'pg-plain-gz'), undefined, { env });
    expect(facts.redis).toEqual(
      expect.objectContaining({
        source: 'server',
        reachable: true,
        dir: redis.dir,
        dbfilename: 'dump.rdb',
        appendonly: true,
        appenddirname: 'appendonlydir',
        appendfilename: 'appendonly.aof',
        version: '7.0.15',
        versionMajor: 7,
      }),
    );
    expect(facts.redis?.backupKeys).toBe(2);
    expect(facts.disk?.find((d) => d.component === 'redis')?.freeBytes).toBeGreaterThan(0);
  });

  it('falls back to the recipe when Redis does not answer, and reports wrong credentials', async () => {
    const closed = await freePort();
    const down = await probeFacts(recipeFor({ redisPort: closed, dataDir: '/srv/redis' }), setWith(plainGz, 'pg-plain-gz'), undefined, {
      env,
    });
    expect(down.redis).toEqual(expect.objectContaining({ source: 'recipe', reachable: false, dir: '/srv/redis' }));
    expect(
      preflightProblems(recipeFor({ redisPort: closed, dataDir: '/srv/redis' }), setWith(plainGz, 'pg-plain-gz'), down, {
        missingRoles: 'create',
      }),
    ).toEqual([expect.objectContaining({ code: 'unreachable', component: 'redis', severity: 'warning' })]);
    const badEnv = { ...env, RA_WRONG: 'not-the-password' };
    const r = recipeFor({ redisPasswordEnv: 'RA_WRONG' });
    const wrong = await probeFacts(r, setWith(plainGz, 'pg-plain-gz'), undefined, { env: badEnv });
    expect(wrong.redis?.reachable).toBe(false);
    expect(JSON.stringify(wrong)).not.toContain('not-the-password');
    expect(preflightProblems(r, setWith(plainGz, 'pg-plain-gz'), wrong, { missingRoles: 'create' })).toEqual([
      expect.objectContaining({ code: 'auth-failed', component: 'redis', severity: 'error' }),
    ]);
  });

  it('preflight: missing roles block with both choices named, unless one was chosen', async () => {
    const r = recipeFor();
    const set = setWith(plainGz, 'pg-plain-gz');
    const facts = await probeFacts(r, set, undefined, { env });
    const blocked = preflightProblems(r, set, facts, { missingRoles: 'fail' });
    expect(blocked).toEqual([expect.objectContaining({ code: 'missing-roles', severity: 'error' })]);
    expect(blocked[0]?.message).toContain('Ghost Reader, ghost_role');
    expect(blocked[0]?.next).toContain('--missing-roles create');
    expect(blocked[0]?.next).toContain('--missing-roles skip-ownership');
    expect(preflightProblems(r, set, facts, { missingRoles: 'create' })).toEqual([]);
    expect(preflightProblems(r, set, facts, { missingRoles: 'skip-ownership' })).toEqual([]);
  });

  it('preflight: a wrong PostgreSQL password makes the target unreachable with the variable named', async () => {
    const r = recipeFor();
    const facts = await probeFacts(r, setWith(plainGz, 'pg-plain-gz'), undefined, { env: { ...env, [PW_ENV]: 'wrong-pw' } });
    expect(facts.postgres?.reachable).toBe(false);
    const problems = preflightProblems(r, setWith(plainGz, 'pg-plain-gz'), facts, { missingRoles: 'create' });
    expect(problems).toEqual([expect.objectContaining({ code: 'auth-failed', component: 'postgres', severity: 'error' })]);
    expect(problems[0]?.next).toContain(PW_ENV);
  });

  it('runPreflight re-probes and reports facts that changed since the plan', async () => {
    const r = recipeFor();
    const set = setWith(plainGz, 'pg-plain-gz');
    const facts = await probeFacts(r, set, undefined, { env });
    const plan = buildPlan({
      recipe: r,
      set,
      facts,
      options: resolvePlanOptions(r.recipe, { missingRoles: 'create', jobs: 1 }, 1),
      mode: 'restore',
      now: new Date(),
    });
    expect(await runPreflight(plan, r, { env })).toEqual([]);
    await redis.command(['CONFIG', 'SET', 'appendonly', 'no']);
    try {
      const problems = await runPreflight(plan, r, { env });
      expect(problems).toEqual([expect.objectContaining({ code: 'facts-changed' })]);
      expect(problems[0]?.message).toContain('Redis appendonly was true, now false');
    } finally {
      await redis.command(['CONFIG', 'SET', 'appendonly', 'yes']);
    }
  });
});
