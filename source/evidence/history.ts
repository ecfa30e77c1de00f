import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Outcome, RunKind } from '../engine/events.js';
import { formatAge } from '../output.js';
import { EVENTS_FILE, HISTORY_FILE, parseHistory, parseUploadRecords, type HistoryEntry, type UploadRecord } from './format.js';
import { buildReport } from './report.js';
import { normalizedRtoMs } from './rto.js';
import { verifyEvidenceBytes, type EvidenceStatus } from './verify.js';
import { sanitizeDeep } from '../text/sanitize.js';

export const DEFAULT_DRILL_INTERVAL_DAYS = 90;

export interface HistoryRun {
  runId: string;
  /** The run directory; null when only the history index knows the run (its directory is gone). */
  dir: string | null;
  kind: RunKind;
  recipe: string;
  operator: string;
  startedAt: string;
  finishedAt: string | null;
  backup: { id: string; time: string } | null;
  /** 'interrupted' with finished=false for a run that never recorded its end (killed). */
  outcome: Outcome;
  finished: boolean;
  exitCode: number | null;
  rtoMs: number | null;
  rpoMs: number | null;
  objectives: { rtoMinutes: number | null; rpoMinutes: number | null };
  rtoMet: boolean | null;
  rpoMet: boolean | null;
  /** What `evidence verify` says about the run directory ('missing' when it is gone). */
  evidence: EvidenceStatus | 'missing';
  evidenceProblem?: string;
  /** Whether history.jsonl has an entry for it. */
  indexed: boolean;
  sealHash: string | null;
  drillIntervalDays?: number;
  /** The last upload record of the run (evidence.upload: uploaded with keys and ETags, or failed and why); absent when never tried. */
  upload?: UploadRecord;
}

export interface RtoTrend {
  recipe: string;
  /** Successful drills with a measured RTO, oldest first. */
  points: Array<{ runId: string; at: string; rtoMs: number }>;
  /** The latest drill's RTO against the average of up to three before it (10 % either way is steady). */
  direction: 'better' | 'worse' | 'steady' | 'n/a';
  changePct: number | null;
}

export interface DrillFreshness {
  recipe: string;
  intervalDays: number;
  lastSuccessfulDrill: { runId: string; at: string } | null;
  ageDays: number | null;
  stale: boolean;
  warning?: string;
}

/** A file or directory of the evidence this user could not read (EACCES, EPERM, EIO...): the view is incomplete. */
export interface UnreadableEvidence {
  path: string;
  code: string;
}

export interface HistoryView {
  evidenceDir: string;
  runs: HistoryRun[];
  /** What could not be read (not what is absent): when non-empty, runs may be missing from the view. */
  unreadable: UnreadableEvidence[];
  trends: RtoTrend[];
  freshness: DrillFreshness[];
}

export interface ReadHistoryOptions {
  /** Only runs of this recipe (its name). */
  recipe?: string;
  /** The recipe's drill.intervalDays (default: what the newest run recorded, else 90). */
  intervalDays?: number;
  now?: Date;
}

function met(measured: number | null, targetMinutes: number | null): boolean | null {
  return measured !== null && targetMinutes !== null ? measured <= targetMinutes * 60_000 : null;
}

function errorCode(error: unknown): string {
  return (error as NodeJS.ErrnoException | undefined)?.code ?? 'error';
}

/** The run directories; an evidence directory that does not exist has none, one that cannot be read is recorded. */
async function listRunDirs(evidenceDir: string, unreadable: UnreadableEvidence[]): Promise<string[]> {
  try {
    const entries = await readdir(evidenceDir, { withFileTypes: true });
    return entries.filter((e) => e.isDirectory()).map((e) => e.name);
  } catch (error) {
    if (errorCode(error) !== 'ENOENT') unreadable.push({ path: evidenceDir, code: errorCode(error) });
    return [];
  }
}

