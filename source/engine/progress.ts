import { formatDuration } from '../output.js';
import type { Plan } from '../plan/types.js';
import type { EngineEvent, EventBus } from './events.js';

/**
 * Where a run is, for the displays outside the guide: "step 3 of 12", how long the step has run,
 * and the step's ETA from the engine's own `progress` events (the last etaMs, counted down since
 * it was reported). The terminal display (listr2) retitles each running step with it every second;
 * the plain renderer numbers its step lines.
 */

export interface StepProgress {
  etaMs?: number;
  /** Bus time (ms since the run started) of the last progress event. */
  at: number;
}

export interface RunProgress {
  /** 1-based position of the step in the plan, and the plan's step count. */
  position(stepId: string): { n: number; of: number };
  /** The running step's status text: "step 3 of 12, 12 s, about 8 s left". */
  status(stepId: string, startedAtMs: number, nowMs?: number): string;
  dispose(): void;
}

export function stepPositions(plan: Pick<Plan, 'steps'>): Map<string, number> {
  return new Map(plan.steps.map((s, i) => [s.id, i + 1]));
}

/** "step 3 of 12, 12 s, about 8 s left" (no ETA until the step has reported one). */
export function formatStepStatus(p: { n: number; of: number; elapsedMs: number; etaMs?: number | undefined }): string {
  const eta = p.etaMs !== undefined && p.etaMs > 0 ? `, about ${formatDuration(p.etaMs)} left` : '';
  return `step ${p.n} of ${p.of}, ${formatDuration(Math.max(0, p.elapsedMs))}${eta}`;
}

export function trackProgress(plan: Pick<Plan, 'steps'>, bus: EventBus): RunProgress {
  const positions = stepPositions(plan);
  const last = new Map<string, StepProgress>();
  let latestT = 0;
  let latestWall = performance.now();
  const off = bus.on((e: EngineEvent) => {
    latestT = e.t;
    latestWall = performance.now();
    if (e.type === 'progress') last.set(e.stepId, { ...(e.etaMs !== undefined ? { etaMs: e.etaMs } : {}), at: e.t });
  });
  return {
    position: (stepId) => ({ n: positions.get(stepId) ?? 0, of: plan.steps.length }),
    status(stepId, startedAtMs, nowMs = performance.now()) {
      const p = last.get(stepId);
      // Bus time now: the latest event's t plus the wall time since it.
      const busNow = latestT + (nowMs - latestWall);
      const etaMs = p?.etaMs !== undefined ? p.etaMs - (busNow - p.at) : undefined;
      return formatStepStatus({ n: positions.get(stepId) ?? 0, of: plan.steps.length, elapsedMs: nowMs - startedAtMs, etaMs });
    },
    dispose: off,
  };
}
