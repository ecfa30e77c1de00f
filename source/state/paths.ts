import os from 'node:os';
import path from 'node:path';

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
  return path.join(env['XDG_STATE_HOME'] || path.join(os.homedir(), '.local', 'state'), 'restore-assistant');
}

/** The machine-wide lock directory (see the module comment): the same for every user. */
export function lockDir(env: NodeJS.ProcessEnv = process.env): string {
  const set = env[LOCK_DIR_ENV];
  return set ? path.resolve(set) : DEFAULT_LOCK_DIR;
}
