import { ExitCode } from './exit-codes.js';
import { heldLocks, restoresInFlight, type HeldLock, type RestoreInFlight } from './state/holds.js';
import { raCommand } from './text/next.js';
import { sanitizeText } from './text/sanitize.js';
import { shellJoin } from './text/shell.js';

/**
 * The last resort: an error nothing handled (an uncaught exception, a rejected promise nobody
 * awaited) means a bug, and the process ends. Node's own default would print a stack and exit 1
 * (an exit code that means "restore failed and rolled back") without releasing the locks the
 * session holds, so the next run on those targets is refused with "a run that is gone left its
 * locks". Instead, once, synchronously:
 *
 * - say on stderr what happened and that it is a bug (the error and its stack, control
 *   characters escaped), and what state is left;
 * - when no restore is in flight (verifying, probing, the plan, the confirmation, a drill whose
 *   scratch services the exit guard removes): release every lock this process holds, each only if
 *   it is still the file it wrote, and name any that could not be;
 * - when a restore is in flight (engine/run.ts, from `run-started` to its end): release nothing.
 *   The targets may be half restored; the locks keep other runs off them and the journal has
 *   every step: `recover` reads it, checks the targets live, takes the locks over (their owner,
 *   this process, is gone) and rolls back or finishes;
 * - exit `internal` (70).
 *
 * Never silent, never a second attempt: an error while handling the first still ends with 70.
 */

export type FatalOrigin = 'uncaughtException' | 'unhandledRejection';

export interface LastResortIo {
  write: (text: string) => void;
  exit: (code: number) => void;
  pid?: number;
}

const ORIGIN: Record<FatalOrigin, string> = {
  uncaughtException: 'an exception nothing caught',
  unhandledRejection: 'a rejected promise nothing awaited',
};

function describeError(error: unknown): { message: string; stack: string[] } {
  if (error instanceof Error) {
    const lines = (error.stack ?? '').split('\n').slice(1, 16);
    return { message: `${error.name}: ${error.message}`, stack: lines.map((l) => `    ${sanitizeText(l.trim(), 300)}`) };
  }
  let text: string;
  try {
    text = typeof error === 'string' ? error : (JSON.stringify(error) ?? String(error));
  } catch {
    text = String(error);
  }
  return { message: text, stack: [] };
}

function lockLine(l: HeldLock): string {
  return `${sanitizeText(l.key, 200)} (${sanitizeText(l.file, 300)})`;
}

/** What the process leaves and what to do next: the lines after the error (pure over the holds; releases locks when allowed). */
export function settleHolds(locks: readonly HeldLock[], runs: readonly RestoreInFlight[], pid: number): { lines: string[]; next: string } {
  if (runs.length > 0) {
    const run = runs[0]!;
    const recover = raCommand('recover', '--recipe', run.recipeFile);
    const which = runs.map((r) => `run ${sanitizeText(r.runId, 120)} of ${sanitizeText(r.recipe, 120)}`).join(', ');
    const lines = [
      `A restore was in flight (${which}): the targets may be half restored. Nothing was released on purpose:`,
      locks.length > 0
        ? `  the ${locks.length === 1 ? 'lock stays' : `${locks.length} locks stay`} (${locks.map(lockLine).join('; ')}), so no other run starts on these targets;`
        : '  (this process held no lock file);',
      '  the restore journal has every step the run began, and its undo.',
    ];
    return {
      lines,
      next: `\`${recover}\` shows what the run left (checked live), takes over the locks of this process (pid ${pid}, now gone) and rolls the restore back (--rollback) or finishes it (--finish).`,
    };
  }
  if (locks.length === 0) {
    return { lines: ['No restore was in flight and this process held no lock: nothing is left behind.'], next: 'Run the command again.' };
  }
  const kept: Array<{ lock: HeldLock; why: string }> = [];
  const replaced: Array<{ lock: HeldLock; why: string }> = [];
  for (const lock of locks) {
    let why: string | { replaced: string } | undefined;
    try {
      why = lock.releaseSync();
    } catch (error) {
      why = `its release failed (${error instanceof Error ? error.message : String(error)})`;
    }
    if (typeof why === 'string') kept.push({ lock, why });
    else if (why) replaced.push({ lock, why: why.replaced });
  }
  const released = locks.length - kept.length - replaced.length;
  const notOurs = replaced.map((r) => `  ${lockLine(r.lock)}: ${sanitizeText(r.why, 200)}`);
  if (kept.length === 0 && replaced.length === 0) {
    return {
      lines: [
        `No restore was in flight (nothing was touched): the ${released === 1 ? 'lock' : `${released} locks`} this process held ${released === 1 ? 'is' : 'are'} released.`,
      ],
      next: 'Run the command again.',
    };
  }
  const head = `No restore was in flight (nothing was touched)${released > 0 ? `; ${released} of the locks this process held ${released === 1 ? 'is' : 'are'} released` : ''}`;
  if (kept.length === 0) {
    return {
      lines: [`${head}; ${replaced.length === 1 ? 'one was' : `${replaced.length} were`} replaced by someone else since:`, ...notOurs],
      next: 'Another process wrote a lock there: check who (the file says), then run the command again.',
    };
  }
  return {
    lines: [
      `${head}. Lock files left:`,
      ...kept.map((k) => `  ${lockLine(k.lock)}: ${sanitizeText(k.why, 200)}`),
      ...(replaced.length ? [`Replaced by someone else since (not ours, left alone):`, ...notOurs] : []),
    ],
    next: `\`${raCommand('recover')}\` clears stale locks of processes that are gone (this one, pid ${pid}, is ending) once it has checked what they guarded; or, knowing nothing runs on those targets: ${shellJoin(['rm', '--', ...kept.map((k) => k.lock.file)])}`,
  };
}

/** Say what happened and what is left, release what may be released, and exit `internal`. */
export function lastResort(error: unknown, origin: FatalOrigin, io: LastResortIo): void {
  try {
    const { message, stack } = describeError(error);
    const pid = io.pid ?? process.pid;
    const { lines, next } = settleHolds(heldLocks(), restoresInFlight(), pid);
    io.write(
      [
        '',
        `Internal error: restore-assistant stopped on ${ORIGIN[origin]}: ${sanitizeText(message, 1000)}`,
        'This is a bug in restore-assistant: please report it with these lines.',
        ...stack,
        ...lines,
        `Next: ${next}`,
        '',
      ].join('\n'),
    );
  } catch {
    try {
      io.write(
        '\nInternal error: restore-assistant stopped on an error nothing handled (and could not describe it). Run `restore-assistant recover` to see what is left.\n',
      );
    } catch {
      // stderr is gone too: the exit code still says it.
    }
  } finally {
    io.exit(ExitCode.internal);
  }
}

/** Install the last resort for this process (bin.ts, before any command). Returns the uninstall. */
export function installLastResort(io: LastResortIo = { write: (t) => process.stderr.write(t), exit: (c) => process.exit(c) }): () => void {
  let fired = false;
  const on = (origin: FatalOrigin) => (error: unknown) => {
    if (fired) return; // the first one is being reported and the process is exiting
    fired = true;
    lastResort(error, origin, io);
  };
  const onException = on('uncaughtException');
  const onRejection = on('unhandledRejection');
  process.on('uncaughtException', onException);
  process.on('unhandledRejection', onRejection);
  return () => {
    process.off('uncaughtException', onException);
    process.off('unhandledRejection', onRejection);
  };
}
