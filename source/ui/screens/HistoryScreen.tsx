import { Box, Text, useInput } from 'ink';
import { Frame } from '../components/Frame.js';
import { cell, formatAge, formatDuration, formatUtc, outcomeLabel } from '../format.js';
import { footerItems, actionFor } from '../keys.js';
import { useTerminalSize } from '../hooks/use-terminal-size.js';
import { useTheme } from '../theme.js';
import type { GuideHistoryEntry, GuideRtoTrend } from '../types.js';
import type { HistoryState } from '../wizard.js';
import type { ScreenProps } from './RecipeScreen.js';
import { sanitizeBlock } from '../../text/sanitize.js';

type Column = 'started' | 'kind' | 'backup' | 'result' | 'rto' | 'rpo';

const WIDTH: Record<Column, number> = { started: 17, kind: 7, backup: 20, result: 27, rto: 7, rpo: 7 };
const HEADER: Record<Column, string> = { started: 'Started (UTC)', kind: 'Kind', backup: 'Backup', result: 'Result', rto: 'RTO', rpo: 'RPO' };
/** Which columns come first when the terminal is narrow: when, how it ended, how long; then the rest. */
const PRIORITY: Column[] = ['started', 'result', 'rto', 'kind', 'rpo', 'backup'];
const ORDER: Column[] = ['started', 'kind', 'backup', 'result', 'rto', 'rpo'];
const CURSOR = 2;

/** The columns that fit `columns` (never a wrapped header, never a cut result label), in display order. */
export function historyColumns(columns: number): Column[] {
  const chosen = new Set<Column>();
  let used = CURSOR;
  for (const c of PRIORITY) {
    const need = WIDTH[c] + (chosen.size > 0 ? 1 : 0);
    if (used + need > columns) continue;
    chosen.add(c);
    used += need;
  }
  return ORDER.filter((c) => chosen.has(c));
}

function value(e: GuideHistoryEntry, c: Column): string {
  switch (c) {
    case 'started':
      return formatUtc(e.startedAt);
    case 'kind':
      return e.kind;
    case 'backup':
      return e.backupId ?? '—';
    case 'result':
      return outcomeLabel[e.outcome];
    case 'rto':
      return e.rtoMs !== undefined ? formatDuration(e.rtoMs) : '—';
    case 'rpo':
      return e.rpoMs !== undefined ? formatAge(e.rpoMs) : '—';
  }
}

export function historyRow(cols: Column[], cells: (c: Column) => string): string {
  return cols.map((c, i) => (i === cols.length - 1 ? cells(c).slice(0, WIDTH[c]) : cell(cells(c), WIDTH[c]))).join(' ');
}

/** "Drill RTO trend: 4m 0s → 5m 0s → 4m 12s: steady (+5% against the 2 before)". */
export function trendLine(trend: GuideRtoTrend | undefined): string {
  if (!trend || trend.points.length === 0) return 'Drill RTO trend: no successful drill with a measured RTO yet';
  const shown = trend.points.slice(-5).map((p) => formatDuration(p.rtoMs));
  const more = trend.points.length > 5 ? '… → ' : '';
  const before = Math.min(3, trend.points.length - 1);
  const verdict =
    trend.direction === 'n/a' || trend.changePct === null
      ? 'one drill, nothing to compare with'
      : `${trend.direction} (${trend.changePct > 0 ? '+' : ''}${trend.changePct}% against the ${before === 1 ? 'one' : `${before}`} before)`;
  return `Drill RTO trend: ${more}${shown.join(' → ')}: ${verdict}`;
}

