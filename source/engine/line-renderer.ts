import { formatBytes, formatDuration, paint } from '../output.js';
import { sanitizeDeep } from '../text/sanitize.js';
import type { EngineEvent, EventBus } from './events.js';

/**
 * The plain renderer for logs, CI and cron: one line per event, on stderr, with local wall-clock
 * time ("12:03:04 ✔ PostgreSQL restored (41.2 s)"). It only reads the event stream.
 */

export interface LineRendererOptions {
  write: (line: string) => void;
  color?: boolean;
  /** Minimum time between progress lines of one step (default 5 s). */
  progressEveryMs?: number;
  /** The plan's step ids in order: step lines say "[3/12]" and progress lines how long the step has run. */
  steps?: readonly string[];
}

function clock(ts: string): string {
  const d = new Date(ts);
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
}

/** Where an event's step sits in the plan (the plain renderer's "[3/12]"), and how long it has run. */
export interface StepPosition {
  n: number;
  of: number;
  elapsedMs?: number;
}

export function formatEventLine(
  raw: EngineEvent,
  c: (style: 'red' | 'green' | 'yellow' | 'dim' | 'bold' | 'cyan', text: string) => string,
  pos?: StepPosition,
): string | undefined {
  // Titles, names, details and errors carry file names and command output: one line each, with
  // every control character shown escaped (a name cannot forge a line or repaint the terminal).
  const event = sanitizeDeep(raw);
  const at = c('dim', clock(event.ts));
  switch (event.type) {
    case 'step-started':
      return `${at} ${c('cyan', '…')} ${pos ? `[step ${pos.n} of ${pos.of}] ` : ''}${event.title}`;
    case 'step-finished':
      return `${at} ${c('green', '✔')} ${event.title} (${formatDuration(event.durationMs)})${event.detail ? c('dim', `: ${event.detail}`) : ''}`;
    case 'step-failed':
      return `${at} ${c('red', '✖')} ${event.title} failed after ${formatDuration(event.durationMs)}: ${event.error}`;
    case 'step-skipped':
      return `${at} ${c('dim', '↓')} ${event.title} skipped (${event.reason})`;
    case 'command-started':
      return `${at}   ${c('dim', `$ ${event.argv.join(' ')}${event.runsIn && event.runsIn !== 'host' ? `   [${event.runsIn}]` : ''}`)}`;
    case 'command-finished': {
      // An expected status (a wait's poll of a stopped service exiting 3) is not a failure; older
      // evidence has no `ok`: a non-zero exit is then reported as before.
      if (event.ok ?? (event.exitCode === 0 && !event.timedOut)) return undefined;
      const how = event.timedOut
        ? 'timed out'
        : event.signal
          ? `killed by ${event.signal}`
          : event.exitCode === null
            ? 'could not start'
            : `exit ${event.exitCode}`;
      const tail = (event.stderrTail.length > 0 ? event.stderrTail : event.stdoutTail).slice(-3);
      return `${at}   ${c('yellow', how)} after ${formatDuration(event.durationMs)}${tail.length ? `: ${tail.join(' | ')}` : ''}`;
    }
    case 'progress': {
      const pct = event.total ? ` (${Math.floor((event.done / event.total) * 100)}%)` : '';
      const amount =
        event.unit === 'bytes'
          ? `${formatBytes(event.done)}${event.total ? ` of ${formatBytes(event.total)}` : ''} read`
          : `${event.done}${event.total ? ` of ${event.total}` : ''} items done`;
      const eta = event.etaMs !== undefined && event.etaMs > 0 ? `, about ${formatDuration(event.etaMs)} left` : '';
      const step = pos ? ` [step ${pos.n} of ${pos.of}${pos.elapsedMs !== undefined ? `, ${formatDuration(pos.elapsedMs)} in` : ''}]` : '';
      return `${at}   ${amount}${pct}${eta}${step}`;
    }
    case 'safety-copy':
      return `${at}   ${c('dim', `safety copy: ${event.copy.description}`)}`;
    case 'health-check':
      return event.ok
        ? `${at} ${c('green', '✔')} Health check "${event.name}" passed (${formatDuration(event.durationMs)})`
        : `${at} ${c('red', '✖')} Health check "${event.name}" failed after ${event.attempts} attempt${event.attempts === 1 ? '' : 's'}: ${event.detail}`;
    case 'log':
      return event.level === 'info'
        ? `${at}   ${c('dim', event.message)}`
        : `${at} ${c(event.level === 'error' ? 'red' : 'yellow', event.level === 'error' ? '✖' : '!')} ${event.message}`;
    case 'rollback-started':
      return `${at} ${c('yellow', '↺')} Rolling back: ${event.reason}`;
    case 'rollback-step':
      return event.ok
        ? `${at} ${c('green', '✔')} ${event.title}`
        : `${at} ${c('red', '✖')} ${event.title} failed: ${event.error ?? 'unknown error'}`;
    case 'rollback-finished':
      return event.complete
        ? `${at} ${c('green', '✔')} Rollback finished`
        : `${at} ${c('red', '✖')} Rollback incomplete: ${event.manualSteps.length} step${event.manualSteps.length === 1 ? '' : 's'} left to do by hand`;
    default:
      return undefined;
  }
}

/** Subscribe a line renderer to the bus; returns the unsubscribe function. */
export function attachLineRenderer(bus: EventBus, opts: LineRendererOptions): () => void {
  const c = paint(opts.color ?? false);
  const every = opts.progressEveryMs ?? 5000;
  const lastProgress = new Map<string, number>();
  const order = new Map((opts.steps ?? []).map((id, i) => [id, i + 1]));
  const startedAt = new Map<string, number>();
  const position = (event: EngineEvent): StepPosition | undefined => {
    if (!('stepId' in event) || typeof event.stepId !== 'string') return undefined;
    if (event.type === 'step-started') startedAt.set(event.stepId, event.t);
    const n = order.get(event.stepId);
    const since = startedAt.get(event.stepId);
    return n === undefined ? undefined : { n, of: order.size, ...(since !== undefined ? { elapsedMs: event.t - since } : {}) };
  };
  return bus.on((event) => {
    if (event.type === 'command-output') return;
    if (event.type === 'progress') {
      const last = lastProgress.get(event.stepId);
      const final = event.total !== undefined && event.done >= event.total;
      if (last !== undefined && event.t - last < every && !final) return;
      lastProgress.set(event.stepId, event.t);
    }
    const line = formatEventLine(event, c, position(event));
    if (line !== undefined) opts.write(line);
  });
}
