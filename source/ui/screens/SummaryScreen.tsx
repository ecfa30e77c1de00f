import { Box, Text } from 'ink';
import { Frame } from '../components/Frame.js';
import { formatAge, formatDuration, formatMinutes, outcomeLabel } from '../format.js';
import { describeRunState } from '../run-view.js';
import { useTheme } from '../theme.js';
import type { AbandonedState, SummaryState } from '../wizard.js';

function objective(ms: number | undefined, targetMinutes: number | undefined, what: string, fmt: (n: number) => string): string {
  if (ms === undefined) return `not measured (${what})`;
  const target = targetMinutes === undefined ? '' : ` (target ${formatMinutes(targetMinutes)}: ${ms <= targetMinutes * 60_000 ? 'met' : 'MISSED'})`;
  return `${fmt(ms)} ${what}${target}`;
}

/** Screen 7: what happened, measured RTO/RPO, health, safety copies, where the evidence is, what next. */
export function SummaryScreen({ state }: { state: SummaryState }): React.JSX.Element {
  const theme = useTheme();
  const { summary, evidenceDir } = state.result;
  const health = state.view?.health ?? [];
  const good = summary.outcome === 'restored';
  const bad = summary.outcome === 'rollback-incomplete' || summary.outcome === 'unhealthy';
  const objectives = state.plan.objectives;
  const noun = state.plan.mode === 'drill' ? 'Drill' : 'Restore';
  return (
    <Frame step="Summary" footer={[]}>
      <Text bold color={good ? theme.ok : bad ? theme.danger : theme.warn}>
        {good ? theme.symbols.ok : theme.symbols.fail} {noun} of {state.plan.recipe.name} from {state.plan.backup.id}: {outcomeLabel[summary.outcome]} (exit {summary.exitCode})
      </Text>
      <Box flexDirection="column" marginTop={1}>
        <Text>RTO  {objective(summary.rtoMs, objectives.rtoMinutes, summary.outcome === 'unhealthy' ? 'from confirm to the end of the failed health checks' : 'from confirm to healthy', formatDuration)}</Text>
        <Text>RPO  {objective(summary.rpoMs, objectives.rpoMinutes, 'of changes lost (backup age at restore)', formatAge)}</Text>
      </Box>
      {health.length > 0 ? (
        <Box flexDirection="column" marginTop={1}>
          {health.map((h, i) => (
            <Text key={`h${i}`} color={h.ok ? undefined : theme.danger} wrap="truncate-end">
              {h.ok ? theme.symbols.ok : theme.symbols.fail} Health check {h.name}: {h.ok ? 'passed' : 'FAILED'} ({h.attempts} {h.attempts === 1 ? 'attempt' : 'attempts'}){h.ok ? '' : ` ${h.detail}`}
            </Text>
          ))}
        </Box>
      ) : null}
      <Box flexDirection="column" marginTop={1}>
        {summary.state.map((line) => (
          <Text key={line} wrap="wrap">
            {line}
          </Text>
        ))}
        {summary.safetyCopies.filter((c) => !summary.state.some((line) => line.includes(c.location))).map((c) => (
          <Text key={`${c.component}-${c.location}`} wrap="wrap">
            Safety copy of {c.component}: {c.location} ({c.description})
          </Text>
        ))}
        {evidenceDir ? <Text wrap="wrap">Evidence: {evidenceDir}</Text> : null}
      </Box>
      {summary.nextSteps.length > 0 ? (
        <Box flexDirection="column" marginTop={1}>
          <Text bold>Next:</Text>
          {summary.nextSteps.map((n) => (
            <Text key={n} wrap="wrap">
              {'  - '}
              {n}
            </Text>
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
