import { lstat, open, readdir } from 'node:fs/promises';
import path from 'node:path';
import { createGunzip } from 'node:zlib';
import { createReadStream } from 'node:fs';
import { sanitizeText } from '../text/sanitize.js';

/**
 * WAL names, LSNs and the archive directory an `archive_command = 'cp %p <dir>/%f'` writes.
 * Every name in the archive is data: only names that are exactly a WAL segment
 * (`TTTTTTTTXXXXXXXXYYYYYYYY`, optionally `.gz`), a timeline history file (`TTTTTTTT.history`) or
 * a backup history file (`<segment>.<offset>.backup`) count; anything else is reported, never used.
 */

export const WAL_SEGMENT = /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$/;
const ARCHIVE_SEGMENT = /^([0-9A-F]{24})(\.gz)?$/;
const HISTORY_FILE = /^([0-9A-F]{8})\.history(\.gz)?$/;
const BACKUP_FILE = /^([0-9A-F]{24})\.([0-9A-F]{8})\.backup(\.gz)?$/;
const PARTIAL_FILE = /^([0-9A-F]{24})\.partial(\.gz)?$/;

/** "0/3000028" → bigint; undefined when it is not an LSN. */
export function parseLsn(text: string): bigint | undefined {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text.trim());
  if (!m?.[1] || !m[2]) return undefined;
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

export function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

function segmentsPerXlogId(segSize: number): bigint {
  return 0x100000000n / BigInt(segSize);
}

/** The segment number an LSN falls in. */
export function segNoOf(lsn: bigint, segSize: number): bigint {
  return lsn / BigInt(segSize);
}

/** `TTTTTTTTXXXXXXXXYYYYYYYY` for a timeline and segment number. */
export function segmentName(timeline: number, segNo: bigint, segSize: number): string {
  const per = segmentsPerXlogId(segSize);
  const hex = (n: bigint | number): string => n.toString(16).toUpperCase().padStart(8, '0');
  return `${hex(timeline)}${hex(segNo / per)}${hex(segNo % per)}`;
}

/** Timeline and segment number of a segment name (undefined when the low part is out of range for the segment size). */
export function parseSegmentName(name: string, segSize: number): { timeline: number; segNo: bigint } | undefined {
  const m = WAL_SEGMENT.exec(name);
  if (!m?.[1] || !m[2] || !m[3]) return undefined;
  const per = segmentsPerXlogId(segSize);
  const low = BigInt(`0x${m[3]}`);
  if (low >= per) return undefined;
  return { timeline: Number.parseInt(m[1], 16), segNo: BigInt(`0x${m[2]}`) * per + low };
}

export interface ArchivedSegment {
  /** The segment name, without `.gz`. */
  name: string;
  file: string;
  gz: boolean;
  size: number;
}

export interface WalArchive {
  dir: string;
  /** By segment name (a plain and a .gz copy of one segment: the plain one). */
  segments: Map<string, ArchivedSegment>;
  /** Backup history files (`.backup`), by file name. */
  backupFiles: Map<string, { file: string; gz: boolean }>;
  historyFiles: string[];
  /** Names that are not WAL (ignored), non-regular files, unreadable entries. */
  warnings: string[];
}

