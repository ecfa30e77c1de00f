import type { BackupSet } from '../catalog/types.js';
import type { RunKind } from '../engine/events.js';
import type { HistoryRun } from '../evidence/history.js';
import { HEALTH_CHECKS, type BackupHealth } from '../health/backups.js';
import type { Recipe } from '../recipe/schema.js';
import type { MetricFamily, Sample } from './exposition.js';

/**
 * The metrics of one recipe, computed from its whole evidence history and its backup catalog (not
 * from the run that just ended alone), so every write is the complete state: a lost write or a
 * host that stops running drills is corrected or caught by the next one, and Prometheus's
 * `time() - ..._timestamp_seconds` keeps ageing between runs. docs/drills.md lists every series.
 */

export const PREFIX = 'restore_assistant';

export interface CollectInput {
  recipe: Recipe;
  /** Runs of this recipe, any order. */
  runs: HistoryRun[];
  /** The catalog listing, or why it failed. */
  catalog: { sets: BackupSet[] } | { error: string };
  health?: BackupHealth;
  now: Date;
}

const KINDS: RunKind[] = ['restore', 'drill', 'verify'];

/** A run that counts as a success: finished, evidence not tampered or gone, restored (drill, restore) or verified. */
export function isSuccess(r: HistoryRun): boolean {
  if (!r.finished || r.evidence === 'tampered' || r.evidence === 'missing' || r.evidence === 'unsealed') return false;
  return r.kind === 'verify' ? r.outcome === 'verified' : r.outcome === 'restored';
}

function seconds(iso: string | null | undefined): number | undefined {
  if (!iso) return undefined;
  const ms = Date.parse(iso);
  return Number.isFinite(ms) ? ms / 1000 : undefined;
}

function endOf(r: HistoryRun): number | undefined {
  return seconds(r.finishedAt) ?? seconds(r.startedAt);
}

function newestFirst(runs: HistoryRun[]): HistoryRun[] {
  return [...runs].sort((a, b) => b.startedAt.localeCompare(a.startedAt) || b.runId.localeCompare(a.runId));
}

