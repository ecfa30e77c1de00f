import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { guardOnExit, serviceSandboxLifecycle } from './exit-guard.js';
import { withFreePort, type PortRetryOptions } from './ports.js';
import { cleanEnv, formatLogTail, readPidFileSync, requireBinary, sleep, tailFile } from './process-utils.js';
import { respCommand, respCommands, replyText, type RespReply, type RespTarget } from './resp.js';
import { serviceStatus, startService, stopService, writeServiceSpec, type ServiceSpec } from './service-ctl.js';

export interface StartRedisOptions {
  /** appendonly yes (Redis 7: multi-part AOF in <dir>/<appenddirname>/). Default false (RDB only, like story-portal). */
  appendonly?: boolean;
  /** requirepass (default: none, like the audited deployments' redis-cli calls). */
  password?: string;
  baseDir?: string;
  /** `save` line (default the audited production value "3600 1 300 100 60 10000"; "" disables snapshots). */
  save?: string;
  /** Extra redis.conf lines. */
  extraConf?: string[];
  /** Where the port comes from (tests: an occupied one first); a bind clash retries on a new port (sandbox/ports.ts). */
  pickPort?: PortRetryOptions['pickPort'];
}

export interface RedisSandbox {
  readonly host: string;
  readonly port: number;
  readonly password: string | undefined;
  /** The temp dir holding everything (removed by dispose()). */
  readonly rootDir: string;
  /** Redis `dir` (dump.rdb and the AOF dir live here). */
  readonly dir: string;
  readonly dbfilename: string;
  readonly appendonly: boolean;
  readonly appenddirname: string;
  readonly confPath: string;
  /** service-ctl spec (JSON file) that runs `redis-server confPath` in the foreground. */
  readonly spec: string;
  readonly pidFile: string;
  readonly logFile: string;
  readonly serverBinary: string;
  /** Path of the RDB file: join(dir, dbfilename). */
  readonly rdbPath: string;
  /** Path of the AOF directory: join(dir, appenddirname). */
  readonly aofDir: string;
  /** Starts it (no-op if running) and waits until it answers PING (not LOADING). */
  start(): Promise<void>;
  /** SIGTERM via service-ctl (Redis saves on shutdown when save points are set). Idempotent. */
  stop(): Promise<void>;
  isRunning(): Promise<boolean>;
  pid(): Promise<number | undefined>;
  /** redis-cli (raw output, as an operator would run it). Note: redis-cli exits 0 on error replies. */
  cli(args: string[], db?: number): Promise<string>;
  /** One command over RESP; error replies throw. */
  command(args: (string | number | Buffer)[], db?: number): Promise<RespReply>;
  /** Pipelined commands over RESP; error replies are returned as RespError values. */
  commands(commands: (string | number | Buffer)[][], db?: number): Promise<RespReply[]>;
  /** BGSAVE and wait until it finished (INFO persistence rdb_saves advanced, status ok). */
  bgsave(timeoutMs?: number): Promise<void>;
  /** { host, port, password } for respCommands. */
  target(): RespTarget;
  /** stop() and remove rootDir. Idempotent. */
  dispose(): Promise<void>;
}

/** Quotes a redis.conf argument (double quotes, backslash escapes). */
function confArg(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

export function parseRedisInfo(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const index = line.indexOf(':');
    if (index > 0 && !line.startsWith('#')) fields[line.slice(0, index)] = line.slice(index + 1);
  }
  return fields;
}

