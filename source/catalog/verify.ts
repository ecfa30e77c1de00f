import { createHash } from 'node:crypto';
import { componentLabel } from './types.js';
import { parseRestoreList } from './pg-restore-list.js';
import { open, stat } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import zlib from 'node:zlib';
import { Parser } from 'tar';
import { run } from '../exec/run.js';
import { assertRegularFile, READ_CHUNK } from './checksums.js';
import { sanitizeText } from '../text/sanitize.js';
import { databaseClaims, databaseMismatches, describeMismatch } from './database-identity.js';
import { MetaCommandScanner, type MetaScanResult } from './meta-scan.js';
import { checkTarEntry, PrometheusShape } from './tar-safety.js';
import { findPgTool, findRedisCheckRdb } from './tools.js';
import type { BackupComponent, BackupSet, ComponentKind, ComponentVerification, FileIdentity, VerifyProblem, VerifyReport } from './types.js';
import { fileIdentity, sameIdentity } from './identity.js';

export interface VerifyProgress {
  component: ComponentKind;
  path: string;
  bytesDone: number;
  bytesTotal: number;
}

export interface VerifyOptions {
  /** quick: checksums, headers, pg_restore --list; deep: whole streams, every tar entry, redis-check-rdb. */
  depth: 'quick' | 'deep';
  /** Components the recipe expects; a set lacking one is rejected. */
  expect?: ComponentKind[];
  onProgress?: (p: VerifyProgress) => void;
  signal?: AbortSignal;
  /** Directory of PostgreSQL client binaries (recipe postgres.bin). */
  pgBin?: string;
  /**
   * The recipe's target database: a set whose dump or metadata names another is rejected with
   * 'database-mismatch' (restore --allow-database-mismatch overrides exactly that problem).
   */
  expectDatabase?: string;
}

const PLAIN_HEADER = '-- PostgreSQL database dump';
const PLAIN_COMPLETE = '-- PostgreSQL database dump complete';
/** Bytes of a plain dump's beginning and end that are looked at. */
const EDGE_BYTES = 64 * 1024;
const MAX_TAR_PROBLEMS = 20;

/** What a quick verification leaves out, per format (recorded so nobody mistakes quick for deep). */
const QUICK_SKIPS: Record<BackupComponent['format'], string[]> = {
  'pg-plain': ['psql meta-commands'],
  'pg-plain-gz': ['gzip stream', 'dump complete line', 'psql meta-commands'],
  'pg-custom': ['pg_restore read-through (data blocks)'],
  'pg-directory': ['pg_restore read-through (data blocks)'],
  'redis-rdb': ['redis-check-rdb'],
  'prometheus-tar-gz': ['gzip stream', 'tar entries', 'prometheus data dir'],
};

class ComponentRun {
  readonly checks: ComponentVerification['checks'] = [];
  readonly problems: VerifyProblem[] = [];
  readonly facts: Record<string, unknown> = {};
  sha256: string | undefined;
  /** Identity of the file the sha256 was taken from (the restore checks it is still the same file). */
  identity: FileIdentity | undefined;
  constructor(readonly component: BackupComponent) {}

  check(name: string, ok: boolean, started: number, detail?: string): void {
    this.checks.push({ name, ok, durationMs: Math.round(performance.now() - started), ...(detail ? { detail } : {}) });
  }

