import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, realpathSync } from 'node:fs';
import { appendFile, chmod, chown, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { execa } from 'execa';
import { guardOnExit, keepSandboxFiles } from './exit-guard.js';
import { scratchRestoreConf } from './pg-tuning.js';
import { withFreePort, type PortRetryOptions } from './ports.js';
import { cleanEnv, formatLogTail, isPidAlive, isRoot, lookupOsUser, signalPid, tailFile, waitUntil, whichSync } from './process-utils.js';

export interface StartPostgresOptions {
  /** Parent for the temp dir (default os.tmpdir()). Must be traversable by the `postgres` OS user when running as root. */
  baseDir?: string;
  /** Superuser password (default: random). TCP and socket connections use scram-sha-256. */
  password?: string;
  /** Keep fsync/synchronous_commit/full_page_writes on (default false: fast, not crash-safe). */
  durable?: boolean;
  /** Extra postgresql.conf lines (`key = value`). */
  extraConf?: string[];
  /** Extra initdb arguments, e.g. `--wal-segsize=1` (small WAL segments for point-in-time tests). */
  initdbArgs?: string[];
  /** A cluster restores go into (drill scratch, demo world, bench): sandbox/pg-tuning.ts's load-speed settings (implies not durable). */
  scratch?: boolean;
  /** Where the port comes from (tests: an occupied one first); a bind clash retries on a new port (sandbox/ports.ts). */
  pickPort?: PortRetryOptions['pickPort'];
}

export interface PostgresSandbox {
  readonly host: string;
  readonly port: number;
  /** The superuser ('postgres'). */
  readonly user: string;
  readonly password: string;
  /** The temp dir holding everything below (removed by dispose()). */
  readonly rootDir: string;
  readonly dataDir: string;
  readonly socketDir: string;
  readonly logFile: string;
  readonly binDir: string;
  readonly majorVersion: number;
  /** OS user the server runs as ('postgres' when started by root, else the current user). */
  readonly osUser: string;
  /** PGHOST/PGPORT/PGUSER/PGPASSWORD for client tools (TCP, password auth). */
  env(): Record<string, string>;
  /** Absolute path of a client/server binary from binDir (falls back to the bare name on PATH). */
  bin(name: string): string;
  /** Runs SQL through psql (-X -A -t, ON_ERROR_STOP) over TCP; returns stdout without the trailing newline. */
  psql(sql: string, db?: string): Promise<string>;
  /** Postmaster pid while running (from postmaster.pid). */
  pid(): number | undefined;
  isRunning(): boolean;
  /** Starts the server again after stop() (pg_ctl start -w). */
  start(): Promise<void>;
  /** pg_ctl stop -m fast (idempotent). Files stay until dispose(). */
  stop(): Promise<void>;
  /** stop() and remove rootDir (idempotent). */
  dispose(): Promise<void>;
}

export interface PostgresBinaries {
  binDir: string;
  majorVersion: number;
}

/**
 * initdb/pg_ctl: PATH first (symlinks resolved, so /usr/local/bin/initdb -> /usr/lib/postgresql/15/bin),
 * else the highest /usr/lib/postgresql/<major>/bin.
 */
export async function findPostgresBinaries(): Promise<PostgresBinaries> {
  let binDir: string | undefined;
  const initdb = whichSync('initdb');
  if (initdb) {
    const real = dirname(realpathSync(initdb));
    if (existsSync(join(real, 'pg_ctl'))) binDir = real;
    else if (whichSync('pg_ctl')) binDir = dirname(initdb);
  }
  if (!binDir) {
    const root = '/usr/lib/postgresql';
    const majors = existsSync(root)
      ? readdirSync(root)
          .filter((name) => /^\d+(\.\d+)?$/.test(name) && existsSync(join(root, name, 'bin', 'initdb')))
          .sort((a, b) => Number(b) - Number(a))
      : [];
    if (majors[0] !== undefined) binDir = join(root, majors[0], 'bin');
  }
  if (!binDir) {
    throw new Error('PostgreSQL sandbox: initdb/pg_ctl not found on PATH nor in /usr/lib/postgresql/*/bin (install postgresql)');
  }
  const pgCtl = join(binDir, 'pg_ctl');
  const { stdout } = await execa(existsSync(pgCtl) ? pgCtl : 'pg_ctl', ['--version']);
  const match = /\(PostgreSQL\)\s+(\d+)/.exec(stdout);
  if (!match?.[1]) throw new Error(`PostgreSQL sandbox: cannot read the major version from ${pgCtl} --version: ${stdout}`);
  return { binDir, majorVersion: Number(match[1]) };
}

function confString(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

/** Runs initdb/pg_ctl as the server's OS user: via `runuser -u postgres --` when we are root. */
function asServerUser(asRoot: boolean, file: string, args: string[]): [string, string[]] {
  return asRoot ? ['runuser', ['-u', 'postgres', '--', file, ...args]] : [file, args];
}

async function readPostmasterPid(dataDir: string): Promise<number | undefined> {
  try {
    const pid = Number((await readFile(join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Starts a throwaway PostgreSQL cluster on 127.0.0.1:<free port> in a temp dir. When another
 * process binds the port first ("could not bind IPv4 address"), the half-made cluster is removed
 * and a new one tried on another port (up to PORT_ATTEMPTS times).
 */
export async function startPostgres(options: StartPostgresOptions = {}): Promise<PostgresSandbox> {
  return withFreePort('PostgreSQL sandbox', (port) => startPostgresOn(port, options), {
    ...(options.pickPort ? { pickPort: options.pickPort } : {}),
  });
}

async function startPostgresOn(port: number, options: StartPostgresOptions): Promise<PostgresSandbox> {
  const { binDir, majorVersion } = await findPostgresBinaries();
  const bin = (name: string): string => {
    const candidate = join(binDir, name);
    return existsSync(candidate) ? candidate : name;
  };
  const asRoot = isRoot();
  const osUser = asRoot ? 'postgres' : (process.env['USER'] ?? String(process.getuid?.() ?? ''));
  const password = options.password ?? `pw-${randomBytes(12).toString('base64url')}`;
  const host = '127.0.0.1';

  const baseDir = options.baseDir ?? tmpdir();
  await mkdir(baseDir, { recursive: true });
  const rootDir = await mkdtemp(join(baseDir, 'ra-pg-'));
  const dataDir = join(rootDir, 'data');
  const socketDir = join(rootDir, 'socket');
  const logFile = join(rootDir, 'postgres.log');
  let lastPid: number | undefined;
  const unguard = guardOnExit({
    label: 'postgres',
    // SIGQUIT = immediate shutdown: the postmaster takes its backends down with it.
    pids: () => (lastPid === undefined ? [] : [lastPid]),
    signal: 'SIGQUIT',
    pidOnly: true,
    dirs: [rootDir],
  });

  const fail = async (what: string, error: unknown): Promise<never> => {
    const tail = formatLogTail(logFile, await tailFile(logFile, 40));
    const detail = error instanceof Error ? error.message : String(error);
    const pid = await readPostmasterPid(dataDir);
    if (pid !== undefined && isPidAlive(pid)) {
      signalPid(pid, 'SIGQUIT');
      await waitUntil(() => !isPidAlive(pid), { timeoutMs: 5000 });
    }
    if (!keepSandboxFiles()) await rm(rootDir, { recursive: true, force: true });
    unguard();
    throw new Error(`PostgreSQL sandbox (${binDir}, port ${port}, dir ${rootDir}): ${what}: ${detail}\n${tail}`, { cause: error });
  };

  await mkdir(socketDir);
  const pwFile = join(rootDir, 'pwfile');
  await writeFile(pwFile, `${password}\n`, { mode: 0o600 });
  if (asRoot) {
    const user = lookupOsUser('postgres');
    await chmod(rootDir, 0o700);
    for (const path of [rootDir, socketDir, pwFile]) await chown(path, user.uid, user.gid);
    // The baseDir given for sandboxes gets o+x (traverse only, no listing) if it lacks it, e.g. a
    // 0700 mkdtemp dir; directories above it are left alone and reported.
    const base = resolve(baseDir);
    const baseStat = await stat(base);
    if (baseStat.uid !== user.uid && (baseStat.mode & 0o001) === 0) await chmod(base, (baseStat.mode & 0o7777) | 0o001);
    try {
      await execa('runuser', ['-u', 'postgres', '--', 'test', '-w', rootDir, '-a', '-x', rootDir]);
    } catch (error) {
      const blocked: string[] = [];
      for (let dir = dirname(base); ; dir = dirname(dir)) {
        const info = await stat(dir);
        if (info.uid !== user.uid && (info.mode & 0o001) === 0) blocked.push(`${dir} (mode ${(info.mode & 0o777).toString(8)})`);
        if (dir === dirname(dir)) break;
      }
      await fail(
        `OS user postgres (uid ${user.uid}) cannot reach ${rootDir}: initdb/postgres run as postgres because they refuse root. ` +
          `Not traversable by others: ${blocked.join(', ') || 'unknown'}; use a baseDir under /tmp or chmod o+x those`,
        error,
      );
    }
  }

  try {
    const [file, args] = asServerUser(asRoot, bin('initdb'), [
      '-D',
      dataDir,
      '-U',
      'postgres',
      `--pwfile=${pwFile}`,
      '--auth-local=scram-sha-256',
      '--auth-host=scram-sha-256',
      '--encoding=UTF8',
      '--locale=C.UTF-8',
      '--no-sync',
      '--no-instructions',
      ...(options.initdbArgs ?? []),
    ]);
    await execa(file, args, { cwd: rootDir, env: cleanEnv({ LC_ALL: 'C.UTF-8' }) });
  } catch (error) {
    await fail('initdb failed', error);
  } finally {
    await rm(pwFile, { force: true });
  }

  const durable = !options.scratch && (options.durable ?? false);
  const conf = [
    '',
    '# restore-assistant sandbox',
    `listen_addresses = ${confString(host)}`,
    `port = ${port}`,
    `unix_socket_directories = ${confString(socketDir)}`,
    'shared_buffers = 32MB',
    'max_connections = 40',
    "password_encryption = 'scram-sha-256'",
    "timezone = 'UTC'",
    "log_timezone = 'UTC'",
    "log_line_prefix = '%m [%p] %q%u@%d '",
    'logging_collector = off',
    ...(durable ? [] : ['fsync = off', 'synchronous_commit = off', 'full_page_writes = off']),
    ...(options.scratch ? scratchRestoreConf() : []),
    ...(options.extraConf ?? []),
    '',
  ].join('\n');
  await appendFile(join(dataDir, 'postgresql.conf'), conf);

  const env = (): Record<string, string> => ({ PGHOST: host, PGPORT: String(port), PGUSER: 'postgres', PGPASSWORD: password });
  const clientEnv = (): Record<string, string> => cleanEnv({ ...env(), PGCONNECT_TIMEOUT: '10' });

  const pgCtl = async (args: string[]): Promise<void> => {
    const [file, argv] = asServerUser(asRoot, bin('pg_ctl'), args);
    await execa(file, argv, { cwd: rootDir, env: cleanEnv() });
  };

  let running = false;
  let created = false;
  const start = async (): Promise<void> => {
    if (running && lastPid !== undefined && isPidAlive(lastPid)) return;
    try {
      await pgCtl(['start', '-D', dataDir, '-l', logFile, '-w', '-t', '60', '-s']);
    } catch (error) {
      // First start: clean everything up. A restart (e.g. after a restore into dataDir): keep the files to inspect.
      if (!created) await fail('pg_ctl start failed', error);
      const detail = (error as { stderr?: string }).stderr?.trim() || (error as Error).message;
      throw new Error(
        `PostgreSQL sandbox (${binDir}, port ${port}, dir ${rootDir}): pg_ctl start failed: ${detail}\n${formatLogTail(logFile, await tailFile(logFile, 40))}`,
        { cause: error },
      );
    }
    lastPid = await readPostmasterPid(dataDir);
    running = true;
  };

  const psql = async (sql: string, db = 'postgres'): Promise<string> => {
    try {
      const { stdout } = await execa(
        bin('psql'),
        ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', host, '-p', String(port), '-U', 'postgres', '-d', db, '-f', '-'],
        { input: sql, env: clientEnv(), extendEnv: false },
      );
      return stdout;
    } catch (error) {
      const stderr = (error as { stderr?: string }).stderr ?? (error as Error).message;
      throw new Error(`psql on ${host}:${port} db ${JSON.stringify(db)} failed: ${stderr.trim()}`, { cause: error });
    }
  };

  await start();
  try {
    await psql('SELECT 1');
  } catch (error) {
    await fail('server started but a password (scram) login over TCP failed', error);
  }
  created = true;

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      const pid = await readPostmasterPid(dataDir);
      if (pid !== undefined && isPidAlive(pid)) {
        try {
          await pgCtl(['stop', '-D', dataDir, '-m', 'fast', '-w', '-t', '30', '-s']);
        } catch (error) {
          // Fall back to an immediate shutdown, then SIGKILL.
          signalPid(pid, 'SIGQUIT');
          if (!(await waitUntil(() => !isPidAlive(pid), { timeoutMs: 5000 }))) signalPid(pid, 'SIGKILL');
          if (!(await waitUntil(() => !isPidAlive(pid), { timeoutMs: 5000 }))) {
            throw new Error(
              `PostgreSQL sandbox (port ${port}, ${dataDir}): pg_ctl stop failed and postmaster ${pid} survived SIGKILL: ${(error as Error).message}`,
              { cause: error },
            );
          }
        }
      }
      running = false;
    })().finally(() => {
      stopping = undefined;
    });
    return stopping;
  };

  let disposed: Promise<void> | undefined;
  const dispose = (): Promise<void> => {
    disposed ??= (async () => {
      await stop();
      if (!keepSandboxFiles()) await rm(rootDir, { recursive: true, force: true, maxRetries: 3 });
      unguard();
    })();
    return disposed;
  };

  return {
    host,
    port,
    user: 'postgres',
    password,
    rootDir,
    dataDir,
    socketDir,
    logFile,
    binDir,
    majorVersion,
    osUser,
    env,
    bin,
    psql,
    pid: () => (running ? lastPid : undefined),
    isRunning: () => running && lastPid !== undefined && isPidAlive(lastPid),
    start,
    stop,
    dispose,
  };
}
