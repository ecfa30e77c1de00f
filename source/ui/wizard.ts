import type { BackupSet, VerifyReport } from '../catalog/types.js';
import { ExitCode } from '../exit-codes.js';
import type { Plan, PlanOptions, TargetFacts } from '../plan/types.js';
import type { LoadedRecipe } from '../recipe/load.js';
import type { Recipe } from '../recipe/schema.js';
import type { PitrTarget } from '../pitr/target.js';
import type { RunView } from './run-view.js';
import { checkTypedTarget, targetLabel, TARGET_CHOICES } from './pitr-view.js';
import type {
  GuideHistoryEntry,
  GuideMode,
  GuideRtoTrend,
  PitrBaseView,
  PitrPreparedView,
  RecipeChoice,
  RunResult,
  SetWhere,
  UnhealthyDecision,
  UnhealthyQuestion,
} from './types.js';

/**
 * The guided flow as a pure state machine: recipe → backup → verify → plan review → confirm → run →
 * summary, plus history, help, cancelled and error. No Ink, no I/O: the App runs the side effect a
 * state asks for (its `job`) and feeds the result back as an event. A result whose job is not the
 * current state's job is stale (the operator went back) and is ignored.
 *
 * Guarantees (tested in test/unit/ui-wizard.test.ts):
 * - `run` is only reachable from `confirm` with a typed word equal to the confirm word.
 * - A set that failed verification is only planned with an override reason, which ends up in
 *   PlanOptions.overrideRejected (the plan request carries it).
 * - Esc goes back one screen, everywhere (confirm: back to the plan); every state before `run`
 *   cancels with nothing touched (q, or Ctrl-C: exit ExitCode.cancelled, never 130).
 * - Failed health checks during the run are answered here (keep or roll back) only when the plan
 *   screen left the decision to "ask"; the answer is taken once, and an interrupt closes the question.
 */

/**
 * What happens when health checks fail: ask then (default), or decided on the plan screen. The
 * plan object is never copied here: 'rollback' reaches the engine as `runPlan(plan,
 * { rollbackOnUnhealthy: true })`, which the deps apply to the plan they built; 'ask' and 'keep'
 * both leave the engine keeping the restored state unless the operator's answer says otherwise.
 */
export type UnhealthyPolicy = 'ask' | 'rollback' | 'keep';

/** A side effect a state is waiting for. Identity matters: results name the job they answer. */
export interface Job {
  readonly kind: 'recipes' | 'history' | 'report' | 'sets' | 'verify' | 'probe' | 'plan' | 'run' | 'pitr';
}

export interface GuideError {
  message: string;
  problems?: string[];
  untouched?: string;
  next?: string;
  exitCode: number;
  /** The error's stack, printed to stderr after the guide ends with RESTORE_ASSISTANT_DEBUG=1. */
  stack?: string;
}

export interface Chosen {
  recipe: LoadedRecipe;
  mode: GuideMode;
}

export interface RecipeState {
  screen: 'recipe';
  job?: Job;
  recipes?: RecipeChoice[];
  /** A recipe given on the command line (may live outside the search directories). */
  pinned?: LoadedRecipe;
  /** The recipe whose actions (restore / drill / history) are open. */
  selected?: string;
  error?: GuideError;
  notice?: string;
}

export interface HistoryState {
  screen: 'history';
  choice: RecipeChoice;
  job?: Job;
  entries?: GuideHistoryEntry[];
  trend?: GuideRtoTrend;
  error?: string;
  /** Index into entries. */
  cursor: number;
  /** A run opened with Enter: its report, scrolled to `offset`. */
  open?: { entry: GuideHistoryEntry; lines?: string[]; error?: string; offset: number };
  back: RecipeState;
}

export interface BackupState {
  screen: 'backup';
  chosen: Chosen;
  job?: Job;
  sets?: BackupSet[];
  warnings: string[];
  error?: GuideError;
  /** Set id → why it was rejected (quick checks in this session, or what the catalog saw). */
  rejected: Record<string, string[]>;
  filter: string;
  filtering: boolean;
  /** Index into the filtered list. */
  cursor: number;
  /** An override prompt for a rejected set is open. */
  override?: { setId: string };
  notice?: string;
  /** Set id → where it lives (a recipe with an off-site source). */
  where?: Record<string, SetWhere>;
  /** Where the off-site sets are (s3://bucket/prefix). */
  offsiteUrl?: string;
  /** Set id → its base backup's restorable window (physical layout): choosing one leads to the target screen. */
  pitr?: Record<string, PitrBaseView>;
  back: RecipeState;
}

