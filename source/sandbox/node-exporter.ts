import { mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { guardOnExit, serviceSandboxLifecycle } from './exit-guard.js';
import { withFreePort, type PortRetryOptions } from './ports.js';
import { readPidFileSync, requireBinary } from './process-utils.js';
import { startService, stopService, writeServiceSpec, type ServiceSpec } from './service-ctl.js';

/**
 * A throwaway Debian prometheus-node-exporter on 127.0.0.1:<free port> with only the textfile
 * collector, reading `textfileDir` (what restore-assistant's metrics.textfileDir writes into).
 */
export interface NodeExporterSandbox {
  readonly host: string;
  readonly port: number;
  /** host:port, a Prometheus scrape target. */
  readonly target: string;
  readonly url: string;
  readonly rootDir: string;
  readonly textfileDir: string;
  readonly logFile: string;
  dispose(): Promise<void>;
}

/** A port clash (another process bound it first) retries on a new port (sandbox/ports.ts). */
export async function startNodeExporter(
  options: { baseDir?: string; textfileDir?: string; pickPort?: PortRetryOptions['pickPort'] } = {},
): Promise<NodeExporterSandbox> {
  return withFreePort('node_exporter sandbox', (port) => startNodeExporterOn(port, options), {
    ...(options.pickPort ? { pickPort: options.pickPort } : {}),
  });
}

async function startNodeExporterOn(port: number, options: { baseDir?: string; textfileDir?: string }): Promise<NodeExporterSandbox> {
  const binary = requireBinary('prometheus-node-exporter', 'node_exporter sandbox (Debian package prometheus-node-exporter)');
  const host = '127.0.0.1';
  const baseDir = options.baseDir ?? tmpdir();
  await mkdir(baseDir, { recursive: true });
  const rootDir = await mkdtemp(join(baseDir, 'ra-node-exporter-'));
  const textfileDir = options.textfileDir ?? join(rootDir, 'textfile');
  await mkdir(textfileDir, { recursive: true });
  const pidFile = join(rootDir, 'node-exporter.pid');
  const logFile = join(rootDir, 'node-exporter.log');
  const unguard = guardOnExit({
    label: 'node-exporter',
    pids: () => {
      const pid = readPidFileSync(pidFile);
      return pid === undefined ? [] : [pid];
    },
    dirs: [rootDir],
  });
  const url = `http://${host}:${port}`;
  const spec: ServiceSpec = {
    name: `node-exporter-sandbox-${port}`,
    argv: [
      binary,
      `--web.listen-address=${host}:${port}`,
      '--collector.disable-defaults',
      '--collector.textfile',
      `--collector.textfile.directory=${textfileDir}`,
    ],
    cwd: rootDir,
    pidFile,
    logFile,
    ready: { http: { url: `${url}/metrics` } },
    readyTimeoutMs: 30_000,
    stopSignal: 'SIGTERM',
    stopTimeoutMs: 10_000,
  };
  await writeServiceSpec(join(rootDir, 'node-exporter.service.json'), spec);
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
  return { host, port, target: `${host}:${port}`, url, rootDir, textfileDir, logFile, dispose: lifecycle.dispose };
}
