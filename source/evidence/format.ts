import { createHash } from 'node:crypto';
import type { EngineEventBody, Outcome, RunKind } from '../engine/events.js';
import { safeJsonStringify } from '../text/sanitize.js';

/**
 * The on-disk evidence format (docs/evidence.md is the reference for other tools).
 *
 * events.jsonl holds one JSON object per line, terminated by "\n", UTF-8, no other whitespace.
 * Keys appear in this order: seq, ts, t, prev, <body key>, h.
 *   - seq: the 1-based line number
 *   - ts: ISO-8601 UTC wall-clock time the line was written (events: when the event was emitted)
 *   - t: milliseconds since the run's event bus started (non-event lines: the t of the latest event)
 *   - prev: sha256 (hex) of the previous line's bytes without its "\n"; 64 zeros on line 1
 *   - exactly one body key: header (line 1 only), event, note, or seal (last line only)
 *   - h: sha256 (hex) of this line's bytes with the trailing `,"h":"<64 hex>"` removed
 *     (that is, of the same object serialised without h), so an edit to the last line is caught too
 */

export const EVIDENCE_FORMAT = 'restore-assistant/evidence@1';
export const REPORT_FORMAT = 'restore-assistant/report@1';
export const HISTORY_FORMAT = 'restore-assistant/history@1';
export const ZERO_HASH = '0'.repeat(64);
export const EVENTS_FILE = 'events.jsonl';
export const REPORT_JSON = 'report.json';
export const REPORT_MD = 'report.md';
export const HISTORY_FILE = 'history.jsonl';

/** Line 1: who ran what, where, with which tool. Written when evidence is attached. */
export interface EvidenceHeader {
  format: typeof EVIDENCE_FORMAT;
  runId: string;
  kind: RunKind;
  recipe: { name: string; file: string; digest: string };
  operator: string;
  /** $SUDO_USER when the tool runs under sudo (operator is then that user). */
  sudoUser?: string;
  host: string;
  toolVersion: string;
  pid: number;
  node: string;
  platform: string;
  /** The tool's own command line (redacted). */
  commandLine?: string[];
  objectives?: { rtoMinutes?: number; rpoMinutes?: number };
  drillIntervalDays?: number;
}

/** Lines the evidence writer adds itself (not engine events). */
export type EvidenceNote =
  | { type: 'output-capped'; stepId: string; commandId: string; kept: number; omitted: number }
  | { type: 'progress-thinned'; stepId: string; omitted: number }
  | { type: 'closed-unsealed'; reason: string };

export interface EvidenceSeal {
  /** Number of lines before the seal line. */
  lines: number;
  /** sha256 of every byte of events.jsonl before the seal line (`head -n LINES events.jsonl | sha256sum`). */
  finalHash: string;
  outcome: Outcome;
  exitCode: number;
}

interface LineBase {
  seq: number;
  ts: string;
  t: number;
  prev: string;
  h: string;
}

export type HeaderLine = LineBase & { header: EvidenceHeader };
export type EventLine = LineBase & { event: EngineEventBody };
export type NoteLine = LineBase & { note: EvidenceNote };
export type SealLine = LineBase & { seal: EvidenceSeal };
export type EvidenceLine = HeaderLine | EventLine | NoteLine | SealLine;

export type LineBody = { header: EvidenceHeader } | { event: EngineEventBody } | { note: EvidenceNote } | { seal: EvidenceSeal };

/** One entry of <evidenceDir>/history.jsonl, appended when a run seals. */
export interface HistoryEntry {
  format: typeof HISTORY_FORMAT;
  runId: string;
  kind: RunKind;
  recipe: { name: string; file: string; digest: string };
  backup: { id: string; time: string } | null;
  outcome: Outcome;
  exitCode: number;
  startedAt: string;
  confirmedAt: string | null;
  finishedAt: string;
  rtoMs: number | null;
  /** Where the RTO clock started (evidence/rto.ts); absent in entries written before the one definition (their drill RTOs are normalised on reading). */
  rtoFrom?: string | null;
  rpoMs: number | null;
  objectives: { rtoMinutes: number | null; rpoMinutes: number | null };
  operator: string;
  host: string;
  /** The recipe's drill interval when the run was recorded (for drill-freshness warnings). */
  drillIntervalDays?: number;
  seal: { lines: number; finalHash: string; hash: string };
}

export const UPLOAD_FORMAT = 'restore-assistant/upload@1';

/**
 * A line of history.jsonl recording an upload of a sealed run directory to the recipe's
 * evidence.upload bucket (evidence/upload.ts): appended after each try, the last one per run counts.
 */