/** A point-in-time restore: where recovery stops (latest, immediately consistent, or a typed time inside the window). */
export interface TargetState {
  screen: 'target';
  chosen: Chosen;
  set: BackupSet;
  base: PitrBaseView;
  /** Index into TARGET_CHOICES. */
  cursor: number;
  /** The time field is open (it takes the keys). */
  typing: boolean;
  /** Why the typed time was refused (parse or window), shown under the field. */
  problem?: string;
  /** The last time typed (shown again when the field reopens after a refusal). */
  typed?: string;
  back: BackupState;
}

/** What a point-in-time restore carries from the target screen to the summary. */
export interface PitrInfo {
  target: PitrTarget;
  /** The target in words, as the operator typed it (UTC, and the zone typed when not UTC). */
  label: string;
  base: PitrBaseView;
  dataDir?: string;
  server?: string;
  segments?: number;
  walBytes?: number;
}

export interface VerifyState {
  screen: 'verify';
  chosen: Chosen;
  set: BackupSet;
  job?: Job;
  phase: 'verifying' | 'rejected' | 'probing' | 'planning';
  report?: VerifyReport;
  facts?: TargetFacts;
  missingRoles?: PlanOptions['missingRoles'];
  overrideRejected?: string;
  /** A point-in-time restore: the deps verify base + WAL to this target and plan the cluster (job 'pitr'). */
  pitr?: PitrInfo;
  back: BackupState;
}

export interface RolesState {
  screen: 'roles';
  chosen: Chosen;
  set: BackupSet;
  report?: VerifyReport;
  facts: TargetFacts;
  missing: string[];
  overrideRejected?: string;
  back: BackupState;
}

export interface PlanState {
  screen: 'plan';
  chosen: Chosen;
  set: BackupSet;
  report?: VerifyReport;
  plan: Plan;
  estimate?: DurationEstimate;
  cursor: number;
  showCommands: boolean;
  onUnhealthy: UnhealthyPolicy;
  pitr?: PitrInfo;
  back: BackupState;
}

export interface ConfirmState {
  screen: 'confirm';
  chosen: Chosen;
  set: BackupSet;
  plan: Plan;
  estimate?: DurationEstimate;
  onUnhealthy: UnhealthyPolicy;
  word: string;
  attempts: number;
  /** What was typed last time when it did not match. */
  mismatch?: string;
  pitr?: PitrInfo;
  back: PlanState;
}

export interface RunState {
  screen: 'run';
  chosen: Chosen;
  set: BackupSet;
  plan: Plan;
  confirmedAt: string;
  job: Job;
  /** Ctrl-C presses so far: 1 = abort requested (the engine rolls back); 2 = stop waiting (the engine reports the state). */
  interrupts: number;
  onUnhealthy: UnhealthyPolicy;
  /** How long earlier runs took (the overall "about N left" on the run screen). */
  estimate?: DurationEstimate;
  /** The engine asks: health checks failed; keep the restored state or roll back? */
  question?: UnhealthyQuestion;
  /** The operator's answer (the App hands it to the engine once). */
  answer?: UnhealthyDecision;
  pitr?: PitrInfo;
}

export interface SummaryState {
  screen: 'summary';
  chosen: Chosen;
  set: BackupSet;
  plan: Plan;
  confirmedAt: string;
  result: RunResult;
  view?: RunView;
  pitr?: PitrInfo;
  /** The operator left the summary (q, Enter, Esc); `print`: with p, the incident block is printed plainly after the screen. */
  closed?: { print: boolean };
}

/** The operator stopped waiting for a rollback (second Ctrl-C): the exact known state is reported. */
export interface AbandonedState {
  screen: 'abandoned';
  chosen: Chosen;
  plan: Plan;
  confirmedAt: string;
  view?: RunView;
}

export interface CancelledState {
  screen: 'cancelled';
  from: ScreenName;
  exitCode: number;
  message: string;
}

