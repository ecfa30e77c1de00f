import { createReadStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createGunzip } from 'node:zlib';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackupSet, ComponentFormat } from '../../source/catalog/types.js';
import { buildPlan } from '../../source/plan/build.js';
import { resolvePlanOptions } from '../../source/plan/options.js';
import { probeFacts } from '../../source/probe/index.js';
import type { Plan } from '../../source/plan/types.js';
import type { PlannedAction, PlannedCommand } from '../../source/actions/types.js';
import type { LoadedRecipe } from '../../source/recipe/load.js';
import { recipeSchema } from '../../source/recipe/schema.js';
import { resolveFacts } from '../../source/engine/actions.js';
import { backupPgCustom, backupPgPlain, quoteIdent, SandboxGroup, type PostgresSandbox } from '../../source/sandbox/index.js';

/**
 * The PostgreSQL steps of a plan, run for real against a throwaway server, with a database name
 * chosen to break naive quoting: the planned SQL (DO blocks, format('%I'), literals) must rename
 * the database aside, create roles the dump needs, create and restore, and the undo lists must
 * put the original back. A minimal executor runs the actions (the engine does in production).
 */

const PW_ENV = 'RA_PGSTEPS_PW';
const DB = `we"ird' name; --\\ é`;
let baseDir: string;
let group: SandboxGroup;
let pg: PostgresSandbox;
let plainGz: string;
let custom: string;
let env: NodeJS.ProcessEnv;

function childEnv(cmd: PlannedCommand): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [child, op] of Object.entries(cmd.envFrom ?? {})) if (env[op] !== undefined) out[child] = env[op]!;
  return out;
}

/** Run facts (PlannedCommand.record), as the engine keeps them: the OID of the database a run created. */
let facts = new Map<string, string>();

async function runCommand(cmd: PlannedCommand): Promise<{ code: number; stderr: string; stdout: string }> {
  const [file, ...args] = resolveFacts(cmd.argv, facts, cmd.purpose);
  let input: NodeJS.ReadableStream | undefined;
  if (cmd.input) {
    const raw = createReadStream(cmd.input.file);
    input = cmd.input.gunzip ? raw.pipe(createGunzip()) : raw;
  }
  const r = await execa(file!, args, { env: childEnv(cmd), reject: false, ...(input ? { input: input as never } : {}) });
  if (r.exitCode === 0 && cmd.record) facts.set(cmd.record.fact, r.stdout.trim().split('\n').pop()!.trim());
  return { code: r.exitCode ?? -1, stderr: r.stderr, stdout: r.stdout };
}

async function execute(action: PlannedAction): Promise<void> {
  if (action.type === 'exec') {
    const r = await runCommand(action);
    if (r.code !== 0) throw new Error(`${action.purpose}: exit ${r.code}: ${r.stderr}`);
  } else if (action.type === 'wait-command') {
    const end = Date.now() + action.timeoutSeconds * 1000;
    for (;;) {
      const { code } = await runCommand(action.command);
      if (action.untilExit === 'zero' ? code === 0 : code !== 0) return;
      if (Date.now() > end) throw new Error(`timed out: ${action.purpose}`);
      await sleep(100);
    }
  } else if (action.type !== 'note') {
    throw new Error(`not supported here: ${action.type}`);
  }
}

async function runSteps(plan: Plan, ids: string[]): Promise<void> {
  for (const id of ids) for (const a of plan.steps.find((s) => s.id === id)!.actions) await execute(a);
}

async function runUndo(plan: Plan, ids: string[]): Promise<void> {
  for (const id of [...ids].reverse()) for (const a of plan.steps.find((s) => s.id === id)?.undo?.actions ?? []) await execute(a);
}

function recipe(): LoadedRecipe {
  return {
    recipe: recipeSchema.parse({
      name: 'pgsteps',
      backups: { root: baseDir },
      components: { postgres: { host: pg.host, port: pg.port, user: pg.user, passwordEnv: PW_ENV, database: DB, owner: 'postgres' } },
    }),
    file: '<inline>',
    digest: 'test',
  };
}

function set(path: string, format: ComponentFormat): BackupSet {
  const size = statSync(path).size;
  return {
    id: 's',
    layout: 'flat',
    root: baseDir,
    location: baseDir,
    time: '2026-01-18T01:45:13Z',
    timeSource: 'name',
    components: [{ kind: 'postgres', format, path, size, checksum: 'absent' }],
    metadata: {},
    warnings: [],
    totalSize: size,
  };
}

async function databases(): Promise<string[]> {
  return (await pg.psql(`SELECT datname FROM pg_database WHERE datname LIKE 'we%' ORDER BY 1`)).split('\n').filter(Boolean);
}

