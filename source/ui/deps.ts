import path from 'node:path';
import { listBackupSets, verifyBackupSet } from '../catalog/index.js';
import type { BackupSet, ComponentKind, VerifyReport } from '../catalog/types.js';
import { defaultSafetyDir } from '../commands/plan.js';
import { assertDrillIsolation, drillRecipe } from '../drill/isolate.js';
import { startDrillScratch, type DrillScratch } from '../drill/sandbox.js';
import { verificationEvent } from '../engine/events.js';
import { defaultLockDir, lockKeysForRecipe } from '../engine/lock.js';
import { refuseOverUnfinished } from '../journal/detect.js';
import { attachJournal } from '../journal/journal.js';
import { runPlan as engineRunPlan } from '../engine/run.js';
import { RestoreAssistantError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { createRedactor, type Redactor } from '../exec/redact.js';
import { readHistory, type HistoryRun } from '../evidence/history.js';
import { attachRecipeEvidence, currentOperator, newRunId, prepareRecipeEvidence } from '../evidence/writer.js';
import { buildPlan as buildPurePlan, restorableComponents } from '../plan/build.js';
import { resolvePlanOptions } from '../plan/options.js';
import { preflightProblems, probeFacts, runPreflight } from '../plan/probe.js';
import type { Plan } from '../plan/types.js';
import { discoverRecipes, evidenceDir, recipeDirs, type LoadedRecipe } from '../recipe/load.js';
import type { GuideDeps, GuideHistoryEntry, GuideMode, RecipeChoice } from './types.js';
import { sanitizeText } from '../text/sanitize.js';

/**
 * The real side effects of the guided flow, wired to the same modules `restore` and `drill` use:
 * catalog, verify, probe, plan builder, engine (renderer 'silent': the Ink view draws from the
 * events), evidence. Screens only ever see the GuideDeps interface.
 *
 * A drill starts scratch services when its targets are probed (so the plan can address them) and
 * tears them down in `dispose()`; the real targets are never probed for a drill.
 */

export interface RealGuideDeps extends GuideDeps {
  /** Tear down drill scratch services, if any were started. */
  dispose(): Promise<void>;
}

export interface GuideDepsOptions {
  env?: NodeJS.ProcessEnv;
  /** The command line recorded in evidence. */
  commandLine?: string[];
  /** Recipe search directories (default: $RESTORE_ASSISTANT_RECIPES, ./recipes). */
  dirs?: string[];
}

function expectedKinds(loaded: LoadedRecipe): ComponentKind[] {
  return (['postgres', 'redis', 'prometheus'] as ComponentKind[]).filter((k) => loaded.recipe.components[k] !== undefined);
}

function toEntry(run: HistoryRun): GuideHistoryEntry {
  const e: GuideHistoryEntry = { runId: run.runId, kind: run.kind, startedAt: run.startedAt, outcome: !run.finished && run.outcome === 'interrupted' ? 'killed' : run.outcome };
  if (run.backup) e.backupId = run.backup.id;
  if (run.rtoMs !== null) e.rtoMs = run.rtoMs;
  if (run.rpoMs !== null) e.rpoMs = run.rpoMs;
  if (run.finishedAt) e.durationMs = Math.max(0, Date.parse(run.finishedAt) - Date.parse(run.startedAt));
  if (run.dir) e.dir = run.dir;
  return e;
}

function preflightError(problems: Array<{ component?: string; message: string; next?: string }>, redact: Redactor, drill: boolean): RestoreAssistantError {
  return new RestoreAssistantError(`Preflight found ${problems.length} problem${problems.length === 1 ? '' : 's'}: the ${drill ? 'drill' : 'restore'} cannot start.`, ExitCode.preflightFailed, {
    problems: problems.map((p) => redact(`${p.component ? `${p.component}: ` : ''}${p.message}${p.next ? ` Next: ${p.next}` : ''}`)),
    untouched: drill ? 'Nothing was restored; the real targets were not contacted.' : 'Nothing was touched.',
    next: 'Fix the problems listed, then choose the set again (`restore-assistant plan` shows the plan without touching anything).',
  });
}

interface PlanContext {
  /** The recipe as the operator chose it. */
  loaded: LoadedRecipe;
  /** The recipe the plan addresses (the drill recipe for a drill). */
  target: LoadedRecipe;
  verify?: VerifyReport;
  redact: Redactor;
  env: NodeJS.ProcessEnv;
  kinds: ComponentKind[];
}

/** The plan with the plan screen's "if health checks fail" choice applied (a drill never rolls back). */
export function applyUnhealthyChoice(plan: Plan, rollbackOnUnhealthy: boolean): Plan {
  const wanted = plan.mode === 'drill' ? plan.options.rollbackOnUnhealthy : rollbackOnUnhealthy;
  return wanted === plan.options.rollbackOnUnhealthy ? plan : { ...plan, options: { ...plan.options, rollbackOnUnhealthy: wanted } };
}

export function createGuideDeps(options: GuideDepsOptions = {}): RealGuideDeps {
  const env = options.env ?? process.env;
  const commandLine = options.commandLine ?? ['restore-assistant', 'guide'];
  let scratch: { key: string; scratch: DrillScratch; loaded: LoadedRecipe } | undefined;
  const plans = new WeakMap<Plan, PlanContext>();

  const redactorFor = (loaded: LoadedRecipe): Redactor => {
    const c = loaded.recipe.components;
    return createRedactor([c.postgres?.passwordEnv, c.redis?.passwordEnv].map((n) => (n ? env[n] : undefined)));
  };

  const history = async (loaded: LoadedRecipe): Promise<GuideHistoryEntry[]> => {
    const view = await readHistory(evidenceDir(loaded.recipe, env), { recipe: loaded.recipe.name, intervalDays: loaded.recipe.drill.intervalDays });
    return view.runs
      .filter((r) => r.kind === 'restore' || r.kind === 'drill')
      .map(toEntry)
      .sort((a, b) => b.startedAt.localeCompare(a.startedAt));
  };

  /** Scratch services for a drill of this recipe and set (started once, reused while the operator goes back and forth). */
  const scratchFor = async (loaded: LoadedRecipe, set: BackupSet): Promise<{ scratch: DrillScratch; target: LoadedRecipe; kinds: ComponentKind[] }> => {
    const { kinds } = restorableComponents(loaded, set, undefined);
    if (kinds.length === 0) {
      throw new RestoreAssistantError(`Backup set ${set.id} has nothing this recipe restores.`, ExitCode.backupRejected, {
        untouched: 'Nothing was touched.',
        next: 'Choose another set, or check the recipe\'s components.',
      });
    }
    const key = `${loaded.file}|${kinds.join(',')}`;
    if (scratch && scratch.key !== key) {
      await scratch.scratch.teardown();
      scratch = undefined;
    }
    scratch ??= { key, scratch: await startDrillScratch(loaded, kinds, env), loaded };
    const { recipe } = drillRecipe(loaded.recipe, scratch.scratch.sandbox);
    return { scratch: scratch.scratch, target: { recipe, file: loaded.file, digest: loaded.digest }, kinds };
  };

  const probeContext = new WeakMap<BackupSet, { mode: GuideMode; target: LoadedRecipe; env: NodeJS.ProcessEnv; redact: Redactor; kinds: ComponentKind[] }>();

  return {
    async listRecipes(extra) {
      const found = await discoverRecipes(options.dirs ?? recipeDirs(env));
      const choices: RecipeChoice[] = [];
      const files = new Set<string>();
      for (const loaded of extra) {
        files.add(loaded.file);
        choices.push({ name: loaded.recipe.name, file: loaded.file, loaded });
      }
      for (const e of found) {
        const file = e.loaded?.file ?? path.resolve(e.file);
        if (files.has(file)) continue;
        files.add(file);
        const choice: RecipeChoice = { name: e.name, file: e.file };
        if (e.loaded) choice.loaded = e.loaded;
        if (e.error) choice.error = [e.error.message, ...e.error.problems].slice(0, 3).join(' ');
        choices.push(choice);
      }
      await Promise.all(
        choices.map(async (c) => {
          if (!c.loaded) return;
          try {
            const last = (await history(c.loaded))[0];
            if (last) c.lastRun = last;
          } catch {
            // No readable history: the screen says none is recorded.
          }
        }),
      );
      return choices;
    },

    async listSets(loaded) {
      const b = loaded.recipe.backups;
      const result = await listBackupSets({ root: b.root, layout: b.layout, ...(b.database ? { database: b.database } : {}), pairWindowMinutes: b.pairWindowMinutes });
      return { sets: result.sets, warnings: result.warnings };
    },

    async verify(loaded, set, o) {
      const pgBin = loaded.recipe.components.postgres?.bin;
      return verifyBackupSet(set, {
        depth: o.depth,
        expect: expectedKinds(loaded),
        signal: o.signal,
        ...(pgBin ? { pgBin } : {}),
        ...(loaded.recipe.components.postgres ? { expectDatabase: loaded.recipe.components.postgres.database } : {}),
        onProgress: (p) => o.onProgress({ component: p.component, check: sanitizeText(path.basename(p.path)), done: p.bytesDone, total: p.bytesTotal }),
      });
    },

    async probe(loaded, set, report, o) {
      const base = redactorFor(loaded);
      if (o.mode === 'drill') {
        const { scratch: s, target, kinds } = await scratchFor(loaded, set);
        const redact = base.with(s.secrets);
        probeContext.set(set, { mode: 'drill', target, env: s.env, redact, kinds });
        return probeFacts(target, set, report, { redact, env: s.env, signal: o.signal, safetyDir: s.sandbox.rootDirs[0] ?? '' });
      }
      const kinds = restorableComponents(loaded, set, undefined).kinds;
      probeContext.set(set, { mode: 'restore', target: loaded, env, redact: base, kinds });
      return probeFacts(loaded, set, report, { redact: base, env, signal: o.signal, safetyDir: defaultSafetyDir(loaded, env) });
    },

    buildPlan(req) {
      const ctx = probeContext.get(req.set);
      if (!ctx || ctx.mode !== req.mode) throw new Error('buildPlan before probe for this set and mode');
      const drill = req.mode === 'drill';
      const safetyDir = drill ? (scratch?.scratch.sandbox.rootDirs[0] ?? '') : defaultSafetyDir(req.recipe, env);
      const options = resolvePlanOptions(ctx.target.recipe, {
        yes: true,
        missingRoles: drill ? 'create' : req.missingRoles,
        ...(req.overrideRejected !== undefined ? { forceUnverified: req.overrideRejected } : {}),
        safetyDir,
      });
      const blocking = preflightProblems(ctx.target, req.set, req.facts, { missingRoles: options.missingRoles }).filter((p) => p.severity === 'error');
      if (blocking.length > 0) throw preflightError(blocking, ctx.redact, drill);
      const plan = buildPurePlan({ recipe: ctx.target, set: req.set, facts: req.facts, options, mode: req.mode, now: new Date(), ...(req.verify ? { verify: req.verify } : {}) });
      if (drill && scratch) assertDrillIsolation(plan, scratch.scratch.sandbox, req.recipe.recipe);
      const pc: PlanContext = { loaded: req.recipe, target: ctx.target, redact: ctx.redact, env: ctx.env, kinds: ctx.kinds };
      if (req.verify) pc.verify = req.verify;
      plans.set(plan, pc);
      return plan;
    },

    async runPlan(built, o) {
      const ctx = plans.get(built);
      if (!ctx) throw new Error('runPlan with a plan this guide did not build');
      // The operator's choice on the plan screen (u), applied to the plan this guide built.
      const plan = applyUnhealthyChoice(built, o.rollbackOnUnhealthy);
      const kind = plan.mode;
      const confirmedAt = new Date(o.confirmedAt);
      const runId = newRunId(kind, ctx.loaded.recipe.name, confirmedAt);
      if (kind === 'restore') await refuseOverUnfinished(ctx.target, ctx.target.file, env);
      await prepareRecipeEvidence(ctx.loaded, env);
      const evidence = attachRecipeEvidence(o.bus, { loaded: ctx.loaded, kind, redact: ctx.redact, runId, commandLine, env });
      const lockKeys = lockKeysForRecipe(ctx.target.recipe, Object.keys(plan.targets) as ComponentKind[]);
      const journal = kind === 'restore' ? attachJournal(o.bus, { runDir: evidence.dir, lockKeys, env }) : undefined;
      try {
        const report = ctx.verify;
        if (report) {
          o.bus.emit(verificationEvent(report, ctx.redact));
        }
        if (plan.options.overrideRejected !== undefined) {
          o.bus.emit({ type: 'log', level: 'warn', message: ctx.redact(`restoring a set that failed verification; operator's reason: ${plan.options.overrideRejected}`) });
        }
        const summary = await engineRunPlan(plan, {
          bus: o.bus,
          redact: ctx.redact,
          env: ctx.env,
          signal: o.signal,
          stopSignal: o.stopSignal,
          renderer: 'silent',
          runId,
          kind,
          confirmedAt,
          operator: currentOperator(env).operator,
          preflight: async () =>
            (await runPreflight(plan, ctx.target, { redact: ctx.redact, env: ctx.env, ...(ctx.verify ? { verify: ctx.verify } : {}) }))
              .filter((p) => p.severity === 'error')
              .map((p) => `${p.component ? `${p.component}: ` : ''}${p.message}${p.next ? ` Next: ${p.next}` : ''}`),
          lockDir: defaultLockDir(env, evidenceDir(ctx.loaded.recipe, env)),
          lockKeys,
          checkContext: { recipe: ctx.target.recipe, loaded: ctx.target, mode: kind },
          ...(o.onUnhealthy ? { onUnhealthy: o.onUnhealthy } : {}),
        });
        return { summary, evidenceDir: evidence.dir, runId };
      } finally {
        journal?.dispose();
        await evidence.close();
      }
    },

    history,
    clock: () => new Date(),

    async dispose() {
      const s = scratch;
      scratch = undefined;
      await s?.scratch.teardown();
    },
  };
}