export interface ErrorState {
  screen: 'error';
  error: GuideError;
  /** Whether anything may have been touched (a run that crashed). */
  touched: boolean;
  back?: WizardState;
}

export interface HelpState {
  screen: 'help';
  previous: WizardState;
}

export type WizardState =
  | RecipeState
  | HistoryState
  | BackupState
  | TargetState
  | VerifyState
  | RolesState
  | PlanState
  | ConfirmState
  | RunState
  | SummaryState
  | AbandonedState
  | CancelledState
  | ErrorState
  | HelpState;

export type ScreenName = WizardState['screen'];

export interface DurationEstimate {
  ms: number;
  runs: number;
}

export type WizardEvent =
  | { type: 'recipes-loaded'; job: Job; recipes: RecipeChoice[] }
  | { type: 'job-failed'; job: Job; error: GuideError }
  | { type: 'select-recipe'; name: string }
  | { type: 'recipe-action'; action: GuideMode | 'history' }
  | { type: 'history-loaded'; job: Job; entries: GuideHistoryEntry[]; trend?: GuideRtoTrend }
  | { type: 'report-loaded'; job: Job; lines: string[] }
  | { type: 'print' }
  | {
      type: 'sets-loaded';
      job: Job;
      sets: BackupSet[];
      warnings: string[];
      where?: Record<string, SetWhere>;
      pitr?: Record<string, PitrBaseView>;
      offsiteUrl?: string;
    }
  | { type: 'target-submit'; text: string }
  | { type: 'pitr-prepared'; job: Job; prepared: PitrPreparedView; estimate?: DurationEstimate }
  | { type: 'move'; delta: number }
  | { type: 'filter-start' }
  | { type: 'filter-input'; text: string }
  | { type: 'filter-backspace' }
  | { type: 'filter-done' }
  | { type: 'choose-set' }
  | { type: 'override-submit'; reason: string }
  | { type: 'verify-done'; job: Job; report: VerifyReport }
  | { type: 'probe-done'; job: Job; facts: TargetFacts }
  | { type: 'roles-chosen'; choice: PlanOptions['missingRoles'] }
  | { type: 'plan-built'; job: Job; plan: Plan; estimate?: DurationEstimate }
  | { type: 'toggle-commands' }
  | { type: 'proceed' }
  | { type: 'confirm-submit'; text: string; at: string }
  | { type: 'toggle-unhealthy' }
  | { type: 'unhealthy-asked'; job: Job; question: UnhealthyQuestion }
  | { type: 'unhealthy-answer'; decision: UnhealthyDecision }
  | { type: 'run-done'; job: Job; result: RunResult; view?: RunView }
  | { type: 'interrupt'; view?: RunView }
  | { type: 'back' }
  | { type: 'help' }
  | { type: 'quit' };

const job = (kind: Job['kind']): Job => ({ kind });

/** The word the operator types to confirm: recipe.confirmWord ?? the database name ?? the recipe name. */
export function confirmWordFor(recipe: Recipe): string {
  return recipe.confirmWord ?? recipe.components.postgres?.database ?? recipe.name;
}

/** Why the catalog alone already rules a set out (before any verification). */
export function catalogRejections(set: BackupSet): string[] {
  const reasons: string[] = [];
  for (const c of set.components) {
    if (c.checksum === 'mismatch') reasons.push(`${c.kind}: checksum does not match the recorded sha256`);
    if (c.size === 0) reasons.push(`${c.kind}: the file is empty (0 bytes)`);
  }
  return reasons;
}

/** Sets whose id, time or component paths contain the filter text (case-insensitive). */
export function filterSets(sets: readonly BackupSet[], filter: string): BackupSet[] {
  const f = filter.trim().toLowerCase();
  if (f === '') return [...sets];
  return sets.filter(
    (s) => s.id.toLowerCase().includes(f) || s.time.toLowerCase().replace('t', ' ').includes(f) || s.time.toLowerCase().includes(f),
  );
}

