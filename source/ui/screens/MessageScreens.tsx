import { Box, Text, useInput } from 'ink';
import { Frame } from '../components/Frame.js';
import { keyBindings } from '../keys.js';
import { useTheme } from '../theme.js';
import type { CancelledState, ErrorState, WizardEvent } from '../wizard.js';
import { sanitizeBlock, sanitizeText } from '../../text/sanitize.js';

export function CancelledScreen({ state }: { state: CancelledState }): React.JSX.Element {
  const theme = useTheme();
  return (
    <Box flexDirection="column">
      <Text bold color={theme.warn}>
        {sanitizeBlock(state.message)}
      </Text>
    </Box>
  );
}

export function ErrorScreen({ state, dispatch, active }: { state: ErrorState; dispatch: (e: WizardEvent) => void; active: boolean }): React.JSX.Element {
  const theme = useTheme();
  useInput(
    (input, key) => {
      if (key.escape) dispatch({ type: 'back' });
      else if (input === 'q' || key.return) dispatch({ type: 'quit' });
    },
    { isActive: active && state.back !== undefined },
  );
  const e = state.error;
  return (
    <Frame step="Plan" footer={state.back ? [{ key: 'Esc', description: 'back to the backup list' }, { key: 'q', description: 'quit' }] : []}>
      <Text bold color={theme.danger} wrap="wrap">
        Error: {sanitizeText(e.message)}
      </Text>
      {(e.problems ?? []).map((p) => (
        <Text key={p} wrap="wrap">
          {'  - '}
          {sanitizeText(p)}
        </Text>
      ))}
      <Text wrap="wrap">{sanitizeBlock(e.untouched ?? (state.touched ? 'The state of the targets is not known: check them before anything else.' : 'Nothing was touched.'))}</Text>
      {e.next ? <Text wrap="wrap">Next: {sanitizeBlock(e.next)}</Text> : null}
    </Frame>
  );
}

export function HelpScreen({ dispatch, active }: { dispatch: (e: WizardEvent) => void; active: boolean }): React.JSX.Element {
  useInput(
    (input, key) => {
      if (key.escape || key.return || input === '?') dispatch({ type: 'back' });
      else if (input === 'q') dispatch({ type: 'quit' });
    },
    { isActive: active },
  );
  const rows: Array<[string, string]> = [
    [`${keyBindings.up.label} ${keyBindings.down.label}`, 'move in a list (PgUp/PgDn: a page)'],
    [keyBindings.select.label, 'choose / go on (history: open the run\'s report)'],
    [keyBindings.back.label, 'back one screen (q quits before anything ran)'],
    [keyBindings.filter.label, 'backup list: filter by time or id (digits also start the filter)'],
    [keyBindings.commands.label, 'plan: show the exact commands of the selected step'],
    [keyBindings.unhealthy.label, 'plan: if health checks fail, ask (default), roll back or keep'],
    [`${keyBindings.keep.label} ${keyBindings.rollback.label}`, 'run, health checks failed: keep the restored state / roll back'],
    ['p', 'summary: print the block for the incident channel plainly, then leave'],
    [keyBindings.help.label, 'this help'],
    [keyBindings.quit.label, 'quit before anything runs (nothing is touched)'],
    [keyBindings.interrupt.label, 'during the run: abort and roll back; twice: stop waiting'],
  ];
  return (
    <Frame step="Help" title="Keys" footer={[{ key: 'Esc/Enter/?', description: 'back' }]}>
      {rows.map(([k, d]) => (
        <Text key={k}>
          {k.padEnd(10)} {d}
        </Text>
      ))}
      <Box marginTop={1} flexDirection="column">
        <Text wrap="wrap">Nothing is touched until you type the confirm word. The plan screen shows every command before that.</Text>
        <Text wrap="wrap">Without a terminal use: restore-assistant restore --recipe R --backup ID --yes</Text>
      </Box>
    </Frame>
  );
}
