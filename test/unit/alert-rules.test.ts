import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { HistoryRun } from '../../source/evidence/history.js';
import { assessBackupHealth } from '../../source/health/backups.js';
import { collectMetrics } from '../../source/metrics/collect.js';
import { recipeSchema } from '../../source/recipe/schema.js';

/** The shipped alert rules: valid for promtool, their unit tests pass, and they only name metrics the tool writes. */

const run = promisify(execFile);
const RULES = path.resolve('recipes/alerts/restore-assistant.rules.yml');
const TESTS = path.resolve('test/alerts/restore-assistant.rules.test.yml');
const scratch = mkdtempSync(path.join(os.tmpdir(), 'ra-rules-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

async function promtool(args: string[], cwd: string): Promise<{ code: number; out: string }> {
  try {
    const r = await run('promtool', args, { cwd });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

describe('recipes/alerts/restore-assistant.rules.yml', () => {
  it('passes promtool check rules', async () => {
    const r = await promtool(['check', 'rules', RULES], process.cwd());
    expect(r.out).toMatch(/SUCCESS: 7 rules found/);
    expect(r.code).toBe(0);
  });

  it('passes its promtool unit tests', async () => {
    const r = await promtool(['test', 'rules', path.basename(TESTS)], path.dirname(TESTS));
    expect(r.out).toMatch(/SUCCESS/);
    expect(r.code).toBe(0);
  });

  it('the unit tests catch a broken rule (overdue threshold ignored)', async () => {
    // Same layout as the repository, with the drill-overdue comparison removed.
    mkdirSync(path.join(scratch, 'recipes/alerts'), { recursive: true });
    mkdirSync(path.join(scratch, 'test/alerts'), { recursive: true });
    const broken = readFileSync(RULES, 'utf8').replace('> ignoring(kind) restore_assistant_drill_interval_seconds', '> 0');
    expect(broken).not.toBe(readFileSync(RULES, 'utf8'));
    writeFileSync(path.join(scratch, 'recipes/alerts/restore-assistant.rules.yml'), broken);
    cpSync(TESTS, path.join(scratch, 'test/alerts/restore-assistant.rules.test.yml'));
    const r = await promtool(['test', 'rules', 'restore-assistant.rules.test.yml'], path.join(scratch, 'test/alerts'));
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/FAILED[\s\S]*RestoreAssistantDrillOverdue/);
  });

  it('names only metrics restore-assistant writes', () => {
    const doc = parse(readFileSync(RULES, 'utf8')) as { groups: Array<{ rules: Array<{ alert: string; expr: string }> }> };
    const used = new Set(
      doc.groups.flatMap((g) => g.rules.flatMap((r) => [...r.expr.matchAll(/restore_assistant_[a-z_]+/g)].map((m) => m[0]))),
    );
    const recipe = recipeSchema.parse({ name: 'a', backups: { root: '/b' }, components: {}, objectives: { rtoMinutes: 1, rpoMinutes: 1 } });
    const runs: HistoryRun[] = (['drill', 'restore', 'verify'] as const).map((kind) => ({
      runId: kind,
      dir: null,
      kind,
      recipe: 'a',
      operator: 'o',
      startedAt: '2026-01-01T00:00:00Z',
      finishedAt: '2026-01-01T00:01:00Z',
      backup: null,
      outcome: kind === 'verify' ? 'verified' : 'restored',
      finished: true,
      exitCode: 0,
      rtoMs: 1,
      rpoMs: 1,
      objectives: { rtoMinutes: 1, rpoMinutes: 1 },
      rtoMet: true,
      rpoMet: true,
      evidence: 'sealed',
      indexed: true,
      sealHash: null,
    }));
    const sets = [
      {
        id: 's',
        layout: 'flat' as const,
        root: '/b',
        location: '/b',
        time: '2026-01-01T00:00:00Z',
        timeSource: 'name' as const,
        components: [{ kind: 'postgres' as const, format: 'pg-custom' as const, path: '/b/x', size: 1, checksum: 'present' as const }],
        metadata: {},
        warnings: [],
        totalSize: 1,
      },
    ];
    const written = new Set(
      collectMetrics({ recipe, runs, catalog: { sets }, health: assessBackupHealth(sets), now: new Date('2026-01-02T00:00:00Z') })
        .filter((f) => f.samples.length > 0)
        .map((f) => f.name),
    );
    expect([...used].filter((n) => !written.has(n))).toEqual([]);
    expect(used.size).toBeGreaterThan(8);
  });
});
