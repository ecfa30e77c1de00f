import { createReadStream } from 'node:fs';
import { parseRestoreList, versionOf } from '../catalog/pg-restore-list.js';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';

/**
 * Streaming scan of plain SQL (a pg_dump script, or `pg_restore -f - --schema-only` output) for
 * what a restore needs to know before it starts: the roles the script references and the
 * version header. Memory stays flat: one line at a time; COPY data blocks are skipped, so table
 * contents that happen to read "OWNER TO x" are never mistaken for statements.
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

/** Scan a stream of SQL text. */
export async function scanSqlStream(input: Readable): Promise<SqlScanResult> {
  const roles = new Set<string>();
  const result: SqlScanResult = { roles: [], restrict: false, lines: 0 };
  const rl = createInterface({ input, crlfDelay: Infinity });
  let inCopy = false;
  let pending = '';
  let lookingForRestrict = true;
  for await (const line of rl) {
    result.lines++;
    // pg_dump writes `\restrict KEY` after its header comment: the first line that is not blank or `--`.
    if (lookingForRestrict && !/^\s*(?:--.*)?$/.test(line)) {
      lookingForRestrict = false;
      if (/^\\restrict\s+\S+/.test(line)) result.restrict = true;
    }
    if (inCopy) {
      if (line === '\\.') inCopy = false;
      continue;
    }
    if (line.startsWith('--')) {
      const from = /^-- Dumped from database version (\S+)/.exec(line);
      if (from) result.serverVersion = from[1]!;
      const by = /^-- Dumped by pg_dump version (\S+)/.exec(line);
      if (by) result.pgDumpVersion = by[1]!;
      continue;
    }
    if (/^COPY\s.*\bFROM stdin;\s*$/i.test(line)) {
      inCopy = true;
      continue;
    }
    // Statements pg_dump writes that name roles fit on one line, except GRANT/REVOKE lists that
    // may wrap; join a statement's lines until its semicolon (bounded, to keep memory flat).
    const joined = pending ? `${pending} ${line}` : line;
    if (/;\s*$/.test(line) || joined.length > 64 * 1024) {
      for (const r of rolesInLine(joined)) roles.add(r);
      pending = '';
    } else if (/^\s*(GRANT|REVOKE|ALTER|CREATE POLICY|SET)\b/i.test(joined)) {
      pending = joined;
    } else {
      for (const r of rolesInLine(joined)) roles.add(r);
      pending = '';
    }
  }
  if (pending) for (const r of rolesInLine(pending)) roles.add(r);
  result.roles = [...roles].sort();
  return result;
}

/** Scan a plain dump file (.sql, or .sql.gz through gunzip). A corrupt .gz rejects. */
export async function scanPlainDump(file: string, gzip: boolean): Promise<SqlScanResult> {
  const raw = createReadStream(file);
  if (!gzip) return scanSqlStream(raw);
  const gunzip = createGunzip();
  const failed = new Promise<never>((_, reject) => {
    raw.on('error', reject);
    gunzip.on('error', reject);
  });
  raw.pipe(gunzip);
  return Promise.race([scanSqlStream(gunzip), failed]);
}

/** The probe's dump facts from `pg_restore --list` (catalog/pg-restore-list.ts parses it). */
export function restoreListDumpFacts(text: string): {
  pgDumpVersion?: string;
  serverVersion?: string;
  tocEntries: number;
  database?: string;
  createdAt?: string;
} {
  const list = parseRestoreList(text);
  const pgDumpVersion = versionOf(list.headers['Dumped by pg_dump version']);
  const serverVersion = versionOf(list.headers['Dumped from database version']);
  const database = list.headers['dbname'];
  const createdAt = list.createdAt;
  return {
    tocEntries: list.tocEntries,
    ...(pgDumpVersion ? { pgDumpVersion } : {}),
    ...(serverVersion ? { serverVersion } : {}),
    ...(database ? { database } : {}),
    ...(createdAt ? { createdAt } : {}),
  };
}
