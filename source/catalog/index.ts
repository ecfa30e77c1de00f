import { stat } from 'node:fs/promises';
import path from 'node:path';
import { RestoreAssistantError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { expandHome } from '../recipe/home.js';
import { sanitizeText } from '../text/sanitize.js';
import { METACHAT_DUMP, METACHAT_RDB, PHYSICAL_BASE_DIR, STORY_PORTAL_DIR } from './names.js';
import type { BackupSet, Layout } from './types.js';
import { buildDirSet, byRecordedTime, type DirSetBuilder, type ListOptions } from './sets.js';
import { classifyPath, encryptedName, readEntries, rootError, type Entry } from './files.js';
import { listMetachat } from './layouts/metachat.js';
import { listStoryPortal } from './layouts/story-portal.js';
import { listFlat } from './layouts/flat.js';
import type { verifyBackupSet as verifyBackupSetImpl } from './verify.js';

export type { BackupComponent, BackupSet, Layout } from './types.js';

/**
 * Deep verification (verify.ts), loaded on first use: listing needs none of the verifiers (execa,
 * tar, zlib), and `list` and the guide's first screen should not pay for loading them.
 */
export async function verifyBackupSet(...args: Parameters<typeof verifyBackupSetImpl>): ReturnType<typeof verifyBackupSetImpl> {
  return (await import('./verify.js')).verifyBackupSet(...args);
}
export { classifyPath } from './files.js';
export { findBackupSet, loadBackupSetFromPath, nearestIds } from './find.js';
export { pairByTime, type ListOptions } from './sets.js';

export interface ListResult {
  /** Newest first, by the time each backup records (never file mtime). */
  sets: BackupSet[];
  layout: Layout;
  /** Notes about the root itself (ignored files, other databases, files without a recorded time). */
  warnings: string[];
  /** With `cache`: set directories answered from the list cache, cataloged afresh, and why the cache file was not used. */
  cacheStats?: { hits: number; misses: number; ignored?: string };
}

export const SUPPORTED_LAYOUTS_HELP = [
  'story-portal: <root>/<YYYY-MM-DD_HH-MM-SS>/ holding postgres.sql.gz, redis.rdb, prometheus-data.tar.gz, metadata.txt',
  'metachat: <root>/postgres/<db>_<YYYYMMDD_HHMMSS>.dump (+ .sha256) and <root>/redis/dump_<YYYYMMDD_HHMMSS>.rdb',
  'flat: dumps directly in <root> (<name>_<YYYYMMDD_HHMMSS>.dump/.sql/.sql.gz, pg_dump -Fd directories, .rdb, prometheus*.tar.gz), or set directories with a metadata.txt',
  'physical: <root>/base/<stamp>/ holding pg_basebackup -Ft output (base.tar[.gz], backup_manifest), with backups.walArchive naming the WAL archive',
];

/** Which layout a root holds, or undefined. */
export async function detectLayout(root: string, entries: Entry[]): Promise<Layout | undefined> {
  if (entries.some((e) => e.isDir && STORY_PORTAL_DIR.test(e.name))) return 'story-portal';
  const base = entries.find((e) => e.isDir && e.name === PHYSICAL_BASE_DIR);
  if (base && (await readEntries(base.full).catch(() => [] as Entry[])).some((e) => e.isDir)) return 'physical';
  for (const sub of ['postgres', 'redis'] as const) {
    const e = entries.find((x) => x.isDir && x.name === sub);
    if (!e) continue;
    const inner = await readEntries(e.full).catch(() => [] as Entry[]);
    if (inner.some((i) => (sub === 'postgres' ? METACHAT_DUMP : METACHAT_RDB).test(encryptedName(i.name).plain))) return 'metachat';
  }
  for (const e of entries) {
    if ((e.isFile || e.isDir) && (await classifyPath(e.full, e.isDir, true))) return 'flat';
    if (e.isDir) {
      const inner = await readEntries(e.full).catch(() => [] as Entry[]);
      for (const i of inner) if ((i.isFile || i.isDir) && (await classifyPath(i.full, i.isDir))) return 'flat';
    }
  }
  return undefined;
}

function describeFound(entries: Entry[]): string {
  if (entries.length === 0) return 'it is empty';
  const dirs = entries.filter((e) => e.isDir).map((e) => `${sanitizeText(e.name, 60)}/`);
  const files = entries.filter((e) => !e.isDir).map((e) => sanitizeText(e.name, 60));
  const sample = [...dirs, ...files].slice(0, 8).join(', ');
  return `found ${dirs.length} director${dirs.length === 1 ? 'y' : 'ies'} and ${files.length} file${files.length === 1 ? '' : 's'} (${sample}${dirs.length + files.length > 8 ? ', …' : ''})`;
}

/**
 * Every backup set under a root, newest first by the time the backup records (metadata or
 * name, never mtime). Never hashes files: checksum status is 'present' or 'absent'.
 */
export async function listBackupSets(opts: ListOptions): Promise<ListResult> {
  const root = path.resolve(expandHome(opts.root));
  let entries: Entry[];
  try {
    const s = await stat(root);
    if (!s.isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
    entries = await readEntries(root);
  } catch (error) {
    throw rootError(root, error);
  }
  const requested = opts.layout ?? 'auto';
  const layout = requested === 'auto' ? await detectLayout(root, entries) : requested;
  if (!layout) {
    throw new RestoreAssistantError(`No backup layout recognized in ${root}: ${describeFound(entries)}.`, ExitCode.usage, {
      problems: SUPPORTED_LAYOUTS_HELP.map((l) => `supported: ${l}`),
      untouched: 'Nothing was touched.',
      next: 'Point --root (or backups.root in the recipe) at the directory that holds the backup sets, or set backups.layout.',
    });
  }
  const warnings: string[] = [];
  // The list cache answers set directories (story-portal, flat set dirs); loose files are cheap.
  const cache =
    opts.cache && (layout === 'story-portal' || layout === 'flat')
      ? await (await import('./list-cache.js')).openListCache(root)
      : undefined;
  const dirSet: DirSetBuilder = cache ? (...a) => cache.dirSet(...a) : buildDirSet;
  let sets: BackupSet[];
  if (layout === 'story-portal') sets = await listStoryPortal(root, entries, warnings, dirSet);
  else if (layout === 'metachat') sets = await listMetachat(root, opts, warnings);
  else if (layout === 'physical') sets = await (await import('./layouts/physical.js')).listPhysical(root, entries, warnings);
  else sets = await listFlat(root, entries, opts, warnings, dirSet);
  sets.sort(byRecordedTime);
  if (cache) await cache.save();
  return { sets, layout, warnings, ...(cache ? { cacheStats: { ...cache.stats } } : {}) };
}
