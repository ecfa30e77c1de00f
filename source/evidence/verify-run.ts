import os from 'node:os';
import type { BackupSet, VerifyReport } from '../catalog/types.js';
import { EventBus, verificationEvent, type EngineEventBody } from '../engine/events.js';
import { ExitCode } from '../exit-codes.js';
import type { LoadedRecipe } from '../recipe/load.js';
import { recipeRedactor } from '../recipe/secrets.js';
import { toolVersion } from '../version.js';
import { attachRecipeEvidence, currentOperator, newRunId } from './writer.js';

/**
 * A verification recorded as a run of its own in the recipe's evidence (kind 'verify'), so the
 * runbook's history shows when each set was last proven intact, or rejected: `verify` with a
 * recipe, and a set rejected while it was staged (an off-site download, a decryption).
 * run-started now (with `extra` events: the staged objects), the verification and seal at finish.
 */
export function startVerifyRun(
  loaded: LoadedRecipe,
  set: Pick<BackupSet, 'id' | 'time' | 'location'>,
  extra: EngineEventBody[] = [],
  env: NodeJS.ProcessEnv = process.env,
): { finish: (report: VerifyReport | undefined) => Promise<string> } {
  const r = loaded.recipe;
  const redact = recipeRedactor(loaded);
  const bus = new EventBus();
  const startedAt = new Date();
  const runId = newRunId('verify', r.name, startedAt);
  const handle = attachRecipeEvidence(bus, {
    loaded,
    kind: 'verify',
    redact,
    runId,
    commandLine: ['restore-assistant', ...process.argv.slice(2)],
    env,
  });
  bus.emit({
    type: 'run-started',
    runId,
    kind: 'verify',
    operator: currentOperator().operator,
    host: os.hostname(),
    toolVersion: toolVersion(),
    recipe: { name: r.name, file: loaded.file, digest: loaded.digest },
    backup: { id: set.id, time: set.time, location: set.location },
  });
  for (const e of extra) bus.emit(e);
  return {
    finish: async (report) => {
      if (report) bus.emit(verificationEvent(report, redact));
      const ok = report?.ok ?? false;
      bus.emit({
        type: 'run-finished',
        outcome: ok ? 'verified' : 'rejected',
        exitCode: report ? (ok ? ExitCode.ok : ExitCode.backupRejected) : ExitCode.internal,
        rpoMs: Math.max(0, startedAt.getTime() - Date.parse(set.time)),
        safetyCopies: [],
        state: ['Nothing was touched: verification reads the backup files only.'],
        nextSteps: ok ? [] : ['Pick another set, or fix the backup job that produced this one.'],
        ...(report ? {} : { error: 'verification did not complete' }),
      });
      await handle.close();
      return handle.dir;
    },
  };
}
