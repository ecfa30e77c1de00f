import type { BackupSet, VerifyReport } from '../../source/catalog/types.js';
import type { EventBus } from '../../source/engine/events.js';
import { type EngineEventBody } from '../../source/engine/events.js';
import type { Plan, PlanStep } from '../../source/plan/types.js';
import type { LoadedRecipe } from '../../source/recipe/load.js';
import { recipeSchema, type RecipeInput } from '../../source/recipe/schema.js';
import type {
  GuideDeps,
  GuideHistoryEntry,
  GuideRtoTrend,
  PlanRequest,
  RecipeChoice,
  RunResult,
  UnhealthyDecision,
  UnhealthyQuestion,
} from '../../source/ui/types.js';

/** Fixtures and fake deps for the guided-interface tests (pure logic and screens only). */

export const NOW = new Date('2026-01-18T05:00:00.000Z');

export function recipeFixture(overrides: Partial<RecipeInput> = {}): LoadedRecipe {
  const input: RecipeInput = {
    name: 'story-portal',
    description: 'agentic platform',
    backups: { root: '/backups/story-portal', layout: 'story-portal' },
    components: {
      postgres: { database: 'agentic_platform', port: 5432 },
      redis: { port: 6379, service: { stop: ['svc', 'stop', 'redis'], start: ['svc', 'start', 'redis'] } },
      prometheus: {
        url: 'http://127.0.0.1:9090',
        dataDir: '/var/lib/prometheus',
        service: { stop: ['svc', 'stop', 'prom'], start: ['svc', 'start', 'prom'] },
      },
    },
    objectives: { rtoMinutes: 30, rpoMinutes: 240 },
    ...overrides,
  };
  return { recipe: recipeSchema.parse(input), file: `/recipes/${input.name}.yaml`, digest: 'd'.repeat(64) };
}

export function setFixture(id: string, time: string, extra: Partial<BackupSet> = {}): BackupSet {
  const location = `/backups/story-portal/${id}`;
  return {
    id,
    layout: 'story-portal',
    root: '/backups/story-portal',
    location,
    time,
    timeSource: 'metadata',
    components: [
      {
        kind: 'postgres',
        format: 'pg-plain-gz',
        path: `${location}/postgres.sql.gz`,
        size: 3 * 1024 * 1024,
        checksum: 'present',
        expectedSha256: 'a'.repeat(64),
        checksumSource: 'sidecar',
      },
      {
        kind: 'redis',
        format: 'redis-rdb',
        path: `${location}/redis.rdb`,
        size: 40 * 1024,
        checksum: 'present',
        expectedSha256: 'b'.repeat(64),
        checksumSource: 'sidecar',
      },
      {
        kind: 'prometheus',
        format: 'prometheus-tar-gz',
        path: `${location}/prometheus-data.tar.gz`,
        size: 2 * 1024 * 1024,
        checksum: 'absent',
      },
    ],
    metadata: {},
    warnings: [],
    totalSize: 5 * 1024 * 1024,
    ...extra,
  };
}

export const SETS: BackupSet[] = [
  setFixture('2026-01-18_01-45-13', '2026-01-18T01:45:13.000Z'),
  setFixture('2026-01-17_01-45-02', '2026-01-17T01:45:02.000Z'),
  setFixture('2026-01-16_01-44-58', '2026-01-16T01:44:58.000Z'),
];

export function reportFixture(set: BackupSet, ok: boolean): VerifyReport {
  return {
    setId: set.id,
    ok,
    depth: 'deep',
    components: set.components.map((c) => ({
      kind: c.kind,
      path: c.path,
      ok: ok || c.kind !== 'postgres',
      checks: [
        { name: 'sha256', ok: ok || c.kind !== 'postgres', durationMs: 5 },
        { name: 'gzip stream', ok: true, durationMs: 9 },
      ],
    })),
    problems: ok
      ? []
      : [
          {
            component: 'postgres',
            path: set.components[0]!.path,
            code: 'gzip-truncated',
            message: 'postgres.sql.gz ends before the end of the gzip stream',
          },
        ],
    startedAt: NOW.toISOString(),
    durationMs: 14,
  };
}

function step(partial: Partial<PlanStep> & { id: string; title: string }): PlanStep {
  return {
    doneTitle: `${partial.title} done`,
    phase: 'postgres',
    lane: 'main',
    destructive: false,
    actions: [],
    dependsOn: [],
    ...partial,
  };
}

