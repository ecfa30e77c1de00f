import type { Readable } from 'node:stream';
import { Writable } from 'node:stream';

/**
 * Streaming scan of plain SQL (a pg_dump script, or `pg_restore -f - --schema-only` output) for
 * what a restore needs to know before it starts: the roles the script references and the
 * version header. Memory stays flat: one line at a time (a line is looked at up to MAX_LINE
 * bytes); COPY data blocks are skipped, so table contents that happen to read "OWNER TO x"
 * are never mistaken for statements.
 *
 * A Writable (SqlRoleScanner), so deep verification feeds it from the same read that hashes the
 * file and scans it for meta-commands (catalog/verify-postgres.ts); the probe feeds it from a
 * stream when verification did not read the file (probe/dump-scan.ts).
 */

export interface SqlScanResult {
  roles: string[];
  pgDumpVersion?: string;
  serverVersion?: string;
  /** The script's first statement line is `\restrict KEY` (pg_dump 17.6 / 16.10 / 15.14 / 14.19 / 13.22 and later, after the header comment). */
  restrict: boolean;
  lines: number;
}

/** Role-like names that are keywords or built-in, never created by a restore. */
const NOT_ROLES = new Set(['public', 'current_user', 'session_user', 'current_role', 'group']);

const IDENT = String.raw`("(?:[^"]|"")+"|[A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*)`;
const IDENT_LIST = String.raw`(${IDENT}(?:\s*,\s*${IDENT})*)`;

const patterns: RegExp[] = [
  new RegExp(String.raw`\bOWNER TO ${IDENT}`, 'gi'),
  new RegExp(String.raw`^\s*GRANT\b.*?\bTO ${IDENT_LIST}`, 'gi'),
  new RegExp(String.raw`^\s*REVOKE\b.*?\bFROM ${IDENT_LIST}`, 'gi'),
  new RegExp(String.raw`\bFOR ROLE ${IDENT_LIST}`, 'gi'),
  new RegExp(String.raw`^\s*ALTER DEFAULT PRIVILEGES\b.*?\b(?:TO|FROM) ${IDENT_LIST}`, 'gi'),
  new RegExp(String.raw`\bAUTHORIZATION ${IDENT}`, 'gi'),
  new RegExp(String.raw`^\s*SET ROLE ${IDENT}`, 'gi'),
  new RegExp(String.raw`^\s*CREATE POLICY\b.*?\bTO ${IDENT_LIST}`, 'gi'),
];

/** A line longer than this (bytes) is looked at up to here (pg_dump's statements that name roles are short). */
const MAX_LINE = 1024 * 1024;

function unquote(ident: string): string {
  if (ident.startsWith('"')) return ident.slice(1, -1).replace(/""/g, '"');
  return ident.toLowerCase();
}

function splitIdents(list: string): string[] {
  const out: string[] = [];
  const re = new RegExp(IDENT, 'g');
  for (const m of list.matchAll(re)) out.push(m[1]!);
  return out;
}

/** Roles a single SQL line references (exported for tests). */
export function rolesInLine(line: string): string[] {
  const found: string[] = [];
  for (const re of patterns) {
    re.lastIndex = 0;
    for (const m of line.matchAll(re)) {
      for (const ident of splitIdents(m[1] ?? '')) {
        const name = unquote(ident);
        const bare = !ident.startsWith('"');
        if (bare && NOT_ROLES.has(name)) continue;
        if (name.startsWith('pg_')) continue; // built-in roles: never created, exist on the server
        found.push(name);
      }
    }
  }
  // SET SESSION AUTHORIZATION 'name' (pg_dump --use-set-session-authorization)
  const ssa = /^\s*SET SESSION AUTHORIZATION '((?:[^']|'')+)'/i.exec(line);
  if (ssa) found.push(ssa[1]!.replace(/''/g, "'"));
  return found;
}

