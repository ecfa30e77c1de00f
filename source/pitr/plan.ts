import path from 'node:path';
import { pathFact, type PlannedAction } from '../actions/types.js';
import type { Plan, PlanStep } from '../plan/types.js';
import type { LoadedRecipe } from '../recipe/load.js';
import type { ClusterTarget, PostgresTarget } from '../recipe/schema.js';
import { psqlCommand } from '../targets/postgres.js';
import { appServiceControl, startActions, stopActions } from '../targets/services.js';
import { shellQuote } from '../text/shell.js';
import { recoveryTarget, targetText, type PitrTarget } from './target.js';
import { formatLsn, segNoOf } from './wal.js';
import type { PitrBase } from './window.js';

/**
 * The cluster-level plan of a point-in-time restore (pure data, like plan/build.ts):
 *
 *   stop services → stop PostgreSQL → move the data directory aside (the safety copy, same file
 *   system: a rename) → extract the verified base tar → recovery settings + recovery.signal →
 *   owner and mode → start → follow recovery until promoted → reset the recovery settings →
 *   start services → health checks.
 *
 * Undo, in reverse: stop the recovering server, move the restored dir away, put the old data
 * directory back (by its real path, recorded in the plan), start it, start the services.
 */

export interface PitrPlanInput {
  loaded: LoadedRecipe;
  base: PitrBase;
  target: PitrTarget;
  /** Real path of the data directory (probed). */
  dataDir: string;
  /** What verification hashed (the engine extracts only those bytes). */
  verifiedSha256?: string;
  identity?: Plan['backup']['components'][number]['identity'];
  archiveDir: string;
  lockKeys: string[];
  now: Date;
  stamp: string;
  warnings?: string[];
}

