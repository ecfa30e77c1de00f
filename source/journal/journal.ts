import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  unlinkSync,
  writeSync,
  constants as fsConstants,
  lstatSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { EngineEvent, EventBus } from '../engine/events.js';
import { createExclusiveSync, openAppendNoFollowSync } from '../exec/safe-fs.js';
import { stateDir } from '../evidence/signing.js';
import { safeJsonStringify } from '../text/sanitize.js';
import type { PlannedAction } from '../actions/types.js';
import type { Plan, SafetyCopy } from '../plan/types.js';

/**
 * The restore journal (docs/architecture.md, "The restore journal and recovery").
 *
 * A restore writes `journal.jsonl` in its run directory, beside events.jsonl: one JSON object a
 * line, each written and fsync'd (the file, and the directory when the file is created) before the
 * engine goes on. The engine's events are emitted synchronously, so the `intent` line for a step
 * is on disk before the step's first action runs, and its `step` line right after it settles. A
 * kill -9 between two writes leaves a parseable prefix: the reader stops at the first line that
 * does not parse (a torn last line).
 *
 * The journal is indexed in the machine-wide state directory (`<state>/journal/<runId>.json`,
 * evidence/signing.ts `stateDir`): every operator of the host finds an unfinished run there,
 * whatever its evidence directory. The index entry is removed once the run is finished (its `end`
 * line written) or resolved by `restore-assistant recover`.
 *
 * Records:
 * - `begin`: the run, its plan (every step with its exact undo actions), the lock keys, the owner
 *   process, and the pre-incident copies: the safety copies this run (or, for a recover run, the
 *   run it recovers) makes of what existed before the incident restore.
 * - `intent`: about to run step S; how it is undone (the exact actions) and what copy it keeps.
 * - `step`: how S ended (done, failed, skipped, unhealthy).
 * - `rollback`: a rollback started; `undo`: the undo of S ran (ok or not).
 * - `end`: the run finished (outcome, exit code, the state lines).
 * - `resolved`: a later `recover` run finished this run's business (rolled back or finished).
 */

export const JOURNAL_FILE = 'journal.jsonl';
export const JOURNAL_FORMAT = 'restore-assistant/journal@1';
export const INDEX_FORMAT = 'restore-assistant/journal-index@1';

export type RecoverMode = 'rollback' | 'finish';

export interface PreIncidentCopy {
  stepId: string;
  component: SafetyCopy['component'];
  kind: SafetyCopy['kind'];
  location: string;
  description: string;
  /** The run that made the copy (the original restore for a recover run). */
  run: string;
}

export type JournalRecord =
  | {
      j: 'begin';
      format: string;
      runId: string;
      recipe: { name: string; file: string; digest: string };
      lockKeys: string[];
      pid: number;
      host: string;
      bootId: string;
      operator: string;
      startedAt: string;
      evidenceDir: string;
      plan: Plan;
      preIncident: PreIncidentCopy[];
      /** Set on a `recover` run: the run it recovers and how. */
      recovers?: { runId: string; mode: RecoverMode; journal: string };
    }
  | { j: 'intent'; ts: string; stepId: string; title: string; undo?: { title: string; actions: PlannedAction[] }; safetyCopy?: SafetyCopy }
  | { j: 'step'; ts: string; stepId: string; status: 'done' | 'failed' | 'skipped' | 'unhealthy'; error?: string }
  | { j: 'rollback'; ts: string; reason: string }
  /** A run fact a command recorded (the OID of the database the run created: undo by identity). */
  | { j: 'fact'; ts: string; stepId?: string; name: string; value: string }
  | { j: 'undo'; ts: string; stepId: string; ok: boolean; error?: string }
  | { j: 'end'; ts: string; outcome: string; exitCode: number; state: string[] }
  | { j: 'resolved'; ts: string; by: string; mode: RecoverMode; outcome: string }
  /** A `recover` run started on this run (its own journal is folded in: a killed recover is recovered too). */
  | { j: 'attempt'; ts: string; by: string; mode: RecoverMode; journal: string };

