import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { processesMentioning } from '../support/processes.js';

/** `demo --yes`: the whole incident flow on a sandbox, cleaned up afterwards. */
describe('demo --yes', () => {
  const xdg = mkdtempSync(path.join(tmpdir(), 'ra-demo-test-'));
  afterAll(() => rmSync(xdg, { recursive: true, force: true }));

  it('builds production, breaks it, restores it, proves the data came back, and leaves nothing behind', async () => {
    const result = await runCli(['demo', '--yes'], { env: { XDG_STATE_HOME: xdg } });
    const all = result.stdout + result.stderr;
    expect(all).toContain('Incident! Production just broke:');
    expect(all).toContain('Result: restored and healthy (exit 0)');
    expect(result.code).toBe(0);
    // Every fact compared after the restore matches the backup.
    const compared = result.stdout.split('\n').filter((l) => /^\s+[✔✖] /.test(l));
    expect(compared.length).toBeGreaterThanOrEqual(5);
    expect(compared.filter((l) => l.includes('✖'))).toEqual([]);
    expect(all).toContain('app.comments: 900 rows');
    expect(all).toContain('Prometheus: history from before the incident is back');
    // Evidence kept in the demo's own evidence dir, sealed.
    const runs = readdirSync(path.join(xdg, 'restore-assistant', 'demo', 'runs')).filter((n) => n.includes('-restore-demo-'));
    expect(runs).toHaveLength(1);
    const verify = await runCli(['evidence', 'verify', path.join(xdg, 'restore-assistant', 'demo', 'runs', runs[0] ?? '')]);
    expect(verify.code).toBe(0);
    // No temp dir and no process left behind.
    const dir = /Backups are in (\/\S+)\/backups/.exec(all)?.[1];
    expect(dir).toBeDefined();
    // Its own temp dir is gone (other runs may have theirs: test files run in parallel).
    expect(existsSync(dir ?? '/')).toBe(false);
    expect(processesMentioning(dir ?? 'never')).toEqual([]);
  }, 240_000);

  it('refuses without a terminal unless --yes, before starting anything', async () => {
    const result = await runCli(['demo']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--yes');
    expect(result.stderr).not.toContain('Starting a sandbox');
  });
});
