import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { sanitizeText } from '../text/sanitize.js';
import { MetaCommandScanner, type MetaScanResult } from './meta-scan.js';

/**
 * A plain pg_dump script cut at its own section markers, in one pass (issue 14). pg_dump writes
 * every TOC entry after a comment block
 *
 *     --
 *     -- Name: t t_pkey; Type: CONSTRAINT; Schema: public; Owner: alice
 *     --
 *
 * ("-- Data for Name: ...; Type: TABLE DATA; ..." for table data), preceded by the SET lines that
 * switch its tablespace or table access method. The entries come as pre-data, then data (table
 * data, sequence values, large objects), then post-data (constraints, indexes, triggers, foreign
 * keys, ...) and the ACL pass. This module reads a script as psql would (catalog/meta-scan.ts's
 * lexer: a marker counts only between statements, never inside COPY data, a string, a dollar
 * body or a comment block) and says, for each entry, which phase of a parallel restore it
 * belongs to:
 *
 * - pre: everything before the first data or post-data entry, run first on one connection, in order;
 * - data: table data, sequence values, large objects: any order, on N connections;
 * - index: indexes and non-foreign-key constraints (primary keys, unique, exclusion): N connections,
 *   each once its table's data is loaded;
 * - attach: partition index attachments, in order, once every index exists;
 * - fk: foreign keys, N connections, never two on the same table at once (they lock both tables);
 * - tail: the rest (triggers, rules, policies, comments, grants, materialized view data, ...),
 *   in dump order, last, on one connection.
 *
 * A script whose structure is anything else (no markers, a statement before the first entry,
 * pg_dump --create, pg_dumpall, --clean, an entry out of section order, an entry type this module
 * does not know after the data) is "not recognised": the restore then streams it whole into one
 * psql, as before. Pure: no I/O; memory is one line plus the body of an index or foreign key
 * statement (capped), whatever the script's size.
 */

export type EntryPhase = 'pre' | 'data' | 'index' | 'attach' | 'fk' | 'tail';

export interface DumpEntry {
  /** Position in the script (0-based, entries only). */
  seq: number;
  /** pg_dump's Type (TABLE DATA, INDEX, FK CONSTRAINT, ...). */
  type: string;
  /** pg_dump's Name and Schema, as written (unquoted), sanitized for display. */
  name: string;
  schema: string;
  phase: EntryPhase;
  /** Session settings in force at the entry's start (SET lines, search_path), to replay on another connection. */
  settings: readonly Buffer[];
  /** Setting names assigned inside the entry (so a connection that ran it resets them before the next entry). */
  setsInside: string[];
  /** data: the table `schema.name`; index: the table the statement builds on (when it could be read). */
  table?: string;
  /** TABLE DATA: the table's schema and name exactly as the marker gives them (unsanitized: for quoting as identifiers). */
  relation?: { schema: string; name: string };
  /** fk: the tables the statement locks (referencing, referenced); undefined when they could not be read. */
  locks?: string[];
}

export type SplitEvent =
  /** Bytes of the script, belonging to the entry last started (or the header before any). */
  | { kind: 'bytes'; data: Buffer }
  /** An entry begins here. */
  | { kind: 'start'; entry: DumpEntry }
  /** The entry last started is complete (its `table`/`locks` are filled in). */
  | { kind: 'end'; entry: DumpEntry };

export interface SectionSummary {
  recognised: boolean;
  /** Why not, for the plan. */
  reason?: string;
  entries: number;
  byPhase: Record<EntryPhase, number>;
}

