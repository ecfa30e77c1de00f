import { mkdir, mkdtemp, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { findBackupSet, listBackupSets, loadBackupSetFromPath, pairByTime } from '../../source/catalog/index.js';
import type { BackupComponent } from '../../source/catalog/types.js';
import { RestoreAssistantError } from '../../source/errors.js';

let root: string;

beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'ra-catalog-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function file(rel: string, content: string | Buffer = 'x', mtime?: Date): Promise<string> {
  const full = path.join(root, rel);
  await mkdir(path.dirname(full), { recursive: true });
  await writeFile(full, content);
  if (mtime) await utimes(full, mtime, mtime);
  return full;
}

async function storySet(name: string, opts: { metadata?: string; mtime?: Date } = {}): Promise<void> {
  await file(`${name}/postgres.sql.gz`, Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1]));
  await file(`${name}/redis.rdb`, 'REDIS0010');
  await file(`${name}/prometheus-data.tar.gz`, Buffer.from([0x1f, 0x8b, 8]));
  await file(
    `${name}/metadata.txt`,
    opts.metadata ?? `Backup Date: ${name}\nComponents:\n  - PostgreSQL (agentic_platform)\n  - Redis\n  - Prometheus\n`,
  );
  if (opts.mtime) await utimes(path.join(root, name), opts.mtime, opts.mtime);
}

describe('story-portal layout', () => {
  it('orders by recorded time, newest first, even when mtimes say the opposite', async () => {
    await storySet('2026-01-16_01-00-00', { mtime: new Date('2026-03-01T00:00:00Z') });
    await storySet('2026-01-18_01-45-13', { mtime: new Date('2025-01-01T00:00:00Z') });
    await storySet('2026-01-17_01-00-00', { mtime: new Date('2026-02-01T00:00:00Z') });
    const { sets, layout } = await listBackupSets({ root, layout: 'auto' });
    expect(layout).toBe('story-portal');
    expect(sets.map((s) => s.id)).toEqual(['2026-01-18_01-45-13', '2026-01-17_01-00-00', '2026-01-16_01-00-00']);
    expect(findBackupSet(sets, 'latest').id).toBe('2026-01-18_01-45-13');
  });

  it('takes the time from metadata over the name, and reads components and database', async () => {
    await storySet('2026-01-18_01-45-13', {
      metadata: 'Backup Date: 2026-01-18 03:45:13 +02:00\nComponents:\n  - PostgreSQL (agentic_platform)\n',
    });
    const { sets } = await listBackupSets({ root });
    const s = sets[0]!;
    expect(s.time).toBe('2026-01-18T01:45:13.000Z');
    expect(s.timeSource).toBe('metadata');
    expect(s.components.map((c) => `${c.kind}:${c.format}`).sort()).toEqual([
      'postgres:pg-plain-gz',
      'prometheus:prometheus-tar-gz',
      'redis:redis-rdb',
    ]);
    expect(s.components.find((c) => c.kind === 'postgres')?.database).toBe('agentic_platform');
    expect(s.components.every((c) => c.checksum === 'absent')).toBe(true);
  });

  it('falls back to the name when the metadata date is hostile, and never runs it', async () => {
    const marker = path.join(root, 'pwned');
    await storySet('2026-01-18_01-45-13', { metadata: `Backup Date: $(touch ${marker})\nNote: \`touch ${marker}\`\n` });
    const { sets } = await listBackupSets({ root });
    expect(sets[0]?.time).toBe('2026-01-18T01:45:13.000Z');
    expect(sets[0]?.timeSource).toBe('name');
    expect(sets[0]?.warnings.join('\n')).toMatch(/backup date that is not understood/);
    expect(sets[0]?.warnings.join('\n')).toMatch(/shell syntax/);
    expect(existsSync(marker)).toBe(false);
  });

  it('warns about empty files, missing metadata and components metadata lists but the set lacks', async () => {
    await file('2026-01-18_01-45-13/postgres.sql.gz', '');
    await file('2026-01-18_01-45-13/metadata.txt', 'Backup Date: 2026-01-18_01-45-13\nComponents:\n  - PostgreSQL (x)\n  - Redis\n');
    await file('2026-01-17_01-45-13/redis.rdb', 'REDIS0010');
    const { sets } = await listBackupSets({ root });
    expect(sets[0]?.warnings).toEqual(
      expect.arrayContaining([
        '2026-01-18_01-45-13/postgres.sql.gz is empty (0 bytes)',
        'metadata.txt lists Redis, but the set holds no Redis backup',
      ]),
    );
    expect(sets[1]?.warnings).toContain('2026-01-17_01-45-13/metadata.txt is missing');
  });

  it('takes expected checksums from SHA256SUMS and sidecars, without hashing', async () => {
    await storySet('2026-01-18_01-45-13');
    await file('2026-01-18_01-45-13/SHA256SUMS', `${'a'.repeat(64)}  postgres.sql.gz\n`);
    await file('2026-01-18_01-45-13/redis.rdb.sha256', `${'b'.repeat(64)}  redis.rdb\n`);
    const { sets } = await listBackupSets({ root });
    const byKind = Object.fromEntries(sets[0]!.components.map((c) => [c.kind, c]));
    expect(byKind['postgres']).toMatchObject({ checksum: 'present', checksumSource: 'SHA256SUMS', expectedSha256: 'a'.repeat(64) });
    expect(byKind['redis']).toMatchObject({ checksum: 'present', checksumSource: 'sidecar', expectedSha256: 'b'.repeat(64) });
    expect(byKind['prometheus']?.checksum).toBe('absent');
  });
});

