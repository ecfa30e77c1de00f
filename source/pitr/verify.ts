import { open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { BackupSet, ComponentVerification, VerifyProblem, VerifyReport } from '../catalog/types.js';
import { verifyBackupSet } from '../catalog/verify.js';
import { safeExtractTarGz } from '../engine/extract.js';
import { run } from '../exec/run.js';
import { createRedactor, type Redactor } from '../exec/redact.js';
import { makePrivateTempDir } from '../exec/safe-fs.js';
import { sanitizeText } from '../text/sanitize.js';
import { recoveryTarget, targetProblem, targetText, type PitrTarget } from './target.js';
import { tablespaceRefusal } from './tablespaces.js';
import { dumpSegments, readThrough } from './waldump.js';
import { parseSegmentHeader, readSegmentHead, segmentName, segNoOf, timelineOf } from './wal.js';
import { walTool, type PitrBase } from './window.js';

/**
 * Verification of a base backup and the WAL it needs, before anything destructive:
 * - the base tar hashed (the engine extracts only those bytes) and, deep, extracted safely into a
 *   private temp dir and checked with `pg_verifybackup -n -m backup_manifest` (every file's size and
 *   checksum against the manifest; the WAL is checked by us, as the archive may hold .gz segments);
 * - every segment from the base's start to the target present, with a WAL page header naming that
 *   segment's own address and timeline, and (deep) read through record by record with pg_waldump.
 */

export interface PitrVerifyOptions {
  depth: 'quick' | 'deep';
  target: PitrTarget;
  binDir?: string;
  redact?: Redactor;
  signal?: AbortSignal;
  /** Where the deep check extracts the base (default: the system temp dir). */
  tmpParent?: string;
}

export interface PitrVerifyResult {
  report: VerifyReport;
  /** Segments checked, and their bytes on disk. */
  segments: number;
  walBytes: number;
  /** PG_VERSION of the base (deep). */
  pgVersion?: string;
}

export async function verifyPitr(base: PitrBase, opts: PitrVerifyOptions): Promise<PitrVerifyResult> {
  const redact = opts.redact ?? createRedactor();
  const t0 = performance.now();
  const startedAt = new Date();
  const set: BackupSet = base.set;
  const generic = await verifyBackupSet(set, { depth: opts.depth, expect: ['postgres'], ...(opts.signal ? { signal: opts.signal } : {}) });
  const problems: VerifyProblem[] = [...generic.problems];
  const component: ComponentVerification = generic.components[0] ?? {
    kind: 'postgres',
    path: set.components[0]?.path ?? set.location,
    checks: [],
    ok: false,
  };
  const checks = component.checks;
  const check = (name: string, ok: boolean, started: number, detail?: string): void => {
    checks.push({ name, ok, durationMs: Math.round(performance.now() - started), ...(detail ? { detail } : {}) });
  };
  const problem = (code: string, message: string): void => {
    problems.push({ component: 'postgres', code, message });
  };
  for (const p of base.problems) if (p.code !== 'pitr-wal-gap') problem(p.code, p.message);
  const tp = targetProblem(base, opts.target);
  if (tp) problem(tp.code, tp.message);
  let pgVersion: string | undefined;
  const manifest = typeof set.metadata['manifest'] === 'string' ? set.metadata['manifest'] : undefined;
  const ts = tablespaceRefusal(set);
  if (ts) problem('pitr-tablespaces', `${ts.what}: ${ts.why}. Next: ${ts.next}`);
  if (!manifest) problem('pitr-no-manifest', `base ${sanitizeText(set.id, 80)} has no backup_manifest: pg_verifybackup cannot check it`);

  // ---- the base: pg_verifybackup against the manifest ----
  // (With tablespaces pg_verifybackup would only report their files missing from base.tar: not run.)
  if (opts.depth === 'deep' && manifest && generic.ok && !ts) {
    const started = performance.now();
    const tool = await walTool('pg_verifybackup', base.walMajor, opts.binDir);
    if (!tool)
      problem('tool-missing', 'pg_verifybackup not found (install the PostgreSQL server package, or set components.postgres.cluster.bin)');
    else {
      const parent = await makePrivateTempDir(opts.tmpParent ?? tmpdir(), 'ra-verify-base-');
      const dest = path.join(parent, 'data');
      try {
        const fh = await open(component.path, 'r');
        try {
          await safeExtractTarGz(component.path, fh, dest, {
            ...(component.sha256 ? { expectedSha256: component.sha256 } : {}),
            ...(opts.signal ? { signal: opts.signal } : {}),
          });
        } finally {
          await fh.close();
        }
        pgVersion = (await readFile(path.join(dest, 'PG_VERSION'), 'utf8').catch(() => '')).trim().slice(0, 8) || undefined;
        const r = await run([tool, '--no-parse-wal', `--manifest-path=${manifest}`, dest], {
          redact,
          timeoutMs: 60 * 60_000,
          ...(opts.signal ? { signal: opts.signal } : {}),
        });
        const detail = (r.stdoutTail.at(-1) ?? r.stderrTail.at(-1) ?? '').slice(0, 300);
        check('pg_verifybackup', r.ok, started, detail);
        if (!r.ok)
          problem(
            'pg-verifybackup-failed',
            `pg_verifybackup rejected base ${sanitizeText(set.id, 80)}: ${sanitizeText(r.stderrTail.slice(-3).join(' | '), 400)}`,
          );
      } catch (error) {
        check('pg_verifybackup', false, started, (error as Error).message);
        problem(
          'pitr-base-unreadable',
          `base ${sanitizeText(set.id, 80)} could not be extracted for checking: ${sanitizeText((error as Error).message, 300)}`,
        );
      } finally {
        await rm(parent, { recursive: true, force: true });
      }
    }
  }

  // ---- the WAL: present, headers, read through ----
  let segmentsChecked = 0;
  let walBytes = 0;
  if (base.run && base.segSize && base.window) {
    const segSize = base.segSize;
    const started = performance.now();
    const segs = base.run.segments;
    const firstNo = segNoOf(base.startLsn, segSize);
    let bad = false;
    for (let i = 0; i < segs.length; i++) {
      const seg = segs[i]!;
      const header = parseSegmentHeader(await readSegmentHead(seg).catch(() => Buffer.alloc(0)));
      const expectAddr = (firstNo + BigInt(i)) * BigInt(segSize);
      if (!header || header.pageAddr !== expectAddr || header.segSize !== segSize || (base.systemId && header.systemId !== base.systemId)) {
        problem(
          'pitr-wal-damaged',
          `archived segment ${seg.name}${seg.gz ? '.gz' : ''} is not that segment (${header ? `its header says address ${header.pageAddr.toString(16)}, system ${header.systemId}` : 'no valid WAL page header'}): the window ends before it`,
        );
        bad = true;
        break;
      }
      segmentsChecked++;
      walBytes += seg.size;
    }
    check(
      'WAL present and in sequence',
      !bad,
      started,
      `${segmentsChecked} segment${segmentsChecked === 1 ? '' : 's'} ${base.run.first} to ${base.run.last ?? base.run.first}`,
    );
    if (opts.depth === 'deep' && !bad) {
      const t1 = performance.now();
      const tool = await walTool('pg_waldump', base.walMajor, opts.binDir);
      if (!tool)
        problem('tool-missing', 'pg_waldump not found (install the PostgreSQL server package, or set components.postgres.cluster.bin)');
      else {
        // pg_waldump reads one timeline: each timeline's stretch of the path is read on its own.
        const groups: Array<{ tli: number; from: number; to: number }> = [];
        segs.forEach((s, i) => {
          const tli = timelineOf(s.name);
          const g = groups.at(-1);
          if (g && g.tli === tli) g.to = i;
          else groups.push({ tli, from: i, to: i });
        });
        let commits = 0;
        let lastCommit: string | undefined;
        let ok = true;
        let r: Awaited<ReturnType<typeof dumpSegments>> | undefined;
        let groupTli = base.timeline;
        for (const g of groups) {
          groupTli = g.tli;
          const segStart = (firstNo + BigInt(g.from)) * BigInt(segSize);
          r = await dumpSegments(tool, segs.slice(g.from, g.to + 1), {
            timeline: g.tli,
            start: g.from === 0 ? base.startLsn : segStart,
            // The end of the group's last staged segment: pg_waldump stops there instead of looking
            // for the segment after it (it retries a missing file for 5 s before it gives up).
            end: (firstNo + BigInt(g.to) + 1n) * BigInt(segSize),
            redact,
            ...(opts.signal ? { signal: opts.signal } : {}),
            ...(opts.tmpParent ? { tmpParent: opts.tmpParent } : {}),
          });
          commits += r.commits;
          if (r.lastCommit) lastCommit = r.lastCommit;
          ok = readThrough(r, firstNo + BigInt(g.to), segSize);
          if (!ok) break;
        }
        check(
          'WAL read through (pg_waldump)',
          ok,
          t1,
          `${commits} commits${lastCommit ? `, last ${lastCommit}` : ''}${groups.length > 1 ? `, timelines ${groups.map((g) => g.tli).join(' → ')}` : ''}`,
        );
        if (!ok && r) {
          const at = r.stoppedAt !== undefined ? segmentName(groupTli, segNoOf(r.stoppedAt, segSize), segSize) : 'an unknown segment';
          problem(
            'pitr-wal-damaged',
            `pg_waldump stopped in ${at} before the end of the archived WAL: ${sanitizeText(r.error ?? 'no reason given', 300)}`,
          );
        }
      }
    }
  }
  const target = recoveryTarget(base, opts.target);
  component.facts = {
    ...(component.facts ?? {}),
    pitrTarget: targetText(opts.target),
    recoveryTarget: target.kind === 'time' ? target.time : target.kind,
    walSegments: segmentsChecked,
    walBytes,
    ...(base.window ? { windowFrom: base.window.from, windowTo: base.window.to } : {}),
    ...(pgVersion ? { pgVersion } : {}),
  };
  component.ok = component.checks.every((c) => c.ok) && !problems.some((p) => p.component === 'postgres');
  const report: VerifyReport = {
    setId: set.id,
    ok: problems.length === 0,
    depth: opts.depth,
    components: [component],
    problems,
    warnings: [...(generic.warnings ?? []), ...base.notes],
    startedAt: startedAt.toISOString(),
    durationMs: Math.round(performance.now() - t0),
  };
  return { report, segments: segmentsChecked, walBytes, ...(pgVersion ? { pgVersion } : {}) };
}
