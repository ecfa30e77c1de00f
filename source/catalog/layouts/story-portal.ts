import { parseDashedStamp, STORY_PORTAL_DIR } from '../names.js';
import type { BackupSet } from '../types.js';
import type { Entry } from '../files.js';
import { LIST_CONCURRENCY, mapLimit } from '../pool.js';
import { buildDirSet, type DirSetBuilder } from '../sets.js';

/** The story-portal layout: one directory per set, named by its time. */

export async function listStoryPortal(
  root: string,
  entries: Entry[],
  warnings: string[],
  dirSet: DirSetBuilder = buildDirSet,
): Promise<BackupSet[]> {
  const dirs: Array<{ e: Entry; nameTime: string }> = [];
  for (const e of entries) {
    if (!e.isDir) continue;
    const nameTime = parseDashedStamp(e.name);
    if (!STORY_PORTAL_DIR.test(e.name) || !nameTime) {
      if (STORY_PORTAL_DIR.test(e.name)) warnings.push(`${e.name}/ is not a valid date (ignored)`);
      continue;
    }
    dirs.push({ e, nameTime });
  }
  // Sets are independent: catalog a few dozen at once (the order of the result is the order of the names).
  const built = await mapLimit(dirs, LIST_CONCURRENCY, ({ e, nameTime }) => dirSet(e.full, root, 'story-portal', nameTime));
  return built.filter((s): s is BackupSet => !('noTime' in s));
}
