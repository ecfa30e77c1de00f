import { Box, Text } from 'ink';
import type { ReactNode } from 'react';
import { useTheme } from '../theme.js';
import { useTerminalSize } from '../hooks/use-terminal-size.js';

const steps = ['Recipe', 'Backup', 'Verify', 'Plan', 'Confirm', 'Run', 'Summary'] as const;
export type StepName = (typeof steps)[number] | 'History' | 'Help';

export interface FrameProps {
  step: StepName;
  /** One line under the breadcrumb: what this screen is about. */
  title?: string;
  /** Key hints for the footer. */
  footer: Array<{ key: string; description: string }>;
  children: ReactNode;
}

/** Breadcrumb on top, the screen, key hints at the bottom. Fits 80 columns. */
export function Frame({ step, title, footer, children }: FrameProps): React.JSX.Element {
  const theme = useTheme();
  const { columns } = useTerminalSize();
  const width = Math.max(40, columns);
  return (
    <Box flexDirection="column" width={width}>
      <Box>
        <Text bold>restore-assistant </Text>
        {step === 'History' || step === 'Help' ? <Text bold inverse>{` ${step} `}</Text> : null}
        {step === 'History' || step === 'Help' ? null : steps.map((s, i) => (
          <Text key={s}>
            {i > 0 ? <Text color={theme.muted}> › </Text> : null}
            {s === step ? (
              <Text bold inverse>
                {` ${s} `}
              </Text>
            ) : (
              <Text color={theme.muted}>{s}</Text>
            )}
          </Text>
        ))}
      </Box>
      {title ? (
        <Box marginTop={1}>
          <Text bold>{title}</Text>
        </Box>
      ) : null}
      <Box flexDirection="column" marginTop={1}>
        {children}
      </Box>
      {footer.length > 0 ? (
        <Box marginTop={1}>
          <Text color={theme.muted} wrap="truncate-end">
            {footer.map((f) => `${f.key} ${f.description}`).join('  ·  ')}
          </Text>
        </Box>
      ) : null}
    </Box>
  );
}
