import { lstat, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Plan, SafetyCopy } from '../plan/types.js';
import type { EngineEventBody } from './events.js';
import type { StepRecord } from './step.js';
import { keptCopies } from './summary.js';
import { shellQuote } from '../text/shell.js';

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
export async function dropCopies(
  plan: Plan,
  records: Map<string, StepRecord>,
  emit: (body: EngineEventBody) => void,
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
    for (const p of paths) {
      if (!(await pathExists(p))) continue;
      try {
        await rm(p, { recursive: true, force: true });
        emit({ type: 'log', level: 'info', message: `safety copy removed: ${p}` });
      } catch (error) {
        failed.push(p);
        problems.push(`Could not remove the safety copy ${p}: ${(error as Error).message}. Remove it by hand: rm -rf -- ${shellQuote(p)}`);
      }
    }
    if (failed.length === 0) dropped.push(copy);
  }
  return { dropped, problems };
}
