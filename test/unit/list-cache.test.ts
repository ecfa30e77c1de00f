import { chmod, chown, copyFile, lstat, mkdir, mkdtemp, readFile, rename, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listBackupSets } from '../../source/catalog/index.js';
import { listCacheFile, LIST_CACHE_FORMAT } from '../../source/catalog/list-cache.js';
import { runCli } from '../support/cli.js';

/**
 * The list cache (source/catalog/list-cache.ts) on a real file system: used when every file a set
 * summarises is unchanged, ignored when one changed (size, mtime, ctime, inode, an entry added),
 * when the cache file is corrupt, tampered with, a symlink or someone else's, and never holding a
 * secret. The listing with the cache is the listing without it, ordered by recorded time.
 */

const isRoot = process.getuid?.() === 0;
const NOBODY = 65534;
let base: string;
let root: string;
let state: string;
let savedState: string | undefined;

const SETS = ['2026-01-10_01-00-00', '2026-01-11_01-00-00', '2026-01-12_01-00-00', '2026-01-13_01-00-00', '2026-01-14_01-00-00'];

async function write(rel: string, content: string | Buffer): Promise<string> {
  const full = path.join(root, rel);
  await mkdir(path.dirname(full), { recursive: true });
  await writeFile(full, content);
  return full;
}

function metadata(date: string, extra = ''): string {
  return `Backup Date: ${date}\nComponents:\n  - PostgreSQL (agentic_platform)\n  - Redis\n  - Prometheus\n${extra}`;
}

const list = (cache: boolean): ReturnType<typeof listBackupSets> => listBackupSets({ root, ...(cache ? { cache: true } : {}) });

/** The sets exactly as `list --json` would print them (key order included). */
const asJson = (r: Awaited<ReturnType<typeof listBackupSets>>): string =>
  JSON.stringify({ sets: r.sets, warnings: r.warnings, layout: r.layout });

async function expectSameAsUncached(r: Awaited<ReturnType<typeof listBackupSets>>): Promise<void> {
  expect(asJson(r)).toBe(asJson(await list(false)));
}

/** Files older than the cache's 2-second window (it refuses sets that changed more recently). */
async function settle(): Promise<void> {
  await new Promise((r) => setTimeout(r, 2_200));
}

beforeAll(async () => {
  base = await mkdtemp(path.join(os.tmpdir(), 'ra-list-cache-'));
  root = path.join(base, 'backups');
  state = path.join(base, 'state');
  savedState = process.env['RESTORE_ASSISTANT_STATE_DIR'];
  process.env['RESTORE_ASSISTANT_STATE_DIR'] = state;
  for (const id of SETS) {
    await write(`${id}/postgres.sql.gz`, Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1]));
    await write(`${id}/redis.rdb`, 'REDIS0010');
    await write(`${id}/prometheus-data.tar.gz`, Buffer.from([0x1f, 0x8b, 8]));
    await write(`${id}/metadata.txt`, metadata(id));
  }
  // Recorded times that disagree with the names: the order is by the recorded time.
  await write(`${SETS[0]}/metadata.txt`, metadata('2026-01-20_01-00-00'));
  await write(`${SETS[1]}/SHA256SUMS`, `${'a'.repeat(64)}  postgres.sql.gz\nnot a sum line\n`);
  await write(`${SETS[2]}/redis.rdb.sha256`, `${'b'.repeat(64)}  redis.rdb\n`);
  // A pg_dump -Fd directory inside a set: its files are part of what the entry summarises.
  await rm(path.join(root, SETS[3]!, 'postgres.sql.gz'));
  await write(`${SETS[3]}/pg/toc.dat`, 'PGDMP');
  await write(`${SETS[3]}/pg/3001.dat.gz`, 'x'.repeat(100));
  await settle();
}, 60_000);

afterAll(async () => {
  if (savedState === undefined) delete process.env['RESTORE_ASSISTANT_STATE_DIR'];
  else process.env['RESTORE_ASSISTANT_STATE_DIR'] = savedState;
  await rm(base, { recursive: true, force: true });
});

