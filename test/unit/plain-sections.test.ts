import { describe, expect, it } from 'vitest';
import {
  normaliseQualifiedName,
  PlainSectionSplitter,
  summariseSections,
  type DumpEntry,
  type SplitEvent,
} from '../../source/catalog/plain-sections.js';
import { Scheduler, type Item } from '../../source/engine/plain-split/schedule.js';

const marker = (name: string, type: string, schema = 'public', data = false): string =>
  `--\n-- ${data ? 'Data for ' : ''}Name: ${name}; Type: ${type}; Schema: ${schema}; Owner: alice\n--\n\n`;

const HEADER = `--
-- PostgreSQL database dump
--

\\restrict abcDEF123

-- Dumped from database version 15.18

SET statement_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET client_min_messages = warning;

`;

/** A small pg_dump-shaped script: a function whose body holds a fake marker, two tables, data, keys. */
const DUMP =
  HEADER +
  marker('f()', 'FUNCTION') +
  "CREATE FUNCTION public.f() RETURNS text LANGUAGE sql AS $$ SELECT '\n--\n-- Name: fake; Type: INDEX; Schema: public; Owner: x\n--\n' $$;\n\n" +
  "SET default_tablespace = '';\n\n" +
  marker('a', 'TABLE') +
  'CREATE TABLE public.a (id int);\n\n' +
  marker('B', 'TABLE') +
  'CREATE TABLE public."B" (id int, a_id int);\n\n' +
  marker('a', 'TABLE DATA', 'public', true) +
  'COPY public.a (id) FROM stdin;\n1\n-- Name: x; Type: INDEX; Schema: public; Owner: y\n\\.\n\n\n' +
  marker('B', 'TABLE DATA', 'public', true) +
  'COPY public."B" (id, a_id) FROM stdin;\n1\t1\n\\.\n\n\n' +
  marker('a a_pkey', 'CONSTRAINT') +
  'ALTER TABLE ONLY public.a\n    ADD CONSTRAINT a_pkey PRIMARY KEY (id);\n\n' +
  "SET default_tablespace = 'fast';\n\n" +
  marker('b_idx', 'INDEX') +
  'CREATE INDEX b_idx ON public."B" USING btree (a_id);\n\n' +
  marker('B b_a_fk', 'FK CONSTRAINT') +
  'ALTER TABLE ONLY public."B"\n    ADD CONSTRAINT b_a_fk FOREIGN KEY (a_id) REFERENCES public.a(id);\n\n' +
  marker('TABLE a', 'ACL') +
  'GRANT SELECT ON TABLE public.a TO bob;\n\n' +
  '--\n-- PostgreSQL database dump complete\n--\n\n\\unrestrict abcDEF123\n\n';

function split(text: string, chunk = 1 << 20): { events: SplitEvent[]; splitter: PlainSectionSplitter } {
  const splitter = new PlainSectionSplitter();
  const buf = Buffer.from(text);
  const events: SplitEvent[] = [];
  for (let i = 0; i < buf.length; i += chunk) events.push(...splitter.push(buf.subarray(i, i + chunk)));
  events.push(...splitter.end());
  return { events, splitter };
}

function entries(events: SplitEvent[]): DumpEntry[] {
  return events.filter((e) => e.kind === 'end').map((e) => e.entry);
}

