import { describe, expect, it } from 'vitest';
import { MetaCommandScanner } from '../../source/catalog/meta-scan.js';
import { PlainSectionSplitter, type SplitEvent } from '../../source/catalog/plain-sections.js';
import { PsqlRestrictGuard } from '../../source/engine/psql-guard.js';

/**
 * The COPY-data fast path (MetaCommandScanner.skipCopyData, used by PlainSectionSplitter and the
 * scanner's own stream) against the line-by-line reading it replaces: random and adversarial
 * scripts (terminator-like lines in the data, markers and meta-commands inside it, CR/LF, a
 * terminator cut at every offset) fed through both in the same chunks give the same events, the
 * same meta-command scan and the same section summary.
 */

/** A deterministic PRNG (mulberry32): a failure names its seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const marker = (name: string, type: string, data = false): string =>
  `--\n-- ${data ? 'Data for ' : ''}Name: ${name}; Type: ${type}; Schema: public; Owner: alice\n--\n\n`;

const HEADER =
  '--\n-- PostgreSQL database dump\n--\n\n\\restrict abcDEF123\n\nSET statement_timeout = 0;\nSET standard_conforming_strings = on;\n' +
  "SELECT pg_catalog.set_config('search_path', '', false);\n\n";

/** Lines a hostile dump can put in COPY data: some end the data as psql reads it, most do not. */
const DATA_LINES = [
  '1\t2',
  'x',
  '',
  '\\.',
  '\\.\r',
  '\\\\.',
  ' \\.',
  '\\. ',
  '\\.x',
  '\\.\r\r',
  '\\.\\.',
  '\\',
  '.',
  '\r',
  '\\!',
  '\\! touch /tmp/pwned',
  '\\connect other',
  '\\unrestrict abcDEF123',
  '-- Name: evil; Type: INDEX; Schema: public; Owner: x',
  '-- Data for Name: evil; Type: TABLE DATA; Schema: public; Owner: x',
  'SET search_path = evil;',
  'SET standard_conforming_strings = off;',
  'COPY public.a (id) FROM stdin;',
  'CREATE DATABASE evil;',
  "'",
  '"',
  '$$',
  '/*',
  '*/',
  ';',
  'é\t\u{1f600}',
];

const STATEMENTS = [
  'CREATE TABLE public.a (id int);',
  "CREATE FUNCTION public.f() RETURNS text LANGUAGE sql AS $$ SELECT '\n\\.\n' $$;",
  "SELECT 'a\n\\.\nb';",
  "SET default_tablespace = '';",
  '\\! echo hi',
  '/* a comment\n\\.\n*/',
];

function copyBlock(r: () => number, table: string): string {
  const n = Math.floor(r() * 12);
  const lines: string[] = [];
  for (let i = 0; i < n; i++) lines.push(DATA_LINES[Math.floor(r() * DATA_LINES.length)]!);
  return `COPY public.${table} (id) FROM stdin;\n${lines.map((l) => `${l}\n`).join('')}${r() < 0.8 ? '\\.\n' : ''}\n`;
}

function randomScript(r: () => number): string {
  let s = r() < 0.9 ? HEADER : '';
  const entries = 1 + Math.floor(r() * 10);
  for (let e = 0; e < entries; e++) {
    const pick = r();
    if (pick < 0.45) s += marker(`t${e}`, 'TABLE DATA', true) + copyBlock(r, `t${e}`);
    else if (pick < 0.6)
      s += marker(`i${e}`, 'INDEX') + `CREATE INDEX i${e} ON public.t${e} (id);\n` + (r() < 0.5 ? copyBlock(r, 'x') : '') + '\n';
    else if (pick < 0.7) s += marker(`t${e} fk`, 'FK CONSTRAINT') + copyBlock(r, 'y');
    else if (pick < 0.85) s += marker(`t${e}`, 'TABLE') + `${STATEMENTS[Math.floor(r() * STATEMENTS.length)]!}\n\n`;
    else s += copyBlock(r, 'z');
  }
  if (r() < 0.8) s += '\\unrestrict abcDEF123\n';
  if (r() < 0.3) s += DATA_LINES[Math.floor(r() * DATA_LINES.length)]!; // no final newline
  if (r() < 0.2) s = s.replace(/\n/g, '\r\n');
  return s;
}

