import { mkdtemp, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseManifest } from '../../source/catalog/layouts/physical.js';
import { parseTarget, recoveryTarget, targetProblem } from '../../source/pitr/target.js';
import { formatLsn, parseLabelTime, parseLsn, parseSegmentName, scanArchive, segmentName, segNoOf, walRun } from '../../source/pitr/wal.js';
import type { PitrBase } from '../../source/pitr/window.js';

describe('WAL names and LSNs', () => {
  it('maps LSNs to segment names for 16 MiB and 1 MiB segments, and back', () => {
    const lsn = parseLsn('0/3000028')!;
    expect(formatLsn(lsn)).toBe('0/3000028');
    expect(segmentName(1, segNoOf(lsn, 16 << 20), 16 << 20)).toBe('000000010000000000000003');
    expect(segmentName(1, segNoOf(parseLsn('1/FF000000')!, 16 << 20), 16 << 20)).toBe('0000000100000001000000FF');
    expect(segmentName(2, segNoOf(parseLsn('0/A00070')!, 1 << 20), 1 << 20)).toBe('00000002000000000000000A');
    expect(parseSegmentName('0000000100000001000000FF', 16 << 20)).toEqual({ timeline: 1, segNo: 511n });
    // 0x100 is out of range for 16 MiB segments (256 per xlog id).
    expect(parseSegmentName('000000010000000000000100', 16 << 20)).toBeUndefined();
    expect(parseLsn('0/3000028; rm -rf /')).toBeUndefined();
  });

  it('reads label times only with their zone', () => {
    expect(parseLabelTime('2026-12-01 13:08:46 UTC')).toBe('2026-12-01T13:08:46.000Z');
    expect(parseLabelTime('2026-12-01 13:08:46')).toBeUndefined();
  });
});

