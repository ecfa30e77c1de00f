import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, open, readFile, rm, stat, symlink, truncate, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findBackupSet, listBackupSets, loadBackupSetFromPath } from '../../source/catalog/index.js';
import type { VerifyReport } from '../../source/catalog/types.js';
import { verifyBackupSet } from '../../source/catalog/verify.js';
import {
  backupMetachat,
  backupPgDirectory,
  backupStoryPortal,
  SandboxGroup,
  seedPostgres,
  seedRedis,
  type World,
} from '../../source/sandbox/index.js';
import { cliBin } from '../support/cli.js';

/**
 * Real backups from throwaway PostgreSQL / Redis / Prometheus in both audited layouts, damaged
 * copies of each kind, and what `list` / `verify` (library and built CLI) say about them.
 */

const DB = 'agentic_platform';
const T_NEW = new Date('2026-01-18T01:45:13Z');
const T_OLD = new Date('2026-01-17T01:00:00Z');

let group: SandboxGroup;
let tmp: string;
let bin: string;
let spRoot: string;
let spBad: string;
let mcRoot: string;
let mcBad: string;
let flatRoot: string;
let unknownRoot: string;
let redisKeyTotal: number;
let pwnedMarker: string;

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[]): Promise<CliResult> {
  // Its own state dir: as root the default is /var/lib/restore-assistant (list writes its cache there).
  const env: Record<string, string> = {
    NO_COLOR: '1',
    HOME: tmp,
    XDG_STATE_HOME: path.join(tmp, 'xdg'),
    RESTORE_ASSISTANT_STATE_DIR: path.join(tmp, 'state'),
  };
  if (process.env['PATH']) env['PATH'] = process.env['PATH'];
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { env, cwd: tmp, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

function noStackTrace(r: CliResult): void {
  expect(`${r.stdout}\n${r.stderr}`).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m);
  expect(r.stderr).not.toMatch(/Internal error/);
}

async function cutFile(file: string, fraction: number): Promise<void> {
  const { size } = await stat(file);
  await truncate(file, Math.floor(size * fraction));
}

async function flipByteAt(file: string, fraction: number): Promise<void> {
  const { size } = await stat(file);
  const fh = await open(file, 'r+');
  try {
    const pos = Math.floor(size * fraction);
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, pos);
    b[0] = (b[0] ?? 0) ^ 0xff;
    await fh.write(b, 0, 1, pos);
  } finally {
    await fh.close();
  }
}

function codes(report: VerifyReport): string[] {
  return [...new Set(report.problems.map((p) => p.code))].sort();
}

async function verifySetIn(root: string, id: string, depth: 'quick' | 'deep' = 'deep'): Promise<VerifyReport> {
  const { sets } = await listBackupSets({ root });
  return verifyBackupSet(findBackupSet(sets, id), { depth });
}

