import { randomInt } from 'node:crypto';
import { raCommand } from '../text/next.js';
import { listBackupSets, type ListResult } from '../catalog/index.js';
import type { BackupSet } from '../catalog/types.js';
import { RestoreAssistantError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import type { LoadedRecipe } from '../recipe/load.js';
import { listOffsite, prefersLocal, type OffsiteListing, type OffsitePickOptions } from '../offsite/index.js';
import { offsiteUrl } from '../offsite/url.js';
import { listLocalOrNone, mergeListings, pickLocalOrOffsite } from '../offsite/pick.js';

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

/**
 * The set `--pick` chooses, among the local sets and (with backups.offsite) the bucket's, staged for
 * the drill: an off-site set is downloaded and checked, an encrypted one decrypted
 * (source/offsite/pick.ts). The note says where the picked set lives.
 */
export async function pickDrillSet(loaded: LoadedRecipe, pick: string, o: OffsitePickOptions): Promise<Picked> {
  if (!(PICKS as readonly string[]).includes(pick)) {
    throw new RestoreAssistantError(`--pick ${JSON.stringify(pick)} is not one of ${PICKS.join(', ')}.`, ExitCode.usage, {
      untouched: 'Nothing was touched.',
      next: `Use --pick ${PICKS.join(' or --pick ')}, or --backup ID.`,
    });
  }
  const b = loaded.recipe.backups;
  const [local, offsite]: [{ result?: ListResult; error?: RestoreAssistantError }, OffsiteListing | undefined] = await Promise.all([
    b.offsite
      ? listLocalOrNone(loaded)
      : listBackupSets({
          root: b.root,
          layout: b.layout,
          ...(b.database ? { database: b.database } : {}),
          pairWindowMinutes: b.pairWindowMinutes,
        }).then((result) => ({ result })),
    listOffsite(loaded, o.env),
  ]);
  const merged = mergeListings(local.result?.sets ?? [], offsite);
  const picked = pickFrom(
    merged.map((m) => m.set),
    pick as Pick,
    loaded.recipe.drill.intervalDays,
  );
  if (!picked) {
    if (local.error && !offsite) throw local.error;
    throw new RestoreAssistantError(
      `No backup sets found in ${b.root}${b.offsite ? ` or ${offsiteUrl(b.offsite)}` : ''} to pick from.`,
      ExitCode.backupRejected,
      {
        untouched: 'Nothing was touched.',
        next: `Check that the backup job writes there (\`${raCommand('list', '--recipe', loaded.file)}\`).`,
      },
    );
  }
  const entry = merged.find((m) => m.set === picked.set)!;
  const localSet = entry.where === 'off-site' ? undefined : entry.set;
  const fromBucket = entry.where === 'off-site' || (entry.where === 'both' && !prefersLocal(loaded));
  const where = fromBucket
    ? `off-site in ${offsiteUrl(b.offsite!)}${entry.where === 'both' ? ' (also on local disk; backups.offsite.prefer: offsite)' : ''}: it is downloaded to staging and verified there`
    : `on local disk in ${entry.set.location}${entry.where === 'both' ? ' (also off-site)' : ''}`;
  const set = await pickLocalOrOffsite(
    loaded,
    picked.set.id,
    () =>
      localSet
        ? Promise.resolve(localSet)
        : Promise.reject(new RestoreAssistantError(`No backup set ${picked.set.id} on local disk.`, ExitCode.usage)),
    o,
  );
  return { set, note: `${picked.note}; it lives ${where}${set.origin?.source === 'local' ? '; encrypted: decrypted into staging' : ''}` };
}
