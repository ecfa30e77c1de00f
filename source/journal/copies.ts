import type { Dirent } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import path from 'node:path';
import type { PlannedAction } from '../actions/types.js';
import { run } from '../exec/run.js';
import type { Redactor } from '../exec/redact.js';
import { executeAction } from '../engine/actions.js';
import type { EngineEventBody } from '../engine/events.js';
import {
  decodeIdentity,
  describeIdentity,
  identityMismatch,
  pathIdentity,
  removeIfOwn,
  type PathIdentity,
} from '../engine/path-identity.js';
import type { Plan, PlanStep } from '../plan/types.js';
import type { LoadedRecipe } from '../recipe/load.js';
import { evidenceDir } from '../state/paths.js';
import * as pg from '../targets/postgres.js';
import { JOURNAL_FILE, readIndex, readJournal, type JournalRecord } from './journal.js';
import { loadRun, ownerAlive } from './state.js';

/**
 * The safety copies earlier runs kept (`restore-assistant safety-copies`): found from the runs'
 * journals (what each restore moved aside or renamed, and the identity it recorded: the database
 * OID, the device/inode/real path of a file or directory) and checked live; plus what carries a
 * safety-copy name on the recipe's targets without a journal that explains it (listed, never
 * dropped). A copy an unfinished run (live, or dead and waiting for `recover`) needs for its
 * rollback is marked so and never dropped.
 */

export type CopyKind = 'database' | 'file' | 'directory' | 'dump' | 'container';
export type CopyState = 'present' | 'gone' | 'changed' | 'unknown';

export interface KeptCopy {
  /** What `safety-copies drop ID` takes: the database name or the path. */
  id: string;
  component: 'postgres' | 'redis' | 'prometheus';
  kind: CopyKind;
  location: string;
  description: string;
  /** The target it is a copy of, in words. */
  target: string;
  /** The run that made it (null: no journal on this host explains it). */
  run: { runId: string; startedAt: string; recipe: string; journal: string } | null;
  madeAt: string | null;
  ageMs: number | null;
  sizeBytes: number | null;
  /** The data as it was before that restore (the run's pre-incident copy); null when unknown. */
  preIncident: boolean | null;
  state: CopyState;
  /** What the run recorded, and what is there now when it differs. */
  recorded?: string;
  found?: string;
  /** An unfinished run that still needs it for its rollback. */
  neededBy?: { runId: string; live: boolean; pid: number; diedIn?: string };
  /** Whether `drop` may remove it, and why not. */
  droppable: boolean;
  why?: string;
  /** Internal: how to check and drop it. */
  identity: { oid?: string; path?: PathIdentity; fact?: string };
}

interface RunFile {
  dir: string;
  records: JournalRecord[];
  begin: Extract<JournalRecord, { j: 'begin' }>;
}

async function runJournals(root: string): Promise<RunFile[]> {
  let entries: Dirent[];
  try {
    entries = await readdir(root, { withFileTypes: true });
  } catch {
    return [];
  }
  const out: RunFile[] = [];
  for (const e of entries.filter((x) => x.isDirectory()).sort((a, b) => a.name.localeCompare(b.name))) {
    const file = path.join(root, e.name, JOURNAL_FILE);
    let records: JournalRecord[];
    try {
      records = readJournal(file);
    } catch {
      continue;
    }
    const begin = records[0];
    if (begin?.j !== 'begin') continue;
    out.push({ dir: path.join(root, e.name), records, begin });
  }
  return out;
}

/** One copy a safety-copy step makes: a database, or each path its moves record. */
function copiesOfStep(step: PlanStep): Array<Pick<KeptCopy, 'component' | 'kind' | 'location' | 'description'> & { fact?: string }> {
  const sc = step.safetyCopy;
  if (!sc || sc.kind === 'none' || sc.component === 'services') return [];
  const component = sc.component;
  if (sc.kind === 'rename') return [{ component, kind: 'database', location: sc.location, description: sc.description }];
  if (sc.kind === 'dump')
    return [{ component, kind: 'dump', location: sc.location, description: sc.description, fact: pg.SAFETY_DUMP_FACT }];
  const moves = step.actions.filter((a): a is Extract<PlannedAction, { type: 'move' }> => a.type === 'move');
  if (moves.length === 0) return [{ component, kind: 'container', location: sc.location, description: sc.description }];
  return moves.map((m) => ({
    component,
    kind: 'directory' as CopyKind,
    location: m.to,
    description: `${sc.description} (${path.basename(m.from)})`,
    ...(m.recordAs ? { fact: m.recordAs } : {}),
  }));
}