beforeAll(async () => {
  group = new SandboxGroup();
  tmp = await group.tempDir('ra-catalog-it-');
  const [pg, redis, prom] = await Promise.all([group.postgres(), group.redis(), group.prometheus()]);
  const [, seeded] = await Promise.all([seedPostgres(pg, DB, { rows: 100 }), seedRedis(redis), prom.waitForSamples(2)]);
  redisKeyTotal = Object.values(seeded.keys).reduce((a, b) => a + b, 0);
  const world: World = { pg, db: DB, redis, prom };

  // story-portal: two good sets; the older one's directory gets the newer mtime.
  spRoot = path.join(tmp, 'story-portal');
  const newer = await backupStoryPortal(world, spRoot, { time: T_NEW });
  const older = await backupStoryPortal(world, spRoot, { time: T_OLD });
  await utimes(newer.dir, new Date('2020-01-01'), new Date('2020-01-01'));
  await utimes(older.dir, new Date('2030-01-01'), new Date('2030-01-01'));

  // metachat: two good sets, pg_dump -Fc with sidecars, Redis dumps.
  mcRoot = path.join(tmp, 'metachat');
  await backupMetachat(world, mcRoot, { time: T_NEW });
  await backupMetachat(world, mcRoot, { time: T_OLD });

  // flat: a pg_dump directory-format dump with a time in its name.
  flatRoot = path.join(tmp, 'flat');
  await mkdir(flatRoot);
  await backupPgDirectory(pg, DB, path.join(flatRoot, `${DB}_20260118_014513`));

  // Damaged story-portal copies, one kind of damage per set.
  spBad = path.join(tmp, 'story-portal-bad');
  const copy = async (id: string): Promise<string> => {
    const dir = path.join(spBad, id);
    await cp(newer.dir, dir, { recursive: true });
    await writeFile(
      path.join(dir, 'metadata.txt'),
      `Backup Date: ${id}\nComponents:\n  - PostgreSQL (${DB} database)\n  - Redis\n  - Prometheus\n`,
    );
    return dir;
  };
  await cutFile(path.join(await copy('2026-01-10_00-00-01'), 'postgres.sql.gz'), 0.6);
  await truncate(path.join(await copy('2026-01-10_00-00-02'), 'redis.rdb'), 0);
  {
    // A tar with a "../" entry and a symlink pointing outside (GNU tar keeps both with -P).
    const dir = await copy('2026-01-10_00-00-03');
    const src = path.join(tmp, 'tar-src');
    await mkdir(path.join(src, 'data'), { recursive: true });
    await execa('tar', ['xzf', path.join(dir, 'prometheus-data.tar.gz'), '-C', path.join(src, 'data')]);
    await symlink('/etc/passwd', path.join(src, 'data', 'evil'));
    await writeFile(path.join(src, 'escape.txt'), 'outside');
    await execa('tar', ['czf', path.join(dir, 'prometheus-data.tar.gz'), '-P', '-C', path.join(src, 'data'), '.', '../escape.txt']);
  }
  await flipByteAt(path.join(await copy('2026-01-10_00-00-04'), 'redis.rdb'), 0.5);
  {
    pwnedMarker = path.join(tmp, 'pwned');
    const dir = await copy('2026-01-10_00-00-05');
    const hostile = [
      `Backup Date: $(touch ${pwnedMarker})`,
      `Host: \`touch ${pwnedMarker}\`; rm -rf / && echo \${HOME} | tee x > y`,
      'Nul\u0000Key: with\u0000nul',
      `Huge: ${'A'.repeat(2 * 1024 * 1024)}`,
      'Components:',
      `  - PostgreSQL ($(touch ${pwnedMarker}))`,
      '',
    ].join('\n');
    await writeFile(path.join(dir, 'metadata.txt'), hostile);
  }
  {
    const dir = await copy('2026-01-10_00-00-06');
    await writeFile(path.join(dir, 'SHA256SUMS'), `${'0'.repeat(64)}  redis.rdb\n`);
  }
  {
    // pg_dump cut short but the gzip stream itself is intact: no closing line.
    const dir = await copy('2026-01-10_00-00-07');
    const sql = gunzipSync(await readFile(path.join(dir, 'postgres.sql.gz'))).toString('utf8');
    const cut = sql.slice(0, sql.indexOf('-- PostgreSQL database dump complete'));
    await writeFile(path.join(dir, 'postgres.sql.gz'), gzipSync(cut));
  }

  // Damaged metachat copies.
  mcBad = path.join(tmp, 'metachat-bad');
  await mkdir(path.join(mcBad, 'postgres'), { recursive: true });
  const goodDump = path.join(mcRoot, 'postgres', `${DB}_20260118_014513.dump`);
  const truncated = path.join(mcBad, 'postgres', `${DB}_20260101_000000.dump`);
  await cp(goodDump, truncated);
  await cutFile(truncated, 0.7);
  const mismatched = path.join(mcBad, 'postgres', `${DB}_20260102_000000.dump`);
  await cp(goodDump, mismatched);
  await writeFile(
    `${mismatched}.sha256`,
    `${(await readFile(`${goodDump}.sha256`, 'utf8')).split(/\s+/)[0]}  ${path.basename(mismatched)}\n`,
  );
  await flipByteAt(mismatched, 0.9);
  await writeFile(path.join(mcBad, 'postgres', `${DB}_20260103_000000.dump`), '');

  unknownRoot = path.join(tmp, 'unknown');
  await mkdir(path.join(unknownRoot, 'photos'), { recursive: true });
  await writeFile(path.join(unknownRoot, 'notes.txt'), 'not a backup');

  bin = cliBin();
}, 240_000);

