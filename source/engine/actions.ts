import { createHash } from 'node:crypto';
import { chmod, link, lstat, mkdir, open, realpath, rename, rm, rmdir, stat, unlink, type FileHandle } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { PassThrough, type Readable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { run, type CommandEvent, type RunResult } from '../exec/run.js';
import type { Redactor } from '../exec/redact.js';
import type { PlannedAction, PlannedCommand } from '../actions/types.js';
import type { Check } from '../recipe/schema.js';
import { fileIdentity, identityChange, sameIdentity } from '../catalog/identity.js';
import type { FileIdentity } from '../catalog/types.js';
import { createExclusive, stagingParent } from '../exec/safe-fs.js';
import type { ConsumedFile, EngineEventBody } from './events.js';
import { isDecompressionDamage, postgresSessionEnd } from '../exec/diagnose.js';
import { ArchiveChangedError, safeExtractTarGz } from './extract.js';
import { forgetRunTempDir, makeRunTempDir } from './run-temp.js';
import { followRecoveryAction, writeFileAction } from './recovery.js';
import { PsqlRestrictGuard } from './psql-guard.js';
import {
  decodeIdentity,
  describeIdentity,
  encodeIdentity,
  identityMismatch,
  pathIdentity,
  removeIfOwn,
  sameObject,
} from './path-identity.js';
import { PgRestoreItemCounter, StripOwnershipAndAcl, throttle } from './streams.js';
import { plainParallelRestore, type SplitHelpers } from './plain-split/restore.js';

/**
 * Executors for every planned action (docs/architecture.md, "Planned actions"). Each either
 * resolves with a one-line detail or throws an ActionError saying exactly what went wrong.
 * Every process runs through exec/run.ts; its events reach the bus tagged with the step id.
 */

/** What a health check reports (source/checks/index.ts `runCheck`). */
export interface CheckResult {
  ok: boolean;
  attempts: number;
  detail: string;
  durationMs: number;
}

/** What the engine hands a check: where secrets come from, redaction, abort, and a sink for its command events. */
export interface CheckRunContext {
  env: NodeJS.ProcessEnv;
  redact: Redactor;
  signal: AbortSignal;
  onEvent?: (event: CommandEvent) => void;
  [extra: string]: unknown;
}

export type CheckRunner = (check: Check, ctx: CheckRunContext) => Promise<CheckResult>;

export interface ActionContext {
  stepId: string;
  emit: (body: EngineEventBody) => void;
  redact: Redactor;
  /** The operator's environment: `envFrom` values are looked up here. */
  env: NodeJS.ProcessEnv;
  signal: AbortSignal;
  runCheck: CheckRunner;
  /** Extra fields passed through to every check (e.g. the recipe's connection details). */
  checkContext?: Record<string, unknown>;
  /** The latest output line of the running command (for a live tail). */
  onOutput?: (line: string) => void;
  /** Minimum time between progress events (default 250 ms: at most ~4 per second). */
  progressIntervalMs?: number;
  /** The backup files as verification saw them (the plan's backup components): only these bytes are restored. */
  verifiedFiles?: ReadonlyArray<VerifiedFile>;
  /** Run facts recorded so far (PlannedCommand.record), read by `{{fact:NAME}}` in argv. */
  facts?: Map<string, string>;
}

/** Triples PATH RECORDED BACK: remove PATH only if `stat -c %d:%i` says RECORDED (what the run put there); BACK (the previous data put back) or absent: nothing to do. */
const GUARDED_REMOVE_SCRIPT = [
  'set -eu',
  'while [ $# -ge 3 ]; do',
  '  if [ -e "$1" ] || [ -L "$1" ]; then',
  '    id="$(stat -c %d:%i -- "$1")"',
  '    if [ "$id" = "$3" ]; then echo "$1 holds the previous data (put back): leaving it" >&2',
  '    elif [ "$id" = "$2" ]; then rm -rf -- "$1"',
  '    else echo "restore-assistant: $1 is not what the run put there ($2); not removing it" >&2; exit 1; fi',
  '  fi',
  '  shift 3',
  'done',
].join('\n');

const FACT_REF = /\{\{fact(\??):([A-Za-z0-9_.-]+)\}\}/g;

/** The argv with run facts put in; throws ActionError naming the fact when one is not recorded. */
export function resolveFacts(argv: readonly string[], facts: ReadonlyMap<string, string> | undefined, purpose: string): string[] {
  return argv.map((a) =>
    a.replace(FACT_REF, (_m, optional: string, name: string) => {
      const v = facts?.get(name);
      // `{{fact?:NAME}}`: SQL NULL when not recorded (the SQL around it decides what that means).
      if (v === undefined && optional) return 'NULL';
      if (v === undefined)
        throw new ActionError(
          `not run: ${purpose}: it needs ${name}, which this run did not record (the step that records it did not complete), so it cannot check that it acts on what this run created`,
        );
      return v;
    }),
  );
}

/** The argv with the facts that are known put in (the others stay as placeholders): for manual steps. */
export function withKnownFacts<T extends PlannedAction>(action: T, facts: ReadonlyMap<string, string> | undefined): T | PlannedAction {
  if (action.type === 'remove') {
    // Pasteable by identity: each path is removed only if it still has the device:inode this run recorded.
    const args = action.paths.flatMap((x) => {
      const id = decodeIdentity(facts?.get(x.expect));
      const back = (x.doneIf ?? []).map((f) => decodeIdentity(facts?.get(f))).find((b) => b !== undefined);
      return [x.path, id ? `${id.dev}:${id.ino}` : 'unrecorded', back ? `${back.dev}:${back.ino}` : 'none'];
    });
    return { type: 'exec', argv: ['sh', '-c', GUARDED_REMOVE_SCRIPT, 'sh', ...args], purpose: action.purpose, runsIn: 'host' };
  }
  if (action.type !== 'exec' || !facts) return action;
  return { ...action, argv: action.argv.map((a) => a.replace(FACT_REF, (m, _o: string, name: string) => facts.get(name) ?? m)) };
}

export interface VerifiedFile {
  path: string;
  verifiedSha256?: string;
  identity?: FileIdentity;
}

/** An action failed; the message is operator-facing and already redacted. */
export class ActionError extends Error {
  constructor(
    message: string,
    readonly result?: RunResult,
  ) {
    super(message);
    this.name = 'ActionError';
  }
}

/** A health check (`check` action) did not pass. */
export class CheckFailedError extends ActionError {
  constructor(
    readonly checkName: string,
    readonly check: CheckResult,
  ) {
    super(`health check "${checkName}" failed after ${check.attempts} attempt${check.attempts === 1 ? '' : 's'}: ${check.detail}`);
    this.name = 'CheckFailedError';
  }
}

/** The run was interrupted while this action ran. */
export class InterruptedError extends Error {
  constructor(what: string) {
    super(`interrupted while ${what}`);
    this.name = 'InterruptedError';
  }
}

function secretEnv(cmd: PlannedCommand, ctx: ActionContext): { env: Record<string, string>; redact: Redactor } {
  const env: Record<string, string> = {};
  for (const [child, from] of Object.entries(cmd.envFrom ?? {})) {
    const value = ctx.env[from];
    if (value === undefined || value === '') {
      throw new ActionError(
        `the environment variable ${from} is not set; ${path.basename(cmd.argv[0] ?? 'the command')} needs it as ${child}`,
      );
    }
    env[child] = value;
  }
  return { env, redact: ctx.redact.with(Object.values(env)) };
}

/**
 * Engine events for a command's events. `polled`: the command is a wait's poll, whose every exit
 * status is an answer (not yet / done), so only a timeout, a signal or a failure to start is not ok.
 */
function forward(
  ctx: ActionContext,
  runsIn: string | undefined,
  extra?: (event: CommandEvent) => void,
  polled = false,
): (event: CommandEvent) => void {
  return (event) => {
    extra?.(event);
    switch (event.type) {
      case 'command-started':
        ctx.emit({
          type: 'command-started',
          stepId: ctx.stepId,
          commandId: event.commandId,
          argv: event.argv,
          ...(runsIn ? { runsIn } : {}),
        });
        break;
      case 'command-output':
        ctx.onOutput?.(event.line);
        ctx.emit({ type: 'command-output', stepId: ctx.stepId, commandId: event.commandId, stream: event.stream, line: event.line });
        break;
      case 'command-finished':
        ctx.emit({
          ...event,
          stepId: ctx.stepId,
          ok: polled ? event.exitCode !== null && event.signal === null && !event.timedOut : event.ok,
        });
        break;
    }
  };
}

function failure(result: RunResult, redact: Redactor): string {
  const cmd = result.argv.map((a) => redact(a)).join(' ');
  const how = result.timedOut
    ? 'timed out'
    : result.signal
      ? `was killed by ${result.signal}`
      : result.exitCode === null
        ? 'could not be started'
        : `exited with code ${result.exitCode}`;
  const tail = result.stderrTail.length > 0 ? result.stderrTail : result.stdoutTail;
  return `\`${cmd}\` ${how}${tail.length > 0 ? `: ${tail.slice(-3).join(' | ')}` : ''}`;
}

// ---------------------------------------------------------------------------------------------
// The restored bytes are the verified bytes (docs/architecture.md, "Verified bytes")
// ---------------------------------------------------------------------------------------------

function verifiedFor(ctx: ActionContext, file: string): VerifiedFile | undefined {
  return ctx.verifiedFiles?.find((v) => v.path === file);
}

/** A backup file is not the one verification read: the step fails (and the run rolls back). */
export class NotVerifiedError extends ActionError {
  constructor(
    readonly file: string,
    how: string,
  ) {
    super(
      `${file} is not the file that was verified: ${how}. Refusing to restore bytes that were not verified (the backup store may have been tampered with)`,
    );
    this.name = 'NotVerifiedError';
  }
}

/** Open a backup file once and check it is the file verification hashed (same dev, inode, size, mtime, ctime). */
async function openVerified(
  file: string,
  ctx: ActionContext,
): Promise<{ fh: FileHandle; size: number; mode: number; verified: VerifiedFile | undefined }> {
  let fh: FileHandle;
  try {
    fh = await open(file, 'r');
  } catch (error) {
    throw new ActionError(`cannot read ${file}: ${(error as Error).message}`);
  }
  const st = await fh.stat();
  const verified = verifiedFor(ctx, file);
  if (!st.isFile()) {
    await fh.close();
    throw new ActionError(`cannot read ${file}: not a regular file`);
  }
  if (verified?.identity && !sameIdentity(verified.identity, fileIdentity(st))) {
    await fh.close();
    throw new NotVerifiedError(file, identityChange(verified.identity, fileIdentity(st)));
  }
  return { fh, size: st.size, mode: st.mode, verified };
}

/** Record what was consumed (an evidence event); throw when it is not what was verified. */
function consumedOutcome(ctx: ActionContext, file: string, sha256: string, bytes: number, verified: VerifiedFile | undefined): void {
  const expected = verified?.verifiedSha256;
  const match = expected === undefined ? undefined : expected === sha256;
  const consumed: ConsumedFile = {
    path: file,
    how: 'hashed',
    sha256,
    bytes,
    ...(expected ? { verifiedSha256: expected } : {}),
    ...(match === undefined ? {} : { match }),
  };
  const message =
    match === undefined
      ? `consumed ${bytes} bytes of ${file}: sha256 ${sha256} (no verified digest to compare with)`
      : match
        ? `consumed ${bytes} bytes of ${file}: sha256 ${sha256}, the verified digest`
        : `consumed ${bytes} bytes of ${file}: sha256 ${sha256}, NOT the verified ${expected ?? ''}`;
  ctx.emit({ type: 'log', stepId: ctx.stepId, level: match === false ? 'error' : 'info', message, consumed });
  if (match === false) {
    throw new NotVerifiedError(
      file,
      `the bytes read (sha256 ${sha256.slice(0, 16)}…) differ from the verified bytes (sha256 ${(expected ?? '').slice(0, 16)}…)`,
    );
  }
}

/** Verified files a command opens by itself (pg_restore FILE, docker cp FILE ...): checked by identity before and after. */
function filesInArgv(argv: readonly string[], ctx: ActionContext): VerifiedFile[] {
  return (ctx.verifiedFiles ?? []).filter((v) => v.identity && argv.includes(v.path));
}

async function checkIdentity(v: VerifiedFile, when: string): Promise<void> {
  if (!v.identity) return;
  let now: FileIdentity;
  try {
    now = fileIdentity(await stat(v.path));
  } catch (error) {
    throw new NotVerifiedError(v.path, `it cannot be read ${when} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  if (!sameIdentity(v.identity, now)) throw new NotVerifiedError(v.path, `${when}, it was ${identityChange(v.identity, now)}`);
}

async function execAction(planned: Extract<PlannedAction, { type: 'exec' }>, ctx: ActionContext): Promise<string> {
  const action = planned.argv.some((a) => a.includes('{{fact'))
    ? { ...planned, argv: resolveFacts(planned.argv, ctx.facts, planned.purpose) }
    : planned;
  if (action.input?.parallel && action.input.psqlRestrict) return plainParallelRestore(action, splitHelpers(action, ctx));
  const { env, redact } = secretEnv(action, ctx);
  const interval = ctx.progressIntervalMs ?? 250;
  let input: Readable | undefined;
  let piped: Promise<void> | undefined;
  let source: Readable | undefined;
  let decompressError: Error | undefined;
  let inputFailed: Error | undefined;
  let filter: StripOwnershipAndAcl | undefined;
  let bytesProgress: { flush(): void } | undefined;

  let inputHash: ReturnType<typeof createHash> | undefined;
  let inputBytes = 0;
  let inputVerified: VerifiedFile | undefined;
  let inputHandle: FileHandle | undefined;
  const byArgv = filesInArgv(action.argv, ctx);
  for (const v of byArgv) await checkIdentity(v, 'before the step');

  if (action.input) {
    const file = action.input.file;
    // One descriptor from the identity check to the last byte: what is hashed is what the process got.
    const opened = await openVerified(file, ctx);
    inputHandle = opened.fh;
    inputVerified = opened.verified;
    const size = opened.size;
    const read = opened.fh.createReadStream({ highWaterMark: 1024 * 1024, autoClose: false });
    source = read;
    const hash = createHash('sha256');
    inputHash = hash;
    read.on('data', (chunk: Buffer | string) => {
      hash.update(chunk);
      inputBytes += chunk.length;
    });
    const stages: Transform[] = [];
    if (action.input.gunzip) {
      const gunzip = createGunzip({ chunkSize: 256 * 1024 });
      gunzip.on('error', (e) => {
        decompressError ??= e;
      });
      stages.push(gunzip);
    }
    if (action.input.filter === 'strip-ownership-and-acl') {
      filter = new StripOwnershipAndAcl();
      stages.push(filter);
    }
    // Last, so psql reads our `\restrict <per-run key>` before any byte of the dump (psql-guard.ts).
    if (action.input.psqlRestrict) stages.push(new PsqlRestrictGuard());
    if (action.progress === 'input-bytes') {
      let done = 0;
      const started = performance.now();
      const p = throttle(interval, () => {
        const elapsed = performance.now() - started;
        const etaMs = done > 0 && done < size ? Math.round((elapsed / done) * (size - done)) : done >= size ? 0 : undefined;
        ctx.emit({ type: 'progress', stepId: ctx.stepId, unit: 'bytes', done, total: size, ...(etaMs === undefined ? {} : { etaMs }) });
      });
      read.on('data', (chunk: Buffer | string) => {
        done += chunk.length;
        p.tick();
      });
      bytesProgress = p;
    }
    const sink = new PassThrough({ highWaterMark: 1024 * 1024 });
    input = sink;
    piped = pipeline([read, ...stages, sink]).catch((error: unknown) => {
      inputFailed ??= error as Error;
    });
  }

  const items = new PgRestoreItemCounter();
  const itemsStarted = performance.now();
  let itemsReported = -1;
  const itemProgress =
    action.progress === 'pg-restore-items'
      ? throttle(interval, () => {
          // Each TOC entry counted once; never more than the --list total, never the same count twice.
          const done = action.progressTotal ? Math.min(items.count, action.progressTotal) : items.count;
          if (done === itemsReported) return;
          itemsReported = done;
          const total = action.progressTotal;
          // The same per-step ETA as byte progress: the rate so far over what is left.
          const etaMs = total && done > 0 ? Math.round(((performance.now() - itemsStarted) / done) * (total - done)) : undefined;
          ctx.emit({
            type: 'progress',
            stepId: ctx.stepId,
            unit: 'items',
            done,
            ...(total ? { total } : {}),
            ...(etaMs === undefined ? {} : { etaMs }),
          });
        })
      : undefined;

  let inputCut = false;
  let result: RunResult;
  try {
    result = await run(action.argv, {
      env,
      ...(input ? { input } : {}),
      signal: ctx.signal,
      redact,
      ...(action.timeoutSeconds ? { timeoutMs: action.timeoutSeconds * 1000 } : {}),
      ...(action.okExitCodes ? { okExitCodes: action.okExitCodes } : {}),
      onEvent: forward(ctx, action.runsIn, (event) => {
        if (itemProgress && event.type === 'command-output' && event.stream === 'stderr' && items.line(event.line)) itemProgress.tick();
      }),
    });
    if (piped) {
      // The process may have stopped reading (it exited, or was killed): make sure the stream ends.
      const settled = await Promise.race([piped.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 100))]);
      if (!settled) {
        inputCut = true;
        input?.destroy();
        source?.destroy();
      }
      await piped;
    }
  } finally {
    await inputHandle?.close().catch(() => undefined);
  }
  bytesProgress?.flush();
  itemProgress?.flush();

  if (ctx.signal.aborted) throw new InterruptedError(`running \`${redact(action.argv.join(' '))}\``);
  // The bytes the process consumed must be the verified bytes, whatever it reported.
  if (action.input && inputHash && !inputCut && !inputFailed)
    consumedOutcome(ctx, action.input.file, inputHash.digest('hex'), inputBytes, inputVerified);
  for (const v of byArgv) {
    await checkIdentity(v, 'after the step');
    ctx.emit({
      type: 'log',
      stepId: ctx.stepId,
      level: 'info',
      message: `${v.path} was read by the command itself; it is the verified file (same inode, size, mtime and ctime before and after)${v.verifiedSha256 ? `: sha256 ${v.verifiedSha256}` : ''}`,
      consumed: {
        path: v.path,
        how: 'identity',
        ...(v.verifiedSha256 ? { sha256: v.verifiedSha256, verifiedSha256: v.verifiedSha256, match: true } : {}),
      },
    });
  }
  // A session the server ended (stopped, crashed, pg_terminate_backend) also cuts the input stream:
  // name that cause, not the dump (issue 11).
  const ended = result.ok ? undefined : postgresSessionEnd([...result.stderrTail, ...result.stdoutTail]);
  if (ended)
    throw new ActionError(
      `${path.basename(action.argv.find((a) => /(^|\/)(psql|pg_restore)$/.test(a)) ?? action.argv[0] ?? 'the command')} stopped: ${ended} (${failure(result, redact)})`,
      result,
    );
  if (decompressError && !isDecompressionDamage(decompressError) && !result.ok) {
    throw new ActionError(
      `${failure(result, redact)} (the input stream was cut when the command stopped: ${decompressError.message}; the dump was not found damaged)`,
      result,
    );
  }
  if (decompressError) {
    throw new ActionError(
      `decompressing ${action.input?.file ?? 'the input'} failed (${decompressError.message}): the dump is damaged or truncated, so the restore is incomplete whatever ${path.basename(action.argv[0] ?? 'the command')} reported (exit code ${result.exitCode ?? 'none'})`,
      result,
    );
  }
  if (inputFailed && !result.ok) throw new ActionError(`${failure(result, redact)} (input stream: ${inputFailed.message})`, result);
  if (!result.ok) throw new ActionError(failure(result, redact), result);
  if (action.input && (inputCut || inputFailed)) {
    throw new ActionError(
      `${path.basename(action.argv[0] ?? 'the command')} exited before reading all of ${action.input.file}${inputFailed ? ` (${inputFailed.message})` : ''}: the restore is incomplete`,
      result,
    );
  }
  if (action.record) {
    const rec = action.record;
    const line =
      result.stdout
        .split('\n')
        .map((l) => l.trim())
        .filter(Boolean)
        .pop() ?? '';
    if (!new RegExp(rec.pattern).test(line))
      throw new ActionError(`could not record ${rec.what}: the command printed ${JSON.stringify(redact(line).slice(0, 80))}`, result);
    ctx.facts?.set(rec.fact, line);
    ctx.emit({
      type: 'log',
      stepId: ctx.stepId,
      level: 'info',
      message: `recorded ${rec.what}: ${line}`,
      fact: { name: rec.fact, value: line },
    });
  }
  const parts: string[] = [];
  if (filter && filter.dropped > 0) parts.push(`${filter.dropped} ownership/privilege statements skipped`);
  // The same count the progress showed (issue 12: "125 of 125" then a detail of "168 items").
  const restored = action.progressTotal ? Math.min(items.count, action.progressTotal) : items.count;
  if (restored > 0) parts.push(action.progressTotal ? `${restored} of ${action.progressTotal} items` : `${restored} items`);
  return parts.join(', ');
}

/** What the parallel plain restore (engine/plain-split/restore.ts) uses of this module. */
function splitHelpers(action: PlannedCommand, ctx: ActionContext): SplitHelpers {
  let verified: VerifiedFile | undefined;
  return {
    emit: ctx.emit,
    stepId: ctx.stepId,
    signal: ctx.signal,
    progressIntervalMs: ctx.progressIntervalMs ?? 250,
    secretEnv: (cmd) => secretEnv(cmd, ctx),
    openVerified: async (file) => {
      const o = await openVerified(file, ctx);
      verified = o.verified;
      return o;
    },
    consumed: (file, sha256, bytes) => consumedOutcome(ctx, file, sha256, bytes, verified),
    forward: (extra) => forward(ctx, action.runsIn, extra),
    failure,
    actionError: (message) => new ActionError(message),
    interrupted: (what) => new InterruptedError(what),
  };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

function tcpOnce(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const finish = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => finish(false));
    socket.once('connect', () => finish(true));
    socket.once('error', () => finish(false));
  });
}