function targetLabel(plan: Plan, component: KeptCopy['component']): string {
  return plan.targets[component] ?? component;
}

/** Sum of the sizes under `p` (not following links); null when it cannot be read. */
async function treeSize(p: string, budget = { left: 200_000 }): Promise<number | null> {
  try {
    const st = await lstat(p);
    if (!st.isDirectory()) return st.size;
    let total = 0;
    for (const name of await readdir(p)) {
      if (--budget.left < 0) return total;
      total += (await treeSize(path.join(p, name), budget)) ?? 0;
    }
    return total;
  } catch {
    return null;
  }
}

interface PgCopyRow {
  oid: string;
  name: string;
  size: number;
}

/** The databases with a safety-copy name on the recipe's server (null: it does not answer). */
async function pgSafetyDatabases(loaded: LoadedRecipe, env: NodeJS.ProcessEnv, redact: Redactor): Promise<PgCopyRow[] | string> {
  const t = loaded.recipe.components.postgres;
  if (!t) return [];
  const cmd = pg.psqlCommand(t, {
    purpose: 'List the safety-copy databases',
    tuplesOnly: true,
    sql: [
      `SELECT oid::text || '|' || pg_catalog.pg_database_size(oid)::text || '|' || datname FROM pg_catalog.pg_database WHERE datname LIKE '%\\_\\_pre\\_restore\\_%' ESCAPE '\\' ORDER BY datname`,
    ],
    timeoutSeconds: 30,
  });
  const childEnv = t.passwordEnv && env[t.passwordEnv] !== undefined ? { PGPASSWORD: env[t.passwordEnv]! } : {};
  const r = await run(cmd.argv, { redact, timeoutMs: 30_000, env: childEnv });
  if (!r.ok) return redact([...r.stderrTail, ...r.stdoutTail].find((l) => l.trim()) ?? 'no answer');
  return r.stdout
    .split('\n')
    .filter((l) => l.includes('|'))
    .map((l) => {
      const [oid = '', size = '0', ...name] = l.split('|');
      return { oid, size: Number(size), name: name.join('|') };
    });
}

/** Paths with a safety-copy name beside a recipe's data (Prometheus data dir, Redis dir when the recipe names it). */
async function scannedPaths(loaded: LoadedRecipe): Promise<Array<{ component: 'redis' | 'prometheus'; path: string }>> {
  const c = loaded.recipe.components;
  const out: Array<{ component: 'redis' | 'prometheus'; path: string }> = [];
  const scan = async (component: 'redis' | 'prometheus', dir: string, prefix: string): Promise<void> => {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return;
    }
    for (const n of names.sort())
      if (n.startsWith(prefix) && /\.(pre|failed)_restore_/.test(n)) out.push({ component, path: path.join(dir, n) });
  };
  if (c.prometheus?.exec.kind === 'host') {
    const d = c.prometheus.dataDir.replace(/\/+$/, '');
    await scan('prometheus', path.dirname(d), path.basename(d));
  }
  if (c.redis?.exec.kind === 'host' && c.redis.dataDir) await scan('redis', c.redis.dataDir, '');
  return out;
}

export interface ListCopiesOptions {
  env: NodeJS.ProcessEnv;
  redact: Redactor;
  now?: Date;
}

export interface CopiesView {
  copies: KeptCopy[];
  /** Targets that could not be checked (e.g. the PostgreSQL server does not answer). */
  problems: string[];
}

