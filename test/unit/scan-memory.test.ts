import { StringDecoder } from 'node:string_decoder';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { rolesInLine, SqlRoleScanner, type SqlScanResult } from '../../source/catalog/sql-roles.js';
import { EdgeScanner } from '../../source/catalog/verify-common.js';

/**
 * Deep verification's one read of a plain dump without per-byte garbage (issue 14: the whole
 * CLI's peak RSS grew with the dump's size because V8's young generation grew on a long read
 * that decoded every byte to strings and copied every chunk). These check the readers stay
 * exact (against the string-decoding scanner they replaced, on random scripts cut at random
 * places) and that COPY data is not decoded; the memory figures themselves are in bench/.
 */

/** The role scanner as it was (decodes every byte, then splits lines in the string): the reference. */
function referenceScan(chunks: Buffer[]): SqlScanResult {
  const MAX_LINE = 1024 * 1024;
  const roles = new Set<string>();
  const result: SqlScanResult = { roles: [], restrict: false, lines: 0 };
  let inCopy = false;
  let pending = '';
  let lookingForRestrict = true;
  const line = (l: string): void => {
    result.lines++;
    if (lookingForRestrict && !/^\s*(?:--.*)?$/.test(l)) {
      lookingForRestrict = false;
      if (/^\\restrict\s+\S+/.test(l)) result.restrict = true;
    }
    if (inCopy) {
      if (l === '\\.') inCopy = false;
      return;
    }
    if (l.startsWith('--')) {
      const from = /^-- Dumped from database version (\S+)/.exec(l);
      if (from) result.serverVersion = from[1]!;
      const by = /^-- Dumped by pg_dump version (\S+)/.exec(l);
      if (by) result.pgDumpVersion = by[1]!;
      return;
    }
    if (/^COPY\s.*\bFROM stdin;\s*$/i.test(l)) {
      inCopy = true;
      return;
    }
    const joined = pending ? `${pending} ${l}` : l;
    if (/;\s*$/.test(l) || joined.length > 64 * 1024) {
      for (const r of rolesInLine(joined)) roles.add(r);
      pending = '';
    } else if (/^\s*(GRANT|REVOKE|ALTER|CREATE POLICY|SET)\b/i.test(joined)) {
      pending = joined;
    } else {
      for (const r of rolesInLine(joined)) roles.add(r);
      pending = '';
    }
  };
  const decoder = new StringDecoder('utf8');
  let rest = '';
  let skipping = false;
  const emit = (l: string): void => {
    if (skipping) {
      skipping = false;
      return;
    }
    line(l);
  };
  const take = (text: string, last: boolean): void => {
    let s = rest + text;
    let start = 0;
    for (;;) {
      const nl = s.indexOf('\n', start);
      const cr = s.indexOf('\r', start);
      const at = nl === -1 ? cr : cr === -1 ? nl : Math.min(nl, cr);
      if (at === -1) break;
      if (s[at] === '\r' && at + 1 === s.length && !last) break;
      emit(s.slice(start, at));
      start = s[at] === '\r' && s[at + 1] === '\n' ? at + 2 : at + 1;
    }
    s = s.slice(start);
    if (s.length > MAX_LINE && !skipping) {
      line(s.slice(0, MAX_LINE));
      skipping = true;
      s = '';
    } else if (skipping && s.length > MAX_LINE) s = '';
    if (last) {
      if (s !== '') emit(s);
      s = '';
    }
    rest = s;
  };
  for (const c of chunks) take(decoder.write(c), false);
  take(decoder.end(), true);
  if (pending) for (const r of rolesInLine(pending)) roles.add(r);
  result.roles = [...roles].sort();
  return result;
}

async function scan(chunks: Buffer[], opts: { maxLine?: number } = {}): Promise<SqlScanResult> {
  const s = new SqlRoleScanner(opts);
  await new Promise<void>((resolve, reject) => {
    s.on('finish', resolve);
    s.on('error', reject);
    for (const c of chunks) s.write(c);
    s.end();
  });
  return s.result!;
}

