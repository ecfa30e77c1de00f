import type { RunKind } from '../engine/events.js';

/**
 * The one definition of RTO (docs/evidence.md, "RTO"), used by the engine (the figure it records),
 * report.json / report.md, history and its trend, the closing block, and the guide:
 *
 * - restore: from the operator's confirmation (the typed word, or `--yes`) to the end of the last
 *   health check. Verification and probing happen before the confirmation and are not in it.
 * - drill: from the start of the engine run (the `run-started` event: the set is verified, the
 *   scratch services are up, the plan is built) to the end of the last health check. Scratch
 *   start-up is an artefact of the drill (a real restore has its targets already), so it is not in
 *   the drill's RTO; what a drill measures is the restore a real incident would run.
 *
 * `drill` and the guide's drill path both run through session.start -> runPlan, which takes its
 * clock from `rtoClockStart`: the same figure whichever surface ran the drill. Screens label the
 * figure with `rtoSpanLabel`.
 */

export type MeasuredKind = Extract<RunKind, 'restore' | 'drill'>;

/** Where the RTO clock starts for a run of this kind. */
export function rtoClockStart(kind: RunKind, at: { confirmedAt?: Date | undefined; runStartedAt: Date }): Date {
  return kind === 'drill' ? at.runStartedAt : (at.confirmedAt ?? at.runStartedAt);
}

/** What the RTO figure spans, for labels ("RTO 41 s, from confirm to healthy"). */
export function rtoSpanLabel(kind: RunKind, outcome?: string): string {
  const from = kind === 'drill' ? 'from the start of the restore into the scratch services' : 'from confirm';
  return outcome === 'unhealthy' ? `${from} to the end of the failed health checks` : `${from} to healthy`;
}

/** The span in report.md's objectives table. */
export function rtoTableLabel(kind: RunKind): string {
  return kind === 'drill' ? 'RTO (restore start to healthy)' : 'RTO (confirm to healthy)';
}

/**
 * A drill's RTO recorded before this definition (its run-started has no `rtoFrom`): `drill` then
 * started the clock at the operator's "y", before verification and scratch start-up. The time
 * from that confirmation to the engine's start is taken off, which gives the figure this
 * definition measures (the end point, the last health check, is the same). Restores, and runs that
 * recorded `rtoFrom`, are returned as recorded.
 */
export function normalizedRtoMs(
  kind: RunKind,
  recordedMs: number | null,
  at: { rtoFrom?: string | null | undefined; confirmedAt?: string | null | undefined; runStartedAt?: string | null | undefined },
): number | null {
  if (recordedMs === null || kind !== 'drill' || at.rtoFrom) return recordedMs;
  const confirmed = at.confirmedAt ? Date.parse(at.confirmedAt) : NaN;
  const started = at.runStartedAt ? Date.parse(at.runStartedAt) : NaN;
  if (Number.isNaN(confirmed) || Number.isNaN(started) || started <= confirmed) return recordedMs;
  return Math.max(0, recordedMs - (started - confirmed));
}