export function collectMetrics(input: CollectInput): MetricFamily[] {
  const recipe = input.recipe.name;
  const runs = newestFirst(input.runs.filter((r) => r.recipe === recipe));
  const fam = (name: string, help: string, samples: Sample[]): MetricFamily => ({
    name: `${PREFIX}_${name}`,
    help,
    type: 'gauge',
    samples,
  });
  const l = (extra: Record<string, string> = {}): Record<string, string> => ({ recipe, ...extra });

  const lastRun: Sample[] = [];
  const seen = new Set<string>();
  for (const r of runs) {
    const outcome = r.finished ? r.outcome : 'interrupted';
    const key = `${r.kind}/${outcome}`;
    const at = endOf(r);
    if (seen.has(key) || at === undefined) continue;
    seen.add(key);
    lastRun.push({ labels: l({ kind: r.kind, outcome }), value: at });
  }

  const lastSuccess: Sample[] = [];
  const lastOk: Sample[] = [];
  const lastExit: Sample[] = [];
  const rto: Sample[] = [];
  const rpo: Sample[] = [];
  for (const kind of KINDS) {
    const ofKind = runs.filter((r) => r.kind === kind);
    const latest = ofKind[0];
    if (latest) {
      lastOk.push({ labels: l({ kind }), value: isSuccess(latest) ? 1 : 0 });
      if (latest.exitCode !== null) lastExit.push({ labels: l({ kind }), value: latest.exitCode });
    }
    const success = ofKind.find(isSuccess);
    const at = success ? endOf(success) : undefined;
    if (at !== undefined) lastSuccess.push({ labels: l({ kind }), value: at });
    if (kind === 'verify') continue;
    const withRto = ofKind.find((r) => r.rtoMs !== null && r.finished);
    if (withRto?.rtoMs != null) rto.push({ labels: l({ kind }), value: withRto.rtoMs / 1000 });
    const withRpo = ofKind.find((r) => r.rpoMs !== null && r.finished);
    if (withRpo?.rpoMs != null) rpo.push({ labels: l({ kind }), value: withRpo.rpoMs / 1000 });
  }

  // The latest verification result: a verify run, or a drill/restore refused because its set was rejected (exit 3).
  const verification = runs.find((r) => r.finished && (r.kind === 'verify' || r.exitCode === 3));
  const verifyOk: Sample[] = verification
    ? [{ labels: l(), value: verification.kind === 'verify' ? (verification.outcome === 'verified' ? 1 : 0) : 0 }]
    : [];
  const verifyAt = verification ? endOf(verification) : undefined;

  const obj = input.recipe.objectives;
  const families: MetricFamily[] = [
    fam('last_run_timestamp_seconds', 'When the latest run of this kind with this outcome ended (Unix seconds).', lastRun),
    fam(
      'last_run_success',
      '1 when the latest run of this kind succeeded (drill/restore: restored and healthy; verify: verified), else 0.',
      lastOk,
    ),
    fam('last_run_exit_code', 'Exit code of the latest run of this kind (README: exit codes).', lastExit),
    fam(
      'last_success_timestamp_seconds',
      'When the latest successful run of this kind ended (Unix seconds); absent when none succeeded.',
      lastSuccess,
    ),
    fam('drill_interval_seconds', "The recipe's drill.intervalDays in seconds: a drill is overdue when the last successful one is older.", [
      { labels: l(), value: input.recipe.drill.intervalDays * 86_400 },
    ]),
    fam('rto_seconds', 'RTO of the latest run of this kind that measured one: confirm to healthy, seconds.', rto),
    fam(
      'rto_target_seconds',
      "The recipe's RTO target (objectives.rtoMinutes) in seconds.",
      obj.rtoMinutes !== undefined ? [{ labels: l(), value: obj.rtoMinutes * 60 }] : [],
    ),
    fam('rpo_seconds', "RPO of the latest run of this kind: the restored backup's age, seconds.", rpo),
    fam(
      'rpo_target_seconds',
      "The recipe's RPO target (objectives.rpoMinutes) in seconds.",
      obj.rpoMinutes !== undefined ? [{ labels: l(), value: obj.rpoMinutes * 60 }] : [],
    ),
    fam('verify_success', '1 when the latest verification of a backup set passed, 0 when it rejected the set.', verifyOk),
    fam(
      'verify_timestamp_seconds',
      'When that verification ended (Unix seconds).',
      verifyAt !== undefined ? [{ labels: l(), value: verifyAt }] : [],
    ),
  ];

  const catalogOk = !('error' in input.catalog);
  families.push(
    fam('backup_catalog_ok', "1 when the backup root could be listed, 0 when it could not (see the run's output).", [
      { labels: l(), value: catalogOk ? 1 : 0 },
    ]),
  );
  if (!('error' in input.catalog)) {
    const health = input.health;
    const nowS = input.now.getTime() / 1000;
    families.push(
      fam('backup_sets', "Backup sets found in the recipe's backup root.", [{ labels: l(), value: input.catalog.sets.length }]),
    );
    if (health) {
      families.push(
        fam(
          'backup_newest_timestamp_seconds',
          'When the newest backup of this component was taken, as the backup records it (Unix seconds).',
          health.newest.map((n) => ({ labels: l({ component: n.component }), value: Date.parse(n.time) / 1000 })),
        ),
        fam(
          'backup_newest_age_seconds',
          'Age of the newest backup of this component when these metrics were written (alert on time() - backup_newest_timestamp_seconds instead).',
          health.newest.map((n) => ({
            labels: l({ component: n.component }),
            value: Math.max(0, Math.round(nowS - Date.parse(n.time) / 1000)),
          })),
        ),
        fam(
          'backup_newest_size_bytes',
          'Size on disk of the newest backup of this component.',
          health.newest.map((n) => ({ labels: l({ component: n.component }), value: n.size })),
        ),
        fam(
          'backup_previous_median_size_bytes',
          'Median size of this component over the previous sets (backupHealth.compareLast); absent with fewer than 2.',
          health.newest.flatMap((n) =>
            n.medianOfPrevious === null ? [] : [{ labels: l({ component: n.component }), value: n.medianOfPrevious }],
          ),
        ),
        fam(
          'backup_health_problem',
          '1 when the backup-health check fails for the newest set (stale, size_drop, time_skew, checksum_missing, no_backups), else 0.',
          HEALTH_CHECKS.map((check) => ({ labels: l({ check }), value: health.problems.some((p) => p.check === check) ? 1 : 0 })),
        ),
      );
    }
  }
  families.push(
    fam('metrics_timestamp_seconds', 'When restore-assistant last wrote these metrics (Unix seconds).', [
      { labels: l(), value: Math.round(input.now.getTime() / 1000) },
    ]),
  );
  return families;
}
