import os from 'node:os';
import path from 'node:path';
import { expandHome } from '../recipe/home.js';
import type { Recipe } from '../recipe/schema.js';

/**
 * The machine-wide places restore-assistant keeps state in, in one module (docs/architecture.md,
 * "State directory" and "Locks").
 *
 * - The state directory: $RESTORE_ASSISTANT_STATE_DIR, else /var/lib/restore-assistant as root,
 *   else $XDG_STATE_HOME/restore-assistant (~/.local/state/restore-assistant). Mode 0700, owned by
 *   the user it belongs to: the seal-signing key (evidence/signing.ts) and the journal index live
 *   there.
 * - The lock directory: $RESTORE_ASSISTANT_LOCK_DIR, else /run/restore-assistant/locks, for every
 *   user (never per user: two operators, or root over ssh and root via sudo, must collide). Root
 *   creates it owned by root with mode 1777 (sticky, like /tmp): every operator account can take
 *   and see locks, and nobody but a lock's taker (and root) can remove or replace it. It lives in
 *   /run (cleared at boot): a lock is about a live process; an interrupted run that outlives a
 *   reboot is found by its journal in the state directory.
 */

export const STATE_DIR_ENV = 'RESTORE_ASSISTANT_STATE_DIR';
export const LOCK_DIR_ENV = 'RESTORE_ASSISTANT_LOCK_DIR';
export const DEFAULT_LOCK_DIR = '/run/restore-assistant/locks';

/** The machine-wide state directory (see the module comment). */
export function stateDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env[STATE_DIR_ENV]) return path.resolve(env[STATE_DIR_ENV]);
  if (process.getuid?.() === 0) return '/var/lib/restore-assistant';
  return userStateDir(env);
}

/** The machine-wide lock directory (see the module comment): the same for every user. */
export function lockDir(env: NodeJS.ProcessEnv = process.env): string {
  const set = env[LOCK_DIR_ENV];
  return set ? path.resolve(set) : DEFAULT_LOCK_DIR;
}

/** The operator's own state directory: $XDG_STATE_HOME/restore-assistant (~/.local/state/restore-assistant). */
export function userStateDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(env['XDG_STATE_HOME'] || path.join(os.homedir(), '.local', 'state'), 'restore-assistant');
}

/** Where this recipe's evidence goes: recipe.evidence.dir, else $XDG_STATE_HOME/restore-assistant/runs. */
export function evidenceDir(recipe: Recipe | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (recipe?.evidence.dir) return path.resolve(expandHome(recipe.evidence.dir));
  if (env['RESTORE_ASSISTANT_EVIDENCE_DIR']) return path.resolve(expandHome(env['RESTORE_ASSISTANT_EVIDENCE_DIR']));
  return path.join(userStateDir(env), 'runs');
}

/**
 * Where safety copies that are files (a pg_dump safety copy) go by default: `safety` beside the
 * recipe's evidence directory. The one default: the plan options and the plan builder both use it.
 */
export function defaultSafetyDir(recipe: Recipe | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return path.join(path.dirname(evidenceDir(recipe, env)), 'safety');
}

/** Where `demo` keeps its evidence (apart from every real recipe's). */
export function demoEvidenceDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(userStateDir(env), 'demo', 'runs');
}