export interface JournalIndexEntry {
  format: string;
  runId: string;
  journal: string;
  recipe: { name: string; file: string };
  lockKeys: string[];
  targets: Partial<Record<string, string>>;
  pid: number;
  host: string;
  bootId: string;
  startedAt: string;
  recovers?: string;
}

/** The journal index directory in the machine-wide state directory. */
export function journalIndexDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(stateDir(env), 'journal');
}

export function bootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return '';
  }
}

function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
    fsyncSync(fd);
  } catch {
    // Some file systems refuse fsync on a directory; the file itself is synced.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function writeAll(fd: number, text: string): void {
  const bytes = Buffer.from(text, 'utf8');
  let off = 0;
  while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
}

/** Write `text` to a new file (O_EXCL|O_NOFOLLOW), fsync it and its directory. */
function createDurable(file: string, text: string, mode: number): void {
  const fd = createExclusiveSync(file, mode);
  try {
    writeAll(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  fsyncDir(path.dirname(file));
}

/** Append one record to a journal and fsync it. */
export function appendRecord(file: string, record: JournalRecord): void {
  const fd = openAppendNoFollowSync(file);
  try {
    writeAll(fd, `${safeJsonStringify(record)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** The records of a journal: its parseable prefix (a torn last line, as a kill -9 leaves, is dropped). */
export function readJournal(file: string): JournalRecord[] {
  const st = lstatSync(file);
  if (!st.isFile()) throw new Error(`${file} is not a regular file`);
  const text = readFileSync(file, 'utf8');
  const out: JournalRecord[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      const r = JSON.parse(line) as JournalRecord;
      if (!r || typeof r !== 'object' || typeof (r as { j?: unknown }).j !== 'string') break;
      out.push(r);
    } catch {
      break;
    }
  }
  return out;
}

export function indexFile(env: NodeJS.ProcessEnv, runId: string): string {
  return path.join(journalIndexDir(env), `${runId.replace(/[^A-Za-z0-9._-]/g, '_')}.json`);
}

/** Remove a run's index entry (it is finished or resolved). Never throws. */
export function removeIndexEntry(env: NodeJS.ProcessEnv, runId: string): void {
  try {
    unlinkSync(indexFile(env, runId));
    fsyncDir(journalIndexDir(env));
  } catch {
    // already gone
  }
}

/** Every index entry in the state directory (unreadable ones are skipped). */
export function readIndex(env: NodeJS.ProcessEnv = process.env): JournalIndexEntry[] {
  const dir = journalIndexDir(env);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const out: JournalIndexEntry[] = [];
  for (const name of names.filter((n) => n.endsWith('.json')).sort()) {
    try {
      const file = path.join(dir, name);
      if (!lstatSync(file).isFile()) continue;
      const e = JSON.parse(readFileSync(file, 'utf8')) as JournalIndexEntry;
      if (e.format !== INDEX_FORMAT || typeof e.journal !== 'string' || typeof e.runId !== 'string') continue;
      out.push(e);
    } catch {
      // a torn or foreign file: skipped
    }
  }
  return out;
}

export interface AttachJournalOptions {
  /** The run directory (evidence). */
  runDir: string;
  lockKeys: string[];
  env?: NodeJS.ProcessEnv;
  operator?: string;
  /** For a recover run: the run it recovers, how, and that run's pre-incident copies. */
  recovers?: { runId: string; mode: RecoverMode; journal: string; preIncident: PreIncidentCopy[] };
}

export interface JournalHandle {
  readonly file: string | undefined;
  /** Problems writing the journal (the run goes on; evidence records them). */
  readonly errors: readonly string[];
  dispose(): void;
}

/**
 * Journal a restore from its event bus. Call before the engine runs: the journal is created on
 * `run-started` (which carries the plan), and every record is on disk before `emit` returns.
 */
export function attachJournal(bus: EventBus, opts: AttachJournalOptions): JournalHandle {
  const env = opts.env ?? process.env;
  const errors: string[] = [];
  let file: string | undefined;
  let runId: string | undefined;
  let ended = false;
  let plan: Plan | undefined;
  const write = (record: JournalRecord): void => {
    if (!file) return;
    try {
      appendRecord(file, record);
    } catch (error) {
      errors.push(`journal ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
    }
  };
  const onEvent = (e: EngineEvent): void => {
    switch (e.type) {
      case 'run-started': {
        if (file || !e.plan) return;
        plan = e.plan;
        runId = e.runId;
        const journal = path.join(opts.runDir, JOURNAL_FILE);
        const preIncident: PreIncidentCopy[] =
          opts.recovers?.preIncident ??
          plan.steps
            .filter((s) => s.safetyCopy && s.safetyCopy.kind !== 'none')
            .map((s) => ({
              stepId: s.id,
              component: s.safetyCopy!.component,
              kind: s.safetyCopy!.kind,
              location: s.safetyCopy!.location,
              description: s.safetyCopy!.description,
              run: e.runId,
            }));
        const begin: JournalRecord = {
          j: 'begin',
          format: JOURNAL_FORMAT,
          runId: e.runId,
          recipe: e.recipe,
          lockKeys: opts.lockKeys,
          pid: process.pid,
          host: os.hostname(),
          bootId: bootId(),
          operator: opts.operator ?? e.operator,
          startedAt: e.ts,
          evidenceDir: opts.runDir,
          plan,
          preIncident,
          ...(opts.recovers ? { recovers: { runId: opts.recovers.runId, mode: opts.recovers.mode, journal: opts.recovers.journal } } : {}),
        };
        try {
          createDurable(journal, `${safeJsonStringify(begin)}\n`, 0o640);
          file = journal;
          const dir = journalIndexDir(env);
          mkdirSync(dir, { recursive: true, mode: 0o700 });
          const entry: JournalIndexEntry = {
            format: INDEX_FORMAT,
            runId: e.runId,
            journal,
            recipe: { name: e.recipe.name, file: e.recipe.file },
            lockKeys: opts.lockKeys,
            targets: plan.targets,
            pid: process.pid,
            host: os.hostname(),
            bootId: begin.bootId,
            startedAt: e.ts,
            ...(opts.recovers ? { recovers: opts.recovers.runId } : {}),
          };
          createDurable(indexFile(env, e.runId), `${safeJsonStringify(entry)}\n`, 0o600);
        } catch (error) {
          errors.push(`journal: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
        }
        return;
      }
      case 'step-started': {
        const step = plan?.steps.find((s) => s.id === e.stepId);
        write({
          j: 'intent',
          ts: e.ts,
          stepId: e.stepId,
          title: e.title,
          ...(step?.undo ? { undo: step.undo } : {}),
          ...(step?.safetyCopy ? { safetyCopy: step.safetyCopy } : {}),
        });
        return;
      }
      case 'step-finished':
        write({ j: 'step', ts: e.ts, stepId: e.stepId, status: 'done' });
        return;
      case 'step-failed':
        write({
          j: 'step',
          ts: e.ts,
          stepId: e.stepId,
          status: /health checks? failed/.test(e.error) && e.stepId === 'health' ? 'unhealthy' : 'failed',
          error: e.error,
        });
        return;
      case 'step-skipped':
        write({ j: 'step', ts: e.ts, stepId: e.stepId, status: 'skipped' });
        return;
      case 'rollback-started':
        write({ j: 'rollback', ts: e.ts, reason: e.reason });
        return;
      case 'log':
        if (e.fact) write({ j: 'fact', ts: e.ts, ...(e.stepId ? { stepId: e.stepId } : {}), name: e.fact.name, value: e.fact.value });
        return;
      case 'rollback-step':
        write({ j: 'undo', ts: e.ts, stepId: e.stepId, ok: e.ok, ...(e.error ? { error: e.error } : {}) });
        return;
      case 'run-finished':
        if (ended) return;
        ended = true;
        write({ j: 'end', ts: e.ts, outcome: e.outcome, exitCode: e.exitCode, state: e.state });
        // The run reported its own end state (a rollback-incomplete one with its manual steps).
        if (file && runId) removeIndexEntry(env, runId);
        return;
      default:
        return;
    }
  };
  // Events emitted before attaching (none in practice): replay.
  for (const e of bus.history) onEvent(e);
  const off = bus.on(onEvent);
  return {
    get file() {
      return file;
    },
    errors,
    dispose: off,
  };
}
