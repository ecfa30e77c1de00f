import { createInterface } from 'node:readline/promises';
import type { CommandSignals } from './signals.js';

/**
 * One question on the terminal (stderr), answered on stdin. Ctrl-C typed at it (readline reads it
 * as a key in raw mode and rejects the question) and a signal delivered while it is open both
 * cancel through the command's signal owner: the answer is `undefined`, and the caller ends with
 * `signals.throwIfCancelled` (exit `cancelled`, nothing touched), never an internal error.
 */
export async function askLine(question: string, signals: CommandSignals): Promise<string | undefined> {
  if (signals.cancel.aborted) return undefined;
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  try {
    return await rl.question(question, { signal: signals.cancel });
  } catch (error) {
    if ((error as { name?: string }).name !== 'AbortError') throw error;
    // Ctrl-C at the prompt: the same as SIGINT (a signal already cancelled: nothing more to do).
    if (!signals.cancel.aborted) signals.deliver('SIGINT');
    return undefined;
  } finally {
    rl.close();
  }
}
