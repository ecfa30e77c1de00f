import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { MetaCommandScanner, type MetaScanResult } from '../../source/catalog/meta-scan.js';

async function scan(text: string, size = 5): Promise<MetaScanResult> {
  const buf = Buffer.from(text, 'utf8');
  const chunks: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) chunks.push(buf.subarray(i, i + size));
  const s = new MetaCommandScanner();
  await pipeline(Readable.from(chunks), s);
  return s.result;
}

// As pg_dump 15.14+ writes it: \restrict after the header comment.
const header = ['--', '-- PostgreSQL database dump', '--', '', '\\restrict Key123', 'SET standard_conforming_strings = on;'];
const footer = ['', '--', '-- PostgreSQL database dump complete', '--', '', '\\unrestrict Key123', ''];
const dump = (...body: string[]): string => [...header, ...body, ...footer].join('\n');

describe('MetaCommandScanner', () => {
  it('a clean pg_dump script: only its own \\restrict pair, COPY data with backslashes, strings, bodies, comments', async () => {
    const r = await scan(
      dump(
        "CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $_$SELECT '\\! not a command'$_$;",
        'CREATE FUNCTION g() RETURNS int LANGUAGE plpgsql AS $$',
        'BEGIN',
        '  -- \\! in a comment',
        '  RETURN 1; \\o |cat',
        'END $$;',
        "COMMENT ON TABLE t IS 'a \\ backslash \\! here';",
        "ALTER TABLE t ADD CONSTRAINT c CHECK (a ~ '^\\d+$');",
        "SELECT E'it\\'s \\! escaped';",
        'SELECT "we\\ird""\\!" FROM t; /* \\! block /* nested */ still \\o */ SELECT 1;',
        'COPY public.t (a) FROM stdin;',
        '\\! id > /tmp/canary',
        '\\o |sh',
        'x\\\\y',
        '\\.',
        'SELECT 1 \\; SELECT 2;',
      ),
    );
    expect(r.findings).toEqual([]);
    expect(r.total).toBe(0);
    expect(r.restrictKey).toBe('Key123');
    expect(r.createDatabase).toBeUndefined();
    expect(r.standardStrings).toBeUndefined();
  });

  it('reports every attack with its line number, at every chunk size', async () => {
    const body = [
      '\\! id > /tmp/canary', // line 7
      'SELECT 1; \\o |id', // 8
      "\\copy t FROM PROGRAM 'id'", // 9
      '\\setenv PAGER id', // 10
      '\\connect postgres', // 11
      "SELECT 'x'", // 12: a statement continues
      '\\gexec', // 13
    ];
    for (const size of [1, 3, 64, 10_000]) {
      const r = await scan(dump(...body), size);
      expect(r.findings.map((f) => [f.line, f.command])).toEqual([
        [7, '\\!'],
        [8, '\\o'],
        [9, '\\copy'],
        [10, '\\setenv'],
        [11, '\\connect'],
        [13, '\\gexec'],
      ]);
      expect(r.connect).toEqual({ line: 11, target: 'postgres' });
      expect(r.findings[0]?.text).toBe('\\! id > /tmp/canary');
    }
  });

  it("a command after pg_dump's \\unrestrict (an appended member) is reported; a second \\unrestrict with another key too", async () => {
    const text = `${dump('SELECT 1;')}\\! id > /tmp/canary\n\\unrestrict Other\n\\unrestrict Key123\n`;
    const r = await scan(text);
    const lines = text.split('\n');
    expect(r.findings.map((f) => f.command)).toEqual(['\\!', '\\unrestrict']);
    expect(lines[r.findings[0]!.line - 1]).toBe('\\! id > /tmp/canary');
  });

  it('a \\restrict that is not on line 1 is reported; without a first-line key every \\unrestrict is', async () => {
    expect((await scan('SELECT 1;\n\\restrict Key123\n')).findings.map((f) => f.line)).toEqual([2]);
    expect((await scan('--\nSELECT 1;\n\\unrestrict Key123\n')).findings.map((f) => f.line)).toEqual([3]);
  });

  it('recognises pg_dump --create and pg_dumpall', async () => {
    const r = await scan(
      dump(
        'CREATE DATABASE shop WITH TEMPLATE = template0;',
        '',
        '\\unrestrict Key123',
        '\\connect shop',
        '\\restrict Key123',
        'SELECT 1;',
      ),
    );
    expect(r.createDatabase).toEqual({ line: 7, name: 'shop' });
    expect(r.connect).toEqual({ line: 10, target: 'shop' });
    expect(r.findings.map((f) => f.command)).toEqual(['\\connect', '\\restrict']);
    const all = await scan('\\restrict K9\n--\n-- PostgreSQL database cluster dump\n--\nCREATE ROLE x;\n');
    expect(all.clusterDump).toBe(true);
  });

  it('a multi-line string or body does not hide or invent commands; a COPY inside a string is not COPY', async () => {
    const r = await scan(
      dump("SELECT 'line one", '\\! inside the string', "end';", '\\! outside', 'SELECT $x$', 'COPY t FROM stdin;', '$x$;', '\\! after'),
    );
    expect(r.findings.map((f) => f.line)).toEqual([10, 14]);
  });

  it('flags a change of standard_conforming_strings', async () => {
    expect((await scan(dump('SET standard_conforming_strings = off;'))).standardStrings?.line).toBe(7);
    expect((await scan(dump("SELECT set_config('standard_conforming_strings', 'off', false);"))).standardStrings?.line).toBe(7);
  });

  it('caps what it keeps, counts the rest, and strips control characters from what it shows', async () => {
    const many = Array.from({ length: 80 }, (_, i) => `\\echo ${i}`);
    const r = await scan(dump(...many, '\\! printf "\u001b[2J"'));
    expect(r.total).toBe(81);
    expect(r.findings).toHaveLength(50);
    const esc = await scan('\\! printf "\u001b]0;pwned\u0007"\n');
    expect(esc.findings[0]?.text).not.toMatch(/[\u0000-\u001f]/);
  });
});
