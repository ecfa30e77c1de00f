import { accessSync, constants, readFileSync } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { connect } from 'node:net';
import { delimiter, join } from 'node:path';

/** Small process/file helpers shared by the sandbox modules (and by the standalone service-ctl). */

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Blocks the thread (for 'exit' handlers, where nothing asynchronous runs any more). */
export function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function errnoCode(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : undefined;
}

/** Process state letter from /proc/<pid>/stat ('R', 'S', 'Z', ...), undefined without /proc. */
function procState(pid: number): string | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return undefined;
  }
}

/**
 * True while the process exists and is not a zombie. Zombies matter: a detached daemon whose
 * parent exited is reparented to PID 1, and in containers PID 1 does not always reap it.
 */
export function isPidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (error) {
    if (errnoCode(error) !== 'EPERM') return false;
  }
  const state = procState(pid);
  return state !== 'Z' && state !== 'X';
}

let bootTimeMs: number | undefined;

/** When the process started (epoch ms), from /proc; undefined if unknown. Assumes CLK_TCK = 100 (Linux default). */
export function processStartedAtMs(pid: number): number | undefined {
  try {
    if (bootTimeMs === undefined) {
      const btime = /^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'));
      if (!btime?.[1]) return undefined;
      bootTimeMs = Number(btime[1]) * 1000;
    }
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[19]); // field 22 overall, 20th after "pid (comm)"
    return Number.isFinite(ticks) ? bootTimeMs + ticks * 10 : undefined;
  } catch {
    return undefined;
  }
}

/** Sends a signal, ignoring "no such process". Returns false if the process was already gone. */
export function signalPid(pid: number, signal: NodeJS.Signals | number): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch (error) {
    if (errnoCode(error) === 'ESRCH') return false;
    throw error;
  }
}

/** Signals only the process group `pgid` (never a lone pid); false if no such group. */
export function signalGroupOnly(pgid: number, signal: NodeJS.Signals | number): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Signals the process group led by pid (detached children lead their own group); falls back to the pid. */
export function signalGroup(pid: number, signal: NodeJS.Signals | number): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    return signalPid(pid, signal);
  }
}

export async function waitUntil(
  check: () => boolean | Promise<boolean>,
  options: { timeoutMs: number; intervalMs?: number },
): Promise<boolean> {
  const deadline = Date.now() + options.timeoutMs;
  const interval = options.intervalMs ?? 50;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(interval);
  }
}

/** The last lines of a (log) file, '' if it does not exist. Reads at most the last 64 KiB. */
export async function tailFile(path: string, lines = 30): Promise<string> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch {
    return '';
  }
  try {
    const { size } = await handle.stat();
    const length = Math.min(size, 64 * 1024);
    const buffer = Buffer.alloc(length);
    await handle.read(buffer, 0, length, size - length);
    const all = buffer.toString('utf8').replace(/\n+$/, '').split('\n');
    return all.slice(-lines).join('\n');
  } finally {
    await handle.close();
  }
}

export function formatLogTail(label: string, tail: string): string {
  return tail.trim() === '' ? `(${label} is empty)` : `--- last lines of ${label} ---\n${tail}\n--- end of ${label} ---`;
}

export function tcpAccepts(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

export async function httpOk(url: string, timeoutMs = 2000): Promise<boolean> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    await response.arrayBuffer();
    return response.ok;
  } catch {
    return false;
  }
}

export interface OsUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

/** Looks a user up in /etc/passwd (no NSS: enough for system users like `postgres`). */
export function lookupOsUser(name: string): OsUser {
  let passwd: string;
  try {
    passwd = readFileSync('/etc/passwd', 'utf8');
  } catch (error) {
    throw new Error(`cannot read /etc/passwd to look up OS user ${JSON.stringify(name)}`, { cause: error });
  }
  for (const line of passwd.split('\n')) {
    const fields = line.split(':');
    if (fields[0] === name && fields.length >= 7) {
      return { name, uid: Number(fields[2]), gid: Number(fields[3]), home: fields[5] ?? '/' };
    }
  }
  throw new Error(`OS user ${JSON.stringify(name)} does not exist (not found in /etc/passwd)`);
}

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** First executable called `name` on PATH, or undefined. */
export function whichSync(name: string, path = process.env['PATH'] ?? ''): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // keep looking
    }
  }
  return undefined;
}

export function requireBinary(name: string, what: string): string {
  const found = whichSync(name);
  if (!found) throw new Error(`${what}: binary ${JSON.stringify(name)} not found on PATH (${process.env['PATH'] ?? ''})`);
  return found;
}

export async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** process.env without the variables that would redirect a client tool (PGDATABASE, PGSERVICE, REDISCLI_AUTH, ...). */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value === undefined) continue;
    if (/^PG[A-Z]/.test(key) || key === 'REDISCLI_AUTH' || key === 'REDISCLI_CLUSTER_YES') continue;
    env[key] = value;
  }
  return { ...env, ...extra };
}

/** First line of a pidfile as a pid, read synchronously (for 'exit' handlers); undefined if absent/invalid. */
export function readPidFileSync(pidFile: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(pidFile, 'utf8');
  } catch {
    return undefined;
  }
  const pid = Number(text.trim().split('\n')[0]);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}
