import { vi } from 'vitest';
import { EventBus, type Outcome, type RunKind } from '../../source/engine/events.js';
import { createRedactor } from '../../source/exec/redact.js';
import { attachEvidence, newRunId } from '../../source/evidence/writer.js';

/**
 * Evidence of a past run, written by the real evidence writer with the clock set to when it ran
 * (only Date is faked, for the duration of the write). For history, fleet and alert tests that need
 * runs from days or months ago.
 */
export async function recordPastRun(o: {
  evidenceDir: string;
  recipe: string;
  kind: RunKind;
  host: string;
  startedAt: Date;
  durationMs: number;
  outcome: Outcome;
  exitCode: number;
  rtoMs?: number;
  backupTime?: Date;
  intervalDays?: number;
  rtoMinutes?: number;
}): Promise<string> {
  vi.useFakeTimers({ toFake: ['Date'] });
  try {
    vi.setSystemTime(o.startedAt);
    const bus = new EventBus();
    const runId = newRunId(o.kind, o.recipe, o.startedAt);
    const recipe = { name: o.recipe, file: `/etc/restore-assistant/${o.recipe}.yaml`, digest: '0'.repeat(64) };
    const h = attachEvidence(bus, {
      evidenceDir: o.evidenceDir,
      runId,
      kind: o.kind,
      recipe,
      host: o.host,
      redact: createRedactor([]),
      ...(o.rtoMinutes !== undefined ? { objectives: { rtoMinutes: o.rtoMinutes } } : {}),
      ...(o.intervalDays !== undefined ? { drillIntervalDays: o.intervalDays } : {}),
    });
    const backupTime = o.backupTime ?? new Date(o.startedAt.getTime() - 3_600_000);
    bus.emit({
      type: 'run-started',
      runId,
      kind: o.kind,
      operator: 'ci',
      host: o.host,
      toolVersion: 't',
      recipe,
      backup: { id: backupTime.toISOString().slice(0, 10), time: backupTime.toISOString(), location: '/backups' },
      confirmedAt: o.startedAt.toISOString(),
    });
    vi.setSystemTime(new Date(o.startedAt.getTime() + o.durationMs));
    bus.emit({
      type: 'run-finished',
      outcome: o.outcome,
      exitCode: o.exitCode,
      ...(o.rtoMs !== undefined ? { rtoMs: o.rtoMs } : {}),
      rpoMs: o.startedAt.getTime() - backupTime.getTime(),
      safetyCopies: [],
      state: [],
      nextSteps: [],
    });
    await h.close();
    if (!h.sealed) throw new Error(`evidence of ${runId} did not seal: ${h.errors.join('; ')}`);
    return runId;
  } finally {
    vi.useRealTimers();
  }
}