async function waitTcp(action: Extract<PlannedAction, { type: 'wait-tcp' }>, ctx: ActionContext): Promise<string> {
  const deadline = performance.now() + action.timeoutSeconds * 1000;
  const down = action.until === 'down';
  const where = `${action.host}:${action.port}`;
  let attempts = 0;
  for (;;) {
    attempts++;
    const accepts = await tcpOnce(action.host, action.port, 1000);
    if (accepts !== down)
      return `${where} ${down ? 'refusing connections' : 'accepting connections'} after ${attempts} attempt${attempts === 1 ? '' : 's'}`;
    if (ctx.signal.aborted) throw new InterruptedError(`waiting for ${where}`);
    if (performance.now() > deadline) {
      throw new ActionError(
        `${where} ${down ? 'still accepts connections' : 'did not accept connections'} after ${action.timeoutSeconds} s (${action.purpose})`,
      );
    }
    await sleep(250, ctx.signal);
  }
}

async function waitHttp(action: Extract<PlannedAction, { type: 'wait-http' }>, ctx: ActionContext): Promise<string> {
  const deadline = performance.now() + action.timeoutSeconds * 1000;
  const url = ctx.redact(action.url);
  const down = action.until === 'down';
  let last = 'no answer';
  let attempts = 0;
  for (;;) {
    attempts++;
    let answered = false;
    try {
      const res = await fetch(action.url, { signal: AbortSignal.any([ctx.signal, AbortSignal.timeout(2000)]) });
      await res.body?.cancel();
      answered = true;
      const ok = action.expectStatus === undefined ? res.status >= 200 && res.status < 300 : res.status === action.expectStatus;
      if (ok && !down) return `${url} answered ${res.status} after ${attempts} attempt${attempts === 1 ? '' : 's'}`;
      last = `status ${res.status}`;
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause;
      last = cause?.code ?? (error as Error).message;
    }
    if (down && !answered) return `${url} no longer answers (${last}) after ${attempts} attempt${attempts === 1 ? '' : 's'}`;
    if (ctx.signal.aborted) throw new InterruptedError(`waiting for ${url}`);
    if (performance.now() > deadline) {
      throw new ActionError(
        down
          ? `${url} still answers after ${action.timeoutSeconds} s (${action.purpose})`
          : `${url} did not answer ${action.expectStatus ?? '2xx'} within ${action.timeoutSeconds} s (last: ${ctx.redact(last)})`,
      );
    }
    await sleep(250, ctx.signal);
  }
}

