import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, stat, symlink, writeFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { stringify } from 'yaml';
import type { DockerDaemon } from './docker.js';
import { freePort } from './ports.js';
import { findPostgresBinaries } from './postgres.js';
import type { PromQueryData } from './prometheus.js';
import { respCommand, respCommands, type RespReply, type RespTarget } from './resp.js';
import { cleanEnv, httpOk, requireBinary, sleep, tcpAccepts } from './process-utils.js';
import { storyPortalBackupId, type StoryPortalBackup } from './backups.js';

/**
 * The audited story-portal deployment, in containers of a private dockerd: `agentic-postgres`,
 * `agentic-redis`, `agentic-prometheus` and an app (`agentic-api`), data in named volumes at the
 * official images' paths (/var/lib/postgresql/data, /data, /prometheus), every container on the
 * host network on free loopback ports.
 *
 * Images are made locally (no registry is reachable): `docker import` of a tiny root filesystem
 * (directories, the usr-merge symlinks and entrypoint scripts) whose /usr and /etc are the host's,
 * bind-mounted read-only at run time, so the host's Debian postgres, redis-server, prometheus and
 * node run inside each container's own mount and pid namespaces. The entrypoints behave like the
 * official images': initdb on an empty volume, drop privileges (setpriv) to postgres / redis /
 * nobody, `--stop-signal SIGINT` for PostgreSQL (fast shutdown on `docker stop`).
 */

export const STORY_PORTAL_CONTAINERS = {
  postgres: 'agentic-postgres',
  redis: 'agentic-redis',
  prometheus: 'agentic-prometheus',
  app: 'agentic-api',
} as const;

export const STORY_PORTAL_VOLUMES = {
  postgres: 'agentic-postgres-data',
  redis: 'agentic-redis-data',
  prometheus: 'agentic-prometheus-data',
} as const;

export const CONTAINER_DATA_PATHS = { postgres: '/var/lib/postgresql/data', redis: '/data', prometheus: '/prometheus' } as const;

export interface LocalImages {
  postgres: string;
  redis: string;
  prometheus: string;
  app: string;
  /** Runs `sh` (no entrypoint): for volume helpers (`docker run --rm --volumes-from`). */
  helper: string;
  /** Host tool versions baked into the tags (postgres major, redis version, prometheus version). */
  versions: { postgresMajor: number; redis: string; prometheus: string };
}

const POSTGRES_ENTRYPOINT = `#!/bin/sh
# Like the official postgres image: initdb on an empty volume, then postgres as user postgres.
set -eu
: "\${PGDATA:=/var/lib/postgresql/data}"
: "\${PGPORT:=5432}"
mkdir -p /var/run/postgresql "$PGDATA"
chown postgres:postgres /var/run/postgresql
chmod 2775 /var/run/postgresql
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  chown postgres:postgres "$PGDATA"
  chmod 700 "$PGDATA"
  pw=$(mktemp)
  printf '%s\\n' "$POSTGRES_PASSWORD" > "$pw"
  chown postgres "$pw"
  setpriv --reuid=postgres --regid=postgres --init-groups -- initdb -D "$PGDATA" -U postgres --pwfile="$pw" \\
    --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
  rm -f "$pw"
  echo "listen_addresses = '127.0.0.1'" >> "$PGDATA/postgresql.conf"
fi
exec setpriv --reuid=postgres --regid=postgres --init-groups -- postgres -D "$PGDATA" -p "$PGPORT" \\
  -c unix_socket_directories=/var/run/postgresql -c fsync=off -c synchronous_commit=off -c full_page_writes=off
`;

const REDIS_ENTRYPOINT = `#!/bin/sh
# Like the official redis image: /data belongs to redis, redis-server runs as redis.
set -eu
: "\${REDIS_PORT:=6379}"
mkdir -p /data
find /data -maxdepth 1 \\! -user redis -exec chown redis:redis '{}' +
# A command (as the official image takes it): redis-server with its flags, or flags alone.
if [ "$#" -gt 0 ]; then
  case "$1" in -*) set -- redis-server "$@" ;; esac
  [ "$1" = redis-server ] || exec "$@"
  exec setpriv --reuid=redis --regid=redis --init-groups -- "$@"
fi
exec setpriv --reuid=redis --regid=redis --init-groups -- redis-server --port "$REDIS_PORT" --bind 127.0.0.1 \\
  --dir /data --dbfilename dump.rdb --appendonly no --save "3600 1 300 100 60 10000" --protected-mode no --daemonize no
`;

