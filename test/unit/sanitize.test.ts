import { describe, expect, it } from 'vitest';
import { formatEventLine } from '../../source/engine/line-renderer.js';
import { formatError, RestoreAssistantError } from '../../source/errors.js';
import { ExitCode } from '../../source/exit-codes.js';
import { paint } from '../../source/output.js';
import {
  hasControlCharacters,
  safeJsonStringify,
  sanitizeBlock,
  sanitizeDeep,
  sanitizeText,
  terminalSafe,
} from '../../source/text/sanitize.js';
import { truncate } from '../../source/ui/format.js';

/** The attack of issue 9: a file name that forges a line, clears the screen and sets the title. */
const HOSTILE = 'postgres\n12:00:00 ✔ Health checks passed\u001B[2J\u001B]0;pwned\u0007.sql.gz';
// Any raw control character (C0 but tab/newline, DEL, C1) or bidi override.
const RAW = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F\u202A-\u202E\u2066-\u2069]/;

describe('sanitizeText', () => {
  it('shows C0, ESC sequences, DEL, C1 and bidi controls escaped', () => {
    expect(sanitizeText(HOSTILE)).toBe('postgres\\n12:00:00 ✔ Health checks passed\\x1b[2J\\x1b]0;pwned\\x07.sql.gz');
    expect(sanitizeText('a\rb\tc\u0000d\u007Fe\u009Bf')).toBe('a\\rb\\tc\\x00d\\x7fe\\x9bf');
    expect(sanitizeText('evil\u202Egnp.sql\u2066x\u2028y')).toBe('evil\\u202egnp.sql\\u2066x\\u2028y');
    expect(sanitizeText(HOSTILE)).not.toMatch(RAW);
    expect(sanitizeText(HOSTILE)).not.toContain('\n');
  });

  it('leaves ordinary text (UTF-8 names, quotes, backslashes) alone and is idempotent', () => {
    for (const s of ['storydb_20260118_014513.dump', 'Ünïcødé 名前.rdb', 'C:\\path "quoted"', '']) expect(sanitizeText(s)).toBe(s);
    expect(sanitizeText(sanitizeText(HOSTILE))).toBe(sanitizeText(HOSTILE));
  });

  it('caps at max characters', () => {
    expect(sanitizeText('abcdef', 3)).toBe('abc…');
    expect(sanitizeText('abc', 3)).toBe('abc');
  });
});

describe('sanitizeBlock, terminalSafe, sanitizeDeep, safeJsonStringify', () => {
  it('sanitizeBlock keeps meant line breaks and tabs, escapes the rest', () => {
    expect(sanitizeBlock('one\n\ttwo\u001B[2J\r')).toBe('one\n\ttwo\\x1b[2J\\r');
  });

  it("terminalSafe lets the tool's own colours through and nothing else", () => {
    const c = paint(true);
    const line = `${c('green', '✔')} ${c('bold', 'done')}\nnext`;
    expect(terminalSafe(line)).toBe(line);
    expect(terminalSafe(`${c('red', 'x')} \u001B[2J\u001B]0;pwned\u0007`)).toBe(`${c('red', 'x')} \\x1b[2J\\x1b]0;pwned\\x07`);
    expect(terminalSafe('a\uE000b\u001B[31m')).toBe('a\\ue000b\u001B[31m');
  });

  it('sanitizeDeep reaches every string, keys included', () => {
    const v = sanitizeDeep({ a: [HOSTILE, 1, null, { [`k\u001B`]: true }], b: 'ok' });
    expect(v).toEqual({ a: [sanitizeText(HOSTILE), 1, null, { 'k\\x1b': true }], b: 'ok' });
  });

  it('safeJsonStringify writes no raw control byte and parses back to the same value', () => {
    const value = { name: `${HOSTILE}\u009B\u202E\u2028` };
    const text = safeJsonStringify(value, 2);
    expect(text).not.toMatch(RAW);
    expect(text).not.toMatch(/[\u2028\u2029]/);
    expect(JSON.parse(text)).toEqual(value);
    expect(hasControlCharacters(text)).toBe(true); // the indentation's newlines
  });
});

describe('the boundaries', () => {
  it('the line renderer prints a hostile name on one line, escaped', () => {
    const c = paint(false);
    const line = formatEventLine(
      { type: 'step-finished', stepId: 's', title: `Restored ${HOSTILE}`, durationMs: 5, ts: new Date().toISOString(), t: 1 },
      c,
    );
    expect(line).toBeDefined();
    expect(line).not.toContain('\n');
    expect(line).not.toMatch(RAW);
    expect(line).toContain('postgres\\n12:00:00 ✔ Health checks passed\\x1b[2J\\x1b]0;pwned\\x07.sql.gz');
    const out = formatEventLine(
      {
        type: 'command-finished',
        stepId: 's',
        commandId: 'c',
        argv: ['psql'],
        exitCode: 1,
        signal: null,
        durationMs: 5,
        timedOut: false,
        stdoutTail: [],
        stderrTail: [HOSTILE],
        ts: new Date().toISOString(),
        t: 2,
      },
      c,
    );
    expect(out).not.toContain('\n');
    expect(out).not.toMatch(RAW);
  });

  it('formatError escapes message and problems, keeps the layout', () => {
    const text = formatError(
      new RestoreAssistantError(`Cannot read ${HOSTILE}.`, ExitCode.usage, {
        problems: [HOSTILE],
        untouched: 'Nothing was touched.',
        next: 'Fix it.',
      }),
    );
    const lines = text.split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[0]).toBe(`Error: Cannot read ${sanitizeText(HOSTILE)}.`);
    expect(text).not.toMatch(RAW);
    expect(formatError(new Error(HOSTILE))).not.toMatch(RAW);
  });

  it('screens: truncate escapes before it cuts', () => {
    expect(truncate(HOSTILE, 200)).toBe(sanitizeText(HOSTILE));
    expect(truncate(HOSTILE, 12)).toBe('postgres\\n1…');
  });
});