/** A postgresql.conf string literal. */
export function confQuote(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

/**
 * The restore_command PostgreSQL runs (through /bin/sh, with %f and %p put in by the server): it
 * copies one file from the archive, or decompresses its `.gz`. The only data in it is the archive
 * directory, shell-quoted (and `%` doubled for PostgreSQL); %f is checked to be a plain WAL or
 * history name before it is used, and symlinks in the archive are refused.
 */
export function restoreCommand(archiveDir: string): string {
  const a = shellQuote(archiveDir).replace(/%/g, '%%');
  return [
    `f=%f; case "$f" in ''|*[!0-9A-Za-z.]*) exit 1;; esac; a=${a}`,
    `if [ -f "$a/$f" ] && [ ! -L "$a/$f" ]; then exec cp -- "$a/$f" "%p"`,
    `elif [ -f "$a/$f.gz" ] && [ ! -L "$a/$f.gz" ]; then exec gzip -dc -- "$a/$f.gz" > "%p"`,
    'else exit 1; fi',
  ].join('; ');
}

export function recoverySettings(input: Pick<PitrPlanInput, 'base' | 'target' | 'archiveDir' | 'stamp'>): string {
  const t = recoveryTarget(input.base, input.target);
  const lines = [
    '',
    `# restore-assistant point-in-time recovery ${input.stamp} (target ${targetText(input.target)}); reset after promotion`,
    `restore_command = ${confQuote(restoreCommand(input.archiveDir))}`,
    // PostgreSQL's own timestamptz syntax ("2026-12-01 03:12:00.000+00"): it refuses ISO's T and Z here.
    ...(t.kind === 'time' ? [`recovery_target_time = ${confQuote(t.time.replace('T', ' ').replace(/Z$/, '+00'))}`] : []),
    ...(t.kind === 'immediate' ? ["recovery_target = 'immediate'"] : []),
    "recovery_target_action = 'promote'",
    // The timeline the window was computed along (pitr/window.ts timelinePath): 'latest', or the base's own.
    `recovery_target_timeline = ${confQuote(String(input.base.recoveryTimeline ?? 'current'))}`,
    '',
  ];
  return lines.join('\n');
}

/** Undo by identity (device, inode, real path recorded as run facts): only what this run moved or extracted is moved back or removed. */
export const PGDATA_ASIDE_FACT = pathFact('postgres.pgdataAside');
export const PGDATA_RESTORED_FACT = pathFact('postgres.pgdataRestored');
export const PGDATA_FAILED_FACT = pathFact('postgres.pgdataFailed');

const RECOVERY_SETTINGS = [
  'restore_command',
  'recovery_target',
  'recovery_target_time',
  'recovery_target_action',
  'recovery_target_timeline',
];

function clusterOf(loaded: LoadedRecipe): { pg: PostgresTarget; cluster: ClusterTarget } {
  const pg = loaded.recipe.components.postgres;
  if (!pg?.cluster) throw new Error('a point-in-time plan needs components.postgres.cluster');
  return { pg, cluster: pg.cluster };
}

export function buildPitrPlan(input: PitrPlanInput): Plan {
  const { loaded, base, stamp } = input;
  const r = loaded.recipe;
  const { pg, cluster } = clusterOf(loaded);
  const dataDir = input.dataDir;
  const aside = `${dataDir}.pre-pitr-${stamp}`;
  const failed = `${dataDir}.failed-pitr-${stamp}`;
  const basePath = base.set.components[0]?.path ?? '';
  const segSize = base.segSize ?? 16 << 20;
  const lastSegNo = base.run?.segments.length
    ? segNoOf(base.startLsn, segSize) + BigInt(base.run.segments.length) - 1n
    : segNoOf(base.startLsn, segSize);
  const walEnd = (lastSegNo + 1n) * BigInt(segSize);
  const t = recoveryTarget(base, input.target);
  const svc = {
    stop: cluster.service.stop,
    start: cluster.service.start,
    ...(cluster.service.status ? { status: cluster.service.status } : {}),
    timeoutSeconds: cluster.service.timeoutSeconds,
  };
  const pgName = `PostgreSQL (${dataDir})`;
  const steps: Array<Omit<PlanStep, 'dependsOn' | 'lane'>> = [];
  // Only the directory this run extracted is moved away; when the old one is already back, nothing moves.
  const moveRestoredAway: PlannedAction = {
    type: 'move',
    from: dataDir,
    to: failed,
    ifExists: true,
    expect: PGDATA_RESTORED_FACT,
    doneIf: [PGDATA_ASIDE_FACT],
    recordAs: PGDATA_FAILED_FACT,
    purpose: 'Move the restored data directory away',
  };

  for (const s of r.services)
    steps.push({
      id: `quiesce:${s.name}`,
      title: `Stop ${s.name}`,
      doneTitle: `${s.name} stopped`,
      phase: 'quiesce',
      component: 'services',
      destructive: false,
      actions: stopActions(s.name, appServiceControl(s)),
      undo: { title: `Start ${s.name}`, actions: startActions(s.name, appServiceControl(s)) },
    });

  steps.push({
    id: 'postgres:stop',
    title: `Stop ${pgName}`,
    doneTitle: 'PostgreSQL stopped',
    phase: 'quiesce',
    component: 'postgres',
    destructive: false,
    actions: stopActions(pgName, svc),
    undo: { title: `Start ${pgName} again`, actions: startActions(pgName, svc) },
  });

  steps.push({
    id: 'postgres:set-aside',
    title: `Move the data directory aside`,
    doneTitle: `Data directory kept at ${aside}`,
    phase: 'postgres',
    component: 'postgres',
    destructive: false,
    safetyCopy: {
      component: 'postgres',
      kind: 'move',
      location: aside,
      description: `the whole data directory, renamed to ${aside} (same file system)`,
    },
    actions: [
      { type: 'move', from: dataDir, to: aside, purpose: 'Keep the current data directory (safety copy)', recordAs: PGDATA_ASIDE_FACT },
    ],
    undo: {
      title: `Put the old data directory back at ${dataDir}`,
      actions: [
        moveRestoredAway,
        {
          type: 'move',
          from: aside,
          to: dataDir,
          ifExists: true,
          expect: PGDATA_ASIDE_FACT,
          purpose: 'Put the pre-restore data directory back',
        },
        {
          type: 'remove',
          paths: [{ path: failed, expect: PGDATA_FAILED_FACT }],
          purpose: `Remove the restored data directory (${failed}, a copy of the base backup)`,
        },
      ],
    },
  });

  const conf = recoverySettings({ base, target: input.target, archiveDir: input.archiveDir, stamp });
  const extractActions: PlannedAction[] = [
    {
      type: 'extract-tar',
      archive: basePath,
      dest: dataDir,
      purpose: `Extract base backup ${base.set.id}`,
      recordAs: PGDATA_RESTORED_FACT,
    },
    { type: 'write-file', path: path.join(dataDir, 'postgresql.auto.conf'), mode: 'append', content: conf, purpose: 'Recovery settings' },
    {
      type: 'write-file',
      path: path.join(dataDir, 'recovery.signal'),
      mode: 'create',
      content: '',
      purpose: 'Start in targeted recovery (recovery.signal)',
    },
    {
      type: 'exec',
      argv: ['chown', '-R', '--', `${cluster.osUser}:`, dataDir],
      purpose: `Owned by ${cluster.osUser}`,
      runsIn: 'host',
      timeoutSeconds: 600,
    },
    {
      type: 'exec',
      argv: ['chmod', '0700', '--', dataDir],
      purpose: 'Mode 0700 (PostgreSQL refuses others)',
      runsIn: 'host',
      timeoutSeconds: 30,
    },
  ];
  steps.push({
    id: 'postgres:extract',
    title: `Extract base backup ${base.set.id}`,
    doneTitle: `Base backup ${base.set.id} extracted`,
    phase: 'postgres',
    component: 'postgres',
    destructive: true,
    destroys: `the cluster's current state in ${dataDir} (kept at ${aside})`,
    actions: extractActions,
    undo: {
      title: 'Move the restored data directory away',
      actions: [moveRestoredAway],
    },
  });

  steps.push({
    id: 'postgres:start-recovery',
    title: `Start ${pgName} in recovery`,
    doneTitle: 'PostgreSQL started in recovery',
    phase: 'postgres',
    component: 'postgres',
    destructive: false,
    actions: [{ type: 'exec', argv: [...svc.start], purpose: `Start ${pgName}`, runsIn: 'host', timeoutSeconds: svc.timeoutSeconds }],
    undo: { title: `Stop ${pgName} (the restored one)`, actions: stopActions(pgName, svc) },
  });

  steps.push({
    id: 'postgres:follow-recovery',
    title: `Replay WAL to ${targetText(input.target)}`,
    doneTitle: `WAL replayed to ${targetText(input.target)}`,
    phase: 'postgres',
    component: 'postgres',
    destructive: false,
    actions: [
      {
        type: 'follow-recovery',
        command: psqlCommand(pg, {
          sql: ['SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn(), pg_last_xact_replay_timestamp()'],
          purpose: 'Recovery state',
          tuplesOnly: true,
          timeoutSeconds: 10,
        }),
        startLsn: formatLsn(base.startLsn),
        targetLsn: formatLsn(walEnd),
        ...(t.kind === 'end' && base.run?.segments.length ? { expectAtLeastLsn: formatLsn(lastSegNo * BigInt(segSize)) } : {}),
        timeoutSeconds: cluster.recoveryTimeoutMinutes * 60,
        purpose: `Follow recovery (${t.kind === 'time' ? `recovery_target_time ${t.time}` : t.kind === 'immediate' ? 'until consistent' : `to the end of the archived WAL, ${base.window?.lastSegment ?? '?'}`})`,
      },
    ],
  });

  steps.push({
    id: 'postgres:recovery-settings-reset',
    title: 'Reset the recovery settings',
    doneTitle: 'Recovery settings reset',
    phase: 'postgres',
    component: 'postgres',
    destructive: false,
    actions: [
      {
        type: 'exec',
        ...psqlCommand(pg, {
          sql: [...RECOVERY_SETTINGS.map((s) => `ALTER SYSTEM RESET ${s}`), 'SELECT pg_reload_conf()'],
          purpose: 'ALTER SYSTEM RESET the recovery settings (postgresql.auto.conf)',
          timeoutSeconds: 30,
        }),
      },
    ],
  });

  for (const s of [...r.services].reverse())
    steps.push({
      id: `start:${s.name}`,
      title: `Start ${s.name}`,
      doneTitle: `${s.name} started`,
      phase: 'start',
      component: 'services',
      destructive: false,
      actions: startActions(s.name, appServiceControl(s)),
      undo: { title: `Stop ${s.name}`, actions: stopActions(s.name, appServiceControl(s)) },
    });

  const checks = r.checks.filter((c) => c.when.includes('restore'));
  steps.push({
    id: 'health',
    title: 'Run health checks',
    doneTitle: 'Health checks passed',
    phase: 'health',
    destructive: false,
    actions:
      checks.length > 0
        ? checks.map((check) => ({ type: 'check' as const, check, purpose: `Health check: ${check.name}` }))
        : [{ type: 'note' as const, purpose: 'The recipe has no health checks for restores.' }],
  });

  const planSteps: PlanStep[] = steps.map((s, i) => ({ ...s, lane: 'main', dependsOn: i > 0 ? [steps[i - 1]!.id] : [] }));
  const component = base.set.components[0];
  return {
    version: 1,
    mode: 'restore',
    createdAt: input.now.toISOString(),
    stamp,
    recipe: { name: r.name, file: loaded.file, digest: loaded.digest },
    backup: {
      id: base.set.id,
      time: base.set.time,
      layout: 'physical',
      location: base.set.location,
      components: component
        ? [
            {
              kind: 'postgres',
              format: component.format,
              path: component.path,
              size: component.size,
              ...(input.verifiedSha256 ? { verifiedSha256: input.verifiedSha256 } : {}),
              ...(input.identity ? { identity: input.identity } : {}),
            },
          ]
        : [],
    },
    targets: { postgres: `PostgreSQL cluster ${dataDir} (${pg.host}:${pg.port}), to ${targetText(input.target)}` },
    steps: planSteps,
    lockKeys: input.lockKeys,
    options: { yes: true, rollbackOnUnhealthy: false, dropSafetyCopies: false, missingRoles: 'fail', parallel: false, jobs: 1 },
    facts: {},
    warnings: input.warnings ?? [],
    objectives: {
      ...(r.objectives.rtoMinutes ? { rtoMinutes: r.objectives.rtoMinutes } : {}),
      ...(r.objectives.rpoMinutes ? { rpoMinutes: r.objectives.rpoMinutes } : {}),
    },
  };
}
