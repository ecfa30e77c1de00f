import type { DumpEntry, EntryPhase } from '../../catalog/plain-sections.js';

/**
 * Which spilled entry of a plain dump runs next on a free connection (engine/plain-split/restore.ts).
 * The order is pg_restore's, as far as a plain script can say it:
 * - nothing before pre-data has run (on its own connection) and succeeded;
 * - table data, sequence values and large objects: any order, as soon as their bytes are staged
 *   (the biggest staged one first, and so for indexes and foreign keys: by their table's estimated
 *   size in the server, its COPY text plus a tuple header per row, as pg_restore orders them by the
 *   table's pages: the text alone ranks a table of many narrow rows, whose indexes take longest to
 *   build, below one of fewer wide rows);
 *   a table's data may also be handed out as soon as its staging begins (`open`), so a free
 *   connection starts the COPY while the rest of the table is still being read;
 * - an index or a primary key / unique / exclusion / check constraint: once the table it builds on
 *   is loaded (when the table cannot be read from the statement: once all data is loaded), and only
 *   after the whole file was read and its digest matched the verified one; a constraint (ALTER TABLE
 *   ADD CONSTRAINT takes an ACCESS EXCLUSIVE lock) never runs beside another entry on its table, nor
 *   an index beside a constraint on its table (the connection would only wait for the lock; pg_restore
 *   likewise keeps such entries apart);
 * - partition index attachments: one at a time, in dump order, after every index;
 * - foreign keys: once both tables are loaded and every index on them built (the key they need
 *   exists) and after every attachment, never two that lock the same table at once (a foreign key
 *   whose tables cannot be read runs alone, after every index);
 * - everything else (triggers, rules, comments, grants, materialized view data, ...): one at a
 *   time, in dump order, last.
 * Pure: no I/O, no timers.
 */

export interface Item {
  entry: DumpEntry;
  /** Byte range in the staging file. */
  start: number;
  end: number;
  /**
   * Table data still being staged (restore.ts hands it out at its start, as pg_restore starts a
   * table's COPY at once): `end` is not known yet and the reader follows the staging file until
   * `staged()` closes it.
   */
  open?: boolean;
  /** Table data: the estimated number of rows (restore.ts counts the lines of a sample of the COPY data). */
  rows?: number;
}

/**
 * Bytes a row costs in the server beyond its COPY text (a heap tuple's 23-byte header, aligned, and
 * its 4-byte line pointer): what turns the text's size into an estimate of the table's pages.
 */
export const ROW_OVERHEAD = 28;

/** Entry types that take an ACCESS EXCLUSIVE lock on their table (ALTER TABLE ... ADD CONSTRAINT). */
const EXCLUSIVE = new Set(['CONSTRAINT', 'CHECK CONSTRAINT']);

/** A data item's estimated size in the server: its bytes plus a tuple's overhead per row. */
function size(item: Item): number {
  return item.end - item.start + ROW_OVERHEAD * (item.rows ?? 0);
}

const ORDER: EntryPhase[] = ['data', 'index', 'attach', 'fk', 'tail'];

export class Scheduler {
  private readonly waiting: Item[] = [];
  private readonly running = new Set<Item>();
  private readonly left: Record<EntryPhase, number> = { pre: 0, data: 0, index: 0, attach: 0, fk: 0, tail: 0 };
  /** Tables whose data entry is not done yet. */
  private readonly loading = new Set<string>();
  /** Each table's estimated size (its data's bytes plus ROW_OVERHEAD per row): the biggest work goes first (as pg_restore orders by pages). */
  private readonly tableBytes = new Map<string, number>();
  /** Index entries not done yet, per table (undefined key: the table could not be read). */
  private readonly indexesLeft = new Map<string | undefined, number>();
  private pre: boolean | undefined;
  private known = false;
  private wakers: Array<() => void> = [];

  constructor(readonly jobs: number) {}

  /** An entry whose bytes are all staged, or (`open`: table data only) one whose staging has begun. */
  add(item: Item): void {
    if (item.open && item.entry.phase !== 'data') throw new Error(`only table data runs while it is staged, not ${item.entry.type}`);
    this.waiting.push(item);
    this.left[item.entry.phase]++;
    if (item.entry.phase === 'data' && item.entry.table) {
      this.loading.add(item.entry.table);
      this.tableBytes.set(item.entry.table, item.open ? 0 : size(item));
    }
    if (item.entry.phase === 'index') this.indexesLeft.set(item.entry.table, (this.indexesLeft.get(item.entry.table) ?? 0) + 1);
    this.wake();
  }

  /** An open item's last byte is staged: its size now weighs its table's indexes and foreign keys. */
  staged(item: Item, end: number, rows?: number): void {
    item.end = end;
    item.open = false;
    if (rows !== undefined) item.rows = rows;
    if (item.entry.phase === 'data' && item.entry.table) this.tableBytes.set(item.entry.table, size(item));
    this.wake();
  }

