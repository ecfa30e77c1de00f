import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, chown, lstat, mkdir, mkdtemp, open, readdir, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fileIdentity } from '../../source/catalog/identity.js';
import { executeAction, NotVerifiedError, type ActionContext, type VerifiedFile } from '../../source/engine/actions.js';
import type { EngineEventBody } from '../../source/engine/events.js';
import { ArchiveChangedError, safeExtractTarGz } from '../../source/engine/extract.js';
import { acquireLocks, lockFileName } from '../../source/engine/lock.js';
import { RestoreAssistantError } from '../../source/errors.js';
import { createRedactor } from '../../source/exec/redact.js';
import type { PlannedAction } from '../../source/actions/types.js';

/**
 * The restored bytes are the verified bytes, and root never writes through a name someone else
 * planted. Real files, real processes, and the "attacker" really runs as another uid (setpriv).
 */

const isRoot = process.getuid?.() === 0;
const NOBODY = 65534;

let dir: string;
let events: EngineEventBody[];
const VICTIM = 'root-owned victim: must stay byte-identical\n';
let victim: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'verified-bytes-'));
  await chmod(dir, 0o755);
  events = [];
  victim = path.join(dir, 'victim.conf');
  await writeFile(victim, VICTIM);
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function ctx(verifiedFiles: VerifiedFile[]): ActionContext {
  return {
    stepId: 's1',
    emit: (e) => events.push(e),
    redact: createRedactor(),
    env: {},
    signal: new AbortController().signal,
    runCheck: async () => ({ ok: true, attempts: 1, detail: 'ok', durationMs: 1 }),
    progressIntervalMs: 0,
    verifiedFiles,
  };
}

const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

/** What verification records: the digest and identity of the file as it is now. */
async function verified(file: string): Promise<VerifiedFile> {
  return { path: file, verifiedSha256: sha(await readFile(file)), identity: fileIdentity(await stat(file)) };
}

/** Same size, other bytes, a new inode (as `mv` from another file would leave it). */
async function swapSameSize(file: string): Promise<void> {
  const bytes = await readFile(file);
  const other = Buffer.from(bytes);
  other[other.length - 2] = other[other.length - 2]! ^ 0xff;
  await writeFile(`${file}.evil`, other);
  await rename(`${file}.evil`, file);
}

const consumed = (): Array<NonNullable<Extract<EngineEventBody, { type: 'log' }>['consumed']>> =>
  events.flatMap((e) => (e.type === 'log' && e.consumed ? [e.consumed] : []));

const sink = (file: string, input: string): PlannedAction => ({
  type: 'exec',
  argv: [process.execPath, '-e', `process.stdin.pipe(require('fs').createWriteStream(${JSON.stringify(file)}))`],
  purpose: 'sink',
  runsIn: 'host',
  input: { file: input },
});

describe('streamed input (psql, gunzip | psql, docker cp -)', () => {
  it('records the digest of the bytes consumed, equal to the verified one', async () => {
    const dump = path.join(dir, 'dump.sql');
    await writeFile(dump, 'SELECT 1;\n'.repeat(1000));
    const v = await verified(dump);
    await executeAction(sink(path.join(dir, 'out'), dump), ctx([v]));
    expect(await readFile(path.join(dir, 'out'), 'utf8')).toBe('SELECT 1;\n'.repeat(1000));
    expect(consumed()).toEqual([
      { path: dump, how: 'hashed', sha256: v.verifiedSha256, bytes: 10_000, verifiedSha256: v.verifiedSha256, match: true },
    ]);
  });

  it('a file swapped after verification (same size) is refused before the process gets a byte', async () => {
    const dump = path.join(dir, 'dump.sql');
    await writeFile(dump, 'SELECT 1;\n'.repeat(1000));
    const v = await verified(dump);
    await swapSameSize(dump);
    const err = await executeAction(sink(path.join(dir, 'out'), dump), ctx([v])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotVerifiedError);
    expect((err as Error).message).toMatch(/is not the file that was verified: replaced by another file/);
    expect(existsSync(path.join(dir, 'out'))).toBe(false);
  });

  it('bytes that hash differently from the verified digest fail the step (the run rolls back) and are recorded as such', async () => {
    const dump = path.join(dir, 'dump.sql');
    await writeFile(dump, 'SELECT 2;\n');
    // No identity to compare (e.g. recorded on another host): the digest of what was consumed decides.
    const v: VerifiedFile = { path: dump, verifiedSha256: sha('SELECT 1;\n') };
    await expect(executeAction(sink(path.join(dir, 'out'), dump), ctx([v]))).rejects.toThrow(/differ from the verified bytes/);
    expect(consumed()).toMatchObject([{ path: dump, sha256: sha('SELECT 2;\n'), match: false }]);
  });
});

