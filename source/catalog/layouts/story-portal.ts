import { parseDashedStamp, STORY_PORTAL_DIR } from '../names.js';
import type { BackupSet } from '../types.js';
import type { Entry } from '../files.js';
import { buildDirSet } from '../sets.js';

/** The story-portal layout: one directory per set, named by its time. */

export async function listStoryPortal(root: string, entries: Entry[], warnings: string[]): Promise<BackupSet[]> {
  const sets: BackupSet[] = [];
  for (const e of entries) {
    if (!e.isDir) continue;
    const nameTime = parseDashedStamp(e.name);
    if (!STORY_PORTAL_DIR.test(e.name) || !nameTime) {
      if (STORY_PORTAL_DIR.test(e.name)) warnings.push(`${e.name}/ is not a valid date (ignored)`);
      continue;
    }
    const set = await buildDirSet(e.full, root, 'story-portal', nameTime);
    if ('noTime' in set) continue;
    sets.push(set);
  }
  return sets;
}
