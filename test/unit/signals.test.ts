import { afterEach, describe, expect, it } from 'vitest';
import { RestoreAssistantError } from '../../source/errors.js';
import { ExitCode } from '../../source/exit-codes.js';
import { ownCommandSignals, ownProcessSignals, SESSION_SIGNALS } from '../../source/session/signals.js';

/**
 * The signal owner's logic, with signals delivered to this process's listeners (process.emit: no
 * real signal is raised). The real-process behaviour is in test/integration/signals.test.ts.
 */

const releases: Array<() => void> = [];
afterEach(() => {
  for (const r of releases.splice(0)) r();
});

function owner(what = 'the restore'): { signals: ReturnType<typeof ownCommandSignals>; lines: string[] } {
  const lines: string[] = [];
  const signals = ownCommandSignals({ notify: (l) => lines.push(l), what, again: 'restore-assistant restore --recipe shop --yes' });
  releases.push(() => signals.dispose());
  return { signals, lines };
}

describe('the command signal owner', () => {
  it('listens for SIGINT, SIGTERM and SIGHUP only while it is owned', () => {
    const before = SESSION_SIGNALS.map((s) => process.listenerCount(s));
    const { signals } = owner();
    expect(SESSION_SIGNALS.map((s) => process.listenerCount(s))).toEqual(before.map((n) => n + 1));
    signals.dispose();
    expect(SESSION_SIGNALS.map((s) => process.listenerCount(s))).toEqual(before);
  });

  it('before the run the first signal cancels (exit cancelled, nothing touched); a further one only says so', () => {
    const { signals, lines } = owner();
    signals.throwIfCancelled('the verification');
    process.emit('SIGTERM', 'SIGTERM');
    expect(signals.cancel.aborted).toBe(true);
    expect(signals.cancelledBy).toBe('SIGTERM');
    expect(lines.at(-1)).toContain('SIGTERM received: cancelling the restore; nothing has been touched.');
    process.emit('SIGINT', 'SIGINT');
    expect(lines.at(-1)).toContain('Ctrl-C received again: already cancelling');
    let error: unknown;
    try {
      signals.throwIfCancelled('the verification of backup set S');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(RestoreAssistantError);
    const e = error as RestoreAssistantError;
    expect(e.exitCode).toBe(ExitCode.cancelled);
    expect(e.message).toBe('SIGTERM received during the verification of backup set S: cancelled before anything was touched.');
    expect(e.untouched).toMatch(/the locks it took are released/);
    expect(e.next).toContain('restore-assistant restore --recipe shop --yes');
  });

  it('during the run: the first rolls back, a second within 3 s is absorbed, a further one stops waiting; after the run a signal is only said', () => {
    const { signals, lines } = owner();
    const run = signals.startRun();
    process.emit('SIGHUP', 'SIGHUP');
    expect(run.signal.aborted).toBe(true);
    expect(signals.cancel.aborted).toBe(false);
    process.emit('SIGINT', 'SIGINT');
    expect(run.stopSignal.aborted).toBe(false);
    expect(lines.at(-1)).toMatch(/within 3 s: ignored, the rollback goes on/);
    process.emit('SIGINT', 'SIGINT');
    expect(run.stopSignal.aborted).toBe(true);
    expect(run.received).toEqual(['SIGHUP', 'SIGINT', 'SIGINT']);
    run.dispose();
    process.emit('SIGTERM', 'SIGTERM');
    expect(signals.cancel.aborted).toBe(false);
    expect(lines.at(-1)).toContain('SIGTERM received: the restore has done its work; finishing up');
  });

  it('owners stack: only the innermost hears a signal, the outer one gets them back when it is released', () => {
    const outer = owner('the demo');
    const heard: string[] = [];
    const releaseInner = ownProcessSignals((s) => heard.push(s));
    process.emit('SIGINT', 'SIGINT');
    expect(heard).toEqual(['SIGINT']);
    expect(outer.signals.cancel.aborted).toBe(false);
    releaseInner();
    process.emit('SIGINT', 'SIGINT');
    expect(heard).toEqual(['SIGINT']);
    expect(outer.signals.cancel.aborted).toBe(true);
  });

  it('a Ctrl-C typed at a prompt is delivered as SIGINT', () => {
    const { signals, lines } = owner();
    signals.deliver('SIGINT');
    expect(signals.cancelledBy).toBe('SIGINT');
    expect(lines.at(-1)).toContain('Ctrl-C received: cancelling the restore');
  });
});
