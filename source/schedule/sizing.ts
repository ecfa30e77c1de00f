import { listBackupSets } from '../catalog/index.js';
import { isSuccessfulDrill, readHistory } from '../evidence/history.js';
import { type LoadedRecipe } from '../recipe/load.js';
import { evidenceDir } from '../state/paths.js';

/**
 * What the last successful drill of a recipe tells a scheduler: how long it took (from its
 * evidence) and how big the set it restored was (from the catalog, by the set id in the evidence;
 * the newest set when that one is gone). Undefined fields when there is no drill on record.
 */
export interface DrillSizing {
  source: 'last-drill' | 'catalog' | 'defaults';
  runId?: string;
  durationSeconds?: number;
  backupBytes?: number;
}

export async function lastDrillSizing(loaded: LoadedRecipe, env: NodeJS.ProcessEnv = process.env): Promise<DrillSizing> {
  const r = loaded.recipe;
  let runId: string | undefined;
  let durationSeconds: number | undefined;
  let setId: string | undefined;
  try {
    const view = await readHistory(evidenceDir(r, env), { recipe: r.name });
    const last = view.runs.find(isSuccessfulDrill);
    if (last) {
      runId = last.runId;
      setId = last.backup?.id;
      const ms = last.finishedAt ? Date.parse(last.finishedAt) - Date.parse(last.startedAt) : NaN;
      if (Number.isFinite(ms) && ms >= 0) durationSeconds = Math.ceil(ms / 1000);
    }
  } catch {
    // no evidence: defaults
  }
  let backupBytes: number | undefined;
  try {
    const { sets } = await listBackupSets({
      root: r.backups.root,
      layout: r.backups.layout,
      ...(r.backups.database ? { database: r.backups.database } : {}),
      pairWindowMinutes: r.backups.pairWindowMinutes,
    });
    const set = sets.find((s) => s.id === setId) ?? sets[0];
    if (set) backupBytes = set.totalSize;
  } catch {
    // backups not reachable from here (a scheduler host without them): defaults
  }
  const source = runId ? 'last-drill' : backupBytes !== undefined ? 'catalog' : 'defaults';
  return {
    source,
    ...(runId ? { runId } : {}),
    ...(durationSeconds !== undefined ? { durationSeconds } : {}),
    ...(backupBytes !== undefined ? { backupBytes } : {}),
  };
}

/** A time budget for one drill: four times the last one, at least an hour. */
export function timeBudgetSeconds(s: DrillSizing): number {
  return Math.max(3600, Math.ceil((s.durationSeconds ?? 0) * 4));
}

/** Kubernetes quantity in Mi, rounded up. */
function mi(bytes: number): string {
  return `${Math.ceil(bytes / (1024 * 1024))}Mi`;
}

/**
 * Requests for the drill's pod. The scratch PostgreSQL/Redis/Prometheus hold the restored data
 * next to the backup being read: ephemeral storage is three times the set (at least 2 GiB).
 * Memory and CPU are what the scratch services and pg_restore need for a typical set, more for
 * drills that took long.
 */
export function podResources(s: DrillSizing): { requests: Record<string, string>; limits: Record<string, string> } {
  const storage = Math.max(2 * 1024 ** 3, 3 * (s.backupBytes ?? 0));
  const long = (s.durationSeconds ?? 0) > 1800;
  const memory = long ? 2 * 1024 ** 3 : 1024 ** 3;
  return {
    requests: { cpu: long ? '1' : '500m', memory: mi(memory), 'ephemeral-storage': mi(storage) },
    limits: { memory: mi(memory * 2), 'ephemeral-storage': mi(storage * 2) },
  };
}
