import { mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { guardOnExit, serviceSandboxLifecycle } from './exit-guard.js';
import { withFreePort, type PortRetryOptions } from './ports.js';
import { readPidFileSync, requireBinary } from './process-utils.js';
import { startService, stopService, writeServiceSpec, type ServiceSpec } from './service-ctl.js';

/**
 * What the single-binary HTTP sandboxes share (node-exporter.ts, pushgateway.ts): a Debian binary
 * listening on 127.0.0.1:<free port>, run by the service controller from a private temp dir
 * (pid file, log, spec), ready when GET /metrics answers, guarded on exit, and retried on a new
 * port when another process bound it first (sandbox/ports.ts).
 */
export interface HttpServiceSandbox {
  readonly host: string;
  readonly port: number;
  /** host:port, a Prometheus scrape target. */
  readonly target: string;
  readonly url: string;
  readonly rootDir: string;
  readonly logFile: string;
  dispose(): Promise<void>;
}

export interface HttpServiceDefinition<Extra extends object> {
  /** File and label stem: the temp dir is `ra-<name>-*`, the files `<name>.pid|.log|.service.json`. */
  name: string;
  /** What the port retry and the errors call it ("Pushgateway sandbox"). */
  what: string;
  /** The Debian package that ships the binary (its name is the binary's). */
  debianPackage: string;
  /** The argv after the binary and `--web.listen-address`, and what the sandbox adds to its handle. */
  setup: (rootDir: string) => Promise<{ args: string[]; extra: Extra }>;
}

export async function startHttpServiceSandbox<Extra extends object>(
  def: HttpServiceDefinition<Extra>,
  options: { baseDir?: string; pickPort?: PortRetryOptions['pickPort'] } = {},
): Promise<HttpServiceSandbox & Extra> {
  return withFreePort(def.what, (port) => startOn(def, port, options.baseDir), {
    ...(options.pickPort ? { pickPort: options.pickPort } : {}),
  });
}

async function startOn<Extra extends object>(
  def: HttpServiceDefinition<Extra>,
  port: number,
  baseDirOption: string | undefined,
): Promise<HttpServiceSandbox & Extra> {
  const binary = requireBinary(def.debianPackage, `${def.what} (Debian package ${def.debianPackage})`);
  const host = '127.0.0.1';
  const baseDir = baseDirOption ?? tmpdir();
  await mkdir(baseDir, { recursive: true });
  const rootDir = await mkdtemp(join(baseDir, `ra-${def.name}-`));
  const pidFile = join(rootDir, `${def.name}.pid`);
  const logFile = join(rootDir, `${def.name}.log`);
  const unguard = guardOnExit({
    label: def.name,
    pids: () => {
      const pid = readPidFileSync(pidFile);
      return pid === undefined ? [] : [pid];
    },
    dirs: [rootDir],
  });
  const { args, extra } = await def.setup(rootDir);
  const url = `http://${host}:${port}`;
  const spec: ServiceSpec = {
    name: `${def.name}-sandbox-${port}`,
    argv: [binary, `--web.listen-address=${host}:${port}`, ...args],
    cwd: rootDir,
    pidFile,
    logFile,
    ready: { http: { url: `${url}/metrics` } },
    readyTimeoutMs: 30_000,
    stopSignal: 'SIGTERM',
    stopTimeoutMs: 10_000,
  };
  await writeServiceSpec(join(rootDir, `${def.name}.service.json`), spec);
  const lifecycle = serviceSandboxLifecycle({
    rootDir,
    start: async () => {
      await startService(spec);
    },
    stop: async () => {
      await stopService(spec);
    },
    forceStop: () => stopService(spec),
    unguard,
  });
  await lifecycle.startOrClean();
  return { host, port, target: `${host}:${port}`, url, rootDir, logFile, dispose: lifecycle.dispose, ...extra };
}
