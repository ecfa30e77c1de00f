import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { BackupSource } from '../catalog/resolve.js';
import { expandHome } from '../recipe/home.js';
import type { LoadedRecipe } from '../recipe/load.js';

/** A recipe or root whose backups are base backups + a WAL archive (layout physical, or auto with a base/ dir of directories). */
export async function isPhysicalSource(source: BackupSource): Promise<boolean> {
  if (source.layout === 'physical') return true;
  if (source.layout !== 'auto') return false;
  if (source.recipe?.recipe.backups.walArchive) return true;
  try {
    return (await stat(path.join(path.resolve(expandHome(source.root)), 'base'))).isDirectory();
  } catch {
    return false;
  }
}

/** A recipe whose backups are base backups + a WAL archive. */
export function isPhysicalRecipe(loaded: LoadedRecipe): boolean {
  const b = loaded.recipe.backups;
  return b.layout === 'physical' || (b.layout === 'auto' && b.walArchive !== undefined);
}
