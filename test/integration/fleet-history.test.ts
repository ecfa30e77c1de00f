import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { recordPastRun } from '../support/recorded-runs.js';

/**
 * history --fleet over evidence from two hosts and three recipes, as collected on one machine
 * (rsync of each host's evidence directory into fleet/<host>/runs): one line per host and recipe,
 * and exactly the overdue ones say so.
 */

const DAY = 86_400_000;

describe('history --fleet', () => {
  let fleet: string;
  const ago = (days: number): Date => new Date(Date.now() - days * DAY);

  beforeAll(async () => {
    fleet = mkdtempSync(path.join(tmpdir(), 'ra-fleet-'));
    const a = path.join(fleet, 'db-a', 'runs');
    const b = path.join(fleet, 'db-b', 'var', 'lib', 'restore-assistant', 'runs');
    // db-a / billing: drilled 2 days ago, interval 7: fresh; RTO got worse
    await recordPastRun({
      evidenceDir: a,
      recipe: 'billing',
      kind: 'drill',
      host: 'db-a',
      startedAt: ago(16),
      durationMs: 60_000,
      outcome: 'restored',
      exitCode: 0,
      rtoMs: 60_000,
      intervalDays: 7,
      rtoMinutes: 2,
    });
    await recordPastRun({
      evidenceDir: a,
      recipe: 'billing',
      kind: 'drill',
      host: 'db-a',
      startedAt: ago(9),
      durationMs: 60_000,
      outcome: 'restored',
      exitCode: 0,
      rtoMs: 60_000,
      intervalDays: 7,
      rtoMinutes: 2,
    });
    await recordPastRun({
      evidenceDir: a,
      recipe: 'billing',
      kind: 'drill',
      host: 'db-a',
      startedAt: ago(2),
      durationMs: 150_000,
      outcome: 'restored',
      exitCode: 0,
      rtoMs: 150_000,
      intervalDays: 7,
      rtoMinutes: 2,
      backupTime: ago(2.5),
    });
    // db-a / chat: last successful drill 40 days ago, interval 30: overdue
    await recordPastRun({
      evidenceDir: a,
      recipe: 'chat',
      kind: 'drill',
      host: 'db-a',
      startedAt: ago(40),
      durationMs: 30_000,
      outcome: 'restored',
      exitCode: 0,
      rtoMs: 30_000,
      intervalDays: 30,
    });
    // db-b / billing: failed yesterday, last success 10 days ago, interval 7: overdue, outcome failed
    await recordPastRun({
      evidenceDir: b,
      recipe: 'billing',
      kind: 'drill',
      host: 'db-b',
      startedAt: ago(10),
      durationMs: 60_000,
      outcome: 'restored',
      exitCode: 0,
      rtoMs: 60_000,
      intervalDays: 7,
    });
    await recordPastRun({
      evidenceDir: b,
      recipe: 'billing',
      kind: 'drill',
      host: 'db-b',
      startedAt: ago(1),
      durationMs: 10_000,
      outcome: 'refused',
      exitCode: 3,
      intervalDays: 7,
    });
    // db-b / metrics: only a verify, never drilled: overdue
    await recordPastRun({
      evidenceDir: b,
      recipe: 'metrics',
      kind: 'verify',
      host: 'db-b',
      startedAt: ago(0.5),
      durationMs: 5_000,
      outcome: 'verified',
      exitCode: 0,
      intervalDays: 90,
    });
  });
  afterAll(() => rmSync(fleet, { recursive: true, force: true }));

  it('prints one line per host and recipe; the overdue ones, and only those, say OVERDUE', async () => {
    const r = await runCli(['history', '--fleet', fleet]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^HOST\s+RECIPE\s+LAST DRILL \(UTC\)\s+OUTCOME\s+DRILL RTO\s+OVERDUE\s+BACKUP AGE$/);
    const body = lines.slice(1);
    expect(body.map((l) => l.split(/\s+/).slice(0, 2).join('/'))).toEqual(['db-a/billing', 'db-a/chat', 'db-b/billing', 'db-b/metrics']);
    const overdue = body.filter((l) => l.includes('OVERDUE')).map((l) => l.split(/\s+/).slice(0, 2).join('/'));
    expect(overdue).toEqual(['db-a/chat', 'db-b/billing', 'db-b/metrics']);
    expect(body[0]).toMatch(
      /restored \(exit 0\)\s+1m 00s -> 1m 00s -> 2m 30s worse \+150% \(target 2m MISSED\)\s+no \(2d of 7d\)\s+2d 12h/,
    );
    expect(body[1]).toMatch(/OVERDUE \(40d > 30d\)/);
    expect(body[2]).toMatch(/refused \(exit 3\).*OVERDUE \(10d > 7d\)/);
    expect(body[3]).toMatch(/never\s+-\s+-\s+OVERDUE \(no successful drill\)/);
    expect(r.stderr).toMatch(/4 recipes on 2 host\(s\) from 2 evidence directories .*; 3 overdue/);
  });

  it('--json carries the same rows', async () => {
    const r = await runCli(['history', '--fleet', fleet, '--json']);
    expect(r.code).toBe(0);
    const view = JSON.parse(r.stdout) as {
      rows: Array<{ host: string; recipe: string; overdue: boolean; lastDrill: { outcome: string } | null; intervalDays: number }>;
      evidenceDirs: string[];
    };
    expect(view.evidenceDirs).toHaveLength(2);
    expect(view.rows.map((x) => [x.host, x.recipe, x.overdue, x.lastDrill?.outcome ?? null, x.intervalDays])).toEqual([
      ['db-a', 'billing', false, 'restored', 7],
      ['db-a', 'chat', true, 'restored', 30],
      ['db-b', 'billing', true, 'refused', 7],
      ['db-b', 'metrics', true, null, 90],
    ]);
  });

  it('a source that is not a directory is a usage error', async () => {
    const r = await runCli(['history', '--fleet', path.join(fleet, 'nope')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/not a directory/);
  });
});
