import { mkdir, readFile, unlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { RestoreAssistantError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import type { ComponentKind } from '../catalog/types.js';
import type { Recipe } from '../recipe/schema.js';
import { checkDirSafe, createExclusive } from '../exec/safe-fs.js';
import { shellQuote } from '../text/shell.js';

/**
 * One restore per target at a time. Each target has a key ("postgres:127.0.0.1:5432/app",
 * "redis:127.0.0.1:6379"); the lock is a file per key created with O_EXCL holding who owns it.
 * A lock left by a dead process is reported with its contents and the command that removes
 * it — never silently taken over: the operator must look at what that run left behind first.
 */

export interface LockInfo {
  key: string;
  pid: number;
  host: string;
  startedAt: string;
  runId: string;
}

export interface LockHandle {
  /** The lock files taken, by key. */
  readonly files: ReadonlyMap<string, string>;
  /** Remove the lock files this handle took (idempotent; never throws). */
  release(): Promise<void>;
}

/** Another run holds a target (or a dead run left its lock behind). Exit 8, nothing touched. */
export class LockError extends RestoreAssistantError {
  readonly holder: LockInfo | undefined;
  readonly stale: boolean;
  readonly lockFile: string;

  constructor(message: string, details: { holder?: LockInfo; stale: boolean; lockFile: string; problems?: string[]; next: string }) {
    super(message, ExitCode.locked, {
      untouched: 'Nothing was touched.',
      next: details.next,
      ...(details.problems ? { problems: details.problems } : {}),
    });
    this.name = 'LockError';
    this.holder = details.holder;
    this.stale = details.stale;
    this.lockFile = details.lockFile;
  }
}

/** $XDG_RUNTIME_DIR/restore-assistant, else /var/lock/restore-assistant (root), else a per-user dir in the temp dir. */
export function defaultLockDir(env: NodeJS.ProcessEnv = process.env, fallback?: string): string {
  const runtime = env['XDG_RUNTIME_DIR'];
  if (runtime) return path.join(runtime, 'restore-assistant');
  if (process.getuid?.() === 0) return '/var/lock/restore-assistant';
  if (fallback) return path.join(fallback, '.locks');
  return path.join(os.tmpdir(), `restore-assistant-${process.getuid?.() ?? 'user'}`, 'locks');
}

/** The lock keys of the targets a recipe restores. */
export function lockKeysForRecipe(recipe: Recipe, only?: readonly ComponentKind[]): string[] {
  const want = (k: ComponentKind): boolean => !only || only.length === 0 || only.includes(k);
  const keys: string[] = [];
  const { postgres, redis, prometheus } = recipe.components;
  if (postgres && want('postgres')) keys.push(`postgres:${postgres.host}:${postgres.port}/${postgres.database}`);
  if (redis && want('redis')) keys.push(`redis:${redis.host}:${redis.port}`);
  if (prometheus && want('prometheus')) {
    let where = prometheus.url;
    try {
      where = new URL(prometheus.url).host;
    } catch {
      // keep the url as written
    }
    keys.push(`prometheus:${where}`);
  }
  return keys;
}

/** A file name for a key: readable, no separators, unique (characters outside [A-Za-z0-9._-] are %-encoded). */
export function lockFileName(key: string): string {
  return `${key.replace(/[^A-Za-z0-9._-]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`)}.lock`;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, owned by someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readLock(file: string): Promise<LockInfo | undefined> {
  try {
    const parsed = JSON.parse(await readFile(file, 'utf8')) as Partial<LockInfo>;
    if (typeof parsed.pid !== 'number' || typeof parsed.host !== 'string') return undefined;
    return {
      key: String(parsed.key ?? ''),
      pid: parsed.pid,
      host: parsed.host,
      startedAt: String(parsed.startedAt ?? 'unknown'),
      runId: String(parsed.runId ?? 'unknown'),
    };
  } catch {
    return undefined;
  }
}

async function takeOne(key: string, file: string, info: LockInfo): Promise<void> {
  try {
    // O_EXCL|O_NOFOLLOW: a name planted in the lock dir is never followed or reused.
    const handle = await createExclusive(file, 0o644);
    try {
      await handle.writeFile(`${JSON.stringify(info)}\n`);
    } finally {
      await handle.close();
    }
    return;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw new RestoreAssistantError(`Could not create the lock file ${file}: ${(error as Error).message}`, ExitCode.preflightFailed, {
        untouched: 'Nothing was touched.',
        next: 'Make the lock directory writable, or point the run at another one (XDG_RUNTIME_DIR).',
      });
    }
  }
  const holder = await readLock(file);
  const removal = `rm -- ${shellQuote(file)}`;
  if (!holder) {
    throw new LockError(`The lock on ${key} exists but cannot be read (${file}).`, {
      stale: false,
      lockFile: file,
      next: `Check that no restore is running on ${key}; if none is, remove the lock: ${removal}`,
    });
  }
  const who = `pid ${holder.pid} on ${holder.host}, started ${holder.startedAt}, run ${holder.runId}`;
  const sameHost = holder.host === os.hostname();
  if (sameHost && !pidAlive(holder.pid)) {
    throw new LockError(`A stale lock holds ${key}: its owner (${who}) is no longer running.`, {
      holder,
      stale: true,
      lockFile: file,
      problems: [`lock file: ${file}`, 'That run ended without releasing its lock: it may have left a restore half done.'],
      next: `Look at that run's evidence (run ${holder.runId}) and the state of ${key}; when you are sure nothing is running, remove the lock: ${removal}`,
    });
  }
  throw new LockError(`Another restore holds ${key} (${who}).`, {
    holder,
    stale: false,
    lockFile: file,
    problems: [`lock file: ${file}`],
    next: sameHost
      ? `Wait for that run to finish (or stop it: kill -INT ${holder.pid}), then try again.`
      : `That run is on host ${holder.host}: wait for it to finish. If it is gone, remove the lock: ${removal}`,
  });
}

