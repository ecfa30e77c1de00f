import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { processesMentioning } from '../support/processes.js';
import { keys } from '../support/keys.js';
import { Terminal } from '../support/terminal.js';

/**
 * `restore-assistant demo` in a pseudo-terminal at 80x24: the newcomer's first run, walked through
 * the guided flow with real keystrokes, from the incident to the comparison with the backup.
 */
describe('demo: the guided incident flow in a terminal', () => {
  const base = mkdtempSync(path.join(tmpdir(), 'ra-demo-e2e-'));
  const terminals: Terminal[] = [];
  afterAll(() => {
    for (const t of terminals) t.kill();
    rmSync(base, { recursive: true, force: true });
  });

  it('walks recipe, backup, verify, plan, confirm, run and summary, restores production, and cleans up', async () => {
    mkdirSync(path.join(base, 'no-recipes'));
    const t = Terminal.start(
      ['demo'],
      {
        ...process.env,
        XDG_STATE_HOME: path.join(base, 'state'),
        RESTORE_ASSISTANT_RECIPES: path.join(base, 'no-recipes'),
        NO_COLOR: '1',
        TERM: 'xterm-256color',
      },
      base,
      { cols: 80, rows: 24 },
    );
    terminals.push(t);

    const incident = await t.waitFor('Prometheus: data directory wiped', 120_000);
    expect(incident).toContain('table app.comments dropped');
    const recipe = await t.waitFor('What do you want to do with demo?');
    expect(recipe).toContain('Restore in place');
    expect(recipe).toContain('Drill');
    t.write(keys.enter);
    const backups = await t.waitFor(/Time \(UTC\)[\s\S]*Set \d{4}-/);
    expect(backups).toContain('Which backup of demo do you want to restore?');
    t.write(keys.enter);
    const plan = await t.waitFor('IN-PLACE restore of demo from', 120_000);
    expect(plan).toContain('If health checks fail:');
    t.write(keys.enter);
    const confirm = await t.waitFor('Type shop to restore, or Esc to go back:');
    expect(confirm).toContain('IN-PLACE restore over the real targets of demo');
    await t.type('shop');
    await t.waitFor('Confirmed at');
    const summary = await t.waitFor(/restored, healthy \(exit 0\)/, 180_000);
    expect(summary).toMatch(/RTO/);
    // The summary stays until the operator leaves it.
    t.write('q');
    await t.waitFor('Sandbox removed.', 120_000);
    const end = t.text().slice(t.text().lastIndexOf('restored, healthy (exit 0)'));
    expect(end).toContain('Production now, compared with the backup');
    expect(end).toContain('Prometheus: history from before the incident is back');
    expect(end).toContain('app.comments: 900 rows (backup: 900)');
    expect(end).not.toMatch(/✖ (PostgreSQL|Redis|Prometheus)/);
    expect(await t.exited).toBe(0);

    const dir = /Backups are in (\/\S+)\/backups/.exec(t.text().replace(/\r?\n/g, ''))?.[1];
    expect(dir).toBeDefined();
    // Its own temp dir is gone (other runs may have theirs: test files run in parallel).
    expect(existsSync(dir ?? '/')).toBe(false);
    expect(processesMentioning(dir ?? 'never')).toEqual([]);
  }, 300_000);
});
