import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
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
import { markPreRestoreState, preRestoreStateProblems, STORY_DB as DB, storyPortalRecipe, variantStorySet } from '../support/docker.js';

/**
 * The `compose` exec kind with Debian's docker-compose (v1): the story-portal services from a
 * compose file, restored with `docker-compose exec -T` / `docker-compose stop|start` and
 * `docker cp`, from a host PATH with docker and docker-compose but no PostgreSQL or Redis tools.
 */

interface CliResult {
  exitCode: number | undefined;
  stdout: string;
  stderr: string;
}

const show = (r: CliResult): string => `exit ${r.exitCode}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

describe('restore into the story-portal compose services (compose exec kind, docker-compose v1), the real CLI', () => {
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

  async function recipe(name: string): Promise<string> {
    const file = join(base, `${name}.yaml`);
    await writeFile(
      file,
      JSON.stringify(storyPortalRecipe(d, { name, kind: 'compose', backupRoot: spRoot, evidenceDir: join(base, 'evidence') }), null, 2),
    );
    return file;
  }

  async function restore(args: string[]): Promise<CliResult> {
    const r = await execa(process.execPath, [inject('cliBin'), 'restore', ...args], {
      env,
      extendEnv: false,
      reject: false,
      cwd: base,
      stdin: 'ignore',
    });
    return { exitCode: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr) };
  }

  async function containersRun(): Promise<void> {
    for (const name of Object.values(d.names)) expect((await d.state(name)).running, `${name} running`).toBe(true);
    expect((await fetch(d.appHealthUrl)).status).toBe(200);
  }

  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'ra-compose-it-'));
    daemon = await startDockerDaemon();
    d = await startStoryPortalDeployment(daemon, { compose: { project: 'storyportal', dir: join(base, 'compose') } });
    await seedPostgres(d.pg, DB, { rows: 30 });
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
    const hostPath = await restrictedPathDir(join(base, 'host-bin'), ['node', 'docker-compose'], { docker: daemon.client });
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
    await d?.dispose().catch(() => undefined);
    await daemon?.dispose();
    if (base) await rm(base, { recursive: true, force: true });
  }, 120_000);

  it('restores a wrecked deployment through docker-compose: data equal to the backup, the app healthy', async () => {
    await d.pg.psql('DROP TABLE app.stories CASCADE; DELETE FROM app.users', DB);
    await d.redis.command(['FLUSHALL']);
    expect(await fingerprintPostgres(d.pg, DB)).not.toEqual(backupPg);

    const r = await restore(['--recipe', await recipe('sp-compose'), '--backup', set.id, '--yes']);
    expect(r.exitCode, show(r)).toBe(0);
    expect(r.stdout).toMatch(/Result: restored and healthy \(exit 0\)/);
    expect(await fingerprintPostgres(d.pg, DB)).toEqual(backupPg);
    expect(await fingerprintRedis(d.redis)).toEqual(backupRedis);
    expect(await fingerprintPrometheus(d.prom, promT)).toEqual(backupProm);
    await containersRun();
    for (const name of (await d.pg.psql(`SELECT string_agg(datname, ' ') FROM pg_database WHERE datname LIKE '${DB}__pre_restore_%'`))
      .split(' ')
      .filter(Boolean)) {
      await d.pg.psql(`DROP DATABASE "${name}"`);
    }
  }, 240_000);

  it('a truncated dump is rolled back inside the compose services: exit 1', async () => {
    await markPreRestoreState(d, 'compose-truncated');
    const id = await variantStorySet(set, spRoot, 60, (gz) => gz.subarray(0, Math.floor(gz.length * 0.6)));
    const r = await restore([
      '--recipe',
      await recipe('sp-compose'),
      '--backup',
      id,
      '--yes',
      '--force-unverified',
      'integration test: truncated on purpose',
    ]);
    expect(r.exitCode, show(r)).toBe(1);
    expect(r.stdout).toMatch(/Result: failed and rolled back/);
    expect(await preRestoreStateProblems(d, 'compose-truncated')).toBe('');
    await containersRun();
  }, 240_000);
});
