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
 * pg_dump's own pair is handled by exact match: its `\restrict K` line (the first line that is not
 * blank or a `--` comment) is dropped (psql would refuse it, being restricted already), and so is every line that is exactly `\unrestrict K` with
 * that same K (pg_dump's last line; it would fail with "wrong key"). Nothing else is changed, so
 * whatever the rest of the dump holds (a second `\unrestrict`, a `\!` after the end, a second
 * gzip member) reaches psql as written and is refused there.
 */

const NL = 0x0a;
const BACKSLASH = 0x5c;
const PG_DUMP_RESTRICT = /^\\restrict ([A-Za-z0-9]+)\r?$/;
/** pg_dump's `\restrict K` comes after its header comment: looked for in at most this many lines. */
const MAX_HEAD_LINES = 100;
/** The longest head line held back while looking. */
const MAX_HEAD_LINE = 4096;

/** A fresh restrict key: 48 hex characters from the CSPRNG (psql accepts alphanumerics only). */
export function newRestrictKey(): string {
  return randomBytes(24).toString('hex');
}

/** A blank line or a `--` comment: what pg_dump writes before its `\restrict K`. */
function isHeadFiller(data: Buffer, start: number, end: number): boolean {
  let i = start;
  while (i < end && (data[i] === 0x20 || data[i] === 0x09 || data[i] === 0x0d)) i++;
  return i === end || (data[i] === 0x2d && data[i + 1] === 0x2d && i + 1 < end);
}

export class PsqlRestrictGuard extends Transform {
  /** pg_dump's own `\restrict` / `\unrestrict` lines dropped so far. */
  droppedPgDumpLines = 0;
  private readonly key: string;
  private started = false;
  /** Still looking for pg_dump's `\restrict K` (only blank and comment lines so far). */
  private inHead = true;
  private headLines = 0;
  /** `\unrestrict K` for pg_dump's key K, once the head named one. */
  private unrestrictLine: Buffer | undefined;
  /** Bytes of an unfinished line held back (a head line, or a possible `\unrestrict K`). */
  private partial: Buffer | undefined;
  /** The start of the current line was already passed on: it cannot be `\unrestrict K`. */
  private continuing = false;

  private readonly fastPath: boolean;

  /** `fastPath: false` looks at every line after the head one at a time (the differential tests' reference). */
  constructor(key: string = newRestrictKey(), opts: { fastPath?: boolean } = {}) {
    super();
    if (!/^[A-Za-z0-9]{16,}$/.test(key)) throw new Error('a restrict key is at least 16 alphanumeric characters');
    this.key = key;
    this.fastPath = opts.fastPath ?? true;
  }

  private begin(): void {
    if (this.started) return;
    this.started = true;
    this.push(Buffer.from(`\\restrict ${this.key}\n`, 'latin1'));
  }

  /** One complete head line (without its newline): true when it is dropped. */
  private headLine(data: Buffer, start: number, end: number): boolean {
    this.headLines++;
    if (isHeadFiller(data, start, end)) {
      if (this.headLines >= MAX_HEAD_LINES) this.inHead = false;
      return false;
    }
    this.inHead = false;
    const m = PG_DUMP_RESTRICT.exec(data.toString('latin1', start, end));
    if (!m) return false;
    this.unrestrictLine = Buffer.from(`\\unrestrict ${m[1]!}`, 'latin1');
    return true;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.begin();
    const data = this.partial ? Buffer.concat([this.partial, chunk]) : chunk;
    this.partial = undefined;
    let keepFrom = 0;
    let lineStart = 0;
    for (;;) {
      if (!this.inHead && !this.unrestrictLine) break; // no pg_dump key: nothing else is ever dropped
      if (!this.inHead && this.fastPath) {
        // After the head only lines that are exactly `\unrestrict K` are dropped: found with
        // indexOf over the complete lines, instead of looking at every line.
        const last = data.lastIndexOf(NL);
        if (last < lineStart) break;
        const line = this.unrestrictLine!;
        for (let p = data.indexOf(line, lineStart); p !== -1 && p < last;) {
          const atLineStart = p === 0 ? !this.continuing : data[p - 1] === NL;
          const e = p + line.length;
          const end = data[e] === 0x0d ? e + 1 : e;
          if (!atLineStart || data[end] !== NL) {
            p = data.indexOf(line, p + 1);
            continue;
          }
          if (p > keepFrom) this.push(data.subarray(keepFrom, p));
          keepFrom = end + 1;
          this.droppedPgDumpLines++;
          p = data.indexOf(line, end + 1);
        }
        lineStart = last + 1;
        this.continuing = false;
        break;
      }
      const nl = data.indexOf(NL, lineStart);
      if (nl === -1) break;
      let drop: boolean;
      if (this.inHead) drop = this.headLine(data, lineStart, nl);
      else {
        drop = !this.continuing && data[lineStart] === BACKSLASH && this.isUnrestrict(data, lineStart, nl);
        this.continuing = false;
      }
      if (drop) {
        if (lineStart > keepFrom) this.push(data.subarray(keepFrom, lineStart));
        keepFrom = nl + 1;
        this.droppedPgDumpLines++;
      }
      lineStart = nl + 1;
    }
    if (!this.inHead && !this.unrestrictLine) {
      if (keepFrom < data.length) this.push(data.subarray(keepFrom));
      done();
      return;
    }
    if (lineStart > keepFrom) this.push(data.subarray(keepFrom, lineStart));
    if (lineStart < data.length) {
      const rest = data.subarray(lineStart);
      // Hold an unfinished line back only while it could still be one of pg_dump's.
      const hold = this.inHead
        ? rest.length < MAX_HEAD_LINE
        : !this.continuing && rest[0] === BACKSLASH && rest.length <= this.unrestrictLine!.length + 1;
      if (hold) this.partial = Buffer.from(rest);
      else {
        if (this.inHead) this.inHead = false;
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
      let drop = false;
      if (this.inHead) drop = this.headLine(last, 0, last.length);
      else if (this.unrestrictLine && !this.continuing) drop = this.isUnrestrict(last, 0, last.length);
      if (drop) this.droppedPgDumpLines++;
      else this.push(last);
    }
    done();
  }
}
