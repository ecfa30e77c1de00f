import os from 'node:os';
import { COMPONENT_KINDS, type ComponentKind } from '../catalog/types.js';
import { UsageError } from '../errors.js';
import { defaultSafetyDir } from '../state/paths.js';
import type { Recipe } from '../recipe/schema.js';
import type { PlanOptions } from './types.js';

/** The flags `plan`, `restore` (and the guided flow) share. */
export interface PlanFlags {
  only?: string | ComponentKind[];
  missingRoles?: string;
  jobs?: number;
  parallel?: boolean;
  yes?: boolean;
  rollbackOnUnhealthy?: boolean;
  dropSafetyCopies?: boolean;
  forceUnverified?: string;
  allowDatabaseMismatch?: string;
  safetyDir?: string;
}

const KINDS = COMPONENT_KINDS;

/** Parse `--only postgres,redis`. */
export function parseOnly(value: string | ComponentKind[] | undefined): ComponentKind[] | undefined {
  if (value === undefined) return undefined;
  const parts = (Array.isArray(value) ? value : value.split(',')).map((s) => s.trim()).filter(Boolean);
  const bad = parts.filter((p) => !KINDS.includes(p as ComponentKind));
  if (bad.length > 0 || parts.length === 0) {
    throw new UsageError(
      `--only ${Array.isArray(value) ? value.join(',') : value}: ${bad.length > 0 ? `unknown component ${bad.join(', ')}` : 'names no component'}.`,
      {
        next: 'Use a comma-separated subset of postgres,redis,prometheus.',
      },
    );
  }
  return KINDS.filter((k) => parts.includes(k));
}

/**
 * PlanOptions from the recipe and the flags. The recipe's `missingRoles: ask` becomes `fail`
 * here (preflight then names both choices); the guided flow asks instead.
 */
export function resolvePlanOptions(
  recipe: Recipe,
  flags: PlanFlags,
  cores = os.availableParallelism(),
  env: NodeJS.ProcessEnv = process.env,
): PlanOptions {
  const pgRoles = recipe.components.postgres?.missingRoles ?? 'ask';
  const missingRoles = (flags.missingRoles ?? (pgRoles === 'ask' ? 'fail' : pgRoles)) as PlanOptions['missingRoles'];
  if (!['create', 'skip-ownership', 'fail'].includes(missingRoles)) {
    throw new UsageError(`--missing-roles ${String(flags.missingRoles)}: expected create, skip-ownership or fail.`);
  }
  const only = parseOnly(flags.only);
  return {
    yes: Boolean(flags.yes),
    rollbackOnUnhealthy: Boolean(flags.rollbackOnUnhealthy),
    dropSafetyCopies: Boolean(flags.dropSafetyCopies),
    missingRoles,
    ...(only ? { only } : {}),
    parallel: (flags.parallel ?? true) && recipe.parallel,
    jobs: flags.jobs ?? recipe.components.postgres?.jobs ?? Math.max(1, cores),
    ...(flags.forceUnverified ? { overrideRejected: flags.forceUnverified } : {}),
    ...(flags.allowDatabaseMismatch ? { allowDatabaseMismatch: flags.allowDatabaseMismatch } : {}),
    safetyDir: flags.safetyDir || defaultSafetyDir(recipe, env),
  };
}
