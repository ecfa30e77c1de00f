import type { EngineEvent } from '../engine/events.js';
import { closingFromRun, formatClosing } from '../evidence/closing.js';
import { sanitizeText } from '../text/sanitize.js';
import { outcomeLabel } from './format.js';
import type { SummaryState } from './wizard.js';

/**
 * The guide's summary shows the closing block to paste into the incident channel: the very text
 * `restore` and `drill` end with and report.md holds (evidence/closing.ts): verdict, recipe, set and
 * its time, RPO, RTO against the targets, health checks, where the evidence and the safety copies
 * are, and the one next command. Here it is only split into label and value for the screen.
 */

/** Width of "Safety copies: " in formatClosing's rows. */
export const INCIDENT_LABEL_WIDTH = 15;

/** The screen's own first line: "Restore of demo from SET: restored, healthy (exit 0)". */
export function verdictLine(state: SummaryState): string {
  const { summary } = state.result;
  const noun = state.plan.mode === 'drill' ? 'Drill' : 'Restore';
  return sanitizeText(
    `${noun} of ${state.plan.recipe.name} from ${state.plan.backup.id}: ${outcomeLabel[summary.outcome]} (exit ${summary.exitCode})`,
  );
}

/** The closing block as plain lines (what p prints). */
export function incidentBlock(state: SummaryState): string[] {
  // The health checks as the run view folded them, as the events closingFromRun reads.
  const events = (state.view?.health ?? []).map(
    (h) =>
      ({
        type: 'health-check',
        name: h.name,
        ok: h.ok,
        attempts: h.attempts,
        durationMs: h.durationMs,
        detail: h.detail,
        ts: '',
        t: 0,
      }) as EngineEvent,
  );
  return formatClosing(
    closingFromRun({
      summary: state.result.summary,
      plan: state.plan,
      evidenceDir: state.result.evidenceDir ?? null,
      events,
      recipeRef: state.chosen.recipe.file,
    }),
  ).split('\n');
}

export interface IncidentLine {
  /** "" for a rule line or a continuation row. */
  label: string;
  text: string;
}

/** The block's lines split into label and value (rule lines: all in `text`). */
export function incidentLines(state: SummaryState): IncidentLine[] {
  return incidentBlock(state).map((line) =>
    line.startsWith('-----')
      ? { label: '', text: line }
      : { label: line.slice(0, INCIDENT_LABEL_WIDTH).trimEnd(), text: line.slice(INCIDENT_LABEL_WIDTH) },
  );
}
