import type { KeyObject } from 'node:crypto';
import { open, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Outcome } from '../engine/events.js';
import { RestoreAssistantError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { checkSignature, SIGNATURE_FILE, type SignatureCheck } from './signing.js';
import {
  EVENTS_FILE,
  expectedSelfHash,
  HISTORY_FILE,
  parseHistory,
  RUN_ID_PATTERN,
  sha256Hex,
  splitLines,
  ZERO_HASH,
  type HistoryEntry,
} from './format.js';

export type EvidenceStatus = 'sealed' | 'unsealed' | 'tampered';

export interface EvidenceVerification {
  /** sealed: intact and finished; unsealed: intact prefix of a run that never finished; tampered: anything else */
  status: EvidenceStatus;
  /** Lines in events.jsonl (a torn last line counts). */
  lines: number;
  /** 1-based number of the first line that is wrong (or missing). */
  firstBadLine?: number;
  reason?: string;
  runId?: string;
  /** The outcome the seal records. */
  outcome?: Outcome;
  /** sha256 of the seal line (what history.jsonl records). */
  sealHash?: string;
  /** Whether history.jsonl has an entry for this run (and so was cross-checked). */
  indexed: boolean;
  /**
   * The seal's signature (seal.sig.json), for a sealed run. Checked against the expected key when
   * one is given (`--key`), else only against the key the file names (which proves nothing about
   * who signed: docs/evidence.md).
   */
  signature?: SignatureCheck;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function isHex64(v: unknown): v is string {
  return typeof v === 'string' && /^[0-9a-f]{64}$/.test(v);
}

/**
 * Check the bytes of an events.jsonl: every line parses, carries its own line number, its own
 * hash and the previous line's hash; line 1 is the header; a seal, if any, is the last line and
 * matches the bytes before it; the history entry (when given) matches the seal.
 */
export function verifyEvidenceBytes(
  bytes: Buffer,
  opts: { historyEntry?: HistoryEntry | undefined; runId?: string } = {},
): EvidenceVerification {
  const { lines, complete } = splitLines(bytes);
  const total = lines.length;
  let runId = opts.runId;
  const bad = (line: number, reason: string): EvidenceVerification => ({
    status: 'tampered',
    lines: total,
    firstBadLine: line,
    reason,
    ...(runId ? { runId } : {}),
    indexed: opts.historyEntry !== undefined,
  });
  if (total === 0) return bad(1, 'events.jsonl is empty: the header line is missing');

  let prev = ZERO_HASH;
  let offset = 0;
  let finishedOutcome: Outcome | undefined;
  let seal: { lines: number; finalHash: string; outcome: Outcome; hash: string } | undefined;
  for (let i = 0; i < total; i++) {
    const n = i + 1;
    const raw = lines[i] as Buffer;
    if (seal) return bad(n, `line ${n} comes after the seal (line ${n - 1}): lines were appended to a sealed run`);
    if (n === total && !complete) return bad(n, `line ${n} is incomplete (no end of line): the file was cut in the middle of this line`);
    let value: unknown;
    try {
      value = JSON.parse(utf8.decode(raw));
    } catch {
      return bad(n, `line ${n} is not valid JSON: it was edited or damaged`);
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return bad(n, `line ${n} is not a JSON object`);
    const obj = value as Record<string, unknown>;
    if (obj['seq'] !== n) {
      return bad(
        n,
        `line ${n} carries seq ${JSON.stringify(obj['seq'])}, expected ${n}: a line was edited, deleted, inserted or reordered here`,
      );
    }
    const selfHash = expectedSelfHash(raw);
    if (selfHash === undefined || obj['h'] !== selfHash) return bad(n, `line ${n} was edited: its bytes do not match its own hash (h)`);
    if (obj['prev'] !== prev) {
      return bad(
        n,
        n === 1
          ? 'line 1 does not start the chain (prev is not 64 zeros)'
          : `line ${n} does not follow line ${n - 1} (prev hash differs): a line before it was replaced, deleted or reordered`,
      );
    }
    if (typeof obj['ts'] !== 'string' || typeof obj['t'] !== 'number') return bad(n, `line ${n} lacks ts or t`);
    const keys = ['header', 'event', 'note', 'seal'].filter((k) => k in obj);
    if (keys.length !== 1) return bad(n, `line ${n} must hold exactly one of header, event, note, seal`);
    const kind = keys[0];
    if (n === 1 && kind !== 'header') return bad(1, 'line 1 is not the header: the start of the file was removed or replaced');
    if (n > 1 && kind === 'header') return bad(n, `line ${n} is a second header`);
    if (kind === 'header') {
      const h = obj['header'] as Record<string, unknown> | null;
      if (typeof h?.['runId'] === 'string') runId = h['runId'];
    }
    if (kind === 'event') {
      const e = obj['event'] as Record<string, unknown> | null;
      if (!e || typeof e['type'] !== 'string') return bad(n, `line ${n} holds an event without a type`);
      if (e['type'] === 'run-finished') finishedOutcome = e['outcome'] as Outcome;
    }
    if (kind === 'seal') {
      const s = obj['seal'] as Record<string, unknown> | null;
      if (!s || s['lines'] !== n - 1)
        return bad(n, `line ${n}: the seal counts ${JSON.stringify(s?.['lines'])} lines before it, the file has ${n - 1}`);
      if (!isHex64(s['finalHash']) || s['finalHash'] !== sha256Hex(bytes.subarray(0, offset))) {
        return bad(n, `line ${n}: the seal's finalHash does not match the ${n - 1} lines before it`);
      }
      if (finishedOutcome === undefined) return bad(n, `line ${n}: a seal without a run-finished event before it`);
      if (s['outcome'] !== finishedOutcome)
        return bad(n, `line ${n}: the seal records outcome ${String(s['outcome'])}, the run-finished event ${finishedOutcome}`);
      seal = { lines: n - 1, finalHash: s['finalHash'], outcome: finishedOutcome, hash: sha256Hex(raw) };
    }
    prev = sha256Hex(raw);
    offset += raw.length + 1;
  }

  const entry = opts.historyEntry;
  const base = { lines: total, ...(runId ? { runId } : {}), indexed: entry !== undefined };
  if (seal) {
    if (entry && (entry.seal?.hash !== seal.hash || entry.seal.lines !== seal.lines)) {
      return bad(
        total,
        `line ${total}: the seal differs from the one history.jsonl records for this run (${entry.seal?.lines ?? '?'} lines, seal sha256 ${entry.seal?.hash ?? '?'})`,
      );
    }
    return { status: 'sealed', ...base, outcome: seal.outcome, sealHash: seal.hash };
  }
  if (entry) {
    return bad(
      total + 1,
      `history.jsonl records this run as sealed after ${entry.seal?.lines ?? '?'} lines (outcome ${entry.outcome}), but events.jsonl ends at line ${total} without a seal: lines were removed from the end`,
    );
  }
  return { status: 'unsealed', ...base, reason: `no seal after line ${total}: the run was interrupted before it finished` };
}

/** The history entry for a run, from <evidenceDir>/history.jsonl (the last one, if several). */
export async function findHistoryEntry(historyFile: string, runIds: string[]): Promise<HistoryEntry | undefined> {
  let text: string;
  try {
    text = await readFile(historyFile, 'utf8');
  } catch {
    return undefined;
  }
  return parseHistory(text)
    .filter((e) => runIds.includes(e.runId))
    .at(-1);
}

/**
 * Verify a run directory: the hash chain of events.jsonl, its seal, and the seal against the
 * history index of the evidence directory it sits in (so a sealed run cut short is not mistaken
 * for an interrupted one).
 */
export async function verifyEvidence(runDir: string, opts: { historyFile?: string; key?: KeyObject } = {}): Promise<EvidenceVerification> {
  const dir = path.resolve(runDir);
  let isDir = false;
  try {
    isDir = (await stat(dir)).isDirectory();
  } catch {
    isDir = false;
  }
  if (!isDir) {
    throw new RestoreAssistantError(`${dir} is not a run directory.`, ExitCode.usage, {
      untouched: 'Nothing was touched.',
      next: "`restore-assistant history` lists runs; pass the run's directory (<evidence dir>/<run id>).",
    });
  }
  const historyFile = opts.historyFile ?? path.join(path.dirname(dir), HISTORY_FILE);
  let bytes: Buffer;
  try {
    bytes = await readFile(path.join(dir, EVENTS_FILE));
  } catch (error) {
    const entry = await findHistoryEntry(historyFile, [path.basename(dir)]);
    if (!entry && !RUN_ID_PATTERN.test(path.basename(dir))) {
      throw new RestoreAssistantError(`${dir} is not a run directory (it holds no ${EVENTS_FILE}).`, ExitCode.usage, {
        untouched: 'Nothing was touched.',
        next: "Pass one run's directory, <evidence dir>/<run id>; `restore-assistant history` lists them.",
      });
    }
    return {
      status: 'tampered',
      lines: 0,
      firstBadLine: 1,
      reason: `${EVENTS_FILE} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'}): the record is missing`,
      runId: path.basename(dir),
      indexed: entry !== undefined,
    };
  }
  // The header names the run; look up both it and the directory name.
  const { lines } = splitLines(bytes);
  let headerRunId: string | undefined;
  try {
    const first = JSON.parse((lines[0] ?? Buffer.alloc(0)).toString('utf8')) as { header?: { runId?: unknown } };
    if (typeof first.header?.runId === 'string') headerRunId = first.header.runId;
  } catch {
    headerRunId = undefined;
  }
  const ids = [path.basename(dir), ...(headerRunId ? [headerRunId] : [])];
  const historyEntry = await findHistoryEntry(historyFile, ids);
  const v = verifyEvidenceBytes(bytes, { historyEntry, runId: headerRunId ?? path.basename(dir) });
  if (v.status !== 'sealed' || v.sealHash === undefined) return v;
  const sigText = await readSmall(path.join(dir, SIGNATURE_FILE));
  return { ...v, signature: checkSignature(sigText, { runId: v.runId ?? path.basename(dir), sealHash: v.sealHash }, opts.key) };
}

/** A small file's text (at most 64 KiB read), or undefined when it is missing. */
async function readSmall(file: string): Promise<string | undefined> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch {
    return undefined;
  }
  try {
    const buf = Buffer.alloc(64 * 1024);
    const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
    return buf.subarray(0, bytesRead).toString('utf8');
  } finally {
    await handle.close();
  }
}