/** Every safety copy of one recipe's targets that earlier runs kept and that is still there (or changed). */
export async function listCopies(loaded: LoadedRecipe, opts: ListCopiesOptions): Promise<CopiesView> {
  const now = (opts.now ?? new Date()).getTime();
  const recipe = loaded.recipe;
  const journals = await runJournals(evidenceDir(recipe, opts.env));
  const problems: string[] = [];
  // Copies an unfinished run still needs: its plan's and its pre-incident copies.
  const needed = new Map<string, NonNullable<KeptCopy['neededBy']>>();
  for (const entry of readIndex(opts.env)) {
    const u = loadRun(entry, opts.env);
    if (!u) continue;
    const live = ownerAlive(entry);
    const by = { runId: u.runId, live, pid: entry.pid, ...(u.diedIn ? { diedIn: u.diedIn.title } : {}) };
    for (const s of u.plan.steps) for (const c of copiesOfStep(s)) needed.set(c.location, by);
    for (const c of u.preIncident) for (const loc of c.location.split(', ')) needed.set(loc, by);
  }

  const originals = journals.filter((j) => !j.begin.recovers && j.begin.plan.mode === 'restore');
  const copies: KeptCopy[] = [];
  for (const o of originals) {
    const attempts = journals.filter((j) => j.begin.recovers?.runId === o.begin.runId);
    const all = [o, ...attempts].flatMap((j) => j.records).filter((r): r is Exclude<JournalRecord, { j: 'begin' }> => r.j !== 'begin');
    all.sort((a, b) => ('ts' in a && 'ts' in b ? a.ts.localeCompare(b.ts) : 0));
    const facts = new Map<string, string>();
    const made = new Map<string, string | undefined>();
    for (const r of all) {
      if (r.j === 'fact') facts.set(r.name, r.value);
      else if (r.j === 'step' && r.status === 'done') {
        if (r.stepId.startsWith('reset:')) made.set(r.stepId.slice('reset:'.length), undefined);
        else made.set(r.stepId, r.ts);
      } else if (r.j === 'undo' && r.ok) made.set(r.stepId, undefined);
    }
    for (const step of o.begin.plan.steps) {
      const at = made.get(step.id);
      if (!at) continue;
      for (const c of copiesOfStep(step)) {
        const pre = o.begin.preIncident.some((p) => p.stepId === step.id);
        const base: KeptCopy = {
          id: c.location,
          component: c.component as KeptCopy['component'],
          kind: c.kind,
          location: c.location,
          description: c.description,
          target: targetLabel(o.begin.plan, c.component as KeptCopy['component']),
          run: { runId: o.begin.runId, startedAt: o.begin.startedAt, recipe: o.begin.recipe.name, journal: path.join(o.dir, JOURNAL_FILE) },
          madeAt: at,
          ageMs: Math.max(0, now - Date.parse(at)),
          sizeBytes: null,
          preIncident: pre,
          state: 'unknown',
          droppable: false,
          identity: {},
        };
        if (c.kind === 'database') {
          const oid = facts.get(pg.ASIDE_OID_FACT);
          if (oid && oid !== 'none') base.identity.oid = oid;
        } else if (c.fact) {
          base.identity.fact = c.fact;
          const id = decodeIdentity(facts.get(c.fact));
          if (id) base.identity.path = id;
        }
        copies.push(base);
      }
    }
  }

  // Live: databases.
  const rows = await pgSafetyDatabases(loaded, opts.env, opts.redact);
  if (typeof rows === 'string') problems.push(`PostgreSQL does not answer (${rows}): its safety copies could not be checked`);
  const pgRows = typeof rows === 'string' ? undefined : rows;
  for (const c of copies.filter((x) => x.kind === 'database')) {
    if (!pgRows) continue;
    const row = pgRows.find((r) => r.name === c.location);
    const byOid = c.identity.oid ? pgRows.find((r) => r.oid === c.identity.oid) : undefined;
    if (!row) {
      c.state = byOid ? 'changed' : 'gone';
      if (byOid) c.found = `the database with the recorded OID ${byOid.oid} is now named ${byOid.name}`;
      continue;
    }
    c.sizeBytes = row.size;
    if (!c.identity.oid) {
      c.state = 'present';
      c.recorded = 'no OID recorded by the run';
    } else if (row.oid === c.identity.oid) {
      c.state = 'present';
      c.recorded = `OID ${c.identity.oid}`;
    } else {
      c.state = 'changed';
      c.recorded = `OID ${c.identity.oid}`;
      c.found = `a database with OID ${row.oid} (not the one the run renamed aside)`;
    }
  }
  // Live: files and directories.
  for (const c of copies.filter((x) => x.kind === 'directory' || x.kind === 'dump')) {
    const found = await pathIdentity(c.location).catch(() => undefined);
    if (!found) {
      c.state = 'gone';
      continue;
    }
    if (found.type === 'file') c.kind = c.kind === 'dump' ? 'dump' : 'file';
    const wrong = identityMismatch(c.location, c.identity.path, found);
    c.state = wrong ? 'changed' : 'present';
    if (c.identity.path) c.recorded = describeIdentity(c.identity.path);
    if (wrong) c.found = describeIdentity(found);
    c.sizeBytes = await treeSize(c.location);
  }
  // Unexplained: safety-copy names no journal here accounts for.
  const known = new Set(copies.map((c) => c.location));
  for (const r of pgRows ?? []) {
    if (known.has(r.name)) continue;
    copies.push(
      unexplained(
        'postgres',
        'database',
        r.name,
        recipe.components.postgres ? `PostgreSQL on ${recipe.components.postgres.host}:${recipe.components.postgres.port}` : 'PostgreSQL',
        r.size,
        now,
      ),
    );
  }
  for (const s of await scannedPaths(loaded)) {
    if (known.has(s.path)) continue;
    const st = await lstat(s.path).catch(() => undefined);
    if (!st) continue;
    const c = unexplained(
      s.component,
      st.isDirectory() ? 'directory' : 'file',
      s.path,
      s.component === 'redis' ? 'Redis' : 'Prometheus',
      await treeSize(s.path),
      now,
    );
    copies.push(c);
  }
  for (const c of copies) {
    const by = needed.get(c.location);
    if (by) c.neededBy = by;
    decideDroppable(c, loaded.file);
  }
  return { copies, problems };
}