export function planFixture(req: Pick<PlanRequest, 'set' | 'recipe' | 'mode'> & { overrideRejected?: string }): Plan {
  const { set, recipe, mode } = req;
  return {
    version: 1,
    mode,
    createdAt: NOW.toISOString(),
    stamp: '20260118T050000Z',
    recipe: { name: recipe.recipe.name, file: recipe.file, digest: recipe.digest },
    backup: {
      id: set.id,
      time: set.time,
      layout: set.layout,
      location: set.location,
      components: set.components.map((c) => ({ kind: c.kind, format: c.format, path: c.path, size: c.size })),
    },
    targets: { postgres: 'PostgreSQL agentic_platform on 127.0.0.1:5432 (host)', redis: 'Redis on 127.0.0.1:6379 (host)' },
    lockKeys: ['postgres:127.0.0.1:5432/agentic_platform', 'redis:127.0.0.1:6379'],
    steps: [
      step({ id: 'preflight', title: 'Check tools, versions and disk', phase: 'preflight' }),
      step({
        id: 'stop-api',
        title: 'Stop service api',
        phase: 'quiesce',
        actions: [{ type: 'exec', argv: ['svc', 'stop', 'api'], purpose: 'stop api', runsIn: 'host' }],
      }),
      step({
        id: 'pg-restore',
        title: 'Restore PostgreSQL database agentic_platform',
        destructive: true,
        destroys: 'the current database agentic_platform',
        safetyCopy: {
          component: 'postgres',
          kind: 'rename',
          location: 'agentic_platform__pre_restore_20260118T050000Z',
          description: 'the current database, renamed',
        },
        undo: { title: 'Rename agentic_platform__pre_restore back', actions: [] },
        actions: [
          {
            type: 'exec',
            argv: ['psql', '-h', '127.0.0.1', '-c', 'ALTER DATABASE "agentic_platform" RENAME TO x'],
            purpose: 'rename',
            runsIn: 'host',
          },
          {
            type: 'exec',
            argv: ['psql', '-h', '127.0.0.1', '-d', 'agentic_platform'],
            purpose: 'load',
            runsIn: 'host',
            input: { file: set.components[0]!.path, gunzip: true },
          },
        ],
      }),
      step({
        id: 'redis-restore',
        title: 'Restore Redis dump.rdb',
        destructive: true,
        destroys: 'the current Redis dataset',
        safetyCopy: {
          component: 'redis',
          kind: 'move',
          location: '/var/lib/redis/dump.rdb.pre_restore',
          description: 'the current dump.rdb, moved aside',
        },
      }),
      step({ id: 'health', title: 'Run health checks', phase: 'health' }),
    ],
    options: {
      yes: true,
      rollbackOnUnhealthy: false,
      dropSafetyCopies: false,
      missingRoles: 'fail',
      parallel: true,
      jobs: 2,
      ...(req.overrideRejected !== undefined ? { overrideRejected: req.overrideRejected } : {}),
    },
    facts: {},
    warnings: [],
    objectives: { rtoMinutes: 30, rpoMinutes: 240 },
  };
}

export function summaryFixture(overrides: Partial<RunResult['summary']> = {}): RunResult['summary'] {
  return {
    outcome: 'restored',
    exitCode: 0,
    rtoMs: 252_000,
    rpoMs: 11_687_000,
    safetyCopies: [
      {
        component: 'postgres',
        kind: 'rename',
        location: 'agentic_platform__pre_restore_20260118T050000Z',
        description: 'the current database, renamed',
      },
    ],
    state: ['PostgreSQL agentic_platform: restored from 2026-01-18_01-45-13'],
    nextSteps: ['Drop the safety copy agentic_platform__pre_restore_20260118T050000Z once the application is confirmed healthy.'],
    ...overrides,
  };
}

export interface FakeDepsControl {
  deps: GuideDeps;
  calls: string[];
  planRequests: PlanRequest[];
  /** Plans handed to runPlan. */
  runPlans: Plan[];
  /** Plans buildPlan returned (runPlan must get one of these very objects). */
  builtPlans: Plan[];
  /** The rollbackOnUnhealthy choice handed to each runPlan. */
  runRollbackChoices: boolean[];
  /** Emit an engine event into the running plan's bus. */
  emit(body: EngineEventBody): void;
  /** Finish the running plan. */
  finishRun(result: RunResult): void;
  runSignal(): AbortSignal | undefined;
  stopSignal(): AbortSignal | undefined;
  /** The question hook the guide handed to runPlan (undefined when the plan already decides). */
  onUnhealthy(): ((failed: UnhealthyQuestion) => Promise<UnhealthyDecision>) | undefined;
}