/** One run, from its directory (and its history entry when there is one). */
async function readRun(
  evidenceDir: string,
  name: string,
  entry: HistoryEntry | undefined,
  unreadable: UnreadableEvidence[],
): Promise<HistoryRun | undefined> {
  const dir = path.join(evidenceDir, name);
  let bytes: Buffer;
  try {
    bytes = await readFile(path.join(dir, EVENTS_FILE));
  } catch (error) {
    const code = errorCode(error);
    if (code !== 'ENOENT' && code !== 'ENOTDIR') {
      // Not "missing": this user cannot read it (a run recorded by root, read by an operator).
      unreadable.push({ path: path.join(dir, EVENTS_FILE), code });
      if (!entry) return undefined;
      return { ...fromEntry(entry, dir), evidence: 'missing', evidenceProblem: `${EVENTS_FILE} cannot be read (${code})` };
    }
    if (!entry) return undefined; // not a run directory
    return { ...fromEntry(entry, null), evidence: 'tampered', evidenceProblem: `${EVENTS_FILE} is missing` };
  }
  const v = verifyEvidenceBytes(bytes, { historyEntry: entry, runId: name });
  const problem = v.status === 'tampered' ? { evidenceProblem: `line ${v.firstBadLine ?? '?'}: ${v.reason ?? 'hash chain broken'}` } : {};
  if (entry) return { ...fromEntry(entry, dir), evidence: v.status, ...problem };
  const r = buildReport(bytes, { status: v.status, lines: v.lines }, dir);
  return {
    runId: r.runId,
    dir,
    kind: r.kind,
    recipe: r.recipe.name,
    operator: r.operator,
    startedAt: r.startedAt,
    finishedAt: r.finishedAt,
    backup: r.backup ? { id: r.backup.id, time: r.backup.time } : null,
    outcome: r.outcome,
    finished: r.finished && v.status === 'sealed',
    exitCode: r.exitCode,
    rtoMs: r.rto.measuredMs,
    rpoMs: r.rpo.measuredMs,
    objectives: { rtoMinutes: r.rto.targetMinutes, rpoMinutes: r.rpo.targetMinutes },
    rtoMet: r.rto.met,
    rpoMet: r.rpo.met,
    evidence: v.status,
    ...problem,
    indexed: false,
    sealHash: v.sealHash ?? null,
  };
}

function fromEntry(e: HistoryEntry, dir: string | null): HistoryRun {
  // One RTO definition (evidence/rto.ts): an entry written before it (no rtoFrom) is normalised.
  const rtoMs = 'rtoFrom' in e ? e.rtoMs : normalizedRtoMs(e.kind, e.rtoMs, { confirmedAt: e.confirmedAt, runStartedAt: e.startedAt });
  return {
    runId: e.runId,
    dir,
    kind: e.kind,
    recipe: e.recipe.name,
    operator: e.operator,
    startedAt: e.startedAt,
    finishedAt: e.finishedAt,
    backup: e.backup,
    outcome: e.outcome,
    finished: true,
    exitCode: e.exitCode,
    rtoMs,
    rpoMs: e.rpoMs,
    objectives: e.objectives,
    rtoMet: met(rtoMs, e.objectives.rtoMinutes),
    rpoMet: met(e.rpoMs, e.objectives.rpoMinutes),
    evidence: 'missing',
    indexed: true,
    sealHash: e.seal.hash,
    ...(e.drillIntervalDays !== undefined ? { drillIntervalDays: e.drillIntervalDays } : {}),
  };
}

/** A drill that counts: finished restored (healthy), with evidence that is not tampered or gone. */
export function isSuccessfulDrill(r: HistoryRun): boolean {
  return r.kind === 'drill' && r.finished && r.outcome === 'restored' && r.evidence === 'sealed';
}

export function rtoTrend(recipe: string, runs: HistoryRun[]): RtoTrend {
  const points = runs
    .filter((r) => r.recipe === recipe && isSuccessfulDrill(r) && r.rtoMs !== null)
    .map((r) => ({ runId: r.runId, at: r.startedAt, rtoMs: r.rtoMs as number }))
    .sort((a, b) => a.at.localeCompare(b.at));
  const latest = points.at(-1);
  const before = points.slice(-4, -1);
  if (!latest || before.length === 0) return { recipe, points, direction: 'n/a', changePct: null };
  const avg = before.reduce((s, p) => s + p.rtoMs, 0) / before.length;
  const changePct = avg === 0 ? 0 : Math.round(((latest.rtoMs - avg) / avg) * 100);
  const direction = changePct > 10 ? 'worse' : changePct < -10 ? 'better' : 'steady';
  return { recipe, points, direction, changePct };
}

