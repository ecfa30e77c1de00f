import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fsCause, isDecompressionDamage, postgresSessionEnd } from '../../source/exec/diagnose.js';
import { safeExtractTarGz } from '../../source/engine/extract.js';

describe('postgresSessionEnd', () => {
  it('names a terminated session and a lost server, not the dump', () => {
    expect(
      postgresSessionEnd([
        'psql:<stdin>:42: FATAL:  terminating connection due to administrator command',
        'server closed the connection unexpectedly',
      ]),
    ).toMatch(/pg_terminate_backend.*not at fault/);
    expect(
      postgresSessionEnd([
        'psql:<stdin>:9: server closed the connection unexpectedly',
        '\tThis probably means the server terminated abnormally',
        'connection to server was lost',
      ]),
    ).toMatch(/server stopped, crashed or restarted/);
    expect(postgresSessionEnd(['ERROR:  could not extend file "base/16384/16385": No space left on device'])).toMatch(/disk is full/);
    expect(postgresSessionEnd(['ERROR:  syntax error at or near "x"'])).toBeUndefined();
  });

  it('tells zlib damage from a reader that died', () => {
    const z = Object.assign(new Error('unexpected end of file'), { code: 'Z_BUF_ERROR' });
    expect(isDecompressionDamage(z)).toBe(true);
    expect(isDecompressionDamage(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }))).toBe(false);
    expect(isDecompressionDamage(Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }))).toBe(false);
  });

  it('names ENOSPC and EROFS', () => {
    expect(fsCause(Object.assign(new Error('x'), { code: 'ENOSPC' }), '/data')).toMatch(/full \(ENOSPC/);
    expect(fsCause(Object.assign(new Error('x'), { code: 'EROFS' }), '/ev')).toMatch(/read-only file system \(EROFS\)/);
    expect(fsCause(Object.assign(new Error('x'), { code: 'ENOTEMPTY' }), '/ev')).toBeUndefined();
  });
});

/** A real full file system: a 2 MiB tmpfs (the tool runs as root; so do these tests). */
describe('extraction onto a full disk', () => {
  let base: string;
  let mnt: string;
  beforeAll(async () => {
    base = await mkdtemp(path.join(os.tmpdir(), 'ra-enospc-'));
    mnt = path.join(base, 'mnt');
    await mkdir(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m,mode=0755', 'tmpfs', mnt]);
  });
  afterAll(async () => {
    if (mnt) execFileSync('umount', [mnt]);
    if (base) await rm(base, { recursive: true, force: true });
  });

  it('is reported as ENOSPC (not ENOTEMPTY) and its temp dir is removed', async () => {
    const src = path.join(base, 'src');
    await mkdir(path.join(src, 'chunks'), { recursive: true });
    for (let i = 0; i < 6; i++) await writeFile(path.join(src, 'chunks', `c${i}`), randomBytes(1024 * 1024));
    const archive = path.join(base, 'prom.tar.gz');
    execFileSync('tar', ['-czf', archive, '-C', src, '.']);
    const fh = await open(archive, 'r');
    try {
      await expect(safeExtractTarGz(archive, fh, path.join(mnt, 'data'))).rejects.toThrow(/full \(ENOSPC[^]*was removed/);
    } finally {
      await fh.close();
    }
    expect(readdirSync(mnt)).toEqual([]);
  });
});

describe('evidence dir writability (found before any slow step)', () => {
  let base: string;
  const mounts: string[] = [];
  beforeAll(async () => {
    base = await mkdtemp(path.join(os.tmpdir(), 'ra-evw-'));
  });
  afterAll(async () => {
    for (const m of mounts) execFileSync('umount', [m]);
    if (base) await rm(base, { recursive: true, force: true });
  });

  it('a read-only file system is EROFS, and a full one ENOSPC, with no probe file left', async () => {
    const { checkEvidenceWritable } = await import('../../source/evidence/writer.js');
    const ro = path.join(base, 'ro');
    await mkdir(ro);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,ro', 'tmpfs', ro]);
    mounts.push(ro);
    expect(() => checkEvidenceWritable(ro)).toThrow(/read-only file system \(EROFS\)/);
    expect(() => checkEvidenceWritable(path.join(ro, 'runs'))).toThrow(/EROFS/);

    const full = path.join(base, 'full');
    await mkdir(full);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', full]);
    mounts.push(full);
    try {
      execFileSync('dd', ['if=/dev/zero', `of=${path.join(full, 'fill')}`, 'bs=4k', 'count=1000'], { stdio: 'ignore' });
    } catch {
      // dd stops with ENOSPC: the disk is full, as intended
    }
    expect(() => checkEvidenceWritable(full)).toThrow(/full \(ENOSPC/);
    expect(readdirSync(full)).toEqual(['fill']);
    await rm(path.join(full, 'fill'));
    expect(() => checkEvidenceWritable(full)).not.toThrow();
    expect(readdirSync(full)).toEqual([]);
  });
});
