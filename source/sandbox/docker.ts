import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, readdirSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { guardOnExit, keepSandboxFiles } from './exit-guard.js';
import { cleanEnv, formatLogTail, isPidAlive, readPidFileSync, sleep, tailFile, whichSync } from './process-utils.js';

/**
 * A private Docker engine for tests, drills and the demo: `dockerd` on its own unix socket, data
 * root, exec root and cgroup parent inside a temp dir, with no bridge, no iptables and no NAT
 * (every container runs with `--network host` on loopback ports). Nothing is pulled: images are
 * made locally with `docker import` of a tiny root filesystem (see docker-deployment.ts).
 *
 * Which client: Debian's docker.io ships `/usr/bin/docker` (the same version as its dockerd);
 * another client on PATH (e.g. /usr/local/bin/docker 28.x) may speak a newer API. The sandbox uses
 * the client next to the daemon it starts, explicitly, and exposes it as `client` so callers can
 * put exactly that one on a test PATH.
 *
 * Cleanup: `dispose()` removes every container, stops the daemon, unmounts what it left mounted
 * under its root and removes the root. The exit guard does the same synchronously (SIGKILL of the
 * containers' processes, their shims, containerd and dockerd; lazy unmounts) when the process dies.
 */

export interface StartDockerOptions {
  /** Parent of the temp dir (default os.tmpdir()). The socket path must stay under 108 bytes. */
  baseDir?: string;
  /** How long to wait for the daemon to answer /_ping (default 60 s). */
  startTimeoutMs?: number;
}

export interface DockerRunResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export interface DockerDaemon {
  readonly rootDir: string;
  /** unix://<rootDir>/docker.sock */
  readonly host: string;
  readonly socket: string;
  /** The docker client binary that matches this daemon (absolute path). */
  readonly client: string;
  readonly dockerd: string;
  readonly logFile: string;
  /** Cgroup parent of every container of this daemon (cgroupfs driver). */
  readonly cgroupParent: string;
  /** DOCKER_HOST and DOCKER_CONFIG (an empty client config dir: no credential helpers, no contexts). */
  env(): Record<string, string>;
  /** Runs the client; rejects with its stderr unless `reject: false`. */
  docker(
    args: string[],
    opts?: { input?: string | Buffer; reject?: boolean; timeoutMs?: number; env?: Record<string, string>; stdoutFile?: string },
  ): Promise<DockerRunResult>;
  pid(): number | undefined;
  /** Removes every container and volume, stops the daemon, removes rootDir. Idempotent. */
  dispose(): Promise<void>;
}

/** The docker client for a dockerd binary: the one installed beside it, else PATH. */
export function dockerClientFor(dockerd: string): string {
  const sibling = join(dockerd.replace(/\/sbin\/dockerd$/, '/bin'), 'docker');
  if (existsSync(sibling)) return sibling;
  const onPath = whichSync('docker');
  if (!onPath) throw new Error(`docker sandbox: no docker client next to ${dockerd} and none on PATH; install Debian's docker.io`);
  return onPath;
}

function findDockerd(): string {
  const found = whichSync('dockerd') ?? (existsSync('/usr/sbin/dockerd') ? '/usr/sbin/dockerd' : undefined);
  if (!found) throw new Error("docker sandbox: dockerd not found (PATH, /usr/sbin); install Debian's docker.io (scripts/setup.sh does)");
  return found;
}

function ping(socket: string, timeoutMs = 2000): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath: socket, path: '/_ping', method: 'GET', timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
    req.on('error', () => resolve(false));
    req.end();
  });
}