function chunksOf(buf: Buffer, cuts: number[]): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  for (const c of [...cuts].sort((a, b) => a - b)) {
    out.push(buf.subarray(at, c));
    at = c;
  }
  out.push(buf.subarray(at));
  return out;
}

function viaSplitter(chunks: Buffer[], copyFastPath: boolean): unknown {
  const s = new PlainSectionSplitter({ copyFastPath });
  const events: SplitEvent[] = [];
  for (const c of chunks) events.push(...s.push(c));
  events.push(...s.end());
  return {
    events: events.map((e) =>
      e.kind === 'bytes'
        ? { bytes: e.data.toString('latin1') }
        : { [e.kind]: { ...e.entry, settings: e.entry.settings.map((b) => b.toString('latin1')) } },
    ),
    meta: s.metaScan,
    summary: s.summary(),
    unrecognised: s.unrecognised,
  };
}

async function viaScanner(chunks: Buffer[], copyFastPath: boolean): Promise<unknown> {
  const s = new MetaCommandScanner({ copyFastPath });
  for (const c of chunks) if (c.length > 0) s.write(c);
  s.end();
  await new Promise<void>((resolve, reject) => s.on('finish', resolve).on('error', reject));
  return s.result;
}

async function same(chunks: Buffer[], label: string): Promise<void> {
  expect(viaSplitter(chunks, true), label).toEqual(viaSplitter(chunks, false));
  expect(await viaScanner(chunks, true), label).toEqual(await viaScanner(chunks, false));
}

describe('COPY data fast path: the same decisions as the line-by-line reading', () => {
  it('random scripts in random chunks', async () => {
    for (let seed = 1; seed <= 400; seed++) {
      const r = rng(seed);
      const buf = Buffer.from(randomScript(r));
      const cuts = Array.from({ length: Math.floor(r() * 8) }, () => Math.floor(r() * (buf.length + 1)));
      await same(chunksOf(buf, cuts), `seed ${seed}`);
      await same([buf], `seed ${seed}, one chunk`);
    }
  });

  it('every line of the adversarial set in COPY data, the script cut at every offset (and at every pair of offsets near the terminators)', async () => {
    const body = DATA_LINES.map((l) => `${l}\n`).join('');
    for (const eol of ['\n', '\r\n']) {
      const text = (
        HEADER +
        marker('a', 'TABLE DATA', true) +
        `COPY public.a (id) FROM stdin;\n1\n${DATA_LINES.filter((l) => !/^\\\.\r?$/.test(l))
          .map((l) => `${l}\n`)
          .join('')}\\.\n\n` +
        marker('b', 'TABLE DATA', true) +
        `COPY public.b (id) FROM stdin;\n${body}\\.\n\n` +
        marker('b_idx', 'INDEX') +
        'CREATE INDEX b_idx ON public.b (id);\n\n\\unrestrict abcDEF123\n'
      ).replace(/\n/g, eol);
      const buf = Buffer.from(text);
      for (let cut = 0; cut <= buf.length; cut++) await same(chunksOf(buf, [cut]), `cut at ${cut} (${JSON.stringify(eol)})`);
      // Two cuts around each terminator-like line: a `\.` split into three pieces.
      for (let at = buf.indexOf('\\.'); at !== -1; at = buf.indexOf('\\.', at + 1)) {
        for (let a = Math.max(0, at - 2); a <= Math.min(buf.length, at + 4); a++)
          for (let b = a; b <= Math.min(buf.length, at + 5); b++) await same(chunksOf(buf, [a, b]), `cuts at ${a}, ${b}`);
      }
      // One byte at a time.
      await same(
        Array.from({ length: buf.length }, (_v, i) => buf.subarray(i, i + 1)),
        `byte by byte (${JSON.stringify(eol)})`,
      );
    }
  });

  it('a meta-command after a COPY that a terminator-like line did not end is still seen, at the same line, by both', async () => {
    const text = `${HEADER}${marker('a', 'TABLE DATA', true)}COPY public.a (id) FROM stdin;\n\\\\.\n \\.\n\\.x\n\\.\n\\! touch /tmp/pwned\n`;
    const fast = viaSplitter([Buffer.from(text)], true) as { meta: { findings: { line: number; command: string }[] } };
    expect(fast.meta.findings.map((f) => `${f.line} ${f.command}`)).toEqual([`${text.split('\n').length - 1} \\!`]);
    await same([Buffer.from(text)], 'fixed');
  });
});

