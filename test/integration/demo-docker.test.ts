import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { processesMentioning } from '../support/processes.js';

/** `demo --docker --yes`: the audited story-portal deployment in containers, broken and restored. */
describe('demo --docker --yes', () => {
  const xdg = mkdtempSync(path.join(tmpdir(), 'ra-demo-docker-test-'));
  afterAll(() => rmSync(xdg, { recursive: true, force: true }));

  it('restores the containers through docker exec / docker cp, proves the data came back, and leaves no daemon, container or dir behind', async () => {
    const result = await runCli(['demo', '--docker', '--yes'], { env: { XDG_STATE_HOME: xdg } });
    const all = result.stdout + result.stderr;
    expect(result.code, all).toBe(0);
    expect(all).toContain('Incident! Production just broke:');
    expect(all).toContain('PostgreSQL (agentic-postgres): table app.comments dropped');
    expect(all).toContain('Result: restored and healthy (exit 0)');
    expect(all).toContain('(docker exec agentic-postgres)');
    expect(all).toMatch(/\$ docker cp - agentic-prometheus:\/prometheus/);
    const compared = result.stdout.split('\n').filter((l) => /^\s+[✔✖] /.test(l));
    expect(compared.length).toBeGreaterThanOrEqual(5);
    expect(compared.filter((l) => l.includes('✖'))).toEqual([]);
    expect(all).toContain('Prometheus: history from before the incident is back');
    const runs = readdirSync(path.join(xdg, 'restore-assistant', 'demo', 'runs')).filter((n) => n.includes('-restore-demo-docker-'));
    expect(runs).toHaveLength(1);
    const dir = /Backups are in (\/\S+)\/backups/.exec(all)?.[1];
    expect(dir).toBeDefined();
    expect(existsSync(dir ?? '/')).toBe(false);
    // dockerd, containerd and the containers' shims all name the demo dir: none is left.
    expect(processesMentioning(dir ?? 'never')).toEqual([]);
  }, 300_000);
});
