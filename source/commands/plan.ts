import path from 'node:path';
import { warnUnfinished } from '../journal/detect.js';
import { findBackupSet, listBackupSets, loadBackupSetFromPath } from '../catalog/index.js';
import { isPathRef } from '../catalog/resolve.js';
import type { BackupSet } from '../catalog/types.js';
import { ExitCode } from '../exit-codes.js';
import { createRedactor, redactDeep } from '../exec/redact.js';
import { createOutput, paint } from '../output.js';
import { buildPlan } from '../plan/build.js';
import { resolvePlanOptions } from '../plan/options.js';
import { preflightProblems, probeFacts, recipeFacts, type PreflightProblem } from '../plan/probe.js';
import { renderPlanText } from '../plan/render.js';
import type { Plan } from '../plan/types.js';
import { evidenceDir, resolveRecipe, type LoadedRecipe } from '../recipe/load.js';

export interface PlanCommandOptions {
  recipe?: string;
  backup?: string;
  only?: string;
  missingRoles?: string;
  jobs?: number;
  parallel?: boolean;
  offline?: boolean;
  json?: boolean;
}

/** The set `--backup` names: an id, "latest", or a path. */
export async function pickBackupSet(recipe: LoadedRecipe, ref: string): Promise<BackupSet> {
  if (ref !== 'latest' && (await isPathRef(ref))) {
    try {
      const b = recipe.recipe.backups;
      const listed = await listBackupSets({ root: b.root, layout: b.layout, ...(b.database ? { database: b.database } : {}), pairWindowMinutes: b.pairWindowMinutes });
      return findBackupSet(listed.sets, ref);
    } catch {
      return loadBackupSetFromPath(ref);
    }
  }
  const b = recipe.recipe.backups;
  const listed = await listBackupSets({ root: b.root, layout: b.layout, ...(b.database ? { database: b.database } : {}), pairWindowMinutes: b.pairWindowMinutes });
  return findBackupSet(listed.sets, ref);
}

/** Where safety copies that are files go: beside the recipe's evidence dir. */
export function defaultSafetyDir(recipe: LoadedRecipe, env: NodeJS.ProcessEnv = process.env): string {
  return path.join(path.dirname(evidenceDir(recipe.recipe, env)), 'safety');
}

/**
 * `restore-assistant plan`: the dry run. Lists the sets, probes the targets read-only (unless
 * --offline), builds the plan and prints it. Exit 0 when the plan could run; 9 when preflight
 * would refuse it (the plan is printed either way).
 */
export async function planCommand(opts: PlanCommandOptions): Promise<number> {
  const out = createOutput();
  const p = paint(out.color);
  const recipe = await resolveRecipe(opts.recipe ?? '');
  await warnUnfinished(recipe, opts.recipe ?? '', (t) => out.info(t));
  const set = await pickBackupSet(recipe, opts.backup ?? 'latest');
  const options = resolvePlanOptions(recipe.recipe, {
    ...(opts.only !== undefined ? { only: opts.only } : {}),
    ...(opts.missingRoles !== undefined ? { missingRoles: opts.missingRoles } : {}),
    ...(opts.jobs !== undefined ? { jobs: opts.jobs } : {}),
    ...(opts.parallel !== undefined ? { parallel: opts.parallel } : {}),
    safetyDir: defaultSafetyDir(recipe),
  });
  const c = recipe.recipe.components;
  const redact = createRedactor([c.postgres?.passwordEnv, c.redis?.passwordEnv].map((n) => (n ? process.env[n] : undefined)));
  let problems: PreflightProblem[] = [];
  let facts;
  if (opts.offline) {
    facts = recipeFacts(recipe);
  } else {
    if (!opts.json) out.info('Probing the targets (read-only)...');
    facts = await probeFacts(recipe, set, undefined, { redact, safetyDir: options.safetyDir ?? defaultSafetyDir(recipe) });
    problems = preflightProblems(recipe, set, facts, { missingRoles: options.missingRoles, ...(options.only ? { only: options.only } : {}) });
  }
  const plan: Plan = buildPlan({ recipe, set, facts, options, mode: 'restore', now: new Date() });
  const errors = problems.filter((x) => x.severity === 'error');
  if (opts.json) {
    out.json(redactDeep({ ...plan, preflight: problems }, redact));
  } else {
    out.result(redact(renderPlanText(plan, out.color)));
    out.result('Nothing was touched: this is the plan only. `restore-assistant restore` runs exactly these steps.');
    if (problems.length > 0) {
      out.result('');
      out.result(errors.length > 0 ? p('red', `Preflight would refuse this restore (${errors.length} problem${errors.length === 1 ? '' : 's'}):`) : 'Preflight notes:');
      for (const x of problems) {
        out.result(redact(`  ${x.severity === 'error' ? 'x' : '!'} ${x.component ? `${x.component}: ` : ''}${x.message}`));
        if (x.next) out.result(redact(`      Next: ${x.next}`));
      }
    } else if (!opts.offline) {
      out.result('Preflight: no problems found (checked again right before a restore).');
    }
  }
  return errors.length > 0 ? ExitCode.preflightFailed : ExitCode.ok;
}
