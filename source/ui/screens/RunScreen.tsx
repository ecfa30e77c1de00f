import { Box, Static, Text, useInput } from 'ink';
import type { Plan } from '../../plan/types.js';
import { Frame } from '../components/Frame.js';
import { ProgressLine } from '../components/ProgressLine.js';
import { formatDuration, formatUtc } from '../format.js';
import { useTerminalSize } from '../hooks/use-terminal-size.js';
import { actionFor, footerItems } from '../keys.js';
import { finishedSteps, overallProgressLine, runningSteps, type RunView, type StepView } from '../run-view.js';
import { useTheme, type Theme } from '../theme.js';
import type { RunState } from '../wizard.js';
import type { ScreenProps } from './RecipeScreen.js';
import { sanitizeText } from '../../text/sanitize.js';

type StaticItem = { key: string; kind: 'confirmed'; text: string } | { key: string; kind: 'step'; step: StepView };

/**
 * What stays above the live area once written: the confirmation line and each finished step, in
 * the order they finished. Mounted by the App from the run through the summary, so steps that
 * finish in the same moment as the run are still printed.
 */
export function RunStatic({ confirmed, view }: { confirmed: string; view: RunView }): React.JSX.Element {
  const theme = useTheme();
  const items: StaticItem[] = [{ key: 'confirmed', kind: 'confirmed', text: confirmed }, ...finishedSteps(view).map((step) => ({ key: `step-${step.id}`, kind: 'step' as const, step }))];
  return (
    <Static items={items}>
      {(item) =>
        item.kind === 'confirmed' ? (
          <Box key={item.key}>
            <Text bold>{theme.symbols.ok} </Text>
            <Text bold wrap="wrap">
              {item.text}
            </Text>
          </Box>
        ) : (
          <FinishedStep key={item.key} step={item.step} theme={theme} />
        )
      }
    </Static>
  );
}

function FinishedStep({ step, theme }: { step: StepView; theme: Theme }): React.JSX.Element {
  if (step.status === 'done') {
    return (
      <Text wrap="truncate-end">
        <Text color={theme.ok}>{theme.symbols.ok}</Text> {step.title}
        <Text color={theme.muted}>
          {step.durationMs !== undefined ? `  ${formatDuration(step.durationMs)}` : ''}
          {step.detail ? `  ${step.detail}` : ''}
        </Text>
      </Text>
    );
  }
  if (step.status === 'skipped') {
    return (
      <Text wrap="truncate-end" color={theme.muted}>
        {theme.symbols.skipped} {step.title} skipped: {step.reason}
      </Text>
    );
  }
  return (
    <Text wrap="wrap" color={theme.danger}>
      {theme.symbols.fail} {step.title} failed: {step.error}
    </Text>
  );
}

/** "Confirmed at 12:52:38Z: IN-PLACE restore of demo from 2026-12-01_12-52-23" (fits 80 columns for usual names; wraps under itself otherwise). */
export function confirmedLine(state: { plan: Plan; confirmedAt: string }): string {
  const what = state.plan.mode === 'restore' ? 'IN-PLACE restore' : 'drill';
  const d = new Date(state.confirmedAt);
  const at = Number.isNaN(d.getTime()) ? formatUtc(state.confirmedAt) : `${d.toISOString().slice(11, 19)}Z`;
  return sanitizeText(`Confirmed at ${at}: ${what} of ${state.plan.recipe.name} from ${state.plan.backup.id}`);
}

