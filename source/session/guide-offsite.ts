import type { BackupSet } from '../catalog/types.js';
import type { Redactor } from '../exec/redact.js';
import { offsiteUrl } from '../offsite/client.js';
import { listOffsite, pickOffsiteSet } from '../offsite/index.js';
import { listLocalOrNone, mergeListings, stagePicked } from '../offsite/pick.js';
import type { LoadedRecipe } from '../recipe/load.js';
import type { SetListing } from '../ui/types.js';

/**
 * The guide's side of off-site sets (source/offsite/): the backup list holds the local and the
 * bucket's sets together, each with where it lives; a set only in the bucket is staged on local
 * disk (download with byte progress and ETA, checksums, decryption) when it is chosen, before the
 * local verification. Nothing is downloaded to list.
 */

export async function guideListing(
  loaded: LoadedRecipe,
  env: NodeJS.ProcessEnv,
): Promise<{ listing: SetListing; offsiteOnly: BackupSet[] }> {
  const o = loaded.recipe.backups.offsite;
  const [local, offsite] = await Promise.all([listLocalOrNone(loaded), listOffsite(loaded, env)]);
  // A local root that does not exist (a rebuilt host) is an empty local side, said as a warning.
  if (local.error && (offsite?.sets.length ?? 0) === 0) throw local.error;
  const merged = mergeListings(local.result?.sets ?? [], offsite);
  const where: NonNullable<SetListing['where']> = {};
  for (const m of merged) where[m.set.id] = m.where;
  const listing: SetListing = {
    sets: merged.map((m) => m.set),
    warnings: [
      ...(local.error ? [`local: ${local.error.message}`] : []),
      ...(local.result?.warnings ?? []),
      ...(offsite?.warnings.map((w) => `off-site: ${w}`) ?? []),
    ],
    where,
    ...(o ? { offsiteUrl: offsiteUrl(o) } : {}),
  };
  return { listing, offsiteOnly: merged.filter((m) => m.where === 'off-site').map((m) => m.set) };
}

/**
 * The set as the local pipeline reads it: a set only in the bucket is downloaded and checked, an
 * encrypted one (off-site or local) decrypted into staging, as `restore` does (offsite/pick.ts
 * stagePicked: a rejection while staging is recorded as a rejected verify run in the evidence).
 * A plain local set comes back as it is. Progress and what was checked go to `log`.
 */
export async function stageForGuide(
  loaded: LoadedRecipe,
  set: BackupSet,
  o: { env: NodeJS.ProcessEnv; redact: Redactor; signal: AbortSignal; log: (line: string) => void; offsiteOnly: boolean },
): Promise<BackupSet> {
  const opts = { env: o.env, redact: o.redact, log: (l: string) => o.log(o.redact(l)), signal: o.signal };
  return stagePicked(
    loaded,
    async () => {
      if (!o.offsiteOnly) return set;
      const fromBucket = await pickOffsiteSet(loaded, set.id, opts);
      if (!fromBucket) throw new Error(`recipe ${loaded.recipe.name} has no off-site source`);
      return fromBucket;
    },
    opts,
  );
}

/** Whether choosing this set stages it first (only in the bucket, or encrypted). */
export function needsStaging(set: BackupSet, offsiteOnly: boolean): boolean {
  return offsiteOnly || set.components.some((c) => c.encryption !== undefined);
}
