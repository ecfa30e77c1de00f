/**
 * What this process holds that must not outlive it unsaid: the lock files it took (engine/lock.ts
 * registers each one it creates, with a synchronous release) and the restore runs in flight
 * (engine/run.ts, from `run-started` to the run's end). Read by the last-resort handler
 * (source/last-resort.ts) when the process is about to die of a bug: it releases the locks when
 * no restore is in flight, and keeps them for `recover` when one is.
 *
 * Process state on purpose, and a leaf (no imports): bin.ts loads it before any command, without
 * the lock module or the engine.
 */

export interface HeldLock {
  readonly key: string;
  readonly file: string;
  /**
   * Remove the lock file now, synchronously, only if it is still the one this process wrote.
   * Returns undefined when it was removed (or nothing is there any more), `{ replaced }` when
   * another file is at its path now (not ours: left alone), else why it was kept.
   */
  releaseSync(): string | { replaced: string } | undefined;
}

export interface RestoreInFlight {
  readonly runId: string;
  /** The recipe's name and file (the file names it in a pasteable `recover --recipe`). */
  readonly recipe: string;
  readonly recipeFile: string;
}

const locks = new Map<string, HeldLock>();
const runs = new Set<RestoreInFlight>();

/** This process holds `lock` (by its file); returns the function that forgets it (released, or no longer ours). */
export function holdLock(lock: HeldLock): () => void {
  locks.set(lock.file, lock);
  return () => {
    if (locks.get(lock.file) === lock) locks.delete(lock.file);
  };
}

/** The lock files this process holds now. */
export function heldLocks(): HeldLock[] {
  return [...locks.values()];
}

/** A restore run has started (its journal is open): until the returned function is called, its locks must stay if the process dies. */
export function restoreInFlight(run: RestoreInFlight): () => void {
  const entry = { ...run };
  runs.add(entry);
  return () => {
    runs.delete(entry);
  };
}

export function restoresInFlight(): RestoreInFlight[] {
  return [...runs];
}
