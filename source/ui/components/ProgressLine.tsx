import { Text } from 'ink';
import { formatBytes, formatDuration } from '../format.js';
import type { ProgressView } from '../run-view.js';
import { useTheme } from '../theme.js';

export function progressText(p: ProgressView): string {
  const amount = (n: number): string => (p.unit === 'bytes' ? formatBytes(n) : `${n} items`);
  if (p.total === undefined || p.total <= 0) return `${amount(p.done)} so far`;
  const pct = Math.min(100, Math.floor((p.done / p.total) * 100));
  const eta = p.etaMs !== undefined && pct < 100 ? `  ETA ${formatDuration(p.etaMs)}` : '';
  return `${amount(p.done)} of ${amount(p.total)}  ${pct}%${eta}`;
}

/** A bar and "12.0 MiB of 40.0 MiB  30%  ETA 1m 05s". The bar is plain characters (no colour needed). */
export function ProgressLine({ progress, width }: { progress: ProgressView; width: number }): React.JSX.Element {
  const theme = useTheme();
  const barWidth = Math.max(10, Math.min(30, width - 48));
  const ratio = progress.total && progress.total > 0 ? Math.min(1, progress.done / progress.total) : 0;
  const filled = Math.round(ratio * barWidth);
  return (
    <Text>
      {progress.total ? (
        <Text color={theme.accent}>
          {'['}
          {'#'.repeat(filled)}
          {'.'.repeat(barWidth - filled)}
          {'] '}
        </Text>
      ) : null}
      {progressText(progress)}
    </Text>
  );
}
