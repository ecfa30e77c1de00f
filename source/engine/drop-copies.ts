import { lstat } from 'node:fs/promises';
import path from 'node:path';
import type { PlannedAction } from '../actions/types.js';
import type { Plan, SafetyCopy } from '../plan/types.js';
import type { EngineEventBody } from './events.js';
import type { StepRecord } from './step.js';
import { keptCopies } from './summary.js';
import { shellQuote } from '../text/shell.js';
import { decodeIdentity, removeIfOwn } from './path-identity.js';

async function pathExists(p: string): Promise<boolean> {
  try {
    await lstat(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * After a healthy restore with --drop-safety-copies: the plan's cleanup steps did the work when it
 * had any; otherwise moved directories on this host are removed here. Others are reported.
 */
/** The run fact each path of a step's safety copy was recorded under (moves' `recordAs`, record-identity). */
function recordedFacts(plan: Plan, copy: SafetyCopy): Map<string, string> {
  const out = new Map<string, string>();
  for (const step of plan.steps) {
    if (step.safetyCopy !== copy && step.safetyCopy?.location !== copy.location) continue;
    for (const a of step.actions as PlannedAction[]) {
      if (a.type === 'move' && a.recordAs) out.set(a.to, a.recordAs);
      if (a.type === 'record-identity') for (const x of a.paths) out.set(x.path, x.recordAs);
    }
  }
  return out;
}

export async function dropCopies(
  plan: Plan,
  records: Map<string, StepRecord>,
  emit: (body: EngineEventBody) => void,
  facts: ReadonlyMap<string, string> = new Map(),
): Promise<{ dropped: SafetyCopy[]; problems: string[] }> {
  const cleanupSteps = plan.steps.filter((s) => s.phase === 'cleanup');
  const copies = keptCopies(plan, records);
  if (cleanupSteps.length > 0) {
    const ok = cleanupSteps.every((s) => records.get(s.id)?.status === 'done');
    return ok
      ? { dropped: copies, problems: [] }
      : { dropped: [], problems: ['Removing the safety copies did not complete: see the cleanup step above.'] };
  }
  const dropped: SafetyCopy[] = [];
  const problems: string[] = [];
  for (const copy of copies) {
    // Files and directories on this host (moved data dirs, a safety dump); a location may list several.
    const paths = copy.kind === 'move' || copy.kind === 'dump' ? copy.location.split(', ').filter((p) => path.isAbsolute(p)) : [];
    if (paths.length === 0) {
      problems.push(`The safety copy ${copy.location} (${copy.description}) was kept: the plan has no step that removes it.`);
      continue;
    }
    const failed: string[] = [];
    const factOf = recordedFacts(plan, copy);
    for (const p of paths) {
      if (!(await pathExists(p))) continue;
      // By identity: only what this run moved aside (or dumped) there, never whatever has the name now.
      const fact = factOf.get(p);
      try {
        await removeIfOwn(p, fact ? decodeIdentity(facts.get(fact)) : undefined);
        emit({ type: 'log', level: 'info', message: `safety copy removed: ${p}` });
      } catch (error) {
        failed.push(p);
        problems.push(
          `Did not remove the safety copy ${p}: ${(error as Error).message}. Check what it is; once you know it is not needed: rm -rf -- ${shellQuote(p)}`,
        );
      }
    }
    if (failed.length === 0) dropped.push(copy);
  }
  return { dropped, problems };
}
