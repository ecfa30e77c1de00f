import { componentLabel, COMPONENT_KINDS } from './types.js';
import path from 'node:path';
import { lookupSum, parseSha256Sums, readSmallText } from './checksums.js';
import { METADATA_MAX_BYTES, metadataValue, parseMetadata } from './metadata.js';
import { sanitizeText } from '../text/sanitize.js';
import { parseRecordedTime } from './names.js';
import type { BackupComponent, BackupSet, ComponentEncryption, ComponentFormat, ComponentKind, Layout } from './types.js';
import { classifyPath, exists, readEntries, sizeOf, type Entry } from './files.js';

/**
 * Building backup sets from components: checksums and metadata beside them, one set per directory,
 * and pairing loose files by the time they record. Shared by the layouts (layouts/).
 */

export interface ListOptions {
  root: string;
  layout?: 'auto' | Layout;
  /** metachat: only dumps of this database (the <db> in <db>_<YYYYMMDD_HHMMSS>.dump). */
  database?: string;
  /** metachat / flat: components this close in time form one set (default 30). */
  pairWindowMinutes?: number;
  /**
   * `list` only: answer set directories from the cache in the state directory when nothing they
   * summarise changed (list-cache.ts). Never for verify, plan or restore.
   */
  cache?: boolean;
}

/** Catalogs one set directory: buildDirSet, or the list cache in front of it. */
export type DirSetBuilder = (dir: string, root: string, layout: Layout, nameTime: string | undefined) => ReturnType<typeof buildDirSet>;

export const DEFAULT_WINDOW_MINUTES = 30;

interface ChecksumSources {
  /** Parsed SHA256SUMS files: the directory each lives in → sums. */
  sumsFiles: Array<{ dir: string; sums: Map<string, string> }>;
}

export async function loadSums(dir: string, entries: Entry[], warnings: string[], rel: string): Promise<ChecksumSources['sumsFiles']> {
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
export async function makeComponent(
  full: string,
  isDir: boolean,
  cls: { kind: ComponentKind; format: ComponentFormat; encryption?: ComponentEncryption },
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
  if (cls.encryption) component.encryption = cls.encryption;
  if (size === 0) warnings.push(`${label} is empty (0 bytes)`);
  if (!isDir) {
    const sidecar = `${full}.sha256`;
    if (await exists(sidecar)) {
      try {
        const { text } = await readSmallText(sidecar, 64 * 1024);
        const parsed = parseSha256Sums(text, `${label}.sha256`);
        const named = [...parsed.sums.entries()];
        const hit = parsed.sums.get(path.basename(full)) ?? parsed.sums.get('') ?? (named.length === 1 ? named[0]?.[1] : undefined);
        if (
          named.length === 1 &&
          named[0]?.[0] !== '' &&
          named[0]?.[0] !== path.basename(full) &&
          path.basename(named[0]?.[0] ?? '') !== path.basename(full)
        ) {
          warnings.push(
            `${label}.sha256 names "${sanitizeText(named[0]?.[0] ?? '', 120)}", not ${path.basename(full)}; its digest is used anyway`,
          );
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

export async function readMetadata(file: string, warnings: string[], label: string): Promise<Record<string, string | string[]>> {
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
export async function buildDirSet(
  dir: string,
  root: string,
  layout: Layout,
  nameTime: string | undefined,
): Promise<BackupSet | { noTime: true; warnings: string[] }> {
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
        warnings.push(
          `${rel}metadata.txt records ${sanitizeText(recorded, 40)}, but the directory name says ${id}; the metadata time is used`,
        );
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
      if (mentioned && !components.some((c) => c.kind === kind))
        warnings.push(`metadata.txt lists ${componentLabel[kind]}, but the set holds no ${componentLabel[kind]} backup`);
    }
    const pgItem = listed.find((item) => /postgres/i.test(item));
    // "PostgreSQL (agentic_platform)" or "PostgreSQL (agentic_platform database)"
    const db = pgItem ? /\(\s*([\w.$-]{1,63})/.exec(pgItem)?.[1] : undefined;
    if (db) for (const c of components) if (c.kind === 'postgres') c.database = db;
  }
  const dbValue = metadataValue(metadata, 'Database', 'PostgreSQL Database');
  if (typeof dbValue === 'string' && /^[\w.-]{1,63}$/.test(dbValue))
    for (const c of components) if (c.kind === 'postgres' && !c.database) c.database = dbValue;

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

export interface Timed {
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

export function timedSets(
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

export function byRecordedTime(a: BackupSet, b: BackupSet): number {
  return Date.parse(b.time) - Date.parse(a.time) || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
}