/** Median duration (RTO when recorded) of earlier successful runs of this kind. */
export function estimateFromHistory(entries: readonly GuideHistoryEntry[], mode: GuideMode): DurationEstimate | undefined {
  const ms = entries
    .filter((e) => e.kind === mode && (e.outcome === 'restored' || e.outcome === 'unhealthy'))
    .map((e) => e.rtoMs ?? e.durationMs)
    .filter((v): v is number => typeof v === 'number' && v > 0)
    .sort((a, b) => a - b);
  if (ms.length === 0) return undefined;
  const mid = Math.floor(ms.length / 2);
  const median = ms.length % 2 === 1 ? ms[mid]! : Math.round((ms[mid - 1]! + ms[mid]!) / 2);
  return { ms: median, runs: ms.length };
}

export function initialState(options: { pinned?: LoadedRecipe } = {}): WizardState {
  const state: RecipeState = { screen: 'recipe', job: job('recipes') };
  if (options.pinned) {
    state.pinned = options.pinned;
    state.selected = options.pinned.recipe.name;
  }
  return state;
}

function backupStateFor(chosen: Chosen, back: RecipeState): BackupState {
  return { screen: 'backup', chosen, job: job('sets'), warnings: [], rejected: {}, filter: '', filtering: false, cursor: 0, back };
}

/** The recipe's missing-roles policy as a plan option ('ask' is answered on the roles screen). */
function rolesPolicy(recipe: Recipe): PlanOptions['missingRoles'] {
  const p = recipe.components.postgres?.missingRoles;
  return p === 'create' || p === 'skip-ownership' ? p : 'fail';
}

function cancelled(from: ScreenName, exitCode: number = ExitCode.ok): CancelledState {
  return { screen: 'cancelled', from, exitCode, message: 'Cancelled, nothing was touched.' };
}

/** The sets the backup screen shows (filtered). */
export function visibleSets(state: BackupState): BackupSet[] {
  return filterSets(state.sets ?? [], state.filter);
}

function clampCursor(state: BackupState): BackupState {
  const n = visibleSets(state).length;
  const cursor = n === 0 ? 0 : Math.min(Math.max(0, state.cursor), n - 1);
  return cursor === state.cursor ? state : { ...state, cursor };
}

/** Can the operator press `?` / `q` here (not while typing, not during the run)? */
export function acceptsCommandKeys(state: WizardState): boolean {
  switch (state.screen) {
    case 'backup':
      return !state.filtering && !state.override;
    case 'target':
      return !state.typing;
    case 'confirm':
    case 'run':
    case 'help':
    case 'abandoned':
    case 'cancelled':
      return false;
    default:
      return true;
  }
}

