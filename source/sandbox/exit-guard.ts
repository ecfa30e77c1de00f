import { rm } from 'node:fs/promises';
import { rmSync } from 'node:fs';
import { isPidAlive, signalGroup, signalPid, sleepSync } from './process-utils.js';

/**
 * Process 'exit' safety net: whatever a sandbox started and did not dispose of is killed
 * synchronously when this Node process exits (a failing test, an uncaught error, process.exit()).
 * A SIGKILL of this process cannot be caught: that is what `SandboxGroup.stopAll()` in afterAll is for.
 *
 * Set RESTORE_ASSISTANT_SANDBOX_KEEP=1 to keep temp dirs (for post-mortem); processes are still killed.
 */

export interface ExitGuardEntry {
  /** What it is, for the stderr note. */
  label: string;
  /** Returns the pids to kill right now (read lazily: a service may have been restarted). */
  pids: () => number[];
  /** Signal first sent (default SIGKILL to the process group). */
  signal?: NodeJS.Signals;
  /** Send `signal` to the pid only (e.g. postmaster: SIGQUIT makes it kill its own children). */
  pidOnly?: boolean;
  /** Directories to remove after the processes are gone. */
  dirs: string[];
  /** Runs after the processes are gone, before the dirs are removed (e.g. unmounts); a throw keeps the dirs. */
  beforeRemove?: () => void;
}

const entries = new Set<ExitGuardEntry>();
let installed = false;

/**
 * Let everything started so far outlive this process (`drill --keep`, `demo --keep`): the exit
 * safety net forgets it, so its processes keep running and its files stay.
 */
export function releaseFromExitGuard(): void {
  entries.clear();
}

export function keepSandboxFiles(): boolean {
  const value = process.env['RESTORE_ASSISTANT_SANDBOX_KEEP'];
  return value !== undefined && value !== '' && value !== '0' && value !== 'false';
}

function runExitGuard(): void {
  const all = [...entries];
  entries.clear();
  const pending: number[] = [];
  for (const entry of all) {
    let pids: number[] = [];
    try {
      pids = entry.pids().filter(isPidAlive);
    } catch {
      pids = [];
    }
    for (const pid of pids) {
      try {
        if (entry.pidOnly) signalPid(pid, entry.signal ?? 'SIGKILL');
        else signalGroup(pid, entry.signal ?? 'SIGKILL');
        pending.push(pid);
      } catch {
        // best effort
      }
    }
  }
  // Give them up to ~3 s to disappear, then SIGKILL whatever is left.
  const deadline = Date.now() + 3000;
  while (pending.some(isPidAlive) && Date.now() < deadline) sleepSync(20);
  for (const pid of pending.filter(isPidAlive)) {
    try {
      signalGroup(pid, 'SIGKILL');
    } catch {
      // best effort
    }
  }
  const keep = keepSandboxFiles();
  for (const entry of all) {
    try {
      entry.beforeRemove?.();
    } catch (error) {
      process.stderr.write(`sandbox: kept ${entry.label} files in ${entry.dirs.join(', ')}: ${(error as Error).message}\n`);
      continue;
    }
    for (const dir of entry.dirs) {
      if (keep) {
        process.stderr.write(`sandbox: kept ${entry.label} files in ${dir}\n`);
        continue;
      }
      try {
        rmSync(dir, { recursive: true, force: true, maxRetries: 3, retryDelay: 50 });
      } catch {
        // best effort
      }
    }
  }
}

const FATAL_SIGNALS: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];

/** Signals an owner (the restore session, source/session/signals.ts) has taken over, with how many owners hold each. */
const owned = new Map<NodeJS.Signals, number>();

/**
 * Hand these signals to their owner: while it holds them, the guard does not act on them (the
 * owner's first signal stops the engine, which still needs its scratch services; they are removed
 * once it has finished). The 'exit' net and the other signals stay the guard's. Returns the release.
 */
export function deferSignalsToOwner(signals: readonly NodeJS.Signals[]): () => void {
  for (const s of signals) owned.set(s, (owned.get(s) ?? 0) + 1);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    for (const s of signals) {
      const n = (owned.get(s) ?? 1) - 1;
      if (n > 0) owned.set(s, n);
      else owned.delete(s);
    }
  };
}

/**
 * Test runners end workers with SIGTERM (vitest's forks pool does), which skips 'exit' handlers.
 * So the guard also runs on these signals; if it is the only listener it then re-raises the signal
 * so the default behaviour (terminate) is unchanged, otherwise the other listeners decide. A signal
 * an owner holds (deferSignalsToOwner) is left to that owner.
 */
function onFatalSignal(signal: NodeJS.Signals): void {
  if ((owned.get(signal) ?? 0) > 0) return;
  runExitGuard();
  if (process.listenerCount(signal) === 1) {
    process.removeListener(signal, onFatalSignal);
    process.kill(process.pid, signal);
  }
}

/** Registers an entry; returns the function that unregisters it (call it once disposed of). */
export function guardOnExit(entry: ExitGuardEntry): () => void {
  if (!installed) {
    installed = true;
    process.on('exit', runExitGuard);
    for (const signal of FATAL_SIGNALS) process.on(signal, onFatalSignal);
  }
  entries.add(entry);
  return () => {
    entries.delete(entry);
  };
}

/**
 * The lifecycle every service-ctl-managed sandbox shares: `dispose()` stops it once, removes its
 * files (unless kept) and drops it from the exit guard; `startOrClean()` starts it, and on failure
 * stops whatever started, removes the files and rethrows.
 */
export function serviceSandboxLifecycle(s: {
  rootDir: string;
  start: () => Promise<void>;
  stop: () => Promise<void>;
  forceStop: () => Promise<unknown>;
  unguard: () => void;
}): {
  dispose: () => Promise<void>;
  startOrClean: () => Promise<void>;
} {
  let disposed: Promise<void> | undefined;
  return {
    dispose: () => {
      disposed ??= (async () => {
        await s.stop();
        if (!keepSandboxFiles()) await rm(s.rootDir, { recursive: true, force: true, maxRetries: 3 });
        s.unguard();
      })();
      return disposed;
    },
    startOrClean: async () => {
      try {
        await s.start();
      } catch (error) {
        await s.forceStop().catch(() => undefined);
        if (!keepSandboxFiles()) await rm(s.rootDir, { recursive: true, force: true });
        s.unguard();
        throw error;
      }
    },
  };
}