describe('metachat layout', () => {
  it('pairs each dump with the nearest Redis dump in the window; a lone Redis dump forms its own set', async () => {
    await file('postgres/metachat_20260118_020000.dump', 'PGDMP', new Date('2020-01-01'));
    await file('postgres/metachat_20260118_020000.dump.sha256', `${'c'.repeat(64)}  metachat_20260118_020000.dump\n`);
    await file('postgres/metachat_20260117_020000.dump', 'PGDMP', new Date('2030-01-01'));
    await file('redis/dump_20260118_020130.rdb', 'REDIS0010');
    await file('redis/dump_20260118_021500.rdb', 'REDIS0010');
    await file('redis/dump_20260110_020000.rdb', 'REDIS0010');
    await file('postgres/notes.txt', 'hello');
    const { sets, layout, warnings } = await listBackupSets({ root, layout: 'auto' });
    expect(layout).toBe('metachat');
    expect(sets.map((s) => [s.id, s.components.map((c) => path.basename(c.path))])).toEqual([
      ['20260118_021500', ['dump_20260118_021500.rdb']],
      ['20260118_020000', ['metachat_20260118_020000.dump', 'dump_20260118_020130.rdb']],
      ['20260117_020000', ['metachat_20260117_020000.dump']],
      ['20260110_020000', ['dump_20260110_020000.rdb']],
    ]);
    const paired = sets[1]!;
    expect(paired.components[0]).toMatchObject({
      database: 'metachat',
      checksum: 'present',
      checksumSource: 'sidecar',
      format: 'pg-custom',
    });
    expect(warnings).toContain('postgres/notes.txt does not match <db>_<YYYYMMDD_HHMMSS>.dump (ignored)');
  });

  it('honours the pairing window and the database filter', async () => {
    await file('postgres/app_20260118_020000.dump', 'PGDMP');
    await file('postgres/other_20260118_020000.dump', 'PGDMP');
    await file('redis/dump_20260118_024000.rdb', 'REDIS0010');
    const narrow = await listBackupSets({ root, layout: 'metachat', database: 'app', pairWindowMinutes: 30 });
    expect(narrow.sets.map((s) => s.components.length)).toEqual([1, 1]);
    expect(narrow.warnings.join('\n')).toMatch(/other databases ignored: other/);
    const wide = await listBackupSets({ root, layout: 'metachat', database: 'app', pairWindowMinutes: 60 });
    expect(wide.sets.map((s) => s.components.length)).toEqual([2]);
  });

  it('pairByTime prefers the closest pair', () => {
    const c = (kind: BackupComponent['kind'], p: string): BackupComponent => ({
      kind,
      format: kind === 'redis' ? 'redis-rdb' : 'pg-custom',
      path: p,
      size: 1,
      checksum: 'absent',
    });
    const t = (iso: string): number => Date.parse(iso);
    const groups = pairByTime(
      [
        { component: c('postgres', 'a'), stamp: 'a', time: t('2026-01-18T02:00:00Z') },
        { component: c('postgres', 'b'), stamp: 'b', time: t('2026-01-18T02:20:00Z') },
        { component: c('redis', 'r'), stamp: 'r', time: t('2026-01-18T02:15:00Z') },
      ],
      30 * 60_000,
    );
    expect(groups.map((g) => g.components.map((x) => x.path))).toEqual([['a'], ['b', 'r']]);
  });
});

