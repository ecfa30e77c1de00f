import { describe, expect, it } from 'vitest';
import type { BackupSet } from '../../source/catalog/types.js';
import { pickFrom } from '../../source/drill/pick.js';

const NOW = new Date('2026-06-01T00:00:00Z');
const set = (id: string, daysAgo: number): BackupSet => ({
  id,
  layout: 'metachat',
  root: '/b',
  location: '/b',
  time: new Date(NOW.getTime() - daysAgo * 86_400_000).toISOString(),
  timeSource: 'name',
  components: [],
  metadata: {},
  warnings: [],
  totalSize: 0,
});

describe('drill --pick', () => {
  // listed newest first, but pickFrom must not rely on the order
  const sets = [set('d3', 3), set('d40', 40), set('d1', 1), set('d200', 200), set('d6', 6)];

  it('oldest-retained takes the oldest set, whatever the order', () => {
    expect(pickFrom(sets, 'oldest-retained', 7, NOW)?.set.id).toBe('d200');
    expect(pickFrom(sets, 'oldest-retained', 7, NOW)?.note).toMatch(/the oldest of 5 retained/);
  });

  it('random-recent draws only from sets within the drill interval, each of them reachable', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 3; i++) seen.add(pickFrom(sets, 'random-recent', 7, NOW, () => i)?.set.id ?? '');
    expect([...seen].sort()).toEqual(['d1', 'd3', 'd6']);
    expect(pickFrom(sets, 'random-recent', 7, NOW, () => 0)?.note).toMatch(/at random among 3 sets taken in the last 7 days/);
  });

  it('random-recent falls back to the newest when nothing is recent; nothing to pick from is undefined', () => {
    expect(pickFrom([set('old', 50), set('older', 60)], 'random-recent', 7, NOW, () => 0)?.set.id).toBe('old');
    expect(pickFrom([], 'oldest-retained', 7, NOW)).toBeUndefined();
  });
});
