import { describe, expect, it } from 'vitest';
import { closingNextCommand, formatClosing, type ClosingFacts } from '../../source/evidence/closing.js';
import { normalizedRtoMs, rtoClockStart } from '../../source/evidence/rto.js';

const base: ClosingFacts = {
  kind: 'restore',
  recipe: 'shop',
  recipeRef: '/etc/restore-assistant/shop.yaml',
  outcome: 'restored',
  finished: true,
  exitCode: 0,
  error: null,
  backup: { id: '20261122_020000', time: '2026-11-22T02:00:00.000Z' },
  rpoMs: 3 * 3_600_000,
  rpoTargetMinutes: 1440,
  rtoMs: 41_000,
  rtoTargetMinutes: 30,
  healthChecks: [
    { name: 'api answers', ok: true },
    { name: 'orders present', ok: true },
  ],
  evidenceDir: '/var/lib/restore-assistant/runs/20261122T030000Z-restore-shop-abcd',
  safetyCopies: [
    { component: 'postgres', kind: 'rename', location: 'shop__pre_restore_abcd', description: 'the database before the restore' },
  ],
};

describe('the closing block', () => {
  it('says verdict, recipe, set, RPO, RTO against targets, checks, evidence, copies and one next command', () => {
    const text = formatClosing(base);
    expect(text.split('\n')).toEqual([
      '----- restore-assistant restore of shop -----',
      'Verdict:       RESTORED and healthy (exit 0)',
      'Recipe:        shop',
      'Set:           20261122_020000, taken 2026-11-22T02:00:00.000Z',
      'RPO:           3h 0m of data lost at most (target 24h 00m: met)',
      'RTO:           41 s from confirm to healthy (target 30m 00s: met)',
      'Health checks: 2 of 2 passed (passed: api answers, orders present)',
      'Evidence:      /var/lib/restore-assistant/runs/20261122T030000Z-restore-shop-abcd',
      'Safety copies: shop__pre_restore_abcd (postgres: the database before the restore)',
      'Next:          restore-assistant evidence verify /var/lib/restore-assistant/runs/20261122T030000Z-restore-shop-abcd',
      '---------------',
    ]);
  });

  it('names failures, missed targets and the command each outcome needs next', () => {
    const unhealthy = formatClosing({
      ...base,
      outcome: 'unhealthy',
      exitCode: 4,
      error: 'health checks failed: orders present',
      healthChecks: [
        { name: 'api answers', ok: true },
        { name: 'orders present', ok: false },
      ],
    });
    expect(unhealthy).toMatch(/^Verdict: +RESTORED, but health checks FAILED/m);
    expect(unhealthy).toMatch(/^Health checks: +1 of 2 passed; FAILED: orders present/m);
    expect(unhealthy).toMatch(/^RTO: +not achieved \(health checks failed; 41 s from confirm to the end of the failed health checks\)$/m);
    expect(unhealthy).toMatch(/^Next: +restore-assistant report \/var\/lib/m);
    expect(formatClosing({ ...base, rtoMs: 45 * 60_000 })).toMatch(/target 30m 00s: MISSED/);
    expect(closingNextCommand({ ...base, outcome: 'rollback-incomplete', exitCode: 5 })).toBe(
      'restore-assistant recover --recipe /etc/restore-assistant/shop.yaml',
    );
    expect(closingNextCommand({ ...base, finished: false, exitCode: null })).toBe(
      'restore-assistant recover --recipe /etc/restore-assistant/shop.yaml',
    );
    expect(closingNextCommand({ ...base, outcome: 'interrupted', exitCode: 130, recipeRef: "/r/it's.yaml" })).toBe(
      "restore-assistant restore --recipe '/r/it'\\''s.yaml' --backup 20261122_020000",
    );
    const drill = formatClosing({ ...base, kind: 'drill', safetyCopies: [] });
    expect(drill).toMatch(/^Verdict: +DRILL PASSED/m);
    expect(drill).toMatch(/^RTO: +41 s from the start of the restore into the scratch services to healthy/m);
    expect(drill).toMatch(/^Safety copies: +none \(scratch services\)$/m);
  });

  it('shows hostile text escaped, one line per field', () => {
    const text = formatClosing({ ...base, recipe: 'shop\n\u001b[2JVerdict: fine', backup: { id: 'x\ry', time: 't' } });
    expect(text).not.toMatch(/[\u001b\r]/);
    expect(text.split('\n')).toHaveLength(11);
  });
});

describe('the one RTO definition', () => {
  it('starts a restore at the confirmation and a drill at the engine start', () => {
    const confirmedAt = new Date('2026-11-22T03:00:00Z');
    const runStartedAt = new Date('2026-11-22T03:02:00Z');
    expect(rtoClockStart('restore', { confirmedAt, runStartedAt })).toBe(confirmedAt);
    expect(rtoClockStart('drill', { confirmedAt, runStartedAt })).toBe(runStartedAt);
    expect(rtoClockStart('restore', { runStartedAt })).toBe(runStartedAt);
  });

  it('normalises a drill recorded before the definition (clock from the confirmation) and leaves the rest', () => {
    const at = { confirmedAt: '2026-11-22T03:00:00.000Z', runStartedAt: '2026-11-22T03:02:00.000Z' };
    expect(normalizedRtoMs('drill', 180_000, at)).toBe(60_000);
    expect(normalizedRtoMs('drill', 180_000, { ...at, rtoFrom: at.runStartedAt })).toBe(180_000);
    expect(normalizedRtoMs('restore', 180_000, at)).toBe(180_000);
    expect(normalizedRtoMs('drill', null, at)).toBeNull();
  });
});