describe('the archive directory (hostile names)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'ra-pitr-unit-'));
    const seg = Buffer.alloc(64);
    for (const n of ['000000010000000000000003', '000000010000000000000004', '000000010000000000000006.gz'])
      await writeFile(path.join(dir, n), seg);
    await writeFile(path.join(dir, '000000010000000000000003.00000028.backup'), 'START TIME: 2026-12-01 13:08:46 UTC\n');
    await writeFile(path.join(dir, "x'; touch pwned; '"), 'x');
    await writeFile(path.join(dir, '00000001000000000000000\u001b[2J'), 'x');
    await symlink('/etc/passwd', path.join(dir, '000000010000000000000005'));
    await mkdir(path.join(dir, '000000010000000000000007'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('uses only regular files named exactly like WAL, and the first gap ends the run', async () => {
    const a = await scanArchive(dir);
    expect([...a.segments.keys()]).toEqual(['000000010000000000000003', '000000010000000000000004', '000000010000000000000006']);
    expect(a.backupFiles.size).toBe(1);
    expect(a.warnings.join('\n')).toContain('000000010000000000000005 is a symbolic link');
    expect(a.warnings.join('\n')).toContain('000000010000000000000007 is not a regular file');
    expect(a.warnings.join('\n')).toContain('not WAL (ignored)');
    expect(a.warnings.join('\n')).not.toContain('\u001b');
    const run = walRun(a, 1, 3n, 16 << 20);
    expect(run.segments.map((s) => s.name)).toEqual(['000000010000000000000003', '000000010000000000000004']);
    expect(run.gap).toEqual({ missing: '000000010000000000000005', nextPresent: '000000010000000000000006' });
  });
});

describe('backup_manifest', () => {
  it('takes the fields it needs and refuses what is not a manifest', () => {
    const m = parseManifest(
      JSON.stringify({
        'PostgreSQL-Backup-Manifest-Version': 1,
        Files: [
          { Path: 'PG_VERSION', Size: 3 },
          { Path: 'global/pg_control', Size: 8192 },
        ],
        'WAL-Ranges': [{ Timeline: 1, 'Start-LSN': '0/700028', 'End-LSN': '0/700100' }],
      }),
    );
    expect(m).toMatchObject({ files: 2, bytes: 8195, timeline: 1, startLsn: '0/700028', endLsn: '0/700100' });
    expect(parseManifest('{"PostgreSQL-Backup-Manifest-Version": 1, "Files": [{"Size": -1}]}')).toBe('lists a file without a valid Size');
    expect(parseManifest('not json')).toBe('is not JSON');
    const bad = parseManifest(
      JSON.stringify({ 'PostgreSQL-Backup-Manifest-Version': 1, Files: [], 'WAL-Ranges': [{ Timeline: 1, 'Start-LSN': '$(reboot)' }] }),
    );
    expect(bad).toMatchObject({ files: 0 });
    expect((bad as { startLsn?: string }).startLsn).toBeUndefined();
  });
});

describe('--to', () => {
  const base = {
    set: { id: 'b1' },
    problems: [],
    window: { from: '2026-12-01T03:00:01.000Z', to: '2026-12-01T03:20:00.500Z', lastSegment: 'x', rpo: '' },
  } as unknown as PitrBase;

  it('needs a zone, and lands inside the window or says why not', () => {
    expect(parseTarget(undefined)).toEqual({ kind: 'latest' });
    expect(parseTarget('immediate')).toEqual({ kind: 'immediate' });
    expect(parseTarget('2026-12-01 03:12:00Z')).toEqual({ kind: 'time', time: '2026-12-01T03:12:00.000Z' });
    expect(parseTarget('2026-12-01T05:12:00+02:00')).toEqual({ kind: 'time', time: '2026-12-01T03:12:00.000Z' });
    expect(() => parseTarget('2026-12-01 03:12:00')).toThrow(/without a zone is refused/);
    expect(targetProblem(base, parseTarget('2026-12-01 03:12:00Z'))).toBeUndefined();
    expect(targetProblem(base, parseTarget('2026-12-01 02:59:00Z'))?.code).toBe('pitr-target-before-window');
    expect(targetProblem(base, parseTarget('2026-12-01 03:21:00Z'))?.code).toBe('pitr-target-after-window');
    expect(recoveryTarget(base, parseTarget('2026-12-01 03:12:00Z'))).toEqual({ kind: 'time', time: '2026-12-01T03:12:00.000Z' });
    expect(recoveryTarget(base, parseTarget('2026-12-01T03:20:00.500Z'))).toEqual({ kind: 'end' });
  });
});

describe('restore_command (run by PostgreSQL through /bin/sh)', () => {
  /** What PostgreSQL does with it: %f, %p put in, %% -> %. */
  const substitute = (cmd: string, f: string, p: string): string =>
    cmd.replace(/%(.)/g, (_m, c: string) => (c === 'f' ? f : c === 'p' ? p : c === '%' ? '%' : `%${c}`));

  it('copies or gunzips one segment from a hostile archive path, and refuses names and symlinks', async () => {
    const { execFileSync } = await import('node:child_process');
    const { existsSync, readFileSync } = await import('node:fs');
    const { gzipSync } = await import('node:zlib');
    const { restoreCommand } = await import('../../source/pitr/plan.js');
    const top = await mkdtemp(path.join(tmpdir(), 'ra-pitr-rc-'));
    try {
      const archive = path.join(top, "a b'$(touch pwned)%f;`id`");
      await mkdir(archive);
      await writeFile(path.join(archive, '000000010000000000000003'), 'plain');
      await writeFile(path.join(archive, '000000010000000000000004.gz'), gzipSync('compressed'));
      await symlink('/etc/hostname', path.join(archive, '000000010000000000000005'));
      const cmd = restoreCommand(archive);
      const sh = (f: string): number => {
        try {
          execFileSync('/bin/sh', ['-c', substitute(cmd, f, 'pg_wal/RECOVERYXLOG')], { cwd: top, stdio: 'ignore' });
          return 0;
        } catch (error) {
          return (error as { status?: number }).status ?? -1;
        }
      };
      await mkdir(path.join(top, 'pg_wal'));
      expect(sh('000000010000000000000003')).toBe(0);
      expect(readFileSync(path.join(top, 'pg_wal', 'RECOVERYXLOG'), 'utf8')).toBe('plain');
      expect(sh('000000010000000000000004')).toBe(0);
      expect(readFileSync(path.join(top, 'pg_wal', 'RECOVERYXLOG'), 'utf8')).toBe('compressed');
      expect(sh('000000010000000000000005')).not.toBe(0);
      expect(sh('00000002.history')).not.toBe(0);
      expect(sh('../../etc/passwd')).not.toBe(0);
      expect(existsSync(path.join(top, 'pwned'))).toBe(false);
    } finally {
      await rm(top, { recursive: true, force: true });
    }
  });
});