  /** How much work an entry stands for: its own bytes for data, its table's data for an index or foreign key. */
  private weight(item: Item): number {
    const e = item.entry;
    // An open data item started first: it is the one being read, so it goes out at once.
    if (e.phase === 'data') return item.open ? Number.MAX_SAFE_INTEGER : size(item);
    if (e.phase === 'index') return e.table ? (this.tableBytes.get(e.table) ?? 0) : 0;
    if (e.phase === 'fk') return Math.max(0, ...(e.locks ?? []).map((t) => this.tableBytes.get(t) ?? 0));
    return 0;
  }

  /** Pre-data ran (ok) or failed (nothing else will run). */
  preFinished(ok: boolean): void {
    this.pre = ok;
    this.wake();
  }

  /** The whole file is read and its digest matched: no entry will be added. */
  allKnown(): void {
    this.known = true;
    this.wake();
  }

  finished(item: Item): void {
    this.running.delete(item);
    this.left[item.entry.phase]--;
    if (item.entry.phase === 'data' && item.entry.table) this.loading.delete(item.entry.table);
    if (item.entry.phase === 'index') this.indexesLeft.set(item.entry.table, (this.indexesLeft.get(item.entry.table) ?? 1) - 1);
    this.wake();
  }

  /** Every entry ran. */
  complete(): boolean {
    return this.known && this.waiting.length === 0 && this.running.size === 0;
  }

  /** The next entry to run, when there is one; undefined when none is left (or the signal aborted). */
  async next(signal: AbortSignal): Promise<Item | undefined> {
    for (;;) {
      if (signal.aborted || this.pre === false) return undefined;
      if (this.complete()) return undefined;
      const item = this.pick();
      if (item) {
        this.waiting.splice(this.waiting.indexOf(item), 1);
        this.running.add(item);
        return item;
      }
      await new Promise<void>((resolve) => {
        const done = (): void => {
          signal.removeEventListener('abort', done);
          resolve();
        };
        this.wakers.push(done);
        signal.addEventListener('abort', done, { once: true });
      });
    }
  }

  private wake(): void {
    const w = this.wakers;
    this.wakers = [];
    for (const f of w) f();
  }

  private runningIn(phase: EntryPhase): Item[] {
    return [...this.running].filter((i) => i.entry.phase === phase);
  }

  private ready(item: Item): boolean {
    const e = item.entry;
    if (this.pre !== true) return false;
    switch (e.phase) {
      case 'pre':
        return false;
      case 'data':
        return true;
      case 'index': {
        if (!this.known) return false;
        if (!e.table) return this.left.data === 0;
        if (this.loading.has(e.table)) return false;
        // ACCESS EXCLUSIVE (a constraint) waits for every other entry on the table, and the others for it.
        const here = this.runningIn('index').filter((o) => o.entry.table === e.table);
        return EXCLUSIVE.has(e.type) ? here.length === 0 : !here.some((o) => EXCLUSIVE.has(o.entry.type));
      }
      case 'attach':
        return this.known && this.left.data === 0 && this.left.index === 0 && this.runningIn('attach').length === 0;
      case 'fk': {
        // Once both its tables are loaded and indexed (the referenced key exists; no index build
        // waits on its lock), like pg_restore; without readable tables, after every index.
        if (!this.known || this.left.attach > 0) return false;
        if (e.locks) {
          if ((this.indexesLeft.get(undefined) ?? 0) > 0) return false;
          if (e.locks.some((t) => this.loading.has(t) || (this.indexesLeft.get(t) ?? 0) > 0)) return false;
        } else if (this.left.data + this.left.index > 0) return false;
        const others = this.runningIn('fk');
        if (!e.locks) return others.length === 0;
        return others.every((o) => o.entry.locks !== undefined && !o.entry.locks.some((t) => e.locks!.includes(t)));
      }
      case 'tail':
        return (
          this.known && this.left.data + this.left.index + this.left.attach + this.left.fk === 0 && this.runningIn('tail').length === 0
        );
    }
  }

  private pick(): Item | undefined {
    // Serial phases take the first waiting entry of their phase, never a later one.
    const first: Partial<Record<EntryPhase, number>> = {};
    for (const w of this.waiting) {
      const p = w.entry.phase;
      if ((p === 'attach' || p === 'tail') && (first[p] === undefined || w.entry.seq < first[p])) first[p] = w.entry.seq;
    }
    // The earliest phase first; within it the biggest work (the long pole starts first), then dump order.
    let best: Item | undefined;
    let bestWeight = 0;
    for (const item of this.waiting) {
      const p = item.entry.phase;
      if ((p === 'attach' || p === 'tail') && item.entry.seq !== first[p]) continue;
      const w = this.weight(item);
      if (best) {
        const rank = ORDER.indexOf(p) - ORDER.indexOf(best.entry.phase);
        if (rank > 0 || (rank === 0 && (w < bestWeight || (w === bestWeight && item.entry.seq > best.entry.seq)))) continue;
      }
      if (this.ready(item)) {
        best = item;
        bestWeight = w;
      }
    }
    return best;
  }
}