const DATA_TYPES = new Set(['TABLE DATA', 'SEQUENCE SET', 'BLOBS', 'LARGE OBJECTS']);
const INDEX_TYPES = new Set(['INDEX', 'CONSTRAINT', 'CHECK CONSTRAINT']);
const ATTACH_TYPES = new Set(['INDEX ATTACH']);
const FK_TYPES = new Set(['FK CONSTRAINT']);
const TAIL_TYPES = new Set([
  'TRIGGER',
  'RULE',
  'POLICY',
  'ROW SECURITY',
  'STATISTICS',
  'PUBLICATION',
  'PUBLICATION TABLE',
  'PUBLICATION TABLES IN SCHEMA',
  'SUBSCRIPTION',
  'SUBSCRIPTION TABLE',
  'EVENT TRIGGER',
  'MATERIALIZED VIEW DATA',
]);
/** Entry types that follow their object: pre-data before the data, tail after. */
const FLOATING_TYPES = new Set(['COMMENT', 'ACL', 'DEFAULT ACL', 'SECURITY LABEL']);
/** Entry types that make a script not one database's schema and data. */
const REFUSED_TYPES = new Set(['DATABASE', 'DATABASE PROPERTIES', 'ENCODING', 'STDSTRINGS', 'SEARCHPATH']);

const MARKER = /^-- (Data for )?Name: (.*); Type: (.*?); Schema: (.*?); Owner: (.*?)(?:; Tablespace: .*)?\r?$/;
const SET_LINE = /^SET ([a-z_]+) = ('(?:[^']|'')*'|[A-Za-z0-9_.-]+);\r?$/;
const SEARCH_PATH_LINE = /^SELECT pg_catalog\.set_config\('search_path', '(?:[^']|'')*', false\);\r?$/;
const RESTRICT_LINE = /^\\restrict [A-Za-z0-9]+\r?$/;

/** Between-entry lines held back until the next line says whose they are. */
const MAX_PENDING = 1024 * 1024;
/** The most of an index or foreign key statement read for its table names. */
const MAX_BODY = 64 * 1024;

const IDENT = String.raw`(?:"(?:[^"]|"")+"|[A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*)`;
const QNAME = `(${IDENT}(?:\\.${IDENT})?)`;
const INDEX_ON = new RegExp(String.raw`^\s*CREATE\s+(?:UNIQUE\s+)?INDEX\s+${IDENT}\s+ON\s+(?:ONLY\s+)?${QNAME}\s`);
const ALTER_TABLE = new RegExp(String.raw`^\s*ALTER\s+TABLE\s+(?:ONLY\s+)?${QNAME}\s+ADD\s+CONSTRAINT\s`);
const REFERENCES = new RegExp(String.raw`\sREFERENCES\s+${QNAME}\s*\(`);

/** `schema.name` as the server names it: quotes removed (and "" undoubled), unquoted parts folded to lower case. */
export function normaliseQualifiedName(text: string): string {
  const parts: string[] = [];
  const re = new RegExp(IDENT, 'gy');
  let i = 0;
  while (i < text.length) {
    re.lastIndex = i;
    const m = re.exec(text);
    if (!m) return text;
    const p = m[0];
    parts.push(p.startsWith('"') ? p.slice(1, -1).replace(/""/g, '"') : p.toLowerCase());
    i = re.lastIndex;
    if (text[i] === '.') i++;
  }
  return parts.join('.');
}

function tableKey(schema: string, name: string): string {
  return schema === '-' || schema === '' ? name : `${schema}.${name}`;
}

function natural(type: string): 0 | 1 | 2 | 'floating' | 'refused' {
  if (REFUSED_TYPES.has(type)) return 'refused';
  if (FLOATING_TYPES.has(type)) return 'floating';
  if (DATA_TYPES.has(type)) return 1;
  if (INDEX_TYPES.has(type) || ATTACH_TYPES.has(type) || FK_TYPES.has(type) || TAIL_TYPES.has(type)) return 2;
  return 0;
}

function postPhase(type: string): EntryPhase {
  if (INDEX_TYPES.has(type)) return 'index';
  if (ATTACH_TYPES.has(type)) return 'attach';
  if (FK_TYPES.has(type)) return 'fk';
  return 'tail';
}

