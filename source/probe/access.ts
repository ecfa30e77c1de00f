import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import path from 'node:path';
import type { BackupSet } from '../catalog/types.js';
import type { LoadedRecipe } from '../recipe/load.js';
import { evidenceDir } from '../state/paths.js';
import { raCommand } from '../text/next.js';
import type { PreflightProblem } from './index.js';

/**
 * What this user cannot read or write that a restore needs: the set's backup files and the
 * evidence directory (a restore records its evidence there, and refuses without it). `plan` lists
 * these as preflight problems instead of saying "no problems found" (a user who cannot read the
 * evidence of root's runs is not told everything is fine).
 */
export async function accessProblems(
  loaded: LoadedRecipe,
  set: BackupSet,
  env: NodeJS.ProcessEnv = process.env,
): Promise<PreflightProblem[]> {
  const problems: PreflightProblem[] = [];
  const code = (error: unknown): string => (error as NodeJS.ErrnoException).code ?? 'error';
  const rerun = `\`sudo ${raCommand('plan', '--recipe', loaded.file, '--backup', set.id)}\``;
  for (const c of set.components) {
    try {
      await access(c.path, constants.R_OK);
    } catch (error) {
      problems.push({
        code: 'unreadable',
        component: c.kind,
        severity: 'error',
        message: `cannot read the backup ${c.path} (${code(error)}).`,
        next: `Run as root (${rerun}) or as a user that can read it.`,
      });
    }
  }
  // The evidence directory, or the nearest directory above it that exists (it is created there).
  let dir = evidenceDir(loaded.recipe, env);
  for (;;) {
    try {
      await access(dir, constants.F_OK);
      break;
    } catch (error) {
      if (code(error) !== 'ENOENT') break; // there, but this user cannot reach it: reported below
      const up = path.dirname(dir);
      if (up === dir) break;
      dir = up;
    }
  }
  try {
    await access(dir, constants.R_OK | constants.W_OK | constants.X_OK);
  } catch (error) {
    problems.push({
      code: 'unreadable',
      severity: 'error',
      message: `cannot read and write the evidence directory ${dir} (${code(error)}): a restore records its evidence there, and earlier runs cannot be checked.`,
      next: `Run as root (${rerun}), or have root give this user access to ${dir} (or set evidence.dir in the recipe).`,
    });
  }
  return problems;
}
