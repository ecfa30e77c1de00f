import type { Stats } from 'node:fs';
import { lstat, realpath, rename, rm, rmdir } from 'node:fs/promises';
import path from 'node:path';
import { makePrivateTempDir, stagingParent } from '../exec/safe-fs.js';

/**
 * Undo by identity for files and directories (docs/architecture.md, "Undo by identity"): when a
 * run creates or moves a file or directory it records what it put there (device, inode, birth
 * time when the file system has one, type, and the real path of where it is), as a run fact
 * (journaled, so a `recover` knows it too). An undo that moves back or removes a path first checks
 * that what is there now is what the run recorded, and refuses otherwise, saying what it found.
 */

export interface PathIdentity {
  dev: number;
  ino: number;
  /** Birth time in ms (statx); 0 when the file system does not keep one. */
  btime: number;
  type: 'file' | 'dir' | 'symlink' | 'other';
  /** The real path of the parent joined with the entry's name (the entry itself is never followed). */
  realPath: string;
}

function typeOf(st: Stats): PathIdentity['type'] {
  return st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'other';
}

/** The identity of what is at `p` now (lstat: a symlink is not followed), or undefined when nothing is. */
export async function pathIdentity(p: string): Promise<PathIdentity | undefined> {
  let st: Stats;
  try {
    st = await lstat(p);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const parent = await realpath(path.dirname(p)).catch(() => path.dirname(p));
  return { dev: st.dev, ino: st.ino, btime: Math.round(st.birthtimeMs), type: typeOf(st), realPath: path.join(parent, path.basename(p)) };
}

export function encodeIdentity(id: PathIdentity): string {
  return JSON.stringify(id);
}

export function decodeIdentity(value: string | undefined): PathIdentity | undefined {
  if (!value) return undefined;
  try {
    const v = JSON.parse(value) as Partial<PathIdentity>;
    if (typeof v.dev !== 'number' || typeof v.ino !== 'number' || typeof v.realPath !== 'string' || typeof v.type !== 'string')
      return undefined;
    return { dev: v.dev, ino: v.ino, btime: typeof v.btime === 'number' ? v.btime : 0, type: v.type, realPath: v.realPath };
  } catch {
    return undefined;
  }
}

/** Same object (device, inode, type, and birth time when both have one), wherever it is now. */
export function sameObject(a: PathIdentity, b: PathIdentity): boolean {
  return a.dev === b.dev && a.ino === b.ino && a.type === b.type && (a.btime === 0 || b.btime === 0 || a.btime === b.btime);
}

/** Same object at the same real path. */
export function samePlace(a: PathIdentity, b: PathIdentity): boolean {
  return sameObject(a, b) && a.realPath === b.realPath;
}

export function describeIdentity(id: PathIdentity): string {
  const what = id.type === 'dir' ? 'directory' : id.type;
  return `a ${what} (device ${id.dev}, inode ${id.ino}) at ${id.realPath}`;
}

/**
 * Why what is at `p` is not what was recorded (undefined when it is). `found` undefined: nothing
 * is there. No record: the run never put anything there.
 */
export function identityMismatch(p: string, recorded: PathIdentity | undefined, found: PathIdentity | undefined): string | undefined {
  if (!found) return undefined;
  if (!recorded) return `${p} is ${describeIdentity(found)} that this run did not create or move there (it recorded nothing for that name)`;
  if (samePlace(recorded, found)) return undefined;
  return `${p} is not what this run put there: it recorded ${describeIdentity(recorded)}, and found ${describeIdentity(found)}`;
}

/**
 * Remove `p` only when it is `recorded`. The check and the removal cannot race: `p` is first
 * renamed into a fresh 0700 directory in the nearest ancestor only root can write (same file
 * system), checked again there, and only then removed; if it changed in between it is renamed
 * back and refused. Resolves 'absent' when nothing is at `p` (idempotent), 'removed' when done;
 * throws with what it found otherwise (nothing removed).
 */
export async function removeIfOwn(p: string, recorded: PathIdentity | undefined): Promise<'absent' | 'removed'> {
  const found = await pathIdentity(p);
  if (!found) return 'absent';
  const wrong = identityMismatch(p, recorded, found);
  if (wrong) throw new Error(`${wrong}; refusing to remove it (left untouched)`);
  const tmp = await makePrivateTempDir((await stagingParent(p)).dir, `.${path.basename(p)}.remove-`);
  const held = path.join(tmp, path.basename(p));
  try {
    await rename(p, held);
  } catch (error) {
    await rmdir(tmp).catch(() => undefined);
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
    throw error;
  }
  const now = await pathIdentity(held);
  if (!now || !recorded || !sameObject(now, recorded)) {
    // Swapped between the check and the rename: put it back, touch nothing.
    await rename(held, p).catch(() => undefined);
    await rmdir(tmp).catch(() => undefined);
    throw new Error(
      `${p} changed while it was being removed (found ${now ? describeIdentity(now) : 'nothing'}); refusing to remove it (put back where it was)`,
    );
  }
  await rm(held, { recursive: true, force: true });
  await rmdir(tmp).catch(() => undefined);
  return 'removed';
}
