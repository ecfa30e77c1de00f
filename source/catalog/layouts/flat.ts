import path from 'node:path';
import { metadataValue } from '../metadata.js';
import { parseRecordedTime, stampInName } from '../names.js';
import type { BackupComponent, BackupSet } from '../types.js';
import {
  DEFAULT_WINDOW_MINUTES,
  buildDirSet,
  loadSums,
  makeComponent,
  pairByTime,
  readMetadata,
  timedSets,
  type DirSetBuilder,
  type ListOptions,
  type Timed,
} from '../sets.js';
import { classifyPath, readEntries, type Entry } from '../files.js';
import { LIST_CONCURRENCY, mapLimit } from '../pool.js';

/** The flat layout: any recognised component files in one directory (or one per set), paired by time. */

export async function listFlat(
  root: string,
  entries: Entry[],
  opts: ListOptions,
  warnings: string[],
  dirSet: DirSetBuilder = buildDirSet,
): Promise<BackupSet[]> {
  const sets: BackupSet[] = [];
  const sumsFiles = await loadSums(root, entries, warnings, '');
  const items: Timed[] = [];
  const untimed: Array<{ c: BackupComponent; w: string[] }> = [];
  const componentWarnings = new Map<BackupComponent, string[]>();
  // Each entry is independent: read a few dozen at once, then assemble in the order of the names.
  const found = await mapLimit(entries, LIST_CONCURRENCY, async (e) => {
    if (!e.isDir && !e.isFile) return undefined;
    const cls = await classifyPath(e.full, e.isDir, true);
    if (cls) {
      const w: string[] = [];
      const c = await makeComponent(e.full, e.isDir, cls, sumsFiles, w, e.name);
      return { kind: 'component' as const, e, c, w };
    }
    if (!e.isDir) return undefined;
    // A set directory of its own (components inside, time from metadata.txt or its name).
    const inner = await readEntries(e.full).catch(() => [] as Entry[]);
    let hasComponent = false;
    for (const i of inner) if (!hasComponent && (i.isFile || i.isDir) && (await classifyPath(i.full, i.isDir))) hasComponent = true;
    if (!hasComponent) return undefined;
    return { kind: 'set' as const, e, set: await dirSet(e.full, root, 'flat', stampInName(e.name)?.iso) };
  });
  for (const f of found) {
    if (!f) continue;
    if (f.kind === 'component') {
      const stamp = stampInName(f.e.name);
      if (stamp) {
        f.c.time = stamp.iso;
        componentWarnings.set(f.c, f.w);
        items.push({ component: f.c, stamp: stamp.stamp, time: Date.parse(stamp.iso) });
      } else {
        untimed.push({ c: f.c, w: f.w });
      }
    } else if ('noTime' in f.set) {
      warnings.push(`${f.e.name}/ records no backup time (no metadata.txt "Backup Date", no YYYYMMDD_HHMMSS in its name): not listed`);
    } else {
      sets.push(f.set);
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
        warnings.push(
          `${path.basename(u.c.path)} records no backup time (no YYYYMMDD_HHMMSS in its name, no metadata.txt): not listed; rename it, e.g. app_20260118_014513.dump`,
        );
      }
    }
  }
  const windowMs = (opts.pairWindowMinutes ?? DEFAULT_WINDOW_MINUTES) * 60_000;
  sets.push(...timedSets(pairByTime(items, windowMs), 'flat', root, componentWarnings));
  return sets;
}
