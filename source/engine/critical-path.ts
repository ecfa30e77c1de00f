import { formatDuration } from '../output.js';

/**
 * The RTO's critical path (issue 14), from when each step started and ended: the chain of steps
 * that gated each other up to the last one (each one's predecessor is the step that ended last
 * before it started), the waits between them, and the long pole (the longest step on the chain)
 * with how much longer it ran than the work beside it. Pure; the engine's summary and report.md
 * both compute it, the one from its step records, the other from the run's events.
 */

export interface TimedStep {
  stepId: string;
  title: string;
  /** ms from the clock's origin (the RTO clock start). */
  startMs: number;
  endMs: number;
}

export interface CriticalPathStep {
  stepId: string;
  title: string;
  startMs: number;
  durationMs: number;
  /** Time between the previous step on the path (or the origin) ending and this one starting. */
  waitedMs: number;
}

export interface CriticalPath {
  /** In the order they ran. */
  steps: CriticalPathStep[];
  /** From the origin to the end of the last step. */
  spanMs: number;
  longPole: {
    stepId: string;
    title: string;
    durationMs: number;
    /** durationMs / spanMs. */
    share: number;
    /** How much later it ended than the last step that ran beside it (absent: nothing ran beside it). */
    aheadMs?: number;
    /** That step. */
    beside?: { stepId: string; title: string };
  };
}

/** Steps that end this close before another starts are taken as its predecessor (events are ms-rounded). */
const TOLERANCE_MS = 5;

export function criticalPath(steps: readonly TimedStep[], originMs = 0): CriticalPath | undefined {
  const timed = steps.filter((s) => Number.isFinite(s.startMs) && Number.isFinite(s.endMs) && s.endMs >= s.startMs);
  if (timed.length === 0) return undefined;
  const byEnd = (a: TimedStep, b: TimedStep): number => a.endMs - b.endMs || a.endMs - a.startMs - (b.endMs - b.startMs);
  let current: TimedStep | undefined = [...timed].sort(byEnd).at(-1)!;
  const chain: TimedStep[] = [];
  const seen = new Set<TimedStep>();
  while (current && !seen.has(current)) {
    seen.add(current);
    chain.unshift(current);
    const start: number = current.startMs;
    current = timed
      .filter((s) => !seen.has(s) && s.endMs <= start + TOLERANCE_MS && s.startMs < start + TOLERANCE_MS)
      .sort(byEnd)
      .at(-1);
  }
  const pathSteps: CriticalPathStep[] = chain.map((s, i) => ({
    stepId: s.stepId,
    title: s.title,
    startMs: s.startMs,
    durationMs: s.endMs - s.startMs,
    waitedMs: Math.max(0, s.startMs - (i === 0 ? originMs : chain[i - 1]!.endMs)),
  }));
  const spanMs = Math.max(0, chain.at(-1)!.endMs - originMs);
  const pole = chain.reduce((a, b) => (b.endMs - b.startMs > a.endMs - a.startMs ? b : a));
  const besides = timed.filter((s) => !seen.has(s) && s.startMs < pole.endMs && s.endMs > pole.startMs).sort(byEnd);
  const beside = besides.at(-1);
  const durationMs = pole.endMs - pole.startMs;
  return {
    steps: pathSteps,
    spanMs,
    longPole: {
      stepId: pole.stepId,
      title: pole.title,
      durationMs,
      share: spanMs > 0 ? durationMs / spanMs : 0,
      ...(beside ? { aheadMs: Math.max(0, pole.endMs - beside.endMs), beside: { stepId: beside.stepId, title: beside.title } } : {}),
    },
  };
}

/** "Restore PostgreSQL database x, 18.2 s of 28.5 s (64%); it ended 12.3 s after the work beside it (Count the restored Redis keys)". */
export function longPoleLine(cp: CriticalPath): string {
  const p = cp.longPole;
  const share = `${Math.round(p.share * 100)}%`;
  const beside =
    p.aheadMs !== undefined && p.beside
      ? `; it ended ${formatDuration(p.aheadMs)} after the last step beside it (${p.beside.title})`
      : '; nothing ran beside it';
  return `${p.title}, ${formatDuration(p.durationMs)} of ${formatDuration(cp.spanMs)} (${share})${beside}`;
}

/** The path as one line: "Run preflight checks 0.3 s -> ... -> Run health checks 1.2 s" (waits over 1 s named). */
export function pathLine(cp: CriticalPath): string {
  return cp.steps
    .map((s) => `${s.waitedMs >= 1000 ? `(waited ${formatDuration(s.waitedMs)}) ` : ''}${s.title} ${formatDuration(s.durationMs)}`)
    .join(' -> ');
}
