import type { EngineEvent, Outcome, RunKind } from '../engine/events.js';
import type { RunSummary } from '../engine/summary.js';
import { formatAge, formatDuration } from '../output.js';
import type { Plan, SafetyCopy } from '../plan/types.js';
import { sanitizeDeep } from '../text/sanitize.js';
import { shellJoin } from '../text/shell.js';
import type { RunReport } from './report.js';
import { rtoSpanLabel } from './rto.js';

/**
 * The closing block: a few plain-text lines to paste into the incident channel once a restore or a
 * drill has ended — verdict, recipe, set and its time, RPO, RTO against the targets, health checks,
 * where the evidence and the safety copies are, and the one command to run next. The same text
 * ends `restore` / `drill` output (stdout), report.md, and the guide's summary screen:
 *
 *   formatClosing(closingFromRun({ summary, plan, evidenceDir, events: bus.history }))  // right after a run
 *   formatClosing(closingFromReport(report))                                           // from evidence
 *
 * No colour, no control characters (every field is sanitised), nothing wider than the facts.
 */

export interface ClosingFacts {
  kind: RunKind;
  recipe: string;
  /** How the next command names the recipe (default: the recipe file, which works from any directory). */
  recipeRef: string;
  outcome: Outcome;
  /** false: the run never recorded its end (killed). */
  finished: boolean;
  exitCode: number | null;
  error: string | null;
  backup: { id: string; time: string } | null;
  rpoMs: number | null;
  rpoTargetMinutes: number | null;
  rtoMs: number | null;
  rtoTargetMinutes: number | null;
  healthChecks: Array<{ name: string; ok: boolean }>;
  evidenceDir: string | null;
  safetyCopies: SafetyCopy[];
}

export const CLOSING_RULE = '-----';

function verdict(f: ClosingFacts): string {
  if (!f.finished) return 'UNKNOWN: the run never recorded its end (killed?); check every target before acting';
  const drill = f.kind === 'drill';
  switch (f.outcome) {
    case 'restored':
      return drill ? 'DRILL PASSED: the backup restored and its checks passed' : 'RESTORED and healthy';
    case 'unhealthy':
      return 'RESTORED, but health checks FAILED (restored state kept)';
    case 'rolled-back':
      return 'FAILED and rolled back (targets as before the run)';
    case 'rollback-incomplete':
      return 'FAILED, ROLLBACK INCOMPLETE: manual action needed';
    case 'failed':
      return 'DRILL FAILED: the backup did not restore cleanly';
    case 'interrupted':
      return drill ? 'INTERRUPTED (scratch services discarded)' : 'INTERRUPTED and rolled back';
    case 'cancelled':
      return drill ? 'DRILL CANCELLED before it started: nothing was restored' : 'CANCELLED before the first step: nothing was touched';
    case 'refused':
      return drill ? 'DRILL REFUSED: nothing was restored' : 'REFUSED: nothing was touched';
    case 'verified':
      return 'VERIFIED';
    case 'rejected':
      return 'REJECTED';
    case 'dropped':
      return 'SAFETY COPIES DROPPED';
  }
}

function against(text: string, ms: number, targetMinutes: number | null): string {
  if (targetMinutes === null) return `${text} (no target set)`;
  return `${text} (target ${formatDuration(targetMinutes * 60_000)}: ${ms <= targetMinutes * 60_000 ? 'met' : 'MISSED'})`;
}

/** The one command to run next, for this outcome (it works when pasted: full recipe path, quoted). */
export function closingNextCommand(f: ClosingFacts): string {
  const ra = (...args: string[]): string => shellJoin(['restore-assistant', ...args]);
  if (!f.finished || f.outcome === 'rollback-incomplete') return ra('recover', '--recipe', f.recipeRef);
  if (f.outcome === 'interrupted' || f.outcome === 'cancelled')
    return f.kind === 'drill'
      ? ra('drill', '--recipe', f.recipeRef, ...(f.backup ? ['--backup', f.backup.id] : []))
      : ra('restore', '--recipe', f.recipeRef, ...(f.backup ? ['--backup', f.backup.id] : []));
  if (!f.evidenceDir) return ra('history', '--recipe', f.recipeRef);
  // A good run: prove the record is intact; any other: read what happened, command by command.
  return f.outcome === 'restored' ? ra('evidence', 'verify', f.evidenceDir) : ra('report', f.evidenceDir);
}

