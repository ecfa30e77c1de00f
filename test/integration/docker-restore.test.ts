import { mkdtemp, rm, writeFile } from 'node:fs/promises';
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
import {
  markPreRestoreState as markPreRestore,
  preRestoreStateProblems,
  STORY_DB as DB,
  storyPortalRecipe,
  variantStorySet,
} from '../support/docker.js';

/**
 * The audited story-portal deployment, in real containers of a private dockerd: the built CLI
 * restores a backup made the way platform/backup.sh makes it (docker exec pg_dump | gzip, BGSAVE +
 * docker cp, tar of the live Prometheus data) through `docker exec` / `docker cp` / `docker
 * stop|start`, with a host PATH that has docker and node but no psql, pg_restore, redis-cli or
 * redis-check-rdb, as on the audited host.
 */

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

  async function recipe(name: string): Promise<string> {
    const file = join(base, `${name}.yaml`);
    await writeFile(
      file,
      JSON.stringify(storyPortalRecipe(d, { name, kind: 'docker', backupRoot: spRoot, evidenceDir: join(base, 'evidence') }), null, 2),
    );
    return file;
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

  const variantSet = (offsetSeconds: number, rewrite: (gz: Buffer) => Buffer): Promise<string> =>
    variantStorySet(set, spRoot, offsetSeconds, rewrite);
  const markPreRestoreState = (tag: string): Promise<void> => markPreRestore(d, tag);
  const expectPreRestoreState = async (tag: string): Promise<void> => expect(await preRestoreStateProblems(d, tag)).toBe('');

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
    [backupPg, backupRedis, backupProm] = await Promise.all([
      fingerprintPostgres(d.pg, DB),
      fingerprintRedis(d.redis),
      fingerprintPrometheus(d.prom, promT),
    ]);
    // The audited host: docker and node, no PostgreSQL or Redis client tools.
    hostPath = await restrictedPathDir(join(base, 'host-bin'), ['node', 'tar', 'gzip', 'sh'], { docker: daemon.client });
    env = {
      PATH: hostPath,
      HOME: base,
      ...daemon.env(),
      IT_PG_PASSWORD: d.password,
      XDG_RUNTIME_DIR: join(base, 'run'),
      XDG_STATE_HOME: join(base, 'state'),
      // This file's own lock and state dirs, never the machine-wide ones (a killed run's stale
      // container locks would refuse every later run's restore, exit 8) nor the test run's: the
      // docker and compose files lock the same keys (container:agentic-redis:/data, ...) in their
      // own daemons, and when both run at once each refused the other's restores (exit 8).
      RESTORE_ASSISTANT_LOCK_DIR: join(base, 'locks'),
      RESTORE_ASSISTANT_STATE_DIR: join(base, 'ra-state'),
      NO_COLOR: '1',
    };
  }, 240_000);

  afterAll(async () => {
    await daemon?.dispose();
    if (base) await rm(base, { recursive: true, force: true });
  }, 120_000);

  it('preflight in the containers: a missing helper image, a missing container, no docker on PATH: exit 9, each named, nothing touched', async () => {
    const before = await Promise.all(Object.values(d.names).map((n) => d.state(n)));
    const pgBefore = await fingerprintPostgres(d.pg, DB);
    const file = join(base, 'sp-broken.yaml');
    const body = storyPortalRecipe(d, { name: 'sp-broken', kind: 'docker', backupRoot: spRoot, evidenceDir: join(base, 'evidence') }) as {
      components: Record<string, { exec: Record<string, unknown> }>;
    };
    // No helperImage: the default busybox:stable is not on this (offline) host.
    delete body.components['redis']!.exec['helperImage'];
    body.components['prometheus']!.exec['container'] = 'agentic-prometheus-typo';
    await writeFile(file, JSON.stringify(body));
    const r = await restore(['--recipe', file, '--backup', set.id, '--yes']);
    expect(r.exitCode, show(r)).toBe(9);
    expect(r.stderr).toMatch(/Image busybox:stable is not on this host/);
    expect(r.stderr).toContain(`Set components.redis.exec.helperImage to an image that is here`);
    expect(r.stderr).toMatch(/Container agentic-prometheus-typo \(Prometheus\) does not exist/);

    // The audited host without even docker on PATH: the tool says so.
    const noDocker = await restrictedPathDir(join(base, 'host-bin-no-docker'), ['node']);
    const r2 = await execa(
      process.execPath,
      [inject('cliBin'), 'restore', '--recipe', await recipe('sp-docker'), '--backup', set.id, '--yes'],
      { env: { ...env, PATH: noDocker }, extendEnv: false, reject: false, cwd: base, stdin: 'ignore' },
    );
    expect(r2.exitCode, `${String(r2.stdout)}\n${String(r2.stderr)}`).toBe(9);
    expect(String(r2.stderr)).toMatch(/docker is not available on this host/);

    expect(await Promise.all(Object.values(d.names).map((n) => d.state(n)))).toEqual(before);
    expect(await fingerprintPostgres(d.pg, DB)).toEqual(pgBefore);
  });

  it('restores a wrecked deployment: PostgreSQL, Redis and Prometheus equal the backup, the app is healthy', async () => {
    const pgState = await d.state(d.names.postgres);
    await d.pg.psql('DROP TABLE app.comments; UPDATE app.users SET karma = -1', DB);
    await d.redis.command(['FLUSHALL']);
    // Prometheus loses its data: a fresh, empty volume.
    await daemon.docker(['stop', d.names.prometheus]);
    await daemon.docker([
      'run',
      '--rm',
      '--volumes-from',
      d.names.prometheus,
      '--entrypoint',
      'sh',
      d.images.helper,
      '-c',
      'rm -rf /prometheus/* /prometheus/.[!.]*',
    ]);
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
    for (const name of (await d.pg.psql(`SELECT string_agg(datname, ' ') FROM pg_database WHERE datname LIKE '${DB}__pre_restore_%'`))
      .split(' ')
      .filter(Boolean)) {
      await d.pg.psql(`DROP DATABASE "${name}"`);
    }
  });

  it('a truncated dump fails midway and is rolled back inside the containers: exit 1, the data as it was', async () => {
    await markPreRestoreState('truncated');
    const id = await variantSet(60, (gz) => gz.subarray(0, Math.floor(gz.length * 0.6)));
    const r = await restore([
      '--recipe',
      await recipe('sp-docker'),
      '--backup',
      id,
      '--yes',
      '--force-unverified',
      'integration test: truncated on purpose',
    ]);
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
  it('a drill of the docker recipe uses throwaway containers of the production images: production ids, start times and data unchanged, scratch removed', async () => {
    const names = Object.values(d.names);
    const states = await Promise.all(names.map((n) => d.state(n)));
    const fingerprints = async (): Promise<unknown[]> =>
      Promise.all([fingerprintPostgres(d.pg, DB), fingerprintRedis(d.redis), fingerprintPrometheus(d.prom, promT)]);
    const before = await fingerprints();
    const volumesBefore = (await daemon.docker(['volume', 'ls', '--format', '{{.Name}}'])).stdout.split('\n').sort();

    // Scratch containers of the production images, seen while the drill runs.
    const seen = new Set<string>();
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const ps = await daemon.docker(['ps', '--filter', 'label=restore-assistant.drill=1', '--format', '{{.Names}} {{.Image}}'], {
          reject: false,
        });
        for (const line of ps.stdout.split('\n').filter(Boolean)) seen.add(line);
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
    })();
    const r = await execa(
      process.execPath,
      [inject('cliBin'), 'drill', '--recipe', await recipe('sp-docker'), '--backup', set.id, '--yes'],
      { env, extendEnv: false, reject: false, cwd: base, stdin: 'ignore' },
    );
    watching = false;
    await watcher;
    const out = `exit ${r.exitCode}\n--- stdout\n${String(r.stdout)}\n--- stderr\n${String(r.stderr)}`;
    expect(r.exitCode, out).toBe(0);
    expect(String(r.stdout)).toMatch(/Drill of sp-docker: PASSED/);
    // The scratch containers ran the production images (docker ps shows the image id they were created from).
    const scratch = [...seen].map((line) => line.split(' '));
    expect(scratch.map(([n]) => n?.replace(/^ra-drill-[0-9a-f]+-/, '')).sort(), out).toEqual(['postgres', 'prometheus', 'redis']);
    const prodImages = await Promise.all(
      ['postgres', 'redis', 'prometheus'].map(async (k) => (await d.state(d.names[k as 'postgres'])).image),
    );
    for (const [, image] of scratch)
      expect(prodImages.some((id) => id.replace(/^sha256:/, '').startsWith((image ?? '').replace(/^sha256:/, '')))).toBe(true);

    expect(await Promise.all(names.map((n) => d.state(n)))).toEqual(states);
    expect(await fingerprints()).toEqual(before);
    // --rm helper containers (also those of earlier tests) are removed by the daemon after they
    // exit, asynchronously: wait for that (bounded), then nothing but production may be left.
    const others = async (): Promise<string[]> =>
      (await daemon.docker(['ps', '-a', '--format', '{{.Names}} {{.Image}} {{.Status}} {{.Command}}'])).stdout
        .split('\n')
        .filter((l) => l !== '' && !names.includes(l.split(' ')[0] ?? ''));
    for (let i = 0; i < 60 && (await others()).length > 0; i++) await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await others(), 'containers left').toEqual([]);
    expect((await daemon.docker(['ps', '-a', '--format', '{{.Names}}'])).stdout.split('\n').filter(Boolean).sort()).toEqual(
      [...names].sort(),
    );
    expect((await daemon.docker(['volume', 'ls', '--format', '{{.Name}}'])).stdout.split('\n').sort()).toEqual(volumesBefore);
  }, 240_000);
});
