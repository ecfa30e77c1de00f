import { raCommand } from '../text/next.js';
import { databaseClaims, databaseMismatches, describeMismatch } from '../catalog/database-identity.js';
import { type BackupSet, COMPONENT_KINDS, type ComponentKind } from '../catalog/types.js';
import { UsageError } from '../errors.js';
import { contextLabel } from '../exec/context.js';
import { type LoadedRecipe } from '../recipe/load.js';
import type { Check } from '../recipe/schema.js';
import { appServiceControl, startActions, stopActions } from '../targets/services.js';
import type { Lane, Plan, PlanStep } from './types.js';
import { str, verifyFacts, type BuildPlanInput, type StepDraft } from './draft.js';
import { postgresSteps } from './steps-postgres.js';
import { redisSteps } from './steps-redis.js';
import { prometheusSteps } from './steps-prometheus.js';

export type { BuildPlanInput } from './draft.js';
export { redisLayout } from './steps-redis.js';

/**
 * The pure plan builder: recipe + backup set + facts + options -> Plan. No I/O, no clock, no
 * randomness: the same input (with the same `now`) gives the same plan, byte for byte.
 */

const ORDER = COMPONENT_KINDS;

/** YYYYMMDDTHHMMSSZ (UTC). */
export function planStamp(now: Date): string {
  return now
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace(/[-:]/g, '');
}

/** The components this plan restores, in order, with warnings for those left out. */
export function restorableComponents(
  recipe: LoadedRecipe,
  set: BackupSet,
  only: readonly ComponentKind[] | undefined,
): { kinds: ComponentKind[]; warnings: string[] } {
  const warnings: string[] = [];
  const kinds: ComponentKind[] = [];
  for (const kind of ORDER) {
    const inRecipe = recipe.recipe.components[kind] !== undefined;
    const inSet = set.components.some((c) => c.kind === kind);
    const wanted = !only || only.includes(kind);
    if (only?.includes(kind) && !inRecipe)
      throw new UsageError(`--only ${kind}: recipe ${recipe.recipe.name} has no ${kind} component.`, {
        next: 'Drop it from --only, or add the component to the recipe.',
      });
    if (only?.includes(kind) && !inSet)
      throw new UsageError(`--only ${kind}: backup set ${set.id} has no ${kind} backup.`, {
        next: `Pick another set (\`${raCommand('list', '--recipe', recipe.file)}\`), or drop ${kind} from --only.`,
      });
    if (!wanted) continue;
    if (inRecipe && !inSet) {
      warnings.push(`Backup set ${set.id} has no ${kind} backup: ${kind} is left as it is.`);
      continue;
    }
    if (!inRecipe && inSet) {
      warnings.push(
        `Backup set ${set.id} has a ${kind} backup but recipe ${recipe.recipe.name} has no ${kind} component: it is not restored.`,
      );
      continue;
    }
    if (inRecipe && inSet) kinds.push(kind);
  }
  if (kinds.length === 0) {
    throw new UsageError(
      `Nothing to restore: backup set ${set.id} and recipe ${recipe.recipe.name} have no component in common${only ? ` among --only ${only.join(',')}` : ''}.`,
      {
        next: `Pick another set (\`${raCommand('list', '--recipe', recipe.file)}\`) or check the recipe components.`,
      },
    );
  }
  return { kinds, warnings };
}

function describeTargets(recipe: LoadedRecipe, kinds: ComponentKind[]): Plan['targets'] {
  const c = recipe.recipe.components;
  const out: Plan['targets'] = {};
  if (kinds.includes('postgres') && c.postgres)
    out.postgres = `PostgreSQL ${c.postgres.database} on ${c.postgres.host}:${c.postgres.port} (${contextLabel(c.postgres.exec)})`;
  if (kinds.includes('redis') && c.redis) out.redis = `Redis on ${c.redis.host}:${c.redis.port} (${contextLabel(c.redis.exec)})`;
  if (kinds.includes('prometheus') && c.prometheus)
    out.prometheus = `Prometheus at ${c.prometheus.url}, data ${c.prometheus.dataDir} (${contextLabel(c.prometheus.exec)})`;
  return out;
}

function healthChecks(checks: readonly Check[], mode: 'restore' | 'drill'): Check[] {
  return checks.filter((c) => c.when.includes(mode));
}

