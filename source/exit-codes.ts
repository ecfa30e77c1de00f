/**
 * Every exit code restore-assistant uses. The CLI entry point is the only place that sets the exit
 * code (bin.ts; and the last resort it installs, source/last-resort.ts, which calls process.exit
 * with `internal` when an error nothing handled ends the process); everything else throws a
 * RestoreAssistantError carrying one of these.
 */
export const ExitCode = {
  /** Success: restored and healthy, set verified, command succeeded. */
  ok: 0,
  /**
   * Cancelled by the operator before anything ran (q, Esc, a wrong confirm word, or Ctrl-C /
   * SIGINT before the first step): nothing was touched. The same value as `ok` (documented with
   * it); never `interrupted` (130), which means a run was interrupted and rolled back.
   */
  cancelled: 0,
  /** Restore failed and was rolled back; the targets are as they were before. */
  failedRolledBack: 1,
  /** Usage error, bad flag, or invalid recipe. Nothing was touched. */
  usage: 2,
  /** The backup set was rejected by verification. Nothing was touched. */
  backupRejected: 3,
  /** Restored, but health checks failed; the restored state was kept. */
  unhealthy: 4,
  /** Restore failed and the rollback did not complete: manual action is needed. */
  rollbackIncomplete: 5,
  /** Evidence of a run is intact but the run never sealed (it was interrupted). */
  evidenceUnsealed: 6,
  /** Evidence failed verification (edited, reordered, truncated; with --key, a seal not signed by that key). */
  evidenceTampered: 7,
  /** Another restore holds the lock on a target. Nothing was touched. */
  locked: 8,
  /** Preflight found a problem (tool missing, target unreachable, no disk). Nothing was touched. */
  preflightFailed: 9,
  /** `safety-copies drop`: a copy is not what its run recorded (another OID, inode or path), or no run recorded it: refused, nothing removed. */
  notOurs: 10,
  /** A bug in restore-assistant (an unexpected error). */
  internal: 70,
  /** Interrupted during a run (SIGINT, SIGTERM or SIGHUP: session/interrupts.ts) and rolled back. */
  interrupted: 130,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

export const exitCodeDocs: ReadonlyArray<readonly [ExitCodeValue, string]> = [
  [
    ExitCode.ok,
    'success: restored and healthy / set verified / command done / cancelled (by the operator or a signal) before anything was touched',
  ],
  [ExitCode.failedRolledBack, 'restore failed and was rolled back (targets as before)'],
  [ExitCode.usage, 'usage error or invalid recipe (nothing touched)'],
  [ExitCode.backupRejected, 'backup set rejected by verification (nothing touched)'],
  [ExitCode.unhealthy, 'restored, but health checks failed (restored state kept)'],
  [
    ExitCode.rollbackIncomplete,
    'restore failed and rollback is incomplete (manual action needed); recover: a stale lock kept because its run began a restore whose journal cannot be read',
  ],
  [ExitCode.evidenceUnsealed, 'evidence intact but the run was interrupted (no seal)'],
  [
    ExitCode.evidenceTampered,
    'evidence failed verification (edited, reordered or truncated; with --key: seal unsigned, signed by another key, or re-sealed)',
  ],
  [
    ExitCode.locked,
    'another restore holds the lock on a target, another drill holds its drill lock, or a run that is gone left the targets unfinished or its locks: run recover (nothing touched; refused before verifying)',
  ],
  [
    ExitCode.preflightFailed,
    'preflight failed: tools, reachability, disk, evidence this user cannot read (nothing touched); evidence upload/fetch: the bucket failed',
  ],
  [ExitCode.notOurs, 'safety-copies drop refused: the copy is not what its run recorded, or no run recorded it (nothing removed)'],
  [
    ExitCode.internal,
    'internal error (a bug): please report it with RESTORE_ASSISTANT_DEBUG=1 output; an error nothing handled says what it left (locks released, or kept during a restore: run recover)',
  ],
  [ExitCode.interrupted, 'interrupted by SIGINT, SIGTERM or SIGHUP during a run and rolled back'],
];
