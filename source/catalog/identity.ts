import type { Stats } from 'node:fs';
import type { FileIdentity } from './types.js';

/** The identity of a file from its stat (see FileIdentity). */
export function fileIdentity(st: Stats): FileIdentity {
  return { dev: st.dev, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs };
}

export function sameIdentity(a: FileIdentity, b: FileIdentity): boolean {
  return a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs;
}

/** What differs, in words ("replaced (another inode)", "modified (size 10 -> 12)"). */
export function identityChange(was: FileIdentity, now: FileIdentity): string {
  if (was.dev !== now.dev || was.ino !== now.ino) return 'replaced by another file (inode changed)';
  const parts: string[] = [];
  if (was.size !== now.size) parts.push(`size ${was.size} -> ${now.size} bytes`);
  if (was.mtimeMs !== now.mtimeMs) parts.push('modification time changed');
  if (was.ctimeMs !== now.ctimeMs) parts.push('change time changed');
  return `modified in place (${parts.join(', ')})`;
}
