import { describe, expect, it } from 'vitest';
import { EventBus } from '../../source/engine/events.js';
import { attachLineRenderer, formatEventLine } from '../../source/engine/line-renderer.js';
import { formatStepStatus, trackProgress } from '../../source/engine/progress.js';

const plan = { steps: ['stop', 'pg-restore', 'health'].map((id) => ({ id })) } as unknown as Parameters<typeof trackProgress>[0];

describe('progress outside the guide', () => {
  it('says step N of M, elapsed, and the ETA the engine reported, counted down', () => {
    expect(formatStepStatus({ n: 2, of: 3, elapsedMs: 12_000 })).toBe('step 2 of 3, 12 s');
    expect(formatStepStatus({ n: 2, of: 3, elapsedMs: 12_000, etaMs: 8_000 })).toBe('step 2 of 3, 12 s, about 8.0 s left');
    expect(formatStepStatus({ n: 2, of: 3, elapsedMs: 12_000, etaMs: -5 })).toBe('step 2 of 3, 12 s');

    const bus = new EventBus();
    const p = trackProgress(plan, bus);
    expect(p.position('pg-restore')).toEqual({ n: 2, of: 3 });
    const started = performance.now();
    bus.emit({ type: 'step-started', stepId: 'pg-restore', title: 'Restore PostgreSQL' });
    expect(p.status('pg-restore', started, started + 3_000)).toBe('step 2 of 3, 3.0 s');
    bus.emit({ type: 'progress', stepId: 'pg-restore', unit: 'items', done: 5, total: 10, etaMs: 20_000 });
    const at = performance.now();
    // 5 s after the estimate: 15 s left.
    expect(p.status('pg-restore', started, at + 5_000)).toMatch(/^step 2 of 3, \d+(\.\d)? s, about 15 s left$/);
    p.dispose();
  });

  it('the plain renderer numbers step lines and says how long a step has run on its progress lines', () => {
    const bus = new EventBus();
    const lines: string[] = [];
    const off = attachLineRenderer(bus, { write: (l) => lines.push(l), steps: plan.steps.map((s) => s.id) });
    bus.emit({ type: 'step-started', stepId: 'pg-restore', title: 'Restore PostgreSQL' });
    bus.emit({ type: 'progress', stepId: 'pg-restore', unit: 'items', done: 10, total: 10, etaMs: 0 });
    off();
    expect(lines[0]).toMatch(/^\d\d:\d\d:\d\d … \[step 2 of 3\] Restore PostgreSQL$/);
    expect(lines[1]).toMatch(/10 of 10 items done \(100%\) \[step 2 of 3, \d+ ms in\]$/);
    // No colour unless asked (NO_COLOR is decided by the caller: output.ts colorEnabled).
    expect(lines.join('')).not.toMatch(/\u001b\[/);
  });
});

describe('command lines outside the guide', () => {
  const base = {
    ts: '2026-12-01T03:00:00.000Z',
    seq: 1,
    type: 'command-finished' as const,
    stepId: 'redis:stop',
    argv: ['redis-ctl', 'status'],
    signal: null,
    durationMs: 63,
    timedOut: false,
    stdoutTail: [],
    stderrTail: ['stopped'],
  };
  const plain = (_s: string, t: string): string => t;
  it('an expected status (a wait polling a stopped service, exit 3) is not shown as a failure', () => {
    expect(formatEventLine({ ...base, exitCode: 3, ok: true } as never, plain)).toBeUndefined();
  });
  it('a failed command is shown with its exit, and older evidence without `ok` as before', () => {
    expect(formatEventLine({ ...base, exitCode: 3, ok: false } as never, plain)).toContain('exit 3 after 63 ms');
    expect(formatEventLine({ ...base, exitCode: 3 } as never, plain)).toContain('exit 3');
    expect(formatEventLine({ ...base, exitCode: 0 } as never, plain)).toBeUndefined();
  });
});
