import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findBackupSet, listBackupSets, verifyBackupSet } from '../../source/catalog/index.js';
import type { BackupSet, VerifyReport } from '../../source/catalog/types.js';
import { ExitCode } from '../../source/exit-codes.js';
import { preflightProblems, probeFacts } from '../../source/probe/index.js';
import type { LoadedRecipe } from '../../source/recipe/load.js';
import { recipeSchema } from '../../source/recipe/schema.js';
import { SandboxGroup, storyPortalBackupId, type PostgresSandbox } from '../../source/sandbox/index.js';
import { runCli } from '../support/cli.js';

/**
 * Issue 14: the parallel restore of a plain dump stages everything after pre-data in a private
 * dir under the temp dir (engine/plain-split/). Preflight counts that room: with TMPDIR on a real
 * 1 MiB tmpfs and a dump of several MiB of SQL, the restore is refused before anything is
 * touched, naming the dir, the need and the free space; on one connection (--jobs 1) it is not
 * needed. Real PostgreSQL 15, a real file system, the real CLI.
 */

const DB = 'staging_room';
const PW_ENV = 'RA_STAGING_PG_PASSWORD';
let base: string;
let small: string;
let group: SandboxGroup;
let pg: PostgresSandbox;
let recipeFile: string;
let loaded: LoadedRecipe;
let set: BackupSet;
let report: VerifyReport;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  base = mkdtempSync(join(tmpdir(), 'ra-staging-room-'));
  small = join(base, 'small-tmp');
  mkdirSync(small);
  await execa('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=1777', 'tmpfs', small]);
  group = new SandboxGroup({ baseDir: base });
  pg = await group.postgres();
  env = { ...process.env, [PW_ENV]: pg.password };
  await pg.psql(`CREATE DATABASE ${DB}`);
  await pg.psql(
    'CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, md5(g::text) || md5((g * 7)::text) FROM generate_series(1, 60000) g',
    DB,
  );
  const root = join(base, 'backups');
  const id = storyPortalBackupId(new Date(Date.UTC(2026, 0, 2)));
  mkdirSync(join(root, id), { recursive: true });
  const dump = [pg.bin('pg_dump'), '-h', pg.host, '-p', String(pg.port), '-U', pg.user, '-d', DB];
  await execa('bash', ['-c', 'set -o pipefail; "$@" | gzip -c > "$OUT"', 'dump', ...dump], {
    env: { ...process.env, ...pg.env(), OUT: join(root, id, 'postgres.sql.gz') },
  });
  writeFileSync(join(root, id, 'metadata.txt'), `Backup Date: ${id}\nPlatform: test\n`);
  const recipe = {
    name: 'staging-room',
    backups: { root, layout: 'story-portal' },
    components: { postgres: { host: pg.host, port: pg.port, user: pg.user, passwordEnv: PW_ENV, database: DB, bin: pg.binDir } },
    evidence: { dir: join(base, 'evidence') },
  };
  recipeFile = join(base, 'recipe.yaml');
  writeFileSync(recipeFile, JSON.stringify(recipe));
  loaded = { recipe: recipeSchema.parse(recipe), file: recipeFile, digest: 'test' };
  set = findBackupSet((await listBackupSets({ root, layout: 'story-portal' })).sets, 'latest');
  report = await verifyBackupSet(set, { depth: 'deep' });
}, 180_000);

afterAll(async () => {
  await group?.stopAll();
  if (small) await execa('umount', [small]).catch(() => undefined);
  if (base) rmSync(base, { recursive: true, force: true });
});

describe('the parallel restore staging room', () => {
  it('is measured where the splitter stages, against the dump size, and refused only for a parallel restore', async () => {
    const sections = report.components.find((c) => c.kind === 'postgres')?.facts?.['plainSections'] as { recognised: boolean };
    expect(sections.recognised).toBe(true);
    const sqlBytes = report.components.find((c) => c.kind === 'postgres')?.facts?.['uncompressedBytes'] as number;
    expect(sqlBytes).toBeGreaterThan(2 * 1024 * 1024);

    const facts = await probeFacts(loaded, set, report, { env: { ...env, TMPDIR: small } });
    const staging = facts.disk?.find((d) => d.parallelOnly);
    expect(staging).toEqual(expect.objectContaining({ component: 'postgres', path: small, neededBytes: sqlBytes }));
    expect(staging!.freeBytes).toBeLessThanOrEqual(1024 * 1024);

    const parallel = preflightProblems(loaded, set, facts, { missingRoles: 'fail', parallel: true });
    const refusal = parallel.find((p) => p.code === 'disk-space');
    expect(refusal).toEqual(expect.objectContaining({ severity: 'error', component: 'postgres' }));
    expect(refusal!.message).toContain(`Not enough free disk at ${small}`);
    expect(refusal!.message).toContain(`${staging!.freeBytes} bytes free, ${sqlBytes} needed`);
    expect(refusal!.next).toContain(`--jobs 1`);
    // One connection stages nothing: not a problem then.
    expect(preflightProblems(loaded, set, facts, { missingRoles: 'fail', parallel: false }).filter((p) => p.code === 'disk-space')).toEqual(
      [],
    );
    // With room (the default temp dir), the fact is there and no refusal.
    const roomy = await probeFacts(loaded, set, report, { env });
    expect(roomy.disk?.find((d) => d.parallelOnly)?.freeBytes).toBeGreaterThan(sqlBytes);
    expect(preflightProblems(loaded, set, roomy, { missingRoles: 'fail', parallel: true }).filter((p) => p.code === 'disk-space')).toEqual(
      [],
    );
  }, 120_000);

  it('the CLI refuses a parallel restore before touching anything', async () => {
    const r = await runCli(['restore', '--recipe', recipeFile, '--backup', 'latest', '--yes', '--jobs', '2'], {
      env: { [PW_ENV]: pg.password, TMPDIR: small },
    });
    expect(r.code, r.stderr).toBe(ExitCode.preflightFailed);
    expect(r.stderr).toContain(`Not enough free disk at ${small}`);
    // Nothing was touched: the database is still the one there, with its rows.
    expect(await pg.psql('SELECT count(*) FROM t', DB)).toBe('60000');
    await pg.psql("INSERT INTO t VALUES (0, 'after the backup')", DB);

    // The problem's Next: command, pasted (with the --yes the refused command had): one connection
    // stages nothing, so the same tiny temp dir is enough and the restore goes through.
    const pasted = /`restore-assistant (restore [^`]+--jobs 1)`/.exec(r.stderr)?.[1];
    expect(pasted, r.stderr).toBe(`restore --recipe ${recipeFile} --backup ${set.id} --jobs 1`);
    const again = await runCli([...pasted!.split(' '), '--yes'], { env: { [PW_ENV]: pg.password, TMPDIR: small } });
    expect(again.code, again.stderr).toBe(0);
    expect(await pg.psql('SELECT count(*) FROM t', DB)).toBe('60000');
  }, 240_000);
});
