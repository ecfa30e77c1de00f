import { Box, Text, useInput, useStdout } from 'ink';
import { useState } from 'react';
import { Frame } from '../components/Frame.js';
import { formatBytes } from '../format.js';
import { utcSeconds } from '../pitr-view.js';
import { sanitizeText } from '../../text/sanitize.js';
import { wrapToWidth } from '../../text/wrap.js';
import { useTerminalSize } from '../hooks/use-terminal-size.js';
import { actionFor } from '../keys.js';
import { incidentLines, INCIDENT_LABEL_WIDTH, verdictLine } from '../incident.js';
import { describeRunState } from '../run-view.js';
import { useTheme } from '../theme.js';
import type { AbandonedState, SummaryState, WizardEvent } from '../wizard.js';

/** One display line of the summary (already wrapped to the screen's width). */
export interface SummaryRow {
  /** The label column (incident block rows); "" for a continuation or a plain line. */
  label?: string;
  text: string;
  color?: string | undefined;
  bold?: boolean;
  /** An empty line between sections. */
  gap?: boolean;
}

/** Lines of the frame around the summary body: breadcrumb, margins, the footer, and one spare row (Ink redraws a frame as tall as the terminal from the top). */
const SUMMARY_CHROME = 7;

/**
 * The summary's body as display lines at `width`, most important first: a point-in-time restore's
 * target and replayed WAL; for a run that did not end healthy, the failed checks and what each
 * target holds; the incident block; then the engine's next steps.
 */
export function summaryRows(state: SummaryState, width: number, colors: { danger?: string | undefined; fail: string }): SummaryRow[] {
  const { summary } = state.result;
  const good = summary.outcome === 'restored';
  const rows: SummaryRow[] = [];
  const push = (text: string, o: Omit<SummaryRow, 'text'> = {}, indent = 0): void => {
    wrapToWidth(text, Math.max(10, width - indent)).forEach((l, i) =>
      rows.push({ ...o, text: `${' '.repeat(i > 0 ? indent : 0)}${l}`, ...(i > 0 ? { label: o.label === undefined ? undefined : '' } : {}) }),
    );
  };
  const gap = (): void => {
    if (rows.length > 0 && !rows.at(-1)?.gap) rows.push({ text: '', gap: true });
  };
  const labelled = (label: string, text: string): void => {
    wrapToWidth(text, Math.max(10, width - INCIDENT_LABEL_WIDTH)).forEach((t, i) => rows.push({ label: i === 0 ? label : '', text: t }));
  };
  const pitr = state.pitr;
  if (pitr) {
    labelled('Target:', `${pitr.label}${good ? `; restored to ${utcSeconds(state.plan.backup.time)}` : ''}`);
    const replay = state.view?.steps.find((s) => s.id === 'postgres:follow-recovery');
    const wal = pitr.segments !== undefined ? `${pitr.segments} segments (${formatBytes(pitr.walBytes ?? 0)}) verified` : '';
    const how = replay?.detail
      ? sanitizeText(replay.detail)
      : replay?.status === 'failed'
        ? `recovery failed: ${sanitizeText(replay.error ?? '')}`
        : 'recovery did not run';
    labelled('Replayed WAL:', [how, wal].filter(Boolean).join('; '));
    gap();
  }
  const failed = (state.view?.health ?? []).filter((h) => !h.ok);
  const stateLines = good && state.plan.mode === 'restore' ? [] : summary.state;
  if (!good) {
    for (const h of failed) push(`${colors.fail} Health check ${h.name}: FAILED (${h.attempts} ${h.attempts === 1 ? 'attempt' : 'attempts'}) ${h.detail}`, { color: colors.danger });
    if (failed.length > 0) gap();
    for (const l of stateLines) push(l);
    if (stateLines.length > 0) gap();
  }
  for (const l of incidentLines(state)) {
    if (l.text.startsWith('-----')) {
      push(l.text);
      continue;
    }
    const color = l.label === 'Health checks:' && failed.length > 0 ? colors.danger : undefined;
    wrapToWidth(l.text, Math.max(10, width - INCIDENT_LABEL_WIDTH)).forEach((t, i) =>
      rows.push({ label: i === 0 ? l.label : '', text: t, color, bold: false }),
    );
  }
  if (good) {
    if (failed.length > 0 || stateLines.length > 0) gap();
    for (const h of failed) push(`${colors.fail} Health check ${h.name}: FAILED (${h.attempts} ${h.attempts === 1 ? 'attempt' : 'attempts'}) ${h.detail}`, { color: colors.danger });
    for (const l of stateLines) push(l);
  }
  if (state.result.notes && state.result.notes.length > 0) {
    gap();
    for (const n of state.result.notes) push(n);
  }
  if (summary.nextSteps.length > 0) {
    gap();
    for (const n of summary.nextSteps) {
      wrapToWidth(n, Math.max(10, width - 2)).forEach((t, i) => rows.push({ text: `${i === 0 ? '- ' : '  '}${t}` }));
    }
  }
  return rows;
}