  problem(code: string, message: string, line?: number): void {
    this.problems.push({
      component: this.component.kind,
      path: this.component.path,
      code,
      message: `${componentLabel[this.component.kind]} ${sanitizeText(path.basename(this.component.path), 120)}: ${message}`,
      ...(line !== undefined ? { line } : {}),
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Streaming helpers
// ---------------------------------------------------------------------------------------------

interface PassResult {
  sha256?: string;
  /** fstat of the descriptor that was hashed, taken before the read (undefined if it changed during the read). */
  identity?: FileIdentity;
  bytes: number;
  readError?: Error;
  inflateError?: Error;
  consumerError?: Error;
  uncompressedBytes: number;
}

function waitDrain(stream: Writable): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      stream.off('drain', done);
      stream.off('error', done);
      stream.off('close', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('error', done);
    stream.on('close', done);
  });
}

function finish(stream: Writable): Promise<void> {
  return new Promise((resolve) => {
    if (stream.writableFinished || stream.destroyed) {
      resolve();
      return;
    }
    const done = (): void => {
      stream.off('finish', done);
      stream.off('error', done);
      stream.off('close', done);
      resolve();
    };
    stream.on('finish', done);
    stream.on('error', done);
    stream.on('close', done);
  });
}

/**
 * Read a file once: hash it (optional), feed it (optionally through gunzip) to a consumer.
 * A broken gzip stream or consumer does not stop the read, so the checksum is still decided.
 * Memory stays flat: one READ_CHUNK in flight, backpressure respected.
 */
async function streamPass(
  file: string,
  opts: { hash: boolean; gunzip: boolean; consumer?: Writable; onBytes?: (n: number) => void; signal?: AbortSignal },
): Promise<PassResult> {
  const hash = opts.hash ? createHash('sha256') : undefined;
  const result: PassResult = { bytes: 0, uncompressedBytes: 0 };
  let downstream: Writable | undefined;
  let consumerDone: Promise<void> = Promise.resolve();
  if (opts.gunzip) {
    const gunzip = zlib.createGunzip({ chunkSize: 64 * 1024 });
    gunzip.on('error', (e) => {
      result.inflateError ??= e;
    });
    gunzip.on('data', (chunk: Buffer) => {
      result.uncompressedBytes += chunk.length;
      const consumer = opts.consumer;
      if (consumer && !consumer.destroyed && result.consumerError === undefined) {
        if (!consumer.write(chunk)) {
          gunzip.pause();
          consumer.once('drain', () => gunzip.resume());
        }
      }
    });
    const consumer = opts.consumer;
    if (consumer) {
      consumer.on('error', (e) => {
        result.consumerError ??= e;
        gunzip.resume();
      });
      consumerDone = new Promise((resolve) => {
        gunzip.on('end', () => {
          consumer.end();
          void finish(consumer).then(resolve);
        });
        gunzip.on('error', () => {
          consumer.destroy();
          resolve();
        });
      });
    } else {
      consumerDone = new Promise((resolve) => {
        gunzip.on('end', resolve);
        gunzip.on('error', () => resolve());
        gunzip.resume();
      });
    }
    downstream = gunzip;
  } else if (opts.consumer) {
    const consumer = opts.consumer;
    consumer.on('error', (e) => {
      result.consumerError ??= e;
    });
    downstream = consumer;
    consumerDone = Promise.resolve();
  }

  let before: FileIdentity | undefined;
  let fh: Awaited<ReturnType<typeof open>> | undefined;
  try {
    // One descriptor for the identity and the bytes: what is hashed is what the identity names.
    fh = await open(file, 'r');
    before = fileIdentity(await fh.stat());
    const stream = fh.createReadStream({ highWaterMark: READ_CHUNK, autoClose: false, ...(opts.signal ? { signal: opts.signal } : {}) });
    for await (const raw of stream) {
      const chunk = raw as Buffer;
      hash?.update(chunk);
      result.bytes += chunk.length;
      opts.onBytes?.(result.bytes);
      if (downstream && !downstream.destroyed && !(opts.gunzip ? result.inflateError : result.consumerError)) {
        if (!downstream.write(chunk)) await waitDrain(downstream);
      }
    }
    const after = fileIdentity(await fh.stat());
    if (sameIdentity(before, after)) result.identity = before;
    else result.readError = new Error('the file changed while it was being read');
  } catch (error) {
    if (opts.signal?.aborted) throw error;
    result.readError = error as Error;
  } finally {
    await fh?.close().catch(() => undefined);
  }
  if (downstream && !downstream.destroyed) {
    downstream.end();
    await finish(downstream);
  }
  await consumerDone;
  if (hash && !result.readError) result.sha256 = hash.digest('hex');
  return result;
}

/** Remembers the first and last EDGE_BYTES of a stream: enough for a plain dump's header and closing line. */
class EdgeScanner extends Writable {
  head = Buffer.alloc(0);
  tail = Buffer.alloc(0);
  bytes = 0;
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (error?: Error | null) => void): void {
    this.bytes += chunk.length;
    if (this.head.length < EDGE_BYTES) this.head = Buffer.concat([this.head, chunk.subarray(0, EDGE_BYTES - this.head.length)]);
    const joined = chunk.length >= EDGE_BYTES ? chunk.subarray(chunk.length - EDGE_BYTES) : Buffer.concat([this.tail, chunk]);
    this.tail = Buffer.from(joined.length > EDGE_BYTES ? joined.subarray(joined.length - EDGE_BYTES) : joined);
    cb();
  }
}

/** Hands every chunk to two synchronous consumers (the edge scanner and the meta-command scanner). */
class Fanout extends Writable {
  constructor(private readonly targets: Writable[]) {
    super();
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (error?: Error | null) => void): void {
    let pending = this.targets.length;
    let failed = false;
    for (const t of this.targets) {
      t.write(chunk, (error) => {
        if (failed) return;
        if (error) {
          failed = true;
          cb(error);
        } else if (--pending === 0) cb();
      });
    }
  }
  override _final(cb: (error?: Error | null) => void): void {
    for (const t of this.targets) t.end();
    void Promise.all(this.targets.map((t) => finish(t))).then(() => cb());
  }
}

async function readEdges(file: string, size: number): Promise<{ head: Buffer; tail: Buffer }> {
  await assertRegularFile(file);
  const fh = await open(file, 'r');
  try {
    const headLen = Math.min(size, EDGE_BYTES);
    const head = Buffer.alloc(headLen);
    await fh.read(head, 0, headLen, 0);
    const tailLen = Math.min(size, EDGE_BYTES);
    const tail = Buffer.alloc(tailLen);
    await fh.read(tail, 0, tailLen, size - tailLen);
    return { head, tail };
  } finally {
    await fh.close();
  }
}

function progressReporter(cr: ComponentRun, total: number, onProgress: VerifyOptions['onProgress']): (n: number) => void {
  let last = 0;
  return (n) => {
    if (!onProgress) return;
    if (n - last >= 8 * READ_CHUNK || n === total) {
      last = n;
      onProgress({ component: cr.component.kind, path: cr.component.path, bytesDone: n, bytesTotal: total });
    }
  };
}

// ---------------------------------------------------------------------------------------------
// Per-format checks
// ---------------------------------------------------------------------------------------------

function gzipHeaderOk(head: Buffer): boolean {
  return head.length >= 10 && head[0] === 0x1f && head[1] === 0x8b && head[2] === 8;
}

function checksumOutcome(cr: ComponentRun, sha256: string | undefined, started: number): void {
  const expected = cr.component.expectedSha256;
  if (!expected || !sha256) return;
  const ok = sha256 === expected.toLowerCase();
  cr.check('sha256', ok, started, ok ? `matches ${cr.component.checksumSource ?? 'expected'} digest` : `expected ${expected}, got ${sha256}`);
  if (!ok) cr.problem('checksum-mismatch', `sha256 does not match ${cr.component.checksumSource ?? 'the expected digest'} (expected ${expected.slice(0, 16)}…, got ${sha256.slice(0, 16)}…)`);
}

function readFailure(cr: ComponentRun, error: Error): void {
  const code = (error as NodeJS.ErrnoException).code;
  cr.problem('unreadable', `cannot be read (${code ?? error.message})`);
}

/** Judge a plain dump's head and tail text. */
function judgePlain(cr: ComponentRun, head: Buffer, tail: Buffer, started: number, wholeStream: boolean): void {
  const headText = head.toString('utf8');
  const firstLines = headText.split('\n').slice(0, 40);
  const hasHeader = firstLines.some((l) => l.trimEnd() === PLAIN_HEADER);
  cr.check('dump header', hasHeader, started, hasHeader ? PLAIN_HEADER : 'no "-- PostgreSQL database dump" line at the start');
  if (!hasHeader) cr.problem('pg-dump-header-missing', 'does not start with "-- PostgreSQL database dump": not a plain pg_dump file, or damaged');
  const restrict = firstLines.find((l) => /^\\restrict\s+\S+/.test(l));
  cr.facts['plainDumpHasRestrictLine'] = Boolean(restrict);
  const from = /^-- Dumped from database version (.+)$/m.exec(headText)?.[1];
  const by = /^-- Dumped by pg_dump version (.+)$/m.exec(headText)?.[1];
  if (from) cr.facts['pgServerVersion'] = sanitizeText(from.trim(), 80);
  if (by) cr.facts['pgDumpVersion'] = sanitizeText(by.trim(), 80);
  const tailLines = tail.toString('utf8').split('\n').map((l) => l.trimEnd());
  const complete = tailLines.slice(-40).includes(PLAIN_COMPLETE);
  cr.check('dump complete line', complete, started, complete ? PLAIN_COMPLETE : `no "${PLAIN_COMPLETE}" line at the end${wholeStream ? '' : ' (quick: tail only)'}`);
  if (!complete) cr.problem('pg-dump-incomplete', `does not end with "${PLAIN_COMPLETE}": the dump was cut short (pg_dump failed or the file is truncated)`);
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
    cr.problem('pg-dumpall', 'is a pg_dumpall cluster dump (roles, every database, \\connect between them); this tool restores one database into the recipe\'s target. Dump the one database with pg_dump (-Fc), or restore a cluster dump by hand.');
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
    const why = i === 0 ? " (a pg_dump of one database holds none besides its own \\restrict/\\unrestrict pair: this file was altered, or is not such a dump; a restore's psql would refuse it, as it runs restricted)" : '';
    cr.problem('psql-meta-command', `line ${f.line}: psql meta-command ${f.command} outside COPY data: ${f.text}${why}`, f.line);
  });
  if (scan.total > MAX_META_PROBLEMS) cr.problem('psql-meta-command', `${scan.total - MAX_META_PROBLEMS} more psql meta-commands not listed`);
  if (scan.standardStrings) {
    cr.problem(
      'standard-conforming-strings',
      `line ${scan.standardStrings.line}: changes standard_conforming_strings (${scan.standardStrings.text}); pg_dump only ever sets it on, and a change alters how psql reads backslashes, so the rest cannot be checked for meta-commands`,
      scan.standardStrings.line,
    );
  }
}