describe('files a command opens itself (pg_restore FILE, docker cp FILE)', () => {
  const reader = (file: string, code = ''): PlannedAction => ({
    type: 'exec',
    argv: [process.execPath, '-e', `require('fs').readFileSync(process.argv[1]); ${code}`, file],
    purpose: 'pg_restore-like',
    runsIn: 'host',
  });

  it('passes and records the verified digest when the identity is unchanged before and after', async () => {
    const dump = path.join(dir, 'app.dump');
    await writeFile(dump, 'PGDMP custom archive bytes');
    const v = await verified(dump);
    await executeAction(reader(dump), ctx([v]));
    expect(consumed()).toEqual([{ path: dump, how: 'identity', sha256: v.verifiedSha256, verifiedSha256: v.verifiedSha256, match: true }]);
  });

  it('refuses before running when the file was swapped, and fails after when it changed during the step', async () => {
    const dump = path.join(dir, 'app.dump');
    await writeFile(dump, 'PGDMP custom archive bytes');
    const v = await verified(dump);
    const canary = path.join(dir, 'ran');
    await swapSameSize(dump);
    await expect(executeAction(reader(dump, `require('fs').writeFileSync(${JSON.stringify(canary)}, 'x')`), ctx([v]))).rejects.toThrow(
      /before the step, it was replaced/,
    );
    expect(existsSync(canary)).toBe(false);

    const dump2 = path.join(dir, 'app2.dump');
    await writeFile(dump2, 'PGDMP custom archive bytes');
    const v2 = await verified(dump2);
    // Written in place while "pg_restore" runs (same inode): ctime moves, which nobody can set back.
    await expect(executeAction(reader(dump2, `require('fs').appendFileSync(process.argv[1], 'tail')`), ctx([v2]))).rejects.toThrow(
      /after the step, it was modified in place/,
    );
  });
});

describe('copy-file (Redis RDB into a data dir the redis account can write)', () => {
  async function attackerDataDir(): Promise<string> {
    const data = path.join(dir, 'redis');
    await mkdir(data, { mode: 0o755 });
    if (isRoot) await chown(data, NOBODY, NOBODY);
    return data;
  }

  it('copies the verified bytes, ignoring symlinks planted at the old partial names; the victim is byte-identical', async () => {
    const data = await attackerDataDir();
    const rdb = path.join(dir, 'backup.rdb');
    await writeFile(rdb, Buffer.from('REDIS0011 fake rdb payload'));
    // The names the previous implementation wrote through (root followed them).
    for (const pid of [process.pid, process.pid + 1]) await symlink(victim, path.join(data, `.dump.rdb.partial-${pid}`));
    const to = path.join(data, 'dump.rdb');
    const v = await verified(rdb);
    await executeAction({ type: 'copy-file', from: rdb, to, purpose: 'copy' }, ctx([v]));
    expect(await readFile(to)).toEqual(await readFile(rdb));
    expect((await lstat(to)).isFile()).toBe(true);
    expect(await readFile(victim, 'utf8')).toBe(VICTIM);
    expect(consumed()).toMatchObject([{ path: rdb, how: 'hashed', match: true }]);
    // Nothing left behind: no staging dir beside the data dir or in it.
    expect((await readdir(data)).filter((n) => n.includes('restore-'))).toEqual([]);
    expect((await readdir(dir)).filter((n) => n.includes('restore-'))).toEqual([]);
  });

  it('never follows or replaces a symlink planted at the target name', async () => {
    const data = await attackerDataDir();
    const rdb = path.join(dir, 'backup.rdb');
    await writeFile(rdb, 'REDIS0011 payload');
    const to = path.join(data, 'dump.rdb');
    await symlink(victim, to);
    await expect(executeAction({ type: 'copy-file', from: rdb, to, purpose: 'copy' }, ctx([await verified(rdb)]))).rejects.toThrow(
      /already exists/,
    );
    expect(await readFile(victim, 'utf8')).toBe(VICTIM);
  });

  it('an RDB swapped after verification (same size) is not put in place', async () => {
    const data = await attackerDataDir();
    const rdb = path.join(dir, 'backup.rdb');
    await writeFile(rdb, 'REDIS0011 payload');
    const v = await verified(rdb);
    await swapSameSize(rdb);
    const to = path.join(data, 'dump.rdb');
    await expect(executeAction({ type: 'copy-file', from: rdb, to, purpose: 'copy' }, ctx([v]))).rejects.toBeInstanceOf(NotVerifiedError);
    expect(existsSync(to)).toBe(false);
    // And with only a digest to go by: hashed while copying, refused before the link into place.
    await expect(
      executeAction({ type: 'copy-file', from: rdb, to, purpose: 'copy' }, ctx([{ path: rdb, verifiedSha256: v.verifiedSha256! }])),
    ).rejects.toThrow(/differ from the verified bytes/);
    expect(existsSync(to)).toBe(false);
  });
});

