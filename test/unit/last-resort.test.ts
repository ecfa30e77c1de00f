import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { acquireLocks, type LockHandle } from '../../source/engine/lock.js';
import { ExitCode } from '../../source/exit-codes.js';
import { lastResort } from '../../source/last-resort.js';
import { heldLocks, holdLock, restoreInFlight } from '../../source/state/holds.js';

/**
 * The last resort (source/last-resort.ts): an error nothing handled says it is a bug, releases the
 * locks of this process when no restore is in flight and keeps them (for `recover`) when one is,
 * and exits 70. Real lock files in a temp lock directory (engine/lock.ts registers each it takes).
 */

let dir: string;
let handles: LockHandle[];
let out: string;
let codes: number[];
const io = {
  write: (t: string): void => {
    out += t;
  },
  exit: (c: number): void => {
    codes.push(c);
  },
  pid: 4242,
};

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'last-resort-'));
  handles = [];
  out = '';
  codes = [];
});
afterEach(async () => {
  for (const h of handles) await h.release();
  await rm(dir, { recursive: true, force: true });
});

async function take(keys: string[]): Promise<LockHandle> {
  const h = await acquireLocks(keys, { dir: path.join(dir, 'locks'), runId: 'r1', command: 'guide', recipe: 'story' });
  handles.push(h);
  return h;
}