export interface UploadRecord {
  format: typeof UPLOAD_FORMAT;
  runId: string;
  recipe: string;
  status: 'uploaded' | 'failed';
  /** When the last try ended. */
  at: string;
  /** s3://bucket/<prefix>/<run id>/ */
  url: string;
  endpoint: string | null;
  attempts: number;
  /** uploaded: every object sent (key, the ETag the store answered, size, sha256 of the bytes). */
  objects: Array<{ key: string; etag: string; size: number; sha256: string }>;
  /** failed: why the last try failed. */
  why: string | null;
}

/** The upload records of history.jsonl, leniently (torn lines ignored). */
export function parseUploadRecords(text: string): UploadRecord[] {
  const out: UploadRecord[] = [];
  for (const line of text.split('\n')) {
    if (!line.includes(UPLOAD_FORMAT)) continue;
    try {
      const value = JSON.parse(line) as UploadRecord;
      if (value && value.format === UPLOAD_FORMAT && typeof value.runId === 'string' && typeof value.status === 'string') out.push(value);
    } catch {
      // a torn line: ignored
    }
  }
  return out;
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

const H_SUFFIX_LENGTH = ',"h":"'.length + 64 + '"}'.length;

/**
 * Serialise one line (without its "\n"). The object is written with keys in the canonical order;
 * h is the hash of that serialisation, appended as the last key.
 */
export function serializeLine(seq: number, ts: string, t: number, prev: string, body: LineBody): string {
  // JSON escapes C0 controls; safeJsonStringify also escapes DEL, C1 and bidi controls (lossless).
  const core = safeJsonStringify({ seq, ts, t, prev, ...body });
  const h = sha256Hex(core);
  return `${core.slice(0, -1)},"h":"${h}"}`;
}

/** The hash a line's h field must hold: sha256 of the line without its h suffix. Undefined if the suffix is malformed. */
export function expectedSelfHash(line: Buffer): string | undefined {
  if (line.length < H_SUFFIX_LENGTH + 2) return undefined;
  const suffix = line.subarray(line.length - H_SUFFIX_LENGTH).toString('latin1');
  if (!/^,"h":"[0-9a-f]{64}"\}$/.test(suffix)) return undefined;
  const core = Buffer.concat([line.subarray(0, line.length - H_SUFFIX_LENGTH), Buffer.from('}')]);
  return sha256Hex(core);
}

export function bodyKind(line: EvidenceLine): 'header' | 'event' | 'note' | 'seal' {
  if ('header' in line) return 'header';
  if ('seal' in line) return 'seal';
  if ('note' in line) return 'note';
  return 'event';
}

/** Split a file's bytes into lines. `complete` is false when the last line has no "\n". */
export function splitLines(bytes: Buffer): { lines: Buffer[]; complete: boolean } {
  const lines: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] === 0x0a) {
      lines.push(bytes.subarray(start, i));
      start = i + 1;
    }
  }
  const complete = start === bytes.length;
  if (!complete) lines.push(bytes.subarray(start));
  return { lines, complete };
}

/**
 * Parse every line that parses as JSON, leniently (no chain checks): for reports and history,
 * which also run the verifier and say when the evidence is not intact.
 */
export function parseLinesLenient(bytes: Buffer): EvidenceLine[] {
  const out: EvidenceLine[] = [];
  for (const raw of splitLines(bytes).lines) {
    try {
      const value: unknown = JSON.parse(raw.toString('utf8'));
      if (value !== null && typeof value === 'object' && !Array.isArray(value)) out.push(value as EvidenceLine);
    } catch {
      // skip: the verifier names it
    }
  }
  return out;
}

/** Parse history.jsonl leniently: one entry per valid line (upload records are not run entries: parseUploadRecords). */
export function parseHistory(text: string): HistoryEntry[] {
  const out: HistoryEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      const value = JSON.parse(line) as HistoryEntry | UploadRecord;
      if (value && typeof value.runId === 'string' && value.format !== UPLOAD_FORMAT) out.push(value);
    } catch {
      // a torn line (power loss while appending): ignored
    }
  }
  return out;
}

/** A run id: 20261123T051200Z-restore-metachat-a1b2 (sortable, safe as a directory name). */
export function formatRunStamp(now: Date): string {
  return now
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace(/[-:]/g, '');
}

export const RUN_ID_PATTERN = /^\d{8}T\d{6}Z-(restore|drill|verify|recover|cleanup)-[a-z0-9._-]+-[0-9a-f]{4}$/;
