import { Transform, type TransformCallback } from 'node:stream';

/**
 * Stream pieces the engine puts between a dump file and the restoring process.
 * Everything works on Buffers, a line at a time at most: memory stays flat whatever the dump size.
 */

const NL = 0x0a;

/** A statement pg_dump writes on one line that assigns ownership or privileges. */
const OWNERSHIP_OR_ACL =
  /^(?:ALTER\s+(?:(?:LARGE\s+OBJECT|FOREIGN\s+DATA\s+WRAPPER|FOREIGN\s+TABLE|MATERIALIZED\s+VIEW|TEXT\s+SEARCH\s+(?:DICTIONARY|CONFIGURATION)|EVENT\s+TRIGGER|[A-Z]+)\s+).*\s+OWNER\s+TO\s+.*;|GRANT\s.*;|REVOKE\s.*;|ALTER\s+DEFAULT\s+PRIVILEGES\s.*;)\s*$/;

const COPY_START = /^COPY\s.*\sFROM\s+stdin;\s*$/;
const DOLLAR_TAG = /\$([A-Za-z_][A-Za-z0-9_]*)?\$/g;

/**
 * Drops `ALTER ... OWNER TO`, `GRANT` and `REVOKE` statements from a plain pg_dump stream (the
 * plain-dump equivalent of `pg_restore --no-owner --no-acl`). Line level, as pg_dump writes them:
 * a statement counts only when it is a whole line. Lines inside `COPY ... FROM stdin;` data and
 * inside dollar-quoted bodies (functions) are data and always pass untouched.
 */
export class StripOwnershipAndAcl extends Transform {
  /** Statements dropped so far. */
  dropped = 0;
  private partial: Buffer | undefined;
  private inCopy = false;
  private dollarTag: string | undefined;
  /** Position of the next '$' in the current buffer (-1: none), so each line check stays O(line). */
  private nextDollar = -1;

  constructor() {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    let data = chunk;
    if (this.partial) {
      data = Buffer.concat([this.partial, chunk]);
      this.partial = undefined;
    }
    const out: Buffer[] = [];
    this.nextDollar = data.indexOf(0x24);
    let start = 0;
    let keepFrom = 0;
    for (;;) {
      const nl = data.indexOf(NL, start);
      if (nl === -1) break;
      if (this.dropLine(data, start, nl)) {
        if (start > keepFrom) out.push(data.subarray(keepFrom, start));
        keepFrom = nl + 1;
        this.dropped++;
      }
      start = nl + 1;
    }
    if (start > keepFrom) out.push(data.subarray(keepFrom, start));
    if (start < data.length) this.partial = Buffer.from(data.subarray(start));
    for (const b of out) this.push(b);
    done();
  }

  override _flush(done: TransformCallback): void {
    if (this.partial) {
      const last = this.partial;
      this.partial = undefined;
      this.nextDollar = last.indexOf(0x24);
      if (this.dropLine(last, 0, last.length)) this.dropped++;
      else this.push(last);
    }
    done();
  }

  /** Looks at one line (without its newline); updates COPY/dollar-quote state; true when it is to be dropped. */
  private dropLine(data: Buffer, start: number, end: number): boolean {
    const first = data[start];
    if (this.inCopy) {
      // Data rows end at a line that is exactly "\.".
      if (first === 0x5c && end - start <= 3 && data.toString('latin1', start, end).replace(/\r$/, '') === '\\.') this.inCopy = false;
      return false;
    }
    if (this.dollarTag === undefined && first === 0x43 && COPY_START.test(data.toString('utf8', start, end))) {
      this.inCopy = true;
      return false;
    }
    if (this.nextDollar !== -1 && this.nextDollar < start) this.nextDollar = data.indexOf(0x24, start);
    const hasDollar = this.nextDollar !== -1 && this.nextDollar < end;
    if (hasDollar) {
      // A line with a dollar quote opens or closes a body (a function): never one of ours.
      this.scanDollars(data.toString('utf8', start, end));
      return false;
    }
    if (this.dollarTag !== undefined) return false;
    // Cheap first-byte filter: only lines starting with A, G or R can be dropped.
    if (first !== 0x41 && first !== 0x47 && first !== 0x52) return false;
    return OWNERSHIP_OR_ACL.test(data.toString('utf8', start, end));
  }

  private scanDollars(line: string): void {
    for (const m of line.matchAll(DOLLAR_TAG)) {
      const tag = m[1] ?? '';
      if (this.dollarTag === undefined) this.dollarTag = tag;
      else if (this.dollarTag === tag) this.dollarTag = undefined;
    }
  }
}

/** Entries pg_restore processes that `pg_restore --list` does not list (they are not TOC lines). */
const UNLISTED_ENTRY_TYPES = new Set(['ENCODING', 'STDSTRINGS', 'SEARCHPATH', 'DATABASE']);

/**
 * Counts the TOC entries `pg_restore --verbose` has got to, each once (issue 12: one entry logs
 * "processing item N", then "creating ...", and data "launching item N", "processing data ...",
 * "finished item N": counting every line reported "125 of 125" three times).
 * With --jobs > 1 every entry is named by its dump id ("processing item N TYPE", "launching item N
 * TYPE", "processing missed item N TYPE"): distinct ids are counted, without the header entries
 * --list does not show, so the count meets the --list total at the end. With --jobs 1 no ids are
 * logged: each "creating", "restoring", "executing" and "processing data for table" line is one
 * entry.
 */
export class PgRestoreItemCounter {
  private readonly ids = new Set<string>();
  private serial = 0;
  private parallel = false;

  get count(): number {
    return this.parallel ? this.ids.size : this.serial;
  }

  /** Feed one stderr line; true when the count went up. */
  line(line: string): boolean {
    const item = /^pg_restore: (?:processing|launching|processing missed) item (\d+) (\S+)/.exec(line);
    if (item) {
      this.parallel = true;
      if (UNLISTED_ENTRY_TYPES.has(item[2]!) || this.ids.has(item[1]!)) return false;
      this.ids.add(item[1]!);
      return true;
    }
    if (this.parallel) return false;
    if (/^pg_restore: (?:creating |restoring |executing |processing data for table )/.test(line)) {
      this.serial++;
      return true;
    }
    return false;
  }
}

/** Calls `report` at most every `intervalMs` (and once more on flush). */
export function throttle(intervalMs: number, report: () => void): { tick(): void; flush(): void } {
  let last = 0;
  let pending = false;
  return {
    tick() {
      const now = performance.now();
      if (now - last >= intervalMs) {
        last = now;
        pending = false;
        report();
      } else {
        pending = true;
      }
    },
    flush() {
      if (pending) report();
      pending = false;
    },
  };
}
