import { mkdtempSync, rmSync } from 'node:fs';
import { chown, copyFile, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  backupStoryPortal,
  fingerprintRedis,
  SandboxGroup,
  seedPostgres,
  seedRedis,
  type PostgresSandbox,
  type RedisFingerprint,
  type RedisSandbox,
  type StoryPortalBackup,
} from '../../source/sandbox/index.js';
import { cliBin } from '../support/cli.js';

/**
 * Issue 9: a backup store written by an attacker. Real PostgreSQL and Redis, real backups, the
 * built CLI. The "attacker" acts after verification, deterministically: the recipe's application
 * service is stopped after the set was verified and before anything is restored, and its stop
 * command is the attack (it swaps a backup file for same-size bytes, or plants symlinks at the
 * names the tool used to write through).
 */

/** The CLI built once for the test run (test/global-setup.ts); service-ctl beside it. */
let bin: string;
const DB = 'vbytesdb';
const VICTIM = 'root-owned victim: must stay byte-identical\n';

interface CliResult {
  exitCode: number | undefined;
  stdout: string;
  stderr: string;
}

describe('the restored bytes are the verified bytes; no write through planted names', () => {
  let base: string;
  let group: SandboxGroup;
  let pg: PostgresSandbox;
  let redis: RedisSandbox;
  let spRoot: string;
  let set: StoryPortalBackup;
  let backupRedis: RedisFingerprint;
  let env: NodeJS.ProcessEnv;
  let victim: string;

  /** service-ctl from dist (plain node): the argv a recipe names. */
  let ctl: (action: 'start' | 'stop' | 'status', spec: string) => string[];

  const show = (r: CliResult): string => `exit ${r.exitCode}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

  /** A recipe whose one application service's stop command runs `attack` (node code) after verification. */
  async function recipe(name: string, attack: string): Promise<string> {
    const file = join(base, `${name}.yaml`);
    const noop = [process.execPath, '-e', ''];
    await writeFile(
      file,
      JSON.stringify({
        name,
        backups: { root: spRoot, layout: 'story-portal' },
        components: {
          postgres: {
            host: pg.host,
            port: pg.port,
            user: 'postgres',
            passwordEnv: 'IT_PG_PASSWORD',
            database: DB,
            owner: 'app_owner',
            bin: pg.binDir,
          },
          redis: {
            host: redis.host,
            port: redis.port,
            service: {
              stop: ctl('stop', redis.spec),
              start: ctl('start', redis.spec),
              status: ctl('status', redis.spec),
              timeoutSeconds: 30,
            },
          },
        },
        services: [{ name: 'attacker', stop: [process.execPath, '-e', attack], start: noop, timeoutSeconds: 30 }],
        checks: [
          { name: 'users restored', sql: { query: 'SELECT count(*) FROM app.users', minRows: 1 }, retries: 1, intervalSeconds: 0.5 },
        ],
        evidence: { dir: join(base, 'evidence') },
      }),
    );
    return file;
  }

  /** A copy of the set under a later id, so each test has its own files to attack. */
  async function copySet(offsetSeconds: number): Promise<{ id: string; dir: string }> {
    const time = new Date(Date.parse(`${set.id.slice(0, 10)}T${set.id.slice(11).replace(/-/g, ':')}Z`) + offsetSeconds * 1000);
    const p = (n: number): string => String(n).padStart(2, '0');
    const id = `${time.getUTCFullYear()}-${p(time.getUTCMonth() + 1)}-${p(time.getUTCDate())}_${p(time.getUTCHours())}-${p(time.getUTCMinutes())}-${p(time.getUTCSeconds())}`;
    const dir = join(spRoot, id);
    await mkdir(dir);
    for (const f of await readdir(set.dir)) await copyFile(join(set.dir, f), join(dir, f));
    await writeFile(
      join(dir, 'metadata.txt'),
      (await readFile(join(set.dir, 'metadata.txt'), 'utf8')).replace(/^Backup Date: .*$/m, `Backup Date: ${id}`),
    );
    return { id, dir };
  }

  async function restore(recipeFile: string, id: string, extraEnv: NodeJS.ProcessEnv = {}): Promise<CliResult> {
    const r = await execa(process.execPath, [bin, 'restore', '--recipe', recipeFile, '--backup', id, '--yes'], {
      env: { ...env, ...extraEnv },
      reject: false,
      cwd: base,
      stdin: 'ignore',
    });
    return { exitCode: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr) };
  }

  async function mark(tag: string): Promise<void> {
    await pg.psql(
      `CREATE TABLE IF NOT EXISTS public.pre_restore_marker (tag text); INSERT INTO public.pre_restore_marker VALUES ('${tag}')`,
      DB,
    );
    await redis.command(['SET', 'pre:restore:marker', tag]);
  }

  async function expectPreRestore(tag: string): Promise<void> {
    expect(await pg.psql("SELECT string_agg(tag, ',') FROM public.pre_restore_marker", DB)).toContain(tag);
    expect(String(await redis.command(['GET', 'pre:restore:marker']))).toBe(tag);
    expect(await pg.psql(`SELECT count(*) FROM pg_database WHERE datname LIKE '${DB}\\_\\_pre\\_restore\\_%'`)).toBe('0');
  }

  /** Node code: replace FILE (a new inode, as `mv` leaves it) with BYTES (base64) of the same size. */
  const swapCode = (file: string, bytes: Buffer): string =>
    `const fs = require('fs'); fs.writeFileSync(${JSON.stringify(`${file}.evil`)}, Buffer.from(${JSON.stringify(bytes.toString('base64'))}, 'base64')); fs.renameSync(${JSON.stringify(`${file}.evil`)}, ${JSON.stringify(file)});`;

  async function consumedEvents(): Promise<Array<Record<string, unknown>>> {
    const out: Array<Record<string, unknown>> = [];
    const root = join(base, 'evidence');
    for (const run of await readdir(root).catch(() => [] as string[])) {
      const text = await readFile(join(root, run, 'events.jsonl'), 'utf8').catch(() => '');
      for (const line of text.split('\n')) {
        if (!line.includes('"consumed"')) continue;
        const e = (JSON.parse(line) as { event?: { consumed?: Record<string, unknown> } }).event;
        if (e?.consumed) out.push({ ...e.consumed, run });
      }
    }
    return out;
  }

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'ra-vbytes-it-'));
    // Never a build into the checkout's dist/: two files doing that at once rewrite the
    // service-ctl.js a running restore is about to execute (a Redis that was never started again).
    bin = cliBin();
    ({ serviceCtlArgv: ctl } = (await import(join(dirname(bin), 'sandbox', 'service-ctl.js'))) as { serviceCtlArgv: typeof ctl });
    group = new SandboxGroup();
    [pg, redis] = await Promise.all([group.postgres(), group.redis()]);
    await Promise.all([seedPostgres(pg, DB, { rows: 40 }), seedRedis(redis)]);
    spRoot = join(base, 'backups');
    set = await backupStoryPortal({ pg, db: DB, redis }, spRoot, { time: new Date(Date.now() - 3_600_000) });
    backupRedis = await fingerprintRedis(redis);
    victim = join(base, 'victim.conf');
    await writeFile(victim, VICTIM);
    env = {
      ...process.env,
      IT_PG_PASSWORD: pg.password,
      XDG_RUNTIME_DIR: join(base, 'run'),
      XDG_STATE_HOME: join(base, 'state'),
      NO_COLOR: '1',
    };
    delete env['CI'];
  }, 240_000);

  afterAll(async () => {
    await group?.stopAll();
    if (base) rmSync(base, { recursive: true, force: true });
  });

  it('an RDB swapped after verification for same-size bytes is refused and everything is rolled back (exit 1)', async () => {
    await mark('rdb-swap');
    const { id, dir } = await copySet(60);
    const rdb = join(dir, 'redis.rdb');
    const evil = Buffer.from(await readFile(rdb));
    evil[evil.length - 12] = evil[evil.length - 12]! ^ 0xff;
    const r = await restore(await recipe('vb-rdb', swapCode(rdb, evil)), id);
    expect(r.exitCode, show(r)).toBe(1);
    expect(r.stdout, show(r)).toMatch(/Result: failed and rolled back/);
    expect(`${r.stdout}\n${r.stderr}`).toMatch(/redis\.rdb is not the file that was verified: replaced by another file/);
    await expectPreRestore('rdb-swap');
  });

  it('a .sql.gz swapped after verification for a same-size gzip (padded) never reaches psql and is rolled back (exit 1)', async () => {
    await mark('dump-swap');
    const { id, dir } = await copySet(120);
    const dump = join(dir, 'postgres.sql.gz');
    const size = (await readFile(dump)).length;
    const evilGz = gzipSync('CREATE TABLE public.swapped_in_after_verify (x int);\n');
    expect(evilGz.length).toBeLessThan(size);
    const padded = Buffer.concat([evilGz, Buffer.alloc(size - evilGz.length)]);
    const r = await restore(await recipe('vb-dump', swapCode(dump, padded)), id);
    expect(r.exitCode, show(r)).toBe(1);
    expect(`${r.stdout}\n${r.stderr}`).toMatch(/postgres\.sql\.gz is not the file that was verified/);
    await expectPreRestore('dump-swap');
    expect(await pg.psql("SELECT count(*) FROM pg_tables WHERE tablename = 'swapped_in_after_verify'", DB)).toBe('0');
  });

  it('symlinks planted in the Redis data dir at the old partial names are not followed: the victim is byte-identical, the restore succeeds and evidence records the consumed digests', async () => {
    const { id } = await copySet(180);
    // process.ppid of the stop command is the restore process: the name the old code wrote through.
    const plant = `const fs = require('fs'); for (const d of [0, 1, 2]) fs.symlinkSync(${JSON.stringify(victim)}, ${JSON.stringify(redis.dir)} + '/.dump.rdb.partial-' + (process.ppid + d));`;
    const r = await restore(await recipe('vb-plant', plant), id);
    expect(r.exitCode, show(r)).toBe(0);
    expect(await readFile(victim, 'utf8')).toBe(VICTIM);
    expect(await fingerprintRedis(redis)).toEqual(backupRedis);
    const consumed = (await consumedEvents()).filter((c) => String(c['run']).includes('vb-plant'));
    const byFile = new Map(consumed.map((c) => [String(c['path']).split('/').pop(), c]));
    expect(byFile.get('redis.rdb'), JSON.stringify(consumed)).toMatchObject({ how: 'hashed', match: true });
    expect(byFile.get('postgres.sql.gz'), JSON.stringify(consumed)).toMatchObject({ how: 'hashed', match: true });
    for (const c of consumed) expect(c['sha256']).toBe(c['verifiedSha256']);
  });

  it('after the confirmation the dump is not read again until the restore consumes it: the preflight carries what verification learned (strace)', async () => {
    const { id, dir } = await copySet(300);
    const dump = join(dir, 'postgres.sql.gz');
    // The application service's stop command runs right after the preflight (the first step after it).
    const marker = 'ra-quiesce-after-preflight';
    const file = await recipe('vb-once', `/* ${marker} */`);
    const log = join(base, 'vb-once.strace');
    const r = await execa(
      'strace',
      [
        '-f',
        '-b',
        'execve',
        '-qq',
        '-s',
        '512',
        '-e',
        'trace=openat,execve',
        '-o',
        log,
        process.execPath,
        bin,
        'restore',
        '--recipe',
        file,
        '--backup',
        id,
        '--yes',
      ],
      { env, reject: false, cwd: base, stdin: 'ignore' },
    );
    const res = { exitCode: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr) };
    expect(res.exitCode, show(res)).toBe(0);
    const lines = (await readFile(log, 'utf8')).split('\n');
    const opensDump = (l: string): boolean => l.includes('openat(') && l.includes(JSON.stringify(dump)) && !/= -1 /.test(l);
    // The run's evidence log is opened when the confirmed plan starts, before its preflight.
    const started = lines.findIndex((l) => l.includes('openat(') && /\/evidence\/[^"]*\/events\.jsonl"/.test(l));
    const quiesced = lines.findIndex((l) => l.includes('execve(') && l.includes(marker));
    expect(started, 'the evidence log is opened').toBeGreaterThan(-1);
    expect(quiesced, 'the stop command ran').toBeGreaterThan(started);
    expect(lines.slice(0, started).filter(opensDump).length, 'verification read the dump before the confirmation').toBeGreaterThan(0);
    expect(lines.slice(started, quiesced).filter(opensDump), 'opened between the confirmation and the first step').toEqual([]);
    expect(lines.slice(quiesced).filter(opensDump).length, 'the restore step read it').toBeGreaterThan(0);
    expect(await pg.psql('SELECT count(*) > 0 FROM app.users', DB)).toBe('t');
  });

  it('a lock directory another user pre-created is refused with the fix, before anything is touched (exit 9)', async () => {
    const run = join(base, 'run-unsafe');
    const lockDir = join(run, 'restore-assistant');
    await mkdir(lockDir, { recursive: true, mode: 0o755 });
    await chown(lockDir, 65534, 65534);
    const { id } = await copySet(240);
    const r = await restore(await recipe('vb-lock', ''), id, { RESTORE_ASSISTANT_LOCK_DIR: lockDir });
    expect(r.exitCode, show(r)).toBe(9);
    expect(r.stderr).toMatch(/The lock directory .* is not safe to use: .*owned by uid 65534/);
    expect(r.stderr).toContain(`chown root:root ${lockDir} && chmod 0755 ${lockDir}`);
    expect(r.stderr).toMatch(/Nothing was touched/);
    expect(await readdir(lockDir)).toEqual([]);
  });
});