function stampAge(name: string, now: number): number | null {
  const m = /_(?:pre|failed)_restore_(\d{8}T\d{6}Z)/.exec(name);
  if (!m?.[1]) return null;
  const s = m[1];
  const t = Date.parse(`${s.slice(0, 4)}-${s.slice(4, 6)}-${s.slice(6, 8)}T${s.slice(9, 11)}:${s.slice(11, 13)}:${s.slice(13, 15)}Z`);
  return Number.isNaN(t) ? null : Math.max(0, now - t);
}

function unexplained(
  component: KeptCopy['component'],
  kind: CopyKind,
  location: string,
  target: string,
  size: number | null,
  now: number,
): KeptCopy {
  return {
    id: location,
    component,
    kind,
    location,
    description: /failed_restore_/.test(location)
      ? 'restored data an earlier rollback moved out of the way'
      : 'carries a safety-copy name; no run on this host recorded it',
    target,
    run: null,
    madeAt: null,
    ageMs: stampAge(location, now),
    sizeBytes: size,
    preIncident: null,
    state: 'present',
    droppable: false,
    identity: {},
  };
}

function decideDroppable(c: KeptCopy, recipeRef: string): void {
  const rm = c.kind === 'database' ? `DROP DATABASE ${pg.quoteIdent(c.location)}` : `rm -rf -- ${c.location}`;
  if (c.neededBy) {
    c.droppable = false;
    c.why = c.neededBy.live
      ? `run ${c.neededBy.runId} (pid ${c.neededBy.pid}) is running and needs it for its rollback`
      : `the unfinished run ${c.neededBy.runId} needs it to roll back: run \`restore-assistant recover --recipe ${recipeRef}\` first`;
    return;
  }
  if (c.state === 'changed') {
    c.droppable = false;
    c.why = `it is not what run ${c.run?.runId ?? '?'} kept: recorded ${c.recorded ?? 'nothing'}, found ${c.found ?? 'something else'}`;
    return;
  }
  if (!c.run) {
    c.droppable = false;
    c.why = `no run on this host recorded it, so its identity cannot be checked; if you know it is not needed: ${rm}`;
    return;
  }
  if (c.kind === 'container') {
    c.droppable = false;
    c.why = 'it is inside a container volume: remove it there by hand';
    return;
  }
  if (c.kind === 'database' ? !c.identity.oid : !c.identity.path) {
    c.droppable = false;
    c.why = `run ${c.run.runId} recorded no identity for it (a run of an older version), so it is not dropped by this command; if you know it is not needed: ${rm}`;
    return;
  }
  c.droppable = true;
}

