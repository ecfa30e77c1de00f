import { afterEach, describe, expect, it } from 'vitest';
import chalk from 'chalk';
import { cleanup } from 'ink-testing-library';
import { themeFor } from '../../source/ui/theme.js';
import { ExitCode } from '../../source/exit-codes.js';
import { initialState } from '../../source/ui/wizard.js';
import { fakeDeps, NOW, recipeFixture, setFixture, SETS, summaryFixture } from '../support/ui-fixtures.js';
import { keys } from '../support/keys.js';
import { renderGuide, type Rendered } from '../support/ui-render.js';

/** The frame with line wrapping undone (for sentences that wrap at the terminal width). */
const flat = (frame: string): string => frame.replace(/\s+/g, ' ');

afterEach(() => {
  cleanup();
});

const history = [
  { runId: 'r2', kind: 'drill' as const, startedAt: '2026-01-15T05:00:00.000Z', outcome: 'restored' as const, backupId: '2026-01-15_01-45-00', rtoMs: 240_000, rpoMs: 3 * 3600_000 },
  { runId: 'r1', kind: 'restore' as const, startedAt: '2026-01-10T05:00:00.000Z', outcome: 'restored' as const, backupId: '2026-01-10_01-45-00', rtoMs: 300_000 },
  { runId: 'r0', kind: 'restore' as const, startedAt: '2026-01-05T05:00:00.000Z', outcome: 'restored' as const, rtoMs: 200_000 },
];

/** Walk from the recipe screen to the plan review of the newest set. */
async function toPlan(g: Rendered): Promise<void> {
  await g.waitFor('What do you want to do with story-portal?');
  await g.press(keys.enter, 'Which backup of story-portal do you want to restore?');
  await g.waitFor('2026-01-18 01:45Z');
  await g.press(keys.enter, 'IN-PLACE restore of story-portal from 2026-01-18_01-45-13');
}

async function toRun(g: Rendered): Promise<void> {
  await toPlan(g);
  await g.press(keys.enter, 'Type agentic_platform to restore');
  await g.type('agentic_platform', 'Engine starting');
}

