import { mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { guardOnExit, serviceSandboxLifecycle } from './exit-guard.js';
import { withFreePort, type PortRetryOptions } from './ports.js';
import { readPidFileSync, requireBinary } from './process-utils.js';
import { startService, stopService, writeServiceSpec, type ServiceSpec } from './service-ctl.js';

/** A throwaway Debian prometheus-pushgateway on 127.0.0.1:<free port> (no persistence file). */
export interface PushgatewaySandbox {
  readonly host: string;
  readonly port: number;
  /** host:port, a Prometheus scrape target. */
  readonly target: string;
  readonly url: string;
  readonly rootDir: string;
  readonly logFile: string;
  dispose(): Promise<void>;
}

/** A port clash (another process bound it first) retries on a new port (sandbox/ports.ts). */
export async function startPushgateway(
  options: { baseDir?: string; pickPort?: PortRetryOptions['pickPort'] } = {},
): Promise<PushgatewaySandbox> {
  return withFreePort('Pushgateway sandbox', (port) => startPushgatewayOn(port, options), {
    ...(options.pickPort ? { pickPort: options.pickPort } : {}),
  });
}

async function startPushgatewayOn(port: number, options: { baseDir?: string }): Promise<PushgatewaySandbox> {
  const binary = requireBinary('prometheus-pushgateway', 'Pushgateway sandbox (Debian package prometheus-pushgateway)');
  const host = '127.0.0.1';
  const baseDir = options.baseDir ?? tmpdir();
  await mkdir(baseDir, { recursive: true });
  const rootDir = await mkdtemp(join(baseDir, 'ra-pushgateway-'));
  const pidFile = join(rootDir, 'pushgateway.pid');
  const logFile = join(rootDir, 'pushgateway.log');
  const unguard = guardOnExit({
    label: 'pushgateway',
    pids: () => {
      const pid = readPidFileSync(pidFile);
      return pid === undefined ? [] : [pid];
    },
    dirs: [rootDir],
  });
  const url = `http://${host}:${port}`;
  const spec: ServiceSpec = {
    name: `pushgateway-sandbox-${port}`,
    argv: [binary, `--web.listen-address=${host}:${port}`],
    cwd: rootDir,
    pidFile,
    logFile,
    ready: { http: { url: `${url}/metrics` } },
    readyTimeoutMs: 30_000,
    stopSignal: 'SIGTERM',
    stopTimeoutMs: 10_000,
  };
  await writeServiceSpec(join(rootDir, 'pushgateway.service.json'), spec);
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
  return { host, port, target: `${host}:${port}`, url, rootDir, logFile, dispose: lifecycle.dispose };
}
