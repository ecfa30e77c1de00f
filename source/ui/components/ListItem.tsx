import { Box, Text } from 'ink';
import { useTheme } from '../theme.js';

/** Themed item and indicator for ink-select-input (no colour under NO_COLOR; the pointer carries the meaning). */
export function ListIndicator({ isSelected = false }: { readonly isSelected?: boolean }): React.JSX.Element {
  const theme = useTheme();
  return <Box marginRight={1}>{isSelected ? <Text color={theme.accent}>{theme.symbols.pointer}</Text> : <Text> </Text>}</Box>;
}

export function ListItem({ isSelected = false, label }: { readonly isSelected?: boolean; readonly label: string }): React.JSX.Element {
  const theme = useTheme();
  return (
    <Text color={isSelected ? theme.accent : undefined} bold={isSelected}>
      {label}
    </Text>
  );
}
