import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { DEFAULT_DRILL_INTERVAL_DAYS, drillFreshness, readHistory, rtoTrend, type HistoryRun, type RtoTrend } from '../evidence/history.js';
import { EVENTS_FILE, HISTORY_FILE, parseHistory, RUN_ID_PATTERN } from '../evidence/format.js';

/**
 * `history --fleet SOURCE`: one row per host and recipe, from a directory holding the evidence
 * directories of many hosts (copied, synced or mounted there, one sub-directory each, any depth up
 * to six). Nothing is trusted: every run's evidence is verified as `history` does, symlinks are
 * not followed, and host/recipe names are shown sanitised by the caller.
 */

export interface FleetRow {
  host: string;
  recipe: string;
  evidenceDir: string;
  runs: number;
  lastDrill: { runId: string; at: string; outcome: string; finished: boolean; exitCode: number | null; rtoMs: number | null } | null;
  lastSuccessfulDrill: { runId: string; at: string } | null;
  intervalDays: number;
  overdue: boolean;
  /** Days since the last successful drill (null: none on record). */
  drillAgeDays: number | null;
  rtoTrend: Pick<RtoTrend, 'direction' | 'changePct'> & { points: number[] };
  rtoTargetMinutes: number | null;
  /** The newest backup any run of this recipe on this host used or checked: its age now. */
  newestBackup: { id: string; time: string; ageSeconds: number } | null;
  /** Runs whose evidence is tampered or gone. */
  damagedEvidence: number;
}

export interface FleetView {
  source: string;
  evidenceDirs: string[];
  rows: FleetRow[];
  generatedAt: string;
}

const MAX_DEPTH = 6;

async function isEvidenceDir(dir: string, names: Array<{ name: string; isDir: boolean }>): Promise<boolean> {
  if (names.some((n) => !n.isDir && n.name === HISTORY_FILE)) return true;
  for (const n of names) {
    if (!n.isDir || !RUN_ID_PATTERN.test(n.name)) continue;
    try {
      const inner = await readdir(path.join(dir, n.name));
      if (inner.includes(EVENTS_FILE)) return true;
    } catch {
      // unreadable: not counted
    }
  }
  return false;
}

/** Evidence directories under `source` (itself included), without following symlinks. */
export async function findEvidenceDirs(source: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (dir: string, depth: number): Promise<void> => {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    const names = entries.map((e) => ({ name: e.name, isDir: e.isDirectory() }));
    if (await isEvidenceDir(dir, names)) {
      found.push(dir);
      return;
    }
    if (depth >= MAX_DEPTH) return;
    for (const e of entries.filter((x) => x.isDirectory()).sort((a, b) => a.name.localeCompare(b.name)))
      await walk(path.join(dir, e.name), depth + 1);
  };
  await walk(path.resolve(source), 0);
  return found;
}

/** runId → host, from history.jsonl and, for runs it lacks, the header line of events.jsonl. */
async function hostsOf(dir: string, runs: HistoryRun[]): Promise<Map<string, string>> {
  const map = new Map<string, string>();
  try {
    for (const e of parseHistory(await readFile(path.join(dir, HISTORY_FILE), 'utf8')))
      if (typeof e.host === 'string') map.set(e.runId, e.host);
  } catch {
    // no index
  }
  for (const r of runs) {
    if (map.has(r.runId) || !r.dir) continue;
    try {
      const text = await readFile(path.join(r.dir, EVENTS_FILE), 'utf8');
      const first = JSON.parse(text.split('\n', 1)[0] ?? '') as { header?: { host?: unknown } };
      if (typeof first.header?.host === 'string') map.set(r.runId, first.header.host);
    } catch {
      // unreadable header: host unknown
    }
  }
  return map;
}

export async function readFleet(source: string, now: Date = new Date()): Promise<FleetView> {
  const dirs = await findEvidenceDirs(source);
  const rows: FleetRow[] = [];
  for (const dir of dirs) {
    const view = await readHistory(dir, { now });
    const hosts = await hostsOf(dir, view.runs);
    const groups = new Map<string, HistoryRun[]>();
    for (const r of view.runs) {
      const host = hosts.get(r.runId) ?? path.basename(path.dirname(dir)) ?? 'unknown';
      const key = JSON.stringify([host, r.recipe]);
      groups.set(key, [...(groups.get(key) ?? []), r]);
    }
    for (const [key, runs] of groups) {
      const [host, recipe] = JSON.parse(key) as [string, string];
      const interval = runs.find((r) => r.drillIntervalDays !== undefined)?.drillIntervalDays ?? DEFAULT_DRILL_INTERVAL_DAYS;
      const fresh = drillFreshness(recipe, runs, interval, now);
      const trend = rtoTrend(recipe, runs);
      const drill = runs.find((r) => r.kind === 'drill');
      const withBackup = runs
        .filter((r) => r.backup && Number.isFinite(Date.parse(r.backup.time)))
        .sort((a, b) => Date.parse(b.backup?.time ?? '') - Date.parse(a.backup?.time ?? ''))[0];
      const target = runs.find((r) => r.objectives.rtoMinutes !== null)?.objectives.rtoMinutes ?? null;
      rows.push({
        host,
        recipe,
        evidenceDir: dir,
        runs: runs.length,
        lastDrill: drill
          ? {
              runId: drill.runId,
              at: drill.startedAt,
              outcome: drill.finished ? drill.outcome : 'interrupted',
              finished: drill.finished,
              exitCode: drill.exitCode,
              rtoMs: drill.rtoMs,
            }
          : null,
        lastSuccessfulDrill: fresh.lastSuccessfulDrill,
        intervalDays: interval,
        overdue: fresh.stale,
        drillAgeDays: fresh.ageDays,
        rtoTrend: { direction: trend.direction, changePct: trend.changePct, points: trend.points.map((p) => p.rtoMs) },
        rtoTargetMinutes: target,
        newestBackup: withBackup?.backup
          ? {
              id: withBackup.backup.id,
              time: withBackup.backup.time,
              ageSeconds: Math.max(0, Math.round((now.getTime() - Date.parse(withBackup.backup.time)) / 1000)),
            }
          : null,
        damagedEvidence: runs.filter((r) => r.evidence === 'tampered' || r.evidence === 'missing').length,
      });
    }
  }
  rows.sort((a, b) => a.host.localeCompare(b.host) || a.recipe.localeCompare(b.recipe));
  return { source: path.resolve(source), evidenceDirs: dirs, rows, generatedAt: now.toISOString() };
}
