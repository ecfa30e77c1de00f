import { spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { processStartTime } from '../../source/engine/lock.js';
import { INDEX_FORMAT, journalIndexDir } from '../../source/journal/journal.js';
import { runCli } from '../support/cli.js';
import { deadPid, plantLock } from '../support/stale-lock.js';

/**
 * `recover` with no unfinished restore releases the stale locks of runs that never journaled one
 * (a guide killed while it verified: the last resort's Next: line, and the stale-lock refusal's),
 * and nothing else: a live owner's lock, a lock of a run with an unfinished journal, and a file
 * that is not a lock stay. Before this, recover said "nothing to recover" and left them, so every
 * later run on those targets was refused (exit 8) until someone removed them by hand.
 */

let dir: string;
let lockDir: string;
let stateDir: string;
const env = (): Record<string, string> => ({ RESTORE_ASSISTANT_LOCK_DIR: lockDir, RESTORE_ASSISTANT_STATE_DIR: stateDir });

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ra-recover-locks-'));
  await chmod(dir, 0o755);
  lockDir = path.join(dir, 'locks');
  stateDir = path.join(dir, 'state');
  await mkdir(lockDir, { recursive: true, mode: 0o755 });
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A lock a guide took before it crashed (no restore journaled), with `content` over that. */
const plant = (key: string, content: Record<string, unknown>): Promise<string> =>
  plantLock(lockDir, key, { uid: 0, processStart: '', runId: 'guide-crashed', command: 'guide', ...content });

describe('recover with no unfinished restore', () => {
  it('releases the stale locks of a run that journaled no restore, keeps a live one and a foreign file (text and --json)', async () => {
    const pid = deadPid();
    const pg = await plant('postgres:127.0.0.1:5432/app', { pid });
    const redis = await plant('redis:127.0.0.1:6379', { pid });
    const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      const live = await plant('prometheus:/var/lib/prometheus', {
        pid: sleeper.pid,
        processStart: processStartTime(sleeper.pid!) ?? '',
        runId: 'guide-alive',
      });
      const foreign = path.join(lockDir, 'notes.lock');
      await writeFile(foreign, 'not a lock');

      const r = await runCli(['recover'], { env: env() });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain('No unfinished restore on this host: nothing to recover; 2 stale locks are released.');
      expect(r.stderr).toContain(
        `Released the stale lock on postgres:127.0.0.1:5432/app (left by guide run guide-crashed, pid ${pid}: no process ${pid} is running; that run journaled no restore, so it touched nothing).`,
      );
      expect(r.stderr).toContain('Released the stale lock on redis:127.0.0.1:6379');
      const left = await readdir(lockDir);
      expect(left.sort()).toEqual([path.basename(live), 'notes.lock'].sort());
      expect(left).not.toContain(path.basename(pg));
      expect(left).not.toContain(path.basename(redis));

      // Nothing stale is left: a second recover releases nothing and says only that.
      const again = await runCli(['recover', '--json'], { env: env() });
      expect(again.code, again.stderr).toBe(0);
      expect(JSON.parse(again.stdout)).toEqual({ unfinished: [], releasedLocks: [], keptLocks: [] });

      const pid2 = deadPid();
      await plant('postgres:127.0.0.1:5432/app', { pid: pid2, runId: 'drill-crashed', command: 'drill' });
      const j = await runCli(['recover', '--json'], { env: env() });
      expect(j.code, j.stderr).toBe(0);
      expect(JSON.parse(j.stdout)).toMatchObject({
        unfinished: [],
        releasedLocks: [{ key: 'postgres:127.0.0.1:5432/app', runId: 'drill-crashed', pid: pid2, command: 'drill' }],
      });
      expect((await readdir(lockDir)).sort()).toEqual([path.basename(live), 'notes.lock'].sort());
    } finally {
      sleeper.kill('SIGKILL');
    }
  });

  it('keeps the locks of a run whose journal cannot be read, and of a recover of an unfinished run: exit 5, says what to look at', async () => {
    const pid = deadPid();
    // A restore that journaled its begin (journal first, then the index entry: journal.ts), whose journal is
    // damaged since; and a recover attempt (index entry `recovers`) of a run still in the index.
    const journal = path.join(dir, 'evidence', 'restore-damaged', 'journal.jsonl');
    await mkdir(path.dirname(journal), { recursive: true });
    await writeFile(journal, '\u0000\u0000 not json\n');
    await mkdir(journalIndexDir(env()), { recursive: true, mode: 0o700 });
    const entry = (runId: string, extra: Record<string, unknown> = {}): string =>
      JSON.stringify({
        format: INDEX_FORMAT,
        runId,
        journal,
        recipe: { name: 'app', file: '/nonexistent/app.yaml' },
        lockKeys: [],
        targets: {},
        pid,
        host: os.hostname(),
        bootId: '',
        startedAt: '2026-12-01T00:00:00.000Z',
        ...extra,
      });
    await writeFile(path.join(journalIndexDir(env()), 'restore-damaged.json'), entry('restore-damaged'));
    await writeFile(path.join(journalIndexDir(env()), 'recover-attempt.json'), entry('recover-attempt', { recovers: 'restore-damaged' }));
    const damaged = await plant('postgres:127.0.0.1:5432/app', { pid, runId: 'restore-damaged', command: 'restore' });
    const attempt = await plant('redis:127.0.0.1:6379', { pid, runId: 'recover-attempt', command: 'recover' });
    const released = await plant('prometheus:/var/lib/prometheus', { pid, runId: 'guide-crashed' });

    const r = await runCli(['recover'], { env: env() });
    expect(r.code, r.stderr).toBe(5);
    expect(r.stderr).toContain(
      `Kept the stale lock on postgres:127.0.0.1:5432/app (left by restore run restore-damaged, pid ${pid}): run restore-damaged began a restore, but its journal ${journal} cannot be read, so what it changed is not known.`,
    );
    expect(r.stderr).toContain(`remove ${damaged} by hand`);
    expect(r.stderr).toContain(
      'run recover-attempt was a recover of run restore-damaged, which is not finished: run `restore-assistant recover --run restore-damaged`',
    );
    expect(r.stdout).toContain('its stale lock is released; 2 stale locks are kept (see above): their runs cannot be read.');
    expect((await readdir(lockDir)).sort()).toEqual([path.basename(damaged), path.basename(attempt)].sort());
    expect(await readdir(lockDir)).not.toContain(path.basename(released));

    const j = await runCli(['recover', '--json'], { env: env() });
    expect(j.code, j.stderr).toBe(5);
    expect(JSON.parse(j.stdout)).toMatchObject({
      unfinished: [],
      releasedLocks: [],
      keptLocks: expect.arrayContaining([
        expect.objectContaining({
          key: 'postgres:127.0.0.1:5432/app',
          runId: 'restore-damaged',
          why: expect.stringContaining('cannot be read'),
        }),
        expect.objectContaining({
          key: 'redis:127.0.0.1:6379',
          runId: 'recover-attempt',
          why: expect.stringContaining('recover --run restore-damaged'),
        }),
      ]),
    });
  });

  it("--run releases only that run's stale locks", async () => {
    const pid = deadPid();
    await plant('postgres:127.0.0.1:5432/app', { pid, runId: 'run-a' });
    const b = await plant('redis:127.0.0.1:6379', { pid, runId: 'run-b' });
    const r = await runCli(['recover', '--run', 'run-a'], { env: env() });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('No unfinished restore on run run-a: nothing to recover; its stale lock is released.');
    expect(await readdir(lockDir)).toEqual([path.basename(b)]);
  });
});
