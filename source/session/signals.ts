import { RestoreAssistantError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { deferSignalsToOwner } from '../sandbox/exit-guard.js';
import { ignoreDeadTerminal, interruptTracker } from './interrupts.js';

/**
 * The one owner of process signals for restore, drill, recover, guide and demo, from the first line
 * of each command (what each signal means: session/interrupts.ts). SIGINT, SIGTERM and SIGHUP go
 * to the command's owner (listr2's own handler is off; see engine/run.ts), and the sandbox's exit
 * guard leaves them to it (`deferSignalsToOwner`), so a first Ctrl-C in a drill stops the engine
 * while its scratch services still run; the drill removes them once the engine has finished. The
 * exit guard keeps the process-'exit' net.
 *
 * Owners stack: a command run inside another (demo runs restore or the guide) takes the signals
 * while it runs and hands them back when it is done; only the innermost owner hears a signal.
 *
 * Process signals are process state: this is the one module that holds some (one listener per
 * signal, installed while there is an owner).
 */

export const SESSION_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

type Handler = (signal: NodeJS.Signals) => void;

const owners: Handler[] = [];
let undefer: (() => void) | undefined;

function dispatch(signal: NodeJS.Signals): void {
  // The terminal (or the ssh session) went away: writing to it raises EIO/EPIPE, which must not end a rollback.
  if (signal === 'SIGHUP') ignoreDeadTerminal();
  owners.at(-1)?.(signal);
}

/** Take SIGINT/SIGTERM/SIGHUP: `onSignal` is called for each one delivered while this is the innermost owner. Returns the release. */
export function ownProcessSignals(onSignal: Handler): () => void {
  const handler: Handler = (signal) => onSignal(signal);
  if (owners.length === 0) {
    for (const s of SESSION_SIGNALS) process.on(s, dispatch);
    undefer = deferSignalsToOwner(SESSION_SIGNALS);
  }
  owners.push(handler);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    const i = owners.lastIndexOf(handler);
    if (i >= 0) owners.splice(i, 1);
    if (owners.length === 0) {
      for (const s of SESSION_SIGNALS) process.off(s, dispatch);
      undefer?.();
      undefer = undefined;
    }
  };
}

export interface RunSignals {
  /** Aborted by the first signal: the engine stops the running command and rolls back (a drill: discards). */
  signal: AbortSignal;
  /** Aborted when the operator stops waiting (a further signal; see interrupts.ts): report the exact state. */
  stopSignal: AbortSignal;
  /** The signals delivered during the run, in order (none: the run was not interrupted). */
  readonly received: readonly NodeJS.Signals[];
  dispose(): void;
}

/** What a signal's name reads as in a line for the operator. */
export function signalName(signal: NodeJS.Signals): string {
  return signal === 'SIGINT' ? 'Ctrl-C' : signal;
}

/** The error a command ends with when a signal cancelled it before anything was touched (exit `cancelled`). */
export function cancelledBySignal(signal: NodeJS.Signals, during: string, again: string): RestoreAssistantError {
  return new RestoreAssistantError(
    `${signalName(signal)} received during ${during}: cancelled before anything was touched.`,
    ExitCode.cancelled,
    {
      untouched: 'Nothing was touched; the locks it took are released.',
      next: `Run it again when ready: ${again}`,
    },
  );
}

/**
 * A command's signals, from its first line. Before the run (verify, probe, the confirmation) the
 * first signal aborts `cancel`: the command stops what it is doing, releases its locks and ends
 * with `cancelledBySignal` (exit `cancelled`). `startRun()` switches to the run's two stages
 * (interrupts.ts): the first rolls back, a second within 3 s is absorbed with a line, a further one
 * stops waiting. Once the run has ended (its `dispose()`), a signal only says the command is
 * finishing (releasing its locks, printing the summary): the run's outcome stands.
 */
export interface CommandSignals {
  /** Aborted by the first signal before the run; its reason is the signal's name. */
  readonly cancel: AbortSignal;
  /** The signal that cancelled, if one did. */
  readonly cancelledBy: NodeJS.Signals | undefined;
  /** Throws `cancelledBySignal` when a signal has cancelled (between stages that take no AbortSignal). */
  throwIfCancelled(during: string): void;
  /** A Ctrl-C typed at a prompt (readline in raw mode reads it as a key, not as a signal): the same as SIGINT. */
  deliver(signal: NodeJS.Signals): void;
  startRun(): RunSignals;
  /** The command's work is done (demo: after its restore): a signal from here only says it is finishing up. */
  finishing(): void;
  dispose(): void;
}

export interface CommandSignalOptions {
  /** Where the lines go (stderr). */
  notify: (line: string) => void;
  /** What a cancel says it stops (e.g. "the restore"). */
  what: string;
  /** The command to run again (pasteable), for the cancel's "Next:". */
  again: string;
  /** What is left to do once the work is done (default: releasing the locks, writing the summary). */
  finishing?: string;
}

export function ownCommandSignals(o: CommandSignalOptions): CommandSignals {
  const cancel = new AbortController();
  let cancelledBy: NodeJS.Signals | undefined;
  let ended = false;
  let run:
    { abort: AbortController; stop: AbortController; tracker: ReturnType<typeof interruptTracker>; received: NodeJS.Signals[] } | undefined;

  const onSignal = (sig: NodeJS.Signals): void => {
    if (run) {
      run.received.push(sig);
      const { decision, line } = run.tracker.next(sig);
      o.notify(line);
      if (decision === 'rollback') run.abort.abort(new Error(sig));
      else if (decision === 'stop-waiting') run.stop.abort(new Error(sig));
      return;
    }
    if (ended) {
      o.notify(
        `\n${signalName(sig)} received: ${o.what} has done its work; finishing up (${o.finishing ?? 'releasing the locks, writing the summary'}).`,
      );
      return;
    }
    if (!cancel.signal.aborted) {
      cancelledBy = sig;
      o.notify(`\n${signalName(sig)} received: cancelling ${o.what}; nothing has been touched. Releasing the locks...`);
      cancel.abort(new Error(sig));
      return;
    }
    o.notify(`\n${signalName(sig)} received again: already cancelling (nothing has been touched).`);
  };
  const release = ownProcessSignals(onSignal);

  return {
    cancel: cancel.signal,
    get cancelledBy() {
      return cancelledBy;
    },
    throwIfCancelled(during) {
      if (cancelledBy) throw cancelledBySignal(cancelledBy, during, o.again);
    },
    deliver: onSignal,
    finishing() {
      run = undefined;
      ended = true;
    },
    startRun() {
      const abort = new AbortController();
      const stop = new AbortController();
      const current = { abort, stop, tracker: interruptTracker(), received: [] as NodeJS.Signals[] };
      run = current;
      return {
        signal: abort.signal,
        stopSignal: stop.signal,
        get received() {
          return current.received;
        },
        dispose: () => {
          if (run !== current) return;
          run = undefined;
          ended = true;
        },
      };
    },
    dispose: release,
  };
}