async function waitCommand(action: Extract<PlannedAction, { type: 'wait-command' }>, ctx: ActionContext): Promise<string> {
  const { env, redact } = secretEnv(action.command, ctx);
  const deadline = performance.now() + action.timeoutSeconds * 1000;
  const emit = forward(ctx, action.command.runsIn, undefined, true);
  let attempts = 0;
  let last: RunResult | undefined;
  for (;;) {
    attempts++;
    // Record the first attempt and the deciding one, not every poll in between.
    const buffered: CommandEvent[] = [];
    const result = await run(action.command.argv, {
      env,
      signal: ctx.signal,
      redact,
      timeoutMs: (action.command.timeoutSeconds ?? 10) * 1000,
      okExitCodes: [0],
      onEvent: attempts === 1 ? emit : (e) => buffered.push(e),
    });
    last = result;
    const done = action.untilExit === 'zero' ? result.exitCode === 0 : result.exitCode !== null && result.exitCode !== 0;
    const timeUp = performance.now() > deadline;
    if (attempts > 1 && (done || timeUp || ctx.signal.aborted)) for (const e of buffered) emit(e);
    if (done) return `${attempts} attempt${attempts === 1 ? '' : 's'}`;
    if (ctx.signal.aborted) throw new InterruptedError(`waiting for \`${redact(action.command.argv.join(' '))}\``);
    if (timeUp) {
      throw new ActionError(
        `still not done after ${action.timeoutSeconds} s: ${action.purpose} (last: ${failure(last, redact).replace(/ exited with code 0$/, ' exited 0')})`,
        last,
      );
    }
    await sleep(500, ctx.signal);
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await lstat(p);
    return true;
  } catch {
    return false;
  }
}