function gzipProblem(cr: ComponentRun, error: Error): void {
  const msg = error.message;
  if (/unexpected end of file/i.test(msg)) cr.problem('gzip-truncated', 'the gzip stream ends early: the file is truncated');
  else cr.problem('gzip-corrupt', `the gzip stream is damaged (${sanitizeText(msg, 120)})`);
}

async function verifyPlain(cr: ComponentRun, opts: VerifyOptions, gz: boolean): Promise<void> {
  const c = cr.component;
  const onBytes = progressReporter(cr, c.size, opts.onProgress);
  const wantHash = opts.depth === 'deep' || Boolean(c.expectedSha256);
  if (opts.depth === 'deep') {
    const started = performance.now();
    const scanner = new EdgeScanner();
    const meta = new MetaCommandScanner();
    const pass = await streamPass(c.path, { hash: true, gunzip: gz, consumer: new Fanout([scanner, meta]), onBytes, ...(opts.signal ? { signal: opts.signal } : {}) });
    if (pass.readError) return readFailure(cr, pass.readError);
    cr.sha256 = pass.sha256;
    cr.identity = pass.identity;
    checksumOutcome(cr, pass.sha256, started);
    if (gz) {
      const { head } = await readEdges(c.path, c.size);
      cr.check('gzip header', gzipHeaderOk(head), started);
      if (!gzipHeaderOk(head)) {
        cr.problem('gzip-bad-header', 'is not a gzip file (bad magic bytes)');
        return;
      }
      cr.check('gzip stream', !pass.inflateError, started, pass.inflateError ? pass.inflateError.message : `${pass.uncompressedBytes} bytes uncompressed, CRC ok`);
      cr.facts['uncompressedBytes'] = pass.uncompressedBytes;
      if (pass.inflateError) gzipProblem(cr, pass.inflateError);
    }
    judgePlain(cr, scanner.head, scanner.tail, started, true);
    judgeMetaCommands(cr, meta.result, started);
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
      const hasHeader = headText.split('\n').slice(0, 40).some((l) => l.trimEnd() === PLAIN_HEADER);
      cr.check('dump header', hasHeader, started, hasHeader ? PLAIN_HEADER : 'no "-- PostgreSQL database dump" line at the start');
      if (!hasHeader && inflated.length > 0) cr.problem('pg-dump-header-missing', 'does not start with "-- PostgreSQL database dump": not a plain pg_dump file, or damaged');
      cr.facts['plainDumpHasRestrictLine'] = headText.split('\n').slice(0, 40).some((l) => /^\\restrict\s+\S+/.test(l));
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

function toolTail(lines: string[]): string {
  return lines
    .slice(-3)
    .map((l) => sanitizeText(l, 200))
    .join(' | ');
}

async function verifyPgArchive(cr: ComponentRun, opts: VerifyOptions): Promise<void> {
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
    cr.problem('tool-missing', 'pg_restore was not found (PATH, /usr/lib/postgresql/*/bin); install the PostgreSQL client (Debian: postgresql-client) and verify again');
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
    cr.check('pg_restore read-through', readThrough.ok, started, readThrough.ok ? 'every data block read' : toolTail(readThrough.stderrTail));
    if (!readThrough.ok) cr.problem('pg-restore-read-failed', `reading the whole archive failed: ${toolTail(readThrough.stderrTail) || `exit ${String(readThrough.exitCode)}`}`);
  } else if (c.expectedSha256 && !isDir) {
    started = performance.now();
    const pass = await streamPass(c.path, { hash: true, gunzip: false, onBytes, ...signalOpt });
    if (pass.readError) return readFailure(cr, pass.readError);
    cr.sha256 = pass.sha256;
    cr.identity = pass.identity;
    checksumOutcome(cr, pass.sha256, started);
  }
}

async function run_(file: string, args: string[], signalOpt: { signal?: AbortSignal }, timeoutMs: number): ReturnType<typeof run> {
  return run([file, ...args], { ...signalOpt, ...(timeoutMs > 0 ? { timeoutMs } : {}), tailLines: 10, maxStdoutBytes: 32 * 1024 * 1024 });
}

async function verifyRedis(cr: ComponentRun, opts: VerifyOptions): Promise<void> {
  const c = cr.component;
  const signalOpt = opts.signal ? { signal: opts.signal } : {};
  let started = performance.now();
  let head: Buffer;
  let tail: Buffer;
  try {
    ({ head, tail } = await readEdges(c.path, c.size));
  } catch (error) {
    return readFailure(cr, error as Error);
  }
  const magic = /^REDIS(\d{4})$/.exec(head.subarray(0, 9).toString('latin1'));
  cr.check('rdb header', Boolean(magic), started, magic ? `RDB version ${Number(magic[1])}` : 'no REDIS magic');
  if (!magic) {
    cr.problem('rdb-bad-header', 'does not start with "REDIS" and a version: not an RDB file, or damaged');
    return;
  }
  const rdbVersion = Number(magic[1]);
  cr.facts['rdbVersion'] = rdbVersion;
  if (rdbVersion >= 5) {
    // The file ends with the EOF opcode (0xFF) and an 8-byte CRC64.
    const eofOk = tail.length >= 9 && tail[tail.length - 9] === 0xff;
    cr.check('rdb end marker', eofOk, started, eofOk ? 'EOF opcode and checksum present' : 'no EOF opcode before the checksum');
    if (!eofOk) cr.problem('rdb-truncated', 'does not end with the RDB EOF marker: the file is truncated');
  }
  const onBytes = progressReporter(cr, c.size, opts.onProgress);
  if (opts.depth === 'deep' || c.expectedSha256) {
    started = performance.now();
    const pass = await streamPass(c.path, { hash: true, gunzip: false, onBytes, ...signalOpt });
    if (pass.readError) return readFailure(cr, pass.readError);
    cr.sha256 = pass.sha256;
    cr.identity = pass.identity;
    checksumOutcome(cr, pass.sha256, started);
  }
  if (opts.depth !== 'deep') return;
  const tool = await findRedisCheckRdb();
  if (!tool) {
    cr.problem('tool-missing', 'redis-check-rdb was not found on PATH; install it (Debian: redis-tools) and verify again');
    return;
  }
  started = performance.now();
  const res = await run_(tool, [c.path], signalOpt, 0);
  const out = `${res.stdout}\n${res.stderr}`;
  const keys = /\[info\]\s+(\d+)\s+keys read/.exec(out)?.[1];
  const expires = /\[info\]\s+(\d+)\s+expires/.exec(out)?.[1];
  const ver = /AUX FIELD redis-ver = '([^']{1,40})'/.exec(out)?.[1];
  const ctime = /AUX FIELD ctime = '(\d{1,12})'/.exec(out)?.[1];
  if (keys !== undefined) cr.facts['redisKeys'] = Number(keys);
  if (expires !== undefined) cr.facts['redisExpires'] = Number(expires);
  if (ver) cr.facts['redisVersion'] = sanitizeText(ver, 40);
  if (ctime) cr.facts['redisCtime'] = new Date(Number(ctime) * 1000).toISOString();
  const looksOk = res.ok && /RDB looks OK/.test(out);
  const errorLines = out
    .split('\n')
    .filter((l) => /^\[offset \d+\] (?!Checking|AUX|Selecting|Checksum OK|\\o\/)/.test(l) || /^\[additional info\]/.test(l))
    .slice(0, 3);
  cr.check('redis-check-rdb', looksOk, started, looksOk ? `${keys ?? '?'} keys read` : toolTail(errorLines.length > 0 ? errorLines : res.stderrTail));
  if (!looksOk) cr.problem('rdb-check-failed', `redis-check-rdb found an error: ${toolTail(errorLines.length > 0 ? errorLines : [...res.stdoutTail, ...res.stderrTail]) || `exit ${String(res.exitCode)}`}`);
}

