import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
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
  type PostgresFingerprint,
  type PostgresSandbox,
  type RedisFingerprint,
  type RedisSandbox,
} from '../../source/sandbox/index.js';
import { cliBin, runCli, type CliResult } from '../support/cli.js';
import { startS3, type S3Sandbox } from '../support/s3.js';

/**
 * Off-site sets end to end: a real S3 server (s3rver behind a SigV4 check, test/support/s3.ts),
 * real gpg and age, real PostgreSQL and Redis, the built CLI. A story-portal set (its dump
 * gpg-encrypted, symmetric) and a metachat set (its dump age-encrypted) are uploaded, listed,
 * verified and restored; damaged ones are refused with exit 3 and the targets untouched; a
 * download killed half-way resumes with a ranged GET; no secret shows anywhere.
 */

const DB = 'storydb';
const CHAT = 'chatdb';
const PASSPHRASE = `gpg-pass-${Math.random().toString(36).slice(2)}-phrase`;

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

describe('off-site sets: S3, gpg, age', () => {
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
  let secretKeyFile: string;
  let keyFingerprint: string;
  let env: Record<string, string>;
  const outputs: string[] = [];

  const gpgHome = (): string => join(base, 'gnupg-test');
  function gpgSymmetric(input: string, output: string): void {
    execFileSync(
      'gpg',
      [
        '--batch',
        '--homedir',
        gpgHome(),
        '--pinentry-mode',
        'loopback',
        '--passphrase-fd',
        '0',
        '--symmetric',
        '--cipher-algo',
        'AES256',
        '-o',
        output,
        input,
      ],
      {
        input: PASSPHRASE,
      },
    );
  }

  async function recipe(name: string, body: Record<string, unknown>): Promise<string> {
    const file = join(base, `${name}.json`);
    await writeFile(
      file,
      JSON.stringify({ name, evidence: { dir: join(base, 'evidence') }, objectives: { rpoMinutes: 1440 }, ...body }, null, 2),
    );
    return file;
  }

  function offsite(prefix: string, viaRecipeEnv = true): Record<string, unknown> {
    return {
      endpoint: s3.endpoint,
      region: s3.region,
      bucket: s3.bucket,
      prefix,
      forcePathStyle: true,
      ...(viaRecipeEnv ? { accessKeyIdEnv: 'IT_S3_KEY', secretAccessKeyEnv: 'IT_S3_SECRET' } : {}),
    };
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

  const storyRecipe = (name: string, extra: { root?: string; prefix?: string; passphraseEnv?: string } = {}): Promise<string> =>
    recipe(name, {
      backups: {
        root: extra.root ?? join(base, 'no-local-backups'),
        layout: 'story-portal',
        offsite: offsite(extra.prefix ?? 'story/'),
        encryption: { gpg: { passphraseEnv: extra.passphraseEnv ?? 'IT_GPG_PASSPHRASE' } },
      },
      components: {
        postgres: pgTarget(DB),
        redis: {
          host: redis.host,
          port: redis.port,
          service: {
            stop: serviceCtlArgv('stop', redis.spec),
            start: serviceCtlArgv('start', redis.spec),
            status: serviceCtlArgv('status', redis.spec),
            timeoutSeconds: 30,
          },
        },
      },
    });

  const chatRecipe = (name: string, identityFile: string, prefix = 'metachat/'): Promise<string> =>
    recipe(name, {
      backups: {
        root: join(base, 'no-local-backups'),
        layout: 'metachat',
        database: CHAT,
        offsite: offsite(prefix, false),
        encryption: { age: { identityFile } },
      },
      components: { postgres: pgTarget(CHAT) },
    });

  async function cli(args: string[], extraEnv: Record<string, string> = {}): Promise<CliResult> {
    const r = await runCli(args, { env: { ...env, ...extraEnv }, cwd: base });
    outputs.push(r.stdout, r.stderr);
    return r;
  }
  const show = (r: CliResult): string => `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

  /** Uploads every file under `dir` to `<prefix><path relative to root>`, with `transform` per file. */
  async function upload(
    root: string,
    dir: string,
    prefix: string,
    transform: (file: string) => Promise<Array<[string, Buffer]>> = async (f) => [[f, await readFile(f)]],
  ): Promise<void> {
    for (const file of walk(dir)) {
      for (const [name, body] of await transform(file)) await s3.put(`${prefix}${relative(root, name)}`, body);
    }
  }

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'ra-offsite-it-'));
    await mkdir(gpgHome(), { mode: 0o700 });
    group = new SandboxGroup({ baseDir: base });
    [pg, redis, s3] = await Promise.all([group.postgres(), group.redis(), startS3({ baseDir: base })]);
    await seedPostgres(pg, DB, { rows: 60 });
    await seedPostgres(pg, CHAT, { rows: 30 });
    await seedRedis(redis);
    const time = new Date(Date.now() - 3600_000);
    const spRoot = join(base, 'sp-local');
    const set = await backupStoryPortal({ pg, db: DB, redis }, spRoot, { time });
    spId = set.id;
    const mcRoot = join(base, 'mc-local');
    const mc = await backupMetachat({ pg, db: CHAT }, mcRoot, { time });
    mcStamp = mc.timestamp;
    [backupPg, backupRedis, backupChat] = await Promise.all([
      fingerprintPostgres(pg, DB),
      fingerprintRedis(redis),
      fingerprintPostgres(pg, CHAT),
    ]);

    // story-portal, gpg: postgres.sql.gz.gpg (+ a sha256 of the ciphertext), redis.rdb (+ its sidecar), metadata.txt.
    const spTransform = async (file: string): Promise<Array<[string, Buffer]>> => {
      if (basename(file) === 'postgres.sql.gz') {
        if (!(await readdir(set.dir)).includes('postgres.sql.gz.gpg')) gpgSymmetric(file, `${file}.gpg`);
        const body = await readFile(`${file}.gpg`);
        return [
          [`${file}.gpg`, body],
          [`${file}.gpg.sha256`, Buffer.from(`${await sha256File(`${file}.gpg`)}  postgres.sql.gz.gpg\n`)],
        ];
      }
      if (file.endsWith('.gpg')) return [];
      if (basename(file) === 'redis.rdb')
        return [
          [file, await readFile(file)],
          [`${file}.sha256`, Buffer.from(`${await sha256File(file)}  redis.rdb\n`)],
        ];
      return [[file, await readFile(file)]];
    };
    await upload(spRoot, set.dir, 'story/', spTransform);

    // A truncated object: the same set under another id, its RDB cut in half (the sidecar is the original's).
    const cutId = spId.replace(/-(\d\d)$/, (_, s: string) => `-${String((Number(s) + 1) % 60).padStart(2, '0')}`);
    await upload(spRoot, set.dir, 'story-cut/', async (file) => {
      const out = await spTransform(file);
      return out.map(([name, body]) => [
        name.replace(spId, cutId),
        basename(name) === 'redis.rdb' ? body.subarray(0, Math.floor(body.length / 2)) : body,
      ]);
    });
    // A checksum mismatch: the ciphertext's sidecar names another digest.
    await upload(spRoot, set.dir, 'story-bad-sum/', async (file) => {
      const out = await spTransform(file);
      return out.map(([name, body]) => [
        name,
        name.endsWith('.gpg.sha256') ? Buffer.from(`${'0'.repeat(64)}  postgres.sql.gz.gpg\n`) : body,
      ]);
    });
    // Public-key gpg: the RDB encrypted to a key whose exported secret key the recipe names.
    execFileSync(
      'gpg',
      [
        '--batch',
        '--homedir',
        gpgHome(),
        '--pinentry-mode',
        'loopback',
        '--passphrase',
        '',
        '--quick-gen-key',
        'RA Offsite Test <ra@test.invalid>',
        'default',
        'default',
        'never',
      ],
      { stdio: 'ignore' },
    );
    secretKeyFile = join(base, 'backup-key.asc');
    await writeFile(
      secretKeyFile,
      execFileSync('gpg', ['--batch', '--homedir', gpgHome(), '--armor', '--export-secret-keys', 'ra@test.invalid']),
      { mode: 0o600 },
    );
    keyFingerprint = /^fpr:+([0-9A-F]{40}):/m.exec(
      execFileSync('gpg', ['--batch', '--homedir', gpgHome(), '--with-colons', '--list-secret-keys'], { encoding: 'utf8' }),
    )![1]!;
    await upload(spRoot, set.dir, 'story-pk/', async (file) => {
      const out = await spTransform(file);
      return out.flatMap(([name, body]): Array<[string, Buffer]> => {
        if (basename(name) === 'redis.rdb.sha256') return [[name, body]];
        if (basename(name) !== 'redis.rdb') return [[name, body]];
        const enc = execFileSync('gpg', [
          '--batch',
          '--homedir',
          gpgHome(),
          '--trust-model',
          'always',
          '-r',
          'ra@test.invalid',
          '--encrypt',
          '-o',
          '-',
          name,
        ]);
        return [[`${name}.gpg`, enc]];
      });
    });
    // Enough unrelated objects under the prefix that listing takes more than one page.
    for (let i = 0; i < 1050; i += 50) {
      await Promise.all(
        Array.from({ length: 50 }, (_, j) => s3.put(`story/logs/backup-${String(i + j).padStart(5, '0')}.log`, `log ${i + j}\n`)),
      );
    }

    // metachat, age: postgres/chatdb_<stamp>.dump.age and the plaintext's .dump.sha256 (as the backup script writes it).
    ageId = join(base, 'age-identity.txt');
    wrongAgeId = join(base, 'age-other.txt');
    execFileSync('age-keygen', ['-o', ageId], { stdio: 'ignore' });
    execFileSync('age-keygen', ['-o', wrongAgeId], { stdio: 'ignore' });
    const recipient = execFileSync('age-keygen', ['-y', ageId], { encoding: 'utf8' }).trim();
    execFileSync('age', ['-r', recipient, '-o', `${mc.dump}.age`, mc.dump]);
    await s3.put(`metachat/postgres/${basename(mc.dump)}.age`, await readFile(`${mc.dump}.age`));
    await s3.put(`metachat/postgres/${basename(mc.sha256File)}`, await readFile(mc.sha256File));

    env = {
      IT_PG_PASSWORD: pg.password,
      IT_S3_KEY: s3.accessKeyId,
      IT_S3_SECRET: s3.secretAccessKey,
      AWS_ACCESS_KEY_ID: s3.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
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

  it('lists off-site sets through every page, and where each lives (off-site, both)', async () => {
    const r = await cli(['list', '--recipe', await storyRecipe('sp-list'), '--json']);
    expect(r.code, show(r)).toBe(0);
    const j = JSON.parse(r.stdout) as {
      offsite: { objects: number };
      sets: Array<{ id: string; where: string; components: Array<{ kind: string }> }>;
    };
    expect(j.offsite.objects).toBeGreaterThan(1050);
    expect(j.sets.map((s) => [s.id, s.where])).toEqual([[spId, 'off-site']]);
    expect(j.sets[0]!.components.map((c) => c.kind).sort()).toEqual(['postgres', 'redis']);

    const both = await cli(['list', '--recipe', await storyRecipe('sp-both', { root: join(base, 'sp-local') })]);
    expect(both.code, show(both)).toBe(0);
    expect(both.stdout).toMatch(new RegExp(`${spId}.*both`));
    const offOnly = await cli(['list', '--recipe', join(base, 'sp-list.json')]);
    expect(offOnly.stdout).toMatch(new RegExp(`${spId}.*postgres [0-9.]+ KiB \\(gpg\\), redis.*off-site`));

    const mc = await cli(['list', '--recipe', await chatRecipe('mc-list', ageId), '--json']);
    expect(mc.code, show(mc)).toBe(0);
    expect((JSON.parse(mc.stdout) as { sets: Array<{ id: string; where: string }> }).sets).toMatchObject([
      { id: mcStamp, where: 'off-site' },
    ]);
  });

  it('verifies the gpg set from off-site (decrypted and checked in full) and records the objects in the evidence', async () => {
    const r = await cli(['verify', spId, '--recipe', await storyRecipe('sp-verify')]);
    expect(r.code, show(r)).toBe(0);
    expect(r.stderr).toContain('postgres.sql.gz.gpg with passphrase from $IT_GPG_PASSPHRASE');
    expect(r.stderr).toMatch(/downloading .*of .*ETA/);
    expect(r.stderr).toContain('Staged copy removed');
    const events = walk(join(base, 'evidence'))
      .filter((f) => f.endsWith('events.jsonl'))
      .map((f) => readFileSync(f, 'utf8'))
      .join('\n');
    expect(events).toContain(`off-site object story/${spId}/postgres.sql.gz.gpg: ETag`);
    expect(events).toMatch(/sha256 [0-9a-f]{64}, decrypted with gpg/);
  });

  it('verifies a set with a public-key gpg component (the secret key imported into a private GNUPGHOME)', async () => {
    const file = join(base, 'sp-pk.json');
    const r0 = JSON.parse(await readFile(await storyRecipe('sp-pk', { prefix: 'story-pk/' }), 'utf8')) as {
      backups: { encryption: { gpg: Record<string, unknown> } };
    };
    r0.backups.encryption.gpg['secretKeyFile'] = secretKeyFile;
    await writeFile(file, JSON.stringify(r0));
    const r = await cli(['verify', spId, '--recipe', file]);
    expect(r.code, show(r)).toBe(0);
    expect(r.stderr).toContain(`redis.rdb.gpg with secret key ${secretKeyFile} (fingerprint ${keyFingerprint}`);
    // The RDB's sidecar (of the plaintext) was checked on the decrypted file.
    expect(r.stderr).toContain('Checksums verified');
  });

  it('restores the gpg story-portal set and the age metachat set from off-site: data equals the backup', async () => {
    await pg.psql('DROP TABLE app.comments; UPDATE app.users SET karma = -1', DB);
    await pg.psql('UPDATE app.users SET karma = -5', CHAT);
    await redis.command(['FLUSHALL']);
    expect(await fingerprintPostgres(pg, DB)).not.toEqual(backupPg);

    const sp = await watchArgv(() => cli(['restore', '--recipe', join(base, 'sp-verify.json'), '--backup', spId, '--yes']));
    expect(sp.result.code, show(sp.result)).toBe(0);
    expect(await fingerprintPostgres(pg, DB)).toEqual(backupPg);
    expect(await fingerprintRedis(redis)).toEqual(backupRedis);

    const mcRecipe = await chatRecipe('mc-restore', ageId);
    const mc = await watchArgv(() => cli(['restore', '--recipe', mcRecipe, '--backup', 'latest', '--yes']));
    expect(mc.result.code, show(mc.result)).toBe(0);
    expect(mc.result.stderr).toContain('decrypted postgres/');
    expect(await fingerprintPostgres(pg, CHAT)).toEqual(backupChat);
    // The plaintext sidecar (.dump.sha256) was checked on the decrypted dump.
    expect(mc.result.stdout + mc.result.stderr).not.toMatch(/checksum mismatch/i);
  });

  it('refuses a truncated object, a checksum mismatch and a wrong key with exit 3, targets untouched', async () => {
    const pgBefore = await fingerprintPostgres(pg, DB);
    const chatBefore = await fingerprintPostgres(pg, CHAT);
    const redisBefore = await fingerprintRedis(redis);

    const cut = await cli(['restore', '--recipe', await storyRecipe('sp-cut', { prefix: 'story-cut/' }), '--backup', 'latest', '--yes']);
    expect(cut.code, show(cut)).toBe(3);
    expect(cut.stderr + cut.stdout).toMatch(/redis\.rdb/);

    const bad = await cli(['verify', spId, '--recipe', await storyRecipe('sp-bad-sum', { prefix: 'story-bad-sum/' })]);
    expect(bad.code, show(bad)).toBe(3);
    expect(bad.stderr).toContain('does not match its checksum');
    expect(bad.stderr).toContain('Nothing was touched');
    // Found while staging, recorded like a rejected verification (a sealed verify run, a history line).
    expect(bad.stderr).toMatch(/recorded as a rejected verification: \S+/);

    const wrongGpg = await cli(
      ['restore', '--recipe', await storyRecipe('sp-wrong-key', { passphraseEnv: 'IT_WRONG_PASSPHRASE' }), '--backup', spId, '--yes'],
      {
        IT_WRONG_PASSPHRASE: 'not-the-passphrase',
      },
    );
    expect(wrongGpg.code, show(wrongGpg)).toBe(3);
    expect(wrongGpg.stderr).toContain('key tried: passphrase from $IT_WRONG_PASSPHRASE');
    expect(wrongGpg.stderr).toContain('Nothing was touched');
    expect(wrongGpg.stderr).toMatch(/recorded as a rejected verification: \S+/);
    const rejectedRuns = readFileSync(join(base, 'evidence', 'history.jsonl'), 'utf8')
      .split('\n')
      .filter((l) => l.includes('"kind":"verify"') && l.includes('"outcome":"rejected"'));
    expect(rejectedRuns.length).toBeGreaterThanOrEqual(2);

    const wrongAge = await cli(['verify', mcStamp, '--recipe', await chatRecipe('mc-wrong-key', wrongAgeId)]);
    expect(wrongAge.code, show(wrongAge)).toBe(3);
    expect(wrongAge.stderr).toContain(`key tried: age identity ${wrongAgeId}`);

    expect(await fingerprintPostgres(pg, DB)).toEqual(pgBefore);
    expect(await fingerprintPostgres(pg, CHAT)).toEqual(chatBefore);
    expect(await fingerprintRedis(redis)).toEqual(redisBefore);
  });

  it('resumes a download killed half-way with a ranged GET: the first half is not fetched again', async () => {
    const file = await storyRecipe('sp-resume');
    const key = `story/${spId}/postgres.sql.gz.gpg`;
    await s3.sync();
    const size = statSync(join(base, 'sp-local', spId, 'postgres.sql.gz.gpg')).size;
    const half = Math.floor(size / 2);
    s3.stall = { keyContains: key, afterBytes: half };
    // Requests of this test only: earlier tests fetched the same key whole (unranged GETs too).
    const start = s3.served.length;
    const staging = join(base, 'staging');
    const child = spawn(process.execPath, [cliBin(), 'verify', spId, '--recipe', file], {
      env: { ...process.env, ...env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const partSize = (): number => {
      try {
        return walk(staging)
          .filter((f) => f.endsWith('postgres.sql.gz.gpg.part'))
          .reduce((s, f) => s + statSync(f).size, 0);
      } catch {
        return 0;
      }
    };
    for (let i = 0; i < 600 && partSize() < half; i++) await new Promise((r) => setTimeout(r, 100));
    expect(partSize(), err).toBe(half);
    child.kill('SIGKILL');
    await exited;
    s3.stall = undefined;
    // The killed GET is recorded when the server sees its socket close, which can come after a
    // sync: wait for that record (this test's own: an earlier test's whole GET of the key is not
    // it), or it would be counted as a request of the resumed run.
    const killedGet = (): boolean => s3.served.slice(start).some((x) => x.method === 'GET' && x.key === key && x.range === undefined);
    for (let i = 0; i < 100 && !killedGet(); i++) {
      await s3.sync();
      if (!killedGet()) await new Promise((r) => setTimeout(r, 100));
    }
    expect(killedGet(), 'the server recorded the killed download').toBe(true);
    const before = s3.served.length;

    const r = await cli(['verify', spId, '--recipe', file]);
    expect(r.code, show(r)).toBe(0);
    expect(r.stderr).toContain('resuming');
    await s3.sync();
    const gets = s3.served.slice(before).filter((x) => x.method === 'GET' && x.key === key);
    const why = JSON.stringify(gets) + show(r);
    // One ranged GET from the half; a GET the tool says it retried (a reset connection on a busy
    // host) resumes where the last one stopped: never from before the half, never unranged.
    expect(gets[0]?.range, why).toBe(`bytes=${half}-`);
    if (gets.length === 1) expect(gets[0]!.bytes, why).toBe(size - half);
    else {
      expect(r.stderr, why).toContain('retrying from');
      for (const g of gets) expect(Number(/^bytes=(\d+)-$/.exec(g.range ?? '')?.[1] ?? -1), why).toBeGreaterThanOrEqual(half);
    }
  });

  const argvSeen: string[] = [];
  /** Runs `fn` while sampling every process's argv (/proc/<pid>/cmdline). */
  async function watchArgv<T>(fn: () => Promise<T>): Promise<{ result: T; argv: string[] }> {
    const seen = new Set<string>();
    let running = true;
    const sampler = (async () => {
      while (running) {
        for (const pid of await readdir('/proc').catch(() => [] as string[])) {
          if (!/^\d+$/.test(pid)) continue;
          try {
            seen.add((await readFile(`/proc/${pid}/cmdline`)).toString('utf8').replace(/\0/g, ' '));
          } catch {
            // gone
          }
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    try {
      const result = await fn();
      argvSeen.push(...seen);
      return { result, argv: [...seen] };
    } finally {
      running = false;
      await sampler;
    }
  }

  it('shows no credential or passphrase in any output, evidence or staging file, or process argv', async () => {
    const secrets = [s3.secretAccessKey, s3.accessKeyId, PASSPHRASE, pg.password];
    expect(argvSeen.some((a) => a.includes('restore'))).toBe(true);
    const files = [
      ...walk(join(base, 'evidence')),
      ...walk(join(base, 'state')),
      ...walk(join(base, 'staging')),
      ...(await readdir(base)).filter((f) => f.endsWith('.json')).map((f) => join(base, f)),
    ];
    for (const secret of secrets) {
      for (const o of outputs) expect(o.includes(secret), 'an output').toBe(false);
      for (const a of argvSeen) expect(a.includes(secret), `argv: ${a.slice(0, 200)}`).toBe(false);
      for (const f of files) expect(readFileSync(f).includes(secret), f).toBe(false);
    }
    // The staged copies were removed after the completed runs (keepStaged is false).
    const left = walk(join(base, 'staging')).filter((f) => !f.endsWith('.part') && !f.endsWith('state.json'));
    expect(left.filter((f) => f.includes('/set/'))).toEqual([]);
  });

  it('keeps a copy staged with keepStaged, in private modes (0700 dirs, 0600 plaintext)', async () => {
    const file = join(base, 'sp-keep.json');
    const r0 = JSON.parse(await readFile(join(base, 'sp-verify.json'), 'utf8')) as {
      name: string;
      backups: { offsite: Record<string, unknown> };
    };
    r0.name = 'sp-keep';
    r0.backups.offsite['keepStaged'] = true;
    await writeFile(file, JSON.stringify(r0));
    const r = await cli(['verify', spId, '--recipe', file]);
    expect(r.code, show(r)).toBe(0);
    expect(r.stderr).toContain('Staged copy kept');
    const setDir = join(base, 'staging', 'sp-keep', spId);
    const plain = join(setDir, 'set', spId, 'postgres.sql.gz');
    expect(statSync(plain).mode & 0o777).toBe(0o600);
    expect(statSync(setDir).mode & 0o777).toBe(0o700);
  });
});
