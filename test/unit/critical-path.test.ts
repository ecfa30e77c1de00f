import { describe, expect, it } from 'vitest';
import { criticalPath, longPoleLine, pathLine, type TimedStep } from '../../source/engine/critical-path.js';

const step = (stepId: string, startMs: number, endMs: number): TimedStep => ({ stepId, title: stepId, startMs, endMs });

describe('the critical path of a run', () => {
  it('is every step of a sequential run, the long pole the longest, nothing beside it', () => {
    const cp = criticalPath([step('a', 0, 100), step('b', 100, 400), step('c', 405, 500)])!;
    expect(cp.steps.map((s) => s.stepId)).toEqual(['a', 'b', 'c']);
    expect(cp.steps.map((s) => s.waitedMs)).toEqual([0, 0, 5]);
    expect(cp.spanMs).toBe(500);
    expect(cp.longPole).toEqual({ stepId: 'b', title: 'b', durationMs: 300, share: 0.6 });
    expect(longPoleLine(cp)).toBe('b, 300 ms of 500 ms (60%); nothing ran beside it');
  });

  it('follows the lane that ended last, and says by how much the long pole outran the lane beside it', () => {
    const cp = criticalPath([
      step('preflight', 1500, 1510),
      step('quiesce', 1510, 1520),
      step('postgres:create', 1520, 1530),
      step('postgres:restore', 1530, 21530),
      step('redis:stop', 1520, 1550),
      step('redis:start', 1550, 4530),
      step('start:app', 21530, 21540),
      step('health', 21540, 22000),
    ])!;
    expect(cp.steps.map((s) => s.stepId)).toEqual(['preflight', 'quiesce', 'postgres:create', 'postgres:restore', 'start:app', 'health']);
    // The clock started at the confirmation: 1.5 s before the first step (the preflight's probe).
    expect(cp.steps[0]!.waitedMs).toBe(1500);
    expect(cp.spanMs).toBe(22000);
    expect(cp.longPole.stepId).toBe('postgres:restore');
    expect(cp.longPole.beside).toEqual({ stepId: 'redis:start', title: 'redis:start' });
    expect(cp.longPole.aheadMs).toBe(17000);
    expect(longPoleLine(cp)).toBe('postgres:restore, 20 s of 22 s (91%); it ended 17 s after the last step beside it (redis:start)');
    expect(pathLine(cp)).toMatch(/^\(waited 1\.5 s\) preflight 10 ms -> quiesce 10 ms -> .* -> health 460 ms$/);
  });

  it('takes the latest-ending predecessor when two lanes end before the next step', () => {
    const cp = criticalPath([step('a', 0, 10), step('x', 10, 300), step('y', 10, 900), step('z', 900, 950)])!;
    expect(cp.steps.map((s) => s.stepId)).toEqual(['a', 'y', 'z']);
    expect(cp.longPole).toMatchObject({ stepId: 'y', aheadMs: 600, beside: { stepId: 'x' } });
  });

  it('is nothing without a finished step; ignores steps without an end', () => {
    expect(criticalPath([])).toBeUndefined();
    expect(criticalPath([step('a', 10, Number.NaN)])).toBeUndefined();
    expect(criticalPath([step('a', 10, 5), step('b', 0, 20)])!.steps.map((s) => s.stepId)).toEqual(['b']);
  });
});