async function verifyPrometheus(cr: ComponentRun, opts: VerifyOptions): Promise<void> {
  const c = cr.component;
  const signalOpt = opts.signal ? { signal: opts.signal } : {};
  let started = performance.now();
  let head: Buffer;
  try {
    ({ head } = await readEdges(c.path, c.size));
  } catch (error) {
    return readFailure(cr, error as Error);
  }
  const gzOk = gzipHeaderOk(head);
  cr.check('gzip header', gzOk, started);
  if (!gzOk) {
    cr.problem('gzip-bad-header', 'is not a gzip file (bad magic bytes)');
    return;
  }
  const onBytes = progressReporter(cr, c.size, opts.onProgress);
  if (opts.depth !== 'deep') {
    if (c.expectedSha256) {
      started = performance.now();
      const pass = await streamPass(c.path, { hash: true, gunzip: false, onBytes, ...signalOpt });
      if (pass.readError) return readFailure(cr, pass.readError);
      cr.sha256 = pass.sha256;
      cr.identity = pass.identity;
      checksumOutcome(cr, pass.sha256, started);
    }
    return;
  }
  started = performance.now();
  const shape = new PrometheusShape();
  let unsafe = 0;
  const tarWarnings: string[] = [];
  const parser = new Parser({
    onReadEntry: (entry) => {
      shape.add(entry.path);
      const p = checkTarEntry({ path: entry.path, type: entry.type, ...(entry.linkpath !== undefined ? { linkpath: entry.linkpath } : {}) });
      if (p) {
        unsafe++;
        if (unsafe <= MAX_TAR_PROBLEMS) cr.problem(p.code, p.message);
      }
      entry.resume();
    },
    onwarn: (code: string, message: string | Error) => {
      if (tarWarnings.length < 5) tarWarnings.push(`${code}: ${sanitizeText(typeof message === 'string' ? message : message.message, 160)}`);
    },
  });
  const pass = await streamPass(c.path, { hash: true, gunzip: true, consumer: parser as unknown as Writable, onBytes, ...signalOpt });
  if (pass.readError) return readFailure(cr, pass.readError);
  cr.sha256 = pass.sha256;
  cr.identity = pass.identity;
  checksumOutcome(cr, pass.sha256, started);
  cr.check('gzip stream', !pass.inflateError, started, pass.inflateError ? pass.inflateError.message : `${pass.uncompressedBytes} bytes uncompressed, CRC ok`);
  cr.facts['uncompressedBytes'] = pass.uncompressedBytes;
  if (pass.inflateError) gzipProblem(cr, pass.inflateError);
  if (unsafe > MAX_TAR_PROBLEMS) cr.problem('tar-unsafe-path', `${unsafe - MAX_TAR_PROBLEMS} more unsafe entries not listed`);
  const tarOk = tarWarnings.length === 0 && !pass.consumerError;
  if (!pass.inflateError && !tarOk) {
    cr.problem('tar-corrupt', `the tar archive is damaged: ${pass.consumerError ? sanitizeText(pass.consumerError.message, 160) : tarWarnings.join('; ')}`);
  }
  cr.check('tar entries', unsafe === 0 && tarOk, started, `${shape.entries} entries${unsafe > 0 ? `, ${unsafe} unsafe` : ''}`);
  cr.facts['tarEntries'] = shape.entries;
  cr.facts['prometheusBlocks'] = shape.blockCount;
  cr.facts['hasWal'] = shape.hasWal;
  cr.facts['hasChunksHead'] = shape.hasChunksHead;
  if (pass.inflateError) return;
  const shapeProblem = shape.entries > 0 ? shape.problem() : { code: 'prometheus-shape', message: 'the archive holds no entries' };
  cr.check('prometheus data dir', !shapeProblem, started, shapeProblem ? shapeProblem.message : `${shape.blockCount} blocks${shape.hasWal ? ', wal/' : ''}${shape.hasChunksHead ? ', chunks_head/' : ''}`);
  if (shapeProblem) cr.problem(shapeProblem.code, shapeProblem.message);
}