export class PlainSectionSplitter {
  private readonly scanner: MetaCommandScanner;
  private partial: Buffer | undefined;
  private current: DumpEntry | undefined;
  private seq = 0;
  /** 0 pre-data, 1 data, 2 post-data. */
  private section: 0 | 1 | 2 = 0;
  private notRecognised: string | undefined;
  private readonly settings = new Map<string, Buffer>();
  private snapshot: readonly Buffer[] = [];
  private snapshotStale = false;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private pendingKeys: string[] = [];
  private body: string[] | undefined;
  private bodyBytes = 0;
  private readonly counts: Record<EntryPhase, number> = { pre: 0, data: 0, index: 0, attach: 0, fk: 0, tail: 0 };
  private out: SplitEvent[] = [];

  /**
   * `copyFastPath: false`: COPY data lines go one at a time through the general path (the
   * differential tests' reference); by default they are passed over in one tight loop
   * (MetaCommandScanner.skipCopyData), with the same decisions.
   */
  constructor(opts: { copyFastPath?: boolean } = {}) {
    this.scanner = new MetaCommandScanner(opts);
  }

  /** The meta-command scan of the same pass (catalog/meta-scan.ts): complete after end(). */
  get metaScan(): MetaScanResult {
    return this.scanner.result;
  }

  /** The first reason the script is not recognised, once there is one. */
  get unrecognised(): string | undefined {
    return this.notRecognised;
  }

  /** Feed the next bytes of the script; returns what they hold, in order. */
  push(chunk: Buffer): SplitEvent[] {
    let data = chunk;
    let seg = 0;
    let start = 0;
    if (this.partial) {
      // Only the line cut at the previous chunk's end is joined (a copy of one line, not of the whole chunk).
      const nl = chunk.indexOf(0x0a);
      if (nl === -1) {
        this.partial = Buffer.concat([this.partial, chunk]);
        return this.take();
      }
      const head = Buffer.concat([this.partial, chunk.subarray(0, nl + 1)]);
      this.partial = undefined;
      const s = this.line(head, 0, head.length - 1, 0);
      if (head.length > s) this.bytes(head.subarray(s));
      data = chunk;
      seg = start = nl + 1;
    }
    for (;;) {
      // COPY data lines change nothing but the line count (outside an index or foreign key entry,
      // whose body is read for its table names): passed over without the per-line path.
      if (!this.body) start = this.scanner.skipCopyData(data, start);
      const nl = data.indexOf(0x0a, start);
      if (nl === -1) break;
      seg = this.line(data, start, nl, seg);
      start = nl + 1;
    }
    if (start > seg) this.bytes(data.subarray(seg, start));
    if (start < data.length) this.partial = Buffer.from(data.subarray(start));
    return this.take();
  }

  /** The script has ended. */
  end(): SplitEvent[] {
    if (this.partial && this.partial.length > 0) {
      const last = this.partial;
      this.partial = undefined;
      const seg = this.line(last, 0, last.length, 0);
      if (last.length > seg) this.bytes(last.subarray(seg));
    }
    this.flushPending();
    this.closeEntry();
    const r = this.scanner.result;
    if (r.clusterDump) this.refuse('it is a pg_dumpall cluster dump');
    if (r.connect) this.refuse(`it switches databases (\\connect at line ${r.connect.line})`);
    if (r.standardStrings) this.refuse(`it changes standard_conforming_strings (line ${r.standardStrings.line})`);
    if (this.seq === 0) this.refuse('it has no pg_dump section markers ("-- Name: ...; Type: ...")');
    return this.take();
  }

  summary(): SectionSummary {
    return {
      recognised: this.notRecognised === undefined,
      ...(this.notRecognised ? { reason: this.notRecognised } : {}),
      entries: this.seq,
      byPhase: { ...this.counts },
    };
  }

  private take(): SplitEvent[] {
    const o = this.out;
    this.out = [];
    return o;
  }

  private refuse(why: string): void {
    this.notRecognised ??= why;
  }

  private bytes(b: Buffer): void {
    if (b.length > 0) this.out.push({ kind: 'bytes', data: b });
  }