export function wizardReducer(state: WizardState, event: WizardEvent): WizardState {
  // Help sits on top of a state: job results still reach the state underneath.
  if (state.screen === 'help') {
    if (event.type === 'back' || event.type === 'help' || event.type === 'proceed') return state.previous;
    if (event.type === 'quit') return wizardReducer(state.previous, event);
    if ('job' in event) return { ...state, previous: wizardReducer(state.previous, event) };
    if (event.type === 'interrupt') return wizardReducer(state.previous, event);
    return state;
  }

  // Results of side effects: only the current job's result counts.
  if ('job' in event && (!('job' in state) || state.job !== event.job)) return state;

  if (event.type === 'interrupt') {
    if (state.screen === 'run') {
      // 1st: abort (rollback); 2nd: the engine stops waiting and reports; 3rd: we stop waiting for the engine.
      if (state.interrupts < 2) {
        // An open question is closed: the interrupt rolls back (the engine stops waiting for the answer).
        const { question: _question, ...rest } = state;
        return state.question && !state.answer
          ? { ...rest, interrupts: state.interrupts + 1 }
          : { ...state, interrupts: state.interrupts + 1 };
      }
      const abandoned: AbandonedState = { screen: 'abandoned', chosen: state.chosen, plan: state.plan, confirmedAt: state.confirmedAt };
      if (event.view) abandoned.view = event.view;
      return abandoned;
    }
    if (isTerminal(state)) return state;
    // Nothing ran: a cancel, not an interrupted-and-rolled-back run (exit 130 means that).
    return cancelled(state.screen, ExitCode.cancelled);
  }

  if (event.type === 'help') {
    if (!acceptsCommandKeys(state) || state.screen === 'summary') return state;
    return { screen: 'help', previous: state };
  }

  if (event.type === 'quit') {
    if (state.screen === 'error') return { ...state, back: undefined };
    // The summary is left, not cancelled: the run's exit code stands.
    if (state.screen === 'summary') return state.closed ? state : { ...state, closed: { print: false } };
    if (!acceptsCommandKeys(state)) return state;
    return cancelled(state.screen);
  }

  switch (state.screen) {
    case 'recipe':
      return reduceRecipe(state, event);
    case 'history':
      return reduceHistory(state, event);
    case 'backup':
      return reduceBackup(state, event);
    case 'target':
      return reduceTarget(state, event);
    case 'verify':
      return reduceVerify(state, event);
    case 'roles':
      if (event.type === 'roles-chosen') {
        if (event.choice === 'fail') return cancelled('roles');
        const next: VerifyState = {
          screen: 'verify',
          chosen: state.chosen,
          set: state.set,
          phase: 'planning',
          job: job('plan'),
          facts: state.facts,
          missingRoles: event.choice,
          back: state.back,
        };
        if (state.report) next.report = state.report;
        if (state.overrideRejected !== undefined) next.overrideRejected = state.overrideRejected;
        return next;
      }
      if (event.type === 'back') return state.back;
      return state;
    case 'plan':
      return reducePlan(state, event);
    case 'confirm':
      // Esc goes back one screen, as everywhere else (the plan, as it was: cursor, c, u).
      if (event.type === 'back') return state.back;
      if (event.type === 'confirm-submit') {
        if (event.text.trim() === state.word) {
          return {
            screen: 'run',
            chosen: state.chosen,
            set: state.set,
            plan: state.plan,
            confirmedAt: event.at,
            job: job('run'),
            interrupts: 0,
            onUnhealthy: state.onUnhealthy,
            ...(state.estimate ? { estimate: state.estimate } : {}),
            ...(state.pitr ? { pitr: state.pitr } : {}),
          };
        }
        return { ...state, attempts: state.attempts + 1, mismatch: event.text };
      }
      return state;
    case 'run':
      if (event.type === 'run-done') {
        const summary: SummaryState = {
          screen: 'summary',
          chosen: state.chosen,
          set: state.set,
          plan: state.plan,
          confirmedAt: state.confirmedAt,
          result: event.result,
        };
        if (event.view) summary.view = event.view;
        if (state.pitr) summary.pitr = state.pitr;
        return summary;
      }
      if (event.type === 'job-failed') return { screen: 'error', error: event.error, touched: true };
      if (event.type === 'unhealthy-asked') {
        // Only asked when the plan screen left it to "ask", once, and not after an interrupt.
        if (state.onUnhealthy !== 'ask' || state.interrupts > 0 || state.question || state.answer) return state;
        return { ...state, question: event.question };
      }
      if (event.type === 'unhealthy-answer') {
        if (!state.question || state.answer || state.interrupts > 0) return state;
        return { ...state, answer: event.decision };
      }
      return state;
    case 'summary':
      if (state.closed) return state;
      if (event.type === 'print') return { ...state, closed: { print: true } };
      if (event.type === 'back' || event.type === 'proceed') return { ...state, closed: { print: false } };
      return state;
    case 'error':
      if (event.type === 'back' && state.back) return state.back;
      return state;
    default:
      return state;
  }
}

function reduceHistory(state: HistoryState, event: WizardEvent): WizardState {
  if (state.open) {
    const open = state.open;
    switch (event.type) {
      case 'report-loaded':
        return { ...state, job: undefined, open: { ...open, lines: event.lines } };
      case 'job-failed':
        return { ...state, job: undefined, open: { ...open, error: event.error.message } };
      case 'move': {
        const max = Math.max(0, (open.lines?.length ?? 0) - 1);
        return { ...state, open: { ...open, offset: Math.min(max, Math.max(0, open.offset + event.delta)) } };
      }
      case 'back':
      case 'proceed':
        // Back to the list, where the cursor was; a report still loading is dropped.
        return { ...state, job: undefined, open: undefined };
      default:
        return state;
    }
  }
  switch (event.type) {
    case 'history-loaded': {
      const next: HistoryState = { ...state, job: undefined, entries: event.entries, cursor: 0 };
      if (event.trend) next.trend = event.trend;
      return next;
    }
    case 'job-failed':
      return { ...state, job: undefined, error: event.error.message };
    case 'move': {
      const n = state.entries?.length ?? 0;
      return { ...state, cursor: n === 0 ? 0 : Math.min(n - 1, Math.max(0, state.cursor + event.delta)) };
    }
    case 'proceed': {
      const entry = state.entries?.[state.cursor];
      if (!entry) return state;
      return { ...state, job: job('report'), open: { entry, offset: 0 } };
    }
    case 'back':
      return state.back;
    default:
      return state;
  }
}