/** Record the identity of what is at `p` as run fact `fact` (journaled: a recover knows it too). */
async function recordPath(ctx: ActionContext, p: string, fact: string): Promise<void> {
  const id = await pathIdentity(p);
  if (!id) return;
  const value = encodeIdentity(id);
  ctx.facts?.set(fact, value);
  ctx.emit({
    type: 'log',
    stepId: ctx.stepId,
    level: 'info',
    message: `recorded ${p}: ${describeIdentity(id)}`,
    fact: { name: fact, value },
  });
}

/**
 * Record, before the act that puts it there, the identity `staged` will have at `final` (a
 * rename or link keeps device and inode): a SIGKILL between the act and a record made after it
 * would leave the run's own file unrecognised, and its undo would refuse to remove it. Killed
 * before the act, nothing is at `final` and the undo is a no-op.
 */
async function recordBeforePlacing(ctx: ActionContext, staged: string, final: string, fact: string): Promise<void> {
  const id = await pathIdentity(staged);
  if (!id) return;
  const parent = await realpath(path.dirname(final)).catch(() => path.dirname(final));
  const value = encodeIdentity({ ...id, realPath: path.join(parent, path.basename(final)) });
  ctx.facts?.set(fact, value);
  ctx.emit({
    type: 'log',
    stepId: ctx.stepId,
    level: 'info',
    message: `recorded ${final} (before putting it there): ${describeIdentity(decodeIdentity(value)!)}`,
    fact: { name: fact, value },
  });
}

