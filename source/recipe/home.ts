import os from 'node:os';
import path from 'node:path';

/**
 * `~` and `~/x` in a path from a recipe or a flag: the operator's home directory. A module of its
 * own (no yaml, no zod), so the catalog and the state paths can use it without loading the recipe
 * parser (`list --root` and the guide's first frame do not need it).
 */
export function expandHome(p: string): string {
  if (p === '~') return os.homedir();
  if (p.startsWith('~/')) return path.join(os.homedir(), p.slice(2));
  return p;
}
