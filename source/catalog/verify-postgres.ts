import { parseRestoreList } from './pg-restore-list.js';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import zlib from 'node:zlib';
import { sanitizeText } from '../text/sanitize.js';
import type { MetaScanResult } from './meta-scan.js';
import { SectionScanWriter } from './plain-sections.js';
import { SqlRoleScanner } from './sql-roles.js';
import { findPgTool } from './tools.js';
import {
  checksumOutcome,
  type ComponentRun,
  EdgeScanner,
  Fanout,
  gzipHeaderOk,
  gzipProblem,
  progressReporter,
  readEdges,
  readFailure,
  run_,
  streamPass,
  toolTail,
  type VerifyOptions,
} from './verify-common.js';

/** PostgreSQL dumps: plain (.sql, .sql.gz: header, complete line, meta-commands) and archives (pg_restore --list, read-through). */

const PLAIN_HEADER = '-- PostgreSQL database dump';

const PLAIN_COMPLETE = '-- PostgreSQL database dump complete';

/** Judge a plain dump's head and tail text. */
function judgePlain(cr: ComponentRun, head: Buffer, tail: Buffer, started: number, wholeStream: boolean): void {
  const headText = head.toString('utf8');
  const firstLines = headText.split('\n').slice(0, 40);
  const hasHeader = firstLines.some((l) => l.trimEnd() === PLAIN_HEADER);
  cr.check('dump header', hasHeader, started, hasHeader ? PLAIN_HEADER : 'no "-- PostgreSQL database dump" line at the start');
  if (!hasHeader)
    cr.problem('pg-dump-header-missing', 'does not start with "-- PostgreSQL database dump": not a plain pg_dump file, or damaged');
  const restrict = firstLines.find((l) => /^\\restrict\s+\S+/.test(l));
  cr.facts['plainDumpHasRestrictLine'] = Boolean(restrict);
  const from = /^-- Dumped from database version (.+)$/m.exec(headText)?.[1];
  const by = /^-- Dumped by pg_dump version (.+)$/m.exec(headText)?.[1];
  if (from) cr.facts['pgServerVersion'] = sanitizeText(from.trim(), 80);
  if (by) cr.facts['pgDumpVersion'] = sanitizeText(by.trim(), 80);
  const tailLines = tail
    .toString('utf8')
    .split('\n')
    .map((l) => l.trimEnd());
  const complete = tailLines.slice(-40).includes(PLAIN_COMPLETE);
  cr.check(
    'dump complete line',
    complete,
    started,
    complete ? PLAIN_COMPLETE : `no "${PLAIN_COMPLETE}" line at the end${wholeStream ? '' : ' (quick: tail only)'}`,
  );
  if (!complete)
    cr.problem(
      'pg-dump-incomplete',
      `does not end with "${PLAIN_COMPLETE}": the dump was cut short (pg_dump failed or the file is truncated)`,
    );
}

/** At most this many meta-commands become problems of their own; the rest are counted. */
const MAX_META_PROBLEMS = 20;

/**
 * What the meta-command scan found (catalog/meta-scan.ts). Every finding is a refusal: a pg_dump
 * of one database holds no psql meta-command besides its own \restrict/\unrestrict pair.
 */