/** Mount points at or below `dir` (deepest first), from /proc/self/mountinfo. */
export function mountsUnder(dir: string): string[] {
  let text = '';
  try {
    text = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  const points = text
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((p): p is string => p !== undefined)
    .map((p) => p.replace(/\\040/g, ' '))
    .filter((p) => p === dir || p.startsWith(prefix));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

function unmountAllSync(dir: string): string[] {
  for (let round = 0; round < 3; round += 1) {
    const points = mountsUnder(dir);
    if (points.length === 0) return [];
    for (const p of points) spawnSync('umount', ['-l', p], { stdio: 'ignore' });
  }
  return mountsUnder(dir);
}

/** Pids of the processes of this daemon: containers (by cgroup), shims and containerd (by cmdline), dockerd. */
function daemonPidsSync(rootDir: string, cgroupParent: string, dockerdPid: number | undefined): number[] {
  const pids = new Set<number>();
  const cgroupRoot = `/sys/fs/cgroup/pids${cgroupParent}`;
  const walk = (dir: string): void => {
    let entries: string[] = [];
    try {
      entries = readdirSync(dir);
    } catch {
      return;
    }
    for (const name of entries) {
      if (name === 'cgroup.procs') {
        try {
          for (const line of readFileSync(join(dir, name), 'utf8').split('\n')) if (/^\d+$/.test(line)) pids.add(Number(line));
        } catch {
          // gone
        }
      }
    }
    for (const name of entries) {
      if (!name.includes('.') && existsSync(join(dir, name, 'cgroup.procs'))) walk(join(dir, name));
    }
  };
  walk(cgroupRoot);
  let procs: string[] = [];
  try {
    procs = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  } catch {
    procs = [];
  }
  for (const p of procs) {
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
      if (cmd.includes(rootDir)) pids.add(Number(p));
    } catch {
      // gone
    }
  }
  if (dockerdPid !== undefined) pids.add(dockerdPid);
  pids.delete(process.pid);
  return [...pids];
}

/** Starts a private dockerd; throws with the daemon's own log when it cannot start. */
export async function startDockerDaemon(options: StartDockerOptions = {}): Promise<DockerDaemon> {
  const dockerd = findDockerd();
  const client = dockerClientFor(dockerd);
  const baseDir = options.baseDir ?? tmpdir();
  await mkdir(baseDir, { recursive: true });
  const rootDir = await mkdtemp(join(baseDir, 'ra-dk-'));
  const socket = join(rootDir, 'docker.sock');
  if (Buffer.byteLength(socket) > 100)
    throw new Error(`docker sandbox: socket path ${socket} is too long for a unix socket; use a shorter baseDir`);
  const host = `unix://${socket}`;
  const logFile = join(rootDir, 'dockerd.log');
  const pidFile = join(rootDir, 'dockerd.pid');
  const configDir = join(rootDir, 'client-config');
  const cgroupParent = `/ra-docker-${randomBytes(5).toString('hex')}`;
  await mkdir(configDir);
  await writeFile(join(configDir, 'config.json'), '{}\n');
  let child: ReturnType<typeof spawn> | undefined;
  let childExit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const pid = (): number | undefined => readPidFileSync(pidFile) ?? child?.pid;

  const beforeRemove = (): void => {
    const left = unmountAllSync(rootDir);
    if (left.length > 0) throw new Error(`still mounted: ${left.join(', ')}`);
  };
  const unguard = guardOnExit({
    label: 'dockerd',
    pids: () => daemonPidsSync(rootDir, cgroupParent, pid()),
    pidOnly: true,
    dirs: [rootDir],
    beforeRemove,
  });

  const env = (): Record<string, string> => ({ DOCKER_HOST: host, DOCKER_CONFIG: configDir });
  const docker: DockerDaemon['docker'] = async (args, opts = {}) => {
    const result = await execa(client, args, {
      env: cleanEnv({ ...env(), ...(opts.env ?? {}) }),
      extendEnv: false,
      reject: false,
      ...(opts.input !== undefined ? { input: opts.input } : { stdin: 'ignore' as const }),
      ...(opts.stdoutFile ? { stdout: { file: opts.stdoutFile } } : {}),
      timeout: opts.timeoutMs ?? 120_000,
      encoding: 'utf8',
    });
    const out = { stdout: typeof result.stdout === 'string' ? result.stdout : '', stderr: result.stderr, exitCode: result.exitCode ?? -1 };
    if ((opts.reject ?? true) && result.exitCode !== 0) {
      throw new Error(
        `docker ${args.join(' ')} failed (${result.timedOut ? 'timed out' : `exit ${result.exitCode ?? result.signal}`}): ${result.stderr.trim() || out.stdout.trim()}`,
      );
    }
    return out;
  };

  const args = [
    `--host=${host}`,
    `--data-root=${join(rootDir, 'data')}`,
    `--exec-root=${join(rootDir, 'exec')}`,
    `--pidfile=${pidFile}`,
    `--cgroup-parent=${cgroupParent}`,
    '--bridge=none',
    '--iptables=false',
    '--ip-masq=false',
    '--userland-proxy=false',
    '--log-level=warn',
    '--shutdown-timeout=5',
    ...(process.env['RESTORE_ASSISTANT_DOCKER_STORAGE_DRIVER']
      ? [`--storage-driver=${process.env['RESTORE_ASSISTANT_DOCKER_STORAGE_DRIVER']}`]
      : []),
  ];

  const forceStop = async (): Promise<void> => {
    for (const p of daemonPidsSync(rootDir, cgroupParent, pid())) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // gone
      }
    }
    const deadline = Date.now() + 10_000;
    while (daemonPidsSync(rootDir, cgroupParent, pid()).some(isPidAlive) && Date.now() < deadline) await sleep(50);
  };

  const removeRoot = async (): Promise<void> => {
    const left = unmountAllSync(rootDir);
    if (left.length > 0) throw new Error(`docker sandbox: not removing ${rootDir}: still mounted: ${left.join(', ')}`);
    if (!keepSandboxFiles()) await rm(rootDir, { recursive: true, force: true, maxRetries: 3 });
    spawnSync(
      'sh',
      [
        '-c',
        'for d in /sys/fs/cgroup/*"$1"; do [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null; done; true',
        'sh',
        cgroupParent,
      ],
      { stdio: 'ignore' },
    );
  };

  let disposed: Promise<void> | undefined;
  const dispose = (): Promise<void> => {
    disposed ??= (async () => {
      const errors: string[] = [];
      if (await ping(socket)) {
        const ids = (await docker(['ps', '-aq'], { reject: false })).stdout.split('\n').filter(Boolean);
        if (ids.length > 0) await docker(['rm', '-f', '-v', ...ids], { reject: false, timeoutMs: 60_000 });
        await docker(['volume', 'prune', '-f'], { reject: false });
      }
      const p = pid();
      if (p !== undefined && isPidAlive(p)) {
        process.kill(p, 'SIGTERM');
        const deadline = Date.now() + 20_000;
        while (isPidAlive(p) && Date.now() < deadline) await sleep(50);
      }
      await forceStop();
      try {
        await removeRoot();
      } catch (error) {
        errors.push((error as Error).message);
      }
      unguard();
      if (errors.length > 0) throw new Error(errors.join('; '));
    })();
    return disposed;
  };

  try {
    const log = openSync(logFile, 'a');
    try {
      child = spawn(dockerd, args, {
        detached: true,
        stdio: ['ignore', log, log],
        env: cleanEnv({ PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin' }),
      });
    } finally {
      closeSync(log);
    }
    child.once('exit', (code, signal) => {
      childExit = { code, signal };
    });
    child.unref();
    const deadline = Date.now() + (options.startTimeoutMs ?? 60_000);
    for (;;) {
      if (await ping(socket)) break;
      if (childExit) {
        throw new Error(
          `docker sandbox: ${dockerd} ${args.join(' ')} exited (${childExit.code ?? childExit.signal}) before answering on ${socket}\n${formatLogTail('dockerd.log', await tailFile(logFile, 40))}`,
        );
      }
      if (Date.now() > deadline) {
        throw new Error(
          `docker sandbox: ${dockerd} did not answer on ${socket} within ${options.startTimeoutMs ?? 60_000} ms\n${formatLogTail('dockerd.log', await tailFile(logFile, 40))}`,
        );
      }
      await sleep(100);
    }
  } catch (error) {
    await forceStop().catch(() => undefined);
    await removeRoot().catch(() => undefined);
    unguard();
    throw error;
  }

  return { rootDir, host, socket, client, dockerd, logFile, cgroupParent, env, docker, pid, dispose };
}

/**
 * A directory of symlinks to exactly `names` (resolved on the current PATH, or given as absolute
 * paths by `links`): a PATH like the audited story-portal host's, which has docker but no psql,
 * pg_restore, redis-cli or redis-check-rdb.
 */
export async function restrictedPathDir(dir: string, names: readonly string[], links: Record<string, string> = {}): Promise<string> {
  await mkdir(dir, { recursive: true });
  await chmod(dir, 0o755);
  for (const name of names) {
    const target = links[name] ?? whichSync(name);
    if (!target) throw new Error(`restrictedPathDir: ${name} is not on PATH`);
    await symlink(target, join(dir, name));
  }
  for (const [name, target] of Object.entries(links)) {
    if (!names.includes(name)) await symlink(target, join(dir, name));
  }
  return dir;
}
