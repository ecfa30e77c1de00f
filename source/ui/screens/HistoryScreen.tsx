import { Text, useInput } from 'ink';
import { Frame } from '../components/Frame.js';
import { cell, formatAge, formatDuration, formatUtc, outcomeLabel } from '../format.js';
import { footerItems, actionFor } from '../keys.js';
import { useTerminalSize } from '../hooks/use-terminal-size.js';
import { useTheme } from '../theme.js';
import type { HistoryState } from '../wizard.js';
import type { ScreenProps } from './RecipeScreen.js';
import { sanitizeBlock } from '../../text/sanitize.js';

/** Past restores and drills of a recipe, newest first, with RTO and RPO. */
export function HistoryScreen({ state, dispatch, active }: ScreenProps<HistoryState>): React.JSX.Element {
  const theme = useTheme();
  const { rows } = useTerminalSize();
  useInput(
    (input, key) => {
      const action = actionFor(input, key, ['back', 'select', 'help', 'quit']);
      if (action === 'back' || action === 'select') dispatch({ type: 'back' });
      else if (action === 'help') dispatch({ type: 'help' });
      else if (action === 'quit') dispatch({ type: 'quit' });
    },
    { isActive: active },
  );
  const entries = state.entries;
  const max = Math.max(3, rows - 9);
  return (
    <Frame step="History" title={`Restores and drills of ${state.choice.name}, newest first`} footer={footerItems(['back', 'quit'])}>
      {state.error ? <Text color={theme.danger}>{sanitizeBlock(state.error)}</Text> : null}
      {!entries && !state.error ? <Text>History loading…</Text> : null}
      {entries && entries.length === 0 ? <Text>No restore or drill recorded yet. A drill (restore into throwaway services) is the safe way to get a first measurement.</Text> : null}
      {entries && entries.length > 0 ? (
        <>
          <Text bold>{`${cell('Started (UTC)', 17)} ${cell('Kind', 7)} ${cell('Backup', 20)} ${cell('Result', 22)} ${cell('RTO', 7)} RPO`}</Text>
          {entries.slice(0, max).map((e) => (
            <Text key={e.runId} wrap="truncate-end" color={e.outcome === 'restored' ? undefined : theme.warn}>
              {`${cell(formatUtc(e.startedAt), 17)} ${cell(e.kind, 7)} ${cell(e.backupId ?? '—', 20)} ${cell(outcomeLabel[e.outcome], 22)} ${cell(e.rtoMs !== undefined ? formatDuration(e.rtoMs) : '—', 7)} ${e.rpoMs !== undefined ? formatAge(e.rpoMs) : '—'}`}
            </Text>
          ))}
          {entries.length > max ? <Text color={theme.muted}>… {entries.length - max} older runs (restore-assistant history shows all)</Text> : null}
        </>
      ) : null}
    </Frame>
  );
}
