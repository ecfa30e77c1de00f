import type { BackupSet, ComponentKind, VerifyReport } from '../catalog/types.js';
import type { EngineEventBody, EventBus, Outcome, RunKind } from '../engine/events.js';
import type { Plan, PlanOptions, TargetFacts } from '../plan/types.js';
import type { LoadedRecipe } from '../recipe/load.js';
import type { PitrTarget } from '../pitr/target.js';

/**
 * Everything the guided interface needs from the outside world, behind one interface, so that every
 * screen renders real progress in the product and fake progress in tests. Screens never spawn a
 * process; only the implementation of this interface (source/session/guide-deps.ts, on top of the
 * restore session) touches systems.
 */

export type GuideMode = 'restore' | 'drill';

/** What a run ended as: the body of the engine's `run-finished` event (engine/run.ts RunSummary). */
export type RunSummary = Omit<Extract<EngineEventBody, { type: 'run-finished' }>, 'type'>;

/** One past run of a recipe, as the history screen and the recipe screen show it. */
export interface GuideHistoryEntry {
  runId: string;
  kind: RunKind;
  /** ISO-8601 UTC. */
  startedAt: string;
  /** The recorded outcome; 'interrupted' also for runs killed mid-way (no seal). */
  outcome: Outcome | 'killed';
  backupId?: string;
  rtoMs?: number;
  rpoMs?: number;
  /** Wall time of the whole run (run-started to run-finished). */
  durationMs?: number;
  dir?: string;
}

/** Drill RTOs over time (evidence/history.ts rtoTrend): what the history screen shows under the runs. */
export interface GuideRtoTrend {
  /** Successful drills with a measured RTO, oldest first. */
  points: Array<{ runId: string; at: string; rtoMs: number }>;
  /** The latest drill against the average of up to three before it. */
  direction: 'better' | 'worse' | 'steady' | 'n/a';
  changePct: number | null;
}

/** A recipe as the first screen lists it (invalid recipes are listed with their error). */
export interface RecipeChoice {
  name: string;
  file: string;
  loaded?: LoadedRecipe;
  /** Why the recipe cannot be used (first problem lines). */
  error?: string;
  /** The newest restore or drill of this recipe, when history has one. */
  lastRun?: GuideHistoryEntry;
}

/** Where a listed set lives: on local disk, only in the off-site bucket, or both (same id). */
export type SetWhere = 'local' | 'off-site' | 'both';

/**
 * A base backup of a physical-layout recipe (base backup + WAL archive), as the backup and target
 * screens show it: its restorable window, and what cuts it short (a gap in the WAL, named).
 */
export interface PitrBaseView {
  startLsn: string;
  endLsn?: string;
  /** When the base was taken (pg_basebackup start), ISO. */
  startTime: string;
  /** The restorable window (absent: none): from the end of the base to the last archived commit, ISO. */
  window?: { from: string; to: string; lastSegment: string };
  /** The first WAL segment the base needs. */
  walFirst?: string;
  /** Why there is no window, or where a gap ends it ("segment X missing"). */
  problems: string[];
}

/** What the backup list knows beyond the sets: where each lives, and the windows of base backups. */
export interface SetListing {
  sets: BackupSet[];
  warnings: string[];
  /** Set id → where it lives (only when the recipe has an off-site source). */
  where?: Record<string, SetWhere>;
  /** Set id → its base backup's window (physical layout only). */
  pitr?: Record<string, PitrBaseView>;
  /** Where the off-site sets live (s3://bucket/prefix), for the screen. */
  offsiteUrl?: string;
}

/** A point-in-time restore prepared by the deps: verified base + WAL, preflight passed, the cluster plan. */
export interface PitrPreparedView {
  plan: Plan;
  report: VerifyReport;
  target: PitrTarget;
  /** The data directory the plan replaces (real path) and the server it runs as (host:port). */
  dataDir: string;
  server: string;
  /** The WAL the verification read (segments, bytes). */
  segments: number;
  walBytes: number;
}

export interface VerifyProgress {
  /** A line of the off-site staging (download with byte progress and ETA, checks, decryption). */
  staging?: string;
  component?: ComponentKind;
  /** What is being checked: "sha256", "gzip stream", "pg_restore --list". */
  check?: string;
  done?: number;
  total?: number;
}

