import { readFile } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import { findPgTool } from '../catalog/tools.js';
import type { BackupSet } from '../catalog/types.js';
import { createRedactor, type Redactor } from '../exec/redact.js';
import { sanitizeText } from '../text/sanitize.js';
import { dumpSegments } from './waldump.js';
import {
  formatLsn,
  parseLabel,
  parseLabelTime,
  parseLsn,
  parseSegmentHeader,
  readSegmentHead,
  parseHistory,
  segmentName,
  segNoOf,
  timelineOf,
  walRunPath,
  type HistoryEntry,
  type TimelineStep,
  type WalArchive,
  type WalRun,
} from './wal.js';

/**
 * The restorable window of each base backup: from the end of the base (the earliest consistent
 * point) to the last commit in the unbroken WAL sequence that starts at the base's start segment.
 * A missing segment ends the sequence, and so the window, even when later segments exist.
 */

/** WAL page magic → PostgreSQL major (src/include/access/xlog_internal.h). */
const MAGIC_MAJOR: Record<number, number> = { 0xd106: 13, 0xd10d: 14, 0xd110: 15, 0xd113: 16, 0xd116: 17, 0xd118: 18 };

export interface PitrWindow {
  /** Earliest time a restore can stop at: the base backup's end (consistency). ISO. */
  from: string;
  /** Latest: the last commit in the unbroken WAL from the base. ISO. */
  to: string;
  /** Segment the unbroken WAL ends with. */
  lastSegment: string;
  /** What `latest` loses: "changes after <to> lost". */
  rpo: string;
}

export interface PitrBase {
  set: BackupSet;
  timeline: number;
  startLsn: bigint;
  /** The base's end (STOP WAL LOCATION / manifest End-LSN). */
  endLsn?: bigint;
  startTime: string;
  stopTime?: string;
  segSize?: number;
  /** Major version of the WAL (page magic). */
  walMajor?: number;
  systemId?: string;
  /** Bytes of the data dir the base extracts to (manifest). */
  extractedBytes?: number;
  run?: WalRun;
  /**
   * The timelines recovery reads, in order (the base's, then each later one from the segment of its
   * switch point): with recovery_target_timeline = 'latest', the newest timeline in the archive whose
   * history continues the base's; else only the base's own.
   */
  timelines?: TimelineStep[];
  /** What recovery_target_timeline is set to: 'latest', or the base's timeline when the newest one does not descend from it. */
  recoveryTimeline?: 'latest' | number;
  /** With a later timeline: [the primary branch, the base's own timeline alone] (baseForTarget picks). */
  branches?: PitrBranch[];
  window?: PitrWindow;
  /** Why there is no window, or what cuts it short (a gap). */
  problems: Array<{ code: string; message: string }>;
  notes: string[];
}

function meta(set: BackupSet, key: string): string | undefined {
  const v = set.metadata[key];
  return typeof v === 'string' ? v : undefined;
}

/** The `.backup` history file of this base (the archive names it after the start segment and offset). */
async function backupHistory(
  archive: WalArchive,
  startLsn: bigint,
  segSize: number,
  timeline: number,
): Promise<Record<string, string> | undefined> {
  const offset = (startLsn % BigInt(segSize)).toString(16).toUpperCase().padStart(8, '0');
  const name = `${segmentName(timeline, segNoOf(startLsn, segSize), segSize)}.${offset}.backup`;
  const entry = archive.backupFiles.get(name) ?? archive.backupFiles.get(`${name}.gz`);
  if (!entry) return undefined;
  try {
    const raw = await readFile(entry.file);
    if (raw.length > 64 * 1024) return undefined;
    return parseLabel((entry.gz ? gunzipSync(raw, { maxOutputLength: 64 * 1024 }) : raw).toString('utf8'));
  } catch {
    return undefined;
  }
}

const hex8 = (n: number): string => n.toString(16).toUpperCase().padStart(8, '0');

/** A timeline's history file from the archive, parsed (undefined: absent; 'bad': unreadable or not a history file). */
async function readHistory(archive: WalArchive, tli: number): Promise<HistoryEntry[] | undefined | 'bad'> {
  const name = `${hex8(tli)}.history`;
  const file = archive.historyFiles.find((f) => f === name || f === `${name}.gz`);
  if (!file) return undefined;
  try {
    const raw = await readFile(`${archive.dir}/${file}`);
    if (raw.length > 64 * 1024) return 'bad';
    return parseHistory((file.endsWith('.gz') ? gunzipSync(raw, { maxOutputLength: 64 * 1024 }) : raw).toString('utf8')) ?? 'bad';
  } catch {
    return 'bad';
  }
}