/** rmdir a run temp dir (emptied by the caller); once it is gone, the journal says so. Left: recover removes it. */
async function removeTempDir(ctx: ActionContext, dir: string): Promise<void> {
  await rmdir(dir).then(
    () => forgetRunTempDir(ctx.emit, ctx.stepId, dir),
    () => undefined,
  );
}

function recorded(ctx: ActionContext, fact: string): ReturnType<typeof decodeIdentity> {
  return decodeIdentity(ctx.facts?.get(fact));
}

async function moveAction(action: Extract<PlannedAction, { type: 'move' }>, ctx: ActionContext): Promise<string> {
  if (action.expect || action.doneIf) {
    // Undo by identity: move back only what this run put there.
    const found = await pathIdentity(action.from);
    if (found) {
      const done = (action.doneIf ?? []).find((f) => {
        const r = recorded(ctx, f);
        return r !== undefined && sameObject(r, found);
      });
      if (done) {
        ctx.emit({
          type: 'log',
          stepId: ctx.stepId,
          level: 'info',
          message: `${action.from} already holds what this run recorded as ${done}: nothing to move (done before)`,
        });
        return `${action.from} already back`;
      }
      const wrong = action.expect ? identityMismatch(action.from, recorded(ctx, action.expect), found) : undefined;
      if (wrong) throw new ActionError(`refusing to move ${action.from} to ${action.to}: ${wrong}. Nothing was moved.`);
    }
  }
  if (!(await exists(action.from))) {
    if (action.ifExists) {
      ctx.emit({ type: 'log', stepId: ctx.stepId, level: 'info', message: `${action.from} does not exist: nothing to move` });
      return `${action.from} absent`;
    }
    throw new ActionError(`cannot move ${action.from}: it does not exist`);
  }
  if (await exists(action.to)) {
    if (!action.displaceTo)
      throw new ActionError(`cannot move ${action.from} to ${action.to}: ${action.to} already exists (refusing to overwrite it)`);
    if (await exists(action.displaceTo))
      throw new ActionError(
        `cannot move ${action.to} out of the way to ${action.displaceTo}: that already exists (refusing to overwrite it)`,
      );
    try {
      await rename(action.to, action.displaceTo);
    } catch (error) {
      throw new ActionError(`cannot move ${action.to} out of the way to ${action.displaceTo}: ${(error as Error).message}`);
    }
    ctx.emit({
      type: 'log',
      stepId: ctx.stepId,
      level: 'warn',
      message: `${action.to} existed (created after the safety copy): moved it to ${action.displaceTo} (kept)`,
    });
  }
  if (action.recordAs) await recordBeforePlacing(ctx, action.from, action.to, action.recordAs);
  try {
    await rename(action.from, action.to);
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    const hint = e.code === 'EXDEV' ? ' (different file systems: a safety copy must stay on the same file system)' : '';
    throw new ActionError(`cannot move ${action.from} to ${action.to}: ${e.message}${hint}`);
  }
  ctx.emit({ type: 'log', stepId: ctx.stepId, level: 'info', message: `moved ${action.from} to ${action.to}` });
  return `moved to ${action.to}`;
}