/** BGSAVE, then waits for completion (rdb_saves advances, no bgsave in progress). Errors carry the log tail. */
export async function redisBgsave(redis: Pick<RedisSandbox, 'target' | 'logFile' | 'port'>, timeoutMs = 30_000): Promise<void> {
  const target = redis.target();
  const info = async () => parseRedisInfo(replyText(await respCommand(target, ['INFO', 'persistence'])));
  const before = Number((await info())['rdb_saves'] ?? 0);
  const deadline = Date.now() + timeoutMs;
  // BGSAVE SCHEDULE: if an AOF rewrite is running, the save starts right after it instead of failing.
  const [reply] = await respCommands(target, [['BGSAVE', 'SCHEDULE']]);
  if (reply instanceof Error && !/already in progress/i.test(reply.message)) {
    throw new Error(`redis 127.0.0.1:${redis.port}: BGSAVE failed: ${reply.message}`);
  }
  for (;;) {
    const now = await info();
    if (Number(now['rdb_saves'] ?? 0) > before && now['rdb_bgsave_in_progress'] === '0') {
      if (now['rdb_last_bgsave_status'] !== 'ok') {
        throw new Error(
          `redis 127.0.0.1:${redis.port}: BGSAVE finished with status ${now['rdb_last_bgsave_status']}\n${formatLogTail(redis.logFile, await tailFile(redis.logFile))}`,
        );
      }
      return;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `redis 127.0.0.1:${redis.port}: BGSAVE not finished after ${timeoutMs} ms (rdb_saves ${before} -> ${now['rdb_saves']}, in progress ${now['rdb_bgsave_in_progress']})\n${formatLogTail(redis.logFile, await tailFile(redis.logFile))}`,
      );
    }
    await sleep(25);
  }
}

/** Starts a throwaway redis-server on 127.0.0.1:<free port>, under service-ctl (detached, pidfile); a port clash retries on a new port. */
export async function startRedis(options: StartRedisOptions = {}): Promise<RedisSandbox> {
  return withFreePort('Redis sandbox', (port) => startRedisOn(port, options), {
    ...(options.pickPort ? { pickPort: options.pickPort } : {}),
  });
}

