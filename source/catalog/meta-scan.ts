import { Writable } from 'node:stream';
import { sanitizeText } from '../text/sanitize.js';

/**
 * Deep verify's reading of a plain SQL dump as psql would read it: every psql meta-command (a
 * backslash outside string literals, quoted identifiers, dollar-quoted bodies, comments and
 * `COPY ... FROM stdin` data) is reported with its line number. A pg_dump of one database holds
 * none except pg_dump's own `\restrict K` (after its header comment) and `\unrestrict K` (same K): those are
 * expected and not reported. `CREATE DATABASE` and `\connect` (pg_dump --create, pg_dumpall) are
 * recognised, and so is a change of standard_conforming_strings (which would change how psql
 * reads backslashes in strings, so the rest could not be read as psql reads it).
 *
 * This is the report. The guarantee is the restore itself: psql runs in restricted mode with a
 * key made at run time (engine/psql-guard.ts), so a meta-command this scan might not see is
 * still refused. One line at a time, COPY data only compared with `\.`: memory stays flat.
 */

export interface MetaCommandFinding {
  /** 1-based line number in the (decompressed) script. */
  line: number;
  /** The command word, e.g. `\!`, `\o`, `\copy`, `\connect`. */
  command: string;
  /** The line, sanitized and capped, for the operator. */
  text: string;
}

export interface MetaScanResult {
  lines: number;
  /** Meta-commands other than pg_dump's own pair, the first MAX_FINDINGS of them. */
  findings: MetaCommandFinding[];
  /** How many there are in all. */
  total: number;
  /** pg_dump's key from a first line `\restrict K`. */
  restrictKey?: string;
  /** `CREATE DATABASE name` at the start of a statement (pg_dump --create, pg_dumpall). */
  createDatabase?: { line: number; name: string };
  /** The first `\connect` / `\c`. */
  connect?: { line: number; target: string };
  /** A statement other than pg_dump's `SET standard_conforming_strings = on;` that names the setting. */
  standardStrings?: { line: number; text: string };
  /** The script starts like pg_dumpall's output ("-- PostgreSQL database cluster dump"). */
  clusterDump: boolean;
}

export const MAX_FINDINGS = 50;
/** Lines longer than this are looked at in full but shown cut. */
const SHOW = 120;

type Inside =
  | { kind: 'none' }
  | { kind: 'squote' }
  | { kind: 'equote' }
  | { kind: 'dquote' }
  | { kind: 'dollar'; tag: string }
  | { kind: 'block'; depth: number };

