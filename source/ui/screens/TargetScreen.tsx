import { Box, Text, useInput } from 'ink';
import { Frame } from '../components/Frame.js';
import { TypedField } from '../components/TypedField.js';
import { Wrapped } from '../components/Wrapped.js';
import { useTerminalSize } from '../hooks/use-terminal-size.js';
import { actionFor, footerItems } from '../keys.js';
import { targetChoiceLine, TARGET_CHOICES, utcSeconds, windowLine, windowProblems } from '../pitr-view.js';
import { useTheme } from '../theme.js';
import type { TargetState } from '../wizard.js';
import type { ScreenProps } from './RecipeScreen.js';
import { sanitizeText } from '../../text/sanitize.js';

/**
 * Point-in-time restore, between the backup list and the verification: where recovery stops. The
 * base's window is shown; "a time" opens a field that takes a date, a time and a zone (parsed
 * strictly, checked against the window; out of it, refused with the window). Nothing is read or
 * touched here.
 */
export function TargetScreen({ state, dispatch, active }: ScreenProps<TargetState>): React.JSX.Element {
  const theme = useTheme();
  const { columns } = useTerminalSize();
  const width = Math.max(40, columns);
  useInput(
    (input, key) => {
      if (state.typing) {
        if (key.escape) dispatch({ type: 'back' });
        return; // the field owns the keys
      }
      const action = actionFor(input, key, ['up', 'down', 'select', 'back', 'help', 'quit']);
      if (action === 'up') dispatch({ type: 'move', delta: -1 });
      else if (action === 'down') dispatch({ type: 'move', delta: 1 });
      else if (action === 'select') dispatch({ type: 'proceed' });
      else if (action === 'back') dispatch({ type: 'back' });
      else if (action === 'help') dispatch({ type: 'help' });
      else if (action === 'quit') dispatch({ type: 'quit' });
    },
    { isActive: active },
  );
  const base = state.base;
  const w = base.window;
  const footer = state.typing
    ? [
        { key: 'Enter', description: 'verify to this time' },
        { key: 'Esc', description: 'back to the choices', short: 'back' },
      ]
    : footerItems(['up', 'down', 'select', 'back', 'help', 'quit'], { select: 'verify base + WAL to it', back: 'other base' });
  return (
    <Frame step="Backup" title={sanitizeText(`Restore ${state.chosen.recipe.recipe.name} from base ${state.set.id} to which point in time?`)} footer={footer}>
      <Wrapped width={width} text={`Base ${sanitizeText(state.set.id)}: ${windowLine(base)}`} />
      {windowProblems(base).map((p) => (
        <Wrapped key={p} color={theme.warn} width={width} text={`${theme.symbols.warn} ${p}`} />
      ))}
      <Text color={theme.muted} wrap="truncate-end">
        Taken {utcSeconds(base.startTime)} · LSN {base.startLsn}
        {base.endLsn ? ` .. ${base.endLsn}` : ''}
      </Text>
      <Box marginTop={1} flexDirection="column">
        {TARGET_CHOICES.map((c, i) => {
          const isCursor = i === state.cursor;
          return (
            <Text key={c} bold={isCursor} color={isCursor ? theme.accent : undefined} inverse={isCursor && !theme.color && !state.typing} wrap="truncate-end">
              {isCursor ? theme.symbols.pointer : ' '} {targetChoiceLine(c, base)}
            </Text>
          );
        })}
      </Box>
      {state.typing ? (
        <Box marginTop={1} flexDirection="column">
          <Text>Time with its zone (e.g. {w ? utcSeconds(w.to).replace(' UTC', 'Z') : '2026-12-01 03:12:00Z'}; +02:00 and UTC work too):</Text>
          <Box>
            <Text>{'> '}</Text>
            <TypedField key={state.problem ?? 'field'} active={active} onSubmit={(text) => dispatch({ type: 'target-submit', text })} />
          </Box>
          {state.problem ? <Wrapped color={theme.danger} width={width} text={`${theme.symbols.fail} ${state.problem}`} /> : null}
        </Box>
      ) : null}
    </Frame>
  );
}
