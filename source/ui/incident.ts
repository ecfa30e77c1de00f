import { shellQuote } from '../text/shell.js';
import { sanitizeText } from '../text/sanitize.js';
import { formatAge, formatDuration, formatMinutes, formatUtc, outcomeLabel } from './format.js';
import type { SummaryState } from './wizard.js';

/**
 * The closing block to paste into the incident channel (issue 12): verdict, recipe, set and its
 * time, RPO, RTO against the targets, health checks, where the evidence and the safety copies are,
 * and the one next command. Pure; plain text (no colour, no symbols that need a font), one fact a
 * line, never wrapped here (the screen wraps; a paste keeps whole lines).
 */

export const INCIDENT_LABEL_WIDTH = 10;

/** "3.4 s from confirm to healthy (target 15m: met)". */
export function objective(ms: number | undefined, targetMinutes: number | undefined, what: string, fmt: (n: number) => string): string {
  if (ms === undefined) return `not measured (${what})`;
  const target =
    targetMinutes === undefined ? '' : ` (target ${formatMinutes(targetMinutes)}: ${ms <= targetMinutes * 60_000 ? 'met' : 'MISSED'})`;
  return `${fmt(ms)} ${what}${target}`;
}

export interface IncidentLine {
  label: string;
  text: string;
}

/** The verdict: "Restore of demo from SET: restored, healthy (exit 0)". */
export function verdictLine(state: SummaryState): string {
  const { summary } = state.result;
  const noun = state.plan.mode === 'drill' ? 'Drill' : 'Restore';
  return sanitizeText(
    `${noun} of ${state.plan.recipe.name} from ${state.plan.backup.id}: ${outcomeLabel[summary.outcome]} (exit ${summary.exitCode})`,
  );
}

/** The one command to run next, and (when there are more) where the rest is. */
export function nextCommand(state: SummaryState): { command: string; then?: string } {
  const { summary, evidenceDir } = state.result;
  const report = evidenceDir ? `restore-assistant report ${shellQuote(evidenceDir)}` : undefined;
  const manual = summary.manualSteps ?? [];
  if (summary.outcome === 'rollback-incomplete' && manual.length > 0) {
    const first = manual[0] ?? '';
    return manual.length > 1 || report
      ? {
          command: first,
          then: `${manual.length - 1} more step${manual.length === 2 ? '' : 's'} by hand, in order${report ? `: ${report}` : ''}`,
        }
      : { command: first };
  }
  if (report) return { command: report };
  return { command: `restore-assistant guide --recipe ${shellQuote(state.chosen.recipe.file)}` };
}

export function incidentLines(state: SummaryState): IncidentLine[] {
  const { summary, evidenceDir } = state.result;
  const objectives = state.plan.objectives;
  const health = state.view?.health ?? [];
  const failed = health.filter((h) => !h.ok).map((h) => h.name);
  const lines: IncidentLine[] = [
    { label: 'Recipe', text: `${state.plan.recipe.name} (${state.chosen.recipe.file})` },
    { label: 'Set', text: `${state.plan.backup.id}, taken ${formatUtc(state.plan.backup.time)}` },
    {
      label: 'Confirmed',
      text: `${formatUtc(state.confirmedAt)}${state.view?.operator ? ` by ${state.view.operator}` : ''}${state.view?.host ? ` on ${state.view.host}` : ''}`,
    },
    { label: 'RPO', text: objective(summary.rpoMs, objectives.rpoMinutes, 'of changes lost', formatAge) },
    {
      label: 'RTO',
      text: objective(
        summary.rtoMs,
        objectives.rtoMinutes,
        summary.outcome === 'unhealthy' ? 'from confirm to the end of the failed checks' : 'from confirm to healthy',
        formatDuration,
      ),
    },
    {
      label: 'Health',
      text:
        health.length === 0
          ? summary.outcome === 'restored' || summary.outcome === 'unhealthy'
            ? 'no health check results recorded'
            : 'not reached'
          : failed.length === 0
            ? `${health.length} of ${health.length} checks passed`
            : `${failed.length} of ${health.length} FAILED: ${failed.join(', ')}`,
    },
    { label: 'Evidence', text: evidenceDir ?? 'none written' },
  ];
  // One safety copy a line (the label on the first): each location whole, to paste.
  if (summary.safetyCopies.length === 0) lines.push({ label: 'Copies', text: 'none kept' });
  summary.safetyCopies.forEach((c, i) => lines.push({ label: i === 0 ? 'Copies' : '', text: `${c.component}: ${c.location}` }));
  const next = nextCommand(state);
  lines.push({ label: 'Next', text: next.command });
  if (next.then) lines.push({ label: 'Then', text: next.then });
  return lines.map((l) => ({ label: l.label, text: sanitizeText(l.text) }));
}

/** The whole block as plain lines: the verdict, then one "Label     text" line per fact. */
export function incidentBlock(state: SummaryState): string[] {
  return [verdictLine(state), ...incidentLines(state).map((l) => `${l.label.padEnd(INCIDENT_LABEL_WIDTH)}${l.text}`)];
}
