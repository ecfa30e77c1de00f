import { copyFile, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startDockerDaemon, restrictedPathDir, type DockerDaemon } from '../../source/sandbox/docker.js';
import { backupStoryPortalDocker, startStoryPortalDeployment, type DockerDeployment } from '../../source/sandbox/docker-deployment.js';
import {
  fingerprintPostgres,
  fingerprintPrometheus,
  fingerprintRedis,
  seedPostgres,
  seedRedis,
  type PostgresFingerprint,
  type PrometheusFingerprint,
  type RedisFingerprint,
  type StoryPortalBackup,
} from '../../source/sandbox/index.js';

/**
 * The audited story-portal deployment, in real containers of a private dockerd: the built CLI
 * restores a backup made the way platform/backup.sh makes it (docker exec pg_dump | gzip, BGSAVE +
 * docker cp, tar of the live Prometheus data) through `docker exec` / `docker cp` / `docker
 * stop|start`, with a host PATH that has docker and node but no psql, pg_restore, redis-cli or
 * redis-check-rdb, as on the audited host.
 */

const DB = 'agentic_platform';

interface CliResult {
  exitCode: number | undefined;
  stdout: string;
  stderr: string;
}

const show = (r: CliResult): string => `exit ${r.exitCode}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

describe('restore into the story-portal containers (docker exec kind), the real CLI', () => {
  let base: string;
  let daemon: DockerDaemon;
  let d: DockerDeployment;
  let spRoot: string;
  let set: StoryPortalBackup;
  let promT: number;
  let backupPg: PostgresFingerprint;
  let backupRedis: RedisFingerprint;
  let backupProm: PrometheusFingerprint;
  let env: Record<string, string>;
  let hostPath: string;

  function recipe(name: string): Promise<string> {
    const { names, ports, images } = d;
    const file = join(base, `${name}.yaml`);
    const body = {
      name,
      backups: { root: spRoot, layout: 'story-portal' },
      components: {
        postgres: { exec: { kind: 'docker', container: names.postgres }, host: '127.0.0.1', port: ports.postgres, user: 'postgres', passwordEnv: 'IT_PG_PASSWORD', database: DB, owner: 'app_owner' },
        redis: {
          // The production image as the helper (it has an ENTRYPOINT: the helper must override it).
          exec: { kind: 'docker', container: names.redis, helperImage: images.redis },
          host: '127.0.0.1',
          port: ports.redis,
          dataDir: '/data',
          dbfilename: 'dump.rdb',
          appendonly: false,
          service: { stop: ['docker', 'stop', names.redis], start: ['docker', 'start', names.redis], status: ['docker', 'exec', names.redis, 'redis-cli', '-p', String(ports.redis), 'ping'], timeoutSeconds: 60 },
        },
        prometheus: {
          exec: { kind: 'docker', container: names.prometheus, helperImage: images.prometheus },
          url: d.prom.url,
          dataDir: '/prometheus',
          owner: '65534:65534',
          service: { stop: ['docker', 'stop', names.prometheus], start: ['docker', 'start', names.prometheus], timeoutSeconds: 60 },
        },
      },
      services: [{ name: 'api', stop: ['docker', 'stop', names.app], start: ['docker', 'start', names.app], status: ['docker', 'exec', names.app, 'true'], timeoutSeconds: 60 }],
      checks: [
        { name: 'api responds', http: { url: d.appHealthUrl, status: 200 }, when: ['restore'], retries: 10, intervalSeconds: 0.5 },
        { name: 'database has tables', sql: { query: "select count(*) from information_schema.tables where table_schema = 'app'", minRows: 1 } },
        { name: 'redis answers', redis: { command: ['PING'], expect: 'PONG' } },
        { name: 'prometheus has series', promql: { query: 'up', minSeries: 1 } },
      ],
      objectives: { rtoMinutes: 30, rpoMinutes: 1440 },
      evidence: { dir: join(base, 'evidence') },
    };
    return writeFile(file, JSON.stringify(body, null, 2)).then(() => file);
  }

  function run(args: string[]): ResultPromise {
    return execa(process.execPath, [inject('cliBin'), ...args], { env, extendEnv: false, reject: false, cwd: base, stdin: 'ignore' });
  }

  async function restore(args: string[]): Promise<CliResult> {
    const r = await run(['restore', ...args]);
    return { exitCode: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr) };
  }

  async function appHealthy(): Promise<boolean> {
    try {
      return (await fetch(d.appHealthUrl, { signal: AbortSignal.timeout(2000) })).status === 200;
    } catch {
      return false;
    }
  }

  async function containersRun(): Promise<void> {
    for (const name of Object.values(d.names)) expect((await d.state(name)).running, `${name} running`).toBe(true);
    expect(await appHealthy()).toBe(true);
    expect(String(await d.redis.command(['PING']))).toBe('PONG');
    expect((await fetch(`${d.prom.url}/-/ready`)).status).toBe(200);
  }

  /** A copy of the set under a later id with its PostgreSQL dump rewritten. */
  async function variantSet(offsetSeconds: number, rewrite: (gz: Buffer) => Buffer): Promise<string> {
    const time = new Date(Date.parse(`${set.id.slice(0, 10)}T${set.id.slice(11).replace(/-/g, ':')}Z`) + offsetSeconds * 1000);
    const p = (n: number): string => String(n).padStart(2, '0');
    const id = `${time.getUTCFullYear()}-${p(time.getUTCMonth() + 1)}-${p(time.getUTCDate())}_${p(time.getUTCHours())}-${p(time.getUTCMinutes())}-${p(time.getUTCSeconds())}`;
    const dir = join(spRoot, id);
    await mkdir(dir);
    for (const f of await readdir(set.dir)) if (f !== 'postgres.sql.gz' && f !== 'metadata.txt') await copyFile(join(set.dir, f), join(dir, f));
    await writeFile(join(dir, 'metadata.txt'), (await readFile(join(set.dir, 'metadata.txt'), 'utf8')).replace(/^Backup Date: .*$/m, `Backup Date: ${id}`));
    await writeFile(join(dir, 'postgres.sql.gz'), rewrite(await readFile(join(set.dir, 'postgres.sql.gz'))));
    return id;
  }

  async function markPreRestoreState(tag: string): Promise<void> {
    await d.pg.psql(`CREATE TABLE IF NOT EXISTS public.pre_restore_marker (tag text); INSERT INTO public.pre_restore_marker VALUES ('${tag}')`, DB);
    await d.redis.command(['SET', 'pre:restore:marker', tag]);
    // Redis files are what a rollback puts back: make the marker part of them.
    await d.redis.command(['SAVE']);
  }

  async function expectPreRestoreState(tag: string): Promise<void> {
    expect(await d.pg.psql("SELECT string_agg(tag, ',') FROM public.pre_restore_marker", DB)).toContain(tag);
    expect(String(await d.redis.command(['GET', 'pre:restore:marker']))).toBe(tag);
    expect(await d.pg.psql(`SELECT count(*) FROM pg_database WHERE datname LIKE '${DB}\\_\\_pre\\_restore\\_%'`)).toBe('0');
  }

  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'ra-docker-it-'));
    // No skip: when the daemon cannot start, this throws with dockerd's own log.
    daemon = await startDockerDaemon();
    d = await startStoryPortalDeployment(daemon);
    await seedPostgres(d.pg, DB, { rows: 40 });
    await seedRedis(d.redis);
    await d.prom.waitForSamples(6);
    promT = Math.floor(Date.now() / 1000) - 1;
    spRoot = join(base, 'story-portal-backups');
    set = await backupStoryPortalDocker(d, DB, spRoot, { time: new Date() });
    [backupPg, backupRedis, backupProm] = await Promise.all([fingerprintPostgres(d.pg, DB), fingerprintRedis(d.redis), fingerprintPrometheus(d.prom, promT)]);
    // The audited host: docker and node, no PostgreSQL or Redis client tools.
    hostPath = await restrictedPathDir(join(base, 'host-bin'), ['node', 'tar', 'gzip', 'sh'], { docker: daemon.client });
    env = {
      PATH: hostPath,
      HOME: base,
      ...daemon.env(),
      IT_PG_PASSWORD: d.password,
      XDG_RUNTIME_DIR: join(base, 'run'),
      XDG_STATE_HOME: join(base, 'state'),
      NO_COLOR: '1',
    };
  }, 240_000);

  afterAll(async () => {
    await daemon?.dispose();
    if (base) await rm(base, { recursive: true, force: true });
  }, 120_000);

  it('restores a wrecked deployment: PostgreSQL, Redis and Prometheus equal the backup, the app is healthy', async () => {
    const pgState = await d.state(d.names.postgres);
    await d.pg.psql('DROP TABLE app.comments; UPDATE app.users SET karma = -1', DB);
    await d.redis.command(['FLUSHALL']);
    // Prometheus loses its data: a fresh, empty volume.
    await daemon.docker(['stop', d.names.prometheus]);
    await daemon.docker(['run', '--rm', '--volumes-from', d.names.prometheus, '--entrypoint', 'sh', d.images.helper, '-c', 'rm -rf /prometheus/* /prometheus/.[!.]*']);
    await daemon.docker(['start', d.names.prometheus]);
    await d.waitReady();
    expect(await fingerprintPostgres(d.pg, DB)).not.toEqual(backupPg);
    expect(await fingerprintRedis(d.redis)).not.toEqual(backupRedis);
    expect(await fingerprintPrometheus(d.prom, promT)).not.toEqual(backupProm);

    const r = await restore(['--recipe', await recipe('sp-docker'), '--backup', 'latest', '--yes']);
    expect(r.exitCode, show(r)).toBe(0);
    expect(r.stdout).toMatch(/Result: restored and healthy \(exit 0\)/);
    expect(await fingerprintPostgres(d.pg, DB)).toEqual(backupPg);
    expect(await fingerprintRedis(d.redis)).toEqual(backupRedis);
    expect(await fingerprintPrometheus(d.prom, promT)).toEqual(backupProm);
    await containersRun();
    // PostgreSQL was never stopped: the same container process.
    expect((await d.state(d.names.postgres)).startedAt).toBe(pgState.startedAt);
    // The database as it was is kept aside; the Prometheus data as it was is kept inside the volume.
    expect(await d.pg.psql(`SELECT count(*) FROM pg_database WHERE datname LIKE '${DB}__pre_restore_%'`)).toBe('1');
    const aside = await daemon.docker(['exec', d.names.prometheus, 'sh', '-c', 'ls -a /prometheus']);
    expect(aside.stdout).toMatch(/\.pre_restore_\d{8}T\d{6}Z/);
    expect(r.stdout + r.stderr).not.toContain(d.password);
    for (const name of (await d.pg.psql(`SELECT string_agg(datname, ' ') FROM pg_database WHERE datname LIKE '${DB}__pre_restore_%'`)).split(' ').filter(Boolean)) {
      await d.pg.psql(`DROP DATABASE "${name}"`);
    }
  });

  it('a truncated dump fails midway and is rolled back inside the containers: exit 1, the data as it was', async () => {
    await markPreRestoreState('truncated');
    const id = await variantSet(60, (gz) => gz.subarray(0, Math.floor(gz.length * 0.6)));
    const r = await restore(['--recipe', await recipe('sp-docker'), '--backup', id, '--yes', '--force-unverified', 'integration test: truncated on purpose']);
    expect(r.exitCode, show(r)).toBe(1);
    expect(r.stdout).toMatch(/Result: failed and rolled back/);
    await expectPreRestoreState('truncated');
    await containersRun();
  });

  it('Ctrl-C (SIGINT) mid-restore rolls back inside the containers: exit 130', async () => {
    await markPreRestoreState('sigint');
    const id = await variantSet(120, (gz) => {
      const sql = gunzipSync(gz).toString('utf8');
      const at = sql.indexOf('\n\\.\n') + 4;
      return gzipSync(`${sql.slice(0, at)}SELECT pg_sleep(60);\n${sql.slice(at)}`);
    });
    const child = run(['restore', '--recipe', await recipe('sp-docker'), '--backup', id, '--yes']);
    let sleeping = false;
    for (let i = 0; i < 1200 && !sleeping; i++) {
      sleeping = (await d.pg.psql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(60)%'")) !== '0';
      if (!sleeping) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(sleeping).toBe(true);
    child.kill('SIGINT');
    const r = await child;
    expect(r.exitCode, `${String(r.stdout)}\n${String(r.stderr)}`).toBe(130);
    expect(String(r.stdout)).toMatch(/Result: interrupted and rolled back/);
    // The psql inside the container was ended too, not left running the dump.
    expect(await d.pg.psql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(60)%'")).toBe('0');
    await expectPreRestoreState('sigint');
    await containersRun();
  });
});