/** Fake deps for pure UI tests: records calls, never touches a system. Runs finish when the test says so. */
export function fakeDeps(
  options: {
    recipes?: RecipeChoice[];
    sets?: BackupSet[];
    badSets?: string[];
    history?: GuideHistoryEntry[];
    trend?: GuideRtoTrend;
    missingRoles?: string[];
  } = {},
): FakeDepsControl {
  const calls: string[] = [];
  const planRequests: PlanRequest[] = [];
  const runPlans: Plan[] = [];
  const builtPlans: Plan[] = [];
  const runRollbackChoices: boolean[] = [];
  let bus: EventBus | undefined;
  let finish: ((r: RunResult) => void) | undefined;
  let signal: AbortSignal | undefined;
  let stop: AbortSignal | undefined;
  let onUnhealthy: ((failed: UnhealthyQuestion) => Promise<UnhealthyDecision>) | undefined;
  const recipe = recipeFixture();
  const deps: GuideDeps = {
    listRecipes: async (extra) => {
      calls.push(`listRecipes(${extra.map((r) => r.recipe.name).join(',')})`);
      return (
        options.recipes ??
        [{ name: recipe.recipe.name, file: recipe.file, loaded: recipe, lastRun: options.history?.[0] }].map((r) =>
          r.lastRun ? r : { name: r.name, file: r.file, loaded: r.loaded },
        )
      );
    },
    listSets: async (r) => {
      calls.push(`listSets(${r.recipe.name})`);
      return { sets: options.sets ?? SETS, warnings: [] };
    },
    verify: async (_r, set, o) => {
      calls.push(`verify(${set.id},${o.depth})`);
      o.onProgress({ component: 'postgres', check: 'gzip stream', done: 1024 * 1024, total: 3 * 1024 * 1024 });
      return reportFixture(set, !(options.badSets ?? []).includes(set.id));
    },
    probe: async (_r, set) => {
      calls.push(`probe(${set.id})`);
      return options.missingRoles ? { postgres: { missingRoles: options.missingRoles } } : {};
    },
    buildPlan: (req) => {
      calls.push(`buildPlan(${req.set.id},${req.mode})`);
      planRequests.push(req);
      const plan = planFixture(req);
      builtPlans.push(plan);
      return plan;
    },
    runPlan: (plan, o) => {
      calls.push(`runPlan(${plan.backup.id})`);
      // As the real deps do: only a plan this guide built can run.
      if (!builtPlans.includes(plan)) throw new Error('runPlan with a plan this guide did not build');
      runPlans.push(plan);
      runRollbackChoices.push(o.rollbackOnUnhealthy);
      bus = o.bus;
      signal = o.signal;
      stop = o.stopSignal;
      onUnhealthy = o.onUnhealthy;
      return new Promise((resolve) => {
        finish = resolve;
      });
    },
    history: async (r) => {
      calls.push(`history(${r.recipe.name})`);
      return options.history ?? [];
    },
    rtoTrend: async (r) => {
      calls.push(`rtoTrend(${r.recipe.name})`);
      return options.trend ?? { points: [], direction: 'n/a', changePct: null };
    },
    runReport: async (entry) => {
      calls.push(`runReport(${entry.runId})`);
      if (!entry.dir) throw new Error(`run ${entry.runId} has no directory left in the evidence (only its history entry)`);
      return [
        `# Restore report: ${entry.runId}`,
        '',
        `Outcome: ${entry.outcome}`,
        ...Array.from({ length: 60 }, (_, i) => `report line ${i + 1}`),
      ];
    },
    clock: () => NOW,
  };
  return {
    deps,
    calls,
    planRequests,
    runPlans,
    builtPlans,
    runRollbackChoices,
    emit: (body) => {
      if (!bus) throw new Error('no run in progress');
      bus.emit(body);
    },
    finishRun: (result) => {
      if (!finish) throw new Error('no run in progress');
      finish(result);
    },
    runSignal: () => signal,
    stopSignal: () => stop,
    onUnhealthy: () => onUnhealthy,
  };
}