/**
 * The lock dir must be writable by root (or us) only: in a directory others can write (a
 * `restore-assistant` dir pre-created by any user in the 1777 /run/lock), they could plant or
 * delete locks. Refused with the command that fixes it (exit 9, nothing touched).
 */
export async function assertLockDirSafe(dir: string): Promise<void> {
  const problem = await checkDirSafe(dir);
  if (!problem) return;
  throw new RestoreAssistantError(`The lock directory ${dir} is not safe to use: ${problem.problem}.`, ExitCode.preflightFailed, {
    untouched: 'Nothing was touched.',
    problems: [`Anyone who can write ${problem.path} can plant or delete restore locks (and make root follow planted names).`],
    next: `Check who created it and why, then fix it: ${problem.fix} (or remove it and let restore-assistant create it again).`,
  });
}

/**
 * Take a lock on every key (sorted, so two runs never deadlock half-way); all or nothing.
 * Throws LockError (exit 8) when any is held.
 */
export async function acquireLocks(keys: readonly string[], opts: { dir: string; runId: string; now?: Date }): Promise<LockHandle> {
  await assertLockDirSafe(opts.dir);
  await mkdir(opts.dir, { recursive: true, mode: 0o755 });
  // Again after creating it: mkdir -p accepts a directory someone else created in between.
  await assertLockDirSafe(opts.dir);
  const files = new Map<string, string>();
  const release = async (): Promise<void> => {
    for (const file of files.values()) {
      try {
        await unlink(file);
      } catch {
        // already gone
      }
    }
    files.clear();
  };
  const startedAt = (opts.now ?? new Date()).toISOString();
  try {
    for (const key of [...new Set(keys)].sort()) {
      const file = path.join(opts.dir, lockFileName(key));
      await takeOne(key, file, { key, pid: process.pid, host: os.hostname(), startedAt, runId: opts.runId });
      files.set(key, file);
    }
  } catch (error) {
    await release();
    throw error;
  }
  return { files, release };
}