const PROMETHEUS_ENTRYPOINT = `#!/bin/sh
# Like prom/prometheus: data in /prometheus, runs as nobody (65534); scrapes itself every second.
set -eu
: "\${PROM_PORT:=9090}"
mkdir -p /prometheus /etc-prometheus
chown 65534:65534 /prometheus
# Flags given (as prom/prometheus's ENTRYPOINT takes them): run prometheus with exactly those.
if [ "$#" -gt 0 ]; then
  exec setpriv --reuid=65534 --regid=65534 --clear-groups -- prometheus "$@"
fi
printf 'global:\\n  scrape_interval: 1s\\n  evaluation_interval: 1s\\n  scrape_timeout: 1s\\nscrape_configs:\\n  - job_name: prometheus\\n    static_configs:\\n      - targets: ["127.0.0.1:%s"]\\n' "$PROM_PORT" > /etc-prometheus/prometheus.yml
exec setpriv --reuid=65534 --regid=65534 --clear-groups -- prometheus --config.file=/etc-prometheus/prometheus.yml \\
  --storage.tsdb.path=/prometheus --web.listen-address="127.0.0.1:$PROM_PORT" --storage.tsdb.use-lockfile --web.enable-lifecycle
`;

/** The app: /health answers 200 while PostgreSQL and Redis accept connections. */
const APP_JS = `const http = require('node:http');
const net = require('node:net');
const port = Number(process.env.APP_PORT);
const deps = [Number(process.env.PG_PORT), Number(process.env.REDIS_PORT)];
const up = (p) => new Promise((resolve) => {
  const s = net.connect({ host: '127.0.0.1', port: p });
  const done = (ok) => { s.destroy(); resolve(ok); };
  s.setTimeout(1000, () => done(false));
  s.once('connect', () => done(true));
  s.once('error', () => done(false));
});
http.createServer(async (req, res) => {
  if (req.url !== '/health') { res.writeHead(404); res.end(); return; }
  const ok = (await Promise.all(deps.map(up))).every(Boolean);
  res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' });
  res.end(ok ? 'ok\\n' : 'dependencies down\\n');
}).listen(port, '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
`;

const APP_ENTRYPOINT = `#!/bin/sh
set -eu
exec setpriv --reuid=65534 --regid=65534 --clear-groups -- node /ra/app.js
`;

async function hostVersions(): Promise<LocalImages['versions']> {
  const { majorVersion } = await findPostgresBinaries();
  const redis = /v=(\d+\.\d+\.\d+)/.exec((await execa(requireBinary('redis-server', 'docker images'), ['--version'])).stdout)?.[1] ?? '7';
  const prom =
    /version (\d+\.\d+\.\d+)/.exec(
      (await execa(requireBinary('prometheus', 'docker images'), ['--version'], { all: true })).all ?? '',
    )?.[1] ?? '2';
  return { postgresMajor: majorVersion, redis, prometheus: prom };
}

/**
 * Builds the local images (idempotent per daemon): one root filesystem imported once per role with
 * the role's ENTRYPOINT / STOPSIGNAL / ENV, tagged with the host tool versions.
 */
