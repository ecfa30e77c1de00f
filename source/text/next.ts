import { shellJoin } from './shell.js';

/**
 * "Next:" commands that work when pasted: `restore-assistant` and its arguments, each quoted for a
 * POSIX shell, naming the recipe (by its file, which resolves from any directory) or the backup
 * root the operator used. test/integration/next-lines.test.ts pastes every one the errors produce.
 */

/** restore-assistant ARGS, quoted. */
export function raCommand(...args: string[]): string {
  return shellJoin(['restore-assistant', ...args]);
}

/** Where a command found its backups: the recipe (its file) or a backup root. */
export interface CommandScope {
  recipe?: string | undefined;
  root?: string | undefined;
}

/** The arguments that name the scope: --recipe FILE, or --root DIR, or none. */
export function scopeArgs(scope: CommandScope | undefined): string[] {
  if (scope?.recipe) return ['--recipe', scope.recipe];
  if (scope?.root) return ['--root', scope.root];
  return [];
}

/** `restore-assistant list ...` for this scope. */
export function listCommand(scope: CommandScope | undefined): string {
  return raCommand('list', ...scopeArgs(scope));
}
