import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { metachatTimestamp } from '../../source/sandbox/backups.js';
import { runCli } from '../support/cli.js';

/** drill --pick chooses the set, records how in the evidence, and the drill then proves that set. */

describe('drill --pick (built CLI)', () => {
  let base: string;
  let recipeFile: string;
  let evidenceDir: string;
  const ids: string[] = [];

  beforeAll(() => {
    base = mkdtempSync(path.join(tmpdir(), 'ra-drill-pick-'));
    evidenceDir = path.join(base, 'evidence');
    const root = path.join(base, 'backups');
    mkdirSync(path.join(root, 'postgres'), { recursive: true });
    // Damaged dumps: each drill is refused at verification (exit 3), quickly, naming the set it picked.
    for (const days of [1, 20, 200]) {
      const stamp = metachatTimestamp(new Date(Date.now() - days * 86_400_000));
      ids.push(stamp);
      writeFileSync(path.join(root, 'postgres', `app_${stamp}.dump`), `not a dump ${days}\n`);
    }
    recipeFile = path.join(base, 'pick.yaml');
    writeFileSync(
      recipeFile,
      stringify({
        name: 'pick',
        backups: { root, layout: 'metachat', database: 'app' },
        components: { postgres: { database: 'app' } },
        drill: { intervalDays: 7 },
        evidence: { dir: evidenceDir },
      }),
    );
  });
  afterAll(() => rmSync(base, { recursive: true, force: true }));

  it('oldest-retained drills the 200-day-old set and the evidence says why', async () => {
    const r = await runCli(['drill', '--recipe', recipeFile, '--pick', 'oldest-retained', '--yes']);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(new RegExp(`--pick oldest-retained: set ${ids[2]} .*the oldest of 3 retained`));
    const runs = readdirSync(evidenceDir).filter((n) => n.includes('-drill-'));
    expect(runs).toHaveLength(1);
    const report = JSON.parse(readFileSync(path.join(evidenceDir, runs[0]!, 'report.json'), 'utf8')) as { backup: { id: string } };
    expect(report.backup.id).toBe(ids[2]);
    expect(readFileSync(path.join(evidenceDir, runs[0]!, 'events.jsonl'), 'utf8')).toContain('--pick oldest-retained');
  });

  it('random-recent drills the only set within drill.intervalDays (7)', async () => {
    const r = await runCli(['drill', '--recipe', recipeFile, '--pick', 'random-recent', '--yes']);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(new RegExp(`--pick random-recent: set ${ids[0]} .*among 1 set taken in the last 7 days`));
  });

  it('--pick with an explicit --backup, or an unknown pick, is a usage error', async () => {
    expect((await runCli(['drill', '--recipe', recipeFile, '--pick', 'oldest-retained', '--backup', ids[1]!, '--yes'])).code).toBe(2);
    const bad = await runCli(['drill', '--recipe', recipeFile, '--pick', 'newest-ish', '--yes']);
    expect(bad.code).toBe(2);
  });
});