/** Build the plan. Pure: throws UsageError for impossible requests (an --only the set lacks). */
export function buildPlan(input: BuildPlanInput): Plan {
  const { recipe, set, facts, options, mode, now } = input;
  const r = recipe.recipe;
  const stamp = planStamp(now);
  const { kinds, warnings } = restorableComponents(recipe, set, options.only);
  const parallel = options.parallel;

  const drafts: StepDraft[] = [];
  const preflightChecks = [
    'client tools present and new enough for the dump',
    ...(kinds.includes('postgres') ? ['roles the dump references exist (or the chosen --missing-roles)'] : []),
    'targets reachable with the recipe credentials',
    'free disk for safety copies and restored files',
    'no other restore holds a target lock',
  ];
  drafts.push({
    id: 'preflight',
    title: 'Run preflight checks',
    doneTitle: 'Preflight checks passed',
    phase: 'preflight',
    lane: 'main',
    destructive: false,
    actions: [{ type: 'note', purpose: `Preflight (before any step changes anything): ${preflightChecks.join('; ')}` }],
  });

  const quiesceIds: string[] = [];
  for (const svc of r.services) {
    const id = `quiesce:${svc.name}`;
    quiesceIds.push(id);
    drafts.push({
      id,
      title: `Stop ${svc.name}`,
      doneTitle: `${svc.name} stopped`,
      phase: 'quiesce',
      lane: 'main',
      component: 'services',
      destructive: false,
      actions: stopActions(svc.name, appServiceControl(svc)),
      undo: { title: `Start ${svc.name}`, actions: startActions(svc.name, appServiceControl(svc)) },
    });
  }

  const laneSteps: StepDraft[][] = [];
  const c = r.components;
  if (kinds.includes('postgres') && c.postgres) laneSteps.push(postgresSteps(c.postgres, input, stamp, warnings));
  if (kinds.includes('redis') && c.redis) laneSteps.push(redisSteps(c.redis, input, stamp, warnings));
  if (kinds.includes('prometheus') && c.prometheus) laneSteps.push(prometheusSteps(c.prometheus, input, stamp));
  for (const lane of laneSteps) drafts.push(...lane);

  for (const svc of [...r.services].reverse()) {
    drafts.push({
      id: `start:${svc.name}`,
      title: `Start ${svc.name}`,
      doneTitle: `${svc.name} started`,
      phase: 'start',
      lane: 'main',
      component: 'services',
      destructive: false,
      actions: startActions(svc.name, appServiceControl(svc)),
      undo: { title: `Stop ${svc.name}`, actions: stopActions(svc.name, appServiceControl(svc)) },
    });
  }

  const checks = healthChecks(r.checks, mode);
  drafts.push({
    id: 'health',
    title: 'Run health checks',
    doneTitle: 'Health checks passed',
    phase: 'health',
    lane: 'main',
    destructive: false,
    actions:
      checks.length > 0
        ? checks.map((check) => ({ type: 'check' as const, check, purpose: `Health check: ${check.name}` }))
        : [{ type: 'note' as const, purpose: `The recipe has no health checks for ${mode}s.` }],
  });

  // Dependencies. Sequential: one lane, each step after the previous. Parallel: component lanes
  // start after the last quiesce step and run side by side; services start after every lane.
  const steps: PlanStep[] = [];
  if (!parallel) {
    let prev: string | undefined;
    for (const d of drafts) {
      steps.push({ ...d, lane: 'main', dependsOn: prev ? [prev] : [] });
      prev = d.id;
    }
  } else {
    const afterQuiesce = quiesceIds.length > 0 ? quiesceIds[quiesceIds.length - 1]! : 'preflight';
    const laneEnds = laneSteps.map((l) => l[l.length - 1]!.id);
    const laneIds = new Set(laneSteps.flat().map((s) => s.id));
    let prevMain: string | undefined;
    const prevInLane = new Map<Lane, string>();
    for (const d of drafts) {
      let dependsOn: string[];
      if (laneIds.has(d.id)) {
        const prev = prevInLane.get(d.lane);
        dependsOn = [prev ?? afterQuiesce];
        prevInLane.set(d.lane, d.id);
      } else if (d.phase === 'start' || d.phase === 'health') {
        // The first step after the lanes waits for every lane; later ones follow each other.
        const afterLanes = laneEnds.length > 0 ? [...laneEnds] : prevMain ? [prevMain] : [];
        dependsOn = prevMain?.startsWith('start:') ? [prevMain] : afterLanes;
        prevMain = d.id;
      } else {
        dependsOn = prevMain ? [prevMain] : [];
        prevMain = d.id;
      }
      steps.push({ ...d, dependsOn });
    }
  }

  if (options.overrideRejected) warnings.push(`The set failed verification; restoring anyway because: ${options.overrideRejected}`);
  const pgTarget = kinds.includes('postgres') ? r.components.postgres : undefined;
  if (pgTarget) {
    const dump = facts.postgres?.dump;
    const mismatches = databaseMismatches(
      databaseClaims(set, dump?.database ?? str(verifyFacts(input.verify, 'postgres')['dbname'])),
      pgTarget.database,
    );
    for (const m of mismatches) {
      warnings.push(
        options.allowDatabaseMismatch
          ? `${describeMismatch(m, pgTarget.database)}; restoring anyway because: ${options.allowDatabaseMismatch}`
          : `${describeMismatch(m, pgTarget.database)}: restore refuses this set without --allow-database-mismatch "<reason>"`,
      );
    }
  }
  if (mode === 'drill') {
    warnings.push('Drill: the targets are throwaway scratch services, never the real ones.');
    if (pgTarget && pgTarget.exec.kind === 'host')
      warnings.push(
        "Drill: the scratch PostgreSQL runs with non-durable settings for load speed (fsync, synchronous_commit and full_page_writes off, wal_level minimal, maintenance_work_mem sized to the host: source/sandbox/pg-tuning.ts); a restore in place never changes a server's settings.",
      );
  }

  return {
    version: 1,
    mode,
    createdAt: now.toISOString(),
    stamp,
    recipe: { name: r.name, file: recipe.file, digest: recipe.digest },
    backup: {
      id: set.id,
      time: set.time,
      layout: set.layout,
      location: set.location,
      components: set.components
        .filter((x) => kinds.includes(x.kind))
        .map((x) => {
          const v = input.verify?.components.find((c) => c.path === x.path);
          return {
            kind: x.kind,
            format: x.format,
            path: x.path,
            size: x.size,
            ...(x.expectedSha256 ? { sha256: x.expectedSha256 } : {}),
            ...(v?.sha256 ? { verifiedSha256: v.sha256 } : {}),
            ...(v?.identity ? { identity: v.identity } : {}),
          };
        }),
    },
    targets: describeTargets(recipe, kinds),
    steps,
    lockKeys: input.lockKeys ?? [],
    options: { ...options, parallel },
    facts,
    warnings,
    objectives: {
      ...(r.objectives.rtoMinutes ? { rtoMinutes: r.objectives.rtoMinutes } : {}),
      ...(r.objectives.rpoMinutes ? { rpoMinutes: r.objectives.rpoMinutes } : {}),
    },
  };
}
