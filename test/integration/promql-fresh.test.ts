import { mkdtempSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCheck } from '../../source/checks/index.js';
import { recipeSchema, type Check, type Recipe } from '../../source/recipe/schema.js';
import { SandboxGroup, type PrometheusSandbox } from '../../source/sandbox/index.js';

/**
 * Issue 14: a PromQL health check that proves the restored data needs no fresh scrape. A real
 * Prometheus scrapes itself, is stopped, and starts again on the same TSDB with nothing to
 * scrape (as a restored Prometheus is before its first scrape) and a 3 s lookback, so once 3 s
 * have passed `up` evaluated now finds nothing: a check that needs a fresh scrape fails, one that
 * does not (freshScrape: false) finds the restored series at the newest stored sample.
 */

let base: string;
let group: SandboxGroup;
let prom: PrometheusSandbox;
let recipe: Recipe;

function check(promql: Record<string, unknown>, extra: Record<string, unknown> = {}): Check {
  return recipeSchema.parse({
    name: 'x',
    backups: { root: '/x' },
    components: {},
    checks: [{ name: 'c', retries: 0, intervalSeconds: 0, promql, ...extra }],
  }).checks[0]!;
}

beforeAll(async () => {
  base = mkdtempSync(join(tmpdir(), 'ra-promql-fresh-'));
  group = new SandboxGroup({ baseDir: base });
  prom = await group.prometheus({ extraFlags: ['--query.lookback-delta=3s'] });
  await prom.waitForSamples(3);
  await prom.stop();
  // The same data, nothing scraped any more: the restored TSDB before a first scrape.
  await writeFile(prom.configPath, stringify({ global: { scrape_interval: '1s', evaluation_interval: '1s' } }));
  await prom.start();
  // Until the lookback has passed, `up` now still sees the last stored sample: wait for it to be gone.
  for (let i = 0; i < 100 && ((await prom.query('up')).result as unknown[]).length > 0; i++) await sleep(200);
  recipe = recipeSchema.parse({
    name: 'promql-fresh',
    backups: { root: base },
    components: { prometheus: { url: prom.url, dataDir: prom.dataDir, service: { stop: ['true'], start: ['true'] } } },
  });
}, 120_000);

afterAll(async () => {
  await group?.stopAll();
  if (base) rmSync(base, { recursive: true, force: true });
});

describe('promql checks on restored data', () => {
  it('up evaluated now needs a fresh scrape and finds none', async () => {
    expect(((await prom.query('up')).result as unknown[]).length).toBe(0);
    const r = await runCheck(check({ query: 'up' }), { recipe });
    expect(r).toEqual(expect.objectContaining({ ok: false, detail: '0 series for up (expected at least 1)' }));
  });

  it('freshScrape: false finds the restored series at the newest stored sample, without a scrape', async () => {
    const r = await runCheck(check({ query: 'up{job="prometheus"}', freshScrape: false }), { recipe });
    expect(r.ok).toBe(true);
    expect(r.detail).toMatch(/^1 series for up\{job="prometheus"\} at the newest stored sample \(\d{4}-\d\d-\d\dT[\d:.]+Z\)$/);
    // An explicit time still wins: long before the server existed there is nothing.
    const old = await runCheck(check({ query: 'up', freshScrape: false, time: '2001-01-01T00:00:00Z' }), { recipe });
    expect(old.ok).toBe(false);
  });

  it('a failing PromQL check polls fast within the recipe patience', async () => {
    const attempts: number[] = [];
    const r = await runCheck(check({ query: 'no_such_metric' }, { retries: 2, intervalSeconds: 0.4 }), {
      recipe,
      onAttempt: (a) => attempts.push(a.of),
    });
    expect(r.ok).toBe(false);
    // 0.8 s of patience: waits of 100, 200 and 400 ms (the next, 400, would exceed it): 4 attempts, not 3.
    expect(r.attempts).toBe(4);
    expect(attempts).toEqual([4, 4, 4, 4]);
  });
});
