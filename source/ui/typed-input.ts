import type { Key } from 'ink';

/**
 * What one chunk of terminal input does to a typed field. A chunk is whatever arrived together: one
 * key, a paste, or a burst from a laggy link ("shopxx" then "\x7f\x7f" in one read, or all of
 * "shopxx\x7f\x7f\r" at once). Every character is applied in order: backspace (DEL or BS) removes
 * the last character, Enter submits what is typed so far (the rest of the chunk is ignored),
 * other control characters are dropped, printable text is appended. Pure: tested with bursts.
 */
export interface TypedResult {
  value: string;
  /** Enter was in the chunk: submit `value`. */
  submit: boolean;
}

export function applyTypedChunk(
  value: string,
  input: string,
  key: Pick<Key, 'backspace' | 'delete' | 'return' | 'ctrl' | 'meta' | 'escape' | 'tab'>,
): TypedResult {
  // Ink reports a lone backspace/DEL as a key with an empty input, and Enter as key.return.
  if (input === '' || input === '\x7f' || input === '\b') {
    if (key.backspace || key.delete) return { value: value.slice(0, -1), submit: false };
    if (key.return) return { value, submit: true };
    if (input === '') return { value, submit: false };
  }
  if (key.return && (input === '\r' || input === '\n')) return { value, submit: true };
  if (key.ctrl || key.meta || key.escape || key.tab) return { value, submit: false };
  let v = value;
  for (const ch of Array.from(input)) {
    if (ch === '\x7f' || ch === '\b') v = Array.from(v).slice(0, -1).join('');
    else if (ch === '\r' || ch === '\n') return { value: v, submit: true };
    else if (/^[\x20-\x7E\u00A0-\uFFFF]$/u.test(ch)) v += ch;
  }
  return { value: v, submit: false };
}
