/**
 * Work a command leaves for after its outcome is printed: the evidence upload (writer.ts
 * uploadOnClose). The operator reads the closing block and what the exit code means first; a
 * bucket that is down then adds its retries after them, with its own progress lines on stderr,
 * instead of before. The CLI (cli.tsx main) runs the queue once the command has returned or
 * failed, before the process exits; the exit code stays the command's. Nothing here imports
 * anything: the queue costs nothing to a command that never fills it.
 */

const queue: Array<() => Promise<void>> = [];

/** Runs `task` after the command's outcome is printed (in the order queued). */
export function afterOutcome(task: () => Promise<void>): void {
  queue.push(task);
}

/** Runs what was queued, one after the other; a task that fails is reported by itself (never thrown here). */
export async function runAfterOutcome(onError: (error: unknown) => void = () => undefined): Promise<void> {
  for (let task = queue.shift(); task; task = queue.shift()) {
    try {
      await task();
    } catch (error) {
      onError(error);
    }
  }
}

/** How many tasks are waiting (tests). */
export function pendingAfterOutcome(): number {
  return queue.length;
}