/**
 * Copy a verified backup file into place. The target's directory may be writable by the service's
 * account (Debian's `redis` owns /var/lib/redis), so: the partial copy is created with
 * O_CREAT|O_EXCL|O_NOFOLLOW inside a temp dir this run created (mode 0700) in the nearest ancestor
 * only root can write (stagingParent: the account cannot swap the temp dir for a symlink), the bytes are hashed
 * while they are copied from the one descriptor that passed the identity check, and the copy is put
 * in place with link(2), which never follows or replaces anything already at the name.
 */
async function copyAction(action: Extract<PlannedAction, { type: 'copy-file' }>, ctx: ActionContext): Promise<string> {
  if (await exists(action.to)) throw new ActionError(`cannot copy to ${action.to}: it already exists (refusing to overwrite it)`);
  const { fh: src, mode, verified } = await openVerified(action.from, ctx);
  let tmpDir: string | undefined;
  let partial: string | undefined;
  let sha256: string;
  let bytes = 0;
  try {
    tmpDir = await makeRunTempDir(ctx.emit, ctx.stepId, (await stagingParent(action.to)).dir, `.${path.basename(action.to)}.restore-`);
    partial = path.join(tmpDir, path.basename(action.to));
    const out = await createExclusive(partial, 0o600);
    const hash = createHash('sha256');
    try {
      for await (const raw of src.createReadStream({ highWaterMark: 1024 * 1024, autoClose: false })) {
        const chunk = raw as Buffer;
        hash.update(chunk);
        bytes += chunk.length;
        for (let off = 0; off < chunk.length;) off += (await out.write(chunk, off)).bytesWritten;
        ctx.signal.throwIfAborted();
      }
      // cp semantics: the source's permission bits without group/other write.
      await out.chmod(mode & 0o755);
      await out.sync();
    } finally {
      await out.close();
    }
    sha256 = hash.digest('hex');
    consumedOutcome(ctx, action.from, sha256, bytes, verified);
    if (action.recordAs) await recordBeforePlacing(ctx, partial, action.to, action.recordAs);
    try {
      await link(partial, action.to);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST')
        throw new Error(`${action.to} appeared while copying (refusing to overwrite it)`);
      throw error;
    }
  } catch (error) {
    if (error instanceof ActionError) throw error;
    if (ctx.signal.aborted) throw new InterruptedError(`copying ${action.from}`);
    throw new ActionError(`cannot copy ${action.from} to ${action.to}: ${(error as Error).message}`);
  } finally {
    await src.close().catch(() => undefined);
    if (partial) await unlink(partial).catch(() => undefined);
    if (tmpDir) await removeTempDir(ctx, tmpDir);
  }
  ctx.emit({ type: 'log', stepId: ctx.stepId, level: 'info', message: `copied ${action.from} to ${action.to} (${bytes} bytes)` });
  return `copied ${bytes} bytes`;
}

