import path from 'node:path';
import { databaseClaims, databaseMismatches, describeMismatch } from '../catalog/database-identity.js';
import { type BackupComponent, type BackupSet, COMPONENT_KINDS, type ComponentKind, type VerifyReport } from '../catalog/types.js';
import { UsageError } from '../errors.js';
import { contextLabel } from '../exec/context.js';
import { type LoadedRecipe } from '../recipe/load.js';
import { defaultSafetyDir } from '../state/paths.js';
import type { Check, PostgresTarget, PrometheusTarget, RedisTarget } from '../recipe/schema.js';
import * as pg from '../targets/postgres.js';
import * as prom from '../targets/prometheus.js';
import * as redis from '../targets/redis.js';
import { appServiceControl, startActions, stopActions } from '../targets/services.js';
import type { Lane, Plan, PlanOptions, PlanStep, TargetFacts } from './types.js';
import type { PlannedAction } from '../actions/types.js';

/**
 * The pure plan builder: recipe + backup set + facts + options -> Plan. No I/O, no clock, no
 * randomness: the same input (with the same `now`) gives the same plan, byte for byte.
 */

export interface BuildPlanInput {
  recipe: LoadedRecipe;
  set: BackupSet;
  facts: TargetFacts;
  options: PlanOptions;
  mode: 'restore' | 'drill';
  now: Date;
  verify?: VerifyReport;
  /** The keys the session locked for this plan (engine/target-identity.ts `identityLockKeys`; a drill's name the real targets). Without them the plan names none, and the engine refuses it (validatePlan). */
  lockKeys?: string[];
}

const ORDER = COMPONENT_KINDS;

/** YYYYMMDDTHHMMSSZ (UTC). */
export function planStamp(now: Date): string {
  return now
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace(/[-:]/g, '');
}

/** A file-name-safe form of a name (for safety-copy files). */
function fileSafe(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 100) || 'db';
}

