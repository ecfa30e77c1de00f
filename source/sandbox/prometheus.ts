import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { guardOnExit, serviceSandboxLifecycle } from './exit-guard.js';
import { withFreePort, type PortRetryOptions } from './ports.js';
import { formatLogTail, readPidFileSync, requireBinary, sleep, tailFile } from './process-utils.js';
import { serviceStatus, startService, stopService, writeServiceSpec, type ServiceSpec } from './service-ctl.js';

export interface StartPrometheusOptions {
  baseDir?: string;
  /** Global scrape (and evaluation) interval, default 1 s so series exist quickly. */
  scrapeIntervalSeconds?: number;
  /** host:port targets scraped as job "extra" (e.g. exporters). */
  extraScrapeTargets?: string[];
  /**
   * Pass --storage.tsdb.use-lockfile so the data dir has a `lock` file (default true). Prometheus 2.42
   * creates none by default; the backups this project restores contain one (stale after restore).
   */
  lockfile?: boolean;
  /** Extra command-line flags. */
  extraFlags?: string[];
  /** rule_files of the config (alerting/recording rules, evaluated every scrape interval). */
  ruleFiles?: string[];
  /** Where the port comes from (tests: an occupied one first); a bind clash retries on a new port (sandbox/ports.ts). */
  pickPort?: PortRetryOptions['pickPort'];
}

export interface PromSample {
  metric: Record<string, string>;
  /** [unix seconds, value as string] */
  value: [number, string];
}

export interface PromSeries {
  metric: Record<string, string>;
  values: [number, string][];
}

export type PromQueryData =
  | { resultType: 'vector'; result: PromSample[] }
  | { resultType: 'matrix'; result: PromSeries[] }
  | { resultType: 'scalar'; result: [number, string] }
  | { resultType: 'string'; result: [number, string] };

export interface PrometheusSandbox {
  readonly host: string;
  readonly port: number;
  /** http://127.0.0.1:<port> */
  readonly url: string;
  readonly rootDir: string;
  /** --storage.tsdb.path (live: wal/, chunks_head/, lock, queries.active, blocks). */
  readonly dataDir: string;
  readonly configPath: string;
  /** service-ctl spec (JSON file). */
  readonly spec: string;
  readonly pidFile: string;
  readonly logFile: string;
  readonly binary: string;
  /** The full argv service-ctl runs. */
  readonly argv: readonly string[];
  /** Starts it (no-op if running) and waits for /-/ready. */
  start(): Promise<void>;
  /** SIGTERM via service-ctl (graceful). Idempotent. */
  stop(): Promise<void>;
  isRunning(): Promise<boolean>;
  pid(): Promise<number | undefined>;
  /** Instant query (/api/v1/query); time as Date or unix seconds. Throws on non-success. */
  query(promql: string, time?: Date | number): Promise<PromQueryData>;
  /** A scalar-ish query: the single sample's value as a number, undefined if the vector is empty. */
  queryNumber(promql: string, time?: Date | number): Promise<number | undefined>;
  /** Waits until the self-scrape has stored at least `min` samples of `up` (default timeout 30 s). */
  waitForSamples(min: number, timeoutMs?: number): Promise<void>;
  /** stop() and remove rootDir. Idempotent. */
  dispose(): Promise<void>;
}

function toUnixSeconds(time: Date | number): string {
  return String(time instanceof Date ? time.getTime() / 1000 : time);
}

/** Starts a throwaway Prometheus on 127.0.0.1:<free port> that scrapes itself, under service-ctl; a port clash retries on a new port. */
export async function startPrometheus(options: StartPrometheusOptions = {}): Promise<PrometheusSandbox> {
  return withFreePort('Prometheus sandbox', (port) => startPrometheusOn(port, options), {
    ...(options.pickPort ? { pickPort: options.pickPort } : {}),
  });
}

