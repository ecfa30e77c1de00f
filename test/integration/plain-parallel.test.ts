import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupPgPlain, SandboxGroup, storyPortalBackupId, type PostgresSandbox } from '../../source/sandbox/index.js';
import { runCli, type CliResult } from '../support/cli.js';
import { FINGERPRINT_SQL, indexHeavyRolesSql, indexHeavySql } from '../support/index-heavy.js';

/**
 * Parallel restore of plain dumps (issue 14). The same plain dump of an index-heavy schema (foreign
 * keys, sequences, a trigger, a view and a materialized view, comments, grants, two roles) is
 * restored as a single stream (--jobs 1) and split on two connections (--jobs 2); the two databases
 * and the original have the same fingerprint: `pg_dump --schema-only` text, rows and a digest of
 * every table, sequences, owners, grants, comments, triggers, indexes and constraints. A dump the
 * splitter does not recognise is restored as a single stream, and the plan says so. A hostile dump
 * (a meta-command in the table data section) is refused by the restricted psql that runs that
 * section in parallel mode: the run rolls back, the canary is never created.
 */

const PW_ENV = 'PARALLEL_PG_PASSWORD';
const LONG = 600_000;

describe('plain dumps restored in parallel: the same database as the single stream', () => {
  let base: string;
  let group: SandboxGroup;
  let pg: PostgresSandbox;
  let env: Record<string, string>;
  let root: string;
  let dump: string;
  let seconds = 0;

  const cli = (args: string[]): Promise<CliResult> => runCli(args, { env, cwd: base });
  const show = (r: CliResult): string => `exit ${String(r.code)}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

  async function storySet(sql: string): Promise<string> {
    const id = storyPortalBackupId(new Date(Date.UTC(2026, 1, 1, 0, 0, seconds++)));
    const dir = path.join(root, id);
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'postgres.sql.gz'), gzipSync(sql));
    await writeFile(path.join(dir, 'metadata.txt'), [`Backup Date: ${id}`, 'Platform: parallel test', ''].join('\n'));
    return id;
  }

  async function recipeFor(database: string, extra: Record<string, unknown> = {}): Promise<string> {
    const file = path.join(base, `${database}.yaml`);
    await writeFile(
      file,
      JSON.stringify({
        name: database,
        backups: { root, layout: 'story-portal' },
        components: {
          postgres: { host: pg.host, port: pg.port, user: 'postgres', passwordEnv: PW_ENV, database, bin: pg.binDir, ...extra },
        },
        checks: [
          { name: 'orders restored', sql: { query: 'SELECT count(*) FROM shop.orders', minRows: 1 }, retries: 1, intervalSeconds: 0.5 },
        ],
        evidence: { dir: path.join(base, 'evidence', database) },
      }),
    );
    return file;
  }

  /** The events of the latest run restoring `database` (its plan, with warnings and purposes, is in them). */
  async function runEvents(database: string): Promise<string> {
    const dir = path.join(base, 'evidence', database);
    const runs = (await readdir(dir)).filter((n) => /-restore-/.test(n)).sort();
    return readFile(path.join(dir, runs.at(-1)!, 'events.jsonl'), 'utf8');
  }

  /** Everything a restore must reproduce, as text. */
  async function fingerprint(db: string): Promise<{ schema: string; facts: string }> {
    const { stdout } = await execa(pg.bin('pg_dump'), ['--schema-only', '-h', pg.host, '-p', String(pg.port), '-U', 'postgres', db], {
      env: { ...pg.env() },
    });
    const schema = stdout
      .split('\n')
      .filter((l) => !/^\\(un)?restrict /.test(l))
      .join('\n');
    return { schema, facts: await pg.psql(FINGERPRINT_SQL, db) };
  }

  beforeAll(async () => {
    base = mkdtempSync(path.join(tmpdir(), 'ra-parallel-'));
    group = new SandboxGroup({ baseDir: base });
    pg = await group.postgres();
    await pg.psql(indexHeavyRolesSql());
    await pg.psql('CREATE DATABASE shop');
    await pg.psql(indexHeavySql(3000), 'shop');
    root = path.join(base, 'story');
    const runtime = path.join(base, 'runtime');
    await mkdir(runtime, { mode: 0o700 });
    env = { [PW_ENV]: pg.password, XDG_RUNTIME_DIR: runtime };
    const file = path.join(base, 'shop.sql');
    await backupPgPlain(pg, 'shop', file);
    dump = await readFile(file, 'utf8');
  });

  afterAll(async () => {
    await group?.stopAll();
    if (base) rmSync(base, { recursive: true, force: true });
  });

  it(
    'single stream and two connections give the same schema, data, sequences, owners, grants, comments and triggers as the original',
    async () => {
      const id = await storySet(dump);
      const original = await fingerprint('shop');
      expect(original.facts).toContain('rows order_items 6000');
      expect(original.facts).toContain('seq shop.invoice_no 4242');
      expect(original.facts).toMatch(/trigger shop\.orders CREATE TRIGGER orders_audit/);

      const single = await recipeFor('shop_single');
      const r1 = await cli(['restore', '--recipe', single, '--backup', id, '--yes', '--jobs', '1']);
      expect(r1.code, show(r1)).toBe(0);
      const e1 = await runEvents('shop_single');
      expect(e1.includes('with psql (ON_ERROR_STOP, restricted: no meta-commands)'), 'single stream').toBe(true);
      expect(e1.includes('section markers'), 'not split').toBe(false);

      // The plan made without verification says the restore decides after its deep verification.
      const parallel = await recipeFor('shop_parallel');
      const plan = await cli(['plan', '--recipe', parallel, '--backup', id, '--jobs', '2']);
      expect(plan.code, show(plan)).toBe(0);
      expect(plan.stdout).toContain('is shown as a single stream: its structure is read by the deep verification');
      const r2 = await cli(['restore', '--recipe', parallel, '--backup', id, '--yes', '--jobs', '2']);
      expect(r2.code, show(r2)).toBe(0);
      // The evidence says how it was split.
      const events = await runEvents('shop_parallel');
      expect(events).toContain("with psql on 2 connections (split at pg_dump's section markers");
      const split = /parallel restore of [^"]*postgres\.sql\.gz: [^"]*/.exec(events)?.[0];
      expect(split).toMatch(
        /: \d+ entries: 25 pre-data on 1 connection, 10 data on 2, 17 indexes\/constraints on 2, 4 foreign keys on 2, \d+ others in dump order/,
      );
      expect(events).toContain('the verified digest');

      const a = await fingerprint('shop_single');
      const b = await fingerprint('shop_parallel');
      expect(b.facts).toBe(a.facts);
      expect(b.schema).toBe(a.schema);
      expect(a.facts).toBe(original.facts);
      expect(a.schema).toBe(original.schema);
    },
    LONG,
  );

  it(
    'a drill restores it in parallel into its scratch cluster, each table loaded in a transaction that truncates it first (wal_level minimal)',
    async () => {
      const id = await storySet(dump);
      // The scratch cluster has none of the dump's roles: the recipe lets the restore create them.
      const recipe = await recipeFor('shop_drill', { missingRoles: 'create' });
      const r = await cli(['drill', '--recipe', recipe, '--backup', id, '--yes']);
      expect(r.code, show(r)).toBe(0);
      const dir = path.join(base, 'evidence', 'shop_drill');
      const run = (await readdir(dir))
        .filter((n) => n.includes('-drill-'))
        .sort()
        .at(-1)!;
      const events = await readFile(path.join(dir, run, 'events.jsonl'), 'utf8');
      expect(events.includes('each table loaded in one transaction that truncates it first'), 'truncate before COPY').toBe(true);
      expect(events.includes('non-durable settings for load speed'), 'the plan says the scratch settings').toBe(true);
      expect(/parallel restore of [^"]*: \d+ entries: 25 pre-data on 1 connection, 10 data on \d/.test(events), 'split').toBe(true);
    },
    LONG,
  );

  it(
    'a dump the splitter does not recognise is restored as a single stream, and the plan says so',
    async () => {
      // A statement before pg_dump's first entry: not a structure this tool splits.
      const lines = dump.split('\n');
      const at = lines.findIndex((l) => l.startsWith('SET client_min_messages')) + 1;
      const odd = [
        ...lines.slice(0, at),
        'CREATE TABLE public.early (x int);',
        'INSERT INTO public.early VALUES (1);',
        ...lines.slice(at),
      ].join('\n');
      const id = await storySet(odd);
      const recipe = await recipeFor('shop_fallback');
      const r = await cli(['restore', '--recipe', recipe, '--backup', id, '--yes', '--jobs', '2']);
      expect(r.code, show(r)).toBe(0);
      const events = await runEvents('shop_fallback');
      expect(
        events.includes('is restored as a single stream on one connection: a statement comes before the first pg_dump entry'),
        'the plan says why it is not split',
      ).toBe(true);
      expect(events.includes("split at pg_dump's section markers"), 'not split').toBe(false);
      expect(await pg.psql('SELECT count(*) FROM public.early', 'shop_fallback')).toBe('1');
      expect((await fingerprint('shop_fallback')).facts).toContain('rows order_items 6000');
    },
    LONG,
  );

  it(
    'a meta-command in the table data section is refused by the restricted psql that runs it in parallel mode; the run rolls back',
    async () => {
      const canaryDir = path.join(base, 'canaries');
      await mkdir(canaryDir, { mode: 0o777 });
      const canary = path.join(canaryDir, 'pwned');
      const lines = dump.split('\n');
      // After the first COPY block's end: a top-level line of the data section.
      const at = lines.indexOf('\\.') + 1;
      expect(at).toBeGreaterThan(0);
      const hostile = [...lines.slice(0, at), `\\! id > ${canary}`, ...lines.slice(at)].join('\n');
      const id = await storySet(hostile);
      const recipe = await recipeFor('shop_hostile');
      const verify = await cli(['verify', id, '--recipe', recipe]);
      expect(verify.code, show(verify)).toBe(3);
      const r = await cli([
        'restore',
        '--recipe',
        recipe,
        '--backup',
        id,
        '--yes',
        '--jobs',
        '2',
        '--force-unverified',
        'test: prove the restricted psql',
      ]);
      expect(r.code, show(r)).toBe(1);
      expect((await runEvents('shop_hostile')).includes("with psql on 2 connections (split at pg_dump's section markers"), 'split').toBe(
        true,
      );
      expect(`${r.stdout}\n${r.stderr}`).toContain('backslash commands are restricted');
      expect(r.stdout).toContain('failed and rolled back');
      expect(existsSync(canary)).toBe(false);
      expect(await pg.psql("SELECT count(*) FROM pg_database WHERE datname = 'shop_hostile'")).toBe('0');
    },
    LONG,
  );
});
