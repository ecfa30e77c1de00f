import { ExitCode } from '../exit-codes.js';
import { warnUnfinished } from '../journal/detect.js';
import { redactDeep } from '../exec/redact.js';
import { isPhysicalRecipe } from '../pitr/source.js';
import { createOutput, paint } from '../output.js';
import { identityLockKeys } from '../engine/target-identity.js';
import { buildPlan, restorableComponents } from '../plan/build.js';
import { resolvePlanOptions } from '../plan/options.js';
import { preflightProblems, probeFacts, recipeFacts, type PreflightProblem } from '../probe/index.js';
import { accessProblems } from '../probe/access.js';
import { renderPlanText } from '../plan/render.js';
import type { Plan } from '../plan/types.js';
import { validatePlan } from '../plan/validate.js';
import { resolveRecipe } from '../recipe/load.js';
import { recipeRedactor } from '../recipe/secrets.js';
import { pickBackupSet } from '../session/session.js';
import { releaseStaged } from '../offsite/index.js';

export interface PlanCommandOptions {
  recipe?: string;
  backup?: string;
  only?: string;
  missingRoles?: string;
  jobs?: number;
  parallel?: boolean;
  offline?: boolean;
  json?: boolean;
  /** Point-in-time target (physical recipes). */
  to?: string;
}

/**
 * `restore-assistant plan`: the dry run. Lists the sets, probes the targets read-only (unless
 * --offline), builds the plan, checks it as the engine will (`validatePlan`) and prints it. Exit 0
 * when the plan could run; 9 when preflight or the engine's plan check would refuse it (the plan is
 * printed either way).
 */
export async function planCommand(opts: PlanCommandOptions): Promise<number> {
  const out = createOutput();
  const p = paint(out.color);
  const recipe = await resolveRecipe(opts.recipe ?? '');
  if (isPhysicalRecipe(recipe) || opts.to !== undefined) return (await import('./pitr.js')).pitrPlanCommand(recipe, opts);
  await warnUnfinished(recipe, opts.recipe ?? '', (t) => out.info(t));
  const set = await pickBackupSet(recipe, opts.backup ?? 'latest');
  // A set staged for the plan (downloaded, or an encrypted one decrypted) is not kept: restore stages it again.
  try {
    const options = resolvePlanOptions(recipe.recipe, {
      ...(opts.only !== undefined ? { only: opts.only } : {}),
      ...(opts.missingRoles !== undefined ? { missingRoles: opts.missingRoles } : {}),
      ...(opts.jobs !== undefined ? { jobs: opts.jobs } : {}),
      ...(opts.parallel !== undefined ? { parallel: opts.parallel } : {}),
    });
    const redact = recipeRedactor(recipe);
    let problems: PreflightProblem[] = [];
    let facts;
    if (opts.offline) {
      facts = recipeFacts(recipe);
    } else {
      if (!opts.json) out.info('Probing the targets (read-only)...');
      facts = await probeFacts(recipe, set, undefined, { redact, ...(options.safetyDir ? { safetyDir: options.safetyDir } : {}) });
      problems = preflightProblems(recipe, set, facts, {
        missingRoles: options.missingRoles,
        ...(options.only ? { only: options.only } : {}),
      });
    }
    // What this user cannot read or write (the backup files, the evidence): never "no problems found" then.
    problems.push(...(await accessProblems(recipe, set)));
    // The keys a restore of this plan would lock (the session's scheme), so the plan shows them and passes the engine's check.
    const lockKeys = await identityLockKeys(recipe.recipe, restorableComponents(recipe, set, options.only).kinds, 'restore');
    const plan: Plan = buildPlan({ recipe, set, facts, options, mode: 'restore', now: new Date(), lockKeys });
    // The engine's own check (engine/run.ts refuses such a plan with exit 9): the dry run shows it too.
    const invalid = validatePlan(plan);
    const errors = problems.filter((x) => x.severity === 'error');
    if (opts.json) {
      out.json(redactDeep({ ...plan, preflight: problems, ...(invalid.length > 0 ? { invalid } : {}) }, redact));
    } else {
      out.result(redact(renderPlanText(plan, out.color)));
      out.result('Nothing was touched: this is the plan only. `restore-assistant restore` runs exactly these steps.');
      if (invalid.length > 0) {
        out.result('');
        out.result(
          p(
            'red',
            `The engine would refuse this plan as unsafe (${invalid.length} problem${invalid.length === 1 ? '' : 's'}; a bug in the plan builder: report it with \`restore-assistant plan --json\`):`,
          ),
        );
        for (const x of invalid) out.result(redact(`  x ${x}`));
      }
      if (problems.length > 0) {
        out.result('');
        out.result(
          errors.length > 0
            ? p('red', `Preflight would refuse this restore (${errors.length} problem${errors.length === 1 ? '' : 's'}):`)
            : 'Preflight notes:',
        );
        for (const x of problems) {
          out.result(redact(`  ${x.severity === 'error' ? 'x' : '!'} ${x.component ? `${x.component}: ` : ''}${x.message}`));
          if (x.next) out.result(redact(`      Next: ${x.next}`));
        }
      } else if (!opts.offline) {
        // Reached only when the probe ran and every file and directory a restore needs could be read.
        out.result('Preflight: no problems found (checked again right before a restore).');
      }
    }
    return errors.length > 0 || invalid.length > 0 ? ExitCode.preflightFailed : ExitCode.ok;
  } finally {
    const released = await releaseStaged(set).catch(() => undefined);
    if (released && !opts.json) out.info(released);
  }
}
