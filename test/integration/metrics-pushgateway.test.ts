import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { freePort, startPushgateway, type PushgatewaySandbox } from '../../source/sandbox/index.js';
import { metachatTimestamp } from '../../source/sandbox/backups.js';
import { runCli } from '../support/cli.js';

/**
 * metrics.pushgateway with Debian's real prometheus-pushgateway: a verify run by the built CLI
 * pushes the recipe's metrics under job/instance/recipe; an unreachable gateway is a warning and
 * leaves the run's exit code as it was.
 */

describe('metrics pushed to a Pushgateway', () => {
  let base: string;
  let gw: PushgatewaySandbox;
  let root: string;

  const recipe = (name: string, url: string): string => {
    const file = path.join(base, `${name}.yaml`);
    writeFileSync(
      file,
      stringify({
        name,
        backups: { root, layout: 'metachat', database: 'app' },
        components: { postgres: { database: 'app' } },
        evidence: { dir: path.join(base, 'evidence') },
        metrics: { pushgateway: { url } },
      }),
    );
    return file;
  };

  beforeAll(async () => {
    base = mkdtempSync(path.join(tmpdir(), 'ra-pushgw-'));
    root = path.join(base, 'backups');
    mkdirSync(path.join(root, 'postgres'), { recursive: true });
    writeFileSync(path.join(root, 'postgres', `app_${metachatTimestamp(new Date(Date.now() - 7_200_000))}.dump`), 'not a dump\n');
    gw = await startPushgateway({ baseDir: base });
  });
  afterAll(async () => {
    await gw?.dispose();
    rmSync(base, { recursive: true, force: true });
  });

  it('a rejected verify pushes the recipe group; the gateway serves it with job, instance and recipe', async () => {
    const r = await runCli(['verify', 'latest', '--recipe', recipe('push-a', gw.url)]);
    expect(r.stderr).not.toMatch(/Warning: metrics/);
    expect(r.code).toBe(3);
    const text = await (await fetch(`${gw.url}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith('restore_assistant_verify_success{'));
    expect(line).toBeDefined();
    expect(line).toContain(`instance="${hostname()}"`);
    expect(line).toContain('job="restore_assistant"');
    expect(line).toContain('recipe="push-a"');
    expect(line).toMatch(/ 0$/);
    expect(text).toMatch(/restore_assistant_last_run_success\{[^}]*kind="verify"[^}]*\} 0/);
  });

  it("an unreachable Pushgateway is a warning; the exit code is the run's", async () => {
    const port = await freePort();
    const r = await runCli(['verify', 'latest', '--recipe', recipe('push-b', `http://127.0.0.1:${port}`)]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/Warning: metrics not pushed: Pushgateway http:\/\/127\.0\.0\.1:\d+ unreachable/);
  });
});
