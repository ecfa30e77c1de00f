import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { copyFile, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  backupMetachat,
  backupMetachatDatabaseScript,
  backupPgDirectory,
  backupPgPlain,
  backupStoryPortal,
  fingerprintPostgres,
  fingerprintPrometheus,
  fingerprintRedis,
  freePort,
  SandboxGroup,
  seedPostgres,
  seedRedis,
  readServiceSpec,
  serviceCtlArgv,
  serviceStatus,
  startService,
  stopService,
  writeServiceSpec,
  type PostgresSandbox,
  type PrometheusSandbox,
  type RedisSandbox,
} from '../../source/sandbox/index.js';
import { pidAlive, processesMentioning, processUid } from '../support/processes.js';

const DB = 'agentic_platform';

/** Runs the service-ctl CLI exactly as a recipe would (argv, no shell). */
async function serviceCtl(action: 'start' | 'stop' | 'status', spec: string) {
  const [file, ...args] = serviceCtlArgv(action, spec);
  return execa(file ?? process.execPath, args, { reject: false, cwd: tmpdir() });
}

describe('sandbox: real PostgreSQL, Redis and Prometheus', () => {
  let baseDir: string;
  let group: SandboxGroup;
  let pg: PostgresSandbox;
  let redis: RedisSandbox;
  let prom: PrometheusSandbox;
  /**
   * A past instant with Prometheus samples around it. Prometheus 2.42 scrapes for the first time
   * ~5-6 s after start (5 s discovery/scrape-manager throttles, no flag): the PostgreSQL and Redis
   * tests run meanwhile and the Prometheus ones await this.
   */
  let promSampled: Promise<number>;
  /** Made by the story-portal test, restored by the round-trip test. */
  let storyPortalSet: Awaited<ReturnType<typeof backupStoryPortal>> | undefined;
  let metachatDump: string | undefined;

  beforeAll(async () => {
    baseDir = mkdtempSync(join(tmpdir(), 'ra-sandbox-test-'));
    group = new SandboxGroup({ baseDir });
    [pg, redis, prom] = await Promise.all([group.postgres(), group.redis(), group.prometheus()]);
    await Promise.all([seedPostgres(pg, DB), seedRedis(redis)]);
    promSampled = prom.waitForSamples(3).then(() => Math.floor(Date.now() / 1000) - 1);
    promSampled.catch(() => undefined); // reported by the tests that await it
  }, 60_000);

  afterAll(async () => {
    await group?.stopAll();
    if (baseDir) rmSync(baseDir, { recursive: true, force: true });
  });

  it('freePort gives distinct usable loopback ports', async () => {
    const [a, b] = await Promise.all([freePort(), freePort()]);
    expect(a).toBeGreaterThan(1023);
    expect(b).toBeGreaterThan(1023);
  });

  it('PostgreSQL listens on 127.0.0.1 with scram passwords, runs as the right OS user', async () => {
    expect(pg.host).toBe('127.0.0.1');
    expect(pg.majorVersion).toBeGreaterThanOrEqual(13);
    expect(existsSync(join(pg.binDir, 'initdb'))).toBe(true);
    expect(pg.env()).toEqual({ PGHOST: '127.0.0.1', PGPORT: String(pg.port), PGUSER: 'postgres', PGPASSWORD: pg.password });
    expect(await pg.psql("SELECT current_setting('listen_addresses'), current_setting('fsync'), current_user")).toBe(
      '127.0.0.1|off|postgres',
    );

    const wrong = await execa(pg.bin('psql'), ['-X', '-At', '-h', pg.host, '-p', String(pg.port), '-U', 'postgres', '-c', 'SELECT 1'], {
      env: { PGPASSWORD: 'not-the-password' },
      reject: false,
    });
    expect(wrong.exitCode).not.toBe(0);
    expect(wrong.stderr).toMatch(/password authentication failed/);

    // The seeded owner role can log in over TCP with its own password.
    const owner = await execa(
      pg.bin('psql'),
      ['-X', '-At', '-h', pg.host, '-p', String(pg.port), '-U', 'app_owner', '-d', DB, '-c', 'SELECT count(*) FROM app.users'],
      {
        env: { PGPASSWORD: 'app_owner-password' },
      },
    );
    expect(owner.stdout).toBe('200');

    const pid = pg.pid();
    expect(pid).toBeDefined();
    if (process.getuid?.() === 0) expect(processUid(pid ?? 0)).not.toBe(0);
  });

  it('psql errors name the server and database and carry the server message', async () => {
    await expect(pg.psql('SELECT * FROM no_such_table', DB)).rejects.toThrow(
      new RegExp(`psql on 127\\.0\\.0\\.1:${pg.port} db "${DB}" failed: .*no_such_table`),
    );
  });

  it('seeded PostgreSQL has the expected shape and its fingerprint is stable and data-sensitive', async () => {
    const first = await fingerprintPostgres(pg, DB);
    expect(first.tables['app.users']?.rows).toBe(200);
    expect(first.tables['app.stories']?.rows).toBe(401);
    expect(first.tables['app.comments']?.rows).toBe(600);
    expect(first.sequences['app.invoice_number_seq']).toBe('4242');
    expect(first.sequences['app.users_id_seq']).toBe('200');
    expect(first.views).toEqual(['app.published_stories']);
    expect(first.triggers).toEqual(['app.stories.stories_story_count', 'app.stories.stories_word_count']);
    expect(first.functions).toContain('app.word_count(body text)');
    expect(first.enums['app.story_status']).toEqual(['draft', 'published', 'archived']);
    expect(await fingerprintPostgres(pg, DB)).toEqual(first);
    // The triggers did their job.
    expect(await pg.psql('SELECT sum(story_count) FROM app.users', DB)).toBe('401');
    expect(await pg.psql("SELECT has_table_privilege('app_reader', 'app.published_stories', 'SELECT')", DB)).toBe('t');

    // Same seed in another database: identical fingerprint (seeds are deterministic).
    await seedPostgres(pg, 'scratch', { rows: 200 });
    const scratch = await fingerprintPostgres(pg, 'scratch');
    expect({ ...scratch, database: DB }).toEqual(first);

    await pg.psql('UPDATE app.users SET karma = karma + 1 WHERE id = 7', 'scratch');
    const changed = await fingerprintPostgres(pg, 'scratch');
    expect(changed.tables['app.users']?.md5).not.toBe(first.tables['app.users']?.md5);
    expect(changed.tables['app.users']?.rows).toBe(200);
    expect(changed.tables['app.stories']).toEqual(first.tables['app.stories']);

    await pg.psql("SELECT nextval('app.invoice_number_seq')", 'scratch');
    expect((await fingerprintPostgres(pg, 'scratch')).sequences['app.invoice_number_seq']).toBe('4243');
  });

  it('seeded Redis has every type in db 0 and 1, TTLs, and a stable, data-sensitive fingerprint', async () => {
    const first = await fingerprintRedis(redis);
    const db0 = first.dbs['0'] ?? {};
    const db1 = first.dbs['1'] ?? {};
    expect(new Set(Object.values(db0).map((k) => k.type))).toEqual(new Set(['string', 'hash', 'list', 'set', 'zset', 'stream']));
    expect(Object.keys(db1).length).toBe(7);
    expect(db0['session:1']?.ttl).toBe(true);
    expect(db0['user:1']?.ttl).toBe(false);
    expect(db0['blob:binary']?.value).toMatch(/^base64:/);
    expect(db0['events']?.groups).toEqual([['workers', '0-0']]);
    expect(Number(await redis.cli(['TTL', 'session:1']))).toBeGreaterThan(3000);
    expect(await redis.cli(['GET', 'cache:hits'], 1)).toBe('99');
    expect(await fingerprintRedis(redis)).toEqual(first);

    await redis.command(['SADD', 'cache:keys', 'extra'], 1);
    expect(await fingerprintRedis(redis)).not.toEqual(first);
    await redis.command(['SREM', 'cache:keys', 'extra'], 1);
    await redis.command(['PERSIST', 'session:2']);
    expect(await fingerprintRedis(redis)).not.toEqual(first);
    await redis.command(['PEXPIRE', 'session:2', 3_600_000]);
    expect(await fingerprintRedis(redis)).toEqual(first);
  });

  it('Prometheus has self-scraped samples; its fingerprint at a fixed past time is stable', async () => {
    const promT = await promSampled;
    const first = await fingerprintPrometheus(prom, promT);
    expect(first.up).toHaveLength(1);
    expect(first.up[0]?.value).toBe('1');
    expect(first.seriesCount).toBeGreaterThan(50);
    expect(first.upSamplesLastMinute).toBeGreaterThanOrEqual(1);
    expect(first.processStartTime).not.toBeNull();
    expect(await fingerprintPrometheus(prom, promT)).toEqual(first);
    expect(await fingerprintPrometheus(prom, promT - 3600)).not.toEqual(first);
  });

  it('makes story-portal backup sets exactly like platform/backup.sh', async () => {
    const root = await group.tempDir('ra-story-portal-');
    const world = { pg, db: DB, redis, prom };
    const set = await backupStoryPortal(world, root, { time: new Date('2026-01-18T01:45:13Z') });
    storyPortalSet = set;
    expect(set.id).toBe('2026-01-18_01-45-13');
    expect(set.dir).toBe(join(root, '2026-01-18_01-45-13'));
    expect(readdirSync(set.dir).sort()).toEqual(['metadata.txt', 'postgres.sql.gz', 'prometheus-data.tar.gz', 'redis.rdb']);

    await execa('gzip', ['-t', join(set.dir, 'postgres.sql.gz')]);
    const sql = (await execa('gzip', ['-dc', join(set.dir, 'postgres.sql.gz')])).stdout;
    expect(sql).toContain('PostgreSQL database dump');
    expect(sql).toContain('CREATE TABLE app.users');
    expect(sql).toContain('OWNER TO app_owner');

    const rdbCheck = await execa('redis-check-rdb', [join(set.dir, 'redis.rdb')]);
    expect(rdbCheck.stdout).toMatch(/RDB looks OK/);

    const entries = (await execa('tar', ['-tzf', join(set.dir, 'prometheus-data.tar.gz')])).stdout.split('\n');
    expect(entries).toContain('./');
    expect(entries).toContain('./wal/');
    expect(entries).toContain('./chunks_head/');
    expect(entries).toContain('./lock');
    expect(entries).toContain('./queries.active');

    const metadata = await readFile(join(set.dir, 'metadata.txt'), 'utf8');
    const lines = metadata.split('\n');
    expect(lines[0]).toBe('Backup Date: 2026-01-18_01-45-13');
    expect(lines).toContain('Components:');
    expect(lines).toContain(`  - PostgreSQL (${DB} database)`);
    expect(lines).toContain('Backup Size:');

    // A later set sits next to it; the same second twice is refused.
    const later = await backupStoryPortal(world, root, { time: new Date('2026-01-19T01:45:13Z') });
    expect(readdirSync(root).sort()).toEqual(['2026-01-18_01-45-13', '2026-01-19_01-45-13']);
    expect(later.id).toBe('2026-01-19_01-45-13');
    await expect(backupStoryPortal(world, root, { time: new Date('2026-01-19T01:45:13Z') })).rejects.toThrow(/already exists/);
  });

  it('makes metachat backups (pg_dump -Fc + sha256 sidecar, redis dump_<ts>.rdb) and the other pg formats', async () => {
    const root = await group.tempDir('ra-metachat-');
    const backup = await backupMetachat({ pg, db: DB, redis }, root, { time: new Date('2026-01-18T02:00:00Z') });
    expect(backup.dump).toBe(join(root, 'postgres', `${DB}_20260118_020000.dump`));
    expect(backup.rdb).toBe(join(root, 'redis', 'dump_20260118_020000.rdb'));
    metachatDump = backup.dump;
    expect(await readFile(backup.sha256File, 'utf8')).toBe(`${backup.sha256}  ${DB}_20260118_020000.dump\n`);
    await execa('sha256sum', ['-c', `${DB}_20260118_020000.dump.sha256`], { cwd: join(root, 'postgres') });
    const list = (await execa(pg.bin('pg_restore'), ['--list', backup.dump])).stdout;
    expect(list).toMatch(/TABLE DATA app users/);
    expect(list).toMatch(/SEQUENCE SET app invoice_number_seq/);
    await execa('redis-check-rdb', [backup.rdb ?? '']);

    const dir = await backupPgDirectory(pg, DB, join(root, 'dir-format'));
    expect(existsSync(join(dir, 'toc.dat'))).toBe(true);
    expect((await execa(pg.bin('pg_restore'), ['--list', dir])).stdout).toMatch(/TABLE DATA app stories/);

    const plain = await backupPgPlain(pg, DB, join(root, 'plain.sql'));
    expect(await readFile(plain, 'utf8')).toContain('CREATE TRIGGER stories_word_count');

    const script = await backupMetachatDatabaseScript(pg, DB, join(root, 'var-backups-metachat'), {
      time: new Date('2026-01-18T02:00:00Z'),
    });
    expect(script).toMatch(/metachat_backup_20260118_020000\.sql\.gz$/);
    const scriptSql = (await execa('gzip', ['-dc', script])).stdout;
    expect(scriptSql).toContain('DROP TABLE IF EXISTS app.users');
    expect(scriptSql).not.toContain('OWNER TO');

    await expect(backupPgPlain(pg, 'no_such_db', join(root, 'x.sql.gz'))).rejects.toThrow(/pg_dump of no_such_db .*no_such_db/s);
    expect(existsSync(join(root, 'x.sql.gz'))).toBe(false);
  });

  it('the backups restore into fresh servers with identical fingerprints (fingerprints are restore-invariant)', async () => {
    const set = storyPortalSet;
    if (!set?.files.redis || !set.files.prometheus || !metachatDump) throw new Error('needs the backup tests above');
    const [redis2, prom2] = await Promise.all([group.redis(), group.prometheus()]);

    // PostgreSQL: plain dump through psql, custom dump through pg_restore, each into a fresh database.
    const expected = await fingerprintPostgres(pg, DB);
    await pg.psql('CREATE DATABASE restored_plain; CREATE DATABASE restored_custom;');
    await execa('gzip', ['-dc', set.files.postgres]).pipe(
      pg.bin('psql'),
      ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', pg.host, '-p', String(pg.port), '-U', 'postgres', '-d', 'restored_plain'],
      { env: pg.env() },
    );
    expect({ ...(await fingerprintPostgres(pg, 'restored_plain')), database: DB }).toEqual(expected);
    await execa(
      pg.bin('pg_restore'),
      ['-h', pg.host, '-p', String(pg.port), '-U', 'postgres', '-d', 'restored_custom', '--exit-on-error', metachatDump],
      {
        env: pg.env(),
      },
    );
    expect({ ...(await fingerprintPostgres(pg, 'restored_custom')), database: DB }).toEqual(expected);

    // Redis: stop, drop the RDB in, start.
    await redis2.stop();
    await copyFile(set.files.redis, redis2.rdbPath);
    await redis2.start();
    expect(await fingerprintRedis(redis2)).toEqual(await fingerprintRedis(redis));

    // Prometheus: stop, replace the data dir with the tarball's content, start; the past is back.
    await prom2.stop();
    await rm(prom2.dataDir, { recursive: true, force: true });
    await mkdir(prom2.dataDir);
    await execa('tar', ['-xzf', set.files.prometheus, '-C', prom2.dataDir]);
    await prom2.start();
    const promT = await promSampled;
    const original = await fingerprintPrometheus(prom, promT);
    expect(await fingerprintPrometheus(prom2, promT)).toEqual(original);

    await Promise.all([redis2.dispose(), prom2.dispose()]);
  });

  it('Redis with appendonly uses the Redis 7 multi-part AOF dir, which wins over dump.rdb at startup', async () => {
    const aof = await group.redis({ appendonly: true, password: 'aof pass "quoted"' });
    expect(aof.aofDir).toBe(join(aof.dir, 'appendonlydir'));
    await aof.command(['SET', 'only-in-aof', '1']);
    expect(readdirSync(aof.aofDir).sort()).toEqual(['appendonly.aof.1.base.rdb', 'appendonly.aof.1.incr.aof', 'appendonly.aof.manifest']);
    await aof.stop();
    // Dropping a seeded RDB in is not enough: with appendonly yes Redis loads the AOF and ignores dump.rdb.
    await copyFile(redis.rdbPath, aof.rdbPath);
    await aof.start();
    expect(await aof.cli(['EXISTS', 'only-in-aof'])).toBe('1');
    expect(await aof.cli(['EXISTS', 'app:config'])).toBe('0');
    await aof.dispose();
  });

  it('service-ctl stops and starts Redis like systemctl, with LSB status codes; data survives', async () => {
    const before = await fingerprintRedis(redis);
    const pidBefore = await redis.pid();
    expect((await serviceCtl('status', redis.spec)).exitCode).toBe(0);

    const stop = await serviceCtl('stop', redis.spec);
    expect(stop.exitCode, stop.stderr).toBe(0);
    expect(pidAlive(pidBefore ?? 0)).toBe(false);
    expect((await serviceCtl('status', redis.spec)).exitCode).toBe(3);
    expect(await redis.isRunning()).toBe(false);
    expect(existsSync(redis.pidFile)).toBe(false);
    const again = await serviceCtl('stop', redis.spec);
    expect(again.exitCode).toBe(0);
    expect(again.stdout).toMatch(/not running/);

    const start = await serviceCtl('start', redis.spec);
    expect(start.exitCode, start.stderr).toBe(0);
    const already = await serviceCtl('start', redis.spec);
    expect(already.exitCode).toBe(0);
    expect(already.stdout).toMatch(/already running \(pid \d+\)/);
    await redis.start(); // waits for PONG (not LOADING)
    expect(await fingerprintRedis(redis)).toEqual(before);
  });

  it('service-ctl stops and starts Prometheus; old samples come back from the WAL', async () => {
    const promT = await promSampled;
    const before = await fingerprintPrometheus(prom, promT);
    expect((await serviceCtl('stop', prom.spec)).exitCode).toBe(0);
    expect((await serviceCtl('status', prom.spec)).exitCode).toBe(3);
    expect(
      await fetch(`${prom.url}/-/ready`).then(
        () => 'up',
        () => 'down',
      ),
    ).toBe('down');
    const start = await serviceCtl('start', prom.spec);
    expect(start.exitCode, start.stderr).toBe(0);
    expect((await serviceCtl('status', prom.spec)).exitCode).toBe(0);
    expect(await fingerprintPrometheus(prom, promT)).toEqual(before);
  });

  it('service-ctl reports a daemon that dies during startup with exit 1 and its log tail; bad specs exit 2', async () => {
    const dir = await group.tempDir('ra-svc-');
    const spec = join(dir, 'broken.json');
    await writeServiceSpec(spec, {
      name: 'broken',
      argv: [process.execPath, '-e', 'console.error("boom: cannot bind"); process.exit(3)'],
      pidFile: join(dir, 'broken.pid'),
      logFile: join(dir, 'broken.log'),
      ready: { tcp: { host: '127.0.0.1', port: await freePort() } },
      readyTimeoutMs: 10_000,
    });
    const result = await serviceCtl('start', spec);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(/exited during startup \(exit code 3\)/);
    expect(result.stderr).toMatch(/boom: cannot bind/);
    expect(existsSync(join(dir, 'broken.pid'))).toBe(false);
    expect(await serviceStatus(await readServiceSpec(spec))).toEqual({ running: false });

    // Someone else already answers on the probe port: refuse instead of reporting a false "ready".
    const squatter = createServer().listen(0, '127.0.0.1');
    await once(squatter, 'listening');
    const squatted = (squatter.address() as AddressInfo).port;
    try {
      await expect(
        startService({
          name: 'collides',
          argv: [process.execPath, '-e', 'setInterval(() => {}, 1000)'],
          pidFile: join(dir, 'collides.pid'),
          logFile: join(dir, 'collides.log'),
          ready: { tcp: { host: '127.0.0.1', port: squatted } },
        }),
      ).rejects.toThrow(new RegExp(`127\\.0\\.0\\.1:${squatted} already accepts connections`));
    } finally {
      squatter.close();
    }

    const bad = join(dir, 'bad.json');
    await writeFile(bad, JSON.stringify({ name: 'x', argv: [] }));
    const invalid = await serviceCtl('start', bad);
    expect(invalid.exitCode).toBe(2);
    expect(invalid.stderr).toMatch(/invalid spec/);
  });

  it('service-ctl runAsUser drops privileges when root; a spec without a probe is ready when it stays up', async () => {
    const dir = await group.tempDir('ra-svc-user-');
    const spec = {
      name: 'sleeper',
      argv: [
        process.execPath,
        '-e',
        'process.stdout.write(`uid=${process.getuid()} home=${process.env.HOME}\\n`); setInterval(() => {}, 1000)',
      ],
      runAsUser: process.getuid?.() === 0 ? 'postgres' : undefined,
      pidFile: join(dir, 'sleeper.pid'),
      logFile: join(dir, 'sleeper.log'),
      stopSignal: 'SIGTERM',
    };
    const started = await startService(spec);
    try {
      expect(started.alreadyRunning).toBe(false);
      expect(await serviceStatus(spec)).toEqual({ running: true, pid: started.pid });
      if (process.getuid?.() === 0) {
        expect(processUid(started.pid)).not.toBe(0);
      }
      // node may still be booting after the grace period: wait for its line before stopping it.
      // (The log's header line quotes the argv, so match the printed number, not 'uid='.)
      for (let i = 0; i < 400 && !/uid=\d+/.test(await readFile(spec.logFile, 'utf8')); i += 1) await new Promise((r) => setTimeout(r, 25));
      if (process.getuid?.() === 0) expect(await readFile(spec.logFile, 'utf8')).toMatch(/uid=(?!0\b)\d+ home=\//);
      expect(await stopService(spec)).toEqual({ wasRunning: true, pid: started.pid, escalated: false });
      expect(pidAlive(started.pid)).toBe(false);
    } finally {
      // Whatever failed above, never leave the sleeper behind (it runs detached, in its own group).
      if (pidAlive(started.pid)) {
        await stopService(spec).catch(() => undefined);
        if (pidAlive(started.pid)) {
          try {
            process.kill(-started.pid, 'SIGKILL');
          } catch {
            // already gone between the check and the kill
          }
        }
      }
    }
  });

  it('serviceCtlArgv runs the .ts source through tsx (from any cwd) and the module does not run the CLI on import', () => {
    const argv = serviceCtlArgv('status', '/x/spec.json');
    expect(argv[0]).toBe(process.execPath);
    expect(argv[1]).toBe('--import');
    expect(argv[2]).toMatch(/^file:\/\/.*tsx/);
    expect(argv[3]).toMatch(/source\/sandbox\/service-ctl\.ts$/);
    expect(argv.slice(4)).toEqual(['status', '/x/spec.json']);
  });

  it('the safety net kills what a process left behind (on exit and on SIGTERM) and removes its dirs', async () => {
    const fixture = join(dirname(fileURLToPath(import.meta.url)), '..', 'support', 'sandbox-exit-child.ts');
    const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
    const run = async (mode: 'exit' | 'sigterm') => {
      const child = await execa(process.execPath, ['--import', tsx, fixture, baseDir, mode], { reject: false });
      if (mode === 'sigterm') expect(child.signal, child.stderr).toBe('SIGTERM');
      else expect(child.exitCode, child.stderr).toBe(0);
      return JSON.parse(child.stdout.trim().split('\n').pop() ?? '{}') as { pids: number[]; dirs: string[] };
    };
    const results = await Promise.all([run('exit'), run('sigterm')]);
    expect(results.map((info) => info.pids.length)).toEqual([3, 1]);
    for (const info of results) {
      for (const pid of info.pids) expect(pidAlive(pid)).toBe(false);
      for (const dir of info.dirs) expect(existsSync(dir)).toBe(false);
    }
  });

  it('PostgreSQL stop() and start() cycle the server and keep the data', async () => {
    const before = pg.pid();
    await pg.stop();
    expect(pg.isRunning()).toBe(false);
    expect(pidAlive(before ?? 0)).toBe(false);
    await expect(pg.psql('SELECT 1')).rejects.toThrow(new RegExp(`psql on 127\\.0\\.0\\.1:${pg.port}`));
    await pg.stop(); // idempotent
    await pg.start();
    expect(pg.isRunning()).toBe(true);
    expect(await pg.psql('SELECT count(*) FROM app.users', DB)).toBe('200');
  });

  it('stopAll leaves no process and no temp dir behind (and is idempotent)', async () => {
    const pids = [pg.pid(), await redis.pid(), await prom.pid()];
    const dirs = [pg.rootDir, redis.rootDir, prom.rootDir, ...group.tempDirs];
    for (const pid of pids) expect(pid !== undefined && pidAlive(pid)).toBe(true);
    await group.stopAll();
    for (const pid of pids) expect(pidAlive(pid ?? 0)).toBe(false);
    for (const dir of dirs) expect(existsSync(dir)).toBe(false);
    expect(processesMentioning(baseDir)).toEqual([]);
    expect(processesMentioning(`:${pg.port}`).concat(processesMentioning(`-p ${pg.port}`))).toEqual([]);
    expect(readdirSync(baseDir)).toEqual([]);
    expect(pg.isRunning()).toBe(false);
    await group.stopAll();
    await pg.stop();
    expect((await stat(baseDir)).isDirectory()).toBe(true);
  });
});