describe('plain-sections: a plain pg_dump script cut at its section markers', () => {
  it('classifies each entry, reads tables and foreign-key locks, and ignores markers inside bodies and COPY data', () => {
    const { events, splitter } = split(DUMP);
    expect(splitter.unrecognised).toBeUndefined();
    const e = entries(events);
    expect(e.map((x) => `${x.phase} ${x.type} ${x.name}`)).toEqual([
      'pre FUNCTION f()',
      'pre TABLE a',
      'pre TABLE B',
      'data TABLE DATA a',
      'data TABLE DATA B',
      'index CONSTRAINT a a_pkey',
      'index INDEX b_idx',
      'fk FK CONSTRAINT B b_a_fk',
      'tail ACL TABLE a',
    ]);
    expect(e[3]!.table).toBe('public.a');
    expect(e[4]!.table).toBe('public.B');
    expect(e[5]!.table).toBe('public.a');
    expect(e[6]!.table).toBe('public.B');
    expect(e[7]!.locks).toEqual(['public.B', 'public.a']);
    expect(splitter.summary()).toEqual({ recognised: true, entries: 9, byPhase: { pre: 3, data: 2, index: 2, attach: 0, fk: 1, tail: 1 } });
  });

  it('gives each entry the session settings in force at its start, its own SET lines included', () => {
    const e = entries(split(DUMP).events);
    const settings = (x: DumpEntry): string[] => x.settings.map((b) => b.toString().trim());
    expect(settings(e[0]!)).toEqual([
      'SET statement_timeout = 0;',
      "SET client_encoding = 'UTF8';",
      'SET standard_conforming_strings = on;',
      "SELECT pg_catalog.set_config('search_path', '', false);",
      'SET client_min_messages = warning;',
    ]);
    expect(settings(e[1]!)).toContain("SET default_tablespace = '';");
    // The index's tablespace SET precedes its marker: it is the index's, not the constraint's.
    expect(settings(e[5]!)).toContain("SET default_tablespace = '';");
    expect(settings(e[6]!)).toContain("SET default_tablespace = 'fast';");
    expect(settings(e[6]!)).not.toContain("SET default_tablespace = '';");
  });

  it('passes every byte on exactly once, in order, whatever the chunk size', () => {
    for (const chunk of [1, 7, 64, 1 << 20]) {
      const bytes = split(DUMP, chunk)
        .events.filter((e) => e.kind === 'bytes')
        .map((e) => (e.kind === 'bytes' ? e.data.toString() : ''))
        .join('');
      expect(bytes, `chunk ${chunk}`).toBe(DUMP);
    }
  });

  it('says why a script is not split: a statement before the first entry, an out-of-order entry, --create, pg_dumpall, no markers', () => {
    const first = HEADER + 'CREATE TABLE early (x int);\n' + DUMP.slice(HEADER.length);
    expect(summariseSections([Buffer.from(first)]).reason).toMatch(/^a statement comes before the first pg_dump entry: CREATE TABLE early/);
    const late = DUMP.replace(marker('TABLE a', 'ACL'), marker('g()', 'FUNCTION'));
    expect(summariseSections([Buffer.from(late)]).reason).toMatch(/the FUNCTION entry g\(\) comes after the data/);
    const dataLate = DUMP + marker('c', 'TABLE DATA', 'public', true) + 'COPY public.c (x) FROM stdin;\n\\.\n';
    expect(summariseSections([Buffer.from(dataLate)]).reason).toMatch(/comes after the post-data entries/);
    const create = HEADER + marker('shop', 'DATABASE', '-') + 'CREATE DATABASE shop;\n' + DUMP.slice(HEADER.length);
    expect(summariseSections([Buffer.from(create)]).reason).toMatch(/DATABASE entry \(pg_dump --create/);
    const all = "--\n-- PostgreSQL database cluster dump\n--\n\nSET client_encoding = 'UTF8';\n" + DUMP.slice(HEADER.length);
    expect(summariseSections([Buffer.from(all)]).recognised).toBe(false);
    expect(summariseSections([Buffer.from(HEADER + 'CREATE TABLE t (x int);\n')]).recognised).toBe(false);
    expect(summariseSections([Buffer.from(HEADER)]).reason).toMatch(/no pg_dump section markers/);
    const std = DUMP.replace('SET client_min_messages = warning;', 'SET standard_conforming_strings = off;');
    expect(summariseSections([Buffer.from(std)]).reason).toMatch(/standard_conforming_strings/);
  });

  it('reports meta-commands in the same pass (the restricted psql refuses them; the split does not hide them)', () => {
    const hostile = DUMP.replace(
      '\\.\n\n\n' + marker('B', 'TABLE DATA', 'public', true),
      '\\.\n\\! id\n\n' + marker('B', 'TABLE DATA', 'public', true),
    );
    const { events, splitter } = split(hostile);
    expect(splitter.metaScan.total).toBe(1);
    expect(splitter.unrecognised).toBeUndefined();
    // The line is in the first data entry's bytes: its connection reads it.
    let inA = '';
    let cur: DumpEntry | undefined;
    for (const e of events) {
      if (e.kind === 'start') cur = e.entry;
      else if (e.kind === 'bytes' && cur?.type === 'TABLE DATA' && cur.name === 'a') inA += e.data.toString();
    }
    expect(inA).toContain('\\! id\n');
  });

  it('normalises qualified names as the server does', () => {
    expect(normaliseQualifiedName('public.orders')).toBe('public.orders');
    expect(normaliseQualifiedName('Public."Order ""X"""')).toBe('public.Order "X"');
    expect(normaliseQualifiedName('"a.b".c')).toBe('a.b.c');
  });
});

describe('plain-split scheduler: pg_restore order from a plain script', () => {
  const entry = (seq: number, phase: DumpEntry['phase'], extra: Partial<DumpEntry> = {}): Item => ({
    entry: { seq, type: phase, name: `e${seq}`, schema: 'public', phase, settings: [], setsInside: [], ...extra },
    start: 0,
    end: 0,
  });
  const never = new AbortController().signal;

  it('runs nothing before pre-data succeeded, indexes only once their table is loaded, foreign keys after every index, the tail in order', async () => {
    const s = new Scheduler(2);
    const da = entry(1, 'data', { table: 'public.a' });
    const db = entry(2, 'data', { table: 'public.b' });
    s.add(da);
    s.add(db);
    const pending = s.next(never);
    s.preFinished(true);
    expect(await pending).toBe(da);
    expect(await s.next(never)).toBe(db);
    const ia = entry(3, 'index', { table: 'public.a' });
    const ib = entry(4, 'index', { table: 'public.b' });
    const fk1 = entry(5, 'fk', { locks: ['public.b', 'public.a'] });
    const fk2 = entry(6, 'fk', { locks: ['public.a', 'public.c'] });
    const fk3 = entry(7, 'fk', { locks: ['public.d', 'public.e'] });
    const t1 = entry(8, 'tail');
    const t2 = entry(9, 'tail');
    for (const i of [ia, ib, fk1, fk2, fk3, t1, t2]) s.add(i);
    s.allKnown();
    s.finished(db);
    // b is loaded: its index may run while a still loads; a's may not.
    expect(await s.next(never)).toBe(ib);
    s.finished(da);
    expect(await s.next(never)).toBe(ia);
    s.finished(ib);
    s.finished(ia);
    expect(await s.next(never)).toBe(fk1);
    // fk2 shares public.a with the running fk1: fk3 goes first.
    expect(await s.next(never)).toBe(fk3);
    const waiting = s.next(never);
    s.finished(fk1);
    expect(await waiting).toBe(fk2);
    s.finished(fk2);
    s.finished(fk3);
    expect(await s.next(never)).toBe(t1);
    const t = s.next(never);
    s.finished(t1);
    expect(await t).toBe(t2);
    s.finished(t2);
    expect(await s.next(never)).toBeUndefined();
    expect(s.complete()).toBe(true);
  });

  it('starts the biggest work first, and a foreign key as soon as its own tables are loaded and indexed', async () => {
    const s = new Scheduler(2);
    const small = { ...entry(1, 'data', { table: 'public.small' }), start: 0, end: 10 };
    const big = { ...entry(2, 'data', { table: 'public.big' }), start: 10, end: 1000 };
    s.add(small);
    s.add(big);
    s.preFinished(true);
    expect(await s.next(never)).toBe(big);
    expect(await s.next(never)).toBe(small);
    const iSmall = entry(3, 'index', { table: 'public.small' });
    const iBig = entry(4, 'index', { table: 'public.big' });
    const fkSmall = entry(5, 'fk', { locks: ['public.small', 'public.small'] });
    const fkBig = entry(6, 'fk', { locks: ['public.small', 'public.big'] });
    for (const i of [iSmall, iBig, fkSmall, fkBig]) s.add(i);
    s.allKnown();
    s.finished(small);
    expect(await s.next(never)).toBe(iSmall);
    s.finished(iSmall);
    // big is still loading: its foreign key waits, the other one runs now.
    expect(await s.next(never)).toBe(fkSmall);
    const next = s.next(never);
    s.finished(big);
    expect(await next).toBe(iBig);
    s.finished(fkSmall);
    const fk = s.next(never);
    s.finished(iBig);
    expect(await fk).toBe(fkBig);
  });

  it('hands out table data while it is still staged (open), its indexes only once it ran, and weighs it once staged', async () => {
    const s = new Scheduler(2);
    const staged = { ...entry(1, 'data', { table: 'public.small' }), start: 0, end: 10 };
    s.add(staged);
    const open: Item = { ...entry(2, 'data', { table: 'public.big' }), start: 10, end: 10, open: true };
    s.add(open);
    s.preFinished(true);
    // The table being read goes out first: its COPY starts while the rest of it is staged.
    expect(await s.next(never)).toBe(open);
    expect(await s.next(never)).toBe(staged);
    expect(() => s.add({ ...entry(9, 'index', { table: 'public.big' }), open: true })).toThrow(/only table data/);
    const iBig = entry(3, 'index', { table: 'public.big' });
    const iSmall = entry(4, 'index', { table: 'public.small' });
    s.staged(open, 5000);
    expect(open).toMatchObject({ open: false, end: 5000 });
    for (const i of [iSmall, iBig]) s.add(i);
    s.allKnown();
    s.finished(staged);
    // big is staged but still loading: its index waits even though it weighs more.
    expect(await s.next(never)).toBe(iSmall);
    const next = s.next(never);
    s.finished(open);
    expect(await next).toBe(iBig);
    s.finished(iSmall);
    s.finished(iBig);
    expect(await s.next(never)).toBeUndefined();
    expect(s.complete()).toBe(true);
  });

  it('weighs a table by its estimated size in the server (bytes plus a tuple header per row), as pg_restore by pages', async () => {
    const s = new Scheduler(1);
    // wide: more COPY text but half the rows of narrow (the index-heavy world's orders and order_items).
    const wide = { ...entry(1, 'data', { table: 'public.wide' }), start: 0, end: 56_000_000, rows: 960_000 };
    const narrow = { ...entry(2, 'data', { table: 'public.narrow' }), start: 56_000_000, end: 100_000_000, rows: 1_920_000 };
    s.add(wide);
    s.add(narrow);
    s.preFinished(true);
    expect(await s.next(never)).toBe(narrow);
    s.finished(narrow);
    expect(await s.next(never)).toBe(wide);
    s.finished(wide);
    const iWide = entry(3, 'index', { table: 'public.wide' });
    const iNarrow = entry(4, 'index', { table: 'public.narrow' });
    s.add(iWide);
    s.add(iNarrow);
    s.allKnown();
    // Without the rows, the wide table's 56 MB would rank its index first.
    expect(await s.next(never)).toBe(iNarrow);
    s.finished(iNarrow);
    expect(await s.next(never)).toBe(iWide);
    s.finished(iWide);
    expect(s.complete()).toBe(true);
    // An open item weighs its rows once staged.
    const s2 = new Scheduler(1);
    const open: Item = { ...entry(1, 'data', { table: 'public.narrow' }), start: 0, end: 0, open: true };
    const wide2 = { ...entry(2, 'data', { table: 'public.wide' }), start: 0, end: 56_000_000, rows: 960_000 };
    s2.add(open);
    s2.add(wide2);
    s2.preFinished(true);
    expect(await s2.next(never)).toBe(open);
    s2.staged(open, 44_000_000, 1_920_000);
    expect(open.rows).toBe(1_920_000);
    expect(await s2.next(never)).toBe(wide2);
    s2.finished(open);
    s2.finished(wide2);
    const a = entry(3, 'index', { table: 'public.wide' });
    const b = entry(4, 'index', { table: 'public.narrow' });
    s2.add(a);
    s2.add(b);
    s2.allKnown();
    expect(await s2.next(never)).toBe(b);
  });

  it('never runs a constraint (ACCESS EXCLUSIVE) beside another entry on its table, nor an index beside it', async () => {
    const s = new Scheduler(3);
    const d = { ...entry(1, 'data', { table: 'public.t' }), start: 0, end: 100 };
    const other = { ...entry(2, 'data', { table: 'public.u' }), start: 100, end: 110 };
    s.add(d);
    s.add(other);
    s.preFinished(true);
    expect(await s.next(never)).toBe(d);
    expect(await s.next(never)).toBe(other);
    const pk = {
      ...entry(3, 'index', { table: 'public.t' }),
      entry: { ...entry(3, 'index').entry, type: 'CONSTRAINT', table: 'public.t' },
    };
    const i1 = entry(4, 'index', { table: 'public.t', type: 'INDEX' });
    const i2 = entry(5, 'index', { table: 'public.t', type: 'INDEX' });
    const check = entry(6, 'index', { table: 'public.t', type: 'CHECK CONSTRAINT' });
    const iu = entry(7, 'index', { table: 'public.u', type: 'INDEX' });
    for (const i of [pk, i1, i2, check, iu]) s.add(i);
    s.allKnown();
    s.finished(d);
    s.finished(other);
    expect(await s.next(never)).toBe(pk);
    // t's primary key holds its table: t's indexes wait, u's runs.
    expect(await s.next(never)).toBe(iu);
    const third = s.next(never);
    let handed: Item | undefined;
    void third.then((i) => (handed = i));
    await new Promise((r) => setTimeout(r, 10));
    expect(handed).toBeUndefined();
    s.finished(pk);
    // Indexes share the table (SHARE locks); the check constraint waits for both.
    expect(await third).toBe(i1);
    expect(await s.next(never)).toBe(i2);
    s.finished(iu);
    const last = s.next(never);
    let handedLast: Item | undefined;
    void last.then((i) => (handedLast = i));
    s.finished(i1);
    await new Promise((r) => setTimeout(r, 10));
    expect(handedLast).toBeUndefined();
    s.finished(i2);
    expect(await last).toBe(check);
    s.finished(check);
    expect(await s.next(never)).toBeUndefined();
    expect(s.complete()).toBe(true);
  });

  it('hands out nothing when pre-data failed, and nothing once aborted', async () => {
    const s = new Scheduler(2);
    s.add(entry(1, 'data', { table: 'public.a' }));
    s.preFinished(false);
    expect(await s.next(never)).toBeUndefined();
    const s2 = new Scheduler(2);
    s2.add(entry(1, 'index'));
    s2.preFinished(true);
    const stop = new AbortController();
    const p = s2.next(stop.signal);
    stop.abort();
    expect(await p).toBeUndefined();
  });
});