/**
 * The timeline path of a base, as PostgreSQL's recovery_target_timeline = 'latest' finds it: the
 * newest timeline N with a history file (probing base+1, base+2, ... like the server does), whose
 * history holds the base's timeline with a switch point after the base's start. Otherwise recovery
 * stays on the base's timeline (and is told so).
 */
export async function timelinePath(
  archive: WalArchive,
  baseTli: number,
  startLsn: bigint,
  segSize: number,
  notes: string[],
): Promise<{ steps: TimelineStep[]; recoveryTimeline: 'latest' | number }> {
  const own = { steps: [{ tli: baseTli, beginSegNo: 0n }], recoveryTimeline: baseTli };
  let newest = baseTli;
  for (let p = baseTli + 1; p < baseTli + 1000; p++) {
    if (!archive.historyFiles.some((f) => f === `${hex8(p)}.history` || f === `${hex8(p)}.history.gz`)) break;
    newest = p;
  }
  if (newest === baseTli) return { steps: own.steps, recoveryTimeline: 'latest' };
  const history = await readHistory(archive, newest);
  if (history === undefined || history === 'bad') {
    notes.push(
      `timeline history ${hex8(newest)}.history cannot be read: recovery stays on the base's timeline ${baseTli} (recovery_target_timeline = ${baseTli})`,
    );
    return own;
  }
  const idx = history.findIndex((e) => e.tli === baseTli);
  const own_ = history[idx];
  if (!own_ || startLsn >= own_.switchpoint) {
    notes.push(
      `the newest timeline ${newest} ${own_ ? `left timeline ${baseTli} at ${formatLsn(own_.switchpoint)}, before this base's start` : `does not descend from timeline ${baseTli}`}: recovery stays on timeline ${baseTli} (recovery_target_timeline = ${baseTli})`,
    );
    return own;
  }
  const steps: TimelineStep[] = [{ tli: baseTli, beginSegNo: 0n, switchpoint: own_.switchpoint }];
  for (let j = idx + 1; j <= history.length; j++) {
    const prev = history[j - 1]!;
    const e = history[j];
    steps.push({ tli: e ? e.tli : newest, beginSegNo: segNoOf(prev.switchpoint, segSize), ...(e ? { switchpoint: e.switchpoint } : {}) });
  }
  notes.push(
    `timelines: the base is on timeline ${baseTli}; recovery follows ${steps
      .slice(1)
      .map((s, k) => `timeline ${s.tli} from ${formatLsn(steps[k]!.switchpoint!)}`)
      .join(', then ')} (recovery_target_timeline = 'latest', from ${hex8(newest)}.history)`,
  );
  return { steps, recoveryTimeline: 'latest' };
}

export async function walTool(
  name: 'pg_waldump' | 'pg_verifybackup',
  major: number | undefined,
  binDir?: string,
): Promise<string | undefined> {
  return findPgTool(name, { ...(binDir ? { binDir } : major ? { binDir: `/usr/lib/postgresql/${major}/bin` } : {}) });
}

export interface WindowOptions {
  /** Directory of pg_waldump (recipe cluster.bin / postgres.bin). */
  binDir?: string;
  redact?: Redactor;
  signal?: AbortSignal;
}

