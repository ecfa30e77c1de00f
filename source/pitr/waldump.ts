import { createReadStream } from 'node:fs';
import { rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { createExclusive, makePrivateTempDir } from '../exec/safe-fs.js';
import { run } from '../exec/run.js';
import type { Redactor } from '../exec/redact.js';
import { formatLsn, parseLsn, parseSegmentName, segNoOf, type ArchivedSegment } from './wal.js';

/**
 * pg_waldump over archived segments. pg_waldump reads plain files from one directory, so the
 * segments are staged in a private 0700 temp dir: plain ones as symlinks to the archive file (the
 * name is a validated segment name, the target a regular file lstat'ed when the archive was
 * scanned), `.gz` ones decompressed there. The temp dir is removed afterwards.
 */

export interface WalDumpResult {
  /** Last COMMIT record's time (ISO) in what was read. */
  lastCommit?: string;
  /** Number of COMMIT records seen. */
  commits: number;
  /** The LSN where pg_waldump stopped reading, when it said. */
  stoppedAt?: bigint;
  /** pg_waldump's error line (end of WAL or a damaged record). */
  error?: string;
  /** The segment pg_waldump looked for and could not find (the end of what was staged, or a hole in it). */
  wantedFile?: string;
  exitCode: number | null;
  /** Bytes staged (decompressed or linked). */
  bytes: number;
}

/** Stage segments for pg_waldump; returns the dir (caller removes it). */
export async function stageSegments(segments: ArchivedSegment[], parent = tmpdir()): Promise<string> {
  const dir = await makePrivateTempDir(parent, 'ra-wal-');
  for (const seg of segments) {
    const dest = path.join(dir, seg.name);
    if (!seg.gz) {
      await symlink(seg.file, dest);
      continue;
    }
    const fh = await createExclusive(dest, 0o600);
    try {
      // The write stream closes the handle (with autoClose off it never emits 'close' and pipeline never settles).
      await pipeline(createReadStream(seg.file), createGunzip(), fh.createWriteStream());
    } finally {
      await fh.close().catch(() => undefined);
    }
  }
  return dir;
}

const COMMIT = /desc: COMMIT (\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d+)?) (UTC|[+-]\d{2}(?::?\d{2})?)/;
const STOPPED =
  /(?:error in WAL record at|invalid record length at|record with incorrect prev-link [0-9A-F/]+ at|invalid magic number [0-9A-F]+ in log segment \S+, offset \d+|contrecord is requested by) ?([0-9A-F]{1,8}\/[0-9A-F]{1,8})/i;

export function parseCommitTime(date: string, zone: string): string | undefined {
  const z = zone === 'UTC' ? 'Z' : /^[+-]\d{2}$/.test(zone) ? `${zone}:00` : zone;
  const ms = Date.parse(`${date.replace(' ', 'T')}${z}`);
  return Number.isFinite(ms) ? new Date(ms).toISOString() : undefined;
}

/**
 * Reads WAL from `start` (an LSN) through the staged segments with pg_waldump; with `rmgr`
 * 'Transaction' only commit/abort records are printed. Never throws for pg_waldump's own exit code:
 * reaching the end of the WAL is how it ends.
 */
export async function walDump(
  pgWaldump: string,
  dir: string,
  opts: {
    timeline: number;
    start: bigint;
    end?: bigint;
    redact: Redactor;
    signal?: AbortSignal;
    onCommit?: (iso: string, lsn: bigint) => void;
  },
): Promise<Omit<WalDumpResult, 'bytes'>> {
  const argv = [
    pgWaldump,
    `--path=${dir}`,
    `--timeline=${opts.timeline}`,
    `--start=${formatLsn(opts.start)}`,
    ...(opts.end !== undefined ? [`--end=${formatLsn(opts.end)}`] : []),
    '--rmgr=Transaction',
  ];
  let lastCommit: string | undefined;
  let commits = 0;
  const result = await run(argv, {
    redact: opts.redact,
    timeoutMs: 30 * 60_000,
    okExitCodes: [0, 1],
    maxStdoutBytes: 1024,
    streamLines: true,
    onEvent: (e) => {
      if (e.type !== 'command-output' || e.stream !== 'stdout') return;
      const m = COMMIT.exec(e.line);
      if (!m?.[1] || !m[2]) return;
      const iso = parseCommitTime(m[1], m[2]);
      if (!iso) return;
      commits++;
      lastCommit = iso;
      const lsn = /lsn: ([0-9A-F]+\/[0-9A-F]+)/.exec(e.line)?.[1];
      if (opts.onCommit && lsn) opts.onCommit(iso, parseLsn(lsn) ?? 0n);
    },
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  const errLine = result.stderrTail.find((l) => /error/i.test(l));
  const stop = errLine ? STOPPED.exec(errLine)?.[1] : undefined;
  const wanted = errLine ? /could not find file "([0-9A-F]{24})"/.exec(errLine)?.[1] : undefined;
  return {
    ...(wanted ? { wantedFile: wanted } : {}),
    ...(lastCommit ? { lastCommit } : {}),
    commits,
    ...(stop ? { stoppedAt: parseLsn(stop) ?? 0n } : {}),
    ...(errLine ? { error: errLine.replace(/^pg_waldump: (error: )?/, '') } : {}),
    exitCode: result.exitCode,
  };
}

/** Stage + dump + remove the staging dir. */
export async function dumpSegments(
  pgWaldump: string,
  segments: ArchivedSegment[],
  opts: { timeline: number; start: bigint; end?: bigint; redact: Redactor; signal?: AbortSignal; tmpParent?: string },
): Promise<WalDumpResult> {
  const dir = await stageSegments(segments, opts.tmpParent);
  try {
    const r = await walDump(pgWaldump, dir, opts);
    return { ...r, bytes: segments.reduce((n, s) => n + s.size, 0) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Did pg_waldump read through the whole run (it stopped in or right after the last segment, the end of the WAL)? */
export function readThrough(r: WalDumpResult, lastSegNo: bigint, segSize: number): boolean {
  if (r.exitCode === 0 && !r.error) return true;
  if (r.wantedFile) {
    const wanted = parseSegmentName(r.wantedFile, segSize);
    return wanted !== undefined && wanted.segNo > lastSegNo;
  }
  if (r.stoppedAt === undefined) return false;
  return segNoOf(r.stoppedAt, segSize) >= lastSegNo;
}
