import { describe, expect, it } from 'vitest';
import { retryDelaysMs } from '../../source/checks/index.js';
import { recipeSchema, type Check } from '../../source/recipe/schema.js';

function check(partial: Record<string, unknown>): Check {
  return recipeSchema.parse({ name: 'x', backups: { root: '/x' }, components: {}, checks: [{ name: 'c', ...partial }] }).checks[0]!;
}

describe('retryDelaysMs', () => {
  it('PromQL: 100 ms doubling up to 2 s, as many as fit in retries x interval', () => {
    const d = retryDelaysMs(check({ promql: { query: 'up' } }));
    expect(d).toEqual([100, 200, 400, 800, 1600, 2000, 2000, 2000]);
    expect(d.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(5 * 2000);
    // Never slower than the recipe's interval.
    expect(retryDelaysMs(check({ promql: { query: 'up' }, retries: 3, intervalSeconds: 0.5 }))).toEqual([100, 200, 400, 500]);
    expect(retryDelaysMs(check({ promql: { query: 'up' }, retries: 0 }))).toEqual([]);
  });

  it('other kinds keep their interval', () => {
    expect(retryDelaysMs(check({ sql: { query: 'select 1' }, retries: 2, intervalSeconds: 3 }))).toEqual([3000, 3000]);
    expect(retryDelaysMs(check({ tcp: { host: '127.0.0.1', port: 1 }, retries: 1, intervalSeconds: 0 }))).toEqual([0]);
  });
});