export async function buildLocalImages(daemon: DockerDaemon): Promise<LocalImages> {
  const versions = await hostVersions();
  const { binDir } = await findPostgresBinaries();
  const images: LocalImages = {
    postgres: `ra-local/postgres:${versions.postgresMajor}`,
    redis: `ra-local/redis:${versions.redis}`,
    prometheus: `ra-local/prometheus:${versions.prometheus}`,
    app: 'ra-local/story-portal-api:1',
    helper: 'ra-local/helper:1',
    versions,
  };
  const existing = (await daemon.docker(['images', '--format', '{{.Repository}}:{{.Tag}}'])).stdout.split('\n');
  if ([images.postgres, images.redis, images.prometheus, images.app, images.helper].every((i) => existing.includes(i))) return images;

  const rootfs = join(daemon.rootDir, 'image-rootfs');
  await rm(rootfs, { recursive: true, force: true });
  for (const d of [
    'usr',
    'etc',
    'tmp',
    'var/run',
    'var/lib/postgresql/data',
    'proc',
    'sys',
    'dev',
    'run',
    'data',
    'prometheus',
    'ra',
    'root',
    'home',
  ]) {
    await mkdir(join(rootfs, d), { recursive: true });
  }
  await chmod(join(rootfs, 'tmp'), 0o1777);
  for (const [link, target] of [
    ['bin', 'usr/bin'],
    ['sbin', 'usr/sbin'],
    ['lib', 'usr/lib'],
    ['lib64', 'usr/lib64'],
  ] as const) {
    await symlink(target, join(rootfs, link));
  }
  const scripts: Record<string, string> = {
    'postgres-entrypoint.sh': POSTGRES_ENTRYPOINT,
    'redis-entrypoint.sh': REDIS_ENTRYPOINT,
    'prometheus-entrypoint.sh': PROMETHEUS_ENTRYPOINT,
    'app-entrypoint.sh': APP_ENTRYPOINT,
  };
  for (const [name, text] of Object.entries(scripts)) {
    await writeFile(join(rootfs, 'ra', name), text);
    await chmod(join(rootfs, 'ra', name), 0o755);
  }
  await writeFile(join(rootfs, 'ra', 'app.js'), APP_JS);
  const tarball = join(daemon.rootDir, 'image-rootfs.tar');
  await execa(requireBinary('tar', 'docker images'), ['--numeric-owner', '--owner=0', '--group=0', '-C', rootfs, '-cf', tarball, '.']);
  const basePath = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
  const roles: [string, string[]][] = [
    [
      images.postgres,
      [
        `ENV PATH=${binDir}:${basePath}`,
        'ENV PGDATA=/var/lib/postgresql/data',
        'ENTRYPOINT ["/ra/postgres-entrypoint.sh"]',
        'VOLUME /var/lib/postgresql/data',
      ],
    ],
    [images.redis, [`ENV PATH=${basePath}`, 'WORKDIR /data', 'ENTRYPOINT ["/ra/redis-entrypoint.sh"]', 'VOLUME /data']],
    [
      images.prometheus,
      [`ENV PATH=${basePath}`, 'WORKDIR /prometheus', 'ENTRYPOINT ["/ra/prometheus-entrypoint.sh"]', 'VOLUME /prometheus'],
    ],
    [images.app, [`ENV PATH=${basePath}`, 'ENTRYPOINT ["/ra/app-entrypoint.sh"]']],
    [images.helper, [`ENV PATH=${basePath}`, 'CMD ["sh"]']],
  ];
  for (const [tag, changes] of roles) {
    await daemon.docker(['import', ...changes.flatMap((c) => ['--change', c]), tarball, tag], { timeoutMs: 120_000 });
  }
  await rm(rootfs, { recursive: true, force: true });
  await rm(tarball, { force: true });
  return images;
}

/** As the official postgres image's STOPSIGNAL: `docker stop` is a fast shutdown (`docker import` cannot set it). */
export const POSTGRES_RUN_FLAGS = ['--stop-signal', 'SIGINT'] as const;

/** The read-only host mounts every container gets: the host's /usr and /etc. */
export const HOST_MOUNTS = ['-v', '/usr:/usr:ro', '-v', '/etc:/etc:ro'] as const;

export interface PsqlAdapter {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  psql(sql: string, db?: string): Promise<string>;
  env(): Record<string, string>;
}

export interface RedisAdapter {
  readonly host: string;
  readonly port: number;
  command(args: (string | number | Buffer)[], db?: number): Promise<RespReply>;
  commands(commands: (string | number | Buffer)[][], db?: number): Promise<RespReply[]>;
  target(): RespTarget;
}

export interface PromAdapter {
  readonly url: string;
  query(promql: string, time?: Date | number): Promise<PromQueryData>;
  queryNumber(promql: string, time?: Date | number): Promise<number | undefined>;
  waitForSamples(min: number, timeoutMs?: number): Promise<void>;
}

export interface ContainerState {
  id: string;
  startedAt: string;
  running: boolean;
  image: string;
}

