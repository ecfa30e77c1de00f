import { createContext, useContext } from 'react';

/**
 * Colours of the guided interface. With NO_COLOR set (https://no-color.org) every colour is
 * undefined and Ink prints plain text; emphasis that is not colour (bold, inverse) stays, and
 * every meaning shown in colour is also carried by a word or a symbol.
 */
export interface Theme {
  color: boolean;
  accent: string | undefined;
  ok: string | undefined;
  warn: string | undefined;
  danger: string | undefined;
  muted: string | undefined;
  /** Symbols: plain ASCII fallbacks are not needed on UTF-8 terminals; kept here to change in one place. */
  symbols: { ok: string; fail: string; warn: string; running: string; pointer: string; skipped: string };
}

export function themeFor(env: NodeJS.ProcessEnv = process.env): Theme {
  const color = !(env['NO_COLOR'] !== undefined && env['NO_COLOR'] !== '') && env['TERM'] !== 'dumb';
  return {
    color,
    accent: color ? 'cyan' : undefined,
    ok: color ? 'green' : undefined,
    warn: color ? 'yellow' : undefined,
    danger: color ? 'red' : undefined,
    muted: color ? 'gray' : undefined,
    symbols: { ok: '✔', fail: '✖', warn: '!', running: '▸', pointer: '›', skipped: '-' },
  };
}

export const ThemeContext = createContext<Theme>(themeFor({ NO_COLOR: '1' }));

export function useTheme(): Theme {
  return useContext(ThemeContext);
}