function judgeMetaCommands(cr: ComponentRun, scan: MetaScanResult, started: number): void {
  cr.facts['psqlMetaCommands'] = scan.total;
  if (scan.createDatabase) cr.facts['dbname'] = scan.createDatabase.name.replace(/^"(.*)"$/s, '$1').replace(/""/g, '"');
  const clean = scan.total === 0 && !scan.createDatabase && !scan.clusterDump && !scan.standardStrings;
  cr.check(
    'psql meta-commands',
    clean,
    started,
    clean
      ? `none outside COPY data (${scan.lines} lines${scan.restrictKey ? "; pg_dump's own \\restrict pair only" : ''})`
      : `${scan.total} outside COPY data${scan.findings[0] ? `, first at line ${scan.findings[0].line}` : ''}`,
  );
  if (scan.clusterDump) {
    cr.problem(
      'pg-dumpall',
      "is a pg_dumpall cluster dump (roles, every database, \\connect between them); this tool restores one database into the recipe's target. Dump the one database with pg_dump (-Fc), or restore a cluster dump by hand.",
    );
  }
  if (scan.createDatabase || scan.connect) {
    const what = [
      scan.createDatabase ? `CREATE DATABASE ${scan.createDatabase.name} at line ${scan.createDatabase.line}` : undefined,
      scan.connect ? `\\connect ${scan.connect.target} at line ${scan.connect.line}` : undefined,
    ]
      .filter(Boolean)
      .join(' and ');
    cr.problem(
      'pg-dump-create',
      `was made with pg_dump --create (or pg_dumpall): ${what} would create or switch to another database, outside the recipe's target and its safety copy. ` +
        'Refused: only a dump of one database without --create is restored, into the target only. Make the dump without --create (pg_dump -Fc --dbname=DB), or restore this one by hand.',
      scan.createDatabase?.line ?? scan.connect?.line,
    );
  }
  scan.findings.slice(0, MAX_META_PROBLEMS).forEach((f, i) => {
    const why =
      i === 0
        ? " (a pg_dump of one database holds none besides its own \\restrict/\\unrestrict pair: this file was altered, or is not such a dump; a restore's psql would refuse it, as it runs restricted)"
        : '';
    cr.problem('psql-meta-command', `line ${f.line}: psql meta-command ${f.command} outside COPY data: ${f.text}${why}`, f.line);
  });
  if (scan.total > MAX_META_PROBLEMS)
    cr.problem('psql-meta-command', `${scan.total - MAX_META_PROBLEMS} more psql meta-commands not listed`);
  if (scan.standardStrings) {
    cr.problem(
      'standard-conforming-strings',
      `line ${scan.standardStrings.line}: changes standard_conforming_strings (${scan.standardStrings.text}); pg_dump only ever sets it on, and a change alters how psql reads backslashes, so the rest cannot be checked for meta-commands`,
      scan.standardStrings.line,
    );
  }
}

