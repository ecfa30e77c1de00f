import { Box, Text, useInput } from 'ink';
import SelectInput from 'ink-select-input';
import { useState } from 'react';
import { Frame } from '../components/Frame.js';
import { ListIndicator, ListItem } from '../components/ListItem.js';
import { componentsLabel, formatMinutes, lastRunLabel, targetsLabel } from '../format.js';
import { actionFor, footerItems, type KeyAction } from '../keys.js';
import { useTheme } from '../theme.js';
import type { RecipeChoice } from '../types.js';
import type { RecipeState, WizardEvent } from '../wizard.js';
import { sanitizeBlock } from '../../text/sanitize.js';

export interface ScreenProps<S> {
  state: S;
  dispatch: (event: WizardEvent) => void;
  now: Date;
  /** Only the screen on top listens to keys. */
  active: boolean;
}

const listKeys: readonly KeyAction[] = ['up', 'down', 'select', 'back', 'help', 'quit'];

function RecipeDetails({ choice, now }: { choice: RecipeChoice; now: Date }): React.JSX.Element {
  const theme = useTheme();
  if (!choice.loaded) {
    return (
      <Box flexDirection="column">
        <Text color={theme.danger}>
          {theme.symbols.fail} {choice.name}: invalid recipe ({choice.file})
        </Text>
        <Text wrap="wrap">{sanitizeBlock(choice.error ?? 'It did not load.')}</Text>
      </Box>
    );
  }
  const r = choice.loaded.recipe;
  const objectives = [
    r.objectives.rtoMinutes !== undefined ? `RTO ${formatMinutes(r.objectives.rtoMinutes)}` : undefined,
    r.objectives.rpoMinutes !== undefined ? `RPO ${formatMinutes(r.objectives.rpoMinutes)}` : undefined,
  ].filter(Boolean);
  return (
    <Box flexDirection="column">
      <Text>
        <Text bold>{r.name}</Text>
        {r.description ? <Text>: {r.description}</Text> : null}
      </Text>
      <Text wrap="truncate-end">Components  {componentsLabel(r)}</Text>
      {targetsLabel(r).map((line) => (
        <Text key={line} wrap="truncate-end" color={theme.muted}>
          {'            '}
          {line}
        </Text>
      ))}
      <Text wrap="truncate-end">
        Backups     {r.backups.root} ({r.backups.layout === 'auto' ? 'layout detected' : `${r.backups.layout} layout`})
      </Text>
      {r.backups.offsite ? (
        <Text wrap="truncate-end">
          {'            '}off-site: s3://{r.backups.offsite.bucket}/{r.backups.offsite.prefix}
          {r.backups.offsite.endpoint ? ` (${r.backups.offsite.endpoint})` : ''}
        </Text>
      ) : null}
      {r.backups.walArchive ? <Text wrap="truncate-end">{'            '}WAL archive: {r.backups.walArchive}</Text> : null}
      <Text wrap="truncate-end">Last run    {lastRunLabel(choice.lastRun, now)}</Text>
      {objectives.length > 0 ? <Text>Objectives  {objectives.join(' · ')}</Text> : null}
    </Box>
  );
}

/** Screen 1: pick a deployment, then what to do with it (restore, drill, history). */
export function RecipeScreen({ state, dispatch, now, active }: ScreenProps<RecipeState>): React.JSX.Element {
  const theme = useTheme();
  const [highlighted, setHighlighted] = useState<string | undefined>(undefined);
  const recipes = state.recipes;
  const selected = recipes?.find((r) => r.name === state.selected);

  useInput(
    (input, key) => {
      const action = actionFor(input, key, ['back', 'help', 'quit']);
      if (action === 'back') dispatch({ type: 'back' });
      else if (action === 'help') dispatch({ type: 'help' });
      else if (action === 'quit') dispatch({ type: 'quit' });
    },
    { isActive: active },
  );

  if (state.error) {
    return (
      <Frame step="Recipe" title="Which deployment?" footer={footerItems(['back', 'quit'])}>
        <Text color={theme.danger}>{sanitizeBlock(state.error.message)}</Text>
        {(state.error.problems ?? []).map((p) => (
          <Text key={p}>  - {p}</Text>
        ))}
        {state.error.next ? <Text>Next: {state.error.next}</Text> : null}
      </Frame>
    );
  }
  if (!recipes) {
    return (
      <Frame step="Recipe" title="Which deployment?" footer={footerItems(['back', 'quit'])}>
        <Text>Recipes loading…</Text>
      </Frame>
    );
  }

  if (selected) {
    const items = [
      { key: 'restore', label: 'Restore in place: over the real targets (incident)', value: 'restore' as const },
      { key: 'drill', label: 'Drill: into throwaway services (real targets untouched)', value: 'drill' as const },
      { key: 'history', label: 'History: past restores and drills', value: 'history' as const },
    ];
    return (
      <Frame step="Recipe" title={`What do you want to do with ${selected.name}?`} footer={footerItems(listKeys, { select: 'choose', back: 'other recipe' })}>
        <RecipeDetails choice={selected} now={now} />
        <Box marginTop={1}>
          <SelectInput
            items={items}
            isFocused={active}
            indicatorComponent={ListIndicator}
            itemComponent={ListItem}
            onSelect={(item) => dispatch({ type: 'recipe-action', action: item.value })}
          />
        </Box>
      </Frame>
    );
  }

  if (recipes.length === 0) {
    return (
      <Frame step="Recipe" title="Which deployment?" footer={footerItems(['quit'])}>
        <Text>No recipes found.</Text>
        <Text>Put recipes in ./recipes or a directory named by RESTORE_ASSISTANT_RECIPES, or pass --recipe FILE.</Text>
      </Frame>
    );
  }

  const current = recipes.find((r) => r.name === highlighted) ?? recipes[0];
  return (
    <Frame step="Recipe" title="Which deployment?" footer={footerItems(listKeys)}>
      <SelectInput
        items={recipes.map((r) => ({ key: r.file, label: r.loaded ? r.name : `${r.name} (invalid)`, value: r.name }))}
        isFocused={active}
        limit={6}
        indicatorComponent={ListIndicator}
        itemComponent={ListItem}
        onHighlight={(item) => setHighlighted(item.value)}
        onSelect={(item) => dispatch({ type: 'select-recipe', name: item.value })}
      />
      {current ? (
        <Box marginTop={1} flexDirection="column">
          <RecipeDetails choice={current} now={now} />
        </Box>
      ) : null}
      {state.notice ? <Text color={theme.warn}>{state.notice}</Text> : null}
    </Frame>
  );
}
