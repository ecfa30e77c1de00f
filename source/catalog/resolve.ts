import { stat } from 'node:fs/promises';
import { raCommand } from '../text/next.js';
import { UsageError } from '../errors.js';
import type { LoadedRecipe } from '../recipe/load.js';
import { COMPONENT_KINDS, type ComponentKind, type Layout } from './types.js';

/** Where a command looks for backups: a recipe's `backups`, or a bare --root. */
export interface BackupSource {
  root: string;
  layout: 'auto' | Layout;
  database?: string;
  pairWindowMinutes?: number;
  /** Components the recipe expects (empty without a recipe). */
  expect: ComponentKind[];
  /** recipe postgres.bin: where pg_restore lives. */
  pgBin?: string;
  recipe?: LoadedRecipe;
}

/**
 * `--recipe R` and/or `--root DIR` → where to look. --root overrides the recipe's backups.root
 * (keeping its layout and database). Neither: undefined (the caller decides what that means).
 */
export async function resolveBackupSource(opts: { recipe?: string; root?: string }): Promise<BackupSource | undefined> {
  if (opts.recipe) {
    // The recipe parser (yaml, zod) is loaded only when a recipe is named: `list --root` needs none.
    const loaded = await (await import('../recipe/load.js')).resolveRecipe(opts.recipe);
    const r = loaded.recipe;
    const expect = COMPONENT_KINDS.filter((k) => r.components[k] !== undefined);
    return {
      root: opts.root ?? r.backups.root,
      layout: r.backups.layout,
      ...(r.backups.database ? { database: r.backups.database } : {}),
      pairWindowMinutes: r.backups.pairWindowMinutes,
      expect,
      ...(r.components.postgres?.bin ? { pgBin: r.components.postgres.bin } : {}),
      recipe: loaded,
    };
  }
  if (opts.root) return { root: opts.root, layout: 'auto', expect: [] };
  return undefined;
}

/** The friendly error for a command that needs --recipe or --root. */
export async function needSourceError(command: string, extra = '', args: string[] = []): Promise<UsageError> {
  let known: string[] = [];
  try {
    known = (await (await import('../recipe/load.js')).discoverRecipes()).filter((e) => e.loaded).map((e) => e.name);
  } catch {
    // discovery is a hint only
  }
  return new UsageError(`\`${command}\` needs to know where the backups are: pass --recipe NAME or --root DIR${extra}.`, {
    problems: known.length > 0 ? [`recipes found: ${known.join(', ')}`] : [],
    next:
      known.length > 0
        ? `e.g. \`${raCommand(command, ...args, '--recipe', known[0] ?? '')}\``
        : `e.g. restore-assistant ${command} --root DIR (the directory holding the backup sets), or --recipe FILE`,
  });
}

/** Whether a `--backup`/set argument names a path rather than a set id. */
export async function isPathRef(ref: string): Promise<boolean> {
  if (ref.includes('/') || ref.startsWith('.') || ref.startsWith('~')) return true;
  try {
    await stat(ref);
    return true;
  } catch {
    return false;
  }
}
