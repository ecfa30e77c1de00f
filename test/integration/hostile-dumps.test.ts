import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  backupPgCustom,
  backupPgPlain,
  fingerprintPostgres,
  SandboxGroup,
  seedPostgres,
  storyPortalBackupId,
  metachatTimestamp,
  type PostgresFingerprint,
  type PostgresSandbox,
} from '../../source/sandbox/index.js';
import { runCli, type CliResult } from '../support/cli.js';

/**
 * A backup is untrusted input (issue 9, part A). Hostile plain dumps are built here from a real
 * pg_dump of a real database: each psql meta-command attack, written into the dump and appended
 * as a second gzip member after pg_dump's own `\unrestrict` line. verify refuses each one (exit
 * 3, naming the line); a forced restore runs it through psql's restricted mode, which refuses it,
 * and the run rolls back; a drill refuses it. A canary file is never created and the `postgres`
 * database is never changed. Then identity: a custom dump of another database, and metadata
 * naming another database, are refused (exit 3) and restored with --allow-database-mismatch.
 */

const DB = 'shop';
const OTHER_DB = 'reltiny';
const PW_ENV = 'HOSTILE_PG_PASSWORD';
/** Each test runs the CLI many times (ten forced restores): room for a loaded 2-core machine. */
const LONG = 600_000;

interface Attack {
  name: string;
  /** The lines put into the dump; the first is the one verify must name. */
  lines: (canary: string) => string[];
}

const attacks: Attack[] = [
  { name: 'bang', lines: (c) => [`\\! id > ${c}`] },
  { name: 'o-pipe', lines: (c) => [`\\o |id > ${c}`, 'SELECT 1;'] },
  { name: 'copy-program', lines: (c) => [`\\copy (SELECT 1) TO PROGRAM 'id > ${c}'`] },
  { name: 'setenv', lines: (c) => [`\\setenv PSQL_PAGER 'id > ${c}'`, '\\pset pager always', 'SELECT 1;'] },
  { name: 'connect', lines: () => ['\\connect postgres', 'CREATE TABLE public.pwned_from_backup (x int);'] },
];