describe('tar extraction (Prometheus data dir whose parent the prometheus account owns)', () => {
  async function archiveOf(files: Record<string, string>): Promise<string> {
    const src = await mkdtemp(path.join(dir, 'src-'));
    for (const [name, body] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(src, name)), { recursive: true });
      await writeFile(path.join(src, name), body);
    }
    const archive = path.join(dir, `prom-${path.basename(src)}.tar.gz`);
    execFileSync('tar', ['czf', archive, '-C', src, '.'], { stdio: 'ignore' });
    return archive;
  }

  it.runIf(isRoot)('stages where only root can write: the account cannot swap the staging dir for a symlink', async () => {
    const parent = path.join(dir, 'prometheus');
    await mkdir(parent, { mode: 0o755 });
    await chown(parent, NOBODY, NOBODY);
    const elsewhere = path.join(dir, 'etc');
    await mkdir(elsewhere);
    await writeFile(path.join(elsewhere, 'passwd'), VICTIM);
    const archive = await archiveOf({ passwd: 'attacker bytes', 'wal/00000000': 'w' });
    const dest = path.join(parent, 'data');
    const fh = await open(archive, 'r');
    let attack: ReturnType<typeof spawnSync> | undefined;
    let staged = '';
    try {
      await safeExtractTarGz(archive, fh, dest, {
        onStaging: (staging) => {
          // The attacker (uid 65534, owner of the parent) moves the staging dir away and puts a symlink there.
          staged = staging;
          attack = spawnSync('setpriv', [
            '--reuid',
            String(NOBODY),
            '--regid',
            String(NOBODY),
            '--clear-groups',
            'sh',
            '-c',
            'mv -- "$1" "$1.moved" && ln -s -- "$2" "$1"',
            'sh',
            staging,
            elsewhere,
          ]);
        },
      });
    } finally {
      await fh.close();
    }
    expect(await readFile(path.join(elsewhere, 'passwd'), 'utf8')).toBe(VICTIM);
    expect(attack?.status).not.toBe(0);
    expect(path.dirname(staged)).not.toBe(parent);
    expect(await readFile(path.join(dest, 'passwd'), 'utf8')).toBe('attacker bytes');
    expect((await stat(dest)).mode & 0o777).toBe(0o755);
  });

  it('bytes that are not the verified ones are not put in place, and the staging dir is removed', async () => {
    const archive = await archiveOf({ 'chunks_head/000001': 'c' });
    const dest = path.join(dir, 'data');
    const fh = await open(archive, 'r');
    try {
      const err = await safeExtractTarGz(archive, fh, dest, { expectedSha256: '0'.repeat(64) }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ArchiveChangedError);
    } finally {
      await fh.close();
    }
    expect(existsSync(dest)).toBe(false);
    expect((await readdir(dir)).filter((n) => n.includes('extract-'))).toEqual([]);
  });

  it('extract-tar refuses an archive swapped after verification', async () => {
    const archive = await archiveOf({ a: '1' });
    const v = await verified(archive);
    const other = await archiveOf({ b: '2' });
    await rename(other, archive);
    await expect(executeAction({ type: 'extract-tar', archive, dest: path.join(dir, 'data'), purpose: 'x' }, ctx([v]))).rejects.toThrow(
      /is not the file that was verified/,
    );
    expect(existsSync(path.join(dir, 'data'))).toBe(false);
  });
});

describe('lock directory', () => {
  it.runIf(isRoot)('a lock dir another user created (as anyone can in the 1777 /run/lock) is refused with the fix (exit 9)', async () => {
    const lockDir = path.join(dir, 'restore-assistant');
    await mkdir(lockDir, { mode: 0o755 });
    await chown(lockDir, NOBODY, NOBODY);
    const err = await acquireLocks(['redis:127.0.0.1:6379'], { dir: lockDir, runId: 'r1' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RestoreAssistantError);
    expect((err as RestoreAssistantError).exitCode).toBe(9);
    expect((err as RestoreAssistantError).message).toMatch(/not safe to use: .*owned by uid 65534/);
    expect((err as RestoreAssistantError).next).toContain(`chown root:root ${lockDir} && chmod 0755 ${lockDir}`);
    expect(await readdir(lockDir)).toEqual([]);
  });

  // Issue 11: the machine-wide lock dir is root's with mode 1777 (every operator takes locks; the
  // sticky bit keeps each lock its taker's). Writable without the sticky bit, or sticky but owned
  // by someone else (who could then delete every lock), is still refused.
  it('a world-writable lock dir is refused without the sticky bit, and with it unless root owns it', async () => {
    const lockDir = path.join(dir, 'locks');
    await mkdir(lockDir);
    await chmod(lockDir, 0o777);
    await expect(acquireLocks(['k'], { dir: lockDir, runId: 'r1' })).rejects.toThrow(/writable by every user without the sticky bit/);
    if (isRoot) {
      await chmod(lockDir, 0o1777);
      await chown(lockDir, NOBODY, NOBODY);
      await expect(acquireLocks(['k'], { dir: lockDir, runId: 'r1' })).rejects.toThrow(/owned by uid 65534/);
    }
    expect(await readdir(lockDir)).toEqual([]);
  });

  it('a symlink planted at a lock name is never written through: the victim stays byte-identical', async () => {
    const lockDir = path.join(dir, 'locks');
    await mkdir(lockDir, { mode: 0o755 });
    await symlink(victim, path.join(lockDir, lockFileName('redis:127.0.0.1:6379')));
    await expect(acquireLocks(['redis:127.0.0.1:6379'], { dir: lockDir, runId: 'r1' })).rejects.toMatchObject({ exitCode: 8 });
    expect(await readFile(victim, 'utf8')).toBe(VICTIM);
  });
});