async function startRedisOn(port: number, options: StartRedisOptions): Promise<RedisSandbox> {
  const serverBinary = requireBinary('redis-server', 'Redis sandbox');
  const cliBinary = requireBinary('redis-cli', 'Redis sandbox');
  const host = '127.0.0.1';
  const baseDir = options.baseDir ?? tmpdir();
  await mkdir(baseDir, { recursive: true });
  const rootDir = await mkdtemp(join(baseDir, 'ra-redis-'));
  const dir = join(rootDir, 'data');
  const confPath = join(rootDir, 'redis.conf');
  const specPath = join(rootDir, 'redis.service.json');
  const pidFile = join(rootDir, 'redis.pid');
  const logFile = join(rootDir, 'redis.log');
  const dbfilename = 'dump.rdb';
  const appenddirname = 'appendonlydir';
  const appendonly = options.appendonly ?? false;
  const password = options.password;
  await mkdir(dir);

  const unguard = guardOnExit({
    label: 'redis',
    // Read at exit time: whatever pid the (possibly restarted) service has now.
    pids: () => {
      const pid = readPidFileSync(pidFile);
      return pid === undefined ? [] : [pid];
    },
    dirs: [rootDir],
  });

  const conf = [
    '# restore-assistant sandbox',
    `bind ${host}`,
    `port ${port}`,
    'protected-mode yes',
    'daemonize no',
    'supervised no',
    'logfile ""',
    'loglevel notice',
    'databases 16',
    `dir ${confArg(dir)}`,
    `dbfilename ${confArg(dbfilename)}`,
    `save ${confArg(options.save ?? '3600 1 300 100 60 10000')}`,
    `appendonly ${appendonly ? 'yes' : 'no'}`,
    `appenddirname ${confArg(appenddirname)}`,
    'appendfilename "appendonly.aof"',
    'appendfsync everysec',
    ...(password === undefined ? [] : [`requirepass ${confArg(password)}`]),
    ...(options.extraConf ?? []),
    '',
  ].join('\n');
  await writeFile(confPath, conf, { mode: 0o600 });

  const spec: ServiceSpec = {
    name: `redis-sandbox-${port}`,
    argv: [serverBinary, confPath],
    cwd: rootDir,
    pidFile,
    logFile,
    ready: { tcp: { host, port } },
    readyTimeoutMs: 20_000,
    stopSignal: 'SIGTERM',
    stopTimeoutMs: 20_000,
  };
  await writeServiceSpec(specPath, spec);

  const target = (): RespTarget => ({ host, port, password });

  const waitForPing = async (): Promise<void> => {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const [reply] = await respCommands(target(), [['PING']]).catch((error: Error) => [error] as const);
      if (Buffer.isBuffer(reply) && reply.toString() === 'PONG') return;
      if (Date.now() > deadline) {
        const why = reply instanceof Error ? reply.message : String(reply);
        throw new Error(
          `Redis sandbox (port ${port}, ${rootDir}): no PONG after start: ${why}\n${formatLogTail(logFile, await tailFile(logFile))}`,
        );
      }
      await sleep(25); // LOADING while it reads the RDB/AOF
    }
  };

  const start = async (): Promise<void> => {
    try {
      await startService(spec);
    } catch (error) {
      throw new Error(`Redis sandbox (${serverBinary}, port ${port}, ${rootDir}): start failed: ${(error as Error).message}`, {
        cause: error,
      });
    }
    await waitForPing();
  };

  const stop = async (): Promise<void> => {
    await stopService(spec);
  };

  /** A refused connection says why: the server log's tail (a Redis that exited logs the reason). */
  const withLogOnRefusal = async <T>(p: Promise<T>): Promise<T> => {
    try {
      return await p;
    } catch (error) {
      if (!/ECONNREFUSED|connection closed/.test((error as Error).message)) throw error;
      const alive = (await serviceStatus(spec)).running ? 'its pidfile names a live process' : 'no live process in its pidfile';
      throw new Error(`${(error as Error).message} (${alive})\n${formatLogTail(logFile, await tailFile(logFile))}`, { cause: error });
    }
  };

  const lifecycle = serviceSandboxLifecycle({ rootDir, start, stop, forceStop: () => stopService(spec), unguard });
  const sandbox: RedisSandbox = {
    host,
    port,
    password,
    rootDir,
    dir,
    dbfilename,
    appendonly,
    appenddirname,
    confPath,
    spec: specPath,
    pidFile,
    logFile,
    serverBinary,
    rdbPath: join(dir, dbfilename),
    aofDir: join(dir, appenddirname),
    start,
    stop,
    isRunning: async () => (await serviceStatus(spec)).running,
    pid: async () => (await serviceStatus(spec)).pid,
    cli: async (args, db) => {
      const argv = ['-h', host, '-p', String(port), ...(db === undefined ? [] : ['-n', String(db)]), ...args];
      try {
        const { stdout } = await execa(cliBinary, argv, {
          env: cleanEnv(password === undefined ? {} : { REDISCLI_AUTH: password }),
          extendEnv: false,
        });
        return stdout;
      } catch (error) {
        const stderr = (error as { stderr?: string }).stderr ?? (error as Error).message;
        throw new Error(`redis-cli -p ${port} ${args.join(' ')} failed: ${stderr.trim()}`, { cause: error });
      }
    },
    command: (args, db) => withLogOnRefusal(respCommand(target(), args, { db })),
    commands: (commands, db) => withLogOnRefusal(respCommands(target(), commands, { db })),
    bgsave: (timeoutMs) => redisBgsave(sandbox, timeoutMs),
    target,
    dispose: lifecycle.dispose,
  };

  await lifecycle.startOrClean();
  return sandbox;
}

/** Reads the whole AOF manifest of a Redis 7 multi-part AOF dir (`<appendfilename>.manifest`). */
export async function readAofManifest(aofDir: string, appendfilename = 'appendonly.aof'): Promise<string> {
  return readFile(join(aofDir, `${appendfilename}.manifest`), 'utf8');
}