function reduceRecipe(state: RecipeState, event: WizardEvent): WizardState {
  switch (event.type) {
    case 'recipes-loaded': {
      const recipes = [...event.recipes];
      if (state.pinned && !recipes.some((r) => r.file === state.pinned?.file)) {
        recipes.unshift({ name: state.pinned.recipe.name, file: state.pinned.file, loaded: state.pinned });
      }
      return { ...state, job: undefined, recipes };
    }
    case 'job-failed':
      return { ...state, job: undefined, error: event.error };
    case 'select-recipe': {
      const choice = state.recipes?.find((r) => r.name === event.name);
      if (!choice) return state;
      if (!choice.loaded) return { ...state, notice: `Recipe ${choice.name} cannot be used: ${choice.error ?? 'it did not load'}` };
      return { ...state, selected: choice.name, notice: undefined };
    }
    case 'recipe-action': {
      const choice = state.recipes?.find((r) => r.name === state.selected);
      if (!choice?.loaded) return state;
      if (event.action === 'history') return { screen: 'history', choice, job: job('history'), cursor: 0, back: state };
      return backupStateFor({ recipe: choice.loaded, mode: event.action }, state);
    }
    case 'back':
      if (state.selected !== undefined) return { ...state, selected: undefined };
      return cancelled('recipe');
    default:
      return state;
  }
}

function reduceBackup(state: BackupState, event: WizardEvent): WizardState {
  switch (event.type) {
    case 'sets-loaded': {
      const rejected = { ...state.rejected };
      for (const set of event.sets) {
        const reasons = catalogRejections(set);
        if (reasons.length > 0) rejected[set.id] = reasons;
      }
      const next: BackupState = { ...state, job: undefined, sets: event.sets, warnings: event.warnings, rejected, cursor: 0 };
      if (event.where) next.where = event.where;
      if (event.pitr) next.pitr = event.pitr;
      if (event.offsiteUrl) next.offsiteUrl = event.offsiteUrl;
      return next;
    }
    case 'job-failed':
      return { ...state, job: undefined, error: event.error };
    case 'move':
      if (state.override) return state;
      return clampCursor({ ...state, cursor: state.cursor + event.delta });
    case 'filter-start':
      return state.override ? state : { ...state, filtering: true };
    case 'filter-input':
      if (state.override) return state;
      return clampCursor({ ...state, filtering: true, filter: state.filter + event.text.replace(/[\r\n]/g, ''), cursor: 0 });
    case 'filter-backspace':
      return clampCursor({ ...state, filter: state.filter.slice(0, -1), cursor: 0 });
    case 'filter-done':
      return { ...state, filtering: false };
    case 'choose-set': {
      if (state.override) return state;
      const set = visibleSets(state)[state.cursor];
      if (!set) return state;
      // A base backup (physical layout): where recovery stops is chosen first.
      const base = state.pitr?.[set.id];
      if (base) {
        // The cluster plan is an in-place restore: never reached from "Drill" (scratch targets only).
        if (state.chosen.mode === 'drill')
          return {
            ...state,
            filtering: false,
            notice:
              'The guide restores base backups (physical layout) in place only; nothing was touched. Go back and choose Restore in place, or drill from the command line (restore-assistant drill).',
          };
        if (!base.window)
          return {
            ...state,
            filtering: false,
            notice: `Base ${set.id} has no restorable window: ${base.problems[0] ?? 'choose another base'}`,
          };
        return {
          screen: 'target',
          chosen: state.chosen,
          set,
          base,
          cursor: 0,
          typing: false,
          back: { ...state, filtering: false, notice: undefined },
        };
      }
      if (state.rejected[set.id]) return { ...state, filtering: false, override: { setId: set.id }, notice: undefined };
      return {
        screen: 'verify',
        chosen: state.chosen,
        set,
        phase: 'verifying',
        job: job('verify'),
        back: { ...state, filtering: false, notice: undefined },
      };
    }
    case 'override-submit': {
      if (!state.override) return state;
      const reason = event.reason.trim();
      if (reason === '') return { ...state, notice: 'A reason is required to use a rejected set; it is recorded with the run.' };
      const set = state.sets?.find((s) => s.id === state.override?.setId);
      if (!set) return { ...state, override: undefined };
      const back: BackupState = { ...state, override: undefined, notice: undefined };
      return { screen: 'verify', chosen: state.chosen, set, phase: 'probing', job: job('probe'), overrideRejected: reason, back };
    }
    case 'back':
      if (state.override) return { ...state, override: undefined, notice: undefined };
      if (state.filtering || state.filter !== '') return clampCursor({ ...state, filtering: false, filter: '' });
      return state.back;
    default:
      return state;
  }
}

