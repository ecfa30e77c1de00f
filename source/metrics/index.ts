import os from 'node:os';
import { listBackupSets } from '../catalog/index.js';
import type { BackupSet } from '../catalog/types.js';
import { afterClose } from '../evidence/after-close.js';
import type { EvidenceHandle } from '../evidence/writer.js';
import { readHistory } from '../evidence/history.js';
import { assessBackupHealth, type BackupHealth } from '../health/backups.js';
import { type LoadedRecipe } from '../recipe/load.js';
import { evidenceDir } from '../state/paths.js';
import type { Recipe } from '../recipe/schema.js';
import { collectMetrics } from './collect.js';
import { renderExposition } from './exposition.js';
import { pushgatewayUrl, pushToGateway, writeTextfile } from './export.js';

export { collectMetrics } from './collect.js';
export { renderExposition } from './exposition.js';

/** The recipe's catalog and its health, or why it could not be listed. */
export async function recipeBackupHealth(
  recipe: Recipe,
  now: Date = new Date(),
): Promise<{ sets: BackupSet[]; health: BackupHealth } | { error: string }> {
  try {
    const { sets } = await listBackupSets({
      root: recipe.backups.root,
      layout: recipe.backups.layout,
      ...(recipe.backups.database ? { database: recipe.backups.database } : {}),
      pairWindowMinutes: recipe.backups.pairWindowMinutes,
    });
    const t = recipe.backupHealth;
    return {
      sets,
      health: assessBackupHealth(
        sets,
        { ...t, ...(recipe.objectives.rpoMinutes !== undefined ? { rpoMinutes: recipe.objectives.rpoMinutes } : {}) },
        now,
      ),
    };
  } catch (error) {
    return { error: error instanceof Error ? (error.message.split('\n')[0] ?? 'error') : String(error) };
  }
}

/** The exposition text of a recipe now: from its evidence history and its backup catalog. */
export async function recipeMetricsText(
  loaded: LoadedRecipe,
  env: NodeJS.ProcessEnv = process.env,
  now: Date = new Date(),
): Promise<string> {
  const recipe = loaded.recipe;
  const view = await readHistory(evidenceDir(recipe, env), { recipe: recipe.name, intervalDays: recipe.drill.intervalDays, now });
  const catalog = await recipeBackupHealth(recipe, now);
  return renderExposition(
    collectMetrics({ recipe, runs: view.runs, catalog, ...('health' in catalog ? { health: catalog.health } : {}), now }),
  );
}

/**
 * Export the recipe's metrics where its `metrics` section says (textfile and/or Pushgateway).
 * Never throws: a monitoring outage must not change a run's result. Returns what went wrong.
 */
export async function exportRecipeMetrics(loaded: LoadedRecipe, env: NodeJS.ProcessEnv = process.env): Promise<string[]> {
  const m = loaded.recipe.metrics;
  if (!m.textfileDir && !m.pushgateway) return [];
  const problems: string[] = [];
  let text: string;
  try {
    text = await recipeMetricsText(loaded, env);
  } catch (error) {
    return [`metrics not written: ${(error as Error).message}`];
  }
  if (m.textfileDir) {
    try {
      writeTextfile(m.textfileDir, loaded.recipe.name, text);
    } catch (error) {
      problems.push(`metrics textfile not written: ${(error as Error).message}`);
    }
  }
  if (m.pushgateway) {
    try {
      await pushToGateway(
        pushgatewayUrl(m.pushgateway.url, m.pushgateway.job, os.hostname(), loaded.recipe.name),
        text,
        m.pushgateway.timeoutSeconds * 1000,
      );
    } catch (error) {
      problems.push(`metrics not pushed: ${(error as Error).message}`);
    }
  }
  return problems;
}

/**
 * The hook where runs finish: wraps an evidence handle so that closing it (after the run sealed,
 * or ended unsealed) exports the recipe's metrics. Problems are printed to stderr as warnings.
 */
export function exportMetricsOnClose(handle: EvidenceHandle, loaded: LoadedRecipe, env: NodeJS.ProcessEnv = process.env): EvidenceHandle {
  return afterClose(handle, async () => {
    for (const p of await exportRecipeMetrics(loaded, env)) process.stderr.write(`Warning: ${p}\n`);
  });
}