  /** One line [start, nl) (nl: its newline, or the end); `seg` is where the bytes not yet passed on begin. Returns the new seg. */
  private line(data: Buffer, start: number, nl: number, seg: number): number {
    const boundary = this.scanner.atStatementBoundary;
    const end = nl < data.length ? nl + 1 : nl;
    if (!boundary) {
      this.scanner.scanLine(data, start, nl);
      if (this.body) this.addBody(data, start, nl);
      return seg;
    }
    const first = data[start];
    const kind = this.classify(data, start, nl, first);
    this.scanner.scanLine(data, start, nl);
    if (kind.what === 'marker') {
      if (start > seg) this.bytes(data.subarray(seg, start));
      this.startEntry(kind.m);
      return start;
    }
    if (kind.what === 'between' && this.pendingBytes + (end - start) <= MAX_PENDING) {
      if (start > seg) this.bytes(data.subarray(seg, start));
      this.pending.push(Buffer.from(data.subarray(start, end)));
      this.pendingBytes += end - start;
      if (kind.key) {
        this.settings.set(kind.key, Buffer.from(data.subarray(start, end)));
        this.snapshotStale = true;
        this.pendingKeys.push(kind.key);
      }
      return end;
    }
    // A statement (or a between line past the cap): whatever was held back belongs to the current entry.
    if (this.pending.length > 0) {
      if (start > seg) this.bytes(data.subarray(seg, start));
      this.flushPending();
      seg = start;
    }
    if (kind.what === 'between' && kind.key) {
      this.settings.set(kind.key, Buffer.from(data.subarray(start, end)));
      this.snapshotStale = true;
      this.current?.setsInside.push(kind.key);
    }
    if (kind.what === 'statement') {
      if (!this.current && !(first === 0x5c && RESTRICT_LINE.test(data.toString('latin1', start, nl)))) {
        this.refuse(
          `a statement comes before the first pg_dump entry: ${sanitizeText(data.toString('utf8', start, Math.min(nl, start + 80)), 81)}`,
        );
      }
      if (this.body) this.addBody(data, start, nl);
    }
    return seg;
  }

  private classify(
    data: Buffer,
    start: number,
    nl: number,
    first: number | undefined,
  ): { what: 'marker'; m: RegExpExecArray } | { what: 'between'; key?: string } | { what: 'statement' } {
    let i = start;
    while (i < nl && (data[i] === 0x20 || data[i] === 0x09 || data[i] === 0x0d)) i++;
    if (i === nl) return { what: 'between' };
    if (first === 0x2d && data[start + 1] === 0x2d) {
      if (data[start + 2] === 0x20 && (data[start + 3] === 0x4e || data[start + 3] === 0x44)) {
        const m = MARKER.exec(data.toString('utf8', start, nl));
        if (m) return { what: 'marker', m };
      }
      return { what: 'between' };
    }
    if (first === 0x53) {
      const text = data.toString('utf8', start, nl);
      const set = SET_LINE.exec(text);
      if (set) return { what: 'between', key: set[1]! };
      if (SEARCH_PATH_LINE.test(text)) return { what: 'between', key: 'search_path' };
    }
    return { what: 'statement' };
  }

  private flushPending(): void {
    for (const p of this.pending) this.bytes(p);
    if (this.current) this.current.setsInside.push(...this.pendingKeys);
    this.pending = [];
    this.pendingBytes = 0;
    this.pendingKeys = [];
  }

  private addBody(data: Buffer, start: number, nl: number): void {
    if (!this.body || this.bodyBytes >= MAX_BODY) return;
    const n = Math.min(nl - start, MAX_BODY - this.bodyBytes);
    this.body.push(data.toString('utf8', start, start + n));
    this.bodyBytes += n + 1;
  }

