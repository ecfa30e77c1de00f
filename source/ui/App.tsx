import { useApp, useInput } from 'ink';
import { useCallback, useEffect, useReducer, useRef, useState } from 'react';
import { EventBus } from '../engine/events.js';
import { RestoreAssistantError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { interruptTracker, type InterruptTracker } from '../session/interrupts.js';
import { useNow } from './hooks/use-now.js';
import { emptyRunView, foldRunEvent, type RunView } from './run-view.js';
import { BackupScreen } from './screens/BackupScreen.js';
import { ConfirmScreen } from './screens/ConfirmScreen.js';
import { HistoryScreen } from './screens/HistoryScreen.js';
import { CancelledScreen, ErrorScreen, HelpScreen } from './screens/MessageScreens.js';
import { PlanScreen } from './screens/PlanScreen.js';
import { RecipeScreen } from './screens/RecipeScreen.js';
import { RolesScreen } from './screens/RolesScreen.js';
import { confirmedLine, RunScreen, RunStatic } from './screens/RunScreen.js';
import { AbandonedScreen, SummaryScreen } from './screens/SummaryScreen.js';
import { VerifyScreen } from './screens/VerifyScreen.js';
import { TargetScreen } from './screens/TargetScreen.js';
import type { GuideDeps, UnhealthyDecision, UnhealthyQuestion, VerifyProgress } from './types.js';
import { estimateFromHistory, exitCodeOf, holdsScreen, isTerminal, planRequestOf, wizardReducer, type GuideError, type Job, type WizardEvent, type WizardState } from './wizard.js';
import { incidentBlock } from './incident.js';

/** How many staging lines the verify screen keeps. */
const STAGING_LINES = 6;

export interface GuideOutcome {
  exitCode: number;
  /** The state the guide ended in (cancelled, summary, abandoned, error). */
  state: WizardState;
}

export interface AppProps {
  deps: GuideDeps;
  initial: WizardState;
  onDone: (outcome: GuideOutcome) => void;
  /** The operator pressed p on the summary: these lines are printed plainly after the screen is gone. */
  onPrint?: (lines: string[]) => void;
  /** SIGINT/SIGTERM delivered to the process (not through the keyboard) arrive here. */
  subscribeInterrupts?: (onInterrupt: () => void) => () => void;
}

export function toGuideError(error: unknown): GuideError {
  const stack = error instanceof Error && error.stack ? { stack: error.stack } : {};
  if (error instanceof RestoreAssistantError) {
    const e: GuideError = { message: error.message, exitCode: error.exitCode, ...stack };
    if (error.problems.length > 0) e.problems = error.problems;
    if (error.untouched) e.untouched = error.untouched;
    if (error.next) e.next = error.next;
    return e;
  }
  // A plain permission error is the operator's situation, not a bug (issue 12: "Internal error").
  const errno = error as NodeJS.ErrnoException | undefined;
  if (errno && (errno.code === 'EACCES' || errno.code === 'EPERM')) {
    const where = typeof errno.path === 'string' ? errno.path : 'a file restore-assistant needs';
    return {
      message: `Permission denied: this user cannot ${errno.syscall === 'open' || errno.syscall === 'scandir' || errno.syscall === 'stat' ? 'read' : 'use'} ${where}.`,
      exitCode: ExitCode.preflightFailed,
      next: `Run restore-assistant as root (sudo restore-assistant guide), or as a user that can read and write ${where}.`,
      ...stack,
    };
  }
  const message = error instanceof Error ? error.message : String(error);
  return { message: `Internal error: ${message}`, exitCode: ExitCode.internal, next: 'This is a bug in restore-assistant; please report it with RESTORE_ASSISTANT_DEBUG=1 output (the stack trace is printed after the guide ends).', ...stack };
}

function jobOf(state: WizardState): { job: Job; state: WizardState } | undefined {
  const s = state.screen === 'help' ? state.previous : state;
  if ('job' in s && s.job) return { job: s.job, state: s };
  return undefined;
}

/**
 * The guided interface: one reducer (wizard.ts) decides what is on screen; this component runs the
 * side effect each state asks for through the injected deps and feeds the results back.
 */
export function App({ deps, initial, onDone, onPrint, subscribeInterrupts }: AppProps): React.JSX.Element {
  const [state, rawDispatch] = useReducer(wizardReducer, initial);
  const [verifyProgress, setVerifyProgress] = useState<VerifyProgress | undefined>(undefined);
  /** The off-site staging's lines (download progress, checks, decryption), the last few. */
  const [staging, setStaging] = useState<string[]>([]);
  const onVerifyProgress = useCallback((p: VerifyProgress): void => {
    if (p.staging === undefined) {
      setVerifyProgress(p);
      return;
    }
    const line = p.staging;
    // A download progress line replaces the one before it (same object); other lines are kept.
    setStaging((prev) => {
      const last = prev.at(-1);
      const progress = (l: string | undefined): boolean => l !== undefined && /^\s*downloading /.test(l);
      const kept = progress(last) && progress(line) ? prev.slice(0, -1) : prev;
      return [...kept, line].slice(-STAGING_LINES);
    });
  }, []);
  const [runView, setRunView] = useState<RunView>(emptyRunView);
  const runViewRef = useRef<RunView>(runView);
  const runAbort = useRef<AbortController | undefined>(undefined);
  const runStop = useRef<AbortController | undefined>(undefined);
  /** The engine's open question after failed health checks, answered from the wizard state. */
  const pendingAnswer = useRef<((decision: UnhealthyDecision) => void) | undefined>(undefined);
  const done = useRef(false);
  const { exit } = useApp();
  // One clock for every screen: ages, RPO and elapsed times tick everywhere (not only while running).
  const now = useNow(deps.clock, !isTerminal(state));

  // During the run, Ctrl-C and signals go through the one interrupt policy (session/interrupts.ts):
  // a second within 3 s of the first is absorbed (said on screen), so a reflexive double Ctrl-C
  // never abandons the rollback.
  const screenRef = useRef(state.screen);
  screenRef.current = state.screen;
  const tracker = useRef<InterruptTracker | undefined>(undefined);
  const [absorbed, setAbsorbed] = useState<string | undefined>(undefined);

  const dispatch = useCallback(
    (event: WizardEvent) => {
      if (event.type === 'confirm-submit') {
        rawDispatch({ ...event, at: deps.clock().toISOString() });
        return;
      }
      if (event.type === 'interrupt') {
        if (screenRef.current === 'run' && tracker.current?.next('SIGINT').decision === 'absorbed') {
          setAbsorbed('Ctrl-C again within 3 s: ignored, the rollback goes on. One more stops waiting: the rollback is abandoned where it is and the targets are left as they are then (exit 5).');
          return;
        }
        rawDispatch({ ...event, view: runViewRef.current });
        return;
      }
      rawDispatch(event);
    },
    [deps],
  );

  // Ctrl-C is ours (render with exitOnCtrlC: false): before the run it cancels, during it aborts.
  useInput((input, key) => {
    if (key.ctrl && input === 'c') dispatch({ type: 'interrupt' });
  });
  useEffect(() => subscribeInterrupts?.(() => dispatch({ type: 'interrupt' })), [subscribeInterrupts, dispatch]);

  const current = jobOf(state);
  const job = current?.job;
  const jobState = current?.state;
  // Each job runs once: the effect is keyed on the job object, and results name their job.
  const jobStateRef = useRef(jobState);
  jobStateRef.current = jobState;

  useEffect(() => {
    const s = jobStateRef.current;
    if (!job || !s) return undefined;
    const ac = new AbortController();
    const fail = (error: unknown): void => {
      if (!ac.signal.aborted || job.kind === 'run') rawDispatch({ type: 'job-failed', job, error: toGuideError(error) });
    };
    const start = async (): Promise<void> => {
      switch (job.kind) {
        case 'recipes': {
          const pinned = s.screen === 'recipe' && s.pinned ? [s.pinned] : [];
          rawDispatch({ type: 'recipes-loaded', job, recipes: await deps.listRecipes(pinned) });
          return;
        }
        case 'history': {
          if (s.screen !== 'history' || !s.choice.loaded) return;
          const [entries, trend] = await Promise.all([
            deps.history(s.choice.loaded),
            // No trend is no trend line, never a failure of the history screen.
            deps.rtoTrend(s.choice.loaded).catch(() => undefined),
          ]);
          rawDispatch(trend ? { type: 'history-loaded', job, entries, trend } : { type: 'history-loaded', job, entries });
          return;
        }
        case 'report': {
          if (s.screen !== 'history' || !s.open) return;
          const lines = await deps.runReport(s.open.entry);
          if (!ac.signal.aborted) rawDispatch({ type: 'report-loaded', job, lines });
          return;
        }
        case 'sets': {
          if (s.screen !== 'backup') return;
          const { sets, warnings, where, pitr, offsiteUrl } = await deps.listSets(s.chosen.recipe);
          rawDispatch({
            type: 'sets-loaded',
            job,
            sets,
            warnings,
            ...(where ? { where } : {}),
            ...(pitr ? { pitr } : {}),
            ...(offsiteUrl ? { offsiteUrl } : {}),
          });
          return;
        }
        case 'pitr': {
          if (s.screen !== 'verify' || !s.pitr) return;
          if (!deps.preparePitr) throw new Error('this guide cannot restore base backups (no point-in-time support in its deps)');
          setVerifyProgress(undefined);
          setStaging([]);
          const prepared = await deps.preparePitr(s.chosen.recipe, s.set, s.pitr.target, { onProgress: onVerifyProgress, signal: ac.signal });
          let estimate;
          try {
            estimate = estimateFromHistory(await deps.history(s.chosen.recipe), s.chosen.mode);
          } catch {
            estimate = undefined;
          }
          if (!ac.signal.aborted) rawDispatch(estimate ? { type: 'pitr-prepared', job, prepared, estimate } : { type: 'pitr-prepared', job, prepared });
          return;
        }
        case 'verify': {
          if (s.screen !== 'verify') return;
          setVerifyProgress(undefined);
          setStaging([]);
          const report = await deps.verify(s.chosen.recipe, s.set, { depth: 'deep', onProgress: onVerifyProgress, signal: ac.signal, mode: s.chosen.mode });
          if (!ac.signal.aborted) rawDispatch({ type: 'verify-done', job, report });
          return;
        }
        case 'probe': {
          if (s.screen !== 'verify') return;
          const facts = await deps.probe(s.chosen.recipe, s.set, s.report, { signal: ac.signal, mode: s.chosen.mode });
          if (!ac.signal.aborted) rawDispatch({ type: 'probe-done', job, facts });
          return;
        }
        case 'plan': {
          if (s.screen !== 'verify' || !s.facts) return;
          const plan = deps.buildPlan({ recipe: s.chosen.recipe, set: s.set, facts: s.facts, mode: s.chosen.mode, ...planRequestOf(s), ...(s.report ? { verify: s.report } : {}) });
          let estimate;
          try {
            estimate = estimateFromHistory(await deps.history(s.chosen.recipe), s.chosen.mode);
          } catch {
            estimate = undefined; // no history is no estimate, never a failure
          }
          rawDispatch(estimate ? { type: 'plan-built', job, plan, estimate } : { type: 'plan-built', job, plan });
          return;
        }
        case 'run': {
          if (s.screen !== 'run') return;
          const bus = new EventBus();
          runViewRef.current = emptyRunView();
          setRunView(runViewRef.current);
          bus.on((event) => {
            runViewRef.current = foldRunEvent(runViewRef.current, event);
            setRunView(runViewRef.current);
          });
          const runAc = new AbortController();
          const stopAc = new AbortController();
          tracker.current = interruptTracker(() => deps.clock().getTime());
          setAbsorbed(undefined);
          runAbort.current = runAc;
          runStop.current = stopAc;
          // Asked only when the plan screen left it to "ask"; otherwise the plan already decides.
          const onUnhealthy =
            s.onUnhealthy === 'ask'
              ? (question: UnhealthyQuestion): Promise<UnhealthyDecision> =>
                  new Promise<UnhealthyDecision>((resolve) => {
                    pendingAnswer.current = resolve;
                    rawDispatch({ type: 'unhealthy-asked', job, question });
                  })
              : undefined;
          const result = await deps.runPlan(s.plan, { bus, signal: runAc.signal, stopSignal: stopAc.signal, confirmedAt: s.confirmedAt, rollbackOnUnhealthy: s.onUnhealthy === 'rollback', ...(onUnhealthy ? { onUnhealthy } : {}) });
          pendingAnswer.current = undefined;
          rawDispatch({ type: 'run-done', job, result, view: runViewRef.current });
          return;
        }
      }
    };
    start().catch(fail);
    return () => {
      if (job.kind !== 'run') ac.abort();
    };
  }, [job, deps, onVerifyProgress]);

  // Ctrl-C during the run: the first aborts the engine (it rolls back); the second tells it to stop waiting and report.
  const interrupts = state.screen === 'run' ? state.interrupts : 0;
  useEffect(() => {
    if (interrupts > 0) runAbort.current?.abort(new Error('interrupted by the operator (Ctrl-C)'));
    if (interrupts > 1) runStop.current?.abort(new Error('the operator stopped waiting (Ctrl-C twice)'));
  }, [interrupts]);

  // The operator answered the engine's question (once: the resolver is dropped after use).
  const answer = state.screen === 'run' ? state.answer : undefined;
  useEffect(() => {
    if (!answer) return;
    pendingAnswer.current?.(answer);
    pendingAnswer.current = undefined;
  }, [answer]);

  // One place decides the end and the exit code; the summary stays up until the operator leaves it.
  useEffect(() => {
    if (!isTerminal(state)) return;
    if (!done.current) {
      done.current = true;
      onDone({ exitCode: exitCodeOf(state) ?? ExitCode.internal, state });
    }
    if (holdsScreen(state)) return;
    if (state.screen === 'summary' && state.closed?.print) onPrint?.(incidentBlock(state));
    exit();
  }, [state, onDone, onPrint, exit]);

  const active = !isTerminal(state) || holdsScreen(state);
  const confirmed = state.screen === 'run' || state.screen === 'summary' || state.screen === 'abandoned' ? confirmedLine(state) : undefined;
  let screen: React.JSX.Element;
  switch (state.screen) {
    case 'recipe':
      screen = <RecipeScreen state={state} dispatch={dispatch} now={now} active={active} />;
      break;
    case 'history':
      screen = <HistoryScreen state={state} dispatch={dispatch} now={now} active={active} />;
      break;
    case 'backup':
      screen = <BackupScreen state={state} dispatch={dispatch} now={now} active={active} />;
      break;
    case 'verify':
      screen = <VerifyScreen state={state} dispatch={dispatch} now={now} active={active} staging={staging} {...(verifyProgress ? { progress: verifyProgress } : {})} />;
      break;
    case 'target':
      screen = <TargetScreen state={state} dispatch={dispatch} now={now} active={active} />;
      break;
    case 'roles':
      screen = <RolesScreen state={state} dispatch={dispatch} now={now} active={active} />;
      break;
    case 'plan':
      screen = <PlanScreen state={state} dispatch={dispatch} now={now} active={active} />;
      break;
    case 'confirm':
      screen = <ConfirmScreen state={state} dispatch={dispatch} now={now} active={active} />;
      break;
    case 'run':
      screen = <RunScreen state={state} dispatch={dispatch} now={now} active={active} view={runView} {...(absorbed && state.interrupts === 1 ? { notice: absorbed } : {})} />;
      break;
    case 'summary':
      screen = <SummaryScreen state={state} dispatch={dispatch} active={active} now={now} />;
      break;
    case 'abandoned':
      screen = <AbandonedScreen state={state} />;
      break;
    case 'cancelled':
      screen = <CancelledScreen state={state} />;
      break;
    case 'error':
      screen = <ErrorScreen state={state} dispatch={dispatch} active={active} />;
      break;
    case 'help':
      screen = <HelpScreen dispatch={dispatch} active={active} />;
      break;
  }
  return (
    <>
      {confirmed !== undefined ? <RunStatic confirmed={confirmed} view={runView} /> : null}
      {screen}
    </>
  );
}