describe('the list cache', () => {
  it('is written on the first listing and answers every set on the next, with the same result as no cache', async () => {
    const uncached = await list(false);
    expect(uncached.cacheStats).toBeUndefined();
    expect(uncached.sets.map((s) => s.id)).toEqual([SETS[0], SETS[4], SETS[3], SETS[2], SETS[1]]);
    const cold = await list(true);
    expect(cold.cacheStats).toMatchObject({ hits: 0, misses: SETS.length, ignored: 'none yet' });
    const file = listCacheFile(root);
    const st = await stat(file);
    expect(st.mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(file, 'utf8'))).toMatchObject({ format: LIST_CACHE_FORMAT, root });
    const warm = await list(true);
    expect(warm.cacheStats).toEqual({ hits: SETS.length, misses: 0 });
    expect(asJson(cold)).toBe(asJson(uncached));
    expect(asJson(warm)).toBe(asJson(uncached));
    // A set's checksum expectations and the pg_dump -Fd directory come back as cataloged.
    const s1 = warm.sets.find((s) => s.id === SETS[1])!;
    expect(s1.components.find((c) => c.kind === 'postgres')).toMatchObject({ checksum: 'present', expectedSha256: 'a'.repeat(64) });
    expect(s1.warnings.join('\n')).toMatch(/not a sha256 line/);
    expect(warm.sets.find((s) => s.id === SETS[3])!.components.find((c) => c.kind === 'postgres')).toMatchObject({
      format: 'pg-directory',
      size: 105,
    });
  });

  it('catalogs a set again when one of its files changed: size, mtime, ctime (same size and mtime), inode, a new entry', async () => {
    await list(true);
    await settle();
    expect((await list(true)).cacheStats).toEqual({ hits: SETS.length, misses: 0 });

    // Size: the Redis dump grows.
    await writeFile(path.join(root, SETS[4]!, 'redis.rdb'), 'REDIS0010-and-more');
    let r = await list(true);
    expect(r.cacheStats).toMatchObject({ hits: SETS.length - 1, misses: 1 });
    expect(r.sets.find((s) => s.id === SETS[4])!.components.find((c) => c.kind === 'redis')?.size).toBe(18);
    await expectSameAsUncached(r);

    // Same size, mtime set back: only the ctime tells. The new recorded time reorders the list.
    const meta = path.join(root, SETS[2]!, 'metadata.txt');
    const before = await stat(meta);
    await writeFile(meta, metadata('2026-01-30_01-00-00'));
    expect((await stat(meta)).size).toBe(before.size);
    await utimes(meta, before.atime, before.mtime);
    r = await list(true);
    expect(r.cacheStats?.misses).toBeGreaterThanOrEqual(1);
    expect(r.sets[0]?.id).toBe(SETS[2]);
    await expectSameAsUncached(r);

    // Inode: the same bytes renamed over the file (as a backup job rewriting it would), mtime kept.
    const rdb = path.join(root, SETS[1]!, 'redis.rdb');
    const old = await stat(rdb);
    await copyFile(rdb, `${rdb}.new`);
    await utimes(`${rdb}.new`, old.atime, old.mtime);
    await rename(`${rdb}.new`, rdb);
    expect((await stat(rdb)).ino).not.toBe(old.ino);
    r = await list(true);
    expect(r.cacheStats?.misses).toBeGreaterThanOrEqual(1);
    await expectSameAsUncached(r);

    // A new entry: a sidecar appears beside the Prometheus archive.
    await write(`${SETS[0]}/prometheus-data.tar.gz.sha256`, `${'c'.repeat(64)}\n`);
    r = await list(true);
    expect(r.sets.find((s) => s.id === SETS[0])!.components.find((c) => c.kind === 'prometheus')).toMatchObject({
      checksum: 'present',
      checksumSource: 'sidecar',
    });
    await expectSameAsUncached(r);

    // A file inside the pg_dump -Fd directory changes.
    await writeFile(path.join(root, SETS[3]!, 'pg', '3001.dat.gz'), 'y'.repeat(200));
    r = await list(true);
    expect(r.sets.find((s) => s.id === SETS[3])!.components.find((c) => c.kind === 'postgres')?.size).toBe(205);
    await expectSameAsUncached(r);

    // Once they are older than 2 s the changed sets are cached again.
    await settle();
    await list(true);
    expect((await list(true)).cacheStats).toEqual({ hits: SETS.length, misses: 0 });
  }, 60_000);

  it('ignores a corrupt cache file and rewrites it', async () => {
    const file = listCacheFile(root);
    await list(true);
    for (const junk of ['{"format": "restore-assistant/list-cache@1", "entr', 'not json at all', '[]', '{}']) {
      await writeFile(file, junk);
      const r = await list(true);
      expect(r.cacheStats).toMatchObject({ hits: 0, misses: SETS.length, ignored: 'corrupt' });
      await expectSameAsUncached(r);
      expect(JSON.parse(await readFile(file, 'utf8'))).toMatchObject({ format: LIST_CACHE_FORMAT });
      expect((await list(true)).cacheStats).toEqual({ hits: SETS.length, misses: 0 });
    }
  });

  it('does not use an entry whose content is not what the catalog makes (a path outside its set, a digest that is not hex)', async () => {
    const file = listCacheFile(root);
    await list(true);
    const body = JSON.parse(await readFile(file, 'utf8')) as {
      entries: Record<string, { value: { components: Array<{ path: string; expectedSha256?: string }> } }>;
    };
    const dirs = Object.keys(body.entries);
    body.entries[dirs[0]!]!.value.components[0]!.path = '/etc/shadow';
    body.entries[dirs[1]!]!.value.components[0]!.expectedSha256 = 'not-a-digest';
    await writeFile(file, JSON.stringify(body));
    const r = await list(true);
    expect(r.cacheStats).toMatchObject({ hits: SETS.length - 2, misses: 2 });
    expect(JSON.stringify(r.sets)).not.toContain('/etc/shadow');
    await expectSameAsUncached(r);
  });

  it('replaces a symlink planted at the cache file name, never reading or writing through it', async () => {
    const file = listCacheFile(root);
    const victim = path.join(base, 'victim.txt');
    await writeFile(victim, 'do not touch');
    await rm(file, { force: true });
    await symlink(victim, file);
    const r = await list(true);
    expect(r.cacheStats).toMatchObject({ misses: SETS.length, ignored: 'a symbolic link' });
    expect(await readFile(victim, 'utf8')).toBe('do not touch');
    expect((await lstat(file)).isFile()).toBe(true);
    await expectSameAsUncached(r);
  });

  it.runIf(isRoot)('ignores a cache file owned by another user and rewrites it as ours', async () => {
    const file = listCacheFile(root);
    await list(true);
    await chown(file, NOBODY, NOBODY);
    const r = await list(true);
    expect(r.cacheStats).toMatchObject({ hits: 0, misses: SETS.length, ignored: `owned by uid ${NOBODY}` });
    await expectSameAsUncached(r);
    expect((await stat(file)).uid).toBe(process.getuid?.());
    expect((await list(true)).cacheStats).toEqual({ hits: SETS.length, misses: 0 });
  });

  it('is not used at all when others can write the state directory', async () => {
    await list(true);
    await chmod(state, 0o777);
    try {
      const r = await list(true);
      expect(r.cacheStats).toBeUndefined();
      await expectSameAsUncached(r);
    } finally {
      await chmod(state, 0o700);
    }
  });

  it('never holds a secret: a set whose metadata has a credential is cataloged every time, not cached', async () => {
    const id = '2026-01-15_01-00-00';
    await write(`${id}/redis.rdb`, 'REDIS0010');
    await write(`${id}/metadata.txt`, metadata(id, 'Source: postgres://backup:hunter2secret@db.internal/app\n'));
    await settle();
    await list(true);
    const r = await list(true);
    expect(r.cacheStats).toEqual({ hits: SETS.length, misses: 1 });
    expect(r.sets.find((s) => s.id === id)?.metadata['Source']).toContain('hunter2secret');
    expect(await readFile(listCacheFile(root), 'utf8')).not.toContain('hunter2secret');
    await expectSameAsUncached(r);
    await rm(path.join(root, id), { recursive: true });
  });

  it('feeds listing only: verify and restore catalog afresh (a forged entry shows in list, not in what verify reads)', async () => {
    const file = listCacheFile(root);
    await list(true);
    const body = JSON.parse(await readFile(file, 'utf8')) as {
      entries: Record<
        string,
        { value: { components: Array<{ kind: string; expectedSha256?: string; checksum: string; checksumSource?: string }> } }
      >;
    };
    const dir = path.join(root, SETS[2]!);
    const redis = body.entries[dir]!.value.components.find((c) => c.kind === 'redis')!;
    expect(redis.expectedSha256).toBe('b'.repeat(64));
    redis.expectedSha256 = 'f'.repeat(64);
    await writeFile(file, JSON.stringify(body));
    // `list` believes its own cache (same uid, files unchanged) ...
    const listed = await list(true);
    expect(listed.sets.find((s) => s.id === SETS[2])!.components.find((c) => c.kind === 'redis')?.expectedSha256).toBe('f'.repeat(64));
    // ... but what verify, plan and restore list (no cache) reads the sidecar itself.
    const fresh = await listBackupSets({ root });
    expect(fresh.sets.find((s) => s.id === SETS[2])!.components.find((c) => c.kind === 'redis')?.expectedSha256).toBe('b'.repeat(64));
    await rm(file);
  });
});

