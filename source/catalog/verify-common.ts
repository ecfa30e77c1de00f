import { createHash } from 'node:crypto';
import { componentLabel } from './types.js';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import zlib from 'node:zlib';
import { run } from '../exec/run.js';
import { assertRegularFile, READ_CHUNK } from './checksums.js';
import { sanitizeText } from '../text/sanitize.js';
import type { BackupComponent, ComponentKind, ComponentVerification, DumpScan, FileIdentity, VerifyProblem } from './types.js';
import { fileIdentity, sameIdentity } from './identity.js';

/**
 * What every component's verification shares: the options, the per-component record of checks and
 * problems (ComponentRun), one streaming pass over a file (hash, gunzip, edges, progress), and the
 * read-only tool runner. The per-component checks are verify-postgres.ts, verify-redis.ts and
 * verify-prometheus.ts; verify.ts runs them for a set.
 */

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

/** Bytes of a plain dump's beginning and end that are looked at. */
const EDGE_BYTES = 64 * 1024;

export class ComponentRun {
  readonly checks: ComponentVerification['checks'] = [];
  readonly problems: VerifyProblem[] = [];
  readonly facts: Record<string, unknown> = {};
  sha256: string | undefined;
  /** Identity of the file the sha256 was taken from (the restore checks it is still the same file). */
  identity: FileIdentity | undefined;
  /** A plain dump's role scan from the same read as sha256 (see ComponentVerification.dumpScan). */
  dumpScan: DumpScan | undefined;
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
export async function streamPass(
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
    opts.signal?.throwIfAborted();
    fh = await open(file, 'r');
    before = fileIdentity(await fh.stat());
    // Never hand an already-aborted signal to the read stream: a FileHandle stream with autoClose
    // false emits that AbortError a second time after the loop below has thrown it and let go of the
    // stream, with no listener left, which kills the process (uncaught 'error' event; Node 20). An
    // abort in the awaits above (the guide's SIGTERM while verifying) did exactly that: exit 1
    // before the session released its locks. From here on the loop starts at once, and an abort
    // during the read is reported once, through the loop.
    opts.signal?.throwIfAborted();
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

/**
 * Remembers the first and last EDGE_BYTES of a stream: enough for a plain dump's header and closing line.
 * The last ones in a ring of EDGE_BYTES allocated once: no Buffer per chunk (each chunk of a
 * gigabyte-sized stream copied into a new one was garbage for the GC to find, issue 14).
 */
export class EdgeScanner extends Writable {
  head = Buffer.alloc(0);
  bytes = 0;
  private readonly ring = Buffer.alloc(EDGE_BYTES);
  /** Where the next byte goes in the ring; once `filled`, also where the oldest byte is. */
  private at = 0;
  private filled = 0;
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (error?: Error | null) => void): void {
    this.bytes += chunk.length;
    if (this.head.length < EDGE_BYTES) this.head = Buffer.concat([this.head, chunk.subarray(0, EDGE_BYTES - this.head.length)]);
    const last = chunk.length > EDGE_BYTES ? chunk.subarray(chunk.length - EDGE_BYTES) : chunk;
    const first = Math.min(last.length, EDGE_BYTES - this.at);
    last.copy(this.ring, this.at, 0, first);
    last.copy(this.ring, 0, first);
    this.at = (this.at + last.length) % EDGE_BYTES;
    this.filled = Math.min(EDGE_BYTES, this.filled + last.length);
    cb();
  }
  /** The last min(bytes, EDGE_BYTES) bytes, in order (a copy). */
  get tail(): Buffer {
    if (this.filled < EDGE_BYTES) return Buffer.from(this.ring.subarray(0, this.filled));
    return Buffer.concat([this.ring.subarray(this.at), this.ring.subarray(0, this.at)]);
  }
}

/** Hands every chunk to two synchronous consumers (the edge scanner and the meta-command scanner). */
export class Fanout extends Writable {
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

export async function readEdges(file: string, size: number): Promise<{ head: Buffer; tail: Buffer }> {
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

export function progressReporter(cr: ComponentRun, total: number, onProgress: VerifyOptions['onProgress']): (n: number) => void {
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

export function gzipHeaderOk(head: Buffer): boolean {
  return head.length >= 10 && head[0] === 0x1f && head[1] === 0x8b && head[2] === 8;
}

export function checksumOutcome(cr: ComponentRun, sha256: string | undefined, started: number): void {
  const expected = cr.component.expectedSha256;
  if (!expected || !sha256) return;
  const ok = sha256 === expected.toLowerCase();
  cr.check(
    'sha256',
    ok,
    started,
    ok ? `matches ${cr.component.checksumSource ?? 'expected'} digest` : `expected ${expected}, got ${sha256}`,
  );
  if (!ok)
    cr.problem(
      'checksum-mismatch',
      `sha256 does not match ${cr.component.checksumSource ?? 'the expected digest'} (expected ${expected.slice(0, 16)}…, got ${sha256.slice(0, 16)}…)`,
    );
}

export function readFailure(cr: ComponentRun, error: Error): void {
  const code = (error as NodeJS.ErrnoException).code;
  cr.problem('unreadable', `cannot be read (${code ?? error.message})`);
}

export function gzipProblem(cr: ComponentRun, error: Error): void {
  const msg = error.message;
  if (/unexpected end of file/i.test(msg)) cr.problem('gzip-truncated', 'the gzip stream ends early: the file is truncated');
  else cr.problem('gzip-corrupt', `the gzip stream is damaged (${sanitizeText(msg, 120)})`);
}

export function toolTail(lines: string[]): string {
  return lines
    .slice(-3)
    .map((l) => sanitizeText(l, 200))
    .join(' | ');
}

export async function run_(file: string, args: string[], signalOpt: { signal?: AbortSignal }, timeoutMs: number): ReturnType<typeof run> {
  return run([file, ...args], { ...signalOpt, ...(timeoutMs > 0 ? { timeoutMs } : {}), tailLines: 10, maxStdoutBytes: 32 * 1024 * 1024 });
}