/** Lists the archive directory (no file is read). Symlinks and other non-regular files are ignored with a warning. */
export async function scanArchive(dir: string): Promise<WalArchive> {
  const names = await readdir(dir);
  names.sort();
  const archive: WalArchive = { dir, segments: new Map(), backupFiles: new Map(), historyFiles: [], warnings: [] };
  const ignored: string[] = [];
  for (const name of names) {
    const full = path.join(dir, name);
    const seg = ARCHIVE_SEGMENT.exec(name);
    const backup = BACKUP_FILE.exec(name);
    const history = HISTORY_FILE.exec(name);
    if (!seg && !backup && !history) {
      if (!PARTIAL_FILE.test(name) && !name.startsWith('.')) ignored.push(name);
      continue;
    }
    let st;
    try {
      st = await lstat(full);
    } catch (error) {
      archive.warnings.push(`${sanitizeText(name, 80)}: cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
      continue;
    }
    if (!st.isFile()) {
      archive.warnings.push(
        `${sanitizeText(name, 80)} is ${st.isSymbolicLink() ? 'a symbolic link' : 'not a regular file'}: not used (archive_command writes regular files)`,
      );
      continue;
    }
    if (seg?.[1]) {
      const existing = archive.segments.get(seg[1]);
      if (existing && !existing.gz) continue;
      archive.segments.set(seg[1], { name: seg[1], file: full, gz: seg[2] !== undefined, size: st.size });
    } else if (backup) archive.backupFiles.set(name, { file: full, gz: backup[3] !== undefined });
    else archive.historyFiles.push(name);
  }
  if (ignored.length > 0)
    archive.warnings.push(
      `${ignored.length} file${ignored.length === 1 ? '' : 's'} in the archive ${ignored.length === 1 ? 'is' : 'are'} not WAL (ignored): ${ignored
        .slice(0, 5)
        .map((n) => sanitizeText(n, 60))
        .join(', ')}${ignored.length > 5 ? ', …' : ''}`,
    );
  return archive;
}

/** Reads up to `max` bytes from the start of a segment (decompressed when gz). */
export async function readSegmentHead(seg: Pick<ArchivedSegment, 'file' | 'gz'>, max = 64): Promise<Buffer> {
  if (!seg.gz) {
    const fh = await open(seg.file, 'r');
    try {
      const buf = Buffer.alloc(max);
      const { bytesRead } = await fh.read(buf, 0, max, 0);
      return buf.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const input = createReadStream(seg.file);
    const gunzip = createGunzip();
    const finish = (): void => {
      input.destroy();
      gunzip.destroy();
      resolve(Buffer.concat(chunks).subarray(0, max));
    };
    gunzip.on('data', (c: Buffer) => {
      chunks.push(c);
      total += c.length;
      if (total >= max) finish();
    });
    gunzip.on('end', finish);
    gunzip.on('error', reject);
    input.on('error', reject);
    input.pipe(gunzip);
  });
}

const XLOG_PAGE_MAGIC_MIN = 0xd000;
const XLP_LONG_HEADER = 0x0002;

/** What the long page header at the start of every segment says (magic, timeline, segment size, system id). */
export interface SegmentHeader {
  magic: number;
  timeline: number;
  pageAddr: bigint;
  systemId: string;
  segSize: number;
  blockSize: number;
}

export function parseSegmentHeader(buf: Buffer): SegmentHeader | undefined {
  if (buf.length < 40) return undefined;
  const magic = buf.readUInt16LE(0);
  const info = buf.readUInt16LE(2);
  if (magic < XLOG_PAGE_MAGIC_MIN || (info & XLP_LONG_HEADER) === 0) return undefined;
  const segSize = buf.readUInt32LE(32);
  const blockSize = buf.readUInt32LE(36);
  // Power of two between 1 MiB and 1 GiB (initdb --wal-segsize).
  if (segSize < 1 << 20 || segSize > 1 << 30 || (segSize & (segSize - 1)) !== 0) return undefined;
  return {
    magic,
    timeline: buf.readUInt32LE(4),
    pageAddr: buf.readBigUInt64LE(8),
    systemId: buf.readBigUInt64LE(24).toString(),
    segSize,
    blockSize,
  };
}

export interface WalRun {
  /** First and last segment of the unbroken sequence from the base's start segment. */
  first: string;
  last?: string;
  /** Segments in the run, in order. */
  segments: ArchivedSegment[];
  /** The first missing segment after the run, when later segments exist (a gap), else undefined. */
  gap?: { missing: string; nextPresent: string };
}

/** The unbroken sequence of segments of `timeline` from `startSegNo`, and the gap that ends it (when anything follows it). */
export function walRun(archive: WalArchive, timeline: number, startSegNo: bigint, segSize: number): WalRun {
  const first = segmentName(timeline, startSegNo, segSize);
  const segments: ArchivedSegment[] = [];
  let n = startSegNo;
  for (;;) {
    const seg = archive.segments.get(segmentName(timeline, n, segSize));
    if (!seg) break;
    segments.push(seg);
    n++;
  }
  const missing = segmentName(timeline, n, segSize);
  let nextPresent: string | undefined;
  for (const name of archive.segments.keys()) {
    const parsed = parseSegmentName(name, segSize);
    if (parsed && parsed.timeline === timeline && parsed.segNo > n && (!nextPresent || name < nextPresent)) nextPresent = name;
  }
  return {
    first,
    ...(segments.length > 0 ? { last: segments[segments.length - 1]?.name } : {}),
    segments,
    ...(nextPresent ? { gap: { missing, nextPresent } } : {}),
  };
}

/** Fields of a backup history file (`.backup`) or a backup_label: `KEY: value` lines. */
export function parseLabel(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n').slice(0, 40)) {
    const m = /^([A-Z][A-Z ]{1,40}):\s?(.{0,200})$/.exec(line.replace(/\r$/, ''));
    if (m?.[1] && m[2] !== undefined && !(m[1] in out)) out[m[1]] = m[2];
  }
  return out;
}

/** "2026-12-01 03:00:00 UTC" (backup_label, .backup) → ISO-8601; undefined when it is not that shape. */
export function parseLabelTime(value: string | undefined): string | undefined {
  if (!value) return undefined;
  const m = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(\.\d+)? (UTC|GMT|[+-]\d{2}(?::?\d{2})?)$/.exec(value.trim());
  if (!m?.[1] || !m[2]) return undefined;
  const zone = m[4] === 'UTC' || m[4] === 'GMT' ? 'Z' : (m[4] ?? 'Z');
  const ms = Date.parse(`${m[1]}T${m[2]}${m[3] ?? ''}${zone.length === 3 ? `${zone}:00` : zone}`);
  return Number.isFinite(ms) ? new Date(ms).toISOString() : undefined;
}

/** One line of a timeline history file: timeline `tli` ended (switched to a child) at `switchpoint`. */
export interface HistoryEntry {
  tli: number;
  switchpoint: bigint;
}

/**
 * A timeline history file (`00000002.history`, written at a promotion): `<parent tli>\t<switch LSN>\t<reason>`
 * per ancestor, oldest first. Data: at most 1000 lines, each checked; undefined when it is not one.
 */
export function parseHistory(text: string): HistoryEntry[] | undefined {
  const out: HistoryEntry[] = [];
  for (const raw of text.split('\n').slice(0, 1000)) {
    const line = raw.replace(/\r$/, '').trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(\d{1,10})\s+([0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8})(?:\s.*)?$/.exec(line);
    if (!m?.[1] || !m[2]) return undefined;
    const tli = Number(m[1]);
    const switchpoint = parseLsn(m[2]);
    if (!Number.isSafeInteger(tli) || tli < 1 || switchpoint === undefined) return undefined;
    // Ancestors in increasing order, each switching at or after the one before.
    const prev = out.at(-1);
    if (prev && (tli <= prev.tli || switchpoint < prev.switchpoint)) return undefined;
    out.push({ tli, switchpoint });
  }
  return out;
}

/** The timeline of a segment name (its first 8 hex digits). */
export function timelineOf(segment: string): number {
  return Number.parseInt(segment.slice(0, 8), 16);
}

/** Where each timeline of a recovery's path takes over: segments from `beginSegNo` on are read from `tli`. */
export interface TimelineStep {
  tli: number;
  /** First segment number read from this timeline (the segment holding its switch point); 0 for the first. */
  beginSegNo: bigint;
  /** Where this timeline switches to the next one on the path (undefined for the last). */
  switchpoint?: bigint;
}

/**
 * The unbroken sequence of segments from `startSegNo` along a timeline path (each segment from the
 * newest timeline of the path that has begun by then, as PostgreSQL's restore reads it), and the
 * gap that ends it when a later segment of the path exists.
 */
export function walRunPath(archive: WalArchive, steps: TimelineStep[], startSegNo: bigint, segSize: number): WalRun {
  const tliAt = (n: bigint): number => {
    let tli = steps[0]?.tli ?? 1;
    for (const s of steps) if (s.beginSegNo <= n) tli = s.tli;
    return tli;
  };
  const first = segmentName(tliAt(startSegNo), startSegNo, segSize);
  const segments: ArchivedSegment[] = [];
  let n = startSegNo;
  for (;;) {
    const seg = archive.segments.get(segmentName(tliAt(n), n, segSize));
    if (!seg) break;
    segments.push(seg);
    n++;
  }
  const missing = segmentName(tliAt(n), n, segSize);
  let nextPresent: string | undefined;
  for (const name of archive.segments.keys()) {
    const parsed = parseSegmentName(name, segSize);
    if (parsed && parsed.segNo > n && parsed.timeline === tliAt(parsed.segNo) && (!nextPresent || name.slice(8) < nextPresent.slice(8)))
      nextPresent = name;
  }
  return {
    first,
    ...(segments.length > 0 ? { last: segments[segments.length - 1]?.name } : {}),
    segments,
    ...(nextPresent ? { gap: { missing, nextPresent } } : {}),
  };
}