/** The scan of one script, fed line by line. */
class RoleLines {
  private readonly roles = new Set<string>();
  private readonly result: SqlScanResult = { roles: [], restrict: false, lines: 0 };
  private inCopy_ = false;
  private pending = '';
  private lookingForRestrict = true;

  /** Inside `COPY ... FROM stdin` data: every line until `\.` is only counted (see copyLines). */
  get inCopy(): boolean {
    return this.inCopy_;
  }

  /**
   * `n` lines of COPY data that are not `\.`: what line() does with each of them (counts it).
   * The \restrict lookout is over by then: the COPY line that began the data ended it.
   */
  copyLines(n: number): void {
    this.result.lines += n;
  }

  line(line: string): void {
    const result = this.result;
    result.lines++;
    // pg_dump writes `\restrict KEY` after its header comment: the first line that is not blank or `--`.
    if (this.lookingForRestrict && !/^\s*(?:--.*)?$/.test(line)) {
      this.lookingForRestrict = false;
      if (/^\\restrict\s+\S+/.test(line)) result.restrict = true;
    }
    if (this.inCopy_) {
      if (line === '\\.') this.inCopy_ = false;
      return;
    }
    if (line.startsWith('--')) {
      const from = /^-- Dumped from database version (\S+)/.exec(line);
      if (from) result.serverVersion = from[1]!;
      const by = /^-- Dumped by pg_dump version (\S+)/.exec(line);
      if (by) result.pgDumpVersion = by[1]!;
      return;
    }
    if (/^COPY\s.*\bFROM stdin;\s*$/i.test(line)) {
      this.inCopy_ = true;
      return;
    }
    // Statements pg_dump writes that name roles fit on one line, except GRANT/REVOKE lists that
    // may wrap; join a statement's lines until its semicolon (bounded, to keep memory flat).
    const joined = this.pending ? `${this.pending} ${line}` : line;
    if (/;\s*$/.test(line) || joined.length > 64 * 1024) {
      for (const r of rolesInLine(joined)) this.roles.add(r);
      this.pending = '';
    } else if (/^\s*(GRANT|REVOKE|ALTER|CREATE POLICY|SET)\b/i.test(joined)) {
      this.pending = joined;
    } else {
      for (const r of rolesInLine(joined)) this.roles.add(r);
      this.pending = '';
    }
  }

  done(): SqlScanResult {
    if (this.pending) for (const r of rolesInLine(this.pending)) this.roles.add(r);
    this.pending = '';
    this.result.roles = [...this.roles].sort();
    return this.result;
  }
}

const LF = 0x0a;
const CR = 0x0d;
/** The line that ends COPY data. */
const COPY_END = Buffer.from('\\.');
const EMPTY = Buffer.alloc(0);

/**
 * The scan as a Writable of SQL bytes. Lines end at \n, \r\n or \r (as node:readline splits
 * them). `result` is set when the stream finishes.
 *
 * Lines are found in the bytes (neither \n nor \r is ever part of a UTF-8 sequence), and only a
 * line outside COPY data is decoded to a string: COPY data, nearly all of a dump's bytes, is only
 * counted and compared with `\.`, one loop over the chunk, without a string or a Buffer per line.
 * (Decoding every byte made this scan most of deep verification's CPU, and its garbage grew V8's
 * young generation on a long read: the whole CLI's peak RSS grew with the dump's size, issue 14.)
 */
export class SqlRoleScanner extends Writable {
  result: SqlScanResult | undefined;
  private readonly lines = new RoleLines();
  /** The current line's bytes so far (it began in an earlier chunk), at most maxLine of them. */
  private partial: Buffer[] = [];
  private partialBytes = 0;
  /** The current line was longer than maxLine: its first maxLine bytes were looked at, the rest is skipped. */
  private skipping = false;
  /** The last chunk ended with \r: a \n that begins the next one is the same line end. */
  private afterCr = false;
  private readonly maxLine: number;