async function verifyComponent(component: BackupComponent, opts: VerifyOptions): Promise<{ verification: ComponentVerification; problems: VerifyProblem[] }> {
  const started = performance.now();
  let size = component.size;
  let statError: NodeJS.ErrnoException | undefined;
  let special = false;
  try {
    const s = await stat(component.path);
    special = !s.isFile() && !s.isDirectory();
    if (!s.isDirectory()) size = s.size;
  } catch (error) {
    statError = error as NodeJS.ErrnoException;
  }
  const r = new ComponentRun({ ...component, size });
  if (special) {
    r.check('regular file', false, started);
    r.problem('not-a-file', 'is a device, FIFO or socket, not a backup file (not read)');
  } else if (statError) {
    r.check('exists', false, started, statError.code);
    if (statError.code === 'ENOENT') r.problem('missing-file', 'no longer exists');
    else r.problem('unreadable', `cannot be read (${statError.code ?? 'error'})`);
  } else if (size === 0) {
    r.check('size', false, started, '0 bytes');
    r.problem('empty-file', 'is empty (0 bytes)');
  } else {
    r.check('size', true, started, `${size} bytes`);
    switch (component.format) {
      case 'pg-plain':
        await verifyPlain(r, opts, false);
        break;
      case 'pg-plain-gz':
        await verifyPlain(r, opts, true);
        break;
      case 'pg-custom':
      case 'pg-directory':
        await verifyPgArchive(r, opts);
        break;
      case 'redis-rdb':
        await verifyRedis(r, opts);
        break;
      case 'prometheus-tar-gz':
        await verifyPrometheus(r, opts);
        break;
    }
    if (opts.depth === 'quick') r.facts['notChecked'] = QUICK_SKIPS[component.format];
  }
  opts.signal?.throwIfAborted();
  if (r.identity) {
    // Other checks (pg_restore, redis-check-rdb) open the path themselves: it must still be the hashed file.
    const now = await stat(component.path).then(fileIdentity, () => undefined);
    if (!now || !sameIdentity(r.identity, now)) {
      r.check('unchanged', false, started, 'replaced or modified during verification');
      r.problem('changed-during-verify', 'was replaced or modified while it was being verified: verify it again when nothing writes to the backup store');
    }
  }
  const checksum = component.expectedSha256
    ? r.problems.some((p) => p.code === 'checksum-mismatch')
      ? 'mismatch'
      : r.checks.some((ch) => ch.name === 'sha256' && ch.ok)
        ? 'verified'
        : 'present'
    : 'absent';
  return {
    verification: {
      kind: component.kind,
      path: component.path,
      format: component.format,
      size,
      checks: r.checks,
      ...(r.sha256 ? { sha256: r.sha256 } : {}),
      ...(r.identity ? { identity: r.identity } : {}),
      checksum,
      facts: r.facts,
      ok: r.problems.length === 0,
    },
    problems: r.problems,
  };
}

