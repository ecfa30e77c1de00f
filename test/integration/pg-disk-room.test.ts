import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackupSet } from '../../source/catalog/types.js';
import { preflightProblems, probeFacts } from '../../source/probe/index.js';
import type { LoadedRecipe } from '../../source/recipe/load.js';
import { recipeSchema } from '../../source/recipe/schema.js';
import { SandboxGroup, type PostgresSandbox } from '../../source/sandbox/index.js';

/**
 * Issue 11: in rename mode the old database stays next to the new one on the PostgreSQL server's
 * own disk. Preflight measures that disk (the server's data_directory, local here) against the
 * current database's size; for a server it cannot see it says so. Real PostgreSQL 15.
 */

const DB = 'room_app';
const PW_ENV = 'RA_ROOM_PG_PASSWORD';
let base: string;
let group: SandboxGroup;
let pg: PostgresSandbox;
let dump: string;
let env: NodeJS.ProcessEnv;

function recipe(host: string): LoadedRecipe {
  return {
    recipe: recipeSchema.parse({
      name: 'room',
      backups: { root: base },
      components: { postgres: { host, port: pg.port, user: pg.user, passwordEnv: PW_ENV, database: DB, safetyCopy: 'rename' } },
    }),
    file: '<inline>',
    digest: 'test',
  };
}

function set(): BackupSet {
  const size = statSync(dump).size;
  return {
    id: 's',
    layout: 'flat',
    root: base,
    location: base,
    time: '2026-01-18T01:45:13Z',
    timeSource: 'name',
    components: [{ kind: 'postgres', format: 'pg-custom', path: dump, size, checksum: 'absent' }],
    metadata: {},
    warnings: [],
    totalSize: size,
  };
}

describe('PostgreSQL server disk room (rename mode)', () => {
  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'ra-pgroom-'));
    group = new SandboxGroup({ baseDir: base });
    pg = await group.postgres();
    env = { ...process.env, [PW_ENV]: pg.password };
    await pg.psql(`CREATE DATABASE ${DB}`);
    await pg.psql('CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 1000) g', DB);
    dump = join(base, 'room.dump');
    await execa(pg.bin('pg_dump'), ['-Fc', '-d', DB, '-f', dump], { env: { ...process.env, ...pg.env() } });
  }, 120_000);
  afterAll(async () => {
    await group?.stopAll();
    if (base) rmSync(base, { recursive: true, force: true });
  });

  it("measures the server's data_directory against the database size", async () => {
    const facts = await probeFacts(recipe(pg.host), set(), undefined, { env });
    expect(facts.postgres?.dataDirectory).toBe(pg.dataDir);
    const entry = facts.disk?.find((d) => d.component === 'postgres');
    expect(entry?.neededBytes).toBe(facts.postgres?.databaseSize);
    expect(entry?.what).toMatch(/PostgreSQL server's disk/);
    const s = await statfs(pg.dataDir);
    expect(Math.abs((entry?.freeBytes ?? 0) - Number(s.bavail) * Number(s.bsize))).toBeLessThan(64 * 1024 * 1024);
    // Pretend the disk is almost full: preflight refuses with the disk-space problem.
    const tight = { ...facts, disk: facts.disk?.map((d) => (d.component === 'postgres' ? { ...d, freeBytes: d.neededBytes - 1 } : d)) };
    expect(preflightProblems(recipe(pg.host), set(), tight, { missingRoles: 'fail' })).toContainEqual(
      expect.objectContaining({ code: 'disk-space', component: 'postgres', severity: 'error' }),
    );
  }, 120_000);
});
