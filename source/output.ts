import { safeJsonStringify, terminalSafe } from './text/sanitize.js';

export { sanitizeBlock, sanitizeText } from './text/sanitize.js';

/**
 * The two output channels: results to stdout (pipeable, --json), progress and messages to stderr.
 * Colour only on a TTY, never with NO_COLOR set (https://no-color.org), always with FORCE_COLOR.
 */
export interface Output {
  /** A result line to stdout. */
  result(text: string): void;
  /** A message/progress line to stderr. */
  info(text: string): void;
  json(value: unknown): void;
  color: boolean;
}

export function colorEnabled(stream: NodeJS.WriteStream = process.stderr, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env['NO_COLOR'] !== undefined && env['NO_COLOR'] !== '') return false;
  if (env['FORCE_COLOR'] !== undefined && env['FORCE_COLOR'] !== '0') return true;
  return Boolean(stream.isTTY) && env['TERM'] !== 'dumb';
}

const codes = { red: [31, 39], green: [32, 39], yellow: [33, 39], cyan: [36, 39], dim: [2, 22], bold: [1, 22] } as const;
export type Style = keyof typeof codes;

export function paint(enabled: boolean): (style: Style, text: string) => string {
  return (style, text) => (enabled ? `\u001B[${codes[style][0]}m${text}\u001B[${codes[style][1]}m` : text);
}

export function createOutput(): Output {
  return {
    // The last line of defence: the tool's own colour codes pass, every other control character is
    // shown escaped (fields from outside are sanitised where they are composed: text/sanitize.ts).
    result: (text) => process.stdout.write(`${terminalSafe(text)}\n`),
    info: (text) => process.stderr.write(`${terminalSafe(text)}\n`),
    json: (value) => process.stdout.write(`${safeJsonStringify(value, 2)}\n`),
    color: colorEnabled(),
  };
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  const rs = Math.round(s % 60);
  if (m < 60) return `${m}m ${String(rs).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  return `${h}h ${String(m % 60).padStart(2, '0')}m`;
}

/** "3h 12m", "2d 4h": an age for humans. */
export function formatAge(ms: number): string {
  if (ms < 60_000) return `${Math.max(0, Math.round(ms / 1000))}s`;
  const m = Math.floor(ms / 60000);
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${m % 60}m`;
  const d = Math.floor(h / 24);
  return `${d}d ${h % 24}h`;
}