function reduceTarget(state: TargetState, event: WizardEvent): WizardState {
  const toVerify = (target: PitrTarget, label: string): VerifyState => ({
    screen: 'verify',
    chosen: state.chosen,
    set: state.set,
    phase: 'verifying',
    job: job('pitr'),
    pitr: { target, label, base: state.base },
    back: state.back,
  });
  switch (event.type) {
    case 'move':
      if (state.typing) return state;
      return { ...state, cursor: Math.min(TARGET_CHOICES.length - 1, Math.max(0, state.cursor + event.delta)) };
    case 'proceed': {
      if (state.typing) return state;
      const choice = TARGET_CHOICES[state.cursor] ?? 'latest';
      if (choice === 'time') return { ...state, typing: true };
      const target: PitrTarget = choice === 'latest' ? { kind: 'latest' } : { kind: 'immediate' };
      if (choice === 'latest' && state.base.problems.length > 0 && state.base.window) {
        // A gap ends the window: "latest" would stop there; say so, and have the time typed.
        return {
          ...state,
          typing: true,
          problem: `The WAL has a gap: ${state.base.problems[0]}. Type a time up to the window's end to accept the loss.`,
        };
      }
      return toVerify(target, targetLabel(target));
    }
    case 'target-submit': {
      const checked = checkTypedTarget(event.text, state.base);
      if (!checked.ok) return { ...state, typing: true, typed: event.text, problem: checked.problem };
      return toVerify(checked.target, checked.label);
    }
    case 'back':
      if (state.typing) return { ...state, typing: false, problem: undefined };
      return state.back;
    default:
      return state;
  }
}

function reduceVerify(state: VerifyState, event: WizardEvent): WizardState {
  switch (event.type) {
    case 'pitr-prepared': {
      if (!state.pitr) return state;
      const p = event.prepared;
      const pitr: PitrInfo = { ...state.pitr, dataDir: p.dataDir, server: p.server, segments: p.segments, walBytes: p.walBytes };
      const plan: PlanState = {
        screen: 'plan',
        chosen: state.chosen,
        set: state.set,
        report: p.report,
        plan: p.plan,
        cursor: 0,
        showCommands: false,
        // The cluster plan decides on failed health checks itself (its rollback puts the old data directory back).
        onUnhealthy: p.plan.options.rollbackOnUnhealthy ? 'rollback' : 'keep',
        pitr,
        back: state.back,
      };
      if (event.estimate) plan.estimate = event.estimate;
      return plan;
    }
    case 'verify-done':
      if (!event.report.ok) return { ...state, job: undefined, phase: 'rejected', report: event.report };
      return { ...state, report: event.report, phase: 'probing', job: job('probe') };
    case 'probe-done': {
      const missing = event.facts.postgres?.missingRoles ?? [];
      if (missing.length > 0 && state.chosen.recipe.recipe.components.postgres?.missingRoles === 'ask') {
        const roles: RolesState = { screen: 'roles', chosen: state.chosen, set: state.set, facts: event.facts, missing, back: state.back };
        if (state.report) roles.report = state.report;
        if (state.overrideRejected !== undefined) roles.overrideRejected = state.overrideRejected;
        return roles;
      }
      return { ...state, facts: event.facts, phase: 'planning', job: job('plan'), missingRoles: rolesPolicy(state.chosen.recipe.recipe) };
    }
    case 'plan-built': {
      const plan: PlanState = {
        screen: 'plan',
        chosen: state.chosen,
        set: state.set,
        plan: event.plan,
        cursor: 0,
        showCommands: false,
        // A drill never rolls back (scratch targets) and is never asked.
        onUnhealthy: event.plan.mode === 'drill' ? 'keep' : event.plan.options.rollbackOnUnhealthy ? 'rollback' : 'ask',
        back: state.back,
      };
      if (state.report) plan.report = state.report;
      if (event.estimate) plan.estimate = event.estimate;
      return plan;
    }
    case 'job-failed':
      return { screen: 'error', error: event.error, touched: false, back: state.back };
    case 'back': {
      if (state.phase === 'rejected') {
        const reasons = (state.report?.problems ?? []).map((p) => p.message);
        return {
          ...state.back,
          rejected: { ...state.back.rejected, [state.set.id]: reasons.length > 0 ? reasons : ['failed verification'] },
        };
      }
      return state.back;
    }
    case 'proceed':
      // Enter on a rejected set's report also returns to the list (marked).
      if (state.phase === 'rejected') return reduceVerify(state, { type: 'back' });
      return state;
    default:
      return state;
  }
}

