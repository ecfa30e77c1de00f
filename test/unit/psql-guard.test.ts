import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { newRestrictKey, PsqlRestrictGuard } from '../../source/engine/psql-guard.js';

const KEY = 'OurKey0123456789abcdef';

/** Push `text` through the guard in chunks of `size` bytes (1 = every split point). */
async function guard(text: string, size = 7, key = KEY): Promise<{ out: string; dropped: number }> {
  const buf = Buffer.from(text, 'utf8');
  const chunks: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) chunks.push(buf.subarray(i, i + size));
  const g = new PsqlRestrictGuard(key);
  const parts: Buffer[] = [];
  for await (const c of Readable.from(chunks).pipe(g)) parts.push(c as Buffer);
  return { out: Buffer.concat(parts).toString('utf8'), dropped: g.droppedPgDumpLines };
}

const pgDump = [
  '\\restrict Abc123',
  '--',
  '-- PostgreSQL database dump',
  '--',
  'SELECT 1;',
  'COPY t (a) FROM stdin;',
  'x\\\\y',
  '\\.',
  '',
  '\\unrestrict Abc123',
  '',
].join('\n');

describe('PsqlRestrictGuard', () => {
  it("sends our \\restrict first and drops exactly pg_dump's own pair, at every chunk size", async () => {
    for (const size of [1, 2, 3, 5, 7, 13, 64, 100_000]) {
      const r = await guard(pgDump, size);
      expect(r.out).toBe(`\\restrict ${KEY}\n${pgDump.replace('\\restrict Abc123\n', '').replace('\\unrestrict Abc123\n', '')}`);
      expect(r.dropped).toBe(2);
    }
  });

  it("passes every other backslash line untouched (psql refuses them), including after pg_dump's \\unrestrict", async () => {
    const hostile = `${pgDump}\\! id > /tmp/canary\n\\unrestrict Other\n\\unrestrict Abc1234\n \\unrestrict Abc123\n\\restrict Abc123\nSELECT 2; \\o |sh\n`;
    for (const size of [1, 4, 9, 100_000]) {
      const r = await guard(hostile, size);
      expect(r.out.startsWith(`\\restrict ${KEY}\n`)).toBe(true);
      expect(r.out).toContain(
        '\\! id > /tmp/canary\n\\unrestrict Other\n\\unrestrict Abc1234\n \\unrestrict Abc123\n\\restrict Abc123\nSELECT 2; \\o |sh\n',
      );
      // Only the first line and the exact line `\unrestrict Abc123` are dropped (' \unrestrict Abc123' is not exact).
      expect(r.dropped).toBe(2);
      expect(r.out.split('\n').filter((l) => l === '\\unrestrict Abc123')).toHaveLength(0);
    }
  });

  it("finds pg_dump's \\restrict after its header comment, as pg_dump 15.14+ writes it", async () => {
    const real = [
      '--',
      '-- PostgreSQL database dump',
      '--',
      '',
      '\\restrict Abc123',
      '',
      '-- Dumped by pg_dump version 15.18',
      'SELECT 1;',
      '',
      '\\unrestrict Abc123',
      '',
    ].join('\n');
    for (const size of [1, 6, 100_000]) {
      const r = await guard(real, size);
      expect(r.out).toBe(`\\restrict ${KEY}\n--\n-- PostgreSQL database dump\n--\n\n\n-- Dumped by pg_dump version 15.18\nSELECT 1;\n\n`);
      expect(r.dropped).toBe(2);
    }
  });

  it('a dump without a \\restrict first line gets ours and passes whole, even a \\unrestrict line', async () => {
    const old = '--\n-- PostgreSQL database dump\n--\nSELECT 1;\n\\unrestrict Abc123\n';
    const r = await guard(old, 3);
    expect(r.out).toBe(`\\restrict ${KEY}\n${old}`);
    expect(r.dropped).toBe(0);
  });

  it("a \\restrict that is not the first line is not pg_dump's and is not dropped", async () => {
    const text = 'SELECT 1;\n\\restrict Abc123\n\\unrestrict Abc123\n';
    expect((await guard(text, 2)).out).toBe(`\\restrict ${KEY}\n${text}`);
  });

  it('handles CRLF, a last line without newline, an empty input and a one-line dump', async () => {
    expect((await guard('\\restrict K1\r\nSELECT 1;\r\n\\unrestrict K1\r\n', 4)).out).toBe(`\\restrict ${KEY}\nSELECT 1;\r\n`);
    expect((await guard('\\restrict K1\nSELECT 1;\n\\unrestrict K1', 4)).out).toBe(`\\restrict ${KEY}\nSELECT 1;\n`);
    expect((await guard('', 4)).out).toBe(`\\restrict ${KEY}\n`);
    expect((await guard('\\restrict K1', 4)).out).toBe(`\\restrict ${KEY}\n`);
    expect((await guard('SELECT 1;', 4)).out).toBe(`\\restrict ${KEY}\nSELECT 1;`);
  });

  it('makes a fresh alphanumeric key each time and refuses a weak one', () => {
    const a = newRestrictKey();
    expect(a).toMatch(/^[A-Za-z0-9]{40,}$/);
    expect(newRestrictKey()).not.toBe(a);
    expect(() => new PsqlRestrictGuard('short')).toThrow();
    expect(() => new PsqlRestrictGuard('has space 0123456789')).toThrow();
  });
});
