import { ExitCode, type ExitCodeValue } from './exit-codes.js';
import { sanitizeBlock, sanitizeText } from './text/sanitize.js';

export interface ErrorDetails {
  /** What was left untouched (or the exact state things are in). */
  untouched?: string;
  /** What the operator should do next. */
  next?: string;
  /** Lines with more detail (one problem per line). */
  problems?: string[];
  cause?: unknown;
}

/**
 * An error meant for the operator: what happened, what was left untouched, what to do next,
 * and the exit code it maps to. Anything else that reaches the CLI is a bug and is reported as one.
 */
export class RestoreAssistantError extends Error {
  readonly exitCode: ExitCodeValue;
  readonly untouched: string | undefined;
  readonly next: string | undefined;
  readonly problems: string[];

  constructor(message: string, exitCode: ExitCodeValue, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'RestoreAssistantError';
    this.exitCode = exitCode;
    this.untouched = details.untouched;
    this.next = details.next;
    this.problems = details.problems ?? [];
  }
}

export class UsageError extends RestoreAssistantError {
  constructor(message: string, details: ErrorDetails = {}) {
    super(message, ExitCode.usage, { untouched: 'Nothing was touched.', ...details });
    this.name = 'UsageError';
  }
}

/** A recipe that does not parse or validate. problems carry `file:line:col message` lines. */
export class RecipeError extends RestoreAssistantError {
  constructor(message: string, details: ErrorDetails = {}) {
    super(message, ExitCode.usage, { untouched: 'Nothing was touched.', ...details });
    this.name = 'RecipeError';
  }
}

/**
 * A system error that is the operator's situation, not a bug (issue 12: a plain permission error
 * reported as "Internal error", exit 70): permission denied, a read-only or full file system on a
 * path this command needed. The engine catches its own errors (a run's summary says the state), so
 * what reaches the CLI from here came before or outside a run.
 */
export function operatorErrorOf(error: unknown): RestoreAssistantError | undefined {
  const errno = error as NodeJS.ErrnoException | undefined;
  if (!errno || typeof errno !== 'object' || typeof errno.code !== 'string') return undefined;
  const where = typeof errno.path === 'string' ? errno.path : 'a file or directory this command needs';
  const reads = errno.syscall === 'open' || errno.syscall === 'scandir' || errno.syscall === 'stat' || errno.syscall === 'lstat';
  const untouched = 'Nothing was touched by this command beyond what it printed above (no restore step ran after this error).';
  switch (errno.code) {
    case 'EACCES':
    case 'EPERM':
      return new RestoreAssistantError(
        `Permission denied: this user cannot ${reads ? 'read' : 'use'} ${where} (${errno.code}).`,
        ExitCode.preflightFailed,
        {
          untouched,
          next: `run restore-assistant as root (sudo restore-assistant ...), or as a user that can read and write ${where}.`,
          cause: error,
        },
      );
    case 'EROFS':
      return new RestoreAssistantError(`${where} is on a read-only file system (EROFS).`, ExitCode.preflightFailed, {
        untouched,
        next: `point the recipe at a writable place (evidence.dir, staging), or remount ${where} read-write.`,
        cause: error,
      });
    case 'ENOSPC':
      return new RestoreAssistantError(`No space left on the device of ${where} (ENOSPC).`, ExitCode.preflightFailed, {
        untouched,
        next: `free space there (df -h ${where}; \`restore-assistant safety-copies\` lists copies earlier restores kept) and run the command again.`,
        cause: error,
      });
    default:
      return undefined;
  }
}

/** Format an error for a terminal: message, problems, untouched, next (sanitised: text/sanitize.ts). No stack traces. */
export function formatError(error: unknown): string {
  if (error instanceof RestoreAssistantError) {
    // Messages and problems often carry names and output from outside: one line each, control
    // characters shown escaped. untouched/next may hold meant line breaks.
    const lines = [`Error: ${sanitizeText(error.message)}`];
    for (const p of error.problems) lines.push(`  - ${sanitizeText(p)}`);
    if (error.untouched) lines.push(sanitizeBlock(error.untouched));
    if (error.next) lines.push(`Next: ${sanitizeBlock(error.next)}`);
    return lines.join('\n');
  }
  const message = sanitizeText(error instanceof Error ? error.message : String(error));
  return `Internal error: ${message}\nThis is a bug in restore-assistant. Re-run with RESTORE_ASSISTANT_DEBUG=1 for a stack trace and report it.`;
}
