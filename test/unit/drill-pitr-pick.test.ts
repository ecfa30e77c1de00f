import { describe, expect, it } from 'vitest';
import { pickPitrDrill } from '../../source/drill/pitr-pick.js';
import type { PitrBase } from '../../source/pitr/window.js';

const base = (id: string, start: string, from?: string, to?: string): PitrBase =>
  ({
    set: {
      id,
      time: start,
      components: [],
      metadata: {},
      warnings: [],
      layout: 'physical',
      root: '/r',
      location: `/r/base/${id}`,
      timeSource: 'metadata',
      totalSize: 1,
    },
    timeline: 1,
    startLsn: 0n,
    startTime: start,
    problems: [],
    notes: [],
    ...(from && to ? { window: { from, to, lastSegment: 'x', rpo: '' } } : {}),
  }) as unknown as PitrBase;

describe('drill --pick on a physical recipe', () => {
  const now = new Date('2026-12-01T12:00:00Z');
  const bases = [
    base('old', '2026-06-01T03:00:00Z', '2026-06-01T03:00:10Z', '2026-06-02T03:00:00Z'),
    base('recent-a', '2026-11-30T03:00:00Z', '2026-11-30T03:00:10Z', '2026-11-30T03:10:10Z'),
    base('recent-b', '2026-12-01T03:00:00Z', '2026-12-01T03:00:10Z', '2026-12-01T03:00:20Z'),
    base('no-window', '2026-12-01T04:00:00Z'),
  ];

  it('random-recent: a base taken in the interval (never one without a window), and a whole second strictly inside its window', () => {
    for (let k = 0; k < 20; k++) {
      let calls = 0;
      const p = pickPitrDrill(bases, 'random-recent', 90, now, (n) => (calls++ === 0 ? k % n : Math.floor(n / 2)))!;
      expect(['recent-a', 'recent-b', 'old']).toContain(p.base.set.id);
      expect(p.base.set.id).not.toBe('old'); // June is outside 90 days
      expect(p.target.kind).toBe('time');
      const t = Date.parse((p.target as { time: string }).time);
      expect(t).toBeGreaterThan(Date.parse(p.base.window!.from));
      expect(t).toBeLessThan(Date.parse(p.base.window!.to));
      expect(t % 1000).toBe(0);
      expect(p.note).toMatch(
        /^--pick random-recent: base recent-[ab] .* at random among 2 bases taken in the last 90 days; target .* inside its window/,
      );
    }
  });

  it('oldest-retained: the oldest base with a window; the newest when none is recent; latest when the window is too short', () => {
    expect(pickPitrDrill(bases, 'oldest-retained', 90, now, () => 0)!.base.set.id).toBe('old');
    const none = pickPitrDrill(bases, 'random-recent', 1, new Date('2027-06-01T00:00:00Z'), () => 0)!;
    expect(none.base.set.id).toBe('recent-b');
    expect(none.note).toContain('the newest (none was taken in the last 1 days)');
    const short = pickPitrDrill(
      [base('s', '2026-12-01T03:00:00Z', '2026-12-01T03:00:10Z', '2026-12-01T03:00:11Z')],
      'random-recent',
      90,
      now,
    )!;
    expect(short.target).toEqual({ kind: 'latest' });
    expect(short.note).toContain('too short');
    expect(pickPitrDrill([base('w', '2026-12-01T03:00:00Z')], 'random-recent', 90, now)).toBeUndefined();
  });
});