beforeAll(async () => {
  baseDir = mkdtempSync(join(tmpdir(), 'ra-pgsteps-'));
  group = new SandboxGroup({ baseDir });
  pg = await group.postgres();
  env = { ...process.env, [PW_ENV]: pg.password };
  // The backup: tables owned by a role the target will lack.
  await pg.psql(`CREATE ROLE ghost_owner NOLOGIN; CREATE DATABASE ${quoteIdent(DB)}`);
  await pg.psql(
    `CREATE TABLE backed_up (id int primary key, v text); ALTER TABLE backed_up OWNER TO ghost_owner; INSERT INTO backed_up SELECT g, 'row ' || g FROM generate_series(1, 50) g`,
    DB,
  );
  plainGz = await backupPgPlain(pg, DB, join(baseDir, 'db.sql.gz'));
  custom = await backupPgCustom(pg, DB, join(baseDir, 'db.dump'));
  // The live database has changed since (what the restore replaces), and the role is gone.
  await pg.psql(`DROP DATABASE ${quoteIdent(DB)}; DROP ROLE ghost_owner; CREATE DATABASE ${quoteIdent(DB)}`);
  await pg.psql(`CREATE TABLE live_only (x int); INSERT INTO live_only VALUES (42)`, DB);
}, 120_000);

afterAll(async () => {
  await group?.stopAll();
  rmSync(baseDir, { recursive: true, force: true });
});

const lane = (plan: Plan): string[] => plan.steps.filter((s) => s.lane === 'postgres').map((s) => s.id);

