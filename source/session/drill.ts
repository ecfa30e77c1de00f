import { chmod, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ComponentKind } from '../catalog/types.js';
import { drillRecipe } from '../drill/isolate.js';
import { DRILL_PG_PASSWORD_ENV, startDrillScratch, type DrillScratch } from '../drill/sandbox.js';
import type { LoadedRecipe } from '../recipe/load.js';
import { releaseFromExitGuard } from '../sandbox/exit-guard.js';

/**
 * A drill's scratch-service lifecycle, on top of the session: the services start when the drill's
 * targets are first probed (after the lock and the verification), are reused while the operator
 * goes back and forth in the guide (restarted only when the components change), and are removed
 * when the session is disposed — after the engine has finished, also on Ctrl-C (the session owns
 * the signals; the sandbox's exit guard leaves them to it) — or kept running with --keep.
 */

export interface DrillTarget {
  scratch: DrillScratch;
  /** The recipe the drill's plan addresses: the real recipe's names and checks, the scratch services' targets. */
  target: LoadedRecipe;
  /** Checks of the real recipe a drill cannot run (they would reach real systems). */
  skippedChecks: string[];
  /** Where the drill's file safety copies go (inside the scratch dir). */
  safetyDir: string;
}

export interface DrillScratchHolder {
  /** Scratch services for these components (started once; restarted when the components change). */
  forKinds(kinds: readonly ComponentKind[]): Promise<DrillTarget>;
  current(): DrillTarget | undefined;
  /** Leave the services running (`--keep`): the connection file is written 0600 and the exit guard forgets them. Returns how to reach them. */
  keep(): Promise<string[]>;
  teardown(): Promise<void>;
}

export function drillScratchHolder(real: LoadedRecipe, env: NodeJS.ProcessEnv): DrillScratchHolder {
  let held: { key: string; drill: DrillTarget } | undefined;
  return {
    async forKinds(kinds) {
      const key = [...kinds].sort().join(',');
      if (held && held.key !== key) {
        const old = held;
        held = undefined;
        await old.drill.scratch.teardown();
      }
      if (!held) {
        const scratch = await startDrillScratch(real, [...kinds], env);
        const { recipe, skippedChecks } = drillRecipe(real.recipe, scratch.sandbox);
        held = {
          key,
          drill: {
            scratch,
            target: { recipe, file: real.file, digest: real.digest },
            skippedChecks,
            safetyDir: scratch.sandbox.rootDirs[0] ?? '',
          },
        };
      }
      return held.drill;
    },
    current: () => held?.drill,
    async keep() {
      const s = held?.drill.scratch;
      held = undefined;
      if (!s) return [];
      const info = path.join(s.sandbox.rootDirs[0] ?? '.', 'drill-connection.txt');
      await writeFile(info, `PGPASSWORD=${s.env[DRILL_PG_PASSWORD_ENV] ?? ''}\n`, { mode: 0o600 });
      await chmod(info, 0o600);
      releaseFromExitGuard();
      return s.connectionInfo();
    },
    async teardown() {
      const s = held?.drill.scratch;
      held = undefined;
      await s?.teardown();
    },
  };
}