describe('guided interface screens', () => {
  it('recipe screen: name, components, backup location, last restore or drill and when', async () => {
    const control = fakeDeps({ history });
    const g = renderGuide(control.deps, { initial: initialState({ pinned: recipeFixture() }) });
    const f = await g.waitFor('What do you want to do with story-portal?');
    expect(f).toContain('story-portal: agentic platform');
    expect(f).toContain('Components  PostgreSQL agentic_platform · Redis · Prometheus');
    expect(f).toContain('PostgreSQL agentic_platform on 127.0.0.1:5432 (host)');
    expect(f).toContain('Backups     /backups/story-portal (story-portal layout)');
    expect(f).toContain('Last run    drill 3d 0h ago: restored, healthy, RTO 4m 00s');
    expect(f).toContain('Objectives  RTO 30m · RPO 4h 0m');
    expect(f).toContain('Restore in place: over the real targets (incident)');
    expect(f).toContain('Drill: into throwaway services (real targets untouched)');
    expect(f).toContain('Esc other recipe');
    // Esc closes the actions and shows the list of recipes.
    const list = await g.press(keys.escape, 'Which deployment?');
    expect(list).toContain('› story-portal');
  });

  it('recipe list marks invalid recipes and shows their problem', async () => {
    const recipe = recipeFixture();
    const control = fakeDeps({
      recipes: [
        { name: 'broken', file: '/recipes/broken.yaml', error: 'broken.yaml:3:5: backups.root: required field is missing' },
        { name: 'story-portal', file: recipe.file, loaded: recipe },
      ],
    });
    const g = renderGuide(control.deps);
    const f = await g.waitFor('Which deployment?');
    expect(f).toContain('broken (invalid)');
    expect(f).toContain('backups.root: required field is missing');
    const notice = await g.press(keys.enter, 'cannot be used');
    expect(notice).toContain('Recipe broken cannot be used');
    await g.press(keys.down, '› story-portal');
    await g.press(keys.enter, 'What do you want to do with story-portal?');
  });

  it('history screen lists past runs newest first with RTO and RPO', async () => {
    const control = fakeDeps({ history });
    const g = renderGuide(control.deps, { initial: initialState({ pinned: recipeFixture() }) });
    await g.waitFor('What do you want to do with story-portal?');
    await g.press(keys.down, '› Drill');
    await g.press(keys.down, '› History');
    const f = await g.press(keys.enter, 'Restores and drills of story-portal, newest first');
    await g.waitFor('2026-01-15 05:00Z');
    const rows = g.frame().split('\n');
    const drill = rows.findIndex((l) => l.includes('2026-01-15 05:00Z'));
    const restore = rows.findIndex((l) => l.includes('2026-01-10 05:00Z'));
    expect(drill).toBeGreaterThan(-1);
    expect(restore).toBeGreaterThan(drill);
    expect(rows[drill]).toMatch(/drill\s+2026-01-15_01-45-00\s+restored, healthy\s+4m 00s\s+3h 0m/);
    expect(f).toContain('Restores and drills');
    await g.press(keys.escape, 'What do you want to do with story-portal?');
  });

  it('history: Enter opens a run\'s report (scrolls, Esc back to the list where the cursor was); the drill RTO trend is under the runs', async () => {
    const withDirs = history.map((e) => ({ ...e, dir: `/evidence/runs/${e.runId}` }));
    const trend = {
      points: [
        { runId: 'd1', at: '2026-01-01T05:00:00.000Z', rtoMs: 200_000 },
        { runId: 'd2', at: '2026-01-08T05:00:00.000Z', rtoMs: 220_000 },
        { runId: 'r2', at: '2026-01-15T05:00:00.000Z', rtoMs: 240_000 },
      ],
      direction: 'steady' as const,
      changePct: 14,
    };
    const control = fakeDeps({ history: withDirs, trend });
    const g = renderGuide(control.deps, { initial: initialState({ pinned: recipeFixture() }) });
    g.resize(80, 24);
    await g.waitFor('What do you want to do with story-portal?');
    await g.press(keys.down, '› Drill');
    await g.press(keys.down, '› History');
    await g.press(keys.enter, 'Restores and drills of story-portal, newest first');
    const list = await g.waitFor('Drill RTO trend');
    expect(flat(list)).toContain('Drill RTO trend: 3m 20s → 3m 40s → 4m 00s: steady (+14% against the 2 before)');
    for (const line of list.split('\n')) expect(line.length).toBeLessThanOrEqual(80);
    // At 80 columns the header is one line (issue 12: the RPO header wrapped).
    expect(list).toMatch(/^ {2}Started \(UTC\)\s+Kind\s+Result\s+RTO\s+RPO\s*$/m);
    expect(list).toMatch(/Enter open its report/);
    await g.press('j', /› 2026-01-10 05:00Z/);
    const report = await g.press(keys.enter, '# Restore report: r1');
    expect(control.calls).toContain('runReport(r1)');
    expect(report).toContain('Report of run r1');
    expect(report).toMatch(/lines 1–\d+ of 63 · restore-assistant report \/evidence\/runs\/r1/);
    await g.press(keys.down, /lines 2–/);
    await g.press(keys.pageDown, /lines \d{2}–/);
    await g.press(keys.escape, /› 2026-01-10 05:00Z/);
    // A run known only from the history index (its directory gone) says so instead of a report.
    await g.press('j', /› 2026-01-05 05:00Z/);
    expect(g.frame()).toContain('Drill RTO trend');
    await g.press(keys.escape, 'What do you want to do with story-portal?');
    const noDir = fakeDeps({ history });
    const h = renderGuide(noDir.deps, { initial: initialState({ pinned: recipeFixture() }) });
    await h.waitFor('What do you want to do with story-portal?');
    await h.press(keys.down, '› Drill');
    await h.press(keys.down, '› History');
    await h.press(keys.enter, '2026-01-15 05:00Z');
    const gone = await h.press(keys.enter, 'The report cannot be shown');
    expect(flat(gone)).toContain('run r2 has no directory left in the evidence');
  });

  it('backup screen: newest first with time, age, sizes, checksums and the RPO the choice implies; type to filter', async () => {
    const control = fakeDeps();
    const g = renderGuide(control.deps, { initial: initialState({ pinned: recipeFixture() }) });
    await g.waitFor('What do you want to do with story-portal?');
    await g.press(keys.enter, 'Which backup of story-portal do you want to restore?');
    const f = await g.waitFor('2026-01-18 01:45Z');
    const lines = f.split('\n');
    const header = lines.find((l) => l.includes('Time (UTC)'))!;
    expect(header).toMatch(/Time \(UTC\)\s+Age\s+PostgreSQL\s+Redis\s+Prometheus\s+Checksums/);
    const first = lines.findIndex((l) => l.includes('2026-01-18 01:45Z'));
    const second = lines.findIndex((l) => l.includes('2026-01-17 01:45Z'));
    expect(second).toBe(first + 1);
    expect(lines[first]).toMatch(/^› 2026-01-18 01:45Z\s+3h 14m\s+3\.0 MiB\s+40 KiB\s+2\.0 MiB\s+2\/3 rec\./);
    expect(f).toContain('RPO if restored now: 3h 14m of changes lost (target 4h 0m)');
    expect(f).toContain('Set 2026-01-18_01-45-13 · /backups/story-portal/2026-01-18_01-45-13');

    await g.press(keys.down, 'RPO if restored now: 27h 14m of changes lost (target 4h 0m: OVER TARGET)');
    // Digits start the filter; only matching sets stay.
    const filtered = await g.press('16', 'Filter: 16');
    expect(filtered).toContain('2026-01-16 01:44Z');
    expect(filtered).not.toContain('2026-01-18 01:45Z');
    const cleared = await g.press(keys.escape, (fr) => !fr.includes('Filter:'));
    expect(cleared).toContain('2026-01-18 01:45Z');
    await g.press('/', 'Filter: ▏');
    await g.press('17', 'Filter: 17');
    await g.press(keys.backspace, 'Filter: 1▏');
    expect(control.calls).toEqual(['listRecipes(story-portal)', 'listSets(story-portal)']);
  });

  it('verify: a rejected set explains why, returns to the list marked, and needs a recorded reason to be used', async () => {
    const control = fakeDeps({ badSets: ['2026-01-18_01-45-13'] });
    const g = renderGuide(control.deps, { initial: initialState({ pinned: recipeFixture() }) });
    await g.waitFor('What do you want to do with story-portal?');
    await g.press(keys.enter, '2026-01-18 01:45Z');
    const rejected = await g.press(keys.enter, 'was rejected: nothing was touched');
    expect(rejected).toContain('✖ PostgreSQL: postgres.sql.gz ends before the end of the gzip stream [gzip-truncated]');
    const list = await g.press(keys.enter, 'REJECTED');
    expect(list).toMatch(/›✖2026-01-18 01:45Z.*REJECTED/);
    expect(list).toContain('✖ Rejected: postgres.sql.gz ends before the end of the gzip stream');
    // Choosing it again asks for a reason instead of verifying again.
    const prompt = await g.press(keys.enter, 'failed its checks');
    expect(prompt).toContain('To go on, type why (it is recorded with the run)');
    await g.type('newest set, the table at fault is not needed', 'IN-PLACE restore of story-portal');
    const plan = await g.waitFor('used anyway because');
    expect(plan).toContain('Set failed its checks; used anyway because: newest set, the table at fault is not needed');
    expect(control.planRequests[0]?.overrideRejected).toBe('newest set, the table at fault is not needed');
    expect(control.calls.filter((c) => c.startsWith('verify('))).toEqual(['verify(2026-01-18_01-45-13,deep)']);
  });

  it('plan review: each step with what it destroys and the safety copy; exact commands on demand; estimate from history', async () => {
    const control = fakeDeps({ history });
    const g = renderGuide(control.deps, { initial: initialState({ pinned: recipeFixture() }) });
    await toPlan(g);
    const f = await g.waitFor('Check tools, versions and disk');
    expect(f).toContain('5 steps, 2 destructive');
    expect(f).toContain('about 4m 10s (median of 2 earlier runs)');
    expect(f).toMatch(/3\. Restore PostgreSQL database agentic_platform\s+destroys, copy kept/);
    await g.press(keys.down, /›\s+2\. Stop service api/);
    const step = await g.press('j', /›\s+3\. Restore PostgreSQL/);
    expect(step).toContain('Destroys: the current database agentic_platform');
    expect(step).toContain('Safety copy: the current database, renamed → agentic_platform__pre_restore_20260118T050000Z');
    expect(step).toContain('Undo: Rename agentic_platform__pre_restore back');
    expect(step).not.toContain('$ psql');
    const cmds = await g.press('c', '$ psql');
    expect(cmds).toContain(`$ psql -h 127.0.0.1 -c 'ALTER DATABASE "agentic_platform" RENAME TO x'  (host)`);
    expect(flat(cmds)).toContain('$ psql -h 127.0.0.1 -d agentic_platform < /backups/story-portal/2026-01-18_01-45-13/postgres.sql.gz (gunzip in-process) (host)');
    // The step's own commands sit under their own heading; the undo is named after them, never above them.
    const lines = cmds.split('\n');
    const runs = lines.findIndex((l) => l.trim() === 'Runs:');
    const firstCmd = lines.findIndex((l) => l.includes('$ psql'));
    expect(runs).toBeGreaterThan(-1);
    expect(runs).toBeLessThan(firstCmd);
    expect(lines.slice(0, firstCmd).some((l) => l.includes('Undo:'))).toBe(false);
    expect(cmds).toContain('If rolled back: Rename agentic_platform__pre_restore back');
    await g.press('c', (fr) => !fr.includes('$ psql'));
    // Esc goes back to the list with the set still under the cursor.
    const back = await g.press(keys.escape, 'Which backup of story-portal');
    expect(back).toMatch(/› 2026-01-18 01:45Z/);
  });

  it('confirm: says IN-PLACE plainly; a wrong word touches nothing; Esc goes back to the plan; q there cancels, "Cancelled" said once', async () => {
    const control = fakeDeps();
    const g = renderGuide(control.deps, { initial: initialState({ pinned: recipeFixture() }) });
    await toPlan(g);
    const f = await g.press(keys.enter, 'Type agentic_platform to restore, or Esc to go back:');
    expect(f).toContain('IN-PLACE restore over the real targets of story-portal');
    expect(f).toContain('PostgreSQL agentic_platform on 127.0.0.1:5432 (host)');
    expect(f).toContain('! the current database agentic_platform (kept: agentic_platform__pre_restore_20260118T050000Z)');
    expect(f).toContain('! the current Redis dataset (kept: /var/lib/redis/dump.rdb.pre_restore)');
    const wrong = await g.type('agentic', '"agentic" is not "agentic_platform". Nothing was touched');
    expect(wrong).toContain('Type agentic_platform to restore');
    await g.press(keys.escape, 'If health checks fail: ask: keep the restored state or roll back');
    const cancelled = await g.press('q', 'Cancelled');
    expect(cancelled.trim().split('\n').at(-1)).toBe('Cancelled, nothing was touched.');
    expect(cancelled.match(/Cancelled/g)).toHaveLength(1);
    const outcome = await g.outcome;
    expect(outcome.exitCode).toBe(ExitCode.ok);
    expect(control.calls.some((c) => c.startsWith('runPlan'))).toBe(false);
  });

  it('confirm for a drill says the real targets are not touched', async () => {
    const control = fakeDeps();
    const g = renderGuide(control.deps, { initial: initialState({ pinned: recipeFixture() }) });
    await g.waitFor('What do you want to do with story-portal?');
    await g.press(keys.down, '› Drill');
    await g.press(keys.enter, 'Which backup of story-portal do you want to drill?');
    await g.waitFor('2026-01-18 01:45Z');
    await g.press(keys.enter, 'Drill of story-portal');
    const f = await g.press(keys.enter, 'to start the drill');
    expect(f).toContain('DRILL into throwaway services: the real targets of story-portal are not touched');
    expect(control.calls).toContain('buildPlan(2026-01-18_01-45-13,drill)');
  });

  it('run: finished steps stay above, the running step shows progress and output; summary shows RTO, RPO, health, copies, evidence', async () => {
    const control = fakeDeps();
    const g = renderGuide(control.deps, { initial: initialState({ pinned: recipeFixture() }) });
    await toRun(g);
    expect(g.frame()).toContain('Confirmed at 05:00:00Z: IN-PLACE restore of story-portal from 2026-01-18_01-45-13');
    control.emit({ type: 'step-started', stepId: 'preflight', title: 'Check tools, versions and disk' });
    control.emit({ type: 'step-finished', stepId: 'preflight', title: 'Tools, versions and disk checked', durationMs: 1200 });
    control.emit({ type: 'step-started', stepId: 'pg-restore', title: 'Restore PostgreSQL database agentic_platform' });
    control.emit({ type: 'progress', stepId: 'pg-restore', unit: 'bytes', done: 1024 * 1024, total: 4 * 1024 * 1024, etaMs: 65_000 });
    control.emit({ type: 'command-output', stepId: 'pg-restore', commandId: 'c1', stream: 'stderr', line: 'CREATE TABLE' });
    control.emit({ type: 'command-output', stepId: 'pg-restore', commandId: 'c1', stream: 'stderr', line: 'COPY 1200' });
    const f = await g.waitFor('COPY 1200');
    expect(f).toContain('✔ Tools, versions and disk checked  1.2 s');
    expect(f).toContain('▸ Restore PostgreSQL database agentic_platform');
    expect(f).toContain('1.0 MiB of 4.0 MiB  25%  ETA 1m 05s');
    expect(f).toContain('│ CREATE TABLE');
    expect(f).toContain('Ctrl-C abort and roll back');
    control.emit({ type: 'safety-copy', stepId: 'pg-restore', copy: { component: 'postgres', kind: 'rename', location: 'agentic_platform__pre_restore_20260118T050000Z', description: 'the current database, renamed' } });
    control.emit({ type: 'step-finished', stepId: 'pg-restore', title: 'PostgreSQL database agentic_platform restored', durationMs: 64_000 });
    control.emit({ type: 'health-check', name: 'api http', ok: true, attempts: 2, durationMs: 900, detail: '200' });
    control.finishRun({ summary: summaryFixture(), evidenceDir: '/state/restore-assistant/runs/20260118T050000Z-story-portal' });
    const s = await g.waitFor('Evidence:      /state/restore-assistant/runs/20260118T050000Z-story-portal');
    expect(s).toContain('✔ Restore of story-portal from 2026-01-18_01-45-13: restored, healthy (exit 0)');
    // The closing block for the incident channel (evidence/closing.ts, as restore and report.md have it).
    expect(s).toContain('----- restore-assistant restore of story-portal -----');
    expect(s).toContain('Verdict:       RESTORED and healthy (exit 0)');
    expect(s).toContain('Set:           2026-01-18_01-45-13, taken 2026-01-18T01:45:13.000Z');
    expect(s).toContain('RTO:           4m 12s from confirm to healthy (target 30m 00s: met)');
    expect(s).toContain('RPO:           3h 14m of data lost at most (target 4h 00m: met)');
    expect(s).toContain('Health checks: 1 of 1 passed (passed: api http)');
    expect(flat(s)).toContain('Safety copies: agentic_platform__pre_restore_20260118T050000Z (postgres: the current database, renamed)');
    // Long values wrap under their value column, not under the labels.
    expect(flat(s)).toContain('Next: restore-assistant evidence verify /state/restore-assistant/runs/20260118T050000Z-story-portal');
    expect(s).toContain('✔ PostgreSQL database agentic_platform restored  1m 04s');
    expect(s).toContain('- Drop the safety copy agentic_platform__pre_restore_20260118T050000Z');
    expect(s).toMatch(/p print it plainly \(to paste\)\s+·\s+q quit/);
    // Finished steps were printed once, above the live area, in the order they finished.
    const all = s.split('\n');
    expect(all.findIndex((l) => l.includes('Tools, versions and disk checked'))).toBeLessThan(all.findIndex((l) => l.includes('agentic_platform restored')));
    // The exit code is decided when the summary shows; the screen stays until the operator leaves it.
    expect((await g.outcome).exitCode).toBe(0);
  });

  it('summary: p prints the incident block plainly (whole lines, no colour) and leaves; q leaves without it', async () => {
    for (const key of ['p', 'q']) {
      const control = fakeDeps();
      const printed: string[][] = [];
      const g = renderGuide(control.deps, { initial: initialState({ pinned: recipeFixture() }), env: {}, onPrint: (lines) => printed.push(lines) });
      await toRun(g);
      control.emit({ type: 'health-check', name: 'api http', ok: true, attempts: 1, durationMs: 900, detail: '200' });
      control.finishRun({ summary: summaryFixture(), evidenceDir: '/state/runs/r1' });
      await g.waitFor('p print it plainly');
      expect((await g.outcome).exitCode).toBe(0);
      expect(printed).toEqual([]);
      g.instance.stdin.write(key);
      // Left: the key hints are gone (the App then ends Ink).
      await g.waitFor((f) => !f.includes('p print it plainly'));
      if (key === 'q') {
        expect(printed).toEqual([]);
        continue;
      }
      expect(printed).toHaveLength(1);
      const block = printed[0] ?? [];
      // Whole lines, exactly the closing block restore and report.md print.
      expect(block[0]).toBe('----- restore-assistant restore of story-portal -----');
      expect(block).toContain('Verdict:       RESTORED and healthy (exit 0)');
      expect(block).toContain('Recipe:        story-portal');
      expect(block).toContain('Set:           2026-01-18_01-45-13, taken 2026-01-18T01:45:13.000Z');
      expect(block).toContain('RPO:           3h 14m of data lost at most (target 4h 00m: met)');
      expect(block).toContain('RTO:           4m 12s from confirm to healthy (target 30m 00s: met)');
      expect(block).toContain('Health checks: 1 of 1 passed (passed: api http)');
      expect(block).toContain('Evidence:      /state/runs/r1');
      expect(block).toContain('Safety copies: agentic_platform__pre_restore_20260118T050000Z (postgres: the current database, renamed)');
      expect(block).toContain('Next:          restore-assistant evidence verify /state/runs/r1');
      for (const line of block) expect(line).not.toMatch(/\u001B/);
    }
  });

  it('Ctrl-C during the run aborts the engine and shows the rollback; the engine\'s answer decides the exit code', async () => {
    const control = fakeDeps();
    const g = renderGuide(control.deps, { initial: initialState({ pinned: recipeFixture() }) });
    await toRun(g);
    control.emit({ type: 'step-started', stepId: 'pg-restore', title: 'Restore PostgreSQL database agentic_platform' });
    await g.waitFor('▸ Restore PostgreSQL');
    expect(control.runSignal()?.aborted).toBe(false);
    const f = await g.press(keys.ctrlC, 'Interrupt received: stopping and rolling back');
    expect(f).toContain('Ctrl-C stop waiting and report the state');
    expect(control.runSignal()?.aborted).toBe(true);
    expect(control.stopSignal()?.aborted).toBe(false);
    control.emit({ type: 'step-failed', stepId: 'pg-restore', title: 'Restore PostgreSQL database agentic_platform', durationMs: 10, error: 'aborted' });
    control.emit({ type: 'rollback-started', reason: 'interrupted by the operator' });
    control.emit({ type: 'rollback-step', stepId: 'pg-restore', title: 'Rename agentic_platform__pre_restore back', ok: true });
    control.emit({ type: 'rollback-finished', complete: true, manualSteps: [] });
    const rb = await g.waitFor('Rollback complete.');
    expect(rb).toContain('Rolling back: interrupted by the operator');
    expect(rb).toContain('✔ Rename agentic_platform__pre_restore back undone');
    control.finishRun({ summary: summaryFixture({ outcome: 'interrupted', exitCode: 130, rtoMs: undefined, state: ['PostgreSQL agentic_platform: as before the restore'] }) });
    const s = await g.waitFor('interrupted, rolled back (exit 130)');
    expect(s).toContain('PostgreSQL agentic_platform: as before the restore');
    expect((await g.outcome).exitCode).toBe(ExitCode.interrupted);
  });

  it('a second Ctrl-C within 3 s is absorbed; a further one stops waiting and reports the exact state as far as the engine told it', async () => {
    const control = fakeDeps();
    const g = renderGuide(control.deps, { initial: initialState({ pinned: recipeFixture() }) });
    await toRun(g);
    control.emit({ type: 'step-started', stepId: 'preflight', title: 'Check tools, versions and disk' });
    control.emit({ type: 'step-finished', stepId: 'preflight', title: 'Check tools, versions and disk', durationMs: 5 });
    control.emit({ type: 'step-started', stepId: 'stop-api', title: 'Stop service api' });
    control.emit({ type: 'step-finished', stepId: 'stop-api', title: 'Stop service api', durationMs: 5 });
    control.emit({ type: 'step-started', stepId: 'pg-restore', title: 'Restore PostgreSQL database agentic_platform' });
    await g.waitFor('▸ Restore PostgreSQL');
    await g.press(keys.ctrlC, 'Interrupt received');
    control.emit({ type: 'rollback-started', reason: 'interrupted' });
    control.emit({ type: 'rollback-step', stepId: 'pg-restore', title: 'Rename back', ok: true });
    await g.waitFor('Rename back undone');
    // A second within 3 s of the first (the fixture's clock stands still) is absorbed, and says what one more costs.
    const absorbed = await g.press(keys.ctrlC, 'ignored, the rollback goes on');
    expect(flat(absorbed)).toContain('One more stops waiting: the rollback is abandoned where it is');
    expect(control.stopSignal()?.aborted).toBe(false);
    const second = await g.press(keys.ctrlC, 'No longer waiting');
    expect(control.stopSignal()?.aborted).toBe(true);
    expect(second).toContain('Ctrl-C leave now');
    const f = await g.press(keys.ctrlC, 'Stopped waiting for the rollback');
    expect(f).toContain('Check tools, versions and disk: done');
    expect(f).toContain('Stop service api: done');
    expect(flat(f)).toContain('Restore PostgreSQL database agentic_platform: was running when interrupted (may be half done), undone');
    expect(f).toContain('Restore Redis dump.rdb: not started');
    expect((await g.outcome).exitCode).toBe(ExitCode.rollbackIncomplete);
  });

  it('failed health checks: the plan screen can decide in advance (then no question reaches the engine)', async () => {
    const control = fakeDeps();
    const g = renderGuide(control.deps, { initial: initialState({ pinned: recipeFixture() }) });
    await toPlan(g);
    expect(g.frame()).toContain('If health checks fail: ask: keep the restored state or roll back');
    expect(g.frame()).toContain('u if unhealthy');
    await g.press('u', 'If health checks fail: ROLL BACK to the pre-restore data (no question)');
    await g.press('u', 'If health checks fail: keep the restored state (no question; undo printed)');
    await g.press('u', 'If health checks fail: ask: keep the restored state or roll back');
    await g.press('u', 'If health checks fail: ROLL BACK');
    const c = await g.press(keys.enter, 'Type agentic_platform');
    expect(c).toContain('If health checks fail: roll back (changed on the plan screen)');
    await g.type('agentic_platform', 'Engine starting');
    // The plan the deps built runs (identity kept), with the choice as data.
    expect(control.runPlans[0]).toBe(control.builtPlans.at(-1));
    expect(control.runRollbackChoices).toEqual([true]);
    expect(control.onUnhealthy()).toBeUndefined();
  });

  it('failed health checks, asked during the run: shows which failed and the state; r rolls back visibly; the summary shows the outcome', async () => {
    const control = fakeDeps();
    const g = renderGuide(control.deps, { initial: initialState({ pinned: recipeFixture() }) });
    await toPlan(g);
    const c = await g.press(keys.enter, 'Type agentic_platform');
    expect(c).toContain('If health checks fail: ask then (changed on the plan screen)');
    await g.type('agentic_platform', 'Engine starting');
    expect(control.runPlans[0]).toBe(control.builtPlans.at(-1));
    expect(control.runRollbackChoices).toEqual([false]);
    const ask = control.onUnhealthy();
    expect(ask).toBeDefined();
    control.emit({ type: 'step-started', stepId: 'health', title: 'Run health checks' });
    control.emit({ type: 'health-check', name: 'users restored', ok: false, attempts: 1, durationMs: 30, detail: 'returned 0 rows, expected at least 1' });
    control.emit({ type: 'step-failed', stepId: 'health', title: 'Run health checks', durationMs: 40, error: '1 health check failed: users restored' });
    await g.waitFor('Run health checks failed');
    // Keys mean nothing before the engine asks (a "keep" here would show up as the answer below).
    await g.press('k', 'Run health checks failed');
    const answer = ask?.({ checks: ['users restored'], state: ['PostgreSQL agentic_platform: restored from 2026-01-18_01-45-13; previous data kept as agentic_platform__pre_restore_x'] });
    const f = await g.waitFor('Keep the restored state (k) or roll back (r)?');
    expect(f).toContain('✖ Health checks failed: users restored');
    expect(f).toContain('users restored: returned 0 rows, expected at least 1 (1 attempt)');
    expect(flat(f)).toContain('Now: PostgreSQL agentic_platform: restored from 2026-01-18_01-45-13; previous data kept as agentic_platform__pre_restore_x');
    expect(f).toContain('k keep the restored state');
    expect(f).toContain('r roll back');
    expect(f).toContain('Ctrl-C abort and roll back');
    expect(f).not.toContain('Next step starting');
    await g.press('r', 'Rolling back, as you chose.');
    await expect(answer).resolves.toBe('rollback');
    // A second key changes nothing: the answer was given.
    await g.press('k', 'Rolling back, as you chose.');
    control.emit({ type: 'log', level: 'info', message: 'operator chose to roll back after failed health checks' });
    control.emit({ type: 'rollback-started', reason: 'health checks failed: users restored; the operator chose to roll back' });
    control.emit({ type: 'rollback-step', stepId: 'pg-restore', title: 'Rename agentic_platform__pre_restore back', ok: true });
    control.emit({ type: 'rollback-finished', complete: true, manualSteps: [] });
    const rb = await g.waitFor('Rollback complete.');
    expect(rb).toContain('Rolling back: health checks failed: users restored; the operator chose to roll back');
    expect(rb).toContain('✔ Rename agentic_platform__pre_restore back undone');
    control.finishRun({
      summary: summaryFixture({
        outcome: 'rolled-back',
        exitCode: ExitCode.failedRolledBack,
        rtoMs: undefined,
        safetyCopies: [],
        failedChecks: ['users restored'],
        state: ['PostgreSQL agentic_platform: back to its pre-restore data (rolled back)'],
        nextSteps: ['The restored data failed its health checks and the operator chose to roll back; the targets hold their pre-restore data again.'],
      }),
    });
    const s = await g.waitFor('failed, rolled back (exit 1)');
    expect(s).toContain('✖ Health check users restored: FAILED (1 attempt) returned 0 rows, expected at least 1');
    expect(s).toContain('PostgreSQL agentic_platform: back to its pre-restore data (rolled back)');
    expect(flat(s)).toContain('the operator chose to roll back');
    expect((await g.outcome).exitCode).toBe(ExitCode.failedRolledBack);
  });

  it('failed health checks, asked during the run: k keeps the restored state (exit 4)', async () => {
    const control = fakeDeps();
    const g = renderGuide(control.deps, { initial: initialState({ pinned: recipeFixture() }) });
    g.resize(80, 24);
    await toRun(g);
    const answer = control.onUnhealthy()?.({ checks: ['api http'], state: ['Redis on 127.0.0.1:6379 (host): restored from 2026-01-18_01-45-13; previous data kept as /var/lib/redis/dump.rdb.pre_restore_20260118T050000Z'] });
    const f = await g.waitFor('Keep the restored state (k) or roll back (r)?');
    for (const line of f.split('\n')) expect(line.length).toBeLessThanOrEqual(80);
    // A long state line wraps and stays indented under "Now:".
    expect(f).toMatch(/Now:\n {2}Redis on 127\.0\.0\.1:6379 \(host\): restored from [^\n]+\n {2}\S/);
    await g.press('k', 'Keeping the restored state, as you chose.');
    await expect(answer).resolves.toBe('keep');
    control.finishRun({ summary: summaryFixture({ outcome: 'unhealthy', exitCode: ExitCode.unhealthy, rtoMs: 61_000, failedChecks: ['api http'] }) });
    const s = await g.waitFor('restored, UNHEALTHY (exit 4)');
    expect(flat(s)).toMatch(/RTO: not achieved \(health checks failed; 1m 01s from confirm to the end of the (failed )?health checks\)/);
    expect((await g.outcome).exitCode).toBe(ExitCode.unhealthy);
  });

  it('failed health checks, asked during the run: Ctrl-C instead of an answer aborts (the engine rolls back) and closes the question', async () => {
    const control = fakeDeps();
    const g = renderGuide(control.deps, { initial: initialState({ pinned: recipeFixture() }) });
    await toRun(g);
    let answered = false;
    void control.onUnhealthy()?.({ checks: ['api http'], state: [] }).then(() => (answered = true));
    await g.waitFor('Keep the restored state (k) or roll back (r)?');
    const f = await g.press(keys.ctrlC, 'Interrupt received: stopping and rolling back');
    expect(f).not.toContain('Keep the restored state (k)');
    expect(control.runSignal()?.aborted).toBe(true);
    await g.press('k', 'Interrupt received');
    expect(answered).toBe(false);
    control.finishRun({ summary: summaryFixture({ outcome: 'interrupted', exitCode: ExitCode.interrupted, rtoMs: undefined }) });
    expect((await g.outcome).exitCode).toBe(ExitCode.interrupted);
  });

  it('lays out for 80 columns and re-renders on resize; no line is wider than the terminal', async () => {
    const control = fakeDeps();
    const g = renderGuide(control.deps, { initial: initialState({ pinned: recipeFixture() }) });
    await g.waitFor('What do you want to do with story-portal?');
    await g.press(keys.enter, '2026-01-18 01:45Z');
    await g.waitFor('Set id'); // 100 columns (ink-testing-library default): the id column fits
    g.resize(80, 24);
    const narrow = await g.waitFor((f) => !f.includes('Set id'));
    for (const line of narrow.split('\n')) expect(line.length).toBeLessThanOrEqual(80);
    expect(narrow.split('\n').length).toBeLessThanOrEqual(24);
    await g.press(keys.enter, 'IN-PLACE restore of story-portal');
    for (const line of g.frame().split('\n')) expect(line.length).toBeLessThanOrEqual(80);
    await g.press('j', /›\s+2\./);
    await g.press('j', /›\s+3\./);
    await g.press('c', '$ psql');
    for (const line of g.frame().split('\n')) expect(line.length).toBeLessThanOrEqual(80);
    await g.press(keys.enter, 'Type agentic_platform');
    for (const line of g.frame().split('\n')) expect(line.length).toBeLessThanOrEqual(80);
  });

  it('respects NO_COLOR: no colour codes with it, colour without it (even on a colour terminal)', async () => {
    expect(themeFor({ NO_COLOR: '1' })).toMatchObject({ color: false, accent: undefined, ok: undefined, warn: undefined, danger: undefined, muted: undefined });
    expect(themeFor({})).toMatchObject({ color: true, danger: 'red' });
    const level = chalk.level;
    chalk.level = 3; // pretend a colour terminal: only the theme decides
    try {
       
      const colour = /\u001B\[(3\d|9\d|38);?[\d;]*m/;
      const plain = renderGuide(fakeDeps().deps, { initial: initialState({ pinned: recipeFixture() }), env: { NO_COLOR: '1' } });
      await plain.waitFor('What do you want to do');
      expect(plain.instance.lastFrame()).not.toMatch(colour);
      plain.instance.unmount();
      const coloured = renderGuide(fakeDeps().deps, { initial: initialState({ pinned: recipeFixture() }), env: {} });
      await coloured.waitFor('What do you want to do');
      expect(coloured.instance.lastFrame()).toMatch(colour);
    } finally {
      chalk.level = level;
    }
  });

  it('? shows the keys and returns; q quits before anything ran', async () => {
    const control = fakeDeps();
    const g = renderGuide(control.deps, { initial: initialState({ pinned: recipeFixture() }) });
    await toPlan(g);
    const help = await g.press('?', 'Keys');
    expect(help).toContain('quit before anything runs (nothing is touched)');
    expect(help).toContain('restore-assistant restore --recipe R --backup ID --yes');
    await g.press(keys.escape, 'IN-PLACE restore of story-portal');
    const q = await g.press('q', 'Cancelled');
    expect(q).toContain('Cancelled, nothing was touched.');
    expect((await g.outcome).exitCode).toBe(0);
  });

  it('a signal delivered to the process cancels before the run (exit 0: nothing ran, 130 is for a rolled-back run)', async () => {
    let fire: (() => void) | undefined;
    const g = renderGuide(fakeDeps().deps, {
      initial: initialState({ pinned: recipeFixture() }),
      subscribeInterrupts: (fn) => {
        fire = fn;
        return () => {
          fire = undefined;
        };
      },
    });
    await g.waitFor('What do you want to do');
    fire?.();
    await g.waitFor('Cancelled, nothing was touched.');
    expect((await g.outcome).exitCode).toBe(ExitCode.cancelled);
  });

  it('shows catalog warnings and empty lists plainly', async () => {
    const control = fakeDeps({ sets: [setFixture('2026-01-18_01-45-13', '2026-01-18T01:45:13.000Z', { warnings: ['metadata.txt: line 3 not understood'] })] });
    const g = renderGuide(control.deps, { initial: initialState({ pinned: recipeFixture() }) });
    await g.waitFor('What do you want to do');
    const f = await g.press(keys.enter, '2026-01-18 01:45Z');
    expect(f).toContain('! metadata.txt: line 3 not understood');
    expect(f).toMatch(/›!2026-01-18 01:45Z/);
    const none = await g.press('9', 'No set matches "9".');
    expect(none).toContain('Filter: 9');
    void NOW;
    void SETS;
  });
});

describe('confirm screen wording', () => {
  it('a step that only moves data aside is named by its title, not by "nothing: …"', async () => {
    const { destructiveLine } = await import('../../source/ui/screens/ConfirmScreen.js');
    const base = { id: 's', doneTitle: 'd', phase: 'postgres' as const, lane: 'main' as const, destructive: true, actions: [], dependsOn: [] };
    expect(destructiveLine({ ...base, title: 'Rename database shop aside to shop__pre_restore_x', destroys: 'nothing: database shop is renamed to shop__pre_restore_x', safetyCopy: { component: 'postgres', kind: 'rename', location: 'shop__pre_restore_x', description: 'renamed' } })).toBe(
      'Rename database shop aside to shop__pre_restore_x',
    );
    expect(destructiveLine({ ...base, title: 'Drop database shop', destroys: 'database shop and everything in it', safetyCopy: { component: 'postgres', kind: 'none', location: '', description: 'none' } })).toBe('database shop and everything in it (NO safety copy)');
  });
});

describe('text from outside on the screens', () => {
  it('a hostile set location and plan text are shown escaped: no screen clear, no title, no forged line', async () => {
    const hostile = '/backups/x\n✔ Health checks passed\u001B[2J\u001B]0;pwned\u0007';
    const control = fakeDeps({ sets: [setFixture('2026-01-18_01-45-13', '2026-01-18T01:45:13.000Z', { location: hostile })] });
    const g = renderGuide(control.deps, { initial: initialState({ pinned: recipeFixture() }) });
    await g.waitFor('What do you want to do with story-portal?');
    await g.press(keys.enter, 'Which backup of story-portal do you want to restore?');
    const frame = await g.waitFor('pwned');
    const raw = g.instance.lastFrame() ?? '';
    expect(raw).not.toContain('\u001B[2J');
    expect(raw).not.toContain('\u001B]0;pwned');
    expect(raw).not.toContain('\u0007');
    expect(frame).toContain('/backups/x\\n✔ Health checks passed\\x1b[2J\\x1b]0;pwned\\x07');
    expect(frame.split('\n').some((l) => l.trim().startsWith('✔ Health checks passed'))).toBe(false);
  });
});
