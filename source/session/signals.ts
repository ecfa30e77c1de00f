import { deferSignalsToOwner } from '../sandbox/exit-guard.js';

/**
 * The one owner of process signals while a restore, a drill or the guide runs. SIGINT and SIGTERM
 * go to the session (listr2's own handler is off; see engine/run.ts), and the sandbox's exit guard
 * leaves them to it (`deferSignalsToOwner`), so a first Ctrl-C in a drill stops the engine while
 * its scratch services still run; the drill removes them once the engine has finished. The exit
 * guard keeps the process-'exit' net and SIGHUP.
 *
 * Process signals are process state: this is the one module that holds some (a listener per owner,
 * removed by the returned function).
 */

export const SESSION_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];

/** Take SIGINT/SIGTERM for the life of a session: `onSignal` is called for each one delivered. Returns the release. */
export function ownProcessSignals(onSignal: (signal: NodeJS.Signals) => void): () => void {
  const handler = (signal: NodeJS.Signals): void => onSignal(signal);
  for (const s of SESSION_SIGNALS) process.on(s, handler);
  const undefer = deferSignalsToOwner(SESSION_SIGNALS);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    for (const s of SESSION_SIGNALS) process.off(s, handler);
    undefer();
  };
}

export interface RunSignals {
  /** Aborted by the first signal: the engine stops the running command and rolls back (a drill: discards). */
  signal: AbortSignal;
  /** Aborted by the second: stop waiting (also for the rollback) and report the exact state. */
  stopSignal: AbortSignal;
  dispose(): void;
}

/** The command line's two-stage interrupt: the first signal aborts the run (it rolls back); a second stops waiting. */
export function ownRunSignals(notify: (line: string) => void): RunSignals {
  const abort = new AbortController();
  const stop = new AbortController();
  const dispose = ownProcessSignals((sig) => {
    if (!abort.signal.aborted) {
      notify(
        `\n${sig} received: stopping the running command and rolling back. Send it again to stop waiting (the state will be reported as it is).`,
      );
      abort.abort(new Error(sig));
    } else if (!stop.signal.aborted) {
      notify(`\n${sig} received again: no longer waiting; reporting the exact state.`);
      stop.abort(new Error(sig));
    }
  });
  return { signal: abort.signal, stopSignal: stop.signal, dispose };
}