/** A base backup with its LSNs, times, and restorable window over the archive. */
export async function describeBase(set: BackupSet, archive: WalArchive, opts: WindowOptions = {}): Promise<PitrBase> {
  const redact = opts.redact ?? createRedactor();
  const problems: PitrBase['problems'] = [];
  const notes: string[] = [];
  const startLsn = parseLsn(meta(set, 'startLsn') ?? '');
  const timeline = Number(meta(set, 'timeline') ?? '1');
  const base: PitrBase = { set, timeline, startLsn: startLsn ?? 0n, startTime: set.time, problems, notes };
  const extracted = Number(meta(set, 'extractedBytes'));
  if (Number.isSafeInteger(extracted) && extracted > 0) base.extractedBytes = extracted;
  if (startLsn === undefined) {
    problems.push({
      code: 'pitr-no-start-lsn',
      message: `base ${sanitizeText(set.id, 80)} records no start LSN (backup_manifest WAL-Ranges or backup_label)`,
    });
    return base;
  }
  const endFromManifest = parseLsn(meta(set, 'endLsn') ?? '');
  // The segment size and major are in every segment's long header: read the first one we have.
  const probeSeg =
    [...archive.segments.values()].find((s) => s.name.startsWith(timeline.toString(16).toUpperCase().padStart(8, '0'))) ??
    [...archive.segments.values()][0];
  if (probeSeg) {
    const header = parseSegmentHeader(await readSegmentHead(probeSeg).catch(() => Buffer.alloc(0)));
    if (header) {
      base.segSize = header.segSize;
      base.systemId = header.systemId;
      const major = MAGIC_MAJOR[header.magic];
      if (major !== undefined) base.walMajor = major;
      const sys = meta(set, 'systemIdentifier');
      if (sys && sys !== header.systemId)
        problems.push({
          code: 'pitr-other-cluster',
          message: `the WAL archive belongs to another cluster (system identifier ${header.systemId}; base ${sanitizeText(set.id, 80)} records ${sys})`,
        });
    } else problems.push({ code: 'pitr-wal-unreadable', message: `archived segment ${probeSeg.name} has no valid WAL page header` });
  }
  if (!base.segSize) {
    if (!probeSeg)
      problems.push({ code: 'pitr-archive-empty', message: `the WAL archive ${sanitizeText(archive.dir, 200)} holds no WAL segments` });
    return base;
  }
  const segSize = base.segSize;
  const history = await backupHistory(archive, startLsn, segSize, timeline);
  const stopLoc = /^([0-9A-F]{1,8}\/[0-9A-F]{1,8})/i.exec(history?.['STOP WAL LOCATION'] ?? '')?.[1];
  const endLsn = endFromManifest ?? (stopLoc ? parseLsn(stopLoc) : undefined);
  if (endLsn !== undefined) base.endLsn = endLsn;
  const stopTime = parseLabelTime(history?.['STOP TIME']);
  if (stopTime) base.stopTime = stopTime;
  else
    notes.push(
      `no backup history file (.backup) for base ${sanitizeText(set.id, 80)} in the archive: its end time is taken as its start time`,
    );

  const path = await timelinePath(archive, timeline, startLsn, segSize, notes);
  const tool = await walTool('pg_waldump', base.walMajor, opts.binDir);
  if (!tool) notes.push('pg_waldump not found: the window end is the base end (install the PostgreSQL server package)');
  const ctx = { archive, set, timeline, startLsn, endLsn, segSize, tool, redact, base, ...(opts.signal ? { signal: opts.signal } : {}) };
  const latest = await branchOf(ctx, path.steps, path.recoveryTimeline);
  const branches = [latest];
  // After an earlier PITR the base's own timeline may go on past the switch point (the abandoned
  // branch): a time there is restored along the base's timeline alone.
  if (path.steps.length > 1) branches.push(await branchOf(ctx, [{ tli: timeline, beginSegNo: 0n }], timeline));
  // The primary branch: the one whose window reaches the later commit ("latest" = the newest data
  // this base can reach); the other stays available to time targets inside its window.
  branches.sort((a, b) => Date.parse(b.window?.to ?? '') - Date.parse(a.window?.to ?? '') || 0);
  const [primary, other] = [branches[0]!, branches[1]];
  applyBranch(base, primary);
  if (other) {
    base.branches = [primary, other];
    if (other.window)
      notes.push(
        `timeline ${timeline} alone (the branch a later timeline left at ${formatLsn(path.steps[0]!.switchpoint ?? 0n)}) reaches ${other.window.to}: a time between ${other.window.from} and ${other.window.to} that the window above does not hold is restored along it (recovery_target_timeline = ${timeline})`,
      );
  }
  return base;
}

/** One way through the archive from a base: its timelines, run of segments, window and the problems that cut it short. */
export interface PitrBranch {
  timelines: TimelineStep[];
  recoveryTimeline: 'latest' | number;
  run: WalRun;
  window?: PitrWindow;
  problems: PitrBase['problems'];
}

