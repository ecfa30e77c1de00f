import type { Dirent } from 'node:fs';
import { componentLabel, COMPONENT_KINDS } from './types.js';
import { open, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { RestoreAssistantError, UsageError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { expandHome } from '../recipe/load.js';
import { assertRegularFile, lookupSum, parseSha256Sums, readSmallText } from './checksums.js';
import { METADATA_MAX_BYTES, metadataValue, parseMetadata } from './metadata.js';
import { sanitizeText } from '../text/sanitize.js';
import { METACHAT_DUMP, METACHAT_RDB, parseCompactStamp, parseDashedStamp, parseRecordedTime, stampInName, STORY_PORTAL_DIR } from './names.js';
import type { BackupComponent, BackupSet, ComponentFormat, ComponentKind, Layout } from './types.js';

export type { BackupComponent, BackupSet, Layout } from './types.js';
export { verifyBackupSet } from './verify.js';

export interface ListOptions {
  root: string;
  layout?: 'auto' | Layout;
  /** metachat: only dumps of this database (the <db> in <db>_<YYYYMMDD_HHMMSS>.dump). */
  database?: string;
  /** metachat / flat: components this close in time form one set (default 30). */
  pairWindowMinutes?: number;
}

export interface ListResult {
  /** Newest first, by the time each backup records (never file mtime). */
  sets: BackupSet[];
  layout: Layout;
  /** Notes about the root itself (ignored files, other databases, files without a recorded time). */
  warnings: string[];
}

export const SUPPORTED_LAYOUTS_HELP = [
  'story-portal: <root>/<YYYY-MM-DD_HH-MM-SS>/ holding postgres.sql.gz, redis.rdb, prometheus-data.tar.gz, metadata.txt',
  'metachat: <root>/postgres/<db>_<YYYYMMDD_HHMMSS>.dump (+ .sha256) and <root>/redis/dump_<YYYYMMDD_HHMMSS>.rdb',
  'flat: dumps directly in <root> (<name>_<YYYYMMDD_HHMMSS>.dump/.sql/.sql.gz, pg_dump -Fd directories, .rdb, prometheus*.tar.gz), or set directories with a metadata.txt',
];

const DEFAULT_WINDOW_MINUTES = 30;

interface Entry {
  name: string;
  full: string;
  isDir: boolean;
  isFile: boolean;
}

async function readEntries(dir: string): Promise<Entry[]> {
  const dirents: Dirent[] = await readdir(dir, { withFileTypes: true });
  const out: Entry[] = [];
  for (const d of dirents) {
    const full = path.join(dir, d.name);
    let isDir = d.isDirectory();
    let isFile = d.isFile();
    if (d.isSymbolicLink()) {
      try {
        const s = await stat(full);
        isDir = s.isDirectory();
        isFile = s.isFile();
      } catch {
        // a dangling link: neither
      }
    }
    out.push({ name: d.name, full, isDir, isFile });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function rootError(root: string, error: unknown): RestoreAssistantError {
  const code = (error as NodeJS.ErrnoException).code ?? 'error';
  const why =
    code === 'ENOENT'
      ? 'does not exist'
      : code === 'ENOTDIR'
        ? 'is not a directory'
        : code === 'EACCES' || code === 'EPERM'
          ? 'cannot be read (permission denied)'
          : `cannot be read (${code})`;
  return new RestoreAssistantError(`Backup root ${root} ${why}.`, ExitCode.usage, {
    untouched: 'Nothing was touched.',
    next:
      code === 'EACCES' || code === 'EPERM'
        ? 'Run as a user that can read the backups (e.g. with sudo), or fix the permissions.'
        : 'Check the path (--root DIR, or backups.root in the recipe).',
  });
}

async function sniff(file: string, n = 8): Promise<Buffer> {
  await assertRegularFile(file);
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(n);
    const { bytesRead } = await fh.read(buf, 0, n, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

/** What kind of backup file a name is, or undefined. Reads at most a few bytes (to tell custom from plain). */
export async function classifyPath(full: string, isDir: boolean, strictNames = false): Promise<{ kind: ComponentKind; format: ComponentFormat } | undefined> {
  const name = path.basename(full).toLowerCase();
  if (isDir) {
    return (await exists(path.join(full, 'toc.dat'))) ? { kind: 'postgres', format: 'pg-directory' } : undefined;
  }
  if (name.endsWith('.sql.gz')) return { kind: 'postgres', format: 'pg-plain-gz' };
  if (name.endsWith('.sql')) return { kind: 'postgres', format: 'pg-plain' };
  if (name.endsWith('.dump') || name.endsWith('.backup') || name.endsWith('.pgdump')) {
    let head: Buffer = Buffer.alloc(0);
    try {
      head = await sniff(full, 5);
    } catch {
      // unreadable: reported by the size check
    }
    if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return { kind: 'postgres', format: 'pg-plain-gz' };
    if (head.length === 0 || head.toString('latin1') === 'PGDMP') return { kind: 'postgres', format: 'pg-custom' };
    return { kind: 'postgres', format: 'pg-plain' };
  }
  if (name.endsWith('.rdb')) return { kind: 'redis', format: 'redis-rdb' };
  if ((name.endsWith('.tar.gz') || name.endsWith('.tgz')) && (!strictNames || name.includes('prom'))) {
    return { kind: 'prometheus', format: 'prometheus-tar-gz' };
  }
  return undefined;
}

async function sizeOf(full: string, isDir: boolean): Promise<number> {
  if (!isDir) return (await stat(full)).size;
  let total = 0;
  for (const e of await readdir(full, { withFileTypes: true })) {
    if (e.isFile()) total += (await stat(path.join(full, e.name))).size;
  }
  return total;
}

interface ChecksumSources {
  /** Parsed SHA256SUMS files: the directory each lives in → sums. */
  sumsFiles: Array<{ dir: string; sums: Map<string, string> }>;
}

async function loadSums(dir: string, entries: Entry[], warnings: string[], rel: string): Promise<ChecksumSources['sumsFiles']> {
  const out: ChecksumSources['sumsFiles'] = [];
  for (const e of entries) {
    if (!e.isFile || !/^sha256sums(\.txt)?$/i.test(e.name)) continue;
    try {
      const { text, truncated } = await readSmallText(e.full);
      const parsed = parseSha256Sums(text, `${rel}${e.name}`);
      warnings.push(...parsed.warnings);
      if (truncated) warnings.push(`${rel}${e.name} is larger than 4 MiB; only the start was read`);
      out.push({ dir, sums: parsed.sums });
    } catch (error) {
      warnings.push(`${rel}${e.name} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  return out;
}

/** Build one component: size, checksum expectations (sidecar first, then SHA256SUMS). */
async function makeComponent(
  full: string,
  isDir: boolean,
  cls: { kind: ComponentKind; format: ComponentFormat },
  sumsFiles: ChecksumSources['sumsFiles'],
  warnings: string[],
  label: string,
): Promise<BackupComponent> {
  let size = 0;
  try {
    size = await sizeOf(full, isDir);
  } catch (error) {
    warnings.push(`${label} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const component: BackupComponent = { kind: cls.kind, format: cls.format, path: full, size, checksum: 'absent' };
  if (size === 0) warnings.push(`${label} is empty (0 bytes)`);
  if (!isDir) {
    const sidecar = `${full}.sha256`;
    if (await exists(sidecar)) {
      try {
        const { text } = await readSmallText(sidecar, 64 * 1024);
        const parsed = parseSha256Sums(text, `${label}.sha256`);
        const named = [...parsed.sums.entries()];
        const hit = parsed.sums.get(path.basename(full)) ?? parsed.sums.get('') ?? (named.length === 1 ? named[0]?.[1] : undefined);
        if (named.length === 1 && named[0]?.[0] !== '' && named[0]?.[0] !== path.basename(full) && path.basename(named[0]?.[0] ?? '') !== path.basename(full)) {
          warnings.push(`${label}.sha256 names "${sanitizeText(named[0]?.[0] ?? '', 120)}", not ${path.basename(full)}; its digest is used anyway`);
        }
        if (hit) {
          component.expectedSha256 = hit;
          component.checksumSource = 'sidecar';
          component.checksum = 'present';
        } else {
          warnings.push(`${label}.sha256 holds no sha256 digest`);
        }
      } catch (error) {
        warnings.push(`${label}.sha256 cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
      }
    }
    if (!component.expectedSha256) {
      for (const s of sumsFiles) {
        const hit = lookupSum(s.sums, s.dir, full);
        if (hit) {
          component.expectedSha256 = hit;
          component.checksumSource = 'SHA256SUMS';
          component.checksum = 'present';
          break;
        }
      }
    }
  }
  return component;
}

async function readMetadata(file: string, warnings: string[], label: string): Promise<Record<string, string | string[]>> {
  try {
    const { text, truncated, size } = await readSmallText(file, METADATA_MAX_BYTES);
    const parsed = parseMetadata(text, label);
    warnings.push(...parsed.warnings);
    if (truncated) warnings.push(`${label} is ${size} bytes; only the first ${METADATA_MAX_BYTES} were read`);
    return parsed.metadata;
  } catch (error) {
    warnings.push(`${label} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
    return {};
  }
}

/**
 * One set directory (story-portal, or a flat set dir): components inside it, metadata.txt,
 * SHA256SUMS, sidecars. `nameTime` is the time its name records, if any.
 */
async function buildDirSet(dir: string, root: string, layout: Layout, nameTime: string | undefined): Promise<BackupSet | { noTime: true; warnings: string[] }> {
  const id = path.basename(dir);
  const warnings: string[] = [];
  let entries: Entry[] = [];
  try {
    entries = await readEntries(dir);
  } catch (error) {
    warnings.push(`${id}/ cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const rel = `${id}/`;
  const sumsFiles = await loadSums(dir, entries, warnings, rel);
  const components: BackupComponent[] = [];
  for (const e of entries) {
    if (!e.isDir && !e.isFile) continue;
    const cls = await classifyPath(e.full, e.isDir);
    if (!cls) continue;
    components.push(await makeComponent(e.full, e.isDir, cls, sumsFiles, warnings, `${rel}${e.name}`));
  }
  let metadata: Record<string, string | string[]> = {};
  const metaEntry = entries.find((e) => e.isFile && e.name.toLowerCase() === 'metadata.txt');
  if (metaEntry) metadata = await readMetadata(metaEntry.full, warnings, `${rel}${metaEntry.name}`);
  else if (layout === 'story-portal') warnings.push(`${rel}metadata.txt is missing`);

  // Time: metadata first, then the name. Never mtime.
  let time = nameTime;
  let timeSource: BackupSet['timeSource'] = 'name';
  const recorded = metadataValue(metadata, 'Backup Date', 'Date', 'Timestamp', 'Created', 'Created At', 'Backup Time');
  if (typeof recorded === 'string') {
    const t = parseRecordedTime(recorded);
    if (t) {
      if (nameTime && Math.abs(Date.parse(t) - Date.parse(nameTime)) > 60_000) {
        warnings.push(`${rel}metadata.txt records ${sanitizeText(recorded, 40)}, but the directory name says ${id}; the metadata time is used`);
      }
      time = t;
      timeSource = 'metadata';
    } else {
      warnings.push(
        `${rel}metadata.txt has a backup date that is not understood (${JSON.stringify(sanitizeText(recorded, 60))})${nameTime ? '; the directory name is used' : ''}`,
      );
    }
  } else if (recorded !== undefined) {
    warnings.push(`${rel}metadata.txt: the backup date is a list, not a value${nameTime ? '; the directory name is used' : ''}`);
  }
  if (!time) return { noTime: true, warnings };

  // Cross-check against what metadata says the set should hold.
  const listed = metadataValue(metadata, 'Components');
  if (Array.isArray(listed)) {
    for (const kind of COMPONENT_KINDS) {
      const mentioned = listed.some((item) => (kind === 'postgres' ? /postgres/i : kind === 'redis' ? /redis/i : /prometheus/i).test(item));
      if (mentioned && !components.some((c) => c.kind === kind)) warnings.push(`metadata.txt lists ${componentLabel[kind]}, but the set holds no ${componentLabel[kind]} backup`);
    }
    const pgItem = listed.find((item) => /postgres/i.test(item));
    // "PostgreSQL (agentic_platform)" or "PostgreSQL (agentic_platform database)"
    const db = pgItem ? /\(\s*([\w.$-]{1,63})/.exec(pgItem)?.[1] : undefined;
    if (db) for (const c of components) if (c.kind === 'postgres') c.database = db;
  }
  const dbValue = metadataValue(metadata, 'Database', 'PostgreSQL Database');
  if (typeof dbValue === 'string' && /^[\w.-]{1,63}$/.test(dbValue)) for (const c of components) if (c.kind === 'postgres' && !c.database) c.database = dbValue;

  if (components.length === 0) warnings.push(`${rel} holds no backup files`);
  for (const kind of COMPONENT_KINDS) {
    const n = components.filter((c) => c.kind === kind).length;
    if (n > 1) warnings.push(`${rel} holds ${n} ${componentLabel[kind]} backups; name the file to restore by path`);
  }
  return {
    id,
    layout,
    root,
    location: dir,
    time,
    timeSource,
    components,
    metadata,
    warnings,
    totalSize: components.reduce((s, c) => s + c.size, 0),
  };
}

interface Timed {
  component: BackupComponent;
  stamp: string;
  time: number;
}

/**
 * Pair components into sets by time: every PostgreSQL dump anchors a set; each other component
 * joins the nearest set within the window that lacks its kind (closest pairs first); leftovers
 * form sets of their own.
 */
export function pairByTime(items: Timed[], windowMs: number): Array<{ stamp: string; time: number; components: BackupComponent[] }> {
  const groups: Array<{ stamp: string; time: number; components: BackupComponent[] }> = [];
  const anchors = items.filter((i) => i.component.kind === 'postgres').sort((a, b) => a.time - b.time);
  for (const a of anchors) groups.push({ stamp: a.stamp, time: a.time, components: [a.component] });
  const others = items.filter((i) => i.component.kind !== 'postgres');
  const candidates: Array<{ g: number; o: number; dt: number }> = [];
  others.forEach((o, oi) => {
    groups.forEach((g, gi) => {
      const dt = Math.abs(g.time - o.time);
      if (dt <= windowMs) candidates.push({ g: gi, o: oi, dt });
    });
  });
  candidates.sort((x, y) => x.dt - y.dt || x.g - y.g || x.o - y.o);
  const used = new Set<number>();
  for (const c of candidates) {
    if (used.has(c.o)) continue;
    const g = groups[c.g]!;
    const o = others[c.o]!;
    if (g.components.some((x) => x.kind === o.component.kind)) continue;
    g.components.push(o.component);
    used.add(c.o);
  }
  const leftovers = others.filter((_, i) => !used.has(i)).sort((a, b) => a.time - b.time);
  const loose: typeof groups = [];
  for (const o of leftovers) {
    const g = loose.find((x) => Math.abs(x.time - o.time) <= windowMs && !x.components.some((c) => c.kind === o.component.kind));
    if (g) g.components.push(o.component);
    else loose.push({ stamp: o.stamp, time: o.time, components: [o.component] });
  }
  return [...groups, ...loose];
}

function timedSets(
  groups: ReturnType<typeof pairByTime>,
  layout: Layout,
  root: string,
  componentWarnings: Map<BackupComponent, string[]>,
): BackupSet[] {
  const ids = new Map<string, number>();
  for (const g of groups) ids.set(g.stamp, (ids.get(g.stamp) ?? 0) + 1);
  return groups.map((g) => {
    const pg = g.components.find((c) => c.kind === 'postgres');
    const id = (ids.get(g.stamp) ?? 0) > 1 && pg?.database ? `${pg.database}_${g.stamp}` : g.stamp;
    const warnings = g.components.flatMap((c) => componentWarnings.get(c) ?? []);
    return {
      id,
      layout,
      root,
      location: root,
      time: new Date(g.time).toISOString(),
      timeSource: 'name' as const,
      components: g.components,
      metadata: {},
      warnings,
      totalSize: g.components.reduce((s, c) => s + c.size, 0),
    };
  });
}

async function listMetachat(root: string, opts: ListOptions, warnings: string[]): Promise<BackupSet[]> {
  const items: Timed[] = [];
  const componentWarnings = new Map<BackupComponent, string[]>();
  const otherDbs = new Set<string>();
  for (const sub of ['postgres', 'redis'] as const) {
    const dir = path.join(root, sub);
    let entries: Entry[];
    try {
      entries = await readEntries(dir);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') warnings.push(`${sub}/ cannot be read (${code ?? 'error'})`);
      continue;
    }
    const sumsWarnings: string[] = [];
    const sumsFiles = await loadSums(dir, entries, sumsWarnings, `${sub}/`);
    warnings.push(...sumsWarnings);
    for (const e of entries) {
      if (!e.isFile && !e.isDir) continue;
      if (e.name.endsWith('.sha256') || /^sha256sums(\.txt)?$/i.test(e.name)) continue;
      const label = `${sub}/${e.name}`;
      if (sub === 'postgres') {
        const m = METACHAT_DUMP.exec(e.name);
        const stampTime = m ? parseCompactStamp(m[2]!) : undefined;
        if (!m || !stampTime || (e.isDir && m[3]) || (e.isFile && !m[3])) {
          if (e.isFile || e.isDir) warnings.push(`${label} does not match <db>_<YYYYMMDD_HHMMSS>.dump (ignored)`);
          continue;
        }
        const db = m[1]!;
        if (opts.database && db !== opts.database) {
          otherDbs.add(db);
          continue;
        }
        const cls = await classifyPath(e.full, e.isDir);
        if (!cls) {
          warnings.push(`${label} is not a pg_dump directory (no toc.dat; ignored)`);
          continue;
        }
        const w: string[] = [];
        const c = await makeComponent(e.full, e.isDir, cls, sumsFiles, w, label);
        c.database = db;
        c.time = stampTime;
        componentWarnings.set(c, w);
        items.push({ component: c, stamp: m[2]!, time: Date.parse(stampTime) });
      } else {
        const m = METACHAT_RDB.exec(e.name);
        const stampTime = m ? parseCompactStamp(m[1]!) : undefined;
        if (!m || !stampTime || !e.isFile) {
          warnings.push(`${label} does not match dump_<YYYYMMDD_HHMMSS>.rdb (ignored)`);
          continue;
        }
        const w: string[] = [];
        const c = await makeComponent(e.full, false, { kind: 'redis', format: 'redis-rdb' }, sumsFiles, w, label);
        c.time = stampTime;
        componentWarnings.set(c, w);
        items.push({ component: c, stamp: m[1]!, time: Date.parse(stampTime) });
      }
    }
  }
  if (otherDbs.size > 0) warnings.push(`dumps of other databases ignored: ${[...otherDbs].sort().join(', ')} (the recipe names ${opts.database})`);
  const dbs = new Set(items.map((i) => i.component.database).filter(Boolean));
  if (!opts.database && dbs.size > 1) {
    warnings.push(`dumps of ${dbs.size} databases found (${[...dbs].sort().join(', ')}); set backups.database in the recipe to pick one`);
  }
  const windowMs = (opts.pairWindowMinutes ?? DEFAULT_WINDOW_MINUTES) * 60_000;
  return timedSets(pairByTime(items, windowMs), 'metachat', root, componentWarnings);
}

async function listStoryPortal(root: string, entries: Entry[], warnings: string[]): Promise<BackupSet[]> {
  const sets: BackupSet[] = [];
  for (const e of entries) {
    if (!e.isDir) continue;
    const nameTime = parseDashedStamp(e.name);
    if (!STORY_PORTAL_DIR.test(e.name) || !nameTime) {
      if (STORY_PORTAL_DIR.test(e.name)) warnings.push(`${e.name}/ is not a valid date (ignored)`);
      continue;
    }
    const set = await buildDirSet(e.full, root, 'story-portal', nameTime);
    if ('noTime' in set) continue;
    sets.push(set);
  }
  return sets;
}

async function listFlat(root: string, entries: Entry[], opts: ListOptions, warnings: string[]): Promise<BackupSet[]> {
  const sets: BackupSet[] = [];
  const sumsFiles = await loadSums(root, entries, warnings, '');
  const items: Timed[] = [];
  const untimed: Array<{ c: BackupComponent; w: string[] }> = [];
  const componentWarnings = new Map<BackupComponent, string[]>();
  for (const e of entries) {
    if (!e.isDir && !e.isFile) continue;
    const cls = await classifyPath(e.full, e.isDir, true);
    if (cls) {
      const w: string[] = [];
      const c = await makeComponent(e.full, e.isDir, cls, sumsFiles, w, e.name);
      const stamp = stampInName(e.name);
      if (stamp) {
        c.time = stamp.iso;
        componentWarnings.set(c, w);
        items.push({ component: c, stamp: stamp.stamp, time: Date.parse(stamp.iso) });
      } else {
        untimed.push({ c, w });
      }
      continue;
    }
    if (e.isDir) {
      // A set directory of its own (components inside, time from metadata.txt or its name).
      const inner = await readEntries(e.full).catch(() => [] as Entry[]);
      let hasComponent = false;
      for (const i of inner) if ((i.isFile || i.isDir) && (await classifyPath(i.full, i.isDir))) hasComponent = true;
      if (!hasComponent) continue;
      const stamp = stampInName(e.name);
      const set = await buildDirSet(e.full, root, 'flat', stamp?.iso);
      if ('noTime' in set) {
        warnings.push(`${e.name}/ records no backup time (no metadata.txt "Backup Date", no YYYYMMDD_HHMMSS in its name): not listed`);
        continue;
      }
      sets.push(set);
    }
  }
  if (untimed.length > 0) {
    // The root itself is one set when a metadata.txt records its time.
    const meta = entries.find((e) => e.isFile && e.name.toLowerCase() === 'metadata.txt');
    const metaWarnings: string[] = [];
    const metadata = meta ? await readMetadata(meta.full, metaWarnings, 'metadata.txt') : {};
    const recorded = metadataValue(metadata, 'Backup Date', 'Date', 'Timestamp', 'Created');
    const t = typeof recorded === 'string' ? parseRecordedTime(recorded) : undefined;
    if (t) {
      const components = untimed.map((u) => u.c);
      sets.push({
        id: path.basename(root),
        layout: 'flat',
        root,
        location: root,
        time: t,
        timeSource: 'metadata',
        components,
        metadata,
        warnings: [...metaWarnings, ...untimed.flatMap((u) => u.w)],
        totalSize: components.reduce((s, c) => s + c.size, 0),
      });
    } else {
      for (const u of untimed) {
        warnings.push(`${path.basename(u.c.path)} records no backup time (no YYYYMMDD_HHMMSS in its name, no metadata.txt): not listed; rename it, e.g. app_20260118_014513.dump`);
      }
    }
  }
  const windowMs = (opts.pairWindowMinutes ?? DEFAULT_WINDOW_MINUTES) * 60_000;
  sets.push(...timedSets(pairByTime(items, windowMs), 'flat', root, componentWarnings));
  return sets;
}

/** Which layout a root holds, or undefined. */
export async function detectLayout(root: string, entries: Entry[]): Promise<Layout | undefined> {
  if (entries.some((e) => e.isDir && STORY_PORTAL_DIR.test(e.name))) return 'story-portal';
  for (const sub of ['postgres', 'redis'] as const) {
    const e = entries.find((x) => x.isDir && x.name === sub);
    if (!e) continue;
    const inner = await readEntries(e.full).catch(() => [] as Entry[]);
    if (inner.some((i) => (sub === 'postgres' ? METACHAT_DUMP.test(i.name) : METACHAT_RDB.test(i.name)))) return 'metachat';
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

function byRecordedTime(a: BackupSet, b: BackupSet): number {
  return Date.parse(b.time) - Date.parse(a.time) || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
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
  let sets: BackupSet[];
  if (layout === 'story-portal') sets = await listStoryPortal(root, entries, warnings);
  else if (layout === 'metachat') sets = await listMetachat(root, opts, warnings);
  else sets = await listFlat(root, entries, opts, warnings);
  sets.sort(byRecordedTime);
  return { sets, layout, warnings };
}

function levenshtein(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j]!;
      prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length]!;
}

/** The ids nearest to `ref`: by time when ref reads as a time, else by spelling. */
export function nearestIds(sets: BackupSet[], ref: string, n = 3): string[] {
  const t = parseRecordedTime(ref) ?? stampInName(ref)?.iso;
  if (t) {
    const at = Date.parse(t);
    return [...sets].sort((a, b) => Math.abs(Date.parse(a.time) - at) - Math.abs(Date.parse(b.time) - at)).slice(0, n).map((s) => s.id);
  }
  return [...sets].sort((a, b) => levenshtein(a.id, ref) - levenshtein(b.id, ref)).slice(0, n).map((s) => s.id);
}

/**
 * Pick a set: its id, `latest` (the newest recorded time), or a path to its directory or to
 * one of its files. Throws a UsageError naming the nearest ids when nothing matches.
 */
export function findBackupSet(sets: BackupSet[], ref: string): BackupSet {
  const wanted = ref.trim();
  if (wanted === 'latest') {
    const newest = [...sets].sort(byRecordedTime)[0];
    if (!newest) throw new UsageError('There are no backup sets to choose "latest" from.', { next: 'Run `restore-assistant list` to see what the backup root holds.' });
    return newest;
  }
  const byId = sets.find((s) => s.id === wanted);
  if (byId) return byId;
  if (wanted.includes('/') || wanted.startsWith('.')) {
    const abs = path.resolve(expandHome(wanted));
    const byPath = sets.find((s) => (s.location === abs && s.layout !== 'metachat') || s.components.some((c) => c.path === abs));
    if (byPath) return byPath;
  }
  const prefixed = sets.filter((s) => s.id.startsWith(wanted));
  if (wanted.length >= 4 && prefixed.length === 1 && prefixed[0]) return prefixed[0];
  const near = nearestIds(sets, wanted);
  throw new UsageError(`No backup set "${sanitizeText(wanted, 120)}".`, {
    problems:
      prefixed.length > 1
        ? [`"${sanitizeText(wanted, 60)}" matches ${prefixed.length} sets: ${prefixed.slice(0, 5).map((s) => s.id).join(', ')}`]
        : near.length > 0
          ? [`nearest: ${near.join(', ')}`]
          : ['the backup root holds no sets'],
    next: 'Run `restore-assistant list` to see the set ids, or pass "latest" or a path.',
  });
}

/**
 * A set from a path outside any listing: a set directory, a pg_dump directory, or one dump
 * file. Its time comes from metadata.txt or a YYYYMMDD_HHMMSS / YYYY-MM-DD_HH-MM-SS in its (or
 * its directory's) name; a backup that records no time is refused, because evidence needs it.
 */
export async function loadBackupSetFromPath(ref: string): Promise<BackupSet> {
  const abs = path.resolve(expandHome(ref));
  let s;
  try {
    s = await stat(abs);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new UsageError(`${abs} cannot be read (${code === 'ENOENT' ? 'does not exist' : code}).`, { next: 'Check the path, or run `restore-assistant list` to see the set ids.' });
  }
  if (!s.isFile() && !s.isDirectory()) {
    throw new UsageError(`${abs} is neither a file nor a directory (a device, FIFO or socket); it is not read.`, { next: 'Pass the path of a backup file or set directory.' });
  }
  const name = path.basename(abs);
  const parentName = path.basename(path.dirname(abs));
  const noTime = (): UsageError =>
    new UsageError(`${abs} records no backup time.`, {
      problems: ['no metadata.txt "Backup Date", and no YYYYMMDD_HHMMSS or YYYY-MM-DD_HH-MM-SS in its name or its directory\'s name'],
      next: 'Rename it to carry its time (e.g. app_20260118_014513.dump), or put it in a set directory with a metadata.txt. The time is needed for RPO evidence.',
    });
  if (s.isDirectory() && !(await exists(path.join(abs, 'toc.dat')))) {
    const nameTime = parseDashedStamp(name) ?? stampInName(name)?.iso;
    const set = await buildDirSet(abs, path.dirname(abs), STORY_PORTAL_DIR.test(name) ? 'story-portal' : 'flat', nameTime);
    if ('noTime' in set) throw noTime();
    return set;
  }
  const cls = await classifyPath(abs, s.isDirectory());
  if (!cls) {
    throw new UsageError(`${abs} is not a backup file restore-assistant knows.`, {
      problems: ['known: *.sql, *.sql.gz, *.dump (pg_dump -Fc), pg_dump -Fd directories (toc.dat), *.rdb, *.tar.gz of a Prometheus data dir'],
    });
  }
  const warnings: string[] = [];
  const dir = path.dirname(abs);
  const dirEntries = await readEntries(dir).catch(() => [] as Entry[]);
  const sumsFiles = await loadSums(dir, dirEntries, warnings, '');
  const component = await makeComponent(abs, s.isDirectory(), cls, sumsFiles, warnings, name);
  let time = stampInName(name)?.iso;
  let timeSource: BackupSet['timeSource'] = 'name';
  let metadata: Record<string, string | string[]> = {};
  const parentTime = parseDashedStamp(parentName) ?? stampInName(parentName)?.iso;
  const meta = dirEntries.find((e) => e.isFile && e.name.toLowerCase() === 'metadata.txt');
  if (!time && meta) {
    metadata = await readMetadata(meta.full, warnings, 'metadata.txt');
    const recorded = metadataValue(metadata, 'Backup Date', 'Date', 'Timestamp', 'Created');
    const t = typeof recorded === 'string' ? parseRecordedTime(recorded) : undefined;
    if (t) {
      time = t;
      timeSource = 'metadata';
    }
  }
  time ??= parentTime;
  if (!time) throw noTime();
  if (component.time === undefined && stampInName(name)) component.time = time;
  const m = METACHAT_DUMP.exec(name);
  if (cls.kind === 'postgres' && m) component.database = m[1];
  const id = stampInName(name)?.stamp ?? (STORY_PORTAL_DIR.test(parentName) ? parentName : name);
  return {
    id,
    layout: STORY_PORTAL_DIR.test(parentName) ? 'story-portal' : METACHAT_DUMP.test(name) || METACHAT_RDB.test(name) ? 'metachat' : 'flat',
    root: dir,
    location: dir,
    time,
    timeSource,
    components: [component],
    metadata,
    warnings,
    totalSize: component.size,
  };
}
