import { execa } from 'execa';
import { once } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { performance } from 'node:perf_hooks';
import { createRedactor, type Redactor } from './redact.js';

/** What the runner reports about each command, for the engine's event stream. */
export type CommandEvent =
  | { type: 'command-started'; commandId: string; argv: string[]; cwd?: string }
  | { type: 'command-output'; commandId: string; stream: 'stdout' | 'stderr'; line: string }
  | {
      type: 'command-finished';
      commandId: string;
      argv: string[];
      exitCode: number | null;
      signal: string | null;
      durationMs: number;
      timedOut: boolean;
      stdoutTail: string[];
      stderrTail: string[];
      /** The exit status is one the caller accepts (okExitCodes; default 0), not a failure. */
      ok: boolean;
    };

export interface RunOptions {
  cwd?: string;
  /** Extra environment variables (merged over process.env). Values never appear in events. */
  env?: Record<string, string | undefined>;
  /** Data for stdin: a string, or a stream piped in (backpressure respected). */
  input?: string | Readable;
  /**
   * Where stdout goes instead of being captured (e.g. a file stream). With `stdout: 'buffer'` it
   * gets the bytes as they are, a write error fails the run (the process is stopped), and the run
   * returns once `stdoutTo` has finished; otherwise it gets UTF-8 text (invalid bytes replaced).
   */
  stdoutTo?: Writable;
  /**
   * 'buffer': stdout is bytes (binary output: a decrypted file, an RDB, a dump), never decoded as
   * UTF-8: captured in `stdoutBytes` (capped at maxStdoutBytes) or passed to `stdoutTo` unchanged.
   * Default 'text' (UTF-8 decoded, as before). Binary stdout emits no command-output lines; its tail
   * (decoded, for errors) is kept.
   */
  stdout?: 'text' | 'buffer';
  timeoutMs?: number;
  signal?: AbortSignal;
  redact?: Redactor;
  onEvent?: (event: CommandEvent) => void;
  /** Exit codes that count as success (default [0]). */
  okExitCodes?: number[];
  /** Keep at most this many bytes of stdout in the result (default 8 MiB). */
  maxStdoutBytes?: number;
  /** Lines of each stream kept as a tail for events and errors (default 20). */
  tailLines?: number;
  /** Emit command-output events per line (default true). */
  streamLines?: boolean;
}

export interface RunResult {
  argv: string[];
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  /** With `stdout: 'buffer'` (and no stdoutTo): stdout's bytes, unchanged (capped at maxStdoutBytes). */
  stdoutBytes?: Buffer;
  stderr: string;
  stdoutTail: string[];
  stderrTail: string[];
  durationMs: number;
  timedOut: boolean;
  ok: boolean;
}

/** A process that failed: carries the (redacted) command, exit code, signal and output tails. */
export class ExternalError extends Error {
  readonly argv: string[];
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly stderrTail: string[];
  readonly stdoutTail: string[];
  readonly timedOut: boolean;

  constructor(result: RunResult, redact: Redactor) {
    const cmd = result.argv.map((a) => redact(a)).join(' ');
    const how = result.timedOut
      ? 'timed out'
      : result.signal
        ? `was killed by ${result.signal}`
        : result.exitCode === null
          ? 'could not be started'
          : `exited with code ${result.exitCode}`;
    const tail = result.stderrTail.length > 0 ? result.stderrTail : result.stdoutTail;
    super(`\`${cmd}\` ${how}${tail.length > 0 ? `: ${tail.slice(-3).join(' | ')}` : ''}`);
    this.name = 'ExternalError';
    this.argv = result.argv.map((a) => redact(a));
    this.exitCode = result.exitCode;
    this.signal = result.signal;
    this.stderrTail = result.stderrTail;
    this.stdoutTail = result.stdoutTail;
    this.timedOut = result.timedOut;
  }
}

let commandCounter = 0;

class LineTail {
  readonly lines: string[] = [];
  private partial = '';
  constructor(
    private readonly max: number,
    private readonly onLine: ((line: string) => void) | undefined,
  ) {}
  push(chunk: string): void {
    const parts = (this.partial + chunk).split(/\r?\n/);
    this.partial = parts.pop() ?? '';
    for (const line of parts) this.add(line);
  }
  end(): void {
    if (this.partial !== '') this.add(this.partial);
    this.partial = '';
  }
  private add(line: string): void {
    const clipped = line.length > 2000 ? `${line.slice(0, 2000)}…` : line;
    this.lines.push(clipped);
    if (this.lines.length > this.max) this.lines.shift();
    this.onLine?.(clipped);
  }
}

/**
 * Run one process. argv only: nothing is ever interpreted by a shell. Never throws for a
 * non-zero exit (see `ok`); use runChecked for that. Output is redacted before it leaves.
 */