/**
 * Prove a backup set is restorable without touching any system: every check reads files or
 * runs read-only tools (pg_restore --list / --file=/dev/null, redis-check-rdb) on them.
 */
export async function verifyBackupSet(set: BackupSet, opts: VerifyOptions): Promise<VerifyReport> {
  const startedAt = new Date();
  const t0 = performance.now();
  const components: ComponentVerification[] = [];
  const problems: VerifyProblem[] = [];
  for (const kind of opts.expect ?? []) {
    if (!set.components.some((c) => c.kind === kind)) {
      problems.push({ component: kind, code: 'component-missing', message: `${componentLabel[kind]}: the recipe expects a ${componentLabel[kind]} backup, but set ${set.id} has none` });
    }
  }
  if (set.components.length === 0) problems.push({ code: 'set-empty', message: `set ${set.id} holds no backup files` });
  for (const component of set.components) {
    opts.signal?.throwIfAborted();
    const { verification, problems: p } = await verifyComponent(component, opts);
    components.push(verification);
    problems.push(...p);
  }
  const pgComponent = set.components.find((c) => c.kind === 'postgres');
  if (opts.expectDatabase !== undefined && pgComponent) {
    const facts = components.find((c) => c.kind === 'postgres')?.facts ?? {};
    const dumpDb = typeof facts['dbname'] === 'string' ? facts['dbname'] : undefined;
    const source = pgComponent.format === 'pg-plain' || pgComponent.format === 'pg-plain-gz' ? 'the dump (CREATE DATABASE)' : 'the dump (archive TOC dbname)';
    for (const m of databaseMismatches(databaseClaims(set, dumpDb, source), opts.expectDatabase)) {
      problems.push({
        component: 'postgres',
        path: m.source.startsWith('metadata') ? path.join(set.location, 'metadata.txt') : pgComponent.path,
        code: 'database-mismatch',
        message: `PostgreSQL: ${describeMismatch(m, opts.expectDatabase)}: this set may be another database's backup`,
      });
    }
  }
  return {
    setId: set.id,
    ok: problems.length === 0,
    depth: opts.depth,
    components,
    problems,
    ...(set.warnings.length > 0 ? { warnings: [...set.warnings] } : {}),
    startedAt: startedAt.toISOString(),
    durationMs: Math.round(performance.now() - t0),
  };
}