function verifyFacts(verify: VerifyReport | undefined, kind: ComponentKind): Record<string, unknown> {
  return verify?.components.find((c) => c.kind === kind)?.facts ?? {};
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/** The components this plan restores, in order, with warnings for those left out. */
export function restorableComponents(
  recipe: LoadedRecipe,
  set: BackupSet,
  only: readonly ComponentKind[] | undefined,
): { kinds: ComponentKind[]; warnings: string[] } {
  const warnings: string[] = [];
  const kinds: ComponentKind[] = [];
  for (const kind of ORDER) {
    const inRecipe = recipe.recipe.components[kind] !== undefined;
    const inSet = set.components.some((c) => c.kind === kind);
    const wanted = !only || only.includes(kind);
    if (only?.includes(kind) && !inRecipe)
      throw new UsageError(`--only ${kind}: recipe ${recipe.recipe.name} has no ${kind} component.`, {
        next: 'Drop it from --only, or add the component to the recipe.',
      });
    if (only?.includes(kind) && !inSet)
      throw new UsageError(`--only ${kind}: backup set ${set.id} has no ${kind} backup.`, {
        next: 'Pick another set (`restore-assistant list`), or drop it from --only.',
      });
    if (!wanted) continue;
    if (inRecipe && !inSet) {
      warnings.push(`Backup set ${set.id} has no ${kind} backup: ${kind} is left as it is.`);
      continue;
    }
    if (!inRecipe && inSet) {
      warnings.push(
        `Backup set ${set.id} has a ${kind} backup but recipe ${recipe.recipe.name} has no ${kind} component: it is not restored.`,
      );
      continue;
    }
    if (inRecipe && inSet) kinds.push(kind);
  }
  if (kinds.length === 0) {
    throw new UsageError(
      `Nothing to restore: backup set ${set.id} and recipe ${recipe.recipe.name} have no component in common${only ? ` among --only ${only.join(',')}` : ''}.`,
      {
        next: 'Pick another set (`restore-assistant list`) or check the recipe components.',
      },
    );
  }
  return { kinds, warnings };
}

function component(set: BackupSet, kind: ComponentKind): BackupComponent {
  const c = set.components.find((x) => x.kind === kind);
  if (!c) throw new Error(`set ${set.id} has no ${kind} component`);
  return c;
}

/** The Redis layout from server facts, else the recipe, else Redis defaults. */
export function redisLayout(target: RedisTarget, facts: TargetFacts): { layout: redis.RedisLayout; warnings: string[] } {
  const f = facts.redis;
  const warnings: string[] = [];
  const dir = f?.dir ?? target.dataDir;
  const dbfilename = f?.dbfilename ?? target.dbfilename ?? 'dump.rdb';
  const learned = redisAppendonly(target, f);
  const appendonly = learned.appendonly;
  if (!dir) {
    const why = f?.error ? `the server could not be asked (${f.error})` : 'the server was not asked (--offline or unreachable)';
    throw new UsageError(`The Redis data directory is unknown: ${why} and the recipe sets no components.redis.dataDir.`, {
      next: 'Set components.redis.dataDir (CONFIG GET dir on the server tells it), or plan without --offline.',
    });
  }
  if (f && f.source === 'server') {
    if (target.dataDir !== undefined && f.dir !== target.dataDir)
      warnings.push(`Redis reports dir ${f.dir}, the recipe says ${target.dataDir}: using the server's.`);
    if (target.dbfilename !== undefined && f.dbfilename !== target.dbfilename)
      warnings.push(`Redis reports dbfilename ${f.dbfilename}, the recipe says ${target.dbfilename}: using the server's.`);
    if (target.appendonly !== undefined && f.appendonly !== target.appendonly)
      warnings.push(
        `Redis reports appendonly ${f.appendonly ? 'yes' : 'no'}, the recipe says ${target.appendonly ? 'yes' : 'no'}: using the server's.`,
      );
  }
  if (f && f.source === 'recipe') {
    if (f.configFile && f.configError) warnings.push(`Redis config file ${f.configFile} could not be read (${f.configError}).`);
    if (f.appendonlyFrom === 'config-file' && f.configFile) {
      const c = f.configFile;
      for (const [k, mine, theirs] of [
        ['dir', target.dataDir, f.dir],
        ['dbfilename', target.dbfilename, f.dbfilename],
        ['appendonly', target.appendonly === undefined ? undefined : target.appendonly ? 'yes' : 'no', f.appendonly ? 'yes' : 'no'],
      ] as const) {
        if (mine !== undefined && mine !== theirs)
          warnings.push(`${c} says ${k} ${theirs}, the recipe says ${mine}: using the config file's (Redis reads it when it starts).`);
      }
    }
  }
  warnings.push(...learned.warnings);
  const major = f?.versionMajor ?? (f?.version ? Number.parseInt(f.version, 10) : undefined);
  if (appendonly && major === undefined)
    warnings.push('Redis version unknown: assuming Redis 7 or later (multi-part AOF directory) for the AOF layout.');
  return {
    layout: {
      dir,
      dbfilename,
      appendonly,
      appenddirname: f?.appenddirname ?? target.appenddirname ?? 'appendonlydir',
      appendfilename: f?.appendfilename ?? 'appendonly.aof',
      multiPartAof: major === undefined || major >= 7,
    },
    warnings,
  };
}

/**
 * Whether the restored Redis will run with appendonly (issue 11): the server's answer, else its
 * config file, else the recipe, else an AOF found in the data dir. When nothing says, the backup is
 * installed both as the RDB and as the AOF base (appendonly true here): Redis loads it whichever
 * setting it starts with, never an empty AOF.
 */
function redisAppendonly(target: RedisTarget, f: TargetFacts['redis']): { appendonly: boolean; warnings: string[] } {
  if (f?.source === 'server') return { appendonly: f.appendonly, warnings: [] };
  const from = f?.appendonlyFrom;
  if (f && from === 'config-file')
    return {
      appendonly: f.appendonly,
      warnings: [`Redis is not answering: appendonly ${f.appendonly ? 'yes' : 'no'} per ${f.configFile ?? 'its config file'}.`],
    };
  if (f && from === 'aof-dir') {
    return {
      appendonly: true,
      warnings: [
        `Redis is not answering and no config file says otherwise: an AOF exists in ${f.dir}, so appendonly yes is assumed and the backup is installed as the RDB and as the AOF base (Redis loads it either way).`,
      ],
    };
  }
  if (from === 'recipe' || (target.appendonly !== undefined && !from))
    return { appendonly: target.appendonly ?? f?.appendonly ?? false, warnings: [] };
  return {
    appendonly: true,
    warnings: [
      'Redis appendonly is not known (the server was not asked, no config file was read, no AOF is in the data dir): the backup is installed as the RDB and as the AOF base, so Redis loads it whether it starts with appendonly yes or no. Set components.redis.configFile (or appendonly) to say.',
    ],
  };
}

interface StepDraft extends Omit<PlanStep, 'dependsOn'> {
  dependsOn?: string[];
}

function describeTargets(recipe: LoadedRecipe, kinds: ComponentKind[]): Plan['targets'] {
  const c = recipe.recipe.components;
  const out: Plan['targets'] = {};
  if (kinds.includes('postgres') && c.postgres)
    out.postgres = `PostgreSQL ${c.postgres.database} on ${c.postgres.host}:${c.postgres.port} (${contextLabel(c.postgres.exec)})`;
  if (kinds.includes('redis') && c.redis) out.redis = `Redis on ${c.redis.host}:${c.redis.port} (${contextLabel(c.redis.exec)})`;
  if (kinds.includes('prometheus') && c.prometheus)
    out.prometheus = `Prometheus at ${c.prometheus.url}, data ${c.prometheus.dataDir} (${contextLabel(c.prometheus.exec)})`;
  return out;
}

function postgresSteps(t: PostgresTarget, input: BuildPlanInput, stamp: string, warnings: string[]): StepDraft[] {
  const { set, facts, options, verify } = input;
  const comp = component(set, 'postgres');
  const db = t.database;
  const f = facts.postgres;
  const steps: StepDraft[] = [];
  const missing = f?.missingRoles ?? [];
  const skipOwnership = options.missingRoles === 'skip-ownership';
  const ctxTemp = `/tmp/restore-assistant-${stamp}${comp.format === 'pg-directory' ? '.dir' : '.dump'}`;

  steps.push({
    id: 'postgres:terminate',
    title: `End sessions on database ${db}`,
    doneTitle: `Sessions on ${db} ended`,
    phase: 'postgres',
    lane: 'postgres',
    component: 'postgres',
    destructive: false,
    actions: pg.terminateActions(t),
    undo: { title: `Allow connections to ${db} again`, actions: pg.allowConnectionsActions(t) },
  });

  if (t.safetyCopy === 'rename') {
    const aside = pg.safetyDatabaseName(db, stamp);
    if (f?.databaseExists === false)
      warnings.push(`Database ${db} did not exist when probed: the rename keeps nothing (it is skipped when the database is absent).`);
    if (!aside.startsWith(db))
      warnings.push(`Database name ${db} is shortened in the safety copy name ${aside} (PostgreSQL names are at most 63 bytes).`);
    steps.push({
      id: 'postgres:safety-copy',
      title: `Rename database ${db} aside to ${aside}`,
      doneTitle: `Database ${db} kept as ${aside}`,
      phase: 'postgres',
      lane: 'postgres',
      component: 'postgres',
      destructive: true,
      destroys: `nothing: database ${db} is renamed to ${aside} and kept (it refuses connections until you ALTER DATABASE ... ALLOW_CONNECTIONS true)`,
      safetyCopy: { component: 'postgres', kind: 'rename', location: aside, description: `the database as it was, renamed to ${aside}` },
      actions: pg.renameAsideActions(t, aside),
      undo: { title: `Rename ${aside} back to ${db}`, actions: pg.renameBackActions(t, aside) },
    });
  } else if (t.safetyCopy === 'dump') {
    const safetyDir = options.safetyDir ?? defaultSafetyDir(input.recipe.recipe);
    const file = path.join(safetyDir, `${fileSafe(db)}__pre_restore_${stamp}.dump`);
    const absent = f?.databaseExists === false;
    // pg_dump runs before the terminate step refuses connections (it must connect); the
    // application services are already stopped.
    steps.unshift({
      id: 'postgres:safety-copy',
      title: absent ? `Note that database ${db} does not exist` : `Dump database ${db} to ${file}`,
      doneTitle: absent ? `Nothing to keep of ${db}` : `Database ${db} dumped to ${file}`,
      phase: 'postgres',
      lane: 'postgres',
      component: 'postgres',
      destructive: false,
      safetyCopy: absent
        ? { component: 'postgres', kind: 'none', location: '', description: `nothing to keep: database ${db} did not exist when probed` }
        : { component: 'postgres', kind: 'dump', location: file, description: `pg_dump -Fc of ${db} as it was` },
      actions: absent
        ? [{ type: 'note', purpose: `Database ${db} did not exist when probed: there is nothing to dump.` }]
        : pg.dumpSafetyCopyActions(t, file, `/tmp/restore-assistant-safety-${stamp}.dump`),
    });
    const restoreBack = absent
      ? []
      : pg.archiveRestoreActions(t, file, { jobs: 1, skipOwnership: false, ctxTempPath: `/tmp/restore-assistant-safety-${stamp}.dump` })
          .actions;
    steps.push({
      id: 'postgres:drop',
      title: `Drop database ${db}`,
      doneTitle: `Database ${db} dropped`,
      phase: 'postgres',
      lane: 'postgres',
      component: 'postgres',
      destructive: !absent,
      ...(absent ? {} : { destroys: `database ${db} (a pg_dump of it is kept at ${file})` }),
      actions: pg.dropDatabaseActions(t, `Drop database ${db}`),
      undo: {
        title: absent ? `Check that nothing is named ${db} now` : `Recreate ${db} from the safety dump`,
        // The database this run created is dropped by its OID (postgres:create's undo); whatever else
        // is named ${db} now is not this run's to drop: refused with its OID.
        actions: [
          ...pg.assertNoDatabaseActions(t, 'the one this run created was dropped by its OID'),
          ...(absent ? [] : [...pg.createDatabaseActions(t), ...restoreBack]),
        ],
      },
    });
  } else {
    // A drill's scratch database is throwaway: the drill keeps no copy of it, whatever the recipe says.
    const why = input.mode === 'drill' ? 'a drill keeps no copy of its throwaway scratch database' : 'the recipe sets safetyCopy: none';
    if (input.mode !== 'drill') warnings.push(`No safety copy of database ${db}: ${why}. Its current contents are lost for good.`);
    steps.push({
      id: 'postgres:drop',
      title: `Drop database ${db} (no safety copy)`,
      doneTitle: `Database ${db} dropped`,
      phase: 'postgres',
      lane: 'postgres',
      component: 'postgres',
      destructive: true,
      destroys: `database ${db} and everything in it, with no copy kept (${why})`,
      safetyCopy: {
        component: 'postgres',
        kind: 'none',
        location: '',
        description: input.mode === 'drill' ? `none: ${why}` : 'none: the operator chose to keep no copy (recipe safetyCopy: none)',
      },
      actions: [
        { type: 'note', purpose: `No safety copy is kept of ${db} (${why}); this was recorded.` },
        ...pg.dropDatabaseActions(t, `Drop database ${db}`),
      ],
    });
  }

  if (missing.length > 0 && options.missingRoles === 'create') {
    steps.push({
      id: 'postgres:roles',
      title: `Create missing roles ${missing.join(', ')}`,
      doneTitle: `Roles ${missing.join(', ')} created`,
      phase: 'postgres',
      lane: 'postgres',
      component: 'postgres',
      destructive: false,
      actions: pg.createRolesActions(t, missing),
      undo: { title: `Drop roles ${missing.join(', ')}`, actions: pg.dropRolesActions(t, missing) },
    });
  } else if (missing.length > 0 && skipOwnership) {
    warnings.push(`The dump references roles the server lacks (${missing.join(', ')}): restoring without ownership and grants.`);
  } else if (missing.length > 0) {
    warnings.push(
      `The dump references roles the server lacks (${missing.join(', ')}): preflight refuses until you choose --missing-roles create or --missing-roles skip-ownership.`,
    );
  }

  steps.push({
    id: 'postgres:create',
    title: `Create database ${db}`,
    doneTitle: `Database ${db} created`,
    phase: 'postgres',
    lane: 'postgres',
    component: 'postgres',
    destructive: false,
    actions: pg.createDatabaseRecordedActions(t),
    undo: {
      title: `Drop the new database ${db} (only the one this run created, by its OID)`,
      actions: pg.dropCreatedDatabaseActions(t, stamp),
    },
  });

  let restoreActions: PlannedAction[];
  let undoActions: PlannedAction[] | undefined;
  if (comp.format === 'pg-plain' || comp.format === 'pg-plain-gz') {
    restoreActions = [pg.plainRestoreAction(t, comp.path, { gunzip: comp.format === 'pg-plain-gz', skipOwnership })];
  } else {
    const toc = f?.dump?.tocEntries ?? num(verifyFacts(verify, 'postgres')['tocEntries']);
    const jobs = Math.max(1, options.jobs);
    const r = pg.archiveRestoreActions(t, comp.path, {
      jobs,
      skipOwnership,
      ctxTempPath: ctxTemp,
      ...(toc !== undefined ? { tocEntries: toc } : {}),
    });
    restoreActions = r.actions;
    if (r.cleanup.length > 0) undoActions = r.cleanup;
  }
  steps.push({
    id: 'postgres:restore',
    title: `Restore PostgreSQL database ${db}`,
    doneTitle: `PostgreSQL database ${db} restored`,
    phase: 'postgres',
    lane: 'postgres',
    component: 'postgres',
    destructive: false,
    actions: restoreActions,
    ...(undoActions ? { undo: { title: 'Remove the archive copied into the container', actions: undoActions } } : {}),
  });
  steps.push({
    id: 'postgres:analyze',
    title: `Analyze database ${db}`,
    doneTitle: `Database ${db} analyzed`,
    phase: 'postgres',
    lane: 'postgres',
    component: 'postgres',
    destructive: false,
    actions: pg.analyzeActions(t),
  });
  return steps;
}

function redisSteps(t: RedisTarget, input: BuildPlanInput, stamp: string, warnings: string[]): StepDraft[] {
  const comp = component(input.set, 'redis');
  const { layout, warnings: w } = redisLayout(t, input.facts);
  warnings.push(...w);
  const svc = t.service;
  const files = redis.redisFiles(layout, stamp);
  const backupKeys = input.facts.redis?.backupKeys ?? num(verifyFacts(input.verify, 'redis')['redisKeys']);
  const waitDown: PlannedAction = {
    type: 'wait-tcp',
    host: t.host,
    port: t.port,
    until: 'down',
    timeoutSeconds: svc.timeoutSeconds,
    purpose: `Wait until ${t.host}:${t.port} refuses connections`,
  };
  const waitUp: PlannedAction = {
    type: 'wait-command',
    command: redis.pongCommand(t),
    untilExit: 'zero',
    timeoutSeconds: Math.max(svc.timeoutSeconds, 300),
    purpose: 'Wait until Redis answers PONG (dataset loaded)',
  };
  return [
    {
      id: 'redis:stop',
      title: 'Stop Redis',
      doneTitle: 'Redis stopped',
      phase: 'redis',
      lane: 'redis',
      component: 'redis',
      destructive: false,
      actions: [...stopActions('Redis', svc), waitDown],
      undo: { title: 'Start Redis', actions: [...startActions('Redis', svc), waitUp] },
    },
    {
      id: 'redis:safety-copy',
      title: 'Move the current Redis files aside',
      doneTitle: 'Redis files moved aside',
      phase: 'redis',
      lane: 'redis',
      component: 'redis',
      destructive: true,
      destroys: `nothing: ${files.map((f) => f.path).join(' and ')} are moved aside (kept)`,
      safetyCopy: {
        component: 'redis',
        kind: 'move',
        location: files.map((f) => f.aside).join(', '),
        description: 'the RDB and AOF files as they were, renamed with .pre_restore_' + stamp,
      },
      actions: redis.safetyMoveActions(t, layout, stamp),
      // Redis is stopped first (a no-op when the start's undo already did): a running Redis would
      // rewrite the AOF it has open, and the pasted manual form must say so too.
      undo: {
        title: 'Put the previous Redis files back',
        actions: [...stopActions('Redis', svc), waitDown, ...redis.safetyMoveBackActions(t, layout, stamp)],
      },
    },
    {
      id: 'redis:place',
      title: layout.appendonly ? 'Put the backup RDB in place (as RDB and AOF base)' : 'Put the backup RDB in place',
      doneTitle: 'Backup RDB put in place',
      phase: 'redis',
      lane: 'redis',
      component: 'redis',
      destructive: false,
      actions: redis.placeActions(t, layout, comp.path),
      undo: { title: 'Remove the restored Redis files', actions: redis.removePlacedActions(t, layout) },
    },
    {
      id: 'redis:start',
      title: 'Start Redis',
      doneTitle: 'Redis started',
      phase: 'redis',
      lane: 'redis',
      component: 'redis',
      destructive: false,
      actions: [...startActions('Redis', svc), waitUp],
      undo: { title: 'Stop Redis', actions: [...stopActions('Redis', svc), waitDown] },
    },
    {
      id: 'redis:verify-keys',
      title: 'Count the restored Redis keys',
      doneTitle: 'Redis keys counted',
      phase: 'redis',
      lane: 'redis',
      component: 'redis',
      destructive: false,
      actions: [
        {
          type: 'check',
          check: redis.keyCountCheck(backupKeys),
          purpose:
            backupKeys === undefined
              ? 'Keys in every database (the backup key count is unknown)'
              : `Keys in every database: the backup has ${backupKeys}; fewer is reported (expired TTLs), none fails`,
        },
      ],
    },
  ];
}

function prometheusSteps(t: PrometheusTarget, input: BuildPlanInput, stamp: string): StepDraft[] {
  const comp = component(input.set, 'prometheus');
  const svc = t.service;
  const waitDown: PlannedAction = {
    type: 'wait-http',
    url: prom.readyUrl(t),
    until: 'down',
    timeoutSeconds: svc.timeoutSeconds,
    purpose: 'Wait until Prometheus no longer answers',
  };
  const waitUp: PlannedAction = {
    type: 'wait-http',
    url: prom.readyUrl(t),
    timeoutSeconds: Math.max(svc.timeoutSeconds, 300),
    purpose: 'Wait until Prometheus is ready (/-/ready)',
  };
  const location = prom.safetyLocation(t, stamp);
  return [
    {
      id: 'prometheus:stop',
      title: 'Stop Prometheus',
      doneTitle: 'Prometheus stopped',
      phase: 'prometheus',
      lane: 'prometheus',
      component: 'prometheus',
      destructive: false,
      actions: [...stopActions('Prometheus', svc), waitDown],
      undo: { title: 'Start Prometheus', actions: [...startActions('Prometheus', svc), waitUp] },
    },
    {
      id: 'prometheus:safety-copy',
      title: `Move the Prometheus data aside`,
      doneTitle: 'Prometheus data moved aside',
      phase: 'prometheus',
      lane: 'prometheus',
      component: 'prometheus',
      destructive: true,
      destroys: `nothing: the data in ${t.dataDir} is moved to ${location} (kept)`,
      safetyCopy: { component: 'prometheus', kind: 'move', location, description: 'the Prometheus data as it was' },
      actions: prom.moveAsideActions(t, stamp),
      undo: { title: 'Put the previous Prometheus data back', actions: prom.moveBackActions(t, stamp) },
    },
    {
      id: 'prometheus:place',
      title: 'Extract the Prometheus backup',
      doneTitle: 'Prometheus backup extracted',
      phase: 'prometheus',
      lane: 'prometheus',
      component: 'prometheus',
      destructive: false,
      actions: prom.extractActions(t, comp.path),
      // Undone by prometheus:safety-copy's undo (the restored data is moved away there).
    },
    {
      id: 'prometheus:start',
      title: 'Start Prometheus',
      doneTitle: 'Prometheus started',
      phase: 'prometheus',
      lane: 'prometheus',
      component: 'prometheus',
      destructive: false,
      actions: [...startActions('Prometheus', svc), waitUp],
      undo: { title: 'Stop Prometheus', actions: [...stopActions('Prometheus', svc), waitDown] },
    },
    {
      id: 'prometheus:verify-series',
      title: 'Check the restored Prometheus series',
      doneTitle: 'Prometheus series found',
      phase: 'prometheus',
      lane: 'prometheus',
      component: 'prometheus',
      destructive: false,
      actions: [
        {
          type: 'check',
          check: prom.seriesCheck(input.set.time),
          purpose: `Series with samples within an hour either side of the backup (${input.set.time})`,
        },
      ],
    },
  ];
}

function healthChecks(checks: readonly Check[], mode: 'restore' | 'drill'): Check[] {
  return checks.filter((c) => c.when.includes(mode));
}

/** Build the plan. Pure: throws UsageError for impossible requests (an --only the set lacks). */
export function buildPlan(input: BuildPlanInput): Plan {
  const { recipe, set, facts, options, mode, now } = input;
  const r = recipe.recipe;
  const stamp = planStamp(now);
  const { kinds, warnings } = restorableComponents(recipe, set, options.only);
  const parallel = options.parallel;

  const drafts: StepDraft[] = [];
  const preflightChecks = [
    'client tools present and new enough for the dump',
    ...(kinds.includes('postgres') ? ['roles the dump references exist (or the chosen --missing-roles)'] : []),
    'targets reachable with the recipe credentials',
    'free disk for safety copies and restored files',
    'no other restore holds a target lock',
  ];
  drafts.push({
    id: 'preflight',
    title: 'Run preflight checks',
    doneTitle: 'Preflight checks passed',
    phase: 'preflight',
    lane: 'main',
    destructive: false,
    actions: [{ type: 'note', purpose: `Preflight (before any step changes anything): ${preflightChecks.join('; ')}` }],
  });

  const quiesceIds: string[] = [];
  for (const svc of r.services) {
    const id = `quiesce:${svc.name}`;
    quiesceIds.push(id);
    drafts.push({
      id,
      title: `Stop ${svc.name}`,
      doneTitle: `${svc.name} stopped`,
      phase: 'quiesce',
      lane: 'main',
      component: 'services',
      destructive: false,
      actions: stopActions(svc.name, appServiceControl(svc)),
      undo: { title: `Start ${svc.name}`, actions: startActions(svc.name, appServiceControl(svc)) },
    });
  }

  const laneSteps: StepDraft[][] = [];
  const c = r.components;
  if (kinds.includes('postgres') && c.postgres) laneSteps.push(postgresSteps(c.postgres, input, stamp, warnings));
  if (kinds.includes('redis') && c.redis) laneSteps.push(redisSteps(c.redis, input, stamp, warnings));
  if (kinds.includes('prometheus') && c.prometheus) laneSteps.push(prometheusSteps(c.prometheus, input, stamp));
  for (const lane of laneSteps) drafts.push(...lane);

  for (const svc of [...r.services].reverse()) {
    drafts.push({
      id: `start:${svc.name}`,
      title: `Start ${svc.name}`,
      doneTitle: `${svc.name} started`,
      phase: 'start',
      lane: 'main',
      component: 'services',
      destructive: false,
      actions: startActions(svc.name, appServiceControl(svc)),
      undo: { title: `Stop ${svc.name}`, actions: stopActions(svc.name, appServiceControl(svc)) },
    });
  }

  const checks = healthChecks(r.checks, mode);
  drafts.push({
    id: 'health',
    title: 'Run health checks',
    doneTitle: 'Health checks passed',
    phase: 'health',
    lane: 'main',
    destructive: false,
    actions:
      checks.length > 0
        ? checks.map((check) => ({ type: 'check' as const, check, purpose: `Health check: ${check.name}` }))
        : [{ type: 'note' as const, purpose: `The recipe has no health checks for ${mode}s.` }],
  });

  // Dependencies. Sequential: one lane, each step after the previous. Parallel: component lanes
  // start after the last quiesce step and run side by side; services start after every lane.
  const steps: PlanStep[] = [];
  if (!parallel) {
    let prev: string | undefined;
    for (const d of drafts) {
      steps.push({ ...d, lane: 'main', dependsOn: prev ? [prev] : [] });
      prev = d.id;
    }
  } else {
    const afterQuiesce = quiesceIds.length > 0 ? quiesceIds[quiesceIds.length - 1]! : 'preflight';
    const laneEnds = laneSteps.map((l) => l[l.length - 1]!.id);
    const laneIds = new Set(laneSteps.flat().map((s) => s.id));
    let prevMain: string | undefined;
    const prevInLane = new Map<Lane, string>();
    for (const d of drafts) {
      let dependsOn: string[];
      if (laneIds.has(d.id)) {
        const prev = prevInLane.get(d.lane);
        dependsOn = [prev ?? afterQuiesce];
        prevInLane.set(d.lane, d.id);
      } else if (d.phase === 'start' || d.phase === 'health') {
        // The first step after the lanes waits for every lane; later ones follow each other.
        const afterLanes = laneEnds.length > 0 ? [...laneEnds] : prevMain ? [prevMain] : [];
        dependsOn = prevMain?.startsWith('start:') ? [prevMain] : afterLanes;
        prevMain = d.id;
      } else {
        dependsOn = prevMain ? [prevMain] : [];
        prevMain = d.id;
      }
      steps.push({ ...d, dependsOn });
    }
  }

  if (options.overrideRejected) warnings.push(`The set failed verification; restoring anyway because: ${options.overrideRejected}`);
  const pgTarget = kinds.includes('postgres') ? r.components.postgres : undefined;
  if (pgTarget) {
    const dump = facts.postgres?.dump;
    const mismatches = databaseMismatches(
      databaseClaims(set, dump?.database ?? str(verifyFacts(input.verify, 'postgres')['dbname'])),
      pgTarget.database,
    );
    for (const m of mismatches) {
      warnings.push(
        options.allowDatabaseMismatch
          ? `${describeMismatch(m, pgTarget.database)}; restoring anyway because: ${options.allowDatabaseMismatch}`
          : `${describeMismatch(m, pgTarget.database)}: restore refuses this set without --allow-database-mismatch "<reason>"`,
      );
    }
  }
  if (mode === 'drill') warnings.push('Drill: the targets are throwaway scratch services, never the real ones.');

  return {
    version: 1,
    mode,
    createdAt: now.toISOString(),
    stamp,
    recipe: { name: r.name, file: recipe.file, digest: recipe.digest },
    backup: {
      id: set.id,
      time: set.time,
      layout: set.layout,
      location: set.location,
      components: set.components
        .filter((x) => kinds.includes(x.kind))
        .map((x) => {
          const v = input.verify?.components.find((c) => c.path === x.path);
          return {
            kind: x.kind,
            format: x.format,
            path: x.path,
            size: x.size,
            ...(x.expectedSha256 ? { sha256: x.expectedSha256 } : {}),
            ...(v?.sha256 ? { verifiedSha256: v.sha256 } : {}),
            ...(v?.identity ? { identity: v.identity } : {}),
          };
        }),
    },
    targets: describeTargets(recipe, kinds),
    steps,
    lockKeys: input.lockKeys ?? [],
    options: { ...options, parallel },
    facts,
    warnings,
    objectives: {
      ...(r.objectives.rtoMinutes ? { rtoMinutes: r.objectives.rtoMinutes } : {}),
      ...(r.objectives.rpoMinutes ? { rpoMinutes: r.objectives.rpoMinutes } : {}),
    },
  };
}