const nextUnhealthyPolicy: Record<UnhealthyPolicy, UnhealthyPolicy> = { ask: 'rollback', rollback: 'keep', keep: 'ask' };

function reducePlan(state: PlanState, event: WizardEvent): WizardState {
  switch (event.type) {
    case 'move': {
      const n = state.plan.steps.length;
      const cursor = Math.min(Math.max(0, state.cursor + event.delta), Math.max(0, n - 1));
      return { ...state, cursor };
    }
    case 'toggle-commands':
      return { ...state, showCommands: !state.showCommands };
    case 'toggle-unhealthy': {
      if (state.plan.mode === 'drill' || state.pitr) return state;
      // ask → roll back → keep → ask. The plan stays the one the deps built (they know it by
      // identity); the choice travels as data and the deps apply it when they run it (runPlan's
      // rollbackOnUnhealthy), so the evidence records the plan that actually ran.
      return { ...state, onUnhealthy: nextUnhealthyPolicy[state.onUnhealthy] };
    }
    case 'proceed':
      return {
        screen: 'confirm',
        chosen: state.chosen,
        set: state.set,
        plan: state.plan,
        onUnhealthy: state.onUnhealthy,
        word: confirmWordFor(state.chosen.recipe.recipe),
        attempts: 0,
        ...(state.estimate ? { estimate: state.estimate } : {}),
        ...(state.pitr ? { pitr: state.pitr } : {}),
        back: state,
      };
    case 'back':
      return state.back;
    default:
      return state;
  }
}

/**
 * Whether the screen stays up (taking keys) although the outcome is decided: the summary, until the
 * operator leaves it (q / Enter / Esc, or p to print the incident block plainly).
 */
export function holdsScreen(state: WizardState): boolean {
  return state.screen === 'summary' && !state.closed;
}

/** States the guide ends in (the exit code is decided; the summary still holds the screen until left). */
export function isTerminal(state: WizardState): boolean {
  return (
    state.screen === 'cancelled' ||
    state.screen === 'summary' ||
    state.screen === 'abandoned' ||
    (state.screen === 'error' && state.back === undefined)
  );
}

/** The exit code of a terminal state (the one place the guide decides it). */
export function exitCodeOf(state: WizardState): number | undefined {
  switch (state.screen) {
    case 'cancelled':
      return state.exitCode;
    case 'summary':
      return state.result.summary.exitCode;
    case 'abandoned':
      return ExitCode.rollbackIncomplete;
    case 'error':
      return state.back === undefined ? state.error.exitCode : undefined;
    default:
      return undefined;
  }
}

/** The plan request a verify state in its planning phase asks for. */
export function planRequestOf(state: VerifyState): { missingRoles: PlanOptions['missingRoles']; overrideRejected?: string } {
  const req: { missingRoles: PlanOptions['missingRoles']; overrideRejected?: string } = {
    missingRoles: state.missingRoles ?? rolesPolicy(state.chosen.recipe.recipe),
  };
  if (state.overrideRejected !== undefined) req.overrideRejected = state.overrideRejected;
  return req;
}