async function startPrometheusOn(port: number, options: StartPrometheusOptions): Promise<PrometheusSandbox> {
  const binary = requireBinary('prometheus', 'Prometheus sandbox');
  const host = '127.0.0.1';
  const url = `http://${host}:${port}`;
  const baseDir = options.baseDir ?? tmpdir();
  await mkdir(baseDir, { recursive: true });
  const rootDir = await mkdtemp(join(baseDir, 'ra-prom-'));
  const dataDir = join(rootDir, 'data');
  const configPath = join(rootDir, 'prometheus.yml');
  const specPath = join(rootDir, 'prometheus.service.json');
  const pidFile = join(rootDir, 'prometheus.pid');
  const logFile = join(rootDir, 'prometheus.log');
  await mkdir(dataDir);

  const unguard = guardOnExit({
    label: 'prometheus',
    pids: () => {
      const pid = readPidFileSync(pidFile);
      return pid === undefined ? [] : [pid];
    },
    dirs: [rootDir],
  });

  const interval = `${options.scrapeIntervalSeconds ?? 1}s`;
  const config = {
    global: { scrape_interval: interval, evaluation_interval: interval, scrape_timeout: interval },
    ...(options.ruleFiles?.length ? { rule_files: options.ruleFiles } : {}),
    scrape_configs: [
      { job_name: 'prometheus', static_configs: [{ targets: [`${host}:${port}`] }] },
      ...(options.extraScrapeTargets?.length ? [{ job_name: 'extra', static_configs: [{ targets: options.extraScrapeTargets }] }] : []),
    ],
  };
  await writeFile(configPath, stringify(config));

  const argv = [
    binary,
    `--config.file=${configPath}`,
    `--storage.tsdb.path=${dataDir}`,
    `--web.listen-address=${host}:${port}`,
    '--web.enable-admin-api',
    '--web.enable-lifecycle',
    ...((options.lockfile ?? true) ? ['--storage.tsdb.use-lockfile'] : []),
    ...(options.extraFlags ?? []),
  ];
  const spec: ServiceSpec = {
    name: `prometheus-sandbox-${port}`,
    argv,
    cwd: rootDir,
    pidFile,
    logFile,
    ready: { http: { url: `${url}/-/ready` } },
    readyTimeoutMs: 30_000,
    stopSignal: 'SIGTERM',
    stopTimeoutMs: 20_000,
  };
  await writeServiceSpec(specPath, spec);

  const start = async (): Promise<void> => {
    try {
      await startService(spec);
    } catch (error) {
      throw new Error(`Prometheus sandbox (${binary}, port ${port}, ${rootDir}): start failed: ${(error as Error).message}`, {
        cause: error,
      });
    }
  };
  const stop = async (): Promise<void> => {
    await stopService(spec);
  };

  const query = async (promql: string, time?: Date | number): Promise<PromQueryData> => {
    const params = new URLSearchParams({ query: promql });
    if (time !== undefined) params.set('time', toUnixSeconds(time));
    let body: { status?: string; data?: PromQueryData; error?: string; errorType?: string };
    try {
      const response = await fetch(`${url}/api/v1/query?${params.toString()}`, { signal: AbortSignal.timeout(10_000) });
      body = (await response.json()) as typeof body;
    } catch (error) {
      throw new Error(`Prometheus ${url}: query ${JSON.stringify(promql)} failed: ${(error as Error).message}`, { cause: error });
    }
    if (body.status !== 'success' || body.data === undefined) {
      throw new Error(
        `Prometheus ${url}: query ${JSON.stringify(promql)}: ${body.errorType ?? 'error'}: ${body.error ?? JSON.stringify(body)}`,
      );
    }
    return body.data;
  };

  const queryNumber = async (promql: string, time?: Date | number): Promise<number | undefined> => {
    const data = await query(promql, time);
    if (data.resultType === 'scalar') return Number(data.result[1]);
    if (data.resultType !== 'vector') throw new Error(`Prometheus ${url}: ${promql} returned a ${data.resultType}, expected a vector`);
    if (data.result.length > 1) throw new Error(`Prometheus ${url}: ${promql} returned ${data.result.length} series, expected at most 1`);
    const sample = data.result[0];
    return sample === undefined ? undefined : Number(sample.value[1]);
  };

  const waitForSamples = async (min: number, timeoutMs = 30_000): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    let last: number | undefined;
    for (;;) {
      last = await queryNumber('sum(count_over_time(up{job="prometheus"}[1h]))');
      if ((last ?? 0) >= min) return;
      if (Date.now() > deadline) {
        throw new Error(
          `Prometheus ${url}: only ${last ?? 0} samples of up after ${timeoutMs} ms (wanted ${min})\n${formatLogTail(logFile, await tailFile(logFile))}`,
        );
      }
      await sleep(200);
    }
  };

  const lifecycle = serviceSandboxLifecycle({ rootDir, start, stop, forceStop: () => stopService(spec), unguard });
  const sandbox: PrometheusSandbox = {
    host,
    port,
    url,
    rootDir,
    dataDir,
    configPath,
    spec: specPath,
    pidFile,
    logFile,
    binary,
    argv,
    start,
    stop,
    isRunning: async () => (await serviceStatus(spec)).running,
    pid: async () => (await serviceStatus(spec)).pid,
    query,
    queryNumber,
    waitForSamples,
    dispose: lifecycle.dispose,
  };

  await lifecycle.startOrClean();
  return sandbox;
}