export function drillFreshness(recipe: string, runs: HistoryRun[], intervalDays: number, now: Date): DrillFreshness {
  const last = runs.filter((r) => r.recipe === recipe && isSuccessfulDrill(r)).sort((a, b) => b.startedAt.localeCompare(a.startedAt))[0];
  if (!last) {
    return {
      recipe,
      intervalDays,
      lastSuccessfulDrill: null,
      ageDays: null,
      stale: true,
      warning: `${recipe}: no successful drill on record. Run \`restore-assistant drill --recipe ${recipe}\` to prove its backups restore.`,
    };
  }
  const ageMs = Math.max(0, now.getTime() - Date.parse(last.startedAt));
  const ageDays = Math.floor(ageMs / 86_400_000);
  const stale = ageMs > intervalDays * 86_400_000;
  return {
    recipe,
    intervalDays,
    lastSuccessfulDrill: { runId: last.runId, at: last.startedAt },
    ageDays,
    stale,
    ...(stale
      ? {
          warning: `${recipe}: the last successful drill was ${formatAge(ageMs)} ago (${last.startedAt.slice(0, 10)}), older than the drill interval of ${intervalDays} days. Run \`restore-assistant drill --recipe ${recipe}\`.`,
        }
      : {}),
  };
}

/**
 * Every run recorded in an evidence directory, newest first: those in history.jsonl and those with
 * only a run directory (killed mid-way: 'interrupted'), each with its evidence checked. Plus the
 * RTO trend across drills and drill freshness per recipe.
 */
export async function readHistory(evidenceDir: string, opts: ReadHistoryOptions = {}): Promise<HistoryView> {
  const root = path.resolve(evidenceDir);
  const now = opts.now ?? new Date();
  const unreadable: UnreadableEvidence[] = [];
  let entries: HistoryEntry[] = [];
  const uploads = new Map<string, UploadRecord>();
  try {
    const text = await readFile(path.join(root, HISTORY_FILE), 'utf8');
    entries = parseHistory(text);
    for (const u of parseUploadRecords(text)) uploads.set(u.runId, sanitizeDeep(u));
  } catch (error) {
    if (errorCode(error) !== 'ENOENT') unreadable.push({ path: path.join(root, HISTORY_FILE), code: errorCode(error) });
    entries = [];
  }
  const byId = new Map<string, HistoryEntry>();
  // history.jsonl may have been written by anyone who could write the evidence dir: its strings
  // are shown escaped (text/sanitize.ts), like everything else from outside.
  for (const e of entries) byId.set(e.runId, sanitizeDeep(e));

  const runs: HistoryRun[] = [];
  const seen = new Set<string>();
  for (const name of await listRunDirs(root, unreadable)) {
    const run = await readRun(root, name, byId.get(name), unreadable);
    if (!run) continue;
    seen.add(name);
    runs.push(run);
  }
  for (const e of byId.values()) {
    if (seen.has(e.runId)) continue;
    runs.push({ ...fromEntry(e, null), evidence: 'missing', evidenceProblem: 'the run directory is gone' });
  }
  for (const r of runs) {
    const u = uploads.get(r.runId);
    if (u) r.upload = u;
  }
  const filtered = (opts.recipe ? runs.filter((r) => r.recipe === opts.recipe) : runs).sort(
    (a, b) => b.startedAt.localeCompare(a.startedAt) || b.runId.localeCompare(a.runId),
  );

  const recipes = opts.recipe ? [opts.recipe] : [...new Set(filtered.map((r) => r.recipe))].sort();
  const intervalFor = (recipe: string): number =>
    opts.intervalDays ??
    filtered.find((r) => r.recipe === recipe && r.drillIntervalDays !== undefined)?.drillIntervalDays ??
    DEFAULT_DRILL_INTERVAL_DAYS;
  return {
    evidenceDir: root,
    runs: filtered,
    unreadable,
    trends: recipes.map((r) => rtoTrend(r, filtered)),
    freshness: recipes.map((r) => drillFreshness(r, filtered, intervalFor(r), now)),
  };
}