/** A small deterministic PRNG (the failures must be reproducible). */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

function randomScript(rand: () => number): Buffer {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const eols = ['\n', '\r\n', '\r'];
  const data = [
    '1\tALTER TABLE x OWNER TO in_copy;',
    '2\tGRANT ALL ON t TO in_copy2;',
    '\\\\.',
    ' \\.',
    '\\.x',
    'é日本\t\\N',
    '',
    '--',
    'COPY x FROM stdin;',
  ];
  const statements = [
    'ALTER TABLE public.t OWNER TO owner_a;',
    'ALTER TABLE public."é" OWNER TO "Rôle ""q""";',
    'GRANT SELECT ON TABLE public.t',
    '    TO wrapped_reader;',
    'REVOKE ALL ON SCHEMA public FROM PUBLIC;',
    'CREATE SCHEMA s AUTHORIZATION s_owner;',
    "SET SESSION AUTHORIZATION 'o''brien';",
    'SET search_path = public;',
    'CREATE TABLE t (i int);',
    '-- Dumped from database version 15.8',
    '-- Dumped by pg_dump version 17.6',
    '-- Name: t; Type: TABLE; Schema: public; Owner: c_owner',
    '',
    '   ',
  ];
  const parts: Buffer[] = [];
  const add = (s: string): void => {
    parts.push(Buffer.from(s));
  };
  if (rand() < 0.5) add(`--${pick(eols)}-- PostgreSQL database dump${pick(eols)}`);
  if (rand() < 0.5) add(`\\restrict Key${Math.floor(rand() * 100)}${pick(eols)}`);
  const n = 5 + Math.floor(rand() * 40);
  for (let i = 0; i < n; i++) {
    const r = rand();
    if (r < 0.25) {
      add(`COPY public.t${i} (id, note) FROM stdin;${pick(eols)}`);
      const rows = Math.floor(rand() * 30);
      for (let k = 0; k < rows; k++) add(`${rand() < 0.85 ? `${k}\t${pick(data)}` : pick(data)}${pick(eols)}`);
      if (rand() < 0.9) add(`\\.${pick(eols)}`);
    } else if (r < 0.3) {
      // Bytes that are not UTF-8, and a lone continuation byte.
      parts.push(Buffer.from([0x41, 0xc3, 0x0a, 0xe6, 0x97, 0x0d, 0x80, 0x41]));
      add(pick(eols));
    } else if (r < 0.33) {
      add(`ALTER TABLE big OWNER TO long_${i};${' '.repeat(200 + Math.floor(rand() * 5000))}${pick(eols)}`);
    } else {
      add(`${pick(statements)}${pick(eols)}`);
    }
  }
  if (rand() < 0.5) add('ALTER TABLE last OWNER TO unterminated;');
  return Buffer.concat(parts);
}

function cut(bytes: Buffer, rand: () => number): Buffer[] {
  const chunks: Buffer[] = [];
  const max = pickSize(rand);
  for (let i = 0; i < bytes.length;) {
    const n = 1 + Math.floor(rand() * max);
    chunks.push(bytes.subarray(i, i + n));
    i += n;
  }
  return chunks;
}

function pickSize(rand: () => number): number {
  const sizes = [1, 2, 3, 7, 64, 1000, 100_000];
  return sizes[Math.floor(rand() * sizes.length)]!;
}