/** Past restores and drills of a recipe, newest first, with RTO and RPO and the drill RTO trend; Enter opens a run's report. */
export function HistoryScreen({ state, dispatch, active }: ScreenProps<HistoryState>): React.JSX.Element {
  const theme = useTheme();
  const { rows, columns } = useTerminalSize();
  const open = state.open;
  const page = Math.max(3, rows - 8);
  useInput(
    (input, key) => {
      const action = actionFor(input, key, ['up', 'down', 'pageUp', 'pageDown', 'select', 'back', 'help', 'quit']);
      if (action === 'up') dispatch({ type: 'move', delta: -1 });
      else if (action === 'down') dispatch({ type: 'move', delta: 1 });
      else if (action === 'pageUp') dispatch({ type: 'move', delta: -page });
      else if (action === 'pageDown') dispatch({ type: 'move', delta: page });
      else if (action === 'select') dispatch({ type: 'proceed' });
      else if (action === 'back') dispatch({ type: 'back' });
      else if (action === 'help') dispatch({ type: 'help' });
      else if (action === 'quit') dispatch({ type: 'quit' });
    },
    { isActive: active },
  );

  if (open) {
    const lines = open.lines ?? [];
    const shown = lines.slice(open.offset, open.offset + page);
    return (
      <Frame
        step="History"
        title={`Report of run ${open.entry.runId}`}
        footer={[
          { key: '↑↓/jk', description: 'scroll (PgUp/PgDn: a page)', short: 'scroll' },
          { key: 'Esc', description: 'back to the runs', short: 'back' },
          { key: '?', description: 'help' },
          { key: 'q', description: 'quit' },
        ]}
      >
        {open.error ? (
          <Text color={theme.danger} wrap="wrap">
            The report cannot be shown: {sanitizeBlock(open.error)}
          </Text>
        ) : null}
        {!open.lines && !open.error ? <Text>Report loading…</Text> : null}
        {shown.map((l, i) => (
          <Text key={`${open.offset + i}`} wrap="truncate-end">
            {l === '' ? ' ' : l}
          </Text>
        ))}
        {lines.length > 0 ? (
          <Text color={theme.muted} wrap="truncate-end">
            lines {open.offset + 1}–{Math.min(lines.length, open.offset + page)} of {lines.length}
            {open.entry.dir ? ` · restore-assistant report ${open.entry.dir}` : ''}
          </Text>
        ) : null}
      </Frame>
    );
  }

  const entries = state.entries;
  const cols = historyColumns(Math.max(40, columns));
  const max = Math.max(3, rows - 11);
  // The window of rows around the cursor.
  const start = entries ? Math.min(Math.max(0, state.cursor - max + 1), Math.max(0, entries.length - max)) : 0;
  return (
    <Frame
      step="History"
      title={`Restores and drills of ${state.choice.name}, newest first`}
      footer={entries && entries.length > 0 ? footerItems(['up', 'down', 'select', 'back', 'help', 'quit'], { select: 'open its report' }) : footerItems(['back', 'quit'])}
    >
      {state.error ? <Text color={theme.danger}>{sanitizeBlock(state.error)}</Text> : null}
      {!entries && !state.error ? <Text>History loading…</Text> : null}
      {entries && entries.length === 0 ? (
        <Text wrap="wrap">No restore or drill recorded yet. A drill (restore into throwaway services) is the safe way to get a first measurement.</Text>
      ) : null}
      {entries && entries.length > 0 ? (
        <>
          <Text bold wrap="truncate-end">
            {'  '}
            {historyRow(cols, (c) => HEADER[c])}
          </Text>
          {entries.slice(start, start + max).map((e, i) => {
            const at = start + i === state.cursor;
            return (
              <Text key={e.runId} wrap="truncate-end" bold={at} color={e.outcome === 'restored' ? undefined : theme.warn}>
                {at ? '› ' : '  '}
                {historyRow(cols, (c) => value(e, c))}
              </Text>
            );
          })}
          {entries.length > max ? (
            <Text color={theme.muted} wrap="truncate-end">
              {start + max < entries.length ? `… ${entries.length - start - max} older` : ''}
              {start > 0 ? `${start + max < entries.length ? ' · ' : '… '}${start} newer above` : ''}
            </Text>
          ) : null}
          <Box marginTop={1}>
            <Text wrap="wrap">{trendLine(state.trend)}</Text>
          </Box>
        </>
      ) : null}
    </Frame>
  );
}
