import { closeSync, fchmodSync, fstatSync, constants as fsConstants, openSync, type Stats } from 'node:fs';
import { chmod, lstat, mkdtemp, open, realpath, rmdir, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { shellQuote } from '../text/shell.js';

/**
 * File creation that is safe for root in a directory someone else may write.
 *
 * The rule (docs/architecture.md, "Safe file creation"): as root, a file in a directory another
 * account can write is created only with O_CREAT|O_EXCL|O_NOFOLLOW (a planted name or symlink makes
 * the open fail instead of redirecting the write), appended to only through O_NOFOLLOW after an
 * fstat on the open descriptor (regular file, owned by us), and temporary work happens in a
 * directory the tool created itself with mode 0700 and verified after creation. Directories the
 * tool keeps state in (locks, evidence) are checked with checkDirSafe before use.
 */

const { O_WRONLY, O_RDWR, O_CREAT, O_EXCL, O_APPEND, O_NOFOLLOW } = fsConstants;

export class UnsafeFileError extends Error {
  readonly path: string;
  constructor(file: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UnsafeFileError';
    this.path = file;
  }
}

function myUid(): number {
  return process.getuid?.() ?? -1;
}

function errno(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

/**
 * Create a new file: O_CREAT|O_EXCL|O_NOFOLLOW (and O_WRONLY, or O_RDWR with `read`).
 * Fails with EEXIST when anything (a file, a symlink, even a dangling one) already has the name.
 */
export async function createExclusive(file: string, mode: number, opts: { read?: boolean } = {}): Promise<FileHandle> {
  const handle = await open(file, (opts.read ? O_RDWR : O_WRONLY) | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
  try {
    // open() applies the umask; the caller asked for this mode exactly.
    await handle.chmod(mode);
  } catch (error) {
    await handle.close();
    throw error;
  }
  return handle;
}

/**
 * Open a file for appending without following a symlink at its name, creating it (O_EXCL-free,
 * mode `mode`) when `create` is set. The open descriptor must be a regular file owned by us, with
 * one link (a hard link planted to another file is refused); otherwise it is closed and an
 * UnsafeFileError is thrown.
 */
export async function openAppendNoFollow(file: string, opts: { create?: boolean; mode?: number } = {}): Promise<FileHandle> {
  let handle: FileHandle;
  try {
    handle = await open(file, O_WRONLY | O_APPEND | O_NOFOLLOW | (opts.create ? O_CREAT : 0), opts.mode ?? 0o600);
  } catch (error) {
    if (errno(error) === 'ELOOP')
      throw new UnsafeFileError(file, `${file} is a symbolic link; refusing to append through it.`, { cause: error });
    throw error;
  }
  try {
    const st = await handle.stat();
    const problem = regularOwnedProblem(st);
    if (problem) throw new UnsafeFileError(file, `${file} ${problem}; refusing to append to it.`);
  } catch (error) {
    await handle.close();
    throw error;
  }
  return handle;
}

function regularOwnedProblem(st: Stats): string | undefined {
  if (!st.isFile()) return 'is not a regular file';
  if (st.uid !== myUid()) return `is owned by uid ${st.uid}, not by us (uid ${myUid()})`;
  if (st.nlink !== 1) return `has ${st.nlink} hard links`;
  return undefined;
}

/**
 * Make a private directory `<parent>/<prefix>XXXXXX`: mkdtemp (which creates it, so it cannot
 * already exist), chmod 0700, then lstat to verify it is still a real directory we own with mode
 * 0700. Anything else removes it (when empty) and throws.
 */
export async function makePrivateTempDir(parent: string, prefix: string): Promise<string> {
  if (prefix.includes('/')) throw new Error(`makePrivateTempDir: prefix must not contain '/': ${prefix}`);
  const dir = await mkdtemp(path.join(parent, prefix));
  try {
    await chmod(dir, 0o700);
    const st = await lstat(dir);
    if (!st.isDirectory()) throw new UnsafeFileError(dir, `${dir} is not a directory after creating it.`);
    if (st.uid !== myUid()) throw new UnsafeFileError(dir, `${dir} is owned by uid ${st.uid} after creating it, not by us.`);
    if ((st.mode & 0o7777) !== 0o700) throw new UnsafeFileError(dir, `${dir} has mode ${(st.mode & 0o7777).toString(8)}, not 0700.`);
  } catch (error) {
    await rmdir(dir).catch(() => undefined);
    throw error;
  }
  return dir;
}

/** Why a directory is not safe for root to keep state in, and the command that fixes it. */
export interface DirProblem {
  /** The directory (or ancestor) that is unsafe. */
  path: string;
  problem: string;
  /** A shell command that makes it safe, for the operator's "Next:" line. */
  fix: string;
}

function ownerOk(st: Stats): boolean {
  return st.uid === 0 || st.uid === myUid();
}

function ownerFix(dir: string): string {
  const uid = myUid();
  return uid === 0 || uid < 0 ? `chown root:root ${shellQuote(dir)}` : `chown ${uid} ${shellQuote(dir)}`;
}

/**
 * Check that a directory is safe for root to keep its own files in (fixed names, e.g. lock files):
 * nobody but root or us can create, replace, rename or delete entries in it, or rename it away.
 *
 * - The directory itself: a real directory (after resolving symlinks in its path), owned by root or
 *   the current uid, and not group- or world-writable. The sticky bit does NOT make a writable
 *   directory acceptable here: others could still pre-create the fixed names we use.
 * - Every ancestor of its real path: owned by root or the current uid, and either not group/world
 *   writable or sticky (like /tmp, /run/lock: with the sticky bit, others cannot rename or remove an
 *   entry we own, so our directory stays ours).
 *
 * Returns undefined when safe, or the first problem with its fix. A directory that does not exist
 * yet is fine when its nearest existing ancestor chain is (the caller then creates it itself).
 */
export async function checkDirSafe(dir: string): Promise<DirProblem | undefined> {
  let real: string;
  try {
    real = await realpath(dir);
  } catch (error) {
    if (errno(error) !== 'ENOENT') throw error;
    const parent = path.dirname(path.resolve(dir));
    if (parent === path.resolve(dir)) throw error;
    return checkAncestors(parent);
  }
  const st = await lstat(real);
  if (!st.isDirectory()) return { path: real, problem: `${real} is not a directory`, fix: `rm -- ${shellQuote(real)}` };
  const mode = st.mode & 0o7777;
  if (!ownerOk(st) || (mode & 0o022) !== 0) {
    const modeFix = `chmod 0755 ${shellQuote(real)}`;
    const problem = !ownerOk(st)
      ? `${real} is owned by uid ${st.uid} (only root or uid ${myUid()} may own it)`
      : `${real} is writable by ${mode & 0o002 ? 'every user' : 'its group'} (mode ${mode.toString(8).padStart(4, '0')})`;
    return { path: real, problem, fix: ownerOk(st) ? modeFix : `${ownerFix(real)} && ${modeFix}` };
  }
  return checkAncestors(path.dirname(real));
}

async function checkAncestors(start: string): Promise<DirProblem | undefined> {
  let dir = start;
  let real: string | undefined;
  // Find the nearest existing ancestor, then walk its real path up to /.
  for (;;) {
    try {
      real = await realpath(dir);
      break;
    } catch (error) {
      if (errno(error) !== 'ENOENT') throw error;
      const up = path.dirname(dir);
      if (up === dir) return undefined;
      dir = up;
    }
  }
  for (let cur = real; ; cur = path.dirname(cur)) {
    const st = await lstat(cur);
    const mode = st.mode & 0o7777;
    const writable = (mode & 0o022) !== 0;
    const sticky = (mode & 0o1000) !== 0;
    if (!ownerOk(st)) {
      return {
        path: cur,
        problem: `${cur} is owned by uid ${st.uid} (only root or uid ${myUid()} may own it)`,
        fix: `${ownerFix(cur)} && chmod go-w ${shellQuote(cur)}`,
      };
    }
    if (writable && !sticky) {
      return {
        path: cur,
        problem: `${cur} is writable by ${mode & 0o002 ? 'every user' : 'its group'} without the sticky bit (mode ${mode.toString(8).padStart(4, '0')})`,
        fix: `chmod go-w ${shellQuote(cur)}`,
      };
    }
    if (path.dirname(cur) === cur) return undefined;
  }
}

/** Only root (or we) can create, rename or remove entries in `st`'s directory. */
function rootOnly(st: Stats): boolean {
  return st.isDirectory() && ownerOk(st) && (st.mode & 0o022) === 0;
}

/**
 * Where to stage a file or directory that will be renamed (or linked) to `target`: the nearest
 * ancestor of `target`'s directory that only root (or we) can write, on the same file system (so
 * the rename stays atomic). Work staged in a directory someone else can write is not safe even in
 * a 0700 temp dir: they can rename the temp dir away and put a symlink in its place, and the next
 * path-based call (tar's cwd, link's source) follows it. Falls back to `target`'s own directory
 * when no ancestor on the same file system qualifies (a mount point owned by the service).
 */
export async function stagingParent(target: string): Promise<{ dir: string; sameDir: boolean }> {
  const own = path.dirname(path.resolve(target));
  const real = await realpath(own);
  const dev = (await lstat(real)).dev;
  for (let cur = real; ; cur = path.dirname(cur)) {
    const st = await lstat(cur);
    if (st.dev !== dev) break;
    if (rootOnly(st)) return { dir: cur, sameDir: cur === real };
    if (path.dirname(cur) === cur) break;
  }
  return { dir: own, sameDir: true };
}

/*
 * Synchronous twins for the evidence writer, which records each event as it is emitted (from a
 * synchronous event-bus listener) and so cannot await. Same rules as createExclusive and
 * openAppendNoFollow above.
 */

/** createExclusive, synchronously: returns a file descriptor. */
export function createExclusiveSync(file: string, mode: number): number {
  const fd = openSync(file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
  try {
    fchmodSync(fd, mode);
  } catch (error) {
    closeSync(fd);
    throw error;
  }
  return fd;
}

/** openAppendNoFollow, synchronously: returns a file descriptor. */
export function openAppendNoFollowSync(file: string, opts: { create?: boolean; mode?: number } = {}): number {
  let fd: number;
  try {
    fd = openSync(file, O_WRONLY | O_APPEND | O_NOFOLLOW | (opts.create ? O_CREAT : 0), opts.mode ?? 0o600);
  } catch (error) {
    if (errno(error) === 'ELOOP')
      throw new UnsafeFileError(file, `${file} is a symbolic link; refusing to append through it.`, { cause: error });
    throw error;
  }
  try {
    const problem = regularOwnedProblem(fstatSync(fd));
    if (problem) throw new UnsafeFileError(file, `${file} ${problem}; refusing to append to it.`);
  } catch (error) {
    closeSync(fd);
    throw error;
  }
  return fd;
}
