import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, lstat, mkdir, mkdtemp, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { deadPid, plantLock } from '../support/stale-lock.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cliBin } from '../support/cli.js';
import {
  acquireLocks,
  bootId,
  findStaleLocks,
  inspectLocks,
  LockError,
  lockFileName,
  processStartTime,
  takeOverLocks,
} from '../../source/engine/lock.js';
import { canonicalAddress, realPathOf, resolveAddress } from '../../source/engine/target-identity.js';

const isRoot = process.getuid?.() === 0;
const NOBODY = 65534;
let dir: string;
let lockDir: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ra-locks-'));
  await chmod(dir, 0o755);
  lockDir = path.join(dir, 'locks');
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const plant = (key: string, content: Record<string, unknown>): Promise<string> => plantLock(lockDir, key, content);

describe('lock files', () => {
  it('names stay within NAME_MAX and two keys never share one', () => {
    const long = `redis-data:/${'x'.repeat(400)}`;
    expect(Buffer.byteLength(lockFileName(long))).toBeLessThan(200);
    expect(lockFileName(`${long}a`)).not.toBe(lockFileName(`${long}b`));
    expect(lockFileName('postgres:127.0.0.1:5432/app')).toMatch(/^postgres%3a127\.0\.0\.1%3a5432%2fapp\.[0-9a-f]{16}\.lock$/);
  });

  it('a lock records owner user, uid, pid, host, boot id, process start time, run id and start; release removes it', async () => {
    const h = await acquireLocks(['postgres:127.0.0.1:5432/app'], { dir: lockDir, runId: 'run-1', command: 'restore' });
    const file = h.files.get('postgres:127.0.0.1:5432/app')!;
    const content = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    expect(content).toMatchObject({
      format: 'restore-assistant/lock@1',
      key: 'postgres:127.0.0.1:5432/app',
      pid: process.pid,
      host: os.hostname(),
      runId: 'run-1',
      command: 'restore',
      bootId: bootId(),
    });
    expect(content['processStart']).toBe(processStartTime(process.pid));
    expect(content['processStart']).toMatch(/^\d+$/);
    expect(typeof content['user']).toBe('string');
    expect(Date.parse(String(content['startedAt']))).not.toBeNaN();
    expect((await stat(file)).mode & 0o7777).toBe(0o644);
    await h.release();
    expect(existsSync(file)).toBe(false);
    await h.release();
  });

  it.runIf(isRoot)('root creates the machine-wide lock dir owned by root with mode 1777 (every operator takes locks there)', async () => {
    const h = await acquireLocks(['k'], { dir: lockDir, runId: 'r' });
    const st = await lstat(lockDir);
    expect(st.uid).toBe(0);
    expect(st.mode & 0o7777).toBe(0o1777);
    await h.release();
  });

  it('release removes only a lock that is still ours (a file put in its place stays)', async () => {
    const h = await acquireLocks(['k'], { dir: lockDir, runId: 'r' });
    const file = h.files.get('k')!;
    await unlink(file);
    await writeFile(file, '{"pid":1,"host":"x"}');
    await h.release();
    expect(await readFile(file, 'utf8')).toBe('{"pid":1,"host":"x"}');
  });

  it.runIf(isRoot)(
    'a sticky world-writable dir owned by another user is refused (its owner could delete every lock), as is one without the sticky bit',
    async () => {
      await mkdir(lockDir);
      await chmod(lockDir, 0o1777);
      const { chown } = await import('node:fs/promises');
      await chown(lockDir, NOBODY, NOBODY);
      await expect(acquireLocks(['k'], { dir: lockDir, runId: 'r' })).rejects.toMatchObject({ exitCode: 9 });
      await chown(lockDir, 0, 0);
      await chmod(lockDir, 0o777);
      await expect(acquireLocks(['k'], { dir: lockDir, runId: 'r' })).rejects.toThrow(/writable by every user without the sticky bit/);
    },
  );
});

