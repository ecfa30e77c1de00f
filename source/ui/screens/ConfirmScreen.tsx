import { Box, Text, useInput } from 'ink';
import type { PlanStep } from '../../plan/types.js';
import { Frame } from '../components/Frame.js';
import { TypedField } from '../components/TypedField.js';
import { ageOf, formatAge, formatUtc } from '../format.js';
import { useTheme } from '../theme.js';
import type { ConfirmState, UnhealthyPolicy } from '../wizard.js';
import type { ScreenProps } from './RecipeScreen.js';
import { sanitizeText } from '../../text/sanitize.js';
import { Wrapped } from '../components/Wrapped.js';
import { useTerminalSize } from '../hooks/use-terminal-size.js';
import { targetShort } from '../pitr-view.js';

/** One line per destructive step: what goes, and where the safety copy is kept. */
export function destructiveLine(step: PlanStep): string {
  // "nothing: … renamed aside" says nothing is lost; the step's title says what happens.
  const text = step.destroys === undefined || /^nothing\b/i.test(step.destroys) ? step.title : step.destroys;
  if (!step.safetyCopy) return text;
  if (step.safetyCopy.kind === 'none') return `${text} (NO safety copy)`;
  return text.includes(step.safetyCopy.location) ? text : `${text} (kept: ${step.safetyCopy.location})`;
}

const unhealthyConfirmWords: Record<UnhealthyPolicy, string> = {
  ask: 'ask then',
  rollback: 'roll back',
  keep: 'keep the restored state',
};

/** Screen 5: the dangerous moment. The operator types the confirm word; Esc goes back to the plan. */
export function ConfirmScreen({ state, dispatch, now, active }: ScreenProps<ConfirmState>): React.JSX.Element {
  const theme = useTheme();
  const plan = state.plan;
  const inPlace = plan.mode === 'restore';
  useInput(
    (_input, key) => {
      if (key.escape) dispatch({ type: 'back' });
    },
    { isActive: active },
  );
  const destructive = plan.steps.filter((s) => s.destructive);
  const { columns } = useTerminalSize();
  const width = Math.max(40, columns);
  const pitr = state.pitr;
  if (pitr) {
    const cluster = sanitizeText(`${pitr.dataDir ?? plan.targets['postgres'] ?? plan.recipe.name}${pitr.server ? ` (${pitr.server})` : ''}`);
    return (
      <Frame step="Confirm" footer={[{ key: 'Enter', description: 'confirm' }, { key: 'Esc', description: 'back to the plan (nothing is touched)', short: 'back' }]}>
        <Wrapped bold color={theme.danger} width={width} text={`IN-PLACE point-in-time restore: the WHOLE cluster ${cluster} is replaced`} />
        <Box flexDirection="column" marginTop={1}>
          <Wrapped width={width} text={`  Restored to: ${sanitizeText(pitr.label)}`} />
          <Wrapped width={width} text={`  From base ${sanitizeText(plan.backup.id)} and the WAL archive; every database of the cluster goes back to that time.`} />
          {destructive.slice(0, 3).map((s) => (
            <Text key={s.id} wrap="truncate-end">
              {theme.symbols.warn} {sanitizeText(destructiveLine(s))}
            </Text>
          ))}
        </Box>
        <Box marginTop={1} flexDirection="column">
          <Wrapped width={width} text={`Type ${state.word} to replace the cluster ${cluster} with its state at ${targetShort(pitr.target)}, or Esc to go back:`} />
          <Box>
            <Text>{'> '}</Text>
            <TypedField key={state.attempts} active={active} onSubmit={(text) => dispatch({ type: 'confirm-submit', text, at: '' })} />
          </Box>
          {state.mismatch !== undefined ? (
            <Text color={theme.warn}>
              &quot;{state.mismatch}&quot; is not &quot;{state.word}&quot;. Nothing was touched; type it again, or Esc to go back.
            </Text>
          ) : null}
        </Box>
      </Frame>
    );
  }
  return (
    <Frame step="Confirm" footer={[{ key: 'Enter', description: 'confirm' }, { key: 'Esc', description: 'back to the plan (nothing is touched)', short: 'back' }]}>
      {inPlace ? (
        <Text bold color={theme.danger}>
          IN-PLACE restore over the real targets of {plan.recipe.name}
        </Text>
      ) : (
        <Text bold color={theme.ok}>
          DRILL into throwaway services: the real targets of {plan.recipe.name} are not touched
        </Text>
      )}
      <Box flexDirection="column" marginTop={1}>
        {Object.entries(plan.targets).map(([kind, label]) => (
          <Text key={kind} wrap="truncate-end">
            {'  '}
            {label}
          </Text>
        ))}
        <Text wrap="truncate-end">
          {'  '}from set {sanitizeText(plan.backup.id)}, taken {formatUtc(plan.backup.time)} ({formatAge(ageOf(plan.backup.time, now))} old)
        </Text>
      </Box>
      <Box flexDirection="column" marginTop={1}>
        {destructive.slice(0, 5).map((s) => (
          <Text key={s.id} wrap="truncate-end">
            {theme.symbols.warn} {sanitizeText(destructiveLine(s))}
          </Text>
        ))}
        {destructive.length > 5 ? <Text>… {destructive.length - 5} more destructive steps (see the plan)</Text> : null}
        {inPlace ? <Text>If health checks fail: {unhealthyConfirmWords[state.onUnhealthy]} (changed on the plan screen)</Text> : null}
      </Box>
      <Box marginTop={1} flexDirection="column">
        <Text>
          Type <Text bold>{state.word}</Text> to {inPlace ? 'restore' : 'start the drill'}, or Esc to go back:
        </Text>
        <Box>
          <Text>{'> '}</Text>
          <TypedField key={state.attempts} active={active} onSubmit={(text) => dispatch({ type: 'confirm-submit', text, at: '' })} />
        </Box>
        {state.mismatch !== undefined ? (
          <Text color={theme.warn}>
            &quot;{state.mismatch}&quot; is not &quot;{state.word}&quot;. Nothing was touched; type it again, or Esc to go back.
          </Text>
        ) : null}
      </Box>
    </Frame>
  );
}