export async function verifyPlain(cr: ComponentRun, opts: VerifyOptions, gz: boolean): Promise<void> {
  const c = cr.component;
  const onBytes = progressReporter(cr, c.size, opts.onProgress);
  const wantHash = opts.depth === 'deep' || Boolean(c.expectedSha256);
  if (opts.depth === 'deep') {
    const started = performance.now();
    const scanner = new EdgeScanner();
    // The meta-command scan and the section structure (parallel restore, issue 14) in one lexer.
    const sections = new SectionScanWriter();
    // The roles the dump references, from this same read: the probe and the preflight use it
    // (bound to the identity below) instead of reading the dump again.
    const roles = new SqlRoleScanner();
    const pass = await streamPass(c.path, {
      hash: true,
      gunzip: gz,
      consumer: new Fanout([scanner, sections, roles]),
      onBytes,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    if (pass.readError) return readFailure(cr, pass.readError);
    cr.sha256 = pass.sha256;
    cr.identity = pass.identity;
    if (roles.result && !pass.inflateError && !pass.consumerError) {
      const { roles: names, restrict, pgDumpVersion, serverVersion } = roles.result;
      cr.dumpScan = { roles: names, restrict, ...(pgDumpVersion ? { pgDumpVersion } : {}), ...(serverVersion ? { serverVersion } : {}) };
    }
    checksumOutcome(cr, pass.sha256, started);
    if (gz) {
      const { head } = await readEdges(c.path, c.size);
      cr.check('gzip header', gzipHeaderOk(head), started);
      if (!gzipHeaderOk(head)) {
        cr.problem('gzip-bad-header', 'is not a gzip file (bad magic bytes)');
        return;
      }
      cr.check(
        'gzip stream',
        !pass.inflateError,
        started,
        pass.inflateError ? pass.inflateError.message : `${pass.uncompressedBytes} bytes uncompressed, CRC ok`,
      );
      cr.facts['uncompressedBytes'] = pass.uncompressedBytes;
      if (pass.inflateError) gzipProblem(cr, pass.inflateError);
    }
    judgePlain(cr, scanner.head, scanner.tail, started, true);
    judgeMetaCommands(cr, sections.splitter.metaScan, started);
    cr.facts['plainSections'] = sections.splitter.summary();
    return;
  }
  // quick
  const started = performance.now();
  let head: Buffer;
  let tail: Buffer;
  try {
    ({ head, tail } = await readEdges(c.path, c.size));
  } catch (error) {
    return readFailure(cr, error as Error);
  }
  if (gz) {
    const ok = gzipHeaderOk(head);
    cr.check('gzip header', ok, started);
    if (!ok) {
      cr.problem('gzip-bad-header', 'is not a gzip file (bad magic bytes)');
    } else {
      // Inflate only the beginning: the header lines of the dump.
      let inflated = Buffer.alloc(0);
      try {
        inflated = zlib.gunzipSync(head, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
      } catch (error) {
        gzipProblem(cr, error as Error);
      }
      const headText = inflated.toString('utf8');
      const hasHeader = headText
        .split('\n')
        .slice(0, 40)
        .some((l) => l.trimEnd() === PLAIN_HEADER);
      cr.check('dump header', hasHeader, started, hasHeader ? PLAIN_HEADER : 'no "-- PostgreSQL database dump" line at the start');
      if (!hasHeader && inflated.length > 0)
        cr.problem('pg-dump-header-missing', 'does not start with "-- PostgreSQL database dump": not a plain pg_dump file, or damaged');
      cr.facts['plainDumpHasRestrictLine'] = headText
        .split('\n')
        .slice(0, 40)
        .some((l) => /^\\restrict\s+\S+/.test(l));
      const by = /^-- Dumped by pg_dump version (.+)$/m.exec(headText)?.[1];
      if (by) cr.facts['pgDumpVersion'] = sanitizeText(by.trim(), 80);
      const from = /^-- Dumped from database version (.+)$/m.exec(headText)?.[1];
      if (from) cr.facts['pgServerVersion'] = sanitizeText(from.trim(), 80);
    }
  } else {
    judgePlain(cr, head, tail, started, false);
  }
  if (wantHash) {
    const hStarted = performance.now();
    const pass = await streamPass(c.path, { hash: true, gunzip: false, onBytes, ...(opts.signal ? { signal: opts.signal } : {}) });
    if (pass.readError) return readFailure(cr, pass.readError);
    cr.sha256 = pass.sha256;
    cr.identity = pass.identity;
    checksumOutcome(cr, pass.sha256, hStarted);
  }
}

/** Verification's facts from `pg_restore --list` (catalog/pg-restore-list.ts parses it). */
function restoreListFacts(stdout: string): Record<string, unknown> {
  const list = parseRestoreList(stdout);
  const h = list.headers;
  const facts: Record<string, unknown> = {};
  if (list.createdAt) facts['archiveCreatedAt'] = list.createdAt;
  if (h['dbname']) facts['dbname'] = h['dbname'];
  // What pg_restore will process (one --verbose item each): the engine's progress total.
  facts['tocEntries'] = list.tocEntries;
  if (list.tocHeaderEntries !== undefined) facts['tocHeaderEntries'] = list.tocHeaderEntries;
  if (h['Dump Version']) facts['dumpFormatVersion'] = h['Dump Version'];
  if (h['Format']) facts['archiveFormat'] = h['Format'];
  if (h['Compression']) facts['compression'] = h['Compression'];
  if (h['Dumped from database version']) facts['pgServerVersion'] = h['Dumped from database version'];
  if (h['Dumped by pg_dump version']) facts['pgDumpVersion'] = h['Dumped by pg_dump version'];
  return facts;
}

export async function verifyPgArchive(cr: ComponentRun, opts: VerifyOptions): Promise<void> {
  const c = cr.component;
  const isDir = c.format === 'pg-directory';
  const signalOpt = opts.signal ? { signal: opts.signal } : {};
  let started = performance.now();
  if (isDir) {
    try {
      const toc = await stat(path.join(c.path, 'toc.dat'));
      const ok = toc.size > 0;
      cr.check('toc.dat', ok, started);
      if (!ok) {
        cr.problem('empty-file', 'toc.dat is empty (0 bytes)');
        return;
      }
    } catch {
      cr.check('toc.dat', false, started);
      cr.problem('pg-directory-invalid', 'has no toc.dat: not a pg_dump directory-format dump');
      return;
    }
  } else {
    let head: Buffer;
    try {
      ({ head } = await readEdges(c.path, c.size));
    } catch (error) {
      return readFailure(cr, error as Error);
    }
    const magic = head.subarray(0, 5).toString('latin1') === 'PGDMP';
    cr.check('archive header', magic, started, magic ? 'PGDMP' : 'no PGDMP magic');
    if (!magic) {
      cr.problem('pg-custom-bad-header', 'does not start with "PGDMP": not a pg_dump custom-format archive, or damaged');
      return;
    }
  }
  const pgRestore = await findPgTool('pg_restore', opts.pgBin ? { binDir: opts.pgBin } : {});
  if (!pgRestore) {
    cr.problem(
      'tool-missing',
      'pg_restore was not found (PATH, /usr/lib/postgresql/*/bin); install the PostgreSQL client (Debian: postgresql-client) and verify again',
    );
    return;
  }
  cr.facts['pgRestore'] = pgRestore;
  started = performance.now();
  const listed = await run_(pgRestore, ['--list', c.path], signalOpt, 5 * 60_000);
  cr.check('pg_restore --list', listed.ok, started, listed.ok ? undefined : toolTail(listed.stderrTail));
  if (!listed.ok) {
    const tail = toolTail(listed.stderrTail);
    const newer = /unsupported version/i.test(tail)
      ? ` (the dump was made by a newer pg_dump than ${pgRestore}; install a newer PostgreSQL client, or set postgres.bin in the recipe)`
      : '';
    cr.problem('pg-restore-list-failed', `pg_restore --list failed: ${tail || `exit ${String(listed.exitCode)}`}${newer}`);
    return;
  }
  Object.assign(cr.facts, restoreListFacts(listed.stdout));

  const onBytes = progressReporter(cr, c.size, opts.onProgress);
  if (opts.depth === 'deep') {
    // Read every data block: pg_restore writes the whole script to /dev/null. A truncated or
    // damaged archive fails here even when its TOC (at the start) is intact.
    started = performance.now();
    const [readThrough, pass] = await Promise.all([
      run_(pgRestore, ['--file=/dev/null', c.path], signalOpt, 0),
      isDir ? Promise.resolve(undefined) : streamPass(c.path, { hash: true, gunzip: false, onBytes, ...signalOpt }),
    ]);
    if (pass?.readError) return readFailure(cr, pass.readError);
    if (pass) {
      cr.sha256 = pass.sha256;
      cr.identity = pass.identity;
      checksumOutcome(cr, pass.sha256, started);
    }
    cr.check(
      'pg_restore read-through',
      readThrough.ok,
      started,
      readThrough.ok ? 'every data block read' : toolTail(readThrough.stderrTail),
    );
    if (!readThrough.ok)
      cr.problem(
        'pg-restore-read-failed',
        `reading the whole archive failed: ${toolTail(readThrough.stderrTail) || `exit ${String(readThrough.exitCode)}`}`,
      );
  } else if (c.expectedSha256 && !isDir) {
    started = performance.now();
    const pass = await streamPass(c.path, { hash: true, gunzip: false, onBytes, ...signalOpt });
    if (pass.readError) return readFailure(cr, pass.readError);
    cr.sha256 = pass.sha256;
    cr.identity = pass.identity;
    checksumOutcome(cr, pass.sha256, started);
  }
}
