import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile, chmod } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { ComponentKind } from '../catalog/types.js';
import { run } from '../exec/run.js';
import type { LoadedRecipe } from '../recipe/load.js';
import type { ExecContext } from '../recipe/schema.js';
import { guardOnExit } from '../sandbox/exit-guard.js';
import { isPortClash, withFreePort } from '../sandbox/ports.js';
import { httpOk, sleep } from '../sandbox/process-utils.js';
import type { DrillSandbox } from './isolate.js';

/**
 * Scratch containers for drills of container recipes: for each docker/compose component, a
 * throwaway container of the *same image* the production container runs (docker inspect .Image,
 * the image id), on the host network on a free loopback port, with fresh scratch volumes at the
 * production container's volume paths. Never the production containers or volumes: read-only
 * bind mounts are repeated (e.g. configuration), read-write ones and volumes become scratch
 * volumes. Everything is removed after (and by the exit guard if the drill dies).
 *
 * Port and password without knowing the image: PGPORT / POSTGRES_PASSWORD (the postgres server
 * and the official image honour them), `redis-server --port N ...` and Prometheus flags as the
 * command, as the official images take them.
 */

export interface ContainerScratch {
  sandbox: DrillSandbox;
  /** Names of the scratch containers and volumes (removed by teardown). */
  containers: string[];
  volumes: string[];
  /** image per component, as production runs it (id) and as it was named. */
  images: Partial<Record<ComponentKind, { id: string; name: string }>>;
  teardown(): Promise<void>;
}

interface Inspected {
  Id: string;
  Image: string;
  Config: { Image: string; Env?: string[] | null };
  Mounts?: Array<{ Type: string; Source?: string; Destination: string; RW: boolean; Name?: string }>;
}

async function docker(args: string[], env: Record<string, string> = {}, timeoutMs = 120_000): Promise<string> {
  const r = await run(['docker', ...args], { timeoutMs, tailLines: 10, env });
  if (!r.ok)
    throw new Error(
      `docker ${args.slice(0, 3).join(' ')} ... failed: ${[...r.stderrTail, ...r.stdoutTail].join(' ').trim() || `exit ${String(r.exitCode)}`}`,
    );
  return r.stdout;
}

async function inspect(container: string): Promise<Inspected> {
  const out = await docker(['inspect', '--type', 'container', '--format', '{{json .}}', container]);
  return JSON.parse(out) as Inspected;
}

/** True when the exec context is a container (the drill then uses scratch containers). */
export function isContainerExec(ctx: ExecContext | undefined): ctx is Exclude<ExecContext, { kind: 'host' }> {
  return ctx !== undefined && ctx.kind !== 'host';
}

async function logsOf(container: string): Promise<string> {
  const logs = await run(['docker', 'logs', '--tail', '20', container], { timeoutMs: 10_000 });
  return [...logs.stdoutTail, ...logs.stderrTail].join(' | ');
}

/**
 * Waits for `check`; a container that stops meanwhile fails at once with its last log lines (a
 * server that lost its port to another process exits with "Address already in use": the caller
 * then starts a new container on another port).
 */
async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs: number, container: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    const state = await run(['docker', 'inspect', '--type', 'container', '--format', '{{.State.Running}}', container], {
      timeoutMs: 15_000,
    });
    if (state.ok && state.stdout.trim() === 'false') throw new Error(`${what} stopped before it was ready: ${await logsOf(container)}`);
    if (Date.now() > deadline) throw new Error(`${what} did not become ready within ${timeoutMs / 1000} s: ${await logsOf(container)}`);
    await sleep(250);
  }
}