describe('the role scanner reads bytes, not strings', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('finds what the string-decoding scanner found, on 400 random scripts cut at random places', async () => {
    for (let seed = 1; seed <= 400; seed++) {
      const rand = prng(seed);
      const bytes = randomScript(rand);
      const chunks = cut(bytes, rand);
      expect(await scan(chunks), `seed ${seed}`).toEqual(referenceScan(chunks));
      // The answer does not depend on where the chunks end.
      expect(await scan([bytes]), `seed ${seed}, one chunk`).toEqual(referenceScan([bytes]));
    }
  });

  it('does not decode COPY data: a string per statement line, none per data line', async () => {
    const rows = Array.from({ length: 20_000 }, (_, i) => `${i}\tALTER TABLE x OWNER TO in_copy_${i};\n`).join('');
    const script = Buffer.from(
      `--\n\\restrict K\nCREATE TABLE t (i int, s text);\nCOPY public.t (i, s) FROM stdin;\n${rows}\\.\nALTER TABLE t OWNER TO after_copy;\n`,
    );
    // Every way a Buffer becomes a string here: its bytes counted.
    const toString = vi.spyOn(Buffer.prototype, 'toString');
    const decoderWrite = vi.spyOn(StringDecoder.prototype, 'write');
    const r = await scan(cut(script, prng(7)));
    const decoded =
      toString.mock.calls.reduce((n, args, i) => {
        const [, start, end] = args as unknown as [string?, number?, number?];
        return n + ((end ?? (toString.mock.contexts[i] as Buffer).length) - (start ?? 0));
      }, 0) + decoderWrite.mock.calls.reduce((n, [b]) => n + (b as Buffer).length, 0);
    vi.restoreAllMocks();
    expect(r.roles).toEqual(['after_copy']);
    expect(r.lines).toBe(20_000 + 6);
    // The six lines outside the data, never the 20,000 rows.
    const outside = script.length - Buffer.byteLength(rows) - 3;
    expect(decoded).toBeLessThanOrEqual(outside);
    expect(decoded).toBeGreaterThan(0);
  });

  it('looks at a long line up to maxLine bytes, wherever the chunks end, and reads the next line whole', async () => {
    const long = `ALTER TABLE a OWNER TO early_role; ${'x'.repeat(5000)} ALTER TABLE b OWNER TO late_role;`;
    const script = Buffer.from(`${long}\nALTER TABLE c OWNER TO next_role;\nCOPY t FROM stdin;\n${'y'.repeat(5000)}\n\\.\n`);
    for (const size of [1, 7, 100, 4096, 100_000]) {
      const chunks: Buffer[] = [];
      for (let i = 0; i < script.length; i += size) chunks.push(script.subarray(i, i + size));
      const r = await scan(chunks, { maxLine: 1000 });
      expect(r.roles, `chunks of ${size}`).toEqual(['early_role', 'next_role']);
      expect(r.lines, `chunks of ${size}`).toBe(5);
    }
  });
});

describe('the edge scanner keeps the first and last 64 KiB in a fixed ring', () => {
  it('gives the same head and tail as slicing the whole stream, for any chunking', async () => {
    const EDGE = 64 * 1024;
    for (const [seed, total] of [
      [1, 10],
      [2, EDGE - 1],
      [3, EDGE],
      [4, EDGE + 1],
      [5, 3 * EDGE + 12345],
      [6, 700_000],
    ] as const) {
      const rand = prng(seed);
      const bytes = Buffer.alloc(total);
      for (let i = 0; i < total; i++) bytes[i] = Math.floor(rand() * 256);
      for (const size of [1, 1000, EDGE - 3, EDGE, EDGE + 5, 300_000]) {
        if (size === 1 && total > 100_000) continue;
        const e = new EdgeScanner();
        await new Promise<void>((resolve, reject) => {
          e.on('finish', resolve);
          e.on('error', reject);
          for (let i = 0; i < total; i += size) e.write(bytes.subarray(i, i + size));
          e.end();
        });
        const what = `${total} bytes in chunks of ${size}`;
        expect(e.bytes, what).toBe(total);
        expect(e.head.equals(bytes.subarray(0, EDGE)), what).toBe(true);
        expect(e.tail.equals(bytes.subarray(Math.max(0, total - EDGE))), what).toBe(true);
      }
    }
  });
});
