import { randomBytes } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { ComponentKind } from '../catalog/types.js';
import { RestoreAssistantError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import type { LoadedRecipe } from '../recipe/load.js';
import { SandboxGroup } from '../sandbox/group.js';
import { serviceCtlArgv } from '../sandbox/service-ctl.js';
import { isContainerExec, startContainerScratch, type ContainerScratch } from './containers.js';
import type { DrillSandbox } from './isolate.js';
import { assertScratchApart, ScratchIsProductionError } from './production-overlap.js';

/** The scratch services a drill restores into, and how to reach and remove them. */
export interface DrillScratch {
  sandbox: DrillSandbox;
  /** Environment for the drill's child processes: the operator's plus the scratch passwords. */
  env: NodeJS.ProcessEnv;
  /** Secret values to redact (the scratch passwords). */
  secrets: string[];
  /** Lines telling the operator how to connect (for --keep). */
  connectionInfo(): string[];
  teardown(): Promise<void>;
}

export const DRILL_PG_PASSWORD_ENV = 'RESTORE_ASSISTANT_DRILL_PGPASSWORD';

/**
 * Start throwaway PostgreSQL / Redis / Prometheus for the components the recipe and the set both
 * have, on free loopback ports in one temp dir. Redis matches the recipe's AOF setting, so a drill
 * exercises the same restore path production would.
 */
export async function startDrillScratch(
  real: LoadedRecipe,
  kinds: ComponentKind[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<DrillScratch> {
  // Before anything exists: the temp root must not be (or lie inside) a production directory.
  assertScratchApart({
    real: real.recipe,
    recipeFile: real.file,
    scratch: [{ what: "the drill's temp root (TMPDIR)", path: os.tmpdir(), containing: false }],
    created: false,
  });
  const base = await mkdtemp(path.join(os.tmpdir(), 'restore-assistant-drill-'));
  const group = new SandboxGroup({ baseDir: base });
  const password = randomBytes(12).toString('hex');
  // Container components get scratch containers of the production images (drill/containers.ts);
  // the others scratch processes on this host.
  const inContainers = kinds.filter((k) => isContainerExec(real.recipe.components[k]?.exec));
  const onHost = kinds.filter((k) => !inContainers.includes(k));
  let boxes: ContainerScratch | undefined;
  try {
    const [pg, redis, prom, containers] = await Promise.all([
      onHost.includes('postgres') ? group.postgres({ password, scratch: true }) : undefined,
      onHost.includes('redis') ? group.redis({ appendonly: real.recipe.components.redis?.appendonly ?? false, save: '' }) : undefined,
      onHost.includes('prometheus') ? group.prometheus({}) : undefined,
      inContainers.length > 0 ? startContainerScratch(real, inContainers, password, DRILL_PG_PASSWORD_ENV) : undefined,
    ]);
    boxes = containers;
    const sandbox: DrillSandbox = {
      ...(containers?.sandbox ?? {}),
      rootDirs: [
        base,
        ...[pg?.rootDir, redis?.rootDir, prom?.rootDir].filter((d): d is string => Boolean(d)),
        ...(containers?.sandbox.rootDirs ?? []),
      ],
      ...(pg
        ? { postgres: { host: pg.host, port: pg.port, user: pg.user, passwordEnv: DRILL_PG_PASSWORD_ENV, socketDir: pg.socketDir } }
        : {}),
      ...(redis
        ? {
            redis: {
              host: redis.host,
              port: redis.port,
              dir: redis.dir,
              dbfilename: redis.dbfilename,
              appendonly: redis.appendonly,
              appenddirname: redis.appenddirname,
              service: {
                stop: serviceCtlArgv('stop', redis.spec),
                start: serviceCtlArgv('start', redis.spec),
                status: serviceCtlArgv('status', redis.spec),
              },
            },
          }
        : {}),
      ...(prom
        ? {
            prometheus: {
              url: prom.url,
              dataDir: prom.dataDir,
              service: { stop: serviceCtlArgv('stop', prom.spec), start: serviceCtlArgv('start', prom.spec) },
            },
          }
        : {}),
    };
    // Once it exists: its real directories (symlinks resolved) and ports are none of production's.
    assertScratchApart({
      real: real.recipe,
      recipeFile: real.file,
      scratch: [
        ...sandbox.rootDirs.map((d) => ({ what: 'scratch directory', path: d })),
        ...(sandbox.redis && !sandbox.redis.exec ? [{ what: 'scratch Redis dir', path: sandbox.redis.dir }] : []),
        ...(sandbox.prometheus && !sandbox.prometheus.exec
          ? [{ what: 'scratch Prometheus data dir', path: sandbox.prometheus.dataDir }]
          : []),
      ],
      ports: [
        ...(sandbox.postgres ? [{ what: 'scratch PostgreSQL port', port: sandbox.postgres.port }] : []),
        ...(sandbox.redis ? [{ what: 'scratch Redis port', port: sandbox.redis.port }] : []),
        ...(sandbox.prometheus ? [{ what: 'scratch Prometheus port', port: Number(new URL(sandbox.prometheus.url).port) }] : []),
      ],
      created: true,
    });
    let tornDown = false;
    return {
      sandbox,
      env: { ...env, [DRILL_PG_PASSWORD_ENV]: password },
      secrets: [password],
      connectionInfo: () => [
        ...(pg
          ? [
              `PostgreSQL: PGPASSWORD=<see ${path.join(base, 'drill-connection.txt')}> psql -h ${pg.host} -p ${pg.port} -U ${pg.user} ${real.recipe.components.postgres?.database ?? ''}`,
            ]
          : []),
        ...(redis ? [`Redis:      redis-cli -h ${redis.host} -p ${redis.port}`] : []),
        ...(prom ? [`Prometheus: ${prom.url}`] : []),
        ...(containers
          ? [
              `Containers: ${containers.containers.join(', ')} (docker rm -f -v them, and docker volume rm ${containers.volumes.join(' ')}, when done)`,
            ]
          : []),
        `Files:      ${base}`,
        `Stop:       kill the processes listed in ${base} (pidfiles), or re-run without --keep next time`,
      ],
      teardown: async () => {
        if (tornDown) return;
        tornDown = true;
        await containers?.teardown();
        await group.stopAll();
        const { rm } = await import('node:fs/promises');
        await rm(base, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await boxes?.teardown().catch(() => undefined);
    await group.stopAll().catch(() => undefined);
    const { rm } = await import('node:fs/promises');
    await rm(base, { recursive: true, force: true }).catch(() => undefined);
    if (error instanceof ScratchIsProductionError) throw error;
    throw new RestoreAssistantError(
      `Could not start the drill's scratch services: ${error instanceof Error ? error.message : String(error)}`,
      ExitCode.preflightFailed,
      {
        untouched: 'Nothing was restored; the real targets were not contacted.',
        next:
          inContainers.length > 0
            ? 'Check that docker reaches the daemon and that the production containers exist (docker inspect); the scratch containers use their images.'
            : 'Check that PostgreSQL, redis-server and prometheus are installed (bash scripts/setup.sh installs them).',
      },
    );
  }
}