/** Starts scratch containers for the container components among `kinds`. */
export async function startContainerScratch(
  real: LoadedRecipe,
  kinds: ComponentKind[],
  password: string,
  passwordEnv: string,
): Promise<ContainerScratch> {
  const c = real.recipe.components;
  const id = randomBytes(4).toString('hex');
  const base = await mkdtemp(path.join(os.tmpdir(), 'restore-assistant-drill-containers-'));
  const containers: string[] = [];
  const volumes: string[] = [];
  const images: ContainerScratch['images'] = {};
  const sandbox: DrillSandbox = { rootDirs: [base], containers: [], realContainers: [] };

  const removeAllSync = (): void => {
    if (containers.length > 0) spawnSync('docker', ['rm', '-f', '-v', ...containers], { stdio: 'ignore', timeout: 60_000 });
    if (volumes.length > 0) spawnSync('docker', ['volume', 'rm', '-f', ...volumes], { stdio: 'ignore', timeout: 60_000 });
  };
  const unguard = guardOnExit({ label: 'drill containers', pids: () => [], dirs: [base], beforeRemove: removeAllSync });
  let tornDown = false;
  const teardown = async (): Promise<void> => {
    if (tornDown) return;
    tornDown = true;
    // Helper containers (docker run --rm --volumes-from a scratch container) may not be removed
    // yet by the daemon: they hold the scratch volumes. They are the drill's too.
    const users: string[] = [];
    for (const vol of volumes) {
      const r = await run(['docker', 'ps', '-aq', '--filter', `volume=${vol}`], { timeoutMs: 30_000 });
      if (r.ok)
        users.push(
          ...r.stdout
            .split('\n')
            .map((l) => l.trim())
            .filter((l) => /^[0-9a-f]{6,64}$/.test(l)),
        );
    }
    if (containers.length > 0 || users.length > 0)
      await run(['docker', 'rm', '-f', '-v', ...containers, ...new Set(users)], { timeoutMs: 60_000 });
    if (volumes.length > 0) await run(['docker', 'volume', 'rm', '-f', ...volumes], { timeoutMs: 60_000 });
    await rm(base, { recursive: true, force: true });
    unguard();
  };

  /** docker run -d of a scratch container from the production container's image. */
  const runScratch = async (
    kind: ComponentKind,
    prod: Inspected,
    extra: { env: string[]; args: string[]; mounts?: string[]; clientEnv?: Record<string, string> },
  ): Promise<string> => {
    const name = `ra-drill-${id}-${kind}`;
    const mounts: string[] = [];
    let n = 0;
    for (const m of prod.Mounts ?? []) {
      if (m.Type === 'bind' && !m.RW && m.Source) {
        mounts.push('-v', `${m.Source}:${m.Destination}:ro`);
      } else {
        const vol = `${name}-${n++}`;
        volumes.push(vol); // recorded before it exists: teardown and the exit guard remove it whatever happens next
        await docker(['volume', 'create', '--label', 'restore-assistant.drill=1', vol]);
        mounts.push('-v', `${vol}:${m.Destination}`);
      }
    }
    containers.push(name);
    await docker(
      [
        'run',
        '-d',
        '--name',
        name,
        '--label',
        'restore-assistant.drill=1',
        '--network',
        'host',
        ...(kind === 'postgres' ? ['--stop-signal', 'SIGINT'] : []),
        ...mounts,
        ...(extra.mounts ?? []),
        ...extra.env.flatMap((e) => ['-e', e]),
        prod.Image,
        ...extra.args,
      ],
      extra.clientEnv,
    );
    images[kind] = { id: prod.Image, name: prod.Config.Image };
    sandbox.containers!.push(name);
    return name;
  };

  /** Removes one kind's scratch container and its volumes (after its server lost its port). */
  const discard = async (name: string): Promise<void> => {
    const vols = volumes.filter((v) => v.startsWith(`${name}-`));
    await run(['docker', 'rm', '-f', '-v', name], { timeoutMs: 60_000 });
    if (vols.length > 0) await run(['docker', 'volume', 'rm', '-f', ...vols], { timeoutMs: 60_000 });
    for (const list of [containers, volumes, sandbox.containers!])
      for (let i = list.length - 1; i >= 0; i--) if (list[i] === name || vols.includes(list[i]!)) list.splice(i, 1);
  };
  /**
   * Starts one kind's scratch container on a free loopback port and waits until it is ready. The
   * port is free when picked but another process may bind it before the server in the container
   * does (host network): then the container is removed and started again on a new port, as the
   * sandbox servers do (withFreePort, 5 tries). Other failures are thrown as they are.
   */
  const onFreePort = (kind: ComponentKind, start: (port: number, name: string) => Promise<void>): Promise<void> =>
    withFreePort(`scratch ${kind} container`, async (port) => {
      const name = `ra-drill-${id}-${kind}`;
      try {
        await start(port, name);
      } catch (error) {
        if (isPortClash(error)) await discard(name);
        throw error;
      }
    });

  try {
    const starts: Promise<void>[] = [];
    const postgresExec = c.postgres?.exec;
    if (kinds.includes('postgres') && c.postgres && isContainerExec(postgresExec)) {
      const t = { ...c.postgres, exec: postgresExec };
      starts.push(
        (async () => {
          const prod = await inspect(t.exec.container);
          sandbox.realContainers!.push(t.exec.container, prod.Id);
          await onFreePort('postgres', async (port) => {
            // The password reaches the container through the docker client's environment (-e NAME), never argv.
            const name = await runScratch('postgres', prod, {
              env: [`PGPORT=${port}`, 'POSTGRES_PASSWORD'],
              args: [],
              clientEnv: { POSTGRES_PASSWORD: password },
            });
            sandbox.postgres = { host: '127.0.0.1', port, user: 'postgres', passwordEnv, exec: { kind: 'docker', container: name } };
            // Ready: PostgreSQL answers a query with the scratch password.
            await waitUntil(
              `scratch PostgreSQL ${name}`,
              async () =>
                (
                  await run(
                    [
                      'docker',
                      'exec',
                      '-e',
                      'PGPASSWORD',
                      name,
                      'psql',
                      '-X',
                      '-At',
                      '-h',
                      '127.0.0.1',
                      '-p',
                      String(port),
                      '-U',
                      'postgres',
                      '-d',
                      'postgres',
                      '-c',
                      'SELECT 1',
                    ],
                    { env: { PGPASSWORD: password }, timeoutMs: 15_000 },
                  )
                ).stdout.trim() === '1',
              120_000,
              name,
            );
          });
        })(),
      );
    }
    const redisExec = c.redis?.exec;
    if (kinds.includes('redis') && c.redis && isContainerExec(redisExec)) {
      const t = { ...c.redis, exec: redisExec };
      starts.push(
        (async () => {
          const prod = await inspect(t.exec.container);
          sandbox.realContainers!.push(t.exec.container, prod.Id);
          await onFreePort('redis', async (port) => {
            const appendonly = t.appendonly ?? false;
            const dir = t.dataDir ?? '/data';
            const name = await runScratch('redis', prod, {
              env: [],
              args: [
                'redis-server',
                '--port',
                String(port),
                '--bind',
                '127.0.0.1',
                '--dir',
                dir,
                '--dbfilename',
                t.dbfilename ?? 'dump.rdb',
                '--save',
                '',
                '--appendonly',
                appendonly ? 'yes' : 'no',
              ],
            });
            sandbox.redis = {
              host: '127.0.0.1',
              port,
              dir,
              dbfilename: t.dbfilename ?? 'dump.rdb',
              appendonly,
              appenddirname: t.appenddirname ?? 'appendonlydir',
              service: {
                stop: ['docker', 'stop', name],
                start: ['docker', 'start', name],
                status: ['docker', 'exec', name, 'redis-cli', '-p', String(port), 'ping'],
              },
              exec: { kind: 'docker', container: name, helperImage: t.exec.helperImage ?? prod.Image },
            };
            // Ready: PONG.
            await waitUntil(
              `scratch Redis ${name}`,
              async () =>
                (await run(['docker', 'exec', name, 'redis-cli', '-p', String(port), 'ping'], { timeoutMs: 15_000 })).stdout.trim() ===
                'PONG',
              60_000,
              name,
            );
          });
        })(),
      );
    }
    const prometheusExec = c.prometheus?.exec;
    if (kinds.includes('prometheus') && c.prometheus && isContainerExec(prometheusExec)) {
      const t = { ...c.prometheus, exec: prometheusExec };
      starts.push(
        (async () => {
          const prod = await inspect(t.exec.container);
          sandbox.realContainers!.push(t.exec.container, prod.Id);
          await onFreePort('prometheus', async (port) => {
            const config = path.join(base, 'prometheus.yml');
            // Scrapes only itself: a drill sends nothing anywhere else.
            await writeFile(
              config,
              `global:\n  scrape_interval: 15s\nscrape_configs:\n  - job_name: prometheus\n    static_configs:\n      - targets: ["127.0.0.1:${port}"]\n`,
            );
            await chmod(base, 0o755);
            await chmod(config, 0o644);
            const name = await runScratch('prometheus', prod, {
              env: [],
              mounts: ['-v', `${config}:/restore-assistant-drill/prometheus.yml:ro`],
              args: [
                '--config.file=/restore-assistant-drill/prometheus.yml',
                `--storage.tsdb.path=${t.dataDir}`,
                `--web.listen-address=127.0.0.1:${port}`,
              ],
            });
            const url = `http://127.0.0.1:${port}`;
            sandbox.prometheus = {
              url,
              dataDir: t.dataDir,
              service: { stop: ['docker', 'stop', name], start: ['docker', 'start', name] },
              exec: { kind: 'docker', container: name, helperImage: t.exec.helperImage ?? prod.Image },
            };
            // Ready: /-/ready.
            await waitUntil(`scratch Prometheus ${name}`, () => httpOk(`${url}/-/ready`), 60_000, name);
          });
        })(),
      );
    }
    // Every start settles before a failure is thrown: teardown then removes all that was created.
    const failed = (await Promise.allSettled(starts)).find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  } catch (error) {
    await teardown().catch(() => undefined);
    throw error;
  }
  return { sandbox, containers, volumes, images, teardown };
}
