import { type BackupComponent, type BackupSet, type ComponentKind, type VerifyReport } from '../catalog/types.js';
import { type LoadedRecipe } from '../recipe/load.js';
import type { PlanOptions, PlanStep, TargetFacts } from './types.js';

/** What the per-component step builders share: the plan input, step drafts, verification facts, safe names. */

export interface BuildPlanInput {
  recipe: LoadedRecipe;
  set: BackupSet;
  facts: TargetFacts;
  options: PlanOptions;
  mode: 'restore' | 'drill';
  now: Date;
  verify?: VerifyReport;
  /** The keys the session locked for this plan (engine/target-identity.ts `identityLockKeys`; a drill's name the real targets). Without them the plan names none, and the engine refuses it (validatePlan). */
  lockKeys?: string[];
}

/** A file-name-safe form of a name (for safety-copy files). */
export function fileSafe(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 100) || 'db';
}

export function verifyFacts(verify: VerifyReport | undefined, kind: ComponentKind): Record<string, unknown> {
  return verify?.components.find((c) => c.kind === kind)?.facts ?? {};
}

export function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

export function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

export function component(set: BackupSet, kind: ComponentKind): BackupComponent {
  const c = set.components.find((x) => x.kind === kind);
  if (!c) throw new Error(`set ${set.id} has no ${kind} component`);
  return c;
}

export interface StepDraft extends Omit<PlanStep, 'dependsOn'> {
  dependsOn?: string[];
}
