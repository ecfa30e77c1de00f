import { findBackupSet } from '../catalog/index.js';
import type { BackupSet } from '../catalog/types.js';
import type { EngineEventBody } from '../engine/events.js';
import type { Redactor } from '../exec/redact.js';
import type { LoadedRecipe } from '../recipe/load.js';
import { catalogObjects, type OffsiteListing } from './catalog.js';

export { stagingRoot } from './staging-dir.js';
// The AWS SDK (./client.js, ./stage.js) is loaded only when a recipe reaches a bucket: it costs
// about 30 MB of memory and a second of start-up that a restore from local disk never needs (issue 14).
const sdk = () => Promise.all([import('./client.js'), import('./stage.js')]);

/** Removes a staged off-site copy after a completed run (see stage.ts); nothing for a local set. */
export async function releaseStaged(set: BackupSet): Promise<string | undefined> {
  if (!set.origin) return undefined;
  return (await import('./stage.js')).releaseStaged(set);
}
export type { OffsiteListing, OffsiteSet } from './catalog.js';

/** Where a set lives, for `list`. */
export type SetWhere = 'local' | 'off-site' | 'both';

/** The recipe's off-site sets (one paged listing of the bucket; nothing downloaded). */
export async function listOffsite(loaded: LoadedRecipe, env: NodeJS.ProcessEnv = process.env): Promise<OffsiteListing | undefined> {
  const b = loaded.recipe.backups;
  if (!b.offsite) return undefined;
  const [{ listObjects, offsiteClient }] = await sdk();
  const client = offsiteClient(b.offsite, env);
  try {
    const objects = await listObjects(client, b.offsite);
    return catalogObjects(objects, b.offsite, b.layout, {
      ...(b.database ? { database: b.database } : {}),
      pairWindowMinutes: b.pairWindowMinutes,
    });
  } finally {
    client.destroy();
  }
}

export interface OffsitePickOptions {
  env?: NodeJS.ProcessEnv;
  redact: Redactor;
  log: (line: string) => void;
  signal?: AbortSignal;
}

/**
 * The set `ref` names, from the bucket, staged on local disk: used when the recipe has an off-site
 * source and the set is not local (or `prefer: offsite`). Undefined when the recipe has none.
 * Throws the catalog's "No backup set" (with the nearest off-site ids) when the bucket lacks it.
 */
export async function pickOffsiteSet(loaded: LoadedRecipe, ref: string, o: OffsitePickOptions): Promise<BackupSet | undefined> {
  const b = loaded.recipe.backups;
  if (!b.offsite) return undefined;
  const env = o.env ?? process.env;
  const listing = await listOffsite(loaded, env);
  if (!listing) return undefined;
  const found = findBackupSet(
    listing.sets.map((s) => s.set),
    ref,
  );
  const off = listing.sets.find((s) => s.set === found)!;
  const [{ offsiteClient }, { stageOffsiteSet }] = await sdk();
  const client = offsiteClient(b.offsite, env);
  try {
    return await stageOffsiteSet(
      { loaded, client, env, redact: o.redact, log: o.log, ...(o.signal ? { signal: o.signal } : {}) },
      off,
      listing.layout,
    );
  } finally {
    client.destroy();
  }
}

/** Whether a local lookup should be tried first. */
export function prefersLocal(loaded: LoadedRecipe): boolean {
  return (loaded.recipe.backups.offsite?.prefer ?? 'local') === 'local';
}

/** The evidence lines of a staged set: one 'log' event per object (key, ETag/version, size, sha256). */
export function stagedEvents(set: BackupSet): EngineEventBody[] {
  const origin = set.origin;
  if (!origin) return [];
  if (origin.source === 'local') {
    return [
      { type: 'log', level: 'info', message: `encrypted set ${set.id} in ${origin.url} decrypted into ${origin.stagingDir}` },
      ...origin.objects.map((x): EngineEventBody => ({
        type: 'log',
        level: 'info',
        message: `encrypted file ${x.key}: ${x.size} bytes, sha256 ${x.sha256}${x.decryptedWith ? `, decrypted with ${x.decryptedWith}` : ', not decrypted'}`,
        fact: {
          name: `encrypted:${x.key}`,
          value: JSON.stringify({ key: x.key, size: x.size, sha256: x.sha256, decryptedWith: x.decryptedWith }),
        },
      })),
    ];
  }
  return [
    {
      type: 'log',
      level: 'info',
      message: `set ${set.id} staged from ${origin.url}${origin.endpoint ? ` (${origin.endpoint})` : ''} into ${origin.stagingDir}`,
    },
    ...origin.objects.map((x): EngineEventBody => ({
      type: 'log',
      level: 'info',
      message: `off-site object ${x.key}: ETag ${x.etag}${x.versionId ? `, version ${x.versionId}` : ''}, ${x.size} bytes, sha256 ${x.sha256}${x.resumedFrom ? `, resumed at byte ${x.resumedFrom}` : ''}${x.decryptedWith ? `, decrypted with ${x.decryptedWith}` : ''}`,
      fact: { name: `offsite:${x.key}`, value: JSON.stringify(x) },
    })),
  ];
}
