import { Box, Text, useInput } from 'ink';
import { Frame } from '../components/Frame.js';
import { Wrapped } from '../components/Wrapped.js';
import { useTerminalSize } from '../hooks/use-terminal-size.js';
import { actionFor } from '../keys.js';
import { incidentLines, INCIDENT_LABEL_WIDTH, verdictLine } from '../incident.js';
import { describeRunState } from '../run-view.js';
import { useTheme } from '../theme.js';
import type { AbandonedState, SummaryState, WizardEvent } from '../wizard.js';

/**
 * Screen 7: the verdict and the block to paste into the incident channel (recipe, set and its
 * time, RPO, RTO against the targets, health, evidence, safety copies, the one next command), then
 * what each target holds and the engine's next steps. p prints the block plainly after the screen
 * (no colour, no frame, whole lines); q, Enter or Esc leave. The exit code is the run's either way.
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
  useInput(
    (input, key) => {
      if (input === 'p' && !key.ctrl) dispatch({ type: 'print' });
      else if (actionFor(input, key, ['quit'])) dispatch({ type: 'quit' });
      else if (actionFor(input, key, ['select'])) dispatch({ type: 'proceed' });
      else if (actionFor(input, key, ['back'])) dispatch({ type: 'back' });
    },
    { isActive: active && !state.closed },
  );
  const lines = incidentLines(state);
  const health = state.view?.health ?? [];
  const { columns } = useTerminalSize();
  const width = Math.max(40, columns);
  return (
    <Frame
      step="Summary"
      footer={
        state.closed
          ? []
          : [
              { key: 'p', description: 'print it plainly (to paste)', short: 'print' },
              { key: 'q', description: 'quit' },
            ]
      }
    >
      <Wrapped bold color={good ? theme.ok : bad ? theme.danger : theme.warn} width={width} text={`${good ? theme.symbols.ok : theme.symbols.fail} ${verdictLine(state)}`} />
      <Box flexDirection="column" marginTop={1}>
        {lines.map((l, i) => (
          <Box key={`${i}-${l.label}`}>
            {l.text.startsWith('-----') ? null : (
              <Box width={INCIDENT_LABEL_WIDTH} flexShrink={0}>
                <Text bold={l.label === 'Next:'}>{l.label}</Text>
              </Box>
            )}
            <Wrapped
              width={l.text.startsWith('-----') ? width : width - INCIDENT_LABEL_WIDTH}
              text={l.text}
              color={l.label === 'Health checks:' && health.some((h) => !h.ok) ? theme.danger : undefined}
            />
          </Box>
        ))}
      </Box>
      {health.some((h) => !h.ok) ? (
        <Box flexDirection="column" marginTop={1}>
          {health
            .filter((h) => !h.ok)
            .map((h, i) => (
              <Wrapped
                key={`h${i}`}
                color={theme.danger}
                width={width}
                text={`${theme.symbols.fail} Health check ${h.name}: FAILED (${h.attempts} ${h.attempts === 1 ? 'attempt' : 'attempts'}) ${h.detail}`}
              />
            ))}
        </Box>
      ) : null}
      {/* What each target holds: the block already says it for a healthy restore (its copies); otherwise it matters most. */}
      {good && state.plan.mode === 'restore' ? null : (
        <Box flexDirection="column" marginTop={1}>
          {summary.state.map((line) => (
            <Wrapped key={line} width={width} text={line} />
          ))}
        </Box>
      )}
      {summary.nextSteps.length > 0 ? (
        <Box flexDirection="column" marginTop={1}>
          {summary.nextSteps.map((n) => (
            <Box key={n}>
              <Text>- </Text>
              <Wrapped width={width - 2} text={n} />
            </Box>
          ))}
        </Box>
      ) : null}
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
