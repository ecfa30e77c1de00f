import { createHash } from 'node:crypto';
import { closeSync, constants as fsConstants, fstatSync, openSync, readFileSync, unlinkSync } from 'node:fs';
import { chmod, lstat, mkdir, open, readdir, realpath, unlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { RestoreAssistantError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { currentOperator } from '../evidence/writer.js';
import { createExclusive } from '../exec/safe-fs.js';
import { holdLock } from '../state/holds.js';
import { lockDir } from '../state/paths.js';
import { shellQuote } from '../text/shell.js';

/**
 * One restore per target at a time, for every user of the machine (docs/architecture.md, "Locks").
 *
 * Each target has a key naming its identity, not the recipe's text ("postgres:127.0.0.1:5432/app"
 * for `localhost` too; "redis-data:/var/lib/redis" by real path: engine/target-identity.ts). The lock is
 * one file per key in the machine-wide lock directory (state/paths.ts `lockDir`), created with
 * O_CREAT|O_EXCL|O_NOFOLLOW, mode 0644, owned by its taker, holding who took it:
 *
 *   { "format": "restore-assistant/lock@1", "key", "user", "uid", "pid", "host", "bootId",
 *     "processStart", "runId", "startedAt", "command" }
 *
 * The directory is root's with mode 1777 (sticky): every operator account can take and read locks;
 * the sticky bit keeps anyone but a lock's owner (and root) from removing, renaming or replacing it.
 * Lock files are read with O_NOFOLLOW|O_NONBLOCK and must be regular files of one link; the owner
 * reported is the file's uid, not what the file claims.
 *
 * A lock is stale when its owner is provably gone: same host and boot (boot_id), and no process
 * with that pid and that start time (/proc/PID/stat field 22, so a reused pid is not mistaken for
 * the owner). Stale locks are never taken silently nor reported one per retry: every stale lock
 * of a run is reported at once and handed to `restore-assistant recover` (findStaleLocks +
 * takeOverLocks), which looks at what that run left first. A live lock refuses (exit 8).
 */

export const LOCK_FORMAT = 'restore-assistant/lock@1';
const LOCK_FILE_MODE = 0o644;
const MAX_LOCK_BYTES = 16 * 1024;
const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK } = fsConstants;

/** Who took a lock (the file's content, with `uid` from the file's owner). */
export interface LockInfo {
  key: string;
  /** The lock file. */
  file: string;
  /** Owner of the lock file (from fstat: cannot be forged by its content). */
  uid: number;
  /** Login name recorded by the taker ("alice", or "root (sudo from alice)"). */
  user: string;
  pid: number;
  host: string;
  /** /proc/sys/kernel/random/boot_id of the taker's boot ("" when unknown: an older lock). */
  bootId: string;
  /** Field 22 of /proc/PID/stat (clock ticks since boot) of the taker ("" when unknown). */
  processStart: string;
  runId: string;
  startedAt: string;
  /** "restore", "drill", "guide", "recover", ... */
  command: string;
}

/** A lock whose owner is gone: handed to `restore-assistant recover`. */
export interface StaleLock extends LockInfo {
  /** Why it is stale: "no process 1234 is running", "pid 1234 is now another process", "the machine restarted since". */
  reason: string;
  /** dev:ino and content digest of the lock file when it was judged stale (takeover replaces that file only). */
  identity: string;
}

export interface LockHandle {
  /** The lock files taken, by key. */
  readonly files: ReadonlyMap<string, string>;
  /** Remove the lock files this handle took, each only if it is still ours (idempotent; never throws). */
  release(): Promise<void>;
}

/** Another run holds a target, or a run that is gone left its locks. Exit 8, nothing touched. */
export class LockError extends RestoreAssistantError {
  /** The first lock in the way (live first). */
  readonly holder: LockInfo | undefined;
  /** True when every lock in the way is stale (hand them to `recover`). */
  readonly stale: boolean;
  readonly lockFile: string;
  /** Every live lock in the way. */
  readonly live: LockInfo[];
  /** Every stale lock in the way (all at once, with their run ids). */
  readonly staleLocks: StaleLock[];
  /** Lock files that exist but cannot be read as a lock (not a regular file, garbage). */
  readonly unreadable: string[];

  constructor(
    message: string,
    details: { live: LockInfo[]; staleLocks: StaleLock[]; unreadable: string[]; problems?: string[]; next: string },
  ) {
    super(message, ExitCode.locked, {
      untouched: 'Nothing was touched.',
      next: details.next,
      ...(details.problems ? { problems: details.problems } : {}),
    });
    this.name = 'LockError';
    this.live = details.live;
    this.staleLocks = details.staleLocks;
    this.unreadable = details.unreadable;
    this.holder = details.live[0] ?? details.staleLocks[0];
    this.stale = details.live.length === 0 && details.unreadable.length === 0 && details.staleLocks.length > 0;
    this.lockFile = details.live[0]?.file ?? details.staleLocks[0]?.file ?? details.unreadable[0] ?? '';
  }
}

/** The machine-wide lock directory ($RESTORE_ASSISTANT_LOCK_DIR, else /run/restore-assistant/locks). */
export function defaultLockDir(env: NodeJS.ProcessEnv = process.env, _fallback?: string): string {
  return lockDir(env);
}

/**
 * A file name for a key: a readable part (characters outside [A-Za-z0-9._-] %-encoded, cut to
 * 120 bytes) and 16 hex digits of the key's sha256, so long real paths stay within NAME_MAX and
 * two keys never share a name.
 */
export function lockFileName(key: string): string {
  const readable = key.replace(/[^A-Za-z0-9._-]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`).slice(0, 120);
  const digest = createHash('sha256').update(key, 'utf8').digest('hex').slice(0, 16);
  return `${readable}.${digest}.lock`;
}

// ---- who we are ----

/** This boot's id ("" when /proc is not there). */
export function bootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return '';
  }
}

/** Field 22 of /proc/PID/stat: when the process started, in clock ticks since boot (undefined: no such process). */
export function processStartTime(pid: number): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses; fields after the last ")".
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return rest[19];
}

function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, owned by someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function whoAmI(env: NodeJS.ProcessEnv): string {
  const { operator, sudoUser } = currentOperator(env);
  let login = operator;
  try {
    login = os.userInfo().username;
  } catch {
    // no passwd entry
  }
  return sudoUser && sudoUser !== login ? `${login} (sudo from ${sudoUser})` : login;
}

function ownerRecord(key: string, opts: { runId: string; command?: string; now?: Date; env?: NodeJS.ProcessEnv }): Record<string, unknown> {
  return {
    format: LOCK_FORMAT,
    key,
    user: whoAmI(opts.env ?? process.env),
    uid: process.getuid?.() ?? -1,
    pid: process.pid,
    host: os.hostname(),
    bootId: bootId(),
    processStart: processStartTime(process.pid) ?? '',
    runId: opts.runId,
    startedAt: (opts.now ?? new Date()).toISOString(),
    command: opts.command ?? 'restore',
  };
}

// ---- reading ----

type ReadResult = { kind: 'absent' } | { kind: 'lock'; info: LockInfo; identity: string } | { kind: 'unreadable'; why: string };

function str(v: unknown, fallback: string): string {
  return typeof v === 'string' ? v : fallback;
}

/** Read a lock file without following a link, refusing anything but a regular file of one link. */
async function readLock(key: string, file: string): Promise<ReadResult> {
  let handle;
  try {
    handle = await open(file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { kind: 'absent' };
    if (code === 'ELOOP') return { kind: 'unreadable', why: 'it is a symbolic link' };
    return { kind: 'unreadable', why: `it cannot be opened (${code ?? 'error'})` };
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) return { kind: 'unreadable', why: 'it is not a regular file' };
    if (st.nlink !== 1) return { kind: 'unreadable', why: `it has ${st.nlink} links` };
    if (st.size > MAX_LOCK_BYTES) return { kind: 'unreadable', why: `it is ${st.size} bytes long` };
    const text = (await handle.readFile('utf8')).slice(0, MAX_LOCK_BYTES);
    const identity = identityOf(st, text);
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(text) as Record<string, unknown>;
    } catch {
      return { kind: 'unreadable', why: 'it is not a lock (not JSON)' };
    }
    if (typeof parsed !== 'object' || parsed === null || typeof parsed['pid'] !== 'number' || typeof parsed['host'] !== 'string') {
      return { kind: 'unreadable', why: 'it is not a lock (no pid or host)' };
    }
    return {
      kind: 'lock',
      identity,
      info: {
        key,
        file,
        uid: st.uid,
        user: str(parsed['user'], `uid ${st.uid}`),
        pid: parsed['pid'],
        host: parsed['host'],
        bootId: str(parsed['bootId'], ''),
        processStart: str(parsed['processStart'], ''),
        runId: str(parsed['runId'], 'unknown'),
        startedAt: str(parsed['startedAt'], 'unknown'),
        command: str(parsed['command'], 'restore'),
      },
    };
  } finally {
    await handle.close();
  }
}

/** Why a lock's owner is provably gone, or undefined when it may be alive (or is on another host). */
export function staleReason(info: Pick<LockInfo, 'pid' | 'host' | 'bootId' | 'processStart'>): string | undefined {
  if (info.host !== os.hostname()) return undefined;
  const boot = bootId();
  if (info.bootId && boot && info.bootId !== boot) return 'the machine restarted since';
  if (info.pid === process.pid && info.processStart === (processStartTime(process.pid) ?? '')) return undefined;
  if (!pidExists(info.pid)) return `no process ${info.pid} is running`;
  if (info.processStart) {
    const now = processStartTime(info.pid);
    if (now !== undefined && now !== info.processStart)
      return `pid ${info.pid} is now another process (started at tick ${now}, the owner at ${info.processStart})`;
  }
  return undefined;
}

function describeOwner(l: LockInfo): string {
  const by = l.uid >= 0 && l.user !== `uid ${l.uid}` ? `${l.user}, uid ${l.uid}` : l.user;
  return `pid ${l.pid} on ${l.host}, by ${by}, started ${l.startedAt}, ${l.command} run ${l.runId}`;
}

// ---- the directory ----

function myUid(): number {
  return process.getuid?.() ?? -1;
}

/**
 * The lock directory is acceptable when nobody but its taker can remove or replace a lock in it:
 * - root's, mode 1777 (sticky; the machine-wide directory: every operator takes locks there), or
 * - root's or ours, not writable by group or others (a private lock dir);
 * and every ancestor is root's or ours and not writable by others without the sticky bit.
 * Refused (exit 9, with the fix): a writable directory without the sticky bit, a sticky one owned
 * by another user (its owner could delete every lock), a symbolic link, a file.
 */
export async function assertLockDirSafe(dir: string): Promise<void> {
  const refuse = (problem: string, fix: string): never => {
    throw new RestoreAssistantError(`The lock directory ${dir} is not safe to use: ${problem}.`, ExitCode.preflightFailed, {
      untouched: 'Nothing was touched.',
      problems: [
        `Anyone who can write or own ${dir} without the sticky bit can plant, replace or delete restore locks (and make root follow planted names).`,
      ],
      next: `Check who created it and why, then fix it: ${fix} (or remove it and let restore-assistant create it again).`,
    });
  };
  let st;
  try {
    st = await lstat(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    await assertAncestorsSafe(path.dirname(dir), refuse);
    return;
  }
  if (st.isSymbolicLink()) refuse(`${dir} is a symbolic link`, `rm -- ${shellQuote(dir)}`);
  if (!st.isDirectory()) refuse(`${dir} is not a directory`, `rm -- ${shellQuote(dir)}`);
  const mode = st.mode & 0o7777;
  const writable = (mode & 0o022) !== 0;
  const sticky = (mode & 0o1000) !== 0;
  // Root's fix keeps the directory shared (1777) when it was open to others, else private (0755).
  const rootFix = `chown root:root ${shellQuote(dir)} && chmod ${writable ? '1777' : '0755'} ${shellQuote(dir)}`;
  if (st.uid !== 0 && st.uid !== myUid())
    refuse(
      `${dir} is owned by uid ${st.uid} (only root${myUid() === 0 ? '' : ` or uid ${myUid()}`} may own it)`,
      myUid() === 0 ? rootFix : `chown ${myUid()} ${shellQuote(dir)} && chmod 0755 ${shellQuote(dir)}`,
    );
  if (writable && !sticky)
    refuse(
      `${dir} is writable by ${mode & 0o002 ? 'every user' : 'its group'} without the sticky bit (mode ${mode.toString(8).padStart(4, '0')})`,
      st.uid === 0 ? `chmod 1777 ${shellQuote(dir)}` : `chmod 0755 ${shellQuote(dir)}`,
    );
  if (writable && st.uid !== 0)
    refuse(
      `${dir} is writable by others and owned by uid ${st.uid}, not root: its owner could delete every lock`,
      myUid() === 0 ? rootFix : `chmod 0755 ${shellQuote(dir)}`,
    );
  await assertAncestorsSafe(path.dirname(dir), refuse);
}

async function assertAncestorsSafe(start: string, refuse: (problem: string, fix: string) => never): Promise<void> {
  let dir = start;
  let real: string | undefined;
  for (;;) {
    try {
      real = await realpath(dir);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      const up = path.dirname(dir);
      if (up === dir) return;
      dir = up;
    }
  }
  for (let cur = real; ; cur = path.dirname(cur)) {
    const st = await lstat(cur);
    const mode = st.mode & 0o7777;
    if (st.uid !== 0 && st.uid !== myUid())
      refuse(`its ancestor ${cur} is owned by uid ${st.uid}`, `chown root:root ${shellQuote(cur)} && chmod go-w ${shellQuote(cur)}`);
    if ((mode & 0o022) !== 0 && (mode & 0o1000) === 0)
      refuse(
        `its ancestor ${cur} is writable by others without the sticky bit (mode ${mode.toString(8).padStart(4, '0')})`,
        `chmod go-w ${shellQuote(cur)}`,
      );
    if (path.dirname(cur) === cur) return;
  }
}

/**
 * Make sure the lock directory exists and is safe. Root creates it (and /run/restore-assistant)
 * owned by root with mode 1777 so every operator can take locks; another user creates a private
 * one (0755) when allowed to, or is told how to have root create the shared one.
 */
export async function ensureLockDir(dir: string): Promise<void> {
  await assertLockDirSafe(dir);
  const root = myUid() === 0;
  try {
    await mkdir(path.dirname(dir), { recursive: true, mode: 0o755 });
    await mkdir(dir, { mode: root ? 0o1777 : 0o755 });
    // mkdir applies the umask and never sets the sticky bit on some systems: set the mode exactly.
    await chmod(dir, root ? 0o1777 : 0o755);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EEXIST') {
      throw new RestoreAssistantError(`Cannot create the lock directory ${dir} (${code ?? 'error'}).`, ExitCode.preflightFailed, {
        untouched: 'Nothing was touched.',
        next: `Have root create it once for every operator: sudo install -d -m 1777 -o root -g root ${shellQuote(dir)} (or run restore-assistant as root, which creates it).`,
        cause: error,
      });
    }
  }
  // Again after creating it: mkdir accepts a directory someone else created in between.
  await assertLockDirSafe(dir);
}

// ---- taking ----

interface Taken {
  file: string;
  identity: string;
}

/** dev:ino plus the content's digest: an inode number is reused as soon as a file is removed. */
function identityOf(st: { dev: number; ino: number }, text: string): string {
  return `${st.dev}:${st.ino}:${createHash('sha256').update(text, 'utf8').digest('hex')}`;
}

/**
 * The lock files this process created and has not released, by file: registered with
 * state/holds.ts from the moment each exists (before its content is written), so that the
 * last-resort handler (source/last-resort.ts), which may run between any two awaits, can say which
 * remain and release them when the process dies of a bug. (Only createExclusive itself, its open
 * and chmod, is a window in which a file of ours exists unregistered: it is empty then, and reads
 * as "not a lock".)
 */
const heldHere = new Map<string, { identity?: string; forget: () => void }>();

/** `file` (once fully written: with `identity`) is no longer ours to release: removed, or replaced by someone else. */
function forgetHeld(file: string, identity: string): void {
  const h = heldHere.get(file);
  if (!h || (h.identity !== undefined && h.identity !== identity)) return;
  heldHere.delete(file);
  h.forget();
}

async function createLock(file: string, content: Record<string, unknown>): Promise<Taken> {
  // O_EXCL|O_NOFOLLOW: a name planted in the lock dir is never followed or reused.
  const handle = await createExclusive(file, LOCK_FILE_MODE);
  const text = `${JSON.stringify(content)}\n`;
  try {
    // Held from here, synchronously after the create: this inode, with our text or a beginning of it.
    const { dev, ino } = fstatSync(handle.fd);
    heldHere.get(file)?.forget();
    const mine = { dev, ino, text };
    const key = typeof content['key'] === 'string' ? content['key'] : file;
    const entry: { identity?: string; forget: () => void } = {
      forget: holdLock({ key, file, releaseSync: () => unlinkIfStillSync(file, mine) }),
    };
    heldHere.set(file, entry);
    await handle.writeFile(text);
    await handle.sync();
    const taken = { file, identity: identityOf(await handle.stat(), text) };
    entry.identity = taken.identity;
    return taken;
  } finally {
    await handle.close();
  }
}

/** The identity of what is at `file` now (undefined: nothing, or not a regular file). */
async function identityAt(file: string): Promise<string | undefined> {
  let handle;
  try {
    handle = await open(file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    const st = await handle.stat();
    if (!st.isFile() || st.size > MAX_LOCK_BYTES) return undefined;
    return identityOf(st, await handle.readFile('utf8'));
  } finally {
    await handle.close();
  }
}

async function unlinkIfStill(file: string, identity: string): Promise<boolean> {
  try {
    if ((await identityAt(file)) !== identity) {
      forgetHeld(file, identity);
      return false;
    }
    await unlink(file);
    forgetHeld(file, identity);
    return true;
  } catch {
    return false;
  }
}

/**
 * The synchronous release, for a process about to exit (source/last-resort.ts): only the file this
 * process created (same device and inode, read without following a link) holding the text it
 * wrote or a beginning of it (a write the exit interrupted). Returns undefined when it was removed
 * or nothing is there any more, `{ replaced }` when another file is there now (left as it is,
 * never counted as released), else why it was kept.
 */
function unlinkIfStillSync(file: string, mine: { dev: number; ino: number; text: string }): string | { replaced: string } | undefined {
  const forget = (): void => {
    heldHere.get(file)?.forget();
    heldHere.delete(file);
  };
  let fd: number;
  try {
    fd = openSync(file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      forget();
      return undefined;
    }
    return `it cannot be opened (${code ?? 'error'})`;
  }
  try {
    const st = fstatSync(fd);
    const same =
      st.isFile() &&
      st.dev === mine.dev &&
      st.ino === mine.ino &&
      st.size <= MAX_LOCK_BYTES &&
      mine.text.startsWith(readFileSync(fd, 'utf8'));
    if (!same) {
      // No longer the file this process wrote (replaced): not ours to remove; said as such, never as released.
      forget();
      return { replaced: 'another file is at its path since this process wrote it: left alone, not removed' };
    }
  } catch (error) {
    return `it cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`;
  } finally {
    closeSync(fd);
  }
  try {
    unlinkSync(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') return `it cannot be removed (${code ?? 'error'})`;
  }
  forget();
  return undefined;
}

function handleOf(taken: Map<string, Taken>): LockHandle {
  const files = new Map<string, string>();
  for (const [k, t] of taken) files.set(k, t.file);
  return {
    files,
    release: async () => {
      for (const [k, t] of [...taken]) {
        await unlinkIfStill(t.file, t.identity);
        taken.delete(k);
        files.delete(k);
      }
    },
  };
}

async function releaseTaken(taken: Map<string, Taken>): Promise<void> {
  for (const [k, t] of [...taken]) {
    await unlinkIfStill(t.file, t.identity);
    taken.delete(k);
  }
}

export interface LockOptions {
  dir: string;
  runId: string;
  /** The command taking the locks ("restore", "drill", "guide", "recover"). */
  command?: string;
  /** The recipe, for the `restore-assistant recover --recipe R` line of a stale-lock refusal. */
  recipe?: string;
  now?: Date;
  env?: NodeJS.ProcessEnv;
}

/** The one line that sends an operator to recover (W-11a's command). */
export function recoverCommand(recipe: string | undefined): string {
  return `restore-assistant recover${recipe ? ` --recipe ${shellQuote(recipe)}` : ''}`;
}

/** The refusal for every lock in the way at once. */
function lockRefusal(
  live: LockInfo[],
  staleLocks: StaleLock[],
  unreadable: Array<{ key: string; file: string; why: string }>,
  recipe: string | undefined,
): LockError {
  const problems: string[] = [];
  for (const l of live) problems.push(`${l.key}: held by ${describeOwner(l)} (lock file ${l.file})`);
  for (const l of staleLocks) problems.push(`${l.key}: left by ${describeOwner(l)}, which is gone: ${l.reason} (lock file ${l.file})`);
  for (const u of unreadable) problems.push(`${u.key}: the lock file ${u.file} exists but is not a lock restore-assistant wrote: ${u.why}`);
  const runs = [...new Set(staleLocks.map((l) => l.runId))];
  let message: string;
  let next: string;
  if (live.length > 0) {
    const l = live[0]!;
    message = `Another restore holds ${l.key} (${describeOwner(l)})${live.length + staleLocks.length + unreadable.length > 1 ? ` and ${live.length + staleLocks.length + unreadable.length - 1} more of this run's targets` : ''}.`;
    const sameHost = l.host === os.hostname();
    next = sameHost
      ? `Wait for that run to finish (or stop it: kill -INT ${l.pid}), then try again.`
      : `That run is on host ${l.host}: wait for it to finish there. If that host is gone for good, remove the lock: rm -- ${shellQuote(l.file)}`;
  } else if (staleLocks.length > 0) {
    const pids = [...new Set(staleLocks.map((l) => `pid ${l.pid} on ${l.host}`))];
    message = `A run that is no longer running (run ${runs.join(', ')}, ${pids.join(', ')}) still holds ${staleLocks.length === 1 ? 'a stale lock on' : `${staleLocks.length} stale locks on`} ${staleLocks.map((l) => l.key).join(', ')}: it may have left a restore half done.`;
    next = `Run \`${recoverCommand(recipe)}\`: it shows what that run left (checked live) and takes these locks over to roll back or finish it. Only if you know that run touched nothing, remove them instead: rm -- ${staleLocks.map((l) => shellQuote(l.file)).join(' ')}`;
    if (unreadable.length > 0) next += `; and look at ${unreadable.map((u) => shellQuote(u.file)).join(' ')}`;
  } else {
    const u = unreadable[0]!;
    message = `The lock on ${u.key} exists but cannot be read as a lock (${u.file}: ${u.why}).`;
    next = `Check who made it and that no restore is running on ${unreadable.map((x) => x.key).join(', ')}; then remove it: rm -- ${unreadable.map((x) => shellQuote(x.file)).join(' ')}`;
  }
  return new LockError(message, { live, staleLocks, unreadable: unreadable.map((u) => u.file), problems, next });
}

/** What is at each key's lock file now. */
export interface LockStatus {
  key: string;
  file: string;
  state: 'free' | 'live' | 'stale' | 'unreadable';
  info?: LockInfo;
  reason?: string;
  identity?: string;
}

/** Look at the locks of `keys` without taking any (read-only: `plan`, `recover`'s display). */
export async function inspectLocks(keys: readonly string[], opts: { dir: string }): Promise<LockStatus[]> {
  const out: LockStatus[] = [];
  for (const key of [...new Set(keys)].sort()) {
    const file = path.join(opts.dir, lockFileName(key));
    const r = await readLock(key, file);
    if (r.kind === 'absent') out.push({ key, file, state: 'free' });
    else if (r.kind === 'unreadable') out.push({ key, file, state: 'unreadable', reason: r.why });
    else {
      const reason = staleReason(r.info);
      out.push({ key, file, state: reason ? 'stale' : 'live', info: r.info, identity: r.identity, ...(reason ? { reason } : {}) });
    }
  }
  return out;
}

/** Every stale lock among `keys`, all at once, with the run ids that left them (for `recover`). */
export async function findStaleLocks(keys: readonly string[], opts: { dir: string }): Promise<StaleLock[]> {
  const found = await inspectLocks(keys, opts);
  return found.filter((s) => s.state === 'stale').map((s) => ({ ...s.info!, reason: s.reason!, identity: s.identity! }));
}

/**
 * Every stale lock in the lock directory, whatever its key (`recover` with no unfinished restore:
 * the locks of a run that died before it began one, e.g. a guide killed while it verified). Only
 * files named as their own key's lock file (lockFileName) count; anything else there is left alone.
 */
export async function staleLocksInDir(dir: string): Promise<StaleLock[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const out: StaleLock[] = [];
  for (const name of names.filter((n) => n.endsWith('.lock')).sort()) {
    const file = path.join(dir, name);
    let key: unknown;
    try {
      const h = await open(file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
      try {
        key = (JSON.parse((await h.readFile('utf8')).slice(0, MAX_LOCK_BYTES)) as Record<string, unknown>)['key'];
      } finally {
        await h.close();
      }
    } catch {
      continue;
    }
    if (typeof key !== 'string' || lockFileName(key) !== name) continue;
    const r = await readLock(key, file);
    if (r.kind !== 'lock') continue;
    const reason = staleReason(r.info);
    if (reason) out.push({ ...r.info, reason, identity: r.identity });
  }
  return out;
}

/**
 * Take a lock on every key (sorted); all or nothing. Every key is tried, so a refusal names every
 * lock in the way at once: LockError (exit 8): live ones by owner, pid and start; stale ones with
 * their run ids and `restore-assistant recover --recipe R`.
 */
export async function acquireLocks(keys: readonly string[], opts: LockOptions): Promise<LockHandle> {
  await ensureLockDir(opts.dir);
  const taken = new Map<string, Taken>();
  const live: LockInfo[] = [];
  const staleLocks: StaleLock[] = [];
  const unreadable: Array<{ key: string; file: string; why: string }> = [];
  try {
    for (const key of [...new Set(keys)].sort()) {
      const file = path.join(opts.dir, lockFileName(key));
      try {
        taken.set(key, await createLock(file, ownerRecord(key, opts)));
        continue;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
          throw new RestoreAssistantError(`Could not create the lock file ${file}: ${(error as Error).message}`, ExitCode.preflightFailed, {
            untouched: 'Nothing was touched.',
            next: `Make the lock directory writable for this user (root creates it with mode 1777: sudo install -d -m 1777 -o root -g root ${shellQuote(opts.dir)}), or set RESTORE_ASSISTANT_LOCK_DIR.`,
          });
        }
      }
      const r = await readLock(key, file);
      if (r.kind === 'absent') {
        // Released between our create and our read: try once more.
        try {
          taken.set(key, await createLock(file, ownerRecord(key, opts)));
          continue;
        } catch {
          unreadable.push({ key, file, why: 'it appeared and disappeared while we looked (another run is taking it)' });
          continue;
        }
      }
      if (r.kind === 'unreadable') {
        unreadable.push({ key, file, why: r.why });
        continue;
      }
      const reason = staleReason(r.info);
      if (reason) staleLocks.push({ ...r.info, reason, identity: r.identity });
      else live.push(r.info);
    }
  } catch (error) {
    await releaseTaken(taken);
    throw error;
  }
  if (live.length + staleLocks.length + unreadable.length > 0) {
    await releaseTaken(taken);
    throw lockRefusal(live, staleLocks, unreadable, opts.recipe);
  }
  return handleOf(taken);
}

/**
 * `recover`: take over the stale locks findStaleLocks returned (all or nothing), plus `keys` that
 * are free. Each stale lock is replaced only if it is still the file judged stale (same dev:ino,
 * owner still gone); a guard file `<name>.takeover` (O_EXCL) keeps two recovers from both taking
 * it. A lock that came alive or changed meanwhile refuses (LockError, exit 8).
 */
export async function takeOverLocks(stale: readonly StaleLock[], opts: LockOptions & { keys?: readonly string[] }): Promise<LockHandle> {
  await ensureLockDir(opts.dir);
  const taken = new Map<string, Taken>();
  try {
    for (const s of [...stale].sort((a, b) => a.key.localeCompare(b.key))) {
      const file = path.join(opts.dir, lockFileName(s.key));
      const guardFile = `${file}.takeover`;
      let guard: Taken;
      try {
        guard = await createLock(guardFile, ownerRecord(s.key, { ...opts, command: `${opts.command ?? 'recover'} (taking over)` }));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        const g = await readLock(s.key, guardFile);
        // A takeover guard left by a recover that was itself killed: remove it and try again once.
        if (g.kind === 'lock' && staleReason(g.info) && (await unlinkIfStill(guardFile, g.identity))) {
          guard = await createLock(guardFile, ownerRecord(s.key, { ...opts, command: `${opts.command ?? 'recover'} (taking over)` }));
        } else {
          throw lockRefusal(
            g.kind === 'lock' ? [g.info] : [],
            [],
            g.kind === 'unreadable' ? [{ key: s.key, file: guardFile, why: g.why }] : [],
            opts.recipe,
          );
        }
      }
      try {
        const now = await readLock(s.key, file);
        if (now.kind === 'lock') {
          const reason = staleReason(now.info);
          if (!reason || now.identity !== s.identity)
            throw lockRefusal(reason ? [] : [now.info], reason ? [{ ...now.info, reason, identity: now.identity }] : [], [], opts.recipe);
          if (!(await unlinkIfStill(file, now.identity))) {
            throw new RestoreAssistantError(`Could not remove the stale lock ${file} (owned by uid ${now.info.uid}).`, ExitCode.locked, {
              untouched: 'Nothing was touched.',
              next: `Run recover as root or as the user who took the lock (uid ${now.info.uid}).`,
            });
          }
        } else if (now.kind === 'unreadable') {
          throw lockRefusal([], [], [{ key: s.key, file, why: now.why }], opts.recipe);
        }
        taken.set(s.key, await createLock(file, ownerRecord(s.key, opts)));
      } finally {
        await unlinkIfStill(guardFile, guard.identity);
      }
    }
    const rest = (opts.keys ?? []).filter((k) => !taken.has(k));
    if (rest.length > 0) {
      const more = await acquireLocks(rest, opts);
      for (const [k, f] of more.files) taken.set(k, { file: f, identity: (await identityAt(f)) ?? '' });
    }
  } catch (error) {
    await releaseTaken(taken);
    if (error instanceof RestoreAssistantError) throw error;
    throw new RestoreAssistantError(`Could not take over the stale locks: ${(error as Error).message}`, ExitCode.locked, {
      untouched: 'Nothing was touched.',
      next: 'Run recover again; if it fails the same way, look at the lock directory.',
      cause: error,
    });
  }
  return handleOf(taken);
}
