import path from 'node:path';
import { METACHAT_DUMP, METACHAT_RDB, parseCompactStamp } from '../names.js';
import type { BackupComponent, BackupSet } from '../types.js';
import { DEFAULT_WINDOW_MINUTES, loadSums, makeComponent, pairByTime, timedSets, type ListOptions, type Timed } from '../sets.js';
import { classifyPath, encryptedName, readEntries, type Entry } from '../files.js';
import { LIST_CONCURRENCY, mapLimit } from '../pool.js';

/** The metachat layout: <db>_<YYYYMMDD_HHMMSS>.dump and redis dumps in one directory, paired by time. */

export async function listMetachat(root: string, opts: ListOptions, warnings: string[]): Promise<BackupSet[]> {
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
    // Each file is independent: read a few dozen at once, then keep the results (and warnings) in name order.
    const found = await mapLimit(entries, LIST_CONCURRENCY, async (e): Promise<{ warn?: string; item?: Timed; w?: string[] }> => {
      if (!e.isFile && !e.isDir) return {};
      if (e.name.endsWith('.sha256') || /^sha256sums(\.txt)?$/i.test(e.name)) return {};
      const label = `${sub}/${e.name}`;
      if (sub === 'postgres') {
        const m = METACHAT_DUMP.exec(e.isFile ? encryptedName(e.name).plain : e.name);
        const stampTime = m ? parseCompactStamp(m[2]!) : undefined;
        if (!m || !stampTime || (e.isDir && m[3]) || (e.isFile && !m[3])) {
          return { warn: `${label} does not match <db>_<YYYYMMDD_HHMMSS>.dump (ignored)` };
        }
        const db = m[1]!;
        if (opts.database && db !== opts.database) {
          otherDbs.add(db);
          return {};
        }
        const cls = await classifyPath(e.full, e.isDir);
        if (!cls) return { warn: `${label} is not a pg_dump directory (no toc.dat; ignored)` };
        const w: string[] = [];
        const c = await makeComponent(e.full, e.isDir, cls, sumsFiles, w, label);
        c.database = db;
        c.time = stampTime;
        return { item: { component: c, stamp: m[2]!, time: Date.parse(stampTime) }, w };
      }
      const m = METACHAT_RDB.exec(encryptedName(e.name).plain);
      const stampTime = m ? parseCompactStamp(m[1]!) : undefined;
      if (!m || !stampTime || !e.isFile) return { warn: `${label} does not match dump_<YYYYMMDD_HHMMSS>.rdb (ignored)` };
      const w: string[] = [];
      const c = await makeComponent(e.full, false, { kind: 'redis', format: 'redis-rdb' }, sumsFiles, w, label);
      c.time = stampTime;
      return { item: { component: c, stamp: m[1]!, time: Date.parse(stampTime) }, w };
    });
    for (const f of found) {
      if (f.warn) warnings.push(f.warn);
      if (f.item) {
        componentWarnings.set(f.item.component, f.w ?? []);
        items.push(f.item);
      }
    }
  }
  if (otherDbs.size > 0)
    warnings.push(`dumps of other databases ignored: ${[...otherDbs].sort().join(', ')} (the recipe names ${opts.database})`);
  const dbs = new Set(items.map((i) => i.component.database).filter(Boolean));
  if (!opts.database && dbs.size > 1) {
    warnings.push(`dumps of ${dbs.size} databases found (${[...dbs].sort().join(', ')}); set backups.database in the recipe to pick one`);
  }
  const windowMs = (opts.pairWindowMinutes ?? DEFAULT_WINDOW_MINUTES) * 60_000;
  return timedSets(pairByTime(items, windowMs), 'metachat', root, componentWarnings);
}
