import { Box, Text, useInput } from 'ink';
import SelectInput from 'ink-select-input';
import { Frame } from '../components/Frame.js';
import { ListIndicator, ListItem } from '../components/ListItem.js';
import { actionFor, footerItems } from '../keys.js';
import { useTheme } from '../theme.js';
import type { RolesState } from '../wizard.js';
import type { ScreenProps } from './RecipeScreen.js';

/** Between verify and plan: the dump references roles the server lacks, and the recipe says "ask". */
export function RolesScreen({ state, dispatch, active }: ScreenProps<RolesState>): React.JSX.Element {
  const theme = useTheme();
  useInput(
    (input, key) => {
      const action = actionFor(input, key, ['back', 'help', 'quit']);
      if (action === 'back') dispatch({ type: 'back' });
      else if (action === 'help') dispatch({ type: 'help' });
      else if (action === 'quit') dispatch({ type: 'quit' });
    },
    { isActive: active },
  );
  const items = [
    { key: 'create', label: 'Create the missing roles (NOLOGIN), then restore with ownership', value: 'create' as const },
    { key: 'skip', label: 'Restore without ownership and grants (--no-owner --no-acl)', value: 'skip-ownership' as const },
    { key: 'fail', label: 'Stop here (nothing is touched)', value: 'fail' as const },
  ];
  return (
    <Frame step="Plan" title="The dump needs roles this server does not have" footer={footerItems(['up', 'down', 'select', 'back', 'quit'])}>
      <Text color={theme.warn} wrap="wrap">
        {theme.symbols.warn} Missing roles: {state.missing.join(', ')}
      </Text>
      <Box marginTop={1}>
        <SelectInput items={items} isFocused={active} indicatorComponent={ListIndicator} itemComponent={ListItem} onSelect={(item) => dispatch({ type: 'roles-chosen', choice: item.value })} />
      </Box>
    </Frame>
  );
}
