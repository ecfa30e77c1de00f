import { Box, Text, useInput } from 'ink';
import { Frame } from '../components/Frame.js';
import { formatBytes, formatDuration, kindLabel } from '../format.js';
import { actionFor, footerItems } from '../keys.js';
import { useTheme } from '../theme.js';
import type { VerifyProgress } from '../types.js';
import type { VerifyState } from '../wizard.js';
import type { ScreenProps } from './RecipeScreen.js';
import { sanitizeText } from '../../text/sanitize.js';
import { Wrapped } from '../components/Wrapped.js';
import { useTerminalSize } from '../hooks/use-terminal-size.js';

function progressLabel(p: VerifyProgress | undefined): string {
  if (!p) return 'Starting…';
  const what = [p.component ? kindLabel[p.component] : undefined, p.check].filter(Boolean).join(': ');
  if (p.done !== undefined && p.total !== undefined && p.total > 0) {
    const pct = Math.min(100, Math.floor((p.done / p.total) * 100));
    return `${what}  ${formatBytes(p.done)} of ${formatBytes(p.total)}  ${pct}%`;
  }
  return what || 'Checking…';
}

/** Screen 3: verify the chosen set (checksums, structure, whole streams), then probe the targets read-only and plan. */
export function VerifyScreen({ state, dispatch, active, progress, staging = [] }: ScreenProps<VerifyState> & { progress?: VerifyProgress; staging?: string[] }): React.JSX.Element {
  const theme = useTheme();
  useInput(
    (input, key) => {
      const action = actionFor(input, key, ['select', 'back', 'help', 'quit']);
      if (action === 'select') dispatch({ type: 'proceed' });
      else if (action === 'back') dispatch({ type: 'back' });
      else if (action === 'help') dispatch({ type: 'help' });
      else if (action === 'quit') dispatch({ type: 'quit' });
    },
    { isActive: active },
  );

  const report = state.report;
  const { columns } = useTerminalSize();
  const width = Math.max(40, columns);
  const title = state.pitr ? `Base ${state.set.id} to ${state.pitr.label}` : `Set ${state.set.id}`;
  if (state.phase === 'rejected' && report) {
    return (
      <Frame step="Verify" title={`${title} was rejected: nothing was touched`} footer={[{ key: 'Enter/Esc', description: 'back to the list (set marked)' }, { key: 'q', description: 'quit' }]}>
        {report.problems.slice(0, 8).map((p, i) => (
          <Text key={`${p.code}-${i}`} color={theme.danger} wrap="wrap">
            {theme.symbols.fail} {p.component ? `${kindLabel[p.component]}: ` : ''}
            {p.message} [{p.code}]
          </Text>
        ))}
        {report.problems.length > 8 ? <Text>… and {report.problems.length - 8} more problems</Text> : null}
        <Box marginTop={1}>
          <Text>Choose another set. A rejected set can only be used with a recorded reason.</Text>
        </Box>
      </Frame>
    );
  }

  return (
    <Frame step="Verify" title={`${title}: proving it is restorable before anything is touched`} footer={footerItems(['back', 'quit'], { back: 'stop and choose another set' })}>
      {state.overrideRejected !== undefined ? (
        <Text color={theme.warn}>
          {theme.symbols.warn} Rejected set used anyway; reason recorded: {state.overrideRejected}
        </Text>
      ) : null}
      {staging.length > 0 ? (
        <Box flexDirection="column" marginBottom={1}>
          <Text bold>Staging (downloaded, checked, decrypted) before anything is touched:</Text>
          {staging.map((l, i) => (
            <Text key={i} wrap="truncate-end">
              {'  '}
              {sanitizeText(l.trim())}
            </Text>
          ))}
        </Box>
      ) : null}
      {state.pitr && state.phase === 'verifying' ? (
        <Wrapped width={width} text={sanitizeText(progress?.check ?? 'Verifying the base backup (pg_verifybackup) and every WAL segment to the target…')} />
      ) : null}
      {!state.pitr && state.phase === 'verifying' ? <Text>Verifying: {progressLabel(progress)}</Text> : null}
      {report
        ? report.components.map((c) => (
            <Text key={c.path} wrap="truncate-end">
              <Text color={c.ok ? theme.ok : theme.danger}>{c.ok ? theme.symbols.ok : theme.symbols.fail}</Text> {kindLabel[c.kind]} verified:{' '}
              {c.checks.map((ch) => ch.name).join(', ')}
            </Text>
          ))
        : null}
      {report ? <Text color={theme.muted}>Checks took {formatDuration(report.durationMs)} ({report.depth}).</Text> : null}
      {state.phase === 'probing' ? <Text>Targets being probed (read-only)…</Text> : null}
      {state.phase === 'planning' ? (
        <>
          <Text>
            <Text color={theme.ok}>{theme.symbols.ok}</Text> Targets probed (read-only)
          </Text>
          <Text>Plan being built…</Text>
        </>
      ) : null}
    </Frame>
  );
}