describe('flat layout and paths', () => {
  it('groups timestamped dumps, supports pg_dump directories, and skips files without a recorded time', async () => {
    await file('app_20260118_020000.sql.gz', Buffer.from([0x1f, 0x8b]));
    await file('dump_20260118_020010.rdb', 'REDIS0010');
    await file('app_20260117_020000/toc.dat', 'PGDMP');
    await file('backup.sql', '-- PostgreSQL database dump');
    const { sets, layout, warnings } = await listBackupSets({ root });
    expect(layout).toBe('flat');
    expect(sets.map((s) => [s.id, s.components.map((c) => c.format)])).toEqual([
      ['20260118_020000', ['pg-plain-gz', 'redis-rdb']],
      ['20260117_020000', ['pg-directory']],
    ]);
    expect(warnings.join('\n')).toMatch(/backup.sql records no backup time/);
  });

  it('finds a set by path and loads a lone dump file by path', async () => {
    await storySet('2026-01-18_01-45-13');
    const { sets } = await listBackupSets({ root });
    expect(findBackupSet(sets, path.join(root, '2026-01-18_01-45-13')).id).toBe('2026-01-18_01-45-13');
    expect(findBackupSet(sets, path.join(root, '2026-01-18_01-45-13', 'redis.rdb')).id).toBe('2026-01-18_01-45-13');
    const lone = await loadBackupSetFromPath(path.join(root, '2026-01-18_01-45-13', 'redis.rdb'));
    expect(lone.components).toHaveLength(1);
    expect(lone.time).toBe('2026-01-18T01:45:13.000Z');
  });

  it('names the nearest ids when a set is not found', async () => {
    await storySet('2026-01-18_01-45-13');
    await storySet('2026-01-10_01-45-13');
    const { sets } = await listBackupSets({ root });
    expect(() => findBackupSet(sets, '2026-01-17_00-00-00')).toThrowError(RestoreAssistantError);
    try {
      findBackupSet(sets, '2026-01-17_00-00-00');
    } catch (error) {
      expect((error as RestoreAssistantError).problems[0]).toBe('nearest: 2026-01-18_01-45-13, 2026-01-10_01-45-13');
      expect((error as RestoreAssistantError).exitCode).toBe(2);
    }
    expect(findBackupSet(sets, '2026-01-10').id).toBe('2026-01-10_01-45-13');
  });

  it('never opens a FIFO: skipped in a set, refused by path', async () => {
    await storySet('2026-01-18_01-45-13');
    await rm(path.join(root, '2026-01-18_01-45-13', 'redis.rdb'));
    const { execFileSync } = await import('node:child_process');
    execFileSync('mkfifo', [path.join(root, '2026-01-18_01-45-13', 'redis.rdb')]);
    execFileSync('mkfifo', [path.join(root, '2026-01-18_01-45-13', 'pipe_20260118_014513.dump')]);
    execFileSync('mkfifo', [path.join(root, '2026-01-18_01-45-13', 'postgres.sql.gz.sha256')]);
    await rm(path.join(root, '2026-01-18_01-45-13', 'metadata.txt'));
    execFileSync('mkfifo', [path.join(root, '2026-01-18_01-45-13', 'metadata.txt')]);
    const { sets } = await listBackupSets({ root });
    expect(sets[0]?.components.map((c) => c.kind).sort()).toEqual(['postgres', 'prometheus']);
    expect(sets[0]?.warnings.join('\n')).toMatch(/postgres\.sql\.gz\.sha256 cannot be read \(ENOTREG\)/);
    await expect(loadBackupSetFromPath(path.join(root, '2026-01-18_01-45-13', 'pipe_20260118_014513.dump'))).rejects.toThrow(
      /neither a file nor a directory/,
    );
  });

  it('refuses a lone file that records no time', async () => {
    const f = await file('backup.sql', '-- PostgreSQL database dump');
    await expect(loadBackupSetFromPath(f)).rejects.toThrow(/records no backup time/);
  });
});

describe('bad roots', () => {
  it('a missing root, a file as root and an unknown layout are usage errors (exit 2) naming what was found', async () => {
    await expect(listBackupSets({ root: path.join(root, 'nope') })).rejects.toMatchObject({
      exitCode: 2,
      message: expect.stringMatching(/does not exist/),
    });
    const f = await file('plain.txt', 'hi');
    await expect(listBackupSets({ root: f })).rejects.toMatchObject({ exitCode: 2, message: expect.stringMatching(/is not a directory/) });
    await file('notes/readme.md', 'hi');
    const err = (await listBackupSets({ root }).catch((e: unknown) => e)) as RestoreAssistantError;
    expect(err.exitCode).toBe(2);
    expect(err.message).toMatch(/No backup layout recognized .*found 1 directory and 1 file \(notes\/, plain.txt\)/);
    expect(err.problems.join('\n')).toMatch(/story-portal.*\n.*metachat.*\n.*flat/);
  });

  it('an explicit layout with no sets lists nothing, without error', async () => {
    await mkdir(path.join(root, 'postgres'));
    const { sets } = await listBackupSets({ root, layout: 'metachat' });
    expect(sets).toEqual([]);
  });

  it('follows a symlinked set directory', async () => {
    await storySet('real/2026-01-18_01-45-13');
    const other = path.join(root, 'backups');
    await mkdir(other);
    await symlink(path.join(root, 'real', '2026-01-18_01-45-13'), path.join(other, '2026-01-18_01-45-13'));
    const { sets } = await listBackupSets({ root: other });
    expect(sets[0]?.components).toHaveLength(3);
  });
});
