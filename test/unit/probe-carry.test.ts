import { mkdtempSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileIdentity } from '../../source/catalog/identity.js';
import { SqlRoleScanner, scanSqlStream } from '../../source/catalog/sql-roles.js';
import type { BackupSet, VerifyReport } from '../../source/catalog/types.js';
import { probeFacts } from '../../source/probe/index.js';
import { loadRecipeFile, type LoadedRecipe } from '../../source/recipe/load.js';

/**
 * Issue 14: the dump is read once before the confirmation. The probe takes the roles from deep
 * verification's read while the file is the one it hashed; the preflight (carryOnly) reads no
 * backup file and says so when the file is not the one the facts came from. The PostgreSQL
 * server is not reachable here (a closed port): only what the probe knows of the dump is looked at.
 */

const SQL = [
  '--',
  '-- PostgreSQL database dump',
  '--',
  '-- Dumped from database version 15.8',
  '-- Dumped by pg_dump version 15.8',
  'CREATE TABLE public.t (i int);',
  'ALTER TABLE public.t OWNER TO from_the_file;',
  '-- PostgreSQL database dump complete',
  '',
].join('\n');

let dir: string;
let dump: string;
let recipe: LoadedRecipe;
let set: BackupSet;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ra-probe-carry-'));
  dump = join(dir, 'postgres.sql');
  writeFileSync(dump, SQL);
  const file = join(dir, 'r.yaml');
  writeFileSync(
    file,
    JSON.stringify({
      name: 'carry',
      backups: { root: dir, layout: 'story-portal' },
      components: { postgres: { host: '127.0.0.1', port: 1, user: 'postgres', database: 'db', owner: 'postgres' } },
      evidence: { dir: join(dir, 'evidence') },
    }),
  );
  recipe = await loadRecipeFile(file);
  set = {
    id: 'x',
    layout: 'story-portal',
    root: dir,
    location: dir,
    time: '2026-01-18T01:45:13Z',
    timeSource: 'metadata',
    components: [{ kind: 'postgres', format: 'pg-plain', path: dump, size: SQL.length, checksum: 'absent' }],
    metadata: {},
    warnings: [],
    totalSize: SQL.length,
  };
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function verified(): VerifyReport {
  return {
    setId: 'x',
    ok: true,
    depth: 'deep',
    startedAt: '2026-01-18T02:00:00Z',
    durationMs: 1,
    problems: [],
    components: [
      {
        kind: 'postgres',
        path: dump,
        checks: [],
        ok: true,
        sha256: 'ab'.repeat(32),
        identity: fileIdentity(statSync(dump)),
        // Not what the file says: proves the probe took verification's scan and did not read the file.
        dumpScan: { roles: ['from_verification'], restrict: false, pgDumpVersion: '15.8' },
      },
    ],
  };
}

const opts = { env: {}, timeoutMs: 5000 };

describe('the dump is read once, before the confirmation', () => {
  it('the probe takes the roles from verification while the file is the one it hashed', async () => {
    const f = await probeFacts(recipe, set, verified(), opts);
    expect(f.postgres?.referencedRoles).toEqual(['from_verification']);
    expect(f.postgres?.dump).toMatchObject({ readBy: 'verification', sha256: 'ab'.repeat(32), pgDumpVersion: '15.8' });
  });

  it('without a deep verification the probe reads the file and binds what it learned to it', async () => {
    const f = await probeFacts(recipe, set, undefined, opts);
    expect(f.postgres?.referencedRoles).toEqual(['from_the_file']);
    expect(f.postgres?.dump).toMatchObject({ readBy: 'probe', identity: fileIdentity(statSync(dump)), serverVersion: '15.8' });
  });

  it('the preflight carries the plan facts without reading, and refuses a file that is not the one they came from', async () => {
    const planned = await probeFacts(recipe, set, undefined, opts);
    const again = await probeFacts(recipe, set, undefined, { ...opts, known: planned, carryOnly: true });
    expect(again.postgres?.referencedRoles).toEqual(['from_the_file']);
    expect(again.postgres?.dump?.notReread).toBeUndefined();

    const report = verified();
    writeFileSync(`${dump}.new`, SQL.replace('from_the_file', 'swapped_in__'));
    renameSync(`${dump}.new`, dump);
    const swapped = await probeFacts(recipe, set, report, { ...opts, known: planned, carryOnly: true });
    expect(swapped.postgres?.referencedRoles).toBeUndefined();
    expect(swapped.postgres?.dump?.notReread).toMatch(
      /postgres\.sql is not the file it was read as before the confirmation: replaced by another file/,
    );
  });
});

describe('the role scanner as a Writable', () => {
  it('gives the same answer whatever the chunking and line endings (\\n, \\r\\n, \\r)', async () => {
    const script = [
      '\\restrict K',
      'ALTER TABLE a OWNER TO one;',
      'COPY public.t (i) FROM stdin;',
      '1\tALTER TABLE x OWNER TO not_a_role;',
      '\\.',
      'GRANT SELECT ON TABLE public.t',
      '    TO wrapped;',
      'ALTER SCHEMA s OWNER TO "Qu""oted";',
    ];
    const want = await scanSqlStream(Readable.from([script.join('\n')]));
    expect(want.roles).toEqual(['Qu"oted', 'one', 'wrapped']);
    for (const eol of ['\n', '\r\n', '\r']) {
      const bytes = Buffer.from(script.join(eol) + eol);
      const s = new SqlRoleScanner();
      await new Promise<void>((resolve, reject) => {
        s.on('finish', resolve);
        s.on('error', reject);
        for (let i = 0; i < bytes.length; i += 3) s.write(bytes.subarray(i, i + 3));
        s.end();
      });
      expect({ ...s.result, lines: 0 }, JSON.stringify(eol)).toEqual({ ...want, lines: 0 });
    }
  });
});
