import { type BackupSet, COMPONENT_KINDS, type ComponentKind } from '../catalog/types.js';
import { formatAge, formatBytes } from '../output.js';

/**
 * Backup health from the catalog alone (no hashing, no restore): what a silently failing backup
 * job looks like before anyone needs the backup. GitLab's 2017 outage found its pg_dump backups
 * had been a few bytes for months; the audits list "check backup age, alert if failed, track
 * backup sizes" as missing. Computed at every run (exported as metrics), in `list`, and in the guide.
 */

export type HealthCheck = 'stale' | 'size_drop' | 'time_skew' | 'checksum_missing' | 'no_backups';

export const HEALTH_CHECKS: readonly HealthCheck[] = ['no_backups', 'stale', 'size_drop', 'time_skew', 'checksum_missing'];

export interface HealthProblem {
  check: HealthCheck;
  /** The set it concerns (absent for no_backups). */
  setId?: string;
  component?: ComponentKind;
  message: string;
}

export interface HealthThresholds {
  /** The recipe's RPO target; without one, staleness is not judged. */
  rpoMinutes?: number;
  sizeDropPercent: number;
  compareLast: number;
  maxSkewMinutes: number;
}

export const DEFAULT_HEALTH: HealthThresholds = { sizeDropPercent: 50, compareLast: 5, maxSkewMinutes: 60 };

export interface ComponentNewest {
  component: ComponentKind;
  setId: string;
  time: string;
  size: number;
  /** Median size of this component over up to compareLast older sets; null with fewer than 2. */
  medianOfPrevious: number | null;
}

export interface BackupHealth {
  ok: boolean;
  /** Problems of the newest set, and staleness: what alerts are about. */
  problems: HealthProblem[];
  /** Per set id (newest first as given), the checks it fails (size_drop, time_skew, checksum_missing). */
  bySet: Record<string, HealthCheck[]>;
  /** The newest set carrying each component. */
  newest: ComponentNewest[];
  newestSet: { id: string; time: string; ageSeconds: number } | null;
}

function median(values: number[]): number | null {
  if (values.length < 2) return null;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/**
 * Sizes of `kind` in the (at most `count`) sets after `index` that carry it. Stops at `count`: the
 * whole tail for every set made a listing of 1,000 sets quadratic.
 */
function previousSizes(sets: BackupSet[], index: number, kind: ComponentKind, count: number): number[] {
  const out: number[] = [];
  for (let j = index + 1; j < sets.length && out.length < count; j++) {
    const x = sets[j]?.components.find((y) => y.kind === kind);
    if (x) out.push(x.size);
  }
  return out;
}

/** The checks one set fails (size_drop against the sets after it in the list, time_skew, checksum_missing). */
export function setProblems(sets: BackupSet[], index: number, t: HealthThresholds = DEFAULT_HEALTH): HealthProblem[] {
  const set = sets[index] as BackupSet;
  const out: HealthProblem[] = [];
  for (const c of set.components) {
    const previous = previousSizes(sets, index, c.kind, t.compareLast);
    const m = median(previous);
    if (m !== null && m > 0 && c.size < m * (1 - t.sizeDropPercent / 100)) {
      out.push({
        check: 'size_drop',
        setId: set.id,
        component: c.kind,
        message: `${set.id}: ${c.kind} is ${formatBytes(c.size)}, ${Math.round((1 - c.size / m) * 100)}% smaller than the median of the ${previous.length} sets before it (${formatBytes(Math.round(m))}): is the backup job failing silently?`,
      });
    }
  }
  const times = set.components
    .flatMap((c) => (c.time ? [{ kind: c.kind, ms: Date.parse(c.time) }] : []))
    .filter((x) => Number.isFinite(x.ms));
  if (times.length >= 2) {
    const min = times.reduce((a, b) => (b.ms < a.ms ? b : a));
    const max = times.reduce((a, b) => (b.ms > a.ms ? b : a));
    if (max.ms - min.ms > t.maxSkewMinutes * 60_000) {
      out.push({
        check: 'time_skew',
        setId: set.id,
        message: `${set.id}: its components were taken ${formatAge(max.ms - min.ms)} apart (${min.kind} ${new Date(min.ms).toISOString()}, ${max.kind} ${new Date(max.ms).toISOString()}), more than ${t.maxSkewMinutes} minutes: restoring them together mixes two points in time.`,
      });
    }
  }
  const files = set.components.filter((c) => c.format !== 'pg-directory');
  const absent = files.filter((c) => c.checksum === 'absent');
  if (files.length > 0 && absent.length > 0) {
    out.push({
      check: 'checksum_missing',
      setId: set.id,
      message: `${set.id}: no checksum recorded for ${absent.map((c) => c.kind).join(', ')}: damage in storage or transfer cannot be told from a good file (write a SHA256SUMS or .sha256 sidecar in the backup job).`,
    });
  }
  return out;
}

/** Health of a catalog listing (sets newest first, as listBackupSets returns them). */
export function assessBackupHealth(sets: BackupSet[], thresholds: Partial<HealthThresholds> = {}, now: Date = new Date()): BackupHealth {
  const t: HealthThresholds = { ...DEFAULT_HEALTH, ...thresholds };
  const bySet: Record<string, HealthCheck[]> = {};
  const perSet = sets.map((_, i) => setProblems(sets, i, t));
  sets.forEach((s, i) => {
    const checks = [...new Set((perSet[i] ?? []).map((p) => p.check))];
    if (checks.length > 0) bySet[s.id] = checks;
  });
  const problems: HealthProblem[] = [];
  const first = sets[0];
  if (!first) {
    problems.push({ check: 'no_backups', message: 'no backup sets found: the backup job is not writing where the recipe looks.' });
    return { ok: false, problems, bySet, newest: [], newestSet: null };
  }
  const ageMs = Math.max(0, now.getTime() - Date.parse(first.time));
  if (t.rpoMinutes !== undefined && ageMs > t.rpoMinutes * 60_000) {
    problems.push({
      check: 'stale',
      setId: first.id,
      message: `the newest set ${first.id} is ${formatAge(ageMs)} old, older than the RPO target of ${formatAge(t.rpoMinutes * 60_000)}: a restore now would lose more data than agreed.`,
    });
  }
  problems.push(...(perSet[0] ?? []));
  const newest: ComponentNewest[] = [];
  for (const kind of COMPONENT_KINDS) {
    const idx = sets.findIndex((s) => s.components.some((c) => c.kind === kind));
    if (idx < 0) continue;
    const s = sets[idx] as BackupSet;
    const c = s.components.find((x) => x.kind === kind);
    if (!c) continue;
    const previous = previousSizes(sets, idx, kind, t.compareLast);
    newest.push({ component: kind, setId: s.id, time: c.time ?? s.time, size: c.size, medianOfPrevious: median(previous) });
  }
  return {
    ok: problems.length === 0,
    problems,
    bySet,
    newest,
    newestSet: { id: first.id, time: first.time, ageSeconds: Math.round(ageMs / 1000) },
  };
}

/** Short words for a table cell. */
export function healthCell(checks: HealthCheck[] | undefined): string {
  if (!checks || checks.length === 0) return '';
  const words: Record<HealthCheck, string> = {
    size_drop: 'SMALL',
    time_skew: 'skew',
    checksum_missing: 'no-sums',
    stale: 'stale',
    no_backups: 'none',
  };
  return checks.map((c) => words[c]).join(',');
}