/**
 * Screen 7: the verdict and the block to paste into the incident channel (recipe, set and its
 * time, RPO, RTO against the targets, health, evidence, safety copies, the one next command), then
 * what each target holds and the engine's next steps. The verdict stays on the first line; what
 * does not fit the terminal scrolls under it (↑↓ j/k, PgUp/PgDn), and p prints it all plainly
 * after the screen (no colour, no frame, whole lines); q, Enter or Esc leave. The exit code is the
 * run's either way.
 */
export function SummaryScreen({
  state,
  dispatch,
  active,
}: {
  state: SummaryState;
  dispatch: (e: WizardEvent) => void;
  active: boolean;
  now?: Date;
}): React.JSX.Element {
  const theme = useTheme();
  const { summary } = state.result;
  const good = summary.outcome === 'restored';
  const bad = summary.outcome === 'rollback-incomplete' || summary.outcome === 'unhealthy';
  const { columns, rows: termRows } = useTerminalSize();
  const { stdout } = useStdout();
  const width = Math.max(40, columns);
  const verdict = wrapToWidth(`${good ? theme.symbols.ok : theme.symbols.fail} ${verdictLine(state)}`, width);
  const body = summaryRows(state, width, { danger: theme.danger, fail: theme.symbols.fail });
  // Only a terminal that says how tall it is gets a window (the tests' renderer and pipes get it all).
  const known = typeof stdout.rows === 'number' && stdout.rows > 0;
  const room = Math.max(4, termRows - SUMMARY_CHROME - verdict.length);
  const scrolls = known && body.length > room;
  const visible = scrolls ? room - 1 : body.length;
  const maxOffset = Math.max(0, body.length - visible);
  const [offset, setOffset] = useState(0);
  const at = Math.min(offset, maxOffset);
  useInput(
    (input, key) => {
      if (input === 'p' && !key.ctrl) dispatch({ type: 'print' });
      else if (scrolls && actionFor(input, key, ['up'])) setOffset(Math.max(0, at - 1));
      else if (scrolls && actionFor(input, key, ['down'])) setOffset(Math.min(maxOffset, at + 1));
      else if (scrolls && actionFor(input, key, ['pageUp'])) setOffset(Math.max(0, at - visible));
      else if (scrolls && actionFor(input, key, ['pageDown'])) setOffset(Math.min(maxOffset, at + visible));
      else if (actionFor(input, key, ['quit'])) dispatch({ type: 'quit' });
      else if (actionFor(input, key, ['select'])) dispatch({ type: 'proceed' });
      else if (actionFor(input, key, ['back'])) dispatch({ type: 'back' });
    },
    { isActive: active && !state.closed },
  );
  const shown = scrolls ? body.slice(at, at + visible) : body;
  return (
    <Frame
      step="Summary"
      footer={
        state.closed
          ? []
          : [
              ...(scrolls ? [{ key: '↑↓/jk', description: 'scroll' }] : []),
              { key: 'p', description: 'print it plainly (to paste)', short: 'print' },
              { key: 'q', description: 'quit' },
            ]
      }
    >
      {verdict.map((l, i) => (
        <Text key={`v${i}`} bold color={good ? theme.ok : bad ? theme.danger : theme.warn} wrap="truncate-end">
          {l}
        </Text>
      ))}
      <Box flexDirection="column" marginTop={1}>
        {shown.map((r, i) =>
          r.label !== undefined ? (
            <Box key={`${at + i}`}>
              <Box width={INCIDENT_LABEL_WIDTH} flexShrink={0}>
                <Text bold={r.label === 'Next:'}>{r.label}</Text>
              </Box>
              <Text color={r.color} wrap="truncate-end">
                {r.text}
              </Text>
            </Box>
          ) : (
            <Text key={`${at + i}`} color={r.color} wrap="truncate-end">
              {r.gap ? ' ' : r.text}
            </Text>
          ),
        )}
        {scrolls ? (
          <Text color={theme.muted} wrap="truncate-end">
            {at + visible < body.length ? '↓ ' : '  '}lines {at + 1}–{at + shown.length} of {body.length}
            {at > 0 ? ' · ↑ more above' : ''} · p prints it all
          </Text>
        ) : null}
      </Box>
    </Frame>
  );
}

/** After a second Ctrl-C: the guide stops waiting and says exactly what it knows. */
export function AbandonedScreen({ state }: { state: AbandonedState }): React.JSX.Element {
  const theme = useTheme();
  const lines = state.view ? describeRunState(state.view, state.plan) : state.plan.steps.map((s) => `${s.title}: unknown`);
  return (
    <Frame step="Summary" footer={[]}>
      <Text bold color={theme.danger}>
        Stopped waiting for the rollback of {state.plan.recipe.name}. The targets may be in a mixed state.
      </Text>
      <Text>State as last reported by the engine:</Text>
      <Box flexDirection="column" marginLeft={2}>
        {lines.map((l, i) => (
          <Text key={i} wrap="wrap">
            {l}
          </Text>
        ))}
      </Box>
      <Text wrap="wrap">Next: check each target above; undo the steps marked done by hand, or re-run the restore. The evidence of this run records every command.</Text>
    </Frame>
  );
}
