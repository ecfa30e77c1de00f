import { randomBytes } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

/**
 * A plain dump never runs a psql meta-command, by construction: psql (15.14 / 16.10 / 17.6 and
 * later) is put in restricted mode with a key made here, at run time, before the first byte of
 * the dump reaches it. In restricted mode psql refuses every backslash command except
 * `\unrestrict <key>`, and with ON_ERROR_STOP the refusal ends psql with exit 3, so the step fails
 * and the engine rolls back. The key exists only in this process and psql's memory: it is never
 * in the plan, argv, a log or the evidence, and nothing in the dump can learn it.
 *
 * pg_dump's own pair is handled by exact match: a first line `\restrict K` is dropped (psql would
 * refuse it, being restricted already), and so is every line that is exactly `\unrestrict K` with
 * that same K (pg_dump's last line; it would fail with "wrong key"). Nothing else is changed, so
 * whatever the rest of the dump holds (a second `\unrestrict`, a `\!` after the end, a second
 * gzip member) reaches psql as written and is refused there.
 */

const NL = 0x0a;
const BACKSLASH = 0x5c;
const PG_DUMP_RESTRICT = /^\\restrict ([A-Za-z0-9]+)\r?$/;
/** The longest first line looked at (pg_dump's is about 75 bytes). */
const MAX_FIRST_LINE = 4096;

/** A fresh restrict key: 48 hex characters from the CSPRNG (psql accepts alphanumerics only). */
export function newRestrictKey(): string {
  return randomBytes(24).toString('hex');
}

export class PsqlRestrictGuard extends Transform {
  /** pg_dump's own `\restrict` / `\unrestrict` lines dropped so far. */
  droppedPgDumpLines = 0;
  private readonly key: string;
  private started = false;
  private firstLineDone = false;
  /** `\unrestrict K` for pg_dump's key K, once the first line named one. */
  private unrestrictLine: Buffer | undefined;
  /** Bytes of an unfinished line held back (the first line, or a possible `\unrestrict K`). */
  private partial: Buffer | undefined;
  /** The start of the current line was already passed on: it cannot be `\unrestrict K`. */
  private continuing = false;

  constructor(key: string = newRestrictKey()) {
    super();
    if (!/^[A-Za-z0-9]{16,}$/.test(key)) throw new Error('a restrict key is at least 16 alphanumeric characters');
    this.key = key;
  }

  private begin(): void {
    if (this.started) return;
    this.started = true;
    this.push(Buffer.from(`\\restrict ${this.key}\n`, 'latin1'));
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.begin();
    const data = this.partial ? Buffer.concat([this.partial, chunk]) : chunk;
    this.partial = undefined;
    let start = 0;
    if (!this.firstLineDone) {
      const nl = data.indexOf(NL);
      if (nl === -1 && data.length < MAX_FIRST_LINE) {
        this.partial = Buffer.from(data);
        done();
        return;
      }
      this.firstLineDone = true;
      const m = nl === -1 ? null : PG_DUMP_RESTRICT.exec(data.toString('latin1', 0, nl));
      if (m) {
        this.unrestrictLine = Buffer.from(`\\unrestrict ${m[1]!}`, 'latin1');
        this.droppedPgDumpLines++;
        start = nl + 1;
      }
    }
    if (!this.unrestrictLine) {
      // No pg_dump key: nothing else is ever dropped.
      if (start < data.length) this.push(data.subarray(start));
      done();
      return;
    }
    let keepFrom = start;
    let lineStart = start;
    for (;;) {
      const nl = data.indexOf(NL, lineStart);
      if (nl === -1) break;
      const candidate = !this.continuing && data[lineStart] === BACKSLASH;
      this.continuing = false;
      if (candidate && this.isUnrestrict(data, lineStart, nl)) {
        if (lineStart > keepFrom) this.push(data.subarray(keepFrom, lineStart));
        keepFrom = nl + 1;
        this.droppedPgDumpLines++;
      }
      lineStart = nl + 1;
    }
    if (lineStart > keepFrom) this.push(data.subarray(keepFrom, lineStart));
    if (lineStart < data.length) {
      const rest = data.subarray(lineStart);
      // Hold an unfinished line back only while it could still become `\unrestrict K`.
      if (!this.continuing && rest[0] === BACKSLASH && rest.length <= this.unrestrictLine.length + 1) {
        this.partial = Buffer.from(rest);
      } else {
        this.push(rest);
        this.continuing = true;
      }
    }
    done();
  }

  private isUnrestrict(data: Buffer, start: number, end: number): boolean {
    const line = this.unrestrictLine!;
    let len = end - start;
    if (len > 0 && data[start + len - 1] === 0x0d) len--;
    return len === line.length && data.subarray(start, start + len).equals(line);
  }

  override _flush(done: TransformCallback): void {
    this.begin();
    const last = this.partial;
    this.partial = undefined;
    if (last) {
      if (!this.firstLineDone) {
        // A one-line dump: pg_dump's `\restrict K` alone is dropped.
        this.firstLineDone = true;
        if (PG_DUMP_RESTRICT.test(last.toString('latin1'))) this.droppedPgDumpLines++;
        else this.push(last);
      } else if (this.unrestrictLine && !this.continuing && this.isUnrestrict(last, 0, last.length)) {
        this.droppedPgDumpLines++;
      } else {
        this.push(last);
      }
    }
    done();
  }
}
