import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, openSync, closeSync, realpathSync, writeSync } from 'node:fs';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { z } from 'zod';
import { entryFile } from '../bundle.js';
import {
  formatLogTail,
  httpOk,
  isPidAlive,
  isRoot,
  lookupOsUser,
  processStartedAtMs,
  signalGroup,
  signalGroupOnly,
  signalPid,
  sleep,
  tailFile,
  tcpAccepts,
  waitUntil,
} from './process-utils.js';

/**
 * A tiny daemon controller, so recipes can stop/start sandbox services the way they would call
 * systemctl:  node service-ctl.js start|stop|status <spec.json>
 *
 * Exit codes: start/stop 0 = ok (also "already running" / "not running"), 1 = failed, 2 = usage or
 * unreadable/invalid spec; status 0 = running, 3 = not running, 4 = unknown (spec unreadable) (LSB).
 */

const signalSchema = z.string().regex(/^SIG[A-Z0-9]+$/, 'a signal name like SIGTERM');

export const serviceSpecSchema = z.object({
  name: z.string().min(1),
  argv: z.array(z.string()).min(1),
  cwd: z.string().optional(),
  env: z.record(z.string(), z.string()).optional(),
  runAsUser: z.string().min(1).optional(),
  pidFile: z.string().min(1),
  logFile: z.string().min(1),
  ready: z
    .object({
      tcp: z.object({ host: z.string(), port: z.number().int().positive() }).optional(),
      http: z.object({ url: z.string().regex(/^https?:\/\//, 'an http(s) URL') }).optional(),
    })
    .optional(),
  readyTimeoutMs: z.number().int().positive().optional(),
  stopSignal: signalSchema.optional(),
  stopTimeoutMs: z.number().int().positive().optional(),
});

export type ServiceSpec = z.infer<typeof serviceSpecSchema>;
export type ServiceAction = 'start' | 'stop' | 'status';

export const SERVICE_STATUS_NOT_RUNNING = 3;

export async function readServiceSpec(specPath: string): Promise<ServiceSpec> {
  let text: string;
  try {
    text = await readFile(specPath, 'utf8');
  } catch (error) {
    throw new Error(`service-ctl: cannot read spec ${specPath}: ${(error as Error).message}`, { cause: error });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`service-ctl: spec ${specPath} is not JSON: ${(error as Error).message}`, { cause: error });
  }
  const parsed = serviceSpecSchema.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`);
    throw new Error(`service-ctl: invalid spec ${specPath}:\n  ${problems.join('\n  ')}`);
  }
  return parsed.data;
}

export async function writeServiceSpec(specPath: string, spec: ServiceSpec): Promise<void> {
  await mkdir(dirname(specPath), { recursive: true });
  await writeFile(specPath, `${JSON.stringify(serviceSpecSchema.parse(spec), null, 2)}\n`);
}

async function readPid(pidFile: string): Promise<number | undefined> {
  try {
    const pid = Number((await readFile(pidFile, 'utf8')).trim().split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The pid from the pidfile if that process is alive and is the one that wrote it (a process that
 * started after the pidfile was written is a reused pid, not our daemon).
 */
async function runningPid(spec: ServiceSpec): Promise<number | undefined> {
  const pid = await readPid(spec.pidFile);
  if (pid === undefined || !isPidAlive(pid)) return undefined;
  const startedAt = processStartedAtMs(pid);
  if (startedAt !== undefined) {
    try {
      const { mtimeMs } = await stat(spec.pidFile);
      if (startedAt > mtimeMs + 2000) return undefined;
    } catch {
      return undefined;
    }
  }
  return pid;
}

export interface ServiceStatus {
  running: boolean;
  pid?: number;
}

export async function serviceStatus(spec: ServiceSpec): Promise<ServiceStatus> {
  const pid = await runningPid(spec);
  return pid === undefined ? { running: false } : { running: true, pid };
}

async function isReady(spec: ServiceSpec): Promise<boolean> {
  const { tcp, http } = spec.ready ?? {};
  if (tcp && !(await tcpAccepts(tcp.host, tcp.port))) return false;
  if (http && !(await httpOk(http.url))) return false;
  return true;
}

function probeAddress(spec: ServiceSpec): { host: string; port: number } | undefined {
  if (spec.ready?.tcp) return spec.ready.tcp;
  if (spec.ready?.http) {
    try {
      const url = new URL(spec.ready.http.url);
      return { host: url.hostname, port: Number(url.port || (url.protocol === 'https:' ? 443 : 80)) };
    } catch {
      return undefined;
    }
  }
  return undefined;
}

function describeReady(spec: ServiceSpec): string {
  const parts: string[] = [];
  if (spec.ready?.tcp) parts.push(`tcp ${spec.ready.tcp.host}:${spec.ready.tcp.port}`);
  if (spec.ready?.http) parts.push(`GET ${spec.ready.http.url}`);
  return parts.length ? parts.join(' and ') : 'process alive';
}

export interface StartResult {
  pid: number;
  alreadyRunning: boolean;
}

/**
 * Starts the service detached (own session, stdio appended to logFile), writes the pidfile and
 * waits until it is ready. Already running: returns at once. On failure the process is killed,
 * the pidfile removed, and the error carries the log tail.
 */
export async function startService(spec: ServiceSpec): Promise<StartResult> {
  const existing = await runningPid(spec);
  if (existing !== undefined) return { pid: existing, alreadyRunning: true };

  const [file, ...args] = spec.argv;
  if (file === undefined) throw new Error(`service-ctl: ${spec.name}: argv is empty`);
  mkdirSync(dirname(spec.pidFile), { recursive: true });
  mkdirSync(dirname(spec.logFile), { recursive: true });

  let ids: { uid?: number; gid?: number } = {};
  let userEnv: Record<string, string> = {};
  if (spec.runAsUser !== undefined) {
    const user = lookupOsUser(spec.runAsUser);
    userEnv = { HOME: user.home, USER: user.name, LOGNAME: user.name };
    if (isRoot()) ids = { uid: user.uid, gid: user.gid };
    else if (process.getuid?.() !== user.uid) {
      throw new Error(`service-ctl: ${spec.name}: runAsUser ${spec.runAsUser} needs root (running as uid ${process.getuid?.()})`);
    }
  }

  // A probe that already answers would make a failed start look ready (e.g. a port collision).
  const probe = probeAddress(spec);
  if (probe && (await tcpAccepts(probe.host, probe.port))) {
    throw new Error(
      `service-ctl: ${spec.name}: ${probe.host}:${probe.port} already accepts connections but ${spec.pidFile} names no running process: ` +
        'another process holds the port (stale instance or port collision); not starting',
    );
  }

  const logFd = openSync(spec.logFile, 'a');
  writeSync(logFd, `--- service-ctl: starting ${spec.name} at ${new Date().toISOString()}: ${JSON.stringify(spec.argv)}\n`);
  let child;
  try {
    child = spawn(file, args, {
      cwd: spec.cwd,
      env: { ...process.env, ...userEnv, ...spec.env },
      detached: true,
      stdio: ['ignore', logFd, logFd],
      ...ids,
    });
  } finally {
    closeSync(logFd);
  }
  const spawnError = await new Promise<Error | undefined>((resolve) => {
    child.once('error', resolve);
    child.once('spawn', () => resolve(undefined));
  });
  if (spawnError || child.pid === undefined) {
    throw new Error(`service-ctl: ${spec.name}: cannot start ${file}: ${spawnError?.message ?? 'no pid'}`, { cause: spawnError });
  }
  const pid = child.pid;
  let exitInfo: string | undefined;
  child.once('exit', (code, signal) => {
    exitInfo = signal ? `killed by ${signal}` : `exit code ${code}`;
  });
  child.unref();
  await writeFile(spec.pidFile, `${pid}\n`);

  const timeoutMs = spec.readyTimeoutMs ?? 30_000;
  let died = false;
  // Without a readiness probe, "ready" means still alive after a short grace period.
  if (spec.ready?.tcp === undefined && spec.ready?.http === undefined) await sleep(Math.min(300, timeoutMs));
  const ready = await waitUntil(
    async () => {
      if (!isPidAlive(pid)) {
        died = true;
        return true;
      }
      return isReady(spec);
    },
    { timeoutMs, intervalMs: 50 },
  );
  if (ready && !died) return { pid, alreadyRunning: false };

  if (died && exitInfo === undefined) await Promise.race([once(child, 'exit'), sleep(500)]);
  if (!died) {
    signalGroup(pid, 'SIGKILL');
    await waitUntil(() => !isPidAlive(pid), { timeoutMs: 5000 });
  }
  await rm(spec.pidFile, { force: true });
  const reason = died
    ? `exited during startup (${exitInfo ?? 'exit status unknown'})`
    : `not ready after ${timeoutMs} ms (waited for ${describeReady(spec)}); killed it`;
  throw new Error(
    `service-ctl: ${spec.name} (pid ${pid}, ${file}) ${reason}\n${formatLogTail(spec.logFile, await tailFile(spec.logFile, 40))}`,
  );
}

export interface StopResult {
  wasRunning: boolean;
  pid?: number;
  /** SIGKILL was needed after stopTimeoutMs. */
  escalated: boolean;
}

/**
 * Sends stopSignal (default SIGTERM) to the daemon, waits until it is gone (SIGKILL to its process
 * group after stopTimeoutMs), removes the pidfile. Not running: just removes a stale pidfile.
 */
export async function stopService(spec: ServiceSpec): Promise<StopResult> {
  const pid = await runningPid(spec);
  if (pid === undefined) {
    await rm(spec.pidFile, { force: true });
    return { wasRunning: false, escalated: false };
  }
  const signal = (spec.stopSignal ?? 'SIGTERM') as NodeJS.Signals;
  signalPid(pid, signal);
  const timeoutMs = spec.stopTimeoutMs ?? 15_000;
  let escalated = false;
  if (!(await waitUntil(() => !isPidAlive(pid), { timeoutMs, intervalMs: 25 }))) {
    escalated = true;
    signalGroup(pid, 'SIGKILL');
    if (!(await waitUntil(() => !isPidAlive(pid), { timeoutMs: 5000, intervalMs: 25 }))) {
      throw new Error(
        `service-ctl: ${spec.name} (pid ${pid}) still alive after ${signal} and SIGKILL\n${formatLogTail(spec.logFile, await tailFile(spec.logFile))}`,
      );
    }
  }
  // Anything left in its process group (e.g. a forked saver) goes too. Group only: the pid itself
  // is gone and may already belong to someone else.
  signalGroupOnly(pid, 'SIGKILL');
  await rm(spec.pidFile, { force: true });
  return { wasRunning: true, pid, escalated };
}

let tsxLoader: string | undefined;

function tsxLoaderUrl(): string {
  if (tsxLoader === undefined) {
    const require = createRequire(import.meta.url);
    let resolved: string;
    try {
      resolved = require.resolve('tsx');
    } catch (error) {
      throw new Error('service-ctl: running from .ts source needs the tsx package (devDependency), which cannot be resolved', {
        cause: error,
      });
    }
    tsxLoader = pathToFileURL(resolved).href;
  }
  return tsxLoader;
}

/**
 * The argv that runs this controller: `[node, dist/sandbox/service-ctl.js, action, spec]` when
 * compiled, `[node, --import, <tsx loader>, source/sandbox/service-ctl.ts, action, spec]` from source.
 * Works from any cwd.
 */
export function serviceCtlArgv(action: ServiceAction, specPath: string): string[] {
  const self = entryFile(import.meta.url, 'sandbox/service-ctl.js');
  if (/\.[cm]?ts$/.test(self)) return [process.execPath, '--import', tsxLoaderUrl(), self, action, specPath];
  return [process.execPath, self, action, specPath];
}

function out(text: string): void {
  process.stdout.write(`${text}\n`);
}

function err(text: string): void {
  process.stderr.write(`${text}\n`);
}

/** The CLI. Returns the exit code. */
export async function serviceCtlMain(argv: readonly string[]): Promise<number> {
  const [action, specPath, ...rest] = argv;
  if ((action !== 'start' && action !== 'stop' && action !== 'status') || specPath === undefined || rest.length > 0) {
    err('usage: service-ctl start|stop|status <spec.json>');
    return 2;
  }
  let spec: ServiceSpec;
  try {
    spec = await readServiceSpec(specPath);
  } catch (error) {
    err((error as Error).message);
    return action === 'status' ? 4 : 2;
  }
  try {
    switch (action) {
      case 'start': {
        const result = await startService(spec);
        out(result.alreadyRunning ? `${spec.name} already running (pid ${result.pid})` : `${spec.name} started (pid ${result.pid})`);
        return 0;
      }
      case 'stop': {
        const result = await stopService(spec);
        out(
          result.wasRunning
            ? `${spec.name} stopped (pid ${result.pid}${result.escalated ? ', needed SIGKILL' : ''})`
            : `${spec.name} not running`,
        );
        return 0;
      }
      case 'status': {
        const result = await serviceStatus(spec);
        out(result.running ? `${spec.name} running (pid ${result.pid})` : `${spec.name} not running`);
        return result.running ? 0 : SERVICE_STATUS_NOT_RUNNING;
      }
    }
  } catch (error) {
    err((error as Error).message);
    return 1;
  }
}

function invokedDirectly(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (invokedDirectly()) {
  // process.exit: keep-alive sockets from the readiness probe must not hold the controller open.
  void serviceCtlMain(process.argv.slice(2)).then((code) => process.exit(code));
}