export interface DeploymentOptions {
  /** Container and volume names (default: the audited ones). A drill's scratch set uses others. */
  names?: { postgres: string; redis: string; prometheus: string; app: string };
  volumes?: { postgres: string; redis: string; prometheus: string };
  /** Also start the app container (default true). */
  app?: boolean;
  /** docker-compose instead of docker run: writes a compose file and runs `docker-compose up -d`. */
  compose?: { project: string; dir: string };
}

export interface DockerDeployment {
  readonly daemon: DockerDaemon;
  readonly images: LocalImages;
  readonly names: { postgres: string; redis: string; prometheus: string; app: string };
  readonly volumes: { postgres: string; redis: string; prometheus: string };
  readonly ports: { postgres: number; redis: number; prometheus: number; app: number };
  readonly password: string;
  /** Set when started with docker-compose. */
  readonly compose?: { file: string; project: string; services: { postgres: string; redis: string; prometheus: string; app: string } };
  readonly pg: PsqlAdapter;
  readonly redis: RedisAdapter;
  readonly prom: PromAdapter;
  readonly appHealthUrl: string;
  /** Waits until PostgreSQL, Redis, Prometheus (and the app) answer. */
  waitReady(timeoutMs?: number): Promise<void>;
  state(name: string): Promise<ContainerState>;
  /** Removes the containers and volumes (the daemon stays). */
  dispose(): Promise<void>;
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number, onTimeout: () => Promise<string>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`docker deployment: ${what} not ready after ${timeoutMs} ms\n${await onTimeout()}`);
    await sleep(200);
  }
}

function composeFile(
  images: LocalImages,
  names: DockerDeployment['names'],
  volumes: DockerDeployment['volumes'],
  ports: DockerDeployment['ports'],
  withApp: boolean,
): string {
  const hostMounts = ['/usr:/usr:ro', '/etc:/etc:ro'];
  const services: Record<string, unknown> = {
    postgres: {
      image: images.postgres,
      container_name: names.postgres,
      network_mode: 'host',
      stop_signal: 'SIGINT',
      environment: { PGPORT: String(ports.postgres), POSTGRES_PASSWORD: null },
      volumes: [...hostMounts, `${volumes.postgres}:${CONTAINER_DATA_PATHS.postgres}`],
    },
    redis: {
      image: images.redis,
      container_name: names.redis,
      network_mode: 'host',
      environment: { REDIS_PORT: String(ports.redis) },
      volumes: [...hostMounts, `${volumes.redis}:${CONTAINER_DATA_PATHS.redis}`],
    },
    prometheus: {
      image: images.prometheus,
      container_name: names.prometheus,
      network_mode: 'host',
      environment: { PROM_PORT: String(ports.prometheus) },
      volumes: [...hostMounts, `${volumes.prometheus}:${CONTAINER_DATA_PATHS.prometheus}`],
    },
  };
  if (withApp) {
    services['api'] = {
      image: images.app,
      container_name: names.app,
      network_mode: 'host',
      environment: { APP_PORT: String(ports.app), PG_PORT: String(ports.postgres), REDIS_PORT: String(ports.redis) },
      volumes: hostMounts,
      depends_on: ['postgres', 'redis'],
    };
  }
  return stringify({
    version: '3.7',
    services,
    volumes: Object.fromEntries(Object.values(volumes).map((v) => [v, { name: v }])),
  });
}