  /** `maxLine` (tests): how much of a line is looked at (default MAX_LINE bytes). */
  constructor(opts: { maxLine?: number } = {}) {
    super();
    this.maxLine = opts.maxLine ?? MAX_LINE;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (error?: Error | null) => void): void {
    this.take(chunk);
    cb();
  }

  override _final(cb: (error?: Error | null) => void): void {
    if (this.partialBytes > 0 || this.skipping) this.endLine(EMPTY, 0, 0);
    this.result = this.lines.done();
    cb();
  }

  private take(chunk: Buffer): void {
    let i = 0;
    if (this.afterCr) {
      this.afterCr = false;
      if (chunk[0] === LF) i = 1;
    }
    // The next \n and \r at or after i (-1: none left in this chunk), each searched for once per chunk position.
    let nl = chunk.indexOf(LF, i);
    let cr = chunk.indexOf(CR, i);
    while (i < chunk.length) {
      if (nl !== -1 && nl < i) nl = chunk.indexOf(LF, i);
      if (cr !== -1 && cr < i) cr = chunk.indexOf(CR, i);
      const at = nl === -1 ? cr : cr === -1 ? nl : Math.min(nl, cr);
      if (at === -1) {
        this.hold(chunk, i, chunk.length);
        return;
      }
      if (this.partialBytes === 0 && !this.skipping && this.lines.inCopy && !this.isCopyEnd(chunk, i, at)) {
        // A whole line of COPY data in this chunk: counted, not decoded.
        this.lines.copyLines(1);
      } else {
        this.endLine(chunk, i, at);
      }
      if (chunk[at] === CR) {
        if (at + 1 === chunk.length) {
          this.afterCr = true;
          return;
        }
        i = chunk[at + 1] === LF ? at + 2 : at + 1;
      } else {
        i = at + 1;
      }
    }
  }

  private isCopyEnd(chunk: Buffer, start: number, end: number): boolean {
    return end - start === 2 && chunk[start] === COPY_END[0] && chunk[start + 1] === COPY_END[1];
  }

  /** Bytes [start, end) of a line that goes on in the next chunk. */
  private hold(chunk: Buffer, start: number, end: number): void {
    if (this.skipping || start === end) return;
    const room = this.maxLine - this.partialBytes;
    if (end - start <= room) {
      this.partial.push(Buffer.from(chunk.subarray(start, end)));
      this.partialBytes += end - start;
      return;
    }
    // Longer than maxLine: its beginning is looked at now, the rest of it skipped.
    this.partial.push(chunk.subarray(start, start + room));
    this.skipping = true;
    this.lookAt();
  }

  /** The line that ends at `end` (its terminator): the held bytes and [start, end). */
  private endLine(chunk: Buffer, start: number, end: number): void {
    if (this.skipping) {
      this.skipping = false;
      return;
    }
    if (this.partialBytes + (end - start) > this.maxLine) {
      this.hold(chunk, start, end);
      this.skipping = false;
      return;
    }
    if (end > start) this.partial.push(chunk.subarray(start, end));
    this.partialBytes += end - start;
    this.lookAt();
  }

  /** The held bytes are a line (or a long line's beginning): to the scan, decoded only outside COPY data. */
  private lookAt(): void {
    const parts = this.partial;
    const n = this.partialBytes;
    this.partial = [];
    this.partialBytes = 0;
    if (this.lines.inCopy) {
      if (n === 2 && Buffer.concat(parts, 2).equals(COPY_END)) this.lines.line('\\.');
      else this.lines.copyLines(1);
      return;
    }
    this.lines.line(parts.length === 1 ? parts[0]!.toString('utf8') : Buffer.concat(parts, n).toString('utf8'));
  }
}

/** Scan a stream of SQL text. */
export async function scanSqlStream(input: Readable): Promise<SqlScanResult> {
  const scanner = new SqlRoleScanner();
  await new Promise<void>((resolve, reject) => {
    input.on('error', reject);
    scanner.on('error', reject);
    scanner.on('finish', resolve);
    input.pipe(scanner);
  });
  return scanner.result!;
}
