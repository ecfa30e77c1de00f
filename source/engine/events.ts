import type { CriticalPath } from './critical-path.js';
import type { VerifyReport } from '../catalog/types.js';
import type { Redactor } from '../exec/redact.js';
import type { Plan, SafetyCopy } from '../plan/types.js';

/**
 * The one event stream. The engine (and verify, drills) emit these; evidence, the Ink view and
 * the plain renderer consume them. Every string in an event has passed redaction.
 * `ts` is ISO-8601 UTC; `t` is milliseconds since the run started (monotonic).
 */

/** `cleanup`: `safety-copies drop` (what it removed is evidence too). */
export type RunKind = 'restore' | 'drill' | 'verify' | 'cleanup';

export type Outcome =
  /** restored and every health check passed */
  | 'restored'
  /** restored, some health checks failed; restored state kept */
  | 'unhealthy'
  /** failed (or unhealthy with rollback asked) and rolled back completely */
  | 'rolled-back'
  /** failed and rollback did not complete */
  | 'rollback-incomplete'
  /** a drill that failed: scratch targets are discarded, nothing to roll back */
  | 'failed'
  /** interrupted by a signal and rolled back */
  | 'interrupted'
  /** a signal came after the confirmation but before the first step: nothing was touched (exit 0, as a cancel before the run) */
  | 'cancelled'
  /** refused before touching anything (preflight, lock, rejected set) */
  | 'refused'
  /** verify runs */
  | 'verified'
  /** cleanup runs (`safety-copies drop`): the chosen safety copies are gone */
  | 'dropped'
  | 'rejected';

export type EngineEventBody =
  | {
      type: 'run-started';
      runId: string;
      kind: RunKind;
      operator: string;
      host: string;
      toolVersion: string;
      recipe: { name: string; file: string; digest: string };
      backup: { id: string; time: string; location: string };
      plan?: Plan;
      /** When the operator confirmed (a restore's RTO starts here). */
      confirmedAt?: string;
      /** When the RTO clock started (source/evidence/rto.ts: a restore's confirmation, a drill's engine start). Absent in older evidence. */
      rtoFrom?: string;
    }
  | { type: 'step-started'; stepId: string; title: string }
  | { type: 'step-finished'; stepId: string; title: string; durationMs: number; detail?: string }
  | { type: 'step-skipped'; stepId: string; title: string; reason: string }
  | { type: 'step-failed'; stepId: string; title: string; durationMs: number; error: string }
  | { type: 'command-started'; stepId: string; commandId: string; argv: string[]; runsIn?: string }
  | { type: 'command-output'; stepId: string; commandId: string; stream: 'stdout' | 'stderr'; line: string }
  | {
      type: 'command-finished';
      stepId: string;
      commandId: string;
      argv: string[];
      exitCode: number | null;
      signal: string | null;
      durationMs: number;
      timedOut: boolean;
      stdoutTail: string[];
      stderrTail: string[];
      /**
       * The status is an expected one, not a failure: an accepted exit code, or a poll of a wait
       * (a status command exiting 3 for "stopped" while waiting for a service to stop). Renderers
       * report a command as failed only when this is false. Absent in evidence written before it.
       */
      ok?: boolean;
    }
  | { type: 'progress'; stepId: string; unit: 'bytes' | 'items'; done: number; total?: number; etaMs?: number }
  | {
      type: 'log';
      stepId?: string;
      level: 'info' | 'warn' | 'error';
      message: string;
      consumed?: ConsumedFile;
      /** A run fact recorded (PlannedCommand.record): the new database's OID. */ fact?: { name: string; value: string };
    }
  | {
      type: 'verification';
      setId: string;
      ok: boolean;
      depth: 'quick' | 'deep';
      problems: string[];
      checksums: Array<{ path: string; sha256?: string; status: string }>;
    }
  | { type: 'safety-copy'; stepId: string; copy: SafetyCopy }
  | { type: 'health-check'; name: string; ok: boolean; attempts: number; durationMs: number; detail: string }
  | { type: 'rollback-started'; reason: string }
  | { type: 'rollback-step'; stepId: string; title: string; ok: boolean; error?: string }
  | { type: 'rollback-finished'; complete: boolean; manualSteps: string[] }
  | {
      type: 'run-finished';
      outcome: Outcome;
      exitCode: number;
      /** Confirm to healthy, in ms (restores and drills that reached health checks). */
      rtoMs?: number;
      /** Backup age at restore time, in ms. */
      rpoMs?: number;
      safetyCopies: SafetyCopy[];
      /** Exactly what state each target is in, one line each. */
      state: string[];
      nextSteps: string[];
      /** Why the run failed or was refused (redacted), when it did. */
      error?: string;
      /** Names of the health checks that failed. */
      failedChecks?: string[];
      /** Commands left to run by hand when the rollback did not complete, in order. */
      manualSteps?: string[];
      /** The steps that made the RTO (engine/critical-path.ts), ms from the RTO clock start; restored and unhealthy runs. */
      criticalPath?: CriticalPath;
    };

/**
 * What a step actually read from a backup file (on the `log` event that reports it): the digest of
 * the bytes consumed (`how: 'hashed'`: hashed while streaming/copying/extracting), or, for a file a
 * tool opens itself (pg_restore, docker cp), the verified digest of a file whose identity
 * (dev, inode, size, mtime, ctime) was unchanged before and after the step (`how: 'identity'`).
 */
export interface ConsumedFile {
  path: string;
  how: 'hashed' | 'identity';
  /** Absent for `identity` when verification computed no digest. */
  sha256?: string;
  bytes?: number;
  /** The digest verification computed, when it did. */
  verifiedSha256?: string;
  /** sha256 === verifiedSha256 (absent when nothing was verified to compare with). */
  match?: boolean;
}

export type EngineEvent = EngineEventBody & { ts: string; t: number };

export type EventListener = (event: EngineEvent) => void;

/** Fan-out of events with timestamps; listeners never throw into the engine. */
export class EventBus {
  private readonly listeners = new Set<EventListener>();
  private readonly started = performance.now();
  readonly history: EngineEvent[] = [];

  constructor(private readonly keepHistory = true) {}

  on(listener: EventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(body: EngineEventBody): EngineEvent {
    const event = { ...body, ts: new Date().toISOString(), t: Math.round(performance.now() - this.started) } as EngineEvent;
    if (this.keepHistory) this.history.push(event);
    for (const l of this.listeners) {
      try {
        l(event);
      } catch {
        // A broken view must not break a restore.
      }
    }
    return event;
  }
}

/** The `verification` event for a verify report: what evidence records about the set's integrity. */
export function verificationEvent(report: VerifyReport, redact: Redactor): Extract<EngineEventBody, { type: 'verification' }> {
  return {
    type: 'verification',
    setId: report.setId,
    ok: report.ok,
    depth: report.depth,
    problems: report.problems.map((p) => redact(`${p.component ? `${p.component}: ` : ''}${p.message}`)),
    checksums: report.components.map((x) => ({ path: x.path, ...(x.sha256 ? { sha256: x.sha256 } : {}), status: x.ok ? 'ok' : 'failed' })),
  };
}