/** Screen 6: the engine's steps as they run. Finished steps stay above (Static); the running ones show elapsed time, progress and output. */
export function RunScreen({ state, dispatch, now, active, view, notice }: ScreenProps<RunState> & { view: RunView; notice?: string }): React.JSX.Element {
  const theme = useTheme();
  const { columns } = useTerminalSize();

  const running = runningSteps(view);
  const rollback = view.rollback;
  const overall = overallProgressLine(
    view,
    state.plan.steps.length,
    formatDuration,
    state.estimate ? { ms: state.estimate.ms, runs: state.estimate.runs, elapsedMs: Math.max(0, now.getTime() - new Date(state.confirmedAt).getTime()) } : undefined,
  );
  const asking = state.question !== undefined && state.answer === undefined && state.interrupts === 0;

  useInput(
    (input, key) => {
      const action = actionFor(input, key, ['keep', 'rollback']);
      if (action === 'keep') dispatch({ type: 'unhealthy-answer', decision: 'keep' });
      else if (action === 'rollback') dispatch({ type: 'unhealthy-answer', decision: 'rollback' });
    },
    { isActive: active && asking },
  );

  return (
    <>
      <Frame
        step="Run"
        footer={
          asking
            ? [...footerItems(['keep', 'rollback']), { key: 'Ctrl-C', description: 'abort and roll back' }]
            : state.interrupts === 0
              ? [{ key: 'Ctrl-C', description: 'abort and roll back' }]
              : state.interrupts === 1
                ? [{ key: 'Ctrl-C', description: 'stop waiting and report the state' }]
                : [{ key: 'Ctrl-C', description: 'leave now (state from the last events)' }]
        }
      >
        {overall !== undefined ? (
          <Text bold wrap="wrap">
            {overall}
          </Text>
        ) : null}
        {running.length === 0 && !rollback && !state.question ? <Text color={theme.muted}>{view.steps.length === 0 ? 'Engine starting…' : 'Next step starting…'}</Text> : null}
        {running.map((step) => {
          const elapsed = step.startedAt ? Math.max(0, now.getTime() - new Date(step.startedAt).getTime()) : undefined;
          const progress = view.progress[step.id];
          const tail = view.tails[step.id] ?? [];
          return (
            <Box key={step.id} flexDirection="column">
              <Text wrap="truncate-end">
                <Text color={theme.accent}>{theme.symbols.running}</Text> {step.title}
                {elapsed !== undefined ? <Text color={theme.muted}>  {formatDuration(elapsed)}</Text> : null}
              </Text>
              {progress ? (
                <Box marginLeft={2}>
                  <ProgressLine progress={progress} width={columns} />
                </Box>
              ) : null}
              {tail.map((line, i) => (
                <Text key={i} color={theme.muted} wrap="truncate-end">
                  {'  │ '}
                  {line}
                </Text>
              ))}
            </Box>
          );
        })}
        {view.notes.slice(-2).map((n, i) => (
          <Text key={i} color={n.level === 'error' ? theme.danger : theme.warn} wrap="truncate-end">
            {theme.symbols.warn} {n.message}
          </Text>
        ))}
        {state.question && state.interrupts === 0 ? <UnhealthyQuestionView state={state} view={view} theme={theme} /> : null}
        {state.interrupts === 1 && rollback?.complete === undefined ? (
          <Text bold color={theme.warn} wrap="wrap">
            Interrupt received: stopping and rolling back. Press Ctrl-C again (after 3 s) only to stop waiting (the exact state is then reported).
          </Text>
        ) : null}
        {notice ? (
          <Text color={theme.warn} wrap="wrap">
            {notice}
          </Text>
        ) : null}
        {state.interrupts === 2 ? (
          <Text bold color={theme.warn} wrap="wrap">
            No longer waiting: the engine is reporting the exact state. Ctrl-C once more leaves at once with what is known.
          </Text>
        ) : null}
        {rollback ? (
          <Box flexDirection="column" marginTop={1}>
            <Text bold color={theme.warn} wrap="truncate-end">
              Rolling back: {rollback.reason}
            </Text>
            {rollback.steps.map((s) => (
              <Text key={s.stepId} color={s.ok ? undefined : theme.danger} wrap="truncate-end">
                {s.ok ? theme.symbols.ok : theme.symbols.fail} {s.title}
                {s.ok ? ' undone' : ` undo failed: ${s.error ?? ''}`}
              </Text>
            ))}
            {rollback.complete !== undefined ? <Text bold>{rollback.complete ? 'Rollback complete.' : 'Rollback INCOMPLETE.'}</Text> : null}
          </Box>
        ) : null}
      </Frame>
    </>
  );
}

/** The engine's question after failed health checks: which failed, what each target holds now, and the choice. */
function UnhealthyQuestionView({ state, view, theme }: { state: RunState; view: RunView; theme: Theme }): React.JSX.Element | null {
  const question = state.question;
  if (!question) return null;
  const failed = view.health.filter((h) => !h.ok);
  return (
    <Box flexDirection="column" marginTop={1}>
      <Text bold color={theme.danger} wrap="wrap">
        {theme.symbols.fail} Health checks failed: {question.checks.join(', ')}
      </Text>
      <Box flexDirection="column" marginLeft={2}>
        {failed.map((h, i) => (
          <Text key={i} wrap="wrap">
            {h.name}: {h.detail} ({h.attempts} {h.attempts === 1 ? 'attempt' : 'attempts'})
          </Text>
        ))}
      </Box>
      <Text>Now:</Text>
      <Box flexDirection="column" marginLeft={2}>
        {question.state.map((line) => (
          <Text key={line} wrap="wrap">
            {line}
          </Text>
        ))}
      </Box>
      {state.answer === undefined ? (
        <Box flexDirection="column" marginTop={1}>
          <Text bold>Keep the restored state (k) or roll back (r)?</Text>
          <Text wrap="wrap" color={theme.muted}>
            k keeps the restored data and the safety copies (exit 4); r puts the pre-restore data back (exit 1).
          </Text>
        </Box>
      ) : (
        <Text bold wrap="wrap">
          {state.answer === 'rollback' ? 'Rolling back, as you chose.' : 'Keeping the restored state, as you chose.'}
        </Text>
      )}
    </Box>
  );
}