export async function run(argv: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const [file, ...args] = argv;
  if (!file) throw new Error('run: empty argv');
  const redact = options.redact ?? createRedactor();
  const commandId = `c${++commandCounter}`;
  const emit = options.onEvent;
  const redactedArgv = argv.map((a) => redact(a));
  emit?.({ type: 'command-started', commandId, argv: redactedArgv, ...(options.cwd ? { cwd: options.cwd } : {}) });
  const tailLines = options.tailLines ?? 20;
  const streamLines = options.streamLines ?? true;
  const outTail = new LineTail(
    tailLines,
    // Binary stdout is not streamed as lines (they would be noise); its tail is kept for errors.
    streamLines && emit && options.stdout !== 'buffer'
      ? (line) => emit({ type: 'command-output', commandId, stream: 'stdout', line: redact(line) })
      : undefined,
  );
  const errTail = new LineTail(
    tailLines,
    streamLines && emit ? (line) => emit({ type: 'command-output', commandId, stream: 'stderr', line: redact(line) }) : undefined,
  );
  const maxStdout = options.maxStdoutBytes ?? 8 * 1024 * 1024;
  const binary = options.stdout === 'buffer';
  let stdout = '';
  const stdoutChunks: Buffer[] = [];
  let stdoutBytes = 0;
  let stderr = '';
  const started = performance.now();

  const child = execa(file, args, {
    cwd: options.cwd,
    env: options.env,
    extendEnv: true,
    stdin: options.input === undefined ? 'ignore' : 'pipe',
    stdout: 'pipe',
    stderr: 'pipe',
    buffer: false,
    reject: false,
    ...(options.timeoutMs ? { timeout: options.timeoutMs } : {}),
    ...(options.signal ? { cancelSignal: options.signal } : {}),
    forceKillAfterDelay: 5000,
    windowsHide: true,
  });

  let outputError: unknown;
  let outputDone: Promise<unknown> | undefined;
  if (binary) {
    // Bytes stay bytes; only the tail lines (for events and errors) are decoded, without splitting a character.
    const decoder = new StringDecoder('utf8');
    const sink = options.stdoutTo;
    if (sink) {
      sink.on('error', (e) => {
        outputError ??= e;
        child.kill('SIGTERM');
      });
      outputDone = once(sink, 'finish').catch(() => undefined);
      child.stdout?.pipe(sink);
    }
    child.stdout?.on('data', (chunk: Buffer) => {
      if (!sink && stdoutBytes < maxStdout) {
        const part = chunk.subarray(0, maxStdout - stdoutBytes);
        stdoutChunks.push(part);
        stdoutBytes += part.length;
      }
      outTail.push(decoder.write(chunk));
    });
    child.stdout?.on('end', () => outTail.push(decoder.end()));
  } else {
    child.stdout?.setEncoding('utf8');
    if (options.stdoutTo) {
      child.stdout?.pipe(options.stdoutTo);
    } else {
      child.stdout?.on('data', (chunk: string) => {
        if (stdout.length < maxStdout) stdout += chunk.slice(0, maxStdout - stdout.length);
        outTail.push(chunk);
      });
    }
  }
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    if (stderr.length < 1024 * 1024) stderr += chunk;
    errTail.push(chunk);
  });

  let inputError: unknown;
  if (options.input !== undefined && child.stdin) {
    const stdin = child.stdin;
    stdin.on('error', (e: NodeJS.ErrnoException) => {
      // EPIPE: the process closed stdin early; its exit code tells the story.
      if (e.code !== 'EPIPE') inputError = e;
    });
    if (typeof options.input === 'string') {
      stdin.end(options.input);
    } else {
      const source = options.input;
      source.on('error', (e) => {
        inputError = e;
        // Make sure the child does not wait forever for the rest of a broken stream.
        stdin.destroy();
        child.kill('SIGTERM');
      });
      source.pipe(stdin);
    }
  }

  const result = await child;
  // The process is gone and its stdout ended, which ends stdoutTo (pipe): wait until that is flushed.
  if (outputDone && outputError === undefined) await outputDone;
  const bytesOut = binary && !options.stdoutTo ? Buffer.concat(stdoutChunks) : undefined;
  if (bytesOut) stdout = bytesOut.toString('utf8');
  outTail.end();
  errTail.end();
  const durationMs = Math.round(performance.now() - started);
  const exitCode = typeof result.exitCode === 'number' ? result.exitCode : null;
  const signal = result.signal ?? null;
  const timedOut = Boolean(result.timedOut);
  const okCodes = options.okExitCodes ?? [0];
  if (result.failed && exitCode === null && !signal && !timedOut && result.message) {
    // Could not spawn at all (ENOENT, EACCES).
    errTail.lines.push(redact(String((result as { shortMessage?: string }).shortMessage ?? result.message)));
  }
  const runResult: RunResult = {
    argv: [...argv],
    exitCode,
    signal,
    stdout,
    ...(bytesOut ? { stdoutBytes: bytesOut } : {}),
    stderr,
    stdoutTail: outTail.lines.map((l) => redact(l)),
    stderrTail: errTail.lines.map((l) => redact(l)),
    durationMs,
    timedOut,
    ok: inputError === undefined && outputError === undefined && exitCode !== null && okCodes.includes(exitCode) && !timedOut,
  };
  if (inputError !== undefined) {
    const message = inputError instanceof Error ? inputError.message : String(inputError);
    runResult.stderrTail.push(redact(`input stream failed: ${message}`));
  }
  if (outputError !== undefined) {
    const message = outputError instanceof Error ? outputError.message : String(outputError);
    runResult.stderrTail.push(redact(`writing the output failed: ${message}`));
  }
  emit?.({
    type: 'command-finished',
    commandId,
    argv: redactedArgv,
    exitCode,
    signal,
    durationMs,
    timedOut,
    stdoutTail: runResult.stdoutTail,
    stderrTail: runResult.stderrTail,
    ok: runResult.ok,
  });
  return runResult;
}

/** Run and throw ExternalError unless it succeeded. */
export async function runChecked(argv: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const result = await run(argv, options);
  if (!result.ok) throw new ExternalError(result, options.redact ?? createRedactor());
  return result;
}