async function branchOf(
  c: {
    archive: WalArchive;
    set: BackupSet;
    timeline: number;
    startLsn: bigint;
    endLsn: bigint | undefined;
    segSize: number;
    tool: string | undefined;
    redact: Redactor;
    signal?: AbortSignal;
    base: PitrBase;
  },
  steps: TimelineStep[],
  recoveryTimeline: 'latest' | number,
): Promise<PitrBranch> {
  const { startLsn, endLsn, segSize, timeline, set } = c;
  const problems: PitrBase['problems'] = [];
  const run = walRunPath(c.archive, steps, segNoOf(startLsn, segSize), segSize);
  const branch: PitrBranch = { timelines: steps, recoveryTimeline, run, problems };
  const endSeg = endLsn !== undefined ? segNoOf(endLsn, segSize) : segNoOf(startLsn, segSize);
  const runEnd = run.segments.length > 0 ? segNoOf(startLsn, segSize) + BigInt(run.segments.length) - 1n : -1n;
  if (runEnd < endSeg) {
    const missing = segmentName(timeline, runEnd + 1n, segSize);
    problems.push({
      code: 'pitr-wal-missing',
      message: `WAL segment ${missing} is missing from the archive: base ${sanitizeText(set.id, 80)} cannot reach a consistent state (it needs ${run.first} to ${segmentName(timeline, endSeg, segSize)})`,
    });
    return branch;
  }
  // The window's end: the last commit in the unbroken run, looked for from its last segment backwards.
  let lastCommit: string | undefined;
  if (c.tool) {
    for (let i = run.segments.length - 1; i >= 0 && !lastCommit; i--) {
      const seg = run.segments[i]!;
      const segStart = (segNoOf(startLsn, segSize) + BigInt(i)) * BigInt(segSize);
      const from = segStart > startLsn ? segStart : startLsn;
      const r = await dumpSegments(c.tool, [seg], {
        timeline: timelineOf(seg.name),
        start: from,
        // Stop at the end of the one staged segment: without an end pg_waldump looks for the next
        // file and, not finding it, retries for 5 s (10 x 0.5 s) before it gives up.
        end: segStart + BigInt(segSize),
        redact: c.redact,
        ...(c.signal ? { signal: c.signal } : {}),
      });
      lastCommit = r.lastCommit;
      if (endLsn !== undefined && segStart <= endLsn) break;
    }
  }
  // Label times have whole seconds: the consistent point is up to a second after the recorded one.
  const from = new Date(Date.parse(c.base.stopTime ?? c.base.startTime) + 1000).toISOString();
  const to = lastCommit && Date.parse(lastCommit) > Date.parse(from) ? lastCommit : from;
  const last = run.last ?? run.first;
  branch.window = {
    from,
    to,
    lastSegment: last,
    rpo: `changes after ${to.replace('T', ' ').replace(/Z$/, 'Z')} lost`,
  };
  if (run.gap) {
    problems.push({
      code: 'pitr-wal-gap',
      message: `WAL segment ${run.gap.missing} is missing (the archive has ${run.gap.nextPresent} after it): the window ends at ${to} (segment ${last}); changes after it cannot be replayed unless ${run.gap.missing} is found`,
    });
  }
  return branch;
}

const BRANCH_CODES = new Set(['pitr-wal-missing', 'pitr-wal-gap']);

function applyBranch(base: PitrBase, b: PitrBranch): void {
  base.timelines = b.timelines;
  base.recoveryTimeline = b.recoveryTimeline;
  base.run = b.run;
  if (b.window) base.window = b.window;
  else delete base.window;
  base.problems = [...base.problems.filter((p) => !BRANCH_CODES.has(p.code)), ...b.problems];
}

/**
 * The base as a restore to `target` sees it: a time outside the primary window but inside the
 * other branch's (the base's own timeline after a later one left it) is restored along that one.
 */
export function baseForTarget(base: PitrBase, target: { kind: string; time?: string }): PitrBase {
  const other = base.branches?.[1];
  if (target.kind !== 'time' || !target.time || !other?.window || !base.window) return base;
  const t = Date.parse(target.time);
  const inside = (w: PitrWindow): boolean => t >= Date.parse(w.from) && t <= Date.parse(w.to);
  if (inside(base.window) || !inside(other.window)) return base;
  const switched: PitrBase = { ...base, problems: [...base.problems], notes: [...base.notes] };
  applyBranch(switched, other);
  switched.notes.push(`${target.time} is on timeline ${base.timeline}'s own branch: recovery_target_timeline = ${base.timeline}`);
  return switched;
}

/** `0/700028` for messages. */
export function lsnText(lsn: bigint | undefined): string {
  return lsn === undefined ? 'unknown' : formatLsn(lsn);
}
