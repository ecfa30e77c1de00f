/**
 * The one sanitiser for text that came from outside the tool (file and directory names, metadata
 * values, command output, server replies, child processes' error messages) before it reaches a
 * terminal, a log line, events or a report.
 *
 * Every character a terminal could act on is shown escaped instead of passed through:
 *   - C0 controls (U+0000..U+001F): `\n`, `\r`, `\t`, `\e`... are written as `\n`, `\r`, `\t`, `\x1b`, ...
 *   - DEL (U+007F) and C1 controls (U+0080..U+009F, e.g. the 8-bit CSI U+009B): `\x7f`, `\x9b`
 *   - bidi overrides/isolates and marks (U+061C, U+200E/F, U+202A..U+202E, U+2066..U+2069) and
 *     the line/paragraph separators U+2028/U+2029: `\u202e`
 * So an ESC sequence (`\x1b[2J`, `\x1b]0;title\x07`) prints as its letters and does nothing, and a
 * newline inside a single-line field cannot forge a line of its own.
 *
 * Backslashes are left as they are, so the escaping is idempotent: sanitising twice (a field at the
 * source, a line again at the boundary) never doubles anything. The cost: a name that really holds
 * the four characters `\x1b` reads the same as one holding ESC; both are harmless.
 */

// Everything a terminal may interpret. (Tab and newline included: see sanitizeBlock for text
// whose line breaks are meant.)
const UNSAFE = /[\u0000-\u001F\u007F-\u009F\u061C\u200E\u200F\u2028\u2029\u202A-\u202E\u2066-\u2069]/g;
const UNSAFE_BUT_LINES = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F\u061C\u200E\u200F\u2028\u2029\u202A-\u202E\u2066-\u2069]/g;
const TEST_UNSAFE = new RegExp(UNSAFE.source);

const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function escapeChar(ch: string): string {
  const named = NAMED[ch];
  if (named) return named;
  const code = ch.charCodeAt(0);
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

function cap(text: string, max: number | undefined): string {
  return max !== undefined && text.length > max ? `${text.slice(0, max)}…` : text;
}

/** A single-line field: every control character (newlines too) escaped; capped at `max` characters (then "…"). */
export function sanitizeText(text: string, max?: number): string {
  return cap(String(text).replace(UNSAFE, escapeChar), max);
}

/** Text whose line breaks are meant (a multi-line message): as sanitizeText, but "\n" and tab stay as they are. */
export function sanitizeBlock(text: string, max?: number): string {
  return cap(String(text).replace(UNSAFE_BUT_LINES, escapeChar), max);
}

/** Whether a string holds anything sanitizeText would escape. */
export function hasControlCharacters(text: string): boolean {
  return TEST_UNSAFE.test(text);
}

/** Every string in a JSON-like value (object keys too) through sanitizeText; other values as they are. */
export function sanitizeDeep<T>(value: T): T {
  if (typeof value === 'string') return sanitizeText(value) as T;
  if (Array.isArray(value)) return value.map((v: unknown) => sanitizeDeep(v)) as T;
  if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) out[sanitizeText(k)] = sanitizeDeep(v);
    return out as T;
  }
  return value;
}

// The colour codes output.ts's paint() writes: the only escape sequences the tool itself prints.
const OWN_SGR = /\u001B\[(?:1|2|22|31|32|33|36|39)m/g;
const SGR_PLACEHOLDER = '\uE000';

/**
 * The last line of defence at the terminal (output.ts result/info, the line renderer): a line or
 * block the tool composed, possibly with its own colour codes and meant line breaks. Those pass;
 * every other control character is escaped. It does not stop a newline inside a field from
 * starting a line (sanitise fields with sanitizeText for that); it stops anything from reaching
 * the terminal as an escape sequence.
 */
export function terminalSafe(text: string): string {
  if (!hasControlCharacters(text.replace(/\n/g, ''))) return text;
  const own: string[] = [];
  const held = text.replace(new RegExp(SGR_PLACEHOLDER, 'g'), '\\ue000').replace(OWN_SGR, (m) => {
    own.push(m);
    return SGR_PLACEHOLDER;
  });
  let i = 0;
  return sanitizeBlock(held).replace(new RegExp(SGR_PLACEHOLDER, 'g'), () => own[i++] ?? '');
}

// In JSON text these can only occur inside strings (all structural characters are ASCII).
const JSON_UNSAFE = /[\u007F-\u009F\u061C\u200E\u200F\u2028\u2029\u202A-\u202E\u2066-\u2069]/g;

/**
 * JSON.stringify with no raw control character in its output: JSON already escapes C0; this also
 * writes DEL, C1, bidi controls and U+2028/2029 as \uXXXX escapes. Lossless (it parses back to
 * the same value), so evidence keeps the exact bytes a name had while `cat events.jsonl` stays safe.
 */
export function safeJsonStringify(value: unknown, space?: number): string {
  return (JSON.stringify(value, null, space) ?? 'null').replace(
    JSON_UNSAFE,
    (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}
