import type { Redactor } from '../exec/redact.js';
import type { CheckRunner } from './actions.js';
import type { EventBus } from './events.js';
import type { LockHandle } from './lock.js';

export type RendererName = 'default' | 'simple' | 'silent' | 'test';

/** What to do with a restore whose health checks failed. */
export type UnhealthyDecision = 'keep' | 'rollback';

export interface RunPlanOptions {
  bus: EventBus;
  redact: Redactor;
  /** The operator's environment (secrets named by `envFrom` are read here). Default: process.env. */
  env?: NodeJS.ProcessEnv;
  /** First SIGINT/SIGTERM: stop the running command, roll back, outcome 'interrupted' (130). */
  signal?: AbortSignal;
  /** Second signal: stop waiting (also for the rollback) and report the exact state. */
  stopSignal?: AbortSignal;
  renderer: RendererName;
  /** Where the plain ('simple') renderer writes; default stderr. */
  write?: (line: string) => void;
  color?: boolean;
  runId: string;
  kind: 'restore' | 'drill';
  /** When the operator confirmed: the RTO clock starts here. */
  confirmedAt?: Date;
  operator?: string;
  /** Re-checks just before anything is touched; non-empty problems refuse the run (exit 9). */
  preflight?: () => Promise<string[]>;
  lockDir?: string;
  /** Locks the caller already holds (the session takes them before it verifies and probes); the engine does not take or release them, and takes any of `plan.lockKeys` it is not given. */
  heldLocks?: LockHandle;
  /** Health-check runner (default: source/checks/index.ts `runCheck`). */
  runCheck?: CheckRunner;
  /** Extra context every check receives (e.g. `recipe`). */
  checkContext?: Record<string, unknown>;
  /** Run facts already recorded (recover --finish: the dead run's, from its journal), e.g. the OID of the database it created. */
  facts?: ReadonlyMap<string, string>;
  /** Minimum time between progress events (default 250 ms). */
  progressIntervalMs?: number;
  /** Called with each listr2 task's final title and state (tests). */
  onTaskStates?: (tasks: Array<{ title: string; state: string }>) => void;
  /**
   * Asked when health checks fail in a restore whose plan does not already say to roll back: keep
   * the restored state (exit 4) or roll back (exit 1). The engine itself never prompts; the guided
   * interface answers with the operator's keypress. `state` is what each target holds now. While
   * the question is open, `signal` still interrupts (rollback, exit 130); a rejected promise keeps
   * the restored state. The answer is recorded as an event; the RTO ends with the health checks,
   * before the question. Not asked for drills.
   */
  onUnhealthy?: (failed: { checks: string[]; state: string[] }) => Promise<UnhealthyDecision>;
  /**
   * What each target holds now, checked live (read-only). After an interrupt the summary's state
   * lines come from this, not from what the engine assumes its undos did (a stopped rollback's
   * services may be running, a half-done undo may have completed). A failing check keeps the
   * engine's lines and says so.
   */
  stateNow?: () => Promise<string[]>;
}

/** The options once runPlan has filled in its defaults (what the run's parts receive). */
export interface ExecuteOptions extends RunPlanOptions {
  env: NodeJS.ProcessEnv;
  runCheck: CheckRunner;
  /** Where the RTO clock starts (evidence/rto.ts `rtoClockStart`). */
  clockStart: Date;
  rpoMs: number | undefined;
}
