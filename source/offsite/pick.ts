import { listBackupSets, type ListResult } from '../catalog/index.js';
import { byRecordedTime } from '../catalog/sets.js';
import type { BackupSet } from '../catalog/types.js';
import { RestoreAssistantError } from '../errors.js';
import type { LoadedRecipe } from '../recipe/load.js';
import { listOffsite, pickOffsiteSet, prefersLocal, type OffsitePickOptions, type SetWhere } from './index.js';
import type { OffsiteListing } from './catalog.js';
import { stageEncryptedLocal } from './local.js';
import { recordStagingRejection } from './record.js';
import { StagingRejection } from './rejection.js';

/**
 * Local and off-site sets together: which set a reference means when the recipe has both a local
 * root and a bucket, and where each listed set lives.
 */

/** The local listing, or none when the root does not exist (an off-site-only recipe on a rebuilt host). */
export async function listLocalOrNone(loaded: LoadedRecipe): Promise<{ result?: ListResult; error?: RestoreAssistantError }> {
  const b = loaded.recipe.backups;
  try {
    return {
      result: await listBackupSets({
        root: b.root,
        layout: b.layout,
        ...(b.database ? { database: b.database } : {}),
        pairWindowMinutes: b.pairWindowMinutes,
      }),
    };
  } catch (error) {
    if (error instanceof RestoreAssistantError) return { error };
    throw error;
  }
}

/**
 * The set `ref` names with an off-site source configured: `local` picks it on disk (a path, or an
 * id in the local listing). With `prefer: local` (the default) a set that is on disk is read there,
 * one only in the bucket is staged from it; `latest` is the newest of both. `prefer: offsite`
 * stages from the bucket whenever the bucket has the set.
 */
export async function pickLocalOrOffsite(
  loaded: LoadedRecipe,
  ref: string,
  local: () => Promise<BackupSet>,
  o: OffsitePickOptions,
): Promise<BackupSet> {
  return stagePicked(loaded, () => pickEither(loaded, ref, local, o), o);
}

/**
 * The picked set, ready for the local pipeline: an encrypted local set is decrypted into staging
 * (local.ts). A set rejected while staged or decrypted is recorded as a rejected verify run in the
 * evidence (record.ts) before the error (exit 3) goes on.
 */
export async function stagePicked(loaded: LoadedRecipe, pick: () => Promise<BackupSet>, o: OffsitePickOptions): Promise<BackupSet> {
  try {
    return await stageEncryptedLocal(loaded, await pick(), { redact: o.redact, log: o.log, ...(o.env ? { env: o.env } : {}) });
  } catch (error) {
    if (error instanceof StagingRejection) await recordStagingRejection(loaded, error, o.env);
    throw error;
  }
}

async function pickEither(loaded: LoadedRecipe, ref: string, local: () => Promise<BackupSet>, o: OffsitePickOptions): Promise<BackupSet> {
  if (!loaded.recipe.backups.offsite) return local();
  const preferLocal = prefersLocal(loaded);
  if (ref.trim() === 'latest') {
    const [localList, offsite] = await Promise.all([listLocalOrNone(loaded), listOffsite(loaded, o.env)]);
    const localSets = localList.result?.sets ?? [];
    const all = [...localSets, ...(offsite?.sets.map((s) => s.set) ?? [])].sort(byRecordedTime);
    const newest = all[0];
    if (!newest) return local();
    const localSame = localSets.find((s) => s.id === newest.id);
    if (localSame && preferLocal) return localSame;
    if (offsite?.sets.some((s) => s.set.id === newest.id)) return (await pickOffsiteSet(loaded, newest.id, o))!;
    return localSame ?? local();
  }
  if (preferLocal) {
    try {
      return await local();
    } catch (localError) {
      try {
        return (await pickOffsiteSet(loaded, ref, o))!;
      } catch (offsiteError) {
        // Neither has it: the off-site error names the nearest off-site ids; a staging failure is its own.
        throw offsiteError instanceof RestoreAssistantError && /^No backup set/.test(offsiteError.message) ? localError : offsiteError;
      }
    }
  }
  try {
    return (await pickOffsiteSet(loaded, ref, o))!;
  } catch (error) {
    if (error instanceof RestoreAssistantError && /^No backup set/.test(error.message)) return local();
    throw error;
  }
}

/** Where each set lives: local, off-site, or both (same id in both). */
export function mergeListings(
  local: BackupSet[],
  offsite: OffsiteListing | undefined,
): Array<{ set: BackupSet; where: SetWhere; offsite?: BackupSet }> {
  const out = new Map<string, { set: BackupSet; where: SetWhere; offsite?: BackupSet }>();
  for (const s of local) out.set(s.id, { set: s, where: 'local' });
  for (const { set } of offsite?.sets ?? []) {
    const have = out.get(set.id);
    if (have) {
      have.where = 'both';
      have.offsite = set;
    } else out.set(set.id, { set, where: 'off-site', offsite: set });
  }
  return [...out.values()].sort((a, b) => byRecordedTime(a.set, b.set));
}