const IDENT_START = /[A-Za-z_\u0080-\uffff]/;
const IDENT_CHAR = /[A-Za-z0-9_$\u0080-\uffff]/;
const DOLLAR_OPEN = /^\$([A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/;
const COPY_FROM_STDIN = /^\s*COPY\s[^;]*\sFROM\s+stdin\b[^;]*;\s*$/i;
const CREATE_DATABASE = /^\s*CREATE\s+DATABASE\s+("(?:[^"]|"")+"|[^\s;]+)/i;
const PG_DUMP_STD_STRINGS = /^SET standard_conforming_strings = on;\s*$/;

/** Scans SQL text written to it; read `result` after 'finish'. */
export class MetaCommandScanner extends Writable {
  readonly result: MetaScanResult = { lines: 0, findings: [], total: 0, clusterDump: false };
  private partial: Buffer | undefined;
  private inCopy = false;
  private inside: Inside = { kind: 'none' };
  /** A statement has begun since the last top-level `;`. */
  private inStatement = false;
  private unrestrict: string | undefined;
  private inHead = true;
  private readonly copyFastPath: boolean;

  /** `copyFastPath: false` reads COPY data one line at a time through the general path (the differential tests' reference). */
  constructor(opts: { copyFastPath?: boolean } = {}) {
    super();
    this.copyFastPath = opts.copyFastPath ?? true;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (error?: Error | null) => void): void {
    const data = this.partial ? Buffer.concat([this.partial, chunk]) : chunk;
    this.partial = undefined;
    let start = 0;
    for (;;) {
      start = this.skipCopyData(data, start);
      const nl = data.indexOf(0x0a, start);
      if (nl === -1) break;
      this.line(data, start, nl);
      start = nl + 1;
    }
    if (start < data.length) this.partial = Buffer.from(data.subarray(start));
    cb();
  }

  override _final(cb: (error?: Error | null) => void): void {
    if (this.partial && this.partial.length > 0) this.line(this.partial, 0, this.partial.length);
    this.partial = undefined;
    cb();
  }

  /** Reads one line (without its newline), as writing it would: for a caller that splits lines itself (catalog/plain-sections.ts). */
  scanLine(data: Buffer, start: number, end: number): void {
    this.line(data, start, end);
  }

  /**
   * Inside COPY data: passes over the complete lines of data[start..) that are data, exactly as
   * scanLine would (each only counted: psql hands every line to the server until one that is
   * exactly `\.`, optionally with a CR), and returns where the line-by-line reading resumes: the
   * start of the line that ends the data, or of the unfinished last line (the caller holds it).
   * Outside COPY data (or with the fast path off) it returns `start`.
   */
  skipCopyData(data: Buffer, start: number): number {
    if (!this.inCopy || !this.copyFastPath) return start;
    let i = start;
    let n = 0;
    for (;;) {
      const nl = data.indexOf(0x0a, i);
      if (nl === -1) break;
      const len = nl - i;
      if (data[i] === 0x5c && data[i + 1] === 0x2e && (len === 2 || (len === 3 && data[i + 2] === 0x0d))) break;
      n++;
      i = nl + 1;
    }
    this.result.lines += n;
    return i;
  }

  /** Where psql would begin a new statement: outside COPY data, quotes, dollar bodies and comments, no statement pending. */
  get atStatementBoundary(): boolean {
    return !this.inCopy && this.inside.kind === 'none' && !this.inStatement;
  }

  /** Inside `COPY ... FROM stdin` data (until its `\.` line). */
  get inCopyData(): boolean {
    return this.inCopy;
  }

  private line(data: Buffer, start: number, end: number): void {
    const no = ++this.result.lines;
    if (this.inCopy) {
      // COPY data: psql hands every line to the server until one that is exactly `\.`.
      if (data[start] === 0x5c && end - start <= 3 && /^\\\.\r?$/.test(data.toString('latin1', start, end))) this.inCopy = false;
      return;
    }
    const text = data.toString('utf8', start, end);
    if (no <= 10 && /^-- PostgreSQL database cluster dump\s*$/.test(text)) this.result.clusterDump = true;
    if (this.inHead) {
      // pg_dump's `\restrict K` is the first line that is not blank or a `--` comment.
      if (/^\s*(?:--.*)?$/.test(text) && no < 100) return;
      this.inHead = false;
      const m = /^\\restrict ([A-Za-z0-9]+)\r?$/.exec(text);
      if (m) {
        this.result.restrictKey = m[1]!;
        this.unrestrict = `\\unrestrict ${m[1]!}`;
        return;
      }
    }
    const startsClean = this.inside.kind === 'none' && !this.inStatement;
    if (this.inside.kind === 'none' && this.unrestrict !== undefined && text.replace(/\r$/, '') === this.unrestrict) return;
    if (startsClean && !this.result.createDatabase) {
      const m = CREATE_DATABASE.exec(text);
      if (m) this.result.createDatabase = { line: no, name: sanitizeText(m[1]!, 80) };
    }
    if (
      this.inside.kind === 'none' &&
      !this.result.standardStrings &&
      /standard_conforming_strings/i.test(text) &&
      !PG_DUMP_STD_STRINGS.test(text)
    ) {
      this.result.standardStrings = { line: no, text: show(text) };
    }
    this.lex(text, no);
    if (startsClean && this.inside.kind === 'none' && !this.inStatement && COPY_FROM_STDIN.test(text)) this.inCopy = true;
  }

  /** psql's lexer, as far as it decides what is a backslash command. */
  private lex(text: string, no: number): void {
    let i = 0;
    const n = text.length;
    while (i < n) {
      const inside = this.inside;
      switch (inside.kind) {
        case 'squote':
        case 'equote': {
          const c = text[i]!;
          if (inside.kind === 'equote' && c === '\\') i += 2;
          else if (c === "'") {
            if (text[i + 1] === "'") i += 2;
            else {
              this.inside = { kind: 'none' };
              i++;
            }
          } else i++;
          continue;
        }
        case 'dquote': {
          const q = text.indexOf('"', i);
          if (q === -1) return;
          if (text[q + 1] === '"') i = q + 2;
          else {
            this.inside = { kind: 'none' };
            i = q + 1;
          }
          continue;
        }
        case 'dollar': {
          const close = `$${inside.tag}$`;
          const q = text.indexOf(close, i);
          if (q === -1) return;
          this.inside = { kind: 'none' };
          i = q + close.length;
          continue;
        }
        case 'block': {
          const open = text.indexOf('/*', i);
          const close = text.indexOf('*/', i);
          if (close === -1 && open === -1) return;
          if (open !== -1 && (close === -1 || open < close)) {
            this.inside = { kind: 'block', depth: inside.depth + 1 };
            i = open + 2;
          } else {
            this.inside = inside.depth > 1 ? { kind: 'block', depth: inside.depth - 1 } : { kind: 'none' };
            i = close + 2;
          }
          continue;
        }
        case 'none':
          break;
      }
      const c = text[i]!;
      const next = text[i + 1];
      if (c === ' ' || c === '\t' || c === '\r' || c === '\f' || c === '\v') {
        i++;
      } else if (c === '-' && next === '-') {
        return; // a comment to the end of the line
      } else if (c === '/' && next === '*') {
        this.inside = { kind: 'block', depth: 1 };
        i += 2;
      } else if (c === "'") {
        this.inside = { kind: 'squote' };
        this.inStatement = true;
        i++;
      } else if (c === '"') {
        this.inside = { kind: 'dquote' };
        this.inStatement = true;
        i++;
      } else if (c === '$') {
        const m = DOLLAR_OPEN.exec(text.slice(i, i + 256));
        this.inStatement = true;
        if (m) {
          this.inside = { kind: 'dollar', tag: m[1] ?? '' };
          i += m[0].length;
        } else i++;
      } else if (IDENT_START.test(c)) {
        let j = i + 1;
        while (j < n && IDENT_CHAR.test(text[j]!)) j++;
        this.inStatement = true;
        if (j === i + 1 && (c === 'e' || c === 'E') && text[j] === "'") {
          this.inside = { kind: 'equote' };
          j++;
        }
        i = j;
      } else if (c >= '0' && c <= '9') {
        let j = i + 1;
        while (j < n && /[0-9A-Za-z_.]/.test(text[j]!)) j++;
        this.inStatement = true;
        i = j;
      } else if (c === '\\') {
        if (next === ';' || next === ':') {
          // psql puts a literal ';' / ':' into the query: not a command.
          this.inStatement = true;
          i += 2;
          continue;
        }
        this.found(text, i, no);
        return; // the command takes the rest of the line as its arguments
      } else if (c === ';') {
        this.inStatement = false;
        i++;
      } else {
        this.inStatement = true;
        i++;
      }
    }
  }

  private found(text: string, at: number, no: number): void {
    const word = /^\\([A-Za-z]+|[^A-Za-z\s]?)/.exec(text.slice(at, at + 40))?.[0] ?? '\\';
    const command = sanitizeText(word, 20);
    this.result.total++;
    if (this.result.findings.length < MAX_FINDINGS) this.result.findings.push({ line: no, command, text: show(text) });
    if (!this.result.connect && (word === '\\c' || word === '\\connect')) {
      const target =
        text
          .slice(at + word.length)
          .trim()
          .split(/\s+/)[0] ?? '';
      this.result.connect = { line: no, target: sanitizeText(target, 80) };
    }
    // After a command psql reads its arguments to the end of the line; the query buffer is as it was.
  }
}

function show(text: string): string {
  const t = text.replace(/\r$/, '');
  return sanitizeText(t.length > SHOW ? `${t.slice(0, SHOW)}…` : t, SHOW + 1);
}
