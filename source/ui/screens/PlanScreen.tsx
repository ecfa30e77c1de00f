import { Box, Text, useInput } from 'ink';
import type { PlanStep } from '../../plan/types.js';
import { displayActionLine } from '../../actions/describe.js';
import { Frame } from '../components/Frame.js';
import { ageOf, cell, formatAge, formatBytes, formatDuration, formatUtc } from '../format.js';
import { useTerminalSize } from '../hooks/use-terminal-size.js';
import { actionFor, footerItems } from '../keys.js';
import { useTheme } from '../theme.js';
import type { PlanState, UnhealthyPolicy } from '../wizard.js';
import { windowStart } from './BackupScreen.js';
import type { ScreenProps } from './RecipeScreen.js';
import { sanitizeText } from '../../text/sanitize.js';
import { wrapToWidth } from '../../text/wrap.js';
import { Wrapped } from '../components/Wrapped.js';

/** A destructive step that loses nothing (its `destroys` starts with "nothing: ... kept"): it changes the target, the data is kept aside. */
function losesNothing(step: PlanStep): boolean {
  return step.destroys !== undefined && /^nothing\b/i.test(step.destroys);
}

/** The list's mark and the detail's first line say the same thing (issue 12: "destroys, copy kept" over "Destroys: nothing"). */
export function stepMark(step: PlanStep): string {
  if (!step.destructive) return '';
  if (losesNothing(step)) return 'changes, copy kept';
  // A cluster plan's extraction replaces a data directory the step before moved aside ("... (kept at X)").
  const keptAside = step.destroys !== undefined && /\(kept at [^)]+\)\s*$/.test(step.destroys);
  return (step.safetyCopy && step.safetyCopy.kind !== 'none') || keptAside ? 'destroys, copy kept' : 'DESTROYS, no copy';
}

export function destroysLine(step: PlanStep): string {
  if (!step.destructive) return 'Destroys: nothing';
  if (losesNothing(step)) return `Changes the target, loses nothing: ${(step.destroys ?? '').replace(/^nothing:?\s*/i, '')}`;
  return `Destroys: ${step.destroys ?? 'current state of the target'}`;
}

/** What the plan screen says happens on failed health checks (`u` cycles through them). */
export const unhealthyPlanWords: Record<UnhealthyPolicy, string> = {
  ask: 'ask: keep the restored state or roll back',
  rollback: 'ROLL BACK to the pre-restore data (no question)',
  keep: 'keep the restored state (no question; undo printed)',
};

