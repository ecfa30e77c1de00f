import path from 'node:path';
import { raCommand } from '../text/next.js';
import { recipeRedactor } from '../recipe/secrets.js';
import { defaultLockDir, findStaleLocks, staleLocksInDir, takeOverLocks, type StaleLock } from '../engine/lock.js';
import { EventBus } from '../engine/events.js';
import { runPlan, type RunSummary } from '../engine/run.js';
import { leftoverRunTempDirs, removeRunTempDirs } from '../engine/run-temp.js';
import { UsageError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { attachRecipeEvidence, currentOperator, newRunId, prepareRecipeEvidence, type EvidenceHandle } from '../evidence/writer.js';
import { formatUnfinishedBlock, probeTargetsNow } from '../journal/describe.js';
import { appendRecord, attachJournal, JOURNAL_FILE, readIndex, removeIndexEntry, type RecoverMode } from '../journal/journal.js';
import { rollbackUnfinished } from '../journal/rollback.js';
import { attemptRecord, findUnfinishedRuns, finishPlan, ownerAlive } from '../journal/state.js';
import { identityLockKeys } from '../engine/target-identity.js';
import { COMPONENT_KINDS } from '../catalog/types.js';
import { createOutput } from '../output.js';
import { resolveRecipe, type LoadedRecipe } from '../recipe/load.js';
import { evidenceDir } from '../state/paths.js';
import { sanitizeText } from '../text/sanitize.js';
import { formatSummary } from '../session/summary.js';
import { askLine } from '../session/prompt.js';
import { ownCommandSignals, type CommandSignals } from '../session/signals.js';
import { shellJoin } from '../text/shell.js';
import type { Output } from '../output.js';

/**
 * `restore-assistant recover [--recipe R] [--run ID] [--rollback|--finish] [--yes] [--json]`: finds
 * an unfinished restore in the machine-wide journal index (docs/architecture.md, "The restore
 * journal and recovery"), shows what it left (live), and rolls it back to the pre-restore state
 * or finishes it, after the same typed confirmation as restore (or --yes). It takes over the dead
 * run's stale locks. Its outcome is a run of its own (events, report, history), linked to the
 * original run in both journals; a recover that is itself killed is recovered by the next one.
 */

export interface RecoverCommandOptions {
  recipe?: string;
  run?: string;
  rollback?: boolean;
  finish?: boolean;
  yes?: boolean;
  json?: boolean;
}

function confirmWord(loaded: LoadedRecipe): string {
  const r = loaded.recipe;
  return r.confirmWord ?? r.components.postgres?.database ?? r.name;
}

async function ask(question: string, signals: CommandSignals): Promise<string> {
  const answer = await askLine(question, signals);
  // Ctrl-C (or a signal) at the question: cancelled, nothing touched (exit `cancelled`).
  signals.throwIfCancelled('the question');
  return (answer ?? '').trim();
}

export async function recoverCommand(opts: RecoverCommandOptions): Promise<number> {
  const out = createOutput();
  // Signals are owned from the first line (session/signals.ts): before anything is touched one
  // cancels (exit `cancelled`); during the recover see below.
  const signals = ownCommandSignals({
    notify: (line) => out.info(line),
    what: 'the recover',
    again: shellJoin(['restore-assistant', ...process.argv.slice(2)]),
  });
  try {
    return await recoverOwned(opts, out, signals);
  } finally {
    signals.dispose();
  }
}

/**
 * With no unfinished restore: the stale locks of runs that never journaled one (a guide or drill
 * killed while it verified, a process that died between its lock and its first step), which would
 * refuse every later run on those targets. Each owner is provably gone (staleReason) and its run
 * has no unfinished journal, so it touched nothing; each lock is taken over only if it is still the
 * file judged stale (takeOverLocks: dev:ino and content), then released. With --recipe: only its
 * targets' locks; with --run: only that run's.
 */
/** A stale lock recover keeps: its run is still in the journal index, but no unfinished restore of it could be read. */
interface KeptLock {
  lock: StaleLock;
  /** What to tell the operator: why it is kept and what to look at. */
  why: string;
}

/**
 * With no unfinished restore in scope: the stale locks of runs that journaled none are released
 * (identity-checked takeover, then release). A lock is released only when its run has no entry
 * left in the journal index once finished runs are cleaned from it: an entry that remains but
 * does not load as an unfinished restore (its journal unreadable, a symlink, torn before its
 * first record, or a recover attempt of another run) means what that run did is not known, so its
 * locks stay and the operator is told what to look at.
 */
async function releaseUnjournaledLocks(
  env: NodeJS.ProcessEnv,
  loaded: LoadedRecipe | undefined,
  run: string | undefined,
): Promise<{ released: StaleLock[]; kept: KeptLock[] }> {
  const dir = defaultLockDir(env);
  const keys = loaded ? new Set(await identityLockKeys(loaded.recipe, COMPONENT_KINDS, 'restore')) : undefined;
  const candidates = (await staleLocksInDir(dir)).filter(
    (l) => (!keys || keys.has(l.key)) && (!run || l.runId === run) && findUnfinishedRuns(env, { runId: l.runId }).length === 0,
  );
  if (candidates.length === 0) return { released: [], kept: [] };
  // Settles the index: the entries of finished or resolved runs are removed; what is left is unfinished or unreadable.
  findUnfinishedRuns(env);
  const index = readIndex(env);
  const kept: KeptLock[] = [];
  const stale: StaleLock[] = [];
  for (const l of candidates) {
    const entry = index.find((e) => e.runId === l.runId);
    if (!entry) stale.push(l);
    else
      kept.push({
        lock: l,
        why: entry.recovers
          ? `run ${l.runId} was a recover of run ${entry.recovers}, which is not finished: run \`${raCommand('recover', '--run', entry.recovers)}\``
          : `run ${l.runId} began a restore, but its journal ${entry.journal} cannot be read, so what it changed is not known. Look at the journal and the targets; once you are sure the run changed nothing (or you have put it right), remove ${l.file} by hand`,
      });
  }
  if (stale.length === 0) return { released: [], kept };
  const handle = await takeOverLocks(stale, {
    dir,
    runId: newRunId('restore', loaded?.recipe.name ?? 'locks').replace('-restore-', '-recover-'),
    command: 'recover',
    ...(loaded ? { recipe: loaded.file } : {}),
    env,
  });
  await handle.release();
  return { released: stale, kept };
}

async function recoverOwned(opts: RecoverCommandOptions, out: Output, signals: CommandSignals): Promise<number> {
  const env = process.env;
  if (opts.rollback && opts.finish) throw new UsageError('recover takes --rollback or --finish, not both.');
  const interactive = Boolean(process.stdin.isTTY && process.stderr.isTTY);
  let loaded = opts.recipe ? await resolveRecipe(opts.recipe) : undefined;
  const runs = findUnfinishedRuns(env, {
    ...(opts.run ? { runId: opts.run } : {}),
    ...(loaded && !opts.run
      ? { lockKeys: await identityLockKeys(loaded.recipe, COMPONENT_KINDS, 'restore'), recipeName: loaded.recipe.name }
      : {}),
  });
  if (runs.length === 0) {
    const scope = opts.run ? `run ${opts.run}` : loaded ? `the targets of ${loaded.recipe.name}` : 'this host';
    const { released, kept } = await releaseUnjournaledLocks(env, loaded, opts.run);
    const lockJson = (l: StaleLock) => ({ key: l.key, file: l.file, runId: l.runId, pid: l.pid, command: l.command, reason: l.reason });
    if (opts.json)
      out.json({
        unfinished: [],
        releasedLocks: released.map(lockJson),
        keptLocks: kept.map((k) => ({ ...lockJson(k.lock), why: k.why })),
      });
    else {
      for (const l of released)
        out.info(
          sanitizeText(
            `Released the stale lock on ${l.key} (left by ${l.command} run ${l.runId}, pid ${l.pid}: ${l.reason}; that run journaled no restore, so it touched nothing).`,
          ),
        );
      for (const k of kept)
        out.info(
          sanitizeText(
            `Kept the stale lock on ${k.lock.key} (left by ${k.lock.command} run ${k.lock.runId}, pid ${k.lock.pid}): ${k.why}.`,
          ),
        );
      out.result(
        sanitizeText(
          `No unfinished restore on ${scope}: nothing to recover${released.length ? `; ${released.length === 1 ? 'its stale lock is' : `${released.length} stale locks are`} released` : ''}${kept.length ? `; ${kept.length === 1 ? '1 stale lock is' : `${kept.length} stale locks are`} kept (see above): their runs cannot be read` : ''}.`,
        ),
      );
    }
    // A kept lock needs a person: what its run did is not known (exit 5, as a rollback that could not finish).
    if (kept.length > 0) return ExitCode.rollbackIncomplete;
    return ExitCode.ok;
  }
  if (runs.length > 1) {
    const blocks: string[] = [];
    for (const r of runs) {
      const l = loaded ?? (await resolveRecipe(r.begin.recipe.file));
      blocks.push(formatUnfinishedBlock(r, await probeTargetsNow(l, r, env), opts.recipe ?? r.begin.recipe.file));
    }
    out.info(blocks.join('\n\n'));
    throw new UsageError(`${runs.length} unfinished restores: recover one at a time.`, {
      next: `Pass --run with one of: ${runs.map((r) => r.runId).join(', ')}`,
    });
  }
  const u = runs[0]!;
  loaded ??= await resolveRecipe(u.begin.recipe.file);
  const recipeRef = opts.recipe ?? loaded.file;
  const now = await probeTargetsNow(loaded, u, env);
  const tempDirs = (await leftoverRunTempDirs(u.facts)).map((d) => d.path);
  const block = formatUnfinishedBlock(u, now, recipeRef, tempDirs);
  if (loaded.digest !== u.begin.recipe.digest)
    out.info(
      sanitizeText(
        `Warning: the recipe ${loaded.file} changed since run ${u.runId} started; the journal's plan (with its exact undo actions) is what recover runs.`,
      ),
    );

  let mode: RecoverMode | undefined = opts.rollback ? 'rollback' : opts.finish ? 'finish' : undefined;
  if (!mode && opts.json) {
    out.json({
      unfinished: [
        {
          runId: u.runId,
          journal: u.journal,
          startedAt: u.begin.startedAt,
          diedIn: u.diedIn,
          steps: Object.fromEntries(u.steps),
          preIncident: u.preIncident,
          now,
          tempDirs,
          next: `restore-assistant recover --recipe ${recipeRef} --rollback|--finish --yes`,
        },
      ],
    });
    return ExitCode.ok;
  }
  out.info(block);
  if (!mode) {
    if (!interactive) {
      throw new UsageError('recover needs a choice, and there is no terminal to ask on.', {
        next: `Choose: \`${raCommand('recover', '--recipe', recipeRef, '--rollback', '--yes')}\` (put the pre-restore state back) or \`${raCommand('recover', '--recipe', recipeRef, '--finish', '--yes')}\` (run the remaining steps and the health checks).`,
      });
    }
    const answer = await ask(
      'Roll back to the pre-restore state, or finish the restore? Type "rollback" or "finish" (anything else cancels): ',
      signals,
    );
    if (answer !== 'rollback' && answer !== 'finish') {
      out.info('Cancelled. Nothing was touched.');
      return ExitCode.ok;
    }
    mode = answer;
  }
  if (!opts.yes) {
    if (!interactive)
      throw new UsageError('recover needs a confirmation, and there is no terminal to ask on.', {
        next: 'Pass --yes to confirm on the command line.',
      });
    const word = confirmWord(loaded);
    const answer = await ask(
      `Type "${word}" to ${mode === 'rollback' ? 'roll back' : 'finish'} run ${u.runId} (anything else cancels): `,
      signals,
    );
    if (answer !== word) {
      out.info('Cancelled. Nothing was touched.');
      return ExitCode.ok;
    }
    out.info('Confirmed.');
  }
  signals.throwIfCancelled('the look at the unfinished run');
  if (ownerAlive(u.entry)) throw new UsageError(`Run ${u.runId} is running again; recover refuses to touch it.`);

  const recipe = loaded.recipe;
  const redact = recipeRedactor(recipe, env);
  await prepareRecipeEvidence(loaded, env);
  const runId = newRunId('restore', recipe.name).replace('-restore-', '-recover-');
  const lockDir = defaultLockDir(env, evidenceDir(recipe, env));
  // The dead run's stale locks (and those of its killed recover attempts) are handed over, all at
  // once; a live owner, or another run's lock, still refuses (exit 8).
  const ours = new Set([u.runId, ...u.attempts.map((a) => a.runId)]);
  const stale = (await findStaleLocks(u.begin.lockKeys, { dir: lockDir })).filter((l) => ours.has(l.runId));
  const locks = await takeOverLocks(stale, { dir: lockDir, runId, command: 'recover', recipe: recipeRef, keys: u.begin.lockKeys, env });
  for (const l of stale)
    out.info(sanitizeText(`Took over the stale lock on ${l.key} (left by run ${l.runId}, pid ${l.pid}: ${l.reason}).`));
  const bus = new EventBus();
  // From here a signal interrupts the recover (session/interrupts.ts). A rollback is already the
  // rollback: it goes on, and only a further signal stops it (what is left is reported, and the
  // next recover resumes it). A finish rolls back like a restore.
  const run = signals.startRun();
  let evidence: EvidenceHandle | undefined;
  let summary: RunSummary;
  let plan = u.plan;
  try {
    evidence = attachRecipeEvidence(bus, {
      loaded,
      kind: 'restore',
      redact,
      runId,
      commandLine: ['restore-assistant', ...process.argv.slice(2)],
      env,
    });
    const journal = path.join(evidence.dir, JOURNAL_FILE);
    // Before anything is touched: the original run records this attempt (a killed recover is folded in next time).
    appendRecord(u.journal, attemptRecord(runId, mode, journal));
    const journaled = attachJournal(bus, {
      runDir: evidence.dir,
      lockKeys: u.begin.lockKeys,
      env,
      recovers: { runId: u.runId, mode, journal: u.journal, preIncident: u.preIncident },
    });
    try {
      bus.emit({
        type: 'log',
        level: 'info',
        message: redact(`recover (${mode}) of unfinished run ${u.runId}; its journal: ${u.journal}`),
      });
      // What the dead run left in its own private temp dirs (a copy's staging, an extraction):
      // removed by identity first, whatever the mode (engine/run-temp.ts).
      for (const line of (await removeRunTempDirs(u.facts)).lines) {
        bus.emit({ type: 'log', level: 'info', message: redact(line) });
        out.info(sanitizeText(line));
      }
      const operator = currentOperator(env).operator;
      if (mode === 'rollback') {
        summary = await rollbackUnfinished(u, {
          bus,
          redact,
          env,
          runId,
          operator,
          loaded,
          signal: run.stopSignal,
          write: (l) => out.info(sanitizeText(l)),
        });
      } else {
        plan = finishPlan(u);
        summary = await runPlan(plan, {
          bus,
          redact,
          env,
          signal: run.signal,
          stopSignal: run.stopSignal,
          renderer: process.stderr.isTTY ? 'default' : 'simple',
          write: (line) => out.info(line),
          color: out.color,
          runId,
          kind: 'restore',
          confirmedAt: new Date(),
          operator,
          heldLocks: locks,
          checkContext: { recipe, loaded, mode: 'restore' },
          facts: u.facts,
          stateNow: () => probeTargetsNow(loaded, u, env),
        });
      }
    } finally {
      journaled.dispose();
    }
    // Resolved when the targets are in a known state again: finished, or back to the pre-restore data.
    if (summary.outcome !== 'rollback-incomplete') {
      appendRecord(u.journal, { j: 'resolved', ts: new Date().toISOString(), by: runId, mode, outcome: summary.outcome });
      removeIndexEntry(env, u.runId);
    }
  } finally {
    run.dispose();
    await evidence?.close();
    await locks.release();
  }
  if (opts.json) {
    out.json({ runId, recovers: u.runId, mode, evidence: evidence?.dir, ...summary });
  } else {
    out.result(sanitizeText(`Recover (${mode}) of run ${u.runId}:`));
    const text = formatSummary(summary, plan, evidence?.dir, out.color);
    // The engine's words are about a restore; a complete recover is a success.
    const result =
      summary.exitCode !== 0
        ? undefined
        : mode === 'rollback'
          ? 'rolled back: the targets hold their pre-restore data'
          : summary.outcome === 'restored'
            ? 'finished: restored and healthy'
            : undefined;
    out.result(result ? text.replace(/^(\S*Result:\S*) .*$/m, `$1 ${result} (exit 0)`) : text);
  }
  return summary.exitCode;
}
