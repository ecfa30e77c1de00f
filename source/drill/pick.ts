import { randomInt } from 'node:crypto';
import { raCommand } from '../text/next.js';
import { listBackupSets } from '../catalog/index.js';
import type { BackupSet } from '../catalog/types.js';
import { RestoreAssistantError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import type { LoadedRecipe } from '../recipe/load.js';

/**
 * `drill --pick`: which set a drill restores when it is not told. A drill of `latest` only ever
 * proves the newest backup; the quarterly drill should also prove that what retention keeps still
 * restores (old sets written by an older backup script, an older pg_dump).
 *
 * - random-recent: one set chosen at random among those taken within the recipe's drill interval
 *   (the newest when none is), so scheduled drills cover the whole recent window over time.
 * - oldest-retained: the oldest set in the catalog.
 */
export const PICKS = ['random-recent', 'oldest-retained'] as const;
export type Pick = (typeof PICKS)[number];

export interface Picked {
  set: BackupSet;
  /** One line for the evidence: how it was chosen, from how many. */
  note: string;
}

export function pickFrom(
  sets: BackupSet[],
  pick: Pick,
  intervalDays: number,
  now: Date = new Date(),
  rand: (n: number) => number = (n) => randomInt(n),
): Picked | undefined {
  if (sets.length === 0) return undefined;
  const byTime = [...sets].sort((a, b) => Date.parse(b.time) - Date.parse(a.time));
  if (pick === 'oldest-retained') {
    const set = byTime[byTime.length - 1] as BackupSet;
    return { set, note: `--pick oldest-retained: set ${set.id} (${set.time}), the oldest of ${sets.length} retained` };
  }
  const cutoff = now.getTime() - intervalDays * 86_400_000;
  const recent = byTime.filter((s) => Date.parse(s.time) >= cutoff);
  const pool = recent.length > 0 ? recent : byTime.slice(0, 1);
  const set = pool[rand(pool.length)] as BackupSet;
  return {
    set,
    note: `--pick random-recent: set ${set.id} (${set.time}), at random among ${pool.length} set${pool.length === 1 ? '' : 's'} ${recent.length > 0 ? `taken in the last ${intervalDays} days` : '(none in the drill interval: the newest)'}`,
  };
}

export async function pickDrillSet(loaded: LoadedRecipe, pick: string): Promise<Picked> {
  if (!(PICKS as readonly string[]).includes(pick)) {
    throw new RestoreAssistantError(`--pick ${JSON.stringify(pick)} is not one of ${PICKS.join(', ')}.`, ExitCode.usage, {
      untouched: 'Nothing was touched.',
      next: `Use --pick ${PICKS.join(' or --pick ')}, or --backup ID.`,
    });
  }
  const b = loaded.recipe.backups;
  const { sets } = await listBackupSets({
    root: b.root,
    layout: b.layout,
    ...(b.database ? { database: b.database } : {}),
    pairWindowMinutes: b.pairWindowMinutes,
  });
  const picked = pickFrom(sets, pick as Pick, loaded.recipe.drill.intervalDays);
  if (!picked) {
    throw new RestoreAssistantError(`No backup sets found in ${b.root} to pick from.`, ExitCode.backupRejected, {
      untouched: 'Nothing was touched.',
      next: `Check that the backup job writes there (\`${raCommand('list', '--recipe', loaded.file)}\`).`,
    });
  }
  return picked;
}
