import { createHash, randomBytes } from 'node:crypto';
import {
  appendFileSync,
  closeSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { fsCause } from '../exec/diagnose.js';
import { checkDirSafe, createExclusiveSync, openAppendNoFollowSync } from '../exec/safe-fs.js';
import { loadSealSigner, SIGNATURE_FILE, type SealSigner } from './signing.js';
import os from 'node:os';
import path from 'node:path';
import type { EngineEvent, EngineEventBody, EventBus, RunKind } from '../engine/events.js';
import { RestoreAssistantError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { redactDeep, type Redactor } from '../exec/redact.js';
import {
  EVENTS_FILE,
  EVIDENCE_FORMAT,
  formatRunStamp,
  HISTORY_FILE,
  HISTORY_FORMAT,
  REPORT_JSON,
  REPORT_MD,
  serializeLine,
  sha256Hex,
  ZERO_HASH,
  type EvidenceHeader,
  type EvidenceNote,
  type HistoryEntry,
  type LineBody,
} from './format.js';
import { buildReport, renderMarkdown } from './report.js';
import { type LoadedRecipe } from '../recipe/load.js';
import { evidenceDir } from '../state/paths.js';
import { toolVersion } from '../version.js';
import { exportMetricsOnClose } from '../metrics/index.js';
import { afterClose } from './after-close.js';
import { afterOutcome } from './deferred.js';
import { safeJsonStringify, sanitizeDeep, sanitizeText } from '../text/sanitize.js';

export interface AttachEvidenceOptions {
  evidenceDir: string;
  runId: string;
  kind: RunKind;
  recipe: { name: string; file: string; digest: string };
  redact: Redactor;
  operator?: string;
  host?: string;
  toolVersion?: string;
  /** The tool's own command line (recorded redacted). */
  commandLine?: string[];
  /** The recipe's targets (the plan in run-started carries them too; this covers runs without a plan). */
  objectives?: { rtoMinutes?: number; rpoMinutes?: number };
  drillIntervalDays?: number;
  /** command-output lines kept per command (default 200); the rest is counted, and command-finished carries the tails. */
  outputLinesPerCommand?: number;
  /** Minimum spacing of recorded progress events per step, in ms of event time (default 1000). */
  progressIntervalMs?: number;
  /** Signs the seal (seal.sig.json); none: the run is sealed unsigned. */
  signer?: SealSigner;
}

export interface EvidenceHandle {
  /** The run directory. */
  dir: string;
  runId: string;
  /** True once the seal line is written. */
  readonly sealed: boolean;
  /** Problems writing evidence (disk full, permissions). Empty when all is well. */
  readonly errors: readonly string[];
  /** Stop listening; records a note when the run never finished (the evidence stays unsealed). */
  close(): Promise<void>;
}

/** A new run id: `20261123T051200Z-restore-metachat-a1b2`. */
export function newRunId(kind: RunKind, recipeName: string, now: Date = new Date()): string {
  const name =
    recipeName
      .toLowerCase()
      .replace(/[^a-z0-9._-]+/g, '-')
      .replace(/\.{2,}/g, '.')
      .replace(/^[-.]+/, '') || 'recipe';
  return `${formatRunStamp(now)}-${kind}-${name}-${randomBytes(2).toString('hex')}`;
}

/** Who is running this: $SUDO_USER under sudo, else the login name. */
export function currentOperator(env: NodeJS.ProcessEnv = process.env): { operator: string; sudoUser?: string } {
  const sudoUser = env['SUDO_USER'] || undefined;
  let login: string | undefined;
  try {
    login = os.userInfo().username;
  } catch {
    login = env['USER'] || env['LOGNAME'];
  }
  return { operator: sudoUser ?? login ?? 'unknown', ...(sudoUser ? { sudoUser } : {}) };
}

const DIR_MODE = 0o750;
const FILE_MODE = 0o640;

/** Events whose loss would matter most: fsync right after writing them. */
const bulkTypes = new Set<EngineEventBody['type']>(['command-output', 'progress']);

/**
 * Record a run: creates <evidenceDir>/<runId>/ and writes every event of `bus` (those already
 * emitted, then each new one) to events.jsonl as a hash chain, redacted, flushed line by line.
 * On `run-finished` it writes the seal line, report.json, report.md and the history entry.
 * Throws (before anything is touched) when the directory cannot be created.
 */
export function attachEvidence(bus: EventBus, opts: AttachEvidenceOptions): EvidenceHandle {
  const redact = opts.redact;
  const root = path.resolve(opts.evidenceDir);
  const dir = path.join(root, opts.runId);
  const eventsFile = path.join(dir, EVENTS_FILE);
  let fd: number;
  try {
    mkdirSync(root, { recursive: true, mode: DIR_MODE });
    // The run directory is new (mkdir fails on any existing name, a symlink included) and every
    // file in it is created with O_EXCL|O_NOFOLLOW: nothing planted can redirect a write.
    mkdirSync(dir, { mode: DIR_MODE });
    fd = createExclusiveSync(eventsFile, FILE_MODE);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    const cause = fsCause(error, root);
    throw new RestoreAssistantError(`Cannot create the evidence directory ${dir} (${cause ?? code}).`, ExitCode.preflightFailed, {
      untouched: 'Nothing was touched.',
      next:
        code === 'EEXIST'
          ? 'A run with this id exists already; run again (a new id is made each time).'
          : "Make the directory writable, or point evidence elsewhere: the recipe's evidence.dir or $RESTORE_ASSISTANT_EVIDENCE_DIR.",
      cause: error,
    });
  }

  const outputCap = opts.outputLinesPerCommand ?? 200;
  const progressInterval = opts.progressIntervalMs ?? 1000;
  const errors: string[] = [];
  let seq = 0;
  let prev = ZERO_HASH;
  let size = 0;
  /** sha256 of every byte written so far (the seal's finalHash). */
  const fileHash = createHash('sha256');
  let lastT = 0;
  let sealed = false;
  let broken = false;
  let closed = false;
  let pendingSync = false;
  const outputCounts = new Map<string, { stepId: string; seen: number }>();
  const progressLast = new Map<string, { t: number; omitted: number }>();

  const fail = (what: string, error: unknown): void => {
    const code = (error as NodeJS.ErrnoException).code;
    errors.push(`${what}: ${code ?? (error instanceof Error ? error.message : String(error))}`);
  };

  /** Write one line and flush it; on a write error, cut the file back to the last whole line and stop. */
  const writeLine = (ts: string, t: number, body: LineBody, sync: boolean): string | undefined => {
    if (broken) return undefined;
    const line = serializeLine(seq + 1, ts, t, prev, body);
    const bytes = Buffer.from(`${line}\n`, 'utf8');
    try {
      let off = 0;
      while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
      if (sync) {
        fsyncSync(fd);
        pendingSync = false;
      } else {
        pendingSync = true;
      }
    } catch (error) {
      fail(`writing ${eventsFile}`, error);
      broken = true;
      try {
        ftruncateSync(fd, size);
        fsyncSync(fd);
      } catch {
        // nothing more can be done; verify will name the torn line
      }
      return undefined;
    }
    seq += 1;
    size += bytes.length;
    fileHash.update(bytes);
    prev = sha256Hex(line);
    return line;
  };

  const { operator: defaultOperator, sudoUser } = currentOperator();
  const header: EvidenceHeader = redactDeep(
    {
      format: EVIDENCE_FORMAT,
      runId: opts.runId,
      kind: opts.kind,
      recipe: opts.recipe,
      operator: opts.operator ?? defaultOperator,
      ...(sudoUser && opts.operator === undefined ? { sudoUser } : {}),
      host: opts.host ?? os.hostname(),
      toolVersion: opts.toolVersion ?? '0.0.0',
      pid: process.pid,
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
      ...(opts.commandLine ? { commandLine: opts.commandLine } : {}),
      ...(opts.objectives ? { objectives: opts.objectives } : {}),
      ...(opts.drillIntervalDays !== undefined ? { drillIntervalDays: opts.drillIntervalDays } : {}),
    } satisfies EvidenceHeader,
    redact,
  );
  writeLine(new Date().toISOString(), 0, { header }, true);
  if (broken) {
    closeSync(fd);
    throw new RestoreAssistantError(`Cannot write evidence to ${eventsFile}.`, ExitCode.preflightFailed, {
      untouched: 'Nothing was touched.',
      problems: errors,
      next: 'Free space or fix permissions on the evidence directory, or point evidence elsewhere ($RESTORE_ASSISTANT_EVIDENCE_DIR).',
    });
  }

  const note = (n: EvidenceNote, sync: boolean): void => {
    writeLine(new Date().toISOString(), lastT, { note: n }, sync);
  };

  const seal = (finished: Extract<EngineEvent, { type: 'run-finished' }>): void => {
    if (broken) return;
    const lines = seq;
    const finalHash = fileHash.copy().digest('hex');
    const sealLine = writeLine(
      new Date().toISOString(),
      finished.t,
      { seal: { lines, finalHash, outcome: finished.outcome, exitCode: finished.exitCode } },
      true,
    );
    if (sealLine === undefined) return;
    sealed = true;
    try {
      closeSync(fd);
    } catch (error) {
      fail(`closing ${eventsFile}`, error);
    }
    closed = true;
    const sealHash = sha256Hex(sealLine);
    if (opts.signer) {
      try {
        writeAtomic(path.join(dir, SIGNATURE_FILE), `${JSON.stringify(opts.signer.sign(opts.runId, sealHash), null, 2)}\n`);
      } catch (error) {
        fail('signing the seal', error);
      }
    }
    writeReportsAndHistory(sealHash, { lines, finalHash });
  };

  const writeReportsAndHistory = (sealHash: string, sealInfo: { lines: number; finalHash: string }): void => {
    let report;
    try {
      report = buildReport(readFileSync(eventsFile), { status: 'sealed', lines: sealInfo.lines + 1 }, dir);
      writeAtomic(path.join(dir, REPORT_JSON), `${safeJsonStringify(redactDeep(report, redact), 2)}\n`);
      writeAtomic(path.join(dir, REPORT_MD), redact(renderMarkdown(report)));
    } catch (error) {
      fail('writing the report', error);
    }
    try {
      const entry: HistoryEntry = {
        format: HISTORY_FORMAT,
        runId: opts.runId,
        kind: opts.kind,
        recipe: opts.recipe,
        backup: report?.backup ? { id: report.backup.id, time: report.backup.time } : null,
        outcome: report?.outcome ?? 'refused',
        exitCode: report?.exitCode ?? ExitCode.internal,
        startedAt: report?.startedAt ?? new Date().toISOString(),
        confirmedAt: report?.confirmedAt ?? null,
        finishedAt: report?.finishedAt ?? new Date().toISOString(),
        rtoMs: report?.rto.measuredMs ?? null,
        rtoFrom: report?.rto.from ?? null,
        rpoMs: report?.rpo.measuredMs ?? null,
        objectives: { rtoMinutes: report?.rto.targetMinutes ?? null, rpoMinutes: report?.rpo.targetMinutes ?? null },
        operator: header.operator,
        host: header.host,
        ...(opts.drillIntervalDays !== undefined ? { drillIntervalDays: opts.drillIntervalDays } : {}),
        seal: { lines: sealInfo.lines, finalHash: sealInfo.finalHash, hash: sealHash },
      };
      // One write with O_APPEND: concurrent runs never interleave inside a line.
      const historyFile = path.join(root, HISTORY_FILE);
      // O_NOFOLLOW, and the open file must be a regular file of ours with one link: a symlink or
      // hard link planted at history.jsonl never makes root append to another file.
      const hfd = openAppendNoFollowSync(historyFile, { create: true, mode: FILE_MODE });
      try {
        appendFileSync(hfd, `${safeJsonStringify(sanitizeDeep(redactDeep(entry, redact)))}\n`);
        fsyncSync(hfd);
      } finally {
        closeSync(hfd);
      }
    } catch (error) {
      fail('appending to the history index', error);
    }
  };

  const onEvent = (event: EngineEvent): void => {
    if (sealed || broken) return;
    const { ts, t, ...body } = event;
    lastT = t;
    if (body.type === 'command-output') {
      const c = outputCounts.get(body.commandId) ?? { stepId: body.stepId, seen: 0 };
      c.seen += 1;
      outputCounts.set(body.commandId, c);
      if (c.seen > outputCap) return;
    } else if (body.type === 'progress') {
      const last = progressLast.get(body.stepId);
      const final = body.total !== undefined && body.done >= body.total;
      if (last && t - last.t < progressInterval && !final) {
        last.omitted += 1;
        return;
      }
      progressLast.set(body.stepId, { t, omitted: 0 });
      if (last && last.omitted > 0 && final) note({ type: 'progress-thinned', stepId: body.stepId, omitted: last.omitted }, false);
    } else if (body.type === 'command-finished') {
      const c = outputCounts.get(body.commandId);
      if (c && c.seen > outputCap)
        note({ type: 'output-capped', stepId: c.stepId, commandId: body.commandId, kept: outputCap, omitted: c.seen - outputCap }, false);
      outputCounts.delete(body.commandId);
    }
    const clean = redactDeep(body as EngineEventBody, redact);
    writeLine(ts, t, { event: clean }, !bulkTypes.has(body.type));
    if (body.type === 'run-finished') seal(event as Extract<EngineEvent, { type: 'run-finished' }>);
  };

  for (const past of bus.history) onEvent(past);
  const off = bus.on(onEvent);

  return {
    dir,
    runId: opts.runId,
    get sealed() {
      return sealed;
    },
    get errors() {
      return errors;
    },
    async close() {
      off();
      if (closed) return;
      closed = true;
      if (!sealed && !broken) note({ type: 'closed-unsealed', reason: 'the run ended without a run-finished event' }, true);
      try {
        if (pendingSync) fsyncSync(fd);
        closeSync(fd);
      } catch (error) {
        fail(`closing ${eventsFile}`, error);
      }
    },
  };
}

/**
 * Refuse an evidence directory that someone other than root (or us) could write: they could plant
 * a symlink or file at history.jsonl or a run's name, or rewrite runs. Checked before any slow
 * step (restore, drill and verify call it first); the error names the fix.
 */
export async function checkEvidenceDir(root: string): Promise<void> {
  const problem = await checkDirSafe(root);
  if (problem) {
    throw new RestoreAssistantError(
      `The evidence directory ${root} is not safe to write as this user: ${problem.problem}.`,
      ExitCode.preflightFailed,
      {
        untouched: 'Nothing was touched.',
        next: `Fix it (${problem.fix}), or point evidence at a directory only root can write: the recipe's evidence.dir or $RESTORE_ASSISTANT_EVIDENCE_DIR.`,
      },
    );
  }
  checkEvidenceWritable(root);
}

/** mkdir -p one component at a time: a recursive mkdirSync reports EROFS as ENOENT. */
function mkdirEach(dir: string): void {
  const abs = path.resolve(dir);
  const missing: string[] = [];
  for (let cur = abs; ; cur = path.dirname(cur)) {
    try {
      statSync(cur);
      break;
    } catch {
      missing.unshift(cur);
      if (path.dirname(cur) === cur) break;
    }
  }
  for (const m of missing) {
    try {
      mkdirSync(m, { mode: DIR_MODE });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
}

/**
 * The evidence directory takes a write (issue 11): create it if needed, write and fsync a small
 * probe file (O_EXCL|O_NOFOLLOW) and remove it. A read-only file system (EROFS) or a full disk
 * (ENOSPC) is found here, before any slow step, and named.
 */
export function checkEvidenceWritable(root: string): void {
  const probe = path.join(root, `.write-probe-${process.pid}-${randomBytes(4).toString('hex')}`);
  let fd: number | undefined;
  try {
    mkdirEach(root);
    fd = createExclusiveSync(probe, FILE_MODE);
    writeSync(fd, Buffer.alloc(16 * 1024));
    fsyncSync(fd);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    const cause = fsCause(error, root) ?? `${root} cannot be written (${code}: ${(error as Error).message})`;
    throw new RestoreAssistantError(`The evidence directory cannot be written: ${cause}.`, ExitCode.preflightFailed, {
      untouched: 'Nothing was touched.',
      next:
        code === 'EROFS'
          ? `Remount it read-write, or point evidence at a writable directory: the recipe's evidence.dir or $RESTORE_ASSISTANT_EVIDENCE_DIR.`
          : code === 'ENOSPC' || code === 'EDQUOT'
            ? `Free space on the file system of ${root} (df -h ${root}), or point evidence elsewhere: the recipe's evidence.dir or $RESTORE_ASSISTANT_EVIDENCE_DIR.`
            : `Make ${root} writable, or point evidence elsewhere: the recipe's evidence.dir or $RESTORE_ASSISTANT_EVIDENCE_DIR.`,
      cause: error,
    });
  } finally {
    if (fd !== undefined) closeSync(fd);
    try {
      unlinkSync(probe);
    } catch {
      // never created
    }
  }
}

/**
 * What restore, drill and verify call before anything slow: the recipe's evidence directory is
 * safe (checkEvidenceDir) and the seal signing key is there (created on first use; signing.ts).
 */
export async function prepareRecipeEvidence(
  loaded: LoadedRecipe,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ dir: string; signer: SealSigner }> {
  const dir = evidenceDir(loaded.recipe, env);
  await checkEvidenceDir(dir);
  return { dir, signer: loadSealSigner(env) };
}

/**
 * attachEvidence with everything taken from a loaded recipe: its evidence directory
 * (evidence.dir, else $RESTORE_ASSISTANT_EVIDENCE_DIR, else the XDG state dir), its objectives and
 * drill interval, a new run id (unless given), and this tool's version. What restore, drill and
 * verify call right after building their EventBus, before the first event.
 */
export function attachRecipeEvidence(
  bus: EventBus,
  args: { loaded: LoadedRecipe; kind: RunKind; redact: Redactor; runId?: string; commandLine?: string[]; env?: NodeJS.ProcessEnv },
): EvidenceHandle {
  const { recipe, file, digest } = args.loaded;
  const handle = attachEvidence(bus, {
    signer: loadSealSigner(args.env ?? process.env),
    evidenceDir: evidenceDir(recipe, args.env),
    runId: args.runId ?? newRunId(args.kind, recipe.name),
    kind: args.kind,
    recipe: { name: recipe.name, file, digest },
    redact: args.redact,
    toolVersion: toolVersion(),
    objectives: recipe.objectives,
    drillIntervalDays: recipe.drill.intervalDays,
    ...(args.commandLine ? { commandLine: args.commandLine } : {}),
  });
  // After every run: metrics (source/metrics/), then the sealed run off-site (evidence.upload: upload.ts).
  return uploadOnClose(exportMetricsOnClose(handle, args.loaded, args.env), args.loaded, args.env);
}

/**
 * The sealed run off-site (upload.ts uploadSealedRun), loaded only when the recipe has
 * evidence.upload: a restore from local disk never loads the AWS SDK. Closing the run queues it
 * (deferred.ts): the CLI runs it after the command has printed its outcome, so a bucket that is
 * down never delays the closing block; the upload's result is recorded in history.jsonl when it
 * is known (the seal covers events.jsonl, sealed at close, before any of this).
 */
function uploadOnClose(handle: EvidenceHandle, loaded: LoadedRecipe, env: NodeJS.ProcessEnv | undefined): EvidenceHandle {
  if (!loaded.recipe.evidence.upload) return handle;
  return afterClose(handle, async () => {
    if (!handle.sealed) return;
    afterOutcome(async () => {
      const m = await import('./upload.js').catch((error: unknown) => {
        process.stderr.write(`Warning: evidence not uploaded: ${sanitizeText((error as Error).message, 300)}\n`);
        return undefined;
      });
      await m?.uploadSealedRun(handle, loaded, env);
    });
  });
}

/** Write a whole file via a temp file (created O_EXCL|O_NOFOLLOW) and rename, so a reader never sees half a report. */
function writeAtomic(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const fd = createExclusiveSync(tmp, FILE_MODE);
  try {
    try {
      const bytes = Buffer.from(text, 'utf8');
      let off = 0;
      while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    // rename replaces the name itself (never follows a symlink planted there).
    renameSync(tmp, file);
  } catch (error) {
    // A full disk (ENOSPC) must not leave report.json.tmp-* behind (issue 11).
    try {
      unlinkSync(tmp);
    } catch {
      // already renamed or never written
    }
    const cause = fsCause(error, path.dirname(file));
    if (cause) throw new Error(`${cause}: ${path.basename(file)} was not written`, { cause: error });
    throw error;
  }
}