  private closeEntry(): void {
    const e = this.current;
    if (!e) return;
    if (this.body) {
      const text = this.body.join('\n');
      if (e.phase === 'index') {
        const m = INDEX_ON.exec(text) ?? ALTER_TABLE.exec(text);
        if (m) e.table = normaliseQualifiedName(m[1]!);
      } else if (e.phase === 'fk') {
        const on = ALTER_TABLE.exec(text);
        const ref = REFERENCES.exec(text);
        if (on && ref) e.locks = [normaliseQualifiedName(on[1]!), normaliseQualifiedName(ref[1]!)];
      }
    }
    this.body = undefined;
    this.bodyBytes = 0;
    this.out.push({ kind: 'end', entry: e });
    this.current = undefined;
  }

  private startEntry(m: RegExpExecArray): void {
    this.closeEntry();
    const isData = Boolean(m[1]);
    const rawName = m[2]!;
    const type = m[3]!;
    const rawSchema = m[4]!;
    const nat = natural(type);
    let phase: EntryPhase;
    if (isData && nat !== 1) this.refuse(`an entry "Data for" has type ${sanitizeText(type, 40)}, which holds no data`);
    if (nat === 'refused') {
      this.refuse(`it has a ${sanitizeText(type, 40)} entry (pg_dump --create, or not a dump of one database)`);
      phase = this.section === 0 ? 'pre' : 'tail';
    } else if (nat === 'floating') {
      phase = this.section === 0 ? 'pre' : 'tail';
    } else if (nat === 0) {
      if (this.section > 0)
        this.refuse(
          `the ${sanitizeText(type, 40)} entry ${sanitizeText(rawName, 60)} comes after the data (an order this tool does not split)`,
        );
      phase = this.section === 0 ? 'pre' : 'tail';
    } else if (nat === 1) {
      if (this.section === 2)
        this.refuse(
          `the ${sanitizeText(type, 40)} entry ${sanitizeText(rawName, 60)} comes after the post-data entries (an order this tool does not split)`,
        );
      this.section = 1;
      phase = 'data';
    } else {
      this.section = 2;
      phase = postPhase(type);
    }
    if (this.snapshotStale) {
      this.snapshot = [...this.settings.values()];
      this.snapshotStale = false;
    }
    const entry: DumpEntry = {
      seq: this.seq++,
      type: sanitizeText(type, 40),
      name: sanitizeText(rawName, 120),
      schema: sanitizeText(rawSchema, 120),
      phase,
      settings: this.snapshot,
      setsInside: [],
    };
    if (phase === 'data' && type === 'TABLE DATA') {
      entry.table = tableKey(rawSchema, rawName);
      entry.relation = { schema: rawSchema, name: rawName };
    }
    this.counts[phase]++;
    this.current = entry;
    this.body = phase === 'index' || phase === 'fk' ? [] : undefined;
    this.out.push({ kind: 'start', entry });
    // The SET lines and comments held back precede this entry's marker: they are its own.
    for (const p of this.pending) this.bytes(p);
    this.pending = [];
    this.pendingBytes = 0;
    this.pendingKeys = [];
  }
}

/** Reads a whole script (tests): the summary of its structure. */
export function summariseSections(chunks: Iterable<Buffer>): SectionSummary {
  const s = new PlainSectionSplitter();
  for (const c of chunks) s.push(c);
  s.end();
  return s.summary();
}

/** Deep verify's reading: the section structure and the meta-command scan, in the one pass over the script. */
export class SectionScanWriter extends Writable {
  readonly splitter = new PlainSectionSplitter();
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (error?: Error | null) => void): void {
    this.splitter.push(chunk);
    cb();
  }
  override _final(cb: (error?: Error | null) => void): void {
    this.splitter.end();
    cb();
  }
}

/**
 * Where the parallel restore of a plain dump stages everything after pre-data (engine/plain-split/,
 * a private 0700 dir below it): the temp dir (TMPDIR, else /tmp). The preflight measures the same
 * place (probe/, the disk checks), so a restore that would fill it is refused before it starts.
 */
export function splitStagingParent(env: NodeJS.ProcessEnv = process.env): string {
  if (env === process.env) return os.tmpdir();
  const t = env['TMPDIR'] ?? env['TMP'] ?? env['TEMP'];
  return t && path.isAbsolute(t) ? path.resolve(t) : '/tmp';
}
