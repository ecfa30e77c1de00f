import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { FileHandle } from 'node:fs/promises';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, Writable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type { PlannedAction, PlannedCommand } from '../../actions/types.js';
import { PlainSectionSplitter, splitStagingParent, type DumpEntry, type SplitEvent } from '../../catalog/plain-sections.js';
import { isDecompressionDamage, postgresSessionEnd } from '../../exec/diagnose.js';
import type { Redactor } from '../../exec/redact.js';
import { run, type CommandEvent, type RunResult } from '../../exec/run.js';
import { createExclusive } from '../../exec/safe-fs.js';
import { forgetRunTempDir, makeRunTempDir } from '../run-temp.js';
import type { EngineEventBody } from '../events.js';
import { PsqlRestrictGuard, newRestrictKey } from '../psql-guard.js';
import { StripOwnershipAndAcl, throttle } from '../streams.js';
import { Scheduler, type Item } from './schedule.js';

/**
 * The parallel restore of a plain dump (issue 14). One pass over the verified file: its bytes are
 * hashed as read (the digest is checked against verification's before any post-data entry runs,
 * and the step fails on a mismatch), gunzipped, filtered like the single stream (ownership and
 * grants dropped under --missing-roles skip-ownership; pg_dump's own `\restrict` pair dropped and
 * the run's key put first, engine/psql-guard.ts) and cut at pg_dump's section markers
 * (catalog/plain-sections.ts). Pre-data streams straight into one psql; everything after it is
 * spilled to one file in a private 0700 staging dir (never held in memory; the preflight counts its
 * room, probe/ splitStaging) and run from there:
 * table data on `jobs` connections as soon as pre-data is done, each index and non-FK constraint
 * once its table is loaded, partition index attachments in order, foreign keys on `jobs`
 * connections (never two on one table at once), and the rest in dump order on one connection.
 *
 * Every connection is the plan's psql argv (-X, ON_ERROR_STOP, --no-password) fed
 * `\restrict <the run's key>` first, so every one refuses every meta-command exactly as the single
 * stream does; before each entry it gets the session settings (SET lines, search_path) in force at
 * that entry in the dump. An entry is done when psql prints a token of this run after it (a SELECT
 * of a random value the dump cannot know). The first connection that fails stops the others and
 * the step fails; the engine's rollback applies as for the single stream.
 */

/** What the parallel restore needs from engine/actions.ts (passed in: no import cycle). */
export interface SplitHelpers {
  emit: (body: EngineEventBody) => void;
  stepId: string;
  signal: AbortSignal;
  progressIntervalMs: number;
  secretEnv: (cmd: PlannedCommand) => { env: Record<string, string>; redact: Redactor };
  openVerified: (file: string) => Promise<{ fh: FileHandle; size: number }>;
  /** Records the consumed digest; throws when it is not the verified one. */
  consumed: (file: string, sha256: string, bytes: number) => void;
  forward: (extra?: (event: CommandEvent) => void) => (event: CommandEvent) => void;
  failure: (result: RunResult, redact: Redactor) => string;
  actionError: (message: string) => Error;
  interrupted: (what: string) => Error;
  /** Parent of the private staging dir (default splitStagingParent(): the temp dir, TMPDIR). */
  stagingParent?: string;
}

type ExecAction = Extract<PlannedAction, { type: 'exec' }>;

/**
 * Bytes in flight per stream (reads from the dump and the staging file, each connection's stdin):
 * psql takes its input in pipe-sized pieces, so bigger buffers add memory, not speed (issue 14: the
 * engine's peak RSS stays flat and under 150 MB whatever the dump's size).
 */
const CHUNK = 256 * 1024;

/**
 * Bytes of each table's data whose lines are counted: the rows of the whole table are estimated from
 * them, which weighs its indexes in the schedule (schedule.ts ROW_OVERHEAD) at the cost of one
 * search per line of the first MiB only.
 */
const ROW_SAMPLE = 1024 * 1024;