/** Starts the story-portal-shaped deployment in `daemon` (images built if needed). */
export async function startStoryPortalDeployment(daemon: DockerDaemon, options: DeploymentOptions = {}): Promise<DockerDeployment> {
  const images = await buildLocalImages(daemon);
  const names = options.names ?? { ...STORY_PORTAL_CONTAINERS };
  const volumes = options.volumes ?? { ...STORY_PORTAL_VOLUMES };
  const withApp = options.app ?? true;
  const ports = { postgres: await freePort(), redis: await freePort(), prometheus: await freePort(), app: await freePort() };
  const password = `pw-${randomBytes(12).toString('base64url')}`;
  const host = '127.0.0.1';
  const { binDir } = await findPostgresBinaries();

  let compose: DockerDeployment['compose'];
  const composeBin = options.compose ? requireBinary('docker-compose', 'docker deployment (compose)') : undefined;
  const runCompose = async (args: string[]): Promise<void> => {
    if (!compose || !composeBin) return;
    const r = await execa(composeBin, ['-f', compose.file, '-p', compose.project, ...args], {
      env: cleanEnv({ ...daemon.env(), POSTGRES_PASSWORD: password }),
      extendEnv: false,
      reject: false,
      timeout: 180_000,
    });
    if (r.exitCode !== 0) throw new Error(`docker-compose ${args.join(' ')} failed (exit ${r.exitCode}): ${r.stderr.trim()}`);
  };

  const dispose = async (): Promise<void> => {
    await daemon.docker(['rm', '-f', '-v', ...Object.values(names)], { reject: false, timeoutMs: 60_000 });
    await daemon.docker(['volume', 'rm', '-f', ...Object.values(volumes)], { reject: false });
  };

  try {
    if (options.compose) {
      await mkdir(options.compose.dir, { recursive: true });
      const file = join(options.compose.dir, 'docker-compose.yml');
      await writeFile(file, composeFile(images, names, volumes, ports, withApp));
      compose = {
        file,
        project: options.compose.project,
        services: { postgres: 'postgres', redis: 'redis', prometheus: 'prometheus', app: 'api' },
      };
      await runCompose(['up', '-d', '--no-build']);
    } else {
      for (const v of Object.values(volumes)) await daemon.docker(['volume', 'create', v]);
      const run = (name: string, image: string, env: string[], mounts: string[]): Promise<unknown> =>
        daemon.docker(
          [
            'run',
            '-d',
            '--name',
            name,
            '--network',
            'host',
            ...(name === names.postgres ? POSTGRES_RUN_FLAGS : []),
            ...HOST_MOUNTS,
            ...mounts,
            ...env.flatMap((e) => ['-e', e]),
            image,
          ],
          {
            env: { POSTGRES_PASSWORD: password },
          },
        );
      await run(
        names.postgres,
        images.postgres,
        [`PGPORT=${ports.postgres}`, 'POSTGRES_PASSWORD'],
        ['-v', `${volumes.postgres}:${CONTAINER_DATA_PATHS.postgres}`],
      );
      await run(names.redis, images.redis, [`REDIS_PORT=${ports.redis}`], ['-v', `${volumes.redis}:${CONTAINER_DATA_PATHS.redis}`]);
      await run(
        names.prometheus,
        images.prometheus,
        [`PROM_PORT=${ports.prometheus}`],
        ['-v', `${volumes.prometheus}:${CONTAINER_DATA_PATHS.prometheus}`],
      );
      if (withApp)
        await run(names.app, images.app, [`APP_PORT=${ports.app}`, `PG_PORT=${ports.postgres}`, `REDIS_PORT=${ports.redis}`], []);
    }
  } catch (error) {
    await dispose().catch(() => undefined);
    throw error;
  }

  const pgEnv = (): Record<string, string> => ({ PGHOST: host, PGPORT: String(ports.postgres), PGUSER: 'postgres', PGPASSWORD: password });
  const pg: PsqlAdapter = {
    host,
    port: ports.postgres,
    user: 'postgres',
    password,
    env: pgEnv,
    // From the host over TCP (the test process has the host's client; the CLI under test does not).
    psql: async (sql, db = 'postgres') => {
      const r = await execa(
        join(binDir, 'psql'),
        ['-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-h', host, '-p', String(ports.postgres), '-U', 'postgres', '-d', db],
        {
          input: sql,
          env: cleanEnv({ PGPASSWORD: password }),
          extendEnv: false,
          reject: false,
        },
      );
      if (r.exitCode !== 0)
        throw new Error(`psql on ${host}:${ports.postgres} (${names.postgres}) db ${JSON.stringify(db)} failed: ${r.stderr.trim()}`);
      return r.stdout.replace(/\n$/, '');
    },
  };
  const target: RespTarget = { host, port: ports.redis };
  const redis: RedisAdapter = {
    host,
    port: ports.redis,
    command: (args, db) => respCommand(target, args, db !== undefined ? { db } : {}),
    commands: (cmds, db) => respCommands(target, cmds, db !== undefined ? { db } : {}),
    target: () => target,
  };
  const url = `http://${host}:${ports.prometheus}`;
  const query = async (promql: string, time?: Date | number): Promise<PromQueryData> => {
    const params = new URLSearchParams({ query: promql });
    if (time !== undefined) params.set('time', String(time instanceof Date ? time.getTime() / 1000 : time));
    const response = await fetch(`${url}/api/v1/query?${params.toString()}`, { signal: AbortSignal.timeout(10_000) });
    const body = (await response.json()) as { status?: string; data?: PromQueryData; error?: string };
    if (body.status !== 'success' || !body.data)
      throw new Error(`Prometheus ${url} (${names.prometheus}): ${promql}: ${body.error ?? 'error'}`);
    return body.data;
  };
  const queryNumber = async (promql: string, time?: Date | number): Promise<number | undefined> => {
    const data = await query(promql, time);
    if (data.resultType === 'scalar') return Number(data.result[1]);
    if (data.resultType !== 'vector') return undefined;
    const sample = data.result[0];
    return sample === undefined ? undefined : Number(sample.value[1]);
  };
  const logs = async (name: string): Promise<string> => {
    const r = await daemon.docker(['logs', '--tail', '30', name], { reject: false });
    return `--- docker logs ${name} ---\n${r.stdout}${r.stderr}\n--- end ---`;
  };
  const prom: PromAdapter = {
    url,
    query,
    queryNumber,
    waitForSamples: (min, timeoutMs = 30_000) =>
      waitFor(
        `${names.prometheus} (${min} samples of up)`,
        async () => ((await queryNumber('sum(count_over_time(up{job="prometheus"}[1h]))').catch(() => 0)) ?? 0) >= min,
        timeoutMs,
        () => logs(names.prometheus),
      ),
  };
  const appHealthUrl = `http://${host}:${ports.app}/health`;
  const waitReady = async (timeoutMs = 60_000): Promise<void> => {
    await Promise.all([
      waitFor(
        names.postgres,
        async () =>
          await pg.psql('SELECT 1').then(
            () => true,
            () => false,
          ),
        timeoutMs,
        () => logs(names.postgres),
      ),
      waitFor(
        names.redis,
        async () =>
          await redis.command(['PING']).then(
            (r) => Buffer.isBuffer(r) && r.toString() === 'PONG',
            () => false,
          ),
        timeoutMs,
        () => logs(names.redis),
      ),
      waitFor(
        names.prometheus,
        () => httpOk(`${url}/-/ready`),
        timeoutMs,
        () => logs(names.prometheus),
      ),
      ...(withApp
        ? [
            waitFor(
              names.app,
              () => httpOk(appHealthUrl),
              timeoutMs,
              () => logs(names.app),
            ),
          ]
        : []),
    ]);
  };
  const state = async (name: string): Promise<ContainerState> => {
    const r = await daemon.docker(['inspect', '--format', '{{json .}}', name]);
    const j = JSON.parse(r.stdout) as { Id: string; Image: string; State: { StartedAt: string; Running: boolean } };
    return { id: j.Id, startedAt: j.State.StartedAt, running: j.State.Running, image: j.Image };
  };

  const deployment: DockerDeployment = {
    daemon,
    images,
    names,
    volumes,
    ports,
    password,
    ...(compose ? { compose } : {}),
    pg,
    redis,
    prom,
    appHealthUrl,
    waitReady,
    state,
    dispose: async () => {
      if (compose) await runCompose(['down', '-v', '--timeout', '5']).catch(() => undefined);
      await dispose();
    },
  };
  try {
    await waitReady();
  } catch (error) {
    await deployment.dispose().catch(() => undefined);
    throw error;
  }
  return deployment;
}

