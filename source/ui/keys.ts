import type { Key } from 'ink';

/**
 * Every key binding of the guided interface, in one place. Screens ask `actionFor` which action a
 * keypress means among the actions they offer, and the footer lists the same bindings.
 */

export type KeyAction =
  | 'up'
  | 'down'
  | 'select'
  | 'back'
  | 'help'
  | 'quit'
  | 'interrupt'
  | 'filter'
  | 'commands'
  | 'unhealthy'
  | 'keep'
  | 'rollback'
  | 'pageUp'
  | 'pageDown';

export interface KeyBinding {
  /** How the footer and help name the key(s). */
  label: string;
  /** What it does, in a few words. */
  description: string;
  matches: (input: string, key: Key) => boolean;
}

export const keyBindings: Record<KeyAction, KeyBinding> = {
  up: { label: '↑/k', description: 'move up', matches: (input, key) => key.upArrow || (input === 'k' && !key.ctrl) },
  down: { label: '↓/j', description: 'move down', matches: (input, key) => key.downArrow || (input === 'j' && !key.ctrl) },
  pageUp: { label: 'PgUp', description: 'page up', matches: (_input, key) => key.pageUp },
  pageDown: { label: 'PgDn', description: 'page down', matches: (_input, key) => key.pageDown },
  select: { label: 'Enter', description: 'choose', matches: (_input, key) => key.return },
  back: { label: 'Esc', description: 'back', matches: (_input, key) => key.escape },
  help: { label: '?', description: 'help', matches: (input) => input === '?' },
  quit: { label: 'q', description: 'quit', matches: (input, key) => input === 'q' && !key.ctrl },
  interrupt: { label: 'Ctrl-C', description: 'abort', matches: (input, key) => key.ctrl && input === 'c' },
  filter: { label: '/', description: 'filter', matches: (input) => input === '/' },
  commands: { label: 'c', description: 'show commands', matches: (input, key) => input === 'c' && !key.ctrl },
  unhealthy: { label: 'u', description: 'if unhealthy: ask / roll back / keep', matches: (input, key) => input === 'u' && !key.ctrl },
  keep: { label: 'k', description: 'keep the restored state', matches: (input, key) => input === 'k' && !key.ctrl },
  rollback: { label: 'r', description: 'roll back', matches: (input, key) => input === 'r' && !key.ctrl },
};

/** The first of `offered` that this keypress means, if any. */
export function actionFor(input: string, key: Key, offered: readonly KeyAction[]): KeyAction | undefined {
  return offered.find((a) => keyBindings[a].matches(input, key));
}

/** True when the keypress is printable text (for type-to-filter and text prompts). */
export function isPrintable(input: string, key: Key): boolean {
  return input.length > 0 && !key.ctrl && !key.meta && !key.return && !key.escape && !key.tab && /^[\x20-\x7E\u00A0-\uFFFF]+$/.test(input);
}

/** A footer hint: the key and what it does, per action. Descriptions may be overridden per screen. */
export function footerItems(
  actions: readonly KeyAction[],
  overrides: Partial<Record<KeyAction, string>> = {},
): Array<{ key: string; description: string }> {
  const merged: Array<{ key: string; description: string }> = [];
  for (const a of actions) {
    if (a === 'down' && actions.includes('up')) continue;
    if (a === 'up' && actions.includes('down')) {
      merged.push({ key: '↑↓/jk', description: overrides.up ?? 'move' });
      continue;
    }
    if (a === 'pageDown' || a === 'pageUp') continue;
    merged.push({ key: keyBindings[a].label, description: overrides[a] ?? keyBindings[a].description });
  }
  return merged;
}
