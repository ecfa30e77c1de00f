import { chmod, chown, link, lstat, mkdir, mkdtemp, readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkDirSafe, createExclusive, makePrivateTempDir, openAppendNoFollow, UnsafeFileError } from '../../source/exec/safe-fs.js';

// Real files, real symlinks. Ownership cases need root (chown to another uid); the suite runs as root.
const isRoot = process.getuid?.() === 0;
const OTHER_UID = 65534;

let dir: string;
let victim: string;
const VICTIM_BYTES = 'victim: do not touch\n';

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'safe-fs-'));
  victim = path.join(dir, 'victim.txt');
  await writeFile(victim, VICTIM_BYTES, { mode: 0o644 });
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('createExclusive', () => {
  it('creates a new file with exactly the mode asked for, even under a restrictive umask', async () => {
    const file = path.join(dir, 'new.bin');
    const old = process.umask(0o077);
    try {
      const h = await createExclusive(file, 0o640);
      await h.writeFile('data');
      await h.close();
    } finally {
      process.umask(old);
    }
    expect(await readFile(file, 'utf8')).toBe('data');
    expect((await stat(file)).mode & 0o7777).toBe(0o640);
  });

  it('refuses a planted symlink (to an existing file and a dangling one) and leaves the victim intact', async () => {
    const planted = path.join(dir, 'planted');
    await symlink(victim, planted);
    await expect(createExclusive(planted, 0o600)).rejects.toMatchObject({ code: 'EEXIST' });
    const dangling = path.join(dir, 'dangling');
    const target = path.join(dir, 'would-be-created');
    await symlink(target, dangling);
    await expect(createExclusive(dangling, 0o600)).rejects.toMatchObject({ code: 'EEXIST' });
    expect(await readFile(victim, 'utf8')).toBe(VICTIM_BYTES);
    await expect(lstat(target)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('refuses an existing regular file', async () => {
    await expect(createExclusive(victim, 0o600)).rejects.toMatchObject({ code: 'EEXIST' });
    expect(await readFile(victim, 'utf8')).toBe(VICTIM_BYTES);
  });
});

describe('openAppendNoFollow', () => {
  it('appends to our own regular file and creates it when asked', async () => {
    const file = path.join(dir, 'log.jsonl');
    let h = await openAppendNoFollow(file, { create: true, mode: 0o600 });
    await h.write('a\n');
    await h.close();
    h = await openAppendNoFollow(file);
    await h.write('b\n');
    await h.close();
    expect(await readFile(file, 'utf8')).toBe('a\nb\n');
  });

  it('refuses a symlink at the name (victim unchanged)', async () => {
    const planted = path.join(dir, 'history.jsonl');
    await symlink(victim, planted);
    await expect(openAppendNoFollow(planted, { create: true })).rejects.toBeInstanceOf(UnsafeFileError);
    expect(await readFile(victim, 'utf8')).toBe(VICTIM_BYTES);
  });

  it('refuses a hard link to another file, and a directory', async () => {
    const hard = path.join(dir, 'hard');
    await link(victim, hard);
    await expect(openAppendNoFollow(hard)).rejects.toThrow(/hard links/);
    expect(await readFile(victim, 'utf8')).toBe(VICTIM_BYTES);
    const sub = path.join(dir, 'sub');
    await mkdir(sub);
    await expect(openAppendNoFollow(sub)).rejects.toBeDefined();
  });

  it.runIf(isRoot)('refuses a file someone else owns', async () => {
    const theirs = path.join(dir, 'theirs');
    await writeFile(theirs, 'x');
    await chown(theirs, OTHER_UID, OTHER_UID);
    await expect(openAppendNoFollow(theirs)).rejects.toThrow(/owned by uid 65534/);
    expect(await readFile(theirs, 'utf8')).toBe('x');
  });
});

describe('makePrivateTempDir', () => {
  it('creates a fresh 0700 directory we own inside the parent, whatever the umask', async () => {
    const old = process.umask(0);
    let made: string;
    try {
      made = await makePrivateTempDir(dir, '.restore-tmp-');
    } finally {
      process.umask(old);
    }
    const st = await lstat(made);
    expect(path.dirname(made)).toBe(dir);
    expect(path.basename(made)).toMatch(/^\.restore-tmp-.{6}$/);
    expect(st.isDirectory()).toBe(true);
    expect(st.mode & 0o7777).toBe(0o700);
    expect(st.uid).toBe(process.getuid?.());
    const again = await makePrivateTempDir(dir, '.restore-tmp-');
    expect(again).not.toBe(made);
  });

  it('never reuses a planted name: mkdtemp creates the directory itself', async () => {
    // A planted symlink at some candidate name is never followed: the created entry is a new directory.
    for (let i = 0; i < 5; i += 1) await symlink(victim, path.join(dir, `.restore-tmp-planted${i}`));
    const made = await makePrivateTempDir(dir, '.restore-tmp-');
    expect((await lstat(made)).isDirectory()).toBe(true);
    expect(await readFile(victim, 'utf8')).toBe(VICTIM_BYTES);
  });

  it('rejects a prefix with a slash', async () => {
    // A name unique to this run: the parent (the system temp dir) is shared with everything else.
    const escape = `ra-escape-${process.pid}-${Date.now()}`;
    await expect(makePrivateTempDir(dir, `../${escape}`)).rejects.toThrow(/prefix/);
    expect((await readdir(path.dirname(dir))).some((e) => e.startsWith(escape))).toBe(false);
  });
});

describe('checkDirSafe', () => {
  it('accepts a 0755 directory we own under the temp dir (sticky, world-writable ancestors are fine)', async () => {
    const d = path.join(dir, 'locks');
    await mkdir(d, { mode: 0o755 });
    await chmod(d, 0o755);
    await chmod(dir, 0o755);
    expect(await checkDirSafe(d)).toBeUndefined();
  });

  it('accepts a directory that does not exist yet under a safe parent', async () => {
    await chmod(dir, 0o755);
    expect(await checkDirSafe(path.join(dir, 'not', 'yet'))).toBeUndefined();
  });

  it('refuses a world-writable directory, even with the sticky bit, with the chmod fix', async () => {
    const d = path.join(dir, 'locks');
    await mkdir(d);
    await chmod(d, 0o1777);
    const problem = await checkDirSafe(d);
    expect(problem?.path).toBe(d);
    expect(problem?.problem).toMatch(/writable by every user.*1777/);
    expect(problem?.fix).toBe(`chmod 0755 ${d}`);
    await chmod(d, 0o775);
    expect((await checkDirSafe(d))?.problem).toMatch(/writable by its group/);
  });

  it.runIf(isRoot)('refuses a directory another user owns, with the chown + chmod fix', async () => {
    const d = path.join(dir, 'restore-assistant');
    await mkdir(d, { mode: 0o755 });
    await chown(d, OTHER_UID, OTHER_UID);
    const problem = await checkDirSafe(d);
    expect(problem?.problem).toMatch(/owned by uid 65534/);
    expect(problem?.fix).toBe(`chown root:root ${d} && chmod 0755 ${d}`);
  });

  it.runIf(isRoot)('resolves a symlinked directory and checks the real one (an attacker-owned target is refused)', async () => {
    const theirs = path.join(dir, 'theirs');
    await mkdir(theirs, { mode: 0o755 });
    await chown(theirs, OTHER_UID, OTHER_UID);
    const link1 = path.join(dir, 'locks');
    await symlink(theirs, link1);
    expect((await checkDirSafe(link1))?.path).toBe(theirs);
  });

  it('refuses a directory under a group- or world-writable, non-sticky ancestor', async () => {
    const parent = path.join(dir, 'open');
    await mkdir(parent);
    await chmod(parent, 0o777);
    const d = path.join(parent, 'locks');
    await mkdir(d, { mode: 0o755 });
    await chmod(d, 0o755);
    const problem = await checkDirSafe(d);
    expect(problem?.path).toBe(parent);
    expect(problem?.fix).toBe(`chmod go-w ${parent}`);
    // Also when the directory does not exist yet.
    expect((await checkDirSafe(path.join(parent, 'missing')))?.path).toBe(parent);
    await chmod(parent, 0o1777);
    expect(await checkDirSafe(d)).toBeUndefined();
  });

  it('refuses a path that is a file', async () => {
    expect((await checkDirSafe(victim))?.problem).toMatch(/not a directory/);
  });
});