describe('hostile plain dumps and foreign sets: refused by verify, never run by restore or drill', () => {
  let base: string;
  let group: SandboxGroup;
  let pg: PostgresSandbox;
  let env: Record<string, string>;
  let spRoot: string;
  let mcRoot: string;
  let canaryDir: string;
  let cleanDump: string;
  let recipe: string;
  let mcRecipe: string;
  let before: PostgresFingerprint;
  let postgresBefore: string;
  /** set id -> { attack, where the attack's first line is in the decompressed script }. */
  const hostile: Array<{ id: string; attack: Attack; appended: boolean; line: number; canary: string }> = [];
  let seconds = 0;

  const cli = (args: string[]): Promise<CliResult> => runCli(args, { env, cwd: base });
  const show = (r: CliResult): string => `exit ${String(r.code)}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

  /** A story-portal set <root>/<id>/postgres.sql.gz + metadata.txt; returns its id. */
  async function storySet(sqlGz: Buffer, metadata: string[] = []): Promise<string> {
    const id = storyPortalBackupId(new Date(Date.UTC(2026, 0, 1, 0, 0, seconds++)));
    const dir = path.join(spRoot, id);
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'postgres.sql.gz'), sqlGz);
    await writeFile(path.join(dir, 'metadata.txt'), [`Backup Date: ${id}`, 'Platform: hostile test', ...metadata, ''].join('\n'));
    return id;
  }

  /** Tables in the `postgres` database (the attacks aim at it) and the canary files. */
  async function postgresTables(): Promise<string> {
    return pg.psql(
      "SELECT coalesce(string_agg(n.nspname || '.' || c.relname, ',' ORDER BY 1), '') FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')",
      'postgres',
    );
  }

  async function noCanaries(): Promise<void> {
    expect(await readdir(canaryDir)).toEqual([]);
    expect(await postgresTables()).toBe(postgresBefore);
  }

  beforeAll(async () => {
    base = mkdtempSync(path.join(tmpdir(), 'ra-hostile-'));
    group = new SandboxGroup({ baseDir: base });
    pg = await group.postgres();
    await seedPostgres(pg, DB, { rows: 20 });
    await pg.psql(`CREATE DATABASE ${OTHER_DB}`);
    await pg.psql('CREATE TABLE tiny (id int PRIMARY KEY); INSERT INTO tiny VALUES (1), (2);', OTHER_DB);
    canaryDir = path.join(base, 'canaries');
    await mkdir(canaryDir, { mode: 0o777 });
    spRoot = path.join(base, 'story');
    mcRoot = path.join(base, 'metachat');
    const runtime = path.join(base, 'runtime');
    await mkdir(runtime, { mode: 0o700 });
    env = { [PW_ENV]: pg.password, XDG_RUNTIME_DIR: runtime };

    // A real pg_dump 15.18 script: `\restrict K` after the header comment, `\unrestrict K` last.
    const plainFile = path.join(base, 'clean.sql');
    await backupPgPlain(pg, DB, plainFile);
    cleanDump = await readFile(plainFile, 'utf8');
    expect(cleanDump).toMatch(/^\\restrict [A-Za-z0-9]+$/m);
    expect(cleanDump).toMatch(/\n\\unrestrict [A-Za-z0-9]+\n*$/);

    const lines = cleanDump.split('\n');
    // In the body: right after the first `SET` block, before any table is created.
    const at = lines.findIndex((l) => l.startsWith('SET client_min_messages')) + 1;
    expect(at).toBeGreaterThan(0);
    for (const attack of attacks) {
      const canaryIn = path.join(canaryDir, `${attack.name}-in`);
      const inside = [...lines.slice(0, at), ...attack.lines(canaryIn), ...lines.slice(at)].join('\n');
      hostile.push({ id: await storySet(gzipSync(inside)), attack, appended: false, line: at + 1, canary: canaryIn });
      // pg_dump's whole output as one gzip member, the attack as a second one after its \unrestrict.
      const canaryAfter = path.join(canaryDir, `${attack.name}-appended`);
      const tail = `${attack.lines(canaryAfter).join('\n')}\n`;
      const appendedLine = cleanDump.split('\n').length + (cleanDump.endsWith('\n') ? 0 : 1);
      hostile.push({
        id: await storySet(Buffer.concat([gzipSync(cleanDump), gzipSync(tail)])),
        attack,
        appended: true,
        line: appendedLine,
        canary: canaryAfter,
      });
    }

    recipe = path.join(base, 'shop.yaml');
    await writeFile(
      recipe,
      JSON.stringify({
        name: 'shop',
        backups: { root: spRoot, layout: 'story-portal' },
        components: {
          postgres: {
            host: pg.host,
            port: pg.port,
            user: 'postgres',
            passwordEnv: PW_ENV,
            database: DB,
            owner: 'app_owner',
            bin: pg.binDir,
          },
        },
        checks: [
          { name: 'users restored', sql: { query: 'SELECT count(*) FROM app.users', minRows: 1 }, retries: 1, intervalSeconds: 0.5 },
        ],
        evidence: { dir: path.join(base, 'evidence') },
      }),
    );
    mcRecipe = path.join(base, 'shop-metachat.yaml');
    await writeFile(
      mcRecipe,
      JSON.stringify({
        name: 'shop-metachat',
        backups: { root: mcRoot, layout: 'metachat' },
        components: {
          postgres: {
            host: pg.host,
            port: pg.port,
            user: 'postgres',
            passwordEnv: PW_ENV,
            database: DB,
            owner: 'app_owner',
            bin: pg.binDir,
          },
        },
        evidence: { dir: path.join(base, 'evidence-mc') },
      }),
    );
    before = await fingerprintPostgres(pg, DB);
    postgresBefore = await postgresTables();
  });

  afterAll(async () => {
    await group?.stopAll();
    if (base) rmSync(base, { recursive: true, force: true });
  });

  it(
    'verify refuses every attack, in the dump and in an appended gzip member, naming the line (exit 3)',
    async () => {
      for (const h of hostile) {
        const r = await cli(['verify', h.id, '--recipe', recipe, '--json']);
        expect(r.code, `${h.attack.name}${h.appended ? ' (appended)' : ''}\n${show(r)}`).toBe(3);
        const report = JSON.parse(r.stdout) as { ok: boolean; problems: Array<{ code: string; line?: number; message: string }> };
        expect(report.ok).toBe(false);
        const meta = report.problems.filter((p) => p.code === 'psql-meta-command');
        expect(meta[0]?.line, `${h.attack.name}${h.appended ? ' (appended)' : ''}: ${JSON.stringify(report.problems)}`).toBe(h.line);
        expect(meta[0]?.message).toContain(`line ${h.line}: psql meta-command ${h.attack.lines('')[0]!.split(/\s/)[0]}`);
        // Text output names it too.
        if (h.attack.name === 'bang') {
          const text = await cli(['verify', h.id, '--recipe', recipe]);
          expect(text.code).toBe(3);
          expect(text.stdout).toContain(`line ${h.line}: psql meta-command \\! outside COPY data: \\! id > ${h.canary}`);
        }
      }
      // The clean dump verifies: pg_dump's own \restrict pair is not a finding.
      const clean = await storySet(gzipSync(cleanDump));
      const ok = await cli(['verify', clean, '--recipe', recipe]);
      expect(ok.code, show(ok)).toBe(0);
      expect(ok.stdout).toContain('psql meta-commands');
      await noCanaries();
    },
    LONG,
  );

  it(
    'an uncompressed .sql with \\! is refused by verify with its line too',
    async () => {
      const file = path.join(base, 'loose', 'metachat_backup_20260101_000000.sql');
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, `${cleanDump}\\! id > ${path.join(canaryDir, 'loose')}\n`);
      const r = await cli(['verify', file, '--json']);
      expect(r.code, show(r)).toBe(3);
      const report = JSON.parse(r.stdout) as { problems: Array<{ code: string; line?: number }> };
      expect(report.problems.find((p) => p.code === 'psql-meta-command')?.line).toBe(cleanDump.split('\n').length);
    },
    LONG,
  );

  it(
    'a forced restore of each attack: psql (restricted) refuses it, the run rolls back, no canary, postgres unchanged',
    async () => {
      for (const h of hostile) {
        const label = `${h.attack.name}${h.appended ? ' (appended)' : ''}`;
        const r = await cli([
          'restore',
          '--recipe',
          recipe,
          '--backup',
          h.id,
          '--yes',
          '--force-unverified',
          'test: prove the restricted psql',
        ]);
        expect(r.code, `${label}\n${show(r)}`).toBe(1);
        expect(`${r.stdout}\n${r.stderr}`, label).toContain('backslash commands are restricted');
        expect(r.stdout, label).toContain('failed and rolled back');
        expect(existsSync(h.canary), label).toBe(false);
        await noCanaries();
        expect(await fingerprintPostgres(pg, DB), label).toEqual(before);
      }
    },
    LONG,
  );

  it(
    'a drill refuses each attack (exit 3) and never starts psql on it',
    async () => {
      for (const h of hostile) {
        const r = await cli(['drill', '--recipe', recipe, '--backup', h.id, '--yes']);
        expect(r.code, `${h.attack.name}\n${show(r)}`).toBe(3);
        expect(r.stdout).toContain(`line ${h.line}: psql meta-command`);
      }
      await noCanaries();
    },
    LONG,
  );

  it(
    'pg_dump --create output is recognised and refused, with what to do',
    async () => {
      const file = path.join(base, 'create.sql');
      await backupPgPlain(pg, DB, file, ['--create']);
      const id = await storySet(gzipSync(await readFile(file)));
      const r = await cli(['verify', id, '--recipe', recipe, '--json']);
      expect(r.code, show(r)).toBe(3);
      const report = JSON.parse(r.stdout) as { problems: Array<{ code: string; message: string }> };
      const create = report.problems.find((p) => p.code === 'pg-dump-create');
      expect(create?.message).toMatch(/pg_dump --create .*CREATE DATABASE shop at line \d+ and \\connect shop at line \d+/);
      expect(create?.message).toContain('without --create');
      const forced = await cli(['restore', '--recipe', recipe, '--backup', id, '--yes', '--force-unverified', 'test']);
      expect(forced.code, show(forced)).toBe(1);
      expect(await fingerprintPostgres(pg, DB)).toEqual(before);
      await noCanaries();
    },
    LONG,
  );

  it(
    'a custom dump of another database is refused (exit 3) before anything is touched, shown in the plan, and restored with --allow-database-mismatch',
    async () => {
      await mkdir(path.join(mcRoot, 'postgres'), { recursive: true });
      const dump = path.join(mcRoot, 'postgres', `${DB}_${metachatTimestamp(new Date(Date.UTC(2026, 0, 2, 0, 0, 0)))}.dump`);
      await backupPgCustom(pg, OTHER_DB, dump);

      const v = await cli(['verify', 'latest', '--recipe', mcRecipe, '--json']);
      expect(v.code, show(v)).toBe(3);
      expect(v.stdout).toContain('database-mismatch');
      expect(v.stdout).toContain(`names database ${OTHER_DB}, but the recipe restores into ${DB}`);

      const plan = await cli(['plan', '--recipe', mcRecipe, '--json']);
      const planJson = JSON.parse(plan.stdout) as {
        facts: { postgres: { dump: { database?: string; pgDumpVersion?: string; createdAt?: string } } };
        warnings: string[];
      };
      expect(planJson.facts.postgres.dump.database).toBe(OTHER_DB);
      expect(planJson.facts.postgres.dump.pgDumpVersion).toMatch(/^\d+\.\d+/);
      expect(planJson.facts.postgres.dump.createdAt).toMatch(/\d{4}-\d{2}-\d{2}/);
      expect(planJson.warnings.join('\n')).toContain('--allow-database-mismatch');
      const planText = await cli(['plan', '--recipe', mcRecipe]);
      expect(planText.stdout).toMatch(new RegExp(`PostgreSQL dump: database ${OTHER_DB}, pg_dump \\d+\\.\\d+.*, created \\d{4}-`));

      const refused = await cli(['restore', '--recipe', mcRecipe, '--yes']);
      expect(refused.code, show(refused)).toBe(3);
      expect(refused.stderr).toContain('--allow-database-mismatch');
      expect(refused.stderr).toContain('Nothing was touched');
      // --force-unverified does not cover it.
      const forced = await cli(['restore', '--recipe', mcRecipe, '--yes', '--force-unverified', 'not the right flag']);
      expect(forced.code, show(forced)).toBe(3);
      expect(await fingerprintPostgres(pg, DB)).toEqual(before);

      const allowed = await cli([
        'restore',
        '--recipe',
        mcRecipe,
        '--yes',
        '--allow-database-mismatch',
        'reltiny is the shop fixture now',
        '--json',
      ]);
      expect(allowed.code, show(allowed)).toBe(0);
      expect(await pg.psql('SELECT count(*) FROM tiny', DB)).toBe('2');
      const summary = JSON.parse(allowed.stdout) as { evidence: string };
      const events = await readFile(path.join(summary.evidence, 'events.jsonl'), 'utf8');
      expect(events).toContain('reltiny is the shop fixture now');
      expect(events).toContain('"allowDatabaseMismatch":"reltiny is the shop fixture now"');
    },
    LONG,
  );

  it(
    'metadata.txt naming another database is refused (exit 3) and restored with the override',
    async () => {
      // Put shop back from a clean dump first (the previous test restored reltiny into it).
      const id = await storySet(gzipSync(cleanDump), ['Database: billing_other']);
      const v = await cli(['verify', id, '--recipe', recipe]);
      expect(v.code, show(v)).toBe(3);
      expect(v.stdout).toContain('metadata.txt Database names database billing_other, but the recipe restores into shop');
      const refused = await cli(['restore', '--recipe', recipe, '--backup', id, '--yes']);
      expect(refused.code, show(refused)).toBe(3);
      const allowed = await cli([
        'restore',
        '--recipe',
        recipe,
        '--backup',
        id,
        '--yes',
        '--allow-database-mismatch',
        'metadata typo in the backup job',
      ]);
      expect(allowed.code, show(allowed)).toBe(0);
      expect(await fingerprintPostgres(pg, DB)).toEqual(before);
      await noCanaries();
    },
    LONG,
  );
});
