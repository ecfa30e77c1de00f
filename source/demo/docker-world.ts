import { mkdtemp, rm, symlink, writeFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { startDockerDaemon, type DockerDaemon } from '../sandbox/docker.js';
import { backupStoryPortalDocker, startStoryPortalDeployment, type DockerDeployment } from '../sandbox/docker-deployment.js';
import { fingerprintPostgres, fingerprintRedis, seedPostgres, seedRedis } from '../sandbox/world.js';

/**
 * `demo --docker`: the audited story-portal deployment in containers of a private dockerd
 * (agentic-postgres, agentic-redis, agentic-prometheus, agentic-api; named volumes), backed up the
 * way its backup.sh does it (docker exec pg_dump | gzip, BGSAVE + docker cp, tar of /prometheus),
 * broken, and restored through docker exec / docker cp / docker stop|start.
 */

export const DOCKER_DEMO_DB = 'agentic_platform';
export const DOCKER_DEMO_PG_PASSWORD_ENV = 'RESTORE_ASSISTANT_DEMO_PGPASSWORD';

export interface DockerDemoWorld {
  base: string;
  recipeFile: string;
  backupRoot: string;
  /** Environment the restore needs: the password, DOCKER_HOST/DOCKER_CONFIG of the private daemon, PATH with its client first. */
  env: Record<string, string>;
  secrets: string[];
  daemon: DockerDaemon;
  deployment: DockerDeployment;
  breakProduction(): Promise<string[]>;
  compare(): Promise<Array<{ ok: boolean; line: string }>>;
  teardown(): Promise<void>;
}

function redisKeyCount(fp: Awaited<ReturnType<typeof fingerprintRedis>>): number {
  return Object.values(fp.dbs).reduce((n, db) => n + Object.keys(db).length, 0);
}

export async function buildDockerDemoWorld(opts: { evidenceDir: string; log?: (line: string) => void }): Promise<DockerDemoWorld> {
  const log = opts.log ?? (() => undefined);
  const base = await mkdtemp(path.join(os.tmpdir(), 'restore-assistant-demo-docker-'));
  let daemon: DockerDaemon | undefined;
  try {
    log('Starting a private Docker engine (dockerd on its own socket, no bridge, no iptables)...');
    // Under the demo's dir: its processes (dockerd, containerd, shims) name it on their command lines.
    daemon = await startDockerDaemon({ baseDir: base });
    log(
      'Building local images and starting the story-portal containers: agentic-postgres, agentic-redis, agentic-prometheus, agentic-api...',
    );
    const d = await startStoryPortalDeployment(daemon);
    log(`Filling them with data: database "${DOCKER_DEMO_DB}", Redis keys of every type, Prometheus series...`);
    await seedPostgres(d.pg, DOCKER_DEMO_DB, { rows: 200 });
    await seedRedis(d.redis);
    await d.prom.waitForSamples(5);
    const backupRoot = path.join(base, 'backups');
    log('Backing up the way platform/backup.sh does (docker exec pg_dump | gzip, BGSAVE + docker cp, tar of /prometheus)...');
    await backupStoryPortalDocker(d, DOCKER_DEMO_DB, backupRoot);
    // Sign-ups between the two backups: the older set lacks them (the backup screen's RPO shows it).
    await d.pg.psql(
      "INSERT INTO app.users (external_id, request_id, email, display_name, created_at) SELECT 'late-' || g, gen_random_uuid(), 'late' || g || '@example.com', 'Late signup ' || g, now() FROM generate_series(1, 25) g",
      DOCKER_DEMO_DB,
    );
    await new Promise((r) => setTimeout(r, 1100));
    await backupStoryPortalDocker(d, DOCKER_DEMO_DB, backupRoot);
    const pgFp = await fingerprintPostgres(d.pg, DOCKER_DEMO_DB);
    const tables: Record<string, number> = {};
    for (const [name, t] of Object.entries(pgFp.tables)) tables[name] = t.rows;
    const redisKeys = redisKeyCount(await fingerprintRedis(d.redis));

    // The client that matches the daemon first on PATH (another docker on PATH may speak a newer API).
    const binDir = path.join(base, 'bin');
    await mkdir(binDir);
    await symlink(daemon.client, path.join(binDir, 'docker'));
    const { names, ports, images } = d;
    const recipeFile = path.join(base, 'story-portal-docker.yaml');
    const recipe = {
      name: 'demo-docker',
      description: 'The story-portal deployment in containers (restore-assistant demo --docker)',
      backups: { root: backupRoot, layout: 'story-portal' },
      components: {
        postgres: {
          exec: { kind: 'docker', container: names.postgres },
          host: '127.0.0.1',
          port: ports.postgres,
          user: 'postgres',
          passwordEnv: DOCKER_DEMO_PG_PASSWORD_ENV,
          database: DOCKER_DEMO_DB,
          owner: 'app_owner',
          safetyCopy: 'rename',
          missingRoles: 'create',
        },
        redis: {
          exec: { kind: 'docker', container: names.redis, helperImage: images.redis },
          host: '127.0.0.1',
          port: ports.redis,
          dataDir: '/data',
          dbfilename: 'dump.rdb',
          appendonly: false,
          service: {
            stop: ['docker', 'stop', names.redis],
            start: ['docker', 'start', names.redis],
            status: ['docker', 'exec', names.redis, 'redis-cli', '-p', String(ports.redis), 'ping'],
          },
        },
        prometheus: {
          exec: { kind: 'docker', container: names.prometheus, helperImage: images.prometheus },
          url: d.prom.url,
          dataDir: '/prometheus',
          owner: '65534:65534',
          service: { stop: ['docker', 'stop', names.prometheus], start: ['docker', 'start', names.prometheus] },
        },
      },
      services: [
        {
          name: 'api',
          stop: ['docker', 'stop', names.app],
          start: ['docker', 'start', names.app],
          status: ['docker', 'exec', names.app, 'true'],
        },
      ],
      checks: [
        { name: 'api responds', http: { url: d.appHealthUrl, status: 200 }, when: ['restore'] },
        {
          name: 'database has tables',
          sql: { query: "select count(*) from information_schema.tables where table_schema = 'app'", minRows: 1 },
        },
        { name: 'redis answers', redis: { command: ['PING'], expect: 'PONG' } },
        { name: 'prometheus has series', promql: { query: 'up', minSeries: 1, freshScrape: false } },
      ],
      objectives: { rtoMinutes: 15, rpoMinutes: 360 },
      drill: { intervalDays: 7 },
      evidence: { dir: opts.evidenceDir },
      confirmWord: DOCKER_DEMO_DB,
    };
    await writeFile(recipeFile, `# Written by restore-assistant demo --docker: a recipe for the containers.\n${stringify(recipe)}`);

    let historyAt = Math.floor(Date.now() / 1000);
    let historyBefore = 0;
    const dm = daemon;
    const world: DockerDemoWorld = {
      base,
      recipeFile,
      backupRoot,
      env: { [DOCKER_DEMO_PG_PASSWORD_ENV]: d.password, ...dm.env(), PATH: `${binDir}${path.delimiter}${process.env['PATH'] ?? ''}` },
      secrets: [d.password],
      daemon: dm,
      deployment: d,
      async breakProduction() {
        historyAt = Math.floor(Date.now() / 1000) - 2;
        historyBefore = (await d.prom.queryNumber('count(up)', historyAt).catch(() => undefined)) ?? 0;
        await d.pg.psql('DROP TABLE app.comments CASCADE', DOCKER_DEMO_DB);
        await d.redis.command(['FLUSHALL']);
        await dm.docker(['stop', names.prometheus]);
        await dm.docker([
          'run',
          '--rm',
          '--volumes-from',
          names.prometheus,
          '--entrypoint',
          'sh',
          images.helper,
          '-c',
          'rm -rf /prometheus/* /prometheus/.[!.]*',
        ]);
        await dm.docker(['start', names.prometheus]);
        await d.waitReady();
        return [
          `PostgreSQL (${names.postgres}): table app.comments dropped (it had ${tables['app.comments'] ?? '?'} rows)`,
          `Redis (${names.redis}): FLUSHALL (every key gone)`,
          `Prometheus (${names.prometheus}): its volume emptied (all history gone)`,
        ];
      },
      async compare() {
        const out: Array<{ ok: boolean; line: string }> = [];
        const fp = await fingerprintPostgres(d.pg, DOCKER_DEMO_DB).catch(() => undefined);
        for (const [name, rows] of Object.entries(tables)) {
          const now = fp?.tables[name]?.rows;
          out.push({ ok: now === rows, line: `PostgreSQL ${name}: ${now ?? 'missing'} rows (backup: ${rows})` });
        }
        const rfp = await fingerprintRedis(d.redis).catch(() => undefined);
        const keys = rfp ? redisKeyCount(rfp) : 0;
        out.push({ ok: keys === redisKeys, line: `Redis: ${keys} keys (backup: ${redisKeys})` });
        const past = (await d.prom.queryNumber('count(up)', historyAt).catch(() => undefined)) ?? 0;
        out.push({
          ok: past > 0 && past >= historyBefore,
          line: `Prometheus: ${past > 0 ? 'history from before the incident is back' : 'no history from before the incident'}`,
        });
        return out;
      },
      async teardown() {
        await dm.dispose();
        await rm(base, { recursive: true, force: true });
      },
    };
    return world;
  } catch (error) {
    await daemon?.dispose().catch(() => undefined);
    await rm(base, { recursive: true, force: true }).catch(() => undefined);
    throw error;
  }
}
