import { describe, expect, it } from 'vitest';
import { interruptTracker } from '../../source/session/interrupts.js';

describe('interrupts during a run', () => {
  it('the first rolls back; a second within 3 s is absorbed and says what one more costs; a further one stops waiting', () => {
    const t = interruptTracker(() => 0);
    expect(t.next('SIGINT', 0).decision).toBe('rollback');
    const second = t.next('SIGINT', 200);
    expect(second.decision).toBe('absorbed');
    expect(second.line).toMatch(/One more stops waiting: the rollback is abandoned/);
    expect(t.next('SIGINT', 400).decision).toBe('stop-waiting');
    expect(t.next('SIGINT', 500).decision).toBe('ignored');
  });

  it('a second after 3 s stops waiting; SIGHUP and SIGTERM count like Ctrl-C', () => {
    const t = interruptTracker(() => 0);
    expect(t.next('SIGHUP', 0).decision).toBe('rollback');
    expect(t.next('SIGTERM', 3500).decision).toBe('stop-waiting');
  });
});
