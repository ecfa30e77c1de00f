import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliBin, runCli, type CliResult } from '../support/cli.js';
import { recordPastRun } from '../support/recorded-runs.js';

/**
 * `history` on the real CLI: the table at 80 and 160 columns (nothing wraps, nothing is cut), the
 * RTO trend, opening a run with the printed command, and a user who cannot read the evidence
 * (told so, with the fix; never "No runs recorded").
 */

const isRoot = process.getuid?.() === 0;

describe('history: layout, trend, opening a run, unreadable evidence', () => {
  let base: string;
  let evidence: string;
  const day = 86_400_000;
  const now = Date.now();
  const cli = (args: string[], env: Record<string, string> = {}): Promise<CliResult> =>
    runCli(args, { env: { RESTORE_ASSISTANT_EVIDENCE_DIR: evidence, XDG_STATE_HOME: join(base, 'state'), ...env } });

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'ra-history-it-'));
    evidence = join(base, 'evidence');
    mkdirSync(evidence, { recursive: true });
    const common = { evidenceDir: evidence, recipe: 'story-portal-production', host: 'db1', intervalDays: 30, rtoMinutes: 30 };
    await recordPastRun({
      ...common,
      kind: 'drill',
      startedAt: new Date(now - 9 * day),
      durationMs: 60_000,
      outcome: 'restored',
      exitCode: 0,
      rtoMs: 60_000,
    });
    await recordPastRun({
      ...common,
      kind: 'drill',
      startedAt: new Date(now - 5 * day),
      durationMs: 90_000,
      outcome: 'restored',
      exitCode: 0,
      rtoMs: 90_000,
    });
    await recordPastRun({
      ...common,
      kind: 'restore',
      startedAt: new Date(now - 2 * day),
      durationMs: 40 * 60_000,
      outcome: 'rollback-incomplete',
      exitCode: 5,
    });
  }, 120_000);

  afterAll(() => {
    if (base) rmSync(base, { recursive: true, force: true });
  });

  it('fits 80 and 160 columns without cutting the result, shows the RTO trend, and the printed command opens a run', async () => {
    for (const columns of [80, 160]) {
      const r = await cli(['history'], { COLUMNS: String(columns) });
      expect(r.code, r.stderr).toBe(0);
      const lines = r.stdout.trimEnd().split('\n');
      for (const l of lines) expect(l.length, `${columns} columns: ${l}`).toBeLessThanOrEqual(columns);
      // The header is one line: the RPO column's title is on it, not wrapped to the next.
      expect(lines[0]).toMatch(/^DATE \(UTC\)\s+KIND\s+.*RESULT.*\bEVIDENCE/);
      if (columns === 160) expect(lines[0]).toMatch(/\bRTO\s+RPO\s+EVIDENCE/);
      expect(r.stdout).toContain('rollback-incomplete');
      expect(r.stdout).toMatch(/20\d{6}T\d{6}Z-restore-story-portal-production-[0-9a-f]{4}/);
      expect(r.stderr).toMatch(
        /drill RTO trend \(from the start of the restore into the scratch services to healthy, oldest to newest\): 1m 00s -> 1m 30s \(worse: \+50%/,
      );
    }
    // Without a width (a pipe, no $COLUMNS): one line per run, for scripts.
    const piped = await cli(['history']);
    expect(piped.stdout.trimEnd().split('\n')).toHaveLength(4);

    const open = /Open a run: `(restore-assistant [^`]+)`/.exec((await cli(['history'])).stderr)?.[1] ?? '';
    const argv = open.split(' ').slice(1);
    expect(argv[0]).toBe('report');
    const report = await cli(argv);
    expect(report.code, report.stderr).toBe(0);
    expect(report.stdout).toMatch(/^# Restore report: story-portal-production: rollback-incomplete/);
    expect(report.stdout).toContain('## For the incident channel');
  });

  it.runIf(isRoot)('a user who cannot read the evidence is told so and how to fix it, not "No runs recorded"', async () => {
    chmodSync(evidence, 0o700); // root's; the operator below is nobody
    const r = await asNobody(['history'], evidence);
    chmodSync(evidence, 0o755);
    expect(r.code, r.stderr).toBe(9);
    const all = r.stdout + r.stderr;
    expect(all).not.toMatch(/No runs recorded/);
    expect(all).not.toMatch(/no successful drill on record/);
    expect(r.stderr).toMatch(/cannot read the evidence \(EACCES\)/);
    expect(r.stderr).toMatch(/sudo restore-assistant history/);
    expect(r.stderr).toMatch(/drill freshness (is )?unknown/);

    // plan, as the same user: the evidence it cannot write is a preflight problem, not "no problems found".
    const open = mkdtempSync(join(tmpdir(), 'ra-plan-nobody-'));
    chmodSync(open, 0o755);
    mkdirSync(join(open, 'backups', '2026-11-20_02-00-00'), { recursive: true, mode: 0o755 });
    writeFileSync(join(open, 'backups', '2026-11-20_02-00-00', 'redis.rdb'), 'REDIS0011');
    writeFileSync(join(open, 'backups', '2026-11-20_02-00-00', 'metadata.txt'), 'Backup Date: 2026-11-20_02-00-00\n');
    const recipe = join(open, 'r.yaml');
    writeFileSync(
      recipe,
      JSON.stringify({
        name: 'nobody-plan',
        backups: { root: join(open, 'backups'), layout: 'story-portal' },
        components: {
          redis: {
            host: '127.0.0.1',
            port: 1,
            dataDir: join(open, 'redis-data'),
            service: { stop: ['true'], start: ['true'], status: ['true'] },
          },
        },
        evidence: { dir: evidence },
      }),
    );
    chmodSync(evidence, 0o700);
    const plan = await asNobody(['plan', '--recipe', recipe, '--backup', 'latest'], evidence);
    chmodSync(evidence, 0o755);
    rmSync(open, { recursive: true, force: true });
    expect(plan.stdout + plan.stderr).not.toMatch(/no problems found/);
    expect(plan.stdout, plan.stderr).toMatch(/cannot read and write the evidence directory .*\(EACCES\)/);
    expect(plan.code, plan.stdout + plan.stderr).toBe(9);
  });
});

function asNobody(args: string[], evidence: string): Promise<CliResult> {
  return new Promise<CliResult>((resolve) => {
    execFile(
      'setpriv',
      ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, cliBin(), ...args],
      {
        env: {
          PATH: process.env['PATH'] ?? '',
          NO_COLOR: '1',
          HOME: '/nonexistent',
          RESTORE_ASSISTANT_EVIDENCE_DIR: evidence,
          XDG_STATE_HOME: join(tmpdir(), 'ra-nobody-state'),
        },
      },
      (error, stdout, stderr) => {
        const e = error as (Error & { code?: number }) | null;
        resolve({ code: e ? (typeof e.code === 'number' ? e.code : null) : 0, signal: null, stdout, stderr });
      },
    );
  });
}
