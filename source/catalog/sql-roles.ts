import { StringDecoder } from 'node:string_decoder';
import type { Readable } from 'node:stream';
import { Writable } from 'node:stream';

/**
 * Streaming scan of plain SQL (a pg_dump script, or `pg_restore -f - --schema-only` output) for
 * what a restore needs to know before it starts: the roles the script references and the
 * version header. Memory stays flat: one line at a time (a line is looked at up to MAX_LINE
 * characters); COPY data blocks are skipped, so table contents that happen to read "OWNER TO x"
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

/** A line longer than this is looked at up to here (pg_dump's statements that name roles are short). */
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
  private inCopy = false;
  private pending = '';
  private lookingForRestrict = true;

  line(line: string): void {
    const result = this.result;
    result.lines++;
    // pg_dump writes `\restrict KEY` after its header comment: the first line that is not blank or `--`.
    if (this.lookingForRestrict && !/^\s*(?:--.*)?$/.test(line)) {
      this.lookingForRestrict = false;
      if (/^\\restrict\s+\S+/.test(line)) result.restrict = true;
    }
    if (this.inCopy) {
      if (line === '\\.') this.inCopy = false;
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
      this.inCopy = true;
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

/**
 * The scan as a Writable of SQL bytes. Lines end at \n, \r\n or \r (as node:readline splits
 * them). `result` is set when the stream finishes.
 */
export class SqlRoleScanner extends Writable {
  result: SqlScanResult | undefined;
  private readonly lines = new RoleLines();
  private readonly decoder = new StringDecoder('utf8');
  private rest = '';
  /** The current line was longer than MAX_LINE: the rest of it is skipped. */
  private skipping = false;

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (error?: Error | null) => void): void {
    this.take(this.decoder.write(chunk), false);
    cb();
  }

  override _final(cb: (error?: Error | null) => void): void {
    this.take(this.decoder.end(), true);
    this.result = this.lines.done();
    cb();
  }

  private emit_(line: string): void {
    if (this.skipping) {
      this.skipping = false;
      return;
    }
    this.lines.line(line);
  }

  private take(text: string, last: boolean): void {
    let s = this.rest + text;
    let start = 0;
    for (;;) {
      const nl = s.indexOf('\n', start);
      const cr = s.indexOf('\r', start);
      const at = nl === -1 ? cr : cr === -1 ? nl : Math.min(nl, cr);
      if (at === -1) break;
      if (s[at] === '\r' && at + 1 === s.length && !last) break; // \r at the end: maybe \r\n
      this.emit_(s.slice(start, at));
      start = s[at] === '\r' && s[at + 1] === '\n' ? at + 2 : at + 1;
    }
    s = s.slice(start);
    if (s.length > MAX_LINE && !this.skipping) {
      this.lines.line(s.slice(0, MAX_LINE));
      this.skipping = true;
      s = '';
    } else if (this.skipping && s.length > MAX_LINE) {
      s = '';
    }
    if (last) {
      if (s !== '') this.emit_(s);
      s = '';
    }
    this.rest = s;
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