/** The closing block's lines (no trailing newline). */
export function formatClosing(raw: ClosingFacts): string {
  const f = sanitizeDeep(raw);
  const what = f.kind === 'drill' ? 'drill' : f.kind === 'verify' ? 'verification' : 'restore';
  const lines = [`${CLOSING_RULE} restore-assistant ${what} of ${f.recipe} ${CLOSING_RULE}`];
  const row = (label: string, value: string): void => {
    // A continuation row (the second safety copy, ...) has no label, and no lone colon either.
    lines.push(`${(label ? `${label}:` : '').padEnd(15)}${value}`);
  };
  row('Verdict', `${verdict(f)}${f.exitCode !== null ? ` (exit ${f.exitCode})` : ''}`);
  if (f.error && f.outcome !== 'restored') row('Why', f.error);
  row('Recipe', f.recipe);
  row('Set', f.backup ? `${f.backup.id}, taken ${f.backup.time}` : 'none');
  row('RPO', f.rpoMs === null ? 'not measured' : against(`${formatAge(f.rpoMs)} of data lost at most`, f.rpoMs, f.rpoTargetMinutes));
  const rtoMeasured = f.outcome === 'restored' || f.outcome === 'unhealthy';
  row(
    'RTO',
    f.rtoMs === null || !rtoMeasured
      ? 'not achieved'
      : f.outcome === 'unhealthy'
        ? `not achieved (health checks failed; ${formatDuration(f.rtoMs)} ${rtoSpanLabel(f.kind, f.outcome)})`
        : against(`${formatDuration(f.rtoMs)} ${rtoSpanLabel(f.kind)}`, f.rtoMs, f.rtoTargetMinutes),
  );
  const passed = f.healthChecks.filter((h) => h.ok).map((h) => h.name);
  const failed = f.healthChecks.filter((h) => !h.ok).map((h) => h.name);
  row(
    'Health checks',
    f.healthChecks.length === 0
      ? 'none ran'
      : `${passed.length} of ${f.healthChecks.length} passed${failed.length > 0 ? `; FAILED: ${failed.join(', ')}` : ''}${passed.length > 0 ? ` (passed: ${passed.join(', ')})` : ''}`,
  );
  row('Evidence', f.evidenceDir ?? 'not written');
  const copies = f.safetyCopies.filter((c) => c.kind !== 'none');
  if (copies.length === 0) row('Safety copies', f.kind === 'drill' ? 'none (scratch services)' : 'none kept');
  else for (const [i, c] of copies.entries()) row(i === 0 ? 'Safety copies' : '', `${c.location} (${c.component}: ${c.description})`);
  row('Next', closingNextCommand(f));
  lines.push(CLOSING_RULE.repeat(3));
  return lines.join('\n');
}

/** The closing facts of a run that just ended (restore, drill, the guide): its summary, plan and events (the bus's history). */
export function closingFromRun(input: {
  summary: RunSummary;
  plan: Plan;
  evidenceDir: string | null;
  events: readonly EngineEvent[];
  recipeRef?: string;
}): ClosingFacts {
  const { summary, plan } = input;
  const checks = new Map<string, boolean>();
  for (const e of input.events) if (e.type === 'health-check') checks.set(e.name, e.ok);
  return {
    kind: plan.mode,
    recipe: plan.recipe.name,
    recipeRef: input.recipeRef ?? plan.recipe.file,
    outcome: summary.outcome,
    finished: true,
    exitCode: summary.exitCode,
    error: summary.error ?? null,
    backup: { id: plan.backup.id, time: plan.backup.time },
    rpoMs: summary.rpoMs ?? null,
    rpoTargetMinutes: plan.objectives.rpoMinutes ?? null,
    rtoMs: summary.rtoMs ?? null,
    rtoTargetMinutes: plan.objectives.rtoMinutes ?? null,
    healthChecks: [...checks].map(([name, ok]) => ({ name, ok })),
    evidenceDir: input.evidenceDir,
    safetyCopies: summary.safetyCopies,
  };
}

/** The closing facts of a recorded run (report.md, `report`). */
export function closingFromReport(r: RunReport, recipeRef?: string): ClosingFacts {
  const checks = new Map<string, boolean>();
  for (const h of r.healthChecks) checks.set(h.name, h.ok);
  return {
    kind: r.kind,
    recipe: r.recipe.name,
    recipeRef: recipeRef ?? r.recipe.file,
    outcome: r.outcome,
    finished: r.finished,
    exitCode: r.exitCode,
    error: r.error,
    backup: r.backup ? { id: r.backup.id, time: r.backup.time } : null,
    rpoMs: r.rpo.measuredMs,
    rpoTargetMinutes: r.rpo.targetMinutes,
    rtoMs: r.rto.measuredMs,
    rtoTargetMinutes: r.rto.targetMinutes,
    healthChecks: [...checks].map(([name, ok]) => ({ name, ok })),
    evidenceDir: r.evidence.dir,
    safetyCopies: r.safetyCopies,
  };
}
