/**
 * What each interrupting signal means, as pure logic (the process listeners are session/signals.ts'):
 *
 * - SIGINT (Ctrl-C), SIGTERM and SIGHUP (the terminal or ssh session went away) are handled alike.
 * - Before anything is touched (verifying, probing, the confirmation): the first one cancels:
 *   the command stops, releases its locks and exits `cancelled` (0, as a cancel at the
 *   confirmation: nothing touched; exit-codes.ts); 130 only ever means a run was rolled back.
 * - During a run: the first stops the running command and rolls back (exit 130 when the rollback
 *   completes). A second within 3 s of the first is absorbed (a reflexive double Ctrl-C must not
 *   abandon the rollback), with a line saying what a further one costs; a further one (or a second
 *   after 3 s) stops waiting: the rollback is abandoned and the exact state is reported (exit 5).
 * - SIGHUP: roll back as for SIGTERM. Nobody is watching the run any more, so it is not continued
 *   to its end; writes to the terminal that went away are ignored, the run's evidence has
 *   everything. To survive a dropped session, run it in tmux or screen.
 */

export const DOUBLE_PRESS_MS = 3000;

export type InterruptDecision = 'rollback' | 'absorbed' | 'stop-waiting' | 'ignored';

export interface InterruptTracker {
  /** What this signal does now. */
  next(signal: NodeJS.Signals, at?: number): { decision: InterruptDecision; line: string };
  readonly count: number;
}

export function interruptTracker(now: () => number = Date.now): InterruptTracker {
  let first: number | undefined;
  let count = 0;
  let stopped = false;
  return {
    get count() {
      return count;
    },
    next(signal, at = now()) {
      count++;
      const name = signal === 'SIGINT' ? 'Ctrl-C' : signal;
      if (first === undefined) {
        first = at;
        return {
          decision: 'rollback',
          line: `\n${name} received: stopping the running command and rolling back. Press Ctrl-C again (after ${DOUBLE_PRESS_MS / 1000} s) only to stop waiting for the rollback.`,
        };
      }
      if (stopped) return { decision: 'ignored', line: `\n${name} received again: already reporting the state as it is.` };
      if (count === 2 && at - first < DOUBLE_PRESS_MS) {
        return {
          decision: 'absorbed',
          line: `\n${name} received again within ${DOUBLE_PRESS_MS / 1000} s: ignored, the rollback goes on. One more stops waiting: the rollback is abandoned where it is and the targets are left as they are then (manual steps, exit 5).`,
        };
      }
      stopped = true;
      return { decision: 'stop-waiting', line: `\n${name} received again: no longer waiting for the rollback; reporting the exact state.` };
    },
  };
}

/** After SIGHUP the terminal is gone: writing to it raises EIO/EPIPE, which must not end the rollback. */
export function ignoreDeadTerminal(): void {
  for (const stream of [process.stdout, process.stderr]) {
    if (stream.listenerCount('error') === 0) stream.on('error', () => undefined);
  }
}