describe('live and stale locks', () => {
  it('a live lock refuses with exit 8 naming owner, pid and start', async () => {
    const held = await acquireLocks(['redis:127.0.0.1:6379'], { dir: lockDir, runId: 'other-run', command: 'restore' });
    const err = await acquireLocks(['redis:127.0.0.1:6379', 'postgres:127.0.0.1:5432/app'], { dir: lockDir, runId: 'me' }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(LockError);
    const e = err as LockError;
    expect(e.exitCode).toBe(8);
    expect(e.stale).toBe(false);
    expect(e.message).toMatch(
      new RegExp(
        `Another restore holds redis:127\\.0\\.0\\.1:6379 \\(pid ${process.pid} on .*, by .*, started \\d{4}-.*, restore run other-run\\)`,
      ),
    );
    // all or nothing: the free key was not kept
    expect(existsSync(path.join(lockDir, lockFileName('postgres:127.0.0.1:5432/app')))).toBe(false);
    await held.release();
  });

  it('every stale lock is reported at once, with its run, and sends the operator to recover; none is taken', async () => {
    const pid = deadPid();
    const a = await plant('postgres:127.0.0.1:5432/shop', { pid, processStart: '123' });
    const b = await plant('redis:127.0.0.1:6379', { pid, processStart: '123' });
    const c = await plant('prometheus:127.0.0.1:9090', { pid, processStart: '123' });
    const keys = ['postgres:127.0.0.1:5432/shop', 'redis:127.0.0.1:6379', 'prometheus:127.0.0.1:9090'];
    const err = (await acquireLocks(keys, { dir: lockDir, runId: 'me', recipe: 'shop' }).catch((e: unknown) => e)) as LockError;
    expect(err).toBeInstanceOf(LockError);
    expect(err.exitCode).toBe(8);
    expect(err.stale).toBe(true);
    expect(err.staleLocks.map((l) => l.key).sort()).toEqual([...keys].sort());
    expect(err.message).toContain('run crashed-run');
    expect(err.message).toContain('3 stale locks');
    expect(err.next).toContain('Run `restore-assistant recover --recipe shop`');
    expect(err.problems.join('\n')).toContain(`no process ${pid} is running`);
    for (const f of [a, b, c]) expect(JSON.parse(await readFile(f, 'utf8')).runId).toBe('crashed-run');
    const stale = await findStaleLocks(keys, { dir: lockDir });
    expect(stale.map((s) => [s.key, s.runId])).toEqual(keys.map((k) => [k, 'crashed-run']).sort((x, y) => x[0]!.localeCompare(y[0]!)));
  });

  it('a reused pid (alive, another start time) is stale; another boot is stale; another host is not judged', async () => {
    const sleeper = spawn('sleep', ['30']);
    try {
      await plant('a', { pid: sleeper.pid, processStart: '1' });
      await plant('b', { pid: sleeper.pid, processStart: processStartTime(sleeper.pid!) });
      await plant('c', { pid: sleeper.pid, processStart: processStartTime(sleeper.pid!), bootId: '00000000-0000-0000-0000-000000000000' });
      await plant('d', { pid: deadPid(), host: 'elsewhere.example' });
      const found = Object.fromEntries((await inspectLocks(['a', 'b', 'c', 'd'], { dir: lockDir })).map((s) => [s.key, s]));
      expect(found['a']).toMatchObject({ state: 'stale' });
      expect(found['a']!.reason).toMatch(/is now another process/);
      expect(found['b']).toMatchObject({ state: 'live' });
      expect(found['c']).toMatchObject({ state: 'stale', reason: 'the machine restarted since' });
      expect(found['d']).toMatchObject({ state: 'live' });
    } finally {
      sleeper.kill('SIGKILL');
    }
  });

  it('a symlink or a FIFO at a lock name is never followed or read as a lock', async () => {
    const { symlink } = await import('node:fs/promises');
    await mkdir(lockDir, { recursive: true, mode: 0o755 });
    const victim = path.join(dir, 'victim');
    await writeFile(victim, JSON.stringify({ pid: deadPid(), host: os.hostname() }));
    await symlink(victim, path.join(lockDir, lockFileName('s')));
    spawnSync('mkfifo', [path.join(lockDir, lockFileName('f'))]);
    const err = (await acquireLocks(['s', 'f'], { dir: lockDir, runId: 'r' }).catch((e: unknown) => e)) as LockError;
    expect(err.exitCode).toBe(8);
    expect(err.stale).toBe(false);
    expect(err.unreadable).toHaveLength(2);
    expect(err.problems.join('\n')).toMatch(/symbolic link/);
    expect(err.problems.join('\n')).toMatch(/not a regular file/);
  });
});

describe('takeover (recover)', () => {
  it('replaces exactly the stale locks found, all at once, and takes the free keys too', async () => {
    const pid = deadPid();
    await plant('x', { pid });
    await plant('y', { pid });
    const stale = await findStaleLocks(['x', 'y', 'z'], { dir: lockDir });
    expect(stale).toHaveLength(2);
    const h = await takeOverLocks(stale, { dir: lockDir, runId: 'recover-1', command: 'recover', keys: ['x', 'y', 'z'] });
    expect([...h.files.keys()].sort()).toEqual(['x', 'y', 'z']);
    for (const f of h.files.values())
      expect(JSON.parse(await readFile(f, 'utf8'))).toMatchObject({ pid: process.pid, runId: 'recover-1', command: 'recover' });
    // A second recover finds nothing stale and cannot take them.
    expect(await findStaleLocks(['x', 'y'], { dir: lockDir })).toEqual([]);
    await expect(takeOverLocks(stale, { dir: lockDir, runId: 'recover-2' })).rejects.toMatchObject({ exitCode: 8 });
    await h.release();
    expect(await inspectLocks(['x', 'y', 'z'], { dir: lockDir })).toEqual(
      expect.arrayContaining([expect.objectContaining({ state: 'free' })]),
    );
  });

  it('refuses a lock that changed since it was judged stale (another file in its place)', async () => {
    const file = await plant('x', { pid: deadPid() });
    const stale = await findStaleLocks(['x'], { dir: lockDir });
    await unlink(file);
    await plant('x', { pid: deadPid(), runId: 'another-crash' });
    await expect(takeOverLocks(stale, { dir: lockDir, runId: 'recover-1' })).rejects.toMatchObject({ exitCode: 8 });
    expect(JSON.parse(await readFile(file, 'utf8')).runId).toBe('another-crash');
  });
});

describe.runIf(isRoot)('two users, one machine-wide directory', () => {
  /** Take `key` as `uid` (the built module, in a child process), print JSON, hold it until `release()`, then release it. */
  function asUser(
    uid: number,
    key: string,
  ): { done: Promise<{ code: number | null; out: string }>; release: () => void; out: () => string } {
    const mod = path.join(path.dirname(cliBin()), 'engine', 'lock.js');
    const script = `import(${JSON.stringify(mod)}).then(async (m) => { try { const h = await m.acquireLocks([${JSON.stringify(key)}], { dir: ${JSON.stringify(lockDir)}, runId: 'user-${uid}' }); console.log(JSON.stringify({ ok: true })); await new Promise((r) => { process.stdin.on('end', r); process.stdin.resume(); }); await h.release(); } catch (e) { console.log(JSON.stringify({ ok: false, exitCode: e.exitCode, message: e.message })); } })`;
    const argv = ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', process.execPath, '-e', script];
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const done = new Promise<{ code: number | null; out: string }>((resolve) => child.on('close', (code) => resolve({ code, out })));
    return { done, release: () => child.stdin.end(), out: () => out };
  }

  it("an unprivileged user takes a lock in the root 1777 dir; root cannot take the same target, and the user cannot remove root's lock", async () => {
    const root = await acquireLocks(['postgres:127.0.0.1:5432/shop'], { dir: lockDir, runId: 'root-run' });
    const attempt = asUser(NOBODY, 'postgres:127.0.0.1:5432/shop');
    attempt.release();
    const theirs = await attempt.done;
    expect(JSON.parse(theirs.out)).toMatchObject({ ok: false, exitCode: 8 });
    expect(JSON.parse(theirs.out).message).toMatch(/Another restore holds postgres:127\.0\.0\.1:5432\/shop .*root-run/);
    // The sticky bit: nobody cannot unlink root's lock.
    const rmAsNobody = spawnSync('setpriv', [
      `--reuid=${NOBODY}`,
      `--regid=${NOBODY}`,
      '--clear-groups',
      'rm',
      '-f',
      root.files.get('postgres:127.0.0.1:5432/shop')!,
    ]);
    expect(rmAsNobody.status).not.toBe(0);
    expect(existsSync(root.files.get('postgres:127.0.0.1:5432/shop')!)).toBe(true);
    await root.release();

    const userHolds = asUser(NOBODY, 'redis:127.0.0.1:6379');
    // Wait until the user holds its lock (it says so once the file is written).
    while (!userHolds.out().includes('"ok"')) await new Promise((r) => setTimeout(r, 25));
    expect(userHolds.out()).toContain('"ok":true');
    const file = path.join(lockDir, lockFileName('redis:127.0.0.1:6379'));
    expect((await lstat(file)).uid).toBe(NOBODY);
    const err = (await acquireLocks(['redis:127.0.0.1:6379'], { dir: lockDir, runId: 'root-2' }).catch((e: unknown) => e)) as LockError;
    expect(err.exitCode).toBe(8);
    expect(err.message).toMatch(/uid 65534/);
    userHolds.release();
    expect((await userHolds.done).code).toBe(0);
    expect(existsSync(file)).toBe(false);
  });
});

describe('target identity', () => {
  it('localhost, 127.0.0.1 and ::1 are one address; other addresses keep theirs', async () => {
    expect(await resolveAddress('localhost')).toBe('127.0.0.1');
    expect(await resolveAddress('127.0.0.1')).toBe('127.0.0.1');
    expect(await resolveAddress('::1')).toBe('127.0.0.1');
    expect(await resolveAddress('[::1]')).toBe('127.0.0.1');
    expect(canonicalAddress('::ffff:10.1.2.3')).toBe('10.1.2.3');
    expect(await resolveAddress('127.0.0.2')).toBe('127.0.0.2');
    expect(await resolveAddress('no-such-host.invalid')).toBe('no-such-host.invalid');
  });

  it('a data directory is named by its real path (symlinks, .., a missing tail)', async () => {
    const real = path.join(dir, 'real');
    await mkdir(real);
    const { symlink } = await import('node:fs/promises');
    await symlink(real, path.join(dir, 'link'));
    const r = await realPathOf(real);
    expect(await realPathOf(path.join(dir, 'link'))).toBe(r);
    expect(await realPathOf(path.join(dir, 'link', '..', 'real'))).toBe(r);
    expect(await realPathOf(path.join(dir, 'link', 'missing', 'x'))).toBe(path.join(r, 'missing', 'x'));
  });
});
