import type { Check } from '../recipe/schema.js';
import type { ComponentFormat, ComponentKind, Layout } from '../catalog/types.js';

/**
 * A plan is pure data: everything a restore will do, decided before anything is touched.
 * `plan` prints it, the confirm screen shows it, evidence records it, the engine runs it.
 */

export type Phase = 'preflight' | 'quiesce' | 'postgres' | 'redis' | 'prometheus' | 'start' | 'health' | 'cleanup';

/** Lanes let independent steps run concurrently (Redis and Prometheus while PostgreSQL restores). */
export type Lane = 'main' | 'postgres' | 'redis' | 'prometheus';

/** Maps a child-process env var to the operator's env var that holds the secret (names only, never values). */
export type EnvFrom = Record<string, string>;

/** A command exactly as it will run (argv, after the exec context wrapped it). */
export interface PlannedCommand {
  argv: string[];
  /** One line: what this command does. */
  purpose: string;
  /** Where it runs, e.g. "host" or "docker exec story-portal-postgres". */
  runsIn: string;
  /** Stream a file into stdin (decompressed with Node's gunzip when gunzip is set). */
  input?: { file: string; gunzip?: boolean; filter?: 'strip-ownership-and-acl' };
  /** Child env var name -> operator env var name holding the value. */
  envFrom?: EnvFrom;
  okExitCodes?: number[];
  timeoutSeconds?: number;
  /** How progress is measured for this command. */
  progress?: 'input-bytes' | 'pg-restore-items';
  /** Total items for pg-restore-items progress (TOC entries). */
  progressTotal?: number;
}

/** A non-command action the engine performs itself (still fully described here). */
export type PlannedAction =
  | ({ type: 'exec' } & PlannedCommand)
  | { type: 'wait-tcp'; host: string; port: number; timeoutSeconds: number; purpose: string }
  | { type: 'wait-http'; url: string; timeoutSeconds: number; purpose: string; expectStatus?: number }
  | { type: 'wait-command'; command: PlannedCommand; timeoutSeconds: number; untilExit: 'zero' | 'non-zero'; purpose: string }
  | { type: 'extract-tar'; archive: string; dest: string; purpose: string }
  | { type: 'move'; from: string; to: string; purpose: string; ifExists?: boolean }
  | { type: 'copy-file'; from: string; to: string; purpose: string }
  | { type: 'check'; check: Check; purpose: string }
  | { type: 'note'; purpose: string };

export interface SafetyCopy {
  component: ComponentKind | 'services';
  kind: 'rename' | 'dump' | 'move' | 'none';
  /** Where it is kept: a database name, a directory, a file. */
  location: string;
  description: string;
}

export interface PlanStep {
  id: string;
  /** Imperative title shown while planned/running: "Restore PostgreSQL database app". */
  title: string;
  /** Past-participle title once done: "PostgreSQL database app restored". */
  doneTitle: string;
  phase: Phase;
  lane: Lane;
  component?: ComponentKind | 'services';
  destructive: boolean;
  /** What this step destroys, in words (for the confirm screen). */
  destroys?: string;
  safetyCopy?: SafetyCopy;
  actions: PlannedAction[];
  /** How this step is undone, in reverse order of steps, on failure or interrupt. */
  undo?: { title: string; actions: PlannedAction[] };
  /** Step ids that must finish first. */
  dependsOn: string[];
}

export interface PlanBackup {
  id: string;
  time: string;
  layout: Layout;
  location: string;
  components: Array<{ kind: ComponentKind; format: ComponentFormat; path: string; size: number; sha256?: string }>;
}

/** Facts learned read-only from the running targets before planning (or taken from the recipe). */
export interface TargetFacts {
  postgres?: { serverVersion?: string; serverMajor?: number; clientMajor?: number; missingRoles?: string[]; databaseExists?: boolean };
  redis?: { dir: string; dbfilename: string; appendonly: boolean; appenddirname: string; version?: string; source: 'server' | 'recipe' };
  prometheus?: { ready?: boolean };
}

export interface PlanOptions {
  yes: boolean;
  rollbackOnUnhealthy: boolean;
  dropSafetyCopies: boolean;
  /** What to do with roles the dump references that the server lacks. */
  missingRoles: 'create' | 'skip-ownership' | 'fail';
  /** Components to restore (default: all the recipe and the set both have). */
  only?: ComponentKind[];
  parallel: boolean;
  jobs: number;
  /** Recorded when the operator chose a set that failed quick checks. */
  overrideRejected?: string;
}

export interface Plan {
  version: 1;
  mode: 'restore' | 'drill';
  createdAt: string;
  /** A short unique id, used for safety-copy names and the run directory. */
  stamp: string;
  recipe: { name: string; file: string; digest: string };
  backup: PlanBackup;
  /** Human descriptions of the targets: "PostgreSQL app on 127.0.0.1:5432 (host)". */
  targets: Partial<Record<ComponentKind, string>>;
  steps: PlanStep[];
  options: PlanOptions;
  facts: TargetFacts;
  warnings: string[];
  objectives: { rtoMinutes?: number; rpoMinutes?: number };
}
