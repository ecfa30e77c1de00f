import { Box, Text, useInput } from 'ink';
import type { BackupSet, ComponentKind } from '../../catalog/types.js';
import { TypedField } from '../components/TypedField.js';
import { Frame } from '../components/Frame.js';
import { Wrapped } from '../components/Wrapped.js';
import { ageOf, cell, checksumLabel, componentSize, formatAge, formatMinutes, formatUtc, kindLabel } from '../format.js';
import { useTerminalSize } from '../hooks/use-terminal-size.js';
import { actionFor, footerItems, isPrintable } from '../keys.js';
import { useTheme } from '../theme.js';
import { visibleSets, type BackupState } from '../wizard.js';
import type { ScreenProps } from './RecipeScreen.js';
import { sanitizeBlock, sanitizeText } from '../../text/sanitize.js';
import { setProblems } from '../../health/backups.js';
import { encryptionLines, whereLabel, windowLine } from '../pitr-view.js';
import type { PitrBaseView } from '../types.js';

const kinds: ComponentKind[] = ['postgres', 'redis', 'prometheus'];

/** Rows of the terminal the rest of the screen takes (breadcrumb, title, header, details, footer). */
const CHROME_ROWS = 14;

/** The first row shown so that the cursor stays visible in a window of `size` rows. */
export function windowStart(cursor: number, count: number, size: number): number {
  if (count <= size) return 0;
  const start = Math.max(0, cursor - Math.floor(size / 2));
  return Math.min(start, count - size);
}

function setFlag(state: BackupState, set: BackupSet): string {
  if (state.rejected[set.id]) return '✖';
  if (set.warnings.length > 0) return '!';
  return ' ';
}

/** A base's window in a list cell: "2026-12-01 03:00:05 .. 03:00:14" (the date once when both ends share it). */
export function windowCell(base: PitrBaseView | undefined): string {
  const w = base?.window;
  if (!w) return 'none';
  const a = new Date(w.from).toISOString();
  const b = new Date(w.to).toISOString();
  const end = a.slice(0, 10) === b.slice(0, 10) ? b.slice(11, 19) : `${b.slice(0, 10)} ${b.slice(11, 19)}`;
  return `${a.slice(0, 10)} ${a.slice(11, 19)} .. ${end}${base.problems.length > 0 ? ' (gap)' : ''}`;
}

