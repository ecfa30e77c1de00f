import os from 'node:os';
import { recipeRedactor } from '../recipe/secrets.js';
import { findBackupSet, listBackupSets, loadBackupSetFromPath, verifyBackupSet } from '../catalog/index.js';
import { isPathRef } from '../catalog/resolve.js';
import type { BackupSet, ComponentKind, VerifyReport } from '../catalog/types.js';
import { assertDrillIsolation } from '../drill/isolate.js';
import { EventBus, verificationEvent, type EngineEventBody } from '../engine/events.js';
import { acquireLocks, defaultLockDir, type LockHandle } from '../engine/lock.js';
import { identityLockKeys } from '../engine/target-identity.js';
import { runPlan, type RendererName, type RunSummary, type UnhealthyDecision } from '../engine/run.js';
import { RestoreAssistantError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import type { Redactor } from '../exec/redact.js';
import { attachRecipeEvidence, currentOperator, newRunId, prepareRecipeEvidence } from '../evidence/writer.js';
import { probeTargetsNow } from '../journal/describe.js';
import { refuseOverUnfinished } from '../journal/detect.js';
import { attachJournal } from '../journal/journal.js';
import { buildPlan, restorableComponents } from '../plan/build.js';
import { parseOnly, resolvePlanOptions, type PlanFlags } from '../plan/options.js';
import { preflightProblems, probeFacts, runPreflight, type PreflightProblem } from '../probe/index.js';
import type { Plan, SafetyCopy, TargetFacts } from '../plan/types.js';
import { type LoadedRecipe } from '../recipe/load.js';
import { defaultSafetyDir, evidenceDir } from '../state/paths.js';
import { releaseStaged, stagedEvents } from '../offsite/index.js';
import { pickLocalOrOffsite } from '../offsite/pick.js';
import { terminalSafe } from '../text/sanitize.js';
import { raCommand } from '../text/next.js';
import { toolVersion } from '../version.js';
import type { CommandSignals } from './signals.js';
import { drillScratchHolder, type DrillScratchHolder, type DrillTarget } from './drill.js';

/**
 * The one restore use case, shared by `restore`, `drill` and the guided flow:
 *
 *   prepare: pick the set -> lock (one policy: before verify and probe, on every path) -> verify
 *            -> probe (read-only; a drill's scratch services start here) -> preflight -> plan
 *   start:   evidence -> verification event -> override log -> runPlan -> summary
 *
 * `verify` and `probe` take the lock themselves, so no caller can verify or probe a target another
 * run holds. The locks are held until `dispose()`: the engine is handed them (`heldLocks`). A drill
 * locks "drill:<real target>" keys (engine/target-identity.ts) and its scratch services live on top of the
 * session (session/drill.ts). Signals are owned by session/signals.ts.
 */

export type SessionMode = 'restore' | 'drill';

export interface SessionOptions {
  loaded: LoadedRecipe;
  mode: SessionMode;
  /** The operator's environment (secrets named by the recipe are read here). Default: process.env. */
  env?: NodeJS.ProcessEnv;
  /** The command line recorded in evidence. */
  commandLine: string[];
  /** How the operator named the recipe (for the `recover --recipe R` line). Default: its file. */
  recipeRef?: string;
  /** The plan flags from the command line (`--only`, `--jobs`, `--yes`, ...); `plan()` may add to them. */
  flags?: PlanFlags;
  /** Who reads the errors: the guide's operator picks another set, the command line's runs the command again. */
  surface?: 'command' | 'guide';
  now?: () => Date;
}

export interface VerifyOptions {
  depth: 'quick' | 'deep';
  signal?: AbortSignal;
  onProgress?: Parameters<typeof verifyBackupSet>[1]['onProgress'];
}

export interface PlanInput {
  set: BackupSet;
  facts: TargetFacts;
  /** The verification the set went through (recorded in the plan and the evidence). */
  verify?: VerifyReport;
  /** Flags for this plan, over the session's (the guide's roles choice and override reason). */
  flags?: PlanFlags;
}

export interface StartOptions {
  bus?: EventBus;
  signal?: AbortSignal;
  stopSignal?: AbortSignal;
  renderer: RendererName;
  write?: (line: string) => void;
  color?: boolean;
  /** When the operator confirmed: the RTO clock starts here. */
  confirmedAt: Date;
  /** The guide's plan-screen choice (u), applied to the plan this session built (a drill never rolls back). */
  rollbackOnUnhealthy?: boolean;
  onUnhealthy?: (failed: { checks: string[]; state: string[] }) => Promise<UnhealthyDecision>;
}

export interface StartResult {
  summary: RunSummary;
  runId: string;
  evidenceDir: string;
  /** Problems writing evidence (the run itself is unaffected). */
  evidenceErrors: string[];
}

export interface Session {
  readonly loaded: LoadedRecipe;
  readonly mode: SessionMode;
  readonly runId: string;
  /** The redactor for everything this session prints (a drill's includes the scratch passwords once they exist). */
  redactor(): Redactor;
  /** An event for this run's evidence, recorded first when the evidence opens (e.g. how `drill --pick` chose the set). */
  note(event: EngineEventBody): void;
  /** The evidence directory is safe and the seal signing key is there (checked once, before anything slow; exit 9 with the fix). */
  checkEvidence(): Promise<void>;
  /** The components this session restores from the set (recipe and set both have them, within --only). */
  kinds(set: BackupSet): ComponentKind[];
  /** Take the locks on the targets this set restores (idempotent); LockError (exit 8) when another run holds one. */
  lock(set: BackupSet): Promise<string[]>;
  /** Lock, then verify the set. */
  verify(set: BackupSet, options: VerifyOptions): Promise<VerifyReport>;
  /** Lock, then probe the targets read-only (a drill starts its scratch services first). */
  probe(set: BackupSet, report: VerifyReport | undefined, options?: { signal?: AbortSignal }): Promise<TargetFacts>;
  /** Preflight (refuses with exit 9 on errors) and the pure plan. A drill's plan is checked to address only its scratch services. */
  plan(input: PlanInput): Plan;
  /** Run a plan this session built: evidence, verification event, override log, the engine, the summary. */
  start(plan: Plan, options: StartOptions): Promise<StartResult>;
  /** A drill whose set failed verification: recorded as a refused drill (exit 3), nothing restored. */
  recordRefusedDrill(set: BackupSet, report: VerifyReport, confirmedAt: Date): Promise<{ summary: RunSummary; evidenceDir: string }>;
  /** The drill's scratch services, once started. */
  drill(): DrillTarget | undefined;
  /** A set staged from off-site: its objects go in the evidence; dispose() removes the staged copy unless the recipe keeps it. */
  adoptStaged(set: BackupSet): void;
  /** Release the locks; remove a drill's scratch services (or keep them: returns how to reach them). */
  dispose(options?: { keepScratch?: boolean }): Promise<string[]>;
}

/** The set `--backup` names: an id, "latest", or a path. */
export async function pickBackupSet(recipe: LoadedRecipe, ref: string): Promise<BackupSet> {
  const b = recipe.recipe.backups;
  const scope = { recipe: recipe.file };
  const list = (): ReturnType<typeof listBackupSets> =>
    listBackupSets({
      root: b.root,
      layout: b.layout,
      ...(b.database ? { database: b.database } : {}),
      pairWindowMinutes: b.pairWindowMinutes,
    });
  const local = async (): Promise<BackupSet> => {
    if (ref !== 'latest' && (await isPathRef(ref))) {
      try {
        return findBackupSet((await list()).sets, ref, scope);
      } catch {
        return loadBackupSetFromPath(ref, scope);
      }
    }
    return findBackupSet((await list()).sets, ref, scope);
  };
  // A recipe with an off-site source: a set only in the bucket is staged on local disk first.
  return pickLocalOrOffsite(recipe, ref, local, {
    redact: recipeRedactor(recipe),
    log: (line) => process.stderr.write(`${terminalSafe(line)}\n`),
  });
}

/** The plan with the plan screen's "if health checks fail" choice applied (a drill never rolls back). */
export function applyUnhealthyChoice(plan: Plan, rollbackOnUnhealthy: boolean): Plan {
  const wanted = plan.mode === 'drill' ? plan.options.rollbackOnUnhealthy : rollbackOnUnhealthy;
  return wanted === plan.options.rollbackOnUnhealthy ? plan : { ...plan, options: { ...plan.options, rollbackOnUnhealthy: wanted } };
}

/** The safety copies a plan makes (where the pre-restore data is while the run holds it). */
export function plannedCopies(plan: Plan): SafetyCopy[] {
  return plan.steps.flatMap((s) => (s.safetyCopy && s.safetyCopy.kind !== 'none' ? [s.safetyCopy] : []));
}

/** Where a recipe's locks live. */
export function lockDirFor(loaded: LoadedRecipe, env: NodeJS.ProcessEnv = process.env): string {
  return defaultLockDir(env, evidenceDir(loaded.recipe, env));
}

/** A preflight problem as one line: "postgres: roles missing ... Next: ...". */
export function problemLine(p: Pick<PreflightProblem, 'component' | 'message' | 'next'>): string {
  return `${p.component ? `${p.component}: ` : ''}${p.message}${p.next ? ` Next: ${p.next}` : ''}`;
}

/**
 * The error a restore raises for a set that failed verification (exit 3). The Next: commands name
 * the recipe (`recipeFile`); a set that only lacks components the recipe has is offered `--only`
 * with the components it holds, before the override.
 */
export function verifyRejected(report: VerifyReport, setId: string, recipeFile: string, set?: BackupSet): RestoreAssistantError {
  const missing = report.problems.filter((p) => p.code === 'component-missing');
  const present = set ? KINDS.filter((k) => set.components.some((c) => c.kind === k)) : [];
  const onlyFix =
    missing.length > 0 && missing.length === report.problems.length && present.length > 0
      ? `Restore what it holds (${missing.map((p) => p.component).join(', ')} left as ${missing.length === 1 ? 'it is' : 'they are'}): \`${raCommand('restore', '--recipe', recipeFile, '--backup', setId, '--only', present.join(','), '--yes')}\`. Or pick`
      : 'Pick';
  return new RestoreAssistantError(
    `Backup set ${setId} failed ${report.depth} verification: it is not restored.`,
    ExitCode.backupRejected,
    {
      problems: report.problems.map((p) => `${p.component ? `${p.component}: ` : ''}${p.message}`),
      untouched: 'Nothing was touched.',
      next: `${onlyFix} another set (\`${raCommand('list', '--recipe', recipeFile)}\`), run \`${raCommand('verify', setId, '--recipe', recipeFile)}\` for details, or restore it anyway with --force-unverified "<reason>" (the reason is recorded).`,
    },
  );
}

function preflightRefusal(
  problems: PreflightProblem[],
  redact: Redactor,
  mode: SessionMode,
  surface: 'command' | 'guide',
  planArgs: string[],
): RestoreAssistantError {
  const plan = `\`${raCommand('plan', ...planArgs)}\` shows the plan without touching anything`;
  const next =
    surface === 'guide'
      ? `Fix the problems listed, then choose the set again (${plan}).`
      : mode === 'drill'
        ? 'Fix the problems listed (they would stop a real restore too), then run the drill again.'
        : `Fix the problems listed, then run the restore again (${plan}).`;
  return new RestoreAssistantError(
    `Preflight found ${problems.length} problem${problems.length === 1 ? '' : 's'}: the ${mode} did not start.`,
    ExitCode.preflightFailed,
    {
      problems: problems.map((p) => redact(problemLine(p))),
      untouched: mode === 'drill' ? 'Nothing was restored; the real targets were not contacted.' : 'Nothing was touched.',
      next,
    },
  );
}

const KINDS: ComponentKind[] = ['postgres', 'redis', 'prometheus'];

export function openSession(options: SessionOptions): Session {
  const { loaded, mode } = options;
  const env = options.env ?? process.env;
  const now = options.now ?? (() => new Date());
  const surface = options.surface ?? 'command';
  const baseFlags = options.flags ?? {};
  const only = parseOnly(baseFlags.only);
  const runId = newRunId(mode, loaded.recipe.name, now());
  const base = recipeRedactor(loaded, env);
  const lockDir = lockDirFor(loaded, env);
  const held = new Map<string, string>();
  const handles: LockHandle[] = [];
  const staged: BackupSet[] = [];
  const reports = new Map<string, VerifyReport>();
  const notes: EngineEventBody[] = [];
  const built = new WeakMap<Plan, { set: BackupSet; verify?: VerifyReport }>();
  const scratch: DrillScratchHolder | undefined = mode === 'drill' ? drillScratchHolder(loaded, env) : undefined;

  const redactor = (): Redactor => {
    const d = scratch?.current();
    return d ? base.with(d.scratch.secrets) : base;
  };
  const kindsOf = (set: BackupSet): ComponentKind[] => restorableComponents(loaded, set, only).kinds;
  /** The one lock-key scheme (engine/target-identity.ts): the targets' identities, "drill:" keys for a drill. Computed at lock time, per set. */
  const keysBySet = new Map<string, string[]>();
  const keysOf = async (set: BackupSet): Promise<string[]> => {
    const keys = await identityLockKeys(loaded.recipe, kindsOf(set), mode);
    keysBySet.set(set.id, keys);
    return keys;
  };
  const lockCommand = mode === 'drill' ? 'drill' : surface === 'guide' ? 'guide' : 'restore';

  let evidenceChecked: Promise<void> | undefined;
  const checkEvidence = (): Promise<void> => {
    evidenceChecked ??= (async () => {
      // A restore over a run that died half-way would take its half-done state for the data as it
      // was: refused (exit 8, to `recover`). A drill never touches the real targets.
      if (mode === 'restore') await refuseOverUnfinished(loaded, options.recipeRef ?? loaded.file, env);
      await prepareRecipeEvidence(loaded, env);
    })();
    return evidenceChecked;
  };

  /** Set by dispose(): a lock still being taken then is released at once (an interrupt mid-lock leaves none behind). */
  let disposed = false;
  let locking: Promise<unknown> = Promise.resolve();
  const lockNow = async (set: BackupSet): Promise<string[]> => {
    // Before anything slow (the lock, verify): the evidence directory and the signing key.
    await checkEvidence();
    const keys = await keysOf(set);
    const missing = keys.filter((k) => !held.has(k));
    if (missing.length > 0) {
      if (disposed) throw new Error('this session has ended (its locks are released)');
      const handle = await acquireLocks(missing, { dir: lockDir, runId, command: lockCommand, recipe: loaded.recipe.name, env });
      handles.push(handle);
      for (const [k, f] of handle.files) held.set(k, f);
    }
    return keys;
  };
  const lock = (set: BackupSet): Promise<string[]> => {
    const taking = lockNow(set);
    locking = Promise.all([locking, taking.catch(() => undefined)]);
    return taking;
  };

  /** The drill's scratch services for this set (started on first use). */
  const drillFor = async (set: BackupSet): Promise<DrillTarget> => {
    if (!scratch) throw new Error('not a drill session');
    const kinds = kindsOf(set);
    if (kinds.length === 0) {
      throw new RestoreAssistantError(`Backup set ${set.id} has nothing this recipe restores.`, ExitCode.backupRejected, {
        untouched: 'Nothing was touched.',
        next: `Check the recipe's components and the set (\`${raCommand('list', '--recipe', loaded.file)}\`).`,
      });
    }
    return scratch.forKinds(kinds);
  };

  const preflightAtRun = async (
    plan: Plan,
    target: LoadedRecipe,
    runEnv: NodeJS.ProcessEnv,
    verify: VerifyReport | undefined,
  ): Promise<string[]> =>
    (await runPreflight(plan, target, { redact: redactor(), env: runEnv, ...(verify ? { verify } : {}) }))
      .filter((p) => p.severity === 'error')
      .map(problemLine);

  return {
    loaded,
    mode,
    runId,
    redactor,
    note: (event) => {
      notes.push(event);
    },
    checkEvidence,
    kinds: kindsOf,
    lock,

    async verify(set, o) {
      await lock(set);
      const pg = loaded.recipe.components.postgres;
      const expect = KINDS.filter((k) => loaded.recipe.components[k] !== undefined && (!only || only.includes(k)));
      const report = await verifyBackupSet(set, {
        depth: o.depth,
        expect,
        ...(o.signal ? { signal: o.signal } : {}),
        ...(pg?.bin ? { pgBin: pg.bin } : {}),
        // A set whose dump or metadata names another database is a problem of its own (database-mismatch).
        ...(pg && expect.includes('postgres') ? { expectDatabase: pg.database } : {}),
        ...(o.onProgress ? { onProgress: o.onProgress } : {}),
      });
      reports.set(set.id, report);
      return report;
    },

    async probe(set, report, o = {}) {
      await lock(set);
      const signal = o.signal ? { signal: o.signal } : {};
      if (scratch) {
        const d = await drillFor(set);
        return probeFacts(d.target, set, report, { redact: redactor(), env: d.scratch.env, ...signal, safetyDir: d.safetyDir });
      }
      return probeFacts(loaded, set, report, {
        redact: base,
        env,
        ...signal,
        safetyDir: baseFlags.safetyDir || defaultSafetyDir(loaded.recipe, env),
      });
    },

    plan(input) {
      const d = scratch?.current();
      if (scratch && !d) throw new Error('a drill is planned after its targets are probed');
      const target = d ? d.target : loaded;
      const flags: PlanFlags = d
        ? { ...baseFlags, ...input.flags, yes: true, missingRoles: 'create', safetyDir: d.safetyDir }
        : {
            ...baseFlags,
            ...input.flags,
            safetyDir: input.flags?.safetyDir || baseFlags.safetyDir || defaultSafetyDir(loaded.recipe, env),
          };
      const options = resolvePlanOptions(target.recipe, flags, undefined, env);
      const blocking = preflightProblems(target, input.set, input.facts, {
        missingRoles: options.missingRoles,
        ...(options.only ? { only: options.only } : {}),
        parallel: options.jobs > 1,
      }).filter((p) => p.severity === 'error');
      if (blocking.length > 0)
        throw preflightRefusal(blocking, redactor(), mode, surface, [
          '--recipe',
          loaded.file,
          '--backup',
          input.set.id,
          ...(options.only ? ['--only', options.only.join(',')] : []),
        ]);
      const verify = input.verify ?? reports.get(input.set.id);
      const lockKeys = keysBySet.get(input.set.id);
      if (!lockKeys) throw new Error('a plan is built after its targets are locked (verify or probe first)');
      const plan = buildPlan({
        recipe: target,
        set: input.set,
        facts: input.facts,
        options,
        mode,
        now: now(),
        ...(verify ? { verify } : {}),
        lockKeys,
      });
      if (d) assertDrillIsolation(plan, d.scratch.sandbox, loaded.recipe);
      built.set(plan, { set: input.set, ...(verify ? { verify } : {}) });
      return plan;
    },

    async start(builtPlan, o) {
      const ctx = built.get(builtPlan);
      if (!ctx) throw new Error('start with a plan this session did not build');
      const plan = o.rollbackOnUnhealthy === undefined ? builtPlan : applyUnhealthyChoice(builtPlan, o.rollbackOnUnhealthy);
      const d = scratch?.current();
      const target = d ? d.target : loaded;
      const runEnv = d ? d.scratch.env : env;
      const redact = redactor();
      await checkEvidence();
      const bus = o.bus ?? new EventBus();
      // ---- EVIDENCE: the one place a restore or a drill attaches its evidence log to the event bus. ----
      const evidence = attachRecipeEvidence(bus, { loaded, kind: mode, redact, runId, commandLine: options.commandLine, env });
      // The restore journal (source/journal/): durable intents and outcomes, indexed machine-wide, keyed by the plan's lock keys.
      const journal = mode === 'restore' ? attachJournal(bus, { runDir: evidence.dir, lockKeys: plan.lockKeys, env }) : undefined;
      let summary: RunSummary;
      try {
        for (const n of notes) bus.emit(n);
        const report = ctx.verify;
        if (report) bus.emit(verificationEvent(report, redact));
        for (const s of d?.skippedChecks ?? []) bus.emit({ type: 'log', level: 'warn', message: `check skipped in drill: ${s}` });
        // The operator's recorded reasons for restoring a set verification rejected (a set naming
        // another database has its own override, --allow-database-mismatch).
        const mismatch = (report?.problems ?? []).filter((p) => p.code === 'database-mismatch');
        const otherProblems = report ? report.problems.length - mismatch.length : 1;
        const coveredByOverride = otherProblems > 0 || (mismatch.length > 0 && plan.options.allowDatabaseMismatch === undefined);
        if (plan.options.overrideRejected !== undefined && coveredByOverride) {
          bus.emit({
            type: 'log',
            level: 'warn',
            message: redact(
              `restoring a set that failed ${report ? `${report.depth} ` : ''}verification; operator's reason: ${plan.options.overrideRejected}`,
            ),
          });
        }
        if (plan.options.allowDatabaseMismatch !== undefined && mismatch.length > 0) {
          bus.emit({
            type: 'log',
            level: 'warn',
            message: redact(
              `restoring a set that names another database (${mismatch.map((p) => p.message).join('; ')}); operator's reason: ${plan.options.allowDatabaseMismatch}`,
            ),
          });
        }
        summary = await runPlan(plan, {
          bus,
          redact,
          env: runEnv,
          ...(o.signal ? { signal: o.signal } : {}),
          ...(o.stopSignal ? { stopSignal: o.stopSignal } : {}),
          renderer: o.renderer,
          ...(o.write ? { write: o.write } : {}),
          ...(o.color !== undefined ? { color: o.color } : {}),
          runId,
          kind: mode,
          confirmedAt: o.confirmedAt,
          operator: currentOperator(env).operator,
          preflight: () => preflightAtRun(plan, target, runEnv, report),
          lockDir,
          heldLocks: { files: held, release: async () => undefined },
          checkContext: { recipe: target.recipe, loaded: target, mode },
          ...(o.onUnhealthy ? { onUnhealthy: o.onUnhealthy } : {}),
          // After an interrupt, the state lines are checked live (read-only), not assumed.
          ...(mode === 'restore' ? { stateNow: () => probeTargetsNow(target, { plan, preIncident: plannedCopies(plan) }, runEnv) } : {}),
        });
      } finally {
        journal?.dispose();
        await evidence.close();
      }
      return { summary, runId, evidenceDir: evidence.dir, evidenceErrors: [...evidence.errors] };
    },

    async recordRefusedDrill(set, report, confirmedAt) {
      const redact = redactor();
      const bus = new EventBus();
      const evidence = attachRecipeEvidence(bus, { loaded, kind: 'drill', redact, runId, commandLine: options.commandLine, env });
      try {
        for (const n of notes) bus.emit(n);
        bus.emit(verificationEvent(report, redact));
        bus.emit({
          type: 'run-started',
          runId,
          kind: 'drill',
          operator: currentOperator(env).operator,
          host: os.hostname(),
          toolVersion: toolVersion(),
          recipe: { name: loaded.recipe.name, file: loaded.file, digest: loaded.digest },
          backup: { id: set.id, time: set.time, location: set.location },
          confirmedAt: confirmedAt.toISOString(),
        });
        const summary: RunSummary = {
          outcome: 'refused',
          exitCode: ExitCode.backupRejected,
          rpoMs: confirmedAt.getTime() - Date.parse(set.time),
          safetyCopies: [],
          state: [
            'Nothing was restored: the backup set failed verification.',
            ...report.problems.map((p) => `${p.component ?? 'set'}: ${p.message}`),
          ],
          nextSteps: [
            `Fix the backup job that produced this set; \`${raCommand('list', '--recipe', loaded.file)}\` shows the newer sets, \`${raCommand('verify', 'latest', '--recipe', loaded.file)}\` checks the newest.`,
          ],
        };
        bus.emit({ type: 'run-finished', ...summary });
        return { summary, evidenceDir: evidence.dir };
      } finally {
        await evidence.close();
      }
    },

    drill: () => scratch?.current(),

    adoptStaged(set) {
      if (!set.origin || staged.includes(set)) return;
      staged.push(set);
      for (const e of stagedEvents(set)) this.note(e);
    },

    async dispose(o = {}) {
      let kept: string[] = [];
      try {
        for (const set of staged.splice(0)) {
          const line = await releaseStaged(set).catch((e: unknown) => `Staged copy not removed: ${String(e)}`);
          if (line) process.stderr.write(`${terminalSafe(line)}\n`);
        }
        if (scratch) {
          if (o.keepScratch) kept = await scratch.keep();
          else await scratch.teardown();
        }
      } finally {
        disposed = true;
        // A lock still being taken (the guide's verify job when Ctrl-C ended it) is released too.
        await locking;
        for (const h of handles.splice(0)) await h.release();
        held.clear();
      }
      return kept;
    },
  };
}

/** What `prepare` ends with: a plan, or where it stopped. */
export type Prepared =
  | { kind: 'planned'; set: BackupSet; report: VerifyReport; plan: Plan }
  | { kind: 'cancelled'; set: BackupSet }
  | { kind: 'rejected'; set: BackupSet; report: VerifyReport };

export interface PrepareOptions {
  /** `--backup`: an id, "latest" or a path. */
  backup: string;
  /** Chooses the set instead of `backup` (`drill --pick`). */
  pickSet?: () => Promise<BackupSet>;
  depth: 'quick' | 'deep';
  signal?: AbortSignal;
  /** The command's signal owner (session/signals.ts): a signal before the run cancels at the stage it arrives in (exit `cancelled`). */
  signals?: Pick<CommandSignals, 'cancel' | 'throwIfCancelled'>;
  onProgress?: VerifyOptions['onProgress'];
  /** Told as each stage begins (the command prints its progress lines). */
  onStage?: (stage: 'verify' | 'probe', set: BackupSet) => void;
  /** Asked after the lock, before the verification (the drill's "start a drill?"); false ends with 'cancelled'. */
  confirmBeforeVerify?: (set: BackupSet) => Promise<boolean>;
  /** A set that failed verification: 'continue' (the operator's recorded override) or 'stop' (ends with 'rejected'). Default: refuse with exit 3. */
  onRejected?: (report: VerifyReport, set: BackupSet) => 'continue' | 'stop';
}

/** The command line's prepare: pick -> lock -> verify -> probe -> preflight -> plan. */
export async function prepare(session: Session, o: PrepareOptions): Promise<Prepared> {
  const signal = o.signals?.cancel ?? o.signal;
  /** A signal before the run (session/signals.ts) cancels at the stage it arrives in, whatever that stage made of the abort. */
  const stage = async <T>(during: string, work: () => Promise<T>): Promise<T> => {
    o.signals?.throwIfCancelled(during);
    let result: T;
    try {
      result = await work();
    } catch (error) {
      o.signals?.throwIfCancelled(during);
      throw error;
    }
    o.signals?.throwIfCancelled(during);
    return result;
  };
  await stage('the checks before the restore', () => session.checkEvidence());
  const set = await stage('the choice of the backup set', () => (o.pickSet ? o.pickSet() : pickBackupSet(session.loaded, o.backup)));
  session.adoptStaged(set);
  await stage('the locking of the targets', () => session.lock(set));
  if (o.confirmBeforeVerify && !(await stage('the question', () => o.confirmBeforeVerify!(set)))) return { kind: 'cancelled', set };
  o.onStage?.('verify', set);
  const report = await stage(`the verification of backup set ${set.id}`, () =>
    session.verify(set, {
      depth: o.depth,
      ...(signal ? { signal } : {}),
      ...(o.onProgress ? { onProgress: o.onProgress } : {}),
    }),
  );
  if (!report.ok) {
    if (!o.onRejected) throw verifyRejected(report, set.id, session.loaded.file, set);
    if (o.onRejected(report, set) === 'stop') return { kind: 'rejected', set, report };
  }
  o.onStage?.('probe', set);
  const facts = await stage('the probing of the targets', () => session.probe(set, report, signal ? { signal } : {}));
  return { kind: 'planned', set, report, plan: session.plan({ set, facts, verify: report }) };
}