/** "7d", "12h", "30m", "2w" in ms. */
export function parseAge(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*(m|min|h|d|w)$/.exec(text.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = { m: 60_000, min: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }[m[2] as 'm' | 'min' | 'h' | 'd' | 'w'];
  return n * unit;
}

export interface DropContext {
  loaded: LoadedRecipe;
  env: NodeJS.ProcessEnv;
  redact: Redactor;
  emit: (body: EngineEventBody) => void;
}

/**
 * Drop one kept copy by identity. A database only while the recorded OID still has the copy's
 * name (checked in the server, in the same statement that renames it to a throwaway name, then
 * dropped); a file or directory only if it is the one the run recorded (engine/path-identity.ts
 * removeIfOwn). 'gone': nothing was there (idempotent). Throws with what it found otherwise.
 */
export async function dropCopy(c: KeptCopy, ctx: DropContext): Promise<'dropped' | 'gone'> {
  if (c.kind === 'database') {
    const t = ctx.loaded.recipe.components.postgres;
    if (!t) throw new Error(`the recipe ${ctx.loaded.file} has no PostgreSQL component to drop ${c.location} on`);
    const oid = c.identity.oid;
    if (!oid || !/^[0-9]+$/.test(oid)) throw new Error(`no OID was recorded for ${c.location}: not dropping it`);
    const name = pg.quoteLiteral(c.location);
    const doomed = `ra_drop_${oid}_${Date.now().toString(36)}`;
    const check =
      `DECLARE n name; BEGIN SELECT datname INTO n FROM pg_catalog.pg_database WHERE oid = ${oid}; ` +
      `IF n IS NULL THEN IF EXISTS (SELECT 1 FROM pg_catalog.pg_database WHERE datname = ${name}) THEN RAISE EXCEPTION 'database % is not the safety copy the run kept (OID %): not dropping it', ${name}, (SELECT oid FROM pg_catalog.pg_database WHERE datname = ${name}); END IF; RAISE NOTICE 'restore-assistant: gone'; RETURN; END IF; ` +
      `IF n <> ${name} THEN RAISE EXCEPTION 'the safety copy (OID %) is now named %, not %: not dropping it', ${oid}, n, ${name}; END IF; `;
    const action: PlannedAction = {
      type: 'exec',
      ...pg.psqlCommand(t, {
        purpose: `Drop the safety copy ${c.location} (only the database with OID ${oid})`,
        sql: [
          `DO ${pg.dollarQuote(` ${check}EXECUTE format('ALTER DATABASE %I ALLOW_CONNECTIONS false', n); END `)}`,
          `SELECT count(pg_catalog.pg_terminate_backend(pid)) FROM pg_catalog.pg_stat_activity WHERE datid = ${oid} AND pid <> pg_catalog.pg_backend_pid()`,
          `DO ${pg.dollarQuote(` ${check}EXECUTE format('ALTER DATABASE %I RENAME TO %I', n, ${pg.quoteLiteral(doomed)}); END `)}`,
          `DROP DATABASE IF EXISTS ${pg.quoteIdent(doomed)}`,
          `SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_database WHERE oid = ${oid}) THEN 'kept' ELSE 'none' END`,
        ],
        tuplesOnly: true,
        timeoutSeconds: 300,
      }),
    };
    const before = c.state;
    await executeAction(action, {
      stepId: 'drop',
      emit: ctx.emit,
      redact: ctx.redact,
      env: ctx.env,
      signal: new AbortController().signal,
      runCheck: async () => ({ ok: false, attempts: 0, durationMs: 0, detail: 'no checks' }),
    });
    return before === 'gone' ? 'gone' : 'dropped';
  }
  if (c.kind === 'container') throw new Error(`${c.location} is inside a container volume: remove it there by hand`);
  return removeIfOwn(c.location, c.identity.path).then((r) => (r === 'absent' ? 'gone' : 'dropped'));
}
