import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { copyFile, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  backupMetachat,
  backupStoryPortal,
  fingerprintPostgres,
  fingerprintRedis,
  SandboxGroup,
  seedPostgres,
  seedRedis,
  serviceCtlArgv,
  sha256File,
  storyPortalBackupId,
  type PostgresFingerprint,
  type PostgresSandbox,
  type RedisFingerprint,
  type RedisSandbox,
} from '../../source/sandbox/index.js';
import { runCli, type CliResult } from '../support/cli.js';
import { startS3, type S3Sandbox } from '../support/s3.js';

/**
 * Encrypted sets on LOCAL disk (issue 15), the staging directory's rules, staging rejections in the
 * evidence, and drill --pick of an off-site set. Real gpg and age, real PostgreSQL and Redis, a real
 * S3 server (s3rver behind SigV4, test/support/s3.ts), the built CLI.
 */

const DB = 'encdb';
const CHAT = 'encchat';
const PASSPHRASE = `local-gpg-${Math.random().toString(36).slice(2)}-phrase`;

function walk(dir: string): string[] {
  const out: string[] = [];
  if (!existsSync(dir)) return out;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

describe('encrypted local sets, staging rules, drill --pick off-site', () => {
  let base: string;
  let group: SandboxGroup;
  let s3: S3Sandbox;
  let pg: PostgresSandbox;
  let redis: RedisSandbox;
  let spId: string;
  let mcStamp: string;
  let backupPg: PostgresFingerprint;
  let backupRedis: RedisFingerprint;
  let backupChat: PostgresFingerprint;
  let ageId: string;
  let wrongAgeId: string;
  let env: Record<string, string>;
  const outputs: string[] = [];
  const spRoot = (): string => join(base, 'sp-enc');
  const mcRoot = (): string => join(base, 'mc-enc');

  const gpgSymmetric = (input: string, output: string): void => {
    execFileSync(
      'gpg',
      ['--batch', '--homedir', join(base, 'gnupg-test'), '--pinentry-mode', 'loopback', '--passphrase-fd', '0'].concat([
        '--symmetric',
        '--cipher-algo',
        'AES256',
        '-o',
        output,
        input,
      ]),
      { input: PASSPHRASE },
    );
  };

  async function recipe(name: string, backups: Record<string, unknown>, components: Record<string, unknown>): Promise<string> {
    const file = join(base, `${name}.json`);
    await writeFile(
      file,
      JSON.stringify({ name, evidence: { dir: join(base, 'evidence') }, objectives: { rpoMinutes: 1440 }, backups, components }, null, 2),
    );
    return file;
  }
  const pgTarget = (database: string): Record<string, unknown> => ({
    host: pg.host,
    port: pg.port,
    user: 'postgres',
    passwordEnv: 'IT_PG_PASSWORD',
    database,
    owner: 'app_owner',
    bin: pg.binDir,
  });
  const redisTarget = (): Record<string, unknown> => ({
    host: redis.host,
    port: redis.port,
    service: {
      stop: serviceCtlArgv('stop', redis.spec),
      start: serviceCtlArgv('start', redis.spec),
      status: serviceCtlArgv('status', redis.spec),
      timeoutSeconds: 30,
    },
  });
  const storyRecipe = (name: string, extra: Record<string, unknown> = {}, passphraseEnv = 'IT_GPG_PASSPHRASE'): Promise<string> =>
    recipe(
      name,
      {
        root: spRoot(),
        layout: 'story-portal',
        encryption: { gpg: { passphraseEnv }, age: { identityFile: ageId } },
        ...extra,
      },
      { postgres: pgTarget(DB), redis: redisTarget() },
    );
  const chatRecipe = (name: string, identityFile: string): Promise<string> =>
    recipe(
      name,
      { root: mcRoot(), layout: 'metachat', database: CHAT, encryption: { age: { identityFile } } },
      { postgres: pgTarget(CHAT) },
    );

  async function cli(args: string[], extraEnv: Record<string, string> = {}): Promise<CliResult> {
    const r = await runCli(args, { env: { ...env, ...extraEnv }, cwd: base });
    outputs.push(r.stdout, r.stderr);
    return r;
  }
  const show = (r: CliResult): string => `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
  const evidenceRuns = (): Array<{ dir: string; events: string }> => {
    const root = join(base, 'evidence');
    if (!existsSync(root)) return [];
    return readdirSync(root, { withFileTypes: true })
      .filter((e) => e.isDirectory() && existsSync(join(root, e.name, 'events.jsonl')))
      .map((e) => ({ dir: join(root, e.name), events: readFileSync(join(root, e.name, 'events.jsonl'), 'utf8') }));
  };
  const history = (): Array<{ kind?: string; outcome?: string; backup?: { id?: string } }> =>
    readFileSync(join(base, 'evidence', 'history.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { kind?: string; outcome?: string; backup?: { id?: string } });

  const argvSeen = new Set<string>();
  /** Runs `fn` while sampling every process's argv (/proc/<pid>/cmdline): gpg and age run during it. */
  async function watchArgv<T>(fn: () => Promise<T>): Promise<T> {
    let running = true;
    const sampler = (async () => {
      while (running) {
        for (const pid of await readdir('/proc').catch(() => [] as string[])) {
          if (!/^\d+$/.test(pid)) continue;
          try {
            argvSeen.add((await readFile(`/proc/${pid}/cmdline`)).toString('utf8').replace(/\0/g, ' '));
          } catch {
            // gone
          }
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    try {
      return await fn();
    } finally {
      running = false;
      await sampler;
    }
  }

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'ra-enc-local-it-'));
    mkdirSync(join(base, 'gnupg-test'), { mode: 0o700 });
    group = new SandboxGroup({ baseDir: base });
    [pg, redis, s3] = await Promise.all([group.postgres(), group.redis(), startS3({ baseDir: base })]);
    await Promise.all([seedPostgres(pg, DB, { rows: 40 }), seedPostgres(pg, CHAT, { rows: 20 }), seedRedis(redis)]);
    const time = new Date(Date.now() - 3600_000);
    const set = await backupStoryPortal({ pg, db: DB, redis }, spRoot(), { time });
    spId = set.id;
    const mc = await backupMetachat({ pg, db: CHAT }, mcRoot(), { time });
    mcStamp = mc.timestamp;
    [backupPg, backupRedis, backupChat] = await Promise.all([
      fingerprintPostgres(pg, DB),
      fingerprintRedis(redis),
      fingerprintPostgres(pg, CHAT),
    ]);
    ageId = join(base, 'age-identity.txt');
    wrongAgeId = join(base, 'age-other.txt');
    execFileSync('age-keygen', ['-o', ageId], { stdio: 'ignore' });
    execFileSync('age-keygen', ['-o', wrongAgeId], { stdio: 'ignore' });
    const recipient = execFileSync('age-keygen', ['-y', ageId], { encoding: 'utf8' }).trim();

    // story-portal on local disk: postgres.sql.gz.gpg (symmetric, + a sidecar of the ciphertext) and
    // redis.rdb.age (+ the plaintext's sidecar, checked after decryption); the plaintext files removed.
    const dir = join(spRoot(), spId);
    const plainSql = join(dir, 'postgres.sql.gz');
    const plainRdb = join(dir, 'redis.rdb');
    gpgSymmetric(plainSql, `${plainSql}.gpg`);
    await writeFile(`${plainSql}.gpg.sha256`, `${await sha256File(`${plainSql}.gpg`)}  postgres.sql.gz.gpg\n`);
    await writeFile(`${plainRdb}.sha256`, `${await sha256File(plainRdb)}  redis.rdb\n`);
    execFileSync('age', ['-r', recipient, '-o', `${plainRdb}.age`, plainRdb]);
    // Kept for the off-site copy (uploaded encrypted) below.
    const uploads: Array<[string, Buffer]> = [];
    for (const f of walk(dir)) if (basename(f) !== 'postgres.sql.gz' && basename(f) !== 'redis.rdb') uploads.push([f, await readFile(f)]);
    await rm(plainSql);
    await rm(plainRdb);

    // metachat on local disk: <db>_<stamp>.dump.age and the plaintext's .dump.sha256 (the backup script's).
    execFileSync('age', ['-r', recipient, '-o', `${mc.dump}.age`, mc.dump]);
    await rm(mc.dump);

    // The same story-portal set off-site, under another id (one hour older), for drill --pick.
    const offId = storyPortalBackupId(new Date(time.getTime() - 3600_000));
    for (const [f, body] of uploads) await s3.put(`story/${relative(spRoot(), f).replace(spId, offId)}`, body);

    env = {
      IT_PG_PASSWORD: pg.password,
      IT_S3_KEY: s3.accessKeyId,
      IT_S3_SECRET: s3.secretAccessKey,
      IT_GPG_PASSPHRASE: PASSPHRASE,
      XDG_STATE_HOME: join(base, 'state'),
      XDG_RUNTIME_DIR: join(base, 'run'),
    };
  }, 240_000);

  afterAll(async () => {
    await group?.stopAll();
    await s3?.dispose();
    if (base) rmSync(base, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
  });

  it('lists encrypted local sets by their plain names (nothing decrypted)', async () => {
    const r = await cli(['list', '--recipe', await storyRecipe('sp-list'), '--json']);
    expect(r.code, show(r)).toBe(0);
    const j = JSON.parse(r.stdout) as {
      sets: Array<{ id: string; components: Array<{ kind: string; format: string; encryption?: string }> }>;
    };
    expect(j.sets.map((s) => s.id)).toEqual([spId]);
    expect(j.sets[0]!.components.map((c) => [c.kind, c.format, c.encryption]).sort()).toEqual([
      ['postgres', 'pg-plain-gz', 'gpg'],
      ['redis', 'redis-rdb', 'age'],
    ]);
    const mc = await cli(['list', '--recipe', await chatRecipe('mc-list', ageId)]);
    expect(mc.code, show(mc)).toBe(0);
    expect(mc.stdout).toMatch(new RegExp(`${mcStamp}.*postgres [0-9.]+ KiB \\(age\\)`));
    expect(existsSync(join(base, 'staging'))).toBe(false);
  });

  it('verifies an encrypted local set (decrypted in full, both checksums), records it, leaves no plaintext', async () => {
    const r = await cli(['verify', spId, '--recipe', await storyRecipe('sp-verify')]);
    expect(r.code, show(r)).toBe(0);
    expect(r.stderr).toContain('postgres.sql.gz.gpg with passphrase from $IT_GPG_PASSPHRASE');
    expect(r.stderr).toContain(`redis.rdb.age with age identity ${ageId}`);
    expect(r.stderr).toContain('Checksums verified');
    expect(r.stderr).toContain('Decrypted copy removed');
    const run = evidenceRuns().find((x) => x.events.includes('"kind":"verify"') && x.events.includes(`encrypted file ${spRoot()}`));
    expect(run, 'a verify run naming the encrypted files').toBeDefined();
    expect(run!.events).toMatch(/postgres\.sql\.gz\.gpg: \d+ bytes, sha256 [0-9a-f]{64}, decrypted with gpg/);
    expect(walk(join(base, 'staging'))).toEqual([]);
    // Without a recipe there is no key: the ciphertext is not mistaken for a dump.
    const noKey = await cli(['verify', join(spRoot(), spId)]);
    expect(noKey.code, show(noKey)).toBe(3);
    expect(noKey.stdout).toContain('encrypted-not-decrypted');
  });

  it('restores an encrypted story-portal set (gpg + age) and an age metachat set from local disk', async () => {
    await pg.psql('DROP TABLE app.comments; UPDATE app.users SET karma = -1', DB);
    await pg.psql('UPDATE app.users SET karma = -7', CHAT);
    await redis.command(['FLUSHALL']);
    expect(await fingerprintPostgres(pg, DB)).not.toEqual(backupPg);

    // The dry run decrypts to plan (formats, sizes; it probes read-only) and removes the plaintext when it ends.
    const plan = await cli(['plan', '--recipe', await storyRecipe('sp-plan'), '--backup', spId]);
    expect(plan.code, show(plan)).toBe(0);
    expect(plan.stderr).toContain('Decrypted copy removed');
    expect(walk(join(base, 'staging'))).toEqual([]);

    const sp = await watchArgv(() => cli(['restore', '--recipe', join(base, 'sp-verify.json'), '--backup', spId, '--yes']));
    expect(sp.code, show(sp)).toBe(0);
    expect(
      [...argvSeen].some((a) => a.includes('restore')),
      'argv was sampled during the restore',
    ).toBe(true);
    expect(await fingerprintPostgres(pg, DB)).toEqual(backupPg);
    expect(await fingerprintRedis(redis)).toEqual(backupRedis);

    const mc = await cli(['restore', '--recipe', await chatRecipe('mc-restore', ageId), '--backup', 'latest', '--yes']);
    expect(mc.code, show(mc)).toBe(0);
    expect(mc.stderr).toContain(`decrypted postgres/${CHAT}_${mcStamp}.dump.age`);
    expect(await fingerprintPostgres(pg, CHAT)).toEqual(backupChat);
    expect(walk(join(base, 'staging'))).toEqual([]);
  });

  it('refuses a wrong key and a bad ciphertext checksum with exit 3, untouched, recorded as rejected verify runs', async () => {
    const pgBefore = await fingerprintPostgres(pg, DB);
    const chatBefore = await fingerprintPostgres(pg, CHAT);
    const redisBefore = await fingerprintRedis(redis);
    const rejectedBefore = history().filter((h) => h.kind === 'verify' && h.outcome === 'rejected').length;

    const wrongGpg = await cli(
      ['restore', '--recipe', await storyRecipe('sp-wrong', {}, 'IT_WRONG_PASSPHRASE'), '--backup', spId, '--yes'],
      { IT_WRONG_PASSPHRASE: 'not-the-passphrase' },
    );
    expect(wrongGpg.code, show(wrongGpg)).toBe(3);
    expect(wrongGpg.stderr).toContain('key tried: passphrase from $IT_WRONG_PASSPHRASE');
    expect(wrongGpg.stderr).toContain('Nothing was touched');
    expect(wrongGpg.stderr).toContain('recorded as a rejected verification');

    const wrongAge = await cli(['verify', mcStamp, '--recipe', await chatRecipe('mc-wrong', wrongAgeId)]);
    expect(wrongAge.code, show(wrongAge)).toBe(3);
    expect(wrongAge.stderr).toContain(`key tried: age identity ${wrongAgeId}`);

    // The ciphertext's sidecar names another digest: rejected before decryption.
    const bad = join(base, 'sp-bad');
    mkdirSync(join(bad, spId), { recursive: true });
    for (const f of readdirSync(join(spRoot(), spId))) await copyFile(join(spRoot(), spId, f), join(bad, spId, f));
    await writeFile(join(bad, spId, 'postgres.sql.gz.gpg.sha256'), `${'0'.repeat(64)}  postgres.sql.gz.gpg\n`);
    const sum = await cli(['verify', spId, '--recipe', await storyRecipe('sp-bad', { root: bad })]);
    expect(sum.code, show(sum)).toBe(3);
    expect(sum.stderr).toContain('does not match its checksum');
    const pasted = /`restore-assistant (list --recipe [^`]+)`/.exec(sum.stderr.split('\n').find((l) => l.startsWith('Next: ')) ?? '');
    expect(pasted, show(sum)).not.toBeNull();
    const listed = await cli(pasted![1]!.split(' '));
    expect(listed.code, show(listed)).toBe(0);
    expect(listed.stdout).toContain(spId);

    const rejected = history().filter((h) => h.kind === 'verify' && h.outcome === 'rejected');
    expect(rejected.length - rejectedBefore).toBe(3);
    const runs = evidenceRuns().filter((x) => x.events.includes('"outcome":"rejected"'));
    expect(runs.some((x) => x.events.includes('decrypt-failed') || x.events.includes('cannot be decrypted with gpg'))).toBe(true);
    expect(runs.some((x) => x.events.includes('does not match its checksum'))).toBe(true);
    for (const x of runs) expect(existsSync(join(x.dir, 'report.json')), x.dir).toBe(true);

    expect(await fingerprintPostgres(pg, DB)).toEqual(pgBefore);
    expect(await fingerprintPostgres(pg, CHAT)).toEqual(chatBefore);
    expect(await fingerprintRedis(redis)).toEqual(redisBefore);
    expect(walk(join(base, 'staging')).filter((f) => f.includes('/set/'))).toEqual([]);
  });

  it('refuses a staging directory at /tmp, in a world-writable dir or on a tmpfs, before creating anything', async () => {
    const tmpMode = statSync('/tmp').mode & 0o7777;
    const atTmp = await cli(['verify', spId, '--recipe', await storyRecipe('st-tmp', { staging: '/tmp' })]);
    expect(atTmp.code, show(atTmp)).toBe(9);
    expect(atTmp.stderr).toContain('The staging directory /tmp (backups.staging in');
    expect(atTmp.stderr).toContain('shared temporary directory');
    expect(atTmp.stderr).toMatch(/emptied on reboot/);
    expect(atTmp.stderr).toContain('Next: Set backups.staging');
    expect(statSync('/tmp').mode & 0o7777).toBe(tmpMode);

    const ww = join(base, 'world-writable');
    mkdirSync(ww);
    chmodSync(ww, 0o777);
    const atWw = await cli(['verify', spId, '--recipe', await storyRecipe('st-ww', { staging: ww })]);
    expect(atWw.code, show(atWw)).toBe(9);
    expect(atWw.stderr).toContain('is writable by every user (mode 0777)');
    expect(statSync(ww).mode & 0o777).toBe(0o777);
    expect(readdirSync(ww)).toEqual([]);

    const shm = join('/dev/shm', `ra-enc-${process.pid}`);
    const atShm = await cli(['verify', spId, '--recipe', await storyRecipe('st-shm', { staging: shm })]);
    expect(atShm.code, show(atShm)).toBe(9);
    expect(atShm.stderr).toMatch(/is on a tmpfs/);
    expect(atShm.stderr).toContain('lost on reboot');
    expect(existsSync(shm)).toBe(false);
  });

  it('drill --pick considers off-site sets, says where the picked one lives, and drills it from staging', async () => {
    const file = await recipe(
      'drill-off',
      {
        root: spRoot(),
        layout: 'story-portal',
        offsite: {
          endpoint: s3.endpoint,
          region: s3.region,
          bucket: s3.bucket,
          prefix: 'story/',
          forcePathStyle: true,
          accessKeyIdEnv: 'IT_S3_KEY',
          secretAccessKeyEnv: 'IT_S3_SECRET',
        },
        encryption: { gpg: { passphraseEnv: 'IT_GPG_PASSPHRASE' }, age: { identityFile: ageId } },
      },
      { postgres: pgTarget(DB), redis: redisTarget() },
    );
    const list = await cli(['list', '--recipe', file, '--json']);
    expect(list.code, show(list)).toBe(0);
    const sets = (JSON.parse(list.stdout) as { sets: Array<{ id: string; where: string }> }).sets;
    expect(sets.map((s) => s.where)).toEqual(['local', 'off-site']);
    const offId = sets[1]!.id;

    const r = await cli(['drill', '--recipe', file, '--pick', 'oldest-retained', '--yes']);
    expect(r.code, show(r)).toBe(0);
    expect(r.stderr).toContain(`--pick oldest-retained: set ${offId}`);
    expect(r.stderr).toContain(`it lives off-site in s3://${s3.bucket}/story/`);
    expect(r.stderr).toMatch(/downloading .*ETA/);
    expect(r.stderr).toContain('decrypted');
    const drillRun = evidenceRuns().find(
      (x) => x.events.includes('"kind":"drill"') && x.events.includes(`off-site object story/${offId}/`),
    );
    expect(drillRun, 'the drill evidence names the staged objects').toBeDefined();
    expect(drillRun!.events).toContain('it lives off-site');
  });

  it('shows no passphrase, credential or database password in any output, evidence or staging file, or process argv', async () => {
    const secrets = [PASSPHRASE, s3.secretAccessKey, pg.password];
    const files = [...walk(join(base, 'evidence')), ...walk(join(base, 'state')), ...walk(join(base, 'staging'))];
    expect(files.length).toBeGreaterThan(0);
    for (const secret of secrets) {
      for (const o of outputs) expect(o.includes(secret), 'an output').toBe(false);
      for (const a of argvSeen) expect(a.includes(secret), `argv: ${a.slice(0, 200)}`).toBe(false);
      for (const f of files) expect(readFileSync(f).includes(secret), f).toBe(false);
    }
    const left = await readdir(join(base, 'staging')).catch(() => [] as string[]);
    expect(left.flatMap((d) => walk(join(base, 'staging', d))).filter((f) => f.includes('/set/'))).toEqual([]);
  });
});