/** Screen 4: every step, what it destroys and the safety copy it keeps; the exact commands with `c`. */
export function PlanScreen({ state, dispatch, now, active }: ScreenProps<PlanState>): React.JSX.Element {
  const theme = useTheme();
  const { columns, rows } = useTerminalSize();
  const plan = state.plan;
  const inPlace = plan.mode === 'restore';

  useInput(
    (input, key) => {
      const action = actionFor(input, key, ['up', 'down', 'select', 'commands', 'unhealthy', 'back', 'help', 'quit']);
      if (action === 'up') dispatch({ type: 'move', delta: -1 });
      else if (action === 'down') dispatch({ type: 'move', delta: 1 });
      else if (action === 'select') dispatch({ type: 'proceed' });
      else if (action === 'commands') dispatch({ type: 'toggle-commands' });
      else if (action === 'unhealthy' && inPlace) dispatch({ type: 'toggle-unhealthy' });
      else if (action === 'back') dispatch({ type: 'back' });
      else if (action === 'help') dispatch({ type: 'help' });
      else if (action === 'quit') dispatch({ type: 'quit' });
    },
    { isActive: active },
  );

  const step = plan.steps[state.cursor];
  const width = Math.max(40, columns);
  const pitr = state.pitr;
  // The header wraps at word boundaries instead of being cut at 80 columns ("(median o…").
  const header = `Backup taken ${formatUtc(plan.backup.time)} · ${plan.steps.length} steps, ${plan.steps.filter((s) => s.destructive).length} destructive · ${
    state.estimate ? `about ${formatDuration(state.estimate.ms)} (median of ${state.estimate.runs} earlier ${state.estimate.runs === 1 ? 'run' : 'runs'})` : 'no earlier runs to estimate from'
  }`;
  const pitrLines = pitr
    ? [
        `Cluster: ${pitr.dataDir ?? plan.targets['postgres'] ?? '?'}${pitr.server ? ` (${pitr.server})` : ''}: replaced as a whole; the old data directory is kept, renamed`,
        `Target: ${pitr.label}${
          pitr.segments !== undefined ? ` · ${pitr.segments} WAL segments (${formatBytes(pitr.walBytes ?? 0)}) verified` : ''
        }`,
      ].map((l) => sanitizeText(l))
    : [];
  const headerRows = (pitr ? pitrLines.reduce((n, l) => n + wrapToWidth(l, width).length, 0) : wrapToWidth(header, width).length) - 1;
  const detailRows = state.showCommands ? Math.min(9, (step?.actions.length ?? 0) + 4) : 4;
  const listRows = Math.max(3, rows - 12 - headerRows - detailRows - Math.min(2, plan.warnings.length));
  const start = windowStart(state.cursor, plan.steps.length, listRows);
  const shown = plan.steps.slice(start, start + listRows);
  const titleWidth = Math.max(20, Math.min(columns - 26, 56));
  const age = formatAge(ageOf(plan.backup.time, now));

  return (
    <Frame
      step="Plan"
      title={sanitizeText(
        pitr
          ? `IN-PLACE point-in-time restore of ${plan.recipe.name} from base ${plan.backup.id}`
          : `${inPlace ? 'IN-PLACE restore' : 'Drill'} of ${plan.recipe.name} from ${plan.backup.id} (${age} old)`,
      )}
      footer={footerItems(inPlace && !pitr ? ['up', 'down', 'commands', 'unhealthy', 'select', 'back', 'help', 'quit'] : ['up', 'down', 'commands', 'select', 'back', 'help', 'quit'], { commands: state.showCommands ? 'hide commands' : 'commands', unhealthy: 'if unhealthy', select: 'confirm' })}
    >
      {pitr ? (
        pitrLines.map((l) => <Wrapped key={l} width={width} text={l} />)
      ) : (
        <Wrapped width={width} text={header} />
      )}
      <Text wrap="truncate-end">
        If health checks fail:{' '}
        {pitr
          ? state.onUnhealthy === 'rollback'
            ? 'ROLL BACK: the old data directory is put back'
            : 'keep the recovered cluster (old data dir kept)'
          : inPlace
            ? unhealthyPlanWords[state.onUnhealthy]
            : 'the drill is reported unhealthy (nothing to roll back)'}
      </Text>
      {plan.options.overrideRejected !== undefined ? (
        <Text color={theme.warn} wrap="truncate-end">
          {theme.symbols.warn} Set failed its checks; used anyway because: {sanitizeText(plan.options.overrideRejected)}
        </Text>
      ) : null}
      <Box marginTop={1} flexDirection="column">
        {shown.map((s, i) => {
          const index = start + i;
          const isCursor = index === state.cursor;
          const mark = stepMark(s);
          return (
            <Text key={s.id} bold={isCursor} color={isCursor ? theme.accent : undefined} wrap="truncate-end">
              {isCursor ? theme.symbols.pointer : ' '}
              {cell(String(index + 1), 3, 'right')}. {cell(s.title, titleWidth)}{' '}
              <Text color={s.destructive ? theme.danger : undefined}>{mark}</Text>
            </Text>
          );
        })}
        {plan.steps.length > shown.length ? (
          <Text color={theme.muted}>
            {'      '}steps {start + 1}–{start + shown.length} of {plan.steps.length}
          </Text>
        ) : null}
      </Box>
      {step ? (
        <Box marginTop={1} flexDirection="column">
          <Text color={step.destructive && !losesNothing(step) ? theme.danger : undefined} wrap="wrap">
            {sanitizeText(destroysLine(step))}
          </Text>
          {step.safetyCopy ? (
            <Text wrap="wrap">
              Safety copy: {step.safetyCopy.kind === 'none' ? `NONE (${sanitizeText(step.safetyCopy.description.replace(/^none:?\s*/i, '') || 'recorded decision')})` : sanitizeText(`${step.safetyCopy.description} → ${step.safetyCopy.location}`)}
            </Text>
          ) : null}
          {state.showCommands ? <Text bold>Runs:</Text> : null}
          {state.showCommands
            ? step.actions.slice(0, 6).map((a, i) => (
                <Box key={i} marginLeft={2}>
                  <Text color={theme.muted} wrap="wrap">
                    {displayActionLine(a)}
                  </Text>
                </Box>
              ))
            : null}
          {state.showCommands && step.actions.length > 6 ? <Text>  … {step.actions.length - 6} more (restore-assistant plan shows all)</Text> : null}
          {step.undo ? <Text wrap="truncate-end">{state.showCommands ? 'If rolled back: ' : 'Undo: '}{sanitizeText(step.undo.title)}</Text> : null}
        </Box>
      ) : null}
      {plan.warnings.slice(0, 2).map((w) => (
        <Text key={w} color={theme.warn} wrap="truncate-end">
          {theme.symbols.warn} {w}
        </Text>
      ))}
    </Frame>
  );
}
