import { Box, Text } from 'ink';
import { wrapToWidth } from '../../text/wrap.js';

/**
 * Text wrapped at word boundaries to `width` before Ink sees it (Ink's own wrap keeps the space at a
 * break at the start of the next line, so continuation lines were indented unevenly); a path longer
 * than the width is cut into width-long pieces. Continuation lines start at the same column.
 */
export function Wrapped({ text, width, color, bold }: { text: string; width: number; color?: string | undefined; bold?: boolean }): React.JSX.Element {
  const lines = wrapToWidth(text, Math.max(10, width));
  return (
    <Box flexDirection="column">
      {lines.map((l, i) => (
        <Text key={i} color={color} bold={bold ?? false} wrap="truncate-end">
          {l}
        </Text>
      ))}
    </Box>
  );
}