/** Screen 2: the catalog newest first; type to filter; rejected sets need an override with a reason. */
export function BackupScreen({ state, dispatch, now, active }: ScreenProps<BackupState>): React.JSX.Element {
  const theme = useTheme();
  const { columns, rows } = useTerminalSize();
  const recipe = state.chosen.recipe.recipe;
  const shownKinds = kinds.filter((k) => recipe.components[k] !== undefined);
  const sets = visibleSets(state);
  const current = sets[state.cursor];
  const showId = columns >= 100;

  useInput(
    (input, key) => {
      if (state.override) {
        if (key.escape) dispatch({ type: 'back' });
        return; // the reason prompt owns the keys
      }
      if (key.backspace || key.delete) {
        if (state.filter !== '') dispatch({ type: 'filter-backspace' });
        return;
      }
      if (state.filtering) {
        const nav = actionFor(input, key, ['select', 'back']);
        if (key.upArrow) dispatch({ type: 'move', delta: -1 });
        else if (key.downArrow) dispatch({ type: 'move', delta: 1 });
        else if (nav === 'select') dispatch({ type: 'choose-set' });
        else if (nav === 'back') dispatch({ type: 'back' });
        else if (isPrintable(input, key)) dispatch({ type: 'filter-input', text: input });
        return;
      }
      const action = actionFor(input, key, ['up', 'down', 'pageUp', 'pageDown', 'select', 'back', 'help', 'quit', 'filter']);
      if (action === 'up') dispatch({ type: 'move', delta: -1 });
      else if (action === 'down') dispatch({ type: 'move', delta: 1 });
      else if (action === 'pageUp') dispatch({ type: 'move', delta: -10 });
      else if (action === 'pageDown') dispatch({ type: 'move', delta: 10 });
      else if (action === 'select') dispatch({ type: 'choose-set' });
      else if (action === 'back') dispatch({ type: 'back' });
      else if (action === 'help') dispatch({ type: 'help' });
      else if (action === 'quit') dispatch({ type: 'quit' });
      else if (action === 'filter') dispatch({ type: 'filter-start' });
      else if (/^[0-9]+$/.test(input)) dispatch({ type: 'filter-input', text: input });
    },
    { isActive: active },
  );

  const modeWord = state.chosen.mode === 'drill' ? 'drill' : 'restore';
  const title = `Which backup of ${recipe.name} do you want to ${modeWord}?`;

  if (state.error) {
    return (
      <Frame step="Backup" title={title} footer={footerItems(['back', 'quit'])}>
        <Text color={theme.danger}>{sanitizeBlock(state.error.message)}</Text>
        {(state.error.problems ?? []).map((p) => (
          <Text key={p}>  - {p}</Text>
        ))}
        {state.error.next ? <Text>Next: {state.error.next}</Text> : null}
      </Frame>
    );
  }
  if (!state.sets) {
    return (
      <Frame step="Backup" title={title} footer={footerItems(['back', 'quit'])}>
        <Text>Backup sets under {recipe.backups.root} loading…</Text>
      </Frame>
    );
  }

  if (state.override) {
    const reasons = state.rejected[state.override.setId] ?? [];
    return (
      <Frame step="Backup" title={`Set ${state.override.setId} failed its checks`} footer={[{ key: 'Enter', description: 'use it anyway' }, { key: 'Esc', description: 'choose another set' }]}>
        {reasons.map((r) => (
          <Text key={r} color={theme.danger}>
            {theme.symbols.fail} {r}
          </Text>
        ))}
        <Box marginTop={1} flexDirection="column">
          <Text>Restoring it anyway can leave the targets broken. To go on, type why (it is recorded with the run):</Text>
          <Box>
            <Text>Reason: </Text>
            <TypedField active={active} placeholder="e.g. newest set, the corrupt table is not needed" onSubmit={(reason) => dispatch({ type: 'override-submit', reason })} />
          </Box>
        </Box>
        {state.notice ? <Text color={theme.warn}>{state.notice}</Text> : null}
      </Frame>
    );
  }

  // Backup health of the set under the cursor (source/health/backups.ts): a dump far smaller than
  // the ones before it, components taken far apart, no checksums. Staleness is the RPO line.
  const currentIndex = current ? state.sets.indexOf(current) : -1;
  // (A base backup's integrity is its backup_manifest, checked by pg_verifybackup: not this list's sidecar checksums.)
  const health = currentIndex >= 0 && !state.pitr ? setProblems(state.sets, currentIndex, recipe.backupHealth) : [];
  const listRows = Math.max(3, rows - CHROME_ROWS - (state.warnings.length > 0 ? 1 : 0) - (health.length > 0 ? 1 : 0));
  const start = windowStart(state.cursor, sets.length, listRows);
  const shown = sets.slice(start, start + listRows);
  const pitr = state.pitr;
  const where = state.where;
  const header = pitr
    ? `  ${cell('Taken (UTC)', 17)} ${cell('Age', 8)} ${cell('Base', 10, 'right')}  Restorable window (UTC)`
    : `  ${cell('Time (UTC)', 17)} ${cell('Age', 8)} ` +
      shownKinds.map((k) => cell(kindLabel[k], 10, 'right')).join(' ') +
      ` ${cell('Checksums', 9)}` +
      (where ? ` ${cell('Where', 8)}` : '') +
      (showId ? ` ${cell('Set id', 24)}` : '');

  const rpoTarget = recipe.objectives.rpoMinutes;
  const age = current ? ageOf(current.time, now) : undefined;
  const overTarget = age !== undefined && rpoTarget !== undefined && age > rpoTarget * 60_000;

  return (
    <Frame
      step="Backup"
      title={title}
      footer={footerItems(['up', 'down', 'select', 'filter', 'back', 'help', 'quit'], { filter: 'filter (or type digits)', select: pitr ? 'choose the target time' : 'verify this set' })}
    >
      <Text bold>{header}</Text>
      {sets.length === 0 ? <Text>{state.sets.length === 0 ? `No backup sets found under ${recipe.backups.root}.` : `No set matches "${state.filter}".`}</Text> : null}
      {shown.map((set, i) => {
        const index = start + i;
        const isCursor = index === state.cursor;
        const rejected = Boolean(state.rejected[set.id]);
        const lead = `${isCursor ? theme.symbols.pointer : ' '}${setFlag(state, set)}${cell(formatUtc(set.time), 17)} ${cell(formatAge(ageOf(set.time, now)), 8)} `;
        const line = pitr
          ? `${lead}${cell(componentSize(set, 'postgres'), 10, 'right')}  ${windowCell(pitr[set.id])}`
          : lead +
            shownKinds.map((k) => cell(componentSize(set, k), 10, 'right')).join(' ') +
            ` ${cell(rejected ? 'REJECTED' : checksumLabel(set), 9)}` +
            (where ? ` ${cell(whereLabel[where[set.id] ?? 'local'], 8)}` : '') +
            (showId ? ` ${cell(set.id, 24)}` : '');
        return (
          <Text key={set.id} bold={isCursor} inverse={isCursor && !theme.color} color={rejected ? theme.danger : isCursor ? theme.accent : undefined} wrap="truncate-end">
            {line}
          </Text>
        );
      })}
      {sets.length > shown.length ? (
        <Text color={theme.muted}>
          {'  '}
          {start + 1}–{start + shown.length} of {sets.length} sets
        </Text>
      ) : null}
      <Box marginTop={1} flexDirection="column">
        {state.filtering || state.filter !== '' ? <Text>Filter: {state.filter}{state.filtering ? '▏' : ''}</Text> : null}
        {current ? (
          <>
            {where?.[current.id] && where[current.id] !== 'local' ? (
              <Wrapped
                width={Math.max(40, columns)}
                text={`Set ${sanitizeText(current.id)} · ${
                  where[current.id] === 'off-site'
                    ? `off-site only, in ${sanitizeText(state.offsiteUrl ?? current.location)}: downloaded to staging and checked before anything is touched`
                    : `local and off-site (read locally): ${sanitizeText(current.location)}`
                }`}
              />
            ) : (
              <Text wrap="truncate-end">
                {pitr ? 'Base' : 'Set'} {sanitizeText(current.id)} · {sanitizeText(current.location)}
              </Text>
            )}
            {pitr?.[current.id] ? (
              <>
                <Wrapped width={Math.max(40, columns)} color={pitr[current.id]?.window ? undefined : theme.danger} text={windowLine(pitr[current.id]!)} />
                {pitr[current.id]!.problems.slice(0, 2).map((p) => (
                  <Text key={p} color={theme.warn} wrap="truncate-end">
                    {theme.symbols.warn} {sanitizeText(p)}
                  </Text>
                ))}
              </>
            ) : (
              <Text color={overTarget ? theme.warn : undefined}>
                RPO if restored now: {formatAge(age ?? 0)} of changes lost
                {rpoTarget !== undefined ? ` (target ${formatMinutes(rpoTarget)}${overTarget ? ': OVER TARGET' : ''})` : ''}
              </Text>
            )}
            {encryptionLines(current, recipe.backups.encryption).map((l) => (
              <Wrapped key={l} width={Math.max(40, columns)} text={`Key: ${sanitizeText(l)}`} />
            ))}
            {(state.rejected[current.id] ?? []).slice(0, 2).map((r) => (
              <Text key={r} color={theme.danger} wrap="truncate-end">
                {theme.symbols.fail} Rejected: {r}
              </Text>
            ))}
            {health.length > 0 ? (
              // Wrapped under itself, not cut (issue 12: "damage in stora…" at 80 columns).
              <Box>
                <Box width={2} flexShrink={0}>
                  <Text color={theme.warn}>{theme.symbols.warn}</Text>
                </Box>
                <Wrapped
                  color={theme.warn}
                  width={Math.max(40, columns) - 2}
                  text={`Health${health.length > 1 ? ` [1 of ${health.length}, all in \`list\`]` : ''}: ${sanitizeText(health[0]?.message.replace(`${current.id}: `, '') ?? '')}`}
                />
              </Box>
            ) : null}
            {current.warnings.slice(0, 2).map((w) => (
              <Text key={w} color={theme.warn} wrap="truncate-end">
                {theme.symbols.warn} {w}
              </Text>
            ))}
          </>
        ) : null}
        {state.warnings.length > 0 ? (
          <Text color={theme.warn} wrap="truncate-end">
            {theme.symbols.warn} Catalog: {state.warnings[0]}
            {state.warnings.length > 1 ? ` (+${state.warnings.length - 1} more)` : ''}
          </Text>
        ) : null}
        {state.notice ? <Text color={theme.warn}>{state.notice}</Text> : null}
      </Box>
    </Frame>
  );
}
