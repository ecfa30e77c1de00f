import { Box, Text } from 'ink';
import type { ReactNode } from 'react';
import { useTheme } from '../theme.js';
import { useTerminalSize } from '../hooks/use-terminal-size.js';
import { breadcrumbForm, compactBreadcrumb, fitFooter, FLOW_STEPS, type FooterHint } from '../layout.js';

const steps = FLOW_STEPS;
export type StepName = (typeof steps)[number] | 'History' | 'Help';

export interface FrameProps {
  step: StepName;
  /** One line under the breadcrumb: what this screen is about. */
  title?: string;
  /** Key hints for the footer. */
  footer: FooterHint[];
  children: ReactNode;
}

/** Breadcrumb on top, the screen, key hints at the bottom; both shortened to fit the terminal (layout.ts). */
export function Frame({ step, title, footer, children }: FrameProps): React.JSX.Element {
  const theme = useTheme();
  const { columns } = useTerminalSize();
  const width = Math.max(40, columns);
  return (
    <Box flexDirection="column" width={width}>
      <Box>
        {step === 'History' || step === 'Help' ? (
          <Text>
            <Text bold>restore-assistant </Text>
            <Text bold inverse>{` ${step} `}</Text>
          </Text>
        ) : breadcrumbForm(width, step) === 'compact' ? (
          <Text bold inverse>{` ${compactBreadcrumb(step)} `}</Text>
        ) : (
          <Text>
            {breadcrumbForm(width, step) === 'full' ? <Text bold>restore-assistant </Text> : null}
            {steps.map((s, i) => (
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
          </Text>
        )}
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
            {fitFooter(footer, width - 1)}
          </Text>
        </Box>
      ) : null}
    </Box>
  );
}