/**
 * A backup set the way story-portal's platform/backup.sh makes it, through the containers:
 *   docker exec agentic-postgres pg_dump -U postgres <db> | gzip > postgres.sql.gz
 *   docker exec agentic-redis redis-cli BGSAVE; docker cp agentic-redis:/data/dump.rdb redis.rdb
 *   docker exec agentic-prometheus tar czf - -C /prometheus . > prometheus-data.tar.gz  (live data)
 *   metadata.txt
 */
export async function backupStoryPortalDocker(
  d: DockerDeployment,
  db: string,
  root: string,
  options: { time?: Date } = {},
): Promise<StoryPortalBackup> {
  const id = storyPortalBackupId(options.time ?? new Date());
  const dir = join(root, id);
  await mkdir(root, { recursive: true });
  await mkdir(dir);
  const files: StoryPortalBackup['files'] = {
    postgres: join(dir, 'postgres.sql.gz'),
    redis: join(dir, 'redis.rdb'),
    prometheus: join(dir, 'prometheus-data.tar.gz'),
    metadata: join(dir, 'metadata.txt'),
  };
  const warnings: string[] = [];
  const client = d.daemon.client;
  const env = cleanEnv(d.daemon.env());

  // PostgreSQL: pg_dump inside the container (socket, trust), piped through the host's gzip.
  const dump = execa(client, ['exec', d.names.postgres, 'pg_dump', '-U', 'postgres', db], { env, extendEnv: false }).pipe(
    requireBinary('gzip', 'docker backup'),
    ['-c'],
    {
      stdout: { file: files.postgres },
    },
  );
  try {
    await dump;
  } catch (error) {
    throw new Error(
      `docker exec ${d.names.postgres} pg_dump ${db} | gzip failed: ${(error as { stderr?: string }).stderr ?? (error as Error).message}`,
      { cause: error },
    );
  }

  // Redis: BGSAVE, wait until it finished, docker cp the RDB out.
  const info = async (): Promise<string> =>
    (await d.daemon.docker(['exec', d.names.redis, 'redis-cli', '-p', String(d.ports.redis), 'INFO', 'persistence'])).stdout;
  const saves = (text: string): number => Number(/rdb_saves:(\d+)/.exec(text)?.[1] ?? '0');
  const before = saves(await info());
  await d.daemon.docker(['exec', d.names.redis, 'redis-cli', '-p', String(d.ports.redis), 'BGSAVE']);
  const deadline = Date.now() + 30_000;
  for (;;) {
    const text = await info();
    if (saves(text) > before && /rdb_bgsave_in_progress:0/.test(text)) {
      if (!/rdb_last_bgsave_status:ok/.test(text)) throw new Error(`BGSAVE in ${d.names.redis} failed:\n${text}`);
      break;
    }
    if (Date.now() > deadline) throw new Error(`BGSAVE in ${d.names.redis} did not finish within 30 s`);
    await sleep(100);
  }
  await d.daemon.docker(['cp', `${d.names.redis}:${CONTAINER_DATA_PATHS.redis}/dump.rdb`, files.redis!]);

  // Prometheus: tar of the live data dir inside the container (exit 1 = file changed: tolerated).
  const tar = await d.daemon.docker(['exec', d.names.prometheus, 'tar', 'czf', '-', '-C', CONTAINER_DATA_PATHS.prometheus, '.'], {
    reject: false,
    stdoutFile: files.prometheus!,
    timeoutMs: 120_000,
  });
  const tarWarnings = tar.stderr.split('\n').filter((l) => l.trim() !== '');
  if (
    tar.exitCode !== 0 &&
    !(tar.exitCode === 1 && tarWarnings.every((w) => /file changed as we read it|removed before we read it|socket ignored/i.test(w)))
  ) {
    throw new Error(`docker exec ${d.names.prometheus} tar czf - -C /prometheus . failed (exit ${tar.exitCode}): ${tar.stderr.trim()}`);
  }
  warnings.push(...tarWarnings);

  const status = (await d.daemon.docker(['ps', '--format', '  {{.Names}}: {{.Status}}'])).stdout;
  const size = (await stat(files.postgres)).size + (await stat(files.redis!)).size + (await stat(files.prometheus!)).size;
  const metadata = [
    `Backup Date: ${id}`,
    'Platform: Story Portal V2',
    'Components:',
    `  - PostgreSQL (${db} database)`,
    '  - Redis (session/cache data)',
    '  - Prometheus (metrics data)',
    '',
    'Container Status:',
    status,
    '',
    'Backup Size:',
    `${Math.ceil(size / 1024)}K`,
    '',
  ].join('\n');
  await writeFile(files.metadata, metadata);
  return { id, dir, files, metadata, warnings };
}

/** True when a container-side TCP port answers (for waits in tests). */
export function portOpen(port: number): Promise<boolean> {
  return tcpAccepts('127.0.0.1', port);
}

/** A fresh dir under the daemon's root (removed with it). */
export function daemonTempDir(daemon: DockerDaemon, prefix: string): Promise<string> {
  return mkdtemp(join(daemon.rootDir, prefix));
}