export interface PlanRequest {
  recipe: LoadedRecipe;
  set: BackupSet;
  facts: TargetFacts;
  mode: GuideMode;
  missingRoles: PlanOptions['missingRoles'];
  overrideRejected?: string;
  /** The verification the set passed (recorded in the plan and evidence). */
  verify?: VerifyReport;
}

export interface RunResult {
  summary: RunSummary;
  /** The run's evidence directory (events.jsonl, report.md), when evidence was written. */
  evidenceDir?: string;
  runId?: string;
  /** What became of a staged off-site copy ("Staged copy removed (…)"), for the summary. */
  notes?: string[];
}

/** Health checks failed: which ones, and what each target holds now (the engine's state lines). */
export interface UnhealthyQuestion {
  checks: string[];
  state: string[];
}

/** The operator's answer to an UnhealthyQuestion (engine/run.ts UnhealthyDecision). */
export type UnhealthyDecision = 'keep' | 'rollback';

export interface GuideDeps {
  /**
   * Recipes found in the search directories (invalid ones included, with their error), plus `extra`
   * (a recipe given by path), each with its last restore or drill when history has one.
   */
  listRecipes(extra: LoadedRecipe[]): Promise<RecipeChoice[]>;
  /** The recipe's backup sets, newest first, and catalog warnings (off-site sets and base backups' windows too). */
  listSets(recipe: LoadedRecipe): Promise<SetListing>;
  /**
   * Physical layout: lock, verify the base and its WAL up to `target`, preflight, and build the
   * cluster-level plan (read-only; nothing is touched). Refuses (exit 3 / 9) with what to do.
   */
  preparePitr?(
    recipe: LoadedRecipe,
    set: BackupSet,
    target: PitrTarget,
    options: { onProgress: (p: VerifyProgress) => void; signal: AbortSignal },
  ): Promise<PitrPreparedView>;
  /** Lock the targets (exit 8 when another run holds one, before anything is read), then verify the set. */
  verify(
    recipe: LoadedRecipe,
    set: BackupSet,
    options: { depth: 'quick' | 'deep'; onProgress: (p: VerifyProgress) => void; signal: AbortSignal; mode: GuideMode },
  ): Promise<VerifyReport>;
  /** Read-only facts about the targets (server versions, missing roles, Redis dir). */
  probe(
    recipe: LoadedRecipe,
    set: BackupSet,
    verify: VerifyReport | undefined,
    options: { signal: AbortSignal; mode: GuideMode },
  ): Promise<TargetFacts>;
  /** Pure: the plan the engine will run. */
  buildPlan(request: PlanRequest): Plan;
  /**
   * Run a confirmed plan. The engine emits its events on `bus`; `signal` aborts it (the engine
   * rolls back); `stopSignal` makes it stop waiting, also for the rollback, and report the exact state.
   * `onUnhealthy`, when given, is the engine's question after failed health checks (keep or roll
   * back); without it `rollbackOnUnhealthy` decides.
   * `plan` is the very object `buildPlan` returned (the deps know their plans by identity);
   * `rollbackOnUnhealthy` is the operator's choice on the plan screen, applied by the deps to the
   * plan they run and record.
   */
  runPlan(
    plan: Plan,
    options: {
      bus: EventBus;
      signal: AbortSignal;
      stopSignal: AbortSignal;
      confirmedAt: string;
      rollbackOnUnhealthy: boolean;
      onUnhealthy?: (failed: UnhealthyQuestion) => Promise<UnhealthyDecision>;
    },
  ): Promise<RunResult>;
  /** Past runs of a recipe, newest first (empty when there is no history yet). */
  history(recipe: LoadedRecipe): Promise<GuideHistoryEntry[]>;
  /** The recipe's drill RTO trend (the same as `restore-assistant history` shows). */
  rtoTrend(recipe: LoadedRecipe): Promise<GuideRtoTrend>;
  /** A past run's report (report.md, rebuilt from its events), as lines; refused when the run has no directory. */
  runReport(entry: GuideHistoryEntry): Promise<string[]>;
  clock(): Date;
}