/** Line ends in the first `n` bytes of `buf`. */
function countLines(buf: Buffer, n: number): number {
  let lines = 0;
  for (let at = buf.indexOf(10); at !== -1 && at < n; at = buf.indexOf(10, at + 1)) lines++;
  return lines;
}

/** "name" with embedded quotes doubled (a name from the dump is data, never SQL). */
function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""').replace(/\0/g, '')}"`;
}

/** One psql process fed through stdin; `runEntry` resolves once psql has run the entry (or ended). */
class Connection {
  readonly stdin = new PassThrough({ highWaterMark: CHUNK });
  readonly result: Promise<RunResult>;
  ended = false;
  private waiting: { token: string; resolve: () => void } | undefined;
  /** Output lines of the token's SELECT still to swallow after the token. */
  private swallow: string[] = [];
  /** Settings this connection was given (or an entry set), reset when the next entry has none. */
  private dirty = new Set<string>();
  private seq = 0;

  constructor(
    readonly label: string,
    argv: string[],
    private readonly nonce: string,
    opts: { env: Record<string, string>; redact: Redactor; signal: AbortSignal; onEvent: (event: CommandEvent) => void },
    /** The run's key, sent first; undefined when the stream written brings it (the guard's first line). */
    key: string | undefined,
  ) {
    if (key !== undefined) this.stdin.write(`\\restrict ${key}\n`);
    this.result = run(argv, {
      env: opts.env,
      input: this.stdin,
      signal: opts.signal,
      redact: opts.redact,
      maxStdoutBytes: 64 * 1024,
      onEvent: (event) => {
        if (event.type === 'command-output' && event.stream === 'stdout' && this.ack(event.line)) return;
        opts.onEvent(event);
      },
    });
    void this.result.finally(() => {
      this.ended = true;
      this.waiting?.resolve();
    });
  }

  /** True when the stdout line is this run's plumbing (the token's SELECT output): it is not passed on. */
  private ack(line: string): boolean {
    if (this.swallow.length > 0 && line === this.swallow[0]) {
      this.swallow.shift();
      return true;
    }
    this.swallow = [];
    if (!line.includes(this.nonce)) {
      const separator = this.headerSeen && /^-+$/.test(line);
      this.headerSeen = false;
      return separator;
    }
    this.headerSeen = false;
    const w = this.waiting;
    if (w && line.trim() === w.token) {
      this.waiting = undefined;
      this.swallow = ['(1 row)', ''];
      w.resolve();
    } else this.headerSeen = true;
    return true;
  }

  private headerSeen = false;

  async write(data: Buffer | string): Promise<void> {
    if (this.ended) return;
    if (!this.stdin.write(data)) await Promise.race([once(this.stdin, 'drain'), this.result]);
  }

  /** The lines that put the session as it is at `entry` in the dump. */
  private preamble(entry: DumpEntry): string {
    const lines: string[] = [];
    const keys = new Set<string>();
    for (const b of entry.settings) {
      const text = b.toString('utf8');
      keys.add(/^SET ([a-z_]+) /.exec(text)?.[1] ?? 'search_path');
      lines.push(text.endsWith('\n') ? text : `${text}\n`);
    }
    const resets = [...this.dirty].filter((k) => !keys.has(k)).map((k) => `RESET ${k};\n`);
    // The settings the entry sets itself are added once it has run (an open entry's are not all known yet).
    this.dirty = keys;
    return resets.join('') + lines.join('');
  }

  /** Run one staged entry: its session settings, its bytes, then the token; resolves when psql printed the token or ended. */
  async runEntry(
    item: Item,
    read: (item: Item, sink: (b: Buffer) => Promise<void>) => Promise<void>,
    truncateBeforeCopy = false,
  ): Promise<void> {
    const token = `ra_done_${this.nonce}_${this.seq++}`;
    const acked = new Promise<void>((resolve) => {
      this.waiting = { token, resolve };
    });
    if (this.ended) return;
    await this.write(this.preamble(item.entry));
    // wal_level minimal: rows loaded into a table truncated in the same transaction write no WAL.
    const rel = truncateBeforeCopy ? item.entry.relation : undefined;
    if (rel) await this.write(`BEGIN;\nTRUNCATE ONLY ${quoteIdent(rel.schema)}.${quoteIdent(rel.name)};\n`);
    await read(item, (b) => this.write(b));
    for (const k of item.entry.setsInside) this.dirty.add(k);
    if (rel) await this.write('\nCOMMIT;\n');
    await this.write(`\nSELECT '${token}' AS "ra_ack_${this.nonce}";\n`);
    await acked;
  }