/** Lines around pg_dump's `\unrestrict K`: only the exact line (optionally with a CR) is pg_dump's. */
const UNRESTRICT_LINES = [
  '\\unrestrict abcDEF123',
  '\\unrestrict abcDEF123\r',
  '\\unrestrict abcDEF123\r\r',
  '\\unrestrict abcDEF123 ',
  ' \\unrestrict abcDEF123',
  'x\\unrestrict abcDEF123',
  '\\unrestrict abcDEF1234',
  '\\unrestrict abcDEF12',
  '\\unrestrict abcDEF123\\unrestrict abcDEF123',
  '\\unrestrict other0000000000',
  '\\! touch /tmp/pwned',
  'SELECT 1;',
  '',
  '\r',
];

async function viaGuard(chunks: Buffer[], fastPath: boolean): Promise<{ out: string; dropped: number }> {
  const g = new PsqlRestrictGuard('K0123456789abcdefK', { fastPath });
  const parts: Buffer[] = [];
  g.on('data', (b: Buffer) => parts.push(b));
  for (const c of chunks) if (c.length > 0) g.write(c);
  g.end();
  await new Promise<void>((resolve, reject) => g.on('end', resolve).on('error', reject));
  return { out: Buffer.concat(parts).toString('latin1'), dropped: g.droppedPgDumpLines };
}

describe('psql guard fast path: the same lines dropped as looking at every line', () => {
  it('random scripts with near-miss unrestrict lines, in random chunks', async () => {
    for (let seed = 1; seed <= 300; seed++) {
      const r = rng(seed);
      let s = r() < 0.9 ? HEADER : r() < 0.5 ? '' : '-- x\n\\restrict abcDEF123\n';
      const n = Math.floor(r() * 30);
      for (let i = 0; i < n; i++)
        s += `${r() < 0.5 ? UNRESTRICT_LINES[Math.floor(r() * UNRESTRICT_LINES.length)]! : DATA_LINES[Math.floor(r() * DATA_LINES.length)]!}\n`;
      if (r() < 0.4) s += UNRESTRICT_LINES[Math.floor(r() * UNRESTRICT_LINES.length)]!; // no final newline
      if (r() < 0.2) s = s.replace(/\n/g, '\r\n');
      const buf = Buffer.from(s);
      const cuts = Array.from({ length: Math.floor(r() * 8) }, () => Math.floor(r() * (buf.length + 1)));
      const chunks = chunksOf(buf, cuts);
      expect(await viaGuard(chunks, true), `seed ${seed}`).toEqual(await viaGuard(chunks, false));
    }
  });

  it('every near-miss line after the head, cut at every offset and byte by byte', async () => {
    for (const eol of ['\n', '\r\n']) {
      const buf = Buffer.from(
        (HEADER + UNRESTRICT_LINES.map((l) => `${l}\n`).join('') + 'SELECT 2;\n\\unrestrict abcDEF123').replace(/\n/g, eol),
      );
      const reference = await viaGuard([buf], false);
      expect(reference.dropped).toBeGreaterThanOrEqual(3);
      for (let cut = 0; cut <= buf.length; cut++) expect(await viaGuard(chunksOf(buf, [cut]), true), `cut at ${cut}`).toEqual(reference);
      expect(
        await viaGuard(
          Array.from({ length: buf.length }, (_v, i) => buf.subarray(i, i + 1)),
          true,
        ),
      ).toEqual(reference);
    }
  });
});