describe('lastResort', () => {
  it('no restore in flight: says it is a bug, releases every lock this process holds, exits 70', async () => {
    const h = await take(['postgres:127.0.0.1:5432/app', 'redis:127.0.0.1:6379']);
    const files = [...h.files.values()];
    expect(files.every((f) => existsSync(f))).toBe(true);
    expect(heldLocks().map((l) => l.file)).toEqual(expect.arrayContaining(files));

    lastResort(new Error('the stray one'), 'unhandledRejection', io);

    expect(codes).toEqual([ExitCode.internal]);
    expect(out).toContain('Internal error: restore-assistant stopped on a rejected promise nothing awaited: Error: the stray one');
    expect(out).toContain('This is a bug in restore-assistant');
    expect(out).toMatch(/\n {4}at /); // the stack, for the report
    expect(out).toContain('No restore was in flight (nothing was touched): the 2 locks this process held are released.');
    expect(out).toContain('Next: Run the command again.');
    expect(await readdir(path.join(dir, 'locks'))).toEqual([]);
    expect(heldLocks().filter((l) => files.includes(l.file))).toEqual([]);
  });

  it('a restore in flight: nothing is released, the locks are named, and Next is recover --recipe FILE', async () => {
    const h = await take(['postgres:127.0.0.1:5432/app']);
    const file = [...h.files.values()][0]!;
    const end = restoreInFlight({
      runId: '20261201T221500Z-restore-story',
      recipe: 'story',
      recipeFile: '/etc/restore assistant/story.yaml',
    });
    try {
      lastResort(new TypeError('x is undefined'), 'uncaughtException', io);
    } finally {
      end();
    }
    expect(codes).toEqual([ExitCode.internal]);
    expect(out).toContain('stopped on an exception nothing caught: TypeError: x is undefined');
    expect(out).toContain('A restore was in flight (run 20261201T221500Z-restore-story of story): the targets may be half restored.');
    expect(out).toContain(`the lock stays (postgres:127.0.0.1:5432/app (${file}))`);
    expect(out).toContain(
      "Next: `restore-assistant recover --recipe '/etc/restore assistant/story.yaml'` shows what the run left (checked live), takes over the locks of this process (pid 4242, now gone)",
    );
    expect(existsSync(file)).toBe(true);
  });

  /** Two locks taken by this process; then someone replaces the Redis one's file: it is not ours any more. */
  async function takeWithRedisReplaced(): Promise<[string, string]> {
    const h = await take(['postgres:127.0.0.1:5432/app', 'redis:127.0.0.1:6379']);
    const [pgFile, redisFile] = [...h.files.values()] as [string, string];
    await rm(redisFile);
    await writeFile(redisFile, '{"pid":1,"host":"elsewhere"}\n');
    return [pgFile, redisFile];
  }

  it('a lock that cannot be removed is named with the fix; one replaced by someone else is left alone, said as replaced, never as released', async () => {
    const [pgFile, redisFile] = await takeWithRedisReplaced();
    const stuck = holdLock({
      key: 'prometheus:127.0.0.1:9090',
      file: path.join(dir, 'stuck.lock'),
      releaseSync: () => 'it cannot be removed (EROFS)',
    });
    try {
      lastResort('a plain string', 'unhandledRejection', io);
    } finally {
      stuck();
    }
    expect(codes).toEqual([ExitCode.internal]);
    expect(out).toContain('stopped on a rejected promise nothing awaited: a plain string');
    expect(out).toContain('No restore was in flight (nothing was touched); 1 of the locks this process held is released. Lock files left:');
    expect(out).toContain(`prometheus:127.0.0.1:9090 (${path.join(dir, 'stuck.lock')}): it cannot be removed (EROFS)`);
    expect(out).toContain(
      `Next: \`restore-assistant recover\` clears stale locks of processes that are gone (this one, pid 4242, is ending)`,
    );
    expect(out).toContain(`rm -- ${path.join(dir, 'stuck.lock')}`);
    expect(out).toContain('Replaced by someone else since (not ours, left alone):');
    expect(out).toContain(
      `redis:127.0.0.1:6379 (${redisFile}): another file is at its path since this process wrote it: left alone, not removed`,
    );
    // Never offered for removal: it is someone else's.
    const next = out.split('\n').find((l) => l.startsWith('Next:')) ?? '';
    expect(next).toContain(`rm -- ${path.join(dir, 'stuck.lock')}`);
    expect(next).not.toContain(redisFile);
    expect(existsSync(pgFile)).toBe(false);
    expect(existsSync(redisFile)).toBe(true);
  });

  it('only a replaced lock besides released ones: says so, and that another process wrote it', async () => {
    const [pgFile, redisFile] = await takeWithRedisReplaced();
    lastResort(new Error('late'), 'uncaughtException', io);
    expect(codes).toEqual([ExitCode.internal]);
    expect(out).toContain(
      'No restore was in flight (nothing was touched); 1 of the locks this process held is released; one was replaced by someone else since:',
    );
    expect(out).toContain(`redis:127.0.0.1:6379 (${redisFile}): another file is at its path since this process wrote it`);
    expect(out).toContain('Next: Another process wrote a lock there: check who (the file says), then run the command again.');
    expect(existsSync(pgFile)).toBe(false);
    expect(existsSync(redisFile)).toBe(true);
  });

  it('nothing held: says nothing is left behind', () => {
    lastResort(new Error('late'), 'uncaughtException', io);
    expect(codes).toEqual([ExitCode.internal]);
    expect(out).toContain('No restore was in flight and this process held no lock: nothing is left behind.');
  });

  it('hostile text in the error is escaped (no terminal control reaches stderr)', () => {
    lastResort(new Error('bad\x1b[2Jname\nforged line'), 'uncaughtException', io);
    expect(out).not.toContain('\x1b');
    expect(out).toContain('bad\\x1b[2Jname\\nforged line');
  });

  it('a release that throws is reported, and the exit is still 70', () => {
    const off = holdLock({
      key: 'k',
      file: path.join(dir, 'k.lock'),
      releaseSync: () => {
        throw new Error('EIO');
      },
    });
    try {
      lastResort(new Error('first'), 'uncaughtException', io);
    } finally {
      off();
    }
    expect(codes).toEqual([ExitCode.internal]);
    expect(out).toContain(`k (${path.join(dir, 'k.lock')}): its release failed (EIO)`);
  });
});