  async finish(): Promise<RunResult> {
    this.stdin.end();
    return this.result;
  }
}

export async function plainParallelRestore(action: ExecAction, h: SplitHelpers): Promise<string> {
  const input = action.input!;
  const jobs = Math.max(1, input.parallel?.jobs ?? 1);
  const { env, redact } = h.secretEnv(action);
  const stop = new AbortController();
  const signal = AbortSignal.any([h.signal, stop.signal]);
  const key = newRestrictKey();
  const nonce = randomBytes(12).toString('hex');
  const connections: Connection[] = [];
  const forward = h.forward();
  const conn = (label: string, withKey = true): Connection => {
    const c = new Connection(label, action.argv, nonce, { env, redact, signal, onEvent: forward }, withKey ? key : undefined);
    connections.push(c);
    return c;
  };

  const opened = await h.openVerified(input.file);
  let staging: string | undefined;
  let spill: FileHandle | undefined;
  let firstFailure: { conn: Connection; result: RunResult; entry?: DumpEntry } | undefined;
  let failReason: Error | undefined;
  const fail = (error: Error): void => {
    failReason ??= error;
    stop.abort();
  };
  const scheduler = new Scheduler(jobs);
  const counts = { pre: 0, data: 0, index: 0, attach: 0, fk: 0, tail: 0 };
  let spilled = 0;
  let readBytes = 0;
  let done = 0;
  const total = input.parallel?.entries;
  const progress = throttle(h.progressIntervalMs, () =>
    h.emit({ type: 'progress', stepId: h.stepId, unit: 'items', done, ...(total ? { total: Math.max(total, done) } : {}) }),
  );
  const tick = (n = 1): void => {
    done += n;
    progress.tick();
  };

  try {
    staging = await makeRunTempDir(h.emit, h.stepId, h.stagingParent ?? splitStagingParent(), 'restore-assistant-split-');
    spill = await createExclusive(path.join(staging, 'after-pre-data.sql'), 0o600, { read: true });
    const spillFh = spill;
    // Readers of an open (still staging) item wait here for the next bytes, the item's end or a stop.
    let growth: Array<() => void> = [];
    const grew = (): void => {
      const w = growth;
      growth = [];
      for (const f of w) f();
    };
    signal.addEventListener('abort', grew, { once: true });
    const read = async (item: Item, sink: (b: Buffer) => Promise<void>): Promise<void> => {
      for (let at = item.start; ;) {
        // Only bytes already written (`spilled` moves after each write returns) are read.
        const limit = item.open ? spilled : item.end;
        if (at >= limit) {
          if (!item.open) break;
          if (signal.aborted) throw h.interrupted(`streaming ${item.entry.type} ${item.entry.name} from the staging file`);
          await new Promise<void>((resolve) => growth.push(resolve));
          continue;
        }
        const n = Math.min(CHUNK, limit - at);
        const buf = Buffer.allocUnsafe(n);
        const { bytesRead } = await spillFh.read(buf, 0, n, at);
        if (bytesRead <= 0) throw new Error(`the staging file ended at ${at} of ${limit}`);
        await sink(bytesRead === n ? buf : buf.subarray(0, bytesRead));
        at += bytesRead;
      }
    };

    // The guard's `\restrict <key>` is the first line of the stream: pre-data gets it from there.
    const pre = conn('pre-data', false);
    let preEnded = false;
    const preDone = (): void => {
      if (preEnded) return;
      preEnded = true;
      pre.stdin.end();
    };
    void pre.result.then((r) => scheduler.preFinished(r.ok));
    const splitter = new PlainSectionSplitter();
    let current: { entry: DumpEntry; start: number; open?: Item; sampled: number; lines: number } | undefined;
    let toPre = true;
    let preEntries = 0;

    const handle = async (events: SplitEvent[]): Promise<void> => {
      for (const e of events) {
        if (e.kind === 'bytes') {
          if (toPre) await pre.write(e.data);
          else {
            for (let off = 0; off < e.data.length;) {
              const { bytesWritten } = await spillFh.write(e.data, off, e.data.length - off, spilled);
              off += bytesWritten;
              spilled += bytesWritten;
            }
            if (current && current.entry.phase === 'data' && current.sampled < ROW_SAMPLE) {
              const n = Math.min(e.data.length, ROW_SAMPLE - current.sampled);
              current.lines += countLines(e.data, n);
              current.sampled += n;
            }
            if (current?.open) grew();
          }
        } else if (e.kind === 'start') {
          counts[e.entry.phase]++;
          if (e.entry.phase === 'pre' && toPre) {
            preEntries++;
            continue;
          }
          if (toPre) {
            toPre = false;
            preDone();
          }
          current = { entry: e.entry, start: spilled, sampled: 0, lines: 0 };
          // Table data goes out as soon as it begins: a free connection runs the COPY while the rest
          // of the table is still being read (pg_restore likewise starts each table's COPY at once).
          if (e.entry.phase === 'data') {
            current.open = { entry: e.entry, start: spilled, end: spilled, open: true };
            scheduler.add(current.open);
          }
        } else if (current && e.entry === current.entry) {
          const rows = current.sampled > 0 ? Math.round((current.lines * (spilled - current.start)) / current.sampled) : 0;
          if (current.open) scheduler.staged(current.open, spilled, rows);
          else scheduler.add({ entry: current.entry, start: current.start, end: spilled, rows });
          current = undefined;
          grew();
        }
      }
      if (splitter.unrecognised)
        throw h.actionError(
          `the dump's structure is not the one verification read (${splitter.unrecognised}): the bytes changed since verification, so the parallel restore stops`,
        );
    };

    const sink = new Writable({
      highWaterMark: CHUNK,
      write(chunk: Buffer, _enc, cb) {
        handle(splitter.push(chunk)).then(() => cb(), cb);
      },
      final(cb) {
        handle(splitter.end()).then(() => cb(), cb);
      },
    });

    const hash = createHash('sha256');
    const source = opened.fh.createReadStream({ highWaterMark: CHUNK, autoClose: false, start: 0 });
    source.on('data', (chunk: Buffer | string) => {
      hash.update(chunk);
      readBytes += chunk.length;
    });
    const stages: Transform[] = [];
    let decompressError: Error | undefined;
    if (input.gunzip) {
      const gunzip = createGunzip({ chunkSize: 256 * 1024 });
      gunzip.on('error', (e) => {
        decompressError ??= e;
      });
      stages.push(gunzip);
    }
    const strip = input.filter === 'strip-ownership-and-acl' ? new StripOwnershipAndAcl() : undefined;
    if (strip) stages.push(strip);
    stages.push(new PsqlRestrictGuard(key));

    // Connections that end on their own (an error in the dump) stop everything.
    const watch = (c: Connection, entry?: () => DumpEntry | undefined): void => {
      void c.result.then((r) => {
        if (!r.ok && !stop.signal.aborted) {
          const e = entry?.();
          firstFailure ??= { conn: c, result: r, ...(e ? { entry: e } : {}) };
          fail(h.actionError(h.failure(r, redact)));
        }
      });
    };
    watch(pre);

    const reading = pipeline([source, ...stages, sink], { signal }).then(
      () => {
        if (decompressError) throw decompressError;
        // The bytes consumed are the verified bytes, or nothing after the data runs.
        h.consumed(input.file, hash.digest('hex'), readBytes);
        if (toPre) {
          toPre = false;
          preDone();
        }
        scheduler.allKnown();
      },
      (error: unknown) => {
        throw decompressError ?? error;
      },
    );
    reading.catch((error: unknown) => fail(error as Error));

    const worker = async (i: number): Promise<void> => {
      // Each connection starts (psql, connect, authenticate) while pre-data runs, not when its first entry is ready.
      let runningEntry: DumpEntry | undefined;
      const c = conn(`connection ${i + 1}`);
      watch(c, () => runningEntry);
      for (;;) {
        const item = await scheduler.next(signal);
        if (!item) break;
        runningEntry = item.entry;
        await c.runEntry(item, read, input.parallel?.truncateBeforeCopy === true);
        if (c.ended || signal.aborted) return;
        runningEntry = undefined;
        scheduler.finished(item);
        tick();
      }
      const r = await c.finish();
      if (!r.ok && !stop.signal.aborted) {
        firstFailure ??= { conn: c, result: r };
        fail(h.actionError(h.failure(r, redact)));
      }
    };

    const pool = Array.from({ length: jobs }, (_v, i) => worker(i));
    const preOutcome = pre.result.then((r) => {
      if (r.ok) tick(preEntries);
      return r;
    });
    await Promise.allSettled([reading, preOutcome, ...pool]);
    progress.flush();

    if (h.signal.aborted) throw h.interrupted(`running the parallel restore of ${input.file}`);
    if (decompressError) {
      throw h.actionError(
        isDecompressionDamage(decompressError)
          ? `decompressing ${input.file} failed (${decompressError.message}): the dump is damaged or truncated, so the restore is incomplete`
          : `reading ${input.file} failed: ${decompressError.message}`,
      );
    }
    if (firstFailure) {
      const { conn: c, result: r, entry } = firstFailure;
      const ended = postgresSessionEnd([...r.stderrTail, ...r.stdoutTail]);
      const where = `${c.label} of ${jobs + 1}${entry ? `, running the ${entry.type} entry ${entry.name}` : ''}`;
      throw h.actionError(
        `${ended ? `psql stopped: ${ended} (${h.failure(r, redact)})` : h.failure(r, redact)} (${where}); the other connections were stopped`,
      );
    }
    if (failReason) throw failReason;
    if (!scheduler.complete())
      throw h.actionError('the parallel restore ended with entries not run (an internal error): the restore is incomplete');
    const parts = [
      `${splitter.summary().entries} entries: ${counts.pre} pre-data on 1 connection`,
      `${counts.data} data on ${jobs}`,
      `${counts.index} indexes/constraints on ${jobs}`,
      ...(counts.attach ? [`${counts.attach} index attachments`] : []),
      `${counts.fk} foreign keys on ${jobs}`,
      `${counts.tail} others in dump order`,
    ];
    h.emit({
      type: 'log',
      stepId: h.stepId,
      level: 'info',
      message: `parallel restore of ${input.file}: ${parts.join(', ')}; ${spilled} bytes after pre-data staged in a private directory (removed)${strip && strip.dropped > 0 ? `; ${strip.dropped} ownership/privilege statements skipped` : ''}`,
    });
    return `${parts[0]!.split(':')[0]} on ${jobs} connections${strip && strip.dropped > 0 ? `, ${strip.dropped} ownership/privilege statements skipped` : ''}`;
  } catch (error) {
    stop.abort();
    await Promise.allSettled(connections.map((c) => c.result));
    if (h.signal.aborted) throw h.interrupted(`running the parallel restore of ${input.file}`);
    throw error;
  } finally {
    stop.abort();
    for (const c of connections) c.stdin.destroy();
    await Promise.allSettled(connections.map((c) => c.result));
    await opened.fh.close().catch(() => undefined);
    await spill?.close().catch(() => undefined);
    const dir = staging;
    if (dir)
      await rm(dir, { recursive: true, force: true }).then(
        () => forgetRunTempDir(h.emit, h.stepId, dir),
        () => undefined,
      );
  }
}