afterAll(async () => {
  await group?.stopAll();
});

describe('story-portal backups', () => {
  it('are listed newest first by recorded time although mtimes say the opposite', async () => {
    const { sets, layout, warnings } = await listBackupSets({ root: spRoot });
    expect(layout).toBe('story-portal');
    expect(warnings).toEqual([]);
    expect(sets.map((s) => s.id)).toEqual(['2026-01-18_01-45-13', '2026-01-17_01-00-00']);
    expect(sets[0]).toMatchObject({ time: T_NEW.toISOString(), timeSource: 'metadata', warnings: [] });
    expect(sets[0]?.components.map((c) => c.format).sort()).toEqual(['pg-plain-gz', 'prometheus-tar-gz', 'redis-rdb']);
    expect(sets[0]?.components.find((c) => c.kind === 'postgres')?.database).toBe(DB);
  });

  it('a good set passes deep verification with facts for the restore', async () => {
    const report = await verifySetIn(spRoot, 'latest');
    expect(report.problems).toEqual([]);
    expect(report.ok).toBe(true);
    const byKind = Object.fromEntries(report.components.map((c) => [c.kind, c]));
    const head = gunzipSync(await readFile(path.join(spRoot, '2026-01-18_01-45-13', 'postgres.sql.gz')))
      .subarray(0, 4096)
      .toString('utf8');
    expect(byKind['postgres']?.facts).toMatchObject({
      plainDumpHasRestrictLine: /^\\restrict \S+$/m.test(head),
      pgDumpVersion: expect.stringMatching(/^\d+/),
    });
    expect(byKind['postgres']?.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(byKind['redis']?.facts?.['redisKeys']).toBe(redisKeyTotal);
    const prom = byKind['prometheus']?.facts ?? {};
    expect(Boolean(prom['hasWal']) || Boolean(prom['hasChunksHead']) || Number(prom['prometheusBlocks']) > 0).toBe(true);
    expect(byKind['prometheus']?.checks.find((c) => c.name === 'tar entries')?.ok).toBe(true);
  });

  it('a good set passes quick verification', async () => {
    const report = await verifySetIn(spRoot, '2026-01-17_01-00-00', 'quick');
    expect(report.ok).toBe(true);
    expect(report.depth).toBe('quick');
    expect(report.components.find((c) => c.kind === 'postgres')?.facts?.['notChecked']).toEqual([
      'gzip stream',
      'dump complete line',
      'psql meta-commands',
    ]);
    expect(report.components.find((c) => c.kind === 'redis')?.facts?.['notChecked']).toEqual(['redis-check-rdb']);
  });

  it('damaged copies are rejected, each for its own reason', async () => {
    expect(codes(await verifySetIn(spBad, '2026-01-10_00-00-01'))).toEqual(['gzip-truncated', 'pg-dump-incomplete']);
    expect(codes(await verifySetIn(spBad, '2026-01-10_00-00-02'))).toEqual(['empty-file']);
    const tarReport = await verifySetIn(spBad, '2026-01-10_00-00-03');
    expect(codes(tarReport)).toEqual(['tar-unsafe-link', 'tar-unsafe-path']);
    expect(tarReport.problems.map((p) => p.message).join('\n')).toMatch(/"\.\.\/escape\.txt" climbs out/);
    expect(tarReport.problems.map((p) => p.message).join('\n')).toMatch(
      /symlink "\.\/evil" points outside the archive \(to "\/etc\/passwd"\)/,
    );
    expect(codes(await verifySetIn(spBad, '2026-01-10_00-00-04'))).toEqual(['rdb-check-failed']);
    const sums = await verifySetIn(spBad, '2026-01-10_00-00-06', 'quick');
    expect(codes(sums)).toEqual(['checksum-mismatch']);
    expect(sums.components.find((c) => c.kind === 'redis')?.checksum).toBe('mismatch');
    expect(codes(await verifySetIn(spBad, '2026-01-10_00-00-07'))).toEqual(['pg-dump-incomplete']);
  });

  it('an empty file is noticed by list (warning) and by quick verify', async () => {
    const { sets } = await listBackupSets({ root: spBad });
    expect(findBackupSet(sets, '2026-01-10_00-00-02').warnings).toContain('2026-01-10_00-00-02/redis.rdb is empty (0 bytes)');
    expect(codes(await verifySetIn(spBad, '2026-01-10_00-00-02', 'quick'))).toEqual(['empty-file']);
  });

  it('hostile metadata is data: parsed with warnings, never run, and the set still verifies', async () => {
    const { sets } = await listBackupSets({ root: spBad });
    const set = findBackupSet(sets, '2026-01-10_00-00-05');
    expect(set.timeSource).toBe('name');
    const warnings = set.warnings.join('\n');
    expect(warnings).toMatch(/backup date that is not understood/);
    expect(warnings).toMatch(/shell syntax; it is treated as text and never run/);
    expect(warnings).toMatch(/NUL bytes/);
    expect(warnings).toMatch(/characters long; only the first 4096 were read/);
    expect(JSON.stringify(set.metadata).length).toBeLessThan(64 * 1024);
    const report = await verifyBackupSet(set, { depth: 'deep' });
    expect(report.ok).toBe(true);
    expect(report.warnings?.length).toBeGreaterThan(0);
    expect(existsSync(pwnedMarker)).toBe(false);
  });
});

describe('metachat backups', () => {
  it('pair each custom dump with its Redis dump; checksums come from the sidecars', async () => {
    const { sets, layout } = await listBackupSets({ root: mcRoot, database: DB });
    expect(layout).toBe('metachat');
    expect(sets.map((s) => s.id)).toEqual(['20260118_014513', '20260117_010000']);
    expect(sets[0]?.components.map((c) => [c.kind, c.format, c.checksum])).toEqual([
      ['postgres', 'pg-custom', 'present'],
      ['redis', 'redis-rdb', 'absent'],
    ]);
  });

  it('a good set passes deep verification: checksum verified, TOC entries and key count recorded', async () => {
    const report = await verifySetIn(mcRoot, '20260118_014513');
    expect(report.problems).toEqual([]);
    const pg = report.components.find((c) => c.kind === 'postgres');
    expect(pg?.checksum).toBe('verified');
    expect(pg?.facts?.['tocEntries']).toBeGreaterThan(5);
    expect(pg?.facts?.['dbname']).toBe(DB);
    expect(report.components.find((c) => c.kind === 'redis')?.facts?.['redisKeys']).toBe(redisKeyTotal);
  });

  it('reports read progress up to the full size, and stops when aborted', async () => {
    const { sets } = await listBackupSets({ root: mcRoot });
    const set = findBackupSet(sets, '20260118_014513');
    const seen = new Map<string, { done: number; total: number }>();
    await verifyBackupSet(set, { depth: 'deep', onProgress: (p) => seen.set(p.path, { done: p.bytesDone, total: p.bytesTotal }) });
    for (const c of set.components) expect(seen.get(c.path)).toEqual({ done: c.size, total: c.size });
    const controller = new AbortController();
    controller.abort();
    await expect(verifyBackupSet(set, { depth: 'deep', signal: controller.signal })).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('a truncated custom dump passes --list but fails the deep read-through', async () => {
    const quick = await verifySetIn(mcBad, '20260101_000000', 'quick');
    expect(quick.components[0]?.checks.find((c) => c.name === 'pg_restore --list')?.ok).toBe(true);
    expect(codes(await verifySetIn(mcBad, '20260101_000000'))).toEqual(['pg-restore-read-failed']);
  });

  it('a checksum mismatch rejects the set even in quick mode; a 0-byte dump is rejected', async () => {
    expect(codes(await verifySetIn(mcBad, '20260102_000000', 'quick'))).toEqual(['checksum-mismatch']);
    expect(codes(await verifySetIn(mcBad, '20260103_000000', 'quick'))).toEqual(['empty-file']);
  });

  it('a pg_dump directory-format dump verifies deep', async () => {
    const { sets, layout } = await listBackupSets({ root: flatRoot });
    expect(layout).toBe('flat');
    const report = await verifyBackupSet(sets[0]!, { depth: 'deep' });
    expect(report.problems).toEqual([]);
    expect(report.components[0]?.format).toBe('pg-directory');
    expect(report.components[0]?.facts?.['tocEntries']).toBeGreaterThan(5);
  });

  it('a set loaded from a path verifies like a listed one', async () => {
    const set = await loadBackupSetFromPath(path.join(mcRoot, 'postgres', `${DB}_20260118_014513.dump`));
    expect(set.id).toBe('20260118_014513');
    expect(set.components[0]?.checksum).toBe('present');
    expect((await verifyBackupSet(set, { depth: 'quick' })).ok).toBe(true);
  });
});

describe('the built CLI', () => {
  it('list prints a table newest first, and --json the same sets', async () => {
    const table = await cli(['list', '--root', spRoot]);
    expect(table.code).toBe(0);
    const lines = table.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^ID\s+TIME \(UTC\)\s+AGE\s+COMPONENTS\s+SHA256\s+WARNINGS\s+HEALTH$/);
    expect(lines[1]).toMatch(/^2026-01-18_01-45-13\s+2026-01-18 01:45:13\s+\S+ \S+\s+postgres .*redis .*none\s+no-sums$/);
    expect(table.stdout).toMatch(/checksum_missing: 2026-01-18_01-45-13: no checksum recorded for postgres, prometheus, redis/);
    expect(lines[2]).toMatch(/^2026-01-17_01-00-00/);
    const json = await cli(['list', '--root', mcRoot, '--json']);
    expect(json.code).toBe(0);
    const parsed = JSON.parse(json.stdout) as {
      layout: string;
      sets: Array<{ id: string; ageSeconds: number; health: string[] }>;
      health: { ok: boolean; problems: Array<{ check: string }>; newest: Array<{ component: string }> };
    };
    expect(parsed.layout).toBe('metachat');
    expect(parsed.health.newest.map((n) => n.component)).toContain('postgres');
    expect(Array.isArray(parsed.sets[0]?.health)).toBe(true);
    expect(parsed.sets.map((s) => s.id)).toEqual(['20260118_014513', '20260117_010000']);
    expect(parsed.sets[0]?.ageSeconds).toBeGreaterThan(0);
  });

  it('list without --recipe or --root is a friendly usage error', async () => {
    const r = await cli(['list']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/needs to know where the backups are: pass --recipe NAME or --root DIR/);
    noStackTrace(r);
  });

  it('verify exits 0 for a good set (progress on stderr, result on stdout) and --json gives the report', async () => {
    const r = await cli(['verify', 'latest', '--root', spRoot]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Backup set verified \(3 components, deep/);
    expect(r.stderr).toMatch(/Verifying backup set 2026-01-18_01-45-13/);
    const j = await cli(['verify', '20260118_014513', '--root', mcRoot, '--json', '--quick']);
    expect(j.code).toBe(0);
    const report = JSON.parse(j.stdout) as VerifyReport;
    expect(report).toMatchObject({ setId: '20260118_014513', ok: true, depth: 'quick' });
    expect(report.components[0]?.checksum).toBe('verified');
  });

  it('verify exits 3 with one line per problem for each damaged set', async () => {
    const expected: Array<[string, string, RegExp]> = [
      [spBad, '2026-01-10_00-00-01', /gzip-truncated/],
      [spBad, '2026-01-10_00-00-02', /empty-file/],
      [spBad, '2026-01-10_00-00-03', /tar-unsafe-path/],
      [spBad, '2026-01-10_00-00-04', /rdb-check-failed/],
      [spBad, '2026-01-10_00-00-06', /checksum-mismatch/],
      [mcBad, '20260101_000000', /pg-restore-read-failed/],
      [mcBad, '20260102_000000', /checksum-mismatch/],
    ];
    for (const [root, id, code] of expected) {
      const r = await cli(['verify', id, '--root', root]);
      expect(r.code, `${id}: ${r.stdout}${r.stderr}`).toBe(3);
      expect(r.stdout).toMatch(/Backup set rejected: \d+ problems?\./);
      const problemLines = r.stdout.split('\n').filter((l) => l.startsWith('  - '));
      expect(problemLines.length).toBeGreaterThan(0);
      expect(problemLines.join('\n')).toMatch(code);
      expect(r.stderr).toMatch(/Nothing was touched/);
      noStackTrace(r);
    }
    const j = await cli(['verify', '2026-01-10_00-00-03', '--root', spBad, '--json']);
    expect(j.code).toBe(3);
    expect((JSON.parse(j.stdout) as VerifyReport).problems.map((p) => p.code)).toContain('tar-unsafe-link');
  });

  it('hostile metadata: list shows warnings, verify passes, nothing is run', async () => {
    const l = await cli(['list', '--root', spBad]);
    expect(l.code).toBe(0);
    expect(l.stdout).toMatch(/^  2026-01-10_00-00-05\/metadata.txt line \d+: .*shell syntax/m);
    expect(l.stdout).not.toContain('\u0000');
    expect(l.stdout.length).toBeLessThan(200_000);
    const v = await cli(['verify', '2026-01-10_00-00-05', '--root', spBad]);
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(/Warnings:/);
    expect(existsSync(pwnedMarker)).toBe(false);
  });

  it('an unknown layout, a missing root and an unknown set id are usage errors (exit 2)', async () => {
    const unknown = await cli(['list', '--root', unknownRoot]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/No backup layout recognized in .*found 1 directory and 1 file \(photos\/, notes.txt\)/);
    expect(unknown.stderr).toMatch(/supported: story-portal/);
    expect(unknown.stderr).toMatch(/supported: metachat/);
    noStackTrace(unknown);
    const missing = await cli(['verify', 'latest', '--root', path.join(tmp, 'nope')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/Backup root .*nope does not exist/);
    noStackTrace(missing);
    const noSet = await cli(['verify', '2026-01-18_01-45-00', '--root', spRoot]);
    expect(noSet.code).toBe(2);
    expect(noSet.stderr).toMatch(/nearest: 2026-01-18_01-45-13/);
  });

  it('verify by path needs no root', async () => {
    const r = await cli(['verify', path.join(spRoot, '2026-01-17_01-00-00'), '--quick']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Backup set 2026-01-17_01-00-00 \(story-portal/);
  });

  it('with a recipe: components the recipe expects but the set lacks reject it; a malformed recipe is exit 2 with a line number', async () => {
    const recipeFile = path.join(tmp, 'mc-recipe.yaml');
    await writeFile(
      recipeFile,
      [
        'name: mc-test',
        'backups:',
        `  root: ${mcRoot}`,
        '  layout: metachat',
        `  database: ${DB}`,
        'components:',
        '  postgres:',
        `    database: ${DB}`,
        '  prometheus:',
        '    url: http://127.0.0.1:9090',
        '    dataDir: /var/lib/prometheus',
        '    service: { stop: [systemctl, stop, prometheus], start: [systemctl, start, prometheus] }',
        '',
      ].join('\n'),
    );
    const listed = await cli(['list', '--recipe', recipeFile, '--json']);
    expect(listed.code).toBe(0);
    expect((JSON.parse(listed.stdout) as { recipe: string }).recipe).toBe('mc-test');
    const r = await cli(['verify', 'latest', '--recipe', recipeFile, '--quick']);
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/the recipe expects a Prometheus backup, but set 20260118_014513 has none \[component-missing\]/);
    const bad = path.join(tmp, 'bad-recipe.yaml');
    await writeFile(bad, 'name: bad\nbackups:\n  root: 5\n  layout: sideways\ncomponents: {}\n');
    const b = await cli(['list', '--recipe', bad]);
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/bad-recipe\.yaml:4:11: backups\.layout/);
    noStackTrace(b);
  });
});

// Keep the marker check honest: the marker path really is creatable (so "not created" means something).
it('the pwned marker path is writable', async () => {
  const probe = `${pwnedMarker}.probe`;
  await writeFile(probe, '');
  expect(existsSync(probe)).toBe(true);
  await rm(probe);
});