/** Copy an opened, verified source into a new file (O_EXCL|O_NOFOLLOW), hashing it; fsynced. */
async function copyInto(src: FileHandle, mode: number, to: string, ctx: ActionContext): Promise<{ sha256: string; bytes: number }> {
  const out = await createExclusive(to, 0o600);
  const hash = createHash('sha256');
  let bytes = 0;
  try {
    for await (const raw of src.createReadStream({ highWaterMark: 1024 * 1024, autoClose: false, start: 0 })) {
      const chunk = raw as Buffer;
      hash.update(chunk);
      bytes += chunk.length;
      for (let off = 0; off < chunk.length;) off += (await out.write(chunk, off)).bytesWritten;
      ctx.signal.throwIfAborted();
    }
    await out.chmod(mode & 0o755);
    await out.sync();
  } finally {
    await out.close();
  }
  return { sha256: hash.digest('hex'), bytes };
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Install a Redis 7 AOF directory (issue 11): `<dir>/<base>` (the verified backup RDB) and
 * `<dir>/<manifest>` naming it as the base. The data dir is writable by the redis account, so
 * nothing is created by path inside it: the directory is built in a private 0700 temp dir in the
 * nearest root-only ancestor (stagingParent, same file system), every file created with
 * O_CREAT|O_EXCL|O_NOFOLLOW and fsynced, and the finished directory renamed into place as a unit
 * (rename(2) fails on anything but an empty directory at the name and never follows a symlink).
 */
async function installAofAction(action: Extract<PlannedAction, { type: 'install-aof' }>, ctx: ActionContext): Promise<string> {
  for (const n of [action.base, action.manifest]) {
    if (!/^[A-Za-z0-9._-]+$/.test(n) || n === '.' || n === '..')
      throw new ActionError(`refusing AOF file name ${JSON.stringify(n)}: not a plain file name`);
  }
  if (await exists(action.dir))
    throw new ActionError(`cannot install the AOF directory ${action.dir}: it already exists (refusing to overwrite it)`);
  const { fh: src, mode, verified } = await openVerified(action.from, ctx);
  let tmpDir: string | undefined;
  let staged: string | undefined;
  let bytes = 0;
  try {
    tmpDir = await makeRunTempDir(ctx.emit, ctx.stepId, (await stagingParent(action.dir)).dir, `.${path.basename(action.dir)}.restore-`);
    staged = path.join(tmpDir, path.basename(action.dir));
    await mkdir(staged, { mode: 0o700 });
    const copied = await copyInto(src, mode, path.join(staged, action.base), ctx);
    bytes = copied.bytes;
    consumedOutcome(ctx, action.from, copied.sha256, copied.bytes, verified);
    const mf = await createExclusive(path.join(staged, action.manifest), 0o644);
    try {
      await mf.writeFile(`file ${action.base} seq 1 type b\n`);
      await mf.sync();
    } finally {
      await mf.close();
    }
    await chmod(staged, 0o755);
    await fsyncDir(staged);
    if (action.recordAs) await recordBeforePlacing(ctx, staged, action.dir, action.recordAs);
    try {
      await rename(staged, action.dir);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOTEMPTY' || code === 'EEXIST' || code === 'ENOTDIR' || code === 'EISDIR')
        throw new Error(`${action.dir} appeared while the AOF was built (refusing to overwrite it)`);
      throw error;
    }
    staged = undefined;
    await fsyncDir(path.dirname(action.dir)).catch(() => undefined);
  } catch (error) {
    if (error instanceof ActionError) throw error;
    if (ctx.signal.aborted) throw new InterruptedError(`installing the AOF from ${action.from}`);
    throw new ActionError(`cannot install ${action.from} as the AOF base in ${action.dir}: ${(error as Error).message}`);
  } finally {
    await src.close().catch(() => undefined);
    if (staged) await rm(staged, { recursive: true, force: true }).catch(() => undefined);
    if (tmpDir) await removeTempDir(ctx, tmpDir);
  }
  ctx.emit({
    type: 'log',
    stepId: ctx.stepId,
    level: 'info',
    message: `installed ${action.from} as ${path.join(action.dir, action.base)} (${bytes} bytes) with the manifest ${action.manifest}`,
  });
  return `AOF base installed (${bytes} bytes)`;
}

async function extractAction(action: Extract<PlannedAction, { type: 'extract-tar' }>, ctx: ActionContext): Promise<string> {
  const { fh, verified } = await openVerified(action.archive, ctx);
  try {
    const { entries, sha256, bytes } = await safeExtractTarGz(action.archive, fh, action.dest, {
      signal: ctx.signal,
      ...(verified?.verifiedSha256 ? { expectedSha256: verified.verifiedSha256 } : {}),
      ...(action.recordAs ? { beforePlace: (staged: string) => recordBeforePlacing(ctx, staged, action.dest, action.recordAs!) } : {}),
      tempDirs: {
        make: (parent, prefix) => makeRunTempDir(ctx.emit, ctx.stepId, parent, prefix),
        gone: (dir) => forgetRunTempDir(ctx.emit, ctx.stepId, dir),
      },
    });
    consumedOutcome(ctx, action.archive, sha256, bytes, verified);
    ctx.emit({
      type: 'log',
      stepId: ctx.stepId,
      level: 'info',
      message: `extracted ${entries} entries of ${action.archive} into ${action.dest}`,
    });
    return `${entries} entries extracted`;
  } catch (error) {
    if (ctx.signal.aborted) throw new InterruptedError(`extracting ${action.archive}`);
    if (error instanceof ArchiveChangedError) {
      consumedOutcome(ctx, action.archive, error.consumedSha256, error.bytes, verified);
    }
    throw new ActionError(`extracting ${action.archive} into ${action.dest} failed: ${(error as Error).message}`);
  } finally {
    await fh.close().catch(() => undefined);
  }
}

async function removeAction(action: Extract<PlannedAction, { type: 'remove' }>, ctx: ActionContext): Promise<string> {
  const done: string[] = [];
  for (const { path: p, expect, doneIf } of action.paths) {
    let how: 'absent' | 'removed';
    const there = doneIf?.length ? await pathIdentity(p) : undefined;
    const back =
      there &&
      doneIf?.find((f) => {
        const r = recorded(ctx, f);
        return r !== undefined && sameObject(r, there);
      });
    if (back) {
      ctx.emit({
        type: 'log',
        stepId: ctx.stepId,
        level: 'info',
        message: `${p} holds what this run recorded as ${back} (put back): not removing it`,
      });
      continue;
    }
    try {
      how = await removeIfOwn(p, recorded(ctx, expect));
    } catch (error) {
      throw new ActionError(`${(error as Error).message}${done.length > 0 ? ` (removed before it: ${done.join(', ')})` : ''}`);
    }
    ctx.emit({
      type: 'log',
      stepId: ctx.stepId,
      level: 'info',
      message: how === 'absent' ? `${p} is not there: nothing to remove` : `removed ${p} (what this run put there)`,
    });
    if (how === 'removed') done.push(p);
  }
  return done.length > 0 ? `removed ${done.join(', ')}` : 'nothing to remove';
}

async function recordIdentityAction(action: Extract<PlannedAction, { type: 'record-identity' }>, ctx: ActionContext): Promise<string> {
  for (const { path: p, recordAs } of action.paths) {
    if (action.rewrittenOnly) {
      const was = recorded(ctx, recordAs);
      const now = await pathIdentity(p);
      if (!was || was.type !== 'file' || !now || now.type !== 'file' || sameObject(was, now)) continue;
      ctx.emit({
        type: 'log',
        stepId: ctx.stepId,
        level: 'info',
        message: `${p} was rewritten while the service this run started ran (${describeIdentity(was)} -> ${describeIdentity(now)})`,
      });
    }
    await recordPath(ctx, p, recordAs);
  }
  return '';
}

async function checkAction(action: Extract<PlannedAction, { type: 'check' }>, ctx: ActionContext): Promise<string> {
  const result = await ctx.runCheck(action.check, {
    ...ctx.checkContext,
    env: ctx.env,
    redact: ctx.redact,
    signal: ctx.signal,
    onEvent: forward(ctx, undefined),
  });
  const detail = ctx.redact(result.detail);
  ctx.emit({
    type: 'health-check',
    name: action.check.name,
    ok: result.ok,
    attempts: result.attempts,
    durationMs: result.durationMs,
    detail,
  });
  if (ctx.signal.aborted && !result.ok) throw new InterruptedError(`checking "${action.check.name}"`);
  if (!result.ok) throw new CheckFailedError(action.check.name, { ...result, detail });
  return detail;
}

/** Perform one planned action. Resolves with a short detail; throws ActionError / CheckFailedError / InterruptedError. */
export async function executeAction(action: PlannedAction, ctx: ActionContext): Promise<string> {
  if (ctx.signal.aborted) throw new InterruptedError(`starting: ${action.type === 'exec' ? action.purpose : action.purpose}`);
  switch (action.type) {
    case 'exec':
      return execAction(action, ctx);
    case 'wait-tcp':
      return waitTcp(action, ctx);
    case 'wait-http':
      return waitHttp(action, ctx);
    case 'wait-command':
      return waitCommand(action, ctx);
    case 'extract-tar':
      return extractAction(action, ctx);
    case 'move':
      return moveAction(action, ctx);
    case 'copy-file':
      return copyAction(action, ctx);
    case 'install-aof':
      return installAofAction(action, ctx);
    case 'remove':
      return removeAction(action, ctx);
    case 'record-identity':
      return recordIdentityAction(action, ctx);
    case 'write-file':
      return writeFileAction(action, ctx);
    case 'follow-recovery':
      return followRecoveryAction(action, { ...ctx, ...secretEnv(action.command, ctx) });
    case 'check':
      return checkAction(action, ctx);
    case 'note':
      ctx.emit({ type: 'log', stepId: ctx.stepId, level: 'info', message: ctx.redact(action.purpose) });
      return '';
  }
}