describe('PostgreSQL steps against a real server, hostile database name', () => {
  it('plain .sql.gz: rename aside, create the missing role, restore; undo puts the original back', async () => {
    const r = recipe();
    const s = set(plainGz, 'pg-plain-gz');
    const facts = await probeFacts(r, s, undefined, { env });
    expect(facts.postgres?.missingRoles).toEqual(['ghost_owner']);
    const plan = buildPlan({
      recipe: r,
      set: s,
      facts,
      options: resolvePlanOptions(r.recipe, { missingRoles: 'create', jobs: 2 }, 2),
      mode: 'restore',
      now: new Date('2026-02-01T00:00:00Z'),
    });
    const ids = lane(plan);
    expect(ids).toEqual([
      'postgres:terminate',
      'postgres:safety-copy',
      'postgres:roles',
      'postgres:create',
      'postgres:restore',
      'postgres:analyze',
    ]);

    // A live session on the database is ended by the terminate step.
    const session = execa(pg.bin('psql'), ['-X', '-d', DB, '-c', 'SELECT pg_sleep(60)'], {
      env: { ...process.env, ...pg.env() },
      reject: false,
    });
    await sleep(300);
    await runSteps(plan, ids);
    await session;

    const aside = plan.steps.find((x) => x.id === 'postgres:safety-copy')!.safetyCopy!.location;
    expect(await databases()).toEqual([DB, aside].sort());
    expect(await pg.psql('SELECT count(*) FROM backed_up', DB)).toBe('50');
    expect(await pg.psql(`SELECT tableowner FROM pg_tables WHERE tablename = 'backed_up'`, DB)).toBe('ghost_owner');
    expect(await pg.psql(`SELECT datallowconn FROM pg_database WHERE datname = ${"'" + aside.replace(/'/g, "''") + "'"}`)).toBe('f');

    await runUndo(plan, ids);
    expect(await databases()).toEqual([DB]);
    expect(await pg.psql('SELECT x FROM live_only', DB)).toBe('42');
    expect(await pg.psql(`SELECT datallowconn FROM pg_database WHERE datname = ${"'" + DB.replace(/'/g, "''") + "'"}`)).toBe('t');
    expect(await pg.psql(`SELECT count(*) FROM pg_roles WHERE rolname = 'ghost_owner'`)).toBe('0');
  });

  it('the undo of the create drops only the database this run created (by OID): a same-named database it did not create survives', async () => {
    const r = recipe();
    const s = set(custom, 'pg-custom');
    const facts0 = await probeFacts(r, s, undefined, { env });
    const plan = buildPlan({
      recipe: r,
      set: s,
      facts: facts0,
      options: resolvePlanOptions(r.recipe, { missingRoles: 'skip-ownership', jobs: 1 }, 2),
      mode: 'restore',
      now: new Date('2026-02-01T00:00:02Z'),
    });
    const create = plan.steps.find((x) => x.id === 'postgres:create')!;
    const undo = create.undo!.actions;
    const lit = (t: string): string => `'${t.replace(/'/g, "''")}'`;
    // Another run's database under the name: ours was dropped and a new one made in its place.
    await pg.psql(`DROP DATABASE IF EXISTS ${quoteIdent(DB)}`);
    facts = new Map();
    for (const a of create.actions) await execute(a);
    const ours = facts.get('postgres.createdOid')!;
    expect(ours).toMatch(/^\d+$/);
    expect(await pg.psql(`SELECT oid FROM pg_database WHERE datname = ${lit(DB)}`)).toBe(ours);
    await pg.psql(`DROP DATABASE ${quoteIdent(DB)}`);
    await pg.psql(`CREATE DATABASE ${quoteIdent(DB)}`);
    await pg.psql(`CREATE TABLE not_ours (x int); INSERT INTO not_ours VALUES (7)`, DB);
    for (const a of undo) await execute(a);
    expect(await pg.psql('SELECT x FROM not_ours', DB)).toBe('7');

    // Ours renamed away and another database under the name: refused, with the exact state; both kept.
    facts = new Map();
    await pg.psql(`DROP DATABASE ${quoteIdent(DB)}`);
    for (const a of create.actions) await execute(a);
    await pg.psql(`ALTER DATABASE ${quoteIdent(DB)} RENAME TO ${quoteIdent('we_moved')}`);
    await pg.psql(`CREATE DATABASE ${quoteIdent(DB)}`);
    await pg.psql(`CREATE TABLE not_ours (x int); INSERT INTO not_ours VALUES (8)`, DB);
    await expect(execute(undo[0]!)).rejects.toThrow(
      /the database this run created \(OID \d+\) is now named we_moved, not .*: not dropping it/,
    );
    expect(await pg.psql('SELECT x FROM not_ours', DB)).toBe('8');
    expect(await pg.psql(`SELECT oid FROM pg_database WHERE datname = 'we_moved'`)).toBe(facts.get('postgres.createdOid'));

    // Still ours and still under the name: dropped.
    await pg.psql(`DROP DATABASE ${quoteIdent(DB)}`);
    await pg.psql(`ALTER DATABASE we_moved RENAME TO ${quoteIdent(DB)}`);
    for (const a of undo) await execute(a);
    expect(await pg.psql(`SELECT count(*) FROM pg_database WHERE datname = ${lit(DB)}`)).toBe('0');
    // Killed before anything was recorded (so before the CREATE): a database under the name is not this run's.
    facts = new Map();
    await pg.psql(`CREATE DATABASE ${quoteIdent(DB)}`);
    for (const a of undo) await execute(a);
    expect(await pg.psql(`SELECT count(*) FROM pg_database WHERE datname = ${lit(DB)}`)).toBe('1');
    // Killed between the CREATE and recording its OID: the one made after the watermark is this run's.
    await pg.psql(`DROP DATABASE ${quoteIdent(DB)}`);
    facts = new Map();
    await execute(create.actions[0]!);
    await execute(create.actions[1]!);
    expect(facts.has('postgres.createdOid')).toBe(false);
    for (const a of undo) await execute(a);
    expect(await pg.psql(`SELECT count(*) FROM pg_database WHERE datname = ${lit(DB)}`)).toBe('0');
    // Leave the live database the next test expects.
    await pg.psql(`CREATE DATABASE ${quoteIdent(DB)}`);
    await pg.psql(`CREATE TABLE live_only (x int); INSERT INTO live_only VALUES (42)`, DB);
  });

  it('custom archive with skip-ownership: pg_restore --jobs --no-owner; safety copy none drops for good', async () => {
    const r = recipe();
    r.recipe.components.postgres!.safetyCopy = 'none';
    const s = set(custom, 'pg-custom');
    const facts = await probeFacts(r, s, undefined, { env });
    expect(facts.postgres?.dump?.tocEntries).toBeGreaterThan(2);
    const plan = buildPlan({
      recipe: r,
      set: s,
      facts,
      options: resolvePlanOptions(r.recipe, { missingRoles: 'skip-ownership', jobs: 2 }, 2),
      mode: 'restore',
      now: new Date('2026-02-01T00:00:01Z'),
    });
    const ids = lane(plan);
    expect(ids).toEqual(['postgres:terminate', 'postgres:drop', 'postgres:create', 'postgres:restore', 'postgres:analyze']);
    await runSteps(plan, ids);
    expect(await databases()).toEqual([DB]);
    expect(await pg.psql('SELECT count(*) FROM backed_up', DB)).toBe('50');
    expect(await pg.psql(`SELECT tableowner FROM pg_tables WHERE tablename = 'backed_up'`, DB)).toBe('postgres');
    expect(await pg.psql(`SELECT count(*) FROM pg_tables WHERE tablename = 'live_only'`, DB)).toBe('0');
  });
});
