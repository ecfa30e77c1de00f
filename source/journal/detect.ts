import { RestoreAssistantError } from '../errors.js';
import { raCommand } from '../text/next.js';
import { ExitCode } from '../exit-codes.js';
import { identityLockKeys } from '../engine/target-identity.js';
import { COMPONENT_KINDS } from '../catalog/types.js';
import type { LoadedRecipe } from '../recipe/load.js';
import { leftoverRunTempDirs } from '../engine/run-temp.js';
import { formatUnfinishedBlock, probeTargetsNow } from './describe.js';
import { findUnfinishedRuns, type UnfinishedRun } from './state.js';

/**
 * Unfinished-run detection for every command that touches a recipe's targets (restore, drill,
 * guide, plan, list with a recipe): before anything else, look in the machine-wide journal index
 * for a run on the same targets (lock keys) or recipe whose process is gone without finishing.
 * A restore refuses (exit 8) and sends the operator to `recover`; read commands and drills (which
 * never touch the real targets) print the block on stderr and go on.
 */

export async function unfinishedFor(loaded: LoadedRecipe, env: NodeJS.ProcessEnv = process.env): Promise<UnfinishedRun[]> {
  try {
    // The session's lock keys (the targets' identities): what a restore journals.
    return findUnfinishedRuns(env, {
      lockKeys: await identityLockKeys(loaded.recipe, COMPONENT_KINDS, 'restore'),
      recipeName: loaded.recipe.name,
    });
  } catch {
    return [];
  }
}

/** The blocks for the unfinished runs on this recipe's targets (empty string: none). */
export async function unfinishedBlocks(
  loaded: LoadedRecipe,
  runs: UnfinishedRun[],
  recipeRef: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string> {
  const out: string[] = [];
  for (const u of runs) {
    const left = (await leftoverRunTempDirs(u.facts)).map((d) => d.path);
    out.push(formatUnfinishedBlock(u, await probeTargetsNow(loaded, u, env), recipeRef, left));
  }
  return out.join('\n\n');
}

/** Print the block on stderr when an unfinished run holds the targets (read commands, drills). */
export async function warnUnfinished(
  loaded: LoadedRecipe,
  recipeRef: string,
  write: (text: string) => void,
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  const runs = await unfinishedFor(loaded, env);
  if (runs.length === 0) return;
  write(`${await unfinishedBlocks(loaded, runs, recipeRef, env)}\n`);
}

/** A restore over an unfinished run is refused: its safety copies are the pre-incident data. */
export async function refuseOverUnfinished(loaded: LoadedRecipe, recipeRef: string, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const runs = await unfinishedFor(loaded, env);
  if (runs.length === 0) return;
  const block = await unfinishedBlocks(loaded, runs, recipeRef, env);
  throw new RestoreAssistantError(
    `An unfinished restore (run ${runs.map((r) => r.runId).join(', ')}) holds these targets: a new restore would take its half-done state for the data as it was.`,
    ExitCode.locked,
    {
      untouched: `${block}\nNothing was touched.`,
      next: `Run \`${raCommand('recover', '--recipe', recipeRef)}\`: it rolls that run back to the pre-restore state or finishes it.`,
    },
  );
}