describe('list (the built CLI) with and without the cache', () => {
  it('prints the same table and the same --json (but listedAt and ages), newest first by recorded time', async () => {
    const cliState = path.join(base, 'cli-state');
    const env = { RESTORE_ASSISTANT_STATE_DIR: cliState, RESTORE_ASSISTANT_DEBUG: '1' };
    const plain = await runCli(['list', '--root', root, '--no-cache'], { env });
    expect(plain.code).toBe(0);
    expect(plain.stderr).not.toMatch(/list cache:/);
    const cold = await runCli(['list', '--root', root], { env });
    expect(cold.stderr).toMatch(/list cache: 0 set\(s\) from the cache, \d+ cataloged \(cache file: none yet\)/);
    const warm = await runCli(['list', '--root', root], { env });
    expect(warm.stderr).toMatch(new RegExp(`list cache: ${SETS.length} set\\(s\\) from the cache, 0 cataloged`));
    expect(cold.stdout).toBe(plain.stdout);
    expect(warm.stdout).toBe(plain.stdout);
    const ids = warm.stdout
      .split('\n')
      .slice(1)
      .map((l) => l.split(/\s+/)[0])
      .filter((x) => x && /^\d{4}-/.test(x));
    expect(ids[0]).toBe(SETS[2]); // its metadata records 2026-01-30 (changed above)

    const strip = (text: string): unknown => {
      const j = JSON.parse(text) as { listedAt?: string; sets: Array<{ ageSeconds?: number }> };
      delete j.listedAt;
      for (const s of j.sets) delete s.ageSeconds;
      return j;
    };
    const jsonPlain = await runCli(['list', '--root', root, '--json', '--no-cache'], { env });
    const jsonWarm = await runCli(['list', '--root', root, '--json'], { env });
    expect(jsonWarm.stderr).toMatch(/from the cache, 0 cataloged/);
    expect(strip(jsonWarm.stdout)).toEqual(strip(jsonPlain.stdout));
    expect(Object.keys(JSON.parse(jsonWarm.stdout) as object)).toEqual(Object.keys(JSON.parse(jsonPlain.stdout) as object));
  }, 120_000);
});
